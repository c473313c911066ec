/* changes_check.c - owns finding out from the server what became of a
 * change (changes.h): is the message still in its source, did it arrive in
 * the destination (never an older copy), and finishing or undoing a move
 * or delete left half done; and setting flags, which is its own check. */
#include "changes_p.h"
#include "imap/flags.h"
#include "util/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct resolve_job {
	const struct journal_entry *e;
	bool undo; /* a refused step: a half-done move goes back */
	enum outcome outcome;
	uint32_t new_uid;
	int err;      /* of a finishing step that failed */
	bool refused; /* ... because the server said no (the session lives) */
};

#define LOOSE_MAX 4 /* arrivals of the right size and another INTERNALDATE kept */

struct arrival_scan {
	const struct journal_entry *e;
	uint32_t uid;              /* first match, 0 if none */
	uint32_t loose[LOOSE_MAX]; /* the right size, another INTERNALDATE */
	size_t nloose;
};

static void match_arrival(const struct imap_meta *m, void *ctx)
{
	struct arrival_scan *a = ctx;

	/* "UID n:*" also returns the highest UID below n: filter */
	if (a->uid || m->uid < a->e->dest_uidnext || !m->has_size || !m->has_date)
		return;
	if (a->e->size && m->size != a->e->size)
		return;
	if (m->internaldate != a->e->internaldate) {
		if (a->e->size && a->nloose < LOOSE_MAX)
			a->loose[a->nloose++] = m->uid;
		return;
	}
	a->uid = m->uid;
}

/* The message of e among the arrivals in dest (selected): 0 or -errno. */
static int find_arrival(struct imap_session *s, const struct journal_entry *e, struct arrival_scan *a)
{
	*a = (struct arrival_scan){ .e = e };
	return imap_fetch_meta(s, true, e->dest_uidnext ? e->dest_uidnext : 1, 0, match_arrival, a);
}

/* Is uid in the selected folder?  1 yes (flags in *info), 0 no, or -errno. */
static int present(struct imap_session *s, uint32_t uid, struct imap_message_info *info)
{
	int r = imap_fetch_info(s, uid, info);

	return r == 0 ? 1 : r == -ENOENT ? 0 : r;
}

/* SELECTs folder afresh and checks its UIDVALIDITY: 0, 1 when it changed
 * (or the folder is gone), or -errno. */
int changes_select_checked(struct imap_session *s, const char *folder, uint32_t validity)
{
	struct imap_folder_state st;
	int r = imap_select(s, folder, true, &st);

	if (r == -ENOENT)
		return 1;
	if (r < 0)
		return r;
	return validity && st.uidvalidity != validity;
}

/* The source (selected) keeps no \Deleted: the COPY fallback may have set
 * it before its EXPUNGE failed. */
static int clear_deleted(struct imap_session *s, uint32_t uid, const struct imap_message_info *src)
{
	struct flag_set deleted = { .system = IMAP_FLAG_DELETED };

	return src->system_flags & IMAP_FLAG_DELETED ? imap_store_flags(s, uid, &deleted, IMAP_STORE_REMOVE)
						     : 0;
}

/* A folder that cannot be selected as it was recorded: -errno (-ESTALE
 * when it was re-created or deleted). */
static int select_same(struct imap_session *s, const char *folder, uint32_t validity)
{
	int r = changes_select_checked(s, folder, validity);

	return r == 1 ? -ESTALE : r;
}

#define COMPARED_BYTES 65536 /* of a loose arrival and its source */

/* A server killed in the middle of a MOVE can leave the copy with another
 * INTERNALDATE than its source (Dovecot has, the source still there): an
 * arrival of the right size that begins with the source's bytes (headers,
 * Message-ID and all) is the copy, in *uid (0: none).  Finishing the move
 * then expunges the source: were it another client's copy of the same
 * mail, one copy still remains.  Not when undoing (the server refused a
 * step, it was not killed: such an arrival is someone else's, and undoing
 * would delete it).  Called with dest selected; returns with src
 * selected, or -errno. */
static int find_loose_copy(struct imap_session *s, const struct arrival_scan *a, uint32_t *uid)
{
	const struct journal_entry *e = a->e;
	char *bytes = malloc((a->nloose + 1) * COMPARED_BYTES);
	size_t got[LOOSE_MAX + 1] = { 0 };
	int r = bytes ? 0 : -ENOMEM;

	*uid = 0;
	for (size_t i = 0; r == 0 && i < a->nloose; i++) {
		r = imap_fetch_body(s, a->loose[i], 0, COMPARED_BYTES, bytes + (i + 1) * COMPARED_BYTES,
				    &got[i + 1]);
		if (r == -ENOENT) { /* expunged since the scan: not this one */
			got[i + 1] = 0;
			r = 0;
		}
	}
	if (r == 0)
		r = select_same(s, e->src, e->src_validity);
	if (r == 0)
		r = imap_fetch_body(s, e->src_uid, 0, COMPARED_BYTES, bytes, &got[0]);
	for (size_t i = 0; r == 0 && !*uid && i < a->nloose; i++) {
		if (got[0] > 0 && got[i + 1] == got[0] &&
		    memcmp(bytes, bytes + (i + 1) * COMPARED_BYTES, got[0]) == 0)
			*uid = a->loose[i];
	}
	if (*uid)
		log_info("the move of %s UID %u left its copy in %s as UID %u with another date", e->src,
			 e->src_uid, e->dest, *uid);
	free(bytes);
	return r;
}

/* The half-done move, undone: the source first loses its \Deleted, then
 * the copy in dest goes -- in this order, a step that fails leaves the
 * move half done (both copies, none marked), to be undone again later;
 * the other order could leave one copy, marked for any client's EXPUNGE. */
static int undo_half(struct imap_session *s, const struct journal_entry *e, uint32_t copy,
		     const struct imap_message_info *src)
{
	int r = select_same(s, e->src, e->src_validity);

	if (r == 0)
		r = clear_deleted(s, e->src_uid, src);
	if (r == 0)
		r = select_same(s, e->dest, e->dest_validity);
	return r < 0 ? r : imap_delete_message(s, copy);
}

/* Selects folder, checked to be the one of validity still: false, with
 * what the pool function returns in *ret, when the session failed or the
 * folder was re-created (the job's outcome is then STALE). */
static bool select_for(struct imap_session *s, struct resolve_job *job, const char *folder, uint32_t validity,
		       int *ret)
{
	int r = changes_select_checked(s, folder, validity);

	if (r == 1)
		job->outcome = OUTCOME_STALE;
	*ret = r < 0 ? r : 0;
	return r == 0;
}

static int resolve_move_fn(struct imap_session *s, const struct imap_folder_state *st, void *ctx)
{
	struct resolve_job *job = ctx;
	const struct journal_entry *e = job->e;
	struct imap_message_info info = { 0 };
	struct arrival_scan arrivals;
	int in_src, r;

	(void)st;
	job->outcome = OUTCOME_UNKNOWN;
	if (!select_for(s, job, e->src, e->src_validity, &r))
		return r;
	if ((in_src = present(s, e->src_uid, &info)) < 0)
		return in_src;
	if (!e->dest) {
		/* a delete for good is STORE +\Deleted, then UID EXPUNGE: gone
		 * is done, unmarked is not done (as a move found rolled back:
		 * not sent again unless its caller still waits), marked is
		 * half done -- finished, or unmarked when the server refused
		 * the EXPUNGE */
		if (!in_src || !(info.system_flags & IMAP_FLAG_DELETED)) {
			job->outcome = in_src ? OUTCOME_ROLLED_BACK : OUTCOME_COMPLETED;
		} else {
			job->err = job->undo ? clear_deleted(s, e->src_uid, &info)
					     : imap_delete_message(s, e->src_uid);
			job->refused = job->err && !imap_dead(s);
			job->outcome = job->err    ? OUTCOME_UNKNOWN
				       : job->undo ? OUTCOME_ROLLED_BACK
						   : OUTCOME_COMPLETED;
		}
		imap_message_info_free(&info);
		return 0;
	}
	if (!select_for(s, job, e->dest, e->dest_validity, &r) || (r = find_arrival(s, e, &arrivals)) < 0 ||
	    (in_src && !job->undo && !arrivals.uid && arrivals.nloose &&
	     (r = find_loose_copy(s, &arrivals, &arrivals.uid)) < 0)) {
		imap_message_info_free(&info);
		return r;
	}
	job->new_uid = arrivals.uid;
	if (!in_src)
		job->outcome = job->new_uid ? OUTCOME_COMPLETED : OUTCOME_GONE;
	else if (!job->new_uid)
		job->outcome = OUTCOME_ROLLED_BACK;
	else
		job->outcome = OUTCOME_HALF;
	if (job->outcome == OUTCOME_HALF) {
		if (job->undo) {
			job->err = undo_half(s, e, job->new_uid, &info);
			job->outcome = job->err ? OUTCOME_UNKNOWN : OUTCOME_ROLLED_BACK;
			job->new_uid = 0;
		} else if (select_for(s, job, e->src, e->src_validity, &r)) {
			job->err = imap_delete_message(s, e->src_uid);
			job->outcome = job->err ? OUTCOME_UNKNOWN : OUTCOME_COMPLETED;
		} else if (job->outcome != OUTCOME_STALE) {
			job->outcome = OUTCOME_UNKNOWN;
		}
		job->refused = job->err && !imap_dead(s);
	}
	imap_message_info_free(&info);
	return r < 0 ? r : 0;
}

static int resolve_append_fn(struct imap_session *s, const struct imap_folder_state *st, void *ctx)
{
	struct resolve_job *job = ctx;
	struct arrival_scan arrivals;
	int r;

	(void)st;
	job->outcome = OUTCOME_UNKNOWN;
	if (!select_for(s, job, job->e->dest, job->e->dest_validity, &r))
		return r;
	r = find_arrival(s, job->e, &arrivals);
	job->new_uid = arrivals.uid;
	if (r == 0)
		job->outcome = job->new_uid ? OUTCOME_COMPLETED : OUTCOME_ROLLED_BACK;
	return r;
}

/* The keywords of `of` that `in` lacks (pointers into of's, not copies). */
static size_t keywords_missing(char **out, const struct flag_set *of, char *const *in, size_t nin)
{
	size_t k = 0;

	for (size_t i = 0; i < of->nkeywords; i++) {
		bool found = false;

		for (size_t j = 0; j < nin && !found; j++)
			found = strcasecmp(of->keywords[i], in[j]) == 0;
		if (!found)
			out[k++] = of->keywords[i];
	}
	return k;
}

/* Sets the flags of e->src_uid (selected) to e->text, by adding and
 * removing what differs from the flags it has now -- never by replacing
 * them all, which would undo what another session does meanwhile (the
 * \Deleted of an rm between its STORE and its EXPUNGE, another client's
 * \Answered).  \Deleted belongs to rm: left as it is.  -ENOENT when the
 * message is gone. */
int changes_apply_flags(struct imap_session *s, const struct journal_entry *e)
{
	struct imap_message_info info;
	struct flag_set want, have = { 0 }, add = { 0 }, remove = { 0 };
	bool fetched = false;
	int r = flags_parse(e->text ? e->text : "", e->text ? strlen(e->text) : 0, &want);

	if (r < 0)
		return r;
	for (size_t i = 0; r == 0 && i < want.nkeywords; i++) {
		if (!imap_keyword_permitted(s, want.keywords[i])) {
			log_warn("%.100s does not allow the keyword %.100s", e->src, want.keywords[i]);
			r = -EPERM;
		}
	}
	if (r == 0 && (r = imap_fetch_info(s, e->src_uid, &info)) == 0) {
		fetched = true;
		have = (struct flag_set){ .system = info.system_flags,
					  .keywords = info.keywords,
					  .nkeywords = info.nkeywords };
		add.keywords = calloc(want.nkeywords + 1, sizeof(char *));
		remove.keywords = calloc(info.nkeywords + 1, sizeof(char *));
		if (!add.keywords || !remove.keywords)
			r = -ENOMEM;
	}
	if (r == 0) {
		unsigned keep = ~(unsigned)IMAP_FLAG_DELETED;

		add.system = want.system & ~have.system & keep;
		add.nkeywords = keywords_missing(add.keywords, &want, have.keywords, have.nkeywords);
		remove.system = have.system & ~want.system & keep;
		remove.nkeywords = keywords_missing(remove.keywords, &have, want.keywords, want.nkeywords);
		if (remove.system || remove.nkeywords)
			r = imap_store_flags(s, e->src_uid, &remove, IMAP_STORE_REMOVE);
		if (r == 0 && (add.system || add.nkeywords))
			r = imap_store_flags(s, e->src_uid, &add, IMAP_STORE_ADD);
	}
	free(add.keywords);
	free(remove.keywords);
	if (fetched)
		imap_message_info_free(&info);
	flags_free(&want);
	return r;
}

/* Sets the flags of n messages of the selected folder to text in at most two
 * commands, without reading their flags first: every flag text does not
 * name -- the system flags but \Deleted, and the keywords the folder's
 * FLAGS lists -- is removed, then text's flags added.  The same end as
 * changes_apply_flags, and as safe to repeat. */
int changes_apply_flags_set(struct imap_session *s, const uint32_t *uids, size_t n, const char *text)
{
	unsigned all = IMAP_FLAG_SEEN | IMAP_FLAG_ANSWERED | IMAP_FLAG_FLAGGED | IMAP_FLAG_DRAFT;
	struct flag_set want, remove = { 0 };
	char **have = NULL;
	size_t nhave = 0;
	int r = flags_parse(text ? text : "", text ? strlen(text) : 0, &want);

	if (r < 0)
		return r;
	for (size_t i = 0; r == 0 && i < want.nkeywords; i++)
		if (!imap_keyword_permitted(s, want.keywords[i]))
			r = -EPERM;
	if (r == 0 && (r = imap_selected_keywords(s, &have, &nhave)) == -ENODATA)
		r = 0; /* no FLAGS from the server: only text's keywords are known */
	if (r == 0 && !(remove.keywords = calloc(nhave + 1, sizeof(char *))))
		r = -ENOMEM;
	if (r == 0) {
		struct flag_set kw = { .keywords = have, .nkeywords = nhave };

		want.system &= ~(unsigned)IMAP_FLAG_DELETED;
		remove.system = all & ~want.system;
		remove.nkeywords = keywords_missing(remove.keywords, &kw, want.keywords, want.nkeywords);
		if (remove.system || remove.nkeywords)
			r = imap_store_set(s, uids, n, &remove, IMAP_STORE_REMOVE);
		if (r == 0 && (want.system || want.nkeywords))
			r = imap_store_set(s, uids, n, &want, IMAP_STORE_ADD);
	}
	free(remove.keywords);
	for (size_t i = 0; i < nhave; i++)
		free(have[i]);
	free(have);
	flags_free(&want);
	return r;
}

static int resolve_flags_fn(struct imap_session *s, const struct imap_folder_state *st, void *ctx)
{
	struct resolve_job *job = ctx;
	int r;

	(void)st;
	job->outcome = OUTCOME_UNKNOWN;
	if (!select_for(s, job, job->e->src, job->e->src_validity, &r))
		return r;
	r = changes_apply_flags(s, job->e); /* idempotent: the wanted flags, again */
	if (r == 0 || r == -ENOENT)
		job->outcome = r == 0 ? OUTCOME_COMPLETED : OUTCOME_GONE;
	else if (!imap_dead(s))
		job->outcome = OUTCOME_REFUSED; /* e.g. a keyword the folder does not allow */
	return r == -ENOENT || job->outcome == OUTCOME_REFUSED ? 0 : r;
}

/* Asks the server what became of e (finishing or undoing a half-done
 * move on the way); OUTCOME_UNKNOWN when it cannot be reached. */
enum outcome changes_ask(struct mailbox *mb, const struct journal_entry *e, bool undo, uint32_t *new_uid)
{
	struct resolve_job job = { .e = e, .undo = undo };
	pool_fn *fn = e->op == JOURNAL_APPEND  ? resolve_append_fn
		      : e->op == JOURNAL_FLAGS ? resolve_flags_fn
					       : resolve_move_fn;
	int r = pool_run(mb->pool, NULL, 0, fn, &job);

	if (r == 0 && job.refused) {
		log_warn("the server refuses to finish the %s of %.100s UID %u: %s", journal_op_name(e->op),
			 e->src ? e->src : e->dest, e->src_uid, strerror(-job.err));
		return OUTCOME_REFUSED;
	}
	if (r < 0 || job.err) {
		log_warn("cannot find out yet what became of the %s of %s UID %u: %s", journal_op_name(e->op),
			 e->src ? e->src : e->dest, e->src_uid, strerror(r < 0 ? -r : -job.err));
		return OUTCOME_UNKNOWN;
	}
	*new_uid = job.new_uid;
	return job.outcome;
}

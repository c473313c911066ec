/* writeback_batch.c - owns the flusher's rounds (writeback.c): the
 * changes in doubt asked about first, then batch after batch -- picking
 * the changes that can go in one command, sending them (UID MOVE of a UID
 * set, UID STORE, APPENDs, CREATE), marking them sent first, and settling
 * each member exactly once by what the server did; conflicts.
 *
 * A batch never holds two changes whose outcomes could be mistaken for
 * each other (the same message; look-alikes brought into one folder), so
 * after a cut each member is asked about apart (changes_ask). */
#include "changes_p.h"
#include "imap/flags.h"
#include "util/log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define WB_BATCH_MAX 1000           /* changes in one command */
#define WB_APPEND_MAX 100           /* messages stored in one batch, */
#define WB_APPEND_BYTES (16u << 20) /* and their bytes */
#define WB_ROUND_GROUPS 1000        /* batches in one round, at most */
#define WB_ASK_AGAIN_S 2.0          /* a cut change found not done is asked again this much later */

/* ---- conflicts ---- */

static void note_conflict(struct mailbox *mb, const struct journal_entry *e, const char *why, int err)
{
	struct changes *c = mb->changes;
	char *line;

	char what[WB_LINE];

	if (e->op == JOURNAL_APPEND)
		snprintf(what, sizeof(what), "cp into %.100s (%.60s)", e->dest, e->aux ? e->aux : "-");
	else if (e->op == JOURNAL_CREATE)
		snprintf(what, sizeof(what), "mkdir %.100s", e->dest);
	else
		snprintf(what, sizeof(what), "%s of %.80s UID %u%s%.80s", journal_op_name(e->op), e->src,
			 e->src_uid, e->dest ? " to " : "", e->dest ? e->dest : "");
	log_warn("write-back: the %s was not made: %s%s", what, why,
		 e->op == JOURNAL_APPEND ? "; the message is kept in the journal directory (unresolved.txt "
					   "names the file)"
					 : "");
	pthread_mutex_lock(&c->lock);
	line = c->conflict[c->conflicts % WB_CONFLICTS];
	snprintf(line, WB_LINE, "%.160s: %.70s", what, why);
	c->conflict_id[c->conflicts % WB_CONFLICTS] = e->id;
	c->conflict_err[c->conflicts % WB_CONFLICTS] = err;
	c->conflicts++;
	c->last_conflict = err;
	pthread_mutex_unlock(&c->lock);
}

/* Was e (rolled back after a cut) asked about WB_ASK_AGAIN_S or more
 * ago?  The first asking is noted.  Flusher thread only. */
static bool asked_long_ago(struct mailbox *mb, uint64_t id)
{
	struct changes *c = mb->changes;
	size_t k = 0;

	for (size_t i = 0; i < c->nasked; i++)
		if (c->asked[i].id == id)
			return wb_since(&c->asked[i].at) >= WB_ASK_AGAIN_S;
	if (c->nasked == c->asked_cap) { /* the settled ones go first */
		for (size_t i = 0; i < c->nasked; i++)
			if (journal_is_pending(mb->journal, c->asked[i].id))
				c->asked[k++] = c->asked[i];
		c->nasked = k;
	}
	if (c->nasked == c->asked_cap) {
		size_t cap = c->asked_cap ? c->asked_cap * 2 : 64;
		struct wb_asked *v = realloc(c->asked, cap * sizeof(*v));

		if (!v)
			return false; /* cannot remember: asked again, never resent early */
		c->asked = v;
		c->asked_cap = cap;
	}
	c->asked[c->nasked].id = id;
	clock_gettime(CLOCK_MONOTONIC, &c->asked[c->nasked++].at);
	return false;
}

/* Settles e by what the server says of it.  false: it stays pending. */
static bool settle(struct mailbox *mb, const struct journal_entry *e, enum outcome o, uint32_t new_uid,
		   int refused)
{
	switch (o) {
	case OUTCOME_UNKNOWN:
		return false;
	case OUTCOME_COMPLETED:
	case OUTCOME_HALF:
		wb_show_done(mb, e, new_uid);
		journal_done(mb->journal, e->id);
		return true;
	case OUTCOME_ROLLED_BACK:
		/* lost on the way: the dead session's command may still be
		 * running on the server; sent again, under a new bound, only
		 * when a second asking, a while later, finds it not done */
		if (!refused) {
			if (asked_long_ago(mb, e->id))
				journal_unsent(mb->journal, e->id);
			return false;
		}
		note_conflict(mb, e, strerror(-refused), refused);
		journal_park(mb->journal, e->id,
			     "write-back: the server refused the change; the message is left where it was");
		wb_show_undone(mb, e);
		return true;
	default:
		note_conflict(mb, e,
			      o == OUTCOME_STALE  ? "a folder was re-created (UIDVALIDITY changed)"
			      : o == OUTCOME_GONE ? "the message is gone: another client moved or deleted it"
						  : "the server refuses what would finish it",
			      o == OUTCOME_REFUSED ? -EPERM : -ENOENT);
		changes_conclude(mb, e, o, -EIO);
		wb_show_undone(mb, e);
		return true;
	}
}

/* ---- batches ---- */

/* Entries a round passes over. */
struct skip {
	uint64_t *ids;
	size_t n, cap;
};

struct batch {
	struct mailbox *mb;
	struct journal_entry **e; /* members, in journal order */
	size_t n;
	uint32_t *uids, *dest_uids;
	uint64_t *ids;
	int *err;          /* APPEND: each member's outcome */
	struct skip *skip; /* refused before anything was sent: not again this round */
	bool ran;          /* batch_fn ran (a session had the source selected) */
	bool uidplus;      /* the server says where moved messages went */
	size_t died_at;    /* APPEND: the member whose connection died, */
	bool died_all;     /* or all of them (one MULTIAPPEND) */
	bool sent, died, stale;
	int dest_err; /* the destination's STATUS failed */
};

static bool can_batch(const struct journal_entry *e)
{
	return wb_acked(e) && !wb_sent(e) &&
	       (e->op == JOURNAL_MOVE || e->op == JOURNAL_EXPUNGE || e->op == JOURNAL_FLAGS ||
		(e->op == JOURNAL_CREATE && e->dest) || (e->op == JOURNAL_APPEND && e->staged && e->dest));
}

static bool same_text(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

static bool same_batch(const struct journal_entry *a, const struct journal_entry *b)
{
	if (a->op != b->op || !same_text(a->dest, b->dest))
		return false;
	if (a->op == JOURNAL_APPEND) /* each with its own flags and date */
		return true;
	return a->src_validity == b->src_validity && same_text(a->src, b->src) && same_text(a->text, b->text);
}

/* Is a batch of k members (of bytes so far) full before e? */
static bool batch_full(const struct journal_entry *e, size_t k, uint64_t bytes)
{
	if (e->op == JOURNAL_CREATE)
		return k > 0;
	if (e->op != JOURNAL_APPEND)
		return k >= WB_BATCH_MAX;
	return k > 0 && (k >= WB_APPEND_MAX || bytes + e->size > WB_APPEND_BYTES);
}

static bool skipped(const struct batch *b, uint64_t id);

/* Is c the CREATE of a folder e changes?  That goes first. */
static bool creates(const struct journal_entry *c, const struct journal_entry *e)
{
	return c->op == JOURNAL_CREATE && c->dest &&
	       ((e->dest && strcmp(c->dest, e->dest) == 0) || (e->src && strcmp(c->dest, e->src) == 0));
}

static bool stopping(struct mailbox *mb)
{
	struct changes *c = mb->changes;
	bool r;

	pthread_mutex_lock(&c->lock);
	r = c->stopping && !c->urgent;
	pthread_mutex_unlock(&c->lock);
	return r;
}

/* Picks the next batch from the pending entries v (journal order): the
 * first entry free to go and the later ones of the same kind, source and
 * destination (or flags) -- but none an earlier entry left out, or a
 * member, could be mistaken for (the same message: changes to one message
 * keep their order; a look-alike brought into the same folder: one at a
 * time).  The number of members, their indexes in *members. */
static size_t pick_batch(struct mailbox *mb, const struct batch *b, struct journal_entry *v, size_t n,
			 size_t *members)
{
	struct journal_entry **left = malloc((n ? n : 1) * sizeof(*left));
	size_t k = 0, nleft = 0;
	uint64_t bytes = 0;

	if (!left)
		return 0;
	for (size_t i = 0; i < n; i++) {
		struct journal_entry *e = &v[i];
		bool ok = can_batch(e) && (!k || same_batch(&v[members[0]], e)) && !skipped(b, e->id);

		if (ok && batch_full(e, k, bytes))
			break;

		for (size_t j = 0; ok && j < k; j++)
			ok = !changes_confusable(&v[members[j]], e);
		for (size_t j = 0; ok && j < nleft; j++)
			ok = !changes_confusable(left[j], e) && !creates(left[j], e);
		if (ok && changes_busy(mb, e->id))
			ok = false;
		if (ok) {
			members[k++] = i;
			bytes += e->size;
		} else
			left[nleft++] = e;
	}
	free(left);
	return k;
}

/* A staged copy, mapped, with its flags. */
struct staged {
	struct flag_set fs;
	void *data;
	size_t len;
	int fd;
};

static int staged_load(struct batch *b, size_t i, struct staged *m)
{
	const struct journal_entry *e = b->e[i];
	struct stat st;
	int r = 0;

	*m = (struct staged){ .data = MAP_FAILED, .fd = -1 };
	if (e->text && (r = flags_parse(e->text, strlen(e->text), &m->fs)) < 0)
		return r;
	m->fd = journal_open_staged(b->mb->journal, e->staged);
	if (m->fd < 0 || fstat(m->fd, &st) < 0 || st.st_size == 0 ||
	    (m->data = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, m->fd, 0)) == MAP_FAILED)
		return m->fd < 0 ? m->fd : -EIO;
	m->len = (size_t)st.st_size;
	return 0;
}

static void staged_unload(struct staged *m)
{
	if (m->data != MAP_FAILED)
		munmap(m->data, m->len);
	if (m->fd >= 0)
		close(m->fd);
	flags_free(&m->fs);
}

/* Stores member i of an APPEND batch from its staged copy. */
static int append_one(struct imap_session *s, struct batch *b, size_t i)
{
	const struct journal_entry *e = b->e[i];
	struct staged m;
	int r;

	if (e->size > imap_append_limit(s))
		return -EFBIG;
	r = staged_load(b, i, &m);
	if (r == 0)
		r = imap_append(s, e->dest, e->text ? &m.fs : NULL, e->internaldate, m.data, m.len,
				&b->dest_uids[i]);
	staged_unload(&m);
	return r;
}

/* The whole batch in one MULTIAPPEND: 0 (all stored), 1 when it cannot be
 * tried or the server refused it (nothing stored: atomic), or -errno when
 * the connection died (each member then asked about). */
static int append_at_once(struct imap_session *s, struct batch *b)
{
	struct imap_append_item *items = calloc(b->n, sizeof(*items));
	struct staged *m = calloc(b->n, sizeof(*m));
	size_t loaded = 0;
	int r = items && m ? 0 : 1;

	for (size_t i = 0; r == 0 && i < b->n; i++) {
		m[i] = (struct staged){ .data = MAP_FAILED, .fd = -1 };
		loaded++;
		if (b->e[i]->size > imap_append_limit(s) || staged_load(b, i, &m[i]) < 0)
			r = 1;
		items[i] = (struct imap_append_item){ b->e[i]->text ? &m[i].fs : NULL, b->e[i]->internaldate,
						      m[i].data, m[i].len };
	}
	if (r == 0 && (r = imap_append_many(s, b->e[0]->dest, items, b->n, b->dest_uids)) < 0 &&
	    !imap_dead(s))
		r = 1; /* -ENOTSUP, or refused: one by one finds which */
	for (size_t i = 0; i < loaded; i++)
		staged_unload(&m[i]);
	free(items);
	free(m);
	return r;
}

/* The members of an APPEND batch: in one MULTIAPPEND where the server has
 * it, else (or when that is refused) one after another, each settled on its
 * own: b->err[i] is its outcome (1: not tried, the connection died
 * before). */
static int append_all(struct imap_session *s, struct batch *b)
{
	int first_err = 0, r = b->n > 1 ? append_at_once(s, b) : 1;

	if (r <= 0) {
		for (size_t i = 0; i < b->n; i++)
			b->err[i] = r;
		b->died = r < 0;
		b->died_all = r < 0;
		return r;
	}
	for (size_t i = 0; i < b->n; i++) {
		if (b->died) {
			b->err[i] = 1;
			continue;
		}
		b->err[i] = append_one(s, b, i);
		b->died = b->err[i] < 0 && imap_dead(s);
		b->died_at = i;
		if (b->err[i] < 0 && !first_err)
			first_err = b->err[i];
	}
	return first_err;
}

static int create_folder(struct imap_session *s, struct batch *b)
{
	int r = imap_create_folder(s, b->e[0]->dest);

	if (r == -EEXIST)
		r = 0;
	if (r == 0 && imap_subscribe(s, b->e[0]->dest, true) < 0)
		log_info("could not subscribe to %.100s", b->e[0]->dest);
	b->died = r < 0 && imap_dead(s);
	return r;
}

static void mark_present(const struct imap_meta *m, void *ctx)
{
	struct batch *b = ctx;

	for (size_t i = 0; i < b->n; i++)
		if (b->uids[i] == m->uid)
			b->err[i] = 0;
}

/* UID STORE says OK for UIDs no longer there: those (moved or expunged by
 * another client) are found by a FETCH after it, and reported. */
static int set_flags(struct imap_session *s, struct batch *b)
{
	int r = changes_apply_flags_set(s, b->uids, b->n, b->e[0]->text);

	if (r < 0)
		return r;
	for (size_t i = 0; i < b->n; i++)
		b->err[i] = -ENOENT;
	if (imap_fetch_meta_uids(s, b->uids, b->n, mark_present, b) < 0)
		for (size_t i = 0; i < b->n; i++)
			b->err[i] = 0; /* cannot tell: taken as set */
	return 0;
}

static int batch_fn(struct imap_session *s, const struct imap_folder_state *st, void *ctx)
{
	struct batch *b = ctx;
	const struct journal_entry *first = b->e[0];
	struct imap_folder_state dst = { 0 };
	int r;

	(void)st;
	b->ran = true;
	b->uidplus = imap_has_capability(s, "UIDPLUS");
	if (first->src && imap_expect_validity(s, first->src_validity) < 0) {
		b->stale = true;
		return -ESTALE;
	}
	if (first->op == JOURNAL_FLAGS) /* idempotent: no bound, no sent mark */
		return set_flags(s, b);
	if (first->op == JOURNAL_CREATE) /* likewise: ALREADYEXISTS is done */
		return create_folder(s, b);
	if (first->dest && (r = imap_folder_status(s, first->dest, &dst)) < 0) {
		b->died = imap_dead(s);
		b->dest_err = r;
		return r;
	}
	if (first->dest && !dst.uidnext) {
		log_warn("%.100s did not say its UIDNEXT: not moving mail into it", first->dest);
		return -EIO;
	}
	r = journal_sent(b->mb->journal, b->ids, b->n, dst.uidvalidity, dst.uidnext);
	if (r < 0)
		return r;
	b->sent = true;
	for (size_t i = 0; i < b->n; i++) {
		b->e[i]->flags |= JOURNAL_SENT;
		b->e[i]->dest_validity = dst.uidvalidity;
		b->e[i]->dest_uidnext = dst.uidnext;
	}
	if (first->op == JOURNAL_APPEND)
		return append_all(s, b);
	r = first->op == JOURNAL_MOVE ? imap_move_set(s, b->uids, b->n, first->dest, b->dest_uids)
				      : imap_expunge_set(s, b->uids, b->n);
	b->died = r < 0 && imap_dead(s);
	return r;
}

static void note_batch(struct mailbox *mb, const struct batch *b, double seconds, int r)
{
	struct changes *c = mb->changes;

	pthread_mutex_lock(&c->lock);
	snprintf(c->last_batch, WB_LINE, "%s of %zu from %.60s%s%.60s: %s in %.0f ms",
		 journal_op_name(b->e[0]->op), b->n, b->e[0]->src, b->e[0]->dest ? " to " : "",
		 b->e[0]->dest ? b->e[0]->dest : "", r == 0 ? "done" : strerror(-r), seconds * 1000);
	pthread_mutex_unlock(&c->lock);
}

static bool send_alone(struct mailbox *mb, struct journal_entry *e);

/* Each member of an APPEND batch by what became of it: stored; refused
 * (kept, reported); not tried (sent again); or, where the connection died,
 * asked.  false: the connection died. */
static bool settle_appends(struct mailbox *mb, struct batch *b)
{
	size_t ndone = 0;

	for (size_t i = 0; i < b->n; i++) {
		struct journal_entry *e = b->e[i];
		uint32_t new_uid = 0;

		if (b->err[i] == 0) {
			wb_show_done(mb, e, b->dest_uids[i]);
			b->ids[ndone++] = e->id;
		} else if (b->err[i] == 1) {
			journal_unsent(mb->journal, e->id); /* never went out */
		} else if (b->died && (i == b->died_at || b->died_all)) {
			settle(mb, e, changes_ask(mb, e, false, &new_uid), new_uid, 0);
		} else {
			settle(mb, e, OUTCOME_ROLLED_BACK, 0, b->err[i]);
		}
	}
	journal_done_many(mb->journal, b->ids, ndone);
	return !b->died;
}

static bool skipped(const struct batch *b, uint64_t id)
{
	for (size_t i = 0; b->skip && i < b->skip->n; i++)
		if (b->skip->ids[i] == id)
			return true;
	return false;
}

static void skip_all(struct batch *b)
{
	struct skip *sk = b->skip;

	if (!sk)
		return;
	if (sk->n + b->n > sk->cap) {
		size_t cap = (sk->n + b->n) * 2;
		uint64_t *v = realloc(sk->ids, cap * sizeof(*v));

		if (!v)
			return;
		sk->ids = v;
		sk->cap = cap;
	}
	for (size_t i = 0; i < b->n; i++)
		sk->ids[sk->n++] = b->e[i]->id;
}

/* Sends one batch and settles its members.  false: the server could not be
 * reached; the round ends. */
static bool send_batch(struct mailbox *mb, struct batch *b)
{
	struct timespec t0;
	size_t done = 0;
	int r;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (size_t i = 0; i < b->n; i++) {
		b->uids[i] = b->e[i]->src_uid;
		b->ids[i] = b->e[i]->id;
		b->dest_uids[i] = 0;
	}
	/* a session that had the source selected before another client
	 * deleted and re-created it may act on the new folder's UIDs while
	 * still believing the old UIDVALIDITY: selected afresh, the check in
	 * batch_fn sees the new one (one round trip a batch) */
	r = pool_run(mb->pool, b->e[0]->src, POOL_NO_RETRY | (b->e[0]->src ? POOL_FRESH_SELECT : 0), batch_fn,
		     b);
	note_batch(mb, b, wb_since(&t0), r);
	if (b->e[0]->op == JOURNAL_APPEND && b->sent)
		return settle_appends(mb, b);
	if (r == 0) {
		size_t ndone = 0;
		bool copyuid = b->uidplus; /* with UIDPLUS, no COPYUID: none moved */

		for (size_t i = 0; i < b->n; i++)
			copyuid |= b->dest_uids[i] != 0;
		for (size_t i = 0; i < b->n; i++) {
			/* a UID the server's COPYUID left out was not there to
			 * move: another client took it away (UID MOVE passes
			 * over it and says OK) */
			bool gone = b->e[0]->op == JOURNAL_MOVE && copyuid && !b->dest_uids[i];

			if (gone || (b->e[0]->op == JOURNAL_FLAGS && b->err[i] == -ENOENT)) {
				settle(mb, b->e[i], OUTCOME_GONE, 0, 0);
				continue;
			}
			wb_show_done(mb, b->e[i], b->dest_uids[i]);
			b->ids[ndone++] = b->e[i]->id;
		}
		journal_done_many(mb->journal, b->ids, ndone);
		return true;
	}
	if (b->stale || (!b->died && b->dest_err == -ENOENT)) {
		for (size_t i = 0; i < b->n; i++)
			settle(mb, b->e[i], b->stale ? OUTCOME_STALE : OUTCOME_ROLLED_BACK, 0, -ENOENT);
		return true;
	}
	if (!b->sent && b->e[0]->op != JOURNAL_FLAGS) {
		if (!b->ran && r == -ENOENT && b->e[0]->src) { /* the source folder is gone */
			for (size_t i = 0; i < b->n; i++)
				settle(mb, b->e[i], OUTCOME_STALE, 0, 0);
			return true;
		}
		if (!b->ran || b->died)
			return false;                /* cut: tried again in the next round */
		if (b->e[0]->op == JOURNAL_CREATE) { /* refused: the folder goes */
			settle(mb, b->e[0], OUTCOME_ROLLED_BACK, 0, r);
			return true;
		}
		skip_all(b); /* refused: the others go on; this one next round */
		return true;
	}
	/* sent, and the end unclear (or refused): each member asked apart --
	 * none of them could be mistaken for another (pick_batch) */
	for (size_t i = 0; i < b->n; i++) {
		uint32_t new_uid = 0;
		enum outcome o = changes_ask(mb, b->e[i], !b->died, &new_uid);

		if (o == OUTCOME_UNKNOWN)
			break;
		/* one member may have made the server refuse them all (a
		 * message expunged meanwhile): the others go again, alone */
		if (o == OUTCOME_ROLLED_BACK && !b->died && b->n > 1) {
			journal_unsent(mb->journal, b->e[i]->id);
			b->e[i]->flags &= (uint8_t)~JOURNAL_SENT;
			done += send_alone(mb, b->e[i]);
			continue;
		}
		done += settle(mb, b->e[i], o, new_uid, b->died ? 0 : r);
	}
	return done == b->n;
}

static bool send_alone(struct mailbox *mb, struct journal_entry *e)
{
	uint32_t uid, dest_uid;
	uint64_t id;
	int err;
	struct batch one = {
		.mb = mb, .e = &e, .n = 1, .uids = &uid, .dest_uids = &dest_uid, .ids = &id, .err = &err
	};

	return send_batch(mb, &one);
}

/* Entries marked sent whose batch ended unclear (here, or before a crash)
 * are asked about before anything else goes.  false: the server could not
 * be reached. */
static bool resolve_in_doubt(struct mailbox *mb, struct journal_entry *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint32_t new_uid = 0;
		enum outcome o;

		if (!wb_acked(&v[i]) || !wb_sent(&v[i]) || v[i].op == JOURNAL_FLAGS ||
		    changes_busy(mb, v[i].id))
			continue;
		if (stopping(mb))
			return false; /* the next mount asks */
		o = changes_ask(mb, &v[i], false, &new_uid);
		if (o == OUTCOME_UNKNOWN)
			return false;
		settle(mb, &v[i], o, new_uid, 0);
		/* this copy: sent again in this round (no longer marked sent),
		 * or settled, or still in doubt: passed over */
		v[i].flags = journal_flags(mb->journal, v[i].id) == JOURNAL_ACKED ? JOURNAL_ACKED : 0;
	}
	return true;
}

size_t wb_count_acked(struct mailbox *mb)
{
	struct journal_entry *v;
	size_t n, k = 0;

	if (!mb->journal || journal_count(mb->journal) == 0 || journal_pending(mb->journal, &v, &n) < 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		k += wb_acked(&v[i]);
		journal_entry_free(&v[i]);
	}
	free(v);
	return k;
}

/* One round: what was in doubt, then batch after batch.  The number of
 * acknowledged changes left. */
size_t wb_flush_round(struct mailbox *mb, bool *cut)
{
	struct skip skip = { 0 };
	bool reachable = true;

	for (int g = 0; g < WB_ROUND_GROUPS && reachable && !pool_is_down(mb->pool) && !stopping(mb); g++) {
		struct batch b = { .mb = mb, .skip = &skip };
		struct journal_entry *v;
		size_t n, *members;

		if (journal_count(mb->journal) == 0 || journal_pending(mb->journal, &v, &n) < 0)
			break;
		reachable = g > 0 || resolve_in_doubt(mb, v, n);
		members = reachable ? malloc((n ? n : 1) * sizeof(*members)) : NULL;
		b.n = members ? pick_batch(mb, &b, v, n, members) : 0;
		b.e = b.n ? calloc(b.n, sizeof(*b.e)) : NULL;
		b.uids = b.n ? calloc(b.n, sizeof(*b.uids)) : NULL;
		b.dest_uids = b.n ? calloc(b.n, sizeof(*b.dest_uids)) : NULL;
		b.ids = b.n ? calloc(b.n, sizeof(*b.ids)) : NULL;
		b.err = b.n ? calloc(b.n, sizeof(*b.err)) : NULL;
		if (b.e && b.uids && b.dest_uids && b.ids && b.err) {
			for (size_t i = 0; i < b.n; i++)
				b.e[i] = &v[members[i]];
			reachable = send_batch(mb, &b);
		}
		free(b.e);
		free(b.uids);
		free(b.dest_uids);
		free(b.ids);
		free(b.err);
		free(members);
		for (size_t i = 0; i < n; i++)
			journal_entry_free(&v[i]);
		free(v);
		if (!b.n)
			break;
	}
	free(skip.ids);
	*cut = !reachable || pool_is_down(mb->pool);
	return wb_count_acked(mb);
}

/* writeback.c - owns -o writeback (changes.h): queueing mv, rm and flag
 * changes as acknowledged journal entries, and the flusher thread that
 * sends them in batches -- one UID MOVE of a UID set for the moves from
 * one folder to another, one or two UID STOREs for the same flags on many
 * messages -- and settles each exactly once, also after a lost connection
 * or a crash; the waits of fsync and unmount; conflicts, for .status.
 *
 * An acknowledged entry (JOURNAL_ACKED) is the flusher's alone: the
 * resolver and listing syncs pass over it.  Before a batch's first byte
 * goes out its entries are marked sent, with the destination's UIDNEXT
 * (journal_sent); an entry marked sent whose batch ended unclear is asked
 * about (changes_ask) before anything is sent again, and a batch never
 * holds two changes whose outcomes could be mistaken for each other. */
#include "changes_p.h"
#include "imap/flags.h"
#include "inode.h"
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
#define WB_BURST_MS 200             /* nothing queued for this long: a burst is over */
#define WB_RETRY_S 5                /* a round that left changes unsent: next try */
#define WB_ROUND_GROUPS 1000        /* batches in one round, at most */
#define WB_NOWHERE UINT32_MAX       /* the folder of a message deleted for good */
#define WB_UPLOAD_BASE 0x80000000u  /* cp numbers for arrivals shown at mount */
#define WB_ASK_AGAIN_S 2.0          /* a cut change found not done is asked again this much later */
#define WB_CUT_RETRY_S 1            /* a round cut short: the next one */

static double since(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t->tv_sec) + (double)(now.tv_nsec - t->tv_nsec) / 1e9;
}

static bool acked(const struct journal_entry *e)
{
	return (e->flags & JOURNAL_ACKED) != 0;
}

static bool sent(const struct journal_entry *e)
{
	return (e->flags & JOURNAL_SENT) != 0;
}

/* ---- queueing (FUSE threads) ---- */

static int queue(struct mailbox *mb, struct journal_entry *e, uint64_t *id)
{
	int r;

	if (!mb->journal)
		return -EIO;
	e->flags = JOURNAL_ACKED;
	r = changes_add_claimed(mb, e, NULL, 0);
	if (r < 0)
		log_warn("%s of %.100s UID %u not done: %s", journal_op_name(e->op), e->src, e->src_uid,
			 r == -ENOSPC ? "the change journal is full" : strerror(-r));
	*id = e->id;
	return r;
}

int changes_queue_move(struct mailbox *mb, const struct change_msg *m, const struct change_dest *dest,
		       const char *name, uint64_t *id)
{
	/* the destination's UIDNEXT is read when the change is sent */
	struct journal_entry e = { .op = dest ? JOURNAL_MOVE : JOURNAL_EXPUNGE,
				   .src_validity = m->validity,
				   .src_uid = m->uid,
				   .size = m->size,
				   .internaldate = m->date };
	int r = -ENOMEM;

	if ((e.src = strdup(m->folder)) && (!dest || (e.dest = strdup(dest->folder))) &&
	    (e.aux = strdup(name)))
		r = queue(mb, &e, id);
	journal_entry_free(&e);
	return r;
}

int changes_queue_flags(struct mailbox *mb, const struct change_msg *m, const char *text, uint64_t *id)
{
	struct journal_entry e = { .op = JOURNAL_FLAGS, .src_validity = m->validity, .src_uid = m->uid };
	int r = -ENOMEM;

	if ((e.src = strdup(m->folder)) && (e.text = strdup(text)))
		r = queue(mb, &e, id);
	journal_entry_free(&e);
	return r;
}

int changes_queue_append(struct mailbox *mb, const struct change_dest *dest, const char *name,
			 const char *data, size_t len, uint64_t stored, const struct flag_set *flags,
			 int64_t date, uint64_t *id, char **staged)
{
	struct journal_entry e = { .op = JOURNAL_APPEND,
				   .flags = JOURNAL_ACKED,
				   .size = stored,
				   .internaldate = date ? date : (int64_t)time(NULL) };
	int r = -ENOMEM;

	*staged = NULL;
	if (!mb->journal)
		return -EIO;
	if ((e.dest = strdup(dest->folder)) && (e.aux = strdup(name)) &&
	    (!flags || (e.text = flags_format(flags))))
		r = changes_add_claimed(mb, &e, data, len);
	if (r == 0 && !(*staged = strdup(e.staged))) {
		journal_done(mb->journal, e.id); /* nobody was told it is stored */
		changes_release(mb, e.id);
		r = -ENOMEM;
	}
	if (r < 0 && r != -ENOMEM)
		log_warn("cp into %.100s not done: %s", dest->folder,
			 r == -ENOSPC ? "the change journal is full" : strerror(-r));
	*id = e.id;
	journal_entry_free(&e);
	return r;
}

int changes_queue_create(struct mailbox *mb, const char *server, uint64_t *id)
{
	struct journal_entry e = { .op = JOURNAL_CREATE };
	int r = -ENOMEM;

	if ((e.dest = strdup(server)))
		r = queue(mb, &e, id);
	journal_entry_free(&e);
	return r;
}

void changes_queued(struct mailbox *mb, uint64_t id)
{
	struct changes *c = mb->changes;
	struct timespec now;

	changes_release(mb, id);
	clock_gettime(CLOCK_MONOTONIC, &now);
	pthread_mutex_lock(&c->lock);
	if (!c->first_queued.tv_sec && !c->first_queued.tv_nsec)
		c->first_queued = now;
	c->last_queued = now;
	pthread_cond_signal(&c->flush_wake);
	pthread_mutex_unlock(&c->lock);
}

/* ---- what the mount shows ---- */

static struct folder *folder_by_server(struct mailbox *mb, const char *server)
{
	struct folder *found = NULL;

	pthread_rwlock_rdlock(&mb->tree_lock);
	for (size_t i = 0; i < mb->nfolders && !found; i++) {
		struct folder *f = mb->folders[i];
		const char *name = f ? f->server : NULL;

		if (name && f->present && strcmp(name, server) == 0)
			found = f;
	}
	pthread_rwlock_unlock(&mb->tree_lock);
	return found;
}

void changes_show_pending(struct mailbox *mb)
{
	struct journal_entry *v;
	size_t n;

	if (!mb->journal || journal_pending(mb->journal, &v, &n) < 0)
		return;
	for (size_t i = 0; i < n; i++) {
		const struct journal_entry *e = &v[i];
		struct folder *src =
			acked(e) && e->src && e->op != JOURNAL_FLAGS ? folder_by_server(mb, e->src) : NULL;
		struct folder *dest = src && e->dest ? folder_by_server(mb, e->dest) : NULL;
		char name[24];

		if (acked(e) && e->op == JOURNAL_APPEND && e->dest && e->staged &&
		    (dest = folder_by_server(mb, e->dest))) {
			/* no kernel inode is left from the cp: one of its own,
			 * above any upload number this mount gives */
			snprintf(name, sizeof(name), "%" PRIu64 ".eml", e->id % 1000000);
			mb_pending_add_copy(mb, e->id, dest->id, e->aux ? e->aux : name,
					    WB_UPLOAD_BASE | (uint32_t)(e->id & 0x7fffffff), e->staged,
					    e->size, e->internaldate);
		}
		if (src) {
			snprintf(name, sizeof(name), "%u.eml", e->src_uid);
			mb_forget_message(src, e->src_uid);
			mb_pending_add(mb, e->id, dest ? dest->id : WB_NOWHERE, e->aux ? e->aux : name,
				       src->id, e->src_uid);
		}
		journal_entry_free(&v[i]);
	}
	free(v);
}

static size_t count_acked(struct mailbox *mb);
static size_t flush_round(struct mailbox *mb, bool *cut);

void changes_flush_now(struct mailbox *mb)
{
	bool cut;

	if (count_acked(mb))
		flush_round(mb, &cut);
}

/* e is on the server: its arrival gives way to the names and inodes of a
 * message moved by the mount. */
/* A folder mkdir made: the server has it now (done), or refused it. */
static void show_created(struct mailbox *mb, const struct journal_entry *e, bool done)
{
	struct folder *f = folder_by_server(mb, e->dest);

	if (!f)
		return;
	pthread_rwlock_wrlock(&mb->tree_lock);
	f->pending_create = false;
	if (!done) {
		f->present = false;
		mb_reindex_locked(mb);
	}
	pthread_rwlock_unlock(&mb->tree_lock);
	mb_mark_stale(f);
}

static void show_done(struct mailbox *mb, const struct journal_entry *e, uint32_t new_uid)
{
	struct mb_arrival a;
	struct folder *to;

	if (e->op == JOURNAL_CREATE) {
		show_created(mb, e, true);
		return;
	}
	if (!mb_pending_get(mb, e->id, &a))
		return;
	/* the names and inode it has now first: no lookup finds neither */
	to = a.folder != WB_NOWHERE ? mb_folder(mb, a.folder) : NULL;
	if (to && new_uid) {
		mb_add_alias(to, a.name, new_uid);
		mb_add_forward(mb, inode_of_message(a.src_folder, a.src_uid), to->id, new_uid);
		mb_note_arrival(to, e->dest_validity, new_uid);
	}
	if (to)
		mb_mark_stale(to);
	free(a.name);
	if (mb_pending_remove(mb, e->id, &a))
		free(a.name);
}

/* e was not made: the message is shown where the server has it. */
static void show_undone(struct mailbox *mb, const struct journal_entry *e)
{
	struct mb_arrival a;
	struct folder *f;

	if (e->op == JOURNAL_CREATE) {
		show_created(mb, e, false);
		return;
	}
	if (!mb_pending_remove(mb, e->id, &a))
		return;
	if ((f = mb_folder(mb, a.src_folder)))
		mb_unforget_message(f, a.src_uid);
	if (a.folder != WB_NOWHERE && (f = mb_folder(mb, a.folder)))
		mb_mark_stale(f);
	free(a.name);
}

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
			return since(&c->asked[i].at) >= WB_ASK_AGAIN_S;
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
		show_done(mb, e, new_uid);
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
		show_undone(mb, e);
		return true;
	default:
		note_conflict(mb, e,
			      o == OUTCOME_STALE  ? "a folder was re-created (UIDVALIDITY changed)"
			      : o == OUTCOME_GONE ? "the message is gone: another client moved or deleted it"
						  : "the server refuses what would finish it",
			      o == OUTCOME_REFUSED ? -EPERM : -ENOENT);
		changes_conclude(mb, e, o, -EIO);
		show_undone(mb, e);
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
	size_t died_at;    /* APPEND: the member whose connection died */
	bool sent, died, stale;
	int dest_err; /* the destination's STATUS failed */
};

static bool can_batch(const struct journal_entry *e)
{
	return acked(e) && !sent(e) &&
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

/* Stores member i of an APPEND batch from its staged copy. */
static int append_one(struct imap_session *s, struct batch *b, size_t i)
{
	const struct journal_entry *e = b->e[i];
	struct flag_set fs = { 0 };
	struct stat st;
	void *data = MAP_FAILED;
	int fd, r = 0;

	if (e->size > imap_append_limit(s))
		return -EFBIG;
	if (e->text && (r = flags_parse(e->text, strlen(e->text), &fs)) < 0)
		return r;
	fd = journal_open_staged(b->mb->journal, e->staged);
	if (fd < 0 || fstat(fd, &st) < 0 || st.st_size == 0 ||
	    (data = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0)) == MAP_FAILED)
		r = fd < 0 ? fd : -EIO;
	if (r == 0)
		r = imap_append(s, e->dest, e->text ? &fs : NULL, e->internaldate, data, (size_t)st.st_size,
				&b->dest_uids[i]);
	if (data != MAP_FAILED)
		munmap(data, (size_t)st.st_size);
	if (fd >= 0)
		close(fd);
	flags_free(&fs);
	return r;
}

/* The members of an APPEND batch one after another, each settled on its
 * own: b->err[i] is its outcome (1: not tried, the connection died
 * before). */
static int append_all(struct imap_session *s, struct batch *b)
{
	int first_err = 0;

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
			show_done(mb, e, b->dest_uids[i]);
			b->ids[ndone++] = e->id;
		} else if (b->err[i] == 1) {
			journal_unsent(mb->journal, e->id); /* never went out */
		} else if (b->died && i == b->died_at) {
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
	r = pool_run(mb->pool, b->e[0]->src, POOL_NO_RETRY, batch_fn, b);
	note_batch(mb, b, since(&t0), r);
	if (b->e[0]->op == JOURNAL_APPEND && b->sent)
		return settle_appends(mb, b);
	if (r == 0) {
		size_t ndone = 0;

		for (size_t i = 0; i < b->n; i++) {
			if (b->e[0]->op == JOURNAL_FLAGS && b->err[i] == -ENOENT) {
				settle(mb, b->e[i], OUTCOME_GONE, 0, 0);
				continue;
			}
			show_done(mb, b->e[i], b->dest_uids[i]);
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

		if (!acked(&v[i]) || !sent(&v[i]) || v[i].op == JOURNAL_FLAGS || changes_busy(mb, v[i].id))
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

static size_t count_acked(struct mailbox *mb)
{
	struct journal_entry *v;
	size_t n, k = 0;

	if (!mb->journal || journal_count(mb->journal) == 0 || journal_pending(mb->journal, &v, &n) < 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		k += acked(&v[i]);
		journal_entry_free(&v[i]);
	}
	free(v);
	return k;
}

/* One round: what was in doubt, then batch after batch.  The number of
 * acknowledged changes left. */
static size_t flush_round(struct mailbox *mb, bool *cut)
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
	return count_acked(mb);
}

/* ---- the flusher ---- */

static bool zero(const struct timespec *t)
{
	return !t->tv_sec && !t->tv_nsec;
}

/* Is a round due, c->lock held?  *wait: else, seconds until one may be. */
static bool due_locked(struct mailbox *mb, double *wait, const struct timespec *retry_at)
{
	struct changes *c = mb->changes;
	double delay = mb->opt.writeback_delay, burst = WB_BURST_MS / 1000.0;

	*wait = 1;
	if (c->urgent || (!zero(retry_at) && since(retry_at) >= 0))
		return true;
	if (zero(&c->first_queued))
		return false;
	if (since(&c->first_queued) >= delay || since(&c->last_queued) >= (burst < delay ? burst : delay))
		return true;
	*wait = burst - since(&c->last_queued);
	if (delay - since(&c->first_queued) < *wait)
		*wait = delay - since(&c->first_queued);
	if (*wait < 0.001)
		*wait = 0.001;
	return false;
}

static void *flusher(void *arg)
{
	struct mailbox *mb = arg;
	struct changes *c = mb->changes;
	struct timespec retry_at, until;
	double wait;

	clock_gettime(CLOCK_MONOTONIC, &retry_at); /* what an earlier mount left */
	pthread_mutex_lock(&c->lock);
	while (!c->stopping || c->urgent) {
		size_t left;
		bool cut;

		if (!due_locked(mb, &wait, &retry_at)) {
			clock_gettime(CLOCK_MONOTONIC, &until);
			until.tv_sec += (time_t)wait;
			until.tv_nsec += (long)((wait - (double)(time_t)wait) * 1e9);
			if (until.tv_nsec >= 1000000000L) {
				until.tv_sec++;
				until.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&c->flush_wake, &c->lock, &until);
			continue;
		}
		c->first_queued = (struct timespec){ 0 };
		c->urgent = false;
		pthread_mutex_unlock(&c->lock);
		left = flush_round(mb, &cut);
		pthread_mutex_lock(&c->lock);
		c->rounds++;
		c->unsent = left;
		retry_at = (struct timespec){ 0 };
		if (left) { /* cut short or refused: again, soon or later */
			clock_gettime(CLOCK_MONOTONIC, &retry_at);
			retry_at.tv_sec += cut ? WB_CUT_RETRY_S : WB_RETRY_S;
		}
		pthread_cond_broadcast(&c->flushed);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

/* ---- waiting ---- */

static int mount_timeout(const struct mailbox *mb)
{
	return mb->opt.timeout > 0 ? mb->opt.timeout : MB_DEFAULT_TIMEOUT;
}

static void deadline_in(struct timespec *t, double seconds)
{
	clock_gettime(CLOCK_MONOTONIC, t);
	t->tv_sec += (time_t)seconds;
}

/* Waits for one flusher round to end (or for a second); c->lock held. */
static void await_round_locked(struct changes *c, bool push)
{
	unsigned long rounds = c->rounds;
	struct timespec t;

	if (push) { /* once, and again only after a round that got on:
		     * a round that cannot is not run back to back */
		c->urgent = true;
		pthread_cond_signal(&c->flush_wake);
	}
	deadline_in(&t, 1);
	while (c->rounds == rounds && c->flusher_running)
		if (pthread_cond_timedwait(&c->flushed, &c->lock, &t) != 0)
			break;
}

int changes_wait_entry(struct mailbox *mb, uint64_t id)
{
	struct changes *c = mb->changes;
	struct timespec start;
	int r = 0;

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (bool first = true;; first = false) {
		bool down = pool_is_down(mb->pool); /* pool.lock before changes.lock */

		if (!journal_is_pending(mb->journal, id))
			break;
		if (since(&start) > mount_timeout(mb) || down) {
			r = -EIO;
			break;
		}
		pthread_mutex_lock(&c->lock);
		if (c->flusher_running)
			await_round_locked(c, first);
		else
			r = -EIO;
		pthread_mutex_unlock(&c->lock);
		if (r < 0)
			break;
	}
	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < WB_CONFLICTS && r == 0 && i < c->conflicts; i++)
		if (c->conflict_id[i] == id)
			r = c->conflict_err[i];
	pthread_mutex_unlock(&c->lock);
	return r;
}

int changes_wait_all(struct mailbox *mb, bool log_left)
{
	struct changes *c = mb->changes;
	size_t left = c && mb->journal ? count_acked(mb) : 0, before = SIZE_MAX;
	struct timespec start;
	unsigned long conflicts;
	bool running = true;
	int r = 0;

	if (!left)
		return 0;
	clock_gettime(CLOCK_MONOTONIC, &start);
	pthread_mutex_lock(&c->lock);
	conflicts = c->conflicts;
	pthread_mutex_unlock(&c->lock);
	while (left && running && since(&start) < mount_timeout(mb) && !pool_is_down(mb->pool)) {
		pthread_mutex_lock(&c->lock);
		running = c->flusher_running;
		if (running)
			await_round_locked(c, left < before);
		pthread_mutex_unlock(&c->lock);
		before = left;
		left = count_acked(mb);
	}
	pthread_mutex_lock(&c->lock);
	if (c->conflicts != conflicts)
		r = c->last_conflict;
	pthread_mutex_unlock(&c->lock);
	if (left && log_left)
		log_warn("unmount: %zu changes are not on the server yet; they stay in the journal and are "
			 "sent by the next mount with this cache_dir (MOUNT/.status lists them)",
			 left);
	return left ? -EIO : r;
}

char *changes_pending_flags(struct mailbox *mb, const char *folder, uint32_t validity, uint32_t uid)
{
	struct journal_entry *v;
	char *text = NULL;
	size_t n;

	if (!mb->journal || journal_count(mb->journal) == 0 || journal_pending(mb->journal, &v, &n) < 0)
		return NULL;
	for (size_t i = n; i-- > 0;) {
		const struct journal_entry *e = &v[i];

		if (!text && e->op == JOURNAL_FLAGS && e->src_uid == uid && e->src_validity == validity &&
		    e->text && strcmp(e->src, folder) == 0)
			text = strdup(e->text);
	}
	for (size_t i = 0; i < n; i++)
		journal_entry_free(&v[i]);
	free(v);
	return text;
}

void changes_status(struct mailbox *mb, FILE *out)
{
	struct changes *c = mb->changes;
	bool down = pool_is_down(mb->pool), running;
	size_t unsent = count_acked(mb);

	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	running = c->flusher_running;
	if (mb->opt.writeback || running)
		fprintf(out, "writeback: %s, delay %d s, %zu unsent, %s\n", mb->opt.writeback ? "on" : "off",
			mb->opt.writeback_delay, unsent,
			down     ? "offline"
			: unsent ? "flushing"
				 : "idle");
	if (c->last_batch[0])
		fprintf(out, "writeback last batch: %s\n", c->last_batch);
	for (unsigned long i = c->conflicts > WB_CONFLICTS ? c->conflicts - WB_CONFLICTS : 0;
	     i < c->conflicts; i++)
		fprintf(out, "writeback conflict: %s\n", c->conflict[i % WB_CONFLICTS]);
	pthread_mutex_unlock(&c->lock);
}

/* ---- start and stop ---- */

void wb_init(struct changes *c)
{
	pthread_condattr_t attr;

	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&c->flush_wake, &attr);
	pthread_cond_init(&c->flushed, &attr);
	pthread_condattr_destroy(&attr);
}

void wb_destroy(struct changes *c)
{
	free(c->asked);
	pthread_cond_destroy(&c->flush_wake);
	pthread_cond_destroy(&c->flushed);
}

int wb_start(struct mailbox *mb)
{
	struct changes *c = mb->changes;

	/* also without -o writeback when an earlier mount left some: an
	 * acknowledged change is never dropped */
	if (!mb->opt.writeback && !count_acked(mb))
		return 0;
	pthread_mutex_lock(&c->lock);
	c->flusher_running = pthread_create(&c->flusher, NULL, flusher, mb) == 0;
	pthread_mutex_unlock(&c->lock);
	if (!c->flusher_running)
		return -EAGAIN;
	return 0;
}

void wb_stop(struct mailbox *mb)
{
	struct changes *c = mb->changes;

	if (!c->flusher_running)
		return;
	changes_wait_all(mb, true); /* unmount: sent first, within the timeout */
	pthread_mutex_lock(&c->lock);
	c->stopping = true;
	c->urgent = false;
	pthread_cond_signal(&c->flush_wake);
	pthread_mutex_unlock(&c->lock);
	pthread_join(c->flusher, NULL);
	pthread_mutex_lock(&c->lock);
	c->flusher_running = false;
	pthread_mutex_unlock(&c->lock);
}

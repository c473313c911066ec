/* changes.c - owns making changes to messages exactly once (see changes.h):
 * recording each in the journal before it is sent, sending it, and
 * settling pending entries (what the server says of each is asked in
 * changes_check.c). */
#include "changes_p.h"
#include "util/log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RESOLVE_INTERVAL 5 /* seconds between the resolver's rounds */

/* ---- entries a thread works on ---- */

static struct changes *state_of(struct mailbox *mb)
{
	return mb->changes;
}

static bool claim_locked(struct changes *c, uint64_t id)
{
	int free_slot = -1;

	for (int i = 0; i < BUSY_MAX; i++) {
		if (c->busy[i] == id)
			return false;
		if (!c->busy[i] && free_slot < 0)
			free_slot = i;
	}
	if (free_slot < 0)
		return false;
	c->busy[free_slot] = id;
	return true;
}

/* Claims pending entry id for this thread; false when another has it, or
 * when it is no longer pending: a copy of the pending list goes out of date
 * while its first entries are worked on, and an entry its own thread has
 * concluded meanwhile (a cp told it succeeded) must not be resolved again. */
static bool claim(struct mailbox *mb, uint64_t id)
{
	struct changes *c = state_of(mb);
	bool ok;

	pthread_mutex_lock(&c->lock);
	ok = journal_is_pending(mb->journal, id) && claim_locked(c, id);
	pthread_mutex_unlock(&c->lock);
	return ok;
}

/* Records e and claims it in one step, so that no resolver can take it
 * for a change never sent (the journal's lock nests inside ours). */
int changes_add_claimed(struct mailbox *mb, struct journal_entry *e, const void *data, size_t len)
{
	struct changes *c = state_of(mb);
	int r;

	pthread_mutex_lock(&c->lock);
	r = journal_add(mb->journal, e, data, len);
	if (r == 0 && !claim_locked(c, e->id))
		log_warn("change %" PRIu64 " not marked busy: more than %d changes at once", e->id, BUSY_MAX);
	pthread_mutex_unlock(&c->lock);
	return r;
}

void changes_release(struct mailbox *mb, uint64_t id)
{
	struct changes *c = state_of(mb);

	pthread_mutex_lock(&c->lock);
	for (int i = 0; i < BUSY_MAX; i++)
		if (c->busy[i] == id)
			c->busy[i] = 0;
	pthread_mutex_unlock(&c->lock);
}

/* ---- one entry, start to end ---- */

static const char *gone_reason(const struct journal_entry *e)
{
	if (e->op == JOURNAL_APPEND)
		return "the destination folder was deleted or re-created: the message was not stored";
	return "the message is neither in its folder nor arrived in the destination: another client "
	       "moved or deleted it (or a folder was re-created)";
}

/* Settles an outcome: the entry is forgotten or parked, or stays pending
 * (OUTCOME_UNKNOWN).  The errno the caller sees: 0 when the change is
 * done, `refused` (the server's answer) when it was rolled back. */
int changes_conclude(struct mailbox *mb, const struct journal_entry *e, enum outcome o, int refused)
{
	switch (o) {
	case OUTCOME_COMPLETED:
		/* not forgotten on disk, the entry stays pending, and a pending
		 * APPEND is taken back by the resolver: the caller must hear
		 * that it failed (a move found done again is only forgotten) */
		return journal_done(mb->journal, e->id) < 0 ? -EIO : 0;
	case OUTCOME_ROLLED_BACK:
		journal_done(mb->journal, e->id);
		return refused < 0 ? refused : -EIO;
	case OUTCOME_REFUSED:
		if (e->op == JOURNAL_FLAGS) {
			journal_done(mb->journal, e->id);
			return refused < 0 ? refused : -EPERM;
		}
		log_warn("the %s of %.100s UID %u (to %.100s) is left as the server has it (see "
			 "unresolved.txt)",
			 journal_op_name(e->op), e->src ? e->src : "-", e->src_uid, e->dest ? e->dest : "-");
		journal_park(mb->journal, e->id,
			     "the server refuses the command that would finish or undo it: the message is "
			     "left as the server has it (in the source, and maybe in the destination too)");
		return -EIO;
	case OUTCOME_GONE:
	case OUTCOME_STALE:
		if (e->op == JOURNAL_FLAGS) { /* no mail at stake: nothing to keep */
			log_info("flags of %.100s UID %u not set: the message is gone", e->src, e->src_uid);
			journal_done(mb->journal, e->id);
			return -ENOENT;
		}
		log_warn("the %s of %.100s UID %u (to %.100s) cannot be resolved: %s; details in the "
			 "journal's unresolved.txt",
			 journal_op_name(e->op), e->src ? e->src : "-", e->src_uid, e->dest ? e->dest : "-",
			 gone_reason(e));
		journal_park(mb->journal, e->id, gone_reason(e));
		return -ENOENT;
	default:
		return -EIO;
	}
}

struct send_job {
	struct mailbox *mb;
	struct journal_entry *e;
	const char *data; /* APPEND */
	size_t len;
	const struct flag_set *flags;
	bool recorded; /* the journal has it: from here on, resolve */
	bool died;     /* the connection died during the command */
	uint32_t new_uid;
};

/* Records e, after reading the destination's UIDVALIDITY and UIDNEXT (the
 * lower bound of where it can arrive). */
static int record(struct imap_session *s, struct send_job *job)
{
	struct imap_folder_state dst;
	int r = 0;

	if (!job->mb->journal)
		return 0; /* no journal (unit tests): sent as it is */
	/* the model's fresh knowledge spares a round trip; else ask */
	if (job->e->dest && !job->e->dest_uidnext && (r = imap_folder_status(s, job->e->dest, &dst)) == 0) {
		job->e->dest_validity = dst.uidvalidity;
		job->e->dest_uidnext = dst.uidnext;
		if (!dst.uidnext) { /* without it an older copy could pass for this one */
			log_warn("%.100s did not say its UIDNEXT: not changing it", job->e->dest);
			r = -EIO;
		}
	}
	if (r == 0)
		r = changes_add_claimed(job->mb, job->e, job->data, job->data ? job->len : 0);
	if (r < 0) {
		log_warn("%s of %.100s not sent: %s", journal_op_name(job->e->op),
			 job->e->src ? job->e->src : job->e->dest,
			 r == -ENOSPC ? "the change journal is full" : strerror(-r));
		return r;
	}
	job->recorded = true;
	return 0;
}

static int send_fn(struct imap_session *s, const struct imap_folder_state *st, void *ctx)
{
	struct send_job *job = ctx;
	struct journal_entry *e = job->e;
	int r = 0;

	(void)st;
	if (e->op != JOURNAL_APPEND && imap_expect_validity(s, e->src_validity) < 0) {
		log_warn("UIDVALIDITY of %.100s changed: not touching a message by a stale UID", e->src);
		return -EIO;
	}
	/* the server's APPENDLIMIT, first known now: refused before anything */
	if (e->op == JOURNAL_APPEND && e->size > imap_append_limit(s))
		return -EFBIG;
	if (!job->recorded && (r = record(s, job)) < 0) {
		job->died = imap_dead(s); /* nothing sent: safe to try again */
		return r;
	}
	switch (e->op) {
	case JOURNAL_MOVE:
		r = imap_move(s, e->src_uid, e->dest, &job->new_uid);
		break;
	case JOURNAL_EXPUNGE:
		r = imap_delete_message(s, e->src_uid);
		break;
	case JOURNAL_FLAGS:
		r = changes_apply_flags(s, e);
		break;
	default:
		r = imap_append(s, e->dest, job->flags, e->internaldate, job->data, job->len, &job->new_uid);
		break;
	}
	job->died = r < 0 && imap_dead(s);
	return r;
}

static bool touches(const struct journal_entry *e, const char *folder)
{
	return !folder || (e->src && strcmp(e->src, folder) == 0) ||
	       (e->dest && strcmp(e->dest, folder) == 0);
}

bool changes_busy(struct mailbox *mb, uint64_t id)
{
	struct changes *c = state_of(mb);
	bool found = false;

	pthread_mutex_lock(&c->lock);
	for (int i = 0; i < BUSY_MAX && !found; i++)
		found = c->busy[i] == id;
	pthread_mutex_unlock(&c->lock);
	return found;
}

/* Could pending entry p and the new change e be told apart on the server?
 * Not when they change the same message, nor when both bring a message of
 * the same size (0: unknown) and date into one folder: each one's arrival
 * could pass for the other's (a cp retried after a failed one; a
 * duplicate moved after its twin). */
bool changes_confusable(const struct journal_entry *p, const struct journal_entry *e)
{
	if (p->src && e->src && p->src_uid == e->src_uid && p->src_validity == e->src_validity &&
	    strcmp(p->src, e->src) == 0)
		return true;
	return p->dest && e->dest && strcmp(p->dest, e->dest) == 0 && p->internaldate == e->internaldate &&
	       (p->size == e->size || !p->size || !e->size);
}

/* The first pending entry (not being sent by another thread: that one is
 * its thread's to resolve) confusable with e, copied into *out; false if
 * none. */
static bool find_confusable(struct mailbox *mb, const struct journal_entry *e, struct journal_entry *out)
{
	struct journal_entry *v;
	bool found = false;
	size_t n;

	if (journal_pending(mb->journal, &v, &n) < 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!found && changes_confusable(&v[i], e) && !changes_busy(mb, v[i].id)) {
			*out = v[i];
			found = true;
			continue; /* moved out: not freed here */
		}
		journal_entry_free(&v[i]);
	}
	free(v);
	return found;
}

/* A pending change e could be confused with is resolved before e is sent;
 * -EIO while it cannot be.  Only such a change holds e back: unrelated
 * pending ones (another message, another size or date) are left to the
 * resolver, so one lost connection does not stop every change to a
 * folder. */
static int settle_first(struct mailbox *mb, const struct journal_entry *e)
{
	struct journal_entry p;
	bool stuck;

	if (!mb->journal || journal_count(mb->journal) == 0 || !find_confusable(mb, e, &p))
		return 0;
	if (wb_acked(&p)) /* the flusher's (-o writeback): it is sent, then e */
		changes_wait_entry(mb, p.id);
	else
		changes_settle(mb, p.src ? p.src : p.dest);
	journal_entry_free(&p);
	stuck = find_confusable(mb, e, &p);
	if (stuck) {
		log_warn("an earlier %s of %.100s UID %u is not resolved yet: not sending one it could "
			 "be mistaken for until it is",
			 journal_op_name(p.op), p.src ? p.src : p.dest, p.src_uid);
		journal_entry_free(&p);
	}
	return stuck ? -EIO : 0;
}

/* Sends e; unless it plainly succeeded, resolves it.  A change whose
 * connection died and that turns out not done is sent once more. */
static int send_and_resolve(struct mailbox *mb, struct send_job *job)
{
	struct journal_entry *e = job->e;
	const char *folder = e->op == JOURNAL_APPEND ? NULL : e->src;
	/* a session that had the folder selected before another client
	 * re-created it may act on the new folder's UIDs while believing the
	 * old UIDVALIDITY: before an EXPUNGE, which would destroy the wrong
	 * message, it is selected afresh */
	unsigned how = POOL_NO_RETRY | (e->op == JOURNAL_EXPUNGE ? POOL_FRESH_SELECT : 0);
	enum outcome o = OUTCOME_UNKNOWN;
	uint32_t new_uid = 0;
	int r = settle_first(mb, e);

	if (r < 0)
		return r;
	r = pool_run(mb->pool, folder, how, send_fn, job);

	if (r < 0 && !job->recorded && job->died) {
		job->died = false; /* lost before anything was sent */
		r = pool_run(mb->pool, folder, how, send_fn, job);
	}
	for (int attempt = 0; job->recorded && r < 0; attempt++) {
		if (job->died)
			log_warn("connection lost during the %s of %.100s UID %u: checking what happened",
				 journal_op_name(e->op), e->src ? e->src : e->dest, e->src_uid);
		o = changes_ask(mb, e, !job->died, &new_uid);
		if (o != OUTCOME_ROLLED_BACK || !job->died || attempt > 0)
			break;
		job->died = false; /* not done, and the caller still waits */
		r = pool_run(mb->pool, folder, how, send_fn, job);
	}
	if (job->recorded) {
		if (r == 0)
			o = OUTCOME_COMPLETED;
		else if (o == OUTCOME_COMPLETED)
			job->new_uid = new_uid;
		r = changes_conclude(mb, e, o, job->died ? -EIO : r);
		changes_release(mb, e->id);
	}
	return r;
}

int changes_move(struct mailbox *mb, const struct change_msg *m, const struct change_dest *dest,
		 uint32_t *new_uid)
{
	struct journal_entry e = { .op = dest ? JOURNAL_MOVE : JOURNAL_EXPUNGE,
				   .src_validity = m->validity,
				   .src_uid = m->uid,
				   .size = m->size,
				   .internaldate = m->date,
				   .dest_validity = dest ? dest->validity : 0,
				   .dest_uidnext = dest ? dest->next_uid : 0 };
	struct send_job job = { .mb = mb, .e = &e };
	int r = -ENOMEM;

	*new_uid = 0;
	if ((e.src = strdup(m->folder)) && (!dest || (e.dest = strdup(dest->folder)))) {
		r = send_and_resolve(mb, &job);
		*new_uid = job.new_uid;
	}
	journal_entry_free(&e);
	return r;
}

int changes_flags(struct mailbox *mb, const struct change_msg *m, const char *text)
{
	struct journal_entry e = { .op = JOURNAL_FLAGS, .src_validity = m->validity, .src_uid = m->uid };
	struct send_job job = { .mb = mb, .e = &e };
	int r = -ENOMEM;

	if ((e.src = strdup(m->folder)) && (e.text = strdup(text)))
		r = send_and_resolve(mb, &job);
	journal_entry_free(&e);
	return r;
}

int changes_append(struct mailbox *mb, const struct change_dest *dest, const char *data, size_t len,
		   uint64_t stored, const struct flag_set *flags, int64_t date, uint32_t *new_uid)
{
	struct journal_entry e = { .op = JOURNAL_APPEND,
				   .size = stored,
				   .dest_validity = dest->validity,
				   .dest_uidnext = dest->next_uid,
				   .internaldate = date ? date : (int64_t)time(NULL) };
	struct send_job job = { .mb = mb, .e = &e, .data = data, .len = len, .flags = flags };
	int r = -ENOMEM;

	*new_uid = 0;
	if ((e.dest = strdup(dest->folder))) {
		r = send_and_resolve(mb, &job);
		*new_uid = job.new_uid;
	}
	journal_entry_free(&e);
	return r;
}

/* ---- pending entries ---- */

/* An entry found pending (an earlier mount, or a call that could not
 * learn its outcome): whoever asked has had an answer, so nothing is sent
 * again; it is found out, and a half-done move finished. */
struct withdraw_job {
	const struct journal_entry *e;
	uint32_t uid;
};

static int withdraw_fn(struct imap_session *s, const struct imap_folder_state *st, void *ctx)
{
	struct withdraw_job *job = ctx;
	int r = changes_select_checked(s, job->e->dest, job->e->dest_validity);

	(void)st;
	return r < 0 ? r : r == 1 ? 0 : imap_delete_message(s, job->uid);
}

/* A pending APPEND's caller was never told it succeeded (its cp failed, or
 * imapfs stopped): it must not be stored, or a retried cp would store it
 * twice.  What did arrive is taken back; the bytes stay in the journal
 * directory for the user either way. */
static enum outcome settle_append(struct mailbox *mb, const struct journal_entry *e, enum outcome o,
				  uint32_t new_uid)
{
	struct withdraw_job job = { .e = e, .uid = new_uid };

	if (o == OUTCOME_COMPLETED && pool_run(mb->pool, NULL, 0, withdraw_fn, &job) < 0)
		return OUTCOME_UNKNOWN;
	if (o == OUTCOME_COMPLETED || o == OUTCOME_ROLLED_BACK) {
		log_warn("a cp into %.100s that failed is not stored%s; its message is kept in the "
			 "journal directory (unresolved.txt names it)",
			 e->dest, o == OUTCOME_COMPLETED ? " (it had arrived meanwhile: taken back)" : "");
		journal_park(mb->journal, e->id,
			     o == OUTCOME_COMPLETED ? "cp failed (its connection or imapfs was lost); the "
						      "message arrived meanwhile "
						      "and was taken back: it is not stored; its bytes are "
						      "kept next to this file"
						    : "cp failed (its connection or imapfs was lost): the "
						      "message was not stored; "
						      "its bytes are kept next to this file");
		return o;
	}
	changes_conclude(mb, e, o, -EIO);
	return o;
}

static enum outcome settle_one(struct mailbox *mb, const struct journal_entry *e)
{
	uint32_t new_uid = 0;
	enum outcome o = changes_ask(mb, e, false, &new_uid);

	if (e->op == JOURNAL_APPEND)
		return settle_append(mb, e, o, new_uid);
	if (o != OUTCOME_UNKNOWN)
		log_info("pending %s of %.100s UID %u: %s", journal_op_name(e->op), e->src ? e->src : e->dest,
			 e->src_uid,
			 o == OUTCOME_COMPLETED     ? "done"
			 : o == OUTCOME_ROLLED_BACK ? "not done"
						    : "unresolvable");
	changes_conclude(mb, e, o, -EIO);
	return o;
}

/* Do e and h change a folder in common? */
static bool share_folder(const struct journal_entry *e, const struct journal_entry *h)
{
	return (h->src && touches(e, h->src)) || (h->dest && touches(e, h->dest));
}

#define HELD_MAX 8 /* entries left unresolved before a round gives up */

/* Entries the server could not be asked about stay pending, and so does
 * every later entry that changes one of their folders (a folder's changes
 * are resolved in the order they were made); the others go on -- one
 * folder the server stalls on holds up no other folder's changes.  An
 * unreachable server ends the round. */
size_t changes_settle(struct mailbox *mb, const char *folder)
{
	const struct journal_entry *held[HELD_MAX];
	struct journal_entry *v;
	size_t n, nheld = 0;

	if (!mb->journal || journal_count(mb->journal) == 0 || journal_pending(mb->journal, &v, &n) < 0)
		return mb->journal ? journal_count(mb->journal) : 0;
	for (size_t i = 0; i < n && nheld < HELD_MAX && !pool_is_down(mb->pool); i++) {
		bool after_held = false;

		for (size_t k = 0; k < nheld && !after_held; k++)
			after_held = share_folder(&v[i], held[k]);
		if (wb_acked(&v[i])) {
			continue; /* the flusher's: sent and resolved there */
		} else if (after_held) {
			held[nheld++] = &v[i];
		} else if (touches(&v[i], folder) && claim(mb, v[i].id)) {
			if (settle_one(mb, &v[i]) == OUTCOME_UNKNOWN)
				held[nheld++] = &v[i];
			changes_release(mb, v[i].id);
		}
	}
	for (size_t i = 0; i < n; i++)
		journal_entry_free(&v[i]);
	free(v);
	return journal_count(mb->journal);
}

int changes_leaving(struct mailbox *mb, const char *folder, uint32_t validity, uint32_t **uids, size_t *n)
{
	struct journal_entry *v;
	size_t count, k = 0;

	*uids = NULL;
	*n = 0;
	if (!mb->journal || journal_count(mb->journal) == 0)
		return 0;
	if (journal_pending(mb->journal, &v, &count) < 0)
		return -ENOMEM;
	*uids = malloc((count ? count : 1) * sizeof(**uids));
	for (size_t i = 0; i < count; i++) {
		const struct journal_entry *e = &v[i];

		if (*uids && (e->op == JOURNAL_MOVE || e->op == JOURNAL_EXPUNGE) && e->src &&
		    strcmp(e->src, folder) == 0 && e->src_validity == validity)
			(*uids)[k++] = e->src_uid;
		journal_entry_free(&v[i]);
	}
	free(v);
	if (!*uids)
		return -ENOMEM;
	qsort(*uids, k, sizeof(**uids), listing_cmp_uid);
	*n = k;
	return 0;
}

/* ---- the background resolver ---- */

static void *resolver(void *arg)
{
	struct mailbox *mb = arg;
	struct changes *c = state_of(mb);
	struct timespec until;

	pthread_mutex_lock(&c->lock);
	while (!c->stopping) {
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += RESOLVE_INTERVAL;
		pthread_cond_timedwait(&c->wake, &c->lock, &until);
		if (c->stopping)
			break;
		pthread_mutex_unlock(&c->lock);
		if (journal_count(mb->journal) && !pool_is_down(mb->pool))
			changes_settle(mb, NULL);
		pthread_mutex_lock(&c->lock);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

int changes_init(struct mailbox *mb)
{
	struct changes *c = calloc(1, sizeof(*c));
	pthread_condattr_t attr;

	if (!c)
		return -ENOMEM;
	pthread_mutex_init(&c->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&c->wake, &attr);
	pthread_condattr_destroy(&attr);
	wb_init(c);
	mb->changes = c;
	return 0;
}

void changes_free(struct mailbox *mb)
{
	struct changes *c = state_of(mb);

	if (!c)
		return;
	wb_destroy(c);
	pthread_cond_destroy(&c->wake);
	pthread_mutex_destroy(&c->lock);
	free(c);
	mb->changes = NULL;
}

int changes_start(struct mailbox *mb)
{
	struct changes *c = state_of(mb);

	if (!c || !mb->journal)
		return 0;
	if (pthread_create(&c->thread, NULL, resolver, mb) != 0)
		return -EAGAIN;
	c->running = true;
	return wb_start(mb);
}

void changes_stop(struct mailbox *mb)
{
	struct changes *c = state_of(mb);

	if (!c || !c->running)
		return;
	wb_stop(mb);
	pthread_mutex_lock(&c->lock);
	c->stopping = true;
	pthread_cond_signal(&c->wake);
	pthread_mutex_unlock(&c->lock);
	pthread_join(c->thread, NULL);
	c->running = false;
}

/* listing_sync.c - owns the sync of one folder's listing with the server:
 * a full listing streamed in FETCH chunks, or an incremental one from the
 * last listing (new UIDs, CONDSTORE flag changes, QRESYNC VANISHED or the
 * UID set when something went).  It holds no lock: it runs on pool sessions
 * and hands its result to listing_refresh.c, which publishes it. */
#include "mailbox_p.h"
#include "listing_stream.h"
#include "util/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Messages per listing FETCH: each answer streams (memory stays small) and
 * is bounded by the operation's byte budget (~150 bytes a message); a
 * folder of 20,000 lists in one round trip. */
#define FETCH_CHUNK 20000
/* Sessions one sync may take: finding an unparsable message by halving
 * FETCH_CHUNK takes about 16, so a sync gets past a dozen of them. */
#define SYNC_MAX_ROUNDS 200
#define FLAG_CHANGES_FIRST 64 /* first allocation for CONDSTORE flag changes */

void mb_listing_add_meta(const struct imap_meta *m, void *ctx)
{
	struct listing_builder *b = ctx;
	char name[NAMES_MAX + 1];
	char *subject = NULL;
	int len;

	if (b->err)
		return;
	/* another client's flag change arrives as an unsolicited FETCH with a
	 * UID (CONDSTORE): it is no listing data */
	if (!m->has_size || (!m->has_date && b->mode != NAMES_UID))
		return;
	if (b->mode == NAMES_READABLE) {
		subject = names_subject_from_headers(m->headers ? m->headers : "", m->headers_len);
		if (!subject) {
			b->err = -ENOMEM;
			return;
		}
	}
	len = names_message_file(name, sizeof(name), b->mode, m->internaldate, subject, m->uid);
	free(subject);
	if (len < 0) {
		b->err = len;
		return;
	}
	if (b->stream)
		b->err = listing_stream_push(b->stream, b, m->uid, m->size, m->internaldate,
					     (uint8_t)m->flags, name, (size_t)len);
	else
		b->err = listing_builder_push(b, m->uid, m->size, m->internaldate, (uint8_t)m->flags, name,
					      (size_t)len);
}

/* One sync of a folder.  It may take several sessions: a response libetpan
 * cannot parse kills the session, so the FETCH is split in halves on a new
 * one until the message at fault is alone, and that one is listed by UID and
 * size only (or left out), so one bad message never hides a folder. */
struct sync_job {
	struct mailbox *mb;
	struct folder *f;
	struct listing *old;           /* may be NULL */
	struct listing_stream *stream; /* a full sync from nothing streams here, or NULL */
	struct listing *result;
	struct listing_builder b; /* a full sync in progress */
	bool started;
	bool incremental_failed;       /* fall back to a full sync */
	uint64_t next;                 /* full sync: next message number to fetch (64
					* bits: after 4294967295 it ends the loop, not wraps) */
	uint32_t chunk;                /* messages per FETCH now */
	uint32_t bad;                  /* a message number whose data cannot be parsed */
	struct imap_folder_state seen; /* what the last SELECT said */
};

#define SYNC_AGAIN (-EAGAIN) /* the job goes on in another session */

static void add_bare(const struct imap_meta *m, void *ctx)
{
	struct listing_builder *b = ctx;
	enum names_mode mode = b->mode;

	b->mode = NAMES_UID; /* its date and subject could not be read */
	mb_listing_add_meta(m, b);
	b->mode = mode;
}

/* Alone it failed: try its UID and size, else leave it out. */
static int list_bad_message(struct imap_session *s, struct sync_job *job)
{
	uint32_t bad = job->bad;

	job->bad = 0;
	if (imap_fetch_uid_size(s, bad, add_bare, &job->b) == 0) {
		log_warn("folder %s: message %u has unparsable listing data; named by UID", job->f->path,
			 bad);
		return 0;
	}
	log_warn("folder %s: message %u cannot be listed (unparsable); left out", job->f->path, bad);
	return imap_dead(s) ? SYNC_AGAIN : 0;
}

static int sync_full(struct imap_session *s, const struct imap_folder_state *st, struct sync_job *job)
{
	struct listing_builder *b = &job->b;
	int r;

	/* each chunk renews the operation's budget: without this bound a
	 * server claiming billions of messages would fill memory */
	if (st->exists > LISTING_MAX_MESSAGES)
		return -EFBIG;
	if (job->bad && (r = list_bad_message(s, job)) < 0)
		return r;
	while (job->next <= st->exists) {
		uint32_t lo = (uint32_t)job->next;
		uint32_t hi = st->exists - lo < job->chunk ? st->exists : lo + job->chunk - 1;

		imap_renew_operation(s); /* each chunk is bounded, not the whole folder */
		r = imap_fetch_meta(s, false, lo, hi, mb_listing_add_meta, b);
		if (r < 0 && imap_parse_failed(s)) {
			if (lo == hi) {
				job->bad = lo;
				job->next = (uint64_t)lo + 1;
			} else {
				job->chunk = (hi - lo + 1) / 2;
			}
			return SYNC_AGAIN;
		}
		if (r < 0)
			return r;
		if (b->err)
			return b->err;
		job->next = (uint64_t)hi + 1;
		/* back up after a halving, never past FETCH_CHUNK */
		job->chunk = job->chunk * 2 < FETCH_CHUNK ? job->chunk * 2 : FETCH_CHUNK;
	}
	return 0;
}

struct flag_change {
	uint32_t uid;
	uint8_t flags;
};

struct flag_changes {
	struct flag_change *v;
	size_t n, cap;
	int err;
};

static void add_flag_change(const struct imap_meta *m, void *ctx)
{
	struct flag_changes *fc = ctx;

	if (fc->err)
		return;
	if (fc->n == fc->cap) {
		size_t cap = fc->cap ? fc->cap * 2 : FLAG_CHANGES_FIRST;
		struct flag_change *v = realloc(fc->v, cap * sizeof(*v));

		if (!v) {
			fc->err = -ENOMEM;
			return;
		}
		fc->v = v;
		fc->cap = cap;
	}
	fc->v[fc->n++] = (struct flag_change){ m->uid, (uint8_t)m->flags };
}

static int cmp_flag_change(const void *a, const void *b)
{
	uint32_t x = ((const struct flag_change *)a)->uid, y = ((const struct flag_change *)b)->uid;

	return x < y ? -1 : x > y;
}

/* The flags a message has now: changed since the old listing, or as before. */
static uint8_t current_flags(const struct flag_changes *fc, const struct msg *m)
{
	uint8_t flags = mb_msg_flags(m);
	size_t lo = 0, hi = fc->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (fc->v[mid].uid == m->uid)
			return (uint8_t)((flags & ~MSG_IMAP_FLAGS) | fc->v[mid].flags);
		if (fc->v[mid].uid < m->uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return flags;
}

/* Keeps the old messages that still exist (with their flags as CONDSTORE
 * reports them), then fetches the new ones.  Nothing at all is fetched when
 * HIGHESTMODSEQ, UIDNEXT and EXISTS say nothing changed; with QRESYNC the
 * expunged UIDs come as VANISHED, else the UID list is fetched when the
 * message count says something went. */
static int sync_incremental(struct imap_session *s, const struct imap_folder_state *st,
			    const struct listing *old, struct listing_builder *b)
{
	uint32_t top = listing_top_uid(old);
	struct flag_changes fc = { 0 };
	uint32_t *uids = NULL, *vanished = NULL;
	size_t nuids = 0, nvanished = 0, added = 0, gone = 0;
	bool vanished_known = false;
	int r = 0;

	/* "top+1:*" always matches the last message: ask only when there is news */
	if (!st->uidnext || st->uidnext > top + 1) {
		r = imap_fetch_meta(s, true, top + 1, 0, mb_listing_add_meta, b);
		if (r < 0 || b->err)
			return r < 0 ? r : b->err;
	}
	for (size_t i = 0; i < b->l->count; i++)
		added += b->l->msgs[i].uid > top;
	if (st->highestmodseq && old->modseq && st->highestmodseq != old->modseq && top) {
		r = imap_fetch_changes(s, top, old->modseq, add_flag_change, &fc, &vanished, &nvanished);
		if (r < 0)
			goto out;
		vanished_known = r == 0;
		r = fc.err;
		if (r == 0 && fc.n > 1)
			qsort(fc.v, fc.n, sizeof(*fc.v), cmp_flag_change);
	}
	for (size_t i = 0; vanished_known && i < old->count; i++)
		gone += listing_uid_in(vanished, nvanished, old->msgs[i].uid);
	if (r == 0 && (vanished_known ? old->count - gone + added : old->count + added) != st->exists) {
		free(vanished);
		vanished = NULL;
		nvanished = 0;
		r = imap_search_all(s, &uids, &nuids);
	}
	for (size_t i = 0; r == 0 && i < old->count && !b->err; i++) {
		const struct msg *m = &old->msgs[i];
		const char *name = mb_msg_name(old, m);

		if ((uids && !listing_uid_in(uids, nuids, m->uid)) ||
		    listing_uid_in(vanished, nvanished, m->uid))
			continue;
		b->err = listing_builder_push(b, m->uid, mb_msg_size(m), m->date, current_flags(&fc, m), name,
					      strlen(name));
	}
out:
	free(uids);
	free(vanished);
	free(fc.v);
	return r < 0 ? r : b->err;
}

static bool unchanged(const struct imap_folder_state *st, const struct listing *old)
{
	return st->highestmodseq && st->highestmodseq == old->modseq && st->exists == old->count &&
	       st->uidnext && st->uidnext <= listing_top_uid(old) + 1;
}

static int sync_from_old(struct imap_session *s, const struct imap_folder_state *st, struct sync_job *job)
{
	struct listing_builder b;
	int r;

	if (unchanged(st, job->old)) {
		job->result = mb_listing_get(job->old);
		return 0;
	}
	if ((r = listing_builder_init(&b, job->mb->opt.names, st->uidvalidity)) < 0)
		return r;
	r = sync_incremental(s, st, job->old, &b);
	if (r < 0) {
		listing_builder_abandon(&b);
		if (imap_parse_failed(s)) {
			job->incremental_failed = true;
			return SYNC_AGAIN;
		}
		return r;
	}
	b.l->modseq = st->highestmodseq;
	listing_builder_finish(&b);
	job->result = b.l;
	return 0;
}

static int sync_fn(struct imap_session *s, const struct imap_folder_state *st, void *ctx)
{
	struct sync_job *job = ctx;
	int r;

	job->seen = *st;
	if (job->old && !job->incremental_failed && job->old->uidvalidity == st->uidvalidity)
		return sync_from_old(s, st, job);
	if (!job->started || job->b.l->uidvalidity != st->uidvalidity) {
		if (job->started) {
			listing_stream_abandon(job->stream, &job->b);
			listing_builder_abandon(&job->b);
		}
		job->started = false;
		if ((r = listing_builder_init(&job->b, job->mb->opt.names, st->uidvalidity)) < 0)
			return r;
		job->started = true;
		job->next = 1;
		job->chunk = FETCH_CHUNK;
		job->bad = 0;
		/* the folder's modseq from before the FETCH: later changes show next time */
		job->b.l->modseq = st->highestmodseq;
		/* a first listing: readdir may show its messages as they come */
		if (job->stream && !job->old)
			listing_stream_attach(job->stream, &job->b);
	}
	r = sync_full(s, st, job);
	if (r < 0)
		return r;
	listing_stream_detach(job->stream, &job->b);
	listing_builder_finish(&job->b);
	job->result = job->b.l;
	job->started = false;
	return 0;
}

int mb_sync_listing(struct mailbox *mb, struct folder *f, struct listing *old, struct listing_stream *stream,
		    struct listing **result, struct imap_folder_state *seen)
{
	struct sync_job job = { .mb = mb, .f = f, .old = old, .stream = stream };
	int r, rounds = 0;

	/* session after session while the job asks for more */
	do
		r = pool_run(mb->pool, f->server, POOL_FRESH_SELECT, sync_fn, &job);
	while (r == SYNC_AGAIN && ++rounds < SYNC_MAX_ROUNDS);
	if (job.started) {
		listing_stream_detach(stream, &job.b);
		listing_builder_abandon(&job.b);
	}
	if (r == -EFBIG)
		log_warn("folder %s: the server lists more messages than the %u a listing may hold "
			 "(EXISTS %u); not listed",
			 f->path, LISTING_MAX_MESSAGES, job.seen.exists);
	*result = r == 0 ? job.result : NULL;
	*seen = job.seen;
	return r == SYNC_AGAIN ? -EIO : r;
}

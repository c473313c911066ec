/* listing_stream.c - owns a first listing's hand-over to readdir while its
 * FETCH streams in (see listing_stream.h for what a position means). */
#include "listing_stream.h"
#include "util/deadline.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct listing_stream {
	/* A leaf: protects every field below; nothing else is taken while it
	 * is held, and it is never held across I/O or on_start. */
	pthread_mutex_t lock;
	pthread_cond_t moved; /* an entry arrived, the stream ended or the sync did */
	unsigned refs;        /* atomic, not under lock: taken under folder.lock */
	unsigned wait_ms;
	listing_stream_start_fn *on_start;
	void *start_ctx;
	uint32_t uidvalidity;      /* the streamed builder's: set before on_start, then fixed */
	bool started;              /* attached once: on_start called */
	struct listing_builder *b; /* the builder streamed from; NULL once detached */
	bool closed;               /* a message out of UID order: shown grows no more */
	bool restarted;            /* the sync started over after messages were shown */
	size_t shown;              /* b's first `shown` messages, ascending UIDs */
	size_t pushed;             /* messages pushed, shown or not: renew a reader's wait */
	uint32_t last_uid;         /* UID of position shown - 1 */
	bool done;
	int err;               /* the sync's, when done without a listing */
	struct listing *final; /* the sync's listing, referenced, when done with one */
	size_t final_from;     /* index in final of position shown (its first UID above last_uid) */
	/* offered: final is a saved listing, given whole; once checked,
	 * readers get only its messages still in check (none when check's
	 * UIDVALIDITY differs), or EIO after a folder gone (gone) */
	bool offered;
	bool checked;
	bool gone;
	struct listing *check; /* the sync's listing, referenced */
};

struct listing_stream *listing_stream_new(unsigned wait_ms, listing_stream_start_fn *on_start, void *ctx)
{
	struct listing_stream *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	if (pthread_mutex_init(&s->lock, NULL) != 0) {
		free(s);
		return NULL;
	}
	if (deadline_cond_init(&s->moved) != 0) {
		pthread_mutex_destroy(&s->lock);
		free(s);
		return NULL;
	}
	s->refs = 1;
	s->wait_ms = wait_ms;
	s->on_start = on_start;
	s->start_ctx = ctx;
	return s;
}

struct listing_stream *listing_stream_get(struct listing_stream *s)
{
	if (s)
		__atomic_add_fetch(&s->refs, 1, __ATOMIC_RELAXED);
	return s;
}

void listing_stream_put(struct listing_stream *s)
{
	if (!s || __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	mb_listing_put(s->final);
	mb_listing_put(s->check);
	pthread_cond_destroy(&s->moved);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/* The first attach or offer of s (true, and s is started) or not. */
static bool start_locked(struct listing_stream *s, uint32_t uidvalidity)
{
	if (s->started || s->done)
		return false;
	s->started = true;
	s->uidvalidity = uidvalidity;
	return true;
}

void listing_stream_attach(struct listing_stream *s, struct listing_builder *b)
{
	bool first;

	pthread_mutex_lock(&s->lock);
	first = start_locked(s, b->l->uidvalidity);
	if (first) {
		s->b = b;
		b->stream = s;
	}
	pthread_mutex_unlock(&s->lock);
	if (first && s->on_start)
		s->on_start(s->start_ctx);
}

void listing_stream_offer(struct listing_stream *s, struct listing *l)
{
	bool first;

	pthread_mutex_lock(&s->lock);
	first = start_locked(s, l->uidvalidity);
	if (first) {
		/* ended already: whatever the sync finds is told to the
		 * kernel by the change hook, not to these readers */
		s->done = true;
		s->offered = true;
		s->final = mb_listing_get(l);
		pthread_cond_broadcast(&s->moved);
	}
	pthread_mutex_unlock(&s->lock);
	if (first && s->on_start)
		s->on_start(s->start_ctx);
}

int listing_stream_push(struct listing_stream *s, struct listing_builder *b, uint32_t uid, uint32_t size,
			int64_t date, uint8_t flags, const char *name, size_t name_len)
{
	int r;

	pthread_mutex_lock(&s->lock);
	r = listing_builder_push(b, uid, size, date, flags, name, name_len);
	s->pushed++;
	if (r == 0 && s->b == b && !s->closed) {
		if (b->l->count == s->shown + 1 && uid > s->last_uid) {
			s->shown++;
			s->last_uid = uid;
			pthread_cond_broadcast(&s->moved);
		} else {
			s->closed = true;
		}
	}
	pthread_mutex_unlock(&s->lock);
	return r;
}

/* b stops being streamed; restart: the sync drops it to start over. */
static void let_go(struct listing_stream *s, struct listing_builder *b, bool restart)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	if (s->b == b) {
		s->b = NULL;
		b->stream = NULL;
		s->restarted = restart && s->shown > 0;
	}
	pthread_mutex_unlock(&s->lock);
}

void listing_stream_detach(struct listing_stream *s, struct listing_builder *b)
{
	let_go(s, b, false);
}

void listing_stream_abandon(struct listing_stream *s, struct listing_builder *b)
{
	let_go(s, b, true);
}

/* The first index of l whose UID is above uid. */
static size_t first_above(const struct listing *l, uint32_t uid)
{
	size_t lo = 0, hi = l->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (l->msgs[mid].uid <= uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

void listing_stream_done(struct listing_stream *s, struct listing *l, int err)
{
	pthread_mutex_lock(&s->lock);
	if (s->offered && !s->checked) {
		s->checked = true;
		s->check = mb_listing_get(l);
		s->gone = !l && err == -ENOENT;
	}
	if (s->done) {
		pthread_mutex_unlock(&s->lock);
		return;
	}
	s->done = true;
	s->b = NULL;
	s->final = mb_listing_get(l);
	s->err = l ? 0 : err < 0 ? err : -EIO;
	/* never before position shown: a sync that started over (new
	 * UIDVALIDITY) must not show a reader one message twice */
	s->final_from = l && s->shown ? first_above(l, s->last_uid) : 0;
	if (s->final_from < s->shown)
		s->final_from = s->shown;
	pthread_cond_broadcast(&s->moved);
	pthread_mutex_unlock(&s->lock);
}

bool listing_stream_started(struct listing_stream *s)
{
	bool started;

	pthread_mutex_lock(&s->lock);
	started = s->started;
	pthread_mutex_unlock(&s->lock);
	return started;
}

uint32_t listing_stream_uidvalidity(struct listing_stream *s)
{
	uint32_t v;

	pthread_mutex_lock(&s->lock);
	/* a sync that started over before showing anything gives out its
	 * finished listing's messages alone */
	v = s->final && !s->offered ? s->final->uidvalidity : s->uidvalidity;
	pthread_mutex_unlock(&s->lock);
	return v;
}

static void copy_msg(const struct listing *l, size_t i, struct msg *m, char *name)
{
	const char *n = mb_msg_name(l, &l->msgs[i]);
	size_t len = strnlen(n, NAMES_MAX);

	*m = l->msgs[i];
	m->size = mb_msg_size(&l->msgs[i]);
	m->flags = mb_msg_flags(&l->msgs[i]);
	memcpy(name, n, len);
	name[len] = '\0';
}

/* Message p of an offered listing: what the sync found, once it has, may
 * not go to the kernel with the saved listing's attributes and generation
 * after the change hook has told it otherwise. */
static int offered_entry_locked(struct listing_stream *s, size_t p, struct msg *m, char *name)
{
	if (p >= s->final->count)
		return LISTING_STREAM_END;
	if (s->gone)
		return -EIO;
	if (s->check && (s->check->uidvalidity != s->final->uidvalidity ||
			 !mb_listing_find(s->check, s->final->msgs[p].uid)))
		return LISTING_STREAM_SKIP;
	copy_msg(s->final, p, m, name);
	return LISTING_STREAM_ENTRY;
}

/* Message p once the sync is done: the streamed part keeps its positions
 * (the finished listing begins with the same messages unless one came out
 * of order, and then the stream was closed there), the rest follows the
 * last streamed UID. */
static int entry_when_done_locked(struct listing_stream *s, size_t p, struct msg *m, char *name)
{
	size_t i;

	if (s->offered)
		return offered_entry_locked(s, p, m, name);
	if (!s->final)
		return s->err;
	/* what the reader was shown came from a sync abandoned (a new
	 * UIDVALIDITY): no position of the new listing follows from it */
	if (s->restarted)
		return -EIO;
	i = p < s->shown ? p : s->final_from + (p - s->shown);
	if (i >= s->final->count)
		return LISTING_STREAM_END;
	copy_msg(s->final, i, m, name);
	return LISTING_STREAM_ENTRY;
}

int listing_stream_entry(struct listing_stream *s, size_t p, bool wait, struct msg *m, char *name)
{
	struct timespec until;
	size_t pushed;
	int r;

	deadline_in(&until, s->wait_ms);
	pthread_mutex_lock(&s->lock);
	pushed = s->pushed;
	for (;;) {
		if (s->b && p < s->shown) {
			copy_msg(s->b->l, p, m, name);
			r = LISTING_STREAM_ENTRY;
			break;
		}
		if (s->done) {
			r = entry_when_done_locked(s, p, m, name);
			break;
		}
		if (!wait) {
			r = LISTING_STREAM_LATER;
			break;
		}
		if (!deadline_wait(&s->moved, &s->lock, &until) && !s->done && !(s->b && p < s->shown)) {
			if (s->pushed == pushed) {
				r = -ETIMEDOUT;
				break;
			}
			/* the sync goes on past what this reader may see yet
			 * (a repeat ended the streamed part): wait on */
			pushed = s->pushed;
			deadline_in(&until, s->wait_ms);
		}
	}
	pthread_mutex_unlock(&s->lock);
	return r;
}

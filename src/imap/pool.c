/* pool.c - owns the IMAP sessions: checkout with folder affinity, opening
 * sessions on demand (never under the lock), dropping dead ones, the one
 * retry after a lost connection, and the server's health: when it cannot be
 * reached (a connect failed, or it stopped answering), requests fail at once
 * while a background thread reconnects with exponential backoff.
 * Locks: pool.lock (src/README, "Locks"); nothing is taken while it is
 * held, and it is never held across network I/O. */
#include "pool.h"
#include "util/deadline.h"
#include "util/log.h"
#include "util/timefmt.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BACKOFF_FIRST 1   /* seconds before the first reconnection attempt */
#define STOP_WAIT_MS 2000 /* how long an unmount waits for a connection attempt */
#define BACKOFF_MAX 60

struct slot {
	struct imap_session *session; /* NULL: free to open; owned */
	bool busy;                    /* checked out (or being opened) */
	char *folder;                 /* what it had selected at checkin, for .status */
};

struct pool {
	const struct imap_account *acct;
	pthread_mutex_t lock;  /* protects down .. stopping, and slots */
	pthread_cond_t idle;   /* signalled when a slot is checked in */
	pthread_cond_t health; /* signalled when `down` or `reconnecting` changes, or on stop */

	bool down;                    /* the server cannot be reached */
	bool reconnecting;            /* the reconnector is opening a session (no lock held) */
	time_t down_since;            /* wall clock, for .status */
	struct timespec next_attempt; /* monotonic */
	int backoff;                  /* seconds until the attempt after next */
	unsigned attempts;
	bool stopping;
	bool started;          /* with reconnector: pool_start's and */
	pthread_t reconnector; /* pool_stop's, one thread's */

	int nslots;
	struct slot slots[]; /* protected by lock */
};

static void now_plus(struct timespec *t, int seconds)
{
	clock_gettime(CLOCK_MONOTONIC, t);
	t->tv_sec += seconds;
}

struct pool *pool_new(const struct imap_account *acct, int max_sessions, struct imap_session *first)
{
	struct pool *p;
	pthread_condattr_t ca;

	if (max_sessions < 1)
		max_sessions = 1;
	p = calloc(1, sizeof(*p) + (size_t)max_sessions * sizeof(struct slot));
	if (!p)
		return NULL;
	p->acct = acct;
	p->nslots = max_sessions;
	pthread_mutex_init(&p->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->idle, &ca);
	pthread_cond_init(&p->health, &ca);
	pthread_condattr_destroy(&ca);
	p->slots[0].session = first;
	return p;
}

void pool_free(struct pool *p)
{
	if (!p)
		return;
	pool_stop(p);
	for (int i = 0; i < p->nslots; i++) {
		imap_close(p->slots[i].session);
		free(p->slots[i].folder);
	}
	pthread_cond_destroy(&p->idle);
	pthread_cond_destroy(&p->health);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

/* Scores an idle slot: its folder already selected beats an open session
 * with nothing selected, which beats one with another folder selected (its
 * folder is kept for whoever comes back to it: no SELECT then), which beats
 * opening a new one.  A side job (POOL_BESIDE) ranks the folder's own
 * session below every other open one. */
static int slot_score(const struct slot *sl, const char *folder, bool beside)
{
	const char *sel;

	if (sl->busy)
		return -1;
	if (!sl->session)
		return 1;
	sel = imap_selected(sl->session);
	if (folder && sel && strcmp(sel, folder) == 0)
		return beside ? 2 : 5;
	return sel ? 3 : 4;
}

/* A free slot, waiting at most until deadline; -1 when none came. */
static int checkout_locked(struct pool *p, const char *folder, bool beside, const struct timespec *deadline)
{
	for (;;) {
		int best = -1, best_score = -1;

		for (int i = 0; i < p->nslots; i++) {
			int sc = slot_score(&p->slots[i], folder, beside);

			if (sc > best_score) {
				best = i;
				best_score = sc;
			}
		}
		if (best >= 0) {
			p->slots[best].busy = true;
			return best;
		}
		if (pthread_cond_timedwait(&p->idle, &p->lock, deadline) == ETIMEDOUT)
			return -1;
	}
}

static void checkin(struct pool *p, int i, struct imap_session *s)
{
	const char *sel = s ? imap_selected(s) : NULL;
	char *folder = sel ? strdup(sel) : NULL;

	pthread_mutex_lock(&p->lock);
	p->slots[i].session = s;
	p->slots[i].busy = false;
	free(p->slots[i].folder);
	p->slots[i].folder = folder;
	pthread_cond_signal(&p->idle);
	pthread_mutex_unlock(&p->lock);
}

/* The server is unreachable: requests fail at once, the reconnector takes over. */
static void mark_down(struct pool *p, const char *why)
{
	pthread_mutex_lock(&p->lock);
	if (!p->down) {
		p->down = true;
		p->down_since = time(NULL);
		p->attempts = 0;
		p->backoff = BACKOFF_FIRST;
		now_plus(&p->next_attempt, BACKOFF_FIRST);
		log_warn("lost the connection to %s (%s); reconnecting in the background", p->acct->host,
			 why);
		pthread_cond_broadcast(&p->health);
	}
	pthread_mutex_unlock(&p->lock);
}

static void mark_up(struct pool *p)
{
	pthread_mutex_lock(&p->lock);
	if (p->down) {
		p->down = false;
		log_info("connection to %s restored after %lld s (%u attempts)", p->acct->host,
			 (long long)(time(NULL) - p->down_since), p->attempts);
		pthread_cond_broadcast(&p->health);
	}
	pthread_mutex_unlock(&p->lock);
}

static int open_session(struct pool *p, struct imap_session **s)
{
	char err[512];
	int r = imap_open(p->acct, s, err, sizeof(err));

	/* reached, but the session ended before it was ready (its server
	 * process killed, say): one more try before calling the server down */
	if (r == -EIO || r == -EPROTO) {
		log_info("an IMAP session ended while opening (%s): trying once more", err);
		r = imap_open(p->acct, s, err, sizeof(err));
	}
	if (r < 0) {
		log_warn("cannot open an IMAP session: %s", err);
		/* a refused login (e.g. a per-user connection limit) says nothing
		 * of the server's health: only this request fails */
		if (r != -EACCES)
			mark_down(p, err);
	}
	/* An unreachable server is EIO like every other request made while
	 * it is down, whether this request or the watcher noticed first. */
	return r == -EHOSTUNREACH || r == -EPROTO ? -EIO : r;
}

/* How long one request may take in all, however the server trickles: a
 * SELECT and a command, so never under 20 s however short the timeout. */
static int operation_seconds(const struct pool *p)
{
	int t = IMAP_OPERATION_SECONDS(p->acct->timeout > 0 ? p->acct->timeout : 30);

	return t < 20 ? 20 : t;
}

static int run_once(struct pool *p, struct imap_session **sp, const char *folder, unsigned flags, pool_fn *fn,
		    void *ctx, bool *ran)
{
	struct imap_folder_state state = { 0 };
	int r;

	*ran = false;
	if (!*sp && (r = open_session(p, sp)) < 0)
		return r;
	imap_limit_operation(*sp, operation_seconds(p));
	if (folder && (r = imap_select(*sp, folder, flags & POOL_FRESH_SELECT, &state)) < 0)
		return r;
	*ran = true;
	return fn(*sp, &state, ctx);
}

int pool_run(struct pool *p, const char *folder, unsigned flags, pool_fn *fn, void *ctx)
{
	struct timespec deadline;
	struct imap_session *s;
	bool ran;
	int i, r;

	now_plus(&deadline, p->acct->timeout > 0 ? p->acct->timeout : 30);
	pthread_mutex_lock(&p->lock);
	if (p->down) {
		pthread_mutex_unlock(&p->lock);
		return -EIO;
	}
	i = checkout_locked(p, folder, (flags & POOL_BESIDE) != 0, &deadline);
	s = i >= 0 ? p->slots[i].session : NULL;
	pthread_mutex_unlock(&p->lock);
	if (i < 0) {
		log_warn("no IMAP connection became free within %d s", p->acct->timeout);
		return -EIO;
	}

	r = run_once(p, &s, folder, flags, fn, ctx, &ran);
	if (s && imap_dead(s) && imap_timed_out(s)) {
		/* a frozen server: trying again would only double the wait */
		mark_down(p, "the server stopped answering");
	} else if (s && imap_dead(s) && (!ran || !(flags & POOL_NO_RETRY))) {
		/* a session found dead before fn ran can always be replaced */
		imap_close(s);
		s = NULL;
		log_info("reconnecting to retry the request");
		r = run_once(p, &s, folder, flags, fn, ctx, &ran);
		if (s && imap_dead(s) && imap_timed_out(s))
			mark_down(p, "the server stopped answering");
	}
	if (s && imap_dead(s)) {
		imap_close(s);
		s = NULL;
	}
	checkin(p, i, s);
	return r;
}

bool pool_is_down(struct pool *p)
{
	bool down;

	pthread_mutex_lock(&p->lock);
	down = p->down;
	pthread_mutex_unlock(&p->lock);
	return down;
}

void pool_wake(struct pool *p)
{
	pthread_mutex_lock(&p->lock);
	if (p->down) {
		clock_gettime(CLOCK_MONOTONIC, &p->next_attempt);
		pthread_cond_broadcast(&p->health);
	}
	pthread_mutex_unlock(&p->lock);
}

bool pool_wait_up(struct pool *p, int seconds)
{
	struct timespec until;
	bool up;

	now_plus(&until, seconds);
	pthread_mutex_lock(&p->lock);
	while (p->down && !p->stopping && pthread_cond_timedwait(&p->health, &p->lock, &until) != ETIMEDOUT)
		;
	up = !p->down && !p->stopping;
	pthread_mutex_unlock(&p->lock);
	return up;
}

/* Keeps a fresh session where a request will find it. */
static void adopt(struct pool *p, struct imap_session *s)
{
	pthread_mutex_lock(&p->lock);
	for (int i = 0; s && i < p->nslots; i++) {
		if (!p->slots[i].busy && !p->slots[i].session) {
			p->slots[i].session = s;
			s = NULL;
		}
	}
	pthread_mutex_unlock(&p->lock);
	imap_close(s);
}

static void set_reconnecting(struct pool *p, bool on)
{
	pthread_mutex_lock(&p->lock);
	p->reconnecting = on;
	pthread_cond_broadcast(&p->health);
	pthread_mutex_unlock(&p->lock);
}

/* Slots without a session, checked under the lock. */
static int empty_slots(struct pool *p)
{
	int n = 0;

	pthread_mutex_lock(&p->lock);
	for (int i = 0; i < p->nslots; i++)
		n += !p->slots[i].busy && !p->slots[i].session;
	pthread_mutex_unlock(&p->lock);
	return n;
}

/* Once mounted, the other sessions are opened ahead of need: on a distant
 * server a session costs several round trips (TCP, TLS, LOGIN, ENABLE),
 * which a first parallel read would otherwise wait for.  The slot being
 * filled is checked out (busy) while its session opens, and checked in
 * after (which wakes a waiting request): a request never opens the same
 * slot meanwhile, which would be one login more than the pool's size and
 * could be refused by a per-user connection limit. */
static void warm_up(struct pool *p)
{
	for (int n = empty_slots(p); n > 0; n--) {
		struct imap_session *s = NULL;
		char err[512];
		int i, r;

		pthread_mutex_lock(&p->lock);
		for (i = 0; i < p->nslots && (p->slots[i].busy || p->slots[i].session); i++)
			;
		if (p->stopping || p->down || i == p->nslots) {
			pthread_mutex_unlock(&p->lock);
			return;
		}
		p->slots[i].busy = true;
		p->reconnecting = true;
		pthread_mutex_unlock(&p->lock);
		r = imap_open(p->acct, &s, err, sizeof(err));
		set_reconnecting(p, false);
		checkin(p, i, r == 0 ? s : NULL);
		if (r < 0) {
			log_info("opening a spare IMAP session: %s (later, when needed)", err);
			return;
		}
	}
}

static void *reconnect_loop(void *arg)
{
	struct pool *p = arg;

	warm_up(p);
	pthread_mutex_lock(&p->lock);
	while (!p->stopping) {
		struct imap_session *s = NULL;
		char err[512];
		int r;

		if (!p->down) {
			pthread_cond_wait(&p->health, &p->lock);
			continue;
		}
		if (!deadline_passed(&p->next_attempt)) {
			pthread_cond_timedwait(&p->health, &p->lock, &p->next_attempt);
			continue;
		}
		p->attempts++;
		p->reconnecting = true;
		pthread_mutex_unlock(&p->lock);
		r = imap_open(p->acct, &s, err, sizeof(err));
		set_reconnecting(p, false);
		if (r == 0) {
			adopt(p, s);
			mark_up(p);
		}
		pthread_mutex_lock(&p->lock);
		if (r < 0 && p->down) {
			log_warn("still cannot reach %s: %s; next attempt in %d s", p->acct->host, err,
				 p->backoff);
			now_plus(&p->next_attempt, p->backoff);
			p->backoff = p->backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX : p->backoff * 2;
		}
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

int pool_start(struct pool *p)
{
	int r = pthread_create(&p->reconnector, NULL, reconnect_loop, p);

	p->started = r == 0;
	return -r;
}

void pool_stop(struct pool *p)
{
	struct timespec until;

	if (!p->started)
		return;
	pthread_mutex_lock(&p->lock);
	p->stopping = true;
	pthread_cond_broadcast(&p->health);
	/* the reconnector may be opening a session on a frozen server: after a
	 * moment, every wait is ended rather than the unmount held for it */
	deadline_in(&until, p->down ? 0 : STOP_WAIT_MS);
	while (p->reconnecting && deadline_wait(&p->health, &p->lock, &until))
		;
	if (p->reconnecting) {
		log_warn("a connection attempt is still under way: giving it up");
		imap_abort_waits();
	}
	pthread_mutex_unlock(&p->lock);
	pthread_join(p->reconnector, NULL);
	p->started = false;
}

void pool_status(struct pool *p, FILE *out)
{
	pthread_mutex_lock(&p->lock);
	if (p->down) {
		struct timespec now;
		char since[TIMEFMT_ISO_SIZE];
		long wait;

		clock_gettime(CLOCK_MONOTONIC, &now);
		wait = (long)(p->next_attempt.tv_sec - now.tv_sec);
		fprintf(out, "state down since=%s attempts=%u next_attempt_in=%lds\n",
			timefmt_iso(p->down_since, since), p->attempts, wait > 0 ? wait : 0);
	} else {
		fprintf(out, "state up\n");
	}
	for (int i = 0; i < p->nslots; i++) {
		const struct slot *sl = &p->slots[i];

		fprintf(out, "connection %d %s %s\n", i + 1,
			sl->busy      ? "busy"
			: sl->session ? "idle"
				      : "closed",
			sl->folder ? sl->folder : "-");
	}
	pthread_mutex_unlock(&p->lock);
}

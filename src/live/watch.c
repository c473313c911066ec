/* watch.c - owns the watched folders (INBOX and -o watch=...): one thread
 * and one dedicated IMAP connection each, parked in IDLE.  When the server
 * reports a change, the folder is synced through the mailbox (on a pool
 * connection), whose change hook tells the kernel.  A lost connection is
 * opened again with exponential backoff (1 s doubling to 60 s); IDLE is
 * re-issued every 29 minutes, as RFC 2177 asks.
 * Locks: watch.lock, a leaf (src/README, "Locks"), only around a
 * watcher's state; never held across I/O. */
#include "watch.h"
#include "model/inode.h"
#include "util/log.h"
#include "util/timefmt.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define IDLE_SECONDS (29 * 60)
#define BACKOFF_MAX 60
#define MS_PER_S 1000

enum watcher_state {
	W_CONNECTING,
	W_IDLE,
	W_SYNCING,
	W_DOWN,
	W_MISSING,
	W_POLLING
};

static const char *const state_names[] = { "connecting", "idle", "syncing", "down", "missing", "polling" };

struct watcher {
	struct watch *w;  /* w and path: set once */
	char *path;       /* as in the mount: "INBOX", "Lists/dev" */
	pthread_t thread; /* thread and started: watch_start's and watch_stop's */
	bool started;
	enum watcher_state state; /* under w->lock */
	time_t last_sync;         /* under w->lock */
};

struct watch {
	struct mailbox *mb; /* every field but the watchers' state: set once */
	struct pool *pool;
	const struct imap_account *acct;
	int poll_interval;    /* seconds between syncs when the server has no IDLE */
	int stop_pipe[2];     /* readable once stopping */
	pthread_mutex_t lock; /* protects each watcher's state and last_sync */
	size_t n;
	struct watcher *v;
};

static void set_state(struct watcher *wr, enum watcher_state st, bool synced)
{
	pthread_mutex_lock(&wr->w->lock);
	wr->state = st;
	if (synced)
		wr->last_sync = time(NULL);
	pthread_mutex_unlock(&wr->w->lock);
}

/* Sleeps up to seconds; false when stopping. */
static bool pause_for(struct watch *w, int seconds)
{
	struct pollfd pfd = { .fd = w->stop_pipe[0], .events = POLLIN };

	while (poll(&pfd, 1, seconds * MS_PER_S) < 0 && errno == EINTR)
		;
	return !(pfd.revents & POLLIN);
}

static bool stopping(struct watch *w)
{
	return !pause_for(w, 0);
}

/* Syncs the folder through the pool; then the watcher is in state `after`. */
static void resync(struct watcher *wr, uint64_t ino, enum watcher_state after)
{
	int r;

	set_state(wr, W_SYNCING, false);
	r = mailbox_resync(wr->w->mb, ino);
	set_state(wr, after, r == 0);
}

/* Opens a session with the folder selected (*st: what SELECT reported);
 * -errno and a state otherwise. */
static int connect_watch(struct watcher *wr, struct imap_session **out, uint64_t *ino,
			 struct imap_folder_state *st)
{
	struct watch *w = wr->w;
	const char *server;
	char err[512];
	int r;

	*out = NULL;
	if (pool_is_down(w->pool)) {
		set_state(wr, W_DOWN, false);
		return -EIO;
	}
	if (mailbox_watch_target(w->mb, wr->path, ino, &server) < 0) {
		/* not (or no longer) there: LIST again, it may have been created */
		mailbox_resync(w->mb, INODE_ROOT);
		if (mailbox_watch_target(w->mb, wr->path, ino, &server) < 0) {
			set_state(wr, W_MISSING, false);
			return -ENOENT;
		}
	}
	set_state(wr, W_CONNECTING, false);
	r = imap_open(w->acct, out, err, sizeof(err));
	if (r < 0) {
		/* not the pool's business: a server may refuse one more connection
		 * (a per-user limit) while the others work fine */
		log_warn("watching %s: %s; retrying", wr->path, err);
		set_state(wr, W_DOWN, false);
		return r;
	}
	if (!imap_has_capability(*out, "IDLE")) {
		imap_close(*out);
		*out = NULL;
		return -EOPNOTSUPP;
	}
	r = imap_select(*out, server, true, st);
	if (r < 0) {
		imap_close(*out);
		*out = NULL;
		set_state(wr, r == -ENOENT ? W_MISSING : W_DOWN, false);
		if (r == -ENOENT) /* gone: let the mount see it go */
			mailbox_resync(w->mb, *ino);
		return r;
	}
	log_debug("watching %s with IDLE on session %u", wr->path, imap_session_id(*out));
	return 0;
}

/* Waits for the pool to come back (its reconnector tells), at most
 * seconds, a second at a time so a stop is not delayed; false when stopping. */
static bool wait_for_pool(struct watch *w, int seconds)
{
	for (int i = 0; i < seconds; i++) {
		if (stopping(w))
			return false;
		if (pool_wait_up(w->pool, 1))
			return true;
	}
	return !stopping(w);
}

/* A server without IDLE: the folder is synced every poll_interval, on pool
 * connections, and nobody logs in again to ask about IDLE. */
static void poll_forever(struct watcher *wr, uint64_t ino)
{
	struct watch *w = wr->w;

	set_state(wr, W_POLLING, false);
	while (pause_for(w, w->poll_interval))
		resync(wr, ino, W_POLLING);
}

static void *watch_loop(void *arg)
{
	struct watcher *wr = arg;
	struct watch *w = wr->w;
	struct imap_session *s = NULL;
	uint64_t ino = 0;
	int backoff = 1;

	while (!stopping(w)) {
		int r;

		if (!s) {
			struct imap_folder_state st;

			r = connect_watch(wr, &s, &ino, &st);
			if (r == -EOPNOTSUPP) {
				poll_forever(wr, ino);
				break;
			}
			if (r < 0) {
				bool go_on = r != -ENOENT && pool_is_down(w->pool) ? wait_for_pool(w, backoff)
										   : pause_for(w, backoff);

				if (!go_on)
					break;
				backoff = backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX : backoff * 2;
				continue;
			}
			/* whatever happened while nobody watched, unless the
			 * listing already shows it (a mount that just listed
			 * the folder: no second SELECT on a pool session) */
			set_state(wr, W_SYNCING, false);
			r = mailbox_catch_up(w->mb, ino, &st);
			set_state(wr, W_IDLE, r == 0);
		}
		set_state(wr, W_IDLE, false);
		/* the IDLE itself, then what DONE brings, within the usual bounds */
		imap_limit_operation(s, IDLE_SECONDS + IMAP_OPERATION_SECONDS(w->acct->timeout));
		r = imap_idle(s, w->stop_pipe[0], IDLE_SECONDS);
		if (r < 0) {
			log_info("watching %s: the IDLE connection ended; reconnecting in %d s", wr->path,
				 backoff);
			imap_close(s);
			s = NULL;
			/* a BYE may mean the folder was deleted: find out */
			set_state(wr, W_DOWN, false);
			if (!stopping(w))
				resync(wr, ino, W_DOWN);
			/* a server that fails IDLE at once must not be hammered */
			if (!pause_for(w, backoff))
				break;
			backoff = backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX : backoff * 2;
			continue;
		}
		backoff = 1; /* an IDLE that worked: the connection is sound */
		if (r > 0)
			resync(wr, ino, W_IDLE);
	}
	imap_close(s);
	return NULL;
}

struct watch *watch_new(struct mailbox *mb, struct pool *pool, const struct imap_account *acct,
			const char *folders, int poll_interval)
{
	struct watch *w = calloc(1, sizeof(*w));
	char *list = strdup(folders ? folders : ""), *save = NULL;

	if (!w || !list || pipe(w->stop_pipe) < 0) {
		free(w);
		free(list);
		return NULL;
	}
	fcntl(w->stop_pipe[0], F_SETFD, FD_CLOEXEC);
	fcntl(w->stop_pipe[1], F_SETFD, FD_CLOEXEC);
	w->mb = mb;
	w->pool = pool;
	w->acct = acct;
	w->poll_interval = poll_interval > 0 ? poll_interval : 1;
	pthread_mutex_init(&w->lock, NULL);
	/* INBOX, and at most one folder per two characters ("a,b,c") */
	w->v = calloc(strlen(list) / 2 + 2, sizeof(*w->v));
	if (w->v)
		w->v[w->n++].path = strdup("INBOX");
	for (char *tok = strtok_r(list, ",", &save); w->v && tok; tok = strtok_r(NULL, ",", &save)) {
		bool dup = false;

		while (*tok == '/')
			tok++;
		for (size_t i = 0; i < w->n; i++)
			dup |= strcmp(w->v[i].path, tok) == 0;
		if (*tok && !dup)
			w->v[w->n++].path = strdup(tok);
	}
	free(list);
	for (size_t i = 0; w->v && i < w->n; i++) {
		w->v[i].w = w;
		if (!w->v[i].path) {
			watch_free(w);
			return NULL;
		}
	}
	if (!w->v) {
		watch_free(w);
		return NULL;
	}
	return w;
}

int watch_start(struct watch *w)
{
	for (size_t i = 0; i < w->n; i++) {
		int r = pthread_create(&w->v[i].thread, NULL, watch_loop, &w->v[i]);

		if (r != 0)
			return -r;
		w->v[i].started = true;
	}
	return 0;
}

void watch_stop(struct watch *w)
{
	char c = 1;

	if (!w)
		return;
	if (write(w->stop_pipe[1], &c, 1) < 0)
		log_debug("cannot signal the watchers to stop");
	for (size_t i = 0; i < w->n; i++) {
		if (w->v[i].started)
			pthread_join(w->v[i].thread, NULL);
		w->v[i].started = false;
	}
}

void watch_free(struct watch *w)
{
	if (!w)
		return;
	watch_stop(w);
	for (size_t i = 0; w->v && i < w->n; i++)
		free(w->v[i].path);
	free(w->v);
	close(w->stop_pipe[0]);
	close(w->stop_pipe[1]);
	pthread_mutex_destroy(&w->lock);
	free(w);
}

void watch_status(struct watch *w, FILE *out)
{
	time_t now = time(NULL);

	pthread_mutex_lock(&w->lock);
	for (size_t i = 0; i < w->n; i++) {
		const struct watcher *wr = &w->v[i];
		char when[TIMEFMT_ISO_SIZE] = "never";

		if (wr->last_sync)
			timefmt_iso(wr->last_sync, when);
		fprintf(out, "watch %s %s last_sync=%s age=%llds\n", wr->path, state_names[wr->state], when,
			wr->last_sync ? (long long)(now - wr->last_sync) : -1LL);
	}
	pthread_mutex_unlock(&w->lock);
}

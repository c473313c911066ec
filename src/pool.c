/* pool.c - owns the IMAP sessions: checkout with folder affinity, opening
 * sessions on demand (never under the lock), dropping dead ones, and the one
 * retry after a lost connection.
 * Lock order: pool.lock only; it is never held across network I/O. */
#include "pool.h"
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct slot {
	struct imap_session *session;	/* NULL: free to open; owned */
	bool busy;			/* checked out (or being opened) */
};

struct pool {
	const struct imap_account *acct;
	pthread_mutex_t lock;
	pthread_cond_t idle;		/* signalled when a slot is checked in */
	int nslots;
	struct slot slots[];		/* protected by lock */
};

struct pool *pool_new(const struct imap_account *acct, int max_sessions, struct imap_session *first)
{
	struct pool *p;

	if (max_sessions < 1)
		max_sessions = 1;
	p = calloc(1, sizeof(*p) + (size_t)max_sessions * sizeof(struct slot));
	if (!p)
		return NULL;
	p->acct = acct;
	p->nslots = max_sessions;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->idle, NULL);
	p->slots[0].session = first;
	return p;
}

void pool_free(struct pool *p)
{
	if (!p)
		return;
	for (int i = 0; i < p->nslots; i++)
		imap_close(p->slots[i].session);
	pthread_cond_destroy(&p->idle);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

/* Scores an idle slot: its folder already selected beats an open session,
 * which beats opening a new one. */
static int slot_score(const struct slot *sl, const char *folder)
{
	const char *sel;

	if (sl->busy)
		return -1;
	if (!sl->session)
		return 1;
	sel = imap_selected(sl->session);
	if (folder && sel && strcmp(sel, folder) == 0)
		return 3;
	return 2;
}

static int checkout_locked(struct pool *p, const char *folder)
{
	for (;;) {
		int best = -1, best_score = -1;

		for (int i = 0; i < p->nslots; i++) {
			int sc = slot_score(&p->slots[i], folder);

			if (sc > best_score) {
				best = i;
				best_score = sc;
			}
		}
		if (best >= 0) {
			p->slots[best].busy = true;
			return best;
		}
		pthread_cond_wait(&p->idle, &p->lock);
	}
}

static void checkin(struct pool *p, int i, struct imap_session *s)
{
	pthread_mutex_lock(&p->lock);
	p->slots[i].session = s;
	p->slots[i].busy = false;
	pthread_cond_signal(&p->idle);
	pthread_mutex_unlock(&p->lock);
}

static int open_session(struct pool *p, struct imap_session **s)
{
	char err[512];
	int r = imap_open(p->acct, s, err, sizeof(err));

	if (r < 0)
		log_warn("cannot open an IMAP session: %s", err);
	return r;
}

static int run_once(struct pool *p, struct imap_session **sp, const char *folder,
		    unsigned flags, pool_fn *fn, void *ctx, bool *ran)
{
	struct imap_folder_state state = { 0 };
	int r;

	*ran = false;
	if (!*sp && (r = open_session(p, sp)) < 0)
		return r;
	if (folder && (r = imap_select(*sp, folder, flags & POOL_FRESH_SELECT, &state)) < 0)
		return r;
	*ran = true;
	return fn(*sp, &state, ctx);
}

int pool_run(struct pool *p, const char *folder, unsigned flags, pool_fn *fn, void *ctx)
{
	struct imap_session *s;
	bool ran;
	int i, r;

	pthread_mutex_lock(&p->lock);
	i = checkout_locked(p, folder);
	s = p->slots[i].session;
	pthread_mutex_unlock(&p->lock);

	r = run_once(p, &s, folder, flags, fn, ctx, &ran);
	/* a session found dead before fn ran can always be replaced */
	if (s && imap_dead(s) && (!ran || !(flags & POOL_NO_RETRY))) {
		imap_close(s);
		s = NULL;
		log_info("reconnecting to retry the request");
		r = run_once(p, &s, folder, flags, fn, ctx, &ran);
	}
	if (s && imap_dead(s)) {
		imap_close(s);
		s = NULL;
	}
	checkin(p, i, s);
	return r;
}

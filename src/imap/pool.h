/* pool.h - a bounded set of IMAP sessions shared by the FUSE threads.  Each
 * session serves one thread at a time; a request prefers a session that
 * already has its folder selected.  A session that dies is dropped without
 * LOGOUT and the request is retried once on a fresh connection.  When the
 * server cannot be reached or stops answering, the pool is "down": requests
 * fail with EIO at once, and a background thread reconnects with exponential
 * backoff (1 s doubling to 60 s). */
#ifndef IMAPFS_POOL_H
#define IMAPFS_POOL_H

#include "imap.h"

#include <stdio.h>

struct pool;

/* The work done with a checked-out session.  state is the selected folder's
 * state (all zero when folder was NULL).  Returns 0 or -errno. */
typedef int pool_fn(struct imap_session *s, const struct imap_folder_state *state, void *ctx);

/* acct must outlive the pool.  first, if not NULL, is an already logged-in
 * session the pool adopts. */
struct pool *pool_new(const struct imap_account *acct, int max_sessions, struct imap_session *first);

/* Logs out every session and frees the pool; no request may be running. */
void pool_free(struct pool *p);

enum {
	POOL_FRESH_SELECT = 1 << 0, /* SELECT again even if selected: exact EXISTS */
	POOL_NO_RETRY = 1 << 1,     /* fn changes things: never run it twice blindly */
	POOL_BESIDE = 1 << 2,       /* a side job: leaves a session that has folder
				     * selected to the work a reader waits for,
				     * when another is free */
};

/* Checks out a session (waiting while all are busy, at most the account's
 * timeout), SELECTs folder (a modified UTF-7 name, or NULL for none), runs fn,
 * and checks the session back in.  If the connection died, fn runs once more
 * on a new connection (with POOL_NO_RETRY only when it died before fn ran);
 * not when the server stopped answering: then the pool goes down.  -EIO at
 * once while down. */
int pool_run(struct pool *p, const char *folder, unsigned flags, pool_fn *fn, void *ctx);

/* Starts and stops the background reconnection thread. */
int pool_start(struct pool *p);
void pool_stop(struct pool *p);

bool pool_is_down(struct pool *p);
/* While down: try to reconnect now instead of waiting out the backoff. */
void pool_wake(struct pool *p);
/* Waits up to seconds for the pool to be up; true when it is. */
bool pool_wait_up(struct pool *p, int seconds);

/* The pool's state and one line per connection, for MOUNT/.status. */
void pool_status(struct pool *p, FILE *out);

#endif

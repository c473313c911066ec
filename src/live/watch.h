/* watch.h - folders watched with IMAP IDLE (INBOX and -o watch=...), each on
 * a dedicated connection, so changes reach the mount (and inotify) within a
 * second instead of at the next dir_cache refresh. */
#ifndef IMAPFS_WATCH_H
#define IMAPFS_WATCH_H

#include <stdio.h>

#include "imap/imap.h"
#include "model/mailbox.h"
#include "imap/pool.h"

struct watch;

/* folders: comma-separated mount paths (may be NULL); INBOX is always one.
 * A server without IDLE gets the folders synced every poll_interval s. */
struct watch *watch_new(struct mailbox *mb, struct pool *pool, const struct imap_account *acct,
			const char *folders, int poll_interval);
void watch_free(struct watch *w);

/* Threads start after daemonising; stop before the mailbox goes. */
int watch_start(struct watch *w);
void watch_stop(struct watch *w);

/* One line per watched folder, for MOUNT/.status. */
void watch_status(struct watch *w, FILE *out);

#endif

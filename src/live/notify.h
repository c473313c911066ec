/* notify.h - pushes changes found by syncs (another client's APPEND, EXPUNGE,
 * MOVE, STORE; new mail) into the kernel from a thread of its own, so
 * `ls` is right at once and inotify watchers see IN_CREATE, IN_DELETE and
 * IN_ATTRIB.  See notify.c for how the events are raised. */
#ifndef IMAPFS_NOTIFY_H
#define IMAPFS_NOTIFY_H

#include <stdio.h>
#include <fuse_lowlevel.h>

#include "model/mailbox.h"

struct notify;

/* mountpoint is resolved to an absolute path now (the daemon chdirs to /). */
struct notify *notify_new(struct mailbox *mb, const char *mountpoint);
void notify_free(struct notify *n);

/* Starts the thread once the session exists.  When the session loop ends:
 * notify_quiesce (nothing new is announced), then unmount (which fails an
 * announcement the kernel still holds: no worker would answer it), then
 * notify_stop joins the thread. */
int notify_start(struct notify *n, struct fuse_session *se);
void notify_quiesce(struct notify *n);
void notify_stop(struct notify *n);

/* A mailbox_change_hook (ctx is the notify): queues, never blocks. */
void notify_changes(const struct mailbox_change *changes, size_t count, void *ctx);

/* A prefetch_whole_fn (ctx is the notify): the whole body of message ino,
 * read ahead, stored in the kernel's page cache, so the reader's read is
 * answered there (its open keeps the cache: see ops_open).  Called by a
 * prefetch worker, which holds no lock; nothing after notify_quiesce. */
void notify_body(uint64_t ino, char *body, size_t len, void *ctx);

/* What the notify thread is announcing right now. */
enum notify_role {
	NOTIFY_NONE, /* not the notify thread: a real request */
	NOTIFY_ADD,
	NOTIFY_REMOVE,
	NOTIFY_FLAGS,
	NOTIFY_STRAY, /* the notify thread, but not what it announces: refuse it */
};

struct notify_announcement {
	enum notify_role role;
	fuse_ino_t parent;
	const char *name;
	fuse_ino_t ino;
	uint32_t size; /* of the message, for the entry of one that went */
	int64_t date;
};

/* For a handler: is req the notify thread announcing (parent, name) (or,
 * with name NULL, inode *ino)?  The role, and *a (may be NULL) filled. */
enum notify_role notify_announced(struct notify *n, fuse_req_t req, fuse_ino_t parent, const char *name,
				  fuse_ino_t *ino, struct notify_announcement *a);

/* One line of counters for MOUNT/.status. */
void notify_status(struct notify *n, FILE *out);

#endif

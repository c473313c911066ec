/* changes.h - changes to messages made exactly once (model-private, like
 * mailbox_p.h).  Each change is recorded in the journal, synced, before its
 * first command goes to the server; it is resolved -- and forgotten -- only
 * when the server's state proves its outcome:
 *   completed    the message is in the destination, among the UIDs at or
 *                above the UIDNEXT read before the command, with the same
 *                size and INTERNALDATE (never an older copy), and gone
 *                from the source;
 *   rolled back  the source is still there and nothing new arrived: the
 *                change is retried (once, while its caller waits, or when
 *                the caller was told it is done), else reported failed;
 *   half done    both (a MOVE killed between its copy and its expunge):
 *                finished, one copy in the destination -- or, when the
 *                server refused a step of it (not a lost connection),
 *                undone, one copy in the source.
 * What cannot be resolved (a folder re-created, the message gone from both)
 * is parked in the journal's unresolved.txt with what happened.
 *
 * Pending entries are resolved before a listing of their folders is
 * synced, at the next mount after a crash, and by a background thread
 * while the server is unreachable.  Threads: any; no lock is held across
 * network I/O (an entry being resolved is marked busy instead). */
#ifndef IMAPFS_CHANGES_H
#define IMAPFS_CHANGES_H

#include "mailbox_p.h"

#include <stdio.h>

struct flag_set;

/* A message as its listing knows it. */
struct change_msg {
	const char *folder; /* server name */
	uint32_t validity, uid;
	uint64_t size; /* RFC822.SIZE; 0 when the listing corrected it */
	int64_t date;  /* INTERNALDATE */
};

/* Where a change puts a message: a folder (server name) and, when the
 * model knows it freshly, its UIDVALIDITY and the lowest UID an arrival can
 * have (next_uid; 0: unknown, then STATUS asks before the change). */
struct change_dest {
	const char *folder;
	uint32_t validity, next_uid;
};

/* Moves m to dest, or deletes it for good (dest NULL).  0 with *new_uid (0 if the server did not say), or -errno when the
 * message stayed where it was -- or when its outcome could not be
 * established: then the entry stays pending and is resolved later, the
 * message ending up in exactly one of the two folders. */
int changes_move(struct mailbox *mb, const struct change_msg *m, const struct change_dest *dest,
		 uint32_t *new_uid);

/* Sets the flags of m to text (user.imap.flags' format: system flags and
 * keywords; \Deleted is left as it is).  0 or -errno. */
int changes_flags(struct mailbox *mb, const struct change_msg *m, const char *text);

/* APPENDs data to dest; stored is its size as the server will
 * store it (line ends made CRLF).  date 0: now (an explicit INTERNALDATE
 * lets the message be recognised later).  0 with *new_uid, or -errno when
 * it was not stored. */
int changes_append(struct mailbox *mb, const struct change_dest *dest, const char *data, size_t len,
		   uint64_t stored, const struct flag_set *flags, int64_t date, uint32_t *new_uid);

/* Resolves the pending entries that touch folder (a server name; NULL: all)
 * now, as far as the server can be reached.  The number still pending. */
size_t changes_settle(struct mailbox *mb, const char *folder);

/* The UIDs of folder (server name, at UIDVALIDITY validity) that pending
 * moves and deletes take away: a listing hides them until resolved.
 * *uids malloc'd (NULL when none), ascending. */
int changes_leaving(struct mailbox *mb, const char *folder, uint32_t validity, uint32_t **uids, size_t *n);

/* ---- -o writeback: changes return once journaled, and a flusher sends
 * them in batches (writeback.c) ---- */

/* Records the move of m to dest (NULL: deleted for good), shown under name
 * there, as acknowledged; *id is its entry, claimed: the caller shows the
 * change, then calls changes_queued. */
int changes_queue_move(struct mailbox *mb, const struct change_msg *m, const struct change_dest *dest,
		       const char *name, uint64_t *id);
/* Records flags text for m likewise. */
int changes_queue_flags(struct mailbox *mb, const struct change_msg *m, const char *text, uint64_t *id);
/* Records the APPEND of data (len bytes; stored: as the server will store
 * it), shown as name, to dest with flags and INTERNALDATE date (0: now), staging the data
 * in the journal; *staged (malloc'd) names the copy, *id the entry,
 * claimed as by changes_queue_move. */
int changes_queue_append(struct mailbox *mb, const struct change_dest *dest, const char *name,
			 const char *data, size_t len, uint64_t stored, const struct flag_set *flags,
			 int64_t date, uint64_t *id, char **staged);
/* Records CREATE of folder server likewise. */
int changes_queue_create(struct mailbox *mb, const char *server, uint64_t *id);
/* The mount shows entry id's change: the flusher may send it. */
void changes_queued(struct mailbox *mb, uint64_t id);
/* Waits (up to the mount's timeout) until entry id is on the server: 0, or
 * -errno (-EIO: not yet; the errno of its conflict). */
int changes_wait_entry(struct mailbox *mb, uint64_t id);
/* Waits until every acknowledged change is on the server (fsync, and
 * unmount with log_left): 0, -EIO when some are not, or a conflict's
 * errno since the wait began. */
int changes_wait_all(struct mailbox *mb, bool log_left);
/* The latest flags a pending change sets on uid of folder (server name),
 * malloc'd; NULL when none. */
char *changes_pending_flags(struct mailbox *mb, const char *folder, uint32_t validity, uint32_t uid);
/* Write-back's lines for .status. */
void changes_status(struct mailbox *mb, FILE *out);
/* The view of acknowledged changes an earlier mount left (at mount). */
void changes_show_pending(struct mailbox *mb);
/* Sends them now, before the mount serves anything: no change made
 * through it meets one of them half sent (at mount). */
void changes_flush_now(struct mailbox *mb);

/* The state of changes in flight, made with the mailbox (mb->journal may
 * be NULL: then changes are sent without a journal, as in a unit test). */
int changes_init(struct mailbox *mb);
void changes_free(struct mailbox *mb);

/* The background resolver: started after mounting, stopped before the
 * pool goes. */
int changes_start(struct mailbox *mb);
void changes_stop(struct mailbox *mb);

#endif

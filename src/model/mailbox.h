/* mailbox.h - the account as the filesystem sees it: a tree of folders, each
 * with an immutable, refcounted snapshot of its messages (UID, size, date,
 * flags, file name), refreshed from the server when older than dir_cache.
 * Reads of message bodies go through the block cache.  Thread-safe. */
#ifndef IMAPFS_MAILBOX_H
#define IMAPFS_MAILBOX_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <stdio.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "cache/cache.h"
#include "util/names.h"
#include "imap/pool.h"
#include "mapi/msgclass.h"

struct mailbox;
struct files_dir;

struct journal;

struct mailbox_options {
	enum names_mode names;
	int dir_cache;                     /* seconds a listing stays fresh */
	const char *trash;                 /* -o trash=: folder path for rm, NULL: find it */
	bool rm_expunge;                   /* -o rm=expunge: rm deletes for good */
	const char *account;               /* "user@host:port": part of every cache key */
	const struct files_dir *cache_dir; /* listings are kept in cache_dir/folders */
	bool offline_fail;                 /* -o offline=fail: no cached data while the server is down */
	int timeout;                       /* the network timeout, seconds (0: 30): bounds waits for */
					   /* another thread's LIST or folder sync */
	struct journal *journal;           /* the change journal (journal.h); NULL: none */
	bool writeback;                    /* -o writeback: mv, rm, flags return once journaled */
	int writeback_delay;               /* seconds a change waits to be sent with others */
};

struct mailbox *mailbox_new(struct pool *pool, struct cache *cache, const struct mailbox_options *o);
void mailbox_free(struct mailbox *mb);

/* Resolves the changes an earlier mount left pending in the journal (at
 * mount, before serving); the number still pending. */
size_t mailbox_settle_changes(struct mailbox *mb);
/* The background resolver of pending changes: started once mounted,
 * stopped before the pool goes. */
int mailbox_start(struct mailbox *mb);
void mailbox_stop(struct mailbox *mb);

struct prefetch;
/* Reads ahead through p (NULL: never). */
void mailbox_set_prefetch(struct mailbox *mb, struct prefetch *p);

/* LIST the folders now (done once before mounting, so errors show early). */
int mailbox_load_folders(struct mailbox *mb);

/* The UIDVALIDITY of a message inode's folder as listed (0: none yet). */
uint64_t mailbox_generation(struct mailbox *mb, uint64_t ino);
/* The inode's generation as the kernel is told it: that UIDVALIDITY, so
 * the kernel drops what it cached of a message when the folder is
 * re-created with other mail under the same UIDs -- but for the inodes a
 * remount gave out from a saved listing before its sync (see told_as in
 * mailbox_p.h). */
uint64_t mailbox_entry_generation(struct mailbox *mb, uint64_t ino);

/* Attributes of an inode; -ENOENT when it no longer exists. */
int mailbox_getattr(struct mailbox *mb, uint64_t ino, struct stat *st);

/* Resolves name inside directory parent; fills st (st_ino is the inode).
 * -ENOENT when the name is in neither the folder tree nor the folder's
 * listing, each refreshed first when older than a second (the tree at the
 * root: always); -EIO when the server could not be asked. */
int mailbox_lookup(struct mailbox *mb, uint64_t parent, const char *name, struct stat *st);

/* A directory listing frozen at opendir, so offsets stay stable. */
struct mailbox_dir;
/* Takes the opened directory (to be closed with mailbox_closedir). */
typedef void mailbox_dir_ready(struct mailbox_dir *d, void *ctx);
/* Opens directory ino: 0 once ready has had it, or -errno (ready not
 * called).  ready runs on this thread, maybe before this call returns: a
 * folder's first listing is handed over as soon as its FETCH has begun, and
 * the call returns when the FETCH has ended. */
int mailbox_opendir(struct mailbox *mb, uint64_t ino, mailbox_dir_ready *ready, void *ctx);
void mailbox_closedir(struct mailbox_dir *d);
/* Entries known at opendir (the root's; a streamed listing's are not). */
size_t mailbox_dir_count(const struct mailbox_dir *d);
/* mailbox_generation for an entry of d: its listing's, not the folder's. */
uint64_t mailbox_dir_generation(struct mailbox *mb, const struct mailbox_dir *d, uint64_t ino);
enum {
	MAILBOX_DIR_END,
	MAILBOX_DIR_ENTRY,
	MAILBOX_DIR_SKIP,
	MAILBOX_DIR_LATER
};
#define MAILBOX_DIR_NAME_SIZE 256 /* a message name and its NUL */
/* Entry i (0-based, "." and ".." included): MAILBOX_DIR_ENTRY with name and
 * st filled (name may point into namebuf, MAILBOX_DIR_NAME_SIZE bytes),
 * MAILBOX_DIR_SKIP for a message moved away since, MAILBOX_DIR_END, or, in
 * a listing still streaming in, MAILBOX_DIR_LATER when entry i has not
 * arrived and wait is false (with wait it is waited for, bounded), or a
 * negative errno when its sync failed or stalled. */
int mailbox_dir_entry(struct mailbox *mb, const struct mailbox_dir *d, size_t i, bool wait, char *namebuf,
		      const char **name, struct stat *st);

/* An open message: what a read needs, fixed at open. */
struct mailbox_file;
/* *uncached is set when the kernel's copy must not be trusted (use direct
 * I/O): the server's RFC822.SIZE proved wrong, or the folder was re-created
 * (new UIDVALIDITY) while mounted, so old pages may sit under this inode. */
int mailbox_open(struct mailbox *mb, uint64_t ino, struct mailbox_file **out, bool *uncached);
void mailbox_release(struct mailbox_file *f);
/* What a read gives: pieces of the cache's blocks themselves, in order, held
 * until mailbox_read_done (a reply to the kernel is written from them, with
 * no copy in between). */
struct mailbox_pieces {
	size_t count;
	struct iovec *iov;
	char **held; /* the references that keep each piece's bytes */
};
/* Reads up to size bytes at off into out (released with mailbox_read_done
 * whatever the result); returns the count (0 at the end) or -errno. */
long mailbox_read_pieces(struct mailbox *mb, struct mailbox_file *f, size_t size, off_t off,
			 struct mailbox_pieces *out);
void mailbox_read_done(struct mailbox_pieces *p);

/* ---- changes (mailbox_write.c); all return 0 or -errno ---- */

struct flag_set;

/* rename(2): a message to another folder (MOVE), or a folder (RENAME). */
int mailbox_rename(struct mailbox *mb, uint64_t parent, const char *name, uint64_t newparent,
		   const char *newname);
/* unlink(2) of a message: to Trash, or for good in Trash / with rm=expunge. */
int mailbox_unlink(struct mailbox *mb, uint64_t parent, const char *name);
int mailbox_mkdir(struct mailbox *mb, uint64_t parent, const char *name, struct stat *st);
int mailbox_rmdir(struct mailbox *mb, uint64_t parent, const char *name);

/* Whether new messages can be stored in directory ino (a selectable folder). */
int mailbox_can_append(struct mailbox *mb, uint64_t ino);
/* The most one message may have once its line ends are CRLF, whatever the
 * server allows: libetpan 1.9.4 announces an APPEND literal's length as a
 * 32-bit number but sends every byte, so the tail of a message of 4 GiB or
 * more would run as commands in the session.  2 GiB leaves room to spare
 * (and keeps a mapping of the data possible on 32-bit systems). */
#define MAILBOX_APPEND_MAX ((uint64_t)2 << 30)
/* The size limit of a new message: the server's APPENDLIMIT (RFC 7889) if it
 * has one, bounded by MAILBOX_APPEND_MAX.  Asks a session (no network I/O);
 * -errno when none could be had, and then *limit is MAILBOX_APPEND_MAX. */
int mailbox_append_limit(struct mailbox *mb, uint64_t *limit);
/* Checks data is a message, APPENDs it to folder ino with flags (may be
 * NULL) and date (0: now); name is what the writer called it, from_ino the
 * inode it had.  *new_ino is where it lives now.  -EFBIG, sending nothing,
 * when the message (its line ends made CRLF) is over the limit. */
int mailbox_append(struct mailbox *mb, uint64_t folder_ino, const char *name, uint64_t from_ino,
		   const char *data, size_t len, const struct flag_set *flags, int64_t date);

/* Extended attributes of message ino: value malloc'd in *value. */
int mailbox_getxattr(struct mailbox *mb, uint64_t ino, const char *name, char **value, size_t *len);
/* The attribute names, NUL-separated. */
const char *mailbox_xattr_names(size_t *len);
/* Replaces the flags (user.imap.flags); \Deleted in text is ignored. */
int mailbox_set_flags(struct mailbox *mb, uint64_t ino, const char *text, size_t len);
/* Waits until the changes -o writeback acknowledged are on the server
 * (bounded by the timeout): 0, or -errno (EIO: not all; a conflict's). */
int mailbox_sync_changes(struct mailbox *mb);

/* ---- live updates ---- */

/* What a sync found out that the kernel does not know yet. */
enum mailbox_change_kind {
	MAILBOX_CHANGE_ADDED,    /* a message came (another client, new mail) */
	MAILBOX_CHANGE_REMOVED,  /* a message went (expunged, moved away) */
	MAILBOX_CHANGE_FLAGS,    /* a message's flags changed */
	MAILBOX_CHANGE_RELOADED, /* the whole folder was replaced (UIDVALIDITY) */
	MAILBOX_CHANGE_FOLDERS,  /* folders were created or deleted */
};

struct mailbox_change {
	enum mailbox_change_kind kind;
	uint32_t folder; /* folder id (inode_of_folder) */
	uint32_t uid;
	const char *name; /* the message's file name; valid during the call */
	uint32_t size;    /* the message's size and date (ADDED, REMOVED, FLAGS) */
	int64_t date;
};

/* Called after a sync published its listing, with no lock held, by whatever
 * thread synced (possibly one serving a FUSE request: the hook must queue,
 * not call into the kernel). */
typedef void mailbox_change_hook(const struct mailbox_change *changes, size_t n, void *ctx);
void mailbox_set_change_hook(struct mailbox *mb, mailbox_change_hook *fn, void *ctx);

/* Syncs folder ino with the server now (touch, IDLE), reporting changes. */
int mailbox_resync(struct mailbox *mb, uint64_t ino);

/* The same, unless the listing of ino already reflects seen, the state a
 * SELECT reported (CONDSTORE's HIGHESTMODSEQ, same UIDVALIDITY): the
 * first sync of a watcher that just selected a folder this mount listed. */
int mailbox_catch_up(struct mailbox *mb, uint64_t ino, const struct imap_folder_state *seen);

/* The folder ino of a folder path ("INBOX"), even one not LISTed yet, and
 * its server name, valid until mailbox_free (a name replaced by RENAME or
 * by a later LIST is kept, not freed). */
int mailbox_watch_target(struct mailbox *mb, const char *path, uint64_t *ino, const char **server);

/* The mount path of folder id ("" for the root), malloc'd; NULL if none. */
char *mailbox_folder_path(struct mailbox *mb, uint32_t id);

/* For MOUNT/.status: per watched-or-listed folder a line; the pool's state
 * and connections; the block cache's figures. */
void mailbox_status(struct mailbox *mb, FILE *out);
void mailbox_status_connections(struct mailbox *mb, FILE *out);
void mailbox_status_cache(struct mailbox *mb, FILE *out);

/* ---- for receive folders ---- */

/* Told when a folder is renamed (new_path set) or removed (new_path NULL)
 * through the mount; runs in the thread that made the change. */
typedef void mailbox_folder_hook(const char *old_path, const char *new_path, void *ctx);
void mailbox_set_folder_hook(struct mailbox *mb, mailbox_folder_hook *fn, void *ctx);

/* The directory inode of a folder path ("INBOX", "Archive/2024"): -ENOENT
 * when there is none, -EOPNOTSUPP when it cannot hold messages. */
int mailbox_folder_by_path(struct mailbox *mb, const char *path, uint64_t *ino);

/* The MAPI message class of message ino (receive-folders.md section 2),
 * from BODYSTRUCTURE and the parts a rule must read; remembered per message.
 * Never fails for a message that exists (IPM.Note when unsure).  out has
 * room for MSGCLASS_SIZE bytes. */
int mailbox_message_class(struct mailbox *mb, uint64_t ino, char *out, size_t outlen);

/* Message inodes of folder ino with a UID above `after`, freshly synced. */
int mailbox_new_messages(struct mailbox *mb, uint64_t folder_ino, uint32_t after, uint64_t **inos,
			 size_t *count, uint32_t *top_uid);

/* Moves message ino into folder ino (as mv does). */
int mailbox_move_to(struct mailbox *mb, uint64_t msg_ino, uint64_t folder_ino);

/* Is data an Internet message (a header section first)?  Used for EINVAL. */
bool mailbox_looks_like_message(const char *data, size_t len);

#endif

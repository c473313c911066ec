/* mailbox_p.h - the model's insides, shared by mailbox.c (tree, names,
 * directories), listing.c (message snapshots and their sync), mailbox_read.c
 * (the read path), mailbox_resolve.c (what a message's name or inode stands
 * for), mailbox_write.c (changes) and mailbox_rmdir.c (rmdir).  Nobody else
 * includes it.
 * Lock order: mailbox.tree_lock, then folder.lock, then forward_lock;
 * rmdir_lock is taken alone.  No lock is held across network I/O: a refresh
 * is marked `syncing` and runs unlocked. */
#ifndef IMAPFS_MAILBOX_P_H
#define IMAPFS_MAILBOX_P_H

#include "mailbox.h"
#include "journal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

struct msg {
	uint32_t uid;
	uint32_t size;		/* RFC822.SIZE until a read proves otherwise; atomic */
	int64_t date;
	uint32_t name_off;	/* into listing.names */
	uint8_t flags;
};

/* Immutable once published (but for msg.size); shared by refcount. */
struct listing {
	unsigned refs;		/* atomic */
	uint32_t uidvalidity;
	uint64_t modseq;	/* HIGHESTMODSEQ it reflects (CONDSTORE), else 0 */
	size_t count;
	struct msg *msgs;	/* sorted by UID */
	char *names;		/* NUL-terminated names, back to back */
	size_t names_len;
	uint32_t *by_name;	/* indices of msgs in byte order of names (ls, cat *) */
};

/* A name a message was given by mv or cp, besides its canonical one.  It
 * never hides a listed message's own name, and goes with its message. */
struct alias {
	char *name;
	uint32_t uid;
	uint32_t uidvalidity;	/* of the listing it was first seen in; 0: not yet */
};

/* Where an inode went: a moved message, or a file created by cp. */
struct forward {
	uint64_t from;
	uint32_t folder;
	uint32_t uid;
};

/* A message class, once derived: messages never change. */
struct known_class {
	uint32_t uid;
	uint32_t uidvalidity;
	char *cls;
};

#define MSG_SIZE_CORRECTED 0x80	/* in msg.flags: RFC822.SIZE proved wrong */
#define MSG_SIZE_VERIFIED 0x40	/* in msg.flags: checked against the body once */

#define MB_MAX_ALIASES 256
#define MB_MAX_CLASSES 4096
#define MB_MAX_FORWARDS 4096

/* path and server are read without a lock (pool_run callers, the watcher,
 * prefetch), so they are atomic and a string they held is never freed before
 * unmount: a replaced one goes to mailbox.retired (mb_rename_locked). */
struct folder {
	uint32_t id;
	uint32_t parent;	/* folder id; the root is its own parent */
	_Atomic(char *) path;	/* UTF-8, '/'-separated, "" for the root */
	const char *leaf;	/* last component, inside path; under tree_lock */
	_Atomic(char *) server;	/* modified UTF-7 name; NULL for virtual directories */
	atomic_bool noselect;
	bool present;		/* in the last LIST (or an ancestor of one) */
	unsigned special;	/* IMAP_LIST_TRASH etc. from LIST */

	pthread_mutex_t lock;	/* protects the fields below */
	pthread_cond_t synced;
	struct listing *listing;	/* NULL until first synced */
	struct timespec synced_at;	/* zero: stale, sync before use */
	time_t last_sync;	/* wall clock of the last good sync, for .status */
	bool syncing;
	bool disk_tried;	/* the listing saved by an earlier mount was looked for */
	bool reloaded;		/* UIDVALIDITY changed while mounted: no kernel page cache; atomic */
	uint32_t *removed;	/* UIDs moved or deleted here since the last sync */
	size_t nremoved;
	struct alias *aliases;	/* names used by mv/cp for messages that came in */
	size_t naliases;
	struct known_class *classes;	/* message classes derived so far (a ring) */
	size_t nclasses;
	uint32_t last_opened;	/* read-ahead: the UID opened last */
	int ahead_order;	/* 1: UID order, 2: name order */
	size_t ahead_to;	/* position up to which read-ahead was asked for */
};

struct mailbox {
	struct pool *pool;
	struct cache *cache;
	struct journal *journal;	/* every change recorded first; may be NULL */
	struct changes *changes;	/* changes in flight (changes.c) */
	struct mailbox_options opt;
	uid_t uid;
	gid_t gid;
	time_t mount_time;

	pthread_rwlock_t tree_lock;	/* protects folders and their tree fields */
	struct folder **folders;	/* index = folder id; never shrinks */
	size_t nfolders, cap;

	atomic_char delim;		/* the server's hierarchy delimiter */

	pthread_mutex_t list_lock;	/* one LIST at a time */
	struct timespec listed_at;	/* protected by list_lock */

	struct prefetch *prefetch;		/* may be NULL */
	mailbox_folder_hook *folder_hook;	/* told of renames and removals */
	void *folder_hook_ctx;
	mailbox_change_hook *change_hook;	/* told what a sync found */
	void *change_ctx;

	char **retired;			/* paths and server names replaced (RENAME, */
	size_t nretired;		/* LIST): readers may hold them; freed at exit */

	pthread_mutex_t rmdir_lock;	/* protects rmdir_busy */
	char **rmdir_busy;		/* private names of folders rmdir is checking */
	size_t nrmdir_busy;		/* (the strings belong to the rmdir) */

	pthread_mutex_t forward_lock;	/* protects forwards */
	struct forward forwards[MB_MAX_FORWARDS];	/* a ring */
	size_t next_forward;
};

struct mailbox_dir {
	uint32_t folder;
	struct listing *listing;	/* referenced; NULL for a noselect folder */
	uint32_t *removed;		/* copy of the folder's removed UIDs */
	size_t nremoved;
	size_t nsub;
	uint32_t *sub_ids;
	char **sub_names;
};

struct mailbox_file {
	uint64_t key;		/* the folder's cache key */
	uint32_t last_block;	/* read-ahead: the block read last, and how far */
	uint32_t ahead_block;	/* ahead it was asked for */
	uint32_t folder;
	uint32_t uidvalidity;
	uint32_t uid;
	uint64_t size;		/* verified at open: at most UINT32_MAX */
	char *server;
};

/* The folder's key in the caches: stable across mounts, unlike its id. */
uint64_t mb_folder_key(const struct mailbox *mb, const struct folder *f);

/* time */
double mb_age(const struct timespec *t);	/* seconds since t; huge when t is zero */
void mb_stamp(struct timespec *t);

/* listings (listing.c) */
void mb_listing_put(struct listing *l);
struct listing *mb_listing_get(struct listing *l);
const char *mb_msg_name(const struct listing *l, const struct msg *m);
uint32_t mb_msg_size(const struct msg *m);
struct msg *mb_listing_find(const struct listing *l, uint32_t uid);
/* A referenced listing no older than max_age seconds, or NULL with *err. */
struct listing *mb_listing(struct mailbox *mb, struct folder *f, double max_age, int *err);
/* -o offline=fail while the server is unreachable: fail at once. */
bool mb_offline_refused(struct mailbox *mb);
/* The next use of f's listing asks the server first. */
void mb_mark_stale(struct folder *f);
/* uid left f (moved, deleted): hide it until the next sync confirms. */
void mb_forget_message(struct folder *f, uint32_t uid);
bool mb_is_removed_locked(const struct folder *f, uint32_t uid);
void mb_add_alias(struct folder *f, const char *name, uint32_t uid);

/* the tree (mailbox.c) */
struct folder *mb_folder(struct mailbox *mb, uint32_t id);
struct folder *mb_folder_locked(struct mailbox *mb, uint32_t id);
struct folder *mb_subfolder_locked(struct mailbox *mb, uint32_t parent, const char *name);
struct folder *mb_folder_by_path_locked(struct mailbox *mb, const char *path);
size_t mb_count_subdirs_locked(struct mailbox *mb, uint32_t id);
int mb_refresh_tree(struct mailbox *mb, double max_age);
/* Gives f a new path (and leaf) or server name (either may be NULL: kept);
 * the old strings are retired, not freed.  tree_lock held for writing.
 * -ENOMEM leaves f as it was. */
int mb_rename_locked(struct mailbox *mb, struct folder *f, const char *path, const char *server);
void mb_dir_stat_locked(struct mailbox *mb, const struct folder *f, struct stat *st);
void mb_msg_stat(struct mailbox *mb, uint32_t folder, const struct msg *m, struct stat *st);

/* names and inodes of messages (mailbox_resolve.c) */
/* The UID a name in folder f stands for (canonical name, UID.eml, alias). */
int mb_resolve_message(struct mailbox *mb, struct folder *f, const char *name, uint32_t *uid,
		       uint32_t *uidvalidity);
/* Where the message an inode names is now (following moves); st optional. */
int mb_locate(struct mailbox *mb, uint64_t ino, uint32_t *id, uint32_t *uid, struct stat *st);
void mb_add_forward(struct mailbox *mb, uint64_t from, uint32_t folder, uint32_t uid);
bool mb_find_forward(struct mailbox *mb, uint64_t from, uint32_t *folder, uint32_t *uid);
/* mailbox_lookup of a message name in folder f: st filled. */
int mb_lookup_message(struct mailbox *mb, struct folder *f, const char *name, struct stat *st);

/* rmdir (mailbox_rmdir.c) */
#define MB_RMDIR_PREFIX "imapfs-rmdir-"	/* + 8 hex digits + '-' + the real leaf */
/* DELETE of folder server (modified UTF-7) only when it holds no message and
 * no subfolder, hidden ones included, checked under a private name:
 * 0, -ENOTEMPTY or -errno. */
int mb_delete_empty_folder(struct mailbox *mb, const char *server);
/* Whether LIST's name is (inside) a folder an rmdir of this mount checks. */
bool mb_rmdir_busy(struct mailbox *mb, const char *name, char delim);
/* The real name (malloc'd) of a folder an interrupted rmdir left under its
 * private name, NULL for any other name. */
char *mb_rmdir_leftover(struct mailbox *mb, const char *name, char delim);

#endif

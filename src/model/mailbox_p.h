/* mailbox_p.h - the model's insides, shared by its files: mailbox.c (tree,
 * attributes, directories), tree_refresh.c (the tree from LIST), listing*.c
 * (message snapshots, their sync, store and refresh), mailbox_read.c (the
 * read path), mailbox_resolve.c (what a message's name or inode stands
 * for), mailbox_write.c (changes to messages), mailbox_append.c (new
 * messages), mailbox_folders.c and mailbox_rmdir.c (changes to folders).
 * Nobody else includes it.
 *
 * Locks, in the order they may be taken (src/README, section Locks, has
 * the whole program's):  mailbox.tree_lock  ->  folder.lock  ->
 * mailbox.forward_lock; mailbox.list_lock and rmdir_lock are leaves.  Only
 * folder.lock is ever taken inside another (tree_lock) today.  No lock is
 * held across network I/O: a folder's sync is marked folder.syncing, a LIST
 * mailbox.listing_folders, and both run unlocked while others wait on a
 * condition variable for their result. */
#ifndef IMAPFS_MAILBOX_P_H
#define IMAPFS_MAILBOX_P_H

#include "mailbox.h"
#include "journal.h"
#include "listing.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

/* A name a message was given by mv or cp, besides its canonical one.  It
 * never hides a listed message's own name, and goes with its message. */
struct alias {
	char *name;
	uint32_t uid;
	uint32_t uidvalidity; /* of the listing it was first seen in; 0: not yet */
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

#define MB_MAX_ALIASES 256
#define MB_MAX_CLASSES 4096
#define MB_MAX_FORWARDS 4096

/* path and server are read without a lock (pool_run callers, the watcher,
 * prefetch), so they are atomic and a string they held is never freed before
 * unmount: a replaced one goes to mailbox.retired (mb_rename_locked).  A
 * folder is never freed before unmount either: a deleted one stays, not
 * present, with its path (re-created, it gets its id back) until a present
 * folder takes that path, when its path becomes "" (one owner a path). */
struct folder {
	uint32_t id;
	uint32_t parent;        /* folder id; the root is its own parent; tree_lock */
	_Atomic(char *) path;   /* UTF-8, '/'-separated, "" for the root */
	const char *leaf;       /* last component, inside path; tree_lock */
	_Atomic(char *) server; /* modified UTF-7 name; NULL for virtual directories */
	atomic_bool noselect;
	atomic_bool pending_create; /* -o writeback: mkdir'd, CREATE not sent yet */
	bool present;               /* in the last LIST (or an ancestor of one); tree_lock */
	unsigned special;           /* IMAP_LIST_TRASH etc. from LIST; tree_lock */
	uint32_t nsub;              /* present subfolders (counted by mb_reindex_locked); tree_lock */

	/* Protects the fields below.  Second in the model's order: taken
	 * under tree_lock or alone; nothing of the model's is taken inside
	 * it today.  Never held across I/O. */
	pthread_mutex_t lock;
	/* With lock: broadcast when a sync of this folder ends (syncing
	 * cleared, listing swapped); readers that cannot be served wait on it. */
	pthread_cond_t synced;
	struct listing *listing;       /* NULL until first synced */
	struct timespec synced_at;     /* zero: stale, sync before use */
	struct timespec fetched_at;    /* the last good sync; stale marks leave it */
	unsigned stale_marks;          /* times marked stale: a sync that saw one begin keeps it stale */
	time_t last_sync;              /* wall clock of the last good sync, for .status */
	bool syncing;                  /* a thread syncs it, with no lock held */
	struct listing_stream *stream; /* that sync's first listing streaming in (referenced), or NULL */
	bool disk_tried;               /* the listing saved by an earlier mount was looked for */
	bool reloaded;                 /* UIDVALIDITY changed while mounted: no kernel page cache; atomic */
	/* A remount gave the kernel a saved listing of UIDVALIDITY told_as
	 * before its sync found told_validity: those inodes stand for the new
	 * messages of the same UIDs (nothing was read through them), so a
	 * listing of told_validity keeps telling the kernel told_as. */
	uint32_t told_validity;
	uint32_t told_as;
	uint32_t *removed; /* UIDs moved or deleted here since the last sync */
	size_t nremoved;
	struct alias *aliases; /* names used by mv/cp for messages that came in */
	size_t naliases;
	struct known_class *classes; /* message classes derived so far (a ring) */
	size_t nclasses;
	/* The lowest UID the next arrival can have, as a SELECT of this mount
	 * saw it (at next_at) or our own arrivals raised it since (each only
	 * when it took that very UID: no gap another client may fill): a change
	 * journaled within dir_cache of next_at needs no STATUS for it. */
	uint32_t next_uid, next_validity;
	struct timespec next_at;
	uint32_t last_opened; /* read-ahead: the UID opened last */
	int ahead_order;      /* 1: UID order, 2: name order */
	size_t ahead_to;      /* position up to which read-ahead was asked for */
	bool ahead_whole;     /* the pass reads bodies past their first block */
	uint32_t read_far;    /* the UID read past its first block last; atomic */
};

struct mailbox {
	struct pool *pool;
	struct cache *cache;
	struct journal *journal; /* every change recorded first; may be NULL */
	struct changes *changes; /* changes in flight (changes.c) */
	struct pending *pending; /* what -o writeback shows before the server has it */
	struct mailbox_options opt;
	uid_t uid;
	gid_t gid;
	time_t mount_time;

	/* Protects folders, nfolders, cap, by_path, by_path_cap, retired and
	 * each folder's tree fields (parent, leaf, present, special, nsub; path
	 * and server are written under it too, and read without it: atomic).
	 * First in the model's order: folder.lock may be taken inside it (read
	 * or write), and the change hook called (it only queues: notify.lock, a
	 * leaf).  Never held across I/O. */
	pthread_rwlock_t tree_lock;
	struct folder **folders; /* index = folder id; never shrinks */
	size_t nfolders, cap;
	uint32_t *by_path; /* open-addressed hash of paths: folder id + 1, 0 empty */
	size_t by_path_cap;

	atomic_char delim; /* the server's hierarchy delimiter */

	/* The tree's refresh (tree_refresh.c): one LIST in flight, run with no
	 * lock held; list_lock protects the fields below and is taken alone
	 * (a leaf: nothing is taken inside it). */
	pthread_mutex_t list_lock;
	pthread_cond_t list_done;     /* with list_lock: a LIST ended */
	bool listing_folders;         /* a LIST is in flight */
	struct timespec list_started; /* when the LIST in flight (or the last) began */
	struct timespec listed_at;    /* when the last good LIST ended; zero: none yet */
	unsigned lists_ended;         /* LISTs ended so far, good or not */
	int list_result;              /* the last LIST's: 0 or -errno */

	struct prefetch *prefetch;        /* may be NULL */
	mailbox_folder_hook *folder_hook; /* told of renames and removals */
	void *folder_hook_ctx;
	mailbox_change_hook *change_hook; /* told what a sync found */
	void *change_ctx;

	char **retired;  /* paths and server names replaced (RENAME, */
	size_t nretired; /* LIST): readers may hold them; freed at exit */

	/* Protects rmdir_busy; taken alone (a leaf), also from inside a LIST's
	 * callback, where a session is checked out but no lock held. */
	pthread_mutex_t rmdir_lock;
	char **rmdir_busy;  /* private names of folders rmdir is checking */
	size_t nrmdir_busy; /* (the strings belong to the rmdir) */

	/* Protects forwards and next_forward.  Third in the model's order;
	 * taken alone today, and nothing is taken inside it. */
	pthread_mutex_t forward_lock;
	struct forward forwards[MB_MAX_FORWARDS]; /* a ring */
	size_t next_forward;
};

/* A message shown in a folder before the server has it there. */
struct mailbox_dir_arrival {
	char *name;
	struct stat st;
};

struct mailbox_dir {
	uint32_t folder;
	struct mailbox_dir_arrival *arrivals; /* listed after the listing */
	size_t narrivals;
	struct listing *listing;       /* referenced; NULL for a noselect folder or a stream */
	struct listing_stream *stream; /* referenced: a first listing still streaming in, or NULL */
	uint32_t *removed;             /* copy of the folder's removed UIDs */
	size_t nremoved;
	size_t nsub;
	uint32_t *sub_ids;
	char **sub_names;
};

struct mailbox_file {
	uint64_t key;         /* the folder's cache key */
	uint32_t last_block;  /* read-ahead: the block read last, and how far */
	uint32_t ahead_block; /* ahead it was asked for */
	bool read_far;        /* read past its first block (told the folder); atomic */
	uint32_t folder;
	uint32_t uidvalidity;
	uint32_t uid;
	uint64_t size; /* RFC822.SIZE, or the size found at open: at most UINT32_MAX */
	/* opened before its size was checked (mailbox_open): the check waits
	 * until a read reaches the claimed end; then `found` holds the real
	 * size + 1 (0: not yet); atomic, as reads of one handle run in
	 * parallel */
	bool unchecked;
	uint64_t found;
	char *server;
	int staged_fd; /* > 0: a cp not stored yet (-o writeback), read from its copy */
};

/* How long a thread waits for another's LIST or folder sync, in network
 * timeouts (-o timeout): the pool may wait one for a session, the command
 * take one, and a retry on a new connection (connect, login, the command)
 * about two more. */
#define MB_WAIT_TIMEOUTS 4
#define MB_DEFAULT_TIMEOUT 30 /* seconds, when mailbox_options.timeout is 0 */
unsigned mb_wait_ms(const struct mailbox *mb);

/* The folder's key in the caches: stable across mounts, unlike its id. */
uint64_t mb_folder_key(const struct mailbox *mb, const struct folder *f);

/* time */
double mb_age(const struct timespec *t); /* seconds since t; MB_AGE_NEVER when t is zero */
void mb_stamp(struct timespec *t);

/* The age of a time never stamped, or of a listing marked stale. */
#define MB_AGE_NEVER 1e18
/* As a max_age: the caller can live with any listing, however old, but one
 * marked stale (its age is MB_AGE_NEVER, never below this). */
#define MB_ANY_AGE MB_AGE_NEVER

/* listings (listing.c; the snapshot itself is listing.h's) */
/* The next use of f's listing asks the server first. */
void mb_mark_stale(struct folder *f);
/* uid left f (moved, deleted): hide it until the next sync confirms. */
void mb_forget_message(struct folder *f, uint32_t uid);
void mb_forget_message_locked(struct folder *f, uint32_t uid);
/* A change that hid uid was not made: shown again (and f synced). */
void mb_unforget_message(struct folder *f, uint32_t uid);
bool mb_is_removed_locked(const struct folder *f, uint32_t uid);
void mb_add_alias(struct folder *f, const char *name, uint32_t uid);

/* when a listing is refreshed (listing_refresh.c) */
/* A referenced listing of f no older than max_age seconds, or NULL with
 * *err (-ENOENT: f cannot be opened, maybe deleted).  Served at once when
 * f's listing is that recent, even while another thread syncs f; else the
 * caller waits for the sync running (at most mb_wait_ms), or runs one (with
 * no lock held), and gets its result.  A sync that fails, or that another
 * thread runs past the wait, serves the last listing, *err 0 (-ETIMEDOUT
 * when there is none).  max_age 0: a sync that begins after the call;
 * MB_ANY_AGE: any listing. */
struct listing *mb_listing(struct mailbox *mb, struct folder *f, double max_age, int *err);
/* mb_listing, and if this thread syncs the folder from nothing (no listing
 * in memory or on disk, no change of the journal pending there), the sync
 * streams its messages into stream as they come (listing_stream.h). */
struct listing *mb_listing_streamed(struct mailbox *mb, struct folder *f, double max_age,
				    struct listing_stream *stream, int *err);
/* -o offline=fail while the server is unreachable: fail at once. */
bool mb_offline_refused(struct mailbox *mb);

/* the sync with the server (listing_sync.c) */
/* f's listing as the server has it now, from old (NULL: from nothing):
 * *result is referenced (old itself when nothing changed).  0 or -errno;
 * network I/O: call with no lock held. */
int mb_sync_listing(struct mailbox *mb, struct folder *f, struct listing *old, struct listing_stream *stream,
		    struct listing **result, struct imap_folder_state *seen);
/* f's listing, referenced, if a sync fetched it less than max_age seconds
 * ago, stale marks or not (this mount's own changes are in its overlays);
 * else NULL.  Never asks the server. */
struct listing *mb_listing_known(struct folder *f, double max_age);
/* An imap_meta_cb: one FETCH answer (UID, size, date, flags, Subject)
 * pushed into the listing_builder ctx under the name a listing gives it. */
void mb_listing_add_meta(const struct imap_meta *m, void *ctx);
/* A message of ours arrived in f with uid (COPYUID, APPENDUID): the next
 * UID known moves past it when it was that UID. */
void mb_note_arrival(struct folder *f, uint32_t validity, uint32_t uid);
/* UIDVALIDITY and the lowest UID the next arrival in f can have, known
 * without asking the server (0 when not known freshly enough). */
uint32_t mb_known_next_uid(struct mailbox *mb, struct folder *f, uint32_t *validity);

/* listings on disk (listing_store.c) */
void mb_save_listing(const struct mailbox *mb, const struct folder *f, const struct listing *l);
/* The listing an earlier mount saved for f, or NULL. */
struct listing *mb_load_listing(const struct mailbox *mb, const struct folder *f);
/* The generation the kernel is told for messages of f listed under
 * UIDVALIDITY validity (f->lock held). */
uint32_t mb_told_generation_locked(const struct folder *f, uint32_t validity);

/* the tree (mailbox.c) */
struct folder *mb_folder(struct mailbox *mb, uint32_t id);
struct folder *mb_folder_locked(struct mailbox *mb, uint32_t id);
struct folder *mb_subfolder_locked(struct mailbox *mb, uint32_t parent, const char *name);
/* The present folder at path, else a deleted one that had it, else NULL. */
struct folder *mb_folder_by_path_locked(struct mailbox *mb, const char *path);
/* After folders were added, renamed, or came and went (tree_lock held for
 * writing): the path index and the subfolder counts follow. */
void mb_reindex_locked(struct mailbox *mb);
size_t mb_count_subdirs_locked(struct mailbox *mb, uint32_t id);
/* A new folder at path (its parents are the caller's), or NULL; tree_lock
 * held for writing. */
struct folder *mb_folder_add_locked(struct mailbox *mb, const char *path);
/* Gives f a new path (and leaf) or server name (either may be NULL: kept);
 * the old strings are retired, not freed.  A present f takes its new path
 * from the deleted folders that still hold it (their path becomes "").
 * tree_lock held for writing.  -ENOMEM leaves f as it was. */
int mb_rename_locked(struct mailbox *mb, struct folder *f, const char *path, const char *server);
void mb_dir_stat_locked(struct mailbox *mb, const struct folder *f, struct stat *st);
void mb_msg_stat(struct mailbox *mb, uint32_t folder, const struct msg *m, struct stat *st);
/* Attributes of folder id; -ENOENT when it is not in the tree. */
int mb_folder_stat(struct mailbox *mb, uint32_t id, struct stat *st);
/* The attributes of a message file: inode, size, INTERNALDATE. */
void mb_file_stat(struct mailbox *mb, uint64_t ino, uint64_t size, int64_t date, struct stat *st);

/* the tree from LIST (tree_refresh.c) */
/* LISTs the folders unless the last LIST ended less than max_age seconds
 * ago; while another thread's LIST is in flight, waits (bounded) for it and
 * takes its result if it began at most max_age before this call (max_age 0:
 * a LIST that begins after the call).  0, or -errno (-ETIMEDOUT: the LIST
 * waited for did not end in time).  Call with neither tree_lock nor a
 * folder.lock held. */
int mb_refresh_tree(struct mailbox *mb, double max_age);
void mb_tree_refresh_init(struct mailbox *mb);
void mb_tree_refresh_destroy(struct mailbox *mb);

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

/* changes the server does not have yet (pending.c) */
int mb_pending_init(struct mailbox *mb);
void mb_pending_free(struct mailbox *mb);
/* Journal entry `entry` brings message src_uid of src_folder into folder
 * under name. */
int mb_pending_add(struct mailbox *mb, uint64_t entry, uint32_t folder, const char *name, uint32_t src_folder,
		   uint32_t src_uid);
/* An arrival, as mb_pending_remove gives it back (name malloc'd). */
struct mb_arrival {
	uint32_t folder, src_folder, src_uid;
	char *name;
};
/* Journal entry `entry` stores a cp (upload number `upload`, the low half of
 * its inode) in folder as name: read from the journal's file staged, size
 * bytes, INTERNALDATE date. */
int mb_pending_add_copy(struct mailbox *mb, uint64_t entry, uint32_t folder, const char *name,
			uint32_t upload, const char *staged, uint64_t size, int64_t date);
/* The staged copy of the pending cp upload, opened: fd or -errno. */
int mb_pending_open_copy(struct mailbox *mb, uint32_t upload, uint64_t *size);
/* A copy of the entry's arrival (name malloc'd), which stays. */
bool mb_pending_get(struct mailbox *mb, uint64_t entry, struct mb_arrival *out);
/* The entry is settled: its arrival goes, into *out. */
bool mb_pending_remove(struct mailbox *mb, uint64_t entry, struct mb_arrival *out);
/* The arrival listed in folder under name; out-parameters may be NULL. */
bool mb_pending_find(struct mailbox *mb, uint32_t folder, const char *name, uint64_t *entry,
		     uint32_t *src_folder, uint32_t *src_uid);
/* Is message src_uid of src_folder on its way somewhere (*entry: which)? */
bool mb_pending_holds(struct mailbox *mb, uint32_t src_folder, uint32_t src_uid, uint64_t *entry);
size_t mb_pending_count(struct mailbox *mb);
/* The attributes of a message on its way, from its source's listing. */
int mb_pending_stat(struct mailbox *mb, uint32_t src_folder, uint32_t src_uid, struct stat *st);
/* The arrivals of folder, copied into d. */
int mb_pending_snapshot(struct mailbox *mb, uint32_t folder, struct mailbox_dir *d);
/* Whether -o writeback shows messages in folder the server does not have yet. */
bool mb_pending_any(struct mailbox *mb, uint32_t folder);

/* changes (mailbox_write.c, mailbox_folders.c) */
/* The selectable folder behind directory inode ino, or NULL. */
struct folder *mb_selectable(struct mailbox *mb, uint64_t ino);
/* A present, selectable folder by path, or (special not 0) by SPECIAL-USE
 * (IMAP_LIST_*); NULL when none. */
struct folder *mb_find_folder(struct mailbox *mb, const char *path, unsigned special);
/* CREATE path (a mount-relative UTF-8 path), then LIST; 0 also when the
 * connection died and the folder is there.  *lost (may be NULL): it failed
 * because the connection died (no answer, not a refusal). */
int mb_create_folder(struct mailbox *mb, const char *path, bool *lost);
/* RENAME folder f to newname under new_parent, then LIST. */
int mb_rename_folder(struct mailbox *mb, struct folder *f, uint32_t new_parent, const char *newname);

/* rmdir (mailbox_rmdir.c) */
#define MB_RMDIR_PREFIX "imapfs-rmdir-" /* + 8 hex digits + '-' + the real leaf */
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

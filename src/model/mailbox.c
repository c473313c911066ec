/* mailbox.c - owns the folder tree (filled by tree_refresh.c from LIST),
 * the mapping of names and inodes to folders, and attributes;
 * mailbox_resolve.c does the same for messages, mailbox_dir.c lists
 * directories. */
#include "mailbox_p.h"
#include "changes.h"
#include "inode.h"
#include "listing_stream.h"
#include "util/deadline.h"
#include "util/timefmt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- the folder tree ---- */

static struct folder *folder_new(uint32_t id, const char *path)
{
	struct folder *f = calloc(1, sizeof(*f));
	char *p = strdup(path);
	const char *slash;

	if (!f || !p) {
		free(f);
		free(p);
		return NULL;
	}
	slash = strrchr(p, '/');
	f->path = p;
	f->leaf = slash ? slash + 1 : p;
	f->id = id;
	f->present = true;
	f->noselect = true;
	pthread_mutex_init(&f->lock, NULL);
	deadline_cond_init(&f->synced);
	return f;
}

static void folder_free(struct folder *f)
{
	if (!f)
		return;
	mb_listing_put(f->listing);
	for (size_t i = 0; i < f->naliases; i++)
		free(f->aliases[i].name);
	for (size_t i = 0; i < f->nclasses; i++)
		free(f->classes[i].cls);
	free(f->classes);
	free(f->aliases);
	free(f->removed);
	pthread_mutex_destroy(&f->lock);
	pthread_cond_destroy(&f->synced);
	free(f->path);
	free(f->server);
	free(f);
}

/* A copy of str for a folder field: the retired copy if there is one (a
 * server alternating between two names must not make the list grow), else
 * a new one. */
static char *take_string_locked(struct mailbox *mb, const char *str)
{
	for (size_t i = 0; i < mb->nretired; i++) {
		char *old = mb->retired[i];

		if (strcmp(old, str) == 0) {
			mb->retired[i] = mb->retired[--mb->nretired];
			return old;
		}
	}
	return strdup(str);
}

static void retire_locked(struct mailbox *mb, char *old)
{
	char **v;

	if (!old)
		return;
	v = realloc(mb->retired, (mb->nretired + 1) * sizeof(*v));
	if (!v)
		return; /* leak rather than free under a reader */
	mb->retired = v;
	mb->retired[mb->nretired++] = old;
}

static void disown_path_locked(struct mailbox *mb, const struct folder *f);

int mb_rename_locked(struct mailbox *mb, struct folder *f, const char *path, const char *server)
{
	char *p = path ? take_string_locked(mb, path) : NULL;
	char *s = server ? take_string_locked(mb, server) : NULL;

	if ((path && !p) || (server && !s)) {
		retire_locked(mb, p);
		retire_locked(mb, s);
		return -ENOMEM;
	}
	if (p) {
		retire_locked(mb, atomic_exchange(&f->path, p));
		f->leaf = strrchr(p, '/') ? strrchr(p, '/') + 1 : p;
		if (f->present)
			disown_path_locked(mb, f);
	}
	if (s)
		retire_locked(mb, atomic_exchange(&f->server, s));
	return 0;
}

/* ---- the path index: an account of 100,000 folders is looked up by
 * name without walking them all ----
 *
 * A deleted folder stays in the tree, absent, with its path: re-created, it
 * gets its id (its inode) back.  A path has one owner: when a present
 * folder takes a path an absent one still holds (mkdir B, rmdir B, mkdir A,
 * mv A B), the absent one loses it (disown_path_locked), else the next LIST
 * could give the deleted folder's id to the renamed one. */

static size_t path_hash(const char *path)
{
	uint64_t h = 14695981039346656037ull; /* FNV-1a */

	for (const unsigned char *p = (const unsigned char *)path; *p; p++)
		h = (h ^ *p) * 1099511628211ull;
	return (size_t)h;
}

/* A folder that lost its path to a present one: it holds the root's "",
 * which no lookup of a folder asks for, and is left out of the index. */
static bool path_lost(const struct folder *f)
{
	return f->id != 0 && f->path[0] == '\0';
}

static void index_insert_locked(struct mailbox *mb, struct folder *f)
{
	size_t mask = mb->by_path_cap - 1, i = path_hash(f->path) & mask;

	while (mb->by_path[i])
		i = (i + 1) & mask;
	mb->by_path[i] = f->id + 1;
}

/* Rebuilds the index for at least n folders (load below one half); false
 * when there is no memory (lookups then walk the folders). */
static bool index_rebuild_locked(struct mailbox *mb, size_t n)
{
	size_t cap = 64;
	uint32_t *slots;

	while (cap < 2 * n)
		cap *= 2;
	slots = calloc(cap, sizeof(*slots));
	free(mb->by_path);
	mb->by_path = slots;
	mb->by_path_cap = slots ? cap : 0;
	for (size_t i = 0; slots && i < mb->nfolders; i++)
		if (!path_lost(mb->folders[i]))
			index_insert_locked(mb, mb->folders[i]);
	return slots != NULL;
}

/* The folders holding path, one a call (present or not, in no particular
 * order), *step starting at 0; NULL after the last.  Between a rename and
 * the rebuild that follows it under the same write lock (mb_reindex_locked)
 * the index may miss the renamed folder; only disown_path_locked looks
 * then, and it looks for the others. */
static struct folder *next_holder_locked(struct mailbox *mb, const char *path, size_t *step)
{
	size_t mask, h;

	if (!mb->by_path_cap) {
		while (*step < mb->nfolders) {
			struct folder *f = mb->folders[(*step)++];

			if (strcmp(f->path, path) == 0)
				return f;
		}
		return NULL;
	}
	mask = mb->by_path_cap - 1;
	h = path_hash(path);
	for (;;) {
		uint32_t slot = mb->by_path[(h + *step) & mask];

		if (!slot)
			return NULL;
		(*step)++;
		if (strcmp(mb->folders[slot - 1]->path, path) == 0)
			return mb->folders[slot - 1];
	}
}

struct folder *mb_folder_by_path_locked(struct mailbox *mb, const char *path)
{
	struct folder *f, *absent = NULL;
	size_t step = 0;

	/* the present folder with the path, else a deleted one that had it */
	while ((f = next_holder_locked(mb, path, &step))) {
		if (f->present)
			return f;
		if (!absent)
			absent = f;
	}
	return absent;
}

/* f, present, has just taken its path: the absent folders that still hold
 * it lose it.  (Out of memory, one keeps it: lookups still prefer f.) */
static void disown_path_locked(struct mailbox *mb, const struct folder *f)
{
	struct folder *g;
	size_t step = 0;

	while ((g = next_holder_locked(mb, f->path, &step))) {
		char *lost;

		if (g == f || g->present)
			continue;
		lost = take_string_locked(mb, "");
		if (!lost)
			return;
		retire_locked(mb, atomic_exchange(&g->path, lost));
		g->leaf = lost;
	}
}

void mb_reindex_locked(struct mailbox *mb)
{
	index_rebuild_locked(mb, mb->nfolders);
	for (size_t i = 0; i < mb->nfolders; i++)
		mb->folders[i]->nsub = 0;
	for (size_t i = 1; i < mb->nfolders; i++) {
		const struct folder *f = mb->folders[i];

		if (f->present && f->parent < mb->nfolders)
			mb->folders[f->parent]->nsub++;
	}
}

struct folder *mb_folder_add_locked(struct mailbox *mb, const char *path)
{
	struct folder *f;

	if (mb->nfolders == mb->cap) {
		size_t cap = mb->cap ? mb->cap * 2 : 64;
		struct folder **v = realloc(mb->folders, cap * sizeof(*v));

		if (!v)
			return NULL;
		mb->folders = v;
		mb->cap = cap;
	}
	f = folder_new((uint32_t)mb->nfolders, path);
	if (!f)
		return NULL;
	mb->folders[mb->nfolders++] = f;
	if (2 * mb->nfolders > mb->by_path_cap)
		index_rebuild_locked(mb, mb->nfolders);
	else
		index_insert_locked(mb, f);
	return f;
}

/* The folder with this id if it is still present; tree_lock held by caller. */
struct folder *mb_folder_locked(struct mailbox *mb, uint32_t id)
{
	if (id >= mb->nfolders || !mb->folders[id]->present)
		return NULL;
	return mb->folders[id];
}

/* A folder pointer stays valid for the mount's life (never freed early). */
struct folder *mb_folder(struct mailbox *mb, uint32_t id)
{
	struct folder *f;

	pthread_rwlock_rdlock(&mb->tree_lock);
	f = mb_folder_locked(mb, id);
	pthread_rwlock_unlock(&mb->tree_lock);
	return f;
}

struct mailbox *mailbox_new(struct pool *pool, struct cache *cache, const struct mailbox_options *o)
{
	struct mailbox *mb = calloc(1, sizeof(*mb));

	if (!mb)
		return NULL;
	mb->pool = pool;
	mb->cache = cache;
	mb->opt = *o;
	mb->uid = getuid();
	mb->gid = getgid();
	mb->mount_time = time(NULL);
	pthread_rwlock_init(&mb->tree_lock, NULL);
	mb_tree_refresh_init(mb);
	pthread_mutex_init(&mb->forward_lock, NULL);
	pthread_mutex_init(&mb->rmdir_lock, NULL);
	mb->journal = o->journal;
	if (changes_init(mb) < 0 || mb_pending_init(mb) < 0 || !mb_folder_add_locked(mb, "")) {
		mailbox_free(mb);
		return NULL;
	}
	return mb;
}

size_t mailbox_settle_changes(struct mailbox *mb)
{
	changes_show_pending(mb);
	changes_flush_now(mb);
	return changes_settle(mb, NULL);
}

int mailbox_sync_changes(struct mailbox *mb)
{
	return changes_wait_all(mb, false);
}

int mailbox_start(struct mailbox *mb)
{
	return changes_start(mb);
}

void mailbox_stop(struct mailbox *mb)
{
	changes_stop(mb);
}

void mailbox_free(struct mailbox *mb)
{
	if (!mb)
		return;
	for (size_t i = 0; i < mb->nfolders; i++)
		folder_free(mb->folders[i]);
	free(mb->folders);
	free(mb->by_path);
	for (size_t i = 0; i < mb->nretired; i++)
		free(mb->retired[i]);
	free(mb->retired);
	pthread_rwlock_destroy(&mb->tree_lock);
	mb_tree_refresh_destroy(mb);
	pthread_mutex_destroy(&mb->forward_lock);
	pthread_mutex_destroy(&mb->rmdir_lock);
	free(mb->rmdir_busy);
	changes_free(mb);
	mb_pending_free(mb);
	free(mb);
}

/* ---- attributes ---- */

size_t mb_count_subdirs_locked(struct mailbox *mb, uint32_t id)
{
	return id < mb->nfolders ? mb->folders[id]->nsub : 0;
}

void mb_dir_stat_locked(struct mailbox *mb, const struct folder *f, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = inode_of_folder(f->id);
	st->st_mode = S_IFDIR | 0700;
	st->st_nlink = 2 + mb_count_subdirs_locked(mb, f->id);
	st->st_uid = mb->uid;
	st->st_gid = mb->gid;
	st->st_size = 4096;
	st->st_blksize = CACHE_BLOCK_SIZE;
	st->st_mtime = st->st_ctime = st->st_atime = mb->mount_time;
}

void mb_file_stat(struct mailbox *mb, uint64_t ino, uint64_t size, int64_t date, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_mode = S_IFREG | 0600;
	st->st_nlink = 1;
	st->st_uid = mb->uid;
	st->st_gid = mb->gid;
	st->st_size = (off_t)size;
	st->st_blocks = (st->st_size + 511) / 512; /* 64-bit: no wrap near 4 GiB */
	st->st_blksize = CACHE_BLOCK_SIZE;
	st->st_mtime = st->st_ctime = st->st_atime = (time_t)date;
}

void mb_msg_stat(struct mailbox *mb, uint32_t folder, const struct msg *m, struct stat *st)
{
	mb_file_stat(mb, inode_of_message(folder, m->uid), mb_msg_size(m), m->date, st);
}

int mb_folder_stat(struct mailbox *mb, uint32_t id, struct stat *st)
{
	struct folder *f;

	pthread_rwlock_rdlock(&mb->tree_lock);
	f = mb_folder_locked(mb, id);
	if (f)
		mb_dir_stat_locked(mb, f, st);
	pthread_rwlock_unlock(&mb->tree_lock);
	return f ? 0 : -ENOENT;
}

unsigned mb_wait_ms(const struct mailbox *mb)
{
	unsigned timeout = mb->opt.timeout > 0 ? (unsigned)mb->opt.timeout : MB_DEFAULT_TIMEOUT;

	return timeout * MB_WAIT_TIMEOUTS * DEADLINE_MS_PER_S;
}

uint64_t mb_folder_key(const struct mailbox *mb, const struct folder *f)
{
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
	const char *parts[2] = { mb->opt.account ? mb->opt.account : "", f->server ? f->server : f->path };

	for (int i = 0; i < 2; i++) {
		for (const unsigned char *p = (const unsigned char *)parts[i]; *p; p++)
			h = (h ^ *p) * 0x100000001b3ull;
		h = (h ^ 0xff) * 0x100000001b3ull;
	}
	return h;
}

static int message_stat(struct mailbox *mb, uint64_t ino, struct stat *st)
{
	uint32_t id, uid;

	return mb_locate(mb, ino, &id, &uid, st);
}

static uint32_t validity_of(struct mailbox *mb, uint64_t ino, bool told)
{
	struct folder *f;
	uint32_t v = 0;

	if (!inode_is_message(ino) || inode_is_upload(ino))
		return 0;
	f = mb_folder(mb, inode_folder(ino));
	if (!f)
		return 0;
	pthread_mutex_lock(&f->lock);
	/* a first listing streaming in tells the kernel its inodes already:
	 * the same generation as the listing it becomes, or the kernel would
	 * drop them (and their pages) at the next listing */
	if (f->listing)
		v = f->listing->uidvalidity;
	else if (f->stream)
		v = listing_stream_uidvalidity(f->stream);
	if (told)
		v = mb_told_generation_locked(f, v);
	pthread_mutex_unlock(&f->lock);
	return v;
}

uint64_t mailbox_generation(struct mailbox *mb, uint64_t ino)
{
	return validity_of(mb, ino, false);
}

uint64_t mailbox_entry_generation(struct mailbox *mb, uint64_t ino)
{
	return validity_of(mb, ino, true);
}

uint32_t mb_told_generation_locked(const struct folder *f, uint32_t validity)
{
	return validity != 0 && validity == f->told_validity ? f->told_as : validity;
}

int mailbox_getattr(struct mailbox *mb, uint64_t ino, struct stat *st)
{
	if (inode_is_message(ino))
		return message_stat(mb, ino, st);
	if (inode_is_folder(ino))
		return mb_folder_stat(mb, inode_folder(ino), st);
	return -ENOENT;
}

struct folder *mb_subfolder_locked(struct mailbox *mb, uint32_t parent, const char *name)
{
	const char *dir = parent < mb->nfolders ? mb->folders[parent]->path : NULL;
	size_t dlen = dir ? strlen(dir) : 0, nlen = strlen(name);
	char stack[512], *path = dlen + nlen + 2 <= sizeof(stack) ? stack : malloc(dlen + nlen + 2);
	struct folder *f;

	if (!dir || !path)
		return NULL;
	memcpy(path, dir, dlen);
	if (dlen)
		path[dlen++] = '/';
	memcpy(path + dlen, name, nlen + 1);
	f = mb_folder_by_path_locked(mb, path);
	if (path != stack)
		free(path);
	return f && f->present && f->parent == parent ? f : NULL;
}

static int lookup_subfolder(struct mailbox *mb, uint32_t parent, const char *name, struct stat *st)
{
	struct folder *f;

	pthread_rwlock_rdlock(&mb->tree_lock);
	f = mb_subfolder_locked(mb, parent, name);
	if (f)
		mb_dir_stat_locked(mb, f, st);
	pthread_rwlock_unlock(&mb->tree_lock);
	return f ? 0 : -ENOENT;
}

int mailbox_lookup(struct mailbox *mb, uint64_t parent, const char *name, struct stat *st)
{
	uint32_t id, uid;
	int r;

	if (!inode_is_folder(parent))
		return -ENOTDIR;
	id = inode_folder(parent);
	if (lookup_subfolder(mb, id, name, st) == 0)
		return 0;
	if (id != 0) {
		struct folder *f = mb_folder(mb, id);

		if (f && mb_lookup_message(mb, f, name, st) == 0)
			return 0;
	}
	/* a folder created by another client since the last LIST (at the top,
	 * where names are folders, at once; below, where most misses are
	 * message names, at most once a second); the kernel then keeps the
	 * miss for dir_cache (ops_lookup), so a name probed again costs nothing */
	if (id != 0 && names_parse_uid(name, &uid) == 0)
		return -ENOENT; /* a message's name: no folder to look for */
	r = mb_refresh_tree(mb, id == 0 ? 0 : 1);
	if (r == 0 && lookup_subfolder(mb, id, name, st) == 0)
		return 0;
	/* the server could not be asked: the name may well exist -- but under
	 * -o writeback, offline, the last tree known is the answer, as the
	 * last listings are (mkdir works offline) */
	if (r < 0 && mb->opt.writeback && pool_is_down(mb->pool))
		return -ENOENT;
	return r < 0 ? -EIO : -ENOENT;
}

/* ---- live updates ---- */

void mailbox_set_change_hook(struct mailbox *mb, mailbox_change_hook *fn, void *ctx)
{
	mb->change_hook = fn;
	mb->change_ctx = ctx;
}

int mailbox_resync(struct mailbox *mb, uint64_t ino)
{
	struct folder *f;
	struct listing *l;
	int r;

	if (!inode_is_folder(ino))
		return -ENOTDIR;
	pool_wake(mb->pool);
	f = mb_folder(mb, inode_folder(ino));
	if (!f)
		return -ENOENT;
	if (f->noselect || !f->server)
		return mb_refresh_tree(mb, 0);
	l = mb_listing(mb, f, 0, &r);
	mb_listing_put(l);
	return r;
}

int mailbox_catch_up(struct mailbox *mb, uint64_t ino, const struct imap_folder_state *seen)
{
	struct folder *f;
	struct listing *l;
	bool current;

	if (!inode_is_folder(ino) || !seen->highestmodseq)
		return mailbox_resync(mb, ino);
	f = mb_folder(mb, inode_folder(ino));
	if (!f)
		return -ENOENT;
	/* a listing synced at or after that state holds everything up to it,
	 * and whatever changes later is the watcher's to report */
	l = mb_listing_known(f, MB_ANY_AGE);
	current = l && l->uidvalidity == seen->uidvalidity && l->modseq >= seen->highestmodseq;
	mb_listing_put(l);
	return current ? 0 : mailbox_resync(mb, ino);
}

int mailbox_watch_target(struct mailbox *mb, const char *path, uint64_t *ino, const char **server)
{
	struct folder *f;
	int r = -ENOENT;

	pthread_rwlock_rdlock(&mb->tree_lock);
	f = mb_folder_by_path_locked(mb, path);
	if (f && f->present && f->server && !f->noselect) {
		*ino = inode_of_folder(f->id);
		*server = f->server; /* kept until exit even when renamed */
		r = 0;
	}
	pthread_rwlock_unlock(&mb->tree_lock);
	return r;
}

void mailbox_status(struct mailbox *mb, FILE *out)
{
	time_t now = time(NULL);

	pthread_rwlock_rdlock(&mb->tree_lock);
	for (size_t i = 1; i < mb->nfolders; i++) {
		struct folder *f = mb->folders[i];
		char when[TIMEFMT_ISO_SIZE];
		size_t count;
		uint32_t uidvalidity;
		time_t at;

		if (!f->present || !f->server)
			continue;
		pthread_mutex_lock(&f->lock);
		at = f->last_sync;
		count = f->listing ? f->listing->count : 0;
		uidvalidity = f->listing ? f->listing->uidvalidity : 0;
		pthread_mutex_unlock(&f->lock);
		if (!at)
			continue;
		fprintf(out, "folder %s messages=%zu uidvalidity=%u last_sync=%s age=%llds\n", f->path, count,
			uidvalidity, timefmt_iso(at, when), (long long)(now - at));
	}
	pthread_rwlock_unlock(&mb->tree_lock);
	if (mb->journal)
		journal_status(mb->journal, out);
	changes_status(mb, out);
}

void mailbox_status_connections(struct mailbox *mb, FILE *out)
{
	pool_status(mb->pool, out);
}

void mailbox_status_cache(struct mailbox *mb, FILE *out)
{
	cache_status(mb->cache, out);
}

char *mailbox_folder_path(struct mailbox *mb, uint32_t id)
{
	struct folder *f;
	char *path = NULL;

	pthread_rwlock_rdlock(&mb->tree_lock);
	f = id < mb->nfolders ? mb->folders[id] : NULL;
	if (f)
		path = strdup(f->path);
	pthread_rwlock_unlock(&mb->tree_lock);
	return path;
}

/* mailbox.c - owns the model of the account: the folder tree (from LIST),
 * per-folder message snapshots (from FETCH, refreshed after dir_cache), the
 * mapping of names and inodes to folders and messages, and the read path
 * into the block cache.
 * Lock order: mailbox.tree_lock before folder.lock.  Neither is held across
 * network I/O: a refresh is marked `syncing` and runs unlocked. */
#include "mailbox.h"
#include "inode.h"
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FETCH_CHUNK 5000	/* messages per listing FETCH: bounds libetpan's buffer */

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
	size_t count;
	struct msg *msgs;	/* sorted by UID */
	char *names;		/* NUL-terminated names, back to back */
	size_t names_len;
};

struct folder {
	uint32_t id;
	uint32_t parent;	/* folder id; the root is its own parent */
	char *path;		/* UTF-8, '/'-separated, "" for the root */
	const char *leaf;	/* last component, inside path */
	char *server;		/* modified UTF-7 name; NULL for virtual directories */
	bool noselect;
	bool present;		/* in the last LIST (or an ancestor of one) */

	pthread_mutex_t lock;	/* protects the fields below */
	pthread_cond_t synced;
	struct listing *listing;	/* NULL until first synced */
	struct timespec synced_at;
	bool syncing;
};

struct mailbox {
	struct pool *pool;
	struct cache *cache;
	struct mailbox_options opt;
	uid_t uid;
	gid_t gid;
	time_t mount_time;

	pthread_rwlock_t tree_lock;	/* protects folders and their tree fields */
	struct folder **folders;	/* index = folder id; never shrinks */
	size_t nfolders, cap;

	pthread_mutex_t list_lock;	/* one LIST at a time */
	struct timespec listed_at;	/* protected by list_lock */
};

struct mailbox_dir {
	uint32_t folder;
	struct listing *listing;	/* referenced; NULL for a noselect folder */
	size_t nsub;
	uint32_t *sub_ids;
	char **sub_names;
};

struct mailbox_file {
	uint32_t folder;
	uint32_t uidvalidity;
	uint32_t uid;
	uint32_t size;
	char *server;
};

/* ---- time ---- */

static double age_of(const struct timespec *t)
{
	struct timespec now;

	if (t->tv_sec == 0 && t->tv_nsec == 0)
		return 1e18;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t->tv_sec) + (double)(now.tv_nsec - t->tv_nsec) / 1e9;
}

static void stamp(struct timespec *t)
{
	clock_gettime(CLOCK_MONOTONIC, t);
}

/* ---- listings ---- */

static void listing_put(struct listing *l)
{
	if (l && __atomic_sub_fetch(&l->refs, 1, __ATOMIC_ACQ_REL) == 0) {
		free(l->msgs);
		free(l->names);
		free(l);
	}
}

static struct listing *listing_get(struct listing *l)
{
	if (l)
		__atomic_add_fetch(&l->refs, 1, __ATOMIC_RELAXED);
	return l;
}

static const char *msg_name(const struct listing *l, const struct msg *m)
{
	return l->names + m->name_off;
}

static uint32_t msg_size(const struct msg *m)
{
	return __atomic_load_n(&m->size, __ATOMIC_RELAXED);
}

static struct msg *listing_find(const struct listing *l, uint32_t uid)
{
	size_t lo = 0, hi = l ? l->count : 0;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (l->msgs[mid].uid == uid)
			return &l->msgs[mid];
		if (l->msgs[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* Accumulates a new listing while FETCH responses stream in. */
struct builder {
	struct listing *l;
	size_t cap, names_cap;
	enum names_mode mode;
	int err;
};

static int builder_init(struct builder *b, enum names_mode mode, uint32_t uidvalidity)
{
	memset(b, 0, sizeof(*b));
	b->mode = mode;
	b->l = calloc(1, sizeof(*b->l));
	if (!b->l)
		return -ENOMEM;
	b->l->refs = 1;
	b->l->uidvalidity = uidvalidity;
	return 0;
}

static int builder_push(struct builder *b, uint32_t uid, uint32_t size, int64_t date,
			uint8_t flags, const char *name, size_t name_len)
{
	struct listing *l = b->l;

	if (l->count == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 256;
		struct msg *m = realloc(l->msgs, cap * sizeof(*m));

		if (!m)
			return -ENOMEM;
		l->msgs = m;
		b->cap = cap;
	}
	if (l->names_len + name_len + 1 > b->names_cap) {
		size_t cap = b->names_cap ? b->names_cap * 2 : 16384;
		char *n;

		while (cap < l->names_len + name_len + 1)
			cap *= 2;
		n = realloc(l->names, cap);
		if (!n)
			return -ENOMEM;
		l->names = n;
		b->names_cap = cap;
	}
	memcpy(l->names + l->names_len, name, name_len);
	l->names[l->names_len + name_len] = '\0';
	l->msgs[l->count++] = (struct msg){ .uid = uid, .size = size, .date = date,
					    .name_off = (uint32_t)l->names_len, .flags = flags };
	l->names_len += name_len + 1;
	return 0;
}

static void builder_add_meta(const struct imap_meta *m, void *ctx)
{
	struct builder *b = ctx;
	char name[NAMES_MAX + 1];
	char *subject = NULL;
	int len;

	if (b->err)
		return;
	if (b->mode == NAMES_READABLE) {
		subject = names_subject_from_headers(m->headers ? m->headers : "", m->headers_len);
		if (!subject) {
			b->err = -ENOMEM;
			return;
		}
	}
	len = names_message_file(name, sizeof(name), b->mode, m->internaldate, subject, m->uid);
	free(subject);
	if (len < 0) {
		b->err = len;
		return;
	}
	b->err = builder_push(b, m->uid, m->size, m->internaldate, (uint8_t)m->flags, name, (size_t)len);
}

static int cmp_msg_uid(const void *a, const void *b)
{
	uint32_t x = ((const struct msg *)a)->uid, y = ((const struct msg *)b)->uid;

	return x < y ? -1 : x > y;
}

/* Sorts by UID and drops duplicates (a FETCH can repeat a message). */
static void builder_finish(struct builder *b)
{
	struct listing *l = b->l;
	size_t out = 0;

	if (l->count > 1)
		qsort(l->msgs, l->count, sizeof(*l->msgs), cmp_msg_uid);
	for (size_t i = 0; i < l->count; i++)
		if (out == 0 || l->msgs[out - 1].uid != l->msgs[i].uid)
			l->msgs[out++] = l->msgs[i];
	l->count = out;
}

/* ---- syncing one folder ---- */

struct sync_job {
	struct mailbox *mb;
	struct listing *old;	/* may be NULL */
	struct listing *result;
};

static int sync_full(struct imap_session *s, const struct imap_folder_state *st, struct builder *b)
{
	for (uint32_t lo = 1; lo <= st->exists; lo += FETCH_CHUNK) {
		uint32_t hi = st->exists - lo < FETCH_CHUNK ? st->exists : lo + FETCH_CHUNK - 1;
		int r = imap_fetch_meta(s, false, lo, hi, builder_add_meta, b);

		if (r < 0)
			return r;
		if (b->err)
			return b->err;
	}
	return 0;
}

static bool uid_in(const uint32_t *uids, size_t n, uint32_t uid)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (uids[mid] == uid)
			return true;
		if (uids[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/* Keeps the old messages that still exist, then fetches the new ones. */
static int sync_incremental(struct imap_session *s, const struct imap_folder_state *st,
			    const struct listing *old, struct builder *b)
{
	uint32_t top = old->count ? old->msgs[old->count - 1].uid : 0;
	uint32_t *uids = NULL;
	size_t nuids = 0;
	int r;

	r = imap_fetch_meta(s, true, top + 1, 0, builder_add_meta, b);
	if (r < 0 || b->err)
		return r < 0 ? r : b->err;
	/* "top+1:*" always matches the last message, even an old one */
	size_t added = 0;
	for (size_t i = 0; i < b->l->count; i++)
		added += b->l->msgs[i].uid > top;
	if (old->count + added != st->exists) {
		r = imap_search_all(s, &uids, &nuids);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < old->count && !b->err; i++) {
		const struct msg *m = &old->msgs[i];
		const char *name = msg_name(old, m);

		if (uids && !uid_in(uids, nuids, m->uid))
			continue;
		b->err = builder_push(b, m->uid, msg_size(m), m->date, m->flags, name, strlen(name));
	}
	free(uids);
	return b->err;
}

static int sync_fn(struct imap_session *s, const struct imap_folder_state *st, void *ctx)
{
	struct sync_job *job = ctx;
	struct builder b;
	int r;

	r = builder_init(&b, job->mb->opt.names, st->uidvalidity);
	if (r < 0)
		return r;
	if (job->old && job->old->uidvalidity == st->uidvalidity)
		r = sync_incremental(s, st, job->old, &b);
	else
		r = sync_full(s, st, &b);
	if (r < 0) {
		listing_put(b.l);
		return r;
	}
	builder_finish(&b);
	job->result = b.l;
	return 0;
}

/* Returns a referenced listing no older than max_age seconds (refreshing
 * it if needed), or NULL with *err set. */
static struct listing *folder_listing(struct mailbox *mb, struct folder *f, double max_age, int *err)
{
	struct sync_job job = { .mb = mb };
	struct listing *l;
	int r;

	*err = 0;
	if (f->noselect || !f->server) {
		*err = -ENOENT;
		return NULL;
	}
	pthread_mutex_lock(&f->lock);
	while (f->syncing)
		pthread_cond_wait(&f->synced, &f->lock);
	if (f->listing && age_of(&f->synced_at) < max_age) {
		l = listing_get(f->listing);
		pthread_mutex_unlock(&f->lock);
		return l;
	}
	f->syncing = true;
	job.old = listing_get(f->listing);
	pthread_mutex_unlock(&f->lock);

	r = pool_run(mb->pool, f->server, POOL_FRESH_SELECT, sync_fn, &job);
	if (r == 0 && job.old && job.old->uidvalidity != job.result->uidvalidity) {
		log_info("folder %s: UIDVALIDITY changed, dropping its cache", f->path);
		cache_drop_folder(mb->cache, f->id);
	}

	pthread_mutex_lock(&f->lock);
	f->syncing = false;
	if (r == 0) {
		listing_put(f->listing);
		f->listing = job.result;
		stamp(&f->synced_at);
	} else {
		log_warn("cannot list folder %s: %s", f->path, strerror(-r));
	}
	l = listing_get(f->listing);
	pthread_cond_broadcast(&f->synced);
	pthread_mutex_unlock(&f->lock);
	listing_put(job.old);
	if (r < 0 && !l)
		*err = r;
	if (r < 0 && l) {
		/* serve the last good listing rather than fail the directory */
		*err = 0;
	}
	return l;
}

/* ---- the folder tree ---- */

static struct folder *folder_new(uint32_t id, const char *path)
{
	struct folder *f = calloc(1, sizeof(*f));
	const char *slash;

	if (!f || !(f->path = strdup(path))) {
		free(f);
		return NULL;
	}
	slash = strrchr(f->path, '/');
	f->leaf = slash ? slash + 1 : f->path;
	f->id = id;
	f->present = true;
	f->noselect = true;
	pthread_mutex_init(&f->lock, NULL);
	pthread_cond_init(&f->synced, NULL);
	return f;
}

static void folder_free(struct folder *f)
{
	if (!f)
		return;
	listing_put(f->listing);
	pthread_mutex_destroy(&f->lock);
	pthread_cond_destroy(&f->synced);
	free(f->path);
	free(f->server);
	free(f);
}

static struct folder *folder_by_path_locked(struct mailbox *mb, const char *path)
{
	for (size_t i = 0; i < mb->nfolders; i++)
		if (strcmp(mb->folders[i]->path, path) == 0)
			return mb->folders[i];
	return NULL;
}

static struct folder *folder_add_locked(struct mailbox *mb, const char *path)
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
	if (f)
		mb->folders[mb->nfolders++] = f;
	return f;
}

/* Makes sure every ancestor of path exists as a directory; returns the id
 * of path's parent. */
static int ensure_parents_locked(struct mailbox *mb, const char *path, uint32_t *parent)
{
	char *copy = strdup(path);
	char *slash;
	struct folder *f;

	if (!copy)
		return -ENOMEM;
	slash = strrchr(copy, '/');
	if (!slash) {
		free(copy);
		*parent = 0;
		return 0;
	}
	*slash = '\0';
	f = folder_by_path_locked(mb, copy);
	if (!f) {
		uint32_t grand;
		int r = ensure_parents_locked(mb, copy, &grand);

		f = r == 0 ? folder_add_locked(mb, copy) : NULL;
		if (f)
			f->parent = grand;
	}
	if (f)
		f->present = true;
	free(copy);
	if (!f)
		return -ENOMEM;
	*parent = f->id;
	return 0;
}

struct listed {
	char *name;
	char delim;
	unsigned flags;
};

struct list_result {
	struct listed *v;
	size_t n, cap;
	int err;
};

static void collect_folder(const char *name, char delim, unsigned flags, void *ctx)
{
	struct list_result *lr = ctx;

	if (lr->err)
		return;
	if (lr->n == lr->cap) {
		size_t cap = lr->cap ? lr->cap * 2 : 64;
		struct listed *v = realloc(lr->v, cap * sizeof(*v));

		if (!v) {
			lr->err = -ENOMEM;
			return;
		}
		lr->v = v;
		lr->cap = cap;
	}
	lr->v[lr->n].name = strdup(name);
	if (!lr->v[lr->n].name) {
		lr->err = -ENOMEM;
		return;
	}
	lr->v[lr->n].delim = delim;
	lr->v[lr->n++].flags = flags;
}

static int list_fn(struct imap_session *s, const struct imap_folder_state *st, void *ctx)
{
	struct list_result *lr = ctx;

	(void)st;
	for (size_t i = 0; i < lr->n; i++)
		free(lr->v[i].name);
	lr->n = 0;
	lr->err = 0;
	return imap_list(s, collect_folder, lr);
}

static void apply_listed_locked(struct mailbox *mb, const struct listed *e)
{
	struct folder *f;
	char *path = NULL;
	uint32_t parent;

	if (names_folder_to_path(e->name, e->delim, &path) < 0) {
		log_warn("ignoring folder with an unusable name \"%.100s\"", e->name);
		return;
	}
	f = folder_by_path_locked(mb, path);
	if (f && f->present && f->server && strcmp(f->server, e->name) != 0) {
		log_warn("ignoring folder \"%.100s\": its name collides with another", e->name);
		free(path);
		return;
	}
	if (ensure_parents_locked(mb, path, &parent) < 0 || (!f && !(f = folder_add_locked(mb, path)))) {
		free(path);
		return;
	}
	free(path);
	f->parent = parent;
	f->present = true;
	f->noselect = (e->flags & IMAP_LIST_NOSELECT) != 0;
	if (!f->server || strcmp(f->server, e->name) != 0) {
		char *server = strdup(e->name);

		if (server) {
			free(f->server);
			f->server = server;
		}
	}
}

static int refresh_tree(struct mailbox *mb, double max_age)
{
	struct list_result lr = { 0 };
	int r = 0;

	pthread_mutex_lock(&mb->list_lock);
	if (age_of(&mb->listed_at) < max_age)
		goto out;
	r = pool_run(mb->pool, NULL, 0, list_fn, &lr);
	if (r == 0 && lr.err)
		r = lr.err;
	if (r < 0) {
		log_warn("cannot list folders: %s", strerror(-r));
		goto out;
	}
	pthread_rwlock_wrlock(&mb->tree_lock);
	for (size_t i = 1; i < mb->nfolders; i++)
		mb->folders[i]->present = false;
	for (size_t i = 0; i < lr.n; i++)
		apply_listed_locked(mb, &lr.v[i]);
	pthread_rwlock_unlock(&mb->tree_lock);
	stamp(&mb->listed_at);
out:
	pthread_mutex_unlock(&mb->list_lock);
	for (size_t i = 0; i < lr.n; i++)
		free(lr.v[i].name);
	free(lr.v);
	return r;
}

int mailbox_load_folders(struct mailbox *mb)
{
	return refresh_tree(mb, 0);
}

/* The folder with this id if it is still present; tree_lock held by caller. */
static struct folder *folder_get_locked(struct mailbox *mb, uint32_t id)
{
	if (id >= mb->nfolders || !mb->folders[id]->present)
		return NULL;
	return mb->folders[id];
}

/* A folder pointer stays valid for the mount's life (never freed early). */
static struct folder *folder_get(struct mailbox *mb, uint32_t id)
{
	struct folder *f;

	pthread_rwlock_rdlock(&mb->tree_lock);
	f = folder_get_locked(mb, id);
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
	pthread_mutex_init(&mb->list_lock, NULL);
	if (!folder_add_locked(mb, "")) {
		mailbox_free(mb);
		return NULL;
	}
	return mb;
}

void mailbox_free(struct mailbox *mb)
{
	if (!mb)
		return;
	for (size_t i = 0; i < mb->nfolders; i++)
		folder_free(mb->folders[i]);
	free(mb->folders);
	pthread_rwlock_destroy(&mb->tree_lock);
	pthread_mutex_destroy(&mb->list_lock);
	free(mb);
}

/* ---- attributes ---- */

static size_t count_subdirs_locked(struct mailbox *mb, uint32_t id)
{
	size_t n = 0;

	for (size_t i = 1; i < mb->nfolders; i++)
		n += mb->folders[i]->present && mb->folders[i]->parent == id;
	return n;
}

static void dir_stat_locked(struct mailbox *mb, const struct folder *f, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = inode_of_folder(f->id);
	st->st_mode = S_IFDIR | 0700;
	st->st_nlink = 2 + count_subdirs_locked(mb, f->id);
	st->st_uid = mb->uid;
	st->st_gid = mb->gid;
	st->st_size = 4096;
	st->st_blksize = CACHE_BLOCK_SIZE;
	st->st_mtime = st->st_ctime = st->st_atime = mb->mount_time;
}

static void msg_stat(struct mailbox *mb, uint32_t folder, const struct msg *m, struct stat *st)
{
	uint32_t size = msg_size(m);

	memset(st, 0, sizeof(*st));
	st->st_ino = inode_of_message(folder, m->uid);
	st->st_mode = S_IFREG | 0600;
	st->st_nlink = 1;
	st->st_uid = mb->uid;
	st->st_gid = mb->gid;
	st->st_size = size;
	st->st_blocks = (size + 511) / 512;
	st->st_blksize = CACHE_BLOCK_SIZE;
	st->st_mtime = st->st_ctime = st->st_atime = (time_t)m->date;
}

static int folder_stat(struct mailbox *mb, uint32_t id, struct stat *st)
{
	struct folder *f;

	pthread_rwlock_rdlock(&mb->tree_lock);
	f = folder_get_locked(mb, id);
	if (f)
		dir_stat_locked(mb, f, st);
	pthread_rwlock_unlock(&mb->tree_lock);
	return f ? 0 : -ENOENT;
}

/* A message answers to its listed name and, in any naming mode, "UID.eml". */
static bool name_matches(const struct listing *l, const struct msg *m, const char *name)
{
	char short_name[16];

	if (strcmp(name, msg_name(l, m)) == 0)
		return true;
	snprintf(short_name, sizeof(short_name), "%u.eml", m->uid);
	return strcmp(name, short_name) == 0;
}

/* Finds a message, refreshing the listing once if it is not (yet) there. */
static int message_stat(struct mailbox *mb, uint32_t id, uint32_t uid, const char *name, struct stat *st)
{
	struct folder *f = folder_get(mb, id);
	const struct msg *m = NULL;
	struct listing *l;
	int err;

	if (!f)
		return -ENOENT;
	for (int pass = 0; pass < 2 && !m; pass++) {
		l = folder_listing(mb, f, pass == 0 ? mb->opt.dir_cache : 1, &err);
		if (!l)
			return err;
		m = listing_find(l, uid);
		if (m && name && !name_matches(l, m, name))
			m = NULL;
		if (m)
			msg_stat(mb, id, m, st);
		listing_put(l);
	}
	return m ? 0 : -ENOENT;
}

int mailbox_getattr(struct mailbox *mb, uint64_t ino, struct stat *st)
{
	if (inode_is_message(ino))
		return message_stat(mb, inode_folder(ino), inode_uid(ino), NULL, st);
	if (inode_is_folder(ino))
		return folder_stat(mb, inode_folder(ino), st);
	return -ENOENT;
}

static struct folder *subfolder_locked(struct mailbox *mb, uint32_t parent, const char *name)
{
	for (size_t i = 1; i < mb->nfolders; i++) {
		struct folder *f = mb->folders[i];

		if (f->present && f->parent == parent && strcmp(f->leaf, name) == 0)
			return f;
	}
	return NULL;
}

static int lookup_subfolder(struct mailbox *mb, uint32_t parent, const char *name, struct stat *st)
{
	struct folder *f;

	pthread_rwlock_rdlock(&mb->tree_lock);
	f = subfolder_locked(mb, parent, name);
	if (f)
		dir_stat_locked(mb, f, st);
	pthread_rwlock_unlock(&mb->tree_lock);
	return f ? 0 : -ENOENT;
}

int mailbox_lookup(struct mailbox *mb, uint64_t parent, const char *name, struct stat *st)
{
	uint32_t id, uid;

	if (!inode_is_folder(parent))
		return -ENOTDIR;
	id = inode_folder(parent);
	if (lookup_subfolder(mb, id, name, st) == 0)
		return 0;
	if (names_parse_uid(name, &uid) == 0 && id != 0) {
		struct folder *f = folder_get(mb, id);

		if (f && !f->noselect && f->server)
			return message_stat(mb, id, uid, name, st);
	}
	/* a folder created by another client since the last LIST */
	if (refresh_tree(mb, mb->opt.dir_cache) == 0 && lookup_subfolder(mb, id, name, st) == 0)
		return 0;
	return -ENOENT;
}

/* ---- directories ---- */

static int snapshot_subdirs(struct mailbox *mb, struct mailbox_dir *d)
{
	int r = 0;

	pthread_rwlock_rdlock(&mb->tree_lock);
	if (!folder_get_locked(mb, d->folder)) {
		r = -ENOENT;
		goto out;
	}
	d->nsub = count_subdirs_locked(mb, d->folder);
	d->sub_ids = calloc(d->nsub + 1, sizeof(*d->sub_ids));
	d->sub_names = calloc(d->nsub + 1, sizeof(*d->sub_names));
	if (!d->sub_ids || !d->sub_names) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 1, n = 0; i < mb->nfolders && n < d->nsub; i++) {
		const struct folder *f = mb->folders[i];

		if (!f->present || f->parent != d->folder)
			continue;
		d->sub_ids[n] = f->id;
		d->sub_names[n] = strdup(f->leaf);
		if (!d->sub_names[n++]) {
			r = -ENOMEM;
			goto out;
		}
	}
out:
	pthread_rwlock_unlock(&mb->tree_lock);
	return r;
}

int mailbox_opendir(struct mailbox *mb, uint64_t ino, struct mailbox_dir **out)
{
	struct mailbox_dir *d;
	struct folder *f;
	int r;

	*out = NULL;
	if (!inode_is_folder(ino))
		return -ENOTDIR;
	refresh_tree(mb, mb->opt.dir_cache);
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->folder = inode_folder(ino);
	r = snapshot_subdirs(mb, d);
	f = r == 0 ? folder_get(mb, d->folder) : NULL;
	if (f && !f->noselect && f->server) {
		d->listing = folder_listing(mb, f, mb->opt.dir_cache, &r);
		if (!d->listing && r == 0)
			r = -EIO;
	}
	if (r < 0) {
		mailbox_closedir(d);
		return r == -ENOENT && d->folder != 0 ? -EIO : r;
	}
	*out = d;
	return 0;
}

void mailbox_closedir(struct mailbox_dir *d)
{
	if (!d)
		return;
	for (size_t i = 0; d->sub_names && i < d->nsub; i++)
		free(d->sub_names[i]);
	free(d->sub_names);
	free(d->sub_ids);
	listing_put(d->listing);
	free(d);
}

size_t mailbox_dir_count(const struct mailbox_dir *d)
{
	return 2 + d->nsub + (d->listing ? d->listing->count : 0);
}

bool mailbox_dir_entry(struct mailbox *mb, const struct mailbox_dir *d, size_t i,
		       const char **name, struct stat *st)
{
	if (i < 2) {
		uint32_t id = d->folder;

		if (i == 1) {
			pthread_rwlock_rdlock(&mb->tree_lock);
			id = d->folder < mb->nfolders ? mb->folders[d->folder]->parent : 0;
			pthread_rwlock_unlock(&mb->tree_lock);
		}
		*name = i == 0 ? "." : "..";
		if (folder_stat(mb, id, st) < 0) {
			memset(st, 0, sizeof(*st));
			st->st_ino = inode_of_folder(id);
			st->st_mode = S_IFDIR | 0700;
		}
		return true;
	}
	i -= 2;
	if (i < d->nsub) {
		*name = d->sub_names[i];
		if (folder_stat(mb, d->sub_ids[i], st) < 0) {
			memset(st, 0, sizeof(*st));
			st->st_ino = inode_of_folder(d->sub_ids[i]);
			st->st_mode = S_IFDIR | 0700;
		}
		return true;
	}
	i -= d->nsub;
	if (!d->listing || i >= d->listing->count)
		return false;
	*name = msg_name(d->listing, &d->listing->msgs[i]);
	msg_stat(mb, d->folder, &d->listing->msgs[i], st);
	return true;
}

/* ---- reading ---- */

struct block_job {
	const struct mailbox_file *file;
	const struct cache_key *key;
	char *buf;
	size_t *len;
};

static int fetch_block_fn(struct imap_session *s, const struct imap_folder_state *st, void *ctx)
{
	struct block_job *job = ctx;

	if (st->uidvalidity != job->file->uidvalidity) {
		log_warn("UIDVALIDITY of %s changed under an open message: refusing to read", job->file->server);
		return -ESTALE;
	}
	return imap_fetch_body(s, job->file->uid, job->key->block * CACHE_BLOCK_SIZE, CACHE_BLOCK_SIZE,
			       job->buf, job->len);
}

struct fill_ctx {
	struct mailbox *mb;
	const struct mailbox_file *file;
};

static int fill_block(const struct cache_key *key, char *buf, size_t *len, void *ctx)
{
	struct fill_ctx *fc = ctx;
	struct block_job job = { fc->file, key, buf, len };
	int r = pool_run(fc->mb->pool, fc->file->server, 0, fetch_block_fn, &job);

	if (r < 0)
		log_warn("cannot fetch UID %u of %s (block %u): %s", fc->file->uid, fc->file->server,
			 key->block, strerror(-r));
	return r == -ESTALE ? -EIO : r;
}

/* Length of block `block` of the message, fetching it into the cache. */
static long block_length(struct mailbox *mb, const struct mailbox_file *f, uint32_t block)
{
	struct cache_key key = { f->folder, f->uidvalidity, f->uid, block };
	struct fill_ctx fc = { mb, f };
	size_t len = 0;
	long r = cache_read(mb->cache, &key, fill_block, &fc, 0, NULL, 0, &len);

	return r < 0 ? r : (long)len;
}

/* The size RFC822.SIZE claims is checked against the body itself: the block
 * holding the claimed end is read (a read needs it anyway), and a server that
 * lies (gmail has) gets found out here. */
static long verified_size(struct mailbox *mb, const struct mailbox_file *f)
{
	uint32_t block = f->size ? (f->size - 1) / CACHE_BLOCK_SIZE : 0;
	long len = block_length(mb, f, block);

	while (len == 0 && block > 0)		/* shorter than claimed */
		len = block_length(mb, f, --block);
	while (len == (long)CACHE_BLOCK_SIZE && block < UINT32_MAX / CACHE_BLOCK_SIZE) {
		long next = block_length(mb, f, block + 1);	/* longer, or exactly full */

		if (next < 0)
			return next;
		if (next == 0)
			break;
		len = next;
		block++;
	}
	if (len < 0)
		return len;
	return (long)block * CACHE_BLOCK_SIZE + len;
}

int mailbox_open(struct mailbox *mb, uint64_t ino, struct mailbox_file **out, bool *size_corrected)
{
	struct mailbox_file *file;
	struct folder *f;
	struct listing *l;
	struct msg *m;
	long real;
	int err;

	*out = NULL;
	*size_corrected = false;
	if (!inode_is_message(ino))
		return -EISDIR;
	f = folder_get(mb, inode_folder(ino));
	if (!f)
		return -ENOENT;
	l = folder_listing(mb, f, 1e18, &err);
	if (!l)
		return err;
	m = listing_find(l, inode_uid(ino));
	file = m ? calloc(1, sizeof(*file)) : NULL;
	if (file) {
		file->folder = f->id;
		file->uidvalidity = l->uidvalidity;
		file->uid = m->uid;
		file->size = msg_size(m);
		file->server = strdup(f->server);
	}
	if (!m || !file || !file->server) {
		listing_put(l);
		mailbox_release(file);
		return m ? -ENOMEM : -ENOENT;
	}
	real = verified_size(mb, file);
	if (real < 0) {
		listing_put(l);
		mailbox_release(file);
		return (int)real;
	}
	if ((uint32_t)real != file->size) {
		log_warn("UID %u of %s: RFC822.SIZE says %u bytes but the message has %ld",
			 file->uid, f->path, file->size, real);
		file->size = (uint32_t)real;
		__atomic_store_n(&m->size, file->size, __ATOMIC_RELAXED);
		*size_corrected = true;
	}
	listing_put(l);
	*out = file;
	return 0;
}

void mailbox_release(struct mailbox_file *f)
{
	if (!f)
		return;
	free(f->server);
	free(f);
}

long mailbox_read(struct mailbox *mb, struct mailbox_file *f, char *buf, size_t size, off_t off)
{
	struct fill_ctx fc = { mb, f };
	size_t done = 0;

	if (off < 0)
		return -EINVAL;
	while (done < size && (uint64_t)off + done < f->size) {
		uint64_t pos = (uint64_t)off + done;
		struct cache_key key = { f->folder, f->uidvalidity, f->uid, (uint32_t)(pos / CACHE_BLOCK_SIZE) };
		size_t at = pos % CACHE_BLOCK_SIZE, blen = 0;
		size_t want = size - done;
		long n;

		if (want > f->size - pos)
			want = f->size - pos;
		n = cache_read(mb->cache, &key, fill_block, &fc, at, buf + done, want, &blen);
		if (n < 0)
			return done ? (long)done : n;
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (long)done;
}

/* cache_disk.c - owns the block files under cache_dir/blocks: their format
 * (a header with the key, the length and a block_sum, then the bytes), atomic
 * writes, the in-memory index of what is on disk, and LRU eviction.  Every
 * file is reached through the descriptor of blocks/ (files.h): a link put in
 * a block's or a folder directory's place is removed, never followed.
 * Locks: disk_cache.lock and disk_cache.queue_lock are never held together
 * (src/README, "Locks": both come after cache.lock, which is never held
 * when they are taken); no file I/O happens under either. */
#include "cache_disk.h"
#include "block_sum.h"
#include "cache.h"
#include "shared_bytes.h"
#include "util/files.h"
#include "util/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define BLOCK_MAGIC 0x4b4c4246534d4932ull       /* "2IMSFBLK": block_sum */
#define BLOCK_MAGIC_CRC32 0x4b4c4246534d4931ull /* "1IMSFBLK": CRC-32, before 2026-12 */

struct header {
	uint64_t magic;
	uint64_t folder;
	uint32_t uidvalidity;
	uint32_t uid;
	uint32_t block;
	uint32_t len;
	uint64_t sum; /* block_sum of the bytes */
};

struct entry {
	struct cache_key key;
	size_t bytes; /* on disk, header included */
	struct entry *hash_next;
	struct entry *prev, *next; /* LRU, most recent first */
};

/* A block waiting for the writer thread. */
struct pending {
	struct cache_key key;
	char *data; /* shared_bytes: often the memory cache's copy */
	size_t len;
	struct pending *next;
};

#define PENDING_MAX_BYTES (32u << 20) /* beyond this, writes wait (back-pressure) */

struct disk_cache {
	struct files_dir *top; /* cache_dir/blocks */
	size_t limit, bytes;
	/* protects bytes and the index below; a leaf: nothing is taken
	 * while it is held, queue_lock neither */
	pthread_mutex_t lock;
	size_t nbuckets;
	struct entry **buckets;
	struct entry *head, *tail;
	unsigned long tmp_serial;

	/* Blocks are written by a thread of their own, off the paths that wait
	 * for them. */
	pthread_mutex_t queue_lock; /* protects the fields below; a leaf, like lock */
	pthread_cond_t queue_cond;  /* with queue_lock: work arrived, room freed, or stop */
	struct pending *first, *last;
	size_t queued_bytes;
	bool writer_running, stopping;
	pthread_t writer;
};

/* zlib's CRC-32 is the standard one (reflected, polynomial 0xEDB88320, ~0 in
 * and out), the sum every listing file carries (block files carried it
 * until they had block_sum). */
uint32_t cache_crc32(uint32_t crc, const void *data, size_t len)
{
	return (uint32_t)crc32_z(crc, data, len);
}

static size_t bucket(const struct disk_cache *d, const struct cache_key *k)
{
	uint64_t h = k->folder ^ ((uint64_t)k->uid << 20) ^ k->block ^ ((uint64_t)k->uidvalidity << 40) ^
		     ((uint64_t)k->section << 8);

	h *= 0x9E3779B97F4A7C15ull;
	return (size_t)(h >> 32) % d->nbuckets;
}

static bool same_key(const struct cache_key *a, const struct cache_key *b)
{
	return a->folder == b->folder && a->uid == b->uid && a->block == b->block &&
	       a->uidvalidity == b->uidvalidity && a->section == b->section;
}

#define FOLDER_NAME_MAX 17 /* 16 hex digits */
#define BLOCK_NAME_MAX 48  /* four 32-bit numbers, three '-' */
#define TMP_PREFIX "tmp."  /* a block being written */
#define TMP_NAME_MAX 64
#define DISK_BUCKETS 16384 /* a 2 GiB cache's blocks, one per bucket */

static void folder_name(uint64_t folder, char out[FOLDER_NAME_MAX])
{
	snprintf(out, FOLDER_NAME_MAX, "%016" PRIx64, folder);
}

/* UIDVALIDITY-UID-BLOCK for a message's bytes, -SECTION added for a part's */
static void block_name(const struct cache_key *k, char out[BLOCK_NAME_MAX])
{
	if (k->section)
		snprintf(out, BLOCK_NAME_MAX, "%" PRIu32 "-%" PRIu32 "-%" PRIu32 "-%" PRIu32, k->uidvalidity,
			 k->uid, k->block, k->section);
	else
		snprintf(out, BLOCK_NAME_MAX, "%" PRIu32 "-%" PRIu32 "-%" PRIu32, k->uidvalidity, k->uid,
			 k->block);
}

/* The key a block file's name gives, or false when it is no block's. */
static bool parse_block_name(const char *name, struct cache_key *k)
{
	char check[BLOCK_NAME_MAX];
	int n = sscanf(name, "%" SCNu32 "-%" SCNu32 "-%" SCNu32 "-%" SCNu32, &k->uidvalidity, &k->uid,
		       &k->block, &k->section);

	if (n == 3)
		k->section = 0;
	else if (n != 4 || k->section == 0)
		return false;
	block_name(k, check);
	return strcmp(check, name) == 0; /* nothing around or between the numbers */
}

/* The directory of a folder's blocks, or -errno. */
static int folder_dir(const struct disk_cache *d, uint64_t folder, bool create)
{
	char name[FOLDER_NAME_MAX];

	folder_name(folder, name);
	return files_subdir_at(files_dir_fd(d->top), name, create);
}

static void delete_block(const struct disk_cache *d, const struct cache_key *k)
{
	char name[BLOCK_NAME_MAX];
	int dfd = folder_dir(d, k->folder, false);

	if (dfd < 0)
		return;
	block_name(k, name);
	unlinkat(dfd, name, 0);
	close(dfd);
}

static void unlink_lru_locked(struct disk_cache *d, struct entry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		d->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		d->tail = e->prev;
	e->prev = e->next = NULL;
}

static void push_lru_locked(struct disk_cache *d, struct entry *e)
{
	e->next = d->head;
	if (d->head)
		d->head->prev = e;
	d->head = e;
	if (!d->tail)
		d->tail = e;
}

static struct entry *find_locked(struct disk_cache *d, const struct cache_key *k)
{
	for (struct entry *e = d->buckets[bucket(d, k)]; e; e = e->hash_next)
		if (same_key(&e->key, k))
			return e;
	return NULL;
}

/* Takes e out of the index; the caller deletes its file. */
static void remove_locked(struct disk_cache *d, struct entry *e)
{
	struct entry **pp = &d->buckets[bucket(d, &e->key)];

	while (*pp != e)
		pp = &(*pp)->hash_next;
	*pp = e->hash_next;
	unlink_lru_locked(d, e);
	d->bytes -= e->bytes;
}

static void add_locked(struct disk_cache *d, const struct cache_key *k, size_t bytes, bool recent)
{
	struct entry *e = find_locked(d, k);
	size_t b;

	if (e) {
		d->bytes -= e->bytes;
		unlink_lru_locked(d, e);
	} else {
		e = calloc(1, sizeof(*e));
		if (!e)
			return;
		e->key = *k;
		b = bucket(d, k);
		e->hash_next = d->buckets[b];
		d->buckets[b] = e;
	}
	e->bytes = bytes;
	d->bytes += bytes;
	if (recent) {
		push_lru_locked(d, e);
	} else { /* found at start-up: older than anything used since */
		e->prev = d->tail;
		if (d->tail)
			d->tail->next = e;
		d->tail = e;
		if (!d->head)
			d->head = e;
	}
}

static void forget(struct disk_cache *d, const struct cache_key *k)
{
	struct entry *e;

	pthread_mutex_lock(&d->lock);
	e = find_locked(d, k);
	if (e)
		remove_locked(d, e);
	pthread_mutex_unlock(&d->lock);
	free(e);
	delete_block(d, k);
}

/* Evicts least recently used blocks until under the limit. */
static void evict(struct disk_cache *d)
{
	for (;;) {
		struct entry *e;

		pthread_mutex_lock(&d->lock);
		e = d->bytes > d->limit ? d->tail : NULL;
		if (e)
			remove_locked(d, e);
		pthread_mutex_unlock(&d->lock);
		if (!e)
			return;
		/* a reader with the file open keeps its bytes: unlink is safe */
		delete_block(d, &e->key);
		free(e);
	}
}

/* Indexes the blocks of one folder directory; anything else in it (an
 * interrupted write, a link, a device) is removed. */
static void index_folder(struct disk_cache *d, int top, const char *name)
{
	struct dirent *de;
	struct cache_key k;
	struct stat st;
	DIR *dir;
	int dfd;

	if (sscanf(name, "%16" SCNx64, &k.folder) != 1 || strlen(name) != FOLDER_NAME_MAX - 1)
		return;
	dfd = files_subdir_at(top, name, false);
	if (dfd < 0 || !(dir = fdopendir(dfd))) {
		if (dfd >= 0)
			close(dfd);
		return;
	}
	while ((de = readdir(dir))) {
		if (de->d_name[0] == '.')
			continue;
		if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (strncmp(de->d_name, TMP_PREFIX, strlen(TMP_PREFIX)) == 0 || !S_ISREG(st.st_mode) ||
		    st.st_uid != geteuid() || !parse_block_name(de->d_name, &k)) {
			unlinkat(dfd, de->d_name, 0);
			continue;
		}
		add_locked(d, &k, (size_t)st.st_size, false);
	}
	closedir(dir);
}

/* Indexes what earlier mounts left under blocks/. */
static void index_all(struct disk_cache *d)
{
	int top = openat(files_dir_fd(d->top), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct dirent *de;
	struct stat st;
	DIR *dir = top >= 0 ? fdopendir(top) : NULL;

	if (!dir) {
		if (top >= 0)
			close(top);
		return;
	}
	while ((de = readdir(dir))) {
		if (de->d_name[0] == '.' || fstatat(top, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISDIR(st.st_mode))
			index_folder(d, top, de->d_name);
		else /* only folder directories belong here */
			unlinkat(top, de->d_name, 0);
	}
	closedir(dir);
}

struct disk_cache *disk_cache_open(const struct files_dir *dir, size_t limit)
{
	struct disk_cache *d = calloc(1, sizeof(*d));
	char err[512];
	int r;

	if (!d)
		return NULL;
	r = files_dir_sub(dir, "blocks", &d->top, err, sizeof(err));
	if (r < 0) {
		log_warn("%s; no disk cache", err);
		free(d);
		return NULL;
	}
	d->limit = limit;
	d->nbuckets = DISK_BUCKETS;
	d->buckets = calloc(d->nbuckets, sizeof(*d->buckets));
	pthread_mutex_init(&d->lock, NULL);
	pthread_mutex_init(&d->queue_lock, NULL);
	pthread_cond_init(&d->queue_cond, NULL);
	if (!d->buckets) {
		disk_cache_close(d);
		return NULL;
	}
	index_all(d);
	evict(d);
	return d;
}

void disk_cache_close(struct disk_cache *d)
{
	if (!d)
		return;
	/* the writer drains the queue before it stops: nothing queued is lost */
	pthread_mutex_lock(&d->queue_lock);
	d->stopping = true;
	pthread_cond_broadcast(&d->queue_cond);
	pthread_mutex_unlock(&d->queue_lock);
	if (d->writer_running)
		pthread_join(d->writer, NULL);
	pthread_mutex_destroy(&d->queue_lock);
	pthread_cond_destroy(&d->queue_cond);
	for (struct entry *e = d->head, *next; e; e = next) {
		next = e->next;
		free(e);
	}
	free(d->buckets);
	pthread_mutex_destroy(&d->lock);
	files_dir_close(d->top);
	free(d);
}

/* A block still waiting to be written is served from the queue. */
static bool get_pending(struct disk_cache *d, const struct cache_key *k, char *buf, size_t *len)
{
	struct pending *newest = NULL;

	pthread_mutex_lock(&d->queue_lock);
	/* a block fetched again may be queued twice: the later bytes count */
	for (struct pending *p = d->first; p; p = p->next)
		if (same_key(&p->key, k))
			newest = p;
	if (newest) {
		memcpy(buf, newest->data, newest->len);
		*len = newest->len;
	}
	pthread_mutex_unlock(&d->queue_lock);
	return newest != NULL;
}

/* The block's file, or -errno. */
static int open_block(const struct disk_cache *d, const struct cache_key *k)
{
	char name[BLOCK_NAME_MAX];
	int dfd = folder_dir(d, k->folder, false), fd;

	if (dfd < 0)
		return dfd;
	block_name(k, name);
	fd = files_open_at(dfd, name);
	close(dfd);
	return fd;
}

int disk_cache_get(struct disk_cache *d, const struct cache_key *k, char *buf, size_t *len)
{
	struct header h;
	char name[BLOCK_NAME_MAX];
	struct entry *e;
	bool ok, older;
	int fd;

	if (get_pending(d, k, buf, len))
		return 0;
	pthread_mutex_lock(&d->lock);
	e = find_locked(d, k);
	if (e) {
		unlink_lru_locked(d, e);
		push_lru_locked(d, e);
	}
	pthread_mutex_unlock(&d->lock);
	if (!e)
		return -ENOENT;
	fd = open_block(d, k);
	if (fd < 0) {
		forget(d, k);
		return -ENOENT;
	}
	ok = pread(fd, &h, sizeof(h), 0) == (ssize_t)sizeof(h);
	older = ok && h.magic == BLOCK_MAGIC_CRC32;
	ok = ok && h.magic == BLOCK_MAGIC && h.folder == k->folder && h.uidvalidity == k->uidvalidity &&
	     h.uid == k->uid && h.block == k->block && h.len <= CACHE_BLOCK_SIZE &&
	     pread(fd, buf, h.len, sizeof(h)) == (ssize_t)h.len && block_sum(buf, h.len) == h.sum;
	close(fd);
	if (!ok) {
		block_name(k, name);
		/* an older imapfs's file is no damage: it is replaced as it is met */
		if (older)
			log_debug("cache file %s/%016" PRIx64
				  "/%s has the older checksum: fetching the block again",
				  files_dir_path(d->top), k->folder, name);
		else
			log_warn("damaged cache file %s/%016" PRIx64 "/%s: fetching the block again",
				 files_dir_path(d->top), k->folder, name);
		forget(d, k);
		return -ENOENT;
	}
	*len = h.len;
	return 0;
}

/* What the writer keeps from one block to the next: the directory of the
 * folder it wrote to last (imapfs removes a folder's blocks, never its
 * directory; removed by someone else, it is made again) and the process
 * id that names its temporary files.  A block took twelve system calls
 * when both were looked up each time, six now. */
struct write_place {
	uint64_t folder;
	int dfd; /* -1: none yet */
	long pid;
};

static void write_place_init(struct write_place *w)
{
	w->folder = 0;
	w->dfd = -1;
	w->pid = (long)getpid();
}

static void write_place_end(struct write_place *w)
{
	if (w->dfd >= 0)
		close(w->dfd);
	w->dfd = -1;
}

/* The folder's directory, opened (and created) if it is not w's. */
static int place_dir(struct disk_cache *d, struct write_place *w, uint64_t folder)
{
	if (w->dfd >= 0 && w->folder == folder)
		return w->dfd;
	write_place_end(w);
	w->dfd = folder_dir(d, folder, true);
	w->folder = folder;
	return w->dfd;
}

static void write_block(struct disk_cache *d, struct write_place *w, const struct cache_key *k,
			const char *buf, size_t len)
{
	struct header h = { BLOCK_MAGIC, k->folder,     k->uidvalidity,     k->uid,
			    k->block,    (uint32_t)len, block_sum(buf, len) };
	char name[BLOCK_NAME_MAX], tmp[TMP_NAME_MAX];
	unsigned long serial;
	int dfd, fd;
	bool ok;

	if (d->limit == 0 || len > CACHE_BLOCK_SIZE)
		return;
	dfd = place_dir(d, w, k->folder);
	if (dfd < 0)
		return;
	pthread_mutex_lock(&d->lock);
	serial = ++d->tmp_serial;
	pthread_mutex_unlock(&d->lock);
	snprintf(tmp, sizeof(tmp), TMP_PREFIX "%ld.%lu", w->pid, serial);
	fd = files_create_at(dfd, tmp, O_WRONLY);
	if (fd == -ENOENT) { /* the directory was removed under us: made again */
		write_place_end(w);
		dfd = place_dir(d, w, k->folder);
		fd = dfd < 0 ? dfd : files_create_at(dfd, tmp, O_WRONLY);
	}
	if (fd < 0)
		return;
	/* a full disk leaves a short file, which must not get a real name */
	ok = files_write_all(fd, &h, sizeof(h)) == 0 && files_write_all(fd, buf, len) == 0;
	ok = close(fd) == 0 && ok;
	block_name(k, name);
	/* renameat replaces whatever has the name, a link too, without following it */
	if (!ok || renameat(dfd, tmp, dfd, name) < 0) {
		unlinkat(dfd, tmp, 0);
		return;
	}
	pthread_mutex_lock(&d->lock);
	add_locked(d, k, sizeof(h) + len, true);
	pthread_mutex_unlock(&d->lock);
	evict(d);
}

/* A block written on the caller's thread (no writer thread, or no memory
 * to queue it). */
static void write_block_here(struct disk_cache *d, const struct cache_key *k, const char *buf, size_t len)
{
	struct write_place w;

	write_place_init(&w);
	write_block(d, &w, k, buf, len);
	write_place_end(&w);
}

static void *writer(void *arg)
{
	struct disk_cache *d = arg;
	struct write_place w;

	write_place_init(&w);
	pthread_mutex_lock(&d->queue_lock);
	for (;;) {
		struct pending *p = d->first;

		if (!p) {
			if (d->stopping)
				break;
			pthread_cond_wait(&d->queue_cond, &d->queue_lock);
			continue;
		}
		pthread_mutex_unlock(&d->queue_lock);
		write_block(d, &w, &p->key, p->data, p->len);
		pthread_mutex_lock(&d->queue_lock);
		/* dequeued only once written: a get meanwhile still finds it */
		d->first = p->next;
		if (!d->first)
			d->last = NULL;
		d->queued_bytes -= p->len;
		pthread_cond_broadcast(&d->queue_cond);
		shared_bytes_unref(p->data);
		free(p);
	}
	pthread_mutex_unlock(&d->queue_lock);
	write_place_end(&w);
	return NULL;
}

void disk_cache_put_shared(struct disk_cache *d, const struct cache_key *k, char *bytes, size_t len)
{
	struct pending *p;

	if (d->limit == 0 || len > CACHE_BLOCK_SIZE) {
		shared_bytes_unref(bytes);
		return;
	}
	p = malloc(sizeof(*p));
	if (!p) {
		write_block_here(d, k, bytes, len);
		shared_bytes_unref(bytes);
		return;
	}
	p->key = *k;
	p->data = bytes;
	p->len = len;
	p->next = NULL;
	pthread_mutex_lock(&d->queue_lock);
	if (!d->writer_running && !d->stopping && pthread_create(&d->writer, NULL, writer, d) == 0)
		d->writer_running = true;
	while (d->writer_running && d->queued_bytes > PENDING_MAX_BYTES)
		pthread_cond_wait(&d->queue_cond, &d->queue_lock);
	if (!d->writer_running) { /* no thread: write it here */
		pthread_mutex_unlock(&d->queue_lock);
		write_block_here(d, k, bytes, len);
		shared_bytes_unref(bytes);
		free(p);
		return;
	}
	if (d->last)
		d->last->next = p;
	else
		d->first = p;
	d->last = p;
	d->queued_bytes += len;
	pthread_cond_broadcast(&d->queue_cond);
	pthread_mutex_unlock(&d->queue_lock);
}

void disk_cache_put(struct disk_cache *d, const struct cache_key *k, const char *buf, size_t len)
{
	char *copy;

	if (d->limit == 0 || len > CACHE_BLOCK_SIZE)
		return;
	copy = shared_bytes_copy(buf, len);
	if (copy)
		disk_cache_put_shared(d, k, copy, len);
	else
		write_block_here(d, k, buf, len);
}

void disk_cache_flush(struct disk_cache *d)
{
	pthread_mutex_lock(&d->queue_lock);
	while (d->first)
		pthread_cond_wait(&d->queue_cond, &d->queue_lock);
	pthread_mutex_unlock(&d->queue_lock);
}

void disk_cache_drop_folder(struct disk_cache *d, uint64_t folder)
{
	struct entry *doomed = NULL;

	disk_cache_flush(d); /* nothing of the folder may land after this */
	pthread_mutex_lock(&d->lock);
	for (struct entry *e = d->head, *next; e; e = next) {
		next = e->next;
		if (e->key.folder != folder)
			continue;
		remove_locked(d, e);
		e->next = doomed;
		doomed = e;
	}
	pthread_mutex_unlock(&d->lock);
	while (doomed) {
		struct entry *next = doomed->next;

		delete_block(d, &doomed->key);
		free(doomed);
		doomed = next;
	}
}

size_t disk_cache_bytes(struct disk_cache *d)
{
	size_t b;

	pthread_mutex_lock(&d->lock);
	b = d->bytes;
	pthread_mutex_unlock(&d->lock);
	return b;
}

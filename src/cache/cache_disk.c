/* cache_disk.c - owns the disk tier of the block cache under cache_dir/blocks:
 * the segment files a folder's blocks are appended to (each block a record:
 * a header with its key, its length and a block_sum, then its bytes), the
 * in-memory index of where each block lies, and eviction, a whole segment
 * at a time, the one appended to least recently first (what earlier mounts
 * left is indexed by cache_disk_load.c).  A file per block cost a create, a rename and a directory entry
 * per block; appends cost one writev per run of blocks.  Every file is
 * reached through the descriptor of blocks/ (files.h): a link put in a
 * segment's place is removed, never followed.
 * Locks (src/README, "Locks"): append_lock serialises appends and the making
 * and removal of segments, and file I/O happens under it; lock nests inside
 * it; queue_lock is taken alone.  No file I/O happens under lock or
 * queue_lock. */
#include "cache_disk.h"
#include "block_sum.h"
#include "cache.h"
#include "cache_disk_p.h"
#include "shared_bytes.h"
#include "util/deadline.h"
#include "util/files.h"
#include "util/log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <zlib.h>

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

void disk_segment_name(uint64_t folder, uint64_t serial, char out[SEGMENT_NAME_MAX])
{
	snprintf(out, SEGMENT_NAME_MAX, "%016" PRIx64 "-%016" PRIx64, folder, serial);
}

/* The folder and serial a segment's name gives, or false when it is no
 * segment's. */
bool disk_parse_segment_name(const char *name, uint64_t *folder, uint64_t *serial)
{
	char check[SEGMENT_NAME_MAX];

	if (strlen(name) != SEGMENT_NAME_MAX - 1 ||
	    sscanf(name, "%16" SCNx64 "-%16" SCNx64, folder, serial) != 2)
		return false;
	disk_segment_name(*folder, *serial, check);
	return strcmp(check, name) == 0;
}

/* --- the index (under lock) --- */

static struct entry *find_locked(struct disk_cache *d, const struct cache_key *k)
{
	for (struct entry *e = d->buckets[bucket(d, k)]; e; e = e->hash_next)
		if (same_key(&e->key, k))
			return e;
	return NULL;
}

/* Takes e out of the index and frees it; its bytes stay in its segment
 * until the segment goes. */
static void unindex_locked(struct disk_cache *d, struct entry *e)
{
	struct entry **pp = &d->buckets[bucket(d, &e->key)];

	while (*pp != e)
		pp = &(*pp)->hash_next;
	*pp = e->hash_next;
	if (e->seg_prev)
		e->seg_prev->seg_next = e->seg_next;
	else
		e->seg->entries = e->seg_next;
	if (e->seg_next)
		e->seg_next->seg_prev = e->seg_prev;
	free(e);
}

/* The block k is at offset of seg now (replacing where it was before). */
void disk_index_locked(struct disk_cache *d, const struct cache_key *k, struct segment *seg, uint64_t offset,
		       uint32_t len)
{
	struct entry *e = find_locked(d, k);
	size_t b;

	if (e)
		unindex_locked(d, e);
	e = calloc(1, sizeof(*e));
	if (!e)
		return;
	e->key = *k;
	e->seg = seg;
	e->offset = offset;
	e->len = len;
	b = bucket(d, k);
	e->hash_next = d->buckets[b];
	d->buckets[b] = e;
	e->seg_next = seg->entries;
	if (seg->entries)
		seg->entries->seg_prev = e;
	seg->entries = e;
}

/* Forgets k if the index still has it where a reader found it damaged. */
static void forget(struct disk_cache *d, const struct cache_key *k, uint64_t serial, uint64_t offset)
{
	struct entry *e;

	pthread_mutex_lock(&d->lock);
	e = find_locked(d, k);
	if (e && e->seg->serial == serial && e->offset == offset)
		unindex_locked(d, e);
	pthread_mutex_unlock(&d->lock);
}

/* Takes seg out of the list and the index; the caller removes its file
 * and frees it. */
static void detach_locked(struct disk_cache *d, struct segment *seg)
{
	struct segment **pp = &d->segments;

	while (*pp != seg)
		pp = &(*pp)->next;
	*pp = seg->next;
	while (seg->entries)
		unindex_locked(d, seg->entries);
	d->bytes -= seg->size;
}

/* --- segments (under append_lock) --- */

static void close_append(struct disk_cache *d)
{
	if (d->append_fd >= 0)
		close(d->append_fd);
	d->append_fd = -1;
	d->append_seg = NULL;
}

/* Removes a detached segment's file; a reader with it open keeps reading. */
static void remove_segment(struct disk_cache *d, struct segment *seg)
{
	char name[SEGMENT_NAME_MAX];

	if (seg == d->append_seg)
		close_append(d);
	disk_segment_name(seg->folder, seg->serial, name);
	unlinkat(files_dir_fd(d->top), name, 0);
	free(seg);
}

/* The segment evicted first: the one appended to least recently. */
static struct segment *oldest_locked(struct disk_cache *d)
{
	struct segment *old = NULL;

	for (struct segment *s = d->segments; s; s = s->next)
		if (!old || s->stamp < old->stamp || (s->stamp == old->stamp && s->serial < old->serial))
			old = s;
	return old;
}

/* Evicts whole segments until need more bytes fit within the limit;
 * false when they cannot. */
static bool make_room(struct disk_cache *d, size_t need)
{
	if (need > d->limit)
		return false;
	for (;;) {
		struct segment *victim = NULL;

		pthread_mutex_lock(&d->lock);
		if (d->bytes + need > d->limit && (victim = oldest_locked(d)))
			detach_locked(d, victim);
		pthread_mutex_unlock(&d->lock);
		if (!victim)
			return true;
		remove_segment(d, victim);
	}
}

#define APPEND_BACKOFF_MS 1000u /* after a failed append (a full disk) */

/* After a failed append or create: an empty segment goes, and no segment
 * is made for a while (a full disk would otherwise get a file per run). */
static void after_append_failure(struct disk_cache *d, struct segment *seg)
{
	deadline_in(&d->append_retry_at, APPEND_BACKOFF_MS);
	if (!seg || seg->size)
		return;
	pthread_mutex_lock(&d->lock);
	detach_locked(d, seg);
	pthread_mutex_unlock(&d->lock);
	remove_segment(d, seg);
}

static bool append_backing_off(const struct disk_cache *d)
{
	return !deadline_passed(&d->append_retry_at);
}

/* A new, empty segment of folder, open for appending in append_fd. */
static bool new_segment(struct disk_cache *d, uint64_t folder)
{
	char name[SEGMENT_NAME_MAX];
	struct segment *seg = calloc(1, sizeof(*seg));
	int fd;

	if (!seg)
		return false;
	pthread_mutex_lock(&d->lock);
	seg->serial = d->next_serial++;
	pthread_mutex_unlock(&d->lock);
	seg->folder = folder;
	disk_segment_name(folder, seg->serial, name);
	fd = files_create_at(files_dir_fd(d->top), name, O_WRONLY | O_APPEND);
	if (fd < 0) {
		log_debug("cache: cannot make %s/%s: %s", files_dir_path(d->top), name, strerror(-fd));
		free(seg);
		after_append_failure(d, NULL);
		return false;
	}
	seg->appendable = true;
	pthread_mutex_lock(&d->lock);
	seg->next = d->segments;
	d->segments = seg;
	seg->stamp = d->appended;
	pthread_mutex_unlock(&d->lock);
	d->append_seg = seg;
	d->append_fd = fd;
	return true;
}

/* Reopens a segment this mount made for folder and left for another's;
 * false when there is none, or its file is not as it was left. */
static bool reopen_segment(struct disk_cache *d, uint64_t folder, size_t need)
{
	char name[SEGMENT_NAME_MAX];
	struct segment *seg = NULL;
	struct stat st;
	int fd;

	pthread_mutex_lock(&d->lock);
	for (struct segment *s = d->segments; s; s = s->next)
		if (s->folder == folder && s->appendable && s->size + need <= d->segment_max)
			seg = s;
	pthread_mutex_unlock(&d->lock);
	if (!seg)
		return false;
	disk_segment_name(folder, seg->serial, name);
	/* files_append_at would make a removed one again, empty */
	if (fstatat(files_dir_fd(d->top), name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size != seg->size) {
		seg->appendable = false;
		return false;
	}
	fd = files_append_at(files_dir_fd(d->top), name);
	if (fd >= 0 && fstat(fd, &st) == 0 && (uint64_t)st.st_size == seg->size) {
		d->append_seg = seg;
		d->append_fd = fd;
		return true;
	}
	if (fd >= 0) /* changed (or made again) by someone else: no appends */
		close(fd);
	seg->appendable = false;
	return false;
}

/* Points append_fd at a segment of folder with room for need bytes. */
static bool place(struct disk_cache *d, uint64_t folder, size_t need)
{
	struct segment *seg = d->append_seg;
	struct stat st;

	/* removed under us (an rm -rf of the cache): appends would be lost */
	if (seg && (fstat(d->append_fd, &st) < 0 || st.st_nlink == 0)) {
		seg->appendable = false;
		close_append(d);
		seg = NULL;
	}
	if (seg && seg->folder == folder && seg->size + need <= d->segment_max)
		return true;
	if (seg && seg->folder == folder)
		seg->appendable = false; /* full */
	close_append(d);
	return reopen_segment(d, folder, need) || new_segment(d, folder);
}

/* Whether a block read back to be appended again (pending.moved) is
 * stale now: the index has other bytes for it, or a folder was dropped
 * since it was read.  Its record is then written but left out of the
 * index (dead bytes until its segment goes). */
static bool moved_elsewhere_locked(struct disk_cache *d, const struct pending *p)
{
	struct entry *e;

	if (!p->moved)
		return false;
	if (p->drops != d->drops)
		return true;
	e = find_locked(d, &p->key);
	return e && (e->seg->serial != p->from_serial || e->offset != p->from_offset);
}

/* Writes run[0..n) (all of one folder, fitting one segment) with one
 * writev, and indexes them once they are whole on disk. */
static void write_run(struct disk_cache *d, struct pending **run, size_t n, size_t total)
{
	struct record heads[RUN_MAX];
	struct iovec iov[2 * RUN_MAX];
	struct segment *seg;
	uint64_t at;
	ssize_t w;

	if (append_backing_off(d) || !make_room(d, total) || !place(d, run[0]->key.folder, total))
		return;
	seg = d->append_seg;
	for (size_t i = 0; i < n; i++) {
		const struct cache_key *k = &run[i]->key;

		heads[i] = (struct record){ RECORD_MAGIC,
					    k->folder,
					    k->uidvalidity,
					    k->uid,
					    k->block,
					    k->section,
					    (uint32_t)run[i]->len,
					    0,
					    block_sum(run[i]->data, run[i]->len) };
		iov[2 * i] = (struct iovec){ &heads[i], sizeof(heads[i]) };
		iov[2 * i + 1] = (struct iovec){ run[i]->data, run[i]->len };
	}
	do
		w = writev(d->append_fd, iov, (int)(2 * n));
	while (w < 0 && errno == EINTR);
	if (w != (ssize_t)total) {
		/* a full disk: take back what part of the run got there, and
		 * write no more to this segment */
		log_debug("cache: cannot append to %s: %s", files_dir_path(d->top),
			  w < 0 ? strerror(errno) : "short write");
		if (ftruncate(d->append_fd, (off_t)seg->size) < 0)
			log_debug("cache: cannot truncate a segment: %s", strerror(errno));
		seg->appendable = false;
		close_append(d);
		after_append_failure(d, seg);
		return;
	}
	pthread_mutex_lock(&d->lock);
	at = seg->size;
	for (size_t i = 0; i < n; i++) {
		if (!moved_elsewhere_locked(d, run[i]))
			disk_index_locked(d, &run[i]->key, seg, at, (uint32_t)run[i]->len);
		at += sizeof(struct record) + run[i]->len;
	}
	seg->size = at;
	d->bytes += total;
	d->appended += total;
	seg->stamp = d->appended;
	pthread_mutex_unlock(&d->lock);
}

/* Appends blocks[0..n), in runs of one folder that fit a segment. */
static void append_blocks(struct disk_cache *d, struct pending **blocks, size_t n)
{
	pthread_mutex_lock(&d->append_lock);
	for (size_t i = 0, j; i < n; i = j) {
		size_t total = sizeof(struct record) + blocks[i]->len;

		for (j = i + 1; j < n && j - i < RUN_MAX && blocks[j]->key.folder == blocks[i]->key.folder &&
				total + sizeof(struct record) + blocks[j]->len <= d->segment_max;
		     j++)
			total += sizeof(struct record) + blocks[j]->len;
		write_run(d, blocks + i, j - i, total);
	}
	pthread_mutex_unlock(&d->append_lock);
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
	d->segment_max = limit / 16 < SEGMENT_MAX ? limit / 16 : SEGMENT_MAX;
	if (d->segment_max < RECORD_MAX) /* a block fits one; a tiny limit caps it */
		d->segment_max = RECORD_MAX < limit ? RECORD_MAX : limit;
	d->append_fd = -1;
	d->nbuckets = DISK_BUCKETS;
	d->buckets = calloc(d->nbuckets, sizeof(*d->buckets));
	pthread_mutex_init(&d->append_lock, NULL);
	pthread_mutex_init(&d->lock, NULL);
	pthread_mutex_init(&d->queue_lock, NULL);
	pthread_cond_init(&d->queue_cond, NULL);
	if (!d->buckets) {
		disk_cache_close(d);
		return NULL;
	}
	disk_cache_index_all(d);
	pthread_mutex_lock(&d->append_lock);
	make_room(d, 0);
	pthread_mutex_unlock(&d->append_lock);
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
	close_append(d);
	while (d->segments) {
		struct segment *seg = d->segments;

		detach_locked(d, seg);
		free(seg);
	}
	free(d->buckets);
	pthread_mutex_destroy(&d->lock);
	pthread_mutex_destroy(&d->append_lock);
	files_dir_close(d->top);
	free(d);
}

/* --- reads --- */

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

static void put_moved(struct disk_cache *d, const struct cache_key *k, const char *buf, size_t len,
		      uint64_t serial, uint64_t offset, uint64_t drops);

int disk_cache_get(struct disk_cache *d, const struct cache_key *k, char *buf, size_t *len)
{
	char name[SEGMENT_NAME_MAX];
	struct record h;
	struct entry *e;
	uint64_t serial = 0, offset = 0, drops = 0;
	uint32_t want = 0;
	bool ok, old = false;
	int fd;

	if (get_pending(d, k, buf, len))
		return 0;
	pthread_mutex_lock(&d->lock);
	e = find_locked(d, k);
	if (e) {
		serial = e->seg->serial;
		offset = e->offset;
		want = e->len;
		/* half a cache's worth written since: the block would be among
		 * the next evicted, so a read moves it forward (an LRU's order,
		 * a segment at a time) */
		old = d->appended - e->seg->stamp > d->limit / 2;
		drops = d->drops;
	}
	pthread_mutex_unlock(&d->lock);
	if (!e)
		return -ENOENT;
	disk_segment_name(k->folder, serial, name);
	fd = files_open_at(files_dir_fd(d->top), name);
	if (fd == -EMFILE || fd == -ENFILE || fd == -ENOMEM || fd == -EINTR)
		return -ENOENT; /* no verdict on the block: it stays indexed */
	ok = fd >= 0;
	if (ok) {
		struct iovec iov[2] = { { &h, sizeof(h) }, { buf, want } };

		ok = preadv(fd, iov, 2, (off_t)offset) == (ssize_t)(sizeof(h) + want) &&
		     h.magic == RECORD_MAGIC && h.folder == k->folder && h.uidvalidity == k->uidvalidity &&
		     h.uid == k->uid && h.block == k->block && h.section == k->section && h.len == want &&
		     block_sum(buf, want) == h.sum;
		close(fd);
		if (!ok)
			log_warn("damaged cache file %s/%s (UID %" PRIu32 ", block %" PRIu32 ", at %" PRIu64
				 "): fetching the block again",
				 files_dir_path(d->top), name, k->uid, k->block, offset);
	}
	if (!ok) { /* removed (then quietly), or damaged */
		forget(d, k, serial, offset);
		return -ENOENT;
	}
	*len = want;
	if (old)
		put_moved(d, k, buf, want, serial, offset, drops);
	return 0;
}

/* --- writes --- */

static void *writer(void *arg)
{
	struct disk_cache *d = arg;
	struct pending *run[RUN_MAX];

	pthread_mutex_lock(&d->queue_lock);
	for (;;) {
		size_t n = 0;

		for (struct pending *p = d->first; p && n < RUN_MAX; p = p->next)
			run[n++] = p;
		if (!n) {
			if (d->stopping)
				break;
			pthread_cond_wait(&d->queue_cond, &d->queue_lock);
			continue;
		}
		pthread_mutex_unlock(&d->queue_lock);
		append_blocks(d, run, n);
		pthread_mutex_lock(&d->queue_lock);
		/* dequeued only once written: a get meanwhile still finds them */
		for (size_t i = 0; i < n; i++) {
			d->first = run[i]->next;
			d->queued_bytes -= run[i]->len;
			shared_bytes_unref(run[i]->data);
			free(run[i]);
		}
		if (!d->first)
			d->last = NULL;
		pthread_cond_broadcast(&d->queue_cond);
	}
	pthread_mutex_unlock(&d->queue_lock);
	return NULL;
}

/* A block written on the caller's thread (no writer thread, or no memory
 * to queue it). */
static void write_block_here(struct disk_cache *d, const struct cache_key *k, char *buf, size_t len)
{
	struct pending p = { .key = *k, .data = buf, .len = len }, *one = &p;

	append_blocks(d, &one, 1);
}

/* Queues p (its bytes a shared_bytes reference, handed over) for the
 * writer thread, which is started on first use; written here when there
 * is none. */
static void enqueue(struct disk_cache *d, struct pending *p)
{
	pthread_mutex_lock(&d->queue_lock);
	if (!d->writer_running && !d->stopping && pthread_create(&d->writer, NULL, writer, d) == 0)
		d->writer_running = true;
	while (d->writer_running && d->queued_bytes > PENDING_MAX_BYTES)
		pthread_cond_wait(&d->queue_cond, &d->queue_lock);
	if (!d->writer_running) { /* no thread: write it here */
		pthread_mutex_unlock(&d->queue_lock);
		append_blocks(d, &p, 1);
		shared_bytes_unref(p->data);
		free(p);
		return;
	}
	if (d->last)
		d->last->next = p;
	else
		d->first = p;
	d->last = p;
	d->queued_bytes += p->len;
	pthread_cond_broadcast(&d->queue_cond);
	pthread_mutex_unlock(&d->queue_lock);
}

void disk_cache_put_shared(struct disk_cache *d, const struct cache_key *k, char *bytes, size_t len)
{
	struct pending *p;

	if (d->limit == 0 || len > CACHE_BLOCK_SIZE) {
		shared_bytes_unref(bytes);
		return;
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		write_block_here(d, k, bytes, len);
		shared_bytes_unref(bytes);
		return;
	}
	p->key = *k;
	p->data = bytes;
	p->len = len;
	enqueue(d, p);
}

/* A block read from the older half, to be appended again (see
 * pending.moved); not kept when there is no memory for it. */
static void put_moved(struct disk_cache *d, const struct cache_key *k, const char *buf, size_t len,
		      uint64_t serial, uint64_t offset, uint64_t drops)
{
	struct pending *p = calloc(1, sizeof(*p));

	if (p && (p->data = shared_bytes_copy(buf, len))) {
		p->key = *k;
		p->len = len;
		p->moved = true;
		p->from_serial = serial;
		p->from_offset = offset;
		p->drops = drops;
		enqueue(d, p);
		return;
	}
	free(p);
}

void disk_cache_put(struct disk_cache *d, const struct cache_key *k, const char *buf, size_t len)
{
	char *copy;

	if (d->limit == 0 || len > CACHE_BLOCK_SIZE)
		return;
	copy = shared_bytes_copy(buf, len);
	if (copy) /* else not kept: fetched again when next read */
		disk_cache_put_shared(d, k, copy, len);
}

void disk_cache_flush(struct disk_cache *d)
{
	pthread_mutex_lock(&d->queue_lock);
	while (d->first)
		pthread_cond_wait(&d->queue_cond, &d->queue_lock);
	pthread_mutex_unlock(&d->queue_lock);
}

/* A folder's segments hold nothing else: they go whole. */
void disk_cache_drop_folder(struct disk_cache *d, uint64_t folder)
{
	struct segment *doomed = NULL;

	disk_cache_flush(d); /* nothing of the folder may land after this */
	pthread_mutex_lock(&d->append_lock);
	pthread_mutex_lock(&d->lock);
	d->drops++;
	for (struct segment *s = d->segments, *next; s; s = next) {
		next = s->next;
		if (s->folder != folder)
			continue;
		detach_locked(d, s);
		s->next = doomed;
		doomed = s;
	}
	pthread_mutex_unlock(&d->lock);
	while (doomed) {
		struct segment *next = doomed->next;

		remove_segment(d, doomed);
		doomed = next;
	}
	pthread_mutex_unlock(&d->append_lock);
}

size_t disk_cache_bytes(struct disk_cache *d)
{
	size_t b;

	pthread_mutex_lock(&d->lock);
	b = d->bytes;
	pthread_mutex_unlock(&d->lock);
	return b;
}

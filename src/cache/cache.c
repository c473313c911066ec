/* cache.c - owns the in-memory block cache: a hash table of blocks with an
 * LRU list, loading states so one block is fetched once (and a bounded wait
 * for the thread fetching it), and eviction of unpinned blocks over the
 * memory limit.
 * Locks: cache.lock (src/README, "Locks"), taken with no lock of the model
 * held; nothing else is taken while it is held: the disk tier is reached
 * with it released. */
#include "cache.h"
#include "cache_disk.h"
#include "shared_bytes.h"
#include "util/deadline.h"
#include "util/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Every field but key (set once) is protected by cache.lock.  A reader
 * takes a reference to data under it and reads the bytes without it: they
 * never change, and outlive the block if it is evicted or replaced. */
struct block {
	struct cache_key key;
	char *data; /* shared_bytes, one reference ours; NULL while loading */
	size_t len;
	unsigned pins; /* the loader, until it has handed the bytes on */
	bool loading;
	struct block *hash_next;
	struct block *lru_prev, *lru_next; /* most recent at head */
};

#define CACHE_BUCKETS 4096 /* memory_limit / CACHE_BLOCK_SIZE blocks, a few per bucket */

struct cache {
	struct disk_cache *disk;  /* NULL without a disk tier; locks itself */
	size_t limit, disk_limit; /* set once */
	unsigned fill_wait_ms;    /* set once */
	size_t nbuckets;          /* set once */
	/* protects what follows and the blocks; never held while a block is
	 * fetched or handed to the disk tier */
	pthread_mutex_t lock;
	pthread_cond_t loaded; /* with lock: a block stopped loading */
	size_t bytes;
	uint64_t hits, misses;
	struct block **buckets;
	struct block *lru_head, *lru_tail;
};

static size_t key_hash(const struct cache_key *k, size_t n)
{
	uint64_t h = k->folder ^ (k->folder >> 29);

	h *= 0x9E3779B97F4A7C15ull;

	h ^= (uint64_t)k->uid * 0xC2B2AE3D27D4EB4Full + k->block + ((uint64_t)k->section << 32);
	h ^= h >> 29;
	return (size_t)(h % n);
}

static bool key_eq(const struct cache_key *a, const struct cache_key *b)
{
	return a->folder == b->folder && a->uid == b->uid && a->block == b->block &&
	       a->uidvalidity == b->uidvalidity && a->section == b->section;
}

uint32_t cache_section_code(const char *section)
{
	uint32_t code = 0, n = 0;
	unsigned count = 0;

	for (const char *p = section;; p++) {
		if (*p >= '0' && *p <= '9') {
			n = n * 10 + (uint32_t)(*p - '0');
			if (n > 255)
				return 0;
			continue;
		}
		if ((*p != '.' && *p) || n == 0 || ++count > 4)
			return 0;
		code = code << 8 | n;
		n = 0;
		if (!*p)
			return code;
	}
}

struct cache *cache_new(const struct cache_options *o)
{
	struct cache *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->limit = o->memory_limit;
	c->disk_limit = o->disk_limit;
	c->fill_wait_ms = o->fill_wait_ms ? o->fill_wait_ms : CACHE_FILL_WAIT_DEFAULT_MS;
	c->nbuckets = CACHE_BUCKETS;
	c->buckets = calloc(c->nbuckets, sizeof(*c->buckets));
	if (!c->buckets || deadline_cond_init(&c->loaded) != 0) {
		free(c->buckets);
		free(c);
		return NULL;
	}
	if (o->disk_limit && o->dir)
		c->disk = disk_cache_open(o->dir, o->disk_limit);
	pthread_mutex_init(&c->lock, NULL);
	return c;
}

void cache_free(struct cache *c)
{
	if (!c)
		return;
	for (struct block *b = c->lru_head, *next; b; b = next) {
		next = b->lru_next;
		shared_bytes_unref(b->data);
		free(b);
	}
	free(c->buckets);
	disk_cache_close(c->disk);
	pthread_cond_destroy(&c->loaded);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

static void lru_unlink_locked(struct cache *c, struct block *b)
{
	if (b->lru_prev)
		b->lru_prev->lru_next = b->lru_next;
	else
		c->lru_head = b->lru_next;
	if (b->lru_next)
		b->lru_next->lru_prev = b->lru_prev;
	else
		c->lru_tail = b->lru_prev;
	b->lru_prev = b->lru_next = NULL;
}

static void lru_push_locked(struct cache *c, struct block *b)
{
	b->lru_prev = NULL;
	b->lru_next = c->lru_head;
	if (c->lru_head)
		c->lru_head->lru_prev = b;
	c->lru_head = b;
	if (!c->lru_tail)
		c->lru_tail = b;
}

static struct block *find_locked(struct cache *c, const struct cache_key *k)
{
	for (struct block *b = c->buckets[key_hash(k, c->nbuckets)]; b; b = b->hash_next)
		if (key_eq(&b->key, k))
			return b;
	return NULL;
}

static void remove_locked(struct cache *c, struct block *b)
{
	struct block **pp = &c->buckets[key_hash(&b->key, c->nbuckets)];

	while (*pp != b)
		pp = &(*pp)->hash_next;
	*pp = b->hash_next;
	lru_unlink_locked(c, b);
	c->bytes -= b->data ? b->len : 0;
	shared_bytes_unref(b->data);
	free(b);
}

static void evict_locked(struct cache *c)
{
	struct block *b = c->lru_tail;

	while (c->bytes > c->limit && b) {
		struct block *prev = b->lru_prev;

		if (!b->pins && !b->loading)
			remove_locked(c, b);
		b = prev;
	}
}

/* Inserts a loading placeholder pinned by its loader. */
static struct block *insert_loading_locked(struct cache *c, const struct cache_key *k)
{
	struct block *b = calloc(1, sizeof(*b));
	size_t h;

	if (!b)
		return NULL;
	b->key = *k;
	b->loading = true;
	b->pins = 1;
	h = key_hash(k, c->nbuckets);
	b->hash_next = c->buckets[h];
	c->buckets[h] = b;
	lru_push_locked(c, b);
	return b;
}

/* The block's bytes into buf (CACHE_BLOCK_SIZE of room): from the disk tier,
 * else by fill (*fetched then).  Called without the lock. */
static int fetch(struct cache *c, const struct cache_key *key, cache_fill_fn *fill, void *ctx, char *buf,
		 size_t *len, bool *fetched)
{
	int r;

	*fetched = false;
	if (!buf)
		return -ENOMEM;
	if (c->disk && disk_cache_get(c->disk, key, buf, len) == 0)
		return 0;
	r = fill(key, buf, len, ctx);
	*fetched = r == 0;
	return r;
}

/* Fills a pinned placeholder; returns with the lock held. */
static int load_locked(struct cache *c, struct block *b, cache_fill_fn *fill, void *ctx)
{
	char *buf = shared_bytes_new(CACHE_BLOCK_SIZE);
	bool fetched;
	size_t len = 0;
	int r;

	pthread_mutex_unlock(&c->lock);
	r = fetch(c, &b->key, fill, ctx, buf, &len, &fetched);
	if (r == 0 && len < CACHE_BLOCK_SIZE)
		buf = shared_bytes_shrink(buf, len);
	pthread_mutex_lock(&c->lock);
	b->loading = false;
	pthread_cond_broadcast(&c->loaded);
	if (r < 0) {
		shared_bytes_unref(buf);
		return r;
	}
	b->data = buf;
	b->len = len;
	c->bytes += len;
	evict_locked(c);
	if (fetched && c->disk) {
		/* waiting readers go on meanwhile; our pin keeps the block */
		pthread_mutex_unlock(&c->lock);
		disk_cache_put_shared(c->disk, &b->key, shared_bytes_ref(buf), len);
		pthread_mutex_lock(&c->lock);
	}
	return 0;
}

/* Copies what the block has from `at` on, at most len bytes. */
static long copy_out(const char *data, size_t block_len, size_t at, char *out, size_t len)
{
	size_t n = cache_span(block_len, at, len);

	if (n > 0)
		memcpy(out, data + at, n);
	return (long)n;
}

/* The block of key once no other thread is filling it (NULL: missing),
 * waiting at most fill_wait_ms for that; NULL and *stalled when the fill
 * did not end in time. */
static struct block *wait_fill_locked(struct cache *c, const struct cache_key *key, bool *stalled)
{
	struct timespec until;
	bool in_time = true, timed = false;
	struct block *b;

	while ((b = find_locked(c, key)) && b->loading && in_time) {
		if (!timed) {
			deadline_in(&until, c->fill_wait_ms);
			timed = true;
		}
		in_time = deadline_wait(&c->loaded, &c->lock, &until);
	}
	*stalled = b && b->loading;
	return *stalled ? NULL : b;
}

/* A reader that gave up waiting for another thread's fill: it fetches the
 * block for itself alone, and the block stays the other thread's to fill. */
static int get_unshared(struct cache *c, const struct cache_key *key, cache_fill_fn *fill, void *ctx,
			char **bytes, size_t *block_len)
{
	char *buf = shared_bytes_new(CACHE_BLOCK_SIZE);
	bool fetched;
	int r;

	log_debug("block %u of UID %u: the fetch under way takes over %u ms; fetching it here", key->block,
		  key->uid, c->fill_wait_ms);
	r = fetch(c, key, fill, ctx, buf, block_len, &fetched);
	if (r < 0) {
		shared_bytes_unref(buf);
		return r;
	}
	*bytes = buf;
	return 0;
}

int cache_get(struct cache *c, const struct cache_key *key, cache_fill_fn *fill, void *ctx, char **bytes,
	      size_t *block_len)
{
	struct block *b;
	bool stalled;
	int r;

	pthread_mutex_lock(&c->lock);
	b = wait_fill_locked(c, key, &stalled);
	if (stalled) {
		c->misses++;
		pthread_mutex_unlock(&c->lock);
		return get_unshared(c, key, fill, ctx, bytes, block_len);
	}
	if (b) {
		c->hits++;
		lru_unlink_locked(c, b);
		lru_push_locked(c, b);
	} else {
		c->misses++;
		b = insert_loading_locked(c, key);
		if (!b) {
			pthread_mutex_unlock(&c->lock);
			return -ENOMEM;
		}
		r = load_locked(c, b, fill, ctx);
		if (r < 0) {
			remove_locked(c, b);
			pthread_mutex_unlock(&c->lock);
			return r;
		}
		b->pins--; /* the loader's */
	}
	/* the reference keeps the bytes when the block is evicted or replaced */
	*bytes = shared_bytes_ref(b->data);
	*block_len = b->len;
	evict_locked(c);
	pthread_mutex_unlock(&c->lock);
	return 0;
}

long cache_read(struct cache *c, const struct cache_key *key, cache_fill_fn *fill, void *ctx, size_t at,
		char *out, size_t len, size_t *block_len)
{
	char *bytes;
	long n;
	int r = cache_get(c, key, fill, ctx, &bytes, block_len);

	if (r < 0)
		return r;
	n = copy_out(bytes, *block_len, at, out, len);
	shared_bytes_unref(bytes);
	return n;
}

/* A shared copy of data; NULL without memory, or for more than a block. */
static char *shared_copy(const char *data, size_t len)
{
	return len <= CACHE_BLOCK_SIZE ? shared_bytes_copy(data, len) : NULL;
}

/* Makes bytes (shared; the caller's reference is taken over) key's block
 * in memory, replacing the bytes held (readers keep theirs).  false: memory
 * does not hold them (the block is loading, or pinned by its loader), and
 * the reference is dropped. */
static bool memory_adopt(struct cache *c, const struct cache_key *key, char *bytes, size_t len)
{
	struct block *b;

	pthread_mutex_lock(&c->lock);
	b = find_locked(c, key);
	if (b && !b->loading && !b->pins) { /* fetched again: the new bytes, kept as new */
		c->bytes -= b->len;
		shared_bytes_unref(b->data);
		lru_unlink_locked(c, b);
		lru_push_locked(c, b);
	} else if (b || !(b = insert_loading_locked(c, key))) {
		pthread_mutex_unlock(&c->lock);
		shared_bytes_unref(bytes);
		return false;
	} else {
		b->loading = false;
		b->pins = 0;
	}
	b->data = bytes;
	b->len = len;
	c->bytes += len;
	evict_locked(c);
	pthread_mutex_unlock(&c->lock);
	return true;
}

bool cache_claim(struct cache *c, const struct cache_key *key)
{
	struct block *b = NULL;

	/* a block on disk needs no fetch: bring it to memory instead */
	if (cache_contains(c, key))
		return false;
	pthread_mutex_lock(&c->lock);
	if (!find_locked(c, key))
		b = insert_loading_locked(c, key);
	pthread_mutex_unlock(&c->lock);
	return b != NULL;
}

void cache_release_claim(struct cache *c, const struct cache_key *key, const char *data, size_t len)
{
	char *copy = data ? shared_copy(data, len) : NULL;
	char *to_disk = NULL;
	struct block *b;

	pthread_mutex_lock(&c->lock);
	b = find_locked(c, key);
	if (b && b->loading) {
		b->loading = false;
		b->pins--;
		if (copy) {
			b->data = copy;
			b->len = len;
			c->bytes += len;
			to_disk = shared_bytes_ref(copy);
			copy = NULL;
		} else {
			remove_locked(c, b);
		}
		pthread_cond_broadcast(&c->loaded);
		evict_locked(c);
	}
	pthread_mutex_unlock(&c->lock);
	/* the disk's copy is the memory's, handed over after the readers
	 * have theirs; without memory for a copy, the disk tier's own try */
	if (to_disk && c->disk)
		disk_cache_put_shared(c->disk, key, to_disk, len);
	else if (data && !copy && !to_disk && c->disk && len <= CACHE_BLOCK_SIZE)
		disk_cache_put(c->disk, key, data, len);
	else
		shared_bytes_unref(to_disk);
	shared_bytes_unref(copy);
}

bool cache_put(struct cache *c, const struct cache_key *key, const char *data, size_t len)
{
	char *copy = shared_copy(data, len);

	if (!copy) {
		if (c->disk)
			disk_cache_put(c->disk, key, data, len);
		return false;
	}
	/* the disk's first: memory may evict the block at once, and a reader
	 * must not then load the disk's older bytes back */
	if (c->disk)
		disk_cache_put_shared(c->disk, key, shared_bytes_ref(copy), len);
	return memory_adopt(c, key, copy, len);
}

bool cache_put_memory(struct cache *c, const struct cache_key *key, const char *data, size_t len)
{
	char *copy = shared_copy(data, len);

	return copy && memory_adopt(c, key, copy, len);
}

bool cache_contains(struct cache *c, const struct cache_key *key)
{
	bool found;
	char *buf;
	size_t len;

	pthread_mutex_lock(&c->lock);
	found = find_locked(c, key) != NULL;
	pthread_mutex_unlock(&c->lock);
	if (found || !c->disk)
		return found;
	/* on disk: bring it into memory now, as a reader soon will */
	buf = malloc(CACHE_BLOCK_SIZE);
	found = buf && disk_cache_get(c->disk, key, buf, &len) == 0;
	if (found)
		cache_put_memory(c, key, buf, len);
	free(buf);
	return found;
}

void cache_flush(struct cache *c)
{
	if (c->disk)
		disk_cache_flush(c->disk);
}

void cache_drop_folder(struct cache *c, uint64_t folder)
{
	pthread_mutex_lock(&c->lock);
	for (struct block *b = c->lru_head, *next; b; b = next) {
		next = b->lru_next;
		if (b->key.folder == folder && !b->pins && !b->loading)
			remove_locked(c, b);
	}
	pthread_mutex_unlock(&c->lock);
	if (c->disk)
		disk_cache_drop_folder(c->disk, folder);
}

void cache_stats(struct cache *c, size_t *bytes, uint64_t *hits, uint64_t *misses)
{
	pthread_mutex_lock(&c->lock);
	*bytes = c->bytes;
	*hits = c->hits;
	*misses = c->misses;
	pthread_mutex_unlock(&c->lock);
}

void cache_status(struct cache *c, FILE *out)
{
	size_t bytes, disk = c->disk ? disk_cache_bytes(c->disk) : 0;
	uint64_t hits, misses;

	cache_stats(c, &bytes, &hits, &misses);
	fprintf(out,
		"cache memory_bytes=%zu memory_limit=%zu disk_bytes=%zu disk_limit=%zu "
		"hits=%llu misses=%llu hit_rate=%.1f%%\n",
		bytes, c->limit, disk, c->disk_limit, (unsigned long long)hits, (unsigned long long)misses,
		hits + misses ? 100.0 * (double)hits / (double)(hits + misses) : 0.0);
}

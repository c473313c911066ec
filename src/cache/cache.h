/* cache.h - message bodies in fixed-size blocks, in two tiers: memory (LRU,
 * bounded) and disk (cache_disk.h, bounded, survives remounts).  IMAP
 * messages never change, so a block is valid until its folder's UIDVALIDITY
 * changes.  Concurrent readers of a missing block fetch it once: the others
 * wait for the first, for a bounded time (fill_wait_ms), and then fetch it
 * themselves.  A reader holds a reference to the bytes it reads: evicting or
 * replacing the block does not take them from under it. */
#ifndef IMAPFS_CACHE_H
#define IMAPFS_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* 128 KiB: the kernel's largest read request, and big enough that a FETCH's
 * round trip is small next to its transfer. */
#define CACHE_BLOCK_SIZE (128u * 1024u)

struct cache_key {
	uint64_t folder; /* hash of account and folder name: stable across mounts */
	uint32_t uidvalidity;
	uint32_t uid;
	uint32_t block;   /* offset / CACHE_BLOCK_SIZE */
	uint32_t section; /* 0: the whole message; else the MIME part whose
			   * decoded bytes these are (cache_section_code) */
};

/* A MIME section ("2", "1.3") as a cache_key's section: its numbers, one
 * per byte, most significant first.  0 for a section the code cannot hold
 * (more than four numbers, or one over 255): such parts are not cached. */
uint32_t cache_section_code(const char *section);

/* Fetches one block into buf (CACHE_BLOCK_SIZE bytes of room); *len is the
 * number of bytes the message has in that block (short at its end).  Runs
 * without any cache lock held.  Returns 0 or -errno. */
typedef int cache_fill_fn(const struct cache_key *key, char *buf, size_t *len, void *ctx);

struct cache;
struct files_dir;

/* How long a reader waits for another thread's fetch of the same block when
 * cache_options.fill_wait_ms is 0: the mount's default timeout. */
#define CACHE_FILL_WAIT_DEFAULT_MS 30000u

struct cache_options {
	size_t memory_limit;
	size_t disk_limit; /* 0: no disk tier */
	/* A reader that has waited this long for another thread's fetch of a
	 * block (a claim by prefetch included) fetches the block itself, for
	 * itself alone, rather than fail: the fetch it waited for may be
	 * queued behind others or stalled.  0: CACHE_FILL_WAIT_DEFAULT_MS. */
	unsigned fill_wait_ms;
	const struct files_dir *dir; /* the cache directory (blocks/ goes in it);
					 * not kept after cache_new */
};

struct cache *cache_new(const struct cache_options *o);
void cache_free(struct cache *c);

/* The block's bytes (shared_bytes.h: the caller drops the reference it gets
 * with shared_bytes_unref) and *block_len their length, filling the block
 * first when it is missing (or, after fill_wait_ms of waiting for another
 * thread's fill, fetching it with fill without keeping it).  0 or -errno. */
int cache_get(struct cache *c, const struct cache_key *key, cache_fill_fn *fill, void *ctx, char **bytes,
	      size_t *block_len);
/* How many of a block's block_len bytes lie from `at` on, at most len. */
static inline size_t cache_span(size_t block_len, size_t at, size_t len)
{
	size_t n = at < block_len ? block_len - at : 0;

	return n < len ? n : len;
}
/* Copies up to len bytes from offset `at` inside the block into out, filling
 * the block first when it is missing (or, after fill_wait_ms of waiting
 * for another thread's fill, fetching it with fill without keeping it).
 * *block_len receives the block's length.  Returns the number of bytes
 * copied or -errno. */
long cache_read(struct cache *c, const struct cache_key *key, cache_fill_fn *fill, void *ctx, size_t at,
		char *out, size_t len, size_t *block_len);

/* Prefetch: claims a missing block (true: the caller must end it), so a
 * reader that comes for it meanwhile waits (at most fill_wait_ms) instead of
 * fetching it again. */
bool cache_claim(struct cache *c, const struct cache_key *key);
/* Ends a claim with the block's bytes, or with data NULL when the fetch
 * failed (a waiting reader then fetches it itself). */
void cache_release_claim(struct cache *c, const struct cache_key *key, const char *data, size_t len);

/* Stores a block fetched otherwise (a part's bytes), over the one held if
 * any (a block fetched again).  false: memory does not hold these bytes
 * (no memory, or a reader is copying out the old ones). */
bool cache_put(struct cache *c, const struct cache_key *key, const char *data, size_t len);
/* cache_put's memory half alone: trying again after it reported false
 * (the disk tier has the bytes already). */
bool cache_put_memory(struct cache *c, const struct cache_key *key, const char *data, size_t len);
/* Whether the block is held (in memory or on disk) without fetching it. */
bool cache_contains(struct cache *c, const struct cache_key *key);

/* Waits until blocks being written to the disk tier are there. */
void cache_flush(struct cache *c);

/* Forgets every block of a folder (its UIDVALIDITY changed). */
void cache_drop_folder(struct cache *c, uint64_t folder);

/* Bytes held in memory now, and hits/misses so far. */
void cache_stats(struct cache *c, size_t *bytes, uint64_t *hits, uint64_t *misses);

/* One line (sizes, limits, hit rate) for MOUNT/.status. */
void cache_status(struct cache *c, FILE *out);

#endif

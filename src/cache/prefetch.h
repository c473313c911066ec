/* prefetch.h - reading ahead of a reader, in the background: the first
 * block of the next messages a reader will open (one batched UID FETCH for
 * several), and the next blocks of a large message read sequentially.
 * Claimed blocks make a reader who arrives first wait instead of fetching
 * twice.  Jobs run on two worker threads through the pool.  Thread-safe. */
#ifndef IMAPFS_PREFETCH_H
#define IMAPFS_PREFETCH_H

#include <stdint.h>
#include <stddef.h>

struct pool;
struct cache;
struct prefetch;

/* depth 0 disables prefetch (every call below does nothing). */
struct prefetch *prefetch_new(struct pool *pool, struct cache *cache, unsigned depth);
void prefetch_free(struct prefetch *p);
unsigned prefetch_depth(const struct prefetch *p);

/* The worker: started after daemonising, stopped before unmount. */
int prefetch_start(struct prefetch *p);
void prefetch_stop(struct prefetch *p);

/* A message whose first block is to be read ahead: its UID, the size the
 * kernel was told (0: none it can be trusted with), and the caller's name for
 * it, handed back to the whole-body hook (the FUSE side's: its inode). */
struct prefetch_head {
	uint32_t uid;
	uint32_t size;
	uint64_t tag;
};

/* Told, once a batch is in the cache, of each of its messages whose first
 * block was the whole body, of the size given: the FUSE side puts it in the
 * kernel's page cache, and a reader's read never comes to the daemon.  On a
 * worker thread holding no lock and no session; body (len bytes) is the
 * hook's to read until it returns. */
typedef void prefetch_whole_fn(uint64_t tag, char *body, size_t len, void *ctx);
/* Set once, before prefetch_start. */
void prefetch_set_whole_hook(struct prefetch *p, prefetch_whole_fn *fn, void *ctx);

/* Block 0 of messages of folder (server name; key = its cache key). */
void prefetch_messages(struct prefetch *p, const char *folder, uint64_t key, uint32_t uidvalidity,
		       const struct prefetch_head *heads, size_t n);
/* Blocks first..last of one message. */
void prefetch_blocks(struct prefetch *p, const char *folder, uint64_t key, uint32_t uidvalidity, uint32_t uid,
		     uint32_t first, uint32_t last);
/* Blocks first..last of one message, claimed at once and fetched with one
 * command: those its opening will check (the one holding its claimed end,
 * and the rest of the body before it when the reader reads bodies whole).
 * As many as can be claimed from first on (at most 256); the last one
 * always, alone if a block before it is cached or on its way. */
void prefetch_claimed(struct prefetch *p, const char *folder, uint64_t key, uint32_t uidvalidity,
		      uint32_t uid, uint32_t first, uint32_t last);

/* Blocks first..last of one message that no other thread has claimed or
 * holds, fetched now on the caller's thread, one command per run of them
 * (at most 256 blocks each).  A reader's own span; the blocks are in the
 * cache (or, on failure, left for the reader to fetch) when it returns. */
int prefetch_fetch_here(struct prefetch *p, const char *folder, uint64_t key, uint32_t uidvalidity,
			uint32_t uid, uint32_t first, uint32_t last);

#endif

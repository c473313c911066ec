/* cache_disk_p.h - the disk tier's insides, shared by cache_disk.c (the
 * index, appends, reads, eviction) and cache_disk_load.c (what earlier
 * mounts left).  Nobody else includes it.  The locks are described at
 * struct disk_cache and in src/README, "Locks". */
#ifndef IMAPFS_CACHE_DISK_P_H
#define IMAPFS_CACHE_DISK_P_H

#include "cache.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct files_dir;

#define RECORD_MAGIC 0x4b4c4246534d4933ull /* "3IMSFBLK" */

/* A block on disk: this header, then len bytes. */
struct record {
	uint64_t magic;
	uint64_t folder;
	uint32_t uidvalidity;
	uint32_t uid;
	uint32_t block;
	uint32_t section;
	uint32_t len;
	uint32_t zero;
	uint64_t sum; /* block_sum of the bytes */
};

#define RECORD_MAX (sizeof(struct record) + CACHE_BLOCK_SIZE)
#define SEGMENT_MAX (64u << 20) /* and at most a sixteenth of the limit */
#define SEGMENT_NAME_MAX 34     /* FOLDER-SERIAL, 16 hex digits each */
#define RUN_MAX 64              /* records written by one writev */
#define DISK_BUCKETS 65536

struct entry;

/* One file of records, all of one folder. */
struct segment {
	uint64_t folder, serial; /* its name */
	uint64_t size;           /* of the file: whole records */
	/* disk_cache.appended after its last append (an earlier mount's:
	 * as if appended in the order of their serials) */
	uint64_t stamp;
	bool appendable;       /* made by this mount, nothing failed in it */
	struct entry *entries; /* the index's blocks in it */
	struct segment *next;
};

struct entry {
	struct cache_key key;
	struct segment *seg;
	uint64_t offset; /* of its record */
	uint32_t len;    /* of its bytes */
	struct entry *hash_next;
	struct entry *seg_prev, *seg_next;
};

/* A block waiting for the writer thread. */
struct pending {
	struct cache_key key;
	char *data; /* shared_bytes: often the memory cache's copy */
	size_t len;
	/* read back from the older half to be appended again (an LRU's
	 * order): indexed only if the index still has the block where it
	 * was read (a newer put wins) and no folder was dropped meanwhile */
	bool moved;
	uint64_t from_serial, from_offset, drops;
	struct pending *next;
};

#define PENDING_MAX_BYTES (32u << 20) /* beyond this, writes wait (back-pressure) */

struct disk_cache {
	struct files_dir *top; /* cache_dir/blocks */
	size_t limit, segment_max;

	/* serialises appends and the making and removal of segments, and
	 * protects the two fields below; file I/O happens under it; only
	 * lock is taken while it is held */
	pthread_mutex_t append_lock;
	struct segment *append_seg;      /* the segment append_fd is open on */
	int append_fd;                   /* -1: none */
	struct timespec append_retry_at; /* no new segment before (deadline_in) */

	/* protects everything below up to the queue; a leaf */
	pthread_mutex_t lock;
	size_t bytes;      /* the segments' sizes */
	uint64_t appended; /* bytes appended since the oldest segment: stamps */
	uint64_t next_serial;
	uint64_t drops; /* folders dropped: moved blocks read before are stale */
	struct segment *segments;
	size_t nbuckets;
	struct entry **buckets;

	/* Blocks are written by a thread of their own, off the paths that wait
	 * for them. */
	pthread_mutex_t queue_lock; /* protects the fields below; a leaf, like lock */
	pthread_cond_t queue_cond;  /* with queue_lock: work arrived, room freed, or stop */
	struct pending *first, *last;
	size_t queued_bytes;
	bool writer_running, stopping;
	pthread_t writer;
};

/* FOLDER-SERIAL, 16 hex digits each; the parse refuses anything else. */
void disk_segment_name(uint64_t folder, uint64_t serial, char out[SEGMENT_NAME_MAX]);
bool disk_parse_segment_name(const char *name, uint64_t *folder, uint64_t *serial);
/* Under d->lock: the block k is at offset of seg now (replacing where it
 * was before). */
void disk_index_locked(struct disk_cache *d, const struct cache_key *k, struct segment *seg, uint64_t offset,
		       uint32_t len);
/* Indexes the segments under blocks/ (cache_disk_load.c); before any
 * other thread uses d. */
void disk_cache_index_all(struct disk_cache *d);

#endif

/* cache_disk.h - the on-disk tier of the block cache, under
 * cache_dir/blocks/: segment files, one folder's blocks appended to each
 * (by a writer thread), every block checksummed and indexed in memory,
 * evicted a whole segment at a time, the one appended to least recently
 * first, beyond a size limit.  A damaged or missing block is reported
 * missing, never served.  Thread-safe. */
#ifndef IMAPFS_CACHE_DISK_H
#define IMAPFS_CACHE_DISK_H

#include <stddef.h>
#include <stdint.h>

struct cache_key;
struct disk_cache;
struct files_dir;

/* Opens dir/blocks (created 0700; see files.h) and indexes what earlier
 * mounts left.  dir is not kept: the caller may close it. */
struct disk_cache *disk_cache_open(const struct files_dir *dir, size_t limit);
void disk_cache_close(struct disk_cache *d);

/* 0 and the block in buf (room CACHE_BLOCK_SIZE), or -ENOENT. */
int disk_cache_get(struct disk_cache *d, const struct cache_key *k, char *buf, size_t *len);
/* Queues the block for the writer thread (written within moments; served
 * from the queue meanwhile).  Waits only when much is queued already. */
void disk_cache_put(struct disk_cache *d, const struct cache_key *k, const char *buf, size_t len);
/* disk_cache_put of shared_bytes, without a copy: takes over the caller's
 * reference to them (which must not change them afterwards). */
void disk_cache_put_shared(struct disk_cache *d, const struct cache_key *k, char *bytes, size_t len);
/* Waits until every queued block is on disk. */
void disk_cache_flush(struct disk_cache *d);
void disk_cache_drop_folder(struct disk_cache *d, uint64_t folder);
size_t disk_cache_bytes(struct disk_cache *d);

/* CRC-32 (IEEE), shared with the listing files. */
uint32_t cache_crc32(uint32_t crc, const void *data, size_t len);

#endif

/* block_sum.h - the checksum of a block file's bytes (cache_disk.c): 64
 * bits, fixed for all time as part of the file format, meant to catch a
 * damaged or torn file, not a forger (the files are the owner's alone). */
#ifndef IMAPFS_BLOCK_SUM_H
#define IMAPFS_BLOCK_SUM_H

#include <stddef.h>
#include <stdint.h>

uint64_t block_sum(const void *data, size_t len);

#endif

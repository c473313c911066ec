/* fill_source.h - the block source of the cache unit tests: every byte
 * derived from its key so it can be checked, with a fill count, a delay
 * and a failure switch.  UID 99 has a short last block. */
#ifndef IMAPFS_TEST_FILL_SOURCE_H
#define IMAPFS_TEST_FILL_SOURCE_H

#include <errno.h>
#include <stddef.h>
#include <unistd.h>

#include "cache/cache.h"

#define SHORT_BLOCK_UID 99
#define SHORT_BLOCK_LEN 1000

struct source {
	int fills; /* atomic */
	int fail;
	useconds_t delay;
};

/* A block's content is derived from its key so every byte can be checked. */
static char expected_byte(const struct cache_key *k, size_t i)
{
	return (char)((k->uid * 31 + k->block * 7 + i) & 0xff);
}

static int fill(const struct cache_key *k, char *buf, size_t *len, void *ctx)
{
	struct source *src = ctx;

	__atomic_add_fetch(&src->fills, 1, __ATOMIC_RELAXED);
	if (src->delay)
		usleep(src->delay);
	if (src->fail)
		return -EIO;
	*len = k->uid == SHORT_BLOCK_UID ? SHORT_BLOCK_LEN : CACHE_BLOCK_SIZE;
	for (size_t i = 0; i < *len; i++)
		buf[i] = expected_byte(k, i);
	return 0;
}

#endif

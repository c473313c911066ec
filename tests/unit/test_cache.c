/* Unit tests for cache.c: hits, misses, LRU eviction within the limit,
 * failed fills not cached, folder drops, one fetch for concurrent readers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "cache.h"

struct source {
	int fills;		/* atomic */
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
	*len = k->uid == 99 ? 1000 : CACHE_BLOCK_SIZE;	/* uid 99: a short last block */
	for (size_t i = 0; i < *len; i++)
		buf[i] = expected_byte(k, i);
	return 0;
}

static struct cache *mem_cache(size_t limit)
{
	return cache_new(&(struct cache_options){ .memory_limit = limit });
}

static long read_block(struct cache *c, struct source *src, uint32_t uid, uint32_t block,
		       size_t at, char *out, size_t len)
{
	struct cache_key k = { 1, 7, uid, block };
	size_t blen;

	return cache_read(c, &k, fill, src, at, out, len, &blen);
}

static void test_hit_and_miss(void **state)
{
	struct cache *c = mem_cache(4 * CACHE_BLOCK_SIZE);
	struct source src = { 0 };
	struct cache_key k = { 1, 7, 5, 2 };
	char out[100];

	(void)state;
	assert_int_equal(read_block(c, &src, 5, 2, 10, out, sizeof(out)), 100);
	for (size_t i = 0; i < sizeof(out); i++)
		assert_int_equal(out[i], expected_byte(&k, i + 10));
	assert_int_equal(read_block(c, &src, 5, 2, 0, out, sizeof(out)), 100);
	assert_int_equal(src.fills, 1);
	/* reading past a short block's end gives 0 bytes */
	assert_int_equal(read_block(c, &src, 99, 0, 2000, out, sizeof(out)), 0);
	assert_int_equal(read_block(c, &src, 99, 0, 950, out, sizeof(out)), 50);
	cache_free(c);
}

static void test_lru_eviction(void **state)
{
	struct cache *c = mem_cache(3 * CACHE_BLOCK_SIZE);
	struct source src = { 0 };
	size_t bytes;
	uint64_t hits, misses;
	char out[1];

	(void)state;
	for (uint32_t uid = 1; uid <= 3; uid++)
		read_block(c, &src, uid, 0, 0, out, 1);
	read_block(c, &src, 1, 0, 0, out, 1);	/* 1 is now the most recent */
	read_block(c, &src, 4, 0, 0, out, 1);	/* evicts 2, the least recent */
	cache_stats(c, &bytes, &hits, &misses);
	assert_true(bytes <= 3 * CACHE_BLOCK_SIZE);
	assert_int_equal(src.fills, 4);
	read_block(c, &src, 1, 0, 0, out, 1);
	read_block(c, &src, 3, 0, 0, out, 1);
	assert_int_equal(src.fills, 4);		/* 1 and 3 still there */
	read_block(c, &src, 2, 0, 0, out, 1);
	assert_int_equal(src.fills, 5);		/* 2 was evicted */
	cache_free(c);
}

static void test_failure_not_cached(void **state)
{
	struct cache *c = mem_cache(4 * CACHE_BLOCK_SIZE);
	struct source src = { .fail = 1 };
	char out[10];

	(void)state;
	assert_int_equal(read_block(c, &src, 1, 0, 0, out, 10), -EIO);
	src.fail = 0;
	assert_int_equal(read_block(c, &src, 1, 0, 0, out, 10), 10);
	assert_int_equal(src.fills, 2);
	cache_free(c);
}

static void test_drop_folder(void **state)
{
	struct cache *c = mem_cache(4 * CACHE_BLOCK_SIZE);
	struct source src = { 0 };
	size_t bytes;
	uint64_t hits, misses;
	char out[10];

	(void)state;
	read_block(c, &src, 1, 0, 0, out, 10);
	cache_drop_folder(c, 1);
	cache_stats(c, &bytes, &hits, &misses);
	assert_int_equal(bytes, 0);
	read_block(c, &src, 1, 0, 0, out, 10);
	assert_int_equal(src.fills, 2);
	cache_free(c);
}

struct reader {
	struct cache *c;
	struct source *src;
	long result;
};

static void *reader_thread(void *arg)
{
	struct reader *r = arg;
	char out[64];

	r->result = read_block(r->c, r->src, 42, 3, 0, out, sizeof(out));
	return NULL;
}

static void test_concurrent_single_fetch(void **state)
{
	struct cache *c = mem_cache(4 * CACHE_BLOCK_SIZE);
	struct source src = { .delay = 100000 };
	struct reader readers[8];
	pthread_t t[8];

	(void)state;
	for (int i = 0; i < 8; i++) {
		readers[i] = (struct reader){ c, &src, 0 };
		pthread_create(&t[i], NULL, reader_thread, &readers[i]);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(readers[i].result, 64);
	}
	assert_int_equal(src.fills, 1);
	cache_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hit_and_miss),
		cmocka_unit_test(test_lru_eviction),
		cmocka_unit_test(test_failure_not_cached),
		cmocka_unit_test(test_drop_folder),
		cmocka_unit_test(test_concurrent_single_fetch),
	};

	return cmocka_run_group_tests_name("cache", tests, NULL, NULL);
}

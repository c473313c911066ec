/* Unit tests for cache.c's bounded wait: a reader that finds another
 * thread's fill of its block (a prefetch claim, or a slow reader) waits at
 * most fill_wait_ms, then fetches the block itself, for itself alone; the
 * block stays the other thread's to fill. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "cache/cache.h"
#include "fill_source.h"

#define WAIT_MS 200u          /* the readers' fill_wait_ms */
#define SLOW_FILL_US 1500000u /* a fill that outlasts WAIT_MS by far */
#define WAIT_SLACK_MS 1000    /* scheduling on a loaded machine */

static long elapsed_ms(const struct timespec *since)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - since->tv_sec) * 1000 + (now.tv_nsec - since->tv_nsec) / 1000000;
}

/* Reads 64 bytes at 100 of the block and checks them; the time it took. */
static long timed_read(struct cache *c, const struct cache_key *k, struct source *src, long want)
{
	struct timespec t0;
	char out[64];
	size_t blen = 0;
	long n;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	n = cache_read(c, k, fill, src, 100, out, sizeof(out), &blen);
	assert_int_equal(n, want);
	for (long i = 0; i < n; i++)
		assert_int_equal(out[i], expected_byte(k, 100 + (size_t)i));
	if (n > 0)
		assert_int_equal(blen, CACHE_BLOCK_SIZE);
	return elapsed_ms(&t0);
}

static struct cache *waiting_cache(void)
{
	struct cache *c = cache_new(
		&(struct cache_options){ .memory_limit = 8 * CACHE_BLOCK_SIZE, .fill_wait_ms = WAIT_MS });

	assert_non_null(c);
	return c;
}

/* A prefetch claim that is never ended (its job queued behind others, or
 * its connection stalled) holds a reader up for WAIT_MS, not for ever. */
static void test_stalled_claim(void **state)
{
	struct cache *c = waiting_cache();
	struct cache_key k = { 1, 7, 5, 0, 0 };
	struct source src = { 0 };
	long ms;

	(void)state;
	assert_true(cache_claim(c, &k));
	ms = timed_read(c, &k, &src, 64);
	assert_true(ms >= (long)WAIT_MS - 5);
	assert_true(ms < (long)WAIT_MS + WAIT_SLACK_MS);
	assert_int_equal(src.fills, 1);
	/* the claim still holds the block: the next reader waits and fetches too */
	timed_read(c, &k, &src, 64);
	assert_int_equal(src.fills, 2);
	/* once the claim ends empty, a reader fills the block for everyone */
	cache_release_claim(c, &k, NULL, 0);
	assert_true(timed_read(c, &k, &src, 64) < WAIT_SLACK_MS);
	timed_read(c, &k, &src, 64);
	assert_int_equal(src.fills, 3);
	cache_free(c);
}

/* A reader's own fetch after the wait fails like any fetch: its error. */
static void test_stalled_claim_fetch_fails(void **state)
{
	struct cache *c = waiting_cache();
	struct cache_key k = { 1, 7, 6, 0, 0 };
	struct source src = { .fail = 1 };

	(void)state;
	assert_true(cache_claim(c, &k));
	timed_read(c, &k, &src, -EIO);
	cache_release_claim(c, &k, NULL, 0);
	cache_free(c);
}

struct slow_reader {
	struct cache *c;
	struct cache_key key;
	struct source src;
	long ms;
};

static void *slow_reader_thread(void *arg)
{
	struct slow_reader *r = arg;

	r->ms = timed_read(r->c, &r->key, &r->src, 64);
	return NULL;
}

/* Another reader's fill that takes long: the second reader is back after
 * WAIT_MS with the bytes, long before the first; the first one's block is
 * then cached for both. */
static void test_slow_fill_of_another_reader(void **state)
{
	struct slow_reader slow = { waiting_cache(), { 1, 7, 8, 2, 0 }, { .delay = SLOW_FILL_US }, 0 };
	struct source fast = { 0 };
	pthread_t t;
	long ms;

	(void)state;
	assert_int_equal(pthread_create(&t, NULL, slow_reader_thread, &slow), 0);
	while (__atomic_load_n(&slow.src.fills, __ATOMIC_RELAXED) == 0)
		usleep(1000);
	ms = timed_read(slow.c, &slow.key, &fast, 64);
	assert_true(ms < (long)(SLOW_FILL_US / 1000));
	assert_int_equal(fast.fills, 1);
	pthread_join(t, NULL);
	assert_true(slow.ms >= (long)(SLOW_FILL_US / 1000) - 5);
	timed_read(slow.c, &slow.key, &fast, 64);
	assert_int_equal(fast.fills, 1); /* a hit: the slow fill was kept */
	assert_int_equal(slow.src.fills, 1);
	cache_free(slow.c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stalled_claim),
		cmocka_unit_test(test_stalled_claim_fetch_fails),
		cmocka_unit_test(test_slow_fill_of_another_reader),
	};

	return cmocka_run_group_tests_name("cache_wait", tests, NULL, NULL);
}

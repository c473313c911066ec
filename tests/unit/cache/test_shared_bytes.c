/* Unit tests for shared_bytes: the bytes live until the last reference
 * goes (AddressSanitizer, in make check-asan, sees a use after free or a
 * leak), shrinking keeps them, and references taken and dropped from
 * several threads at once are counted right (ThreadSanitizer). */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "cache/shared_bytes.h"

static void test_last_reference_frees(void **state)
{
	char *b = shared_bytes_new(100);

	(void)state;
	assert_non_null(b);
	memset(b, 'x', 100);
	assert_ptr_equal(shared_bytes_ref(b), b);
	shared_bytes_unref(b);
	/* one reference left: still ours to read */
	for (int i = 0; i < 100; i++)
		assert_int_equal(b[i], 'x');
	shared_bytes_unref(b);
	shared_bytes_unref(NULL);
}

static void test_shrink_keeps_the_bytes(void **state)
{
	char *b = shared_bytes_new(128 * 1024);

	(void)state;
	assert_non_null(b);
	for (int i = 0; i < 5000; i++)
		b[i] = (char)(i * 7);
	b = shared_bytes_shrink(b, 5000);
	for (int i = 0; i < 5000; i++)
		assert_int_equal(b[i], (char)(i * 7));
	b = shared_bytes_shrink(b, 0);
	assert_non_null(b);
	shared_bytes_unref(b);
}

static void test_aligned(void **state)
{
	char *b = shared_bytes_new(1);

	(void)state;
	assert_int_equal((uintptr_t)b % _Alignof(max_align_t), 0);
	shared_bytes_unref(b);
}

#define THREADS 4
#define ROUNDS 20000

static void *hold_and_drop(void *arg)
{
	char *b = arg;

	for (int i = 0; i < ROUNDS; i++) {
		shared_bytes_ref(b);
		if (b[0] != 'y')
			return NULL;
		shared_bytes_unref(b);
	}
	return b;
}

static void test_references_from_threads(void **state)
{
	char *b = shared_bytes_new(16);
	pthread_t t[THREADS];

	(void)state;
	assert_non_null(b);
	b[0] = 'y';
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, hold_and_drop, shared_bytes_ref(b)), 0);
	for (int i = 0; i < THREADS; i++) {
		void *r;

		assert_int_equal(pthread_join(t[i], &r), 0);
		assert_ptr_equal(r, b);
		shared_bytes_unref(b); /* the thread's */
	}
	assert_int_equal(b[0], 'y');
	shared_bytes_unref(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_last_reference_frees),
		cmocka_unit_test(test_shrink_keeps_the_bytes),
		cmocka_unit_test(test_aligned),
		cmocka_unit_test(test_references_from_threads),
	};

	return cmocka_run_group_tests_name("shared_bytes", tests, NULL, NULL);
}

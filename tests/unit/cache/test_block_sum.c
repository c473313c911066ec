/* Unit tests for block_sum: its values are part of the block file format
 * (frozen below: a change must come with a new BLOCK_MAGIC), and it sees
 * every change a damaged or torn file shows -- a flipped bit anywhere, a
 * length cut short, words out of place. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cache/block_sum.h"

static unsigned char pattern[131072];

static int setup(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(pattern); i++)
		pattern[i] = (unsigned char)(i * 131 + 7);
	return 0;
}

static void test_frozen_values(void **state)
{
	static const unsigned char zeros[64];

	(void)state;
	assert_true(block_sum("", 0) == 0x8cf6cd5f8b9c1690ull);
	assert_true(block_sum("a", 1) == 0x2d1b282d9116948bull);
	assert_true(block_sum("123456789", 9) == 0x254035d4cad6bb4eull);
	assert_true(block_sum(zeros, sizeof(zeros)) == 0x7c6ae29acfd1b00dull);
	assert_true(block_sum(pattern, 1000) == 0xdbee2d760e51235dull);
	assert_true(block_sum(pattern, sizeof(pattern)) == 0xf912ee3040c8ef18ull);
}

static int compare_sums(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/* 300 bytes: four rounds of the eight lanes, five words after them and
 * four single bytes, so each part of the sum is covered. */
#define FLIP_LEN 300

static void test_every_bit_flip_differs(void **state)
{
	unsigned char buf[FLIP_LEN];
	uint64_t *sums = malloc((FLIP_LEN * 8 + 1) * sizeof(*sums));
	size_t n = 0;

	(void)state;
	assert_non_null(sums);
	memcpy(buf, pattern, sizeof(buf));
	sums[n++] = block_sum(buf, sizeof(buf));
	for (size_t bit = 0; bit < FLIP_LEN * 8; bit++) {
		buf[bit / 8] ^= (unsigned char)(1u << bit % 8);
		sums[n++] = block_sum(buf, sizeof(buf));
		buf[bit / 8] ^= (unsigned char)(1u << bit % 8);
	}
	qsort(sums, n, sizeof(*sums), compare_sums);
	for (size_t i = 1; i < n; i++)
		if (sums[i] == sums[i - 1])
			fail_msg("two of the %zu one-bit changes sum alike", n);
	free(sums);
}

/* The same bit flipped in two words of one lane: a plain xor-and-multiply
 * chain would let the second flip cancel the first. */
static void test_paired_flips_in_one_lane_differ(void **state)
{
	unsigned char buf[256];
	uint64_t whole;

	(void)state;
	memcpy(buf, pattern, sizeof(buf));
	whole = block_sum(buf, sizeof(buf));
	for (unsigned bit = 0; bit < 64; bit++) {
		buf[bit / 8] ^= (unsigned char)(1u << bit % 8);
		buf[64 + bit / 8] ^= (unsigned char)(1u << bit % 8);
		assert_true(block_sum(buf, sizeof(buf)) != whole);
		buf[bit / 8] ^= (unsigned char)(1u << bit % 8);
		buf[64 + bit / 8] ^= (unsigned char)(1u << bit % 8);
	}
}

/* A torn file reads as zeros, or ends early: every length of zeros sums
 * differently. */
static void test_lengths_differ(void **state)
{
	static const unsigned char zeros[200];
	uint64_t sums[sizeof(zeros) + 1];

	(void)state;
	for (size_t len = 0; len <= sizeof(zeros); len++)
		sums[len] = block_sum(zeros, len);
	qsort(sums, sizeof(zeros) + 1, sizeof(*sums), compare_sums);
	for (size_t i = 1; i <= sizeof(zeros); i++)
		assert_true(sums[i] != sums[i - 1]);
}

static void test_swapped_words_differ(void **state)
{
	unsigned char buf[512];
	uint64_t whole;

	(void)state;
	memcpy(buf, pattern, sizeof(buf));
	whole = block_sum(buf, sizeof(buf));
	for (size_t a = 0; a < sizeof(buf) / 8; a += 3) {
		for (size_t b = a + 1; b < sizeof(buf) / 8; b += 5) {
			unsigned char t[8];

			memcpy(t, buf + 8 * a, 8);
			memcpy(buf + 8 * a, buf + 8 * b, 8);
			memcpy(buf + 8 * b, t, 8);
			assert_true(block_sum(buf, sizeof(buf)) != whole);
			memcpy(buf + 8 * b, buf + 8 * a, 8);
			memcpy(buf + 8 * a, t, 8);
		}
	}
	assert_true(block_sum(buf, sizeof(buf)) == whole);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frozen_values),
		cmocka_unit_test(test_every_bit_flip_differs),
		cmocka_unit_test(test_paired_flips_in_one_lane_differ),
		cmocka_unit_test(test_lengths_differ),
		cmocka_unit_test(test_swapped_words_differ),
	};

	return cmocka_run_group_tests_name("block_sum", tests, setup, NULL);
}

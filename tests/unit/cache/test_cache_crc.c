/* Unit tests for cache_crc32: the standard CRC-32 (the check values of the
 * CRC catalogue and of zlib), so block and listing files written before it
 * came from zlib keep their sums; any split of the data sums the same. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "cache/cache_disk.h"

static const struct {
	const char *data;
	size_t len;
	uint32_t seed;
	uint32_t crc;
} cases[] = {
	{ "", 0, 0, 0x00000000u },
	{ "", 0, 0xdeadbeefu, 0xdeadbeefu }, /* nothing added: the seed */
	{ "a", 1, 0, 0xe8b7be43u },
	{ "123456789", 9, 0, 0xcbf43926u }, /* the catalogue's check value */
	{ "The quick brown fox jumps over the lazy dog", 43, 0, 0x414fa339u },
	{ "\0\0\0\0", 4, 0, 0x2144df1cu }, /* zeros are not free */
	{ "\xff\xff\xff\xff", 4, 0, 0xffffffffu },
	{ "56789", 5, 0x9be3e0a3u, 0xcbf43926u }, /* "1234" summed, then the rest */
};

static void test_known_values(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (cache_crc32(cases[i].seed, cases[i].data, cases[i].len) != cases[i].crc)
			fail_msg("case %zu: %08x, expected %08x", i,
				 cache_crc32(cases[i].seed, cases[i].data, cases[i].len), cases[i].crc);
}

static void test_any_split(void **state)
{
	unsigned char buf[1000];
	uint32_t whole;

	(void)state;
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (unsigned char)(i * 131 + 7);
	whole = cache_crc32(0, buf, sizeof(buf));
	for (size_t cut = 0; cut <= sizeof(buf); cut += 37)
		assert_int_equal(cache_crc32(cache_crc32(0, buf, cut), buf + cut, sizeof(buf) - cut), whole);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_values),
		cmocka_unit_test(test_any_split),
	};

	return cmocka_run_group_tests_name("cache_crc", tests, NULL, NULL);
}

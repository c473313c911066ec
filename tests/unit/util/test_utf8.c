/* Unit tests for util/utf8.c: the decoder's boundaries and refusals, the
 * encoder over every code point, validation and the format characters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "util/utf8.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static const struct {
	const char *bytes;
	size_t n;   /* bytes the decoder may read */
	size_t len; /* what it should take; 0: refused */
	uint32_t cp;
} decodes[] = {
	{ "A", 1, 1, 'A' },
	{ "\x7f", 1, 1, 0x7f },
	{ "", 1, 1, 0 }, /* NUL is a character */
	{ "\xc2\x80", 2, 2, 0x80 },
	{ "\xdf\xbf", 2, 2, 0x7ff },
	{ "\xe0\xa0\x80", 3, 3, 0x800 },
	{ "\xef\xbf\xbf", 3, 3, 0xffff },
	{ "\xf0\x90\x80\x80", 4, 4, 0x10000 },
	{ "\xf4\x8f\xbf\xbf", 4, 4, 0x10ffff },
	{ "\xc3\xa9xyz", 5, 2, 0xe9 }, /* stops after one character */
	/* overlong forms */
	{ "\xc0\x80", 2, 0, 0 },
	{ "\xc1\xbf", 2, 0, 0 },
	{ "\xe0\x9f\xbf", 3, 0, 0 },
	{ "\xf0\x8f\xbf\xbf", 4, 0, 0 },
	/* surrogates, past U+10FFFF, lead bytes that never occur */
	{ "\xed\xa0\x80", 3, 0, 0 },
	{ "\xed\xbf\xbf", 3, 0, 0 },
	{ "\xf4\x90\x80\x80", 4, 0, 0 },
	{ "\xf5\x80\x80\x80", 4, 0, 0 },
	{ "\xf8\x88\x80\x80\x80", 5, 0, 0 },
	{ "\xff", 1, 0, 0 },
	/* stray, missing or cut continuation bytes */
	{ "\x80", 1, 0, 0 },
	{ "\xbf", 1, 0, 0 },
	{ "\xc3", 1, 0, 0 },
	{ "\xc3\xa9", 1, 0, 0 }, /* n cuts it */
	{ "\xe2\x82", 2, 0, 0 },
	{ "\xe2\x82\x41", 3, 0, 0 },
	{ "\xc3\x00", 2, 0, 0 }, /* a NUL ends it */
	{ "x", 0, 0, 0 },
};

static void test_decode(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(decodes); i++) {
		uint32_t cp = 0xdead;
		size_t len = utf8_decode((const unsigned char *)decodes[i].bytes, decodes[i].n, &cp);

		if (len != decodes[i].len)
			fail_msg("case %zu: length %zu, want %zu", i, len, decodes[i].len);
		if (len)
			assert_int_equal(cp, decodes[i].cp);
		else
			assert_int_equal(cp, 0xdead); /* untouched */
	}
}

/* Every scalar value encodes to a sequence that decodes back to it, with
 * the shortest length. */
static void test_encode_round_trip(void **state)
{
	(void)state;
	for (uint32_t cp = 0; cp <= 0x10ffff; cp++) {
		char enc[UTF8_MAX_BYTES];
		size_t len, want = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
		uint32_t back;

		if (cp >= 0xd800 && cp <= 0xdfff)
			continue;
		len = utf8_encode(cp, enc);
		assert_int_equal(len, want);
		assert_int_equal(utf8_decode((const unsigned char *)enc, len, &back), len);
		assert_int_equal(back, cp);
		assert_true(utf8_valid(enc, len));
	}
}

static void test_valid(void **state)
{
	static const struct {
		const char *s;
		size_t n;
		bool ok;
	} cases[] = {
		{ "", 0, true },
		{ "plain", 5, true },
		{ "Entw\xc3\xbcrfe \xe6\x97\xa5 \xf0\x9f\x93\xac", 18, true },
		{ "a\0b", 3, true },
		{ "ab\xc3", 3, false },
		{ "\xe2\x80\xae", 3, true }, /* well-formed, if unwelcome */
		{ "\xed\xa0\x80", 3, false },
		{ "ok\xc0\xafok", 6, false },
		{ "\xf4\x90\x80\x80", 4, false },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(cases); i++)
		if (utf8_valid(cases[i].s, cases[i].n) != cases[i].ok)
			fail_msg("case %zu: \"%s\"", i, cases[i].s);
}

static void test_is_format(void **state)
{
	static const uint32_t format[] = { 0xad,   0x200b, 0x200c, 0x200d,  0x200e,
					   0x202e, 0x2066, 0xfeff, 0xe0001, 0xe007f };
	static const uint32_t other[] = { 'a',    ' ',    0x1f,   0x7f,   0x85,    0xa0,    0x200a,
					  0x2028, 0x2029, 0x2215, 0xfffd, 0xe0080, 0x10ffff };

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(format); i++)
		assert_true(utf8_is_format(format[i]));
	for (size_t i = 0; i < ARRAY_LEN(other); i++)
		assert_false(utf8_is_format(other[i]));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decode),
		cmocka_unit_test(test_encode_round_trip),
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_is_format),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

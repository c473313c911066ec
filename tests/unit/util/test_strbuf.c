/* Unit tests for util/strbuf.c: growth, the deferred allocation failure,
 * and text appended through iconv (complete, cut short, invalid). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/strbuf.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static void test_grow_and_take(void **state)
{
	struct strbuf b = { 0 };
	char *s;

	(void)state;
	for (int i = 0; i < 1000; i++)
		strbuf_adds(&b, "abc");
	strbuf_addc(&b, '!');
	strbuf_add(&b, "xyz", 0);
	assert_int_equal(b.len, 3001);
	s = strbuf_take(&b);
	assert_non_null(s);
	assert_int_equal(strlen(s), 3001);
	assert_memory_equal(s + 2997, "abc!", 5);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	free(s);
	/* an empty buffer gives "", not NULL */
	s = strbuf_take(&b);
	assert_string_equal(s, "");
	free(s);
}

/* A reservation that cannot be met poisons the buffer: later appends are
 * dropped and take reports the failure once. */
static void test_failure_is_remembered(void **state)
{
	struct strbuf b = { 0 };
	char untouched[] = "untouched", *out = untouched;

	(void)state;
	strbuf_adds(&b, "abc");
	assert_false(strbuf_reserve(&b, SIZE_MAX));
	assert_true(b.failed);
	strbuf_adds(&b, "more");
	assert_int_equal(b.len, 3);
	assert_null(strbuf_take(&b));
	assert_null(b.data);

	strbuf_adds(&b, "abc");
	assert_false(strbuf_reserve(&b, SIZE_MAX - 1));
	assert_int_equal(strbuf_finish(&b, 0, &out), -ENOMEM);
	assert_null(out);
}

static void test_finish(void **state)
{
	struct strbuf b = { 0 };
	char *out = NULL;

	(void)state;
	strbuf_adds(&b, "kept");
	assert_int_equal(strbuf_finish(&b, 0, &out), 0);
	assert_string_equal(out, "kept");
	free(out);
	out = NULL;
	strbuf_adds(&b, "dropped");
	assert_int_equal(strbuf_finish(&b, -EINVAL, &out), -EINVAL);
	assert_null(out);
	assert_null(b.data);
}

static void test_add_converted(void **state)
{
	static const struct {
		const char *from;
		const char *in;
		size_t len;
		int rc;
		const char *want; /* what was appended */
	} cases[] = {
		{ "ISO-8859-1", "caf\xe9", 4, 0, "caf\xc3\xa9" },
		{ "WINDOWS-1252", "\x80 5", 3, 0, "\xe2\x82\xac 5" },
		{ "UTF-8", "", 0, 0, "" },
		{ "UTF-16BE", "\x00h\x00i", 4, 0, "hi" },
		{ "UTF-8", "ok\xc3", 3, -EINVAL, "ok" }, /* cut inside a character */
		{ "UTF-8", "ok\xff!", 4, -EILSEQ, "ok" },
		{ "NO-SUCH-CHARSET", "x", 1, -ENOTSUP, "" },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct strbuf b = { 0 };
		char in[8];
		int rc;

		memcpy(in, cases[i].in, cases[i].len);
		rc = strbuf_add_converted(&b, "UTF-8", cases[i].from, in, cases[i].len);
		if (rc != cases[i].rc)
			fail_msg("case %zu: rc %d, want %d", i, rc, cases[i].rc);
		assert_int_equal(b.len, strlen(cases[i].want));
		if (b.len)
			assert_memory_equal(b.data, cases[i].want, b.len);
		strbuf_free(&b);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_grow_and_take),
		cmocka_unit_test(test_failure_is_remembered),
		cmocka_unit_test(test_finish),
		cmocka_unit_test(test_add_converted),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

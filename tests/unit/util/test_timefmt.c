/* Unit tests for util/timefmt.c: UTC calendar arithmetic (1970, leap
 * years, 2038 and beyond, the ends of int64_t), the ISO 8601 text and its
 * parser, checked against a table and against gmtime_r. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "util/timefmt.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static const struct {
	int64_t t;
	const char *iso;
} times[] = {
	{ 0, "1970-01-01T00:00:00Z" },
	{ -1, "1969-12-31T23:59:59Z" },
	{ 86399, "1970-01-01T23:59:59Z" },
	{ 951782400, "2000-02-29T00:00:00Z" },   /* 2000: leap (400) */
	{ -2203891200, "1900-03-01T00:00:00Z" }, /* 1900: not (100) */
	{ 4107542399, "2100-02-28T23:59:59Z" },
	{ 4107542400, "2100-03-01T00:00:00Z" },
	{ -11670955200, "1600-02-29T12:00:00Z" },
	{ 2147483647, "2038-01-19T03:14:07Z" }, /* INT32_MAX */
	{ 2147483648, "2038-01-19T03:14:08Z" },
	{ 9223372036, "2262-04-11T23:47:16Z" },
	{ -62135596800, "0001-01-01T00:00:00Z" },
	{ TIMEFMT_YEAR0_START, "0000-01-01T00:00:00Z" },
	{ TIMEFMT_YEAR9999_END, "9999-12-31T23:59:59Z" },
};

static void test_iso_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(times); i++) {
		char text[TIMEFMT_ISO_SIZE];
		int64_t back = 42;
		const char *end;

		assert_string_equal(timefmt_iso(times[i].t, text), times[i].iso);
		end = timefmt_parse_iso(times[i].iso, &back);
		assert_non_null(end);
		assert_int_equal(*end, '\0');
		assert_int_equal(back, times[i].t);
	}
}

/* Every four-digit year, in steps that land on all times of day, agrees
 * with the C library and reads back to the same time. */
static void test_against_gmtime(void **state)
{
	const int64_t step = 86400 * 97 + 3671;

	(void)state;
	for (int64_t t = TIMEFMT_YEAR0_START; t <= TIMEFMT_YEAR9999_END; t += step) {
		char want[64], got[TIMEFMT_ISO_SIZE];
		time_t tt = (time_t)t;
		struct tm tm;
		int64_t back;

		assert_non_null(gmtime_r(&tt, &tm));
		snprintf(want, sizeof(want), "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
		assert_string_equal(timefmt_iso(t, got), want);
		assert_non_null(timefmt_parse_iso(got, &back));
		assert_int_equal(back, t);
	}
}

/* Past four-digit years the text goes on (and is not read back); the ends
 * of int64_t neither overflow nor overrun the buffer. */
static void test_beyond_four_digits(void **state)
{
	static const struct {
		int64_t t;
		const char *iso;
	} cases[] = {
		{ TIMEFMT_YEAR9999_END + 1, "10000-01-01T00:00:00Z" },
		{ TIMEFMT_YEAR0_START - 1, "-001-12-31T23:59:59Z" },
	};
	static const int64_t ends[] = { INT64_MIN, INT64_MIN + 1, INT64_MAX, INT64_MAX - 86400 };
	char text[TIMEFMT_ISO_SIZE];
	int64_t t;

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		assert_string_equal(timefmt_iso(cases[i].t, text), cases[i].iso);
		assert_null(timefmt_parse_iso(text, &t));
	}
	for (size_t i = 0; i < ARRAY_LEN(ends); i++) {
		timefmt_iso(ends[i], text);
		assert_true(strlen(text) < TIMEFMT_ISO_SIZE);
		assert_int_equal(text[strlen(text) - 1], 'Z');
		assert_null(timefmt_parse_iso(text, &t));
	}
}

static void test_parse_stops_after_z(void **state)
{
	const char *text = "2025-06-01T10:00:00Z\tflags";
	int64_t t;

	(void)state;
	assert_ptr_equal(timefmt_parse_iso(text, &t), text + 20);
	assert_int_equal(t, 1748772000);
}

static void test_parse_invalid(void **state)
{
	static const char *const bad[] = {
		"",
		"2024",
		"2024-01-01",
		"2024-01-01T00:00:00",
		"2024-01-01T00:00:0Z",
		"2024-01-01 00:00:00Z",
		"2024-01-01t00:00:00Z",
		"2024-01-01T00:00:00z",
		"2024-01-01T00:00:00+00:00",
		"2024-1-01T00:00:00Z",
		"+024-01-01T00:00:00Z",
		" 2024-01-01T00:00:00Z",
		"-001-01-01T00:00:00Z",
		"10000-01-01T00:00:00Z",
		"2024-00-10T00:00:00Z",
		"2024-13-01T00:00:00Z",
		"2024-01-00T00:00:00Z",
		"2024-01-32T00:00:00Z",
		"2024-04-31T00:00:00Z",
		"2023-02-29T00:00:00Z",
		"1900-02-29T00:00:00Z",
		"2100-02-29T00:00:00Z",
		"2024-01-01T24:00:00Z",
		"2024-01-01T23:60:00Z",
		"2024-01-01T23:59:60Z",
		"2024-01-01T0a:00:00Z",
		"2024-01-01T00:00:00\0Z",
	};
	int64_t t = 7;

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(bad); i++)
		if (timefmt_parse_iso(bad[i], &t) != NULL)
			fail_msg("accepted \"%s\"", bad[i]);
	assert_int_equal(t, 7);
	/* the leap days that do exist */
	assert_non_null(timefmt_parse_iso("2024-02-29T00:00:00Z", &t));
	assert_non_null(timefmt_parse_iso("2000-02-29T23:59:59Z", &t));
	assert_non_null(timefmt_parse_iso("0000-02-29T00:00:00Z", &t));
}

static void test_date(void **state)
{
	char text[16];

	(void)state;
	assert_int_equal(timefmt_date(0, text, sizeof(text)), 10);
	assert_string_equal(text, "1970-01-01");
	assert_int_equal(timefmt_date(-86401, text, sizeof(text)), 10);
	assert_string_equal(text, "1969-12-30");
	assert_int_equal(timefmt_date(951868799, text, sizeof(text)), 10);
	assert_string_equal(text, "2000-02-29");
	/* like snprintf: the length it needed, what fits written */
	assert_int_equal(timefmt_date(0, text, 5), 10);
	assert_string_equal(text, "1970");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_iso_table),          cmocka_unit_test(test_against_gmtime),
		cmocka_unit_test(test_beyond_four_digits), cmocka_unit_test(test_parse_stops_after_z),
		cmocka_unit_test(test_parse_invalid),      cmocka_unit_test(test_date),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

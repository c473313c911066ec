/* Unit tests for src/imap/flags.c: what a setxattr of user.imap.flags may
 * send to the server (the parser is the guard), and the text getxattr shows. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "imap/flags.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define ALL_SYSTEM \
	(IMAP_FLAG_SEEN | IMAP_FLAG_ANSWERED | IMAP_FLAG_FLAGGED | IMAP_FLAG_DELETED | IMAP_FLAG_DRAFT)

struct parse_case {
	const char *text;
	unsigned system;
	const char *keywords[4]; /* NULL-terminated */
	const char *formatted;   /* flags_format of the result */
};

static const struct parse_case valid[] = {
	{ "", 0, { NULL }, "" },
	{ " \t\r\n ", 0, { NULL }, "" },
	{ "\\Seen", IMAP_FLAG_SEEN, { NULL }, "\\Seen" },
	/* case-insensitive, written back in the canonical case and order */
	{ "\\seen \\FLAGGED", IMAP_FLAG_SEEN | IMAP_FLAG_FLAGGED, { NULL }, "\\Seen \\Flagged" },
	{ "\\Draft \\Deleted \\Flagged \\Answered \\Seen",
	  ALL_SYSTEM,
	  { NULL },
	  "\\Seen \\Answered \\Flagged \\Deleted \\Draft" },
	{ "\\Seen \\seen \\SEEN", IMAP_FLAG_SEEN, { NULL }, "\\Seen" },
	/* \Recent belongs to the server: ignored, not refused */
	{ "\\Recent", 0, { NULL }, "" },
	{ "\\recent \\Answered", IMAP_FLAG_ANSWERED, { NULL }, "\\Answered" },
	/* any blank separates, at either end too */
	{ "\t\\Seen\r\n$Label  ", IMAP_FLAG_SEEN, { "$Label", NULL }, "\\Seen $Label" },
	/* keywords keep their order and spelling, after the system flags */
	{ "$Forwarded Junk \\Seen NonJunk",
	  IMAP_FLAG_SEEN,
	  { "$Forwarded", "Junk", "NonJunk", NULL },
	  "\\Seen $Forwarded Junk NonJunk" },
	{ "$Label $label $LABEL", 0, { "$Label", NULL }, "$Label" },
	/* atom characters that are not special */
	{ "a.b-c_d!e#f&g'h+i/j:k;l<m=n>o?p@q[r^s`t|u~v",
	  0,
	  { "a.b-c_d!e#f&g'h+i/j:k;l<m=n>o?p@q[r^s`t|u~v", NULL },
	  "a.b-c_d!e#f&g'h+i/j:k;l<m=n>o?p@q[r^s`t|u~v" },
};

/* Each would put something other than flags on the wire, or a flag the
 * server does not have. */
static const char *const invalid[] = {
	"\\Unknown",   "\\",          "\\\\Seen",    "\\Seen \\Important",
	"(\\Seen)",    "\\Seen)",     "a(b",         "{5}",
	"{5+}",        "100%",        "star*",       "\"quoted\"",
	"back\\slash", "bracket]",    "caf\xc3\xa9", "bell\x07",
	"del\x7f",     "\\Seen \x01",
};

static void check_keywords(const struct flag_set *fs, const char *const *want)
{
	size_t n = 0;

	while (want[n])
		n++;
	assert_int_equal(fs->nkeywords, n);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(fs->keywords[i], want[i]);
}

static void test_parse_and_format(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(valid); i++) {
		const struct parse_case *c = &valid[i];
		struct flag_set fs;
		char *text;

		print_message("valid[%zu]\n", i);
		assert_int_equal(flags_parse(c->text, strlen(c->text), &fs), 0);
		assert_int_equal(fs.system, c->system);
		check_keywords(&fs, c->keywords);
		text = flags_format(&fs);
		assert_non_null(text);
		assert_string_equal(text, c->formatted);
		free(text);
		flags_free(&fs);
		assert_int_equal(fs.nkeywords, 0);
		assert_null(fs.keywords);
	}
}

/* What flags_format writes, flags_parse reads back unchanged. */
static void test_round_trip(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(valid); i++) {
		struct flag_set fs, again;
		char *text, *text2;

		assert_int_equal(flags_parse(valid[i].text, strlen(valid[i].text), &fs), 0);
		text = flags_format(&fs);
		assert_non_null(text);
		assert_int_equal(flags_parse(text, strlen(text), &again), 0);
		text2 = flags_format(&again);
		assert_non_null(text2);
		assert_string_equal(text, text2);
		assert_int_equal(again.system, fs.system);
		free(text);
		free(text2);
		flags_free(&fs);
		flags_free(&again);
	}
}

static void test_parse_invalid(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(invalid); i++) {
		struct flag_set fs;

		print_message("invalid[%zu]\n", i);
		assert_int_equal(flags_parse(invalid[i], strlen(invalid[i]), &fs), -EINVAL);
		/* nothing half-parsed is left to send or to free */
		assert_int_equal(fs.system, 0);
		assert_int_equal(fs.nkeywords, 0);
		assert_null(fs.keywords);
	}
}

/* The value of an xattr is bytes, not a C string: a NUL inside is refused,
 * and nothing past len is read. */
static void test_parse_uses_len(void **state)
{
	static const char with_nul[] = "\\Seen\0\\Flagged";
	static const char longer[] = "\\Seen \\Unknown";
	struct flag_set fs;

	(void)state;
	assert_int_equal(flags_parse(with_nul, sizeof(with_nul) - 1, &fs), -EINVAL);
	assert_int_equal(fs.nkeywords, 0);
	assert_int_equal(flags_parse(longer, 5, &fs), 0);
	assert_int_equal(fs.system, IMAP_FLAG_SEEN);
	flags_free(&fs);
}

/* A keyword may have up to 200 bytes. */
static void test_keyword_length(void **state)
{
	char kw[202];
	struct flag_set fs;

	(void)state;
	memset(kw, 'k', sizeof(kw) - 1);
	kw[200] = '\0';
	assert_int_equal(flags_parse(kw, 200, &fs), 0);
	assert_int_equal(fs.nkeywords, 1);
	assert_int_equal(strlen(fs.keywords[0]), 200);
	flags_free(&fs);
	kw[200] = 'k';
	kw[201] = '\0';
	assert_int_equal(flags_parse(kw, 201, &fs), -EINVAL);
	assert_int_equal(fs.nkeywords, 0);
}

static void test_add_keyword(void **state)
{
	static const char *const bad[] = { "", "two words", "(", "\\Seen", "x\ty", "\xff" };
	struct flag_set fs = { 0 };
	char kw[] = "$Work";

	(void)state;
	assert_int_equal(flags_add_keyword(&fs, kw), 0);
	kw[1] = 'X'; /* the set holds a copy */
	assert_string_equal(fs.keywords[0], "$Work");
	assert_int_equal(flags_add_keyword(&fs, "$WORK"), 0);
	assert_int_equal(fs.nkeywords, 1);
	assert_int_equal(flags_add_keyword(&fs, "Junk"), 0);
	assert_int_equal(fs.nkeywords, 2);
	for (size_t i = 0; i < ARRAY_LEN(bad); i++)
		assert_int_equal(flags_add_keyword(&fs, bad[i]), -EINVAL);
	assert_int_equal(fs.nkeywords, 2);
	flags_free(&fs);
}

static void test_format(void **state)
{
	char *kws[] = { "$A", "b" };
	const struct {
		struct flag_set fs;
		const char *want;
	} cases[] = {
		{ { 0, 0, NULL }, "" },
		{ { IMAP_FLAG_DRAFT, 0, NULL }, "\\Draft" },
		{ { 0, 2, kws }, "$A b" },
		{ { IMAP_FLAG_SEEN | IMAP_FLAG_ANSWERED, 2, kws }, "\\Seen \\Answered $A b" },
		{ { ALL_SYSTEM, 1, kws }, "\\Seen \\Answered \\Flagged \\Deleted \\Draft $A" },
		/* bits that name no flag are not shown */
		{ { 1u << 7 | IMAP_FLAG_FLAGGED, 0, NULL }, "\\Flagged" },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		char *text = flags_format(&cases[i].fs);

		assert_non_null(text);
		assert_string_equal(text, cases[i].want);
		free(text);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_and_format), cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_parse_invalid),    cmocka_unit_test(test_parse_uses_len),
		cmocka_unit_test(test_keyword_length),   cmocka_unit_test(test_add_keyword),
		cmocka_unit_test(test_format),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

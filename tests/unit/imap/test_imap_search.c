/* Unit tests for the pure half of src/imap/imap_search.c: a query as the
 * user wrote it turned into a UID SEARCH command line, its non-ASCII
 * words and quoted strings as literals (LITERAL+ or synchronizing, with
 * the places to wait for the server), and the queries refused before
 * anything is sent. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "imap/imap_p.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

struct command_case {
	const char *query;
	bool charset, literal_plus;
	const char *want; /* the command line */
	size_t waits[3];  /* with !literal_plus: where the "+" is awaited */
	size_t nwaits;
	bool ascii;
};

#define UTF "UID SEARCH CHARSET UTF-8 "

static const struct command_case commands[] = {
	{ "FROM \"alice\" SINCE 1-Nov-2026",
	  true,
	  true,
	  UTF "FROM \"alice\" SINCE 1-Nov-2026",
	  { 0 },
	  0,
	  true },
	{ "OR SUBJECT invoice BODY Rechnung",
	  false,
	  true,
	  "UID SEARCH OR SUBJECT invoice BODY Rechnung",
	  { 0 },
	  0,
	  true },
	{ "(UNSEEN NOT FROM bob)", true, true, UTF "(UNSEEN NOT FROM bob)", { 0 }, 0, true },
	/* a quoted string with UTF-8 becomes a literal of its content */
	{ "SUBJECT \"Grüße\"", true, true, UTF "SUBJECT {7+}\r\nGrüße", { 0 }, 0, false },
	/* so does a bare atom; what follows it goes on after the bytes */
	{ "SUBJECT Grüße SINCE 1-Nov-2026",
	  true,
	  true,
	  UTF "SUBJECT {7+}\r\nGrüße SINCE 1-Nov-2026",
	  { 0 },
	  0,
	  false },
	/* escapes are undone inside the literal, kept in an ASCII quoted string */
	{ "BODY \"a \\\"ü\\\\\"", true, true, UTF "BODY {6+}\r\na \"ü\\", { 0 }, 0, false },
	{ "BODY \"a \\\"b\"", true, true, UTF "BODY \"a \\\"b\"", { 0 }, 0, true },
	/* without LITERAL+: synchronizing literals, a wait after each {n}CRLF */
	{ "OR SUBJECT Grüße (BODY \"日本\")",
	  true,
	  false,
	  UTF "OR SUBJECT {7}\r\nGrüße (BODY {6}\r\n日本)",
	  { 41, 60 },
	  2,
	  false },
	{ "\"\"", true, false, UTF "\"\"", { 0 }, 0, true },
};

static void test_commands(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(commands); i++) {
		const struct command_case *c = &commands[i];
		struct imap_search_cmd cmd;
		char err[128] = "";
		int r = imap_search_command(c->query, c->charset, c->literal_plus, &cmd, err, sizeof(err));

		if (r != 0)
			fail_msg("%s: %d (%s)", c->query, r, err);
		assert_string_equal(cmd.text, c->want);
		assert_int_equal(cmd.len, strlen(c->want));
		assert_int_equal(cmd.nwaits, c->nwaits);
		for (size_t w = 0; w < c->nwaits; w++)
			assert_int_equal(cmd.waits[w], c->waits[w]);
		/* each wait comes right after a literal's announcement */
		for (size_t w = 0; w < cmd.nwaits; w++)
			assert_memory_equal(cmd.text + cmd.waits[w] - 3, "}\r\n", 3);
		assert_int_equal(cmd.ascii, c->ascii);
		imap_search_cmd_free(&cmd);
	}
}

static void test_refused(void **state)
{
	char longq[IMAP_SEARCH_QUERY_MAX + 2];
	const char *const bad[] = {
		"",
		"   ",
		"SUBJECT \"open",
		"SUBJECT \"x\\",
		"SUBJECT \"\\x\"",
		"SUBJECT {5}",
		"SUBJECT ~{5}",
		"FROM a\r\nA2 LOGOUT",
		"FROM a\nb",
		"FROM \tx",
		"SUBJECT \xff\xfe",
		"SUBJECT \"Gr\xc3\"",
		longq,
	};

	(void)state;
	memset(longq, 'A', sizeof(longq) - 1);
	longq[sizeof(longq) - 1] = '\0';
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		struct imap_search_cmd cmd;
		char err[128] = "";

		if (imap_search_command(bad[i], true, true, &cmd, err, sizeof(err)) != -EINVAL)
			fail_msg("accepted: %.40s", bad[i]);
		assert_true(err[0] != '\0');
		assert_null(cmd.text);
	}
}

/* 1024 bytes exactly is still a query */
static void test_longest(void **state)
{
	char q[IMAP_SEARCH_QUERY_MAX + 1];
	struct imap_search_cmd cmd;
	char err[128];

	(void)state;
	memset(q, 'A', sizeof(q) - 1);
	q[sizeof(q) - 1] = '\0';
	assert_int_equal(imap_search_command(q, false, true, &cmd, err, sizeof(err)), 0);
	assert_int_equal(cmd.len, strlen("UID SEARCH ") + IMAP_SEARCH_QUERY_MAX);
	imap_search_cmd_free(&cmd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_commands),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_longest),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

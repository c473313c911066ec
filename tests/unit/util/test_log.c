/* Unit tests for src/log.c: what may reach a terminal or a log line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "util/log.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

struct sanitize_case {
	const char *in;
	const char *want;
};

static const struct sanitize_case cases[] = {
	{ "", "" },
	{ "plain text, 100% fine", "plain text, 100% fine" },
	{ "Entw\xc3\xbcrfe \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x93\xac",
	  "Entw\xc3\xbcrfe \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x93\xac" },
	/* C0 controls and DEL */
	{ "a\x1b[2Jb", "a?[2Jb" },
	{ "line\r\nforged: line", "line??forged: line" },
	{ "tab\there\x7f", "tab?here?" },
	{ "\x07\x08\x01", "???" },
	/* raw C1 bytes (CSI, OSC, ST in an 8-bit terminal) */
	{ "x\x9b"
	  "31mred",
	  "x?31mred" },
	{ "\x9d"
	  "0;title\x9c",
	  "?0;title?" },
	{ "\x80\x85\x9f", "???" },
	/* U+0080..U+009F encoded in UTF-8 */
	{ "x\xc2\x9b"
	  "31m",
	  "x?31m" },
	{ "\xc2\x80\xc2\x9f\xc2\xa0", "??\xc2\xa0" },
	/* bidi embeddings, overrides, isolates, marks; line/paragraph separators */
	{ "evil\xe2\x80\xae"
	  "fdp.exe",
	  "evil?fdp.exe" },
	{ "\xe2\x80\xaa\xe2\x80\xab\xe2\x80\xac\xe2\x80\xad", "????" },
	{ "\xe2\x81\xa6"
	  "a\xe2\x81\xa7"
	  "b\xe2\x81\xa8"
	  "c\xe2\x81\xa9",
	  "?a?b?c?" },
	{ "\xe2\x80\x8e\xe2\x80\x8f\xd8\x9c", "???" },
	{ "one\xe2\x80\xa8two\xe2\x80\xa9", "one?two?" },
	/* neighbours that are harmless stay */
	{ "\xe2\x80\x94 \xe2\x80\xa7 \xe2\x81\xa0", "\xe2\x80\x94 \xe2\x80\xa7 \xe2\x81\xa0" },
	/* not UTF-8: stray continuation bytes, overlong forms, surrogates,
	 * truncated sequences, bytes that never occur */
	{ "\xa0\xbf", "??" },
	{ "\xc0\x9b\xc1\xbf", "????" },
	{ "\xe0\x80\x9b", "???" },
	{ "\xed\xa0\x80", "???" },
	{ "\xf4\x90\x80\x80", "????" },
	{ "end\xe2\x80", "end??" },
	{ "\xc3", "?" },
	{ "\xfe\xff", "??" },
	/* a lead byte whose continuation is a control */
	{ "\xc2\x1b[0m", "??[0m" },
};

static void test_sanitize_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		char buf[128];
		size_t n;

		snprintf(buf, sizeof(buf), "%s", cases[i].in);
		n = log_sanitize(buf);
		if (strcmp(buf, cases[i].want) != 0)
			fail_msg("case %zu: got \"%s\", want \"%s\"", i, buf, cases[i].want);
		assert_int_equal(n, strlen(cases[i].want));
	}
}

/* Whatever the input, the output holds no byte below 0x20, no DEL, no C1 in
 * either form and no bidi control. */
static void test_sanitize_random(void **state)
{
	static const unsigned char bad2[] = { 0xc2 };
	unsigned seed = 12345;

	(void)state;
	for (int round = 0; round < 20000; round++) {
		unsigned char buf[40];
		size_t len = 1 + (size_t)(round % 38);

		for (size_t i = 0; i < len; i++) {
			seed = seed * 1103515245u + 12345u;
			buf[i] = (unsigned char)(seed >> 16);
			if (buf[i] == 0)
				buf[i] = 0xc2;
		}
		buf[len] = 0;
		log_sanitize((char *)buf);
		for (const unsigned char *p = buf; *p; p++) {
			assert_true(*p >= 0x20 && *p != 0x7f);
			if (p[0] == bad2[0])
				assert_false(p[1] >= 0x80 && p[1] <= 0x9f);
			if (p[0] == 0xe2 && p[1] == 0x80)
				assert_false(p[2] >= 0xa8 && p[2] <= 0xae);
			if (p[0] == 0xe2 && p[1] == 0x81)
				assert_false(p[2] >= 0xa6 && p[2] <= 0xa9);
		}
		/* and what comes out is well-formed: sanitizing again changes nothing */
		{
			char again[40];

			strcpy(again, (char *)buf);
			log_sanitize(again);
			assert_string_equal(again, (char *)buf);
		}
	}
}

/* log_msg writes the sanitized text: capture stderr. */
static void test_log_msg_sanitizes(void **state)
{
	char path[] = "/tmp/imapfs-test-log-XXXXXX";
	int fd = mkstemp(path), saved = dup(2);
	char out[512] = "";
	ssize_t n;

	(void)state;
	assert_true(fd >= 0 && saved >= 0);
	unlink(path);
	fflush(stderr);
	assert_int_equal(dup2(fd, 2), 2);
	log_init(false, false);
	log_warn("server said: %s", "\x1b]0;owned\x07 \xc2\x9b"
				    "2J \x9b"
				    "1m \xe2\x80\xae"
				    "txt");
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	n = pread(fd, out, sizeof(out) - 1, 0);
	close(fd);
	assert_true(n > 0);
	out[n] = '\0';
	assert_string_equal(out, "imapfs: warning: server said: ?]0;owned? ?2J ?1m ?txt\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sanitize_table),
		cmocka_unit_test(test_sanitize_random),
		cmocka_unit_test(test_log_msg_sanitizes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

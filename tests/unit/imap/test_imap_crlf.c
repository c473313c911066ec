/* Unit tests for imap_crlf_copy (imap_metadata.c): a SETMETADATA value goes
 * out as a LITERAL+ literal whose length is announced first, and libetpan
 * rewrites every bare LF and bare CR to CRLF while sending.  The copy must
 * already be what libetpan sends, or the server reads the tail of the
 * value as commands. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "imap/imap_p.h"

static const struct {
	const char *in, *out;
} cases[] = {
	{ "", "" },
	{ "plain", "plain" },
	{ "a\r\nb\r\n", "a\r\nb\r\n" },
	{ "a\nb\n", "a\r\nb\r\n" },
	{ "\n", "\r\n" },
	{ "a\rb", "a\r\nb" }, /* a bare CR */
	{ "a\r", "a\r\n" },   /* a bare CR at the end */
	{ "\r", "\r\n" },
	{ "\r\r\n", "\r\n\r\n" },
	{ "\n\r", "\r\n\r\n" },
	{ "\r\n\r", "\r\n\r\n" },
	{ "x\r)\r\nA1 DELETE INBOX", "x\r\n)\r\nA1 DELETE INBOX" },
};

static void test_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len = 99;
		char *out = imap_crlf_copy(cases[i].in, &len);

		assert_non_null(out);
		assert_string_equal(out, cases[i].out);
		assert_int_equal(len, strlen(cases[i].out));
		free(out);
	}
}

/* What libetpan itself would send for the copy is the copy, byte for byte:
 * the announced length is exact.  Every string over {a, CR, LF} up to 8
 * characters. */
static void test_libetpan_sends_it_unchanged(void **state)
{
	static const char alphabet[] = "a\r\n";
	char in[9];

	(void)state;
	for (unsigned n = 0; n <= 8; n++) {
		unsigned total = 1;

		for (unsigned k = 0; k < n; k++)
			total *= 3;
		for (unsigned code = 0; code < total; code++) {
			unsigned c = code;
			size_t len = 0;
			char *out;

			for (unsigned k = 0; k < n; k++, c /= 3)
				in[k] = alphabet[c % 3];
			in[n] = '\0';
			out = imap_crlf_copy(in, &len);
			assert_non_null(out);
			assert_int_equal(mailstream_get_data_crlf_size(out, len), len);
			free(out);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_libetpan_sends_it_unchanged),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Unit tests for the pure half of src/imap/imap_binary.c: which section
 * names it sends and accepts back (RFC 3516 section-part: nonzero 32-bit
 * numbers without leading zeros, joined by dots, and not too long). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "imap/imap_p.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static void test_sections(void **state)
{
	const char *const good[] = { "1", "2", "2.1", "10.3.7", "4294967295", "1.4294967295" };
	const char *const bad[] = {
		"",
		"0",
		"01",
		"1.",
		".1",
		"1..2",
		"1.0",
		"a",
		"1a",
		"HEADER",
		"1.MIME",
		"-1",
		" 1",
		"1 ",
		"1]",
		"4294967296",
		"99999999999999999999",
		"1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16.17.18.19.20.21.22.23.24.25.26.27"
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(good); i++)
		if (!imap_binary_section_valid(good[i]))
			fail_msg("refused: %s", good[i]);
	for (size_t i = 0; i < ARRAY_LEN(bad); i++)
		if (imap_binary_section_valid(bad[i]))
			fail_msg("accepted: %s", bad[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sections),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

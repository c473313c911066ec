/* Unit tests for imap_refusal_errno (src/imap/imap_write.c): a server's NO as
 * errno, from RFC 5530 response codes first, English text last. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "imap/imap_p.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

struct refusal_case {
	const char *code;
	const char *text;
	int want; /* negative errno */
};

static const struct refusal_case cases[] = {
	/* codes, with text in other languages */
	{ "ALREADYEXISTS", "Postfach existiert bereits", -EEXIST },
	{ "ALREADYEXISTS", "La bo\xc3\xaete existe d\xc3\xa9j\xc3\xa0", -EEXIST },
	{ "NONEXISTENT", "Kein solches Postfach", -ENOENT },
	{ "TRYCREATE", "Zielordner fehlt", -ENOENT },
	{ "EXPUNGEISSUED", "weg", -ENOENT },
	{ "NOPERM", "Zugriff verweigert", -EACCES },
	{ "AUTHORIZATIONFAILED", "nein", -EACCES },
	{ "OVERQUOTA",
	  "Kontingent \xc3\xbc"
	  "berschritten",
	  -ENOSPC },
	{ "LIMIT",
	  "Zu viele Postf\xc3\xa4"
	  "cher",
	  -ENOSPC },
	{ "TOOBIG", "zu gro\xc3\x9f", -EFBIG },
	{ "CANNOT", "Unzul\xc3\xa4ssiger Name", -EPERM },
	{ "INUSE", "besetzt", -EBUSY },
	{ "UNAVAILABLE", "sp\xc3\xa4ter", -EIO },
	/* codes are case-insensitive atoms */
	{ "alreadyexists", "x", -EEXIST },
	{ "OverQuota", "x", -ENOSPC },
	/* a code imapfs knows wins over words in the text */
	{ "NONEXISTENT", "Mailbox already exists?", -ENOENT },
	{ "ALREADYEXISTS", "quota", -EEXIST },
	{ "SERVERBUG", "quota database not found", -EIO },
	{ "UNAVAILABLE", "Permission denied by backend", -EIO },
	/* no code, or one imapfs does not know: English text, the last resort */
	{ NULL, "Mailbox already exists", -EEXIST },
	{ NULL, "Quota exceeded (mailbox for user is full)", -ENOSPC },
	{ NULL, "Mailbox does not exist", -ENOENT },
	{ NULL, "Mailbox doesn't exist: Foo", -ENOENT },
	{ NULL, "Folder not found", -ENOENT },
	{ NULL, "Permission denied", -EACCES },
	{ NULL, "Operation not allowed", -EACCES },
	{ "HASCHILDREN", "Mailbox has children", -EIO },
	{ "X-WHATEVER", "already exists", -EEXIST },
	/* nothing to go by */
	{ NULL, "Das hat nicht geklappt", -EIO },
	{ NULL, "", -EIO },
	{ NULL, NULL, -EIO },
	{ "", NULL, -EIO },
};

static void test_refusal_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		int got = imap_refusal_errno(cases[i].code, cases[i].text);

		if (got != cases[i].want)
			fail_msg("case %zu ([%s] %s): got %s, want %s", i,
				 cases[i].code ? cases[i].code : "-",
				 cases[i].text ? cases[i].text : "(null)", strerror(-got),
				 strerror(-cases[i].want));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_refusal_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

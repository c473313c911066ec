/* Unit tests for listing_diff.c: what a sync found between two listings of
 * a folder -- messages added, removed, flags changed (only the IMAP flags
 * count), in UID order; the mount's own moves (known UIDs) left out but for
 * flag changes; a re-created folder (new UIDVALIDITY) as every old message
 * removed and every new one added, or as one RELOADED when they are many;
 * empty listings on either side. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "model/listing_diff.h"

/* A listing written "V: UID[flags] ...": V its UIDVALIDITY, flags letters
 * s (\Seen), f (\Flagged), v (our MSG_SIZE_VERIFIED), c (our
 * MSG_SIZE_CORRECTED).  Each message is named "UID.eml", has size 100 + UID
 * and date 1000 + UID. */
static struct listing *build(const char *spec)
{
	struct listing_builder b;
	char *end, name[32];
	unsigned long v = strtoul(spec, &end, 10);

	assert_int_equal(*end, ':');
	assert_int_equal(listing_builder_init(&b, NAMES_UID, (uint32_t)v), 0);
	for (const char *p = end + 1; *p;) {
		uint32_t uid;
		uint8_t flags = 0;
		int len;

		if (*p == ' ') {
			p++;
			continue;
		}
		uid = (uint32_t)strtoul(p, &end, 10);
		for (p = end; *p && *p != ' '; p++)
			flags |= *p == 's'   ? 0x01
				 : *p == 'f' ? 0x04
				 : *p == 'v' ? MSG_SIZE_VERIFIED
				 : *p == 'c' ? MSG_SIZE_CORRECTED
					     : 0;
		len = snprintf(name, sizeof(name), "%u.eml", uid);
		assert_int_equal(listing_builder_push(&b, uid, 100 + uid, 1000 + uid, flags, name,
						      (size_t)len),
				 0);
	}
	listing_builder_finish(&b);
	return b.l;
}

static size_t parse_uids(const char *text, uint32_t *uids, size_t max)
{
	size_t n = 0;
	char *end;

	for (const char *p = text; *p && n < max; p = end) {
		uids[n++] = (uint32_t)strtoul(p, &end, 10);
		if (end == p)
			break;
	}
	return n;
}

static char kind_letter(enum mailbox_change_kind k)
{
	switch (k) {
	case MAILBOX_CHANGE_ADDED:
		return 'A';
	case MAILBOX_CHANGE_REMOVED:
		return 'R';
	case MAILBOX_CHANGE_FLAGS:
		return 'F';
	case MAILBOX_CHANGE_RELOADED:
		return 'L';
	default:
		return '?';
	}
}

/* The changes as "A5 R1 F2" (added 5, removed 1, flags of 2). */
static void format_changes(const struct mailbox_change *v, size_t n, char *out, size_t outlen)
{
	size_t used = 0;

	out[0] = '\0';
	for (size_t i = 0; i < n && used < outlen; i++)
		used += (size_t)snprintf(out + used, outlen - used, "%s%c%u", i ? " " : "",
					 kind_letter(v[i].kind), v[i].uid);
}

static void test_table(void **state)
{
	const struct {
		const char *what, *old, *now, *known, *want;
	} cases[] = {
		{ "nothing changed", "1: 1 2 3", "1: 1 2 3", "", "" },
		{ "one came", "1: 1", "1: 1 5", "", "A5" },
		{ "one went", "1: 1 5", "1: 5", "", "R1" },
		{ "seen set", "1: 1 2", "1: 1 2s", "", "F2" },
		{ "flagged cleared", "1: 1fs", "1: 1s", "", "F1" },
		{ "only our own bits changed", "1: 1", "1: 1vc", "", "" },
		{ "flags and moves, interleaved", "1: 2s 4 6 8", "1: 3 4f 6 9", "", "R2 A3 F4 R8 A9" },
		{ "the mount's own moves are known", "1: 1 2", "1: 2 7", "1 7", "" },
		{ "a known UID's flags still count", "1: 7", "1: 7s", "7", "F7" },
		{ "re-created: all went, all came, known or not", "1: 1 2", "2: 1 3", "1", "R1 R2 A1 A3" },
		{ "from empty", "1:", "1: 4 5", "", "A4 A5" },
		{ "to empty", "1: 4 5", "1:", "", "R4 R5" },
		{ "both empty, re-created", "1:", "2:", "", "" },
	};

	(void)state;
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct listing *old = build(cases[c].old), *now = build(cases[c].now);
		uint32_t known[16];
		size_t nknown = parse_uids(cases[c].known, known, 16);
		struct mailbox_change *v;
		char got[256];
		size_t n;

		print_message("%s\n", cases[c].what);
		assert_int_equal(listing_diff(old, now, 9, known, nknown, &v, &n), 0);
		format_changes(v, n, got, sizeof(got));
		assert_string_equal(got, cases[c].want);
		if (n == 0)
			assert_null(v);
		for (size_t i = 0; i < n; i++) {
			char name[32];

			snprintf(name, sizeof(name), "%u.eml", v[i].uid);
			assert_int_equal(v[i].folder, 9);
			assert_string_equal(v[i].name, name);
			assert_int_equal(v[i].size, 100 + v[i].uid);
			assert_int_equal(v[i].date, 1000 + v[i].uid);
		}
		free(v);
		mb_listing_put(old);
		mb_listing_put(now);
	}
}

/* A large re-created folder: one RELOADED, not a change per message; just
 * under the bound, message by message. */
static void test_reload_bound(void **state)
{
	const size_t sizes[][2] = {
		{ LISTING_DIFF_MAX_RELOAD / 2 + 1, LISTING_DIFF_MAX_RELOAD / 2 }, /* over */
		{ LISTING_DIFF_MAX_RELOAD / 2, LISTING_DIFF_MAX_RELOAD / 2 },     /* at */
	};

	(void)state;
	for (size_t c = 0; c < 2; c++) {
		struct listing *l[2];
		struct mailbox_change *v;
		size_t n;

		for (int side = 0; side < 2; side++) {
			struct listing_builder b;

			assert_int_equal(listing_builder_init(&b, NAMES_UID, 1 + (uint32_t)side), 0);
			for (uint32_t uid = 1; uid <= sizes[c][side]; uid++)
				assert_int_equal(listing_builder_push(&b, uid, 1, 1, 0, "x", 1), 0);
			listing_builder_finish(&b);
			l[side] = b.l;
		}
		assert_int_equal(listing_diff(l[0], l[1], 3, NULL, 0, &v, &n), 0);
		if (c == 0) {
			assert_int_equal(n, 1);
			assert_int_equal(v[0].kind, MAILBOX_CHANGE_RELOADED);
			assert_int_equal(v[0].folder, 3);
			assert_string_equal(v[0].name, "");
		} else {
			assert_int_equal(n, sizes[c][0] + sizes[c][1]);
			assert_int_equal(v[0].kind, MAILBOX_CHANGE_REMOVED);
			assert_int_equal(v[n - 1].kind, MAILBOX_CHANGE_ADDED);
		}
		free(v);
		mb_listing_put(l[0]);
		mb_listing_put(l[1]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_reload_bound),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

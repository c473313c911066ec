/* Unit tests for rfolders.c: the receive-folder cases of spec section 5
 * (tests 1-20, 16b on Setup A), class validation, case-insensitive
 * replacement, the row limit, no change after an error, row order, and
 * folder renames and removals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <cmocka.h>

#include "mapi/rfolders.h"

#define T0 1748772000 /* 2025-06-01T10:00:00Z */
#define T1 1748852000

struct checker {
	int calls;
};

/* The mailbox: INBOX, Samples, Archive (and below), Docs; Parent is
 * \Noselect; "/" is answered 0 as imapfs does. */
static int check(const char *folder, void *ctx)
{
	static const char *const known[] = { "INBOX", "Samples", "Archive", "Archive/2024", "Docs", "/" };
	struct checker *c = ctx;

	c->calls++;
	if (strcmp(folder, "Parent") == 0)
		return -EOPNOTSUPP;
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strcmp(folder, known[i]) == 0)
			return 0;
	return -ENOENT;
}

static int set(struct rfolders *t, const char *cls, const char *folder)
{
	struct checker c = { 0 };

	return rfolders_set(t, cls, folder, T1, check, &c);
}

/* Setup A: the defaults plus IPM.Note.Sample -> Samples. */
static struct rfolders *setup_a(void)
{
	struct rfolders *t = rfolders_new_default(T0);
	struct checker c = { 0 };

	assert_non_null(t);
	assert_int_equal(rfolders_set(t, "IPM.Note.Sample", "Samples", T0, check, &c), 0);
	return t;
}

/* Every row as text, to compare a table before and after. */
static char *snapshot(const struct rfolders *t)
{
	size_t cap = 64, len = 0;
	char *s = calloc(1, cap);

	for (size_t i = 0; i < rfolders_count(t); i++) {
		const struct rfolder_row *r = rfolders_row(t, i);
		size_t need = strlen(r->cls) + strlen(r->folder) + 40;

		if (len + need >= cap) {
			cap = (len + need) * 2;
			s = realloc(s, cap);
		}
		len += (size_t)sprintf(s + len, "%s|%s|%lld;", r->cls, r->folder, (long long)r->mtime);
	}
	return s;
}

static void assert_lookup(const struct rfolders *t, const char *cls, const char *folder,
			  const char *explicit_cls)
{
	const char *f = NULL, *e = NULL;

	assert_int_equal(rfolders_lookup(t, cls, &f, &e), 0);
	assert_string_equal(f, folder);
	assert_string_equal(e, explicit_cls);
}

static void test_lookup_spec(void **state)
{
	static const struct {
		const char *cls, *folder, *explicit_cls;
	} cases[] = {
		{ "IPM.Note.Sample.Simple", "Samples", "IPM.Note.Sample" }, /* 1 */
		{ "IPM.Note", "INBOX", "IPM" },                             /* 2 */
		{ "IPM.Timecard", "INBOX", "IPM" },                         /* 3 */
		{ "IPM.Card", "INBOX", "IPM" },
		{ "IPM.Note.Sample.Simple.Totally", "Samples", "IPM.Note.Sample" }, /* 4 */
		{ "ipm.NOTE.sample.x", "Samples", "IPM.Note.Sample" },              /* 5 */
		{ "IPM.Note.Samples", "INBOX", "IPM" },                             /* 6 */
		{ "", "INBOX", "" },                                                /* 7 */
		{ "MY.Class", "INBOX", "" },
		{ "IPM.MY.Class", "INBOX", "IPM" },               /* 8 */
		{ "IPC.Foo", "/", "IPC" },                        /* 9 */
		{ "Report.IPM.Note.NDR", "INBOX", "REPORT.IPM" }, /* 10 */
		{ "Report.IPC.Paper.Order", "INBOX", "" },        /* 11 */
		{ "IPM", "INBOX", "IPM" },
		{ "ipc", "/", "IPC" },
		{ "IPMX.Note", "INBOX", "" }, /* whole segments only */
		{ "IPM.Note.Sample", "Samples", "IPM.Note.Sample" },
		{ "IPC.Microsoft Exchange 4.0.Deferred Error", "/", "IPC" },
	};
	struct rfolders *t = setup_a();

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_lookup(t, cases[i].cls, cases[i].folder, cases[i].explicit_cls);
	rfolders_free(t);
}

static void test_lookup_invalid_and_empty(void **state)
{
	struct rfolders *t = rfolders_new_empty();
	const char *f = "untouched", *e = "untouched";

	(void)state;
	assert_int_equal(rfolders_lookup(t, ".My.Class", &f, &e), -EINVAL);
	assert_string_equal(f, "untouched");
	assert_int_equal(rfolders_lookup(t, "IPM\tNote", &f, &e), -EINVAL);
	/* no row at all, not even "": INBOX and "" (R852) */
	assert_lookup(t, "IPM.Note", "INBOX", "");
	assert_lookup(t, "", "INBOX", "");
	rfolders_free(t);
}

static void test_set_and_get_12(void **state)
{
	struct rfolders *t = setup_a();
	const struct rfolder_row *row;

	(void)state;
	assert_int_equal(set(t, "MY.Class", "Archive"), 0);
	assert_lookup(t, "MY.Class.SOMETHING", "Archive", "MY.Class");
	assert_lookup(t, "MY.Class", "Archive", "MY.Class");
	assert_lookup(t, "MY.Classic", "INBOX", "");
	row = rfolders_row(t, 4); /* "", IPC, IPM, IPM.Note.Sample, MY.Class */
	assert_string_equal(row->cls, "MY.Class");
	assert_int_equal(row->mtime, T1);
	rfolders_free(t);
}

static void test_delete_13_14(void **state)
{
	struct rfolders *t = setup_a();
	char *before;

	(void)state;
	assert_int_equal(set(t, "IPM.Note.Sample", NULL), 0); /* 13 */
	assert_lookup(t, "IPM.Note.Sample.Simple", "INBOX", "IPM");
	assert_int_equal(rfolders_count(t), 4);
	before = snapshot(t);
	assert_int_equal(set(t, "Not.There", NULL), 0); /* 14 */
	assert_int_equal(set(t, "IPM.Note.Sample", NULL), 0);
	{
		char *after = snapshot(t);

		assert_string_equal(before, after);
		free(after);
	}
	free(before);
	/* delete is case-insensitive too */
	assert_int_equal(set(t, "MY.Class", "Archive"), 0);
	assert_int_equal(set(t, "my.CLASS", NULL), 0);
	assert_lookup(t, "MY.Class", "INBOX", "");
	rfolders_free(t);
}

static void test_default_row_15(void **state)
{
	struct rfolders *t = setup_a();

	(void)state;
	assert_int_equal(set(t, "", "Archive"), 0);
	assert_lookup(t, "MY.Class", "Archive", "");
	assert_lookup(t, "Report.IPC.Paper.Order", "Archive", "");
	assert_lookup(t, "IPM.Note", "INBOX", "IPM");
	rfolders_free(t);
}

/* Every call fails with err and leaves the table as it was. */
static void assert_refused(struct rfolders *t, const char *cls, const char *folder, int err)
{
	char *before = snapshot(t), *after;
	struct checker c = { 0 };

	assert_int_equal(rfolders_set(t, cls, folder, T1 + 5, check, &c), err);
	after = snapshot(t);
	assert_string_equal(before, after);
	free(before);
	free(after);
}

static void test_fixed_rows_16(void **state)
{
	struct rfolders *t = setup_a();

	(void)state;
	assert_refused(t, "IPM", "Archive", -EACCES);
	assert_refused(t, "report.ipm", "Archive", -EACCES);
	assert_refused(t, "IPM", NULL, -EACCES);
	assert_refused(t, "REPORT.IPM", NULL, -EACCES);
	assert_refused(t, "Ipm", "/", -EACCES);
	assert_refused(t, "IPM", "NoSuchFolder", -EACCES);
	rfolders_free(t);
}

static void test_fixed_row_noop_16b(void **state)
{
	struct rfolders *t = setup_a();
	struct rfolders *empty = rfolders_new_empty();
	char *before = snapshot(t), *after;

	(void)state;
	assert_int_equal(set(t, "report.ipm", "INBOX"), 0);
	assert_int_equal(set(t, "IPM", "inbox"), 0); /* INBOX is case-insensitive */
	after = snapshot(t);
	assert_string_equal(before, after); /* spelling and mtime kept */
	free(before);
	free(after);
	/* no IPM row to keep as it is: any set is a change */
	assert_refused(empty, "IPM", "INBOX", -EACCES);
	rfolders_free(empty);
	rfolders_free(t);
}

static void test_default_row_delete_17(void **state)
{
	struct rfolders *t = setup_a();
	struct rfolders *empty = rfolders_new_empty();

	(void)state;
	assert_refused(t, "", NULL, -EPERM);
	assert_refused(empty, "", NULL, -EPERM);
	rfolders_free(empty);
	rfolders_free(t);
}

static void test_invalid_18(void **state)
{
	char c255[256], tab[] = "IPM.\tNote";
	const char *bad[] = { ".My.Class", "IPM..Note", "IPM.Note.", c255, "IPM.Not\xc3\xa9", tab };
	struct rfolders *t = setup_a();
	struct checker c = { 0 };

	(void)state;
	memset(c255, 'a', 255);
	c255[255] = '\0';
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_refused(t, bad[i], "Archive", -EINVAL);
		assert_refused(t, bad[i], NULL, -EINVAL);
	}
	assert_refused(t, "IPM.Note.X", "", -EINVAL); /* empty folder */
	assert_refused(t, "IPM", "", -EINVAL);
	assert_int_equal(rfolders_set(t, ".x", "Archive", T1, check, &c), -EINVAL);
	assert_int_equal(c.calls, 0); /* refused before asking the server */
	rfolders_free(t);
}

static void test_valid_19(void **state)
{
	char c254[255];
	struct rfolders *t = setup_a();
	const char *spaced = "IPM.Document.Microsoft Internet Mail Message";

	(void)state;
	memset(c254, 'b', 254);
	c254[254] = '\0';
	assert_int_equal(set(t, c254, "Archive"), 0);
	assert_lookup(t, c254, "Archive", c254);
	assert_int_equal(set(t, spaced, "Docs"), 0);
	assert_lookup(t, "IPM.Document.Microsoft Internet Mail Message.x", "Docs", spaced);
	assert_lookup(t, "IPM.Document", "INBOX", "IPM");
	rfolders_free(t);
}

static void test_folder_check_20(void **state)
{
	struct rfolders *t = setup_a();
	struct checker c = { 0 };

	(void)state;
	assert_refused(t, "X", "NoSuchFolder", -ENOENT);
	assert_refused(t, "IPM.Note.Sample", "NoSuchFolder", -ENOENT);
	assert_refused(t, "X", "Parent", -EOPNOTSUPP);
	assert_int_equal(set(t, "X", "/"), 0); /* the root is the caller's call */
	assert_lookup(t, "X.Y", "/", "X");
	/* deleting does not ask */
	assert_int_equal(rfolders_set(t, "X", NULL, T1, check, &c), 0);
	assert_int_equal(c.calls, 0);
	/* no check function: no check */
	assert_int_equal(rfolders_set(t, "Y", "Anything", T1, NULL, NULL), 0);
	assert_lookup(t, "Y", "Anything", "Y");
	rfolders_free(t);
}

static void test_class_valid(void **state)
{
	static const struct {
		const char *cls;
		bool valid;
	} cases[] = {
		{ "", true },         { "IPM", true },
		{ "IPM.Note", true }, { "a b", true },
		{ " ", true },        { "IPC.Microsoft Exchange 4.0.Deferred Error", true },
		{ "#x", true },       { "~!@\"\\", true },
		{ ".x", false },      { "x.", false },
		{ "a..b", false },    { ".", false },
		{ "..", false },      { "IPM.Not\xc3\xa9", false },
		{ "a\tb", false },    { "a\x7f", false },
		{ "a\x1f", false },   { "\x80", false },
		{ "a\nb", false },
	};
	char s[300];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(rfolders_class_valid(cases[i].cls), cases[i].valid);
	memset(s, 'x', sizeof(s));
	s[RFOLDERS_CLASS_MAX] = '\0';
	assert_true(rfolders_class_valid(s));
	s[RFOLDERS_CLASS_MAX] = 'x';
	s[RFOLDERS_CLASS_MAX + 1] = '\0';
	assert_false(rfolders_class_valid(s));
}

static void test_case_insensitive_replace(void **state)
{
	struct rfolders *t = setup_a();
	const struct rfolder_row *row;

	(void)state;
	assert_int_equal(set(t, "ipm.NOTE.sample", "Archive"), 0);
	assert_int_equal(rfolders_count(t), 5);
	row = rfolders_row(t, 3);
	assert_string_equal(row->cls, "ipm.NOTE.sample"); /* the latest spelling */
	assert_string_equal(row->folder, "Archive");
	assert_int_equal(row->mtime, T1);
	assert_lookup(t, "IPM.Note.Sample.Simple", "Archive", "ipm.NOTE.sample");
	assert_int_equal(set(t, "x", "inbox"), 0);
	assert_lookup(t, "X", "INBOX", "x"); /* INBOX spelled canonically */
	rfolders_free(t);
}

static void test_row_limit(void **state)
{
	struct rfolders *t = rfolders_new_default(T0);
	struct checker c = { 0 };
	char cls[32];

	(void)state;
	for (int i = 0; rfolders_count(t) < RFOLDERS_MAX_ROWS; i++) {
		snprintf(cls, sizeof(cls), "C.%d", i);
		assert_int_equal(set(t, cls, "Archive"), 0);
	}
	assert_int_equal(rfolders_count(t), 2000);
	assert_refused(t, "One.Too.Many", "Archive", -ENOSPC);
	assert_int_equal(rfolders_set(t, "One.Too.Many", "Archive", T1, check, &c), -ENOSPC);
	assert_int_equal(c.calls, 0);
	assert_int_equal(set(t, "c.7", "Docs"), 0); /* replacing still works */
	assert_int_equal(set(t, "IPM", "INBOX"), 0);
	assert_int_equal(set(t, "C.8", NULL), 0);
	assert_int_equal(set(t, "One.Too.Many", "Archive"), 0);
	assert_int_equal(rfolders_count(t), 2000);
	assert_int_equal(rfolders_load_row(t, "Two.Too.Many", "Archive", T0), -ENOSPC);
	rfolders_free(t);
}

static void test_sorted_order_and_flags(void **state)
{
	static const char *const order[] = { "",      "b",          "IPC", "IPM", "IPM.Note.Sample",
					     "ipm.z", "REPORT.IPM", "Zeta" };
	static const char *const flags[] = { "nodelete", "", "", "fixed", "", "", "fixed", "" };
	struct rfolders *t = setup_a();

	(void)state;
	assert_int_equal(set(t, "Zeta", "Docs"), 0);
	assert_int_equal(set(t, "b", "Docs"), 0);
	assert_int_equal(set(t, "ipm.z", "Docs"), 0);
	assert_int_equal(rfolders_count(t), 8);
	for (size_t i = 0; i < 8; i++) {
		assert_string_equal(rfolders_row(t, i)->cls, order[i]);
		assert_string_equal(rfolders_row_flags(rfolders_row(t, i)), flags[i]);
	}
	assert_null(rfolders_row(t, 8));
	rfolders_free(t);
}

static void test_defaults_and_copy(void **state)
{
	struct rfolders *t = rfolders_new_default(T0), *c;
	char *a, *b;

	(void)state;
	a = snapshot(t);
	assert_string_equal(a, "|INBOX|1748772000;IPC|/|1748772000;IPM|INBOX|1748772000;"
			       "REPORT.IPM|INBOX|1748772000;");
	c = rfolders_copy(t);
	assert_non_null(c);
	assert_int_equal(set(c, "X", "Docs"), 0);
	b = snapshot(t);
	assert_string_equal(a, b); /* the original is untouched */
	assert_int_equal(rfolders_count(c), 5);
	free(a);
	free(b);
	rfolders_free(c);
	rfolders_free(t);
	rfolders_free(NULL);
}

static void test_load_row(void **state)
{
	struct rfolders *t = rfolders_new_empty();

	(void)state;
	assert_int_equal(rfolders_load_row(t, "IPM", "Old Inbox", 12345), 0);
	assert_int_equal(rfolders_load_row(t, "ipm", "INBOX", 777), 0);
	assert_int_equal(rfolders_count(t), 1);
	assert_string_equal(rfolders_row(t, 0)->cls, "ipm");
	assert_int_equal(rfolders_row(t, 0)->mtime, 777);
	assert_int_equal(rfolders_load_row(t, "a..b", "INBOX", 1), -EINVAL);
	assert_int_equal(rfolders_load_row(t, "x", "", 1), -EINVAL);
	rfolders_free(t);
}

/* "" -> Archive, IPC -> Archive/2024, A -> Archive, B -> Archive/2024,
 * C -> Archives, D -> Docs, E -> INBOX/Sub. */
static struct rfolders *setup_paths(void)
{
	struct rfolders *t = rfolders_new_default(T0);

	assert_int_equal(rfolders_load_row(t, "", "Archive", T0), 0);
	assert_int_equal(rfolders_load_row(t, "IPC", "Archive/2024", T0), 0);
	assert_int_equal(rfolders_load_row(t, "A", "Archive", T0), 0);
	assert_int_equal(rfolders_load_row(t, "B", "Archive/2024", T0), 0);
	assert_int_equal(rfolders_load_row(t, "C", "Archives", T0), 0);
	assert_int_equal(rfolders_load_row(t, "D", "Docs", T0), 0);
	assert_int_equal(rfolders_load_row(t, "E", "INBOX/Sub", T0), 0);
	return t;
}

static void test_rename_folder(void **state)
{
	struct rfolders *t = setup_paths();
	char *before;

	(void)state;
	assert_int_equal(rfolders_rename_folder(t, "Archive", "Old/Arch"), 4);
	assert_lookup(t, "X", "Old/Arch", "");
	assert_lookup(t, "IPC.X", "Old/Arch/2024", "IPC");
	assert_lookup(t, "A", "Old/Arch", "A");
	assert_lookup(t, "B", "Old/Arch/2024", "B");
	assert_lookup(t, "C", "Archives", "C"); /* a sibling, not below */
	assert_int_equal(rfolders_row(t, 0)->mtime, T0);
	assert_int_equal(rfolders_rename_folder(t, "Old/Arch/2024", "Y2024"), 2);
	assert_lookup(t, "B", "Y2024", "B");
	assert_int_equal(rfolders_rename_folder(t, "inbox/Sub", "Sub"), 1);
	assert_lookup(t, "E", "Sub", "E");
	assert_int_equal(rfolders_rename_folder(t, "Sub", "inbox/Sub2"), 1);
	assert_lookup(t, "E", "INBOX/Sub2", "E");
	/* INBOX stays where it is; the root cannot move */
	before = snapshot(t);
	assert_int_equal(rfolders_rename_folder(t, "INBOX", "Saved"), 0);
	assert_int_equal(rfolders_rename_folder(t, "/", "Saved"), 0);
	assert_int_equal(rfolders_rename_folder(t, "Nothing", "Saved"), 0);
	{
		char *after = snapshot(t);

		assert_string_equal(before, after);
		free(after);
	}
	free(before);
	rfolders_free(t);
}

static void test_remove_folder(void **state)
{
	struct rfolders *t = setup_paths();

	(void)state;
	assert_int_equal(rfolders_load_row(t, "IPM", "Archive/2024/Q1", T0), 0);
	assert_int_equal(rfolders_count(t), 9);
	/* "" and IPM fall back to INBOX; IPC, A and B go */
	assert_int_equal(rfolders_remove_folder(t, "Archive"), 5);
	assert_int_equal(rfolders_count(t), 6);
	assert_lookup(t, "X", "INBOX", "");
	assert_lookup(t, "IPM.Note", "INBOX", "IPM");
	assert_lookup(t, "IPC.X", "INBOX", "");
	assert_lookup(t, "A", "INBOX", "");
	assert_lookup(t, "B", "INBOX", "");
	assert_lookup(t, "C", "Archives", "C");
	assert_int_equal(rfolders_remove_folder(t, "INBOX"), 0);
	assert_int_equal(rfolders_remove_folder(t, "/"), 0);
	assert_int_equal(rfolders_remove_folder(t, "Nothing"), 0);
	assert_int_equal(rfolders_remove_folder(t, "INBOX/Sub"), 1);
	assert_int_equal(rfolders_remove_folder(t, "Docs"), 1);
	assert_int_equal(rfolders_count(t), 4);
	assert_string_equal(rfolders_row(t, 0)->cls, "");
	assert_string_equal(rfolders_row(t, 1)->cls, "C");
	assert_string_equal(rfolders_row(t, 2)->cls, "IPM");
	assert_string_equal(rfolders_row(t, 3)->cls, "REPORT.IPM");
	rfolders_free(t);
}

static void test_remove_root_target(void **state)
{
	struct rfolders *t = rfolders_new_default(T0);

	(void)state;
	/* removing a folder leaves the IPC row on "/" alone */
	assert_int_equal(rfolders_remove_folder(t, "Archive"), 0);
	assert_lookup(t, "IPC", "/", "IPC");
	assert_int_equal(rfolders_count(t), 4);
	rfolders_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lookup_spec),
		cmocka_unit_test(test_lookup_invalid_and_empty),
		cmocka_unit_test(test_set_and_get_12),
		cmocka_unit_test(test_delete_13_14),
		cmocka_unit_test(test_default_row_15),
		cmocka_unit_test(test_fixed_rows_16),
		cmocka_unit_test(test_fixed_row_noop_16b),
		cmocka_unit_test(test_default_row_delete_17),
		cmocka_unit_test(test_invalid_18),
		cmocka_unit_test(test_valid_19),
		cmocka_unit_test(test_folder_check_20),
		cmocka_unit_test(test_class_valid),
		cmocka_unit_test(test_case_insensitive_replace),
		cmocka_unit_test(test_row_limit),
		cmocka_unit_test(test_sorted_order_and_flags),
		cmocka_unit_test(test_defaults_and_copy),
		cmocka_unit_test(test_load_row),
		cmocka_unit_test(test_rename_folder),
		cmocka_unit_test(test_remove_folder),
		cmocka_unit_test(test_remove_root_target),
	};

	return cmocka_run_group_tests_name("rfolders", tests, NULL, NULL);
}

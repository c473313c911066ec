/* Unit tests for ctl.c: the text of .receive-folders (header, quoting,
 * flags), the line parser, format -> parse round trips, and the writer
 * that applies lines as write(2) calls bring them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "mapi/ctl.h"

#define T0 1748772000 /* 2025-06-01T10:00:00Z */
#define T1 1748851960 /* 2025-06-02T08:12:40Z */

/* The spec's example table (section 4). */
static struct rfolders *setup_a(void)
{
	struct rfolders *t = rfolders_new_default(T0);

	assert_non_null(t);
	assert_int_equal(rfolders_set(t, "IPM.Note.Sample", "Samples", T1, NULL, NULL), 0);
	return t;
}

static void test_format_spec_example(void **state)
{
	const char *want = "# class\tfolder\tmodified-UTC\tflags\n"
			   "\"\"\tINBOX\t2025-06-01T10:00:00Z\tnodelete\n"
			   "IPC\t/\t2025-06-01T10:00:00Z\n"
			   "IPM\tINBOX\t2025-06-01T10:00:00Z\tfixed\n"
			   "IPM.Note.Sample\tSamples\t2025-06-02T08:12:40Z\n"
			   "REPORT.IPM\tINBOX\t2025-06-01T10:00:00Z\tfixed\n";
	struct rfolders *t = setup_a();
	size_t len = 0;
	char *text = ctl_format(t, &len);

	(void)state;
	assert_non_null(text);
	assert_string_equal(text, want);
	assert_int_equal(len, strlen(want));
	free(text);
	rfolders_free(t);
}

static void test_format_empty_table(void **state)
{
	struct rfolders *t = rfolders_new_empty();
	size_t len = 0;
	char *text = ctl_format(t, &len);

	(void)state;
	assert_string_equal(text, CTL_HEADER);
	assert_int_equal(len, strlen(CTL_HEADER));
	free(text);
	rfolders_free(t);
}

/* The one row line of a table holding only cls -> folder at time 0. */
static void assert_row_text(const char *cls, const char *folder, const char *want)
{
	struct rfolders *t = rfolders_new_empty();
	size_t len;
	char *text;

	assert_int_equal(rfolders_load_row(t, cls, folder, 0), 0);
	text = ctl_format(t, &len);
	assert_non_null(text);
	assert_string_equal(text + strlen(CTL_HEADER), want);
	free(text);
	rfolders_free(t);
}

static void test_format_quoting(void **state)
{
	(void)state;
	assert_row_text("a b", "My Samples", "\"a b\"\t\"My Samples\"\t1970-01-01T00:00:00Z\n");
	assert_row_text("x\"y\\z", "q\"\\", "\"x\\\"y\\\\z\"\t\"q\\\"\\\\\"\t1970-01-01T00:00:00Z\n");
	assert_row_text("C",
			"t\tn\nr\rc\x01"
			"d\x7f"
			"e\x1f",
			"C\t\"t\\tn\\nr\\rc\\x01d\\x7fe\\x1f\"\t1970-01-01T00:00:00Z\n");
	assert_row_text("C", "Entw\xc3\xbcrfe/2024", "C\tEntw\xc3\xbcrfe/2024\t1970-01-01T00:00:00Z\n");
	assert_row_text("#hash", "#folder", "\"#hash\"\t\"#folder\"\t1970-01-01T00:00:00Z\n");
	assert_row_text("a#b", "x#", "a#b\tx#\t1970-01-01T00:00:00Z\n");
	assert_row_text(" lead", "trail ", "\" lead\"\t\"trail \"\t1970-01-01T00:00:00Z\n");
	assert_row_text("", "/", "\"\"\t/\t1970-01-01T00:00:00Z\tnodelete\n");
	assert_row_text("report.ipm", "INBOX", "report.ipm\tINBOX\t1970-01-01T00:00:00Z\tfixed\n");
}

static const struct parse_case {
	const char *line;
	int ret;
	enum ctl_op op;
	const char *cls, *folder;
} parse_cases[] = {
	{ "IPM.Note.Sample\tSamples", 0, CTL_SET, "IPM.Note.Sample", "Samples" },
	{ "IPM.Note.Sample\tSamples\t2025-06-02T08:12:40Z", 0, CTL_SET, "IPM.Note.Sample", "Samples" },
	{ "\"\"\tINBOX\t2025-06-01T10:00:00Z\tnodelete", 0, CTL_SET, "", "INBOX" },
	{ "  X  \t  My Docs  \t", 0, CTL_SET, "X", "My Docs" },
	{ "IPM.Note.Sample\tMy Samples", 0, CTL_SET, "IPM.Note.Sample", "My Samples" },
	{ "\"a b\"\t\"t\\tn\"", 0, CTL_SET, "a b", "t\tn" },
	{ "X\t\"\"", 0, CTL_SET, "X", "" },
	{ "IPM.Note.Sample My Samples", 0, CTL_SET, "IPM.Note.Sample", "My Samples" },
	{ "   IPM.Note.Sample    My Samples   ", 0, CTL_SET, "IPM.Note.Sample", "My Samples" },
	{ "\"IPM.Document.Microsoft Internet Mail Message\" Docs", 0, CTL_SET,
	  "IPM.Document.Microsoft Internet Mail Message", "Docs" },
	{ "\"\" Archive", 0, CTL_SET, "", "Archive" },
	{ "X \"My \\\"quoted\\\" \\\\folder\"", 0, CTL_SET, "X", "My \"quoted\" \\folder" },
	{ "X \"a\\x41b\\x7F\"", 0, CTL_SET, "X", "aAb\x7f" },
	{ "X \"\"", 0, CTL_SET, "X", "" },
	{ "X Entw\xc3\xbcrfe", 0, CTL_SET, "X", "Entw\xc3\xbcrfe" },
	{ "X \xf0\x9f\x93\xac", 0, CTL_SET, "X", "\xf0\x9f\x93\xac" },
	{ "X a\"b\\c", 0, CTL_SET, "X", "a\"b\\c" }, /* bare: literal */
	{ "IPM.X Docs\r", 0, CTL_SET, "IPM.X", "Docs" },
	{ "IPM.X\tDocs\r", 0, CTL_SET, "IPM.X", "Docs" },
	{ "IPM.Note.Sample", 0, CTL_DELETE, "IPM.Note.Sample", NULL },
	{ "IPM.Note.Sample   \r", 0, CTL_DELETE, "IPM.Note.Sample", NULL },
	{ "\"\"", 0, CTL_DELETE, "", NULL },
	{ "\"a b\"  ", 0, CTL_DELETE, "a b", NULL },
	{ "..bad..", 0, CTL_DELETE, "..bad..", NULL }, /* rfolders_set judges classes */
	{ "# class\tfolder\tmodified-UTC\tflags", 0, CTL_NOTHING, NULL, NULL },
	{ "  # note", 0, CTL_NOTHING, NULL, NULL },
	{ "\t#", 0, CTL_NOTHING, NULL, NULL },
	{ "", 0, CTL_NOTHING, NULL, NULL },
	{ "   ", 0, CTL_NOTHING, NULL, NULL },
	{ "\r", 0, CTL_NOTHING, NULL, NULL },
	{ " \t ", 0, CTL_NOTHING, NULL, NULL },
	{ "\"IPM Docs", -EINVAL, 0, NULL, NULL }, /* unterminated */
	{ "\"IPM\"Docs", -EINVAL, 0, NULL, NULL },
	{ "X \"abc\" trailing", -EINVAL, 0, NULL, NULL },
	{ "X \"a\\qb\"", -EINVAL, 0, NULL, NULL }, /* unknown escape */
	{ "X \"a\\x4\"", -EINVAL, 0, NULL, NULL },
	{ "X \"a\\x4g\"", -EINVAL, 0, NULL, NULL },
	{ "X \"a\\x00\"", -EINVAL, 0, NULL, NULL }, /* NUL */
	{ "X \"a\\\"", -EINVAL, 0, NULL, NULL },
	{ "X \"a\\", -EINVAL, 0, NULL, NULL },
	{ "X \xff", -EINVAL, 0, NULL, NULL },
	{ "X \xc3\x28", -EINVAL, 0, NULL, NULL },
	{ "X \xc3", -EINVAL, 0, NULL, NULL },
	{ "X \xc0\xaf", -EINVAL, 0, NULL, NULL }, /* overlong */
	{ "X \xe0\x80\xaf", -EINVAL, 0, NULL, NULL },
	{ "X \xed\xa0\x80", -EINVAL, 0, NULL, NULL },     /* surrogate */
	{ "X \xf4\x90\x80\x80", -EINVAL, 0, NULL, NULL }, /* past U+10FFFF */
	{ "X \"\\xff\"", -EINVAL, 0, NULL, NULL },
	{ "IPM.Not\xc3\xa9 Docs", -EINVAL, 0, NULL, NULL }, /* non-ASCII class */
	{ "\"IPM\\xe9\" Docs", -EINVAL, 0, NULL, NULL },
	{ "\tINBOX", -EINVAL, 0, NULL, NULL }, /* empty bare class */
	{ "X\t", -EINVAL, 0, NULL, NULL },     /* empty bare folder */
	{ "X\t  \tmore", -EINVAL, 0, NULL, NULL },
	{ "X\t\"Docs", -EINVAL, 0, NULL, NULL },
	{ "\"a\tb\" Docs", -EINVAL, 0, NULL, NULL }, /* a TAB splits first */
};

static void test_parse_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
		const struct parse_case *pc = &parse_cases[i];
		struct ctl_command c;
		int r = ctl_parse_line(pc->line, strlen(pc->line), &c);

		if (r != pc->ret || (r == 0 && c.op != pc->op))
			print_error("line %zu: \"%s\"\n", i, pc->line);
		assert_int_equal(r, pc->ret);
		if (r < 0) {
			assert_null(c.cls);
			assert_null(c.folder);
			continue;
		}
		assert_int_equal(c.op, pc->op);
		if (pc->cls)
			assert_string_equal(c.cls, pc->cls);
		else
			assert_null(c.cls);
		if (pc->folder)
			assert_string_equal(c.folder, pc->folder);
		else
			assert_null(c.folder);
		ctl_command_free(&c);
	}
}

static void test_parse_nul_and_length(void **state)
{
	static const char with_nul[] = "X Do\0cs";
	struct ctl_command c;

	(void)state;
	assert_int_equal(ctl_parse_line(with_nul, sizeof(with_nul) - 1, &c), -EINVAL);
	/* len bounds the line: what follows is not read */
	assert_int_equal(ctl_parse_line("X DocsGARBAGE", 6, &c), 0);
	assert_string_equal(c.folder, "Docs");
	ctl_command_free(&c);
	assert_int_equal(ctl_parse_line("\"unterminated", 1, &c), -EINVAL);
}

static void test_round_trip(void **state)
{
	static const char *const rows[][2] = {
		{ "", "INBOX" },
		{ "IPC", "/" },
		{ "a b", " spaced folder " },
		{ "q\"uote\\back", "q\"\\" },
		{ "#hash", "#x" },
		{ "X", "ctl\x01\x1f\x7f\t\r\n" },
		{ "Y", "Entw\xc3\xbcrfe/\xe2\x88\x95/x" },
		{ " ", "\"" },
		{ "Z", "a#b c" },
		{ "IPM.Document.Microsoft Internet Mail Message", "Docs" },
	};
	size_t n = sizeof(rows) / sizeof(rows[0]), len, line = 0;
	struct rfolders *t = rfolders_new_empty();
	char *text, *p, *nl;

	(void)state;
	for (size_t i = 0; i < n; i++)
		assert_int_equal(rfolders_load_row(t, rows[i][0], rows[i][1], T1), 0);
	text = ctl_format(t, &len);
	for (p = text; (nl = memchr(p, '\n', len - (size_t)(p - text))); p = nl + 1, line++) {
		struct ctl_command c;

		assert_int_equal(ctl_parse_line(p, (size_t)(nl - p), &c), 0);
		if (line == 0) {
			assert_int_equal(c.op, CTL_NOTHING);
			continue;
		}
		assert_int_equal(c.op, CTL_SET);
		assert_string_equal(c.cls, rfolders_row(t, line - 1)->cls);
		assert_string_equal(c.folder, rfolders_row(t, line - 1)->folder);
		ctl_command_free(&c);
	}
	assert_int_equal(p - text, len);
	assert_int_equal(line, n + 1);
	free(text);
	rfolders_free(t);
}

/* Records what the writer applies as "S cls>folder" / "D cls"; a class
 * named BAD is refused with -EACCES. */
struct log {
	char entries[16][64];
	size_t n;
};

static int record(const struct ctl_command *c, void *ctx)
{
	struct log *l = ctx;

	assert_true(l->n < 16);
	if (c->op == CTL_SET)
		snprintf(l->entries[l->n++], 64, "S %s>%.40s", c->cls, c->folder);
	else
		snprintf(l->entries[l->n++], 64, "D %s", c->cls);
	return strcmp(c->cls, "BAD") == 0 ? -EACCES : 0;
}

static int feed(struct ctl_writer *w, const char *s, struct log *l)
{
	return ctl_writer_feed(w, s, strlen(s), record, l);
}

static void test_writer_lines_in_order(void **state)
{
	struct ctl_writer *w = ctl_writer_new();
	struct log l = { 0 };

	(void)state;
	assert_int_equal(feed(w, "# comment\nA Docs\r\n\nB\n\"c d\"\tArchive\t2025\tx\n", &l), 0);
	assert_int_equal(l.n, 3);
	assert_string_equal(l.entries[0], "S A>Docs");
	assert_string_equal(l.entries[1], "D B");
	assert_string_equal(l.entries[2], "S c d>Archive");
	assert_int_equal(ctl_writer_finish(w, record, &l), 0);
	assert_int_equal(l.n, 3);
	ctl_writer_free(w);
}

static void test_writer_split_lines(void **state)
{
	const char *text = "IPM.X My Docs\nY Archive\nZ";
	struct ctl_writer *w = ctl_writer_new();
	struct log l = { 0 };

	(void)state;
	for (const char *p = text; *p; p++) /* one byte per write */
		assert_int_equal(ctl_writer_feed(w, p, 1, record, &l), 0);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.entries[0], "S IPM.X>My Docs");
	assert_string_equal(l.entries[1], "S Y>Archive");
	assert_int_equal(ctl_writer_finish(w, record, &l), 0); /* the partial line */
	assert_int_equal(l.n, 3);
	assert_string_equal(l.entries[2], "D Z");
	assert_int_equal(ctl_writer_finish(w, record, &l), 0); /* again: nothing */
	assert_int_equal(l.n, 3);
	ctl_writer_free(w);
}

static void test_writer_error_stops(void **state)
{
	struct ctl_writer *w = ctl_writer_new();
	struct log l = { 0 };

	(void)state;
	assert_int_equal(feed(w, "A Docs\nBAD Docs\nC Docs\nD Do", &l), -EACCES);
	assert_int_equal(l.n, 2); /* A applied, BAD tried, C not */
	assert_string_equal(l.entries[1], "S BAD>Docs");
	/* "cs" ends the dropped line D: it is no command */
	assert_int_equal(feed(w, "cs\nE Docs\n", &l), 0);
	assert_int_equal(l.n, 3);
	assert_string_equal(l.entries[2], "S E>Docs");
	/* an error on the last complete line leaves nothing to drop */
	assert_int_equal(feed(w, "BAD x\n", &l), -EACCES);
	assert_int_equal(feed(w, "F Docs\n", &l), 0);
	assert_string_equal(l.entries[l.n - 1], "S F>Docs");
	/* a parse error stops the same way */
	l.n = 0;
	assert_int_equal(feed(w, "G Docs\n\"bad\nH Docs\n", &l), -EINVAL);
	assert_int_equal(l.n, 1);
	/* an error drops the kept partial line too */
	assert_int_equal(feed(w, "I Do", &l), 0);
	assert_int_equal(feed(w, "cs\nBAD x\n", &l), -EACCES);
	assert_int_equal(ctl_writer_finish(w, record, &l), 0);
	assert_int_equal(l.n, 3);
	assert_string_equal(l.entries[1], "S I>Docs");
	ctl_writer_free(w);
}

static void test_writer_finish_error(void **state)
{
	struct ctl_writer *w = ctl_writer_new();
	struct log l = { 0 };

	(void)state;
	assert_int_equal(feed(w, "BAD Docs", &l), 0);
	assert_int_equal(l.n, 0);
	assert_int_equal(ctl_writer_finish(w, record, &l), -EACCES);
	assert_int_equal(ctl_writer_finish(w, record, &l), 0);
	assert_int_equal(feed(w, "\"x", &l), 0);
	assert_int_equal(ctl_writer_finish(w, record, &l), -EINVAL);
	assert_int_equal(l.n, 1);
	ctl_writer_free(w);
	ctl_writer_free(NULL);
}

static void test_writer_long_lines(void **state)
{
	size_t big = CTL_LINE_MAX + 10;
	char *buf = malloc(big + 1);
	struct ctl_writer *w = ctl_writer_new();
	struct log l = { 0 };
	int r = 0;

	(void)state;
	/* exactly CTL_LINE_MAX bytes is fine, in one write or in pieces */
	memset(buf, 'a', big);
	memcpy(buf, "X ", 2);
	buf[CTL_LINE_MAX] = '\n';
	assert_int_equal(ctl_writer_feed(w, buf, CTL_LINE_MAX + 1, record, &l), 0);
	for (size_t at = 0; at <= CTL_LINE_MAX; at += 4096) {
		size_t n = CTL_LINE_MAX + 1 - at < 4096 ? CTL_LINE_MAX + 1 - at : 4096;

		assert_int_equal(ctl_writer_feed(w, buf + at, n, record, &l), 0);
	}
	assert_int_equal(l.n, 2);
	/* one byte more: refused whole ... */
	memset(buf, 'a', big);
	memcpy(buf, "X ", 2);
	buf[CTL_LINE_MAX + 1] = '\n';
	assert_int_equal(ctl_writer_feed(w, buf, CTL_LINE_MAX + 2, record, &l), -EINVAL);
	/* ... and in pieces, where the rest of the line is dropped as it comes */
	for (size_t at = 0; at < big; at += 4096) {
		size_t n = big - at < 4096 ? big - at : 4096;
		int rr = ctl_writer_feed(w, buf + at, n, record, &l);

		if (rr < 0) {
			assert_int_equal(r, 0); /* only the first piece past the limit */
			r = rr;
		}
	}
	assert_int_equal(r, -EINVAL);
	assert_int_equal(feed(w, "aaa\nB Docs\n", &l), 0);
	assert_int_equal(l.n, 3);
	assert_string_equal(l.entries[2], "S B>Docs");
	assert_int_equal(ctl_writer_finish(w, record, &l), 0);
	free(buf);
	ctl_writer_free(w);
}

/* apply() as imapfs wires it: each command becomes rfolders_set. */
static int apply_set(const struct ctl_command *c, void *ctx)
{
	return rfolders_set(ctx, c->cls, c->folder, T1, NULL, NULL);
}

static void test_write_back_saved_table(void **state)
{
	struct rfolders *saved = setup_a(), *t = rfolders_new_default(T0);
	struct ctl_writer *w = ctl_writer_new();
	size_t len, len2;
	char *text = ctl_format(saved, &len), *text2;

	(void)state;
	/* fixed rows left as they are are accepted, so cat's output goes back */
	assert_int_equal(ctl_writer_feed(w, text, len, apply_set, t), 0);
	assert_int_equal(ctl_writer_finish(w, apply_set, t), 0);
	text2 = ctl_format(t, &len2);
	/* same rows; only mtimes of rows written may differ */
	assert_int_equal(rfolders_count(t), rfolders_count(saved));
	for (size_t i = 0; i < rfolders_count(t); i++) {
		assert_string_equal(rfolders_row(t, i)->cls, rfolders_row(saved, i)->cls);
		assert_string_equal(rfolders_row(t, i)->folder, rfolders_row(saved, i)->folder);
	}
	assert_int_equal(rfolders_row(t, 2)->mtime, T0); /* IPM untouched */
	assert_int_equal(ctl_writer_feed(w, "IPM Archive\n", 12, apply_set, t), -EACCES);
	assert_int_equal(ctl_writer_feed(w, "\"\"\n", 3, apply_set, t), -EPERM);
	assert_int_equal(ctl_writer_feed(w, "X \"\"\n", 5, apply_set, t), -EINVAL);
	free(text);
	free(text2);
	ctl_writer_free(w);
	rfolders_free(t);
	rfolders_free(saved);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format_spec_example),   cmocka_unit_test(test_format_empty_table),
		cmocka_unit_test(test_format_quoting),        cmocka_unit_test(test_parse_table),
		cmocka_unit_test(test_parse_nul_and_length),  cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_writer_lines_in_order), cmocka_unit_test(test_writer_split_lines),
		cmocka_unit_test(test_writer_error_stops),    cmocka_unit_test(test_writer_finish_error),
		cmocka_unit_test(test_writer_long_lines),     cmocka_unit_test(test_write_back_saved_table),
	};

	return cmocka_run_group_tests_name("ctl", tests, NULL, NULL);
}

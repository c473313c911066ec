/* libFuzzer target for the .receive-folders parser and writer.
 *
 *   clang -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -g -Isrc \
 *	-fsanitize=fuzzer,address,undefined tests/fuzz/fuzz_ctl.c src/ctl.c \
 *	src/rfolders.c -o build/fuzz_ctl && build/fuzz_ctl -max_total_time=60
 *
 * The input is parsed as one line, then written through a ctl_writer in
 * pieces (sizes taken from the first byte) onto a default table.  Whatever
 * was applied must keep the table sorted and valid, and the table's text
 * must parse back, line by line, to exactly its rows. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mapi/ctl.h"

#define CHECK(cond)              \
	do {                     \
		if (!(cond))     \
			abort(); \
	} while (0)

/* Folders whose name starts with 'N' do not exist, 'P' ones are \Noselect. */
static int check(const char *folder, void *ctx)
{
	(void)ctx;
	if (folder[0] == 'N')
		return -ENOENT;
	return folder[0] == 'P' ? -EOPNOTSUPP : 0;
}

static int apply(const struct ctl_command *c, void *ctx)
{
	const char *folder, *explicit_cls;
	struct rfolders *t = ctx;
	int r;

	CHECK(c->op == CTL_SET || c->op == CTL_DELETE);
	CHECK(c->op == CTL_DELETE ? !c->folder : c->folder != NULL);
	r = rfolders_set(t, c->cls, c->folder, 1, check, NULL);
	if (rfolders_lookup(t, c->cls, &folder, &explicit_cls) == 0) {
		CHECK(strncasecmp(c->cls, explicit_cls, strlen(explicit_cls)) == 0);
		if (r == 0 && c->op == CTL_SET && strncasecmp(c->folder, "inbox", 5) != 0)
			CHECK(strcmp(folder, c->folder) == 0 || !strcasecmp(c->cls, "IPM") ||
			      !strcasecmp(c->cls, "REPORT.IPM"));
	} else {
		CHECK(r == -EINVAL);
	}
	/* a set class that names a folder: rename it away, or remove it */
	if (r == 0 && c->op == CTL_SET && c->cls[0] == 'R')
		rfolders_rename_folder(t, c->folder, "Renamed");
	if (r == 0 && c->op == CTL_SET && c->cls[0] == 'X')
		rfolders_remove_folder(t, c->folder);
	return r == -EACCES ? 0 : r; /* go on past fixed rows to reach more lines */
}

static void check_table(const struct rfolders *t)
{
	size_t n = rfolders_count(t), len, line = 0;
	char *text = ctl_format(t, &len), *p, *nl;

	CHECK(n <= RFOLDERS_MAX_ROWS && text && strlen(text) == len);
	for (size_t i = 0; i < n; i++) {
		const struct rfolder_row *row = rfolders_row(t, i);

		CHECK(rfolders_class_valid(row->cls) && row->folder[0]);
		CHECK(i == 0 || strcasecmp(rfolders_row(t, i - 1)->cls, row->cls) < 0);
	}
	for (p = text; (nl = memchr(p, '\n', len - (size_t)(p - text))); p = nl + 1, line++) {
		struct ctl_command c;

		CHECK(ctl_parse_line(p, (size_t)(nl - p), &c) == 0);
		if (line == 0) {
			CHECK(c.op == CTL_NOTHING);
			continue;
		}
		CHECK(c.op == CTL_SET);
		CHECK(strcmp(c.cls, rfolders_row(t, line - 1)->cls) == 0);
		CHECK(strcmp(c.folder, rfolders_row(t, line - 1)->folder) == 0);
		ctl_command_free(&c);
	}
	CHECK(p == text + len && line == n + 1);
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	struct rfolders *t = rfolders_new_default(0);
	struct ctl_writer *w = ctl_writer_new();
	struct ctl_command c;
	size_t piece = size ? (size_t)data[0] % 17 + 1 : 1;

	CHECK(t && w);
	if (ctl_parse_line(s, size, &c) == 0)
		ctl_command_free(&c);
	else
		CHECK(!c.cls && !c.folder);
	for (size_t at = 0; at < size; at += piece)
		ctl_writer_feed(w, s + at, size - at < piece ? size - at : piece, apply, t);
	ctl_writer_finish(w, apply, t);
	check_table(t);
	ctl_writer_free(w);
	rfolders_free(t);
	return 0;
}

/* rfolders.c - the receive-folder table.  Rows stay sorted by class
 * (strcasecmp), which is both the control-file order and the lookup index:
 * classes are unique case-insensitively, so a row is found by bisection. */
#include "rfolders.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct rfolders {
	struct rfolder_row *rows; /* owned, sorted by class */
	size_t n, cap;
};

static const char *const default_rows[][2] = {
	{ "", "INBOX" },
	{ "IPC", RFOLDERS_ROOT },
	{ "IPM", "INBOX" },
	{ "REPORT.IPM", "INBOX" },
};

static bool is_fixed(const char *cls)
{
	return strcasecmp(cls, "IPM") == 0 || strcasecmp(cls, "REPORT.IPM") == 0;
}

bool rfolders_class_valid(const char *cls)
{
	size_t len = strlen(cls);

	if (len == 0)
		return true;
	if (len > RFOLDERS_CLASS_MAX || cls[0] == '.' || cls[len - 1] == '.' || strstr(cls, ".."))
		return false;
	for (const unsigned char *p = (const unsigned char *)cls; *p; p++)
		if (*p < 0x20 || *p > 0x7e)
			return false;
	return true;
}

/* Index of the row of cls, or -1 with *pos where it would go. */
static long find_row(const struct rfolders *t, const char *cls, size_t *pos)
{
	size_t lo = 0, hi = t->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcasecmp(t->rows[mid].cls, cls);

		if (c == 0)
			return (long)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*pos = lo;
	return -1;
}

/* 5 when path's first component is INBOX in any case, else 0. */
static size_t inbox_len(const char *path)
{
	return strncasecmp(path, "INBOX", 5) == 0 && (path[5] == '\0' || path[5] == '/') ? 5 : 0;
}

/* Is path dir itself or below it?  *rest gets the offset of what follows dir
 * in path ("" or "/..."). */
static bool path_within(const char *path, const char *dir, size_t *rest)
{
	size_t skip = inbox_len(dir), len = strlen(dir);

	if (skip && inbox_len(path) != skip)
		return false;
	if (strncmp(path + skip, dir + skip, len - skip) != 0)
		return false;
	if (path[len] != '\0' && path[len] != '/')
		return false;
	*rest = len;
	return true;
}

static bool same_folder(const char *a, const char *b)
{
	size_t rest;

	return path_within(a, b, &rest) && a[rest] == '\0';
}

/* A copy of prefix + suffix with a leading inbox component spelled INBOX. */
static char *folder_dup(const char *prefix, const char *suffix)
{
	size_t a = strlen(prefix), b = strlen(suffix);
	char *s = malloc(a + b + 1);

	if (!s)
		return NULL;
	memcpy(s, prefix, a);
	memcpy(s + a, suffix, b + 1);
	if (inbox_len(s))
		memcpy(s, "INBOX", 5);
	return s;
}

struct rfolders *rfolders_new_empty(void)
{
	return calloc(1, sizeof(struct rfolders));
}

void rfolders_free(struct rfolders *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++) {
		free(t->rows[i].cls);
		free(t->rows[i].folder);
	}
	free(t->rows);
	free(t);
}

/* Inserts a row at pos, taking ownership of cls and folder only on success. */
static int insert_row(struct rfolders *t, size_t pos, char *cls, char *folder, int64_t mtime)
{
	if (t->n >= RFOLDERS_MAX_ROWS)
		return -ENOSPC;
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 8;
		struct rfolder_row *rows = realloc(t->rows, cap * sizeof(*rows));

		if (!rows)
			return -ENOMEM;
		t->rows = rows;
		t->cap = cap;
	}
	memmove(&t->rows[pos + 1], &t->rows[pos], (t->n - pos) * sizeof(*t->rows));
	t->rows[pos] = (struct rfolder_row){ cls, folder, mtime };
	t->n++;
	return 0;
}

static void delete_row(struct rfolders *t, size_t i)
{
	free(t->rows[i].cls);
	free(t->rows[i].folder);
	memmove(&t->rows[i], &t->rows[i + 1], (t->n - i - 1) * sizeof(*t->rows));
	t->n--;
}

/* Replaces or inserts without any of SetReceiveFolder's rules. */
static int put_row(struct rfolders *t, const char *cls, const char *folder, int64_t mtime)
{
	size_t pos = 0;
	long i = find_row(t, cls, &pos);
	char *c = strdup(cls), *f = folder_dup(folder, "");
	int r = -ENOMEM;

	if (i < 0 && t->n >= RFOLDERS_MAX_ROWS)
		r = -ENOSPC;
	else if (c && f && i >= 0) {
		free(t->rows[i].cls);
		free(t->rows[i].folder);
		t->rows[i] = (struct rfolder_row){ c, f, mtime };
		return 0;
	} else if (c && f)
		r = insert_row(t, pos, c, f, mtime);
	if (r < 0) {
		free(c);
		free(f);
	}
	return r;
}

struct rfolders *rfolders_new_default(int64_t now)
{
	struct rfolders *t = rfolders_new_empty();

	for (size_t i = 0; t && i < sizeof(default_rows) / sizeof(default_rows[0]); i++) {
		if (put_row(t, default_rows[i][0], default_rows[i][1], now) < 0) {
			rfolders_free(t);
			t = NULL;
		}
	}
	return t;
}

struct rfolders *rfolders_copy(const struct rfolders *t)
{
	struct rfolders *c = rfolders_new_empty();

	for (size_t i = 0; c && i < t->n; i++) {
		const struct rfolder_row *row = &t->rows[i];

		if (put_row(c, row->cls, row->folder, row->mtime) < 0) {
			rfolders_free(c);
			c = NULL;
		}
	}
	return c;
}

static bool class_matches(const char *row_cls, const char *cls)
{
	size_t n = strlen(row_cls);

	return strncasecmp(cls, row_cls, n) == 0 && (cls[n] == '\0' || cls[n] == '.' || n == 0);
}

int rfolders_lookup(const struct rfolders *t, const char *cls, const char **folder, const char **explicit_cls)
{
	const struct rfolder_row *best = NULL;

	if (!rfolders_class_valid(cls))
		return -EINVAL;
	for (size_t i = 0; i < t->n; i++) {
		const struct rfolder_row *row = &t->rows[i];

		if (class_matches(row->cls, cls) && (!best || strlen(row->cls) > strlen(best->cls)))
			best = row;
	}
	*folder = best ? best->folder : "INBOX";
	*explicit_cls = best ? best->cls : "";
	return 0;
}

static int delete_class(struct rfolders *t, const char *cls)
{
	size_t pos;
	long i;

	if (cls[0] == '\0')
		return -EPERM;
	if (is_fixed(cls))
		return -EACCES;
	i = find_row(t, cls, &pos);
	if (i >= 0)
		delete_row(t, (size_t)i);
	return 0;
}

int rfolders_set(struct rfolders *t, const char *cls, const char *folder, int64_t now,
		 rfolders_check_fn *check, void *ctx)
{
	size_t pos = 0;
	char *canon;
	long i;
	int r;

	if (!rfolders_class_valid(cls) || (folder && folder[0] == '\0'))
		return -EINVAL;
	if (!folder)
		return delete_class(t, cls);
	i = find_row(t, cls, &pos);
	if (is_fixed(cls))
		return i >= 0 && same_folder(folder, t->rows[i].folder) ? 0 : -EACCES;
	if (i < 0 && t->n >= RFOLDERS_MAX_ROWS)
		return -ENOSPC;
	if (!(canon = folder_dup(folder, "")))
		return -ENOMEM;
	r = check ? check(canon, ctx) : 0;
	if (r >= 0)
		r = put_row(t, cls, canon, now);
	free(canon);
	return r < 0 ? r : 0;
}

int rfolders_load_row(struct rfolders *t, const char *cls, const char *folder, int64_t mtime)
{
	if (!rfolders_class_valid(cls) || folder[0] == '\0')
		return -EINVAL;
	return put_row(t, cls, folder, mtime);
}

size_t rfolders_count(const struct rfolders *t)
{
	return t->n;
}

const struct rfolder_row *rfolders_row(const struct rfolders *t, size_t i)
{
	return i < t->n ? &t->rows[i] : NULL;
}

const char *rfolders_row_flags(const struct rfolder_row *row)
{
	if (row->cls[0] == '\0')
		return "nodelete";
	return is_fixed(row->cls) ? "fixed" : "";
}

/* Neither INBOX nor the root can be renamed away or removed. */
static bool immovable(const char *path)
{
	return path[0] == '\0' || strcmp(path, RFOLDERS_ROOT) == 0 || same_folder(path, "INBOX");
}

size_t rfolders_rename_folder(struct rfolders *t, const char *old_path, const char *new_path)
{
	char **renamed;
	size_t rest, changed = 0;

	if (immovable(old_path) || t->n == 0 || !(renamed = calloc(t->n, sizeof(*renamed))))
		return 0;
	for (size_t i = 0; i < t->n; i++) {
		if (!path_within(t->rows[i].folder, old_path, &rest))
			continue;
		renamed[i] = folder_dup(new_path, t->rows[i].folder + rest);
		if (!renamed[i])
			goto out;
	}
	for (size_t i = 0; i < t->n; i++) {
		if (!renamed[i])
			continue;
		free(t->rows[i].folder);
		t->rows[i].folder = renamed[i];
		renamed[i] = NULL;
		changed++;
	}
out:
	for (size_t i = 0; i < t->n; i++)
		free(renamed[i]);
	free(renamed);
	return changed;
}

size_t rfolders_remove_folder(struct rfolders *t, const char *path)
{
	size_t n = t->n, rest, changed = 0;
	char **inbox;

	if (immovable(path) || n == 0 || !(inbox = calloc(n, sizeof(*inbox))))
		return 0;
	for (size_t i = 0; i < n; i++) {
		const struct rfolder_row *row = &t->rows[i];

		if (path_within(row->folder, path, &rest) && rfolders_row_flags(row)[0] &&
		    !(inbox[i] = strdup("INBOX")))
			goto out;
	}
	for (size_t i = n; i-- > 0;) { /* downwards: deleting keeps lower indexes */
		if (!path_within(t->rows[i].folder, path, &rest))
			continue;
		if (inbox[i]) {
			free(t->rows[i].folder);
			t->rows[i].folder = inbox[i];
			inbox[i] = NULL;
		} else {
			delete_row(t, i);
		}
		changed++;
	}
out:
	for (size_t i = 0; i < n; i++)
		free(inbox[i]);
	free(inbox);
	return changed;
}

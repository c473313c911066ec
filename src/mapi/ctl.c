/* ctl.c - text form of the receive-folder table.  The format is chosen so
 * that ctl_format's output parses back to the same rows line by line: fields
 * are TAB-separated, and anything a bare field could not carry (TAB, spaces
 * at the ends, a leading '#' that would make the line a comment, "") is
 * quoted. */
#include "ctl.h"
#include "util/chars.h"
#include "util/timefmt.h"
#include "util/utf8.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct outbuf {
	char *p;
	size_t len, cap;
	bool oom;
};

static void put(struct outbuf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		char *p;

		while (b->len + n + 1 > cap)
			cap *= 2;
		if (!(p = realloc(b->p, cap))) {
			b->oom = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void puts_(struct outbuf *b, const char *s)
{
	put(b, s, strlen(s));
}

static bool needs_quote(const char *s)
{
	if (s[0] == '\0' || s[0] == '#')
		return true;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p <= ' ' || *p == 0x7f || *p == '"' || *p == '\\')
			return true;
	return false;
}

static void put_field(struct outbuf *b, const char *s)
{
	char esc[5];

	if (!needs_quote(s)) {
		puts_(b, s);
		return;
	}
	put(b, "\"", 1);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			snprintf(esc, sizeof(esc), "\\%c", *p);
		else if (*p == '\t' || *p == '\n' || *p == '\r')
			snprintf(esc, sizeof(esc), "\\%c", *p == '\t' ? 't' : *p == '\n' ? 'n' : 'r');
		else if (*p < ' ' || *p == 0x7f)
			snprintf(esc, sizeof(esc), "\\x%02x", *p);
		else
			snprintf(esc, sizeof(esc), "%c", *p);
		puts_(b, esc);
	}
	put(b, "\"", 1);
}

/* A time outside the four-digit years is written as the epoch: a saved
 * table is read back with timefmt_parse_iso. */
static void put_time(struct outbuf *b, int64_t mtime)
{
	char s[TIMEFMT_ISO_SIZE];

	if (mtime < TIMEFMT_YEAR0_START || mtime > TIMEFMT_YEAR9999_END)
		mtime = 0;
	puts_(b, timefmt_iso(mtime, s));
}

char *ctl_format(const struct rfolders *t, size_t *len)
{
	struct outbuf b = { 0 };

	puts_(&b, CTL_HEADER);
	for (size_t i = 0; i < rfolders_count(t); i++) {
		const struct rfolder_row *row = rfolders_row(t, i);
		const char *flags = rfolders_row_flags(row);

		put_field(&b, row->cls);
		put(&b, "\t", 1);
		put_field(&b, row->folder);
		put(&b, "\t", 1);
		put_time(&b, row->mtime);
		if (flags[0]) {
			put(&b, "\t", 1);
			puts_(&b, flags);
		}
		put(&b, "\n", 1);
	}
	if (b.oom) {
		free(b.p);
		return NULL;
	}
	*len = b.len;
	return b.p;
}

/* One escape after the backslash at s[*i - 1]; -1 when invalid or NUL. */
static int unescape(const char *s, size_t len, size_t *i)
{
	int hi, lo;

	if (*i >= len)
		return -1;
	switch (s[(*i)++]) {
	case '"':
		return '"';
	case '\\':
		return '\\';
	case 't':
		return '\t';
	case 'n':
		return '\n';
	case 'r':
		return '\r';
	case 'x':
		if (len - *i < 2 || (hi = chars_hex_value(s[*i])) < 0 ||
		    (lo = chars_hex_value(s[*i + 1])) < 0)
			return -1;
		*i += 2;
		return hi || lo ? hi * 16 + lo : -1;
	default:
		return -1;
	}
}

/* s[0] is '"': decodes up to the closing quote into *out; *used counts the
 * bytes taken, quotes included. */
static int unquote(const char *s, size_t len, size_t *used, char **out)
{
	char *o = malloc(len), *q = o;
	size_t i = 1;
	int c;

	if (!o)
		return -ENOMEM;
	while (i < len && s[i] != '"') {
		c = (unsigned char)s[i++];
		if (c == '\\' && (c = unescape(s, len, &i)) < 0)
			i = len; /* bad escape: as bad as no closing quote */
		else
			*q++ = (char)c;
	}
	if (i >= len) {
		free(o);
		return -EINVAL;
	}
	*q = '\0';
	*used = i + 1;
	*out = o;
	return 0;
}

static void trim(const char **s, size_t *len)
{
	while (*len && (*s)[0] == ' ')
		(*s)++, (*len)--;
	while (*len && (*s)[*len - 1] == ' ')
		(*len)--;
}

/* A whole field, trimmed; *out stays NULL for an empty unquoted one. */
static int parse_field(const char *s, size_t len, char **out)
{
	size_t used;
	int r;

	*out = NULL;
	trim(&s, &len);
	if (len == 0)
		return 0;
	if (s[0] != '"')
		return (*out = strndup(s, len)) ? 0 : -ENOMEM;
	if ((r = unquote(s, len, &used, out)) < 0)
		return r;
	if (used == len)
		return 0;
	free(*out);
	*out = NULL;
	return -EINVAL;
}

static int split_tabs(const char *line, size_t len, struct ctl_command *out)
{
	const char *tab = memchr(line, '\t', len), *end;
	int r;

	if ((r = parse_field(line, (size_t)(tab - line), &out->cls)) < 0 || !out->cls)
		return r < 0 ? r : -EINVAL;
	len -= (size_t)(tab + 1 - line);
	end = memchr(tab + 1, '\t', len);
	if ((r = parse_field(tab + 1, end ? (size_t)(end - tab - 1) : len, &out->folder)) < 0)
		return r;
	return out->folder ? 0 : -EINVAL;
}

static int split_space(const char *line, size_t len, struct ctl_command *out)
{
	size_t used;
	int r;

	trim(&line, &len);
	if (line[0] == '"') {
		if ((r = unquote(line, len, &used, &out->cls)) < 0)
			return r;
		if (used < len && line[used] != ' ')
			return -EINVAL;
	} else {
		const char *sp = memchr(line, ' ', len);

		used = sp ? (size_t)(sp - line) : len;
		if (!(out->cls = strndup(line, used)))
			return -ENOMEM;
	}
	return parse_field(line + used, len - used, &out->folder);
}

static bool ascii_only(const char *s)
{
	for (; *s; s++)
		if (*s & 0x80)
			return false;
	return true;
}

void ctl_command_free(struct ctl_command *c)
{
	free(c->cls);
	free(c->folder);
	*c = (struct ctl_command){ CTL_NOTHING, NULL, NULL };
}

int ctl_parse_line(const char *line, size_t len, struct ctl_command *out)
{
	size_t skip = 0;
	int r;

	*out = (struct ctl_command){ CTL_NOTHING, NULL, NULL };
	if (len && line[len - 1] == '\r')
		len--;
	if (memchr(line, '\0', len))
		return -EINVAL;
	while (skip < len && (line[skip] == ' ' || line[skip] == '\t'))
		skip++;
	if (skip == len || line[skip] == '#')
		return 0;
	if (memchr(line, '\t', len))
		r = split_tabs(line, len, out);
	else
		r = split_space(line, len, out);
	if (r == 0 &&
	    (!ascii_only(out->cls) || (out->folder && !utf8_valid(out->folder, strlen(out->folder)))))
		r = -EINVAL;
	if (r < 0) {
		ctl_command_free(out);
		return r;
	}
	out->op = out->folder ? CTL_SET : CTL_DELETE;
	return 0;
}

struct ctl_writer {
	char *buf; /* owned: the partial line, up to CTL_LINE_MAX bytes */
	size_t len;
	bool skip; /* dropping the rest of a line after an error */
};

struct ctl_writer *ctl_writer_new(void)
{
	return calloc(1, sizeof(struct ctl_writer));
}

void ctl_writer_free(struct ctl_writer *w)
{
	if (!w)
		return;
	free(w->buf);
	free(w);
}

static int keep(struct ctl_writer *w, const char *data, size_t len)
{
	char *buf;

	if (len > CTL_LINE_MAX - w->len)
		return -EINVAL;
	if (!len)
		return 0;
	if (!(buf = realloc(w->buf, w->len + len)))
		return -ENOMEM;
	memcpy(buf + w->len, data, len);
	w->buf = buf;
	w->len += len;
	return 0;
}

static int apply_line(const char *line, size_t len, ctl_apply_fn *apply, void *ctx)
{
	struct ctl_command c;
	int r;

	if (len > CTL_LINE_MAX)
		return -EINVAL;
	if ((r = ctl_parse_line(line, len, &c)) < 0)
		return r;
	if (c.op != CTL_NOTHING)
		r = apply(&c, ctx);
	ctl_command_free(&c);
	return r;
}

/* A complete line: seg joins the kept partial line, if there is one. */
static int complete_line(struct ctl_writer *w, const char *seg, size_t len, ctl_apply_fn *apply, void *ctx)
{
	int r;

	if (w->len == 0)
		return apply_line(seg, len, apply, ctx);
	if ((r = keep(w, seg, len)) == 0)
		r = apply_line(w->buf, w->len, apply, ctx);
	w->len = 0;
	return r;
}

int ctl_writer_feed(struct ctl_writer *w, const char *data, size_t len, ctl_apply_fn *apply, void *ctx)
{
	size_t at = 0;
	int r = 0;

	while (at < len && r == 0) {
		const char *nl = memchr(data + at, '\n', len - at);
		size_t seg = nl ? (size_t)(nl - (data + at)) : len - at;

		if (w->skip)
			w->skip = !nl;
		else if (nl)
			r = complete_line(w, data + at, seg, apply, ctx);
		else
			r = keep(w, data + at, seg);
		at += seg + 1;
	}
	if (r < 0) {
		w->len = 0;
		/* what was dropped ends inside a line: drop its continuation too */
		w->skip = at < len ? data[len - 1] != '\n' : at > len;
	}
	return r;
}

int ctl_writer_finish(struct ctl_writer *w, ctl_apply_fn *apply, void *ctx)
{
	int r = 0;

	if (w->len && !w->skip)
		r = apply_line(w->buf, w->len, apply, ctx);
	w->len = 0;
	w->skip = false;
	return r;
}

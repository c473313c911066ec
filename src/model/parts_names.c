/* parts_names.c - owns the listing of a `.parts` directory and its names
 * (parts_names.h): which parts are files, and what each file is called. */
#include "parts_names.h"
#include "mapi/mime.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_SEGMENTS 100 /* RFC 2231 continuations joined, at most */

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* %XX decoded in place (a stray % kept). */
static void percent_decode(char *s)
{
	char *out = s;

	for (char *p = s; *p; p++) {
		int hi, lo;

		if (*p == '%' && (hi = hex_value(p[1])) >= 0 && (lo = hex_value(p[2])) >= 0) {
			*out++ = (char)(hi << 4 | lo);
			p += 2;
		} else {
			*out++ = *p;
		}
	}
	*out = 0;
}

/* bytes in charset as UTF-8: through an RFC 2047 word, so the header
 * decoder's iconv and its fallbacks do the work. */
static char *to_utf8(const char *charset, const char *bytes)
{
	size_t len = strlen(bytes), cl = strlen(charset);
	char *word, *p, *out;

	if (cl == 0 || strcasecmp(charset, "utf-8") == 0 || strcasecmp(charset, "us-ascii") == 0 ||
	    strspn(charset, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:") != cl)
		return names_decode_header(bytes, len); /* valid UTF-8 kept, the rest repaired */
	word = malloc(cl + 3 * len + 8);
	if (!word)
		return NULL;
	p = word + sprintf(word, "=?%s?Q?", charset);
	for (const unsigned char *b = (const unsigned char *)bytes; *b; b++)
		p += isalnum(*b) ? sprintf(p, "%c", *b) : sprintf(p, "=%02X", *b);
	strcpy(p, "?=");
	out = names_decode_header(word, strlen(word));
	free(word);
	return out;
}

/* "name*N" or "name*N*": N, and whether it is percent-encoded; -1 when the
 * parameter is no segment of name. */
static long segment_of(const char *param, const char *name, bool *encoded)
{
	size_t nl = strlen(name);
	char *end;
	long k;

	if (strncmp(param, name, nl) != 0 || param[nl] != '*' || !isdigit((unsigned char)param[nl + 1]))
		return -1;
	k = strtol(param + nl + 1, &end, 10);
	*encoded = *end == '*';
	if (*encoded)
		end++;
	return *end || k >= MAX_SEGMENTS ? -1 : k;
}

/* RFC 2231: name*= or the joined name*0= name*1= ...; NULL when absent. */
static char *extended_param(const struct mime_param *params, size_t n, const char *name)
{
	size_t nl = strlen(name), len = 0;
	char *joined = NULL, *charset = NULL, *value, *out;
	bool encoded = false;

	for (size_t i = 0; i < n; i++)
		if (strncmp(params[i].name, name, nl) == 0 && strcmp(params[i].name + nl, "*") == 0) {
			joined = strdup(params[i].value);
			encoded = true;
		}
	for (long k = 0; !joined || k > 0; k++) {
		const struct mime_param *seg = NULL;
		bool enc = false;
		char *more;

		for (size_t i = 0; i < n && !seg; i++)
			if (segment_of(params[i].name, name, &enc) == k)
				seg = &params[i];
		if (!seg)
			break;
		if (k == 0)
			encoded = enc;
		more = realloc(joined, len + strlen(seg->value) * 3 + 1);
		if (!more)
			break;
		joined = more;
		strcpy(joined + len, seg->value);
		if (k > 0 && enc != encoded) { /* mixed: keep them apart as %XX */
			char *p = joined + len, *q = strdup(p);

			for (char *r = q; r && *r; r++)
				p += sprintf(p, "%%%02X", (unsigned char)*r);
			free(q);
		}
		len = strlen(joined);
	}
	if (!joined)
		return NULL;
	value = joined;
	if (encoded) {
		char *q1 = strchr(joined, '\''), *q2 = q1 ? strchr(q1 + 1, '\'') : NULL;

		if (q1 && q2) {
			*q1 = 0;
			charset = joined;
			value = q2 + 1;
		}
		percent_decode(value);
	}
	out = to_utf8(charset ? charset : "", value);
	free(joined);
	return out;
}

char *parts_param(const struct mime_param *params, size_t n, const char *name)
{
	char *v = extended_param(params, n, name);

	for (size_t i = 0; i < n && !v; i++)
		if (strcmp(params[i].name, name) == 0)
			v = names_decode_header(params[i].value, strlen(params[i].value));
	return v;
}

bool parts_is_attached(const struct mime_part *p)
{
	return mime_is(p, "message", "rfc822");
}

static const char *extension_of(const char *subtype)
{
	static const char *const table[][2] = {
		{ "plain", "txt" },  { "jpeg", "jpg" },         { "calendar", "ics" },
		{ "rfc822", "eml" }, { "octet-stream", "bin" },
	};

	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (strcmp(subtype, table[i][0]) == 0)
			return table[i][1];
	return subtype;
}

void parts_entry_name(const struct mime_part *p, char *buf)
{
	bool attached = parts_is_attached(p);
	size_t at = (size_t)snprintf(buf, NAMES_MAX + 1, "%s ", p->part_id ? p->part_id : "1");
	size_t room = NAMES_MAX - at - (attached ? strlen(PARTS_EML) + strlen(PARTS_SUFFIX) : 0);
	char *file = parts_param(p->dparams, p->ndparams, "filename");
	size_t n = 0;

	if (!file && p->disposition_filename)
		file = names_decode_header(p->disposition_filename, strlen(p->disposition_filename));
	if (!file)
		file = parts_param(p->params, p->nparams, "name");
	if (file)
		n = names_clean(buf + at, room, file);
	free(file);
	if (attached && n >= strlen(PARTS_EML) && strncasecmp(buf + at + n - 4, PARTS_EML, 4) == 0)
		n -= strlen(PARTS_EML);
	if (n == 0 && attached) {
		n = (size_t)snprintf(buf + at, room + 1, "message");
	} else if (n == 0) {
		char plain[2 * NAMES_MAX];

		snprintf(plain, sizeof(plain), "%s.%s", p->type ? p->type : "text",
			 extension_of(p->subtype ? p->subtype : "plain"));
		n = names_clean(buf + at, room, plain);
	}
	snprintf(buf + at + n, NAMES_MAX + 1 - at - n, "%s", attached ? PARTS_EML : "");
}

/* The attached message at section dir, anywhere in p. */
static const struct mime_part *find_attached(const struct mime_part *p, const char *dir)
{
	const struct mime_part *found = NULL;

	if (parts_is_attached(p) && p->part_id && strcmp(p->part_id, dir) == 0)
		return p;
	for (size_t i = 0; i < p->nchildren && !found; i++)
		found = find_attached(&p->children[i], dir);
	if (!found && p->message)
		found = find_attached(p->message, dir);
	return found;
}

struct collect {
	struct part_entry *v;
	size_t n, cap;
	int err;
};

static void collect_leaves(const struct mime_part *p, struct collect *c)
{
	if (mime_is(p, "multipart", NULL)) {
		for (size_t i = 0; i < p->nchildren; i++)
			collect_leaves(&p->children[i], c);
		return;
	}
	if (c->n == c->cap) {
		size_t cap = c->cap ? 2 * c->cap : 8;
		struct part_entry *v = realloc(c->v, cap * sizeof(*v));

		if (!v) {
			c->err = -ENOMEM;
			return;
		}
		c->v = v;
		c->cap = cap;
	}
	c->v[c->n].part = p;
	c->v[c->n].attached = parts_is_attached(p);
	parts_entry_name(p, c->v[c->n].name);
	c->n++;
}

int parts_entries(const struct mime_message *m, const char *dir, struct part_entry **out, size_t *n)
{
	const struct mime_part *top = &m->root;
	struct collect c = { 0 };

	if (*dir) {
		const struct mime_part *a = find_attached(&m->root, dir);

		if (!a)
			return -ENOENT;
		top = a->message;
	}
	if (top)
		collect_leaves(top, &c);
	if (c.err) {
		free(c.v);
		return c.err;
	}
	*out = c.v;
	*n = c.n;
	return 0;
}

static bool is_b64(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
	       c == '/';
}

/* Length of the base64 run at s (at most n bytes), '=' padding included. */
static size_t b64_run(const char *s, size_t n, size_t *pad)
{
	size_t i = 0;

	*pad = 0;
	while (i < n && is_b64(s[i]))
		i++;
	while (i < n && s[i] == '=' && *pad < 2) {
		i++;
		(*pad)++;
	}
	return i;
}

int parts_base64_size(const char *head, size_t hlen, const char *tail, size_t tlen, uint64_t octets,
		      uint64_t *size)
{
	size_t line, eol, pad, end = tlen, last_start, last, trailing;
	uint64_t body, full;

	/* the first line: its length and its line break */
	line = b64_run(head, hlen, &pad);
	if (line == 0 || pad || line % 4 || line >= hlen)
		return -EINVAL;
	eol = head[line] == '\r' && line + 1 < hlen && head[line + 1] == '\n' ? 2
	      : head[line] == '\n'                                            ? 1
									      : 0;
	if (eol == 0)
		return -EINVAL;
	/* every other whole line of the head as long */
	for (size_t at = line + eol; at + line + eol <= hlen; at += line + eol) {
		size_t n = b64_run(head + at, hlen - at, &pad);

		if (n != line || pad || memcmp(head + at + n, head + line, eol) != 0)
			return -EINVAL;
	}
	/* the tail: trailing line breaks and spaces, then the last line */
	while (end > 0 && (tail[end - 1] == '\r' || tail[end - 1] == '\n' || tail[end - 1] == ' ' ||
			   tail[end - 1] == '\t'))
		end--;
	trailing = tlen - end;
	last_start = end;
	while (last_start > 0 && tail[last_start - 1] != '\n')
		last_start--;
	if (last_start == 0 && tlen < octets)
		return -EINVAL; /* the last line is longer than the tail */
	last = end - last_start;
	if (b64_run(tail + last_start, last, &pad) != last || last == 0 || last > line || last % 4)
		return -EINVAL;
	/* the tail's whole lines before the last are as long as the first */
	for (size_t at = last_start; at >= line + eol + 1 && tail[at - 1] == '\n';) {
		size_t start = at - eol - line;
		size_t p2;

		if (memcmp(tail + at - eol, head + line, eol) != 0 ||
		    b64_run(tail + start, line, &p2) != line || p2 || (start > 0 && tail[start - 1] != '\n'))
			return -EINVAL;
		at = start;
		if (at < line + eol)
			break;
	}
	if (octets < trailing + last)
		return -EINVAL;
	body = octets - trailing - last;
	if (body % (line + eol))
		return -EINVAL;
	full = body / (line + eol);
	*size = (full * line + last) / 4 * 3 - pad;
	return 0;
}

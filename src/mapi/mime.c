/* mime.c - owns the MIME parser: header fields, Content-Type parameters,
 * multipart splitting and the transfer decoders.  Input is hostile: every
 * loop is bounded by the input, nesting by MIME_MAX_DEPTH and the tree by
 * MIME_MAX_PARTS, and nothing recurses except along the (bounded) tree. */
#include "mime.h"
#include "util/chars.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_PARAMS 64    /* Content-Type parameters kept per part */
#define MAX_BOUNDARY 200 /* RFC 2046 allows 70; be lenient */

enum {
	H_CTYPE,
	H_CTE,
	H_CDISP,
	H_CCLASS,
	H_CORREL,
	H_N
};

static const char *const hdr_names[H_N] = {
	"content-type",  "content-transfer-encoding", "content-disposition",
	"content-class", "x-ms-tnef-correlator",
};

struct parser {
	size_t nparts;
};

static char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static bool is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* RFC 2045 token characters */
static bool is_token(char c)
{
	return c > 0x20 && c < 0x7f && !strchr("()<>@,;:\\\"/[]?=", c);
}

bool mime_is(const struct mime_part *p, const char *type, const char *subtype)
{
	return p->type && strcasecmp(p->type, type) == 0 &&
	       (!subtype || (p->subtype && strcasecmp(p->subtype, subtype) == 0));
}

const char *mime_param(const struct mime_part *p, const char *name)
{
	for (size_t i = 0; i < p->nparams; i++)
		if (p->params[i].name && strcasecmp(p->params[i].name, name) == 0)
			return p->params[i].value;
	return NULL;
}

/* The line at pos ends at the returned index (before CR LF or LF); *next is
 * the start of the following line. */
static size_t line_end(const char *d, size_t len, size_t pos, size_t *next)
{
	const char *nl = memchr(d + pos, '\n', len - pos);
	size_t e = nl ? (size_t)(nl - d) : len;

	*next = nl ? e + 1 : len;
	if (e > pos && d[e - 1] == '\r')
		e--;
	return e;
}

/* A field value without its line breaks, trimmed. */
static char *unfold(const char *s, size_t n)
{
	char *v = malloc(n + 1), *w = v;

	if (!v)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (s[i] != '\r' && s[i] != '\n')
			*w++ = s[i] ? s[i] : ' ';
	*w = '\0';
	while (w > v && is_ws(w[-1]))
		*--w = '\0';
	w = v;
	while (is_ws(*w))
		w++;
	memmove(v, w, strlen(w) + 1);
	return v;
}

/* The field name of a header line, or 0 when it is not one. */
static size_t field_name_len(const char *s, size_t n)
{
	size_t i = 0;

	while (i < n && s[i] > 0x20 && s[i] < 0x7f && s[i] != ':')
		i++;
	if (i == 0)
		return 0;
	for (size_t j = i; j < n; j++) { /* "Name  :" is tolerated */
		if (s[j] == ':')
			return i;
		if (s[j] != ' ' && s[j] != '\t')
			return 0;
	}
	return 0;
}

static int keep_field(const char *d, size_t start, size_t end, size_t namelen, char *h[H_N])
{
	const char *colon = memchr(d + start, ':', end - start);

	for (int k = 0; k < H_N; k++) {
		if (h[k] || strlen(hdr_names[k]) != namelen ||
		    strncasecmp(d + start, hdr_names[k], namelen) != 0)
			continue;
		h[k] = unfold(colon + 1, end - (size_t)(colon + 1 - d));
		return h[k] ? 0 : -ENOMEM;
	}
	return 0;
}

/* Reads the header block; the first field of each wanted name goes into h.
 * *body_at is where the body starts.  A line that is not a field ends the
 * header (malformed input keeps that line in the body). */
static int read_headers(const char *d, size_t len, char *h[H_N], size_t *body_at)
{
	size_t pos = 0, next, e;

	e = line_end(d, len, 0, &next);
	if (len >= 5 && memcmp(d, "From ", 5) == 0) /* an mbox separator */
		pos = next;
	while (pos < len) {
		size_t start = pos, nlen;

		e = line_end(d, len, pos, &next);
		if (e == pos) {
			*body_at = next;
			return 0;
		}
		nlen = field_name_len(d + pos, e - pos);
		if (!nlen)
			break;
		while (next < len && (d[next] == ' ' || d[next] == '\t'))
			e = line_end(d, len, next, &next);
		if (keep_field(d, start, e, nlen, h) < 0)
			return -ENOMEM;
		pos = next;
	}
	*body_at = pos;
	return 0;
}

/* Skips white space and (nested) comments. */
static const char *skip_cfws(const char *s)
{
	for (;;) {
		int depth = 0;

		while (is_ws(*s))
			s++;
		if (*s != '(')
			return s;
		for (; *s; s++) {
			if (*s == '\\' && s[1])
				s++;
			else if (*s == '(')
				depth++;
			else if (*s == ')' && --depth == 0) {
				s++;
				break;
			}
		}
	}
}

static char *dup_lower(const char *s, size_t n)
{
	char *v = malloc(n + 1);

	if (!v)
		return NULL;
	for (size_t i = 0; i < n; i++)
		v[i] = lower(s[i]);
	v[n] = '\0';
	return v;
}

static size_t token_len(const char *s)
{
	size_t n = 0;

	while (is_token(s[n]))
		n++;
	return n;
}

/* A quoted-string (at the '"') or a lenient bare value: unquoted boundaries
 * often hold '=' or '/', so a bare value runs to ';' or white space. */
static char *read_value(const char **sp)
{
	const char *s = *sp;
	size_t n = 0;
	char *v;

	if (*s != '"') {
		while (s[n] && s[n] != ';' && !is_ws(s[n]))
			n++;
		*sp = s + n;
		v = malloc(n + 1);
		if (v) {
			memcpy(v, s, n);
			v[n] = '\0';
		}
		return v;
	}
	v = malloc(strlen(s) + 1);
	if (!v)
		return NULL;
	for (s++; *s && *s != '"'; s++) {
		if (*s == '\\' && s[1])
			s++;
		v[n++] = *s;
	}
	v[n] = '\0';
	*sp = *s ? s + 1 : s;
	return v;
}

/* RFC 2231 extended value: drops charset'language' (first section only) and
 * decodes %XX in place.  NUL bytes are dropped. */
static void decode_2231(char *v, bool first)
{
	char *r = v, *w = v, *q;

	if (first && (q = strchr(v, '\'')) && (q = strchr(q + 1, '\'')))
		r = q + 1;
	for (; *r; r++) {
		int hi, lo;

		if (*r == '%' && (hi = chars_hex_value(r[1])) >= 0 && (lo = chars_hex_value(r[2])) >= 0) {
			r += 2;
			if (hi || lo)
				*w++ = (char)(hi * 16 + lo);
		} else {
			*w++ = *r;
		}
	}
	*w = '\0';
}

static struct mime_param *find_param(struct mime_param *ps, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(ps[i].name, name) == 0)
			return &ps[i];
	return NULL;
}

static int append_value(struct mime_param *p, const char *more)
{
	size_t a = strlen(p->value), b = strlen(more);
	char *v = realloc(p->value, a + b + 1);

	if (!v)
		return -ENOMEM;
	memcpy(v + a, more, b + 1);
	p->value = v;
	return 0;
}

/* Adds name=value (both malloc'd, taken over) to the list, joining RFC 2231
 * sections in the order they come. */
static int add_param(struct mime_param **ps, size_t *n, char *name, char *value)
{
	char *star = strchr(name, '*');
	bool extended = false, cont = false;
	struct mime_param *old, *grown;

	if (star) {
		extended = star[strlen(star) - 1] == '*';
		cont = star[1] >= '0' && star[1] <= '9' && strtoul(star + 1, NULL, 10) > 0;
		*star = '\0';
		if (extended)
			decode_2231(value, !cont);
	}
	old = find_param(*ps, *n, name);
	if (old && (cont || star)) {
		int r = cont ? append_value(old, value) : 0;

		if (!cont) { /* name*= or name*0= replaces a plain name= */
			free(old->value);
			old->value = value;
			value = NULL;
		}
		free(name);
		free(value);
		return r;
	}
	if (old || *n >= MAX_PARAMS) {
		free(name);
		free(value);
		return 0;
	}
	grown = realloc(*ps, (*n + 1) * sizeof(**ps));
	if (!grown) {
		free(name);
		free(value);
		return -ENOMEM;
	}
	*ps = grown;
	grown[*n].name = name;
	grown[*n].value = value;
	(*n)++;
	return 0;
}

/* ";" name "=" value, repeated, from s on.  Stops at the first thing that
 * does not parse. */
static int parse_params(const char *s, struct mime_param **ps, size_t *n)
{
	for (int seen = 0; seen < MAX_PARAMS * 4; seen++) { /* bounds RFC 2231 appends */
		char *name, *value;
		size_t nl;

		s = skip_cfws(s);
		if (*s != ';')
			return 0;
		s = skip_cfws(s + 1);
		nl = token_len(s);
		if (!nl || *skip_cfws(s + nl) != '=') {
			s += nl; /* a stray ';' or a name without value */
			continue;
		}
		name = dup_lower(s, nl);
		if (!name)
			return -ENOMEM;
		s = skip_cfws(skip_cfws(s + nl) + 1);
		value = read_value(&s);
		if (!value) {
			free(name);
			return -ENOMEM;
		}
		if (add_param(ps, n, name, value) < 0)
			return -ENOMEM;
	}
	return 0;
}

static void free_params(struct mime_param *ps, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(ps[i].name);
		free(ps[i].value);
	}
	free(ps);
}

/* Content-Type; an absent or unparsable one gives the default. */
static int parse_ctype(struct mime_part *p, const char *v, const char *deftype, const char *defsub)
{
	const char *s = v ? skip_cfws(v) : "", *sub;
	size_t tl = token_len(s), sl = 0;

	sub = skip_cfws(s + tl);
	if (tl && *sub == '/') {
		sub = skip_cfws(sub + 1);
		sl = token_len(sub);
	}
	if (!sl) {
		p->type = strdup(deftype);
		p->subtype = strdup(defsub);
		return p->type && p->subtype ? 0 : -ENOMEM;
	}
	p->type = dup_lower(s, tl);
	p->subtype = dup_lower(sub, sl);
	if (!p->type || !p->subtype)
		return -ENOMEM;
	return parse_params(sub + sl, &p->params, &p->nparams);
}

static int parse_disposition(struct mime_part *p, const char *v)
{
	struct mime_param *ps = NULL;
	size_t n = 0;
	const char *s = skip_cfws(v), *fn;
	int r;

	r = parse_params(s + token_len(s), &ps, &n);
	for (size_t i = 0; r == 0 && i < n; i++) {
		if (strcmp(ps[i].name, "filename") == 0 && (fn = ps[i].value) != NULL) {
			p->disposition_filename = strdup(fn);
			if (!p->disposition_filename)
				r = -ENOMEM;
		}
	}
	free_params(ps, n);
	return r;
}

static int parse_encoding(struct mime_part *p, const char *v)
{
	const char *s = skip_cfws(v);

	p->encoding = dup_lower(s, token_len(s));
	return p->encoding ? 0 : -ENOMEM;
}

static int parse_part(struct parser *ps, struct mime_part *p, const char *d, size_t len, int depth,
		      struct mime_message *top, const char *deftype, const char *defsub);

/* Whether the line is "--boundary" or "--boundary--" (then *close). */
static bool is_delimiter(const char *s, size_t n, const char *b, size_t bl, bool *close)
{
	if (n < bl + 2 || s[0] != '-' || s[1] != '-' || memcmp(s + 2, b, bl) != 0)
		return false;
	s += bl + 2;
	n -= bl + 2;
	*close = n >= 2 && s[0] == '-' && s[1] == '-';
	if (*close)
		return true;
	for (size_t i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t')
			return false;
	return true;
}

static char *child_id(const char *parent, size_t n)
{
	size_t size = strlen(parent) + 24;
	char *id = malloc(size);

	if (id)
		snprintf(id, size, *parent ? "%s.%zu" : "%s%zu", parent, n);
	return id;
}

static int add_child(struct parser *ps, struct mime_part *p, const char *d, size_t len, int depth)
{
	struct mime_part *grown, *c;
	bool digest = mime_is(p, "multipart", "digest");

	if (ps->nparts >= MIME_MAX_PARTS)
		return 0;
	if ((p->nchildren & (p->nchildren - 1)) == 0) { /* capacity: powers of two */
		grown = realloc(p->children, (p->nchildren ? 2 * p->nchildren : 1) * sizeof(*grown));
		if (!grown)
			return -ENOMEM;
		p->children = grown;
	}
	c = &p->children[p->nchildren++];
	memset(c, 0, sizeof(*c));
	ps->nparts++;
	c->part_id = child_id(p->part_id, p->nchildren);
	if (!c->part_id)
		return -ENOMEM;
	return parse_part(ps, c, d, len, depth + 1, NULL, digest ? "message" : "text",
			  digest ? "rfc822" : "plain");
}

/* Splits a multipart body at its boundary.  Preamble and epilogue are
 * dropped; an unterminated last part runs to the end. */
static int split_multipart(struct parser *ps, struct mime_part *p, int depth)
{
	const char *b = mime_param(p, "boundary"), *d = p->body;
	size_t bl = b ? strlen(b) : 0, len = p->body_len, pos = 0, next, start = 0;
	bool open = false, close = false;
	int r;

	if (!bl || bl > MAX_BOUNDARY)
		return 0;
	while (pos < len && !close) {
		size_t e = line_end(d, len, pos, &next);

		if (is_delimiter(d + pos, e - pos, b, bl, &close)) {
			if (open) {
				size_t end = pos;

				if (end > start && d[end - 1] == '\n')
					end--;
				if (end > start && d[end - 1] == '\r')
					end--;
				r = add_child(ps, p, d + start, end - start, depth);
				if (r < 0)
					return r;
			}
			open = true;
			start = next;
		}
		pos = next;
	}
	if (open && !close)
		return add_child(ps, p, d + start, len - start, depth);
	return 0;
}

static int parse_part(struct parser *ps, struct mime_part *p, const char *d, size_t len, int depth,
		      struct mime_message *top, const char *deftype, const char *defsub)
{
	char *h[H_N] = { 0 };
	size_t body_at = len;
	int r;

	r = read_headers(d, len, h, &body_at);
	if (r == 0)
		r = parse_ctype(p, h[H_CTYPE], deftype, defsub);
	if (r == 0 && h[H_CTE])
		r = parse_encoding(p, h[H_CTE]);
	if (r == 0 && h[H_CDISP])
		r = parse_disposition(p, h[H_CDISP]);
	if (r == 0 && top) {
		p->part_id = strdup(mime_is(p, "multipart", NULL) ? "" : "1");
		top->content_class = h[H_CCLASS];
		top->tnef_correlator = h[H_CORREL];
		h[H_CCLASS] = h[H_CORREL] = NULL;
		if (!p->part_id)
			r = -ENOMEM;
	}
	for (int k = 0; k < H_N; k++)
		free(h[k]);
	p->body = d + body_at;
	p->body_len = len - body_at;
	if (r == 0 && depth < MIME_MAX_DEPTH && mime_is(p, "multipart", NULL))
		r = split_multipart(ps, p, depth);
	return r;
}

int mime_parse(const char *data, size_t len, struct mime_message *out)
{
	struct parser ps = { 1 };
	int r;

	memset(out, 0, sizeof(*out));
	if (!data) {
		data = "";
		len = 0;
	}
	r = parse_part(&ps, &out->root, data, len, 0, out, "text", "plain");
	if (r < 0)
		mime_free(out);
	return r;
}

static void free_part(struct mime_part *p)
{
	for (size_t i = 0; i < p->nchildren; i++)
		free_part(&p->children[i]);
	free(p->children);
	free_params(p->params, p->nparams);
	free(p->type);
	free(p->subtype);
	free(p->disposition_filename);
	free(p->encoding);
	free(p->part_id);
}

void mime_free(struct mime_message *m)
{
	free_part(&m->root);
	free(m->content_class);
	free(m->tnef_correlator);
	memset(m, 0, sizeof(*m));
}

static size_t decode_base64(const char *in, size_t len, char *out)
{
	unsigned acc = 0;
	int bits = 0;
	size_t n = 0;

	for (size_t i = 0; i < len && in[i] != '='; i++) {
		int v = chars_base64_value(in[i]);

		if (v < 0)
			continue;
		acc = (acc << 6 | (unsigned)v) & 0xffffff;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[n++] = (char)((acc >> bits) & 0xff);
		}
	}
	return n;
}

static size_t decode_qp(const char *in, size_t len, char *out)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		int hi, lo;

		if (in[i] != '=') {
			out[n++] = in[i];
		} else if (i + 2 < len && (hi = chars_hex_value(in[i + 1])) >= 0 &&
			   (lo = chars_hex_value(in[i + 2])) >= 0) {
			out[n++] = (char)(hi * 16 + lo);
			i += 2;
		} else {
			size_t j = i + 1; /* soft line break: "=", blanks, EOL */

			while (j < len && (in[j] == ' ' || in[j] == '\t'))
				j++;
			if (j < len && in[j] == '\r')
				j++;
			if (j < len && in[j] == '\n')
				i = j;
			else if (j >= len)
				i = len;
			else
				out[n++] = '=';
		}
	}
	return n;
}

int mime_decode(const char *encoding, const char *in, size_t len, char **out, size_t *outlen)
{
	char *buf = malloc(len + 1);
	size_t n;

	*out = NULL;
	*outlen = 0;
	if (!buf)
		return -ENOMEM;
	if (encoding && strcasecmp(encoding, "base64") == 0) {
		n = decode_base64(in, len, buf);
	} else if (encoding && strcasecmp(encoding, "quoted-printable") == 0) {
		n = decode_qp(in, len, buf);
	} else {
		if (len)
			memcpy(buf, in, len);
		n = len;
	}
	buf[n] = '\0';
	*out = buf;
	*outlen = n;
	return 0;
}

/* names_header.c - owns reading header fields: finding a field in a header
 * block, unfolding it, and decoding RFC 2047 encoded words to UTF-8 (with
 * stray 8-bit text taken as windows-1252), as names.h describes. */
#include "names.h"
#include "chars.h"
#include "strbuf.h"
#include "utf8.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The longest charset name taken from an encoded word: longer is no name
 * iconv knows. */
#define CHARSET_MAX 63

static bool is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* windows-1252 0x80..0x9F; the five holes keep their ISO-8859-1 value. */
#define C1_START 0x80
#define C1_END 0xA0
static const uint16_t cp1252_c1[C1_END - C1_START] = {
	0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
	0x2039, 0x0152, 0x008D, 0x017D, 0x008F, 0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
	0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178,
};

/* Copies text that should be UTF-8 but may not be: stray 8-bit bytes are
 * almost always windows-1252/latin-1 in mail headers, and NUL would cut
 * the C string short, so both are converted rather than refused. */
static void emit_text(struct strbuf *out, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;

	while (n > 0) {
		char enc[UTF8_MAX_BYTES];
		uint32_t cp;
		size_t len = utf8_decode(p, n, &cp);

		if (len == 0) { /* only a byte >= 0x80 can fail to decode */
			cp = *p < C1_END ? cp1252_c1[*p - C1_START] : *p;
			len = 1;
		} else if (cp == 0) {
			cp = UTF8_REPLACEMENT;
		}
		strbuf_add(out, enc, utf8_encode(cp, enc));
		p += len;
		n -= len;
	}
}

/* ---- RFC 2047 ------------------------------------------------------- */

/* The shortest encoded word: "=?" charset "?" B or Q "?" "?=" */
#define ENCODED_WORD_MIN 8

/* An encoded word; text points into the header. */
struct ew {
	char charset[CHARSET_MAX + 1];
	char enc; /* 'b' or 'q' */
	const char *text;
	size_t text_len;
	size_t raw_len; /* from "=?" to "?=" inclusive */
};

/* Only names iconv could know; keeps '/' and other oddities away from
 * iconv_open(). */
static bool is_charset_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c != '\0' && strchr("-_.:+", c));
}

/* Parses "charset[*lang]?" at s; returns bytes used including the '?'. */
static size_t parse_charset(const char *s, size_t n, struct ew *w)
{
	size_t i = 0;

	while (i < n && i < CHARSET_MAX && is_charset_char(s[i]))
		i++;
	if (i == 0)
		return 0;
	memcpy(w->charset, s, i);
	w->charset[i] = '\0';
	if (i < n && s[i] == '*') /* RFC 2231 language, irrelevant here */
		while (i < n && s[i] != '?' && !is_wsp(s[i]))
			i++;
	return i < n && s[i] == '?' ? i + 1 : 0;
}

/* Recognises "=?charset?X?text?=" at s. Spaces inside text are allowed
 * because some mailers leave them unencoded in Q words. */
static bool parse_ew(const char *s, size_t n, struct ew *w)
{
	const char *q;
	size_t i;

	if (n < ENCODED_WORD_MIN || s[0] != '=' || s[1] != '?')
		return false;
	i = 2 + parse_charset(s + 2, n - 2, w);
	if (i == 2 || i + 2 > n || s[i + 1] != '?')
		return false;
	w->enc = chars_ascii_lower(s[i]);
	if (w->enc != 'b' && w->enc != 'q')
		return false;
	w->text = s + i + 2;
	q = memchr(w->text, '?', n - i - 2);
	if (!q || q + 1 >= s + n || q[1] != '=')
		return false;
	w->text_len = (size_t)(q - w->text);
	w->raw_len = (size_t)(q + 2 - s);
	return true;
}

static bool decode_q(const char *s, size_t n, struct strbuf *b)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '_') {
			strbuf_addc(b, ' ');
		} else if (s[i] != '=') {
			strbuf_addc(b, s[i]);
		} else if (i + 2 < n && chars_hex_value(s[i + 1]) >= 0 && chars_hex_value(s[i + 2]) >= 0) {
			strbuf_addc(b, (char)(chars_hex_value(s[i + 1]) * 16 + chars_hex_value(s[i + 2])));
			i += 2;
		} else {
			return false;
		}
	}
	return true;
}

/* Padding is optional and spaces are skipped: both are common breakage. */
static bool decode_b(const char *s, size_t n, struct strbuf *b)
{
	uint32_t acc = 0;
	int bits = 0;
	size_t i = 0;

	for (; i < n && s[i] != '='; i++) {
		int v;

		if (is_wsp(s[i]))
			continue;
		v = chars_base64_value(s[i]);
		if (v < 0)
			return false;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			strbuf_addc(b, (char)((acc >> bits) & 0xFF));
		}
	}
	while (i < n && s[i] == '=')
		i++;
	return i == n && bits < 6;
}

static bool decode_payload(const struct ew *w, struct strbuf *b)
{
	b->len = 0;
	if (w->enc == 'q')
		return decode_q(w->text, w->text_len, b);
	return decode_b(w->text, w->text_len, b);
}

/* Adjacent encoded words in one charset form a group, converted in one go
 * so a character split across words (a common mailer bug) survives. */
struct decoder {
	struct strbuf *out;
	struct strbuf word;            /* payload of the word being looked at */
	struct strbuf group;           /* payload of the current group */
	char charset[CHARSET_MAX + 1]; /* the group's; "" when there is none */
	const char *raw;               /* the group's raw text */
	size_t raw_len;
	const char *lead; /* whitespace before the group */
	size_t lead_len;
	const char *ws; /* whitespace seen after the group */
	size_t ws_len;
	bool after_word; /* last thing emitted: a decoded word */
};

static int group_to_utf8(struct decoder *d, struct strbuf *utf8)
{
	int rc = strbuf_add_converted(utf8, "UTF-8", d->charset, d->group.data, d->group.len);

	if (rc == -ENOMEM || d->group.failed)
		d->out->failed = true;
	return rc;
}

static void flush_group(struct decoder *d)
{
	struct strbuf utf8 = { 0 };
	int rc;

	if (d->charset[0] == '\0')
		return;
	rc = group_to_utf8(d, &utf8);
	/* RFC 2047 6.2: whitespace between two decoded words is not shown */
	if (rc != 0 || !d->after_word)
		emit_text(d->out, d->lead, d->lead_len);
	if (rc == 0)
		emit_text(d->out, utf8.data, utf8.len);
	else
		emit_text(d->out, d->raw, d->raw_len);
	d->after_word = rc == 0;
	strbuf_free(&utf8);
	d->charset[0] = '\0';
	d->group.len = 0;
}

static bool group_wants_more(struct decoder *d, const struct ew *w)
{
	size_t n = strlen(d->charset);
	struct strbuf utf8 = { 0 };
	int rc;

	if (n == 0 || n != strlen(w->charset) || !chars_ascii_caseeq(d->charset, w->charset, n))
		return false;
	rc = group_to_utf8(d, &utf8);
	strbuf_free(&utf8);
	return rc == -EINVAL;
}

static void on_word(struct decoder *d, const char *at, const struct ew *w)
{
	if (group_wants_more(d, w)) {
		strbuf_add(&d->group, d->word.data, d->word.len);
		d->raw_len = (size_t)(at + w->raw_len - d->raw);
		d->ws_len = 0;
		return;
	}
	flush_group(d);
	memcpy(d->charset, w->charset, strlen(w->charset) + 1);
	strbuf_add(&d->group, d->word.data, d->word.len);
	d->raw = at;
	d->raw_len = w->raw_len;
	d->lead = d->ws;
	d->lead_len = d->ws_len;
	d->ws_len = 0;
}

static void on_wsp(struct decoder *d, const char *at, size_t n)
{
	if (d->charset[0] == '\0') {
		emit_text(d->out, at, n);
		return;
	}
	d->ws = at;
	d->ws_len = n;
}

static void on_end(struct decoder *d)
{
	flush_group(d);
	emit_text(d->out, d->ws, d->ws_len);
	d->ws_len = 0;
}

static void on_text(struct decoder *d, const char *at, size_t n)
{
	on_end(d);
	emit_text(d->out, at, n);
	d->after_word = false;
}

static size_t wsp_run(const char *s, size_t n)
{
	size_t i = 0;

	while (i < n && is_wsp(s[i]))
		i++;
	return i;
}

/* Plain text up to the next place an encoded word or whitespace could
 * start; taken as a whole so multi-byte UTF-8 characters stay together. */
static size_t text_run(const char *s, size_t n)
{
	size_t i = 1;

	while (i < n && s[i] != '=' && !is_wsp(s[i]))
		i++;
	return i;
}

static void decode_words(const char *s, size_t n, struct strbuf *out)
{
	struct decoder d = { .out = out };
	size_t i = 0;

	while (i < n) {
		struct ew w;
		size_t step;

		if (parse_ew(s + i, n - i, &w)) {
			step = w.raw_len;
			if (decode_payload(&w, &d.word))
				on_word(&d, s + i, &w);
			else
				on_text(&d, s + i, step);
		} else if ((step = wsp_run(s + i, n - i)) > 0) {
			on_wsp(&d, s + i, step);
		} else {
			step = text_run(s + i, n - i);
			on_text(&d, s + i, step);
		}
		i += step;
	}
	on_end(&d);
	if (d.word.failed)
		out->failed = true;
	strbuf_free(&d.word);
	strbuf_free(&d.group);
}

/* A line break followed by SP/TAB is folding and disappears; any other
 * is malformed and becomes a space rather than gluing words together. */
static void unfold(const char *s, size_t n, struct strbuf *out)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] != '\r' && s[i] != '\n') {
			strbuf_addc(out, s[i]);
			continue;
		}
		if (s[i] == '\r' && i + 1 < n && s[i + 1] == '\n')
			i++;
		if (i + 1 < n && !is_wsp(s[i + 1]))
			strbuf_addc(out, ' ');
	}
}

char *names_decode_header(const char *raw, size_t len)
{
	struct strbuf text = { 0 }, out = { 0 };

	if (raw)
		unfold(raw, len, &text);
	decode_words(text.data, text.len, &out);
	if (text.failed)
		out.failed = true;
	strbuf_free(&text);
	return strbuf_take(&out);
}

/* ---- header fields -------------------------------------------------- */

/* Returns the value start if line [s, end) is the field `name`, else NULL.
 * Whitespace before the colon is obsolete syntax (RFC 5322 4.5) but seen. */
static const char *field_value(const char *s, const char *end, const char *name)
{
	size_t n = strlen(name);

	if ((size_t)(end - s) < n + 1 || !chars_ascii_caseeq(s, name, n))
		return NULL;
	s += n;
	while (s < end && is_wsp(*s))
		s++;
	return s < end && *s == ':' ? s + 1 : NULL;
}

static const char *line_end(const char *s, const char *end)
{
	const char *nl = memchr(s, '\n', (size_t)(end - s));

	return nl ? nl : end;
}

static bool is_space_byte(char c)
{
	return is_wsp(c) || c == '\r' || c == '\n';
}

/* Finds field `name` in a header block; [*v, *e) is its value, folded
 * lines included, surrounding whitespace trimmed. */
static bool find_field(const char *block, size_t len, const char *name, const char **v, const char **e)
{
	const char *end = block ? block + len : block;

	for (const char *p = block; p && p < end;) {
		const char *eol = line_end(p, end);

		if (eol == p || (eol == p + 1 && *p == '\r'))
			break; /* empty line: end of the header */
		*v = field_value(p, eol, name);
		if (*v) {
			/* continuation lines start with SP/TAB */
			while (end - eol > 1 && is_wsp(eol[1]))
				eol = line_end(eol + 1, end);
			while (*v < eol && is_space_byte(**v))
				(*v)++;
			while (eol > *v && is_space_byte(eol[-1]))
				eol--;
			*e = eol;
			return true;
		}
		p = eol < end ? eol + 1 : end;
	}
	return false;
}

char *names_subject_from_headers(const char *block, size_t len)
{
	const char *v, *e;

	if (!find_field(block, len, "subject", &v, &e))
		return strdup("");
	return names_decode_header(v, (size_t)(e - v));
}

char *names_header_field(const char *block, size_t len, const char *name)
{
	const char *v, *e;
	struct strbuf text = { 0 };

	if (!find_field(block, len, name, &v, &e) || v == e)
		return NULL;
	unfold(v, (size_t)(e - v), &text);
	return strbuf_take(&text);
}

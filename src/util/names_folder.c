/* names_folder.c - owns folder names: modified UTF-7 (RFC 3501 5.1.3)
 * through iconv, and the mapping between server folder names and the
 * paths of the mount, with the characters a path may not hold (names.h). */
#include "names.h"
#include "chars.h"
#include "strbuf.h"
#include "utf8.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define INBOX "INBOX"
#define INBOX_LEN (sizeof(INBOX) - 1)
#define SLASH_STANDIN_LEN (sizeof(NAMES_SLASH_STANDIN) - 1)
#define UNICODE_LINE_SEPARATOR 0x2028
#define UNICODE_PARAGRAPH_SEPARATOR 0x2029
#define ZERO_WIDTH_NON_JOINER 0x200C
#define ZERO_WIDTH_JOINER 0x200D

/* Length of the span before the first sep (or the end); sep '\0' gives
 * strlen, which is what a flat namespace needs. */
static size_t span_until(const char *s, char sep)
{
	size_t n = 0;

	while (s[n] != '\0' && s[n] != sep)
		n++;
	return n;
}

/* What a folder name may not hold: C0, DEL and C1 controls, line and
 * paragraph separators, and format characters but for the zero-width
 * non-joiner and joiner, which Persian and Indic words need (and which
 * cannot reorder text). */
static bool bad_folder_cp(uint32_t cp)
{
	if (cp < 0x20 || (cp >= 0x7f && cp < 0xA0) || cp == UNICODE_LINE_SEPARATOR ||
	    cp == UNICODE_PARAGRAPH_SEPARATOR)
		return true;
	return utf8_is_format(cp) && cp != ZERO_WIDTH_NON_JOINER && cp != ZERO_WIDTH_JOINER;
}

/* True for invalid UTF-8 too. */
static bool bad_folder_text(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s);

	while (n > 0) {
		uint32_t cp;
		size_t len = utf8_decode(p, n, &cp);

		if (len == 0 || bad_folder_cp(cp))
			return true;
		p += len;
		n -= len;
	}
	return false;
}

/* ---- modified UTF-7 ------------------------------------------------- */

static int mutf7_convert(const char *to, const char *from, const char *in, struct strbuf *out)
{
	/* iconv wants a char * source; a copy spares us casting const away */
	char *copy = strdup(in);
	int rc;

	if (!copy)
		return -ENOMEM;
	rc = strbuf_add_converted(out, to, from, copy, strlen(copy));
	free(copy);
	return rc == -EILSEQ ? -EINVAL : rc;
}

int names_utf8_to_mutf7(const char *in, char **out)
{
	struct strbuf b = { 0 };

	if (!in || !out)
		return -EINVAL;
	*out = NULL;
	return strbuf_finish(&b, mutf7_convert("UTF-7-IMAP", "UTF-8", in, &b), out);
}

/* Canonical means encoding the decoded text gives back the input. */
static int check_canonical(const char *in, const char *utf8)
{
	char *again;
	int rc = names_utf8_to_mutf7(utf8, &again);

	if (rc == 0 && strcmp(again, in) != 0)
		rc = -EINVAL;
	free(again);
	return rc;
}

int names_mutf7_to_utf8(const char *in, char **out)
{
	struct strbuf b = { 0 };
	char *utf8 = NULL;
	int rc;

	if (!in || !out)
		return -EINVAL;
	*out = NULL;
	rc = mutf7_convert("UTF-8", "UTF-7-IMAP", in, &b);
	if (rc == 0 && b.len > 0 && memchr(b.data, '\0', b.len))
		rc = -EINVAL;
	rc = strbuf_finish(&b, rc, &utf8);
	if (rc == 0)
		rc = check_canonical(in, utf8);
	if (rc == 0)
		*out = utf8;
	else
		free(utf8);
	return rc;
}

/* ---- folder names <-> paths ----------------------------------------- */

/* '&' is refused because "&-" decodes to it, so it could not be told
 * apart from a delimiter after decoding. */
static bool delim_ok(char delim)
{
	unsigned char c = (unsigned char)delim;

	return c == '\0' || (c >= 0x20 && c < 0x7f && c != '&');
}

static int check_component(const char *s, size_t n)
{
	if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && !memcmp(s, "..", 2)))
		return -EINVAL;
	return 0;
}

static bool is_inbox(const char *s, size_t n)
{
	return n == INBOX_LEN && chars_ascii_caseeq(s, INBOX, INBOX_LEN);
}

static bool at_slash_standin(const char *s, size_t left)
{
	return left >= SLASH_STANDIN_LEN && !memcmp(s, NAMES_SLASH_STANDIN, SLASH_STANDIN_LEN);
}

static int add_server_component(struct strbuf *b, const char *s, size_t n, char delim, bool first)
{
	size_t start = b->len;

	if (first && is_inbox(s, n)) {
		strbuf_add(b, INBOX, INBOX_LEN);
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		if (delim == '/')
			strbuf_addc(b, s[i]);
		else if (s[i] == '/')
			strbuf_add(b, NAMES_SLASH_STANDIN, SLASH_STANDIN_LEN);
		else if (at_slash_standin(s + i, n - i))
			return -EINVAL;
		else
			strbuf_addc(b, s[i]);
	}
	return b->len - start > NAMES_MAX ? -ENAMETOOLONG : 0;
}

static int build_path(const char *name, char delim, struct strbuf *b)
{
	if (bad_folder_text(name))
		return -EINVAL;
	/* p++ steps over the delimiter that ended the previous component */
	for (const char *p = name;; p++) {
		size_t n = span_until(p, delim);
		int rc = check_component(p, n);

		if (rc == 0)
			rc = add_server_component(b, p, n, delim, p == name);
		if (rc != 0)
			return rc;
		p += n;
		if (*p == '\0')
			return 0;
		strbuf_addc(b, '/');
	}
}

int names_folder_to_path(const char *mutf7, char delim, char **path)
{
	struct strbuf b = { 0 };
	char *utf8;
	int rc;

	if (!mutf7 || !path)
		return -EINVAL;
	*path = NULL;
	if (!delim_ok(delim))
		return -EINVAL;
	rc = names_mutf7_to_utf8(mutf7, &utf8);
	if (rc != 0)
		return rc;
	rc = build_path(utf8, delim, &b);
	free(utf8);
	return strbuf_finish(&b, rc, path);
}

static void add_local_component(struct strbuf *b, const char *s, size_t n, char delim, bool first)
{
	if (first && is_inbox(s, n)) {
		strbuf_add(b, INBOX, INBOX_LEN);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (delim != '/' && at_slash_standin(s + i, n - i)) {
			strbuf_addc(b, '/');
			i += SLASH_STANDIN_LEN - 1;
		} else {
			strbuf_addc(b, s[i]);
		}
	}
}

static int build_folder(const char *path, char delim, struct strbuf *b)
{
	for (const char *p = path;; p++) {
		size_t n = span_until(p, '/');
		int rc = check_component(p, n);

		if (rc != 0)
			return rc;
		if (delim != '\0' && delim != '/' && memchr(p, delim, n))
			return -EINVAL;
		add_local_component(b, p, n, delim, p == path);
		p += n;
		if (*p == '\0')
			return 0;
		if (delim == '\0')
			return -EINVAL;
		strbuf_addc(b, delim);
	}
}

int names_path_to_folder(const char *path, char delim, char **mutf7)
{
	struct strbuf b = { 0 };
	char *name;
	int rc;

	if (!path || !mutf7)
		return -EINVAL;
	*mutf7 = NULL;
	if (!delim_ok(delim) || bad_folder_text(path))
		return -EINVAL;
	rc = strbuf_finish(&b, build_folder(path, delim, &b), &name);
	if (rc != 0)
		return rc;
	rc = names_utf8_to_mutf7(name, mutf7);
	free(name);
	return rc;
}

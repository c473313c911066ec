/* Unit tests for parts_names.c: which leaves a `.parts` directory holds
 * (multiparts flattened, attached messages' insides in their own
 * directory) and their names: file names from Content-Disposition or
 * Content-Type, RFC 2231 (extended, continued, another charset) and
 * RFC 2047 decoded and cleaned; TYPE.EXT without one; ".eml" for attached
 * messages, not doubled. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <errno.h>

#include "model/parts_names.h"

static struct mime_param p_pdf[] = { { "filename*", "utf-8''%E2%82%AC%20report.pdf" } };
static struct mime_param p_jpg[] = { { "name", "=?UTF-8?B?R3LDvMOfZS5qcGc=?=" } };
static struct mime_param p_fwd[] = { { "filename", "fwd.eml" } };
static struct mime_param p_cont[] = { { "filename*1", ".txt" }, { "filename*0*", "iso-8859-1''caf%E9" } };
static struct mime_param p_slash[] = { { "filename", "  a/b\t c.txt " } };

static struct mime_part inner_leaf = { .type = "text", .subtype = "plain", .part_id = "4.1" };

static struct mime_part alternative[] = {
	{ .type = "text", .subtype = "plain", .part_id = "1.1" },
	{ .type = "text", .subtype = "html", .part_id = "1.2" },
};

static struct mime_part mixed[] = {
	{ .type = "multipart",
	  .subtype = "alternative",
	  .part_id = "1",
	  .children = alternative,
	  .nchildren = 2 },
	{ .type = "application", .subtype = "pdf", .part_id = "2", .dparams = p_pdf, .ndparams = 1 },
	{ .type = "image", .subtype = "jpeg", .part_id = "3", .params = p_jpg, .nparams = 1 },
	{ .type = "message",
	  .subtype = "rfc822",
	  .part_id = "4",
	  .dparams = p_fwd,
	  .ndparams = 1,
	  .message = &inner_leaf },
	{ .type = "application",
	  .subtype = "octet-stream",
	  .part_id = "5",
	  .dparams = p_cont,
	  .ndparams = 2 },
	{ .type = "text", .subtype = "plain", .part_id = "6", .dparams = p_slash, .ndparams = 1 },
	{ .type = "application", .subtype = "octet-stream", .part_id = "7" },
	{ .type = "message", .subtype = "rfc822", .part_id = "8" },
};

static struct mime_message message = {
	.root = { .type = "multipart",
		  .subtype = "mixed",
		  .part_id = "1",
		  .children = mixed,
		  .nchildren = 8 },
};

static void top_level(void **state)
{
	static const char *const want[] = {
		"1.1 text.txt",
		"1.2 text.html",
		"2 \xe2\x82\xac report.pdf",
		"3 Gr\xc3\xbc\xc3\x9f"
		"e.jpg",
		"4 fwd.eml",
		"5 caf\xc3\xa9.txt",
		"6 a\xe2\x88\x95"
		"b c.txt",
		"7 application.bin",
		"8 message.eml",
	};
	struct part_entry *v = NULL;
	size_t n = 0;

	(void)state;
	assert_int_equal(parts_entries(&message, "", &v, &n), 0);
	assert_int_equal(n, sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < n; i++)
		assert_string_equal(v[i].name, want[i]);
	assert_true(v[4].attached && v[8].attached);
	assert_false(v[0].attached || v[7].attached);
	free(v);
}

static void attached_message(void **state)
{
	struct part_entry *v = NULL;
	size_t n = 0;

	(void)state;
	assert_int_equal(parts_entries(&message, "4", &v, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(v[0].name, "4.1 text.txt");
	free(v);
	/* an attached message whose structure the server did not give: empty */
	assert_int_equal(parts_entries(&message, "8", &v, &n), 0);
	assert_int_equal(n, 0);
	/* a leaf that is no message, and no section at all */
	assert_int_equal(parts_entries(&message, "2", &v, &n), -ENOENT);
	assert_int_equal(parts_entries(&message, "9", &v, &n), -ENOENT);
}

static void single_part(void **state)
{
	struct mime_message m = { .root = { .type = "text", .subtype = "plain", .part_id = "1" } };
	struct part_entry *v = NULL;
	size_t n = 0;

	(void)state;
	assert_int_equal(parts_entries(&m, "", &v, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(v[0].name, "1 text.txt");
	free(v);
}

/* A long file name is cut to NAMES_MAX with room for ".eml.parts" left
 * for an attached message, on a character boundary. */
static void long_names(void **state)
{
	char longname[600], buf[NAMES_MAX + 1];
	struct mime_param p = { "filename", longname };
	struct mime_part leaf = {
		.type = "application", .subtype = "pdf", .part_id = "12.3", .dparams = &p, .ndparams = 1
	};
	struct mime_part msg = {
		.type = "message", .subtype = "rfc822", .part_id = "2", .dparams = &p, .ndparams = 1
	};

	(void)state;
	for (size_t i = 0; i + 2 < sizeof(longname); i += 2)
		memcpy(longname + i, "\xc3\xa9", 2); /* é: two bytes each */
	longname[sizeof(longname) - 2] = 0;
	parts_entry_name(&leaf, buf);
	assert_true(strlen(buf) <= NAMES_MAX && strlen(buf) >= NAMES_MAX - 1);
	assert_memory_equal(buf, "12.3 ", 5);
	assert_true(((unsigned char)buf[strlen(buf) - 1] & 0xc0) == 0x80); /* ends on a whole é */
	parts_entry_name(&msg, buf);
	assert_true(strlen(buf) + strlen(PARTS_SUFFIX) <= NAMES_MAX);
	assert_string_equal(buf + strlen(buf) - 4, ".eml");
}

/* base64 of n bytes in lines of `line` characters ending in eol */
static char *encode(size_t n, size_t line, const char *eol, size_t *len)
{
	static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *out = malloc(n * 2 + 16), *p = out;
	size_t col = 0;

	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)(i * 7 % 256) << 16 | (unsigned)((i + 1) * 7 % 256) << 8 |
			     (unsigned)((i + 2) * 7 % 256);
		char q[4] = { alphabet[v >> 18 & 63], alphabet[v >> 12 & 63], alphabet[v >> 6 & 63],
			      alphabet[v & 63] };

		if (n - i < 3)
			q[3] = '=';
		if (n - i < 2)
			q[2] = '=';
		for (int k = 0; k < 4; k++) {
			*p++ = q[k];
			if (++col == line) {
				p += sprintf(p, "%s", eol);
				col = 0;
			}
		}
	}
	if (col)
		p += sprintf(p, "%s", eol);
	*len = (size_t)(p - out);
	return out;
}

static int size_from_ends(const char *enc, size_t len, size_t room, uint64_t *size)
{
	size_t h = len < room ? len : room;

	return parts_base64_size(enc, h, enc + len - h, h, len, size);
}

/* The decoded size from a body's two ends, for every length near line and
 * group boundaries, CRLF and LF, with and without a final line break; and
 * refused when a line in between is of another length. */
static void base64_size(void **state)
{
	static const size_t lines[] = { 76, 64, 72 };
	static const char *const eols[] = { "\r\n", "\n" };
	uint64_t size;

	(void)state;
	for (size_t l = 0; l < 3; l++)
		for (size_t e = 0; e < 2; e++)
			for (size_t n = 20000; n < 20000 + 3 * lines[l]; n++) {
				size_t len;
				char *enc = encode(n, lines[l], eols[e], &len);

				assert_int_equal(size_from_ends(enc, len, 2048, &size), 0);
				assert_int_equal(size, n);
				/* without the final line break */
				while (enc[len - 1] == '\n' || enc[len - 1] == '\r')
					len--;
				assert_int_equal(size_from_ends(enc, len, 2048, &size), 0);
				assert_int_equal(size, n);
				free(enc);
			}
	{
		size_t len;
		char *enc = encode(30000, 76, "\r\n", &len);

		/* one line in the middle two characters short: the count no longer fits */
		memmove(enc + 20000, enc + 20002, len - 20002);
		assert_int_equal(size_from_ends(enc, len - 2, 2048, &size), -EINVAL);
		/* not base64 at all */
		memset(enc, '!', len);
		assert_int_equal(size_from_ends(enc, len, 2048, &size), -EINVAL);
		free(enc);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(top_level),   cmocka_unit_test(attached_message),
		cmocka_unit_test(single_part), cmocka_unit_test(long_names),
		cmocka_unit_test(base64_size),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

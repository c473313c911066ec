/* Unit tests for the name codecs of util/names.h: folder names, header
 * decoding and message file names (cmocka, table-driven). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/names.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Independent strict UTF-8 check, so the tests do not trust the code
 * under test to judge its own output. */
static int utf8_ok(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	while (*p) {
		unsigned need, cp;
		if (*p < 0x80) {
			p++;
			continue;
		} else if (*p >= 0xC2 && *p <= 0xDF) {
			need = 1;
			cp = *p & 0x1Fu;
		} else if (*p >= 0xE0 && *p <= 0xEF) {
			need = 2;
			cp = *p & 0x0Fu;
		} else if (*p >= 0xF0 && *p <= 0xF4) {
			need = 3;
			cp = *p & 0x07u;
		} else {
			return 0;
		}
		p++;
		for (unsigned i = 0; i < need; i++, p++) {
			if ((*p & 0xC0) != 0x80)
				return 0;
			cp = (cp << 6) | (*p & 0x3Fu);
		}
		if ((need == 2 && cp < 0x800) || (need == 3 && cp < 0x10000) || cp > 0x10FFFF ||
		    (cp >= 0xD800 && cp <= 0xDFFF))
			return 0;
	}
	return 1;
}

/* ---- modified UTF-7 ------------------------------------------------- */

static const struct {
	const char *mutf7, *utf8;
} mutf7_pairs[] = {
	{ "~peter/mail/&U,BTFw-/&ZeVnLIqe-", "~peter/mail/台北/日本語" },
	{ "&-", "&" },
	{ "Entw&APw-rfe", "Entwürfe" },
	{ "A &- B", "A & B" },
	{ "", "" },
	{ "INBOX", "INBOX" },
	{ "a-b+c~d\\e", "a-b+c~d\\e" },
	{ "&U,BTF2XlZyyKng-", "台北日本語" },
	{ "&ZeU-&-", "日&" },
	{ "&-&ZeU-", "&日" },
	{ "&2D3eAA-", "😀" },
	{ "a&AAE-b", "a\x01"
		     "b" },
	{ "&BCAEMARBBEEESwQ7BDoEOA-", "Рассылки" },
	{ "&AOQA9gD8-", "äöü" },
	{ "&IhU-", "∕" },
};

static void test_mutf7_decode(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(mutf7_pairs); i++) {
		char *out = NULL;
		int rc = names_mutf7_to_utf8(mutf7_pairs[i].mutf7, &out);
		if (rc != 0)
			fail_msg("decode \"%s\": rc %d", mutf7_pairs[i].mutf7, rc);
		assert_string_equal(out, mutf7_pairs[i].utf8);
		free(out);
	}
}

static void test_mutf7_encode(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(mutf7_pairs); i++) {
		char *out = NULL;
		int rc = names_utf8_to_mutf7(mutf7_pairs[i].utf8, &out);
		if (rc != 0)
			fail_msg("encode \"%s\": rc %d", mutf7_pairs[i].utf8, rc);
		assert_string_equal(out, mutf7_pairs[i].mutf7);
		free(out);
	}
}

static void test_mutf7_round_trip(void **state)
{
	static const char *const texts[] = {
		"Gesendete Objekte", "Éléments envoyés", "Отправленные",     "已发送邮件",
		"送信済みアイテム",  "🎉 party & more 🎉", "a&b&&c",           "x\x7fy",
		"tab\there",         "\xEF\xBF\xBF",     "\xF4\x8F\xBF\xBF",
	};
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(texts); i++) {
		char *enc = NULL, *dec = NULL;
		assert_int_equal(names_utf8_to_mutf7(texts[i], &enc), 0);
		assert_int_equal(names_mutf7_to_utf8(enc, &dec), 0);
		assert_string_equal(dec, texts[i]);
		free(enc);
		free(dec);
	}
}

static void test_mutf7_decode_invalid(void **state)
{
	static const char *const bad[] = {
		"&Jjo!",              /* '!' inside base64 */
		"&U,BTFw-&ZeVnLIqe-", /* adjacent shifted runs: not canonical */
		"&AGE-",              /* encodes printable ASCII 'a' */
		"&ACY-",              /* encodes '&' instead of "&-" */
		"&AH4-",              /* encodes '~' */
		"&ZeVn",              /* unterminated: glibc alone accepts it */
		"&ZeVnLIqe",          /* unterminated, whole characters */
		"&",                  /* shift at end */
		"abc&",
		"&ZQ-",     /* 12 bits: not a whole UTF-16 unit */
		"&ZeV-",    /* non-zero padding bits */
		"&2D0-",    /* lone high surrogate */
		"&3gA-",    /* lone low surrogate */
		"&AAA-",    /* U+0000 */
		"a\tb",     /* raw control byte */
		"\xC3\xA9", /* raw 8-bit */
		"&,,,,-",
	};
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		char *out = "untouched";
		int rc = names_mutf7_to_utf8(bad[i], &out);
		if (rc != -EINVAL)
			fail_msg("decode \"%s\": rc %d, want -EINVAL", bad[i], rc);
		assert_null(out);
	}
}

static void test_mutf7_encode_invalid(void **state)
{
	static const char *const bad[] = {
		"\xFF", "a\xC3", "\xED\xA0\x80", "\xC0\xAF", "\xF4\x90\x80\x80", "ok\x80",
	};
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		char *out = NULL;
		assert_int_equal(names_utf8_to_mutf7(bad[i], &out), -EINVAL);
		assert_null(out);
	}
}

static void test_mutf7_null_args(void **state)
{
	char *out = NULL;
	(void)state;
	assert_int_equal(names_mutf7_to_utf8(NULL, &out), -EINVAL);
	assert_int_equal(names_mutf7_to_utf8("x", NULL), -EINVAL);
	assert_int_equal(names_utf8_to_mutf7(NULL, &out), -EINVAL);
	assert_int_equal(names_utf8_to_mutf7("x", NULL), -EINVAL);
}

/* ---- folder names <-> paths ----------------------------------------- */

static const struct {
	const char *name;
	char delim;
	const char *path; /* NULL when refused */
	int rc;
	int round_trip; /* path_to_folder(path) gives name back */
} folders[] = {
	{ "INBOX", '/', "INBOX", 0, 1 },
	{ "inbox", '.', "INBOX", 0, 0 },
	{ "Inbox.Sent", '.', "INBOX/Sent", 0, 0 },
	{ "INBOX.Sent", '.', "INBOX/Sent", 0, 1 },
	{ "INBOX/Drafts", '/', "INBOX/Drafts", 0, 1 },
	{ "inboxes", '/', "inboxes", 0, 1 },
	{ "Archive/inbox", '/', "Archive/inbox", 0, 1 },
	{ "~peter/mail/&U,BTFw-/&ZeVnLIqe-", '/', "~peter/mail/台北/日本語", 0, 1 },
	{ "INBOX.Entw&APw-rfe", '.', "INBOX/Entwürfe", 0, 1 },
	{ "a/b.c", '.', "a∕b/c", 0, 1 },
	{ "Work/2024.Q1/Q2", '.', "Work∕2024/Q1∕Q2", 0, 1 },
	{ "a/b", '\0', "a∕b", 0, 1 },
	{ "a.b", '\0', "a.b", 0, 1 },
	{ "a.b", '/', "a.b", 0, 1 },
	{ "A &- B", '/', "A & B", 0, 1 },
	{ "a&IhU-b", '/', "a∕b", 0, 1 },
	{ "...", '/', "...", 0, 1 },
	{ ".hidden/x", '/', ".hidden/x", 0, 1 },
	{ "a\\b", '\\', "a/b", 0, 1 },
	{ "&ZeU-.&ZeU-", '.', "日/日", 0, 1 },
	{ "a&IAw-b", '/', "a\u200Cb", 0, 1 }, /* ZWNJ: Persian needs it */
	{ "a&IA0-b", '/', "a\u200Db", 0, 1 }, /* ZWJ */
	/* hostile or undecodable */
	{ "..", '/', NULL, -EINVAL, 0 },
	{ ".", '/', NULL, -EINVAL, 0 },
	{ "a/../b", '/', NULL, -EINVAL, 0 },
	{ "a/./b", '/', NULL, -EINVAL, 0 },
	{ "a/..", '/', NULL, -EINVAL, 0 },
	{ "..", '\0', NULL, -EINVAL, 0 },
	{ "a..b", '.', NULL, -EINVAL, 0 },
	{ "", '/', NULL, -EINVAL, 0 },
	{ "a//b", '/', NULL, -EINVAL, 0 },
	{ "/a", '/', NULL, -EINVAL, 0 },
	{ "a/", '/', NULL, -EINVAL, 0 },
	{ "a.b.", '.', NULL, -EINVAL, 0 },
	{ "a&AAE-b", '/', NULL, -EINVAL, 0 },
	{ "a&AAk-b", '/', NULL, -EINVAL, 0 },
	{ "a&AAo-b", '.', NULL, -EINVAL, 0 },
	{ "&AB8-", '\0', NULL, -EINVAL, 0 },
	{ "a&AH8-b", '/', NULL, -EINVAL, 0 },
	{ "a&IhU-b", '.', NULL, -EINVAL, 0 }, /* U+2215 could not map back */
	/* C1 controls, separators, bidi controls and other format characters */
	{ "a&AIU-b", '/', NULL, -EINVAL, 0 },
	{ "a&AJs-b", '/', NULL, -EINVAL, 0 },
	{ "a&ICg-b", '/', NULL, -EINVAL, 0 },
	{ "a&IC4-b", '/', NULL, -EINVAL, 0 },
	{ "a&ICo-b", '/', NULL, -EINVAL, 0 },
	{ "a&IGY-b", '/', NULL, -EINVAL, 0 },
	{ "a&IGk-b", '/', NULL, -EINVAL, 0 },
	{ "a&IA4-b", '/', NULL, -EINVAL, 0 },
	{ "a&IA8-b", '/', NULL, -EINVAL, 0 },
	{ "a&Bhw-b", '/', NULL, -EINVAL, 0 },
	{ "a&IAs-b", '/', NULL, -EINVAL, 0 },
	{ "a&IGA-b", '/', NULL, -EINVAL, 0 },
	{ "a&,v8-b", '/', NULL, -EINVAL, 0 },
	{ "a&AK0-b", '/', NULL, -EINVAL, 0 },
	{ "a&20DcQQ-b", '/', NULL, -EINVAL, 0 },
	{ "ok/&IC4-gpj.exe", '/', NULL, -EINVAL, 0 },
	{ "&Jjo!", '/', NULL, -EINVAL, 0 },
	{ "&AGE-", '/', NULL, -EINVAL, 0 },
	{ "a&b", '&', NULL, -EINVAL, 0 },
	{ "a", '&', NULL, -EINVAL, 0 },
	{ "a", '\x01', NULL, -EINVAL, 0 },
	{ "a", '\xC3', NULL, -EINVAL, 0 },
};

static void test_folder_to_path(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(folders); i++) {
		char *path = "untouched";
		int rc = names_folder_to_path(folders[i].name, folders[i].delim, &path);
		if (rc != folders[i].rc)
			fail_msg("\"%s\" delim 0x%02x: rc %d, want %d", folders[i].name,
				 (unsigned char)folders[i].delim, rc, folders[i].rc);
		if (folders[i].path)
			assert_string_equal(path, folders[i].path);
		else
			assert_null(path);
		free(path);
	}
}

static void test_folder_path_round_trip(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(folders); i++) {
		if (!folders[i].round_trip)
			continue;
		char *name = NULL;
		int rc = names_path_to_folder(folders[i].path, folders[i].delim, &name);
		if (rc != 0)
			fail_msg("\"%s\": rc %d", folders[i].path, rc);
		assert_string_equal(name, folders[i].name);
		free(name);
	}
}

static void test_folder_component_too_long(void **state)
{
	char name[600], *path = NULL;
	(void)state;
	memset(name, 'a', 255);
	strcpy(name + 255, "/b");
	assert_int_equal(names_folder_to_path(name, '/', &path), 0);
	free(path);
	memset(name, 'a', 256);
	strcpy(name + 256, "/b");
	assert_int_equal(names_folder_to_path(name, '/', &path), -ENAMETOOLONG);
	assert_null(path);
	/* 85 CJK characters are 255 bytes of UTF-8, 86 are too many */
	char *enc = NULL;
	char utf8[300] = "";
	for (int i = 0; i < 86; i++)
		strcat(utf8, "日");
	assert_int_equal(names_utf8_to_mutf7(utf8, &enc), 0);
	assert_int_equal(names_folder_to_path(enc, '/', &path), -ENAMETOOLONG);
	free(enc);
	utf8[85 * 3] = '\0';
	assert_int_equal(names_utf8_to_mutf7(utf8, &enc), 0);
	assert_int_equal(names_folder_to_path(enc, '/', &path), 0);
	assert_string_equal(path, utf8);
	free(enc);
	free(path);
}

static const struct {
	const char *path;
	char delim;
	const char *name; /* NULL when refused */
	int rc;
} paths[] = {
	{ "INBOX", '/', "INBOX", 0 },
	{ "inbox/x", '.', "INBOX.x", 0 },
	{ "Inbox", '\0', "INBOX", 0 },
	{ "~peter/mail/台北/日本語", '/', "~peter/mail/&U,BTFw-/&ZeVnLIqe-", 0 },
	{ "INBOX/Entwürfe", '.', "INBOX.Entw&APw-rfe", 0 },
	{ "a∕b/c", '.', "a/b.c", 0 },
	{ "a∕b", '/', "a&IhU-b", 0 },
	{ "a∕b", '\0', "a/b", 0 },
	{ "A & B", '/', "A &- B", 0 },
	{ "x", '\0', "x", 0 },
	{ "a/b/c", '/', "a/b/c", 0 },
	{ "a/b", '\\', "a\\b", 0 },
	{ "a.b", '/', "a.b", 0 },
	{ "a.b", '.', NULL, -EINVAL },
	{ "x/a.b", '.', NULL, -EINVAL },
	{ "a/b", '\0', NULL, -EINVAL },
	{ "", '/', NULL, -EINVAL },
	{ "/a", '/', NULL, -EINVAL },
	{ "a/", '/', NULL, -EINVAL },
	{ "a//b", '/', NULL, -EINVAL },
	{ ".", '/', NULL, -EINVAL },
	{ "..", '.', NULL, -EINVAL },
	{ "a/../b", '/', NULL, -EINVAL },
	{ "a/./b", '.', NULL, -EINVAL },
	{ "a\x01", '/', NULL, -EINVAL },
	{ "a\tb", '/', NULL, -EINVAL },
	{ "a\x7f", '/', NULL, -EINVAL },
	{ "\xFF", '/', NULL, -EINVAL },
	{ "a\xC3", '/', NULL, -EINVAL },
	{ "\xED\xA0\x80", '/', NULL, -EINVAL },
	{ "\xC0\xAF", '/', NULL, -EINVAL },
	{ "a", '&', NULL, -EINVAL },
	{ "a", '\n', NULL, -EINVAL },
	{ "a\u200Cb", '/', "a&IAw-b", 0 },
	{ "a\xC2\x85", '/', NULL, -EINVAL },
	{ "a\u2029b", '/', NULL, -EINVAL },
	{ "a\u202Eb", '/', NULL, -EINVAL },
	{ "x/\u2067b", '/', NULL, -EINVAL },
	{ "a\u200Bb", '/', NULL, -EINVAL },
	{ "\uFEFFa", '/', NULL, -EINVAL },
};

static void test_path_to_folder(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(paths); i++) {
		char *name = "untouched";
		int rc = names_path_to_folder(paths[i].path, paths[i].delim, &name);
		if (rc != paths[i].rc)
			fail_msg("\"%s\" delim 0x%02x: rc %d, want %d", paths[i].path,
				 (unsigned char)paths[i].delim, rc, paths[i].rc);
		if (paths[i].name)
			assert_string_equal(name, paths[i].name);
		else
			assert_null(name);
		free(name);
	}
}

static void test_folder_null_args(void **state)
{
	char *out = NULL;
	(void)state;
	assert_int_equal(names_folder_to_path(NULL, '/', &out), -EINVAL);
	assert_int_equal(names_folder_to_path("x", '/', NULL), -EINVAL);
	assert_int_equal(names_path_to_folder(NULL, '/', &out), -EINVAL);
	assert_int_equal(names_path_to_folder("x", '/', NULL), -EINVAL);
}

/* ---- RFC 2047 ------------------------------------------------------- */

static const struct {
	const char *raw;
	size_t len; /* 0: strlen(raw) */
	const char *want;
} headers[] = {
	{ "", 0, "" },
	{ "plain ascii", 0, "plain ascii" },
	{ "=?utf-8?q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?=", 0, "Grüße aus Köln" },
	{ "=?UTF-8?Q?a=5fb_c?=", 0, "a_b c" },
	{ "=?UTF-8?B?R3LDvMOfZQ==?=", 0, "Grüße" },
	{ "=?utf-8?b?R3LDvMOfZQ?=", 0, "Grüße" },
	{ "=?ISO-8859-1?Q?Gr=FC=DFe?=", 0, "Grüße" },
	{ "=?iso-8859-1?B?R3L832U=?=", 0, "Grüße" },
	{ "=?ISO-8859-15?B?UHJpeCAxMKQ=?=", 0, "Prix 10€" },
	{ "=?iso-8859-15?q?Prix_10=a4?=", 0, "Prix 10€" },
	{ "=?KOI8-R?B?8NLJ18XU?=", 0, "Привет" },
	{ "=?Shift_JIS?B?k/qWe4zq?=", 0, "日本語" },
	{ "=?ISO-2022-JP?B?GyRCRnxLXDhsJE43b0w+GyhC?=", 0, "日本語の件名" },
	{ "=?GB2312?B?1tDOxNb3zOI=?=", 0, "中文主题" },
	{ "=?US-ASCII*EN?Q?Keith_Moore?=", 0, "Keith Moore" },
	{ "Re: =?utf-8?q?caf=C3=A9?= ok", 0, "Re: café ok" },
	/* RFC 2047 section 8 examples */
	{ "(=?ISO-8859-1?Q?a?=)", 0, "(a)" },
	{ "(=?ISO-8859-1?Q?a?= b)", 0, "(a b)" },
	{ "(=?ISO-8859-1?Q?a?= =?ISO-8859-1?Q?b?=)", 0, "(ab)" },
	{ "(=?ISO-8859-1?Q?a?=  =?ISO-8859-1?Q?b?=)", 0, "(ab)" },
	{ "(=?ISO-8859-1?Q?a?=\r\n    =?ISO-8859-1?Q?b?=)", 0, "(ab)" },
	{ "(=?ISO-8859-1?Q?a_b?=)", 0, "(a b)" },
	{ "(=?ISO-8859-1?Q?a?= =?ISO-8859-2?Q?_b?=)", 0, "(a b)" },
	{ "=?utf-8?q?a?=\t=?utf-8?q?b?=", 0, "ab" },
	{ "=?utf-8?q?a?= b =?utf-8?q?c?=", 0, "a b c" },
	{ "=?utf-8?q?a_?= =?utf-8?q?b?=", 0, "a b" },
	{ " =?utf-8?q?a?= ", 0, " a " },
	/* a character split across two words */
	{ "=?utf-8?q?=C3?= =?utf-8?q?=A9t=C3=A9?=", 0, "été" },
	{ "=?UTF-8?B?5pel?= =?utf-8?B?5pys?=", 0, "日本" },
	{ "=?UTF-8?q?=C3?= =?utf-8?q?=A9?=", 0, "é" },
	{ "=?utf-8?b?5p?= =?utf-8?b?el?=", 0, "=?utf-8?b?5p?= =?utf-8?b?el?=" },
	/* broken words stay raw */
	{ "=?utf-8?q?bad=ZZ?=", 0, "=?utf-8?q?bad=ZZ?=" },
	{ "=?utf-8?q?bad=4?=", 0, "=?utf-8?q?bad=4?=" },
	{ "=?utf-8?b?!!!!?=", 0, "=?utf-8?b?!!!!?=" },
	{ "=?utf-8?b?QQ=A?=", 0, "=?utf-8?b?QQ=A?=" },
	{ "=?utf-8?b?Q?=", 0, "=?utf-8?b?Q?=" },
	{ "=?utf-8?q?=FF?=", 0, "=?utf-8?q?=FF?=" },
	{ "=?utf-8?q?=C3?=", 0, "=?utf-8?q?=C3?=" },
	{ "=?utf-8?x?abc?=", 0, "=?utf-8?x?abc?=" },
	{ "=?utf-8?q?unterminated", 0, "=?utf-8?q?unterminated" },
	{ "=??q?nocharset?=", 0, "=??q?nocharset?=" },
	{ "=?x-unknown?q?abc?=", 0, "=?x-unknown?q?abc?=" },
	{ "=?../../etc/x?q?abc?=", 0, "=?../../etc/x?q?abc?=" },
	{ "=?utf-8?q?a?= =?bogus?q?b?=", 0, "a =?bogus?q?b?=" },
	{ "=?bogus?q?a?= =?utf-8?q?b?=", 0, "=?bogus?q?a?= b" },
	{ "=?utf-8?q?a?= =?utf-8?q?=ZZ?= =?utf-8?q?c?=", 0, "a =?utf-8?q?=ZZ?= c" },
	{ "x=?utf-8?q?=C3=A9?=y", 0, "xéy" },
	{ "=?=?utf-8?q?a?=", 0, "=?a" },
	{ "=?utf-8?q?has spaces?=", 0, "has spaces" },
	{ "=?utf-8?q?\?=", 0, "" }, /* "\?" dodges the ??= trigraph */
	/* raw bytes */
	{ "Gr\xFC\xDF"
	  "e",
	  0, "Grüße" },
	{ "\x93quoted\x94 \x80", 0, "“quoted” €" },
	{ "\x81\x8D", 0, "\xC2\x81\xC2\x8D" },
	{ "Grüße", 0, "Grüße" },
	{ "mixed Grüße and Gr\xFC\xDF"
	  "e",
	  0, "mixed Grüße and Grüße" },
	{ "\xE6\x97", 0, "æ—" },
	{ "a\0b", 3,
	  "a\xEF\xBF\xBD"
	  "b" },
	{ "=?utf-8?q?a=00b?=", 0,
	  "a\xEF\xBF\xBD"
	  "b" },
	/* folding */
	{ "Hello\r\n World", 0, "Hello World" },
	{ "a\n\tb", 0, "a\tb" },
	{ "a\r\nb", 0, "a b" },
	{ "a\nb\n", 0, "a b" },
};

static void test_decode_header(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(headers); i++) {
		size_t len = headers[i].len ? headers[i].len : strlen(headers[i].raw);
		char *out = names_decode_header(headers[i].raw, len);
		assert_non_null(out);
		assert_string_equal(out, headers[i].want);
		assert_true(utf8_ok(out));
		free(out);
	}
}

static void test_decode_header_null(void **state)
{
	(void)state;
	char *out = names_decode_header(NULL, 0);
	assert_non_null(out);
	assert_string_equal(out, "");
	free(out);
}

/* Every byte value, in and around encoded words, must give valid UTF-8. */
static void test_decode_header_all_bytes(void **state)
{
	char raw[256 * 3];
	(void)state;
	for (int i = 0; i < 256; i++) {
		raw[i * 3] = (char)i;
		raw[i * 3 + 1] = (char)(255 - i);
		raw[i * 3 + 2] = (char)(i ^ 0x55);
	}
	char *out = names_decode_header(raw, sizeof raw);
	assert_non_null(out);
	assert_true(utf8_ok(out));
	free(out);
}

static const struct {
	const char *block, *want;
} subjects[] = {
	{ "Subject: =?utf-8?q?x?=\r\n  folded\r\n\r\n", "x  folded" },
	{ "", "" },
	{ "\r\n", "" },
	{ "From: a@b\r\nSubject: Hello\r\nTo: c@d\r\n\r\n", "Hello" },
	{ "subject: lower\n\n", "lower" },
	{ "SUBJECT:no space\r\n", "no space" },
	{ "Subject : obsolete\r\n", "obsolete" },
	{ "X-Subject: no\r\nSubject: yes\r\n", "yes" },
	{ "Subjectx: no\r\n", "" },
	{ "Subject: a\n b\n\tc\n\n", "a b\tc" },
	{ "Subject: first\r\nSubject: second\r\n", "first" },
	{ "From: x\r\n\r\nSubject: body\r\n", "" },
	{ "Subject:\r\n =?utf-8?b?w6k=?=\r\n", "é" },
	{ "Subject: end", "end" },
	{ "Subject: \r\n\r\n", "" },
	{ "Subject:   spaced   \r\n", "spaced" },
	{ "To: x\r\n folded-to\r\nSubject: after fold\r\n", "after fold" },
	{ "Subject: =?ISO-8859-1?Q?Caf=E9?=\r\n =?ISO-8859-1?Q?_cr=E8me?=\r\n", "Café crème" },
};

static void test_subject_from_headers(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(subjects); i++) {
		char *out = names_subject_from_headers(subjects[i].block, strlen(subjects[i].block));
		assert_non_null(out);
		assert_string_equal(out, subjects[i].want);
		free(out);
	}
	char *out = names_subject_from_headers(NULL, 0);
	assert_non_null(out);
	assert_string_equal(out, "");
	free(out);
}

/* ---- message file names --------------------------------------------- */

static const struct {
	enum names_mode mode;
	int64_t date;
	const char *subject;
	uint32_t uid;
	const char *want;
} files[] = {
	{ NAMES_READABLE, 0, "Hello", 1, "1970-01-01 Hello.1.eml" },
	{ NAMES_READABLE, 1700000000, "Re: Meeting", 42, "2023-11-14 Re: Meeting.42.eml" },
	{ NAMES_READABLE, 0, NULL, 5, "1970-01-01 (no subject).5.eml" },
	{ NAMES_READABLE, 0, "", 5, "1970-01-01 (no subject).5.eml" },
	{ NAMES_READABLE, 0, " \t\r\n \x01", 5, "1970-01-01 (no subject).5.eml" },
	{ NAMES_READABLE, 0, "a/b", 7, "1970-01-01 a∕b.7.eml" },
	{ NAMES_READABLE, 0, "/", 7, "1970-01-01 ∕.7.eml" },
	{ NAMES_READABLE, 0, "  a \t\r\n b  ", 7, "1970-01-01 a b.7.eml" },
	{ NAMES_READABLE, 0,
	  "a\x01\x02"
	  "b\x7f",
	  7, "1970-01-01 a b.7.eml" },
	{ NAMES_READABLE, 0,
	  "bad\xFF"
	  "byte",
	  7,
	  "1970-01-01 bad\xEF\xBF\xBD"
	  "byte.7.eml" },
	{ NAMES_READABLE, 0, "\xC3", 7, "1970-01-01 \xEF\xBF\xBD.7.eml" },
	{ NAMES_READABLE, 0, "\xED\xA0\x80", 7, "1970-01-01 \xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD.7.eml" },
	{ NAMES_READABLE, 0,
	  "a\xC2\xA0"
	  "b\xE3\x80\x80"
	  "c\xC2\x85"
	  "d",
	  7, "1970-01-01 a b c d.7.eml" },
	{ NAMES_READABLE, 0,
	  "a\xE2\x80\xA8\xE2\x80\x83"
	  "b",
	  7, "1970-01-01 a b.7.eml" },
	{ NAMES_READABLE, 0, "..", 7, "1970-01-01 ...7.eml" },
	/* format characters are left out; C1 controls are spaces */
	{ NAMES_READABLE, 0, "invoice\u202Efdp.exe", 7, "1970-01-01 invoicefdp.exe.7.eml" },
	{ NAMES_READABLE, 0, "a\u202Ab\u202Bc\u202Cd\u202De", 7, "1970-01-01 abcde.7.eml" },
	{ NAMES_READABLE, 0, "x\u2066y\u2067z\u2068w\u2069", 7, "1970-01-01 xyzw.7.eml" },
	{ NAMES_READABLE, 0, "p\u200Bq\u200Cr\u200Ds\u200Et\u200Fu", 7, "1970-01-01 pqrstu.7.eml" },
	{ NAMES_READABLE, 0, "\u2060\u2061\u2062\u2063\u2064\uFEFF\u00AD\u061C", 7,
	  "1970-01-01 (no subject).7.eml" },
	{ NAMES_READABLE, 0, " \u200B a \u200B b \u200B ", 7, "1970-01-01 a b.7.eml" },
	{ NAMES_READABLE, 0, "flag\U000E0067\U000E007F", 7, "1970-01-01 flag.7.eml" },
	{ NAMES_READABLE, 0,
	  "a\xC2\x9B"
	  "b\xC2\x80",
	  7, "1970-01-01 a b.7.eml" },
	{ NAMES_READABLE, 0, "日本語 😀", 7, "1970-01-01 日本語 😀.7.eml" },
	{ NAMES_READABLE, -1, "x", 1, "1969-12-31 x.1.eml" },
	{ NAMES_READABLE, -86400 * 365, "x", 1, "1969-01-01 x.1.eml" },
	{ NAMES_READABLE, -2208988800, "x", 1, "1900-01-01 x.1.eml" },
	{ NAMES_READABLE, 951782400, "x", 1, "2000-02-29 x.1.eml" },
	{ NAMES_READABLE, 2147483647, "x", 1, "2038-01-19 x.1.eml" },
	{ NAMES_READABLE, 2147483648, "x", 1, "2038-01-19 x.1.eml" },
	{ NAMES_READABLE, 4102444800, "x", 1, "2100-01-01 x.1.eml" },
	{ NAMES_READABLE, 253402300799, "x", 1, "9999-12-31 x.1.eml" },
	{ NAMES_READABLE, 253402300800, "x", 1, "10000-01-01 x.1.eml" },
	{ NAMES_READABLE, -62135596800, "x", 1, "0001-01-01 x.1.eml" },
	{ NAMES_READABLE, -62167219200, "x", 1, "0000-01-01 x.1.eml" },
	{ NAMES_READABLE, 0, "x", UINT32_MAX, "1970-01-01 x.4294967295.eml" },
	{ NAMES_UID, 1700000000, "ignored", 7, "7.eml" },
	{ NAMES_UID, 0, NULL, UINT32_MAX, "4294967295.eml" },
};

static void test_message_file(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(files); i++) {
		char buf[NAMES_MAX + 1];
		int n = names_message_file(buf, sizeof buf, files[i].mode, files[i].date, files[i].subject,
					   files[i].uid);
		assert_string_equal(buf, files[i].want);
		assert_int_equal(n, (int)strlen(files[i].want));
	}
}

static void test_message_file_errors(void **state)
{
	char buf[NAMES_MAX + 1];
	(void)state;
	assert_int_equal(names_message_file(buf, NAMES_MAX, NAMES_READABLE, 0, "x", 1), -EINVAL);
	assert_int_equal(names_message_file(NULL, 1000, NAMES_UID, 0, "x", 1), -EINVAL);
	assert_int_equal(names_message_file(buf, sizeof buf, (enum names_mode)7, 0, "x", 1), -EINVAL);
}

/* Builds a subject of repeated chunks and checks the cut. */
static void check_long_subject(const char *chunk, int64_t date, uint32_t uid)
{
	char subject[1200] = "";
	while (strlen(subject) + strlen(chunk) < 1000)
		strcat(subject, chunk);
	char buf[NAMES_MAX + 1], suffix[32];
	int n = names_message_file(buf, sizeof buf, NAMES_READABLE, date, subject, uid);
	snprintf(suffix, sizeof suffix, ".%u.eml", (unsigned)uid);
	assert_true(n > 0 && n <= NAMES_MAX);
	assert_int_equal((size_t)n, strlen(buf));
	/* no room left for even one more 4-byte character */
	assert_true(n > NAMES_MAX - 4);
	assert_true(utf8_ok(buf));
	size_t slen = strlen(suffix);
	assert_string_equal(buf + n - slen, suffix);
	assert_true(buf[n - slen - 1] != ' ');
	uint32_t parsed = 0;
	assert_int_equal(names_parse_uid(buf, &parsed), 0);
	assert_int_equal(parsed, uid);
}

static void test_message_file_long_subject(void **state)
{
	(void)state;
	check_long_subject("日", 0, 123);
	check_long_subject("😀", 1700000000, UINT32_MAX);
	check_long_subject("é", -1, 1);
	check_long_subject("ab ", 0, 99);
	check_long_subject("日本 ", 253402300800, 4000000000u);
	check_long_subject("x/", 0, 5);
	check_long_subject("a\xFF", 0, 5);
}

/* A space is never left dangling where the subject was cut. */
static void test_message_file_cut_at_space(void **state)
{
	char subject[300], buf[NAMES_MAX + 1];
	const size_t room = NAMES_MAX - strlen("1970-01-01 ") - strlen(".1.eml");
	(void)state;
	memset(subject, 'x', room);
	strcpy(subject + room, " y");
	int n = names_message_file(buf, sizeof buf, NAMES_READABLE, 0, subject, 1);
	assert_int_equal(n, NAMES_MAX);
	memset(subject, 'x', room - 1);
	strcpy(subject + room - 1, " y");
	n = names_message_file(buf, sizeof buf, NAMES_READABLE, 0, subject, 1);
	assert_int_equal(n, NAMES_MAX - 1);
	assert_string_equal(buf + n - 7, "x.1.eml");
}

/* The date prefix must work over the whole int64 range without tripping
 * the sanitizers, even if the years there are absurd. */
static void test_message_file_extreme_dates(void **state)
{
	static const int64_t dates[] = { INT64_MIN, INT64_MIN + 1, -86401, INT64_MAX, INT64_MAX - 86400 };
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(dates); i++) {
		char buf[NAMES_MAX + 1];
		int n = names_message_file(buf, sizeof buf, NAMES_READABLE, dates[i], "subject", 9);
		assert_true(n > 0 && n <= NAMES_MAX);
		assert_string_equal(buf + n - strlen(" subject.9.eml"), " subject.9.eml");
	}
}

/* ---- UID parsing ---------------------------------------------------- */

static const struct {
	const char *name;
	int rc;
	uint32_t uid;
} uids[] = {
	{ "1.eml", 0, 1 },
	{ "4294967295.eml", 0, 4294967295u },
	{ "x.12.eml", 0, 12 },
	{ "2024-01-01 Hello.42.eml", 0, 42 },
	{ "a.b.7.eml", 0, 7 },
	{ ".12.eml", 0, 12 },
	{ "1.eml.5.eml", 0, 5 },
	{ "1970-01-01 (no subject).5.eml", 0, 5 },
	{ "eml", -ENOENT, 0 },
	{ ".eml", -ENOENT, 0 },
	{ "x..eml", -ENOENT, 0 },
	{ "0.eml", -ENOENT, 0 },
	{ "x.0.eml", -ENOENT, 0 },
	{ "01.eml", -ENOENT, 0 },
	{ "x.012.eml", -ENOENT, 0 },
	{ "4294967296.eml", -ENOENT, 0 },
	{ "99999999999.eml", -ENOENT, 0 },
	{ "12.EML", -ENOENT, 0 },
	{ "12.Eml", -ENOENT, 0 },
	{ "x12.eml", -ENOENT, 0 },
	{ "-1.eml", -ENOENT, 0 },
	{ "+1.eml", -ENOENT, 0 },
	{ " 1.eml", -ENOENT, 0 },
	{ "1 .eml", -ENOENT, 0 },
	{ "12.eml ", -ENOENT, 0 },
	{ "12.emlx", -ENOENT, 0 },
	{ "12", -ENOENT, 0 },
	{ "", -ENOENT, 0 },
	{ "1.2.eml.bak", -ENOENT, 0 },
};

static void test_parse_uid(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(uids); i++) {
		uint32_t uid = 0xDEADBEEF;
		int rc = names_parse_uid(uids[i].name, &uid);
		if (rc != uids[i].rc)
			fail_msg("\"%s\": rc %d, want %d", uids[i].name, rc, uids[i].rc);
		if (rc == 0)
			assert_int_equal(uid, uids[i].uid);
		else
			assert_int_equal(uid, 0xDEADBEEF);
	}
	uint32_t uid;
	assert_int_equal(names_parse_uid(NULL, &uid), -EINVAL);
	assert_int_equal(names_parse_uid("1.eml", NULL), -EINVAL);
}

/* Whatever the subject, the generated name parses back to its UID. */
static void test_message_file_parses_back(void **state)
{
	static const char *const subjects_[] = {
		NULL, "", "x.12.eml", "99.eml", "a.", "1", ".eml", "..",
	};
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(subjects_); i++) {
		for (int mode = NAMES_READABLE; mode <= NAMES_UID; mode++) {
			char buf[NAMES_MAX + 1];
			uint32_t uid = 0;
			names_message_file(buf, sizeof buf, (enum names_mode)mode, 0, subjects_[i], 314);
			assert_int_equal(names_parse_uid(buf, &uid), 0);
			assert_int_equal(uid, 314);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mutf7_decode),
		cmocka_unit_test(test_mutf7_encode),
		cmocka_unit_test(test_mutf7_round_trip),
		cmocka_unit_test(test_mutf7_decode_invalid),
		cmocka_unit_test(test_mutf7_encode_invalid),
		cmocka_unit_test(test_mutf7_null_args),
		cmocka_unit_test(test_folder_to_path),
		cmocka_unit_test(test_folder_path_round_trip),
		cmocka_unit_test(test_folder_component_too_long),
		cmocka_unit_test(test_path_to_folder),
		cmocka_unit_test(test_folder_null_args),
		cmocka_unit_test(test_decode_header),
		cmocka_unit_test(test_decode_header_null),
		cmocka_unit_test(test_decode_header_all_bytes),
		cmocka_unit_test(test_subject_from_headers),
		cmocka_unit_test(test_message_file),
		cmocka_unit_test(test_message_file_errors),
		cmocka_unit_test(test_message_file_long_subject),
		cmocka_unit_test(test_message_file_cut_at_space),
		cmocka_unit_test(test_message_file_extreme_dates),
		cmocka_unit_test(test_parse_uid),
		cmocka_unit_test(test_message_file_parses_back),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* libFuzzer target for the name codecs: modified UTF-7 folder names, RFC 2047
 * subjects and message file names (see src/names.h).  Built and run by
 * `make fuzz`.
 *
 * The first byte picks a delimiter; the rest is a server folder name, a
 * header block and a subject all at once.  What must hold: decoding never
 * crashes; a decoded folder path has no "." or ".." component, no control
 * byte, is valid UTF-8 and encodes back to the very same server name (two
 * server names never share a path); a subject decodes to valid UTF-8; a file
 * name is at most NAMES_MAX bytes, has no '/' or control byte and parses
 * back to its UID. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/names.h"

#define CHECK(cond)              \
	do {                     \
		if (!(cond))     \
			abort(); \
	} while (0)

static int valid_utf8(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		unsigned char c = s[i];
		size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;

		if (!len || i + len > n)
			return 0;
		for (size_t k = 1; k < len; k++)
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
		i += len;
	}
	return 1;
}

static void check_path(const char *path)
{
	const char *p = path;

	CHECK(valid_utf8((const unsigned char *)path, strlen(path)));
	for (const char *q = path; *q; q++)
		CHECK((unsigned char)*q >= 0x20 && *q != 0x7f);
	while (*p) {
		const char *slash = strchr(p, '/');
		size_t len = slash ? (size_t)(slash - p) : strlen(p);

		CHECK(len > 0);
		CHECK(!(len == 1 && p[0] == '.') && !(len == 2 && p[0] == '.' && p[1] == '.'));
		p += len + (slash != NULL);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char delims[] = { '/', '.', '\0', '\\' };
	char *text, *path = NULL, *back = NULL, *utf8 = NULL, *subject;
	char name[NAMES_MAX + 1];
	char delim;
	int len;

	if (size < 1)
		return 0;
	delim = delims[data[0] % sizeof(delims)];
	text = malloc(size);
	if (!text)
		return 0;
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0'; /* a C string up to the first NUL */

	if (names_mutf7_to_utf8(text, &utf8) == 0) {
		char *again = NULL;

		CHECK(valid_utf8((const unsigned char *)utf8, strlen(utf8)));
		CHECK(names_utf8_to_mutf7(utf8, &again) == 0);
		CHECK(strcmp(again, text) == 0); /* canonical forms only */
		free(again);
	}
	if (names_folder_to_path(text, delim, &path) == 0) {
		check_path(path);
		if (names_path_to_folder(path, delim, &back) == 0) {
			/* INBOX is shown in capitals whatever the server's case */
			CHECK(strcmp(back, text) == 0 || strncmp(back, "INBOX", 5) == 0);
			free(back);
		}
	}
	subject = names_subject_from_headers((const char *)data + 1, size - 1);
	if (subject) {
		CHECK(valid_utf8((const unsigned char *)subject, strlen(subject)));
		len = names_message_file(name, sizeof(name), NAMES_READABLE, (int64_t)size * 86400 - 1000,
					 subject, (uint32_t)size * 7919u + 1);
		CHECK(len > 0 && len <= NAMES_MAX && (size_t)len == strlen(name));
		CHECK(!strchr(name, '/'));
		for (int i = 0; i < len; i++)
			CHECK((unsigned char)name[i] >= 0x20 && name[i] != 0x7f);
		CHECK(valid_utf8((const unsigned char *)name, (size_t)len));
		uint32_t uid = 0;
		CHECK(names_parse_uid(name, &uid) == 0 && uid == (uint32_t)size * 7919u + 1);
		free(subject);
	}
	free(path);
	free(utf8);
	free(text);
	return 0;
}

/* names.c - owns the file names of messages: "DATE SUBJECT.UID.eml" built
 * from a message's date and subject, and the UID read back from a name.
 * Folder names are in names_folder.c, header decoding in names_header.c. */
#include "names.h"
#include "timefmt.h"
#include "utf8.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define EML_SUFFIX ".eml"
#define EML_SUFFIX_LEN (sizeof(EML_SUFFIX) - 1)
#define UID_DIGITS_MAX 10 /* 4294967295 */
#define NO_SUBJECT "(no subject)"

/* Whitespace and controls, all folded into one space between words: C0,
 * DEL, C1, NBSP, and the Unicode spaces and separators of category Z. */
static bool is_space_cp(uint32_t cp)
{
	return cp <= 0x20 || (cp >= 0x7f && cp <= 0xA0) || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
	       cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

/* The next character of the subject, an undecodable byte taken as U+FFFD. */
static uint32_t next_cp(const unsigned char **p, size_t *left)
{
	uint32_t cp;
	size_t len = utf8_decode(*p, *left, &cp);

	if (len == 0) {
		cp = UTF8_REPLACEMENT;
		len = 1;
	}
	*p += len;
	*left -= len;
	return cp;
}

/* A space is only written together with the character after it, so the
 * result is trimmed at both ends even when cut short. */
size_t names_clean(char *dst, size_t room, const char *subject)
{
	const unsigned char *p = (const unsigned char *)subject;
	size_t left = strlen(subject), n = 0;
	bool gap = false;

	while (left > 0) {
		uint32_t cp = next_cp(&p, &left);
		char enc[UTF8_MAX_BYTES];
		size_t elen;

		if (utf8_is_format(cp))
			continue; /* invisible: dropped, not a word break */
		if (is_space_cp(cp)) {
			gap = n > 0;
			continue;
		}
		elen = utf8_encode(cp == '/' ? NAMES_SLASH_STANDIN_CP : cp, enc);
		if (n + (gap ? 1 : 0) + elen > room)
			break;
		if (gap)
			dst[n++] = ' ';
		memcpy(dst + n, enc, elen);
		n += elen;
		gap = false;
	}
	return n;
}

int names_message_file(char *buf, size_t bufsize, enum names_mode mode, int64_t internaldate,
		       const char *subject_utf8, uint32_t uid)
{
	char suffix[sizeof("." EML_SUFFIX) + UID_DIGITS_MAX];
	size_t plen, slen, n = 0;

	if (!buf || bufsize < NAMES_MAX + 1)
		return -EINVAL;
	if (mode == NAMES_UID)
		return snprintf(buf, bufsize, "%" PRIu32 EML_SUFFIX, uid);
	if (mode != NAMES_READABLE)
		return -EINVAL;

	plen = (size_t)timefmt_date(internaldate, buf, bufsize);
	buf[plen++] = ' ';
	slen = (size_t)snprintf(suffix, sizeof(suffix), ".%" PRIu32 EML_SUFFIX, uid);
	if (subject_utf8)
		n = names_clean(buf + plen, NAMES_MAX - plen - slen, subject_utf8);
	if (n == 0) {
		n = sizeof(NO_SUBJECT) - 1;
		memcpy(buf + plen, NO_SUBJECT, n);
	}
	memcpy(buf + plen + n, suffix, slen + 1);
	return (int)(plen + n + slen);
}

int names_parse_uid(const char *name, uint32_t *uid)
{
	size_t len, start, end;
	uint64_t v = 0;

	if (!name || !uid)
		return -EINVAL;
	len = strlen(name);
	if (len <= EML_SUFFIX_LEN || strcmp(name + len - EML_SUFFIX_LEN, EML_SUFFIX) != 0)
		return -ENOENT;
	end = start = len - EML_SUFFIX_LEN;
	while (start > 0 && name[start - 1] >= '0' && name[start - 1] <= '9')
		start--;
	if (start == end || end - start > UID_DIGITS_MAX || name[start] == '0')
		return -ENOENT;
	if (start > 0 && name[start - 1] != '.')
		return -ENOENT;
	for (size_t i = start; i < end; i++)
		v = v * 10 + (uint64_t)(name[i] - '0');
	if (v > UINT32_MAX)
		return -ENOENT;
	*uid = (uint32_t)v;
	return 0;
}

/* utf8.c - owns the UTF-8 codec of utf8.h and the table of format
 * characters. */
#include "utf8.h"

#define UTF8_LAST_CP 0x10FFFF
#define SURROGATE_FIRST 0xD800
#define SURROGATE_LAST 0xDFFF

/* The smallest code point a sequence of each length may carry: a smaller
 * one is an overlong form (which could smuggle '/' or NUL past a check). */
static const uint32_t first_cp_of_length[UTF8_MAX_BYTES + 1] = { 0, 0, 0x80, 0x800, 0x10000 };

/* Length announced by a lead byte, and the value bits it carries; 0 for a
 * continuation byte or one that never occurs. */
static size_t lead_byte(unsigned char c, uint32_t *bits)
{
	if (c < 0x80) {
		*bits = c;
		return 1;
	}
	if ((c & 0xE0) == 0xC0) {
		*bits = c & 0x1Fu;
		return 2;
	}
	if ((c & 0xF0) == 0xE0) {
		*bits = c & 0x0Fu;
		return 3;
	}
	if ((c & 0xF8) == 0xF0) {
		*bits = c & 0x07u;
		return 4;
	}
	return 0;
}

size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
	size_t len;
	uint32_t c;

	if (n == 0 || (len = lead_byte(s[0], &c)) == 0 || n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3Fu);
	}
	if (c < first_cp_of_length[len] || c > UTF8_LAST_CP || (c >= SURROGATE_FIRST && c <= SURROGATE_LAST))
		return 0;
	*cp = c;
	return len;
}

size_t utf8_encode(uint32_t cp, char out[UTF8_MAX_BYTES])
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xC0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xE0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		out[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	out[0] = (char)(0xF0 | (cp >> 18));
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
	out[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

bool utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;

	while (n > 0) {
		uint32_t cp;
		size_t len = utf8_decode(p, n, &cp);

		if (len == 0)
			return false;
		p += len;
		n -= len;
	}
	return true;
}

bool utf8_is_format(uint32_t cp)
{
	static const uint32_t cf[][2] = {
		{ 0x00AD, 0x00AD },   { 0x0600, 0x0605 },   { 0x061C, 0x061C },   { 0x06DD, 0x06DD },
		{ 0x070F, 0x070F },   { 0x0890, 0x0891 },   { 0x08E2, 0x08E2 },   { 0x180E, 0x180E },
		{ 0x200B, 0x200F },   { 0x202A, 0x202E },   { 0x2060, 0x2064 },   { 0x2066, 0x206F },
		{ 0xFEFF, 0xFEFF },   { 0xFFF9, 0xFFFB },   { 0x110BD, 0x110BD }, { 0x110CD, 0x110CD },
		{ 0x13430, 0x1343F }, { 0x1BCA0, 0x1BCA3 }, { 0x1D173, 0x1D17A }, { 0xE0001, 0xE0001 },
		{ 0xE0020, 0xE007F },
	};

	for (size_t i = 0; i < sizeof(cf) / sizeof(cf[0]); i++)
		if (cp >= cf[i][0] && cp <= cf[i][1])
			return true;
	return false;
}

/* chars.h - the digit values every decoder here needs (percent-, C-, Q- and
 * quoted-printable escapes; base64) and ASCII case folding, in one place. */
#ifndef IMAPFS_CHARS_H
#define IMAPFS_CHARS_H

#include <stdbool.h>
#include <stddef.h>

/* 0..15 for a hex digit of either case, else -1. */
static inline int chars_hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* 0..63 for a base64 digit, else -1 (padding '=' included). */
static inline int chars_base64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	return c == '/' ? 63 : -1;
}

/* Locale-independent on purpose: "INBOX", charset and header names are
 * ASCII, and tolower() in e.g. a Turkish locale would not match 'I' with 'i'. */
static inline char chars_ascii_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* Whether the n bytes at a and b are equal but for ASCII case. */
static inline bool chars_ascii_caseeq(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (chars_ascii_lower(a[i]) != chars_ascii_lower(b[i]))
			return false;
	return true;
}

#endif

/* chars.h - the digit values every decoder here needs (percent-, C-, Q- and
 * quoted-printable escapes; base64), in one place. */
#ifndef IMAPFS_CHARS_H
#define IMAPFS_CHARS_H

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

#endif

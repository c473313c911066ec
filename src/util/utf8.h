/* utf8.h - UTF-8, decoded and encoded in one place for every module that
 * checks or cleans text: names, the log, the control file. */
#ifndef IMAPFS_UTF8_H
#define IMAPFS_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define UTF8_MAX_BYTES 4        /* the longest sequence */
#define UTF8_REPLACEMENT 0xFFFD /* U+FFFD, what stands for an undecodable byte */

/* Length (1-4) of the well-formed sequence at s, of which n bytes may be
 * read, and its code point in *cp; 0 when s starts no such sequence (n is
 * 0, a stray or missing continuation byte, an overlong form, a surrogate,
 * a value above U+10FFFF).  A NUL byte ends a sequence like any other byte
 * that is not a continuation, so n may overstate a C string's length. */
size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);

/* Writes cp (at most U+10FFFF, not a surrogate) to out; returns its length. */
size_t utf8_encode(uint32_t cp, char out[UTF8_MAX_BYTES]);

/* Whether the n bytes at s are well-formed UTF-8 throughout. */
bool utf8_valid(const char *s, size_t n);

/* Unicode category Cf (as of Unicode 15): characters not shown themselves
 * that change how the text around them reads -- bidi embeddings,
 * overrides, isolates and marks, zero-width spaces and joiners, the soft
 * hyphen, the BOM, tags.  In a name they make one string look like another. */
bool utf8_is_format(uint32_t cp);

#endif

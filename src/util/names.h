/* names.h - mapping between IMAP names/headers and file-system names:
 * folder names (names_folder.c), header fields (names_header.c), message
 * file names (names.c). */
#ifndef IMAPFS_NAMES_H
#define IMAPFS_NAMES_H

#include <stddef.h>
#include <stdint.h>

/* U+2215 DIVISION SLASH: stands in for a '/' that is part of a name, not a
 * separator of the path (the same character, as text and as code point). */
#define NAMES_SLASH_STANDIN "\xE2\x88\x95"
#define NAMES_SLASH_STANDIN_CP 0x2215

/*
 * All functions are thread-safe (no global state). Functions returning int
 * return 0 (or a length) on success and a negative errno on failure; on
 * failure any char ** output is set to NULL. NULL arguments give -EINVAL.
 * -ENOMEM means an allocation failed. -ENOTSUP means the C library's iconv
 * has no "UTF-7-IMAP" converter (glibc older than 2.36).
 */

/*
 * Modified UTF-7 (RFC 3501 5.1.3) <-> UTF-8, through glibc's "UTF-7-IMAP"
 * iconv. Decoding accepts only the canonical form (the one encoding gives
 * back): glibc alone also takes encoded printable ASCII ("&AGE-"), adjacent
 * shifted runs ("&U,BTFw-&ZeVnLIqe-") and an unterminated run ("&ZeVn"),
 * which would let two server names map to one path. A decoded U+0000 is
 * refused too. Invalid input -> -EINVAL. *out is malloc'd.
 */
int names_mutf7_to_utf8(const char *in, char **out);
int names_utf8_to_mutf7(const char *in, char **out);

/*
 * Server folder name (mUTF-7, hierarchy delimiter delim, '\0' meaning flat)
 * -> mount-relative UTF-8 path with '/' between components. *path is
 * malloc'd.
 *  - the name is decoded as a whole, then split at delim (the delimiter is
 *    printable ASCII, which canonical mUTF-7 always carries literally);
 *  - a '/' inside a component (delim != '/') becomes U+2215 "∕";
 *  - "inbox" in any case as the whole first component becomes "INBOX";
 *  - -EINVAL for: undecodable name, empty component, "." or "..", after
 *    decoding a C0, DEL or C1 control, U+2028 or U+2029, or a format
 *    character (Unicode Cf: bidi controls, zero-width space, BOM, soft
 *    hyphen ... but not U+200C and U+200D, which Persian and Indic words
 *    need), a delim that is not printable ASCII
 *    (or is '&'), and, when delim != '/', a component that already holds
 *    U+2215 (it could not be mapped back to the same server name);
 *  - -ENAMETOOLONG for a component longer than NAMES_MAX bytes.
 */
int names_folder_to_path(const char *mutf7, char delim, char **path);

/*
 * The reverse, for creating folders: UTF-8 path with '/' -> server name in
 * mUTF-7, components joined by delim. U+2215 becomes '/' again only if
 * delim != '/'. "inbox" in any case as the first component becomes "INBOX".
 * -EINVAL for: invalid UTF-8, a character names_folder_to_path refuses,
 * an empty, "." or ".." component, a component containing delim (delim != '/'), more than one
 * component when delim is '\0' (flat namespace), a bad delim.
 * *mutf7 is malloc'd.
 */
int names_path_to_folder(const char *path, char delim, char **mutf7);

/*
 * Decode an RFC 2047 header value of len bytes (folded or not: a line break
 * followed by SP/TAB is removed, any other line break becomes a space) to
 * UTF-8. Encoded words =?charset?B|Q?text?= are decoded from any charset
 * iconv knows (an RFC 2231 "*lang" suffix is ignored). Whitespace between
 * two decoded encoded words is dropped; adjacent words in the same charset
 * are joined when one ends inside a multi-byte character. A word that
 * cannot be decoded is kept as its raw text. Bytes that are not valid UTF-8
 * are taken as windows-1252 (ISO-8859-1 for 0x81, 0x8d, 0x8f, 0x90, 0x9d);
 * a NUL byte becomes U+FFFD. The result is always valid UTF-8.
 * Returns a malloc'd string, or NULL on ENOMEM. raw may be NULL if len is 0.
 */
char *names_decode_header(const char *raw, size_t len);

/*
 * From a header block as returned by BODY.PEEK[HEADER.FIELDS (SUBJECT)]
 * (CRLF or LF line ends, any case of the field name, other fields allowed,
 * stops at the first empty line) return the first Subject field decoded
 * with names_decode_header and trimmed of surrounding whitespace, or "" if
 * there is none. Returns a malloc'd string, or NULL on ENOMEM.
 */
char *names_subject_from_headers(const char *block, size_t len);

/* The raw (unfolded, not decoded) value of header field `name` (matched
 * case-insensitively) in a header block, or NULL when absent or empty. */
char *names_header_field(const char *block, size_t len, const char *name);

enum names_mode {
	NAMES_READABLE,
	NAMES_UID
};
#define NAMES_MAX 255

/*
 * The file name of a message, written NUL-terminated into buf
 * (bufsize >= NAMES_MAX + 1).
 *  NAMES_READABLE: "YYYY-MM-DD SUBJECT.UID.eml", date = internaldate (unix
 *    time, any int64, negative fine) in UTC. SUBJECT is subject_utf8 with
 *    runs of whitespace and control characters (C0, DEL, C1, and the Unicode
 *    spaces) folded to one space and trimmed, format characters (Unicode
 *    Cf: bidi overrides and isolates, zero-width characters, soft hyphen,
 *    BOM, tags) left out, '/' replaced by U+2215 "∕",
 *    invalid UTF-8 bytes replaced by U+FFFD, and "(no subject)" if that is
 *    empty or subject_utf8 is NULL. The subject is cut on a character
 *    boundary so the whole name is at most NAMES_MAX bytes; the
 *    ".UID.eml" suffix is always whole.
 *  NAMES_UID: "UID.eml".
 * Returns the length of the name, or -EINVAL if buf is NULL, bufsize is too
 * small or mode is unknown.
 */
int names_message_file(char *buf, size_t bufsize, enum names_mode mode, int64_t internaldate,
		       const char *subject_utf8, uint32_t uid);

/*
 * text (UTF-8) cleaned as a subject is in NAMES_READABLE (whitespace and
 * control runs folded and trimmed, format characters dropped, '/' replaced,
 * invalid bytes replaced), written into dst without a NUL, cut on a
 * character boundary to at most room bytes.  Returns its length (0: nothing
 * visible was left).
 */
size_t names_clean(char *dst, size_t room, const char *text);

/*
 * Parse the UID out of a message file name: "UID.eml" or "anything.UID.eml"
 * (anything may be empty). UID is decimal 1..4294967295 without leading
 * zeros or sign; ".eml" is matched case-sensitively, since we only ever
 * generate it in lower case and must not invent aliases.
 * Returns 0 and sets *uid, or -ENOENT if the name is not of that form.
 */
int names_parse_uid(const char *name, uint32_t *uid);

#endif

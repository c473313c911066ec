/* flags.h - message flags as imapfs shows them in the user.imap.flags
 * attribute ("\Seen \Flagged $Forwarded"): parsing, validation, formatting.
 * Pure functions. */
#ifndef IMAPFS_FLAGS_H
#define IMAPFS_FLAGS_H

#include <stddef.h>

#include "imap.h"

/* System flags as IMAP_FLAG_* bits, keywords as owned strings. */
struct flag_set {
	unsigned system;
	size_t nkeywords;
	char **keywords;
};

/* Parses flags separated by blanks (space, tab, CR, LF), case-insensitively;
 * a flag given twice counts once.  \Recent is ignored (nobody may set it);
 * unknown \System flags, a keyword that is no RFC 3501 atom (parentheses,
 * '%', '*', '"', '\\', ']', '{', controls, non-ASCII, over 200 bytes) and a
 * NUL in text give -EINVAL.  On success *out owns its keywords (free with
 * flags_free); on failure it is empty. */
int flags_parse(const char *text, size_t len, struct flag_set *out);

/* Appends a keyword (copied) unless fs has it already (case-insensitively);
 * -EINVAL when it is no valid keyword, -ENOMEM. */
int flags_add_keyword(struct flag_set *fs, const char *keyword);

/* "\Seen \Flagged $Label" (system flags first, in a fixed order); malloc'd. */
char *flags_format(const struct flag_set *fs);

void flags_free(struct flag_set *fs);

#endif

/* flags.h - message flags as imapfs shows them in the user.imap.flags
 * attribute ("\Seen \Flagged $Forwarded"): parsing, validation, formatting.
 * Pure functions. */
#ifndef IMAPFS_FLAGS_H
#define IMAPFS_FLAGS_H

#include <stdbool.h>
#include <stddef.h>

#include "imap.h"

/* System flags as IMAP_FLAG_* bits, keywords as owned strings. */
struct flag_set {
	unsigned system;
	size_t nkeywords;
	char **keywords;
};

/* Parses space-separated flags.  \Recent is ignored (nobody may set it);
 * unknown \System flags, bad keyword characters and parentheses give
 * -EINVAL.  On success *out owns its keywords (free with flags_free). */
int flags_parse(const char *text, size_t len, struct flag_set *out);

/* Appends a keyword (copied); -ENOMEM or -EINVAL. */
int flags_add_keyword(struct flag_set *fs, const char *keyword);

/* "\Seen \Flagged $Label" (system flags first, in a fixed order); malloc'd. */
char *flags_format(const struct flag_set *fs);

void flags_free(struct flag_set *fs);

/* An IMAP atom that may be a keyword (RFC 3501 flag-keyword). */
bool flags_keyword_valid(const char *keyword);

#endif

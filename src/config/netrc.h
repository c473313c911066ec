/* netrc.h - the password for a host from a ~/.netrc text, as curl and
 * fetchmail read it: "machine HOST login USER password SECRET" entries
 * (tokens separated by any white space, "default" for any host, "macdef"
 * blocks skipped).  Pure: no I/O, so it is unit-tested and fuzzed. */
#ifndef IMAPFS_NETRC_H
#define IMAPFS_NETRC_H

#include <stddef.h>

/* The password of the first entry for host whose login is user (or that
 * names no login); a "default" entry only when no machine entry matched.
 * 0 with *password malloc'd, -ENOENT when nothing matches, -ENOMEM. */
int netrc_password(const char *text, size_t len, const char *host, const char *user, char **password);

#endif

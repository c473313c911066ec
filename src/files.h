/* files.h - private files on the local disk: directories created 0700 and
 * files replaced atomically, for the cache, saved listings and the local
 * receive-folder table. */
#ifndef IMAPFS_FILES_H
#define IMAPFS_FILES_H

#include <stdbool.h>
#include <stddef.h>

/* Creates path and its missing parents 0700, and makes path itself 0700
 * whatever the umask or an earlier run left.  path is restored on return. */
int files_make_private_dirs(char *path);

/* Replaces path with data: written to path.tmp (0600), checked, (with
 * durable: synced,) then renamed, so a crash or a full disk leaves the old
 * file or the new one, never half of either.  Not for concurrent writers of
 * one path. */
int files_replace(const char *path, const void *data, size_t len, bool durable);

#endif

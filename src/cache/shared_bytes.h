/* shared_bytes.h - a block's bytes held by more than one owner: the memory
 * cache and the disk cache's write queue keep the same copy, and the last
 * to let go frees it.  Handed around as the plain pointer to the bytes. */
#ifndef IMAPFS_SHARED_BYTES_H
#define IMAPFS_SHARED_BYTES_H

#include <stddef.h>

/* len bytes (uninitialised) with one reference; NULL without memory. */
char *shared_bytes_new(size_t len);
/* shared_bytes_new of len bytes, copied from data. */
char *shared_bytes_copy(const char *data, size_t len);
/* Shortens bytes nobody else holds yet (the one reference); returns the
 * bytes, moved perhaps, or the old ones if they could not shrink. */
char *shared_bytes_shrink(char *bytes, size_t len);
/* One more reference; returns bytes. */
char *shared_bytes_ref(char *bytes);
/* Drops a reference; the last one frees.  NULL: nothing. */
void shared_bytes_unref(char *bytes);

#endif

/* quota.h - the account's storage quota for statfs (df): RFC 2087
 * GETQUOTAROOT of INBOX, STORAGE resource, asked at most once a minute. */
#ifndef IMAPFS_QUOTA_H
#define IMAPFS_QUOTA_H

#include <stdint.h>

#include "imap/pool.h"

struct quota;

struct quota *quota_new(struct pool *pool);
void quota_free(struct quota *q);

/* Bytes used and allowed: 0, or -ENODATA when the server has no quota (or
 * cannot be asked and never could). */
int quota_get(struct quota *q, uint64_t *used, uint64_t *limit);

#endif

/* tnef.h - reads the few message-level TNEF attributes ([MS-OXTNEF]) that
 * the message class needs.  Used by msgclass.c only.  Pure functions. */
#ifndef IMAPFS_TNEF_H
#define IMAPFS_TNEF_H

#include <stddef.h>

#include "msgclass.h"

#define TNEF_SIGNATURE 0x223E9F78u

struct tnef_info {
	char msg_class[MSGCLASS_SIZE];  /* attMessageClass; "" if absent */
	char prop_class[MSGCLASS_SIZE]; /* attMsgProps PidTagMessageClass; "" if absent */
	const unsigned char *key;       /* PidTagTnefCorrelationKey, points into the
					 * stream (with its NUL, if any); NULL if absent */
	size_t keylen;
};

/*
 * Scans a TNEF stream of len bytes.  Returns 0 when it starts with the TNEF
 * signature, -EINVAL otherwise.  Only level-1 (message) attributes are
 * read; reading stops at the first truncated attribute, bad checksum or
 * property it cannot size, keeping what was found before.  A class is taken
 * up to its first NUL; one of MSGCLASS_SIZE bytes or more, or a PT_UNICODE one with
 * non-ASCII characters, counts as absent.
 */
int tnef_scan(const void *data, size_t len, struct tnef_info *out);

#endif

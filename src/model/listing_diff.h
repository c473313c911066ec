/* listing_diff.h - what a sync found: the messages that came, went, or
 * whose flags changed between two listings of a folder.  Pure: no I/O, no
 * locks, nothing kept. */
#ifndef IMAPFS_LISTING_DIFF_H
#define IMAPFS_LISTING_DIFF_H

#include "listing.h"
#include "mailbox.h"

/* A re-created folder (new UIDVALIDITY) with more old and new messages than
 * this is reported as one MAILBOX_CHANGE_RELOADED, not message by message. */
#define LISTING_DIFF_MAX_RELOAD 20000

/* The changes from old to now, in UID order, as changes of folder; their
 * names point into old or now (valid while both are).  UIDs in known
 * (sorted; the messages the mount itself moved in or out, which the kernel
 * knows of already) are left out, but for flag changes.  A folder whose
 * UIDVALIDITY changed: every old message REMOVED and every new one ADDED,
 * whatever their UIDs, known or not (or one RELOADED).  Only the IMAP flags
 * count (MSG_IMAP_FLAGS).  *out is malloc'd, NULL when *n is 0.  0, or
 * -ENOMEM with the changes found until then in *out. */
int listing_diff(const struct listing *old, const struct listing *now, uint32_t folder, const uint32_t *known,
		 size_t nknown, struct mailbox_change **out, size_t *n);

#endif

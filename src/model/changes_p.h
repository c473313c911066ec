/* changes_p.h - what changes.c and changes_check.c share (model-private). */
#ifndef IMAPFS_CHANGES_P_H
#define IMAPFS_CHANGES_P_H

#include "changes.h"

/* What a pending entry turned out to be. */
enum outcome {
	OUTCOME_UNKNOWN, /* the server could not be asked */
	OUTCOME_COMPLETED,
	OUTCOME_ROLLED_BACK,
	OUTCOME_HALF,
	OUTCOME_GONE,    /* neither in the source nor arrived in the destination */
	OUTCOME_STALE,   /* a folder's UIDVALIDITY changed (re-created) */
	OUTCOME_REFUSED, /* the server refuses what would finish it */
};

/* Asks the server what became of e (finishing or undoing -- undo: the
 * server refused a step -- a half-done move on the way);
 * OUTCOME_UNKNOWN when it cannot be reached.  *new_uid: where it arrived. */
enum outcome changes_ask(struct mailbox *mb, const struct journal_entry *e, bool undo, uint32_t *new_uid);

/* SELECTs folder afresh and checks its UIDVALIDITY: 0, 1 when it changed
 * (or the folder is gone), or -errno. */
int changes_select_checked(struct imap_session *s, const char *folder, uint32_t validity);

/* Sets the flags of e->src_uid (selected) to e->text (see changes_check.c). */
int changes_apply_flags(struct imap_session *s, const struct journal_entry *e);

#endif

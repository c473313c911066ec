/* journal.h - the change journal: every change to mail is recorded, and
 * synced to disk, before its first command goes to the server; an entry is
 * removed only when the server's state has proved the outcome (the model's
 * resolver decides that).  Entries survive a crash of imapfs and are
 * resolved at the next mount with the same cache directory.
 *
 * Files, in the journal directory (cache_dir/journal-ACCOUNT, 0700, all
 * 0600; one imapfs at a time, by flock on the log):
 *   journal.log          the records (journal_codec.h)
 *   append-ID.eml        the message an APPEND entry sends
 *   unresolved.txt       what could not be resolved, for the user to read
 *   unresolved-ID.eml    the message of an APPEND left unresolved
 *                        (unresolved-ID-2.eml... if the name was taken)
 *   damaged-TIME.log     a journal found damaged: reported, never replayed
 *                        (damaged-TIME-2.log... likewise)
 * Entry ids grow and are not used again by a later mount (they start from
 * the clock), so no file named by an id is ever another entry's.
 *
 * Thread-safe.  Its lock is a leaf: taken last, held only over local disk
 * I/O, never across network I/O. */
#ifndef IMAPFS_JOURNAL_H
#define IMAPFS_JOURNAL_H

#include "journal_codec.h"

#include <stdio.h>

struct journal;

#define JOURNAL_MAX_PENDING 100000u /* entries; beyond, new changes get ENOSPC */
/* The log is rewritten with the pending entries only once it is larger than
 * this and fewer than a quarter of its records are pending entries (it is
 * emptied as soon as nothing is pending). */
#define JOURNAL_COMPACT_BYTES (8u << 20)

/* The journal directory's name for an account ("user@host:port"): one
 * path component. */
#define JOURNAL_NAME_MAX 120
void journal_dir_name(const char *account, char *out, size_t len);

/* Opens (creating) the journal directory name under the directory dirfd
 * (not kept) and loads its pending entries; -EBUSY while another imapfs
 * has it open (waited for up to 5 s: one just unmounted may be exiting).  A log cut short by a crash loses only its
 * last, unsynced record; a damaged one is set aside, reported in the log,
 * in unresolved.txt and in journal_status, and none of it is replayed. */
int journal_open(int dirfd, const char *name, struct journal **out, char *err, size_t errlen);
void journal_close(struct journal *j);

/* Records e (its id and time are set here) durably.  For an APPEND,
 * data/len is the message, staged next to the log first (e->staged is set);
 * otherwise data is NULL.  0, -ENOSPC when full, or -errno of the disk. */
int journal_add(struct journal *j, struct journal_entry *e, const void *data, size_t len);

/* The outcome of entry id is known: it is forgotten (and its staged file
 * removed). */
int journal_done(struct journal *j, uint64_t id);

/* The outcome of each of the n entries ids is known: as journal_done, with
 * one write and one sync for them all, so that the end of a batch does not
 * cost a sync per message.  Ids no longer pending are passed over.  0 or
 * -errno of the disk. */
int journal_done_many(struct journal *j, const uint64_t *ids, size_t n);

/* The n entries ids are about to go to the server together, to a
 * destination whose UIDVALIDITY and UIDNEXT were just read.  Recorded
 * durably before the batch is sent (one sync; one per JOURNAL_SENT_MAX_IDS
 * ids), each entry still pending gets JOURNAL_SENT and these as its
 * dest_validity and dest_uidnext: after a crash its outcome is in doubt,
 * and the next mount must ask the server (from dest_uidnext on) rather
 * than send it again and make a copy, while an entry without the flag was
 * never sent.  Ids no longer pending are passed over.  0, or -errno of the
 * disk: then the batch must not be sent (some of it may be marked already,
 * which costs only the asking). */
int journal_sent(struct journal *j, const uint64_t *ids, size_t n, uint32_t dest_validity,
		 uint32_t dest_uidnext);
/* Entry id, marked sent, was found not done: it is sent again, under a
 * SENT record of its own (in memory only: after a crash, asking again is
 * right). */
void journal_unsent(struct journal *j, uint64_t id);

/* Entry id cannot be resolved: why (one line) and the entry go to
 * unresolved.txt, its staged message is kept there as unresolved-ID.eml
 * (or -2, -3...: never over a file kept before; the paragraph in
 * unresolved.txt names it), and it is forgotten. */
int journal_park(struct journal *j, uint64_t id, const char *why);

/* Copies of the pending entries, oldest first; free each with
 * journal_entry_free and the array with free. */
int journal_pending(struct journal *j, struct journal_entry **out, size_t *n);
size_t journal_count(struct journal *j);

/* Is entry id still pending (not done, not parked)?  Its flags
 * (JOURNAL_ACKED, JOURNAL_SENT), or -ENOENT when it is not.  A copy taken
 * by journal_pending may be out of date by the time it is worked on. */
int journal_flags(struct journal *j, uint64_t id);
static inline bool journal_is_pending(struct journal *j, uint64_t id)
{
	return journal_flags(j, id) >= 0;
}

/* Opens the staged message of an APPEND entry for reading; fd or -errno. */
int journal_open_staged(struct journal *j, const char *name);

/* One line per pending entry, and the damage found at open, for .status. */
void journal_status(struct journal *j, FILE *out);

#endif

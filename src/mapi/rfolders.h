/* rfolders.h - the receive-folder table: which folder mail of a message
 * class goes to (MAPI SetReceiveFolder / GetReceiveFolder, spec
 * receive-folders.md section 1).  Pure data, no I/O and no locks: the caller
 * serialises access to one table.
 *
 * Errors are negative errno values.  Every failing call leaves the table
 * exactly as it was.  Strings returned point into the table and stay valid
 * until the next call that changes it. */
#ifndef IMAPFS_RFOLDERS_H
#define IMAPFS_RFOLDERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RFOLDERS_MAX_ROWS 2000
#define RFOLDERS_CLASS_MAX 254 /* strlen limit; 255 with the NUL */
#define RFOLDERS_ROOT "/"      /* the store root, IPC's default target */

struct rfolder_row {
	char *cls;     /* as typed (case kept); "" is the default row */
	char *folder;  /* mount-relative UTF-8 path ("INBOX", "Archive/2024"), or "/" */
	int64_t mtime; /* unix time of the last change */
};

struct rfolders;

/* The four rows a new mailbox has (spec R782): "" INBOX, IPC /, IPM INBOX,
 * REPORT.IPM INBOX, all with mtime now.  NULL on ENOMEM (so for all
 * constructors). */
struct rfolders *rfolders_new_default(int64_t now);
struct rfolders *rfolders_new_empty(void);
/* A deep copy, for apply-or-nothing edits: change the copy, then swap. */
struct rfolders *rfolders_copy(const struct rfolders *t);
void rfolders_free(struct rfolders *t); /* NULL is fine */

/* Spec 1 "Class validation": printable ASCII (32..126, spaces included),
 * strlen <= RFOLDERS_CLASS_MAX, no leading or trailing '.', no "..".
 * "" (the default class) is valid. */
bool rfolders_class_valid(const char *cls);

/* GetReceiveFolder.  Picks the row whose class is the longest
 * case-insensitive whole-segment prefix of cls: row class n matches cls when
 * they are equal or cls starts with n followed by '.'; the "" row matches
 * everything.  *folder is that row's folder, *explicit_cls its class as
 * stored.  No row matches at all (the "" row was never there): "INBOX" and
 * "" (spec R852).  -EINVAL for an invalid class; outputs untouched then. */
int rfolders_lookup(const struct rfolders *t, const char *cls, const char **folder,
		    const char **explicit_cls);

/* Does folder exist and take mail?  0 yes, -ENOENT no such folder,
 * -EOPNOTSUPP \Noselect or virtual; any other negative errno (-EIO) is passed
 * on too.  rfolders_set asks it about "/" as well: imapfs answers 0 there. */
typedef int rfolders_check_fn(const char *folder, void *ctx);

/* SetReceiveFolder; folder NULL deletes the row of cls.  Checks, in order:
 *   -EINVAL   invalid class, or folder ""
 *   -EPERM    deleting "" (the default row cannot go)
 *   -EACCES   deleting IPM or REPORT.IPM (any case), or pointing them at a
 *             folder other than the one they have; setting the folder they
 *             already have is a successful no-op (mtime kept), so a saved
 *             table can be written back
 *   -ENOSPC   a new row when the table has RFOLDERS_MAX_ROWS
 *   check()   its error, if it returns one (check may be NULL: no check)
 *   -ENOMEM
 * Deleting a row that does not exist succeeds.  Set replaces the folder of
 * the row whose class matches case-insensitively and takes the new spelling
 * of the class (the latest one typed, like gromox's REPLACE), or inserts a
 * row; either way mtime becomes now.  A leading "inbox" path component in
 * any case is spelled "INBOX" (RFC 3501 5.1) before check() sees the path
 * and when it is stored. */
int rfolders_set(struct rfolders *t, const char *cls, const char *folder, int64_t now,
		 rfolders_check_fn *check, void *ctx);

/* Restores a persisted row as it was (class, folder, mtime), bypassing the
 * SetReceiveFolder rules that protect fixed rows; a row of the same class is
 * replaced.  -EINVAL for an invalid class or an empty folder, -ENOSPC,
 * -ENOMEM.  For loading a table, never for user input. */
int rfolders_load_row(struct rfolders *t, const char *cls, const char *folder, int64_t mtime);

size_t rfolders_count(const struct rfolders *t);
/* Row i (< count) in control-file order: sorted by class, ASCII
 * case-insensitively; NULL past the end. */
const struct rfolder_row *rfolders_row(const struct rfolders *t, size_t i);
/* "fixed" for IPM and REPORT.IPM, "nodelete" for "", else "". */
const char *rfolders_row_flags(const struct rfolder_row *row);

/* A folder was renamed through the mount: rows pointing at old_path or below
 * it (old_path "/" ...) now point at new_path (+ the rest).  mtime is kept:
 * the user's choice did not change.  Renaming INBOX moves its messages but
 * leaves INBOX in place (RFC 3501 6.3.5), so it changes no row; neither does
 * "/".  Returns how many rows changed (0 on ENOMEM, table unchanged). */
size_t rfolders_rename_folder(struct rfolders *t, const char *old_path, const char *new_path);

/* A folder was removed: rows pointing at it or below it are deleted, except
 * the rows that cannot be deleted ("", IPM, REPORT.IPM), which fall back to
 * INBOX.  INBOX and "/" cannot be removed: no row changes.  Returns how many
 * rows changed or went (0 on ENOMEM, table unchanged). */
size_t rfolders_remove_folder(struct rfolders *t, const char *path);

#endif

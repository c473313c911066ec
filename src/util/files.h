/* files.h - private files on the local disk: the cache directory and the
 * state directory, and everything imapfs keeps in them (blocks, listings,
 * upload staging files, the local receive-folder table).
 *
 * A private directory is opened once, without following a symbolic link,
 * and only when it belongs to the user and others cannot write to it; every
 * file in it is then reached relative to that descriptor, never by a path
 * that someone could redirect.  Names passed to the *_at functions are one
 * path component; none of them follows a symbolic link in the last
 * component, and files are created exclusively (O_EXCL), 0600 whatever the
 * umask, directories 0700.  Errors are negative errno values. */
#ifndef IMAPFS_FILES_H
#define IMAPFS_FILES_H

#include <stdbool.h>
#include <stddef.h>

struct files_dir;

/* Opens path as a private directory, creating it (and missing parents)
 * 0700 when absent.  Refused, with a sentence in err saying why and what to
 * do: a symbolic link, not a directory, not owned by the user, writable by
 * group or others.  A directory that passes is made 0700. */
int files_dir_open(const char *path, struct files_dir **out, char *err, size_t errlen);

/* The subdirectory name of d, created 0700 when absent, under the same
 * checks (except that a group/other mode is corrected: only the user can
 * have made it inside d).  The result is independent of d. */
int files_dir_sub(const struct files_dir *d, const char *name, struct files_dir **out, char *err,
		  size_t errlen);

void files_dir_close(struct files_dir *d);

/* For messages only: the path as it was when opened. */
const char *files_dir_path(const struct files_dir *d);
int files_dir_fd(const struct files_dir *d);

/* A subdirectory of dirfd as a descriptor (created when create): a real
 * directory of the user's, made 0700. */
int files_subdir_at(int dirfd, const char *name, bool create);

/* Opens name read-only: a regular file owned by the user (-ELOOP for a
 * symbolic link, -EPERM for anything else). */
int files_open_at(int dirfd, const char *name);

/* Creates name exclusively, 0600; access is O_WRONLY or O_RDWR. */
int files_create_at(int dirfd, const char *name, int access);

/* Opens name for appending (O_RDWR | O_APPEND), creating it 0600: a
 * regular file of the user's, made 0600. */
int files_append_at(int dirfd, const char *name);

/* Writes all of buf (restarting after EINTR); 0 or -errno. */
int files_write_all(int fd, const void *buf, size_t n);

/* Replaces name with data: written to name.tmp (created afresh), checked,
 * (with durable: synced,) then renamed, so a crash or a full disk leaves the
 * old file or the new one, never half of either.  Not for concurrent
 * writers of one name. */
int files_replace_at(int dirfd, const char *name, const void *data, size_t len, bool durable);
/* The same, with what write_fn writes to the new file's descriptor (opened
 * O_WRONLY at offset 0): 0, or -errno, which leaves the old file. */
typedef int files_writer(int fd, void *ctx);
int files_replace_with(int dirfd, const char *name, files_writer *write_fn, void *ctx, bool durable);

/* A private temporary file in dirfd, already unlinked, open O_RDWR. */
int files_temp_at(int dirfd);

#endif

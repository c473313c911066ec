/* upload.h - files being written into a folder (cp, rsync, a mail client's
 * save): each is a private, unnamed temporary file until its first flush,
 * when the bytes are APPENDed as one message.  Messages can be large, so the
 * data never sits in memory.  Thread-safe; no lock is held while the data
 * is sent. */
#ifndef IMAPFS_UPLOAD_H
#define IMAPFS_UPLOAD_H

#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

struct mailbox;
struct uploads;
struct upload;

struct receive;
struct files_dir;

/* Temporary files go in dir (see files.h), which must outlive u.  Files
 * written at the mount root are delivered to the receive folder of their
 * class.  timeout (seconds, the mount's): how long a change to a file waits
 * for its store under way before it fails with -EBUSY. */
struct uploads *uploads_new(struct mailbox *mb, struct receive *rcv, const struct files_dir *dir,
			    unsigned timeout);
void uploads_free(struct uploads *u);

/* A new file `name` in folder directory parent; st describes it.  Its size
 * limit is fixed here: the server's APPENDLIMIT, else MAILBOX_APPEND_MAX. */
int uploads_create(struct uploads *u, uint64_t parent, const char *name, struct upload **out,
		   struct stat *st);
/* Bytes written, or -errno.  A write past the size limit fails with -EFBIG
 * and nothing is written.  A failed write or truncate (over the limit, or
 * the temporary file's own error) sticks: the upload then stores nothing,
 * and flush and fsync report that error.  A write while the file is being
 * stored (another descriptor's flush) waits for that store: -EBUSY when it
 * outlasts the timeout; after a store, the next flush fails with -EPERM. */
ssize_t upload_write(struct upload *up, const char *buf, size_t size, off_t off);
/* The bytes written so far (a file created read-write is read back). */
ssize_t upload_read(struct upload *up, char *buf, size_t size, off_t off);
/* 0, or the error that stops the upload from being stored. */
int upload_error(struct upload *up);
/* APPENDs the data (once); errors come back here so close(2) reports them.
 * A flush while another one stores the file waits for it (-EBUSY past the
 * timeout), then reports as if it came after. */
int upload_flush(struct uploads *u, struct upload *up);
/* The writer closed its last descriptor. */
void upload_release(struct upload *up);
/* Of an open upload: its attributes (-ENOENT once stored: then it is a
 * message), and setattr as for uploads_setattr. */
int upload_getattr(struct upload *up, struct stat *st);
int upload_setattr(struct upload *up, const struct stat *attr, int to_set, struct stat *st);

/* For an inode of a file still being written (-ENOENT otherwise, also once
 * it has been stored: then it is a message like any other). */
int uploads_getattr(struct uploads *u, uint64_t ino, struct stat *st);
/* mtime becomes the INTERNALDATE; size truncates (-EFBIG past the limit,
 * which sticks as for upload_write); mode and owner are ignored.  Changes
 * wait for a store under way, as writes do. */
int uploads_setattr(struct uploads *u, uint64_t ino, const struct stat *attr, int to_set, struct stat *st);
/* user.imap.flags become the flags of the stored message; other user.imap.*
 * attributes (cp -a copies them all) are accepted and ignored. */
int uploads_setxattr(struct uploads *u, uint64_t ino, const char *name, const char *value, size_t size);

#endif

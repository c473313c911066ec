/* upload.h - files being written into a folder (cp, rsync, a mail client's
 * save): each is a private, unnamed temporary file until its first flush,
 * when the bytes are APPENDed as one message.  Messages can be large, so the
 * data never sits in memory.  Thread-safe. */
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
 * class. */
struct uploads *uploads_new(struct mailbox *mb, struct receive *rcv, const struct files_dir *dir);
void uploads_free(struct uploads *u);

/* A new file `name` in folder directory parent; st describes it. */
int uploads_create(struct uploads *u, uint64_t parent, const char *name, struct upload **out,
		   struct stat *st);
int upload_write(struct upload *up, const char *buf, size_t size, off_t off);
/* APPENDs the data (once); errors come back here so close(2) reports them. */
int upload_flush(struct uploads *u, struct upload *up);
/* The writer closed its last descriptor. */
void upload_release(struct upload *up);

/* For an inode of a file still being written (-ENOENT otherwise, also once
 * it has been stored: then it is a message like any other). */
int uploads_getattr(struct uploads *u, uint64_t ino, struct stat *st);
/* mtime becomes the INTERNALDATE; size truncates; mode and owner are ignored. */
int uploads_setattr(struct uploads *u, uint64_t ino, const struct stat *attr, int to_set, struct stat *st);
/* user.imap.flags become the flags of the stored message; other user.imap.*
 * attributes (cp -a copies them all) are accepted and ignored. */
int uploads_setxattr(struct uploads *u, uint64_t ino, const char *name, const char *value, size_t size);

#endif

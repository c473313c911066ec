/* receive.h - receive folders in a running mount (MAPI SetReceiveFolder /
 * GetReceiveFolder, see receive-folders.md): the table, kept on the server
 * as a METADATA entry when it can be, else in a private local state file;
 * the control file's reads and writes; look-ups; where a file written at the
 * mount root is delivered; and, with -o route_incoming, moving new INBOX
 * mail to the receive folder of its class.  Thread-safe. */
#ifndef IMAPFS_RECEIVE_H
#define IMAPFS_RECEIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mailbox;
struct pool;
struct ctl_writer;
struct receive;

struct receive_options {
	const char *account; /* "user@host:port": names the local state file */
	bool route_incoming;
	int poll_interval; /* seconds between INBOX checks when routing */
	unsigned timeout;  /* seconds a change waits for saves by others */
};

#define RECEIVE_CTL_NAME ".receive-folders"
#define RECEIVE_METADATA_ENTRY "/private/vendor/imapfs/receive-folders"

struct receive *receive_new(struct mailbox *mb, struct pool *pool, const struct receive_options *o);
void receive_free(struct receive *r);

/* Loads the table (server, else local file, else the defaults) and notes
 * where INBOX ends, so routing leaves older mail alone.  Before mounting. */
int receive_load(struct receive *r);

/* The control file's current text (malloc'd). */
char *receive_text(struct receive *r, size_t *len);
/* The state of one open-for-writing of the control file (a partial line). */
struct ctl_writer *receive_writer_new(void);
void receive_writer_free(struct ctl_writer *w);
/* write(2) and flush(2) of the control file, through w (one per open).
 * They return once the table with their changes is saved: -EIO when that
 * failed, -ETIMEDOUT when saves of other changes held it up past the
 * timeout (the change is in the table; whether it was saved is not known). */
int receive_write(struct receive *r, struct ctl_writer *w, const char *data, size_t len);
int receive_flush(struct receive *r, struct ctl_writer *w);

/* user.receive_folder.CLASS: "FOLDER\tEXPLICIT-CLASS", malloc'd. */
int receive_lookup(struct receive *r, const char *cls, char **value, size_t *len);

/* The folder inode a message (its bytes) is delivered to; -EOPNOTSUPP when
 * its receive folder is the root. */
int receive_target(struct receive *r, const char *data, size_t len, uint64_t *folder_ino);

/* The routing thread: started after daemonising, stopped before unmount. */
int receive_start(struct receive *r);
void receive_stop(struct receive *r);

#endif

/* parts.h - the `.parts` view: for a message file NAME.eml, the directory
 * NAME.eml.parts (resolved by name, never listed) holds one file per leaf
 * MIME part with its transfer encoding decoded, and an attached message's
 * raw bytes with a `.parts` directory of its own.  Only the part read is
 * fetched (BINARY where the server has it), through the block cache.
 * Thread-safe. */
#ifndef IMAPFS_PARTS_H
#define IMAPFS_PARTS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "util/names.h"
#include "vnode.h"

struct mailbox;
struct parts;

struct parts *parts_new(struct mailbox *mb, struct vnodes *v);
void parts_free(struct parts *p);

/* Whether name in folder directory parent names a `.parts` directory. */
int parts_is_dir_name(const char *name);

/* Lookup of name: in a folder (NAME.eml.parts) or in a `.parts` directory
 * (key k); st filled and the lookup counted.  -ENOENT when no such part. */
int parts_lookup_in_folder(struct parts *p, uint64_t parent, const char *name, struct stat *st);
int parts_lookup(struct parts *p, const struct vnode_key *k, const char *name, struct stat *st);
/* Attributes of a `.parts` directory or part file. */
int parts_getattr(struct parts *p, uint64_t ino, const struct vnode_key *k, struct stat *st);

/* The entries of a `.parts` directory (view_entries_free them). */
int parts_list(struct parts *p, const struct vnode_key *k, struct view_entry **out, size_t *n);

/* Up to size bytes of part file k from off; the count, or -errno. */
ssize_t parts_read(struct parts *p, const struct vnode_key *k, char *buf, size_t size, off_t off);

/* user.imap.parts of message ino: its part file names, one per line. */
int parts_xattr(struct parts *p, uint64_t ino, char **value, size_t *len);

#endif

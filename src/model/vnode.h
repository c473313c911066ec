/* vnode.h - inodes for what is no (folder, UID): the `.parts` directory of
 * a message, its part files, and search directories.  Such an inode is
 * (INODE_VIRTUAL_FOLDER + 1) << 32 | id; the table maps id to what it names
 * and counts the kernel's lookups, so forget can free it.  The same key
 * always gets the same inode while the kernel holds it.  Thread-safe. */
#ifndef IMAPFS_VNODE_H
#define IMAPFS_VNODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "inode.h"

#define VNODE_TEXT_MAX 1024 /* a section path or a search query, bytes */
#define VNODE_MAX 1000000u  /* nodes held at once; more is ENFILE */

enum vnode_kind {
	VNODE_PARTS_DIR = 1, /* folder, uid, text: section of the message
			      * whose parts it holds ("" the whole message) */
	VNODE_PART_FILE,     /* folder, uid, text: the part's section */
	VNODE_SEARCH_ROOT,   /* folder (0: the mount root): FOLDER/.search */
	VNODE_SEARCH_DIR,    /* folder, text: the query; folder 0 of an
			      * account-wide search is its top directory */
	VNODE_SEARCH_BRANCH, /* folder, text: folder's place under the
			      * account-wide search `text` */
};

struct vnode_key {
	enum vnode_kind kind;
	uint32_t folder;
	uint32_t uid;
	const char *text; /* never NULL; at most VNODE_TEXT_MAX bytes */
};

struct vnodes;

/* An entry of a virtual directory's listing.  A virtual node's (kind not
 * 0) inode is counted when the entry is handed to the kernel
 * (vnodes_count_entry); a message's is in st already. */
struct view_entry {
	char *name;
	struct stat st;
	enum vnode_kind kind; /* 0: a message */
	uint32_t folder, uid;
	char *text;     /* malloc'd, with kind */
	bool has_parts; /* an attached message: NAME.parts is its `.parts` */
};
void view_entries_free(struct view_entry *v, size_t n);

struct vnodes *vnodes_new(void);
void vnodes_free(struct vnodes *v);

/* The inode of key, made when new, with one more lookup counted.
 * -ENAMETOOLONG for a text over VNODE_TEXT_MAX, -ENFILE when full. */
int vnodes_lookup(struct vnodes *v, const struct vnode_key *key, uint64_t *ino);
/* What ino names; the text is copied into text (VNODE_TEXT_MAX + 1 bytes
 * of room).  -ESTALE when the table does not hold it. */
int vnodes_get(struct vnodes *v, uint64_t ino, struct vnode_key *key, char *text);
/* The kernel forgot nlookup lookups of ino: at zero it goes. */
void vnodes_forget(struct vnodes *v, uint64_t ino, uint64_t nlookup);
/* One lookup of the entry's node counted, its inode put in e->st. */
int vnodes_count_entry(struct vnodes *v, struct view_entry *e);
/* Nodes held now. */
size_t vnodes_count(struct vnodes *v);

#endif

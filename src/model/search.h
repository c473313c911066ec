/* search.h - server-side search as directories: FOLDER/.search/QUERY holds
 * the messages of FOLDER that UID SEARCH QUERY finds, under their usual
 * names and inodes; MOUNT/.search/QUERY searches every folder and shows the
 * hits under the folder tree.  Neither `.search` nor a query is listed by
 * readdir.  Results age like listings (dir_cache) and a touch of the
 * query's directory asks again.  Thread-safe. */
#ifndef IMAPFS_SEARCH_H
#define IMAPFS_SEARCH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "vnode.h"

#define SEARCH_DIR_NAME ".search"

struct mailbox;
struct search;

struct search *search_new(struct mailbox *mb, struct vnodes *v);
void search_free(struct search *s);

/* Lookup of `.search` in a folder (or the root), or of name in a search
 * directory pk; st filled and, for a virtual node, the lookup counted. */
int search_lookup_in_folder(struct search *s, uint64_t parent, const char *name, struct stat *st);
int search_lookup(struct search *s, const struct vnode_key *pk, const char *name, struct stat *st);
int search_getattr(struct search *s, uint64_t ino, const struct vnode_key *k, struct stat *st);
/* The entries of a search directory (view_entries_free them).  -EINVAL
 * for a query the server refuses. */
int search_list(struct search *s, const struct vnode_key *k, struct view_entry **out, size_t *n);
/* touch: the next listing of k asks the server again. */
void search_refresh(struct search *s, const struct vnode_key *k);
/* The folder whose messages directory k lists (0: none, e.g. `.search`
 * itself or an account-wide query's top): rm and mv there act on it. */
uint32_t search_folder_of(const struct vnode_key *k);

#endif

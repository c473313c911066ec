/* ops_virtual.c - the FUSE side of the virtual nodes (model/vnode.h): the
 * `.parts` directory of a message and its part files, and the `.search`
 * directories.  They are resolved by name and never listed in a folder, so
 * tools walking the tree (find, rsync, du, backups) see what they saw
 * before.  `.parts` is read-only (EROFS); in a search directory rm and mv
 * act on the messages, as in their folder (ops_virtual_folder). */
#include "ops.h"
#include "model/mailbox.h"
#include "model/parts.h"
#include "model/search.h"
#include "model/vnode.h"
#include "util/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

struct vdir {
	struct view_entry *v;
	size_t n;
	fuse_ino_t folder; /* for "..": the message's folder */
};

struct vfile {
	struct vnode_key key;
	char text[VNODE_TEXT_MAX + 1];
};

static void free_vdir(void *obj)
{
	struct vdir *d = obj;

	view_entries_free(d->v, d->n);
	free(d);
}

static bool is_search(const struct vnode_key *k)
{
	return k->kind == VNODE_SEARCH_ROOT || k->kind == VNODE_SEARCH_DIR || k->kind == VNODE_SEARCH_BRANCH;
}

static void reply_entry(fuse_req_t req, const struct stat *st)
{
	struct fuse_entry_param e;

	ops_fill_entry(ctx_of(req), st, &e);
	fuse_reply_entry(req, &e);
}

bool ops_virtual_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct ops_context *c = ctx_of(req);
	char text[VNODE_TEXT_MAX + 1];
	struct vnode_key k;
	struct stat st;
	int r;

	if (inode_is_virtual(parent)) {
		r = vnodes_get(c->vnodes, parent, &k, text);
		if (r == 0 && is_search(&k))
			r = search_lookup(c->search, &k, name, &st);
		else if (r == 0)
			r = parts_lookup(c->parts, &k, name, &st);
	} else if (inode_is_folder(parent) && parts_is_dir_name(name)) {
		r = parts_lookup_in_folder(c->parts, parent, name, &st);
		if (r == -ENOENT)
			return false; /* no such message: maybe a folder of that name */
	} else if (inode_is_folder(parent) && strcmp(name, SEARCH_DIR_NAME) == 0) {
		r = search_lookup_in_folder(c->search, parent, name, &st);
	} else {
		return false;
	}
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		reply_entry(req, &st);
	return true;
}

void ops_virtual_forget(struct ops_context *c, fuse_ino_t ino, uint64_t nlookup)
{
	if (inode_is_virtual(ino))
		vnodes_forget(c->vnodes, ino, nlookup);
}

bool ops_virtual_getattr(fuse_req_t req, fuse_ino_t ino)
{
	struct ops_context *c = ctx_of(req);
	char text[VNODE_TEXT_MAX + 1];
	struct vnode_key k;
	struct stat st;
	int r;

	if (!inode_is_virtual(ino))
		return false;
	r = vnodes_get(c->vnodes, ino, &k, text);
	if (r == 0 && is_search(&k))
		r = search_getattr(c->search, ino, &k, &st);
	else if (r == 0)
		r = parts_getattr(c->parts, ino, &k, &st);
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_attr(req, &st, is_search(&k) ? c->entry_timeout : c->attr_timeout);
	return true;
}

fuse_ino_t ops_virtual_folder(fuse_req_t req, fuse_ino_t ino)
{
	struct ops_context *c = ctx_of(req);
	char text[VNODE_TEXT_MAX + 1];
	struct vnode_key k;
	uint32_t folder;

	if (!inode_is_virtual(ino))
		return ino;
	if (vnodes_get(c->vnodes, ino, &k, text) < 0 || !is_search(&k) || !(folder = search_folder_of(&k)))
		return 0;
	return inode_of_folder(folder);
}

bool ops_virtual_touch(fuse_req_t req, fuse_ino_t ino)
{
	struct ops_context *c = ctx_of(req);
	char text[VNODE_TEXT_MAX + 1];
	struct vnode_key k;

	if (!inode_is_virtual(ino) || vnodes_get(c->vnodes, ino, &k, text) < 0 || !is_search(&k))
		return false;
	search_refresh(c->search, &k);
	return ops_virtual_getattr(req, ino);
}

bool ops_virtual_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct ops_context *c = ctx_of(req);
	char text[VNODE_TEXT_MAX + 1];
	struct vdir *d;
	struct vnode_key k;
	int r;

	if (!inode_is_virtual(ino))
		return false;
	d = calloc(1, sizeof(*d));
	r = d ? vnodes_get(c->vnodes, ino, &k, text) : -ENOMEM;
	if (r == 0 && is_search(&k))
		r = search_list(c->search, &k, &d->v, &d->n);
	else if (r == 0)
		r = k.kind == VNODE_PARTS_DIR ? parts_list(c->parts, &k, &d->v, &d->n) : -ENOTDIR;
	if (r == 0)
		d->folder = inode_of_folder(k.folder);
	if (r == 0 && ops_handle_set(fi, OPS_HANDLE_VDIR, d, free_vdir) < 0)
		r = -ENOMEM;
	if (r < 0) {
		if (d)
			free_vdir(d);
		fuse_reply_err(req, -r);
		return true;
	}
	if (fuse_reply_open(req, fi) != 0)
		ops_handle_drop(fi);
	return true;
}

/* "." and "..": the kernel counts no lookup of either */
static size_t add_dots(fuse_req_t req, fuse_ino_t ino, fuse_ino_t up, char *buf, size_t room, size_t i,
		       bool plus)
{
	struct fuse_entry_param e;

	memset(&e, 0, sizeof(e));
	e.ino = i == 0 ? ino : up;
	e.attr.st_ino = e.ino;
	e.attr.st_mode = S_IFDIR | 0500;
	if (plus)
		return fuse_add_direntry_plus(req, buf, room, i == 0 ? "." : "..", &e, (off_t)i + 1);
	return fuse_add_direntry(req, buf, room, i == 0 ? "." : "..", &e.attr, (off_t)i + 1);
}

/* A `.parts` listing.  With readdirplus the kernel counts a lookup of each
 * entry it is handed: the table counts it too, and takes it back for one
 * that did not fit. */
void ops_virtual_readdir(fuse_req_t req, fuse_ino_t ino, struct ops_handle *h, size_t size, off_t off,
			 bool plus)
{
	struct ops_context *c = ctx_of(req);
	struct vdir *d = h->obj;
	char *buf = malloc(size ? size : 1);
	size_t used = 0;

	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	for (size_t i = off < 0 ? 0 : (size_t)off; i < d->n + 2; i++) {
		struct view_entry *e = i >= 2 ? &d->v[i - 2] : NULL;
		size_t need;

		if (!e) {
			need = add_dots(req, ino, d->folder, buf + used, size - used, i, plus);
		} else if (plus) {
			struct fuse_entry_param ep;

			int r = vnodes_count_entry(c->vnodes, e);

			if (r < 0) {
				log_warn("listing of a virtual directory cut short: %s", strerror(-r));
				if (used == 0) {
					free(buf);
					fuse_reply_err(req, -r);
					return;
				}
				break;
			}
			ops_fill_entry(c, &e->st, &ep);
			need = fuse_add_direntry_plus(req, buf + used, size - used, e->name, &ep,
						      (off_t)i + 1);
			if (need > size - used && e->kind) /* not handed out */
				vnodes_forget(c->vnodes, e->st.st_ino, 1);
		} else {
			if (e->kind)
				e->st.st_ino = 1; /* any: readdir's inode is not a lookup */
			need = fuse_add_direntry(req, buf + used, size - used, e->name, &e->st, (off_t)i + 1);
		}
		if (need > size - used)
			break;
		used += need;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
}

bool ops_virtual_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct ops_context *c = ctx_of(req);
	struct vfile *f;
	int r;

	if (!inode_is_virtual(ino))
		return false;
	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & (O_TRUNC | O_APPEND))) {
		fuse_reply_err(req, EROFS);
		return true;
	}
	f = calloc(1, sizeof(*f));
	r = f ? vnodes_get(c->vnodes, ino, &f->key, f->text) : -ENOMEM;
	if (r == 0 && f->key.kind != VNODE_PART_FILE)
		r = -EISDIR;
	if (r == 0 && ops_handle_set(fi, OPS_HANDLE_PART, f, free) < 0)
		r = -ENOMEM;
	if (r < 0) {
		free(f);
		fuse_reply_err(req, -r);
		return true;
	}
	f->key.text = f->text;
	fi->keep_cache = 1; /* a part never changes */
	fi->noflush = 1;
	if (fuse_reply_open(req, fi) != 0)
		ops_handle_drop(fi);
	return true;
}

void ops_virtual_read(fuse_req_t req, struct ops_handle *h, size_t size, off_t off)
{
	struct vfile *f = h->obj;
	char *buf = malloc(size ? size : 1);
	ssize_t n = buf ? parts_read(ctx_of(req)->parts, &f->key, buf, size, off) : -ENOMEM;

	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

bool ops_virtual_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	char *value = NULL;
	size_t len = 0;
	int r;

	if (inode_is_virtual(ino)) {
		fuse_reply_err(req, ENODATA);
		return true;
	}
	if (strcmp(name, "user.imap.parts") != 0 || !inode_is_message(ino) || inode_is_upload(ino))
		return false;
	r = parts_xattr(ctx_of(req)->parts, ino, &value, &len);
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		ops_reply_value(req, value, len, size);
	free(value);
	return true;
}

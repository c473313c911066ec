/* ops_write.c - owns the FUSE handlers that change the account: rename
 * (mv), unlink (rm), mkdir, rmdir, create/write/flush (cp), setattr and the
 * extended attributes.  Each replies exactly once. */
#include "ops.h"
#include "model/inode.h"
#include "live/notify.h"
#include "util/log.h"
#include "model/mailbox.h"
#include "model/upload.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* renameat2(2)'s flag, which <stdio.h> shows only under _GNU_SOURCE */
#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1u << 0)
#endif

#define USER_PREFIX "user." /* the only xattr namespace imapfs has */
#define IMAP_PREFIX "user.imap."
#define ATTR_NAMES_MAX 256 /* room for every name mailbox_xattr_names gives */

static bool has_prefix(const char *name, const char *prefix)
{
	return strncmp(name, prefix, strlen(prefix)) == 0;
}

/* A name outside user.* gets ENOTSUP, as a disk filesystem without that
 * namespace answers: `ls -l` then asks once (security.selinux,
 * system.posix_acl_access) and remembers it for the whole device, instead
 * of two round trips into imapfs per file (ENODATA is remembered for
 * nothing). */
static bool foreign_namespace(fuse_req_t req, const char *name)
{
	if (has_prefix(name, USER_PREFIX))
		return false;
	fuse_reply_err(req, ENOTSUP);
	return true;
}

static void reply_entry_or_err(fuse_req_t req, int r, const struct stat *st, bool upload)
{
	struct fuse_entry_param e;

	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	ops_fill_entry(ctx_of(req), st, &e);
	if (upload)
		e.attr_timeout = 0; /* it becomes a message of its own size */
	fuse_reply_entry(req, &e);
}

/* `.parts` directories and their files, searches: nothing in them is made
 * or changed (rm and mv act on the messages of a search directory) */
static bool read_only_view(fuse_ino_t ino)
{
	return inode_is_virtual(ino);
}

void ops_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set, struct fuse_file_info *fi)
{
	struct ops_context *c = ctx_of(req);
	struct ops_handle *h;
	struct stat st;
	int r;

	if (read_only_view(ino)) {
		if (!(to_set & ~(FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_ATIME_NOW |
				 FUSE_SET_ATTR_MTIME_NOW)) &&
		    ops_virtual_touch(req, ino))
			return;
		fuse_reply_err(req, EROFS);
		return;
	}
	switch (notify_announced(c->notify, req, 0, NULL, &ino, NULL)) {
	case NOTIFY_NONE:
		break;
	case NOTIFY_FLAGS:
		/* the notify thread raising IN_ATTRIB: nothing changes here */
		r = mailbox_getattr(c->mailbox, ino, &st);
		if (r < 0)
			fuse_reply_err(req, -r);
		else
			fuse_reply_attr(req, &st, c->attr_timeout);
		return;
	default:
		fuse_reply_err(req, EPERM);
		return;
	}
	if (ino == INODE_CTL_STATUS) {
		fuse_reply_err(req, EPERM);
		return;
	}
	if (ino == INODE_CTL_RFOLDERS) {
		/* O_TRUNC of the control file (echo ... > it) is a no-op */
		ops_ctl_stat(c, &st);
		if (to_set & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID))
			fuse_reply_err(req, EPERM);
		else
			fuse_reply_attr(req, &st, 0);
		return;
	}
	/* ftruncate of a file being written reaches it through its handle */
	h = ops_handle_get(fi, OPS_HANDLE_UPLOAD);
	if (h || inode_is_upload(ino)) {
		r = h ? upload_setattr(h->obj, attr, to_set, &st)
		      : uploads_setattr(c->uploads, ino, attr, to_set, &st);
		ops_handle_put(h);
		if (r == -ENOENT)
			r = -EPERM; /* already stored: it is a message now */
		if (r < 0)
			fuse_reply_err(req, -r);
		else
			fuse_reply_attr(req, &st, 0);
		return;
	}
	r = mailbox_getattr(c->mailbox, ino, &st);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	/* messages are immutable; so are the modes and owners the mount shows */
	if (to_set & (FUSE_SET_ATTR_SIZE | FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID |
		      FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_MTIME_NOW) &&
	    !S_ISDIR(st.st_mode)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	if (to_set & (FUSE_SET_ATTR_SIZE | FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	/* touch of a folder: ask the server now rather than after dir_cache */
	if (to_set &
	    (FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_MTIME_NOW | FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_ATIME_NOW)) {
		r = mailbox_resync(c->mailbox, ino);
		if (r < 0) {
			fuse_reply_err(req, -r);
			return;
		}
		if ((r = mailbox_getattr(c->mailbox, ino, &st)) < 0) {
			fuse_reply_err(req, -r);
			return;
		}
	}
	fuse_reply_attr(req, &st, c->entry_timeout);
}

void ops_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	struct ops_context *c = ctx_of(req);
	struct fuse_entry_param e;
	fuse_ino_t ino = 0;
	struct stat st;
	int r;

	if (read_only_view(parent)) {
		fuse_reply_err(req, EROFS);
		return;
	}
	(void)mode;
	(void)rdev;
	if (notify_announced(c->notify, req, parent, name, &ino, NULL) != NOTIFY_ADD) {
		fuse_reply_err(req, EPERM);
		return;
	}
	/* the notify thread announcing a message that arrived */
	r = mailbox_lookup(c->mailbox, parent, name, &st);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	ops_fill_entry(c, &st, &e);
	fuse_reply_entry(req, &e);
}

void ops_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	if (read_only_view(parent)) {
		fuse_reply_err(req, EROFS);
		return;
	}
	(void)link;
	(void)parent;
	(void)name;
	fuse_reply_err(req, EPERM);
}

void ops_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	if (read_only_view(ino) || read_only_view(newparent)) {
		fuse_reply_err(req, EROFS);
		return;
	}
	(void)ino;
	(void)newparent;
	(void)newname;
	fuse_reply_err(req, EPERM);
}

void ops_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct stat st;

	if (read_only_view(parent)) {
		fuse_reply_err(req, EROFS);
		return;
	}
	(void)mode;
	if (ops_ctl_name(parent, name) || ops_status_name(parent, name)) {
		fuse_reply_err(req, EEXIST);
		return;
	}
	reply_entry_or_err(req, mailbox_mkdir(ctx_of(req)->mailbox, parent, name, &st), &st, false);
}

void ops_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_ino_t ino = 0;

	parent = ops_virtual_folder(req, parent); /* rm in a search directory */
	if (!parent) {
		fuse_reply_err(req, EROFS);
		return;
	}
	switch (notify_announced(ctx_of(req)->notify, req, parent, name, &ino, NULL)) {
	case NOTIFY_NONE:
		break;
	case NOTIFY_REMOVE:
		fuse_reply_err(req, 0); /* gone already: the kernel is being told */
		return;
	default:
		fuse_reply_err(req, EPERM); /* an announcement must never change mail */
		return;
	}
	if (ops_ctl_name(parent, name) || ops_status_name(parent, name)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	fuse_reply_err(req, -mailbox_unlink(ctx_of(req)->mailbox, parent, name));
}

void ops_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	if (read_only_view(parent)) {
		fuse_reply_err(req, EROFS);
		return;
	}
	fuse_reply_err(req, -mailbox_rmdir(ctx_of(req)->mailbox, parent, name));
}

void ops_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		const char *newname, unsigned int flags)
{
	/* mv out of or into a search directory moves a message: never a folder
	 * (a search's folders show matches, they are not the folders) */
	bool via_search = inode_is_virtual(parent) || inode_is_virtual(newparent);
	struct stat st;

	parent = ops_virtual_folder(req, parent);
	newparent = ops_virtual_folder(req, newparent);
	if (!parent || !newparent ||
	    (via_search &&
	     (mailbox_lookup(ctx_of(req)->mailbox, parent, name, &st) < 0 || !S_ISREG(st.st_mode)))) {
		fuse_reply_err(req, EROFS);
		return;
	}
	if (flags & ~RENAME_NOREPLACE) { /* RENAME_EXCHANGE and friends */
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (ops_ctl_name(parent, name) || ops_ctl_name(newparent, newname) || ops_status_name(parent, name) ||
	    ops_status_name(newparent, newname)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	fuse_reply_err(req, -mailbox_rename(ctx_of(req)->mailbox, parent, name, newparent, newname));
}

static void free_upload(void *obj)
{
	upload_release(obj);
}

void ops_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, struct fuse_file_info *fi)
{
	struct ops_context *c = ctx_of(req);
	struct fuse_entry_param e;
	struct upload *up;
	struct stat st;
	int r;

	if (read_only_view(parent)) {
		fuse_reply_err(req, EROFS);
		return;
	}
	if (!S_ISREG(mode)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	r = uploads_create(c->uploads, parent, name, &up, &st);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	ops_fill_entry(c, &st, &e);
	e.attr_timeout = 0;
	/* a delivery leaves the root once stored: the kernel must not keep its
	 * name, or the next cp to it would open the stored message (EPERM) */
	if (parent == INODE_ROOT)
		e.entry_timeout = 0;
	if (ops_handle_set(fi, OPS_HANDLE_UPLOAD, up, free_upload) < 0) {
		upload_release(up);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	fi->direct_io = 1; /* the bytes live in the temporary file, not the page cache */
	if (fuse_reply_create(req, &e, fi) != 0)
		ops_handle_drop(fi);
}

void ops_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
	       struct fuse_file_info *fi)
{
	struct ops_handle *h = ops_handle_any(fi);
	ssize_t n = -EBADF; /* a message is never open for writing */

	(void)ino;
	if (h && h->kind == OPS_HANDLE_TEXT) {
		ops_handle_put(h);
		ops_ctl_write(req, buf, size, fi);
		return;
	}
	if (h && h->kind == OPS_HANDLE_UPLOAD)
		n = upload_write(h->obj, buf, size, off);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_write(req, (size_t)n);
	ops_handle_put(h);
}

void ops_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct ops_handle *h = ops_handle_any(fi);
	int r = h ? 0 : -EBADF; /* a message or directory: nothing to do */

	(void)ino;
	if (h && h->kind == OPS_HANDLE_TEXT) {
		ops_handle_put(h);
		ops_ctl_flush(req, fi);
		return;
	}
	if (h && h->kind == OPS_HANDLE_UPLOAD)
		r = upload_flush(ctx_of(req)->uploads, h->obj);
	ops_handle_put(h);
	fuse_reply_err(req, -r);
}

/* A file cp is still writing (once stored, its inode forwards to the message). */
static bool pending_upload(fuse_req_t req, fuse_ino_t ino)
{
	struct stat st;

	return inode_is_upload(ino) && uploads_getattr(ctx_of(req)->uploads, ino, &st) == 0;
}

/* Replies with an attribute value by getxattr's size protocol. */
void ops_reply_value(fuse_req_t req, const char *value, size_t len, size_t size)
{
	if (size == 0)
		fuse_reply_xattr(req, len);
	else if (size < len)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, value, len);
}

void ops_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	char *value = NULL;
	size_t len = 0;
	int r;

	if (foreign_namespace(req, name))
		return;
	if (ino == INODE_CTL_RFOLDERS) {
		ops_ctl_getxattr(req, name, size);
		return;
	}
	if (ops_virtual_getxattr(req, ino, name, size))
		return;
	if (pending_upload(req, ino) || !inode_is_message(ino)) {
		fuse_reply_err(req, ENODATA);
		return;
	}
	if (strcmp(name, "user.mapi.message_class") == 0) {
		char cls[MSGCLASS_SIZE];

		r = mailbox_message_class(ctx_of(req)->mailbox, ino, cls, sizeof(cls));
		if (r < 0)
			fuse_reply_err(req, -r);
		else
			ops_reply_value(req, cls, strlen(cls), size);
		return;
	}
	r = mailbox_getxattr(ctx_of(req)->mailbox, ino, name, &value, &len);
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		ops_reply_value(req, value, len, size);
	free(value);
}

#define MESSAGE_ID_ATTR "user.imap.message_id"

/* Only attributes that exist are listed (rsync -X and getfattr -d get each
 * one listed): a message without a Message-ID has no user.imap.message_id. */
void ops_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	const char *names;
	char list[ATTR_NAMES_MAX], *value = NULL;
	size_t len = 0, used = 0, vlen;
	int r;

	if (!inode_is_message(ino) || inode_is_virtual(ino) || pending_upload(req, ino)) {
		ops_reply_value(req, "", 0, size);
		return;
	}
	r = mailbox_getxattr(ctx_of(req)->mailbox, ino, MESSAGE_ID_ATTR, &value, &vlen);
	free(value);
	if (r < 0 && r != -ENODATA) {
		fuse_reply_err(req, -r);
		return;
	}
	names = mailbox_xattr_names(&len);
	for (size_t at = 0; at < len; at += strlen(names + at) + 1) {
		size_t n = strlen(names + at) + 1;

		if ((r == 0 || strcmp(names + at, MESSAGE_ID_ATTR) != 0) && used + n <= sizeof(list)) {
			memcpy(list + used, names + at, n);
			used += n;
		}
	}
	ops_reply_value(req, list, used, size);
}

static bool read_only_attr(const char *name)
{
	return strcmp(name, "user.imap.uid") == 0 || strcmp(name, "user.imap.internaldate") == 0 ||
	       strcmp(name, MESSAGE_ID_ATTR) == 0 || strcmp(name, "user.mapi.message_class") == 0;
}

void ops_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size, int flags)
{
	struct ops_context *c = ctx_of(req);
	int r;

	if (foreign_namespace(req, name))
		return;
	if (read_only_view(ino)) {
		fuse_reply_err(req, EROFS);
		return;
	}
	(void)flags;
	if (pending_upload(req, ino))
		r = uploads_setxattr(c->uploads, ino, name, value, size);
	else if (!inode_is_message(ino))
		r = -ENOTSUP;
	else if (strcmp(name, "user.imap.flags") == 0)
		r = mailbox_set_flags(c->mailbox, ino, value, size);
	else if (read_only_attr(name))
		r = -EPERM;
	else
		r = has_prefix(name, IMAP_PREFIX) ? -ENODATA : -ENOTSUP;
	if (ino == INODE_CTL_RFOLDERS)
		r = -EPERM;
	fuse_reply_err(req, -r);
}

void ops_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	int r;

	if (foreign_namespace(req, name))
		return;
	if (read_only_view(ino)) {
		fuse_reply_err(req, EROFS);
		return;
	}
	if (!inode_is_message(ino) || pending_upload(req, ino))
		r = -ENODATA;
	else if (strcmp(name, "user.imap.flags") == 0)
		r = mailbox_set_flags(ctx_of(req)->mailbox, ino, "", 0);
	else
		r = read_only_attr(name) ? -EPERM : -ENODATA;
	fuse_reply_err(req, -r);
}

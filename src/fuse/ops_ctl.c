/* ops_ctl.c - owns the FUSE side of the control file MOUNT/.receive-folders:
 * a regular file whose reads show the receive-folder table and whose writes
 * change it (receive.c applies them), plus its look-up attribute
 * user.receive_folder.CLASS.  Opened with direct_io: its size changes. */
#include "ops.h"
#include "model/inode.h"
#include "model/receive.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct ctl_handle {
	char *text; /* the table when opened for reading */
	size_t len;
	struct ctl_writer *writer; /* when opened for writing */
};

bool ops_ctl_name(fuse_ino_t parent, const char *name)
{
	return parent == INODE_ROOT && strcmp(name, RECEIVE_CTL_NAME) == 0;
}

void ops_ctl_stat(struct ops_context *c, struct stat *st)
{
	size_t len = 0;
	char *text = receive_text(c->receive, &len);

	free(text);
	memset(st, 0, sizeof(*st));
	st->st_ino = INODE_CTL_RFOLDERS;
	st->st_mode = S_IFREG | 0600;
	st->st_nlink = 1;
	st->st_uid = getuid();
	st->st_gid = getgid();
	st->st_size = (off_t)len;
	st->st_mtime = st->st_ctime = st->st_atime = time(NULL);
}

static void free_handle(void *obj)
{
	struct ctl_handle *h = obj;

	free(h->text);
	receive_writer_free(h->writer);
	free(h);
}

/* Replies to OPEN with h as the file handle (freed on failure). */
static void reply_open(fuse_req_t req, struct fuse_file_info *fi, struct ctl_handle *h)
{
	if (ops_handle_set(fi, OPS_HANDLE_TEXT, h, free_handle) < 0) {
		free_handle(h);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	fi->direct_io = 1;
	if (fuse_reply_open(req, fi) != 0)
		ops_handle_drop(fi);
}

void ops_ctl_open(fuse_req_t req, struct fuse_file_info *fi)
{
	struct ops_context *c = ctx_of(req);
	struct ctl_handle *h = calloc(1, sizeof(*h));

	if (!h) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if ((fi->flags & O_ACCMODE) != O_WRONLY)
		h->text = receive_text(c->receive, &h->len);
	if ((fi->flags & O_ACCMODE) != O_RDONLY)
		h->writer = receive_writer_new();
	if (((fi->flags & O_ACCMODE) != O_WRONLY && !h->text) ||
	    ((fi->flags & O_ACCMODE) != O_RDONLY && !h->writer)) {
		free_handle(h);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	reply_open(req, fi, h);
}

void ops_ctl_open_text(fuse_req_t req, struct fuse_file_info *fi, char *text, size_t len)
{
	struct ctl_handle *h = calloc(1, sizeof(*h));

	if (!h || !text) {
		free(h);
		free(text);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	h->text = text;
	h->len = len;
	reply_open(req, fi, h);
}

void ops_ctl_read(fuse_req_t req, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct ops_handle *oh = ops_handle_get(fi, OPS_HANDLE_TEXT);
	struct ctl_handle *h = oh ? oh->obj : NULL;

	if (!h) {
		fuse_reply_err(req, EBADF);
		return;
	}
	if (!h->text || off < 0 || (size_t)off >= h->len)
		size = 0;
	else if (size > h->len - (size_t)off)
		size = h->len - (size_t)off;
	fuse_reply_buf(req, size ? h->text + off : NULL, size);
	ops_handle_put(oh);
}

void ops_ctl_write(fuse_req_t req, const char *buf, size_t size, struct fuse_file_info *fi)
{
	struct ops_handle *oh = ops_handle_get(fi, OPS_HANDLE_TEXT);
	struct ctl_handle *h = oh ? oh->obj : NULL;
	int r = h && h->writer ? receive_write(ctx_of(req)->receive, h->writer, buf, size) : -EBADF;

	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_write(req, size);
	ops_handle_put(oh);
}

void ops_ctl_flush(fuse_req_t req, struct fuse_file_info *fi)
{
	struct ops_handle *oh = ops_handle_get(fi, OPS_HANDLE_TEXT);
	struct ctl_handle *h = oh ? oh->obj : NULL;

	fuse_reply_err(req, !h ? EBADF : h->writer ? -receive_flush(ctx_of(req)->receive, h->writer) : 0);
	ops_handle_put(oh);
}

void ops_ctl_getxattr(fuse_req_t req, const char *name, size_t size)
{
	static const char prefix[] = "user.receive_folder.";
	char *value = NULL;
	size_t len = 0;
	int r;

	if (strncmp(name, prefix, sizeof(prefix) - 1) != 0) {
		fuse_reply_err(req, ENODATA);
		return;
	}
	r = receive_lookup(ctx_of(req)->receive, name + sizeof(prefix) - 1, &value, &len);
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		ops_reply_value(req, value, len, size);
	free(value);
}

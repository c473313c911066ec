/* ops.c - owns the FUSE boundary: one handler per low-level operation, each
 * replying exactly once, errors as negative errno turned into fuse_reply_err.
 * The handlers that change things live in ops_write.c. */
#include "ops.h"
#include "model/inode.h"
#include "util/log.h"
#include "model/mailbox.h"
#include "live/notify.h"
#include "model/quota.h"
#include "model/receive.h"
#include "model/upload.h"

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

static pthread_mutex_t handles_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ops_handle *handles; /* protected by handles_lock */

int ops_handle_set(struct fuse_file_info *fi, enum ops_handle_kind kind, void *obj,
		   void (*free_obj)(void *obj))
{
	struct ops_handle *h = malloc(sizeof(*h));

	if (!h)
		return -ENOMEM;
	*h = (struct ops_handle){ .refs = 1, .kind = kind, .obj = obj, .free_obj = free_obj };
	pthread_mutex_lock(&handles_lock);
	h->next = handles;
	if (handles)
		handles->prev = h;
	handles = h;
	pthread_mutex_unlock(&handles_lock);
	fi->fh = (uintptr_t)h;
	return 0;
}

static void handle_free(struct ops_handle *h)
{
	pthread_mutex_lock(&handles_lock);
	if (h->prev)
		h->prev->next = h->next;
	else
		handles = h->next;
	if (h->next)
		h->next->prev = h->prev;
	pthread_mutex_unlock(&handles_lock);
	h->free_obj(h->obj);
	free(h);
}

void ops_release_all(void)
{
	while (handles) /* no request runs any more */
		handle_free(handles);
}

struct ops_handle *ops_handle_any(const struct fuse_file_info *fi)
{
	struct ops_handle *h = fi ? (struct ops_handle *)(uintptr_t)fi->fh : NULL;

	if (h)
		__atomic_add_fetch(&h->refs, 1, __ATOMIC_ACQUIRE);
	return h;
}

struct ops_handle *ops_handle_get(const struct fuse_file_info *fi, enum ops_handle_kind kind)
{
	const struct ops_handle *h = fi ? (const struct ops_handle *)(uintptr_t)fi->fh : NULL;

	return h && h->kind == kind ? ops_handle_any(fi) : NULL;
}

void ops_handle_put(struct ops_handle *h)
{
	if (h && __atomic_sub_fetch(&h->refs, 1, __ATOMIC_ACQ_REL) == 0)
		handle_free(h);
}

void ops_handle_drop(const struct fuse_file_info *fi)
{
	ops_handle_put(fi ? (struct ops_handle *)(uintptr_t)fi->fh : NULL);
}

static void free_dir(void *obj)
{
	mailbox_closedir(obj);
}

static void free_file(void *obj)
{
	mailbox_release(obj);
}

struct ops_context *ctx_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

void ops_fill_entry(const struct ops_context *c, const struct stat *st, struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = st->st_ino;
	e->generation = mailbox_entry_generation(c->mailbox, st->st_ino);
	e->attr = *st;
	e->entry_timeout = c->entry_timeout;
	/* a message's attributes never change; a directory's nlink may */
	e->attr_timeout = S_ISREG(st->st_mode) ? c->attr_timeout : c->entry_timeout;
}

static void ops_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	if (conn->capable & FUSE_CAP_READDIRPLUS)
		conn->want |= FUSE_CAP_READDIRPLUS;
	/* ls -l wants attributes with every entry: always use readdirplus */
	conn->want &= ~(unsigned)FUSE_CAP_READDIRPLUS_AUTO;
	/* bodies never change: mtime-based invalidation would only cost */
	conn->want &= ~(unsigned)FUSE_CAP_AUTO_INVAL_DATA;
	if (conn->capable & FUSE_CAP_ASYNC_READ)
		conn->want |= FUSE_CAP_ASYNC_READ;
}

/* A name that does not exist, as a negative entry the kernel keeps for
 * entry_timeout (dir_cache), so the names shells and editors probe (.git,
 * desktop.ini) cost the server one look, not one each time.  A name made
 * later through this mount (mkdir, create, rename) replaces the entry at
 * once; one made by another client shows after entry_timeout, as in a
 * listing, or sooner when the notifier learns of it (inval_entry). */
static void reply_absent(const struct ops_context *c, fuse_req_t req)
{
	struct fuse_entry_param e;

	memset(&e, 0, sizeof(e));
	e.ino = 0;
	e.entry_timeout = c->entry_timeout;
	fuse_reply_entry(req, &e);
}

static void ops_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct ops_context *c = ctx_of(req);
	struct fuse_entry_param e;
	struct notify_announcement a;
	struct stat st;
	fuse_ino_t ino = 0;
	int r;

	switch (notify_announced(c->notify, req, parent, name, &ino, &a)) {
	case NOTIFY_ADD:
		/* so the notify thread's mknod reaches ops_mknod (IN_CREATE) */
		fuse_reply_err(req, ENOENT);
		return;
	case NOTIFY_REMOVE:
		/* the name as it was, so its unlink can raise IN_DELETE */
		memset(&st, 0, sizeof(st));
		st.st_ino = ino;
		st.st_mode = S_IFREG | 0600;
		st.st_nlink = 1;
		st.st_uid = getuid();
		st.st_gid = getgid();
		/* as it was: a reader holding it open must not see it shrink */
		st.st_size = a.size;
		st.st_blocks = (st.st_size + 511) / 512;
		st.st_mtime = st.st_ctime = st.st_atime = (time_t)a.date;
		ops_fill_entry(c, &st, &e);
		e.entry_timeout = e.attr_timeout = 0;
		fuse_reply_entry(req, &e);
		return;
	default:
		break;
	}
	if (ops_virtual_lookup(req, parent, name))
		return;
	if (ops_ctl_name(parent, name) || ops_status_name(parent, name)) {
		if (ops_ctl_name(parent, name))
			ops_ctl_stat(c, &st);
		else
			ops_status_stat(&st);
		ops_fill_entry(c, &st, &e);
		e.attr_timeout = 0; /* its size follows the table */
		fuse_reply_entry(req, &e);
		return;
	}
	r = mailbox_lookup(c->mailbox, parent, name, &st);
	if (r == -ENOENT && c->entry_timeout > 0) {
		reply_absent(c, req);
		return;
	}
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	ops_fill_entry(c, &st, &e);
	fuse_reply_entry(req, &e);
}

/* Inodes of folders and messages are computed: only virtual ones are kept. */
static void ops_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	ops_virtual_forget(ctx_of(req), ino, nlookup);
	fuse_reply_none(req);
}

static void ops_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		ops_virtual_forget(ctx_of(req), forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

static void ops_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct ops_context *c = ctx_of(req);
	struct ops_handle *h = ops_handle_get(fi, OPS_HANDLE_UPLOAD);
	struct stat st;
	int r = -ENOENT;

	/* fstat of a file being written: its own size, not the message's */
	if (h) {
		r = upload_getattr(h->obj, &st);
		ops_handle_put(h);
		if (r == 0) {
			fuse_reply_attr(req, &st, 0);
			return;
		}
	}
	if (ops_virtual_getattr(req, ino))
		return;
	if (ino == INODE_CTL_RFOLDERS || ino == INODE_CTL_STATUS) {
		if (ino == INODE_CTL_RFOLDERS)
			ops_ctl_stat(c, &st);
		else
			ops_status_stat(&st);
		fuse_reply_attr(req, &st, 0);
		return;
	}
	if (inode_is_upload(ino) && (r = uploads_getattr(c->uploads, ino, &st)) == 0) {
		fuse_reply_attr(req, &st, 0);
		return;
	}
	r = mailbox_getattr(c->mailbox, ino, &st);
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_attr(req, &st,
				inode_is_upload(ino)  ? 0
				: S_ISREG(st.st_mode) ? c->attr_timeout
						      : c->entry_timeout);
}

struct dir_reply {
	fuse_req_t req;
	struct fuse_file_info *fi;
};

/* mailbox_opendir's hand-over (maybe while the listing still streams in):
 * the handle, and the kernel's answer. */
static void reply_dir(struct mailbox_dir *d, void *ctx)
{
	struct dir_reply *rep = ctx;

	if (ops_handle_set(rep->fi, OPS_HANDLE_DIR, d, free_dir) < 0) {
		mailbox_closedir(d);
		fuse_reply_err(rep->req, ENOMEM);
		return;
	}
	if (fuse_reply_open(rep->req, rep->fi) != 0)
		ops_handle_drop(rep->fi);
}

static void ops_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct dir_reply rep = { req, fi };
	int r;

	if (ops_virtual_opendir(req, ino, fi))
		return;
	r = mailbox_opendir(ctx_of(req)->mailbox, ino, reply_dir, &rep);
	if (r < 0)
		fuse_reply_err(req, -r);
}

/* The root lists the control files after the folders. */
static int dir_entry(struct ops_context *c, const struct mailbox_dir *d, fuse_ino_t ino, size_t i, bool wait,
		     char *namebuf, const char **name, struct stat *st)
{
	size_t count = ino == INODE_ROOT ? mailbox_dir_count(d) : SIZE_MAX;

	if (i < count)
		return mailbox_dir_entry(c->mailbox, d, i, wait, namebuf, name, st);
	if (i == count) {
		*name = RECEIVE_CTL_NAME;
		ops_ctl_stat(c, st);
		return MAILBOX_DIR_ENTRY;
	}
	if (i == count + 1) {
		*name = OPS_STATUS_NAME;
		ops_status_stat(st);
		return MAILBOX_DIR_ENTRY;
	}
	return MAILBOX_DIR_END;
}

static void readdir_common(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi,
			   bool plus)
{
	struct ops_context *c = ctx_of(req);
	struct ops_handle *h = ops_handle_get(fi, OPS_HANDLE_VDIR);
	const struct mailbox_dir *d;
	char namebuf[MAILBOX_DIR_NAME_SIZE];
	char *buf;
	int err = 0;

	if (h) {
		ops_virtual_readdir(req, ino, h, size, off, plus);
		ops_handle_put(h);
		return;
	}
	h = ops_handle_get(fi, OPS_HANDLE_DIR);
	d = h ? h->obj : NULL;
	buf = h ? malloc(size) : NULL;
	size_t used = 0;
	const char *name;
	struct stat st;

	if (!buf) {
		ops_handle_put(h);
		fuse_reply_err(req, h ? ENOMEM : EBADF);
		return;
	}
	for (size_t i = off < 0 ? 0 : (size_t)off;; i++) {
		/* a listing streaming in: what has arrived goes to the kernel
		 * now (it asks again from here); only a first entry is waited for */
		int kind = dir_entry(c, d, ino, i, used == 0, namebuf, &name, &st);
		size_t need;

		if (kind < 0 && used == 0)
			err = -kind;
		if (kind < 0 || kind == MAILBOX_DIR_END || kind == MAILBOX_DIR_LATER)
			break;
		if (kind == MAILBOX_DIR_SKIP)
			continue;
		if (plus) {
			struct fuse_entry_param e;

			ops_fill_entry(c, &st, &e);
			e.generation = mailbox_dir_generation(c->mailbox, d, st.st_ino);
			need = fuse_add_direntry_plus(req, buf + used, size - used, name, &e, (off_t)i + 1);
		} else {
			need = fuse_add_direntry(req, buf + used, size - used, name, &st, (off_t)i + 1);
		}
		if (need > size - used)
			break; /* did not fit: the kernel asks again from here */
		used += need;
	}
	if (err)
		fuse_reply_err(req, err);
	else
		fuse_reply_buf(req, buf, used);
	free(buf);
	ops_handle_put(h);
}

static void ops_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	readdir_common(req, ino, size, off, fi, false);
}

static void ops_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	readdir_common(req, ino, size, off, fi, true);
}

static void ops_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	ops_handle_drop(fi);
	fuse_reply_err(req, 0);
}

static void ops_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct mailbox_file *f;
	bool uncached;
	int r;

	if (ino == INODE_CTL_RFOLDERS) {
		ops_ctl_open(req, fi);
		return;
	}
	if (ino == INODE_CTL_STATUS) {
		ops_status_open(req, fi);
		return;
	}
	if (ops_virtual_open(req, ino, fi))
		return;
	/* messages are immutable in IMAP */
	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & (O_TRUNC | O_APPEND))) {
		fuse_reply_err(req, EPERM);
		return;
	}
	r = mailbox_open(ctx_of(req)->mailbox, ino, &f, &uncached);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	if (ops_handle_set(fi, OPS_HANDLE_MESSAGE, f, free_file) < 0) {
		mailbox_release(f);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	/* the kernel may hold a wrong size, or old pages: bypass its cache */
	fi->direct_io = uncached;
	fi->keep_cache = !uncached;
	fi->noflush = 1;
	if (fuse_reply_open(req, fi) != 0)
		ops_handle_drop(fi);
}

/* The reply is written from the cache's blocks themselves: a cold read of
 * a large folder copied every byte once more on its way to the kernel. */
static void read_message(fuse_req_t req, struct mailbox_file *f, size_t size, off_t off)
{
	struct mailbox_pieces pieces;
	long n = mailbox_read_pieces(ctx_of(req)->mailbox, f, size, off, &pieces);

	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else if (pieces.count == 0)
		fuse_reply_buf(req, NULL, 0);
	else
		fuse_reply_iov(req, pieces.iov, (int)pieces.count);
	mailbox_read_done(&pieces);
}

/* A message, or a file being written read back (its bytes so far, as a
 * local file would give them). */
static void ops_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct ops_handle *h = ops_handle_any(fi);
	char *buf = NULL;
	ssize_t n = -EBADF;

	(void)ino;
	if (h && h->kind == OPS_HANDLE_TEXT) {
		ops_handle_put(h);
		ops_ctl_read(req, size, off, fi);
		return;
	}
	if (h && h->kind == OPS_HANDLE_PART) {
		ops_virtual_read(req, h, size, off);
		ops_handle_put(h);
		return;
	}
	if (h && h->kind == OPS_HANDLE_MESSAGE) {
		read_message(req, h->obj, size, off);
		ops_handle_put(h);
		return;
	}
	if (h && h->kind == OPS_HANDLE_UPLOAD)
		n = (buf = malloc(size ? size : 1)) ? upload_read(h->obj, buf, size, off) : -ENOMEM;
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
	ops_handle_put(h);
}

static void ops_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	/* the object goes when the last request using it is done */
	ops_handle_drop(fi);
	fuse_reply_err(req, 0);
}

/* Nothing is stored before close (uploads are APPENDed once, at flush), but
 * a file being written reports its failure here too.  Under -o writeback,
 * fsync of a message or a folder waits until the changes made through the
 * mount are on the server (sync FILE, sync DIR). */
static void ops_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct ops_handle *h = ops_handle_any(fi);
	int r = h ? 0 : -EBADF;

	(void)ino;
	(void)datasync;
	if (h && h->kind == OPS_HANDLE_UPLOAD)
		r = upload_error(h->obj);
	else if (h && h->kind == OPS_HANDLE_MESSAGE)
		r = mailbox_sync_changes(ctx_of(req)->mailbox);
	ops_handle_put(h);
	fuse_reply_err(req, -r);
}

static void ops_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)ino;
	(void)datasync;
	(void)fi;
	fuse_reply_err(req, -mailbox_sync_changes(ctx_of(req)->mailbox));
}

#define STATFS_UNIT 1024u

static void ops_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv = { .f_bsize = CACHE_BLOCK_SIZE, .f_frsize = STATFS_UNIT, .f_namemax = NAMES_MAX };
	struct ops_context *c = ctx_of(req);
	uint64_t used, limit;

	(void)ino;
	if (c->quota && quota_get(c->quota, &used, &limit) == 0) {
		sv.f_blocks = limit / STATFS_UNIT;
		sv.f_bfree = sv.f_bavail = used < limit ? (limit - used) / STATFS_UNIT : 0;
	} else {
		/* no quota: the size is unknown.  It must not look full (0 free
		 * makes programs refuse to copy in), so, as rclone and s3fs do,
		 * 1 PiB, nothing used */
		sv.f_blocks = sv.f_bfree = sv.f_bavail = (1ull << 50) / STATFS_UNIT;
	}
	fuse_reply_statfs(req, &sv);
}

const struct fuse_lowlevel_ops ops_table = {
	.init = ops_init,
	.lookup = ops_lookup,
	.forget = ops_forget,
	.forget_multi = ops_forget_multi,
	.getattr = ops_getattr,
	.setattr = ops_setattr,
	.mknod = ops_mknod,
	.mkdir = ops_mkdir,
	.unlink = ops_unlink,
	.rmdir = ops_rmdir,
	.symlink = ops_symlink,
	.link = ops_link,
	.rename = ops_rename,
	.open = ops_open,
	.read = ops_read,
	.write = ops_write,
	.flush = ops_flush,
	.release = ops_release,
	.fsync = ops_fsync,
	.fsyncdir = ops_fsyncdir,
	.opendir = ops_opendir,
	.readdir = ops_readdir,
	.readdirplus = ops_readdirplus,
	.releasedir = ops_releasedir,
	.statfs = ops_statfs,
	.create = ops_create,
	.setxattr = ops_setxattr,
	.getxattr = ops_getxattr,
	.listxattr = ops_listxattr,
	.removexattr = ops_removexattr,
};

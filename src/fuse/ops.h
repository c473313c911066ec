/* ops.h - the FUSE low-level operations table. */
#ifndef IMAPFS_OPS_H
#define IMAPFS_OPS_H

#include <stdbool.h>
#include <fuse_lowlevel.h>

/* Settings the handlers need besides the mailbox (the session userdata). */
struct ops_context {
	struct mailbox *mailbox;
	struct uploads *uploads;
	struct receive *receive;
	struct prefetch *prefetch;
	struct notify *notify; /* may be NULL */
	struct watch *watch;   /* may be NULL */
	struct quota *quota;   /* may be NULL */
	struct vnodes *vnodes; /* `.parts` directories and their files */
	struct parts *parts;
	struct search *search;  /* `.search` directories */
	const char *server_url; /* for .status: imaps://user@host:port */
	double entry_timeout;   /* how long the kernel may trust a name */
	double attr_timeout;    /* how long it may trust a message's attributes */
};

extern const struct fuse_lowlevel_ops ops_table;

/* What a handle's object is.  The inode number does not say: a file
 * created read-write is read back through its upload handle, and an upload's
 * inode, once stored, opens as a message.  Every handler taking fi asks for
 * the kind it can serve and answers any other with a clean errno. */
enum ops_handle_kind {
	OPS_HANDLE_DIR = 1, /* struct mailbox_dir */
	OPS_HANDLE_MESSAGE, /* struct mailbox_file */
	OPS_HANDLE_UPLOAD,  /* struct upload */
	OPS_HANDLE_TEXT,    /* ops_ctl.c's handle: .receive-folders, .status */
	OPS_HANDLE_VDIR,    /* ops_virtual.c: a `.parts` listing */
	OPS_HANDLE_PART,    /* ops_virtual.c: a part file */
};

/* Every fi->fh is one of these: a reference-counted wrapper, so a request
 * still being served when RELEASE arrives (the reader was killed, its READ
 * interrupted) keeps the object alive until it is done. */
struct ops_handle {
	unsigned refs;             /* atomic */
	enum ops_handle_kind kind; /* set once */
	void *obj;
	void (*free_obj)(void *obj);
	struct ops_handle *prev, *next; /* the live handles, under handles_lock */
};

/* After the session loop: frees handles the kernel never released (files
 * still open at unmount). */
void ops_release_all(void);

/* Wraps obj (one reference, dropped by release); 0 or -ENOMEM. */
int ops_handle_set(struct fuse_file_info *fi, enum ops_handle_kind kind, void *obj,
		   void (*free_obj)(void *obj));
/* The handle of fi (fi may be NULL), held until ops_handle_put, if it is of
 * `kind`; else NULL.  ops_handle_any takes every kind. */
struct ops_handle *ops_handle_get(const struct fuse_file_info *fi, enum ops_handle_kind kind);
struct ops_handle *ops_handle_any(const struct fuse_file_info *fi);
void ops_handle_put(struct ops_handle *h);
/* Drops the reference ops_handle_set made (a failed open reply, release). */
void ops_handle_drop(const struct fuse_file_info *fi);

/* Shared by ops.c and ops_write.c. */
struct ops_context *ctx_of(fuse_req_t req);
void ops_fill_entry(const struct ops_context *c, const struct stat *st, struct fuse_entry_param *e);

/* ops_ctl.c: the virtual control file MOUNT/.receive-folders */
struct fuse_file_info;
bool ops_ctl_name(fuse_ino_t parent, const char *name);
void ops_ctl_stat(struct ops_context *c, struct stat *st);
void ops_ctl_open(fuse_req_t req, struct fuse_file_info *fi);
void ops_ctl_read(fuse_req_t req, size_t size, off_t off, struct fuse_file_info *fi);
void ops_ctl_write(fuse_req_t req, const char *buf, size_t size, struct fuse_file_info *fi);
void ops_ctl_flush(fuse_req_t req, struct fuse_file_info *fi);
void ops_ctl_getxattr(fuse_req_t req, const char *name, size_t size);
void ops_reply_value(fuse_req_t req, const char *value, size_t len, size_t size);
/* Opens a read-only text (taken over) with the control file's handle type. */
void ops_ctl_open_text(fuse_req_t req, struct fuse_file_info *fi, char *text, size_t len);

/* ops_status.c: the read-only MOUNT/.status */
#define OPS_STATUS_NAME ".status"
bool ops_status_name(fuse_ino_t parent, const char *name);
void ops_status_stat(struct stat *st);
void ops_status_open(fuse_req_t req, struct fuse_file_info *fi);

/* ops_virtual.c: `.parts` directories and part files (model/vnode.h).
 * The bool functions answer the request and return true when ino (or
 * parent and name) is theirs, and leave it alone otherwise. */
bool ops_virtual_lookup(fuse_req_t req, fuse_ino_t parent, const char *name);
bool ops_virtual_getattr(fuse_req_t req, fuse_ino_t ino);
bool ops_virtual_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
bool ops_virtual_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
bool ops_virtual_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size);
void ops_virtual_readdir(fuse_req_t req, fuse_ino_t ino, struct ops_handle *h, size_t size, off_t off,
			 bool plus);
void ops_virtual_read(fuse_req_t req, struct ops_handle *h, size_t size, off_t off);
void ops_virtual_forget(struct ops_context *c, fuse_ino_t ino, uint64_t nlookup);
/* The folder whose messages directory ino shows: ino itself for a real
 * one, the folder of a search directory, 0 for a read-only view. */
fuse_ino_t ops_virtual_folder(fuse_req_t req, fuse_ino_t ino);
/* touch of a search directory: asks the server again; true when answered. */
bool ops_virtual_touch(fuse_req_t req, fuse_ino_t ino);

/* ops_write.c */
void ops_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set, struct fuse_file_info *fi);
void ops_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev);
void ops_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode);
void ops_unlink(fuse_req_t req, fuse_ino_t parent, const char *name);
void ops_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name);
void ops_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name);
void ops_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname);
void ops_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		const char *newname, unsigned int flags);
void ops_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, struct fuse_file_info *fi);
void ops_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
	       struct fuse_file_info *fi);
void ops_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void ops_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size,
		  int flags);
void ops_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size);
void ops_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);
void ops_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name);

#endif

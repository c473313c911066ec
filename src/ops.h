/* ops.h - the FUSE low-level operations table. */
#ifndef IMAPFS_OPS_H
#define IMAPFS_OPS_H

#include <fuse_lowlevel.h>

/* Settings the handlers need besides the mailbox (the session userdata). */
struct ops_context {
	struct mailbox *mailbox;
	double entry_timeout;	/* how long the kernel may trust a name */
	double attr_timeout;	/* how long it may trust a message's attributes */
};

extern const struct fuse_lowlevel_ops ops_table;

#endif

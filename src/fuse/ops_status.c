/* ops_status.c - owns MOUNT/.status: a read-only file, like one in /proc,
 * whose text is made at each open from the state of the connections, the
 * watched folders, the folders synced so far, the cache and the notifier. */
#include "ops.h"
#include "model/inode.h"
#include "model/mailbox.h"
#include "live/notify.h"
#include "live/watch.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

bool ops_status_name(fuse_ino_t parent, const char *name)
{
	return parent == INODE_ROOT && strcmp(name, OPS_STATUS_NAME) == 0;
}

void ops_status_stat(struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = INODE_CTL_STATUS;
	st->st_mode = S_IFREG | 0400;
	st->st_nlink = 1;
	st->st_uid = getuid();
	st->st_gid = getgid();
	st->st_mtime = st->st_ctime = st->st_atime = time(NULL);
}

void ops_status_open(fuse_req_t req, struct fuse_file_info *fi)
{
	struct ops_context *c = ctx_of(req);
	char *text = NULL;
	size_t len = 0;
	FILE *out;

	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
		fuse_reply_err(req, EACCES);
		return;
	}
	out = open_memstream(&text, &len);
	if (!out) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	fprintf(out, "server %s\n", c->server_url ? c->server_url : "?");
	mailbox_status_connections(c->mailbox, out);
	if (c->watch)
		watch_status(c->watch, out);
	mailbox_status(c->mailbox, out);
	mailbox_status_cache(c->mailbox, out);
	if (c->notify)
		notify_status(c->notify, out);
	if (fclose(out) != 0) {
		free(text);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	ops_ctl_open_text(req, fi, text, len);
}

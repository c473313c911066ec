/* floorfs: the floor for imapfs's listings in bench/run.py.
 *
 *     floorfs [-s] SPECFILE MOUNTPOINT
 *
 * A minimal FUSE filesystem (libfuse3 low-level API): one flat directory of
 * the files SPECFILE names, one per line as "SIZE MTIME NAME" (NAME runs to
 * the end of the line), served from memory.  It does only what any
 * filesystem that shows mail as files has to do for `ls -l`, as cheaply as
 * it can be done: readdirplus (always, not "auto"), entry and attribute
 * timeouts of an hour, getxattr answering at once: ENODATA in user.*,
 * ENOTSUP in any other namespace, as imapfs does (it has user.imap.*
 * attributes, so it cannot turn getxattr off; ENOTSUP makes `ls -l` stop
 * asking for security.selinux and system.posix_acl_access), open with
 * keep_cache; mounted with default_permissions and modes 0600/0700, as imapfs
 * is.  File contents are a fixed pattern.  So "imapfs / floor" is
 * what imapfs costs above the kernel's own round trips.
 *
 * -s: single-threaded session loop (default: libfuse's multi-threaded loop
 * with clone_fd, as imapfs runs).  Stays in the foreground; unmount with
 * fusermount3 -u (or SIGTERM/SIGINT).  Not part of imapfs.
 */
#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 314
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fuse_lowlevel.h>

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TIMEOUT 3600.0
#define FIRST_INO 2 /* 1 is the root */

struct file {
	char *name;
	off_t size;
	time_t mtime;
};

static struct file *files;
static size_t nfiles;
static uint32_t *htab; /* file index + 1; 0 = empty */
static size_t hmask;
static char *pattern;
static size_t pattern_len;
static time_t start_time;

static uint64_t hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static long find(const char *name)
{
	for (size_t i = hash(name) & hmask;; i = (i + 1) & hmask) {
		uint32_t v = htab[i];
		if (!v)
			return -1;
		if (strcmp(files[v - 1].name, name) == 0)
			return (long)v - 1;
	}
}

static void fill_stat(fuse_ino_t ino, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_uid = getuid();
	st->st_gid = getgid();
	st->st_blksize = 4096;
	if (ino == FUSE_ROOT_ID) {
		st->st_mode = S_IFDIR | 0700;
		st->st_nlink = 2;
		st->st_mtime = st->st_ctime = st->st_atime = start_time;
		return;
	}
	const struct file *f = &files[ino - FIRST_INO];
	st->st_mode = S_IFREG | 0600;
	st->st_nlink = 1;
	st->st_size = f->size;
	st->st_blocks = (f->size + 511) / 512;
	st->st_mtime = st->st_ctime = st->st_atime = f->mtime;
}

static int valid(fuse_ino_t ino)
{
	return ino == FUSE_ROOT_ID || (ino >= FIRST_INO && ino - FIRST_INO < nfiles);
}

static void fill_entry(fuse_ino_t ino, struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = ino;
	e->generation = 1;
	e->attr_timeout = e->entry_timeout = TIMEOUT;
	fill_stat(ino, &e->attr);
}

static void fl_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	if (conn->capable & FUSE_CAP_READDIRPLUS)
		conn->want |= FUSE_CAP_READDIRPLUS;
	conn->want &= ~(unsigned)FUSE_CAP_READDIRPLUS_AUTO;
	conn->want &= ~(unsigned)FUSE_CAP_AUTO_INVAL_DATA;
	if (conn->capable & FUSE_CAP_ASYNC_READ)
		conn->want |= FUSE_CAP_ASYNC_READ;
}

static void fl_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	long i = parent == FUSE_ROOT_ID ? find(name) : -1;
	if (i < 0) {
		/* a negative entry the kernel keeps for the hour too */
		struct fuse_entry_param e;
		memset(&e, 0, sizeof(e));
		e.entry_timeout = TIMEOUT;
		fuse_reply_entry(req, &e);
		return;
	}
	struct fuse_entry_param e;
	fill_entry((fuse_ino_t)i + FIRST_INO, &e);
	fuse_reply_entry(req, &e);
}

static void fl_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)fi;
	if (!valid(ino)) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	struct stat st;
	fill_stat(ino, &st);
	fuse_reply_attr(req, &st, TIMEOUT);
}

static void fl_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (ino != FUSE_ROOT_ID) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	fuse_reply_open(req, fi);
}

/* offsets: 1 after ".", 2 after "..", 2 + i + 1 after file i */
static void readdir_common(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, int plus)
{
	if (ino != FUSE_ROOT_ID) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	char *buf = malloc(size);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	size_t used = 0;
	for (off_t o = off; o < (off_t)nfiles + 2; o++) {
		const char *name;
		fuse_ino_t child;
		if (o < 2) {
			name = o == 0 ? "." : "..";
			child = FUSE_ROOT_ID;
		} else {
			name = files[o - 2].name;
			child = (fuse_ino_t)(o - 2) + FIRST_INO;
		}
		size_t n;
		if (plus) {
			struct fuse_entry_param e;
			fill_entry(child, &e);
			n = fuse_add_direntry_plus(req, buf + used, size - used, name, &e, o + 1);
		} else {
			struct stat st;
			fill_stat(child, &st);
			n = fuse_add_direntry(req, buf + used, size - used, name, &st, o + 1);
		}
		if (n > size - used)
			break;
		used += n;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
}

static void fl_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	(void)fi;
	readdir_common(req, ino, size, off, 0);
}

static void fl_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	(void)fi;
	readdir_common(req, ino, size, off, 1);
}

static void fl_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (ino == FUSE_ROOT_ID) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	if (!valid(ino)) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if ((fi->flags & O_ACCMODE) != O_RDONLY) {
		fuse_reply_err(req, EROFS);
		return;
	}
	fi->keep_cache = 1;
	fuse_reply_open(req, fi);
}

static void fl_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	(void)fi;
	const struct file *f = &files[ino - FIRST_INO];
	if (off >= f->size) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	size_t n = (size_t)(f->size - off) < size ? (size_t)(f->size - off) : size;
	if (n > pattern_len)
		n = pattern_len;
	fuse_reply_buf(req, pattern, n);
}

static void fl_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	(void)ino;
	(void)size;
	fuse_reply_err(req, strncmp(name, "user.", 5) == 0 ? ENODATA : ENOTSUP);
}

static void fl_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	(void)ino;
	if (size == 0)
		fuse_reply_xattr(req, 0);
	else
		fuse_reply_buf(req, NULL, 0);
}

static const struct fuse_lowlevel_ops ops = {
	.init = fl_init,
	.lookup = fl_lookup,
	.getattr = fl_getattr,
	.opendir = fl_opendir,
	.readdir = fl_readdir,
	.readdirplus = fl_readdirplus,
	.open = fl_open,
	.read = fl_read,
	.getxattr = fl_getxattr,
	.listxattr = fl_listxattr,
};

static int load(const char *path)
{
	FILE *fp = fopen(path, "r");
	if (!fp) {
		perror(path);
		return -1;
	}
	size_t cap = 1024;
	files = malloc(cap * sizeof(*files));
	char *line = NULL;
	size_t linecap = 0;
	ssize_t len;
	off_t max = 0;
	while (files && (len = getline(&line, &linecap, fp)) > 0) {
		if (line[len - 1] == '\n')
			line[--len] = '\0';
		long long size, mtime;
		int used = 0;
		if (sscanf(line, "%lld %lld %n", &size, &mtime, &used) != 2 || used == 0 || !line[used] ||
		    size < 0 || strchr(line + used, '/')) {
			fprintf(stderr, "floorfs: %s: bad line %zu\n", path, nfiles + 1);
			goto fail;
		}
		if (nfiles == cap) {
			cap *= 2;
			struct file *n = realloc(files, cap * sizeof(*files));
			if (!n)
				goto fail;
			files = n;
		}
		files[nfiles].name = strdup(line + used);
		files[nfiles].size = (off_t)size;
		files[nfiles].mtime = (time_t)mtime;
		if (!files[nfiles].name)
			goto fail;
		if (size > max)
			max = size;
		nfiles++;
	}
	free(line);
	fclose(fp);
	if (!files || nfiles > UINT32_MAX / 4)
		return -1;
	size_t hsize = 16;
	while (hsize < 2 * nfiles)
		hsize *= 2;
	htab = calloc(hsize, sizeof(*htab));
	if (!htab)
		return -1;
	hmask = hsize - 1;
	for (size_t i = 0; i < nfiles; i++) {
		if (find(files[i].name) >= 0) {
			fprintf(stderr, "floorfs: duplicate name %s\n", files[i].name);
			return -1;
		}
		size_t j = hash(files[i].name) & hmask;
		while (htab[j])
			j = (j + 1) & hmask;
		htab[j] = (uint32_t)i + 1;
	}
	/* the largest read the kernel sends is far below this */
	pattern_len = 4 << 20;
	if ((off_t)pattern_len > max)
		pattern_len = max > 0 ? (size_t)max : 1;
	pattern = malloc(pattern_len);
	if (!pattern)
		return -1;
	for (size_t i = 0; i < pattern_len; i++)
		pattern[i] = (i % 64 == 63) ? '\n' : (char)('a' + i % 26);
	return 0;
fail:
	free(line);
	fclose(fp);
	return -1;
}

int main(int argc, char **argv)
{
	int single = 0;
	if (argc > 1 && strcmp(argv[1], "-s") == 0) {
		single = 1;
		argc--;
		argv++;
	}
	if (argc != 3) {
		fprintf(stderr, "usage: floorfs [-s] SPECFILE MOUNTPOINT\n");
		return 2;
	}
	start_time = time(NULL);
	if (load(argv[1]) < 0) {
		fprintf(stderr, "floorfs: cannot load %s\n", argv[1]);
		return 1;
	}
	char *fargv[] = { "floorfs", "-o", "default_permissions,fsname=floorfs,subtype=floorfs", NULL };
	struct fuse_args args = FUSE_ARGS_INIT(3, fargv);
	struct fuse_session *se = fuse_session_new(&args, &ops, sizeof(ops), NULL);
	int r = 1;
	if (!se)
		goto out;
	if (fuse_set_signal_handlers(se) != 0)
		goto out_session;
	if (fuse_session_mount(se, argv[2]) != 0)
		goto out_signals;
	if (single) {
		r = fuse_session_loop(se) == 0 ? 0 : 1;
	} else {
		struct fuse_loop_config *loop = fuse_loop_cfg_create();
		if (!loop)
			goto out_unmount;
		fuse_loop_cfg_set_clone_fd(loop, 1);
		fuse_loop_cfg_set_max_threads(loop, 16);
		r = fuse_session_loop_mt(se, loop) == 0 ? 0 : 1;
		fuse_loop_cfg_destroy(loop);
	}
out_unmount:
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_session:
	fuse_session_destroy(se);
out:
	fuse_opt_free_args(&args);
	return r;
}

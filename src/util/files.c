/* files.c - owns how imapfs keeps its own files: private directories held
 * open by descriptor, and files created exclusively and replaced atomically
 * relative to them (see files.h for why). */
#include "files.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PRIVATE_DIR_MODE 0700
#define PRIVATE_FILE_MODE 0600
#define PERMISSION_BITS 07777 /* with setuid, setgid and sticky */
/* Temporary names clash only with an earlier crash's leftovers: a few
 * tries find a free one. */
#define TEMP_NAME_TRIES 100

struct files_dir {
	int fd;
	char *path;
};

/* Creates the missing directories above the last component of path, which
 * starts after the slash at last (0700, as a user's ~/.cache would be).
 * They are only traversed: the checks apply to the last component. */
static void make_parents(char *path, char *last)
{
	for (char *p = path + 1; p <= last; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		mkdir(path, PRIVATE_DIR_MODE); /* failures show when the last one is opened */
		*p = '/';
	}
}

/* Why fd (at path) is not a private directory of ours, or 0 (made 0700). */
static int check_dir(int fd, const char *path, bool strict, char *err, size_t errlen)
{
	struct stat st;

	if (fstat(fd, &st) < 0) {
		snprintf(err, errlen, "cannot examine %s: %s", path, strerror(errno));
		return -errno;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s is not a directory", path);
		return -ENOTDIR;
	}
	if (st.st_uid != geteuid()) {
		snprintf(err, errlen, "%s belongs to uid %lu, not to you (uid %lu)", path,
			 (unsigned long)st.st_uid, (unsigned long)geteuid());
		return -EPERM;
	}
	/* others could have put anything in it already */
	if (strict && (st.st_mode & (S_IWGRP | S_IWOTH))) {
		snprintf(err, errlen, "%s is writable by group or others; run chmod 700 %s", path, path);
		return -EPERM;
	}
	if ((st.st_mode & PERMISSION_BITS) != PRIVATE_DIR_MODE && fchmod(fd, PRIVATE_DIR_MODE) < 0) {
		snprintf(err, errlen, "cannot make %s private: %s", path, strerror(errno));
		return -errno;
	}
	return 0;
}

/* Opens name in parent as a directory, with the reason of a refusal. */
static int open_dir_at(int parent, const char *name, const char *path, char *err, size_t errlen)
{
	struct stat st;
	int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (fd >= 0)
		return fd;
	if ((errno == ELOOP || errno == ENOTDIR) && fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISLNK(st.st_mode)) {
		snprintf(err, errlen, "%s is a symbolic link; give the real directory", path);
		return -ELOOP;
	}
	if (errno == ENOTDIR)
		snprintf(err, errlen, "%s is not a directory", path);
	else
		snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
	return -errno;
}

static int new_dir(int fd, const char *path, struct files_dir **out)
{
	struct files_dir *d = malloc(sizeof(*d));

	if (!d || !(d->path = strdup(path))) {
		free(d);
		close(fd);
		return -ENOMEM;
	}
	d->fd = fd;
	*out = d;
	return 0;
}

/* Opens dir/last after creating it; strict: refuse a group/other mode. */
static int open_private(int parent, const char *last, const char *path, bool strict, struct files_dir **out,
			char *err, size_t errlen)
{
	int fd, r;

	if (mkdirat(parent, last, PRIVATE_DIR_MODE) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
		return -errno;
	}
	fd = open_dir_at(parent, last, path, err, errlen);
	if (fd < 0)
		return fd;
	r = check_dir(fd, path, strict, err, errlen);
	if (r < 0) {
		close(fd);
		return r;
	}
	return new_dir(fd, path, out);
}

int files_dir_open(const char *path, struct files_dir **out, char *err, size_t errlen)
{
	char *copy = strdup(path), *slash;
	const char *parent, *last;
	int pfd, r;

	if (!copy) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (size_t n = strlen(copy); n > 1 && copy[n - 1] == '/'; n--)
		copy[n - 1] = '\0';
	slash = strrchr(copy, '/');
	if (!slash) {
		parent = ".";
		last = copy;
	} else {
		make_parents(copy, slash);
		*slash = '\0';
		parent = slash == copy ? "/" : copy;
		last = slash[1] ? slash + 1 : ".";
	}
	/* the directories above may be links (/home -> /usr/home): followed */
	pfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (pfd < 0) {
		snprintf(err, errlen, "cannot open %s: %s", parent, strerror(errno));
		r = -errno;
	} else {
		r = open_private(pfd, last, path, true, out, err, errlen);
		close(pfd);
	}
	free(copy);
	return r;
}

int files_dir_sub(const struct files_dir *d, const char *name, struct files_dir **out, char *err,
		  size_t errlen)
{
	char *path = malloc(strlen(d->path) + strlen(name) + 2);
	int r;

	if (!path) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	sprintf(path, "%s/%s", d->path, name);
	r = open_private(d->fd, name, path, false, out, err, errlen);
	free(path);
	return r;
}

void files_dir_close(struct files_dir *d)
{
	if (!d)
		return;
	close(d->fd);
	free(d->path);
	free(d);
}

const char *files_dir_path(const struct files_dir *d)
{
	return d->path;
}

int files_dir_fd(const struct files_dir *d)
{
	return d->fd;
}

int files_subdir_at(int dirfd, const char *name, bool create)
{
	char err[1];
	int fd, r;

	if (create && mkdirat(dirfd, name, PRIVATE_DIR_MODE) < 0 && errno != EEXIST)
		return -errno;
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	r = check_dir(fd, name, false, err, sizeof(err));
	if (r < 0) {
		close(fd);
		return r;
	}
	return fd;
}

int files_open_at(int dirfd, const char *name)
{
	struct stat st;
	/* O_NONBLOCK: a FIFO put in a file's place must not hang the open */
	int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
	    fcntl(fd, F_SETFL, 0) < 0) {
		close(fd);
		return -EPERM;
	}
	return fd;
}

int files_create_at(int dirfd, const char *name, int access)
{
	int fd = openat(dirfd, name, access | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, PRIVATE_FILE_MODE);

	if (fd < 0)
		return -errno;
	/* exactly 0600: a umask such as 0277 would have taken bits away */
	if (fchmod(fd, PRIVATE_FILE_MODE) < 0) {
		int r = -errno;

		close(fd);
		unlinkat(dirfd, name, 0);
		return r;
	}
	return fd;
}

int files_append_at(int dirfd, const char *name)
{
	struct stat st;
	int fd = openat(dirfd, name, O_RDWR | O_APPEND | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC,
			PRIVATE_FILE_MODE);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
	    fcntl(fd, F_SETFL, O_APPEND) < 0 || fchmod(fd, PRIVATE_FILE_MODE) < 0) {
		close(fd);
		return -EPERM;
	}
	return fd;
}

int files_write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;

	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

struct whole {
	const void *data;
	size_t len;
};

static int write_whole(int fd, void *ctx)
{
	const struct whole *w = ctx;

	return files_write_all(fd, w->data, w->len);
}

int files_replace_at(int dirfd, const char *name, const void *data, size_t len, bool durable)
{
	struct whole w = { data, len };

	return files_replace_with(dirfd, name, write_whole, &w, durable);
}

int files_replace_with(int dirfd, const char *name, files_writer *write_fn, void *ctx, bool durable)
{
	char *tmp = malloc(strlen(name) + 8);
	int fd, r;

	if (!tmp)
		return -ENOMEM;
	sprintf(tmp, "%s.tmp", name);
	/* what an interrupted run left (or anything else there) goes first */
	if (unlinkat(dirfd, tmp, 0) < 0 && errno != ENOENT) {
		r = -errno;
		goto out;
	}
	fd = files_create_at(dirfd, tmp, O_WRONLY);
	if (fd < 0) {
		r = fd;
		goto out;
	}
	r = write_fn(fd, ctx);
	if (r == 0 && durable && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	/* rename last: readers see the old file or the whole new one */
	if (r == 0 && renameat(dirfd, tmp, dirfd, name) < 0)
		r = -errno;
	if (r < 0)
		unlinkat(dirfd, tmp, 0);
out:
	free(tmp);
	return r;
}

int files_temp_at(int dirfd)
{
	static unsigned long serial;
	struct timespec ts;
	char name[64];
	int fd = -EEXIST;

	for (int i = 0; i < TEMP_NAME_TRIES && fd == -EEXIST; i++) {
		clock_gettime(CLOCK_REALTIME, &ts);
		snprintf(name, sizeof(name), "upload.%ld.%lu.%ld", (long)getpid(),
			 __atomic_add_fetch(&serial, 1, __ATOMIC_RELAXED), (long)ts.tv_nsec);
		fd = files_create_at(dirfd, name, O_RDWR);
	}
	/* unlinked at once: nothing is left behind, whatever happens */
	if (fd >= 0)
		unlinkat(dirfd, name, 0);
	return fd;
}

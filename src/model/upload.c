/* upload.c - owns files being written: the registry of upload inodes, their
 * temporary files, what cp -p / cp -a set on them before closing, and the
 * one APPEND at flush.
 * Locks: uploads.lock, upload.lock (src/README, "Locks"), never held
 * together, and nothing is taken while one is held: the APPEND runs with
 * the upload marked storing and its lock released. */
#include "upload.h"
#include "util/deadline.h"
#include "util/files.h"
#include "imap/flags.h"
#include "inode.h"
#include "util/log.h"
#include "mailbox.h"
#include "receive.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <fuse_lowlevel.h>

struct upload {
	struct uploads *owner; /* this field and the five below: set at creation */
	uint64_t ino;
	uint64_t parent;
	char *name;
	int fd;
	uint64_t limit; /* bytes it may have */
	unsigned refs;  /* the registry's and the open handle's; atomic */
	/* protects the fields below.  While storing, the storing thread reads
	 * date and flags without it: whatever changes them (or the data)
	 * first waits for storing to end. */
	pthread_mutex_t lock;
	pthread_cond_t store_ended; /* with lock: storing became false */
	int error;                  /* a write or truncate failed: store nothing */
	int64_t date;               /* 0: the server's clock */
	struct flag_set flags;
	bool has_flags;
	bool storing; /* the APPEND is under way, without the lock */
	bool stored;
	bool written_after; /* data came after the APPEND */
};

struct uploads {
	struct mailbox *mb; /* this field and the three below: set once */
	struct receive *rcv;
	const struct files_dir *dir;
	unsigned wait_ms;     /* for a store under way, at most */
	pthread_mutex_t lock; /* protects what follows */
	struct upload **v;
	size_t n, cap;
	uint32_t next_serial;
	uint64_t limit;   /* what one message may have, */
	bool limit_known; /* once a session could tell */
};

#define UPLOADS_FIRST_CAP 16 /* files being written at once, before the registry grows */
#define USER_XATTR_PREFIX "user."

struct uploads *uploads_new(struct mailbox *mb, struct receive *rcv, const struct files_dir *dir,
			    unsigned timeout)
{
	struct uploads *u = calloc(1, sizeof(*u));

	if (!u)
		return NULL;
	u->dir = dir;
	u->mb = mb;
	u->rcv = rcv;
	u->wait_ms = timeout * DEADLINE_MS_PER_S;
	pthread_mutex_init(&u->lock, NULL);
	return u;
}

static void upload_put(struct upload *up)
{
	if (__atomic_sub_fetch(&up->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	close(up->fd);
	flags_free(&up->flags);
	pthread_cond_destroy(&up->store_ended);
	pthread_mutex_destroy(&up->lock);
	free(up->name);
	free(up);
}

void uploads_free(struct uploads *u)
{
	if (!u)
		return;
	for (size_t i = 0; i < u->n; i++)
		upload_put(u->v[i]);
	free(u->v);
	pthread_mutex_destroy(&u->lock);
	free(u);
}

static void fill_stat(const struct upload *up, struct stat *st)
{
	struct stat fst;

	memset(st, 0, sizeof(*st));
	st->st_ino = up->ino;
	st->st_mode = S_IFREG | 0600;
	st->st_nlink = 1;
	st->st_uid = getuid();
	st->st_gid = getgid();
	if (fstat(up->fd, &fst) == 0) {
		st->st_size = fst.st_size;
		st->st_blocks = fst.st_blocks;
	}
	st->st_mtime = st->st_ctime = st->st_atime = up->date ? (time_t)up->date : time(NULL);
}

/* The server's APPENDLIMIT is learnt once, at the first upload: writes are
 * checked against it without asking the server each time. */
static uint64_t size_limit(struct uploads *u)
{
	uint64_t limit;
	bool known;

	pthread_mutex_lock(&u->lock);
	known = u->limit_known;
	limit = u->limit;
	pthread_mutex_unlock(&u->lock);
	if (known || mailbox_append_limit(u->mb, &limit) < 0)
		return limit; /* no session now: MAILBOX_APPEND_MAX, ask again later */
	pthread_mutex_lock(&u->lock);
	u->limit = limit;
	u->limit_known = true;
	pthread_mutex_unlock(&u->lock);
	return limit;
}

int uploads_create(struct uploads *u, uint64_t parent, const char *name, struct upload **out, struct stat *st)
{
	struct upload *up;
	int r;

	*out = NULL;
	/* at the root a file is delivered by its class; elsewhere, to its folder */
	r = parent == INODE_ROOT && u->rcv ? 0 : mailbox_can_append(u->mb, parent);
	if (r < 0)
		return r;
	up = calloc(1, sizeof(*up));
	if (!up || !(up->name = strdup(name))) {
		free(up);
		return -ENOMEM;
	}
	if (deadline_cond_init(&up->store_ended) != 0) {
		free(up->name);
		free(up);
		return -ENOMEM;
	}
	up->fd = files_temp_at(files_dir_fd(u->dir));
	if (up->fd < 0) {
		r = up->fd;
		log_warn("cannot create a temporary file in %s: %s", files_dir_path(u->dir), strerror(-r));
		pthread_cond_destroy(&up->store_ended);
		free(up->name);
		free(up);
		return r;
	}
	up->owner = u;
	up->parent = parent;
	up->limit = size_limit(u);
	up->refs = 2; /* the registry's and the open handle's */
	pthread_mutex_init(&up->lock, NULL);
	pthread_mutex_lock(&u->lock);
	if (u->n == u->cap) {
		size_t cap = u->cap ? u->cap * 2 : UPLOADS_FIRST_CAP;
		struct upload **v = realloc(u->v, cap * sizeof(*v));

		if (!v) {
			pthread_mutex_unlock(&u->lock);
			up->refs = 1;
			upload_put(up);
			return -ENOMEM;
		}
		u->v = v;
		u->cap = cap;
	}
	up->ino = inode_of_message(INODE_UPLOAD_FOLDER, ++u->next_serial);
	u->v[u->n++] = up;
	pthread_mutex_unlock(&u->lock);
	fill_stat(up, st);
	*out = up;
	return 0;
}

/* Records the first error that stops the upload (logged once); r. */
static int fail_locked(struct upload *up, int r)
{
	if (up->error)
		return r;
	up->error = r;
	if (r == -EFBIG)
		log_warn("%s: larger than the %llu bytes one message may have here: not stored", up->name,
			 (unsigned long long)up->limit);
	else
		log_warn("%s: cannot keep the data being written: %s; not stored", up->name, strerror(-r));
	return r;
}

static bool over_limit(const struct upload *up, off_t off, size_t size)
{
	return off < 0 || (uint64_t)off > up->limit || size > up->limit - (uint64_t)off;
}

/* Waits until no store of up is under way, at most the mount's timeout: a
 * change now would alter what is being sent, or what was. */
static int wait_store_locked(struct upload *up)
{
	struct timespec until;
	bool in_time = true;

	if (up->storing)
		deadline_in(&until, up->owner->wait_ms);
	while (up->storing && in_time)
		in_time = deadline_wait(&up->store_ended, &up->lock, &until);
	if (!up->storing)
		return 0;
	log_warn("%s: its store is still under way after %u ms", up->name, up->owner->wait_ms);
	return -EBUSY;
}

ssize_t upload_write(struct upload *up, const char *buf, size_t size, off_t off)
{
	ssize_t n;

	pthread_mutex_lock(&up->lock);
	n = wait_store_locked(up);
	pthread_mutex_unlock(&up->lock);
	if (n < 0)
		return n;
	if (over_limit(up, off, size))
		n = -EFBIG;
	else if ((n = pwrite(up->fd, buf, size, off)) < 0)
		n = -errno;
	pthread_mutex_lock(&up->lock);
	if (n < 0)
		fail_locked(up, (int)n);
	else
		up->written_after = up->stored;
	pthread_mutex_unlock(&up->lock);
	return n;
}

ssize_t upload_read(struct upload *up, char *buf, size_t size, off_t off)
{
	ssize_t n;

	if (off < 0)
		return -EINVAL;
	n = pread(up->fd, buf, size, off);
	return n < 0 ? -errno : n;
}

int upload_error(struct upload *up)
{
	int r;

	pthread_mutex_lock(&up->lock);
	r = up->error;
	pthread_mutex_unlock(&up->lock);
	return r;
}

static int deliver(struct uploads *u, struct upload *up, const char *data, size_t len)
{
	uint64_t folder = up->parent;
	int r = 0;

	if (len == 0 || !mailbox_looks_like_message(data, len))
		return -EINVAL;
	if (folder == INODE_ROOT)
		r = receive_target(u->rcv, data, len, &folder);
	if (r == 0)
		r = mailbox_append(u->mb, folder, up->name, up->ino, data, len,
				   up->has_flags ? &up->flags : NULL, up->date);
	return r;
}

/* 1 and the size of the data when it is to be stored now, 0 when it was
 * stored already, or -errno. */
static int ready_to_store_locked(struct upload *up, size_t *size)
{
	struct stat st;
	int r = wait_store_locked(up);

	if (r < 0)
		return r;
	if (up->error)
		return up->error; /* the data is not what the writer wrote */
	if (up->stored)
		return up->written_after ? -EPERM : 0; /* a stored message cannot change */
	if (fstat(up->fd, &st) < 0)
		return -errno;
	if (st.st_size == 0)
		return -EINVAL; /* nothing to store: not a message */
	if ((uint64_t)st.st_size > up->limit)
		return fail_locked(up, -EFBIG);
	*size = (size_t)st.st_size;
	return 1;
}

/* The APPEND, with up storing and its lock released. */
static int store(struct uploads *u, struct upload *up, size_t size)
{
	void *data = mmap(NULL, size, PROT_READ, MAP_PRIVATE, up->fd, 0);
	int r;

	if (data == MAP_FAILED)
		return -errno;
	r = deliver(u, up, data, size);
	munmap(data, size);
	if (r < 0)
		log_warn("cannot store %s: %s", up->name, strerror(-r));
	return r;
}

int upload_flush(struct uploads *u, struct upload *up)
{
	size_t size = 0;
	int r;

	pthread_mutex_lock(&up->lock);
	r = ready_to_store_locked(up, &size);
	if (r > 0) {
		up->storing = true;
		pthread_mutex_unlock(&up->lock);
		r = store(u, up, size);
		pthread_mutex_lock(&up->lock);
		up->storing = false;
		up->stored = r == 0;
		pthread_cond_broadcast(&up->store_ended);
	}
	pthread_mutex_unlock(&up->lock);
	return r;
}

void upload_release(struct upload *up)
{
	struct uploads *u = up->owner;

	pthread_mutex_lock(&u->lock);
	for (size_t i = 0; i < u->n; i++) {
		if (u->v[i] == up) {
			u->v[i] = u->v[--u->n];
			upload_put(up);
			break;
		}
	}
	pthread_mutex_unlock(&u->lock);
	upload_put(up);
}

/* A referenced upload by inode, or NULL. */
static struct upload *find(struct uploads *u, uint64_t ino)
{
	struct upload *up = NULL;

	pthread_mutex_lock(&u->lock);
	for (size_t i = 0; i < u->n && !up; i++)
		if (u->v[i]->ino == ino)
			up = u->v[i];
	if (up)
		__atomic_add_fetch(&up->refs, 1, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&u->lock);
	return up;
}

int upload_getattr(struct upload *up, struct stat *st)
{
	int r = -ENOENT;

	pthread_mutex_lock(&up->lock);
	if (!up->stored) {
		fill_stat(up, st);
		r = 0;
	}
	pthread_mutex_unlock(&up->lock);
	return r;
}

int uploads_getattr(struct uploads *u, uint64_t ino, struct stat *st)
{
	struct upload *up = find(u, ino);
	int r;

	if (!up)
		return -ENOENT;
	r = upload_getattr(up, st);
	upload_put(up);
	return r;
}

static int truncate_locked(struct upload *up, off_t size)
{
	if (size < 0)
		return -EINVAL;
	if (over_limit(up, size, 0))
		return fail_locked(up, -EFBIG);
	return ftruncate(up->fd, size) < 0 ? fail_locked(up, -errno) : 0;
}

int upload_setattr(struct upload *up, const struct stat *attr, int to_set, struct stat *st)
{
	int r = 0;

	pthread_mutex_lock(&up->lock);
	if (to_set & (FUSE_SET_ATTR_SIZE | FUSE_SET_ATTR_MTIME))
		r = wait_store_locked(up);
	if (r == 0 && up->stored && (to_set & (FUSE_SET_ATTR_SIZE | FUSE_SET_ATTR_MTIME)))
		r = -EPERM;
	if (r == 0 && (to_set & FUSE_SET_ATTR_SIZE))
		r = truncate_locked(up, attr->st_size);
	if (r == 0 && (to_set & FUSE_SET_ATTR_MTIME))
		up->date = (to_set & FUSE_SET_ATTR_MTIME_NOW) ? time(NULL) : attr->st_mtime;
	fill_stat(up, st);
	pthread_mutex_unlock(&up->lock);
	return r;
}

int uploads_setattr(struct uploads *u, uint64_t ino, const struct stat *attr, int to_set, struct stat *st)
{
	struct upload *up = find(u, ino);
	int r;

	if (!up)
		return -ENOENT;
	r = upload_setattr(up, attr, to_set, st);
	upload_put(up);
	return r;
}

int uploads_setxattr(struct uploads *u, uint64_t ino, const char *name, const char *value, size_t size)
{
	struct upload *up;
	struct flag_set fs;
	int r;

	if (strncmp(name, USER_XATTR_PREFIX, strlen(USER_XATTR_PREFIX)) != 0)
		return -ENOTSUP;
	if (strcmp(name, "user.imap.flags") != 0)
		return 0; /* cp -a copies uid, dates...: those are the server's to give */
	r = flags_parse(value, size, &fs);
	if (r < 0)
		return r;
	up = find(u, ino);
	if (!up) {
		flags_free(&fs);
		return -ENOENT;
	}
	pthread_mutex_lock(&up->lock);
	r = wait_store_locked(up);
	if (r == 0) {
		fs.system &= ~(unsigned)IMAP_FLAG_DELETED;
		flags_free(&up->flags);
		up->flags = fs;
		up->has_flags = true;
	} else {
		flags_free(&fs);
	}
	pthread_mutex_unlock(&up->lock);
	upload_put(up);
	return r;
}

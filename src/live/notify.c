/* notify.c - owns telling the kernel about changes made elsewhere (another
 * client, new mail): a queue filled by whichever thread synced a folder, and
 * one thread that empties it, so no FUSE request ever waits on the kernel.
 *
 * FUSE can drop what the kernel cached (notify_inval_*), but it has no way to
 * raise an inotify event for a file that appeared.  So this thread also
 * "announces" each change through the VFS, as a program would: mknod of a
 * new message's name, unlink of a vanished one, utimensat of one whose flags
 * changed.  The handlers in ops.c/ops_write.c recognise these requests by the
 * caller's thread id and answer them without touching the server; the kernel
 * then emits IN_CREATE, IN_DELETE and IN_ATTRIB to anyone watching.
 *
 * Locks (src/README, "Locks"): notify.lock, taken by a syncing thread that
 * may hold a folder's lock, and announce_lock, a leaf; never both, and
 * neither is held while the kernel is told anything. */
#define _GNU_SOURCE /* gettid */
#include "notify.h"
#include "model/inode.h"
#include "util/log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#define QUEUE_MAX 20000  /* changes waiting; beyond, a folder is just invalidated */
#define QUEUE_FIRST 1024 /* room at first; doubled up to QUEUE_MAX */

struct change {
	enum mailbox_change_kind kind;
	uint32_t folder;
	uint32_t uid;
	char *name;
	uint32_t size;
	int64_t date;
};

struct notify {
	struct mailbox *mb;      /* set once */
	struct fuse_session *se; /* set by notify_start, before the thread */
	char *mountpoint;        /* absolute; no fd is held open: it would keep umount busy */

	pthread_mutex_t lock; /* protects the fields below, to dropped */
	pthread_cond_t wake;  /* with lock: changes queued, or stopping */
	struct change *queue; /* a ring of cap entries */
	size_t head, count, cap;
	uint32_t *overflowed; /* folders whose changes did not fit */
	size_t noverflowed;
	bool stopping;
	uint64_t dropped; /* changes that did not fit, for .status */

	bool started; /* the caller of start and stop's alone */
	pthread_t thread;

	pid_t tid;                     /* the announcing thread, 0 until it runs; atomic */
	dev_t dev;                     /* the mount's, seen at the first announcement; */
	bool dev_known;                /* the announcing thread's alone */
	pthread_mutex_t announce_lock; /* protects current */
	struct notify_announcement current;
	uint64_t announced; /* announcements made, for .status; atomic */
	uint64_t stored;    /* bodies put in the page cache, for .status; atomic */
};

struct notify *notify_new(struct mailbox *mb, const char *mountpoint)
{
	struct notify *n = calloc(1, sizeof(*n));
	char *abs = realpath(mountpoint, NULL);

	if (!n || !abs) {
		free(n);
		free(abs);
		return NULL;
	}
	n->mb = mb;
	n->mountpoint = abs;
	n->cap = QUEUE_FIRST;
	n->queue = calloc(n->cap, sizeof(*n->queue));
	if (!n->queue) {
		free(abs);
		free(n);
		return NULL;
	}
	pthread_mutex_init(&n->lock, NULL);
	pthread_cond_init(&n->wake, NULL);
	pthread_mutex_init(&n->announce_lock, NULL);
	return n;
}

void notify_free(struct notify *n)
{
	if (!n)
		return;
	notify_stop(n);
	for (size_t i = 0; i < n->count; i++)
		free(n->queue[(n->head + i) % n->cap].name);
	free(n->queue);
	free(n->overflowed);
	pthread_mutex_destroy(&n->lock);
	pthread_cond_destroy(&n->wake);
	pthread_mutex_destroy(&n->announce_lock);
	free(n->mountpoint);
	free(n);
}

static bool grow_locked(struct notify *n)
{
	size_t cap = n->cap * 2;
	struct change *q;

	if (cap > QUEUE_MAX)
		return false;
	q = calloc(cap, sizeof(*q));
	if (!q)
		return false;
	for (size_t i = 0; i < n->count; i++)
		q[i] = n->queue[(n->head + i) % n->cap];
	free(n->queue);
	n->queue = q;
	n->head = 0;
	n->cap = cap;
	return true;
}

static void overflow_locked(struct notify *n, uint32_t folder)
{
	uint32_t *v;

	n->dropped++;
	for (size_t i = 0; i < n->noverflowed; i++)
		if (n->overflowed[i] == folder)
			return;
	v = realloc(n->overflowed, (n->noverflowed + 1) * sizeof(*v));
	if (v) {
		n->overflowed = v;
		n->overflowed[n->noverflowed++] = folder;
	}
}

void notify_changes(const struct mailbox_change *changes, size_t count, void *ctx)
{
	struct notify *n = ctx;

	pthread_mutex_lock(&n->lock);
	for (size_t i = 0; i < count && !n->stopping; i++) {
		const struct mailbox_change *c = &changes[i];
		char *name = strdup(c->name ? c->name : "");

		if (!name || (n->count == n->cap && !grow_locked(n))) {
			free(name);
			overflow_locked(n, c->kind == MAILBOX_CHANGE_FOLDERS ? 0 : c->folder);
			continue;
		}
		n->queue[(n->head + n->count++) % n->cap] =
			(struct change){ c->kind, c->folder, c->uid, name, c->size, c->date };
	}
	pthread_cond_signal(&n->wake);
	pthread_mutex_unlock(&n->lock);
}

/* ---- the announcing thread ---- */

/* The absolute path of name inside folder, or NULL. */
static char *path_of(struct notify *n, uint32_t folder, const char *name)
{
	char *dir = mailbox_folder_path(n->mb, folder), *path;

	if (!dir)
		return NULL;
	if (asprintf(&path, "%s%s%s/%s", n->mountpoint, *dir ? "/" : "", dir, name) < 0)
		path = NULL;
	free(dir);
	return path;
}

static void set_current(struct notify *n, enum notify_role role, fuse_ino_t parent, const struct change *c,
			fuse_ino_t ino)
{
	pthread_mutex_lock(&n->announce_lock);
	n->current = (struct notify_announcement){ role, parent,          c ? c->name : NULL,
						   ino,  c ? c->size : 0, c ? c->date : 0 };
	pthread_mutex_unlock(&n->announce_lock);
}

#define FUSE_SUPER_MAGIC 0x65735546

/* Announcements go by path: after a lazy unmount the path would reach the
 * directory underneath, where mknod and unlink must never happen. */
static bool still_mounted(struct notify *n)
{
	struct statfs sfs;
	struct stat st;

	if (fuse_session_exited(n->se) || statfs(n->mountpoint, &sfs) < 0 || sfs.f_type != FUSE_SUPER_MAGIC ||
	    stat(n->mountpoint, &st) < 0)
		return false;
	if (!n->dev_known) {
		n->dev = st.st_dev;
		n->dev_known = true;
	}
	return st.st_dev == n->dev;
}

static void announce(struct notify *n, const struct change *c)
{
	fuse_ino_t parent = inode_of_folder(c->folder);
	fuse_ino_t ino = inode_of_message(c->folder, c->uid);
	const struct timespec now[2] = { { .tv_nsec = UTIME_NOW }, { .tv_nsec = UTIME_NOW } };
	char *path = NULL;
	int r = -1;

	if (!still_mounted(n))
		return;
	switch (c->kind) {
	case MAILBOX_CHANGE_ADDED:
		/* a negative entry the kernel may hold would hide the file */
		fuse_lowlevel_notify_inval_entry(n->se, parent, c->name, strlen(c->name));
		if (!(path = path_of(n, c->folder, c->name)))
			break;
		set_current(n, NOTIFY_ADD, parent, c, ino);
		r = mknod(path, S_IFREG | 0600, 0);
		break;
	case MAILBOX_CHANGE_REMOVED:
		/* drop its pages and attributes, then its name (IN_DELETE) */
		fuse_lowlevel_notify_inval_inode(n->se, ino, 0, 0);
		if ((path = path_of(n, c->folder, c->name))) {
			set_current(n, NOTIFY_REMOVE, parent, c, ino);
			r = unlink(path);
		}
		if (r < 0)
			fuse_lowlevel_notify_delete(n->se, parent, ino, c->name, strlen(c->name));
		break;
	case MAILBOX_CHANGE_FLAGS:
		if (!(path = path_of(n, c->folder, c->name)))
			break;
		set_current(n, NOTIFY_FLAGS, parent, c, ino);
		r = utimensat(AT_FDCWD, path, now, AT_SYMLINK_NOFOLLOW);
		break;
	case MAILBOX_CHANGE_RELOADED:
		fuse_lowlevel_notify_inval_inode(n->se, parent, 0, 0);
		r = 0;
		break;
	case MAILBOX_CHANGE_FOLDERS:
		/* c->folder is the parent, c->uid the folder itself */
		fuse_lowlevel_notify_inval_entry(n->se, parent, c->name, strlen(c->name));
		fuse_lowlevel_notify_inval_inode(n->se, parent, 0, 0);
		r = 0;
		break;
	}
	set_current(n, NOTIFY_NONE, 0, NULL, 0);
	if (r < 0 && c->kind != MAILBOX_CHANGE_REMOVED)
		log_debug("could not announce a change of %s: %s", c->name, strerror(errno));
	if (r == 0)
		__atomic_add_fetch(&n->announced, 1, __ATOMIC_RELAXED);
	free(path);
}

static void *notify_loop(void *arg)
{
	struct notify *n = arg;

	/* set before anything is announced: handlers compare it with the caller */
	__atomic_store_n(&n->tid, gettid(), __ATOMIC_RELEASE);
	pthread_mutex_lock(&n->lock);
	while (!n->stopping) {
		struct change c;

		if (n->noverflowed) {
			uint32_t folder = n->overflowed[--n->noverflowed];

			pthread_mutex_unlock(&n->lock);
			fuse_lowlevel_notify_inval_inode(n->se, inode_of_folder(folder), 0, 0);
			pthread_mutex_lock(&n->lock);
			continue;
		}
		if (n->count == 0) {
			pthread_cond_wait(&n->wake, &n->lock);
			continue;
		}
		c = n->queue[n->head];
		n->head = (n->head + 1) % n->cap;
		n->count--;
		pthread_mutex_unlock(&n->lock);
		announce(n, &c);
		free(c.name);
		pthread_mutex_lock(&n->lock);
	}
	pthread_mutex_unlock(&n->lock);
	return NULL;
}

int notify_start(struct notify *n, struct fuse_session *se)
{
	int r;

	n->se = se;
	r = pthread_create(&n->thread, NULL, notify_loop, n);
	n->started = r == 0;
	return -r;
}

void notify_quiesce(struct notify *n)
{
	if (!n)
		return;
	pthread_mutex_lock(&n->lock);
	n->stopping = true;
	pthread_cond_signal(&n->wake);
	pthread_mutex_unlock(&n->lock);
}

void notify_stop(struct notify *n)
{
	if (!n || !n->started)
		return;
	notify_quiesce(n);
	pthread_join(n->thread, NULL);
	n->started = false;
}

enum notify_role notify_announced(struct notify *n, fuse_req_t req, fuse_ino_t parent, const char *name,
				  fuse_ino_t *ino, struct notify_announcement *a)
{
	enum notify_role role = NOTIFY_STRAY;
	pid_t tid = n ? __atomic_load_n(&n->tid, __ATOMIC_ACQUIRE) : 0;

	if (tid == 0 || fuse_req_ctx(req)->pid != tid)
		return NOTIFY_NONE;
	pthread_mutex_lock(&n->announce_lock);
	if (n->current.role != NOTIFY_NONE &&
	    (name ? n->current.parent == parent && n->current.name && strcmp(n->current.name, name) == 0
		  : n->current.ino == *ino)) {
		role = n->current.role;
		*ino = n->current.ino;
		if (a)
			*a = n->current; /* a->name is only valid during the call */
	}
	pthread_mutex_unlock(&n->announce_lock);
	return role;
}

void notify_body(uint64_t ino, char *body, size_t len, void *ctx)
{
	struct notify *n = ctx;
	struct fuse_bufvec bv = FUSE_BUFVEC_INIT(len);
	bool stopping;
	int r;

	pthread_mutex_lock(&n->lock);
	stopping = n->stopping;
	pthread_mutex_unlock(&n->lock);
	if (stopping || !n->se)
		return;
	bv.buf[0].mem = body;
	r = fuse_lowlevel_notify_store(n->se, ino, 0, &bv, 0);
	/* ENOENT: the kernel holds no such inode (never listed, or forgotten);
	 * the reader's read will come to the daemon, as without this */
	if (r == 0)
		__atomic_add_fetch(&n->stored, 1, __ATOMIC_RELAXED);
	else if (r != -ENOENT)
		log_debug("cannot store %zu bytes of inode %llu in the page cache: %s", len,
			  (unsigned long long)ino, strerror(-r));
}

void notify_status(struct notify *n, FILE *out)
{
	unsigned long long dropped;
	size_t queued;

	pthread_mutex_lock(&n->lock);
	queued = n->count;
	dropped = n->dropped;
	pthread_mutex_unlock(&n->lock);
	fprintf(out, "notify announced=%llu queued=%zu dropped=%llu stored=%llu\n",
		(unsigned long long)__atomic_load_n(&n->announced, __ATOMIC_RELAXED), queued, dropped,
		(unsigned long long)__atomic_load_n(&n->stored, __ATOMIC_RELAXED));
}

/* tree_refresh.c - owns the folder tree's refresh from LIST: one LIST in
 * flight at a time, run with no lock held; a thread that needs the tree
 * while one is in flight waits (bounded) for its result instead of sending
 * another.  The result is applied under tree_lock, folders an interrupted
 * rmdir left behind get their names back, and the folders that came or went
 * are told to the change hook (the kernel may hold their names or their
 * absence). */
#include "mailbox_p.h"
#include "util/deadline.h"
#include "util/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define LISTED_FIRST 64 /* first allocation for LIST's answers */

/* Makes sure every ancestor of path exists as a directory; returns the id
 * of path's parent. */
static int ensure_parents_locked(struct mailbox *mb, const char *path, uint32_t *parent)
{
	char *copy = strdup(path);
	char *slash;
	struct folder *f;

	if (!copy)
		return -ENOMEM;
	slash = strrchr(copy, '/');
	if (!slash) {
		free(copy);
		*parent = 0;
		return 0;
	}
	*slash = '\0';
	f = mb_folder_by_path_locked(mb, copy);
	if (!f) {
		uint32_t grand;
		int r = ensure_parents_locked(mb, copy, &grand);

		f = r == 0 ? mb_folder_add_locked(mb, copy) : NULL;
		if (f)
			f->parent = grand;
	}
	if (f)
		f->present = true;
	free(copy);
	if (!f)
		return -ENOMEM;
	*parent = f->id;
	return 0;
}

struct listed {
	char *name;
	char delim;
	unsigned flags;
};

struct list_result {
	struct mailbox *mb;
	struct listed *v;
	size_t n, cap;
	int err;
};

static void collect_folder(const char *name, char delim, unsigned flags, void *ctx)
{
	struct list_result *lr = ctx;

	/* a folder rmdir is checking right now is nobody's business */
	if (lr->err || mb_rmdir_busy(lr->mb, name, delim))
		return;
	if (lr->n == lr->cap) {
		size_t cap = lr->cap ? lr->cap * 2 : LISTED_FIRST;
		struct listed *v = realloc(lr->v, cap * sizeof(*v));

		if (!v) {
			lr->err = -ENOMEM;
			return;
		}
		lr->v = v;
		lr->cap = cap;
	}
	lr->v[lr->n].name = strdup(name);
	if (!lr->v[lr->n].name) {
		lr->err = -ENOMEM;
		return;
	}
	lr->v[lr->n].delim = delim;
	lr->v[lr->n++].flags = flags;
}

static bool listed(const struct list_result *lr, const char *name)
{
	for (size_t i = 0; i < lr->n; i++)
		if (strcmp(lr->v[i].name, name) == 0)
			return true;
	return false;
}

/* A folder an interrupted rmdir left under its private name gets its own
 * back (unless another folder took it meanwhile); true when one did. */
static bool recover_rmdirs(struct imap_session *s, const struct list_result *lr)
{
	bool any = false;

	for (size_t i = 0; i < lr->n; i++) {
		char *real = mb_rmdir_leftover(lr->mb, lr->v[i].name, lr->v[i].delim);

		if (real && !listed(lr, real)) {
			log_warn("%.100s was left by an interrupted rmdir: renaming it back to %.100s",
				 lr->v[i].name, real);
			if (imap_rename_folder(s, lr->v[i].name, real) == 0)
				any = true;
		}
		free(real);
	}
	return any;
}

static void list_clear(struct list_result *lr)
{
	for (size_t i = 0; i < lr->n; i++)
		free(lr->v[i].name);
	lr->n = 0;
	lr->err = 0;
}

static int list_fn(struct imap_session *s, const struct imap_folder_state *st, void *ctx)
{
	struct list_result *lr = ctx;
	int r;

	(void)st;
	list_clear(lr);
	r = imap_list(s, collect_folder, lr);
	if (r == 0 && !lr->err && recover_rmdirs(s, lr)) {
		list_clear(lr);
		r = imap_list(s, collect_folder, lr);
	}
	return r;
}

static void apply_listed_locked(struct mailbox *mb, const struct listed *e)
{
	struct folder *f;
	char *path = NULL;
	uint32_t parent;

	if (names_folder_to_path(e->name, e->delim, &path) < 0) {
		log_warn("ignoring folder with an unusable name \"%.100s\"", e->name);
		return;
	}
	f = mb_folder_by_path_locked(mb, path);
	if (f && f->present && f->server && strcmp(f->server, e->name) != 0) {
		log_warn("ignoring folder \"%.100s\": its name collides with another", e->name);
		free(path);
		return;
	}
	if (ensure_parents_locked(mb, path, &parent) < 0 || (!f && !(f = mb_folder_add_locked(mb, path)))) {
		free(path);
		return;
	}
	free(path);
	f->parent = parent;
	f->present = true;
	f->noselect = (e->flags & IMAP_LIST_NOSELECT) != 0;
	f->special = e->flags;
	if (e->delim && (!mb->delim || strcasecmp(e->name, "INBOX") == 0))
		mb->delim = e->delim;
	/* "Inbox" one time, "INBOX" the next: readers may hold the old name */
	if (!f->server || strcmp(f->server, e->name) != 0)
		mb_rename_locked(mb, f, NULL, e->name);
}

/* Folders that appeared or vanished since the last LIST: the kernel may
 * hold their names (or their absence). */
static void report_folder_changes(struct mailbox *mb, const bool *was, size_t nwas)
{
	struct mailbox_change c = { .kind = MAILBOX_CHANGE_FOLDERS };

	if (!mb->change_hook)
		return;
	pthread_rwlock_rdlock(&mb->tree_lock);
	for (size_t i = 1; i < mb->nfolders; i++) {
		const struct folder *f = mb->folders[i];

		if ((i < nwas ? was[i] : false) == f->present)
			continue;
		c.folder = f->parent;
		c.uid = f->id;
		c.name = f->leaf;
		/* the hook only queues: calling it under the read lock is fine */
		mb->change_hook(&c, 1, mb->change_ctx);
	}
	pthread_rwlock_unlock(&mb->tree_lock);
}

/* Runs one LIST and applies it; the caller has claimed the turn. */
static int list_and_apply(struct mailbox *mb, bool first)
{
	struct list_result lr = { .mb = mb };
	bool *was = NULL;
	size_t nwas = 0;
	int r = pool_run(mb->pool, NULL, 0, list_fn, &lr);

	if (r == 0 && lr.err)
		r = lr.err;
	if (r < 0) {
		log_warn("cannot list folders: %s", strerror(-r));
		goto out;
	}
	pthread_rwlock_wrlock(&mb->tree_lock);
	/* the first LIST tells nobody anything: the kernel knows nothing yet */
	was = first ? NULL : calloc(mb->nfolders + 1, 1);
	nwas = mb->nfolders;
	for (size_t i = 1; i < mb->nfolders; i++) {
		if (was)
			was[i] = mb->folders[i]->present;
		/* a folder mkdir made under -o writeback is there before the
		 * server has it */
		mb->folders[i]->present = mb->folders[i]->pending_create;
	}
	for (size_t i = 0; i < lr.n; i++)
		apply_listed_locked(mb, &lr.v[i]);
	mb_reindex_locked(mb);
	/* a folder that went may come back re-created: ask before serving it */
	for (size_t i = 1; was && i < nwas; i++)
		if (was[i] && !mb->folders[i]->present)
			mb_mark_stale(mb->folders[i]);
	pthread_rwlock_unlock(&mb->tree_lock);
out:
	for (size_t i = 0; i < lr.n; i++)
		free(lr.v[i].name);
	free(lr.v);
	if (was)
		report_folder_changes(mb, was, nwas);
	free(was);
	return r;
}

/* Seconds from a to b. */
static double seconds_between(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

/* Waits for the LIST in flight to end: whether it began early enough to
 * serve a caller that asked at `asked` (then *r is its result); -ETIMEDOUT
 * in *r when it did not end in time. */
static bool wait_for_list_locked(struct mailbox *mb, const struct timespec *asked, double max_age, int *r)
{
	struct timespec began = mb->list_started, until;
	unsigned ended = mb->lists_ended;

	deadline_in(&until, mb_wait_ms(mb));
	while (mb->lists_ended == ended) {
		if (!deadline_wait(&mb->list_done, &mb->list_lock, &until) && mb->lists_ended == ended) {
			log_warn("gave up waiting for another thread's LIST");
			*r = -ETIMEDOUT;
			return true;
		}
	}
	*r = mb->list_result;
	return seconds_between(&began, asked) <= max_age;
}

int mb_refresh_tree(struct mailbox *mb, double max_age)
{
	struct timespec asked;
	bool first;
	int r = 0;

	mb_stamp(&asked);
	pthread_mutex_lock(&mb->list_lock);
	for (;;) {
		if (mb_age(&mb->listed_at) < max_age)
			goto out;
		if (!mb->listing_folders)
			break;
		if (wait_for_list_locked(mb, &asked, max_age, &r))
			goto out;
	}
	mb->listing_folders = true;
	mb_stamp(&mb->list_started);
	first = !mb->listed_at.tv_sec && !mb->listed_at.tv_nsec;
	pthread_mutex_unlock(&mb->list_lock);

	r = list_and_apply(mb, first);

	pthread_mutex_lock(&mb->list_lock);
	mb->listing_folders = false;
	mb->list_result = r;
	mb->lists_ended++;
	if (r == 0)
		mb_stamp(&mb->listed_at);
	pthread_cond_broadcast(&mb->list_done);
out:
	pthread_mutex_unlock(&mb->list_lock);
	return r;
}

int mailbox_load_folders(struct mailbox *mb)
{
	return mb_refresh_tree(mb, 0);
}

void mb_tree_refresh_init(struct mailbox *mb)
{
	pthread_mutex_init(&mb->list_lock, NULL);
	deadline_cond_init(&mb->list_done);
}

void mb_tree_refresh_destroy(struct mailbox *mb)
{
	pthread_mutex_destroy(&mb->list_lock);
	pthread_cond_destroy(&mb->list_done);
}

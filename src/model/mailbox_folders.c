/* mailbox_folders.c - owns the changes to folders made through the mount:
 * mkdir (CREATE), rmdir (its DELETE is mailbox_rmdir.c's) and the rename of
 * a folder (RENAME), each followed by a LIST so the tree is right at once,
 * and the model's renames (a folder keeps its id, so its inode, under its
 * new name, and so do the folders below it). */
#include "mailbox_p.h"
#include "changes.h"
#include "inode.h"
#include "util/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool is_inbox(const struct folder *f)
{
	return f->server && strcasecmp(f->server, "INBOX") == 0;
}

struct folder *mb_find_folder(struct mailbox *mb, const char *path, unsigned special)
{
	struct folder *found = NULL;

	pthread_rwlock_rdlock(&mb->tree_lock);
	for (size_t i = 1; i < mb->nfolders && !found; i++) {
		struct folder *f = mb->folders[i];

		if (f->present && f->server && !f->noselect &&
		    (special ? (f->special & special) != 0 : strcmp(f->path, path) == 0))
			found = f;
	}
	pthread_rwlock_unlock(&mb->tree_lock);
	return found;
}

struct folder_job {
	const char *name;
	const char *new_name;
	bool unknown;
};

static int create_fn(struct imap_session *s, const struct imap_folder_state *st, void *ctx)
{
	struct folder_job *job = ctx;
	int r = imap_create_folder(s, job->name);

	(void)st;
	job->unknown = r < 0 && imap_dead(s);
	if (r == 0 && imap_subscribe(s, job->name, true) < 0)
		log_info("could not subscribe to %.100s", job->name);
	return r;
}

int mb_create_folder(struct mailbox *mb, const char *path, bool *lost)
{
	struct folder_job job = { 0 };
	char *server = NULL;
	int r = names_path_to_folder(path, mb->delim ? mb->delim : '/', &server);

	if (r < 0)
		return r == -ENOMEM ? r : -EINVAL;
	job.name = server;
	r = pool_run(mb->pool, NULL, POOL_NO_RETRY, create_fn, &job);
	free(server);
	if (mb_refresh_tree(mb, 0) == 0 && (r == -EEXIST || job.unknown) && mb_find_folder(mb, path, 0))
		r = 0;
	if (lost)
		*lost = r < 0 && job.unknown;
	return r;
}

static char *child_path(struct mailbox *mb, uint32_t parent, const char *name)
{
	struct folder *p = mb_folder(mb, parent);
	char *path;

	if (!p)
		return NULL;
	if (parent == 0)
		return strdup(name);
	path = malloc(strlen(p->path) + strlen(name) + 2);
	if (path)
		sprintf(path, "%s/%s", p->path, name);
	return path;
}

/* -o writeback: CREATE is journaled and the folder shown at once, empty
 * and selectable, until the flusher has created it. */
static int queue_mkdir(struct mailbox *mb, uint32_t parent, const char *path, struct stat *st)
{
	struct listing_builder b;
	struct folder *f = NULL;
	char *server = NULL;
	uint64_t id;
	int r = names_path_to_folder(path, mb->delim ? mb->delim : '/', &server);

	if (r < 0)
		return r == -ENOMEM ? r : -EINVAL;
	if ((r = listing_builder_init(&b, mb->opt.names, 0)) == 0 &&
	    (r = changes_queue_create(mb, server, &id)) < 0)
		listing_builder_abandon(&b);
	if (r < 0) {
		free(server);
		return r;
	}
	listing_builder_finish(&b);
	pthread_rwlock_wrlock(&mb->tree_lock);
	f = mb_folder_by_path_locked(mb, path);
	if (!f)
		f = mb_folder_add_locked(mb, path);
	if (f) {
		f->parent = parent;
		f->present = true;
		f->noselect = false;
		f->pending_create = true;
		mb_rename_locked(mb, f, NULL, server);
		pthread_mutex_lock(&f->lock);
		mb_listing_put(f->listing);
		f->listing = b.l;
		pthread_mutex_unlock(&f->lock);
		mb_reindex_locked(mb);
		mb_dir_stat_locked(mb, f, st);
	} else {
		mb_listing_put(b.l);
	}
	pthread_rwlock_unlock(&mb->tree_lock);
	free(server);
	changes_queued(mb, id);
	return f ? 0 : -ENOMEM;
}

int mailbox_mkdir(struct mailbox *mb, uint64_t parent, const char *name, struct stat *st)
{
	struct folder *f;
	char *path;
	int r;

	if (!inode_is_folder(parent))
		return -ENOTDIR;
	if (mailbox_lookup(mb, parent, name, st) == 0)
		return -EEXIST;
	path = child_path(mb, inode_folder(parent), name);
	if (!path)
		return -ENOENT;
	if (mb->opt.writeback && mb->journal) {
		r = queue_mkdir(mb, inode_folder(parent), path, st);
		free(path);
		return r;
	}
	r = mb_create_folder(mb, path, NULL);
	f = r == 0 ? mb_find_folder(mb, path, 0) : NULL;
	free(path);
	if (r == 0 && !f)
		r = -EIO;
	if (r == 0) {
		pthread_rwlock_rdlock(&mb->tree_lock);
		mb_dir_stat_locked(mb, f, st);
		pthread_rwlock_unlock(&mb->tree_lock);
	}
	return r;
}

int mailbox_rmdir(struct mailbox *mb, uint64_t parent, const char *name)
{
	struct folder *f;
	size_t subdirs = 0;
	char *server = NULL;
	int r;

	if (!inode_is_folder(parent))
		return -ENOTDIR;
	/* changes not sent yet (-o writeback) may bring mail into it or
	 * take mail out: on the server first, so the check below sees it */
	if ((r = changes_wait_all(mb, false)) == -EIO)
		return r;
	mb_refresh_tree(mb, mb->opt.dir_cache);
	pthread_rwlock_rdlock(&mb->tree_lock);
	f = mb_subfolder_locked(mb, inode_folder(parent), name);
	if (f) {
		subdirs = mb_count_subdirs_locked(mb, f->id);
		server = f->server ? strdup(f->server) : NULL;
	}
	pthread_rwlock_unlock(&mb->tree_lock);
	if (!f)
		return -ENOENT;
	if (is_inbox(f)) {
		free(server);
		return -EPERM;
	}
	if (subdirs) {
		free(server);
		return -ENOTEMPTY;
	}
	if (!server) /* a directory only the hierarchy implied */
		return mb_refresh_tree(mb, 0);
	r = mb_delete_empty_folder(mb, server);
	free(server);
	mb_refresh_tree(mb, 0);
	if (r == 0 && mb->folder_hook) {
		char *path = child_path(mb, inode_folder(parent), name);

		if (path)
			mb->folder_hook(path, NULL, mb->folder_hook_ctx);
		free(path);
	}
	return r;
}

static int rename_fn(struct imap_session *s, const struct imap_folder_state *st, void *ctx)
{
	struct folder_job *job = ctx;
	int r;

	(void)st;
	r = imap_rename_folder(s, job->name, job->new_name);
	job->unknown = r < 0 && imap_dead(s);
	if (r == 0) {
		if (imap_subscribe(s, job->new_name, true) < 0 || imap_subscribe(s, job->name, false) < 0)
			log_info("could not move the subscription of %.100s", job->name);
	}
	return r;
}

static bool has_prefix(const char *s, const char *prefix, char sep)
{
	size_t n = strlen(prefix);

	return strncmp(s, prefix, n) == 0 && (s[n] == '\0' || s[n] == sep);
}

static char *replace_prefix(const char *s, size_t old_len, const char *new_prefix)
{
	char *out = malloc(strlen(new_prefix) + strlen(s + old_len) + 1);

	if (out)
		sprintf(out, "%s%s", new_prefix, s + old_len);
	return out;
}

/* The folder keeps its id (and so its inode) under its new name, and so do
 * the folders below it. */
static void rename_in_model(struct mailbox *mb, struct folder *f, uint32_t new_parent, const char *old_path,
			    const char *new_path, const char *old_server, const char *new_server)
{
	size_t plen = strlen(old_path), slen = strlen(old_server);

	pthread_rwlock_wrlock(&mb->tree_lock);
	for (size_t i = 1; i < mb->nfolders; i++) {
		struct folder *g = mb->folders[i];
		char *path, *server = NULL;

		if (!g->present || !has_prefix(g->path, old_path, '/'))
			continue;
		path = replace_prefix(g->path, plen, new_path);
		if (g->server && has_prefix(g->server, old_server, mb->delim))
			server = replace_prefix(g->server, slen, new_server);
		if (path && (!g->server || server))
			mb_rename_locked(mb, g, path, server);
		free(path);
		free(server);
	}
	f->parent = new_parent;
	mb_reindex_locked(mb);
	pthread_rwlock_unlock(&mb->tree_lock);
}

int mb_rename_folder(struct mailbox *mb, struct folder *f, uint32_t new_parent, const char *newname)
{
	struct folder_job job = { 0 };
	char *old_path = strdup(f->path), *old_server = f->server ? strdup(f->server) : NULL;
	char *new_path = child_path(mb, new_parent, newname), *new_server = NULL;
	struct stat st;
	int r = -ENOMEM;

	if (!old_path || !new_path || (f->server && !old_server))
		goto out;
	if ((r = changes_wait_all(mb, false)) == -EIO) /* they name it by its old name */
		goto out;
	r = -EPERM;
	if (!old_server || is_inbox(f))
		goto out;
	r = -EINVAL;
	if (has_prefix(new_path, old_path, '/'))
		goto out;
	r = -EEXIST;
	if (mailbox_lookup(mb, inode_of_folder(new_parent), newname, &st) == 0)
		goto out;
	r = names_path_to_folder(new_path, mb->delim ? mb->delim : '/', &new_server);
	if (r < 0) {
		r = r == -ENOMEM ? r : -EINVAL;
		goto out;
	}
	job.name = old_server;
	job.new_name = new_server;
	r = pool_run(mb->pool, NULL, POOL_NO_RETRY, rename_fn, &job);
	if (r < 0 && job.unknown && mb_refresh_tree(mb, 0) == 0 && mb_find_folder(mb, new_path, 0))
		r = 0;
	if (r == 0) {
		rename_in_model(mb, f, new_parent, old_path, new_path, old_server, new_server);
		mb_refresh_tree(mb, 0);
		if (mb->folder_hook)
			mb->folder_hook(old_path, new_path, mb->folder_hook_ctx);
	}
out:
	free(old_path);
	free(old_server);
	free(new_path);
	free(new_server);
	return r;
}

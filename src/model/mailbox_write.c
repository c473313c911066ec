/* mailbox_write.c - owns every change made through the mount: moving and
 * deleting messages, creating, deleting and renaming folders, appending new
 * messages, and flags.  Each change updates the model at once (removed UIDs,
 * aliases, forwards, stale marks) so the next ls is right.  When the
 * connection dies in the middle of a change, the outcome is checked on a new
 * connection before anything is retried: mail must end up in one place. */
#include "mailbox_p.h"
#include "imap/flags.h"
#include "inode.h"
#include "util/log.h"
#include "util/timefmt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ---- moving and deleting messages ---- */

struct message_job {
	uint32_t uid;
	uint32_t uidvalidity;
	const char *src;	/* source folder (server name) */
	const char *dest;	/* target folder, NULL to delete */
	uint32_t new_uid;
	bool unknown;		/* the connection died mid-command */
};

static int check_validity(struct imap_session *s, uint32_t expected, const char *folder)
{
	if (imap_expect_validity(s, expected) == 0)
		return 0;
	log_warn("UIDVALIDITY of %.100s changed: not touching a message by a stale UID", folder);
	return -EIO;
}

static int move_fn(struct imap_session *s, const struct imap_folder_state *st, void *ctx)
{
	struct message_job *job = ctx;
	int r = check_validity(s, job->uidvalidity, job->src);

	(void)st;	/* check_validity asks the session, which may re-SELECT */
	if (r < 0)
		return r;
	r = job->dest ? imap_move(s, job->uid, job->dest, &job->new_uid)
		      : imap_delete_message(s, job->uid);
	job->unknown = r < 0 && imap_dead(s);
	return r;
}

/* The move's outcome is unknown: the message is either still in the source
 * (then the target is searched by Message-ID and size for a copy, and an
 * interrupted COPY + EXPUNGE is finished), or gone (moved). */
static int reconcile_fn(struct imap_session *s, const struct imap_folder_state *st, void *ctx)
{
	struct message_job *job = ctx;
	struct imap_message_info info;
	struct imap_folder_state dst;
	int r = check_validity(s, job->uidvalidity, job->src);

	(void)st;	/* check_validity asks the session, which may re-SELECT */
	if (r < 0)
		return r;
	r = imap_fetch_info(s, job->uid, &info);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	if (!job->dest) {		/* a delete: just do it (again) */
		imap_message_info_free(&info);
		return imap_delete_message(s, job->uid);
	}
	r = info.message_id ? imap_select(s, job->dest, true, &dst) : -EIO;
	if (r == 0)
		r = imap_search_message(s, info.message_id, info.size, &job->new_uid);
	imap_message_info_free(&info);
	if (r == -ENOENT) {
		log_warn("UID %u was not moved: it stays in %.100s", job->uid, job->src);
		return -EIO;
	}
	if (r == 0 && (r = imap_select(s, job->src, false, &dst)) == 0 &&
	    (r = check_validity(s, job->uidvalidity, job->src)) == 0)
		r = imap_delete_message(s, job->uid);
	return r;
}

/* Moves (dest != NULL) or deletes message uid of folder f. */
static int change_message(struct mailbox *mb, struct folder *f, struct message_job *job)
{
	int r = pool_run(mb->pool, f->server, POOL_NO_RETRY, move_fn, job);

	if (r < 0 && job->unknown) {
		log_warn("connection lost while changing UID %u of %s: checking what happened",
			 job->uid, f->path);
		job->new_uid = 0;
		r = pool_run(mb->pool, f->server, 0, reconcile_fn, job);
	}
	if (r == 0)
		mb_forget_message(f, job->uid);
	return r;
}

static int move_message(struct mailbox *mb, struct folder *f, uint32_t uid, uint32_t validity,
			struct folder *to, const char *newname)
{
	struct message_job job = { .uid = uid, .uidvalidity = validity, .src = f->server, .dest = to->server };
	int r = change_message(mb, f, &job);

	if (r < 0)
		return r;
	mb_mark_stale(to);
	if (job.new_uid) {
		mb_add_alias(to, newname, job.new_uid);
		mb_add_forward(mb, inode_of_message(f->id, uid), to->id, job.new_uid);
	}
	return 0;
}

static bool is_inbox(const struct folder *f)
{
	return f->server && strcasecmp(f->server, "INBOX") == 0;
}

static struct folder *find_folder(struct mailbox *mb, const char *path, unsigned special)
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

/* CREATE path (a mount-relative UTF-8 path), then re-LIST. */
static int create_folder(struct mailbox *mb, const char *path)
{
	struct folder_job job = { 0 };
	char *server = NULL;
	int r = names_path_to_folder(path, mb->delim ? mb->delim : '/', &server);

	if (r < 0)
		return r == -ENOMEM ? r : -EINVAL;
	job.name = server;
	r = pool_run(mb->pool, NULL, POOL_NO_RETRY, create_fn, &job);
	free(server);
	if (mb_refresh_tree(mb, 0) == 0 && (r == -EEXIST || job.unknown) && find_folder(mb, path, 0))
		r = 0;
	return r;
}

/* The folder rm moves to: SPECIAL-USE \Trash, else -o trash, else Trash
 * (or INBOX/Trash on servers whose folders all live under INBOX, as Cyrus
 * without altnamespace and Courier have it), created when missing. */
static int trash_folder(struct mailbox *mb, struct folder **out)
{
	const char *path = mb->opt.trash ? mb->opt.trash : "Trash";
	int r;

	*out = mb->opt.trash ? NULL : find_folder(mb, NULL, IMAP_LIST_TRASH);
	if (!*out)
		*out = find_folder(mb, path, 0);
	if (!*out && !mb->opt.trash)
		*out = find_folder(mb, "INBOX/Trash", 0);
	if (*out)
		return 0;
	log_info("creating the trash folder %s", path);
	r = create_folder(mb, path);
	if (r < 0 && r != -EEXIST && !mb->opt.trash) {
		/* a server that keeps every folder under INBOX refuses others */
		path = "INBOX/Trash";
		log_info("creating the trash folder %s instead", path);
		r = create_folder(mb, path);
	}
	if (r < 0 && r != -EEXIST)
		return r;
	*out = find_folder(mb, path, 0);
	return *out ? 0 : -EIO;
}

/* The selectable folder behind directory inode ino. */
static struct folder *selectable(struct mailbox *mb, uint64_t ino)
{
	struct folder *f;

	if (!inode_is_folder(ino))
		return NULL;
	f = mb_folder(mb, inode_folder(ino));
	return f && f->id != 0 && f->server && !f->noselect ? f : NULL;
}

int mailbox_unlink(struct mailbox *mb, uint64_t parent, const char *name)
{
	struct folder *f = selectable(mb, parent), *trash = NULL;
	struct message_job job = { 0 };
	uint32_t uid, validity;
	int r;

	if (!f)
		return -ENOENT;
	r = mb_resolve_message(mb, f, name, &uid, &validity);
	if (r < 0)
		return r;
	if (!mb->opt.rm_expunge && (r = trash_folder(mb, &trash)) < 0)
		return r;
	if (trash && trash != f)
		return move_message(mb, f, uid, validity, trash, name);
	job = (struct message_job){ .uid = uid, .uidvalidity = validity, .src = f->server };
	return change_message(mb, f, &job);
}

int mailbox_move_to(struct mailbox *mb, uint64_t msg_ino, uint64_t folder_ino)
{
	struct folder *f, *to = selectable(mb, folder_ino);
	uint32_t id, uid, validity;
	char name[NAMES_MAX + 1];
	struct stat st;
	int r;

	if (!to)
		return -EOPNOTSUPP;
	r = mb_locate(mb, msg_ino, &id, &uid, &st);
	f = r == 0 ? mb_folder(mb, id) : NULL;
	if (!f)
		return r ? r : -ENOENT;
	snprintf(name, sizeof(name), "%u.eml", uid);
	r = mb_resolve_message(mb, f, name, &uid, &validity);
	if (r < 0)
		return r;
	if (to == f)
		return 0;
	return move_message(mb, f, uid, validity, to, name);
}

/* ---- folders ---- */

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
	r = create_folder(mb, path);
	f = r == 0 ? find_folder(mb, path, 0) : NULL;
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
	if (!server)		/* a directory only the hierarchy implied */
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
static void rename_in_model(struct mailbox *mb, struct folder *f, uint32_t new_parent,
			    const char *old_path, const char *new_path,
			    const char *old_server, const char *new_server)
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
	pthread_rwlock_unlock(&mb->tree_lock);
}

static int rename_folder(struct mailbox *mb, struct folder *f, uint32_t new_parent, const char *newname)
{
	struct folder_job job = { 0 };
	char *old_path = strdup(f->path), *old_server = f->server ? strdup(f->server) : NULL;
	char *new_path = child_path(mb, new_parent, newname), *new_server = NULL;
	struct stat st;
	int r = -ENOMEM;

	if (!old_path || !new_path || (f->server && !old_server))
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
	if (r < 0 && job.unknown && mb_refresh_tree(mb, 0) == 0 && find_folder(mb, new_path, 0))
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

/* rename(2) would replace the target, with or without RENAME_NOREPLACE we
 * refuse: mail is never destroyed by a name, and the target's name must keep
 * opening the target. */
static int name_taken(struct mailbox *mb, struct folder *to, const char *name)
{
	struct folder *sub;
	uint32_t uid;
	int r;

	pthread_rwlock_rdlock(&mb->tree_lock);
	sub = mb_subfolder_locked(mb, to->id, name);
	pthread_rwlock_unlock(&mb->tree_lock);
	if (sub)
		return -EISDIR;
	r = mb_resolve_message(mb, to, name, &uid, NULL);
	if (r == 0)
		return -EEXIST;
	return r == -ENOENT ? 0 : r;
}

int mailbox_rename(struct mailbox *mb, uint64_t parent, const char *name,
		   uint64_t newparent, const char *newname)
{
	struct folder *f, *to;
	uint32_t uid, validity;
	int r;

	if (!inode_is_folder(parent) || !inode_is_folder(newparent))
		return -ENOTDIR;
	pthread_rwlock_rdlock(&mb->tree_lock);
	f = mb_subfolder_locked(mb, inode_folder(parent), name);
	pthread_rwlock_unlock(&mb->tree_lock);
	if (f)
		return rename_folder(mb, f, inode_folder(newparent), newname);
	f = selectable(mb, parent);
	if (!f)
		return -ENOENT;
	r = mb_resolve_message(mb, f, name, &uid, &validity);
	if (r < 0)
		return r;
	/* a message's name comes from the message: only its folder can change */
	to = selectable(mb, newparent);
	if (!to || to == f)
		return -EPERM;
	r = name_taken(mb, to, newname);
	if (r < 0)
		return r;
	return move_message(mb, f, uid, validity, to, newname);
}

/* ---- new messages ---- */

bool mailbox_looks_like_message(const char *data, size_t len)
{
	size_t i = 0;

	/* the first line must be a header field: name ":" */
	while (i < len && data[i] > 0x20 && data[i] < 0x7f && data[i] != ':')
		i++;
	return i > 0 && i < len && data[i] == ':';
}

int mailbox_can_append(struct mailbox *mb, uint64_t ino)
{
	return selectable(mb, ino) ? 0 : -EPERM;
}

struct append_job {
	const char *mbox;
	const struct flag_set *flags;
	int64_t date;
	const char *data;
	size_t len;
	uint64_t stored;	/* its size once line ends are CRLF */
	uint32_t new_uid;
	bool unknown;
};

/* The server's own APPENDLIMIT, if it has one, bounded by ours. */
static uint64_t session_limit(struct imap_session *s)
{
	uint64_t server = imap_append_limit(s);

	return server < MAILBOX_APPEND_MAX ? server : MAILBOX_APPEND_MAX;
}

static int append_fn(struct imap_session *s, const struct imap_folder_state *st, void *ctx)
{
	struct append_job *job = ctx;
	int r;

	(void)st;
	if (job->stored > session_limit(s))
		return -EFBIG;	/* the server's limit, learnt after the upload began */
	r = imap_append(s, job->mbox, job->flags, job->date, job->data, job->len, &job->new_uid);
	job->unknown = r < 0 && imap_dead(s);
	return r;
}

static int limit_fn(struct imap_session *s, const struct imap_folder_state *st, void *ctx)
{
	(void)st;
	*(uint64_t *)ctx = session_limit(s);
	return 0;
}

int mailbox_append_limit(struct mailbox *mb, uint64_t *limit)
{
	int r = pool_run(mb->pool, NULL, 0, limit_fn, limit);

	if (r < 0)
		*limit = MAILBOX_APPEND_MAX;
	return r;
}

/* The size the server stores: bare LF and bare CR become CRLF. */
static uint64_t stored_size(const char *data, size_t len)
{
	uint64_t n = len;

	for (size_t i = 0; i < len; i++) {
		if (data[i] == '\n' && (i == 0 || data[i - 1] != '\r'))
			n++;
		else if (data[i] == '\r' && (i + 1 == len || data[i + 1] != '\n'))
			n++;
	}
	return n;
}

struct search_job {
	char *message_id;
	uint32_t size;
	uint32_t uid;
};

static int search_fn(struct imap_session *s, const struct imap_folder_state *st, void *ctx)
{
	struct search_job *job = ctx;

	(void)st;
	return imap_search_message(s, job->message_id, job->size, &job->uid);
}

/* APPEND's outcome is unknown: look for the message by Message-ID. */
static int reconcile_append(struct mailbox *mb, struct folder *f, struct append_job *job)
{
	size_t hdr_len = job->len;
	struct search_job sj = { 0 };
	const char *blank = NULL;
	int r;

	for (size_t i = 0; i + 1 < job->len && !blank; i++)
		if (job->data[i] == '\n' && (job->data[i + 1] == '\n' || job->data[i + 1] == '\r'))
			blank = job->data + i + 1;
	if (blank)
		hdr_len = (size_t)(blank - job->data);
	if (job->stored > UINT32_MAX)	/* mailbox_append refused it already */
		return -EFBIG;
	sj.message_id = names_header_field(job->data, hdr_len, "Message-ID");
	sj.size = (uint32_t)job->stored;
	if (!sj.message_id) {
		log_warn("APPEND to %s: connection lost and the message has no Message-ID to check by", f->path);
		return -EIO;
	}
	r = pool_run(mb->pool, f->server, POOL_FRESH_SELECT, search_fn, &sj);
	free(sj.message_id);
	if (r == 0)
		job->new_uid = sj.uid;
	return r == -ENOENT ? -EIO : r;
}

int mailbox_append(struct mailbox *mb, uint64_t folder_ino, const char *name, uint64_t from_ino,
		   const char *data, size_t len, const struct flag_set *flags, int64_t date)
{
	struct folder *f = selectable(mb, folder_ino);
	struct append_job job = { .flags = flags, .date = date, .data = data, .len = len };
	int r;

	if (!f)
		return -EPERM;
	if (len == 0 || !mailbox_looks_like_message(data, len))
		return -EINVAL;
	job.stored = stored_size(data, len);
	if (job.stored > MAILBOX_APPEND_MAX)
		return -EFBIG;
	job.mbox = f->server;
	r = pool_run(mb->pool, NULL, POOL_NO_RETRY, append_fn, &job);
	if (r < 0 && job.unknown) {
		log_warn("connection lost during APPEND to %s: checking whether it was stored", f->path);
		r = reconcile_append(mb, f, &job);
	}
	if (r < 0)
		return r;
	mb_mark_stale(f);
	if (job.new_uid) {
		mb_add_alias(f, name, job.new_uid);
		mb_add_forward(mb, from_ino, f->id, job.new_uid);
	}
	return 0;
}

/* ---- flags and other attributes ---- */

static const char xattr_names[] = "user.imap.flags\0user.imap.uid\0user.imap.internaldate\0"
				  "user.imap.message_id\0user.mapi.message_class";

const char *mailbox_xattr_names(size_t *len)
{
	*len = sizeof(xattr_names);
	return xattr_names;
}

struct info_job {
	uint32_t uid;
	uint32_t uidvalidity;
	const char *folder;
	struct imap_message_info info;
	const struct flag_set *set;	/* for mailbox_set_flags */
};

static int info_fn(struct imap_session *s, const struct imap_folder_state *st, void *ctx)
{
	struct info_job *job = ctx;
	int r = check_validity(s, job->uidvalidity, job->folder);

	(void)st;	/* check_validity asks the session, which may re-SELECT */
	return r < 0 ? r : imap_fetch_info(s, job->uid, &job->info);
}

static int locate(struct mailbox *mb, uint64_t ino, struct folder **f, struct info_job *job)
{
	uint32_t id;
	int r;

	memset(job, 0, sizeof(*job));
	if (!inode_is_message(ino))
		return -ENODATA;
	r = mb_locate(mb, ino, &id, &job->uid, NULL);
	*f = r == 0 ? mb_folder(mb, id) : NULL;
	if (!*f)
		return r ? r : -ENOENT;
	job->folder = (*f)->server;
	return 0;
}

static int current_validity(struct mailbox *mb, struct folder *f, uint32_t *validity)
{
	int err;
	struct listing *l = mb_listing(mb, f, 1e18, &err);

	if (!l)
		return err;
	*validity = l->uidvalidity;
	mb_listing_put(l);
	return 0;
}

static char *rfc3339(int64_t t)
{
	char *out = malloc(TIMEFMT_ISO_SIZE);

	return out ? timefmt_iso(t, out) : NULL;
}

static char *flags_text(const struct imap_message_info *info)
{
	struct flag_set fs = { .system = info->system_flags, .nkeywords = info->nkeywords,
			       .keywords = info->keywords };

	return flags_format(&fs);
}

int mailbox_getxattr(struct mailbox *mb, uint64_t ino, const char *name, char **value, size_t *len)
{
	struct info_job job;
	struct folder *f;
	struct stat st;
	int r;

	*value = NULL;
	if (strncmp(name, "user.imap.", 10) != 0 || !inode_is_message(ino))
		return -ENODATA;
	r = locate(mb, ino, &f, &job);
	if (r < 0)
		return r;
	if (strcmp(name, "user.imap.uid") == 0) {
		*value = malloc(16);
		if (*value)
			snprintf(*value, 16, "%u", job.uid);
	} else if (strcmp(name, "user.imap.internaldate") == 0) {
		r = mailbox_getattr(mb, ino, &st);
		if (r < 0)
			return r;
		*value = rfc3339(st.st_mtime);
	} else if (strcmp(name, "user.imap.flags") == 0 || strcmp(name, "user.imap.message_id") == 0) {
		if ((r = current_validity(mb, f, &job.uidvalidity)) < 0 ||
		    (r = pool_run(mb->pool, f->server, 0, info_fn, &job)) < 0)
			return r;
		if (name[10] == 'f')
			*value = flags_text(&job.info);
		else if (job.info.message_id)
			*value = strdup(job.info.message_id);
		else
			r = -ENODATA;
		imap_message_info_free(&job.info);
		if (r < 0)
			return r;
	} else {
		return -ENODATA;
	}
	if (!*value)
		return -ENOMEM;
	*len = strlen(*value);
	return 0;
}

static int store_fn(struct imap_session *s, const struct imap_folder_state *st, void *ctx)
{
	struct info_job *job = ctx;
	struct flag_set want = *job->set;
	int r = check_validity(s, job->uidvalidity, job->folder);

	(void)st;	/* check_validity asks the session, which may re-SELECT */
	if (r < 0)
		return r;
	for (size_t i = 0; i < want.nkeywords; i++) {
		if (!imap_keyword_permitted(s, want.keywords[i])) {
			log_warn("%.100s does not allow the keyword %.100s", job->folder, want.keywords[i]);
			return -EPERM;
		}
	}
	/* \Deleted belongs to rm: keep whatever the message has */
	r = imap_fetch_info(s, job->uid, &job->info);
	if (r < 0)
		return r;
	want.system = (want.system & ~(unsigned)IMAP_FLAG_DELETED) |
		      (job->info.system_flags & IMAP_FLAG_DELETED);
	imap_message_info_free(&job->info);
	return imap_store_flags(s, job->uid, &want, false);
}

int mailbox_set_flags(struct mailbox *mb, uint64_t ino, const char *text, size_t len)
{
	struct flag_set fs;
	struct info_job job;
	struct folder *f;
	int r = flags_parse(text, len, &fs);

	if (r < 0)
		return r;
	r = locate(mb, ino, &f, &job);
	if (r == 0)
		r = current_validity(mb, f, &job.uidvalidity);
	if (r == 0) {
		job.set = &fs;
		r = pool_run(mb->pool, f->server, 0, store_fn, &job);
	}
	flags_free(&fs);
	return r;
}

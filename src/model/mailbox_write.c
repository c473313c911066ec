/* mailbox_write.c - owns the changes to messages that exist, made through
 * the mount: moving them (mv, and the receive folders' routing), deleting
 * them (rm: to the trash, or for good), and their flags (with the other
 * attributes read beside them).  Each change updates the model at once
 * (removed UIDs, aliases, forwards, stale marks) so the next ls is right.
 * When the connection dies in the middle of a change, the outcome is
 * checked on a new connection before anything is retried: mail must end up
 * in one place.  New messages are mailbox_append.c's, folders
 * mailbox_folders.c's. */
#include "mailbox_p.h"
#include "imap/flags.h"
#include "inode.h"
#include "util/log.h"
#include "util/timefmt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* The folder rm moves to: SPECIAL-USE \Trash, else -o trash, else Trash
 * (or INBOX/Trash on servers whose folders all live under INBOX, as Cyrus
 * without altnamespace and Courier have it), created when missing. */
static int trash_folder(struct mailbox *mb, struct folder **out)
{
	const char *path = mb->opt.trash ? mb->opt.trash : "Trash";
	int r;

	*out = mb->opt.trash ? NULL : mb_find_folder(mb, NULL, IMAP_LIST_TRASH);
	if (!*out)
		*out = mb_find_folder(mb, path, 0);
	if (!*out && !mb->opt.trash)
		*out = mb_find_folder(mb, "INBOX/Trash", 0);
	if (*out)
		return 0;
	log_info("creating the trash folder %s", path);
	r = mb_create_folder(mb, path);
	if (r < 0 && r != -EEXIST && !mb->opt.trash) {
		/* a server that keeps every folder under INBOX refuses others */
		path = "INBOX/Trash";
		log_info("creating the trash folder %s instead", path);
		r = mb_create_folder(mb, path);
	}
	if (r < 0 && r != -EEXIST)
		return r;
	*out = mb_find_folder(mb, path, 0);
	return *out ? 0 : -EIO;
}

struct folder *mb_selectable(struct mailbox *mb, uint64_t ino)
{
	struct folder *f;

	if (!inode_is_folder(ino))
		return NULL;
	f = mb_folder(mb, inode_folder(ino));
	return f && f->id != 0 && f->server && !f->noselect ? f : NULL;
}

int mailbox_unlink(struct mailbox *mb, uint64_t parent, const char *name)
{
	struct folder *f = mb_selectable(mb, parent), *trash = NULL;
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
	struct folder *f, *to = mb_selectable(mb, folder_ino);
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
		return mb_rename_folder(mb, f, inode_folder(newparent), newname);
	f = mb_selectable(mb, parent);
	if (!f)
		return -ENOENT;
	r = mb_resolve_message(mb, f, name, &uid, &validity);
	if (r < 0)
		return r;
	/* a message's name comes from the message: only its folder can change */
	to = mb_selectable(mb, newparent);
	if (!to || to == f)
		return -EPERM;
	r = name_taken(mb, to, newname);
	if (r < 0)
		return r;
	return move_message(mb, f, uid, validity, to, newname);
}

/* ---- flags and other attributes ---- */

#define XATTR_IMAP "user.imap."	/* the attributes this file answers */
#define XATTR_FLAGS XATTR_IMAP "flags"
#define XATTR_UID XATTR_IMAP "uid"
#define XATTR_INTERNALDATE XATTR_IMAP "internaldate"
#define XATTR_MESSAGE_ID XATTR_IMAP "message_id"
#define UID_TEXT_SIZE 11	/* a UID in decimal, and the NUL */

static const char xattr_names[] = XATTR_FLAGS "\0" XATTR_UID "\0" XATTR_INTERNALDATE "\0"
				  XATTR_MESSAGE_ID "\0user.mapi.message_class";

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
	struct listing *l = mb_listing(mb, f, MB_ANY_AGE, &err);

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

/* Flags or Message-ID (want_flags false), as the server has them now. */
static int server_attr(struct mailbox *mb, struct folder *f, struct info_job *job, bool want_flags,
		       char **value)
{
	int r;

	if ((r = current_validity(mb, f, &job->uidvalidity)) < 0 ||
	    (r = pool_run(mb->pool, f->server, 0, info_fn, job)) < 0)
		return r;
	if (want_flags)
		*value = flags_text(&job->info);
	else if (job->info.message_id)
		*value = strdup(job->info.message_id);
	else
		r = -ENODATA;
	imap_message_info_free(&job->info);
	return r;
}

int mailbox_getxattr(struct mailbox *mb, uint64_t ino, const char *name, char **value, size_t *len)
{
	struct info_job job;
	struct folder *f;
	struct stat st;
	int r;

	*value = NULL;
	if (strncmp(name, XATTR_IMAP, strlen(XATTR_IMAP)) != 0 || !inode_is_message(ino))
		return -ENODATA;
	r = locate(mb, ino, &f, &job);
	if (r < 0)
		return r;
	if (strcmp(name, XATTR_UID) == 0) {
		*value = malloc(UID_TEXT_SIZE);
		if (*value)
			snprintf(*value, UID_TEXT_SIZE, "%u", job.uid);
	} else if (strcmp(name, XATTR_INTERNALDATE) == 0) {
		r = mailbox_getattr(mb, ino, &st);
		if (r < 0)
			return r;
		*value = rfc3339(st.st_mtime);
	} else if (strcmp(name, XATTR_FLAGS) == 0 || strcmp(name, XATTR_MESSAGE_ID) == 0) {
		r = server_attr(mb, f, &job, strcmp(name, XATTR_FLAGS) == 0, value);
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

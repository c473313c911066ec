/* mailbox_write.c - owns the changes to messages that exist, made through
 * the mount: moving them (mv, and the receive folders' routing), deleting
 * them (rm: to the trash, or for good), and their flags (with the other
 * attributes read beside them).  Each change updates the model at once
 * (removed UIDs, aliases, forwards, stale marks) so the next ls is right.
 * Every change goes through the change journal (changes.c), so that
 * whatever fails, the message ends up in exactly one place.  New messages are mailbox_append.c's, folders
 * mailbox_folders.c's. */
#include "mailbox_p.h"
#include "changes.h"
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

/* What the listing knows of uid in f: enough to recognise it later.
 * false when the listing does not have it (then its arrival could not be
 * told from a rolled-back change: it is not changed). */
static bool identity(struct mailbox *mb, struct folder *f, uint32_t uid, uint32_t validity,
		     struct change_msg *m)
{
	int err;
	struct listing *l = mb_listing(mb, f, MB_ANY_AGE, &err);
	const struct msg *msg = l && l->uidvalidity == validity ? mb_listing_find(l, uid) : NULL;

	*m = (struct change_msg){ .folder = f->server, .validity = validity, .uid = uid };
	if (msg) {
		/* a size the listing corrected is not the server's RFC822.SIZE */
		m->size = mb_msg_flags(msg) & MSG_SIZE_CORRECTED ? 0 : mb_msg_size(msg);
		m->date = msg->date;
	}
	if (l)
		mb_listing_put(l);
	return msg != NULL;
}

/* A name no message in to answers to: name, else NAME~2.eml, ~3...
 * (rm of two messages of one name into the trash: each keeps its own). */
static const char *free_name(struct mailbox *mb, struct folder *to, const char *name, char *buf, size_t len)
{
	size_t stem = strlen(name) > 4 && strcmp(name + strlen(name) - 4, ".eml") == 0 ? strlen(name) - 4
										       : strlen(name);
	struct stat st;

	if (!to || mb_lookup_message(mb, to, name, &st) < 0)
		return name;
	for (unsigned i = 2; i < 100; i++) {
		snprintf(buf, len, "%.*s~%u.eml", (int)(stem < 200 ? stem : 200), name, i);
		if (mb_lookup_message(mb, to, buf, &st) < 0)
			return buf;
	}
	return name;
}

/* -o writeback: the move is journaled, and shown at once -- gone from f,
 * listed in to as name -- while the flusher sends it. */
static int queue_message(struct mailbox *mb, struct folder *f, uint32_t uid, const struct change_msg *m,
			 struct folder *to, const char *name)
{
	struct change_dest dest = { .folder = to ? to->server : NULL };
	char unique[NAMES_MAX + 1];
	uint64_t id;
	int r;

	name = free_name(mb, to, name, unique, sizeof(unique));
	r = changes_queue_move(mb, m, to ? &dest : NULL, name, &id);

	if (r < 0)
		return r;
	mb_forget_message(f, uid);
	if (mb_pending_add(mb, id, to ? to->id : UINT32_MAX, name, f->id, uid) < 0)
		log_warn("UID %u of %.100s: out of memory; it is listed in its new folder once sent", uid,
			 f->path);
	changes_queued(mb, id);
	return 1;
}

/* Moves message uid of folder f to folder to (NULL: deletes it for good),
 * exactly once (changes.c), shown there as name.  On success *new_uid is
 * its UID there (0 if the server did not say); 1 when it was queued
 * (-o writeback). */
static int change_message(struct mailbox *mb, struct folder *f, uint32_t uid, uint32_t validity,
			  struct folder *to, const char *name, uint32_t *new_uid)
{
	struct change_dest dest = { .folder = to ? to->server : NULL };
	struct change_msg m;
	int r;

	*new_uid = 0;
	if (!identity(mb, f, uid, validity, &m)) {
		log_warn("UID %u of %.100s is not in its folder's listing: not changing it", uid, f->path);
		return -ENOENT;
	}
	if (mb->opt.writeback && mb->journal)
		return queue_message(mb, f, uid, &m, to, name);
	if (to)
		dest.next_uid = mb_known_next_uid(mb, to, &dest.validity);
	r = changes_move(mb, &m, to ? &dest : NULL, new_uid);
	if (r == 0)
		mb_forget_message(f, uid);
	if (r == 0 && to && *new_uid)
		mb_note_arrival(to, dest.validity, *new_uid);
	return r;
}

static int move_message(struct mailbox *mb, struct folder *f, uint32_t uid, uint32_t validity,
			struct folder *to, const char *newname)
{
	uint32_t new_uid = 0;
	int r = change_message(mb, f, uid, validity, to, newname, &new_uid);

	if (r != 0)
		return r < 0 ? r : 0;
	mb_mark_stale(to);
	if (new_uid) {
		mb_add_alias(to, newname, new_uid);
		mb_add_forward(mb, inode_of_message(f->id, uid), to->id, new_uid);
	}
	return 0;
}

/* The folder rm moves to: SPECIAL-USE \Trash, else -o trash, else Trash
 * (or INBOX/Trash on servers whose folders all live under INBOX, as Cyrus
 * without altnamespace and Courier have it), created when missing. */
static int trash_folder(struct mailbox *mb, struct folder **out)
{
	const char *path = mb->opt.trash ? mb->opt.trash : "Trash";
	bool lost = false;
	int r;

	*out = mb->opt.trash ? NULL : mb_find_folder(mb, NULL, IMAP_LIST_TRASH);
	if (!*out)
		*out = mb_find_folder(mb, path, 0);
	if (!*out && !mb->opt.trash)
		*out = mb_find_folder(mb, "INBOX/Trash", 0);
	if (*out)
		return 0;
	log_info("creating the trash folder %s", path);
	r = mb_create_folder(mb, path, &lost);
	if (r < 0 && r != -EEXIST && !lost && !mb->opt.trash) {
		/* a server that keeps every folder under INBOX refuses others
		 * (refuses: a connection lost is no answer, and would put the
		 * trash somewhere else for good) */
		path = "INBOX/Trash";
		log_info("creating the trash folder %s instead", path);
		r = mb_create_folder(mb, path, NULL);
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
	uint32_t uid, validity, gone;
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
	r = change_message(mb, f, uid, validity, NULL, name, &gone);
	return r < 0 ? r : 0;
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
	if (mb_pending_find(mb, to->id, name, NULL, NULL, NULL))
		return -EEXIST;
	r = mb_resolve_message(mb, to, name, &uid, NULL);
	if (r == 0)
		return -EEXIST;
	return r == -ENOENT ? 0 : r;
}

int mailbox_rename(struct mailbox *mb, uint64_t parent, const char *name, uint64_t newparent,
		   const char *newname)
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

#define XATTR_IMAP "user.imap." /* the attributes this file answers */
#define XATTR_FLAGS XATTR_IMAP "flags"
#define XATTR_UID XATTR_IMAP "uid"
#define XATTR_INTERNALDATE XATTR_IMAP "internaldate"
#define XATTR_MESSAGE_ID XATTR_IMAP "message_id"
#define UID_TEXT_SIZE 11 /* a UID in decimal, and the NUL */

static const char xattr_names[] =
	XATTR_FLAGS "\0" XATTR_UID "\0" XATTR_INTERNALDATE "\0" XATTR_MESSAGE_ID "\0user.mapi.message_class";

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
};

static int check_validity(struct imap_session *s, uint32_t expected, const char *folder)
{
	if (imap_expect_validity(s, expected) == 0)
		return 0;
	log_warn("UIDVALIDITY of %.100s changed: not touching a message by a stale UID", folder);
	return -EIO;
}

static int info_fn(struct imap_session *s, const struct imap_folder_state *st, void *ctx)
{
	struct info_job *job = ctx;
	int r = check_validity(s, job->uidvalidity, job->folder);

	(void)st; /* check_validity asks the session, which may re-SELECT */
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
	struct flag_set fs = { .system = info->system_flags,
			       .nkeywords = info->nkeywords,
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

static char *pending_flags(struct mailbox *mb, struct folder *f, uint32_t uid)
{
	uint32_t validity = 0;

	if (!mb->journal || journal_count(mb->journal) == 0 || current_validity(mb, f, &validity) < 0)
		return NULL;
	return changes_pending_flags(mb, f->server, validity, uid);
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
	} else if (strcmp(name, XATTR_FLAGS) == 0 && (*value = pending_flags(mb, f, job.uid))) {
		/* set through the mount, not sent yet (-o writeback) */
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

int mailbox_set_flags(struct mailbox *mb, uint64_t ino, const char *text, size_t len)
{
	struct flag_set fs;
	struct info_job job;
	struct change_msg m;
	struct folder *f;
	char *canonical;
	uint64_t id;
	int r = flags_parse(text, len, &fs);

	if (r < 0)
		return r;
	canonical = flags_format(&fs); /* the journal keeps it as text */
	flags_free(&fs);
	if (!canonical)
		return -ENOMEM;
	r = locate(mb, ino, &f, &job);
	if (r == 0 && mb->opt.writeback && mb_pending_holds(mb, f->id, job.uid, &id) &&
	    (r = changes_wait_entry(mb, id)) == 0)
		r = locate(mb, ino, &f, &job); /* on its way: flags set where it arrived */
	if (r == 0)
		r = current_validity(mb, f, &job.uidvalidity);
	if (r == 0) {
		identity(mb, f, job.uid, job.uidvalidity, &m);
		if (mb->opt.writeback && mb->journal &&
		    (r = changes_queue_flags(mb, &m, canonical, &id)) == 0)
			changes_queued(mb, id);
		else if (!mb->opt.writeback || !mb->journal)
			r = changes_flags(mb, &m, canonical);
	}
	free(canonical);
	return r;
}

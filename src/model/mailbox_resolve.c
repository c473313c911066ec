/* mailbox_resolve.c - owns what a name or an inode of a message stands
 * for: the message's listed name and UID.eml, the names mv and cp gave
 * (aliases, which never hide a listed message and go with their message),
 * and the forwards that let an inode follow a moved message. */
#include "mailbox_p.h"
#include "changes.h"
#include "inode.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A message answers to its listed name and, in any naming mode, "UID.eml". */
static bool name_matches(const struct listing *l, const struct msg *m, const char *name)
{
	char short_name[16];

	if (strcmp(name, mb_msg_name(l, m)) == 0)
		return true;
	snprintf(short_name, sizeof(short_name), "%u.eml", m->uid);
	return strcmp(name, short_name) == 0;
}

/* Drops the aliases that name no message any more: its UID went (through
 * the mount, or it is below the highest listed UID and not listed), or the
 * folder was re-created.  f->lock held. */
static void prune_aliases_locked(struct folder *f, const struct listing *l)
{
	uint32_t top = l->count ? l->msgs[l->count - 1].uid : 0;
	size_t out = 0;

	for (size_t i = 0; i < f->naliases; i++) {
		struct alias a = f->aliases[i];
		bool listed = mb_listing_find(l, a.uid) != NULL;

		if (listed && !a.uidvalidity)
			a.uidvalidity = l->uidvalidity;
		if ((a.uidvalidity && a.uidvalidity != l->uidvalidity) || mb_is_removed_locked(f, a.uid) ||
		    (!listed && a.uid < top)) {
			free(a.name);
			continue;
		}
		f->aliases[out++] = a;
	}
	f->naliases = out;
}

/* The UID name stands for in l, 0 for none: a listed message's own name (or
 * UID.eml) first, then the newest alias of a listed message.  *hidden: it
 * names a message moved or deleted through the mount.  f->lock held. */
static uint32_t name_to_uid_locked(struct folder *f, const struct listing *l, const char *name, bool *hidden,
				   bool *unlisted)
{
	const struct msg *m;
	bool removed = false;
	uint32_t uid;

	*hidden = false;
	*unlisted = false;
	if (names_parse_uid(name, &uid) == 0 && (m = mb_listing_find(l, uid)) && name_matches(l, m, name)) {
		if (!mb_is_removed_locked(f, uid))
			return uid;
		removed = true;
	}
	prune_aliases_locked(f, l);
	for (size_t i = f->naliases; i-- > 0;) {
		if (strcmp(f->aliases[i].name, name) != 0)
			continue;
		if (mb_listing_find(l, f->aliases[i].uid))
			return f->aliases[i].uid;
		*unlisted = true; /* arrived after l was fetched */
	}
	*hidden = removed;
	return 0;
}

/* Whether name could be a message's at all: spares a listing refresh for
 * the names shells and editors try (".git", "foo.swp"). */
static bool may_name_message(struct mailbox *mb, struct folder *f, const char *name)
{
	bool found = false;
	uint32_t uid;

	if (names_parse_uid(name, &uid) == 0 || mb_pending_find(mb, f->id, name, NULL, NULL, NULL))
		return true;
	pthread_mutex_lock(&f->lock);
	for (size_t i = 0; i < f->naliases && !found; i++)
		found = strcmp(f->aliases[i].name, name) == 0;
	pthread_mutex_unlock(&f->lock);
	return found;
}

/* A name that may have arrived since is looked for in a listing at most
 * this old (seconds): a burst of lookups costs one sync a second. */
#define MB_MISS_REFRESH 1

/* Can uid be a message that arrived since f's listing (of UIDVALIDITY
 * validity) was fetched?  Not when a SELECT of this mount, fresh, put the
 * next arrival above it -- in that same UIDVALIDITY: another's next UID
 * says nothing of this listing's UIDs. */
static bool may_have_arrived(struct mailbox *mb, struct folder *f, uint32_t uid, uint32_t validity)
{
	uint32_t next_validity = 0, next = mb_known_next_uid(mb, f, &next_validity);

	return !next || next_validity != validity || uid >= next;
}

/* Finds the message name stands for in f (name NULL: message *uid),
 * refreshing the listing once if it is not there yet, unless it was moved
 * away or deleted through the mount. */
static int find_message(struct mailbox *mb, struct folder *f, const char *name, uint32_t *uid,
			struct stat *st, uint32_t *uidvalidity)
{
	const struct msg *m = NULL;
	bool hidden = false, newer = false, unlisted = false;
	struct listing *l;
	int err;

	for (int pass = 0; pass < 2 && !m && !hidden && (pass == 0 || newer || unlisted); pass++) {
		/* a name is answered from what this mount knows when it fetched
		 * the listing within dir_cache, even marked stale by its own mv:
		 * a burst of mv into one folder costs no sync of it per name --
		 * but a name mv gave a message the listing predates is looked
		 * up in the listing after it */
		l = name && !unlisted ? mb_listing_known(f, pass == 0 ? mb->opt.dir_cache : MB_MISS_REFRESH)
				      : NULL;
		if (!l)
			l = mb_listing(mb, f, pass == 0 ? mb->opt.dir_cache : MB_MISS_REFRESH, &err);
		if (!l)
			return err;
		pthread_mutex_lock(&f->lock);
		if (name)
			*uid = name_to_uid_locked(f, l, name, &hidden, &unlisted);
		else
			hidden = mb_is_removed_locked(f, *uid);
		pthread_mutex_unlock(&f->lock);
		m = hidden || !*uid ? NULL : mb_listing_find(l, *uid);
		if (m && st)
			mb_msg_stat(mb, f->id, m, st);
		if (m && uidvalidity)
			*uidvalidity = l->uidvalidity;
		/* a name missing from a listing fetched within dir_cache is a miss
		 * (as ls would show it; mv's target name, say), unless its UID is
		 * at or above where the next arrival can be */
		newer = !m && name && names_parse_uid(name, uid) == 0 && *uid > listing_top_uid(l) &&
			may_have_arrived(mb, f, *uid, l->uidvalidity);
		mb_listing_put(l);
	}
	return m ? 0 : -ENOENT;
}

int mb_resolve_message(struct mailbox *mb, struct folder *f, const char *name, uint32_t *uid,
		       uint32_t *uidvalidity)
{
	uint64_t entry;
	int r;

	if (f->noselect || !f->server || !may_name_message(mb, f, name))
		return -ENOENT;
	r = find_message(mb, f, name, uid, NULL, uidvalidity);
	if (r != -ENOENT || !mb_pending_find(mb, f->id, name, &entry, NULL, NULL))
		return r;
	/* a message on its way here (-o writeback) is changed again once it
	 * is there, under its UID in this folder */
	r = changes_wait_entry(mb, entry);
	return r < 0 ? r : find_message(mb, f, name, uid, NULL, uidvalidity);
}

int mb_lookup_message(struct mailbox *mb, struct folder *f, const char *name, struct stat *st)
{
	uint32_t uid, src_folder, src_uid;
	int r;

	if (f->noselect || !f->server || !may_name_message(mb, f, name))
		return -ENOENT;
	r = find_message(mb, f, name, &uid, st, NULL);
	if (r == -ENOENT && mb_pending_find(mb, f->id, name, NULL, &src_folder, &src_uid))
		r = mb_pending_stat(mb, src_folder, src_uid, st);
	return r;
}

void mb_add_forward(struct mailbox *mb, uint64_t from, uint32_t folder, uint32_t uid)
{
	pthread_mutex_lock(&mb->forward_lock);
	mb->forwards[mb->next_forward % MB_MAX_FORWARDS] = (struct forward){ from, folder, uid };
	mb->next_forward++;
	pthread_mutex_unlock(&mb->forward_lock);
}

bool mb_find_forward(struct mailbox *mb, uint64_t from, uint32_t *folder, uint32_t *uid)
{
	bool found = false;

	pthread_mutex_lock(&mb->forward_lock);
	for (size_t i = 0; i < MB_MAX_FORWARDS && i < mb->next_forward && !found; i++) {
		const struct forward *fw = &mb->forwards[(mb->next_forward - 1 - i) % MB_MAX_FORWARDS];

		if (fw->from == from) {
			*folder = fw->folder;
			*uid = fw->uid;
			found = true;
		}
	}
	pthread_mutex_unlock(&mb->forward_lock);
	return found;
}

/* The attributes uid of f had in the listing this mount knows, moved away
 * or not: a message keeps its size and date wherever it goes. */
static bool known_stat(struct mailbox *mb, struct folder *f, uint32_t uid, struct stat *st)
{
	struct listing *l = mb_listing_known(f, MB_ANY_AGE);
	const struct msg *m = l ? mb_listing_find(l, uid) : NULL;

	if (m)
		mb_msg_stat(mb, f->id, m, st);
	mb_listing_put(l);
	return m != NULL;
}

int mb_locate(struct mailbox *mb, uint64_t ino, uint32_t *id, uint32_t *uid, struct stat *st)
{
	struct stat ignored, before;
	bool moved = false;
	struct folder *f;
	int r = -ENOENT;

	*id = inode_folder(ino);
	*uid = inode_uid(ino);
	/* a moved message, or a file cp created, lives on under its old inode */
	for (int hops = 0; hops < 4; hops++) {
		f = mb_folder(mb, *id);
		if (f && !f->noselect && f->server)
			r = find_message(mb, f, NULL, uid, st ? st : &ignored, NULL);
		if (r != -ENOENT)
			break;
		if (mb_pending_holds(mb, *id, *uid, NULL)) {
			/* on its way (-o writeback): still where it was, for reading */
			r = st ? mb_pending_stat(mb, *id, *uid, st) : 0;
			break;
		}
		moved = f && st && known_stat(mb, f, *uid, &before);
		if (!mb_find_forward(mb, inode_of_message(*id, *uid), id, uid))
			break;
		f = mb_folder(mb, *id);
		/* moved by this mount: its attributes as its new folder's listing
		 * knows them, or from where it came (a message never changes),
		 * rather than a sync of the new folder for a stat */
		if (moved && f) {
			if (!known_stat(mb, f, *uid, st))
				*st = before;
			r = 0;
			break;
		}
	}
	if (r == 0 && st)
		st->st_ino = ino;
	return r;
}

/* pending.c - owns what the mount shows of changes the server does not
 * have yet (-o writeback): a message moved (mv, rm to the trash) is listed
 * in its destination at once, under the name it will keep, as the inode
 * rename(2) left in the kernel -- its source's (folder, UID) -- and read
 * from there (the server still has it in the source, or the cache does);
 * its source hides it through the folder's removed UIDs (listing.c) and
 * changes_leaving.  When the flusher learns the message's UID in the
 * destination, the arrival gives way to an alias and a forward, the names
 * and inodes every moved message gets (mailbox_write.c).
 *
 * Pending flag changes are read back from the journal. */
#include "mailbox_p.h"
#include "changes.h"
#include "inode.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct pending_arrival {
	uint64_t entry;  /* the journal entry that brings it */
	uint32_t folder; /* where it is listed */
	uint32_t src_folder, src_uid;
	char *name;
	/* a cp (src_folder INODE_UPLOAD_FOLDER): read from the journal's
	 * staged copy, as big and as old as it will be stored */
	char *staged;
	uint64_t size;
	int64_t date;
};

struct pending {
	/* Protects what follows.  A leaf (src/README's list, 10), taken
	 * alone; nothing is taken inside it. */
	pthread_mutex_t lock;
	struct pending_arrival *v; /* in entry order */
	size_t n, cap;
};

int mb_pending_init(struct mailbox *mb)
{
	mb->pending = calloc(1, sizeof(*mb->pending));
	if (!mb->pending)
		return -ENOMEM;
	pthread_mutex_init(&mb->pending->lock, NULL);
	return 0;
}

void mb_pending_free(struct mailbox *mb)
{
	struct pending *p = mb->pending;

	if (!p)
		return;
	for (size_t i = 0; i < p->n; i++) {
		free(p->v[i].name);
		free(p->v[i].staged);
	}
	free(p->v);
	pthread_mutex_destroy(&p->lock);
	free(p);
	mb->pending = NULL;
}

static int add(struct mailbox *mb, const struct pending_arrival *a)
{
	struct pending *p = mb->pending;
	char *copy = strdup(a->name), *staged = a->staged ? strdup(a->staged) : NULL;
	int r = 0;

	if (!copy || (a->staged && !staged)) {
		free(copy);
		free(staged);
		return -ENOMEM;
	}
	pthread_mutex_lock(&p->lock);
	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 64;
		struct pending_arrival *v = realloc(p->v, cap * sizeof(*v));

		if (v) {
			p->v = v;
			p->cap = cap;
		}
	}
	if (p->n < p->cap) {
		p->v[p->n] = *a;
		p->v[p->n].name = copy;
		p->v[p->n++].staged = staged;
	} else {
		r = -ENOMEM;
	}
	pthread_mutex_unlock(&p->lock);
	if (r < 0) {
		free(copy);
		free(staged);
	}
	return r;
}

int mb_pending_add(struct mailbox *mb, uint64_t entry, uint32_t folder, const char *name, uint32_t src_folder,
		   uint32_t src_uid)
{
	struct pending_arrival a = { entry, folder, src_folder, src_uid, (char *)name, NULL, 0, 0 };

	return add(mb, &a);
}

int mb_pending_add_copy(struct mailbox *mb, uint64_t entry, uint32_t folder, const char *name,
			uint32_t upload, const char *staged, uint64_t size, int64_t date)
{
	struct pending_arrival a = { entry, folder, INODE_UPLOAD_FOLDER, upload, (char *)name, (char *)staged,
				     size,  date };

	return add(mb, &a);
}

int mb_pending_open_copy(struct mailbox *mb, uint32_t upload, uint64_t *size)
{
	struct pending *p = mb->pending;
	char *staged = NULL;
	int r = -ENOENT;

	pthread_mutex_lock(&p->lock);
	for (size_t i = p->n; i-- > 0 && !staged;)
		if (p->v[i].src_folder == INODE_UPLOAD_FOLDER && p->v[i].src_uid == upload &&
		    p->v[i].staged) {
			staged = strdup(p->v[i].staged);
			*size = p->v[i].size;
		}
	pthread_mutex_unlock(&p->lock);
	if (staged && mb->journal)
		r = journal_open_staged(mb->journal, staged);
	free(staged);
	return r;
}

/* A cp's attributes, from its arrival; -ENOENT when none. */
static int copy_stat(struct mailbox *mb, uint32_t upload, struct stat *st)
{
	struct pending *p = mb->pending;
	int r = -ENOENT;

	pthread_mutex_lock(&p->lock);
	for (size_t i = p->n; i-- > 0 && r < 0;) {
		const struct pending_arrival *a = &p->v[i];

		if (a->src_folder != INODE_UPLOAD_FOLDER || a->src_uid != upload)
			continue;
		mb_file_stat(mb, inode_of_message(INODE_UPLOAD_FOLDER, upload), a->size, a->date, st);
		r = 0;
	}
	pthread_mutex_unlock(&p->lock);
	return r;
}

bool mb_pending_remove(struct mailbox *mb, uint64_t entry, struct mb_arrival *out)
{
	struct pending *p = mb->pending;
	bool found = false;

	pthread_mutex_lock(&p->lock);
	for (size_t i = 0; i < p->n && !found; i++) {
		const struct pending_arrival *a = &p->v[i];

		if (a->entry != entry)
			continue;
		found = true;
		*out = (struct mb_arrival){ a->folder, a->src_folder, a->src_uid, a->name };
		free(a->staged);
		memmove(&p->v[i], &p->v[i + 1], (p->n - i - 1) * sizeof(p->v[0]));
		p->n--;
	}
	pthread_mutex_unlock(&p->lock);
	return found;
}

bool mb_pending_get(struct mailbox *mb, uint64_t entry, struct mb_arrival *out)
{
	struct pending *p = mb->pending;
	bool found = false;

	pthread_mutex_lock(&p->lock);
	for (size_t i = 0; i < p->n && !found; i++) {
		const struct pending_arrival *a = &p->v[i];

		if (a->entry == entry && (out->name = strdup(a->name))) {
			out->folder = a->folder;
			out->src_folder = a->src_folder;
			out->src_uid = a->src_uid;
			found = true;
		}
	}
	pthread_mutex_unlock(&p->lock);
	return found;
}

bool mb_pending_find(struct mailbox *mb, uint32_t folder, const char *name, uint64_t *entry,
		     uint32_t *src_folder, uint32_t *src_uid)
{
	struct pending *p = mb->pending;
	bool found = false;

	pthread_mutex_lock(&p->lock);
	/* the newest first: a name used again after its message moved on */
	for (size_t i = p->n; i-- > 0 && !found;) {
		const struct pending_arrival *a = &p->v[i];

		if (a->folder != folder || strcmp(a->name, name) != 0)
			continue;
		found = true;
		if (entry)
			*entry = a->entry;
		if (src_folder)
			*src_folder = a->src_folder;
		if (src_uid)
			*src_uid = a->src_uid;
	}
	pthread_mutex_unlock(&p->lock);
	return found;
}

bool mb_pending_holds(struct mailbox *mb, uint32_t src_folder, uint32_t src_uid, uint64_t *entry)
{
	struct pending *p = mb->pending;
	bool found = false;

	pthread_mutex_lock(&p->lock);
	for (size_t i = p->n; i-- > 0 && !found;) {
		found = p->v[i].src_folder == src_folder && p->v[i].src_uid == src_uid;
		if (found && entry)
			*entry = p->v[i].entry;
	}
	pthread_mutex_unlock(&p->lock);
	return found;
}

size_t mb_pending_count(struct mailbox *mb)
{
	struct pending *p = mb->pending;
	size_t n;

	pthread_mutex_lock(&p->lock);
	n = p->n;
	pthread_mutex_unlock(&p->lock);
	return n;
}

int mb_pending_stat(struct mailbox *mb, uint32_t src_folder, uint32_t src_uid, struct stat *st)
{
	struct folder *f = src_folder == INODE_UPLOAD_FOLDER ? NULL : mb_folder(mb, src_folder);
	struct listing *l;
	const struct msg *m;
	int err = -ENOENT;

	if (src_folder == INODE_UPLOAD_FOLDER)
		return copy_stat(mb, src_uid, st);
	/* any age: a message never changes; after a remount, the listing an
	 * earlier mount saved, or the server's */
	l = f && !f->noselect && f->server ? mb_listing(mb, f, MB_ANY_AGE, &err) : NULL;
	m = l ? mb_listing_find(l, src_uid) : NULL;
	if (m) {
		mb_msg_stat(mb, src_folder, m, st);
		st->st_ino = inode_of_message(src_folder, src_uid);
	}
	mb_listing_put(l);
	return m ? 0 : l ? -ENOENT : err;
}

bool mb_pending_any(struct mailbox *mb, uint32_t folder)
{
	struct pending *p = mb->pending;
	bool any = false;

	pthread_mutex_lock(&p->lock);
	for (size_t i = 0; i < p->n && !any; i++)
		any = p->v[i].folder == folder;
	pthread_mutex_unlock(&p->lock);
	return any;
}

int mb_pending_snapshot(struct mailbox *mb, uint32_t folder, struct mailbox_dir *d)
{
	struct pending *p = mb->pending;
	struct pending_arrival *mine = NULL;
	size_t n = 0;
	int r = 0;

	pthread_mutex_lock(&p->lock);
	for (size_t i = 0; i < p->n; i++)
		n += p->v[i].folder == folder;
	if (n && (mine = calloc(n, sizeof(*mine)))) {
		n = 0;
		for (size_t i = 0; i < p->n; i++)
			if (p->v[i].folder == folder) {
				mine[n] = p->v[i];
				mine[n].staged = NULL;
				mine[n].name = strdup(p->v[i].name);
				if (!mine[n++].name)
					r = -ENOMEM;
			}
	} else if (n) {
		r = -ENOMEM;
	}
	pthread_mutex_unlock(&p->lock);
	d->arrivals = calloc(n ? n : 1, sizeof(*d->arrivals));
	if (!d->arrivals)
		r = -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if (r == 0) {
			struct mailbox_dir_arrival *a = &d->arrivals[d->narrivals++];

			a->name = mine[i].name;
			mine[i].name = NULL;
			if (mb_pending_stat(mb, mine[i].src_folder, mine[i].src_uid, &a->st) < 0)
				mb_file_stat(mb, inode_of_message(mine[i].src_folder, mine[i].src_uid), 0, 0,
					     &a->st);
		}
		free(mine[i].name);
	}
	free(mine);
	return r;
}

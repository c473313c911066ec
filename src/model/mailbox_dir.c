/* mailbox_dir.c - owns directory listings as readdir sees them: frozen at
 * opendir (subfolders, messages, arrivals under -o writeback) so offsets
 * stay stable, or, for a folder's first listing, handed out while its FETCH
 * streams in (listing_stream.h). */
#include "mailbox_p.h"
#include "inode.h"
#include "listing_stream.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(MAILBOX_DIR_NAME_SIZE == NAMES_MAX + 1, "a message name fits a reader's buffer");

static int snapshot_subdirs(struct mailbox *mb, struct mailbox_dir *d)
{
	int r = 0;

	pthread_rwlock_rdlock(&mb->tree_lock);
	if (!mb_folder_locked(mb, d->folder)) {
		r = -ENOENT;
		goto out;
	}
	d->nsub = mb_count_subdirs_locked(mb, d->folder);
	d->sub_ids = calloc(d->nsub + 1, sizeof(*d->sub_ids));
	d->sub_names = calloc(d->nsub + 1, sizeof(*d->sub_names));
	if (!d->sub_ids || !d->sub_names) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 1, n = 0; i < mb->nfolders && n < d->nsub; i++) {
		const struct folder *f = mb->folders[i];

		if (!f->present || f->parent != d->folder)
			continue;
		d->sub_ids[n] = f->id;
		d->sub_names[n] = strdup(f->leaf);
		if (!d->sub_names[n++]) {
			r = -ENOMEM;
			goto out;
		}
	}
out:
	pthread_rwlock_unlock(&mb->tree_lock);
	return r;
}

static int snapshot_removed(struct folder *f, struct mailbox_dir *d)
{
	int r = 0;

	pthread_mutex_lock(&f->lock);
	if (f->nremoved) {
		d->removed = malloc(f->nremoved * sizeof(*d->removed));
		if (d->removed) {
			memcpy(d->removed, f->removed, f->nremoved * sizeof(*d->removed));
			d->nremoved = f->nremoved;
		} else {
			r = -ENOMEM;
		}
	}
	pthread_mutex_unlock(&f->lock);
	return r;
}

/* Whether a sync from nothing may show its messages while they arrive:
 * nothing the finished listing alone can tell is hidden or added (UIDs
 * removed by this mount, arrivals of -o writeback).  *joined: the stream of
 * such a sync already running, referenced, for a second reader. */
static bool streamable(struct mailbox *mb, struct folder *f, struct listing_stream **joined)
{
	bool cold;

	pthread_mutex_lock(&f->lock);
	/* a stream whose sync is published: its listing is f's now */
	*joined = f->listing ? NULL : listing_stream_get(f->stream);
	cold = !f->listing && !f->syncing && f->nremoved == 0;
	pthread_mutex_unlock(&f->lock);
	return cold && !mb_pending_any(mb, f->id);
}

/* How long a reader of a stream waits for its next entry, in mb_wait_ms:
 * longer than the sync itself may go without one (a command's budget, and
 * the retry on a new connection), so that a reader sees the sync's own end
 * and error, as it would have at opendir. */
#define STREAM_WAIT_WAITS 3

struct dir_start {
	struct folder *f;
	struct listing_stream *stream;
	struct mailbox_dir *d;
	mailbox_dir_ready *ready;
	void *ctx;
};

/* The stream began: other readers may join it, and d goes to the reader
 * now, while this thread syncs on. */
static void hand_over(void *ctx)
{
	struct dir_start *start = ctx;
	struct listing_stream *ref = listing_stream_get(start->stream), *old;

	/* the stream of an earlier sync that failed may not be retired yet */
	pthread_mutex_lock(&start->f->lock);
	old = start->f->stream;
	start->f->stream = ref;
	pthread_mutex_unlock(&start->f->lock);
	listing_stream_put(old);
	start->ready(start->d, start->ctx);
}

/* The stream's sync ended: later readers get the listing itself. */
static void retire(struct folder *f, struct listing_stream *stream)
{
	struct listing_stream *ref = NULL;

	pthread_mutex_lock(&f->lock);
	if (f->stream == stream) {
		ref = f->stream;
		f->stream = NULL;
	}
	pthread_mutex_unlock(&f->lock);
	listing_stream_put(ref);
}

/* f's listing into d, streamed when it can be; 1 when d went to the reader
 * already (it lists from the stream). */
static int list_folder(struct mailbox *mb, struct folder *f, struct mailbox_dir *d, mailbox_dir_ready *ready,
		       void *ctx)
{
	struct dir_start start = { f, NULL, d, ready, ctx };
	struct listing_stream *joined;
	struct listing *l;
	int r;

	if (streamable(mb, f, &joined))
		start.stream = listing_stream_new(STREAM_WAIT_WAITS * mb_wait_ms(mb), hand_over, &start);
	if (joined) {
		listing_stream_put(start.stream);
		d->stream = joined;
		ready(d, ctx);
		return 1;
	}
	d->stream = listing_stream_get(start.stream);
	l = mb_listing_streamed(mb, f, mb->opt.dir_cache, start.stream, &r);
	if (start.stream && listing_stream_started(start.stream)) {
		/* d is the reader's: touch only the stream */
		/* the sync ended it already (listing_refresh.c); a second
		 * end changes nothing */
		listing_stream_done(start.stream, r == 0 ? l : NULL, -EIO);
		retire(f, start.stream);
		mb_listing_put(l);
		listing_stream_put(start.stream);
		return 1;
	}
	listing_stream_put(d->stream);
	d->stream = NULL;
	listing_stream_put(start.stream);
	d->listing = l;
	if (!d->listing && r == 0)
		r = -EIO;
	if (d->listing && r == 0)
		r = snapshot_removed(f, d);
	if (d->listing && r == 0)
		r = mb_pending_snapshot(mb, f->id, d);
	return r;
}

int mailbox_opendir(struct mailbox *mb, uint64_t ino, mailbox_dir_ready *ready, void *ctx)
{
	struct mailbox_dir *d;
	struct folder *f;
	int r;

	if (!inode_is_folder(ino))
		return -ENOTDIR;
	mb_refresh_tree(mb, mb->opt.dir_cache);
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->folder = inode_folder(ino);
	r = snapshot_subdirs(mb, d);
	f = r == 0 ? mb_folder(mb, d->folder) : NULL;
	if (f && !f->noselect && f->server) {
		r = list_folder(mb, f, d, ready, ctx);
		if (r == 1)
			return 0;
	}
	if (r < 0) {
		/* still listed, the server just will not open it: EIO; gone
		 * (deleted by another client, LIST says): ENOENT */
		if (r == -ENOENT && d->folder != 0 && mb_folder(mb, d->folder))
			r = -EIO;
		mailbox_closedir(d);
		return r;
	}
	ready(d, ctx);
	return 0;
}

void mailbox_closedir(struct mailbox_dir *d)
{
	if (!d)
		return;
	for (size_t i = 0; d->sub_names && i < d->nsub; i++)
		free(d->sub_names[i]);
	free(d->sub_names);
	free(d->sub_ids);
	mb_listing_put(d->listing);
	listing_stream_put(d->stream);
	free(d->removed);
	for (size_t i = 0; i < d->narrivals; i++)
		free(d->arrivals[i].name);
	free(d->arrivals);
	free(d);
}

size_t mailbox_dir_count(const struct mailbox_dir *d)
{
	return 2 + d->nsub + (d->listing ? d->listing->count : 0) + d->narrivals;
}

uint64_t mailbox_dir_generation(struct mailbox *mb, const struct mailbox_dir *d, uint64_t ino)
{
	struct folder *f = mb_folder(mb, d->folder);
	uint32_t v = 0;

	/* the listing the entry came from: the folder's may be of another
	 * UIDVALIDITY by now (a sync published meanwhile) */
	if (!f || !inode_is_message(ino) || inode_is_upload(ino) || inode_folder(ino) != d->folder)
		return mailbox_entry_generation(mb, ino);
	if (d->stream)
		v = listing_stream_uidvalidity(d->stream);
	else if (d->listing)
		v = d->listing->uidvalidity;
	else
		return mailbox_entry_generation(mb, ino);
	pthread_mutex_lock(&f->lock);
	v = mb_told_generation_locked(f, v);
	pthread_mutex_unlock(&f->lock);
	return v;
}

/* Message i of a streamed listing. */
static int stream_entry(struct mailbox *mb, const struct mailbox_dir *d, size_t i, bool wait, char *namebuf,
			const char **name, struct stat *st)
{
	struct msg m;
	int r = listing_stream_entry(d->stream, i, wait, &m, namebuf);

	if (r == LISTING_STREAM_ENTRY) {
		*name = namebuf;
		mb_msg_stat(mb, d->folder, &m, st);
		return MAILBOX_DIR_ENTRY;
	}
	if (r == LISTING_STREAM_LATER)
		return MAILBOX_DIR_LATER;
	if (r == LISTING_STREAM_SKIP)
		return MAILBOX_DIR_SKIP;
	return r == LISTING_STREAM_END ? MAILBOX_DIR_END : r;
}

int mailbox_dir_entry(struct mailbox *mb, const struct mailbox_dir *d, size_t i, bool wait, char *namebuf,
		      const char **name, struct stat *st)
{
	if (i < 2) {
		uint32_t id = d->folder;

		if (i == 1) {
			pthread_rwlock_rdlock(&mb->tree_lock);
			id = d->folder < mb->nfolders ? mb->folders[d->folder]->parent : 0;
			pthread_rwlock_unlock(&mb->tree_lock);
		}
		*name = i == 0 ? "." : "..";
		if (mb_folder_stat(mb, id, st) < 0) {
			memset(st, 0, sizeof(*st));
			st->st_ino = inode_of_folder(id);
			st->st_mode = S_IFDIR | 0700;
		}
		return MAILBOX_DIR_ENTRY;
	}
	i -= 2;
	if (i < d->nsub) {
		*name = d->sub_names[i];
		if (mb_folder_stat(mb, d->sub_ids[i], st) < 0) {
			memset(st, 0, sizeof(*st));
			st->st_ino = inode_of_folder(d->sub_ids[i]);
			st->st_mode = S_IFDIR | 0700;
		}
		return MAILBOX_DIR_ENTRY;
	}
	i -= d->nsub;
	if (d->stream)
		return stream_entry(mb, d, i, wait, namebuf, name, st);
	if (d->listing && i >= d->listing->count && i - d->listing->count < d->narrivals) {
		*name = d->arrivals[i - d->listing->count].name;
		*st = d->arrivals[i - d->listing->count].st;
		return MAILBOX_DIR_ENTRY;
	}
	if (!d->listing || i >= d->listing->count)
		return MAILBOX_DIR_END;
	for (size_t k = 0; k < d->nremoved; k++)
		if (d->removed[k] == d->listing->msgs[i].uid)
			return MAILBOX_DIR_SKIP;
	*name = mb_msg_name(d->listing, &d->listing->msgs[i]);
	mb_msg_stat(mb, d->folder, &d->listing->msgs[i], st);
	return MAILBOX_DIR_ENTRY;
}

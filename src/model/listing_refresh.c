/* listing_refresh.c - owns when a folder's listing is refreshed and what its
 * readers get meanwhile.  One sync per folder runs at a time, with no lock
 * held; a reader whose listing is recent enough for it is served at once,
 * even while that sync runs, and the others wait for its result, which is
 * swapped in when it arrives, saved to disk, and compared with the old one
 * to tell the change hook what happened. */
#include "mailbox_p.h"
#include "changes.h"
#include "listing_diff.h"
#include "listing_stream.h"
#include "util/deadline.h"
#include "util/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

bool mb_offline_refused(struct mailbox *mb)
{
	return mb->opt.offline_fail && pool_is_down(mb->pool);
}

static bool listing_changed(const struct listing *old, const struct listing *l)
{
	return !old || old->uidvalidity != l->uidvalidity || old->count != l->count ||
	       (l->count && listing_top_uid(old) != listing_top_uid(l)) ||
	       (l->count && old->msgs[0].uid != l->msgs[0].uid);
}

/* Removed UIDs the server no longer lists need no more hiding. */
static void prune_removed_locked(struct folder *f)
{
	size_t out = 0;

	for (size_t i = 0; i < f->nremoved; i++)
		if (mb_listing_find(f->listing, f->removed[i]))
			f->removed[out++] = f->removed[i];
	f->nremoved = out;
}

/* UIDs the mount itself took away or brought in since the last sync. */
static uint32_t *known_changes_locked(const struct folder *f, size_t *n)
{
	uint32_t *v = malloc((f->nremoved + f->naliases + 1) * sizeof(*v));

	*n = 0;
	if (!v)
		return NULL;
	for (size_t i = 0; i < f->nremoved; i++)
		v[(*n)++] = f->removed[i];
	for (size_t i = 0; i < f->naliases; i++)
		v[(*n)++] = f->aliases[i].uid;
	qsort(v, *n, sizeof(*v), listing_cmp_uid);
	return v;
}

/* Tells the change hook what a sync found, but what the mount itself moved
 * (the kernel knows). */
static void report_changes(struct mailbox *mb, struct folder *f, const struct listing *old,
			   const struct listing *l, const uint32_t *known, size_t nknown)
{
	struct mailbox_change *v;
	size_t n;

	if (!mb->change_hook || !old || old == l)
		return;
	/* short of memory: what was found until then */
	listing_diff(old, l, f->id, known, nknown, &v, &n);
	if (n)
		mb->change_hook(v, n, mb->change_ctx);
	free(v);
}

/* What a sync starts from and what it will change, taken under f->lock. */
struct refresh {
	struct listing *old;  /* referenced; NULL: a sync from nothing */
	bool had_listing;     /* readers have seen a listing: report changes */
	bool try_disk;        /* no listing yet: look for the saved one */
	unsigned stale_marks; /* f->stale_marks when the sync started */
	struct listing *result;
	struct listing *reported; /* the listing replaced, for the report */
	uint32_t *known;
	size_t nknown;
	struct imap_folder_state seen; /* the SELECT of the sync */
	uint32_t *leaving;             /* UIDs pending changes (journal) take away */
	size_t nleaving;
	struct listing_stream *stream; /* for a sync from nothing, or NULL */
	bool untouched;                /* this mount has changed nothing in f (at the claim) */
	bool offered;                  /* old (the saved listing) went to readers already */
};

/* Waits until f's listing can be served (returned referenced) or it is
 * this thread's turn to sync (NULL, f->syncing set, r filled).  A sync of
 * another thread that runs past mb_wait_ms: the listing there is, however
 * old (as when a sync fails), or NULL with *timed_out. */
static struct listing *serve_or_claim_locked(struct mailbox *mb, struct folder *f, double max_age,
					     struct refresh *r, bool *timed_out)
{
	struct timespec until;

	deadline_in(&until, mb_wait_ms(mb));
	for (;;) {
		if (f->listing && mb_age(&f->synced_at) < max_age)
			return mb_listing_get(f->listing);
		if (!f->syncing)
			break;
		if (!deadline_wait(&f->synced, &f->lock, &until) && f->syncing) {
			log_warn("folder %s: gave up waiting for another thread's sync", f->path);
			*timed_out = true;
			return mb_listing_get(f->listing);
		}
	}
	f->syncing = true;
	r->had_listing = f->listing != NULL;
	r->old = mb_listing_get(f->listing);
	r->try_disk = !r->old && !f->disk_tried;
	if (r->try_disk)
		f->disk_tried = true;
	r->stale_marks = f->stale_marks;
	r->untouched = f->stale_marks == 0 && f->naliases == 0 && f->nremoved == 0;
	return NULL;
}

/* Swaps the sync's result in; returns f's listing now, referenced. */
static struct listing *publish_locked(struct folder *f, struct refresh *r, int err)
{
	f->syncing = false;
	if (err == 0) {
		f->last_sync = time(NULL);
		if (r->offered && r->result != r->old) {
			/* readers got the saved listing: the kernel holds its entries */
			r->reported = mb_listing_get(r->old);
			r->known = known_changes_locked(f, &r->nknown);
		} else if (r->had_listing && f->listing != r->result) {
			r->reported = mb_listing_get(f->listing);
			r->known = known_changes_locked(f, &r->nknown);
		}
		if (r->offered && r->result->uidvalidity != r->old->uidvalidity) {
			f->told_validity = r->result->uidvalidity;
			f->told_as = r->old->uidvalidity;
		}
		mb_listing_put(f->listing);
		f->listing = r->result;
		mb_stamp(&f->fetched_at);
		/* marked stale while the sync ran: it may not show that change */
		if (f->stale_marks == r->stale_marks)
			mb_stamp(&f->synced_at);
		prune_removed_locked(f);
		if (r->seen.uidnext &&
		    (r->seen.uidvalidity != f->next_validity || r->seen.uidnext >= f->next_uid)) {
			f->next_uid = r->seen.uidnext;
			f->next_validity = r->seen.uidvalidity;
			mb_stamp(&f->next_at);
		}
		for (size_t i = 0; i < r->nleaving; i++)
			if (mb_listing_find(f->listing, r->leaving[i]))
				mb_forget_message_locked(f, r->leaving[i]);
	} else {
		log_warn("cannot list folder %s: %s", f->path, strerror(-err));
		/* readers got the saved listing: the last one known, served
		 * as one would be after a failed refresh, never marked synced */
		if (r->offered && !f->listing && err != -ENOENT)
			f->listing = mb_listing_get(r->old);
	}
	pthread_cond_broadcast(&f->synced);
	return mb_listing_get(f->listing);
}

/* The sync itself, no lock held. */
static int sync_unlocked(struct mailbox *mb, struct folder *f, struct refresh *r)
{
	int err;

	if (r->try_disk)
		r->old = mb_load_listing(mb, f);
	/* changes left pending here are found out before the folder is read;
	 * one still pending hides messages only the finished listing can tell:
	 * no stream */
	if (changes_settle(mb, f->server) > 0) {
		r->stream = NULL;
	} else if (r->try_disk && r->old && r->stream && r->untouched && !mb_pending_any(mb, f->id)) {
		/* a remount: the saved listing now, what changed since once
		 * the SELECT has said (the change hook tells the kernel) --
		 * unless this mount has changed f already (a journal left by
		 * the last one, replayed): the saved listing cannot show that */
		listing_stream_offer(r->stream, r->old);
		r->offered = true;
	}
	err = mb_sync_listing(mb, f, r->old, r->offered ? NULL : r->stream, &r->result, &r->seen);
	/* a folder gone from the server meanwhile: readdir's EIO, as an
	 * opendir of a folder still in the tree gets (an offered stream
	 * tells a folder gone from a failed sync itself) */
	if (r->stream)
		listing_stream_done(r->stream, err == 0 ? r->result : NULL,
				    err == -ENOENT && !r->offered ? -EIO : err);
	if (err == 0)
		changes_leaving(mb, f->server, r->result->uidvalidity, &r->leaving, &r->nleaving);
	if (err == 0 && r->old && r->old->uidvalidity != r->result->uidvalidity) {
		log_info("folder %s: UIDVALIDITY changed, dropping its cache", f->path);
		cache_drop_folder(mb->cache, mb_folder_key(mb, f));
		/* the kernel may hold pages of the old messages under these inodes */
		__atomic_store_n(&f->reloaded, true, __ATOMIC_RELAXED);
	}
	if (err == 0 && r->result != r->old &&
	    (listing_changed(r->old, r->result) || r->old->modseq != r->result->modseq))
		mb_save_listing(mb, f, r->result);
	return err;
}

struct listing *mb_listing(struct mailbox *mb, struct folder *f, double max_age, int *err)
{
	return mb_listing_streamed(mb, f, max_age, NULL, err);
}

struct listing *mb_listing_streamed(struct mailbox *mb, struct folder *f, double max_age,
				    struct listing_stream *stream, int *err)
{
	struct refresh r = { .stream = stream };
	bool timed_out = false;
	struct listing *l;
	int sync_err;

	*err = 0;
	if (f->noselect || !f->server) {
		*err = -ENOENT;
		return NULL;
	}
	if (mb_offline_refused(mb)) {
		*err = -EIO;
		return NULL;
	}
	pthread_mutex_lock(&f->lock);
	/* made by mkdir under -o writeback: empty until the server has it */
	l = f->pending_create ? mb_listing_get(f->listing) : NULL;
	if (!l)
		l = serve_or_claim_locked(mb, f, max_age, &r, &timed_out);
	pthread_mutex_unlock(&f->lock);
	if (l || timed_out) {
		*err = l ? 0 : -ETIMEDOUT;
		return l;
	}

	sync_err = sync_unlocked(mb, f, &r);
	pthread_mutex_lock(&f->lock);
	l = publish_locked(f, &r, sync_err);
	pthread_mutex_unlock(&f->lock);
	if (r.reported)
		report_changes(mb, f, r.reported, l, r.known, r.nknown);
	mb_listing_put(r.reported);
	free(r.known);
	free(r.leaving);
	mb_listing_put(r.old);
	if (sync_err == -ENOENT) {
		/* the server would not open it: deleted by someone else (and
		 * maybe re-created: the next use must ask again) */
		mb_mark_stale(f);
		mb_listing_put(l);
		mb_refresh_tree(mb, 0);
		*err = sync_err;
		return NULL;
	}
	/* a failed sync: serve the last good listing rather than fail */
	if (sync_err < 0 && !l)
		*err = sync_err;
	return l;
}

/* search.c - owns search directories (search.h): the UID SEARCH results
 * per (folder, query), the last QUERIES_KEPT of each folder kept for
 * dir_cache seconds (or until the folder's listing changes), the account-wide search
 * over every folder (SEARCH_WORKERS at once over the pool), and the
 * entries each search directory shows.  Lock: search.lock, a leaf
 * (src/README, "Locks"); no search runs under it. */
#include "search.h"
#include "mailbox_p.h"
#include "inode.h"
#include "util/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QUERIES_KEPT 8   /* results kept per folder (its last queries) */
#define SEARCH_WORKERS 4 /* folders searched at once by an account-wide query */
#define META_CHUNK 20000 /* hits' metadata per FETCH (as a listing's chunks) */

struct result {
	uint32_t folder;
	char *query;
	uint32_t uidvalidity;
	uint32_t *uids; /* ascending */
	size_t n;
	struct listing *unlisted; /* the hits the folder's listing did not
				   * hold then: their names and attributes */
	uint64_t seen;            /* listing_mark of the folder's listing then */
	struct timespec at;
};

struct folder_results {
	struct result kept[QUERIES_KEPT];
	size_t next; /* the slot the next result takes */
};

struct search {
	struct mailbox *mb;
	struct vnodes *vnodes;
	/* Leaf lock: protects by_folder, nfolders and every result in them. */
	pthread_mutex_t lock;
	struct folder_results **by_folder; /* by folder id; NULL: none kept */
	size_t nfolders;
};

struct search *search_new(struct mailbox *mb, struct vnodes *v)
{
	struct search *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->mb = mb;
	s->vnodes = v;
	pthread_mutex_init(&s->lock, NULL);
	return s;
}

static void result_clear(struct result *r)
{
	free(r->query);
	free(r->uids);
	mb_listing_put(r->unlisted);
	memset(r, 0, sizeof(*r));
}

void search_free(struct search *s)
{
	if (!s)
		return;
	for (size_t f = 0; f < s->nfolders; f++) {
		for (size_t i = 0; s->by_folder[f] && i < QUERIES_KEPT; i++)
			result_clear(&s->by_folder[f]->kept[i]);
		free(s->by_folder[f]);
	}
	free(s->by_folder);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/* The results kept for folder, made when make is set; under the lock. */
static struct folder_results *results_of(struct search *s, uint32_t folder, bool make)
{
	if (folder >= s->nfolders) {
		struct folder_results **v;
		size_t n = (size_t)folder + 1;

		if (!make || !(v = realloc(s->by_folder, n * sizeof(*v))))
			return NULL;
		memset(v + s->nfolders, 0, (n - s->nfolders) * sizeof(*v));
		s->by_folder = v;
		s->nfolders = n;
	}
	if (!s->by_folder[folder] && make)
		s->by_folder[folder] = calloc(1, sizeof(**s->by_folder));
	return s->by_folder[folder];
}

uint32_t search_folder_of(const struct vnode_key *k)
{
	if (k->kind == VNODE_SEARCH_BRANCH || (k->kind == VNODE_SEARCH_DIR && k->folder != 0))
		return k->folder;
	return 0;
}

/* ---- results ---- */

struct search_job {
	const char *query;
	struct listing *known; /* the folder's listing, any age; may be NULL */
	enum names_mode names;
	uint32_t *uids;
	size_t n;
	uint32_t uidvalidity;
	struct listing *unlisted;
	char err[256];
};

/* The hits the known listing does not hold, listed in the same session:
 * a search costs the metadata of those only, not a listing of the folder. */
static int list_unlisted(struct imap_session *is, struct search_job *job)
{
	bool all = !job->known || job->known->uidvalidity != job->uidvalidity;
	struct listing_builder b;
	uint32_t *missing = malloc((job->n ? job->n : 1) * sizeof(*missing));
	size_t n = 0;
	int r = missing ? listing_builder_init(&b, job->names, job->uidvalidity) : -ENOMEM;

	if (r < 0) {
		free(missing);
		return r;
	}
	for (size_t i = 0; i < job->n; i++)
		if (all || !mb_listing_find(job->known, job->uids[i]))
			missing[n++] = job->uids[i];
	for (size_t at = 0; at < n && r == 0 && !b.err; at += META_CHUNK) {
		imap_renew_operation(is);
		r = imap_fetch_meta_uids(is, missing + at, n - at < META_CHUNK ? n - at : META_CHUNK,
					 mb_listing_add_meta, &b);
	}
	free(missing);
	if (r == 0 && b.err)
		r = b.err;
	if (r < 0) {
		listing_builder_abandon(&b);
		return r;
	}
	listing_builder_finish(&b);
	job->unlisted = b.l;
	return 0;
}

static int search_fn(struct imap_session *is, const struct imap_folder_state *st, void *ctx)
{
	struct search_job *job = ctx;
	int r;

	free(job->uids);
	job->uids = NULL;
	mb_listing_put(job->unlisted);
	job->unlisted = NULL;
	job->uidvalidity = st ? st->uidvalidity : 0;
	r = imap_search(is, job->query, &job->uids, &job->n, job->err, sizeof(job->err));
	return r < 0 ? r : list_unlisted(is, job);
}

/* What a listing says of its folder, folded: a sync that found a change
 * (IDLE's, a touch's, dir_cache's) makes a listing with another mark, and
 * the results taken before it are asked again. */
static uint64_t listing_mark(const struct listing *l)
{
	uint64_t h = 0xcbf29ce484222325ull;
	uint64_t parts[4] = { l ? l->uidvalidity : 0, l ? l->count : 0, l ? listing_top_uid(l) : 0,
			      l ? l->modseq : 0 };

	for (size_t i = 0; i < 4; i++)
		h = (h ^ parts[i]) * 0x100000001b3ull;
	return h;
}

/* The hits of query in folder, as kept or asked now: a copy of them
 * (*uids malloc'd), the UIDVALIDITY they hold for, and the listing of those
 * the folder's listing did not hold (*unlisted referenced, may be NULL). */
static int hits_of(struct search *s, uint32_t folder, const char *query, uint32_t **uids, size_t *n,
		   uint32_t *validity, struct listing **unlisted)
{
	struct folder *f = mb_folder(s->mb, folder);
	const char *server = f && !atomic_load(&f->noselect) ? atomic_load(&f->server) : NULL;
	struct search_job job = { query, NULL, s->mb->opt.names, NULL, 0, 0, NULL, "" };
	struct folder_results *kept;
	struct result *slot;
	uint64_t mark;
	int r = 1;

	*uids = NULL;
	*n = 0;
	*unlisted = NULL;
	if (!server)
		return 0; /* nothing to search: no hits */
	job.known = mb_listing_known(f, MB_ANY_AGE);
	mark = listing_mark(job.known);
	pthread_mutex_lock(&s->lock);
	kept = results_of(s, folder, false);
	for (size_t i = 0; kept && i < QUERIES_KEPT && r == 1; i++) {
		struct result *k = &kept->kept[i];

		if (k->query && k->folder == folder && strcmp(k->query, query) == 0 &&
		    mb_age(&k->at) <= s->mb->opt.dir_cache && k->seen == mark) {
			*uids = k->n ? malloc(k->n * sizeof(**uids)) : NULL;
			r = k->n && !*uids ? -ENOMEM : 0;
			if (r == 0) {
				if (k->n)
					memcpy(*uids, k->uids, k->n * sizeof(**uids));
				*n = k->n;
				*validity = k->uidvalidity;
				*unlisted = k->unlisted ? mb_listing_get(k->unlisted) : NULL;
			}
		}
	}
	pthread_mutex_unlock(&s->lock);
	if (r <= 0) {
		mb_listing_put(job.known);
		return r;
	}
	/* a session that has the folder selected may not have been told of
	 * new mail yet: SEARCH answers for what the session knows */
	r = pool_run(s->mb->pool, server, POOL_FRESH_SELECT, search_fn, &job);
	mb_listing_put(job.known);
	if (r < 0) {
		if (r == -EINVAL)
			log_warn("search of %s for \"%s\" refused: %s", server, query, job.err);
		else
			log_warn("cannot search %s for \"%s\": %s", server, query, strerror(-r));
		free(job.uids);
		mb_listing_put(job.unlisted);
		return r;
	}
	pthread_mutex_lock(&s->lock);
	kept = results_of(s, folder, true);
	if (!kept) { /* out of memory: the result is not kept */
		pthread_mutex_unlock(&s->lock);
		goto out;
	}
	slot = &kept->kept[kept->next];
	kept->next = (kept->next + 1) % QUERIES_KEPT;
	result_clear(slot);
	slot->folder = folder;
	slot->query = strdup(query);
	slot->uidvalidity = job.uidvalidity;
	slot->uids = job.n ? malloc(job.n * sizeof(*slot->uids)) : NULL;
	if (slot->query && (slot->uids || !job.n)) {
		if (job.n)
			memcpy(slot->uids, job.uids, job.n * sizeof(*slot->uids));
		slot->n = job.n;
		slot->unlisted = job.unlisted ? mb_listing_get(job.unlisted) : NULL;
		slot->seen = mark;
		mb_stamp(&slot->at);
	} else {
		result_clear(slot);
	}
	pthread_mutex_unlock(&s->lock);
out:
	*uids = job.uids;
	*n = job.n;
	*validity = job.uidvalidity;
	*unlisted = job.unlisted;
	return 0;
}

void search_refresh(struct search *s, const struct vnode_key *k)
{
	pthread_mutex_lock(&s->lock);
	for (size_t f = 0; f < s->nfolders; f++) {
		/* an account-wide query's directories refresh every folder's */
		if (!s->by_folder[f] || (f != k->folder && k->kind != VNODE_SEARCH_BRANCH && k->folder != 0))
			continue;
		for (size_t i = 0; i < QUERIES_KEPT; i++) {
			struct result *r = &s->by_folder[f]->kept[i];

			if (r->query && strcmp(r->query, k->text) == 0)
				result_clear(r);
		}
	}
	pthread_mutex_unlock(&s->lock);
	if (search_folder_of(k)) {
		struct folder *f = mb_folder(s->mb, k->folder);

		if (f)
			mb_mark_stale(f); /* new mail needs its names too */
	}
}

/* A new, zeroed entry at the end of *v (grown as needed; *count counts
 * it), or NULL when out of memory. */
static struct view_entry *next_entry(struct view_entry **v, size_t *count, size_t *cap)
{
	if (*count == *cap) {
		size_t ncap = *cap ? 2 * *cap : 16;
		struct view_entry *nv = realloc(*v, ncap * sizeof(*nv));

		if (!nv)
			return NULL;
		*v = nv;
		*cap = ncap;
	}
	memset(&(*v)[*count], 0, sizeof(**v));
	return &(*v)[(*count)++];
}

/* The messages of folder among uids as directory entries, with the names
 * and attributes the folder's listing gives them (or, for those it did not
 * hold at the search, unlisted's), without those moved or removed since. */
static int message_entries(struct search *s, uint32_t folder, const uint32_t *uids, size_t n,
			   uint32_t validity, const struct listing *unlisted, struct view_entry **v,
			   size_t *count, size_t *cap)
{
	struct folder *f = mb_folder(s->mb, folder);
	struct listing *known;
	int r = 0;

	if (!f || n == 0)
		return 0;
	known = mb_listing_known(f, MB_ANY_AGE);
	for (size_t i = 0; i < n && r == 0; i++) {
		const struct listing *l = known && known->uidvalidity == validity ? known : NULL;
		struct msg *m = l ? mb_listing_find(l, uids[i]) : NULL;
		struct view_entry *e;
		bool removed;

		if (!m && unlisted && unlisted->uidvalidity == validity) {
			l = unlisted;
			m = mb_listing_find(l, uids[i]);
		}
		if (!m)
			continue;
		pthread_mutex_lock(&f->lock);
		removed = mb_is_removed_locked(f, uids[i]);
		pthread_mutex_unlock(&f->lock);
		if (removed)
			continue;
		if (!(e = next_entry(v, count, cap))) {
			r = -ENOMEM;
			break;
		}
		mb_msg_stat(s->mb, folder, m, &e->st);
		if (!(e->name = strdup(mb_msg_name(l, m))))
			r = -ENOMEM;
	}
	mb_listing_put(known);
	return r;
}

/* ---- the account-wide search ---- */

struct sweep {
	struct search *s;
	const char *query;
	uint32_t *ids; /* folders to search */
	size_t n;
	bool *hit; /* by position in ids: it has hits */
	atomic_size_t next;
	atomic_int err; /* -EINVAL: the query itself was refused */
};

static void *sweep_worker(void *arg)
{
	struct sweep *w = arg;

	for (size_t i; (i = atomic_fetch_add(&w->next, 1)) < w->n && atomic_load(&w->err) == 0;) {
		uint32_t *uids = NULL, validity = 0;
		struct listing *unlisted = NULL;
		size_t n = 0;
		int r = hits_of(w->s, w->ids[i], w->query, &uids, &n, &validity, &unlisted);

		if (r == -EINVAL)
			atomic_store(&w->err, r);
		w->hit[i] = r == 0 && n > 0;
		free(uids);
		mb_listing_put(unlisted);
	}
	return NULL;
}

/* The folders under top (itself included, 0: all) that have hits, or whose
 * subfolders have: *marked[id] true for each, malloc'd, sized nfolders. */
static int sweep(struct search *s, uint32_t top, const char *query, bool **marked, size_t *nfolders)
{
	struct sweep w = { .s = s, .query = query };
	pthread_t threads[SEARCH_WORKERS];
	size_t started = 0, total;
	struct mailbox *mb = s->mb;
	uint32_t *parent;
	int r = 0;

	pthread_rwlock_rdlock(&mb->tree_lock);
	total = mb->nfolders;
	w.ids = calloc(total ? total : 1, sizeof(*w.ids));
	parent = calloc(total ? total : 1, sizeof(*parent));
	*marked = calloc(total ? total : 1, sizeof(**marked));
	for (size_t id = 1; w.ids && parent && *marked && id < total; id++) {
		const struct folder *f = mb->folders[id];
		uint32_t up = (uint32_t)id;

		parent[id] = f->parent;
		if (!f->present || atomic_load(&f->noselect) || !atomic_load(&f->server))
			continue;
		while (top && up != top && up != 0)
			up = mb->folders[up]->parent; /* under top? */
		if (!top || up == top)
			w.ids[w.n++] = (uint32_t)id;
	}
	pthread_rwlock_unlock(&mb->tree_lock);
	w.hit = calloc(w.n ? w.n : 1, sizeof(*w.hit));
	if (!w.ids || !parent || !*marked || !w.hit) {
		r = -ENOMEM;
		goto out;
	}
	for (; started < SEARCH_WORKERS && started < w.n; started++)
		if (pthread_create(&threads[started], NULL, sweep_worker, &w) != 0)
			break;
	if (started == 0)
		sweep_worker(&w);
	for (size_t i = 0; i < started; i++)
		pthread_join(threads[i], NULL);
	r = atomic_load(&w.err);
	for (size_t i = 0; i < w.n && r == 0; i++)
		for (uint32_t id = w.ids[i]; w.hit[i] && id != 0 && !(*marked)[id]; id = parent[id])
			(*marked)[id] = true;
	*nfolders = total;
out:
	free(w.ids);
	free(w.hit);
	free(parent);
	if (r < 0) {
		free(*marked);
		*marked = NULL;
	}
	return r;
}

/* ---- entries and lookups ---- */

static void dir_stat(struct search *s, uint64_t ino, mode_t mode, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_mode = S_IFDIR | mode;
	st->st_nlink = 2;
	st->st_uid = s->mb->uid;
	st->st_gid = s->mb->gid;
	st->st_mtime = st->st_ctime = st->st_atime = s->mb->mount_time;
}

/* Subfolders of folder (0: the root) marked by a sweep, as branch entries. */
static int branch_entries(struct search *s, uint32_t folder, const char *query, const bool *marked,
			  size_t nmarked, struct view_entry **v, size_t *count, size_t *cap)
{
	struct mailbox *mb = s->mb;
	int r = 0;

	pthread_rwlock_rdlock(&mb->tree_lock);
	for (size_t id = 1; id < nmarked && id < mb->nfolders && r == 0; id++) {
		const struct folder *f = mb->folders[id];
		struct view_entry *e;

		if (!marked[id] || f->parent != folder || !f->present)
			continue;
		if (!(e = next_entry(v, count, cap))) {
			r = -ENOMEM;
			break;
		}
		dir_stat(s, 0, 0700, &e->st);
		e->kind = VNODE_SEARCH_BRANCH;
		e->folder = (uint32_t)id;
		e->name = strdup(f->leaf);
		e->text = strdup(query);
		if (!e->name || !e->text)
			r = -ENOMEM;
	}
	pthread_rwlock_unlock(&mb->tree_lock);
	return r;
}

int search_list(struct search *s, const struct vnode_key *k, struct view_entry **out, size_t *n)
{
	uint32_t folder = search_folder_of(k), *uids = NULL, validity = 0;
	struct listing *unlisted = NULL;
	struct view_entry *v = NULL;
	size_t count = 0, cap = 0, nuids = 0, nmarked = 0;
	bool *marked = NULL;
	int r = 0;

	*out = NULL;
	*n = 0;
	if (k->kind == VNODE_SEARCH_ROOT)
		return 0; /* queries are not listed */
	if (k->kind == VNODE_SEARCH_BRANCH || k->folder == 0) {
		r = sweep(s, folder, k->text, &marked, &nmarked);
		if (r == 0)
			r = branch_entries(s, folder, k->text, marked, nmarked, &v, &count, &cap);
	}
	if (r == 0 && folder)
		r = hits_of(s, folder, k->text, &uids, &nuids, &validity, &unlisted);
	if (r == 0 && folder)
		r = message_entries(s, folder, uids, nuids, validity, unlisted, &v, &count, &cap);
	free(uids);
	mb_listing_put(unlisted);
	free(marked);
	if (r < 0) {
		view_entries_free(v, count);
		return r;
	}
	*out = v;
	*n = count;
	return 0;
}

int search_lookup_in_folder(struct search *s, uint64_t parent, const char *name, struct stat *st)
{
	struct vnode_key k = { VNODE_SEARCH_ROOT, inode_folder(parent), 0, "" };
	struct folder *f = mb_folder(s->mb, k.folder);
	uint64_t ino;
	int r;

	if (strcmp(name, SEARCH_DIR_NAME) != 0 || !f)
		return -ENOENT;
	r = vnodes_lookup(s->vnodes, &k, &ino);
	if (r == 0)
		dir_stat(s, ino, 0500, st);
	return r;
}

/* A query as a directory name: no control characters (the server would
 * take a line break for the end of the command). */
static bool query_ok(const char *q)
{
	for (const unsigned char *p = (const unsigned char *)q; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return false;
	return *q != 0;
}

int search_lookup(struct search *s, const struct vnode_key *pk, const char *name, struct stat *st)
{
	struct view_entry *v = NULL;
	size_t n = 0;
	uint64_t ino;
	int r;

	if (pk->kind == VNODE_SEARCH_ROOT) {
		struct vnode_key k = { VNODE_SEARCH_DIR, pk->folder, 0, name };

		if (!query_ok(name))
			return -EINVAL;
		r = vnodes_lookup(s->vnodes, &k, &ino);
		if (r == 0)
			dir_stat(s, ino, 0700, st);
		return r;
	}
	r = search_list(s, pk, &v, &n);
	if (r < 0)
		return r;
	r = -ENOENT;
	for (size_t i = 0; i < n && r == -ENOENT; i++)
		if (strcmp(v[i].name, name) == 0) {
			r = vnodes_count_entry(s->vnodes, &v[i]);
			*st = v[i].st;
		}
	view_entries_free(v, n);
	return r;
}

int search_getattr(struct search *s, uint64_t ino, const struct vnode_key *k, struct stat *st)
{
	dir_stat(s, ino, k->kind == VNODE_SEARCH_ROOT ? 0500 : 0700, st);
	return 0;
}

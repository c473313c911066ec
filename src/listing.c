/* listing.c - owns the per-folder message snapshots: immutable, refcounted
 * listings built from streamed FETCH responses, refreshed incrementally
 * (new UIDs, then the UID set when something vanished), plus the small
 * mutable overlays (removed UIDs, aliases) that keep a listing right between
 * a change made through the mount and the next sync. */
#include "mailbox_p.h"
#include "inode.h"
#include "log.h"
#include "cache_disk.h"
#include "files.h"

#include <inttypes.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FETCH_CHUNK 5000	/* messages per listing FETCH: bounds libetpan's buffer */

/* ---- time ---- */

double mb_age(const struct timespec *t)
{
	struct timespec now;

	if (t->tv_sec == 0 && t->tv_nsec == 0)
		return 1e18;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t->tv_sec) + (double)(now.tv_nsec - t->tv_nsec) / 1e9;
}

void mb_stamp(struct timespec *t)
{
	clock_gettime(CLOCK_MONOTONIC, t);
}

/* ---- listings ---- */

void mb_listing_put(struct listing *l)
{
	if (l && __atomic_sub_fetch(&l->refs, 1, __ATOMIC_ACQ_REL) == 0) {
		free(l->msgs);
		free(l->names);
		free(l->by_name);
		free(l);
	}
}

struct listing *mb_listing_get(struct listing *l)
{
	if (l)
		__atomic_add_fetch(&l->refs, 1, __ATOMIC_RELAXED);
	return l;
}

const char *mb_msg_name(const struct listing *l, const struct msg *m)
{
	return l->names + m->name_off;
}

uint32_t mb_msg_size(const struct msg *m)
{
	return __atomic_load_n(&m->size, __ATOMIC_RELAXED);
}

struct msg *mb_listing_find(const struct listing *l, uint32_t uid)
{
	size_t lo = 0, hi = l ? l->count : 0;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (l->msgs[mid].uid == uid)
			return &l->msgs[mid];
		if (l->msgs[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* Accumulates a new listing while FETCH responses stream in. */
struct builder {
	struct listing *l;
	size_t cap, names_cap;
	enum names_mode mode;
	int err;
};

static int builder_init(struct builder *b, enum names_mode mode, uint32_t uidvalidity)
{
	memset(b, 0, sizeof(*b));
	b->mode = mode;
	b->l = calloc(1, sizeof(*b->l));
	if (!b->l)
		return -ENOMEM;
	b->l->refs = 1;
	b->l->uidvalidity = uidvalidity;
	return 0;
}

static int builder_push(struct builder *b, uint32_t uid, uint32_t size, int64_t date,
			uint8_t flags, const char *name, size_t name_len)
{
	struct listing *l = b->l;

	if (l->count == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 256;
		struct msg *m = realloc(l->msgs, cap * sizeof(*m));

		if (!m)
			return -ENOMEM;
		l->msgs = m;
		b->cap = cap;
	}
	if (l->names_len + name_len + 1 > b->names_cap) {
		size_t cap = b->names_cap ? b->names_cap * 2 : 16384;
		char *n;

		while (cap < l->names_len + name_len + 1)
			cap *= 2;
		n = realloc(l->names, cap);
		if (!n)
			return -ENOMEM;
		l->names = n;
		b->names_cap = cap;
	}
	memcpy(l->names + l->names_len, name, name_len);
	l->names[l->names_len + name_len] = '\0';
	l->msgs[l->count++] = (struct msg){ .uid = uid, .size = size, .date = date,
					    .name_off = (uint32_t)l->names_len, .flags = flags };
	l->names_len += name_len + 1;
	return 0;
}

static void builder_add_meta(const struct imap_meta *m, void *ctx)
{
	struct builder *b = ctx;
	char name[NAMES_MAX + 1];
	char *subject = NULL;
	int len;

	if (b->err)
		return;
	if (b->mode == NAMES_READABLE) {
		subject = names_subject_from_headers(m->headers ? m->headers : "", m->headers_len);
		if (!subject) {
			b->err = -ENOMEM;
			return;
		}
	}
	len = names_message_file(name, sizeof(name), b->mode, m->internaldate, subject, m->uid);
	free(subject);
	if (len < 0) {
		b->err = len;
		return;
	}
	b->err = builder_push(b, m->uid, m->size, m->internaldate, (uint8_t)m->flags, name, (size_t)len);
}

static int cmp_msg_uid(const void *a, const void *b)
{
	uint32_t x = ((const struct msg *)a)->uid, y = ((const struct msg *)b)->uid;

	return x < y ? -1 : x > y;
}

/* Sorts by UID and drops duplicates (a FETCH can repeat a message). */
struct name_ref {
	const char *name;
	uint32_t index;
};

static int cmp_name_ref(const void *a, const void *b)
{
	return strcmp(((const struct name_ref *)a)->name, ((const struct name_ref *)b)->name);
}

/* The order a shell glob (cat *) or ls walks a folder in, for read-ahead. */
static void index_names(struct listing *l)
{
	struct name_ref *refs = malloc((l->count + 1) * sizeof(*refs));

	free(l->by_name);
	l->by_name = refs ? malloc((l->count + 1) * sizeof(*l->by_name)) : NULL;
	if (l->by_name) {
		for (size_t i = 0; i < l->count; i++)
			refs[i] = (struct name_ref){ mb_msg_name(l, &l->msgs[i]), (uint32_t)i };
		qsort(refs, l->count, sizeof(*refs), cmp_name_ref);
		for (size_t i = 0; i < l->count; i++)
			l->by_name[i] = refs[i].index;
	}
	free(refs);
}

static void builder_finish(struct builder *b)
{
	struct listing *l = b->l;
	size_t out = 0;

	if (l->count > 1)
		qsort(l->msgs, l->count, sizeof(*l->msgs), cmp_msg_uid);
	for (size_t i = 0; i < l->count; i++)
		if (out == 0 || l->msgs[out - 1].uid != l->msgs[i].uid)
			l->msgs[out++] = l->msgs[i];
	l->count = out;
	index_names(l);
}

/* ---- syncing one folder ---- */

struct sync_job {
	struct mailbox *mb;
	struct listing *old;	/* may be NULL */
	struct listing *result;
};

static int sync_full(struct imap_session *s, const struct imap_folder_state *st, struct builder *b)
{
	for (uint32_t lo = 1; lo <= st->exists; lo += FETCH_CHUNK) {
		uint32_t hi = st->exists - lo < FETCH_CHUNK ? st->exists : lo + FETCH_CHUNK - 1;
		int r = imap_fetch_meta(s, false, lo, hi, builder_add_meta, b);

		if (r < 0)
			return r;
		if (b->err)
			return b->err;
	}
	return 0;
}

static bool uid_in(const uint32_t *uids, size_t n, uint32_t uid)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (uids[mid] == uid)
			return true;
		if (uids[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/* Keeps the old messages that still exist, then fetches the new ones. */
static int sync_incremental(struct imap_session *s, const struct imap_folder_state *st,
			    const struct listing *old, struct builder *b)
{
	uint32_t top = old->count ? old->msgs[old->count - 1].uid : 0;
	uint32_t *uids = NULL;
	size_t nuids = 0;
	int r;

	r = imap_fetch_meta(s, true, top + 1, 0, builder_add_meta, b);
	if (r < 0 || b->err)
		return r < 0 ? r : b->err;
	/* "top+1:*" always matches the last message, even an old one */
	size_t added = 0;
	for (size_t i = 0; i < b->l->count; i++)
		added += b->l->msgs[i].uid > top;
	if (old->count + added != st->exists) {
		r = imap_search_all(s, &uids, &nuids);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < old->count && !b->err; i++) {
		const struct msg *m = &old->msgs[i];
		const char *name = mb_msg_name(old, m);

		if (uids && !uid_in(uids, nuids, m->uid))
			continue;
		b->err = builder_push(b, m->uid, mb_msg_size(m), m->date, m->flags, name, strlen(name));
	}
	free(uids);
	return b->err;
}

static int sync_fn(struct imap_session *s, const struct imap_folder_state *st, void *ctx)
{
	struct sync_job *job = ctx;
	struct builder b;
	int r;

	r = builder_init(&b, job->mb->opt.names, st->uidvalidity);
	if (r < 0)
		return r;
	if (job->old && job->old->uidvalidity == st->uidvalidity)
		r = sync_incremental(s, st, job->old, &b);
	else
		r = sync_full(s, st, &b);
	if (r < 0) {
		mb_listing_put(b.l);
		return r;
	}
	builder_finish(&b);
	job->result = b.l;
	return 0;
}

/* ---- listings on disk: a remount syncs from here, not from nothing ---- */

#define LISTING_MAGIC 0x314c5453464d4931ull	/* "1IMFSTL1" */
#define PACKED_MSG 21	/* uid, size, date, name_off, flags */

struct listing_header {
	uint64_t magic;
	uint32_t uidvalidity;
	uint32_t crc;		/* of everything after the header */
	uint64_t count;
	uint64_t names_len;
};

static char *listing_path(const struct mailbox *mb, const struct folder *f)
{
	char *path;

	if (!mb->opt.cache_dir)
		return NULL;
	path = malloc(strlen(mb->opt.cache_dir) + 40);
	if (path)
		sprintf(path, "%s/folders/%016" PRIx64, mb->opt.cache_dir, mb_folder_key(mb, f));
	return path;
}

static void pack_msg(unsigned char *p, const struct msg *m)
{
	uint32_t size = mb_msg_size(m);

	memcpy(p, &m->uid, 4);
	memcpy(p + 4, &size, 4);
	memcpy(p + 8, &m->date, 8);
	memcpy(p + 16, &m->name_off, 4);
	p[20] = m->flags;
}

static void unpack_msg(const unsigned char *p, struct msg *m)
{
	memset(m, 0, sizeof(*m));
	memcpy(&m->uid, p, 4);
	memcpy(&m->size, p + 4, 4);
	memcpy(&m->date, p + 8, 8);
	memcpy(&m->name_off, p + 16, 4);
	m->flags = p[20];
}

static void save_listing(const struct mailbox *mb, const struct folder *f, const struct listing *l)
{
	struct listing_header h = { LISTING_MAGIC, l->uidvalidity, 0, l->count, l->names_len };
	size_t body = l->count * PACKED_MSG + l->names_len;
	unsigned char *buf = malloc(sizeof(h) + body);
	char *path = listing_path(mb, f), *slash;

	if (!buf || !path)
		goto out;
	for (size_t i = 0; i < l->count; i++)
		pack_msg(buf + sizeof(h) + i * PACKED_MSG, &l->msgs[i]);
	if (l->names_len)	/* an empty folder has no names buffer at all */
		memcpy(buf + sizeof(h) + l->count * PACKED_MSG, l->names, l->names_len);
	h.crc = cache_crc32(0, buf + sizeof(h), body);
	memcpy(buf, &h, sizeof(h));
	slash = strrchr(path, '/');
	*slash = '\0';
	files_make_private_dirs(path);
	*slash = '/';
	/* not synced: the CRC catches a file a crash left half written */
	if (files_replace(path, buf, sizeof(h) + body, false) < 0)
		log_debug("cannot save the listing of %s", f->path);
out:
	free(buf);
	free(path);
}

static struct listing *load_listing(const struct mailbox *mb, const struct folder *f)
{
	struct listing_header h;
	struct listing *l = NULL;
	unsigned char *buf = NULL;
	char *path = listing_path(mb, f);
	FILE *in = path ? fopen(path, "re") : NULL;
	size_t body;

	if (!in || fread(&h, sizeof(h), 1, in) != 1 || h.magic != LISTING_MAGIC ||
	    h.count > (1u << 26) || h.names_len > (1u << 30))
		goto out;
	body = h.count * PACKED_MSG + h.names_len;
	buf = malloc(body + 1);
	l = calloc(1, sizeof(*l));
	if (!buf || !l || fread(buf, 1, body, in) != body || cache_crc32(0, buf, body) != h.crc)
		goto bad;
	l->msgs = malloc((h.count + 1) * sizeof(*l->msgs));
	l->names = malloc(h.names_len + 1);
	if (!l->msgs || !l->names)
		goto bad;
	for (size_t i = 0; i < h.count; i++) {
		unpack_msg(buf + i * PACKED_MSG, &l->msgs[i]);
		if (l->msgs[i].name_off >= h.names_len)
			goto bad;
	}
	memcpy(l->names, buf + h.count * PACKED_MSG, h.names_len);
	if (h.names_len && l->names[h.names_len - 1] != '\0')
		goto bad;
	l->refs = 1;
	l->uidvalidity = h.uidvalidity;
	l->count = h.count;
	l->names_len = h.names_len;
	index_names(l);
	goto out;
bad:
	log_warn("ignoring a damaged saved listing of %s", f->path);
	if (l) {
		free(l->msgs);
		free(l->names);
		free(l);
	}
	l = NULL;
out:
	if (in)
		fclose(in);
	free(buf);
	free(path);
	return l;
}

static bool listing_changed(const struct listing *old, const struct listing *l)
{
	return !old || old->uidvalidity != l->uidvalidity || old->count != l->count ||
	       (l->count && old->msgs[old->count - 1].uid != l->msgs[l->count - 1].uid) ||
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

void mb_mark_stale(struct folder *f)
{
	pthread_mutex_lock(&f->lock);
	f->synced_at = (struct timespec){ 0 };
	pthread_mutex_unlock(&f->lock);
}

bool mb_is_removed_locked(const struct folder *f, uint32_t uid)
{
	for (size_t i = 0; i < f->nremoved; i++)
		if (f->removed[i] == uid)
			return true;
	return false;
}

void mb_forget_message(struct folder *f, uint32_t uid)
{
	uint32_t *v;

	pthread_mutex_lock(&f->lock);
	if (!mb_is_removed_locked(f, uid)) {
		v = realloc(f->removed, (f->nremoved + 1) * sizeof(*v));
		if (v) {
			f->removed = v;
			f->removed[f->nremoved++] = uid;
		} else {
			/* cannot hide it: make the next use ask the server instead */
			f->synced_at = (struct timespec){ 0 };
		}
	}
	pthread_mutex_unlock(&f->lock);
}

void mb_add_alias(struct folder *f, const char *name, uint32_t uid)
{
	char *copy = strdup(name);
	struct alias *v;

	if (!copy)
		return;
	pthread_mutex_lock(&f->lock);
	if (f->naliases == MB_MAX_ALIASES) {
		free(f->aliases[0].name);
		memmove(f->aliases, f->aliases + 1, (f->naliases - 1) * sizeof(*f->aliases));
		f->naliases--;
	}
	v = realloc(f->aliases, (f->naliases + 1) * sizeof(*v));
	if (v) {
		f->aliases = v;
		f->aliases[f->naliases++] = (struct alias){ copy, uid };
	} else {
		free(copy);
	}
	pthread_mutex_unlock(&f->lock);
}

/* Returns a referenced listing no older than max_age seconds (refreshing
 * it if needed), or NULL with *err set. */
struct listing *mb_listing(struct mailbox *mb, struct folder *f, double max_age, int *err)
{
	struct sync_job job = { .mb = mb };
	struct listing *l;
	int r;

	*err = 0;
	if (f->noselect || !f->server) {
		*err = -ENOENT;
		return NULL;
	}
	pthread_mutex_lock(&f->lock);
	while (f->syncing)
		pthread_cond_wait(&f->synced, &f->lock);
	if (f->listing && mb_age(&f->synced_at) < max_age) {
		l = mb_listing_get(f->listing);
		pthread_mutex_unlock(&f->lock);
		return l;
	}
	f->syncing = true;
	job.old = mb_listing_get(f->listing);
	if (!job.old && !f->disk_tried) {
		f->disk_tried = true;
		job.old = load_listing(mb, f);
	}
	pthread_mutex_unlock(&f->lock);

	r = pool_run(mb->pool, f->server, POOL_FRESH_SELECT, sync_fn, &job);
	if (r == 0 && job.old && job.old->uidvalidity != job.result->uidvalidity) {
		log_info("folder %s: UIDVALIDITY changed, dropping its cache", f->path);
		cache_drop_folder(mb->cache, mb_folder_key(mb, f));
	}
	if (r == 0 && listing_changed(job.old, job.result))
		save_listing(mb, f, job.result);

	pthread_mutex_lock(&f->lock);
	f->syncing = false;
	if (r == 0) {
		mb_listing_put(f->listing);
		f->listing = job.result;
		mb_stamp(&f->synced_at);
		prune_removed_locked(f);
	} else {
		log_warn("cannot list folder %s: %s", f->path, strerror(-r));
	}
	l = mb_listing_get(f->listing);
	pthread_cond_broadcast(&f->synced);
	pthread_mutex_unlock(&f->lock);
	mb_listing_put(job.old);
	if (r < 0 && !l)
		*err = r;
	if (r < 0 && l) {
		/* serve the last good listing rather than fail the directory */
		*err = 0;
	}
	return l;
}


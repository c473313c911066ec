/* listing.c - owns the per-folder message snapshots: immutable, refcounted
 * listings built from streamed FETCH responses, refreshed incrementally
 * (new UIDs, then the UID set when something vanished), plus the small
 * mutable overlays (removed UIDs, aliases) that keep a listing right between
 * a change made through the mount and the next sync. */
#include "mailbox_p.h"
#include "inode.h"
#include "util/log.h"
#include "cache/cache_disk.h"
#include "util/files.h"

#include <inttypes.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FETCH_CHUNK 5000	/* messages per listing FETCH: bounds libetpan's buffer */
#define MAX_RELOAD_CHANGES 20000	/* beyond, a re-created folder is just invalidated */

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
	/* another client's flag change arrives as an unsolicited FETCH with a
	 * UID (CONDSTORE): it is no listing data */
	if (!m->has_size || (!m->has_date && b->mode != NAMES_UID))
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

/* One sync of a folder.  It may take several sessions: a response libetpan
 * cannot parse kills the session, so the FETCH is split in halves on a new
 * one until the message at fault is alone, and that one is listed by UID and
 * size only (or left out), so one bad message never hides a folder. */
struct sync_job {
	struct mailbox *mb;
	struct folder *f;
	struct listing *old;	/* may be NULL */
	struct listing *result;
	struct builder b;	/* a full sync in progress */
	bool started;
	bool incremental_failed;	/* fall back to a full sync */
	uint32_t next;		/* full sync: next message number to fetch */
	uint32_t chunk;		/* messages per FETCH now */
	uint32_t bad;		/* a message number whose data cannot be parsed */
};

#define SYNC_AGAIN (-EAGAIN)	/* the job goes on in another session */

static void add_bare(const struct imap_meta *m, void *ctx)
{
	struct builder *b = ctx;
	enum names_mode mode = b->mode;

	b->mode = NAMES_UID;	/* its date and subject could not be read */
	builder_add_meta(m, b);
	b->mode = mode;
}

static int sync_full(struct imap_session *s, const struct imap_folder_state *st, struct sync_job *job)
{
	struct builder *b = &job->b;
	int r;

	if (job->bad) {
		/* alone it failed: try its UID and size, else leave it out */
		uint32_t bad = job->bad;

		job->bad = 0;
		if (imap_fetch_uid_size(s, bad, add_bare, b) < 0) {
			log_warn("folder %s: message %u cannot be listed (unparsable); left out",
				 job->f->path, bad);
			if (imap_dead(s))
				return SYNC_AGAIN;
		} else {
			log_warn("folder %s: message %u has unparsable listing data; named by UID",
				 job->f->path, bad);
		}
	}
	while (job->next <= st->exists) {
		uint32_t lo = job->next;
		uint32_t hi = st->exists - lo < job->chunk ? st->exists : lo + job->chunk - 1;

		imap_renew_operation(s);	/* each chunk is bounded, not the whole folder */
		r = imap_fetch_meta(s, false, lo, hi, builder_add_meta, b);
		if (r < 0 && imap_parse_failed(s)) {
			if (lo == hi) {
				job->bad = lo;
				job->next = lo + 1;
			} else {
				job->chunk = (hi - lo + 1) / 2;
			}
			return SYNC_AGAIN;
		}
		if (r < 0)
			return r;
		if (b->err)
			return b->err;
		job->next = hi + 1;
		if (job->chunk < FETCH_CHUNK)
			job->chunk *= 2;
	}
	return 0;
}

struct flag_change {
	uint32_t uid;
	uint8_t flags;
};

struct flag_changes {
	struct flag_change *v;
	size_t n, cap;
	int err;
};

static void add_flag_change(const struct imap_meta *m, void *ctx)
{
	struct flag_changes *fc = ctx;

	if (fc->err)
		return;
	if (fc->n == fc->cap) {
		size_t cap = fc->cap ? fc->cap * 2 : 64;
		struct flag_change *v = realloc(fc->v, cap * sizeof(*v));

		if (!v) {
			fc->err = -ENOMEM;
			return;
		}
		fc->v = v;
		fc->cap = cap;
	}
	fc->v[fc->n++] = (struct flag_change){ m->uid, (uint8_t)m->flags };
}

static int cmp_flag_change(const void *a, const void *b)
{
	uint32_t x = ((const struct flag_change *)a)->uid, y = ((const struct flag_change *)b)->uid;

	return x < y ? -1 : x > y;
}

/* The flags a message has now: changed since the old listing, or as before. */
static uint8_t current_flags(const struct flag_changes *fc, const struct msg *m)
{
	size_t lo = 0, hi = fc->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (fc->v[mid].uid == m->uid)
			return (uint8_t)((m->flags & ~0x1fu) | fc->v[mid].flags);
		if (fc->v[mid].uid < m->uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return m->flags;
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

/* Keeps the old messages that still exist (with their flags as CONDSTORE
 * reports them), then fetches the new ones.  Nothing at all is fetched when
 * HIGHESTMODSEQ, UIDNEXT and EXISTS say nothing changed; with QRESYNC the
 * expunged UIDs come as VANISHED, else the UID list is fetched when the
 * message count says something went. */
static int sync_incremental(struct imap_session *s, const struct imap_folder_state *st,
			    const struct listing *old, struct builder *b)
{
	uint32_t top = old->count ? old->msgs[old->count - 1].uid : 0;
	struct flag_changes fc = { 0 };
	uint32_t *uids = NULL, *vanished = NULL;
	size_t nuids = 0, nvanished = 0, added = 0, gone = 0;
	bool vanished_known = false;
	int r = 0;

	/* "top+1:*" always matches the last message: ask only when there is news */
	if (!st->uidnext || st->uidnext > top + 1) {
		r = imap_fetch_meta(s, true, top + 1, 0, builder_add_meta, b);
		if (r < 0 || b->err)
			return r < 0 ? r : b->err;
	}
	for (size_t i = 0; i < b->l->count; i++)
		added += b->l->msgs[i].uid > top;
	if (st->highestmodseq && old->modseq && st->highestmodseq != old->modseq && top) {
		r = imap_fetch_changes(s, top, old->modseq, add_flag_change, &fc, &vanished, &nvanished);
		if (r < 0)
			goto out;
		vanished_known = r == 0;
		r = fc.err;
		if (r == 0 && fc.n > 1)
			qsort(fc.v, fc.n, sizeof(*fc.v), cmp_flag_change);
	}
	for (size_t i = 0; vanished_known && i < old->count; i++)
		gone += uid_in(vanished, nvanished, old->msgs[i].uid);
	if (r == 0 && (vanished_known ? old->count - gone + added : old->count + added) != st->exists) {
		free(vanished);
		vanished = NULL;
		nvanished = 0;
		r = imap_search_all(s, &uids, &nuids);
	}
	for (size_t i = 0; r == 0 && i < old->count && !b->err; i++) {
		const struct msg *m = &old->msgs[i];
		const char *name = mb_msg_name(old, m);

		if ((uids && !uid_in(uids, nuids, m->uid)) || uid_in(vanished, nvanished, m->uid))
			continue;
		b->err = builder_push(b, m->uid, mb_msg_size(m), m->date, current_flags(&fc, m),
				      name, strlen(name));
	}
out:
	free(uids);
	free(vanished);
	free(fc.v);
	return r < 0 ? r : b->err;
}

static bool unchanged(const struct imap_folder_state *st, const struct listing *old)
{
	uint32_t top = old->count ? old->msgs[old->count - 1].uid : 0;

	return st->highestmodseq && st->highestmodseq == old->modseq &&
	       st->exists == old->count && st->uidnext && st->uidnext <= top + 1;
}

static int sync_fn(struct imap_session *s, const struct imap_folder_state *st, void *ctx)
{
	struct sync_job *job = ctx;
	int r;

	if (job->old && !job->incremental_failed && job->old->uidvalidity == st->uidvalidity) {
		struct builder b;

		if (unchanged(st, job->old)) {
			job->result = mb_listing_get(job->old);
			return 0;
		}
		if ((r = builder_init(&b, job->mb->opt.names, st->uidvalidity)) < 0)
			return r;
		r = sync_incremental(s, st, job->old, &b);
		if (r < 0) {
			mb_listing_put(b.l);
			if (imap_parse_failed(s)) {
				job->incremental_failed = true;
				return SYNC_AGAIN;
			}
			return r;
		}
		b.l->modseq = st->highestmodseq;
		builder_finish(&b);
		job->result = b.l;
		return 0;
	}
	if (!job->started || job->b.l->uidvalidity != st->uidvalidity) {
		if (job->started)
			mb_listing_put(job->b.l);
		job->started = false;
		if ((r = builder_init(&job->b, job->mb->opt.names, st->uidvalidity)) < 0)
			return r;
		job->started = true;
		job->next = 1;
		job->chunk = FETCH_CHUNK;
		job->bad = 0;
		/* the folder's modseq from before the FETCH: later changes show next time */
		job->b.l->modseq = st->highestmodseq;
	}
	r = sync_full(s, st, job);
	if (r < 0)
		return r;
	builder_finish(&job->b);
	job->result = job->b.l;
	job->started = false;
	return 0;
}

/* Runs the job to its end, session after session while it asks for more. */
static int run_sync(struct mailbox *mb, struct folder *f, struct sync_job *job)
{
	int r, rounds = 0;

	do
		r = pool_run(mb->pool, f->server, POOL_FRESH_SELECT, sync_fn, job);
	while (r == SYNC_AGAIN && ++rounds < 200);
	if (job->started)
		mb_listing_put(job->b.l);
	return r == SYNC_AGAIN ? -EIO : r;
}

/* ---- listings on disk: a remount syncs from here, not from nothing ---- */

#define LISTING_MAGIC 0x334c5453464d4931ull	/* "1IMFSTL3": names without format characters */
#define PACKED_MSG 21	/* uid, size, date, name_off, flags */

struct listing_header {
	uint64_t magic;
	uint32_t uidvalidity;
	uint32_t crc;		/* of everything after the header */
	uint64_t count;
	uint64_t names_len;
	uint64_t modseq;
};

/* cache_dir/folders as a descriptor, or -errno. */
static int listings_dir(const struct mailbox *mb, bool create)
{
	if (!mb->opt.cache_dir)
		return -ENOENT;
	return files_subdir_at(files_dir_fd(mb->opt.cache_dir), "folders", create);
}

static void listing_name(const struct mailbox *mb, const struct folder *f, char name[17])
{
	snprintf(name, 17, "%016" PRIx64, mb_folder_key(mb, f));
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
	struct listing_header h = { LISTING_MAGIC, l->uidvalidity, 0, l->count, l->names_len,
				    l->modseq };
	size_t body = l->count * PACKED_MSG + l->names_len;
	unsigned char *buf = malloc(sizeof(h) + body);
	char name[17];
	int dfd = -1;

	if (!buf || (dfd = listings_dir(mb, true)) < 0)
		goto out;
	for (size_t i = 0; i < l->count; i++)
		pack_msg(buf + sizeof(h) + i * PACKED_MSG, &l->msgs[i]);
	if (l->names_len)	/* an empty folder has no names buffer at all */
		memcpy(buf + sizeof(h) + l->count * PACKED_MSG, l->names, l->names_len);
	h.crc = cache_crc32(0, buf + sizeof(h), body);
	memcpy(buf, &h, sizeof(h));
	listing_name(mb, f, name);
	/* not synced: the CRC catches a file a crash left half written */
	if (files_replace_at(dfd, name, buf, sizeof(h) + body, false) < 0)
		log_debug("cannot save the listing of %s", f->path);
out:
	if (dfd >= 0)
		close(dfd);
	free(buf);
}

/* The saved listing of f as a stream, or NULL. */
static FILE *open_listing(const struct mailbox *mb, const struct folder *f)
{
	char name[17];
	int dfd = listings_dir(mb, false), fd;
	FILE *in;

	if (dfd < 0)
		return NULL;
	listing_name(mb, f, name);
	fd = files_open_at(dfd, name);
	close(dfd);
	in = fd >= 0 ? fdopen(fd, "r") : NULL;
	if (!in && fd >= 0)
		close(fd);
	return in;
}

static struct listing *load_listing(const struct mailbox *mb, const struct folder *f)
{
	struct listing_header h;
	struct listing *l = NULL;
	unsigned char *buf = NULL;
	FILE *in = open_listing(mb, f);
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
	l->modseq = h.modseq;
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
		f->aliases[f->naliases++] = (struct alias){ .name = copy, .uid = uid };
	} else {
		free(copy);
	}
	pthread_mutex_unlock(&f->lock);
}

/* Tells the change hook what a sync found: messages that came, went, or
 * whose flags changed, except those the mount itself moved (the kernel knows). */
static void report_changes(struct mailbox *mb, struct folder *f, const struct listing *old,
			   const struct listing *l, const uint32_t *known, size_t nknown)
{
	struct mailbox_change *v = NULL;
	size_t n = 0, cap = 0, i = 0, j = 0;

	bool reloaded;

	if (!mb->change_hook || !old || old == l)
		return;
	reloaded = old->uidvalidity != l->uidvalidity;
	if (reloaded && old->count + l->count > MAX_RELOAD_CHANGES) {
		mb->change_hook(&(struct mailbox_change){ .kind = MAILBOX_CHANGE_RELOADED,
							  .folder = f->id, .name = "" },
				1, mb->change_ctx);
		return;
	}
	/* a reloaded folder: every old message went, every new one came (the
	 * kernel must drop the old names and pages even where the UIDs match) */
	while (i < old->count || j < l->count) {
		const struct msg *a = i < old->count ? &old->msgs[i] : NULL;
		const struct msg *b = j < l->count ? &l->msgs[j] : NULL;
		struct mailbox_change c = { .folder = f->id };

		if (a && (reloaded || !b || a->uid < b->uid)) {
			c = (struct mailbox_change){ MAILBOX_CHANGE_REMOVED, f->id, a->uid, mb_msg_name(old, a),
						     mb_msg_size(a), a->date };
			i++;
		} else if (b && (!a || b->uid < a->uid)) {
			c = (struct mailbox_change){ MAILBOX_CHANGE_ADDED, f->id, b->uid, mb_msg_name(l, b),
						     mb_msg_size(b), b->date };
			j++;
		} else {
			if ((a->flags & 0x1f) != (b->flags & 0x1f))
				c = (struct mailbox_change){ MAILBOX_CHANGE_FLAGS, f->id, b->uid,
							     mb_msg_name(l, b), mb_msg_size(b), b->date };
			i++;
			j++;
		}
		if (!c.name || (!reloaded && c.kind != MAILBOX_CHANGE_FLAGS && uid_in(known, nknown, c.uid)))
			continue;
		if (n == cap) {
			struct mailbox_change *nv;

			cap = cap ? cap * 2 : 16;
			nv = realloc(v, cap * sizeof(*v));
			if (!nv)
				break;
			v = nv;
		}
		v[n++] = c;
	}
	if (n)
		mb->change_hook(v, n, mb->change_ctx);
	free(v);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
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
	qsort(v, *n, sizeof(*v), cmp_u32);
	return v;
}

bool mb_offline_refused(struct mailbox *mb)
{
	return mb->opt.offline_fail && pool_is_down(mb->pool);
}

/* Returns a referenced listing no older than max_age seconds (refreshing
 * it if needed), or NULL with *err set. */
struct listing *mb_listing(struct mailbox *mb, struct folder *f, double max_age, int *err)
{
	struct sync_job job = { .mb = mb, .f = f };
	struct listing *l, *reported = NULL;
	uint32_t *known = NULL;
	size_t nknown = 0;
	bool had_listing;
	int r;

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
	while (f->syncing)
		pthread_cond_wait(&f->synced, &f->lock);
	if (f->listing && mb_age(&f->synced_at) < max_age) {
		l = mb_listing_get(f->listing);
		pthread_mutex_unlock(&f->lock);
		return l;
	}
	f->syncing = true;
	had_listing = f->listing != NULL;
	job.old = mb_listing_get(f->listing);
	if (!job.old && !f->disk_tried) {
		f->disk_tried = true;
		job.old = load_listing(mb, f);
	}
	pthread_mutex_unlock(&f->lock);

	r = run_sync(mb, f, &job);
	if (r == 0 && job.old && job.old->uidvalidity != job.result->uidvalidity) {
		log_info("folder %s: UIDVALIDITY changed, dropping its cache", f->path);
		cache_drop_folder(mb->cache, mb_folder_key(mb, f));
		/* the kernel may hold pages of the old messages under these inodes */
		__atomic_store_n(&f->reloaded, true, __ATOMIC_RELAXED);
	}
	if (r == 0 && job.result != job.old &&
	    (listing_changed(job.old, job.result) || job.old->modseq != job.result->modseq))
		save_listing(mb, f, job.result);

	pthread_mutex_lock(&f->lock);
	f->syncing = false;
	if (r == 0) {
		f->last_sync = time(NULL);
		if (had_listing && f->listing != job.result) {
			reported = mb_listing_get(f->listing);
			known = known_changes_locked(f, &nknown);
		}
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
	if (reported)
		report_changes(mb, f, reported, l, known, nknown);
	mb_listing_put(reported);
	free(known);
	mb_listing_put(job.old);
	if (r == -ENOENT) {
		/* the server would not open it: deleted by someone else (and
		 * maybe re-created: the next use must ask again) */
		mb_mark_stale(f);
		mb_listing_put(l);
		mb_refresh_tree(mb, 0);
		*err = r;
		return NULL;
	}
	if (r < 0 && !l)
		*err = r;
	if (r < 0 && l) {
		/* serve the last good listing rather than fail the directory */
		*err = 0;
	}
	return l;
}

/* listing.c - owns the per-folder message snapshots (listing.h): their
 * references, lookups and building, plus the small mutable overlays of a
 * folder (removed UIDs, aliases) that keep a listing right between a change
 * made through the mount and the next sync.  The sync with the server is
 * listing_sync.c's, the copy on disk listing_store.c's, what a sync found
 * listing_diff.c's, and when a folder syncs listing_refresh.c's. */
#include "mailbox_p.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define BUILDER_FIRST_MSGS 256    /* a builder's first allocations, */
#define BUILDER_FIRST_NAMES 16384 /* doubled as messages come */

/* ---- time ---- */

double mb_age(const struct timespec *t)
{
	struct timespec now;

	if (t->tv_sec == 0 && t->tv_nsec == 0)
		return MB_AGE_NEVER;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t->tv_sec) + (double)(now.tv_nsec - t->tv_nsec) / 1e9;
}

void mb_stamp(struct timespec *t)
{
	clock_gettime(CLOCK_MONOTONIC, t);
}

/* ---- listings ---- */

struct listing *listing_new(uint32_t uidvalidity, uint64_t modseq)
{
	struct listing *l = calloc(1, sizeof(*l));

	if (l) {
		l->refs = 1;
		l->uidvalidity = uidvalidity;
		l->modseq = modseq;
	}
	return l;
}

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

int listing_cmp_uid(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

uint8_t mb_msg_flags(const struct msg *m)
{
	return __atomic_load_n(&m->flags, __ATOMIC_RELAXED);
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

uint32_t listing_top_uid(const struct listing *l)
{
	return l->count ? l->msgs[l->count - 1].uid : 0;
}

bool listing_uid_in(const uint32_t *uids, size_t n, uint32_t uid)
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

/* The listing cmp_by_name sorts for: qsort has no context argument (and
 * POSIX 2008 no qsort_r); one sort per thread at a time. */
static _Thread_local const struct listing *sorting;

static int cmp_by_name(const void *a, const void *b)
{
	const struct msg *x = &sorting->msgs[*(const uint32_t *)a], *y = &sorting->msgs[*(const uint32_t *)b];

	return strcmp(mb_msg_name(sorting, x), mb_msg_name(sorting, y));
}

/* The order a shell glob (cat *) or ls walks a folder in, for read-ahead.
 * The indices themselves are sorted: an array of name pointers beside them
 * (and qsort's copy of it) took 32 bytes a message, 32 MB at the peak of
 * listing a million. */
void listing_index_names(struct listing *l)
{
	free(l->by_name);
	l->by_name = malloc((l->count + 1) * sizeof(*l->by_name));
	if (!l->by_name)
		return;
	for (size_t i = 0; i < l->count; i++)
		l->by_name[i] = (uint32_t)i;
	sorting = l;
	qsort(l->by_name, l->count, sizeof(*l->by_name), cmp_by_name);
	sorting = NULL;
}

/* ---- building one ---- */

int listing_builder_init(struct listing_builder *b, enum names_mode mode, uint32_t uidvalidity)
{
	memset(b, 0, sizeof(*b));
	b->mode = mode;
	b->l = listing_new(uidvalidity, 0);
	return b->l ? 0 : -ENOMEM;
}

static int grow_msgs(struct listing_builder *b)
{
	size_t cap = b->cap ? b->cap * 2 : BUILDER_FIRST_MSGS;
	struct msg *m = realloc(b->l->msgs, cap * sizeof(*m));

	if (!m)
		return -ENOMEM;
	b->l->msgs = m;
	b->cap = cap;
	return 0;
}

static int grow_names(struct listing_builder *b, size_t need)
{
	size_t cap = b->names_cap ? b->names_cap * 2 : BUILDER_FIRST_NAMES;
	char *n;

	while (cap < need)
		cap *= 2;
	n = realloc(b->l->names, cap);
	if (!n)
		return -ENOMEM;
	b->l->names = n;
	b->names_cap = cap;
	return 0;
}

int listing_builder_push(struct listing_builder *b, uint32_t uid, uint32_t size, int64_t date, uint8_t flags,
			 const char *name, size_t name_len)
{
	struct listing *l = b->l;

	if (l->count >= LISTING_MAX_MESSAGES)
		return -EFBIG;
	if (l->count == b->cap && grow_msgs(b) < 0)
		return -ENOMEM;
	if (l->names_len + name_len + 1 > b->names_cap && grow_names(b, l->names_len + name_len + 1) < 0)
		return -ENOMEM;
	memcpy(l->names + l->names_len, name, name_len);
	l->names[l->names_len + name_len] = '\0';
	l->msgs[l->count++] = (struct msg){
		.uid = uid, .size = size, .date = date, .name_off = (uint32_t)l->names_len, .flags = flags
	};
	l->names_len += name_len + 1;
	return 0;
}

static int cmp_msg_uid(const void *a, const void *b)
{
	uint32_t x = ((const struct msg *)a)->uid, y = ((const struct msg *)b)->uid;

	return x < y ? -1 : x > y;
}

void listing_builder_finish(struct listing_builder *b)
{
	struct listing *l = b->l;
	size_t out = 0;
	bool sorted = true;

	/* a FETCH answers in UID order as a rule: then qsort's copy of the
	 * array (24 MB for a million messages) is not needed */
	for (size_t i = 1; i < l->count && sorted; i++)
		sorted = l->msgs[i - 1].uid <= l->msgs[i].uid;
	if (!sorted)
		qsort(l->msgs, l->count, sizeof(*l->msgs), cmp_msg_uid);
	/* a FETCH can repeat a message */
	for (size_t i = 0; i < l->count; i++)
		if (out == 0 || l->msgs[out - 1].uid != l->msgs[i].uid)
			l->msgs[out++] = l->msgs[i];
	l->count = out;
	listing_index_names(l);
}

void listing_builder_abandon(struct listing_builder *b)
{
	mb_listing_put(b->l);
	b->l = NULL;
}

/* ---- overlays: what the mount changed since the last sync ---- */

static void mark_stale_locked(struct folder *f)
{
	f->synced_at = (struct timespec){ 0 };
	f->stale_marks++;
}

void mb_mark_stale(struct folder *f)
{
	pthread_mutex_lock(&f->lock);
	mark_stale_locked(f);
	pthread_mutex_unlock(&f->lock);
}

bool mb_is_removed_locked(const struct folder *f, uint32_t uid)
{
	for (size_t i = 0; i < f->nremoved; i++)
		if (f->removed[i] == uid)
			return true;
	return false;
}

struct listing *mb_listing_known(struct folder *f, double max_age)
{
	struct listing *l = NULL;

	pthread_mutex_lock(&f->lock);
	if (f->listing && mb_age(&f->fetched_at) < max_age)
		l = mb_listing_get(f->listing);
	pthread_mutex_unlock(&f->lock);
	return l;
}

void mb_note_arrival(struct folder *f, uint32_t validity, uint32_t uid)
{
	pthread_mutex_lock(&f->lock);
	/* only an arrival at the next UID itself moves it on: above a gap,
	 * another client's messages may hold the UIDs skipped, and a lookup of
	 * one must not be answered from a listing that cannot show it */
	if (validity == f->next_validity && uid == f->next_uid)
		f->next_uid = uid + 1;
	pthread_mutex_unlock(&f->lock);
}

uint32_t mb_known_next_uid(struct mailbox *mb, struct folder *f, uint32_t *validity)
{
	uint32_t next = 0;

	pthread_mutex_lock(&f->lock);
	if (f->next_uid && mb_age(&f->next_at) < mb->opt.dir_cache) {
		next = f->next_uid;
		*validity = f->next_validity;
	}
	pthread_mutex_unlock(&f->lock);
	return next;
}

void mb_forget_message_locked(struct folder *f, uint32_t uid)
{
	uint32_t *v;

	if (mb_is_removed_locked(f, uid))
		return;
	v = realloc(f->removed, (f->nremoved + 1) * sizeof(*v));
	if (v) {
		f->removed = v;
		f->removed[f->nremoved++] = uid;
	} else {
		/* cannot hide it: make the next use ask the server instead */
		mark_stale_locked(f);
	}
}

void mb_forget_message(struct folder *f, uint32_t uid)
{
	pthread_mutex_lock(&f->lock);
	mb_forget_message_locked(f, uid);
	pthread_mutex_unlock(&f->lock);
}

void mb_unforget_message(struct folder *f, uint32_t uid)
{
	size_t out = 0;

	pthread_mutex_lock(&f->lock);
	for (size_t i = 0; i < f->nremoved; i++)
		if (f->removed[i] != uid)
			f->removed[out++] = f->removed[i];
	f->nremoved = out;
	pthread_mutex_unlock(&f->lock);
	mb_mark_stale(f);
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

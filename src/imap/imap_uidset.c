/* imap_uidset.c - owns UID arithmetic with no I/O: the order of UIDs, the
 * expansion of a UID set a server sent (VANISHED) into the UIDs it names,
 * the weeding of UID 0 out of a list to send, the UID set of ranges a
 * command sends for a list of UIDs, and the pairing of the two sets of a
 * COPYUID.  Pure functions. */
#include "imap_p.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int imap_cmp_uid(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

size_t imap_uids_drop_zero(uint32_t *uids, size_t n)
{
	size_t out = 0;

	for (size_t i = 0; i < n; i++)
		if (uids[i])
			uids[out++] = uids[i];
	return out;
}

struct uid_vec {
	uint32_t *v;
	size_t count, cap;
};

static int push_uid(struct uid_vec *uv, uint32_t uid)
{
	if (uv->count == IMAP_UIDSET_MAX)
		return -E2BIG;
	if (uv->count == uv->cap) {
		size_t ncap = uv->cap ? uv->cap * 2 : 64;
		uint32_t *nv = realloc(uv->v, ncap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		uv->v = nv;
		uv->cap = ncap;
	}
	uv->v[uv->count++] = uid;
	return 0;
}

static int push_range(struct uid_vec *uv, uint32_t lo, uint32_t hi, uint32_t limit)
{
	int r = 0;

	if (lo > hi) {
		uint32_t t = lo;

		lo = hi;
		hi = t;
	}
	if (hi > limit)
		hi = limit; /* UIDs above what we know are of no interest */
	if (lo == 0)
		lo = 1; /* no message has UID 0 (limit 0: none is known) */
	for (uint64_t u = lo; u <= hi && r == 0; u++)
		r = push_uid(uv, (uint32_t)u);
	return r;
}

int imap_uidset_expand(const struct mailimap_set *set, uint32_t limit, uint32_t **uids, size_t *count)
{
	struct uid_vec uv = { 0 };
	int r = 0;

	*uids = NULL;
	*count = 0;
	for (clistiter *it = set->set_list ? clist_begin(set->set_list) : NULL; it && r == 0;
	     it = clist_next(it)) {
		const struct mailimap_set_item *item = clist_content(it);

		/* libetpan reads '*' (the highest UID in the folder) as 0 */
		r = push_range(&uv, item->set_first ? item->set_first : limit,
			       item->set_last ? item->set_last : limit, limit);
	}
	if (r < 0) {
		free(uv.v);
		return r;
	}
	if (uv.count > 1)
		qsort(uv.v, uv.count, sizeof(*uv.v), imap_cmp_uid);
	*uids = uv.v;
	*count = uv.count;
	return 0;
}

int imap_uidset_build(const uint32_t *uids, size_t n, struct mailimap_set **out)
{
	const uint32_t *v = uids;
	uint32_t *sorted = NULL;
	struct mailimap_set *set;
	int r = 0;

	*out = NULL;
	if (n == 0)
		return -EINVAL;
	for (size_t i = 1; i < n && !sorted; i++) {
		if (uids[i] >= uids[i - 1])
			continue;
		sorted = malloc(n * sizeof(*sorted)); /* out of order: sort a copy */
		if (!sorted)
			return -ENOMEM;
		memcpy(sorted, uids, n * sizeof(*sorted));
		qsort(sorted, n, sizeof(*sorted), imap_cmp_uid);
		v = sorted;
	}
	if (v[0] == 0) { /* the least: libetpan would send it as '*' */
		free(sorted);
		return -EINVAL;
	}
	set = mailimap_set_new_empty();
	for (size_t i = 0; set && r == 0 && i < n; i++) {
		size_t j = i;

		/* a run of consecutive UIDs (repeats in it too) as lo:hi */
		while (j + 1 < n && v[j + 1] <= (uint64_t)v[j] + 1)
			j++;
		if (mailimap_set_add_interval(set, v[i], v[j]) != MAILIMAP_NO_ERROR)
			r = -ENOMEM;
		i = j;
	}
	free(sorted);
	if (!set || r < 0) {
		if (set)
			mailimap_set_free(set);
		return -ENOMEM;
	}
	*out = set;
	return 0;
}

/* How many UIDs set names (none for NULL); -EPROTO for a '*' (libetpan's 0)
 * in it, which neither set of a COPYUID or APPENDUID may hold. */
static int set_size(const struct mailimap_set *set, uint64_t *count)
{
	*count = 0;
	for (clistiter *it = set && set->set_list ? clist_begin(set->set_list) : NULL; it;
	     it = clist_next(it)) {
		const struct mailimap_set_item *item = clist_content(it);
		uint32_t lo = item->set_first, hi = item->set_last;

		if (lo == 0 || hi == 0)
			return -EPROTO;
		*count += (lo < hi ? hi - lo : lo - hi) + (uint64_t)1;
	}
	return 0;
}

/* The UIDs of set into out, in the server's order, each range upwards. */
static void set_fill(const struct mailimap_set *set, uint32_t *out)
{
	size_t k = 0;

	for (clistiter *it = set && set->set_list ? clist_begin(set->set_list) : NULL; it;
	     it = clist_next(it)) {
		const struct mailimap_set_item *item = clist_content(it);
		uint32_t lo = item->set_first, hi = item->set_last;

		if (lo > hi) {
			uint32_t t = lo;

			lo = hi;
			hi = t;
		}
		for (uint64_t u = lo; u <= hi; u++)
			out[k++] = (uint32_t)u;
	}
}

int imap_uidset_pair(const struct mailimap_set *src, const struct mailimap_set *dst, uint32_t **src_uids,
		     uint32_t **dst_uids, size_t *n)
{
	uint64_t ns, nd;
	int r;

	*src_uids = NULL;
	*dst_uids = NULL;
	*n = 0;
	if ((r = set_size(src, &ns)) < 0 || (r = set_size(dst, &nd)) < 0)
		return r;
	if (ns != nd)
		return -EPROTO;
	if (ns > IMAP_BATCH_MAX)
		return -E2BIG;
	if (ns == 0)
		return 0;
	*src_uids = malloc(ns * sizeof(**src_uids));
	*dst_uids = malloc(ns * sizeof(**dst_uids));
	if (!*src_uids || !*dst_uids) {
		free(*src_uids);
		free(*dst_uids);
		*src_uids = NULL;
		*dst_uids = NULL;
		return -ENOMEM;
	}
	set_fill(src, *src_uids);
	set_fill(dst, *dst_uids);
	*n = (size_t)ns;
	return 0;
}

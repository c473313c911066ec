/* imap_uidset.c - owns UID arithmetic with no I/O: the order of UIDs, the
 * expansion of a UID set a server sent (VANISHED) into the UIDs it names,
 * and the weeding of UID 0 out of a list to send.  Pure functions. */
#include "imap_p.h"

#include <errno.h>
#include <stdlib.h>

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

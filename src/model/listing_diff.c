/* listing_diff.c - owns the comparison of two listings of a folder
 * (listing_diff.h): one merge walk over both, in UID order. */
#include "listing_diff.h"

#include <errno.h>
#include <stdlib.h>

#define CHANGES_FIRST 16 /* first allocation of the result */

static struct mailbox_change change_of(enum mailbox_change_kind kind, uint32_t folder,
				       const struct listing *l, const struct msg *m)
{
	return (struct mailbox_change){ kind, folder, m->uid, mb_msg_name(l, m), mb_msg_size(m), m->date };
}

static int append(struct mailbox_change **v, size_t *n, size_t *cap, const struct mailbox_change *c)
{
	if (*n == *cap) {
		size_t grown = *cap ? *cap * 2 : CHANGES_FIRST;
		struct mailbox_change *nv = realloc(*v, grown * sizeof(**v));

		if (!nv)
			return -ENOMEM;
		*v = nv;
		*cap = grown;
	}
	(*v)[(*n)++] = *c;
	return 0;
}

/* The next change of the walk at old[*i], now[*j]; false when that step
 * found none (the same message, the same flags). */
static bool step(const struct listing *old, const struct listing *now, bool reloaded, uint32_t folder,
		 size_t *i, size_t *j, struct mailbox_change *c)
{
	const struct msg *a = *i < old->count ? &old->msgs[*i] : NULL;
	const struct msg *b = *j < now->count ? &now->msgs[*j] : NULL;

	if (a && (reloaded || !b || a->uid < b->uid)) {
		*c = change_of(MAILBOX_CHANGE_REMOVED, folder, old, a);
		++*i;
		return true;
	}
	if (b && (!a || b->uid < a->uid)) {
		*c = change_of(MAILBOX_CHANGE_ADDED, folder, now, b);
		++*j;
		return true;
	}
	++*i;
	++*j;
	if (((mb_msg_flags(a) ^ mb_msg_flags(b)) & MSG_IMAP_FLAGS) == 0)
		return false;
	*c = change_of(MAILBOX_CHANGE_FLAGS, folder, now, b);
	return true;
}

int listing_diff(const struct listing *old, const struct listing *now, uint32_t folder, const uint32_t *known,
		 size_t nknown, struct mailbox_change **out, size_t *n)
{
	bool reloaded = old->uidvalidity != now->uidvalidity;
	size_t cap = 0, i = 0, j = 0;
	struct mailbox_change c;

	*out = NULL;
	*n = 0;
	if (reloaded && old->count + now->count > LISTING_DIFF_MAX_RELOAD) {
		c = (struct mailbox_change){ .kind = MAILBOX_CHANGE_RELOADED, .folder = folder, .name = "" };
		return append(out, n, &cap, &c);
	}
	/* a reloaded folder: every old message went, every new one came (the
	 * kernel must drop the old names and pages even where the UIDs match) */
	while (i < old->count || j < now->count) {
		if (!step(old, now, reloaded, folder, &i, &j, &c))
			continue;
		if (!reloaded && c.kind != MAILBOX_CHANGE_FLAGS && listing_uid_in(known, nknown, c.uid))
			continue;
		if (append(out, n, &cap, &c) < 0)
			return -ENOMEM;
	}
	return 0;
}

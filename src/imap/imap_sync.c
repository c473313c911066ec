/* imap_sync.c - owns the IMAP commands that keep a folder in step with the
 * server: ENABLE QRESYNC, UID FETCH (CHANGEDSINCE [VANISHED]) for what
 * changed since a HIGHESTMODSEQ (RFC 7162), and IDLE (RFC 2177) for being
 * told when something does.  The listing sync (listing.c) and the watchers
 * (watch.c) use them; SELECT (CONDSTORE) is in imap.c. */
#include "imap.h"
#include "imap_p.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <libetpan/libetpan.h>
#include <libetpan/qresync.h>

/* QRESYNC (RFC 7162): a resync learns which UIDs vanished without listing
 * every UID.  Expunges then arrive as VANISHED, which libetpan parses. */
int imap_enable_qresync(struct imap_session *s)
{
	struct mailimap_capability_data *want, *got = NULL;
	struct mailimap_capability *cap;
	clist *list = clist_new();
	char *name = strdup("QRESYNC");
	int r;

	cap = name ? mailimap_capability_new(MAILIMAP_CAPABILITY_NAME, NULL, name) : NULL;
	if (!list || !cap || clist_append(list, cap) < 0) {
		if (cap)
			mailimap_capability_free(cap);
		else
			free(name);
		if (list)
			clist_free(list);
		return -ENOMEM;
	}
	want = mailimap_capability_data_new(list);
	if (!want) {
		mailimap_capability_free(cap);
		clist_free(list);
		return -ENOMEM;
	}
	r = mailimap_enable(s->imap, want, &got);
	mailimap_capability_data_free(want);
	if (r == MAILIMAP_NO_ERROR) {
		mailimap_capability_data_free(got);
		s->qresync = true;
		return 0;
	}
	r = imap_map_error(s, r, "ENABLE QRESYNC");
	return s->dead ? r : 0;	/* refused: resync without it */
}

#define MAX_VANISHED (1u << 22)	/* UIDs expanded at most (16 MiB); beyond: -E2BIG */

/* The UIDs of a VANISHED set up to `limit`, ascending, malloc'd. */
static int expand_set(const struct mailimap_set *set, uint32_t limit, uint32_t **out, size_t *n)
{
	size_t count = 0, cap = 0;
	uint32_t *v = NULL;

	for (clistiter *it = clist_begin(set->set_list); it; it = clist_next(it)) {
		const struct mailimap_set_item *item = clist_content(it);
		uint32_t lo = item->set_first, hi = item->set_last ? item->set_last : limit;

		if (lo > hi) {
			uint32_t t = lo;

			lo = hi;
			hi = t;
		}
		if (hi > limit)
			hi = limit;	/* UIDs above what we know are of no interest */
		for (uint64_t u = lo; u <= hi; u++) {
			if (count == MAX_VANISHED) {
				free(v);
				return -E2BIG;	/* the caller lists the UIDs instead */
			}
			if (count == cap) {
				size_t ncap = cap ? cap * 2 : 64;
				uint32_t *nv = realloc(v, ncap * sizeof(*nv));

				if (!nv) {
					free(v);
					return -ENOMEM;
				}
				v = nv;
				cap = ncap;
			}
			v[count++] = (uint32_t)u;
		}
	}
	if (count > 1)
		qsort(v, count, sizeof(*v), imap_cmp_uid);
	*out = v;
	*n = count;
	return 0;
}

int imap_cmp_uid(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

int imap_fetch_changes(struct imap_session *s, uint32_t top, uint64_t modseq, imap_meta_cb *cb,
		       void *ctx, uint32_t **vanished, size_t *nvanished)
{
	struct mailimap_fetch_type *ft = mailimap_fetch_type_new_fetch_att_list_empty();
	struct mailimap_qresync_vanished *qv = NULL;
	struct meta_fetch mf = { cb, ctx };
	struct mailimap_set *set;
	clist *res = NULL;
	int r;

	*vanished = NULL;
	*nvanished = 0;
	if (!imap_add_att(ft, mailimap_fetch_att_new_uid()) ||
	    !imap_add_att(ft, mailimap_fetch_att_new_flags()))
		return -ENOMEM;
	if (!s->qresync) {
		r = imap_fetch_streaming(s, true, 1, top, ft, modseq, cb, ctx);
		return r < 0 ? r : 1;
	}
	set = mailimap_set_new_interval(1, top);
	if (!set) {
		mailimap_fetch_type_free(ft);
		return -ENOMEM;
	}
	mailimap_set_msg_att_handler(s->imap, imap_on_meta, &mf);
	mailimap_set_progress_callback(s->imap, NULL, imap_on_progress, NULL);
	r = mailimap_uid_fetch_qresync(s->imap, set, ft, modseq, &res, &qv);
	mailimap_set_msg_att_handler(s->imap, NULL, NULL);
	mailimap_set_progress_callback(s->imap, NULL, NULL, NULL);
	mailimap_fetch_type_free(ft);
	mailimap_set_free(set);
	if (r != MAILIMAP_NO_ERROR)
		return imap_map_error(s, r, "UID FETCH (CHANGEDSINCE VANISHED)");
	mailimap_fetch_list_free(res);
	if (qv) {
		r = qv->qr_known_uids ? expand_set(qv->qr_known_uids, top, vanished, nvanished) : 0;
		mailimap_qresync_vanished_free(qv);
		if (r == -E2BIG)
			return 1;	/* too many to hold: "unknown", the UIDs get listed */
		if (r < 0)
			return r;
	}
	return 0;
}

/* Did the last command bring news of the selected folder? */
static bool news(const struct imap_session *s, uint32_t exists_before)
{
	const struct mailimap_selection_info *si = s->imap->imap_selection_info;
	const struct mailimap_response_info *ri = s->imap->imap_response_info;

	return (si && si->sel_exists != exists_before) ||
	       (ri && ((ri->rsp_expunged && !clist_isempty(ri->rsp_expunged)) ||
		       (ri->rsp_fetch_list && !clist_isempty(ri->rsp_fetch_list)) ||
		       (ri->rsp_extension_list && !clist_isempty(ri->rsp_extension_list))));
}

int imap_idle(struct imap_session *s, int wake_fd, int seconds)
{
	const struct mailimap_selection_info *si = s->imap->imap_selection_info;
	uint32_t exists;
	bool changed;
	int r;

	if (!s->selected || !si)
		return -EINVAL;	/* libetpan's IDLE crashes outside the SELECTED state */
	/* libetpan drops what arrives before IDLE's "+": collect it first, with
	 * a NOOP (changes made while we were syncing arrive right here) */
	exists = si->sel_exists;
	r = mailimap_noop(s->imap);
	if (r != MAILIMAP_NO_ERROR)
		return imap_map_error(s, r, "NOOP");
	if (news(s, exists)) {
		imap_read_state(s, NULL);
		return 1;
	}
	si = s->imap->imap_selection_info;
	exists = si ? si->sel_exists : 0;
	r = mailimap_idle(s->imap);
	if (r != MAILIMAP_NO_ERROR)
		return imap_map_error(s, r, "IDLE");
	/* bytes libetpan already buffered would not wake poll */
	if (s->imap->imap_stream->read_buffer_len == 0) {
		struct pollfd pfd[2] = {
			{ .fd = mailimap_idle_get_fd(s->imap), .events = POLLIN },
			{ .fd = wake_fd, .events = POLLIN },
		};

		while (poll(pfd, wake_fd >= 0 ? 2 : 1, seconds * 1000) < 0 && errno == EINTR)
			;
	}
	r = mailimap_idle_done(s->imap);
	if (r != MAILIMAP_NO_ERROR)
		return imap_map_error(s, r, "IDLE DONE");
	changed = news(s, exists);
	imap_read_state(s, NULL);
	return changed;
}

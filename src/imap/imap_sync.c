/* imap_sync.c - owns the IMAP commands that keep a folder in step with the
 * server: UID FETCH (CHANGEDSINCE [VANISHED]) for what changed since a
 * HIGHESTMODSEQ (RFC 7162), and IDLE (RFC 2177) for being told when
 * something does.  The listing sync (model/listing.c) and the watchers
 * (live/watch.c) use them; ENABLE QRESYNC is part of login
 * (imap_session.c), SELECT (CONDSTORE) is in imap_read.c. */
#include "imap.h"
#include "imap_p.h"

#include <errno.h>
#include <poll.h>
#include <libetpan/libetpan.h>
#include <libetpan/qresync.h>

int imap_fetch_changes(struct imap_session *s, uint32_t top, uint64_t modseq, imap_meta_cb *cb, void *ctx,
		       uint32_t **vanished, size_t *nvanished)
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
	imap_fetch_request_free(ft, set);
	if (r != MAILIMAP_NO_ERROR)
		return imap_map_error(s, r, "UID FETCH (CHANGEDSINCE VANISHED)");
	mailimap_fetch_list_free(res);
	if (qv) {
		r = qv->qr_known_uids ? imap_uidset_expand(qv->qr_known_uids, top, vanished, nvanished) : 0;
		mailimap_qresync_vanished_free(qv);
		if (r == -E2BIG)
			return 1; /* too many to hold: "unknown", the UIDs get listed */
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
		return -EINVAL; /* libetpan's IDLE crashes outside the SELECTED state */
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
	/* bytes libetpan (or the inflater) already holds would not wake poll */
	if (!imap_input_buffered(s)) {
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

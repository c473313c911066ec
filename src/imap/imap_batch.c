/* imap_batch.c - owns the commands that change messages of the selected
 * folder, a UID set at once: UID MOVE (and its UID COPY + UID STORE + UID
 * EXPUNGE fallback), UID STORE of flags, UID EXPUNGE; where moved messages
 * went, by the server's COPYUID; the keywords the folder's FLAGS named; and
 * MULTIAPPEND, many messages stored in one command.  One
 * message is a set of one: imap_move, imap_store_flags and
 * imap_delete_message are these commands with n = 1.  The sets are built
 * and COPYUID paired in imap_uidset.c; a refusal becomes errno as in
 * imap_write.c. */
#include "imap.h"
#include "imap_p.h"
#include "flags.h"
#include "util/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* UID STORE of fs on set (kept by the caller). */
static int store(struct imap_session *s, struct mailimap_set *set, const struct flag_set *fs,
		 enum imap_store_mode mode)
{
	struct mailimap_flag_list *fl = imap_flag_list(fs);
	struct mailimap_store_att_flags *att = NULL;
	int r;

	if (fl && mode == IMAP_STORE_ADD)
		att = mailimap_store_att_flags_new_add_flags_silent(fl);
	else if (fl && mode == IMAP_STORE_REMOVE)
		att = mailimap_store_att_flags_new_remove_flags_silent(fl);
	else if (fl)
		att = mailimap_store_att_flags_new_set_flags_silent(fl);
	if (!att) {
		if (fl)
			mailimap_flag_list_free(fl);
		return -ENOMEM;
	}
	r = mailimap_uid_store(s->imap, set, att);
	mailimap_store_att_flags_free(att);
	r = imap_refusal(s, r, "UID STORE");
	if (r == -EIO && !s->dead && imap_text_has(imap_server_text(s), "permanent"))
		return -EPERM;
	return r;
}

/* \Deleted on set, then UID EXPUNGE of set (UIDPLUS checked by the caller). */
static int expunge(struct imap_session *s, struct mailimap_set *set)
{
	struct flag_set deleted = { .system = IMAP_FLAG_DELETED };
	int r = store(s, set, &deleted, IMAP_STORE_ADD);

	if (r < 0)
		return r;
	return imap_refusal(s, mailimap_uid_expunge(s->imap, set), "UID EXPUNGE");
}

static bool has_uidplus(struct imap_session *s)
{
	if (imap_has_capability(s, "UIDPLUS"))
		return true;
	log_warn("the server lacks UIDPLUS: refusing to EXPUNGE (it would purge every \\Deleted message)");
	return false;
}

/* The UID set of uids[n] for one command: 0, 1 when n is 0 (nothing to
 * send), -E2BIG past IMAP_BATCH_MAX (no megabyte command lines), -EINVAL
 * for a UID 0, -ENOMEM. */
static int batch_set(const uint32_t *uids, size_t n, struct mailimap_set **set)
{
	if (n > IMAP_BATCH_MAX)
		return -E2BIG;
	if (n == 0)
		return 1;
	return imap_uidset_build(uids, n, set);
}

int imap_store_set(struct imap_session *s, const uint32_t *uids, size_t n, const struct flag_set *fs,
		   enum imap_store_mode mode)
{
	struct mailimap_set *set;
	int r;

	if ((r = batch_set(uids, n, &set)) != 0)
		return r < 0 ? r : 0;
	r = store(s, set, fs, mode);
	mailimap_set_free(set);
	return r;
}

int imap_store_flags(struct imap_session *s, uint32_t uid, const struct flag_set *fs,
		     enum imap_store_mode mode)
{
	return imap_store_set(s, &uid, 1, fs, mode);
}

int imap_expunge_set(struct imap_session *s, const uint32_t *uids, size_t n)
{
	struct mailimap_set *set;
	int r;

	if ((r = batch_set(uids, n, &set)) != 0)
		return r < 0 ? r : 0;
	r = has_uidplus(s) ? expunge(s, set) : -EXDEV;
	mailimap_set_free(set);
	return r;
}

int imap_delete_message(struct imap_session *s, uint32_t uid)
{
	return imap_expunge_set(s, &uid, 1);
}

/* A COPYUID pair; imap_cmp_uid orders them by src, their first member. */
struct uid_pair {
	uint32_t src, dst;
};

/* dest_uids[i]: the UID uids[i] got by the COPYUID sets src and dst (either
 * NULL: the server sent none), left 0 where they do not say. */
static void note_new_uids(struct imap_session *s, const struct mailimap_set *src,
			  const struct mailimap_set *dst, const uint32_t *uids, size_t n, uint32_t *dest_uids)
{
	uint32_t *from = NULL, *to = NULL;
	struct uid_pair *pairs = NULL;
	size_t m = 0;
	int r;

	if (!src || !dst)
		return;
	r = imap_uidset_pair(src, dst, &from, &to, &m);
	if (r < 0)
		log_debug("session %u: unusable COPYUID (%s): the new UIDs are unknown", s->id, strerror(-r));
	if (m)
		pairs = malloc(m * sizeof(*pairs));
	if (pairs) {
		for (size_t k = 0; k < m; k++)
			pairs[k] = (struct uid_pair){ from[k], to[k] };
		qsort(pairs, m, sizeof(*pairs), imap_cmp_uid);
		for (size_t i = 0; i < n; i++) {
			const struct uid_pair *p = bsearch(&uids[i], pairs, m, sizeof(*pairs), imap_cmp_uid);

			if (p)
				dest_uids[i] = p->dst;
		}
	}
	free(pairs);
	free(from);
	free(to);
}

typedef int transfer_fn(mailimap *, struct mailimap_set *, const char *, uint32_t *, struct mailimap_set **,
			struct mailimap_set **);

/* UID MOVE or UID COPY (fn) of set, the UIDs uids[n], to dest. */
static int transfer(struct imap_session *s, transfer_fn *fn, const char *what, struct mailimap_set *set,
		    const uint32_t *uids, size_t n, const char *dest, uint32_t *dest_uids)
{
	struct mailimap_set *src = NULL, *dst = NULL;
	uint32_t validity = 0;
	int r = fn(s->imap, set, dest, &validity, &src, &dst);

	if (r == MAILIMAP_NO_ERROR)
		note_new_uids(s, src, dst, uids, n, dest_uids);
	if (src)
		mailimap_set_free(src);
	if (dst)
		mailimap_set_free(dst);
	return imap_refusal(s, r, what);
}

int imap_move_set(struct imap_session *s, const uint32_t *uids, size_t n, const char *dest,
		  uint32_t *dest_uids)
{
	struct mailimap_set *set;
	int r;

	for (size_t i = 0; i < n; i++)
		dest_uids[i] = 0;
	if ((r = batch_set(uids, n, &set)) != 0)
		return r < 0 ? r : 0;
	if (imap_has_capability(s, "MOVE")) {
		r = transfer(s, mailimap_uidplus_uid_move, "UID MOVE", set, uids, n, dest, dest_uids);
	} else if (!imap_has_capability(s, "UIDPLUS")) {
		log_warn("the server has neither MOVE nor UIDPLUS: cannot move messages safely");
		r = -EXDEV;
	} else {
		r = transfer(s, mailimap_uidplus_uid_copy, "UID COPY", set, uids, n, dest, dest_uids);
		if (r == 0)
			r = expunge(s, set);
	}
	mailimap_set_free(set);
	return r;
}

int imap_move(struct imap_session *s, uint32_t uid, const char *dest, uint32_t *new_uid)
{
	return imap_move_set(s, &uid, 1, dest, new_uid);
}

int imap_selected_keywords(struct imap_session *s, char ***kw, size_t *n)
{
	const struct mailimap_selection_info *si = s->imap ? s->imap->imap_selection_info : NULL;
	struct flag_set fs = { 0 };

	*kw = NULL;
	*n = 0;
	if (!s->selected)
		return -EBADF;
	/* libetpan keeps the last FLAGS response of the selected folder here */
	if (!si || !si->sel_flags || !si->sel_flags->fl_list)
		return -ENODATA;
	for (clistiter *it = clist_begin(si->sel_flags->fl_list); it; it = clist_next(it)) {
		const struct mailimap_flag *f = clist_content(it);
		int r;

		if (!f || f->fl_type != MAILIMAP_FLAG_KEYWORD || !f->fl_data.fl_keyword)
			continue;
		r = flags_add_keyword(&fs, f->fl_data.fl_keyword);
		if (r == -ENOMEM) {
			flags_free(&fs);
			return r;
		}
		if (r < 0)
			log_debug("session %u: skipping keyword %.100s of FLAGS", s->id,
				  f->fl_data.fl_keyword);
	}
	*kw = fs.keywords;
	*n = fs.nkeywords;
	return 0;
}

/* ---- MULTIAPPEND ---- */

/* mbox as an IMAP quoted string (a modified UTF-7 name is 7-bit). */
static char *quoted(const char *mbox)
{
	char *out = malloc(2 * strlen(mbox) + 3), *p = out;

	if (!out)
		return NULL;
	*p++ = '"';
	for (const char *c = mbox; *c; c++) {
		if (*c == '"' || *c == '\\')
			*p++ = '\\';
		*p++ = *c;
	}
	*p++ = '"';
	*p = '\0';
	return out;
}

/* " (FLAGS) "DATE" {N+}" CRLF: one message's part of the command. */
static int send_item_head(mailimap *imap, const struct imap_append_item *it, size_t size)
{
	static const char months[][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	char *fl = flags_format(it->flags ? it->flags : &(struct flag_set){ 0 }), when[40] = "", *line;
	time_t t = (time_t)it->date;
	struct tm tm;
	int r = MAILIMAP_ERROR_MEMORY;

	if (it->date && gmtime_r(&t, &tm))
		snprintf(when, sizeof(when), " \"%02d-%s-%04d %02d:%02d:%02d +0000\"", tm.tm_mday,
			 months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
	line = fl ? malloc(strlen(fl) + 80) : NULL;
	if (line) {
		int len = sprintf(line, " (%s)%s {%zu+}\r\n", fl, when, size);

		r = mailstream_write(imap->imap_stream, line, (size_t)len) < 0 ? MAILIMAP_ERROR_STREAM
									       : MAILIMAP_NO_ERROR;
	}
	free(line);
	free(fl);
	return r;
}

/* The UIDs of the APPENDUID the last response carried, in order. */
static void appended_uids(struct imap_session *s, uint32_t *uids, size_t n)
{
	const struct mailimap_response_info *info = s->imap->imap_response_info;
	uint32_t *got = NULL;
	size_t count = 0;

	for (clistiter *it = info ? clist_begin(info->rsp_extension_list) : NULL; it; it = clist_next(it)) {
		const struct mailimap_extension_data *ext = clist_content(it);
		const struct mailimap_uidplus_resp_code_apnd *apnd = ext->ext_data;

		if (ext->ext_extension != &mailimap_extension_uidplus ||
		    ext->ext_type != MAILIMAP_UIDPLUS_RESP_CODE_APND || !apnd->uid_set)
			continue;
		if (imap_uidset_expand(apnd->uid_set, UINT32_MAX, &got, &count) == 0 && count == n)
			memcpy(uids, got, n * sizeof(*uids));
		free(got);
		break;
	}
}

int imap_append_many(struct imap_session *s, const char *mbox, const struct imap_append_item *items, size_t n,
		     uint32_t *uids)
{
	mailimap *imap = s->imap;
	struct mailimap_response *resp = NULL;
	uint64_t total = 0;
	char *name;
	int r, cond;

	memset(uids, 0, n * sizeof(*uids));
	if (n == 0)
		return 0;
	if (!imap_has_capability(s, "MULTIAPPEND") || !imap_has_capability(s, "LITERAL+"))
		return -ENOTSUP;
	for (size_t i = 0; i < n; i++) {
		size_t size = mailstream_get_data_crlf_size(items[i].data, items[i].len);

		/* announced as a 32-bit number: more would be read as commands */
		if (size > UINT32_MAX)
			return -EFBIG;
		total += size;
	}
	if (!(name = quoted(mbox)))
		return -ENOMEM;
	imap_allow(s, total); /* time to send it all */
	r = mailimap_send_current_tag(imap);
	if (r == MAILIMAP_NO_ERROR && (mailstream_write(imap->imap_stream, "APPEND ", 7) < 0 ||
				       mailstream_write(imap->imap_stream, name, strlen(name)) < 0))
		r = MAILIMAP_ERROR_STREAM;
	free(name);
	for (size_t i = 0; i < n && r == MAILIMAP_NO_ERROR; i++) {
		r = send_item_head(imap, &items[i],
				   mailstream_get_data_crlf_size(items[i].data, items[i].len));
		if (r == MAILIMAP_NO_ERROR &&
		    mailstream_send_data_crlf(imap->imap_stream, items[i].data, items[i].len, 0, NULL) < 0)
			r = MAILIMAP_ERROR_STREAM;
	}
	if (r == MAILIMAP_NO_ERROR)
		r = imap_finish_command(imap, false, &resp);
	if (r != MAILIMAP_NO_ERROR)
		return imap_refusal(s, r, "APPEND");
	cond = resp->rsp_resp_done->rsp_data.rsp_tagged->rsp_cond_state->rsp_type;
	mailimap_response_free(resp);
	if (cond != MAILIMAP_RESP_COND_STATE_OK)
		return imap_refusal(s, MAILIMAP_ERROR_APPEND, "APPEND");
	appended_uids(s, uids, n);
	return 0;
}

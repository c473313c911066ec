/* imap_write.c - owns the IMAP commands that change the account other than
 * those on messages of the selected folder (imap_batch.c): APPEND, CREATE,
 * DELETE, RENAME, (UN)SUBSCRIBE; what those and imap_batch.c's may meet (a
 * NO and its errno, PERMANENTFLAGS, APPENDLIMIT, STATUS MESSAGES before a
 * folder goes, the STORAGE quota); the flag lists they send; and the
 * look-ups that check what happened after a connection died mid-command. */
#include "imap.h"
#include "imap_p.h"
#include "flags.h"
#include "util/log.h"
#include "util/names.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* strcasestr is a GNU extension: this is all we need of it. */
bool imap_text_has(const char *text, const char *word)
{
	size_t n = strlen(word);

	for (; *text; text++)
		if (strncasecmp(text, word, n) == 0)
			return true;
	return false;
}

static const struct {
	const char *code;
	int err;
} response_codes[] = {
	{ "ALREADYEXISTS", EEXIST },
	{ "NONEXISTENT", ENOENT },
	{ "TRYCREATE", ENOENT }, /* the destination of APPEND, COPY, MOVE */
	{ "EXPUNGEISSUED", ENOENT },
	{ "NOPERM", EACCES },
	{ "AUTHORIZATIONFAILED", EACCES },
	{ "OVERQUOTA", ENOSPC },
	{ "LIMIT", ENOSPC }, /* a server limit: folders, keywords, size */
	{ "TOOBIG", EFBIG }, /* RFC 4469: the message is too large */
	{ "CANNOT", EPERM }, /* can never succeed */
	{ "INUSE", EBUSY },
	{ "SERVERBUG", EIO },   /* known codes that mean "failed": so */
	{ "UNAVAILABLE", EIO }, /* no word of their text overrides them */
	{ "CLIENTBUG", EIO },
	{ "CORRUPTION", EIO },
	{ "CONTACTADMIN", EIO },
};

int imap_refusal_errno(const char *code, const char *text)
{
	for (size_t i = 0; code && i < sizeof(response_codes) / sizeof(response_codes[0]); i++)
		if (strcasecmp(code, response_codes[i].code) == 0)
			return -response_codes[i].err;
	if (!text)
		return -EIO;
	if (imap_text_has(text, "quota"))
		return -ENOSPC;
	if (imap_text_has(text, "too large") || imap_text_has(text, "too big"))
		return -EFBIG; /* APPEND over a folder's own APPENDLIMIT (RFC 7889) */
	if (imap_text_has(text, "already exists"))
		return -EEXIST;
	if (imap_text_has(text, "doesn't exist") || imap_text_has(text, "does not exist") ||
	    imap_text_has(text, "not found"))
		return -ENOENT;
	if (imap_text_has(text, "Permission denied") || imap_text_has(text, "not allowed"))
		return -EACCES;
	return -EIO;
}

int imap_refusal(struct imap_session *s, int r, const char *what)
{
	const char *code = imap_response_code(s);
	int err = imap_map_error(s, r, what);

	if (s->dead || err != -EIO || r == MAILIMAP_ERROR_BAD_STATE)
		return err; /* (BAD_STATE: nothing was sent; the text is stale) */
	err = imap_refusal_errno(code, imap_server_text(s));
	if (code && err != -EIO)
		log_debug("session %u: %s refused with [%.40s]", s->id, what, code);
	return err;
}

struct mailimap_flag_list *imap_flag_list(const struct flag_set *fs)
{
	static const struct {
		unsigned bit;
		struct mailimap_flag *(*make)(void);
	} sys[] = {
		{ IMAP_FLAG_SEEN, mailimap_flag_new_seen },
		{ IMAP_FLAG_ANSWERED, mailimap_flag_new_answered },
		{ IMAP_FLAG_FLAGGED, mailimap_flag_new_flagged },
		{ IMAP_FLAG_DELETED, mailimap_flag_new_deleted },
		{ IMAP_FLAG_DRAFT, mailimap_flag_new_draft },
	};
	struct mailimap_flag_list *fl = mailimap_flag_list_new_empty();

	if (!fl || !fs)
		return fl;
	for (size_t i = 0; i < sizeof(sys) / sizeof(sys[0]); i++)
		if ((fs->system & sys[i].bit) &&
		    mailimap_flag_list_add(fl, sys[i].make()) != MAILIMAP_NO_ERROR)
			goto fail;
	for (size_t i = 0; i < fs->nkeywords; i++) {
		char *kw = strdup(fs->keywords[i]);
		struct mailimap_flag *f = kw ? mailimap_flag_new_flag_keyword(kw) : NULL;

		if (!f || mailimap_flag_list_add(fl, f) != MAILIMAP_NO_ERROR) {
			if (f)
				mailimap_flag_free(f);
			else
				free(kw);
			goto fail;
		}
	}
	return fl;
fail:
	mailimap_flag_list_free(fl);
	return NULL;
}

static struct mailimap_date_time *date_of(int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!gmtime_r(&tt, &tm))
		return NULL;
	return mailimap_date_time_new(tm.tm_mday, tm.tm_mon + 1, tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
				      tm.tm_sec, 0);
}

uint64_t imap_append_limit(struct imap_session *s)
{
	const struct mailimap_connection_info *ci = s->imap->imap_connection_info;
	uint64_t limit = UINT64_MAX;

	if (!ci || !ci->imap_capability)
		return limit;
	for (clistiter *it = clist_begin(ci->imap_capability->cap_list); it; it = clist_next(it)) {
		const struct mailimap_capability *c = clist_content(it);
		const char *v = c->cap_type == MAILIMAP_CAPABILITY_NAME ? c->cap_data.cap_name : NULL;
		unsigned long long n;
		char *end;

		/* APPENDLIMIT alone: limits per folder only, none for all */
		if (!v || strncasecmp(v, "APPENDLIMIT=", 12) != 0 || v[12] < '0' || v[12] > '9')
			continue;
		errno = 0;
		n = strtoull(v + 12, &end, 10);
		if (!*end && errno == 0 && n < limit)
			limit = n;
	}
	return limit;
}

int imap_append(struct imap_session *s, const char *mbox, const struct flag_set *fs, int64_t date,
		const char *data, size_t len, uint32_t *new_uid)
{
	struct mailimap_flag_list *fl = imap_flag_list(fs);
	struct mailimap_date_time *dt = date ? date_of(date) : NULL;
	uint32_t validity = 0;
	int r;

	*new_uid = 0;
	/* libetpan announces the literal's length (line ends made CRLF) as a
	 * 32-bit number and then sends every byte: what does not fit would be
	 * read by the server as commands.  Callers check sizes long before;
	 * this is the last line. */
	if (mailstream_get_data_crlf_size(data, len) > UINT32_MAX) {
		log_warn("session %u: refusing an APPEND of more than 4 GiB", s->id);
		if (fl)
			mailimap_flag_list_free(fl);
		if (dt)
			mailimap_date_time_free(dt);
		return -EFBIG;
	}
	if (!fl || (date && !dt)) {
		if (fl)
			mailimap_flag_list_free(fl);
		if (dt)
			mailimap_date_time_free(dt);
		return -ENOMEM;
	}
	imap_allow(s, len); /* time to send it */
	r = mailimap_uidplus_append(s->imap, mbox, fl, dt, data, len, &validity, new_uid);
	imap_trace_reset(s->trace); /* a refusal may have come instead of "+" */
	mailimap_flag_list_free(fl);
	if (dt)
		mailimap_date_time_free(dt);
	return imap_refusal(s, r, "APPEND");
}

static void info_add_flags(const struct mailimap_msg_att_dynamic *dyn, struct imap_message_info *info)
{
	if (!dyn || !dyn->att_list)
		return;
	for (clistiter *it = clist_begin(dyn->att_list); it; it = clist_next(it)) {
		const struct mailimap_flag_fetch *ff = clist_content(it);
		struct flag_set fs = { 0 };

		if (ff->fl_type != MAILIMAP_FLAG_FETCH_OTHER || !ff->fl_flag ||
		    ff->fl_flag->fl_type != MAILIMAP_FLAG_KEYWORD || !ff->fl_flag->fl_data.fl_keyword)
			continue;
		fs.keywords = info->keywords;
		fs.nkeywords = info->nkeywords;
		if (flags_add_keyword(&fs, ff->fl_flag->fl_data.fl_keyword) < 0)
			log_debug("skipping keyword %.100s", ff->fl_flag->fl_data.fl_keyword);
		info->keywords = fs.keywords;
		info->nkeywords = fs.nkeywords;
	}
}

int imap_fetch_info(struct imap_session *s, uint32_t uid, struct imap_message_info *info)
{
	static const char *const message_id[] = { "Message-ID", NULL };
	struct mailimap_fetch_type *ft = mailimap_fetch_type_new_fetch_att_list_empty();
	struct mailimap_set *set = mailimap_set_new_single(uid);
	clist *res = NULL;
	int r = -ENOENT;

	memset(info, 0, sizeof(*info));
	if (!set || !imap_add_att(ft, mailimap_fetch_att_new_uid()) ||
	    !imap_add_att(ft, mailimap_fetch_att_new_flags()) ||
	    !imap_add_att(ft, mailimap_fetch_att_new_rfc822_size()) ||
	    !imap_add_att(ft, mailimap_fetch_att_new_internaldate()) ||
	    !imap_add_att(ft, imap_header_fields_att(message_id))) {
		if (!set && ft)
			mailimap_fetch_type_free(ft);
		ft = NULL; /* otherwise imap_add_att freed it */
		r = -ENOMEM;
		goto out;
	}
	r = mailimap_uid_fetch(s->imap, set, ft, &res);
	if (r != MAILIMAP_NO_ERROR) {
		r = imap_map_error(s, r, "UID FETCH");
		goto out;
	}
	r = -ENOENT;
	for (clistiter *it = clist_begin(res); it; it = clist_next(it)) {
		const struct mailimap_msg_att *att = clist_content(it);
		struct imap_meta m;

		imap_meta_from_att(att, &m);
		if (m.uid != uid)
			continue;
		info->size = m.size;
		info->internaldate = m.internaldate;
		info->system_flags = m.flags;
		if (m.headers && m.headers_len)
			info->message_id = names_header_field(m.headers, m.headers_len, "Message-ID");
		for (clistiter *i2 = clist_begin(att->att_list); i2; i2 = clist_next(i2)) {
			const struct mailimap_msg_att_item *item = clist_content(i2);

			if (item->att_type == MAILIMAP_MSG_ATT_ITEM_DYNAMIC)
				info_add_flags(item->att_data.att_dyn, info);
		}
		r = 0;
		break;
	}
	mailimap_fetch_list_free(res);
out:
	imap_fetch_request_free(ft, set);
	return r;
}

void imap_message_info_free(struct imap_message_info *info)
{
	for (size_t i = 0; i < info->nkeywords; i++)
		free(info->keywords[i]);
	free(info->keywords);
	free(info->message_id);
	memset(info, 0, sizeof(*info));
}

int imap_create_folder(struct imap_session *s, const char *mbox)
{
	return imap_refusal(s, mailimap_create(s->imap, mbox), "CREATE");
}

int imap_delete_folder(struct imap_session *s, const char *mbox)
{
	if (s->selected && strcmp(s->selected, mbox) == 0)
		imap_forget_selection(s);
	return imap_refusal(s, mailimap_delete(s->imap, mbox), "DELETE");
}

int imap_rename_folder(struct imap_session *s, const char *from, const char *to)
{
	if (s->selected && strcmp(s->selected, from) == 0)
		imap_forget_selection(s);
	return imap_refusal(s, mailimap_rename(s->imap, from, to), "RENAME");
}

int imap_subscribe(struct imap_session *s, const char *mbox, bool subscribe)
{
	int r = subscribe ? mailimap_subscribe(s->imap, mbox) : mailimap_unsubscribe(s->imap, mbox);

	return imap_refusal(s, r, subscribe ? "SUBSCRIBE" : "UNSUBSCRIBE");
}

int imap_folder_status(struct imap_session *s, const char *mbox, struct imap_folder_state *out)
{
	static const int wanted[] = { MAILIMAP_STATUS_ATT_MESSAGES, MAILIMAP_STATUS_ATT_UIDNEXT,
				      MAILIMAP_STATUS_ATT_UIDVALIDITY };
	struct mailimap_status_att_list *atts = mailimap_status_att_list_new_empty();
	struct mailimap_mailbox_data_status *st = NULL;
	int r = atts ? MAILIMAP_NO_ERROR : MAILIMAP_ERROR_MEMORY;

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; r == MAILIMAP_NO_ERROR && i < sizeof(wanted) / sizeof(wanted[0]); i++)
		r = mailimap_status_att_list_add(atts, wanted[i]);
	if (r != MAILIMAP_NO_ERROR) {
		if (atts)
			mailimap_status_att_list_free(atts);
		return -ENOMEM;
	}
	r = mailimap_status(s->imap, mbox, atts, &st);
	mailimap_status_att_list_free(atts);
	if (r != MAILIMAP_NO_ERROR)
		return imap_refusal(s, r, "STATUS");
	for (clistiter *it = st->st_info_list ? clist_begin(st->st_info_list) : NULL; it;
	     it = clist_next(it)) {
		const struct mailimap_status_info *si = clist_content(it);

		if (si->st_att == MAILIMAP_STATUS_ATT_MESSAGES)
			out->exists = si->st_value;
		else if (si->st_att == MAILIMAP_STATUS_ATT_UIDNEXT)
			out->uidnext = si->st_value;
		else if (si->st_att == MAILIMAP_STATUS_ATT_UIDVALIDITY)
			out->uidvalidity = si->st_value;
	}
	mailimap_mailbox_data_status_free(st);
	return 0;
}

int imap_count_messages(struct imap_session *s, const char *mbox, uint32_t *count)
{
	struct imap_folder_state st;
	int r = imap_folder_status(s, mbox, &st);

	*count = st.exists;
	return r;
}

bool imap_keyword_permitted(struct imap_session *s, const char *keyword)
{
	const struct mailimap_selection_info *si = s->imap->imap_selection_info;

	if (!si || !si->sel_perm_flags)
		return true; /* no PERMANENTFLAGS: the server decides on STORE */
	for (clistiter *it = clist_begin(si->sel_perm_flags); it; it = clist_next(it)) {
		const struct mailimap_flag_perm *fp = clist_content(it);

		if (fp->fl_type == MAILIMAP_FLAG_PERM_ALL)
			return true;
		if (fp->fl_flag && fp->fl_flag->fl_type == MAILIMAP_FLAG_KEYWORD &&
		    fp->fl_flag->fl_data.fl_keyword &&
		    strcasecmp(fp->fl_flag->fl_data.fl_keyword, keyword) == 0)
			return true;
	}
	return false;
}

int imap_storage_quota(struct imap_session *s, const char *mbox, uint64_t *used_kib, uint64_t *limit_kib)
{
	struct mailimap_quota_complete_data *q = NULL;
	int r, found = -ENODATA;

	if (!imap_has_capability(s, "QUOTA"))
		return -EOPNOTSUPP;
	r = mailimap_quota_getquotaroot(s->imap, mbox, &q);
	if (r != MAILIMAP_NO_ERROR)
		return imap_map_error(s, r, "GETQUOTAROOT");
	/* the first root with a STORAGE limit (RFC 2087: units of 1024 octets) */
	for (clistiter *it = q && q->quota_list ? clist_begin(q->quota_list) : NULL; it && found < 0;
	     it = clist_next(it)) {
		const struct mailimap_quota_quota_data *d = clist_content(it);

		for (clistiter *jt = d->quota_list ? clist_begin(d->quota_list) : NULL; jt;
		     jt = clist_next(jt)) {
			const struct mailimap_quota_quota_resource *res = clist_content(jt);

			if (res->resource_name && strcasecmp(res->resource_name, "STORAGE") == 0) {
				*used_kib = res->usage;
				*limit_kib = res->limit;
				found = 0;
				break;
			}
		}
	}
	if (q)
		mailimap_quota_complete_data_free(q);
	return found;
}

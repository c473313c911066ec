/* imap_read.c - owns the commands that read the account without changing
 * it: LIST, SELECT, FETCH of listing data (streamed, one callback per
 * message), UID SEARCH ALL, and FETCH of message bytes -- a block of a
 * body, the heads of many messages in one command, a MIME part.  Also the
 * decoding of FETCH responses and the building blocks of a FETCH that
 * imap_sync.c, imap_write.c and imap_structure.c reuse. */
#include "imap.h"
#include "imap_p.h"
#include "util/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <libetpan/libetpan.h>

static unsigned list_flags(const struct mailimap_mbx_list_flags *f)
{
	static const struct {
		const char *name;
		unsigned bit;
	} ext[] = {
		{ "NonExistent", IMAP_LIST_NONEXISTENT },
		{ "HasChildren", IMAP_LIST_HASCHILDREN },
		{ "Trash", IMAP_LIST_TRASH },
		{ "Sent", IMAP_LIST_SENT },
		{ "Drafts", IMAP_LIST_DRAFTS },
		{ "Junk", IMAP_LIST_JUNK },
		{ "Archive", IMAP_LIST_ARCHIVE },
	};
	unsigned flags = 0;
	clistiter *it;

	if (!f)
		return 0;
	if (f->mbf_type == MAILIMAP_MBX_LIST_FLAGS_SFLAG && f->mbf_sflag == MAILIMAP_MBX_LIST_SFLAG_NOSELECT)
		flags |= IMAP_LIST_NOSELECT;
	for (it = clist_begin(f->mbf_oflags); it; it = clist_next(it)) {
		const struct mailimap_mbx_list_oflag *o = clist_content(it);

		if (o->of_type != MAILIMAP_MBX_LIST_OFLAG_FLAG_EXT || !o->of_flag_ext)
			continue;
		for (size_t i = 0; i < sizeof(ext) / sizeof(ext[0]); i++)
			if (strcasecmp(o->of_flag_ext, ext[i].name) == 0)
				flags |= ext[i].bit;
	}
	if (flags & IMAP_LIST_NONEXISTENT)
		flags |= IMAP_LIST_NOSELECT;
	return flags;
}

int imap_list(struct imap_session *s, imap_list_cb *cb, void *ctx)
{
	clist *list = NULL;
	int r = mailimap_list(s->imap, "", "*", &list);

	if (r != MAILIMAP_NO_ERROR)
		return imap_map_error(s, r, "LIST");
	for (clistiter *it = clist_begin(list); it; it = clist_next(it)) {
		const struct mailimap_mailbox_list *mb = clist_content(it);

		cb(mb->mb_name, mb->mb_delimiter, list_flags(mb->mb_flag), ctx);
	}
	mailimap_list_result_free(list);
	return 0;
}

int imap_select(struct imap_session *s, const char *mbox, bool fresh, struct imap_folder_state *state)
{
	uint64_t modseq = 0;
	int left, r;

	if (!fresh && s->selected && strcmp(s->selected, mbox) == 0) {
		imap_read_state(s, state);
		return 0;
	}
	if ((left = imap_stall_left(mbox)) > 0) {
		log_debug("session %u: %.200s rests %d s more after a stall: not selected", s->id, mbox,
			  left);
		return -EIO;
	}
	imap_forget_selection(s);
	if (imap_has_capability(s, "CONDSTORE"))
		r = mailimap_select_condstore(s->imap, mbox, &modseq);
	else
		r = mailimap_select(s->imap, mbox);
	if (r == MAILIMAP_ERROR_SELECT) {
		const char *code = imap_response_code(s);
		int err = imap_refusal_errno(code, imap_server_text(s));

		log_warn("session %u: SELECT %.200s refused: %.200s", s->id, mbox, imap_server_text(s));
		/* a folder in use or a server in trouble ([INUSE],
		 * [UNAVAILABLE]) is no folder gone: a change being resolved
		 * must wait, not be given up; a bare NO still means gone */
		return err == -EIO && !code ? -ENOENT : err;
	}
	if (r != MAILIMAP_NO_ERROR) {
		char what[240]; /* which folder: a stall is often one folder's */

		snprintf(what, sizeof(what), "SELECT %.200s", mbox);
		r = imap_map_error(s, r, what);
		if (s->timed_out)
			imap_stall_note(mbox);
		return r;
	}
	imap_stall_clear(mbox);
	s->selected = strdup(mbox);
	if (!s->selected)
		return -ENOMEM;
	s->state.highestmodseq = modseq;
	imap_read_state(s, state);
	return 0;
}

int imap_expect_validity(struct imap_session *s, uint32_t expected)
{
	struct imap_folder_state st;
	char *mbox;
	int r;

	if (s->state.uidvalidity == expected)
		return 0;
	if (!s->selected)
		return -ESTALE;
	/* this session may have selected the folder before it was re-created */
	mbox = strdup(s->selected);
	if (!mbox)
		return -ENOMEM;
	r = imap_select(s, mbox, true, &st);
	free(mbox);
	if (r < 0)
		return r;
	return st.uidvalidity == expected ? 0 : -ESTALE;
}

/* Unix time of an INTERNALDATE; 0 for an impossible date. */
static int64_t internaldate_to_unix(const struct mailimap_date_time *dt)
{
	int zone = dt->dt_zone; /* e.g. -0130 arrives as -130 */
	int zone_min = (zone / 100) * 60 + zone % 100;
	struct tm tm = { .tm_year = dt->dt_year - 1900,
			 .tm_mon = dt->dt_month - 1,
			 .tm_mday = dt->dt_day,
			 .tm_hour = dt->dt_hour,
			 .tm_min = dt->dt_min,
			 .tm_sec = dt->dt_sec };
	int64_t t;

	if (dt->dt_month < 1 || dt->dt_month > 12 || dt->dt_day < 1 || dt->dt_day > 31)
		return 0;
	t = timegm(&tm);
	return t ? t - (int64_t)zone_min * 60 : 0;
}

static uint32_t flag_bits(const struct mailimap_msg_att_dynamic *dyn)
{
	uint32_t bits = 0;

	if (!dyn || !dyn->att_list)
		return 0;
	for (clistiter *it = clist_begin(dyn->att_list); it; it = clist_next(it)) {
		const struct mailimap_flag_fetch *ff = clist_content(it);

		if (ff->fl_type != MAILIMAP_FLAG_FETCH_OTHER || !ff->fl_flag)
			continue;
		switch (ff->fl_flag->fl_type) {
		case MAILIMAP_FLAG_SEEN:
			bits |= IMAP_FLAG_SEEN;
			break;
		case MAILIMAP_FLAG_ANSWERED:
			bits |= IMAP_FLAG_ANSWERED;
			break;
		case MAILIMAP_FLAG_FLAGGED:
			bits |= IMAP_FLAG_FLAGGED;
			break;
		case MAILIMAP_FLAG_DELETED:
			bits |= IMAP_FLAG_DELETED;
			break;
		case MAILIMAP_FLAG_DRAFT:
			bits |= IMAP_FLAG_DRAFT;
			break;
		default:
			break;
		}
	}
	return bits;
}

void imap_meta_from_att(const struct mailimap_msg_att *att, struct imap_meta *m)
{
	memset(m, 0, sizeof(*m));
	for (clistiter *it = clist_begin(att->att_list); it; it = clist_next(it)) {
		const struct mailimap_msg_att_item *item = clist_content(it);
		const struct mailimap_msg_att_static *st;

		if (item->att_type == MAILIMAP_MSG_ATT_ITEM_DYNAMIC) {
			m->flags = flag_bits(item->att_data.att_dyn);
			continue;
		}
		if (item->att_type != MAILIMAP_MSG_ATT_ITEM_STATIC)
			continue;
		st = item->att_data.att_static;
		switch (st->att_type) {
		case MAILIMAP_MSG_ATT_UID:
			m->uid = st->att_data.att_uid;
			break;
		case MAILIMAP_MSG_ATT_RFC822_SIZE:
			m->size = st->att_data.att_rfc822_size;
			m->has_size = true;
			break;
		case MAILIMAP_MSG_ATT_INTERNALDATE:
			if (st->att_data.att_internal_date)
				m->internaldate = internaldate_to_unix(st->att_data.att_internal_date);
			m->has_date = true;
			break;
		case MAILIMAP_MSG_ATT_BODY_SECTION:
			if (st->att_data.att_body_section) {
				m->headers = st->att_data.att_body_section->sec_body_part;
				m->headers_len = st->att_data.att_body_section->sec_length;
				m->origin = st->att_data.att_body_section->sec_origin_octet;
			}
			break;
		default:
			break;
		}
	}
}

void imap_on_meta(struct mailimap_msg_att *att, void *ctx)
{
	struct meta_fetch *mf = ctx;
	struct imap_meta m;

	imap_meta_from_att(att, &m);
	if (m.uid) /* unsolicited FETCH responses carry no UID: not ours */
		mf->cb(&m, mf->ctx);
}

/* its presence is what matters: without a progress callback, libetpan
 * parses responses without calling the att handler */
void imap_on_progress(size_t current, size_t maximum, void *ctx)
{
	(void)current;
	(void)maximum;
	(void)ctx;
}

struct mailimap_fetch_att *imap_header_fields_att(const char *const *names)
{
	clist *fields = clist_new();

	for (size_t i = 0; fields && names[i]; i++) {
		char *name = strdup(names[i]);

		if (!name || clist_append(fields, name) < 0) {
			free(name);
			for (clistiter *it = clist_begin(fields); it; it = clist_next(it))
				free(clist_content(it));
			clist_free(fields);
			fields = NULL;
		}
	}
	if (!fields)
		return NULL;
	return mailimap_fetch_att_new_body_peek_section(
		mailimap_section_new_header_fields(mailimap_header_list_new(fields)));
}

void imap_fetch_request_free(struct mailimap_fetch_type *ft, struct mailimap_set *set)
{
	if (ft)
		mailimap_fetch_type_free(ft);
	if (set)
		mailimap_set_free(set);
}

/* Adds att to ft; false (and ft freed) when either is missing. */
bool imap_add_att(struct mailimap_fetch_type *ft, struct mailimap_fetch_att *att)
{
	if (ft && att && mailimap_fetch_type_new_fetch_att_list_add(ft, att) == MAILIMAP_NO_ERROR)
		return true;
	if (att)
		mailimap_fetch_att_free(att);
	if (ft)
		mailimap_fetch_type_free(ft);
	return false;
}

static struct mailimap_fetch_type *meta_fetch_type(void)
{
	static const char *const subject[] = { "Subject", NULL };
	struct mailimap_fetch_type *ft = mailimap_fetch_type_new_fetch_att_list_empty();

	if (!imap_add_att(ft, mailimap_fetch_att_new_uid()) ||
	    !imap_add_att(ft, mailimap_fetch_att_new_flags()) ||
	    !imap_add_att(ft, mailimap_fetch_att_new_rfc822_size()) ||
	    !imap_add_att(ft, mailimap_fetch_att_new_internaldate()) ||
	    !imap_add_att(ft, imap_header_fields_att(subject)))
		return NULL;
	return ft;
}

static int fetch_streaming_set(struct imap_session *s, bool by_uid, struct mailimap_set *set,
			       struct mailimap_fetch_type *ft, uint64_t changedsince, imap_meta_cb *cb,
			       void *ctx)
{
	struct meta_fetch mf = { cb, ctx };
	clist *res = NULL;
	int r;

	if (!ft || !set) {
		imap_fetch_request_free(ft, set);
		return -ENOMEM;
	}
	mailimap_set_msg_att_handler(s->imap, imap_on_meta, &mf);
	mailimap_set_progress_callback(s->imap, NULL, imap_on_progress, NULL);
	if (changedsince)
		r = mailimap_uid_fetch_changedsince(s->imap, set, ft, changedsince, &res);
	else if (by_uid)
		r = mailimap_uid_fetch(s->imap, set, ft, &res);
	else
		r = mailimap_fetch(s->imap, set, ft, &res);
	mailimap_set_msg_att_handler(s->imap, NULL, NULL);
	mailimap_set_progress_callback(s->imap, NULL, NULL, NULL);
	if (r == MAILIMAP_NO_ERROR)
		mailimap_fetch_list_free(res);
	imap_fetch_request_free(ft, set);
	return imap_map_error(s, r, "FETCH");
}

int imap_fetch_streaming(struct imap_session *s, bool by_uid, uint32_t lo, uint32_t hi,
			 struct mailimap_fetch_type *ft, uint64_t changedsince, imap_meta_cb *cb, void *ctx)
{
	return fetch_streaming_set(s, by_uid, mailimap_set_new_interval(lo, hi), ft, changedsince, cb, ctx);
}

int imap_fetch_meta_uids(struct imap_session *s, const uint32_t *uids, size_t n, imap_meta_cb *cb, void *ctx)
{
	struct mailimap_set *set;
	int r;

	if (n == 0)
		return 0;
	r = imap_uidset_build(uids, n, &set);
	if (r < 0)
		return r;
	return fetch_streaming_set(s, true, set, meta_fetch_type(), 0, cb, ctx);
}

int imap_fetch_meta(struct imap_session *s, bool by_uid, uint32_t lo, uint32_t hi, imap_meta_cb *cb,
		    void *ctx)
{
	return imap_fetch_streaming(s, by_uid, lo, hi, meta_fetch_type(), 0, cb, ctx);
}

int imap_fetch_uid_size(struct imap_session *s, uint32_t seq, imap_meta_cb *cb, void *ctx)
{
	struct mailimap_fetch_type *ft = mailimap_fetch_type_new_fetch_att_list_empty();

	if (!imap_add_att(ft, mailimap_fetch_att_new_uid()) ||
	    !imap_add_att(ft, mailimap_fetch_att_new_rfc822_size()))
		return -ENOMEM;
	return imap_fetch_streaming(s, false, seq, seq, ft, 0, cb, ctx);
}

int imap_search_all(struct imap_session *s, uint32_t **uids, size_t *count)
{
	struct mailimap_search_key *key = mailimap_search_key_new_all();
	clist *res = NULL;
	size_t n = 0;
	int r;

	*uids = NULL;
	*count = 0;
	if (!key)
		return -ENOMEM;
	r = mailimap_uid_search(s->imap, NULL, key, &res);
	mailimap_search_key_free(key);
	if (r != MAILIMAP_NO_ERROR)
		return imap_map_error(s, r, "UID SEARCH");
	*uids = malloc((clist_count(res) + 1) * sizeof(**uids));
	if (!*uids) {
		mailimap_search_result_free(res);
		return -ENOMEM;
	}
	for (clistiter *it = clist_begin(res); it; it = clist_next(it))
		(*uids)[n++] = *(uint32_t *)clist_content(it);
	mailimap_search_result_free(res);
	/* RFC 3501 promises no order, and callers binary-search */
	if (n > 1)
		qsort(*uids, n, sizeof(**uids), imap_cmp_uid);
	*count = n;
	return 0;
}

/* Where one message's bytes go as they stream in. */
struct body_fetch {
	char *buf;
	size_t room;
	size_t got;
	size_t max; /* with grow: the buffer may grow up to this */
	bool grow;
	bool overflow;
	uint32_t origin; /* the offset asked for: a response's <origin> must be it */
	bool misplaced;  /* ... and was not (its origin in got_origin) */
	uint32_t got_origin;
	imap_chunk_cb *sink; /* set: the bytes go here, buf is not used */
	void *sink_ctx;
};

static bool on_body(int type, struct mailimap_msg_att_body_section *section, const char *bytes, size_t len,
		    void *ctx)
{
	struct body_fetch *bf = ctx;

	(void)type;
	if (section && section->sec_origin_octet != bf->origin) {
		/* the bytes of another range than asked: placed where we
		 * asked, they would be the wrong bytes of the message */
		bf->misplaced = true;
		bf->got_origin = section->sec_origin_octet;
		return false;
	}
	if (bf->grow && len > bf->room - bf->got && bf->got + len <= bf->max) {
		size_t room = bf->room ? bf->room : 65536;
		char *p;

		while (room < bf->got + len)
			room *= 2;
		p = realloc(bf->buf, room);
		if (!p)
			return false;
		bf->buf = p;
		bf->room = room;
	}
	if (len > bf->room - bf->got) {
		/* more than we asked for: a confused or hostile server */
		bf->overflow = true;
		return false;
	}
	bf->got += len;
	if (bf->sink) {
		/* a sink full before the range is: more than asked for, too */
		if (len && !bf->sink(bytes, len, bf->sink_ctx))
			bf->overflow = true;
		return !bf->overflow;
	}
	if (len) /* an empty literal (a message expunged meanwhile): buf may be NULL */
		memcpy(bf->buf + bf->got - len, bytes, len);
	return true;
}

/* Finds our message among the responses; a body the handler did not take
 * (libetpan keeps short strings itself) is copied from the response. */
static bool collect_body(clist *res, uint32_t uid, struct body_fetch *bf)
{
	struct imap_meta m;

	for (clistiter *it = clist_begin(res); it; it = clist_next(it)) {
		imap_meta_from_att(clist_content(it), &m);
		if (m.uid != uid)
			continue;
		if (bf->got || !m.headers || !m.headers_len)
			return true;
		if (m.origin != bf->origin) { /* as in on_body */
			bf->misplaced = true;
			bf->got_origin = m.origin;
		} else {
			on_body(0, NULL, m.headers, m.headers_len, bf);
		}
		return true;
	}
	return false;
}

/* UID FETCH uid (UID <att>) with the body streamed into bf.  Takes att. */
static int fetch_section(struct imap_session *s, uint32_t uid, struct mailimap_fetch_att *att,
			 struct body_fetch *bf, const char *what)
{
	struct mailimap_fetch_type *ft = mailimap_fetch_type_new_fetch_att_list_empty();
	struct mailimap_set *set = mailimap_set_new_single(uid);
	clist *res = NULL;
	int r;

	if (!ft || !set || !att) {
		imap_fetch_request_free(ft, set);
		if (att)
			mailimap_fetch_att_free(att);
		return -ENOMEM;
	}
	mailimap_fetch_type_new_fetch_att_list_add(ft, mailimap_fetch_att_new_uid());
	mailimap_fetch_type_new_fetch_att_list_add(ft, att);
	imap_allow(s, bf->grow ? bf->max : bf->room);
	mailimap_set_msg_body_handler(s->imap, on_body, bf);
	r = mailimap_uid_fetch(s->imap, set, ft, &res);
	mailimap_set_msg_body_handler(s->imap, NULL, NULL);
	imap_fetch_request_free(ft, set);
	if (r == MAILIMAP_NO_ERROR) {
		r = collect_body(res, uid, bf) ? 0 : -ENOENT;
		mailimap_fetch_list_free(res);
	} else if (!bf->overflow && !bf->misplaced) {
		return imap_map_error(s, r, what);
	}
	if (bf->misplaced) {
		log_warn("session %u: server sent the bytes of UID %u from offset %u, not %u as asked", s->id,
			 uid, bf->got_origin, bf->origin);
		s->dead = true;
		return -EIO;
	}
	if (bf->overflow) {
		log_warn("session %u: server sent more than %zu bytes for UID %u", s->id,
			 bf->grow ? bf->max : bf->room, uid);
		s->dead = true;
		return -EIO;
	}
	return r;
}

/* UID FETCH BODY.PEEK[]<offset.len> of uid, the bytes going where bf says. */
static struct mailimap_section *part_section(const char *part_id);

/* BODY.PEEK[part]<offset.room>; part NULL: the whole message's bytes */
static int fetch_range(struct imap_session *s, uint32_t uid, const char *part, uint32_t offset,
		       struct body_fetch *bf)
{
	struct mailimap_section *sec;

	if (bf->room == 0) /* libetpan would send <offset.0> as BODY.PEEK[], the whole message */
		return 0;
	if (!(sec = part ? part_section(part) : mailimap_section_new(NULL)))
		return part ? -EINVAL : -ENOMEM;
	bf->origin = offset;
	return fetch_section(s, uid, mailimap_fetch_att_new_body_peek_section_partial(sec, offset, bf->room),
			     bf, "UID FETCH BODY");
}

int imap_fetch_body(struct imap_session *s, uint32_t uid, uint32_t offset, uint32_t len, char *buf,
		    size_t *got)
{
	struct body_fetch bf = { .buf = buf, .room = len };
	int r = fetch_range(s, uid, NULL, offset, &bf);

	*got = r == 0 ? bf.got : 0;
	return r;
}

int imap_fetch_part_range(struct imap_session *s, uint32_t uid, const char *part_id, uint32_t offset,
			  uint32_t len, char *buf, size_t *got)
{
	struct body_fetch bf = { .buf = buf, .room = len };
	int r = fetch_range(s, uid, part_id, offset, &bf);

	*got = r == 0 ? bf.got : 0;
	return r;
}

int imap_fetch_body_stream(struct imap_session *s, uint32_t uid, uint32_t offset, uint32_t len,
			   imap_chunk_cb *sink, void *ctx, size_t *got)
{
	struct body_fetch bf = { .room = len, .sink = sink, .sink_ctx = ctx };
	int r = fetch_range(s, uid, NULL, offset, &bf);

	*got = bf.got;
	return r;
}

/* One UID FETCH for many messages: the body handler collects a message's
 * bytes, and the response's att handler (which libetpan calls right after,
 * with the UID) hands them over. */
struct batch_fetch {
	struct body_fetch body;
	bool has_body;
	imap_part_cb *cb;
	void *ctx;
};

static bool on_batch_body(int type, struct mailimap_msg_att_body_section *section, const char *bytes,
			  size_t len, void *ctx)
{
	struct batch_fetch *bf = ctx;

	bf->has_body = true;
	return on_body(type, section, bytes, len, &bf->body);
}

static void on_batch_att(struct mailimap_msg_att *att, void *ctx)
{
	struct batch_fetch *bf = ctx;
	struct imap_meta m;

	imap_meta_from_att(att, &m);
	if (m.uid && !bf->has_body && m.headers) { /* a short body libetpan kept */
		on_body(0, NULL, m.headers, m.headers_len, &bf->body);
		bf->has_body = true;
	}
	if (m.uid && bf->has_body && !bf->body.overflow)
		bf->cb(m.uid, bf->body.buf ? bf->body.buf : "", bf->body.got, bf->ctx);
	bf->body.got = 0;
	bf->body.overflow = false;
	bf->has_body = false;
}

int imap_fetch_heads(struct imap_session *s, const uint32_t *uids, size_t n, uint32_t len, imap_part_cb *cb,
		     void *ctx)
{
	struct batch_fetch bf = { .body = { .grow = true, .max = len }, .cb = cb, .ctx = ctx };
	struct mailimap_fetch_type *ft = mailimap_fetch_type_new_fetch_att_list_empty();
	struct mailimap_set *set = mailimap_set_new_empty();
	struct mailimap_section *sec = mailimap_section_new(NULL);
	clist *res = NULL;
	bool ok = set != NULL;
	int r;

	for (size_t i = 0; ok && i < n; i++)
		ok = mailimap_set_add_single(set, uids[i]) == MAILIMAP_NO_ERROR;
	if (!ft || !ok || !sec) {
		imap_fetch_request_free(ft, set);
		if (sec)
			mailimap_section_free(sec);
		return -ENOMEM;
	}
	mailimap_fetch_type_new_fetch_att_list_add(ft, mailimap_fetch_att_new_uid());
	mailimap_fetch_type_new_fetch_att_list_add(ft,
						   mailimap_fetch_att_new_body_peek_section_partial(sec, 0,
												    len));
	imap_allow(s, (uint64_t)n * len);
	mailimap_set_msg_body_handler(s->imap, on_batch_body, &bf);
	mailimap_set_msg_att_handler(s->imap, on_batch_att, &bf);
	mailimap_set_progress_callback(s->imap, NULL, imap_on_progress, NULL);
	r = mailimap_uid_fetch(s->imap, set, ft, &res);
	mailimap_set_msg_body_handler(s->imap, NULL, NULL);
	mailimap_set_msg_att_handler(s->imap, NULL, NULL);
	mailimap_set_progress_callback(s->imap, NULL, NULL, NULL);
	imap_fetch_request_free(ft, set);
	free(bf.body.buf);
	if (r == MAILIMAP_NO_ERROR)
		mailimap_fetch_list_free(res);
	return imap_map_error(s, r, "UID FETCH (prefetch)");
}

/* "2.1" -> a section-part list; NULL on bad syntax. */
static struct mailimap_section *part_section(const char *part_id)
{
	clist *nums = clist_new();
	const char *p = part_id;

	while (nums && *p) {
		char *end;
		unsigned long v = strtoul(p, &end, 10);
		uint32_t *n;

		if (end == p || v == 0 || v > UINT32_MAX || (*end && *end != '.'))
			break;
		n = malloc(sizeof(*n));
		if (!n || clist_append(nums, n) < 0) {
			free(n);
			break;
		}
		*n = (uint32_t)v;
		p = *end ? end + 1 : end;
	}
	if (!nums || *p || clist_isempty(nums)) {
		for (clistiter *it = nums ? clist_begin(nums) : NULL; it; it = clist_next(it))
			free(clist_content(it));
		if (nums)
			clist_free(nums);
		return NULL;
	}
	return mailimap_section_new_part(mailimap_section_part_new(nums));
}

int imap_fetch_part(struct imap_session *s, uint32_t uid, const char *part_id, size_t max, char **data,
		    size_t *len)
{
	struct body_fetch bf = { .grow = true, .max = max };
	struct mailimap_section *sec = part_section(part_id);
	int r;

	*data = NULL;
	*len = 0;
	if (!sec)
		return -EINVAL;
	r = fetch_section(s, uid, mailimap_fetch_att_new_body_peek_section(sec), &bf, "UID FETCH BODY[part]");
	if (r < 0) {
		free(bf.buf);
		return r;
	}
	*data = bf.buf ? bf.buf : strdup("");
	*len = bf.got;
	return *data ? 0 : -ENOMEM;
}

/* imap_binary.c - owns RFC 3516 BINARY, which libetpan 1.9.4 does not
 * parse: a parser for the BINARY[...] (and BINARY.SIZE[...]) items of a
 * FETCH response, registered through libetpan's extension API, and the
 * fetch built on it: a range of one part's decoded bytes.  The server undoes
 * the part's Content-Transfer-Encoding, so a range costs its own bytes, not
 * the whole part's.  BINARY.SIZE is parsed but never asked for: Dovecot
 * 2.3.19 reports some base64 parts followed by another part as smaller than
 * the bytes BINARY[] then delivers (model/parts.c counts sizes itself). */
#include "imap.h"
#include "imap_p.h"
#include "util/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* libetpan's parser helpers: exported, but in no installed header. */
int mailimap_nstring_parse(mailstream *fd, MMAPString *buffer, struct mailimap_parser_context *ctx,
			   size_t *indx, char **result, size_t *result_len, size_t progr_rate,
			   progress_function *progr_fun);
void mailimap_nstring_free(char *str);

/* A response item, parsed: owned by libetpan's response list. */
struct binary_item {
	bool is_size; /* BINARY.SIZE[section] n, else BINARY[section]<origin> data */
	char section[IMAP_BINARY_SECTION_MAX + 1];
	uint64_t size;   /* UINT64_MAX when the server's number overflowed it */
	bool has_origin; /* BINARY[...]<origin> */
	uint64_t origin; /* as sent, so that any other than asked is caught */
	char *data;      /* libetpan's nstring; NULL for NIL */
	size_t len;
};

/* What the fetch in progress may receive.  The parser finds it through the
 * session's body handler (its context), which is set only while one of our
 * fetches runs: in any other response a BINARY literal gets no room. */
struct binary_fetch {
	size_t room;      /* the most bytes a BINARY[...] value may have */
	bool overflow;    /* a value announced or had more */
	uint64_t offered; /* ... this many */
	bool stray_body;  /* a BODY[...] literal nobody asked for */
};

bool imap_binary_section_valid(const char *section)
{
	size_t n = strlen(section);
	bool start = true; /* at the first digit of a number */

	if (n == 0 || n > IMAP_BINARY_SECTION_MAX)
		return false;
	for (const char *p = section; *p; p++) {
		if (*p == '.') {
			if (start)
				return false;
			start = true;
		} else if (*p >= '0' && *p <= '9') {
			if (start && *p == '0') /* nz-number: "0" and "01" are no part */
				return false;
			start = false;
		} else {
			return false;
		}
	}
	/* each number is a part index: a 32-bit one, as libetpan's own sections */
	for (const char *p = section; *p;) {
		char *end;
		unsigned long long v = strtoull(p, &end, 10);

		if (v > UINT32_MAX)
			return false;
		p = *end ? end + 1 : end;
	}
	return !start;
}

/* ---- the parser ---- */

static bool on_unasked_body(int type, struct mailimap_msg_att_body_section *section, const char *bytes,
			    size_t len, void *ctx)
{
	struct binary_fetch *bf = ctx;

	(void)type;
	(void)section;
	(void)bytes;
	(void)len;
	bf->stray_body = true;
	return false;
}

static struct binary_fetch *fetch_of(const struct mailimap_parser_context *ctx)
{
	if (ctx && ctx->msg_body_handler == on_unasked_body)
		return ctx->msg_body_handler_context;
	return NULL;
}

/* The byte at cur, or -1 past what libetpan has read: a response line is
 * in buffer whole, up to its CRLF or the {n} of a literal. */
static int peek(const MMAPString *b, size_t cur)
{
	return cur < b->len ? (unsigned char)b->str[cur] : -1;
}

static bool take_char(const MMAPString *b, size_t *cur, char c)
{
	if (peek(b, *cur) != (unsigned char)c)
		return false;
	(*cur)++;
	return true;
}

static bool take_word(const MMAPString *b, size_t *cur, const char *word)
{
	size_t n = strlen(word);

	if (*cur > b->len || b->len - *cur < n || strncasecmp(b->str + *cur, word, n) != 0)
		return false;
	*cur += n;
	return true;
}

/* 1*DIGIT; a number past UINT64_MAX saturates (the caller bounds it). */
static bool take_number(const MMAPString *b, size_t *cur, uint64_t *v)
{
	size_t start = *cur;
	int c;

	*v = 0;
	while ((c = peek(b, *cur)) >= '0' && c <= '9') {
		unsigned d = (unsigned)(c - '0');

		*v = *v > (UINT64_MAX - d) / 10 ? UINT64_MAX : *v * 10 + d;
		(*cur)++;
	}
	return *cur > start;
}

/* "[" section-part "]", the part as valid as one we send */
static bool take_section(const MMAPString *b, size_t *cur, char *out)
{
	size_t n = 0;
	int c;

	if (!take_char(b, cur, '['))
		return false;
	while ((c = peek(b, *cur)) != ']') {
		if (c < 0 || n == IMAP_BINARY_SECTION_MAX)
			return false;
		out[n++] = (char)c;
		(*cur)++;
	}
	out[n] = '\0';
	(*cur)++;
	return imap_binary_section_valid(out);
}

/* Before libetpan reads a literal (whose size it would allocate at once):
 * one announced larger than the fetch has room for fails the parse. */
static bool literal_fits(const MMAPString *b, size_t cur, struct binary_fetch *bf)
{
	size_t room = bf ? bf->room : 0;
	uint64_t n;

	if (!take_char(b, &cur, '{') || !take_number(b, &cur, &n))
		return true; /* no literal (or none libetpan takes): its parser decides */
	if (n <= room)
		return true;
	if (bf) {
		bf->overflow = true;
		bf->offered = n;
	}
	return false;
}

/* BINARY[section]<origin> SP (nstring / literal8) */
static int parse_binary_value(mailstream *fd, MMAPString *buffer, struct mailimap_parser_context *ctx,
			      size_t *cur, struct binary_item *it, size_t rate, progress_function *fun)
{
	struct binary_fetch *bf = fetch_of(ctx);
	int r;

	if (take_char(buffer, cur, '<')) {
		if (!take_number(buffer, cur, &it->origin) || !take_char(buffer, cur, '>'))
			return MAILIMAP_ERROR_PARSE;
		it->has_origin = true;
	}
	if (!take_char(buffer, cur, ' '))
		return MAILIMAP_ERROR_PARSE;
	/* literal8 ("~{n}", RFC 3516; Dovecot's when the part holds a NUL) is
	 * a literal once its '~' is passed: libetpan reads {n}, CRLF and n
	 * bytes whatever they are */
	if (take_char(buffer, cur, '~') && peek(buffer, *cur) != '{')
		return MAILIMAP_ERROR_PARSE;
	if (!literal_fits(buffer, *cur, bf))
		return MAILIMAP_ERROR_PARSE;
	r = mailimap_nstring_parse(fd, buffer, ctx, cur, &it->data, &it->len, rate, fun);
	if (r != MAILIMAP_NO_ERROR)
		return r;
	if (it->data && it->len > (bf ? bf->room : 0)) { /* a quoted string is not announced */
		if (bf) {
			bf->overflow = true;
			bf->offered = it->len;
		}
		return MAILIMAP_ERROR_PARSE;
	}
	return MAILIMAP_NO_ERROR;
}

/* binary-size = "BINARY.SIZE" section-binary SP number
 * binary-data = "BINARY" section-binary ["<" number ">"] SP (nstring / literal8) */
static int parse_item(mailstream *fd, MMAPString *buffer, struct mailimap_parser_context *ctx, size_t *indx,
		      struct binary_item *it, size_t rate, progress_function *fun)
{
	size_t cur = *indx;
	int r = MAILIMAP_NO_ERROR;

	if (take_word(buffer, &cur, "BINARY.SIZE")) {
		it->is_size = true;
		if (!take_section(buffer, &cur, it->section) || !take_char(buffer, &cur, ' ') ||
		    !take_number(buffer, &cur, &it->size))
			r = MAILIMAP_ERROR_PARSE;
	} else if (take_word(buffer, &cur, "BINARY")) {
		if (!take_section(buffer, &cur, it->section))
			r = MAILIMAP_ERROR_PARSE;
		else
			r = parse_binary_value(fd, buffer, ctx, &cur, it, rate, fun);
	} else {
		r = MAILIMAP_ERROR_PARSE;
	}
	if (r == MAILIMAP_NO_ERROR)
		*indx = cur;
	return r;
}

static struct mailimap_extension_api binary_api;

static void item_free(struct binary_item *it)
{
	if (!it)
		return;
	if (it->data)
		mailimap_nstring_free(it->data);
	free(it);
}

static int binary_parser(int calling_parser, mailstream *fd, MMAPString *buffer,
			 struct mailimap_parser_context *ctx, size_t *indx,
			 struct mailimap_extension_data **result, size_t rate, progress_function *fun)
{
	struct binary_item *it;
	int r;

	if (calling_parser != MAILIMAP_EXTENDED_PARSER_FETCH_DATA)
		return MAILIMAP_ERROR_PARSE;
	it = calloc(1, sizeof(*it));
	if (!it)
		return MAILIMAP_ERROR_MEMORY;
	r = parse_item(fd, buffer, ctx, indx, it, rate, fun);
	if (r == MAILIMAP_NO_ERROR) {
		*result = mailimap_extension_data_new(&binary_api, 0, it);
		if (!*result)
			r = MAILIMAP_ERROR_MEMORY;
	}
	if (r != MAILIMAP_NO_ERROR)
		item_free(it);
	return r;
}

static void binary_free(struct mailimap_extension_data *data)
{
	if (!data)
		return;
	item_free(data->ext_data);
	free(data);
}

static struct mailimap_extension_api binary_api = {
	.ext_name = "BINARY",
	.ext_id = -1,
	.ext_parser = binary_parser,
	.ext_free = binary_free,
};

void imap_binary_init(void)
{
	mailimap_extension_register(&binary_api);
}

bool imap_has_binary(struct imap_session *s)
{
	return imap_has_capability(s, "BINARY");
}

/* ---- the fetches ---- */

static uint32_t att_uid(const struct mailimap_msg_att *att)
{
	for (clistiter *it = clist_begin(att->att_list); it; it = clist_next(it)) {
		const struct mailimap_msg_att_item *item = clist_content(it);

		if (item->att_type == MAILIMAP_MSG_ATT_ITEM_STATIC &&
		    item->att_data.att_static->att_type == MAILIMAP_MSG_ATT_UID)
			return item->att_data.att_static->att_data.att_uid;
	}
	return 0;
}

/* The item of uid's responses for section (is_size: its BINARY.SIZE), or
 * NULL; *seen whether any response was uid's. */
static const struct binary_item *find_item(clist *res, uint32_t uid, const char *section, bool is_size,
					   bool *seen)
{
	*seen = false;
	for (clistiter *r = clist_begin(res); r; r = clist_next(r)) {
		const struct mailimap_msg_att *att = clist_content(r);

		if (att_uid(att) != uid)
			continue;
		*seen = true;
		for (clistiter *it = clist_begin(att->att_list); it; it = clist_next(it)) {
			const struct mailimap_msg_att_item *item = clist_content(it);
			const struct binary_item *b;

			if (item->att_type != MAILIMAP_MSG_ATT_ITEM_EXTENSION ||
			    item->att_data.att_extension_data->ext_extension != &binary_api)
				continue;
			b = item->att_data.att_extension_data->ext_data;
			if (b->is_size == is_size && strcmp(b->section, section) == 0)
				return b;
		}
	}
	return NULL;
}

/* UID FETCH uid (UID items...) with bf's limits; *res on success.  Takes ft.
 * A response breaking them fails the session: its stream is mid-response. */
static int fetch_items(struct imap_session *s, uint32_t uid, struct mailimap_fetch_type *ft,
		       struct binary_fetch *bf, clist **res, const char *what)
{
	struct mailimap_set *set = mailimap_set_new_single(uid);
	int r;

	*res = NULL;
	if (!set) {
		mailimap_fetch_type_free(ft);
		return -ENOMEM;
	}
	imap_allow(s, bf->room);
	mailimap_set_msg_body_handler(s->imap, on_unasked_body, bf);
	r = mailimap_uid_fetch(s->imap, set, ft, res);
	mailimap_set_msg_body_handler(s->imap, NULL, NULL);
	imap_fetch_request_free(ft, set);
	if (r == MAILIMAP_NO_ERROR)
		return 0;
	*res = NULL; /* libetpan leaves it dangling after an error */
	if (bf->overflow) {
		log_warn("session %u: %s of UID %u: the server offered %llu bytes, %zu asked for", s->id,
			 what, uid, (unsigned long long)bf->offered, bf->room);
		s->dead = true;
		return -EIO;
	}
	if (bf->stray_body) {
		log_warn("session %u: %s of UID %u: the server sent a body not asked for", s->id, what, uid);
		s->dead = true;
		return -EIO;
	}
	return imap_map_error(s, r, what);
}

static struct mailimap_fetch_type *uid_fetch_type(void)
{
	struct mailimap_fetch_type *ft = mailimap_fetch_type_new_fetch_att_list_empty();

	return imap_add_att(ft, mailimap_fetch_att_new_uid()) ? ft : NULL;
}

/* Adds the item text to ft (freed with ft on failure). */
static bool add_item(struct mailimap_fetch_type *ft, const char *text)
{
	char *copy = strdup(text);
	struct mailimap_fetch_att *att = copy ? mailimap_fetch_att_new_extension(copy) : NULL;

	if (copy && !att)
		free(copy);
	return imap_add_att(ft, att);
}

int imap_fetch_binary(struct imap_session *s, uint32_t uid, const char *section, uint32_t offset,
		      uint32_t len, char *buf, size_t *got)
{
	char text[IMAP_BINARY_SECTION_MAX + 48];
	struct binary_fetch bf = { .room = len };
	const struct binary_item *b;
	struct mailimap_fetch_type *ft;
	clist *res;
	bool seen;
	int r;

	*got = 0;
	if (!imap_binary_section_valid(section))
		return -EINVAL;
	if (!imap_has_binary(s))
		return -EOPNOTSUPP;
	if (uid == 0)
		return -ENOENT;
	if (len == 0) /* <offset.0> is no valid partial */
		return 0;
	snprintf(text, sizeof(text), "BINARY.PEEK[%s]<%u.%u>", section, offset, len);
	ft = uid_fetch_type();
	if (!ft || !add_item(ft, text))
		return -ENOMEM;
	r = fetch_items(s, uid, ft, &bf, &res, "UID FETCH BINARY");
	if (r < 0)
		return r;
	b = find_item(res, uid, section, false, &seen);
	if (!seen) {
		r = -ENOENT;
	} else if (!b) {
		log_warn("session %u: UID FETCH BINARY of UID %u: no part %s in the answer (%.200s)", s->id,
			 uid, section, imap_server_text(s));
		r = -EIO;
	} else if (b->has_origin ? b->origin != offset : offset != 0) {
		/* the bytes of another range: placed where we asked, they
		 * would be the wrong bytes of the part */
		log_warn("session %u: server sent the bytes of UID %u part %s from offset %llu, not %u as "
			 "asked",
			 s->id, uid, section, b->has_origin ? (unsigned long long)b->origin : 0ULL, offset);
		s->dead = true;
		r = -EIO;
	} else {
		if (b->len) /* the parser held it to len */
			memcpy(buf, b->data, b->len);
		*got = b->len;
	}
	mailimap_fetch_list_free(res);
	return r;
}

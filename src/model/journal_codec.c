/* journal_codec.c - owns the byte format of the change journal (see
 * journal_codec.h): pure functions, unit-tested and fuzzed. */
#include "journal_codec.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

enum field {
	F_ID = 1,
	F_OP,
	F_FLAGS,
	F_RECORDED,
	F_SRC,
	F_SRC_VALIDITY,
	F_SRC_UID,
	F_DEST,
	F_DEST_VALIDITY,
	F_DEST_UIDNEXT,
	F_MESSAGE_ID,
	F_SIZE,
	F_INTERNALDATE,
	F_TEXT,
	F_STAGED,
	F_AUX,
};

static const char magic[2] = { 'I', 'J' };

static void put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p)
{
	uint32_t v = 0;

	for (int i = 3; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint64_t get_u64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* A growing payload; on allocation failure `failed` sticks. */
struct out {
	uint8_t *buf;
	size_t len, cap;
	bool failed;
};

static void put_field(struct out *o, enum field tag, const void *data, size_t n)
{
	if (o->failed)
		return;
	if (o->len + 5 + n > o->cap) {
		size_t cap = (o->len + 5 + n) * 2;
		uint8_t *b = realloc(o->buf, cap);

		if (!b) {
			o->failed = true;
			return;
		}
		o->buf = b;
		o->cap = cap;
	}
	o->buf[o->len] = (uint8_t)tag;
	put_u32(o->buf + o->len + 1, (uint32_t)n);
	memcpy(o->buf + o->len + 5, data, n);
	o->len += 5 + n;
}

static void put_num(struct out *o, enum field tag, uint64_t v)
{
	uint8_t b[8];

	put_u64(b, v);
	put_field(o, tag, b, sizeof(b));
}

static void put_str(struct out *o, enum field tag, const char *s)
{
	if (s)
		put_field(o, tag, s, strlen(s));
}

static uint32_t record_crc(uint8_t kind, const uint8_t *len4, const uint8_t *payload, size_t n)
{
	uLong c = crc32_z(0, &kind, 1);

	c = crc32_z(c, len4, 4);
	return (uint32_t)crc32_z(c, payload, n);
}

/* Frames payload as a record of kind into a new buffer. */
static int frame(uint8_t kind, const uint8_t *payload, size_t n, uint8_t **out, size_t *len)
{
	uint8_t *r;

	if (n > JOURNAL_MAX_PAYLOAD)
		return -E2BIG;
	r = malloc(n + JOURNAL_REC_OVERHEAD);
	if (!r)
		return -ENOMEM;
	memcpy(r, magic, 2);
	r[2] = kind;
	put_u32(r + 3, (uint32_t)n);
	memcpy(r + 7, payload, n);
	put_u32(r + 7 + n, record_crc(kind, r + 3, payload, n));
	*out = r;
	*len = n + JOURNAL_REC_OVERHEAD;
	return 0;
}

int journal_encode_add(const struct journal_entry *e, uint8_t **out, size_t *len)
{
	struct out o = { 0 };
	int r;

	put_num(&o, F_ID, e->id);
	put_num(&o, F_OP, e->op);
	put_num(&o, F_FLAGS, e->flags);
	put_num(&o, F_RECORDED, (uint64_t)e->recorded);
	put_str(&o, F_SRC, e->src);
	put_num(&o, F_SRC_VALIDITY, e->src_validity);
	put_num(&o, F_SRC_UID, e->src_uid);
	put_str(&o, F_DEST, e->dest);
	put_num(&o, F_DEST_VALIDITY, e->dest_validity);
	put_num(&o, F_DEST_UIDNEXT, e->dest_uidnext);
	put_str(&o, F_MESSAGE_ID, e->message_id);
	put_num(&o, F_SIZE, e->size);
	put_num(&o, F_INTERNALDATE, (uint64_t)e->internaldate);
	put_str(&o, F_TEXT, e->text);
	put_str(&o, F_STAGED, e->staged);
	put_str(&o, F_AUX, e->aux);
	if (o.failed) {
		free(o.buf);
		return -ENOMEM;
	}
	r = frame(JOURNAL_REC_ADD, o.buf, o.len, out, len);
	free(o.buf);
	return r;
}

size_t journal_encode_done(uint64_t id, uint8_t *buf)
{
	uint8_t payload[8];

	put_u64(payload, id);
	memcpy(buf, magic, 2);
	buf[2] = JOURNAL_REC_DONE;
	put_u32(buf + 3, sizeof(payload));
	memcpy(buf + 7, payload, sizeof(payload));
	put_u32(buf + 7 + sizeof(payload), record_crc(JOURNAL_REC_DONE, buf + 3, payload, sizeof(payload)));
	return JOURNAL_REC_OVERHEAD + sizeof(payload);
}

int journal_encode_sent(const uint64_t *ids, size_t n, uint32_t validity, uint32_t uidnext, uint8_t **out,
			size_t *len)
{
	uint8_t *payload;
	int r;

	if (n > JOURNAL_SENT_MAX_IDS)
		return -E2BIG;
	payload = malloc(12 + 8 * n);
	if (!payload)
		return -ENOMEM;
	put_u32(payload, validity);
	put_u32(payload + 4, uidnext);
	put_u32(payload + 8, (uint32_t)n);
	for (size_t i = 0; i < n; i++)
		put_u64(payload + 12 + 8 * i, ids[i]);
	r = frame(JOURNAL_REC_SENT, payload, 12 + 8 * n, out, len);
	free(payload);
	return r;
}

int journal_decode_sent(const uint8_t *p, size_t len, struct journal_sent_rec *s)
{
	if (len < 12 || get_u32(p + 8) != (len - 12) / 8 || (len - 12) % 8)
		return -EBADMSG;
	s->dest_validity = get_u32(p);
	s->dest_uidnext = get_u32(p + 4);
	s->n = (len - 12) / 8;
	s->ids = p + 12;
	return 0;
}

uint64_t journal_sent_id(const struct journal_sent_rec *s, size_t i)
{
	return get_u64(s->ids + 8 * i);
}

/* A string field: no NUL inside, at most the payload bound. */
static int take_str(char **to, const uint8_t *p, size_t n)
{
	if (*to || memchr(p, '\0', n))
		return -EBADMSG;
	*to = malloc(n + 1);
	if (!*to)
		return -ENOMEM;
	memcpy(*to, p, n);
	(*to)[n] = '\0';
	return 0;
}

static int take_field(struct journal_entry *e, enum field tag, const uint8_t *p, size_t n)
{
	uint64_t v;

	switch (tag) {
	case F_SRC:
		return take_str(&e->src, p, n);
	case F_DEST:
		return take_str(&e->dest, p, n);
	case F_MESSAGE_ID:
		return take_str(&e->message_id, p, n);
	case F_TEXT:
		return take_str(&e->text, p, n);
	case F_STAGED:
		return take_str(&e->staged, p, n);
	case F_AUX:
		return take_str(&e->aux, p, n);
	default:
		break;
	}
	if (n != 8)
		return -EBADMSG;
	v = get_u64(p);
	switch (tag) {
	case F_ID:
		e->id = v;
		return 0;
	case F_OP:
		e->op = (uint8_t)v;
		return v > 0 && v < JOURNAL_OP_MAX ? 0 : -EBADMSG;
	case F_FLAGS:
		e->flags = (uint8_t)v;
		return 0;
	case F_RECORDED:
		e->recorded = (int64_t)v;
		return 0;
	case F_SRC_VALIDITY:
		e->src_validity = (uint32_t)v;
		return v <= UINT32_MAX ? 0 : -EBADMSG;
	case F_SRC_UID:
		e->src_uid = (uint32_t)v;
		return v <= UINT32_MAX ? 0 : -EBADMSG;
	case F_DEST_VALIDITY:
		e->dest_validity = (uint32_t)v;
		return v <= UINT32_MAX ? 0 : -EBADMSG;
	case F_DEST_UIDNEXT:
		e->dest_uidnext = (uint32_t)v;
		return v <= UINT32_MAX ? 0 : -EBADMSG;
	case F_SIZE:
		e->size = v;
		return 0;
	case F_INTERNALDATE:
		e->internaldate = (int64_t)v;
		return 0;
	default:
		return 0; /* a field a later version added: ignored */
	}
}

/* A staged file's name is a plain name inside the journal directory. */
static bool safe_name(const char *s)
{
	return !s || (*s && !strchr(s, '/') && strcmp(s, ".") != 0 && strcmp(s, "..") != 0);
}

int journal_decode_add(const uint8_t *p, size_t len, struct journal_entry *e)
{
	size_t i = 0;
	int r = 0;

	memset(e, 0, sizeof(*e));
	while (r == 0 && i < len) {
		size_t n;

		if (len - i < 5) {
			r = -EBADMSG;
			break;
		}
		n = get_u32(p + i + 1);
		if (n > len - i - 5) {
			r = -EBADMSG;
			break;
		}
		r = take_field(e, (enum field)p[i], p + i + 5, n);
		i += 5 + n;
	}
	if (r == 0 && (e->op == 0 || e->id == 0 || !safe_name(e->staged)))
		r = -EBADMSG;
	if (r < 0)
		journal_entry_free(e);
	return r;
}

void journal_entry_free(struct journal_entry *e)
{
	free(e->src);
	free(e->dest);
	free(e->message_id);
	free(e->text);
	free(e->staged);
	free(e->aux);
	memset(e, 0, sizeof(*e));
}

static int dup_str(char **to, const char *s)
{
	*to = s ? strdup(s) : NULL;
	return s && !*to ? -ENOMEM : 0;
}

int journal_entry_copy(struct journal_entry *to, const struct journal_entry *from)
{
	*to = *from;
	to->src = to->dest = to->message_id = to->text = to->staged = to->aux = NULL;
	if (dup_str(&to->src, from->src) || dup_str(&to->dest, from->dest) ||
	    dup_str(&to->message_id, from->message_id) || dup_str(&to->text, from->text) ||
	    dup_str(&to->staged, from->staged) || dup_str(&to->aux, from->aux)) {
		journal_entry_free(to);
		return -ENOMEM;
	}
	return 0;
}

size_t journal_record_len(const uint8_t *data, size_t len)
{
	size_t n;

	if (len < JOURNAL_REC_OVERHEAD || memcmp(data, magic, 2) != 0 ||
	    (data[2] != JOURNAL_REC_ADD && data[2] != JOURNAL_REC_DONE && data[2] != JOURNAL_REC_SENT))
		return 0;
	n = get_u32(data + 3);
	if (n > JOURNAL_MAX_PAYLOAD || n > len - JOURNAL_REC_OVERHEAD)
		return 0;
	if (get_u32(data + 7 + n) != record_crc(data[2], data + 3, data + 7, n))
		return 0;
	return n + JOURNAL_REC_OVERHEAD;
}

int journal_scan(const uint8_t *data, size_t len, journal_record_fn *fn, void *ctx, size_t *good,
		 enum journal_scan_end *end)
{
	size_t i = 0, n;
	int r;

	*end = JOURNAL_CLEAN;
	while (i < len && (n = journal_record_len(data + i, len - i)) > 0) {
		r = fn((enum journal_kind)data[i + 2], data + i + 7, n - JOURNAL_REC_OVERHEAD, ctx);
		if (r) {
			*good = i;
			return r;
		}
		i += n;
	}
	*good = i;
	if (i == len)
		return 0;
	/* Records are appended and synced a write at a time (one record,
	 * or journal_done_many's DONE records), so a crash can cut only the
	 * last write.  A good record further on means damage instead. */
	*end = i + 1 + journal_resync(data + i + 1, len - i - 1) < len ? JOURNAL_DAMAGED : JOURNAL_TORN_TAIL;
	return 0;
}

size_t journal_resync(const uint8_t *data, size_t len)
{
	size_t j = 0;

	while (j + JOURNAL_REC_OVERHEAD <= len &&
	       !(data[j] == magic[0] && journal_record_len(data + j, len - j)))
		j++;
	return j + JOURNAL_REC_OVERHEAD <= len ? j : len;
}

const char *journal_op_name(unsigned op)
{
	static const char *const names[JOURNAL_OP_MAX] = {
		[JOURNAL_MOVE] = "move",     [JOURNAL_EXPUNGE] = "expunge",   [JOURNAL_APPEND] = "append",
		[JOURNAL_FLAGS] = "flags",   [JOURNAL_CREATE] = "create",     [JOURNAL_DELETE] = "delete",
		[JOURNAL_RENAME] = "rename", [JOURNAL_METADATA] = "metadata",
	};

	return op < JOURNAL_OP_MAX && names[op] ? names[op] : "unknown";
}

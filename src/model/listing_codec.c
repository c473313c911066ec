/* listing_codec.c - owns the on-disk form of a saved listing
 * (listing_codec.h): encoding, and decoding that trusts nothing it reads. */
#include "listing_codec.h"
#include "cache/cache_disk.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* every listing the model builds can be saved and read back */
_Static_assert(LISTING_MAX_MESSAGES <= LISTING_MAX_COUNT, "a listing of ours is refused when loaded");

/* "1IMFSTL" and the format version, read as a host-order u64 */
#define LISTING_MAGIC (0x004c5453464d4931ull | (uint64_t)LISTING_FORMAT_VERSION << 56)

/* field offsets in the header */
enum {
	H_MAGIC = 0,
	H_UIDVALIDITY = 8,
	H_CRC = 12,
	H_COUNT = 16,
	H_NAMES_LEN = 24,
	H_MODSEQ = 32
};
/* and in a packed message */
enum {
	M_UID = 0,
	M_SIZE = 4,
	M_DATE = 8,
	M_NAME_OFF = 16,
	M_FLAGS = 20
};

struct header {
	uint64_t magic;
	uint32_t uidvalidity;
	uint32_t crc;
	uint64_t count;
	uint64_t names_len;
	uint64_t modseq;
};

static void put_header(unsigned char *p, const struct header *h)
{
	memcpy(p + H_MAGIC, &h->magic, 8);
	memcpy(p + H_UIDVALIDITY, &h->uidvalidity, 4);
	memcpy(p + H_CRC, &h->crc, 4);
	memcpy(p + H_COUNT, &h->count, 8);
	memcpy(p + H_NAMES_LEN, &h->names_len, 8);
	memcpy(p + H_MODSEQ, &h->modseq, 8);
}

static void get_header(const unsigned char *p, struct header *h)
{
	memcpy(&h->magic, p + H_MAGIC, 8);
	memcpy(&h->uidvalidity, p + H_UIDVALIDITY, 4);
	memcpy(&h->crc, p + H_CRC, 4);
	memcpy(&h->count, p + H_COUNT, 8);
	memcpy(&h->names_len, p + H_NAMES_LEN, 8);
	memcpy(&h->modseq, p + H_MODSEQ, 8);
}

static void pack_msg(unsigned char *p, const struct msg *m)
{
	uint32_t size = mb_msg_size(m);

	memcpy(p + M_UID, &m->uid, 4);
	memcpy(p + M_SIZE, &size, 4);
	memcpy(p + M_DATE, &m->date, 8);
	memcpy(p + M_NAME_OFF, &m->name_off, 4);
	p[M_FLAGS] = mb_msg_flags(m);
}

static void unpack_msg(const unsigned char *p, struct msg *m)
{
	memset(m, 0, sizeof(*m));
	memcpy(&m->uid, p + M_UID, 4);
	memcpy(&m->size, p + M_SIZE, 4);
	memcpy(&m->date, p + M_DATE, 8);
	memcpy(&m->name_off, p + M_NAME_OFF, 4);
	m->flags = p[M_FLAGS];
}

#define PACK_CHUNK 2048 /* messages packed at a time: 42 KB */

int listing_encode_stream(const struct listing *l, unsigned char header[LISTING_HEADER_SIZE],
			  listing_put_fn *put, void *ctx)
{
	struct header h = { LISTING_MAGIC, l->uidvalidity, 0, l->count, l->names_len, l->modseq };
	unsigned char chunk[PACK_CHUNK * LISTING_PACKED_MSG];
	int r = 0;

	for (size_t from = 0; r == 0 && from < l->count; from += PACK_CHUNK) {
		size_t n = l->count - from < PACK_CHUNK ? l->count - from : PACK_CHUNK;

		for (size_t i = 0; i < n; i++)
			pack_msg(chunk + i * LISTING_PACKED_MSG, &l->msgs[from + i]);
		h.crc = cache_crc32(h.crc, chunk, n * LISTING_PACKED_MSG);
		r = put(ctx, chunk, n * LISTING_PACKED_MSG);
	}
	if (r == 0 && l->names_len) { /* an empty folder has no names buffer at all */
		h.crc = cache_crc32(h.crc, l->names, l->names_len);
		r = put(ctx, l->names, l->names_len);
	}
	put_header(header, &h);
	return r;
}

struct cursor {
	unsigned char *at;
};

static int put_at_cursor(void *ctx, const void *bytes, size_t n)
{
	struct cursor *c = ctx;

	memcpy(c->at, bytes, n);
	c->at += n;
	return 0;
}

int listing_encode(const struct listing *l, unsigned char **out, size_t *len)
{
	size_t body = l->count * LISTING_PACKED_MSG + l->names_len;
	unsigned char *buf = malloc(LISTING_HEADER_SIZE + body);
	struct cursor c;

	*out = NULL;
	*len = 0;
	if (!buf)
		return -ENOMEM;
	c.at = buf + LISTING_HEADER_SIZE;
	listing_encode_stream(l, buf, put_at_cursor, &c);
	*out = buf;
	*len = LISTING_HEADER_SIZE + body;
	return 0;
}

/* The messages and names of body, checked against h, into l. */
static int decode_body(const struct header *h, const unsigned char *body, struct listing *l)
{
	l->msgs = malloc((h->count + 1) * sizeof(*l->msgs));
	l->names = malloc(h->names_len + 1);
	if (!l->msgs || !l->names)
		return -ENOMEM;
	for (size_t i = 0; i < h->count; i++) {
		unpack_msg(body + i * LISTING_PACKED_MSG, &l->msgs[i]);
		if (l->msgs[i].name_off >= h->names_len || (i > 0 && l->msgs[i].uid <= l->msgs[i - 1].uid))
			return -EBADMSG;
	}
	memcpy(l->names, body + h->count * LISTING_PACKED_MSG, h->names_len);
	if (h->names_len && l->names[h->names_len - 1] != '\0')
		return -EBADMSG;
	l->count = h->count;
	l->names_len = h->names_len;
	return 0;
}

int listing_decode(const unsigned char *data, size_t len, struct listing **out)
{
	struct header h;
	struct listing *l;
	size_t body;
	int r;

	*out = NULL;
	if (len < LISTING_HEADER_SIZE)
		return -ENOTSUP;
	get_header(data, &h);
	if (h.magic != LISTING_MAGIC || h.count > LISTING_MAX_COUNT || h.names_len > LISTING_MAX_NAMES)
		return -ENOTSUP;
	body = h.count * LISTING_PACKED_MSG + h.names_len;
	if (len - LISTING_HEADER_SIZE != body || cache_crc32(0, data + LISTING_HEADER_SIZE, body) != h.crc)
		return -EBADMSG;
	l = listing_new(h.uidvalidity, h.modseq);
	if (!l)
		return -ENOMEM;
	r = decode_body(&h, data + LISTING_HEADER_SIZE, l);
	if (r < 0) {
		mb_listing_put(l);
		return r;
	}
	listing_index_names(l);
	*out = l;
	return 0;
}

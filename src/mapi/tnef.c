/* tnef.c - owns the TNEF reader: the attribute stream and the attMsgProps
 * property list, only as far as the message class and the correlation key
 * go.  Every read is bounds-checked; every loop step consumes input. */
#include "tnef.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define ATT_MESSAGE_CLASS 0x00078008u
#define ATT_MSG_PROPS 0x00069003u
#define LVL_MESSAGE 1

#define PROP_MESSAGE_CLASS 0x001Au
#define PROP_CORRELATION_KEY 0x007Fu
#define PT_STRING8 0x001Eu
#define PT_UNICODE 0x001Fu
#define PT_BINARY 0x0102u
#define MV_FLAG 0x1000u

struct rd {
	const unsigned char *p;
	size_t n; /* bytes left */
};

static bool take(struct rd *r, size_t k, const unsigned char **out)
{
	if (r->n < k)
		return false;
	if (out)
		*out = r->p;
	r->p += k;
	r->n -= k;
	return true;
}

static bool rd_u32(struct rd *r, uint32_t *v)
{
	const unsigned char *b;

	if (!take(r, 4, &b))
		return false;
	*v = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
	return true;
}

static bool rd_u16(struct rd *r, uint16_t *v)
{
	const unsigned char *b;

	if (!take(r, 2, &b))
		return false;
	*v = (uint16_t)(b[0] | b[1] << 8);
	return true;
}

static size_t pad4(size_t n)
{
	return (4 - n % 4) % 4;
}

static void set_class8(char dst[MSGCLASS_SIZE], const unsigned char *s, size_t n)
{
	size_t l = 0;

	while (l < n && s[l])
		l++;
	if (l >= MSGCLASS_SIZE)
		l = 0;
	memcpy(dst, s, l);
	dst[l] = '\0';
}

static void set_class16(char dst[MSGCLASS_SIZE], const unsigned char *s, size_t n)
{
	size_t l = 0;

	for (; 2 * l + 1 < n; l++) {
		unsigned c = s[2 * l] | (unsigned)s[2 * l + 1] << 8;

		if (!c)
			break;
		if (c >= 0x80 || l >= MSGCLASS_SIZE - 1) {
			l = 0;
			break;
		}
		dst[l] = (char)c;
	}
	dst[l] = '\0';
}

/* Bytes of one value of a fixed-size type (padded to 4 in the stream), 0
 * for counted variable-size types, -1 for types we cannot size. */
static int fixed_size(unsigned type)
{
	switch (type) {
	case 0x0002:
	case 0x000B: /* I2, BOOLEAN */
		return 2;
	case 0x0003:
	case 0x0004:
	case 0x000A: /* I4, R4, ERROR */
		return 4;
	case 0x0005:
	case 0x0006:
	case 0x0007:
	case 0x0014:
	case 0x0040:
		return 8; /* R8, CURRENCY, APPTIME, I8, SYSTIME */
	case 0x0048:      /* CLSID */
		return 16;
	case PT_STRING8:
	case PT_UNICODE:
	case PT_BINARY:
	case 0x000D:
	case 0x00FB: /* OBJECT (size includes IID), SVREID */
		return 0;
	default:
		return -1;
	}
}

static void record(uint32_t tag, const unsigned char *v, size_t n, struct tnef_info *out)
{
	unsigned id = tag >> 16, type = tag & 0xffff;

	if (id == PROP_MESSAGE_CLASS && type == PT_STRING8)
		set_class8(out->prop_class, v, n);
	else if (id == PROP_MESSAGE_CLASS && type == PT_UNICODE)
		set_class16(out->prop_class, v, n);
	else if (id == PROP_CORRELATION_KEY && type == PT_BINARY) {
		out->key = v;
		out->keylen = n;
	}
}

/* A named property's name: GUID, kind, then an ID or a counted string. */
static bool skip_name(struct rd *r)
{
	uint32_t kind, v;

	if (!take(r, 16, NULL) || !rd_u32(r, &kind) || !rd_u32(r, &v))
		return false;
	if (kind == 0)
		return true;
	return kind == 1 && take(r, v, NULL) && take(r, pad4(v), NULL);
}

static bool read_value(struct rd *r, uint32_t tag, struct tnef_info *out)
{
	unsigned type = tag & 0xffff, base = type & ~MV_FLAG;
	int fs = fixed_size(base);
	uint32_t count = 1, size;
	const unsigned char *v;

	if (fs < 0 || ((type & MV_FLAG || fs == 0) && !rd_u32(r, &count)))
		return false;
	for (uint32_t i = 0; i < count; i++) { /* each step takes >= 4 bytes */
		if (fs > 0)
			size = (uint32_t)fs;
		else if (!rd_u32(r, &size))
			return false;
		if (!take(r, size, &v))
			return false;
		if (i == 0 && !(type & MV_FLAG))
			record(tag, v, size, out);
		if (!take(r, pad4(size), NULL))
			return false;
	}
	return true;
}

static void read_props(const unsigned char *p, size_t n, struct tnef_info *out)
{
	struct rd r = { p, n };
	uint32_t count, tag;

	if (!rd_u32(&r, &count))
		return;
	for (uint32_t i = 0; i < count; i++) {
		if (!rd_u32(&r, &tag))
			return;
		if ((tag >> 16) >= 0x8000 && !skip_name(&r))
			return;
		if (!read_value(&r, tag, out))
			return;
	}
}

static uint16_t checksum(const unsigned char *p, size_t n)
{
	uint16_t sum = 0;

	for (size_t i = 0; i < n; i++)
		sum = (uint16_t)(sum + p[i]);
	return sum;
}

int tnef_scan(const void *data, size_t len, struct tnef_info *out)
{
	struct rd r = { data, len };
	uint32_t sig;
	uint16_t legacy_key;

	memset(out, 0, sizeof(*out));
	if (!rd_u32(&r, &sig) || sig != TNEF_SIGNATURE || !rd_u16(&r, &legacy_key))
		return -EINVAL;
	while (r.n > 0) {
		const unsigned char *level, *v;
		uint32_t id, size;
		uint16_t sum;

		if (!take(&r, 1, &level) || !rd_u32(&r, &id) || !rd_u32(&r, &size) || !take(&r, size, &v) ||
		    !rd_u16(&r, &sum) || checksum(v, size) != sum)
			break;
		if (*level != LVL_MESSAGE)
			continue;
		if (id == ATT_MESSAGE_CLASS)
			set_class8(out->msg_class, v, size);
		else if (id == ATT_MSG_PROPS)
			read_props(v, size, out);
	}
	return 0;
}

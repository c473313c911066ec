/* Unit tests for listing_codec.c: listings round-trip (empty, one, many,
 * every flag bit, long names); the bytes are format 3's; input cut at any
 * length, with a byte more, or with any body byte changed is rejected;
 * another magic or version, or counts past the limits, are "not ours"
 * (-ENOTSUP), not damage; a file whose CRC matches but whose content breaks
 * the listing's rules (a name offset outside the names, names not
 * NUL-terminated, UIDs not ascending) is damage (-EBADMSG). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "model/listing_codec.h"
#include "cache/cache_disk.h"

struct sample_msg {
	uint32_t uid, size;
	int64_t date;
	uint8_t flags;
	const char *name;
};

static struct listing *build(uint32_t uidvalidity, uint64_t modseq, const struct sample_msg *m, size_t n)
{
	struct listing_builder b;

	assert_int_equal(listing_builder_init(&b, NAMES_READABLE, uidvalidity), 0);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(listing_builder_push(&b, m[i].uid, m[i].size, m[i].date, m[i].flags,
						      m[i].name, strlen(m[i].name)),
				 0);
	listing_builder_finish(&b);
	b.l->modseq = modseq;
	return b.l;
}

static void assert_same_listing(const struct listing *a, const struct listing *b)
{
	assert_int_equal(a->uidvalidity, b->uidvalidity);
	assert_int_equal(a->modseq, b->modseq);
	assert_int_equal(a->count, b->count);
	assert_int_equal(a->names_len, b->names_len);
	for (size_t i = 0; i < a->count; i++) {
		assert_int_equal(a->msgs[i].uid, b->msgs[i].uid);
		assert_int_equal(mb_msg_size(&a->msgs[i]), mb_msg_size(&b->msgs[i]));
		assert_int_equal(a->msgs[i].date, b->msgs[i].date);
		assert_int_equal(mb_msg_flags(&a->msgs[i]), mb_msg_flags(&b->msgs[i]));
		assert_string_equal(mb_msg_name(a, &a->msgs[i]), mb_msg_name(b, &b->msgs[i]));
	}
	if (a->count) {
		assert_non_null(b->by_name);
		for (size_t i = 0; i < a->count; i++)
			assert_int_equal(a->by_name[i], b->by_name[i]);
	}
}

static const struct sample_msg THREE[] = {
	{ 7, 1234, 1700000000, 0x01, "2023-11-14 Lunch 7.eml" },
	{ 3, 99, -5, MSG_IMAP_FLAGS | MSG_SIZE_VERIFIED | MSG_SIZE_CORRECTED, "3.eml" },
	{ 4000000000u, UINT32_MAX, INT64_MAX, 0, "zzz last 4000000000.eml" },
};

static void test_round_trip(void **state)
{
	static char long_name[256];
	struct sample_msg one_long = { 1, 1, 1, 0, long_name };
	const struct {
		const struct sample_msg *m;
		size_t n;
		uint32_t uidvalidity;
		uint64_t modseq;
	} cases[] = {
		{ NULL, 0, 1, 0 }, /* an empty folder: no names at all */
		{ THREE, 1, 42, 0 },
		{ THREE, 3, UINT32_MAX, UINT64_MAX },
		{ &one_long, 1, 5, 77 },
	};

	(void)state;
	memset(long_name, 'n', sizeof(long_name) - 1);
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct listing *l = build(cases[c].uidvalidity, cases[c].modseq, cases[c].m, cases[c].n);
		struct listing *back = NULL;
		unsigned char *buf;
		size_t len;

		assert_int_equal(listing_encode(l, &buf, &len), 0);
		assert_int_equal(len, LISTING_HEADER_SIZE + l->count * LISTING_PACKED_MSG + l->names_len);
		assert_int_equal(listing_decode(buf, len, &back), 0);
		assert_int_equal(back->refs, 1);
		assert_same_listing(l, back);
		mb_listing_put(back);
		mb_listing_put(l);
		free(buf);
	}
}

/* Where the fields sit: saved listings of format 3 must go on loading. */
static void test_layout_is_format_3(void **state)
{
	const uint16_t probe = 1;
	struct listing *l = build(0x01020304, 0x1122334455667788ull, THREE, 1);
	unsigned char *buf, *m;
	uint64_t u64;
	uint32_t u32;
	int64_t i64;
	size_t len;

	(void)state;
	assert_int_equal(listing_encode(l, &buf, &len), 0);
	if (*(const unsigned char *)&probe == 1) /* the magic spells it on little-endian hosts */
		assert_memory_equal(buf, "1IMFSTL3", 8);
	memcpy(&u32, buf + 8, 4);
	assert_int_equal(u32, 0x01020304);
	memcpy(&u32, buf + 12, 4);
	assert_int_equal(u32, cache_crc32(0, buf + LISTING_HEADER_SIZE, len - LISTING_HEADER_SIZE));
	memcpy(&u64, buf + 16, 8);
	assert_int_equal(u64, 1);
	memcpy(&u64, buf + 24, 8);
	assert_int_equal(u64, strlen(THREE[0].name) + 1);
	memcpy(&u64, buf + 32, 8);
	assert_int_equal(u64, 0x1122334455667788ull);
	m = buf + LISTING_HEADER_SIZE;
	memcpy(&u32, m, 4);
	assert_int_equal(u32, 7);
	memcpy(&u32, m + 4, 4);
	assert_int_equal(u32, 1234);
	memcpy(&i64, m + 8, 8);
	assert_int_equal(i64, 1700000000);
	memcpy(&u32, m + 16, 4);
	assert_int_equal(u32, 0);
	assert_int_equal(m[20], 0x01);
	assert_string_equal((const char *)m + LISTING_PACKED_MSG, THREE[0].name);
	mb_listing_put(l);
	free(buf);
}

static void encode_three(unsigned char **buf, size_t *len)
{
	struct listing *l = build(9, 10, THREE, 3);

	assert_int_equal(listing_encode(l, buf, len), 0);
	mb_listing_put(l);
}

static void assert_rejected(const unsigned char *data, size_t len, int want)
{
	static struct listing not_set;
	struct listing *l = &not_set; /* must come back NULL */

	assert_int_equal(listing_decode(data, len, &l), want);
	assert_null(l);
}

static void test_truncated_or_longer(void **state)
{
	unsigned char *buf, *longer;
	size_t len;

	(void)state;
	encode_three(&buf, &len);
	for (size_t cut = 0; cut < len; cut++)
		assert_rejected(buf, cut, cut < LISTING_HEADER_SIZE ? -ENOTSUP : -EBADMSG);
	longer = malloc(len + 1);
	assert_non_null(longer);
	memcpy(longer, buf, len);
	longer[len] = 0;
	assert_rejected(longer, len + 1, -EBADMSG);
	free(longer);
	free(buf);
}

static void test_any_body_byte_changed(void **state)
{
	unsigned char *buf;
	size_t len;

	(void)state;
	encode_three(&buf, &len);
	for (size_t i = LISTING_HEADER_SIZE; i < len; i++) {
		buf[i] ^= 0x5a;
		assert_rejected(buf, len, -EBADMSG);
		buf[i] ^= 0x5a;
	}
	free(buf);
}

/* A header field replaced by a value: what decode says. */
static void test_header_checks(void **state)
{
	const struct {
		size_t off, size;
		uint64_t value;
		int want;
		const char *what;
	} cases[] = {
		{ 0, 1, 'X', -ENOTSUP, "another magic" },
		{ 7, 1, '2', -ENOTSUP, "format 2" },
		{ 7, 1, '4', -ENOTSUP, "a later format" },
		{ 12, 4, 0xdeadbeef, -EBADMSG, "CRC" },
		{ 16, 8, 2, -EBADMSG, "count too small for the data" },
		{ 16, 8, 4, -EBADMSG, "count too large for the data" },
		{ 16, 8, (uint64_t)LISTING_MAX_COUNT + 1, -ENOTSUP, "count past the limit" },
		{ 16, 8, UINT64_MAX, -ENOTSUP, "count that would overflow" },
		{ 24, 8, 1, -EBADMSG, "names_len wrong" },
		{ 24, 8, (uint64_t)LISTING_MAX_NAMES + 1, -ENOTSUP, "names_len past the limit" },
	};
	struct listing *l;
	unsigned char *buf;
	size_t len;

	(void)state;
	encode_three(&buf, &len);
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		unsigned char saved[8];

		memcpy(saved, buf + cases[c].off, cases[c].size);
		if (cases[c].size == 1) {
			buf[cases[c].off] = (unsigned char)cases[c].value;
		} else if (cases[c].size == 4) {
			uint32_t v = (uint32_t)cases[c].value;

			memcpy(buf + cases[c].off, &v, 4);
		} else {
			memcpy(buf + cases[c].off, &cases[c].value, 8);
		}
		print_message("%s\n", cases[c].what);
		assert_rejected(buf, len, cases[c].want);
		memcpy(buf + cases[c].off, saved, cases[c].size);
	}
	assert_int_equal(listing_decode(buf, len, &l), 0); /* each one put back */
	mb_listing_put(l);
	free(buf);
}

/* Content that breaks the listing's rules, under a CRC that matches. */
static void test_bad_content_with_good_crc(void **state)
{
	const struct {
		size_t msg; /* which packed message to change */
		size_t off; /* offset inside it */
		uint32_t value;
		const char *what;
	} cases[] = {
		{ 0, 16, 10000, "name offset past the names" },
		{ 1, 0, 3, "UID twice" },
		{ 2, 0, 5, "UIDs not ascending" },
	};
	unsigned char *buf;
	size_t len;
	uint32_t crc;

	(void)state;
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		encode_three(&buf, &len);
		memcpy(buf + LISTING_HEADER_SIZE + cases[c].msg * LISTING_PACKED_MSG + cases[c].off,
		       &cases[c].value, 4);
		crc = cache_crc32(0, buf + LISTING_HEADER_SIZE, len - LISTING_HEADER_SIZE);
		memcpy(buf + 12, &crc, 4);
		print_message("%s\n", cases[c].what);
		assert_rejected(buf, len, -EBADMSG);
		free(buf);
	}
	/* the last name's NUL gone */
	encode_three(&buf, &len);
	buf[len - 1] = 'x';
	crc = cache_crc32(0, buf + LISTING_HEADER_SIZE, len - LISTING_HEADER_SIZE);
	memcpy(buf + 12, &crc, 4);
	assert_rejected(buf, len, -EBADMSG);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),          cmocka_unit_test(test_layout_is_format_3),
		cmocka_unit_test(test_truncated_or_longer), cmocka_unit_test(test_any_body_byte_changed),
		cmocka_unit_test(test_header_checks),       cmocka_unit_test(test_bad_content_with_good_crc),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

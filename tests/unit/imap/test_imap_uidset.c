/* Unit tests for src/imap/imap_uidset.c: the UIDs a VANISHED set names,
 * clipped to the UIDs the caller knows, whatever order, stars and sizes a
 * server sends; UID 0 weeded out of a list to send; the set of ranges sent
 * for a list of UIDs; the pairs of a COPYUID, in the server's order. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "imap/imap_p.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define STAR 0 /* how libetpan's parser hands over '*' */

struct range {
	uint32_t first, last;
};

struct uidset_case {
	const char *what; /* the set as a server writes it */
	struct range items[4];
	size_t nitems;
	uint32_t limit;
	uint32_t want[8];
	size_t nwant;
};

static const struct uidset_case cases[] = {
	{ "(empty)", { { 0 } }, 0, 10, { 0 }, 0 },
	{ "5", { { 5, 5 } }, 1, 10, { 5 }, 1 },
	{ "3:6", { { 3, 6 } }, 1, 10, { 3, 4, 5, 6 }, 4 },
	{ "6:3 (a range counts in either order)", { { 6, 3 } }, 1, 10, { 3, 4, 5, 6 }, 4 },
	{ "9,2:3,5 (sorted on the way out)", { { 9, 9 }, { 2, 3 }, { 5, 5 } }, 3, 10, { 2, 3, 5, 9 }, 4 },
	{ "2:4,3:5 (overlaps kept)", { { 2, 4 }, { 3, 5 } }, 2, 10, { 2, 3, 3, 4, 4, 5 }, 6 },
	{ "10 (the limit itself)", { { 10, 10 } }, 1, 10, { 10 }, 1 },
	{ "11 (above the limit)", { { 11, 11 } }, 1, 10, { 0 }, 0 },
	{ "8:15 (across the limit)", { { 8, 15 } }, 1, 10, { 8, 9, 10 }, 3 },
	{ "15:8 (reversed, across the limit)", { { 15, 8 } }, 1, 10, { 8, 9, 10 }, 3 },
	{ "12:20,1 (one range wholly above)", { { 12, 20 }, { 1, 1 } }, 2, 10, { 1 }, 1 },
	{ "5:*", { { 5, STAR } }, 1, 7, { 5, 6, 7 }, 3 },
	{ "*:5", { { STAR, 5 } }, 1, 7, { 5, 6, 7 }, 3 },
	{ "*", { { STAR, STAR } }, 1, 7, { 7 }, 1 },
	{ "* with no UID known", { { STAR, STAR } }, 1, 0, { 0 }, 0 },
	{ "1:* with no UID known", { { 1, STAR } }, 1, 0, { 0 }, 0 },
	{ "4294967294:4294967295 (no wrap at the top)",
	  { { UINT32_MAX - 1, UINT32_MAX } },
	  1,
	  UINT32_MAX,
	  { UINT32_MAX - 1, UINT32_MAX },
	  2 },
	{ "4294967295:*", { { UINT32_MAX, STAR } }, 1, UINT32_MAX, { UINT32_MAX }, 1 },
};

static struct mailimap_set *make_set(const struct range *items, size_t n)
{
	struct mailimap_set *set = mailimap_set_new_empty();

	assert_non_null(set);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(mailimap_set_add_interval(set, items[i].first, items[i].last),
				 MAILIMAP_NO_ERROR);
	return set;
}

static void test_expand_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		const struct uidset_case *c = &cases[i];
		struct mailimap_set *set = make_set(c->items, c->nitems);
		uint32_t *uids = (uint32_t *)1;
		size_t n = 99;

		print_message("%s, limit %u\n", c->what, c->limit);
		assert_int_equal(imap_uidset_expand(set, c->limit, &uids, &n), 0);
		assert_int_equal(n, c->nwant);
		if (n)
			assert_memory_equal(uids, c->want, n * sizeof(*uids));
		else
			assert_null(uids);
		free(uids);
		mailimap_set_free(set);
	}
}

/* A set naming more UIDs than may be held: nothing, and E2BIG (the caller
 * then lists the UIDs instead). */
static void test_too_many(void **state)
{
	static const struct range all = { 1, UINT32_MAX }, reversed = { UINT32_MAX, 1 };
	static const struct range split[2] = { { 1, IMAP_UIDSET_MAX }, { 7, 7 } };
	const struct range *sets[] = { &all, &reversed, split };
	const size_t lens[] = { 1, 1, 2 };

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(sets); i++) {
		struct mailimap_set *set = make_set(sets[i], lens[i]);
		uint32_t *uids = (uint32_t *)1;
		size_t n = 99;

		assert_int_equal(imap_uidset_expand(set, UINT32_MAX, &uids, &n), -E2BIG);
		assert_null(uids);
		assert_int_equal(n, 0);
		mailimap_set_free(set);
	}
}

/* Exactly as many as may be held still fit, and the limit clips before
 * anything is counted. */
static void test_bound_is_inclusive(void **state)
{
	static const struct range most = { 1, IMAP_UIDSET_MAX }, clipped = { 1, UINT32_MAX };
	struct mailimap_set *set = make_set(&most, 1);
	uint32_t *uids = NULL;
	size_t n = 0;

	(void)state;
	assert_int_equal(imap_uidset_expand(set, UINT32_MAX, &uids, &n), 0);
	assert_int_equal(n, IMAP_UIDSET_MAX);
	assert_int_equal(uids[0], 1);
	assert_int_equal(uids[n - 1], IMAP_UIDSET_MAX);
	free(uids);
	mailimap_set_free(set);

	set = make_set(&clipped, 1);
	assert_int_equal(imap_uidset_expand(set, 100, &uids, &n), 0);
	assert_int_equal(n, 100);
	assert_int_equal(uids[99], 100);
	free(uids);
	mailimap_set_free(set);
}

/* A set whose list is missing altogether names nothing. */
static void test_no_list(void **state)
{
	struct mailimap_set set = { .set_list = NULL };
	uint32_t *uids = (uint32_t *)1;
	size_t n = 99;

	(void)state;
	assert_int_equal(imap_uidset_expand(&set, 10, &uids, &n), 0);
	assert_null(uids);
	assert_int_equal(n, 0);
}

static void test_cmp_uid(void **state)
{
	uint32_t v[] = { 7, UINT32_MAX, 1, 0, 7, 2147483648u };
	const uint32_t sorted[] = { 0, 1, 7, 7, 2147483648u, UINT32_MAX };

	(void)state;
	qsort(v, ARRAY_LEN(v), sizeof(v[0]), imap_cmp_uid);
	assert_memory_equal(v, sorted, sizeof(v));
}

/* UID 0 (what libetpan sends as '*') is weeded out of a list to send, the
 * other UIDs keeping their order; a list of zeros leaves nothing. */
static void test_drop_zero(void **state)
{
	uint32_t mixed[] = { 0, 9, 0, 0, 3, UINT32_MAX, 0 }, zeros[] = { 0, 0, 0 }, none[] = { 4, 2 };
	const uint32_t mixed_left[] = { 9, 3, UINT32_MAX }, none_left[] = { 4, 2 };

	(void)state;
	assert_int_equal(imap_uids_drop_zero(mixed, ARRAY_LEN(mixed)), ARRAY_LEN(mixed_left));
	assert_memory_equal(mixed, mixed_left, sizeof(mixed_left));
	assert_int_equal(imap_uids_drop_zero(zeros, ARRAY_LEN(zeros)), 0);
	assert_int_equal(imap_uids_drop_zero(none, ARRAY_LEN(none)), ARRAY_LEN(none_left));
	assert_memory_equal(none, none_left, sizeof(none_left));
	assert_int_equal(imap_uids_drop_zero(NULL, 0), 0);
}

struct build_case {
	const char *what;
	uint32_t uids[10];
	size_t n;
	struct range want[6]; /* the set's items, in order */
	size_t nwant;
};

static const struct build_case builds[] = {
	{ "one UID", { 7 }, 1, { { 7, 7 } }, 1 },
	{ "singles", { 2, 4, 9 }, 3, { { 2, 2 }, { 4, 4 }, { 9, 9 } }, 3 },
	{ "one run", { 3, 4, 5, 6 }, 4, { { 3, 6 } }, 1 },
	{ "runs and singles", { 1, 2, 3, 5, 8, 9 }, 6, { { 1, 3 }, { 5, 5 }, { 8, 9 } }, 3 },
	{ "unsorted", { 9, 3, 8, 1, 2 }, 5, { { 1, 3 }, { 8, 9 } }, 2 },
	{ "descending", { 6, 5, 4, 2 }, 4, { { 2, 2 }, { 4, 6 } }, 2 },
	{ "repeats named once", { 4, 4, 5, 4, 7, 7 }, 6, { { 4, 5 }, { 7, 7 } }, 2 },
	{ "repeats of one UID", { 3, 3, 3 }, 3, { { 3, 3 } }, 1 },
	{ "at the top (no wrap)",
	  { UINT32_MAX, 1, UINT32_MAX - 1 },
	  3,
	  { { 1, 1 }, { UINT32_MAX - 1, UINT32_MAX } },
	  2 },
};

static void test_build_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(builds); i++) {
		const struct build_case *c = &builds[i];
		uint32_t copy[10];
		struct mailimap_set *set = NULL;
		size_t k = 0;

		print_message("%s\n", c->what);
		memcpy(copy, c->uids, sizeof(copy));
		assert_int_equal(imap_uidset_build(c->uids, c->n, &set), 0);
		assert_non_null(set);
		assert_memory_equal(copy, c->uids, sizeof(copy)); /* the caller's list as it was */
		for (clistiter *it = clist_begin(set->set_list); it; it = clist_next(it), k++) {
			const struct mailimap_set_item *item = clist_content(it);

			assert_true(k < c->nwant);
			assert_int_equal(item->set_first, c->want[k].first);
			assert_int_equal(item->set_last, c->want[k].last);
		}
		assert_int_equal(k, c->nwant);
		mailimap_set_free(set);
	}
}

/* Nothing to name, or a UID 0 anywhere (libetpan would send '*'): -EINVAL
 * and no set. */
static void test_build_refuses(void **state)
{
	const uint32_t zero_first[] = { 0, 4 }, zero_inside[] = { 5, 0, 7 }, one[] = { 1 };
	struct mailimap_set *set = (struct mailimap_set *)1;

	(void)state;
	assert_int_equal(imap_uidset_build(one, 0, &set), -EINVAL);
	assert_null(set);
	set = (struct mailimap_set *)1;
	assert_int_equal(imap_uidset_build(zero_first, ARRAY_LEN(zero_first), &set), -EINVAL);
	assert_null(set);
	set = (struct mailimap_set *)1;
	assert_int_equal(imap_uidset_build(zero_inside, ARRAY_LEN(zero_inside), &set), -EINVAL);
	assert_null(set);
}

/* What a server reads back is what was built: the set expands to the
 * distinct UIDs given. */
static void test_build_round_trip(void **state)
{
	uint32_t in[1000], *out = NULL;
	struct mailimap_set *set = NULL;
	size_t n = 0;

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(in); i++)
		in[i] = (uint32_t)(((i * 7919) % 1000) * 3 / 2 + 1); /* a shuffle, with gaps */
	assert_int_equal(imap_uidset_build(in, ARRAY_LEN(in), &set), 0);
	assert_int_equal(imap_uidset_expand(set, UINT32_MAX, &out, &n), 0);
	qsort(in, ARRAY_LEN(in), sizeof(in[0]), imap_cmp_uid);
	assert_int_equal(n, ARRAY_LEN(in));
	assert_memory_equal(out, in, sizeof(in));
	free(out);
	mailimap_set_free(set);
}

struct pair_case {
	const char *what; /* COPYUID's two sets as a server writes them */
	struct range src[4], dst[4];
	size_t nsrc, ndst;
	uint32_t want_src[8], want_dst[8];
	size_t nwant;
};

static const struct pair_case pairs[] = {
	{ "(none) (none)", { { 0 } }, { { 0 } }, 0, 0, { 0 }, { 0 }, 0 },
	{ "5 20", { { 5, 5 } }, { { 20, 20 } }, 1, 1, { 5 }, { 20 }, 1 },
	{ "3:5 10:12", { { 3, 5 } }, { { 10, 12 } }, 1, 1, { 3, 4, 5 }, { 10, 11, 12 }, 3 },
	{ "2,4,9 30:32 (singles to a range)",
	  { { 2, 2 }, { 4, 4 }, { 9, 9 } },
	  { { 30, 32 } },
	  3,
	  1,
	  { 2, 4, 9 },
	  { 30, 31, 32 },
	  3 },
	{ "9,3:4 20:22 (the server's order, not sorted)",
	  { { 9, 9 }, { 3, 4 } },
	  { { 20, 22 } },
	  2,
	  1,
	  { 9, 3, 4 },
	  { 20, 21, 22 },
	  3 },
	{ "3:5 12:10 (a reversed range counts upwards)",
	  { { 3, 5 } },
	  { { 12, 10 } },
	  1,
	  1,
	  { 3, 4, 5 },
	  { 10, 11, 12 },
	  3 },
	{ "5:3,8 40,12:10",
	  { { 5, 3 }, { 8, 8 } },
	  { { 40, 40 }, { 12, 10 } },
	  2,
	  2,
	  { 3, 4, 5, 8 },
	  { 40, 10, 11, 12 },
	  4 },
	{ "4,4 8:9 (a repeat paired twice)",
	  { { 4, 4 }, { 4, 4 } },
	  { { 8, 9 } },
	  2,
	  1,
	  { 4, 4 },
	  { 8, 9 },
	  2 },
};

static void test_pair_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(pairs); i++) {
		const struct pair_case *c = &pairs[i];
		struct mailimap_set *src = make_set(c->src, c->nsrc), *dst = make_set(c->dst, c->ndst);
		uint32_t *su = (uint32_t *)1, *du = (uint32_t *)1;
		size_t n = 99;

		print_message("%s\n", c->what);
		assert_int_equal(imap_uidset_pair(src, dst, &su, &du, &n), 0);
		assert_int_equal(n, c->nwant);
		if (n) {
			assert_memory_equal(su, c->want_src, n * sizeof(*su));
			assert_memory_equal(du, c->want_dst, n * sizeof(*du));
		} else {
			assert_null(su);
			assert_null(du);
		}
		free(su);
		free(du);
		mailimap_set_free(src);
		mailimap_set_free(dst);
	}
}

/* Sets that cannot be paired: nothing written, and why. */
static void test_pair_refuses(void **state)
{
	static const struct range r1_3 = { 1, 3 }, r10_11 = { 10, 11 }, r5_star = { 5, STAR },
				  r7_9 = { 7, 9 }, r1_5000 = { 1, 5000 }, r6001_11000 = { 6001, 11000 },
				  r4 = { 4, 4 };
	static const struct {
		const struct range *src, *dst; /* NULL: no set at all */
		int want;
	} cases[] = {
		{ &r1_3, &r10_11, -EPROTO },        /* 3 UIDs became 2 */
		{ &r10_11, &r1_3, -EPROTO },        /* 2 became 3 */
		{ &r4, NULL, -EPROTO },             /* a source and no destination */
		{ NULL, &r4, -EPROTO },             /* the other way */
		{ &r5_star, &r7_9, -EPROTO },       /* '*' in the source */
		{ &r7_9, &r5_star, -EPROTO },       /* and in the destination */
		{ &r1_5000, &r6001_11000, -E2BIG }, /* more than a command sends */
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct mailimap_set *src = cases[i].src ? make_set(cases[i].src, 1) : NULL;
		struct mailimap_set *dst = cases[i].dst ? make_set(cases[i].dst, 1) : NULL;
		uint32_t *su = (uint32_t *)1, *du = (uint32_t *)1;
		size_t n = 99;

		print_message("case %zu\n", i);
		assert_int_equal(imap_uidset_pair(src, dst, &su, &du, &n), cases[i].want);
		assert_null(su);
		assert_null(du);
		assert_int_equal(n, 0);
		if (src)
			mailimap_set_free(src);
		if (dst)
			mailimap_set_free(dst);
	}
}

/* As many pairs as a command sends still fit; no sets at all pair nothing. */
static void test_pair_bounds(void **state)
{
	const struct range src = { 1, IMAP_BATCH_MAX },
			   dst = { (uint32_t)IMAP_BATCH_MAX + 10, 2 * IMAP_BATCH_MAX + 9 };
	struct mailimap_set *s = make_set(&src, 1), *d = make_set(&dst, 1);
	uint32_t *su = NULL, *du = NULL;
	size_t n = 0;

	(void)state;
	assert_int_equal(imap_uidset_pair(s, d, &su, &du, &n), 0);
	assert_int_equal(n, IMAP_BATCH_MAX);
	assert_int_equal(su[n - 1], IMAP_BATCH_MAX);
	assert_int_equal(du[0], IMAP_BATCH_MAX + 10);
	assert_int_equal(du[n - 1], 2 * IMAP_BATCH_MAX + 9);
	free(su);
	free(du);
	mailimap_set_free(s);
	mailimap_set_free(d);

	su = du = (uint32_t *)1;
	n = 99;
	assert_int_equal(imap_uidset_pair(NULL, NULL, &su, &du, &n), 0);
	assert_null(su);
	assert_null(du);
	assert_int_equal(n, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_expand_table),
		cmocka_unit_test(test_too_many),
		cmocka_unit_test(test_bound_is_inclusive),
		cmocka_unit_test(test_no_list),
		cmocka_unit_test(test_cmp_uid),
		cmocka_unit_test(test_drop_zero),
		cmocka_unit_test(test_build_table),
		cmocka_unit_test(test_build_refuses),
		cmocka_unit_test(test_build_round_trip),
		cmocka_unit_test(test_pair_table),
		cmocka_unit_test(test_pair_refuses),
		cmocka_unit_test(test_pair_bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

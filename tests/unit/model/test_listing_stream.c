/* Unit tests for listing_stream.c: a first listing handed to readers while
 * its FETCH streams in -- messages shown as they come in ascending UIDs;
 * a repeat (a reconnect's FETCH starting over) or a message out of order
 * ends the streamed part, and the rest follows from the finished listing;
 * a failed sync, or one that started over after showing messages, is an
 * error for every reader; only the first attach streams and starts; a
 * reader's wait is bounded, and renewed while the sync takes messages in;
 * a saved listing offered is read whole at once, whatever the sync finds. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "model/listing_stream.h"

static int starts;

static void count_start(void *ctx)
{
	(void)ctx;
	starts++;
}

static void push(struct listing_stream *s, struct listing_builder *b, uint32_t uid)
{
	char name[32];
	int len = snprintf(name, sizeof(name), "%u.eml", uid);

	assert_int_equal(listing_stream_push(s, b, uid, 100 + uid, 1000 + uid, 0, name, (size_t)len), 0);
}

/* A message pushed straight into b, as a listing loaded from disk has. */
static void push_plain(struct listing_builder *b, uint32_t uid)
{
	char name[32];
	int len = snprintf(name, sizeof(name), "%u.eml", uid);

	assert_int_equal(listing_builder_push(b, uid, 100 + uid, 1000 + uid, 0, name, (size_t)len), 0);
}

/* The UID at position p (0 when there is none), and the kind of answer. */
static int entry(struct listing_stream *s, size_t p, bool wait, uint32_t *uid)
{
	char name[NAMES_MAX + 1];
	struct msg m = { 0 };
	int r = listing_stream_entry(s, p, wait, &m, name);

	*uid = 0;
	if (r == LISTING_STREAM_ENTRY) {
		char want[32];

		snprintf(want, sizeof(want), "%u.eml", m.uid);
		assert_string_equal(name, want);
		assert_int_equal(m.size, 100 + m.uid);
		*uid = m.uid;
	}
	return r;
}

/* A stream attached to a fresh builder. */
static struct listing_stream *start(struct listing_builder *b)
{
	struct listing_stream *s = listing_stream_new(50, count_start, NULL);

	assert_non_null(s);
	assert_int_equal(listing_builder_init(b, NAMES_UID, 7), 0);
	starts = 0;
	listing_stream_attach(s, b);
	assert_int_equal(starts, 1);
	assert_true(listing_stream_started(s));
	assert_ptr_equal(b->stream, s);
	return s;
}

/* The sync's end: detach, finish, hand the listing over. */
static void finish(struct listing_stream *s, struct listing_builder *b)
{
	listing_stream_detach(s, b);
	assert_null(b->stream);
	listing_builder_finish(b);
	listing_stream_done(s, b->l, 0);
	mb_listing_put(b->l);
}

static void test_in_order(void **state)
{
	struct listing_builder b;
	struct listing_stream *s = start(&b);
	uint32_t uid;

	(void)state;
	assert_int_equal(entry(s, 0, false, &uid), LISTING_STREAM_LATER);
	push(s, &b, 3);
	push(s, &b, 5);
	push(s, &b, 9);
	assert_int_equal(entry(s, 0, false, &uid), LISTING_STREAM_ENTRY);
	assert_int_equal(uid, 3);
	assert_int_equal(entry(s, 2, true, &uid), LISTING_STREAM_ENTRY);
	assert_int_equal(uid, 9);
	assert_int_equal(entry(s, 3, false, &uid), LISTING_STREAM_LATER);
	finish(s, &b);
	assert_int_equal(entry(s, 1, true, &uid), LISTING_STREAM_ENTRY);
	assert_int_equal(uid, 5);
	assert_int_equal(entry(s, 3, true, &uid), LISTING_STREAM_END);
	listing_stream_put(s);
}

static void test_repeat_after_reconnect(void **state)
{
	struct listing_builder b;
	struct listing_stream *s = start(&b);
	uint32_t uid;

	(void)state;
	push(s, &b, 1);
	push(s, &b, 2);
	push(s, &b, 3);
	/* a new session fetches the chunk again */
	for (uint32_t u = 1; u <= 5; u++)
		push(s, &b, u);
	assert_int_equal(entry(s, 2, false, &uid), LISTING_STREAM_ENTRY);
	assert_int_equal(uid, 3);
	assert_int_equal(entry(s, 3, false, &uid), LISTING_STREAM_LATER);
	finish(s, &b);
	assert_int_equal(entry(s, 3, true, &uid), LISTING_STREAM_ENTRY);
	assert_int_equal(uid, 4);
	assert_int_equal(entry(s, 4, true, &uid), LISTING_STREAM_ENTRY);
	assert_int_equal(uid, 5);
	assert_int_equal(entry(s, 5, true, &uid), LISTING_STREAM_END);
	listing_stream_put(s);
}

static void test_out_of_order(void **state)
{
	struct listing_builder b;
	struct listing_stream *s = start(&b);
	uint32_t uid;

	(void)state;
	push(s, &b, 1);
	push(s, &b, 5);
	push(s, &b, 3); /* ends the streamed part: 1, 5 */
	push(s, &b, 7);
	assert_int_equal(entry(s, 2, false, &uid), LISTING_STREAM_LATER);
	finish(s, &b);
	/* positions keep their messages; after them come the UIDs above 5 (3
	 * arrived too late for this reader, as a new message would) */
	assert_int_equal(entry(s, 1, true, &uid), LISTING_STREAM_ENTRY);
	assert_int_equal(uid, 3);
	assert_int_equal(entry(s, 2, true, &uid), LISTING_STREAM_ENTRY);
	assert_int_equal(uid, 7);
	assert_int_equal(entry(s, 3, true, &uid), LISTING_STREAM_END);
	listing_stream_put(s);
}

static void test_failed_sync(void **state)
{
	struct listing_builder b;
	struct listing_stream *s = start(&b);
	uint32_t uid;

	(void)state;
	push(s, &b, 1);
	push(s, &b, 2);
	listing_stream_detach(s, &b);
	listing_builder_abandon(&b);
	listing_stream_done(s, NULL, -ECONNRESET);
	assert_int_equal(entry(s, 2, true, &uid), -ECONNRESET);
	assert_int_equal(entry(s, 0, true, &uid), -ECONNRESET);
	listing_stream_done(s, NULL, -EIO); /* a second end changes nothing */
	assert_int_equal(entry(s, 1, false, &uid), -ECONNRESET);
	listing_stream_put(s);
}

static void test_only_the_first_attach_streams(void **state)
{
	struct listing_builder b, again;
	struct listing_stream *s = start(&b);
	uint32_t uid;

	(void)state;
	push(s, &b, 1);
	/* a new UIDVALIDITY: the sync starts over with a new builder */
	listing_stream_abandon(s, &b);
	listing_builder_abandon(&b);
	assert_int_equal(listing_builder_init(&again, NAMES_UID, 8), 0);
	listing_stream_attach(s, &again);
	assert_int_equal(starts, 1);
	assert_null(again.stream);
	assert_int_equal(listing_builder_push(&again, 4, 104, 1004, 0, "4.eml", 5), 0);
	assert_int_equal(listing_builder_push(&again, 6, 106, 1006, 0, "6.eml", 5), 0);
	listing_builder_finish(&again);
	listing_stream_done(s, again.l, 0);
	mb_listing_put(again.l);
	/* UID 1 of the old folder may have been shown: no position of the
	 * new listing follows from that, so the reader must list again */
	assert_int_equal(entry(s, 0, true, &uid), -EIO);
	assert_int_equal(entry(s, 1, true, &uid), -EIO);
	listing_stream_put(s);
}

static void test_restart_before_anything_shown(void **state)
{
	struct listing_builder b, again;
	struct listing_stream *s = start(&b);
	uint32_t uid;

	(void)state;
	listing_stream_abandon(s, &b);
	listing_builder_abandon(&b);
	assert_int_equal(listing_builder_init(&again, NAMES_UID, 8), 0);
	assert_int_equal(listing_builder_push(&again, 4, 104, 1004, 0, "4.eml", 5), 0);
	listing_builder_finish(&again);
	listing_stream_done(s, again.l, 0);
	mb_listing_put(again.l);
	assert_int_equal(entry(s, 0, true, &uid), LISTING_STREAM_ENTRY);
	assert_int_equal(uid, 4);
	assert_int_equal(entry(s, 1, true, &uid), LISTING_STREAM_END);
	listing_stream_put(s);
}

struct late_sync {
	struct listing_stream *s;
	struct listing_builder *b;
};

/* A sync past a repeat: 300 ms of messages a reader may not see yet (each
 * 20 ms, under the reader's 50 ms wait), then its end. */
static void *slow_rest(void *arg)
{
	struct late_sync *ls = arg;
	const struct timespec pause = { 0, 20 * 1000 * 1000 };

	for (uint32_t uid = 3; uid < 18; uid++) {
		nanosleep(&pause, NULL);
		push(ls->s, ls->b, uid);
	}
	finish(ls->s, ls->b);
	return NULL;
}

static void test_wait_renewed_while_the_sync_goes_on(void **state)
{
	struct listing_builder b;
	struct listing_stream *s = start(&b);
	struct late_sync ls = { s, &b };
	pthread_t t;
	uint32_t uid;

	(void)state;
	push(s, &b, 1);
	push(s, &b, 2);
	push(s, &b, 1); /* a reconnect's repeat: the streamed part ends at 2 */
	assert_int_equal(pthread_create(&t, NULL, slow_rest, &ls), 0);
	assert_int_equal(entry(s, 2, true, &uid), LISTING_STREAM_ENTRY);
	assert_int_equal(uid, 3);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(entry(s, 16, true, &uid), LISTING_STREAM_ENTRY);
	assert_int_equal(uid, 17);
	assert_int_equal(entry(s, 17, true, &uid), LISTING_STREAM_END);
	listing_stream_put(s);
}

static void test_wait_is_bounded(void **state)
{
	struct listing_builder b;
	struct listing_stream *s = start(&b);
	uint32_t uid;

	(void)state;
	assert_int_equal(entry(s, 0, true, &uid), -ETIMEDOUT);
	finish(s, &b);
	assert_int_equal(entry(s, 0, true, &uid), LISTING_STREAM_END);
	listing_stream_put(s);
}

/* A finished listing of UIDs from..to (but skip), names as entry() wants. */
static struct listing *listing_of(uint32_t validity, uint32_t from, uint32_t to, uint32_t skip)
{
	struct listing_builder b;

	assert_int_equal(listing_builder_init(&b, NAMES_UID, validity), 0);
	for (uint32_t u = from; u <= to; u++)
		if (u != skip)
			push_plain(&b, u);
	listing_builder_finish(&b);
	return b.l;
}

/* A stream offered the saved listing 3..5 (UIDVALIDITY 7). */
static struct listing_stream *offered(struct listing **saved)
{
	struct listing_stream *s = listing_stream_new(50, count_start, NULL);

	assert_non_null(s);
	*saved = listing_of(7, 3, 5, 0);
	starts = 0;
	listing_stream_offer(s, *saved);
	assert_int_equal(starts, 1);
	assert_true(listing_stream_started(s));
	assert_int_equal(listing_stream_uidvalidity(s), 7);
	return s;
}

/* A saved listing offered: whole at once and ended; a later attach (a full
 * FETCH after all) neither streams nor starts again. */
static void test_offered_listing(void **state)
{
	struct listing *saved;
	struct listing_stream *s = offered(&saved);
	struct listing_builder later;
	uint32_t uid;

	(void)state;
	for (size_t p = 0; p < 3; p++) {
		assert_int_equal(entry(s, p, false, &uid), LISTING_STREAM_ENTRY);
		assert_int_equal(uid, 3 + p);
	}
	assert_int_equal(entry(s, 3, false, &uid), LISTING_STREAM_END);
	assert_int_equal(listing_builder_init(&later, NAMES_UID, 7), 0);
	listing_stream_attach(s, &later);
	assert_null(later.stream);
	assert_int_equal(starts, 1);
	listing_builder_abandon(&later);
	mb_listing_put(saved);
	listing_stream_put(s);
}

/* The sync's listing narrows what is left to give out: an expunged message
 * is skipped, a new one is not added (the change hook tells of it); a new
 * UIDVALIDITY skips them all; the generation stays the saved one's. */
static void test_offered_listing_checked(void **state)
{
	struct listing *saved, *now;
	struct listing_stream *s = offered(&saved);
	uint32_t uid;

	(void)state;
	now = listing_of(7, 3, 6, 4);
	listing_stream_done(s, now, 0);
	assert_int_equal(entry(s, 0, false, &uid), LISTING_STREAM_ENTRY);
	assert_int_equal(uid, 3);
	assert_int_equal(entry(s, 1, false, &uid), LISTING_STREAM_SKIP);
	assert_int_equal(entry(s, 2, false, &uid), LISTING_STREAM_ENTRY);
	assert_int_equal(uid, 5);
	assert_int_equal(entry(s, 3, false, &uid), LISTING_STREAM_END);
	/* a second end (the opendir's own) changes nothing */
	listing_stream_done(s, NULL, -EIO);
	assert_int_equal(entry(s, 1, false, &uid), LISTING_STREAM_SKIP);
	mb_listing_put(now);
	listing_stream_put(s);
	mb_listing_put(saved);

	s = offered(&saved);
	now = listing_of(8, 3, 5, 0);
	listing_stream_done(s, now, 0);
	for (size_t p = 0; p < 3; p++)
		assert_int_equal(entry(s, p, false, &uid), LISTING_STREAM_SKIP);
	assert_int_equal(entry(s, 3, false, &uid), LISTING_STREAM_END);
	assert_int_equal(listing_stream_uidvalidity(s), 7);
	mb_listing_put(now);
	listing_stream_put(s);
	mb_listing_put(saved);
}

/* A sync that fails leaves the saved listing as it is; a folder gone from
 * the server is an error for what is left. */
static void test_offered_listing_failed(void **state)
{
	struct listing *saved;
	struct listing_stream *s = offered(&saved);
	uint32_t uid;

	(void)state;
	listing_stream_done(s, NULL, -ETIMEDOUT);
	assert_int_equal(entry(s, 2, false, &uid), LISTING_STREAM_ENTRY);
	assert_int_equal(uid, 5);
	listing_stream_put(s);
	mb_listing_put(saved);

	s = offered(&saved);
	listing_stream_done(s, NULL, -ENOENT);
	assert_int_equal(entry(s, 0, false, &uid), -EIO);
	assert_int_equal(entry(s, 3, false, &uid), LISTING_STREAM_END);
	listing_stream_put(s);
	mb_listing_put(saved);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_in_order),
		cmocka_unit_test(test_repeat_after_reconnect),
		cmocka_unit_test(test_out_of_order),
		cmocka_unit_test(test_failed_sync),
		cmocka_unit_test(test_only_the_first_attach_streams),
		cmocka_unit_test(test_restart_before_anything_shown),
		cmocka_unit_test(test_wait_renewed_while_the_sync_goes_on),
		cmocka_unit_test(test_wait_is_bounded),
		cmocka_unit_test(test_offered_listing),
		cmocka_unit_test(test_offered_listing_checked),
		cmocka_unit_test(test_offered_listing_failed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

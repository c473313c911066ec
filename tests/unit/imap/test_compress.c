/* Unit tests for src/imap/compress.c: the COMPRESS=DEFLATE layer over a
 * memory pipe (a mailstream_low driver of this file) -- round trips of random
 * data in random chunk sizes, corrupt, truncated and ended streams, a
 * compression bomb against a byte budget -- and -o compress=auto's rule. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include <cmocka.h>

#include "imap/compress.h"
#include "imap/imap.h"
#include "imap/imap_p.h"
#include "imap/tls.h"

/* ---- a deterministic random source ---- */

static uint64_t rng_state;

static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static size_t rnd_between(size_t lo, size_t hi)
{
	return lo + (size_t)(rnd() % (hi - lo + 1));
}

/* len bytes: runs of text (compressible) and of random bytes */
static unsigned char *random_data(size_t len)
{
	unsigned char *d = malloc(len ? len : 1);
	static const char text[] = "From: alice@example.org\r\nSubject: the quarterly report\r\n\r\n";

	assert_non_null(d);
	for (size_t i = 0; i < len;) {
		size_t run = rnd_between(1, 5000);

		if (run > len - i)
			run = len - i;
		if (rnd() & 1)
			for (size_t k = 0; k < run; k++)
				d[i + k] = (unsigned char)rnd();
		else
			for (size_t k = 0; k < run; k++)
				d[i + k] = (unsigned char)text[(i + k) % (sizeof(text) - 1)];
		i += run;
	}
	return d;
}

/* ---- the memory pipe ---- */

struct pipe {
	const unsigned char *in; /* what reads return, then EOF (-1) */
	size_t in_len, in_pos;
	size_t max_chunk;   /* a read returns 1..max_chunk bytes (random) */
	bool endless_zeros; /* instead of in: deflate of zeros, without end */
	z_stream gen;       /* its deflater */
	uint64_t served;    /* bytes read from the pipe */
	unsigned char *out; /* what was written */
	size_t out_len, out_cap;
	bool logger_cleared; /* compress_stream_new cleared our logger */
};

static ssize_t pipe_read(mailstream_low *low, void *buf, size_t len)
{
	struct pipe *p = low->data;
	size_t n = rnd_between(1, p->max_chunk);

	if (n > len)
		n = len;
	if (p->endless_zeros) {
		static unsigned char zeros[65536];

		p->gen.next_out = buf;
		p->gen.avail_out = (uInt)n;
		while (p->gen.avail_out == n) {
			p->gen.next_in = zeros;
			p->gen.avail_in = sizeof(zeros);
			assert_int_not_equal(deflate(&p->gen, Z_NO_FLUSH), Z_STREAM_ERROR);
		}
		n -= p->gen.avail_out;
	} else {
		if (p->in_pos == p->in_len)
			return -1;
		if (n > p->in_len - p->in_pos)
			n = p->in_len - p->in_pos;
		memcpy(buf, p->in + p->in_pos, n);
		p->in_pos += n;
	}
	p->served += n;
	return (ssize_t)n;
}

static ssize_t pipe_write(mailstream_low *low, const void *buf, size_t len)
{
	struct pipe *p = low->data;
	size_t n = rnd_between(1, len < 3000 ? len : 3000); /* partial writes */

	if (p->out_len + n > p->out_cap) {
		p->out_cap = (p->out_len + n) * 2;
		p->out = realloc(p->out, p->out_cap);
		assert_non_null(p->out);
	}
	memcpy(p->out + p->out_len, buf, n);
	p->out_len += n;
	return (ssize_t)n;
}

static int pipe_close(mailstream_low *low)
{
	(void)low;
	return 0;
}

static int pipe_get_fd(mailstream_low *low)
{
	(void)low;
	return -1;
}

static void pipe_free(mailstream_low *low)
{
	free(low); /* the struct pipe is the test's */
}

static mailstream_low_driver pipe_driver = {
	.mailstream_read = pipe_read,
	.mailstream_write = pipe_write,
	.mailstream_close = pipe_close,
	.mailstream_get_fd = pipe_get_fd,
	.mailstream_free = pipe_free,
};

static void some_logger(mailstream_low *s, int type, const char *str, size_t size, void *ctx)
{
	(void)s, (void)type, (void)str, (void)size, (void)ctx;
	fail_msg("the stream below logged what crossed the wire");
}

/* A compressing stream over a pipe p; charge may be NULL. */
static mailstream_low *layer_over(struct pipe *p, compress_charge_fn *charge, void *ctx)
{
	mailstream_low *below = mailstream_low_new(p, &pipe_driver), *low;

	assert_non_null(below);
	mailstream_low_set_logger(below, some_logger, NULL);
	low = compress_stream_new(below, charge, ctx);
	assert_non_null(low);
	assert_true(compress_stream_is(low));
	assert_ptr_equal(compress_stream_below(low), below);
	assert_null(below->logger);
	return low;
}

static void layer_free(mailstream_low *low)
{
	mailstream_low_close(low);
	mailstream_low_free(low);
}

/* Raw deflate of data, Z_SYNC_FLUSH at random points (as a server flushes
 * after each response); malloc'd, *out_len. */
static unsigned char *server_deflate(const unsigned char *data, size_t len, size_t *out_len, bool finish)
{
	z_stream z = { 0 };
	size_t cap = len + len / 10 + 4096, pos = 0;
	unsigned char *out = malloc(cap);

	assert_non_null(out);
	assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
	while (pos < len || finish) {
		size_t n = rnd_between(1, 40000);
		bool last = pos + n >= len;

		if (n > len - pos)
			n = len - pos;
		z.next_in = (unsigned char *)(uintptr_t)(data + pos);
		z.avail_in = (uInt)n;
		do {
			if (cap - z.total_out < 1024) {
				cap *= 2;
				out = realloc(out, cap);
				assert_non_null(out);
			}
			z.next_out = out + z.total_out;
			z.avail_out = (uInt)(cap - z.total_out);
			deflate(&z, last && finish ? Z_FINISH : Z_SYNC_FLUSH);
		} while (z.avail_out == 0 || z.avail_in != 0);
		pos += n;
		if (last)
			break;
	}
	*out_len = z.total_out;
	deflateEnd(&z);
	return out;
}

/* Inflates all of in (raw deflate); malloc'd, *out_len. */
static unsigned char *plain_inflate(const unsigned char *in, size_t len, size_t *out_len)
{
	z_stream z = { 0 };
	size_t cap = len * 4 + 1024;
	unsigned char *out = malloc(cap);
	int r;

	assert_non_null(out);
	assert_int_equal(inflateInit2(&z, -15), Z_OK);
	z.next_in = (unsigned char *)(uintptr_t)in;
	z.avail_in = (uInt)len;
	do {
		if (cap - z.total_out < 1024) {
			cap *= 2;
			out = realloc(out, cap);
			assert_non_null(out);
		}
		z.next_out = out + z.total_out;
		z.avail_out = (uInt)(cap - z.total_out);
		r = inflate(&z, Z_SYNC_FLUSH);
		assert_true(r == Z_OK || r == Z_BUF_ERROR || r == Z_STREAM_END);
	} while (z.avail_in != 0 || z.avail_out == 0);
	*out_len = z.total_out;
	inflateEnd(&z);
	return out;
}

/* Reads low until it fails, len at random up to max_len per read; every
 * read returns > 0 and at most COMPRESS_READ_MAX.  Returns what was read
 * (malloc'd) and its length. */
static unsigned char *read_all(mailstream_low *low, size_t max_len, size_t *got)
{
	size_t cap = 1 << 16;
	unsigned char *d = malloc(cap);

	*got = 0;
	for (;;) {
		size_t want = rnd_between(1, max_len);
		ssize_t n;

		if (cap - *got < want) {
			cap = (*got + want) * 2;
			d = realloc(d, cap);
			assert_non_null(d);
		}
		n = mailstream_low_read(low, d + *got, want);
		if (n < 0)
			break;
		assert_true(n > 0); /* never 0: libetpan would spin */
		assert_true((size_t)n <= want && n <= COMPRESS_READ_MAX);
		*got += (size_t)n;
	}
	return d;
}

/* ---- round trips ---- */

/* The server's stream, random data flushed at random points and served in
 * random chunks, read in random sizes: every byte comes out, in order; then
 * EOF below is a failure, and stays one. */
static void test_inflate_round_trip(void **state)
{
	(void)state;
	rng_state = 0x9e3779b97f4a7c15ull;
	for (int round = 0; round < 30; round++) {
		size_t len = rnd_between(0, round < 25 ? 200000 : 3000000), wire_len, got;
		unsigned char *data = random_data(len);
		unsigned char *wire = server_deflate(data, len, &wire_len, false);
		struct pipe p = { .in = wire, .in_len = wire_len, .max_chunk = rnd_between(1, 70000) };
		mailstream_low *low = layer_over(&p, NULL, NULL);
		unsigned char *back = read_all(low, rnd_between(1, 600000), &got);
		struct compress_counts c;
		char buf[16];

		assert_int_equal(got, len);
		assert_memory_equal(back, data, len);
		assert_null(compress_stream_failure(low)); /* EOF below: its own failure */
		assert_int_equal(mailstream_low_read(low, buf, sizeof(buf)), -1);
		compress_stream_counts(low, &c);
		assert_int_equal(c.wire_in, wire_len);
		assert_int_equal(c.plain_in, len);
		layer_free(low);
		free(back);
		free(wire);
		free(data);
	}
}

/* What is written leaves deflated, whole at each write (Z_SYNC_FLUSH): the
 * wire so far inflates to exactly what was written so far. */
static void test_deflate_flushes_each_write(void **state)
{
	(void)state;
	rng_state = 0x1234567887654321ull;
	for (int round = 0; round < 20; round++) {
		size_t len = rnd_between(1, 300000), pos = 0;
		unsigned char *data = random_data(len);
		struct pipe p = { .max_chunk = 1 };
		mailstream_low *low = layer_over(&p, NULL, NULL);
		struct compress_counts c;

		while (pos < len) {
			size_t n = rnd_between(1, 50000), back_len;
			unsigned char *back;
			ssize_t w;

			if (n > len - pos)
				n = len - pos;
			w = mailstream_low_write(low, data + pos, n);
			assert_true(w > 0 && (size_t)w <= n);
			pos += (size_t)w;
			back = plain_inflate(p.out, p.out_len, &back_len);
			assert_int_equal(back_len, pos);
			assert_memory_equal(back, data, pos);
			free(back);
		}
		compress_stream_counts(low, &c);
		assert_int_equal(c.plain_out, len);
		assert_int_equal(c.wire_out, p.out_len);
		layer_free(low);
		free(p.out);
		free(data);
	}
}

/* One layer's writes read back through another layer. */
static void test_layer_to_layer(void **state)
{
	size_t len = 1500000, got;
	unsigned char *data, *back;
	struct pipe a = { .max_chunk = 1 }, b;
	mailstream_low *writer, *reader;

	(void)state;
	rng_state = 42;
	data = random_data(len);
	writer = layer_over(&a, NULL, NULL);
	for (size_t pos = 0; pos < len;) {
		ssize_t w = mailstream_low_write(writer, data + pos, rnd_between(1, len - pos));

		assert_true(w > 0);
		pos += (size_t)w;
	}
	b = (struct pipe){ .in = a.out, .in_len = a.out_len, .max_chunk = 9000 };
	reader = layer_over(&b, NULL, NULL);
	back = read_all(reader, 100000, &got);
	assert_int_equal(got, len);
	assert_memory_equal(back, data, len);
	layer_free(writer);
	layer_free(reader);
	free(a.out);
	free(back);
	free(data);
}

/* ---- hostile streams ---- */

/* A valid stream with bytes flipped, or garbage from the start: the reads
 * deliver a prefix of the data at most, then fail, and keep failing. */
static void test_corrupt_stream_fails(void **state)
{
	(void)state;
	rng_state = 777;
	for (int round = 0; round < 200; round++) {
		size_t len = rnd_between(1000, 100000), wire_len, got;
		unsigned char *data = random_data(len);
		unsigned char *wire = server_deflate(data, len, &wire_len, false);
		struct pipe p;
		mailstream_low *low;
		unsigned char *back;
		char buf[64];

		if (round % 4 == 0) {
			for (size_t i = 0; i < wire_len; i++)
				wire[i] = (unsigned char)rnd();
		} else {
			for (int k = 0; k < 1 + round % 5; k++)
				wire[rnd_between(0, wire_len - 1)] ^= (unsigned char)rnd_between(1, 255);
		}
		p = (struct pipe){ .in = wire, .in_len = wire_len, .max_chunk = rnd_between(1, 20000) };
		low = layer_over(&p, NULL, NULL);
		back = read_all(low, 70000, &got);
		/* a flip may still inflate (to other bytes); garbage may even
		 * look like a block for a while: bounded by deflate's ratio */
		assert_true(got <= 1032 * (uint64_t)wire_len + 300);
		assert_int_equal(mailstream_low_read(low, buf, sizeof(buf)), -1);
		assert_int_equal(mailstream_low_read(low, buf, sizeof(buf)), -1);
		layer_free(low);
		free(back);
		free(wire);
		free(data);
	}
	/* garbage that is surely invalid: reserved block type 3 */
	{
		static const unsigned char bad[] = { 0x07, 0xff, 0xff, 0xff };
		struct pipe p = { .in = bad, .in_len = sizeof(bad), .max_chunk = 4 };
		mailstream_low *low = layer_over(&p, NULL, NULL);
		char buf[64];

		assert_int_equal(mailstream_low_read(low, buf, sizeof(buf)), -1);
		assert_string_equal(compress_stream_failure(low), "the server's compressed data is corrupt");
		layer_free(low);
	}
}

/* A stream cut short (the connection closes inside a block): what was
 * complete is delivered, then the read fails. */
static void test_truncated_stream_fails(void **state)
{
	size_t len = 400000, wire_len, got;
	unsigned char *data, *wire, *back;

	(void)state;
	rng_state = 99;
	data = random_data(len);
	wire = server_deflate(data, len, &wire_len, false);
	for (int round = 0; round < 40; round++) {
		struct pipe p = { .in = wire, .in_len = rnd_between(0, wire_len - 1), .max_chunk = 30000 };
		mailstream_low *low = layer_over(&p, NULL, NULL);

		back = read_all(low, 50000, &got);
		assert_true(got <= len);
		assert_memory_equal(back, data, got);
		assert_int_equal(p.in_pos, p.in_len); /* it failed at EOF below, not before */
		layer_free(low);
		free(back);
	}
	free(wire);
	free(data);
}

/* A server that ends its deflate stream (Z_FINISH), then sends more: the
 * data is delivered, then reads fail ("ended"). */
static void test_ended_stream_fails(void **state)
{
	size_t len = 5000, wire_len, got;
	unsigned char *data, *wire, *more, *back;
	struct pipe p;
	mailstream_low *low;

	(void)state;
	rng_state = 5;
	data = random_data(len);
	wire = server_deflate(data, len, &wire_len, true);
	more = malloc(wire_len + 100);
	assert_non_null(more);
	memcpy(more, wire, wire_len);
	memset(more + wire_len, 'A', 100);
	p = (struct pipe){ .in = more, .in_len = wire_len + 100, .max_chunk = 100000 };
	low = layer_over(&p, NULL, NULL);
	back = read_all(low, 100000, &got);
	assert_int_equal(got, len);
	assert_memory_equal(back, data, len);
	assert_string_equal(compress_stream_failure(low), "the server ended its compressed stream");
	layer_free(low);
	free(back);
	free(more);
	free(wire);
	free(data);
}

struct budget {
	uint64_t left;
	uint64_t charged;
	int refusals;
};

static bool charge(mailstream_low *below, uint64_t bytes, void *ctx)
{
	struct budget *b = ctx;

	(void)below;
	if (bytes > b->left) {
		b->refusals++;
		return false;
	}
	b->left -= bytes;
	b->charged += bytes;
	return true;
}

/* Deflated zeros without end (1000:1): with a 64 MiB budget the reads stop
 * once 64 MiB were inflated -- each read bounded, the layer's memory fixed
 * -- and keep failing. */
static void test_bomb_runs_out_of_budget(void **state)
{
	struct budget b = { .left = 64u << 20 };
	struct pipe p = { .endless_zeros = true, .max_chunk = 65536 };
	mailstream_low *low;
	static char buf[1 << 20];
	uint64_t total = 0;
	ssize_t n;

	(void)state;
	rng_state = 3;
	assert_int_equal(deflateInit2(&p.gen, 9, Z_DEFLATED, -15, 9, Z_DEFAULT_STRATEGY), Z_OK);
	low = layer_over(&p, charge, &b);
	while ((n = mailstream_low_read(low, buf, sizeof(buf))) > 0) {
		assert_true(n <= COMPRESS_READ_MAX);
		for (ssize_t i = 0; i < n; i += 4099)
			assert_int_equal(buf[i], 0);
		total += (uint64_t)n;
		assert_true(total <= (64u << 20) + p.served); /* the charge is what the wire did not pay */
	}
	assert_int_equal(n, -1);
	assert_int_equal(b.refusals, 1);
	assert_true(total + COMPRESS_READ_MAX > (64u << 20)); /* the budget, nearly all of it */
	assert_true(p.served < (1u << 20));                   /* from well under 1 MiB on the wire */
	assert_string_equal(compress_stream_failure(low),
			    "the server's compressed data inflates to more than one request may take");
	assert_int_equal(mailstream_low_read(low, buf, sizeof(buf)), -1);
	assert_int_equal(b.refusals, 1); /* failed for good: nothing more is inflated */
	layer_free(low);
	deflateEnd(&p.gen);
}

/* Incompressible data is charged (nearly) nothing beyond the wire; text is
 * charged what it inflated beyond it: wire + charges >= what was read. */
static void test_charges_cover_what_was_read(void **state)
{
	(void)state;
	rng_state = 11;
	for (int round = 0; round < 10; round++) {
		size_t len = rnd_between(1, 2000000), wire_len, got;
		unsigned char *data = random_data(len);
		unsigned char *wire = server_deflate(data, len, &wire_len, false);
		struct budget b = { .left = UINT64_MAX };
		struct pipe p = { .in = wire, .in_len = wire_len, .max_chunk = 65536 };
		mailstream_low *low = layer_over(&p, charge, &b);
		unsigned char *back = read_all(low, 300000, &got);

		assert_int_equal(got, len);
		assert_true(p.served + b.charged >= len);
		assert_true(b.charged <= len);
		layer_free(low);
		free(back);
		free(wire);
		free(data);
	}
}

/* What a read leaves in the inflater is "pending" (poll would not see it). */
static void test_pending(void **state)
{
	size_t len = 100000, wire_len;
	unsigned char *data, *wire;
	struct pipe p;
	mailstream_low *low;
	char buf[1000];

	(void)state;
	rng_state = 8;
	data = random_data(len);
	wire = server_deflate(data, len, &wire_len, false);
	p = (struct pipe){ .in = wire, .in_len = wire_len, .max_chunk = 1 << 20 };
	low = layer_over(&p, NULL, NULL);
	assert_false(compress_stream_pending(low));
	assert_int_equal(mailstream_low_read(low, buf, sizeof(buf)), sizeof(buf));
	assert_true(compress_stream_pending(low));
	assert_false(compress_stream_pending(compress_stream_below(low)));
	layer_free(low);
	free(wire);
	free(data);
}

/* The whole stack below: tls.c's plain stream on a socket, its byte budget
 * counting what the layer inflated beyond the wire. */
static bool charge_tls(mailstream_low *below, uint64_t bytes, void *ctx)
{
	(void)ctx;
	return tls_stream_charge(below, bytes);
}

static void test_budget_of_the_transport(void **state)
{
	static unsigned char zeros[4 << 20];
	size_t wire_len, got;
	unsigned char *wire, *back;
	mailstream_low *tcp, *low;
	char err[256];
	int sv[2];

	(void)state;
	rng_state = 21;
	wire = server_deflate(zeros, sizeof(zeros), &wire_len, false);
	assert_true(wire_len < 100000);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(write(sv[1], wire, wire_len), (ssize_t)wire_len);
	close(sv[1]);
	tcp = tls_stream_new(sv[0], NULL, "localhost", 2, 0, err, sizeof(err));
	assert_non_null(tcp);
	tls_stream_limit(tcp, 1 << 20, 10); /* 1 MiB: far less than 4 MiB inflated */
	low = compress_stream_new(tcp, charge_tls, NULL);
	assert_non_null(low);
	back = read_all(low, 100000, &got);
	assert_true(got <= (1 << 20) + wire_len);
	assert_true(got + COMPRESS_READ_MAX > (1 << 20));
	assert_true(tls_stream_over_budget(tcp));
	assert_true(tls_stream_over_budget(compress_stream_below(low)));
	free(back);
	layer_free(low);
	free(wire);
}

/* ---- -o compress=auto ---- */

static void test_auto_rule(void **state)
{
	(void)state;
	assert_true(imap_compress_wanted(IMAP_COMPRESS_YES, true, 0));
	assert_false(imap_compress_wanted(IMAP_COMPRESS_NO, false, 500000));
	/* loopback: never, however slow the machine answers */
	assert_false(imap_compress_wanted(IMAP_COMPRESS_AUTO, true, 0));
	assert_false(imap_compress_wanted(IMAP_COMPRESS_AUTO, true, 200000));
	/* elsewhere by the round trip */
	assert_false(imap_compress_wanted(IMAP_COMPRESS_AUTO, false, 300));
	assert_false(imap_compress_wanted(IMAP_COMPRESS_AUTO, false, IMAP_COMPRESS_RTT_US - 1));
	assert_true(imap_compress_wanted(IMAP_COMPRESS_AUTO, false, IMAP_COMPRESS_RTT_US));
	assert_true(imap_compress_wanted(IMAP_COMPRESS_AUTO, false, 80000));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_inflate_round_trip),
		cmocka_unit_test(test_deflate_flushes_each_write),
		cmocka_unit_test(test_layer_to_layer),
		cmocka_unit_test(test_corrupt_stream_fails),
		cmocka_unit_test(test_truncated_stream_fails),
		cmocka_unit_test(test_ended_stream_fails),
		cmocka_unit_test(test_bomb_runs_out_of_budget),
		cmocka_unit_test(test_charges_cover_what_was_read),
		cmocka_unit_test(test_pending),
		cmocka_unit_test(test_budget_of_the_transport),
		cmocka_unit_test(test_auto_rule),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

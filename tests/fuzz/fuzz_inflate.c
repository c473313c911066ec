/* libFuzzer target for the inflating reader of COMPRESS=DEFLATE
 * (src/imap/compress.c).  Built and run by `make fuzz`.
 *
 * The first byte picks the mode and the read sizes, the next two a byte
 * budget; the rest is what a server sends.
 *   mode 0: the rest is the server's deflate stream, served in chunks of
 *     1..N bytes, read through the layer in reads of 1..M bytes.  What must
 *     hold: no crash, no hang; a read returns -1 or 1..min(asked,
 *     COMPRESS_READ_MAX) bytes, never 0; once -1, always -1; what was read
 *     never passes the budget plus the bytes that crossed the wire.
 *   mode 1: the rest is plain text, deflated by one layer (written in
 *     pieces) and read back through another: the same bytes come out. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imap/compress.h"

#define CHECK(cond)              \
	do {                     \
		if (!(cond))     \
			abort(); \
	} while (0)

struct pipe {
	const uint8_t *in;
	size_t len, pos, chunk;
	uint8_t *out;
	size_t out_len, out_cap;
};

static ssize_t pipe_read(mailstream_low *low, void *buf, size_t len)
{
	struct pipe *p = low->data;
	size_t n = p->len - p->pos;

	if (n == 0)
		return -1;
	if (n > p->chunk)
		n = p->chunk;
	if (n > len)
		n = len;
	memcpy(buf, p->in + p->pos, n);
	p->pos += n;
	return (ssize_t)n;
}

static ssize_t pipe_write(mailstream_low *low, const void *buf, size_t len)
{
	struct pipe *p = low->data;

	if (p->out_len + len > p->out_cap) {
		p->out_cap = (p->out_len + len) * 2;
		p->out = realloc(p->out, p->out_cap);
		CHECK(p->out);
	}
	memcpy(p->out + p->out_len, buf, len);
	p->out_len += len;
	return (ssize_t)len;
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
	free(low);
}

static mailstream_low_driver pipe_driver = {
	.mailstream_read = pipe_read,
	.mailstream_write = pipe_write,
	.mailstream_close = pipe_close,
	.mailstream_get_fd = pipe_get_fd,
	.mailstream_free = pipe_free,
};

struct budget {
	uint64_t left, charged;
};

static bool charge(mailstream_low *below, uint64_t bytes, void *ctx)
{
	struct budget *b = ctx;

	(void)below;
	if (bytes > b->left)
		return false;
	b->left -= bytes;
	b->charged += bytes;
	return true;
}

static mailstream_low *layer(struct pipe *p, struct budget *b)
{
	mailstream_low *below = mailstream_low_new(p, &pipe_driver), *low;

	CHECK(below);
	low = compress_stream_new(below, b ? charge : NULL, b);
	CHECK(low);
	return low;
}

static void hostile_stream(const uint8_t *data, size_t size, unsigned shape, uint64_t budget)
{
	static uint8_t buf[COMPRESS_READ_MAX + 1000];
	struct pipe p = { .in = data, .len = size, .chunk = 1 + (shape & 7) * 997 };
	struct budget b = { .left = budget };
	size_t want = (shape >> 3) & 1 ? sizeof(buf) : 1 + ((shape >> 4) & 15) * 61;
	mailstream_low *low = layer(&p, &b);
	uint64_t total = 0;
	ssize_t n;

	while ((n = mailstream_low_read(low, buf, want)) > 0) {
		CHECK((size_t)n <= want && n <= COMPRESS_READ_MAX);
		total += (uint64_t)n;
		CHECK(total <= budget + p.pos);
		CHECK(b.charged <= budget);
	}
	CHECK(n == -1);
	CHECK(mailstream_low_read(low, buf, want) == -1);
	CHECK(!compress_stream_pending(low));
	mailstream_low_close(low);
	mailstream_low_free(low);
}

static void round_trip(const uint8_t *data, size_t size, unsigned shape)
{
	struct pipe a = { 0 }, b;
	mailstream_low *writer = layer(&a, NULL), *reader;
	size_t piece = 1 + (shape & 15) * 37, got = 0;
	uint8_t *back = malloc(size + 1);
	ssize_t n;

	CHECK(back);
	for (size_t pos = 0; pos < size;) {
		size_t k = size - pos < piece ? size - pos : piece;

		n = mailstream_low_write(writer, data + pos, k);
		CHECK(n > 0 && (size_t)n <= k);
		pos += (size_t)n;
	}
	b = (struct pipe){ .in = a.out, .len = a.out_len, .chunk = 1 + (shape >> 4) * 131 };
	reader = layer(&b, NULL);
	while ((n = mailstream_low_read(reader, back + got, size + 1 - got)) > 0) {
		got += (size_t)n;
		CHECK(got <= size);
		if (got == size)
			break;
	}
	CHECK(got == size && memcmp(back, data, size) == 0);
	mailstream_low_close(writer);
	mailstream_low_free(writer);
	mailstream_low_close(reader);
	mailstream_low_free(reader);
	free(back);
	free(a.out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned shape;
	uint64_t budget;

	if (size < 3)
		return 0;
	shape = data[0];
	budget = ((uint64_t)data[1] << 8 | data[2]) * 64;
	if (shape & 0x80)
		round_trip(data + 3, size - 3, shape & 0x7f);
	else
		hostile_stream(data + 3, size - 3, shape, budget);
	return 0;
}

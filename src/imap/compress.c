/* compress.c - owns the deflate layer of COMPRESS=DEFLATE (RFC 4978): one
 * zlib inflater and one deflater per connection, fixed buffers, and the
 * mailstream_low driver libetpan reads and writes through (compress.h). */
#include "compress.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* compressed bytes read from below at a time */
#define INPUT_BUFFER (64 * 1024)
/* deflated bytes written to below at a time */
#define OUTPUT_BUFFER (16 * 1024)

enum failure {
	FAILED_NOT,
	FAILED_BELOW,   /* the stream below failed: EOF, timeout, error */
	FAILED_CORRUPT, /* inflate refused the data */
	FAILED_ENDED,   /* the server ended its deflate stream */
	FAILED_BUDGET,  /* the charge callback refused what was inflated */
	FAILED_DEFLATE, /* deflate failed (cannot happen with valid state) */
};

struct cstream {
	mailstream_low *below; /* owned */
	compress_charge_fn *charge;
	void *charge_ctx;
	z_stream in;  /* inflater: next_in points into input */
	z_stream out; /* deflater */
	bool in_ready, out_ready;
	bool full; /* the last read stopped at its bound: more may be ready */
	enum failure failed;
	struct compress_counts counts;
	unsigned char input[INPUT_BUFFER];
	unsigned char output[OUTPUT_BUFFER];
};

static mailstream_low_driver compress_driver;

/* Inflates what is buffered into buf[*got..want); false on a failure
 * (recorded).  Stops when the output is full, the input is used up, or the
 * stream ended. */
static bool inflate_some(struct cstream *cs, unsigned char *buf, size_t want, size_t *got, size_t *consumed)
{
	uInt in_before = cs->in.avail_in;
	int z;

	cs->in.next_out = buf + *got;
	cs->in.avail_out = (uInt)(want - *got);
	z = inflate(&cs->in, Z_SYNC_FLUSH);
	*consumed += in_before - cs->in.avail_in;
	*got = want - cs->in.avail_out;
	switch (z) {
	case Z_OK:
		return true;
	case Z_BUF_ERROR: /* no progress possible: needs input (or room) */
		if (cs->in.avail_in != 0 && cs->in.avail_out != 0) {
			cs->failed = FAILED_CORRUPT;
			return false;
		}
		return true;
	case Z_STREAM_END:
		/* RFC 4978: compression lasts as long as the connection.  What
		 * was inflated is delivered; the next read fails. */
		cs->failed = FAILED_ENDED;
		return true;
	default: /* Z_DATA_ERROR, Z_NEED_DICT, Z_MEM_ERROR, Z_STREAM_ERROR */
		cs->failed = FAILED_CORRUPT;
		return false;
	}
}

static ssize_t drv_read(mailstream_low *low, void *buf, size_t len)
{
	struct cstream *cs = low->data;
	size_t want = len < COMPRESS_READ_MAX ? len : COMPRESS_READ_MAX;
	size_t got = 0, consumed = 0;

	if (cs->failed || want == 0)
		return cs->failed ? -1 : 0;
	for (;;) {
		if (cs->in.avail_in == 0) {
			ssize_t n;

			if (got > 0)
				break; /* deliver what there is: never wait with data in hand */
			n = mailstream_low_read(cs->below, cs->input, sizeof(cs->input));
			if (n <= 0) {
				/* 0 would make libetpan spin on a dead stream */
				cs->failed = FAILED_BELOW;
				return -1;
			}
			cs->counts.wire_in += (uint64_t)n;
			cs->in.next_in = cs->input;
			cs->in.avail_in = (uInt)n;
		}
		size_t got_before = got, consumed_before = consumed;

		if (!inflate_some(cs, buf, want, &got, &consumed))
			return -1;
		if (got == want || cs->failed)
			break;
		if (got == got_before && consumed == consumed_before && cs->in.avail_in != 0) {
			cs->failed = FAILED_CORRUPT; /* stuck: never loop on it */
			return -1;
		}
	}
	cs->full = got == want;
	if (got == 0) /* the stream ended with nothing more */
		return -1;
	/* what the wire did not pay for: a bomb runs out of budget here */
	if (got > consumed && cs->charge && !cs->charge(cs->below, got - consumed, cs->charge_ctx)) {
		cs->failed = FAILED_BUDGET;
		return -1;
	}
	cs->counts.plain_in += got;
	return (ssize_t)got;
}

/* Writes all of buf to the stream below; false on failure. */
static bool write_below(struct cstream *cs, const unsigned char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = mailstream_low_write(cs->below, buf, len);

		if (n <= 0) {
			cs->failed = FAILED_BELOW;
			return false;
		}
		cs->counts.wire_out += (uint64_t)n;
		buf += n;
		len -= (size_t)n;
	}
	return true;
}

static ssize_t drv_write(mailstream_low *low, const void *buf, size_t len)
{
	struct cstream *cs = low->data;
	size_t take = len < INT_MAX ? len : INT_MAX; /* a partial write is allowed */

	if (cs->failed)
		return -1;
	if (take == 0)
		return 0;
	cs->out.next_in = (unsigned char *)(uintptr_t)buf;
	cs->out.avail_in = (uInt)take;
	/* the flush is complete when deflate leaves room in the output */
	do {
		int z;

		cs->out.next_out = cs->output;
		cs->out.avail_out = sizeof(cs->output);
		z = deflate(&cs->out, Z_SYNC_FLUSH);
		if (z != Z_OK && z != Z_BUF_ERROR) {
			cs->failed = FAILED_DEFLATE;
			return -1;
		}
		if (!write_below(cs, cs->output, sizeof(cs->output) - cs->out.avail_out))
			return -1;
	} while (cs->out.avail_out == 0);
	if (cs->out.avail_in != 0) {
		cs->failed = FAILED_DEFLATE;
		return -1;
	}
	cs->counts.plain_out += take;
	return (ssize_t)take;
}

static int drv_close(mailstream_low *low)
{
	struct cstream *cs = low->data;

	return mailstream_low_close(cs->below);
}

static int drv_get_fd(mailstream_low *low)
{
	struct cstream *cs = low->data;

	return mailstream_low_get_fd(cs->below);
}

static void release(struct cstream *cs)
{
	if (cs->in_ready)
		inflateEnd(&cs->in);
	if (cs->out_ready)
		deflateEnd(&cs->out);
	free(cs);
}

static void drv_free(mailstream_low *low)
{
	struct cstream *cs = low->data;

	mailstream_low_free(cs->below);
	release(cs);
	free(low);
}

static void drv_cancel(mailstream_low *low)
{
	struct cstream *cs = low->data;

	mailstream_low_cancel(cs->below);
}

static mailstream_low_driver compress_driver = {
	.mailstream_read = drv_read,
	.mailstream_write = drv_write,
	.mailstream_close = drv_close,
	.mailstream_get_fd = drv_get_fd,
	.mailstream_free = drv_free,
	.mailstream_cancel = drv_cancel,
};

mailstream_low *compress_stream_new(mailstream_low *below, compress_charge_fn *charge, void *charge_ctx)
{
	struct cstream *cs = calloc(1, sizeof(*cs));
	mailstream_low *low;

	if (!cs)
		return NULL;
	cs->below = below;
	cs->charge = charge;
	cs->charge_ctx = charge_ctx;
	cs->in_ready = inflateInit2(&cs->in, -15) == Z_OK;
	cs->out_ready =
		deflateInit2(&cs->out, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) == Z_OK;
	low = cs->in_ready && cs->out_ready ? mailstream_low_new(cs, &compress_driver) : NULL;
	if (!low) {
		release(cs);
		return NULL;
	}
	mailstream_low_set_timeout(low, mailstream_low_get_timeout(below));
	mailstream_low_set_logger(below, NULL, NULL);
	return low;
}

bool compress_stream_is(const mailstream_low *low)
{
	return low && low->driver == &compress_driver;
}

mailstream_low *compress_stream_below(mailstream_low *low)
{
	return compress_stream_is(low) ? ((struct cstream *)low->data)->below : low;
}

bool compress_stream_pending(const mailstream_low *low)
{
	const struct cstream *cs;

	if (!compress_stream_is(low))
		return false;
	cs = low->data;
	return !cs->failed && (cs->in.avail_in != 0 || cs->full);
}

const char *compress_stream_failure(const mailstream_low *low)
{
	if (!compress_stream_is(low))
		return NULL;
	switch (((const struct cstream *)low->data)->failed) {
	case FAILED_CORRUPT:
		return "the server's compressed data is corrupt";
	case FAILED_ENDED:
		return "the server ended its compressed stream";
	case FAILED_BUDGET:
		return "the server's compressed data inflates to more than one request may take";
	case FAILED_DEFLATE:
		return "compressing failed";
	default:
		return NULL;
	}
}

void compress_stream_counts(const mailstream_low *low, struct compress_counts *out)
{
	if (compress_stream_is(low))
		*out = ((const struct cstream *)low->data)->counts;
	else
		memset(out, 0, sizeof(*out));
}

/* compress.h - COMPRESS=DEFLATE (RFC 4978): a mailstream_low driver that
 * puts raw deflate (zlib, windowBits -15) between libetpan and the stream
 * under it (tls.c's plain or TLS stream).  libetpan's own compression layer
 * is not used: Debian builds it without zlib (a stub), and it trusts the
 * server's stream more than a client may.
 *
 * What a hostile server's stream can do to it, and what it gets:
 *   - every read inflates at most COMPRESS_READ_MAX bytes, and the buffers
 *     are fixed at creation (zlib's 32 KiB window, one input buffer): memory
 *     does not grow with what the server sends;
 *   - what a read inflates beyond the compressed bytes it consumed is
 *     charged to the stream below through the charge callback, so a byte
 *     budget there (tls_stream_limit) counts what libetpan gets, not what
 *     crossed the wire: a compression bomb runs out of budget and fails;
 *   - corrupt data, a stream the server ends (RFC 4978 has no end), EOF or a
 *     timeout below: that read and every later one return -1 (libetpan
 *     reports STREAM, the session dies), never 0 -- libetpan takes 0 for
 *     "no data yet" and would spin.
 * Writes are deflated and flushed with Z_SYNC_FLUSH, so a command leaves at
 * once, whole.
 *
 * A stream is used by one thread at a time, like the session owning it. */
#ifndef IMAPFS_COMPRESS_H
#define IMAPFS_COMPRESS_H

#include <stdbool.h>
#include <stdint.h>
#include <libetpan/libetpan.h>

/* The most inflated bytes one read returns. */
#define COMPRESS_READ_MAX (256 * 1024)

/* Charges `bytes` more read to the stream below (ctx is the caller's);
 * false refuses them (over the operation's budget): the read fails. */
typedef bool compress_charge_fn(mailstream_low *below, uint64_t bytes, void *ctx);

/* Wraps below.  From then on the new stream owns below (closes and frees
 * it) and libetpan's logger sees only what is inflated and what is about to
 * be deflated -- below's own logger is cleared, so a trace never shows the
 * compressed bytes.  charge may be NULL (nothing counted).  NULL when out
 * of memory; below is then untouched. */
mailstream_low *compress_stream_new(mailstream_low *below, compress_charge_fn *charge, void *charge_ctx);

/* Whether low is such a stream. */
bool compress_stream_is(const mailstream_low *low);

/* The stream under low when low is a compressing stream, else low. */
mailstream_low *compress_stream_below(mailstream_low *low);

/* Whether a read on low may return data without waiting for the socket
 * (compressed input not yet inflated, or the last read stopped at its
 * bound): poll(2) on the fd would not see it.  False for other streams. */
bool compress_stream_pending(const mailstream_low *low);

/* Why reads or writes on low fail for good, as a phrase for a log line
 * ("the server's compressed data is corrupt"), or NULL when they do not, or
 * when the stream below failed (its own flags say why), or low is not a
 * compressing stream. */
const char *compress_stream_failure(const mailstream_low *low);

/* Bytes that crossed the wire (read from and written to the stream below)
 * and bytes libetpan read and wrote, since the stream was made. */
struct compress_counts {
	uint64_t wire_in, wire_out;
	uint64_t plain_in, plain_out;
};
void compress_stream_counts(const mailstream_low *low, struct compress_counts *out);

#endif

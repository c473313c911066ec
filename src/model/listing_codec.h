/* listing_codec.h - the on-disk form of a saved listing (listing_store.c
 * keeps one per folder, so a remount syncs from it, not from nothing): pure
 * encoding and decoding, no I/O.
 *
 * A saved listing is a header, then count packed messages, then the names:
 *   magic:u64 uidvalidity:u32 crc:u32 count:u64 names_len:u64 modseq:u64
 *   count x ( uid:u32 size:u32 date:i64 name_off:u32 flags:u8 )
 *   names_len bytes of NUL-terminated names
 * in the host's byte order (the file never leaves the machine).  The CRC-32
 * covers everything after the header.  The magic's last byte is the format
 * version: a file of another version is not read. */
#ifndef IMAPFS_LISTING_CODEC_H
#define IMAPFS_LISTING_CODEC_H

#include "listing.h"

#include <stddef.h>

#define LISTING_FORMAT_VERSION '3' /* 3: names without format characters */
#define LISTING_HEADER_SIZE 40u
#define LISTING_PACKED_MSG 21u       /* uid, size, date, name_off, flags */
#define LISTING_MAX_COUNT (1u << 26) /* messages: beyond, not a listing of ours */
#define LISTING_MAX_NAMES (1u << 30) /* bytes of names: likewise */
/* The longest encoding decode accepts. */
#define LISTING_MAX_ENCODED \
	((size_t)LISTING_HEADER_SIZE + (size_t)LISTING_MAX_COUNT * LISTING_PACKED_MSG + LISTING_MAX_NAMES)

/* l encoded into a malloc'd buffer (*out, *len); 0 or -ENOMEM. */
int listing_encode(const struct listing *l, unsigned char **out, size_t *len);

/* The same, streamed (a listing of a million messages needs no second copy
 * of itself): put gets what follows the header, in pieces, in order; the
 * header, which holds their CRC, comes last, in header.  0, or the first
 * nonzero return of put (which then is not called again). */
typedef int listing_put_fn(void *ctx, const void *bytes, size_t n);
int listing_encode_stream(const struct listing *l, unsigned char header[LISTING_HEADER_SIZE],
			  listing_put_fn *put, void *ctx);

/* The listing data[len] holds: *out a new listing (one reference, names
 * indexed), 0.  -ENOTSUP when data is no saved listing of this format (too
 * short for a header, another magic or version, counts past the limits);
 * -EBADMSG when it is one but damaged (cut short, longer, CRC mismatch, a
 * name offset outside the names, names not NUL-terminated, UIDs not
 * ascending); -ENOMEM. */
int listing_decode(const unsigned char *data, size_t len, struct listing **out);

#endif

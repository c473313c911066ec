/* listing_stream.h - a folder's first listing shown to `ls` while its FETCH
 * still streams in.  A cold `ls -l` used to wait for the whole metadata
 * FETCH before the kernel saw one entry, and only then make its inodes:
 * two waits in a row.  With a stream, opendir is answered once the FETCH
 * has begun, and readdir hands out each message as soon as it has arrived,
 * so the kernel's half of the listing overlaps the server's.
 *
 * One producer (the sync, on a pool session) and any number of readers
 * (readdir).  Entries are positions: position p < shown is the sync's
 * builder's message p while the sync streams in strictly ascending UIDs
 * (as FETCH answers as a rule); a message out of that order ends the
 * streamed part, and the rest comes from the finished listing (its
 * messages after the last streamed UID).  A sync that fails after streaming
 * began makes the rest of the entries an error: the listing a reader got
 * was never complete.
 *
 * A remount's first listing is the one saved at the last unmount: it is
 * offered to the readers whole, before the sync's SELECT (a round trip or
 * two on a slow link) has said what changed since. */
#ifndef IMAPFS_LISTING_STREAM_H
#define IMAPFS_LISTING_STREAM_H

#include "listing.h"

#include <stdbool.h>
#include <stddef.h>

struct listing_stream;

/* Called once, by the producer and with no lock held, when streaming
 * begins: the listing's readers may come from then on. */
typedef void listing_stream_start_fn(void *ctx);

/* A new stream (one reference, the producer's), or NULL.  wait_ms bounds
 * each reader's wait for the next entry. */
struct listing_stream *listing_stream_new(unsigned wait_ms, listing_stream_start_fn *on_start, void *ctx);
struct listing_stream *listing_stream_get(struct listing_stream *s);
void listing_stream_put(struct listing_stream *s);

/* Producer side.  attach: b's messages are streamed from now on (b->stream
 * is set; only the first attach of a stream streams, and it calls
 * on_start).  push: listing_builder_push for an attached builder.  detach:
 * before b is finished or abandoned (b's arrays change then).  done: the
 * sync's end, with its listing (referenced by the stream) or its error. */
void listing_stream_attach(struct listing_stream *s, struct listing_builder *b);
int listing_stream_push(struct listing_stream *s, struct listing_builder *b, uint32_t uid, uint32_t size,
			int64_t date, uint8_t flags, const char *name, size_t name_len);
void listing_stream_detach(struct listing_stream *s, struct listing_builder *b);
/* detach for a builder the sync drops to start over (new UIDVALIDITY):
 * readers shown some of its messages get EIO at the end (their positions
 * mean nothing in the new listing). */
void listing_stream_abandon(struct listing_stream *s, struct listing_builder *b);
void listing_stream_done(struct listing_stream *s, struct listing *l, int err);
/* Instead of attach, for a sync that starts from the listing saved at the
 * last unmount: readers get l whole at once (referenced by the stream) and
 * the stream ends there, while the sync checks it with the server.  The
 * sync's done, due before its listing is published, narrows what is left
 * to give out: the messages still in its listing (LISTING_STREAM_SKIP for
 * the others; all of them after a new UIDVALIDITY), EIO after -ENOENT (a
 * folder gone); with another error, the saved listing as it is. */
void listing_stream_offer(struct listing_stream *s, struct listing *l);
/* Whether on_start was called (the readers were promised this stream). */
bool listing_stream_started(struct listing_stream *s);
/* The UIDVALIDITY of the messages readers get: the generation the kernel
 * is told for them. */
uint32_t listing_stream_uidvalidity(struct listing_stream *s);

/* Reader side: message p, copied into *m and name (NAMES_MAX + 1 bytes):
 * LISTING_STREAM_ENTRY, LISTING_STREAM_END after the last one,
 * LISTING_STREAM_LATER when it has not arrived yet and wait is false (with
 * wait, it is waited for, at most wait_ms), or a negative errno: the sync
 * failed (its error), or nothing came within wait_ms (-ETIMEDOUT; the
 * messages a sync still takes in past a repeat renew the wait). */
enum {
	LISTING_STREAM_END,
	LISTING_STREAM_ENTRY,
	LISTING_STREAM_LATER,
	LISTING_STREAM_SKIP /* an offered message the server no longer has */
};
int listing_stream_entry(struct listing_stream *s, size_t p, bool wait, struct msg *m, char *name);

#endif

/* listing.h - a folder's messages as the model sees them: an immutable,
 * refcounted snapshot (UID, size, date, flags, file name per message),
 * built from the server's answers or from a saved copy.  No I/O, no locks:
 * a published listing is only read (but for the atomic msg.size and
 * msg.flags bits below), and shared by counting references. */
#ifndef IMAPFS_LISTING_H
#define IMAPFS_LISTING_H

#include "util/names.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct listing_stream;

struct msg {
	uint32_t uid;
	uint32_t size; /* RFC822.SIZE until a read proves otherwise; atomic */
	int64_t date;
	uint32_t name_off; /* into listing.names */
	uint8_t flags;     /* MSG_IMAP_FLAGS as the server has them, MSG_SIZE_*; atomic */
};

#define MSG_IMAP_FLAGS 0x1f     /* in msg.flags: IMAP_FLAG_SEEN .. IMAP_FLAG_DRAFT */
#define MSG_SIZE_CORRECTED 0x80 /* in msg.flags: RFC822.SIZE proved wrong */
#define MSG_SIZE_VERIFIED 0x40  /* in msg.flags: checked against the body once */

/* Immutable once published (but for msg.size and msg.flags); shared by refcount. */
struct listing {
	unsigned refs; /* atomic */
	uint32_t uidvalidity;
	uint64_t modseq; /* HIGHESTMODSEQ it reflects (CONDSTORE), else 0 */
	size_t count;
	struct msg *msgs; /* sorted by UID, no UID twice */
	char *names;      /* NUL-terminated names, back to back */
	size_t names_len;
	uint32_t *by_name; /* indices of msgs in byte order of names (ls, cat *) */
};

/* References: get adds one, put drops one and frees the last; both take NULL. */
struct listing *mb_listing_get(struct listing *l);
void mb_listing_put(struct listing *l);
/* A new empty listing (refs 1), or NULL. */
struct listing *listing_new(uint32_t uidvalidity, uint64_t modseq);

const char *mb_msg_name(const struct listing *l, const struct msg *m);
uint32_t mb_msg_size(const struct msg *m);
uint8_t mb_msg_flags(const struct msg *m);
/* The message with this UID, or NULL (l may be NULL). */
struct msg *mb_listing_find(const struct listing *l, uint32_t uid);
/* The UID of l's last message, 0 when it is empty. */
uint32_t listing_top_uid(const struct listing *l);
/* Whether uid is in the sorted array uids[n]. */
bool listing_uid_in(const uint32_t *uids, size_t n, uint32_t uid);
/* qsort order of uint32_t UIDs. */
int listing_cmp_uid(const void *a, const void *b);

/* Rebuilds l->by_name from l->msgs; on ENOMEM l->by_name stays NULL (read-ahead
 * then goes by UID). */
void listing_index_names(struct listing *l);

/* The most messages a listing holds (with their names, at most about 3 GB;
 * the names' offsets stay within 32 bits): a server that claims more, as a
 * hostile EXISTS can, has the folder's sync fail with EFBIG instead of
 * memory grow without limit.  A saved listing may hold as many
 * (LISTING_MAX_COUNT is above it). */
#define LISTING_MAX_MESSAGES 10000000u

/* Accumulates a new listing while FETCH responses stream in.  Messages come
 * in any order, maybe twice; finish sorts them by UID and drops repeats.
 * push fails with -EFBIG past LISTING_MAX_MESSAGES (repeats counted). */
struct listing_builder {
	struct listing *l; /* owned until finish */
	size_t cap, names_cap;
	enum names_mode mode;
	int err;                       /* the first error: later messages are ignored */
	struct listing_stream *stream; /* shown to readers as it grows (listing_stream.h), or NULL */
};

int listing_builder_init(struct listing_builder *b, enum names_mode mode, uint32_t uidvalidity);
int listing_builder_push(struct listing_builder *b, uint32_t uid, uint32_t size, int64_t date, uint8_t flags,
			 const char *name, size_t name_len);
/* Sorts, drops repeats, indexes the names: b->l is then complete. */
void listing_builder_finish(struct listing_builder *b);
/* Drops what was built. */
void listing_builder_abandon(struct listing_builder *b);

#endif

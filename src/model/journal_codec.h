/* journal_codec.h - the on-disk form of the change journal's records: pure
 * encoding, decoding and scanning, no I/O (journal.c owns the file).
 *
 * A record is  "IJ" kind:u8 len:u32  payload[len]  crc:u32  (little endian;
 * the CRC-32 covers kind, len and payload).  An ADD record's payload is a
 * list of fields  tag:u8 len:u32 bytes[len]; DONE's is the entry id (u64).
 * A SENT record's is  dest_validity:u32 dest_uidnext:u32 count:u32
 * id:u64[count]: the entries a batch was about to send, and the state of
 * its destination read before it, so that a later mount asks the server
 * whether they arrived instead of sending them again. */
#ifndef IMAPFS_JOURNAL_CODEC_H
#define IMAPFS_JOURNAL_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum journal_op {
	JOURNAL_MOVE = 1, /* src UID → dest (mv; rm to the trash; routing) */
	JOURNAL_EXPUNGE,  /* src UID removed for good (rm in the trash) */
	JOURNAL_APPEND,   /* staged file → dest (cp) */
	JOURNAL_FLAGS,    /* src UID's flags set to `text` */
	JOURNAL_CREATE,   /* folder dest created */
	JOURNAL_DELETE,   /* folder src deleted (aux: its private name) */
	JOURNAL_RENAME,   /* folder src renamed to dest */
	JOURNAL_METADATA, /* server entry `aux` set to `text` (receive folders) */
	JOURNAL_OP_MAX
};

/* in journal_entry.flags */
#define JOURNAL_ACKED 0x01 /* the caller was told it is done: finish, never drop */
/* a batch holding it was about to be sent: its outcome is in doubt until asked */
#define JOURNAL_SENT 0x02

/* One change, with what is needed to recognise its outcome later.  Strings
 * are owned by the entry (journal_entry_free); NULL when absent. */
struct journal_entry {
	uint64_t id;
	uint8_t op;
	uint8_t flags;
	int64_t recorded; /* wall clock, seconds */
	char *src;        /* source folder, server name */
	uint32_t src_validity, src_uid;
	char *dest;                           /* destination folder, server name */
	uint32_t dest_validity, dest_uidnext; /* read before the command */
	char *message_id;
	uint64_t size; /* as the server stores it (RFC822.SIZE) */
	int64_t internaldate;
	char *text;   /* flags (FLAGS, APPEND) or a value (METADATA) */
	char *staged; /* APPEND: the staged file's name in the journal dir */
	char *aux;    /* DELETE: private name; METADATA: entry name */
};

enum journal_kind {
	JOURNAL_REC_ADD = 'A',
	JOURNAL_REC_DONE = 'D',
	JOURNAL_REC_SENT = 'S'
};

#define JOURNAL_REC_OVERHEAD 11u         /* magic, kind, len, crc */
#define JOURNAL_MAX_PAYLOAD (64u * 1024) /* any one record, bounded on read */
/* the ids one SENT record holds (8,190) */
#define JOURNAL_SENT_MAX_IDS ((JOURNAL_MAX_PAYLOAD - 12) / 8)

/* Encodes an ADD record for e into a malloc'd buffer; 0 or -errno. */
int journal_encode_add(const struct journal_entry *e, uint8_t **out, size_t *len);
/* Encodes a DONE record for id into buf (at least JOURNAL_REC_OVERHEAD + 8). */
size_t journal_encode_done(uint64_t id, uint8_t *buf);
/* Encodes a SENT record for the n entries ids into a malloc'd buffer; 0,
 * -E2BIG beyond JOURNAL_SENT_MAX_IDS, or -ENOMEM. */
int journal_encode_sent(const uint64_t *ids, size_t n, uint32_t validity, uint32_t uidnext, uint8_t **out,
			size_t *len);

/* Decodes the payload of an ADD record; -EBADMSG when malformed. */
int journal_decode_add(const uint8_t *p, size_t len, struct journal_entry *e);

/* The payload of a SENT record, read in place: its ids stay in the payload
 * (journal_sent_id), so that loading a big one allocates nothing. */
struct journal_sent_rec {
	uint32_t dest_validity, dest_uidnext;
	size_t n;
	const uint8_t *ids;
};
/* Decodes the payload of a SENT record; -EBADMSG when malformed. */
int journal_decode_sent(const uint8_t *p, size_t len, struct journal_sent_rec *s);
uint64_t journal_sent_id(const struct journal_sent_rec *s, size_t i);

void journal_entry_free(struct journal_entry *e);
/* A deep copy; 0 or -ENOMEM. */
int journal_entry_copy(struct journal_entry *to, const struct journal_entry *from);

/* The result of reading a whole journal file. */
enum journal_scan_end {
	JOURNAL_CLEAN,     /* every byte belongs to a good record */
	JOURNAL_TORN_TAIL, /* a last record cut short by a crash: drop it */
	JOURNAL_DAMAGED,   /* a bad record with good ones after it: distrust */
};

/* Calls fn for each good record in order (kind, payload) until it returns
 * non-zero (which scan returns) or the data ends; *good is the length of the
 * prefix made of good records, *end what follows it. */
typedef int journal_record_fn(enum journal_kind kind, const uint8_t *payload, size_t len, void *ctx);
int journal_scan(const uint8_t *data, size_t len, journal_record_fn *fn, void *ctx, size_t *good,
		 enum journal_scan_end *end);

/* The length of the good record at data, or 0. */
size_t journal_record_len(const uint8_t *data, size_t len);
/* The offset of the first good record in data, or len if none. */
size_t journal_resync(const uint8_t *data, size_t len);

const char *journal_op_name(unsigned op);

#endif

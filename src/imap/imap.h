/* imap.h - IMAP over libetpan, one session at a time: the session itself
 * (imap_session.c), the commands that read (imap_read.c), keep a folder in
 * step (imap_sync.c), change messages, many at once (imap_batch.c), change
 * other things (imap_write.c), METADATA
 * (imap_metadata.c), BODYSTRUCTURE (imap_structure.c), parts the server
 * decodes (imap_binary.c) and searches (imap_search.c); imap_p.h says
 * which file calls which.  Commands return 0 (or what their comment says)
 * or -errno: libetpan's result codes become errno in one place
 * (imap_session.c).  A session is used by one thread at a time (the pool
 * hands it out); nothing here locks. */
#ifndef IMAPFS_IMAP_H
#define IMAPFS_IMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <openssl/ssl.h>

enum imap_security {
	IMAP_SECURITY_TLS,      /* imaps://: TLS from the first byte */
	IMAP_SECURITY_STARTTLS, /* imap://: STARTTLS required */
	IMAP_SECURITY_NONE,     /* imap:// with -o plaintext, named explicitly */
};

/* COMPRESS=DEFLATE (RFC 4978) after login: */
enum imap_compress {
	IMAP_COMPRESS_AUTO, /* when the link is not loopback and its round trip
			     * is long (imap_compress_wanted in imap_p.h) */
	IMAP_COMPRESS_YES,  /* whenever the server offers it */
	IMAP_COMPRESS_NO,
};

/* Everything needed to open a session; owned by main, read-only afterwards. */
struct imap_account {
	const char *host;
	uint16_t port;
	enum imap_security security;
	const char *user;
	const char *password;
	SSL_CTX *tls; /* NULL only with IMAP_SECURITY_NONE */
	int timeout;  /* seconds of inactivity before a wait fails */
	enum imap_compress compress;
};

struct imap_session;

/* What SELECT (or a later NOOP) reported about the selected folder. */
struct imap_folder_state {
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint32_t exists;
	uint64_t highestmodseq; /* CONDSTORE; 0 when the server has none */
};

/* LIST flags we care about. */
enum {
	IMAP_LIST_NOSELECT = 1 << 0,
	IMAP_LIST_NONEXISTENT = 1 << 1,
	IMAP_LIST_HASCHILDREN = 1 << 2,
	IMAP_LIST_TRASH = 1 << 3,
	IMAP_LIST_SENT = 1 << 4,
	IMAP_LIST_DRAFTS = 1 << 5,
	IMAP_LIST_JUNK = 1 << 6,
	IMAP_LIST_ARCHIVE = 1 << 7,
};

/* System flags as a bitmask; keywords travel as strings (flags.h). */
enum {
	IMAP_FLAG_SEEN = 1 << 0,
	IMAP_FLAG_ANSWERED = 1 << 1,
	IMAP_FLAG_FLAGGED = 1 << 2,
	IMAP_FLAG_DELETED = 1 << 3,
	IMAP_FLAG_DRAFT = 1 << 4,
};

/* One message's listing data, valid only during the callback. */
struct imap_meta {
	uint32_t uid;
	uint32_t size;
	int64_t internaldate; /* unix time */
	uint32_t flags;
	const char *headers; /* BODY[HEADER.FIELDS (SUBJECT)], may be NULL */
	size_t headers_len;
	uint32_t origin; /* of a partial BODY[]<origin> */
	bool has_size;   /* the response carried RFC822.SIZE, */
	bool has_date;   /* and INTERNALDATE: not an unsolicited flag update */
};

typedef void imap_list_cb(const char *name, char delim, unsigned flags, void *ctx);
typedef void imap_meta_cb(const struct imap_meta *meta, void *ctx);

/* ---- the session (imap_session.c) ---- */

/* Connects, secures and logs in.  On failure returns -errno and writes a
 * one-line, user-facing reason into err. */
int imap_open(const struct imap_account *acct, struct imap_session **out, char *err, size_t errlen);

/* Ends every network wait of every session at once, and from then on:
 * for a daemon on its way out while something waits on a frozen server. */
void imap_abort_waits(void);

/* Closes the session.  LOGOUT is sent only to a healthy session; a dead one is
 * torn down without a word so the close never blocks on a dead peer. */
void imap_close(struct imap_session *s);

/* True once the connection is known to be unusable (I/O error, BYE, parse
 * error, protocol desync). */
bool imap_dead(const struct imap_session *s);
/* Of a dead session: it died because a wait ran out (the server froze), or
 * on a response libetpan could not parse (the stream is out of sync). */
bool imap_timed_out(const struct imap_session *s);
bool imap_parse_failed(const struct imap_session *s);
/* What one operation may take before the server is deemed broken or
 * hostile: IMAP_OPERATION_BYTES read (plus what imap_allow grants a body
 * transfer) within `seconds` in all -- bounds a trickling server, an endless
 * line, a response that never ends and a literal announcing 4 GB.  Set by the
 * pool before each request and by a watcher before each IDLE. */
#define IMAP_OPERATION_BYTES (64u << 20)
/* The `seconds` of an operation (connecting and logging in included) on an
 * account whose reads each wait `timeout` seconds: four such waits. */
#define IMAP_OPERATION_SECONDS(timeout) (4 * (timeout))
void imap_limit_operation(struct imap_session *s, int seconds);
/* The same limits again from now (a long job done in bounded steps). */
void imap_renew_operation(struct imap_session *s);
/* Grants the current operation `bytes` more to read (and time for them). */
void imap_allow(struct imap_session *s, uint64_t bytes);

/* A small number naming the session in logs and MOUNT/.status. */
unsigned imap_session_id(const struct imap_session *s);

bool imap_has_capability(struct imap_session *s, const char *name);

/* The folder (modified UTF-7 name) currently selected, or NULL. */
const char *imap_selected(const struct imap_session *s);

/* ---- reading (imap_read.c) ---- */

/* LIST "" "*": cb once per folder. */
int imap_list(struct imap_session *s, imap_list_cb *cb, void *ctx);

/* SELECTs mbox unless it already is (or always, with fresh: then EXISTS is
 * exact); state receives UIDVALIDITY, UIDNEXT, EXISTS.  -ENOENT when the
 * server refuses (folder gone). */
int imap_select(struct imap_session *s, const char *mbox, bool fresh, struct imap_folder_state *state);

/* 0 when the selected folder still has UIDVALIDITY expected (selecting it
 * again first if this session's view is older), else -ESTALE. */
int imap_expect_validity(struct imap_session *s, uint32_t expected);

/* FETCH listing data for sequence numbers lo..hi, or for UIDs lo..hi with
 * by_uid (hi 0 means '*').  Streams: cb runs per message, memory stays small. */
int imap_fetch_meta(struct imap_session *s, bool by_uid, uint32_t lo, uint32_t hi, imap_meta_cb *cb,
		    void *ctx);

/* The same for the messages uids (in any order, repeats allowed; a 0 is
 * -EINVAL), in one UID FETCH, consecutive UIDs sent as ranges. */
int imap_fetch_meta_uids(struct imap_session *s, const uint32_t *uids, size_t n, imap_meta_cb *cb, void *ctx);

/* UID and RFC822.SIZE of message number seq alone (to name a message whose
 * full listing data the parser cannot read). */
int imap_fetch_uid_size(struct imap_session *s, uint32_t seq, imap_meta_cb *cb, void *ctx);

/* The first len bytes of each of the messages uids (none 0: see
 * imap_uids_drop_zero), in one UID FETCH; cb gets each message's bytes
 * (valid during the call). */
typedef void imap_part_cb(uint32_t uid, const char *data, size_t len, void *ctx);
int imap_fetch_heads(struct imap_session *s, const uint32_t *uids, size_t n, uint32_t len, imap_part_cb *cb,
		     void *ctx);
/* Drops the zeros from uids[n] in place, the others keeping their order;
 * returns how many are left.  No message has UID 0, and libetpan would send
 * one as '*' (the newest message in the folder).  Pure. */
size_t imap_uids_drop_zero(uint32_t *uids, size_t n);

/* UID SEARCH ALL: every UID of the selected folder, ascending, malloc'd. */
int imap_search_all(struct imap_session *s, uint32_t **uids, size_t *count);

/* UID FETCH uid BODY.PEEK[]<offset.len> into buf (len bytes of room).
 * *got is how many bytes the server had (0 past the end).  -ENOENT when the
 * message no longer exists, -EIO when the server would not deliver it. */
int imap_fetch_body(struct imap_session *s, uint32_t uid, uint32_t offset, uint32_t len, char *buf,
		    size_t *got);
/* Takes the next len bytes of a body as they arrive; false (no room for
 * them) fails the fetch as a server sending too much does, session and all. */
typedef bool imap_chunk_cb(const char *bytes, size_t len, void *ctx);
/* The same, the bytes handed to sink as they stream in instead of kept:
 * a long range costs no buffer of its size.  At most len bytes reach
 * sink (more fails the session); *got is how many did. */
int imap_fetch_body_stream(struct imap_session *s, uint32_t uid, uint32_t offset, uint32_t len,
			   imap_chunk_cb *sink, void *ctx, size_t *got);

/* UID FETCH uid BODY.PEEK[part_id] ("1", "2.1"): the raw part, at most max
 * bytes (more is -EIO), malloc'd.  -EINVAL when part_id is no part number. */
int imap_fetch_part(struct imap_session *s, uint32_t uid, const char *part_id, size_t max, char **data,
		    size_t *len);

/* UID FETCH uid BODY.PEEK[part_id]<offset.len> into buf (len bytes of
 * room), still transfer-encoded; *got as imap_fetch_body's. */
int imap_fetch_part_range(struct imap_session *s, uint32_t uid, const char *part_id, uint32_t offset,
			  uint32_t len, char *buf, size_t *got);

/* ---- keeping a folder in step (imap_sync.c) ---- */

/* UID FETCH 1:top (UID FLAGS) (CHANGEDSINCE modseq [VANISHED]): cb gets
 * the messages whose flags changed since modseq (CONDSTORE).  With QRESYNC
 * also the UIDs up to top expunged since then (*vanished, ascending,
 * malloc'd) and 0; 1 when the server cannot say what vanished. */
int imap_fetch_changes(struct imap_session *s, uint32_t top, uint64_t modseq, imap_meta_cb *cb, void *ctx,
		       uint32_t **vanished, size_t *nvanished);

/* IDLE on the selected folder until the server reports a change, wake_fd
 * (may be -1) becomes readable, or seconds pass; then DONE.  1 when the
 * server reported new, expunged or changed messages, 0 otherwise. */
int imap_idle(struct imap_session *s, int wake_fd, int seconds);

/* ---- changing messages of the selected folder, a UID set at once
 * (imap_batch.c; one message is a set of one) ---- */

struct flag_set;

/* The most UIDs one command here names (consecutive UIDs go as one range,
 * so its line stays short): more is -E2BIG, sending nothing. */
#define IMAP_BATCH_MAX 4096

/* Moves uid from the selected folder to dest: UID MOVE when the server has
 * MOVE, else UID COPY + UID STORE \Deleted + UID EXPUNGE of that UID alone.
 * -EXDEV when neither MOVE nor UIDPLUS is there (a bare EXPUNGE would purge
 * other clients' deleted mail).  *new_uid is 0 when the server did not say. */
int imap_move(struct imap_session *s, uint32_t uid, const char *dest, uint32_t *new_uid);
/* One message of imap_append_many. */
struct imap_append_item {
	const struct flag_set *flags; /* NULL: none */
	int64_t date;                 /* INTERNALDATE; 0: the server's clock */
	const char *data;
	size_t len;
};
/* APPENDs n messages to mbox in one command (MULTIAPPEND, RFC 3502, with
 * LITERAL+: no round trip per message), atomically: all are stored, or
 * none.  uids[i] (the caller's n) is where item i went by the server's
 * APPENDUID, 0 where it said nothing.  -ENOTSUP (nothing sent) when the
 * server lacks MULTIAPPEND or LITERAL+; -EFBIG when an item is over 4 GiB;
 * a refusal as imap_append's. */
int imap_append_many(struct imap_session *s, const char *mbox, const struct imap_append_item *items, size_t n,
		     uint32_t *uids);

/* The same for the messages uids[n] (any order, none 0: -EINVAL), in one
 * command (or UID COPY, UID STORE and UID EXPUNGE of them all).
 * dest_uids[i] (the caller's n) is the UID uids[i] got in dest by the
 * server's COPYUID, 0 where it said nothing.  Without MOVE, a COPY that
 * succeeded and an EXPUNGE that failed leave them in both folders, as with
 * imap_move.  n 0 sends nothing. */
int imap_move_set(struct imap_session *s, const uint32_t *uids, size_t n, const char *dest,
		  uint32_t *dest_uids);

/* UID STORE FLAGS.SILENT (replace), +FLAGS.SILENT (add) or -FLAGS.SILENT
 * (remove).  Adding and removing leave the other flags as they are, also
 * those another client or session sets meanwhile.  -EPERM when the server
 * says the flags cannot be kept. */
enum imap_store_mode {
	IMAP_STORE_SET,
	IMAP_STORE_ADD,
	IMAP_STORE_REMOVE
};
int imap_store_flags(struct imap_session *s, uint32_t uid, const struct flag_set *fs,
		     enum imap_store_mode mode);
/* The same for the messages uids[n] (any order, none 0: -EINVAL) in one
 * UID STORE.  n 0 sends nothing. */
int imap_store_set(struct imap_session *s, const uint32_t *uids, size_t n, const struct flag_set *fs,
		   enum imap_store_mode mode);

/* Deletes one message for good: \Deleted + UID EXPUNGE (UIDPLUS needed,
 * else -EXDEV). */
int imap_delete_message(struct imap_session *s, uint32_t uid);
/* The same for the messages uids[n] (any order, none 0: -EINVAL): UID STORE
 * +FLAGS.SILENT (\Deleted) of them all, then UID EXPUNGE of them all.
 * n 0 sends nothing. */
int imap_expunge_set(struct imap_session *s, const uint32_t *uids, size_t n);

/* The keywords the selected folder's last FLAGS response named (SELECT's, or
 * an untagged one since), system flags left out: into *kw, *n of them,
 * malloc'd, each string too (the caller frees them all, e.g. as a flag_set
 * with flags_free).  A keyword imapfs would not send (flags_parse's rules)
 * is left out.  -EBADF when no folder is selected, -ENODATA when the server
 * sent no FLAGS, -ENOMEM. */
int imap_selected_keywords(struct imap_session *s, char ***kw, size_t *n);

/* ---- changing things (imap_write.c) ---- */

/* What UID FETCH (UID FLAGS RFC822.SIZE INTERNALDATE Message-ID) says. */
struct imap_message_info {
	uint32_t size;
	int64_t internaldate;
	unsigned system_flags; /* IMAP_FLAG_* */
	char **keywords;       /* owned, nkeywords of them */
	size_t nkeywords;
	char *message_id; /* owned, NULL when the header is absent */
};

/* In the selected folder.  -ENOENT when the message is gone. */
int imap_fetch_info(struct imap_session *s, uint32_t uid, struct imap_message_info *info);
void imap_message_info_free(struct imap_message_info *info);

/* The server's APPENDLIMIT=N (RFC 7889) from its capabilities, UINT64_MAX
 * when it announces none. */
uint64_t imap_append_limit(struct imap_session *s);
/* APPENDs data to mbox with flags (may be NULL) and INTERNALDATE (date 0:
 * the server's clock).  -ENOSPC when the server says over quota; -EFBIG,
 * sending nothing, when libetpan could not announce its size (4 GiB). */
int imap_append(struct imap_session *s, const char *mbox, const struct flag_set *fs, int64_t date,
		const char *data, size_t len, uint32_t *new_uid);

/* Folder commands.  A refusal maps to errno by its response code, or its
 * text (imap_refusal_errno in imap_p.h): EEXIST, ENOENT, EACCES, EPERM,
 * ENOSPC, EBUSY, else EIO. */
int imap_create_folder(struct imap_session *s, const char *mbox);
int imap_delete_folder(struct imap_session *s, const char *mbox);
int imap_rename_folder(struct imap_session *s, const char *from, const char *to);
int imap_subscribe(struct imap_session *s, const char *mbox, bool subscribe);
int imap_count_messages(struct imap_session *s, const char *mbox, uint32_t *count);
/* STATUS mbox (MESSAGES UIDNEXT UIDVALIDITY) into out (exists, uidnext,
 * uidvalidity; highestmodseq 0).  Not for the selected folder. */
int imap_folder_status(struct imap_session *s, const char *mbox, struct imap_folder_state *out);

/* The STORAGE quota of mbox's quota root (RFC 2087 GETQUOTAROOT), in KiB:
 * -EOPNOTSUPP without QUOTA, -ENODATA when no root limits storage. */
int imap_storage_quota(struct imap_session *s, const char *mbox, uint64_t *used_kib, uint64_t *limit_kib);

/* Whether PERMANENTFLAGS of the selected folder lets us store this keyword
 * (true when the folder announced none: the server decides on STORE). */
bool imap_keyword_permitted(struct imap_session *s, const char *keyword);

/* ---- METADATA, RFC 5464 (imap_metadata.c) ---- */

/* Registers the response parser with libetpan: once, before any session. */
void imap_metadata_init(void);
/* A server entry (on mailbox ""): -EOPNOTSUPP without METADATA, -ENODATA
 * when it is not set.  *value malloc'd. */
int imap_get_metadata(struct imap_session *s, const char *entry, char **value);
/* Sets (value != NULL) or removes a server entry; value must hold no NUL.
 * -EPERM when the server refuses it (Cyrus allows only entries it defines,
 * unless configured otherwise). */
int imap_set_metadata(struct imap_session *s, const char *entry, const char *value);

/* ---- BODYSTRUCTURE (imap_structure.c) ---- */

struct mime_message;
/* BODYSTRUCTURE plus Content-Class and X-MS-TNEF-Correlator of uid, as a
 * tree with no bodies loaded; free with imap_structure_free. */
int imap_fetch_structure(struct imap_session *s, uint32_t uid, struct mime_message *out);
void imap_structure_free(struct mime_message *m);

/* ---- MIME parts decoded by the server (imap_binary.c; RFC 3516) ---- */

/* Registers the BINARY fetch-data parser with libetpan: once, at startup
 * (next to imap_metadata_init). */
void imap_binary_init(void);
/* Whether the server offers BINARY. */
bool imap_has_binary(struct imap_session *s);
/* UID FETCH uid BINARY.PEEK[section]<offset.len> into buf (len bytes of room);
 * *got is how many bytes the server had (0 past the end).  -ENOENT: the
 * message no longer exists; -EIO: the server refused (a broken encoding);
 * -EINVAL: section is no "1", "2.1", ...; -EOPNOTSUPP: no BINARY.  More
 * bytes than asked, or an origin other than offset, fails the session
 * (like imap_fetch_body does). */
int imap_fetch_binary(struct imap_session *s, uint32_t uid, const char *section, uint32_t offset,
		      uint32_t len, char *buf, size_t *got);

/* ---- searches (imap_search.c) ---- */

/* UID SEARCH [CHARSET UTF-8] query on the selected folder: the matching UIDs,
 * ascending, malloc'd (*uids NULL when none).  query is an RFC 9051 search
 * key list as the user wrote it (`FROM "alice" SINCE 1-Nov-2026`,
 * `OR SUBJECT invoice BODY Rechnung`); non-ASCII bytes (UTF-8) are sent as
 * literals (LITERAL+ `{n+}` when offered), with CHARSET UTF-8.  -EINVAL for a
 * query with CR, LF or NUL, over 1024 bytes, or that the server answers BAD
 * (its message copied into err); -EIO/-ETIMEDOUT/... as other commands.
 * Also -EOPNOTSUPP when the server refuses CHARSET UTF-8 (NO [BADCHARSET])
 * for a query with non-ASCII bytes (an ASCII one is retried without it), and
 * -EBADF, sending nothing, when no folder is selected. */
int imap_search(struct imap_session *s, const char *query, uint32_t **uids, size_t *count, char *err,
		size_t errlen);

#endif

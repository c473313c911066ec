/* imap_p.h - what the files behind imap.h share and nobody else sees.
 *
 * Who owns what.  Calls go down this list, never up, so no two files call
 * each other:
 *
 *   imap_sync.c       CHANGEDSINCE / VANISHED, IDLE    -> read, session, uidset
 *   imap_batch.c      MOVE, STORE, EXPUNGE of UID sets -> write, session,
 *                     (one message: a set of one); the   uidset, flags.c
 *                     selected folder's keywords
 *   imap_write.c      APPEND, folder commands; NO as   -> read, session, trace,
 *                     errno; flag lists                   flags.c
 *   imap_structure.c  BODYSTRUCTURE as a MIME tree     -> read, session
 *   imap_metadata.c   METADATA (RFC 5464)              -> session
 *   imap_binary.c     BINARY (RFC 3516): decoded part  -> read, session
 *                     sizes and bytes
 *   imap_search.c     UID SEARCH with the user's keys  -> session, uidset
 *   imap_read.c       LIST, SELECT, FETCH, SEARCH ALL  -> session, uidset,
 *                                                       stalls
 *   imap_stalls.c     folders the server stopped answering a SELECT for:
 *                     when to ask for them again
 *   imap_session.c    the session: connect, STARTTLS, login, COMPRESS,
 *                     ENABLE, the operation limits, the selected folder's
 *                     state, and libetpan result -> errno
 *                                                      -> trace, tls.c,
 *                                                         compress.c
 *   imap_trace.c      the -d log of what a session sends
 *   imap_uidset.c     UID order, UID-set expansion, UID 0 weeded out, UID
 *                     sets built from lists, COPYUID pairs (pure)
 */
#ifndef IMAPFS_IMAP_P_H
#define IMAPFS_IMAP_P_H

#include "imap.h"
#include <libetpan/libetpan.h>

struct imap_session {
	mailimap *imap;
	char *selected; /* owned; NULL when nothing is selected */
	struct imap_folder_state state;
	bool dead;
	bool timed_out;   /* died because the server stopped answering */
	bool parse_error; /* died on a response libetpan could not parse */
	bool qresync;     /* ENABLE QRESYNC succeeded */
	bool compressed;  /* COMPRESS DEFLATE succeeded: compress.c is below */
	unsigned rtt_us;  /* the shortest CAPABILITY round trip at login */
	int op_seconds;   /* time limit of the current operation */
	unsigned id;
	struct imap_trace *trace; /* owned; with -d only */
};

/* ---- imap_stalls.c ---- */

/* The server stopped answering a SELECT of folder: it rests (5 s, doubled
 * by each stall in a row, up to 60 s). */
void imap_stall_note(const char *folder);

/* Seconds folder still rests; 0: it may be asked for. */
int imap_stall_left(const char *folder);

/* A SELECT of folder succeeded: its next stall rests 5 s again. */
void imap_stall_clear(const char *folder);

/* ---- imap_session.c ---- */

/* Sends "TAG command" and reads the response up to its tagged line, by
 * hand: mailimap_custom_command sends a space before CRLF (Cyrus answers
 * BAD), and STARTTLS must stop reading right there.  Returns a libetpan
 * code (a BYE is MAILIMAP_ERROR_FATAL, a BAD MAILIMAP_ERROR_PROTOCOL);
 * with MAILIMAP_NO_ERROR *cond is MAILIMAP_RESP_COND_STATE_OK or _NO. */
int imap_plain_command(struct imap_session *s, const char *command, int *cond);
/* The end of a command sent by hand: CRLF (unless line_read: the server
 * already answered, its line read), then the response read and parsed.  A
 * libetpan code; with MAILIMAP_NO_ERROR *resp (the caller frees it) ends
 * in a tagged line (a BYE is MAILIMAP_ERROR_FATAL). */
int imap_finish_command(mailimap *imap, bool line_read, struct mailimap_response **resp);

/* Whether a read would return data without waiting for the socket: what
 * libetpan buffered, or what the compression layer has (poll(2) sees
 * neither). */
bool imap_input_buffered(const struct imap_session *s);

/* -o compress=auto's rule: compress unless the server is on this machine's
 * loopback, and then only when the shortest CAPABILITY round trip at login
 * reached IMAP_COMPRESS_RTT_US -- a link that is not a LAN.  The measurements
 * behind it are in README ("Compression on slow links").  Pure. */
#define IMAP_COMPRESS_RTT_US 10000
bool imap_compress_wanted(enum imap_compress mode, bool loopback, unsigned rtt_us);

/* libetpan result -> 0 or -errno; marks the session dead when the
 * connection is unusable and logs once. */
int imap_map_error(struct imap_session *s, int r, const char *what);

/* The server's last tagged response text (bounded use: "%.200s"). */
const char *imap_server_text(const struct imap_session *s);

/* The response code ("ALREADYEXISTS", "TRYCREATE", ...) of the last
 * command's responses, or NULL.  libetpan keeps one: the tagged response's
 * when it has one, else the last untagged response's. */
const char *imap_response_code(const struct imap_session *s);

/* Copies what libetpan learnt of the selected folder into s->state (and
 * *state when not NULL). */
void imap_read_state(struct imap_session *s, struct imap_folder_state *state);

/* Forget the selected folder (about to be selected anew, renamed or
 * deleted). */
void imap_forget_selection(struct imap_session *s);

/* ---- imap_read.c: the parts of a FETCH ---- */

/* BODY.PEEK[HEADER.FIELDS (names...)] for a NULL-terminated list. */
struct mailimap_fetch_att *imap_header_fields_att(const char *const *names);
/* Frees a FETCH's items and message set; either may be NULL. */
void imap_fetch_request_free(struct mailimap_fetch_type *ft, struct mailimap_set *set);
/* Adds att to ft; on failure frees both and returns false. */
bool imap_add_att(struct mailimap_fetch_type *ft, struct mailimap_fetch_att *att);

/* Decodes one FETCH response's items we understand. */
void imap_meta_from_att(const struct mailimap_msg_att *att, struct imap_meta *m);

/* Context of one streaming FETCH: cb per response as it arrives. */
struct meta_fetch {
	imap_meta_cb *cb;
	void *ctx;
};

/* libetpan's handlers for a streaming FETCH: imap_on_meta (ctx: a struct
 * meta_fetch) gets each response as it is parsed.  libetpan calls an att
 * handler only while a progress callback is set: imap_on_progress is that
 * callback, and does nothing. */
void imap_on_meta(struct mailimap_msg_att *att, void *ctx);
void imap_on_progress(size_t current, size_t maximum, void *ctx);

/* FETCH lo:hi (UID FETCH with by_uid, CHANGEDSINCE modseq when nonzero),
 * cb called per response as it streams in.  Takes ft. */
int imap_fetch_streaming(struct imap_session *s, bool by_uid, uint32_t lo, uint32_t hi,
			 struct mailimap_fetch_type *ft, uint64_t changedsince, imap_meta_cb *cb, void *ctx);

/* ---- imap_write.c ---- */

/* A command's libetpan result as 0 or -errno (imap_map_error), a NO turned
 * into the errno a user can act on (imap_refusal_errno below). */
int imap_refusal(struct imap_session *s, int r, const char *what);

/* Whether text holds word, ASCII case ignored. */
bool imap_text_has(const char *text, const char *word);

/* fs as the flag list a command sends (system flags, then keywords; fs NULL:
 * none); NULL when out of memory.  The caller frees it. */
struct mailimap_flag_list *imap_flag_list(const struct flag_set *fs);

/* A refusal (NO) as -errno: from its RFC 5530 response code when it has one
 * imapfs knows (ALREADYEXISTS -EEXIST, NONEXISTENT and TRYCREATE -ENOENT,
 * NOPERM -EACCES, OVERQUOTA and LIMIT -ENOSPC, TOOBIG -EFBIG, CANNOT -EPERM,
 * INUSE -EBUSY, server trouble -EIO), else -- the last resort, for servers
 * without codes -- from English words in text; -EIO when neither says.
 * code and text may be NULL.  Pure. */
int imap_refusal_errno(const char *code, const char *text);

/* ---- imap_metadata.c ---- */

/* value with every line end CRLF (malloc'd; *len without the NUL), as
 * libetpan will send it: it rewrites a bare LF or a bare CR to CRLF while
 * sending, which would make a literal longer than announced.  Pure. */
char *imap_crlf_copy(const char *value, size_t *len);

/* ---- imap_binary.c ---- */

/* The longest section ("2.1.3") sent or accepted. */
#define IMAP_BINARY_SECTION_MAX 64

/* Whether section names a part as RFC 3516 writes it: nonzero 32-bit numbers
 * without leading zeros joined by dots ("1", "2.1"), at most
 * IMAP_BINARY_SECTION_MAX bytes.  Pure. */
bool imap_binary_section_valid(const char *section);

/* ---- imap_search.c ---- */

/* The query limits of imap_search, and the most UIDs an answer may hold. */
#define IMAP_SEARCH_QUERY_MAX 1024
#define IMAP_SEARCH_UIDS_MAX 10000000

/* A UID SEARCH command without its tag: text (NUL-terminated, len bytes)
 * holds a literal for every quoted string or atom of the query with a
 * non-ASCII byte.  Without LITERAL+ each is a synchronizing one, and the
 * sender must wait for the server's "+" at each offset of waits (just past
 * the CRLF of a "{n}"). */
struct imap_search_cmd {
	char *text; /* owned */
	size_t len;
	size_t *waits; /* owned; nwaits of them, ascending */
	size_t nwaits;
	bool ascii; /* the query had no byte over 0x7f */
};

/* "UID SEARCH [CHARSET UTF-8 ]query" as above ({n+} literals with
 * literal_plus).  -EINVAL, with a reason in err, for a query that is empty,
 * over IMAP_SEARCH_QUERY_MAX bytes, holds a CR, LF or other control, an
 * unterminated quoted string, a '{' outside one, or bytes that are not
 * UTF-8; -ENOMEM.  Pure. */
int imap_search_command(const char *query, bool charset, bool literal_plus, struct imap_search_cmd *cmd,
			char *err, size_t errlen);
void imap_search_cmd_free(struct imap_search_cmd *cmd);

/* ---- imap_trace.c ---- */

/* The -d log of what a session sends: command lines, with literals and
 * credentials left out.  imap_trace_logger is libetpan's logger, ctx the
 * trace.  imap_trace_reset: the command ended, even if a literal it
 * announced was never sent (a server refusing an APPEND before its
 * continuation).  free and reset take NULL. */
struct imap_trace;
struct imap_trace *imap_trace_new(unsigned session_id);
void imap_trace_free(struct imap_trace *t);
void imap_trace_reset(struct imap_trace *t);
void imap_trace_logger(mailimap *imap, int type, const char *str, size_t size, void *ctx);

/* ---- imap_uidset.c ---- */

/* qsort comparison of uint32_t UIDs. */
int imap_cmp_uid(const void *a, const void *b);

/* The most UIDs imap_uidset_expand writes out (16 MiB of them). */
#define IMAP_UIDSET_MAX (1u << 22)

/* The UIDs a server's UID set names, up to limit (the highest UID the caller
 * knows; a '*' stands for it): into *uids, ascending, malloc'd (NULL when
 * none), a UID named twice appearing twice.  A range counts in either order
 * ("5:3" is "3:5").  -E2BIG (nothing written) past IMAP_UIDSET_MAX UIDs,
 * -ENOMEM.  Pure. */
int imap_uidset_expand(const struct mailimap_set *set, uint32_t limit, uint32_t **uids, size_t *count);

/* The UID set a command sends for uids[n], in any order, repeats allowed:
 * ascending, each run of consecutive UIDs one range ("3:7,9,12:13"), each
 * UID named once.  *out is the caller's (mailimap_set_free).  -EINVAL for
 * n 0 or a UID 0 (libetpan would send '*', the newest message), -ENOMEM.
 * Pure. */
int imap_uidset_build(const uint32_t *uids, size_t n, struct mailimap_set **out);

/* The pairs of a COPYUID (or APPENDUID) response: the i-th UID src names
 * became the i-th UID dst names.  RFC 4315 section 3: "The source UID set is
 * in the order the message(s) were copied; the destination UID set
 * corresponds to the source UID set and is in the same order" -- the
 * server's order, kept here (no sorting) -- and a range counts upwards
 * whichever way it is written ("12:10" is 10,11,12).  A UID named twice is
 * paired twice.  Into *src_uids and *dst_uids, *n of each, malloc'd (NULL
 * when none; a NULL set names none).  -EPROTO when the sets name different
 * numbers of UIDs or hold a '*'; -E2BIG past IMAP_BATCH_MAX pairs (more than
 * any command sends); -ENOMEM.  Nothing written on failure.  Pure. */
int imap_uidset_pair(const struct mailimap_set *src, const struct mailimap_set *dst, uint32_t **src_uids,
		     uint32_t **dst_uids, size_t *n);

#endif

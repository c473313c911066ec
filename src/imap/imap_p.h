/* imap_p.h - what imap.c and imap_write.c share and nobody else sees. */
#ifndef IMAPFS_IMAP_P_H
#define IMAPFS_IMAP_P_H

#include "imap.h"
#include <libetpan/libetpan.h>

struct imap_session {
	mailimap *imap;
	char *selected;		/* owned; NULL when nothing is selected */
	struct imap_folder_state state;
	bool dead;
	bool timed_out;		/* died because the server stopped answering */
	bool parse_error;	/* died on a response libetpan could not parse */
	bool qresync;		/* ENABLE QRESYNC succeeded */
	int op_seconds;		/* time limit of the current operation */
	unsigned id;
	struct imap_trace *trace;	/* owned; with -d only */
};

/* The -d log of what a session sends (imap_trace.c): command lines, with
 * literals and credentials left out.  imap_trace_logger is libetpan's
 * logger, ctx the trace.  imap_trace_reset: the command ended, even if a
 * literal it announced was never sent (a server refusing an APPEND before
 * its continuation).  free and reset take NULL. */
struct imap_trace;
struct imap_trace *imap_trace_new(unsigned session_id);
void imap_trace_free(struct imap_trace *t);
void imap_trace_reset(struct imap_trace *t);
void imap_trace_logger(mailimap *imap, int type, const char *str, size_t size, void *ctx);

/* libetpan's senders: exported, but in no installed header. */
int mailimap_token_send(mailstream *fd, const char *atom);
int mailimap_crlf_send(mailstream *fd);

/* libetpan result -> 0 or -errno; marks the session dead when the
 * connection is unusable and logs once. */
int imap_map_error(struct imap_session *s, int r, const char *what);

/* The server's last tagged response text (bounded use: "%.200s"). */
const char *imap_server_text(const struct imap_session *s);

/* The response code ("ALREADYEXISTS", "TRYCREATE", ...) of the last
 * command's responses, or NULL.  libetpan keeps one: the tagged response's
 * when it has one, else the last untagged response's. */
const char *imap_response_code(const struct imap_session *s);

/* A refusal (NO) as -errno: from its RFC 5530 response code when it has one
 * imapfs knows (ALREADYEXISTS -EEXIST, NONEXISTENT and TRYCREATE -ENOENT,
 * NOPERM -EACCES, OVERQUOTA and LIMIT -ENOSPC, TOOBIG -EFBIG, CANNOT -EPERM,
 * INUSE -EBUSY, server trouble -EIO), else -- the last resort, for servers
 * without codes -- from English words in text; -EIO when neither says.
 * code and text may be NULL.  Pure. */
int imap_refusal_errno(const char *code, const char *text);

/* BODY.PEEK[HEADER.FIELDS (names...)] for a NULL-terminated list. */
struct mailimap_fetch_att *imap_header_fields_att(const char *const *names);
/* Adds att to ft; on failure frees both and returns false. */
bool imap_add_att(struct mailimap_fetch_type *ft, struct mailimap_fetch_att *att);

/* Context of one streaming FETCH: cb per response as it arrives. */
struct meta_fetch {
	imap_meta_cb *cb;
	void *ctx;
};

/* libetpan's handlers for a streaming FETCH (ctx: a struct meta_fetch). */
void imap_on_meta(struct mailimap_msg_att *att, void *ctx);
void imap_on_progress(size_t current, size_t maximum, void *ctx);

/* FETCH lo:hi (UID FETCH with by_uid, CHANGEDSINCE modseq when nonzero),
 * cb called per response as it streams in.  Takes ft. */
int imap_fetch_streaming(struct imap_session *s, bool by_uid, uint32_t lo, uint32_t hi,
			 struct mailimap_fetch_type *ft, uint64_t changedsince,
			 imap_meta_cb *cb, void *ctx);

/* Copies what libetpan learnt of the selected folder into s->state (and
 * *state when not NULL). */
void imap_read_state(struct imap_session *s, struct imap_folder_state *state);

/* imap_metadata.c: value with every line end CRLF (malloc'd; *len without
 * the NUL), as libetpan will send it: it rewrites a bare LF or a bare CR to
 * CRLF while sending, which would make a literal longer than announced. */
char *imap_crlf_copy(const char *value, size_t *len);

/* ENABLE QRESYNC (imap_sync.c); 0 also when the server refuses it. */
int imap_enable_qresync(struct imap_session *s);

/* Decodes one FETCH response's items we understand. */
void imap_meta_from_att(const struct mailimap_msg_att *att, struct imap_meta *m);

#endif

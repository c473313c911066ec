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
};

/* libetpan result -> 0 or -errno; marks the session dead when the
 * connection is unusable and logs once. */
int imap_map_error(struct imap_session *s, int r, const char *what);

/* The server's last tagged response text (bounded use: "%.200s"). */
const char *imap_server_text(const struct imap_session *s);

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

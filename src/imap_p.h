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

/* Decodes one FETCH response's items we understand. */
void imap_meta_from_att(const struct mailimap_msg_att *att, struct imap_meta *m);

#endif

/* mime_tree.h - the MIME tree of a message, as a plain data type: built
 * from message bytes by mapi/msgclass.c (msgclass_parse) or from IMAP
 * BODYSTRUCTURE by imap/imap_structure.c, read by the message-class rules.
 * Its limits are shared by both builders. */
#ifndef IMAPFS_MIME_TREE_H
#define IMAPFS_MIME_TREE_H

#include <stddef.h>
#include <stdint.h>

#define MIME_MAX_DEPTH 20   /* multiparts nested deeper are not split */
#define MIME_MAX_PARTS 1000 /* parts per message; later ones are dropped */

/*
 * A MIME tree, built either from message bytes (msgclass_parse) or by the
 * caller from IMAP BODYSTRUCTURE (then bodies are not loaded and come
 * through a fetch callback).  Strings are owned by the tree; type, subtype
 * and parameter names are lower-case (msgclass_derive still compares them
 * ignoring ASCII case).
 */
struct mime_param {
	char *name;
	char *value;
};

struct mime_part {
	char *type, *subtype;      /* "multipart", "mixed"; defaults text/plain */
	struct mime_param *params; /* Content-Type parameters, values unquoted;
					 * RFC 2231 name*=, name*0= ... are joined
					 * and percent-decoded (charset dropped) */
	size_t nparams;
	char *disposition_filename; /* Content-Disposition filename=, may be NULL */
	char *encoding;             /* Content-Transfer-Encoding, lower-case, may be NULL */
	char *part_id;              /* IMAP section: "1", "2.1"; a non-multipart
					 * top level is "1", a multipart top level "" */
	const char *body;           /* raw (still transfer-encoded) body when parsed
					 * from bytes; NULL when not loaded */
	size_t body_len;
	struct mime_part *children; /* multipart children; none for message/rfc822 */
	size_t nchildren;
	/* Filled from BODYSTRUCTURE only (NULL, 0 from msgclass_parse): */
	uint64_t octets;            /* body size, still transfer-encoded */
	struct mime_param *dparams; /* Content-Disposition parameters as sent
				      * (names lower-case, RFC 2231 not joined) */
	size_t ndparams;
	struct mime_part *message; /* message/rfc822: the attached message's
				      * body (sections SECTION.1 ...), else NULL */
};

struct mime_message {
	struct mime_part root;
	char *content_class;   /* top-level Content-Class, trimmed, may be NULL */
	char *tnef_correlator; /* top-level X-MS-TNEF-Correlator, trimmed, may be NULL */
};

#endif

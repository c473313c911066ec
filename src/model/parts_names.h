/* parts_names.h - what a `.parts` directory holds: the leaf parts of a
 * message's MIME tree (from BODYSTRUCTURE) under one section, and the name
 * of each one's file, "SECTION NAME".  Pure: no I/O, no locks. */
#ifndef IMAPFS_PARTS_NAMES_H
#define IMAPFS_PARTS_NAMES_H

#include <stdbool.h>
#include <stddef.h>

#include "util/mime_tree.h"
#include "util/names.h"

#define PARTS_SUFFIX ".parts"
#define PARTS_EML ".eml"

struct part_entry {
	const struct mime_part *part; /* in the tree it was made from */
	bool attached;                /* message/rfc822: its raw bytes, and a
				       * `.parts` directory of its own */
	char name[NAMES_MAX + 1];
};

/* Whether p is an attached message (message/rfc822): a file of raw bytes
 * with a `.parts` directory of its own. */
bool parts_is_attached(const struct mime_part *p);

/* The files of the `.parts` directory of section dir ("" the message
 * itself, else an attached message's section): every leaf part under it,
 * multiparts flattened, in section order, attached messages' insides left
 * to their own directories.  *out is malloc'd (NULL when empty).
 * -ENOENT when dir is no attached message of m. */
int parts_entries(const struct mime_message *m, const char *dir, struct part_entry **out, size_t *n);

/* The file name of leaf part p: its section, a space, and its file name
 * (Content-Disposition filename, else Content-Type name; RFC 2231 and
 * RFC 2047 decoded, cleaned as message subjects are) or TYPE.EXT from its
 * media type; an attached message's ends in ".eml" and leaves room for
 * PARTS_SUFFIX.  buf has NAMES_MAX + 1 bytes. */
void parts_entry_name(const struct mime_part *p, char *buf);

/* The value of parameter name (lower-case) among params: plain, RFC 2231
 * extended (name*=charset'lang'%XX) or continued (name*0*=, name*1=...),
 * decoded to UTF-8 (RFC 2047 words in a plain value too).  malloc'd; NULL
 * when absent (or out of memory). */
char *parts_param(const struct mime_param *params, size_t n, const char *name);

/* The decoded size of a base64 body of octets bytes from its first and
 * last bytes (head, tail: up to a few KiB each, as the server has them),
 * when its lines are regular: every line but the last as long as the
 * first, the padding in the last.  0 and *size, or -EINVAL when the layout
 * says nothing certain (then only decoding it all tells). */
int parts_base64_size(const char *head, size_t hlen, const char *tail, size_t tlen, uint64_t octets,
		      uint64_t *size);

#endif

/* mime.h - the MIME parser and transfer decoders behind msgclass_parse.
 * Used by msgclass.c only.  Pure functions, no global state. */
#ifndef IMAPFS_MIME_H
#define IMAPFS_MIME_H

#include <stdbool.h>
#include <stddef.h>

#include "msgclass.h"

/* See msgclass_parse and msgclass_free. */
int mime_parse(const char *data, size_t len, struct mime_message *out);
void mime_free(struct mime_message *m);

/* Decodes len bytes by a Content-Transfer-Encoding: base64 and
 * quoted-printable are decoded (leniently: stray characters are skipped or
 * kept), anything else (NULL, 7bit, 8bit, binary, unknown) is copied.
 * *out is malloc'd with a NUL after the *outlen bytes.  0 or -ENOMEM. */
int mime_decode(const char *encoding, const char *in, size_t len, char **out, size_t *outlen);

/* Whether p is type/subtype, ignoring ASCII case; subtype NULL matches any. */
bool mime_is(const struct mime_part *p, const char *type, const char *subtype);

#endif

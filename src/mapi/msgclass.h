/* msgclass.h - the MAPI message class (PidTagMessageClass) of an Internet
 * message, derived from its MIME structure as in receive-folders.md section
 * 2.  Pure functions, no global state: safe from any thread. */
#ifndef IMAPFS_MSGCLASS_H
#define IMAPFS_MSGCLASS_H

#include "util/mime_tree.h"

#include <stddef.h>

/* Bytes of a buffer that holds any message class with its NUL (a valid
 * class has at most 254 characters; a TNEF one is read up to 255). */
#define MSGCLASS_SIZE 256

/*
 * Parses message bytes (CRLF or LF line ends) into *out.  Body pointers
 * point into data, which must outlive the tree.  Malformed input still gives
 * a tree (at worst one text/plain part): a missing or unparsable
 * Content-Type is text/plain, a multipart without a boundary has no
 * children, multiparts nested deeper than 20 levels are not split, and
 * parts after the 1000th are dropped.  Returns 0, or -ENOMEM (then *out is
 * empty and needs no msgclass_free).  data may be NULL when len is 0.
 */
int msgclass_parse(const char *data, size_t len, struct mime_message *out);

/* Frees what msgclass_parse made and zeroes *m.  Callers who build trees
 * themselves free their own. */
void msgclass_free(struct mime_message *m);

/* The value of Content-Type parameter name (ASCII case-insensitive), or
 * NULL if absent. */
const char *mime_param(const struct mime_part *p, const char *name);

/*
 * Loads the raw (transfer-encoded) body of section part_id, for parts whose
 * body is NULL.  *data is NULL on entry.  On success returns 0 with *data
 * malloc'd (msgclass_derive frees it; NULL means empty) and *len set.  On
 * failure returns -errno, leaving *data NULL or malloc'd (it is freed), and
 * the rule that needed the body is skipped.  Called from the thread that
 * called msgclass_derive, only for the parts a rule needs, at most once
 * per part.
 */
typedef int msgclass_fetch_fn(const char *part_id, char **data, size_t *len, void *ctx);

/*
 * Writes the class of receive-folders.md section 2 into out (outlen >= MSGCLASS_SIZE;
 * a shorter buffer gets a truncated copy).  Never fails: the result is
 * always a valid class (ASCII 0x20-0x7E, 1..254 characters, no leading,
 * trailing or doubled '.'), "IPM.Note" when unsure.  fetch may be NULL;
 * then only loaded bodies are read.
 *
 * Rules, the first that gives a class wins (Content-Class only when the
 * class is still IPM.Note):
 *  1. TNEF: a top-level application/ms-tnef, or a top-level multipart/mixed
 *     whose direct children include text/plain and application/ms-tnef.
 *     Used only when X-MS-TNEF-Correlator is present and equals the
 *     stream's PidTagTnefCorrelationKey (one trailing NUL of the key
 *     ignored, bytes compared exactly).  The class is attMsgProps
 *     PidTagMessageClass, else attMessageClass, with legacy Microsoft Mail
 *     names mapped.  An invalid class ignores the TNEF.
 *  2. A top-level multipart/report; report-type=delivery-status: the most
 *     severe Action of its message/delivery-status part.
 *  3. report-type=disposition-notification, or a top-level
 *     message/disposition-notification: the Disposition field's type.
 *  4. A top-level multipart/signed (any protocol) or
 *     application/(x-)pkcs7-mime or application/octet-stream named *.p7m.
 *  5. The first text/calendar part, depth-first, that is the top level or
 *     sits in multipart/mixed, alternative or related containers at most
 *     three levels below it; a calendar part with a filename (an attached
 *     .ics) counts only if its Content-Type has method=.  The method
 *     parameter decides without reading the body, except REPLY (the
 *     ATTENDEE's PARTSTAT is needed); without the parameter the body's
 *     METHOD and first component (VTODO, VJOURNAL) decide.
 *  6. Content-Class: fax, fax-ca (need text/html and image/tiff parts),
 *     missedcall, voice-uc, voice-ca, voice (the last three need a part of
 *     type audio), urn:content-class:custom.X, InfoPathForm.X.
 * Bodies are read (loaded or fetched) only for the TNEF part (and only when
 * the correlator header is present), the delivery-status and
 * disposition-notification parts, and a text/calendar part as above.
 */
void msgclass_derive(const struct mime_message *m, msgclass_fetch_fn *fetch, void *ctx, char *out,
		     size_t outlen);

/* Convenience: msgclass_parse + msgclass_derive (IPM.Note on ENOMEM). */
void msgclass_of_message(const char *data, size_t len, char *out, size_t outlen);

#endif

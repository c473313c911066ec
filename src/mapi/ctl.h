/* ctl.h - the control file MOUNT/.receive-folders (spec receive-folders.md
 * section 4): its text form, the parser for what is written to it, and a
 * writer that applies complete lines as write(2) calls bring them.  Pure
 * functions apart from the writer's own buffer; errors are negative errno. */
#ifndef IMAPFS_CTL_H
#define IMAPFS_CTL_H

#include <stddef.h>

#include "rfolders.h"

#define CTL_HEADER "# class\tfolder\tmodified-UTC\tflags\n"
#define CTL_LINE_MAX 65536 /* longest line the writer takes, without '\n' */

/* The whole file as cat shows it: CTL_HEADER, then per row in table order
 * class TAB folder TAB YYYY-MM-DDTHH:MM:SSZ [TAB flags] '\n'.  A field that
 * is empty, starts with '#' or contains whitespace, '"', '\\' or a control
 * byte (< 0x20, 0x7f) is written quoted with C escapes (\" \\ \t \n \r, \xHH
 * for other control bytes); "" is the empty class.  Bytes >= 0x80 are copied
 * as they are.  Returns a malloc'd NUL-terminated string and sets *len to its
 * length; NULL on ENOMEM. */
char *ctl_format(const struct rfolders *t, size_t *len);

enum ctl_op {
	CTL_NOTHING,
	CTL_SET,
	CTL_DELETE
};

struct ctl_command {
	enum ctl_op op;
	char *cls;    /* owned; NULL for CTL_NOTHING */
	char *folder; /* owned; NULL unless CTL_SET */
};

/* Parses one line of len bytes, without its '\n'; one trailing '\r' is
 * dropped.
 *  - blank lines and lines whose first non-blank byte is '#': CTL_NOTHING;
 *  - a line with a TAB is split on TABs: class, folder, anything further
 *    ignored (so cat's output can be written back); spaces around a field
 *    are trimmed;
 *  - otherwise the first space-separated token is the class and the rest of
 *    the line, trimmed of spaces, is the folder ("IPM.Note.X My Samples");
 *  - a field starting with '"' is quoted with the escapes ctl_format writes
 *    (\xHH takes exactly two hex digits) and must end at its closing quote;
 *    other fields are taken literally;
 *  - a class and nothing else: CTL_DELETE; else CTL_SET (the folder may be
 *    "" when written quoted: rfolders_set refuses it).
 * -EINVAL: bad quoting or escape, a NUL byte (also \x00), a byte >= 0x80 in
 * the class, invalid UTF-8 in the folder, an empty unquoted field in a TAB
 * line (write "" for the default class).  The class is not validated
 * further (rfolders_set does that).  -ENOMEM.  On success *out owns its
 * strings (ctl_command_free); on failure it holds none. */
int ctl_parse_line(const char *line, size_t len, struct ctl_command *out);
void ctl_command_free(struct ctl_command *c);

/* Applies one parsed command; returns 0 or a negative errno. */
typedef int ctl_apply_fn(const struct ctl_command *c, void *ctx);

/* Turns the byte stream of write(2) calls into lines.  Not thread-safe: one
 * writer per open file, used under the caller's lock. */
struct ctl_writer;
struct ctl_writer *ctl_writer_new(void);    /* NULL on ENOMEM */
void ctl_writer_free(struct ctl_writer *w); /* drops a partial line; NULL is fine */

/* Parses and applies every complete line of data in order (CTL_NOTHING
 * lines are not passed to apply) and keeps a trailing partial line for the
 * next call.  On the first error (parse, apply, or a line longer than
 * CTL_LINE_MAX: -EINVAL) it returns that error: earlier lines stay applied,
 * the rest of data and the kept partial line are dropped, and if the dropped
 * data ended inside a line, the continuation of that line in the next feed
 * is dropped too (up to its '\n'), so no fragment is ever applied as a
 * command.  Returns 0 when every line applied. */
int ctl_writer_feed(struct ctl_writer *w, const char *data, size_t len, ctl_apply_fn *apply, void *ctx);

/* At flush/close: applies the kept partial line, if any, as a complete line,
 * and empties the buffer.  Returns 0 or its error.  Calling it again is a
 * no-op returning 0; the writer can go on being fed afterwards. */
int ctl_writer_finish(struct ctl_writer *w, ctl_apply_fn *apply, void *ctx);

#endif

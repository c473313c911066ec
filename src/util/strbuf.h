/* strbuf.h - a growable byte string whose appends cannot fail one by one:
 * the first failed allocation is remembered and reported once, when the
 * text is taken, which keeps the code that builds text linear. */
#ifndef IMAPFS_STRBUF_H
#define IMAPFS_STRBUF_H

#include <stdbool.h>
#include <stddef.h>

/* Start with (struct strbuf){0}.  data is not NUL-terminated before
 * strbuf_take; len may be reset to 0 to reuse the allocation. */
struct strbuf {
	char *data; /* owned */
	size_t len, cap;
	bool failed; /* an allocation failed: every later append is dropped */
};

/* Room for extra more bytes; false (and failed set) when there is none. */
bool strbuf_reserve(struct strbuf *b, size_t extra);
void strbuf_add(struct strbuf *b, const void *p, size_t n);
void strbuf_addc(struct strbuf *b, char c);
void strbuf_adds(struct strbuf *b, const char *s);
void strbuf_free(struct strbuf *b);

/* Hands over the NUL-terminated contents (malloc'd) and empties b; NULL
 * when any append failed. */
char *strbuf_take(struct strbuf *b);

/* The common tail of functions returning 0 or -errno and a string in *out:
 * rc != 0 frees b and returns rc; else *out = strbuf_take(b), and -ENOMEM
 * when that fails. */
int strbuf_finish(struct strbuf *b, int rc, char **out);

/* Converts inlen bytes of in (read only: iconv merely wants a char *) from
 * charset `from` to charset `to` with iconv and appends the result.  0, -EINVAL when the input ends inside a
 * character (more input might complete it), -EILSEQ for any other invalid
 * input, -ENOTSUP when iconv knows no such conversion, -ENOMEM.  What was
 * converted before an error stays appended. */
int strbuf_add_converted(struct strbuf *b, const char *to, const char *from, char *in, size_t inlen);

#endif

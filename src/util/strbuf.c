/* strbuf.c - owns the growable string of strbuf.h: growth, the deferred
 * failure, and appending text converted by iconv. */
#include "strbuf.h"

#include <errno.h>
#include <iconv.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The first allocation; it doubles from there. */
#define STRBUF_FIRST_CAP 64

bool strbuf_reserve(struct strbuf *b, size_t extra)
{
	size_t cap = b->cap ? b->cap : STRBUF_FIRST_CAP;
	char *p;

	if (b->failed)
		return false;
	if (extra <= b->cap - b->len)
		return true;
	while (cap - b->len < extra) {
		if (cap > SIZE_MAX / 2) {
			b->failed = true;
			return false;
		}
		cap *= 2;
	}
	p = realloc(b->data, cap);
	if (!p) {
		b->failed = true;
		return false;
	}
	b->data = p;
	b->cap = cap;
	return true;
}

void strbuf_add(struct strbuf *b, const void *p, size_t n)
{
	if (n > 0 && strbuf_reserve(b, n)) {
		memcpy(b->data + b->len, p, n);
		b->len += n;
	}
}

void strbuf_addc(struct strbuf *b, char c)
{
	strbuf_add(b, &c, 1);
}

void strbuf_adds(struct strbuf *b, const char *s)
{
	strbuf_add(b, s, strlen(s));
}

void strbuf_free(struct strbuf *b)
{
	free(b->data);
	*b = (struct strbuf){ 0 };
}

char *strbuf_take(struct strbuf *b)
{
	char *s;

	strbuf_addc(b, '\0');
	if (b->failed) {
		strbuf_free(b);
		return NULL;
	}
	s = b->data;
	*b = (struct strbuf){ 0 };
	return s;
}

int strbuf_finish(struct strbuf *b, int rc, char **out)
{
	if (rc != 0) {
		strbuf_free(b);
		return rc;
	}
	*out = strbuf_take(b);
	return *out ? 0 : -ENOMEM;
}

/* One iconv() call repeated until it stops asking for room; src NULL is
 * the final flush. */
static int iconv_step(iconv_t cd, char **src, size_t *left, struct strbuf *out)
{
	/* most text at most doubles in bytes from one charset to another */
	size_t want = STRBUF_FIRST_CAP + (left ? *left * 2 : 0);

	for (;;) {
		char *dst;
		size_t room, r;

		if (!strbuf_reserve(out, want))
			return -ENOMEM;
		dst = out->data + out->len;
		room = out->cap - out->len;
		r = iconv(cd, src, left, &dst, &room);
		out->len = (size_t)(dst - out->data);
		if (r != (size_t)-1)
			return 0;
		if (errno != E2BIG)
			return errno == EINVAL ? -EINVAL : -EILSEQ;
		want = (out->cap - out->len) * 2 + STRBUF_FIRST_CAP;
	}
}

/* The final flush is what makes stateful converters (UTF-7, ISO-2022-JP)
 * emit their last bytes. */
int strbuf_add_converted(struct strbuf *b, const char *to, const char *from, char *in, size_t inlen)
{
	iconv_t cd = iconv_open(to, from);
	char *src = in;
	size_t left = inlen;
	int rc;

	if (cd == (iconv_t)-1)
		return errno == ENOMEM ? -ENOMEM : -ENOTSUP;
	rc = inlen > 0 ? iconv_step(cd, &src, &left, b) : 0;
	if (rc == 0)
		rc = iconv_step(cd, NULL, NULL, b);
	iconv_close(cd);
	return rc;
}

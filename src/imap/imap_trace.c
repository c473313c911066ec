/* imap_trace.c - owns the -d log of what a session sends.  libetpan hands
 * its logger the bytes as they are written, in chunks of any size: a command
 * line, a literal (a message being APPENDed, a METADATA value, a string
 * libetpan chose to send as one), or pieces of either.  This follows the
 * IMAP syntax across chunks so that only command lines are logged, with the
 * size of each literal ("{N}", "{N+}") but never its bytes; what libetpan
 * marks private (LOGIN, AUTHENTICATE) not at all. */
#include "imap_p.h"
#include "util/log.h"

#include <stdlib.h>
#include <string.h>

#define TRACE_LINE 200      /* bytes of a command line shown */
#define TRACE_MAX_DIGITS 12 /* a literal announcing more is no literal */

enum brace {
	BRACE_NONE,   /* not inside "{N}" or "{N+}" */
	BRACE_DIGITS, /* after "{" and maybe digits */
	BRACE_PLUS,   /* after "{N+" */
	BRACE_CLOSED, /* after "{N}" or "{N+}" (and maybe CR) */
};

struct imap_trace {
	unsigned id;      /* the session's, for the log */
	uint64_t skip;    /* bytes of a literal still to come: not shown */
	enum brace brace; /* where the line's end stands in "{N}" */
	uint64_t number;  /* N so far */
	unsigned digits;
	bool continued; /* the line goes on after a literal */
	bool cut;       /* the line is longer than shown */
	size_t len;
	char line[TRACE_LINE + 1];
};

struct imap_trace *imap_trace_new(unsigned id)
{
	struct imap_trace *t = calloc(1, sizeof(*t));

	if (t)
		t->id = id;
	return t;
}

void imap_trace_free(struct imap_trace *t)
{
	free(t);
}

void imap_trace_reset(struct imap_trace *t)
{
	unsigned id;

	if (!t)
		return;
	id = t->id;
	memset(t, 0, sizeof(*t));
	t->id = id;
}

/* Follows "{" 1*DIGIT ["+"] "}" at the end of the line, one byte at a time. */
static void follow_brace(struct imap_trace *t, char c)
{
	if (c == '{') {
		t->brace = BRACE_DIGITS;
		t->number = 0;
		t->digits = 0;
	} else if (t->brace == BRACE_DIGITS && c >= '0' && c <= '9' && t->digits < TRACE_MAX_DIGITS) {
		t->number = t->number * 10 + (uint64_t)(c - '0');
		t->digits++;
	} else if (t->brace == BRACE_DIGITS && c == '+' && t->digits) {
		t->brace = BRACE_PLUS;
	} else if ((t->brace == BRACE_DIGITS || t->brace == BRACE_PLUS) && c == '}' && t->digits) {
		t->brace = BRACE_CLOSED;
	} else if (!(t->brace == BRACE_CLOSED && c == '\r')) {
		t->brace = BRACE_NONE;
	}
}

/* A line ended: shows it, and starts hiding the literal it announces. */
static void end_line(struct imap_trace *t)
{
	t->line[t->len] = '\0';
	if (t->len) /* (what ends a command after its literal may be nothing) */
		log_debug("session %u >> %s%s%s", t->id, t->continued ? "... " : "", t->line,
			  t->cut ? " ..." : "");
	t->continued = false;
	if (t->brace == BRACE_CLOSED) {
		/* whether the literal follows at once ({N+}, or libetpan not
		 * waiting) or after the server's "+": these are its bytes */
		t->skip = t->number;
		t->continued = true;
	}
	t->brace = BRACE_NONE;
	t->len = 0;
	t->cut = false;
}

static void trace_sent(struct imap_trace *t, const char *data, size_t size)
{
	while (size > 0) {
		if (t->skip) {
			size_t n = t->skip < size ? (size_t)t->skip : size;

			t->skip -= n;
			data += n;
			size -= n;
			continue;
		}
		if (*data == '\n') {
			end_line(t);
		} else {
			follow_brace(t, *data);
			if (*data != '\r' && t->len < TRACE_LINE)
				t->line[t->len++] = *data;
			else if (*data != '\r')
				t->cut = true;
		}
		data++;
		size--;
	}
}

void imap_trace_logger(mailimap *imap, int type, const char *str, size_t size, void *ctx)
{
	struct imap_trace *t = ctx;

	(void)imap;
	if (type == MAILSTREAM_LOG_TYPE_DATA_SENT_PRIVATE) {
		/* a whole command (LOGIN) or a SASL line, flushed on its own */
		log_debug("session %u >> (credentials hidden)", t->id);
		imap_trace_reset(t);
	} else if (type == MAILSTREAM_LOG_TYPE_DATA_SENT) {
		trace_sent(t, str, size);
	}
}

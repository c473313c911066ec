/* log.c - formats and routes diagnostics (stderr or syslog), with whatever
 * could steer a terminal or forge a line (from server data) replaced.
 * Locks: none of its own.  Each message is one fprintf or syslog call,
 * which locks inside the C library: "log" is a leaf in src/README's
 * "Locks", callable with any lock held. */
#include "log.h"
#include "utf8.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>

/* A longer message is cut: it can only be quoting too much server text. */
#define LOG_LINE_MAX 1024

static bool debug_enabled; /* both set by log_init, before any thread */
static bool use_syslog;

void log_init(bool debug, bool to_syslog)
{
	debug_enabled = debug;
	use_syslog = to_syslog;
	if (to_syslog)
		openlog("imapfs", LOG_PID, LOG_DAEMON);
}

bool log_debug_enabled(void)
{
	return debug_enabled;
}

/* C1 controls (a terminal may take U+009B for CSI) and the characters that
 * reorder or split what a terminal or log viewer shows. */
static bool unsafe_char(uint32_t c)
{
	return (c >= 0x80 && c <= 0x9f) || c == 0x61c || c == 0x200e || c == 0x200f ||
	       (c >= 0x2028 && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069);
}

size_t log_sanitize(char *text)
{
	unsigned char *in = (unsigned char *)text, *out = in;
	size_t left = strlen(text);

	while (left > 0) {
		uint32_t c = 0;
		size_t n = utf8_decode(in, left, &c);
		size_t step = n ? n : 1;

		if (n == 1) {
			*out++ = *in < 0x20 || *in == 0x7f ? '?' : *in;
		} else if (n == 0 || unsafe_char(c)) {
			/* a byte of no character (raw 0x80-0x9f are C1 to an
			 * 8-bit terminal), or a character a terminal obeys */
			*out++ = '?';
		} else {
			memmove(out, in, n);
			out += n;
		}
		in += step;
		left -= step;
	}
	*out = '\0';
	return (size_t)(out - (unsigned char *)text);
}

void log_msg(enum log_level level, const char *func, const char *fmt, ...)
{
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	static const char *const tag[] = { "error", "warning", "info", "debug" };
	char text[LOG_LINE_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	/* messages quote what servers send */
	log_sanitize(text);
	if (use_syslog) {
		syslog(prio[level], "%s: %s", func, text);
		return;
	}
	if (level == LOG_LEVEL_DEBUG)
		fprintf(stderr, "imapfs: %s: %s: %s\n", tag[level], func, text);
	else
		fprintf(stderr, "imapfs: %s: %s\n", tag[level], text);
}

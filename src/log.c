/* log.c - formats and routes diagnostics (stderr or syslog), with control
 * characters (from server data) replaced. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <syslog.h>

static bool debug_enabled;
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

void log_msg(enum log_level level, const char *func, const char *fmt, ...)
{
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	static const char *const tag[] = { "error", "warning", "info", "debug" };
	char text[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	/* messages quote what servers send: no control character may reach a
	 * terminal or forge a log line */
	for (char *p = text; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	if (use_syslog) {
		syslog(prio[level], "%s: %s", func, text);
		return;
	}
	if (level == LOG_LEVEL_DEBUG)
		fprintf(stderr, "imapfs: %s: %s: %s\n", tag[level], func, text);
	else
		fprintf(stderr, "imapfs: %s: %s\n", tag[level], text);
}

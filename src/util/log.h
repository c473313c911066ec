/* log.h - one place for diagnostics: stderr in the foreground, syslog when
 * daemonised.  Never pass a password or message content to these. */
#ifndef IMAPFS_LOG_H
#define IMAPFS_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum log_level {
	LOG_LEVEL_ERR,
	LOG_LEVEL_WARN,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG
};

/* Called once before threads start; to_syslog after daemonising. */
void log_init(bool debug, bool to_syslog);
bool log_debug_enabled(void);

/* Makes text (NUL-terminated, changed in place) safe to show on a terminal
 * or in a log: ASCII controls, C1 controls (raw bytes 0x80-0x9f and U+0080 to
 * U+009F), bytes that are not well-formed UTF-8, and the characters that
 * reorder or break lines (bidi overrides, embeddings, isolates and marks,
 * U+2028, U+2029) each become one '?'.  Returns the new length.  log_msg
 * does this to every message; anything else printing server text must too. */
size_t log_sanitize(char *text);

void log_msg(enum log_level level, const char *func, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_err(...) log_msg(LOG_LEVEL_ERR, __func__, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARN, __func__, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __func__, __VA_ARGS__)
#define log_debug(...)                                                   \
	do {                                                             \
		if (log_debug_enabled())                                 \
			log_msg(LOG_LEVEL_DEBUG, __func__, __VA_ARGS__); \
	} while (0)

#endif

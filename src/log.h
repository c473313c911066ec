/* log.h - one place for diagnostics: stderr in the foreground, syslog when
 * daemonised.  Never pass a password or message content to these. */
#ifndef IMAPFS_LOG_H
#define IMAPFS_LOG_H

#include <stdbool.h>

enum log_level { LOG_LEVEL_ERR, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

/* Called once before threads start; to_syslog after daemonising. */
void log_init(bool debug, bool to_syslog);
bool log_debug_enabled(void);

void log_msg(enum log_level level, const char *func, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_err(...)   log_msg(LOG_LEVEL_ERR, __func__, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LEVEL_WARN, __func__, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LEVEL_INFO, __func__, __VA_ARGS__)
#define log_debug(...) \
	do { if (log_debug_enabled()) log_msg(LOG_LEVEL_DEBUG, __func__, __VA_ARGS__); } while (0)

#endif

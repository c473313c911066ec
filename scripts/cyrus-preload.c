/* cyrus-preload.so: an LD_PRELOAD shim for the private Cyrus of the tests.
 *
 * 1. syslog(3) goes to a file.  Cyrus IMAP logs only through syslog, and a
 *    test machine (or container) often has no /dev/log.  scripts/cyrus-env
 *    starts the Cyrus master with LD_PRELOAD=cyrus-preload.so and
 *    SYSLOG_TO_FILE=DIR/cyrus.log: every process of that instance appends
 *    its lines to the file (O_APPEND, one write(2) per line) instead.
 * 2. With CYRUS_NO_FSYNC=1, fsync and fdatasync return at once, as Dovecot's
 *    `mail_fsync = never` in scripts/dovecot-env: a throw-away test server
 *    need not survive a power cut, and Cyrus syncs every APPEND (~50 ms).
 *    A crash of the process (SIGKILL) loses nothing either way: the data
 *    is in the page cache.
 *
 *   cc -shared -fPIC -O2 -o cyrus-preload.so scripts/cyrus-preload.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/syscall.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static char ident_buf[64] = "";
static int mask = 0xff;

static void emit(int pri, const char *fmt, va_list ap)
{
	if (!(LOG_MASK(LOG_PRI(pri)) & mask))
		return;
	const char *path = getenv("SYSLOG_TO_FILE");
	if (!path || !*path)
		return;
	int saved = errno;
	char line[8192];
	time_t now = time(NULL);
	struct tm tm;
	localtime_r(&now, &tm);
	size_t n = strftime(line, sizeof line, "%Y-%m-%d %H:%M:%S ", &tm);
	n += (size_t)snprintf(line + n, sizeof line - n, "%s[%d]: ",
			      ident_buf[0] ? ident_buf : "?", (int)getpid());
	if (n < sizeof line) {
		errno = saved;  /* for %m */
		int k = vsnprintf(line + n, sizeof line - n, fmt, ap);
		if (k > 0)
			n += (size_t)k;
	}
	if (n > sizeof line - 2)
		n = sizeof line - 2;
	while (n > 0 && line[n - 1] == '\n')
		n--;
	line[n++] = '\n';
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd >= 0) {
		ssize_t w = write(fd, line, n);
		(void)w;
		close(fd);
	}
	errno = saved;
}

void openlog(const char *ident, int option, int facility)
{
	(void)option;
	(void)facility;
	if (ident)
		snprintf(ident_buf, sizeof ident_buf, "%s", ident);
}

void closelog(void)
{
}

int setlogmask(int m)
{
	int old = mask;
	if (m)
		mask = m;
	return old;
}

void vsyslog(int pri, const char *fmt, va_list ap)
{
	emit(pri, fmt, ap);
}

void syslog(int pri, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	emit(pri, fmt, ap);
	va_end(ap);
}

void __syslog_chk(int pri, int flag, const char *fmt, ...)
{
	(void)flag;
	va_list ap;
	va_start(ap, fmt);
	emit(pri, fmt, ap);
	va_end(ap);
}

void __vsyslog_chk(int pri, int flag, const char *fmt, va_list ap)
{
	(void)flag;
	emit(pri, fmt, ap);
}

static int no_fsync(void)
{
	const char *v = getenv("CYRUS_NO_FSYNC");
	return v && v[0] == '1';
}

int fsync(int fd)
{
	if (no_fsync())
		return 0;
	return (int)syscall(SYS_fsync, fd);
}

int fdatasync(int fd)
{
	if (no_fsync())
		return 0;
	return (int)syscall(SYS_fdatasync, fd);
}

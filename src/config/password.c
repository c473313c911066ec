/* password.c - owns the password: where it comes from (a file, a command,
 * $IMAPFS_PASSWORD, ~/.netrc, a prompt with echo off), the environment
 * scrubbed of it, and secrets zeroed when freed. */
#include "config.h"
#include "config_p.h"
#include "netrc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <pthread.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

/* The longest password read from a file, a command or the terminal. */
#define PASSWORD_MAX 4096
/* Permission bits for group and others: a secret's file has none of them. */
#define GROUP_OTHER_BITS 077

/* /proc/self/stat: room for its one line, and the field (proc(5)
 * numbering) holding env_start, which env_end follows. */
#define PROC_STAT_MAX 4096
#define PROC_STAT_ENV_START 50

extern char **environ;

bool config_credential_ok(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] == '\r' || s[i] == '\n' || s[i] == '\0')
			return false;
	return true;
}

void config_free_secret(char *secret)
{
	if (!secret)
		return;
	explicit_bzero(secret, strlen(secret));
	free(secret);
}

/* Reads the first line of f (without its line end) into a fresh buffer. */
static int first_line(FILE *f, char **out, size_t *len)
{
	char *buf = calloc(1, PASSWORD_MAX + 1);
	size_t n = 0;
	int c;

	if (!buf)
		return -ENOMEM;
	/* byte by byte: stdio's line buffers would keep copies of the secret */
	while ((c = getc(f)) != EOF && c != '\n') {
		if (n == PASSWORD_MAX) {
			config_free_secret(buf);
			return -E2BIG;
		}
		buf[n++] = (char)c;
	}
	if (n && buf[n - 1] == '\r')
		buf[--n] = '\0';
	*out = buf;
	*len = n;
	return 0;
}

static int from_file(const char *path, char **pw, size_t *len, char *err, size_t errlen)
{
	struct stat st;
	FILE *f;
	int fd, r;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "cannot open password file %s: %s", path, strerror(errno));
		return -errno;
	}
	if (fstat(fd, &st) == 0 && (st.st_mode & GROUP_OTHER_BITS)) {
		snprintf(err, errlen, "password file %s is readable by others; run chmod 600 %s", path, path);
		close(fd);
		return -EPERM;
	}
	f = fdopen(fd, "r");
	if (!f) {
		close(fd);
		return -ENOMEM;
	}
	setvbuf(f, NULL, _IONBF, 0);
	r = first_line(f, pw, len);
	fclose(f);
	if (r < 0)
		snprintf(err, errlen, "cannot read password file %s", path);
	return r;
}

/* ~/.netrc, like curl and fetchmail: -ENOENT when it has no entry for us. */
static int from_netrc(const struct config *cfg, char **pw, size_t *len, char *err, size_t errlen)
{
	const char *home = getenv("HOME");
	char path[PATH_MAX], *text;
	struct stat st;
	size_t n;
	int fd, r;

	if (!home || !*home || snprintf(path, sizeof(path), "%s/.netrc", home) >= (int)sizeof(path))
		return -ENOENT;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -ENOENT;
	r = config_read_fd(fd, CONFIG_SMALL_FILE_MAX, &st, &text, &n);
	close(fd);
	if (r < 0)
		return -ENOENT;
	r = netrc_password(text, n, cfg->url.host, cfg->url.user, pw);
	explicit_bzero(text, n); /* other hosts' passwords too */
	free(text);
	if (r == 0 && (st.st_mode & GROUP_OTHER_BITS)) {
		snprintf(err, errlen,
			 "%s holds the password but is readable by others; "
			 "run chmod 600 %s",
			 path, path);
		config_free_secret(*pw);
		*pw = NULL;
		return -EPERM;
	}
	if (r == 0)
		*len = strlen(*pw);
	return r;
}

static int from_command(const char *cmd, char **pw, size_t *len, char *err, size_t errlen)
{
	FILE *f = popen(cmd, "r");
	int r, status;

	if (!f) {
		snprintf(err, errlen, "cannot run password_command: %s", strerror(errno));
		return -errno;
	}
	setvbuf(f, NULL, _IONBF, 0);
	r = first_line(f, pw, len);
	while (r == 0 && getc(f) != EOF)
		; /* let the command finish writing */
	status = pclose(f);
	if (r == 0 && status != 0) {
		snprintf(err, errlen, "password_command failed (exit status %d)", status);
		config_free_secret(*pw);
		*pw = NULL;
		return -EIO;
	}
	if (r < 0)
		snprintf(err, errlen, "cannot read the output of password_command");
	return r;
}

/* The signals that end imapfs at the prompt (Ctrl-C, a closed terminal):
 * while echo is off they are blocked and read from a signalfd beside the
 * terminal, so the terminal gets its echo back before imapfs ends by the
 * signal -- no handler, so no race with a sanitizer's late delivery. */
static const int prompt_signals[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };
#define PROMPT_SIGNALS (sizeof(prompt_signals) / sizeof(prompt_signals[0]))

/* Reads one line from the terminal fd (echo off) into a new buffer; or
 * *sig is the signal that came first. */
static int read_secret_line(int fd, int sigfd, char **out, size_t *len, int *sig)
{
	char *buf = calloc(1, PASSWORD_MAX + 1);
	size_t n = 0;
	char c = 0;

	if (!buf)
		return -ENOMEM;
	while (c != '\n') {
		struct pollfd pf[2] = { { fd, POLLIN, 0 }, { sigfd, POLLIN, 0 } };
		struct signalfd_siginfo si;
		ssize_t got;

		if (poll(pf, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pf[1].revents & POLLIN) {
			if (read(sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
				*sig = (int)si.ssi_signo;
				break;
			}
			continue;
		}
		got = read(fd, &c, 1); /* a byte at a time: no copies of the secret */
		if (got <= 0 || c == '\n')
			break;
		if (n == PASSWORD_MAX) {
			config_free_secret(buf);
			return -E2BIG;
		}
		buf[n++] = c;
	}
	if (n && buf[n - 1] == '\r')
		buf[--n] = '\0';
	*out = buf;
	*len = n;
	return 0;
}

static int from_terminal(const char *user, const char *host, char **pw, size_t *len, char *err, size_t errlen)
{
	struct termios old, quiet;
	sigset_t block, before;
	FILE *tty = fopen("/dev/tty", "r+");
	int sig = 0, sigfd, r;

	if (!tty) {
		snprintf(err, errlen,
			 "no password: use -o password_file=PATH, -o password_command=CMD "
			 "or IMAPFS_PASSWORD");
		return -ENOENT;
	}
	sigemptyset(&block);
	for (size_t i = 0; i < PROMPT_SIGNALS; i++)
		sigaddset(&block, prompt_signals[i]);
	pthread_sigmask(SIG_BLOCK, &block, &before);
	sigfd = signalfd(-1, &block, SFD_CLOEXEC);
	setvbuf(tty, NULL, _IONBF, 0);
	fprintf(tty, "Password for %s@%s: ", user, host);
	tcgetattr(fileno(tty), &old);
	quiet = old;
	quiet.c_lflag &= ~(tcflag_t)ECHO;
	tcsetattr(fileno(tty), TCSAFLUSH, &quiet);
	r = sigfd < 0 ? -errno : read_secret_line(fileno(tty), sigfd, pw, len, &sig);
	tcsetattr(fileno(tty), TCSAFLUSH, &old);
	fputc('\n', tty);
	fclose(tty);
	if (sigfd >= 0)
		close(sigfd);
	if (sig) {
		/* echo is back: now end as the signal would have */
		if (r == 0)
			config_free_secret(*pw);
		signal(sig, SIG_DFL);
		pthread_sigmask(SIG_SETMASK, &before, NULL);
		raise(sig);
		r = -EINTR;
	}
	pthread_sigmask(SIG_SETMASK, &before, NULL);
	if (r < 0)
		snprintf(err, errlen, "cannot read the password");
	return r;
}

/* Where the kernel put the environment at exec (/proc/self/stat fields
 * env_start and env_end): /proc/PID/environ shows those bytes whatever
 * setenv and unsetenv did since. */
static bool env_block(uintptr_t *start, uintptr_t *end)
{
	unsigned long long s, e;
	char buf[PROC_STAT_MAX], *p;
	ssize_t n;
	int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	p = strrchr(buf, ')'); /* the command name before it may hold anything */
	/* from the end of field 2 to the space before env_start */
	for (int field = 3; p && field <= PROC_STAT_ENV_START; field++)
		p = strchr(p + 1, ' ');
	if (!p || sscanf(p, " %llu %llu", &s, &e) != 2)
		return false;
	*start = (uintptr_t)s;
	*end = (uintptr_t)e;
	return true;
}

/* Takes name out of the environment, and overwrites its value where
 * /proc/PID/environ would still show it (a copy setenv made is not shown
 * there, and belongs to the C library). */
static void scrub_env(const char *name)
{
	size_t n = strlen(name);
	uintptr_t start = 0, end = 0;

	if (env_block(&start, &end)) {
		for (char **e = environ; *e; e++) {
			uintptr_t at = (uintptr_t)*e;

			if (at >= start && at < end && strncmp(*e, name, n) == 0 && (*e)[n] == '=')
				explicit_bzero(*e + n + 1, strlen(*e + n + 1));
		}
	}
	unsetenv(name);
}

int config_read_password(const struct config *cfg, char **password, char *err, size_t errlen)
{
	const char *value = getenv("IMAPFS_PASSWORD");
	char *env = value ? strdup(value) : NULL;
	size_t len = 0;
	int r;

	*password = NULL;
	/* gone before anything else runs (password_command) or forks */
	scrub_env("IMAPFS_PASSWORD");
	if (value && !env) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if (cfg->password_file)
		r = from_file(cfg->password_file, password, &len, err, errlen);
	else if (cfg->password_command)
		r = from_command(cfg->password_command, password, &len, err, errlen);
	else if (env) {
		len = strlen(env);
		*password = env;
		env = NULL;
		r = 0;
	} else if ((r = from_netrc(cfg, password, &len, err, errlen)) == -ENOENT)
		r = from_terminal(cfg->url.user, cfg->url.host, password, &len, err, errlen);
	config_free_secret(env); /* set, but another source came first */
	if (r < 0)
		return r;
	if (!config_credential_ok(*password, len) || strchr(*password, '\r') || strchr(*password, '\n')) {
		snprintf(err, errlen, "the password contains a line break or NUL byte; refusing to send it");
		config_free_secret(*password);
		*password = NULL;
		return -EINVAL;
	}
	if (len == 0) {
		snprintf(err, errlen, "the password is empty");
		config_free_secret(*password);
		*password = NULL;
		return -EINVAL;
	}
	return 0;
}

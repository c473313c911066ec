/* config.c - owns the command line and the credentials: URL parsing, the
 * -o option table, and reading the password from a file, a command, the
 * environment or the terminal. */
#include "config.h"
#include "util/files.h"
#include "util/chars.h"
#include "netrc.h"
#include "config_file.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#define PASSWORD_MAX 4096

extern char **environ;

enum { KEY_HELP, KEY_VERSION, KEY_FOREGROUND, KEY_DEBUG, KEY_WATCH };

#define OPT(t, f) { t, offsetof(struct config, f), 1 }
static const struct fuse_opt option_table[] = {
	OPT("password_file=%s", password_file),
	OPT("password_command=%s", password_command),
	OPT("ca_file=%s", ca_file),
	OPT("tls_verify=%s", tls_verify),
	OPT("plaintext", plaintext),
	OPT("route_incoming", route_incoming),
	OPT("memory_cache=%s", memory_cache),
	OPT("cache_size=%s", cache_size),
	OPT("prefetch=%u", prefetch),
	OPT("cache_dir=%s", cache_dir),
	OPT("connections=%u", connections),
	OPT("timeout=%u", timeout),
	OPT("dir_cache=%u", dir_cache),
	OPT("names=%s", names),
	OPT("trash=%s", trash),
	OPT("rm=%s", rm),
	FUSE_OPT_KEY("watch=", KEY_WATCH),
	OPT("offline=%s", offline),
	FUSE_OPT_KEY("-h", KEY_HELP),
	FUSE_OPT_KEY("--help", KEY_HELP),
	FUSE_OPT_KEY("-V", KEY_VERSION),
	FUSE_OPT_KEY("--version", KEY_VERSION),
	FUSE_OPT_KEY("-f", KEY_FOREGROUND),
	FUSE_OPT_KEY("-d", KEY_DEBUG),
	FUSE_OPT_KEY("debug", KEY_DEBUG),
	/* fstab and mount(8) noise */
	FUSE_OPT_KEY("_netdev", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("auto", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("noauto", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("user", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("users", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("nofail", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_END
};

int config_parse_size(const char *text, size_t *bytes)
{
	unsigned long long v = 0, mult = 1;
	const char *p = text;

	if (!isdigit((unsigned char)*p))
		return -EINVAL;
	for (; isdigit((unsigned char)*p); p++) {
		v = v * 10 + (unsigned long long)(*p - '0');
		if (v > (1ull << 50))
			return -EINVAL;
	}
	switch (*p) {
	case '\0': break;
	case 'k': case 'K': mult = 1ull << 10; p++; break;
	case 'm': case 'M': mult = 1ull << 20; p++; break;
	case 'g': case 'G': mult = 1ull << 30; p++; break;
	case 't': case 'T': mult = 1ull << 40; p++; break;
	default: return -EINVAL;
	}
	if (*p == 'B' || *p == 'b')
		p++;
	if (*p)
		return -EINVAL;
	*bytes = (size_t)(v * mult);
	return 0;
}

static char *percent_decode(const char *s, size_t len)
{
	char *out = malloc(len + 1);
	size_t o = 0;

	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		int hi, lo;

		if (s[i] != '%') {
			out[o++] = s[i];
			continue;
		}
		hi = i + 2 < len ? chars_hex_value(s[i + 1]) : -1;
		lo = i + 2 < len ? chars_hex_value(s[i + 2]) : -1;
		if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
			free(out);
			return NULL;
		}
		out[o++] = (char)(hi * 16 + lo);
		i += 2;
	}
	out[o] = '\0';
	return out;
}

bool config_credential_ok(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] == '\r' || s[i] == '\n' || s[i] == '\0')
			return false;
	return true;
}

static int parse_port(const char *s, uint16_t *port)
{
	unsigned long v = 0;

	if (!*s)
		return -EINVAL;
	for (; *s; s++) {
		if (!isdigit((unsigned char)*s))
			return -EINVAL;
		v = v * 10 + (unsigned long)(*s - '0');
		if (v > 65535)
			return -EINVAL;
	}
	if (v == 0)
		return -EINVAL;
	*port = (uint16_t)v;
	return 0;
}

static int parse_hostport(const char *s, struct imap_url *url, char *err, size_t errlen)
{
	const char *port = NULL, *end;
	size_t hostlen;

	if (*s == '[') {
		end = strchr(s, ']');
		if (!end || (end[1] && end[1] != ':')) {
			snprintf(err, errlen, "bad IPv6 address in URL");
			return -EINVAL;
		}
		hostlen = (size_t)(end - s - 1);
		s++;
		port = end[1] == ':' ? end + 2 : NULL;
	} else {
		end = strchr(s, ':');
		hostlen = end ? (size_t)(end - s) : strlen(s);
		port = end ? end + 1 : NULL;
	}
	if (hostlen == 0) {
		snprintf(err, errlen, "no host in URL");
		return -EINVAL;
	}
	for (size_t i = 0; i < hostlen; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!isalnum(c) && c != '.' && c != '-' && c != ':' && c != '_') {
			snprintf(err, errlen, "bad character in host name");
			return -EINVAL;
		}
	}
	url->host = strndup(s, hostlen);
	if (!url->host)
		return -ENOMEM;
	if (port && parse_port(port, &url->port) < 0) {
		snprintf(err, errlen, "bad port in URL");
		return -EINVAL;
	}
	return 0;
}

int config_parse_url(const char *text, struct imap_url *url, char *err, size_t errlen)
{
	const char *rest, *at;
	char *hostport;
	size_t len;
	int r;

	memset(url, 0, sizeof(*url));
	if (strncmp(text, "imaps://", 8) == 0) {
		url->tls = true;
		url->port = 993;
		rest = text + 8;
	} else if (strncmp(text, "imap://", 7) == 0) {
		url->port = 143;
		rest = text + 7;
	} else {
		snprintf(err, errlen, "the URL must start with imaps:// or imap://");
		return -EINVAL;
	}
	at = strrchr(rest, '@');
	if (!at || at == rest) {
		snprintf(err, errlen, "the URL needs a user name: imaps://USER@HOST");
		return -EINVAL;
	}
	url->user = percent_decode(rest, (size_t)(at - rest));
	if (!url->user || memchr(rest, '@', (size_t)(at - rest)) || memchr(rest, '/', (size_t)(at - rest)) ||
	    !config_credential_ok(url->user, strlen(url->user))) {
		snprintf(err, errlen, "bad user name in URL (write @ as %%40)");
		r = -EINVAL;
		goto fail;
	}
	len = strlen(at + 1);
	if (len && at[len] == '/')	/* one trailing slash is harmless */
		len--;
	hostport = strndup(at + 1, len);
	if (!hostport) {
		r = -ENOMEM;
		goto fail;
	}
	r = strchr(hostport, '/') ? -EINVAL : parse_hostport(hostport, url, err, errlen);
	if (r == -EINVAL && strchr(hostport, '/'))
		snprintf(err, errlen, "the URL must not name a folder");
	free(hostport);
	if (r == 0)
		return 0;
fail:
	free(url->user);
	free(url->host);
	memset(url, 0, sizeof(*url));
	return r;
}

static int process_arg(void *data, const char *arg, int key, struct fuse_args *out)
{
	struct config *cfg = data;
	bool continues_watch = cfg->watch_open && key == FUSE_OPT_KEY_OPT && !strchr(arg, '=');

	(void)out;
	cfg->watch_open = key == KEY_WATCH || continues_watch;
	if (key == KEY_WATCH || continues_watch) {
		/* libfuse splits -o at commas: watch=A,B arrives as "watch=A", "B" */
		const char *folder = key == KEY_WATCH ? arg + strlen("watch=") : arg;
		size_t len = (cfg->watch ? strlen(cfg->watch) + 1 : 0) + strlen(folder) + 1;
		char *list = malloc(len);

		if (!list)
			return -1;
		snprintf(list, len, "%s%s%s", cfg->watch ? cfg->watch : "", cfg->watch ? "," : "",
			 folder);
		free(cfg->watch);
		cfg->watch = list;
		return 0;
	}
	switch (key) {
	case KEY_HELP:
		cfg->show_help = 1;
		return 0;
	case KEY_VERSION:
		cfg->show_version = 1;
		return 0;
	case KEY_FOREGROUND:
		cfg->foreground = 1;
		return 0;
	case KEY_DEBUG:
		cfg->debug = 1;
		cfg->foreground = 1;
		return 0;
	case FUSE_OPT_KEY_NONOPT:
		if (cfg->args_seen == 0)
			cfg->url_text = strdup(arg);
		else if (cfg->args_seen == 1)
			cfg->mountpoint = strdup(arg);
		cfg->args_seen++;
		return 0;
	default:
		return 1;	/* a FUSE option: libfuse decides */
	}
}

#define CONFIG_FILE_MAX (1 << 20)

/* ssh's rule for a file that can run commands or turn checks off (the
 * accounts file, a CA file): it belongs to the user (or to root, when
 * root_ok) and nobody else can write to it. */
static int check_trusted(const struct stat *st, const char *what, const char *path, bool root_ok,
			 char *err, size_t errlen)
{
	if (st->st_uid != geteuid() && !(root_ok && st->st_uid == 0)) {
		snprintf(err, errlen, "bad owner or permissions on %s %s: it belongs to uid %lu, "
			 "not to you%s", what, path, (unsigned long)st->st_uid, root_ok ? " or root" : "");
		return -EPERM;
	}
	if (st->st_mode & (S_IWGRP | S_IWOTH)) {
		snprintf(err, errlen, "bad owner or permissions on %s %s: others can write to it; "
			 "run chmod go-w %s", what, path, path);
		return -EPERM;
	}
	return 0;
}

/* The accounts file: $XDG_CONFIG_HOME/imapfs/config, else ~/.config/...;
 * malloc'd text, or NULL with err set. */
static char *read_config_file(size_t *len, char *err, size_t errlen)
{
	const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
	char path[4096];
	struct stat st;
	char *text;
	ssize_t n;
	int fd;

	if (xdg && *xdg)
		snprintf(path, sizeof(path), "%s/imapfs/config", xdg);
	else if (home && *home)
		snprintf(path, sizeof(path), "%s/.config/imapfs/config", home);
	else {
		snprintf(err, errlen, "no config file (neither XDG_CONFIG_HOME nor HOME is set)");
		return NULL;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "cannot read %s: %s (an argument without :// names an "
			 "account there)", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > CONFIG_FILE_MAX ||
	    !(text = malloc((size_t)st.st_size + 1))) {
		snprintf(err, errlen, "cannot read %s", path);
		close(fd);
		return NULL;
	}
	/* it can set password_command and tls_verify=no */
	if (check_trusted(&st, "the config file", path, false, err, errlen) < 0) {
		free(text);
		close(fd);
		return NULL;
	}
	n = read(fd, text, (size_t)st.st_size);
	close(fd);
	if (n < 0) {
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
		free(text);
		return NULL;
	}
	text[n] = '\0';
	*len = (size_t)n;
	return text;
}

/* A CA file decides whom imapfs trusts with the password: the user's or
 * root's, and no one else may write to it.  One that cannot be opened is
 * left to tls.c, which says so. */
static int check_ca_file(const char *path, char *err, size_t errlen)
{
	struct stat st;
	int fd, r;

	if (!path)
		return 0;
	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return 0;
	if (fstat(fd, &st) < 0) {
		snprintf(err, errlen, "cannot examine the CA file %s: %s", path, strerror(errno));
		r = -errno;
	} else {
		r = check_trusted(&st, "the CA file", path, true, err, errlen);
	}
	close(fd);
	return r;
}

/* A relative path would resolve against / once the daemon has forked (and
 * changed to /): joined to the working directory now. */
static int make_absolute(char **path, char *err, size_t errlen)
{
	char cwd[PATH_MAX], *abs;

	if (!*path || **path == '/')
		return 0;
	if (!getcwd(cwd, sizeof(cwd))) {
		snprintf(err, errlen, "cannot resolve the relative path %s: %s", *path, strerror(errno));
		return -EINVAL;
	}
	abs = malloc(strlen(cwd) + strlen(*path) + 2);
	if (!abs) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	sprintf(abs, "%s/%s", strcmp(cwd, "/") != 0 ? cwd : "", *path);
	free(*path);
	*path = abs;
	return 0;
}

/* `imapfs work ~/Mail`: an account name where the URL goes becomes the
 * account's URL, its options go in front of the command line's (which win),
 * and its mountpoint is used when none is given.  0 with *out_argv NULL when
 * there is nothing to do. */
static int expand_account(int argc, char **argv, int *out_argc, char ***out_argv,
			  char *err, size_t errlen)
{
	struct config_account acct;
	int first = -1, second = -1, n = 0, r;
	char *text, **v, errbuf[256];
	size_t len = 0;

	*out_argv = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-o") == 0) {
			i++;
			continue;
		}
		if (argv[i][0] == '-')
			continue;
		if (first < 0)
			first = i;
		else if (second < 0)
			second = i;
	}
	if (first < 0 || strstr(argv[first], "://"))
		return 0;
	if (!(text = read_config_file(&len, err, errlen)))
		return -EINVAL;
	r = config_file_account(text, len, argv[first], getenv("HOME"), &acct, errbuf, sizeof(errbuf));
	free(text);
	if (r < 0) {
		snprintf(err, errlen, "config file: %s", r == -ENOMEM ? "out of memory" : errbuf);
		return r;
	}
	if (!acct.url) {
		snprintf(err, errlen, "config file: account [%s] has no url", argv[first]);
		config_account_free(&acct);
		return -EINVAL;
	}
	v = calloc((size_t)argc + 4, sizeof(*v));
	if (!v) {
		config_account_free(&acct);
		return -ENOMEM;
	}
	v[n++] = strdup(argv[0]);
	if (*acct.options) {
		v[n++] = strdup("-o");
		v[n++] = strdup(acct.options);
	}
	for (int i = 1; i < argc; i++)
		v[n++] = strdup(i == first ? acct.url : argv[i]);
	if (second < 0 && acct.mountpoint)
		v[n++] = strdup(acct.mountpoint);
	config_account_free(&acct);
	for (int i = 0; i < n; i++) {
		if (!v[i]) {
			for (int j = 0; j < n; j++)
				free(v[j]);
			free(v);
			return -ENOMEM;
		}
	}
	*out_argc = n;
	*out_argv = v;
	return 0;
}

int config_parse_args(int argc, char **argv, struct config *cfg, struct fuse_args *fuse_args,
		      char *err, size_t errlen)
{
	char **expanded = NULL;
	int r;

	memset(cfg, 0, sizeof(*cfg));
	*fuse_args = (struct fuse_args)FUSE_ARGS_INIT(0, NULL);
	r = expand_account(argc, argv, &argc, &expanded, err, errlen);
	if (r < 0)
		return r;
	if (expanded) {
		argv = expanded;
		cfg->argv_owned = expanded;
		cfg->argc_owned = argc;
	}
	cfg->connections = 4;
	cfg->timeout = 30;
	cfg->dir_cache = 10;
	cfg->prefetch = 64;
	cfg->memory_cache_bytes = 64u << 20;
	cfg->cache_size_bytes = 1u << 30;
	*fuse_args = (struct fuse_args)FUSE_ARGS_INIT(argc, argv);
	if (fuse_opt_parse(fuse_args, cfg, option_table, process_arg) < 0) {
		snprintf(err, errlen, "cannot parse the options");
		return -EINVAL;
	}
	if (cfg->show_help || cfg->show_version)
		return 0;
	if (cfg->args_seen > 2) {
		snprintf(err, errlen, "too many arguments (usage: imapfs [options] URL MOUNTPOINT)");
		return -EINVAL;
	}
	if (!cfg->url_text || !cfg->mountpoint) {
		snprintf(err, errlen, "usage: imapfs [options] URL MOUNTPOINT (see imapfs --help)");
		return -EINVAL;
	}
	if (cfg->names && strcmp(cfg->names, "readable") != 0 && strcmp(cfg->names, "uid") != 0) {
		snprintf(err, errlen, "-o names= takes readable or uid");
		return -EINVAL;
	}
	if (cfg->memory_cache && config_parse_size(cfg->memory_cache, &cfg->memory_cache_bytes) < 0) {
		snprintf(err, errlen, "-o memory_cache= takes a size such as 64M");
		return -EINVAL;
	}
	if (cfg->cache_size && config_parse_size(cfg->cache_size, &cfg->cache_size_bytes) < 0) {
		snprintf(err, errlen, "-o cache_size= takes a size such as 1G (0: no disk cache)");
		return -EINVAL;
	}
	if (cfg->rm && strcmp(cfg->rm, "trash") != 0 && strcmp(cfg->rm, "expunge") != 0) {
		snprintf(err, errlen, "-o rm= takes trash or expunge");
		return -EINVAL;
	}
	if (cfg->offline && strcmp(cfg->offline, "cached") != 0 && strcmp(cfg->offline, "fail") != 0) {
		snprintf(err, errlen, "-o offline= takes cached or fail");
		return -EINVAL;
	}
	if (cfg->tls_verify && strcmp(cfg->tls_verify, "yes") != 0 && strcmp(cfg->tls_verify, "no") != 0) {
		snprintf(err, errlen, "-o tls_verify= takes yes or no");
		return -EINVAL;
	}
	if (cfg->connections < 1 || cfg->connections > 64) {
		snprintf(err, errlen, "-o connections= takes 1 to 64");
		return -EINVAL;
	}
	if (cfg->timeout < 1 || cfg->timeout > 3600) {
		snprintf(err, errlen, "-o timeout= takes 1 to 3600 seconds");
		return -EINVAL;
	}
	if (cfg->plaintext && strncmp(cfg->url_text, "imaps://", 8) == 0) {
		snprintf(err, errlen, "-o plaintext makes no sense with imaps://");
		return -EINVAL;
	}
	if (make_absolute(&cfg->cache_dir, err, errlen) < 0 ||
	    make_absolute(&cfg->password_file, err, errlen) < 0 ||
	    make_absolute(&cfg->ca_file, err, errlen) < 0 ||
	    check_ca_file(cfg->ca_file, err, errlen) < 0)
		return -EINVAL;
	return config_parse_url(cfg->url_text, &cfg->url, err, errlen);
}

void config_free(struct config *cfg)
{
	free(cfg->url.user);
	free(cfg->url.host);
	free(cfg->url_text);
	free(cfg->mountpoint);
	for (int i = 0; i < cfg->argc_owned; i++)
		free(cfg->argv_owned[i]);
	free(cfg->argv_owned);
	free(cfg->watch);
	free(cfg->offline);
	free(cfg->password_file);
	free(cfg->password_command);
	free(cfg->ca_file);
	free(cfg->cache_dir);
	free(cfg->names);
	free(cfg->tls_verify);
	free(cfg->trash);
	free(cfg->memory_cache);
	free(cfg->cache_size);
	free(cfg->rm);
	memset(cfg, 0, sizeof(*cfg));
}

struct files_dir *config_cache_dir(const struct config *cfg, char *err, size_t errlen)
{
	const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
	struct files_dir *dir = NULL;
	char *path, why[512];

	if (cfg->cache_dir) {
		path = strdup(cfg->cache_dir);
	} else if ((xdg && *xdg == '/') || (home && *home == '/')) {
		const char *base = xdg && *xdg == '/' ? xdg : home;
		const char *tail = base == xdg ? "/imapfs" : "/.cache/imapfs";

		path = malloc(strlen(base) + strlen(tail) + 1);
		if (path)
			sprintf(path, "%s%s", base, tail);
	} else {
		snprintf(err, errlen, "no HOME to keep a cache in: use -o cache_dir=PATH");
		return NULL;
	}
	if (!path) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (files_dir_open(path, &dir, why, sizeof(why)) < 0)
		snprintf(err, errlen, "cache directory refused: %s (or use -o cache_dir=PATH)", why);
	free(path);
	return dir;
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
	if (fstat(fd, &st) == 0 && (st.st_mode & 077)) {
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

#define NETRC_MAX (1 << 20)

/* ~/.netrc, like curl and fetchmail: -ENOENT when it has no entry for us. */
static int from_netrc(const struct config *cfg, char **pw, size_t *len, char *err, size_t errlen)
{
	const char *home = getenv("HOME");
	char path[4096], *text;
	struct stat st;
	ssize_t n;
	int fd, r;

	if (!home || !*home || snprintf(path, sizeof(path), "%s/.netrc", home) >= (int)sizeof(path))
		return -ENOENT;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -ENOENT;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > NETRC_MAX ||
	    !(text = malloc((size_t)st.st_size + 1))) {
		close(fd);
		return -ENOENT;
	}
	n = read(fd, text, (size_t)st.st_size);
	close(fd);
	r = n < 0 ? -ENOENT : netrc_password(text, (size_t)n, cfg->url.host, cfg->url.user, pw);
	explicit_bzero(text, (size_t)st.st_size);	/* other hosts' passwords too */
	free(text);
	if (r == 0 && (st.st_mode & 077)) {
		snprintf(err, errlen, "%s holds the password but is readable by others; "
			 "run chmod 600 %s", path, path);
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
		;	/* let the command finish writing */
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

/* While the prompt has echo off, a signal that ends imapfs (Ctrl-C, a
 * closed terminal) gives the terminal its echo back first. */
static int prompt_fd = -1;
static struct termios prompt_saved;
static const int prompt_signals[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };
#define PROMPT_SIGNALS (sizeof(prompt_signals) / sizeof(prompt_signals[0]))

static void prompt_interrupted(int sig)
{
	tcsetattr(prompt_fd, TCSAFLUSH, &prompt_saved);
	raise(sig);	/* SA_RESETHAND, SA_NODEFER: the default action, now */
}

static void prompt_catch(struct sigaction old[PROMPT_SIGNALS])
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = prompt_interrupted;
	sa.sa_flags = SA_RESETHAND | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < PROMPT_SIGNALS; i++)
		sigaction(prompt_signals[i], &sa, &old[i]);
}

static void prompt_release(const struct sigaction old[PROMPT_SIGNALS])
{
	for (size_t i = 0; i < PROMPT_SIGNALS; i++)
		sigaction(prompt_signals[i], &old[i], NULL);
}

static int from_terminal(const char *user, const char *host, char **pw, size_t *len,
			 char *err, size_t errlen)
{
	struct sigaction old_actions[PROMPT_SIGNALS];
	struct termios old, quiet;
	FILE *tty = fopen("/dev/tty", "r+");
	int r;

	if (!tty) {
		snprintf(err, errlen, "no password: use -o password_file=PATH, -o password_command=CMD "
			 "or IMAPFS_PASSWORD");
		return -ENOENT;
	}
	setvbuf(tty, NULL, _IONBF, 0);
	fprintf(tty, "Password for %s@%s: ", user, host);
	tcgetattr(fileno(tty), &old);
	quiet = old;
	quiet.c_lflag &= ~(tcflag_t)ECHO;
	prompt_saved = old;
	prompt_fd = fileno(tty);
	prompt_catch(old_actions);
	tcsetattr(fileno(tty), TCSAFLUSH, &quiet);
	r = first_line(tty, pw, len);
	tcsetattr(fileno(tty), TCSAFLUSH, &old);
	prompt_release(old_actions);
	prompt_fd = -1;
	fputc('\n', tty);
	fclose(tty);
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
	char buf[4096], *p;
	ssize_t n;
	int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	p = strrchr(buf, ')');	/* the command name before it may hold anything */
	for (int field = 3; p && field <= 50; field++)
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
	config_free_secret(env);	/* set, but another source came first */
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

void config_usage(const char *progname)
{
	printf("usage: %s [options] URL MOUNTPOINT\n"
	       "\n"
	       "URL:  imaps://USER@HOST[:PORT]   TLS (port 993)\n"
	       "      imap://USER@HOST[:PORT]    STARTTLS required (port 143)\n"
	       "      (write @ in a user name as %%40)\n"
	       "\n"
	       "general options:\n"
	       "    -h   --help            print this help\n"
	       "    -V   --version         print the version\n"
	       "    -f                     stay in the foreground\n"
	       "    -d   -o debug          log IMAP commands (never passwords); implies -f\n"
	       "\n"
	       "imapfs options (-o opt[=val],...):\n"
	       "    -o password_file=PATH  read the password from PATH (first line, mode 0600)\n"
	       "    -o password_command=CMD  run CMD, use its first output line\n"
	       "                           (else $IMAPFS_PASSWORD, else ~/.netrc, else a prompt)\n"
	       "    -o ca_file=PATH        trust the CA certificates in PATH (default: system store)\n"
	       "    -o tls_verify=no       accept any certificate (testing only!)\n"
	       "    -o plaintext           allow imap:// without TLS (trusted networks only)\n"
	       "    -o connections=N       IMAP connections (default 4)\n"
	       "    -o timeout=SECONDS     network timeout (default 30)\n"
	       "    -o dir_cache=SECONDS   refresh listings older than this (default 10)\n"
	       "    -o names=readable|uid  file names (default readable)\n"
	       "    -o cache_dir=PATH      cache directory (default $XDG_CACHE_HOME/imapfs)\n"
	       "    -o trash=NAME          folder rm moves to (default: \\Trash, else Trash)\n"
	       "    -o rm=trash|expunge    rm moves to the trash (default) or deletes for good\n"
	       "    -o route_incoming      move new INBOX mail to the receive folder of its class\n"
	       "    -o memory_cache=SIZE   message blocks kept in memory (default 64M)\n"
	       "    -o cache_size=SIZE     message blocks kept on disk (default 1G; 0: none)\n"
	       "    -o prefetch=N          messages/blocks fetched ahead of a reader (default 64; 0: off)\n"
	       "    -o watch=F1,F2         folders kept live with IDLE besides INBOX\n"
	       "    -o offline=cached|fail while the server is unreachable: serve what is cached\n"
	       "                           (default) or fail everything with EIO\n"
	       "\n"
	       "FUSE options such as -o allow_other are passed to libfuse.\n"
	       "Unmount with: fusermount3 -u MOUNTPOINT\n", progname);
}

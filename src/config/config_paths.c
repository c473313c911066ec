/* config_paths.c - owns the local files and directories the options name:
 * reading the accounts file, the rule for files trusted to run commands or
 * to decide trust (ssh's), relative paths, and the cache directory. */
#include "config.h"
#include "config_p.h"
#include "util/files.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int config_read_fd(int fd, size_t max, struct stat *st, char **text, size_t *len)
{
	ssize_t n;

	*text = NULL;
	if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode) || st->st_size < 0 ||
	    (unsigned long long)st->st_size > max)
		return -EFBIG;
	*text = malloc((size_t)st->st_size + 1);
	if (!*text)
		return -ENOMEM;
	n = read(fd, *text, (size_t)st->st_size);
	if (n < 0) {
		int r = -errno;

		free(*text);
		*text = NULL;
		return r;
	}
	(*text)[n] = '\0';
	*len = (size_t)n;
	return 0;
}

/* ssh's rule for a file that can run commands or turn checks off (the
 * accounts file, a CA file): it belongs to the user (or to root, when
 * root_ok) and nobody else can write to it. */
static int check_trusted(const struct stat *st, const char *what, const char *path, bool root_ok, char *err,
			 size_t errlen)
{
	if (st->st_uid != geteuid() && !(root_ok && st->st_uid == 0)) {
		snprintf(err, errlen,
			 "bad owner or permissions on %s %s: it belongs to uid %lu, "
			 "not to you%s",
			 what, path, (unsigned long)st->st_uid, root_ok ? " or root" : "");
		return -EPERM;
	}
	if (st->st_mode & (S_IWGRP | S_IWOTH)) {
		snprintf(err, errlen,
			 "bad owner or permissions on %s %s: others can write to it; "
			 "run chmod go-w %s",
			 what, path, path);
		return -EPERM;
	}
	return 0;
}

char *config_read_accounts(size_t *len, char *err, size_t errlen)
{
	const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
	char path[PATH_MAX];
	struct stat st;
	char *text;
	int fd, r;

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
		snprintf(err, errlen,
			 "cannot read %s: %s (an argument without :// names an "
			 "account there)",
			 path, strerror(errno));
		return NULL;
	}
	r = config_read_fd(fd, CONFIG_SMALL_FILE_MAX, &st, &text, len);
	close(fd);
	if (r == -EFBIG || r == -ENOMEM)
		snprintf(err, errlen, "cannot read %s", path);
	else if (r < 0)
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(-r));
	/* it can set password_command and tls_verify=no */
	else if (check_trusted(&st, "the config file", path, false, err, errlen) < 0)
		r = -EPERM;
	if (r == 0)
		return text;
	free(text);
	return NULL;
}

/* A CA file decides whom imapfs trusts with the password. */
int config_check_ca_file(const char *path, char *err, size_t errlen)
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

int config_make_absolute(char **path, char *err, size_t errlen)
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

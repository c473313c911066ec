/* config.h - what the user asked for: the command line (URL, -o options,
 * flags) and the password, from wherever it may come.  Credentials stay here
 * and in the account struct built from them; they are zeroed on exit. */
#ifndef IMAPFS_CONFIG_H
#define IMAPFS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <fuse_opt.h>

struct files_dir;

struct imap_url {
	bool tls;   /* imaps:// */
	char *user; /* percent-decoded */
	char *host; /* without [] for IPv6 */
	uint16_t port;
};

struct config {
	struct imap_url url;
	char *url_text;
	char *mountpoint;
	char *password_file;
	char *password_command;
	char *ca_file;
	char *cache_dir;
	char *names;      /* "readable" or "uid" */
	char *tls_verify; /* "yes" or "no" */
	char *trash;      /* folder rm moves to */
	char *rm;         /* "trash" or "expunge" */
	char *watch;      /* comma-separated folders to IDLE on, besides INBOX */
	char *offline;    /* "cached" or "fail" */
	char *compress;   /* "auto", "yes" or "no" */
	int plaintext;
	int route_incoming;
	int writeback;
	unsigned writeback_delay;
	unsigned connections;
	unsigned timeout;
	unsigned dir_cache;
	char *memory_cache; /* SIZE strings: 64M, 1G, 0 */
	char *cache_size;
	unsigned prefetch;
	size_t memory_cache_bytes; /* parsed */
	size_t cache_size_bytes;
	int foreground;
	int debug;
	int show_help;
	int show_version;
	int args_seen;     /* parser state: non-option arguments so far */
	bool watch_open;   /* parser state: the last option was watch= */
	char **argv_owned; /* the command line with an account expanded */
	int argc_owned;
};

/* "64M", "1G", "512k", "0", "1000": bytes, or -EINVAL. */
int config_parse_size(const char *text, size_t *bytes);

/* Parses imaps://USER@HOST[:PORT] or imap://USER@HOST[:PORT]. */
int config_parse_url(const char *text, struct imap_url *url, char *err, size_t errlen);

/* Parses argv.  An account name instead of a URL (`imapfs work ~/Mail`) is
 * looked up in $XDG_CONFIG_HOME/imapfs/config (see config_file.h).  Options
 * imapfs does not know are left in fuse_args for libfuse (which rejects what
 * it does not know either).  On a usage error returns -EINVAL with a
 * one-line reason in err. */
int config_parse_args(int argc, char **argv, struct config *cfg, struct fuse_args *fuse_args, char *err,
		      size_t errlen);

void config_free(struct config *cfg);

/* The password (password.c): password_file, then password_command, then
 * $IMAPFS_PASSWORD (taken out of the environment whatever the source), then
 * the ~/.netrc entry for the URL's host and user, then a prompt on the
 * terminal.  An empty password, CR, LF and NUL are refused. */
int config_read_password(const struct config *cfg, char **password, char *err, size_t errlen);

/* The cache directory: -o cache_dir, else $XDG_CACHE_HOME/imapfs, else
 * ~/.cache/imapfs; opened as a private directory (files.h: created 0700,
 * refused when it is a symbolic link, not the user's or writable by
 * others).  Close with files_dir_close; NULL with err set. */
struct files_dir *config_cache_dir(const struct config *cfg, char *err, size_t errlen);

/* Overwrites and frees a secret. */
void config_free_secret(char *secret);

/* Refuses a user name or password that would break an IMAP command line. */
bool config_credential_ok(const char *s, size_t len);

void config_usage(const char *progname);

#endif

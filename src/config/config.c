/* config.c - owns the command line: the URL, the -o options (from the
 * table in config_options.c) and the flags, an account name expanded from
 * the accounts file, the defaults and the checks of every value.  The
 * password is password.c's, the files the options name config_paths.c's. */
#include "config.h"
#include "config_file.h"
#include "config_options.h"
#include "config_p.h"
#include "util/chars.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IMAPS_SCHEME "imaps://"
#define IMAP_SCHEME "imap://"
#define IMAPS_PORT 993
#define IMAP_PORT 143

/* A SIZE's number may not pass 2^50 (a petabyte), so that a unit cannot
 * overflow it. */
#define SIZE_NUMBER_MAX (1ull << 50)

#define DEFAULT_CONNECTIONS 4
#define DEFAULT_TIMEOUT 30        /* seconds */
#define DEFAULT_DIR_CACHE 10      /* seconds */
#define DEFAULT_WRITEBACK_DELAY 1 /* seconds */
#define WRITEBACK_DELAY_MAX 3600
#define DEFAULT_PREFETCH 64
#define DEFAULT_MEMORY_CACHE (64u << 20)
#define DEFAULT_CACHE_SIZE (1u << 30)
#define CONNECTIONS_MAX 64
#define TIMEOUT_MAX 3600 /* seconds */

enum {
	KEY_HELP,
	KEY_VERSION,
	KEY_FOREGROUND,
	KEY_DEBUG,
	KEY_WATCH
};

/* The command line's own switches, besides the -o options of the table:
 * these are not settings, and the accounts file does not take them. */
static const struct fuse_opt switches[] = {
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
};
#define SWITCHES (sizeof(switches) / sizeof(switches[0]))

int config_parse_size(const char *text, size_t *bytes)
{
	unsigned long long v = 0, mult = 1;
	const char *p = text;

	if (!isdigit((unsigned char)*p))
		return -EINVAL;
	for (; isdigit((unsigned char)*p); p++) {
		v = v * 10 + (unsigned long long)(*p - '0');
		if (v > SIZE_NUMBER_MAX)
			return -EINVAL;
	}
	switch (*p) {
	case '\0':
		break;
	case 'k':
	case 'K':
		mult = 1ull << 10;
		p++;
		break;
	case 'm':
	case 'M':
		mult = 1ull << 20;
		p++;
		break;
	case 'g':
	case 'G':
		mult = 1ull << 30;
		p++;
		break;
	case 't':
	case 'T':
		mult = 1ull << 40;
		p++;
		break;
	default:
		return -EINVAL;
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

static int parse_port(const char *s, uint16_t *port)
{
	unsigned long v = 0;

	if (!*s)
		return -EINVAL;
	for (; *s; s++) {
		if (!isdigit((unsigned char)*s))
			return -EINVAL;
		v = v * 10 + (unsigned long)(*s - '0');
		if (v > UINT16_MAX)
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
	if (strncmp(text, IMAPS_SCHEME, strlen(IMAPS_SCHEME)) == 0) {
		url->tls = true;
		url->port = IMAPS_PORT;
		rest = text + strlen(IMAPS_SCHEME);
	} else if (strncmp(text, IMAP_SCHEME, strlen(IMAP_SCHEME)) == 0) {
		url->port = IMAP_PORT;
		rest = text + strlen(IMAP_SCHEME);
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
	if (len && at[len] == '/') /* one trailing slash is harmless */
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

/* The indexes of the first two arguments that are neither options nor the
 * value of an -o; -1 for those missing. */
static void find_positionals(int argc, char **argv, int *first, int *second)
{
	*first = *second = -1;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-o") == 0) {
			i++;
			continue;
		}
		if (argv[i][0] == '-')
			continue;
		if (*first < 0)
			*first = i;
		else if (*second < 0)
			*second = i;
	}
}

/* argv with the account's options in front, its URL in place of its name
 * (at first) and its mountpoint when the command line gives none; NULL on
 * ENOMEM. */
static char **account_argv(int argc, char **argv, int first, bool add_mountpoint,
			   const struct config_account *acct, int *out_argc)
{
	/* besides argv: "-o", the options, the mountpoint, the NULL */
	char **v = calloc((size_t)argc + 4, sizeof(*v));
	int n = 0;

	if (!v)
		return NULL;
	v[n++] = strdup(argv[0]);
	if (*acct->options) {
		v[n++] = strdup("-o");
		v[n++] = strdup(acct->options);
	}
	for (int i = 1; i < argc; i++)
		v[n++] = strdup(i == first ? acct->url : argv[i]);
	if (add_mountpoint && acct->mountpoint)
		v[n++] = strdup(acct->mountpoint);
	for (int i = 0; i < n; i++) {
		if (!v[i]) {
			for (int j = 0; j < n; j++)
				free(v[j]);
			free(v);
			return NULL;
		}
	}
	*out_argc = n;
	return v;
}

/* `imapfs work ~/Mail`: an account name where the URL goes becomes the
 * account's URL, its options go in front of the command line's (which win),
 * and its mountpoint is used when none is given.  0 with *out_argv NULL when
 * there is nothing to do. */
static int expand_account(int argc, char **argv, int *out_argc, char ***out_argv, char *err, size_t errlen)
{
	struct config_account acct;
	int first, second, r;
	char *text, errbuf[256];
	size_t len = 0;

	*out_argv = NULL;
	find_positionals(argc, argv, &first, &second);
	if (first < 0 || strstr(argv[first], "://"))
		return 0;
	if (!(text = config_read_accounts(&len, err, errlen)))
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
	*out_argv = account_argv(argc, argv, first, second < 0, &acct, out_argc);
	config_account_free(&acct);
	return *out_argv ? 0 : -ENOMEM;
}

/* libfuse splits -o at commas: watch=A,B arrives as "watch=A", "B" */
static int add_watch(struct config *cfg, const char *folder)
{
	size_t len = (cfg->watch ? strlen(cfg->watch) + 1 : 0) + strlen(folder) + 1;
	char *list = malloc(len);

	if (!list)
		return -1;
	snprintf(list, len, "%s%s%s", cfg->watch ? cfg->watch : "", cfg->watch ? "," : "", folder);
	free(cfg->watch);
	cfg->watch = list;
	return 0;
}

static int process_arg(void *data, const char *arg, int key, struct fuse_args *out)
{
	struct config *cfg = data;
	bool continues_watch = cfg->watch_open && key == FUSE_OPT_KEY_OPT && !strchr(arg, '=');

	(void)out;
	cfg->watch_open = key == KEY_WATCH || continues_watch;
	if (key == KEY_WATCH)
		return add_watch(cfg, arg + strlen("watch="));
	if (continues_watch)
		return add_watch(cfg, arg);
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
		return 1; /* a FUSE option: libfuse decides */
	}
}

/* The fuse_opt table: one entry per option of config_options (but those
 * libfuse takes itself), then the switches; malloc'd. */
static struct fuse_opt *fuse_table(void)
{
	struct fuse_opt *t = calloc(config_options_count + SWITCHES + 1, sizeof(*t));
	size_t n = 0;

	if (!t)
		return NULL;
	for (size_t i = 0; i < config_options_count; i++) {
		const struct config_option *o = &config_options[i];

		if (o->kind == CONFIG_FUSE_FLAG)
			continue;
		if (o->kind == CONFIG_LIST)
			t[n++] = (struct fuse_opt)FUSE_OPT_KEY(o->fuse_template, KEY_WATCH);
		else
			t[n++] = (struct fuse_opt){ o->fuse_template, o->offset, 1 };
	}
	memcpy(t + n, switches, sizeof(switches));
	return t; /* calloc'd: ends with FUSE_OPT_END */
}

static void set_defaults(struct config *cfg)
{
	cfg->connections = DEFAULT_CONNECTIONS;
	cfg->timeout = DEFAULT_TIMEOUT;
	cfg->dir_cache = DEFAULT_DIR_CACHE;
	cfg->writeback_delay = DEFAULT_WRITEBACK_DELAY;
	cfg->prefetch = DEFAULT_PREFETCH;
	cfg->memory_cache_bytes = DEFAULT_MEMORY_CACHE;
	cfg->cache_size_bytes = DEFAULT_CACHE_SIZE;
}

/* The field of option o in cfg. */
static char **text_field(struct config *cfg, const struct config_option *o)
{
	return (char **)((char *)cfg + o->offset);
}

/* Every option that takes one of two or three words got one of them. */
static int check_choices(struct config *cfg, char *err, size_t errlen)
{
	for (size_t i = 0; i < config_options_count; i++) {
		const struct config_option *o = &config_options[i];
		const char *v;

		if (!o->choice[0])
			continue;
		v = *text_field(cfg, o);
		if (v && strcmp(v, o->choice[0]) != 0 && strcmp(v, o->choice[1]) != 0 &&
		    (!o->choice[2] || strcmp(v, o->choice[2]) != 0)) {
			if (o->choice[2])
				snprintf(err, errlen, "-o %.*s= takes %s, %s or %s",
					 (int)config_option_name_len(o), o->fuse_template, o->choice[0],
					 o->choice[1], o->choice[2]);
			else
				snprintf(err, errlen, "-o %.*s= takes %s or %s",
					 (int)config_option_name_len(o), o->fuse_template, o->choice[0],
					 o->choice[1]);
			return -EINVAL;
		}
	}
	return 0;
}

static int check_values(struct config *cfg, char *err, size_t errlen)
{
	if (check_choices(cfg, err, errlen) < 0)
		return -EINVAL;
	if (cfg->memory_cache && config_parse_size(cfg->memory_cache, &cfg->memory_cache_bytes) < 0) {
		snprintf(err, errlen, "-o memory_cache= takes a size such as 64M");
		return -EINVAL;
	}
	if (cfg->cache_size && config_parse_size(cfg->cache_size, &cfg->cache_size_bytes) < 0) {
		snprintf(err, errlen, "-o cache_size= takes a size such as 1G (0: no disk cache)");
		return -EINVAL;
	}
	if (cfg->connections < 1 || cfg->connections > CONNECTIONS_MAX) {
		snprintf(err, errlen, "-o connections= takes 1 to %d", CONNECTIONS_MAX);
		return -EINVAL;
	}
	if (cfg->timeout < 1 || cfg->timeout > TIMEOUT_MAX) {
		snprintf(err, errlen, "-o timeout= takes 1 to %d seconds", TIMEOUT_MAX);
		return -EINVAL;
	}
	if (cfg->writeback_delay > WRITEBACK_DELAY_MAX) {
		snprintf(err, errlen, "-o writeback_delay= takes 0 to %d seconds", WRITEBACK_DELAY_MAX);
		return -EINVAL;
	}
	if (cfg->plaintext && strncmp(cfg->url_text, IMAPS_SCHEME, strlen(IMAPS_SCHEME)) == 0) {
		snprintf(err, errlen, "-o plaintext makes no sense with imaps://");
		return -EINVAL;
	}
	return 0;
}

/* Paths become absolute before the daemon changes to /. */
static int check_paths(struct config *cfg, char *err, size_t errlen)
{
	for (size_t i = 0; i < config_options_count; i++)
		if (config_options[i].kind == CONFIG_PATH &&
		    config_make_absolute(text_field(cfg, &config_options[i]), err, errlen) < 0)
			return -EINVAL;
	return config_check_ca_file(cfg->ca_file, err, errlen) < 0 ? -EINVAL : 0;
}

int config_parse_args(int argc, char **argv, struct config *cfg, struct fuse_args *fuse_args, char *err,
		      size_t errlen)
{
	char **expanded = NULL;
	struct fuse_opt *table;
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
	set_defaults(cfg);
	*fuse_args = (struct fuse_args)FUSE_ARGS_INIT(argc, argv);
	table = fuse_table();
	r = table ? fuse_opt_parse(fuse_args, cfg, table, process_arg) : -1;
	free(table);
	if (r < 0) {
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
	if (check_values(cfg, err, errlen) < 0 || check_paths(cfg, err, errlen) < 0)
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
	for (size_t i = 0; i < config_options_count; i++) {
		enum config_option_kind kind = config_options[i].kind;

		if (kind == CONFIG_TEXT || kind == CONFIG_PATH || kind == CONFIG_LIST)
			free(*text_field(cfg, &config_options[i]));
	}
	memset(cfg, 0, sizeof(*cfg));
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
	       "imapfs options (-o opt[=val],...):\n",
	       progname);
	for (size_t i = 0; i < config_options_count; i++)
		if (config_options[i].usage)
			printf("    -o %s\n", config_options[i].usage);
	printf("\n"
	       "FUSE options such as -o allow_other are passed to libfuse.\n"
	       "Unmount with: fusermount3 -u MOUNTPOINT\n");
}

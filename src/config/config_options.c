/* config_options.c - owns the table of -o options (config_options.h), in
 * the order --help lists them. */
#include "config_options.h"
#include "config.h"

#include <string.h>

#define OPTION(templ, kind, field, ...)                                  \
	{                                                                \
		templ, kind, offsetof(struct config, field), __VA_ARGS__ \
	}

const struct config_option config_options[] = {
	OPTION("password_file=%s", CONFIG_PATH, password_file, { NULL, NULL },
	       "password_file=PATH  read the password from PATH (first line, mode 0600)"),
	OPTION("password_command=%s", CONFIG_TEXT, password_command, { NULL, NULL },
	       "password_command=CMD  run CMD, use its first output line\n"
	       "                           (else $IMAPFS_PASSWORD, else ~/.netrc, else a prompt)"),
	OPTION("ca_file=%s", CONFIG_PATH, ca_file, { NULL, NULL },
	       "ca_file=PATH        trust the CA certificates in PATH (default: system store)"),
	OPTION("tls_verify=%s", CONFIG_TEXT, tls_verify, { "yes", "no" },
	       "tls_verify=no       accept any certificate (testing only!)"),
	OPTION("compress=%s", CONFIG_TEXT, compress, { "auto", "yes", "no" },
	       "compress=auto|yes|no COMPRESS=DEFLATE when the server offers it: auto (default)\n"
	       "                           on a link with a round trip of 10 ms or more, never on loopback"),
	OPTION("plaintext", CONFIG_FLAG, plaintext, { NULL, NULL },
	       "plaintext           allow imap:// without TLS (trusted networks only)"),
	OPTION("connections=%u", CONFIG_NUMBER, connections, { NULL, NULL },
	       "connections=N       IMAP connections (default 4)"),
	OPTION("timeout=%u", CONFIG_NUMBER, timeout, { NULL, NULL },
	       "timeout=SECONDS     network timeout (default 30)"),
	OPTION("dir_cache=%u", CONFIG_NUMBER, dir_cache, { NULL, NULL },
	       "dir_cache=SECONDS   refresh listings older than this (default 10)"),
	OPTION("names=%s", CONFIG_TEXT, names, { "readable", "uid" },
	       "names=readable|uid  file names (default readable)"),
	OPTION("cache_dir=%s", CONFIG_PATH, cache_dir, { NULL, NULL },
	       "cache_dir=PATH      cache directory (default $XDG_CACHE_HOME/imapfs)"),
	OPTION("trash=%s", CONFIG_TEXT, trash, { NULL, NULL },
	       "trash=NAME          folder rm moves to (default: \\Trash, else Trash)"),
	OPTION("rm=%s", CONFIG_TEXT, rm, { "trash", "expunge" },
	       "rm=trash|expunge    rm moves to the trash (default) or deletes for good"),
	OPTION("writeback", CONFIG_FLAG, writeback, { NULL, NULL },
	       "writeback           mv, rm and flag changes return once journaled; sent in\n"
	       "                           batches in the background, also after being offline"),
	OPTION("writeback_delay=%u", CONFIG_NUMBER, writeback_delay, { NULL, NULL },
	       "writeback_delay=SECONDS  send changes at most this late (default 1)"),
	OPTION("route_incoming", CONFIG_FLAG, route_incoming, { NULL, NULL },
	       "route_incoming      move new INBOX mail to the receive folder of its class"),
	OPTION("memory_cache=%s", CONFIG_TEXT, memory_cache, { NULL, NULL },
	       "memory_cache=SIZE   message blocks kept in memory (default 64M)"),
	OPTION("cache_size=%s", CONFIG_TEXT, cache_size, { NULL, NULL },
	       "cache_size=SIZE     message blocks kept on disk (default 1G; 0: none)"),
	OPTION("prefetch=%u", CONFIG_NUMBER, prefetch, { NULL, NULL },
	       "prefetch=N          messages/blocks fetched ahead of a reader (default 64; 0: off)"),
	OPTION("watch=", CONFIG_LIST, watch, { NULL, NULL },
	       "watch=F1,F2         folders kept live with IDLE besides INBOX"),
	OPTION("offline=%s", CONFIG_TEXT, offline, { "cached", "fail" },
	       "offline=cached|fail while the server is unreachable: serve what is cached\n"
	       "                           (default) or fail everything with EIO"),
	{ "allow_other", CONFIG_FUSE_FLAG, 0, { NULL, NULL }, NULL },
};

const size_t config_options_count = sizeof(config_options) / sizeof(config_options[0]);

size_t config_option_name_len(const struct config_option *o)
{
	return strcspn(o->fuse_template, "=");
}

const struct config_option *config_option_find(const char *name, size_t len)
{
	for (size_t i = 0; i < config_options_count; i++) {
		const struct config_option *o = &config_options[i];

		if (config_option_name_len(o) == len && strncmp(o->fuse_template, name, len) == 0)
			return o;
	}
	return NULL;
}

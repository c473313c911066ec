/* libFuzzer target for the command line: the URL parser, sizes, ~/.netrc
 * texts and whole option lists through config_parse_args (libfuse's option
 * parser underneath).  Built and run by `make fuzz`.
 *
 * The input is also read as an accounts file (section [work]), and split
 * at newlines into arguments (at most 16).  What must
 * hold: no crash or leak; an accepted URL has a user and a host without CR,
 * LF or NUL and a port above 0; a netrc password is a C string. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config/netrc.h"
#include "config/config_file.h"

#define CHECK(cond)              \
	do {                     \
		if (!(cond))     \
			abort(); \
	} while (0)
#define MAX_ARGS 16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1), *argv[MAX_ARGS + 2], *pw = NULL, err[512];
	struct imap_url url;
	struct fuse_args fa;
	struct config cfg;
	size_t bytes;
	int argc = 1;

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';

	memset(&url, 0, sizeof(url));
	if (config_parse_url(text, &url, err, sizeof(err)) == 0) {
		CHECK(url.user && url.host && url.port > 0);
		CHECK(config_credential_ok(url.user, strlen(url.user)));
		CHECK(!strpbrk(url.host, "\r\n"));
	}
	free(url.user);
	free(url.host);
	config_parse_size(text, &bytes);
	if (netrc_password((const char *)data, size, "host", "user", &pw) == 0)
		CHECK(pw && strlen(pw) <= size);
	free(pw);
	{
		struct config_account a;

		if (config_file_account((const char *)data, size, "work", "/home/u", &a, err, sizeof(err)) ==
		    0) {
			CHECK(a.options);
			config_account_free(&a);
		}
	}

	argv[0] = "imapfs";
	for (char *p = text, *nl; p && argc <= MAX_ARGS; p = nl ? nl + 1 : NULL) {
		nl = strchr(p, '\n');
		if (nl)
			*nl = '\0';
		argv[argc++] = p;
	}
	argv[argc] = NULL;
	if (config_parse_args(argc, argv, &cfg, &fa, err, sizeof(err)) == 0 && !cfg.show_help &&
	    !cfg.show_version)
		CHECK(cfg.url_text && cfg.mountpoint && cfg.url.host);
	fuse_opt_free_args(&fa);
	config_free(&cfg);
	free(text);
	return 0;
}

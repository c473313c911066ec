/* config_options.h - the -o options of imapfs, written down once: the
 * command line (config.c) builds its fuse_opt table from this list, the
 * accounts file (config_file.c) takes its keys from it, and --help prints
 * it.  A new option added here works in both places. */
#ifndef IMAPFS_CONFIG_OPTIONS_H
#define IMAPFS_CONFIG_OPTIONS_H

#include <stddef.h>

enum config_option_kind {
	CONFIG_TEXT,      /* name=VALUE, a char * in struct config */
	CONFIG_PATH,      /* a TEXT naming a file: made absolute, and "~/"
				 * expanded in the accounts file */
	CONFIG_NUMBER,    /* name=N, an unsigned in struct config */
	CONFIG_FLAG,      /* name alone sets an int in struct config to 1;
				 * yes or no in the accounts file */
	CONFIG_LIST,      /* watch=A,B, the one list: its own commas separate
				 * values (config.c gathers what libfuse splits),
				 * so the accounts file does not escape them */
	CONFIG_FUSE_FLAG, /* a flag for libfuse (allow_other): the command line
				 * passes it on, the accounts file takes yes or no */
};

struct config_option {
	const char *fuse_template; /* for fuse_opt: "name=%s", "name=%u", "name" */
	enum config_option_kind kind;
	size_t offset;         /* of its field in struct config */
	const char *choice[3]; /* the two or three values a TEXT takes, or NULL */
	const char *usage;     /* --help's text after "-o "; NULL: not listed */
};

extern const struct config_option config_options[];
extern const size_t config_options_count;

/* The option called name (len bytes, without '='), or NULL. */
const struct config_option *config_option_find(const char *name, size_t len);

/* Length of the option's name in fuse_template (before any '='). */
size_t config_option_name_len(const struct config_option *o);

#endif

/* config_file.h - accounts in $XDG_CONFIG_HOME/imapfs/config, so that
 * `imapfs work ~/Mail` mounts the account called "work":
 *
 *	# comments and blank lines are ignored
 *	[work]
 *	url = imaps://alice@mail.example.org
 *	mountpoint = ~/Mail
 *	password_file = ~/.config/imapfs/work.pass
 *	watch = Archive,Lists/dev
 *	route_incoming = yes
 *
 * Keys are the names of the -o options (config_options.c: every one of
 * them; flags take yes or no), plus url and mountpoint; a password is
 * refused.  Pure parsing here (unit-tested and fuzzed); config_paths.c
 * reads the file. */
#ifndef IMAPFS_CONFIG_FILE_H
#define IMAPFS_CONFIG_FILE_H

#include <stddef.h>

struct config_account {
	char *url;        /* NULL when the section has none */
	char *mountpoint; /* NULL when the section has none; ~ expanded */
	char *options;    /* "k=v,flag,..." for -o (commas in values escaped) */
};

/* Finds section `name` in text.  0 with *out filled (free with
 * config_account_free), -ENOENT when there is no such section, -EINVAL with a
 * one-line reason (and the line number) in err for a malformed file, an
 * unknown key or a bad yes/no value.  home expands a leading "~/". */
int config_file_account(const char *text, size_t len, const char *name, const char *home,
			struct config_account *out, char *err, size_t errlen);

void config_account_free(struct config_account *a);

#endif

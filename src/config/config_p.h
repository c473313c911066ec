/* config_p.h - what the files of config/ share and nothing else sees:
 * the local files the options name (config_paths.c). */
#ifndef IMAPFS_CONFIG_P_H
#define IMAPFS_CONFIG_P_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

/* The accounts file and ~/.netrc are never this large. */
#define CONFIG_SMALL_FILE_MAX (1 << 20)

/* Reads all of fd, a regular file of at most max bytes, into *text (NUL
 * appended, malloc'd; *len bytes) and its status into *st.  -EFBIG for
 * anything else (not regular, too large, fstat failed), -ENOMEM, or the
 * -errno of a failed read. */
int config_read_fd(int fd, size_t max, struct stat *st, char **text, size_t *len);

/* The text of the accounts file ($XDG_CONFIG_HOME/imapfs/config, else
 * ~/.config/imapfs/config), malloc'd, refused unless it is the user's and
 * nobody else may write to it; NULL with err set. */
char *config_read_accounts(size_t *len, char *err, size_t errlen);

/* Refuses a CA file that someone other than the user or root owns or may
 * write to (0 for none, or one that cannot be opened: tls.c says so). */
int config_check_ca_file(const char *path, char *err, size_t errlen);

/* Makes *path (malloc'd; NULL is left alone) absolute against the working
 * directory, which the daemon leaves for / once it forks. */
int config_make_absolute(char **path, char *err, size_t errlen);

#endif

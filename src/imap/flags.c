/* flags.c - owns the text form of message flags: the parser that guards what
 * setxattr may send to the server, and the formatter getxattr uses. */
#include "flags.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct {
	const char *name;
	unsigned bit;
} system_flags[] = {
	{ "\\Seen", IMAP_FLAG_SEEN },       { "\\Answered", IMAP_FLAG_ANSWERED },
	{ "\\Flagged", IMAP_FLAG_FLAGGED }, { "\\Deleted", IMAP_FLAG_DELETED },
	{ "\\Draft", IMAP_FLAG_DRAFT },
};

#define NSYSTEM (sizeof(system_flags) / sizeof(system_flags[0]))

/* An IMAP atom that may be a keyword (RFC 3501 flag-keyword). */
static bool keyword_valid(const char *kw)
{
	if (!*kw || strlen(kw) > 200)
		return false;
	for (const unsigned char *p = (const unsigned char *)kw; *p; p++)
		if (*p <= 0x20 || *p >= 0x7f || strchr("(){%*\"\\]", *p))
			return false;
	return true;
}

int flags_add_keyword(struct flag_set *fs, const char *keyword)
{
	char **v;

	if (!keyword_valid(keyword))
		return -EINVAL;
	for (size_t i = 0; i < fs->nkeywords; i++)
		if (strcasecmp(fs->keywords[i], keyword) == 0)
			return 0;
	v = realloc(fs->keywords, (fs->nkeywords + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	fs->keywords = v;
	v[fs->nkeywords] = strdup(keyword);
	if (!v[fs->nkeywords])
		return -ENOMEM;
	fs->nkeywords++;
	return 0;
}

static int add_token(struct flag_set *fs, const char *tok)
{
	if (tok[0] != '\\')
		return flags_add_keyword(fs, tok);
	if (strcasecmp(tok, "\\Recent") == 0)
		return 0;
	for (size_t i = 0; i < NSYSTEM; i++) {
		if (strcasecmp(tok, system_flags[i].name) == 0) {
			fs->system |= system_flags[i].bit;
			return 0;
		}
	}
	return -EINVAL;
}

int flags_parse(const char *text, size_t len, struct flag_set *out)
{
	char *copy = malloc(len + 1), *tok, *save = NULL;
	int r = 0;

	memset(out, 0, sizeof(*out));
	if (!copy)
		return -ENOMEM;
	memcpy(copy, text, len);
	copy[len] = '\0';
	if (strlen(copy) != len) /* a NUL inside the value */
		r = -EINVAL;
	for (tok = strtok_r(copy, " \t\r\n", &save); tok && r == 0; tok = strtok_r(NULL, " \t\r\n", &save))
		r = add_token(out, tok);
	free(copy);
	if (r < 0)
		flags_free(out);
	return r;
}

char *flags_format(const struct flag_set *fs)
{
	size_t len = 1;
	char *out;

	for (size_t i = 0; i < NSYSTEM; i++)
		len += strlen(system_flags[i].name) + 1;
	for (size_t i = 0; i < fs->nkeywords; i++)
		len += strlen(fs->keywords[i]) + 1;
	out = malloc(len);
	if (!out)
		return NULL;
	out[0] = '\0';
	for (size_t i = 0; i < NSYSTEM; i++) {
		if (!(fs->system & system_flags[i].bit))
			continue;
		if (out[0])
			strcat(out, " ");
		strcat(out, system_flags[i].name);
	}
	for (size_t i = 0; i < fs->nkeywords; i++) {
		if (out[0])
			strcat(out, " ");
		strcat(out, fs->keywords[i]);
	}
	return out;
}

void flags_free(struct flag_set *fs)
{
	for (size_t i = 0; i < fs->nkeywords; i++)
		free(fs->keywords[i]);
	free(fs->keywords);
	memset(fs, 0, sizeof(*fs));
}

/* config_file.c - owns the format of the accounts file (see config_file.h):
 * sections, key = value lines, and how each -o option of config_options.c
 * is written there (yes/no for flags, "~/" expanded in paths). */
#include "config_file.h"
#include "config_options.h"
#include "util/strbuf.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *trim(char *s, char **end)
{
	while (*s == ' ' || *s == '\t')
		s++;
	*end = s + strlen(s);
	while (*end > s && ((*end)[-1] == ' ' || (*end)[-1] == '\t' || (*end)[-1] == '\r'))
		(*end)--;
	**end = '\0';
	return s;
}

/* value with a leading "~/" expanded, malloc'd */
static char *expand(const char *value, const char *home)
{
	size_t n;
	char *out;

	if (strncmp(value, "~/", 2) != 0 || !home)
		return strdup(value);
	n = strlen(home) + strlen(value);
	out = malloc(n);
	if (out)
		snprintf(out, n, "%s%s", home, value + 1);
	return out;
}

/* k=v for -o, with fuse_opt's separators in v escaped but for a list's
 * own commas, which imapfs splits itself */
static void add_option(struct strbuf *o, const char *key, const char *value, bool list)
{
	if (o->len)
		strbuf_addc(o, ',');
	strbuf_adds(o, key);
	if (!value)
		return;
	strbuf_addc(o, '=');
	for (const char *p = value; *p; p++) {
		if ((*p == ',' && !list) || *p == '\\')
			strbuf_addc(o, '\\');
		strbuf_addc(o, *p);
	}
}

static int yes_no(const char *v)
{
	if (!strcasecmp(v, "yes") || !strcasecmp(v, "true") || !strcmp(v, "1") || !strcasecmp(v, "on"))
		return 1;
	if (!strcasecmp(v, "no") || !strcasecmp(v, "false") || !strcmp(v, "0") || !strcasecmp(v, "off"))
		return 0;
	return -1;
}

static int add_setting(struct strbuf *o, const struct config_option *opt, const char *key, const char *value,
		       const char *home, unsigned line, char *err, size_t errlen)
{
	char *expanded;
	int yn;

	switch (opt->kind) {
	case CONFIG_FLAG:
	case CONFIG_FUSE_FLAG:
		yn = yes_no(value);
		if (yn < 0) {
			snprintf(err, errlen, "line %u: %s takes yes or no", line, key);
			return -EINVAL;
		}
		if (yn)
			add_option(o, key, NULL, false);
		return 0;
	case CONFIG_PATH:
		expanded = expand(value, home);
		if (!expanded)
			return -ENOMEM;
		add_option(o, key, expanded, false);
		free(expanded);
		return 0;
	case CONFIG_TEXT:
	case CONFIG_NUMBER:
	case CONFIG_LIST:
		add_option(o, key, value, opt->kind == CONFIG_LIST);
		return 0;
	}
	return -EINVAL;
}

static int apply(struct config_account *a, struct strbuf *o, const char *key, const char *value,
		 const char *home, unsigned line, char *err, size_t errlen)
{
	const struct config_option *opt;

	if (!strcmp(key, "url") || !strcmp(key, "mountpoint")) {
		char **slot = !strcmp(key, "url") ? &a->url : &a->mountpoint;

		free(*slot);
		*slot = !strcmp(key, "url") ? strdup(value) : expand(value, home);
		return *slot ? 0 : -ENOMEM;
	}
	if (!strcmp(key, "password")) {
		snprintf(err, errlen,
			 "line %u: passwords do not belong in the config file; use "
			 "password_file, password_command or ~/.netrc",
			 line);
		return -EINVAL;
	}
	opt = config_option_find(key, strlen(key));
	if (!opt) {
		snprintf(err, errlen, "line %u: unknown key \"%.60s\"", line, key);
		return -EINVAL;
	}
	return add_setting(o, opt, key, value, home, line, err, errlen);
}

int config_file_account(const char *text, size_t len, const char *name, const char *home,
			struct config_account *out, char *err, size_t errlen)
{
	struct strbuf o = { 0 };
	bool in_section = false, found = false;
	unsigned line = 0;
	const char *p = text, *end = text + len;
	int r = 0;

	memset(out, 0, sizeof(*out));
	while (p < end && r == 0) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		char *buf = malloc(n + 1), *e, *eq;
		const char *s;
		bool has_nul;

		line++;
		if (!buf) {
			r = -ENOMEM;
			break;
		}
		memcpy(buf, p, n);
		buf[n] = '\0';
		has_nul = strlen(buf) != n;
		p = nl ? nl + 1 : end;
		s = trim(buf, &e);
		if (has_nul) {
			snprintf(err, errlen, "line %u: a NUL byte", line);
			r = -EINVAL;
		} else if (*s == '\0' || *s == '#' || *s == ';') {
			/* blank or comment */
		} else if (*s == '[') {
			if (e[-1] != ']' || e - s < 3) {
				snprintf(err, errlen, "line %u: a section is written [name]", line);
				r = -EINVAL;
			} else {
				in_section = (size_t)(e - s - 2) == strlen(name) &&
					     strncmp(s + 1, name, (size_t)(e - s - 2)) == 0;
				found |= in_section;
			}
		} else if (!(eq = strchr(s, '='))) {
			snprintf(err, errlen, "line %u: expected key = value", line);
			r = -EINVAL;
		} else if (in_section) {
			char *kend, *vend;
			const char *key, *value;

			*eq = '\0';
			key = trim((char *)s, &kend);
			value = trim(eq + 1, &vend);
			r = apply(out, &o, key, value, home, line, err, errlen);
		}
		free(buf);
	}
	if (r == 0 && !found) {
		snprintf(err, errlen, "no account [%.60s] in the config file", name);
		r = -ENOENT;
	}
	if (r < 0) {
		strbuf_free(&o);
		config_account_free(out);
		return r;
	}
	out->options = strbuf_take(&o);
	if (!out->options) {
		config_account_free(out);
		return -ENOMEM;
	}
	return 0;
}

void config_account_free(struct config_account *a)
{
	free(a->url);
	free(a->mountpoint);
	free(a->options);
	memset(a, 0, sizeof(*a));
}

/* config_file.c - owns the format of the accounts file (see config_file.h):
 * sections, key = value lines, which keys exist and which take yes/no. */
#include "config_file.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum kind { VALUE, PATH, FLAG };

static const struct {
	const char *key;
	enum kind kind;
} keys[] = {
	{ "password_file", PATH }, { "password_command", VALUE }, { "ca_file", PATH },
	{ "tls_verify", VALUE }, { "plaintext", FLAG }, { "connections", VALUE },
	{ "timeout", VALUE }, { "dir_cache", VALUE }, { "names", VALUE }, { "cache_dir", PATH },
	{ "memory_cache", VALUE }, { "cache_size", VALUE }, { "prefetch", VALUE },
	{ "trash", VALUE }, { "rm", VALUE }, { "route_incoming", FLAG }, { "watch", VALUE },
	{ "offline", VALUE }, { "allow_other", FLAG },
};

/* A growing string; on allocation failure it stays NULL. */
struct text {
	char *s;
	size_t len, cap;
	bool failed;
};

static void append(struct text *t, const char *s, size_t n)
{
	if (t->failed)
		return;
	if (t->len + n + 1 > t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 128;
		char *p;

		while (cap < t->len + n + 1)
			cap *= 2;
		p = realloc(t->s, cap);
		if (!p) {
			t->failed = true;
			return;
		}
		t->s = p;
		t->cap = cap;
	}
	memcpy(t->s + t->len, s, n);
	t->len += n;
	t->s[t->len] = '\0';
}

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

/* k=v for -o, with fuse_opt's separators in v escaped */
static void add_option(struct text *o, const char *key, const char *value)
{
	if (o->len)
		append(o, ",", 1);
	append(o, key, strlen(key));
	if (!value)
		return;
	append(o, "=", 1);
	for (const char *p = value; *p; p++) {
		/* watch's own commas separate folders: imapfs splits those itself */
		if ((*p == ',' && strcmp(key, "watch") != 0) || *p == '\\')
			append(o, "\\", 1);
		append(o, p, 1);
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

static int apply(struct config_account *a, struct text *o, const char *key, const char *value,
		 const char *home, unsigned line, char *err, size_t errlen)
{
	if (!strcmp(key, "url") || !strcmp(key, "mountpoint")) {
		char **slot = !strcmp(key, "url") ? &a->url : &a->mountpoint;

		free(*slot);
		*slot = !strcmp(key, "url") ? strdup(value) : expand(value, home);
		return *slot ? 0 : -ENOMEM;
	}
	if (!strcmp(key, "password")) {
		snprintf(err, errlen, "line %u: passwords do not belong in the config file; use "
			 "password_file, password_command or ~/.netrc", line);
		return -EINVAL;
	}
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		char *expanded;
		int yn;

		if (strcmp(keys[i].key, key) != 0)
			continue;
		switch (keys[i].kind) {
		case FLAG:
			yn = yes_no(value);
			if (yn < 0) {
				snprintf(err, errlen, "line %u: %s takes yes or no", line, key);
				return -EINVAL;
			}
			if (yn)
				add_option(o, key, NULL);
			return 0;
		case PATH:
			expanded = expand(value, home);
			if (!expanded)
				return -ENOMEM;
			add_option(o, key, expanded);
			free(expanded);
			return 0;
		case VALUE:
			add_option(o, key, value);
			return 0;
		}
	}
	snprintf(err, errlen, "line %u: unknown key \"%.60s\"", line, key);
	return -EINVAL;
}

int config_file_account(const char *text, size_t len, const char *name, const char *home,
			struct config_account *out, char *err, size_t errlen)
{
	struct text o = { 0 };
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
	if (r == 0 && o.failed)
		r = -ENOMEM;
	if (r < 0) {
		free(o.s);
		config_account_free(out);
		return r;
	}
	out->options = o.s ? o.s : strdup("");
	return out->options ? 0 : -ENOMEM;
}

void config_account_free(struct config_account *a)
{
	free(a->url);
	free(a->mountpoint);
	free(a->options);
	memset(a, 0, sizeof(*a));
}

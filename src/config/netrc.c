/* netrc.c - owns reading a ~/.netrc text (see netrc.h). */
#include "netrc.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct cursor {
	const char *p, *end;
};

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* The next token (a "quoted string" may hold spaces); false at the end. */
static bool next_token(struct cursor *c, const char **tok, size_t *len)
{
	while (c->p < c->end && is_space(*c->p))
		c->p++;
	if (c->p >= c->end)
		return false;
	if (*c->p == '"') {
		const char *close = memchr(c->p + 1, '"', (size_t)(c->end - c->p - 1));

		*tok = c->p + 1;
		*len = close ? (size_t)(close - *tok) : (size_t)(c->end - *tok);
		c->p = close ? close + 1 : c->end;
		return true;
	}
	*tok = c->p;
	while (c->p < c->end && !is_space(*c->p))
		c->p++;
	*len = (size_t)(c->p - *tok);
	return true;
}

static bool token_is(const char *tok, size_t len, const char *word)
{
	return len == strlen(word) && memcmp(tok, word, len) == 0;
}

/* A macdef's body runs to the next empty line. */
static void skip_macro(struct cursor *c)
{
	while (c->p < c->end) {
		const char *nl = memchr(c->p, '\n', (size_t)(c->end - c->p));

		if (!nl) {
			c->p = c->end;
			return;
		}
		c->p = nl + 1;
		if (c->p < c->end &&
		    (*c->p == '\n' || (*c->p == '\r' && c->p + 1 < c->end && c->p[1] == '\n')))
			return;
	}
}

struct entry {
	bool any_host, host_match;
	const char *login, *password;
	size_t login_len, password_len;
};

static bool entry_fits(const struct entry *e, const char *user)
{
	return e->password && (!e->login || token_is(e->login, e->login_len, user));
}

int netrc_password(const char *text, size_t len, const char *host, const char *user, char **password)
{
	struct cursor c = { text, text + len };
	struct entry e = { 0 }, fallback = { 0 };
	bool in_entry = false, found = false;
	const char *tok;
	size_t tlen;

	*password = NULL;
	for (;;) {
		bool more = next_token(&c, &tok, &tlen);
		bool starts = more && (token_is(tok, tlen, "machine") || token_is(tok, tlen, "default") ||
				       token_is(tok, tlen, "macdef"));

		if (in_entry && (!more || starts)) {
			if (e.host_match && entry_fits(&e, user)) {
				found = true;
				break;
			}
			if (e.any_host && !fallback.password && entry_fits(&e, user))
				fallback = e;
			in_entry = false;
		}
		if (!more)
			break;
		if (starts && !token_is(tok, tlen, "macdef")) {
			memset(&e, 0, sizeof(e));
			in_entry = true;
			if (token_is(tok, tlen, "default")) {
				e.any_host = true;
			} else if (next_token(&c, &tok, &tlen)) {
				e.host_match = strlen(host) == tlen && strncasecmp(tok, host, tlen) == 0;
			}
		} else if (token_is(tok, tlen, "macdef")) {
			next_token(&c, &tok, &tlen); /* its name */
			skip_macro(&c);
			in_entry = false;
		} else if (in_entry && (token_is(tok, tlen, "login") || token_is(tok, tlen, "password") ||
					token_is(tok, tlen, "account"))) {
			bool is_login = token_is(tok, tlen, "login");
			bool is_password = token_is(tok, tlen, "password");

			if (!next_token(&c, &tok, &tlen))
				continue;
			if (is_login) {
				e.login = tok;
				e.login_len = tlen;
			} else if (is_password) {
				e.password = tok;
				e.password_len = tlen;
			}
		}
	}
	if (!found && fallback.password) {
		e = fallback;
		found = true;
	}
	if (!found)
		return -ENOENT;
	*password = malloc(e.password_len + 1);
	if (!*password)
		return -ENOMEM;
	memcpy(*password, e.password, e.password_len);
	(*password)[e.password_len] = '\0';
	return 0;
}

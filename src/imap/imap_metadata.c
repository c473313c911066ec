/* imap_metadata.c - owns RFC 5464 METADATA, which libetpan 1.9.4 lacks: a
 * parser for the untagged METADATA response registered through libetpan's
 * extension API, and GETMETADATA / SETMETADATA sent as custom commands
 * (values as LITERAL+ literals, so they may hold line breaks). */
#include "imap.h"
#include "imap_p.h"
#include "util/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* libetpan's own parser helpers: exported, but in no installed header. */
int mailimap_token_case_insensitive_parse(mailstream *fd, MMAPString *buffer, size_t *indx,
					  const char *token);
int mailimap_space_parse(mailstream *fd, MMAPString *buffer, size_t *indx);
int mailimap_oparenth_parse(mailstream *fd, MMAPString *buffer, struct mailimap_parser_context *ctx,
			    size_t *indx);
int mailimap_cparenth_parse(mailstream *fd, MMAPString *buffer, struct mailimap_parser_context *ctx,
			    size_t *indx);
int mailimap_astring_parse(mailstream *fd, MMAPString *buffer, struct mailimap_parser_context *ctx,
			   size_t *indx, char **result, size_t progr_rate, progress_function *progr_fun);
int mailimap_nstring_parse(mailstream *fd, MMAPString *buffer, struct mailimap_parser_context *ctx,
			   size_t *indx, char **result, size_t *result_len, size_t progr_rate,
			   progress_function *progr_fun);
void mailimap_astring_free(char *astring);
void mailimap_nstring_free(char *str);

#define METADATA_MAX_VALUE (1u << 20)

/* One "entry value" pair of a METADATA response; owned copies. */
struct metadata_entry {
	char *entry;
	char *value; /* NULL for NIL */
	size_t len;
};

static void entry_free(struct metadata_entry *e)
{
	if (!e)
		return;
	free(e->entry);
	free(e->value);
	free(e);
}

static int parse_pair(mailstream *fd, MMAPString *buffer, struct mailimap_parser_context *ctx, size_t *cur,
		      size_t rate, progress_function *fun, struct metadata_entry *e)
{
	char *entry = NULL, *value = NULL;
	size_t len = 0;
	int r;

	r = mailimap_astring_parse(fd, buffer, ctx, cur, &entry, rate, fun);
	if (r != MAILIMAP_NO_ERROR)
		return r;
	r = mailimap_space_parse(fd, buffer, cur);
	if (r == MAILIMAP_NO_ERROR)
		r = mailimap_nstring_parse(fd, buffer, ctx, cur, &value, &len, rate, fun);
	if (r == MAILIMAP_NO_ERROR && !e->entry) { /* keep the first pair only */
		e->entry = strdup(entry);
		e->value = value && len <= METADATA_MAX_VALUE ? malloc(len + 1) : NULL;
		if (e->value) {
			memcpy(e->value, value, len);
			e->value[len] = '\0';
			e->len = len;
		}
	}
	mailimap_astring_free(entry);
	if (value)
		mailimap_nstring_free(value);
	return r;
}

/* metadata-resp = "METADATA" SP mailbox SP "(" entry SP value *(SP entry SP value) ")" */
static int parse_response(mailstream *fd, MMAPString *buffer, struct mailimap_parser_context *ctx,
			  size_t *indx, struct metadata_entry *e, size_t rate, progress_function *fun)
{
	size_t cur = *indx;
	char *mailbox = NULL;
	int r;

	r = mailimap_token_case_insensitive_parse(fd, buffer, &cur, "METADATA");
	if (r == MAILIMAP_NO_ERROR)
		r = mailimap_space_parse(fd, buffer, &cur);
	if (r == MAILIMAP_NO_ERROR)
		r = mailimap_astring_parse(fd, buffer, ctx, &cur, &mailbox, rate, fun);
	if (mailbox)
		mailimap_astring_free(mailbox);
	if (r == MAILIMAP_NO_ERROR)
		r = mailimap_space_parse(fd, buffer, &cur);
	if (r == MAILIMAP_NO_ERROR)
		r = mailimap_oparenth_parse(fd, buffer, ctx, &cur);
	while (r == MAILIMAP_NO_ERROR) {
		r = parse_pair(fd, buffer, ctx, &cur, rate, fun, e);
		if (r != MAILIMAP_NO_ERROR)
			break;
		if (mailimap_space_parse(fd, buffer, &cur) != MAILIMAP_NO_ERROR) {
			r = mailimap_cparenth_parse(fd, buffer, ctx, &cur);
			break;
		}
	}
	if (r == MAILIMAP_NO_ERROR)
		*indx = cur;
	return r;
}

static struct mailimap_extension_api metadata_api;

static int metadata_parser(int calling_parser, mailstream *fd, MMAPString *buffer,
			   struct mailimap_parser_context *ctx, size_t *indx,
			   struct mailimap_extension_data **result, size_t rate, progress_function *fun)
{
	struct metadata_entry *e;
	int r;

	if (calling_parser != MAILIMAP_EXTENDED_PARSER_RESPONSE_DATA)
		return MAILIMAP_ERROR_PARSE;
	e = calloc(1, sizeof(*e));
	if (!e)
		return MAILIMAP_ERROR_MEMORY;
	r = parse_response(fd, buffer, ctx, indx, e, rate, fun);
	if (r == MAILIMAP_NO_ERROR) {
		*result = mailimap_extension_data_new(&metadata_api, 0, e);
		if (!*result)
			r = MAILIMAP_ERROR_MEMORY;
	}
	if (r != MAILIMAP_NO_ERROR)
		entry_free(e);
	return r;
}

static void metadata_free(struct mailimap_extension_data *data)
{
	if (!data)
		return;
	entry_free(data->ext_data);
	free(data);
}

static struct mailimap_extension_api metadata_api = {
	.ext_name = "METADATA",
	.ext_id = -1,
	.ext_parser = metadata_parser,
	.ext_free = metadata_free,
};

void imap_metadata_init(void)
{
	mailimap_extension_register(&metadata_api);
}

/* Entry names and mailbox names we send are ours: plain, safe atoms. */
static bool safe_word(const char *s)
{
	for (; *s; s++)
		if (*s <= ' ' || *s == '"' || *s == '\\' || *s == '{' || *s >= 0x7f)
			return false;
	return true;
}

/* Sends "TAG cmd" and reads the response: 0 for OK, -EPERM for NO
 * (refused; the connection stays usable).  libetpan takes a BAD for a
 * protocol error: the session is then dead (-EIO). */
static int metadata_command(struct imap_session *s, const char *cmd, const char *what)
{
	int cond, r = imap_plain_command(s, cmd, &cond);

	if (r != MAILIMAP_NO_ERROR)
		return imap_map_error(s, r, what);
	if (cond == MAILIMAP_RESP_COND_STATE_OK)
		return 0;
	log_warn("session %u: %s refused: %.200s", imap_session_id(s), what, imap_server_text(s));
	return cond == MAILIMAP_RESP_COND_STATE_NO ? -EPERM : -EOPNOTSUPP;
}

int imap_get_metadata(struct imap_session *s, const char *entry, char **value)
{
	char cmd[512];
	int r;

	*value = NULL;
	if (!safe_word(entry) || !imap_has_capability(s, "METADATA"))
		return -EOPNOTSUPP;
	snprintf(cmd, sizeof(cmd), "GETMETADATA \"\" %s", entry);
	r = metadata_command(s, cmd, "GETMETADATA");
	if (r < 0)
		return r == -EPERM ? -EOPNOTSUPP : r; /* not ours to read: keep it locally */
	for (clistiter *it = clist_begin(s->imap->imap_response_info->rsp_extension_list); it;
	     it = clist_next(it)) {
		const struct mailimap_extension_data *d = clist_content(it);
		const struct metadata_entry *e;

		if (d->ext_extension != &metadata_api)
			continue;
		e = d->ext_data;
		if (e->entry && strcasecmp(e->entry, entry) == 0 && e->value) {
			*value = strdup(e->value);
			return *value ? 0 : -ENOMEM;
		}
	}
	return -ENODATA;
}

char *imap_crlf_copy(const char *value, size_t *len)
{
	char *out = malloc(2 * strlen(value) + 1), *o = out;

	if (!out)
		return NULL;
	for (const char *p = value; *p; p++) {
		if (*p == '\n' && (p == value || p[-1] != '\r'))
			*o++ = '\r';
		*o++ = *p;
		if (*p == '\r' && p[1] != '\n')
			*o++ = '\n';
	}
	*o = '\0';
	*len = (size_t)(o - out);
	return out;
}

int imap_set_metadata(struct imap_session *s, const char *entry, const char *value)
{
	char *cmd, *data = NULL;
	size_t len = 0;
	int r;

	if (!safe_word(entry) || !imap_has_capability(s, "METADATA") || !imap_has_capability(s, "LITERAL+"))
		return -EOPNOTSUPP;
	if (value && !(data = imap_crlf_copy(value, &len)))
		return -ENOMEM;
	cmd = malloc(len + strlen(entry) + 64);
	if (!cmd) {
		free(data);
		return -ENOMEM;
	}
	if (data)
		sprintf(cmd, "SETMETADATA \"\" (%s {%zu+}\r\n%s)", entry, len, data);
	else
		sprintf(cmd, "SETMETADATA \"\" (%s NIL)", entry);
	free(data);
	r = metadata_command(s, cmd, "SETMETADATA");
	free(cmd);
	return r;
}

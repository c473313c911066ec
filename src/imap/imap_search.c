/* imap_search.c - owns UID SEARCH with search keys the user wrote: the
 * query checked and turned into a command line (each quoted string or atom
 * with a non-ASCII byte becoming a literal, as a quoted string may not hold
 * 8-bit text), sent with synchronizing literals when the server lacks
 * LITERAL+, and the server's answer checked before its UIDs are handed on. */
#include "imap.h"
#include "imap_p.h"
#include "util/log.h"
#include "util/strbuf.h"
#include "util/utf8.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* libetpan's parser: exported, but in no installed header. */
int mailimap_continue_req_parse(mailstream *fd, MMAPString *buffer, struct mailimap_parser_context *ctx,
				size_t *indx, struct mailimap_continue_req **result, size_t progr_rate,
				progress_function *progr_fun);

/* imap_search_command's answer when the server says NO [BADCHARSET] */
#define SEARCH_BADCHARSET 1

static bool has_8bit(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)p[i] >= 0x80)
			return true;
	return false;
}

static int refuse(char *err, size_t errlen, const char *why)
{
	snprintf(err, errlen, "%s", why);
	return -EINVAL;
}

/* A literal of n bytes at p: the sender waits for the server before the
 * bytes of a synchronizing one. */
static int add_literal(struct strbuf *b, const char *p, size_t n, bool literal_plus,
		       struct imap_search_cmd *cmd)
{
	char head[32];

	snprintf(head, sizeof(head), "{%zu%s}\r\n", n, literal_plus ? "+" : "");
	strbuf_adds(b, head);
	if (!literal_plus) {
		size_t *w = realloc(cmd->waits, (cmd->nwaits + 1) * sizeof(*w));

		if (!w)
			return -ENOMEM;
		cmd->waits = w;
		cmd->waits[cmd->nwaits++] = b->len;
	}
	strbuf_add(b, p, n);
	return 0;
}

/* The quoted string at *p (its opening quote): as it is when it is ASCII,
 * else its content as a literal.  *p moves past the closing quote. */
static int add_quoted(struct strbuf *b, const char **p, bool literal_plus, struct imap_search_cmd *cmd,
		      char *err, size_t errlen)
{
	struct strbuf content = { 0 };
	const char *q = *p + 1;
	int r = 0;

	for (; *q && *q != '"'; q++) {
		if (*q == '\\') {
			q++;
			if (*q != '"' && *q != '\\') {
				strbuf_free(&content);
				return refuse(err, errlen,
					      "in a quoted string, '\\' may only escape '\"' or '\\'");
			}
		}
		strbuf_addc(&content, *q);
	}
	if (!*q) {
		strbuf_free(&content);
		return refuse(err, errlen, "a quoted string is not closed");
	}
	q++;
	if (content.failed)
		r = -ENOMEM;
	else if (has_8bit(content.data, content.len))
		r = add_literal(b, content.data, content.len, literal_plus, cmd);
	else
		strbuf_add(b, *p, (size_t)(q - *p));
	strbuf_free(&content);
	*p = q;
	return r;
}

static int check_query(const char *query, size_t n, char *err, size_t errlen)
{
	if (n > IMAP_SEARCH_QUERY_MAX)
		return refuse(err, errlen, "the query is longer than 1024 bytes");
	if (strspn(query, " ") == n)
		return refuse(err, errlen, "the query is empty");
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)query[i] < 0x20 || query[i] == 0x7f)
			return refuse(err, errlen,
				      "the query holds a line break or another control character");
	if (!utf8_valid(query, n))
		return refuse(err, errlen, "the query is not valid UTF-8");
	return 0;
}

int imap_search_command(const char *query, bool charset, bool literal_plus, struct imap_search_cmd *cmd,
			char *err, size_t errlen)
{
	struct strbuf b = { 0 };
	size_t n = strlen(query);
	const char *p = query;
	int r;

	memset(cmd, 0, sizeof(*cmd));
	if ((r = check_query(query, n, err, errlen)) < 0)
		return r;
	cmd->ascii = !has_8bit(query, n);
	strbuf_adds(&b, charset ? "UID SEARCH CHARSET UTF-8 " : "UID SEARCH ");
	while (*p && r == 0) {
		size_t run;

		if (*p == '"') {
			r = add_quoted(&b, &p, literal_plus, cmd, err, errlen);
		} else if (*p == ' ' || *p == '(' || *p == ')') {
			strbuf_addc(&b, *p++);
		} else if (*p == '{') {
			/* the server would wait for the literal's bytes */
			r = refuse(err, errlen, "'{' may only appear inside a quoted string");
		} else {
			run = strcspn(p, " ()\"{");
			if (has_8bit(p, run))
				r = add_literal(&b, p, run, literal_plus, cmd);
			else
				strbuf_add(&b, p, run);
			p += run;
		}
	}
	if (r == 0 && b.failed)
		r = -ENOMEM;
	if (r == 0) {
		cmd->len = b.len;
		cmd->text = strbuf_take(&b);
		r = cmd->text ? 0 : -ENOMEM;
	}
	strbuf_free(&b);
	if (r < 0)
		imap_search_cmd_free(cmd);
	return r;
}

void imap_search_cmd_free(struct imap_search_cmd *cmd)
{
	free(cmd->text);
	free(cmd->waits);
	memset(cmd, 0, sizeof(*cmd));
}

/* Flushes what was sent and waits for the "+" of a synchronizing literal:
 * 0, or 1 when the server answered the command instead (the answer is in
 * libetpan's buffer, to be parsed as the response), or a libetpan code. */
static int await_continuation(mailimap *imap)
{
	struct mailimap_continue_req *cont = NULL;
	size_t indx = 0;
	int r;

	if (mailstream_flush(imap->imap_stream) == -1 || !mailimap_read_line(imap))
		return MAILIMAP_ERROR_STREAM;
	r = mailimap_continue_req_parse(imap->imap_stream, imap->imap_stream_buffer, NULL, &indx, &cont,
					imap->imap_progr_rate, imap->imap_progr_fun);
	if (r == MAILIMAP_NO_ERROR) {
		mailimap_continue_req_free(cont);
		return 0;
	}
	return r == MAILIMAP_ERROR_PARSE ? 1 : r;
}

/* Sends "TAG " cmd CRLF, waiting at each synchronizing literal, and parses
 * the response.  A libetpan code; with MAILIMAP_NO_ERROR *resp (the
 * caller frees it) is tagged. */
static int send_command(struct imap_session *s, const struct imap_search_cmd *cmd,
			struct mailimap_response **resp)
{
	mailimap *imap = s->imap;
	size_t at = 0;
	bool answered = false;
	int r = mailimap_send_current_tag(imap);

	for (size_t i = 0; r == MAILIMAP_NO_ERROR && !answered && i <= cmd->nwaits; i++) {
		size_t end = i < cmd->nwaits ? cmd->waits[i] : cmd->len;

		if (mailstream_write(imap->imap_stream, cmd->text + at, end - at) < 0)
			r = MAILIMAP_ERROR_STREAM;
		at = end;
		if (r == MAILIMAP_NO_ERROR && i < cmd->nwaits) {
			r = await_continuation(imap);
			answered = r == 1;
			if (answered)
				r = MAILIMAP_NO_ERROR;
		}
	}
	/* answered: the server ended the command at a literal, its line read */
	return r == MAILIMAP_NO_ERROR ? imap_finish_command(imap, answered, resp) : r;
}

/* The UIDs of the SEARCH responses, checked: a result naming UID 0 or a
 * UID twice comes from a broken server, and is not passed on. */
static int take_uids(struct imap_session *s, uint32_t **uids, size_t *count)
{
	const struct mailimap_response_info *ri = s->imap->imap_response_info;
	clist *list = ri ? ri->rsp_search_result : NULL;
	size_t n = 0, total = list ? (size_t)clist_count(list) : 0;
	uint32_t *out;

	if (total == 0)
		return 0;
	if (total > IMAP_SEARCH_UIDS_MAX) {
		log_warn("session %u: UID SEARCH answered %zu UIDs, more than %u", s->id, total,
			 IMAP_SEARCH_UIDS_MAX);
		return -EIO;
	}
	if (!(out = malloc(total * sizeof(*out))))
		return -ENOMEM;
	for (clistiter *it = clist_begin(list); it; it = clist_next(it))
		out[n++] = *(const uint32_t *)clist_content(it);
	qsort(out, n, sizeof(*out), imap_cmp_uid);
	for (size_t i = 0; i < n; i++) {
		if (out[i] == 0 || (i > 0 && out[i] == out[i - 1])) {
			log_warn("session %u: UID SEARCH answered %s", s->id,
				 out[i] == 0 ? "UID 0" : "a UID twice");
			free(out);
			return -EIO;
		}
	}
	*uids = out;
	*count = n;
	return 0;
}

/* After a BAD: libetpan cannot tell it from a response whose tag was not
 * ours; a NOOP answered in order shows the session is still in step (and
 * fails it otherwise). */
static void check_in_step(struct imap_session *s)
{
	int r = mailimap_noop(s->imap);

	if (r != MAILIMAP_NO_ERROR)
		imap_map_error(s, r, "NOOP after a refused UID SEARCH");
}

/* One UID SEARCH: 0 with the UIDs, SEARCH_BADCHARSET, or -errno. */
static int run_search(struct imap_session *s, const struct imap_search_cmd *cmd, uint32_t **uids,
		      size_t *count, char *err, size_t errlen)
{
	struct mailimap_response *resp = NULL;
	const struct mailimap_resp_text_code *code;
	bool badcharset;
	int cond, r;

	r = send_command(s, cmd, &resp);
	if (r == MAILIMAP_ERROR_PROTOCOL) {
		snprintf(err, errlen, "%.200s", imap_server_text(s));
		log_debug("session %u: UID SEARCH refused as malformed: %.200s", s->id, imap_server_text(s));
		check_in_step(s);
		return -EINVAL;
	}
	if (r != MAILIMAP_NO_ERROR)
		return imap_map_error(s, r, "UID SEARCH");
	cond = resp->rsp_resp_done->rsp_data.rsp_tagged->rsp_cond_state->rsp_type;
	code = resp->rsp_resp_done->rsp_data.rsp_tagged->rsp_cond_state->rsp_text->rsp_code;
	/* libetpan keeps no [BADCHARSET] without a charset list: its type is
	 * seen only here */
	badcharset = code && code->rc_type == MAILIMAP_RESP_TEXT_CODE_BADCHARSET;
	mailimap_response_free(resp);
	if (cond == MAILIMAP_RESP_COND_STATE_OK)
		return take_uids(s, uids, count);
	if (badcharset)
		return SEARCH_BADCHARSET;
	snprintf(err, errlen, "%.200s", imap_server_text(s));
	log_warn("session %u: UID SEARCH refused: %.200s", s->id, imap_server_text(s));
	return imap_refusal_errno(imap_response_code(s), imap_server_text(s));
}

int imap_search(struct imap_session *s, const char *query, uint32_t **uids, size_t *count, char *err,
		size_t errlen)
{
	struct imap_search_cmd cmd;
	bool literal_plus = imap_has_capability(s, "LITERAL+") || imap_has_capability(s, "LITERAL-");
	int r;

	*uids = NULL;
	*count = 0;
	if (errlen)
		err[0] = '\0';
	if (!s->selected)
		return -EBADF;
	r = imap_search_command(query, true, literal_plus, &cmd, err, errlen);
	if (r < 0)
		return r;
	r = run_search(s, &cmd, uids, count, err, errlen);
	if (r == SEARCH_BADCHARSET && cmd.ascii) {
		/* a server knowing no UTF-8 can still search for ASCII */
		log_debug("session %u: no CHARSET UTF-8 here: searching without", s->id);
		imap_search_cmd_free(&cmd);
		r = imap_search_command(query, false, literal_plus, &cmd, err, errlen);
		if (r == 0)
			r = run_search(s, &cmd, uids, count, err, errlen);
	}
	if (r == SEARCH_BADCHARSET) {
		snprintf(err, errlen, "the server cannot search for non-ASCII text: %.200s",
			 imap_server_text(s));
		log_warn("session %u: UID SEARCH with non-ASCII text refused: %.200s", s->id,
			 imap_server_text(s));
		r = -EOPNOTSUPP;
	}
	imap_search_cmd_free(&cmd);
	return r;
}

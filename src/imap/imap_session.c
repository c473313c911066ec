/* imap_session.c - owns one libetpan session: connecting (through tls.c),
 * STARTTLS, authentication, the capabilities, COMPRESS (through compress.c)
 * and ENABLE QRESYNC that follow login, the limits of each operation, what the session knows of the folder
 * it has selected, the sending of a command line libetpan cannot send
 * itself, and the one switch where libetpan's result codes become errno
 * (imap_map_error).  The command files (imap_read.c, imap_write.c,
 * imap_sync.c, ...) build on this one; it calls none of them. */
#include "imap.h"
#include "imap_p.h"
#include "util/log.h"
#include "compress.h"
#include "tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <libetpan/libetpan.h>

/* libetpan's senders: exported, but in no installed header. */
int mailimap_token_send(mailstream *fd, const char *atom);
int mailimap_crlf_send(mailstream *fd);

static unsigned next_session_id;
/* -o compress: what was said about it, once per process */
static bool told_compress, told_no_compress;

/* libetpan's read buffer.  Every line or literal it takes out of the
 * buffer moves the rest of the buffer to the front: with 256 KiB, a
 * listing's FETCH of 10,000 short responses spent a fifth of the cold
 * `ls -l` in memmove.  A literal larger than the buffer (a message body)
 * is read straight into its destination, so a small buffer costs bodies
 * nothing; 16 KiB is also what one TLS record holds. */
#define STREAM_BUFFER (16 * 1024)

bool imap_dead(const struct imap_session *s)
{
	return s->dead;
}

static mailstream_low *low_of(const struct imap_session *s)
{
	return s->imap && s->imap->imap_stream ? mailstream_get_low(s->imap->imap_stream) : NULL;
}

/* tls.c's stream: the operation's limits and its failures live there */
static mailstream_low *transport_of(const struct imap_session *s)
{
	return compress_stream_below(low_of(s));
}

bool imap_input_buffered(const struct imap_session *s)
{
	return s->imap->imap_stream->read_buffer_len != 0 || compress_stream_pending(low_of(s)) ||
	       tls_stream_holds_input(transport_of(s));
}

void imap_limit_operation(struct imap_session *s, int seconds)
{
	s->op_seconds = seconds;
	tls_stream_limit(transport_of(s), IMAP_OPERATION_BYTES, seconds);
}

void imap_renew_operation(struct imap_session *s)
{
	imap_limit_operation(s, s->op_seconds);
}

void imap_allow(struct imap_session *s, uint64_t bytes)
{
	/* a transfer that big may take a while: at least 16 KiB/s */
	tls_stream_allow(transport_of(s), bytes, (int)(bytes / 16384));
}

bool imap_timed_out(const struct imap_session *s)
{
	return s->timed_out;
}

bool imap_parse_failed(const struct imap_session *s)
{
	return s->parse_error;
}

unsigned imap_session_id(const struct imap_session *s)
{
	return s->id;
}

const char *imap_selected(const struct imap_session *s)
{
	return s->selected;
}

const char *imap_server_text(const struct imap_session *s)
{
	return s->imap && s->imap->imap_response ? s->imap->imap_response : "no response";
}

const char *imap_response_code(const struct imap_session *s)
{
	const struct mailimap_response_info *ri = s->imap ? s->imap->imap_response_info : NULL;

	if (!ri)
		return NULL;
	if (ri->rsp_atom && *ri->rsp_atom)
		return ri->rsp_atom;
	return ri->rsp_trycreate ? "TRYCREATE" : NULL;
}

/* The single place where libetpan codes become errno. */
int imap_map_error(struct imap_session *s, int r, const char *what)
{
	switch (r) {
	case MAILIMAP_NO_ERROR:
	case MAILIMAP_NO_ERROR_AUTHENTICATED:
	case MAILIMAP_NO_ERROR_NON_AUTHENTICATED:
		return 0;
	case MAILIMAP_ERROR_STREAM:
	case MAILIMAP_ERROR_PARSE:
	case MAILIMAP_ERROR_FATAL:
	case MAILIMAP_ERROR_PROTOCOL:
	case MAILIMAP_ERROR_SSL:
	case MAILIMAP_ERROR_CONNECTION_REFUSED:
		if (tls_stream_timed_out(transport_of(s)))
			s->timed_out = true;
		if (!s->dead)
			log_warn("session %u: %s failed: %s (libetpan error %d)", s->id, what,
				 s->timed_out ? "the server stopped answering (or took too long)"
				 : compress_stream_failure(low_of(s)) ? compress_stream_failure(low_of(s))
				 : tls_stream_over_budget(transport_of(s))
					 ? "the server sent more than one request may take"
				 : r == MAILIMAP_ERROR_PARSE ? "unparsable response"
							     : "connection lost",
				 r);
		s->dead = true;
		if (r == MAILIMAP_ERROR_PARSE)
			s->parse_error = true;
		return -EIO;
	case MAILIMAP_ERROR_MEMORY:
		/* the stream is mid-response: it cannot be reused */
		s->dead = true;
		return -ENOMEM;
	default:
		log_warn("session %u: %s refused: %.200s", s->id, what, imap_server_text(s));
		return -EIO;
	}
}

bool imap_has_capability(struct imap_session *s, const char *name)
{
	return mailimap_has_extension(s->imap, (char *)name) != 0;
}

/* CAPABILITY, timed: the shortest round trip is kept in s->rtt_us (for
 * -o compress=auto). */
static int refresh_capabilities(struct imap_session *s)
{
	struct mailimap_capability_data *caps = NULL;
	struct timespec t0, t1;
	long long us;
	int r;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	r = mailimap_capability(s->imap, &caps);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	us = (long long)(t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000;
	if (r == MAILIMAP_NO_ERROR) {
		mailimap_capability_data_free(caps);
		if (us >= 0 && (!s->rtt_us || (unsigned long long)us < s->rtt_us))
			s->rtt_us = us > 0 && us < (long long)UINT32_MAX ? (unsigned)us : 1;
	}
	return imap_map_error(s, r, "CAPABILITY");
}

int imap_finish_command(mailimap *imap, bool line_read, struct mailimap_response **resp)
{
	int r = MAILIMAP_NO_ERROR;

	if (!line_read) {
		r = mailimap_crlf_send(imap->imap_stream);
		if (r == MAILIMAP_NO_ERROR && mailstream_flush(imap->imap_stream) == -1)
			r = MAILIMAP_ERROR_STREAM;
		if (r == MAILIMAP_NO_ERROR && !mailimap_read_line(imap))
			r = MAILIMAP_ERROR_STREAM;
	}
	if (r == MAILIMAP_NO_ERROR)
		r = mailimap_parse_response(imap, resp);
	if (r == MAILIMAP_NO_ERROR &&
	    (!(*resp)->rsp_resp_done || (*resp)->rsp_resp_done->rsp_type != MAILIMAP_RESP_DONE_TYPE_TAGGED)) {
		mailimap_response_free(*resp);
		*resp = NULL;
		r = MAILIMAP_ERROR_FATAL; /* BYE */
	}
	return r;
}

int imap_plain_command(struct imap_session *s, const char *command, int *cond)
{
	mailimap *imap = s->imap;
	struct mailimap_response *resp = NULL;
	int r;

	r = mailimap_send_current_tag(imap);
	if (r == MAILIMAP_NO_ERROR)
		r = mailimap_token_send(imap->imap_stream, command);
	if (r == MAILIMAP_NO_ERROR)
		r = imap_finish_command(imap, false, &resp);
	if (r != MAILIMAP_NO_ERROR)
		return r;
	*cond = resp->rsp_resp_done->rsp_data.rsp_tagged->rsp_cond_state->rsp_type;
	mailimap_response_free(resp);
	return MAILIMAP_NO_ERROR;
}

/* STARTTLS by hand rather than mailimap_starttls, to be sure (whatever
 * libetpan's version or patches) that nothing the server sent after its
 * answer is read later as if it had come through TLS (CVE-2020-15953). */
static int starttls_command(struct imap_session *s, const char *host, char *err, size_t errlen)
{
	int cond, r = imap_plain_command(s, "STARTTLS", &cond);

	if (r != MAILIMAP_NO_ERROR) {
		snprintf(err, errlen, "STARTTLS with %s failed: %s", host,
			 r == MAILIMAP_ERROR_PROTOCOL ? "the server refused it" : "connection lost");
		s->dead = true;
		return -EPROTO;
	}
	if (s->imap->imap_stream->read_buffer_len != 0) {
		snprintf(err, errlen,
			 "%s sent more after its answer to STARTTLS, before TLS began: "
			 "refusing to continue (an attempt to inject responses into the encrypted "
			 "session?)",
			 host);
		s->dead = true;
		return -EPROTO;
	}
	if (cond != MAILIMAP_RESP_COND_STATE_OK) {
		snprintf(err, errlen, "STARTTLS with %s refused: %.200s", host, imap_server_text(s));
		s->dead = true;
		return -EPROTO;
	}
	return 0;
}

static int start_tls(struct imap_session *s, const struct imap_account *a, char *err, size_t errlen)
{
	mailstream_low *old, *low;

	if (refresh_capabilities(s) < 0 || !imap_has_capability(s, "STARTTLS")) {
		snprintf(err, errlen,
			 "%s does not offer STARTTLS; refusing to continue unencrypted "
			 "(use imaps:// or, on a trusted network only, -o plaintext)",
			 a->host);
		return -EPROTO;
	}
	if (starttls_command(s, a->host, err, errlen) < 0)
		return -EPROTO;
	old = mailstream_get_low(s->imap->imap_stream);
	low = tls_stream_new(mailstream_low_get_fd(old), a->tls, a->host, a->timeout,
			     IMAP_OPERATION_SECONDS(a->timeout), err, errlen);
	if (!low)
		return -EPROTO;
	mailstream_low_free(old); /* frees the wrapper only; fd now belongs to low */
	tls_stream_limit(low, IMAP_OPERATION_BYTES, IMAP_OPERATION_SECONDS(a->timeout));
	mailstream_set_low(s->imap->imap_stream, low);
	return refresh_capabilities(s) < 0 ? -EIO : 0;
}

static int authenticate(struct imap_session *s, const struct imap_account *a, char *err, size_t errlen)
{
	int r;

	if (imap_has_capability(s, "AUTH=PLAIN"))
		r = mailimap_authenticate(s->imap, "PLAIN", a->host, NULL, NULL, a->user, a->user,
					  a->password, NULL);
	else if (!imap_has_capability(s, "LOGINDISABLED"))
		r = mailimap_login(s->imap, a->user, a->password);
	else {
		snprintf(err, errlen, "%s allows neither AUTHENTICATE PLAIN nor LOGIN here", a->host);
		return -EACCES;
	}
	if (r == MAILIMAP_NO_ERROR)
		return 0;
	if (r == MAILIMAP_ERROR_LOGIN) {
		snprintf(err, errlen, "login as %s refused by %s: %.200s (check the user name and password)",
			 a->user, a->host, imap_server_text(s));
		return -EACCES;
	}
	snprintf(err, errlen, "login to %s failed: connection lost", a->host);
	s->dead = true;
	return -EIO;
}

static int connect_stream(struct imap_session *s, const struct imap_account *a, char *err, size_t errlen)
{
	mailstream_low *low;
	mailstream *stream;
	int fd, r;

	fd = tls_tcp_connect(a->host, a->port, a->timeout, err, errlen);
	if (fd < 0)
		return -EHOSTUNREACH;
	low = tls_stream_new(fd, a->security == IMAP_SECURITY_TLS ? a->tls : NULL, a->host, a->timeout,
			     IMAP_OPERATION_SECONDS(a->timeout), err, errlen);
	if (!low) {
		close(fd);
		return -EPROTO;
	}
	/* the greeting and the login */
	tls_stream_limit(low, IMAP_OPERATION_BYTES, IMAP_OPERATION_SECONDS(a->timeout));
	stream = mailstream_new(low, STREAM_BUFFER);
	if (!stream) {
		mailstream_low_close(low);
		mailstream_low_free(low);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	r = mailimap_connect(s->imap, stream);
	if (r != MAILIMAP_NO_ERROR_NON_AUTHENTICATED && r != MAILIMAP_NO_ERROR_AUTHENTICATED) {
		snprintf(err, errlen,
			 "%s did not greet as an IMAP server (is the port right? for "
			 "a TLS-only port use imaps://)",
			 a->host);
		s->dead = true;
		return -EPROTO;
	}
	if (r == MAILIMAP_NO_ERROR_AUTHENTICATED && a->security == IMAP_SECURITY_STARTTLS) {
		/* STARTTLS is impossible once authenticated, and anyone on the path
		 * can send this greeting: RFC 9051 says to close the connection */
		snprintf(err, errlen,
			 "%s greeted with PREAUTH before STARTTLS: refusing to continue "
			 "unencrypted (use imaps:// or, on a trusted network only, -o plaintext)",
			 a->host);
		s->dead = true;
		return -EPROTO;
	}
	return r == MAILIMAP_NO_ERROR_AUTHENTICATED ? 1 : 0;
}

bool imap_compress_wanted(enum imap_compress mode, bool loopback, unsigned rtt_us)
{
	switch (mode) {
	case IMAP_COMPRESS_YES:
		return true;
	case IMAP_COMPRESS_NO:
		return false;
	default:
		return !loopback && rtt_us >= IMAP_COMPRESS_RTT_US;
	}
}

/* true the first time only, over all threads */
static bool first_time(bool *told)
{
	return !__atomic_exchange_n(told, true, __ATOMIC_RELAXED);
}

/* compress.c charges what it inflates beyond what crossed the wire to the
 * operation's budget in tls.c */
static bool charge_transport(mailstream_low *below, uint64_t bytes, void *ctx)
{
	(void)ctx;
	return tls_stream_charge(below, bytes);
}

/* COMPRESS DEFLATE (RFC 4978) when a->compress and the link say so, and the
 * server offers it; then every byte goes through compress.c.  0 also when
 * it is not done (not wanted, not offered, refused); -errno with err set
 * when the connection cannot go on. */
static int start_compression(struct imap_session *s, const struct imap_account *a, char *err, size_t errlen)
{
	mailstream_low *low = low_of(s), *deflated;
	bool loopback = tls_stream_peer_is_loopback(low);
	double ms = s->rtt_us / 1000.0;
	int cond, r;

	if (!imap_compress_wanted(a->compress, loopback, s->rtt_us)) {
		log_debug("session %u: not compressing (%s; round trip %.2f ms)", s->id,
			  a->compress == IMAP_COMPRESS_NO ? "-o compress=no"
			  : loopback                      ? "loopback"
							  : "a short round trip",
			  ms);
		return 0;
	}
	if (!imap_has_capability(s, "COMPRESS=DEFLATE")) {
		if (a->compress == IMAP_COMPRESS_YES && first_time(&told_no_compress))
			log_info("-o compress=yes: %s does not offer COMPRESS=DEFLATE; the connections "
				 "stay uncompressed",
				 a->host);
		return 0;
	}
	r = imap_plain_command(s, "COMPRESS DEFLATE", &cond);
	if (r == MAILIMAP_ERROR_PROTOCOL || (r == MAILIMAP_NO_ERROR && cond != MAILIMAP_RESP_COND_STATE_OK)) {
		/* a BAD or NO: the server goes on uncompressed */
		if (first_time(&told_no_compress))
			log_info("%s refused COMPRESS DEFLATE: %.200s; the connections stay uncompressed",
				 a->host, imap_server_text(s));
		return 0;
	}
	if (r != MAILIMAP_NO_ERROR) {
		snprintf(err, errlen, "COMPRESS with %s failed: connection lost", a->host);
		s->dead = true;
		return -EIO;
	}
	/* what libetpan read past the OK came before the inflater: it would be
	 * taken as plain text (as with STARTTLS, refuse rather than guess) */
	if (s->imap->imap_stream->read_buffer_len != 0) {
		snprintf(err, errlen,
			 "%s sent more after its answer to COMPRESS, before compression began: "
			 "refusing to continue",
			 a->host);
		s->dead = true;
		return -EIO; /* a broken server, like any dead connection */
	}
	deflated = compress_stream_new(low, charge_transport, NULL);
	if (!deflated) {
		snprintf(err, errlen, "out of memory");
		s->dead = true;
		return -ENOMEM;
	}
	mailstream_set_low(s->imap->imap_stream, deflated);
	s->compressed = true;
	if (first_time(&told_compress))
		log_info("compressing the connections to %s (COMPRESS=DEFLATE; round trip %.2f ms%s)",
			 a->host, ms, a->compress == IMAP_COMPRESS_YES ? ", -o compress=yes" : "");
	else
		log_debug("session %u: compressing (round trip %.2f ms)", s->id, ms);
	return 0;
}

/* QRESYNC (RFC 7162): a resync learns which UIDs vanished without listing
 * every UID.  Expunges then arrive as VANISHED, which libetpan parses.
 * 0 also when the server refuses it (the session resyncs without it). */
static int enable_qresync(struct imap_session *s)
{
	struct mailimap_capability_data *want, *got = NULL;
	struct mailimap_capability *cap;
	clist *list = clist_new();
	char *name = strdup("QRESYNC");
	int r;

	cap = name ? mailimap_capability_new(MAILIMAP_CAPABILITY_NAME, NULL, name) : NULL;
	if (!list || !cap || clist_append(list, cap) < 0) {
		if (cap)
			mailimap_capability_free(cap);
		else
			free(name);
		if (list)
			clist_free(list);
		return -ENOMEM;
	}
	want = mailimap_capability_data_new(list);
	if (!want) {
		mailimap_capability_free(cap);
		clist_free(list);
		return -ENOMEM;
	}
	r = mailimap_enable(s->imap, want, &got);
	mailimap_capability_data_free(want);
	if (r == MAILIMAP_NO_ERROR) {
		mailimap_capability_data_free(got);
		s->qresync = true;
		return 0;
	}
	r = imap_map_error(s, r, "ENABLE QRESYNC");
	return s->dead ? r : 0; /* refused: resync without it */
}

int imap_open(const struct imap_account *a, struct imap_session **out, char *err, size_t errlen)
{
	struct imap_session *s = calloc(1, sizeof(*s));
	int r = -ENOMEM;

	*out = NULL;
	if (!s || !(s->imap = mailimap_new(0, NULL))) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	s->id = __atomic_add_fetch(&next_session_id, 1, __ATOMIC_RELAXED);
	if (log_debug_enabled() && (s->trace = imap_trace_new(s->id)))
		mailimap_set_logger(s->imap, imap_trace_logger, s->trace);
	r = connect_stream(s, a, err, errlen);
	if (r < 0)
		goto fail;
	if (r == 0 && a->security == IMAP_SECURITY_STARTTLS && (r = start_tls(s, a, err, errlen)) < 0)
		goto fail;
	if (r == 0) {
		if (refresh_capabilities(s) < 0) {
			snprintf(err, errlen, "%s closed the connection", a->host);
			r = -EIO;
			goto fail;
		}
		if ((r = authenticate(s, a, err, errlen)) < 0)
			goto fail;
	}
	/* capabilities can change after login */
	if ((r = refresh_capabilities(s)) < 0) {
		snprintf(err, errlen, "%s closed the connection after login", a->host);
		goto fail;
	}
	if ((r = start_compression(s, a, err, errlen)) < 0)
		goto fail;
	if (imap_has_capability(s, "QRESYNC") && (r = enable_qresync(s)) < 0) {
		snprintf(err, errlen, "%s closed the connection after ENABLE", a->host);
		goto fail;
	}
	log_debug("session %u: logged in to %s", s->id, a->host);
	*out = s;
	return 0;
fail:
	if (s)
		s->dead = true;
	imap_close(s);
	return r < 0 ? r : -EIO;
}

void imap_abort_waits(void)
{
	tls_abort_waits();
}

void imap_close(struct imap_session *s)
{
	if (!s)
		return;
	if (s->imap) {
		if (s->compressed && log_debug_enabled()) {
			struct compress_counts c;

			compress_stream_counts(low_of(s), &c);
			log_debug("session %u: read %llu bytes (%llu on the wire), wrote %llu (%llu on the "
				  "wire)",
				  s->id, (unsigned long long)c.plain_in, (unsigned long long)c.wire_in,
				  (unsigned long long)c.plain_out, (unsigned long long)c.wire_out);
		}
		if (!s->dead && s->imap->imap_stream)
			mailimap_logout(s->imap);
		if (s->imap->imap_stream) {
			mailstream_close(s->imap->imap_stream);
			s->imap->imap_stream = NULL;
		}
		mailimap_free(s->imap);
	}
	imap_trace_free(s->trace);
	free(s->selected);
	free(s);
}

void imap_read_state(struct imap_session *s, struct imap_folder_state *state)
{
	const struct mailimap_selection_info *si = s->imap->imap_selection_info;

	if (si) {
		s->state.exists = si->sel_exists;
		if (si->sel_uidvalidity)
			s->state.uidvalidity = si->sel_uidvalidity;
		if (si->sel_uidnext)
			s->state.uidnext = si->sel_uidnext;
	}
	if (state)
		*state = s->state;
}

void imap_forget_selection(struct imap_session *s)
{
	free(s->selected);
	s->selected = NULL;
	memset(&s->state, 0, sizeof(s->state));
}

/* tls.c - owns sockets and TLS: connect with deadline, OpenSSL handshake and
 * verification, and the mailstream_low driver libetpan reads and writes
 * through.  libetpan treats a 0 return from read/write as "try again", so this
 * driver returns -1 on EOF, timeout and error, never 0. */
#include "tls.h"
#include "util/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

/* What OpenSSL may read from the socket ahead of the records asked for. */
#define TLS_READ_AHEAD (64 * 1024)

struct stream {
	int fd;
	SSL *ssl;           /* NULL for plain TCP */
	int cancel_pipe[2]; /* written by cancel(): wakes any wait */
	bool timed_out;     /* a wait ran out: the peer stopped answering */
	/* the current operation's limits, so a hostile or broken server cannot
	 * keep a request busy (trickling) or grow memory (endless responses) */
	uint64_t budget;          /* bytes it may still read */
	struct timespec deadline; /* monotonic; zero: none */
	bool over_budget;
};

/* Milliseconds to the operation's deadline (<= 0: passed; LONG_MAX: none). */
static long ms_left(const struct stream *st)
{
	struct timespec now;

	if (!st->deadline.tv_sec && !st->deadline.tv_nsec)
		return LONG_MAX;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long)(st->deadline.tv_sec - now.tv_sec) * 1000 +
	       (st->deadline.tv_nsec - now.tv_nsec) / 1000000;
}

static int timeout_ms(mailstream_low *low)
{
	long s = low->timeout ? (long)low->timeout : (long)mailstream_network_delay.tv_sec;

	return (int)(s > 0 ? s * 1000 : 30000);
}

/* Every wait of every stream also watches this pipe: a byte in it (never
 * read back) ends them all, at once and from then on (tls_abort_waits). */
static int abort_pipe[2] = { -1, -1 };
static pthread_once_t abort_once = PTHREAD_ONCE_INIT;

static void abort_pipe_init(void)
{
	if (pipe(abort_pipe) == 0) {
		fcntl(abort_pipe[0], F_SETFD, FD_CLOEXEC);
		fcntl(abort_pipe[1], F_SETFD, FD_CLOEXEC);
		fcntl(abort_pipe[1], F_SETFL, O_NONBLOCK);
	}
}

static int abort_fd(void)
{
	pthread_once(&abort_once, abort_pipe_init);
	return abort_pipe[0];
}

void tls_abort_waits(void)
{
	char c = 1;

	pthread_once(&abort_once, abort_pipe_init);
	if (abort_pipe[1] >= 0 && write(abort_pipe[1], &c, 1) < 0)
		log_warn("cannot end the network waits: %s", strerror(errno));
}

/* Waits for fd readiness or cancellation; 0 when ready, -1 otherwise. */
static int wait_fd(struct stream *st, short events, int ms)
{
	struct pollfd pfd[3] = {
		{ .fd = st->fd, .events = events },
		{ .fd = st->cancel_pipe[0], .events = POLLIN },
		{ .fd = abort_fd(), .events = POLLIN },
	};

	for (;;) {
		long left = ms_left(st);
		int r;

		if (left <= 0) {
			st->timed_out = true;
			return -1;
		}
		r = poll(pfd, 3, left < ms ? (int)left : ms);

		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0)
			st->timed_out = true;
		if (r <= 0)
			return -1;
		if (pfd[1].revents || pfd[2].revents)
			return -1;
		return 0;
	}
}

/* One I/O helper for both directions: wbuf != NULL means writing. */
static ssize_t plain_io(struct stream *st, void *rbuf, const void *wbuf, size_t len, int ms)
{
	bool writing = wbuf != NULL;

	for (;;) {
		ssize_t n = writing ? send(st->fd, wbuf, len, MSG_NOSIGNAL | MSG_DONTWAIT)
				    : recv(st->fd, rbuf, len, MSG_DONTWAIT);

		if (n > 0)
			return n;
		if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
			return -1;
		if (errno != EINTR && wait_fd(st, writing ? POLLOUT : POLLIN, ms) < 0)
			return -1;
	}
}

/* After a read: more of what OpenSSL already holds (read-ahead takes in
 * every record the socket has, and a read returns one record, which
 * Dovecot makes about 2 KB), without waiting.  A partial record held is
 * left for the next read. */
static ssize_t ssl_read_held(struct stream *st, char *rbuf, size_t got, size_t len)
{
	while (got < len && SSL_has_pending(st->ssl)) {
		size_t room = len - got;
		int n = SSL_read(st->ssl, rbuf + got, room > INT32_MAX ? INT32_MAX : (int)room);

		if (n <= 0) {
			/* seen again by the next read, which reports it */
			ERR_clear_error();
			break;
		}
		got += (size_t)n;
	}
	return (ssize_t)got;
}

static ssize_t ssl_io(struct stream *st, void *rbuf, const void *wbuf, size_t len, int ms)
{
	int chunk = len > INT32_MAX ? INT32_MAX : (int)len;

	for (;;) {
		int n = wbuf ? SSL_write(st->ssl, wbuf, chunk) : SSL_read(st->ssl, rbuf, chunk);

		if (n > 0)
			return wbuf ? n : ssl_read_held(st, rbuf, (size_t)n, len);
		switch (SSL_get_error(st->ssl, n)) {
		case SSL_ERROR_WANT_READ:
			if (wait_fd(st, POLLIN, ms) < 0)
				return -1;
			break;
		case SSL_ERROR_WANT_WRITE:
			if (wait_fd(st, POLLOUT, ms) < 0)
				return -1;
			break;
		default:
			ERR_clear_error();
			return -1;
		}
	}
}

static ssize_t drv_read(mailstream_low *low, void *buf, size_t len)
{
	struct stream *st = low->data;
	ssize_t n;

	if (ms_left(st) <= 0) {
		st->timed_out = true;
		return -1;
	}
	n = st->ssl ? ssl_io(st, buf, NULL, len, timeout_ms(low))
		    : plain_io(st, buf, NULL, len, timeout_ms(low));
	if (n > 0 && (uint64_t)n > st->budget) {
		st->over_budget = true;
		return -1;
	}
	if (n > 0)
		st->budget -= (uint64_t)n;
	return n;
}

static ssize_t drv_write(mailstream_low *low, const void *buf, size_t len)
{
	struct stream *st = low->data;
	return st->ssl ? ssl_io(st, NULL, buf, len, timeout_ms(low))
		       : plain_io(st, NULL, buf, len, timeout_ms(low));
}

static int drv_close(mailstream_low *low)
{
	struct stream *st = low->data;

	if (st->ssl) {
		/* a quiet shutdown: never block on a dead peer */
		SSL_set_quiet_shutdown(st->ssl, 1);
		SSL_free(st->ssl);
		st->ssl = NULL;
	}
	if (st->fd >= 0)
		close(st->fd);
	st->fd = -1;
	return 0;
}

static int drv_get_fd(mailstream_low *low)
{
	return ((struct stream *)low->data)->fd;
}

static void drv_free(mailstream_low *low)
{
	struct stream *st = low->data;

	if (st->ssl)
		SSL_free(st->ssl);
	close(st->cancel_pipe[0]);
	close(st->cancel_pipe[1]);
	free(st);
	free(low);
}

static void drv_cancel(mailstream_low *low)
{
	struct stream *st = low->data;
	char c = 1;

	if (write(st->cancel_pipe[1], &c, 1) < 0)
		log_debug("cancel pipe full");
}

static mailstream_low_driver stream_driver = {
	.mailstream_read = drv_read,
	.mailstream_write = drv_write,
	.mailstream_close = drv_close,
	.mailstream_get_fd = drv_get_fd,
	.mailstream_free = drv_free,
	.mailstream_cancel = drv_cancel,
};

SSL_CTX *tls_ctx_new(const char *ca_file, bool verify, char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (!ctx) {
		snprintf(err, errlen, "cannot create a TLS context");
		return NULL;
	}
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
		snprintf(err, errlen, "cannot require TLS 1.2 or later");
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	/* records come about 2 KB each (Dovecot): read whatever the socket
	 * holds at once, not a 5-byte header and then the record, two system
	 * calls per 2 KB (a cold listing of 10,000 messages made 1,500) */
	SSL_CTX_set_read_ahead(ctx, 1);
	SSL_CTX_set_default_read_buffer_len(ctx, TLS_READ_AHEAD);
	if (ca_file) {
		if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
			snprintf(err, errlen, "cannot load CA certificates from %s", ca_file);
			SSL_CTX_free(ctx);
			return NULL;
		}
	} else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
		snprintf(err, errlen, "cannot load the system's trusted certificates");
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_verify(ctx, verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
	return ctx;
}

static void set_socket_options(int fd)
{
	int on = 1, idle = 60, intvl = 15, cnt = 4;

	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
}

/* Non-blocking connect bounded by ms; 0 or an errno value. */
static int connect_one(int fd, const struct addrinfo *ai, int ms)
{
	struct pollfd pfd[2] = { { .fd = fd, .events = POLLOUT }, { .fd = abort_fd(), .events = POLLIN } };
	int soerr = 0;
	socklen_t sl = sizeof(soerr);

	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
		return 0;
	if (errno != EINPROGRESS)
		return errno;
	if (poll(pfd, 2, ms) <= 0 || pfd[1].revents)
		return ETIMEDOUT;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
		return errno;
	return soerr;
}

int tls_tcp_connect(const char *host, uint16_t port, int timeout_s, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG };
	struct addrinfo *res, *ai;
	char service[8];
	int fd = -1, last_err = 0, r;

	snprintf(service, sizeof(service), "%u", port);
	r = getaddrinfo(host, service, &hints, &res);
	if (r != 0) {
		snprintf(err, errlen,
			 "cannot resolve %s: %s (check the host name in the URL and "
			 "the network)",
			 host, gai_strerror(r));
		return -1;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			last_err = errno;
			continue;
		}
		last_err = connect_one(fd, ai, timeout_s * 1000);
		if (last_err == 0)
			break;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		snprintf(err, errlen,
			 "cannot connect to %s port %u: %s (is the server up, and is "
			 "%u its IMAP port? imaps:// is usually 993, imap:// 143)",
			 host, port, strerror(last_err ? last_err : EHOSTUNREACH), port);
		return -1;
	}
	set_socket_options(fd);
	return fd;
}

static void describe_verify_error(long v, const char *host, char *err, size_t errlen)
{
	const char *why;

	switch (v) {
	case X509_V_ERR_HOSTNAME_MISMATCH:
	case X509_V_ERR_IP_ADDRESS_MISMATCH:
		snprintf(err, errlen,
			 "TLS certificate verification failed: host name mismatch "
			 "(the certificate is not valid for \"%s\"; connect with the name it was issued for)",
			 host);
		return;
	case X509_V_ERR_CERT_HAS_EXPIRED:
		why = "the certificate has expired";
		break;
	case X509_V_ERR_CERT_NOT_YET_VALID:
		why = "the certificate is not yet valid";
		break;
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
		snprintf(err, errlen,
			 "TLS certificate verification failed: untrusted issuer (%s); "
			 "for a private CA add -o ca_file=PATH",
			 X509_verify_cert_error_string(v));
		return;
	default:
		why = X509_verify_cert_error_string(v);
		break;
	}
	snprintf(err, errlen, "TLS certificate verification failed: %s", why);
}

/* What the certificate must name: host's subjectAltName entry (DNS name or
 * IP address), never its subject CN (RFC 9525, 6.3); SNI for a name.  Any
 * failure here fails the connection: a check not armed is no check. */
static int expect_host(SSL *ssl, const char *host, char *err, size_t errlen)
{
	unsigned char addr[16];
	bool is_ip = inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
	X509_VERIFY_PARAM *param = SSL_get0_param(ssl);
	int ok;

	X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS |
						       X509_CHECK_FLAG_NEVER_CHECK_SUBJECT);
	if (is_ip)
		ok = X509_VERIFY_PARAM_set1_ip_asc(param, host) == 1;
	else
		ok = SSL_set_tlsext_host_name(ssl, host) == 1 && SSL_set1_host(ssl, host) == 1;
	if (!ok) {
		snprintf(err, errlen,
			 "cannot check the TLS certificate against the host name "
			 "\"%.100s\" (%s)",
			 host,
			 ERR_reason_error_string(ERR_peek_last_error())
				 ? ERR_reason_error_string(ERR_peek_last_error())
				 : "refused by OpenSSL");
		ERR_clear_error();
		return -1;
	}
	return 0;
}

static int handshake(struct stream *st, SSL_CTX *ctx, const char *host, int ms, char *err, size_t errlen)
{
	int r;

	st->ssl = SSL_new(ctx);
	if (!st->ssl || SSL_set_fd(st->ssl, st->fd) != 1) {
		snprintf(err, errlen, "cannot set up TLS");
		return -1;
	}
	if (expect_host(st->ssl, host, err, errlen) < 0)
		return -1;
	while ((r = SSL_connect(st->ssl)) != 1) {
		int e = SSL_get_error(st->ssl, r);
		short ev = e == SSL_ERROR_WANT_READ ? POLLIN : e == SSL_ERROR_WANT_WRITE ? POLLOUT : 0;

		if (ev && wait_fd(st, ev, ms) == 0)
			continue;
		if (SSL_get_verify_result(st->ssl) != X509_V_OK)
			describe_verify_error(SSL_get_verify_result(st->ssl), host, err, errlen);
		else if (!ev)
			snprintf(err, errlen,
				 "TLS handshake with %s failed: %s (does the port speak "
				 "TLS from the start? for STARTTLS use imap://)",
				 host,
				 ERR_reason_error_string(ERR_peek_last_error())
					 ? ERR_reason_error_string(ERR_peek_last_error())
					 : "connection closed");
		else
			snprintf(err, errlen, "TLS handshake with %s timed out", host);
		ERR_clear_error();
		return -1;
	}
	return 0;
}

/* seconds from now, or none (0) */
static void set_deadline(struct stream *st, int seconds)
{
	if (seconds > 0) {
		clock_gettime(CLOCK_MONOTONIC, &st->deadline);
		st->deadline.tv_sec += seconds;
	} else {
		st->deadline = (struct timespec){ 0 };
	}
}

mailstream_low *tls_stream_new(int fd, SSL_CTX *ctx, const char *host, int timeout_s, int handshake_s,
			       char *err, size_t errlen)
{
	struct stream *st = calloc(1, sizeof(*st));
	mailstream_low *low;

	if (!st) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	st->fd = fd;
	st->budget = UINT64_MAX;
	if (pipe(st->cancel_pipe) < 0) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		free(st);
		return NULL;
	}
	fcntl(st->cancel_pipe[0], F_SETFD, FD_CLOEXEC);
	fcntl(st->cancel_pipe[1], F_SETFD, FD_CLOEXEC);
	fcntl(st->cancel_pipe[1], F_SETFL, O_NONBLOCK);
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	set_deadline(st, handshake_s);
	if (ctx && handshake(st, ctx, host, timeout_s * 1000, err, errlen) < 0)
		goto fail;
	low = mailstream_low_new(st, &stream_driver);
	if (!low) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	mailstream_low_set_timeout(low, (time_t)timeout_s);
	return low;
fail:
	if (st->ssl)
		SSL_free(st->ssl);
	close(st->cancel_pipe[0]);
	close(st->cancel_pipe[1]);
	free(st);
	return NULL;
}

bool tls_stream_timed_out(mailstream_low *low)
{
	return low && low->driver == &stream_driver && ((struct stream *)low->data)->timed_out;
}

bool tls_stream_holds_input(mailstream_low *low)
{
	return low && low->driver == &stream_driver && ((struct stream *)low->data)->ssl &&
	       SSL_has_pending(((struct stream *)low->data)->ssl);
}

bool tls_stream_over_budget(mailstream_low *low)
{
	return low && low->driver == &stream_driver && ((struct stream *)low->data)->over_budget;
}

void tls_stream_limit(mailstream_low *low, uint64_t max_bytes, int max_seconds)
{
	struct stream *st;

	if (!low || low->driver != &stream_driver)
		return;
	st = low->data;
	st->budget = max_bytes;
	set_deadline(st, max_seconds);
}

void tls_stream_allow(mailstream_low *low, uint64_t more_bytes, int more_seconds)
{
	struct stream *st;

	if (!low || low->driver != &stream_driver)
		return;
	st = low->data;
	st->budget = st->budget > UINT64_MAX - more_bytes ? UINT64_MAX : st->budget + more_bytes;
	if (st->deadline.tv_sec || st->deadline.tv_nsec)
		st->deadline.tv_sec += more_seconds;
}

bool tls_stream_charge(mailstream_low *low, uint64_t bytes)
{
	struct stream *st;

	if (!low || low->driver != &stream_driver)
		return true;
	st = low->data;
	if (bytes > st->budget) {
		st->over_budget = true;
		return false;
	}
	st->budget -= bytes;
	return true;
}

bool tls_stream_peer_is_loopback(mailstream_low *low)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (!low || low->driver != &stream_driver ||
	    getpeername(((struct stream *)low->data)->fd, (struct sockaddr *)&ss, &len) < 0)
		return false;
	if (ss.ss_family == AF_INET)
		return (ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr) >> 24) == 127;
	if (ss.ss_family == AF_INET6) {
		const struct in6_addr *a = &((struct sockaddr_in6 *)&ss)->sin6_addr;

		return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
	}
	return false;
}

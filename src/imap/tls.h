/* tls.h - the transport under libetpan: TCP connect with a deadline, and a
 * mailstream_low driver that speaks plain TCP or OpenSSL with the
 * certificate chain and host name verified.  Debian's libetpan TLS (GnuTLS)
 * verifies nothing, so every imapfs connection goes through this driver. */
#ifndef IMAPFS_TLS_H
#define IMAPFS_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <openssl/ssl.h>
#include <libetpan/libetpan.h>

/* A client context: system trust store, or ca_file when given.  verify=false
 * accepts any certificate (testing only; the caller warns).  NULL on error
 * with the reason in err. */
SSL_CTX *tls_ctx_new(const char *ca_file, bool verify, char *err, size_t errlen);

/* Resolves host and connects to the first address that answers within
 * timeout_s seconds.  Returns a non-blocking socket fd or -1 with err set. */
int tls_tcp_connect(const char *host, uint16_t port, int timeout_s, char *err, size_t errlen);

/* Ends every network wait of every stream, now and from then on (the
 * daemon is on its way out and something still waits on a frozen server). */
void tls_abort_waits(void);

/* Wraps fd in a stream driver.  With ctx == NULL the stream is plain TCP;
 * otherwise a TLS handshake (SNI and host name check against host) runs
 * first, within handshake_s seconds in all (0: no bound but the waits').
 * Every wait is bounded by timeout_s of inactivity.  On failure
 * returns NULL with the reason in err; fd is then still owned by the caller.
 * On success the stream owns fd. */
mailstream_low *tls_stream_new(int fd, SSL_CTX *ctx, const char *host, int timeout_s, int handshake_s,
			       char *err, size_t errlen);

/* Whether a wait on the stream ran out of time (the server stopped
 * answering, as opposed to closing the connection). */
bool tls_stream_timed_out(mailstream_low *low);

/* Whether bytes the server sent are held by OpenSSL, read from the socket
 * ahead: a poll of the socket would not see them. */
bool tls_stream_holds_input(mailstream_low *low);

/* Limits for what follows (one operation): at most max_bytes read and
 * max_seconds in all (0: no time limit) -- a server that trickles bytes or
 * never ends a response makes reads fail.  tls_stream_allow raises them by
 * what one command is known to need (a body block, an upload). */
void tls_stream_limit(mailstream_low *low, uint64_t max_bytes, int max_seconds);
void tls_stream_allow(mailstream_low *low, uint64_t more_bytes, int more_seconds);
bool tls_stream_over_budget(mailstream_low *low);
/* Counts bytes read by a layer above (inflated by compress.c beyond what
 * crossed the wire) against the operation's budget: false, and the stream
 * over budget, when they do not fit.  True for a stream of another driver. */
bool tls_stream_charge(mailstream_low *low, uint64_t bytes);

/* Whether the stream's peer is this machine's loopback (127.0.0.0/8, ::1,
 * or ::ffff:127.0.0.0/104).  False for a stream of another driver. */
bool tls_stream_peer_is_loopback(mailstream_low *low);

#endif

/* Unit tests for src/imap/tls.c: the host name check is armed, or nothing is sent. */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "imap/imap.h"
#include "imap/tls.h"

/* Runs tls_stream_new for host over a socketpair whose other end never
 * answers; returns how many bytes reached that end (a ClientHello). */
static ssize_t try_host(const char *host, char *err, size_t errlen, double *took)
{
	char ctx_err[256], buf[4096];
	SSL_CTX *ctx = tls_ctx_new(NULL, true, ctx_err, sizeof(ctx_err));
	struct timespec t0, t1;
	mailstream_low *low;
	int sv[2];
	ssize_t n;

	assert_non_null(ctx);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	low = tls_stream_new(sv[0], ctx, host, 1, IMAP_OPERATION_SECONDS(1), err, errlen);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	*took = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	assert_null(low); /* nobody answers: it can never succeed */
	n = recv(sv[1], buf, sizeof(buf), MSG_DONTWAIT);
	close(sv[0]);
	close(sv[1]);
	SSL_CTX_free(ctx);
	return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : n;
}

/* A name OpenSSL cannot send as SNI (over 255 bytes): the connection fails
 * at once, before the ClientHello, instead of going on without SNI. */
static void test_unusable_host_name_fails_closed(void **state)
{
	char host[301], err[512] = "";
	double took;
	ssize_t sent;

	(void)state;
	memset(host, 'a', sizeof(host) - 1);
	host[sizeof(host) - 1] = '\0';
	memcpy(host + sizeof(host) - 13, ".example.org", 12);
	sent = try_host(host, err, sizeof(err), &took);
	assert_int_equal(sent, 0);
	assert_non_null(strstr(err, "cannot check the TLS certificate against the host name"));
	assert_true(took < 0.5);
}

/* The control: an ordinary name gets as far as sending the ClientHello. */
static void test_ordinary_host_name_sends_hello(void **state)
{
	char err[512] = "";
	double took;

	(void)state;
	assert_true(try_host("mail.example.org", err, sizeof(err), &took) > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unusable_host_name_fails_closed),
		cmocka_unit_test(test_ordinary_host_name_sends_hello),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

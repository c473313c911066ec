/* Unit tests for src/imap/imap_trace.c: the -d log shows command lines and
 * literal sizes, never a literal's bytes or credentials, however libetpan
 * splits what it writes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "imap/imap_p.h"
#include "util/log.h"

#define SECRET "s3cr3t-MARKER"

static int capture_fd = -1, saved_fd = -1;

static int capture_start(void **state)
{
	char path[] = "/tmp/imapfs-test-trace-XXXXXX";

	(void)state;
	capture_fd = mkstemp(path);
	assert_true(capture_fd >= 0);
	unlink(path);
	fflush(stderr);
	saved_fd = dup(2);
	dup2(capture_fd, 2);
	log_init(true, false);
	return 0;
}

/* Everything logged since capture_start. */
static char *capture_end(void)
{
	static char out[16384];
	ssize_t n;

	fflush(stderr);
	dup2(saved_fd, 2);
	close(saved_fd);
	n = pread(capture_fd, out, sizeof(out) - 1, 0);
	close(capture_fd);
	out[n > 0 ? n : 0] = '\0';
	return out;
}

static void sent(struct imap_trace *t, const char *s)
{
	imap_trace_logger(NULL, MAILSTREAM_LOG_TYPE_DATA_SENT, s, strlen(s), t);
}

/* Feeds s one byte per call: the worst split there is. */
static void sent_bytewise(struct imap_trace *t, const char *s)
{
	for (; *s; s++)
		imap_trace_logger(NULL, MAILSTREAM_LOG_TYPE_DATA_SENT, s, 1, t);
}

static void test_command_lines(void **state)
{
	struct imap_trace *t = imap_trace_new(7);
	char *out;

	capture_start(state);
	sent(t, "1 CAPABILITY\r\n");
	sent(t, "2 SEL");
	sent(t, "ECT INBOX\r\n3 NOOP\r\n");
	sent(t, "DONE\r\n");
	out = capture_end();
	imap_trace_free(t);
	assert_non_null(strstr(out, "session 7 >> 1 CAPABILITY\n"));
	assert_non_null(strstr(out, "session 7 >> 2 SELECT INBOX\n"));
	assert_non_null(strstr(out, "session 7 >> 3 NOOP\n"));
	assert_non_null(strstr(out, "session 7 >> DONE\n"));
}

/* APPEND: the command line, the server's "+", then the message in chunks. */
static void test_synchronizing_literal(void **state)
{
	struct imap_trace *t = imap_trace_new(1);
	char body[600];
	char *out;

	memset(body, 'x', sizeof(body) - 1);
	body[sizeof(body) - 1] = '\0';
	memcpy(body, "Subject: " SECRET "\r\n\r\n", strlen("Subject: " SECRET "\r\n\r\n"));
	memcpy(body + 300, SECRET, strlen(SECRET));
	capture_start(state);
	sent(t, "4 APPEND INBOX (\\Seen) \"01-Jan-2024 10:00:00 +0000\" {599}\r\n");
	sent_bytewise(t, body); /* 599 bytes, as many chunks */
	sent(t, "\r\n");
	sent(t, "5 NOOP\r\n");
	out = capture_end();
	imap_trace_free(t);
	assert_null(strstr(out, SECRET));
	assert_non_null(strstr(out, ">> 4 APPEND INBOX (\\Seen) \"01-Jan-2024 10:00:00 +0000\" {599}\n"));
	assert_non_null(strstr(out, ">> 5 NOOP\n"));
	assert_null(strstr(out, "xxxx"));
}

/* SETMETADATA with a LITERAL+ value: all in one chunk, and byte by byte. */
static void test_nonsynchronizing_literal(void **state)
{
	static const char cmd[] = "6 SETMETADATA \"\" (/private/vendor/imapfs/receive-folders {33+}\r\n"
				  "IPM\t" SECRET "\r\nline two, 12\r\n)\r\n7 NOOP\r\n";
	char *out;

	for (int bytewise = 0; bytewise < 2; bytewise++) {
		struct imap_trace *t = imap_trace_new(2);

		capture_start(state);
		if (bytewise)
			sent_bytewise(t, cmd);
		else
			sent(t, cmd);
		out = capture_end();
		imap_trace_free(t);
		assert_null(strstr(out, SECRET));
		assert_null(strstr(out, "line two"));
		assert_non_null(
			strstr(out, ">> 6 SETMETADATA \"\" (/private/vendor/imapfs/receive-folders {33+}\n"));
		assert_non_null(strstr(out, ">> ... )\n"));
		assert_non_null(strstr(out, ">> 7 NOOP\n"));
	}
}

/* A server that answers an APPEND with NO instead of "+": the literal is
 * never sent, and after the reset the next command shows again. */
static void test_abandoned_literal(void **state)
{
	struct imap_trace *t = imap_trace_new(3);
	char *out;

	capture_start(state);
	sent(t, "8 APPEND Other {5000}\r\n");
	imap_trace_reset(t);
	sent(t, "9 CREATE Exists2\r\n");
	out = capture_end();
	imap_trace_free(t);
	assert_non_null(strstr(out, ">> 8 APPEND Other {5000}\n"));
	assert_non_null(strstr(out, ">> 9 CREATE Exists2\n"));
}

static void test_credentials_hidden(void **state)
{
	struct imap_trace *t = imap_trace_new(4);
	static const char login[] = "10 LOGIN alice " SECRET "\r\n";
	char *out;

	capture_start(state);
	imap_trace_logger(NULL, MAILSTREAM_LOG_TYPE_DATA_SENT_PRIVATE, login, strlen(login), t);
	sent(t, "11 LIST \"\" *\r\n");
	out = capture_end();
	imap_trace_free(t);
	assert_null(strstr(out, SECRET));
	assert_null(strstr(out, "alice"));
	assert_non_null(strstr(out, "(credentials hidden)"));
	assert_non_null(strstr(out, ">> 11 LIST \"\" *\n"));
}

/* A line longer than what is shown still has its literal found; braces that
 * are not a literal's announcement are just text. */
static void test_long_lines_and_false_braces(void **state)
{
	struct imap_trace *t = imap_trace_new(5);
	char line[1200], *out;
	size_t n = 0;

	n += (size_t)snprintf(line + n, sizeof(line) - n, "12 UID FETCH ");
	while (n < 1000)
		n += (size_t)snprintf(line + n, sizeof(line) - n, "%zu,", n);
	snprintf(line + n, sizeof(line) - n, " (UID) {13}\r\n");
	capture_start(state);
	sent(t, line);
	sent(t, SECRET);
	sent(t, "\r\n13 SEARCH SUBJECT \"{3}\"\r\n14 NOOP {x}\r\n15 NOOP {}\r\n");
	sent(t, "16 NOOP {99999999999999999999}\r\n17 NOOP\r\n");
	out = capture_end();
	imap_trace_free(t);
	assert_null(strstr(out, SECRET));
	assert_non_null(strstr(out, ">> 12 UID FETCH "));
	assert_non_null(strstr(out, " ...\n"));
	assert_non_null(strstr(out, ">> 13 SEARCH SUBJECT \"{3}\"\n"));
	assert_non_null(strstr(out, ">> 14 NOOP {x}\n"));
	assert_non_null(strstr(out, ">> 15 NOOP {}\n"));
	assert_non_null(strstr(out, ">> 16 NOOP {99999999999999999999}\n"));
	assert_non_null(strstr(out, ">> 17 NOOP\n"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_command_lines),
		cmocka_unit_test(test_synchronizing_literal),
		cmocka_unit_test(test_nonsynchronizing_literal),
		cmocka_unit_test(test_abandoned_literal),
		cmocka_unit_test(test_credentials_hidden),
		cmocka_unit_test(test_long_lines_and_false_braces),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

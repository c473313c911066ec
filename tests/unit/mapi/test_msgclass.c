/* Unit tests for msgclass.c (and mime.c, tnef.c): every MIME input of
 * receive-folders.md section 5 as a fixture message, in LF and CRLF form,
 * TNEF streams built here, hostile input, and the fetch callback path
 * (bodies loaded only for the parts a rule needs). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "mapi/msgclass.h"

/* --- helpers ------------------------------------------------------------ */

struct buf {
	char *p;
	size_t n, cap;
};

static void put(struct buf *b, const void *d, size_t n)
{
	if (b->n + n + 1 > b->cap) {
		b->cap = (b->n + n + 1) * 2;
		b->p = realloc(b->p, b->cap);
		assert_non_null(b->p);
	}
	memcpy(b->p + b->n, d, n);
	b->n += n;
	b->p[b->n] = '\0';
}

static void puts_(struct buf *b, const char *s)
{
	put(b, s, strlen(s));
}

static void put_u16(struct buf *b, uint16_t v)
{
	unsigned char le[2] = { (unsigned char)v, (unsigned char)(v >> 8) };

	put(b, le, 2);
}

static void put_u32(struct buf *b, uint32_t v)
{
	unsigned char le[4] = { (unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
				(unsigned char)(v >> 24) };

	put(b, le, 4);
}

static void put_pad(struct buf *b)
{
	while (b->n % 4)
		put(b, "", 1);
}

static char *load_fixture(const char *name, size_t *len)
{
	const char *dir = getenv("IMAPFS_FIXTURES");
	char path[512];
	struct buf b = { 0 };
	char chunk[4096];
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "%s/msgclass/%s", dir ? dir : "tests/unit/mapi/fixtures", name);
	f = fopen(path, "rb");
	if (!f)
		fail_msg("cannot open fixture %s", path);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		put(&b, chunk, n);
	fclose(f);
	*len = b.n;
	return b.p;
}

/* LF -> CRLF (the fixtures are stored with LF) */
static char *to_crlf(const char *s, size_t len, size_t *outlen)
{
	struct buf b = { 0 };

	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r'))
			put(&b, "\r", 1);
		put(&b, &s[i], 1);
	}
	*outlen = b.n;
	return b.p;
}

static void check_class(const char *msg, size_t len, const char *want)
{
	char out[MSGCLASS_SIZE];

	memset(out, 'x', sizeof(out));
	msgclass_of_message(msg, len, out, sizeof(out));
	assert_string_equal(out, want);
}

static void check_str(const char *msg, const char *want)
{
	check_class(msg, strlen(msg), want);
}

/* --- fixture table ------------------------------------------------------ */

static const struct {
	const char *file, *cls;
} fixtures[] = {
	{ "plain.eml", "IPM.Note" },
	{ "noctype.eml", "IPM.Note" },
	{ "dsn_failed_delayed.eml", "REPORT.IPM.Note.NDR" },
	{ "dsn_delayed.eml", "REPORT.IPM.Note.Delayed.DR" },
	{ "mdn_displayed.eml", "REPORT.IPM.Note.IPNRN" },
	{ "mdn_deleted.eml", "REPORT.IPM.Note.IPNNRN" },
	{ "smime_signed.eml", "IPM.Note.SMIME.MultipartSigned" },
	{ "smime_pkcs7.eml", "IPM.Note.SMIME" },
	{ "cal_request.eml", "IPM.Schedule.Meeting.Request" },
	{ "cal_reply_accepted.eml", "IPM.Schedule.Meeting.Resp.Pos" },
	{ "cal_cancel.eml", "IPM.Schedule.Meeting.Canceled" },
	{ "cal_publish.eml", "IPM.Appointment" },
	{ "cal_attached_ics.eml", "IPM.Note" },
	{ "nested_related_calendar.eml", "IPM.Schedule.Meeting.Resp.Tent" },
	{ "voicemail.eml", "IPM.Note.Microsoft.Voicemail.UM" },
	{ "voice_noaudio.eml", "IPM.Note" },
	{ "content_class_message.eml", "IPM.Note" },
	{ "fax.eml", "IPM.Note.Microsoft.Fax" },
};

#define NFIXTURES (sizeof(fixtures) / sizeof(fixtures[0]))

static void test_fixtures(void **state)
{
	(void)state;
	for (size_t i = 0; i < NFIXTURES; i++) {
		size_t len, crlen;
		char *lf = load_fixture(fixtures[i].file, &len);
		char *crlf = to_crlf(lf, len, &crlen);

		print_message("%s\n", fixtures[i].file);
		check_class(lf, len, fixtures[i].cls);
		check_class(crlf, crlen, fixtures[i].cls);
		free(lf);
		free(crlf);
	}
}

/* --- the parsed tree ---------------------------------------------------- */

static void test_parse_tree(void **state)
{
	struct mime_message m;
	const struct mime_part *alt, *cal, *att;
	size_t len;
	char *data = load_fixture("cal_request.eml", &len);

	(void)state;
	assert_int_equal(msgclass_parse(data, len, &m), 0);
	assert_string_equal(m.root.type, "multipart");
	assert_string_equal(m.root.subtype, "mixed");
	assert_string_equal(m.root.part_id, "");
	assert_string_equal(mime_param(&m.root, "BOUNDARY"), "000000000000a1b2c3mixed");
	assert_null(m.content_class);
	assert_int_equal(m.root.nchildren, 2);
	alt = &m.root.children[0];
	assert_string_equal(alt->part_id, "1");
	assert_string_equal(alt->subtype, "alternative");
	assert_int_equal(alt->nchildren, 3);
	assert_string_equal(alt->children[1].part_id, "1.2");
	assert_string_equal(alt->children[1].encoding, "quoted-printable");
	cal = &alt->children[2];
	assert_string_equal(cal->part_id, "1.3");
	assert_string_equal(cal->type, "text");
	assert_string_equal(cal->subtype, "calendar");
	assert_string_equal(mime_param(cal, "method"), "REQUEST");
	assert_string_equal(mime_param(cal, "charset"), "UTF-8");
	assert_true(cal->body_len > 16 && memcmp(cal->body, "BEGIN:VCALENDAR\n", 16) == 0);
	assert_true(memcmp(cal->body + cal->body_len - 14, "END:VCALENDAR\n", 14) == 0);
	att = &m.root.children[1];
	assert_string_equal(att->part_id, "2");
	assert_string_equal(att->disposition_filename, "invite.ics");
	assert_string_equal(att->encoding, "base64");
	msgclass_free(&m);
	free(data);
}

static void test_parse_single_part(void **state)
{
	struct mime_message m;
	const char *msg = "Subject: x\r\nContent-Type: text/calendar;\r\n method=\"PUBLISH\"\r\n"
			  "X-MS-TNEF-Correlator:  <abc@example.com> \r\n"
			  "Content-Class: \r\n  voice\r\n\r\nBODY";

	(void)state;
	assert_int_equal(msgclass_parse(msg, strlen(msg), &m), 0);
	assert_string_equal(m.root.part_id, "1");
	assert_string_equal(mime_param(&m.root, "method"), "PUBLISH");
	assert_string_equal(m.tnef_correlator, "<abc@example.com>");
	assert_string_equal(m.content_class, "voice");
	assert_int_equal(m.root.body_len, 4);
	assert_memory_equal(m.root.body, "BODY", 4);
	msgclass_free(&m);
	assert_int_equal(msgclass_parse(NULL, 0, &m), 0);
	assert_string_equal(m.root.type, "text");
	assert_string_equal(m.root.subtype, "plain");
	msgclass_free(&m);
}

static void test_parse_params(void **state)
{
	struct mime_message m;
	const char *msg = "Content-Type: application/octet-stream (comment; x=y) ;\n"
			  " name*0*=UTF-8''sm%69me; name*1=\".p7m\"; ;junk; Q=\"a\\\"b\"\n"
			  "Content-Disposition: attachment;\n filename*=iso-8859-1'de'Rechnung%20M%E4rz.pdf\n"
			  "Content-Transfer-Encoding: BASE64 (really)\n\nAAAA";

	(void)state;
	assert_int_equal(msgclass_parse(msg, strlen(msg), &m), 0);
	assert_string_equal(m.root.type, "application");
	assert_string_equal(mime_param(&m.root, "name"), "smime.p7m");
	assert_string_equal(mime_param(&m.root, "q"), "a\"b");
	assert_null(mime_param(&m.root, "junk"));
	assert_string_equal(m.root.disposition_filename, "Rechnung M\xe4rz.pdf");
	assert_string_equal(m.root.encoding, "base64");
	msgclass_free(&m);
	check_str(msg, "IPM.Note.SMIME");
}

/* --- more rules, inline ------------------------------------------------- */

static void test_rules_inline(void **state)
{
	(void)state;
	check_str("Content-Type: application/octet-stream; name=\"smime.p7m\"\n\nMIAG", "IPM.Note.SMIME");
	check_str("Content-Type: application/x-pkcs7-mime\n\nMIAG", "IPM.Note.SMIME");
	check_str("Content-Type: application/octet-stream; name=\"report.pdf\"\n\n%PDF", "IPM.Note");
	check_str("Content-Type: multipart/signed; protocol=\"application/pgp-signature\"; boundary=b\n\n"
		  "--b\nContent-Type: text/plain\n\nhi\n--b\nContent-Type: "
		  "application/pgp-signature\n\nsig\n--b--\n",
		  "IPM.Note.SMIME.MultipartSigned");
	check_str("Content-Type: message/disposition-notification\n\n"
		  "Final-Recipient: rfc822;bob@example.com\nDisposition: "
		  "automatic-action/MDN-sent-automatically;"
		  " dispatched\n",
		  "REPORT.IPM.Note.IPNRN");
	check_str("Content-Type: message/disposition-notification\n\nDisposition: manual-action/x; "
		  "denied/error\n",
		  "REPORT.IPM.Note.IPNNRN");
	check_str("Content-Type: message/disposition-notification\n\nDisposition: manual-action/x; weird\n",
		  "IPM.Note");
	check_str("Content-Type: multipart/report; report-type=delivery-status; boundary=r\n\n"
		  "--r\nContent-Type: message/delivery-status\n\nAction: relayed\n\nAction: "
		  "expanded\n--r--\n",
		  "REPORT.IPM.Note.Relayed.DR");
	check_str("Content-Type: multipart/report; report-type=delivery-status; boundary=r\n\n"
		  "--r\nContent-Type: message/delivery-status\n\nAction: Delivered (ok)\n--r--\n",
		  "REPORT.IPM.Note.DR");
	check_str("Content-Type: multipart/report; report-type=delivery-status; boundary=r\n\n"
		  "--r\nContent-Type: message/delivery-status\n\nStatus: 2.0.0\n--r--\n",
		  "IPM.Note");
	/* a report type the rule does not know: a plain multipart */
	check_str("Content-Type: multipart/report; report-type=x-other; boundary=r\n\n"
		  "--r\nContent-Type: message/delivery-status\n\nAction: failed\n--r--\n",
		  "IPM.Note");
}

static void test_calendar_inline(void **state)
{
	(void)state;
	check_str("Content-Type: "
		  "text/calendar\n\nBEGIN:VCALENDAR\nBEGIN:VTODO\nUID:1\nEND:VTODO\nEND:VCALENDAR\n",
		  "IPM.Task");
	check_str("Content-Type: "
		  "text/calendar\n\nBEGIN:VCALENDAR\nMETHOD:PUBLISH\nBEGIN:VJOURNAL\nEND:VJOURNAL\n"
		  "END:VCALENDAR\n",
		  "IPM.Activity");
	check_str("Content-Type: text/calendar\n\nBEGIN:VCALENDAR\nBEGIN:VEVENT\nEND:VEVENT\nEND:VCALENDAR\n",
		  "IPM.Appointment");
	check_str("Content-Type: text/calendar; method=REPLY\n\nBEGIN:VCALENDAR\nMETHOD:REPLY\nBEGIN:VEVENT\n"
		  "ATTENDEE;CN=\"Doe; John: "
		  "Jr\";PARTSTAT=DECLINED:mailto:j@example.com\nEND:VEVENT\nEND:VCALENDAR\n",
		  "IPM.Schedule.Meeting.Resp.Neg");
	check_str("Content-Type: text/calendar\n\nBEGIN:VCALENDAR\nMETHOD:REPLY\nBEGIN:VEVENT\n"
		  "ATTENDEE;PARTSTAT=\"TENTATIVE\":mailto:j@example.com\nEND:VEVENT\nEND:VCALENDAR\n",
		  "IPM.Schedule.Meeting.Resp.Tent");
	check_str("Content-Type: text/calendar; method=REPLY\n\nBEGIN:VCALENDAR\nBEGIN:VEVENT\n"
		  "ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:j@example.com\nEND:VEVENT\nEND:VCALENDAR\n",
		  "IPM.Note");
	/* the method parameter decides without the body */
	check_str("Content-Type: text/calendar; method=CANCEL\n\nMETHOD:REQUEST\n",
		  "IPM.Schedule.Meeting.Canceled");
	check_str("Content-Type: text/calendar; method=COUNTER\n\n", "IPM.Schedule.Meeting.Resp.Tent");
	check_str("Content-Type: text/calendar; method=REFRESH\n\n", "IPM.Note");
	/* unterminated multipart: the last part runs to the end */
	check_str("Content-Type: multipart/alternative; boundary=zz\n\npreamble\n--zz\n\nplain\n--zz\n"
		  "Content-Type: text/calendar; method=request\n\nBEGIN:VCALENDAR",
		  "IPM.Schedule.Meeting.Request");
	/* too deep below the top: mixed > mixed > mixed > mixed > calendar */
	check_str("Content-Type: multipart/mixed; boundary=a\n\n--a\nContent-Type: multipart/mixed; "
		  "boundary=b\n\n"
		  "--b\nContent-Type: multipart/mixed; boundary=c\n\n--c\nContent-Type: multipart/mixed; "
		  "boundary=d\n\n"
		  "--d\nContent-Type: text/calendar; method=REQUEST\n\nx\n--d--\n--c--\n--b--\n--a--\n",
		  "IPM.Note");
	/* inside a forwarded message: not looked at */
	check_str("Content-Type: multipart/mixed; boundary=a\n\n--a\n\nsee below\n--a\nContent-Type: "
		  "message/rfc822\n\n"
		  "Content-Type: text/calendar; method=REQUEST\n\nx\n--a--\n",
		  "IPM.Note");
}

static void test_content_class_inline(void **state)
{
	(void)state;
	check_str("Content-Class: urn:content-class:custom.Expense.Report\n\nx",
		  "IPM.Note.Custom.Expense.Report");
	check_str("Content-Class: InfoPathForm.{A1B2}.Travel\n\nx", "IPM.InfoPathForm.{A1B2}.Travel");
	check_str("Content-Class: urn:content-class:custom.bad..class\n\nx", "IPM.Note");
	check_str("Content-Class: urn:content-class:custom.\n\nx", "IPM.Note");
	check_str("Content-Class: urn:content-class:custom.caf\xc3\xa9\n\nx", "IPM.Note");
	check_str("Content-Class: missedcall\n\nYou missed a call.", "IPM.Note.Microsoft.Missed.Voice");
	check_str("Content-Class: voice-uc\nContent-Type: audio/x-wav\n\nRIFF",
		  "IPM.Note.Microsoft.Conversation.Voice");
	check_str("Content-Class: Voice-CA\nContent-Type: multipart/mixed; boundary=v\n\n--v\nContent-Type: "
		  "audio/mpeg\n\n"
		  "ID3\n--v--\n",
		  "IPM.Note.Microsoft.Voicemail.UM.CA");
	check_str("Content-Class: fax-ca\nContent-Type: multipart/mixed; boundary=f\n\n--f\nContent-Type: "
		  "text/html\n\n"
		  "<p>\n--f\nContent-Type: image/tiff\n\nII*\n--f--\n",
		  "IPM.Note.Microsoft.Fax.CA");
	check_str("Content-Class: fax\nContent-Type: multipart/mixed; boundary=f\n\n--f\nContent-Type: "
		  "text/html\n\n"
		  "<p>\n--f--\n",
		  "IPM.Note");
	check_str("Content-Class: urn:content-classes:dsn\n\nx", "IPM.Note");
	/* only when the class would stay IPM.Note */
	check_str("Content-Class: voice\nContent-Type: multipart/signed; boundary=s\n\n--s\nContent-Type: "
		  "audio/wav\n\n"
		  "x\n--s--\n",
		  "IPM.Note.SMIME.MultipartSigned");
}

/* --- TNEF ---------------------------------------------------------------- */

#define KEY "<AM6PR02MB4321ABCDEF0123456789@AM6PR02MB4321.eurprd02.prod.outlook.com>"

enum {
	K_NUL,
	K_NONE,
	K_PLAIN
}; /* how the key is stored */

struct tnef_spec {
	const char *att_class;  /* attMessageClass, NULL: absent */
	const char *prop_class; /* attMsgProps PidTagMessageClass */
	bool unicode;           /* ... as PT_UNICODE */
	int key;                /* K_NUL: with NUL; K_PLAIN: without; K_NONE: no key */
	bool bad_checksum;
};

static void tnef_attr(struct buf *b, uint8_t level, uint32_t id, const void *data, size_t n, bool bad)
{
	uint16_t sum = 0;

	for (size_t i = 0; i < n; i++)
		sum = (uint16_t)(sum + ((const unsigned char *)data)[i]);
	put(b, &level, 1);
	put_u32(b, id);
	put_u32(b, (uint32_t)n);
	put(b, data, n);
	put_u16(b, bad ? (uint16_t)(sum + 1) : sum);
}

static void prop_bytes(struct buf *p, uint32_t tag, const void *v, size_t n)
{
	put_u32(p, tag);
	put_u32(p, 1);
	put_u32(p, (uint32_t)n);
	put(p, v, n);
	put_pad(p);
}

static void prop_class(struct buf *p, const char *cls, bool unicode)
{
	struct buf u = { 0 };

	if (!unicode) {
		prop_bytes(p, 0x001A001E, cls, strlen(cls) + 1);
		return;
	}
	for (const char *c = cls;; c++) {
		put_u16(&u, (uint16_t)(unsigned char)*c);
		if (!*c)
			break;
	}
	prop_bytes(p, 0x001A001F, u.p, u.n);
	free(u.p);
}

static struct buf tnef_build(const struct tnef_spec *s)
{
	struct buf b = { 0 }, p = { 0 };
	unsigned char ver[4] = { 0, 0, 1, 0 }, cp[8] = { 0xe4, 0x04, 0, 0, 0, 0, 0, 0 };
	static const unsigned char guid[16] = {
		0x08, 0x20, 0x06, 0, 0, 0, 0, 0, 0xc0, 0, 0, 0, 0, 0, 0, 0x46
	};
	uint32_t nprops = 5 + (s->prop_class != NULL) + (s->key != K_NONE);

	put_u32(&b, 0x223E9F78);
	put_u16(&b, 0x1234);
	tnef_attr(&b, 1, 0x00089006, ver, 4, false); /* attTnefVersion */
	tnef_attr(&b, 1, 0x00069007, cp, 8, false);  /* attOemCodepage */
	if (s->att_class)
		tnef_attr(&b, 1, 0x00078008, s->att_class, strlen(s->att_class) + 1, false);
	tnef_attr(&b, 1, 0x00018004, "Hello", 6, false); /* attSubject */

	put_u32(&p, nprops);
	put_u32(&p, 0x00170003); /* PR_IMPORTANCE, PT_LONG */
	put_u32(&p, 1);
	put_u32(&p, 0x0057000B); /* PR_MESSAGE_TO_ME, PT_BOOLEAN */
	put_u32(&p, 1);
	put_u32(&p, 0x80010102); /* a named PT_BINARY, by name */
	put(&p, guid, 16);
	put_u32(&p, 1);
	put_u32(&p, 10);
	put(&p, "K\0e\0y\0s\0\0\0", 10);
	put_pad(&p);
	put_u32(&p, 1);
	put_u32(&p, 3);
	put(&p, "abc", 3);
	put_pad(&p);
	put_u32(&p, 0x8002101F); /* a named MV PT_UNICODE, by ID */
	put(&p, guid, 16);
	put_u32(&p, 0);
	put_u32(&p, 0x8539);
	put_u32(&p, 2);
	put_u32(&p, 4);
	put(&p, "a\0\0\0", 4);
	put_u32(&p, 2);
	put(&p, "\0\0", 2);
	put_pad(&p);
	put_u32(&p, 0x00390040); /* PR_CLIENT_SUBMIT_TIME, PT_SYSTIME */
	put(&p, "\x00\x80\x3e\xd5\xde\xb1\x9d\x01", 8);
	if (s->prop_class)
		prop_class(&p, s->prop_class, s->unicode);
	if (s->key != K_NONE)
		prop_bytes(&p, 0x007F0102, KEY, strlen(KEY) + (s->key == K_NUL));
	tnef_attr(&b, 1, 0x00069003, p.p, p.n, s->bad_checksum); /* attMsgProps */
	free(p.p);
	tnef_attr(&b, 2, 0x00069002, "\x01\0\0\0", 4, false); /* attAttachRendData */
	tnef_attr(&b, 2, 0x0006800F, "attachment bytes", 16, false);
	return b;
}

static void put_base64(struct buf *b, const unsigned char *d, size_t n)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)d[i] << 16 | (i + 1 < n ? (uint32_t)d[i + 1] << 8 : 0) |
			     (i + 2 < n ? d[i + 2] : 0);
		char q[4] = { a[v >> 18 & 63], a[v >> 12 & 63], i + 1 < n ? a[v >> 6 & 63] : '=',
			      i + 2 < n ? a[v & 63] : '=' };

		put(b, q, 4);
		if ((i / 3 + 1) % 19 == 0)
			puts_(b, "\r\n");
	}
	puts_(b, "\r\n");
}

enum {
	T_MIXED,
	T_TOP,
	T_MIXED_NO_TEXT
};

static char *tnef_message(const struct buf *tnef, const char *correlator, int shape, size_t *len)
{
	struct buf b = { 0 };

	puts_(&b, "From: \"Example, Dave\" <dave@corp.example.com>\r\nTo: bob@example.com\r\n"
		  "Subject: Sample\r\nMessage-ID: " KEY "\r\n");
	if (correlator) {
		puts_(&b, "X-MS-TNEF-Correlator: ");
		puts_(&b, correlator);
		puts_(&b, "\r\n");
	}
	puts_(&b, "MIME-Version: 1.0\r\n");
	if (shape == T_TOP) {
		puts_(&b, "Content-Type: application/ms-tnef; name=\"winmail.dat\"\r\n"
			  "Content-Transfer-Encoding: base64\r\n\r\n");
	} else {
		puts_(&b,
		      "Content-Type: multipart/mixed;\r\n\tboundary=\"_002_tnef_\"\r\n\r\n--_002_tnef_\r\n");
		puts_(&b,
		      shape == T_MIXED
			      ? "Content-Type: text/plain; charset=\"us-ascii\"\r\n\r\nSee attached.\r\n\r\n"
			      : "Content-Type: text/html\r\n\r\n<p>See attached.</p>\r\n\r\n");
		puts_(&b, "--_002_tnef_\r\nContent-Type: application/ms-tnef; name=\"winmail.dat\"\r\n"
			  "Content-Disposition: attachment; filename=\"winmail.dat\"\r\n"
			  "Content-Transfer-Encoding: base64\r\n\r\n");
	}
	put_base64(&b, (const unsigned char *)tnef->p, tnef->n);
	if (shape != T_TOP)
		puts_(&b, "\r\n--_002_tnef_--\r\n");
	*len = b.n;
	return b.p;
}

static void check_tnef(const struct tnef_spec *s, const char *correlator, int shape, const char *want)
{
	struct buf t = tnef_build(s);
	size_t len;
	char *msg = tnef_message(&t, correlator, shape, &len);

	check_class(msg, len, want);
	free(msg);
	free(t.p);
}

static void test_tnef(void **state)
{
	struct tnef_spec sample = { NULL, "IPM.Note.Sample.Simple", false, K_NUL, false };
	struct tnef_spec s;

	(void)state;
	/* the two rows of section 5 */
	check_tnef(&sample, KEY, T_MIXED, "IPM.Note.Sample.Simple");
	check_tnef(&sample, NULL, T_MIXED, "IPM.Note");
	/* correlator: exact bytes, NUL optional in the key */
	check_tnef(&sample, "<am6pr02mb4321abcdef0123456789@AM6PR02MB4321.eurprd02.prod.outlook.com>",
		   T_MIXED, "IPM.Note");
	check_tnef(&sample, "<other@example.com>", T_MIXED, "IPM.Note");
	check_tnef(&sample, "", T_MIXED, "IPM.Note");
	s = sample;
	s.key = K_PLAIN;
	check_tnef(&s, KEY, T_MIXED, "IPM.Note.Sample.Simple");
	s.key = K_NONE;
	check_tnef(&s, KEY, T_MIXED, "IPM.Note");
	/* the shapes that count */
	check_tnef(&sample, KEY, T_TOP, "IPM.Note.Sample.Simple");
	check_tnef(&sample, KEY, T_MIXED_NO_TEXT, "IPM.Note");
	/* attMessageClass only, attMsgProps only (Unicode), both (attMsgProps wins) */
	s = (struct tnef_spec){ "IPM.Note.Sample.Legacy", NULL, false, K_NUL, false };
	check_tnef(&s, KEY, T_MIXED, "IPM.Note.Sample.Legacy");
	s = (struct tnef_spec){ NULL, "IPM.Note.Sample.Wide", true, K_NUL, false };
	check_tnef(&s, KEY, T_MIXED, "IPM.Note.Sample.Wide");
	s = (struct tnef_spec){ "IPM.Note.Old", "IPM.Note.New", false, K_NUL, false };
	check_tnef(&s, KEY, T_MIXED, "IPM.Note.New");
	/* an invalid property class falls back to attMessageClass */
	s = (struct tnef_spec){ "IPM.Note.Old", "IPM..Broken", false, K_NUL, false };
	check_tnef(&s, KEY, T_MIXED, "IPM.Note.Old");
	s = (struct tnef_spec){ NULL, ".Bad", false, K_NUL, false };
	check_tnef(&s, KEY, T_MIXED, "IPM.Note");
	/* legacy names */
	s = (struct tnef_spec){ "IPM.Microsoft Schedule.MtgReq", NULL, false, K_NUL, false };
	check_tnef(&s, KEY, T_MIXED, "IPM.Schedule.Meeting.Request");
	s.att_class = "IPM.Microsoft Schedule.MtgRespA";
	check_tnef(&s, KEY, T_MIXED, "IPM.Schedule.Meeting.Resp.Tent");
	s.att_class = "IPM.Microsoft Schedule.MtgCncl";
	check_tnef(&s, KEY, T_MIXED, "IPM.Schedule.Meeting.Canceled");
	s.att_class = "Microsoft Mail v3.0 IPM.Microsoft Mail.Read Receipt";
	check_tnef(&s, KEY, T_MIXED, "Report.IPM.Note.IPNRN");
	s.att_class = "IPM.Microsoft Mail.Non-Delivery";
	check_tnef(&s, KEY, T_MIXED, "Report.IPM.Note.NDR");
	s = (struct tnef_spec){ NULL, "IPM.Microsoft Mail.Note", true, K_NUL, false };
	check_tnef(&s, KEY, T_MIXED, "IPM.Note");
	/* a bad checksum on attMsgProps loses the key */
	s = sample;
	s.bad_checksum = true;
	check_tnef(&s, KEY, T_MIXED, "IPM.Note");
}

static void check_tnef_blob(const struct buf *t, const char *want)
{
	size_t len;
	char *msg = tnef_message(t, KEY, T_MIXED, &len);

	check_class(msg, len, want);
	free(msg);
}

static void test_tnef_damaged(void **state)
{
	struct tnef_spec sample = { "IPM.Note.Sample.Simple", NULL, false, K_NUL, false };
	struct buf t = tnef_build(&sample);

	(void)state;
	/* truncated at every length: never the class unless attMsgProps is whole */
	for (size_t cut = 0; cut < t.n; cut++) {
		struct buf part = { t.p, cut, 0 };
		size_t len;
		char out[MSGCLASS_SIZE];
		char *msg = tnef_message(&part, KEY, T_MIXED, &len);

		msgclass_of_message(msg, len, out, sizeof(out));
		if (strcmp(out, "IPM.Note") != 0)
			assert_string_equal(out, "IPM.Note.Sample.Simple");
		free(msg);
	}
	/* wrong signature, garbage after the signature */
	t.p[0] ^= 1;
	check_tnef_blob(&t, "IPM.Note");
	t.p[0] ^= 1;
	for (size_t i = 6; i < t.n; i++)
		t.p[i] = (char)(i * 37 + 11);
	check_tnef_blob(&t, "IPM.Note");
	free(t.p);
}

/* --- hostile input ------------------------------------------------------- */

static void test_hostile(void **state)
{
	struct buf b = { 0 };
	char out[MSGCLASS_SIZE];
	static const char bin[] = "\0\xff\r\n\r\n--\0:\x80;=\"(";

	(void)state;
	check_class(NULL, 0, "IPM.Note");
	check_class("", 0, "IPM.Note");
	check_class(bin, sizeof(bin), "IPM.Note");
	check_str("Content-Type: multipart/mixed\n\nno boundary\n", "IPM.Note");
	check_str("Content-Type: multipart/mixed; boundary=\"\"\n\n--\n", "IPM.Note");
	check_str("Content-Type: (unterminated comment\n\n", "IPM.Note");
	check_str("Content-Type: text/calendar; method=\"unterminated\n\n", "IPM.Note");
	/* 5000 nested multiparts: split only 20 deep */
	for (int i = 0; i < 5000; i++)
		puts_(&b, "Content-Type: multipart/mixed; boundary=q\n\n--q\n");
	puts_(&b, "Content-Type: text/calendar; method=REQUEST\n\nx\n");
	check_class(b.p, b.n, "IPM.Note");
	b.n = 0;
	/* 5000 parts in one multipart: 1000 kept */
	puts_(&b, "Content-Type: multipart/mixed; boundary=q\n\n");
	for (int i = 0; i < 5000; i++)
		puts_(&b, "--q\n\nx\n");
	puts_(&b, "--q\nContent-Type: text/calendar; method=REQUEST\n\nx\n--q--\n");
	check_class(b.p, b.n, "IPM.Note");
	/* a short output buffer gets a truncated copy */
	msgclass_of_message("x", 1, out, 4);
	assert_string_equal(out, "IPM");
	free(b.p);
}

/* --- the fetch callback -------------------------------------------------- */

#define MAXLOG 16

struct store {
	char *ids[64];
	const char *bodies[64];
	size_t lens[64], n;
	char log[MAXLOG][32];
	size_t nlog;
	int fail;
};

/* Turns a parsed tree into one like a BODYSTRUCTURE tree: bodies unloaded,
 * kept in the store for the callback. */
static void unload(struct mime_part *p, struct store *st)
{
	if (st->n < 64 && p->part_id) {
		st->ids[st->n] = p->part_id;
		st->bodies[st->n] = p->body;
		st->lens[st->n++] = p->body_len;
	}
	p->body = NULL;
	p->body_len = 0;
	for (size_t i = 0; i < p->nchildren; i++)
		unload(&p->children[i], st);
}

static int fetch(const char *part_id, char **data, size_t *len, void *ctx)
{
	struct store *st = ctx;

	if (st->nlog < MAXLOG)
		snprintf(st->log[st->nlog++], 32, "%s", part_id);
	if (st->fail)
		return st->fail;
	for (size_t i = 0; i < st->n; i++) {
		if (strcmp(st->ids[i], part_id) != 0)
			continue;
		*data = malloc(st->lens[i] + 1);
		assert_non_null(*data);
		memcpy(*data, st->bodies[i], st->lens[i]);
		*len = st->lens[i];
		return 0;
	}
	return -ENOENT;
}

static const char *const fetched_parts[NFIXTURES] = {
	"", "", "2", "2", "2", "2", "", "", "", "1", "2", "", "", "1.1.2", "", "", "", "",
};

/* Every fixture gives the same class through BODYSTRUCTURE and fetch, and
 * only the parts a rule needs are fetched. */
static void test_fetch_fixtures(void **state)
{
	(void)state;
	for (size_t i = 0; i < NFIXTURES; i++) {
		struct store st = { 0 };
		struct mime_message m;
		char out[MSGCLASS_SIZE], got[MSGCLASS_SIZE] = "";
		size_t len;
		char *data = load_fixture(fixtures[i].file, &len);

		print_message("%s\n", fixtures[i].file);
		assert_int_equal(msgclass_parse(data, len, &m), 0);
		unload(&m.root, &st);
		msgclass_derive(&m, fetch, &st, out, sizeof(out));
		assert_string_equal(out, fixtures[i].cls);
		for (size_t k = 0; k < st.nlog; k++)
			snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%s", k ? "," : "",
				 st.log[k]);
		assert_string_equal(got, fetched_parts[i]);
		/* without a callback only structure counts */
		msgclass_derive(&m, NULL, NULL, out, sizeof(out));
		if (fetched_parts[i][0])
			assert_string_equal(out, "IPM.Note");
		else
			assert_string_equal(out, fixtures[i].cls);
		/* a failing fetch skips the rule */
		st.fail = -EIO;
		st.nlog = 0;
		msgclass_derive(&m, fetch, &st, out, sizeof(out));
		if (fetched_parts[i][0])
			assert_string_equal(out, "IPM.Note");
		msgclass_free(&m);
		free(data);
	}
}

static void test_fetch_tnef(void **state)
{
	struct tnef_spec sample = { NULL, "IPM.Note.Sample.Simple", false, K_NUL, false };
	struct buf t = tnef_build(&sample);
	struct store st = { 0 };
	struct mime_message m;
	char out[MSGCLASS_SIZE];
	size_t len;
	char *msg = tnef_message(&t, KEY, T_MIXED, &len);

	(void)state;
	assert_int_equal(msgclass_parse(msg, len, &m), 0);
	unload(&m.root, &st);
	msgclass_derive(&m, fetch, &st, out, sizeof(out));
	assert_string_equal(out, "IPM.Note.Sample.Simple");
	assert_int_equal(st.nlog, 1);
	assert_string_equal(st.log[0], "2");
	/* without the correlator the TNEF body is not even fetched */
	free(m.tnef_correlator);
	m.tnef_correlator = NULL;
	st.nlog = 0;
	msgclass_derive(&m, fetch, &st, out, sizeof(out));
	assert_string_equal(out, "IPM.Note");
	assert_int_equal(st.nlog, 0);
	msgclass_free(&m);
	free(msg);
	free(t.p);
}

/* A tree the caller builds by hand, as from BODYSTRUCTURE. */
static void test_fetch_handmade(void **state)
{
	struct mime_param method = { "method", "REQUEST" };
	struct mime_part alt[2] = {
		{ .type = "text", .subtype = "plain", .part_id = "1" },
		{ .type = "text", .subtype = "calendar", .part_id = "2", .encoding = "base64" },
	};
	struct mime_message m = {
		.root = { .type = "multipart",
			  .subtype = "alternative",
			  .part_id = "",
			  .children = alt,
			  .nchildren = 2 },
	};
	struct store st = { 0 };
	static const char cal64[] = "QkVHSU46VkNBTEVOREFSDQpNRVRIT0Q6Q0FOQ0VMDQpFTkQ6VkNBTEVOREFSDQo=";
	char out[MSGCLASS_SIZE];

	(void)state;
	st.ids[0] = "2";
	st.bodies[0] = cal64;
	st.lens[0] = strlen(cal64);
	st.n = 1;
	msgclass_derive(&m, fetch, &st, out, sizeof(out));
	assert_string_equal(out, "IPM.Schedule.Meeting.Canceled");
	assert_int_equal(st.nlog, 1);
	alt[1].params = &method;
	alt[1].nparams = 1;
	st.nlog = 0;
	msgclass_derive(&m, fetch, &st, out, sizeof(out));
	assert_string_equal(out, "IPM.Schedule.Meeting.Request");
	assert_int_equal(st.nlog, 0);
	/* a plain alternative: nothing fetched */
	alt[1].type = "text";
	alt[1].subtype = "html";
	msgclass_derive(&m, fetch, &st, out, sizeof(out));
	assert_string_equal(out, "IPM.Note");
	assert_int_equal(st.nlog, 0);
	msgclass_derive(NULL, fetch, &st, out, sizeof(out));
	assert_string_equal(out, "IPM.Note");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fixtures),
		cmocka_unit_test(test_parse_tree),
		cmocka_unit_test(test_parse_single_part),
		cmocka_unit_test(test_parse_params),
		cmocka_unit_test(test_rules_inline),
		cmocka_unit_test(test_calendar_inline),
		cmocka_unit_test(test_content_class_inline),
		cmocka_unit_test(test_tnef),
		cmocka_unit_test(test_tnef_damaged),
		cmocka_unit_test(test_hostile),
		cmocka_unit_test(test_fetch_fixtures),
		cmocka_unit_test(test_fetch_tnef),
		cmocka_unit_test(test_fetch_handmade),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

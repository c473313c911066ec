/* msgclass.c - owns the rules of receive-folders.md section 2 that turn a
 * MIME tree into a message class: which parts count, which bodies are read
 * (and only those), and the final validation.  The parser is mime.c, the
 * TNEF reader tnef.c. */
#include "msgclass.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mime.h"
#include "tnef.h"

#define CLASS_MAX 254       /* strlen limit, receive-folders.md section 1 */
#define TEXT_CAP (1u << 20) /* raw bytes read of report and calendar bodies */
#define CAL_LEVELS 3        /* containers searched below the top for text/calendar */

struct source {
	msgclass_fetch_fn *fetch;
	void *ctx;
};

int msgclass_parse(const char *data, size_t len, struct mime_message *out)
{
	return mime_parse(data, len, out);
}

void msgclass_free(struct mime_message *m)
{
	mime_free(m);
}

static bool class_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > CLASS_MAX || s[0] == '.' || s[n - 1] == '.' || strstr(s, ".."))
		return false;
	for (; *s; s++)
		if (*s < 0x20 || *s > 0x7e)
			return false;
	return true;
}

/* cls = prefix + rest; false (cls untouched) if that would not fit. */
static bool set_class(char cls[MSGCLASS_SIZE], const char *prefix, const char *rest)
{
	if (strlen(prefix) + strlen(rest) > CLASS_MAX)
		return false;
	snprintf(cls, MSGCLASS_SIZE, "%s%s", prefix, rest);
	return true;
}

/* The decoded body of p, from the tree or through fetch; at most cap raw
 * bytes (0: all) are decoded.  *out is malloc'd and NUL-terminated. */
static int load_body(const struct mime_part *p, const struct source *src, size_t cap, char **out,
		     size_t *outlen)
{
	char *fetched = NULL;
	const char *raw = p->body;
	size_t rawlen = p->body_len;
	int r;

	*out = NULL;
	if (!raw) {
		if (!src->fetch || !p->part_id)
			return -ENOENT;
		rawlen = 0;
		r = src->fetch(p->part_id, &fetched, &rawlen, src->ctx);
		if (r < 0) {
			free(fetched);
			return r;
		}
		raw = fetched ? fetched : "";
		if (!fetched)
			rawlen = 0;
	}
	if (cap && rawlen > cap)
		rawlen = cap;
	r = mime_decode(p->encoding, raw, rawlen, out, outlen);
	free(fetched);
	return r;
}

/* Line iteration over a decoded body, after unfolding it in place: header
 * style keeps the white space of a continuation, iCalendar drops it. */
struct lines {
	char *p;
	size_t n;
};

static void unfold_text(struct lines *l, bool keep_ws)
{
	char *s = l->p;
	size_t w = 0, n = l->n;

	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\r' && i + 2 < n && s[i + 1] == '\n' && (s[i + 2] == ' ' || s[i + 2] == '\t')) {
			i += keep_ws ? 1 : 2;
			continue;
		}
		if (s[i] == '\n' && i + 1 < n && (s[i + 1] == ' ' || s[i + 1] == '\t')) {
			i += keep_ws ? 0 : 1;
			continue;
		}
		s[w++] = s[i];
	}
	s[w] = '\0';
	l->n = w;
}

/* The next line, NUL-terminated in place without its line break. */
static bool next_line(struct lines *l, char **line)
{
	char *nl;
	size_t len;

	if (l->n == 0)
		return false;
	*line = l->p;
	nl = memchr(l->p, '\n', l->n);
	len = nl ? (size_t)(nl - l->p) : l->n;
	l->p[len] = '\0'; /* the NUL after the buffer when there is no '\n' */
	if (len && l->p[len - 1] == '\r')
		l->p[len - 1] = '\0';
	l->p += nl ? len + 1 : len;
	l->n -= nl ? len + 1 : len;
	return true;
}

/* The value of a "Name: value" line, or NULL if the line is another field. */
static const char *field(const char *line, const char *name)
{
	size_t n = strlen(name);

	if (strncasecmp(line, name, n) != 0)
		return NULL;
	line += n;
	while (*line == ' ' || *line == '\t')
		line++;
	if (*line != ':')
		return NULL;
	line++;
	while (*line == ' ' || *line == '\t')
		line++;
	return line;
}

static bool word_is(const char *w, size_t n, const char *what)
{
	return strlen(what) == n && strncasecmp(w, what, n) == 0;
}

static size_t word_len(const char *s, const char *stops)
{
	size_t n = 0;

	while (s[n] && !strchr(stops, s[n]))
		n++;
	return n;
}

/* Rule 1: TNEF. */
static const struct {
	const char *from, *to;
} legacy_names[] = {
	{ "IPM.Microsoft Mail.Note", "IPM.Note" },
	{ "IPM.Microsoft Mail.Read Receipt", "Report.IPM.Note.IPNRN" },
	{ "IPM.Microsoft Mail.Non-Delivery", "Report.IPM.Note.NDR" },
	{ "IPM.Microsoft Schedule.MtgReq", "IPM.Schedule.Meeting.Request" },
	{ "IPM.Microsoft Schedule.MtgRespP", "IPM.Schedule.Meeting.Resp.Pos" },
	{ "IPM.Microsoft Schedule.MtgRespN", "IPM.Schedule.Meeting.Resp.Neg" },
	{ "IPM.Microsoft Schedule.MtgRespA", "IPM.Schedule.Meeting.Resp.Tent" },
	{ "IPM.Microsoft Schedule.MtgCncl", "IPM.Schedule.Meeting.Canceled" },
};

static const char *tnef_class_name(const char *v)
{
	static const char v3[] = "Microsoft Mail v3.0 ";

	if (strncasecmp(v, v3, sizeof(v3) - 1) == 0)
		v += sizeof(v3) - 1;
	for (size_t i = 0; i < sizeof(legacy_names) / sizeof(legacy_names[0]); i++)
		if (strcasecmp(v, legacy_names[i].from) == 0)
			return legacy_names[i].to;
	return class_valid(v) ? v : NULL;
}

static const struct mime_part *find_tnef(const struct mime_part *root)
{
	const struct mime_part *tnef = NULL;
	bool text = false;

	if (mime_is(root, "application", "ms-tnef"))
		return root;
	if (!mime_is(root, "multipart", "mixed"))
		return NULL;
	for (size_t i = 0; i < root->nchildren; i++) {
		if (mime_is(&root->children[i], "text", "plain"))
			text = true;
		else if (!tnef && mime_is(&root->children[i], "application", "ms-tnef"))
			tnef = &root->children[i];
	}
	return text ? tnef : NULL;
}

/* The key is the header's bytes, usually with a terminating NUL. */
static bool key_matches(const struct tnef_info *ti, const char *correlator)
{
	size_t n = ti->keylen;

	if (!ti->key)
		return false;
	if (n > 0 && ti->key[n - 1] == '\0')
		n--;
	return n > 0 && n == strlen(correlator) && memcmp(ti->key, correlator, n) == 0;
}

static bool rule_tnef(const struct mime_message *m, const struct source *src, char cls[MSGCLASS_SIZE])
{
	const struct mime_part *p = find_tnef(&m->root);
	const char *name = NULL;
	struct tnef_info ti;
	char *body;
	size_t len;

	if (!p || !m->tnef_correlator || !*m->tnef_correlator)
		return false;
	if (load_body(p, src, 0, &body, &len) < 0)
		return false;
	if (tnef_scan(body, len, &ti) == 0 && key_matches(&ti, m->tnef_correlator)) {
		if (ti.prop_class[0])
			name = tnef_class_name(ti.prop_class);
		if (!name && ti.msg_class[0])
			name = tnef_class_name(ti.msg_class);
		if (name)
			set_class(cls, "", name);
	}
	free(body);
	return name != NULL;
}

/* Rules 2 and 3: delivery and disposition reports. */
static const struct mime_part *report_part(const struct mime_part *root, const char *report_type,
					   const char *subtype, const char *global_subtype)
{
	const char *rt = mime_param(root, "report-type");

	if (!mime_is(root, "multipart", "report") || !rt)
		return NULL;
	if (strcasecmp(rt, report_type) != 0 &&
	    !(strncasecmp(rt, "global-", 7) == 0 && strcasecmp(rt + 7, report_type) == 0))
		return NULL;
	for (size_t i = 0; i < root->nchildren; i++)
		if (mime_is(&root->children[i], "message", subtype) ||
		    mime_is(&root->children[i], "message", global_subtype))
			return &root->children[i];
	return NULL;
}

static int action_severity(const char *v)
{
	static const char *const actions[] = { "delivered", "expanded", "relayed", "delayed", "failed" };
	size_t n = word_len(v, " \t;(");

	for (int i = 0; i < 5; i++)
		if (word_is(v, n, actions[i]))
			return i;
	return -1;
}

static bool rule_dsn(const struct mime_message *m, const struct source *src, char cls[MSGCLASS_SIZE])
{
	static const char *const classes[] = {
		"REPORT.IPM.Note.DR",         "REPORT.IPM.Note.Expanded.DR", "REPORT.IPM.Note.Relayed.DR",
		"REPORT.IPM.Note.Delayed.DR", "REPORT.IPM.Note.NDR",
	};
	const struct mime_part *p =
		report_part(&m->root, "delivery-status", "delivery-status", "global-delivery-status");
	struct lines l;
	char *buf, *line;
	const char *v;
	int worst = -1, s;

	if (!p || load_body(p, src, TEXT_CAP, &l.p, &l.n) < 0)
		return false;
	buf = l.p;
	unfold_text(&l, true);
	while (next_line(&l, &line))
		if ((v = field(line, "Action")) && (s = action_severity(v)) > worst)
			worst = s;
	free(buf);
	if (worst >= 0)
		set_class(cls, classes[worst], "");
	return worst >= 0;
}

static const char *disposition_class(const char *v)
{
	static const char *const read[] = { "displayed", "dispatched", "processed" };
	static const char *const unread[] = { "deleted", "denied", "failed" };
	const char *semi = strchr(v, ';');
	size_t n;

	if (semi) /* "manual-action/MDN-sent-manually; displayed" */
		v = semi + 1;
	while (*v == ' ' || *v == '\t')
		v++;
	n = word_len(v, " \t;/(");
	for (int i = 0; i < 3; i++) {
		if (word_is(v, n, read[i]))
			return "REPORT.IPM.Note.IPNRN";
		if (word_is(v, n, unread[i]))
			return "REPORT.IPM.Note.IPNNRN";
	}
	return NULL;
}

static bool rule_mdn(const struct mime_message *m, const struct source *src, char cls[MSGCLASS_SIZE])
{
	const struct mime_part *p = &m->root;
	const char *v, *name = NULL;
	struct lines l;
	char *buf, *line;

	if (!mime_is(p, "message", "disposition-notification"))
		p = report_part(p, "disposition-notification", "disposition-notification",
				"global-disposition-notification");
	if (!p || load_body(p, src, TEXT_CAP, &l.p, &l.n) < 0)
		return false;
	buf = l.p;
	unfold_text(&l, true);
	while (next_line(&l, &line))
		if (!name && (v = field(line, "Disposition")))
			name = disposition_class(v);
	free(buf);
	if (name)
		set_class(cls, name, "");
	return name != NULL;
}

/* Rule 4: S/MIME. */
static bool has_suffix(const char *s, const char *suffix)
{
	size_t a = s ? strlen(s) : 0, b = strlen(suffix);

	return a >= b && strcasecmp(s + a - b, suffix) == 0;
}

static bool rule_smime(const struct mime_message *m, char cls[MSGCLASS_SIZE])
{
	const struct mime_part *p = &m->root;

	if (mime_is(p, "multipart", "signed"))
		return set_class(cls, "IPM.Note.SMIME.MultipartSigned", "");
	if (mime_is(p, "application", "pkcs7-mime") || mime_is(p, "application", "x-pkcs7-mime") ||
	    (mime_is(p, "application", "octet-stream") &&
	     (has_suffix(p->disposition_filename, ".p7m") || has_suffix(mime_param(p, "name"), ".p7m"))))
		return set_class(cls, "IPM.Note.SMIME", "");
	return false;
}

/* Rule 5: iCalendar. */
enum ical_kind {
	ICAL_NONE,
	ICAL_EVENT,
	ICAL_TODO,
	ICAL_JOURNAL
};

struct ical {
	char method[32];
	char partstat[32];
	enum ical_kind kind;
	bool done; /* past the first component */
};

static const struct mime_part *find_calendar(const struct mime_part *p, int level)
{
	const struct mime_part *c;

	if (mime_is(p, "text", "calendar"))
		return !p->disposition_filename || mime_param(p, "method") ? p : NULL;
	if (level >= CAL_LEVELS ||
	    !(mime_is(p, "multipart", "mixed") || mime_is(p, "multipart", "alternative") ||
	      mime_is(p, "multipart", "related")))
		return NULL;
	for (size_t i = 0; i < p->nchildren; i++)
		if ((c = find_calendar(&p->children[i], level + 1)))
			return c;
	return NULL;
}

static void copy_word(char dst[32], const char *s)
{
	size_t n = word_len(s, " \t;:\"");

	snprintf(dst, 32, "%.*s", n < 31 ? (int)n : 31, s);
}

/* PARTSTAT from the parameters of "ATTENDEE;...;PARTSTAT=X;...:mailto:..." */
static void attendee_partstat(const char *s, char dst[32])
{
	bool quoted = false;

	for (; *s && (quoted || *s != ':'); s++) {
		if (*s == '"')
			quoted = !quoted;
		else if (!quoted && *s == ';' && strncasecmp(s + 1, "PARTSTAT=", 9) == 0) {
			s += 10;
			copy_word(dst, *s == '"' ? s + 1 : s);
			return;
		}
	}
}

static void ical_line(struct ical *ic, const char *line)
{
	size_t n = word_len(line, ";:");
	const char *v = strchr(line, ':');

	if (ic->done || !v)
		return;
	v++;
	if (word_is(line, n, "METHOD") && !ic->method[0] && ic->kind == ICAL_NONE) {
		copy_word(ic->method, v);
	} else if (word_is(line, n, "BEGIN") && ic->kind == ICAL_NONE) {
		size_t vn = word_len(v, " \t");

		ic->kind = word_is(v, vn, "VEVENT")     ? ICAL_EVENT
			   : word_is(v, vn, "VTODO")    ? ICAL_TODO
			   : word_is(v, vn, "VJOURNAL") ? ICAL_JOURNAL
							: ICAL_NONE;
	} else if (word_is(line, n, "END") && ic->kind != ICAL_NONE) {
		size_t vn = word_len(v, " \t");

		ic->done = word_is(v, vn, "VEVENT") || word_is(v, vn, "VTODO") || word_is(v, vn, "VJOURNAL");
	} else if (word_is(line, n, "ATTENDEE") && ic->kind != ICAL_NONE && !ic->partstat[0]) {
		attendee_partstat(line + n, ic->partstat);
	}
}

static int ical_scan(const struct mime_part *p, const struct source *src, struct ical *ic)
{
	struct lines l;
	char *buf, *line;
	int r = load_body(p, src, TEXT_CAP, &l.p, &l.n);

	if (r < 0)
		return r;
	buf = l.p;
	unfold_text(&l, false);
	while (next_line(&l, &line))
		ical_line(ic, line);
	free(buf);
	return 0;
}

static const char *calendar_class(const char *method, const struct ical *ic)
{
	if (ic->kind == ICAL_TODO)
		return "IPM.Task";
	if (ic->kind == ICAL_JOURNAL)
		return "IPM.Activity";
	if (!*method || strcasecmp(method, "PUBLISH") == 0)
		return "IPM.Appointment";
	if (strcasecmp(method, "REQUEST") == 0)
		return "IPM.Schedule.Meeting.Request";
	if (strcasecmp(method, "COUNTER") == 0)
		return "IPM.Schedule.Meeting.Resp.Tent";
	if (strcasecmp(method, "CANCEL") == 0)
		return "IPM.Schedule.Meeting.Canceled";
	if (strcasecmp(method, "REPLY") != 0)
		return NULL;
	if (strcasecmp(ic->partstat, "ACCEPTED") == 0)
		return "IPM.Schedule.Meeting.Resp.Pos";
	if (strcasecmp(ic->partstat, "TENTATIVE") == 0)
		return "IPM.Schedule.Meeting.Resp.Tent";
	if (strcasecmp(ic->partstat, "DECLINED") == 0)
		return "IPM.Schedule.Meeting.Resp.Neg";
	return NULL;
}

static bool rule_calendar(const struct mime_message *m, const struct source *src, char cls[MSGCLASS_SIZE])
{
	const struct mime_part *p = find_calendar(&m->root, 0);
	struct ical ic = { .kind = ICAL_NONE };
	const char *method, *name;

	if (!p)
		return false;
	method = mime_param(p, "method");
	if ((!method || strcasecmp(method, "REPLY") == 0) && ical_scan(p, src, &ic) < 0)
		return false;
	name = calendar_class(method ? method : ic.method, &ic);
	return name && set_class(cls, name, "");
}

/* Rule 6: Content-Class, with the body checks. */
static bool has_part(const struct mime_part *p, const char *type, const char *subtype, int depth)
{
	if (mime_is(p, type, subtype))
		return true;
	for (size_t i = 0; depth < MIME_MAX_DEPTH && i < p->nchildren; i++)
		if (has_part(&p->children[i], type, subtype, depth + 1))
			return true;
	return false;
}

enum fit {
	FIT_ANY,
	FIT_FAX,
	FIT_AUDIO
};

static bool rule_content_class(const struct mime_message *m, char cls[MSGCLASS_SIZE])
{
	static const struct {
		const char *value, *cls;
		enum fit fit;
	} kinds[] = {
		{ "fax", "IPM.Note.Microsoft.Fax", FIT_FAX },
		{ "fax-ca", "IPM.Note.Microsoft.Fax.CA", FIT_FAX },
		{ "missedcall", "IPM.Note.Microsoft.Missed.Voice", FIT_ANY },
		{ "voice-uc", "IPM.Note.Microsoft.Conversation.Voice", FIT_AUDIO },
		{ "voice-ca", "IPM.Note.Microsoft.Voicemail.UM.CA", FIT_AUDIO },
		{ "voice", "IPM.Note.Microsoft.Voicemail.UM", FIT_AUDIO },
	};
	const char *v = m->content_class;
	const struct mime_part *root = &m->root;

	if (!v)
		return false;
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		if (strcasecmp(v, kinds[i].value) != 0)
			continue;
		if ((kinds[i].fit == FIT_FAX &&
		     !(has_part(root, "text", "html", 0) && has_part(root, "image", "tiff", 0))) ||
		    (kinds[i].fit == FIT_AUDIO && !has_part(root, "audio", NULL, 0)))
			return false;
		return set_class(cls, kinds[i].cls, "");
	}
	if (strncasecmp(v, "urn:content-class:custom.", 25) == 0 && v[25])
		return set_class(cls, "IPM.Note.Custom.", v + 25);
	if (strncasecmp(v, "InfoPathForm.", 13) == 0 && v[13])
		return set_class(cls, "IPM.InfoPathForm.", v + 13);
	return false;
}

void msgclass_derive(const struct mime_message *m, msgclass_fetch_fn *fetch, void *ctx, char *out,
		     size_t outlen)
{
	struct source src = { fetch, ctx };
	char cls[MSGCLASS_SIZE] = "";

	if (m && !rule_tnef(m, &src, cls) && !rule_dsn(m, &src, cls) && !rule_mdn(m, &src, cls) &&
	    !rule_smime(m, cls) && !rule_calendar(m, &src, cls))
		cls[0] = '\0';
	if (m && (!cls[0] || strcmp(cls, "IPM.Note") == 0))
		rule_content_class(m, cls);
	if (!class_valid(cls))
		snprintf(cls, sizeof(cls), "IPM.Note");
	if (out && outlen)
		snprintf(out, outlen, "%s", cls);
}

void msgclass_of_message(const char *data, size_t len, char *out, size_t outlen)
{
	struct mime_message m;

	if (mime_parse(data, len, &m) < 0) {
		msgclass_derive(NULL, NULL, NULL, out, outlen);
		return;
	}
	msgclass_derive(&m, NULL, NULL, out, outlen);
	mime_free(&m);
}

/* mailbox_append.c - owns new messages (cp into a folder): the check that
 * the data is a message, the size limits (ours and the server's APPENDLIMIT),
 * and APPEND, whose outcome is looked up by Message-ID on a new connection
 * when the connection dies before the server's answer. */
#include "mailbox_p.h"
#include "util/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

bool mailbox_looks_like_message(const char *data, size_t len)
{
	size_t i = 0;

	/* the first line must be a header field: name ":" */
	while (i < len && data[i] > 0x20 && data[i] < 0x7f && data[i] != ':')
		i++;
	return i > 0 && i < len && data[i] == ':';
}

int mailbox_can_append(struct mailbox *mb, uint64_t ino)
{
	return mb_selectable(mb, ino) ? 0 : -EPERM;
}

struct append_job {
	const char *mbox;
	const struct flag_set *flags;
	int64_t date;
	const char *data;
	size_t len;
	uint64_t stored;	/* its size once line ends are CRLF */
	uint32_t new_uid;
	bool unknown;
};

/* The server's own APPENDLIMIT, if it has one, bounded by ours. */
static uint64_t session_limit(struct imap_session *s)
{
	uint64_t server = imap_append_limit(s);

	return server < MAILBOX_APPEND_MAX ? server : MAILBOX_APPEND_MAX;
}

static int append_fn(struct imap_session *s, const struct imap_folder_state *st, void *ctx)
{
	struct append_job *job = ctx;
	int r;

	(void)st;
	if (job->stored > session_limit(s))
		return -EFBIG;	/* the server's limit, learnt after the upload began */
	r = imap_append(s, job->mbox, job->flags, job->date, job->data, job->len, &job->new_uid);
	job->unknown = r < 0 && imap_dead(s);
	return r;
}

static int limit_fn(struct imap_session *s, const struct imap_folder_state *st, void *ctx)
{
	(void)st;
	*(uint64_t *)ctx = session_limit(s);
	return 0;
}

int mailbox_append_limit(struct mailbox *mb, uint64_t *limit)
{
	int r = pool_run(mb->pool, NULL, 0, limit_fn, limit);

	if (r < 0)
		*limit = MAILBOX_APPEND_MAX;
	return r;
}

/* The size the server stores: bare LF and bare CR become CRLF. */
static uint64_t stored_size(const char *data, size_t len)
{
	uint64_t n = len;

	for (size_t i = 0; i < len; i++) {
		if (data[i] == '\n' && (i == 0 || data[i - 1] != '\r'))
			n++;
		else if (data[i] == '\r' && (i + 1 == len || data[i + 1] != '\n'))
			n++;
	}
	return n;
}

struct search_job {
	char *message_id;
	uint32_t size;
	uint32_t uid;
};

static int search_fn(struct imap_session *s, const struct imap_folder_state *st, void *ctx)
{
	struct search_job *job = ctx;

	(void)st;
	return imap_search_message(s, job->message_id, job->size, &job->uid);
}

/* APPEND's outcome is unknown: look for the message by Message-ID. */
static int reconcile_append(struct mailbox *mb, struct folder *f, struct append_job *job)
{
	size_t hdr_len = job->len;
	struct search_job sj = { 0 };
	const char *blank = NULL;
	int r;

	for (size_t i = 0; i + 1 < job->len && !blank; i++)
		if (job->data[i] == '\n' && (job->data[i + 1] == '\n' || job->data[i + 1] == '\r'))
			blank = job->data + i + 1;
	if (blank)
		hdr_len = (size_t)(blank - job->data);
	if (job->stored > UINT32_MAX)	/* mailbox_append refused it already */
		return -EFBIG;
	sj.message_id = names_header_field(job->data, hdr_len, "Message-ID");
	sj.size = (uint32_t)job->stored;
	if (!sj.message_id) {
		log_warn("APPEND to %s: connection lost and the message has no Message-ID to check by", f->path);
		return -EIO;
	}
	r = pool_run(mb->pool, f->server, POOL_FRESH_SELECT, search_fn, &sj);
	free(sj.message_id);
	if (r == 0)
		job->new_uid = sj.uid;
	return r == -ENOENT ? -EIO : r;
}

int mailbox_append(struct mailbox *mb, uint64_t folder_ino, const char *name, uint64_t from_ino,
		   const char *data, size_t len, const struct flag_set *flags, int64_t date)
{
	struct folder *f = mb_selectable(mb, folder_ino);
	struct append_job job = { .flags = flags, .date = date, .data = data, .len = len };
	int r;

	if (!f)
		return -EPERM;
	if (len == 0 || !mailbox_looks_like_message(data, len))
		return -EINVAL;
	job.stored = stored_size(data, len);
	if (job.stored > MAILBOX_APPEND_MAX)
		return -EFBIG;
	job.mbox = f->server;
	r = pool_run(mb->pool, NULL, POOL_NO_RETRY, append_fn, &job);
	if (r < 0 && job.unknown) {
		log_warn("connection lost during APPEND to %s: checking whether it was stored", f->path);
		r = reconcile_append(mb, f, &job);
	}
	if (r < 0)
		return r;
	mb_mark_stale(f);
	if (job.new_uid) {
		mb_add_alias(f, name, job.new_uid);
		mb_add_forward(mb, from_ino, f->id, job.new_uid);
	}
	return 0;
}

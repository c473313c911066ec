/* mailbox_append.c - owns new messages (cp into a folder): the check that
 * the data is a message, the size limits (ours and the server's APPENDLIMIT),
 * and APPEND, made exactly once through the change journal (changes.c). */
#include "mailbox_p.h"
#include "changes.h"
#include "inode.h"
#include "util/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

/* The server's own APPENDLIMIT, if it has one, bounded by ours. */
static uint64_t session_limit(struct imap_session *s)
{
	uint64_t server = imap_append_limit(s);

	return server < MAILBOX_APPEND_MAX ? server : MAILBOX_APPEND_MAX;
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

/* -o writeback: the copy is journaled, listed in f at once as name (the
 * inode cp created), and stored by the flusher. */
static int queue_append(struct mailbox *mb, struct folder *f, const char *name, uint64_t from_ino,
			const char *data, size_t len, uint64_t stored, const struct flag_set *flags,
			int64_t date)
{
	struct change_dest dest = { .folder = f->server };
	int64_t when = date ? date : (int64_t)time(NULL);
	char *staged;
	uint64_t id;
	int r = changes_queue_append(mb, &dest, name, data, len, stored, flags, when, &id, &staged);

	if (r < 0)
		return r;
	if (mb_pending_add_copy(mb, id, f->id, name, inode_uid(from_ino), staged, len, when) < 0)
		log_warn("a cp into %.100s: out of memory; listed once stored", f->path);
	free(staged);
	changes_queued(mb, id);
	return 0;
}

int mailbox_append(struct mailbox *mb, uint64_t folder_ino, const char *name, uint64_t from_ino,
		   const char *data, size_t len, const struct flag_set *flags, int64_t date)
{
	struct folder *f = mb_selectable(mb, folder_ino);
	struct change_dest dest = { .folder = f ? f->server : NULL };
	uint64_t stored;
	uint32_t new_uid;
	int r;

	if (!f)
		return -EPERM;
	if (len == 0 || !mailbox_looks_like_message(data, len))
		return -EINVAL;
	stored = stored_size(data, len);
	if (stored > MAILBOX_APPEND_MAX)
		return -EFBIG;
	if (mb->opt.writeback && mb->journal)
		return queue_append(mb, f, name, from_ino, data, len, stored, flags, date);
	dest.next_uid = mb_known_next_uid(mb, f, &dest.validity);
	r = changes_append(mb, &dest, data, len, stored, flags, date, &new_uid);
	if (r < 0)
		return r;
	if (new_uid)
		mb_note_arrival(f, dest.validity, new_uid);
	mb_mark_stale(f);
	if (new_uid) {
		mb_add_alias(f, name, new_uid);
		mb_add_forward(mb, from_ino, f->id, new_uid);
	}
	return 0;
}

/* writeback_queue.c - owns what -o writeback does at the FUSE call
 * (changes.h): a change recorded as an acknowledged journal entry, and
 * shown at once through pending.c's arrivals (a moved message in its
 * destination, a copy, a new folder) -- and how the view follows when the
 * flusher (writeback.c) settles the entry: done, or not made. */
#include "changes_p.h"
#include "imap/flags.h"
#include "inode.h"
#include "util/log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WB_NOWHERE UINT32_MAX      /* the folder of a message deleted for good */
#define WB_UPLOAD_BASE 0x80000000u /* cp numbers for arrivals shown at mount */

/* ---- queueing (FUSE threads) ---- */

static int queue(struct mailbox *mb, struct journal_entry *e, uint64_t *id)
{
	int r;

	if (!mb->journal)
		return -EIO;
	e->flags = JOURNAL_ACKED;
	r = changes_add_claimed(mb, e, NULL, 0);
	if (r < 0)
		log_warn("%s of %.100s UID %u not done: %s", journal_op_name(e->op), e->src, e->src_uid,
			 r == -ENOSPC ? "the change journal is full" : strerror(-r));
	*id = e->id;
	return r;
}

int changes_queue_move(struct mailbox *mb, const struct change_msg *m, const struct change_dest *dest,
		       const char *name, uint64_t *id)
{
	/* the destination's UIDNEXT is read when the change is sent */
	struct journal_entry e = { .op = dest ? JOURNAL_MOVE : JOURNAL_EXPUNGE,
				   .src_validity = m->validity,
				   .src_uid = m->uid,
				   .size = m->size,
				   .internaldate = m->date };
	int r = -ENOMEM;

	if ((e.src = strdup(m->folder)) && (!dest || (e.dest = strdup(dest->folder))) &&
	    (e.aux = strdup(name)))
		r = queue(mb, &e, id);
	journal_entry_free(&e);
	return r;
}

int changes_queue_flags(struct mailbox *mb, const struct change_msg *m, const char *text, uint64_t *id)
{
	struct journal_entry e = { .op = JOURNAL_FLAGS, .src_validity = m->validity, .src_uid = m->uid };
	int r = -ENOMEM;

	if ((e.src = strdup(m->folder)) && (e.text = strdup(text)))
		r = queue(mb, &e, id);
	journal_entry_free(&e);
	return r;
}

int changes_queue_append(struct mailbox *mb, const struct change_dest *dest, const char *name,
			 const char *data, size_t len, uint64_t stored, const struct flag_set *flags,
			 int64_t date, uint64_t *id, char **staged)
{
	struct journal_entry e = { .op = JOURNAL_APPEND,
				   .flags = JOURNAL_ACKED,
				   .size = stored,
				   .internaldate = date ? date : (int64_t)time(NULL) };
	int r = -ENOMEM;

	*staged = NULL;
	if (!mb->journal)
		return -EIO;
	if ((e.dest = strdup(dest->folder)) && (e.aux = strdup(name)) &&
	    (!flags || (e.text = flags_format(flags))))
		r = changes_add_claimed(mb, &e, data, len);
	if (r == 0 && !(*staged = strdup(e.staged))) {
		journal_done(mb->journal, e.id); /* nobody was told it is stored */
		changes_release(mb, e.id);
		r = -ENOMEM;
	}
	if (r < 0 && r != -ENOMEM)
		log_warn("cp into %.100s not done: %s", dest->folder,
			 r == -ENOSPC ? "the change journal is full" : strerror(-r));
	*id = e.id;
	journal_entry_free(&e);
	return r;
}

int changes_queue_create(struct mailbox *mb, const char *server, uint64_t *id)
{
	struct journal_entry e = { .op = JOURNAL_CREATE };
	int r = -ENOMEM;

	if ((e.dest = strdup(server)))
		r = queue(mb, &e, id);
	journal_entry_free(&e);
	return r;
}

void changes_queued(struct mailbox *mb, uint64_t id)
{
	struct changes *c = mb->changes;
	struct timespec now;

	changes_release(mb, id);
	clock_gettime(CLOCK_MONOTONIC, &now);
	pthread_mutex_lock(&c->lock);
	if (!c->first_queued.tv_sec && !c->first_queued.tv_nsec)
		c->first_queued = now;
	c->last_queued = now;
	pthread_cond_signal(&c->flush_wake);
	pthread_mutex_unlock(&c->lock);
}

/* ---- what the mount shows ---- */

static struct folder *folder_by_server(struct mailbox *mb, const char *server)
{
	struct folder *found = NULL;

	pthread_rwlock_rdlock(&mb->tree_lock);
	for (size_t i = 0; i < mb->nfolders && !found; i++) {
		struct folder *f = mb->folders[i];
		const char *name = f ? f->server : NULL;

		if (name && f->present && strcmp(name, server) == 0)
			found = f;
	}
	pthread_rwlock_unlock(&mb->tree_lock);
	return found;
}

void changes_show_pending(struct mailbox *mb)
{
	struct journal_entry *v;
	size_t n;

	if (!mb->journal || journal_pending(mb->journal, &v, &n) < 0)
		return;
	for (size_t i = 0; i < n; i++) {
		const struct journal_entry *e = &v[i];
		struct folder *src =
			wb_acked(e) && e->src && e->op != JOURNAL_FLAGS ? folder_by_server(mb, e->src) : NULL;
		struct folder *dest = src && e->dest ? folder_by_server(mb, e->dest) : NULL;
		char name[24];

		if (wb_acked(e) && e->op == JOURNAL_APPEND && e->dest && e->staged &&
		    (dest = folder_by_server(mb, e->dest))) {
			/* no kernel inode is left from the cp: one of its own,
			 * above any upload number this mount gives */
			snprintf(name, sizeof(name), "%" PRIu64 ".eml", e->id % 1000000);
			mb_pending_add_copy(mb, e->id, dest->id, e->aux ? e->aux : name,
					    WB_UPLOAD_BASE | (uint32_t)(e->id & 0x7fffffff), e->staged,
					    e->size, e->internaldate);
		}
		if (src) {
			snprintf(name, sizeof(name), "%u.eml", e->src_uid);
			mb_forget_message(src, e->src_uid);
			mb_pending_add(mb, e->id, dest ? dest->id : WB_NOWHERE, e->aux ? e->aux : name,
				       src->id, e->src_uid);
		}
		journal_entry_free(&v[i]);
	}
	free(v);
}

/* e is on the server: its arrival gives way to the names and inodes of a
 * message moved by the mount. */
/* A folder mkdir made: the server has it now (done), or refused it. */
static void show_created(struct mailbox *mb, const struct journal_entry *e, bool done)
{
	struct folder *f = folder_by_server(mb, e->dest);

	if (!f)
		return;
	pthread_rwlock_wrlock(&mb->tree_lock);
	f->pending_create = false;
	if (!done) {
		f->present = false;
		mb_reindex_locked(mb);
	}
	pthread_rwlock_unlock(&mb->tree_lock);
	mb_mark_stale(f);
}

void wb_show_done(struct mailbox *mb, const struct journal_entry *e, uint32_t new_uid)
{
	struct mb_arrival a;
	struct folder *to;

	if (e->op == JOURNAL_CREATE) {
		show_created(mb, e, true);
		return;
	}
	if (!mb_pending_get(mb, e->id, &a))
		return;
	/* the names and inode it has now first: no lookup finds neither */
	to = a.folder != WB_NOWHERE ? mb_folder(mb, a.folder) : NULL;
	if (to && new_uid) {
		mb_add_alias(to, a.name, new_uid);
		mb_add_forward(mb, inode_of_message(a.src_folder, a.src_uid), to->id, new_uid);
		mb_note_arrival(to, e->dest_validity, new_uid);
	}
	if (to)
		mb_mark_stale(to);
	free(a.name);
	if (mb_pending_remove(mb, e->id, &a))
		free(a.name);
}

/* e was not made: the message is shown where the server has it. */
void wb_show_undone(struct mailbox *mb, const struct journal_entry *e)
{
	struct mb_arrival a;
	struct folder *f;

	if (e->op == JOURNAL_CREATE) {
		show_created(mb, e, false);
		return;
	}
	if (!mb_pending_remove(mb, e->id, &a))
		return;
	if ((f = mb_folder(mb, a.src_folder)))
		mb_unforget_message(f, a.src_uid);
	if (a.folder != WB_NOWHERE && (f = mb_folder(mb, a.folder)))
		mb_mark_stale(f);
	free(a.name);
}

char *changes_pending_flags(struct mailbox *mb, const char *folder, uint32_t validity, uint32_t uid)
{
	struct journal_entry *v;
	char *text = NULL;
	size_t n;

	if (!mb->journal || journal_count(mb->journal) == 0 || journal_pending(mb->journal, &v, &n) < 0)
		return NULL;
	for (size_t i = n; i-- > 0;) {
		const struct journal_entry *e = &v[i];

		if (!text && e->op == JOURNAL_FLAGS && e->src_uid == uid && e->src_validity == validity &&
		    e->text && strcmp(e->src, folder) == 0)
			text = strdup(e->text);
	}
	for (size_t i = 0; i < n; i++)
		journal_entry_free(&v[i]);
	free(v);
	return text;
}

/* mailbox_class.c - owns what receive folders need from the model: message
 * classes (derived from BODYSTRUCTURE, fetching only the parts a rule
 * reads, and remembered), folder look-ups by path, new-mail queries and
 * moves on behalf of routing, and the hook that reports folder renames. */
#include "mailbox_p.h"
#include "inode.h"
#include "util/log.h"
#include "mapi/msgclass.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PART_FETCH (16u << 20) /* a TNEF attachment larger than this is not read */

void mailbox_set_folder_hook(struct mailbox *mb, mailbox_folder_hook *fn, void *ctx)
{
	mb->folder_hook = fn;
	mb->folder_hook_ctx = ctx;
}

int mailbox_folder_by_path(struct mailbox *mb, const char *path, uint64_t *ino)
{
	struct folder *f;
	int r = -ENOENT;

	for (int pass = 0; pass < 2 && r == -ENOENT; pass++) {
		if (pass == 1)
			mb_refresh_tree(mb, 1);
		pthread_rwlock_rdlock(&mb->tree_lock);
		f = mb_folder_by_path_locked(mb, path);
		if (f && f->present && f->id != 0) {
			r = f->server && !f->noselect ? 0 : -EOPNOTSUPP;
			*ino = inode_of_folder(f->id);
		}
		pthread_rwlock_unlock(&mb->tree_lock);
	}
	return r;
}

static bool known_class(struct folder *f, uint32_t uid, uint32_t validity, char *out, size_t outlen)
{
	bool found = false;

	pthread_mutex_lock(&f->lock);
	for (size_t i = 0; i < f->nclasses && !found; i++) {
		if (f->classes[i].uid == uid && f->classes[i].uidvalidity == validity) {
			snprintf(out, outlen, "%s", f->classes[i].cls);
			found = true;
		}
	}
	pthread_mutex_unlock(&f->lock);
	return found;
}

static void remember_class(struct folder *f, uint32_t uid, uint32_t validity, const char *cls)
{
	char *copy = strdup(cls);
	struct known_class *v;

	if (!copy)
		return;
	pthread_mutex_lock(&f->lock);
	if (f->nclasses == MB_MAX_CLASSES) {
		free(f->classes[0].cls);
		memmove(f->classes, f->classes + 1, (f->nclasses - 1) * sizeof(*f->classes));
		f->nclasses--;
	}
	v = realloc(f->classes, (f->nclasses + 1) * sizeof(*v));
	if (v) {
		f->classes = v;
		f->classes[f->nclasses++] = (struct known_class){ uid, validity, copy };
		copy = NULL;
	}
	pthread_mutex_unlock(&f->lock);
	free(copy);
}

struct class_job {
	uint32_t uid;
	uint32_t uidvalidity;
	struct imap_session *session; /* for the part fetches, during derive */
	char cls[MSGCLASS_SIZE];
};

static int fetch_part(const char *part_id, char **data, size_t *len, void *ctx)
{
	struct class_job *job = ctx;

	return imap_fetch_part(job->session, job->uid, part_id, MAX_PART_FETCH, data, len);
}

static int class_fn(struct imap_session *s, const struct imap_folder_state *st, void *ctx)
{
	struct class_job *job = ctx;
	struct mime_message m;
	int r;

	if (st->uidvalidity != job->uidvalidity)
		return -EIO;
	r = imap_fetch_structure(s, job->uid, &m);
	if (r == -ENOENT)
		return r;
	if (r < 0) {
		/* a structure libetpan cannot parse is still a message */
		snprintf(job->cls, sizeof(job->cls), "IPM.Note");
		return 0;
	}
	job->session = s;
	msgclass_derive(&m, fetch_part, job, job->cls, sizeof(job->cls));
	imap_structure_free(&m);
	return 0;
}

int mailbox_message_class(struct mailbox *mb, uint64_t ino, char *out, size_t outlen)
{
	struct class_job job = { 0 };
	struct folder *f;
	uint32_t id;
	int r;

	if (!inode_is_message(ino))
		return -ENODATA;
	r = mb_locate(mb, ino, &id, &job.uid, NULL);
	f = r == 0 ? mb_folder(mb, id) : NULL;
	if (!f)
		return r ? r : -ENOENT;
	{
		struct listing *l = mb_listing(mb, f, 1e18, &r);

		if (!l)
			return r;
		job.uidvalidity = l->uidvalidity;
		mb_listing_put(l);
	}
	if (known_class(f, job.uid, job.uidvalidity, out, outlen))
		return 0;
	r = pool_run(mb->pool, f->server, 0, class_fn, &job);
	if (r < 0)
		return r;
	remember_class(f, job.uid, job.uidvalidity, job.cls);
	snprintf(out, outlen, "%s", job.cls);
	return 0;
}

int mailbox_new_messages(struct mailbox *mb, uint64_t folder_ino, uint32_t after, uint64_t **inos,
			 size_t *count, uint32_t *top_uid)
{
	struct folder *f = inode_is_folder(folder_ino) ? mb_folder(mb, inode_folder(folder_ino)) : NULL;
	struct listing *l;
	size_t n = 0;
	int r;

	*inos = NULL;
	*count = 0;
	*top_uid = after;
	if (!f)
		return -ENOENT;
	l = mb_listing(mb, f, 0, &r);
	if (!l)
		return r;
	*inos = malloc((l->count + 1) * sizeof(**inos));
	if (!*inos) {
		mb_listing_put(l);
		return -ENOMEM;
	}
	for (size_t i = 0; i < l->count; i++) {
		if (l->msgs[i].uid <= after)
			continue;
		(*inos)[n++] = inode_of_message(f->id, l->msgs[i].uid);
		if (l->msgs[i].uid > *top_uid)
			*top_uid = l->msgs[i].uid;
	}
	*count = n;
	mb_listing_put(l);
	return 0;
}

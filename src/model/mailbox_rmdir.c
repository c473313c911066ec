/* mailbox_rmdir.c - owns the removal of a folder for rmdir, which IMAP
 * makes dangerous: DELETE takes the folder's messages with it, whatever
 * arrived since anybody looked.  So the folder is first RENAMEd to a private
 * name at the same level (nothing is delivered to a name nobody knows), then
 * checked there -- no message, no subfolder, not even one imapfs does not
 * show -- and only then deleted; otherwise it gets its name back.  A
 * connection lost on the way leaves the folder under the private name, which
 * encodes the real one: the next LIST (of this mount, or of a later one)
 * renames it back.  A server that refuses the RENAME gets the check in place,
 * with the STATUS right before the DELETE. */
#include "mailbox_p.h"
#include "util/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TAG_LEN 8 /* hex digits after the prefix, then '-' and the leaf */

struct rmdir_job {
	const char *name;   /* the folder (modified UTF-7) */
	const char *hidden; /* its private name, NULL: check in place */
	bool selected;      /* the session has the folder selected */
	int verdict;        /* what the check found, before any failure */
	bool renamed;       /* the folder may be under hidden now */
	bool unknown;       /* the connection died: outcome unknown */
};

/* ---- the private name ---- */

static bool is_tag(const char *s)
{
	for (int i = 0; i < TAG_LEN; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return s[TAG_LEN] == '-';
}

/* "PARENT<delim>imapfs-rmdir-<tag>-LEAF" for "PARENT<delim>LEAF"; NULL when
 * the delimiter could appear in the name (or no memory). */
static char *hidden_name(const char *server, char delim)
{
	static unsigned counter;
	const char *leaf = delim ? strrchr(server, delim) : NULL;
	size_t plen = leaf ? (size_t)(leaf + 1 - server) : 0;
	struct timespec now;
	unsigned tag;
	char *out;

	if (delim && strchr(MB_RMDIR_PREFIX "0123456789abcdef", delim))
		return NULL;
	clock_gettime(CLOCK_REALTIME, &now);
	tag = (unsigned)now.tv_nsec ^ ((unsigned)getpid() << 12) ^
	      __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED) * 0x9e3779b9u;
	leaf = leaf ? leaf + 1 : server;
	out = malloc(plen + sizeof(MB_RMDIR_PREFIX) + TAG_LEN + 1 + strlen(leaf) + 1);
	if (out)
		sprintf(out, "%.*s%s%08x-%s", (int)plen, server, MB_RMDIR_PREFIX, tag, leaf);
	return out;
}

char *mb_rmdir_leftover(struct mailbox *mb, const char *name, char delim)
{
	const char *leaf = delim ? strrchr(name, delim) : NULL;
	size_t plen = leaf ? (size_t)(leaf + 1 - name) : 0, n = strlen(MB_RMDIR_PREFIX);
	char *out, *path = NULL;
	const char *rest;

	leaf = leaf ? leaf + 1 : name;
	if (strncmp(leaf, MB_RMDIR_PREFIX, n) != 0 || !is_tag(leaf + n))
		return NULL;
	rest = leaf + n + TAG_LEN + 1;
	if (!*rest || mb_rmdir_busy(mb, name, delim))
		return NULL;
	out = malloc(plen + strlen(rest) + 1);
	if (!out)
		return NULL;
	sprintf(out, "%.*s%s", (int)plen, name, rest);
	/* only a name imapfs would use itself goes back to the server */
	if (names_folder_to_path(out, delim, &path) < 0) {
		free(out);
		out = NULL;
	}
	free(path);
	return out;
}

bool mb_rmdir_busy(struct mailbox *mb, const char *name, char delim)
{
	bool busy = false;

	if (!strstr(name, MB_RMDIR_PREFIX))
		return false;
	pthread_mutex_lock(&mb->rmdir_lock);
	for (size_t i = 0; i < mb->nrmdir_busy && !busy; i++) {
		size_t n = strlen(mb->rmdir_busy[i]);

		busy = strncmp(name, mb->rmdir_busy[i], n) == 0 &&
		       (name[n] == '\0' || (delim && name[n] == delim));
	}
	pthread_mutex_unlock(&mb->rmdir_lock);
	return busy;
}

static int set_busy(struct mailbox *mb, char *hidden, bool busy)
{
	int r = 0;

	pthread_mutex_lock(&mb->rmdir_lock);
	if (busy) {
		char **v = realloc(mb->rmdir_busy, (mb->nrmdir_busy + 1) * sizeof(*v));

		if (v) {
			mb->rmdir_busy = v;
			mb->rmdir_busy[mb->nrmdir_busy++] = hidden;
		} else {
			r = -ENOMEM;
		}
	} else {
		for (size_t i = 0; i < mb->nrmdir_busy; i++)
			if (mb->rmdir_busy[i] == hidden)
				mb->rmdir_busy[i--] = mb->rmdir_busy[--mb->nrmdir_busy];
	}
	pthread_mutex_unlock(&mb->rmdir_lock);
	return r;
}

/* ---- on the server ---- */

/* What LIST "" "*" says about one folder name -- "*", not the tree imapfs
 * shows: names it refuses count too. */
struct scan {
	const char *name;
	size_t len;
	bool self;  /* the folder itself is listed */
	bool child; /* so is a folder below it */
};

static void scan_one(struct scan *sc, const char *name, char delim)
{
	if (strncmp(name, sc->name, sc->len) != 0)
		return;
	if (name[sc->len] == '\0')
		sc->self = true;
	else if (delim && name[sc->len] == delim)
		sc->child = true;
}

static void scan_cb(const char *name, char delim, unsigned flags, void *ctx)
{
	struct scan *sc = ctx;

	(void)flags;
	for (; sc->name; sc++)
		scan_one(sc, name, delim);
}

/* One LIST for the names of sc[], which ends with a NULL name. */
static int scan(struct imap_session *s, struct scan *sc)
{
	for (struct scan *p = sc; p->name; p++)
		p->len = strlen(p->name);
	return imap_list(s, scan_cb, sc);
}

/* STATUS of the folder a session has selected may answer from the
 * session's old view (Dovecot's does): then a new SELECT counts. */
static int count_messages(struct imap_session *s, const char *name, bool selected, uint32_t *count)
{
	struct imap_folder_state st = { 0 };
	int r;

	if (!selected)
		return imap_count_messages(s, name, count);
	r = imap_select(s, name, true, &st);
	*count = st.exists;
	return r;
}

/* 0 when folder name has no subfolder and no message (counted last). */
static int check_empty(struct imap_session *s, const char *name, bool selected)
{
	struct scan sc[2] = { { .name = name }, { 0 } };
	uint32_t count;
	int r = scan(s, sc);

	if (r == 0 && sc[0].child)
		r = -ENOTEMPTY;
	if (r == 0)
		r = count_messages(s, name, selected, &count);
	if (r == 0 && count > 0)
		r = -ENOTEMPTY;
	return r;
}

static int delete_checked(struct imap_session *s, struct rmdir_job *job, const char *name)
{
	int r = check_empty(s, name, job->selected);

	job->verdict = r;
	if (r == 0)
		r = imap_delete_folder(s, name);
	if (r == 0 && imap_subscribe(s, job->name, false) < 0)
		log_info("could not unsubscribe from %.100s", job->name);
	return r;
}

static int rmdir_fn(struct imap_session *s, const struct imap_folder_state *st, void *ctx)
{
	struct rmdir_job *job = ctx;
	const char *sel = imap_selected(s);
	int r;

	(void)st;
	/* a RENAME takes the selection along */
	job->selected = sel && strcmp(sel, job->name) == 0;
	r = job->hidden ? imap_rename_folder(s, job->name, job->hidden) : -EOPNOTSUPP;
	if (r < 0 && job->hidden && imap_dead(s)) {
		job->renamed = job->unknown = true;
		return r;
	}
	if (r == -ENOENT)
		return r;
	if (r < 0) {
		if (job->hidden)
			log_info("%.100s cannot be renamed (%s): checking it in place before DELETE",
				 job->name, strerror(-r));
		r = delete_checked(s, job, job->name);
		job->unknown = r < 0 && imap_dead(s);
		return r;
	}
	job->renamed = true;
	r = delete_checked(s, job, job->hidden);
	if (r == 0) {
		job->renamed = false;
		return 0;
	}
	if (imap_dead(s)) {
		job->unknown = true;
		return r;
	}
	if (imap_rename_folder(s, job->hidden, job->name) == 0)
		job->renamed = false;
	else
		job->unknown = imap_dead(s);
	return r;
}

/* After a lost connection: the folder goes back to its name if it is under
 * the private one; whether it is still there says what happened. */
static int restore_fn(struct imap_session *s, const struct imap_folder_state *st, void *ctx)
{
	struct rmdir_job *job = ctx;
	struct scan sc[3] = { { .name = job->hidden }, { .name = job->name }, { 0 } };
	int r = scan(s, sc);

	(void)st;
	if (r < 0)
		return r;
	if (sc[0].self) {
		log_warn("rmdir %.100s interrupted: renaming it back from %.100s", job->name, job->hidden);
		r = imap_rename_folder(s, job->hidden, job->name);
		if (r < 0) /* dead: once more on a new connection */
			return imap_dead(s) ? r : -EIO;
		job->renamed = false;
		return job->verdict < 0 ? job->verdict : -EIO;
	}
	job->renamed = false;
	if (sc[1].self) {
		log_warn("rmdir %.100s interrupted: the folder is still there", job->name);
		return job->verdict < 0 ? job->verdict : -EIO;
	}
	return job->verdict == 0 ? 0 : -EIO;
}

int mb_delete_empty_folder(struct mailbox *mb, const char *server)
{
	struct rmdir_job job = { .name = server, .verdict = 1 };
	char *hidden = hidden_name(server, mb->delim);
	int r;

	if (hidden && set_busy(mb, hidden, true) < 0) {
		free(hidden);
		return -ENOMEM;
	}
	job.hidden = hidden;
	r = pool_run(mb->pool, NULL, POOL_NO_RETRY, rmdir_fn, &job);
	if (r < 0 && job.unknown && job.hidden) {
		log_warn("connection lost during rmdir %.100s: checking what happened", server);
		r = pool_run(mb->pool, NULL, 0, restore_fn, &job);
	} else if (r < 0 && job.unknown) {
		log_warn("connection lost during rmdir %.100s: it may or may not be deleted", server);
		r = -EIO;
	}
	if (job.renamed)
		log_warn("rmdir %.100s: the folder is left as %.100s; a folder listing renames it "
			 "back once its name is free",
			 server, hidden);
	if (hidden)
		set_busy(mb, hidden, false);
	free(hidden);
	return r;
}

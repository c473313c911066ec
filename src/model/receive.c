/* receive.c - owns the receive-folder table of the mount: loading and saving
 * it (METADATA entry or local state file), applying control-file writes,
 * look-ups, delivery targets, folder rename/removal updates, and the routing
 * thread.
 * Locks: receive.lock and receive.stop_lock (src/README, "Locks"), never
 * held together, and nothing is taken while one is held: folder checks and
 * saves happen outside them.  Saves stay in order without a lock held
 * across them: one thread at a time saves (`saving`), and a writer waits
 * until a save that includes its change has ended. */
#include "receive.h"
#include "mapi/ctl.h"
#include "util/deadline.h"
#include "util/files.h"
#include "imap/imap.h"
#include "inode.h"
#include "util/log.h"
#include "util/timefmt.h"
#include "mailbox.h"
#include "mapi/msgclass.h"
#include "imap/pool.h"
#include "mapi/rfolders.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

struct receive {
	struct mailbox *mb; /* this field and the four below: set once */
	struct pool *pool;
	struct receive_options opt;
	/* local persistence, when the server has no METADATA: a file in a
	 * private directory (files.h); both NULL when there is none */
	struct files_dir *state_dir;
	char *state_file;

	pthread_mutex_t lock;      /* protects the fields below */
	pthread_cond_t save_ended; /* with lock: saving became false */
	struct rfolders *table;
	bool loaded;         /* the server's (or the local) table was read:
				 * until then it must never be overwritten */
	bool on_server;      /* kept in the METADATA entry, else locally */
	uint64_t changes;    /* changes made to the table so far */
	bool saving;         /* a save is under way, without the lock */
	uint64_t saved_upto; /* the last save that ended had changes up to */
	int saved_result;    /* this one in: 0, or -EIO */

	uint32_t inbox_seen; /* routing: INBOX UIDs up to here are left alone;
				 * the routing thread's (receive_load's before) */
	pthread_t thread;
	bool running;
	pthread_mutex_t stop_lock; /* protects stopping */
	pthread_cond_t stop_cond;  /* with stop_lock: stopping became true */
	bool stopping;
};

#define STATE_FILE_PREFIX "receive-folders."
#define TABLE_TEXT_MAX (1u << 20) /* a saved table's bytes that are read */
#define ROUTE_POLL_DEFAULT 10     /* seconds between INBOX checks */
#define INBOX_NAME "INBOX"
#define INBOX_LEN (sizeof(INBOX_NAME) - 1)

/* ---- persistence ---- */

struct metadata_job {
	char *value; /* in: to store; out: loaded */
	bool store;
};

static int metadata_fn(struct imap_session *s, const struct imap_folder_state *st, void *ctx)
{
	struct metadata_job *job = ctx;

	(void)st;
	if (job->store)
		return imap_set_metadata(s, RECEIVE_METADATA_ENTRY, job->value);
	return imap_get_metadata(s, RECEIVE_METADATA_ENTRY, &job->value);
}

/* The state directory, opened (created) in *dir, and the table's name in
 * it; NULL when there is none usable. */
static char *state_path(const char *account, struct files_dir **dir)
{
	const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
	const char *base = xdg && *xdg == '/' ? xdg : home;
	const char *mid = base == xdg ? "/imapfs" : "/.local/state/imapfs";
	char *path, *name, err[512];

	*dir = NULL;
	if (!base || *base != '/')
		return NULL;
	path = malloc(strlen(base) + strlen(mid) + 1);
	name = malloc(sizeof(STATE_FILE_PREFIX) + strlen(account));
	if (!path || !name)
		goto fail;
	sprintf(path, "%s%s", base, mid);
	if (files_dir_open(path, dir, err, sizeof(err)) < 0) {
		log_warn("%s: the receive-folder table is not kept locally", err);
		goto fail;
	}
	free(path);
	sprintf(name, STATE_FILE_PREFIX "%s", account);
	for (char *p = name; *p; p++)
		if (*p == '/')
			*p = '_';
	return name;
fail:
	free(path);
	free(name);
	return NULL;
}

static int save_local(const struct receive *r, const char *text, size_t len)
{
	int err = files_replace_at(files_dir_fd(r->state_dir), r->state_file, text, len, true);

	if (err < 0)
		log_warn("cannot save the receive-folder table to %s/%s: %s", files_dir_path(r->state_dir),
			 r->state_file, strerror(-err));
	return err;
}

static char *load_local(const struct receive *r)
{
	int fd = files_open_at(files_dir_fd(r->state_dir), r->state_file);
	FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
	char *text = NULL;
	size_t len = 0;

	if (!f) {
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	text = malloc(TABLE_TEXT_MAX);
	if (text) {
		len = fread(text, 1, TABLE_TEXT_MAX - 1, f);
		text[len] = '\0';
	}
	fclose(f);
	return text;
}

/* Stores the control file's text (of a loaded table) on the server, or
 * locally when the server has no METADATA or refuses the entry (then
 * *on_server becomes false).  No lock held: network and file I/O. */
static int store_text(struct receive *r, char *text, size_t len, bool *on_server)
{
	struct metadata_job job = { .value = text, .store = true };
	int err = 0;

	if (*on_server)
		err = pool_run(r->pool, NULL, 0, metadata_fn, &job);
	if (err == -EPERM || err == -EOPNOTSUPP) {
		/* the server will not keep our entry: keep the table here */
		log_warn("the server refuses to store the receive-folder table; keeping it in %s%s%s",
			 r->state_dir ? files_dir_path(r->state_dir) : "(nowhere)", r->state_file ? "/" : "",
			 r->state_file ? r->state_file : "");
		*on_server = false;
	}
	if (!*on_server)
		err = r->state_file ? save_local(r, text, len) : -EIO;
	return err;
}

/* Saves the table as it is now, the lock released meanwhile; the caller
 * saw no save under way.  Its result goes to every writer whose change it
 * has. */
static void save_now_locked(struct receive *r)
{
	uint64_t upto = r->changes;
	bool loaded = r->loaded, on_server = r->on_server;
	size_t len = 0;
	char *text = loaded ? ctl_format(r->table, &len) : NULL;
	int err;

	r->saving = true;
	pthread_mutex_unlock(&r->lock);
	if (!loaded) {
		log_warn("not saving the receive-folder table: the stored one could not be read yet");
		err = -EAGAIN;
	} else {
		err = text ? store_text(r, text, len, &on_server) : -ENOMEM;
	}
	free(text);
	if (err < 0)
		log_warn("cannot save the receive-folder table: %s", strerror(-err));
	pthread_mutex_lock(&r->lock);
	r->on_server = r->on_server && on_server;
	r->saving = false;
	r->saved_upto = upto;
	r->saved_result = err < 0 ? -EIO : 0;
	pthread_cond_broadcast(&r->save_ended);
}

/* Saves the table with change `mine` (from ++changes) in it: the result of
 * the last save that ended with it in, 0 or -EIO.  Saves stay in order: one
 * under way (without this change) is waited for, and the wait for saves by
 * other threads is bounded by the mount's timeout (-ETIMEDOUT: the change is
 * in the table, but whether it reached the server is not known). */
static int save(struct receive *r, uint64_t mine)
{
	struct timespec until;
	bool in_time = true;
	int err;

	deadline_in(&until, r->opt.timeout * DEADLINE_MS_PER_S);
	pthread_mutex_lock(&r->lock);
	while (r->saved_upto < mine && (in_time || !r->saving)) {
		if (!r->saving)
			save_now_locked(r);
		else
			in_time = deadline_wait(&r->save_ended, &r->lock, &until);
	}
	err = r->saved_upto >= mine ? r->saved_result : -ETIMEDOUT;
	pthread_mutex_unlock(&r->lock);
	if (err == -ETIMEDOUT)
		log_warn("the receive-folder table is still being saved after %u s: this change may "
			 "not reach it",
			 r->opt.timeout);
	return err;
}

/* "2025-06-01T10:00:00Z" -> unix time, or now when it does not parse (an
 * impossible date included). */
static int64_t parse_time(const char *s)
{
	int64_t t;

	return s && timefmt_parse_iso(s, &t) ? t : time(NULL);
}

/* Rebuilds a table from saved text; NULL when nothing usable is in it. */
static struct rfolders *parse_table(const char *text)
{
	struct rfolders *t = rfolders_new_empty();
	const char *line = text;

	while (t && line && *line) {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);
		struct ctl_command c;
		const char *time_field = NULL;

		if (ctl_parse_line(line, len, &c) == 0) {
			const char *tab = memchr(line, '\t', len);

			tab = tab ? memchr(tab + 1, '\t', len - (size_t)(tab + 1 - line)) : NULL;
			time_field = tab ? tab + 1 : NULL;
			if (c.op == CTL_SET &&
			    rfolders_load_row(t, c.cls, c.folder, parse_time(time_field)) < 0)
				log_warn("ignoring a saved receive-folder row for \"%.100s\"", c.cls);
			ctl_command_free(&c);
		}
		line = nl ? nl + 1 : NULL;
	}
	if (t && rfolders_count(t) == 0) {
		rfolders_free(t);
		t = NULL;
	}
	return t;
}

/* Reads the stored table.  A table that could not be read (the connection
 * failed) leaves the defaults in place but not `loaded`: nothing may then
 * overwrite the stored table, and the next use tries again. */
static int load_table(struct receive *r)
{
	struct metadata_job job = { 0 };
	struct rfolders *t = NULL;
	bool ok;
	int err;

	err = pool_run(r->pool, NULL, 0, metadata_fn, &job);
	ok = err == 0 || err == -ENODATA || err == -EOPNOTSUPP;
	if (err == 0)
		t = parse_table(job.value);
	else if ((err == -EOPNOTSUPP || err == -ENODATA) && r->state_file && (job.value = load_local(r)))
		t = parse_table(job.value); /* nothing on the server: what we kept here */
	else if (!ok)
		log_warn("cannot read the receive-folder table from the server: %s (the default "
			 "rows apply; changes are refused until it can be read)",
			 strerror(-err));
	free(job.value);
	if (ok)
		log_debug("receive folders: kept %s",
			  err != -EOPNOTSUPP ? "on the server (METADATA)" : "in a local file");
	pthread_mutex_lock(&r->lock);
	/* a load by another thread may have ended first: changes since count */
	if (t && !r->loaded) {
		rfolders_free(r->table);
		r->table = t;
		t = NULL;
	}
	if (ok && !r->loaded)
		r->on_server = err != -EOPNOTSUPP;
	r->loaded = r->loaded || ok;
	pthread_mutex_unlock(&r->lock);
	rfolders_free(t);
	return ok ? 0 : -EIO;
}

/* 0 once the stored table has been read (reading it now if need be). */
static int ensure_loaded(struct receive *r)
{
	bool loaded;

	pthread_mutex_lock(&r->lock);
	loaded = r->loaded;
	pthread_mutex_unlock(&r->lock);
	return loaded ? 0 : load_table(r);
}

int receive_load(struct receive *r)
{
	uint64_t inbox, *inos = NULL;
	size_t n;

	load_table(r);
	if (mailbox_folder_by_path(r->mb, INBOX_NAME, &inbox) == 0 &&
	    mailbox_new_messages(r->mb, inbox, 0, &inos, &n, &r->inbox_seen) == 0)
		free(inos);
	return 0;
}

/* ---- the control file ---- */

static void folder_changed(const char *old_path, const char *new_path, void *ctx)
{
	struct receive *r = ctx;
	uint64_t change = 0;

	pthread_mutex_lock(&r->lock);
	if (new_path ? rfolders_rename_folder(r->table, old_path, new_path)
		     : rfolders_remove_folder(r->table, old_path))
		change = ++r->changes;
	pthread_mutex_unlock(&r->lock);
	if (change)
		save(r, change);
}

struct receive *receive_new(struct mailbox *mb, struct pool *pool, const struct receive_options *o)
{
	struct receive *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->mb = mb;
	r->pool = pool;
	r->opt = *o;
	r->table = rfolders_new_default(time(NULL));
	r->state_file = state_path(o->account, &r->state_dir);
	if (!r->table || deadline_cond_init(&r->save_ended) != 0) {
		rfolders_free(r->table);
		free(r->state_file);
		files_dir_close(r->state_dir);
		free(r);
		return NULL;
	}
	pthread_mutex_init(&r->lock, NULL);
	pthread_mutex_init(&r->stop_lock, NULL);
	pthread_cond_init(&r->stop_cond, NULL);
	mailbox_set_folder_hook(mb, folder_changed, r);
	return r;
}

void receive_free(struct receive *r)
{
	if (!r)
		return;
	receive_stop(r);
	mailbox_set_folder_hook(r->mb, NULL, NULL);
	rfolders_free(r->table);
	free(r->state_file);
	files_dir_close(r->state_dir);
	pthread_mutex_destroy(&r->lock);
	pthread_cond_destroy(&r->save_ended);
	pthread_mutex_destroy(&r->stop_lock);
	pthread_cond_destroy(&r->stop_cond);
	free(r);
}

char *receive_text(struct receive *r, size_t *len)
{
	char *text;

	pthread_mutex_lock(&r->lock);
	text = ctl_format(r->table, len);
	pthread_mutex_unlock(&r->lock);
	return text;
}

static int check_folder(const char *folder, void *ctx)
{
	struct receive *r = ctx;
	uint64_t ino;
	char *path;
	int err;

	if (strcmp(folder, RFOLDERS_ROOT) == 0)
		return 0;
	/* INBOX is case-insensitive (RFC 3501 5.1); the tree spells it INBOX */
	path = strdup(folder);
	if (!path)
		return -ENOMEM;
	if (strncasecmp(path, INBOX_NAME, INBOX_LEN) == 0 &&
	    (path[INBOX_LEN] == '\0' || path[INBOX_LEN] == '/'))
		memcpy(path, INBOX_NAME, INBOX_LEN);
	err = mailbox_folder_by_path(r->mb, path, &ino);
	free(path);
	return err;
}

static int known_result(const char *folder, void *ctx)
{
	(void)folder;
	return *(const int *)ctx;
}

struct apply_state {
	struct receive *r;
	uint64_t change; /* the last one made, 0: none */
};

static int apply(const struct ctl_command *c, void *ctx)
{
	struct apply_state *as = ctx;
	int checked = 0, err;

	/* the folder check may ask the server: not under the table lock */
	if (c->op == CTL_SET && *c->folder)
		checked = check_folder(c->folder, as->r);
	pthread_mutex_lock(&as->r->lock);
	err = rfolders_set(as->r->table, c->cls, c->op == CTL_SET ? c->folder : NULL, time(NULL),
			   known_result, &checked);
	if (err == 0)
		as->change = ++as->r->changes;
	pthread_mutex_unlock(&as->r->lock);
	return err;
}

struct ctl_writer *receive_writer_new(void)
{
	return ctl_writer_new();
}

void receive_writer_free(struct ctl_writer *w)
{
	ctl_writer_free(w);
}

/* The error of the lines applied, else the save's. */
static int saved(struct receive *r, const struct apply_state *as, int err)
{
	int saving = as->change ? save(r, as->change) : 0;

	return err < 0 ? err : saving;
}

int receive_write(struct receive *r, struct ctl_writer *w, const char *data, size_t len)
{
	struct apply_state as = { r, 0 };
	int err = ensure_loaded(r);

	if (err < 0)
		return err;
	return saved(r, &as, ctl_writer_feed(w, data, len, apply, &as));
}

int receive_flush(struct receive *r, struct ctl_writer *w)
{
	struct apply_state as = { r, 0 };
	int err = ensure_loaded(r);

	if (err < 0)
		return err;
	return saved(r, &as, ctl_writer_finish(w, apply, &as));
}

int receive_lookup(struct receive *r, const char *cls, char **value, size_t *len)
{
	const char *folder, *explicit_cls;
	int err;

	*value = NULL;
	pthread_mutex_lock(&r->lock);
	err = rfolders_lookup(r->table, cls, &folder, &explicit_cls);
	if (err == 0) {
		*len = strlen(folder) + strlen(explicit_cls) + 1;
		*value = malloc(*len + 1);
		if (*value)
			sprintf(*value, "%s\t%s", folder, explicit_cls);
		else
			err = -ENOMEM;
	}
	pthread_mutex_unlock(&r->lock);
	return err;
}

/* The receive folder of a class, as a folder inode. */
static int folder_of_class(struct receive *r, const char *cls, uint64_t *ino, char **path)
{
	const char *folder, *explicit_cls;
	char *copy = NULL;
	int err;

	pthread_mutex_lock(&r->lock);
	err = rfolders_lookup(r->table, cls, &folder, &explicit_cls);
	if (err == 0 && !(copy = strdup(folder)))
		err = -ENOMEM;
	pthread_mutex_unlock(&r->lock);
	if (err < 0)
		return err;
	if (strcmp(copy, RFOLDERS_ROOT) == 0)
		err = -EOPNOTSUPP; /* IMAP cannot store mail at the root */
	else
		err = mailbox_folder_by_path(r->mb, copy, ino);
	if (path && err == 0)
		*path = copy;
	else
		free(copy);
	return err;
}

int receive_target(struct receive *r, const char *data, size_t len, uint64_t *folder_ino)
{
	char cls[MSGCLASS_SIZE];
	int err = ensure_loaded(r);

	if (err < 0)
		return err; /* the rules are unknown: deliver nowhere rather than wrongly */
	msgclass_of_message(data, len, cls, sizeof(cls));
	log_debug("delivering a message of class %s", cls);
	return folder_of_class(r, cls, folder_ino, NULL);
}

/* ---- routing new mail ---- */

static void route_one(struct receive *r, uint64_t msg, uint64_t inbox)
{
	char cls[MSGCLASS_SIZE], *path = NULL;
	uint64_t target;
	int err;

	if (mailbox_message_class(r->mb, msg, cls, sizeof(cls)) < 0)
		return;
	err = folder_of_class(r, cls, &target, &path);
	if (err < 0 || target == inbox) {
		free(path);
		return;
	}
	err = mailbox_move_to(r->mb, msg, target);
	if (err < 0)
		log_warn("cannot route a message of class %s to %s: %s", cls, path, strerror(-err));
	else
		log_info("routed a message of class %s to %s", cls, path);
	free(path);
}

static void route_new_mail(struct receive *r)
{
	uint64_t inbox, *inos = NULL;
	size_t n = 0;

	if (ensure_loaded(r) < 0 || mailbox_folder_by_path(r->mb, INBOX_NAME, &inbox) < 0 ||
	    mailbox_new_messages(r->mb, inbox, r->inbox_seen, &inos, &n, &r->inbox_seen) < 0)
		return;
	for (size_t i = 0; i < n; i++)
		route_one(r, inos[i], inbox);
	free(inos);
}

static void *router(void *arg)
{
	struct receive *r = arg;
	struct timespec until;

	pthread_mutex_lock(&r->stop_lock);
	while (!r->stopping) {
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += r->opt.poll_interval > 0 ? r->opt.poll_interval : ROUTE_POLL_DEFAULT;
		pthread_cond_timedwait(&r->stop_cond, &r->stop_lock, &until);
		if (r->stopping)
			break;
		pthread_mutex_unlock(&r->stop_lock);
		route_new_mail(r);
		pthread_mutex_lock(&r->stop_lock);
	}
	pthread_mutex_unlock(&r->stop_lock);
	return NULL;
}

int receive_start(struct receive *r)
{
	int err;

	if (!r->opt.route_incoming || r->running)
		return 0;
	err = pthread_create(&r->thread, NULL, router, r);
	if (err)
		return -err;
	r->running = true;
	return 0;
}

void receive_stop(struct receive *r)
{
	if (!r->running)
		return;
	pthread_mutex_lock(&r->stop_lock);
	r->stopping = true;
	pthread_cond_signal(&r->stop_cond);
	pthread_mutex_unlock(&r->stop_lock);
	pthread_join(r->thread, NULL);
	r->running = false;
}

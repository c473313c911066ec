/* journal.c - owns the change journal's files (see journal.h): appending
 * and syncing records, the pending entries in memory, staged messages,
 * compaction, and what is set aside as damaged or unresolved. */
#define _GNU_SOURCE /* renameat2 and RENAME_NOREPLACE, in <stdio.h> */
#include "journal.h"
#include "util/files.h"
#include "util/log.h"
#include "util/timefmt.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define JOURNAL_LOG "journal.log"
#define JOURNAL_TMP "journal.log.tmp"
#define JOURNAL_UNRESOLVED "unresolved.txt"
#define JOURNAL_MAX_LOG (256u << 20) /* bytes read at open; beyond: damaged */
#define JOURNAL_LOCK_TRIES 50        /* 5 s for an imapfs on its way out */
#define JOURNAL_LOCK_PAUSE_NS 100000000L
#define JOURNAL_NAME_TRIES 100 /* names (x-2, x-3...) or ids tried for a file of ours */

struct journal {
	int dirfd;               /* the journal directory */
	int fd;                  /* journal.log, appending */
	pthread_mutex_t lock;    /* protects what follows; a leaf lock */
	struct journal_entry *v; /* by id; op 0 marks a resolved one */
	size_t n, cap, live;
	uint64_t next_id;
	uint64_t log_bytes;
	uint64_t records; /* in the log, of any kind: compaction leaves one per live entry */
	char damage[512]; /* what open found, for .status; "" if nothing */
	char name[128];   /* of the journal directory, for messages */
};

static struct journal_entry *find_locked(struct journal *j, uint64_t id)
{
	size_t lo = 0, hi = j->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (j->v[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < j->n && j->v[lo].id == id && j->v[lo].op ? &j->v[lo] : NULL;
}

/* Marks a slot resolved; it keeps its id, so the slots stay ordered. */
static void tombstone_locked(struct journal *j, struct journal_entry *e)
{
	uint64_t id = e->id;

	journal_entry_free(e); /* op 0: resolved */
	e->id = id;
	j->live--;
}

/* Takes e (moves its strings) into the pending set, which stays ordered. */
static int push_locked(struct journal *j, struct journal_entry *e)
{
	if (j->n && e->id <= j->v[j->n - 1].id)
		return -EBADMSG;
	if (j->n == j->cap) {
		size_t cap = j->cap ? j->cap * 2 : 16;
		struct journal_entry *v = realloc(j->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		j->v = v;
		j->cap = cap;
	}
	j->v[j->n++] = *e;
	memset(e, 0, sizeof(*e));
	j->live++;
	if (j->next_id <= j->v[j->n - 1].id)
		j->next_id = j->v[j->n - 1].id + 1;
	return 0;
}

/* Drops resolved slots once they outnumber the live ones. */
static void squeeze_locked(struct journal *j)
{
	size_t k = 0;

	if (j->n - j->live <= j->live && j->n - j->live < 1024)
		return;
	for (size_t i = 0; i < j->n; i++)
		if (j->v[i].op)
			j->v[k++] = j->v[i];
	j->n = k;
}

/* Entry id, if still pending, is in a batch about to be sent to a
 * destination in the state given. */
static void mark_sent_locked(struct journal *j, uint64_t id, uint32_t validity, uint32_t uidnext)
{
	struct journal_entry *e = find_locked(j, id);

	if (e) {
		e->flags |= JOURNAL_SENT;
		e->dest_validity = validity;
		e->dest_uidnext = uidnext;
	}
}

static int load_record(enum journal_kind kind, const uint8_t *p, size_t len, void *ctx)
{
	struct journal *j = ctx;
	struct journal_entry e, *old;
	struct journal_sent_rec s;
	int r;

	j->records++;
	if (kind == JOURNAL_REC_SENT) {
		if ((r = journal_decode_sent(p, len, &s)) < 0)
			return r;
		for (size_t i = 0; i < s.n; i++)
			mark_sent_locked(j, journal_sent_id(&s, i), s.dest_validity, s.dest_uidnext);
		return 0;
	}
	if (kind == JOURNAL_REC_DONE) {
		uint64_t id = 0;

		if (len != 8)
			return -EBADMSG;
		for (int i = 7; i >= 0; i--)
			id = id << 8 | p[i];
		if ((old = find_locked(j, id)) != NULL)
			tombstone_locked(j, old);
		return 0;
	}
	r = journal_decode_add(p, len, &e);
	if (r == 0 && (r = push_locked(j, &e)) < 0)
		journal_entry_free(&e);
	return r;
}

static void describe(const struct journal_entry *e, char *buf, size_t len)
{
	snprintf(buf, len,
		 "#%" PRIu64 " %s%s%s src=%.200s uidvalidity=%u uid=%u dest=%.200s "
		 "uidnext=%u message-id=%.200s size=%" PRIu64 " date=%" PRId64 " value=%.200s staged=%.80s",
		 e->id, journal_op_name(e->op), e->flags & JOURNAL_ACKED ? " (acknowledged)" : "",
		 e->flags & JOURNAL_SENT ? " (sent)" : "", e->src ? e->src : "-", e->src_validity, e->src_uid,
		 e->dest ? e->dest : "-", e->dest_uidnext, e->message_id ? e->message_id : "-", e->size,
		 e->internaldate, e->text ? e->text : (e->aux ? e->aux : "-"), e->staged ? e->staged : "-");
}

/* Appends a paragraph to unresolved.txt and syncs it. */
static void report(struct journal *j, const char *headline, const struct journal_entry *e)
{
	char line[1536], when[TIMEFMT_ISO_SIZE];
	int fd = files_append_at(j->dirfd, JOURNAL_UNRESOLVED);

	if (fd < 0) {
		log_err("cannot write %s/%s: %s", j->name, JOURNAL_UNRESOLVED, strerror(-fd));
		return;
	}
	snprintf(line, sizeof(line), "%s %s\n", timefmt_iso(time(NULL), when), headline);
	if (files_write_all(fd, line, strlen(line)) == 0 && e) {
		describe(e, line, sizeof(line) - 1);
		strcat(line, "\n");
		files_write_all(fd, line, strlen(line));
	}
	fdatasync(fd);
	close(fd);
}

/* Lists the good ADD records found after the damage, for the user. */
static void report_rest(struct journal *j, const uint8_t *data, size_t len)
{
	size_t i = 0, n;

	while ((i += journal_resync(data + i, len - i)) < len) {
		struct journal_entry e;

		n = journal_record_len(data + i, len - i);
		if (data[i + 2] == JOURNAL_REC_ADD &&
		    journal_decode_add(data + i + 7, n - JOURNAL_REC_OVERHEAD, &e) == 0) {
			report(j, "found after the damage, not replayed:", &e);
			journal_entry_free(&e);
		}
		i += n;
	}
}

/* A new, empty log as journal.log.tmp, already locked: it takes the name
 * journal.log only with the lock held, so that the name never leads a
 * second imapfs to a log it could lock.  fd or -errno (-EBUSY when some
 * other process has locked the new file first). */
static int new_log(struct journal *j)
{
	int fd, r;

	if (unlinkat(j->dirfd, JOURNAL_TMP, 0) < 0 && errno != ENOENT)
		return -errno;
	fd = files_create_at(j->dirfd, JOURNAL_TMP, O_RDWR | O_APPEND);
	if (fd < 0)
		return fd;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		r = errno == EWOULDBLOCK ? -EBUSY : -errno;
		close(fd);
		unlinkat(j->dirfd, JOURNAL_TMP, 0);
		return r;
	}
	return fd;
}

/* Renames the new log fd (new_log, written and synced) over journal.log and
 * makes it the one appended to.  Once the rename is done the switch is
 * made, even if syncing the directory then fails (that is reported): later
 * records must go to the file named journal.log, not to the replaced one.
 * Closing the old one lets go of its lock; nothing opens it by that name
 * any more. */
static int switch_log(struct journal *j, int fd, uint64_t bytes, uint64_t records)
{
	if (renameat(j->dirfd, JOURNAL_TMP, j->dirfd, JOURNAL_LOG) < 0) {
		int r = -errno;

		close(fd);
		unlinkat(j->dirfd, JOURNAL_TMP, 0);
		return r;
	}
	close(j->fd);
	j->fd = fd;
	j->log_bytes = bytes;
	j->records = records;
	return fsync(j->dirfd) < 0 ? -errno : 0;
}

/* Renames from to to unless to exists (-EEXIST). */
static int rename_noreplace(int dirfd, const char *from, const char *to)
{
	if (renameat2(dirfd, from, dirfd, to, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL)
		return -errno;
	/* a file system without RENAME_NOREPLACE (NFS): a link does not
	 * replace either */
	if (linkat(dirfd, from, dirfd, to, 0) < 0)
		return -errno;
	unlinkat(dirfd, from, 0);
	return 0;
}

/* Gives the file from a new name, stem.ext or, when a file has that one,
 * stem-2.ext, stem-3.ext...: what is kept for the user is never replaced.
 * move: from loses its name, else it keeps it (a second link).  The name
 * given is in out. */
static int name_aside(struct journal *j, const char *from, const char *stem, const char *ext, bool move,
		      char *out, size_t len)
{
	int r = -EEXIST;

	for (int i = 1; i <= JOURNAL_NAME_TRIES && r == -EEXIST; i++) {
		if (i == 1)
			snprintf(out, len, "%s%s", stem, ext);
		else
			snprintf(out, len, "%s-%d%s", stem, i, ext);
		if (move)
			r = rename_noreplace(j->dirfd, from, out);
		else
			r = linkat(j->dirfd, from, j->dirfd, out, 0) < 0 ? -errno : 0;
	}
	return r;
}

/* The log is not to be trusted: set it aside whole, say so, start afresh.
 * It is linked to its new name before a new log is renamed over it, so
 * that journal.log names a log this imapfs holds locked at every moment. */
static int set_aside(struct journal *j, size_t good, uint64_t size)
{
	char stem[48], name[64], line[600];
	int fd, r;

	fd = new_log(j);
	if (fd < 0)
		return fd;
	snprintf(stem, sizeof(stem), "damaged-%lld", (long long)time(NULL));
	if ((r = name_aside(j, JOURNAL_LOG, stem, ".log", false, name, sizeof(name))) < 0) {
		close(fd);
		unlinkat(j->dirfd, JOURNAL_TMP, 0);
		return r;
	}
	r = switch_log(j, fd, 0, 0);
	if (j->fd != fd) {
		unlinkat(j->dirfd, name, 0); /* still journal.log: next mount's to judge */
		return r;
	}
	snprintf(j->damage, sizeof(j->damage),
		 "journal damaged at byte %zu of %" PRIu64 ": set aside as %s/%s, %zu entries not replayed",
		 good, size, j->name, name, j->live);
	log_err("%s (listed in %s/%s)", j->damage, j->name, JOURNAL_UNRESOLVED);
	snprintf(line, sizeof(line), "%s; these were pending before the damage:", j->damage);
	report(j, line, NULL);
	for (size_t i = 0; i < j->n; i++) {
		if (j->v[i].op)
			report(j, "not replayed (damaged journal):", &j->v[i]);
		journal_entry_free(&j->v[i]);
	}
	j->n = j->live = 0;
	return r;
}

static int load(struct journal *j)
{
	struct stat st;
	enum journal_scan_end end;
	uint8_t *data;
	size_t good = 0;
	int r;

	if (fstat(j->fd, &st) < 0)
		return -errno;
	if ((uint64_t)st.st_size > JOURNAL_MAX_LOG)
		return set_aside(j, 0, (uint64_t)st.st_size);
	data = malloc((size_t)st.st_size + 1);
	if (!data)
		return -ENOMEM;
	r = pread(j->fd, data, (size_t)st.st_size, 0) == st.st_size ? 0 : -EIO;
	if (r == 0)
		r = journal_scan(data, (size_t)st.st_size, load_record, j, &good, &end);
	if (r == -ENOMEM || r == -EIO) {
		free(data);
		return r;
	}
	if (r < 0 || end == JOURNAL_DAMAGED) {
		r = set_aside(j, good, (uint64_t)st.st_size);
		report_rest(j, data + good, (size_t)st.st_size - good);
		free(data);
		return r;
	}
	free(data);
	if (end == JOURNAL_TORN_TAIL) {
		log_warn("journal: dropped a last record cut short (%" PRIu64 " bytes) by a crash",
			 (uint64_t)st.st_size - good);
		if (ftruncate(j->fd, (off_t)good) < 0 || fsync(j->fd) < 0)
			return -errno;
	}
	j->log_bytes = good;
	squeeze_locked(j);
	return 0;
}

/* Opens journal.log as j->fd and locks it: one imapfs per journal, since
 * two resolving the same entries, or one compacting under the other, would
 * each be wrong.  An imapfs just unmounted may still be writing its cache
 * out: it is given a moment.  The lock counts only on the file that
 * journal.log names once it is held: the holder may have just put a new
 * log in place (compaction) and let go of the old one.  -EBUSY when
 * another imapfs holds it. */
static int lock_log(struct journal *j)
{
	struct stat held, named;

	for (int i = 0; i < JOURNAL_LOCK_TRIES; i++) {
		if (i)
			nanosleep(&(struct timespec){ 0, JOURNAL_LOCK_PAUSE_NS }, NULL);
		if (j->fd >= 0)
			close(j->fd);
		j->fd = files_append_at(j->dirfd, JOURNAL_LOG);
		if (j->fd < 0)
			return j->fd;
		if (flock(j->fd, LOCK_EX | LOCK_NB) < 0) {
			if (errno != EWOULDBLOCK)
				return -errno;
			continue;
		}
		if (fstat(j->fd, &held) < 0)
			return -errno;
		if (fstatat(j->dirfd, JOURNAL_LOG, &named, AT_SYMLINK_NOFOLLOW) == 0 &&
		    named.st_dev == held.st_dev && named.st_ino == held.st_ino)
			return 0;
	}
	return -EBUSY;
}

void journal_dir_name(const char *account, char *out, size_t len)
{
	size_t n = (size_t)snprintf(out, len, "journal-");

	for (const char *p = account; *p && n + 1 < len; p++) {
		char c = *p;
		bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			     strchr("@.:-_+", c);

		out[n++] = plain ? c : '_'; /* one path component, readable */
	}
	out[n] = '\0';
}

int journal_open(int dirfd, const char *name, struct journal **out, char *err, size_t errlen)
{
	struct journal *j = calloc(1, sizeof(*j));
	struct timespec now;
	uint64_t first = 0;
	int r = -ENOMEM;

	*out = NULL;
	if (!j)
		goto fail;
	j->fd = j->dirfd = -1;
	j->next_id = 1;
	pthread_mutex_init(&j->lock, NULL);
	snprintf(j->name, sizeof(j->name), "%s", name);
	j->dirfd = files_subdir_at(dirfd, name, true);
	if (j->dirfd < 0) {
		r = j->dirfd;
		goto fail;
	}
	if ((r = lock_log(j)) == -EBUSY) {
		snprintf(err, errlen,
			 "the change journal %s/ is in use by another imapfs of this "
			 "account with the same cache directory (unmount it, or give this one its own "
			 "-o cache_dir)",
			 name);
		journal_close(j);
		return r;
	}
	if (r < 0)
		goto fail;
	if ((r = load(j)) < 0)
		goto fail;
	/* ids are unique across mounts, not only within one: a staged
	 * append-ID.eml left by a crash, or an unresolved-ID.eml kept for the
	 * user, must not meet a new entry's.  The first id is the wall clock
	 * in 2^-20 s (1M ids per second, seconds << 20 plus the fraction, so
	 * that a mount a moment after another starts above it too): far more
	 * than a mount hands out, each id being synced to disk, so each mount
	 * starts above the ids of those before it; and never below the ids
	 * still in the log, whatever the clock says. */
	if (clock_gettime(CLOCK_REALTIME, &now) == 0 && now.tv_sec > 0)
		first = (uint64_t)now.tv_sec << 20 | (uint64_t)now.tv_nsec >> 10;
	if (j->next_id < first)
		j->next_id = first;
	if (j->live)
		log_info("journal: %zu changes pending from an earlier mount", j->live);
	*out = j;
	return 0;
fail:
	snprintf(err, errlen,
		 "cannot use the change journal %s/ in the cache directory: %s "
		 "(it must be a directory of yours, not a link)",
		 name, strerror(-r));
	journal_close(j);
	return r;
}

void journal_close(struct journal *j)
{
	if (!j)
		return;
	for (size_t i = 0; i < j->n; i++)
		journal_entry_free(&j->v[i]);
	free(j->v);
	if (j->fd >= 0)
		close(j->fd);
	if (j->dirfd >= 0)
		close(j->dirfd);
	pthread_mutex_destroy(&j->lock);
	free(j);
}

static int stage(struct journal *j, uint64_t id, const void *data, size_t len, char **name)
{
	char buf[48];
	int fd, r;

	snprintf(buf, sizeof(buf), "append-%" PRIu64 ".eml", id);
	fd = files_create_at(j->dirfd, buf, O_WRONLY);
	if (fd < 0)
		return fd;
	r = files_write_all(fd, data, len);
	if (r == 0 && fdatasync(fd) < 0)
		r = -errno;
	close(fd);
	if (r == 0 && fsync(j->dirfd) < 0)
		r = -errno;
	if (r == 0 && !(*name = strdup(buf)))
		r = -ENOMEM;
	if (r < 0)
		unlinkat(j->dirfd, buf, 0);
	return r;
}

/* Appends the records rec (len bytes, count of them) with one sync. */
static int append_locked(struct journal *j, const void *rec, size_t len, size_t count)
{
	int r = files_write_all(j->fd, rec, len);

	if (r == 0 && fdatasync(j->fd) < 0)
		r = -errno;
	if (r < 0) {
		/* a partial record would read as a torn tail: cut it now */
		if (ftruncate(j->fd, (off_t)j->log_bytes) < 0)
			log_err("journal: cannot cut a failed write: %s", strerror(errno));
		return r;
	}
	j->log_bytes += len;
	j->records += count;
	return 0;
}

static int take_id(struct journal *j, uint64_t *id)
{
	int r;

	pthread_mutex_lock(&j->lock);
	r = j->live >= JOURNAL_MAX_PENDING ? -ENOSPC : 0;
	*id = j->next_id++;
	pthread_mutex_unlock(&j->lock);
	return r;
}

int journal_add(struct journal *j, struct journal_entry *e, const void *data, size_t len)
{
	struct journal_entry copy;
	uint8_t *rec = NULL;
	size_t reclen;
	int r = take_id(j, &e->id);

	for (int i = 1; r == 0 && data; i++) {
		r = stage(j, e->id, data, len, &e->staged);
		/* an append-ID.eml already there (left by a crash, the clock
		 * set back since) is not this entry's to replace: the next id */
		if (r != -EEXIST || i == JOURNAL_NAME_TRIES)
			break;
		r = take_id(j, &e->id);
	}
	if (r < 0)
		return r;
	e->recorded = time(NULL);
	if ((r = journal_encode_add(e, &rec, &reclen)) < 0 || (r = journal_entry_copy(&copy, e)) < 0)
		goto out;
	pthread_mutex_lock(&j->lock);
	r = append_locked(j, rec, reclen, 1);
	if (r == 0 && (r = push_locked(j, &copy)) < 0)
		log_err("journal: entry %" PRIu64 " written but not kept in memory", e->id);
	pthread_mutex_unlock(&j->lock);
	if (r < 0)
		journal_entry_free(&copy);
out:
	free(rec);
	if (r < 0 && e->staged) {
		unlinkat(j->dirfd, e->staged, 0);
		free(e->staged);
		e->staged = NULL;
	}
	return r;
}

/* Rewrites the log with the live entries only (when it has grown). */
static int compact_locked(struct journal *j)
{
	uint64_t bytes = 0;
	int fd, r = 0;

	if (j->live == 0) {
		if (ftruncate(j->fd, 0) < 0 || fdatasync(j->fd) < 0)
			return -errno;
		j->log_bytes = j->records = 0;
		return 0;
	}
	fd = new_log(j);
	if (fd < 0)
		return fd;
	for (size_t i = 0; r == 0 && i < j->n; i++) {
		uint8_t *rec;
		size_t len;

		if (!j->v[i].op || (r = journal_encode_add(&j->v[i], &rec, &len)) < 0)
			continue;
		r = files_write_all(fd, rec, len);
		bytes += len;
		free(rec);
	}
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (r < 0) {
		close(fd);
		unlinkat(j->dirfd, JOURNAL_TMP, 0);
		return r;
	}
	/* log_bytes stays the old log's until the switch: a failed append
	 * cuts the log back to it */
	return switch_log(j, fd, bytes, j->live);
}

/* Forgets the pending ones among ids, with a DONE record each, in one
 * write and one sync: a batch's end costs one sync, not one per message.
 * Their staged files go too, unless kept (a parked entry's, left where it
 * is when it could not be renamed aside). */
static int forget_locked(struct journal *j, const uint64_t *ids, size_t n, bool keep_staged)
{
	uint8_t one[JOURNAL_REC_OVERHEAD + 8], *rec = one;
	struct journal_entry *e;
	size_t len = 0, count;
	int r;

	if (n > 1 && (n > SIZE_MAX / sizeof(one) || !(rec = malloc(n * sizeof(one)))))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		if (find_locked(j, ids[i]))
			len += journal_encode_done(ids[i], rec + len);
	count = len / sizeof(one);
	r = count ? append_locked(j, rec, len, count) : 0;
	if (rec != one)
		free(rec);
	for (size_t i = 0; r == 0 && i < n; i++) {
		if (!(e = find_locked(j, ids[i])))
			continue;
		if (e->staged && !keep_staged)
			unlinkat(j->dirfd, e->staged, 0);
		tombstone_locked(j, e);
	}
	if (r < 0 || !count)
		return r;
	squeeze_locked(j);
	/* by the records in the log, not the slots in memory: squeeze keeps
	 * those near the live count, so one long-pending entry would hold
	 * compaction off while the log grows without end */
	if (j->live == 0 || (j->log_bytes > JOURNAL_COMPACT_BYTES && j->records > 4 * (uint64_t)j->live))
		r = compact_locked(j);
	return r;
}

static int finish(struct journal *j, uint64_t id, const char *why)
{
	struct journal_entry *e;
	char stem[48], kept[64], line[1024];
	int r;

	pthread_mutex_lock(&j->lock);
	e = find_locked(j, id);
	if (!e) {
		pthread_mutex_unlock(&j->lock);
		return -ENOENT;
	}
	if (why && e->staged) {
		/* the message is the user's now: under a name of its own, never
		 * over one kept before (unresolved-ID-2.eml...), and left where
		 * it is if it cannot be renamed */
		snprintf(stem, sizeof(stem), "unresolved-%" PRIu64, id);
		r = name_aside(j, e->staged, stem, ".eml", true, kept, sizeof(kept));
		if (r < 0)
			log_err("journal: cannot keep %s/%s as %s.eml: %s", j->name, e->staged, stem,
				strerror(-r));
		snprintf(line, sizeof(line), "%s (its message is kept as %s)", why,
			 r == 0 ? kept : e->staged);
		report(j, line, e);
		if (r == 0) {
			free(e->staged);
			e->staged = NULL;
		}
	} else if (why) {
		report(j, why, e);
	}
	r = forget_locked(j, &id, 1, why != NULL);
	pthread_mutex_unlock(&j->lock);
	if (r < 0)
		log_err("journal: cannot record the end of entry %" PRIu64 ": %s", id, strerror(-r));
	return r;
}

int journal_done(struct journal *j, uint64_t id)
{
	return finish(j, id, NULL);
}

int journal_done_many(struct journal *j, const uint64_t *ids, size_t n)
{
	int r;

	pthread_mutex_lock(&j->lock);
	r = forget_locked(j, ids, n, false);
	pthread_mutex_unlock(&j->lock);
	if (r < 0)
		log_err("journal: cannot record the end of %zu entries: %s", n, strerror(-r));
	return r;
}

int journal_sent(struct journal *j, const uint64_t *ids, size_t n, uint32_t dest_validity,
		 uint32_t dest_uidnext)
{
	uint8_t *rec;
	size_t len;
	int r = 0;

	/* a record per JOURNAL_SENT_MAX_IDS ids, each synced before the
	 * next, so that a crash cuts the last one only (journal_scan) */
	for (size_t i = 0, k; r == 0 && i < n; i += k) {
		k = n - i < JOURNAL_SENT_MAX_IDS ? n - i : JOURNAL_SENT_MAX_IDS;
		if ((r = journal_encode_sent(ids + i, k, dest_validity, dest_uidnext, &rec, &len)) < 0)
			break;
		pthread_mutex_lock(&j->lock);
		r = append_locked(j, rec, len, 1);
		for (size_t m = i; r == 0 && m < i + k; m++)
			mark_sent_locked(j, ids[m], dest_validity, dest_uidnext);
		pthread_mutex_unlock(&j->lock);
		free(rec);
	}
	if (r < 0)
		log_err("journal: cannot record a batch of %zu about to be sent: %s", n, strerror(-r));
	return r;
}

void journal_unsent(struct journal *j, uint64_t id)
{
	struct journal_entry *e;

	pthread_mutex_lock(&j->lock);
	if ((e = find_locked(j, id)) != NULL)
		e->flags &= (uint8_t)~JOURNAL_SENT;
	pthread_mutex_unlock(&j->lock);
}

int journal_park(struct journal *j, uint64_t id, const char *why)
{
	return finish(j, id, why ? why : "unresolved");
}

int journal_pending(struct journal *j, struct journal_entry **out, size_t *n)
{
	struct journal_entry *v;
	size_t k = 0;
	int r = 0;

	pthread_mutex_lock(&j->lock);
	v = calloc(j->live ? j->live : 1, sizeof(*v));
	for (size_t i = 0; v && r == 0 && i < j->n; i++)
		if (j->v[i].op && (r = journal_entry_copy(&v[k], &j->v[i])) == 0)
			k++;
	pthread_mutex_unlock(&j->lock);
	if (!v || r < 0) {
		for (size_t i = 0; v && i < k; i++)
			journal_entry_free(&v[i]);
		free(v);
		return -ENOMEM;
	}
	*out = v;
	*n = k;
	return 0;
}

size_t journal_count(struct journal *j)
{
	size_t n;

	pthread_mutex_lock(&j->lock);
	n = j->live;
	pthread_mutex_unlock(&j->lock);
	return n;
}

int journal_flags(struct journal *j, uint64_t id)
{
	const struct journal_entry *e;
	int flags;

	pthread_mutex_lock(&j->lock);
	flags = (e = find_locked(j, id)) != NULL ? e->flags : -ENOENT;
	pthread_mutex_unlock(&j->lock);
	return flags;
}

int journal_open_staged(struct journal *j, const char *name)
{
	return files_open_at(j->dirfd, name);
}

void journal_status(struct journal *j, FILE *out)
{
	char line[1200];

	pthread_mutex_lock(&j->lock);
	fprintf(out, "journal: %zu pending\n", j->live);
	if (j->damage[0])
		fprintf(out, "journal damage: %s\n", j->damage);
	for (size_t i = 0, shown = 0; i < j->n && shown < 100; i++) {
		if (!j->v[i].op)
			continue;
		describe(&j->v[i], line, sizeof(line));
		fprintf(out, "  pending %s\n", line);
		shown++;
	}
	pthread_mutex_unlock(&j->lock);
}

/* Unit tests for journal_codec.c and journal.c: records round-trip (SENT
 * ones too, and an entry's flags); a log cut anywhere in its last record
 * loses only that record; damage in the middle is detected and set aside,
 * never replayed; entries survive a reopen until done; staged messages are
 * written and removed; unresolved entries land in unresolved.txt with
 * their staged message; the log is emptied when nothing is pending, and
 * compacted while an entry stays pending; the lock that keeps a second
 * imapfs out goes with every new log; ids are not used again by a later
 * mount and no kept file is replaced; files are private; a batch's end is
 * one write, its staged messages removed; a batch about to be sent (SENT
 * records) marks its pending entries, through a reopen, a compaction and a
 * torn tail, and passes over ids not pending; the flags an entry is given
 * (JOURNAL_ACKED) are kept. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "model/journal.h"

static struct journal_entry sample(unsigned k)
{
	static char src[8][32], dest[8][32], mid[8][48]; /* one set per k % 8 */

	snprintf(src[k % 8], sizeof(src[0]), "INBOX/%u", k);
	snprintf(dest[k % 8], sizeof(dest[0]), "Archive/%u", k);
	snprintf(mid[k % 8], sizeof(mid[0]), "<%u@example.org>", k);
	return (struct journal_entry){
		.op = JOURNAL_MOVE,
		.src = src[k % 8],
		.src_validity = 7,
		.src_uid = 100 + k,
		.dest = dest[k % 8],
		.dest_validity = 9,
		.dest_uidnext = 50 + k,
		.message_id = mid[k % 8],
		.size = 4096u + k,
		.internaldate = 1700000000 + k,
	};
}

static void assert_same(const struct journal_entry *a, const struct journal_entry *b)
{
	assert_int_equal(a->op, b->op);
	assert_string_equal(a->src, b->src);
	assert_string_equal(a->dest, b->dest);
	assert_string_equal(a->message_id, b->message_id);
	assert_int_equal(a->src_validity, b->src_validity);
	assert_int_equal(a->src_uid, b->src_uid);
	assert_int_equal(a->dest_validity, b->dest_validity);
	assert_int_equal(a->dest_uidnext, b->dest_uidnext);
	assert_int_equal(a->size, b->size);
	assert_int_equal(a->internaldate, b->internaldate);
}

static int count_record(enum journal_kind kind, const uint8_t *p, size_t len, void *ctx)
{
	(void)kind, (void)p, (void)len;
	++*(int *)ctx;
	return 0;
}

static void test_codec_round_trip(void **state)
{
	struct journal_entry e = sample(3), d;
	uint8_t *rec;
	size_t len, good;
	enum journal_scan_end end;
	int n = 0;

	(void)state;
	e.id = 42;
	e.text = "\\Seen $Label1";
	assert_int_equal(journal_encode_add(&e, &rec, &len), 0);
	assert_int_equal(journal_scan(rec, len, count_record, &n, &good, &end), 0);
	assert_int_equal(n, 1);
	assert_int_equal(good, len);
	assert_int_equal(end, JOURNAL_CLEAN);
	assert_int_equal(journal_decode_add(rec + 7, len - JOURNAL_REC_OVERHEAD, &d), 0);
	assert_same(&e, &d);
	assert_int_equal(d.id, 42);
	assert_string_equal(d.text, "\\Seen $Label1");
	assert_null(d.staged);
	journal_entry_free(&d);
	free(rec);
}

static void test_codec_sent_and_flags(void **state)
{
	static uint64_t ids[JOURNAL_SENT_MAX_IDS + 1];
	struct journal_entry e = sample(2), d;
	struct journal_sent_rec s;
	uint8_t *rec;
	size_t len, good;
	enum journal_scan_end end;
	int n = 0;

	(void)state;
	for (size_t i = 0; i <= JOURNAL_SENT_MAX_IDS; i++)
		ids[i] = 0x0102030405060708ull + i;
	assert_int_equal(journal_encode_sent(ids, JOURNAL_SENT_MAX_IDS + 1, 1, 2, &rec, &len), -E2BIG);
	assert_int_equal(journal_encode_sent(ids, JOURNAL_SENT_MAX_IDS, 77, 500, &rec, &len), 0);
	assert_int_equal(journal_scan(rec, len, count_record, &n, &good, &end), 0);
	assert_int_equal(n, 1);
	assert_int_equal(good, len);
	assert_int_equal(end, JOURNAL_CLEAN);
	assert_int_equal(rec[2], JOURNAL_REC_SENT);
	assert_int_equal(journal_decode_sent(rec + 7, len - JOURNAL_REC_OVERHEAD, &s), 0);
	assert_int_equal(s.dest_validity, 77);
	assert_int_equal(s.dest_uidnext, 500);
	assert_int_equal(s.n, JOURNAL_SENT_MAX_IDS);
	for (size_t i = 0; i < s.n; i++)
		assert_true(journal_sent_id(&s, i) == ids[i]);
	/* a count that does not match the ids there are */
	assert_int_equal(journal_decode_sent(rec + 7, len - JOURNAL_REC_OVERHEAD - 8, &s), -EBADMSG);
	assert_int_equal(journal_decode_sent(rec + 7, 11, &s), -EBADMSG);
	free(rec);

	/* the flags and the destination's state go with an ADD record */
	e.id = 5;
	e.flags = JOURNAL_ACKED | JOURNAL_SENT;
	assert_int_equal(journal_encode_add(&e, &rec, &len), 0);
	assert_int_equal(journal_decode_add(rec + 7, len - JOURNAL_REC_OVERHEAD, &d), 0);
	assert_same(&e, &d);
	assert_int_equal(d.flags, JOURNAL_ACKED | JOURNAL_SENT);
	journal_entry_free(&d);
	free(rec);
}

static void test_codec_rejects_bad_payloads(void **state)
{
	struct journal_entry d;
	/* a string field announcing more bytes than there are */
	const uint8_t short_field[] = { 5, 200, 0, 0, 0, 'x' };
	/* an id but no operation */
	const uint8_t no_op[] = { 1, 8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0 };
	/* id 1, op move, staged "../x": not a plain name */
	const uint8_t bad_staged[] = { 1, 8, 0, 0, 0, 1, 0, 0, 0,  0, 0, 0, 0, 2,   8,   0,   0,  0,
				       1, 0, 0, 0, 0, 0, 0, 0, 15, 4, 0, 0, 0, '.', '.', '/', 'x' };

	(void)state;
	assert_int_equal(journal_decode_add(short_field, sizeof(short_field), &d), -EBADMSG);
	assert_int_equal(journal_decode_add(no_op, sizeof(no_op), &d), -EBADMSG);
	assert_int_equal(journal_decode_add(bad_staged, sizeof(bad_staged), &d), -EBADMSG);
}

/* Three records; every cut inside the last one is a torn tail keeping two. */
static void test_scan_torn_tail_and_damage(void **state)
{
	uint8_t buf[4096], *rec;
	size_t len, total = 0, good, last = 0;
	enum journal_scan_end end;
	int n;

	(void)state;
	for (unsigned k = 1; k <= 3; k++) {
		struct journal_entry e = sample(k);

		e.id = k;
		assert_int_equal(journal_encode_add(&e, &rec, &len), 0);
		last = total;
		memcpy(buf + total, rec, len);
		total += len;
		free(rec);
	}
	for (size_t cut = last + 1; cut < total; cut++) {
		n = 0;
		journal_scan(buf, cut, count_record, &n, &good, &end);
		assert_int_equal(n, 2);
		assert_int_equal(good, last);
		assert_int_equal(end, JOURNAL_TORN_TAIL);
	}
	/* a flipped byte in the first record, with good ones after: damage */
	buf[20] ^= 0x40;
	n = 0;
	journal_scan(buf, total, count_record, &n, &good, &end);
	assert_int_equal(n, 0);
	assert_int_equal(good, 0);
	assert_int_equal(end, JOURNAL_DAMAGED);
}

static char dir[64];
static int dirfd_;

static int setup(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/imapfs-journal-XXXXXX");
	assert_non_null(mkdtemp(dir));
	dirfd_ = open(dir, O_RDONLY | O_DIRECTORY);
	return dirfd_ < 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	close(dirfd_);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd);
}

static struct journal *open_journal(void)
{
	struct journal *j;
	char err[256];

	assert_int_equal(journal_open(dirfd_, "journal", &j, err, sizeof(err)), 0);
	return j;
}

static off_t log_size(void)
{
	struct stat st;
	char path[128];

	snprintf(path, sizeof(path), "%s/journal/journal.log", dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	return st.st_size;
}

/* The text of a file in the journal directory (static buffer). */
static const char *dump(const char *name)
{
	static char buf[8192];
	char path[160];
	FILE *fp;
	size_t n;

	snprintf(path, sizeof(path), "%s/journal/%s", dir, name);
	fp = fopen(path, "r");
	assert_non_null(fp);
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	buf[n] = '\0';
	fclose(fp);
	return buf;
}

static void test_entries_survive_reopen_until_done(void **state)
{
	struct journal *j = open_journal();
	struct journal_entry e[3], *p;
	size_t n;
	struct stat st;
	char path[160];

	(void)state;
	for (unsigned k = 0; k < 3; k++) {
		e[k] = sample(k);
		assert_int_equal(journal_add(j, &e[k], NULL, 0), 0);
	}
	assert_true(e[0].id < e[1].id && e[1].id < e[2].id);
	assert_int_equal(journal_done(j, e[1].id), 0);
	assert_int_equal(journal_done(j, e[1].id), -ENOENT);
	journal_close(j);

	j = open_journal(); /* as after a crash */
	assert_int_equal(journal_count(j), 2);
	assert_int_equal(journal_pending(j, &p, &n), 0);
	assert_int_equal(n, 2);
	assert_same(&p[0], &e[0]);
	assert_same(&p[1], &e[2]);
	for (size_t i = 0; i < n; i++)
		journal_entry_free(&p[i]);
	free(p);
	/* ids go on after the highest one seen */
	e[1] = sample(7);
	assert_int_equal(journal_add(j, &e[1], NULL, 0), 0);
	assert_true(e[1].id > e[2].id);
	assert_int_equal(journal_done(j, e[0].id), 0);
	assert_int_equal(journal_done(j, e[1].id), 0);
	assert_int_equal(journal_done(j, e[2].id), 0);
	assert_int_equal(log_size(), 0); /* nothing pending: emptied */
	snprintf(path, sizeof(path), "%s/journal", dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	journal_close(j);
}

static void test_staged_append_and_park(void **state)
{
	struct journal *j = open_journal();
	struct journal_entry e = { .op = JOURNAL_APPEND, .dest = "Drafts", .size = 5 };
	struct journal_entry f = { .op = JOURNAL_APPEND, .dest = "Drafts", .size = 5 };
	char buf[64], path[160];
	FILE *fp;
	int fd;

	(void)state;
	assert_int_equal(journal_add(j, &e, "From:", 5), 0);
	assert_non_null(e.staged);
	fd = journal_open_staged(j, e.staged);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, buf, sizeof(buf)), 5);
	assert_memory_equal(buf, "From:", 5);
	close(fd);
	assert_int_equal(journal_done(j, e.id), 0);
	assert_true(journal_open_staged(j, e.staged) < 0); /* removed */

	assert_int_equal(journal_add(j, &f, "Subj:", 5), 0);
	assert_int_equal(journal_park(j, f.id, "folder Drafts was deleted"), 0);
	assert_int_equal(journal_count(j), 0);
	snprintf(path, sizeof(path), "%s/journal/unresolved.txt", dir);
	fp = fopen(path, "r");
	assert_non_null(fp);
	assert_non_null(fgets(buf, sizeof(buf), fp));
	assert_non_null(strstr(buf, "folder Drafts was deleted"));
	fclose(fp);
	snprintf(buf, sizeof(buf), "unresolved-%llu.eml", (unsigned long long)f.id);
	fd = journal_open_staged(j, buf);
	assert_true(fd >= 0); /* the message is kept for the user */
	close(fd);
	free(e.staged);
	free(f.staged);
	journal_close(j);
}

static void test_torn_tail_dropped_damage_set_aside(void **state)
{
	struct journal *j = open_journal();
	struct journal_entry e[2] = { sample(1), sample(2) };
	char path[160], err[256];
	off_t size;
	int fd;

	(void)state;
	assert_int_equal(journal_add(j, &e[0], NULL, 0), 0);
	assert_int_equal(journal_add(j, &e[1], NULL, 0), 0);
	journal_close(j);
	size = log_size();
	snprintf(path, sizeof(path), "%s/journal/journal.log", dir);
	assert_int_equal(truncate(path, size - 3), 0); /* a crash mid-write */
	j = open_journal();
	assert_int_equal(journal_count(j), 1);
	e[1] = sample(3);
	assert_int_equal(journal_add(j, &e[1], NULL, 0), 0);
	journal_close(j);

	fd = open(path, O_RDWR); /* damage the first, a good one follows */
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "\xff", 1, 12), 1);
	close(fd);
	j = NULL;
	assert_int_equal(journal_open(dirfd_, "journal", &j, err, sizeof(err)), 0);
	assert_int_equal(journal_count(j), 0); /* not replayed */
	journal_close(j);
	assert_int_equal(log_size(), 0);
	assert_non_null(strstr(dump("unresolved.txt"), "journal damaged at byte 0"));
	assert_non_null(strstr(dump("unresolved.txt"), "src=INBOX/3"));
}

/* Adds and finishes one entry with a big field: about 60 kB more log.
 * (sample(0)'s strings: those of sample(1) to 7 stay as they are.) */
static void churn(struct journal *j)
{
	static char text[60000];
	struct journal_entry e = sample(0);

	if (!text[0])
		memset(text, 'x', sizeof(text) - 1);
	e.text = text;
	assert_int_equal(journal_add(j, &e, NULL, 0), 0);
	assert_int_equal(journal_done(j, e.id), 0);
}

/* One entry pending for long must not hold compaction off: the log stays
 * within a record of the threshold instead of growing until the next mount
 * finds it too large and sets it all aside. */
static void test_log_bounded_with_one_pending(void **state)
{
	struct journal *j = open_journal();
	struct journal_entry keep = sample(1), *p;
	size_t n;

	(void)state;
	assert_int_equal(journal_add(j, &keep, NULL, 0), 0);
	for (unsigned k = 0; k < (JOURNAL_COMPACT_BYTES + JOURNAL_COMPACT_BYTES / 4) / 60000; k++) {
		churn(j);
		assert_true(log_size() < JOURNAL_COMPACT_BYTES + 2 * 60000);
	}
	assert_true(log_size() < JOURNAL_COMPACT_BYTES); /* compacted at least once */
	journal_close(j);

	j = open_journal();
	assert_int_equal(journal_pending(j, &p, &n), 0);
	assert_int_equal(n, 1);
	assert_same(&p[0], &keep);
	assert_int_equal(p[0].id, keep.id);
	journal_entry_free(&p[0]);
	free(p);
	assert_int_equal(journal_done(j, keep.id), 0);
	assert_int_equal(log_size(), 0);
	journal_close(j);
}

static void test_one_imapfs_per_journal(void **state)
{
	struct journal *a = open_journal(), *b = NULL;
	char err[256];

	(void)state;
	assert_int_equal(journal_open(dirfd_, "journal", &b, err, sizeof(err)), -EBUSY);
	assert_null(b);
	assert_non_null(strstr(err, "in use by another imapfs"));
	journal_close(a);
	b = open_journal();
	journal_close(b);
}

/* journal.log, whichever file it names now, is locked by the journal open
 * in this test: a second imapfs can neither lock it nor open the journal. */
static void assert_log_held(void)
{
	struct journal *other = NULL;
	char path[160], err[256];
	int fd;

	snprintf(path, sizeof(path), "%s/journal/journal.log", dir);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(flock(fd, LOCK_EX | LOCK_NB), -1);
	assert_int_equal(errno, EWOULDBLOCK);
	close(fd);
	assert_int_equal(journal_open(dirfd_, "journal", &other, err, sizeof(err)), -EBUSY);
	assert_null(other);
}

/* A compaction and a damaged log set aside each put a new file in place of
 * journal.log; the lock must come with it, and the records that follow
 * must go to it. */
static void test_lock_follows_a_new_log(void **state)
{
	struct journal *j = open_journal();
	struct journal_entry keep = sample(1), later = sample(2);
	char path[160];
	off_t size = 0;
	int fd, k;

	(void)state;
	assert_int_equal(journal_add(j, &keep, NULL, 0), 0);
	for (k = 0; k < 2 * (int)(JOURNAL_COMPACT_BYTES / 60000) && log_size() >= size; k++) {
		size = log_size();
		churn(j);
	}
	assert_true(log_size() < size); /* compacted */
	assert_log_held();
	assert_int_equal(journal_add(j, &later, NULL, 0), 0);
	journal_close(j);
	j = open_journal();
	assert_int_equal(journal_count(j), 2);
	journal_close(j);

	snprintf(path, sizeof(path), "%s/journal/journal.log", dir);
	fd = open(path, O_RDWR); /* damage the first, a good one follows */
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "\xff", 1, 12), 1);
	close(fd);
	j = open_journal();
	assert_int_equal(journal_count(j), 0); /* set aside */
	assert_log_held();
	journal_close(j);
}

/* Copies of the pending entries; n must be as given. */
static struct journal_entry *pending(struct journal *j, size_t want)
{
	struct journal_entry *p;
	size_t n;

	assert_int_equal(journal_pending(j, &p, &n), 0);
	assert_int_equal(n, want);
	return p;
}

static void free_pending(struct journal_entry *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		journal_entry_free(&p[i]);
	free(p);
}

/* What journal_status says (static buffer). */
static const char *status(struct journal *j)
{
	static char buf[8192];
	FILE *fp = fmemopen(buf, sizeof(buf), "w");

	assert_non_null(fp);
	journal_status(j, fp);
	fclose(fp);
	return buf;
}

/* A batch about to be sent marks its pending entries, with the state of
 * the destination, in memory and through a reopen; ids not pending (done
 * already, or never given) are passed over. */
static void test_sent_marks_entries_through_reopen(void **state)
{
	struct journal *j = open_journal();
	struct journal_entry e[4] = { sample(1), sample(2), sample(3), sample(4) }, *p;
	uint64_t batch[4];

	(void)state;
	for (unsigned k = 0; k < 4; k++)
		assert_int_equal(journal_add(j, &e[k], NULL, 0), 0);
	assert_int_equal(journal_done(j, e[3].id), 0);
	batch[0] = e[0].id;
	batch[1] = e[3].id; /* done */
	batch[2] = e[2].id;
	batch[3] = e[3].id + 1000; /* never an entry */
	assert_int_equal(journal_sent(j, batch, 4, 77, 500), 0);
	assert_int_equal(journal_sent(j, batch, 0, 1, 1), 0); /* nothing */
	for (int round = 0; round < 2; round++) {
		p = pending(j, 3);
		assert_int_equal(p[0].flags, JOURNAL_SENT);
		assert_int_equal(p[0].dest_validity, 77);
		assert_int_equal(p[0].dest_uidnext, 500);
		assert_int_equal(p[1].flags, 0); /* not in the batch: as it was */
		assert_same(&p[1], &e[1]);
		assert_int_equal(p[2].flags, JOURNAL_SENT);
		assert_int_equal(p[2].dest_validity, 77);
		assert_int_equal(p[2].dest_uidnext, 500);
		assert_string_equal(p[2].src, e[2].src); /* the rest as it was */
		assert_int_equal(p[2].src_uid, e[2].src_uid);
		free_pending(p, 3);
		assert_non_null(strstr(status(j), "move (sent) src=INBOX/1 "));
		assert_non_null(strstr(status(j), "move src=INBOX/2 "));
		assert_null(strstr(status(j), "damage"));
		journal_close(j);
		j = open_journal(); /* as after a crash */
	}
	journal_close(j);
}

/* A compaction rewrites the pending entries: their flags and the state of
 * the destination must be in what it writes. */
static void test_sent_survives_compaction(void **state)
{
	struct journal *j = open_journal();
	struct journal_entry keep = sample(1), acked = sample(2), *p;
	uint64_t id;
	off_t size = 0;

	(void)state;
	acked.flags = JOURNAL_ACKED;
	assert_int_equal(journal_add(j, &keep, NULL, 0), 0);
	assert_int_equal(journal_add(j, &acked, NULL, 0), 0);
	id = keep.id;
	assert_int_equal(journal_sent(j, &id, 1, 88, 600), 0);
	for (int k = 0; k < 2 * (int)(JOURNAL_COMPACT_BYTES / 60000) && log_size() >= size; k++) {
		size = log_size();
		churn(j);
	}
	assert_true(log_size() < size); /* compacted */
	assert_true(log_size() < 1024); /* two ADD records, no SENT */
	for (int round = 0; round < 2; round++) {
		p = pending(j, 2);
		assert_int_equal(p[0].flags, JOURNAL_SENT);
		assert_int_equal(p[0].dest_validity, 88);
		assert_int_equal(p[0].dest_uidnext, 600);
		assert_int_equal(p[1].flags, JOURNAL_ACKED);
		assert_same(&p[1], &acked);
		free_pending(p, 2);
		journal_close(j);
		j = open_journal();
	}
	journal_close(j);
}

/* A crash while the SENT record was written: the batch was not sent, and
 * its entries are as they were. */
static void test_torn_sent_dropped(void **state)
{
	struct journal *j = open_journal();
	struct journal_entry e = sample(1), *p;
	off_t before;
	char path[160];

	(void)state;
	assert_int_equal(journal_add(j, &e, NULL, 0), 0);
	before = log_size();
	assert_int_equal(journal_sent(j, &e.id, 1, 77, 500), 0);
	assert_int_equal(log_size(), before + JOURNAL_REC_OVERHEAD + 12 + 8);
	journal_close(j);
	snprintf(path, sizeof(path), "%s/journal/journal.log", dir);
	assert_int_equal(truncate(path, log_size() - 3), 0);
	j = open_journal();
	assert_int_equal(log_size(), before); /* cut back */
	p = pending(j, 1);
	assert_int_equal(p[0].flags, 0);
	assert_same(&p[0], &e);
	free_pending(p, 1);
	assert_null(strstr(status(j), "damage"));
	journal_close(j);
}

/* More ids than a SENT record holds: two records, and an entry named in
 * the second is marked too. */
static void test_sent_big_batch(void **state)
{
	static uint64_t ids[JOURNAL_SENT_MAX_IDS + 10];
	struct journal *j = open_journal();
	struct journal_entry e = sample(1), *p;
	off_t before;

	(void)state;
	assert_int_equal(journal_add(j, &e, NULL, 0), 0);
	for (size_t i = 0; i < JOURNAL_SENT_MAX_IDS + 10; i++)
		ids[i] = e.id + 1000 + i; /* never entries */
	ids[JOURNAL_SENT_MAX_IDS + 5] = e.id;
	before = log_size();
	assert_int_equal(journal_sent(j, ids, JOURNAL_SENT_MAX_IDS + 10, 77, 500), 0);
	assert_int_equal(log_size(),
			 before + 2 * (JOURNAL_REC_OVERHEAD + 12) + 8 * (JOURNAL_SENT_MAX_IDS + 10));
	for (int round = 0; round < 2; round++) {
		p = pending(j, 1);
		assert_int_equal(p[0].flags, JOURNAL_SENT);
		assert_int_equal(p[0].dest_uidnext, 500);
		free_pending(p, 1);
		journal_close(j);
		j = open_journal();
	}
	journal_close(j);
}

/* The end of a batch: one DONE record each, one write; a staged message
 * goes with its entry; an id not pending is passed over. */
static void test_done_many_through_reopen(void **state)
{
	struct journal *j = open_journal();
	struct journal_entry e[3] = { sample(1), sample(2), sample(3) }, *p;
	struct journal_entry a = { .op = JOURNAL_APPEND, .dest = "Drafts", .size = 5 };
	uint64_t ids[4];
	off_t before;

	(void)state;
	for (unsigned k = 0; k < 3; k++)
		assert_int_equal(journal_add(j, &e[k], NULL, 0), 0);
	assert_int_equal(journal_add(j, &a, "From:", 5), 0);
	ids[0] = e[0].id;
	ids[1] = a.id;
	ids[2] = e[2].id;
	ids[3] = a.id + 1000; /* never an entry */
	before = log_size();
	assert_int_equal(journal_done_many(j, ids, 4), 0);
	assert_int_equal(log_size(), before + 3 * (JOURNAL_REC_OVERHEAD + 8));
	assert_int_equal(journal_count(j), 1);
	assert_true(journal_open_staged(j, a.staged) < 0); /* removed */
	assert_int_equal(journal_done_many(j, ids, 4), 0); /* none pending: nothing written */
	assert_int_equal(log_size(), before + 3 * (JOURNAL_REC_OVERHEAD + 8));
	journal_close(j);

	j = open_journal();
	p = pending(j, 1);
	assert_int_equal(p[0].id, e[1].id);
	assert_same(&p[0], &e[1]);
	free_pending(p, 1);
	ids[0] = e[1].id;
	assert_int_equal(journal_done_many(j, ids, 1), 0);
	assert_int_equal(journal_count(j), 0);
	assert_int_equal(log_size(), 0); /* nothing pending: emptied */
	free(a.staged);
	journal_close(j);
}

/* JOURNAL_ACKED, set by the caller before journal_add, is kept. */
static void test_acked_kept_through_reopen(void **state)
{
	struct journal *j = open_journal();
	struct journal_entry e = sample(1), *p;

	(void)state;
	e.flags = JOURNAL_ACKED;
	assert_int_equal(journal_add(j, &e, NULL, 0), 0);
	for (int round = 0; round < 2; round++) {
		p = pending(j, 1);
		assert_int_equal(p[0].flags, JOURNAL_ACKED);
		free_pending(p, 1);
		assert_non_null(strstr(status(j), "move (acknowledged) src=INBOX/1 "));
		journal_close(j);
		j = open_journal();
	}
	journal_close(j);
}

/* Writes a file into the journal directory, as something left there. */
static void plant(const char *name, const char *text)
{
	char path[160];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/journal", dir);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/journal/%s", dir, name);
	fp = fopen(path, "w");
	assert_non_null(fp);
	assert_int_equal(fputs(text, fp) >= 0, 1);
	assert_int_equal(fclose(fp), 0);
}

/* An APPEND parked at each of two mounts: each message is kept under its
 * own name, and a file already there is never replaced. */
static void test_kept_messages_never_replaced(void **state)
{
	struct journal *j = open_journal();
	struct journal_entry e = { .op = JOURNAL_APPEND, .dest = "Drafts", .size = 5 };
	struct journal_entry f = { .op = JOURNAL_APPEND, .dest = "Drafts", .size = 6 };
	struct journal_entry g = { .op = JOURNAL_APPEND, .dest = "Drafts", .size = 5 };
	char name[64], taken[64];

	(void)state;
	assert_int_equal(journal_add(j, &e, "First", 5), 0);
	assert_int_equal(journal_park(j, e.id, "folder Drafts was deleted"), 0);
	journal_close(j);

	j = open_journal(); /* the journal is empty: nothing to count ids from */
	assert_int_equal(journal_add(j, &f, "Second", 6), 0);
	assert_true(f.id != e.id);
	assert_int_equal(journal_park(j, f.id, "folder Drafts was deleted"), 0);
	snprintf(name, sizeof(name), "unresolved-%llu.eml", (unsigned long long)e.id);
	assert_string_equal(dump(name), "First");
	snprintf(name, sizeof(name), "unresolved-%llu.eml", (unsigned long long)f.id);
	assert_string_equal(dump(name), "Second");

	/* the name is taken (say, by a mount whose clock was ahead) */
	assert_int_equal(journal_add(j, &g, "Third", 5), 0);
	snprintf(taken, sizeof(taken), "unresolved-%llu.eml", (unsigned long long)g.id);
	plant(taken, "Planted");
	assert_int_equal(journal_park(j, g.id, "folder Drafts was deleted"), 0);
	assert_string_equal(dump(taken), "Planted");
	snprintf(name, sizeof(name), "unresolved-%llu-2.eml", (unsigned long long)g.id);
	assert_string_equal(dump(name), "Third");
	assert_non_null(strstr(dump("unresolved.txt"), name)); /* the user is told where */
	free(e.staged);
	free(f.staged);
	free(g.staged);
	journal_close(j);
}

/* Staged files left by a crash (the entry never recorded) are in the way of
 * neither a fresh journal's ids nor the next ones. */
static void test_stale_staged_files_not_in_the_way(void **state)
{
	struct journal *j;
	struct journal_entry m = sample(1);
	struct journal_entry e = { .op = JOURNAL_APPEND, .dest = "Drafts", .size = 5 };
	struct journal_entry f = { .op = JOURNAL_APPEND, .dest = "Drafts", .size = 5 };
	char name[64];
	int fd;

	(void)state;
	for (unsigned id = 1; id <= 3; id++) {
		snprintf(name, sizeof(name), "append-%u.eml", id);
		plant(name, "Stale");
	}
	j = open_journal();
	assert_int_equal(journal_add(j, &e, "Fresh", 5), 0);
	assert_string_equal(dump("append-1.eml"), "Stale");

	assert_int_equal(journal_add(j, &m, NULL, 0), 0);
	snprintf(name, sizeof(name), "append-%llu.eml", (unsigned long long)m.id + 1);
	plant(name, "Stale");
	assert_int_equal(journal_add(j, &f, "Newer", 5), 0);
	assert_true(f.id > m.id + 1);
	assert_string_equal(dump(name), "Stale");
	fd = journal_open_staged(j, f.staged);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, name, sizeof(name)), 5);
	assert_memory_equal(name, "Newer", 5);
	close(fd);
	free(e.staged);
	free(f.staged);
	journal_close(j);
}

static void test_refuses_a_linked_log(void **state)
{
	struct journal *j;
	char path[160], err[256];

	(void)state;
	snprintf(path, sizeof(path), "%s/journal", dir);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/journal/journal.log", dir);
	assert_int_equal(symlink("/etc/passwd", path), 0);
	assert_int_equal(journal_open(dirfd_, "journal", &j, err, sizeof(err)), -ELOOP);
	assert_non_null(strstr(err, "journal"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_codec_round_trip),
		cmocka_unit_test(test_codec_sent_and_flags),
		cmocka_unit_test(test_codec_rejects_bad_payloads),
		cmocka_unit_test(test_scan_torn_tail_and_damage),
		cmocka_unit_test_setup_teardown(test_entries_survive_reopen_until_done, setup, teardown),
		cmocka_unit_test_setup_teardown(test_staged_append_and_park, setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_tail_dropped_damage_set_aside, setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_bounded_with_one_pending, setup, teardown),
		cmocka_unit_test_setup_teardown(test_one_imapfs_per_journal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lock_follows_a_new_log, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kept_messages_never_replaced, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stale_staged_files_not_in_the_way, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refuses_a_linked_log, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sent_marks_entries_through_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sent_survives_compaction, setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_sent_dropped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sent_big_batch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_done_many_through_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_acked_kept_through_reopen, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

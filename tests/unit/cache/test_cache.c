/* Unit tests for cache.c and cache_disk.c: hits, misses, LRU eviction within
 * the limit, failed fills not cached, folder drops, a reader's bytes
 * outliving eviction, one fetch for concurrent readers; the disk tier:
 * blocks survive a new cache object, eviction within disk_limit in an
 * LRU's order, damaged and torn records refetched and never served, an
 * older layout's leftovers removed, private modes whatever the umask. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "cache/cache.h"
#include "cache/shared_bytes.h"
#include "util/files.h"
#include "fill_source.h"

static struct cache *mem_cache(size_t limit)
{
	return cache_new(&(struct cache_options){ .memory_limit = limit });
}

static long read_block(struct cache *c, struct source *src, uint32_t uid, uint32_t block, size_t at,
		       char *out, size_t len)
{
	struct cache_key k = { 1, 7, uid, block, 0 };
	size_t blen;

	return cache_read(c, &k, fill, src, at, out, len, &blen);
}

static void test_hit_and_miss(void **state)
{
	struct cache *c = mem_cache(4 * CACHE_BLOCK_SIZE);
	struct source src = { 0 };
	struct cache_key k = { 1, 7, 5, 2, 0 };
	char out[100];

	(void)state;
	assert_int_equal(read_block(c, &src, 5, 2, 10, out, sizeof(out)), 100);
	for (size_t i = 0; i < sizeof(out); i++)
		assert_int_equal(out[i], expected_byte(&k, i + 10));
	assert_int_equal(read_block(c, &src, 5, 2, 0, out, sizeof(out)), 100);
	assert_int_equal(src.fills, 1);
	/* reading past a short block's end gives 0 bytes */
	assert_int_equal(read_block(c, &src, 99, 0, 2000, out, sizeof(out)), 0);
	assert_int_equal(read_block(c, &src, 99, 0, 950, out, sizeof(out)), 50);
	cache_free(c);
}

static void test_lru_eviction(void **state)
{
	struct cache *c = mem_cache(3 * CACHE_BLOCK_SIZE);
	struct source src = { 0 };
	size_t bytes;
	uint64_t hits, misses;
	char out[1];

	(void)state;
	for (uint32_t uid = 1; uid <= 3; uid++)
		read_block(c, &src, uid, 0, 0, out, 1);
	read_block(c, &src, 1, 0, 0, out, 1); /* 1 is now the most recent */
	read_block(c, &src, 4, 0, 0, out, 1); /* evicts 2, the least recent */
	cache_stats(c, &bytes, &hits, &misses);
	assert_true(bytes <= 3 * CACHE_BLOCK_SIZE);
	assert_int_equal(src.fills, 4);
	read_block(c, &src, 1, 0, 0, out, 1);
	read_block(c, &src, 3, 0, 0, out, 1);
	assert_int_equal(src.fills, 4); /* 1 and 3 still there */
	read_block(c, &src, 2, 0, 0, out, 1);
	assert_int_equal(src.fills, 5); /* 2 was evicted */
	cache_free(c);
}

static void test_failure_not_cached(void **state)
{
	struct cache *c = mem_cache(4 * CACHE_BLOCK_SIZE);
	struct source src = { .fail = 1 };
	char out[10];

	(void)state;
	assert_int_equal(read_block(c, &src, 1, 0, 0, out, 10), -EIO);
	src.fail = 0;
	assert_int_equal(read_block(c, &src, 1, 0, 0, out, 10), 10);
	assert_int_equal(src.fills, 2);
	cache_free(c);
}

static void test_drop_folder(void **state)
{
	struct cache *c = mem_cache(4 * CACHE_BLOCK_SIZE);
	struct source src = { 0 };
	size_t bytes;
	uint64_t hits, misses;
	char out[10];

	(void)state;
	read_block(c, &src, 1, 0, 0, out, 10);
	cache_drop_folder(c, 1);
	cache_stats(c, &bytes, &hits, &misses);
	assert_int_equal(bytes, 0);
	read_block(c, &src, 1, 0, 0, out, 10);
	assert_int_equal(src.fills, 2);
	cache_free(c);
}

/* A reader's bytes stay its own while the block is evicted, replaced and
 * dropped with its folder (under ASan, a use after free otherwise). */
static void test_get_outlives_eviction(void **state)
{
	struct cache *c = mem_cache(2 * CACHE_BLOCK_SIZE);
	struct source src = { 0 };
	struct cache_key k = { 1, 7, 5, 0, 0 }, other = { 1, 7, 6, 0, 0 };
	char *held, *again, *replacement = malloc(CACHE_BLOCK_SIZE);
	size_t blen, blen2;
	size_t bytes;
	uint64_t hits, misses;
	char out[1];

	(void)state;
	assert_non_null(replacement);
	assert_int_equal(cache_get(c, &k, fill, &src, &held, &blen), 0);
	assert_int_equal(blen, CACHE_BLOCK_SIZE);
	/* replaced: the cache holds new bytes, the reader its old ones */
	memset(replacement, 'x', CACHE_BLOCK_SIZE);
	assert_true(cache_put(c, &k, replacement, CACHE_BLOCK_SIZE));
	assert_int_equal(cache_get(c, &k, fill, &src, &again, &blen2), 0);
	assert_int_equal(again[0], 'x');
	shared_bytes_unref(again);
	/* evicted by three others, then the folder dropped */
	for (uint32_t uid = 10; uid < 13; uid++)
		read_block(c, &src, uid, 0, 0, out, 1);
	read_block(c, &src, other.uid, 0, 0, out, 1);
	cache_drop_folder(c, 1);
	cache_stats(c, &bytes, &hits, &misses);
	assert_int_equal(bytes, 0);
	for (size_t i = 0; i < blen; i++)
		if (held[i] != expected_byte(&k, i))
			fail_msg("byte %zu of the held block changed", i);
	shared_bytes_unref(held);
	free(replacement);
	cache_free(c);
}

struct reader {
	struct cache *c;
	struct source *src;
	long result;
};

static void *reader_thread(void *arg)
{
	struct reader *r = arg;
	char out[64];

	r->result = read_block(r->c, r->src, 42, 3, 0, out, sizeof(out));
	return NULL;
}

static void test_concurrent_single_fetch(void **state)
{
	struct cache *c = mem_cache(4 * CACHE_BLOCK_SIZE);
	struct source src = { .delay = 100000 };
	struct reader readers[8];
	pthread_t t[8];

	(void)state;
	for (int i = 0; i < 8; i++) {
		readers[i] = (struct reader){ c, &src, 0 };
		pthread_create(&t[i], NULL, reader_thread, &readers[i]);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(readers[i].result, 64);
	}
	assert_int_equal(src.fills, 1);
	cache_free(c);
}

/* ---- the disk tier ---- */

/* struct header of cache_disk.c: magic, folder, uidvalidity, uid, block,
 * len, crc32, pad */
#define DISK_HEADER 48u /* a record's header in a segment file */
#define DISK_BLOCK (DISK_HEADER + CACHE_BLOCK_SIZE)

static char *make_tmpdir(void)
{
	char *d = strdup("/tmp/imapfs-cache-test-XXXXXX");

	assert_non_null(d);
	assert_non_null(mkdtemp(d));
	return d;
}

static void rm_tree(const char *path)
{
	char sub[PATH_MAX];
	struct dirent *de;
	DIR *d = opendir(path);

	if (d) {
		while ((de = readdir(d))) {
			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
			rm_tree(sub);
		}
		closedir(d);
	}
	remove(path);
}

static void rm_tmpdir(char *d)
{
	rm_tree(d);
	free(d);
}

static struct cache *disk_cache(const char *dir, size_t memory_limit, size_t disk_limit)
{
	struct files_dir *fd = NULL;
	char err[256];
	struct cache *c;

	assert_int_equal(files_dir_open(dir, &fd, err, sizeof(err)), 0);
	c = cache_new(
		&(struct cache_options){ .memory_limit = memory_limit, .disk_limit = disk_limit, .dir = fd });
	files_dir_close(fd); /* the cache keeps blocks/ open itself */
	assert_non_null(c);
	return c;
}

/* The on-disk format, read independently of cache_disk.c: blocks/ holds
 * segment files named FOLDER-SERIAL (16 hex digits each), records of a
 * header (magic, folder, uidvalidity, uid, block, section, len, 0, sum)
 * and len bytes, one after the other. */
struct disk_record {
	uint64_t magic, folder;
	uint32_t uidvalidity, uid, block, section, len, zero;
	uint64_t sum;
};

struct record_place {
	char path[PATH_MAX + 260];
	off_t at; /* of the header */
	uint32_t len;
	uint64_t serial;
};

/* Where the newest record of k is (the highest serial, the last in its
 * segment); false when there is none. */
static bool find_record(const char *dir, const struct cache_key *k, struct record_place *out)
{
	char top[PATH_MAX];
	struct dirent *de;
	bool found = false;
	DIR *d;

	snprintf(top, sizeof(top), "%s/blocks", dir);
	d = opendir(top);
	if (!d)
		return false;
	while ((de = readdir(d))) {
		uint64_t folder, serial;
		struct disk_record h;
		char path[PATH_MAX + 260];
		off_t at = 0;
		int fd;

		if (sscanf(de->d_name, "%16" SCNx64 "-%16" SCNx64, &folder, &serial) != 2 ||
		    folder != k->folder)
			continue;
		snprintf(path, sizeof(path), "%s/%s", top, de->d_name);
		fd = open(path, O_RDONLY);
		if (fd < 0)
			continue;
		while (pread(fd, &h, sizeof(h), at) == (ssize_t)sizeof(h) &&
		       h.magic == 0x4b4c4246534d4933ull) {
			if (h.uidvalidity == k->uidvalidity && h.uid == k->uid && h.block == k->block &&
			    h.section == k->section && (!found || serial >= out->serial)) {
				snprintf(out->path, sizeof(out->path), "%s", path);
				out->at = at;
				out->len = h.len;
				out->serial = serial;
				found = true;
			}
			at += (off_t)(sizeof(h) + h.len);
		}
		close(fd);
	}
	closedir(d);
	return found;
}

static bool block_file_exists(const char *dir, const struct cache_key *k)
{
	struct record_place r;

	return find_record(dir, k, &r);
}

/* How many segment files of folder are under dir/blocks. */
static int segments_of(const char *dir, uint64_t folder)
{
	char top[PATH_MAX];
	struct dirent *de;
	int n = 0;
	DIR *d;

	snprintf(top, sizeof(top), "%s/blocks", dir);
	d = opendir(top);
	assert_non_null(d);
	while ((de = readdir(d))) {
		uint64_t f, serial;

		if (sscanf(de->d_name, "%16" SCNx64 "-%16" SCNx64, &f, &serial) == 2 && f == folder)
			n++;
	}
	closedir(d);
	return n;
}

/* Reads the whole block through the cache and checks every byte. */
static void read_whole(struct cache *c, struct source *src, const struct cache_key *k)
{
	static char out[CACHE_BLOCK_SIZE];
	size_t blen = 0, want = k->uid == 99 ? 1000 : CACHE_BLOCK_SIZE;
	long n;

	memset(out, 0, sizeof(out));
	n = cache_read(c, k, fill, src, 0, out, sizeof(out), &blen);
	assert_int_equal(n, (long)want);
	assert_int_equal(blen, want);
	for (size_t i = 0; i < want; i++)
		if (out[i] != expected_byte(k, i))
			fail_msg("uid %u block %u: byte %zu is %d, expected %d", k->uid, k->block, i, out[i],
				 expected_byte(k, i));
	/* disk writes happen on a writer thread: wait for them, so what the
	 * tests look at on disk is settled */
	cache_flush(c);
}

/* Sum of the sizes of the regular files under dir (recursively). */
static off_t du_bytes(const char *dir)
{
	char path[PATH_MAX];
	struct dirent *de;
	struct stat st;
	off_t sum = 0;
	DIR *d = opendir(dir);

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (lstat(path, &st) < 0)
			continue;
		if (S_ISDIR(st.st_mode))
			sum += du_bytes(path);
		else if (S_ISREG(st.st_mode))
			sum += st.st_size;
	}
	closedir(d);
	return sum;
}

static off_t blocks_du(const char *dir)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/blocks", dir);
	return du_bytes(path);
}

static void test_disk_survives_new_cache(void **state)
{
	char *dir = make_tmpdir();
	struct source src = { 0 };
	struct cache_key k1 = { 0x1234567890abcdefull, 7, 5, 0, 0 };
	struct cache_key k2 = { 0x1234567890abcdefull, 7, 99, 3, 0 }; /* short block */
	struct cache *c;
	struct record_place r1, r2;
	struct stat st;

	(void)state;
	c = disk_cache(dir, 8 * CACHE_BLOCK_SIZE, 64 * DISK_BLOCK);
	read_whole(c, &src, &k1);
	read_whole(c, &src, &k2);
	assert_int_equal(src.fills, 2);
	cache_free(c);

	/* the records are where the format says: one segment of the folder,
	 * header + bytes each */
	assert_true(find_record(dir, &k1, &r1));
	assert_true(find_record(dir, &k2, &r2));
	assert_int_equal(r1.len, CACHE_BLOCK_SIZE);
	assert_int_equal(r2.len, 1000);
	assert_string_equal(r1.path, r2.path);
	assert_int_equal(stat(r1.path, &st), 0);
	assert_int_equal(st.st_size, 2 * DISK_HEADER + CACHE_BLOCK_SIZE + 1000);
	assert_int_equal(segments_of(dir, k1.folder), 1);

	/* "remount": a new cache object over the same directory */
	c = disk_cache(dir, 8 * CACHE_BLOCK_SIZE, 64 * DISK_BLOCK);
	read_whole(c, &src, &k1);
	read_whole(c, &src, &k2);
	read_whole(c, &src, &k1);
	assert_int_equal(src.fills, 2); /* fill never called again */
	cache_free(c);

	/* a different UIDVALIDITY is a different block */
	c = disk_cache(dir, 8 * CACHE_BLOCK_SIZE, 64 * DISK_BLOCK);
	k1.uidvalidity = 8;
	read_whole(c, &src, &k1);
	assert_int_equal(src.fills, 3);
	cache_free(c);
	rm_tmpdir(dir);
}

/* A part's blocks (a section code) are blocks of their own, in memory and
 * on disk, beside the message's; sections the code cannot hold get 0. */
static void test_section_blocks(void **state)
{
	char *dir = make_tmpdir();
	struct source src = { 0 };
	struct cache_key whole = { 0x42ull, 7, 5, 0, 0 };
	struct cache_key part = { 0x42ull, 7, 5, 0, 0 };
	struct cache *c;

	(void)state;
	assert_int_equal(cache_section_code("1"), 1);
	assert_int_equal(cache_section_code("2.1"), 0x0201);
	assert_int_equal(cache_section_code("255.1.2.3"), 0xff010203u);
	assert_int_equal(cache_section_code("1.2.3.4.5"), 0);
	assert_int_equal(cache_section_code("256"), 0);
	assert_int_equal(cache_section_code("0"), 0);
	assert_int_equal(cache_section_code("1..2"), 0);
	assert_int_equal(cache_section_code(""), 0);
	assert_int_equal(cache_section_code("1.x"), 0);
	part.section = cache_section_code("2.1");

	c = disk_cache(dir, 8 * CACHE_BLOCK_SIZE, 64 * DISK_BLOCK);
	read_whole(c, &src, &whole);
	read_whole(c, &src, &part);
	assert_int_equal(src.fills, 2); /* not the same block */
	cache_free(c);
	assert_true(block_file_exists(dir, &part));
	assert_true(block_file_exists(dir, &whole));

	c = disk_cache(dir, 8 * CACHE_BLOCK_SIZE, 64 * DISK_BLOCK);
	read_whole(c, &src, &part);
	read_whole(c, &src, &whole);
	assert_int_equal(src.fills, 2); /* both found on disk again */
	cache_free(c);
	rm_tmpdir(dir);
}

static void test_disk_lru_eviction(void **state)
{
	char *dir = make_tmpdir();
	struct source src = { 0 };
	struct cache_key k[6];
	size_t limit = 3 * DISK_BLOCK + 100;
	struct cache *c;

	(void)state;
	for (uint32_t i = 0; i < 6; i++)
		k[i] = (struct cache_key){ 3, 7, i, 0, 0 };
	/* memory_limit 0: every read after the first goes to the disk tier */
	c = disk_cache(dir, 0, limit);
	read_whole(c, &src, &k[1]);
	read_whole(c, &src, &k[2]);
	read_whole(c, &src, &k[3]);
	assert_int_equal(src.fills, 3);
	assert_true(blocks_du(dir) <= (off_t)limit);
	read_whole(c, &src, &k[1]); /* from disk: 1 is now the most recent */
	assert_int_equal(src.fills, 3);
	read_whole(c, &src, &k[4]); /* evicts 2, the least recent */
	assert_int_equal(src.fills, 4);
	assert_true(block_file_exists(dir, &k[1]));
	assert_false(block_file_exists(dir, &k[2]));
	assert_true(block_file_exists(dir, &k[3]));
	assert_true(block_file_exists(dir, &k[4]));
	assert_true(blocks_du(dir) <= (off_t)limit);

	read_whole(c, &src, &k[2]); /* refetched; evicts 3 (order 2 4 1 3) */
	assert_int_equal(src.fills, 5);
	assert_false(block_file_exists(dir, &k[3]));
	assert_true(block_file_exists(dir, &k[1]));
	assert_true(block_file_exists(dir, &k[2]));
	assert_true(block_file_exists(dir, &k[4]));
	read_whole(c, &src, &k[1]);
	read_whole(c, &src, &k[4]);
	assert_int_equal(src.fills, 5); /* both still on disk */
	assert_true(blocks_du(dir) <= (off_t)limit);

	/* many more blocks: the total stays within the limit all along */
	for (uint32_t uid = 10; uid < 40; uid++) {
		struct cache_key kk = { 3, 7, uid, uid % 4, 0 };

		read_whole(c, &src, &kk);
		assert_true(blocks_du(dir) <= (off_t)limit);
	}
	cache_free(c);

	/* reopened with a smaller limit: evicts down to it at once */
	c = disk_cache(dir, 0, DISK_BLOCK + 10);
	assert_true(blocks_du(dir) <= (off_t)(DISK_BLOCK + 10));
	cache_free(c);
	rm_tmpdir(dir);
}

/* A limit below one block's record: short blocks are kept, within it;
 * whole blocks are not kept at all. */
static void test_disk_tiny_limit(void **state)
{
	char *dir = make_tmpdir();
	struct source src = { 0 };
	struct cache_key small = { 8, 7, 99, 0, 0 }; /* 1000 bytes */
	struct cache_key full = { 8, 7, 5, 0, 0 };
	size_t limit = 3 * (DISK_HEADER + 1000);
	struct cache *c;

	(void)state;
	c = disk_cache(dir, 0, limit);
	read_whole(c, &src, &small);
	read_whole(c, &src, &full);
	read_whole(c, &src, &small);
	assert_int_equal(src.fills, 2); /* the short one from disk */
	read_whole(c, &src, &full);
	assert_int_equal(src.fills, 3); /* the whole one fetched again */
	assert_true(blocks_du(dir) <= (off_t)limit);
	assert_true(block_file_exists(dir, &small));
	assert_false(block_file_exists(dir, &full));
	cache_free(c);
	rm_tmpdir(dir);
}

/* A disk that takes no more (here RLIMIT_FSIZE, as a full disk would):
 * every block is still read right, no empty segment is left per failed
 * append, and once there is room again blocks are kept. */
static void test_disk_full(void **state)
{
	char *dir = make_tmpdir();
	struct source src = { 0 };
	struct cache_key k = { 9, 7, 1, 0, 0 };
	struct rlimit old, small;
	struct cache *c;

	(void)state;
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	small = old;
	small.rlim_cur = 1000;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
	c = disk_cache(dir, 0, 64 * DISK_BLOCK);
	for (uint32_t uid = 1; uid <= 20; uid++) {
		k.uid = uid;
		read_whole(c, &src, &k);
	}
	k.uid = 1;
	read_whole(c, &src, &k);
	assert_int_equal(src.fills, 21);
	assert_int_equal(segments_of(dir, 9), 0);
	cache_free(c);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);

	c = disk_cache(dir, 0, 64 * DISK_BLOCK);
	read_whole(c, &src, &k);
	read_whole(c, &src, &k);
	assert_int_equal(src.fills, 22);
	assert_int_equal(segments_of(dir, 9), 1);
	cache_free(c);
	rm_tmpdir(dir);
}

static void flip_byte(const char *path, off_t at)
{
	int fd = open(path, O_RDWR);
	unsigned char b;

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &b, 1, at), 1);
	b ^= 0x5a;
	assert_int_equal(pwrite(fd, &b, 1, at), 1);
	close(fd);
}

static void put_u32(const char *path, off_t at, uint32_t v)
{
	int fd = open(path, O_RDWR);

	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, &v, 4, at), 4);
	close(fd);
}

static void copy_file(const char *from, const char *to)
{
	static char buf[DISK_BLOCK + 16];
	int in = open(from, O_RDONLY), out;
	ssize_t n;

	assert_true(in >= 0);
	n = read(in, buf, sizeof(buf));
	close(in);
	assert_true(n > 0);
	out = open(to, O_WRONLY | O_TRUNC | O_CREAT, 0600);
	assert_true(out >= 0);
	assert_int_equal(write(out, buf, (size_t)n), n);
	close(out);
}

static void test_disk_damaged_files(void **state)
{
	enum {
		N = 8
	};
	char *dir = make_tmpdir();
	struct source src = { 0 };
	struct cache_key k[N];
	struct record_place r[N];
	struct cache *c;

	(void)state;
	/* a folder each: every block has a segment of its own to damage */
	for (uint32_t i = 0; i < N; i++)
		k[i] = (struct cache_key){ 0x40 + i, 7, 100 + i, i, 0 };
	c = disk_cache(dir, 0, 64 * DISK_BLOCK);
	for (int i = 0; i < N; i++)
		read_whole(c, &src, &k[i]);
	assert_int_equal(src.fills, N);
	cache_free(c);
	for (int i = 0; i < N; i++) {
		assert_true(find_record(dir, &k[i], &r[i]));
		assert_int_equal(r[i].at, 0);
	}

	assert_int_equal(truncate(r[0].path, DISK_HEADER + 1000), 0); /* a torn record */
	assert_int_equal(truncate(r[1].path, 10), 0);                 /* a torn header */
	flip_byte(r[2].path, DISK_HEADER + CACHE_BLOCK_SIZE / 2);     /* data corrupted */
	flip_byte(r[3].path, DISK_HEADER + CACHE_BLOCK_SIZE - 1);     /* its last byte */
	put_u32(r[4].path, 16, 8);                                    /* header: another uidvalidity */
	put_u32(r[5].path, 20, 999);                                  /* header: another uid */
	copy_file(r[7].path, r[6].path);                              /* another folder's (valid) segment */
	flip_byte(r[7].path, 0);                                      /* bad magic */

	c = disk_cache(dir, 0, 64 * DISK_BLOCK);
	for (int i = 0; i < N; i++) {
		int before = src.fills;

		read_whole(c, &src, &k[i]); /* checks every byte */
		if (src.fills != before + 1)
			fail_msg("damaged record %d was served (fill not called)", i);
	}
	/* refetched blocks were stored again, intact: no more fills */
	for (int i = 0; i < N; i++)
		read_whole(c, &src, &k[i]);
	assert_int_equal(src.fills, 2 * N);
	cache_free(c);
	c = disk_cache(dir, 0, 64 * DISK_BLOCK);
	for (int i = 0; i < N; i++)
		read_whole(c, &src, &k[i]);
	assert_int_equal(src.fills, 2 * N);

	/* damaged while the cache object is open (after indexing) */
	for (int i = 2; i <= 4; i++)
		assert_true(find_record(dir, &k[i], &r[i]));
	flip_byte(r[2].path, r[2].at + DISK_HEADER + 7);
	assert_int_equal(truncate(r[3].path, r[3].at + DISK_HEADER + 5), 0);
	assert_int_equal(unlink(r[4].path), 0);
	read_whole(c, &src, &k[2]);
	read_whole(c, &src, &k[3]);
	read_whole(c, &src, &k[4]);
	assert_int_equal(src.fills, 2 * N + 3);
	cache_free(c);
	rm_tmpdir(dir);
}

/* What an older imapfs, a crash or someone else left under blocks/: an
 * older imapfs's folder directory of block files and its temporary files
 * are removed; a segment with a torn tail still serves its whole
 * records, and nothing is appended after the tear. */
static void test_disk_leftovers(void **state)
{
	char *dir = make_tmpdir();
	struct source src = { 0 };
	struct cache_key k = { 5, 7, 1, 0, 0 }, k2 = { 5, 7, 2, 0, 0 };
	char old[PATH_MAX + 32], oldblock[PATH_MAX + 64], tmp[PATH_MAX + 32];
	struct record_place r, r2;
	struct stat st;
	struct cache *c;
	int fd;

	(void)state;
	c = disk_cache(dir, 0, 64 * DISK_BLOCK);
	read_whole(c, &src, &k);
	cache_free(c);
	assert_true(find_record(dir, &k, &r));
	fd = open(r.path, O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "3IMSFBLK torn", 13), 13);
	close(fd);
	snprintf(old, sizeof(old), "%s/blocks/%016" PRIx64, dir, k.folder);
	assert_int_equal(mkdir(old, 0700), 0);
	snprintf(oldblock, sizeof(oldblock), "%s/7-1-0", old);
	snprintf(tmp, sizeof(tmp), "%s/blocks/tmp.1.1", dir);
	for (int i = 0; i < 2; i++) {
		fd = open(i ? tmp : oldblock, O_WRONLY | O_CREAT, 0600);
		assert_true(fd >= 0);
		assert_int_equal(write(fd, "partial", 7), 7);
		close(fd);
	}

	c = disk_cache(dir, 0, 64 * DISK_BLOCK);
	assert_int_not_equal(access(old, F_OK), 0);
	assert_int_not_equal(access(tmp, F_OK), 0);
	read_whole(c, &src, &k);
	read_whole(c, &src, &k2);
	assert_int_equal(src.fills, 2);
	cache_free(c);
	/* k2 went to a segment of its own, the torn one is as it was */
	assert_true(find_record(dir, &k2, &r2));
	assert_string_not_equal(r.path, r2.path);
	assert_int_equal(stat(r.path, &st), 0);
	assert_int_equal(st.st_size, DISK_BLOCK + 13);
	c = disk_cache(dir, 0, 64 * DISK_BLOCK);
	read_whole(c, &src, &k);
	read_whole(c, &src, &k2);
	assert_int_equal(src.fills, 2);
	cache_free(c);
	rm_tmpdir(dir);
}

static void test_disk_drop_folder(void **state)
{
	char *dir = make_tmpdir();
	struct source src = { 0 };
	struct cache_key a[3], b[3];
	struct cache *c;
	size_t bytes;
	uint64_t hits, misses;

	(void)state;
	for (uint32_t i = 0; i < 3; i++) {
		a[i] = (struct cache_key){ 0xaaull, 7, i + 1, 0, 0 };
		b[i] = (struct cache_key){ 0xbbull, 7, i + 1, 0, 0 };
	}
	c = disk_cache(dir, 16 * CACHE_BLOCK_SIZE, 64 * DISK_BLOCK);
	for (int i = 0; i < 3; i++) {
		read_whole(c, &src, &a[i]);
		read_whole(c, &src, &b[i]);
	}
	assert_int_equal(src.fills, 6);
	cache_stats(c, &bytes, &hits, &misses);
	assert_int_equal(bytes, 6 * CACHE_BLOCK_SIZE);

	cache_drop_folder(c, 0xaaull);
	cache_stats(c, &bytes, &hits, &misses);
	assert_int_equal(bytes, 3 * CACHE_BLOCK_SIZE); /* b's blocks stay in memory */
	for (int i = 0; i < 3; i++) {
		assert_false(block_file_exists(dir, &a[i]));
		assert_true(block_file_exists(dir, &b[i]));
	}
	/* no file of folder aa is left at all */
	assert_int_equal(segments_of(dir, 0xaa), 0);
	assert_int_equal(segments_of(dir, 0xbb), 1);
	for (int i = 0; i < 3; i++)
		read_whole(c, &src, &b[i]);
	assert_int_equal(src.fills, 6);
	for (int i = 0; i < 3; i++)
		read_whole(c, &src, &a[i]);
	assert_int_equal(src.fills, 9);
	cache_free(c);

	/* dropped in a later "mount": the files from before go too */
	c = disk_cache(dir, 16 * CACHE_BLOCK_SIZE, 64 * DISK_BLOCK);
	cache_drop_folder(c, 0xbbull);
	for (int i = 0; i < 3; i++) {
		assert_true(block_file_exists(dir, &a[i]));
		assert_false(block_file_exists(dir, &b[i]));
	}
	for (int i = 0; i < 3; i++)
		read_whole(c, &src, &a[i]);
	assert_int_equal(src.fills, 9);
	cache_free(c);
	rm_tmpdir(dir);
}

static void check_modes(const char *path, int *dirs, int *files)
{
	char sub[PATH_MAX];
	struct dirent *de;
	struct stat st;
	DIR *d;

	assert_int_equal(lstat(path, &st), 0);
	if (S_ISREG(st.st_mode)) {
		if ((st.st_mode & 0777) != 0600)
			fail_msg("%s has mode %03o, expected 0600", path, st.st_mode & 0777);
		(*files)++;
		return;
	}
	assert_true(S_ISDIR(st.st_mode));
	if ((st.st_mode & 0777) != 0700)
		fail_msg("%s has mode %03o, expected 0700", path, st.st_mode & 0777);
	(*dirs)++;
	d = opendir(path);
	assert_non_null(d);
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
		check_modes(sub, dirs, files);
	}
	closedir(d);
}

static void test_disk_private_modes(void **state)
{
	char *dir = make_tmpdir();
	char blocks[PATH_MAX];
	struct source src = { 0 };
	mode_t old = umask(0);
	struct cache *c;
	int dirs = 0, files = 0;

	(void)state;
	c = disk_cache(dir, 0, 64 * DISK_BLOCK);
	for (uint32_t uid = 1; uid <= 3; uid++) {
		struct cache_key k = { uid, 7, uid, 0, 0 }; /* three folders */

		read_whole(c, &src, &k);
	}
	cache_put(c, &(struct cache_key){ 9, 7, 1, 0, 0 }, "put", 3);
	cache_free(c);
	umask(old);
	snprintf(blocks, sizeof(blocks), "%s/blocks", dir);
	check_modes(blocks, &dirs, &files);
	assert_int_equal(dirs, 1);
	assert_int_equal(files, 4); /* a segment for each folder */
	rm_tmpdir(dir);
}

static void concurrent_readers(struct cache *c, struct source *src)
{
	struct reader readers[8];
	pthread_t t[8];

	for (int i = 0; i < 8; i++) {
		readers[i] = (struct reader){ c, src, 0 };
		pthread_create(&t[i], NULL, reader_thread, &readers[i]);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(readers[i].result, 64);
	}
}

static void test_disk_concurrent_single_fetch(void **state)
{
	char *dir = make_tmpdir();
	struct source src = { .delay = 100000 };
	struct cache_key k = { 1, 7, 42, 3, 0 }; /* the block reader_thread reads */
	struct cache *c;

	(void)state;
	c = disk_cache(dir, 4 * CACHE_BLOCK_SIZE, 64 * DISK_BLOCK);
	concurrent_readers(c, &src);
	assert_int_equal(src.fills, 1);
	cache_flush(c); /* written by the writer thread */
	assert_true(block_file_exists(dir, &k));
	cache_free(c);
	/* on disk only (new cache): the readers share it, none fetches */
	c = disk_cache(dir, 4 * CACHE_BLOCK_SIZE, 64 * DISK_BLOCK);
	concurrent_readers(c, &src);
	assert_int_equal(src.fills, 1);
	cache_free(c);
	rm_tmpdir(dir);
}

static void test_memory_limit_many_blocks(void **state)
{
	char *dir = make_tmpdir();
	size_t limit = 10 * CACHE_BLOCK_SIZE, bytes;
	uint64_t hits, misses;
	struct source src = { 0 };

	(void)state;
	/* round 0: memory only; 1: with a disk tier (empty: fills); 2: a new
	 * cache over round 1's files (no fills) */
	for (int round = 0; round < 3; round++) {
		struct cache *c = round ? disk_cache(dir, limit, 1000 * DISK_BLOCK) : mem_cache(limit);
		int fills = src.fills;

		assert_non_null(c);
		for (uint32_t i = 0; i < 100; i++) {
			struct cache_key k = { 6, 7, 1 + i / 4, i % 4, 0 };

			read_whole(c, &src, &k);
			cache_stats(c, &bytes, &hits, &misses);
			assert_true(bytes <= limit);
		}
		assert_true(bytes >= limit - CACHE_BLOCK_SIZE); /* it does cache */
		assert_int_equal(misses, 100);
		assert_int_equal(hits, 0);
		assert_int_equal(src.fills - fills, round == 2 ? 0 : 100);
		cache_free(c);
	}
	rm_tmpdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hit_and_miss),
		cmocka_unit_test(test_lru_eviction),
		cmocka_unit_test(test_failure_not_cached),
		cmocka_unit_test(test_drop_folder),
		cmocka_unit_test(test_get_outlives_eviction),
		cmocka_unit_test(test_concurrent_single_fetch),
		cmocka_unit_test(test_disk_survives_new_cache),
		cmocka_unit_test(test_section_blocks),
		cmocka_unit_test(test_disk_lru_eviction),
		cmocka_unit_test(test_disk_tiny_limit),
		cmocka_unit_test(test_disk_full),
		cmocka_unit_test(test_disk_damaged_files),
		cmocka_unit_test(test_disk_leftovers),
		cmocka_unit_test(test_disk_drop_folder),
		cmocka_unit_test(test_disk_private_modes),
		cmocka_unit_test(test_disk_concurrent_single_fetch),
		cmocka_unit_test(test_memory_limit_many_blocks),
	};

	return cmocka_run_group_tests_name("cache", tests, NULL, NULL);
}

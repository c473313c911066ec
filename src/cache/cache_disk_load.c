/* cache_disk_load.c - what earlier mounts left under cache_dir/blocks:
 * their segment files indexed, oldest first, each up to its first record
 * that is not whole and sound (a crash in an append leaves a torn tail);
 * an older imapfs's folder directories of block files, and anything else
 * found there (a link, a FIFO, a temporary file), removed.  Runs once, in
 * disk_cache_open, before the writer thread exists: it takes no lock. */
#include "cache_disk_p.h"
#include "util/files.h"
#include "util/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Indexes the records of one segment up to the first that is not whole
 * and sound: a crash in an append leaves a torn tail, and nothing is
 * appended to an earlier mount's segment.  The segment goes if it holds
 * nothing. */
static void load_segment(struct disk_cache *d, const char *name, uint64_t folder, uint64_t serial)
{
	int top = files_dir_fd(d->top), fd = files_open_at(top, name);
	struct segment *seg;
	struct record h;
	struct stat st;
	uint64_t at = 0;

	if (fd < 0 || fstat(fd, &st) < 0 || !(seg = calloc(1, sizeof(*seg)))) {
		if (fd >= 0)
			close(fd);
		unlinkat(top, name, 0);
		return;
	}
	seg->folder = folder;
	seg->serial = serial;
	seg->size = (uint64_t)st.st_size;
	while (at + sizeof(h) <= seg->size && pread(fd, &h, sizeof(h), (off_t)at) == (ssize_t)sizeof(h) &&
	       h.magic == RECORD_MAGIC && h.folder == folder && h.len <= CACHE_BLOCK_SIZE && h.zero == 0 &&
	       at + sizeof(h) + h.len <= seg->size) {
		struct cache_key k = { folder, h.uidvalidity, h.uid, h.block, h.section };

		disk_index_locked(d, &k, seg, at, h.len);
		at += sizeof(h) + h.len;
	}
	close(fd);
	if (at != seg->size)
		log_debug("cache: %s/%s: %" PRIu64 " bytes after its last whole record ignored",
			  files_dir_path(d->top), name, seg->size - at);
	if (!seg->entries) {
		unlinkat(top, name, 0);
		free(seg);
		return;
	}
	d->bytes += seg->size;
	d->appended += seg->size;
	seg->stamp = d->appended;
	seg->next = d->segments;
	d->segments = seg;
	if (serial >= d->next_serial)
		d->next_serial = serial + 1;
}

/* A directory in blocks/ is an older imapfs's folder of block files (one
 * file per block): removed, files and all. */
static void remove_old_folder(int top, const char *name)
{
	int dfd = files_subdir_at(top, name, false);
	DIR *dir = dfd >= 0 ? fdopendir(dfd) : NULL;
	struct dirent *de;

	if (dir) {
		while ((de = readdir(dir)))
			if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
			    unlinkat(dfd, de->d_name, 0) < 0 && errno == EISDIR)
				unlinkat(dfd, de->d_name, AT_REMOVEDIR); /* empty, or left */
		closedir(dir);
	} else if (dfd >= 0) {
		close(dfd);
	}
	if (unlinkat(top, name, AT_REMOVEDIR) < 0)
		unlinkat(top, name, 0); /* a link in a directory's place */
}

struct found {
	char name[SEGMENT_NAME_MAX];
	uint64_t folder, serial;
};

static int by_serial(const void *a, const void *b)
{
	const struct found *x = a, *y = b;

	return x->serial < y->serial ? -1 : x->serial > y->serial;
}

/* Indexes the segments under blocks/, oldest first (a block in two is the
 * later one's); anything else there is removed. */
void disk_cache_index_all(struct disk_cache *d)
{
	int top = openat(files_dir_fd(d->top), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *dir = top >= 0 ? fdopendir(top) : NULL;
	struct found *found = NULL, *grown;
	size_t n = 0, cap = 0;
	bool older = false;
	struct dirent *de;
	struct stat st;

	if (!dir) {
		if (top >= 0)
			close(top);
		return;
	}
	while ((de = readdir(dir))) {
		struct found f;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    fstatat(top, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			remove_old_folder(top, de->d_name);
			older = true;
			continue;
		}
		if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
		    !disk_parse_segment_name(de->d_name, &f.folder, &f.serial)) {
			unlinkat(top, de->d_name, 0);
			continue;
		}
		if (n == cap) {
			grown = realloc(found, (cap ? 2 * cap : 64) * sizeof(*found));
			if (!grown) {
				/* no memory to index it: gone, rather than kept on
				 * disk uncounted against the limit */
				unlinkat(top, de->d_name, 0);
				continue;
			}
			found = grown;
			cap = cap ? 2 * cap : 64;
		}
		memcpy(f.name, de->d_name, SEGMENT_NAME_MAX);
		found[n++] = f;
	}
	closedir(dir);
	if (older)
		log_info("cache: the block files of an older imapfs removed from %s", files_dir_path(d->top));
	if (found)
		qsort(found, n, sizeof(*found), by_serial);
	for (size_t i = 0; i < n; i++)
		load_segment(d, found[i].name, found[i].folder, found[i].serial);
	free(found);
}

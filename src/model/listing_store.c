/* listing_store.c - owns the listings kept on disk, one file per folder in
 * cache_dir/folders named after the folder's cache key, so a remount syncs
 * from there, not from nothing.  The file format is listing_codec.c's. */
#include "mailbox_p.h"
#include "listing_codec.h"
#include "util/files.h"
#include "util/log.h"

#include <inttypes.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define LISTINGS_SUBDIR "folders"
#define LISTING_FILE_NAME_SIZE 17 /* the cache key in 16 hex digits, NUL */

/* cache_dir/folders as a descriptor, or -errno. */
static int listings_dir(const struct mailbox *mb, bool create)
{
	if (!mb->opt.cache_dir)
		return -ENOENT;
	return files_subdir_at(files_dir_fd(mb->opt.cache_dir), LISTINGS_SUBDIR, create);
}

static void listing_file_name(const struct mailbox *mb, const struct folder *f,
			      char name[LISTING_FILE_NAME_SIZE])
{
	snprintf(name, LISTING_FILE_NAME_SIZE, "%016" PRIx64, mb_folder_key(mb, f));
}

struct listing_file {
	const struct listing *l;
	int fd;
};

static int put_to_file(void *ctx, const void *bytes, size_t n)
{
	const struct listing_file *lf = ctx;

	return files_write_all(lf->fd, bytes, n);
}

/* The header goes last, over the room left for it: it holds the CRC of
 * what follows. */
static int write_listing(int fd, void *ctx)
{
	struct listing_file *lf = ctx;
	unsigned char header[LISTING_HEADER_SIZE] = { 0 };
	int r = files_write_all(fd, header, sizeof(header));
	ssize_t n;

	lf->fd = fd;
	if (r == 0)
		r = listing_encode_stream(lf->l, header, put_to_file, lf);
	if (r == 0 && (n = pwrite(fd, header, sizeof(header), 0)) != (ssize_t)sizeof(header))
		r = n < 0 ? -errno : -EIO;
	return r;
}

void mb_save_listing(const struct mailbox *mb, const struct folder *f, const struct listing *l)
{
	char name[LISTING_FILE_NAME_SIZE];
	struct listing_file lf = { l, -1 };
	int dfd = listings_dir(mb, true);

	if (dfd < 0)
		return;
	listing_file_name(mb, f, name);
	/* not synced: the CRC catches a file a crash left half written */
	if (files_replace_with(dfd, name, write_listing, &lf, false) < 0)
		log_debug("cannot save the listing of %s", f->path);
	close(dfd);
}

/* Up to size bytes of fd; fewer when it ends first or fails. */
static size_t read_up_to(int fd, unsigned char *buf, size_t size)
{
	size_t got = 0;

	while (got < size) {
		ssize_t n = read(fd, buf + got, size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	return got;
}

/* The whole of the saved listing of f, or NULL: none, or too big to be one. */
static unsigned char *read_listing_file(const struct mailbox *mb, const struct folder *f, size_t *len)
{
	char name[LISTING_FILE_NAME_SIZE];
	int dfd = listings_dir(mb, false), fd;
	unsigned char *buf = NULL;
	struct stat st;

	if (dfd < 0)
		return NULL;
	listing_file_name(mb, f, name);
	fd = files_open_at(dfd, name);
	close(dfd);
	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) == 0 && (uint64_t)st.st_size <= LISTING_MAX_ENCODED)
		buf = malloc((size_t)st.st_size + 1);
	/* short when the file shrank meanwhile: the codec says so */
	if (buf)
		*len = read_up_to(fd, buf, (size_t)st.st_size);
	close(fd);
	return buf;
}

struct listing *mb_load_listing(const struct mailbox *mb, const struct folder *f)
{
	struct listing *l = NULL;
	size_t len = 0;
	unsigned char *buf = read_listing_file(mb, f, &len);
	int r;

	if (!buf)
		return NULL;
	r = listing_decode(buf, len, &l);
	free(buf);
	/* another format is no damage: an earlier version's file */
	if (r < 0 && r != -ENOTSUP)
		log_warn("ignoring a damaged saved listing of %s", f->path);
	return l;
}

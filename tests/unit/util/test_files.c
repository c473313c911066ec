/* Unit tests for files.c: private directories (created with their parents,
 * refused when a link, not ours or writable by others, made 0700) and the
 * files in them (never through a link, exclusive, 0600 whatever the umask). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "util/files.h"

static char top[] = "/tmp/imapfs-test-filesXXXXXX";

static const char *at(const char *rel)
{
	static char buf[4][256];
	static int n;

	n = (n + 1) % 4;
	snprintf(buf[n], sizeof(buf[n]), "%s/%s", top, rel);
	return buf[n];
}

static mode_t mode_of(const char *path)
{
	struct stat st;

	assert_int_equal(lstat(path, &st), 0);
	return st.st_mode & 07777;
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int setup(void **state)
{
	(void)state;
	return mkdtemp(top) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[300];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", top);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_dir_open(void **state)
{
	struct files_dir *d = NULL;
	char err[512];
	mode_t old = umask(0);

	(void)state;
	/* missing parents are created, the directory made 0700 despite umask 0 */
	assert_int_equal(files_dir_open(at("a/b/cache/"), &d, err, sizeof(err)), 0);
	assert_int_equal(mode_of(at("a/b/cache")), 0700);
	assert_int_equal(mode_of(at("a/b")), 0700);
	files_dir_close(d);
	/* an existing one of ours, 0755, is accepted and tightened */
	assert_int_equal(chmod(at("a/b/cache"), 0755), 0);
	assert_int_equal(files_dir_open(at("a/b/cache"), &d, err, sizeof(err)), 0);
	assert_int_equal(mode_of(at("a/b/cache")), 0700);
	assert_string_equal(files_dir_path(d), at("a/b/cache"));
	files_dir_close(d);
	umask(old);

	/* refused: writable by group or others, a link, not a directory */
	assert_int_equal(chmod(at("a/b/cache"), 0770), 0);
	assert_int_equal(files_dir_open(at("a/b/cache"), &d, err, sizeof(err)), -EPERM);
	assert_non_null(strstr(err, "writable by group or others; run chmod 700"));
	assert_int_equal(mode_of(at("a/b/cache")), 0770);
	assert_int_equal(chmod(at("a/b/cache"), 0700), 0);
	assert_int_equal(symlink(at("a/b/cache"), at("link")), 0);
	assert_int_equal(files_dir_open(at("link"), &d, err, sizeof(err)), -ELOOP);
	assert_non_null(strstr(err, "is a symbolic link"));
	write_text(at("plain"), "x");
	assert_int_equal(files_dir_open(at("plain"), &d, err, sizeof(err)), -ENOTDIR);
	assert_non_null(strstr(err, "is not a directory"));
	if (geteuid() == 0) { /* someone else's: only root can make one */
		assert_int_equal(chown(at("a/b/cache"), 65534, (gid_t)-1), 0);
		assert_int_equal(files_dir_open(at("a/b/cache"), &d, err, sizeof(err)), -EPERM);
		assert_non_null(strstr(err, "belongs to uid 65534, not to you"));
		assert_int_equal(chown(at("a/b/cache"), 0, (gid_t)-1), 0);
	}
}

static void test_files_at(void **state)
{
	struct files_dir *d = NULL, *sub = NULL;
	char err[512], buf[64];
	mode_t old = umask(0277);
	int fd, sfd;
	ssize_t n;

	(void)state;
	assert_int_equal(files_dir_open(at("c"), &d, err, sizeof(err)), 0);
	fd = files_dir_fd(d);
	/* a subdirectory: made 0700 whatever the umask or its old mode */
	assert_int_equal(mkdir(at("c/old"), 0777), 0);
	assert_int_equal(chmod(at("c/old"), 0777), 0);
	assert_int_equal(files_dir_sub(d, "old", &sub, err, sizeof(err)), 0);
	assert_int_equal(mode_of(at("c/old")), 0700);
	files_dir_close(sub);
	sfd = files_subdir_at(fd, "new", true);
	assert_true(sfd >= 0);
	assert_int_equal(mode_of(at("c/new")), 0700);
	close(sfd);
	assert_int_equal(symlink(at("c/new"), at("c/linked")), 0);
	sfd = files_subdir_at(fd, "linked", true); /* O_DIRECTORY: ENOTDIR on Linux */
	assert_true(sfd == -ELOOP || sfd == -ENOTDIR);
	assert_true(files_dir_sub(d, "linked", &sub, err, sizeof(err)) < 0);

	/* replace: a link at the temporary name is removed, not written through */
	write_text(at("victim"), "untouched");
	assert_int_equal(symlink(at("victim"), at("c/data.tmp")), 0);
	assert_int_equal(files_replace_at(fd, "data", "new bytes", 9, true), 0);
	assert_int_equal(mode_of(at("c/data")), 0600);
	assert_int_equal(access(at("c/data.tmp"), F_OK), -1);
	/* and a link at the name itself is replaced, the file it names kept */
	assert_int_equal(symlink(at("victim"), at("c/other")), 0);
	assert_int_equal(files_replace_at(fd, "other", "x", 1, false), 0);
	assert_int_equal(mode_of(at("c/other")), 0600);
	fd = open(at("victim"), O_RDONLY);
	n = read(fd, buf, sizeof(buf));
	close(fd);
	assert_int_equal(n, 9);
	assert_memory_equal(buf, "untouched", 9);
	fd = files_dir_fd(d);

	/* open: a regular file of ours only; a link or a FIFO is refused at once */
	sfd = files_open_at(fd, "data");
	assert_true(sfd >= 0);
	assert_int_equal(read(sfd, buf, sizeof(buf)), 9);
	close(sfd);
	assert_int_equal(symlink(at("victim"), at("c/link")), 0);
	assert_int_equal(files_open_at(fd, "link"), -ELOOP);
	assert_int_equal(mkfifo(at("c/fifo"), 0600), 0);
	assert_int_equal(files_open_at(fd, "fifo"), -EPERM);

	/* create: exclusive, never through a link */
	assert_int_equal(files_create_at(fd, "link", O_WRONLY), -EEXIST);
	sfd = files_create_at(fd, "fresh", O_RDWR);
	assert_true(sfd >= 0);
	assert_int_equal(mode_of(at("c/fresh")), 0600);
	close(sfd);

	/* a temporary file: 0600, read-write, and no name left behind */
	sfd = files_temp_at(fd);
	assert_true(sfd >= 0);
	assert_int_equal(write(sfd, "abc", 3), 3);
	assert_int_equal(pread(sfd, buf, 3, 0), 3);
	{
		struct stat st;

		assert_int_equal(fstat(sfd, &st), 0);
		assert_int_equal(st.st_mode & 07777, 0600);
		assert_int_equal(st.st_nlink, 0);
	}
	close(sfd);
	files_dir_close(d);
	umask(old);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dir_open),
		cmocka_unit_test(test_files_at),
	};

	return cmocka_run_group_tests_name("files", tests, setup, teardown);
}

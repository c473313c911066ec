/* Unit tests for mailbox.c's folder path index: a deleted folder stays in
 * the tree (not present) with its path, so that re-created it gets its id
 * back; a lookup by path prefers the present folder that has it, with the
 * index and without it (out of memory); a present folder that takes a path
 * a deleted one holds (mkdir B, rmdir B, mkdir A, mv A B) takes it for good,
 * so the next LIST finds the renamed folder, not the deleted one.  No
 * server: the mailbox has no pool, and the tree is changed as a LIST and
 * rename_in_model change it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "model/mailbox_p.h"

#define MANY 300 /* folders: the index (64 slots at first) is rebuilt on the way */

static struct mailbox *new_mailbox(void)
{
	struct mailbox_options o = { .names = NAMES_UID };
	struct mailbox *mb = mailbox_new(NULL, NULL, &o);

	assert_non_null(mb);
	return mb;
}

/* A folder as a LIST adds it: at the top, present. */
static struct folder *add(struct mailbox *mb, const char *path)
{
	struct folder *f = mb_folder_add_locked(mb, path);

	assert_non_null(f);
	f->parent = 0;
	mb_reindex_locked(mb);
	return f;
}

/* What a LIST that no longer has f does to it. */
static void gone(struct mailbox *mb, struct folder *f)
{
	f->present = false;
	mb_reindex_locked(mb);
}

/* The index dropped, as when there is no memory for it: lookups walk. */
static void drop_index(struct mailbox *mb)
{
	free(mb->by_path);
	mb->by_path = NULL;
	mb->by_path_cap = 0;
}

/* mkdir B, rmdir B, mkdir A, mv A B: B is A's folder (its id, so its inode)
 * at once and after the next LIST; the deleted B lost its path. */
static void test_rename_onto_a_deleted_path(void **state)
{
	struct mailbox *mb = new_mailbox();
	struct folder *b, *a;

	(void)state;
	pthread_rwlock_wrlock(&mb->tree_lock);
	b = add(mb, "B");
	gone(mb, b);
	a = add(mb, "A");
	/* rename_in_model: the path, then the index */
	assert_int_equal(mb_rename_locked(mb, a, "B", "B"), 0);
	mb_reindex_locked(mb);
	assert_ptr_equal(mb_folder_by_path_locked(mb, "B"), a);
	assert_ptr_equal(mb_subfolder_locked(mb, 0, "B"), a);
	assert_null(mb_folder_by_path_locked(mb, "A"));
	assert_string_equal(b->path, "");
	assert_string_equal(b->leaf, "");
	assert_ptr_equal(mb_folder_by_path_locked(mb, ""), mb->folders[0]);

	/* the next LIST: everything not present, then B applied by path */
	a->present = false;
	assert_ptr_equal(mb_folder_by_path_locked(mb, "B"), a);
	a->present = true;
	mb_reindex_locked(mb);
	assert_ptr_equal(mb_subfolder_locked(mb, 0, "B"), a);
	assert_false(b->present);
	assert_int_equal(mb_count_subdirs_locked(mb, 0), 1);
	pthread_rwlock_unlock(&mb->tree_lock);
	mailbox_free(mb);
}

/* Two folders with one path (kept by a rename while the taker was not
 * present): the present one is found whichever the index meets first, and
 * with none present the first deleted one (re-created, it gets its id
 * back).  Likewise when lookups walk the folders. */
static void test_lookup_prefers_present(void **state)
{
	struct mailbox *mb = new_mailbox();
	struct folder *old, *taker;

	(void)state;
	pthread_rwlock_wrlock(&mb->tree_lock);
	old = add(mb, "C");
	gone(mb, old);
	taker = add(mb, "D");
	taker->present = false;
	assert_int_equal(mb_rename_locked(mb, taker, "C", NULL), 0);
	taker->present = true;
	mb_reindex_locked(mb);
	assert_string_equal(old->path, "C");
	for (int walk = 0; walk < 2; walk++) {
		if (walk)
			drop_index(mb);
		assert_ptr_equal(mb_folder_by_path_locked(mb, "C"), taker);
		assert_ptr_equal(mb_subfolder_locked(mb, 0, "C"), taker);
		taker->present = false;
		assert_ptr_equal(mb_folder_by_path_locked(mb, "C"), old);
		assert_null(mb_subfolder_locked(mb, 0, "C"));
		taker->present = true;
	}
	pthread_rwlock_unlock(&mb->tree_lock);
	mailbox_free(mb);
}

/* Many folders (the index grows and is rebuilt), deleted ones re-created
 * with their ids, renames onto deleted paths: every path found, each by
 * its one owner, and the folders that lost their paths in no lookup. */
static void test_many_folders(void **state)
{
	struct mailbox *mb = new_mailbox();
	struct folder *f[MANY];
	char path[32];

	(void)state;
	pthread_rwlock_wrlock(&mb->tree_lock);
	for (int i = 0; i < MANY; i++) {
		snprintf(path, sizeof(path), "F%d", i);
		f[i] = add(mb, path);
	}
	for (int i = 0; i < MANY; i += 2)
		gone(mb, f[i]);
	/* an odd folder renamed onto each deleted even one's path */
	for (int i = 0; i + 1 < MANY; i += 2) {
		snprintf(path, sizeof(path), "F%d", i);
		assert_int_equal(mb_rename_locked(mb, f[i + 1], path, NULL), 0);
	}
	mb_reindex_locked(mb);
	for (int i = 0; i < MANY; i++) {
		snprintf(path, sizeof(path), "F%d", i);
		if (i % 2 == 0) {
			assert_ptr_equal(mb_folder_by_path_locked(mb, path), f[i + 1]);
			assert_string_equal(f[i]->path, "");
		} else {
			assert_null(mb_folder_by_path_locked(mb, path));
		}
	}
	assert_ptr_equal(mb_folder_by_path_locked(mb, ""), mb->folders[0]);
	assert_int_equal(mb_count_subdirs_locked(mb, 0), MANY / 2);
	pthread_rwlock_unlock(&mb->tree_lock);
	mailbox_free(mb);
}

/* A deleted folder nobody took the path of comes back with its id. */
static void test_recreated_keeps_id(void **state)
{
	struct mailbox *mb = new_mailbox();
	struct folder *g;

	(void)state;
	pthread_rwlock_wrlock(&mb->tree_lock);
	g = add(mb, "G");
	gone(mb, g);
	assert_null(mb_subfolder_locked(mb, 0, "G"));
	assert_ptr_equal(mb_folder_by_path_locked(mb, "G"), g);
	pthread_rwlock_unlock(&mb->tree_lock);
	mailbox_free(mb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rename_onto_a_deleted_path),
		cmocka_unit_test(test_lookup_prefers_present),
		cmocka_unit_test(test_many_folders),
		cmocka_unit_test(test_recreated_keeps_id),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

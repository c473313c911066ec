/* Unit tests for vnode.c: one key, one inode while it is looked up; forget
 * of every lookup frees it (its id is reused, the old inode is stale); keys
 * differing in any field are different nodes; a text over the bound is
 * refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <errno.h>

#include "model/vnode.h"

static void same_key_same_inode(void **state)
{
	struct vnodes *v = vnodes_new();
	struct vnode_key k = { VNODE_PARTS_DIR, 3, 42, "" }, got;
	char text[VNODE_TEXT_MAX + 1];
	uint64_t a, b;

	(void)state;
	assert_int_equal(vnodes_lookup(v, &k, &a), 0);
	assert_int_equal(vnodes_lookup(v, &k, &b), 0);
	assert_true(a == b);
	assert_true(inode_is_virtual(a));
	assert_false(inode_is_folder(a));
	assert_int_equal(vnodes_get(v, a, &got, text), 0);
	assert_int_equal(got.kind, VNODE_PARTS_DIR);
	assert_int_equal(got.folder, 3);
	assert_int_equal(got.uid, 42);
	assert_string_equal(got.text, "");
	/* two lookups: one forget leaves it, the second frees it */
	vnodes_forget(v, a, 1);
	assert_int_equal(vnodes_get(v, a, &got, text), 0);
	vnodes_forget(v, a, 1);
	assert_int_equal(vnodes_get(v, a, &got, text), -ESTALE);
	assert_int_equal(vnodes_count(v), 0);
	vnodes_free(v);
}

static void keys_differ_in_every_field(void **state)
{
	struct vnodes *v = vnodes_new();
	struct vnode_key keys[] = {
		{ VNODE_PART_FILE, 1, 7, "2" },           { VNODE_PART_FILE, 1, 7, "2.1" },
		{ VNODE_PART_FILE, 1, 8, "2" },           { VNODE_PART_FILE, 2, 7, "2" },
		{ VNODE_PARTS_DIR, 1, 7, "2" },           { VNODE_SEARCH_DIR, 1, 0, "FROM alice" },
		{ VNODE_SEARCH_DIR, 0, 0, "FROM alice" },
	};
	size_t n = sizeof(keys) / sizeof(keys[0]);
	uint64_t ino[sizeof(keys) / sizeof(keys[0])];
	char text[VNODE_TEXT_MAX + 1];
	struct vnode_key got;

	(void)state;
	for (size_t i = 0; i < n; i++)
		assert_int_equal(vnodes_lookup(v, &keys[i], &ino[i]), 0);
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < i; j++)
			assert_true(ino[i] != ino[j]);
		assert_int_equal(vnodes_get(v, ino[i], &got, text), 0);
		assert_string_equal(got.text, keys[i].text);
		assert_int_equal(got.uid, keys[i].uid);
	}
	assert_int_equal(vnodes_count(v), n);
	vnodes_forget(v, ino[1], 5); /* more than it had: gone, no underflow */
	assert_int_equal(vnodes_count(v), n - 1);
	/* the freed id is given to the next new key; the old key is new again */
	{
		uint64_t again;

		assert_int_equal(vnodes_lookup(v, &keys[1], &again), 0);
		assert_true(again == ino[1]);
	}
	vnodes_free(v);
}

static void bounds(void **state)
{
	struct vnodes *v = vnodes_new();
	char *big = malloc(VNODE_TEXT_MAX + 2);
	char text[VNODE_TEXT_MAX + 1];
	struct vnode_key k = { VNODE_SEARCH_DIR, 1, 0, big }, got;
	uint64_t ino;

	(void)state;
	memset(big, 'a', VNODE_TEXT_MAX + 1);
	big[VNODE_TEXT_MAX + 1] = 0;
	assert_int_equal(vnodes_lookup(v, &k, &ino), -ENAMETOOLONG);
	big[VNODE_TEXT_MAX] = 0;
	assert_int_equal(vnodes_lookup(v, &k, &ino), 0);
	assert_int_equal(vnodes_get(v, ino, &got, text), 0);
	assert_int_equal(strlen(got.text), VNODE_TEXT_MAX);
	/* inodes that are no node: a message's, id 0, an id never given */
	assert_int_equal(vnodes_get(v, inode_of_message(1, 5), &got, text), -ESTALE);
	assert_int_equal(vnodes_get(v, inode_of_message(INODE_VIRTUAL_FOLDER, 0), &got, text), -ESTALE);
	assert_int_equal(vnodes_get(v, inode_of_message(INODE_VIRTUAL_FOLDER, 99), &got, text), -ESTALE);
	vnodes_forget(v, inode_of_message(INODE_VIRTUAL_FOLDER, 99), 1);
	free(big);
	vnodes_free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(same_key_same_inode),
		cmocka_unit_test(keys_differ_in_every_field),
		cmocka_unit_test(bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

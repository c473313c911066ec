/* Unit tests for the typed file handles of ops.c: a handler asking for one
 * kind never gets an object of another (a message's handle taken for an
 * upload's crashed the daemon), a missing handle is NULL, and the object
 * lives until the last reference goes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "fuse/ops.h"

static int freed;

static void count_free(void *obj)
{
	(void)obj;
	freed++;
}

static void test_kind_checked(void **state)
{
	static const enum ops_handle_kind kinds[] = {
		OPS_HANDLE_DIR,
		OPS_HANDLE_MESSAGE,
		OPS_HANDLE_UPLOAD,
		OPS_HANDLE_TEXT,
	};
	int obj;

	(void)state;
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		struct fuse_file_info fi;
		struct ops_handle *h;

		memset(&fi, 0, sizeof(fi));
		freed = 0;
		assert_int_equal(ops_handle_set(&fi, kinds[i], &obj, count_free), 0);
		for (size_t j = 0; j < sizeof(kinds) / sizeof(kinds[0]); j++) {
			h = ops_handle_get(&fi, kinds[j]);
			if (i == j) {
				assert_non_null(h);
				assert_ptr_equal(h->obj, &obj);
			} else {
				assert_null(h);
			}
			ops_handle_put(h);
		}
		h = ops_handle_any(&fi);
		assert_non_null(h);
		assert_int_equal(h->kind, kinds[i]);
		ops_handle_drop(&fi); /* release while a request holds it */
		assert_int_equal(freed, 0);
		ops_handle_put(h);
		assert_int_equal(freed, 1);
	}
}

static void test_no_handle(void **state)
{
	struct fuse_file_info fi;

	(void)state;
	memset(&fi, 0, sizeof(fi));
	assert_null(ops_handle_any(NULL));
	assert_null(ops_handle_any(&fi));
	assert_null(ops_handle_get(NULL, OPS_HANDLE_UPLOAD));
	assert_null(ops_handle_get(&fi, OPS_HANDLE_MESSAGE));
	ops_handle_drop(&fi);
	ops_handle_drop(NULL);
	ops_handle_put(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kind_checked),
		cmocka_unit_test(test_no_handle),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Unit tests for store/fsutil.c: making directory paths, syncing
 * directories, removing trees. */
#include "store_fixture.h"
#include "store_internal.h"

#include "tw_check.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *dir;

static void setup(void)
{
    dir = fx_mkdtemp();
}
static void teardown(void)
{
    fx_rmdir(dir);
}

static char *path_in(const char *rel)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    return path;
}

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

START_TEST(mkdirs_makes_every_missing_level)
{
    ck_assert_int_eq(store_mkdirs(path_in("a/b/c")), TW_OK);
    ck_assert(is_dir(path_in("a/b/c")));
    ck_assert_int_eq(store_mkdirs(path_in("a/b/c")), TW_OK);
    ck_assert_int_eq(store_mkdirs(path_in("a/b/d/")), TW_OK);
    ck_assert(is_dir(path_in("a/b/d")));
    ck_assert_int_eq(store_mkdirs(""), TW_ERR_VALIDATION);
}
END_TEST

START_TEST(mkdirs_fails_through_a_file)
{
    fx_write_file(path_in("file"), "");
    ck_assert_int_eq(store_mkdirs(path_in("file/sub")), TW_ERR_DB);
    ck_assert_ptr_nonnull(strstr(tw_store_last_error(), "file/sub"));
}
END_TEST

START_TEST(fsync_dir_needs_a_directory)
{
    ck_assert_int_eq(store_fsync_dir(dir), TW_OK);
    ck_assert_int_eq(store_fsync_dir(path_in("missing")), TW_ERR_DB);
}
END_TEST

START_TEST(remove_tree_removes_everything_below)
{
    ck_assert_int_eq(store_mkdirs(path_in("t/x/y")), TW_OK);
    fx_write_file(path_in("t/x/y/file"), "data");
    ck_assert(store_remove_tree(path_in("t")));
    ck_assert_int_eq(access(path_in("t"), F_OK), -1);
    ck_assert(store_remove_tree(path_in("t")));
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("fsutil");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, mkdirs_makes_every_missing_level);
    tcase_add_test(tc, mkdirs_fails_through_a_file);
    tcase_add_test(tc, fsync_dir_needs_a_directory);
    tcase_add_test(tc, remove_tree_removes_everything_below);
    suite_add_tcase(s, tc);
    return s;
}

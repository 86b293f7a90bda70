/* Unit tests for store/blob_fs.c: where files go, that uncommitted writes
 * live only in the temporary directory and are cleaned at open (after a
 * crash too), and that a failing disk leaves nothing behind. */
#include "store_fixture.h"
#include "tw_blob.h"

#include "tw_check.h"

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Entries in <dir>/blobs/<sub>, "." and ".." not counted; -1 if absent. */
static int entries(const char *sub)
{
    char path[512];
    snprintf(path, sizeof path, "%s/blobs/%s", fxb.dir, sub);
    DIR *d = opendir(path);
    if (d == NULL)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

START_TEST(blobs_are_files_under_the_data_dir)
{
    tw_blob_writer *w;
    ck_assert_int_eq(tw_blob_writer_open(fxb.blobs, "user/note.mp3", &w), TW_OK);
    ck_assert_int_eq(tw_blob_writer_append(w, "ID3", 3), TW_OK);
    ck_assert_int_eq(entries(".tmp"), 1);
    ck_assert_int_eq(entries("user"), -1);
    ck_assert_int_eq(tw_blob_writer_commit(w), TW_OK);
    ck_assert_int_eq(entries(".tmp"), 0);
    ck_assert_int_eq(entries("user"), 1);
    char path[512];
    struct stat st;
    snprintf(path, sizeof path, "%s/blobs/user/note.mp3", fxb.dir);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_size, 3);
    ck_assert_int_eq(tw_blob_delete(fxb.blobs, "user/note.mp3"), TW_OK);
    ck_assert_int_eq(entries("user"), -1); /* the emptied directory went too */
    ck_assert_int_eq(entries(""), 1);      /* only .tmp */
}
END_TEST

START_TEST(orphans_are_removed_at_open)
{
    char path[512];
    snprintf(path, sizeof path, "%s/blobs/.tmp/leftover", fxb.dir);
    fx_write_file(path, "half an upload");
    tw_blob_writer *w;
    ck_assert_int_eq(tw_blob_writer_open(fxb.blobs, "u/kept", &w), TW_OK);
    ck_assert_int_eq(tw_blob_writer_commit(w), TW_OK);
    tw_blob_close(fxb.blobs);
    ck_assert_int_eq(tw_blob_fs_open(fxb.dir, &fxb.blobs), TW_OK);
    ck_assert_int_eq(entries(".tmp"), 0);
    tw_blob_info info;
    ck_assert_int_eq(tw_blob_stat(fxb.blobs, "u/kept", &info), TW_OK);
}
END_TEST

START_TEST(a_crash_mid_write_leaves_nothing_visible)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        tw_blob_writer *w;
        if (tw_blob_writer_open(fxb.blobs, "u/crashed", &w) != TW_OK ||
            tw_blob_writer_append(w, "some audio", 10) != TW_OK)
            _exit(1);
        kill(getpid(), SIGKILL);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFSIGNALED(status));
    ck_assert_int_eq(entries(".tmp"), 1);
    tw_blob_info info;
    ck_assert_int_eq(tw_blob_stat(fxb.blobs, "u/crashed", &info), TW_ERR_NOT_FOUND);
    tw_blob_close(fxb.blobs);
    ck_assert_int_eq(tw_blob_fs_open(fxb.dir, &fxb.blobs), TW_OK);
    ck_assert_int_eq(entries(".tmp"), 0);
}
END_TEST

/* Check runs each test in its own process, so the limit dies with it. */
START_TEST(a_full_disk_fails_the_write_and_leaves_nothing)
{
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit lim = {.rlim_cur = 4096, .rlim_max = RLIM_INFINITY};
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    static char chunk[1024];
    tw_blob_writer *w;
    ck_assert_int_eq(tw_blob_writer_open(fxb.blobs, "u/big", &w), TW_OK);
    tw_err err = TW_OK;
    for (int i = 0; err == TW_OK && i < 16; i++)
        err = tw_blob_writer_append(w, chunk, sizeof chunk);
    /* A direct writer gathers what it is given, so the disk may refuse
     * only at the commit; either way nothing is stored. */
    if (err == TW_OK)
        err = tw_blob_writer_commit(w);
    else
        tw_blob_writer_abort(w);
    ck_assert_int_eq(err, TW_ERR_DB);
    ck_assert_ptr_nonnull(strstr(tw_store_last_error(), "blob write"));
    ck_assert_int_eq(entries(".tmp"), 0);
    tw_blob_info info;
    ck_assert_int_eq(tw_blob_stat(fxb.blobs, "u/big", &info), TW_ERR_NOT_FOUND);
}
END_TEST

/* Appends of every awkward size (less than a 4 KiB unit, a unit and one
 * byte, a chunk, more than a 1 MiB direct block, a tail that is no whole
 * unit) in data_dir's blob store; the blob read back is every byte, in
 * order. */
static void check_bytes_kept(const char *data_dir)
{
    static const size_t sizes[] = {1, 4095, 4097, 65536, 1048576 + 7, 3, 2 * 1048576, 12345};
    size_t total = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        total += sizes[i];
    uint8_t *bytes = malloc(total), *back = malloc(total + 1);
    ck_assert_ptr_nonnull(bytes);
    ck_assert_ptr_nonnull(back);
    for (size_t i = 0; i < total; i++)
        bytes[i] = (uint8_t)(i * 131 + i / 4096);
    tw_blob_store *b;
    ck_assert_int_eq(tw_blob_fs_open(data_dir, &b), TW_OK);
    tw_blob_writer *w;
    ck_assert_int_eq(tw_blob_writer_open(b, "u/kept", &w), TW_OK);
    size_t at = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        ck_assert_int_eq(tw_blob_writer_append(w, bytes + at, sizes[i]), TW_OK);
        at += sizes[i];
    }
    ck_assert_int_eq(tw_blob_writer_commit(w), TW_OK);
    tw_blob_info info;
    ck_assert_int_eq(tw_blob_stat(b, "u/kept", &info), TW_OK);
    ck_assert_uint_eq(info.size, total);
    tw_blob_reader *r;
    ck_assert_int_eq(tw_blob_reader_open(b, "u/kept", 0, &r, NULL), TW_OK);
    size_t got = 0, n;
    do {
        ck_assert_int_eq(tw_blob_reader_read(r, back + got, total + 1 - got, &n), TW_OK);
        got += n;
    } while (n > 0 && got <= total);
    tw_blob_reader_close(r);
    ck_assert_uint_eq(got, total);
    ck_assert(memcmp(bytes, back, total) == 0);
    tw_blob_close(b);
    free(bytes);
    free(back);
}

/* Where the filesystem takes O_DIRECT (the test's directory, on the disk)
 * and where it does not (tmpfs: the page cache is used instead). */
START_TEST(every_byte_is_kept_written_directly_or_not)
{
    check_bytes_kept(fxb.dir);
    char *shm = fx_mkdtemp_under("/dev/shm");
    check_bytes_kept(shm);
    fx_rmdir(shm);
}
END_TEST

START_TEST(a_data_dir_that_is_a_file_is_refused)
{
    char path[512];
    snprintf(path, sizeof path, "%s/file", fxb.dir);
    fx_write_file(path, "");
    tw_blob_store *b;
    ck_assert_int_eq(tw_blob_fs_open(path, &b), TW_ERR_DB);
    ck_assert_ptr_null(b);
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("blob_fs");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, fxb_setup, fxb_teardown);
    tcase_add_test(tc, blobs_are_files_under_the_data_dir);
    tcase_add_test(tc, orphans_are_removed_at_open);
    tcase_add_test(tc, a_crash_mid_write_leaves_nothing_visible);
    tcase_add_test(tc, a_full_disk_fails_the_write_and_leaves_nothing);
    tcase_add_test(tc, every_byte_is_kept_written_directly_or_not);
    tcase_add_test(tc, a_data_dir_that_is_a_file_is_refused);
    suite_add_tcase(s, tc);
    return s;
}

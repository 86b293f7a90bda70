/* Shared helpers of the store's tests (store_fixture.h). */
#include "store_fixture.h"

#include "tw_check.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int64_t fx_clock_now(void *clock)
{
    return atomic_load(&((fx_clock *)clock)->ms);
}

char *fx_mkdtemp(void)
{
    char *dir = strdup("/tmp/twd-store-test-XXXXXX");
    ck_assert_ptr_nonnull(dir);
    ck_assert_ptr_nonnull(mkdtemp(dir));
    return dir;
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    return remove(path);
}

void fx_rmdir(char *dir)
{
    if (dir == NULL)
        return;
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
}

void fx_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_msg(f != NULL, "%s", path);
    ck_assert_int_ge(fputs(text, f), 0);
    ck_assert_int_eq(fclose(f), 0);
}

void fx_reopen(fx_store *f)
{
    tw_store_options o = {
        .data_dir = f->dir,
        .durability = TW_FAST,
        .clock_ms = fx_clock_now,
        .clock_ctx = &f->clock,
    };
    tw_err err = tw_store_open(&o, &f->store);
    ck_assert_msg(err == TW_OK, "open: %s %s", tw_err_name(err), tw_store_last_error());
}

void fx_open(fx_store *f)
{
    f->dir = fx_mkdtemp();
    atomic_store(&f->clock.ms, FX_EPOCH_MS);
    f->arena = tw_arena_new(16 * 1024);
    ck_assert_ptr_nonnull(f->arena);
    fx_reopen(f);
}

void fx_close(fx_store *f)
{
    tw_store_close(f->store);
    f->store = NULL;
    tw_arena_free(f->arena);
    f->arena = NULL;
    fx_rmdir(f->dir);
    f->dir = NULL;
}

fx_store fx;
fx_blobs fxb;
const tw_id fx_alice = {{0x01, 0xa1}};
const tw_id fx_bob = {{0x01, 0xb0}};

void fx_setup(void)
{
    fx_open(&fx);
}

void fx_teardown(void)
{
    fx_close(&fx);
}

void fxb_setup(void)
{
    fxb.dir = fx_mkdtemp();
    ck_assert_int_eq(tw_blob_fs_open(fxb.dir, &fxb.blobs), TW_OK);
}

void fxb_teardown(void)
{
    tw_blob_close(fxb.blobs);
    fxb.blobs = NULL;
    fx_rmdir(fxb.dir);
    fxb.dir = NULL;
}

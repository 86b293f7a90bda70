/* The voice tests' shared helpers of voice_fixture.h. */
#include "voice_fixture.h"

#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

vf_file vf_read(const char *path)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    struct stat st;
    ck_assert_int_eq(fstat(fileno(f), &st), 0);
    vf_file out = {malloc((size_t)st.st_size + 1), (size_t)st.st_size};
    ck_assert_ptr_nonnull(out.bytes);
    ck_assert_uint_eq(fread(out.bytes, 1, out.len, f), out.len);
    fclose(f);
    return out;
}

void vf_free(vf_file *f)
{
    free(f->bytes);
    f->bytes = NULL;
    f->len = 0;
}

void vf_run(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    ck_assert_msg(rc == 0, "command failed (%d): %s", rc, cmd);
}

char *vf_tempdir(void)
{
    char *dir = strdup("/tmp/tw-voice-test-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    return dir;
}

void vf_rmdir(char *dir)
{
    if (dir != NULL)
        vf_run("rm -rf '%s'", dir);
    free(dir);
}

static tw_err mem_read(void *ctx, uint8_t *buf, size_t cap, size_t *n)
{
    vf_reader *r = ctx;
    if (r->max_read > 0 && cap > r->max_read)
        cap = r->max_read;
    size_t left = r->len - r->pos;
    size_t take = left < cap ? left : cap;
    if (r->fail_at > 0 && r->pos + take > r->fail_at)
        return TW_ERR_DB;
    memcpy(buf, r->bytes + r->pos, take);
    r->pos += take;
    *n = take;
    return TW_OK;
}

static tw_err mem_seek(void *ctx, uint64_t offset)
{
    vf_reader *r = ctx;
    if (offset > r->len)
        return TW_ERR_VALIDATION;
    r->pos = (size_t)offset;
    return TW_OK;
}

tw_audio_input vf_input(vf_reader *r, const uint8_t *bytes, size_t len)
{
    *r = (vf_reader){.bytes = bytes, .len = len};
    return (tw_audio_input){.read = mem_read, .seek = mem_seek, .size = len, .ctx = r};
}

void vf_pcm_init(vf_pcm *p)
{
    *p = (vf_pcm){.hash = 1469598103934665603ULL};
}

tw_err vf_pcm_sink(void *ctx, const int16_t *samples, size_t n)
{
    vf_pcm *p = ctx;
    for (size_t i = 0; i < n; i++) {
        p->hash = (p->hash ^ (uint16_t)samples[i]) * 1099511628211ULL;
        p->energy += (double)samples[i] * samples[i];
    }
    p->samples += n;
    return TW_OK;
}

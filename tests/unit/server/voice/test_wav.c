/*
 * Unit tests for server/voice/wav.c: the push parser finds the samples of a
 * WAV file however its bytes are split, skips chunks it does not need,
 * follows streaming writers' unknown sizes, and refuses what it cannot read.
 */
#include "tw_check.h"

#include "voice/wav.h"

#include <stdlib.h>
#include <string.h>

struct buf {
    uint8_t bytes[4096];
    size_t len;
};

static void put(struct buf *b, const void *p, size_t n)
{
    ck_assert_uint_le(b->len + n, sizeof b->bytes);
    memcpy(b->bytes + b->len, p, n);
    b->len += n;
}
static void put16(struct buf *b, uint16_t v)
{
    uint8_t p[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    put(b, p, 2);
}
static void put32(struct buf *b, uint32_t v)
{
    uint8_t p[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    put(b, p, 4);
}

static void put_fmt(struct buf *b, uint16_t tag, uint16_t channels, uint32_t rate, uint16_t bits)
{
    put(b, "fmt ", 4);
    put32(b, 16);
    put16(b, tag);
    put16(b, channels);
    put32(b, rate);
    put32(b, rate * channels * (bits / 8u));
    put16(b, (uint16_t)(channels * (bits / 8u)));
    put16(b, bits);
}

/* A WAV of n bytes of samples 0, 1, 2, ... with an odd-sized LIST chunk
 * before the data and another chunk after it. */
static void make_wav(struct buf *b, uint32_t n, uint32_t data_size_field)
{
    b->len = 0;
    put(b, "RIFF", 4);
    put32(b, 0);
    put(b, "WAVE", 4);
    put(b, "LIST", 4);
    put32(b, 3);
    put(b, "abc\0", 4); /* 3 bytes and the pad byte */
    put_fmt(b, TW_WAV_PCM, 1, 16000, 16);
    put(b, "data", 4);
    put32(b, data_size_field);
    for (uint32_t i = 0; i < n; i++)
        put(b, &(uint8_t){(uint8_t)i}, 1);
    put(b, "junk", 4);
    put32(b, 2);
    put(b, "zz", 2);
}

struct collected {
    uint8_t bytes[4096];
    size_t len;
    tw_wav_format format;
};

static tw_err collect(void *ctx, const tw_wav_format *format, const uint8_t *data, size_t n)
{
    struct collected *c = ctx;
    ck_assert_uint_le(c->len + n, sizeof c->bytes);
    memcpy(c->bytes + c->len, data, n);
    c->len += n;
    c->format = *format;
    return TW_OK;
}

/* Feeds b in pieces of `step` bytes (0: random sizes). */
static tw_err feed(tw_wav_parser *p, const struct buf *b, size_t step, struct collected *c)
{
    size_t off = 0;
    tw_err err = TW_OK;
    while (off < b->len && err == TW_OK) {
        size_t n = step ? step : (size_t)(rand() % 40) + 1;
        if (n > b->len - off)
            n = b->len - off;
        err = tw_wav_parser_feed(p, b->bytes + off, n, collect, c);
        off += n;
    }
    return err;
}

START_TEST(samples_come_out_however_the_bytes_are_split)
{
    struct buf b;
    make_wav(&b, 1000, 1000);
    size_t steps[] = {1, 2, 3, 7, 44, 4096, 0, 0, 0};
    for (size_t s = 0; s < sizeof steps / sizeof steps[0]; s++) {
        tw_wav_parser p;
        tw_wav_parser_init(&p);
        struct collected c = {.len = 0};
        ck_assert_int_eq(feed(&p, &b, steps[s], &c), TW_OK);
        ck_assert_int_eq(tw_wav_parser_finish(&p), TW_OK);
        /* Exactly the data chunk: the chunk after it is not audio. */
        ck_assert_uint_eq(c.len, 1000);
        for (size_t i = 0; i < c.len; i++)
            ck_assert_uint_eq(c.bytes[i], (uint8_t)i);
        ck_assert_uint_eq(c.format.sample_rate, 16000);
        ck_assert_uint_eq(c.format.channels, 1);
        ck_assert_uint_eq(c.format.bits, 16);
        ck_assert_int_eq(tw_wav_parser_duration_ms(&p), 1000 * 1000 / 32000);
    }
}
END_TEST

START_TEST(unknown_data_size_runs_to_the_end)
{
    uint32_t fields[] = {0, UINT32_MAX};
    for (size_t i = 0; i < 2; i++) {
        struct buf b;
        make_wav(&b, 640, fields[i]);
        tw_wav_parser p;
        tw_wav_parser_init(&p);
        struct collected c = {.len = 0};
        ck_assert_int_eq(feed(&p, &b, 100, &c), TW_OK);
        ck_assert_int_eq(tw_wav_parser_finish(&p), TW_OK);
        /* Everything after the header is data, the trailing chunk too. */
        ck_assert_uint_eq(c.len, 640 + 10);
    }
}
END_TEST

START_TEST(extensible_format_names_its_sub_format)
{
    struct buf b = {.len = 0};
    put(&b, "RIFF", 4);
    put32(&b, 0);
    put(&b, "WAVE", 4);
    put(&b, "fmt ", 4);
    put32(&b, 40);
    put16(&b, TW_WAV_EXTENSIBLE);
    put16(&b, 2);
    put32(&b, 48000);
    put32(&b, 48000 * 8);
    put16(&b, 8);
    put16(&b, 32);
    put16(&b, 22);           /* cbSize */
    put16(&b, 32);           /* valid bits */
    put32(&b, 3);            /* channel mask */
    put16(&b, TW_WAV_FLOAT); /* the sub-format GUID starts with the tag */
    put(&b, "\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71", 14);
    put(&b, "data", 4);
    put32(&b, 16);
    put(&b, "0123456789abcdef", 16);
    tw_wav_parser p;
    tw_wav_parser_init(&p);
    struct collected c = {.len = 0};
    ck_assert_int_eq(feed(&p, &b, 5, &c), TW_OK);
    ck_assert_int_eq(tw_wav_parser_finish(&p), TW_OK);
    ck_assert_uint_eq(c.format.tag, TW_WAV_FLOAT);
    ck_assert_uint_eq(c.format.channels, 2);
    ck_assert_uint_eq(c.len, 16);
}
END_TEST

static const char *refusal(const struct buf *b)
{
    static tw_wav_parser p;
    tw_wav_parser_init(&p);
    struct collected c = {.len = 0};
    tw_err err = feed(&p, b, 3, &c);
    if (err == TW_OK)
        err = tw_wav_parser_finish(&p);
    ck_assert_int_eq(err, TW_ERR_VALIDATION);
    /* Once failed, it stays failed. */
    ck_assert_int_eq(tw_wav_parser_feed(&p, (const uint8_t *)"x", 1, collect, &c),
                     TW_ERR_VALIDATION);
    return p.error;
}

START_TEST(what_it_cannot_read_is_refused)
{
    struct buf b = {.len = 0};
    put(&b, "RIFF\0\0\0\0AVI LIST", 16);
    ck_assert_str_eq(refusal(&b), "not a RIFF/WAVE file");

    b.len = 0;
    put(&b, "RIFF\0\0\0\0WAVE", 12);
    put(&b, "data", 4);
    put32(&b, 4);
    put(&b, "abcd", 4);
    ck_assert_str_eq(refusal(&b), "WAV data chunk comes before its fmt chunk");

    b.len = 0;
    put(&b, "RIFF\0\0\0\0WAVE", 12);
    put_fmt(&b, TW_WAV_PCM, 1, 50, 16);
    ck_assert_str_eq(refusal(&b), "WAV sample rate out of range");

    b.len = 0;
    put(&b, "RIFF\0\0\0\0WAVE", 12);
    put_fmt(&b, TW_WAV_PCM, 0, 16000, 16);
    ck_assert_str_eq(refusal(&b), "WAV channel count out of range");

    b.len = 0;
    put(&b, "RIFF\0\0\0\0WAVE", 12);
    put_fmt(&b, TW_WAV_PCM, 1, 16000, 16);
    put_fmt(&b, TW_WAV_PCM, 1, 16000, 16);
    ck_assert_str_eq(refusal(&b), "WAV has two fmt chunks");

    b.len = 0;
    put(&b, "RIFF\0\0\0\0WAVE", 12);
    put_fmt(&b, TW_WAV_PCM, 1, 16000, 16);
    ck_assert_str_eq(refusal(&b), "WAV file has no data chunk");

    b.len = 0;
    put(&b, "RIFF\0\0\0\0WAVE", 12);
    ck_assert_str_eq(refusal(&b), "WAV file ends before its fmt chunk");
}
END_TEST

static tw_err refuse_data(void *ctx, const tw_wav_format *f, const uint8_t *d, size_t n)
{
    return TW_ERR_UNIMPLEMENTED;
}

START_TEST(an_error_of_the_callback_stops_the_parser)
{
    struct buf b;
    make_wav(&b, 100, 100);
    tw_wav_parser p;
    tw_wav_parser_init(&p);
    ck_assert_int_eq(tw_wav_parser_feed(&p, b.bytes, b.len, refuse_data, NULL),
                     TW_ERR_UNIMPLEMENTED);
    ck_assert_int_eq(tw_wav_parser_finish(&p), TW_ERR_VALIDATION);
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("wav");
    TCase *tc = tcase_create("parser");
    tcase_add_test(tc, samples_come_out_however_the_bytes_are_split);
    tcase_add_test(tc, unknown_data_size_runs_to_the_end);
    tcase_add_test(tc, extensible_format_names_its_sub_format);
    tcase_add_test(tc, what_it_cannot_read_is_refused);
    tcase_add_test(tc, an_error_of_the_callback_stops_the_parser);
    suite_add_tcase(s, tc);
    return s;
}

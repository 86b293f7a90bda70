/* The RIFF/WAVE push parser of wav.h. */
#include "wav.h"

#include <string.h>

enum {
    S_RIFF,   /* staging "RIFF" <size> "WAVE" */
    S_HEADER, /* staging a chunk header: id, size */
    S_FMT,    /* staging the fmt chunk's first bytes */
    S_DATA,   /* passing the data chunk through */
    S_SKIP,   /* skipping a chunk we do not need */
    S_AFTER,  /* after the data: the rest is ignored */
    S_FAILED,
};

/* The most fmt bytes read: enough for WAVE_FORMAT_EXTENSIBLE's sub-format. */
#define FMT_READ 40
#define FMT_MAX  1024

static uint16_t le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}
static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void tw_wav_parser_init(tw_wav_parser *p)
{
    memset(p, 0, sizeof *p);
    p->state = S_RIFF;
    p->want = 12;
}

static tw_err fail(tw_wav_parser *p, const char *why)
{
    p->state = S_FAILED;
    p->error = why;
    return TW_ERR_VALIDATION;
}

/* After a chunk's body: its pad byte, then the next header. */
static void next_chunk(tw_wav_parser *p)
{
    p->have = 0;
    p->want = 8;
    if (p->pad) {
        p->pad = false;
        p->left = 1;
        p->state = S_SKIP;
    } else {
        p->state = S_HEADER;
    }
}

static tw_err parse_format(tw_wav_parser *p, size_t len)
{
    const uint8_t *f = p->staged;
    tw_wav_format *w = &p->format;
    w->tag = le16(f);
    w->channels = le16(f + 2);
    w->sample_rate = le32(f + 4);
    w->byte_rate = le32(f + 8);
    w->block_align = le16(f + 12);
    w->bits = le16(f + 14);
    if (w->tag == TW_WAV_EXTENSIBLE) {
        if (len < FMT_READ)
            return fail(p, "WAVE_FORMAT_EXTENSIBLE without its sub-format");
        w->tag = le16(f + 24);
    }
    if (w->channels == 0 || w->channels > 32)
        return fail(p, "WAV channel count out of range");
    if (w->sample_rate < 1000 || w->sample_rate > 384000)
        return fail(p, "WAV sample rate out of range");
    if (w->block_align == 0)
        return fail(p, "WAV block alignment is 0");
    if (w->byte_rate == 0)
        w->byte_rate = w->sample_rate * w->block_align;
    p->has_format = true;
    return TW_OK;
}

static tw_err header_done(tw_wav_parser *p)
{
    const uint8_t *h = p->staged;
    uint32_t size = le32(h + 4);
    p->have = 0;
    p->pad = size & 1;
    if (memcmp(h, "fmt ", 4) == 0) {
        if (p->has_format)
            return fail(p, "WAV has two fmt chunks");
        if (size < 16 || size > FMT_MAX)
            return fail(p, "WAV fmt chunk has an impossible size");
        p->want = size < FMT_READ ? size : FMT_READ;
        p->left = size;
        p->state = S_FMT;
    } else if (memcmp(h, "data", 4) == 0) {
        if (!p->has_format)
            return fail(p, "WAV data chunk comes before its fmt chunk");
        p->data_unbounded = size == 0 || size == UINT32_MAX;
        p->left = size;
        p->state = S_DATA;
    } else {
        p->left = size;
        p->state = S_SKIP;
    }
    return TW_OK;
}

tw_err tw_wav_parser_feed(tw_wav_parser *p, const uint8_t *bytes, size_t n, tw_wav_data_fn on_data,
                          void *ctx)
{
    tw_err err = TW_OK;
    while (n > 0 && err == TW_OK) {
        size_t take;
        switch (p->state) {
        case S_FAILED:
            return TW_ERR_VALIDATION;
        case S_AFTER:
            return TW_OK;
        case S_RIFF:
        case S_HEADER:
        case S_FMT:
            take = p->want - p->have < n ? p->want - p->have : n;
            memcpy(p->staged + p->have, bytes, take);
            p->have += take;
            if (p->state == S_FMT)
                p->left -= take;
            bytes += take;
            n -= take;
            if (p->have < p->want)
                break;
            if (p->state == S_RIFF) {
                if (memcmp(p->staged, "RIFF", 4) != 0 || memcmp(p->staged + 8, "WAVE", 4) != 0)
                    return fail(p, "not a RIFF/WAVE file");
                p->have = 0;
                p->want = 8;
                p->state = S_HEADER;
            } else if (p->state == S_HEADER) {
                err = header_done(p);
            } else {
                err = parse_format(p, p->have);
                if (err == TW_OK && p->left > 0)
                    p->state = S_SKIP;
                else if (err == TW_OK)
                    next_chunk(p);
            }
            break;
        case S_DATA:
            take = p->data_unbounded || p->left > n ? n : (size_t)p->left;
            if (take > 0 && on_data != NULL)
                err = on_data(ctx, &p->format, bytes, take);
            if (err) {
                p->state = S_FAILED;
                p->error = "the decoder refused the data";
                return err;
            }
            p->data_bytes += take;
            if (!p->data_unbounded)
                p->left -= take;
            bytes += take;
            n -= take;
            if (!p->data_unbounded && p->left == 0)
                p->state = S_AFTER;
            break;
        case S_SKIP:
            take = p->left > n ? n : (size_t)p->left;
            p->left -= take;
            bytes += take;
            n -= take;
            if (p->left == 0)
                next_chunk(p);
            break;
        }
    }
    return err;
}

tw_err tw_wav_parser_finish(tw_wav_parser *p)
{
    if (p->state == S_FAILED)
        return TW_ERR_VALIDATION;
    if (!p->has_format)
        return fail(p, "WAV file ends before its fmt chunk");
    if (p->state != S_DATA && p->state != S_AFTER)
        return fail(p, "WAV file has no data chunk");
    return TW_OK;
}

int64_t tw_wav_parser_duration_ms(const tw_wav_parser *p)
{
    if (!p->has_format)
        return -1;
    return (int64_t)(p->data_bytes * 1000 / p->format.byte_rate);
}

/*
 * A push parser for RIFF/WAVE files: bytes go in as they arrive, in pieces
 * of any size, and the samples of the data chunk come out through a
 * callback. It keeps a few dozen bytes of state and never the audio, so an
 * upload can be decoded (and its duration known) while it streams in.
 * Streaming writers that cannot know the length put 0 or 0xFFFFFFFF in the
 * data chunk's size: the data then runs to the end of the file.
 */
#ifndef TW_VOICE_WAV_H
#define TW_VOICE_WAV_H

#include "tw_err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* WAVE_FORMAT tags (for WAVE_FORMAT_EXTENSIBLE, the sub-format's tag). */
enum {
    TW_WAV_PCM = 0x0001,
    TW_WAV_FLOAT = 0x0003,
    TW_WAV_ALAW = 0x0006,
    TW_WAV_MULAW = 0x0007,
    TW_WAV_EXTENSIBLE = 0xfffe,
};

typedef struct tw_wav_format {
    uint16_t tag;
    uint16_t channels;
    uint32_t sample_rate;
    uint32_t byte_rate;
    uint16_t block_align;
    uint16_t bits;
} tw_wav_format;

/* Gets each piece of the data chunk (borrowed during the call). An error
 * stops the parser and is returned by tw_wav_parser_feed. */
typedef tw_err (*tw_wav_data_fn)(void *ctx, const tw_wav_format *format, const uint8_t *data,
                                 size_t n);

typedef struct tw_wav_parser {
    int state;
    uint8_t staged[40]; /* a header or the start of the fmt chunk */
    size_t have, want;
    uint64_t left; /* bytes left in the current chunk */
    bool pad;      /* a pad byte follows the current chunk */
    bool data_unbounded;
    tw_wav_format format;
    bool has_format;
    uint64_t data_bytes; /* of the data chunk, seen so far */
    const char *error;   /* why the bytes were refused */
} tw_wav_parser;

void tw_wav_parser_init(tw_wav_parser *p);

/* Feeds the next n bytes (borrowed). on_data may be NULL. Returns
 * TW_ERR_VALIDATION, with p->error, when the bytes are not a WAV file this
 * parser can read; once failed, it fails every later call. */
tw_err tw_wav_parser_feed(tw_wav_parser *p, const uint8_t *bytes, size_t n, tw_wav_data_fn on_data,
                          void *ctx);

/* After the last byte: TW_ERR_VALIDATION (p->error) unless a format and a
 * data chunk were seen. */
tw_err tw_wav_parser_finish(tw_wav_parser *p);

/* How long the data seen so far plays, in ms; -1 before the format is known. */
int64_t tw_wav_parser_duration_ms(const tw_wav_parser *p);

#endif

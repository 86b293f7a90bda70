/*
 * Audio to 16 kHz mono signed 16-bit PCM, what speech recognisers want,
 * with FFmpeg's libraries (FFmpeg 5.1: libavformat, libavcodec,
 * libswresample, libavutil).
 *
 * Two ways in:
 *  - tw_audio_decode pulls a whole recording of any of the four formats
 *    from a reader (blob storage) through libavformat, restricted to the
 *    demuxer of the format the upload was sniffed as, so untrusted bytes
 *    never reach another demuxer or any protocol;
 *  - tw_wav_decoder is pushed the bytes of a WAV file as they arrive
 *    (wav.h parses the container, libavcodec decodes the samples), so an
 *    upload is decoded while it streams in.
 * Both resample with libswresample and hand the samples to a sink.
 *
 * Errors: TW_ERR_VALIDATION means the audio cannot be decoded (a reason is
 * in why); TW_ERR_CANCELLED that *abort was set; an error of the reader or
 * the sink is returned as it is.
 */
#ifndef TW_VOICE_DECODE_H
#define TW_VOICE_DECODE_H

#include "audio_format.h"
#include "tw_err.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define TW_PCM_RATE 16000

/* Gets the next samples (borrowed during the call); an error stops decoding. */
typedef tw_err (*tw_pcm_sink)(void *ctx, const int16_t *samples, size_t n);

/* A recording to read: read fills up to cap bytes (*n 0 at the end); seek
 * moves to an offset from the start (formats such as m4a keep their index
 * at the end). size is the recording's length in bytes. */
typedef struct tw_audio_input {
    tw_err (*read)(void *ctx, uint8_t *buf, size_t cap, size_t *n);
    tw_err (*seek)(void *ctx, uint64_t offset);
    uint64_t size;
    void *ctx;
} tw_audio_input;

/* Decodes the whole of in, which holds audio of format, into sink. abort
 * (may be NULL) is polled between packets. *duration_ms (may be NULL) gets
 * how long the decoded audio plays. */
tw_err tw_audio_decode(const tw_audio_input *in, tw_audio_format format, tw_pcm_sink sink,
                       void *sink_ctx, const atomic_bool *abort, int64_t *duration_ms, char *why,
                       size_t whylen);

/* How long the recording plays by its container's header, without decoding
 * it; -1 when the header does not say (webm written live often does not). */
tw_err tw_audio_probe_duration(const tw_audio_input *in, tw_audio_format format,
                               int64_t *duration_ms);

/* ---- WAV, pushed -------------------------------------------------------- */

typedef struct tw_wav_decoder tw_wav_decoder;

tw_err tw_wav_decoder_new(tw_pcm_sink sink, void *sink_ctx, tw_wav_decoder **out);

/* Decodes the next n bytes of the file (borrowed). Once it has failed it
 * fails every later call. */
tw_err tw_wav_decoder_feed(tw_wav_decoder *d, const void *bytes, size_t n, char *why,
                           size_t whylen);

/* After the last byte: flushes the resampler into the sink. */
tw_err tw_wav_decoder_finish(tw_wav_decoder *d, char *why, size_t whylen);

/* Bytes of the file fed so far. */
uint64_t tw_wav_decoder_offset(const tw_wav_decoder *d);

/* How long the samples decoded so far play, in ms. */
int64_t tw_wav_decoder_duration_ms(const tw_wav_decoder *d);

/* Accepts NULL. */
void tw_wav_decoder_free(tw_wav_decoder *d);

#endif

/*
 * What the voice tests share: the recordings tests/audio/make_speech makes and
 * Debian's pocketsphinx-testdata, files made with ffmpeg and espeak-ng in a
 * temporary directory, and tw_audio_input readers over memory. Helpers fail
 * the running test on an error.
 */
#ifndef TW_VOICE_FIXTURE_H
#define TW_VOICE_FIXTURE_H

#include "voice/decode.h"

#include <stddef.h>
#include <stdint.h>

/* <build>/test_audio, made by tests/audio/make_speech (set by CMake). */
#define VF_AUDIO_DIR     TW_TEST_AUDIO_DIR
#define VF_SPEECH_WAV    VF_AUDIO_DIR "/speech-44k.wav"
#define VF_SPEECH_MP3    VF_AUDIO_DIR "/speech.mp3"
#define VF_LIBRIVOX_DIR  "/usr/share/pocketsphinx/test/data/librivox"
#define VF_LIBRIVOX_0880 VF_LIBRIVOX_DIR "/sense_and_sensibility_01_austen_64kb-0880.wav"

/* A whole file in memory (malloc'd). */
typedef struct vf_file {
    uint8_t *bytes;
    size_t len;
} vf_file;

vf_file vf_read(const char *path);
void vf_free(vf_file *f);

/* Runs a shell command line; fails the test unless it exits 0. */
void vf_run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A fresh temporary directory (malloc'd path) and its removal. */
char *vf_tempdir(void);
void vf_rmdir(char *dir);

/* Reading a memory buffer as a recording; fail_at (when > 0) makes reads
 * past that offset fail with TW_ERR_DB. */
typedef struct vf_reader {
    const uint8_t *bytes;
    size_t len, pos, fail_at;
    size_t max_read; /* largest read handed out; 0: any */
} vf_reader;

tw_audio_input vf_input(vf_reader *r, const uint8_t *bytes, size_t len);

/* A tw_pcm_sink that counts samples and hashes them (FNV-1a). */
typedef struct vf_pcm {
    uint64_t samples;
    uint64_t hash;
    double energy; /* sum of squares, to tell speech from silence */
} vf_pcm;

void vf_pcm_init(vf_pcm *p);
tw_err vf_pcm_sink(void *ctx, const int16_t *samples, size_t n);

#endif

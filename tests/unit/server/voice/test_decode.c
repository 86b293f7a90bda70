/*
 * Unit tests for server/voice/decode.c: the four formats decode to 16 kHz
 * mono (the shared recordings, and m4a and webm made from them with ffmpeg
 * here), a WAV pushed in pieces of any size gives the same samples as the
 * same file pulled whole, and what cannot be decoded, a failing reader, an
 * abort and a failing sink each end decoding with the right error.
 */
#include "tw_check.h"

#include "voice/decode.h"
#include "voice_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* speech-44k.wav plays 24.73 s (1090593 samples at 44.1 kHz). */
#define SPEECH_WAV_MS 24730

static int64_t decode_file(const char *path, tw_audio_format format, vf_pcm *pcm, tw_err expect)
{
    vf_file f = vf_read(path);
    vf_reader r;
    tw_audio_input in = vf_input(&r, f.bytes, f.len);
    vf_pcm_init(pcm);
    int64_t ms = -1;
    char why[256] = "";
    tw_err err = tw_audio_decode(&in, format, vf_pcm_sink, pcm, NULL, &ms, why, sizeof why);
    ck_assert_msg(err == expect, "%s: %s (%s)", path, tw_err_name(err), why);
    vf_free(&f);
    return ms;
}

static void assert_near(int64_t got, int64_t want, int64_t tolerance)
{
    ck_assert_msg(got >= want - tolerance && got <= want + tolerance,
                  "%lld ms, expected %lld +- %lld", (long long)got, (long long)want,
                  (long long)tolerance);
}

START_TEST(shared_recordings_decode_to_16k_mono)
{
    vf_pcm pcm;
    int64_t ms = decode_file(VF_SPEECH_WAV, TW_AUDIO_WAV, &pcm, TW_OK);
    assert_near(ms, SPEECH_WAV_MS, 5);
    assert_near((int64_t)pcm.samples, SPEECH_WAV_MS * 16, 100);
    ck_assert(pcm.energy > 0);

    ms = decode_file(VF_SPEECH_MP3, TW_AUDIO_MP3, &pcm, TW_OK);
    assert_near(ms, 2990, 60); /* a stereo 2.99 s clip */
    ck_assert(pcm.energy > 0);
}
END_TEST

START_TEST(m4a_and_webm_made_by_ffmpeg_decode)
{
    char *dir = vf_tempdir();
    const struct {
        const char *name, *codec;
        tw_audio_format format;
    } made[] = {
        {"speech.m4a", "aac", TW_AUDIO_M4A},
        {"speech.webm", "libopus", TW_AUDIO_WEBM},
        {"speech.mp3", "libmp3lame", TW_AUDIO_MP3},
    };
    for (size_t i = 0; i < sizeof made / sizeof made[0]; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, made[i].name);
        vf_run("ffmpeg -nostdin -loglevel error -y -i '%s' -c:a %s '%s'", VF_SPEECH_WAV,
               made[i].codec, path);
        vf_pcm pcm;
        /* Encoders pad the start and end by a few tens of ms. */
        assert_near(decode_file(path, made[i].format, &pcm, TW_OK), SPEECH_WAV_MS, 120);

        vf_file f = vf_read(path);
        vf_reader r;
        tw_audio_input in = vf_input(&r, f.bytes, f.len);
        int64_t probed = 0;
        ck_assert_int_eq(tw_audio_probe_duration(&in, made[i].format, &probed), TW_OK);
        assert_near(probed, SPEECH_WAV_MS, 120);
        vf_free(&f);
    }
    vf_rmdir(dir);
}
END_TEST

START_TEST(pushed_wav_gives_the_samples_of_pulled_wav)
{
    vf_file f = vf_read(VF_SPEECH_WAV);
    vf_pcm pulled;
    decode_file(VF_SPEECH_WAV, TW_AUDIO_WAV, &pulled, TW_OK);

    size_t steps[] = {1, 3, 4096, 65536, 1 << 20, 0};
    for (size_t s = 0; s < sizeof steps / sizeof steps[0]; s++) {
        vf_pcm pushed;
        vf_pcm_init(&pushed);
        tw_wav_decoder *d;
        ck_assert_int_eq(tw_wav_decoder_new(vf_pcm_sink, &pushed, &d), TW_OK);
        char why[256] = "";
        size_t off = 0;
        srand(7);
        /* Byte-sized steps only over the header and the first samples. */
        size_t limit = steps[s] == 1 ? 5000 : f.len;
        while (off < f.len) {
            size_t n = steps[s] ? steps[s] : (size_t)(rand() % 100000) + 1;
            if (off >= limit && n < 4096)
                n = 4096;
            if (n > f.len - off)
                n = f.len - off;
            ck_assert_msg(tw_wav_decoder_feed(d, f.bytes + off, n, why, sizeof why) == TW_OK, "%s",
                          why);
            off += n;
        }
        ck_assert_int_eq(tw_wav_decoder_finish(d, why, sizeof why), TW_OK);
        ck_assert_uint_eq(tw_wav_decoder_offset(d), f.len);
        ck_assert_uint_eq(pushed.samples, pulled.samples);
        ck_assert_msg(pushed.hash == pulled.hash, "samples differ with steps of %zu", steps[s]);
        assert_near(tw_wav_decoder_duration_ms(d), SPEECH_WAV_MS, 5);
        tw_wav_decoder_free(d);
    }
    vf_free(&f);
}
END_TEST

/* A WAV header for n bytes of data in the given format. */
static size_t wav_header(uint8_t *out, uint16_t tag, uint16_t channels, uint32_t rate,
                         uint16_t bits, uint16_t block_align, uint32_t n)
{
    uint8_t h[44] = "RIFF\0\0\0\0WAVEfmt \x10\0\0\0";
    h[20] = (uint8_t)tag, h[21] = (uint8_t)(tag >> 8);
    h[22] = (uint8_t)channels;
    memcpy(h + 24, &rate, 4);
    uint32_t byte_rate = rate * block_align;
    memcpy(h + 28, &byte_rate, 4);
    h[32] = (uint8_t)block_align, h[33] = (uint8_t)(block_align >> 8);
    h[34] = (uint8_t)bits;
    memcpy(h + 36, "data", 4);
    memcpy(h + 40, &n, 4);
    memcpy(out, h, 44);
    return 44;
}

START_TEST(pushed_wav_codecs)
{
    uint8_t file[44 + 8000];
    char why[256];
    /* 8-bit mu-law at 8 kHz: one second. */
    size_t len = wav_header(file, 7, 1, 8000, 8, 1, 8000);
    for (size_t i = 0; i < 8000; i++)
        file[len + i] = (uint8_t)(i * 37);
    vf_pcm pcm;
    vf_pcm_init(&pcm);
    tw_wav_decoder *d;
    ck_assert_int_eq(tw_wav_decoder_new(vf_pcm_sink, &pcm, &d), TW_OK);
    ck_assert_int_eq(tw_wav_decoder_feed(d, file, sizeof file, why, sizeof why), TW_OK);
    ck_assert_int_eq(tw_wav_decoder_finish(d, why, sizeof why), TW_OK);
    assert_near((int64_t)pcm.samples, 16000, 40);
    tw_wav_decoder_free(d);

    /* IMA ADPCM is not decoded as it streams (the whole-file path does it). */
    len = wav_header(file, 0x11, 1, 8000, 4, 256, 512);
    ck_assert_int_eq(tw_wav_decoder_new(vf_pcm_sink, &pcm, &d), TW_OK);
    ck_assert_int_eq(tw_wav_decoder_feed(d, file, len + 512, why, sizeof why),
                     TW_ERR_UNIMPLEMENTED);
    ck_assert_ptr_nonnull(strstr(why, "0x0011"));
    ck_assert_int_eq(tw_wav_decoder_finish(d, why, sizeof why), TW_ERR_UNIMPLEMENTED);
    tw_wav_decoder_free(d);

    /* A block alignment that does not fit the samples. */
    len = wav_header(file, 1, 2, 16000, 16, 2, 512);
    ck_assert_int_eq(tw_wav_decoder_new(vf_pcm_sink, &pcm, &d), TW_OK);
    ck_assert_int_eq(tw_wav_decoder_feed(d, file, len + 512, why, sizeof why), TW_ERR_VALIDATION);
    tw_wav_decoder_free(d);

    /* Not a WAV at all. */
    ck_assert_int_eq(tw_wav_decoder_new(vf_pcm_sink, &pcm, &d), TW_OK);
    ck_assert_int_eq(tw_wav_decoder_feed(d, "\x89PNG\r\n\x1a\n0000", 12, why, sizeof why),
                     TW_ERR_VALIDATION);
    ck_assert_str_eq(why, "not a RIFF/WAVE file");
    tw_wav_decoder_free(d);
}
END_TEST

START_TEST(undecodable_audio_is_a_validation_error)
{
    /* An MP3 frame header followed by noise, and a PNG declared as m4a. */
    uint8_t junk[20000];
    srand(3);
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (uint8_t)rand();
    memcpy(junk, "\xff\xfb\xd0\x64", 4);
    const struct {
        const uint8_t *bytes;
        size_t len;
        tw_audio_format format;
    } cases[] = {
        {junk, sizeof junk, TW_AUDIO_MP3},
        {(const uint8_t *)"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16, TW_AUDIO_M4A},
        {junk + 4, sizeof junk - 4, TW_AUDIO_WEBM},
        {junk + 4, sizeof junk - 4, TW_AUDIO_WAV},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        vf_reader r;
        tw_audio_input in = vf_input(&r, cases[i].bytes, cases[i].len);
        vf_pcm pcm;
        vf_pcm_init(&pcm);
        char why[256] = "";
        ck_assert_int_eq(
            tw_audio_decode(&in, cases[i].format, vf_pcm_sink, &pcm, NULL, NULL, why, sizeof why),
            TW_ERR_VALIDATION);
        ck_assert_msg(why[0] != '\0', "case %zu has no reason", i);
    }
}
END_TEST

static tw_err failing_sink(void *ctx, const int16_t *samples, size_t n)
{
    return TW_ERR_NO_MEMORY;
}

START_TEST(reader_errors_abort_and_sink_errors_end_decoding)
{
    vf_file f = vf_read(VF_SPEECH_WAV);
    vf_reader r;
    tw_audio_input in = vf_input(&r, f.bytes, f.len);
    r.fail_at = f.len / 2;
    vf_pcm pcm;
    vf_pcm_init(&pcm);
    char why[256];
    ck_assert_int_eq(
        tw_audio_decode(&in, TW_AUDIO_WAV, vf_pcm_sink, &pcm, NULL, NULL, why, sizeof why),
        TW_ERR_DB);

    in = vf_input(&r, f.bytes, f.len);
    atomic_bool abort = true;
    ck_assert_int_eq(
        tw_audio_decode(&in, TW_AUDIO_WAV, vf_pcm_sink, &pcm, &abort, NULL, why, sizeof why),
        TW_ERR_CANCELLED);

    in = vf_input(&r, f.bytes, f.len);
    ck_assert_int_eq(
        tw_audio_decode(&in, TW_AUDIO_WAV, failing_sink, NULL, NULL, NULL, why, sizeof why),
        TW_ERR_NO_MEMORY);
    vf_free(&f);
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("decode");
    TCase *tc = tcase_create("decode");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, shared_recordings_decode_to_16k_mono);
    tcase_add_test(tc, m4a_and_webm_made_by_ffmpeg_decode);
    tcase_add_test(tc, pushed_wav_gives_the_samples_of_pulled_wav);
    tcase_add_test(tc, pushed_wav_codecs);
    tcase_add_test(tc, undecodable_audio_is_a_validation_error);
    tcase_add_test(tc, reader_errors_abort_and_sink_errors_end_decoding);
    suite_add_tcase(s, tc);
    return s;
}

/*
 * Unit tests for server/voice/stt_pocketsphinx.c on real speech: a LibriVox
 * recording from Debian's pocketsphinx-testdata gives exactly what
 * `pocketsphinx_continuous -infile` prints for it, a live session fed in
 * pieces gives what a whole-file transcription gives, the shared recordings
 * (44.1 kHz wav, stereo mp3) transcribe, and decoders, languages,
 * vocabulary and aborts behave as stt.h says.
 */
#include "tw_check.h"

#include "voice/stt.h"
#include "voice_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MODEL_DIR "/usr/share/pocketsphinx/model/en-us"

static tw_stt_engine *engine;
static tw_arena *arena;

static void open_engine(int batch, int live)
{
    tw_pocketsphinx_options opts = {MODEL_DIR, batch, live};
    char errbuf[256] = "";
    ck_assert_msg(tw_stt_pocketsphinx_new(&opts, &engine, errbuf, sizeof errbuf) == TW_OK, "%s",
                  errbuf);
    tw_stt_prepare(engine);
    arena = tw_arena_new(4096);
}

static void setup(void)
{
    open_engine(1, 1);
}

static void teardown(void)
{
    tw_stt_free(engine);
    tw_arena_free(arena);
    engine = NULL;
    arena = NULL;
}

static tw_stt_request request_for(const vf_file *f, vf_reader *r, tw_audio_format format)
{
    return (tw_stt_request){
        .format = format, .language = "en-US", .input = vf_input(r, f->bytes, f->len)};
}

static tw_err transcribe_file(const char *path, tw_audio_format format, tw_transcript *out)
{
    vf_file f = vf_read(path);
    vf_reader r;
    tw_stt_request req = request_for(&f, &r, format);
    char why[256] = "";
    tw_err err = tw_stt_transcribe(engine, &req, arena, out, why, sizeof why);
    ck_assert_msg(err == TW_OK, "%s: %s", tw_err_name(err), why);
    vf_free(&f);
    return err;
}

/* What pocketsphinx_continuous prints for a file, utterances joined. */
static char *baseline(const char *path)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "pocketsphinx_continuous -infile '%s' 2>/dev/null", path);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    static char text[4096];
    size_t len = 0;
    char line[1024];
    while (fgets(line, sizeof line, p) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        if (line[0] == '\0')
            continue;
        len += (size_t)snprintf(text + len, sizeof text - len, "%s%s", len ? " " : "", line);
    }
    ck_assert_int_eq(pclose(p), 0);
    return text;
}

static void assert_words_fit(const tw_transcript *t)
{
    ck_assert_uint_gt(t->nwords, 0);
    int64_t last_end = 0;
    for (size_t i = 0; i < t->nwords; i++) {
        const tw_stt_word *w = &t->words[i];
        ck_assert_msg(strstr(t->text, w->word) != NULL, "word %s not in the text", w->word);
        ck_assert_int_ge(w->start_ms, last_end - 10);
        ck_assert_int_gt(w->end_ms, w->start_ms);
        ck_assert_int_le(w->end_ms, t->duration_ms + 100);
        ck_assert(w->confidence >= 0.0f && w->confidence <= 1.0f);
        last_end = w->end_ms;
    }
    ck_assert(t->confidence > 0.0f && t->confidence <= 1.0f);
}

START_TEST(librivox_matches_pocketsphinx_continuous)
{
    tw_transcript t;
    transcribe_file(VF_LIBRIVOX_0880, TW_AUDIO_WAV, &t);
    ck_assert_str_eq(t.text, baseline(VF_LIBRIVOX_0880));
    ck_assert_str_eq(t.engine, "pocketsphinx");
    ck_assert_str_eq(t.language, "en-US");
    ck_assert_int_ge(t.duration_ms, 2980);
    ck_assert_int_le(t.duration_ms, 3000);
    assert_words_fit(&t);

    /* The decoder, now used, hears the next recording as a fresh one:
     * PocketSphinx adapts to what it hears unless it is reset. */
    tw_transcript again;
    transcribe_file(VF_SPEECH_WAV, TW_AUDIO_WAV, &again);
    transcribe_file(VF_LIBRIVOX_0880, TW_AUDIO_WAV, &again);
    ck_assert_str_eq(again.text, t.text);
    ck_assert_uint_eq(again.nwords, t.nwords);
    ck_assert_int_eq(again.words[0].start_ms, t.words[0].start_ms);
}
END_TEST

/* Fed as an upload arrives (pieces of odd sizes), or partly fed and the
 * rest read at the end: the same transcript as the whole file. */
START_TEST(live_session_matches_whole_file)
{
    tw_transcript whole;
    transcribe_file(VF_LIBRIVOX_0880, TW_AUDIO_WAV, &whole);
    vf_file f = vf_read(VF_LIBRIVOX_0880);
    size_t fed_parts[] = {f.len, f.len / 3, 0};
    for (size_t k = 0; k < sizeof fed_parts / sizeof fed_parts[0]; k++) {
        vf_reader r;
        tw_stt_request req = request_for(&f, &r, TW_AUDIO_WAV);
        tw_stt_live *live;
        ck_assert_int_eq(tw_stt_live_open(engine, &req, &live), TW_OK);
        char why[256] = "";
        size_t off = 0;
        while (off < fed_parts[k]) {
            size_t n = 7001 < fed_parts[k] - off ? 7001 : fed_parts[k] - off;
            ck_assert_int_eq(tw_stt_live_feed(live, f.bytes + off, n, why, sizeof why), TW_OK);
            off += n;
        }
        ck_assert_uint_eq(tw_stt_live_offset(live), off);
        vf_reader rest_reader;
        tw_audio_input rest = vf_input(&rest_reader, f.bytes, f.len);
        rest_reader.pos = off;
        tw_transcript t;
        ck_assert_msg(tw_stt_live_finish(live, &rest, NULL, arena, &t, why, sizeof why) == TW_OK,
                      "%s", why);
        ck_assert_str_eq(t.text, whole.text);
        ck_assert_uint_eq(t.nwords, whole.nwords);
        ck_assert_int_eq(t.duration_ms, whole.duration_ms);
        tw_stt_live_free(live);
    }
    vf_free(&f);
}
END_TEST

START_TEST(shared_recordings_transcribe)
{
    tw_transcript t;
    transcribe_file(VF_SPEECH_WAV, TW_AUDIO_WAV, &t);
    ck_assert_int_ge(t.duration_ms, 24700);
    ck_assert_int_le(t.duration_ms, 24760);
    /* 25 s of read speech: dozens of words, even from a rough model. */
    ck_assert_uint_gt(t.nwords, 20);
    assert_words_fit(&t);

    transcribe_file(VF_SPEECH_MP3, TW_AUDIO_MP3, &t);
    /* 2.99 s of speech and the encoder's padding. */
    ck_assert_int_ge(t.duration_ms, 2980);
    ck_assert_int_le(t.duration_ms, 3080);
}
END_TEST

START_TEST(live_decoders_are_never_waited_for)
{
    vf_file f = vf_read(VF_LIBRIVOX_0880);
    vf_reader r;
    tw_stt_request req = request_for(&f, &r, TW_AUDIO_WAV);
    tw_stt_live *first, *second;
    ck_assert_int_eq(tw_stt_live_open(engine, &req, &first), TW_OK);
    ck_assert_int_eq(tw_stt_live_open(engine, &req, &second), TW_ERR_BUSY);
    ck_assert_ptr_null(second);
    /* An abandoned session gives its decoder back. */
    char why[128];
    ck_assert_int_eq(tw_stt_live_feed(first, f.bytes, 10000, why, sizeof why), TW_OK);
    tw_stt_live_free(first);
    ck_assert_int_eq(tw_stt_live_open(engine, &req, &second), TW_OK);
    tw_stt_live_free(second);
    /* Only WAV streams. */
    req.format = TW_AUDIO_MP3;
    ck_assert_int_eq(tw_stt_live_open(engine, &req, &second), TW_ERR_UNIMPLEMENTED);
    /* A live decoder is never taught words (it could not be replaced on an
     * RPC thread): vocabulary with pronunciations means no live session. */
    req.format = TW_AUDIO_WAV;
    tw_stt_term taught = {"Zorblax", "Z AO R B L AE K S"}, known = {"young man", ""};
    req.vocabulary = &taught;
    req.nvocabulary = 1;
    ck_assert_int_eq(tw_stt_live_open(engine, &req, &second), TW_ERR_UNIMPLEMENTED);
    req.vocabulary = &known;
    ck_assert_int_eq(tw_stt_live_open(engine, &req, &second), TW_OK);
    tw_stt_live_free(second);
    req.vocabulary = NULL;
    req.nvocabulary = 0;
    vf_free(&f);

    /* With no live decoders, no live sessions. */
    teardown();
    open_engine(1, 0);
    ck_assert_int_eq(tw_stt_live_open(engine, &req, &second), TW_ERR_UNIMPLEMENTED);

    /* Before they are loaded, none is ready: live_open never loads one. */
    teardown();
    tw_pocketsphinx_options opts = {"/usr/share/pocketsphinx/model/en-us", 1, 1};
    char errbuf[256];
    ck_assert_int_eq(tw_stt_pocketsphinx_new(&opts, &engine, errbuf, sizeof errbuf), TW_OK);
    arena = tw_arena_new(4096);
    ck_assert_int_eq(tw_stt_live_open(engine, &req, &second), TW_ERR_BUSY);
    tw_stt_prepare(engine);
    ck_assert_int_eq(tw_stt_live_open(engine, &req, &second), TW_OK);
    tw_stt_live_free(second);
}
END_TEST

START_TEST(languages_and_vocabulary)
{
    ck_assert(tw_stt_supports_language(engine, "en-US"));
    ck_assert(tw_stt_supports_language(engine, "en-us"));
    ck_assert(tw_stt_supports_language(engine, "en"));
    ck_assert(!tw_stt_supports_language(engine, "de-DE"));
    ck_assert(!tw_stt_supports_language(engine, ""));

    char why[128];
    tw_stt_term ok = {"Zorblax", "Z AO1 R B L AE0 K S"};
    ck_assert(tw_stt_term_valid(engine, &ok, why, sizeof why));
    tw_stt_term plain = {"Kubernetes cluster", ""};
    ck_assert(tw_stt_term_valid(engine, &plain, why, sizeof why));
    tw_stt_term bad_phone = {"Zorblax", "Z AO QQ"};
    ck_assert(!tw_stt_term_valid(engine, &bad_phone, why, sizeof why));
    ck_assert_str_eq(why, "\"QQ\" is not an ARPAbet phone");
    tw_stt_term two_words = {"New York", "N UW Y AO R K"};
    ck_assert(!tw_stt_term_valid(engine, &two_words, why, sizeof why));
    tw_stt_term no_phones = {"x", "   "};
    ck_assert(!tw_stt_term_valid(engine, &no_phones, why, sizeof why));

    /* A decoder taught a word is not reused; transcription still works,
     * with and after the vocabulary. */
    vf_file f = vf_read(VF_LIBRIVOX_0880);
    vf_reader r;
    tw_stt_request req = request_for(&f, &r, TW_AUDIO_WAV);
    tw_stt_term terms[] = {ok, plain};
    req.vocabulary = terms;
    req.nvocabulary = 2;
    tw_transcript t;
    ck_assert_int_eq(tw_stt_transcribe(engine, &req, arena, &t, why, sizeof why), TW_OK);
    ck_assert_ptr_nonnull(strstr(t.text, "young man"));
    vf_free(&f);
    transcribe_file(VF_LIBRIVOX_0880, TW_AUDIO_WAV, &t);
    ck_assert_str_eq(t.text, baseline(VF_LIBRIVOX_0880));
}
END_TEST

START_TEST(abort_and_undecodable_audio)
{
    vf_file f = vf_read(VF_SPEECH_WAV);
    vf_reader r;
    tw_stt_request req = request_for(&f, &r, TW_AUDIO_WAV);
    atomic_bool abort = true;
    req.abort = &abort;
    tw_transcript t;
    char why[256];
    ck_assert_int_eq(tw_stt_transcribe(engine, &req, arena, &t, why, sizeof why), TW_ERR_CANCELLED);
    vf_free(&f);

    static const uint8_t png[] = "\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
    vf_file junk = {(uint8_t *)png, sizeof png - 1};
    req = request_for(&junk, &r, TW_AUDIO_M4A);
    ck_assert_int_eq(tw_stt_transcribe(engine, &req, arena, &t, why, sizeof why),
                     TW_ERR_VALIDATION);
}
END_TEST

START_TEST(missing_model_is_refused_at_start)
{
    tw_pocketsphinx_options opts = {"/nonexistent/model", 1, 1};
    tw_stt_engine *e = NULL;
    char errbuf[256] = "";
    ck_assert_int_eq(tw_stt_pocketsphinx_new(&opts, &e, errbuf, sizeof errbuf), TW_ERR_VALIDATION);
    ck_assert_ptr_null(e);
    ck_assert_ptr_nonnull(strstr(errbuf, "/nonexistent/model/en-us"));
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("stt_pocketsphinx");
    TCase *tc = tcase_create("engine");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, librivox_matches_pocketsphinx_continuous);
    tcase_add_test(tc, live_session_matches_whole_file);
    tcase_add_test(tc, shared_recordings_transcribe);
    tcase_add_test(tc, live_decoders_are_never_waited_for);
    tcase_add_test(tc, languages_and_vocabulary);
    tcase_add_test(tc, abort_and_undecodable_audio);
    suite_add_tcase(s, tc);
    TCase *start = tcase_create("start");
    tcase_add_test(start, missing_model_is_refused_at_start);
    suite_add_tcase(s, start);
    return s;
}

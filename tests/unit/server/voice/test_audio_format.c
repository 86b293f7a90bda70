/*
 * Unit tests for server/voice/audio_format.c: each accepted format is found
 * from the first bytes of real files (headers copied from files made by
 * ffmpeg and from tests/audio/make_speech), look-alikes are refused and named,
 * and a decision waits for enough bytes however they are split.
 */
#include "tw_check.h"

#include "voice/audio_format.h"

#include <string.h>

/* The first bytes of real files. */
static const uint8_t wav_head[] = {'R', 'I', 'F', 'F', 0x24, 0x08, 0, 0, 'W', 'A', 'V', 'E',
                                   'f', 'm', 't', ' ', 16,   0,    0, 0, 1,   0,   1,   0};
static const uint8_t mp3_frame_head[] = {0xff, 0xfb, 0xd0, 0x64, 0x00, 0x0f, 0xf0, 0x00,
                                         0x00, 0x69, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00};
static const uint8_t mp3_id3_head[] = {'I', 'D',  '3',  4,   0,   0,   0,
                                       0,   0x02, 0x01, 'T', 'S', 'S', 'E'};
static const uint8_t m4a_head[] = {0x00, 0x00, 0x00, 0x1c, 'f', 't', 'y', 'p', 'M', '4', 'A', ' ',
                                   0x00, 0x00, 0x02, 0x00, 'M', '4', 'A', ' ', 'i', 's', 'o', 'm'};
static const uint8_t webm_head[] = {0x1a, 0x45, 0xdf, 0xa3, 0x9f, 0x42, 0x86, 0x81, 0x01, 0x42,
                                    0xf7, 0x81, 0x01, 0x42, 0xf2, 0x81, 0x04, 0x42, 0xf3, 0x81,
                                    0x08, 0x42, 0x82, 0x84, 'w',  'e',  'b',  'm',  0x42, 0x87,
                                    0x81, 0x04, 0x42, 0x85, 0x81, 0x02, 0x18, 0x53, 0x80, 0x67};
static const uint8_t mkv_head[] = {0x1a, 0x45, 0xdf, 0xa3, 0xa3, 0x42, 0x86, 0x81, 0x01, 0x42,
                                   0xf7, 0x81, 0x01, 0x42, 0xf2, 0x81, 0x04, 0x42, 0xf3, 0x81,
                                   0x08, 0x42, 0x82, 0x88, 'm',  'a',  't',  'r',  'o',  's',
                                   'k',  'a',  0x42, 0x87, 0x81, 0x04, 0x42, 0x85, 0x81, 0x02};
static const uint8_t png_head[] = {0x89, 'P',  'N',  'G',  '\r', '\n', 0x1a, '\n',
                                   0x00, 0x00, 0x00, 0x0d, 'I',  'H',  'D',  'R'};
static const uint8_t heic_head[] = {0x00, 0x00, 0x00, 0x18, 'f', 't', 'y', 'p',
                                    'h',  'e',  'i',  'c',  0,   0,   0,   0};
static const uint8_t adts_head[] = {0xff, 0xf1, 0x50, 0x80, 0x02, 0x1f, 0xfc, 0x21,
                                    0x00, 0x49, 0x90, 0x02, 0x19, 0x00, 0x23, 0x80};
static const uint8_t ogg_head[] = {'O', 'g', 'g', 'S', 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
static const uint8_t avi_head[] = {'R', 'I', 'F', 'F', 0, 0, 0, 0, 'A', 'V', 'I', ' ', 0, 0};

static tw_audio_format sniff_whole(const uint8_t *p, size_t n, const char **what)
{
    tw_audio_format f = (tw_audio_format)-1;
    ck_assert(tw_audio_sniff(p, n, true, &f, what));
    return f;
}

START_TEST(each_format_is_found_from_its_first_bytes)
{
    const char *what;
    ck_assert_int_eq(sniff_whole(wav_head, sizeof wav_head, &what), TW_AUDIO_WAV);
    ck_assert_str_eq(what, "WAV audio");
    ck_assert_int_eq(sniff_whole(mp3_frame_head, sizeof mp3_frame_head, &what), TW_AUDIO_MP3);
    ck_assert_int_eq(sniff_whole(mp3_id3_head, sizeof mp3_id3_head, &what), TW_AUDIO_MP3);
    ck_assert_int_eq(sniff_whole(m4a_head, sizeof m4a_head, &what), TW_AUDIO_M4A);
    ck_assert_int_eq(sniff_whole(webm_head, sizeof webm_head, &what), TW_AUDIO_WEBM);
}
END_TEST

START_TEST(look_alikes_are_refused_and_named)
{
    const char *what;
    ck_assert_int_eq(sniff_whole(png_head, sizeof png_head, &what), TW_AUDIO_UNKNOWN);
    ck_assert_str_eq(what, "a PNG image");
    ck_assert_int_eq(sniff_whole(mkv_head, sizeof mkv_head, &what), TW_AUDIO_UNKNOWN);
    ck_assert_str_eq(what, "Matroska that is not WebM");
    ck_assert_int_eq(sniff_whole(heic_head, sizeof heic_head, &what), TW_AUDIO_UNKNOWN);
    ck_assert_str_eq(what, "a HEIF or AVIF image");
    ck_assert_int_eq(sniff_whole(adts_head, sizeof adts_head, &what), TW_AUDIO_UNKNOWN);
    ck_assert_str_eq(what, "AAC in ADTS (not a supported format)");
    ck_assert_int_eq(sniff_whole(ogg_head, sizeof ogg_head, &what), TW_AUDIO_UNKNOWN);
    ck_assert_int_eq(sniff_whole(avi_head, sizeof avi_head, &what), TW_AUDIO_UNKNOWN);
    ck_assert_str_eq(what, "a RIFF file that is not WAVE (AVI?)");
    ck_assert_int_eq(sniff_whole((const uint8_t *)"", 0, &what), TW_AUDIO_UNKNOWN);
    ck_assert_str_eq(what, "empty");
    const uint8_t text[] = "hello, this is not audio at all";
    ck_assert_int_eq(sniff_whole(text, sizeof text - 1, &what), TW_AUDIO_UNKNOWN);
    ck_assert_str_eq(what, "data of no known audio format");
    /* An MPEG sync with reserved values is not MP3. */
    const uint8_t bad_frame[] = {0xff, 0xfb, 0xfc, 0x64, 0, 0, 0, 0, 0, 0, 0, 0};
    ck_assert_int_eq(sniff_whole(bad_frame, sizeof bad_frame, &what), TW_AUDIO_UNKNOWN);
    /* A damaged ID3 header is not trusted. */
    const uint8_t bad_id3[] = {'I', 'D', '3', 4, 0, 0, 0x80, 0, 0, 0, 0, 0};
    ck_assert_int_eq(sniff_whole(bad_id3, sizeof bad_id3, &what), TW_AUDIO_UNKNOWN);
}
END_TEST

/* Fed one more byte at a time, as tiny chunks would arrive: the sniffer
 * asks for more until it can decide, and then decides as on the whole. */
static void assert_decides_as_bytes_arrive(const uint8_t *p, size_t n, tw_audio_format expected)
{
    tw_audio_format f;
    const char *what;
    size_t i = 0;
    while (i <= n && !tw_audio_sniff(p, i, false, &f, &what))
        i++;
    ck_assert_uint_le(i, n);
    ck_assert_int_eq(f, expected);
}

START_TEST(a_decision_waits_for_enough_bytes)
{
    assert_decides_as_bytes_arrive(wav_head, sizeof wav_head, TW_AUDIO_WAV);
    assert_decides_as_bytes_arrive(mp3_frame_head, sizeof mp3_frame_head, TW_AUDIO_MP3);
    assert_decides_as_bytes_arrive(mp3_id3_head, sizeof mp3_id3_head, TW_AUDIO_MP3);
    assert_decides_as_bytes_arrive(m4a_head, sizeof m4a_head, TW_AUDIO_M4A);
    assert_decides_as_bytes_arrive(webm_head, sizeof webm_head, TW_AUDIO_WEBM);
    assert_decides_as_bytes_arrive(mkv_head, sizeof mkv_head, TW_AUDIO_UNKNOWN);
    assert_decides_as_bytes_arrive(png_head, sizeof png_head, TW_AUDIO_UNKNOWN);

    tw_audio_format f;
    const char *what;
    /* Too few bytes to tell: wait while more may come... */
    ck_assert(!tw_audio_sniff(wav_head, 6, false, &f, &what));
    ck_assert(!tw_audio_sniff(webm_head, 20, false, &f, &what));
    /* ...and refuse when the file ends there. */
    ck_assert(tw_audio_sniff(wav_head, 6, true, &f, &what));
    ck_assert_int_eq(f, TW_AUDIO_UNKNOWN);
    ck_assert(tw_audio_sniff(webm_head, 20, true, &f, &what));
    ck_assert_int_eq(f, TW_AUDIO_UNKNOWN);
    /* Never more than TW_AUDIO_SNIFF_BYTES. */
    uint8_t zeros[TW_AUDIO_SNIFF_BYTES] = {0};
    ck_assert(tw_audio_sniff(zeros, sizeof zeros, false, &f, &what));
    ck_assert_int_eq(f, TW_AUDIO_UNKNOWN);
}
END_TEST

START_TEST(declared_types_and_extensions)
{
    ck_assert_int_eq(tw_audio_format_of_content_type("audio/wav"), TW_AUDIO_WAV);
    ck_assert_int_eq(tw_audio_format_of_content_type("audio/x-wav"), TW_AUDIO_WAV);
    ck_assert_int_eq(tw_audio_format_of_content_type("Audio/MPEG"), TW_AUDIO_MP3);
    ck_assert_int_eq(tw_audio_format_of_content_type("audio/mp4"), TW_AUDIO_M4A);
    ck_assert_int_eq(tw_audio_format_of_content_type("audio/x-m4a"), TW_AUDIO_M4A);
    ck_assert_int_eq(tw_audio_format_of_content_type(" audio/webm ; codecs=opus"), TW_AUDIO_WEBM);
    ck_assert_int_eq(tw_audio_format_of_content_type("image/png"), TW_AUDIO_UNKNOWN);
    ck_assert_int_eq(tw_audio_format_of_content_type("audio/ogg"), TW_AUDIO_UNKNOWN);
    ck_assert_int_eq(tw_audio_format_of_content_type(""), TW_AUDIO_UNKNOWN);
    ck_assert_int_eq(tw_audio_format_of_content_type("audio/wavx"), TW_AUDIO_UNKNOWN);

    ck_assert_int_eq(tw_audio_format_of_file_name("note.MP3"), TW_AUDIO_MP3);
    ck_assert_int_eq(tw_audio_format_of_file_name("a.b.m4a"), TW_AUDIO_M4A);
    ck_assert_int_eq(tw_audio_format_of_file_name("rec.webm"), TW_AUDIO_WEBM);
    ck_assert_int_eq(tw_audio_format_of_file_name("rec.wav"), TW_AUDIO_WAV);
    ck_assert_int_eq(tw_audio_format_of_file_name("picture.png"), TW_AUDIO_UNKNOWN);
    ck_assert_int_eq(tw_audio_format_of_file_name("noextension"), TW_AUDIO_UNKNOWN);

    ck_assert_str_eq(tw_audio_format_content_type(TW_AUDIO_M4A), "audio/mp4");
    ck_assert_str_eq(tw_audio_format_name(TW_AUDIO_WEBM), "webm");
    ck_assert_str_eq(tw_audio_format_name((tw_audio_format)99), "unknown");
}
END_TEST

/* The two refusals the issue names: what the upload handler compares. */
START_TEST(png_renamed_mp3_and_wav_declared_webm_do_not_match)
{
    const char *what;
    tw_audio_format declared = tw_audio_format_of_file_name("photo.mp3");
    ck_assert_int_eq(declared, TW_AUDIO_MP3);
    ck_assert_int_ne(sniff_whole(png_head, sizeof png_head, &what), declared);
    declared = tw_audio_format_of_content_type("audio/webm");
    ck_assert_int_ne(sniff_whole(wav_head, sizeof wav_head, &what), declared);
    ck_assert_str_eq(what, "WAV audio");
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("audio_format");
    TCase *tc = tcase_create("sniff");
    tcase_add_test(tc, each_format_is_found_from_its_first_bytes);
    tcase_add_test(tc, look_alikes_are_refused_and_named);
    tcase_add_test(tc, a_decision_waits_for_enough_bytes);
    tcase_add_test(tc, declared_types_and_extensions);
    tcase_add_test(tc, png_renamed_mp3_and_wav_declared_webm_do_not_match);
    suite_add_tcase(s, tc);
    return s;
}

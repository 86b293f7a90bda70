/*
 * The four audio formats voice notes accept (wav, mp3, m4a, webm): what a
 * file really is, found from its first bytes, and what a content type or a
 * file name declares. An upload is accepted only when the two agree, so a
 * PNG renamed .mp3 or a WAV declared as webm is refused before anything is
 * stored.
 */
#ifndef TW_VOICE_AUDIO_FORMAT_H
#define TW_VOICE_AUDIO_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Numbered as tw.v1.AudioFormat. */
typedef enum tw_audio_format {
    TW_AUDIO_UNKNOWN = 0,
    TW_AUDIO_WAV = 1,
    TW_AUDIO_MP3 = 2,
    TW_AUDIO_M4A = 3,
    TW_AUDIO_WEBM = 4,
} tw_audio_format;

/* The most bytes tw_audio_sniff ever needs to decide. */
#define TW_AUDIO_SNIFF_BYTES 64

/*
 * Looks at the first n bytes of a file (borrowed). Returns false when it
 * cannot tell yet and more bytes may follow (complete is false); otherwise
 * true, with *format the audio format found (TW_AUDIO_UNKNOWN when the bytes
 * are none of the four) and *what a static phrase naming what the bytes
 * are, for error messages ("WAV audio", "a PNG image", "Ogg (not a
 * supported format)"). complete says the file has no more bytes.
 */
bool tw_audio_sniff(const uint8_t *bytes, size_t n, bool complete, tw_audio_format *format,
                    const char **what);

/* The format a content type declares: "audio/webm; codecs=opus" is webm,
 * case and spaces aside. TW_AUDIO_UNKNOWN for any other type. */
tw_audio_format tw_audio_format_of_content_type(const char *content_type);

/* The format a file name's extension declares (".m4a"), or TW_AUDIO_UNKNOWN. */
tw_audio_format tw_audio_format_of_file_name(const char *file_name);

/* "wav", "mp3", "m4a", "webm"; "unknown" otherwise. */
const char *tw_audio_format_name(tw_audio_format format);

/* The canonical content type: "audio/wav", "audio/mpeg", "audio/mp4", "audio/webm". */
const char *tw_audio_format_content_type(tw_audio_format format);

#endif

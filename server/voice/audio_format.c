/*
 * Format sniffing for audio_format.h. Each accepted format has a signature
 * in its first bytes:
 *   WAV   "RIFF" <size> "WAVE"
 *   MP3   an ID3v2 tag ("ID3" + version + flags + syncsafe size), or an MPEG
 *         audio frame header (11-bit sync, valid version, layer, bitrate
 *         and rate; AAC's ADTS sync has layer 0 and is not MP3)
 *   M4A   an ISO base media "ftyp" box first; HEIF/AVIF images use the same
 *         box with image brands and are refused
 *   WebM  an EBML header whose DocType is "webm" (plain Matroska is not)
 * A few common non-audio signatures are named too, so that a refusal says
 * what was sent instead.
 */
#include "audio_format.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

static const char *const format_names[] = {
    [TW_AUDIO_UNKNOWN] = "unknown", [TW_AUDIO_WAV] = "wav",   [TW_AUDIO_MP3] = "mp3",
    [TW_AUDIO_M4A] = "m4a",         [TW_AUDIO_WEBM] = "webm",
};

static const char *const canonical_types[] = {
    [TW_AUDIO_UNKNOWN] = "application/octet-stream",
    [TW_AUDIO_WAV] = "audio/wav",
    [TW_AUDIO_MP3] = "audio/mpeg",
    [TW_AUDIO_M4A] = "audio/mp4",
    [TW_AUDIO_WEBM] = "audio/webm",
};

/* Content types apps send for each format. */
static const struct {
    const char *type;
    tw_audio_format format;
} declared_types[] = {
    {"audio/wav", TW_AUDIO_WAV},      {"audio/x-wav", TW_AUDIO_WAV}, {"audio/wave", TW_AUDIO_WAV},
    {"audio/vnd.wave", TW_AUDIO_WAV}, {"audio/mpeg", TW_AUDIO_MP3},  {"audio/mp3", TW_AUDIO_MP3},
    {"audio/x-mp3", TW_AUDIO_MP3},    {"audio/mpeg3", TW_AUDIO_MP3}, {"audio/mp4", TW_AUDIO_M4A},
    {"audio/m4a", TW_AUDIO_M4A},      {"audio/x-m4a", TW_AUDIO_M4A}, {"audio/webm", TW_AUDIO_WEBM},
    {"video/webm", TW_AUDIO_WEBM},
};

static const struct {
    const char *extension;
    tw_audio_format format;
} extensions[] = {
    {".wav", TW_AUDIO_WAV}, {".wave", TW_AUDIO_WAV}, {".mp3", TW_AUDIO_MP3},
    {".m4a", TW_AUDIO_M4A}, {".mp4", TW_AUDIO_M4A},  {".webm", TW_AUDIO_WEBM},
};

/* Signatures of things people upload by mistake, to name them. */
static const struct {
    const char *magic;
    size_t len;
    const char *what;
} others[] = {
    {"\x89PNG\r\n\x1a\n", 8, "a PNG image"},
    {"\xff\xd8\xff", 3, "a JPEG image"},
    {"GIF8", 4, "a GIF image"},
    {"%PDF", 4, "a PDF document"},
    {"PK\x03\x04", 4, "a ZIP archive"},
    {"OggS", 4, "Ogg (not a supported format)"},
    {"fLaC", 4, "FLAC (not a supported format)"},
    {"#!AMR", 5, "AMR (not a supported format)"},
    {"\x7f"
     "ELF",
     4, "a program"},
};

const char *tw_audio_format_name(tw_audio_format format)
{
    return (unsigned)format <= TW_AUDIO_WEBM ? format_names[format] : format_names[0];
}

const char *tw_audio_format_content_type(tw_audio_format format)
{
    return (unsigned)format <= TW_AUDIO_WEBM ? canonical_types[format] : canonical_types[0];
}

tw_audio_format tw_audio_format_of_content_type(const char *content_type)
{
    while (isspace((unsigned char)*content_type))
        content_type++;
    size_t len = strcspn(content_type, ";");
    while (len > 0 && isspace((unsigned char)content_type[len - 1]))
        len--;
    for (size_t i = 0; i < sizeof declared_types / sizeof declared_types[0]; i++)
        if (strlen(declared_types[i].type) == len &&
            strncasecmp(content_type, declared_types[i].type, len) == 0)
            return declared_types[i].format;
    return TW_AUDIO_UNKNOWN;
}

tw_audio_format tw_audio_format_of_file_name(const char *file_name)
{
    const char *dot = strrchr(file_name, '.');
    if (dot == NULL)
        return TW_AUDIO_UNKNOWN;
    for (size_t i = 0; i < sizeof extensions / sizeof extensions[0]; i++)
        if (strcasecmp(dot, extensions[i].extension) == 0)
            return extensions[i].format;
    return TW_AUDIO_UNKNOWN;
}

/* An MPEG audio frame header (4 bytes): sync, then no reserved values. */
static bool mpeg_frame_header(const uint8_t *p)
{
    if (p[0] != 0xff || (p[1] & 0xe0) != 0xe0)
        return false;
    unsigned version = (p[1] >> 3) & 3, layer = (p[1] >> 1) & 3;
    unsigned bitrate = p[2] >> 4, rate = (p[2] >> 2) & 3;
    return version != 1 && layer != 0 && bitrate != 15 && rate != 3;
}

/* An ID3v2 tag header (10 bytes): "ID3", a version, flags, a syncsafe size. */
static bool id3_header(const uint8_t *p)
{
    return memcmp(p, "ID3", 3) == 0 && p[3] != 0xff && p[4] != 0xff && (p[6] & 0x80) == 0 &&
           (p[7] & 0x80) == 0 && (p[8] & 0x80) == 0 && (p[9] & 0x80) == 0;
}

/* ftyp major brands of HEIF and AVIF images, which share MP4's box layout. */
static bool image_brand(const uint8_t *brand)
{
    static const char *const brands[] = {"heic", "heix", "hevc", "hevx", "heim", "heis",
                                         "mif1", "msf1", "avif", "avis", "avci", "jpeg"};
    for (size_t i = 0; i < sizeof brands / sizeof brands[0]; i++)
        if (memcmp(brand, brands[i], 4) == 0)
            return true;
    return false;
}

/* An EBML variable-length integer at p (at most end): its length in bytes
 * (1..8), 0 when it is invalid or runs past end. With keep_marker the
 * marker bit stays in the value (element ids keep it). */
static size_t ebml_vint(const uint8_t *p, const uint8_t *end, bool keep_marker, uint64_t *value)
{
    if (p >= end || p[0] == 0)
        return 0;
    size_t len = 1;
    while (!(p[0] & (0x80 >> (len - 1))))
        len++;
    if (p + len > end)
        return 0;
    uint64_t v = keep_marker ? p[0] : (p[0] & (0xffu >> len));
    for (size_t i = 1; i < len; i++)
        v = (v << 8) | p[i];
    *value = v;
    return len;
}

enum ebml_result { EBML_NEED_MORE, EBML_WEBM, EBML_OTHER, EBML_BAD };

/* Reads the EBML header that starts at p (its 4-byte id already matched)
 * and finds the DocType. */
static enum ebml_result ebml_doctype(const uint8_t *p, size_t n)
{
    const uint8_t *end = p + n, *q = p + 4;
    uint64_t header_size, id, size;
    size_t len = ebml_vint(q, end, false, &header_size);
    if (len == 0)
        return EBML_NEED_MORE;
    q += len;
    /* When the header runs past the bytes we have, running out is not an error. */
    bool truncated = header_size > (uint64_t)(end - q);
    const uint8_t *header_end = truncated ? end : q + header_size;
    enum ebml_result short_read = truncated ? EBML_NEED_MORE : EBML_BAD;
    while (q < header_end) {
        size_t id_len = ebml_vint(q, header_end, true, &id);
        size_t size_len = id_len ? ebml_vint(q + id_len, header_end, false, &size) : 0;
        if (size_len == 0)
            return short_read;
        q += id_len + size_len;
        if (id == 0x4282) { /* DocType */
            if (size > (uint64_t)(header_end - q))
                return short_read;
            return size == 4 && memcmp(q, "webm", 4) == 0 ? EBML_WEBM : EBML_OTHER;
        }
        if (size > (uint64_t)(header_end - q))
            return short_read;
        q += size;
    }
    return short_read;
}

/* Decides, or returns false to ask for more bytes. */
static bool decide(tw_audio_format *format, const char **what, tw_audio_format f, const char *w)
{
    *format = f;
    *what = w;
    return true;
}

bool tw_audio_sniff(const uint8_t *p, size_t n, bool complete, tw_audio_format *format,
                    const char **what)
{
    /* Past the window nothing new can be learned: decide with what is there. */
    if (n >= TW_AUDIO_SNIFF_BYTES)
        complete = true;
    bool more = !complete;

    if (n >= 4 && memcmp(p, "RIFF", 4) == 0) {
        if (n < 12)
            return more ? false : decide(format, what, TW_AUDIO_UNKNOWN, "a truncated RIFF file");
        if (memcmp(p + 8, "WAVE", 4) == 0)
            return decide(format, what, TW_AUDIO_WAV, "WAV audio");
        return decide(format, what, TW_AUDIO_UNKNOWN, "a RIFF file that is not WAVE (AVI?)");
    }
    if (n >= 3 && memcmp(p, "ID3", 3) == 0) {
        if (n < 10)
            return more ? false : decide(format, what, TW_AUDIO_UNKNOWN, "a truncated ID3 tag");
        if (id3_header(p))
            return decide(format, what, TW_AUDIO_MP3, "MP3 audio");
        return decide(format, what, TW_AUDIO_UNKNOWN, "a damaged ID3 tag");
    }
    if (n >= 2 && p[0] == 0xff && (p[1] & 0xe0) == 0xe0) {
        if (n < 4)
            return more ? false : decide(format, what, TW_AUDIO_UNKNOWN, "a truncated MPEG frame");
        if (mpeg_frame_header(p))
            return decide(format, what, TW_AUDIO_MP3, "MP3 audio");
        if (((p[1] >> 1) & 3) == 0)
            return decide(format, what, TW_AUDIO_UNKNOWN, "AAC in ADTS (not a supported format)");
    }
    if (n >= 8 && memcmp(p + 4, "ftyp", 4) == 0) {
        if (n < 12)
            return more ? false : decide(format, what, TW_AUDIO_UNKNOWN, "a truncated MP4 file");
        if (image_brand(p + 8))
            return decide(format, what, TW_AUDIO_UNKNOWN, "a HEIF or AVIF image");
        return decide(format, what, TW_AUDIO_M4A, "MPEG-4 (m4a) audio");
    }
    if (n >= 4 && memcmp(p, "\x1a\x45\xdf\xa3", 4) == 0) {
        switch (ebml_doctype(p, n)) {
        case EBML_WEBM:
            return decide(format, what, TW_AUDIO_WEBM, "WebM audio");
        case EBML_OTHER:
            return decide(format, what, TW_AUDIO_UNKNOWN, "Matroska that is not WebM");
        case EBML_NEED_MORE:
            if (more)
                return false;
            /* fall through */
        case EBML_BAD:
            break;
        }
        return decide(format, what, TW_AUDIO_UNKNOWN, "a damaged EBML (WebM) header");
    }
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++)
        if (n >= others[i].len && memcmp(p, others[i].magic, others[i].len) == 0)
            return decide(format, what, TW_AUDIO_UNKNOWN, others[i].what);
    /* The longest signature above needs 12 bytes. */
    if (n < 12 && more)
        return false;
    return decide(format, what, TW_AUDIO_UNKNOWN,
                  n == 0 ? "empty" : "data of no known audio format");
}

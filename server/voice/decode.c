/* Decoding to 16 kHz mono PCM with FFmpeg 5.1's libraries, for decode.h. */
#include "decode.h"

#include "wav.h"

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libavutil/opt.h>
#include <libswresample/swresample.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* libavformat's read buffer; WAV packets pushed to libavcodec at most this big. */
#define IO_BUFFER  (64 * 1024)
#define PACKET_MAX (64 * 1024)
/* Undecodable packets tolerated (a damaged frame) before giving up, when
 * nothing has decoded at all. */
#define BAD_PACKETS 64

static tw_err failf(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static tw_err failf(char *why, size_t whylen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
    return TW_ERR_VALIDATION;
}

static void quiet_ffmpeg_once(void);

/* FFmpeg logs to stderr, where twd's JSON lines go: silence it; what went
 * wrong reaches callers through why. */
static void quiet_log(void *avcl, int level, const char *fmt, va_list ap)
{
    (void)avcl, (void)level, (void)fmt, (void)ap;
}

static void quiet_ffmpeg(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, quiet_ffmpeg_once);
}

static void quiet_ffmpeg_once(void)
{
    av_log_set_callback(quiet_log);
}

static const char *av_text(int rc, char *buf, size_t len)
{
    av_strerror(rc, buf, len);
    return buf;
}

/* ---- resampling into the sink -------------------------------------------- */

struct resampler {
    SwrContext *swr;
    AVChannelLayout in_layout;
    int in_format, in_rate;
    int16_t *out;
    int out_cap;
    tw_pcm_sink sink;
    void *sink_ctx;
    uint64_t samples; /* handed to the sink */
};

static tw_err resample_out(struct resampler *r, const uint8_t **in, int nin, char *why,
                           size_t whylen)
{
    int need = swr_get_out_samples(r->swr, nin);
    if (need > r->out_cap) {
        int16_t *out = realloc(r->out, (size_t)need * sizeof *out);
        if (out == NULL)
            return TW_ERR_NO_MEMORY;
        r->out = out;
        r->out_cap = need;
    }
    if (need <= 0)
        return TW_OK;
    uint8_t *planes[1] = {(uint8_t *)r->out};
    int n = swr_convert(r->swr, planes, r->out_cap, in, nin);
    if (n < 0) {
        char text[128];
        return failf(why, whylen, "resampling failed: %s", av_text(n, text, sizeof text));
    }
    r->samples += (uint64_t)n;
    return n > 0 ? r->sink(r->sink_ctx, r->out, (size_t)n) : TW_OK;
}

/* Drains what the resampler still holds. */
static tw_err resample_flush(struct resampler *r, char *why, size_t whylen)
{
    if (r->swr == NULL)
        return TW_OK;
    uint64_t before;
    tw_err err;
    do {
        before = r->samples;
        err = resample_out(r, NULL, 0, why, whylen);
    } while (err == TW_OK && r->samples != before);
    return err;
}

/* A resampler for frames like this one, made again when they change. */
static tw_err resampler_for(struct resampler *r, const AVFrame *frame, char *why, size_t whylen)
{
    AVChannelLayout layout;
    if (frame->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC)
        av_channel_layout_default(&layout, frame->ch_layout.nb_channels);
    else if (av_channel_layout_copy(&layout, &frame->ch_layout) < 0)
        return TW_ERR_NO_MEMORY;
    if (r->swr != NULL && r->in_format == frame->format && r->in_rate == frame->sample_rate &&
        av_channel_layout_compare(&r->in_layout, &layout) == 0) {
        av_channel_layout_uninit(&layout);
        return TW_OK;
    }
    tw_err err = resample_flush(r, why, whylen);
    swr_free(&r->swr);
    av_channel_layout_uninit(&r->in_layout);
    r->in_layout = layout;
    r->in_format = frame->format;
    r->in_rate = frame->sample_rate;
    if (err)
        return err;
    AVChannelLayout mono = AV_CHANNEL_LAYOUT_MONO;
    int rc = swr_alloc_set_opts2(&r->swr, &mono, AV_SAMPLE_FMT_S16, TW_PCM_RATE, &layout,
                                 frame->format, frame->sample_rate, 0, NULL);
    if (rc >= 0)
        rc = swr_init(r->swr);
    if (rc < 0) {
        char text[128];
        return failf(why, whylen, "cannot resample %d Hz, %d channels: %s", frame->sample_rate,
                     layout.nb_channels, av_text(rc, text, sizeof text));
    }
    return TW_OK;
}

static void resampler_free(struct resampler *r)
{
    swr_free(&r->swr);
    av_channel_layout_uninit(&r->in_layout);
    free(r->out);
}

/* ---- decoding packets ----------------------------------------------------- */

struct decoding {
    AVCodecContext *cc;
    AVFrame *frame;
    AVPacket *packet;
    struct resampler rs;
    uint64_t frames;
    int bad_packets;
};

/* Sends one packet (NULL: flush) and resamples every frame that comes out. */
static tw_err decode_packet(struct decoding *d, const AVPacket *packet, char *why, size_t whylen)
{
    char text[128];
    int rc = avcodec_send_packet(d->cc, packet);
    if (rc < 0 && rc != AVERROR_EOF) {
        if (rc == AVERROR(ENOMEM))
            return TW_ERR_NO_MEMORY;
        /* A damaged packet: skip it, unless nothing at all decodes. */
        if (++d->bad_packets > BAD_PACKETS && d->frames == 0)
            return failf(why, whylen, "audio cannot be decoded: %s",
                         av_text(rc, text, sizeof text));
        return TW_OK;
    }
    for (;;) {
        rc = avcodec_receive_frame(d->cc, d->frame);
        if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF)
            return TW_OK;
        if (rc < 0) {
            if (++d->bad_packets > BAD_PACKETS && d->frames == 0)
                return failf(why, whylen, "audio cannot be decoded: %s",
                             av_text(rc, text, sizeof text));
            return TW_OK;
        }
        d->frames++;
        tw_err err = resampler_for(&d->rs, d->frame, why, whylen);
        if (err == TW_OK)
            err = resample_out(&d->rs, (const uint8_t **)d->frame->extended_data,
                               d->frame->nb_samples, why, whylen);
        av_frame_unref(d->frame);
        if (err)
            return err;
    }
}

/* Flushes the codec and the resampler at the end of the audio. */
static tw_err decoding_finish(struct decoding *d, char *why, size_t whylen)
{
    tw_err err = d->cc ? decode_packet(d, NULL, why, whylen) : TW_OK;
    if (err == TW_OK)
        err = resample_flush(&d->rs, why, whylen);
    if (err == TW_OK && d->frames == 0)
        err = failf(why, whylen, "no audio could be decoded");
    return err;
}

static tw_err decoding_open(struct decoding *d, const AVCodecParameters *par, char *why,
                            size_t whylen)
{
    const AVCodec *codec = avcodec_find_decoder(par->codec_id);
    if (codec == NULL)
        return failf(why, whylen, "no decoder for %s audio", avcodec_get_name(par->codec_id));
    d->cc = avcodec_alloc_context3(codec);
    d->frame = av_frame_alloc();
    d->packet = av_packet_alloc();
    if (d->cc == NULL || d->frame == NULL || d->packet == NULL)
        return TW_ERR_NO_MEMORY;
    int rc = avcodec_parameters_to_context(d->cc, par);
    if (rc >= 0)
        rc = avcodec_open2(d->cc, codec, NULL);
    if (rc < 0) {
        char text[128];
        return failf(why, whylen, "cannot open the %s decoder: %s", codec->name,
                     av_text(rc, text, sizeof text));
    }
    return TW_OK;
}

static void decoding_free(struct decoding *d)
{
    avcodec_free_context(&d->cc);
    av_frame_free(&d->frame);
    av_packet_free(&d->packet);
    resampler_free(&d->rs);
}

/* ---- pulling a whole recording through libavformat ------------------------ */

struct io {
    const tw_audio_input *in;
    uint64_t pos;
    tw_err err; /* the reader's own error, returned as it is */
};

static int io_read(void *opaque, uint8_t *buf, int size)
{
    struct io *io = opaque;
    size_t n = 0;
    tw_err err = io->in->read(io->in->ctx, buf, (size_t)size, &n);
    if (err) {
        io->err = err;
        return AVERROR(EIO);
    }
    if (n == 0)
        return AVERROR_EOF;
    io->pos += n;
    return (int)n;
}

static int64_t io_seek(void *opaque, int64_t offset, int whence)
{
    struct io *io = opaque;
    if (whence & AVSEEK_SIZE)
        return (int64_t)io->in->size;
    int64_t target;
    switch (whence & ~AVSEEK_FORCE) {
    case SEEK_SET:
        target = offset;
        break;
    case SEEK_CUR:
        target = (int64_t)io->pos + offset;
        break;
    case SEEK_END:
        target = (int64_t)io->in->size + offset;
        break;
    default:
        return AVERROR(EINVAL);
    }
    if (target < 0 || (uint64_t)target > io->in->size)
        return AVERROR(EINVAL);
    tw_err err = io->in->seek(io->in->ctx, (uint64_t)target);
    if (err) {
        io->err = err;
        return AVERROR(EIO);
    }
    io->pos = (uint64_t)target;
    return target;
}

/* libavformat's demuxer for each format: nothing else may read the bytes. */
static const char *const demuxers[] = {
    [TW_AUDIO_WAV] = "wav",
    [TW_AUDIO_MP3] = "mp3",
    [TW_AUDIO_M4A] = "mov",
    [TW_AUDIO_WEBM] = "matroska",
};

struct demuxing {
    struct io io;
    AVFormatContext *fc;
    AVIOContext *pb;
    int stream;
};

static tw_err demux_open(struct demuxing *m, const tw_audio_input *in, tw_audio_format format,
                         char *why, size_t whylen)
{
    char text[128];
    quiet_ffmpeg();
    m->io = (struct io){.in = in};
    m->stream = -1;
    if (format < TW_AUDIO_WAV || format > TW_AUDIO_WEBM)
        return failf(why, whylen, "not an audio format");
    const AVInputFormat *ifmt = av_find_input_format(demuxers[format]);
    if (ifmt == NULL)
        return failf(why, whylen, "FFmpeg has no %s demuxer", demuxers[format]);
    uint8_t *buffer = av_malloc(IO_BUFFER);
    if (buffer == NULL)
        return TW_ERR_NO_MEMORY;
    m->pb =
        avio_alloc_context(buffer, IO_BUFFER, 0, &m->io, io_read, NULL, in->seek ? io_seek : NULL);
    m->fc = avformat_alloc_context();
    if (m->pb == NULL || m->fc == NULL) {
        if (m->pb == NULL)
            av_free(buffer);
        return TW_ERR_NO_MEMORY;
    }
    m->fc->pb = m->pb;
    m->fc->flags |= AVFMT_FLAG_CUSTOM_IO;
    AVDictionary *opts = NULL;
    /* No protocol at all: a crafted file must not make a demuxer open
     * anything (mov's external data references, for one). */
    av_dict_set(&opts, "protocol_whitelist", "none", 0);
    int rc = avformat_open_input(&m->fc, NULL, ifmt, &opts);
    av_dict_free(&opts);
    if (rc < 0) {
        m->fc = NULL; /* freed by avformat_open_input */
        return m->io.err ? m->io.err
                         : failf(why, whylen, "not a readable %s file: %s",
                                 tw_audio_format_name(format), av_text(rc, text, sizeof text));
    }
    rc = avformat_find_stream_info(m->fc, NULL);
    if (rc < 0)
        return m->io.err ? m->io.err
                         : failf(why, whylen, "cannot read the %s file's streams: %s",
                                 tw_audio_format_name(format), av_text(rc, text, sizeof text));
    m->stream = av_find_best_stream(m->fc, AVMEDIA_TYPE_AUDIO, -1, -1, NULL, 0);
    if (m->stream < 0)
        return failf(why, whylen, "the %s file has no audio stream", tw_audio_format_name(format));
    return TW_OK;
}

static void demux_close(struct demuxing *m)
{
    avformat_close_input(&m->fc);
    if (m->pb != NULL) {
        av_freep(&m->pb->buffer);
        avio_context_free(&m->pb);
    }
}

tw_err tw_audio_probe_duration(const tw_audio_input *in, tw_audio_format format,
                               int64_t *duration_ms)
{
    char why[256];
    struct demuxing m;
    *duration_ms = -1;
    tw_err err = demux_open(&m, in, format, why, sizeof why);
    if (err == TW_OK && m.fc->duration != AV_NOPTS_VALUE && m.fc->duration > 0)
        *duration_ms = m.fc->duration / (AV_TIME_BASE / 1000);
    demux_close(&m);
    return err;
}

tw_err tw_audio_decode(const tw_audio_input *in, tw_audio_format format, tw_pcm_sink sink,
                       void *sink_ctx, const atomic_bool *abort, int64_t *duration_ms, char *why,
                       size_t whylen)
{
    struct demuxing m;
    struct decoding d = {.rs = {.sink = sink, .sink_ctx = sink_ctx}};
    tw_err err = demux_open(&m, in, format, why, whylen);
    if (err == TW_OK)
        err = decoding_open(&d, m.fc->streams[m.stream]->codecpar, why, whylen);
    int rc = 0;
    while (err == TW_OK && (rc = av_read_frame(m.fc, d.packet)) >= 0) {
        if (abort != NULL && atomic_load(abort))
            err = TW_ERR_CANCELLED;
        else if (d.packet->stream_index == m.stream)
            err = decode_packet(&d, d.packet, why, whylen);
        av_packet_unref(d.packet);
    }
    /* A read error of the reader is the reader's; a damaged tail ends the
     * audio where it is damaged. */
    if (err == TW_OK && m.io.err)
        err = m.io.err;
    if (err == TW_OK)
        err = decoding_finish(&d, why, whylen);
    if (duration_ms != NULL)
        *duration_ms = (int64_t)(d.rs.samples * 1000 / TW_PCM_RATE);
    decoding_free(&d);
    demux_close(&m);
    return err;
}

/* ---- WAV, pushed ---------------------------------------------------------- */

struct tw_wav_decoder {
    tw_wav_parser parser;
    struct decoding d;
    size_t frame_bytes; /* packets are whole multiples of this */
    uint8_t *carry;     /* the start of a frame cut by a chunk boundary */
    size_t ncarry;
    uint64_t offset;
    tw_err failed;
    char *why; /* the caller's buffer during a feed */
    size_t whylen;
};

/* The codec of a WAV format tag; AV_CODEC_ID_NONE when this decoder does
 * not stream it (then tw_audio_decode, with FFmpeg's own WAV demuxer, can). */
static enum AVCodecID wav_codec(const tw_wav_format *f)
{
    switch (f->tag) {
    case TW_WAV_PCM:
        return f->bits == 8    ? AV_CODEC_ID_PCM_U8
               : f->bits == 16 ? AV_CODEC_ID_PCM_S16LE
               : f->bits == 24 ? AV_CODEC_ID_PCM_S24LE
               : f->bits == 32 ? AV_CODEC_ID_PCM_S32LE
                               : AV_CODEC_ID_NONE;
    case TW_WAV_FLOAT:
        return f->bits == 32   ? AV_CODEC_ID_PCM_F32LE
               : f->bits == 64 ? AV_CODEC_ID_PCM_F64LE
                               : AV_CODEC_ID_NONE;
    case TW_WAV_ALAW:
        return f->bits == 8 ? AV_CODEC_ID_PCM_ALAW : AV_CODEC_ID_NONE;
    case TW_WAV_MULAW:
        return f->bits == 8 ? AV_CODEC_ID_PCM_MULAW : AV_CODEC_ID_NONE;
    default:
        return AV_CODEC_ID_NONE;
    }
}

static tw_err wav_open_codec(tw_wav_decoder *w, const tw_wav_format *f)
{
    enum AVCodecID id = wav_codec(f);
    if (id == AV_CODEC_ID_NONE) {
        snprintf(w->why, w->whylen, "WAV format 0x%04x with %u bits is not decoded as it streams",
                 f->tag, f->bits);
        return TW_ERR_UNIMPLEMENTED;
    }
    w->frame_bytes = (size_t)f->channels * (f->bits / 8);
    if (w->frame_bytes != f->block_align)
        return failf(w->why, w->whylen,
                     "WAV block alignment %u does not fit %u channels of %u bits", f->block_align,
                     f->channels, f->bits);
    AVCodecParameters *par = avcodec_parameters_alloc();
    if (par == NULL || (w->carry = malloc(w->frame_bytes)) == NULL) {
        avcodec_parameters_free(&par);
        return TW_ERR_NO_MEMORY;
    }
    par->codec_type = AVMEDIA_TYPE_AUDIO;
    par->codec_id = id;
    par->sample_rate = (int)f->sample_rate;
    par->block_align = f->block_align;
    par->bits_per_coded_sample = f->bits;
    av_channel_layout_default(&par->ch_layout, f->channels);
    tw_err err = decoding_open(&w->d, par, w->why, w->whylen);
    avcodec_parameters_free(&par);
    return err;
}

static tw_err wav_send(tw_wav_decoder *w, const uint8_t *data, size_t n)
{
    AVPacket *p = w->d.packet;
    if (av_new_packet(p, (int)n) < 0)
        return TW_ERR_NO_MEMORY;
    memcpy(p->data, data, n);
    tw_err err = decode_packet(&w->d, p, w->why, w->whylen);
    av_packet_unref(p);
    return err;
}

/* The data chunk's bytes, from the parser: whole frames to the codec. */
static tw_err wav_on_data(void *ctx, const tw_wav_format *f, const uint8_t *data, size_t n)
{
    tw_wav_decoder *w = ctx;
    tw_err err = w->d.cc == NULL ? wav_open_codec(w, f) : TW_OK;
    if (err == TW_OK && w->ncarry > 0) {
        size_t take = w->frame_bytes - w->ncarry < n ? w->frame_bytes - w->ncarry : n;
        memcpy(w->carry + w->ncarry, data, take);
        w->ncarry += take;
        data += take;
        n -= take;
        if (w->ncarry == w->frame_bytes) {
            err = wav_send(w, w->carry, w->frame_bytes);
            w->ncarry = 0;
        }
    }
    while (err == TW_OK && n >= w->frame_bytes) {
        size_t whole = n - n % w->frame_bytes;
        size_t take = whole < PACKET_MAX ? whole : PACKET_MAX - PACKET_MAX % w->frame_bytes;
        err = wav_send(w, data, take);
        data += take;
        n -= take;
    }
    if (err == TW_OK && n > 0) {
        memcpy(w->carry, data, n);
        w->ncarry = n;
    }
    return err;
}

tw_err tw_wav_decoder_new(tw_pcm_sink sink, void *sink_ctx, tw_wav_decoder **out)
{
    quiet_ffmpeg();
    tw_wav_decoder *w = calloc(1, sizeof *w);
    if (w == NULL)
        return TW_ERR_NO_MEMORY;
    tw_wav_parser_init(&w->parser);
    w->d.rs.sink = sink;
    w->d.rs.sink_ctx = sink_ctx;
    *out = w;
    return TW_OK;
}

tw_err tw_wav_decoder_feed(tw_wav_decoder *w, const void *bytes, size_t n, char *why, size_t whylen)
{
    if (w->failed) {
        snprintf(why, whylen, "%s", "the decoder failed earlier");
        return w->failed;
    }
    w->why = why;
    w->whylen = whylen;
    why[0] = '\0';
    tw_err err = tw_wav_parser_feed(&w->parser, bytes, n, wav_on_data, w);
    if (err == TW_ERR_VALIDATION && why[0] == '\0')
        snprintf(why, whylen, "%s", w->parser.error);
    w->offset += n;
    w->failed = err;
    return err;
}

tw_err tw_wav_decoder_finish(tw_wav_decoder *w, char *why, size_t whylen)
{
    if (w->failed)
        return tw_wav_decoder_feed(w, NULL, 0, why, whylen);
    tw_err err = tw_wav_parser_finish(&w->parser);
    if (err) {
        snprintf(why, whylen, "%s", w->parser.error);
        return w->failed = err;
    }
    /* A trailing partial frame is not a sample: drop it. */
    err = decoding_finish(&w->d, why, whylen);
    return w->failed = err;
}

uint64_t tw_wav_decoder_offset(const tw_wav_decoder *w)
{
    return w->offset;
}

int64_t tw_wav_decoder_duration_ms(const tw_wav_decoder *w)
{
    return (int64_t)(w->d.rs.samples * 1000 / TW_PCM_RATE);
}

void tw_wav_decoder_free(tw_wav_decoder *w)
{
    if (w == NULL)
        return;
    decoding_free(&w->d);
    free(w->carry);
    free(w);
}

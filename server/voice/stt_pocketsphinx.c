/*
 * The PocketSphinx engine of stt.h: Debian's PocketSphinx 5prealpha with its
 * US English model, offline.
 *
 * Recognition follows `pocketsphinx_continuous -infile`, the baseline the
 * accuracy check compares against: 16 kHz samples go to the decoder in
 * blocks of 2048, its voice activity detector splits the audio into
 * utterances, and each utterance's hypothesis joins the text. Bounded
 * utterances also keep the decoder's memory bounded on long recordings.
 *
 * Decoders load the model (about a second and 90 MB each), so they are
 * made when needed and kept in one pool: up to batch_decoders at a time
 * transcribe whole recordings (a caller waits for one) and up to
 * live_decoders decode uploads while they arrive (a caller never waits: no
 * idle decoder, no live session; tw_stt_prepare loads them ahead). A
 * decoder is reused for the next recording of either kind (ps_start_stream
 * resets it), and one idle for DECODER_IDLE_MS is freed, so an idle twd
 * holds none. A decoder taught new words (vocabulary) is not reused.
 *
 * Why not one model shared by every decoder: PocketSphinx 5prealpha has no
 * API to build a decoder on another's acoustic model (ps_init loads its
 * own), and its language model (the trie of en-us.lm.bin, most of the
 * 90 MB with the dictionary) keeps a scoring cache in the model itself
 * (lm_trie_t's backoff_cache and hist_cache), so two decoders scoring one
 * model at once would race. Reuse is what the library allows.
 */
#include "stt.h"

#include "tw_array.h"

#include <ctype.h>
#include <pocketsphinx.h>
#include <pthread.h>
#include <sphinxbase/cmn.h>
#include <sphinxbase/err.h>
#include <sphinxbase/feat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

/* pocketsphinx_continuous reads its file in blocks of this many samples. */
#define BLOCK_SAMPLES 2048
#define READ_BYTES    (64 * 1024)
/* How often a caller waiting for a decoder looks at its abort flag. */
#define WAIT_SLICE_MS 200
/* How long an idle decoder is kept for the next recording. */
#define DECODER_IDLE_MS (60 * 1000)

struct decoder {
    ps_decoder_t *ps;
    struct decoder *next;
    bool tainted;    /* taught words: free it after use */
    int64_t idle_ms; /* when it was last put back (CLOCK_MONOTONIC) */
    /* The cepstral mean normalisation as loaded (means, then sums, and the
     * frame count): PocketSphinx adapts it to the audio it hears and keeps
     * it across utterances, so each recording starts from it again. */
    mfcc_t *cmn_initial;
    int32 cmn_initial_frames;
};

/* What a decoder is taken for: each kind has its own limit of decoders in
 * use at once. */
enum decoder_use { USE_BATCH, USE_LIVE };

struct decoder_pool {
    pthread_mutex_t lock;
    pthread_cond_t freed; /* a decoder came back or was freed */
    pthread_cond_t reap;  /* the reaper has something new to look at */
    struct decoder *idle; /* most recently used first */
    int created, max;     /* max: both limits together */
    int busy[2], limit[2];
    bool stopping;
    pthread_t reaper;
    bool reaper_started;
};

struct sphinx_engine {
    tw_stt_engine base;
    char *hmm, *lm, *dict;
    struct decoder_pool pool;
};

/* ---- decoders ------------------------------------------------------------ */

static void quiet_logs(void)
{
    err_set_logfp(NULL); /* sphinxbase logs to stderr; ours are JSON lines */
}

static tw_err decoder_new(struct sphinx_engine *e, struct decoder **out)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, quiet_logs);
    cmd_ln_t *config =
        cmd_ln_init(NULL, ps_args(), TRUE, "-hmm", e->hmm, "-lm", e->lm, "-dict", e->dict, NULL);
    ps_decoder_t *ps = config ? ps_init(config) : NULL;
    cmd_ln_free_r(config); /* the decoder keeps its own reference */
    struct decoder *d = ps ? calloc(1, sizeof *d) : NULL;
    cmn_t *cmn = ps ? ps_get_feat(ps)->cmn_struct : NULL;
    if (d != NULL && cmn != NULL)
        d->cmn_initial = malloc(2 * (size_t)cmn->veclen * sizeof *d->cmn_initial);
    if (d == NULL || d->cmn_initial == NULL) {
        if (ps != NULL)
            ps_free(ps);
        free(d);
        return ps ? TW_ERR_NO_MEMORY : TW_ERR_INTERNAL;
    }
    memcpy(d->cmn_initial, cmn->cmn_mean, (size_t)cmn->veclen * sizeof *d->cmn_initial);
    memcpy(d->cmn_initial + cmn->veclen, cmn->sum, (size_t)cmn->veclen * sizeof *d->cmn_initial);
    d->cmn_initial_frames = cmn->nframe;
    d->ps = ps;
    *out = d;
    return TW_OK;
}

/* Makes a used decoder hear the next recording as a fresh one would: the
 * noise and speech detection of a new stream (frames count from 0 again)
 * and the normalisation it was loaded with. */
static tw_err decoder_reset(struct decoder *d)
{
    cmn_t *cmn = ps_get_feat(d->ps)->cmn_struct;
    if (ps_start_stream(d->ps) < 0)
        return TW_ERR_INTERNAL;
    memcpy(cmn->cmn_mean, d->cmn_initial, (size_t)cmn->veclen * sizeof *d->cmn_initial);
    memcpy(cmn->sum, d->cmn_initial + cmn->veclen, (size_t)cmn->veclen * sizeof *d->cmn_initial);
    cmn->nframe = d->cmn_initial_frames;
    return TW_OK;
}

static void decoder_free(struct decoder *d)
{
    ps_free(d->ps);
    free(d->cmn_initial);
    free(d);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct timespec mono_at(int64_t ms)
{
    return (struct timespec){ms / 1000, (ms % 1000) * 1000000};
}

/* Frees decoders idle for DECODER_IDLE_MS, the oldest first, until the
 * pool stops. */
static void *reaper_main(void *arg)
{
    struct decoder_pool *p = arg;
    pthread_mutex_lock(&p->lock);
    while (!p->stopping) {
        struct decoder **oldest = &p->idle;
        while (*oldest != NULL && (*oldest)->next != NULL)
            oldest = &(*oldest)->next;
        if (*oldest == NULL) {
            pthread_cond_wait(&p->reap, &p->lock);
            continue;
        }
        int64_t due = (*oldest)->idle_ms + DECODER_IDLE_MS;
        if (mono_ms() < due) {
            struct timespec until = mono_at(due);
            pthread_cond_timedwait(&p->reap, &p->lock, &until);
            continue;
        }
        struct decoder *d = *oldest;
        *oldest = NULL;
        p->created--;
        pthread_cond_signal(&p->freed);
        pthread_mutex_unlock(&p->lock);
        decoder_free(d);
        pthread_mutex_lock(&p->lock);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

static void pool_init(struct decoder_pool *p, int batch, int live)
{
    pthread_mutex_init(&p->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&p->freed, &attr);
    pthread_cond_init(&p->reap, &attr);
    pthread_condattr_destroy(&attr);
    p->limit[USE_BATCH] = batch;
    p->limit[USE_LIVE] = live;
    p->max = batch + live;
    p->reaper_started = pthread_create(&p->reaper, NULL, reaper_main, p) == 0;
}

/* A decoder for use: an idle one, a new one while under max (unless
 * idle_only), or (wait) the next one freed; never more of one use at once
 * than its limit. */
static tw_err pool_get(struct sphinx_engine *e, enum decoder_use use, bool wait, bool idle_only,
                       const atomic_bool *abort, struct decoder **out)
{
    struct decoder_pool *p = &e->pool;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        if (p->busy[use] < p->limit[use] && p->idle != NULL) {
            *out = p->idle;
            p->idle = p->idle->next;
            p->busy[use]++;
            pthread_mutex_unlock(&p->lock);
            return TW_OK;
        }
        if (p->busy[use] < p->limit[use] && p->created < p->max && !idle_only) {
            p->created++;
            p->busy[use]++;
            pthread_mutex_unlock(&p->lock);
            tw_err err = decoder_new(e, out);
            if (err) {
                pthread_mutex_lock(&p->lock);
                p->created--;
                p->busy[use]--;
                pthread_cond_signal(&p->freed);
                pthread_mutex_unlock(&p->lock);
            }
            return err;
        }
        if (!wait) {
            pthread_mutex_unlock(&p->lock);
            return TW_ERR_BUSY;
        }
        if (abort != NULL && atomic_load(abort)) {
            pthread_mutex_unlock(&p->lock);
            return TW_ERR_CANCELLED;
        }
        struct timespec until = mono_at(mono_ms() + WAIT_SLICE_MS);
        pthread_cond_timedwait(&p->freed, &p->lock, &until);
    }
}

static void pool_put(struct decoder_pool *p, enum decoder_use use, struct decoder *d)
{
    pthread_mutex_lock(&p->lock);
    p->busy[use]--;
    if (d->tainted) {
        p->created--;
    } else {
        d->idle_ms = mono_ms();
        d->next = p->idle;
        p->idle = d;
        pthread_cond_signal(&p->reap);
    }
    pthread_cond_broadcast(&p->freed);
    pthread_mutex_unlock(&p->lock);
    if (d->tainted)
        decoder_free(d);
}

static void pool_destroy(struct decoder_pool *p)
{
    if (p->reaper_started) {
        pthread_mutex_lock(&p->lock);
        p->stopping = true;
        pthread_cond_signal(&p->reap);
        pthread_mutex_unlock(&p->lock);
        pthread_join(p->reaper, NULL);
    }
    while (p->idle != NULL) {
        struct decoder *d = p->idle;
        p->idle = d->next;
        decoder_free(d);
    }
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->freed);
    pthread_cond_destroy(&p->reap);
}

/* ---- vocabulary ------------------------------------------------------------- */

/* The phones of the en-us acoustic model (ARPAbet without stress marks). */
static const char *const phones[] = {
    "AA", "AE", "AH", "AO", "AW", "AY", "B",  "CH", "D", "DH", "EH", "ER", "EY",
    "F",  "G",  "HH", "IH", "IY", "JH", "K",  "L",  "M", "N",  "NG", "OW", "OY",
    "P",  "R",  "S",  "SH", "T",  "TH", "UH", "UW", "V", "W",  "Y",  "Z",  "ZH",
};

/* pronunciation in the model's phones, upper case, stress marks dropped;
 * false when a phone is unknown. out has room for strlen(pron) + 1. */
static bool normalise_pronunciation(const char *pron, char *out, char *why, size_t whylen)
{
    size_t n = 0;
    int count = 0;
    while (*pron) {
        while (isspace((unsigned char)*pron))
            pron++;
        if (*pron == '\0')
            break;
        char phone[8];
        size_t len = 0;
        while (*pron && !isspace((unsigned char)*pron) && len < sizeof phone - 1)
            phone[len++] = (char)toupper((unsigned char)*pron++);
        phone[len] = '\0';
        if (len > 0 && phone[len - 1] >= '0' && phone[len - 1] <= '2')
            phone[--len] = '\0';
        bool known = false;
        for (size_t i = 0; i < sizeof phones / sizeof phones[0] && !known; i++)
            known = strcmp(phone, phones[i]) == 0;
        if (!known || (*pron && !isspace((unsigned char)*pron))) {
            snprintf(why, whylen, "\"%s\" is not an ARPAbet phone", phone);
            return false;
        }
        n += (size_t)sprintf(out + n, "%s%s", count++ ? " " : "", phone);
    }
    if (count == 0) {
        snprintf(why, whylen, "has no phones");
        return false;
    }
    return true;
}

static bool sphinx_term_valid(tw_stt_engine *e, const tw_stt_term *term, char *why, size_t whylen)
{
    if (term->pronunciation[0] == '\0')
        return true;
    if (strpbrk(term->phrase, " \t") != NULL) {
        snprintf(why, whylen, "a pronunciation can be given for a single word only");
        return false;
    }
    char *norm = malloc(strlen(term->pronunciation) + 1);
    bool ok = norm != NULL && normalise_pronunciation(term->pronunciation, norm, why, whylen);
    free(norm);
    return ok;
}

/* Teaches the decoder the vocabulary's new words that come with a
 * pronunciation; words it knows need nothing, words without one cannot be
 * learned (PocketSphinx has no grapheme-to-phoneme model). */
static void teach(struct decoder *d, const tw_stt_term *terms, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const tw_stt_term *t = &terms[i];
        char why[64];
        if (t->pronunciation[0] == '\0' || strpbrk(t->phrase, " \t") != NULL)
            continue;
        size_t len = strlen(t->phrase);
        char *word = malloc(len + 1), *pron = malloc(strlen(t->pronunciation) + 1);
        if (word != NULL && pron != NULL &&
            normalise_pronunciation(t->pronunciation, pron, why, sizeof why)) {
            for (size_t k = 0; k <= len; k++)
                word[k] = (char)tolower((unsigned char)t->phrase[k]);
            char *known = ps_lookup_word(d->ps, word);
            if (known == NULL && ps_add_word(d->ps, word, pron, TRUE) >= 0)
                d->tainted = true;
            free(known);
        }
        free(word);
        free(pron);
    }
}

/* ---- recognition -------------------------------------------------------------- */

struct word {
    char *word;
    int64_t start_ms, end_ms;
    float confidence;
};

struct recognizer {
    struct decoder *dec;
    int16_t block[BLOCK_SAMPLES];
    size_t nblock;
    bool in_utterance; /* ps_start_utt called and not ended */
    bool speech_seen;  /* the current utterance has had speech */
    uint64_t samples;  /* fed to the decoder */
    int frame_rate;
    char *text;
    size_t text_len, text_cap;
    struct word *words;
    size_t nwords, words_cap;
    const atomic_bool *abort;
};

static tw_err append_text(struct recognizer *r, const char *hyp)
{
    size_t len = strlen(hyp), need = r->text_len + len + 2;
    if (need > r->text_cap) {
        size_t cap = need * 2;
        char *text = realloc(r->text, cap);
        if (text == NULL)
            return TW_ERR_NO_MEMORY;
        r->text = text;
        r->text_cap = cap;
    }
    if (r->text_len > 0)
        r->text[r->text_len++] = ' ';
    memcpy(r->text + r->text_len, hyp, len + 1);
    r->text_len += len;
    return TW_OK;
}

static bool filler(const char *word)
{
    return word[0] == '<' || word[0] == '[' || word[0] == '+';
}

static tw_err add_word(struct recognizer *r, const char *word, int64_t start, int64_t end,
                       float confidence)
{
    if (r->nwords == r->words_cap) {
        struct word *words = tw_array_grow(r->words, r->nwords, &r->words_cap, sizeof *words, 64);
        if (words == NULL)
            return TW_ERR_NO_MEMORY;
        r->words = words;
    }
    /* "word(2)" is the word's second pronunciation. */
    size_t len = strcspn(word, "(");
    char *copy = strndup(word, len);
    if (copy == NULL)
        return TW_ERR_NO_MEMORY;
    r->words[r->nwords++] = (struct word){copy, start, end, confidence};
    return TW_OK;
}

/* Ends the current utterance and keeps what it heard. Frames count from
 * the start of the stream, which decoder_reset put at the recording's. */
static tw_err end_utterance(struct recognizer *r, bool keep)
{
    ps_decoder_t *ps = r->dec->ps;
    ps_end_utt(ps);
    r->in_utterance = false;
    if (!keep)
        return TW_OK;
    const char *hyp = ps_get_hyp(ps, NULL);
    tw_err err = hyp != NULL && hyp[0] != '\0' ? append_text(r, hyp) : TW_OK;
    int64_t ms_per_frame = 1000 / r->frame_rate;
    logmath_t *lmath = ps_get_logmath(ps);
    for (ps_seg_t *seg = ps_seg_iter(ps); seg != NULL && err == TW_OK; seg = ps_seg_next(seg)) {
        const char *word = ps_seg_word(seg);
        if (filler(word))
            continue;
        int sf, ef;
        ps_seg_frames(seg, &sf, &ef);
        float confidence = (float)logmath_exp(lmath, ps_seg_prob(seg, NULL, NULL, NULL));
        if (!(confidence >= 0.0f)) /* NaN */
            confidence = 0.0f;
        if (confidence > 1.0f)
            confidence = 1.0f;
        err = add_word(r, word, sf * ms_per_frame, (ef + 1) * ms_per_frame, confidence);
        if (err)
            ps_seg_free(seg);
    }
    return err;
}

static tw_err start_utterance(struct recognizer *r)
{
    if (ps_start_utt(r->dec->ps) < 0)
        return TW_ERR_INTERNAL;
    r->in_utterance = true;
    r->speech_seen = false;
    return TW_OK;
}

/* One block, and the utterance bookkeeping of pocketsphinx_continuous. */
static tw_err process_block(struct recognizer *r)
{
    ps_decoder_t *ps = r->dec->ps;
    if (ps_process_raw(ps, r->block, r->nblock, FALSE, FALSE) < 0)
        return TW_ERR_INTERNAL;
    r->samples += r->nblock;
    r->nblock = 0;
    bool in_speech = ps_get_in_speech(ps);
    if (in_speech && !r->speech_seen)
        r->speech_seen = true;
    if (!in_speech && r->speech_seen) {
        tw_err err = end_utterance(r, true);
        return err ? err : start_utterance(r);
    }
    return TW_OK;
}

/* The tw_pcm_sink: blocks of BLOCK_SAMPLES to the decoder. */
static tw_err recognizer_sink(void *ctx, const int16_t *samples, size_t n)
{
    struct recognizer *r = ctx;
    if (r->abort != NULL && atomic_load(r->abort))
        return TW_ERR_CANCELLED;
    while (n > 0) {
        size_t take = BLOCK_SAMPLES - r->nblock < n ? BLOCK_SAMPLES - r->nblock : n;
        memcpy(r->block + r->nblock, samples, take * sizeof *samples);
        r->nblock += take;
        samples += take;
        n -= take;
        if (r->nblock == BLOCK_SAMPLES) {
            tw_err err = process_block(r);
            if (err)
                return err;
        }
    }
    return TW_OK;
}

static tw_err recognizer_start(struct recognizer *r, struct decoder *dec, const tw_stt_request *req)
{
    memset(r, 0, sizeof *r);
    r->dec = dec;
    r->abort = req->abort;
    r->frame_rate = (int)cmd_ln_int32_r(ps_get_config(dec->ps), "-frate");
    if (r->frame_rate <= 0)
        r->frame_rate = 100;
    tw_err err = decoder_reset(dec);
    if (err)
        return err;
    teach(dec, req->vocabulary, req->nvocabulary);
    return start_utterance(r);
}

/* The last partial block, the last utterance, and the transcript in arena. */
static tw_err recognizer_finish(struct recognizer *r, tw_arena *arena, const char *language,
                                tw_transcript *out)
{
    tw_err err = r->nblock > 0 ? process_block(r) : TW_OK;
    if (err == TW_OK && r->in_utterance)
        err = end_utterance(r, r->speech_seen);
    if (err)
        return err;
    memset(out, 0, sizeof *out);
    out->engine = "pocketsphinx";
    out->language = tw_arena_strdup(arena, language);
    out->text = tw_arena_strdup(arena, r->text ? r->text : "");
    out->duration_ms = (int64_t)(r->samples * 1000 / TW_PCM_RATE);
    out->words = r->nwords ? tw_arena_alloc(arena, r->nwords * sizeof *out->words) : NULL;
    if (out->language == NULL || out->text == NULL || (r->nwords && out->words == NULL))
        return TW_ERR_NO_MEMORY;
    double sum = 0;
    for (size_t i = 0; i < r->nwords; i++) {
        const struct word *w = &r->words[i];
        const char *text = tw_arena_strdup(arena, w->word);
        if (text == NULL)
            return TW_ERR_NO_MEMORY;
        out->words[i] = (tw_stt_word){text, w->start_ms, w->end_ms, w->confidence};
        sum += w->confidence;
    }
    out->nwords = r->nwords;
    out->confidence = r->nwords ? (float)(sum / (double)r->nwords) : 0.0f;
    return TW_OK;
}

static void recognizer_free(struct recognizer *r)
{
    if (r->dec != NULL && r->in_utterance)
        end_utterance(r, false);
    for (size_t i = 0; i < r->nwords; i++)
        free(r->words[i].word);
    free(r->words);
    free(r->text);
}

/* ---- the engine ------------------------------------------------------------------ */

static struct sphinx_engine *engine_of(tw_stt_engine *e)
{
    return (struct sphinx_engine *)e;
}

static bool sphinx_supports_language(tw_stt_engine *e, const char *language)
{
    return strcasecmp(language, "en") == 0 || strcasecmp(language, "en-US") == 0;
}

static tw_err sphinx_transcribe(tw_stt_engine *base, const tw_stt_request *req, tw_arena *arena,
                                tw_transcript *out, char *why, size_t whylen)
{
    struct sphinx_engine *e = engine_of(base);
    struct decoder *dec;
    tw_err err = pool_get(e, USE_BATCH, true, false, req->abort, &dec);
    if (err) {
        snprintf(why, whylen, "no PocketSphinx decoder: %s", tw_err_message(err));
        return err;
    }
    struct recognizer r;
    err = recognizer_start(&r, dec, req);
    if (err == TW_OK)
        err = tw_audio_decode(&req->input, req->format, recognizer_sink, &r, req->abort, NULL, why,
                              whylen);
    if (err == TW_OK)
        err = recognizer_finish(&r, arena, req->language, out);
    recognizer_free(&r);
    pool_put(&e->pool, USE_BATCH, dec);
    return err;
}

/* ---- live sessions (wav) ------------------------------------------------------------ */

struct sphinx_live {
    tw_stt_live base;
    struct sphinx_engine *engine;
    struct decoder *dec;
    struct recognizer rec;
    tw_wav_decoder *wav;
    char language[36];
};

static const struct tw_stt_ops sphinx_ops;

static tw_err sphinx_live_open(tw_stt_engine *base, const tw_stt_request *req, tw_stt_live **out)
{
    struct sphinx_engine *e = engine_of(base);
    /* Live decoders are never taught words, so they are never replaced
     * (loading one takes a second: not on an RPC thread). */
    bool teaches = false;
    for (size_t i = 0; i < req->nvocabulary; i++)
        teaches |= req->vocabulary[i].pronunciation[0] != '\0';
    if (req->format != TW_AUDIO_WAV || e->pool.limit[USE_LIVE] == 0 || teaches)
        return TW_ERR_UNIMPLEMENTED;
    struct sphinx_live *l = calloc(1, sizeof *l);
    if (l == NULL)
        return TW_ERR_NO_MEMORY;
    l->base.ops = &sphinx_ops;
    l->engine = e;
    snprintf(l->language, sizeof l->language, "%s", req->language);
    tw_err err = pool_get(e, USE_LIVE, false, true, NULL, &l->dec);
    if (err) {
        free(l);
        return err;
    }
    err = recognizer_start(&l->rec, l->dec, req);
    if (err == TW_OK)
        err = tw_wav_decoder_new(recognizer_sink, &l->rec, &l->wav);
    if (err) {
        tw_stt_live_free(&l->base);
        return err;
    }
    l->rec.abort = NULL; /* the request's flag may not outlive the upload */
    *out = &l->base;
    return TW_OK;
}

static tw_err sphinx_live_feed(tw_stt_live *base, const void *bytes, size_t n, char *why,
                               size_t whylen)
{
    struct sphinx_live *l = (struct sphinx_live *)base;
    return tw_wav_decoder_feed(l->wav, bytes, n, why, whylen);
}

static uint64_t sphinx_live_offset(const tw_stt_live *base)
{
    const struct sphinx_live *l = (const struct sphinx_live *)base;
    return tw_wav_decoder_offset(l->wav);
}

static tw_err sphinx_live_finish(tw_stt_live *base, const tw_audio_input *rest,
                                 const atomic_bool *abort, tw_arena *arena, tw_transcript *out,
                                 char *why, size_t whylen)
{
    struct sphinx_live *l = (struct sphinx_live *)base;
    l->rec.abort = abort;
    uint8_t *buf = malloc(READ_BYTES);
    if (buf == NULL)
        return TW_ERR_NO_MEMORY;
    tw_err err = TW_OK;
    for (;;) {
        size_t n = 0;
        if ((err = rest->read(rest->ctx, buf, READ_BYTES, &n)) || n == 0)
            break;
        if ((err = tw_wav_decoder_feed(l->wav, buf, n, why, whylen)))
            break;
    }
    free(buf);
    if (err == TW_OK)
        err = tw_wav_decoder_finish(l->wav, why, whylen);
    if (err == TW_OK)
        err = recognizer_finish(&l->rec, arena, l->language, out);
    return err;
}

static void sphinx_live_free(tw_stt_live *base)
{
    struct sphinx_live *l = (struct sphinx_live *)base;
    tw_wav_decoder_free(l->wav);
    if (l->dec != NULL) {
        recognizer_free(&l->rec);
        pool_put(&l->engine->pool, USE_LIVE, l->dec);
    }
    free(l);
}

/* Loads decoders until live_decoders of them are idle or in live use,
 * so live sessions find them ready. */
static void sphinx_prepare(tw_stt_engine *base)
{
    struct sphinx_engine *e = engine_of(base);
    struct decoder *loaded = NULL;
    for (;;) {
        struct decoder *d;
        if (pool_get(e, USE_LIVE, false, false, NULL, &d) != TW_OK)
            break;
        d->next = loaded;
        loaded = d;
    }
    while (loaded != NULL) {
        struct decoder *d = loaded;
        loaded = d->next;
        pool_put(&e->pool, USE_LIVE, d);
    }
}

static void engine_free(tw_stt_engine *base)
{
    struct sphinx_engine *e = engine_of(base);
    pool_destroy(&e->pool);
    free(e->hmm);
    free(e->lm);
    free(e->dict);
    free(e);
}

static const struct tw_stt_ops sphinx_ops = {
    .name = "pocketsphinx",
    .supports_language = sphinx_supports_language,
    .term_valid = sphinx_term_valid,
    .transcribe = sphinx_transcribe,
    .live_open = sphinx_live_open,
    .live_feed = sphinx_live_feed,
    .live_offset = sphinx_live_offset,
    .live_finish = sphinx_live_finish,
    .live_free = sphinx_live_free,
    .prepare = sphinx_prepare,
    .free = engine_free,
};

tw_err tw_stt_pocketsphinx_new(const tw_pocketsphinx_options *opts, tw_stt_engine **out,
                               char *errbuf, size_t errlen)
{
    *out = NULL;
    struct sphinx_engine *e = calloc(1, sizeof *e);
    if (e == NULL)
        return TW_ERR_NO_MEMORY;
    e->base.ops = &sphinx_ops;
    if (asprintf(&e->hmm, "%s/en-us", opts->model_dir) < 0)
        e->hmm = NULL;
    if (asprintf(&e->lm, "%s/en-us.lm.bin", opts->model_dir) < 0)
        e->lm = NULL;
    if (asprintf(&e->dict, "%s/cmudict-en-us.dict", opts->model_dir) < 0)
        e->dict = NULL;
    pool_init(&e->pool, opts->batch_decoders > 0 ? opts->batch_decoders : 1, opts->live_decoders);
    if (e->hmm == NULL || e->lm == NULL || e->dict == NULL) {
        engine_free(&e->base);
        return TW_ERR_NO_MEMORY;
    }
    const char *needed[] = {e->hmm, e->lm, e->dict};
    for (size_t i = 0; i < 3; i++) {
        struct stat st;
        if (stat(needed[i], &st) != 0) {
            snprintf(errbuf, errlen, "PocketSphinx model file %s is missing (voice_model_dir)",
                     needed[i]);
            engine_free(&e->base);
            return TW_ERR_VALIDATION;
        }
    }
    *out = &e->base;
    return TW_OK;
}

/*
 * Unit tests for server/services/voice_service.c and server/voice/voice.c,
 * through a real gRPC connection: an RPC engine serving VoiceService over a
 * store and blob storage in a temporary directory, with the real
 * PocketSphinx engine, and a test gate that takes "Bearer <user-id>" as the
 * signed-in user (sign-in itself is AuthService's, tested elsewhere).
 *
 * What an app sees: uploads in every format are stored with their size,
 * SHA-256 and duration and get transcribed (a WAV while it streams in);
 * refusals, the size limit, cancels and deadlines leave nothing in the store
 * or on disk; retries store once; downloads return the bytes; deletes
 * remove the audio; another user's notes do not exist; transcription
 * resumes after a restart; the retention sweep deletes old notes.
 */
#include "tw_check.h"

#include "google/rpc/error_details.pb-c.h"
#include "google/rpc/status.pb-c.h"
#include "rpc/engine.h"
#include "rpc_test_client.h"
#include "services/services.h"
#include "tw_changelog.h"
#include "tw_key.h"
#include "tw_txn.h"
#include "tw_migrate.h"
#include "voice/voice.h"
#include "voice_fixture.h"

#include <dirent.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define USER_A "0190a6b2-1111-7000-8000-00000000000a"
#define USER_B "0190a6b2-2222-7000-8000-00000000000b"
#define SVC    "/tw.v1.VoiceService/"
/* The limit in these tests: speech-44k.wav (2.18 MB) fits. */
#define MAX_BYTES  3000000
#define TIMEOUT_MS 120000

static const char *const auth_a[] = {"authorization", "Bearer " USER_A, NULL};
static const char *const auth_b[] = {"authorization", "Bearer " USER_B, NULL};

/* ---- fixture: store, blobs, voice, engine, channel ------------------------- */

static char *dir;
static tw_config cfg;
static tw_app app;
static tw_engine *engine;
static grpc_channel *channel;
/* The store's clock (voice's too): the wall clock, moved ahead by the
 * retention tests. It keeps running, as job leases and retries need. */
static _Atomic int64_t clock_ahead_ms;

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t test_clock(void *ctx)
{
    return wall_ms() + atomic_load(&clock_ahead_ms);
}

static tw_err test_gate(void *ctx, tw_call *call, const tw_method *method)
{
    const char *auth = tw_call_metadata(call, "authorization");
    tw_id id;
    if (auth == NULL)
        return TW_ERR_AUTH_MISSING_TOKEN;
    if (strncmp(auth, "Bearer ", 7) != 0 || !tw_id_parse(auth + 7, &id))
        return TW_ERR_AUTH_INVALID_TOKEN;
    tw_call_set_caller(call, &id, &id, "user");
    return TW_OK;
}

/* What the engine serves of the voice service. */
static tw_service voice_served;

static void start_voice(void)
{
    char errbuf[256] = "";
    tw_stt_engine *stt;
    ck_assert_msg(tw_voice_engine_from_config(&cfg, NULL, &stt, errbuf, sizeof errbuf) == TW_OK,
                  "%s", errbuf);
    tw_voice_options opts = tw_voice_options_from_config(&cfg, stt);
    opts.sweep_interval_ms = -1;       /* tests sweep by hand */
    opts.preload_live_decoders = true; /* a WAV upload is decoded as it arrives */
    ck_assert_msg(tw_voice_start(&app, &opts, errbuf, sizeof errbuf) == TW_OK, "%s", errbuf);
    /* Live decoders load in the background (a second or so each). */
    tw_voice_stats stats = {0};
    for (int i = 0; i < 6000 && !stats.live_ready; i++) {
        usleep(10 * 1000);
        tw_voice_get_stats(app.voice, &stats);
    }
    ck_assert(stats.live_ready);
}

static void setup(void)
{
    dir = vf_tempdir();
    char max[32];
    snprintf(max, sizeof max, "%d", MAX_BYTES);
    char *argv[] = {"--data-dir",           dir, "--voice-max-bytes",     max,
                    "--voice-transcribers", "1", "--voice-live-decoders", "1"};
    char errbuf[256];
    ck_assert_msg(tw_config_load(&cfg, 8, argv, errbuf, sizeof errbuf) == TW_OK, "%s", errbuf);
    atomic_store(&clock_ahead_ms, 0);
    app = (tw_app){.cfg = &cfg};
    /* The store's clock is voice's: retention tests move it. */
    tw_store_options sopts = {.data_dir = dir, .durability = TW_FAST, .clock_ms = test_clock};
    ck_assert_int_eq(tw_store_open(&sopts, &app.store), TW_OK);
    size_t applied;
    ck_assert_int_eq(tw_store_migrate_up(app.store, &tw_store_migrations, &applied), TW_OK);
    ck_assert_int_eq(tw_blob_fs_open(dir, &app.blobs), TW_OK);
    start_voice();

    tw_engine_config ecfg = {
        .listen = "127.0.0.1:0",
        .workers = 2,
        .max_message_bytes = 4 << 20,
        .requests_per_method = 2,
        .max_stream_backlog = 8 << 20,
    };
    ck_assert_int_eq(tw_engine_new(&ecfg, &engine), TW_OK);
    ck_assert_msg(tw_service_register(engine, &app, &tw_voice_service, &voice_served, errbuf,
                                      sizeof errbuf) == TW_OK,
                  "%s", errbuf);
    tw_engine_set_gate(engine, test_gate, NULL);
    int port = 0;
    ck_assert_msg(tw_engine_start(engine, &port, errbuf, sizeof errbuf) == TW_OK, "%s", errbuf);
    char target[64];
    snprintf(target, sizeof target, "127.0.0.1:%d", port);
    grpc_channel_args args = {0, NULL};
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    channel = grpc_channel_create(target, creds, &args);
    grpc_channel_credentials_release(creds);
}

static void teardown(void)
{
    grpc_channel_destroy(channel);
    tw_engine_shutdown(engine, 1000);
    tw_voice_stop(app.voice);
    tw_engine_free(engine);
    tw_blob_close(app.blobs);
    tw_store_close(app.store);
    tw_config_free(&cfg);
    vf_rmdir(dir);
}

/* ---- helpers ---------------------------------------------------------------- */

/* The reason of a failed call's google.rpc.ErrorInfo (static buffer). */
static const char *reason_of(const rpc_result *r)
{
    static char reason[32];
    reason[0] = '\0';
    Google__Rpc__Status *st =
        r->details ? google__rpc__status__unpack(NULL, r->details_len, r->details) : NULL;
    for (size_t i = 0; st != NULL && i < st->n_details; i++) {
        if (strcmp(st->details[i]->type_url, "type.googleapis.com/google.rpc.ErrorInfo") != 0)
            continue;
        Google__Rpc__ErrorInfo *info = google__rpc__error_info__unpack(
            NULL, st->details[i]->value.len, st->details[i]->value.data);
        snprintf(reason, sizeof reason, "%s", info->reason);
        google__rpc__error_info__free_unpacked(info, NULL);
    }
    if (st != NULL)
        google__rpc__status__free_unpacked(st, NULL);
    return reason;
}

static void assert_error(const rpc_result *r, grpc_status_code code, const char *reason)
{
    ck_assert_msg(r->status == code, "status %d (%s), expected %d", r->status,
                  r->message ? r->message : "", code);
    ck_assert_str_eq(reason_of(r), reason);
}

typedef struct upload_spec {
    const char *file_name, *content_type, *request_id, *language;
    const uint8_t *bytes;
    size_t len;
    size_t chunk; /* 0: 64 KiB */
} upload_spec;

/* Opens an upload and sends its metadata. */
static rpc_stream *upload_open(const upload_spec *u, const char *const *md, int timeout_ms)
{
    rpc_stream *s = rpc_stream_open_md(channel, SVC "UploadVoiceNote", timeout_ms, md);
    Tw__V1__VoiceNoteMetadata meta = TW__V1__VOICE_NOTE_METADATA__INIT;
    meta.file_name = (char *)(u->file_name ? u->file_name : "");
    meta.content_type = (char *)(u->content_type ? u->content_type : "");
    meta.request_id = (char *)(u->request_id ? u->request_id : "");
    meta.language = (char *)(u->language ? u->language : "");
    Tw__V1__UploadVoiceNoteRequest req = TW__V1__UPLOAD_VOICE_NOTE_REQUEST__INIT;
    req.content_case = TW__V1__UPLOAD_VOICE_NOTE_REQUEST__CONTENT_METADATA;
    req.metadata = &meta;
    rpc_stream_send(s, &req.base);
    return s;
}

/* Sends bytes [from, to) of the upload in its chunks. */
static void upload_send(rpc_stream *s, const upload_spec *u, size_t from, size_t to)
{
    size_t chunk = u->chunk ? u->chunk : 64 * 1024;
    for (size_t off = from; off < to; off += chunk) {
        Tw__V1__UploadVoiceNoteRequest req = TW__V1__UPLOAD_VOICE_NOTE_REQUEST__INIT;
        req.content_case = TW__V1__UPLOAD_VOICE_NOTE_REQUEST__CONTENT_CHUNK;
        size_t n = to - off < chunk ? to - off : chunk;
        req.chunk = (ProtobufCBinaryData){n, (uint8_t *)u->bytes + off};
        if (!rpc_stream_send(s, &req.base))
            break; /* the server ended the call */
    }
}

static void upload(const upload_spec *u, const char *const *md, rpc_result *r)
{
    rpc_stream *s = upload_open(u, md, TIMEOUT_MS);
    upload_send(s, u, 0, u->len);
    rpc_stream_close_send(s);
    rpc_stream_finish(s, r);
}

/* Decoded responses, freed after each test. */
static ProtobufCMessage *kept[64];
static size_t nkept;

static void *keep(ProtobufCMessage *m)
{
    ck_assert_ptr_nonnull(m);
    ck_assert_uint_lt(nkept, sizeof kept / sizeof kept[0]);
    kept[nkept++] = m;
    return m;
}

static void free_kept(void)
{
    while (nkept > 0)
        protobuf_c_message_free_unpacked(kept[--nkept], NULL);
}

static Tw__V1__VoiceNote *upload_ok(const upload_spec *u)
{
    rpc_result r;
    upload(u, auth_a, &r);
    ck_assert_msg(r.status == GRPC_STATUS_OK, "upload of %s: %d %s", u->file_name, r.status,
                  r.message);
    Tw__V1__UploadVoiceNoteResponse *resp =
        keep((ProtobufCMessage *)tw__v1__upload_voice_note_response__unpack(NULL, r.response_len,
                                                                            r.response));
    rpc_result_free(&r);
    return resp->voice_note;
}

static void unary(const char *method, const ProtobufCMessage *req, const char *const *md,
                  rpc_result *r)
{
    rpc_unary(channel, method, req, NULL, 0, TIMEOUT_MS, md, r);
}

static Tw__V1__VoiceNote *get_note(const char *id, const char *const *md, rpc_result *r)
{
    Tw__V1__GetVoiceNoteRequest req = TW__V1__GET_VOICE_NOTE_REQUEST__INIT;
    req.id = (char *)id;
    unary(SVC "GetVoiceNote", &req.base, md, r);
    if (r->status != GRPC_STATUS_OK)
        return NULL;
    Tw__V1__GetVoiceNoteResponse *resp =
        keep((ProtobufCMessage *)tw__v1__get_voice_note_response__unpack(NULL, r->response_len,
                                                                         r->response));
    return resp->voice_note;
}

/* Watches a note until its stream ends; the last note seen. statuses gets
 * each status sent, in order. */
static Tw__V1__VoiceNote *watch_final(const char *id, const char *const *md, int *statuses,
                                      size_t *nstatuses, rpc_result *r)
{
    Tw__V1__WatchVoiceNoteRequest req = TW__V1__WATCH_VOICE_NOTE_REQUEST__INIT;
    req.id = (char *)id;
    rpc_stream *s = rpc_stream_open_md(channel, SVC "WatchVoiceNote", TIMEOUT_MS, md);
    rpc_stream_send(s, &req.base);
    rpc_stream_close_send(s);
    Tw__V1__VoiceNote *last = NULL;
    size_t n = 0;
    Tw__V1__WatchVoiceNoteResponse *m;
    while ((m = (void *)rpc_stream_recv(s, &tw__v1__watch_voice_note_response__descriptor)) !=
           NULL) {
        keep(&m->base);
        last = m->voice_note;
        if (statuses != NULL && n < 16)
            statuses[n++] = last->status;
    }
    if (nstatuses != NULL)
        *nstatuses = n;
    rpc_stream_finish(s, r);
    return last;
}

static Tw__V1__VoiceNote *transcribed(const char *id)
{
    rpc_result r;
    Tw__V1__VoiceNote *note = watch_final(id, auth_a, NULL, NULL, &r);
    ck_assert_int_eq(r.status, GRPC_STATUS_OK);
    rpc_result_free(&r);
    ck_assert_ptr_nonnull(note);
    return note;
}

static Tw__V1__ListVoiceNotesResponse *list_page(const Tw__V1__ListVoiceNotesRequest *req,
                                                 const char *const *md)
{
    rpc_result r;
    unary(SVC "ListVoiceNotes", &req->base, md, &r);
    ck_assert_int_eq(r.status, GRPC_STATUS_OK);
    Tw__V1__ListVoiceNotesResponse *page =
        keep((ProtobufCMessage *)tw__v1__list_voice_notes_response__unpack(NULL, r.response_len,
                                                                           r.response));
    rpc_result_free(&r);
    return page;
}

static size_t list_count(const char *const *md)
{
    Tw__V1__ListVoiceNotesRequest req = TW__V1__LIST_VOICE_NOTES_REQUEST__INIT;
    return list_page(&req, md)->n_voice_notes;
}

/* Regular files under dir/blobs (its temporary directory included). */
static size_t count_files(const char *path)
{
    DIR *d = opendir(path);
    if (d == NULL)
        return 0;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char child[1024];
        snprintf(child, sizeof child, "%s/%s", path, e->d_name);
        struct stat st;
        if (lstat(child, &st) == 0)
            n += S_ISDIR(st.st_mode) ? count_files(child) : 1;
    }
    closedir(d);
    return n;
}

static size_t blob_files(void)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/blobs", dir);
    return count_files(path);
}

static bool blob_exists(const char *user, const char *id)
{
    char path[1024];
    struct stat st;
    snprintf(path, sizeof path, "%s/blobs/%s/%s", dir, user, id);
    return stat(path, &st) == 0;
}

/* Nothing stored for user A, nothing on disk: what every refusal leaves.
 * The refusal is answered first; what was written goes a moment later
 * (on the voice pool, since aborting an S3 upload is a request). */
static void assert_nothing_stored(void)
{
    ck_assert_uint_eq(list_count(auth_a), 0);
    for (int i = 0; i < 500 && blob_files() > 0; i++)
        usleep(10 * 1000);
    ck_assert_uint_eq(blob_files(), 0);
}

static void sha256_hex(const uint8_t *p, size_t n, char out[65])
{
    uint8_t digest[32];
    unsigned len = 0;
    EVP_Digest(p, n, digest, &len, EVP_sha256(), NULL);
    for (unsigned i = 0; i < len; i++)
        sprintf(out + 2 * i, "%02x", digest[i]);
}

/* What pocketsphinx_continuous prints for a file. */
static const char *baseline(const char *path)
{
    static char text[4096];
    char cmd[512], line[1024];
    snprintf(cmd, sizeof cmd, "pocketsphinx_continuous -infile '%s' 2>/dev/null", path);
    FILE *p = popen(cmd, "r");
    size_t len = 0;
    text[0] = '\0';
    while (p != NULL && fgets(line, sizeof line, p) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        if (line[0] != '\0')
            len += (size_t)snprintf(text + len, sizeof text - len, "%s%s", len ? " " : "", line);
    }
    ck_assert_int_eq(pclose(p), 0);
    return text;
}

/* ---- tests ------------------------------------------------------------------- */

START_TEST(wav_is_stored_and_transcribed_while_it_streams)
{
    vf_file f = vf_read(VF_LIBRIVOX_0880);
    upload_spec u = {.file_name = "note.wav",
                     .content_type = "audio/wav",
                     .request_id = "0190a6b2-0000-7000-8000-0000000000a1",
                     .bytes = f.bytes,
                     .len = f.len,
                     .chunk = 16 * 1024};
    Tw__V1__VoiceNote *note = upload_ok(&u);
    tw_id id;
    ck_assert(tw_id_parse(note->id, &id));
    ck_assert_uint_eq(note->size_bytes, f.len);
    char sha[65];
    sha256_hex(f.bytes, f.len, sha);
    ck_assert_str_eq(note->sha256, sha);
    ck_assert_int_eq(note->format, TW__V1__AUDIO_FORMAT__AUDIO_FORMAT_WAV);
    ck_assert_ptr_nonnull(note->duration);
    ck_assert_int_eq(note->duration->seconds, 2);
    ck_assert_int_ge(note->duration->nanos, 980000000);
    ck_assert_str_eq(note->language, "en-US");
    ck_assert_str_eq(note->request_id, "0190a6b2-0000-7000-8000-0000000000a1");
    /* Decoded as it arrived: transcription is under way at once. */
    ck_assert_int_eq(note->status, TW__V1__VOICE_NOTE_STATUS__VOICE_NOTE_STATUS_TRANSCRIBING);
    ck_assert(blob_exists(USER_A, note->id));

    int statuses[16];
    size_t n;
    rpc_result r;
    Tw__V1__VoiceNote *final = watch_final(note->id, auth_a, statuses, &n, &r);
    ck_assert_int_eq(r.status, GRPC_STATUS_OK);
    rpc_result_free(&r);
    ck_assert_uint_ge(n, 1);
    ck_assert_int_eq(statuses[n - 1], TW__V1__VOICE_NOTE_STATUS__VOICE_NOTE_STATUS_TRANSCRIBED);
    ck_assert_ptr_nonnull(final->transcript);
    ck_assert_str_eq(final->transcript->text, baseline(VF_LIBRIVOX_0880));
    ck_assert_str_eq(final->transcript->engine, "pocketsphinx");
    ck_assert_uint_gt(final->transcript->n_words, 3);
    ck_assert(final->transcript->confidence > 0);

    tw_voice_stats stats;
    tw_voice_get_stats(app.voice, &stats);
    ck_assert_uint_eq(stats.live_opened, 1);
    ck_assert_uint_eq(stats.live_behind, 0);
    ck_assert_uint_eq(stats.live_adopted, 1);
    ck_assert_uint_eq(stats.transcribed, 1);

    /* Every change reached the user's change log. */
    tw_arena *arena = tw_arena_new(4096);
    tw_id user;
    tw_id_parse(USER_A, &user);
    tw_change_page page;
    ck_assert_int_eq(tw_store_changelog_read(app.store, &user, 0, 100, arena, &page), TW_OK);
    ck_assert_uint_ge(page.count, 2); /* stored, transcribed */
    for (size_t i = 0; i < page.count; i++) {
        ck_assert_str_eq(page.changes[i].resource_type, "voice_note");
        ck_assert(memcmp(&page.changes[i].resource_id, &id, sizeof id) == 0);
    }
    tw_arena_free(arena);
    vf_free(&f);
}
END_TEST

START_TEST(every_format_is_accepted_and_transcribed)
{
    char *tmp = vf_tempdir();
    const struct {
        const char *name, *type, *codec;
        Tw__V1__AudioFormat format;
    } formats[] = {
        {"clip.mp3", "audio/mpeg", NULL, TW__V1__AUDIO_FORMAT__AUDIO_FORMAT_MP3},
        {"clip.m4a", "audio/mp4", "aac", TW__V1__AUDIO_FORMAT__AUDIO_FORMAT_M4A},
        {"clip.webm", "audio/webm;codecs=opus", "libopus", TW__V1__AUDIO_FORMAT__AUDIO_FORMAT_WEBM},
        {"clip.wav", "", "pcm_s16le", TW__V1__AUDIO_FORMAT__AUDIO_FORMAT_WAV},
    };
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++) {
        char path[512];
        if (formats[i].codec == NULL) {
            snprintf(path, sizeof path, "%s", VF_SPEECH_MP3);
        } else {
            snprintf(path, sizeof path, "%s/%s", tmp, formats[i].name);
            vf_run("ffmpeg -nostdin -loglevel error -y -i '%s' -c:a %s '%s'", VF_SPEECH_MP3,
                   formats[i].codec, path);
        }
        vf_file f = vf_read(path);
        upload_spec u = {.file_name = formats[i].name,
                         .content_type = formats[i].type,
                         .bytes = f.bytes,
                         .len = f.len,
                         .chunk = 1000};
        Tw__V1__VoiceNote *note = upload_ok(&u);
        ck_assert_int_eq(note->format, formats[i].format);
        ck_assert_uint_eq(note->size_bytes, f.len);
        /* Every container here says how long it plays. */
        ck_assert_ptr_nonnull(note->duration);
        /* speech.mp3 plays 2.99 s; containers add their encoders' padding. */
        ck_assert_int_ge(note->duration->seconds * 1000 + note->duration->nanos / 1000000, 2950);
        ck_assert_int_le(note->duration->seconds * 1000 + note->duration->nanos / 1000000, 3100);
        Tw__V1__VoiceNote *done = transcribed(note->id);
        ck_assert_msg(done->status == TW__V1__VOICE_NOTE_STATUS__VOICE_NOTE_STATUS_TRANSCRIBED,
                      "%s: %s", formats[i].name, done->failure_reason);
        vf_free(&f);
    }
    ck_assert_uint_eq(list_count(auth_a), 4);
    vf_rmdir(tmp);
}
END_TEST

/* Uploads bytes as declared and expects a refusal with reason, and that
 * nothing was stored; the message must contain `says`. */
static void assert_refused(const char *file_name, const char *type, const uint8_t *bytes,
                           size_t len, const char *reason, const char *says)
{
    upload_spec u = {.file_name = file_name, .content_type = type, .bytes = bytes, .len = len};
    rpc_result r;
    upload(&u, auth_a, &r);
    assert_error(&r, GRPC_STATUS_INVALID_ARGUMENT, reason);
    ck_assert_msg(strstr(r.message, says) != NULL, "\"%s\" does not say \"%s\"", r.message, says);
    rpc_result_free(&r);
    assert_nothing_stored();
}

START_TEST(wrong_formats_are_refused_and_nothing_is_stored)
{
    uint8_t png[4096] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n',
                         0,    0,   0,   13,  'I',  'H',  'D',  'R'};
    assert_refused("photo.mp3", "", png, sizeof png, "VOICE_001", "a PNG image, not mp3");
    vf_file wav = vf_read(VF_LIBRIVOX_0880);
    assert_refused("note.webm", "audio/webm", wav.bytes, wav.len, "VOICE_001",
                   "WAV audio, but it was declared as webm");
    assert_refused("note.wav", "image/png", wav.bytes, wav.len, "VOICE_001",
                   "is not an accepted type");
    assert_refused("note", "", wav.bytes, wav.len, "VOICE_001", "file_name does not end in");
    /* A WAV header with its data before its format. */
    const uint8_t broken[] = "RIFF\0\0\0\0WAVEdata\4\0\0\0abcdfmt ";
    assert_refused("bad.wav", "audio/wav", broken, sizeof broken - 1, "VOICE_001",
                   "data chunk comes before its fmt chunk");
    const uint8_t text[] = "just some text, no audio here at all";
    assert_refused("t.mp3", "audio/mpeg", text, sizeof text - 1, "VOICE_001",
                   "data of no known audio format");
    /* Bytes arriving one at a time are held until they can be judged. */
    upload_spec slow = {.file_name = "p.m4a", .bytes = png, .len = sizeof png, .chunk = 1};
    rpc_result r;
    upload(&slow, auth_a, &r);
    assert_error(&r, GRPC_STATUS_INVALID_ARGUMENT, "VOICE_001");
    rpc_result_free(&r);
    assert_nothing_stored();
    vf_free(&wav);
}
END_TEST

START_TEST(malformed_streams_are_refused)
{
    /* A chunk first. */
    rpc_stream *s = rpc_stream_open_md(channel, SVC "UploadVoiceNote", TIMEOUT_MS, auth_a);
    Tw__V1__UploadVoiceNoteRequest req = TW__V1__UPLOAD_VOICE_NOTE_REQUEST__INIT;
    req.content_case = TW__V1__UPLOAD_VOICE_NOTE_REQUEST__CONTENT_CHUNK;
    req.chunk = (ProtobufCBinaryData){4, (uint8_t *)"RIFF"};
    rpc_stream_send(s, &req.base);
    rpc_stream_close_send(s);
    rpc_result r;
    rpc_stream_finish(s, &r);
    assert_error(&r, GRPC_STATUS_INVALID_ARGUMENT, "VAL_001");
    ck_assert_str_eq(r.message, "metadata: the first message must carry the metadata");
    rpc_result_free(&r);

    /* Metadata and no audio. */
    upload_spec empty = {.file_name = "n.wav", .bytes = (const uint8_t *)"", .len = 0};
    upload(&empty, auth_a, &r);
    assert_error(&r, GRPC_STATUS_INVALID_ARGUMENT, "VAL_001");
    ck_assert_str_eq(r.message, "chunk: no audio was sent");
    rpc_result_free(&r);

    /* A chunk over 1 MiB, after a good start. */
    vf_file wav = vf_read(VF_SPEECH_WAV);
    upload_spec big = {
        .file_name = "n.wav", .bytes = wav.bytes, .len = wav.len, .chunk = (1 << 20) + 1};
    upload(&big, auth_a, &r);
    assert_error(&r, GRPC_STATUS_INVALID_ARGUMENT, "VAL_001");
    rpc_result_free(&r);

    /* Metadata twice. */
    upload_spec u = {.file_name = "n.wav", .bytes = wav.bytes, .len = 1000};
    s = upload_open(&u, auth_a, TIMEOUT_MS);
    upload_send(s, &u, 0, 1000);
    Tw__V1__VoiceNoteMetadata meta = TW__V1__VOICE_NOTE_METADATA__INIT;
    req.content_case = TW__V1__UPLOAD_VOICE_NOTE_REQUEST__CONTENT_METADATA;
    req.metadata = &meta;
    rpc_stream_send(s, &req.base);
    rpc_stream_close_send(s);
    rpc_stream_finish(s, &r);
    assert_error(&r, GRPC_STATUS_INVALID_ARGUMENT, "VAL_001");
    rpc_result_free(&r);

    /* Languages the engine cannot do, bad task ids. */
    u.language = "de-DE";
    upload(&u, auth_a, &r);
    assert_error(&r, GRPC_STATUS_INVALID_ARGUMENT, "VAL_001");
    ck_assert_ptr_nonnull(strstr(r.message, "cannot be transcribed by this server's engine"));
    rpc_result_free(&r);

    /* No token: the gate refuses before the handler. */
    u.language = NULL;
    upload(&u, NULL, &r);
    ck_assert_int_eq(r.status, GRPC_STATUS_UNAUTHENTICATED);
    rpc_result_free(&r);
    assert_nothing_stored();
    vf_free(&wav);
}
END_TEST

/* An MP4 ftyp box: what follows it is sniffed as m4a and cheap to refuse
 * or store (its transcription fails, with a reason). */
static const uint8_t M4A_FTYP[] = "\0\0\0\x1c"
                                  "ftypM4A \0\0\2\0M4A isomiso2";

START_TEST(size_limit_refuses_one_byte_more_and_keeps_nothing)
{
    /* An MP4 ftyp box and then zeros: sniffed as m4a, cheap to refuse. */
    uint8_t *bytes = calloc(1, MAX_BYTES + 1);
    memcpy(bytes, M4A_FTYP, sizeof M4A_FTYP - 1);
    upload_spec u = {.file_name = "big.m4a", .bytes = bytes, .len = MAX_BYTES + 1};
    rpc_result r;
    upload(&u, auth_a, &r);
    assert_error(&r, GRPC_STATUS_RESOURCE_EXHAUSTED, "SIZE_001");
    ck_assert_ptr_nonnull(strstr(r.message, "at most 3000000 bytes"));
    rpc_result_free(&r);
    assert_nothing_stored();

    /* Exactly the limit is fine. */
    u.len = MAX_BYTES;
    Tw__V1__VoiceNote *note = upload_ok(&u);
    ck_assert_uint_eq(note->size_bytes, MAX_BYTES);
    /* No audio after its first box (no moov): transcription fails, with a reason. */
    Tw__V1__VoiceNote *done = transcribed(note->id);
    ck_assert_int_eq(done->status, TW__V1__VOICE_NOTE_STATUS__VOICE_NOTE_STATUS_FAILED);
    ck_assert_ptr_nonnull(strstr(done->failure_reason, "cannot be transcribed"));
    free(bytes);
}
END_TEST

/* Waits (bounded) until the server has started writing: a file appears. */
static void wait_for_files(size_t n)
{
    for (int i = 0; i < 500 && blob_files() < n; i++)
        usleep(10 * 1000);
    ck_assert_uint_ge(blob_files(), n);
}

static void wait_for_no_files(void)
{
    for (int i = 0; i < 500 && blob_files() > 0; i++)
        usleep(10 * 1000);
    ck_assert_uint_eq(blob_files(), 0);
}

START_TEST(cancel_and_deadline_leave_nothing)
{
    vf_file wav = vf_read(VF_SPEECH_WAV);
    upload_spec u = {.file_name = "n.wav", .bytes = wav.bytes, .len = wav.len};
    rpc_stream *s = upload_open(&u, auth_a, TIMEOUT_MS);
    upload_send(s, &u, 0, 300000);
    wait_for_files(1); /* half-written audio in blob storage's temporary directory */
    rpc_stream_cancel(s);
    rpc_result r;
    rpc_stream_finish(s, &r);
    ck_assert_int_eq(r.status, GRPC_STATUS_CANCELLED);
    rpc_result_free(&r);
    wait_for_no_files();
    assert_nothing_stored();

    /* A deadline that passes mid-upload. */
    s = upload_open(&u, auth_a, 1500);
    upload_send(s, &u, 0, 300000);
    wait_for_files(1);
    rpc_stream_finish(s, &r);
    ck_assert_int_eq(r.status, GRPC_STATUS_DEADLINE_EXCEEDED);
    rpc_result_free(&r);
    wait_for_no_files();
    assert_nothing_stored();

    /* A server shutdown mid-upload: the engine cancels the call. */
    s = upload_open(&u, auth_a, TIMEOUT_MS);
    upload_send(s, &u, 0, 300000);
    wait_for_files(1);
    tw_engine_shutdown(engine, 0);
    rpc_stream_finish(s, &r);
    ck_assert_int_ne(r.status, GRPC_STATUS_OK);
    rpc_result_free(&r);
    wait_for_no_files();
    vf_free(&wav);
}
END_TEST

START_TEST(same_request_id_stores_once)
{
    vf_file f = vf_read(VF_SPEECH_MP3);
    upload_spec u = {.file_name = "a.mp3",
                     .request_id = "0190a6b2-0000-7000-8000-0000000000a2",
                     .bytes = f.bytes,
                     .len = f.len,
                     .chunk = 4096};
    Tw__V1__VoiceNote *first = upload_ok(&u);
    /* A retry is answered from its metadata, before it sends its audio. */
    rpc_stream *s = upload_open(&u, auth_a, TIMEOUT_MS);
    rpc_result r;
    rpc_stream_finish(s, &r);
    ck_assert_int_eq(r.status, GRPC_STATUS_OK);
    Tw__V1__UploadVoiceNoteResponse *again =
        keep((ProtobufCMessage *)tw__v1__upload_voice_note_response__unpack(NULL, r.response_len,
                                                                            r.response));
    rpc_result_free(&r);
    ck_assert_str_eq(again->voice_note->id, first->id);
    /* A full retry too. */
    ck_assert_str_eq(upload_ok(&u)->id, first->id);
    /* The same request_id with other metadata is refused, and stores nothing. */
    upload_spec other = u;
    other.file_name = "b.mp3";
    upload(&other, auth_a, &r);
    assert_error(&r, GRPC_STATUS_INVALID_ARGUMENT, "VAL_001");
    ck_assert_str_eq(r.message, "request_id: was already used for a different request");
    rpc_result_free(&r);

    /* Two uploads racing with one request_id: one note, one blob. */
    upload_spec race = u;
    race.request_id = "0190a6b2-0000-7000-8000-0000000000a3";
    rpc_stream *one = upload_open(&race, auth_a, TIMEOUT_MS);
    rpc_stream *two = upload_open(&race, auth_a, TIMEOUT_MS);
    upload_send(one, &race, 0, race.len);
    upload_send(two, &race, 0, race.len);
    rpc_stream_close_send(one);
    rpc_stream_close_send(two);
    rpc_result r1, r2;
    rpc_stream_finish(one, &r1);
    rpc_stream_finish(two, &r2);
    ck_assert_int_eq(r1.status, GRPC_STATUS_OK);
    ck_assert_int_eq(r2.status, GRPC_STATUS_OK);
    Tw__V1__UploadVoiceNoteResponse *a =
        keep((ProtobufCMessage *)tw__v1__upload_voice_note_response__unpack(NULL, r1.response_len,
                                                                            r1.response));
    Tw__V1__UploadVoiceNoteResponse *b =
        keep((ProtobufCMessage *)tw__v1__upload_voice_note_response__unpack(NULL, r2.response_len,
                                                                            r2.response));
    ck_assert_str_eq(a->voice_note->id, b->voice_note->id);
    rpc_result_free(&r1);
    rpc_result_free(&r2);

    /* The same request_id of another user is another note. */
    rpc_result rb;
    upload(&u, auth_b, &rb);
    ck_assert_int_eq(rb.status, GRPC_STATUS_OK);
    rpc_result_free(&rb);

    ck_assert_uint_eq(list_count(auth_a), 2);
    ck_assert_uint_eq(list_count(auth_b), 1);
    for (int i = 0; i < 500 && blob_files() != 3; i++)
        usleep(10 * 1000);
    ck_assert_uint_eq(blob_files(), 3);
    vf_free(&f);
}
END_TEST

/* The note's audio through DownloadVoiceNote, as the caller with md (at
 * most max bytes); NULL after asserting the call's error when it fails. */
static uint8_t *download(const char *id, const char *const *md, size_t max, size_t *len,
                         rpc_result *r)
{
    Tw__V1__DownloadVoiceNoteRequest req = TW__V1__DOWNLOAD_VOICE_NOTE_REQUEST__INIT;
    req.id = (char *)id;
    rpc_stream *s = rpc_stream_open_md(channel, SVC "DownloadVoiceNote", TIMEOUT_MS, md);
    rpc_stream_send(s, &req.base);
    rpc_stream_close_send(s);
    uint8_t *got = malloc(max + 1);
    *len = 0;
    Tw__V1__DownloadVoiceNoteResponse *m;
    while ((m = (void *)rpc_stream_recv(s, &tw__v1__download_voice_note_response__descriptor)) !=
           NULL) {
        ck_assert_uint_le(m->chunk.len, 256 * 1024);
        ck_assert_uint_le(*len + m->chunk.len, max);
        memcpy(got + *len, m->chunk.data, m->chunk.len);
        *len += m->chunk.len;
        protobuf_c_message_free_unpacked(&m->base, NULL);
    }
    rpc_stream_finish(s, r);
    if (r->status != GRPC_STATUS_OK) {
        free(got);
        return NULL;
    }
    return got;
}

/* Uploads bytes in chunks of chunk bytes and checks that the stored audio
 * is those bytes: size, SHA-256 and a download. */
static void assert_stored_exactly(const char *file_name, const uint8_t *bytes, size_t len,
                                  size_t chunk)
{
    upload_spec u = {.file_name = file_name, .bytes = bytes, .len = len, .chunk = chunk};
    Tw__V1__VoiceNote *note = upload_ok(&u);
    ck_assert_uint_eq(note->size_bytes, len);
    char sha[65];
    sha256_hex(bytes, len, sha);
    ck_assert_str_eq(note->sha256, sha);
    rpc_result r;
    size_t got_len;
    uint8_t *got = download(note->id, auth_a, len, &got_len, &r);
    ck_assert_int_eq(r.status, GRPC_STATUS_OK);
    rpc_result_free(&r);
    ck_assert_uint_eq(got_len, len);
    ck_assert(memcmp(got, bytes, len) == 0);
    free(got);
}

START_TEST(download_returns_the_exact_bytes)
{
    vf_file f = vf_read(VF_SPEECH_WAV);
    assert_stored_exactly("n.wav", f.bytes, f.len, 0);

    /* Another user's note does not exist. */
    upload_spec u = {.file_name = "n.wav", .bytes = f.bytes, .len = f.len};
    Tw__V1__VoiceNote *note = upload_ok(&u);
    rpc_result r;
    size_t len;
    ck_assert_ptr_null(download(note->id, auth_b, f.len, &len, &r));
    assert_error(&r, GRPC_STATUS_NOT_FOUND, "RES_001");
    rpc_result_free(&r);
    vf_free(&f);
}
END_TEST

/* The engine reads on while the voice pool writes: chunks of every size
 * (one byte at the start, odd sizes that straddle the write batches, the
 * largest allowed, which fill the backlog at once and pause the stream)
 * are all stored, in order. */
START_TEST(chunks_of_every_size_are_stored_in_order)
{
    size_t len = MAX_BYTES;
    uint8_t *bytes = malloc(len);
    memcpy(bytes, M4A_FTYP, sizeof M4A_FTYP - 1);
    uint32_t x = 2463534242u; /* xorshift32: bytes that differ everywhere */
    for (size_t i = sizeof M4A_FTYP - 1; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        bytes[i] = (uint8_t)x;
    }
    assert_stored_exactly("one.m4a", bytes, 20000, 1);
    assert_stored_exactly("odd.m4a", bytes, len, 7001);
    assert_stored_exactly("big.m4a", bytes, len, 1 << 20);
    free(bytes);
}
END_TEST

/* A WAV whose header goes wrong after a long chunk of other things: the
 * voice pool finds it while the engine reads on, and the upload ends with
 * the reason, at the client's next message or its end, keeping nothing. */
START_TEST(a_failure_while_writing_ends_the_upload_and_keeps_nothing)
{
    static const uint8_t header[] = "RIFF\0\0\0\0WAVE"
                                    "fmt \x10\0\0\0\1\0\1\0\x80\x3e\0\0\0\x7d\0\0\2\0\x10\0";
    static const uint8_t second_fmt[] = "fmt \x10\0\0\0";
    size_t len = 2 * 1024 * 1024, skipped = 600000;
    uint8_t *bytes = calloc(1, len);
    size_t at = sizeof header - 1;
    memcpy(bytes, header, at);
    /* A LIST chunk of skipped bytes, then a second fmt chunk. */
    memcpy(bytes + at, "LIST", 4);
    for (int i = 0; i < 4; i++) { /* sizes are little-endian */
        bytes[4 + i] = (uint8_t)((len - 8) >> (8 * i));
        bytes[at + 4 + i] = (uint8_t)(skipped >> (8 * i));
    }
    memcpy(bytes + at + 8 + skipped, second_fmt, sizeof second_fmt - 1);
    upload_spec u = {.file_name = "bad.wav", .bytes = bytes, .len = len};
    rpc_result r;
    upload(&u, auth_a, &r);
    assert_error(&r, GRPC_STATUS_INVALID_ARGUMENT, "VOICE_001");
    ck_assert_str_eq(r.message, "not a readable WAV file: WAV has two fmt chunks");
    rpc_result_free(&r);
    wait_for_no_files();
    assert_nothing_stored();
    free(bytes);
}
END_TEST

START_TEST(delete_removes_the_note_and_its_audio)
{
    vf_file f = vf_read(VF_SPEECH_MP3);
    upload_spec u = {.file_name = "a.mp3", .bytes = f.bytes, .len = f.len};
    Tw__V1__VoiceNote *note = upload_ok(&u);
    ck_assert(blob_exists(USER_A, note->id));
    Tw__V1__DeleteVoiceNoteRequest req = TW__V1__DELETE_VOICE_NOTE_REQUEST__INIT;
    req.id = note->id;
    rpc_result r;
    /* Not by another user. */
    unary(SVC "DeleteVoiceNote", &req.base, auth_b, &r);
    assert_error(&r, GRPC_STATUS_NOT_FOUND, "RES_001");
    rpc_result_free(&r);
    ck_assert(blob_exists(USER_A, note->id));

    unary(SVC "DeleteVoiceNote", &req.base, auth_a, &r);
    ck_assert_int_eq(r.status, GRPC_STATUS_OK);
    rpc_result_free(&r);
    ck_assert(!blob_exists(USER_A, note->id));
    get_note(note->id, auth_a, &r);
    assert_error(&r, GRPC_STATUS_NOT_FOUND, "RES_001");
    rpc_result_free(&r);
    unary(SVC "DeleteVoiceNote", &req.base, auth_a, &r);
    assert_error(&r, GRPC_STATUS_NOT_FOUND, "RES_001");
    rpc_result_free(&r);
    req.id = "not-a-uuid";
    unary(SVC "DeleteVoiceNote", &req.base, auth_a, &r);
    assert_error(&r, GRPC_STATUS_INVALID_ARGUMENT, "VAL_001");
    rpc_result_free(&r);
    assert_nothing_stored();

    /* The change log ends with the note's tombstone. */
    tw_arena *arena = tw_arena_new(4096);
    tw_id user;
    tw_id_parse(USER_A, &user);
    tw_change_page page;
    ck_assert_int_eq(tw_store_changelog_read(app.store, &user, 0, 100, arena, &page), TW_OK);
    ck_assert_int_eq(page.changes[page.count - 1].op, TW_CHANGE_TOMBSTONE);
    tw_arena_free(arena);
    vf_free(&f);
}
END_TEST

START_TEST(list_pages_filters_and_isolates_users)
{
    vf_file f = vf_read(VF_SPEECH_MP3);
    upload_spec u = {.file_name = "a.mp3", .bytes = f.bytes, .len = f.len};
    const char *ids[3];
    for (int i = 0; i < 3; i++)
        ids[i] = upload_ok(&u)->id;
    for (int i = 0; i < 3; i++)
        transcribed(ids[i]);

    Tw__V1__ListVoiceNotesRequest req = TW__V1__LIST_VOICE_NOTES_REQUEST__INIT;
    req.page_size = 2;
    rpc_result r;
    Tw__V1__ListVoiceNotesResponse *page = list_page(&req, auth_a);
    ck_assert_uint_eq(page->n_voice_notes, 2);
    ck_assert_str_eq(page->voice_notes[0]->id, ids[2]); /* newest first */
    ck_assert_str_eq(page->voice_notes[1]->id, ids[1]);
    ck_assert_str_ne(page->next_page_token, "");

    req.page_token = page->next_page_token;
    Tw__V1__ListVoiceNotesResponse *next = list_page(&req, auth_a);
    ck_assert_uint_eq(next->n_voice_notes, 1);
    ck_assert_str_eq(next->voice_notes[0]->id, ids[0]);
    ck_assert_str_eq(next->next_page_token, "");

    /* A token is for its user and its filter only. */
    unary(SVC "ListVoiceNotes", &req.base, auth_b, &r);
    assert_error(&r, GRPC_STATUS_INVALID_ARGUMENT, "VAL_003");
    rpc_result_free(&r);
    req.status = TW__V1__VOICE_NOTE_STATUS__VOICE_NOTE_STATUS_PENDING;
    unary(SVC "ListVoiceNotes", &req.base, auth_a, &r);
    assert_error(&r, GRPC_STATUS_INVALID_ARGUMENT, "VAL_003");
    rpc_result_free(&r);

    /* The status filter. */
    req.page_token = "";
    req.page_size = 0;
    Tw__V1__ListVoiceNotesResponse *pending = list_page(&req, auth_a);
    ck_assert_uint_eq(pending->n_voice_notes, 0);
    req.status = TW__V1__VOICE_NOTE_STATUS__VOICE_NOTE_STATUS_TRANSCRIBED;
    Tw__V1__ListVoiceNotesResponse *done = list_page(&req, auth_a);
    ck_assert_uint_eq(done->n_voice_notes, 3);
    req.status = 17;
    unary(SVC "ListVoiceNotes", &req.base, auth_a, &r);
    assert_error(&r, GRPC_STATUS_INVALID_ARGUMENT, "VAL_001");
    rpc_result_free(&r);

    /* User B sees none of them. */
    ck_assert_uint_eq(list_count(auth_b), 0);
    get_note(ids[0], auth_b, &r);
    assert_error(&r, GRPC_STATUS_NOT_FOUND, "RES_001");
    rpc_result_free(&r);
    Tw__V1__WatchVoiceNoteRequest w = TW__V1__WATCH_VOICE_NOTE_REQUEST__INIT;
    w.id = (char *)ids[0];
    rpc_stream *s = rpc_stream_open_md(channel, SVC "WatchVoiceNote", TIMEOUT_MS, auth_b);
    rpc_stream_send(s, &w.base);
    rpc_stream_close_send(s);
    ck_assert_ptr_null(rpc_stream_recv(s, &tw__v1__watch_voice_note_response__descriptor));
    rpc_stream_finish(s, &r);
    assert_error(&r, GRPC_STATUS_NOT_FOUND, "RES_001");
    rpc_result_free(&r);
    vf_free(&f);
}
END_TEST

START_TEST(retranscribe_starts_again_under_a_new_generation)
{
    vf_file f = vf_read(VF_LIBRIVOX_0880);
    upload_spec u = {.file_name = "n.wav", .bytes = f.bytes, .len = f.len};
    Tw__V1__VoiceNote *note = upload_ok(&u);
    Tw__V1__VoiceNote *first = transcribed(note->id);
    ck_assert_int_eq(first->status, TW__V1__VOICE_NOTE_STATUS__VOICE_NOTE_STATUS_TRANSCRIBED);

    Tw__V1__RetranscribeVoiceNoteRequest req = TW__V1__RETRANSCRIBE_VOICE_NOTE_REQUEST__INIT;
    req.id = note->id;
    req.language = "en";
    Tw__V1__VocabularyTerm term = TW__V1__VOCABULARY_TERM__INIT;
    term.phrase = "Dashwood";
    term.pronunciation = "D AE1 SH W UH2 D";
    Tw__V1__VocabularyTerm *terms[] = {&term};
    req.vocabulary = terms;
    req.n_vocabulary = 1;
    rpc_result r;
    unary(SVC "RetranscribeVoiceNote", &req.base, auth_a, &r);
    ck_assert_int_eq(r.status, GRPC_STATUS_OK);
    Tw__V1__RetranscribeVoiceNoteResponse *resp =
        keep((ProtobufCMessage *)tw__v1__retranscribe_voice_note_response__unpack(
            NULL, r.response_len, r.response));
    rpc_result_free(&r);
    ck_assert_int_eq(resp->voice_note->status,
                     TW__V1__VOICE_NOTE_STATUS__VOICE_NOTE_STATUS_PENDING);
    ck_assert_ptr_null(resp->voice_note->transcript);
    ck_assert_str_eq(resp->voice_note->language, "en");
    ck_assert_uint_eq(resp->voice_note->n_vocabulary, 1);
    Tw__V1__VoiceNote *second = transcribed(note->id);
    ck_assert_int_eq(second->status, TW__V1__VOICE_NOTE_STATUS__VOICE_NOTE_STATUS_TRANSCRIBED);
    ck_assert_str_eq(second->transcript->language, "en");

    /* Bad requests change nothing. */
    req.language = "fr-FR";
    unary(SVC "RetranscribeVoiceNote", &req.base, auth_a, &r);
    assert_error(&r, GRPC_STATUS_INVALID_ARGUMENT, "VAL_001");
    rpc_result_free(&r);
    req.language = "";
    term.pronunciation = "D AE XX";
    unary(SVC "RetranscribeVoiceNote", &req.base, auth_a, &r);
    assert_error(&r, GRPC_STATUS_INVALID_ARGUMENT, "VAL_001");
    ck_assert_str_eq(r.message, "vocabulary[0].pronunciation: \"XX\" is not an ARPAbet phone");
    rpc_result_free(&r);
    req.clear_vocabulary = true;
    unary(SVC "RetranscribeVoiceNote", &req.base, auth_a, &r);
    assert_error(&r, GRPC_STATUS_INVALID_ARGUMENT, "VAL_001");
    rpc_result_free(&r);
    Tw__V1__VoiceNote *still = get_note(note->id, auth_a, &r);
    rpc_result_free(&r);
    ck_assert_int_eq(still->status, TW__V1__VOICE_NOTE_STATUS__VOICE_NOTE_STATUS_TRANSCRIBED);
    vf_free(&f);
}
END_TEST

START_TEST(restart_during_transcription_finishes_the_job)
{
    vf_file f = vf_read(VF_SPEECH_WAV);
    upload_spec u = {.file_name = "long.wav", .bytes = f.bytes, .len = f.len};
    Tw__V1__VoiceNote *note = upload_ok(&u);
    ck_assert_int_eq(note->status, TW__V1__VOICE_NOTE_STATUS__VOICE_NOTE_STATUS_TRANSCRIBING);
    /* 25 s of speech take seconds to transcribe: stop in the middle, as
     * twd does on SIGTERM, and start again. */
    tw_voice_shutdown(app.voice);
    tw_voice_stats stats;
    tw_voice_get_stats(app.voice, &stats);
    ck_assert_uint_eq(stats.transcribed, 0);
    tw_voice_stop(app.voice);
    rpc_result r;
    get_note(note->id, auth_a, &r);
    assert_error(&r, GRPC_STATUS_UNAVAILABLE, "RPC_004"); /* while voice notes are stopped */
    rpc_result_free(&r);
    start_voice();
    Tw__V1__VoiceNote *stopped = get_note(note->id, auth_a, &r);
    rpc_result_free(&r);
    ck_assert_int_eq(stopped->status, TW__V1__VOICE_NOTE_STATUS__VOICE_NOTE_STATUS_TRANSCRIBING);
    Tw__V1__VoiceNote *done = transcribed(note->id);
    ck_assert_msg(done->status == TW__V1__VOICE_NOTE_STATUS__VOICE_NOTE_STATUS_TRANSCRIBED, "%s",
                  done->failure_reason);
    /* The whole recording, not the part heard before the stop. */
    ck_assert_uint_gt(done->transcript->n_words, 20);
    const Google__Protobuf__Duration *end =
        done->transcript->words[done->transcript->n_words - 1]->end_offset;
    ck_assert_int_ge(end->seconds, 20);
    vf_free(&f);
}
END_TEST

START_TEST(retention_sweep_deletes_old_notes_and_orphans)
{
    vf_file f = vf_read(VF_SPEECH_MP3);
    upload_spec u = {.file_name = "a.mp3", .bytes = f.bytes, .len = f.len};
    Tw__V1__VoiceNote *old = upload_ok(&u);
    transcribed(old->id);
    /* 89 days later: kept. */
    atomic_fetch_add(&clock_ahead_ms, INT64_C(89) * 24 * 3600 * 1000);
    Tw__V1__VoiceNote *young = upload_ok(&u);
    transcribed(young->id);
    tw_voice_sweep_stats stats;
    ck_assert_int_eq(tw_voice_sweep(app.voice, test_clock(NULL), &stats), TW_OK);
    ck_assert_uint_eq(stats.notes_deleted, 0);
    /* 91 days after the first. */
    atomic_fetch_add(&clock_ahead_ms, INT64_C(2) * 24 * 3600 * 1000);
    ck_assert_int_eq(tw_voice_sweep(app.voice, test_clock(NULL), &stats), TW_OK);
    ck_assert_uint_eq(stats.notes_deleted, 1);
    ck_assert(!blob_exists(USER_A, old->id));
    ck_assert(blob_exists(USER_A, young->id));
    rpc_result r;
    get_note(old->id, auth_a, &r);
    assert_error(&r, GRPC_STATUS_NOT_FOUND, "RES_001");
    rpc_result_free(&r);

    /* Deleting an account removes the user's keys but not this shared
     * index: the sweep drops such entries and still ends. */
    Tw__V1__VoiceNote *orphaned = upload_ok(&u);
    transcribed(orphaned->id);
    tw_id user, note_id;
    tw_id_parse(USER_A, &user);
    tw_id_parse(orphaned->id, &note_id);
    tw_txn *t;
    ck_assert_int_eq(tw_txn_begin(app.store, &t), TW_OK);
    tw_key k;
    tw_key_init(&k, TW_KF_VOICE_NOTE);
    tw_key_id(&k, &user);
    tw_key_id(&k, &note_id);
    ck_assert_int_eq(tw_txn_delete(t, &k), TW_OK);
    ck_assert_int_eq(tw_txn_commit(t), TW_OK);
    atomic_fetch_add(&clock_ahead_ms, INT64_C(91) * 24 * 3600 * 1000);
    ck_assert_int_eq(tw_voice_sweep(app.voice, test_clock(NULL), &stats), TW_OK);
    ck_assert_uint_eq(stats.notes_deleted, 1); /* young, now old too */
    /* and the audio the record left behind is an orphan by this clock */
    ck_assert_uint_eq(stats.orphans_deleted, 1);
    ck_assert(!blob_exists(USER_A, orphaned->id));
    tw_key_init(&k, TW_KF_VOICE_NOTE_BY_AGE);
    tw_store_iter *it;
    ck_assert_int_eq(tw_store_scan(app.store, &k, NULL, 0, false, &it), TW_OK);
    ck_assert(!tw_store_iter_next(it));
    ck_assert_int_eq(tw_store_iter_close(it), TW_OK);

    /* Audio a crash left without a note goes once it is an hour old. */
    tw_blob_writer *w;
    const char *orphan = USER_A "/0190a6b2-3333-7000-8000-000000000000";
    ck_assert_int_eq(tw_blob_writer_open(app.blobs, orphan, &w), TW_OK);
    ck_assert_int_eq(tw_blob_writer_append(w, "x", 1), TW_OK);
    ck_assert_int_eq(tw_blob_writer_commit(w), TW_OK);
    ck_assert_int_eq(tw_voice_sweep(app.voice, wall_ms(), &stats), TW_OK);
    ck_assert_uint_eq(stats.orphans_deleted, 0);
    ck_assert_int_eq(tw_voice_sweep(app.voice, wall_ms() + 2 * 3600 * 1000, &stats), TW_OK);
    ck_assert_uint_eq(stats.orphans_deleted, 1);
    ck_assert_uint_eq(blob_files(), 0);
    vf_free(&f);
}
END_TEST

/* Words of a line, split on white space, in out (at most max). */
static size_t split_words(char *line, char **out, size_t max)
{
    size_t n = 0;
    for (char *w = strtok(line, " \t\n"); w != NULL && n < max; w = strtok(NULL, " \t\n"))
        out[n++] = w;
    return n;
}

/* Word-level Levenshtein distance: substitutions, insertions, deletions. */
static size_t edit_distance(char **ref, size_t nref, char **hyp, size_t nhyp)
{
    size_t prev[256], cur[256];
    ck_assert_uint_lt(nhyp, 256);
    for (size_t j = 0; j <= nhyp; j++)
        prev[j] = j;
    for (size_t i = 1; i <= nref; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= nhyp; j++) {
            size_t sub = prev[j - 1] + (strcmp(ref[i - 1], hyp[j - 1]) != 0);
            size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, cur, (nhyp + 1) * sizeof *cur);
    }
    return prev[nhyp];
}

/* The five LibriVox recordings of pocketsphinx-testdata, uploaded and
 * transcribed by the default engine, against their reference transcripts:
 * the word error rate may be no worse than pocketsphinx_continuous's on the
 * same files plus 2 points. */
START_TEST(librivox_accuracy_matches_pocketsphinx_continuous)
{
    FILE *refs = fopen(VF_LIBRIVOX_DIR "/transcription", "r");
    ck_assert_ptr_nonnull(refs);
    char line[2048];
    size_t errors = 0, baseline_errors = 0, words = 0, files = 0;
    while (fgets(line, sizeof line, refs) != NULL) {
        /* "<s> words </s> (file-id)" */
        char *open = strrchr(line, '('), *close = strrchr(line, ')');
        ck_assert(open != NULL && close != NULL);
        *close = '\0';
        char path[512];
        snprintf(path, sizeof path, "%s/%s.wav", VF_LIBRIVOX_DIR, open + 1);
        *open = '\0';
        char *ref[256], *got[256], *base[256];
        size_t nref = 0;
        char *all[256];
        size_t n = split_words(line, all, 256);
        for (size_t i = 0; i < n; i++)
            if (strcmp(all[i], "<s>") != 0 && strcmp(all[i], "</s>") != 0)
                ref[nref++] = all[i];

        vf_file f = vf_read(path);
        upload_spec u = {.file_name = "librivox.wav", .bytes = f.bytes, .len = f.len};
        Tw__V1__VoiceNote *done = transcribed(upload_ok(&u)->id);
        ck_assert_int_eq(done->status, TW__V1__VOICE_NOTE_STATUS__VOICE_NOTE_STATUS_TRANSCRIBED);
        char ours[2048], theirs[2048];
        snprintf(ours, sizeof ours, "%s", done->transcript->text);
        snprintf(theirs, sizeof theirs, "%s", baseline(path));
        size_t nours = split_words(ours, got, 256), ntheirs = split_words(theirs, base, 256);
        errors += edit_distance(ref, nref, got, nours);
        baseline_errors += edit_distance(ref, nref, base, ntheirs);
        words += nref;
        files++;
        vf_free(&f);
    }
    fclose(refs);
    ck_assert_uint_eq(files, 5);
    double wer = 100.0 * (double)errors / (double)words;
    double baseline_wer = 100.0 * (double)baseline_errors / (double)words;
    fprintf(stderr,
            "librivox WER: UploadVoiceNote + pocketsphinx engine %.2f%% (%zu/%zu), "
            "pocketsphinx_continuous %.2f%% (%zu/%zu)\n",
            wer, errors, words, baseline_wer, baseline_errors, words);
    ck_assert_msg(wer <= baseline_wer + 2.0, "WER %.2f%% is worse than %.2f%% + 2", wer,
                  baseline_wer);
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("voice_service");
    TCase *tc = tcase_create("voice");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_checked_fixture(tc, NULL, free_kept);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, wav_is_stored_and_transcribed_while_it_streams);
    tcase_add_test(tc, every_format_is_accepted_and_transcribed);
    tcase_add_test(tc, wrong_formats_are_refused_and_nothing_is_stored);
    tcase_add_test(tc, malformed_streams_are_refused);
    tcase_add_test(tc, size_limit_refuses_one_byte_more_and_keeps_nothing);
    tcase_add_test(tc, cancel_and_deadline_leave_nothing);
    tcase_add_test(tc, same_request_id_stores_once);
    tcase_add_test(tc, download_returns_the_exact_bytes);
    tcase_add_test(tc, chunks_of_every_size_are_stored_in_order);
    tcase_add_test(tc, a_failure_while_writing_ends_the_upload_and_keeps_nothing);
    tcase_add_test(tc, delete_removes_the_note_and_its_audio);
    tcase_add_test(tc, list_pages_filters_and_isolates_users);
    tcase_add_test(tc, retranscribe_starts_again_under_a_new_generation);
    tcase_add_test(tc, restart_during_transcription_finishes_the_job);
    tcase_add_test(tc, retention_sweep_deletes_old_notes_and_orphans);
    tcase_add_test(tc, librivox_accuracy_matches_pocketsphinx_continuous);
    suite_add_tcase(s, tc);
    return s;
}

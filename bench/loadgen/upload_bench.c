/*
 * tw-upload-bench: voice-note uploads as fast as a client can stream them.
 *
 *   tw-upload-bench [options] HOST:PORT
 *
 * Starts -n uploads at once, each on a connection of its own (as separate
 * phones would), each streaming one UploadVoiceNoteRequest with metadata
 * and then -s bytes of audio in -k byte chunks, one message in flight at a
 * time (the client waits for each write, so HTTP/2 flow control paces it),
 * and then waits for the answer. -r repeats that per connection. The audio
 * is a real recording repeated to the size: MP3 frames (--payload mp3) or
 * 16-bit PCM under a WAV header (--payload wav).
 *
 * Output: one JSON line on stdout: bytes moved, the wall time from the
 * first upload's start to the last one's answer, MB/s (10^6 bytes), each
 * upload's time, and the gRPC status of each. Statuses other than OK are
 * counted, never hidden. Exit 0 when the run took place, 1 when the target
 * could not be reached, 2 on bad arguments.
 */
#include "tw/v1/voice_service.pb-c.h"
#include "tw_grpc.h"
#include "tw_id.h"

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_SIZE   (25 * 1024 * 1024)
#define DEFAULT_CHUNK  (64 * 1024)
#define METHOD         "/tw.v1.VoiceService/UploadVoiceNote"
#define MAX_HEADERS    8
#define CALL_TIMEOUT_S 600

struct options {
    const char *target;
    int streams, rounds;
    size_t size, chunk;
    const char *payload; /* "mp3" or "wav" */
    const char *audio_dir;
    const char *headers[MAX_HEADERS][2];
    int nheaders;
};

struct upload_result {
    grpc_status_code status;
    double ms;
};

struct worker {
    const struct options *o;
    const uint8_t *payload;
    int index;
    pthread_t thread;
    struct upload_result *results; /* o->rounds of them */
};

static pthread_barrier_t start_line;
static atomic_int connect_failures;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    uint8_t *bytes = n > 0 ? malloc((size_t)n) : NULL;
    if (bytes != NULL && fread(bytes, 1, (size_t)n, f) != (size_t)n) {
        free(bytes);
        bytes = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return bytes;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8), p[2] = (uint8_t)(v >> 16),
    p[3] = (uint8_t)(v >> 24);
}

/* The audio every upload sends: a recording repeated to `size` bytes. */
static uint8_t *make_payload(const struct options *o)
{
    char path[1024];
    bool wav = strcmp(o->payload, "wav") == 0;
    snprintf(path, sizeof path, "%s/%s", o->audio_dir, wav ? "speech-44k.wav" : "speech.mp3");
    size_t len;
    uint8_t *source = read_file(path, &len);
    if (source == NULL || (wav && len <= 44)) {
        fprintf(stderr, "tw-upload-bench: cannot read %s\n", path);
        free(source);
        return NULL;
    }
    uint8_t *out = malloc(o->size);
    if (out == NULL) {
        free(source);
        return NULL;
    }
    size_t head = 0;
    const uint8_t *body = source;
    size_t body_len = len;
    if (wav) {
        /* The recording's 44-byte header, sized for the whole payload, then
         * its samples again and again. */
        memcpy(out, source, 44);
        put32(out + 4, (uint32_t)(o->size - 8));
        put32(out + 40, (uint32_t)(o->size - 44));
        head = 44;
        body = source + 44;
        body_len = (len - 44) & ~(size_t)1;
    }
    for (size_t off = head; off < o->size; off += body_len) {
        size_t n = o->size - off < body_len ? o->size - off : body_len;
        memcpy(out + off, body, n);
    }
    free(source);
    return out;
}

static bool run_batch(grpc_completion_queue *cq, grpc_call *call, const grpc_op *ops, size_t n)
{
    int tag;
    if (grpc_call_start_batch(call, ops, n, &tag, NULL) != GRPC_CALL_OK)
        return false;
    grpc_event ev = grpc_completion_queue_pluck(cq, &tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    return ev.type == GRPC_OP_COMPLETE && ev.success;
}

static bool send_message(grpc_completion_queue *cq, grpc_call *call, const ProtobufCMessage *m)
{
    size_t size = protobuf_c_message_get_packed_size(m);
    grpc_slice slice = grpc_slice_malloc(size);
    protobuf_c_message_pack(m, GRPC_SLICE_START_PTR(slice));
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&slice, 1);
    grpc_slice_unref(slice);
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_SEND_MESSAGE;
    op.data.send_message.send_message = bb;
    bool ok = run_batch(cq, call, &op, 1);
    grpc_byte_buffer_destroy(bb);
    return ok;
}

/* One upload on channel; its status. */
static grpc_status_code upload_once(const struct worker *w, grpc_channel *channel, int round)
{
    const struct options *o = w->o;
    grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
    gpr_timespec deadline = gpr_time_add(gpr_now(GPR_CLOCK_REALTIME),
                                         gpr_time_from_seconds(CALL_TIMEOUT_S, GPR_TIMESPAN));
    grpc_call *call =
        grpc_channel_create_call(channel, NULL, GRPC_PROPAGATE_DEFAULTS, cq,
                                 grpc_slice_from_static_string(METHOD), NULL, deadline, NULL);
    grpc_metadata md[MAX_HEADERS];
    for (int i = 0; i < o->nheaders; i++) {
        md[i].key = grpc_slice_from_static_string(o->headers[i][0]);
        md[i].value = grpc_slice_from_static_string(o->headers[i][1]);
    }
    grpc_metadata_array initial, trailing;
    grpc_metadata_array_init(&initial);
    grpc_metadata_array_init(&trailing);
    grpc_status_code status = GRPC_STATUS_UNKNOWN;
    grpc_slice details = grpc_empty_slice();
    grpc_byte_buffer *response = NULL;
    grpc_op ops[4];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].data.send_initial_metadata.count = (size_t)o->nheaders;
    ops[0].data.send_initial_metadata.metadata = md;
    bool ok = run_batch(cq, call, ops, 1);

    /* Each upload its own request_id, a UUID as twd requires. */
    char request_id[TW_ID_TEXT_SIZE], file_name[32];
    tw_id id = tw_id_new();
    tw_id_format(&id, request_id);
    snprintf(file_name, sizeof file_name, "bench.%s", o->payload);
    Tw__V1__VoiceNoteMetadata meta = TW__V1__VOICE_NOTE_METADATA__INIT;
    meta.request_id = request_id;
    meta.file_name = file_name;
    Tw__V1__UploadVoiceNoteRequest req = TW__V1__UPLOAD_VOICE_NOTE_REQUEST__INIT;
    req.content_case = TW__V1__UPLOAD_VOICE_NOTE_REQUEST__CONTENT_METADATA;
    req.metadata = &meta;
    ok = ok && send_message(cq, call, &req.base);
    req.content_case = TW__V1__UPLOAD_VOICE_NOTE_REQUEST__CONTENT_CHUNK;
    for (size_t off = 0; ok && off < o->size; off += o->chunk) {
        size_t n = o->size - off < o->chunk ? o->size - off : o->chunk;
        req.chunk = (ProtobufCBinaryData){n, (uint8_t *)w->payload + off};
        ok = send_message(cq, call, &req.base); /* false: the server ended the call */
    }
    memset(ops, 0, sizeof ops);
    size_t n = 0;
    if (ok)
        ops[n++].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[n++].data.recv_initial_metadata.recv_initial_metadata = &initial;
    ops[n].op = GRPC_OP_RECV_MESSAGE;
    ops[n++].data.recv_message.recv_message = &response;
    ops[n].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[n].data.recv_status_on_client.trailing_metadata = &trailing;
    ops[n].data.recv_status_on_client.status = &status;
    ops[n++].data.recv_status_on_client.status_details = &details;
    run_batch(cq, call, ops, n);
    if (status != GRPC_STATUS_OK && w->index == 0 && round == 0) {
        char *text = grpc_slice_to_c_string(details);
        fprintf(stderr, "tw-upload-bench: upload failed with status %d: %s\n", status, text);
        gpr_free(text);
    }
    if (response != NULL)
        grpc_byte_buffer_destroy(response);
    grpc_slice_unref(details);
    grpc_metadata_array_destroy(&initial);
    grpc_metadata_array_destroy(&trailing);
    grpc_call_unref(call);
    grpc_completion_queue_shutdown(cq);
    while (grpc_completion_queue_pluck(cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
           GRPC_QUEUE_SHUTDOWN)
        ;
    grpc_completion_queue_destroy(cq);
    return status;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    /* A channel of its own, kept apart from the others' connections. */
    grpc_arg args[] = {
        {.type = GRPC_ARG_INTEGER, .key = "grpc.channel_id", .value.integer = w->index},
        {.type = GRPC_ARG_INTEGER,
         .key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
         .value.integer = -1}};
    grpc_channel_args channel_args = {2, args};
    grpc_channel *channel = grpc_channel_create(w->o->target, creds, &channel_args);
    grpc_channel_credentials_release(creds);
    /* Connected before the clock starts. */
    grpc_connectivity_state state = grpc_channel_check_connectivity_state(channel, 1);
    gpr_timespec give_up =
        gpr_time_add(gpr_now(GPR_CLOCK_REALTIME), gpr_time_from_seconds(5, GPR_TIMESPAN));
    grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
    while (state != GRPC_CHANNEL_READY && gpr_time_cmp(gpr_now(GPR_CLOCK_REALTIME), give_up) < 0) {
        grpc_channel_watch_connectivity_state(channel, state, give_up, cq, NULL);
        grpc_completion_queue_pluck(cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        state = grpc_channel_check_connectivity_state(channel, 1);
    }
    grpc_completion_queue_shutdown(cq);
    grpc_completion_queue_destroy(cq);
    if (state != GRPC_CHANNEL_READY)
        atomic_fetch_add(&connect_failures, 1);
    pthread_barrier_wait(&start_line);
    for (int r = 0; r < w->o->rounds && state == GRPC_CHANNEL_READY; r++) {
        double start = now_ms();
        w->results[r].status = upload_once(w, channel, r);
        w->results[r].ms = now_ms() - start;
    }
    grpc_channel_destroy(channel);
    return NULL;
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: tw-upload-bench [options] HOST:PORT\n"
            "  -n N           uploads at once, each on its own connection (1)\n"
            "  -r N           uploads one after another per connection (1)\n"
            "  -s BYTES       bytes of audio per upload (%d)\n"
            "  -k BYTES       bytes per chunk message (%d)\n"
            "  -H 'key: val'  request metadata (repeatable), e.g. authorization\n"
            "  --payload mp3|wav   MP3 frames or WAV PCM, repeated (mp3)\n"
            "  --audio-dir DIR     where speech.mp3 and speech-44k.wav are (build/test_audio)\n",
            DEFAULT_SIZE, DEFAULT_CHUNK);
}

static bool parse_size(const char *text, size_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno || end == text || *end || v == 0)
        return false;
    *out = (size_t)v;
    return true;
}

int main(int argc, char **argv)
{
    struct options o = {.streams = 1,
                        .rounds = 1,
                        .size = DEFAULT_SIZE,
                        .chunk = DEFAULT_CHUNK,
                        .payload = "mp3",
                        .audio_dir = "build/test_audio"};
    static char header_copy[MAX_HEADERS][512];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        size_t n;
        if (strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (a[0] != '-') {
            o.target = a;
            continue;
        } else if (v == NULL) {
            usage(stderr);
            return 2;
        } else if (strcmp(a, "-n") == 0 && parse_size(v, &n) && n <= 1024) {
            o.streams = (int)n;
        } else if (strcmp(a, "-r") == 0 && parse_size(v, &n) && n <= 100000) {
            o.rounds = (int)n;
        } else if (strcmp(a, "-s") == 0 && parse_size(v, &n)) {
            o.size = n;
        } else if (strcmp(a, "-k") == 0 && parse_size(v, &n)) {
            o.chunk = n;
        } else if (strcmp(a, "--payload") == 0 && (!strcmp(v, "mp3") || !strcmp(v, "wav"))) {
            o.payload = v;
        } else if (strcmp(a, "--audio-dir") == 0) {
            o.audio_dir = v;
        } else if (strcmp(a, "-H") == 0 && o.nheaders < MAX_HEADERS && strchr(v, ':')) {
            char *h = header_copy[o.nheaders];
            snprintf(h, sizeof header_copy[0], "%s", v);
            char *colon = strchr(h, ':');
            *colon = '\0';
            char *value = colon + 1;
            while (*value == ' ')
                value++;
            for (char *p = h; *p; p++)
                if (*p >= 'A' && *p <= 'Z')
                    *p = (char)(*p - 'A' + 'a');
            o.headers[o.nheaders][0] = h;
            o.headers[o.nheaders][1] = value;
            o.nheaders++;
        } else {
            usage(stderr);
            return 2;
        }
        i++;
    }
    if (o.target == NULL) {
        usage(stderr);
        return 2;
    }
    uint8_t *payload = make_payload(&o);
    if (payload == NULL)
        return 2;

    tw_grpc_init();
    struct worker *workers = calloc((size_t)o.streams, sizeof *workers);
    pthread_barrier_init(&start_line, NULL, (unsigned)o.streams + 1);
    for (int i = 0; i < o.streams; i++) {
        workers[i] = (struct worker){&o, payload, i, 0,
                                     calloc((size_t)o.rounds, sizeof(struct upload_result))};
        pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]);
    }
    pthread_barrier_wait(&start_line);
    double start = now_ms();
    for (int i = 0; i < o.streams; i++)
        pthread_join(workers[i].thread, NULL);
    double elapsed = now_ms() - start;
    int rc = atomic_load(&connect_failures) ? 1 : 0;
    if (rc)
        fprintf(stderr, "tw-upload-bench: %d connections to %s failed\n",
                atomic_load(&connect_failures), o.target);

    size_t total = (size_t)o.streams * (size_t)o.rounds, ok = 0;
    int statuses[17] = {0};
    double *times = calloc(total, sizeof *times);
    for (int i = 0; i < o.streams; i++)
        for (int r = 0; r < o.rounds; r++) {
            struct upload_result *u = &workers[i].results[r];
            times[(size_t)i * (size_t)o.rounds + (size_t)r] = u->ms;
            if ((unsigned)u->status <= 16)
                statuses[u->status]++;
            ok += u->status == GRPC_STATUS_OK;
        }
    qsort(times, total, sizeof *times, compare_double);
    double bytes = (double)o.size * (double)ok;
    printf("{\"tool\":\"tw-upload-bench\",\"target\":\"%s\",\"payload\":\"%s\",\"streams\":%d,"
           "\"rounds\":%d,\"bytes_per_upload\":%zu,\"chunk_bytes\":%zu,\"uploads\":%zu,"
           "\"ok\":%zu,\"seconds\":%.3f,\"mb_per_s\":%.1f,"
           "\"upload_ms\":{\"min\":%.1f,\"p50\":%.1f,\"max\":%.1f},\"status\":{",
           o.target, o.payload, o.streams, o.rounds, o.size, o.chunk, total, ok, elapsed / 1e3,
           bytes / 1e6 / (elapsed / 1e3), times[0], times[total / 2], times[total - 1]);
    bool first = true;
    for (int s = 0; s <= 16; s++)
        if (statuses[s]) {
            printf("%s\"%d\":%d", first ? "" : ",", s, statuses[s]);
            first = false;
        }
    printf("}}\n");
    for (int i = 0; i < o.streams; i++)
        free(workers[i].results);
    free(workers);
    free(times);
    free(payload);
    pthread_barrier_destroy(&start_line);
    grpc_shutdown();
    return rc;
}

/*
 * Closed-loop unary load on the gRPC core client API (see loadgen_run.h).
 *
 * Every call slot belongs to one worker thread and its completion queue for
 * the whole run, so a call is only ever touched by one thread and workers
 * share nothing mutable: each keeps its own histogram and counts, merged
 * after the threads are joined. Slots are spread round-robin over the
 * channels; each channel has its own subchannel pool, hence its own TCP
 * connection, which is what -m promises.
 */
#include "loadgen_run.h"
#include "tw_grpc.h"

#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NS_PER_S INT64_C(1000000000)
/* After the measured window, calls still in flight get this long to finish
 * (they are not counted) before they are cancelled, so a hung server cannot
 * hang the tool. */
#define DRAIN_GRACE_NS (5 * NS_PER_S)
/* How often an idle worker wakes to look at the clock. */
#define POLL_INTERVAL_MS  100
#define OTHER_STATUS_SLOT (LOAD_STATUS_SLOTS - 1)

struct channel {
    grpc_channel *channel;
    void *method_handle; /* from grpc_channel_register_call: no per-call path parsing */
};

/* Read-only while the workers run. */
struct plan {
    grpc_slice request;
    grpc_metadata *metadata; /* variants of metadata_count entries each */
    size_t metadata_count;
    int64_t deadline_ns;     /* 0: none */
    int64_t measure_from_ns; /* CLOCK_MONOTONIC */
    int64_t measure_until_ns;
};

/* One call at a time; the slot is the completion queue tag. */
struct call_slot {
    const struct channel *channel;
    const grpc_metadata *metadata; /* the plan's variant this slot sends */
    grpc_call *call;               /* NULL while idle */
    grpc_byte_buffer *request;
    grpc_byte_buffer *response;
    grpc_metadata_array initial_metadata;
    grpc_metadata_array trailing_metadata;
    grpc_status_code status;
    grpc_slice details;
    int64_t started_ns;
};

struct worker {
    pthread_t thread;
    bool thread_started;
    bool failed;
    struct plan *plan;
    grpc_completion_queue *cq;
    struct call_slot *slots;
    size_t slot_count;
    size_t in_flight;
    histogram *latency;
    uint64_t calls;
    uint64_t status_counts[LOAD_STATUS_SLOTS];
    char *status_example[LOAD_STATUS_SLOTS];
};

static const char *const connectivity_names[] = {
    [GRPC_CHANNEL_IDLE] = "IDLE",         [GRPC_CHANNEL_CONNECTING] = "CONNECTING",
    [GRPC_CHANNEL_READY] = "READY",       [GRPC_CHANNEL_TRANSIENT_FAILURE] = "TRANSIENT_FAILURE",
    [GRPC_CHANNEL_SHUTDOWN] = "SHUTDOWN",
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

static gpr_timespec deadline_in_ns(int64_t ns)
{
    return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_nanos(ns, GPR_TIMESPAN));
}

/* Empties a queue nothing is pending on any more and destroys it. */
static void destroy_queue(grpc_completion_queue *cq)
{
    grpc_completion_queue_shutdown(cq);
    while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
           GRPC_QUEUE_SHUTDOWN)
        ;
    grpc_completion_queue_destroy(cq);
}

static bool call_start(struct worker *w, struct call_slot *s)
{
    const struct plan *p = w->plan;
    gpr_timespec deadline =
        p->deadline_ns ? deadline_in_ns(p->deadline_ns) : gpr_inf_future(GPR_CLOCK_MONOTONIC);
    s->call =
        grpc_channel_create_registered_call(s->channel->channel, NULL, GRPC_PROPAGATE_DEFAULTS,
                                            w->cq, s->channel->method_handle, deadline, NULL);
    if (!s->call) {
        fprintf(stderr, "tw-loadgen: gRPC could not create a call\n");
        return false;
    }
    /* Core may take the slices out of a byte buffer it sends, so each call
     * gets its own buffer, sharing the request bytes by reference. */
    s->request = grpc_raw_byte_buffer_create(&w->plan->request, 1);
    s->response = NULL;
    s->status = GRPC_STATUS_UNKNOWN;
    s->details = grpc_empty_slice();
    grpc_metadata_array_init(&s->initial_metadata);
    grpc_metadata_array_init(&s->trailing_metadata);

    grpc_op ops[6];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].data.send_initial_metadata.count = p->metadata_count;
    ops[0].data.send_initial_metadata.metadata = (grpc_metadata *)s->metadata;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = s->request;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &s->initial_metadata;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &s->response;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &s->trailing_metadata;
    ops[5].data.recv_status_on_client.status = &s->status;
    ops[5].data.recv_status_on_client.status_details = &s->details;

    s->started_ns = now_ns();
    grpc_call_error rc = grpc_call_start_batch(s->call, ops, sizeof ops / sizeof ops[0], s, NULL);
    if (rc != GRPC_CALL_OK) {
        fprintf(stderr, "tw-loadgen: gRPC refused the call: %s\n", grpc_call_error_to_string(rc));
        grpc_metadata_array_destroy(&s->initial_metadata);
        grpc_metadata_array_destroy(&s->trailing_metadata);
        grpc_byte_buffer_destroy(s->request);
        grpc_call_unref(s->call);
        s->call = NULL;
        return false;
    }
    w->in_flight++;
    return true;
}

static char *copy_slice(grpc_slice slice)
{
    size_t len = GRPC_SLICE_LENGTH(slice);
    char *text = malloc(len + 1);
    if (text) {
        memcpy(text, GRPC_SLICE_START_PTR(slice), len);
        text[len] = '\0';
    }
    return text;
}

/* Counts a completed call when it completed inside the measured window,
 * then releases everything the call held. */
static void call_finish(struct worker *w, struct call_slot *s, int64_t now)
{
    if (now >= w->plan->measure_from_ns && now < w->plan->measure_until_ns) {
        size_t slot =
            s->status >= 0 && s->status < OTHER_STATUS_SLOT ? (size_t)s->status : OTHER_STATUS_SLOT;
        histogram_record(w->latency, (uint64_t)(now - s->started_ns));
        w->calls++;
        w->status_counts[slot]++;
        if (s->status != GRPC_STATUS_OK && !w->status_example[slot])
            w->status_example[slot] = copy_slice(s->details);
    }
    grpc_byte_buffer_destroy(s->request);
    if (s->response)
        grpc_byte_buffer_destroy(s->response);
    grpc_metadata_array_destroy(&s->initial_metadata);
    grpc_metadata_array_destroy(&s->trailing_metadata);
    grpc_slice_unref(s->details);
    grpc_call_unref(s->call);
    s->call = NULL;
    w->in_flight--;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    for (size_t i = 0; i < w->slot_count && !w->failed; i++)
        w->failed = !call_start(w, &w->slots[i]);
    int64_t stop_issuing_at = w->failed ? now_ns() : w->plan->measure_until_ns;
    bool cancelled = false;
    while (w->in_flight > 0) {
        grpc_event ev = grpc_completion_queue_next(
            w->cq, deadline_in_ns(POLL_INTERVAL_MS * INT64_C(1000000)), NULL);
        int64_t now = now_ns();
        if (ev.type == GRPC_OP_COMPLETE) {
            struct call_slot *s = ev.tag;
            call_finish(w, s, now);
            if (now < stop_issuing_at && !call_start(w, s)) {
                w->failed = true;
                stop_issuing_at = now;
            }
        }
        if (!cancelled && now >= stop_issuing_at + DRAIN_GRACE_NS) {
            for (size_t i = 0; i < w->slot_count; i++)
                if (w->slots[i].call)
                    grpc_call_cancel(w->slots[i].call, NULL);
            cancelled = true;
        }
    }
    return NULL;
}

static grpc_channel *open_channel(const char *target)
{
    grpc_arg args[] = {
        /* Without it channels with equal arguments share one connection. */
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, .value.integer = 1},
        /* A load tool must see every failure, not have it retried away. */
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_ENABLE_RETRIES, .value.integer = 0},
        {.type = GRPC_ARG_STRING,
         .key = GRPC_ARG_PRIMARY_USER_AGENT_STRING,
         .value.string = "tw-loadgen"},
    };
    grpc_channel_args channel_args = {sizeof args / sizeof args[0], args};
    grpc_channel_credentials *credentials = grpc_insecure_credentials_create();
    grpc_channel *channel = grpc_channel_create(target, credentials, &channel_args);
    grpc_channel_credentials_release(credentials);
    return channel;
}

/* Connects every channel before the clock starts, so that connection
 * set-up is not measured and an unreachable target is an error rather than
 * a run full of UNAVAILABLE. */
static bool connect_all(struct channel *channels, unsigned count, const struct load_spec *spec)
{
    grpc_completion_queue *cq = grpc_completion_queue_create_for_next(NULL);
    gpr_timespec deadline = deadline_in_ns((int64_t)(spec->connect_timeout_s * (double)NS_PER_S));
    bool ready = true;
    for (unsigned i = 0; i < count; i++)
        grpc_channel_check_connectivity_state(channels[i].channel, 1);
    for (unsigned i = 0; i < count && ready; i++) {
        grpc_connectivity_state state;
        while (ready && (state = grpc_channel_check_connectivity_state(channels[i].channel, 1)) !=
                            GRPC_CHANNEL_READY) {
            grpc_channel_watch_connectivity_state(channels[i].channel, state, deadline, cq, NULL);
            ready =
                grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).success !=
                0;
            if (!ready)
                fprintf(stderr, "tw-loadgen: cannot reach %s: connection %u still %s after %g s\n",
                        spec->target, i + 1, connectivity_names[state], spec->connect_timeout_s);
        }
    }
    destroy_queue(cq);
    return ready;
}

/* Moves what a joined worker measured into the result. */
static void merge_worker(struct load_result *result, struct worker *w)
{
    histogram_merge(result->latency, w->latency);
    result->calls += w->calls;
    for (size_t i = 0; i < LOAD_STATUS_SLOTS; i++) {
        result->status_counts[i] += w->status_counts[i];
        if (!result->status_example[i]) {
            result->status_example[i] = w->status_example[i];
            w->status_example[i] = NULL;
        }
    }
}

static void release_worker(struct worker *w)
{
    if (w->cq)
        destroy_queue(w->cq);
    histogram_destroy(w->latency);
    for (size_t i = 0; i < LOAD_STATUS_SLOTS; i++)
        free(w->status_example[i]);
}

enum load_outcome load_run(const struct load_spec *spec, struct load_result *result)
{
    enum load_outcome outcome = LOAD_FAILED;
    struct plan plan = {.deadline_ns = (int64_t)(spec->deadline_s * (double)NS_PER_S)};
    memset(result, 0, sizeof *result);
    tw_grpc_init();
    struct channel *channels = calloc(spec->channels, sizeof *channels);
    struct worker *workers = calloc(spec->threads, sizeof *workers);
    struct call_slot *slots = calloc(spec->concurrency, sizeof *slots);
    /* One variant per slot header (or one without): the common headers,
     * then that slot header. */
    size_t variants = spec->slot_header_count ? spec->slot_header_count : 1;
    size_t per_variant = spec->header_count + (spec->slot_header_count ? 1 : 0);
    size_t metadata_len = variants * per_variant;
    grpc_metadata *metadata = calloc(metadata_len + 1, sizeof *metadata);
    result->latency = histogram_create();
    if (!channels || !workers || !slots || !metadata || !result->latency) {
        fprintf(stderr, "tw-loadgen: out of memory\n");
        goto out;
    }

    plan.request = grpc_slice_from_copied_buffer((const char *)spec->request, spec->request_len);
    for (size_t v = 0; v < variants; v++) {
        grpc_metadata *row = metadata + v * per_variant;
        for (size_t i = 0; i < per_variant; i++) {
            const struct load_header *h =
                i < spec->header_count ? &spec->headers[i] : &spec->slot_headers[v];
            row[i].key = grpc_slice_from_copied_string(h->key);
            row[i].value = grpc_slice_from_copied_string(h->value);
        }
    }
    plan.metadata = metadata;
    plan.metadata_count = per_variant;

    for (unsigned i = 0; i < spec->channels; i++) {
        channels[i].channel = open_channel(spec->target);
        channels[i].method_handle =
            grpc_channel_register_call(channels[i].channel, spec->method, NULL, NULL);
    }
    if (!connect_all(channels, spec->channels, spec)) {
        outcome = LOAD_UNREACHABLE;
        goto out;
    }

    for (unsigned t = 0; t < spec->threads; t++) {
        struct worker *w = &workers[t];
        size_t first = (size_t)spec->concurrency * t / spec->threads;
        size_t end = (size_t)spec->concurrency * (t + 1) / spec->threads;
        w->plan = &plan;
        w->slots = &slots[first];
        w->slot_count = end - first;
        w->cq = grpc_completion_queue_create_for_next(NULL);
        w->latency = histogram_create();
        if (!w->latency) {
            fprintf(stderr, "tw-loadgen: out of memory\n");
            goto out;
        }
        for (size_t i = first; i < end; i++) {
            slots[i].channel = &channels[i % spec->channels];
            slots[i].metadata = metadata + (i % variants) * per_variant;
        }
    }
    plan.measure_from_ns = now_ns() + (int64_t)(spec->warmup_s * (double)NS_PER_S);
    plan.measure_until_ns = plan.measure_from_ns + (int64_t)(spec->duration_s * (double)NS_PER_S);

    /* A worker that fails to start leaves its slots idle; the others still
     * run to their end (bounded), are joined, and the run reports failure. */
    bool all_ran = true;
    for (unsigned t = 0; t < spec->threads; t++) {
        workers[t].thread_started =
            pthread_create(&workers[t].thread, NULL, worker_main, &workers[t]) == 0;
        if (!workers[t].thread_started) {
            fprintf(stderr, "tw-loadgen: cannot start worker thread %u\n", t + 1);
            all_ran = false;
        }
    }
    for (unsigned t = 0; t < spec->threads; t++) {
        if (workers[t].thread_started)
            pthread_join(workers[t].thread, NULL);
        all_ran = all_ran && !workers[t].failed;
        merge_worker(result, &workers[t]);
    }
    outcome = all_ran ? LOAD_COMPLETED : LOAD_FAILED;

out:
    for (unsigned t = 0; workers && t < spec->threads; t++)
        release_worker(&workers[t]);
    for (unsigned i = 0; channels && i < spec->channels; i++)
        if (channels[i].channel)
            grpc_channel_destroy(channels[i].channel);
    for (size_t i = 0; metadata && i < metadata_len; i++) {
        grpc_slice_unref(metadata[i].key);
        grpc_slice_unref(metadata[i].value);
    }
    grpc_slice_unref(plan.request);
    free(metadata);
    free(slots);
    free(workers);
    free(channels);
    grpc_shutdown();
    return outcome;
}

void load_result_release(struct load_result *result)
{
    histogram_destroy(result->latency);
    result->latency = NULL;
    for (size_t i = 0; i < LOAD_STATUS_SLOTS; i++) {
        free(result->status_example[i]);
        result->status_example[i] = NULL;
    }
}

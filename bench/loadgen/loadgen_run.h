/*
 * The closed-loop driver of tw-loadgen on the gRPC core client API: keeps a
 * fixed number of unary calls in flight over a set of channels, replacing
 * each call as it completes, and counts every completed call by its gRPC
 * status and latency. All grpc_* calls of loadgen live in loadgen_run.c.
 */
#ifndef LOADGEN_RUN_H
#define LOADGEN_RUN_H

#include "histogram.h"

#include <stddef.h>
#include <stdint.h>

/* Status codes 0 (OK) to 16 (UNAUTHENTICATED) each have a slot; the last
 * slot counts any code a server sends outside that range. */
#define LOAD_STATUS_SLOTS 18

struct load_header {
    const char *key; /* lower case, already checked */
    const char *value;
};

/* What to run. load_run borrows every pointer for its duration. */
struct load_spec {
    const char *target;
    const char *method;
    unsigned concurrency;
    unsigned channels; /* 1 .. concurrency, one HTTP/2 connection each */
    unsigned threads;  /* 1 .. concurrency, one completion queue each */
    double warmup_s;
    double duration_s;
    double deadline_s; /* per call; 0 sends none */
    double connect_timeout_s;
    const uint8_t *request;
    size_t request_len;
    const struct load_header *headers;
    size_t header_count;
    /* Call slot i also sends slot_headers[i % slot_header_count] (none when
     * the count is 0): one token per slot spreads the calls over users. */
    const struct load_header *slot_headers;
    size_t slot_header_count;
};

/* Calls that completed inside the measured window (after the warm-up). */
struct load_result {
    uint64_t calls;
    histogram *latency; /* owned */
    uint64_t status_counts[LOAD_STATUS_SLOTS];
    char
        *status_example[LOAD_STATUS_SLOTS]; /* owned: first status message seen per code, or NULL */
};

enum load_outcome {
    LOAD_COMPLETED,   /* the run took place; *result holds what it measured */
    LOAD_UNREACHABLE, /* a channel did not connect within connect_timeout_s */
    LOAD_FAILED,      /* gRPC refused a call or resources ran out (said on stderr) */
};

/* Initialises and shuts down gRPC itself. Fills *result (release it with
 * load_result_release whatever the outcome). Bounded: it returns at most
 * warmup + duration + a 5 s drain after the channels connect. */
enum load_outcome load_run(const struct load_spec *spec, struct load_result *result);

void load_result_release(struct load_result *result);

#endif

/*
 * The per-call log, as production wants it. Every failed call and every
 * slow unary call gets a JSON line ("msg":"call"); of the calls that went
 * well, one in `sample` does (with "sampled": sample), and every call is
 * counted, per method, in a summary line ("msg":"calls") every
 * `summary_s`: calls, failures, slow ones, and latency percentiles. So the
 * success path costs a few counter updates in memory the calling thread
 * owns: no lock, no allocation, no JSON, no write.
 *
 * Lines are bounded: at most `lines_per_s` call lines a second. Beyond
 * that, calls are only counted and the next line written says how many
 * went unlogged ("suppressed"), so a flood of bad requests cannot fill the
 * disk. Lines are queued to tw_log's writer thread (tw_log_async_start),
 * never written by the thread that finished the call.
 *
 * At debug level every call gets its line, as before.
 */
#ifndef TW_RPC_CALL_LOG_H
#define TW_RPC_CALL_LOG_H

#include "rpc_layer.h"

#include "tw_err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tw_call_log_options {
    int64_t slow_ms;     /* unary calls this slow or slower always get a line; 0: none */
    int64_t sample;      /* one in this many calls that went well gets a line; 0: none */
    int64_t lines_per_s; /* call lines a second at most; 0: no limit */
    int64_t summary_s;   /* seconds between summary lines; 0: none */
} tw_call_log_options;

/* What tw_call_log_configure has not changed: slow 200 ms, one line in
 * 1000 successes, 100 lines a second, no summary. */
#define TW_CALL_LOG_DEFAULTS ((tw_call_log_options){200, 1000, 100, 0})

/* Sets the policy, and starts the summary thread when summary_s > 0.
 * Call before serving; o is copied. */
tw_err tw_call_log_configure(const tw_call_log_options *o);

/* Writes the last summary and stops its thread. */
void tw_call_log_stop(void);

/* Methods counted apart in summaries; calls of a method numbered beyond
 * this are counted as "other". */
#define TW_CALL_LOG_METHODS 255

/* One finished call. Strings are borrowed during tw_call_log. */
typedef struct tw_call_log_entry {
    const char *method;  /* "/package.Service/Method" */
    size_t method_index; /* 1.. for a registered method, 0 for any other */
    bool unary;          /* only unary calls can be slow: streams last */
    tw_err err;
    int64_t duration_ns;
    const char *peer;
    const char *request_id;
    const char *user_id;       /* NULL: nobody signed in */
    const char *error_message; /* NULL: the table's */
    const char *error_detail;  /* NULL: none; for the log only */
} tw_call_log_entry;

void tw_call_log(const tw_call_log_entry *e);

#endif

/*
 * Structured logs: one JSON object per line on standard error, for example
 *   {"time":"2026-11-26T22:30:48.123Z","level":"info","msg":"call",...}
 * Lines are written whole with one write(2), so threads never interleave.
 * Never pass a token, password or key in fields.
 *
 * A server starts the writer thread (tw_log_async_start): lines then go to
 * a bounded queue in memory and that thread writes them, so a thread that
 * logs never waits for the disk or a pipe. When the queue is full a line is
 * dropped and counted, and the writer says how many it lost. Without the
 * writer (tools, tests) each line is written at once.
 */
#ifndef TW_LOG_H
#define TW_LOG_H

#include "tw_err.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

typedef enum tw_log_level {
    TW_LOG_DEBUG,
    TW_LOG_INFO,
    TW_LOG_WARN,
    TW_LOG_ERROR,
} tw_log_level;

/* Lines below level are dropped. The default is TW_LOG_INFO. */
void tw_log_set_level(tw_log_level level);
bool tw_log_enabled(tw_log_level level);

/* "debug", "info", "warn" or "error"; false for anything else. */
bool tw_log_level_parse(const char *name, tw_log_level *out);

/*
 * A line built in place, for the per-call log on the hot path: no
 * allocation. Strings are escaped (invalid UTF-8 becomes U+FFFD), so the
 * line is valid JSON whatever a client sent; a value that would overflow the
 * buffer is cut short.
 *
 *   tw_log_line line;
 *   if (tw_log_line_begin(&line, TW_LOG_INFO, "call")) {
 *       tw_log_line_str(&line, "method", path);
 *       tw_log_line_int(&line, "code", 5);
 *       tw_log_line_end(&line);
 *   }
 */
typedef struct tw_log_line {
    char buf[4096];
    size_t len;
} tw_log_line;

/* False (and nothing to do) when level is not logged. */
bool tw_log_line_begin(tw_log_line *line, tw_log_level level, const char *msg);
void tw_log_line_str(tw_log_line *line, const char *key, const char *value);
void tw_log_line_int(tw_log_line *line, const char *key, long long value);
/* A number with three decimals, for milliseconds. */
void tw_log_line_ms(tw_log_line *line, const char *key, double ms);
/* Writes the line with one write(2). */
void tw_log_line_end(tw_log_line *line);

/* Starts the writer thread with a queue of queue_bytes. */
tw_err tw_log_async_start(size_t queue_bytes);

/* Writes every queued line, stops the writer; lines are written at once
 * again. Accepts a writer never started. */
void tw_log_async_stop(void);

/* Logs msg with the members of fields (taken: it is released; may be NULL). */
void tw_log(tw_log_level level, const char *msg, json_t *fields);

/* Logs a formatted message with no other fields. */
void tw_logf(tw_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif

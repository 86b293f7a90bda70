/*
 * Field violations: the bad fields of one request, gathered so the client
 * learns every mistake at once, and bounded so that no request can make the
 * answer large. A list keeps at most max_count entries and max_bytes of
 * text (each path and description is also cut to a fixed length); what
 * comes after is only counted, and the answer ends with one "and N more"
 * entry. Adding is O(1) and never fails: out of memory counts as dropped.
 *
 * The engine keeps one list per call (tw_call_violations) and sends it as
 * google.rpc.BadRequest; a result per item (a Push mutation) keeps its own,
 * smaller list. Domain code (server/tasks, server/wellness...) fills a
 * list it is handed and never needs the engine.
 */
#ifndef TW_VIOLATIONS_H
#define TW_VIOLATIONS_H

#include "tw_arena.h"
#include "tw_err.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

/* Longest field path and description kept, in bytes (cut on a character). */
#define TW_VIOLATION_FIELD_MAX 128
#define TW_VIOLATION_TEXT_MAX  200

/* A call's budget: what always fits the 8 KiB of metadata a gRPC client
 * accepts, with the status message and the ErrorInfo beside it, once
 * base64-encoded in the grpc-status-details-bin trailer. */
#define TW_CALL_VIOLATIONS_MAX       100
#define TW_CALL_VIOLATIONS_MAX_BYTES 3000

typedef struct tw_violation {
    struct tw_violation *next;
    const char *field;       /* the path, e.g. "entries[3].note" */
    const char *description; /* why, shown to the client */
} tw_violation;

typedef struct tw_violations {
    tw_arena *arena; /* where entries and their text live (borrowed) */
    /* Prepended to every field added, e.g. "mutations[2].update_task.", so
     * a validator can name fields relative to the message it checks. */
    const char *prefix;
    tw_violation *head;
    tw_violation **tail;
    size_t count;   /* kept */
    size_t dropped; /* found past the budget: counted, not kept */
    size_t bytes;   /* text kept */
    size_t max_count, max_bytes;
} tw_violations;

/* An empty list in arena (borrowed) with the given budget. */
void tw_violations_init(tw_violations *v, tw_arena *arena, size_t max_count, size_t max_bytes);

/* Adds prefix + field with a printf-style description. Returns
 * TW_ERR_VALIDATION, so a check can `return tw_violations_add(...)`. */
tw_err tw_violations_add(tw_violations *v, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
tw_err tw_violations_addv(tw_violations *v, const char *field, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/* Every violation found, kept or dropped. */
size_t tw_violations_total(const tw_violations *v);

/* True when any was found. */
bool tw_violations_any(const tw_violations *v);

/* The description of the entry that stands for the dropped ones ("and 12
 * more"), in the list's arena; NULL when none was dropped. */
const char *tw_violations_more(const tw_violations *v);

#endif

/* Lookups into the error table of tw_err.h, and refusal messages. */
#include "tw_err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct tw_err_row {
    const char *name;
    int grpc_status;
    const char *reason;
    const char *message;
};

static const struct tw_err_row err_rows[TW_ERR__COUNT] = {
#define TW_ERR_ROW(name, status, reason, message) {#name, TW_GRPC_##status, reason, message},
    TW_ERR_MAP(TW_ERR_ROW)
#undef TW_ERR_ROW
};

static const struct tw_err_row *err_row(tw_err err)
{
    if ((unsigned)err >= TW_ERR__COUNT)
        err = TW_ERR_INTERNAL;
    return &err_rows[err];
}

int tw_err_grpc_status(tw_err err)
{
    return err_row(err)->grpc_status;
}
const char *tw_err_reason(tw_err err)
{
    return err_row(err)->reason;
}
const char *tw_err_message(tw_err err)
{
    return err_row(err)->message;
}
const char *tw_err_name(tw_err err)
{
    return err_row(err)->name;
}

tw_err tw_err_from_reason(const char *reason)
{
    for (int i = 1; i < TW_ERR__COUNT; i++)
        if (strcmp(err_rows[i].reason, reason) == 0)
            return (tw_err)i;
    return TW_ERR__COUNT;
}

tw_err tw_err_explain(tw_arena *arena, const char **message, tw_err err, const char *fmt, ...)
{
    char text[TW_ERR_EXPLAIN_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    *message = tw_arena_strdup(arena, text);
    return err;
}

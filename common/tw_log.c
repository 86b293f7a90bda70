/* JSON-lines logger for tw_log.h. */
#include "tw_log.h"

#include "tw_time.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *const level_names[] = {
    [TW_LOG_DEBUG] = "debug",
    [TW_LOG_INFO] = "info",
    [TW_LOG_WARN] = "warn",
    [TW_LOG_ERROR] = "error",
};

static _Atomic int min_level = TW_LOG_INFO;

void tw_log_set_level(tw_log_level level)
{
    atomic_store(&min_level, (int)level);
}

bool tw_log_enabled(tw_log_level level)
{
    return (int)level >= atomic_load(&min_level);
}

bool tw_log_level_parse(const char *name, tw_log_level *out)
{
    for (size_t i = 0; i < sizeof level_names / sizeof level_names[0]; i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *out = (tw_log_level)i;
            return true;
        }
    }
    return false;
}

/* RFC 3339 UTC with milliseconds. */
static void format_time(char out[32])
{
    int64_t ms = tw_wall_ms();
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%03dZ", (int)(ms % 1000));
}

void tw_log(tw_log_level level, const char *msg, json_t *fields)
{
    if (!tw_log_enabled(level)) {
        json_decref(fields);
        return;
    }
    char when[32];
    format_time(when);
    json_t *line =
        json_pack("{s:s, s:s, s:s}", "time", when, "level", level_names[level], "msg", msg);
    if (line != NULL && fields != NULL)
        json_object_update(line, fields);
    json_decref(fields);
    char *text = line ? json_dumps(line, JSON_COMPACT | JSON_REAL_PRECISION(6)) : NULL;
    json_decref(line);
    if (text == NULL)
        return;
    size_t len = strlen(text);
    /* One write per line; json_dumps leaves no room, so add the newline here. */
    char *with_newline = realloc(text, len + 2);
    if (with_newline == NULL) {
        free(text);
        return;
    }
    with_newline[len] = '\n';
    ssize_t ignored = write(STDERR_FILENO, with_newline, len + 1);
    (void)ignored;
    free(with_newline);
}

void tw_logf(tw_log_level level, const char *fmt, ...)
{
    if (!tw_log_enabled(level))
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    tw_log(level, msg, NULL);
}

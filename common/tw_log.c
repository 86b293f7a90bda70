/* JSON-lines logger for tw_log.h. */
#include "tw_log.h"

#include "tw_time.h"
#include "tw_utf8.h"

#include <pthread.h>
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

/* Room kept for the closing "}\n". */
#define LINE_TAIL 2

/* Bytes left for fields; a field that does not fit is dropped whole, so the
 * line stays valid JSON. */
static size_t room(const tw_log_line *line)
{
    return sizeof line->buf - LINE_TAIL - line->len;
}

static void append_raw(tw_log_line *line, const char *s, size_t n)
{
    memcpy(line->buf + line->len, s, n);
    line->len += n;
}

/* Appends a quoted JSON string, cut short at a whole character when it
 * would take more than limit bytes; limit leaves room for both quotes. */
static void append_quoted(tw_log_line *line, const char *s, size_t limit)
{
    static const char hex[] = "0123456789abcdef";
    size_t end = line->len + limit - 1;
    line->buf[line->len++] = '"';
    size_t left = strlen(s);
    while (left > 0) {
        char esc[8];
        size_t n = 0, take = 1;
        unsigned char c = (unsigned char)*s;
        size_t seq = tw_utf8_sequence(s, left);
        if (c == '"' || c == '\\') {
            esc[n++] = '\\';
            esc[n++] = (char)c;
        } else if (c < 0x20) {
            n = (size_t)snprintf(esc, sizeof esc, "\\u00%c%c", hex[c >> 4], hex[c & 15]);
        } else if (seq == 0) {
            memcpy(esc, "\\ufffd", n = 6);
        } else {
            take = n = seq;
            memcpy(esc, s, seq);
        }
        if (line->len + n > end)
            break;
        append_raw(line, esc, n);
        s += take;
        left -= take;
    }
    line->buf[line->len++] = '"';
}

/* Appends ,"key": when there is room for it and min_value more bytes. */
static bool append_key(tw_log_line *line, const char *key, size_t min_value)
{
    size_t need = strlen(key) + 4 + min_value; /* , "" : */
    if (strpbrk(key, "\"\\") != NULL || need > room(line))
        return false;
    append_raw(line, ",\"", 2);
    append_raw(line, key, strlen(key));
    append_raw(line, "\":", 2);
    return true;
}

bool tw_log_line_begin(tw_log_line *line, tw_log_level level, const char *msg)
{
    if (!tw_log_enabled(level))
        return false;
    char when[32];
    format_time(when);
    line->len = 0;
    append_raw(line, "{\"time\":\"", 9);
    append_raw(line, when, strlen(when));
    append_raw(line, "\",\"level\":\"", 11);
    append_raw(line, level_names[level], strlen(level_names[level]));
    append_raw(line, "\"", 1);
    tw_log_line_str(line, "msg", msg);
    return true;
}

void tw_log_line_str(tw_log_line *line, const char *key, const char *value)
{
    if (append_key(line, key, 2))
        append_quoted(line, value ? value : "", room(line));
}

static void append_number(tw_log_line *line, const char *key, const char *num, int len)
{
    if (len > 0 && append_key(line, key, (size_t)len))
        append_raw(line, num, (size_t)len);
}

void tw_log_line_int(tw_log_line *line, const char *key, long long value)
{
    char num[24];
    append_number(line, key, num, snprintf(num, sizeof num, "%lld", value));
}

void tw_log_line_ms(tw_log_line *line, const char *key, double ms)
{
    char num[32];
    append_number(line, key, num, snprintf(num, sizeof num, "%.3f", ms));
}

/* ---- the writer thread ------------------------------------------------------- */

/* The queue: a ring of bytes holding whole lines, head where the next line
 * goes, count bytes waiting from head - count. */
static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    char *ring;
    size_t cap, head, count;
    bool stop;
    pthread_t thread;
} queue = {.lock = PTHREAD_MUTEX_INITIALIZER};
static atomic_bool async_on;
static _Atomic uint64_t dropped;

static void write_all(const char *bytes, size_t len)
{
    while (len > 0) {
        ssize_t n = write(STDERR_FILENO, bytes, len);
        if (n <= 0)
            return; /* nowhere to log that logging failed */
        bytes += n;
        len -= (size_t)n;
    }
}

static void enqueue(const char *bytes, size_t len)
{
    pthread_mutex_lock(&queue.lock);
    if (queue.cap - queue.count < len) {
        pthread_mutex_unlock(&queue.lock);
        atomic_fetch_add(&dropped, 1);
        return;
    }
    size_t first = queue.cap - queue.head < len ? queue.cap - queue.head : len;
    memcpy(queue.ring + queue.head, bytes, first);
    memcpy(queue.ring, bytes + first, len - first);
    queue.head = (queue.head + len) % queue.cap;
    queue.count += len;
    pthread_cond_signal(&queue.wake);
    pthread_mutex_unlock(&queue.lock);
}

/* A line saying how many lines the full queue cost. */
static void report_dropped(void)
{
    uint64_t n = atomic_exchange(&dropped, 0);
    if (n == 0)
        return;
    tw_log_line line;
    if (tw_log_line_begin(&line, TW_LOG_WARN, "log lines dropped: the queue was full")) {
        tw_log_line_int(&line, "dropped", (long long)n);
        line.buf[line.len++] = '}';
        line.buf[line.len++] = '\n';
        write_all(line.buf, line.len);
    }
}

static void *writer_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&queue.lock);
    for (;;) {
        while (queue.count == 0 && !queue.stop)
            pthread_cond_wait(&queue.wake, &queue.lock);
        if (queue.count == 0)
            break; /* stopping, and everything is written */
        /* The oldest bytes up to the end of the ring; the rest next time.
         * Producers only fill the free part, so these stay put unlocked. */
        size_t tail = (queue.head + queue.cap - queue.count) % queue.cap;
        size_t len = queue.cap - tail < queue.count ? queue.cap - tail : queue.count;
        pthread_mutex_unlock(&queue.lock);
        write_all(queue.ring + tail, len);
        report_dropped();
        pthread_mutex_lock(&queue.lock);
        queue.count -= len;
    }
    pthread_mutex_unlock(&queue.lock);
    return NULL;
}

tw_err tw_log_async_start(size_t queue_bytes)
{
    if (atomic_load(&async_on))
        return TW_OK;
    if (queue.ring == NULL) { /* a second start keeps the first ring */
        if ((queue.ring = malloc(queue_bytes)) == NULL)
            return TW_ERR_NO_MEMORY;
        queue.cap = queue_bytes;
    }
    queue.head = queue.count = 0;
    queue.stop = false;
    pthread_cond_init(&queue.wake, NULL);
    if (pthread_create(&queue.thread, NULL, writer_main, NULL) != 0) {
        pthread_cond_destroy(&queue.wake);
        return TW_ERR_INTERNAL;
    }
    atomic_store(&async_on, true);
    return TW_OK;
}

void tw_log_async_stop(void)
{
    if (!atomic_exchange(&async_on, false))
        return;
    /* Lines logged from here on are written at once; the writer writes
     * what is queued and ends. The ring is kept, not freed: a line racing
     * the switch may still be copied into it. */
    pthread_mutex_lock(&queue.lock);
    queue.stop = true;
    pthread_cond_signal(&queue.wake);
    pthread_mutex_unlock(&queue.lock);
    pthread_join(queue.thread, NULL);
    report_dropped();
}

void tw_log_line_end(tw_log_line *line)
{
    line->buf[line->len++] = '}';
    line->buf[line->len++] = '\n';
    if (atomic_load_explicit(&async_on, memory_order_acquire))
        enqueue(line->buf, line->len);
    else
        write_all(line->buf, line->len);
}

void tw_log(tw_log_level level, const char *msg, json_t *fields)
{
    tw_log_line line;
    if (tw_log_line_begin(&line, level, msg) && fields != NULL) {
        /* Splice the fields' members in after msg: dump the object and drop
         * its braces. */
        char *text = json_dumps(fields, JSON_COMPACT | JSON_REAL_PRECISION(6));
        size_t n = text ? strlen(text) : 0;
        if (n > 2 && n - 1 <= room(&line)) {
            append_raw(&line, ",", 1);
            append_raw(&line, text + 1, n - 2);
        }
        free(text);
    }
    if (tw_log_enabled(level))
        tw_log_line_end(&line);
    json_decref(fields);
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

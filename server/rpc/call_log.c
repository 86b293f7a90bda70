/* The per-call log of call_log.h: lines for failures, slow calls and a
 * sample, per-method counts for the summary, and the lines-per-second
 * bound. */
#include "call_log.h"

#include "tw_log.h"
#include "tw_time.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Latency buckets: four per doubling of microseconds, from 1 us to 16 s;
 * a percentile is reported as its bucket's upper edge (at most 19 % high). */
#define BUCKETS         96
#define METHOD_SLOT     (TW_CALL_LOG_METHODS + 1)
#define METHOD_NAME_MAX 128

/* One method's counts on one thread. Only that thread writes them (plain
 * loads and stores, relaxed atomics so that the summary may read them while
 * it does): counting takes no lock and shares no cache line. */
struct method_counts {
    _Atomic uint64_t calls, failed, slow, total_us;
    _Atomic uint32_t buckets[BUCKETS];
};

struct thread_counts {
    struct thread_counts *next;
    struct method_counts methods[METHOD_SLOT];
};

static tw_call_log_options opts = TW_CALL_LOG_DEFAULTS;

static _Thread_local struct thread_counts *mine;
static _Thread_local int64_t until_sample; /* successes until the next sampled line */
static pthread_mutex_t threads_lock = PTHREAD_MUTEX_INITIALIZER;
static struct thread_counts *threads; /* every thread's counts, for the summary */

/* Method names by index, copied on first sight (the summary outlives no
 * engine, but a copy costs nothing and needs no promise). */
static char names[METHOD_SLOT][METHOD_NAME_MAX];
static atomic_bool named[METHOD_SLOT];

/* The lines-per-second bound: a window of one second and the lines taken
 * in it; lines refused since the last one written. */
static _Atomic int64_t window_s = -1;
static _Atomic int64_t window_lines;
static _Atomic uint64_t suppressed;

/* The summary thread. */
static pthread_t summary_thread;
static bool summary_running;
static pthread_mutex_t summary_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t summary_wake;
static bool summary_stop;

/* ---- counting --------------------------------------------------------------- */

static void bump(_Atomic uint64_t *counter, uint64_t by)
{
    atomic_store_explicit(counter, atomic_load_explicit(counter, memory_order_relaxed) + by,
                          memory_order_relaxed);
}

static unsigned bucket_of(int64_t duration_ns)
{
    uint64_t us = duration_ns > 0 ? (uint64_t)duration_ns / 1000 : 0;
    if (us < 1)
        return 0;
    unsigned octave = 63u - (unsigned)__builtin_clzll(us);
    /* The two bits after the leading one: which quarter of the doubling. */
    unsigned quarter =
        octave >= 2 ? (unsigned)(us >> (octave - 2)) & 3u : (unsigned)(us << (2 - octave)) & 3u;
    unsigned b = octave * 4 + quarter;
    return b < BUCKETS ? b : BUCKETS - 1;
}

/* The upper edge of bucket b, in ms. */
static double bucket_top_ms(unsigned b)
{
    double octave_us = (double)(UINT64_C(1) << (b / 4));
    return octave_us * (1.0 + (double)(b % 4 + 1) / 4.0) / 1000.0;
}

static struct thread_counts *my_counts(void)
{
    if (mine == NULL && (mine = calloc(1, sizeof *mine)) != NULL) {
        pthread_mutex_lock(&threads_lock);
        mine->next = threads;
        threads = mine;
        pthread_mutex_unlock(&threads_lock);
    }
    return mine;
}

static void remember_name(size_t index, const char *method)
{
    if (atomic_load_explicit(&named[index], memory_order_acquire))
        return;
    pthread_mutex_lock(&threads_lock);
    if (!atomic_load_explicit(&named[index], memory_order_relaxed)) {
        snprintf(names[index], sizeof names[index], "%s", index ? method : "other");
        atomic_store_explicit(&named[index], true, memory_order_release);
    }
    pthread_mutex_unlock(&threads_lock);
}

static void count(const tw_call_log_entry *e, bool failed, bool slow)
{
    size_t index = e->method_index <= TW_CALL_LOG_METHODS ? e->method_index : 0;
    struct thread_counts *t = my_counts();
    if (t == NULL)
        return; /* out of memory: this call goes uncounted */
    remember_name(index, e->method);
    struct method_counts *m = &t->methods[index];
    bump(&m->calls, 1);
    bump(&m->failed, failed);
    bump(&m->slow, slow);
    bump(&m->total_us, e->duration_ns > 0 ? (uint64_t)e->duration_ns / 1000 : 0);
    _Atomic uint32_t *b = &m->buckets[bucket_of(e->duration_ns)];
    atomic_store_explicit(b, atomic_load_explicit(b, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

/* ---- lines ----------------------------------------------------------------- */

/* A line may be written now: under the bound, or none is set. */
static bool line_allowed(void)
{
    if (opts.lines_per_s <= 0)
        return true;
    int64_t now = tw_mono_ns() / 1000000000;
    int64_t seen = atomic_load(&window_s);
    if (seen != now && atomic_compare_exchange_strong(&window_s, &seen, now))
        atomic_store(&window_lines, 0);
    return atomic_fetch_add(&window_lines, 1) < opts.lines_per_s;
}

static void write_line(const tw_call_log_entry *e, bool slow, int64_t sampled)
{
    int code = tw_err_grpc_status(e->err);
    tw_log_line line;
    if (!tw_log_line_begin(&line, code == TW_GRPC_INTERNAL ? TW_LOG_ERROR : TW_LOG_INFO, "call"))
        return;
    tw_log_line_str(&line, "method", e->method);
    tw_log_line_str(&line, "peer", e->peer);
    tw_log_line_str(&line, "status", tw_err_name(e->err));
    tw_log_line_int(&line, "code", code);
    tw_log_line_ms(&line, "duration_ms", (double)e->duration_ns / 1e6);
    tw_log_line_str(&line, "request_id", e->request_id);
    if (e->user_id != NULL)
        tw_log_line_str(&line, "user_id", e->user_id);
    if (e->err != TW_OK) {
        tw_log_line_str(&line, "reason", tw_err_reason(e->err));
        if (e->error_message)
            tw_log_line_str(&line, "error", e->error_message);
        if (e->error_detail)
            tw_log_line_str(&line, "detail", e->error_detail);
    }
    if (slow)
        tw_log_line_int(&line, "slow", 1);
    if (sampled > 1)
        tw_log_line_int(&line, "sampled", sampled);
    uint64_t unlogged = atomic_exchange(&suppressed, 0);
    if (unlogged > 0)
        tw_log_line_int(&line, "suppressed", (long long)unlogged);
    tw_log_line_end(&line);
}

void tw_call_log(const tw_call_log_entry *e)
{
    bool failed = e->err != TW_OK;
    bool slow = e->unary && opts.slow_ms > 0 && e->duration_ns >= opts.slow_ms * 1000000;
    if (opts.summary_s > 0)
        count(e, failed, slow);
    if (tw_log_enabled(TW_LOG_DEBUG)) {
        write_line(e, slow, 0);
        return;
    }
    int64_t sampled = 0;
    if (!failed && !slow) {
        if (opts.sample <= 0)
            return;
        if (until_sample <= 0)
            until_sample = opts.sample;
        if (--until_sample > 0)
            return;
        sampled = opts.sample;
    }
    if (!line_allowed()) {
        atomic_fetch_add(&suppressed, 1);
        return;
    }
    write_line(e, slow, sampled);
}

/* ---- the summary ------------------------------------------------------------- */

/* What the last summary saw, to report the difference. */
static struct method_counts seen[METHOD_SLOT];

static uint64_t load(_Atomic uint64_t *v)
{
    return atomic_load_explicit(v, memory_order_relaxed);
}

/* The upper edge of the bucket holding the fraction p of n calls. */
static double percentile_ms(const uint64_t *buckets, uint64_t n, double p)
{
    uint64_t rank = (uint64_t)(p * (double)n), below = 0;
    for (unsigned b = 0; b < BUCKETS; b++) {
        below += buckets[b];
        if (below > rank)
            return bucket_top_ms(b);
    }
    return bucket_top_ms(BUCKETS - 1);
}

static void summarise(double window)
{
    for (size_t i = 0; i < METHOD_SLOT; i++) {
        if (!atomic_load_explicit(&named[i], memory_order_acquire))
            continue;
        uint64_t calls = 0, failed = 0, slow = 0, total_us = 0, buckets[BUCKETS] = {0};
        pthread_mutex_lock(&threads_lock);
        for (struct thread_counts *t = threads; t != NULL; t = t->next) {
            struct method_counts *m = &t->methods[i];
            calls += load(&m->calls);
            failed += load(&m->failed);
            slow += load(&m->slow);
            total_us += load(&m->total_us);
            for (unsigned b = 0; b < BUCKETS; b++)
                buckets[b] += atomic_load_explicit(&m->buckets[b], memory_order_relaxed);
        }
        pthread_mutex_unlock(&threads_lock);
        struct method_counts *s = &seen[i];
        uint64_t n = calls - load(&s->calls);
        for (unsigned b = 0; b < BUCKETS; b++) {
            uint64_t total = buckets[b];
            buckets[b] -= atomic_load_explicit(&s->buckets[b], memory_order_relaxed);
            atomic_store_explicit(&s->buckets[b], (uint32_t)total, memory_order_relaxed);
        }
        uint64_t n_failed = failed - load(&s->failed), n_slow = slow - load(&s->slow);
        uint64_t n_us = total_us - load(&s->total_us);
        atomic_store(&s->calls, calls);
        atomic_store(&s->failed, failed);
        atomic_store(&s->slow, slow);
        atomic_store(&s->total_us, total_us);
        tw_log_line line;
        if (n == 0 || !tw_log_line_begin(&line, TW_LOG_INFO, "calls"))
            continue;
        tw_log_line_str(&line, "method", names[i]);
        tw_log_line_ms(&line, "window_s", window);
        tw_log_line_int(&line, "calls", (long long)n);
        tw_log_line_int(&line, "failed", (long long)n_failed);
        tw_log_line_int(&line, "slow", (long long)n_slow);
        tw_log_line_ms(&line, "mean_ms", (double)n_us / (double)n / 1000.0);
        tw_log_line_ms(&line, "p50_ms", percentile_ms(buckets, n, 0.50));
        tw_log_line_ms(&line, "p99_ms", percentile_ms(buckets, n, 0.99));
        tw_log_line_end(&line);
    }
    uint64_t unlogged = atomic_exchange(&suppressed, 0);
    tw_log_line line;
    if (unlogged > 0 && tw_log_line_begin(&line, TW_LOG_WARN, "call lines suppressed")) {
        tw_log_line_int(&line, "suppressed", (long long)unlogged);
        tw_log_line_int(&line, "lines_per_s", (long long)opts.lines_per_s);
        tw_log_line_end(&line);
    }
}

static void *summary_main(void *arg)
{
    (void)arg;
    int64_t last = tw_mono_ns();
    pthread_mutex_lock(&summary_lock);
    while (!summary_stop) {
        struct timespec until = tw_mono_deadline((int64_t)opts.summary_s * 1000);
        while (!summary_stop && pthread_cond_timedwait(&summary_wake, &summary_lock, &until) == 0)
            ;
        pthread_mutex_unlock(&summary_lock);
        int64_t now = tw_mono_ns();
        summarise((double)(now - last) / 1e9);
        last = now;
        pthread_mutex_lock(&summary_lock);
    }
    pthread_mutex_unlock(&summary_lock);
    return NULL;
}

tw_err tw_call_log_configure(const tw_call_log_options *o)
{
    opts = *o;
    if (opts.summary_s <= 0 || summary_running)
        return TW_OK;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&summary_wake, &attr);
    pthread_condattr_destroy(&attr);
    summary_stop = false;
    if (pthread_create(&summary_thread, NULL, summary_main, NULL) != 0) {
        pthread_cond_destroy(&summary_wake);
        return TW_ERR_INTERNAL;
    }
    summary_running = true;
    return TW_OK;
}

void tw_call_log_stop(void)
{
    if (!summary_running)
        return;
    pthread_mutex_lock(&summary_lock);
    summary_stop = true;
    pthread_cond_signal(&summary_wake);
    pthread_mutex_unlock(&summary_lock);
    pthread_join(summary_thread, NULL);
    pthread_cond_destroy(&summary_wake);
    summary_running = false;
}

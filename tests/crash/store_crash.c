/*
 * Crash test of the store: acknowledged durable writes survive kill -9.
 *
 * The driver (no arguments) runs cycles. Each cycle starts this program
 * again as a writer (--writer DIR) on one data directory; the writer's
 * threads commit transactions under the durable profile and print one
 * line per commit after it returns ("thread sequence"); the driver reads
 * the lines and kills the writer with SIGKILL at a random moment. Then it
 * opens the store itself and checks that it opens, that every checksum
 * verifies, and that every acknowledged write is there, whole: each
 * transaction appended to its thread's change log, claimed a unique value
 * and counted itself, so a torn transaction would show.
 *
 * TW_CRASH_CYCLES (default 50), TW_CRASH_SECONDS (default 120: the test
 * stops early, still checked, when time runs out) and TW_CRASH_SEED
 * (default 1) tune a run. Prints the cycles run and the result.
 */
#include "tw_changelog.h"
#include "tw_counter.h"
#include "tw_time.h"
#include "tw_txn.h"
#include "tw_unique.h"

#include <errno.h>
#include <ftw.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define WRITERS 2
#define COUNTER "crash_writes"

static tw_id writer_user(int thread)
{
    tw_id id = {{0}};
    id.bytes[0] = 0x01;
    id.bytes[15] = (uint8_t)(thread + 1);
    return id;
}

static void claim_value(char *buf, size_t size, int thread, uint64_t seq)
{
    snprintf(buf, size, "%d-%llu", thread, (unsigned long long)seq);
}

/* ---- The writer --------------------------------------------------------- */

struct writer {
    tw_store *store;
    int thread;
    uint64_t last; /* the sequence of the thread's last commit */
    uint64_t seq;  /* out: the sequence this transaction appended */
};

/* Each thread is the only writer of its user, so its next commit's entry
 * is the next sequence: the claim names it, and the check finds the two
 * together or neither. */
static tw_err write_one(tw_txn *t, void *ctx)
{
    struct writer *w = ctx;
    tw_id user = writer_user(w->thread), res = tw_id_new();
    tw_counter c = {.user = &user, .name = COUNTER};
    char value[64];
    claim_value(value, sizeof value, w->thread, w->last + 1);
    tw_err err = tw_txn_changelog_append(t, &user, "crash", &res, TW_CHANGE_UPSERT, &w->seq);
    if (err)
        return err;
    if ((err = tw_txn_unique_claim(t, "crash", value, &user)))
        return err;
    return tw_txn_counter_add(t, &c, 0, 1);
}

static void *write_forever(void *arg)
{
    struct writer w = *(struct writer *)arg;
    for (;;) {
        uint64_t expected = w.last + 1;
        tw_err err = tw_txn_run(w.store, write_one, &w);
        if (err) {
            fprintf(stderr, "writer %d: %s: %s\n", w.thread, tw_err_name(err),
                    tw_store_last_error());
            exit(2);
        }
        if (w.seq != expected) {
            fprintf(stderr, "writer %d: committed sequence %llu, not %llu\n", w.thread,
                    (unsigned long long)w.seq, (unsigned long long)expected);
            exit(2);
        }
        w.last = w.seq;
        char line[64];
        int n = snprintf(line, sizeof line, "%d %llu\n", w.thread, (unsigned long long)w.seq);
        /* One write(2) per line: shorter than PIPE_BUF, so never torn. */
        if (write(STDOUT_FILENO, line, (size_t)n) != n)
            exit(3);
    }
    return NULL;
}

static int run_writer(const char *dir)
{
    tw_store *s;
    tw_store_options o = {.data_dir = dir, .durability = TW_DURABLE};
    tw_err err = tw_store_open(&o, &s);
    if (err) {
        fprintf(stderr, "writer: open: %s: %s\n", tw_err_name(err), tw_store_last_error());
        return 2;
    }
    pthread_t th[WRITERS];
    struct writer w[WRITERS];
    tw_arena *arena = tw_arena_new(1024);
    for (int i = 0; i < WRITERS; i++) {
        tw_id user = writer_user(i);
        tw_change_page head; /* where the last writer's commits stopped */
        if (arena == NULL || tw_store_changelog_read(s, &user, 0, 0, arena, &head) != TW_OK) {
            fprintf(stderr, "writer: cannot read the change log: %s\n", tw_store_last_error());
            return 2;
        }
        w[i] = (struct writer){s, i, head.last_sequence, 0};
        pthread_create(&th[i], NULL, write_forever, &w[i]);
    }
    for (int i = 0; i < WRITERS; i++)
        pthread_join(th[i], NULL);
    return 0;
}

/* ---- The driver --------------------------------------------------------- */

static uint64_t acked_seq[WRITERS]; /* per writer thread, the highest acknowledged */

static void take_lines(char *buf, size_t *len)
{
    char *start = buf, *nl;
    while ((nl = memchr(start, '\n', *len - (size_t)(start - buf))) != NULL) {
        int thread;
        unsigned long long seq;
        *nl = '\0';
        if (sscanf(start, "%d %llu", &thread, &seq) == 2 && thread >= 0 && thread < WRITERS &&
            seq > acked_seq[thread])
            acked_seq[thread] = seq;
        start = nl + 1;
    }
    *len -= (size_t)(start - buf);
    memmove(buf, start, *len);
}

/* A writer that has not acknowledged anything by then is stuck. */
#define FIRST_ACK_LIMIT_MS 30000

/* Starts a writer, reads its acknowledgements, kills it run_ms after it
 * started (after_first_ack false: maybe while it opens the store) or after
 * its first acknowledgement, then reads what it acknowledged before it
 * died. False if it died on its own or never acknowledged anything. */
static bool run_cycle(const char *self, const char *dir, int run_ms, bool after_first_ack)
{
    int fds[2];
    if (pipe(fds) != 0)
        return false;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        execl(self, self, "--writer", dir, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    char buf[4096];
    size_t len = 0;
    int64_t start = tw_mono_ns();
    int64_t deadline = start + (int64_t)(after_first_ack ? FIRST_ACK_LIMIT_MS : run_ms) * 1000000;
    bool killed = false, acked = false;
    for (;;) {
        int64_t left_ms = (deadline - tw_mono_ns()) / 1000000;
        if (!killed && left_ms <= 0) {
            kill(pid, SIGKILL);
            killed = true;
        }
        struct pollfd p = {.fd = fds[0], .events = POLLIN};
        if (poll(&p, 1, killed ? 1000 : (int)left_ms) < 0 && errno != EINTR)
            break;
        if (!(p.revents & (POLLIN | POLLHUP)))
            continue;
        ssize_t n = read(fds[0], buf + len, sizeof buf - len);
        if (n <= 0)
            break; /* the writer is gone and the pipe drained */
        len += (size_t)n;
        take_lines(buf, &len);
        if (after_first_ack && !acked && !killed) {
            acked = true;
            deadline = tw_mono_ns() + (int64_t)run_ms * 1000000;
        }
    }
    close(fds[0]);
    if (!killed)
        kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    if (after_first_ack && !acked)
        fprintf(stderr, "the writer acknowledged nothing in %d ms\n", FIRST_ACK_LIMIT_MS);
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL && (acked || !after_first_ack);
}

/* Opens the store as a restarted twd would and checks it; false with a
 * message on the first problem. */
static bool check_store(const char *dir, uint64_t *total)
{
    tw_store *s;
    tw_err err = tw_store_open(&(tw_store_options){.data_dir = dir}, &s);
    if (err) {
        fprintf(stderr, "open: %s: %s\n", tw_err_name(err), tw_store_last_error());
        return false;
    }
    tw_store_report report;
    bool ok = (err = tw_store_verify(s, &report)) == TW_OK;
    if (!ok)
        fprintf(stderr, "verify: %s: %s\n", tw_err_name(err), tw_store_last_error());
    tw_arena *arena = tw_arena_new(64 * 1024);
    *total = 0;
    for (int t = 0; ok && t < WRITERS; t++) {
        tw_id user = writer_user(t);
        tw_change_page page;
        uint64_t seen = 0, count = 0;
        do {
            ok = tw_store_changelog_read(s, &user, seen, TW_CHANGELOG_MAX_LIMIT, arena, &page) ==
                 TW_OK;
            for (size_t i = 0; ok && i < page.count; i++)
                ok = page.changes[i].sequence == ++seen;
        } while (ok && page.more);
        tw_counter c = {.user = &user, .name = COUNTER};
        ok = ok && tw_store_counter_read(s, &c, 0, 1, NULL, &count) == TW_OK;
        if (!ok || seen < acked_seq[t] || count != seen) {
            fprintf(stderr, "writer %d: acknowledged %llu, log has %llu, counter %llu\n", t,
                    (unsigned long long)acked_seq[t], (unsigned long long)seen,
                    (unsigned long long)count);
            ok = false;
        }
        for (uint64_t q = 1; ok && q <= seen; q++) {
            char value[64];
            tw_id owner;
            claim_value(value, sizeof value, t, q);
            if (tw_store_unique_lookup(s, "crash", value, &owner) != TW_OK) {
                fprintf(stderr, "writer %d: claim %llu missing\n", t, (unsigned long long)q);
                ok = false;
            }
        }
        *total += seen;
    }
    tw_arena_free(arena);
    tw_store_close(s);
    return ok;
}

static int env_int(const char *name, int fallback)
{
    const char *v = getenv(name);
    return v && *v ? atoi(v) : fallback;
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    return remove(path);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--writer") == 0)
        return run_writer(argv[2]);

    int cycles = env_int("TW_CRASH_CYCLES", 50);
    int seconds = env_int("TW_CRASH_SECONDS", 120);
    unsigned first_seed = (unsigned)env_int("TW_CRASH_SEED", 1), seed = first_seed;
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    char dir[] = "/tmp/twd-crash-XXXXXX";
    if (n <= 0 || mkdtemp(dir) == NULL) {
        perror("store_crash");
        return 1;
    }
    self[n] = '\0';
    int64_t end = tw_mono_ns() + (int64_t)seconds * 1000000000;
    int done = 0;
    uint64_t total = 0;
    bool ok = true;
    while (ok && done < cycles && tw_mono_ns() < end) {
        /* Mostly while it writes; one cycle in five maybe while it opens. */
        bool mid_stream = rand_r(&seed) % 5 != 0;
        int run_ms = mid_stream ? rand_r(&seed) % 150 : rand_r(&seed) % 100;
        if (!run_cycle(self, dir, run_ms, mid_stream)) {
            fprintf(stderr, "cycle %d: the writer died by itself or never wrote\n", done + 1);
            ok = false;
            break;
        }
        done++;
        ok = check_store(dir, &total);
    }
    printf("store crash test: %d of %d cycles (seed %u), %llu acknowledged writes: %s\n", done,
           cycles, first_seed, (unsigned long long)total,
           ok ? "all present, store opened and verified after every kill" : "FAILED");
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    return ok ? 0 : 1;
}

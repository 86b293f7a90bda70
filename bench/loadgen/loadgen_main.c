/*
 * tw-loadgen: a status-aware, closed-loop load generator for one unary gRPC
 * method, used by `make bench` (bench/run) to measure twd against h2load and
 * a bare gRPC server. It owns the command line, building the request (raw
 * bytes, or proto3 JSON encoded through twd's embedded descriptor set) and
 * the one JSON line it prints; loadgen_run.c drives the calls.
 *
 * Unlike h2load it reads grpc-status: a call answered with HTTP 200 and
 * grpc-status 14 counts as UNAVAILABLE, not as a success.
 */
#include "loadgen_run.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum exit_code {
    EXIT_COMPLETED = 0,  /* the run took place, whatever statuses it counted */
    EXIT_RUN_FAILED = 1, /* the target could not be reached, or gRPC failed */
    EXIT_BAD_USAGE = 2,  /* bad arguments, or a request that cannot be built */
};

/* A request, not a bulk upload; also bounds what a file may make us read. */
#define MAX_REQUEST_BYTES (64u << 20)
#define MAX_HEADERS       32
#define MAX_SLOT_HEADERS  1024
#define DEFAULT_CHANNELS  4u
/* On the 2-core machines we bench on, where the server shares the cores,
 * one worker gave ~7 % more calls/s than two against a bare C server
 * (~92 k/s, within 8 % of h2load): the tool needs one core, not two. */
#define DEFAULT_THREADS 1u

static const char *const status_names[LOAD_STATUS_SLOTS] = {
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
    "NON_STANDARD_CODE",
};

struct config {
    const char *target;
    const char *method;
    unsigned concurrency;
    unsigned channels; /* 0 until given: then the default, capped at concurrency */
    unsigned threads;  /* likewise */
    double duration_s;
    double warmup_s;
    double deadline_s;
    double connect_timeout_s;
    struct load_header headers[MAX_HEADERS];
    size_t header_count;
    struct load_header slot_headers[MAX_SLOT_HEADERS];
    size_t slot_header_count;
    const char *data_file;
    const char *write_body_file;
};

enum arg_kind { ARG_COUNT, ARG_SECONDS, ARG_TEXT, ARG_HEADER, ARG_SLOT_HEADER, ARG_HELP };

/* The command line: the parser and --help are both made from this table. */
struct option_row {
    const char *name;
    char short_name;      /* 0: long form only */
    const char *arg_name; /* NULL: takes no argument */
    enum arg_kind kind;
    size_t offset;   /* of the field in struct config */
    double min, max; /* for counts and durations */
    const char *help;
};

#define AT(field) offsetof(struct config, field)
static const struct option_row option_rows[] = {
    {"concurrency", 'c', "N", ARG_COUNT, AT(concurrency), 1, 10000,
     "calls in flight at once (default 16)"},
    {"channels", 'm', "M", ARG_COUNT, AT(channels), 1, 1000,
     "connections to spread them over (default 4)"},
    {"threads", 't', "T", ARG_COUNT, AT(threads), 1, 64,
     "worker threads, a queue each (default 1)"},
    {"duration", 'd', "DUR", ARG_SECONDS, AT(duration_s), 0.001, 600,
     "measured time (default 10s, at most 600s)"},
    {"warmup", 0, "DUR", ARG_SECONDS, AT(warmup_s), 0, 600,
     "load before measuring, not counted (default 0)"},
    {"deadline", 0, "DUR", ARG_SECONDS, AT(deadline_s), 0.001, 600,
     "deadline of each call (default none)"},
    {"connect-timeout", 0, "DUR", ARG_SECONDS, AT(connect_timeout_s), 0.001, 600,
     "time to connect every channel (default 5s)"},
    {"header", 'H', "'KEY: VALUE'", ARG_HEADER, 0, 0, 0, "request metadata, repeatable"},
    {"slot-header", 0, "'KEY: VALUE'", ARG_SLOT_HEADER, 0, 0, 0,
     "repeatable: call slot i also sends the (i mod n)th, e.g. one token per user"},
    {"data-file", 0, "FILE", ARG_TEXT, AT(data_file), 0, 0, "request: serialized protobuf bytes"},
    {"write-body", 0, "FILE", ARG_TEXT, AT(write_body_file), 0, 0,
     "write the request as h2load's -d body, exit"},
    {"help", 'h', NULL, ARG_HELP, 0, 0, 0, "this text"},
};
#define OPTION_COUNT (sizeof option_rows / sizeof option_rows[0])
/* getopt_long value of long-only options: past every char. */
#define LONG_ONLY_BASE 256

static void print_usage(FILE *out)
{
    fprintf(out, "usage: tw-loadgen [options] HOST:PORT /package.Service/Method\n\n"
                 "Keeps N unary calls in flight for a duration and prints one JSON line:\n"
                 "calls, calls/s, latency percentiles in ms and a count per gRPC status.\n"
                 "Without --data-file the request is empty; bench/json2pb turns\n"
                 "proto3 JSON into a --data-file.\n\n");
    for (size_t i = 0; i < OPTION_COUNT; i++) {
        const struct option_row *row = &option_rows[i];
        char left[64];
        snprintf(left, sizeof left, "%c%c%s--%s %s", row->short_name ? '-' : ' ',
                 row->short_name ? row->short_name : ' ', row->short_name ? ", " : "  ", row->name,
                 row->arg_name ? row->arg_name : "");
        fprintf(out, "  %-28s %s\n", left, row->help);
    }
    fprintf(out, "\nDurations: 500ms, 2s, 1.5m (a bare number is seconds). Channels and\n"
                 "threads are at most N. Only calls that complete in the measured\n"
                 "time count, whatever their status.\n"
                 "Exit status: 0 the run completed (even if calls failed: see \"status\"),\n"
                 "1 the target could not be reached or gRPC failed, 2 bad arguments.\n");
}

static bool parse_count(const char *text, double min, double max, unsigned *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long value = strtoul(text, &end, 10);
    if (errno || end == text || *end || text[0] == '-' || (double)value < min ||
        (double)value > max)
        return false;
    *out = (unsigned)value;
    return true;
}

static bool parse_seconds(const char *text, double min, double max, double *out)
{
    static const struct {
        const char *suffix;
        double seconds;
    } units[] = {{"ms", 0.001}, {"s", 1}, {"m", 60}, {"", 1}};
    char *end = NULL;
    double value = strtod(text, &end);
    if (end == text || !isfinite(value))
        return false;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(end, units[i].suffix) == 0) {
            *out = value * units[i].seconds;
            return *out >= min && *out <= max;
        }
    }
    return false;
}

/* Splits "Key: value" in place (the argument string is ours to change) once
 * it is known good: gRPC wants keys of [a-z0-9-_.], which we lower-case,
 * and printable values except under keys ending in -bin. */
static bool add_header(struct load_header *headers, size_t *count, size_t max, char *text)
{
    char *colon = strchr(text, ':');
    if (!colon || colon == text || *count == max)
        return false;
    for (const char *p = text; p < colon; p++)
        if (!isalnum((unsigned char)*p) && !strchr("-_.", *p))
            return false;
    char *value = colon + 1;
    while (*value == ' ' || *value == '\t')
        value++;
    size_t value_len = strlen(value);
    while (value_len > 0 && (value[value_len - 1] == ' ' || value[value_len - 1] == '\t'))
        value_len--;
    size_t key_len = (size_t)(colon - text);
    bool binary = key_len > 4 && strncasecmp(colon - 4, "-bin", 4) == 0;
    for (size_t i = 0; !binary && i < value_len; i++)
        if (value[i] < 0x20 || value[i] > 0x7e)
            return false;
    *colon = '\0';
    value[value_len] = '\0';
    for (char *p = text; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    headers[(*count)++] = (struct load_header){text, value};
    return true;
}

/* Returns EXIT_COMPLETED to go on, or the code to exit with at once. */
static int apply_option(struct config *c, const struct option_row *row, char *arg)
{
    void *field = (char *)c + row->offset;
    bool ok = true;
    switch (row->kind) {
    case ARG_COUNT:
        ok = parse_count(arg, row->min, row->max, field);
        break;
    case ARG_SECONDS:
        ok = parse_seconds(arg, row->min, row->max, field);
        break;
    case ARG_TEXT:
        *(const char **)field = arg;
        break;
    case ARG_HEADER:
        ok = add_header(c->headers, &c->header_count, MAX_HEADERS, arg);
        break;
    case ARG_SLOT_HEADER:
        ok = add_header(c->slot_headers, &c->slot_header_count, MAX_SLOT_HEADERS, arg);
        break;
    case ARG_HELP:
        print_usage(stdout);
        exit(EXIT_COMPLETED);
    }
    if (ok)
        return EXIT_COMPLETED;
    if (row->kind == ARG_HEADER || row->kind == ARG_SLOT_HEADER)
        fprintf(stderr,
                "tw-loadgen: bad --%s '%s': want 'key: value' with key of [a-z0-9-_.], "
                "a printable value, at most %d of them\n",
                row->name, arg, row->kind == ARG_HEADER ? MAX_HEADERS : MAX_SLOT_HEADERS);
    else if (row->kind == ARG_COUNT)
        fprintf(stderr, "tw-loadgen: --%s wants a whole number from %g to %g, not '%s'\n",
                row->name, row->min, row->max, arg);
    else
        fprintf(stderr,
                "tw-loadgen: --%s wants a duration from %gs to %gs (e.g. 500ms, 10s), not '%s'\n",
                row->name, row->min, row->max, arg);
    return EXIT_BAD_USAGE;
}

static bool valid_method_path(const char *method)
{
    const char *slash = strrchr(method, '/');
    return method[0] == '/' && slash && slash > method + 1 && slash[1] != '\0';
}

static unsigned default_capped(unsigned wanted, unsigned cap)
{
    return wanted < cap ? wanted : cap;
}

static int parse_command_line(int argc, char **argv, struct config *c)
{
    struct option long_options[OPTION_COUNT + 1];
    char short_options[2 * OPTION_COUNT + 1];
    size_t short_len = 0;
    for (size_t i = 0; i < OPTION_COUNT; i++) {
        const struct option_row *row = &option_rows[i];
        int has_arg = row->arg_name ? required_argument : no_argument;
        long_options[i] = (struct option){
            row->name, has_arg, NULL, row->short_name ? row->short_name : LONG_ONLY_BASE + (int)i};
        if (row->short_name) {
            short_options[short_len++] = row->short_name;
            if (has_arg)
                short_options[short_len++] = ':';
        }
    }
    long_options[OPTION_COUNT] = (struct option){0};
    short_options[short_len] = '\0';

    int key;
    while ((key = getopt_long(argc, argv, short_options, long_options, NULL)) != -1) {
        const struct option_row *row = NULL;
        for (size_t i = 0; i < OPTION_COUNT && !row; i++)
            if (key ==
                (option_rows[i].short_name ? option_rows[i].short_name : LONG_ONLY_BASE + (int)i))
                row = &option_rows[i];
        if (!row) {
            fprintf(stderr, "tw-loadgen: see --help\n");
            return EXIT_BAD_USAGE;
        }
        int rc = apply_option(c, row, optarg);
        if (rc != EXIT_COMPLETED)
            return rc;
    }
    if (argc - optind != 2) {
        fprintf(stderr, "tw-loadgen: want a target and a method, e.g. 127.0.0.1:50051 "
                        "/grpc.health.v1.Health/Check "
                        "(see --help)\n");
        return EXIT_BAD_USAGE;
    }
    c->target = argv[optind];
    c->method = argv[optind + 1];
    if (!valid_method_path(c->method)) {
        fprintf(stderr,
                "tw-loadgen: '%s' is not a method path such as /grpc.health.v1.Health/Check\n",
                c->method);
        return EXIT_BAD_USAGE;
    }
    if (c->channels > c->concurrency || c->threads > c->concurrency) {
        fprintf(stderr, "tw-loadgen: --channels and --threads cannot exceed --concurrency (%u)\n",
                c->concurrency);
        return EXIT_BAD_USAGE;
    }
    c->channels = c->channels ? c->channels : default_capped(DEFAULT_CHANNELS, c->concurrency);
    c->threads = c->threads ? c->threads : default_capped(DEFAULT_THREADS, c->concurrency);
    return EXIT_COMPLETED;
}

/* Reads a whole file of at most max bytes into *out (malloc'd, with a NUL
 * after the last byte so text can be used as a string). */
static int read_file(const char *path, size_t max, uint8_t **out, size_t *out_len)
{
    FILE *file = fopen(path, "rb");
    if (!file) {
        fprintf(stderr, "tw-loadgen: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    int rc = -1;
    size_t len = 0, capacity = 4096;
    uint8_t *data = malloc(capacity + 1);
    while (data) {
        len += fread(data + len, 1, capacity - len, file);
        if (len < capacity || len > max)
            break;
        uint8_t *grown = realloc(data, 2 * capacity + 1);
        if (!grown)
            free(data);
        data = grown;
        capacity *= 2;
    }
    if (!data)
        fprintf(stderr, "tw-loadgen: out of memory reading %s\n", path);
    else if (ferror(file))
        fprintf(stderr, "tw-loadgen: cannot read %s: %s\n", path, strerror(errno));
    else if (len > max)
        fprintf(stderr, "tw-loadgen: %s is larger than %zu bytes\n", path, max);
    else
        rc = 0;
    fclose(file);
    if (rc) {
        free(data);
        return rc;
    }
    data[len] = '\0';
    *out = data;
    *out_len = len;
    return 0;
}

static int build_request(const struct config *c, uint8_t **request, size_t *request_len)
{
    *request = NULL;
    *request_len = 0;
    if (c->data_file)
        return read_file(c->data_file, MAX_REQUEST_BYTES, request, request_len) ? EXIT_BAD_USAGE
                                                                                : EXIT_COMPLETED;
    return EXIT_COMPLETED;
}

/* The body h2load must send for the same call: gRPC's 5-byte prefix (not
 * compressed, big-endian length) and the message. */
static int write_grpc_body(const char *path, const uint8_t *message, size_t len)
{
    uint8_t prefix[5] = {0, (uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8),
                         (uint8_t)len};
    FILE *file = fopen(path, "wb");
    bool ok = file && fwrite(prefix, 1, sizeof prefix, file) == sizeof prefix &&
              (len == 0 || fwrite(message, 1, len, file) == len);
    if (file && fclose(file) != 0)
        ok = false;
    if (!ok) {
        fprintf(stderr, "tw-loadgen: cannot write %s: %s\n", path, strerror(errno));
        return EXIT_RUN_FAILED;
    }
    return EXIT_COMPLETED;
}

static double ns_to_ms(uint64_t ns)
{
    return round((double)ns / 1e3) / 1e3;
}

static void report(const struct config *c, const struct load_result *r, size_t request_len)
{
    const histogram *h = r->latency;
    double calls_per_s = round((double)r->calls / c->duration_s * 10) / 10;
    json_t *latency =
        r->calls == 0
            ? json_null()
            : json_pack("{s:f,s:f,s:f,s:f,s:f}", "p50", ns_to_ms(histogram_percentile(h, 50)),
                        "p90", ns_to_ms(histogram_percentile(h, 90)), "p99",
                        ns_to_ms(histogram_percentile(h, 99)), "p999",
                        ns_to_ms(histogram_percentile(h, 99.9)), "max", ns_to_ms(histogram_max(h)));
    json_t *status = json_object();
    for (size_t i = 0; status && i < LOAD_STATUS_SLOTS; i++)
        if (r->status_counts[i])
            json_object_set_new(status, status_names[i],
                                json_integer((json_int_t)r->status_counts[i]));
    json_t *line = json_pack(
        "{s:s,s:s,s:s,s:i,s:i,s:i,s:f,s:f,s:I,s:I,s:f,s:o,s:o}", "tool", "tw-loadgen", "target",
        c->target, "method", c->method, "concurrency", (int)c->concurrency, "channels",
        (int)c->channels, "threads", (int)c->threads, "warmup_s", c->warmup_s, "duration_s",
        c->duration_s, "request_bytes", (json_int_t)request_len, "calls", (json_int_t)r->calls,
        "calls_per_s", calls_per_s, "latency_ms", latency, "status", status);
    if (line)
        json_dumpf(line, stdout, JSON_COMPACT | JSON_REAL_PRECISION(10));
    fputc('\n', stdout);
    fflush(stdout);
    json_decref(line);

    fprintf(stderr, "tw-loadgen: %llu calls in %g s, %.1f/s", (unsigned long long)r->calls,
            c->duration_s, calls_per_s);
    if (r->calls)
        fprintf(stderr, "; latency ms p50 %.3f p99 %.3f p99.9 %.3f max %.3f",
                ns_to_ms(histogram_percentile(h, 50)), ns_to_ms(histogram_percentile(h, 99)),
                ns_to_ms(histogram_percentile(h, 99.9)), ns_to_ms(histogram_max(h)));
    fputc('\n', stderr);
    for (size_t i = 1; i < LOAD_STATUS_SLOTS; i++)
        if (r->status_counts[i])
            fprintf(stderr, "tw-loadgen:   %s x %llu, e.g. \"%s\"\n", status_names[i],
                    (unsigned long long)r->status_counts[i],
                    r->status_example[i] ? r->status_example[i] : "");
}

int main(int argc, char **argv)
{
    struct config c = {.concurrency = 16, .duration_s = 10, .connect_timeout_s = 5};
    uint8_t *request = NULL;
    size_t request_len = 0;
    struct load_result result = {0};
    int rc = parse_command_line(argc, argv, &c);
    if (rc != EXIT_COMPLETED)
        goto out;
    rc = build_request(&c, &request, &request_len);
    if (rc != EXIT_COMPLETED)
        goto out;
    if (c.write_body_file) {
        rc = write_grpc_body(c.write_body_file, request, request_len);
        goto out;
    }

    struct load_spec spec = {
        .target = c.target,
        .method = c.method,
        .concurrency = c.concurrency,
        .channels = c.channels,
        .threads = c.threads,
        .warmup_s = c.warmup_s,
        .duration_s = c.duration_s,
        .deadline_s = c.deadline_s,
        .connect_timeout_s = c.connect_timeout_s,
        .request = request,
        .request_len = request_len,
        .headers = c.headers,
        .header_count = c.header_count,
        .slot_headers = c.slot_headers,
        .slot_header_count = c.slot_header_count,
    };
    fprintf(stderr,
            "tw-loadgen: %s %s, %u calls in flight over %u channels, %u threads, %gs warm-up, %gs "
            "measured\n",
            c.target, c.method, c.concurrency, c.channels, c.threads, c.warmup_s, c.duration_s);
    enum load_outcome outcome = load_run(&spec, &result);
    if (outcome == LOAD_COMPLETED)
        report(&c, &result, request_len);
    rc = outcome == LOAD_COMPLETED ? EXIT_COMPLETED : EXIT_RUN_FAILED;
    load_result_release(&result);
out:
    free(request);
    return rc;
}

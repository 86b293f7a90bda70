/* The settings table and the four sources of tw_config.h. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

enum setting_type {
    SET_ADDRESS,
    SET_PATH,
    SET_INT,
    SET_CHOICE,
    SET_FILE,
    SET_TEXT,   /* any text, "" allowed */
    SET_URL,    /* "" or an http:// or https:// URL */
    SET_SECRET, /* any text, never echoed in errors or help */
    SET__COUNT
};

struct setting {
    const char *name;
    enum setting_type type;
    size_t offset;
    const char *fallback;
    int64_t min, max;           /* SET_INT only */
    const char *const *choices; /* SET_CHOICE: the field (an int) gets the index */
    const char *help;
};

/* In the order of the enums they set (tw_log_level, tw_durability). */
static const char *const log_levels[] = {"debug", "info", "warn", "error", NULL};
static const char *const durabilities[] = {"durable", "fast", NULL};
static const char *const booleans[] = {"false", "true", NULL};
static const char *const blob_backends[] = {"fs", "s3", NULL};
static const char *const plan_limit_modes[] = {"enforce", "count", NULL};
static const char *const voice_engines[] = {"pocketsphinx", "deepgram", NULL};

#define FIELD(f) offsetof(tw_config, f)

static const struct setting settings[] = {
    {"listen", SET_ADDRESS, FIELD(listen), "127.0.0.1:50051",
     .help = "gRPC address to listen on, host:port (port 0 picks a free port)"},
    {"data_dir", SET_PATH, FIELD(data_dir), "./data",
     .help = "directory for the database and stored audio"},
    {"operator_socket", SET_PATH, FIELD(operator_socket), "twd.sock",
     .help = "Unix socket for operator commands; a relative path is inside data_dir"},
    {"durability", SET_CHOICE, FIELD(durability), "durable", .choices = durabilities,
     .help = "durable: writes are acknowledged once synced to disk; fast: once written"},
    {"workers", SET_INT, FIELD(workers), "0", 0, 256,
     .help = "RPC worker threads; 0 means one per core, at least 2"},
    {"max_message_bytes", SET_INT, FIELD(max_message_bytes), "4194304", 1024, 64 << 20,
     .help = "largest request message accepted, in bytes"},
    {"write_threads", SET_INT, FIELD(write_threads), "8", 0, 256,
     .help = "threads that run writes, so a slow disk never holds up other calls; 0 runs them "
             "on the RPC worker threads"},
    {"max_streams", SET_INT, FIELD(max_streams), "0", 0, 1000000,
     .help = "streaming calls (uploads, downloads, watches) open at once in the whole server; "
             "0 means a quarter of the open-file limit, at most 4096"},
    {"max_uploads_per_user", SET_INT, FIELD(max_uploads_per_user), "4", 1, 1000,
     .help = "client-streaming calls (uploads) one account may have open at once"},
    {"max_watches_per_user", SET_INT, FIELD(max_watches_per_user), "16", 1, 1000,
     .help = "server-streaming calls (watches, downloads) one account may have open at once"},
    {"http2_bdp_probe", SET_CHOICE, FIELD(http2_bdp_probe), "false", .choices = booleans,
     .help = "true: gRPC grows each connection's receive window to the link's bandwidth-delay "
             "product (up to 16 MiB an upload held unread), for clients far away on fast links; "
             "false: 64 KiB beyond the message being read"},
    {"shutdown_grace_ms", SET_INT, FIELD(shutdown_grace_ms), "10000", 0, 600000,
     .help = "on SIGTERM, how long calls in flight may take to finish"},
    {"log_level", SET_CHOICE, FIELD(log_level), "info", .choices = log_levels,
     .help = "debug, info, warn or error; at debug every call gets a log line"},
    {"log_slow_ms", SET_INT, FIELD(log_slow_ms), "200", 0, 3600000,
     .help = "unary calls this slow or slower always get a log line; 0: none counts as slow"},
    {"log_sample", SET_INT, FIELD(log_sample), "1000", 0, 1000000000,
     .help = "one in this many calls that went well (and fast) gets a log line; 0: none, 1: "
             "all; failed calls always get one"},
    {"log_lines_per_s", SET_INT, FIELD(log_lines_per_s), "100", 0, 1000000,
     .help = "call log lines a second at most, so a flood cannot fill the disk; beyond, calls "
             "are counted (\"suppressed\"); 0: no limit"},
    {"log_summary_s", SET_INT, FIELD(log_summary_s), "60", 0, 86400,
     .help = "seconds between the per-method summary lines (calls, failures, slow calls, "
             "latency); 0: none"},
    {"job_threads", SET_INT, FIELD(job_threads), "2", 0, 64,
     .help = "background job workers (account deletion, ...); 0 runs none and jobs wait"},
    {"password_scrypt_log2_n", SET_INT, FIELD(password_scrypt_log2_n), "17", 8, 22,
     .help = "scrypt cost of new password hashes, N = 2^this (r=8, p=1); old hashes are "
             "upgraded at login"},
    {"password_hash_threads", SET_INT, FIELD(password_hash_threads), "2", 1, 64,
     .help = "password hashes computed at once; each takes 128 * 2^N * 8 bytes (128 MiB at "
             "N=17)"},
    {"password_hash_queue", SET_INT, FIELD(password_hash_queue), "8", 1, 4096,
     .help = "password hashes (sign-ins, sign-ups, password checks) waiting for a thread at most; "
             "beyond, RESOURCE_EXHAUSTED (RATE_004) with a RetryInfo at once"},
    {"login_failures_per_account", SET_INT, FIELD(login_failures_per_account), "5", 1, 1000,
     .help = "failed sign-ins per account per window before RESOURCE_EXHAUSTED"},
    {"login_failures_per_peer", SET_INT, FIELD(login_failures_per_peer), "50", 1, 100000,
     .help = "failed sign-ins per client address per window before RESOURCE_EXHAUSTED"},
    {"login_failure_window_s", SET_INT, FIELD(login_failure_window_s), "900", 1, 86400,
     .help = "how long a failed sign-in counts against its account and address"},
    {"api_calls_per_hour", SET_INT, FIELD(api_calls_per_hour), "1000", 1, 100000000,
     .help = "calls per user per hour, all signed-in calls together"},
    {"api_write_calls_per_hour", SET_INT, FIELD(api_write_calls_per_hour), "1000", 1, 100000000,
     .help = "calls per user per hour to methods that change data"},
    {"tls_cert", SET_FILE, FIELD(tls_cert), "",
     .help = "PEM certificate chain: serve TLS (with tls_key); empty serves plaintext"},
    {"tls_key", SET_FILE, FIELD(tls_key), "", .help = "PEM private key of tls_cert"},
    {"allow_insecure_remote", SET_CHOICE, FIELD(allow_insecure_remote), "false",
     .choices = booleans,
     .help = "true: serve plaintext on an address other than loopback (behind a TLS proxy)"},
    {"blob_backend", SET_CHOICE, FIELD(blob_backend), "fs", .choices = blob_backends,
     .help = "where audio is stored: fs (data_dir/blobs) or s3 (the s3_* settings)"},
    {"s3_endpoint", SET_URL, FIELD(s3_endpoint), "",
     .help = "S3-compatible endpoint, http(s)://host[:port] (R2, AWS S3, MinIO)"},
    {"s3_region", SET_TEXT, FIELD(s3_region), "us-east-1",
     .help = "S3 region to sign for (\"auto\" for Cloudflare R2)"},
    {"s3_bucket", SET_TEXT, FIELD(s3_bucket), "", .help = "S3 bucket holding the audio"},
    {"s3_access_key_id", SET_TEXT, FIELD(s3_access_key_id), "", .help = "S3 access key id"},
    {"s3_secret_access_key", SET_SECRET, FIELD(s3_secret_access_key), "",
     .help = "S3 secret access key (best from TW_S3_SECRET_ACCESS_KEY; never logged)"},
    {"s3_connect_timeout_ms", SET_INT, FIELD(s3_connect_timeout_ms), "5000", 100, 600000,
     .help = "S3: time to connect"},
    {"s3_timeout_ms", SET_INT, FIELD(s3_timeout_ms), "60000", 100, 3600000,
     .help = "S3: time for one request, a 5 MiB part included"},
    {"s3_max_attempts", SET_INT, FIELD(s3_max_attempts), "3", 1, 10,
     .help = "S3: tries of a request that is safe to repeat"},
    {"deepgram_base_url", SET_URL, FIELD(deepgram_base_url), "https://api.deepgram.com",
     .help = "Deepgram API base URL"},
    {"deepgram_api_key", SET_SECRET, FIELD(deepgram_api_key), "",
     .help = "Deepgram API key; without one Deepgram is not used (best from "
             "TW_DEEPGRAM_API_KEY; never logged)"},
    {"deepgram_model", SET_TEXT, FIELD(deepgram_model), "nova-3", .help = "Deepgram model"},
    {"deepgram_connect_timeout_ms", SET_INT, FIELD(deepgram_connect_timeout_ms), "5000", 100,
     600000, .help = "Deepgram: time to connect"},
    {"deepgram_timeout_ms", SET_INT, FIELD(deepgram_timeout_ms), "120000", 100, 3600000,
     .help = "Deepgram: time for one attempt, upload and transcription"},
    {"deepgram_max_attempts", SET_INT, FIELD(deepgram_max_attempts), "3", 1, 10,
     .help = "Deepgram: tries after timeouts, 429 and 5xx"},
    {"deepgram_breaker_failures", SET_INT, FIELD(deepgram_breaker_failures), "5", 1, 1000,
     .help = "Deepgram: failed calls in a row that stop calling for a while"},
    {"deepgram_breaker_cooldown_ms", SET_INT, FIELD(deepgram_breaker_cooldown_ms), "30000", 100,
     3600000, .help = "Deepgram: how long calls stop after that"},
    {"stripe_base_url", SET_URL, FIELD(stripe_base_url), "https://api.stripe.com",
     .help = "Stripe API base URL"},
    {"stripe_secret_key", SET_SECRET, FIELD(stripe_secret_key), "",
     .help = "Stripe secret key (sk_...); without one nothing is charged and administrators "
             "grant plans (best from TW_STRIPE_SECRET_KEY; never logged)"},
    {"stripe_webhook_secret", SET_SECRET, FIELD(stripe_webhook_secret), "",
     .help = "signing secret (whsec_...) of the Stripe endpoint POST /webhooks/stripe; without "
             "one every event is refused (never logged)"},
    {"stripe_webhook_secret_2", SET_SECRET, FIELD(stripe_webhook_secret_2), "",
     .help = "a second signing secret accepted too, while the endpoint's secret is rolled"},
    {"stripe_webhook_tolerance_s", SET_INT, FIELD(stripe_webhook_tolerance_s), "300", 1, 86400,
     .help = "Stripe webhooks: how far a signature's timestamp may be from now"},
    {"stripe_connect_timeout_ms", SET_INT, FIELD(stripe_connect_timeout_ms), "5000", 100, 600000,
     .help = "Stripe: time to connect"},
    {"stripe_timeout_ms", SET_INT, FIELD(stripe_timeout_ms), "30000", 100, 600000,
     .help = "Stripe: time for one attempt of a request"},
    {"stripe_max_attempts", SET_INT, FIELD(stripe_max_attempts), "3", 1, 10,
     .help = "Stripe: tries of a request (each POST carries an Idempotency-Key) after timeouts, "
             "409, 429 and 5xx"},
    {"plan_limits", SET_CHOICE, FIELD(plan_limits), "enforce", .choices = plan_limit_modes,
     .help = "enforce: a metered call over the plan's limit for the period is refused "
             "(RESOURCE_EXHAUSTED, QUOTA_001); count: use is counted, nothing is refused (load "
             "tests, tests of other features)"},
    {"focus_abandon_after_minutes", SET_INT, FIELD(focus_abandon_after_minutes), "240", 1, 43200,
     .help = "a focus session left running, paused or on a break this long without a change is "
             "abandoned by the server"},
    {"voice_max_bytes", SET_INT, FIELD(voice_max_bytes), "26214400", 1, INT64_C(1) << 30,
     .help = "largest voice note accepted, in bytes (25 MiB)"},
    {"voice_retention_days", SET_INT, FIELD(voice_retention_days), "90", 1, 36500,
     .help = "voice notes older than this many days are deleted with their audio"},
    {"voice_engine", SET_CHOICE, FIELD(voice_engine), "pocketsphinx", .choices = voice_engines,
     .help = "transcription engine: pocketsphinx (offline) or deepgram (needs deepgram_api_key)"},
    {"voice_model_dir", SET_PATH, FIELD(voice_model_dir), "/usr/share/pocketsphinx/model/en-us",
     .help = "PocketSphinx model directory (acoustic model en-us/, en-us.lm.bin, dictionary)"},
    {"voice_transcribers", SET_INT, FIELD(voice_transcribers), "2", 1, 64,
     .help = "voice notes transcribed at once after upload (each decoder takes ~90 MB while "
             "loaded)"},
    {"voice_live_decoders", SET_INT, FIELD(voice_live_decoders), "2", 0, 64,
     .help = "wav uploads transcribed while they arrive (decoders load when needed, ~90 MB "
             "each, freed after a minute idle); 0 turns it off"},
    {"voice_job_lease_s", SET_INT, FIELD(voice_job_lease_s), "1800", 5, 86400,
     .help = "seconds a transcription is leased; after a crash it runs again once they pass"},
    {"voice_job_attempts", SET_INT, FIELD(voice_job_attempts), "10", 1, 100,
     .help = "tries of a transcription (backing off between them) before the note is FAILED"},
    {"http_listen", SET_ADDRESS, FIELD(http_listen), "127.0.0.1:8080",
     .help = "HTTP address for /health, /health/db, /health/detailed and /metrics, host:port "
             "(port 0 picks a free port); TLS as for gRPC (tls_cert, tls_key)"},
    {"http_max_connections", SET_INT, FIELD(http_max_connections), "64", 1, 10000,
     .help = "HTTP connections served at once (each on a thread); more wait to be accepted"},
    {"http_timeout_s", SET_INT, FIELD(http_timeout_s), "30", 1, 3600,
     .help = "longest HTTP request, from its first byte, and longest idle HTTP connection"},
    {"store_statistics", SET_CHOICE, FIELD(store_statistics), "true", .choices = booleans,
     .help = "true: keep RocksDB's statistics (read/write timings, cache, compaction) for "
             "/metrics"},
    {"backup_dir", SET_FILE, FIELD(backup_dir), "",
     .help = "directory for scheduled backups (database and audio); empty: none scheduled"},
    {"backup_interval_s", SET_INT, FIELD(backup_interval_s), "86400", 60, 31 * 86400,
     .help = "seconds between scheduled backups (the first one runs this long after start-up, "
             "or at once when the last one is older)"},
    {"backup_keep", SET_INT, FIELD(backup_keep), "7", 1, 1000,
     .help = "scheduled backups kept in backup_dir; older ones and audio only they hold are "
             "removed"},
    {"backup_upload", SET_CHOICE, FIELD(backup_upload), "false", .choices = booleans,
     .help = "true: copy each scheduled backup to the S3 bucket (the s3_* settings), the "
             "off-site copy"},
    {"backup_s3_prefix", SET_TEXT, FIELD(backup_s3_prefix), "backups/",
     .help = "object names of uploaded backups start with this"},
};

#define NSETTINGS (sizeof settings / sizeof settings[0])

/* ---- parsers: text -> field, or a reason ---------------------------------- */

typedef bool parse_fn(const struct setting *s, const char *text, void *field, char *why,
                      size_t whylen);

static bool replace_string(void *field, const char *text)
{
    char *copy = strdup(text);
    if (copy == NULL)
        return false;
    free(*(char **)field);
    *(char **)field = copy;
    return true;
}

static bool parse_address(const struct setting *s, const char *text, void *field, char *why,
                          size_t whylen)
{
    const char *colon = strrchr(text, ':');
    char *end;
    long port = colon ? strtol(colon + 1, &end, 10) : -1;
    if (colon == NULL || colon == text || colon[1] == '\0' || *end != '\0' || port < 0 ||
        port > 65535) {
        snprintf(why, whylen, "expected host:port with a port from 0 to 65535");
        return false;
    }
    return replace_string(field, text);
}

static bool parse_path(const struct setting *s, const char *text, void *field, char *why,
                       size_t whylen)
{
    if (text[0] == '\0' || strlen(text) >= PATH_MAX) {
        snprintf(why, whylen, "expected a directory path");
        return false;
    }
    return replace_string(field, text);
}

/* A file path, or "" for none (the field is then NULL). */
static bool parse_file(const struct setting *s, const char *text, void *field, char *why,
                       size_t whylen)
{
    if (text[0] == '\0') {
        free(*(char **)field);
        *(char **)field = NULL;
        return true;
    }
    return parse_path(s, text, field, why, whylen);
}

static bool parse_int(const struct setting *s, const char *text, void *field, char *why,
                      size_t whylen)
{
    errno = 0;
    char *end;
    long long v = strtoll(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < s->min || v > s->max) {
        snprintf(why, whylen, "expected a whole number from %lld to %lld", (long long)s->min,
                 (long long)s->max);
        return false;
    }
    *(int64_t *)field = v;
    return true;
}

static bool parse_choice(const struct setting *s, const char *text, void *field, char *why,
                         size_t whylen)
{
    for (int i = 0; s->choices[i] != NULL; i++) {
        if (strcmp(text, s->choices[i]) == 0) {
            *(int *)field = i;
            return true;
        }
    }
    size_t n = (size_t)snprintf(why, whylen, "expected one of");
    for (int i = 0; s->choices[i] != NULL && n < whylen; i++)
        n += (size_t)snprintf(why + n, whylen - n, "%s %s", i ? "," : "", s->choices[i]);
    return false;
}

static bool parse_text(const struct setting *s, const char *text, void *field, char *why,
                       size_t whylen)
{
    if (strlen(text) > 1024) {
        snprintf(why, whylen, "longer than 1024 bytes");
        return false;
    }
    return replace_string(field, text);
}

static bool parse_url(const struct setting *s, const char *text, void *field, char *why,
                      size_t whylen)
{
    if (text[0] != '\0' && strncmp(text, "http://", 7) != 0 && strncmp(text, "https://", 8) != 0) {
        snprintf(why, whylen, "expected an http:// or https:// URL");
        return false;
    }
    return parse_text(s, text, field, why, whylen);
}

static parse_fn *const parsers[SET__COUNT] = {
    [SET_ADDRESS] = parse_address, [SET_PATH] = parse_path,   [SET_INT] = parse_int,
    [SET_CHOICE] = parse_choice,   [SET_FILE] = parse_file,   [SET_TEXT] = parse_text,
    [SET_URL] = parse_url,         [SET_SECRET] = parse_text,
};

static bool is_string(enum setting_type t)
{
    return t == SET_ADDRESS || t == SET_PATH || t == SET_FILE || t == SET_TEXT || t == SET_URL ||
           t == SET_SECRET;
}

/* ---- sources ---------------------------------------------------------------- */

static tw_err apply(tw_config *cfg, const struct setting *s, const char *text, const char *source,
                    char *errbuf, size_t errlen)
{
    char why[160] = "out of memory";
    if (parsers[s->type](s, text, (char *)cfg + s->offset, why, sizeof why))
        return TW_OK;
    snprintf(errbuf, errlen, "invalid setting %s=\"%s\" (from %s): %s", s->name,
             s->type == SET_SECRET ? "(hidden)" : text, source, why);
    return TW_ERR_VALIDATION;
}

static const struct setting *find_setting(const char *name)
{
    for (size_t i = 0; i < NSETTINGS; i++)
        if (strcmp(settings[i].name, name) == 0)
            return &settings[i];
    return NULL;
}

/* "data_dir" -> "TW_DATA_DIR" */
static void env_name(const char *name, char *out, size_t len)
{
    size_t n = (size_t)snprintf(out, len, "TW_%s", name);
    for (size_t i = 3; i < n && i < len; i++)
        out[i] = (char)toupper((unsigned char)out[i]);
}

/* "--data-dir" or "--data_dir" -> the data_dir setting */
static const struct setting *find_flag(const char *flag)
{
    char name[64];
    size_t len = strcspn(flag, "=");
    if (len >= sizeof name)
        return NULL;
    for (size_t i = 0; i < len; i++)
        name[i] = flag[i] == '-' ? '_' : flag[i];
    name[len] = '\0';
    return find_setting(name);
}

static tw_err load_file(tw_config *cfg, const char *path, char *errbuf, size_t errlen)
{
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        snprintf(errbuf, errlen, "cannot read config file %s: %s (line %d)", path, jerr.text,
                 jerr.line);
        return TW_ERR_VALIDATION;
    }
    tw_err err = TW_OK;
    if (!json_is_object(root)) {
        snprintf(errbuf, errlen, "config file %s: expected a JSON object", path);
        err = TW_ERR_VALIDATION;
    }
    const char *key;
    json_t *value;
    json_object_foreach(root, key, value)
    {
        if (err)
            break;
        const struct setting *s = find_setting(key);
        char text[PATH_MAX];
        if (s == NULL) {
            snprintf(errbuf, errlen, "config file %s: unknown setting \"%s\"", path, key);
            err = TW_ERR_VALIDATION;
        } else if (json_is_string(value)) {
            err = apply(cfg, s, json_string_value(value), path, errbuf, errlen);
        } else if (json_is_integer(value)) {
            snprintf(text, sizeof text, "%" JSON_INTEGER_FORMAT, json_integer_value(value));
            err = apply(cfg, s, text, path, errbuf, errlen);
        } else {
            snprintf(errbuf, errlen, "config file %s: setting \"%s\" must be a string or integer",
                     path, key);
            err = TW_ERR_VALIDATION;
        }
    }
    json_decref(root);
    return err;
}

/* The --config flag, if any; it must be read before the other flags apply. */
static const char *config_flag(int argc, char **argv)
{
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            return argv[i + 1];
        if (strncmp(argv[i], "--config=", 9) == 0)
            return argv[i] + 9;
    }
    return NULL;
}

/* Settings that only make sense together. */
static tw_err check_together(const tw_config *cfg, char *errbuf, size_t errlen)
{
    if (cfg->voice_engine == TW_VOICE_ENGINE_DEEPGRAM && cfg->deepgram_api_key[0] == '\0') {
        snprintf(errbuf, errlen, "voice_engine=deepgram needs setting deepgram_api_key");
        return TW_ERR_VALIDATION;
    }
    if (cfg->backup_upload && cfg->backup_dir == NULL) {
        snprintf(errbuf, errlen, "backup_upload=true needs setting backup_dir");
        return TW_ERR_VALIDATION;
    }
    if (cfg->blob_backend != TW_BLOB_BACKEND_S3 && !cfg->backup_upload)
        return TW_OK;
    const struct {
        const char *name, *value;
    } needed[] = {
        {"s3_endpoint", cfg->s3_endpoint},
        {"s3_region", cfg->s3_region},
        {"s3_bucket", cfg->s3_bucket},
        {"s3_access_key_id", cfg->s3_access_key_id},
        {"s3_secret_access_key", cfg->s3_secret_access_key},
    };
    for (size_t i = 0; i < sizeof needed / sizeof needed[0]; i++) {
        if (needed[i].value == NULL || needed[i].value[0] == '\0') {
            snprintf(errbuf, errlen, "%s needs setting %s",
                     cfg->blob_backend == TW_BLOB_BACKEND_S3 ? "blob_backend=s3"
                                                             : "backup_upload=true",
                     needed[i].name);
            return TW_ERR_VALIDATION;
        }
    }
    return TW_OK;
}

tw_err tw_config_load(tw_config *cfg, int argc, char **argv, char *errbuf, size_t errlen)
{
    memset(cfg, 0, sizeof *cfg);
    tw_err err = TW_OK;
    for (size_t i = 0; i < NSETTINGS && !err; i++)
        err = apply(cfg, &settings[i], settings[i].fallback, "default", errbuf, errlen);

    const char *file = config_flag(argc, argv);
    if (file == NULL)
        file = getenv("TW_CONFIG");
    if (!err && file != NULL && file[0] != '\0')
        err = load_file(cfg, file, errbuf, errlen);

    for (size_t i = 0; i < NSETTINGS && !err; i++) {
        char var[64];
        env_name(settings[i].name, var, sizeof var);
        const char *value = getenv(var);
        if (value != NULL)
            err = apply(cfg, &settings[i], value, var, errbuf, errlen);
    }

    for (int i = 0; i < argc && !err; i++) {
        const char *arg = argv[i];
        if (strncmp(arg, "--", 2) != 0) {
            snprintf(errbuf, errlen, "unexpected argument \"%s\"", arg);
            err = TW_ERR_VALIDATION;
            break;
        }
        const char *eq = strchr(arg, '=');
        const char *value = eq ? eq + 1 : (i + 1 < argc ? argv[i + 1] : NULL);
        bool is_config = strncmp(arg + 2, "config", 6) == 0 && (arg[8] == '\0' || arg[8] == '=');
        const struct setting *s = is_config ? NULL : find_flag(arg + 2);
        if (!is_config && s == NULL) {
            snprintf(errbuf, errlen, "unknown option %.*s", (int)strcspn(arg, "="), arg);
            err = TW_ERR_VALIDATION;
        } else if (value == NULL) {
            snprintf(errbuf, errlen, "option %s needs a value", arg);
            err = TW_ERR_VALIDATION;
        } else if (s != NULL) {
            err = apply(cfg, s, value, "command line", errbuf, errlen);
        }
        if (eq == NULL)
            i++;
    }
    if (!err && (cfg->tls_cert == NULL) != (cfg->tls_key == NULL)) {
        snprintf(errbuf, errlen, "invalid setting %s: tls_cert and tls_key go together",
                 cfg->tls_cert ? "tls_key" : "tls_cert");
        err = TW_ERR_VALIDATION;
    }
    if (!err)
        err = check_together(cfg, errbuf, errlen);
    if (err)
        tw_config_free(cfg);
    return err;
}

void tw_config_free(tw_config *cfg)
{
    for (size_t i = 0; i < NSETTINGS; i++) {
        if (is_string(settings[i].type)) {
            char **field = (char **)((char *)cfg + settings[i].offset);
            if (settings[i].type == SET_SECRET && *field != NULL)
                memset(*field, 0, strlen(*field));
            free(*field);
            *field = NULL;
        }
    }
}

void tw_config_each(const tw_config *cfg,
                    void (*fn)(void *ctx, const char *name, const char *value), void *ctx)
{
    for (size_t i = 0; i < NSETTINGS; i++) {
        const struct setting *s = &settings[i];
        const void *field = (const char *)cfg + s->offset;
        char text[64];
        const char *value = text;
        if (s->type == SET_INT) {
            snprintf(text, sizeof text, "%lld", (long long)*(const int64_t *)field);
        } else if (s->type == SET_CHOICE) {
            value = s->choices[*(const int *)field];
        } else {
            const char *str = *(char *const *)field;
            value = str == NULL ? "" : s->type == SET_SECRET ? (str[0] ? "(set)" : "") : str;
        }
        fn(ctx, s->name, value);
    }
}

void tw_config_print_help(FILE *out)
{
    fprintf(out, "Settings (flag / environment variable / JSON key, default):\n");
    for (size_t i = 0; i < NSETTINGS; i++) {
        const struct setting *s = &settings[i];
        char flag[64], var[64];
        snprintf(flag, sizeof flag, "--%s", s->name);
        for (char *p = flag; *p; p++)
            if (*p == '_')
                *p = '-';
        env_name(s->name, var, sizeof var);
        if (s->fallback[0] != '\0')
            fprintf(out, "  %-22s %-24s %s (default %s)\n", flag, var, s->help, s->fallback);
        else
            fprintf(out, "  %-22s %-24s %s (no default)\n", flag, var, s->help);
    }
    fprintf(out, "  %-22s %-24s %s\n", "--config FILE", "TW_CONFIG",
            "JSON file with any of the settings above, by key");
}

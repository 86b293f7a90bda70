/*
 * twd's settings. One table in config.c declares each setting once: its
 * name (also the JSON key, the --flag with dashes and the TW_ variable in
 * capitals), type, default, limits and help. Sources apply in this order,
 * later ones winning: defaults, the JSON file (--config or TW_CONFIG),
 * TW_* environment variables, command-line flags.
 */
#ifndef TW_CONFIG_H
#define TW_CONFIG_H

#include "tw_err.h"
#include "tw_log.h"
#include "tw_store.h"

#include <stdint.h>
#include <stdio.h>

/* Where audio blobs live (blob_backend). */
typedef enum tw_blob_backend {
    TW_BLOB_BACKEND_FS, /* data_dir/blobs */
    TW_BLOB_BACKEND_S3, /* an S3-compatible bucket (s3_* settings) */
} tw_blob_backend;
/* Transcription engines, in the order of the voice_engine choices. */
typedef enum tw_voice_engine_kind {
    TW_VOICE_ENGINE_POCKETSPHINX, /* offline, Debian's PocketSphinx with the en-us model */
    TW_VOICE_ENGINE_DEEPGRAM,     /* Deepgram's pre-recorded API (deepgram_* settings) */
} tw_voice_engine_kind;

/* What plan limits do (plan_limits). */
typedef enum tw_plan_limits {
    TW_PLAN_LIMITS_ENFORCE, /* a call over the plan's limit is refused (QUOTA_001) */
    TW_PLAN_LIMITS_COUNT,   /* use is counted up to the limit, nothing is refused */
} tw_plan_limits;

typedef struct tw_config {
    char *listen;                 /* gRPC address, host:port */
    char *data_dir;               /* RocksDB and blobs live here */
    char *operator_socket;        /* Unix socket for operators; relative: inside data_dir */
    tw_durability durability;     /* when a write is acknowledged */
    int64_t workers;              /* completion-queue threads; 0: one per core, at least 2 */
    int64_t max_message_bytes;    /* largest request message accepted */
    int64_t write_threads;        /* threads running TW_WRITE handlers; 0: the RPC workers */
    int64_t max_streams;          /* streaming calls open at once; 0: from the open-file limit */
    int64_t max_uploads_per_user; /* client streams one account may hold open */
    int64_t max_watches_per_user; /* server streams one account may hold open */
    int http2_bdp_probe;          /* 1: gRPC grows receive windows to the link (engine.h) */
    int64_t shutdown_grace_ms;    /* how long calls in flight may finish at shutdown */
    tw_log_level log_level;
    int64_t log_slow_ms;     /* unary calls this slow always get a log line */
    int64_t log_sample;      /* one in this many calls that went well gets one */
    int64_t log_lines_per_s; /* call lines a second at most; 0: no limit */
    int64_t log_summary_s;   /* seconds between per-method summary lines; 0: none */
    int64_t job_threads;     /* durable-job workers; 0 runs none (jobs wait) */

    /* Accounts (server/auth). */
    int64_t password_scrypt_log2_n;     /* scrypt N = 2^this for new hashes */
    int64_t password_hash_threads;      /* hashes at once: ~128 MiB each at N=2^17 */
    int64_t password_hash_queue;        /* hashes waiting at most; beyond, RATE_004 at once */
    int64_t login_failures_per_account; /* per window, then RATE_001 */
    int64_t login_failures_per_peer;    /* per window, from one client address */
    int64_t login_failure_window_s;
    int64_t api_calls_per_hour;       /* per user, every authenticated call */
    int64_t api_write_calls_per_hour; /* per user, calls that change data */

    /* TLS: both set, or neither (plaintext, loopback only unless allowed). */
    char *tls_cert;            /* PEM certificate chain file; NULL when unset */
    char *tls_key;             /* PEM private key file; NULL when unset */
    int allow_insecure_remote; /* 1: plaintext on a non-loopback address too */
    /* Blob storage: the filesystem, or S3 (R2, AWS S3, MinIO). */
    tw_blob_backend blob_backend;
    char *s3_endpoint; /* http(s)://host[:port], path-style requests */
    char *s3_region;   /* "us-east-1"; "auto" for R2 */
    char *s3_bucket;
    char *s3_access_key_id;
    char *s3_secret_access_key; /* secret: never logged or echoed */
    int64_t s3_connect_timeout_ms;
    int64_t s3_timeout_ms; /* per request, a 5 MiB part included */
    int64_t s3_max_attempts;
    /* Deepgram's pre-recorded API (clients/deepgram.h); unused without a key. */
    char *deepgram_base_url;
    char *deepgram_api_key; /* secret: never logged or echoed */
    char *deepgram_model;
    int64_t deepgram_connect_timeout_ms;
    int64_t deepgram_timeout_ms; /* per attempt: upload and transcription */
    int64_t deepgram_max_attempts;
    int64_t deepgram_breaker_failures;
    int64_t deepgram_breaker_cooldown_ms;
    /* Billing (server/billing): Stripe when stripe_secret_key is set, else
     * the embedded default (admin-granted plans, nothing charged). */
    char *stripe_base_url;
    char *stripe_secret_key;       /* secret: never logged or echoed */
    char *stripe_webhook_secret;   /* whsec_...: signs POST /webhooks/stripe */
    char *stripe_webhook_secret_2; /* the other secret while one is rolled */
    int64_t stripe_webhook_tolerance_s;
    int64_t stripe_connect_timeout_ms;
    int64_t stripe_timeout_ms;
    int64_t stripe_max_attempts;
    tw_plan_limits plan_limits;
    int64_t focus_abandon_after_minutes; /* a focus session left this long is abandoned */
    /* Voice notes (server/voice). */
    int64_t voice_max_bytes;           /* largest upload; larger ones get RESOURCE_EXHAUSTED */
    int64_t voice_retention_days;      /* notes older than this are deleted with their audio */
    tw_voice_engine_kind voice_engine; /* which transcription engine */
    char *voice_model_dir;             /* PocketSphinx's model: <dir>/en-us, en-us.lm.bin, ... */
    int64_t voice_transcribers;        /* transcriptions run at once (each holds a decoder) */
    int64_t voice_live_decoders;       /* uploads transcribed while they arrive (wav); 0: none */
    int64_t voice_job_lease_s;         /* a transcription job's lease (rerun after a crash) */
    int64_t voice_job_attempts;        /* tries of a transcription before FAILED */
    /* Operations (server/http, server/ops). */
    char *http_listen;            /* /health, /metrics: host:port */
    int64_t http_max_connections; /* HTTP connections served at once */
    int64_t http_timeout_s;       /* one HTTP request, and an idle connection */
    int store_statistics;         /* 1: RocksDB statistics for /metrics */
    char *backup_dir;             /* scheduled backups go here; NULL: none */
    int64_t backup_interval_s;    /* between scheduled backups */
    int64_t backup_keep;          /* scheduled backups kept; older ones are purged */
    int backup_upload;            /* 1: copy each scheduled backup to S3 (s3_* settings) */
    char *backup_s3_prefix;       /* object names of uploaded backups start with this */
} tw_config;

/*
 * Fills cfg from every source. argv holds only options (after the
 * subcommand). On a bad setting returns TW_ERR_VALIDATION with one line in
 * errbuf naming the setting, its source and what is wrong.
 */
tw_err tw_config_load(tw_config *cfg, int argc, char **argv, char *errbuf, size_t errlen);

/* Frees what tw_config_load allocated. */
void tw_config_free(tw_config *cfg);

/* Calls fn with each setting's name and value as text, in the table's
 * order; a secret's value is "(set)" or "" (never the secret), a path that
 * is unset is "". Strings are borrowed during each call. */
void tw_config_each(const tw_config *cfg,
                    void (*fn)(void *ctx, const char *name, const char *value), void *ctx);

/* Lists every setting with its flag, variable, default and meaning. */
void tw_config_print_help(FILE *out);

#endif

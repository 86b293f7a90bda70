/*
 * `twd serve`: open the store, start the RPC engine with every service,
 * serve until SIGTERM or SIGINT, then stop in order. And `twd methods`,
 * which builds the same engine without serving, to list (and so check)
 * every method table against the .proto files.
 */
#include "auth/auth.h"
#include "billing/billing.h"
#include "blob_s3.h"
#include "cli.h"
#include "deepgram.h"
#include "http/routes.h"
#include "jobs.h"
#include "kit/gate.h"
#include "ops/ops.h"
#include "rpc/call_log.h"
#include "rpc/engine.h"
#include "services/services.h"
#include "stripe.h"
#include "tw_blob.h"
#include "tw_log.h"
#include "tw_migrate.h"
#include "tw_net.h"
#include "voice/voice.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

/* A certificate chain or key file larger than this is not one. */
#define TLS_FILE_MAX (1 << 20)
/* Log lines waiting for the writer thread at most; beyond, lines are
 * dropped and counted (tw_log.h). */
#define LOG_QUEUE_BYTES (4u << 20)
/* Threads and queue of the pool for blocking work (backups, vendors). */
#define SLOW_POOL_THREADS 2
#define SLOW_POOL_QUEUE   64

/* The whole of a small file, NUL-terminated and malloc'd; NULL with errno. */
static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    char *text = malloc(TLS_FILE_MAX + 1);
    size_t n = text ? fread(text, 1, TLS_FILE_MAX + 1, f) : 0;
    bool ok = text && !ferror(f) && n <= TLS_FILE_MAX;
    fclose(f);
    if (!ok) {
        free(text);
        errno = text ? EFBIG : ENOMEM;
        return NULL;
    }
    text[n] = '\0';
    return text;
}

/* Whether every address host resolves to is a loopback one. */
static bool host_is_loopback(const char *listen)
{
    char host[256];
    const char *port;
    if (!tw_net_split_listen(listen, host, sizeof host, &port))
        return false;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    if (getaddrinfo(host, NULL, &hints, &res) != 0)
        return false;
    bool loopback = res != NULL;
    for (struct addrinfo *a = res; a != NULL; a = a->ai_next) {
        if (a->ai_family == AF_INET) {
            const struct sockaddr_in *in = (const void *)a->ai_addr;
            loopback &= (ntohl(in->sin_addr.s_addr) >> 24) == 127;
        } else if (a->ai_family == AF_INET6) {
            const struct sockaddr_in6 *in6 = (const void *)a->ai_addr;
            loopback &= IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr) != 0;
        } else {
            loopback = false;
        }
    }
    freeaddrinfo(res);
    return loopback;
}

/* TLS from tls_cert and tls_key, checked to be a certificate and its key,
 * for gRPC (listen) and HTTP (http_listen) alike; plaintext only on
 * loopback unless allow_insecure_remote. On failure prints one line and
 * returns false. */
static bool load_transport(const tw_config *cfg, char **cert_pem, char **key_pem)
{
    *cert_pem = *key_pem = NULL;
    if (cfg->tls_cert == NULL) {
        const char *setting = !host_is_loopback(cfg->listen)        ? "listen"
                              : !host_is_loopback(cfg->http_listen) ? "http_listen"
                                                                    : NULL;
        if (cfg->allow_insecure_remote || setting == NULL)
            return true;
        tw_cli_fail("invalid setting %s=%s: plaintext is served only on loopback; set "
                    "tls_cert and tls_key, or allow_insecure_remote=true behind a TLS proxy",
                    setting, strcmp(setting, "listen") == 0 ? cfg->listen : cfg->http_listen);
        return false;
    }
    const char *which = "tls_cert", *path = cfg->tls_cert;
    if ((*cert_pem = read_file(cfg->tls_cert)) == NULL ||
        (which = "tls_key", path = cfg->tls_key, *key_pem = read_file(cfg->tls_key)) == NULL) {
        tw_cli_fail("invalid setting %s=%s: %s", which, path, strerror(errno));
        return false;
    }
    BIO *cert_bio = BIO_new_mem_buf(*cert_pem, -1), *key_bio = BIO_new_mem_buf(*key_pem, -1);
    X509 *cert = cert_bio ? PEM_read_bio_X509(cert_bio, NULL, NULL, NULL) : NULL;
    EVP_PKEY *key = key_bio ? PEM_read_bio_PrivateKey(key_bio, NULL, NULL, NULL) : NULL;
    const char *problem = cert == NULL  ? "tls_cert: no PEM certificate in the file"
                          : key == NULL ? "tls_key: no PEM private key in the file"
                          : X509_check_private_key(cert, key) != 1
                              ? "tls_key: not the private key of tls_cert"
                              : NULL;
    X509_free(cert);
    EVP_PKEY_free(key);
    BIO_free(cert_bio);
    BIO_free(key_bio);
    ERR_clear_error();
    if (problem != NULL) {
        tw_cli_fail("invalid setting %s", problem);
        return false;
    }
    return true;
}

/* Every connection, open upload and blob read holds a file descriptor:
 * take all the system allows this process (the soft limit is often 1024).
 * The engine keeps its streams to a share of it (max_streams). */
static void raise_open_file_limit(void)
{
    struct rlimit files;
    if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
        files.rlim_cur = files.rlim_max;
        setrlimit(RLIMIT_NOFILE, &files);
    }
}

/* A call's "now" is read from the store's clock: twd's one clock. */
static int64_t store_clock_ms(void *store)
{
    return tw_store_now_ms(store);
}

/* Builds an engine with every service registered; errbuf says why not. */
static tw_err engine_with_services(const tw_config *cfg, tw_app *app, const char *socket,
                                   const char *cert_pem, const char *key_pem, tw_engine **out,
                                   char *errbuf, size_t errlen)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    tw_engine_config ecfg = {
        .listen = cfg->listen,
        .operator_socket = socket,
        .workers = cfg->workers > 0 ? (int)cfg->workers : (int)(cores > 2 ? cores : 2),
        .max_message_bytes = (size_t)cfg->max_message_bytes,
        .requests_per_method = 8,
        .max_stream_backlog = 8u << 20,
        .max_streams = (int)cfg->max_streams,
        .max_client_streams_per_user = (int)cfg->max_uploads_per_user,
        .max_server_streams_per_user = (int)cfg->max_watches_per_user,
        .bdp_probe = cfg->http2_bdp_probe != 0,
        .write_threads = (int)cfg->write_threads,
        .write_queue = 1024,
        .tls_cert_pem = cert_pem,
        .tls_key_pem = key_pem,
        /* `twd methods` opens no store: it serves no call. */
        .clock_ms = app->store ? store_clock_ms : NULL,
        .clock_ctx = app->store,
    };
    tw_err err = tw_engine_new(&ecfg, out);
    if (err) {
        snprintf(errbuf, errlen, "cannot create the RPC engine: %s", tw_err_message(err));
        return err;
    }
    tw_engine_set_gate(*out, tw_gate_admit, app);
    return tw_services_register(*out, app, errbuf, errlen);
}

/* Opens the store and brings it to the current migration. */
static tw_err open_store(const tw_config *cfg, tw_store **out)
{
    tw_store_options opts = tw_cli_store_options(cfg, false);
    opts.statistics = cfg->store_statistics;
    tw_err err = tw_store_open(&opts, out);
    if (err) {
        tw_cli_fail("cannot open the database in %s: %s", cfg->data_dir, tw_store_last_error());
        return err;
    }
    size_t applied = 0;
    err = tw_store_migrate_up(*out, &tw_store_migrations, &applied);
    if (err) {
        tw_cli_fail("migrating the database in %s failed: %s", cfg->data_dir,
                    tw_store_last_error());
        return err;
    }
    if (applied > 0)
        tw_log(TW_LOG_INFO, "migrated", json_pack("{s:i}", "applied", (int)applied));
    return TW_OK;
}

/* Opens the configured blob storage: data_dir/blobs or an S3 bucket. */
static tw_err open_blobs(const tw_config *cfg, tw_blob_store **out)
{
    if (cfg->blob_backend == TW_BLOB_BACKEND_FS) {
        tw_err err = tw_blob_fs_open(cfg->data_dir, out);
        if (err)
            tw_cli_fail("cannot open blob storage in %s: %s", cfg->data_dir, tw_store_last_error());
        return err;
    }
    tw_blob_s3_options opts = tw_cli_s3_options(cfg);
    tw_err err = tw_blob_s3_open(&opts, out);
    if (err)
        tw_cli_fail("cannot open blob storage in S3 bucket %s at %s: %s", cfg->s3_bucket,
                    cfg->s3_endpoint, tw_store_last_error());
    return err;
}

/* A Deepgram client when a key is configured; *out stays NULL without. */
static tw_err open_deepgram(const tw_config *cfg, struct tw_deepgram **out)
{
    *out = NULL;
    if (cfg->deepgram_api_key[0] == '\0')
        return TW_OK;
    tw_deepgram_config dcfg = {
        .base_url = cfg->deepgram_base_url,
        .api_key = cfg->deepgram_api_key,
        .model = cfg->deepgram_model,
        .policy = {.connect_timeout_ms = (long)cfg->deepgram_connect_timeout_ms,
                   .timeout_ms = (long)cfg->deepgram_timeout_ms,
                   .max_attempts = (int)cfg->deepgram_max_attempts},
        .breaker_failures = (int)cfg->deepgram_breaker_failures,
        .breaker_cooldown_ms = (long)cfg->deepgram_breaker_cooldown_ms,
    };
    tw_err err = tw_deepgram_new(&dcfg, out);
    if (err)
        tw_cli_fail("cannot set up the Deepgram client: deepgram_base_url, deepgram_api_key and "
                    "deepgram_model are all needed");
    return err;
}

/* Billing, with a Stripe client when a secret key is configured (else the
 * embedded default: nothing is charged, administrators grant plans). */
static tw_err open_billing(const tw_config *cfg, tw_app *app, tw_stripe **stripe)
{
    *stripe = NULL;
    if (cfg->stripe_secret_key[0] != '\0') {
        tw_stripe_config scfg = {
            .base_url = cfg->stripe_base_url,
            .secret_key = cfg->stripe_secret_key,
            .policy = {.connect_timeout_ms = (long)cfg->stripe_connect_timeout_ms,
                       .timeout_ms = (long)cfg->stripe_timeout_ms,
                       .max_attempts = (int)cfg->stripe_max_attempts},
        };
        if (tw_stripe_new(&scfg, stripe)) {
            tw_cli_fail("cannot set up the Stripe client: stripe_base_url and stripe_secret_key "
                        "are both needed");
            return TW_ERR_VALIDATION;
        }
    }
    tw_billing_config bcfg = {
        .store = app->store,
        .blobs = app->blobs,
        .stripe = *stripe,
        .webhook_secrets = {cfg->stripe_webhook_secret, cfg->stripe_webhook_secret_2},
        .webhook_tolerance_s = cfg->stripe_webhook_tolerance_s,
    };
    tw_err err = tw_billing_new(&bcfg, &app->billing);
    if (err)
        tw_cli_fail("cannot start billing in %s: %s", cfg->data_dir, tw_store_last_error());
    return err;
}

int tw_cmd_serve(int argc, char **argv)
{
    tw_config cfg;
    if (!tw_cli_load_config(&cfg, argc, argv))
        return TW_EXIT_USAGE;
    tw_log_set_level(cfg.log_level);

    /* Block the stop signals before gRPC starts threads, so that only
     * sigwait below receives them (the log's writer thread included). */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    int status = EXIT_FAILURE;
    tw_app app = {.cfg = &cfg};
    tw_engine *engine = NULL;
    tw_stripe *stripe = NULL;
    char errbuf[512], socket[PATH_MAX], *cert_pem = NULL, *key_pem = NULL;
    tw_cli_operator_socket(&cfg, socket, sizeof socket);
    tw_call_log_options call_log = {cfg.log_slow_ms, cfg.log_sample, cfg.log_lines_per_s,
                                    cfg.log_summary_s};
    if (tw_log_async_start(LOG_QUEUE_BYTES) || tw_call_log_configure(&call_log)) {
        tw_cli_fail("cannot start the log's threads");
        goto out;
    }
    if (!load_transport(&cfg, &cert_pem, &key_pem)) {
        status = TW_EXIT_USAGE;
        goto out;
    }
    if (!tw_engine_address_available(cfg.listen, errbuf, sizeof errbuf) ||
        !tw_engine_address_available(cfg.http_listen, errbuf, sizeof errbuf)) {
        tw_cli_fail("%s", errbuf);
        goto out;
    }
    if (tw_cli_make_dirs(cfg.data_dir) != 0) {
        tw_cli_fail("cannot create data_dir %s: %s", cfg.data_dir, strerror(errno));
        goto out;
    }
    if (open_store(&cfg, &app.store))
        goto out;
    if (open_blobs(&cfg, &app.blobs) || open_deepgram(&cfg, &app.deepgram) ||
        open_billing(&cfg, &app, &stripe))
        goto out;
    if (tw_auth_open(app.store, &cfg, &app.auth)) {
        tw_cli_fail("cannot load signing keys and account settings from %s: %s", cfg.data_dir,
                    tw_store_last_error());
        goto out;
    }
    if (tw_pool_new("slow", SLOW_POOL_THREADS, SLOW_POOL_QUEUE, &app.slow_pool)) {
        tw_cli_fail("cannot start worker threads");
        goto out;
    }
    if (cfg.job_threads > 0 &&
        tw_jobs_start(&app, tw_services_jobs(), (int)cfg.job_threads, &app.jobs)) {
        tw_cli_fail("cannot start job workers");
        goto out;
    }
    tw_stt_engine *stt = NULL;
    if (tw_voice_engine_from_config(&cfg, app.deepgram, &stt, errbuf, sizeof errbuf)) {
        tw_cli_fail("%s", errbuf);
        goto out;
    }
    tw_voice_options voice = tw_voice_options_from_config(&cfg, stt);
    if (tw_voice_start(&app, &voice, errbuf, sizeof errbuf)) {
        tw_cli_fail("%s", errbuf);
        goto out;
    }
    int port = 0;
    raise_open_file_limit();
    if (engine_with_services(&cfg, &app, socket, cert_pem, key_pem, &engine, errbuf,
                             sizeof errbuf) ||
        tw_engine_start(engine, &port, errbuf, sizeof errbuf)) {
        tw_cli_fail("%s", errbuf);
        goto out;
    }
    int http_port = 0;
    if (tw_ops_start(&app, engine, tw_httpd_routes, tw_health_service_set_store_ok, cert_pem,
                     key_pem, &http_port, errbuf, sizeof errbuf)) {
        tw_cli_fail("%s", errbuf);
        goto out;
    }
    tw_log(TW_LOG_INFO, "listening",
           json_pack("{s:s, s:i, s:s, s:i, s:s, s:s, s:s, s:s, s:s, s:b, s:b}", "listen",
                     cfg.listen, "port", port, "http_listen", cfg.http_listen, "http_port",
                     http_port, "operator_socket", socket, "data_dir", cfg.data_dir, "durability",
                     cfg.durability == TW_DURABLE ? "durable" : "fast", "version", TW_VERSION,
                     "blob_backend", cfg.blob_backend == TW_BLOB_BACKEND_S3 ? "s3" : "fs",
                     "deepgram", app.deepgram != NULL, "tls", cert_pem != NULL));
    tw_log(TW_LOG_INFO, "billing",
           json_pack("{s:s, s:b}", "payments", stripe ? "stripe" : "embedded (admin-granted plans)",
                     "webhooks", cfg.stripe_webhook_secret[0] != '\0'));

    int sig = 0;
    sigwait(&stop, &sig);
    tw_log(TW_LOG_INFO, "shutting down",
           json_pack("{s:s, s:I}", "signal", strsignal(sig), "grace_ms",
                     (json_int_t)cfg.shutdown_grace_ms));
    tw_engine_shutdown(engine, (int)cfg.shutdown_grace_ms);
    status = EXIT_SUCCESS;
out:
    /* The HTTP side answered 503 during the grace period; it goes first
     * now, as it reads everything below. */
    tw_ops_stop(app.ops);
    /* Jobs and the pools first: they may finish calls, which the engine
     * must still be there to send. */
    tw_voice_stop(app.voice);
    tw_jobs_stop(app.jobs);
    tw_pool_free(app.slow_pool);
    if (app.billing != NULL && tw_billing_usage_flush(app.billing, tw_store_now_ms(app.store)))
        tw_log(TW_LOG_WARN, "API-call counts not written at stop",
               json_pack("{s:s}", "error", tw_store_last_error()));
    tw_billing_free(app.billing);
    tw_stripe_free(stripe);
    tw_auth_close(app.auth);
    tw_engine_free(engine);
    tw_call_log_stop();
    tw_blob_close(app.blobs);
    tw_deepgram_free(app.deepgram);
    tw_store_close(app.store);
    if (status == EXIT_SUCCESS)
        tw_log(TW_LOG_INFO, "stopped", NULL);
    tw_log_async_stop();
    free(cert_pem);
    if (key_pem != NULL) {
        OPENSSL_cleanse(key_pem, strlen(key_pem));
        free(key_pem);
    }
    tw_config_free(&cfg);
    return status;
}

static const char *const kind_labels[] = {
    [TW_UNARY] = "unary",
    [TW_CLIENT_STREAM] = "client-stream",
    [TW_SERVER_STREAM] = "server-stream",
    [TW_BIDI_STREAM] = "bidi-stream",
};

static void print_method(void *ctx, const char *path, const tw_method *m)
{
    static const struct {
        unsigned flag;
        const char *label;
    } flag_labels[] = {
        {TW_PUBLIC, "public"},
        {TW_INFRA, "infra"},
        {TW_ADMIN, "admin"},
        {TW_WRITE, "write"},
        {TW_SIGN_IN, "sign-in"},
        {TW_METERED, "metered"},
        {TW_METERED_AUDIO, "metered-audio"},
    };
    printf("%-60s %-13s", path, kind_labels[m->kind]);
    for (size_t i = 0; i < sizeof flag_labels / sizeof flag_labels[0]; i++)
        if (m->flags & flag_labels[i].flag)
            printf(" %s", flag_labels[i].label);
    printf("\n");
}

int tw_cmd_methods(int argc, char **argv)
{
    if (argc > 0) {
        tw_cli_fail("methods takes no options");
        return TW_EXIT_USAGE;
    }
    tw_config cfg;
    if (!tw_cli_load_config(&cfg, 0, NULL))
        return TW_EXIT_USAGE;
    char errbuf[512];
    tw_app app = {.cfg = &cfg};
    tw_engine *engine = NULL;
    int status = EXIT_SUCCESS;
    if (engine_with_services(&cfg, &app, NULL, NULL, NULL, &engine, errbuf, sizeof errbuf)) {
        tw_cli_fail("%s", errbuf);
        status = EXIT_FAILURE;
    } else {
        tw_engine_each_method(engine, print_method, NULL);
    }
    tw_engine_free(engine);
    tw_config_free(&cfg);
    return status;
}

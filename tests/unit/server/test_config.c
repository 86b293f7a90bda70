/* Unit tests for server/config.c: defaults, the four sources and their
 * order, and the one-line errors that stop start-up. */
#include "tw_check.h"

#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char errbuf[512];

static void clear_env(void)
{
    const char *vars[] = {"TW_CONFIG",
                          "TW_LISTEN",
                          "TW_DATA_DIR",
                          "TW_WORKERS",
                          "TW_MAX_MESSAGE_BYTES",
                          "TW_SHUTDOWN_GRACE_MS",
                          "TW_LOG_LEVEL",
                          "TW_BLOB_BACKEND",
                          "TW_S3_ENDPOINT",
                          "TW_S3_BUCKET",
                          "TW_S3_ACCESS_KEY_ID",
                          "TW_S3_SECRET_ACCESS_KEY",
                          "TW_DEEPGRAM_API_KEY",
                          "TW_PASSWORD_SCRYPT_LOG2_N",
                          "TW_TLS_CERT",
                          "TW_TLS_KEY"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        unsetenv(vars[i]);
}

/* Writes text to a temporary file and returns its path (static buffer). */
static const char *config_file(const char *text)
{
    static char path[] = "/tmp/tw-config-XXXXXX";
    strcpy(path, "/tmp/tw-config-XXXXXX");
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static tw_err load(tw_config *cfg, int argc, char **argv)
{
    errbuf[0] = '\0';
    return tw_config_load(cfg, argc, argv, errbuf, sizeof errbuf);
}

START_TEST(defaults_apply_without_any_source)
{
    tw_config cfg;
    ck_assert_int_eq(load(&cfg, 0, NULL), TW_OK);
    ck_assert_str_eq(cfg.listen, "127.0.0.1:50051");
    ck_assert_str_eq(cfg.data_dir, "./data");
    ck_assert_int_eq(cfg.workers, 0);
    ck_assert_int_eq(cfg.max_message_bytes, 4194304);
    ck_assert_int_eq(cfg.http2_bdp_probe, 0);
    ck_assert_int_eq(cfg.log_level, TW_LOG_INFO);
    ck_assert_int_eq(cfg.voice_max_bytes, 25 << 20);
    ck_assert_int_eq(cfg.voice_retention_days, 90);
    ck_assert_int_eq(cfg.voice_engine, TW_VOICE_ENGINE_POCKETSPHINX);
    ck_assert_str_eq(cfg.voice_model_dir, "/usr/share/pocketsphinx/model/en-us");
    ck_assert_int_eq(cfg.voice_transcribers, 2);
    ck_assert_int_eq(cfg.voice_live_decoders, 2);
    ck_assert_int_eq(cfg.voice_job_lease_s, 1800);
    tw_config_free(&cfg);
}
END_TEST

START_TEST(later_sources_win)
{
    const char *path = config_file("{\"listen\": \"127.0.0.1:7000\", \"workers\": 3,"
                                   " \"data_dir\": \"/from/file\"}");
    setenv("TW_CONFIG", path, 1);
    setenv("TW_WORKERS", "5", 1);
    char *argv[] = {"--data-dir", "/from/flag", "--log-level=debug"};
    tw_config cfg;
    ck_assert_msg(load(&cfg, 3, argv) == TW_OK, "%s", errbuf);
    ck_assert_str_eq(cfg.listen, "127.0.0.1:7000"); /* file */
    ck_assert_int_eq(cfg.workers, 5);               /* environment over file */
    ck_assert_str_eq(cfg.data_dir, "/from/flag");   /* flag over file */
    ck_assert_int_eq(cfg.log_level, TW_LOG_DEBUG);
    tw_config_free(&cfg);
    unlink(path);
}
END_TEST

START_TEST(config_flag_names_the_file)
{
    const char *path = config_file("{\"shutdown_grace_ms\": 250}");
    char *argv[] = {"--config", (char *)path};
    tw_config cfg;
    ck_assert_msg(load(&cfg, 2, argv) == TW_OK, "%s", errbuf);
    ck_assert_int_eq(cfg.shutdown_grace_ms, 250);
    tw_config_free(&cfg);
    unlink(path);
}
END_TEST

/* Each bad input stops loading with one line that names what is wrong. */
static void assert_refused(int argc, char **argv, const char *expected)
{
    tw_config cfg;
    ck_assert_int_eq(load(&cfg, argc, argv), TW_ERR_VALIDATION);
    ck_assert_msg(strstr(errbuf, expected) != NULL, "\"%s\" lacks \"%s\"", errbuf, expected);
    ck_assert_ptr_null(strchr(errbuf, '\n'));
}

START_TEST(bad_settings_are_named)
{
    char *listen[] = {"--listen", "nohost"};
    assert_refused(2, listen, "invalid setting listen=\"nohost\" (from command line)");
    char *port[] = {"--listen=127.0.0.1:70000"};
    assert_refused(1, port, "port from 0 to 65535");
    char *unknown[] = {"--colour", "red"};
    assert_refused(2, unknown, "unknown option --colour");
    char *missing[] = {"--workers"};
    assert_refused(1, missing, "option --workers needs a value");
    char *stray[] = {"serve"};
    assert_refused(1, stray, "unexpected argument \"serve\"");

    setenv("TW_WORKERS", "many", 1);
    assert_refused(0, NULL, "invalid setting workers=\"many\" (from TW_WORKERS)");
    setenv("TW_WORKERS", "999", 1);
    assert_refused(0, NULL, "from 0 to 256");
    unsetenv("TW_WORKERS");
    setenv("TW_LOG_LEVEL", "loud", 1);
    assert_refused(0, NULL, "expected one of debug, info, warn, error");
    unsetenv("TW_LOG_LEVEL");
}
END_TEST

START_TEST(bad_config_files_are_named)
{
    const char *path = config_file("{\"lissten\": \"x\"}");
    char *argv[] = {"--config", (char *)path};
    assert_refused(2, argv, "unknown setting \"lissten\"");
    path = config_file("{\"workers\": true}");
    argv[1] = (char *)path;
    assert_refused(2, argv, "must be a string or integer");
    path = config_file("{not json");
    argv[1] = (char *)path;
    assert_refused(2, argv, "cannot read config file");
    path = config_file("[1, 2]");
    argv[1] = (char *)path;
    assert_refused(2, argv, "expected a JSON object");
    char *nofile[] = {"--config", "/nonexistent/twd.json"};
    assert_refused(2, nofile, "cannot read config file /nonexistent/twd.json");
}
END_TEST

START_TEST(blob_storage_and_deepgram_settings)
{
    clear_env();
    tw_config cfg;
    ck_assert_int_eq(load(&cfg, 0, NULL), TW_OK);
    ck_assert_int_eq(cfg.blob_backend, TW_BLOB_BACKEND_FS);
    ck_assert_str_eq(cfg.s3_region, "us-east-1");
    ck_assert_str_eq(cfg.s3_endpoint, "");
    ck_assert_int_eq(cfg.s3_max_attempts, 3);
    ck_assert_str_eq(cfg.deepgram_base_url, "https://api.deepgram.com");
    ck_assert_str_eq(cfg.deepgram_model, "nova-3");
    ck_assert_str_eq(cfg.deepgram_api_key, "");
    tw_config_free(&cfg);

    /* S3 needs all of its settings; the secret may come from the environment. */
    char *s3_args[] = {"--blob-backend", "s3",    "--s3-endpoint",      "http://127.0.0.1:9000",
                       "--s3-bucket",    "audio", "--s3-access-key-id", "AKID"};
    ck_assert_int_eq(load(&cfg, 8, s3_args), TW_ERR_VALIDATION);
    ck_assert_str_eq(errbuf, "blob_backend=s3 needs setting s3_secret_access_key");
    setenv("TW_S3_SECRET_ACCESS_KEY", "very-secret-value", 1);
    ck_assert_int_eq(load(&cfg, 8, s3_args), TW_OK);
    ck_assert_int_eq(cfg.blob_backend, TW_BLOB_BACKEND_S3);
    ck_assert_str_eq(cfg.s3_secret_access_key, "very-secret-value");
    ck_assert_str_eq(cfg.s3_bucket, "audio");
    tw_config_free(&cfg);
    ck_assert_ptr_null(cfg.s3_secret_access_key);

    char *bad_url[] = {"--s3-endpoint", "s3.example.com"};
    ck_assert_int_eq(load(&cfg, 2, bad_url), TW_ERR_VALIDATION);
    ck_assert_ptr_nonnull(strstr(errbuf, "s3_endpoint"));
    ck_assert_ptr_nonnull(strstr(errbuf, "http:// or https://"));
    char *bad_backend[] = {"--blob-backend", "ftp"};
    ck_assert_int_eq(load(&cfg, 2, bad_backend), TW_ERR_VALIDATION);
    ck_assert_ptr_nonnull(strstr(errbuf, "fs, s3"));

    /* The transcription engine: one of two; Deepgram needs its key. */
    char *bad_engine[] = {"--voice-engine", "whisper"};
    ck_assert_int_eq(load(&cfg, 2, bad_engine), TW_ERR_VALIDATION);
    ck_assert_ptr_nonnull(strstr(errbuf, "voice_engine"));
    ck_assert_ptr_nonnull(strstr(errbuf, "pocketsphinx, deepgram"));
    char *deepgram[] = {"--voice-engine", "deepgram"};
    ck_assert_int_eq(load(&cfg, 2, deepgram), TW_ERR_VALIDATION);
    ck_assert_str_eq(errbuf, "voice_engine=deepgram needs setting deepgram_api_key");
    setenv("TW_DEEPGRAM_API_KEY", "dg-key", 1);
    ck_assert_int_eq(load(&cfg, 2, deepgram), TW_OK);
    ck_assert_int_eq(cfg.voice_engine, TW_VOICE_ENGINE_DEEPGRAM);
    ck_assert_int_eq(cfg.voice_job_attempts, 10);
    tw_config_free(&cfg);
    unsetenv("TW_DEEPGRAM_API_KEY");

    /* A secret that is refused is not echoed. */
    char long_secret[1100];
    memset(long_secret, 'k', sizeof long_secret - 1);
    long_secret[sizeof long_secret - 1] = '\0';
    setenv("TW_DEEPGRAM_API_KEY", long_secret, 1);
    ck_assert_int_eq(load(&cfg, 0, NULL), TW_ERR_VALIDATION);
    ck_assert_ptr_nonnull(strstr(errbuf, "deepgram_api_key=\"(hidden)\""));
    ck_assert_ptr_null(strstr(errbuf, "kkkk"));
    clear_env();
}
END_TEST

START_TEST(account_settings_and_tls_pairs)
{
    tw_config cfg;
    ck_assert_int_eq(load(&cfg, 0, NULL), TW_OK);
    ck_assert_int_eq(cfg.password_scrypt_log2_n, 17);
    ck_assert_int_eq(cfg.login_failures_per_account, 5);
    ck_assert_int_eq(cfg.api_calls_per_hour, 1000);
    ck_assert_ptr_null(cfg.tls_cert);
    ck_assert_int_eq(cfg.allow_insecure_remote, 0);
    tw_config_free(&cfg);

    char *both[] = {"--tls-cert",
                    "/c.pem",
                    "--tls-key",
                    "/k.pem",
                    "--allow-insecure-remote",
                    "true",
                    "--password-scrypt-log2-n",
                    "10"};
    ck_assert_int_eq(load(&cfg, 8, both), TW_OK);
    ck_assert_str_eq(cfg.tls_cert, "/c.pem");
    ck_assert_str_eq(cfg.tls_key, "/k.pem");
    ck_assert_int_eq(cfg.allow_insecure_remote, 1);
    ck_assert_int_eq(cfg.password_scrypt_log2_n, 10);
    tw_config_free(&cfg);

    char *one[] = {"--tls-key", "/k.pem"};
    ck_assert_int_eq(load(&cfg, 2, one), TW_ERR_VALIDATION);
    ck_assert_ptr_nonnull(strstr(errbuf, "tls_cert and tls_key go together"));
    char *weak[] = {"--password-scrypt-log2-n", "4"};
    ck_assert_int_eq(load(&cfg, 2, weak), TW_ERR_VALIDATION);
    ck_assert_ptr_nonnull(strstr(errbuf, "password_scrypt_log2_n"));
    char *maybe[] = {"--allow-insecure-remote", "maybe"};
    ck_assert_int_eq(load(&cfg, 2, maybe), TW_ERR_VALIDATION);
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("load");
    tcase_add_checked_fixture(tc, clear_env, clear_env);
    tcase_add_test(tc, defaults_apply_without_any_source);
    tcase_add_test(tc, later_sources_win);
    tcase_add_test(tc, config_flag_names_the_file);
    tcase_add_test(tc, bad_settings_are_named);
    tcase_add_test(tc, bad_config_files_are_named);
    tcase_add_test(tc, blob_storage_and_deepgram_settings);
    tcase_add_test(tc, account_settings_and_tls_pairs);
    suite_add_tcase(s, tc);
    return s;
}

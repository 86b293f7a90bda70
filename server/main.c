/*
 * twd: the Time & Wellness server and its operator commands.
 *
 *   twd serve [options]   run the gRPC server until SIGTERM or SIGINT
 *   twd methods           list every RPC; fails if a method table and the
 *                         .proto disagree (the build runs it as a check)
 *   twd --version | --help
 *
 * Follow a call from here: cmd_serve -> tw_services_register (services/) ->
 * the engine (rpc/engine.c) -> a handler in services/<name>_service.c.
 */
#include "config.h"
#include "rpc/engine.h"
#include "services/services.h"
#include "tw_log.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define EXIT_USAGE 2

static void fail_line(const char *what)
{
    fprintf(stderr, "twd: %s\n", what);
}

/* mkdir -p for the data directory. */
static int make_dirs(const char *path)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0700) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(buf, 0700) != 0 && errno != EEXIST ? -1 : 0;
}

/* Engine settings derived from the configuration. */
static tw_engine_config engine_config(const tw_config *cfg)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int workers = cfg->workers > 0 ? (int)cfg->workers : (int)(cores > 2 ? cores : 2);
    return (tw_engine_config){
        .listen = cfg->listen,
        .workers = workers,
        .max_message_bytes = (size_t)cfg->max_message_bytes,
        .requests_per_method = 8,
        .max_stream_backlog = 8u << 20,
    };
}

/* Builds an engine with every service registered; errbuf says why not. */
static tw_err engine_with_services(const tw_config *cfg, tw_engine **out, char *errbuf,
                                   size_t errlen)
{
    tw_engine_config ecfg = engine_config(cfg);
    tw_err err = tw_engine_new(&ecfg, out);
    if (err) {
        snprintf(errbuf, errlen, "cannot create the RPC engine: %s", tw_err_message(err));
        return err;
    }
    return tw_services_register(*out, errbuf, errlen);
}

static int cmd_serve(int argc, char **argv)
{
    char errbuf[512];
    tw_config cfg;
    if (tw_config_load(&cfg, argc, argv, errbuf, sizeof errbuf)) {
        fail_line(errbuf);
        return EXIT_USAGE;
    }
    tw_log_set_level(cfg.log_level);

    /* Block the stop signals before gRPC starts threads, so that only
     * sigwait below receives them. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    int status = EXIT_FAILURE;
    tw_engine *engine = NULL;
    if (make_dirs(cfg.data_dir) != 0) {
        snprintf(errbuf, sizeof errbuf, "cannot create data_dir %s: %s", cfg.data_dir,
                 strerror(errno));
        fail_line(errbuf);
        goto out;
    }
    int port = 0;
    if (engine_with_services(&cfg, &engine, errbuf, sizeof errbuf) ||
        tw_engine_start(engine, &port, errbuf, sizeof errbuf)) {
        fail_line(errbuf);
        goto out;
    }
    tw_log(TW_LOG_INFO, "listening",
           json_pack("{s:s, s:i, s:s, s:s}", "listen", cfg.listen, "port", port, "data_dir",
                     cfg.data_dir, "version", TW_VERSION));

    int sig = 0;
    sigwait(&stop, &sig);
    tw_log(TW_LOG_INFO, "shutting down",
           json_pack("{s:s, s:I}", "signal", strsignal(sig), "grace_ms",
                     (json_int_t)cfg.shutdown_grace_ms));
    tw_engine_shutdown(engine, (int)cfg.shutdown_grace_ms);
    tw_log(TW_LOG_INFO, "stopped", NULL);
    status = EXIT_SUCCESS;
out:
    tw_engine_free(engine);
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
        {TW_PUBLIC, "public"}, {TW_INFRA, "infra"},           {TW_ADMIN, "admin"},
        {TW_WRITE, "write"},   {TW_IDEMPOTENT, "idempotent"},
    };
    printf("%-60s %-13s", path, kind_labels[m->kind]);
    for (size_t i = 0; i < sizeof flag_labels / sizeof flag_labels[0]; i++)
        if (m->flags & flag_labels[i].flag)
            printf(" %s", flag_labels[i].label);
    printf("\n");
}

static int cmd_methods(int argc, char **argv)
{
    if (argc > 0) {
        fail_line("methods takes no options");
        return EXIT_USAGE;
    }
    char errbuf[512];
    tw_config cfg;
    if (tw_config_load(&cfg, 0, NULL, errbuf, sizeof errbuf)) {
        fail_line(errbuf);
        return EXIT_USAGE;
    }
    tw_engine *engine = NULL;
    int status = EXIT_SUCCESS;
    if (engine_with_services(&cfg, &engine, errbuf, sizeof errbuf)) {
        fail_line(errbuf);
        status = EXIT_FAILURE;
    } else {
        tw_engine_each_method(engine, print_method, NULL);
    }
    tw_engine_free(engine);
    tw_config_free(&cfg);
    return status;
}

static const struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *usage;
} commands[] = {
    {"serve", cmd_serve,
     "serve [--config FILE] [--listen HOST:PORT] [--data-dir DIR] ...\n"
     "      run the server until SIGTERM or SIGINT"},
    {"methods", cmd_methods, "methods\n      list every RPC with its kind and flags"},
};

static void print_help(FILE *out)
{
    fprintf(out, "usage: twd <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  twd %s\n", commands[i].usage);
    fprintf(out, "  twd --version\n  twd --help\n\n");
    tw_config_print_help(out);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        print_help(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("twd %s (gRPC core %s)\n", TW_VERSION, tw_engine_grpc_version());
        return EXIT_SUCCESS;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        print_help(stdout);
        return EXIT_SUCCESS;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 2, argv + 2);
    fprintf(stderr, "twd: unknown command \"%s\" (see twd --help)\n", argv[1]);
    return EXIT_USAGE;
}

/* The dispatcher of twd's subcommands and the helpers they share (cli.h). */
#include "cli.h"

#include <errno.h>
#include <limits.h>
#include <sys/stat.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool is_help(const char *arg)
{
    return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0;
}

static void print_overview(const tw_cli_command *commands, size_t count, FILE *out)
{
    fprintf(out, "usage: twd <command> [settings]\n\ncommands:\n");
    for (size_t i = 0; i < count; i++) {
        fprintf(out, "  twd %s\n", commands[i].usage);
        for (const char *line = commands[i].summary; *line;) {
            size_t len = strcspn(line, "\n");
            fprintf(out, "      %.*s\n", (int)len, line);
            line += len + (line[len] == '\n');
        }
    }
    fprintf(out, "  twd <command> --help\n  twd --version\n  twd --help\n\n");
    tw_config_print_help(out);
}

static void print_command_help(const tw_cli_command *c)
{
    printf("usage: twd %s\n\n%s", c->usage, c->summary);
    if (c->takes_settings) {
        printf("\n");
        tw_config_print_help(stdout);
    }
}

int tw_cli_main(const tw_cli_command *commands, size_t count, int argc, char **argv)
{
    if (argc < 2) {
        print_overview(commands, count, stderr);
        return TW_EXIT_USAGE;
    }
    if (is_help(argv[1])) {
        print_overview(commands, count, stdout);
        return EXIT_SUCCESS;
    }
    for (size_t i = 0; i < count; i++) {
        if (strcmp(argv[1], commands[i].name) != 0)
            continue;
        for (int a = 2; a < argc; a++) {
            if (is_help(argv[a])) {
                print_command_help(&commands[i]);
                return EXIT_SUCCESS;
            }
        }
        return commands[i].run(argc - 2, argv + 2);
    }
    fprintf(stderr, "twd: unknown command \"%s\" (see twd --help)\n", argv[1]);
    return TW_EXIT_USAGE;
}

void tw_cli_fail(const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "twd: %s\n", line);
}

const char *tw_cli_take_option(int *argc, char **argv, const char *name)
{
    size_t len = strlen(name);
    for (int i = 0; i < *argc; i++) {
        if (strncmp(argv[i], name, len) != 0)
            continue;
        const char *value = NULL;
        int used = 0;
        if (argv[i][len] == '=') {
            value = argv[i] + len + 1;
            used = 1;
        } else if (argv[i][len] == '\0' && i + 1 < *argc) {
            value = argv[i + 1];
            used = 2;
        } else {
            continue;
        }
        memmove(&argv[i], &argv[i + used], (size_t)(*argc - i - used) * sizeof *argv);
        *argc -= used;
        return value;
    }
    return NULL;
}

bool tw_cli_load_config(tw_config *cfg, int argc, char **argv)
{
    char errbuf[512];
    if (tw_config_load(cfg, argc, argv, errbuf, sizeof errbuf) == TW_OK)
        return true;
    tw_cli_fail("%s", errbuf);
    return false;
}

void tw_cli_operator_socket(const tw_config *cfg, char *out, size_t len)
{
    if (cfg->operator_socket[0] == '/')
        snprintf(out, len, "%s", cfg->operator_socket);
    else
        snprintf(out, len, "%s/%s", cfg->data_dir, cfg->operator_socket);
}

tw_store_options tw_cli_store_options(const tw_config *cfg, bool read_only)
{
    return (tw_store_options){
        .data_dir = cfg->data_dir,
        .durability = cfg->durability,
        .read_only = read_only,
    };
}

int tw_cli_make_dirs(const char *path)
{
    char buf[PATH_MAX];
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

tw_blob_s3_options tw_cli_s3_options(const tw_config *cfg)
{
    return (tw_blob_s3_options){
        .s3 =
            {
                .endpoint = cfg->s3_endpoint,
                .region = cfg->s3_region,
                .bucket = cfg->s3_bucket,
                .access_key_id = cfg->s3_access_key_id,
                .secret_access_key = cfg->s3_secret_access_key,
                .policy = {.connect_timeout_ms = (long)cfg->s3_connect_timeout_ms,
                           .timeout_ms = (long)cfg->s3_timeout_ms,
                           .max_attempts = (int)cfg->s3_max_attempts},
            },
    };
}

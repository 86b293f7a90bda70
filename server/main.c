/*
 * twd: the Time & Wellness server and its operator commands.
 *
 * Follow a call from here: tw_cmd_serve (serve.c) opens the store and
 * registers every service (services/services.c) with the RPC engine
 * (rpc/engine.c), which runs a handler in services/<name>_service.c for each
 * call.
 */
#include "cli.h"
#include "rpc/engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *usage;
} commands[] = {
    {"serve", tw_cmd_serve, "serve [settings]\n      run the server until SIGTERM or SIGINT"},
    {"methods", tw_cmd_methods,
     "methods\n      list every RPC with its kind and flags (fails if a table and the .proto "
     "disagree)"},
    {"migrate", tw_cmd_migrate,
     "migrate status|up|down [--to N] [settings]\n      list, apply or revert database "
     "migrations (serve applies them too; down\n      reverts the last one, or all above N)"},
    {"check", tw_cmd_check,
     "check [settings]\n      verify the checksum of every key and value (safe while serving)"},
    {"backup", tw_cmd_backup,
     "backup create --to DIR | verify --from DIR | restore --from DIR [settings]\n"
     "      online backup through a running twd (or of a stopped one), check one by\n"
     "      restoring it to a temporary directory, restore one into --data-dir"},
    {"admin", tw_cmd_admin,
     "admin COMMAND [options] [--json] [--server HOST:PORT [--ca-file PEM] [--token-file F]]\n"
     "      the runbook's procedures and queries against a running twd (docs/operations.md;\n"
     "      `twd admin` alone lists the commands)\n"
     "  twd admin create --email EMAIL [--display-name NAME] [settings]\n"
     "      create an admin account (through a running twd, or in the stopped store);\n"
     "      the password is prompted for, or read as one line from standard input"},
    {"keys", tw_cmd_keys,
     "keys rotate [settings]\n      new access-token signing key; tokens signed with the "
     "previous one keep working"},
};

static void print_help(FILE *out)
{
    fprintf(out, "usage: twd <command> [settings]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  twd %s\n", commands[i].usage);
    fprintf(out, "  twd --version\n  twd --help\n\n");
    tw_config_print_help(out);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        print_help(stderr);
        return TW_EXIT_USAGE;
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
    return TW_EXIT_USAGE;
}

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

/* One row per command; tw_cli_main (cli.c) dispatches to it and answers
 * `twd <command> --help` from it. */
static const tw_cli_command commands[] = {
    {"serve", tw_cmd_serve, "serve [settings]", "run the server until SIGTERM or SIGINT\n", true},
    {"methods", tw_cmd_methods, "methods",
     "list every RPC with its kind and flags (fails if a table and the .proto disagree)\n", false},
    {"migrate", tw_cmd_migrate, "migrate status|up|down [--to N] [settings]",
     "list, apply or revert database migrations (serve applies them too; down\n"
     "reverts the last one, or all above N); status also lists what a migration\n"
     "left for an operator to resolve\n",
     true},
    {"check", tw_cmd_check, "check [settings]",
     "verify the checksum of every key and value (safe while serving)\n", true},
    {"backup", tw_cmd_backup,
     "backup create --to DIR | verify --from DIR | restore --from DIR [settings]",
     "online backup through a running twd (or of a stopped one), check one by\n"
     "restoring it to a temporary directory, restore one into --data-dir\n",
     true},
    {"admin", tw_cmd_admin,
     "admin COMMAND [options] [--json] [--server HOST:PORT [--ca-file PEM] [--token-file F]]\n"
     "  twd admin create --email EMAIL [--display-name NAME] [settings]",
     "the runbook's procedures and queries against a running twd (docs/operations.md;\n"
     "`twd admin` alone lists the commands); admin create makes an admin account\n"
     "(through a running twd, or in the stopped store): the password is prompted\n"
     "for, or read as one line from standard input\n",
     true},
    {"keys", tw_cmd_keys, "keys rotate [settings]",
     "new access-token signing key; tokens signed with earlier keys keep working\n"
     "until they expire (up to 32 keys: one more within 16 minutes is refused)\n",
     true},
};

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        printf("twd %s (gRPC core %s)\n", TW_VERSION, tw_engine_grpc_version());
        return EXIT_SUCCESS;
    }
    return tw_cli_main(commands, sizeof commands / sizeof commands[0], argc, argv);
}

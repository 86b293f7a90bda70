/*
 * twd's subcommands, one function each (main.c holds the table), the one
 * dispatcher that runs them (and answers --help for every one of them), and
 * the helpers they share for options, settings and errors.
 */
#ifndef TW_CLI_H
#define TW_CLI_H

#include "blob_s3.h"
#include "config.h"

#include <stdbool.h>
#include <stddef.h>

#define TW_EXIT_USAGE 2

int tw_cmd_serve(int argc, char **argv);   /* serve.c */
int tw_cmd_methods(int argc, char **argv); /* serve.c */
int tw_cmd_migrate(int argc, char **argv); /* store_commands.c */
int tw_cmd_backup(int argc, char **argv);  /* store_commands.c */
int tw_cmd_check(int argc, char **argv);   /* store_commands.c */
int tw_cmd_admin(int argc, char **argv);   /* admin_commands.c */
int tw_cmd_admin_create(int argc, char **argv); /* account_commands.c: `twd admin create` */
int tw_cmd_keys(int argc, char **argv);    /* account_commands.c */

/* One row of twd's command table. */
typedef struct tw_cli_command {
    const char *name; /* the word after twd: "backup" */
    /* Runs it with the arguments after the name; returns the exit status. */
    int (*run)(int argc, char **argv);
    const char *usage;   /* after "twd ": "backup create --to DIR | ..." */
    const char *summary; /* what it does: lines ending in "\n" */
    bool takes_settings; /* it reads the settings: --help lists them */
} tw_cli_command;

/*
 * twd's main() over commands (count rows): `twd --help` (or -h) prints
 * every command and the settings to standard output and returns 0; no
 * command or an unknown one prints to standard error and returns
 * TW_EXIT_USAGE. `twd <command> ...` with --help or -h anywhere among its
 * arguments prints that command's usage, summary and (when it takes
 * them) the settings, and returns 0 without running it; otherwise it runs
 * the command. Every command gets --help here, not in its own code.
 */
int tw_cli_main(const tw_cli_command *commands, size_t count, int argc, char **argv);

/* A password: prompted for twice without echo on a terminal, else one line
 * of standard input (account_commands.c). False (with a line printed) when
 * there is none or the two differ. */
bool tw_cli_read_password(char *buf, size_t len);

/* Prints "twd: <message>" as one line on standard error. */
void tw_cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Removes "--name VALUE" or "--name=VALUE" from argv (updating *argc) and
 * returns VALUE, or NULL when the option is absent. */
const char *tw_cli_take_option(int *argc, char **argv, const char *name);

/* Loads settings from the sources and the remaining arguments; on a bad
 * one prints its line and returns false. */
bool tw_cli_load_config(tw_config *cfg, int argc, char **argv);

/* The operator socket's path: operator_socket, inside data_dir when relative. */
void tw_cli_operator_socket(const tw_config *cfg, char *out, size_t len);

/* mkdir -p, private to the account running twd (0700); 0 or -1 with errno. */
int tw_cli_make_dirs(const char *path);

/* The S3 client settings of cfg (the s3_* settings), borrowed from it. */
tw_blob_s3_options tw_cli_s3_options(const tw_config *cfg);

/* Store options for the configured data directory. */
tw_store_options tw_cli_store_options(const tw_config *cfg, bool read_only);

#endif

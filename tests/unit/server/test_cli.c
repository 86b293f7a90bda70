/* Unit tests for server/cli.c: tw_cli_main dispatches to a command's row,
 * answers --help (or -h) anywhere among a command's arguments without
 * running it, and refuses a missing or unknown command. The e2e test
 * (tests/e2e/test_lifecycle.py) runs --help over twd's real table. */
#include "tw_check.h"

#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int runs, last_argc;
static const char *last_arg;

static int fake_run(int argc, char **argv)
{
    runs++;
    last_argc = argc;
    last_arg = argc > 0 ? argv[0] : NULL;
    return 7;
}

static const tw_cli_command table[] = {
    {"plain", fake_run, "plain", "does a thing\n", false},
    {"store", fake_run, "store put|get [settings]", "reads settings\n", true},
};

/* Runs tw_cli_main over table with args, its standard output in out. */
static int run_main(char *out, size_t len, int argc, const char **args)
{
    char *argv[8] = {"twd"};
    for (int i = 0; i < argc; i++)
        argv[i + 1] = (char *)args[i];
    FILE *capture = tmpfile();
    ck_assert_ptr_nonnull(capture);
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    dup2(fileno(capture), STDOUT_FILENO);
    int status = tw_cli_main(table, sizeof table / sizeof table[0], argc + 1, argv);
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    rewind(capture);
    size_t n = fread(out, 1, len - 1, capture);
    out[n] = '\0';
    fclose(capture);
    return status;
}

START_TEST(help_anywhere_prints_usage_and_does_not_run_the_command)
{
    char out[16384];
    const char *cases[][3] = {
        {"plain", "--help", NULL},
        {"plain", "-h", NULL},
        {"store", "put", "--help"},
        {"store", "--data-dir", "-h"},
    };
    runs = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int argc = cases[i][2] ? 3 : 2;
        ck_assert_int_eq(run_main(out, sizeof out, argc, cases[i]), EXIT_SUCCESS);
        char expected[64];
        snprintf(expected, sizeof expected, "usage: twd %s", cases[i][0]);
        ck_assert_msg(strncmp(out, expected, strlen(expected)) == 0, "%s", out);
        /* Only a command that takes settings lists them. */
        ck_assert_int_eq(strstr(out, "--data-dir") != NULL, strcmp(cases[i][0], "store") == 0);
    }
    ck_assert_int_eq(runs, 0);
}
END_TEST

START_TEST(a_command_without_help_runs_with_its_arguments)
{
    char out[1024];
    runs = 0;
    ck_assert_int_eq(run_main(out, sizeof out, 3, (const char *[]){"store", "put", "x"}), 7);
    ck_assert_int_eq(runs, 1);
    ck_assert_int_eq(last_argc, 2);
    ck_assert_str_eq(last_arg, "put");
}
END_TEST

START_TEST(no_command_or_an_unknown_one_is_a_usage_error)
{
    char out[16384];
    runs = 0;
    ck_assert_int_eq(run_main(out, sizeof out, 0, NULL), TW_EXIT_USAGE);
    ck_assert_int_eq(run_main(out, sizeof out, 1, (const char *[]){"bogus"}), TW_EXIT_USAGE);
    ck_assert_int_eq(runs, 0);
    /* twd --help lists every command and the settings. */
    ck_assert_int_eq(run_main(out, sizeof out, 1, (const char *[]){"--help"}), EXIT_SUCCESS);
    ck_assert_ptr_nonnull(strstr(out, "  twd plain\n"));
    ck_assert_ptr_nonnull(strstr(out, "  twd store put|get [settings]\n      reads settings\n"));
    ck_assert_ptr_nonnull(strstr(out, "--data-dir"));
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("cli");
    tcase_add_test(tc, help_anywhere_prints_usage_and_does_not_run_the_command);
    tcase_add_test(tc, a_command_without_help_runs_with_its_arguments);
    tcase_add_test(tc, no_command_or_an_unknown_one_is_a_usage_error);
    suite_add_tcase(s, tc);
    return s;
}

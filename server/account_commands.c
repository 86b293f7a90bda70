/*
 * Account operator commands:
 *   twd admin create --email EMAIL [--display-name NAME]   the first admin
 *   twd keys rotate                                        a new signing key
 * Each goes through a running twd's operator socket (as `twd backup create`
 * does), or, with no twd running, writes the store itself. `admin create`
 * prompts for the password (twice, without echo) on a terminal, or reads one
 * line from standard input otherwise.
 */
#include "auth/account.h"
#include "auth/keyring.h"
#include "auth/password.h"
#include "cli.h"
#include "rpc/client.h"
#include "tw/v1/admin_service.pb-c.h"
#include "tw_time.h"
#include "tw_txn.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#define ADMIN_RPC_TIMEOUT_MS 60000

/* Calls method on the running twd; TW_ERR_UPSTREAM when none is running. */
static tw_err call_server(const tw_config *cfg, const char *method, const ProtobufCMessage *request,
                          const ProtobufCMessageDescriptor *response_type, tw_arena *arena,
                          ProtobufCMessage **response)
{
    char socket[PATH_MAX], target[PATH_MAX + 8], errbuf[512] = "";
    tw_cli_operator_socket(cfg, socket, sizeof socket);
    if (access(socket, F_OK) != 0)
        return TW_ERR_UPSTREAM;
    snprintf(target, sizeof target, "unix:%s", socket);
    tw_err err = tw_rpc_call(&(tw_rpc_target){.address = target}, method, request, response_type,
                             ADMIN_RPC_TIMEOUT_MS, arena, response, errbuf, sizeof errbuf);
    if (err && err != TW_ERR_UPSTREAM)
        tw_cli_fail("the running twd refused: %s", errbuf);
    return err;
}

static tw_err open_store(const tw_config *cfg, tw_store **out)
{
    tw_store_options opts = tw_cli_store_options(cfg, false);
    tw_err err = tw_store_open(&opts, out);
    if (err)
        tw_cli_fail("cannot open the database in %s: %s", cfg->data_dir, tw_store_last_error());
    return err;
}

/* ---- admin create -------------------------------------------------------- */

/* One line of standard input without its line end; false at EOF. */
static bool read_line(const char *prompt, char *buf, size_t len)
{
    bool tty = isatty(STDIN_FILENO);
    struct termios saved, quiet;
    if (tty && tcgetattr(STDIN_FILENO, &saved) == 0) {
        quiet = saved;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        fprintf(stderr, "%s", prompt);
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    } else {
        tty = false;
    }
    bool ok = fgets(buf, (int)len, stdin) != NULL;
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
        fputc('\n', stderr);
    }
    if (ok)
        buf[strcspn(buf, "\r\n")] = '\0';
    return ok;
}

bool tw_cli_read_password(char *buf, size_t len)
{
    if (!read_line("Password: ", buf, len)) {
        tw_cli_fail("a password is needed on standard input");
        return false;
    }
    if (isatty(STDIN_FILENO)) {
        char again[TW_PASSWORD_MAX_BYTES + 2];
        bool same = read_line("Repeat password: ", again, sizeof again) && strcmp(again, buf) == 0;
        memset(again, 0, sizeof again);
        if (!same) {
            tw_cli_fail("the passwords differ");
            return false;
        }
    }
    return true;
}

static tw_err create_txn(tw_txn *t, void *ctx)
{
    return tw_txn_account_create(t, ctx);
}

/* With no twd running: the same checks and write as AdminService.CreateUser. */
static tw_err create_offline(const tw_config *cfg, const char *email, const char *password,
                             const char *name, char *id)
{
    char normal[TW_EMAIL_MAX + 1], why[160];
    if (!tw_email_normalise(email, normal, why, sizeof why) ||
        !tw_password_acceptable(password, why, sizeof why) ||
        !tw_display_name_valid(name, true, why, sizeof why)) {
        tw_cli_fail("%s", why);
        return TW_ERR_VALIDATION;
    }
    tw_password_cost cost = TW_PASSWORD_COST_DEFAULT;
    cost.log2_n = (int)cfg->password_scrypt_log2_n;
    char *hash = NULL;
    tw_store *s = NULL;
    tw_arena *arena = tw_arena_new(1024);
    tw_err err = arena ? tw_password_hash(password, cost, &hash) : TW_ERR_NO_MEMORY;
    if (!err)
        err = open_store(cfg, &s);
    Tw__Store__V1__Account *account = NULL;
    if (!err) {
        if (name[0] == '\0')
            name = tw_arena_strndup(arena, normal, strcspn(normal, "@"));
        account =
            tw_account_new(arena, normal, hash, name, "UTC", "en", TW_ROLE_ADMIN, tw_wall_ms());
        err = account ? tw_txn_run(s, create_txn, account) : TW_ERR_NO_MEMORY;
        if (err == TW_ERR_ALREADY_EXISTS)
            tw_cli_fail("an account with this email already exists");
        else if (err)
            tw_cli_fail("cannot create the account: %s", tw_store_last_error());
    }
    if (!err) {
        tw_id uid;
        memcpy(uid.bytes, account->id.data, TW_ID_BYTES);
        tw_id_format(&uid, id);
    }
    tw_store_close(s);
    tw_arena_free(arena);
    free(hash);
    return err;
}

static int admin_create(int argc, char **argv)
{
    const char *email = tw_cli_take_option(&argc, argv, "--email");
    const char *name = tw_cli_take_option(&argc, argv, "--display-name");
    if (email == NULL || email[0] == '\0') {
        tw_cli_fail("usage: twd admin create --email EMAIL [--display-name NAME] [settings]");
        return TW_EXIT_USAGE;
    }
    tw_config cfg;
    if (!tw_cli_load_config(&cfg, argc, argv))
        return TW_EXIT_USAGE;
    char password[TW_PASSWORD_MAX_BYTES + 2], id[TW_ID_TEXT_SIZE] = "";
    int status = EXIT_FAILURE;
    if (tw_cli_read_password(password, sizeof password)) {
        Tw__V1__CreateUserRequest request = TW__V1__CREATE_USER_REQUEST__INIT;
        request.email = (char *)email;
        request.password = password;
        request.display_name = (char *)(name ? name : "");
        request.role = TW__V1__ROLE__ROLE_ADMIN;
        tw_arena *arena = tw_arena_new(1024);
        ProtobufCMessage *response = NULL;
        tw_err err = arena
                         ? call_server(&cfg, "/tw.v1.AdminService/CreateUser", &request.base,
                                       &tw__v1__create_user_response__descriptor, arena, &response)
                         : TW_ERR_NO_MEMORY;
        if (!err)
            snprintf(id, sizeof id, "%s", ((Tw__V1__CreateUserResponse *)response)->user->id);
        else if (err == TW_ERR_UPSTREAM)
            err = create_offline(&cfg, email, password, name ? name : "", id);
        if (!err) {
            printf("created admin %s (user id %s)\n", email, id);
            status = EXIT_SUCCESS;
        }
        tw_arena_free(arena);
    }
    memset(password, 0, sizeof password);
    tw_config_free(&cfg);
    return status;
}

int tw_cmd_admin_create(int argc, char **argv)
{
    return admin_create(argc, argv);
}

/* ---- keys rotate ------------------------------------------------------------ */

int tw_cmd_keys(int argc, char **argv)
{
    if (argc < 1 || strcmp(argv[0], "rotate") != 0) {
        tw_cli_fail("usage: twd keys rotate [settings]");
        return TW_EXIT_USAGE;
    }
    tw_config cfg;
    if (!tw_cli_load_config(&cfg, argc - 1, argv + 1))
        return TW_EXIT_USAGE;
    Tw__V1__RotateSigningKeyRequest request = TW__V1__ROTATE_SIGNING_KEY_REQUEST__INIT;
    tw_arena *arena = tw_arena_new(1024);
    ProtobufCMessage *response = NULL;
    tw_key_rotation made = {.kid = ""};
    tw_err err =
        arena ? call_server(&cfg, "/tw.v1.AdminService/RotateSigningKey", &request.base,
                            &tw__v1__rotate_signing_key_response__descriptor, arena, &response)
              : TW_ERR_NO_MEMORY;
    if (!err) {
        snprintf(made.kid, sizeof made.kid, "%s",
                 ((Tw__V1__RotateSigningKeyResponse *)response)->key_id);
    } else if (err == TW_ERR_UPSTREAM) {
        tw_store *s = NULL;
        if ((err = open_store(&cfg, &s)) == TW_OK)
            err = tw_keys_rotate_in_store(s, tw_wall_ms(), &made);
        if (err == TW_ERR_RATE_LIMITED) {
            char why[160];
            tw_key_rotation_refusal(&made, why, sizeof why);
            tw_cli_fail("cannot rotate the key: %s", why);
        } else if (err && s != NULL) {
            tw_cli_fail("cannot rotate the key: %s", tw_store_last_error());
        }
        tw_store_close(s);
    }
    if (!err)
        printf("new signing key %s; the key it replaces verifies tokens for %d more minutes\n",
               made.kid, (int)(TW_KEY_RETIRE_AFTER_MS / 60000));
    tw_arena_free(arena);
    tw_config_free(&cfg);
    return err ? EXIT_FAILURE : EXIT_SUCCESS;
}

/*
 * `twd admin ...`: the runbook's procedures and queries against a running
 * twd, one row per command in the table below, each an AdminService call.
 *
 *   twd admin COMMAND [--FIELD VALUE ...] [--json]
 *                     [--server HOST:PORT [--ca-file PEM] [--token-file FILE]] [settings]
 *
 * Where: by default the operator socket of the configured data directory
 * (settings as for serve: --data-dir, --config, TW_DATA_DIR, ...), which
 * only the account running twd can open and which acts as admin; with
 * --server, twd's gRPC address over the network, as an admin user whose
 * access token comes from --token-file or TW_ADMIN_TOKEN (`twd admin login`
 * prints one), over TLS when --ca-file names the certificate to trust.
 *
 * Options: --FIELD VALUE sets the request's field of that name (dashes for
 * underscores: --page-size 10); enum values by name, short or long
 * (--filter disabled, --filter USER_FILTER_DISABLED); --field PATH=VALUE
 * reaches nested and repeated fields (--field plan.prices[0].currency=USD),
 * --request-json '{...}' gives the whole request as proto3 JSON, and a
 * command's own options stand for paths (`billing plan-create --amount`).
 * A bad option is one line on stderr and exit code 2. The answer prints as
 * "field: value" lines, or as proto3 JSON with --json.
 *
 * Why in twd and not a separate twctl: an operator has twd wherever twd
 * runs (the container image, the package), it already speaks to the
 * operator socket (`twd backup create`, `twd keys rotate`), and the
 * generated messages and the RPC client are linked in; a second binary
 * would repeat all of that for nothing.
 */
#include "auth/account.h"
#include "cli.h"
#include "ops/pbjson.h"
#include "rpc/client.h"
#include "tw/v1/admin_service.pb-c.h"
#include "tw/v1/auth_service.pb-c.h"
#include "tw/v1/billing_service.pb-c.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* Backups, checks and compactions take as long as the data is large. */
#define ADMIN_TIMEOUT_MS (6 * 60 * 60 * 1000)
#define LOGIN_TIMEOUT_MS 60000
#define FILE_MAX         (1 << 20)

static const struct admin_command {
    const char *words;  /* what follows `twd admin` */
    const char *method; /* AdminService's method */
    const char *preset; /* "path=value ..." set before the options, or NULL */
    const char *usage;  /* the options it takes */
    /* The service of method; NULL: AdminService. */
    const ProtobufCServiceDescriptor *service;
    /* Options standing for a field path ("amount=plan.prices[0].amount_minor
     * ..."), or NULL. */
    const char *aliases;
} commands[] = {
    {"backup create", "CreateBackup", NULL, "--directory DIR", NULL, NULL},
    {"backup verify", "VerifyBackup", NULL, "--directory DIR", NULL, NULL},
    {"backup restore", "RestoreBackup", NULL, "--directory DIR --target-data-dir NEW", NULL, NULL},
    {"check", "CheckIntegrity", NULL, "", NULL, NULL},
    {"optimize", "OptimizeStore", NULL, "", NULL, NULL},
    {"migrate status", "GetMigrationStatus", NULL, "", NULL, NULL},
    {"migrate up", "MigrateUp", NULL, "", NULL, NULL},
    {"migrate down", "MigrateDown", NULL, "--to N", NULL, NULL},
    {"config", "GetConfig", NULL, "", NULL, NULL},
    {"version", "GetVersion", NULL, "", NULL, NULL},
    {"maintenance on", "SetMaintenanceMode", "enabled=true", "[--message TEXT]", NULL, NULL},
    {"maintenance off", "SetMaintenanceMode", "enabled=false", "", NULL, NULL},
    {"keys rotate", "RotateSigningKey", NULL, "", NULL, NULL},
    {"user find", "LookupUser", NULL, "--email EMAIL | --user-id ID", NULL, NULL},
    {"user list", "ListUsers", NULL, "[--filter disabled|admin] [--page-size N] [--page-token T]",
     NULL, NULL},
    {"user sessions", "ListUserSessions", NULL, "--email EMAIL | --user-id ID [--page-size N]",
     NULL, NULL},
    {"user disable", "DisableUser", NULL, "--email EMAIL | --user-id ID", NULL, NULL},
    {"user enable", "EnableUser", NULL, "--email EMAIL | --user-id ID", NULL, NULL},
    {"user export", "ExportUserData", NULL, "--email EMAIL | --user-id ID --out DIR", NULL, NULL},
    {"stats users", "GetUserStats", NULL, "[--days N]", NULL, NULL},
    {"stats tasks", "GetTaskCompletionRate", NULL, "[--days N]", NULL, NULL},
    {"stats health-logs", "GetHealthLogActivity", NULL, "[--days N]", NULL, NULL},
    {"stats focus", "GetFocusCompletion", NULL, "[--days N]", NULL, NULL},
    {"stats distractions", "GetDistractionPatterns", NULL, "[--days N]", NULL, NULL},
    {"stats slowest", "GetSlowestMethods", NULL, "[--limit N]", NULL, NULL},
#define BILLING &tw__v1__billing_admin_service__descriptor
    {"billing plans", "ListAllPlans", NULL, "[--page-size N] [--page-token T]", BILLING, NULL},
    {"billing plan-create", "CreatePlan", NULL,
     "--id ID --name NAME --amount MINOR --currency CODE --interval month|year "
     "[--description TEXT] [--feature TEXT ...] [--request-id UUID]",
     BILLING,
     "id=plan.id name=plan.name description=plan.description interval=plan.interval "
     "feature=plan.features amount=plan.prices[0].amount_minor currency=plan.prices[0].currency"},
    {"billing plan-price", "SetPlanPrice", NULL,
     "--id ID --amount MINOR --currency CODE [--audience standard|student] [--request-id UUID]",
     BILLING,
     "id=plan_id amount=price.amount_minor currency=price.currency audience=price.audience"},
    {"billing plan-deactivate", "UpdatePlan", "plan.active=false update_mask=active", "--id ID",
     BILLING, "id=plan.id"},
    {"billing plan-activate", "UpdatePlan", "plan.active=true update_mask=active", "--id ID",
     BILLING, "id=plan.id"},
    {"billing grant", "GrantSubscription", NULL, "--user-id ID --plan-id PLAN", BILLING, NULL},
    {"billing revoke", "RevokeSubscription", NULL, "--user-id ID", BILLING, NULL},
    {"billing suspend", "SuspendSubscription", NULL, "--user-id ID --reason TEXT", BILLING, NULL},
    {"billing resync", "ResyncSubscription", NULL, "--user-id ID", BILLING, NULL},
    {"billing refund", "RefundPayment", NULL,
     "--user-id ID --payment-id P [--amount-minor N] [--request-id UUID]", BILLING, NULL},
    {"billing retry-invoice", "RetryInvoice", NULL, "--user-id ID --payment-id P", BILLING, NULL},
    {"billing export", "ExportBillingRecords", NULL, "--user-id ID", BILLING, NULL},
    {"billing webhooks", "ListWebhookEvents", NULL,
     "[--type TYPE] [--filter processed|unprocessed|failed] [--page-size N]", BILLING, NULL},
    {"billing replay", "ReplayWebhookEvent", NULL, "--id EVENT", BILLING, NULL},
    {"billing students", "ListStudentVerifications", NULL, "[--status pending_review|...]", BILLING,
     NULL},
    {"billing approve", "ApproveStudentVerification", NULL, "--user-id ID", BILLING, NULL},
    {"billing reject", "RejectStudentVerification", NULL, "--user-id ID --reason TEXT", BILLING,
     NULL},
    {"billing metrics", "GetBillingMetrics", NULL, "[--days N] [--months N]", BILLING, NULL},
#undef BILLING
};

#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage(void)
{
    fprintf(stderr, "usage: twd admin COMMAND [options] [--json] [--server HOST:PORT [--ca-file "
                    "PEM] [--token-file FILE]] [settings]\ncommands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(stderr, "  %s %s\n", commands[i].words, commands[i].usage);
    fprintf(stderr, "  create --email EMAIL [--display-name NAME]\n"
                    "  login --email EMAIL --server HOST:PORT [--ca-file PEM]\n"
                    "any command also takes --field PATH=VALUE (plan.prices[0].currency=USD; "
                    "again to add to a list) and --request-json '{...}' (proto3 JSON)\n");
}

/* Removes a flag without a value ("--json") from argv; true when it was
 * there. */
static bool take_flag(int *argc, char **argv, const char *name)
{
    for (int i = 0; i < *argc; i++) {
        if (strcmp(argv[i], name) == 0) {
            memmove(&argv[i], &argv[i + 1], (size_t)(*argc - i - 1) * sizeof *argv);
            (*argc)--;
            return true;
        }
    }
    return false;
}

/* The whole of a small text file with its trailing white space removed,
 * malloc'd; NULL (with a line printed) when it cannot be read. */
static char *read_text(const char *path, const char *what)
{
    FILE *f = fopen(path, "rb");
    char *text = f ? malloc(FILE_MAX + 1) : NULL;
    size_t n = text ? fread(text, 1, FILE_MAX, f) : 0;
    if (f)
        fclose(f);
    if (text == NULL) {
        tw_cli_fail("cannot read %s %s: %s", what, path, strerror(errno));
        return NULL;
    }
    while (n > 0 && strchr(" \t\r\n", text[n - 1]))
        n--;
    text[n] = '\0';
    return text;
}

/* ---- requests from options ------------------------------------------------- */

/*
 * Every command fills its request the same way: one JSON object in the
 * proto3 JSON mapping is put together from, in this order, --request-json
 * TEXT, the row's preset, and the options; then tw_pbjson_parse makes the
 * request of it. So nested messages, lists, enums, times and masks are
 * read by one parser whatever the command.
 *
 * An option "--name VALUE" is one of
 *  - --field PATH=VALUE: PATH is dotted through messages ("plan.name"),
 *    with [i] into a list of messages ("plan.prices[0].currency"); a list
 *    of values grows by one each time the path is given again;
 *  - a name of the row's aliases ("--amount" for plan.prices[0].amount_minor);
 *  - a top-level field of the request (dashes for underscores:
 *    --page-size 10).
 * Anything else is left in argv: it is settings. VALUE is text; a bool
 * field takes true or false, a message field (not a Timestamp, Duration or
 * FieldMask, which take their strings) a JSON object.
 */

static void path_error(const char *option, const char *path, const char *what)
{
    tw_cli_fail("option %s: %s: %s", option, path, what);
}

/* The JSON value VALUE stands for in field f; NULL (with a line printed)
 * when it cannot. */
static json_t *leaf_value(const char *option, const char *path, const ProtobufCFieldDescriptor *f,
                          const char *text)
{
    if (f->type == PROTOBUF_C_TYPE_BOOL) {
        if (strcmp(text, "true") == 0 || strcmp(text, "false") == 0)
            return json_boolean(strcmp(text, "true") == 0);
        path_error(option, path, "takes true or false");
        return NULL;
    }
    const char *name = f->type == PROTOBUF_C_TYPE_MESSAGE
                           ? ((const ProtobufCMessageDescriptor *)f->descriptor)->name
                           : "";
    if (f->type == PROTOBUF_C_TYPE_MESSAGE && strncmp(name, "google.protobuf.", 16) != 0) {
        json_error_t e;
        json_t *v = json_loads(text, JSON_REJECT_DUPLICATES, &e);
        if (v == NULL || !json_is_object(v)) {
            json_decref(v);
            path_error(option, path, "takes a JSON object");
            return NULL;
        }
        return v;
    }
    return json_string(text);
}

/* Sets PATH to TEXT in the JSON request root, which is for messages of
 * descriptor d; false (with a line printed) on a path d does not have. */
static bool put_path(json_t *root, const ProtobufCMessageDescriptor *d, const char *option,
                     const char *path, const char *text)
{
    json_t *at = root;
    for (const char *seg = path;;) {
        size_t len = strcspn(seg, ".[");
        char name[64];
        if (len == 0 || len >= sizeof name) {
            path_error(option, path, "is not a field path (a.b[0].c)");
            return false;
        }
        snprintf(name, sizeof name, "%.*s", (int)len, seg);
        for (char *c = name; *c; c++)
            if (*c == '-')
                *c = '_';
        const ProtobufCFieldDescriptor *f =
            protobuf_c_message_descriptor_get_field_by_name(d, name);
        if (f == NULL) {
            char what[160];
            snprintf(what, sizeof what, "%s has no field %s", d->name, name);
            path_error(option, path, what);
            return false;
        }
        seg += len;
        long index = -1;
        if (*seg == '[') {
            char *end;
            index = strtol(seg + 1, &end, 10);
            if (end == seg + 1 || *end != ']' || index < 0 ||
                f->label != PROTOBUF_C_LABEL_REPEATED) {
                path_error(option, path, "has an index [i] where no list of messages is");
                return false;
            }
            seg = end + 1;
        }
        bool last = *seg == '\0';
        if (!last && (*seg != '.' || f->type != PROTOBUF_C_TYPE_MESSAGE ||
                      (f->label == PROTOBUF_C_LABEL_REPEATED && index < 0))) {
            path_error(option, path,
                       f->type != PROTOBUF_C_TYPE_MESSAGE
                           ? "goes on past a field that is not a message"
                           : "needs an index [i] into a list of messages");
            return false;
        }
        json_t *value = NULL;
        if (last && (value = leaf_value(option, path, f, text)) == NULL)
            return false;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            json_t *list = json_object_get(at, f->name);
            if (!json_is_array(list)) {
                list = json_array();
                json_object_set_new(at, f->name, list);
            }
            if (index < 0) { /* a list of values: one more */
                json_array_append_new(list, value);
                return true;
            }
            if ((size_t)index > json_array_size(list)) {
                json_decref(value);
                path_error(option, path, "skips an index: give [0], [1], ... in order");
                return false;
            }
            if ((size_t)index == json_array_size(list))
                json_array_append_new(list, last ? value : json_object());
            else if (last)
                json_array_set_new(list, (size_t)index, value);
            at = json_array_get(list, (size_t)index);
        } else if (last) {
            json_object_set_new(at, f->name, value);
        } else {
            json_t *next = json_object_get(at, f->name);
            if (!json_is_object(next)) {
                next = json_object();
                json_object_set_new(at, f->name, next);
            }
            at = next;
        }
        if (last)
            return true;
        if (!json_is_object(at)) {
            path_error(option, path, "goes into a value that is not an object");
            return false;
        }
        d = f->descriptor;
        seg++;
    }
}

/* The path an option stands for in row c's aliases ("name=path ..."), in
 * out; false when it has none. */
static bool alias_path(const struct admin_command *c, const char *option, char *out, size_t cap)
{
    size_t olen = strlen(option);
    for (const char *a = c->aliases; a != NULL && *a;) {
        size_t len = strcspn(a, " ");
        if (len > olen && strncmp(a, option, olen) == 0 && a[olen] == '=') {
            snprintf(out, cap, "%.*s", (int)(len - olen - 1), a + olen + 1);
            return true;
        }
        a += len + (a[len] == ' ');
    }
    return false;
}

/* Fills request m for row c from --request-json, the preset and the
 * options (removed from argv; what is left is settings); false (with a
 * line printed) on anything it cannot read. */
static bool fill_request(ProtobufCMessage *m, const struct admin_command *c, tw_arena *arena,
                         int *argc, char **argv)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    const char *text = tw_cli_take_option(argc, argv, "--request-json");
    json_error_t e;
    json_t *root = text ? json_loads(text, JSON_REJECT_DUPLICATES, &e) : json_object();
    if (root == NULL || !json_is_object(root)) {
        if (root == NULL)
            tw_cli_fail("option --request-json: not JSON: %s (at character %d)", e.text,
                        e.position);
        else
            tw_cli_fail("option --request-json: must be a JSON object ({...})");
        json_decref(root);
        return false;
    }
    bool ok = true;
    for (const char *p = c->preset; ok && p != NULL && *p;) {
        size_t len = strcspn(p, " "), name_len = strcspn(p, "=");
        char path[64], value[64];
        snprintf(path, sizeof path, "%.*s", (int)name_len, p);
        snprintf(value, sizeof value, "%.*s", (int)(len - name_len - 1), p + name_len + 1);
        ok = put_path(root, d, "(preset)", path, value);
        p += len + (p[len] == ' ');
    }
    for (int i = 0; ok && i < *argc;) {
        char name[64], path[128];
        const char *arg = argv[i];
        if (strncmp(arg, "--", 2) != 0 || strlen(arg) >= sizeof name + 2) {
            i++;
            continue;
        }
        size_t len = strcspn(arg + 2, "=");
        snprintf(name, sizeof name, "%.*s", (int)len, arg + 2);
        const char *value =
            arg[2 + len] == '=' ? arg + 3 + len : (i + 1 < *argc ? argv[i + 1] : NULL);
        int used = arg[2 + len] == '=' ? 1 : 2;
        bool field = strcmp(name, "field") == 0;
        if (field && value != NULL) {
            const char *eq = strchr(value, '=');
            if (eq == NULL || (size_t)(eq - value) >= sizeof path) {
                tw_cli_fail("option --field: \"%s\" is not PATH=VALUE", value);
                ok = false;
                break;
            }
            snprintf(path, sizeof path, "%.*s", (int)(eq - value), value);
            value = eq + 1;
        } else if (!alias_path(c, name, path, sizeof path)) {
            snprintf(path, sizeof path, "%s", name);
            for (char *ch = path; *ch; ch++)
                if (*ch == '-')
                    *ch = '_';
            if (protobuf_c_message_descriptor_get_field_by_name(d, path) == NULL) {
                i++; /* a setting */
                continue;
            }
        }
        if (value == NULL) {
            tw_cli_fail("option --%s needs a value", name);
            ok = false;
            break;
        }
        char option[80];
        snprintf(option, sizeof option, "--%s", name);
        ok = put_path(root, d, option, path, value);
        memmove(&argv[i], &argv[i + used], (size_t)(*argc - i - used) * sizeof *argv);
        *argc -= used;
    }
    char errbuf[512];
    if (ok && !(ok = tw_pbjson_parse(root, m, arena, errbuf, sizeof errbuf)))
        tw_cli_fail("bad request: %s", errbuf);
    json_decref(root);
    return ok;
}

/* ---- answers ------------------------------------------------------------------ */

static void print_scalar(const json_t *v)
{
    if (json_is_string(v))
        fputs(json_string_value(v), stdout);
    else if (json_is_integer(v))
        printf("%" JSON_INTEGER_FORMAT, json_integer_value(v));
    else if (json_is_real(v))
        printf("%.6g", json_real_value(v));
    else
        fputs(json_is_true(v) ? "true" : json_is_false(v) ? "false" : "null", stdout);
}

/* "field: value" lines, nested values indented; list items start "- ". */
static void print_yaml(const json_t *v, int indent, bool item_start)
{
    if (json_is_object(v)) {
        const char *key;
        json_t *value;
        bool first = true;
        json_object_foreach((json_t *)v, key, value)
        {
            printf("%*s%s:", first && item_start ? 0 : indent, "", key);
            first = false;
            if (json_is_object(value) || (json_is_array(value) && json_array_size(value) > 0)) {
                putchar('\n');
                print_yaml(value, indent + 2, false);
            } else {
                putchar(' ');
                json_is_array(value) ? fputs("[]", stdout) : print_scalar(value);
                putchar('\n');
            }
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *item;
        json_array_foreach(v, i, item)
        {
            printf("%*s- ", indent, "");
            if (json_is_object(item))
                print_yaml(item, indent + 2, true);
            else {
                print_scalar(item);
                putchar('\n');
            }
        }
    }
}

static void print_answer(const ProtobufCMessage *m, bool as_json)
{
    json_t *j = tw_pbjson(m, NULL, true);
    if (j == NULL)
        return;
    if (as_json) {
        char *text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        printf("%s\n", text ? text : "{}");
        free(text);
    } else if (json_object_size(j) == 0) {
        printf("ok\n");
    } else {
        print_yaml(j, 0, false);
    }
    json_decref(j);
}

/* ---- export ------------------------------------------------------------------------ */

struct export_out {
    const char *dir;
    FILE *records;
    uint64_t lines, recordings, audio_bytes;
};

static tw_err write_piece(void *ctx, const ProtobufCMessage *message)
{
    struct export_out *x = ctx;
    const Tw__V1__ExportUserDataResponse *r = (const void *)message;
    const Tw__V1__ExportChunk *c = r->chunk;
    if (c == NULL)
        return TW_OK;
    if (c->piece_case == TW__V1__EXPORT_CHUNK__PIECE_RECORDS) {
        fputs(c->records, x->records);
        for (const char *p = c->records; (p = strchr(p, '\n')) != NULL; p++)
            x->lines++;
        return ferror(x->records) ? TW_ERR_DB : TW_OK;
    }
    const Tw__V1__AudioChunk *a = c->audio;
    char path[PATH_MAX];
    if (a == NULL || strchr(a->voice_note_id, '/') != NULL ||
        snprintf(path, sizeof path, "%s/audio/%s", x->dir, a->voice_note_id) >= (int)sizeof path)
        return TW_ERR_UPSTREAM;
    FILE *f = fopen(path, a->offset == 0 ? "wb" : "ab");
    if (f == NULL)
        return TW_ERR_DB;
    bool ok = fwrite(a->data.data, 1, a->data.len, f) == a->data.len;
    ok = fclose(f) == 0 && ok;
    x->audio_bytes += a->data.len;
    x->recordings += a->last;
    return ok ? TW_OK : TW_ERR_DB;
}

/* ExportUserData into out_dir: records.jsonl and audio/<note id>. */
static int run_export(const tw_rpc_target *target, const ProtobufCMessage *request,
                      const char *out_dir, bool as_json)
{
    char path[PATH_MAX], errbuf[512];
    snprintf(path, sizeof path, "%s/audio", out_dir);
    if (tw_cli_make_dirs(path) != 0) {
        tw_cli_fail("cannot make %s: %s", path, strerror(errno));
        return EXIT_FAILURE;
    }
    snprintf(path, sizeof path, "%s/records.jsonl", out_dir);
    struct export_out x = {.dir = out_dir, .records = fopen(path, "w")};
    if (x.records == NULL) {
        tw_cli_fail("cannot write %s: %s", path, strerror(errno));
        return EXIT_FAILURE;
    }
    tw_err err = tw_rpc_stream(target, "/tw.v1.AdminService/ExportUserData", request,
                               &tw__v1__export_user_data_response__descriptor, ADMIN_TIMEOUT_MS,
                               write_piece, &x, errbuf, sizeof errbuf);
    if (fclose(x.records) != 0 && !err)
        err = TW_ERR_DB;
    if (err) {
        tw_cli_fail("export failed: %s (%s)", errbuf, tw_err_reason(err));
        return EXIT_FAILURE;
    }
    if (as_json)
        printf("{\n  \"records\": %llu,\n  \"recordings\": %llu,\n  \"audio_bytes\": %llu,\n  "
               "\"directory\": \"%s\"\n}\n",
               (unsigned long long)x.lines, (unsigned long long)x.recordings,
               (unsigned long long)x.audio_bytes, out_dir);
    else
        printf("exported %llu records and %llu recordings (%llu bytes of audio) to %s\n",
               (unsigned long long)x.lines, (unsigned long long)x.recordings,
               (unsigned long long)x.audio_bytes, out_dir);
    return EXIT_SUCCESS;
}

/* ---- login -------------------------------------------------------------------------- */

/* `twd admin login`: signs in and prints the access token. */
static int login(const tw_rpc_target *target, int argc, char **argv)
{
    const char *email = tw_cli_take_option(&argc, argv, "--email");
    if (email == NULL || target->address == NULL) {
        tw_cli_fail("usage: twd admin login --email EMAIL --server HOST:PORT [--ca-file PEM]");
        return TW_EXIT_USAGE;
    }
    char password[TW_PASSWORD_MAX_BYTES + 2], errbuf[512];
    if (!tw_cli_read_password(password, sizeof password))
        return EXIT_FAILURE;
    Tw__V1__LoginRequest request = TW__V1__LOGIN_REQUEST__INIT;
    request.email = (char *)email;
    request.password = password;
    tw_arena *arena = tw_arena_new(1024);
    ProtobufCMessage *response = NULL;
    tw_err err = arena ? tw_rpc_call(target, "/tw.v1.AuthService/Login", &request.base,
                                     &tw__v1__login_response__descriptor, LOGIN_TIMEOUT_MS, arena,
                                     &response, errbuf, sizeof errbuf)
                       : TW_ERR_NO_MEMORY;
    memset(password, 0, sizeof password);
    const Tw__V1__LoginResponse *out = (const void *)response;
    if (!err && out->tokens != NULL)
        printf("%s\n", out->tokens->access_token);
    else
        tw_cli_fail("sign-in failed: %s", errbuf);
    tw_arena_free(arena);
    return err ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* ---- the command ------------------------------------------------------------------- */

/* The table row named by the first one or two words; *used gets how many. */
static const struct admin_command *find_command(int argc, char **argv, int *used)
{
    for (size_t i = 0; i < NCOMMANDS; i++) {
        char words[64];
        snprintf(words, sizeof words, "%s%s%s", argc > 0 ? argv[0] : "",
                 argc > 1 && strchr(commands[i].words, ' ') ? " " : "",
                 argc > 1 && strchr(commands[i].words, ' ') ? argv[1] : "");
        if (strcmp(words, commands[i].words) == 0) {
            *used = strchr(commands[i].words, ' ') ? 2 : 1;
            return &commands[i];
        }
    }
    return NULL;
}

/* Sends the request where the options say and prints the answer. */
static int run(const struct admin_command *c, int argc, char **argv, tw_rpc_target *target,
               bool as_json)
{
    const ProtobufCServiceDescriptor *service =
        c->service ? c->service : &tw__v1__admin_service__descriptor;
    const ProtobufCMethodDescriptor *m =
        protobuf_c_service_descriptor_get_method_by_name(service, c->method);
    tw_arena *arena = tw_arena_new(4096);
    ProtobufCMessage *request = arena ? tw_arena_alloc(arena, m->input->sizeof_message) : NULL;
    if (request == NULL) {
        tw_arena_free(arena);
        return EXIT_FAILURE;
    }
    m->input->message_init(request);
    const char *out_dir = tw_cli_take_option(&argc, argv, "--out");
    int status = EXIT_FAILURE;
    tw_config cfg;
    bool have_cfg = false;
    char address[PATH_MAX + 8], errbuf[512];
    if (!fill_request(request, c, arena, &argc, argv) ||
        !(have_cfg = tw_cli_load_config(&cfg, argc, argv))) {
        status = TW_EXIT_USAGE;
        goto out;
    }
    if (target->address == NULL) {
        char socket[PATH_MAX];
        tw_cli_operator_socket(&cfg, socket, sizeof socket);
        if (access(socket, F_OK) != 0) {
            tw_cli_fail("no twd serves %s (no operator socket at %s): start one, or use "
                        "--server HOST:PORT",
                        cfg.data_dir, socket);
            goto out;
        }
        snprintf(address, sizeof address, "unix:%s", socket);
        target->address = address;
        target->token = NULL;
    }
    if (strcmp(c->method, "ExportUserData") == 0) {
        if (out_dir == NULL) {
            tw_cli_fail("user export needs --out DIR");
            status = TW_EXIT_USAGE;
        } else {
            status = run_export(target, request, out_dir, as_json);
        }
        goto out;
    }
    char path[96];
    snprintf(path, sizeof path, "/%s/%s", service->name, c->method);
    ProtobufCMessage *response = NULL;
    tw_err err = tw_rpc_call(target, path, request, m->output, ADMIN_TIMEOUT_MS, arena, &response,
                             errbuf, sizeof errbuf);
    if (err) {
        tw_cli_fail("%s failed: %s (%s)", c->words, errbuf, tw_err_reason(err));
        goto out;
    }
    print_answer(response, as_json);
    status = EXIT_SUCCESS;
out:
    if (have_cfg)
        tw_config_free(&cfg);
    tw_arena_free(arena);
    return status;
}

int tw_cmd_admin(int argc, char **argv)
{
    if (argc >= 1 && strcmp(argv[0], "create") == 0)
        return tw_cmd_admin_create(argc - 1, argv + 1);
    bool as_json = take_flag(&argc, argv, "--json");
    tw_rpc_target target = {.address = tw_cli_take_option(&argc, argv, "--server")};
    const char *ca_file = tw_cli_take_option(&argc, argv, "--ca-file");
    const char *token_file = tw_cli_take_option(&argc, argv, "--token-file");
    char *roots = ca_file ? read_text(ca_file, "--ca-file") : NULL;
    char *token = token_file ? read_text(token_file, "--token-file") : NULL;
    if ((ca_file && roots == NULL) || (token_file && token == NULL)) {
        free(roots);
        free(token);
        return EXIT_FAILURE;
    }
    target.tls_roots_pem = roots;
    target.token = token ? token : getenv("TW_ADMIN_TOKEN");
    int status, used = 0;
    const struct admin_command *c = NULL;
    if (argc >= 1 && strcmp(argv[0], "login") == 0) {
        status = login(&target, argc - 1, argv + 1);
    } else if ((c = find_command(argc, argv, &used)) == NULL) {
        usage();
        status = TW_EXIT_USAGE;
    } else if (target.address != NULL && target.token == NULL) {
        tw_cli_fail("--server needs an admin's access token: --token-file FILE or TW_ADMIN_TOKEN "
                    "(twd admin login prints one)");
        status = TW_EXIT_USAGE;
    } else {
        status = run(c, argc - used, argv + used, &target, as_json);
    }
    free(roots);
    free(token);
    return status;
}

/* Account rules, records and writes for account.h. */
#include "account.h"

#include "tw_changelog.h"
#include "tw_counter.h"
#include "tw_unique.h"
#include "tw_utf8.h"
#include "tz.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The shipped list (server/auth/common_passwords.txt), embedded by the build. */
extern const unsigned char tw_common_passwords[];
extern const size_t tw_common_passwords_size;

#define WHY(...) (snprintf(why, whylen, __VA_ARGS__), false)

/* Trims email and checks its shape into out, the domain in lower case; the
 * local part in lower case too when fold_local. */
static bool email_parse(const char *email, bool fold_local, char *out, char *why, size_t whylen)
{
    while (isspace((unsigned char)*email))
        email++;
    size_t len = strlen(email);
    while (len > 0 && isspace((unsigned char)email[len - 1]))
        len--;
    if (len == 0)
        return WHY("is required");
    if (len > TW_EMAIL_MAX)
        return WHY("is longer than %d characters", TW_EMAIL_MAX);
    memcpy(out, email, len);
    out[len] = '\0';
    char *at = strrchr(out, '@');
    if (at == NULL || at == out || at[1] == '\0' || strchr(out, '@') != at)
        return WHY("is not an email address (name@domain)");
    for (const char *p = out; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return WHY("must not contain spaces or control characters");
    const char *domain = at + 1;
    const char *dot = strchr(domain, '.');
    if (dot == NULL || domain[0] == '.' || out[len - 1] == '.' || strstr(domain, ".."))
        return WHY("has no valid domain");
    /* ASCII letters only: bytes of other scripts stay as they are. */
    for (char *p = fold_local ? out : at + 1; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    return true;
}

bool tw_email_normalise(const char *email, char *out, char *why, size_t whylen)
{
    return email_parse(email, true, out, why, whylen);
}

/* ---- common passwords ------------------------------------------------------ */

static const char **common;
static size_t ncommon;
static pthread_once_t common_once = PTHREAD_ONCE_INIT;

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Splits the embedded list into lower-case lines once, sorted for bsearch.
 * Lines starting "#!comment:" are the list's own notes. */
static void load_common(void)
{
    char *text = malloc(tw_common_passwords_size + 1);
    const char **lines = calloc(tw_common_passwords_size / 2 + 1, sizeof *lines);
    if (text == NULL || lines == NULL) {
        free(text);
        free(lines);
        return;
    }
    memcpy(text, tw_common_passwords, tw_common_passwords_size);
    text[tw_common_passwords_size] = '\0';
    size_t n = 0;
    for (char *line = strtok(text, "\r\n"); line != NULL; line = strtok(NULL, "\r\n")) {
        if (strncmp(line, "#!comment:", 10) == 0)
            continue;
        for (char *p = line; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        lines[n++] = line;
    }
    qsort(lines, n, sizeof *lines, compare_strings);
    common = lines;
    ncommon = n;
}

bool tw_password_is_common(const char *password)
{
    pthread_once(&common_once, load_common);
    char folded[TW_PASSWORD_MAX_BYTES + 1];
    size_t len = strlen(password);
    if (len > TW_PASSWORD_MAX_BYTES || common == NULL)
        return false;
    for (size_t i = 0; i <= len; i++)
        folded[i] = (char)tolower((unsigned char)password[i]);
    const char *key = folded;
    return bsearch(&key, common, ncommon, sizeof *common, compare_strings) != NULL;
}

bool tw_password_acceptable(const char *password, char *why, size_t whylen)
{
    if (tw_utf8_chars(password) < TW_PASSWORD_MIN_CHARS)
        return WHY("must be at least %d characters", TW_PASSWORD_MIN_CHARS);
    if (strlen(password) > TW_PASSWORD_MAX_BYTES)
        return WHY("must be at most %d bytes", TW_PASSWORD_MAX_BYTES);
    if (tw_password_is_common(password))
        return WHY("is one of the most commonly used passwords; choose another");
    return true;
}

/* ---- profile fields ---------------------------------------------------------- */

bool tw_time_zone_valid(const char *zone, char *why, size_t whylen)
{
    if (tw_tz_known(zone))
        return true;
    if (zone[0] == '\0' || strlen(zone) > TW_TZ_NAME_MAX)
        return WHY("must be an IANA time zone such as \"Europe/Paris\"");
    return WHY("\"%s\" is not a time zone in the tz database", zone);
}

bool tw_locale_valid(const char *locale, char *why, size_t whylen)
{
    size_t len = strlen(locale), i = 0;
    if (len == 0 || len > 35)
        return WHY("must be a BCP 47 language tag such as \"en\" or \"pt-BR\"");
    while (i < len && isalpha((unsigned char)locale[i]))
        i++;
    if (i < 2 || i > 3)
        return WHY("must start with a 2 or 3 letter language code");
    while (i < len) {
        if (locale[i] != '-')
            return WHY("subtags must be separated by '-'");
        size_t start = ++i;
        while (i < len && isalnum((unsigned char)locale[i]))
            i++;
        if (i - start < 1 || i - start > 8)
            return WHY("subtags must be 1 to 8 letters or digits");
    }
    return true;
}

bool tw_display_name_valid(const char *name, bool allow_empty, char *why, size_t whylen)
{
    const char *start = name;
    while (isspace((unsigned char)*start))
        start++;
    if (*start == '\0' && !allow_empty)
        return WHY("is required");
    if (tw_utf8_chars(name) > TW_NAME_MAX_CHARS)
        return WHY("must be at most %d characters", TW_NAME_MAX_CHARS);
    for (const char *p = name; *p; p++)
        if ((unsigned char)*p < ' ' || *p == 0x7f)
            return WHY("must not contain control characters");
    return true;
}

/* ---- records ------------------------------------------------------------------ */

void tw_account_key(tw_key *k, const tw_id *user)
{
    tw_key_init(k, TW_KF_USER);
    tw_key_id(k, user);
}

/* The active account of user: read for update in t, or committed from s
 * when t is NULL. */
static tw_err account_read(tw_store *s, tw_txn *t, const tw_id *user, tw_arena *arena,
                           Tw__Store__V1__Account **out)
{
    tw_key k;
    tw_value v;
    tw_account_key(&k, user);
    tw_err err = t ? tw_txn_get_for_update(t, &k, arena, &v) : tw_store_get(s, &k, arena, &v);
    if (err)
        return err;
    *out = (void *)v.msg;
    return (*out)->state == TW__STORE__V1__ACCOUNT_STATE__ACCOUNT_STATE_ACTIVE ? TW_OK
                                                                               : TW_ERR_NOT_FOUND;
}

tw_err tw_account_load(tw_store *s, const tw_id *user, tw_arena *arena,
                       Tw__Store__V1__Account **out)
{
    return account_read(s, NULL, user, arena, out);
}

tw_err tw_txn_account_load(tw_txn *t, const tw_id *user, tw_arena *arena,
                           Tw__Store__V1__Account **out)
{
    return account_read(NULL, t, user, arena, out);
}

static bool account_id(const Tw__Store__V1__Account *a, tw_id *id)
{
    if (a->id.len != TW_ID_BYTES)
        return false;
    memcpy(id->bytes, a->id.data, TW_ID_BYTES);
    return true;
}

void tw_account_flag_key(tw_key *k, const char *flag, const tw_id *user)
{
    tw_key_init(k, TW_KF_ACCOUNT_BY_FLAG);
    tw_key_str(k, flag);
    tw_key_id(k, user);
}

/* Lists the account under each flag it has, and only those. */
static tw_err put_flags(tw_txn *t, const tw_id *id, const Tw__Store__V1__Account *account)
{
    const struct {
        const char *flag;
        bool set;
    } flags[] = {
        {TW_ACCOUNT_FLAG_DISABLED, account->disabled},
        {TW_ACCOUNT_FLAG_ADMIN, strcmp(account->role, TW_ROLE_ADMIN) == 0},
    };
    tw_err err = TW_OK;
    for (size_t i = 0; i < sizeof flags / sizeof flags[0] && !err; i++) {
        tw_key k;
        tw_account_flag_key(&k, flags[i].flag, id);
        err = flags[i].set ? tw_txn_put(t, &k, NULL) : tw_txn_delete(t, &k);
    }
    return err;
}

tw_err tw_txn_account_put(tw_txn *t, const Tw__Store__V1__Account *account)
{
    tw_id id;
    if (!account_id(account, &id))
        return TW_ERR_INTERNAL;
    tw_key k;
    tw_account_key(&k, &id);
    tw_err err = tw_txn_put(t, &k, &(tw_value){.msg = (ProtobufCMessage *)&account->base});
    if (!err)
        err = put_flags(t, &id, account);
    return err ? err : tw_txn_changelog_append(t, &id, "user", &id, TW_CHANGE_UPSERT, NULL);
}

tw_err tw_txn_account_create(tw_txn *t, const Tw__Store__V1__Account *account)
{
    tw_id id;
    if (!account_id(account, &id))
        return TW_ERR_INTERNAL;
    tw_err err = tw_txn_unique_claim(t, TW_EMAIL_SPACE, account->email, &id);
    if (!err)
        err = tw_txn_account_put(t, account);
    if (!err)
        err = tw_txn_counter_add(t, &(tw_counter){.name = "registrations"},
                                 tw_store_day(account->create_unix_ms), 1);
    return err;
}

/* ---- addresses that differ only by case (EmailCaseCollision) ---------------- */

static void collision_key(tw_key *k, const char *normal)
{
    tw_key_init(k, TW_KF_EMAIL_CASE_COLLISION);
    tw_key_str(k, normal);
}

static bool entry_is(const Tw__Store__V1__CaseCollidingAccount *entry, const tw_id *user)
{
    return entry->user_id.len == TW_ID_BYTES &&
           memcmp(entry->user_id.data, user->bytes, TW_ID_BYTES) == 0;
}

tw_err tw_account_find_by_email(tw_store *s, const char *email, tw_arena *arena, tw_id *owner)
{
    char normal[TW_EMAIL_MAX + 1], spelling[TW_EMAIL_MAX + 1], why[160];
    if (!email_parse(email, true, normal, why, sizeof why) ||
        !email_parse(email, false, spelling, why, sizeof why))
        return TW_ERR_NOT_FOUND;
    tw_key k;
    tw_value v;
    collision_key(&k, normal);
    tw_err err = tw_store_get(s, &k, arena, &v);
    if (err && err != TW_ERR_NOT_FOUND)
        return err;
    const Tw__Store__V1__EmailCaseCollision *c = err ? NULL : (const void *)v.msg;
    for (size_t i = 0; c != NULL && i < c->n_accounts; i++) {
        const Tw__Store__V1__CaseCollidingAccount *entry = c->accounts[i];
        if (strcmp(entry->email, spelling) == 0 && entry->user_id.len == TW_ID_BYTES) {
            memcpy(owner->bytes, entry->user_id.data, TW_ID_BYTES);
            return TW_OK;
        }
    }
    return tw_store_unique_lookup(s, TW_EMAIL_SPACE, normal, owner);
}

/* Writes c back, or deletes it once it lists nobody. */
static tw_err collision_put(tw_txn *t, const tw_key *k, Tw__Store__V1__EmailCaseCollision *c)
{
    return c->n_accounts == 0 ? tw_txn_delete(t, k)
                              : tw_txn_put(t, k, &(tw_value){.msg = &c->base});
}

tw_err tw_txn_account_release_email(tw_txn *t, const Tw__Store__V1__Account *account,
                                    tw_arena *arena)
{
    tw_id id;
    char normal[TW_EMAIL_MAX + 1], why[160];
    if (!account_id(account, &id) || !email_parse(account->email, true, normal, why, sizeof why))
        return TW_ERR_INTERNAL;
    tw_key k;
    tw_value v;
    collision_key(&k, normal);
    tw_err err = tw_txn_get_for_update(t, &k, arena, &v);
    if (err == TW_ERR_NOT_FOUND) /* the usual case: no collision */
        return tw_txn_unique_release(t, TW_EMAIL_SPACE, normal, &id);
    if (err)
        return err;
    Tw__Store__V1__EmailCaseCollision *c = (void *)v.msg;
    for (size_t i = 0; i < c->n_accounts; i++) {
        if (entry_is(c->accounts[i], &id)) { /* listed: it holds no claim */
            memmove(&c->accounts[i], &c->accounts[i + 1],
                    (c->n_accounts - i - 1) * sizeof *c->accounts);
            c->n_accounts--;
            return collision_put(t, &k, c);
        }
    }
    /* The holder goes: the oldest listed account gets the address. */
    if ((err = tw_txn_unique_release(t, TW_EMAIL_SPACE, normal, &id)))
        return err;
    tw_id heir;
    if (c->n_accounts == 0)
        return collision_put(t, &k, c);
    if (c->accounts[0]->user_id.len != TW_ID_BYTES)
        return TW_ERR_DB_CORRUPT;
    memcpy(heir.bytes, c->accounts[0]->user_id.data, TW_ID_BYTES);
    memmove(&c->accounts[0], &c->accounts[1], (c->n_accounts - 1) * sizeof *c->accounts);
    c->n_accounts--;
    if ((err = tw_txn_unique_claim(t, TW_EMAIL_SPACE, normal, &heir)))
        return err;
    return collision_put(t, &k, c);
}

Tw__Store__V1__Account *tw_account_new(tw_arena *arena, const char *email, const char *hash,
                                       const char *display_name, const char *time_zone,
                                       const char *locale, const char *role, int64_t now_ms)
{
    Tw__Store__V1__Account *a = tw_arena_alloc(arena, sizeof *a);
    uint8_t *id = tw_arena_alloc(arena, TW_ID_BYTES);
    if (a == NULL || id == NULL)
        return NULL;
    tw__store__v1__account__init(a);
    tw_id fresh = tw_id_new();
    memcpy(id, fresh.bytes, TW_ID_BYTES);
    a->id = (ProtobufCBinaryData){TW_ID_BYTES, id};
    a->email = tw_arena_strdup(arena, email);
    a->password_hash = tw_arena_strdup(arena, hash);
    a->display_name = tw_arena_strdup(arena, display_name);
    a->time_zone = tw_arena_strdup(arena, time_zone);
    a->locale = tw_arena_strdup(arena, locale);
    a->role = tw_arena_strdup(arena, role);
    a->state = TW__STORE__V1__ACCOUNT_STATE__ACCOUNT_STATE_ACTIVE;
    a->create_unix_ms = a->update_unix_ms = now_ms;
    bool ok =
        a->email && a->password_hash && a->display_name && a->time_zone && a->locale && a->role;
    return ok ? a : NULL;
}

Tw__V1__User *tw_account_to_user(const Tw__Store__V1__Account *a, tw_arena *arena)
{
    Tw__V1__User *u = tw_arena_alloc(arena, sizeof *u);
    char *id = tw_arena_alloc(arena, TW_ID_TEXT_SIZE);
    tw_id uid;
    if (u == NULL || id == NULL || !account_id(a, &uid))
        return NULL;
    tw__v1__user__init(u);
    tw_id_format(&uid, id);
    u->id = id;
    u->email = a->email;
    u->display_name = a->display_name;
    u->time_zone = a->time_zone;
    u->locale = a->locale;
    u->day_start_hour = a->day_start_hour;
    u->role =
        strcmp(a->role, TW_ROLE_ADMIN) == 0 ? TW__V1__ROLE__ROLE_ADMIN : TW__V1__ROLE__ROLE_USER;
    u->disabled = a->disabled;
    u->create_time = tw_timestamp_new(arena, a->create_unix_ms);
    u->update_time = tw_timestamp_new(arena, a->update_unix_ms);
    return u;
}

/* Unit tests for store/migrations.c: every migration of twd runs up and
 * down on a store with data in it, and each migration does what it says. */
#include "store_fixture.h"
#include "tw/store/v1/accounts.pb-c.h"
#include "tw/store/v1/wellness_records.pb-c.h"
#include "tw/store/v1/voice_records.pb-c.h"
#include "tw_migrate.h"
#include "store_internal.h"
#include "tw_owned.h"
#include "tw_unique.h"

#include "tw_check.h"

#include <stdio.h>
#include <string.h>

#define OWNERS 3
#define CLAIMS 300 /* more than one backfill chunk */

static tw_id owners[OWNERS];

/* Accounts stored the old way (migration 2's test data). Two pairs whose
 * addresses differ only by case: of "Case-X", the newer account has the
 * smaller id (the migration meets it first) and held the lower-case
 * spelling, so the migration must move that claim to the older one; of
 * "Mixed.Case", the older comes first. One more account is alone. */
static tw_id case_old, case_new, mixed_old, mixed_new, solo;

static void old_accounts(void)
{
    case_new = tw_id_new();
    case_old = tw_id_new();
    mixed_old = tw_id_new();
    mixed_new = tw_id_new();
    solo = tw_id_new();
    fx_old_account(&case_new, "case-x@example.com", FX_EPOCH_MS - 1000);
    fx_old_account(&case_old, "Case-X@example.com", FX_EPOCH_MS - 2000);
    fx_old_account(&mixed_old, "Mixed.Case@example.com", FX_EPOCH_MS - 3000);
    fx_old_account(&mixed_new, "mixed.case@example.com", FX_EPOCH_MS - 500);
    fx_old_account(&solo, "Solo.User@example.com", FX_EPOCH_MS);
}

/* Claims as a binary before migration 1 wrote them: UNIQUE only. */
static tw_err old_claims(tw_txn *t, void *ctx)
{
    tw_err err = TW_OK;
    for (int i = 0; err == TW_OK && i < CLAIMS; i++) {
        char value[32];
        snprintf(value, sizeof value, "user%d@example.com", i);
        tw_key k;
        tw_key_init(&k, TW_KF_UNIQUE);
        tw_key_str(&k, "email");
        tw_key_str(&k, value);
        err = tw_txn_put(t, &k, &(tw_value){.id = owners[i % OWNERS]});
    }
    return err;
}

/* Voice notes as a binary before migration 5 wrote them: one with a
 * request_id and its entry in VOICE_NOTE_BY_REQUEST, one without. */
static tw_id voice_user, voice_notes[2];

static tw_err old_voice_notes(tw_txn *t, void *ctx)
{
    (void)ctx;
    voice_user = tw_id_new();
    const char *request_ids[2] = {"0190a6b2-0000-7000-8000-000000000042", ""};
    tw_err err = TW_OK;
    for (int i = 0; err == TW_OK && i < 2; i++) {
        voice_notes[i] = tw_id_new();
        Tw__V1__VoiceNote note = TW__V1__VOICE_NOTE__INIT;
        note.request_id = (char *)request_ids[i];
        Tw__Store__V1__VoiceNoteRecord rec = TW__STORE__V1__VOICE_NOTE_RECORD__INIT;
        rec.note = &note;
        tw_key k;
        tw_key_init(&k, TW_KF_VOICE_NOTE);
        tw_key_id(&k, &voice_user);
        tw_key_id(&k, &voice_notes[i]);
        err = tw_txn_put(t, &k, &(tw_value){.msg = &rec.base});
        if (err == TW_OK && request_ids[i][0] != '\0') {
            tw_key_init(&k, TW_KF_VOICE_NOTE_BY_REQUEST);
            tw_key_id(&k, &voice_user);
            tw_key_str(&k, request_ids[i]);
            err = tw_txn_put(t, &k, &(tw_value){.id = voice_notes[i]});
        }
    }
    return err;
}

static tw_store_report report(void)
{
    tw_store_report r;
    ck_assert_int_eq(tw_store_verify(fx.store, &r), TW_OK);
    return r;
}

static uint64_t index_keys(void)
{
    return report().keys[TW_CF_INDEX];
}

START_TEST(every_migration_goes_up_and_down)
{
    for (int i = 0; i < OWNERS; i++)
        owners[i] = tw_id_new();
    ck_assert_int_eq(tw_txn_run(fx.store, old_claims, NULL), TW_OK);
    old_accounts();
    ck_assert_int_eq(tw_txn_run(fx.store, old_voice_notes, NULL), TW_OK);
    tw_store_report before = report();
    const tw_migration_set *set = &tw_store_migrations;
    size_t applied;
    ck_assert_int_eq(tw_store_migrate_up(fx.store, set, &applied), TW_OK);
    ck_assert_uint_eq(applied, set->count);
    for (size_t i = set->count; i > 0; i--) {
        uint32_t number;
        ck_assert_int_eq(tw_store_migrate_down(fx.store, set, &number), TW_OK);
        ck_assert_uint_eq(number, set->rows[i - 1].number);
    }
    /* Down undid up: the same keys in every column family. */
    tw_store_report after = report();
    ck_assert_mem_eq(after.keys, before.keys, sizeof before.keys);
    ck_assert_int_eq(tw_store_migrate_up(fx.store, set, &applied), TW_OK);
    ck_assert_uint_eq(applied, set->count);
}
END_TEST

static tw_err release_all(tw_txn *t, void *ctx)
{
    return tw_txn_unique_release_all(t, ctx);
}

START_TEST(unique_by_owner_lists_old_claims_under_their_owners)
{
    const tw_migration_set one = {tw_store_migrations.rows, 1};
    for (int i = 0; i < OWNERS; i++)
        owners[i] = tw_id_new();
    ck_assert_int_eq(tw_txn_run(fx.store, old_claims, NULL), TW_OK);
    ck_assert_uint_eq(index_keys(), CLAIMS);

    ck_assert_int_eq(tw_store_migrate_up(fx.store, &one, NULL), TW_OK);
    ck_assert_uint_eq(index_keys(), 2 * CLAIMS);
    /* Running the backfill again (a crash before its record) changes nothing. */
    ck_assert_int_eq(tw_store_migrations.rows[0].up(fx.store), TW_OK);
    ck_assert_uint_eq(index_keys(), 2 * CLAIMS);

    /* What it is for: deleting an account frees everything it claimed. */
    ck_assert_int_eq(tw_txn_run(fx.store, release_all, &owners[0]), TW_OK);
    tw_id owner;
    ck_assert_int_eq(tw_store_unique_lookup(fx.store, "email", "user0@example.com", &owner),
                     TW_ERR_NOT_FOUND);
    ck_assert_int_eq(tw_store_unique_lookup(fx.store, "email", "user1@example.com", &owner), TW_OK);
    ck_assert_uint_eq(index_keys(), 2 * (CLAIMS - CLAIMS / OWNERS));

    ck_assert_int_eq(tw_store_migrate_down(fx.store, &one, NULL), TW_OK);
    ck_assert_uint_eq(index_keys(), CLAIMS - CLAIMS / OWNERS); /* claims stay */
    ck_assert_int_eq(tw_store_unique_lookup(fx.store, "email", "user1@example.com", &owner), TW_OK);
}
END_TEST

START_TEST(voice_request_index_is_retired_and_rebuilt_by_down)
{
    const tw_migration_set five = {tw_store_migrations.rows, 5};
    ck_assert_uint_eq(tw_store_migrations.rows[4].number, 5);
    ck_assert_int_eq(tw_txn_run(fx.store, old_voice_notes, NULL), TW_OK);
    tw_store_report before = report();
    ck_assert_uint_eq(before.keys[TW_CF_INDEX], 1);
    ck_assert_int_eq(tw_store_migrate_up(fx.store, &five, NULL), TW_OK);
    tw_key k;
    tw_key_init(&k, TW_KF_VOICE_NOTE_BY_REQUEST);
    tw_key_id(&k, &voice_user);
    tw_key_str(&k, "0190a6b2-0000-7000-8000-000000000042");
    tw_value v;
    ck_assert_int_eq(tw_store_get(fx.store, &k, NULL, &v), TW_ERR_NOT_FOUND);
    ck_assert_uint_eq(report().keys[TW_CF_INDEX], 0);
    ck_assert_uint_eq(report().keys[TW_CF_DATA], before.keys[TW_CF_DATA]); /* the notes stay */
    uint32_t number;
    ck_assert_int_eq(tw_store_migrate_down(fx.store, &five, &number), TW_OK);
    ck_assert_uint_eq(number, 5);
    ck_assert_int_eq(tw_store_get(fx.store, &k, NULL, &v), TW_OK);
    ck_assert_mem_eq(v.id.bytes, voice_notes[0].bytes, TW_ID_BYTES);
    ck_assert_uint_eq(report().keys[TW_CF_INDEX], 1);
}
END_TEST

/* Owner of value in the email space, or "nobody". */
static const tw_id *holder(const char *value)
{
    static tw_id owner;
    static const tw_id nobody;
    return tw_store_unique_lookup(fx.store, "email", value, &owner) == TW_OK ? &owner : &nobody;
}

#define ck_assert_holder(value, id) ck_assert_mem_eq(holder(value)->bytes, (id)->bytes, TW_ID_BYTES)

static void collect_line(void *ctx, const char *text)
{
    char *lines = ctx;
    strcat(lines, text);
    strcat(lines, "\n");
}

static void notes(char *lines)
{
    lines[0] = '\0';
    ck_assert_int_eq(tw_store_migration_notes(fx.store, collect_line, lines), TW_OK);
}

START_TEST(email_claims_become_case_insensitive_and_collisions_are_kept_and_reported)
{
    const tw_migration_set two = {tw_store_migrations.rows, 2};
    old_accounts();
    ck_assert_int_eq(tw_store_migrate_up(fx.store, &two, NULL), TW_OK);

    /* Each address is claimed in its normal form, by the oldest account. */
    const tw_id nobody = {{0}};
    ck_assert_holder("case-x@example.com", &case_old);
    ck_assert_holder("mixed.case@example.com", &mixed_old);
    ck_assert_holder("solo.user@example.com", &solo);
    ck_assert_holder("Case-X@example.com", &nobody);
    ck_assert_holder("Mixed.Case@example.com", &nobody);
    ck_assert_holder("Solo.User@example.com", &nobody);

    /* The newer of each pair is listed with the address it signs in with. */
    tw_key k;
    tw_value v;
    tw_key_init(&k, TW_KF_EMAIL_CASE_COLLISION);
    tw_key_str(&k, "case-x@example.com");
    ck_assert_int_eq(tw_store_get(fx.store, &k, fx.arena, &v), TW_OK);
    const Tw__Store__V1__EmailCaseCollision *c = (const void *)v.msg;
    ck_assert_uint_eq(c->n_accounts, 1);
    ck_assert_mem_eq(c->accounts[0]->user_id.data, case_new.bytes, TW_ID_BYTES);
    ck_assert_str_eq(c->accounts[0]->email, "case-x@example.com");

    /* The operator sees both in `twd migrate status`. */
    char lines[4096], ids[4][TW_ID_TEXT_SIZE], expected[1024];
    tw_id_format(&case_old, ids[0]);
    tw_id_format(&case_new, ids[1]);
    tw_id_format(&mixed_old, ids[2]);
    tw_id_format(&mixed_new, ids[3]);
    snprintf(expected, sizeof expected,
             "email case collision: case-x@example.com belongs to user %s; user %s signs in only "
             "as case-x@example.com\n"
             "email case collision: mixed.case@example.com belongs to user %s; user %s signs in "
             "only as mixed.case@example.com\n",
             ids[0], ids[1], ids[2], ids[3]);
    notes(lines);
    ck_assert_str_eq(lines, expected);

    /* Running it again (a crash before its record) changes nothing. */
    tw_store_report once = report();
    ck_assert_int_eq(tw_store_migrations.rows[1].up(fx.store), TW_OK);
    tw_store_report twice = report();
    ck_assert_mem_eq(twice.keys, once.keys, sizeof once.keys);
    notes(lines);
    ck_assert_str_eq(lines, expected);

    /* Down: every account claims its own spelling again; no lists remain. */
    ck_assert_int_eq(tw_store_migrate_down(fx.store, &two, NULL), TW_OK);
    ck_assert_holder("case-x@example.com", &case_new);
    ck_assert_holder("Case-X@example.com", &case_old);
    ck_assert_holder("Mixed.Case@example.com", &mixed_old);
    ck_assert_holder("mixed.case@example.com", &mixed_new);
    ck_assert_holder("Solo.User@example.com", &solo);
    ck_assert_holder("solo.user@example.com", &nobody);
    notes(lines);
    ck_assert_str_eq(lines, "");
}
END_TEST

/* Wellness entities as stored before migration 4: the API messages
 * themselves, under their (user, id) keys. */
struct old_wellness {
    tw_id user, id;
    char id_text[TW_ID_TEXT_SIZE];
};

/* Writes msg's bytes under (family, user, id) as they are: the family's
 * codec would refuse a message that is not its record. */
static void put_raw(tw_kf family, const struct old_wellness *w, const ProtobufCMessage *msg)
{
    tw_key k;
    tw_owned_key(&k, family, &w->user, &w->id);
    size_t len = protobuf_c_message_get_packed_size(msg);
    uint8_t *bytes = tw_arena_alloc(fx.arena, len + 1);
    protobuf_c_message_pack(msg, bytes);
    char *err = NULL;
    rocksdb_put_cf(fx.store->db, fx.store->write_opts, fx.store->cf[tw_keyspace_family(family)->cf],
                   (const char *)k.bytes, k.len, (const char *)bytes, len, &err);
    ck_assert_msg(err == NULL, "%s", err);
}

static void old_wellness_put(struct old_wellness *w)
{
    Tw__V1__HealthLog log = TW__V1__HEALTH_LOG__INIT;
    log.id = w->id_text;
    log.note = "after the run";
    Tw__V1__FocusTemplate tmpl = TW__V1__FOCUS_TEMPLATE__INIT;
    tmpl.id = w->id_text;
    tmpl.display_name = "Deep work";
    Tw__V1__FocusSession session = TW__V1__FOCUS_SESSION__INIT;
    session.id = w->id_text;
    session.template_id = "pomodoro";
    put_raw(TW_KF_HEALTH_LOG, w, &log.base);
    put_raw(TW_KF_FOCUS_TEMPLATE, w, &tmpl.base);
    put_raw(TW_KF_FOCUS_SESSION, w, &session.base);
}

/* The records of w after migration 4: each wraps the old message whole. */
static void assert_wellness_records(const struct old_wellness *w)
{
    ProtobufCMessage *m;
    ck_assert_int_eq(tw_owned_get(fx.store, NULL, TW_KF_HEALTH_LOG, &w->user, &w->id, fx.arena, &m),
                     TW_OK);
    const Tw__Store__V1__HealthLogRecord *log = (const void *)m;
    ck_assert_ptr_nonnull(log->log);
    ck_assert_str_eq(log->log->id, w->id_text);
    ck_assert_str_eq(log->log->note, "after the run");
    ck_assert_int_eq(
        tw_owned_get(fx.store, NULL, TW_KF_FOCUS_TEMPLATE, &w->user, &w->id, fx.arena, &m), TW_OK);
    const Tw__Store__V1__FocusTemplateRecord *tmpl = (const void *)m;
    ck_assert_ptr_nonnull(tmpl->template_);
    ck_assert_str_eq(tmpl->template_->display_name, "Deep work");
    ck_assert_int_eq(
        tw_owned_get(fx.store, NULL, TW_KF_FOCUS_SESSION, &w->user, &w->id, fx.arena, &m), TW_OK);
    const Tw__Store__V1__FocusSessionRecord *session = (const void *)m;
    ck_assert_ptr_nonnull(session->session);
    ck_assert_str_eq(session->session->id, w->id_text);
    ck_assert_str_eq(session->session->template_id, "pomodoro");
}

START_TEST(wellness_api_messages_become_records)
{
    struct old_wellness w = {.user = tw_id_new(), .id = tw_id_new()};
    tw_id_format(&w.id, w.id_text);
    old_wellness_put(&w);
    const tw_migration_set *set = &tw_store_migrations;
    size_t applied;
    ck_assert_int_eq(tw_store_migrate_up(fx.store, set, &applied), TW_OK);
    assert_wellness_records(&w);
    /* Down unwraps them to the old form, which up wraps again. */
    for (size_t i = set->count; i > 0; i--) {
        uint32_t number;
        ck_assert_int_eq(tw_store_migrate_down(fx.store, set, &number), TW_OK);
    }
    ck_assert_int_eq(tw_owned_get(fx.store, NULL, TW_KF_HEALTH_LOG, &w.user, &w.id, fx.arena,
                                  &(ProtobufCMessage *){NULL}),
                     TW_ERR_DB_CORRUPT); /* an API message is no record */
    ck_assert_int_eq(tw_store_migrate_up(fx.store, set, &applied), TW_OK);
    assert_wellness_records(&w);
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("migrations");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, fx_setup, fx_teardown);
    tcase_add_test(tc, every_migration_goes_up_and_down);
    tcase_add_test(tc, unique_by_owner_lists_old_claims_under_their_owners);
    tcase_add_test(tc, email_claims_become_case_insensitive_and_collisions_are_kept_and_reported);
    tcase_add_test(tc, wellness_api_messages_become_records);
    tcase_add_test(tc, voice_request_index_is_retired_and_rebuilt_by_down);
    suite_add_tcase(s, tc);
    return s;
}

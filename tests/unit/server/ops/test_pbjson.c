/* Unit tests for server/ops/pbjson.c: what tw_pbjson prints,
 * tw_pbjson_parse reads back to the same message; the proto3 JSON forms
 * other printers use are read too; every bad value is one line naming
 * its field's path. */
#include "ops/pbjson.h"

#include "tw_check.h"
#include "tw/v1/billing_service.pb-c.h"

#include <string.h>

static tw_arena *arena;
static char errbuf[256];

static void setup(void)
{
    arena = tw_arena_new(0);
    errbuf[0] = '\0';
}

static void teardown(void)
{
    tw_arena_free(arena);
}

/* Parses text into a fresh message of descriptor d; NULL (errbuf says
 * why) when it does not parse. */
static ProtobufCMessage *parse(const ProtobufCMessageDescriptor *d, const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    ck_assert_msg(j != NULL, "test JSON: %s", e.text);
    ProtobufCMessage *m = tw_arena_alloc(arena, d->sizeof_message);
    d->message_init(m);
    bool ok = tw_pbjson_parse(j, m, arena, errbuf, sizeof errbuf);
    json_decref(j);
    return ok ? m : NULL;
}

static void assert_same(const ProtobufCMessage *a, const ProtobufCMessage *b)
{
    size_t la = protobuf_c_message_get_packed_size(a), lb = protobuf_c_message_get_packed_size(b);
    ck_assert_uint_eq(la, lb);
    uint8_t *pa = tw_arena_alloc(arena, la + 1), *pb = tw_arena_alloc(arena, lb + 1);
    protobuf_c_message_pack(a, pa);
    protobuf_c_message_pack(b, pb);
    ck_assert_mem_eq(pa, pb, la);
}

START_TEST(what_is_printed_parses_back_to_the_same_message)
{
    Tw__V1__PlanPrice usd = TW__V1__PLAN_PRICE__INIT, eur = TW__V1__PLAN_PRICE__INIT;
    usd.currency = "USD";
    usd.amount_minor = 999;
    eur.currency = "EUR";
    eur.amount_minor = 5000000000LL; /* past 32 bits */
    eur.audience = TW__V1__PRICE_AUDIENCE__PRICE_AUDIENCE_STUDENT;
    Tw__V1__PlanPrice *prices[] = {&usd, &eur};
    Tw__V1__UsageLimit limit = TW__V1__USAGE_LIMIT__INIT;
    limit.resource = TW__V1__USAGE_RESOURCE__USAGE_RESOURCE_AI_REQUESTS;
    limit.limit = 50;
    Tw__V1__UsageLimit *limits[] = {&limit};
    char *features[] = {"Voice notes", "AI \"plans\" \xc3\xa9"};
    Google__Protobuf__Timestamp when = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    when.seconds = 1736933400;
    when.nanos = 500000000;
    Tw__V1__Plan plan = TW__V1__PLAN__INIT;
    plan.id = "premium";
    plan.name = "Premium";
    plan.interval = TW__V1__BILLING_INTERVAL__BILLING_INTERVAL_YEAR;
    plan.n_prices = 2;
    plan.prices = prices;
    plan.n_features = 2;
    plan.features = features;
    plan.n_limits = 1;
    plan.limits = limits;
    plan.active = true;
    plan.create_time = &when;
    char *paths[] = {"active", "features"};
    Google__Protobuf__FieldMask mask = GOOGLE__PROTOBUF__FIELD_MASK__INIT;
    mask.n_paths = 2;
    mask.paths = paths;
    Tw__V1__UpdatePlanRequest in = TW__V1__UPDATE_PLAN_REQUEST__INIT;
    in.plan = &plan;
    in.update_mask = &mask;

    for (int defaults = 0; defaults < 2; defaults++) {
        json_t *j = tw_pbjson(&in.base, NULL, defaults);
        char *text = json_dumps(j, 0);
        ProtobufCMessage *out = parse(&tw__v1__update_plan_request__descriptor, text);
        ck_assert_msg(out != NULL, "%s: %s", text, errbuf);
        assert_same(&in.base, out);
        free(text);
        json_decref(j);
    }
}
END_TEST

START_TEST(other_printers_forms_are_read)
{
    /* lowerCamelCase names, enums by number or short name, a Timestamp
     * with an offset, a FieldMask string, null for a default. */
    Tw__V1__UpdatePlanRequest *r = (void *)parse(
        &tw__v1__update_plan_request__descriptor,
        "{\"plan\": {\"id\": \"p\", \"interval\": 2, \"prices\": [{\"amountMinor\": 7, "
        "\"audience\": \"student\"}], \"createTime\": \"2025-01-15T10:30:00.25+01:00\", "
        "\"description\": null}, \"updateMask\": \"name,stripeProductId\"}");
    ck_assert_msg(r != NULL, "%s", errbuf);
    ck_assert_int_eq(r->plan->interval, TW__V1__BILLING_INTERVAL__BILLING_INTERVAL_YEAR);
    ck_assert_int_eq(r->plan->prices[0]->amount_minor, 7);
    ck_assert_int_eq(r->plan->prices[0]->audience, TW__V1__PRICE_AUDIENCE__PRICE_AUDIENCE_STUDENT);
    ck_assert_int_eq(r->plan->create_time->seconds, 1736933400);
    ck_assert_int_eq(r->plan->create_time->nanos, 250000000);
    ck_assert_uint_eq(r->update_mask->n_paths, 2);
    ck_assert_str_eq(r->update_mask->paths[1], "stripe_product_id");

    /* bytes as padded base64, and a oneof member sets the case. */
    Tw__V1__SubmitStudentVerificationRequest *s =
        (void *)parse(&tw__v1__submit_student_verification_request__descriptor,
                      "{\"document\": {\"fileName\": \"id.pdf\", \"content\": \"aGVsbG8=\"}}");
    ck_assert_msg(s != NULL, "%s", errbuf);
    ck_assert_int_eq(s->proof_case, TW__V1__SUBMIT_STUDENT_VERIFICATION_REQUEST__PROOF_DOCUMENT);
    ck_assert_uint_eq(s->document->content.len, 5);
    ck_assert_mem_eq(s->document->content.data, "hello", 5);
}
END_TEST

START_TEST(every_bad_value_names_its_path)
{
    static const struct {
        const char *json, *error;
    } cases[] = {
        {"{\"plan\": {\"nope\": 1}}", "plan.nope: tw.v1.Plan has no such field"},
        {"{\"plan\": {\"active\": \"yes\"}}", "plan.active: \"yes\" is not true or false"},
        {"{\"plan\": {\"prices\": [{}, {\"amount_minor\": \"9x\"}]}}",
         "plan.prices[1].amount_minor: \"9x\" is not an int64"},
        {"{\"plan\": {\"interval\": \"weekly\"}}",
         "plan.interval: \"weekly\" is not a tw.v1.BillingInterval"},
        {"{\"plan\": {\"limits\": [{\"resource\": 1, \"limit\": 1.5}]}}",
         "plan.limits[0].limit: 1.5 is not an int64"},
        {"{\"plan\": {\"create_time\": \"2025-01-15 10:30\"}}",
         "plan.create_time: \"2025-01-15 10:30\" is not an RFC 3339 time"},
        {"{\"plan\": {\"features\": \"one\"}}", "plan.features: \"one\" is not a list"},
        {"{\"plan\": [1]}", "plan: [1] is not an object"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ck_assert_ptr_null(parse(&tw__v1__update_plan_request__descriptor, cases[i].json));
        ck_assert_msg(strncmp(errbuf, cases[i].error, strlen(cases[i].error)) == 0,
                      "%s: got \"%s\"", cases[i].json, errbuf);
    }
    ck_assert_ptr_null(
        parse(&tw__v1__list_all_plans_request__descriptor, "{\"page_size\": 3000000000}"));
    ck_assert_str_eq(errbuf, "page_size: 3000000000 is not an int32");
    ck_assert_ptr_null(parse(&tw__v1__submit_student_verification_request__descriptor,
                             "{\"academic_email\": \"a@mit.edu\", \"document\": {}}"));
    ck_assert_str_eq(errbuf, "document: is a second member of its oneof");
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("pbjson");
    TCase *tc = tcase_create("parse");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, what_is_printed_parses_back_to_the_same_message);
    tcase_add_test(tc, other_printers_forms_are_read);
    tcase_add_test(tc, every_bad_value_names_its_path);
    suite_add_tcase(s, tc);
    return s;
}

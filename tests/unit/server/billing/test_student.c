/*
 * Unit tests for server/billing/student.c: the academic email code (sent
 * once per request, checked, a wrong code counted even though refused,
 * five wrong codes lock it, a code past 30 minutes), addresses that are
 * not academic, a document stored for review then approved or rejected,
 * the review queue, expiry after a year (the job, and reads before it),
 * renewal in the last 30 days, and the entitlement's student flag.
 */
#include "billing_fixture.h"

#include "tw_check.h"

#include <stdio.h>
#include <string.h>

#define DAY INT64_C(86400000)

static tw_billing_ctx c;

static tw_err submit_email(const tw_id *user, const char *email, const char *request_id,
                           Tw__V1__StudentVerification **out)
{
    c = bx_ctx(bx.billing, user);
    Tw__V1__SubmitStudentVerificationRequest r = TW__V1__SUBMIT_STUDENT_VERIFICATION_REQUEST__INIT;
    r.proof_case = TW__V1__SUBMIT_STUDENT_VERIFICATION_REQUEST__PROOF_ACADEMIC_EMAIL;
    r.academic_email = (char *)email;
    r.request_id = (char *)request_id;
    return tw_billing_submit_student(&c, &r, out);
}

static tw_err submit_document(const tw_id *user, const char *type, const void *bytes, size_t n,
                              Tw__V1__StudentVerification **out)
{
    c = bx_ctx(bx.billing, user);
    Tw__V1__StudentDocument d = TW__V1__STUDENT_DOCUMENT__INIT;
    d.file_name = "card.pdf";
    d.content_type = (char *)type;
    d.content = (ProtobufCBinaryData){n, (uint8_t *)bytes};
    Tw__V1__SubmitStudentVerificationRequest r = TW__V1__SUBMIT_STUDENT_VERIFICATION_REQUEST__INIT;
    r.proof_case = TW__V1__SUBMIT_STUDENT_VERIFICATION_REQUEST__PROOF_DOCUMENT;
    r.document = &d;
    r.request_id = "";
    return tw_billing_submit_student(&c, &r, out);
}

static tw_err confirm(const tw_id *user, const char *code, Tw__V1__StudentVerification **out)
{
    c = bx_ctx(bx.billing, user);
    return tw_billing_confirm_student_email(&c, code, out);
}

static bool student(const tw_id *user)
{
    tw_billing_entitlement e;
    ck_assert_int_eq(tw_billing_entitlement_get(bx.billing, user, bx_now(), fx.arena, &e), TW_OK);
    return e.student;
}

/* A code that is not the one sent. */
static const char *wrong(void)
{
    return strcmp(bx.code, "000000") == 0 ? "000001" : "000000";
}

#define ST(x) TW__V1__STUDENT_VERIFICATION_STATUS__STUDENT_VERIFICATION_STATUS_##x

START_TEST(the_code_flow)
{
    Tw__V1__StudentVerification *v;
    ck_assert_int_eq(submit_email(&fx_alice, "Ada@Cam.AC.uk", "sv-1", &v), TW_OK);
    ck_assert_int_eq(v->status, ST(PENDING_CODE));
    ck_assert_str_eq(v->academic_email, "ada@cam.ac.uk");
    ck_assert_int_eq(v->code_tries_left, 5);
    ck_assert_int_eq(bx.codes_sent, 1);
    ck_assert_str_eq(bx.code_email, "ada@cam.ac.uk");
    ck_assert_uint_eq(strlen(bx.code), 6);
    /* A retry sends no second code. */
    Tw__V1__StudentVerification *again;
    ck_assert_int_eq(submit_email(&fx_alice, "Ada@Cam.AC.uk", "sv-1", &again), TW_OK);
    ck_assert_str_eq(again->id, v->id);
    ck_assert_int_eq(bx.codes_sent, 1);
    ck_assert(!student(&fx_alice));
    /* A wrong code is counted, and says how many tries are left. */
    ck_assert_int_eq(confirm(&fx_alice, wrong(), &v), TW_ERR_STUDENT_WRONG_CODE);
    ck_assert_ptr_nonnull(strstr(c.why.message, "4 tries left"));
    ck_assert_int_eq(confirm(&fx_alice, "12345", &v), TW_ERR_VALIDATION);
    ck_assert_str_eq(bx_bad(&c), "code");
    c = bx_ctx(bx.billing, &fx_alice);
    ck_assert_int_eq(tw_billing_get_student(&c, &v), TW_OK);
    ck_assert_int_eq(v->code_tries_left, 4);
    /* The right one approves it for a year. */
    ck_assert_int_eq(confirm(&fx_alice, bx.code, &v), TW_OK);
    ck_assert_int_eq(v->status, ST(APPROVED));
    ck_assert_int_eq(v->expire_time->seconds * 1000, bx_now() / 1000 * 1000 + 365 * DAY);
    ck_assert(student(&fx_alice));
    ck_assert_int_eq(confirm(&fx_alice, bx.code, &v), TW_OK); /* a retry */
    ck_assert_int_eq(bx_today("billing_student", "event=submitted"), 1);
    ck_assert_int_eq(bx_today("billing_student", "event=approved"), 1);
    /* Approved: no new submission until its last 30 days. */
    ck_assert_int_eq(submit_email(&fx_alice, "ada@cam.ac.uk", "sv-2", &v),
                     TW_ERR_FAILED_PRECONDITION);
}
END_TEST

START_TEST(five_wrong_codes_lock_it)
{
    Tw__V1__StudentVerification *v;
    ck_assert_int_eq(submit_email(&fx_alice, "ada@mit.edu", "", &v), TW_OK);
    char code[8];
    snprintf(code, sizeof code, "%s", bx.code);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(confirm(&fx_alice, wrong(), &v), TW_ERR_STUDENT_WRONG_CODE);
    ck_assert_int_eq(confirm(&fx_alice, wrong(), &v), TW_ERR_STUDENT_LOCKED);
    /* Even the right code now. */
    ck_assert_int_eq(confirm(&fx_alice, code, &v), TW_ERR_STUDENT_LOCKED);
    c = bx_ctx(bx.billing, &fx_alice);
    ck_assert_int_eq(tw_billing_get_student(&c, &v), TW_OK);
    ck_assert_int_eq(v->status, ST(LOCKED));
    ck_assert(!student(&fx_alice));
    ck_assert_int_eq(bx_today("billing_student", "event=locked"), 1);
    /* A new submission starts again. */
    ck_assert_int_eq(submit_email(&fx_alice, "ada@mit.edu", "", &v), TW_OK);
    ck_assert_int_eq(confirm(&fx_alice, bx.code, &v), TW_OK);
}
END_TEST

START_TEST(a_code_lasts_30_minutes)
{
    Tw__V1__StudentVerification *v;
    ck_assert_int_eq(submit_email(&fx_alice, "ada@uni.edu.au", "", &v), TW_OK);
    bx_advance(30 * 60 * 1000);
    ck_assert_int_eq(confirm(&fx_alice, bx.code, &v), TW_ERR_STUDENT_CODE_EXPIRED);
    ck_assert_int_eq(confirm(&fx_bob, bx.code, &v), TW_ERR_FAILED_PRECONDITION);
}
END_TEST

START_TEST(addresses_that_are_not_academic_are_refused)
{
    const char *bad[] = {
        "ada@gmail.com", "ada@example.co.uk", "ada",          "@mit.edu",  "ada@@mit.edu",
        "ada@mit..edu",  "ada @mit.edu",      "ada@mit.edu.", "ada@ac.uk", ""};
    Tw__V1__StudentVerification *v;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ck_assert_msg(submit_email(&fx_alice, bad[i], "", &v) == TW_ERR_VALIDATION, "%s", bad[i]);
        ck_assert_str_eq(bx_bad(&c), "academic_email");
    }
    ck_assert_int_eq(bx.codes_sent, 0);
    c = bx_ctx(bx.billing, &fx_alice);
    ck_assert_int_eq(tw_billing_get_student(&c, &v), TW_ERR_NOT_FOUND);
    Tw__V1__SubmitStudentVerificationRequest r = TW__V1__SUBMIT_STUDENT_VERIFICATION_REQUEST__INIT;
    r.request_id = "";
    ck_assert_int_eq(tw_billing_submit_student(&c, &r, &v), TW_ERR_VALIDATION);
    ck_assert_str_eq(bx_bad(&c), "proof");
}
END_TEST

static const char pdf[] = "%PDF-1.4\n% a student card\n";

START_TEST(a_document_is_reviewed)
{
    Tw__V1__StudentVerification *v;
    ck_assert_int_eq(submit_document(&fx_alice, "application/pdf", pdf, sizeof pdf, &v), TW_OK);
    ck_assert_int_eq(v->status, ST(PENDING_REVIEW));
    ck_assert_str_eq(v->document_file_name, "card.pdf");
    ck_assert_int_eq(submit_document(&fx_bob, "application/pdf", pdf, sizeof pdf, &v), TW_OK);
    /* The queue, oldest first, with whose each is. */
    c = bx_ctx(bx.billing, &fx_alice);
    Tw__V1__ListStudentVerificationsResponse *q;
    ck_assert_int_eq(tw_billing_list_students(&c, 0, bx_page(0), &q), TW_OK);
    ck_assert_uint_eq(q->n_verifications, 2);
    char alice[TW_ID_TEXT_SIZE];
    tw_id_format(&fx_alice, alice);
    ck_assert_str_eq(q->verifications[0]->user_id, alice);
    /* The stored document, for the reviewer. */
    const char *key, *type;
    ck_assert_int_eq(tw_billing_student_document(&c, &key, &type), TW_OK);
    ck_assert_str_eq(type, "application/pdf");
    tw_blob_info info;
    ck_assert_int_eq(tw_blob_stat(fxb.blobs, key, &info), TW_OK);
    ck_assert_uint_eq(info.size, sizeof pdf);
    /* Approve alice, reject bob. */
    ck_assert_int_eq(tw_billing_approve_student(&c, &v), TW_OK);
    ck_assert_int_eq(v->status, ST(APPROVED));
    ck_assert(student(&fx_alice));
    ck_assert_int_eq(tw_billing_approve_student(&c, &v), TW_ERR_FAILED_PRECONDITION);
    c = bx_ctx(bx.billing, &fx_bob);
    ck_assert_int_eq(tw_billing_reject_student(&c, "", &v), TW_ERR_VALIDATION);
    ck_assert_int_eq(tw_billing_reject_student(&c, "the card has expired", &v), TW_OK);
    ck_assert_int_eq(v->status, ST(REJECTED));
    ck_assert_str_eq(v->reject_reason, "the card has expired");
    ck_assert(!student(&fx_bob));
    ck_assert_int_eq(tw_billing_list_students(&c, 0, bx_page(0), &q), TW_OK);
    ck_assert_uint_eq(q->n_verifications, 0);
    ck_assert_int_eq(tw_billing_list_students(&c, ST(REJECTED), bx_page(0), &q), TW_OK);
    ck_assert_uint_eq(q->n_verifications, 1);
    /* A new submission replaces the old document. */
    ck_assert_int_eq(tw_billing_student_document(&c, &key, &type), TW_OK);
    char old_key[256];
    snprintf(old_key, sizeof old_key, "%s", key);
    ck_assert_int_eq(submit_document(&fx_bob, "application/pdf", pdf, sizeof pdf, &v), TW_OK);
    ck_assert_int_eq(tw_blob_stat(fxb.blobs, old_key, &info), TW_ERR_NOT_FOUND);
    /* Nobody to decide on. */
    tw_id nobody = {{0x07}};
    c = bx_ctx(bx.billing, &nobody);
    ck_assert_int_eq(tw_billing_approve_student(&c, &v), TW_ERR_NOT_FOUND);
    ck_assert_int_eq(tw_billing_student_document(&c, &key, &type), TW_ERR_NOT_FOUND);
}
END_TEST

START_TEST(documents_must_be_what_they_say)
{
    Tw__V1__StudentVerification *v;
    ck_assert_int_eq(submit_document(&fx_alice, "image/png", pdf, sizeof pdf, &v),
                     TW_ERR_VALIDATION);
    ck_assert_str_eq(bx_bad(&c), "document.content");
    ck_assert_int_eq(submit_document(&fx_alice, "text/plain", pdf, sizeof pdf, &v),
                     TW_ERR_VALIDATION);
    ck_assert_str_eq(bx_bad(&c), "document.content_type");
    ck_assert_int_eq(submit_document(&fx_alice, "application/pdf", pdf, 0, &v), TW_ERR_VALIDATION);
    static char big[3 * 1024 * 1024 + 1] = "%PDF-";
    ck_assert_int_eq(submit_document(&fx_alice, "application/pdf", big, sizeof big, &v),
                     TW_ERR_VALIDATION);
    const unsigned char jpeg[] = {0xff, 0xd8, 0xff, 0xe0, 0, 0x10};
    ck_assert_int_eq(submit_document(&fx_alice, "image/jpeg", jpeg, sizeof jpeg, &v), TW_OK);
}
END_TEST

START_TEST(an_approval_expires_after_a_year_and_can_be_renewed)
{
    Tw__V1__StudentVerification *v;
    ck_assert_int_eq(submit_email(&fx_alice, "ada@mit.edu", "", &v), TW_OK);
    ck_assert_int_eq(confirm(&fx_alice, bx.code, &v), TW_OK);
    /* In its last 30 days: renewed, the old approval holding meanwhile. */
    bx_advance(340 * DAY);
    ck_assert_int_eq(submit_email(&fx_alice, "ada@mit.edu", "", &v), TW_OK);
    ck_assert(student(&fx_alice));
    bx_advance(26 * DAY);
    ck_assert(!student(&fx_alice));               /* the old one ran out, the new one waits */
    ck_assert_int_eq(bx_run_jobs(bx.billing), 1); /* the old approval's job: replaced */
    ck_assert_int_eq(bx_today("billing_student", "event=expired"), 0);
    ck_assert_int_eq(submit_email(&fx_alice, "ada@mit.edu", "", &v), TW_OK);
    ck_assert_int_eq(confirm(&fx_alice, bx.code, &v), TW_OK);
    ck_assert(student(&fx_alice));
    /* A year on: expired before the job runs, and after it. */
    bx_advance(365 * DAY);
    c = bx_ctx(bx.billing, &fx_alice);
    ck_assert_int_eq(tw_billing_get_student(&c, &v), TW_OK);
    ck_assert_int_eq(v->status, ST(EXPIRED));
    ck_assert(!student(&fx_alice));
    ck_assert_int_eq(bx_run_jobs(bx.billing), 1);
    ck_assert_int_eq(bx_today("billing_student", "event=expired"), 1);
    Tw__V1__ListStudentVerificationsResponse *q;
    ck_assert_int_eq(tw_billing_list_students(&c, ST(EXPIRED), bx_page(0), &q), TW_OK);
    ck_assert_uint_eq(q->n_verifications, 1);
    /* And re-verified. */
    ck_assert_int_eq(submit_email(&fx_alice, "ada@mit.edu", "", &v), TW_OK);
    ck_assert_int_eq(confirm(&fx_alice, bx.code, &v), TW_OK);
    ck_assert(student(&fx_alice));
}
END_TEST

START_TEST(without_a_sender_the_code_is_logged)
{
    /* The embedded default has no notification path configured here. */
    tw_billing_config cfg = {.store = fx.store};
    tw_billing *b;
    ck_assert_int_eq(tw_billing_new(&cfg, &b), TW_OK);
    c = bx_ctx(b, &fx_alice);
    Tw__V1__SubmitStudentVerificationRequest r = TW__V1__SUBMIT_STUDENT_VERIFICATION_REQUEST__INIT;
    r.proof_case = TW__V1__SUBMIT_STUDENT_VERIFICATION_REQUEST__PROOF_ACADEMIC_EMAIL;
    r.academic_email = "ada@mit.edu";
    r.request_id = "";
    Tw__V1__StudentVerification *v;
    ck_assert_int_eq(tw_billing_submit_student(&c, &r, &v), TW_OK);
    ck_assert_int_eq(bx.codes_sent, 0);
    /* No blob store: documents cannot be taken. */
    Tw__V1__StudentDocument d = TW__V1__STUDENT_DOCUMENT__INIT;
    d.file_name = "a.pdf";
    d.content_type = "application/pdf";
    d.content = (ProtobufCBinaryData){sizeof pdf, (uint8_t *)pdf};
    r.proof_case = TW__V1__SUBMIT_STUDENT_VERIFICATION_REQUEST__PROOF_DOCUMENT;
    r.document = &d;
    ck_assert_int_eq(tw_billing_submit_student(&c, &r, &v), TW_ERR_FAILED_PRECONDITION);
    tw_billing_free(b);
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("billing_student");
    TCase *tc = tcase_create("student");
    tcase_add_checked_fixture(tc, bx_setup, bx_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, the_code_flow);
    tcase_add_test(tc, five_wrong_codes_lock_it);
    tcase_add_test(tc, a_code_lasts_30_minutes);
    tcase_add_test(tc, addresses_that_are_not_academic_are_refused);
    tcase_add_test(tc, a_document_is_reviewed);
    tcase_add_test(tc, documents_must_be_what_they_say);
    tcase_add_test(tc, an_approval_expires_after_a_year_and_can_be_renewed);
    tcase_add_test(tc, without_a_sender_the_code_is_logged);
    suite_add_tcase(s, tc);
    return s;
}

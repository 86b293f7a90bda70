/*
 * Student verification: a user's latest verification is
 * BILLING_STUDENT(user); the review queue and the admin lists are
 * BILLING_STUDENT_BY_STATUS(status, submitted, user), moved with every
 * change of status.
 *
 * By academic email: a 6-digit code goes to the address (through the
 * notification path, or the log in the embedded default); only its
 * SHA-256 (with the verification's id) is kept; 5 wrong codes lock the
 * verification and a code is good for 30 minutes. Each try is written
 * before it is answered, so a wrong code is counted even though the call
 * fails. By document: the file is stored as the blob
 * "student/<user>/<verification>" for an administrator to review.
 *
 * An approval lasts a year; a job due then marks it expired (and reads
 * already treat it as expired). It can be renewed in its last 30 days, the
 * old approval holding while the new one waits. Every change rewrites the
 * user's entitlement (student prices unlocked or not) and counts
 * billing_student, dims "event=<submitted|approved|rejected|locked|expired>".
 */
#include "billing_internal.h"
#include "wellness/wellness.h"

#include "tw_log.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CODE_TRIES      5
#define CODE_TTL_MS     (30 * MS_PER_MIN)
#define APPROVAL_MS     (365 * MS_PER_DAY)
#define RENEW_WINDOW_MS (30 * MS_PER_DAY)
#define DOC_MAX_BYTES   (3 * 1024 * 1024)
#define EMAIL_MAX       254
#define FILE_NAME_MAX   255
#define REASON_MAX      500

#define ST_PENDING_CODE                                                                            \
    TW__V1__STUDENT_VERIFICATION_STATUS__STUDENT_VERIFICATION_STATUS_PENDING_CODE
#define ST_PENDING_REVIEW                                                                          \
    TW__V1__STUDENT_VERIFICATION_STATUS__STUDENT_VERIFICATION_STATUS_PENDING_REVIEW
#define ST_APPROVED TW__V1__STUDENT_VERIFICATION_STATUS__STUDENT_VERIFICATION_STATUS_APPROVED
#define ST_REJECTED TW__V1__STUDENT_VERIFICATION_STATUS__STUDENT_VERIFICATION_STATUS_REJECTED
#define ST_EXPIRED  TW__V1__STUDENT_VERIFICATION_STATUS__STUDENT_VERIFICATION_STATUS_EXPIRED
#define ST_LOCKED   TW__V1__STUDENT_VERIFICATION_STATUS__STUDENT_VERIFICATION_STATUS_LOCKED
#define BY_EMAIL    TW__V1__STUDENT_VERIFICATION_METHOD__STUDENT_VERIFICATION_METHOD_ACADEMIC_EMAIL
#define BY_DOCUMENT TW__V1__STUDENT_VERIFICATION_METHOD__STUDENT_VERIFICATION_METHOD_DOCUMENT

/* The document types accepted, with the bytes each starts with. */
static const struct {
    const char *type;
    const char *magic;
    size_t len;
} documents[] = {
    {"image/jpeg", "\xff\xd8\xff", 3},
    {"image/png", "\x89PNG\r\n\x1a\n", 8},
    {"application/pdf", "%PDF-", 5},
};

static void index_key(tw_key *k, int status, int64_t submit_ms, const tw_id *user)
{
    tw_key_init(k, TW_KF_BILLING_STUDENT_BY_STATUS);
    tw_key_u32(k, (uint32_t)status);
    if (user != NULL) {
        tw_key_i64(k, submit_ms);
        tw_key_id(k, user);
    }
}

/* The status as of now: an approval past its end is expired. */
static int status_now(const student_record *r, int64_t now_ms)
{
    return r->status == ST_APPROVED && now_ms >= r->expire_unix_ms ? ST_EXPIRED : (int)r->status;
}

static Tw__V1__StudentVerification *present(tw_arena *arena, const student_record *r,
                                            const tw_id *user, int64_t now_ms)
{
    Tw__V1__StudentVerification *v = tw_arena_alloc(arena, sizeof *v);
    tw_id id;
    if (v == NULL || !billing_bytes_id(r->id, &id))
        return NULL;
    tw__v1__student_verification__init(v);
    v->id = billing_id_text(arena, &id);
    v->user_id = user ? billing_id_text(arena, user) : "";
    v->method = r->method;
    v->status = status_now(r, now_ms);
    v->academic_email = r->academic_email;
    v->document_file_name = r->document_file_name;
    v->document_content_type = r->document_content_type;
    v->code_tries_left = r->status == ST_PENDING_CODE ? r->code_tries_left : 0;
    v->reject_reason = r->reject_reason;
    v->submit_time = tw_timestamp_new(arena, r->submit_unix_ms);
    if (r->decide_unix_ms > 0)
        v->decide_time = tw_timestamp_new(arena, r->decide_unix_ms);
    if (r->expire_unix_ms > 0)
        v->expire_time = tw_timestamp_new(arena, r->expire_unix_ms);
    return v->id && v->user_id && v->submit_time ? v : NULL;
}

static tw_err answer(tw_billing_ctx *c, const student_record *r, bool with_user,
                     Tw__V1__StudentVerification **out)
{
    *out = present(c->arena, r, with_user ? &c->user : NULL, c->now_ms);
    return *out ? TW_OK : TW_ERR_NO_MEMORY;
}

static tw_err load(tw_store *s, tw_txn *t, const tw_id *user, tw_arena *arena, student_record **out)
{
    tw_key k;
    billing_student_key(&k, user);
    return billing_get(s, t, true, &k, arena, out);
}

tw_err billing_student_until(tw_txn *t, const tw_id *user, int64_t now_ms, tw_arena *arena,
                             int64_t *until_ms)
{
    student_record *r;
    tw_err err = load(NULL, t, user, arena, &r);
    *until_ms = 0;
    if (err == TW_ERR_NOT_FOUND)
        return TW_OK;
    if (err)
        return err;
    *until_ms = r->status == ST_APPROVED ? r->expire_unix_ms : r->previous_expire_unix_ms;
    return TW_OK;
}

/*
 * Writes r (in place of old, NULL when none), moving its index key, then
 * the entitlement; counts event when not NULL.
 */
static tw_err save(tw_billing_ctx *c, tw_txn *t, const student_record *old, student_record *r,
                   const char *event)
{
    tw_key k;
    tw_err err = TW_OK;
    if (old != NULL) {
        index_key(&k, old->status, old->submit_unix_ms, &c->user);
        err = tw_txn_delete(t, &k);
    }
    index_key(&k, r->status, r->submit_unix_ms, &c->user);
    if (!err)
        err = tw_txn_put(t, &k, NULL);
    billing_student_key(&k, &c->user);
    if (!err)
        err = billing_put(t, &k, r);
    char dims[32];
    snprintf(dims, sizeof dims, "event=%s", event ? event : "");
    if (!err && event != NULL)
        err = billing_count(t, "billing_student", dims, c->now_ms, 1);
    return err ? err : billing_entitlement_refresh(t, &c->user, c->now_ms, c->arena);
}

/* ---- Submitting ------------------------------------------------------------------------ */

/* An address at an academic domain: "...edu", "....ac.<cc>", "....edu.<cc>". */
static bool academic(const char *domain)
{
    const char *labels[8];
    size_t n = 0;
    for (const char *p = domain; n < 8; n++) {
        labels[n] = p;
        const char *dot = strchr(p, '.');
        if (dot == NULL) {
            n++;
            break;
        }
        p = dot + 1;
    }
    if (n < 2)
        return false;
    if (strcmp(labels[n - 1], "edu") == 0)
        return true;
    size_t last = strlen(labels[n - 1]);
    return n >= 3 && last == 2 &&
           (strncmp(labels[n - 2], "ac.", 3) == 0 || strncmp(labels[n - 2], "edu.", 4) == 0);
}

static tw_err check_email(tw_billing_ctx *c, const char *email, char **lower)
{
    const char *field = "academic_email";
    size_t n = strlen(email);
    const char *at = strchr(email, '@');
    if (n == 0)
        return billing_bad(c, field, "is required");
    if (n > EMAIL_MAX || at == NULL || at == email || strchr(at + 1, '@') != NULL)
        return billing_bad(c, field, "is not an email address");
    const char *d = at + 1;
    if (d[0] == '\0' || d[0] == '.' || d[strlen(d) - 1] == '.' || strstr(d, "..") != NULL)
        return billing_bad(c, field, "is not an email address");
    for (const char *p = email; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
            return billing_bad(c, field, "is not an email address");
    for (const char *p = d; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.')
            return billing_bad(c, field, "is not an email address");
    if ((*lower = tw_arena_strdup(c->arena, email)) == NULL)
        return TW_ERR_NO_MEMORY;
    for (char *p = *lower; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    if (!academic(strchr(*lower, '@') + 1))
        return billing_bad(c, field,
                           "is not at an academic domain (.edu, .ac.<country>, "
                           ".edu.<country>): send a document instead");
    return TW_OK;
}

static tw_err check_document(tw_billing_ctx *c, const Tw__V1__StudentDocument *d)
{
    size_t name = strlen(d->file_name);
    if (name == 0 || name > FILE_NAME_MAX)
        return billing_bad(c, "document.file_name", "must be 1 to %d characters", FILE_NAME_MAX);
    if (d->content.len == 0 || d->content.len > DOC_MAX_BYTES)
        return billing_bad(c, "document.content", "must be 1 byte to 3 MiB");
    for (size_t i = 0; i < sizeof documents / sizeof *documents; i++) {
        if (strcmp(d->content_type, documents[i].type) != 0)
            continue;
        if (d->content.len < documents[i].len ||
            memcmp(d->content.data, documents[i].magic, documents[i].len) != 0)
            return billing_bad(c, "document.content", "is not a %s file", documents[i].type);
        return TW_OK;
    }
    return billing_bad(c, "document.content_type",
                       "must be image/jpeg, image/png or application/pdf");
}

static void hash_code(const tw_id *id, const char *code, uint8_t out[SHA256_DIGEST_LENGTH])
{
    uint8_t text[TW_ID_BYTES + 8];
    size_t n = strlen(code) < 8 ? strlen(code) : 8;
    memcpy(text, id->bytes, TW_ID_BYTES);
    memcpy(text + TW_ID_BYTES, code, n);
    SHA256(text, TW_ID_BYTES + n, out);
    OPENSSL_cleanse(text, sizeof text);
}

struct submit {
    tw_billing_ctx *c;
    student_record *r;
    student_record *old; /* out: what it replaced */
};

static tw_err submit_fn(tw_txn *t, void *ctx)
{
    struct submit *w = ctx;
    tw_billing_ctx *c = w->c;
    tw_err err = load(NULL, t, &c->user, c->arena, &w->old);
    if (err == TW_ERR_NOT_FOUND)
        w->old = NULL;
    else if (err)
        return err;
    student_record *old = w->old;
    if (old != NULL && status_now(old, c->now_ms) == ST_APPROVED) {
        if (c->now_ms < old->expire_unix_ms - RENEW_WINDOW_MS)
            return billing_refuse(c, TW_ERR_FAILED_PRECONDITION,
                                  "approved until %lld: renew in its last 30 days",
                                  (long long)old->expire_unix_ms / MS_PER_S);
        w->r->previous_expire_unix_ms = old->expire_unix_ms;
    } else if (old != NULL && old->status != ST_APPROVED) {
        w->r->previous_expire_unix_ms = old->previous_expire_unix_ms;
    }
    return save(c, t, old, w->r, "submitted");
}

tw_err tw_billing_submit_student(tw_billing_ctx *c,
                                 const Tw__V1__SubmitStudentVerificationRequest *req,
                                 Tw__V1__StudentVerification **out)
{
    student_record *cur;
    tw_err err = load(c->billing->store, NULL, &c->user, c->arena, &cur);
    if (err == TW_OK && req->request_id[0] != '\0' && strcmp(cur->request_id, req->request_id) == 0)
        return answer(c, cur, false, out); /* a retry: no second code */
    if (err && err != TW_ERR_NOT_FOUND)
        return err;

    student_record *r = tw_arena_alloc(c->arena, sizeof *r);
    tw_id *id = tw_arena_alloc(c->arena, sizeof *id);
    uint8_t *hash = tw_arena_alloc(c->arena, SHA256_DIGEST_LENGTH);
    if (r == NULL || id == NULL || hash == NULL)
        return TW_ERR_NO_MEMORY;
    tw__store__v1__student_verification_record__init(r);
    *id = tw_id_new();
    r->id = billing_id_bytes(id);
    r->submit_unix_ms = c->now_ms;
    r->request_id = req->request_id;
    r->academic_email = r->document_file_name = r->document_content_type = "";
    r->document_blob_key = r->reject_reason = "";
    char code[8] = "";
    char *blob_key = NULL;
    switch (req->proof_case) {
    case TW__V1__SUBMIT_STUDENT_VERIFICATION_REQUEST__PROOF_ACADEMIC_EMAIL:
        if ((err = check_email(c, req->academic_email, &r->academic_email)))
            return err;
        snprintf(code, sizeof code, "%06u", arc4random_uniform(1000000));
        hash_code(id, code, hash);
        r->method = BY_EMAIL;
        r->status = ST_PENDING_CODE;
        r->code_hash = (ProtobufCBinaryData){SHA256_DIGEST_LENGTH, hash};
        r->code_tries_left = CODE_TRIES;
        r->code_expire_unix_ms = c->now_ms + CODE_TTL_MS;
        break;
    case TW__V1__SUBMIT_STUDENT_VERIFICATION_REQUEST__PROOF_DOCUMENT:
        if ((err = check_document(c, req->document)))
            return err;
        if (c->billing->blobs == NULL)
            return billing_refuse(c, TW_ERR_FAILED_PRECONDITION, "documents cannot be stored");
        char user[TW_ID_TEXT_SIZE], vid[TW_ID_TEXT_SIZE];
        tw_id_format(&c->user, user);
        tw_id_format(id, vid);
        blob_key = tw_arena_printf(c->arena, "student/%s/%s", user, vid);
        tw_blob_writer *bw;
        if (blob_key == NULL)
            return TW_ERR_NO_MEMORY;
        if ((err = tw_blob_writer_open(c->billing->blobs, blob_key, &bw)))
            return err;
        if ((err = tw_blob_writer_append(bw, req->document->content.data,
                                         req->document->content.len))) {
            tw_blob_writer_abort(bw);
            return err;
        }
        if ((err = tw_blob_writer_commit(bw)))
            return err;
        r->method = BY_DOCUMENT;
        r->status = ST_PENDING_REVIEW;
        r->document_file_name = req->document->file_name;
        r->document_content_type = req->document->content_type;
        r->document_blob_key = blob_key;
        break;
    default:
        return billing_bad(c, "proof", "is required: academic_email or document");
    }
    struct submit w = {c, r, NULL};
    err = tw_txn_run(c->billing->store, submit_fn, &w);
    if (err) {
        if (blob_key != NULL)
            tw_blob_delete(c->billing->blobs, blob_key);
        return err;
    }
    /* The replaced document is not needed any more. */
    if (w.old != NULL && w.old->document_blob_key[0] != '\0')
        tw_blob_delete(c->billing->blobs, w.old->document_blob_key);
    if (r->method == BY_EMAIL) {
        if (c->billing->send_code != NULL) {
            c->billing->send_code(c->billing->send_code_ctx, &c->user, r->academic_email, code);
        } else {
            char user[TW_ID_TEXT_SIZE];
            tw_id_format(&c->user, user);
            /* The embedded default has no way to send mail: the operator
             * reads the code here and passes it on. */
            tw_log(TW_LOG_INFO, "student verification code",
                   json_pack("{s:s, s:s, s:s}", "user_id", user, "email", r->academic_email, "code",
                             code));
        }
    }
    OPENSSL_cleanse(code, sizeof code);
    return answer(c, r, false, out);
}

/* ---- Deciding ------------------------------------------------------------------------------ */

/* Approves r (a copy of old, in place), due to expire in a year. */
static tw_err approve(tw_billing_ctx *c, tw_txn *t, const student_record *old, student_record *r)
{
    r->status = ST_APPROVED;
    r->decide_unix_ms = c->now_ms;
    r->expire_unix_ms = c->now_ms + APPROVAL_MS;
    r->code_hash = (ProtobufCBinaryData){0, NULL};
    r->previous_expire_unix_ms = 0;
    tw_id id;
    billing_bytes_id(r->id, &id);
    tw_err err = billing_enqueue(t, TW_BILLING_JOB_STUDENT_EXPIRY, &c->user,
                                 billing_id_text(c->arena, &id), r->expire_unix_ms, c->now_ms);
    return err ? err : save(c, t, old, r, "approved");
}

/* A copy of r in arena, to change while r stays what was read. */
static student_record *copy(tw_arena *arena, const student_record *r)
{
    student_record *out = tw_arena_alloc(arena, sizeof *out);
    if (out != NULL)
        *out = *r;
    return out;
}

enum code_outcome { CODE_RIGHT, CODE_WRONG, CODE_LOCKED, CODE_EXPIRED };

struct confirm {
    tw_billing_ctx *c;
    const char *code;
    enum code_outcome outcome;
    student_record *r;
};

/* Checks the code and records the try; a wrong code commits (the try
 * counts) and is answered after. */
static tw_err confirm_fn(tw_txn *t, void *ctx)
{
    struct confirm *w = ctx;
    tw_billing_ctx *c = w->c;
    student_record *old;
    tw_err err = load(NULL, t, &c->user, c->arena, &old);
    if (err == TW_ERR_NOT_FOUND || (err == TW_OK && old->method != BY_EMAIL))
        return billing_refuse(c, TW_ERR_FAILED_PRECONDITION,
                              "no code was sent: submit an academic email address first");
    if (err)
        return err;
    w->r = old;
    w->outcome = CODE_RIGHT;
    if (old->status == ST_APPROVED)
        return TW_OK; /* confirmed already: a retry */
    if (old->status == ST_LOCKED) {
        w->outcome = CODE_LOCKED;
        return TW_OK;
    }
    if (old->status != ST_PENDING_CODE)
        return billing_refuse(c, TW_ERR_FAILED_PRECONDITION, "no code is waiting: submit again");
    if (c->now_ms >= old->code_expire_unix_ms) {
        w->outcome = CODE_EXPIRED;
        return TW_OK;
    }
    student_record *r = w->r = copy(c->arena, old);
    if (r == NULL)
        return TW_ERR_NO_MEMORY;
    tw_id id;
    uint8_t hash[SHA256_DIGEST_LENGTH];
    billing_bytes_id(r->id, &id);
    hash_code(&id, w->code, hash);
    if (r->code_hash.len == sizeof hash && CRYPTO_memcmp(hash, r->code_hash.data, sizeof hash) == 0)
        return approve(c, t, old, r);
    r->code_tries_left--;
    w->outcome = CODE_WRONG;
    if (r->code_tries_left > 0)
        return save(c, t, old, r, NULL);
    w->outcome = CODE_LOCKED;
    r->status = ST_LOCKED;
    r->decide_unix_ms = c->now_ms;
    return save(c, t, old, r, "locked");
}

tw_err tw_billing_confirm_student_email(tw_billing_ctx *c, const char *code,
                                        Tw__V1__StudentVerification **out)
{
    bool digits = strlen(code) == 6;
    for (size_t i = 0; digits && i < 6; i++)
        digits = isdigit((unsigned char)code[i]);
    if (!digits)
        return billing_bad(c, "code", "must be the 6 digits sent");
    struct confirm w = {c, code, CODE_RIGHT, NULL};
    tw_err err = tw_txn_run(c->billing->store, confirm_fn, &w);
    if (err)
        return err;
    switch (w.outcome) {
    case CODE_WRONG:
        return billing_refuse(c, TW_ERR_STUDENT_WRONG_CODE, "the code is wrong: %d tries left",
                              w.r->code_tries_left);
    case CODE_LOCKED:
        return billing_refuse(c, TW_ERR_STUDENT_LOCKED, "%d wrong codes: submit a new verification",
                              CODE_TRIES);
    case CODE_EXPIRED:
        return billing_refuse(c, TW_ERR_STUDENT_CODE_EXPIRED,
                              "the code has expired: submit a new verification");
    case CODE_RIGHT:
        break;
    }
    return answer(c, w.r, false, out);
}

struct decide {
    tw_billing_ctx *c;
    bool approve;
    const char *reason;
    student_record *r;
};

static tw_err decide_fn(tw_txn *t, void *ctx)
{
    struct decide *w = ctx;
    tw_billing_ctx *c = w->c;
    student_record *old;
    tw_err err = load(NULL, t, &c->user, c->arena, &old);
    if (err == TW_ERR_NOT_FOUND)
        return billing_refuse(c, err, "the user has no student verification");
    if (err)
        return err;
    if (old->status != ST_PENDING_REVIEW)
        return billing_refuse(c, TW_ERR_FAILED_PRECONDITION,
                              "the verification does not wait for review");
    student_record *r = w->r = copy(c->arena, old);
    if (r == NULL)
        return TW_ERR_NO_MEMORY;
    if (w->approve)
        return approve(c, t, old, r);
    r->status = ST_REJECTED;
    r->decide_unix_ms = c->now_ms;
    r->reject_reason = (char *)w->reason;
    return save(c, t, old, r, "rejected");
}

tw_err tw_billing_approve_student(tw_billing_ctx *c, Tw__V1__StudentVerification **out)
{
    struct decide w = {c, true, "", NULL};
    tw_err err = tw_txn_run(c->billing->store, decide_fn, &w);
    return err ? err : answer(c, w.r, true, out);
}

tw_err tw_billing_reject_student(tw_billing_ctx *c, const char *reason,
                                 Tw__V1__StudentVerification **out)
{
    size_t before = tw_violations_total(c->bad);
    tw_wellness_check_text(c->bad, "reason", reason, REASON_MAX, true);
    tw_err err = billing_bad_since(c, before);
    if (err)
        return err;
    struct decide w = {c, false, reason, NULL};
    err = tw_txn_run(c->billing->store, decide_fn, &w);
    return err ? err : answer(c, w.r, true, out);
}

/* ---- Reading ----------------------------------------------------------------------------------
 */

tw_err tw_billing_get_student(tw_billing_ctx *c, Tw__V1__StudentVerification **out)
{
    student_record *r;
    tw_err err = load(c->billing->store, NULL, &c->user, c->arena, &r);
    if (err == TW_ERR_NOT_FOUND)
        return billing_refuse(c, err, "no student verification was submitted");
    return err ? err : answer(c, r, false, out);
}

tw_err tw_billing_student_document(tw_billing_ctx *c, const char **blob_key,
                                   const char **content_type)
{
    student_record *r;
    tw_err err = load(c->billing->store, NULL, &c->user, c->arena, &r);
    if (err == TW_OK && r->document_blob_key[0] == '\0')
        err = TW_ERR_NOT_FOUND;
    if (err == TW_ERR_NOT_FOUND)
        return billing_refuse(c, err, "the user's verification has no document");
    if (err)
        return err;
    *blob_key = r->document_blob_key;
    *content_type = r->document_content_type;
    return TW_OK;
}

struct students {
    tw_billing_ctx *c;
    int status;
    Tw__V1__StudentVerification **items;
    size_t n;
};

static tw_err student_item(void *ctx, tw_store_iter *it, bool *taken)
{
    struct students *l = ctx;
    tw_key_reader kr;
    tw_store_iter_read_key(it, &kr);
    uint32_t status;
    int64_t submit_ms;
    tw_id user;
    tw_key_read_u32(&kr, &status);
    tw_key_read_i64(&kr, &submit_ms);
    tw_key_read_id(&kr, &user);
    if (kr.err)
        return kr.err;
    student_record *r;
    tw_err err = load(l->c->billing->store, NULL, &user, l->c->arena, &r);
    if (err == TW_ERR_NOT_FOUND)
        return TW_OK;
    if (err)
        return err;
    if ((l->items[l->n++] = present(l->c->arena, r, &user, l->c->now_ms)) == NULL)
        return TW_ERR_NO_MEMORY;
    *taken = true;
    return TW_OK;
}

tw_err tw_billing_list_students(tw_billing_ctx *c, Tw__V1__StudentVerificationStatus status,
                                tw_billing_page *page,
                                Tw__V1__ListStudentVerificationsResponse **out)
{
    if (status == 0)
        status = ST_PENDING_REVIEW;
    if (status < ST_PENDING_CODE || status > ST_LOCKED)
        return billing_bad(c, "status", "is not a known status");
    struct students l = {c, status, NULL, 0};
    Tw__V1__ListStudentVerificationsResponse *r = tw_arena_alloc(c->arena, sizeof *r);
    l.items = tw_arena_alloc(c->arena, (TW_PAGE_SIZE_MAX + 1) * sizeof *l.items);
    if (r == NULL || l.items == NULL)
        return TW_ERR_NO_MEMORY;
    tw__v1__list_student_verifications_response__init(r);
    tw_key prefix;
    index_key(&prefix, status, 0, NULL);
    tw_err err = billing_page(c, &prefix, NULL, NULL, false, page, student_item, &l);
    r->verifications = l.items;
    r->n_verifications = l.n;
    *out = r;
    return err;
}

/* ---- The expiry job
 * ------------------------------------------------------------------------------ */

struct expire {
    tw_billing_ctx *c;
    const char *id;
};

static tw_err expire_fn(tw_txn *t, void *ctx)
{
    struct expire *w = ctx;
    tw_billing_ctx *c = w->c;
    student_record *old;
    tw_err err = load(NULL, t, &c->user, c->arena, &old);
    if (err == TW_ERR_NOT_FOUND)
        return TW_OK;
    if (err)
        return err;
    tw_id id;
    char text[TW_ID_TEXT_SIZE];
    if (!billing_bytes_id(old->id, &id))
        return TW_ERR_DB_CORRUPT;
    tw_id_format(&id, text);
    if (strcmp(text, w->id) != 0 || old->status != ST_APPROVED || c->now_ms < old->expire_unix_ms)
        return TW_OK; /* replaced by a renewal, or not due */
    student_record *r = copy(c->arena, old);
    if (r == NULL)
        return TW_ERR_NO_MEMORY;
    r->status = ST_EXPIRED;
    return save(c, t, old, r, "expired");
}

tw_err billing_student_expiry_job(tw_billing *b, const tw_id *user, const char *verification_id,
                                  int64_t now_ms, tw_arena *arena)
{
    tw_billing_ctx c = {.billing = b, .user = *user, .now_ms = now_ms, .arena = arena};
    struct expire w = {&c, verification_id};
    return tw_txn_run(b->store, expire_fn, &w);
}

tw_err billing_student_forget(tw_billing *b, tw_txn *t, const tw_id *user, tw_arena *arena,
                              const char **blob_key)
{
    *blob_key = NULL;
    tw_key k;
    billing_student_key(&k, user);
    student_record *r;
    tw_err err = billing_get(b->store, t, true, &k, arena, &r);
    if (err == TW_ERR_NOT_FOUND)
        return TW_OK;
    if (err)
        return err;
    if (r->document_blob_key[0] != '\0')
        *blob_key = r->document_blob_key;
    index_key(&k, r->status, r->submit_unix_ms, user);
    return tw_txn_delete(t, &k);
}

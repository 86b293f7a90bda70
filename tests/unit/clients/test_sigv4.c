/*
 * Unit tests for clients/sigv4.c against AWS's published vectors:
 *
 *   - every case of AWS's SigV4 test suite (tests/data/aws-sigv4,
 *     from awslabs/aws-c-auth), signed both ways (Authorization header and
 *     presigned query), comparing the canonical request, the string to sign,
 *     the signature and what is sent, each to the expected file;
 *   - the same suite's unnormalised cases signed the S3 way (the path
 *     encoded once by the caller, never normalised or encoded again), which
 *     must give the same answers;
 *   - the worked S3 examples of AWS's "Signature Version 4 (header and query
 *     string authentication)" pages, which add x-amz-content-sha256.
 *
 * s3rver, which the S3 end-to-end tests run against, does not check
 * signatures; these vectors are the signature test.
 */
#include "sigv4.h"

#include "tw_check.h"

#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_CASES 64

static char *case_names[MAX_CASES];
static int n_cases;

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every folder of the suite that holds a request.txt, sorted. */
static void find_cases(void)
{
    DIR *d = opendir(TW_SIGV4_VECTORS);
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n_cases < MAX_CASES) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s/request.txt", TW_SIGV4_VECTORS, e->d_name);
        FILE *f = e->d_name[0] != '.' ? fopen(path, "r") : NULL;
        if (f != NULL) {
            fclose(f);
            case_names[n_cases++] = strdup(e->d_name);
        }
    }
    closedir(d);
    qsort(case_names, (size_t)n_cases, sizeof case_names[0], name_cmp);
}

/* The whole file (malloc'd); *len gets its size. */
static char *slurp(const char *dir, const char *name, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s/%s", TW_SIGV4_VECTORS, dir, name);
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)size + 1);
    ck_assert_uint_eq(fread(buf, 1, (size_t)size, f), (size_t)size);
    buf[size] = '\0';
    fclose(f);
    if (len)
        *len = (size_t)size;
    return buf;
}

/* A parsed request.txt: its strings point into text. */
struct vector {
    char *text;
    char method[16];
    char *path;
    char *query;
    tw_sigv4_header headers[16];
    size_t n_headers;
    const char *body;
    size_t body_len;
    char payload_hash[65];
    /* context.json */
    json_t *context;
    tw_sigv4_params params;
    tw_sigv4_credentials creds;
};

static int64_t parse_time(const char *iso)
{
    struct tm tm = {0};
    ck_assert_ptr_nonnull(strptime(iso, "%Y-%m-%dT%H:%M:%SZ", &tm));
    return (int64_t)timegm(&tm);
}

static void load(const char *name, struct vector *v)
{
    memset(v, 0, sizeof *v);
    size_t len;
    v->text = slurp(name, "request.txt", &len);
    /* "METHOD PATH[?QUERY] HTTP/1.1": the path may hold spaces. */
    char *line_end = strchr(v->text, '\n');
    ck_assert_ptr_nonnull(line_end);
    *line_end = '\0';
    char *sp = strchr(v->text, ' ');
    char *proto = strstr(v->text, " HTTP/1.1");
    ck_assert(sp != NULL && proto != NULL && proto > sp);
    snprintf(v->method, sizeof v->method, "%.*s", (int)(sp - v->text), v->text);
    *proto = '\0';
    v->path = sp + 1;
    char *q = strchr(v->path, '?');
    if (q != NULL) {
        *q = '\0';
        v->query = q + 1;
    }
    /* Headers, with continuation lines folded into the value they follow,
     * then an empty line and the body. */
    char *p = line_end + 1;
    v->body = "";
    while (*p != '\0') {
        char *end = strchr(p, '\n');
        char *next = end ? end + 1 : p + strlen(p);
        if (end)
            *end = '\0';
        if (*p == '\0') {
            v->body = next;
            break;
        }
        if ((*p == ' ' || *p == '\t') && v->n_headers > 0) {
            p[-1] = '\n'; /* join with the previous line, white space and all */
        } else {
            char *colon = strchr(p, ':');
            ck_assert_ptr_nonnull(colon);
            *colon = '\0';
            ck_assert_uint_lt(v->n_headers, 16);
            v->headers[v->n_headers++] = (tw_sigv4_header){p, colon + 1};
        }
        p = next;
    }
    v->body_len = strlen(v->body);
    tw_sigv4_sha256_hex(v->body, v->body_len, v->payload_hash);

    char *ctx_text = slurp(name, "context.json", NULL);
    json_error_t jerr;
    v->context = json_loads(ctx_text, 0, &jerr);
    free(ctx_text);
    ck_assert_ptr_nonnull(v->context);
    json_t *creds = json_object_get(v->context, "credentials");
    v->creds.access_key_id = json_string_value(json_object_get(creds, "access_key_id"));
    v->creds.secret_access_key = json_string_value(json_object_get(creds, "secret_access_key"));
    v->creds.session_token = json_string_value(json_object_get(creds, "token"));
    v->params.region = json_string_value(json_object_get(v->context, "region"));
    v->params.service = json_string_value(json_object_get(v->context, "service"));
    v->params.time_s = parse_time(json_string_value(json_object_get(v->context, "timestamp")));
    v->params.normalize_path = json_is_true(json_object_get(v->context, "normalize"));
    v->params.double_encode = true;
    v->params.content_sha256 = json_is_true(json_object_get(v->context, "sign_body"));
    v->params.omit_session_token = json_is_true(json_object_get(v->context, "omit_session_token"));
    v->params.expires_s = json_integer_value(json_object_get(v->context, "expiration_in_seconds"));
}

static void unload(struct vector *v)
{
    json_decref(v->context);
    free(v->text);
}

static tw_sigv4_request request_of(const struct vector *v, const char *path)
{
    return (tw_sigv4_request){
        .method = v->method,
        .path = path,
        .query = v->query,
        .headers = v->headers,
        .n_headers = v->n_headers,
        .payload_hash = v->payload_hash,
    };
}

static void expect_file(const char *name, const char *file, const char *got)
{
    char *want = slurp(name, file, NULL);
    ck_assert_msg(strcmp(want, got) == 0, "%s/%s:\nwant:\n%s\ngot:\n%s", name, file, want, got);
    free(want);
}

/* The Authorization header of header-signed-request.txt. */
static void expect_authorization(const char *name, const char *got)
{
    char *signed_req = slurp(name, "header-signed-request.txt", NULL);
    char *auth = strstr(signed_req, "\nAuthorization:");
    ck_assert_ptr_nonnull(auth);
    auth += strlen("\nAuthorization:");
    auth[strcspn(auth, "\n")] = '\0';
    ck_assert_str_eq(auth, got);
    free(signed_req);
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The query string of query-signed-request.txt, parameter by parameter
 * (AWS's file lists them in another order than we send them). */
static void expect_signed_query(const char *name, const char *got)
{
    char *signed_req = slurp(name, "query-signed-request.txt", NULL);
    char *want = strchr(signed_req, '?');
    ck_assert_ptr_nonnull(want);
    want++;
    want[strcspn(want, " ")] = '\0';
    char *mine = strdup(got);
    char *a[32], *b[32];
    size_t na = 0, nb = 0;
    for (char *s = strtok(want, "&"); s && na < 32; s = strtok(NULL, "&"))
        a[na++] = s;
    for (char *s = strtok(mine, "&"); s && nb < 32; s = strtok(NULL, "&"))
        b[nb++] = s;
    ck_assert_uint_eq(na, nb);
    qsort(a, na, sizeof a[0], str_cmp);
    qsort(b, nb, sizeof b[0], str_cmp);
    for (size_t i = 0; i < na; i++)
        ck_assert_msg(strcmp(a[i], b[i]) == 0, "%s: query parameter %s, want %s", name, b[i], a[i]);
    free(mine);
    free(signed_req);
}

static void check_header_signing(const char *name, const tw_sigv4_params *p, const struct vector *v,
                                 const char *path)
{
    tw_sigv4_request req = request_of(v, path);
    tw_sigv4_result r;
    ck_assert_int_eq(tw_sigv4_sign_header(p, &v->creds, &req, &r), TW_OK);
    expect_file(name, "header-canonical-request.txt", r.canonical_request);
    expect_file(name, "header-string-to-sign.txt", r.string_to_sign);
    expect_file(name, "header-signature.txt", r.signature);
    expect_authorization(name, r.authorization);
    ck_assert_ptr_nonnull(strstr(r.extra_headers, "X-Amz-Date: 20150830T123600Z"));
    tw_sigv4_result_free(&r);
}

static void check_query_signing(const char *name, const tw_sigv4_params *p, const struct vector *v,
                                const char *path)
{
    tw_sigv4_request req = request_of(v, path);
    tw_sigv4_result r;
    ck_assert_int_eq(tw_sigv4_sign_query(p, &v->creds, &req, &r), TW_OK);
    expect_file(name, "query-canonical-request.txt", r.canonical_request);
    expect_file(name, "query-string-to-sign.txt", r.string_to_sign);
    expect_file(name, "query-signature.txt", r.signature);
    expect_signed_query(name, r.signed_query);
    tw_sigv4_result_free(&r);
}

START_TEST(the_suite_has_every_case)
{
    /* AWS's v4 suite as vendored in tests/data: 38 cases. */
    ck_assert_int_eq(n_cases, 38);
}
END_TEST

START_TEST(aws_suite_case)
{
    const char *name = case_names[_i];
    struct vector v;
    load(name, &v);
    check_header_signing(name, &v.params, &v, v.path);
    check_query_signing(name, &v.params, &v, v.path);
    unload(&v);
}
END_TEST

/* S3 signs the path as it is sent: encoded once by the client, never
 * normalised. For the suite's unnormalised cases that is the same
 * canonical path, so the same answers must come out. */
START_TEST(aws_suite_unnormalized_case_signed_as_s3_does)
{
    const char *name = case_names[_i];
    struct vector v;
    load(name, &v);
    if (!v.params.normalize_path) {
        char *wire = tw_sigv4_uri_encode(v.path, strlen(v.path), true);
        tw_sigv4_params s3 = v.params;
        s3.double_encode = false;
        check_header_signing(name, &s3, &v, wire);
        check_query_signing(name, &s3, &v, wire);
        /* Encoding the already encoded path again would sign another one. */
        if (strchr(wire, '%') != NULL) {
            tw_sigv4_request req = request_of(&v, wire);
            tw_sigv4_result r;
            s3.double_encode = true;
            ck_assert_int_eq(tw_sigv4_sign_header(&s3, &v.creds, &req, &r), TW_OK);
            ck_assert_ptr_nonnull(strstr(r.canonical_request, "%25"));
            tw_sigv4_result_free(&r);
        }
        free(wire);
    }
    unload(&v);
}
END_TEST

/* AWS's S3 examples: bucket examplebucket, 2013-05-24T00:00:00Z. */
#define S3_KEY_ID "AKIAIOSFODNN7EXAMPLE"
#define S3_SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define S3_HOST   "examplebucket.s3.amazonaws.com"
#define S3_TIME   INT64_C(1369353600)
#define S3_PREFIX "AWS4-HMAC-SHA256 Credential=" S3_KEY_ID "/20130524/us-east-1/s3/aws4_request, "

static const tw_sigv4_credentials s3_creds = {S3_KEY_ID, S3_SECRET, NULL};

START_TEST(s3_example_get_object)
{
    tw_sigv4_params p = tw_sigv4_s3_params("us-east-1", S3_TIME);
    tw_sigv4_header h[] = {{"Host", S3_HOST}, {"Range", "bytes=0-9"}};
    tw_sigv4_request req = {"GET", "/test.txt", NULL, h, 2, TW_SIGV4_EMPTY_SHA256};
    tw_sigv4_result r;
    ck_assert_int_eq(tw_sigv4_sign_header(&p, &s3_creds, &req, &r), TW_OK);
    ck_assert_str_eq(r.canonical_request,
                     "GET\n/test.txt\n\nhost:" S3_HOST "\nrange:bytes=0-9\n"
                     "x-amz-content-sha256:" TW_SIGV4_EMPTY_SHA256 "\n"
                     "x-amz-date:20130524T000000Z\n\n"
                     "host;range;x-amz-content-sha256;x-amz-date\n" TW_SIGV4_EMPTY_SHA256);
    ck_assert_str_eq(r.string_to_sign,
                     "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
                     "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
    ck_assert_str_eq(r.authorization, S3_PREFIX
                     "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
                     "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
    ck_assert_ptr_nonnull(strstr(r.extra_headers, "x-amz-content-sha256: " TW_SIGV4_EMPTY_SHA256));
    tw_sigv4_result_free(&r);
}
END_TEST

START_TEST(s3_example_put_object)
{
    tw_sigv4_params p = tw_sigv4_s3_params("us-east-1", S3_TIME);
    const char *body = "Welcome to Amazon S3.";
    char hash[65];
    tw_sigv4_sha256_hex(body, strlen(body), hash);
    ck_assert_str_eq(hash, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
    char *path = tw_sigv4_uri_encode("/test$file.text", 15, true);
    ck_assert_str_eq(path, "/test%24file.text");
    tw_sigv4_header h[] = {{"Host", S3_HOST},
                           {"Date", "Fri, 24 May 2013 00:00:00 GMT"},
                           {"x-amz-storage-class", "REDUCED_REDUNDANCY"}};
    tw_sigv4_request req = {"PUT", path, NULL, h, 3, hash};
    tw_sigv4_result r;
    ck_assert_int_eq(tw_sigv4_sign_header(&p, &s3_creds, &req, &r), TW_OK);
    ck_assert_str_eq(
        r.canonical_request,
        "PUT\n/test%24file.text\n\ndate:Fri, 24 May 2013 00:00:00 GMT\nhost:" S3_HOST "\n"
        "x-amz-content-sha256:44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072\n"
        "x-amz-date:20130524T000000Z\nx-amz-storage-class:REDUCED_REDUNDANCY\n\n"
        "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class\n"
        "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
    ck_assert_str_eq(r.string_to_sign,
                     "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
                     "9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d");
    ck_assert_str_eq(r.signature,
                     "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
    tw_sigv4_result_free(&r);
    free(path);
}
END_TEST

START_TEST(s3_example_bucket_queries)
{
    tw_sigv4_params p = tw_sigv4_s3_params("us-east-1", S3_TIME);
    tw_sigv4_header h[] = {{"Host", S3_HOST}};
    tw_sigv4_request req = {"GET", "/", "lifecycle", h, 1, TW_SIGV4_EMPTY_SHA256};
    tw_sigv4_result r;
    ck_assert_int_eq(tw_sigv4_sign_header(&p, &s3_creds, &req, &r), TW_OK);
    ck_assert_ptr_nonnull(strstr(r.canonical_request, "GET\n/\nlifecycle=\nhost:"));
    ck_assert_str_eq(r.signature,
                     "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
    tw_sigv4_result_free(&r);

    req.query = "max-keys=2&prefix=J";
    ck_assert_int_eq(tw_sigv4_sign_header(&p, &s3_creds, &req, &r), TW_OK);
    ck_assert_str_eq(r.signature,
                     "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
    tw_sigv4_result_free(&r);
}
END_TEST

START_TEST(s3_example_presigned_get)
{
    tw_sigv4_params p = tw_sigv4_s3_params("us-east-1", S3_TIME);
    p.expires_s = 86400;
    tw_sigv4_header h[] = {{"Host", S3_HOST}};
    tw_sigv4_request req = {"GET", "/test.txt", NULL, h, 1, TW_SIGV4_UNSIGNED};
    tw_sigv4_result r;
    ck_assert_int_eq(tw_sigv4_sign_query(&p, &s3_creds, &req, &r), TW_OK);
    ck_assert_str_eq(r.signature,
                     "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
    ck_assert_str_eq(r.signed_query,
                     "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=" S3_KEY_ID
                     "%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z"
                     "&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature="
                     "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
    tw_sigv4_result_free(&r);
}
END_TEST

START_TEST(encoding_and_bad_requests)
{
    char *e = tw_sigv4_uri_encode("a b/ü+~*", strlen("a b/ü+~*"), false);
    ck_assert_str_eq(e, "a%20b%2F%C3%BC%2B~%2A");
    free(e);
    e = tw_sigv4_uri_encode("u/n.webm", 8, true);
    ck_assert_str_eq(e, "u/n.webm");
    free(e);

    tw_sigv4_params p = tw_sigv4_s3_params("us-east-1", S3_TIME);
    tw_sigv4_result r;
    tw_sigv4_header no_host[] = {{"Range", "bytes=0-1"}};
    tw_sigv4_request req = {"GET", "/b/k", NULL, no_host, 1, TW_SIGV4_EMPTY_SHA256};
    ck_assert_int_eq(tw_sigv4_sign_header(&p, &s3_creds, &req, &r), TW_ERR_VALIDATION);
    tw_sigv4_result_free(&r);
    tw_sigv4_header h[] = {{"Host", S3_HOST}};
    tw_sigv4_request bad_query = {"GET", "/", "a=%zz", h, 1, TW_SIGV4_EMPTY_SHA256};
    ck_assert_int_eq(tw_sigv4_sign_header(&p, &s3_creds, &bad_query, &r), TW_ERR_VALIDATION);
    tw_sigv4_result_free(&r);
    bad_query.query = "a=%4";
    ck_assert_int_eq(tw_sigv4_sign_query(&p, &s3_creds, &bad_query, &r), TW_ERR_VALIDATION);
    tw_sigv4_result_free(&r);

    /* A session token is signed and sent unless told otherwise. */
    tw_sigv4_credentials with_token = {S3_KEY_ID, S3_SECRET, "tok"};
    tw_sigv4_request plain = {"GET", "/", NULL, h, 1, TW_SIGV4_EMPTY_SHA256};
    ck_assert_int_eq(tw_sigv4_sign_header(&p, &with_token, &plain, &r), TW_OK);
    ck_assert_ptr_nonnull(strstr(r.authorization, "x-amz-security-token"));
    ck_assert_ptr_nonnull(strstr(r.extra_headers, "X-Amz-Security-Token: tok"));
    tw_sigv4_result_free(&r);
}
END_TEST

Suite *tw_test_suite(void)
{
    find_cases();
    Suite *s = suite_create("sigv4");
    TCase *tc = tcase_create("aws_suite");
    tcase_add_test(tc, the_suite_has_every_case);
    tcase_add_loop_test(tc, aws_suite_case, 0, n_cases);
    tcase_add_loop_test(tc, aws_suite_unnormalized_case_signed_as_s3_does, 0, n_cases);
    suite_add_tcase(s, tc);
    tc = tcase_create("s3");
    tcase_add_test(tc, s3_example_get_object);
    tcase_add_test(tc, s3_example_put_object);
    tcase_add_test(tc, s3_example_bucket_queries);
    tcase_add_test(tc, s3_example_presigned_get);
    tcase_add_test(tc, encoding_and_bad_requests);
    suite_add_tcase(s, tc);
    return s;
}

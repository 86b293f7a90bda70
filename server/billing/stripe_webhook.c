/* Stripe-Signature checks for stripe_webhook.h, on OpenSSL's HMAC. */
#include "stripe_webhook.h"

#include "tw_hex.h"

#include <openssl/crypto.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIG_BYTES 32
/* Signatures read from one header; Stripe sends one per secret. */
#define MAX_SIGNATURES 8
/* Digits of a Unix time in seconds (until the year 33658). */
#define MAX_T_DIGITS 12

static tw_err refuse(tw_err err, char *why, size_t why_len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static tw_err refuse(tw_err err, char *why, size_t why_len, const char *fmt, ...)
{
    if (why != NULL && why_len > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, why_len, fmt, ap);
        va_end(ap);
    }
    return err;
}

/* What the header says: its timestamp (as sent, for the signed text) and
 * its v1 signatures. */
struct parsed {
    char t[MAX_T_DIGITS + 1];
    int64_t t_s;
    uint8_t v1[MAX_SIGNATURES][SIG_BYTES];
    int n_v1;
};

/* Reads 64 hex digits; false for anything else (such a v1 cannot match). */
static bool read_sig(const char *s, size_t n, uint8_t out[SIG_BYTES])
{
    if (n != 2 * SIG_BYTES)
        return false;
    for (size_t i = 0; i < SIG_BYTES; i++) {
        int hi = tw_hex_digit(s[2 * i]), lo = tw_hex_digit(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

/* Splits "t=...,v1=...,v0=..." into p. Items are key=value with a
 * non-empty key; one t of digits; schemes other than v1 are ignored, as
 * Stripe's libraries do. */
static bool parse_header(const char *h, struct parsed *p)
{
    memset(p, 0, sizeof *p);
    bool have_t = false;
    for (const char *item = h;; item++) {
        size_t n = strcspn(item, ",");
        const char *eq = memchr(item, '=', n);
        if (eq == NULL || eq == item)
            return false;
        size_t klen = (size_t)(eq - item), vlen = n - klen - 1;
        const char *v = eq + 1;
        if (klen == 1 && item[0] == 't') {
            if (have_t || vlen == 0 || vlen > MAX_T_DIGITS)
                return false;
            for (size_t i = 0; i < vlen; i++)
                if (v[i] < '0' || v[i] > '9')
                    return false;
            memcpy(p->t, v, vlen);
            p->t[vlen] = '\0';
            p->t_s = strtoll(p->t, NULL, 10);
            have_t = true;
        } else if (klen == 2 && memcmp(item, "v1", 2) == 0 && p->n_v1 < MAX_SIGNATURES) {
            if (read_sig(v, vlen, p->v1[p->n_v1]))
                p->n_v1++;
        }
        item += n;
        if (*item == '\0')
            break;
    }
    return have_t;
}

/* HMAC-SHA256 of "t.body" keyed with the whole secret. */
static bool sign(const char *secret, const char *t, const void *body, size_t len,
                 uint8_t out[SIG_BYTES])
{
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    size_t got = 0;
    bool ok = ctx != NULL &&
              EVP_MAC_init(ctx, (const unsigned char *)secret, strlen(secret), params) == 1 &&
              EVP_MAC_update(ctx, (const unsigned char *)t, strlen(t)) == 1 &&
              EVP_MAC_update(ctx, (const unsigned char *)".", 1) == 1 &&
              EVP_MAC_update(ctx, body, len) == 1 &&
              EVP_MAC_final(ctx, out, &got, SIG_BYTES) == 1 && got == SIG_BYTES;
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    return ok;
}

tw_err tw_stripe_webhook_verify(const tw_stripe_webhook_config *cfg, const char *header,
                                const void *body, size_t len, int64_t now_s, char *why,
                                size_t why_len)
{
    size_t max = cfg->max_body_bytes ? cfg->max_body_bytes : TW_STRIPE_WEBHOOK_MAX_BYTES;
    int64_t tolerance = cfg->tolerance_s > 0 ? cfg->tolerance_s : TW_STRIPE_WEBHOOK_TOLERANCE_S;
    if (len > max)
        return refuse(TW_ERR_TOO_LARGE, why, why_len, "body of %zu bytes, more than %zu", len, max);
    if (header == NULL || header[0] == '\0')
        return refuse(TW_ERR_WEBHOOK_BAD_SIGNATURE, why, why_len, "no Stripe-Signature header");
    if (strlen(header) > TW_STRIPE_WEBHOOK_HEADER_MAX)
        return refuse(TW_ERR_WEBHOOK_BAD_SIGNATURE, why, why_len,
                      "Stripe-Signature longer than %d bytes", TW_STRIPE_WEBHOOK_HEADER_MAX);
    struct parsed p;
    if (!parse_header(header, &p))
        return refuse(TW_ERR_WEBHOOK_BAD_SIGNATURE, why, why_len,
                      "Stripe-Signature is not t=<seconds>,v1=<hex>...");
    if (p.n_v1 == 0)
        return refuse(TW_ERR_WEBHOOK_BAD_SIGNATURE, why, why_len,
                      "Stripe-Signature has no v1 signature");

    bool match = false, any_secret = false;
    for (int s = 0; s < 2; s++) {
        const char *secret = cfg->secrets[s];
        if (secret == NULL || secret[0] == '\0')
            continue;
        any_secret = true;
        uint8_t expected[SIG_BYTES];
        if (!sign(secret, p.t, body, len, expected))
            return refuse(TW_ERR_INTERNAL, why, why_len, "HMAC-SHA256 failed");
        /* Every signature is compared, in constant time, whatever matched;
         * each is SIG_BYTES long (parse_header dropped any other length). */
        for (int i = 0; i < p.n_v1; i++)
            match |= CRYPTO_memcmp(expected, p.v1[i], SIG_BYTES) == 0;
    }
    if (!any_secret)
        return refuse(TW_ERR_WEBHOOK_BAD_SIGNATURE, why, why_len,
                      "no webhook signing secret is configured");
    if (!match)
        return refuse(TW_ERR_WEBHOOK_BAD_SIGNATURE, why, why_len,
                      "no v1 signature matches a configured secret (%d tried)", p.n_v1);
    int64_t skew = now_s - p.t_s;
    if (skew > tolerance || skew < -tolerance)
        return refuse(TW_ERR_WEBHOOK_STALE, why, why_len,
                      "signed %lld s %s our clock, more than %lld s",
                      (long long)(skew < 0 ? -skew : skew), skew < 0 ? "ahead of" : "behind",
                      (long long)tolerance);
    return TW_OK;
}

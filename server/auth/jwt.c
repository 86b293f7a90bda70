/* HS256 JWT signing and verification for jwt.h. */
#include "jwt.h"

#include "tw_base64.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>

#define SIGNATURE_BYTES 32

static void sign_input(const tw_jwt_key *key, const char *input, size_t len,
                       uint8_t sig[SIGNATURE_BYTES])
{
    unsigned int sig_len = SIGNATURE_BYTES;
    HMAC(EVP_sha256(), key->secret, sizeof key->secret, (const unsigned char *)input, len, sig,
         &sig_len);
}

/* base64url(JSON) of value, appended to out at *pos; false if no room. */
static bool append_json_part(json_t *value, char *out, size_t cap, size_t *pos)
{
    char *text = json_dumps(value, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (text == NULL)
        return false;
    size_t len = strlen(text);
    bool fits = *pos + tw_base64_encoded_len(len) + 1 < cap;
    if (fits) {
        tw_base64_encode(TW_BASE64_URL, (const uint8_t *)text, len, out + *pos);
        *pos += tw_base64_encoded_len(len);
    }
    free(text);
    return fits;
}

tw_err tw_jwt_sign(const tw_jwt_key *key, const tw_jwt_claims *claims, char **token)
{
    *token = NULL;
    json_t *header = json_pack("{s:s, s:s, s:s}", "alg", "HS256", "typ", "JWT", "kid", key->kid);
    json_t *payload =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I}", "iss", TW_JWT_ISSUER, "aud",
                  TW_JWT_AUDIENCE, "sub", claims->sub, "sid", claims->sid, "jti", claims->jti,
                  "iat", (json_int_t)claims->iat, "exp", (json_int_t)claims->exp);
    char buf[TW_JWT_MAX_BYTES];
    size_t pos = 0;
    bool ok = header && payload && append_json_part(header, buf, sizeof buf, &pos);
    if (ok) {
        buf[pos++] = '.';
        ok = append_json_part(payload, buf, sizeof buf, &pos);
    }
    json_decref(header);
    json_decref(payload);
    if (!ok || pos + 1 + tw_base64_encoded_len(SIGNATURE_BYTES) + 1 > sizeof buf)
        return TW_ERR_INTERNAL;
    uint8_t sig[SIGNATURE_BYTES];
    sign_input(key, buf, pos, sig);
    buf[pos++] = '.';
    tw_base64_encode(TW_BASE64_URL, sig, sizeof sig, buf + pos);
    *token = strdup(buf);
    return *token ? TW_OK : TW_ERR_NO_MEMORY;
}

/* Decodes one base64url part holding a JSON object; NULL when it is not. */
static json_t *decode_json_part(const char *text, size_t len)
{
    uint8_t buf[TW_JWT_MAX_BYTES];
    size_t n;
    if (len == 0 || tw_base64_decoded_max(len) > sizeof buf ||
        !tw_base64_decode(TW_BASE64_URL, text, len, buf, &n))
        return NULL;
    json_t *value = json_loadb((const char *)buf, n, JSON_REJECT_DUPLICATES, NULL);
    if (value != NULL && !json_is_object(value)) {
        json_decref(value);
        return NULL;
    }
    return value;
}

static bool copy_string_claim(json_t *payload, const char *name, char *out, size_t size)
{
    const char *value = json_string_value(json_object_get(payload, name));
    if (value == NULL || value[0] == '\0' || strlen(value) >= size)
        return false;
    memcpy(out, value, strlen(value) + 1);
    return true;
}

static bool string_equals(json_t *object, const char *name, const char *expected)
{
    const char *value = json_string_value(json_object_get(object, name));
    return value != NULL && strcmp(value, expected) == 0;
}

static tw_err check_header(json_t *header, tw_jwt_key_lookup *lookup, void *ctx, tw_jwt_key *key)
{
    /* Exactly HS256: "none", RS256 (key confusion) and the rest are refused. */
    if (!string_equals(header, "alg", "HS256"))
        return TW_ERR_AUTH_INVALID_TOKEN;
    json_t *typ = json_object_get(header, "typ");
    if (typ != NULL && !string_equals(header, "typ", "JWT"))
        return TW_ERR_AUTH_INVALID_TOKEN;
    /* Extensions we do not understand must not be ignored (RFC 7515 4.1.11). */
    if (json_object_get(header, "crit") != NULL)
        return TW_ERR_AUTH_INVALID_TOKEN;
    const char *kid = json_string_value(json_object_get(header, "kid"));
    if (kid == NULL || strlen(kid) >= TW_JWT_KID_SIZE || !lookup(ctx, kid, key))
        return TW_ERR_AUTH_INVALID_TOKEN;
    return TW_OK;
}

static tw_err check_claims(json_t *payload, int64_t now, tw_jwt_claims *claims)
{
    json_t *exp = json_object_get(payload, "exp"), *iat = json_object_get(payload, "iat");
    json_t *nbf = json_object_get(payload, "nbf");
    if (!string_equals(payload, "iss", TW_JWT_ISSUER) ||
        !string_equals(payload, "aud", TW_JWT_AUDIENCE) || !json_is_integer(exp) ||
        !json_is_integer(iat) || (nbf != NULL && !json_is_integer(nbf)) ||
        !copy_string_claim(payload, "sub", claims->sub, sizeof claims->sub) ||
        !copy_string_claim(payload, "sid", claims->sid, sizeof claims->sid) ||
        !copy_string_claim(payload, "jti", claims->jti, sizeof claims->jti))
        return TW_ERR_AUTH_INVALID_TOKEN;
    claims->exp = json_integer_value(exp);
    claims->iat = json_integer_value(iat);
    if (claims->iat > now + TW_JWT_IAT_SKEW_S || (nbf != NULL && json_integer_value(nbf) > now))
        return TW_ERR_AUTH_INVALID_TOKEN;
    if (claims->exp <= now)
        return TW_ERR_AUTH_EXPIRED_TOKEN;
    return TW_OK;
}

tw_err tw_jwt_verify(const char *token, tw_jwt_key_lookup *lookup, void *ctx, int64_t now,
                     tw_jwt_claims *claims)
{
    memset(claims, 0, sizeof *claims);
    size_t len = strnlen(token, TW_JWT_MAX_BYTES + 1);
    const char *dot1 = memchr(token, '.', len);
    const char *dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
    if (len > TW_JWT_MAX_BYTES || dot2 == NULL ||
        memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)))
        return TW_ERR_AUTH_INVALID_TOKEN;

    json_t *header = decode_json_part(token, (size_t)(dot1 - token));
    json_t *payload = decode_json_part(dot1 + 1, (size_t)(dot2 - dot1 - 1));
    tw_jwt_key key;
    tw_err err =
        header && payload ? check_header(header, lookup, ctx, &key) : TW_ERR_AUTH_INVALID_TOKEN;
    if (!err) {
        uint8_t expected[SIGNATURE_BYTES], given[SIGNATURE_BYTES + 4];
        size_t given_len;
        const char *sig = dot2 + 1;
        size_t sig_len = len - (size_t)(sig - token);
        sign_input(&key, token, (size_t)(dot2 - token), expected);
        if (sig_len != tw_base64_encoded_len(SIGNATURE_BYTES) ||
            !tw_base64_decode(TW_BASE64_URL, sig, sig_len, given, &given_len) ||
            given_len != SIGNATURE_BYTES || CRYPTO_memcmp(expected, given, SIGNATURE_BYTES) != 0)
            err = TW_ERR_AUTH_INVALID_TOKEN;
        else
            memcpy(claims->kid, key.kid, sizeof claims->kid);
        OPENSSL_cleanse(&key, sizeof key);
    }
    /* Claims are read only from a token whose signature holds. */
    if (!err)
        err = check_claims(payload, now, claims);
    json_decref(header);
    json_decref(payload);
    return err;
}

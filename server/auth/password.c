/* scrypt hashing and PHC strings for password.h. */
#include "password.h"

#include "tw_base64.h"
#include "tw_time.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SALT_BYTES 16
#define HASH_BYTES 32
/* tw_password_hash_ms before any hash has been timed. */
#define FIRST_GUESS_MS 250

/* A moving average of hash times in microseconds, each new time weighing
 * 1/8; 0 until the first. Updated without a lock: a lost update among
 * racing hashes changes nothing that matters. */
static _Atomic int64_t typical_us;

/* OpenSSL refuses scrypt above maxmem (32 MB by default); scrypt needs
 * 128 * N * r * p bytes plus change, so allow what the cost asks for. */
static uint64_t scrypt_maxmem(tw_password_cost cost)
{
    return 128ull * ((uint64_t)1 << cost.log2_n) * (uint64_t)cost.r * (uint64_t)cost.p +
           (64ull << 20);
}

static tw_err derive(const char *password, const uint8_t *salt, size_t salt_len,
                     tw_password_cost cost, uint8_t out[HASH_BYTES])
{
    if (cost.log2_n < 1 || cost.log2_n > 22 || cost.r < 1 || cost.r > 32 || cost.p < 1 ||
        cost.p > 16)
        return TW_ERR_DB_CORRUPT;
    int64_t start = tw_mono_ns();
    int ok =
        EVP_PBE_scrypt(password, strlen(password), salt, salt_len, (uint64_t)1 << cost.log2_n,
                       (uint64_t)cost.r, (uint64_t)cost.p, scrypt_maxmem(cost), out, HASH_BYTES);
    int64_t us = (tw_mono_ns() - start) / 1000, was = atomic_load(&typical_us);
    atomic_store(&typical_us, was == 0 ? us : was + (us - was) / 8);
    return ok == 1 ? TW_OK : TW_ERR_NO_MEMORY;
}

int64_t tw_password_hash_ms(void)
{
    int64_t us = atomic_load(&typical_us);
    return us == 0 ? FIRST_GUESS_MS : (us + 999) / 1000;
}

tw_err tw_password_hash(const char *password, tw_password_cost cost, char **out)
{
    *out = NULL;
    uint8_t salt[SALT_BYTES], hash[HASH_BYTES];
    if (RAND_bytes(salt, sizeof salt) != 1)
        return TW_ERR_INTERNAL;
    tw_err err = derive(password, salt, sizeof salt, cost, hash);
    if (err)
        return err;
    char salt_text[32], hash_text[48];
    tw_base64_encode(TW_BASE64_STD, salt, sizeof salt, salt_text);
    tw_base64_encode(TW_BASE64_STD, hash, sizeof hash, hash_text);
    OPENSSL_cleanse(hash, sizeof hash);
    char buf[160];
    snprintf(buf, sizeof buf, "$scrypt$ln=%d,r=%d,p=%d$%s$%s", cost.log2_n, cost.r, cost.p,
             salt_text, hash_text);
    *out = strdup(buf);
    return *out ? TW_OK : TW_ERR_NO_MEMORY;
}

/* Splits a PHC string into cost, salt and hash; false when malformed. */
static bool parse_phc(const char *stored, tw_password_cost *cost, uint8_t *salt, size_t *salt_len,
                      uint8_t *hash, size_t *hash_len)
{
    char salt_text[64], hash_text[64];
    int consumed = 0;
    if (sscanf(stored, "$scrypt$ln=%d,r=%d,p=%d$%63[A-Za-z0-9+/]$%63[A-Za-z0-9+/]%n", &cost->log2_n,
               &cost->r, &cost->p, salt_text, hash_text, &consumed) != 5 ||
        stored[consumed] != '\0')
        return false;
    uint8_t buf[64];
    size_t n;
    if (!tw_base64_decode(TW_BASE64_STD, salt_text, strlen(salt_text), buf, &n) || n < 8 ||
        n > SALT_BYTES * 2)
        return false;
    memcpy(salt, buf, n);
    *salt_len = n;
    if (!tw_base64_decode(TW_BASE64_STD, hash_text, strlen(hash_text), buf, &n) || n != HASH_BYTES)
        return false;
    memcpy(hash, buf, n);
    *hash_len = n;
    return true;
}

tw_err tw_password_verify(const char *password, const char *stored, tw_password_cost cost,
                          bool *match, bool *weaker)
{
    *match = false;
    *weaker = false;
    tw_password_cost used;
    uint8_t salt[SALT_BYTES * 2], expected[HASH_BYTES], actual[HASH_BYTES];
    size_t salt_len, hash_len;
    if (!parse_phc(stored, &used, salt, &salt_len, expected, &hash_len))
        return TW_ERR_DB_CORRUPT;
    tw_err err = derive(password, salt, salt_len, used, actual);
    if (err)
        return err;
    *match = CRYPTO_memcmp(actual, expected, HASH_BYTES) == 0;
    *weaker = used.log2_n < cost.log2_n || used.r < cost.r || used.p < cost.p;
    OPENSSL_cleanse(actual, sizeof actual);
    return TW_OK;
}

void tw_password_burn(const char *password, tw_password_cost cost)
{
    static const uint8_t salt[SALT_BYTES] = {0};
    uint8_t out[HASH_BYTES];
    derive(password, salt, sizeof salt, cost, out);
    OPENSSL_cleanse(out, sizeof out);
}

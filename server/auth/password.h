/*
 * Password hashing with scrypt (OpenSSL 3's EVP_PBE_scrypt). Hashes are PHC
 * strings that carry their own parameters,
 *   $scrypt$ln=17,r=8,p=1$<salt>$<hash>
 * so the cost can be raised later: verification reports when a stored hash
 * is weaker than the current parameters, and login rehashes it.
 *
 * Each hash takes about 128 MiB and a few hundred milliseconds at the
 * default cost: call these from a bounded pool (server/pool.h), never from
 * a completion-queue thread. That pool's queue is the admission queue of
 * sign-ins: when it is full, callers are refused at once and told to come
 * back after about tw_password_hash_ms() per hash ahead of them.
 */
#ifndef TW_PASSWORD_H
#define TW_PASSWORD_H

#include "tw_err.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct tw_password_cost {
    int log2_n; /* N = 2^log2_n */
    int r;
    int p;
} tw_password_cost;

/* N=2^17, r=8, p=1: OWASP's recommendation for scrypt. */
#define TW_PASSWORD_COST_DEFAULT ((tw_password_cost){17, 8, 1})

/* Hashes password with a fresh salt; *out is malloc'd, the caller frees it. */
tw_err tw_password_hash(const char *password, tw_password_cost cost, char **out);

/*
 * Checks password against a stored hash in constant time. *match says
 * whether it is right; *weaker says the hash used a lower cost than cost
 * (rehash it). TW_ERR_DB_CORRUPT when stored is not a hash we wrote.
 */
tw_err tw_password_verify(const char *password, const char *stored, tw_password_cost cost,
                          bool *match, bool *weaker);

/* Spends what a verification at cost spends, for logins with an unknown
 * email, so that timing does not tell which emails exist. */
void tw_password_burn(const char *password, tw_password_cost cost);

/* How long a hash has taken on this machine lately, in ms: a moving
 * average over the hashes above (250 before the first). */
int64_t tw_password_hash_ms(void);

#endif

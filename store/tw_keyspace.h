/*
 * The whole keyspace of the store, declared in one table.
 *
 * Each row of TW_KEYSPACE is one key family: its name, the column family it
 * lives in, its one-byte prefix (unique across the whole database, so a key
 * alone says what it is), whether it is user-owned (and kept in memory by
 * its readers), what its value is and the parts of its key, in order.
 * Adding a family is adding one row; the enum, the table in keyspace.c and
 * `twd check` follow from it.
 *
 * Rules every row keeps (tests/unit/store/test_keyspace.c checks them):
 *  - OWNED families start with the owner's user id, so anything keyed under
 *    a user is reached only through that user's prefix, and deleting a user
 *    is a prefix walk;
 *  - OWNED_CACHED families are OWNED families whose records readers keep in
 *    memory: every commit that writes one advances its owner's write epoch
 *    (tw_store_epoch), which tells those readers what they kept is stale;
 *    SHARED_CACHED families are SHARED ones read the same way, and their
 *    writes advance the one shared epoch: keep them to records that change
 *    seldom (plans), as every write makes every reader read again;
 *  - prefixes are unique and never 0x00 or 0xff;
 *  - MSG families name their protobuf-c descriptor, others name NULL;
 *  - a row is never reused for another meaning: retire it, keep the prefix.
 *
 * Value types: MSG a protobuf message; U64 a counter (8 bytes little-endian,
 * as RocksDB's uint64add merge operator wants); ID a 16-byte id; NONE an
 * empty value, the key itself being the datum (index entries).
 *
 * The store's own families use prefixes below 0x50; features take theirs
 * from 0x50 up. A feature adds, for example, an entity and an index of it:
 *   XX(TASK, DATA, 0x50, OWNED, MSG, &tw__v1__task__descriptor, P(ID, user), P(ID, task))
 *   XX(TASK_BY_DUE, INDEX, 0x51, OWNED, NONE, NULL, P(ID, user), P(I64, due_ms), P(ID, task))
 * and includes the message's .pb-c.h in keyspace.c. A unique index of a
 * value (an email) is a tw_unique.h space, not a family.
 */
#ifndef TW_KEYSPACE_H
#define TW_KEYSPACE_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stdint.h>

/* XX(name, RocksDB's name, merges u64 counters). META is RocksDB's default
 * family: store bookkeeping. DATA holds entities by (user, id); INDEX
 * secondary and unique indexes; COUNTERS u64 counters bucketed by day, added
 * by RocksDB's uint64add merge operator; CHANGELOG the per-user change log;
 * JOBS the job queue. */
#define TW_COLUMN_FAMILIES(XX)                                                                     \
    XX(META, "default", false)                                                                     \
    XX(DATA, "data", false)                                                                        \
    XX(INDEX, "index", false)                                                                      \
    XX(COUNTERS, "counters", true)                                                                 \
    XX(CHANGELOG, "changelog", false)                                                              \
    XX(JOBS, "jobs", false)

/*
 * XX(name, column family, prefix, SHARED, SHARED_CACHED, OWNED or OWNED_CACHED, value type,
 *    descriptor, parts...)  with each part P(type, name), type one of ID U64
 *    I64 U32 STR.
 */
#define TW_KEYSPACE(XX)                                                                            \
    /* Store bookkeeping: StoreInfo under ("store"), one record per applied migration. */          \
    XX(META, META, 0x01, SHARED, MSG, &tw__store__v1__store_info__descriptor, P(STR, name))        \
    XX(MIGRATION, META, 0x02, SHARED, MSG, &tw__store__v1__migration_record__descriptor,           \
       P(U32, number))                                                                             \
    /* Unique claims: a value in a space (an email) belongs to at most one owner; the */           \
    /* reverse index lists an owner's claims so they can all be released. */                       \
    XX(UNIQUE, INDEX, 0x10, SHARED, ID, NULL, P(STR, space), P(STR, value))                        \
    XX(UNIQUE_BY_OWNER, INDEX, 0x11, OWNED, NONE, NULL, P(ID, owner), P(STR, space),               \
       P(STR, value))                                                                              \
    /* Counters by UTC day: service-wide and per user; dims is "" or "plan=free,..." */            \
    XX(COUNTER, COUNTERS, 0x20, SHARED, U64, NULL, P(STR, name), P(STR, dims), P(U32, day))        \
    XX(USER_COUNTER, COUNTERS, 0x21, OWNED, U64, NULL, P(ID, user), P(STR, name), P(STR, dims),    \
       P(U32, day))                                                                                \
    /* Change log: one head per user, entries by (user, sequence). */                              \
    XX(CHANGE_HEAD, CHANGELOG, 0x30, OWNED, MSG, &tw__store__v1__change_head__descriptor,          \
       P(ID, user))                                                                                \
    XX(CHANGE, CHANGELOG, 0x31, OWNED, MSG, &tw__store__v1__change_entry__descriptor, P(ID, user), \
       P(U64, sequence))                                                                           \
    /* Job queue: jobs by id; ready and leased jobs by (type, due); dead ones by (type, time). */  \
    XX(JOB, JOBS, 0x40, SHARED, MSG, &tw__store__v1__job__descriptor, P(ID, job))                  \
    XX(JOB_DUE, JOBS, 0x41, SHARED, NONE, NULL, P(STR, type), P(I64, due_ms), P(ID, job))          \
    XX(JOB_DEAD, JOBS, 0x42, SHARED, NONE, NULL, P(STR, type), P(I64, dead_ms), P(ID, job))        \
    /* Accounts (server/auth): users, their sessions; the signing-key ring and the */              \
    /* maintenance switch ("jwt", "mode"); recent login failures by subject. */                    \
    XX(USER, DATA, 0x50, OWNED, MSG, &tw__store__v1__account__descriptor, P(ID, user))             \
    XX(SESSION, DATA, 0x51, OWNED_CACHED, MSG, &tw__store__v1__session__descriptor,               \
       P(ID, user), P(ID, session))                                                                \
    XX(SIGNING_KEYS, META, 0x52, SHARED, MSG, &tw__store__v1__signing_keys__descriptor,            \
       P(STR, name))                                                                               \
    XX(MAINTENANCE, META, 0x53, SHARED, MSG, &tw__store__v1__maintenance__descriptor,              \
       P(STR, name))                                                                               \
    XX(LOGIN_FAILURES, DATA, 0x54, SHARED, MSG, &tw__store__v1__login_failures__descriptor,        \
       P(STR, subject))                                                                            \
    /* Accounts whose emails differ only by case from an older one's (migration 2). */             \
    XX(EMAIL_CASE_COLLISION, DATA, 0x55, SHARED, MSG,                                              \
       &tw__store__v1__email_case_collision__descriptor, P(STR, email))                            \
    /* Tasks (0x60-0x6F): tasks by id, and one index per list order, each by status so a */        \
    /* filtered list is a prefix scan; by parent in manual order, where the order part is the */   \
    /* order key, a NUL and the task id's 16 bytes (siblings may share an order key). */           \
    XX(TASK, DATA, 0x60, OWNED, MSG, &tw__store__v1__task_record__descriptor, P(ID, user),         \
       P(ID, task))                                                                                \
    XX(TASK_BY_STATUS, INDEX, 0x61, OWNED, NONE, NULL, P(ID, user), P(U32, status), P(ID, task))   \
    XX(TASK_BY_DUE, INDEX, 0x62, OWNED, NONE, NULL, P(ID, user), P(U32, status), P(I64, due_ms),   \
       P(ID, task))                                                                                \
    XX(TASK_BY_PRIORITY, INDEX, 0x63, OWNED, NONE, NULL, P(ID, user), P(U32, status),              \
       P(U32, priority), P(ID, task))                                                              \
    XX(TASK_BY_PARENT, INDEX, 0x64, OWNED, NONE, NULL, P(ID, user), P(ID, parent), P(U32, status), \
       P(STR, order))                                                                              \
    XX(TASK_BY_LABEL, INDEX, 0x65, OWNED, NONE, NULL, P(ID, user), P(STR, label), P(ID, task))     \
    /* Responses of requests made with a request_id, by (user, "Method:" request_id), for */      \
    /* every service (server/kit): the row predates the kit, hence its tasks prefix. */            \
    XX(REQUEST, DATA, 0x66, OWNED, MSG, &tw__store__v1__request_record__descriptor,                \
       P(ID, user), P(STR, request))                                                               \
    /* The completion log, never pruned: by id, by task, by credited instant (with what */         \
    /* streaks need), and the occurrences skipped (missed) by due. */                              \
    XX(TASK_COMPLETION, DATA, 0x67, OWNED, MSG, &tw__store__v1__completion_record__descriptor,     \
       P(ID, user), P(ID, completion))                                                             \
    XX(COMPLETION_BY_TASK, INDEX, 0x68, OWNED, NONE, NULL, P(ID, user), P(ID, task),               \
       P(ID, completion))                                                                          \
    XX(COMPLETION_BY_CREDIT, INDEX, 0x69, OWNED, MSG,                                              \
       &tw__store__v1__completion_credit__descriptor, P(ID, user), P(I64, credit_ms),              \
       P(ID, completion))                                                                          \
    XX(TASK_MISSED, INDEX, 0x6A, OWNED, NONE, NULL, P(ID, user), P(I64, due_ms), P(ID, task))      \
    /* Sync: the result of each pushed mutation, by (user, mutation id). */                        \
    XX(SYNC_MUTATION, DATA, 0x6B, OWNED, MSG, &tw__store__v1__mutation_record__descriptor,         \
       P(ID, user), P(ID, mutation))                                                               \
    /* Tasks the user deleted (each has a tombstone in the change log), so Push can tell */        \
    /* a deleted task from an id never had; read only while the task does not exist. */            \
    XX(TASK_DELETED, DATA, 0x6C, OWNED, NONE, NULL, P(ID, user), P(ID, task))                      \
    /* Health logs (0x70-0x77): entries by id; the time index carries a digest for daily */        \
    /* summaries; type and source indexes for lists; (source, external id) -> entry id. */         \
    XX(HEALTH_LOG, DATA, 0x70, OWNED, MSG, &tw__store__v1__health_log_record__descriptor,          \
       P(ID, user), P(ID, log))                                                                    \
    XX(HEALTH_LOG_BY_TIME, INDEX, 0x71, OWNED, MSG, &tw__store__v1__health_log_digest__descriptor, \
       P(ID, user), P(I64, start_ms), P(ID, log))                                                  \
    XX(HEALTH_LOG_BY_TYPE, INDEX, 0x72, OWNED, NONE, NULL, P(ID, user), P(U32, type),              \
       P(I64, start_ms), P(ID, log))                                                               \
    XX(HEALTH_LOG_BY_SOURCE, INDEX, 0x73, OWNED, NONE, NULL, P(ID, user), P(U32, source),          \
       P(I64, start_ms), P(ID, log))                                                               \
    XX(HEALTH_LOG_BY_EXTERNAL, INDEX, 0x74, OWNED, ID, NULL, P(ID, user), P(U32, source),          \
       P(STR, external_id))                                                                        \
    /* Focus (0x78-0x7F): user templates; sessions by id and by start; the one active */           \
    /* (running, paused, on break) session of a user. */                                           \
    XX(FOCUS_TEMPLATE, DATA, 0x78, OWNED, MSG, &tw__store__v1__focus_template_record__descriptor,  \
       P(ID, user), P(ID, template))                                                               \
    XX(FOCUS_SESSION, DATA, 0x79, OWNED, MSG, &tw__store__v1__focus_session_record__descriptor,    \
       P(ID, user), P(ID, session))                                                                \
    XX(FOCUS_SESSION_BY_START, INDEX, 0x7A, OWNED, NONE, NULL, P(ID, user), P(I64, start_ms),      \
       P(ID, session))                                                                             \
    XX(FOCUS_ACTIVE, DATA, 0x7B, OWNED, ID, NULL, P(ID, user))                                     \
    /* Voice notes (server/voice): notes by (user, note); by status for filtered lists; */         \
    /* every note by creation time for the retention sweep. BY_REQUEST (an upload's */             \
    /* request_id -> note) is retired: only migration 5 reads it. */                               \
    XX(VOICE_NOTE, DATA, 0x80, OWNED, MSG, &tw__store__v1__voice_note_record__descriptor,          \
       P(ID, user), P(ID, note))                                                                   \
    XX(VOICE_NOTE_BY_STATUS, INDEX, 0x81, OWNED, NONE, NULL, P(ID, user), P(U32, status),          \
       P(ID, note))                                                                                \
    XX(VOICE_NOTE_BY_REQUEST, INDEX, 0x82, OWNED, ID, NULL, P(ID, user), P(STR, request_id))       \
    XX(VOICE_NOTE_BY_AGE, INDEX, 0x83, SHARED, NONE, NULL, P(I64, create_ms), P(ID, user),         \
       P(ID, note))                                                                                \
    /* Billing (server/billing, 0xA0-0xAF): plans by id; each user's billing account (Stripe */    \
    /* customer, subscription) and the Stripe customer id -> user; payments by Stripe id and */    \
    /* by creation time; saved payment methods; the entitlement every limit check reads; */        \
    /* usage per resource per billing period (counted, never deleted at roll-over); users */       \
    /* who crossed an alert threshold by (day or hour, user, kind); student verifications and */   \
    /* the review queue by (status, submission); Stripe's events by id and by receipt time; */     \
    /* live subscriptions by plan, for moving them to a new price at renewal. */                   \
    XX(BILLING_PLAN, DATA, 0xA0, SHARED_CACHED, MSG, &tw__store__v1__plan_record__descriptor,      \
       P(STR, plan))                                                                               \
    XX(BILLING_ACCOUNT, DATA, 0xA1, OWNED, MSG,                                                    \
       &tw__store__v1__billing_account_record__descriptor, P(ID, user))                            \
    XX(BILLING_STRIPE_CUSTOMER, INDEX, 0xA2, SHARED, ID, NULL, P(STR, customer))                   \
    XX(BILLING_PAYMENT, DATA, 0xA3, OWNED, MSG, &tw__store__v1__payment_record__descriptor,        \
       P(ID, user), P(STR, payment))                                                               \
    XX(BILLING_PAYMENT_BY_TIME, INDEX, 0xA4, OWNED, NONE, NULL, P(ID, user), P(I64, create_ms),    \
       P(STR, payment))                                                                            \
    XX(BILLING_PAYMENT_METHOD, DATA, 0xA5, OWNED, MSG,                                             \
       &tw__store__v1__payment_method_record__descriptor, P(ID, user), P(STR, payment_method))     \
    XX(BILLING_ENTITLEMENT, DATA, 0xA6, OWNED_CACHED, MSG,                                         \
       &tw__store__v1__entitlement_record__descriptor, P(ID, user))                                \
    XX(BILLING_USAGE, COUNTERS, 0xA7, OWNED_CACHED, U64, NULL, P(ID, user), P(U32, resource),      \
       P(I64, period_start_ms))                                                                    \
    XX(BILLING_ALERT, INDEX, 0xA8, SHARED, NONE, NULL, P(I64, time_ms), P(ID, user), P(STR, kind)) \
    XX(BILLING_STUDENT, DATA, 0xA9, OWNED, MSG,                                                    \
       &tw__store__v1__student_verification_record__descriptor, P(ID, user))                       \
    XX(BILLING_STUDENT_BY_STATUS, INDEX, 0xAA, SHARED, NONE, NULL, P(U32, status),                 \
       P(I64, submit_ms), P(ID, user))                                                             \
    XX(BILLING_WEBHOOK_EVENT, DATA, 0xAB, SHARED, MSG,                                             \
       &tw__store__v1__webhook_event_record__descriptor, P(STR, event))                            \
    XX(BILLING_WEBHOOK_BY_TIME, INDEX, 0xAC, SHARED, NONE, NULL, P(I64, receive_ms),               \
       P(STR, event))                                                                              \
    XX(BILLING_SUB_BY_PLAN, INDEX, 0xAD, SHARED, NONE, NULL, P(STR, plan), P(ID, user))            \
    /* Operations (0x90-0x9F): accounts by flag ("disabled", "admin"), newest first within a */    \
    /* flag, for AdminService.ListUsers; kept by tw_txn_account_put, built by migration 3. */      \
    XX(ACCOUNT_BY_FLAG, INDEX, 0x90, SHARED, NONE, NULL, P(STR, flag), P(ID, user))

/* clang-format cannot see the rows inside the macros. */
/* clang-format off */
typedef enum tw_cf {
#define TW_CF_ENUM(name, rocks_name, merges_u64) TW_CF_##name,
    TW_COLUMN_FAMILIES(TW_CF_ENUM)
#undef TW_CF_ENUM
    TW_CF__COUNT
} tw_cf;

typedef enum tw_kf {
#define TW_KF_ENUM(name, ...) TW_KF_##name,
    TW_KEYSPACE(TW_KF_ENUM)
#undef TW_KF_ENUM
    TW_KF__COUNT
} tw_kf;
/* clang-format on */

/* Key part types and how each is encoded (store/key.c): all keep order. */
typedef enum tw_kp {
    TW_KP_ID = 1, /* 16 bytes as they are (UUIDv7: time order) */
    TW_KP_U64,    /* 8 bytes big-endian */
    TW_KP_I64,    /* 8 bytes big-endian with the sign bit flipped */
    TW_KP_U32,    /* 4 bytes big-endian */
    TW_KP_STR,    /* bytes with 0x00 as 00 ff, ended by 00 01 */
} tw_kp;

typedef enum tw_val { TW_VAL_NONE, TW_VAL_MSG, TW_VAL_U64, TW_VAL_ID } tw_val;

#define TW_KEY_MAX_PARTS 4

typedef struct tw_key_part_spec {
    tw_kp type;
    const char *name;
} tw_key_part_spec;

typedef struct tw_key_family {
    const char *name;
    tw_cf cf;
    uint8_t prefix;
    bool owned;  /* parts[0] is the owning user's id */
    bool cached; /* OWNED_CACHED or SHARED_CACHED: writes advance an epoch */
    tw_val value;
    const ProtobufCMessageDescriptor *descriptor; /* TW_VAL_MSG only */
    uint8_t nparts;
    tw_key_part_spec parts[TW_KEY_MAX_PARTS];
} tw_key_family;

/* The row of a family. family must be a valid tw_kf. */
const tw_key_family *tw_keyspace_family(tw_kf family);

/* The family whose prefix is prefix; false when none has it. */
bool tw_keyspace_find(uint8_t prefix, tw_kf *out);

/* RocksDB's name for a column family, and whether it merges u64 counters. */
const char *tw_keyspace_cf_name(tw_cf cf);
bool tw_keyspace_cf_merges_u64(tw_cf cf);

#endif

/* The keyspace table of tw_keyspace.h, expanded into rows. */
#include "tw_keyspace.h"

#include "tw/store/v1/accounts.pb-c.h"
#include "tw/store/v1/billing_records.pb-c.h"
#include "tw/store/v1/records.pb-c.h"
#include "tw/store/v1/task_records.pb-c.h"
#include "tw/store/v1/wellness_records.pb-c.h"
#include "tw/v1/focus_service.pb-c.h"
#include "tw/v1/health_log_service.pb-c.h"
#include "tw/store/v1/voice_records.pb-c.h"

#include <stddef.h>

struct cf_row {
    const char *name;
    bool merges_u64;
};

static const struct cf_row cf_rows[TW_CF__COUNT] = {
#define TW_CF_ROW(id, rocks_name, merges) [TW_CF_##id] = {rocks_name, merges},
    TW_COLUMN_FAMILIES(TW_CF_ROW)
#undef TW_CF_ROW
};

#define OWNERSHIP_OWNED         true
#define OWNERSHIP_OWNED_CACHED  true
#define OWNERSHIP_SHARED        false
#define OWNERSHIP_SHARED_CACHED false
#define CACHING_OWNED           false
#define CACHING_OWNED_CACHED    true
#define CACHING_SHARED          false
#define CACHING_SHARED_CACHED   true
/* clang-format off */
#define P(type, part_name) {TW_KP_##type, #part_name}
/* clang-format on */
#define TW_KF_ROW(id, cf_, prefix_, ownership, vtype, desc, ...)                                   \
    [TW_KF_##id] = {                                                                               \
        .name = #id,                                                                               \
        .cf = TW_CF_##cf_,                                                                         \
        .prefix = prefix_,                                                                         \
        .owned = OWNERSHIP_##ownership,                                                            \
        .cached = CACHING_##ownership,                                                             \
        .value = TW_VAL_##vtype,                                                                   \
        .descriptor = desc,                                                                        \
        .nparts = sizeof((tw_key_part_spec[]){__VA_ARGS__}) / sizeof(tw_key_part_spec),            \
        .parts = {__VA_ARGS__},                                                                    \
    },

static const tw_key_family families[TW_KF__COUNT] = {TW_KEYSPACE(TW_KF_ROW)};

#undef TW_KF_ROW
#undef P

const tw_key_family *tw_keyspace_family(tw_kf family)
{
    return &families[family];
}

bool tw_keyspace_find(uint8_t prefix, tw_kf *out)
{
    for (int i = 0; i < TW_KF__COUNT; i++) {
        if (families[i].prefix == prefix) {
            *out = (tw_kf)i;
            return true;
        }
    }
    return false;
}

const char *tw_keyspace_cf_name(tw_cf cf)
{
    return cf_rows[cf].name;
}
bool tw_keyspace_cf_merges_u64(tw_cf cf)
{
    return cf_rows[cf].merges_u64;
}

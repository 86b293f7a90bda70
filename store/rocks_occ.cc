/*
 * The one RocksDB call the store needs that its C API (rocksdb/c.h, 7.8)
 * does not offer: OptimisticTransactionDB::Open with
 * OptimisticTransactionDBOptions. The C API opens with the defaults, whose
 * 2^20 lock buckets are 2^20 mutexes allocated one by one: about 50 MiB of
 * an idle twd's ~110 MiB (heaptrack, bench/README.md).
 *
 * The handles it returns are the C API's own, so the rest of the store
 * uses them as ever and rocksdb_optimistictransactiondb_close frees them.
 * To make them, the three structs below repeat their definitions in
 * RocksDB's db/c.cc (7.8.3, Debian 12's librocksdb, which CMakeLists.txt
 * pins through pkg-config): each wraps one member, `rep`.
 */
#include "rocks_occ.h"

#include <rocksdb/utilities/optimistic_transaction_db.h>
#include <rocksdb/version.h>

/* The wrappers below are c.cc's of 7.8: a RocksDB with other ones would
 * still link and then misread every handle. Re-check them before moving. */
#if ROCKSDB_MAJOR != 7 || ROCKSDB_MINOR != 8
#error "rocks_occ.cc repeats RocksDB 7.8's c.cc wrapper structs; check them for this version"
#endif

#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <vector>

using ROCKSDB_NAMESPACE::ColumnFamilyDescriptor;
using ROCKSDB_NAMESPACE::ColumnFamilyHandle;
using ROCKSDB_NAMESPACE::ColumnFamilyOptions;
using ROCKSDB_NAMESPACE::DBOptions;
using ROCKSDB_NAMESPACE::OptimisticTransactionDB;
using ROCKSDB_NAMESPACE::OptimisticTransactionDBOptions;
using ROCKSDB_NAMESPACE::Options;
using ROCKSDB_NAMESPACE::Status;

struct rocksdb_options_t {
    Options rep;
};
struct rocksdb_column_family_handle_t {
    ColumnFamilyHandle *rep;
};
struct rocksdb_optimistictransactiondb_t {
    OptimisticTransactionDB *rep;
};

static void save_error(char **errptr, const char *text)
{
    *errptr = strdup(text);
}

static rocksdb_optimistictransactiondb_t *
occ_open(const rocksdb_options_t *db_options, const char *name, int n, const char *const *names,
         const rocksdb_options_t *const *cf_options, rocksdb_column_family_handle_t **handles,
         uint32_t lock_buckets, char **errptr)
{
    std::vector<ColumnFamilyDescriptor> families;
    for (int i = 0; i < n; i++)
        families.emplace_back(names[i], ColumnFamilyOptions(cf_options[i]->rep));
    /* The wrappers first, so that nothing can fail once the database is open. */
    std::vector<std::unique_ptr<rocksdb_column_family_handle_t>> wrappers;
    for (int i = 0; i < n; i++)
        wrappers.push_back(std::make_unique<rocksdb_column_family_handle_t>());
    auto result = std::make_unique<rocksdb_optimistictransactiondb_t>();

    OptimisticTransactionDBOptions occ;
    occ.occ_lock_buckets = lock_buckets;
    std::vector<ColumnFamilyHandle *> opened;
    opened.reserve((size_t)n);
    Status s = OptimisticTransactionDB::Open(DBOptions(db_options->rep), occ, name, families,
                                             &opened, &result->rep);
    if (!s.ok()) {
        save_error(errptr, s.ToString().c_str());
        return nullptr;
    }
    for (int i = 0; i < n; i++) {
        wrappers[(size_t)i]->rep = opened[(size_t)i];
        handles[i] = wrappers[(size_t)i].release();
    }
    return result.release();
}

extern "C" rocksdb_optimistictransactiondb_t *
tw_rocks_occ_open(const rocksdb_options_t *db_options, const char *name, int n,
                  const char *const *names, const rocksdb_options_t *const *cf_options,
                  rocksdb_column_family_handle_t **handles, uint32_t lock_buckets, char **errptr)
{
    /* No C++ exception may cross into C: RocksDB's Open reports failures
     * as a Status, but the allocations around it can throw. */
    try {
        return occ_open(db_options, name, n, names, cf_options, handles, lock_buckets, errptr);
    } catch (const std::exception &e) {
        save_error(errptr, e.what());
        return nullptr;
    }
}

/*
 * Opening RocksDB's OptimisticTransactionDB with options its C API cannot
 * pass (rocks_occ.cc): the store's only C++. For store/ only.
 */
#ifndef TW_STORE_ROCKS_OCC_H
#define TW_STORE_ROCKS_OCC_H
#include <rocksdb/c.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * rocksdb_optimistictransactiondb_open_column_families, with the number of
 * lock buckets that commits validate under (OptimisticTransactionDBOptions.
 * occ_lock_buckets; RocksDB's default is 2^20, and each bucket is a mutex of
 * its own on the heap). Borrows every argument; fills handles[0..n-1]. On
 * failure answers NULL with *errptr set (free it with rocksdb_free).
 */
rocksdb_optimistictransactiondb_t *
tw_rocks_occ_open(const rocksdb_options_t *db_options, const char *name, int n,
                  const char *const *names, const rocksdb_options_t *const *cf_options,
                  rocksdb_column_family_handle_t **handles, uint32_t lock_buckets, char **errptr);

#ifdef __cplusplus
}
#endif
#endif

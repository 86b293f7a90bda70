/*
 * tw-store-dump DATA_DIR: prints every key and value of a twd store, one
 * JSON object per line: {"cf": "data", "key": "<hex>", "value": "<hex>"}.
 * Opens the store read-only, so it may run while twd serves it. End-to-end
 * tests use it to look below the API: to prove that a deleted account left
 * no key behind, and to read the signing keys they forge tokens with.
 */
#include "tw_store.h"

#include <stdio.h>
#include <stdlib.h>

static void print_hex(const uint8_t *bytes, size_t len)
{
    for (size_t i = 0; i < len; i++)
        printf("%02x", bytes[i]);
}

static tw_err print_record(void *ctx, tw_cf cf, const uint8_t *key, size_t key_len,
                           const uint8_t *value, size_t value_len)
{
    printf("{\"cf\": \"%s\", \"key\": \"", tw_keyspace_cf_name(cf));
    print_hex(key, key_len);
    printf("\", \"value\": \"");
    print_hex(value, value_len);
    printf("\"}\n");
    return ferror(stdout) ? TW_ERR_INTERNAL : TW_OK;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: tw-store-dump DATA_DIR\n");
        return 2;
    }
    tw_store_options opts = {.data_dir = argv[1], .read_only = true};
    tw_store *s;
    if (tw_store_open(&opts, &s)) {
        fprintf(stderr, "tw-store-dump: cannot open %s: %s\n", argv[1], tw_store_last_error());
        return 1;
    }
    tw_err err = tw_store_each_record(s, print_record, NULL);
    if (err)
        fprintf(stderr, "tw-store-dump: %s\n", tw_store_last_error());
    tw_store_close(s);
    return err ? 1 : 0;
}

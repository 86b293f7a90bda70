#include "tw_array.h"

#include <stdint.h>
#include <stdlib.h>

void *tw_array_grow(void *items, size_t count, size_t *cap, size_t item_size, size_t first_cap)
{
    if (count < *cap)
        return items;
    size_t want = *cap ? *cap * 2 : first_cap;
    if (want <= *cap || item_size == 0 || want > SIZE_MAX / item_size)
        return NULL;
    void *grown = realloc(items, want * item_size);
    if (grown != NULL)
        *cap = want;
    return grown;
}

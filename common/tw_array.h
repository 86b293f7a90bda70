/*
 * Growable arrays on the heap, for lists whose length is known only at the
 * end (scan results, parsed pairs, collected names). The caller keeps the
 * items pointer, the count and the capacity in its own struct, typed; this
 * is the one place that grows them, so every such list doubles the same
 * way and an allocation failure leaves the list as it was.
 */
#ifndef TW_ARRAY_H
#define TW_ARRAY_H

#include <stddef.h>

/*
 * items (count used of *cap items of item_size bytes; NULL when *cap is 0)
 * with room for one more: items itself while count < *cap, else items
 * reallocated to twice *cap (first_cap items the first time) and *cap set
 * to that. Returns NULL when memory ran out (or the size would overflow):
 * items and *cap are unchanged and items is still the caller's to free.
 * Takes items on success (the caller stores what is returned).
 */
void *tw_array_grow(void *items, size_t count, size_t *cap, size_t item_size, size_t first_cap);

#endif

/*
 * Update masks (google.protobuf.FieldMask, AIP-134), read the same way by
 * every Update: a table per resource lists the paths a client may name and
 * the bit each stands for. One rule for every service:
 *  - the mask is required: an empty one is refused (a client that means
 *    "change nothing" sends nothing);
 *  - each path must be in the table, once; every bad path is reported;
 *  - a named field takes the request's value, so naming a field and
 *    leaving it empty clears it.
 * Free of the RPC engine: services and domain code (a Push mutation) use
 * it with any violation list.
 */
#ifndef TW_KIT_MASK_H
#define TW_KIT_MASK_H

#include "google/protobuf/field_mask.pb-c.h"
#include "tw_err.h"
#include "tw_violations.h"

/* One path a mask may name; a table ends with a row whose path is NULL.
 * why_not, when set, says what to do instead where the path is not
 * allowed ("use MoveTask"). */
typedef struct tw_mask_path {
    const char *path;
    unsigned bit;
    const char *why_not;
} tw_mask_path;

/*
 * The bits of mask's paths, among those of table whose bits are in
 * allowed (other rows of the table are refused as "cannot be changed
 * here"). Each problem is a violation on field ("update_mask") naming
 * resource ("Task") and the path; returns TW_ERR_BAD_FIELD_MASK (VAL_004)
 * when there was any.
 */
tw_err tw_mask_parse(const Google__Protobuf__FieldMask *mask, const tw_mask_path *table,
                     unsigned allowed, const char *resource, const char *field, tw_violations *v,
                     unsigned *bits);

/* The path of one bit in table, or "?" when none has it. */
const char *tw_mask_path_of(const tw_mask_path *table, unsigned bit);

#endif

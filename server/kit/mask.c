/* Update masks read by a table (mask.h). */
#include "mask.h"

#include <string.h>

tw_err tw_mask_parse(const Google__Protobuf__FieldMask *mask, const tw_mask_path *table,
                     unsigned allowed, const char *resource, const char *field, tw_violations *v,
                     unsigned *bits)
{
    *bits = 0;
    if (mask == NULL || mask->n_paths == 0) {
        tw_violations_add(v, field, "is required: name the fields to change");
        return TW_ERR_BAD_FIELD_MASK;
    }
    size_t before = tw_violations_total(v);
    /* The engine caps the paths (field_rules.proto) and the table is short:
     * this is linear in the request. */
    for (size_t i = 0; i < mask->n_paths; i++) {
        const char *path = mask->paths[i];
        const tw_mask_path *row = table;
        while (row->path != NULL && strcmp(row->path, path) != 0)
            row++;
        if (row->path == NULL)
            tw_violations_add(v, field, "\"%s\" is not a field of %s that can be changed", path,
                              resource);
        else if (!(allowed & row->bit))
            tw_violations_add(v, field, "\"%s\" cannot be changed here%s%s", path,
                              row->why_not ? ": " : "", row->why_not ? row->why_not : "");
        else if (*bits & row->bit)
            tw_violations_add(v, field, "\"%s\" is named twice", path);
        else
            *bits |= row->bit;
    }
    return tw_violations_total(v) > before ? TW_ERR_BAD_FIELD_MASK : TW_OK;
}

const char *tw_mask_path_of(const tw_mask_path *table, unsigned bit)
{
    for (const tw_mask_path *row = table; row->path != NULL; row++)
        if (row->bit == bit)
            return row->path;
    return "?";
}

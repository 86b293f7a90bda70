/* Bounded field-violation lists for tw_violations.h. */
#include "tw_violations.h"

#include <stdio.h>
#include <string.h>

void tw_violations_init(tw_violations *v, tw_arena *arena, size_t max_count, size_t max_bytes)
{
    memset(v, 0, sizeof *v);
    v->arena = arena;
    v->tail = &v->head;
    v->max_count = max_count;
    v->max_bytes = max_bytes;
}

/* The length of s (len bytes, of which the buffer holds at least max + 1)
 * cut to at most max bytes without splitting a character. */
static size_t cut(const char *s, size_t len, size_t max)
{
    if (len <= max)
        return len;
    size_t n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
        n--;
    return n;
}

tw_err tw_violations_addv(tw_violations *v, const char *field, const char *fmt, va_list ap)
{
    /* Room past the limits for the character cut() must see whole. */
    char path[TW_VIOLATION_FIELD_MAX + 8], text[TW_VIOLATION_TEXT_MAX + 8];
    int plen = snprintf(path, sizeof path, "%s%s", v->prefix ? v->prefix : "", field);
    int tlen = vsnprintf(text, sizeof text, fmt, ap);
    size_t pn = cut(path, plen < 0 ? 0 : (size_t)plen, TW_VIOLATION_FIELD_MAX);
    size_t tn = cut(text, tlen < 0 ? 0 : (size_t)tlen, TW_VIOLATION_TEXT_MAX);
    /* Within the budget or only counted: the answer's size never depends
     * on how many mistakes a request holds. */

    tw_violation *item = NULL;
    if (v->count < v->max_count && v->bytes + pn + tn <= v->max_bytes)
        item = tw_arena_alloc(v->arena, sizeof *item);
    if (item != NULL) {
        item->field = tw_arena_strndup(v->arena, path, pn);
        item->description = tw_arena_strndup(v->arena, text, tn);
    }
    if (item == NULL || item->field == NULL || item->description == NULL) {
        v->dropped++;
        return TW_ERR_VALIDATION;
    }
    *v->tail = item;
    v->tail = &item->next;
    v->count++;
    v->bytes += pn + tn;
    return TW_ERR_VALIDATION;
}

tw_err tw_violations_add(tw_violations *v, const char *field, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    tw_err err = tw_violations_addv(v, field, fmt, ap);
    va_end(ap);
    return err;
}

size_t tw_violations_total(const tw_violations *v)
{
    return v->count + v->dropped;
}

bool tw_violations_any(const tw_violations *v)
{
    return v->count + v->dropped > 0;
}

const char *tw_violations_more(const tw_violations *v)
{
    if (v->dropped == 0)
        return NULL;
    return tw_arena_printf(v->arena, "and %zu more %s not listed", v->dropped,
                           v->dropped == 1 ? "violation" : "violations");
}

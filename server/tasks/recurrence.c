/* RRULE checks and series walks (recurrence.h) on libical's iterator. */
#include "recurrence.h"

#include "tz_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The RRULE parts tasks accept; libical parses them, this list only keeps
 * out what tasks do not support (sub-daily rules, RSCALE, BYWEEKNO ...). */
static const char *const accepted_parts[] = {
    "FREQ", "INTERVAL", "BYDAY", "BYMONTHDAY", "BYMONTH", "BYSETPOS", "COUNT", "UNTIL", "WKST",
};
#define NPARTS (sizeof accepted_parts / sizeof accepted_parts[0])

static bool fail(char *why, size_t len, const char *text)
{
    snprintf(why, len, "%s", text);
    return false;
}

/* Which accepted parts rrule names, as bits of accepted_parts; false with a
 * reason when a part is unknown, repeated or empty. */
static bool scan_parts(const char *rrule, unsigned *seen, char *why, size_t len)
{
    char copy[TW_RRULE_MAX + 1];
    snprintf(copy, sizeof copy, "%s", rrule);
    *seen = 0;
    char *save = NULL;
    for (char *part = strtok_r(copy, ";", &save); part; part = strtok_r(NULL, ";", &save)) {
        char *eq = strchr(part, '=');
        if (eq == NULL || eq == part || eq[1] == '\0') {
            snprintf(why, len, "\"%s\" is not NAME=VALUE", part);
            return false;
        }
        *eq = '\0';
        size_t i = 0;
        while (i < NPARTS && strcasecmp(part, accepted_parts[i]) != 0)
            i++;
        if (i == NPARTS) {
            snprintf(why, len,
                     "%s is not supported (use FREQ, INTERVAL, BYDAY, BYMONTHDAY, "
                     "BYMONTH, BYSETPOS, COUNT, UNTIL, WKST)",
                     part);
            return false;
        }
        if (*seen & (1u << i)) {
            snprintf(why, len, "%s appears twice", accepted_parts[i]);
            return false;
        }
        *seen |= 1u << i;
    }
    return true;
}

#define SEEN(name) (1u << part_index(name))
static unsigned part_index(const char *name)
{
    for (unsigned i = 0; i < NPARTS; i++)
        if (strcmp(accepted_parts[i], name) == 0)
            return i;
    return 0;
}

bool tw_rrule_check(const char *rrule, char *why, size_t len)
{
    if (rrule[0] == '\0')
        return fail(why, len, "is empty");
    if (strlen(rrule) > TW_RRULE_MAX)
        return fail(why, len, "is longer than 512 characters");
    if (strncasecmp(rrule, "RRULE:", 6) == 0)
        return fail(why, len, "must be the value only, without \"RRULE:\"");
    unsigned seen;
    if (!scan_parts(rrule, &seen, why, len))
        return false;
    if (!(seen & SEEN("FREQ")))
        return fail(why, len, "needs FREQ");
    if ((seen & SEEN("COUNT")) && (seen & SEEN("UNTIL")))
        return fail(why, len, "may have COUNT or UNTIL, not both");
    if ((seen & SEEN("BYSETPOS")) &&
        !(seen & (SEEN("BYDAY") | SEEN("BYMONTHDAY") | SEEN("BYMONTH"))))
        return fail(why, len, "BYSETPOS needs BYDAY, BYMONTHDAY or BYMONTH");

    tw_tz_lock();
    (void)tw_tz_zone_locked("UTC"); /* libical set up */
    icalerror_clear_errno();
    struct icalrecurrencetype r = icalrecurrencetype_from_string(rrule);
    tw_tz_unlock();
    if (r.freq == ICAL_NO_RECURRENCE)
        return fail(why, len, "is not a valid RFC 5545 RRULE");
    if (r.freq != ICAL_DAILY_RECURRENCE && r.freq != ICAL_WEEKLY_RECURRENCE &&
        r.freq != ICAL_MONTHLY_RECURRENCE && r.freq != ICAL_YEARLY_RECURRENCE)
        return fail(why, len, "FREQ must be DAILY, WEEKLY, MONTHLY or YEARLY");
    if (r.interval < 1)
        return fail(why, len, "INTERVAL must be at least 1");
    if ((seen & SEEN("COUNT")) && r.count < 1)
        return fail(why, len, "COUNT must be at least 1");
    for (int i = 0; i < ICAL_BY_DAY_SIZE && r.by_day[i] != ICAL_RECURRENCE_ARRAY_MAX; i++) {
        if (icalrecurrencetype_day_position(r.by_day[i]) != 0 &&
            r.freq != ICAL_MONTHLY_RECURRENCE && r.freq != ICAL_YEARLY_RECURRENCE)
            return fail(why, len, "BYDAY ordinals (like 2MO) need FREQ=MONTHLY or YEARLY");
    }
    return true;
}

int tw_rrule_count(const char *rrule)
{
    tw_tz_lock();
    (void)tw_tz_zone_locked("UTC");
    struct icalrecurrencetype r = icalrecurrencetype_from_string(rrule);
    tw_tz_unlock();
    return r.freq == ICAL_NO_RECURRENCE ? 0 : r.count;
}

static tw_local_time from_ical(struct icaltimetype t, bool all_day)
{
    if (all_day)
        return (tw_local_time){t.year, t.month, t.day, 0, 0, 0};
    return (tw_local_time){t.year, t.month, t.day, t.hour, t.minute, t.second};
}

bool tw_recurrence_excludes(const tw_recurrence *r, const tw_local_time *t)
{
    int32_t day = tw_date_to_day(t->year, t->month, t->day);
    for (size_t i = 0; i < r->exception_count; i++)
        if (r->exception_days[i] == day)
            return true;
    return false;
}

/* A bound as the series compares it: all-day series compare dates. */
static tw_local_time bound(const tw_local_time *t, bool all_day)
{
    tw_local_time b = *t;
    if (all_day)
        b.hour = b.minute = b.second = 0;
    return b;
}

/* Whether occurrence o (a wall-clock time in zone) is past the rule's
 * UNTIL: a UTC UNTIL (RFC 5545's form with a TZID start) is compared with
 * the occurrence's instant, read as tw_tz_instant reads it; a floating
 * or date UNTIL with its wall-clock time (a date as its midnight). The
 * lock is held. */
static bool past_until(icaltimezone *zone, struct icaltimetype until, const tw_local_time *o)
{
    tw_local_time u = {until.year, until.month, until.day, 0, 0, 0};
    if (!until.is_date) {
        u.hour = until.hour;
        u.minute = until.minute;
        u.second = until.second;
    }
    if (icaltime_is_utc(until)) {
        icaltimezone *utc = icaltimezone_get_utc_timezone();
        return tw_tz_instant_locked(zone, o) > tw_tz_instant_locked(utc, &u);
    }
    return tw_local_time_cmp(o, &u) > 0;
}

/*
 * Calls visit with each occurrence of r in order (exception days left
 * out) until it returns false; *ended says the series ran out first.
 * TW_ERR_FAILED_PRECONDITION after TW_RECURRENCE_MAX_WALK occurrences.
 *
 * libical walks the rule on floating (zone-less) wall-clock times: the
 * rules tasks accept have no part finer than a day, so an occurrence's
 * wall-clock time is the rule's whatever the zone does. Given the zone,
 * libical 3.0 turns an occurrence in a spring-forward gap (02:30) into
 * the time after the jump (03:30) and goes on from there, so every later
 * occurrence kept the wrong hour (issue 16). Reading a wall-clock time
 * as an instant (a gap's as after the jump) is tw_tz_instant's job; only
 * UNTIL needs the zone here, so it is checked here rather than by libical.
 */
static tw_err walk(const tw_recurrence *r, bool (*visit)(void *ctx, const tw_local_time *o),
                   void *ctx, bool *ended)
{
    *ended = false;
    struct icaltimetype start = icaltime_null_time();
    start.year = r->start.year;
    start.month = r->start.month;
    start.day = r->start.day;
    if (r->all_day) {
        start.is_date = 1;
    } else {
        start.hour = r->start.hour;
        start.minute = r->start.minute;
        start.second = r->start.second;
    }

    tw_err err = TW_OK;
    tw_tz_lock();
    icaltimezone *zone = tw_tz_zone_locked(r->time_zone);
    struct icalrecurrencetype rule = icalrecurrencetype_from_string(r->rrule);
    struct icaltimetype until = icaltime_null_time();
    icalrecur_iterator *it = NULL;
    if (zone == NULL || rule.freq == ICAL_NO_RECURRENCE) {
        err = TW_ERR_VALIDATION;
        goto out;
    }
    if (!r->all_day) {
        /* All-day series compare dates: libical's own UNTIL check is
         * right for them. */
        until = rule.until;
        rule.until = icaltime_null_time();
    }
    if (r->ignore_count)
        rule.count = 0;
    /* libical refuses to iterate a rule that can never occur (30
     * February): a series with no occurrence left. */
    if ((it = icalrecur_iterator_new(rule, start)) == NULL) {
        *ended = true;
        goto out;
    }
    err = TW_ERR_FAILED_PRECONDITION; /* unless the walk ends sooner */
    for (int walked = 0; walked < TW_RECURRENCE_MAX_WALK; walked++) {
        struct icaltimetype t = icalrecur_iterator_next(it);
        tw_local_time lt = from_ical(t, r->all_day);
        if (icaltime_is_null_time(t) ||
            (!icaltime_is_null_time(until) && past_until(zone, until, &lt))) {
            *ended = true;
            err = TW_OK;
            break;
        }
        if (tw_recurrence_excludes(r, &lt))
            continue;
        if (!visit(ctx, &lt)) {
            err = TW_OK;
            break;
        }
    }
out:
    if (it != NULL)
        icalrecur_iterator_free(it);
    tw_tz_unlock();
    return err;
}

struct step_walk {
    const tw_local_time *after, *floor;
    tw_recurrence_step *out;
};

static bool step_visit(void *ctx, const tw_local_time *o)
{
    struct step_walk *w = ctx;
    if ((w->after && tw_local_time_cmp(o, w->after) <= 0) ||
        (w->floor && tw_local_time_cmp(o, w->floor) < 0))
        return true;
    w->out->found = true;
    w->out->next = *o;
    return false;
}

tw_err tw_recurrence_step_after(const tw_recurrence *r, const tw_local_time *after,
                                const tw_local_time *not_before, tw_recurrence_step *out)
{
    memset(out, 0, sizeof *out);
    tw_local_time lo, floor;
    if (after)
        lo = bound(after, r->all_day);
    if (not_before)
        floor = bound(not_before, r->all_day);
    struct step_walk w = {after ? &lo : NULL, not_before ? &floor : NULL, out};
    bool ended;
    return walk(r, step_visit, &w, &ended);
}

struct catch_up_walk {
    tw_local_time now;
    tw_local_time *skipped_times;
    uint32_t cap;
    tw_catch_up *out;
};

static bool catch_up_visit(void *ctx, const tw_local_time *o)
{
    struct catch_up_walk *w = ctx;
    tw_catch_up *out = w->out;
    if (tw_local_time_cmp(o, &out->current) <= 0)
        return true;
    if (tw_local_time_cmp(o, &w->now) <= 0) {
        /* It has come too: the one before was passed over. */
        if (out->skipped < w->cap)
            w->skipped_times[out->skipped] = out->current;
        out->skipped++;
        out->current = *o;
        return true;
    }
    out->found_next = true;
    out->next = *o;
    return false;
}

tw_err tw_recurrence_catch_up(const tw_recurrence *r, const tw_local_time *due,
                              const tw_local_time *now, tw_local_time *skipped_times,
                              uint32_t skipped_cap, tw_catch_up *out)
{
    memset(out, 0, sizeof *out);
    out->current = bound(due, r->all_day);
    struct catch_up_walk w = {bound(now, r->all_day), skipped_times, skipped_cap, out};
    bool ended;
    return walk(r, catch_up_visit, &w, &ended);
}

/*
 * Time zones from TZif files (RFC 8536, versions 2 and later: 64-bit
 * transition times and a POSIX TZ footer), and calendar dates.
 */
#include "tw_tz.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SECS_PER_DAY  86400
#define SECS_PER_HOUR 3600
/* Largest file read: the biggest zone in tzdata is under 4 KiB. */
#define TZIF_MAX_BYTES (256 * 1024)
/* A window wide enough to hold every local time mapping to an instant in
 * it: offsets stay within +-26 hours. */
#define LOCAL_WINDOW_SECS (36 * SECS_PER_HOUR)

/* One date of a POSIX TZ rule. */
struct rule_date {
    char kind;    /* 'J' Julian 1-365 without Feb 29, 'D' zero-based day 0-365, 'M' month rule */
    int a, b, c;  /* J/D: day in a; M: month a, week b (5 = last), weekday c (0 = Sunday) */
    int32_t time; /* seconds after local midnight; may be negative or above 24 h */
};

/* The footer: standard offset, and a DST offset with its two rule dates. */
struct posix_rule {
    bool valid;
    bool has_dst;
    int32_t std_off, dst_off; /* seconds east of UTC */
    struct rule_date start, end;
};

struct tw_tz {
    struct tw_tz *next; /* the cache list */
    char name[TW_TZ_NAME_MAX + 1];
    size_t ntrans;
    int64_t *trans;   /* instants, ascending */
    int32_t *offsets; /* offsets[i] from trans[i] on */
    int32_t initial;  /* before the first transition */
    struct posix_rule rule;
};

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct tw_tz *cache;
static struct tw_tz utc_zone = {.name = "UTC"};

/* ---- Calendar ------------------------------------------------------------ */

int64_t tw_floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

/* Howard Hinnant's days_from_civil and civil_from_days. */
int64_t tw_date_to_days(int64_t year, int month, int day)
{
    int64_t y = year - (month <= 2);
    int64_t era = tw_floor_div(y, 400);
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void tw_date_from_days(int64_t days, int64_t *year, int *month, int *day)
{
    int64_t z = days + 719468;
    int64_t era = tw_floor_div(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *day = (int)(doy - (153 * mp + 2) / 5 + 1);
    *month = (int)(mp < 10 ? mp + 3 : mp - 9);
    *year = yoe + era * 400 + (*month <= 2);
}

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int64_t y, int m)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

bool tw_date_parse(const char *text, int64_t *days)
{
    int v[8];
    for (int i = 0; i < 10; i++) {
        char c = text[i];
        if (i == 4 || i == 7) {
            if (c != '-')
                return false;
        } else if (c < '0' || c > '9') {
            return false;
        }
    }
    if (text[10] != '\0')
        return false;
    for (int i = 0, j = 0; i < 10; i++)
        if (text[i] != '-')
            v[j++] = text[i] - '0';
    int year = v[0] * 1000 + v[1] * 100 + v[2] * 10 + v[3];
    int month = v[4] * 10 + v[5];
    int day = v[6] * 10 + v[7];
    if (year < 1 || month < 1 || month > 12 || day < 1 || day > days_in_month(year, month))
        return false;
    *days = tw_date_to_days(year, month, day);
    return true;
}

void tw_date_format(int64_t days, char out[TW_DATE_TEXT_SIZE])
{
    int64_t y;
    int m, d;
    tw_date_from_days(days, &y, &m, &d);
    if (y < 0 || y > 9999)
        y = y < 0 ? 0 : 9999;
    snprintf(out, TW_DATE_TEXT_SIZE, "%04d-%02d-%02d", (int)y, m, d);
}

/* ---- POSIX TZ rules ------------------------------------------------------ */

/* A number of up to max digits at *p. */
static bool parse_num(const char **p, int max_digits, int *out)
{
    int n = 0, digits = 0;
    while (**p >= '0' && **p <= '9' && digits < max_digits) {
        n = n * 10 + (**p - '0');
        (*p)++;
        digits++;
    }
    *out = n;
    return digits > 0;
}

/* [+-]hh[:mm[:ss]], hours up to 167 (RFC 8536's extension). */
static bool parse_hms(const char **p, int32_t *out)
{
    int sign = 1, h, m = 0, s = 0;
    if (**p == '+' || **p == '-')
        sign = *(*p)++ == '-' ? -1 : 1;
    if (!parse_num(p, 3, &h) || h > 167)
        return false;
    if (**p == ':') {
        (*p)++;
        if (!parse_num(p, 2, &m) || m > 59)
            return false;
        if (**p == ':') {
            (*p)++;
            if (!parse_num(p, 2, &s) || s > 59)
                return false;
        }
    }
    *out = sign * (h * SECS_PER_HOUR + m * 60 + s);
    return true;
}

/* A zone abbreviation: three or more letters, or <...>. */
static bool parse_abbr(const char **p)
{
    const char *s = *p;
    if (*s == '<') {
        while (*s != '\0' && *s != '>')
            s++;
        if (*s != '>')
            return false;
        *p = s + 1;
        return true;
    }
    while ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z'))
        s++;
    if (s - *p < 3)
        return false;
    *p = s;
    return true;
}

static bool parse_rule_date(const char **p, struct rule_date *d)
{
    d->time = 2 * SECS_PER_HOUR;
    if (**p == 'M') {
        (*p)++;
        d->kind = 'M';
        if (!parse_num(p, 2, &d->a) || **p != '.' || d->a < 1 || d->a > 12)
            return false;
        (*p)++;
        if (!parse_num(p, 1, &d->b) || **p != '.' || d->b < 1 || d->b > 5)
            return false;
        (*p)++;
        if (!parse_num(p, 1, &d->c) || d->c > 6)
            return false;
    } else if (**p == 'J') {
        (*p)++;
        d->kind = 'J';
        if (!parse_num(p, 3, &d->a) || d->a < 1 || d->a > 365)
            return false;
    } else {
        d->kind = 'D';
        if (!parse_num(p, 3, &d->a) || d->a > 365)
            return false;
    }
    if (**p == '/') {
        (*p)++;
        return parse_hms(p, &d->time);
    }
    return true;
}

/* "std offset [dst [offset] [,start[/time],end[/time]]]", as in TZif
 * footers. An empty string (no footer rule) leaves r invalid. */
static bool parse_posix(const char *s, struct posix_rule *r)
{
    memset(r, 0, sizeof *r);
    if (*s == '\0')
        return true;
    int32_t off;
    if (!parse_abbr(&s) || !parse_hms(&s, &off))
        return false;
    r->std_off = -off; /* POSIX offsets are west of UTC */
    r->valid = true;
    if (*s == '\0')
        return true;
    if (!parse_abbr(&s))
        return false;
    r->has_dst = true;
    r->dst_off = r->std_off + SECS_PER_HOUR;
    if (*s != ',' && *s != '\0') {
        if (!parse_hms(&s, &off))
            return false;
        r->dst_off = -off;
    }
    if (*s == '\0') { /* POSIX's default: the US rules */
        r->start = (struct rule_date){'M', 3, 2, 0, 2 * SECS_PER_HOUR};
        r->end = (struct rule_date){'M', 11, 1, 0, 2 * SECS_PER_HOUR};
        return true;
    }
    if (*s++ != ',' || !parse_rule_date(&s, &r->start) || *s++ != ',' ||
        !parse_rule_date(&s, &r->end))
        return false;
    return *s == '\0';
}

/* The day number of a rule date in year. */
static int64_t rule_day(const struct rule_date *d, int64_t year)
{
    int64_t jan1 = tw_date_to_days(year, 1, 1);
    if (d->kind == 'J')
        return jan1 + d->a - 1 + (is_leap(year) && d->a >= 60);
    if (d->kind == 'D')
        return jan1 + d->a;
    int64_t first = tw_date_to_days(year, d->a, 1);
    int wday_first = (int)((first % 7 + 7 + 4) % 7); /* 1970-01-01 was a Thursday */
    int64_t day = first + (d->c - wday_first + 7) % 7 + (int64_t)(d->b - 1) * 7;
    int last = days_in_month(year, d->a);
    while (day - first >= last)
        day -= 7;
    return day;
}

/* The instants DST starts and ends in year. */
static void rule_changes(const struct posix_rule *r, int64_t year, int64_t *dst_on,
                         int64_t *dst_off)
{
    *dst_on = rule_day(&r->start, year) * SECS_PER_DAY + r->start.time - r->std_off;
    *dst_off = rule_day(&r->end, year) * SECS_PER_DAY + r->end.time - r->dst_off;
}

static int64_t year_of(int64_t unix_s)
{
    int64_t y;
    int m, d;
    tw_date_from_days(tw_floor_div(unix_s, SECS_PER_DAY), &y, &m, &d);
    return y;
}

static int32_t rule_offset(const struct posix_rule *r, int64_t t)
{
    if (!r->has_dst)
        return r->std_off;
    int64_t on, off;
    rule_changes(r, year_of(t + r->std_off), &on, &off);
    bool dst = on < off ? (t >= on && t < off) : !(t >= off && t < on);
    return dst ? r->dst_off : r->std_off;
}

static int64_t rule_next_change(const struct posix_rule *r, int64_t t)
{
    if (!r->has_dst)
        return INT64_MAX;
    int64_t best = INT64_MAX;
    int64_t year = year_of(t);
    for (int64_t y = year - 1; y <= year + 1; y++) {
        int64_t on, off;
        rule_changes(r, y, &on, &off);
        if (on > t && on < best)
            best = on;
        if (off > t && off < best)
            best = off;
    }
    return best;
}

/* ---- TZif ---------------------------------------------------------------- */

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const uint8_t *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

struct tzif_counts {
    uint32_t isut, isstd, leap, time, type, chars;
};

static bool tzif_header(const uint8_t *p, size_t len, struct tzif_counts *c, char *version)
{
    if (len < 44 || memcmp(p, "TZif", 4) != 0)
        return false;
    *version = (char)p[4];
    c->isut = be32(p + 20);
    c->isstd = be32(p + 24);
    c->leap = be32(p + 28);
    c->time = be32(p + 32);
    c->type = be32(p + 36);
    c->chars = be32(p + 40);
    return c->type > 0 && c->type <= 256 && c->time <= 100000 && c->chars <= 1000 &&
           c->leap <= 1000 && c->isut <= 256 && c->isstd <= 256;
}

static size_t tzif_block_len(const struct tzif_counts *c, size_t time_size)
{
    return c->time * time_size + c->time + c->type * 6 + c->chars + c->leap * (time_size + 4) +
           c->isstd + c->isut;
}

/* Fills tz from the bytes of a TZif file. */
static bool tzif_parse(const uint8_t *p, size_t len, struct tw_tz *tz)
{
    struct tzif_counts c;
    char version;
    if (!tzif_header(p, len, &c, &version))
        return false;
    size_t time_size = 4;
    size_t v1_len = 44 + tzif_block_len(&c, 4);
    if (version >= '2') { /* skip the 32-bit block; use the 64-bit one */
        if (v1_len > len || !tzif_header(p + v1_len, len - v1_len, &c, &version))
            return false;
        p += v1_len;
        len -= v1_len;
        time_size = 8;
    }
    size_t block = tzif_block_len(&c, time_size);
    if (44 + block > len)
        return false;
    const uint8_t *times = p + 44;
    const uint8_t *idx = times + c.time * time_size;
    const uint8_t *types = idx + c.time;
    tz->ntrans = c.time;
    tz->trans = calloc(c.time + 1, sizeof *tz->trans);
    tz->offsets = calloc(c.time + 1, sizeof *tz->offsets);
    if (tz->trans == NULL || tz->offsets == NULL)
        return false;
    for (uint32_t i = 0; i < c.time; i++) {
        tz->trans[i] = time_size == 8 ? be64(times + i * 8) : (int64_t)(int32_t)be32(times + i * 4);
        if (idx[i] >= c.type || (i > 0 && tz->trans[i] <= tz->trans[i - 1]))
            return false;
        tz->offsets[i] = (int32_t)be32(types + idx[i] * 6);
    }
    tz->initial = (int32_t)be32(types);
    if (version >= '2') {
        const char *footer = (const char *)p + 44 + block;
        size_t rest = len - 44 - block;
        char text[128];
        if (rest < 2 || footer[0] != '\n')
            return false;
        const char *end = memchr(footer + 1, '\n', rest - 1);
        if (end == NULL || (size_t)(end - footer - 1) >= sizeof text)
            return false;
        memcpy(text, footer + 1, (size_t)(end - footer - 1));
        text[end - footer - 1] = '\0';
        if (!parse_posix(text, &tz->rule))
            return false;
    }
    return true;
}

/* Zone names as tzdata spells them: no "..", no leading '/', a safe
 * alphabet. */
static bool name_ok(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > TW_TZ_NAME_MAX || name[0] == '/' || name[0] == '.' ||
        strstr(name, "..") != NULL || strstr(name, "//") != NULL)
        return false;
    for (const char *c = name; *c; c++)
        if (!((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
              *c == '/' || *c == '_' || *c == '-' || *c == '+'))
            return false;
    return true;
}

static void tz_free(struct tw_tz *tz)
{
    if (tz == NULL)
        return;
    free(tz->trans);
    free(tz->offsets);
    free(tz);
}

static tw_err tz_load(const char *name, struct tw_tz **out)
{
    const char *dir = getenv("TZDIR");
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo", name);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return errno == ENOENT || errno == ENOTDIR || errno == EISDIR ? TW_ERR_NOT_FOUND
                                                                      : TW_ERR_DB;
    uint8_t *buf = malloc(TZIF_MAX_BYTES);
    struct tw_tz *tz = calloc(1, sizeof *tz);
    size_t len = buf ? fread(buf, 1, TZIF_MAX_BYTES, f) : 0;
    bool read_error = ferror(f) != 0;
    fclose(f);
    tw_err err = TW_OK;
    if (buf == NULL || tz == NULL)
        err = TW_ERR_NO_MEMORY;
    else if (read_error)
        err = len == 0 ? TW_ERR_NOT_FOUND : TW_ERR_DB; /* reading a directory fails so */
    else if (!tzif_parse(buf, len, tz))
        err = TW_ERR_DB_CORRUPT;
    free(buf);
    if (err) {
        tz_free(tz);
        return err;
    }
    snprintf(tz->name, sizeof tz->name, "%s", name);
    *out = tz;
    return TW_OK;
}

tw_err tw_tz_get(const char *name, const tw_tz **out)
{
    *out = NULL;
    if (strcmp(name, "UTC") == 0) {
        *out = &utc_zone;
        return TW_OK;
    }
    if (!name_ok(name))
        return TW_ERR_NOT_FOUND;
    pthread_mutex_lock(&cache_lock);
    for (struct tw_tz *tz = cache; tz != NULL; tz = tz->next) {
        if (strcmp(tz->name, name) == 0) {
            *out = tz;
            pthread_mutex_unlock(&cache_lock);
            return TW_OK;
        }
    }
    /* Loaded under the lock: zones are few and small, and loading each once
     * keeps the cache simple. */
    struct tw_tz *tz;
    tw_err err = tz_load(name, &tz);
    if (err == TW_OK) {
        tz->next = cache;
        cache = tz;
        *out = tz;
    }
    pthread_mutex_unlock(&cache_lock);
    return err;
}

const char *tw_tz_name(const tw_tz *tz)
{
    return tz->name;
}

/* The index of the last transition at or before t; -1 when none. */
static ptrdiff_t trans_index(const tw_tz *tz, int64_t t)
{
    size_t lo = 0, hi = tz->ntrans;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (tz->trans[mid] <= t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (ptrdiff_t)lo - 1;
}

int32_t tw_tz_offset(const tw_tz *tz, int64_t unix_s)
{
    ptrdiff_t i = trans_index(tz, unix_s);
    if (i < 0)
        return tz->ntrans == 0 && tz->rule.valid ? rule_offset(&tz->rule, unix_s) : tz->initial;
    if ((size_t)i == tz->ntrans - 1 && tz->rule.valid)
        return rule_offset(&tz->rule, unix_s);
    return tz->offsets[i];
}

int64_t tw_tz_next_change(const tw_tz *tz, int64_t unix_s)
{
    ptrdiff_t i = trans_index(tz, unix_s);
    if ((size_t)(i + 1) < tz->ntrans)
        return tz->trans[i + 1];
    return tz->rule.valid ? rule_next_change(&tz->rule, unix_s) : INT64_MAX;
}

int64_t tw_tz_local_to_unix(const tw_tz *tz, int64_t local_s)
{
    /* Walk the stretches of constant offset through a window that holds
     * every instant whose local time can be local_s, in time order; the
     * first stretch whose local times reach local_s holds the answer. */
    int64_t s = local_s - LOCAL_WINDOW_SECS, end = local_s + LOCAL_WINDOW_SECS;
    for (int guard = 0; guard < 64 && s < end; guard++) {
        int32_t off = tw_tz_offset(tz, s);
        int64_t e = tw_tz_next_change(tz, s);
        if (e > end)
            e = end;
        if (local_s < e + off)
            return local_s >= s + off ? local_s - off : s;
        s = e;
    }
    return local_s - tw_tz_offset(tz, local_s);
}

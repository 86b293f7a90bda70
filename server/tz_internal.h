/*
 * What tz.c shares with server/tasks/recurrence.c and nothing else:
 * libical's zone objects, reached only with tw_tz_lock() held.
 */
#ifndef TW_TZ_INTERNAL_H
#define TW_TZ_INTERNAL_H

#include "tz.h"

#include <libical/ical.h>

/* The zone called name, or NULL when it is unknown. The lock must be held;
 * the zone stays valid for the life of the process. */
icaltimezone *tw_tz_zone_locked(const char *name);

/* tw_tz_instant with the lock held and the zone found, in Unix seconds. */
int64_t tw_tz_instant_locked(icaltimezone *zone, const tw_local_time *local);

#endif

/*
 * Unit tests for server/services/services.c: the list every central file
 * asks instead of naming features. Here: the business counters services
 * expose for /metrics through their tw_service_def, whose metric names
 * dashboards and alert rules already use.
 */
#include "tw_check.h"

#include "services/services.h"

#include <string.h>

/* The runbook's business metrics as /metrics has named them since they
 * were added: a rename breaks dashboards, so this list changes only with
 * them. */
static const char *const published[] = {
    "tw_registrations_total",
    "tw_account_deletions_total",
    "tw_tasks_created_total",
    "tw_task_completions_total",
    "tw_health_log_entries_total",
    "tw_focus_sessions_total",
    "tw_focus_focused_seconds_total",
    "tw_focus_distractions_total",
    "tw_voice_note_uploads_total",
    "tw_voice_transcriptions_total",
    "tw_payments_total",
    "tw_refunds_total",
    "tw_subscriptions_started_total",
    "tw_subscription_cancellations_total",
    "tw_stripe_webhooks_total",
    "tw_subscription_creations_total",
};
#define NPUBLISHED (sizeof published / sizeof published[0])

struct seen {
    const tw_service_counter *rows[64];
    size_t count;
    size_t services;
};

static void collect(void *ctx, const tw_service_def *def)
{
    struct seen *s = ctx;
    s->services++;
    for (const tw_service_counter *c = def->counters; c != NULL && c->counter != NULL; c++) {
        ck_assert_uint_lt(s->count, sizeof s->rows / sizeof s->rows[0]);
        s->rows[s->count++] = c;
    }
}

START_TEST(services_expose_the_published_counters_once_each)
{
    struct seen s = {0};
    tw_services_each(collect, &s);
    ck_assert_uint_ge(s.services, 10);
    ck_assert_uint_eq(s.count, NPUBLISHED);
    for (size_t i = 0; i < NPUBLISHED; i++) {
        size_t found = 0;
        for (size_t k = 0; k < s.count; k++)
            found += strcmp(s.rows[k]->metric, published[i]) == 0;
        ck_assert_msg(found == 1, "%s is exposed %zu times", published[i], found);
    }
    for (size_t k = 0; k < s.count; k++) {
        ck_assert_msg(s.rows[k]->help != NULL && s.rows[k]->help[0] != '\0', "%s has no help",
                      s.rows[k]->metric);
        for (size_t j = k + 1; j < s.count; j++)
            ck_assert_str_ne(s.rows[k]->counter, s.rows[j]->counter);
    }
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("services");
    TCase *tc = tcase_create("hooks");
    tcase_add_test(tc, services_expose_the_published_counters_once_each);
    suite_add_tcase(s, tc);
    return s;
}

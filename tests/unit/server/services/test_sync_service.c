/*
 * Unit tests for server/services/sync_service.c: its Push and Pull handlers
 * called through a real engine (service_fixture.h) over a store in a
 * temporary directory. What the handlers decide: a batch of mutations is
 * applied one by one and pulled back, a mutation of a task the caller never
 * had (another user's) is rejected on its own while the rest of the batch
 * applies, a replayed mutation changes nothing, and a token or resource type
 * the server did not give is refused with the field that is wrong.
 */
#include "tw_check.h"

#include "service_fixture.h"
#include "tw/v1/sync_service.pb-c.h"

#include <string.h>

#define SVC "/tw.v1.SyncService/"

static void setup(void)
{
    sf_setup(&tw_sync_service);
}

/* A create_task mutation of a task with id and title (all borrowed). */
typedef struct create_mutation {
    Tw__V1__Task task;
    Tw__V1__Mutation m;
} create_mutation;

static void create_init(create_mutation *c, const char *mutation_id, const char *id,
                        const char *title)
{
    tw__v1__task__init(&c->task);
    c->task.id = (char *)id;
    c->task.title = (char *)title;
    tw__v1__mutation__init(&c->m);
    c->m.mutation_id = (char *)mutation_id;
    c->m.operation_case = TW__V1__MUTATION__OPERATION_CREATE_TASK;
    c->m.create_task = &c->task;
}

/* A delete_task mutation of task_id (borrowed). */
typedef struct delete_mutation {
    Tw__V1__TaskDeletion del;
    Tw__V1__Mutation m;
} delete_mutation;

static void delete_init(delete_mutation *d, const char *mutation_id, const char *task_id)
{
    tw__v1__task_deletion__init(&d->del);
    d->del.task_id = (char *)task_id;
    tw__v1__mutation__init(&d->m);
    d->m.mutation_id = (char *)mutation_id;
    d->m.operation_case = TW__V1__MUTATION__OPERATION_DELETE_TASK;
    d->m.delete_task = &d->del;
}

static Tw__V1__PushResponse *push_ok(Tw__V1__Mutation **mutations, size_t n, const char *const *md)
{
    Tw__V1__PushRequest req = TW__V1__PUSH_REQUEST__INIT;
    req.mutations = mutations;
    req.n_mutations = n;
    Tw__V1__PushResponse *resp =
        sf_ok(SVC "Push", &req.base, md, &tw__v1__push_response__descriptor);
    ck_assert_uint_eq(resp->n_results, n);
    return resp;
}

static sf_result pull(const char *token, char **types, size_t ntypes, const char *const *md)
{
    Tw__V1__PullRequest req = TW__V1__PULL_REQUEST__INIT;
    req.since_token = (char *)token;
    req.resource_types = types;
    req.n_resource_types = ntypes;
    return sf_call(SVC "Pull", &req.base, md, &tw__v1__pull_response__descriptor);
}

static char *task_type[] = {"task"};

/* Pulls every page of the caller's tasks from token; returns the last page
 * (its next_token is where the next Pull starts) and counts its changes in
 * *n (pages are bounded: a test has a handful of tasks). */
static Tw__V1__PullResponse *pull_all(const char *token, const char *const *md, size_t *n)
{
    *n = 0;
    for (int page = 0; page < 20; page++) {
        sf_result r = pull(token, task_type, 1, md);
        ck_assert_msg(r.status == GRPC_STATUS_OK, "Pull: %d %s %s", r.status, r.reason, r.fields);
        Tw__V1__PullResponse *resp = (void *)r.response;
        ck_assert(!resp->full_resync_required);
        *n += resp->n_changes;
        if (!resp->has_more)
            return resp;
        token = resp->next_token;
    }
    ck_abort_msg("Pull did not end in 20 pages");
    return NULL;
}

/* The change of resource id in resp, or NULL. */
static Tw__V1__Change *change_of(Tw__V1__PullResponse *resp, const char *id)
{
    for (size_t i = 0; i < resp->n_changes; i++)
        if (strcmp(resp->changes[i]->resource_id, id) == 0)
            return resp->changes[i];
    return NULL;
}

START_TEST(pushed_mutations_are_applied_and_pulled_back)
{
    char id1[TW_ID_TEXT_SIZE], id2[TW_ID_TEXT_SIZE];
    snprintf(id1, sizeof id1, "%s", sf_uuid());
    snprintf(id2, sizeof id2, "%s", sf_uuid());
    create_mutation c1, c2;
    create_init(&c1, sf_uuid(), id1, "buy milk");
    create_init(&c2, sf_uuid(), id2, "call mum");
    Tw__V1__Mutation *batch[] = {&c1.m, &c2.m};
    Tw__V1__PushResponse *pushed = push_ok(batch, 2, sf_user_a);
    for (size_t i = 0; i < 2; i++) {
        Tw__V1__MutationResult *res = pushed->results[i];
        ck_assert_str_eq(res->mutation_id, batch[i]->mutation_id);
        ck_assert_int_eq(res->outcome, TW__V1__MUTATION_OUTCOME__MUTATION_OUTCOME_APPLIED);
        ck_assert(!res->replayed);
        ck_assert_ptr_nonnull(res->task);
        ck_assert_str_eq(res->task->id, batch[i]->create_task->id);
    }
    ck_assert_str_eq(pushed->results[0]->task->title, "buy milk");

    /* A new device pulls everything: both tasks, as pushed. */
    size_t n;
    Tw__V1__PullResponse *all = pull_all("", sf_user_a, &n);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_ne(all->next_token, "");
    Tw__V1__Change *ch = change_of(all, id2);
    ck_assert_ptr_nonnull(ch);
    ck_assert_str_eq(ch->resource_type, "task");
    ck_assert(!ch->deleted);
    ck_assert_int_eq(ch->resource_case, TW__V1__CHANGE__RESOURCE_TASK);
    ck_assert_str_eq(ch->task->title, "call mum");
    char token[1024];
    snprintf(token, sizeof token, "%s", all->next_token);

    /* Nothing new since: an empty page. Then a delete shows as a deletion. */
    pull_all(token, sf_user_a, &n);
    ck_assert_uint_eq(n, 0);
    delete_mutation d;
    delete_init(&d, sf_uuid(), id1);
    Tw__V1__Mutation *del[] = {&d.m};
    pushed = push_ok(del, 1, sf_user_a);
    ck_assert_int_eq(pushed->results[0]->outcome,
                     TW__V1__MUTATION_OUTCOME__MUTATION_OUTCOME_APPLIED);
    Tw__V1__PullResponse *since = pull_all(token, sf_user_a, &n);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(since->changes[0]->resource_id, id1);
    ck_assert(since->changes[0]->deleted);

    /* User B sees none of it. */
    pull_all("", sf_user_b, &n);
    ck_assert_uint_eq(n, 0);
}
END_TEST

START_TEST(a_mutation_of_another_users_task_is_rejected_alone)
{
    char theirs[TW_ID_TEXT_SIZE], mine[TW_ID_TEXT_SIZE];
    snprintf(theirs, sizeof theirs, "%s", sf_uuid());
    snprintf(mine, sizeof mine, "%s", sf_uuid());
    create_mutation cb;
    create_init(&cb, sf_uuid(), theirs, "B's task");
    Tw__V1__Mutation *b_batch[] = {&cb.m};
    push_ok(b_batch, 1, sf_user_b);

    /* A deletes B's task and creates one of its own in one batch. */
    delete_mutation d;
    delete_init(&d, sf_uuid(), theirs);
    create_mutation ca;
    create_init(&ca, sf_uuid(), mine, "A's task");
    Tw__V1__Mutation *a_batch[] = {&d.m, &ca.m};
    Tw__V1__PushResponse *pushed = push_ok(a_batch, 2, sf_user_a);
    Tw__V1__MutationResult *rejected = pushed->results[0];
    ck_assert_str_eq(rejected->mutation_id, d.m.mutation_id);
    ck_assert_int_eq(rejected->outcome, TW__V1__MUTATION_OUTCOME__MUTATION_OUTCOME_REJECTED);
    ck_assert_str_eq(rejected->error_reason, "RES_001");
    ck_assert_ptr_null(rejected->task);
    ck_assert_int_eq(pushed->results[1]->outcome,
                     TW__V1__MUTATION_OUTCOME__MUTATION_OUTCOME_APPLIED);

    /* B's task is still there, A's is A's alone. */
    size_t n;
    Tw__V1__PullResponse *b = pull_all("", sf_user_b, &n);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(b->changes[0]->resource_id, theirs);
    ck_assert(!b->changes[0]->deleted);
    Tw__V1__PullResponse *a = pull_all("", sf_user_a, &n);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(a->changes[0]->resource_id, mine);

    /* The rejection is remembered: the same batch again replays both
     * results without applying anything. */
    pushed = push_ok(a_batch, 2, sf_user_a);
    ck_assert(pushed->results[0]->replayed);
    ck_assert_int_eq(pushed->results[0]->outcome,
                     TW__V1__MUTATION_OUTCOME__MUTATION_OUTCOME_REJECTED);
    ck_assert_str_eq(pushed->results[0]->error_reason, "RES_001");
    ck_assert(pushed->results[1]->replayed);
    ck_assert_int_eq(pushed->results[1]->outcome,
                     TW__V1__MUTATION_OUTCOME__MUTATION_OUTCOME_APPLIED);
    pull_all("", sf_user_a, &n);
    ck_assert_uint_eq(n, 1);
}
END_TEST

START_TEST(an_invalid_mutation_is_rejected_with_its_fields)
{
    create_mutation c;
    create_init(&c, sf_uuid(), sf_uuid(), ""); /* the title is required */
    Tw__V1__Mutation *batch[] = {&c.m};
    Tw__V1__PushResponse *pushed = push_ok(batch, 1, sf_user_a);
    Tw__V1__MutationResult *res = pushed->results[0];
    ck_assert_int_eq(res->outcome, TW__V1__MUTATION_OUTCOME__MUTATION_OUTCOME_REJECTED);
    ck_assert_str_eq(res->error_reason, "VAL_001");
    ck_assert_uint_ge(res->n_field_violations, 1);
    ck_assert_str_eq(res->field_violations[0]->field, "create_task.title");
    size_t n;
    pull_all("", sf_user_a, &n);
    ck_assert_uint_eq(n, 0);
}
END_TEST

START_TEST(a_token_the_server_did_not_give_is_refused)
{
    sf_result r = pull("not-a-token", task_type, 1, sf_user_a);
    sf_assert_error(&r, GRPC_STATUS_INVALID_ARGUMENT, "VAL_003");
    ck_assert_str_eq(r.fields, "since_token");

    /* A real token of another user is not a token for this one. */
    size_t n;
    Tw__V1__PullResponse *b = pull_all("", sf_user_b, &n);
    char token[1024];
    snprintf(token, sizeof token, "%s", b->next_token);
    r = pull(token, task_type, 1, sf_user_a);
    sf_assert_error(&r, GRPC_STATUS_INVALID_ARGUMENT, "VAL_003");
    ck_assert_str_eq(r.fields, "since_token");
}
END_TEST

START_TEST(an_unknown_resource_type_or_negative_page_size_is_refused)
{
    char *types[] = {"task", "spaceship"};
    sf_result r = pull("", types, 2, sf_user_a);
    sf_assert_error(&r, GRPC_STATUS_INVALID_ARGUMENT, "VAL_001");
    ck_assert_str_eq(r.fields, "resource_types");

    Tw__V1__PullRequest req = TW__V1__PULL_REQUEST__INIT;
    req.page_size = -1;
    r = sf_call(SVC "Pull", &req.base, sf_user_a, &tw__v1__pull_response__descriptor);
    sf_assert_error(&r, GRPC_STATUS_INVALID_ARGUMENT, "VAL_001");
    ck_assert_str_eq(r.fields, "page_size");
}
END_TEST

START_TEST(a_caller_without_credentials_is_refused)
{
    sf_result r = pull("", task_type, 1, NULL);
    sf_assert_error(&r, GRPC_STATUS_UNAUTHENTICATED, "AUTH_002");
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("sync_service");
    TCase *tc = tcase_create("handlers");
    tcase_add_checked_fixture(tc, setup, sf_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, pushed_mutations_are_applied_and_pulled_back);
    tcase_add_test(tc, a_mutation_of_another_users_task_is_rejected_alone);
    tcase_add_test(tc, an_invalid_mutation_is_rejected_with_its_fields);
    tcase_add_test(tc, a_token_the_server_did_not_give_is_refused);
    tcase_add_test(tc, an_unknown_resource_type_or_negative_page_size_is_refused);
    tcase_add_test(tc, a_caller_without_credentials_is_refused);
    suite_add_tcase(s, tc);
    return s;
}

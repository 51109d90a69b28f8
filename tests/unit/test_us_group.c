/* Unit tests: combining concurrent calls into batches (us_group.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include "fixture.h"
#include <unistd.h>

#include <apr_atomic.h>
#include <apr_thread_proc.h>
#include "us_group.h"

#define CALLERS 16

static apr_uint32_t seen[CALLERS]; /* how often each caller's item ran */
static apr_uint32_t largest;       /* the largest batch */
static apr_uint32_t in_batch;      /* batch functions running at once (never > 1) */
static apr_uint32_t arrived;       /* callers about to call us_group_run */
static apr_uint32_t expected;      /* ... that a batch waits for (at most 5 s) */

static void batch(void *ctx, us_group_item *const *items, int n)
{
    (void)ctx;
    assert_int_equal(apr_atomic_inc32(&in_batch), 0);
    /* every caller started before the first batch ends, however slowly
     * the threads start (valgrind, a loaded machine) */
    for (int i = 0; i < 5000 && apr_atomic_read32(&arrived) < apr_atomic_read32(&expected); i++)
        usleep(1000);
    usleep(10000); /* long enough for the others to queue */
    for (int i = 0; i < n; i++) {
        int k = *(int *)items[i]->arg;
        apr_atomic_inc32(&seen[k]);
        items[i]->rc = 1000 + k;
    }
    if ((apr_uint32_t)n > apr_atomic_read32(&largest))
        apr_atomic_set32(&largest, (apr_uint32_t)n);
    apr_atomic_dec32(&in_batch);
}

typedef struct {
    us_group *g;
    int k;
    int rc;
} caller;

static void *APR_THREAD_FUNC call(apr_thread_t *t, void *data)
{
    caller *c = data;
    us_group_item item = { .arg = &c->k };
    (void)t; /* no apr_thread_exit: it destroys the thread's pool, a child of
              * the suite's, while the main thread creates the next one */
    apr_atomic_inc32(&arrived);
    c->rc = us_group_run(c->g, &item, batch, NULL);
    return NULL;
}

static void run_callers(int max)
{
    us_group *g = NULL;
    assert_int_equal(us_group_create(&g, pool, max), APR_SUCCESS);
    caller c[CALLERS];
    apr_thread_t *th[CALLERS];
    memset(seen, 0, sizeof(seen));
    apr_atomic_set32(&largest, 0);
    apr_atomic_set32(&arrived, 0);
    apr_atomic_set32(&expected, CALLERS);
    for (int i = 0; i < CALLERS; i++) {
        c[i] = (caller){ g, i, 0 };
        assert_int_equal(apr_thread_create(&th[i], NULL, call, &c[i], pool), APR_SUCCESS);
    }
    for (int i = 0; i < CALLERS; i++) {
        apr_status_t rv;
        apr_thread_join(&rv, th[i]);
        assert_int_equal(c[i].rc, 1000 + i); /* its own item's result */
        assert_int_equal(apr_atomic_read32(&seen[i]), 1); /* run exactly once */
    }
    unsigned long batches = 0, items = 0;
    us_group_counts(g, &batches, &items);
    assert_int_equal(items, CALLERS);
    assert_true(apr_atomic_read32(&largest) <= (apr_uint32_t)max);
    /* 16 callers, all started before the first 10 ms batch ends: some
     * were combined */
    assert_true(batches < CALLERS);
    assert_true(apr_atomic_read32(&largest) > 1);
}

static void test_every_caller_gets_its_own_result_once(void **state)
{
    (void)state;
    run_callers(US_GROUP_MAX);
}

static void test_batches_stay_within_max(void **state)
{
    (void)state;
    run_callers(3);
}

static void test_one_caller_alone(void **state)
{
    (void)state;
    us_group *g = NULL;
    assert_int_equal(us_group_create(&g, pool, 8), APR_SUCCESS);
    int k = 5;
    memset(seen, 0, sizeof(seen));
    apr_atomic_set32(&expected, 0);
    us_group_item item = { .arg = &k };
    assert_int_equal(us_group_run(g, &item, batch, NULL), 1005);
    unsigned long batches = 0, items = 0;
    us_group_counts(g, &batches, &items);
    assert_int_equal(batches, 1);
    assert_int_equal(items, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_caller_alone),
        cmocka_unit_test(test_every_caller_gets_its_own_result_once),
        cmocka_unit_test(test_batches_stay_within_max),
    };
    return fixture_run("us_group", tests, NULL, NULL);
}

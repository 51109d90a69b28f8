/* Unit tests: shared directory fsyncs (us_dirsync.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <apr_general.h>
#include "us_dirsync.h"

/* A logical clock: every event takes the next tick. */
static pthread_mutex_t clock_mu = PTHREAD_MUTEX_INITIALIZER;
static long ticks;
static long tick(void)
{
    pthread_mutex_lock(&clock_mu);
    long t = ++ticks;
    pthread_mutex_unlock(&clock_mu);
    return t;
}

#define MAX_OPS 64
static long op_start[MAX_OPS], op_end[MAX_OPS];
static int ops;
static apr_status_t op_result = APR_SUCCESS;

static apr_status_t slow_op(const char *dir)
{
    (void)dir;
    long s = tick();
    usleep(20000);
    pthread_mutex_lock(&clock_mu);
    op_start[ops] = s;
    op_end[ops] = ++ticks;
    ops++;
    pthread_mutex_unlock(&clock_mu);
    return op_result;
}

#define CALLERS 16
static long call_at[CALLERS], return_at[CALLERS];
static apr_status_t results[CALLERS];
static pthread_barrier_t go;

static void *caller(void *arg)
{
    int i = (int)(long)arg;
    pthread_barrier_wait(&go);
    usleep((useconds_t)(i % 4) * 7000); /* arrivals spread over a sync or two */
    call_at[i] = tick();
    results[i] = us_dirsync("/some/session/dir");
    return_at[i] = tick();
    return NULL;
}

static void run_callers(void)
{
    pthread_t th[CALLERS];
    ops = 0;
    pthread_barrier_init(&go, NULL, CALLERS);
    for (long i = 0; i < CALLERS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, caller, (void *)i), 0);
    for (int i = 0; i < CALLERS; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&go);
}

/* Every caller returns only after an fsync that began after it arrived,
 * and 16 callers share a few fsyncs. */
static void test_callers_share_covering_syncs(void **state)
{
    (void)state;
    us_dirsync_set_op(slow_op);
    op_result = APR_SUCCESS;
    unsigned long before = us_dirsync_count();
    run_callers();
    for (int i = 0; i < CALLERS; i++) {
        int covered = 0;
        assert_int_equal(results[i], APR_SUCCESS);
        for (int k = 0; k < ops; k++)
            covered |= op_start[k] > call_at[i] && op_end[k] < return_at[i];
        assert_true(covered);
    }
    assert_int_equal(us_dirsync_count() - before, (unsigned long)ops);
    assert_true(ops >= 1 && ops <= 8);
    us_dirsync_set_op(NULL);
}

/* A failed fsync is reported to the callers it covered; later ones succeed. */
static void test_failure_reaches_covered_callers(void **state)
{
    (void)state;
    us_dirsync_set_op(slow_op);
    op_result = APR_FROM_OS_ERROR(EIO);
    run_callers();
    for (int i = 0; i < CALLERS; i++)
        assert_int_equal(results[i], APR_FROM_OS_ERROR(EIO));
    op_result = APR_SUCCESS;
    assert_int_equal(us_dirsync("/some/session/dir"), APR_SUCCESS);
    us_dirsync_set_op(NULL);
}

static void test_real_directory(void **state)
{
    (void)state;
    unsigned long before = us_dirsync_count();
    assert_int_equal(us_dirsync("/tmp"), APR_SUCCESS);
    assert_int_equal(us_dirsync_count(), before + 1);
    assert_int_equal(us_dirsync("/nonexistent/dir"), APR_FROM_OS_ERROR(ENOENT));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_callers_share_covering_syncs),
        cmocka_unit_test(test_failure_reaches_covered_callers),
        cmocka_unit_test(test_real_directory),
    };
    apr_initialize();
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    apr_terminate();
    return rc;
}

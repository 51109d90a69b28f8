/* Unit tests: shared directory fsyncs (us_dirsync.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include "fixture.h"
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

/* A ticket is covered by any fsync that began after it: when another
 * caller's fsync ran in between, the end returns without one of its own. */
static void test_ticket_covered_by_a_later_sync(void **state)
{
    (void)state;
    us_dirsync_ticket t;
    us_dirsync_set_op(slow_op);
    op_result = APR_SUCCESS;
    unsigned long before = us_dirsync_count();
    us_dirsync_begin("/some/session/dir", &t);
    assert_int_equal(us_dirsync("/some/session/dir"), APR_SUCCESS); /* someone else's */
    assert_int_equal(us_dirsync_count(), before + 1);
    assert_int_equal(us_dirsync_end(&t), APR_SUCCESS);
    assert_int_equal(us_dirsync_count(), before + 1); /* nothing more to do */

    /* its failure is the ticket's too */
    us_dirsync_begin("/some/session/dir", &t);
    op_result = APR_FROM_OS_ERROR(EIO);
    assert_int_equal(us_dirsync("/some/session/dir"), APR_FROM_OS_ERROR(EIO));
    op_result = APR_SUCCESS;
    assert_int_equal(us_dirsync_end(&t), APR_FROM_OS_ERROR(EIO));
    us_dirsync_set_op(NULL);
}

static us_dirsync_ticket early;
static long early_at;

static void *sync_while_ticket_taken(void *arg)
{
    (void)arg;
    return (void *)(long)us_dirsync("/some/session/dir");
}

/* An fsync already running when the ticket is taken may have begun before
 * the caller's change: it does not count, the end waits for a new one. */
static void test_ticket_not_covered_by_a_running_sync(void **state)
{
    (void)state;
    pthread_t th;
    us_dirsync_set_op(slow_op);
    op_result = APR_SUCCESS;
    ops = 0;
    assert_int_equal(pthread_create(&th, NULL, sync_while_ticket_taken, NULL), 0);
    usleep(5000); /* the other thread's fsync (20 ms) is running */
    early_at = tick();
    us_dirsync_begin("/some/session/dir", &early);
    assert_int_equal(us_dirsync_end(&early), APR_SUCCESS);
    long returned = tick();
    pthread_join(th, NULL);
    assert_int_equal(ops, 2);
    assert_true(op_start[0] < early_at);
    assert_true(op_start[1] > early_at && op_end[1] < returned);
    us_dirsync_set_op(NULL);
}

/* A cancelled ticket runs nothing (and holds nothing: valgrind). */
static void test_ticket_cancel(void **state)
{
    (void)state;
    us_dirsync_ticket t;
    unsigned long before = us_dirsync_count();
    us_dirsync_begin("/some/other/dir", &t);
    us_dirsync_cancel(&t);
    us_dirsync_cancel(&t); /* twice is harmless */
    assert_int_equal(us_dirsync_count(), before);
}

static void test_real_directory(void **state)
{
    (void)state;
    unsigned long before = us_dirsync_count();
    assert_int_equal(us_dirsync(fixture_dir), APR_SUCCESS);
    assert_int_equal(us_dirsync_count(), before + 1);
    assert_int_equal(us_dirsync("/nonexistent/dir"), APR_FROM_OS_ERROR(ENOENT));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_callers_share_covering_syncs),
        cmocka_unit_test(test_failure_reaches_covered_callers),
        cmocka_unit_test(test_ticket_covered_by_a_later_sync),
        cmocka_unit_test(test_ticket_not_covered_by_a_running_sync),
        cmocka_unit_test(test_ticket_cancel),
        cmocka_unit_test(test_real_directory),
    };
    return fixture_run("us_dirsync", tests, NULL, NULL);
}

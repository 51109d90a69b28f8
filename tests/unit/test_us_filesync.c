/* Unit tests: the group sync of small files (us_filesync.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include "fixture.h"
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <apr_general.h>
#include "us_filesync.h"

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

static int op_begun; /* under clock_mu */

static int ops_begun(void)
{
    pthread_mutex_lock(&clock_mu);
    int n = op_begun;
    pthread_mutex_unlock(&clock_mu);
    return n;
}

static apr_status_t slow_op(int fd)
{
    (void)fd;
    long s = tick();
    pthread_mutex_lock(&clock_mu);
    op_begun++;
    pthread_mutex_unlock(&clock_mu);
    usleep(20000);
    pthread_mutex_lock(&clock_mu);
    apr_status_t rv = op_result;
    if (ops < MAX_OPS) {
        op_start[ops] = s;
        op_end[ops] = ++ticks;
        ops++;
    }
    pthread_mutex_unlock(&clock_mu);
    return rv;
}

/* A new file in dir with a few bytes, as a small upload writes it. */
static int new_file(const char *dir, int i)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/f%d-%ld", dir, i, tick());
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    return fd;
}

static void write_some(int fd)
{
    static const char data[4096] = "content";
    assert_int_equal(write(fd, data, sizeof(data)), (ssize_t)sizeof(data));
}

#define CALLERS 16
static long ready_at[CALLERS], return_at[CALLERS];
static apr_status_t results[CALLERS];
static pthread_barrier_t go;

static void *caller(void *arg)
{
    int i = (int)(long)arg;
    us_filesync_ticket t;
    int fd = new_file(fixture_dir, i);
    int grouped = us_filesync_begin(fixture_dir, fd, &t);
    pthread_barrier_wait(&go);
    usleep((useconds_t)(i % 4) * 7000); /* arrivals spread over a sync or two */
    write_some(fd);
    ready_at[i] = tick();
    results[i] = grouped ? us_filesync_end(&t, fd) : APR_EGENERAL;
    return_at[i] = tick();
    close(fd);
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

/* Every file is answered only after a sync that began once it was written,
 * and 16 files share a few syncs. */
static void test_files_share_covering_syncs(void **state)
{
    (void)state;
    us_filesync_set_op(slow_op);
    op_result = APR_SUCCESS;
    unsigned long before = us_filesync_count();
    run_callers();
    for (int i = 0; i < CALLERS; i++) {
        int covered = 0;
        assert_int_equal(results[i], APR_SUCCESS);
        for (int k = 0; k < ops; k++)
            covered |= op_start[k] > ready_at[i] && op_end[k] < return_at[i];
        assert_true(covered);
    }
    assert_int_equal(us_filesync_count() - before, (unsigned long)ops);
    assert_true(ops >= 1 && ops <= 8);
    us_filesync_set_op(NULL);
}

/* A failed sync fails every file waiting for it; later files succeed. */
static void test_failure_fails_every_waiter(void **state)
{
    (void)state;
    us_filesync_ticket t;
    us_filesync_set_op(slow_op);
    op_result = APR_FROM_OS_ERROR(EIO);
    run_callers();
    for (int i = 0; i < CALLERS; i++)
        assert_int_equal(results[i], APR_FROM_OS_ERROR(EIO));
    op_result = APR_SUCCESS;
    int fd = new_file(fixture_dir, 99);
    assert_int_equal(us_filesync_begin(fixture_dir, fd, &t), 1);
    write_some(fd);
    assert_int_equal(us_filesync_end(&t, fd), APR_SUCCESS);
    close(fd);
    us_filesync_set_op(NULL);
}

static void *end_other_file(void *arg)
{
    (void)arg;
    us_filesync_ticket t;
    int fd = new_file(fixture_dir, 98);
    if (!us_filesync_begin(fixture_dir, fd, &t))
        return (void *)(long)APR_EGENERAL;
    write_some(fd);
    apr_status_t rv = us_filesync_end(&t, fd);
    close(fd);
    return (void *)(long)rv;
}

/* A sync already running when a file is written may have begun before
 * the write: it does not count, the end waits for one that begins later. */
static void test_running_sync_does_not_count(void **state)
{
    (void)state;
    us_filesync_ticket t;
    pthread_t th;
    void *other;
    us_filesync_set_op(slow_op);
    op_result = APR_SUCCESS;
    int fd = new_file(fixture_dir, 97);
    assert_int_equal(us_filesync_begin(fixture_dir, fd, &t), 1);
    ops = 0;
    int begun = ops_begun();
    assert_int_equal(pthread_create(&th, NULL, end_other_file, NULL), 0);
    while (ops_begun() == begun)
        usleep(500); /* until the other file's sync (20 ms) is running */
    write_some(fd);
    long ready = tick();
    assert_int_equal(us_filesync_end(&t, fd), APR_SUCCESS);
    long returned = tick();
    pthread_join(th, &other);
    assert_int_equal((apr_status_t)(long)other, APR_SUCCESS);
    close(fd);
    assert_int_equal(ops, 2);
    assert_true(op_start[0] < ready);
    assert_true(op_start[1] > ready && op_end[1] < returned);
    us_filesync_set_op(NULL);
}

/* A sync that failed after a file's begin fails that file even when a
 * later sync covering it succeeds: the failed one may have written, and
 * lost, the file's first pages. */
static void test_failure_since_begin_counts(void **state)
{
    (void)state;
    us_filesync_ticket t;
    us_filesync_set_op(slow_op);
    int fd = new_file(fixture_dir, 96);
    assert_int_equal(us_filesync_begin(fixture_dir, fd, &t), 1);
    write_some(fd);
    op_result = APR_FROM_OS_ERROR(EIO);
    assert_int_equal((apr_status_t)(long)end_other_file(NULL), APR_FROM_OS_ERROR(EIO));
    op_result = APR_SUCCESS;
    unsigned long before = us_filesync_count();
    assert_int_equal(us_filesync_end(&t, fd), APR_FROM_OS_ERROR(EIO));
    assert_int_equal(us_filesync_count(), before + 1); /* its own sync ran and succeeded */
    close(fd);

    /* a file begun after the failure is not touched by it */
    assert_int_equal((apr_status_t)(long)end_other_file(NULL), APR_SUCCESS);
    us_filesync_set_op(NULL);
}

static apr_status_t refusing_op(int fd)
{
    (void)fd;
    return APR_ENOTIMPL;
}

/* A file system that refuses the group sync: the waiter hears ENOTIMPL
 * (it syncs its file itself), later files are not offered the group. */
static void test_refused_group_sync(void **state)
{
    (void)state;
    us_filesync_ticket t;
    const char *dir = fixture_path("refusing");
    assert_int_equal(mkdir(dir, 0700), 0);
    us_filesync_set_op(refusing_op);
    int fd = new_file(dir, 1);
    assert_int_equal(us_filesync_begin(dir, fd, &t), 1);
    write_some(fd);
    assert_int_equal(us_filesync_end(&t, fd), APR_ENOTIMPL);
    close(fd);
    fd = new_file(dir, 2);
    assert_int_equal(us_filesync_begin(dir, fd, &t), 0);
    close(fd);
    /* other roots keep theirs */
    us_filesync_set_op(slow_op);
    assert_int_equal((apr_status_t)(long)end_other_file(NULL), APR_SUCCESS);
    us_filesync_set_op(NULL);
}

/* A file on another file system than the root is not offered the group. */
static void test_other_file_system(void **state)
{
    (void)state;
    us_filesync_ticket t;
    struct stat a, b;
    assert_int_equal(stat(fixture_dir, &a), 0);
    if (stat("/dev/shm", &b) != 0 || a.st_dev == b.st_dev)
        skip();
    char path[64];
    snprintf(path, sizeof(path), "/dev/shm/us-unit-filesync-%ld", (long)getpid());
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    unlink(path);
    assert_int_equal(us_filesync_begin(fixture_dir, fd, &t), 0);
    close(fd);
}

/* The real group sync (syncfs and fsync) where the kernel offers it. */
static void test_real_sync(void **state)
{
    (void)state;
    us_filesync_ticket t;
    int fd = new_file(fixture_dir, 95);
    unsigned long before = us_filesync_count();
    if (!us_filesync_begin(fixture_dir, fd, &t)) {
        close(fd);
        skip(); /* no syncfs that reports errors here */
    }
    write_some(fd);
    assert_int_equal(us_filesync_end(&t, fd), APR_SUCCESS);
    assert_int_equal(us_filesync_count(), before + 1);
    close(fd);
    /* a root that cannot be opened offers nothing */
    fd = new_file(fixture_dir, 94);
    assert_int_equal(us_filesync_begin("/nonexistent/dir", fd, &t), 0);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_files_share_covering_syncs),
        cmocka_unit_test(test_failure_fails_every_waiter),
        cmocka_unit_test(test_running_sync_does_not_count),
        cmocka_unit_test(test_failure_since_begin_counts),
        cmocka_unit_test(test_refused_group_sync),
        cmocka_unit_test(test_other_file_system),
        cmocka_unit_test(test_real_sync),
    };
    return fixture_run("us_filesync", tests, NULL, NULL);
}

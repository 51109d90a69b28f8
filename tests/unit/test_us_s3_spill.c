/* Unit tests: the s3 writers' part memory - reserved up to its budget and
 * given back, shared by threads without a lock - and the unlinked file a
 * part past it is filled in. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include "fixture.h"

#include <apr_strings.h>
#include <apr_thread_proc.h>
#include <dirent.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include "us_s3_spill.h"

static void test_reserved_up_to_the_budget(void **state)
{
    (void)state;
    us_s3_budget *b = us_s3_budget_create(pool, 100);
    assert_true(us_s3_budget_take(b, 60));
    assert_false(us_s3_budget_take(b, 41)); /* nothing reserved by a refusal */
    assert_int_equal(us_s3_budget_used(b), 60);
    assert_true(us_s3_budget_take(b, 40));
    assert_false(us_s3_budget_take(b, 1));
    us_s3_budget_give(b, 60);
    assert_int_equal(us_s3_budget_used(b), 40);
    assert_false(us_s3_budget_take(b, (apr_uint64_t)-1)); /* no wrap past the limit */
    assert_true(us_s3_budget_take(b, 60));
    us_s3_budget_give(b, 100);
    assert_int_equal(us_s3_budget_used(b), 0);
}

enum { THREADS = 4, ROUNDS = 20000 };

static void *APR_THREAD_FUNC take_and_give(apr_thread_t *t, void *arg)
{
    us_s3_budget *b = arg;
    for (int i = 0; i < ROUNDS; i++)
        if (us_s3_budget_take(b, 3)) {
            assert_true(us_s3_budget_used(b) <= 10);
            us_s3_budget_give(b, 3);
        }
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

static void test_threads_never_pass_the_budget(void **state)
{
    (void)state;
    us_s3_budget *b = us_s3_budget_create(pool, 10);
    apr_thread_t *th[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(apr_thread_create(&th[i], NULL, take_and_give, b, pool), APR_SUCCESS);
    for (int i = 0; i < THREADS; i++) {
        apr_status_t rv;
        apr_thread_join(&rv, th[i]);
    }
    assert_int_equal(us_s3_budget_used(b), 0);
}

static int entries(const char *dir)
{
    int n = 0;
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));)
        n += e->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

static void test_a_spill_file_is_unlinked_and_closed_on_exec(void **state)
{
    (void)state;
    int fd = us_s3_spill_open(fixture_dir);
    assert_true(fd >= 0);
    assert_int_equal(entries(fixture_dir), 0);
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    assert_int_equal(pwrite(fd, "part", 4, 0), 4);
    char got[4];
    assert_int_equal(pread(fd, got, 4, 0), 4);
    assert_memory_equal(got, "part", 4);
    close(fd);
    char *missing = apr_pstrcat(pool, fixture_dir, "/missing", NULL);
    assert_int_equal(us_s3_spill_open(missing), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reserved_up_to_the_budget),
        cmocka_unit_test(test_threads_never_pass_the_budget),
        cmocka_unit_test(test_a_spill_file_is_unlinked_and_closed_on_exec),
    };
    return fixture_run("us_s3_spill", tests, NULL, NULL);
}

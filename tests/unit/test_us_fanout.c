/* Unit tests: n tasks on up to width threads (us_fanout.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include "fixture.h"
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <apr_atomic.h>
#include <apr_portable.h>
#include "us_fanout.h"

#define TASKS 40

typedef struct {
    apr_uint32_t ran[TASKS];   /* how often each task ran */
    apr_uint32_t at_once, most_at_once;
    apr_os_thread_t on[TASKS]; /* the thread each ran on */
    int halt_at;               /* the task that asks to stop; -1: none */
    apr_interval_time_t takes; /* how long each task runs */
    int ticks, halt_after_ticks;
} run_state;

static int task(void *arg, int i, apr_pool_t *p)
{
    run_state *s = arg;
    apr_uint32_t now = apr_atomic_inc32(&s->at_once) + 1;
    for (apr_uint32_t most = apr_atomic_read32(&s->most_at_once); now > most;
         most = apr_atomic_read32(&s->most_at_once))
        if (apr_atomic_cas32(&s->most_at_once, now, most) == most)
            break;
    (void)apr_palloc(p, 64); /* the lane's pool, cleared after (no assertion here: the
                              * no-thread test must leave its cgroup before any jump) */
    apr_atomic_inc32(&s->ran[i]);
    s->on[i] = apr_os_thread_current();
    if (s->takes > 0)
        apr_sleep(s->takes);
    apr_atomic_dec32(&s->at_once);
    return i == s->halt_at;
}

static int tick(void *arg)
{
    run_state *s = arg;
    s->ticks++; /* the calling thread's alone */
    return s->halt_after_ticks > 0 && s->ticks >= s->halt_after_ticks;
}

static void fresh(run_state *s)
{
    memset(s, 0, sizeof(*s));
    s->halt_at = -1;
}

static void test_every_task_runs_once_within_the_width(void **state)
{
    (void)state;
    run_state s;
    fresh(&s);
    s.takes = apr_time_from_msec(2);
    int started = -1;
    assert_int_equal(us_fanout_run(pool, TASKS, 4, task, &s, tick, &s,
                                   apr_time_from_msec(1), &started), APR_SUCCESS);
    assert_int_equal(started, TASKS);
    for (int i = 0; i < TASKS; i++)
        assert_int_equal(s.ran[i], 1);
    assert_true(s.most_at_once >= 1 && s.most_at_once <= 4);
    assert_true(s.ticks >= 1);
}

static void test_no_task_no_thread(void **state)
{
    (void)state;
    run_state s;
    fresh(&s);
    int started = -1;
    assert_int_equal(us_fanout_run(pool, 0, 4, task, &s, NULL, NULL, 0, &started), APR_SUCCESS);
    assert_int_equal(started, 0);
}

static void test_a_task_that_asks_to_stop_starts_no_more(void **state)
{
    (void)state;
    run_state s;
    fresh(&s);
    s.halt_at = 3;
    int started = -1;
    assert_int_equal(us_fanout_run(pool, TASKS, 1, task, &s, NULL, NULL, 0, &started),
                     APR_SUCCESS);
    assert_int_equal(started, 4); /* one lane: in order, none after task 3 */
    for (int i = 0; i < TASKS; i++)
        assert_int_equal(s.ran[i], i <= 3);
}

static void test_a_tick_that_asks_to_stop_starts_no_more(void **state)
{
    (void)state;
    run_state s;
    fresh(&s);
    s.takes = apr_time_from_msec(20);
    s.halt_after_ticks = 1;
    int started = -1;
    assert_int_equal(us_fanout_run(pool, TASKS, 2, task, &s, tick, &s,
                                   apr_time_from_msec(5), &started), APR_SUCCESS);
    assert_true(started >= 1 && started <= 4);
    int ran = 0;
    for (int i = 0; i < TASKS; i++)
        ran += (int)s.ran[i];
    assert_int_equal(ran, started);
}

/* No thread can start in this process while it is in a pids cgroup (v1) of
 * its own whose limit is what it runs now, as under a host's process limit. */
#define PIDS_ROOT "/sys/fs/cgroup/pids"

static int write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    int ok = fputs(text, f) >= 0;
    return fclose(f) == 0 && ok ? 0 : -1;
}

/* path's first line, without its newline; NULL when unreadable */
static char *read_line(const char *path, char *buf, int len)
{
    FILE *f = fopen(path, "r");
    char *line = f != NULL ? fgets(buf, len, f) : NULL;
    if (f != NULL)
        fclose(f);
    if (line != NULL)
        line[strcspn(line, "\n")] = '\0';
    return line;
}

/* The pids group this process is in ("/" for the root), or NULL. */
static const char *pids_group_now(void)
{
    char line[512];
    const char *group = NULL;
    FILE *f = fopen("/proc/self/cgroup", "r");
    while (f != NULL && group == NULL && fgets(line, sizeof(line), f) != NULL) {
        char *c = strstr(line, ":pids:");
        if (c != NULL) {
            c[strcspn(c, "\n")] = '\0';
            group = apr_pstrdup(pool, c + strlen(":pids:"));
        }
    }
    if (f != NULL)
        fclose(f);
    return group;
}

static int move_to(const char *group)
{
    return write_text(apr_pstrcat(pool, group, "/cgroup.procs", NULL),
                      apr_ltoa(pool, (long)getpid()));
}

/* Moves this process into a new full group: its path, or NULL when none
 * can be made (not root, no such hierarchy) and the process did not move. */
static const char *enter_full_group(const char *home)
{
    char current[64];
    const char *group = apr_psprintf(pool, PIDS_ROOT "/us-unit-fanout-%ld", (long)getpid());
    if (access(PIDS_ROOT "/cgroup.procs", W_OK) != 0 || mkdir(group, 0755) != 0)
        return NULL;
    if (move_to(group) == 0 &&
        read_line(apr_pstrcat(pool, group, "/pids.current", NULL), current,
                  sizeof(current)) != NULL &&
        write_text(apr_pstrcat(pool, group, "/pids.max", NULL), current) == 0)
        return group;
    move_to(home);
    rmdir(group);
    return NULL;
}

static void test_without_threads_the_tasks_run_on_the_calling_thread(void **state)
{
    (void)state;
    const char *home = pids_group_now();
    const char *group = home != NULL
        ? enter_full_group(apr_pstrcat(pool, PIDS_ROOT, home, NULL)) : NULL;
    if (group == NULL)
        skip(); /* no writable pids cgroup here */
    run_state s;
    fresh(&s);
    s.halt_at = 30;
    int started = -1;
    apr_status_t rv = us_fanout_run(pool, TASKS, 4, task, &s, tick, &s,
                                    apr_time_from_sec(10), &started);
    int back = move_to(apr_pstrcat(pool, PIDS_ROOT, home, NULL)); /* before any assertion */
    int removed = rmdir(group);
    assert_int_equal(back, 0);
    assert_int_equal(removed, 0);
    assert_int_equal(rv, APR_EAGAIN); /* the threads' creation's */
    assert_int_equal(started, 31);    /* in order, none after the one that stopped */
    for (int i = 0; i < TASKS; i++) {
        assert_int_equal(s.ran[i], i <= 30);
        if (i <= 30)
            assert_true(apr_os_thread_equal(s.on[i], apr_os_thread_current()));
    }
    assert_int_equal(s.ticks, 31); /* after each task */
    assert_int_equal(s.most_at_once, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_task_runs_once_within_the_width),
        cmocka_unit_test(test_no_task_no_thread),
        cmocka_unit_test(test_a_task_that_asks_to_stop_starts_no_more),
        cmocka_unit_test(test_a_tick_that_asks_to_stop_starts_no_more),
        cmocka_unit_test(test_without_threads_the_tasks_run_on_the_calling_thread),
    };
    return fixture_run("us_fanout", tests, NULL, NULL);
}

/*
 * us_fanout.h - running n independent tasks on up to `width` threads of
 * their own while the calling thread waits for them and "ticks" (renews a
 * lease, checks a deadline). Each thread has a pool of its own, with its
 * own allocator (APR pools are not thread-safe), created by the caller and
 * cleared after every task: a task keeps nothing in it. Tasks are started
 * in index order; once a task or a tick asks to stop, no further task
 * starts, and the call still returns only after every started one did.
 */
#ifndef US_FANOUT_H
#define US_FANOUT_H

#include <apr_pools.h>
#include <apr_time.h>

/* Runs task i in pool p (one thread's, cleared after it); nonzero: start no
 * more tasks. */
typedef int (*us_fanout_task)(void *arg, int i, apr_pool_t *p);

/* Called on the calling thread after each task ends and at least every
 * `every` while tasks run; nonzero: start no more tasks. */
typedef int (*us_fanout_tick)(void *arg);

/* Runs tasks 0..n-1 (n >= 0) on min(width, n) threads (width >= 1).
 * *started (may be NULL) is how many tasks ran. Returns once every started
 * task has returned. A thread that cannot be created leaves its tasks to
 * the others; when none can be, the tasks run one after the other on the
 * calling thread, tick called after each, and the status of the failed
 * thread creation is returned (APR_SUCCESS otherwise). Out of memory, it
 * may return with fewer tasks run than a stop explains (*started). tick
 * may be NULL. The threads and pools are gone on return. */
apr_status_t us_fanout_run(apr_pool_t *p, int n, int width, us_fanout_task task, void *arg,
                           us_fanout_tick tick, void *tick_arg, apr_interval_time_t every,
                           int *started);

#endif

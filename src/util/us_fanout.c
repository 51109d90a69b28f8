/* us_fanout.c - n tasks on up to width threads (us_fanout.h). */
#include "us_fanout.h"

#include <apr_allocator.h>
#include <apr_thread_cond.h>
#include <apr_thread_mutex.h>
#include <apr_thread_proc.h>

typedef struct {
    apr_thread_mutex_t *lock;
    apr_thread_cond_t *cond; /* a task ended or a thread left */
    us_fanout_task task;
    void *arg;
    int n, next, running, stop, started;
} fanout;

typedef struct {
    fanout *f;
    apr_pool_t *p;
} lane;

static void *APR_THREAD_FUNC lane_run(apr_thread_t *thd, void *data)
{
    lane *l = data;
    fanout *f = l->f;
    apr_thread_mutex_lock(f->lock);
    while (!f->stop && f->next < f->n) {
        int i = f->next++;
        f->started++;
        apr_thread_mutex_unlock(f->lock);
        int halt = f->task(f->arg, i, l->p);
        apr_pool_clear(l->p);
        apr_thread_mutex_lock(f->lock);
        if (halt)
            f->stop = 1;
        apr_thread_cond_signal(f->cond);
    }
    f->running--;
    apr_thread_cond_signal(f->cond);
    apr_thread_mutex_unlock(f->lock);
    (void)thd;
    return NULL; /* not apr_thread_exit: the caller joins and owns the pools */
}

/* The tasks one after the other on the calling thread, tick called after
 * each: what the lanes would have done, had a thread started. */
static void run_inline(fanout *f, apr_pool_t *p, us_fanout_tick tick, void *tick_arg)
{
    while (!f->stop && f->next < f->n) {
        f->started++;
        int halt = f->task(f->arg, f->next++, p);
        apr_pool_clear(p);
        if (tick && tick(tick_arg))
            halt = 1;
        f->stop = halt;
    }
}

/* A pool with an allocator of its own, a child of parent (destroyed with it). */
static apr_status_t lane_pool(apr_pool_t *parent, apr_pool_t **out)
{
    apr_allocator_t *a;
    apr_status_t rv = apr_allocator_create(&a);
    if (rv != APR_SUCCESS)
        return rv;
    rv = apr_pool_create_ex(out, parent, NULL, a);
    if (rv != APR_SUCCESS) {
        apr_allocator_destroy(a);
        return rv;
    }
    apr_allocator_owner_set(a, *out);
    return APR_SUCCESS;
}

apr_status_t us_fanout_run(apr_pool_t *p, int n, int width, us_fanout_task task, void *arg,
                           us_fanout_tick tick, void *tick_arg, apr_interval_time_t every,
                           int *started)
{
    apr_pool_t *fp;
    apr_status_t rv, first_error = APR_SUCCESS;
    int lanes = width < n ? width : n;
    if (started)
        *started = 0;
    if (lanes < 1)
        return APR_SUCCESS;
    if ((rv = apr_pool_create(&fp, p)) != APR_SUCCESS)
        return rv;
    fanout *f = apr_pcalloc(fp, sizeof(*f));
    apr_thread_t **threads = apr_pcalloc(fp, sizeof(apr_thread_t *) * (apr_size_t)lanes);
    f->task = task;
    f->arg = arg;
    f->n = n;
    if ((rv = apr_thread_mutex_create(&f->lock, APR_THREAD_MUTEX_DEFAULT, fp)) != APR_SUCCESS ||
        (rv = apr_thread_cond_create(&f->cond, fp)) != APR_SUCCESS) {
        apr_pool_destroy(fp);
        return rv;
    }
    int created = 0;
    for (int i = 0; i < lanes; i++) {
        lane *l = apr_pcalloc(fp, sizeof(*l));
        l->f = f;
        rv = lane_pool(fp, &l->p);
        apr_thread_mutex_lock(f->lock);
        f->running++;
        apr_thread_mutex_unlock(f->lock);
        if (rv == APR_SUCCESS)
            rv = apr_thread_create(&threads[created], NULL, lane_run, l, fp);
        if (rv != APR_SUCCESS) {
            apr_thread_mutex_lock(f->lock);
            f->running--;
            apr_thread_mutex_unlock(f->lock);
            first_error = first_error != APR_SUCCESS ? first_error : rv;
            continue;
        }
        created++;
    }
    if (!created) {
        apr_pool_t *ip;
        if (apr_pool_create(&ip, fp) == APR_SUCCESS)
            run_inline(f, ip, tick, tick_arg);
    }
    apr_thread_mutex_lock(f->lock);
    while (f->running > 0) {
        apr_thread_cond_timedwait(f->cond, f->lock, every > 0 ? every : apr_time_from_sec(1));
        if (tick) {
            apr_thread_mutex_unlock(f->lock);
            int halt = tick(tick_arg);
            apr_thread_mutex_lock(f->lock);
            if (halt)
                f->stop = 1;
        }
    }
    int ran = f->started;
    apr_thread_mutex_unlock(f->lock);
    for (int i = 0; i < created; i++) {
        apr_status_t trv;
        apr_thread_join(&trv, threads[i]);
    }
    apr_pool_destroy(fp);
    if (started)
        *started = ran;
    return created ? APR_SUCCESS : first_error;
}

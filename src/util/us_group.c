/*
 * us_group.c - see us_group.h. One mutex guards the queue and the running
 * flag; followers sleep on one condition, broadcast after every batch
 * (each checks its own item's done flag).
 */
#include "us_group.h"

#include <apr_thread_cond.h>
#include <apr_thread_mutex.h>

struct us_group {
    apr_thread_mutex_t *mu;
    apr_thread_cond_t *cv;
    us_group_item *head, *tail;
    int running;
    int max;
    unsigned long batches, items;
};

apr_status_t us_group_create(us_group **out, apr_pool_t *p, int max)
{
    us_group *g = apr_pcalloc(p, sizeof(*g));
    apr_status_t rv = apr_thread_mutex_create(&g->mu, APR_THREAD_MUTEX_DEFAULT, p);
    if (rv == APR_SUCCESS)
        rv = apr_thread_cond_create(&g->cv, p);
    if (rv != APR_SUCCESS)
        return rv;
    g->max = max < 1 ? 1 : max > US_GROUP_MAX ? US_GROUP_MAX : max;
    *out = g;
    return APR_SUCCESS;
}

/* Takes up to g->max items off the queue's head into items. */
static int take(us_group *g, us_group_item **items)
{
    int n = 0;
    while (g->head && n < g->max) {
        items[n++] = g->head;
        g->head = g->head->next;
    }
    if (!g->head)
        g->tail = NULL;
    return n;
}

int us_group_run(us_group *g, us_group_item *me, us_group_fn fn, void *ctx)
{
    us_group_item *items[US_GROUP_MAX];

    apr_thread_mutex_lock(g->mu);
    me->rc = me->done = 0;
    me->next = NULL;
    if (g->tail)
        g->tail->next = me;
    else
        g->head = me;
    g->tail = me;
    while (!me->done) {
        if (g->running) {
            apr_thread_cond_wait(g->cv, g->mu);
            continue;
        }
        g->running = 1;
        int n = take(g, items);
        apr_thread_mutex_unlock(g->mu);
        fn(ctx, items, n);
        apr_thread_mutex_lock(g->mu);
        for (int i = 0; i < n; i++)
            items[i]->done = 1;
        g->batches++;
        g->items += (unsigned long)n;
        g->running = 0;
        apr_thread_cond_broadcast(g->cv);
    }
    apr_thread_mutex_unlock(g->mu);
    return me->rc;
}

void us_group_counts(us_group *g, unsigned long *batches, unsigned long *items)
{
    apr_thread_mutex_lock(g->mu);
    *batches = g->batches;
    *items = g->items;
    apr_thread_mutex_unlock(g->mu);
}

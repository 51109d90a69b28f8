/*
 * us_group.c - see us_group.h. One mutex guards the queue and the running
 * flag. Each waiting caller sleeps on its item's own semaphore, posted
 * once: when a batch has run its item, or when the batch that ended hands
 * the next one to it (the queue's head) - never for another caller's
 * batch, so a batch's end wakes its own callers and at most one more.
 */
#include "us_group.h"

#include <apr_thread_mutex.h>
#include <errno.h>

struct us_group {
    apr_thread_mutex_t *mu;
    us_group_item *head, *tail;
    int running;                   /* a batch is running */
    int max;
    unsigned long batches, items;
};

apr_status_t us_group_create(us_group **out, apr_pool_t *p, int max)
{
    us_group *g = apr_pcalloc(p, sizeof(*g));
    apr_status_t rv = apr_thread_mutex_create(&g->mu, APR_THREAD_MUTEX_DEFAULT, p);
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

static void sleep_on(us_group_item *me)
{
    while (sem_wait(&me->wake) != 0 && errno == EINTR)
        ;
}

int us_group_run(us_group *g, us_group_item *me, us_group_fn fn, void *ctx)
{
    us_group_item *items[US_GROUP_MAX];
    us_group_item *next = NULL;

    me->rc = me->done = me->lead = 0;
    me->next = NULL;
    if (sem_init(&me->wake, 0, 0) != 0) {
        /* no semaphore: a batch of its own, alone */
        fn(ctx, &me, 1);
        return me->rc;
    }
    apr_thread_mutex_lock(g->mu);
    if (g->tail)
        g->tail->next = me;
    else
        g->head = me;
    g->tail = me;
    int lead = !g->running;
    if (lead)
        g->running = me->lead = 1;
    apr_thread_mutex_unlock(g->mu);

    /* A follower reads nothing of its item before the post: a batch may
     * set done meanwhile and post just after, and a caller that returned
     * on seeing done would be gone when the post comes. */
    if (!lead)
        sleep_on(me); /* done, or handed the next batch (both set before the post) */
    while (!me->done) {
        /* leading: while its own item waits (a full queue before it) */
        apr_thread_mutex_lock(g->mu);
        int n = take(g, items);
        apr_thread_mutex_unlock(g->mu);
        fn(ctx, items, n);
        apr_thread_mutex_lock(g->mu);
        for (int i = 0; i < n; i++)
            items[i]->done = 1;
        g->batches++;
        g->items += (unsigned long)n;
        /* this caller leads on while its own item waits (a full queue
         * before it); else the queue's head leads the next batch */
        next = NULL;
        if (me->done) {
            me->lead = 0;
            if (g->head) {
                next = g->head;
                next->lead = 1;
            } else {
                g->running = 0;
            }
        }
        apr_thread_mutex_unlock(g->mu);
        /* after the post an item may be gone (its caller returned) */
        for (int i = 0; i < n; i++)
            if (items[i] != me)
                sem_post(&items[i]->wake);
        if (next)
            sem_post(&next->wake);
    }
    sem_destroy(&me->wake);
    return me->rc;
}

void us_group_counts(us_group *g, unsigned long *batches, unsigned long *items)
{
    apr_thread_mutex_lock(g->mu);
    *batches = g->batches;
    *items = g->items;
    apr_thread_mutex_unlock(g->mu);
}

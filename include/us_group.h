/*
 * us_group.h - combining concurrent calls into one batch (leader and
 * followers). A caller queues its item; if no batch is running it becomes
 * the leader, takes up to `max` queued items (its own among the first) and
 * runs them all in one call of the batch function on its own resources,
 * while later callers queue for the next batch. Each caller returns its own
 * item's result. Used to share one database commit among concurrent
 * writes whose transactions would otherwise wait for each other's commit.
 */
#ifndef US_GROUP_H
#define US_GROUP_H

#include <apr_pools.h>
#include <semaphore.h>

typedef struct us_group us_group;

typedef struct us_group_item {
    void *arg;                  /* the caller's request */
    int rc;                     /* its result, set by the batch function */
    int done;
    struct us_group_item *next; /* the queue's */
    int lead;                   /* handed the next batch */
    sem_t wake;                 /* posted once: done, or to lead */
} us_group_item;

/* Runs items[0..n) (n >= 1) and sets each one's rc. ctx is the leader's. */
typedef void (*us_group_fn)(void *ctx, us_group_item *const *items, int n);

#define US_GROUP_MAX 64

/* A group of at most max (1..US_GROUP_MAX) items per batch, allocated in p;
 * its mutex and condition are cleaned up with p. */
apr_status_t us_group_create(us_group **out, apr_pool_t *p, int max);

/* Queues the caller's item (its arg set, the rest zero; it lives on the
 * caller's stack), waits until a batch (possibly run by this caller with fn
 * and ctx) has run it, and returns its rc. A waiting caller is woken only
 * when its own item is done or the next batch is handed to it. */
int us_group_run(us_group *g, us_group_item *item, us_group_fn fn, void *ctx);

/* Batches run so far, and items in them (for tests and benchmarks). */
void us_group_counts(us_group *g, unsigned long *batches, unsigned long *items);

#endif

/*
 * us_dirsync.c - see us_dirsync.h. Each directory being synced has an entry
 * with two generation counters: `started` counts fsyncs begun, `finished`
 * the last one completed. A caller needs the fsync numbered started + 1 at
 * the time it takes its ticket (any earlier one may have begun before its
 * change): at the end it waits for a running one to end, then either finds
 * its generation done by another caller or runs it itself for everyone
 * waiting. A ticket holds its entry, so the counters outlive the gap
 * between begin and end. Entries are kept for reuse once their last user
 * is gone (their condition variable comes from a pool, which frees nothing
 * until destroyed): there are never more than directories synced at once.
 */
#include "us_dirsync.h"
#include "us_lasting_pool.h"

#include <apr_atomic.h>
#include <apr_thread_cond.h>
#include <apr_thread_mutex.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct entry {
    char *dir;
    unsigned long started, finished;
    unsigned long failed_gen;      /* the last generation whose fsync failed */
    apr_status_t failed_rv;
    int running;
    int users;                     /* callers holding this entry */
    apr_thread_cond_t *done;
    struct entry *next;
} entry;

apr_status_t us_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        return APR_FROM_OS_ERROR(errno);
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    return rc == 0 ? APR_SUCCESS : APR_FROM_OS_ERROR(e);
}

/* The lock of everything below, and the pool of the entries (used under
 * it), both made by the first caller (apr_atomic_casptr picks one maker). */
static volatile void *mu;
static apr_pool_t *entry_pool;
/* kept for the leak checker (see us_lasting_pool.h); volatile: a store that
 * nobody reads is not optimised away */
static apr_allocator_t *volatile entry_allocator;
static entry *entries;       /* in use */
static entry *spare;         /* kept for reuse */
static volatile apr_uint32_t syncs;
static apr_status_t (*sync_op)(const char *dir) = us_fsync_dir;

/* Locks mu, making it first if need be; NULL when it cannot be made. */
static apr_thread_mutex_t *lock(void)
{
    apr_thread_mutex_t *m = apr_atomic_casptr(&mu, NULL, NULL);
    if (!m) {
        apr_allocator_t *a;
        apr_pool_t *p;
        if (us_lasting_pool_create(&p, &a) != APR_SUCCESS)
            return NULL;
        if (apr_thread_mutex_create(&m, APR_THREAD_MUTEX_DEFAULT, p) != APR_SUCCESS) {
            apr_pool_destroy(p);
            return NULL;
        }
        /* held before it is published: whoever sees it waits until
         * entry_pool is set */
        apr_thread_mutex_lock(m);
        apr_thread_mutex_t *won = apr_atomic_casptr(&mu, m, NULL);
        if (won) { /* another thread made it first */
            apr_thread_mutex_unlock(m);
            apr_pool_destroy(p);
            m = won;
        }
        else {
            entry_pool = p;
            entry_allocator = a;
            return m;
        }
    }
    apr_thread_mutex_lock(m);
    return m;
}

void us_dirsync_set_op(apr_status_t (*op)(const char *dir))
{
    sync_op = op ? op : us_fsync_dir;
}

unsigned long us_dirsync_count(void)
{
    return apr_atomic_read32(&syncs);
}

/* Under mu. NULL when out of memory. */
static entry *entry_get(const char *dir)
{
    entry *e = entries;
    while (e && strcmp(e->dir, dir) != 0)
        e = e->next;
    if (!e) {
        char *copy = strdup(dir);
        if (!copy)
            return NULL;
        if (spare) {
            e = spare;
            spare = e->next;
        }
        else {
            e = apr_pcalloc(entry_pool, sizeof(*e));
            if (apr_thread_cond_create(&e->done, entry_pool) != APR_SUCCESS) {
                free(copy);
                return NULL; /* e stays in the pool, unused */
            }
        }
        apr_thread_cond_t *done = e->done;
        memset(e, 0, sizeof(*e));
        e->done = done;
        e->dir = copy;
        e->next = entries;
        entries = e;
    }
    e->users++;
    return e;
}

/* Under mu: the last caller hands the entry back for reuse. */
static void entry_put(entry *e)
{
    if (--e->users > 0)
        return;
    for (entry **pp = &entries; *pp; pp = &(*pp)->next)
        if (*pp == e) {
            *pp = e->next;
            break;
        }
    free(e->dir);
    e->dir = NULL;
    e->next = spare;
    spare = e;
}

void us_dirsync_begin(const char *dir, us_dirsync_ticket *t)
{
    apr_thread_mutex_t *m = lock();
    entry *e = m ? entry_get(dir) : NULL;
    t->entry = e;
    t->dir = dir;
    t->need = e ? e->started + 1 : 0;
    if (m)
        apr_thread_mutex_unlock(m);
}

apr_status_t us_dirsync_end(us_dirsync_ticket *t)
{
    entry *e = t->entry;
    if (!e) /* out of memory at begin: an fsync of our own */
        return sync_op(t->dir);
    apr_thread_mutex_t *m = lock(); /* made at begin: e exists */
    t->entry = NULL;
    unsigned long need = t->need;
    while (e->finished < need) {
        if (e->running) {
            apr_thread_cond_wait(e->done, m);
            continue;
        }
        /* nobody is syncing: run the next generation (>= need) for all */
        unsigned long gen = ++e->started;
        e->running = 1;
        apr_atomic_inc32(&syncs);
        apr_thread_mutex_unlock(m);
        apr_status_t rv = sync_op(e->dir);
        apr_thread_mutex_lock(m);
        e->running = 0;
        e->finished = gen;
        if (rv != APR_SUCCESS) {
            e->failed_gen = gen;
            e->failed_rv = rv;
        }
        apr_thread_cond_broadcast(e->done);
    }
    /* a failure of any fsync that began after the ticket is ours too */
    apr_status_t rv = e->failed_gen >= need ? e->failed_rv : APR_SUCCESS;
    entry_put(e);
    apr_thread_mutex_unlock(m);
    return rv;
}

void us_dirsync_cancel(us_dirsync_ticket *t)
{
    if (!t->entry)
        return;
    apr_thread_mutex_t *m = lock(); /* made at begin: the ticket has an entry */
    entry_put(t->entry);
    t->entry = NULL;
    apr_thread_mutex_unlock(m);
}

apr_status_t us_dirsync(const char *dir)
{
    us_dirsync_ticket t;
    us_dirsync_begin(dir, &t);
    return us_dirsync_end(&t);
}

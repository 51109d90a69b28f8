/*
 * us_dirsync.c - see us_dirsync.h. Each directory being synced has an entry
 * with two generation counters: `started` counts fsyncs begun, `finished`
 * the last one completed. A caller needs the fsync numbered started + 1 at
 * the time it takes its ticket (any earlier one may have begun before its
 * change): at the end it waits for a running one to end, then either finds
 * its generation done by another caller or runs it itself for everyone
 * waiting. A ticket holds its entry, so the counters outlive the gap
 * between begin and end. Entries are kept for reuse once their last user
 * is gone: there are never more than directories synced at once.
 *
 * POSIX threads rather than APR's: the lock is static (APR mutexes have
 * no static initialiser, and making one lazily needs a publication that
 * thread checkers cannot see through APR's uninstrumented atomics).
 */
#include "us_dirsync.h"
#include "us_fsync.h"

#include <apr_atomic.h>

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct entry {
    char *dir;
    unsigned long started, finished;
    unsigned long failed_gen;      /* the last generation whose fsync failed */
    apr_status_t failed_rv;
    int running;
    int users;                     /* callers holding this entry */
    pthread_cond_t done;           /* initialised once, kept through reuse */
    struct entry *next;
} entry;

/* The lock of everything below. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static entry *entries;       /* in use */
static entry *spare;         /* kept for reuse */
static volatile apr_uint32_t syncs;
static apr_status_t (*sync_op)(const char *dir) = us_fsync_dir;

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
        else if (!(e = calloc(1, sizeof(*e))) || pthread_cond_init(&e->done, NULL) != 0) {
            free(e);
            free(copy);
            return NULL;
        }
        e->started = e->finished = e->failed_gen = 0;
        e->failed_rv = APR_SUCCESS;
        e->running = e->users = 0;
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
    pthread_mutex_lock(&mu);
    entry *e = entry_get(dir);
    t->entry = e;
    t->dir = dir;
    t->need = e ? e->started + 1 : 0;
    pthread_mutex_unlock(&mu);
}

apr_status_t us_dirsync_end(us_dirsync_ticket *t)
{
    entry *e = t->entry;
    if (!e) /* out of memory at begin: an fsync of our own */
        return sync_op(t->dir);
    pthread_mutex_lock(&mu);
    t->entry = NULL;
    unsigned long need = t->need;
    while (e->finished < need) {
        if (e->running) {
            pthread_cond_wait(&e->done, &mu);
            continue;
        }
        /* nobody is syncing: run the next generation (>= need) for all */
        unsigned long gen = ++e->started;
        e->running = 1;
        apr_atomic_inc32(&syncs);
        pthread_mutex_unlock(&mu);
        apr_status_t rv = sync_op(e->dir);
        pthread_mutex_lock(&mu);
        e->running = 0;
        e->finished = gen;
        if (rv != APR_SUCCESS) {
            e->failed_gen = gen;
            e->failed_rv = rv;
        }
        pthread_cond_broadcast(&e->done);
    }
    /* a failure of any fsync that began after the ticket is ours too */
    apr_status_t rv = e->failed_gen >= need ? e->failed_rv : APR_SUCCESS;
    entry_put(e);
    pthread_mutex_unlock(&mu);
    return rv;
}

void us_dirsync_cancel(us_dirsync_ticket *t)
{
    if (!t->entry)
        return;
    pthread_mutex_lock(&mu);
    entry_put(t->entry);
    t->entry = NULL;
    pthread_mutex_unlock(&mu);
}

apr_status_t us_dirsync(const char *dir)
{
    us_dirsync_ticket t;
    us_dirsync_begin(dir, &t);
    return us_dirsync_end(&t);
}

/* us_ingest_worker.c - the ingest worker threads of a process: each
 * claims a closed session and ingests it (us_ingest_once), naps between
 * rounds until a close pokes it or its poll comes round, backs off with
 * the others while the file storage is down, and, between sessions,
 * reclaims dead workers' claims, empties the file trash and clears late
 * uploads. */
#include "us_ingest.h"
#include "us_files_sweep.h"
#include "us_worker_link.h"

#include <apr_atomic.h>
#include <apr_strings.h>
#include <apr_thread_cond.h>
#include <apr_thread_mutex.h>
#include <apr_thread_proc.h>

#include <stdio.h>
#include <string.h>

struct us_ingester {
    const us_ingest_config *cfg;
    apr_thread_t **threads;
    int nthreads;
    volatile apr_uint32_t stop; /* set once by us_ingest_stop (apr_atomic) */
    /* the storage outage every worker of the process backs off from: tries
     * in a row that found it down, and no claim before not_before */
    apr_thread_mutex_t *outage_lock;
    int outages;
    apr_time_t not_before;
    /* naps (nap): idle workers wait on `wake` (us_ingest_poke signals it),
     * the others on `calm`; pokes not yet taken (at most nthreads, more
     * only through a race: one claim more) and the workers waiting on
     * `wake` (both apr_atomic) */
    apr_thread_mutex_t *nap_lock;
    apr_thread_cond_t *wake, *calm;
    volatile apr_uint32_t pokes;
    volatile apr_uint32_t listening;
};

typedef struct {
    us_ingester *ing;
    int index;
} worker_arg;


apr_interval_time_t us_ingest_retry_delay(int failures)
{
    apr_interval_time_t d = apr_time_from_sec(1);
    for (int i = 1; i < failures && d < US_INGEST_RETRY_MAX; i++)
        d *= 2;
    return d < US_INGEST_RETRY_MAX ? d : US_INGEST_RETRY_MAX;
}

/* Takes one poke if there is one. */
static int take_poke(us_ingester *ing)
{
    apr_uint32_t v = apr_atomic_read32(&ing->pokes);
    while (v > 0) {
        apr_uint32_t seen = apr_atomic_cas32(&ing->pokes, v - 1, v);
        if (seen == v)
            return 1;
        v = seen;
    }
    return 0;
}

/* Sleeps up to t, ending at once when asked to stop and, once `deaf` of it
 * has passed, when a poke is (or was already) there: returns 1 then, having
 * taken it. deaf >= t: only the stop ends it early. A worker counts itself
 * in `listening` before it looks for a poke, a poker counts its poke before
 * it looks at `listening` (both sequentially consistent), and the signal is
 * sent under the mutex the listener waits with: no poke is missed. */
static int nap(us_ingester *ing, apr_interval_time_t t, apr_interval_time_t deaf)
{
    apr_time_t now = apr_time_now(), end = now + t, hear = now + deaf;
    int poked = 0;
    apr_thread_mutex_lock(ing->nap_lock);
    while (!apr_atomic_read32(&ing->stop) && now < hear && now < end) {
        (void)apr_thread_cond_timedwait(ing->calm, ing->nap_lock, (hear < end ? hear : end) - now);
        now = apr_time_now();
    }
    if (now < end) {
        apr_atomic_inc32(&ing->listening);
        while (!apr_atomic_read32(&ing->stop) && !(poked = take_poke(ing)) && now < end) {
            (void)apr_thread_cond_timedwait(ing->wake, ing->nap_lock, end - now);
            now = apr_time_now();
        }
        apr_atomic_dec32(&ing->listening);
    }
    apr_thread_mutex_unlock(ing->nap_lock);
    return poked;
}

void us_ingest_poke(us_ingester *ing)
{
    /* a burst of closes: the pokes already there stand for it */
    if (!ing || apr_atomic_read32(&ing->pokes) >= (apr_uint32_t)ing->nthreads)
        return;
    apr_atomic_inc32(&ing->pokes);
    if (!apr_atomic_read32(&ing->listening)) /* the next nap takes it */
        return;
    apr_thread_mutex_lock(ing->nap_lock);
    apr_thread_cond_signal(ing->wake);
    apr_thread_mutex_unlock(ing->nap_lock);
}

apr_interval_time_t us_ingest_poke_gap(int fruitless, apr_interval_time_t poll)
{
    apr_interval_time_t g = 0;
    if (fruitless > 0)
        g = US_INGEST_POKE_GAP;
    for (int i = 1; i < fruitless && g < poll; i++)
        g *= 2;
    return g < poll ? g : poll;
}

/* How long the workers still wait for the storage to come back (0: go). */
static apr_interval_time_t outage_wait(us_ingester *ing)
{
    apr_thread_mutex_lock(ing->outage_lock);
    apr_interval_time_t w = ing->not_before - apr_time_now();
    apr_thread_mutex_unlock(ing->outage_lock);
    return w > 0 ? w : 0;
}

/* After a try: an outage pushes every worker's next try back (1 s,
 * doubled per try in a row, capped), so that the workers of every process
 * do not hammer a store that is coming back; a session ingested ends it. */
static void outage_note(us_ingester *ing, const char *owner, long n, int claimed)
{
    apr_interval_time_t d = 0;
    apr_thread_mutex_lock(ing->outage_lock);
    if (n == US_INGEST_STORAGE_DOWN) {
        d = us_ingest_retry_delay(++ing->outages);
        ing->not_before = apr_time_now() + d;
    }
    else if (n >= 0 && claimed)
        ing->outages = 0;
    apr_thread_mutex_unlock(ing->outage_lock);
    if (d)
        us_log(ing->cfg->log, US_LOG_INFO, 0, 1017, "ingest worker %s: the file storage does not "
               "answer; next try in %d s", owner, (int)apr_time_sec(d));
}

static int stopping(us_ingester *ing)
{
    return apr_atomic_read32(&ing->stop) != 0;
}

/* The trash, this process's abandoned uploads, the late clears and the
 * files without a row. The stop is looked at between the steps: when the
 * store does not answer, each step waits for its own connection attempt
 * (connect_timeout), and a stopping child that takes more than a few
 * seconds is killed by its parent. */
static void sweep_leftovers(us_ingester *ing, us_db *db, apr_pool_t *p, us_late_cursor *late_at,
                            const us_files_sweep_config *sweep)
{
    const us_ingest_config *cfg = ing->cfg;
    if (stopping(ing))
        return;
    us_ingest_sweep_trash(db, p, cfg, &ing->stop);
    if (stopping(ing))
        return;
    /* a stop cuts its requests short */
    us_storage_tidy(us_storage_stoppable(cfg->storage, p, &ing->stop), p);
    if (stopping(ing))
        return;
    us_ingest_clear_late(db, p, cfg, late_at);
    if (!stopping(ing))
        (void)us_files_sweep(db, p, sweep); /* one round across the nodes */
}

static void *APR_THREAD_FUNC worker(apr_thread_t *thd, void *data)
{
    worker_arg *arg = data;
    us_ingester *ing = arg->ing;
    const us_ingest_config *cfg = ing->cfg;
    apr_pool_t *p, *iter;
    us_db *db = NULL;
    apr_time_t last_reclaim = 0, last_maintenance = 0;
    us_late_cursor late_at;
    int poked = 0, fruitless = 0; /* pokes in a row that found nothing to claim */

    /* a pool of its own: nothing shared with request or config pools */
    apr_pool_create_unmanaged_ex(&p, NULL, NULL);
    apr_pool_create(&iter, p);
    const char *owner = apr_psprintf(p, "%s/%ld/%d", cfg->host, (long)getpid(), arg->index);
    us_worker_link link = { cfg->log, apr_pstrcat(p, "ingest worker ", owner, NULL), 1010, 1041,
                            1042, 0, cfg->metrics };
    memset(&late_at, 0, sizeof(late_at));
    /* the largest file's upload time is part of the grace: an object store
     * may date a multipart object by its start (us_ingest_late_grace) */
    us_files_sweep_config sweep = { cfg->storage, cfg->log,
                                    cfg->files_grace > 0
                                        ? cfg->files_grace
                                        : (US_FILES_SWEEP_LEASES - 1) * cfg->lease +
                                              us_ingest_late_grace(cfg),
                                    cfg->lease, US_FILES_SWEEP_PAGE,
                                    cfg->lease < US_FILES_SWEEP_SECOND_LOOK
                                        ? cfg->lease : US_FILES_SWEEP_SECOND_LOOK,
                                    &ing->stop };
    while (!stopping(ing)) {
        apr_pool_clear(iter);
        if (!db || us_db_worn_out(db)) {
            if (us_worker_connect(&link, p, cfg->store, &db) != US_DB_OK) {
                nap(ing, apr_time_from_sec(5), apr_time_from_sec(5));
                continue;
            }
            /* a failure leaves the default cache: slower, still correct */
            (void)us_db_for_batches(db, iter);
        }
        if (apr_time_now() - last_reclaim > cfg->lease / 4) {
            us_ingest_reclaim_dead(db, iter, cfg);
            if (arg->index == 0) /* one worker per process is enough */
                sweep_leftovers(ing, db, iter, &late_at, &sweep);
            last_reclaim = apr_time_now();
        }
        if (stopping(ing))
            break;
        if (apr_time_now() - last_maintenance >= US_MAINTENANCE_INTERVAL) {
            if (us_db_maintain(db, iter) != US_DB_OK) /* BUSY: another one runs */
                us_log(cfg->log, US_LOG_DEBUG, 0, 1011, "ingest worker %s: maintenance: %s", owner,
                      us_db_error(db));
            last_maintenance = apr_time_now();
        }
        apr_interval_time_t wait = outage_wait(ing);
        if (wait > 0) {
            nap(ing, wait, wait);
            continue;
        }
        if (stopping(ing)) /* no claim to give back at once */
            break;
        int claimed = 0, was_poked = poked;
        long n = us_ingest_once(db, iter, cfg, owner, &ing->stop, &claimed);
        outage_note(ing, owner, n, claimed);
        poked = 0;
        if (claimed)
            fruitless = 0;
        else if (was_poked) /* a close with nothing to ingest (no file) */
            fruitless++;
        /* a store failure (logged where it met it, counted by
         * us_ingest_once), a lost claim, a round cut short */
        if (n < 0 && n != US_INGEST_STORAGE_DOWN)
            nap(ing, apr_time_from_sec(1), apr_time_from_sec(1));
        else if (!claimed) /* idle; after a session (even an empty one) look again at once */
            poked = nap(ing, cfg->poll, us_ingest_poke_gap(fruitless, cfg->poll));
    }
    apr_pool_destroy(p); /* closes the connection */
    (void)thd;
    return NULL; /* not apr_thread_exit: its pthread_exit unwinds without the
                  * sanitizer unpoisoning this frame's stack */
}

apr_status_t us_ingest_start(apr_pool_t *p, const us_ingest_config *cfg, us_ingester **out)
{
    us_ingester *ing = apr_pcalloc(p, sizeof(*ing));
    apr_status_t rv = us_storage_prepare(cfg->storage, p);
    if (us_storage_unavailable(rv)) /* the workers retry what needs it until it answers */
        us_log(cfg->log, US_LOG_WARN, rv, 1014, "ingest: the file storage does not answer; "
               "starting anyway");
    else if (rv != APR_SUCCESS)
        return rv;
    if ((rv = apr_atomic_init(p)) != APR_SUCCESS)
        return rv;
    if ((rv = apr_thread_mutex_create(&ing->outage_lock, APR_THREAD_MUTEX_DEFAULT, p)) != APR_SUCCESS ||
        (rv = apr_thread_mutex_create(&ing->nap_lock, APR_THREAD_MUTEX_DEFAULT, p)) != APR_SUCCESS ||
        (rv = apr_thread_cond_create(&ing->wake, p)) != APR_SUCCESS ||
        (rv = apr_thread_cond_create(&ing->calm, p)) != APR_SUCCESS)
        return rv;
    ing->cfg = cfg;
    ing->threads = apr_pcalloc(p, sizeof(apr_thread_t *) * (apr_size_t)(cfg->threads > 0 ? cfg->threads : 1));
    for (int i = 0; i < cfg->threads; i++) {
        worker_arg *arg = apr_pcalloc(p, sizeof(*arg));
        arg->ing = ing;
        arg->index = i;
        rv = apr_thread_create(&ing->threads[i], NULL, worker, arg, p);
        if (rv != APR_SUCCESS) {
            us_ingest_stop(ing);
            return rv;
        }
        ing->nthreads++;
    }
    *out = ing;
    return APR_SUCCESS;
}

void us_ingest_stop_soon(us_ingester *ing)
{
    if (!ing)
        return;
    apr_atomic_set32(&ing->stop, 1);
    if (ing->nap_lock) { /* set before the lock: a nap sees it or gets the broadcast */
        apr_thread_mutex_lock(ing->nap_lock);
        apr_thread_cond_broadcast(ing->wake);
        apr_thread_cond_broadcast(ing->calm);
        apr_thread_mutex_unlock(ing->nap_lock);
    }
}

void us_ingest_stop(us_ingester *ing)
{
    if (!ing)
        return;
    us_ingest_stop_soon(ing);
    for (int i = 0; i < ing->nthreads; i++) {
        apr_status_t rv;
        apr_thread_join(&rv, ing->threads[i]);
    }
    ing->nthreads = 0;
}

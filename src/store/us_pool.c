/*
 * us_pool.c - a thread-safe pool of store connections per process, for the
 * request handlers; any backend's (us_db_open).
 */
#include "us_store.h"

#include <apr_reslist.h>
#include <apr_strings.h>
#include <apr_thread_mutex.h>

struct us_store {
    apr_pool_t *pool;
    const us_store_cfg *cfg;
    apr_reslist_t *conns;
    int max_conns;
};

/* Why the calling thread's last connection attempt failed: the reslist
 * runs the constructor in the acquiring thread, so it reads its own. */
static _Thread_local char last_err[256];

/* ---- connection pool ------------------------------------------------------ */

/* Each attempt opens apart (us_db_open_apart): a failed attempt's error
 * text would otherwise stay in the store's pool for the process's life, a
 * little more with every request during a database outage. */
static apr_status_t conn_construct(void **resource, void *params, apr_pool_t *pool)
{
    us_store *st = params;
    us_db *db = NULL;
    us_db_rc rc = us_db_open_apart(pool, st->cfg, &db, last_err, sizeof(last_err));
    if (rc != US_DB_OK)
        /* a database away for a moment (a server restarting) is busy, not broken */
        return rc == US_DB_BUSY ? APR_EAGAIN : APR_EGENERAL;
    *resource = db;
    return APR_SUCCESS;
}

static apr_status_t conn_destruct(void *resource, void *params, apr_pool_t *pool)
{
    (void)params;
    (void)pool;
    us_db_close(resource);
    return APR_SUCCESS;
}

/* The connections live in sub-pools of the store's pool, which APR destroys
 * before running ordinary cleanups: destroy the reslist (and with it every
 * connection) in a pre-cleanup, while those sub-pools still exist. */
static apr_status_t store_pre_cleanup(void *data)
{
    us_store *st = data;
    if (st->conns) {
        apr_reslist_destroy(st->conns);
        st->conns = NULL;
    }
    return APR_SUCCESS;
}

apr_status_t us_store_create(apr_pool_t *p, const us_store_cfg *cfg, int max_conns,
                             us_store **out)
{
    apr_allocator_t *alloc;
    apr_thread_mutex_t *mutex;
    apr_pool_t *pool;
    apr_status_t rv;

    /* connections are created from any worker thread: give the pool an
     * allocator of its own, guarded by a mutex */
    if ((rv = apr_allocator_create(&alloc)) != APR_SUCCESS)
        return rv;
    if ((rv = apr_pool_create_ex(&pool, p, NULL, alloc)) != APR_SUCCESS) {
        apr_allocator_destroy(alloc);
        return rv;
    }
    apr_allocator_owner_set(alloc, pool);
    apr_pool_tag(pool, "us_store");
    if ((rv = apr_thread_mutex_create(&mutex, APR_THREAD_MUTEX_DEFAULT, pool)) != APR_SUCCESS)
        return rv;
    apr_allocator_mutex_set(alloc, mutex);

    us_store *st = apr_pcalloc(pool, sizeof(*st));
    st->pool = pool;
    st->cfg = cfg;
    st->max_conns = max_conns;
    rv = apr_reslist_create(&st->conns, 0, max_conns, max_conns, 0,
                            conn_construct, conn_destruct, st, pool);
    if (rv != APR_SUCCESS)
        return rv;
    apr_pool_pre_cleanup_register(pool, st, store_pre_cleanup);
    /* wait (bounded) for a connection rather than failing at once */
    apr_reslist_timeout_set(st->conns, apr_time_from_sec(10));
    *out = st;
    return APR_SUCCESS;
}

int us_store_has_warm_step(const us_store *st)
{
    /* one connection runs everything already, and keeps its cache */
    return st->max_conns >= 2 && us_store_warms(st->cfg);
}

void us_store_warm(us_store *st)
{
    us_db *db = NULL;
    const char *err = NULL;
    if (!us_store_has_warm_step(st) || us_store_acquire(st, &db, &err) != US_DB_OK)
        return;
    (void)us_db_warm(db);
    us_store_release(st, db, 0);
}

us_db_rc us_store_acquire(us_store *st, us_db **db, const char **err)
{
    void *res = NULL;
    last_err[0] = '\0';
    apr_status_t rv = apr_reslist_acquire(st->conns, &res);
    if (rv != APR_SUCCESS) {
        *err = last_err[0] ? last_err : "no database connection available";
        return APR_STATUS_IS_TIMEUP(rv) || APR_STATUS_IS_EAGAIN(rv) ? US_DB_BUSY : US_DB_ERROR;
    }
    *db = res;
    us_db_clear_error(*db);
    return US_DB_OK;
}

void us_store_release(us_store *st, us_db *db, int broken)
{
    if (broken || us_db_worn_out(db))
        apr_reslist_invalidate(st->conns, db);
    else
        apr_reslist_release(st->conns, db);
}

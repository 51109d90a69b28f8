/*
 * us_store_db.h - internals of the SQLite store shared by us_db.c (the
 * connection), us_writer.c (the one-writer-at-a-time queue with group
 * commit) and us_store.c (the queries). Not for use outside src/store/sqlite/
 * and its unit tests.
 */
#ifndef US_STORE_DB_H
#define US_STORE_DB_H

#include <pthread.h>

#include "us_sql.h"
#include "us_store.h"

struct us_writer;

struct us_db {
    apr_pool_t *pool;
    const apr_dbd_driver_t *drv;
    apr_dbd_t *h;
    us_dialect dialect;
    const char *params;            /* which database: writers of the same one batch together */
    struct us_writer *writer;      /* that database's write queue in this process (lazy) */
    const char *wal_path;          /* SQLite in WAL mode: the file us_write syncs */
    apr_dbd_prepared_t *stmt[US_STMT__COUNT];
    const char *err;
};

/* Records the error of driver result rc on db (db->err) and classifies it. */
us_db_rc us_db_fail(us_db *db, int rc, const char *what);

/* The next row of res: US_DB_OK with *row set, US_DB_NOTFOUND after the
 * last one, or the classified error (db->err names the driver's message)
 * when the driver fails to fetch it - never "no more rows" then. (The
 * sqlite3 driver reads every row at select time: its fetches do not fail,
 * the select does.) */
us_db_rc us_db_next_row(us_db *db, apr_pool_t *p, apr_dbd_results_t *res, apr_dbd_row_t **row);

/* Tests: replace apr_dbd_get_row (NULL restores it). */
void us_db_set_get_row(int (*fn)(const apr_dbd_driver_t *drv, apr_pool_t *p,
                                 apr_dbd_results_t *res, apr_dbd_row_t **row, int rownum));

/* Runs a statement outside the prepared set (transaction control). */
us_db_rc us_db_exec(us_db *db, const char *sql);

/* A piece of a write transaction: runs on some connection of the same
 * database (db), inside a transaction it must not open or end itself, and
 * may run more than once (reset outputs at its start). It returns US_DB_OK
 * when its changes should be kept; a logical answer (NOTFOUND, CONFLICT,
 * LIMIT) only when it changed nothing; US_DB_ERROR / US_DB_BUSY undo
 * whatever it did. */
typedef us_db_rc (*us_write_fn)(us_db *db, apr_pool_t *p, void *arg);

/*
 * Runs fn durably: returns its result once the transaction holding its
 * changes has committed (or fn's result when that was not US_DB_OK, or the
 * error that stopped the transaction). Writers of one database in one
 * process queue here; whoever finds no transaction running becomes the
 * leader and runs every queued piece in one transaction - one commit, one
 * WAL sync for all of them (group commit) - while the others wait. Across
 * processes the leaders take an flock on "<database>.lock" first, so SQLite
 * never has to busy-wait (and sleep) for another of our processes.
 * p belongs to the caller; it is used by the leader while the caller waits.
 */
us_db_rc us_write(us_db *db, apr_pool_t *p, us_write_fn fn, void *arg);

/* One queued piece of work (exposed for the unit tests of us_write_batch). */
typedef struct us_write_job {
    us_write_fn fn;
    void *arg;
    apr_pool_t *pool;
    us_db_rc rc;
    const char *err;               /* fn's or the transaction's error, in pool */
    int done;                      /* its batch has ended */
    struct us_write_job *next;
    int lead;                      /* it runs the next batch */
    pthread_cond_t *wake;          /* signalled on done or lead */
} us_write_job;

/* Runs a list of jobs in one transaction on db and sets every job's rc and
 * err. When a piece fails with a store error, all are rolled back and each
 * runs again in a transaction of its own. */
void us_write_batch(us_db *db, us_write_job *jobs);

#endif

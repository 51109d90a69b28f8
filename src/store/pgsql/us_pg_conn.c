/*
 * us_pg_conn.c - the PostgreSQL backend's connections, statements and
 * transactions, through apr_dbd's pgsql driver. Every query is a prepared
 * statement (us_pg_sql.c); writes that span statements run in a
 * transaction of their own (READ COMMITTED), retried on a deadlock (and
 * once on a lock timeout, which is what a deadlock's victim may see).
 *
 * The driver's pitfalls shape this file: selects use random access (its
 * sequential mode sleeps when a query returns no rows and reports errors
 * as "no rows"); NULL reads as "" through apr_dbd_get_entry, so nullable
 * columns are read with apr_dbd_datum_get; errors carry message text only,
 * so the connection's verbosity puts the SQLSTATE in it (us_pg_errors.h);
 * and the driver's check_conn re-establishes a connection underneath
 * (PQreset), losing its prepared statements - so it is never called: a
 * broken connection (libpq's PQstatus) is thrown away and opened again
 * before its next use, its statements prepared anew as they are used.
 */
#include "us_pg_db.h"
#include "us_log.h"
#include "us_pg_errors.h"
#include "us_pg_sql.h"
#include "../us_ops.h"

#include <apr_atomic.h>
#include <apr_dbd.h>
#include <apr_hash.h>
#include <apr_strings.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* ---- errors and connections ------------------------------------------------ */


/* The buffer the last message is not in (the next one may quote it). */
static char *free_errbuf(us_pg_db *db)
{
    return db->err == db->errbuf[0] ? db->errbuf[1] : db->errbuf[0];
}

void us_pg_set_err(us_pg_db *db, const char *fmt, ...)
{
    char *to = free_errbuf(db);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(to, US_PG_ERR_MAX, fmt, ap);
    va_end(ap);
    db->err = to;
}

/* The driver handle's libpq connection. */
static PGconn *pq_of(const us_pg_db *db)
{
    return db->h ? apr_dbd_native_handle(db->conf->drv, db->h) : NULL;
}

/* A failed statement's outcome: BUSY when trying again later may succeed
 * (a deadlock, a lock timeout, a lost connection: the flags say which),
 * else ERROR. The connection's own status tells a lost one too: the driver's
 * check_conn would PQreset it silently, losing its prepared statements. */
us_db_rc us_pg_fail(us_pg_db *db, int rc, const char *what)
{
    const char *msg = db->h ? apr_dbd_error(db->conf->drv, db->h, rc) : NULL;
    char *to = free_errbuf(db);
    int n = snprintf(to, US_PG_ERR_MAX, "%s: ", what);
    n = n < 0 ? 0 : n > US_PG_ERR_MAX - 1 ? US_PG_ERR_MAX - 1 : n;
    us_pg_error_text(msg ? msg : "unknown error", to + n, (size_t)(US_PG_ERR_MAX - n));
    db->err = to;
    us_pg_err_kind kind = us_pg_error_kind(msg);
    db->deadlock = kind == US_PG_ERR_DEADLOCK;
    db->lock_timeout = kind == US_PG_ERR_LOCK_TIMEOUT;
    if (!db->h || kind == US_PG_ERR_BROKEN || PQstatus(pq_of(db)) != CONNECTION_OK) {
        db->broken = 1;
        us_log(db->conf->log, US_LOG_WARN, 0, US_LOGNO_PG_BROKEN,
               "PostgreSQL connection lost, reopened at its next use: %s", db->err);
        return US_DB_BUSY;
    }
    if (kind != US_PG_ERR_OTHER) {
        us_log(db->conf->log, US_LOG_DEBUG, 0, US_LOGNO_PG_BUSY, "store busy: %s", db->err);
        return US_DB_BUSY;
    }
    return US_DB_ERROR;
}

us_db_rc us_pg_exec_sql(us_pg_db *db, const char *sql)
{
    int nrows = 0;
    int rc = apr_dbd_query(db->conf->drv, db->h, &nrows, sql);
    return rc == 0 ? US_DB_OK : us_pg_fail(db, rc, sql);
}

static apr_status_t handle_cleanup(void *data)
{
    us_pg_db *db = data;
    if (db->h) {
        apr_dbd_close(db->conf->drv, db->h);
        db->h = NULL;
    }
    return APR_SUCCESS;
}

/* A refused connection is said at once, then at most once per
 * US_PG_CONNECT_QUIET in this process, with the count of those not said:
 * during an outage every thread of every process tries again on its own.
 * The last message's process and time are one word, changed by one
 * compare-and-swap: of threads refused together, in a child that inherited
 * its parent's word, exactly one says it. */
#define US_PG_CONNECT_QUIET 30 /* seconds */
static volatile apr_uint64_t connect_said; /* pid << 32 | seconds of the last US1111 */
static volatile apr_uint32_t connect_held; /* refusals since, not said */

static void connect_refused(us_pg_db *db)
{
    apr_uint32_t pid = (apr_uint32_t)getpid(), now = (apr_uint32_t)apr_time_sec(apr_time_now());
    apr_uint64_t was = apr_atomic_read64(&connect_said);
    int ours = (apr_uint32_t)(was >> 32) == pid;
    if ((ours && now - (apr_uint32_t)was < US_PG_CONNECT_QUIET) ||
        apr_atomic_cas64(&connect_said, (apr_uint64_t)pid << 32 | now, was) != was) {
        apr_atomic_inc32(&connect_held);
        return;
    }
    /* the refusals held since this process's last message; before its
     * first, the count may be its parent's: not said */
    apr_uint32_t held = apr_atomic_xchg32(&connect_held, 0);
    if (held && ours)
        us_log(db->conf->log, US_LOG_WARN, 0, US_LOGNO_PG_CONNECT, "%s (and %u more times in "
               "this process since the last such message)", db->err, (unsigned)held);
    else
        us_log(db->conf->log, US_LOG_WARN, 0, US_LOGNO_PG_CONNECT, "%s", db->err);
}

static void drop_handle(us_pg_db *db)
{
    if (db->hpool) {
        apr_pool_destroy(db->hpool); /* closes the handle (handle_cleanup) */
        db->hpool = NULL;
    }
    db->h = NULL;
    db->dynamic = NULL; /* its statements were the handle's */
    memset(db->stmt, 0, sizeof(db->stmt));
}

/* Opens the driver handle. Its statements are prepared at their first use
 * (prepared_statement). */
static us_db_rc connect_handle(us_pg_db *db)
{
    const char *oerr = NULL;
    drop_handle(db);
    apr_pool_create(&db->hpool, db->pool);
    apr_pool_tag(db->hpool, "us_pg_handle");
    if (apr_dbd_open_ex(db->conf->drv, db->hpool, db->conf->conninfo, &db->h, &oerr) !=
            APR_SUCCESS || !db->h) {
        us_pg_set_err(db, "cannot connect to PostgreSQL: %s", oerr ? oerr : "unknown error");
        connect_refused(db);
        db->h = NULL;
        drop_handle(db);
        return US_DB_BUSY;
    }
    apr_pool_cleanup_register(db->hpool, db, handle_cleanup, apr_pool_cleanup_null);
    /* every server error then carries its SQLSTATE (us_pg_errors.h) */
    PQsetErrorVerbosity(pq_of(db), PQERRORS_VERBOSE);
    us_db_rc rc = us_pg_exec_sql(db, apr_psprintf(db->hpool, "SET lock_timeout = %d",
                                                  db->conf->lock_timeout_ms));
    if (rc != US_DB_OK)
        drop_handle(db);
    db->broken = rc != US_DB_OK;
    return rc;
}

/* Whether the server ended an idle connection (a restart, an idle
 * timeout, pg_terminate_backend): it sends its FATAL message and closes
 * its end, so the socket is readable while nothing was asked. Anything
 * else a server sends unasked (a parameter's new value after a standby's
 * promotion) costs no more than a new connection. One poll, no round trip. */
static int ended_by_server(us_pg_db *db)
{
    struct pollfd pfd = { .fd = PQsocket(pq_of(db)), .events = POLLIN };
    return pfd.fd < 0 || poll(&pfd, 1, 0) != 0;
}

/* The connection, reopened first when the last use found it broken, or
 * when the server ended it since: outside a transaction nothing is lost by
 * that, and the statement runs instead of failing with a 503. */
us_db_rc us_pg_ready(us_pg_db *db)
{
    if (db->h && !db->broken && !db->in_txn && ended_by_server(db)) {
        us_log(db->conf->log, US_LOG_INFO, 0, US_LOGNO_PG_BROKEN,
               "PostgreSQL ended an idle connection: reopened");
        db->broken = 1;
    }
    return db->broken || !db->h ? connect_handle(db) : US_DB_OK;
}

/* Statement id on the connection, ready to run: prepared at its first use
 * there, one round trip once. A connection prepares what its thread runs
 * (a request handler's few reads), not every statement of the table. */
static us_db_rc prepared_statement(us_pg_db *db, us_stmt_id id, apr_dbd_prepared_t **out)
{
    us_db_rc rc = us_pg_ready(db);
    if (rc != US_DB_OK)
        return rc;
    if (!db->stmt[id]) {
        const us_stmt_def *def = us_pg_sql_statement(id);
        if (!def->sql) {
            us_pg_set_err(db, "statement %d has no PostgreSQL text", (int)id);
            return US_DB_ERROR;
        }
        int prc = apr_dbd_prepare(db->conf->drv, db->hpool, db->h, def->sql, def->label,
                                  &db->stmt[id]);
        if (prc != 0) {
            db->stmt[id] = NULL;
            rc = us_pg_fail(db, prc, def->label);
            if (!db->broken)
                us_pg_set_err(db, "cannot prepare %s (is the schema current?): %s", def->label,
                              db->err);
            return rc;
        }
    }
    *out = db->stmt[id];
    return US_DB_OK;
}

us_db_rc us_pg_new(const us_store_backend *backend, const us_pg_conf *conf, apr_pool_t *p,
                   us_pg_db **out, const char **err)
{
    apr_pool_t *sub;
    apr_pool_create(&sub, p);
    apr_pool_tag(sub, "us_pg_db");
    us_pg_db *db = apr_pcalloc(sub, sizeof(*db));
    db->base.backend = backend;
    db->pool = sub;
    db->conf = conf;
    us_db_rc rc = connect_handle(db);
    if (rc != US_DB_OK) {
        *err = apr_pstrdup(p, db->err);
        apr_pool_destroy(sub);
        return rc;
    }
    *out = db;
    return US_DB_OK;
}

/* ---- statements ------------------------------------------------------------ */

us_db_rc us_pg_select(us_pg_db *db, apr_pool_t *p, us_stmt_id id, const void **args,
                      apr_dbd_results_t **res)
{
    apr_dbd_prepared_t *stmt = NULL;
    us_db_rc rc = prepared_statement(db, id, &stmt);
    if (rc != US_DB_OK)
        return rc;
    *res = NULL;
    /* random access: see the top of this file */
    int qrc = apr_dbd_pbselect(db->conf->drv, p, db->h, res, stmt, 1, args);
    return qrc == 0 ? US_DB_OK : us_pg_fail(db, qrc, us_pg_sql_statement(id)->label);
}

us_db_rc us_pg_exec(us_pg_db *db, apr_pool_t *p, us_stmt_id id, const void **args,
                    int *nrows)
{
    apr_dbd_prepared_t *stmt = NULL;
    us_db_rc rc = prepared_statement(db, id, &stmt);
    if (rc != US_DB_OK)
        return rc;
    *nrows = 0;
    int qrc = apr_dbd_pbquery(db->conf->drv, p, db->h, nrows, stmt, args);
    return qrc == 0 ? US_DB_OK : us_pg_fail(db, qrc, us_pg_sql_statement(id)->label);
}

/* The next row: US_DB_OK, or US_DB_NOTFOUND after the last. (In random
 * access the driver holds every row already: fetching does not fail.) */
us_db_rc us_pg_next_row(us_pg_db *db, apr_pool_t *p, apr_dbd_results_t *res,
                        apr_dbd_row_t **row)
{
    return apr_dbd_get_row(db->conf->drv, p, res, row, -1) == 0 ? US_DB_OK : US_DB_NOTFOUND;
}

long long us_pg_entry_ll(const us_pg_db *db, apr_dbd_row_t *row, int col)
{
    const char *v = apr_dbd_get_entry(db->conf->drv, row, col);
    return v ? apr_atoi64(v) : 0;
}

const char *us_pg_entry_str(const us_pg_db *db, apr_pool_t *p, apr_dbd_row_t *row, int col)
{
    const char *v = apr_dbd_get_entry(db->conf->drv, row, col);
    return apr_pstrdup(p, v ? v : "");
}

/* The first column of the first row as a number (counts, flags); *found
 * (may be NULL) says whether there was a row. */
us_db_rc us_pg_select_ll(us_pg_db *db, apr_pool_t *p, us_stmt_id id, const void **args,
                         long long *out, int *found)
{
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    us_db_rc rc = us_pg_select(db, p, id, args, &res);
    *out = 0;
    if (found)
        *found = 0;
    if (rc != US_DB_OK)
        return rc;
    while (us_pg_next_row(db, p, res, &row) == US_DB_OK) {
        *out = us_pg_entry_ll(db, row, 0);
        if (found)
            *found = 1;
    }
    return US_DB_OK;
}

/* Column order of SESSION_COLS in us_pg_sql.c */
us_db_rc us_pg_select_session(us_pg_db *db, apr_pool_t *p, us_stmt_id id, const void **args,
                              us_session *out)
{
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    int found = 0;
    us_db_rc rc = us_pg_select(db, p, id, args, &res);
    if (rc != US_DB_OK)
        return rc;
    while (us_pg_next_row(db, p, res, &row) == US_DB_OK) {
        us_row ur = { db->conf->drv, row };
        us_row_to_session(&ur, p, out);
        found = 1;
    }
    return found ? US_DB_OK : US_DB_NOTFOUND;
}

/* ---- transactions ------------------------------------------------------------ */


#define PG_TXN_ATTEMPTS 3

/* Whether the failed attempt is run again. A deadlock's victim does not
 * always see "deadlock detected": lock_timeout (the busy timeout) runs from
 * the same start as the server's deadlock check (deadlock_timeout, 1 s by
 * default, the busy timeout's default too) and may fire first, or before a
 * later waiter's check finds the cycle; so a lock timeout is retried once
 * as well, and a second one is a long wait: BUSY, 503 with Retry-After. */
static int pg_txn_retry(us_pg_db *db, us_db_rc rc, int *lock_retries)
{
    if (rc != US_DB_BUSY || db->broken)
        return 0;
    if (db->deadlock) {
        us_log(db->conf->log, US_LOG_DEBUG, 0, US_LOGNO_PG_RETRY, "transaction retried: %s",
               db->err);
        return 1;
    }
    if (!db->lock_timeout || (*lock_retries)++ > 0)
        return 0;
    us_log(db->conf->log, US_LOG_INFO, 0, US_LOGNO_PG_LOCK_RETRY, "transaction retried once "
           "(a deadlock's victim may time out waiting for its lock): %s", db->err);
    return 1;
}

/* Runs fn in a transaction of its own (BEGIN ... COMMIT), or, when fn runs
 * one statement (txn 0), as that statement's own transaction: two round
 * trips fewer, and its locks end with it. */
us_db_rc us_pg_run(us_pg_db *db, apr_pool_t *p, us_pg_txn_fn fn, void *arg, int txn)
{
    us_db_rc rc = US_DB_ERROR;
    int lock_retries = 0;
    db->outcome_unknown = 0;
    for (int attempt = 0; attempt < PG_TXN_ATTEMPTS; attempt++) {
        db->deadlock = db->lock_timeout = 0;
        if ((rc = us_pg_ready(db)) != US_DB_OK)
            return rc;
        if (txn && (rc = us_pg_exec_sql(db, "BEGIN")) != US_DB_OK)
            return rc;
        db->in_txn = txn;
        rc = fn(db, p, arg);
        db->in_txn = 0;
        if (rc == US_DB_OK) {
            if (!txn)
                return rc;
            rc = us_pg_exec_sql(db, "COMMIT");
            /* lost while COMMIT was under way: the server may have
             * committed before the connection went */
            db->outcome_unknown = rc != US_DB_OK && db->broken;
            if (rc == US_DB_OK || db->broken)
                return rc;
        }
        else if (!txn) {
            /* a statement that lost its connection (not one that found
             * none: h is gone then) was committed if the server got that
             * far before the answer was lost */
            db->outcome_unknown = db->broken && db->h;
        }
        else if (!db->broken) {
            char err[US_PG_ERR_MAX];
            snprintf(err, sizeof(err), "%s", db->err ? db->err : "unknown error");
            int deadlock = db->deadlock, lock_timeout = db->lock_timeout;
            us_db_rc rrc = us_pg_exec_sql(db, "ROLLBACK");
            /* a connection lost meanwhile took the transaction with it
             * (logged as lost by us_pg_exec_sql): nothing was left open */
            if (rrc != US_DB_OK && !db->broken)
                us_log(db->conf->log, US_LOG_ERR, 0, US_LOGNO_PG_ROLLBACK, "rollback failed: %s",
                       db->err);
            us_pg_set_err(db, "%s", err);
            db->deadlock = deadlock;
            db->lock_timeout = lock_timeout;
            if (rrc != US_DB_OK)
                return rc;
        }
        if (!pg_txn_retry(db, rc, &lock_retries))
            return rc;
    }
    return rc;
}

us_db_rc us_pg_txn(us_pg_db *db, apr_pool_t *p, us_pg_txn_fn fn, void *arg)
{
    return us_pg_run(db, p, fn, arg, 1);
}

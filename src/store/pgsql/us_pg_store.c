/*
 * us_pg_store.c - the PostgreSQL backend: UploadSessionStore pgsql
 * "<libpq conninfo>", through apr_dbd's pgsql driver. Every query is a
 * prepared statement (us_pg_sql.c); writes that span statements run in a
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
#include "us_group.h"
#include "us_log.h"
#include "us_pg_conninfo.h"
#include "us_pg_errors.h"
#include "us_pg_filter.h"
#include "us_pg_sql.h"
#include "us_pg_store.h"
#include "us_store_backend.h"
#include "../us_ops.h"

#include <apr_atomic.h>
#include <apr_dbd.h>
#include <apr_hash.h>
#include <apr_strings.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    const apr_dbd_driver_t *drv;
    const char *conninfo;
    int lock_timeout_ms;
    const us_logger *log;
    us_group *creates;             /* this process's concurrent creates, one commit each batch */
    us_group *gets;                /* this process's concurrent session reads, one statement each batch */
} us_pg_conf;

/* Statements built for a request (a filtered or re-ordered file list) are
 * prepared once per connection under a label of their own; a connection
 * holding this many is worn out and closed instead of pooled again (each
 * one is server memory of its backend process). */
#define US_PG_MAX_DYNAMIC 64

/* Concurrent creates that share one transaction at most (pg_session_insert). */
#define CREATE_BATCH_MAX 32

/* Concurrent session reads that share one statement at most (session_get_batch). */
#define GET_BATCH_MAX 32

/* Message numbers (us_log.h: 11xx the store; 1101-1108 are SQLite's). */
enum {
    US_LOGNO_PG_BROKEN = 1110,   /* a connection is gone; the next use opens a new one */
    US_LOGNO_PG_CONNECT = 1111,  /* a connection cannot be opened */
    US_LOGNO_PG_RETRY = 1112,    /* a transaction is retried after a deadlock */
    US_LOGNO_PG_ROLLBACK = 1113, /* a rollback failed */
    US_LOGNO_PG_BUSY = 1114,     /* a statement found the database busy */
    US_LOGNO_PG_LOCK_RETRY = 1115, /* a transaction is retried after a lock timeout */
};

#define US_PG_ERR_MAX 2048         /* longer messages are cut */

typedef struct {
    us_db base;                    /* first: the front's view */
    apr_pool_t *pool;              /* the connection object's */
    apr_pool_t *hpool;             /* the driver handle's and its statements' */
    const us_pg_conf *conf;
    apr_dbd_t *h;
    apr_dbd_prepared_t *stmt[US_STMT__COUNT];
    apr_hash_t *dynamic;           /* SQL text -> built statement, in hpool */
    int worn_out;                  /* holds US_PG_MAX_DYNAMIC built statements */
    int outcome_unknown;           /* the last transaction's COMMIT lost its connection */
    int broken;                    /* reopen before the next statement */
    int deadlock;                  /* the last failure was a deadlock: retry */
    int lock_timeout;              /* ... or a lock timeout: retry once (pg_txn) */
    int in_txn;                    /* inside pg_run's BEGIN ... COMMIT */
    const char *err;               /* NULL, a literal, or one of errbuf */
    /* the last message, written to the buffer err is not in (a message may
     * quote the one before): a connection that lives as long as its thread
     * fails as often as its database is down, in the same memory */
    char errbuf[2][US_PG_ERR_MAX];
} us_pg_db;

extern const us_store_backend us_pgsql_backend;

static us_pg_db *pg_of(us_db *db)
{
    return (us_pg_db *)db;
}

/* ---- errors and connections ------------------------------------------------ */

static void set_err(us_pg_db *db, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The buffer the last message is not in (the next one may quote it). */
static char *free_errbuf(us_pg_db *db)
{
    return db->err == db->errbuf[0] ? db->errbuf[1] : db->errbuf[0];
}

static void set_err(us_pg_db *db, const char *fmt, ...)
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
static us_db_rc pg_fail(us_pg_db *db, int rc, const char *what)
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

static us_db_rc pg_exec_sql(us_pg_db *db, const char *sql)
{
    int nrows = 0;
    int rc = apr_dbd_query(db->conf->drv, db->h, &nrows, sql);
    return rc == 0 ? US_DB_OK : pg_fail(db, rc, sql);
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
 * during an outage every thread of every process tries again on its own. */
#define US_PG_CONNECT_QUIET 30 /* seconds */
static volatile apr_uint32_t connect_pid;     /* whose counters (a child inherits them) */
static volatile apr_uint32_t connect_said_at; /* seconds, the last US1111 */
static volatile apr_uint32_t connect_held;    /* refusals since, not said */

static void connect_refused(us_pg_db *db)
{
    apr_uint32_t pid = (apr_uint32_t)getpid(), now = (apr_uint32_t)apr_time_sec(apr_time_now());
    if (apr_atomic_xchg32(&connect_pid, pid) != pid) { /* a race here costs a message at most */
        apr_atomic_set32(&connect_said_at, 0);
        apr_atomic_set32(&connect_held, 0);
    }
    apr_uint32_t at = apr_atomic_read32(&connect_said_at);
    if (now - at < US_PG_CONNECT_QUIET || apr_atomic_cas32(&connect_said_at, now, at) != at) {
        apr_atomic_inc32(&connect_held);
        return;
    }
    apr_uint32_t held = apr_atomic_xchg32(&connect_held, 0);
    if (held)
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
        set_err(db, "cannot connect to PostgreSQL: %s", oerr ? oerr : "unknown error");
        connect_refused(db);
        db->h = NULL;
        drop_handle(db);
        return US_DB_BUSY;
    }
    apr_pool_cleanup_register(db->hpool, db, handle_cleanup, apr_pool_cleanup_null);
    /* every server error then carries its SQLSTATE (us_pg_errors.h) */
    PQsetErrorVerbosity(pq_of(db), PQERRORS_VERBOSE);
    us_db_rc rc = pg_exec_sql(db, apr_psprintf(db->hpool, "SET lock_timeout = %d",
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
static us_db_rc pg_ready(us_pg_db *db)
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
    us_db_rc rc = pg_ready(db);
    if (rc != US_DB_OK)
        return rc;
    if (!db->stmt[id]) {
        const us_stmt_def *def = us_pg_sql_statement(id);
        if (!def->sql) {
            set_err(db, "statement %d has no PostgreSQL text", (int)id);
            return US_DB_ERROR;
        }
        int prc = apr_dbd_prepare(db->conf->drv, db->hpool, db->h, def->sql, def->label,
                                  &db->stmt[id]);
        if (prc != 0) {
            db->stmt[id] = NULL;
            rc = pg_fail(db, prc, def->label);
            if (!db->broken)
                set_err(db, "cannot prepare %s (is the schema current?): %s", def->label,
                        db->err);
            return rc;
        }
    }
    *out = db->stmt[id];
    return US_DB_OK;
}

static us_db_rc pg_new(const us_pg_conf *conf, apr_pool_t *p, us_pg_db **out, const char **err)
{
    apr_pool_t *sub;
    apr_pool_create(&sub, p);
    apr_pool_tag(sub, "us_pg_db");
    us_pg_db *db = apr_pcalloc(sub, sizeof(*db));
    db->base.backend = &us_pgsql_backend;
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

static us_db_rc pg_select(us_pg_db *db, apr_pool_t *p, us_stmt_id id, const void **args,
                          apr_dbd_results_t **res)
{
    apr_dbd_prepared_t *stmt = NULL;
    us_db_rc rc = prepared_statement(db, id, &stmt);
    if (rc != US_DB_OK)
        return rc;
    *res = NULL;
    /* random access: see the top of this file */
    int qrc = apr_dbd_pbselect(db->conf->drv, p, db->h, res, stmt, 1, args);
    return qrc == 0 ? US_DB_OK : pg_fail(db, qrc, us_pg_sql_statement(id)->label);
}

static us_db_rc pg_exec(us_pg_db *db, apr_pool_t *p, us_stmt_id id, const void **args,
                        int *nrows)
{
    apr_dbd_prepared_t *stmt = NULL;
    us_db_rc rc = prepared_statement(db, id, &stmt);
    if (rc != US_DB_OK)
        return rc;
    *nrows = 0;
    int qrc = apr_dbd_pbquery(db->conf->drv, p, db->h, nrows, stmt, args);
    return qrc == 0 ? US_DB_OK : pg_fail(db, qrc, us_pg_sql_statement(id)->label);
}

/* The next row: US_DB_OK, or US_DB_NOTFOUND after the last. (In random
 * access the driver holds every row already: fetching does not fail.) */
static us_db_rc next_row(us_pg_db *db, apr_pool_t *p, apr_dbd_results_t *res,
                         apr_dbd_row_t **row)
{
    return apr_dbd_get_row(db->conf->drv, p, res, row, -1) == 0 ? US_DB_OK : US_DB_NOTFOUND;
}

static long long entry_ll(const us_pg_db *db, apr_dbd_row_t *row, int col)
{
    const char *v = apr_dbd_get_entry(db->conf->drv, row, col);
    return v ? apr_atoi64(v) : 0;
}

static const char *entry_str(const us_pg_db *db, apr_pool_t *p, apr_dbd_row_t *row, int col)
{
    const char *v = apr_dbd_get_entry(db->conf->drv, row, col);
    return apr_pstrdup(p, v ? v : "");
}

/* The first column of the first row as a number (counts, flags); *found
 * (may be NULL) says whether there was a row. */
static us_db_rc select_ll(us_pg_db *db, apr_pool_t *p, us_stmt_id id, const void **args,
                          long long *out, int *found)
{
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    us_db_rc rc = pg_select(db, p, id, args, &res);
    *out = 0;
    if (found)
        *found = 0;
    if (rc != US_DB_OK)
        return rc;
    while (next_row(db, p, res, &row) == US_DB_OK) {
        *out = entry_ll(db, row, 0);
        if (found)
            *found = 1;
    }
    return US_DB_OK;
}

/* Column order of SESSION_COLS in us_pg_sql.c */
static us_db_rc select_session(us_pg_db *db, apr_pool_t *p, us_stmt_id id, const void **args,
                               us_session *out)
{
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    int found = 0;
    us_db_rc rc = pg_select(db, p, id, args, &res);
    if (rc != US_DB_OK)
        return rc;
    while (next_row(db, p, res, &row) == US_DB_OK) {
        us_row ur = { db->conf->drv, row };
        us_row_to_session(&ur, p, out);
        found = 1;
    }
    return found ? US_DB_OK : US_DB_NOTFOUND;
}

/* ---- transactions ------------------------------------------------------------ */

/* A transaction's body: returns US_DB_OK to commit; anything else rolls
 * back (logical answers included: they change nothing). May run again
 * after a deadlock or a lock timeout: reset outputs at its start. */
typedef us_db_rc (*pg_txn_fn)(us_pg_db *db, apr_pool_t *p, void *arg);

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
static us_db_rc pg_run(us_pg_db *db, apr_pool_t *p, pg_txn_fn fn, void *arg, int txn)
{
    us_db_rc rc = US_DB_ERROR;
    int lock_retries = 0;
    db->outcome_unknown = 0;
    for (int attempt = 0; attempt < PG_TXN_ATTEMPTS; attempt++) {
        db->deadlock = db->lock_timeout = 0;
        if ((rc = pg_ready(db)) != US_DB_OK)
            return rc;
        if (txn && (rc = pg_exec_sql(db, "BEGIN")) != US_DB_OK)
            return rc;
        db->in_txn = txn;
        rc = fn(db, p, arg);
        db->in_txn = 0;
        if (rc == US_DB_OK) {
            if (!txn)
                return rc;
            rc = pg_exec_sql(db, "COMMIT");
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
            us_db_rc rrc = pg_exec_sql(db, "ROLLBACK");
            /* a connection lost meanwhile took the transaction with it
             * (logged as lost by pg_exec_sql): nothing was left open */
            if (rrc != US_DB_OK && !db->broken)
                us_log(db->conf->log, US_LOG_ERR, 0, US_LOGNO_PG_ROLLBACK, "rollback failed: %s",
                       db->err);
            set_err(db, "%s", err);
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

static us_db_rc pg_txn(us_pg_db *db, apr_pool_t *p, pg_txn_fn fn, void *arg)
{
    return pg_run(db, p, fn, arg, 1);
}

/* ---- lifecycle ------------------------------------------------------------------ */

static us_db_rc pg_configure(apr_pool_t *p, const char *params, void **conf, const char **err)
{
    us_pg_conf *c = apr_pcalloc(p, sizeof(*c));
    c->lock_timeout_ms = US_DEFAULT_BUSY_TIMEOUT_MS;
    apr_status_t rv = apr_dbd_get_driver(p, "pgsql", &c->drv);
    switch (rv) {
    case APR_SUCCESS:
        c->conninfo = us_pg_conninfo_with_timeout(p, apr_pstrdup(p, params),
                                                  getenv("PGCONNECT_TIMEOUT"));
        if (us_group_create(&c->creates, p, CREATE_BATCH_MAX) != APR_SUCCESS)
            c->creates = NULL; /* every create commits alone */
        if (us_group_create(&c->gets, p, GET_BATCH_MAX) != APR_SUCCESS)
            c->gets = NULL; /* every read runs alone */
        *conf = c;
        return US_DB_OK;
    case APR_ENOTIMPL:
        *err = "no apr_dbd driver named 'pgsql'";
        break;
    case APR_EDSOOPEN:
        *err = "the apr_dbd driver 'pgsql' cannot be loaded "
               "(on Debian: install libaprutil1-dbd-pgsql)";
        break;
    default:
        *err = "apr_dbd driver 'pgsql' failed to initialise";
    }
    return US_DB_ERROR;
}

static const char *pg_home(const void *conf, apr_pool_t *p)
{
    (void)conf;
    (void)p;
    return NULL; /* nothing of the store lives on this machine */
}

/* Per store: PostgreSQL's lock_timeout of each new connection. */
static void pg_set_lock_timeout(void *conf, int ms)
{
    ((us_pg_conf *)conf)->lock_timeout_ms = ms;
}

static void pg_set_logger(void *conf, const us_logger *lg)
{
    ((us_pg_conf *)conf)->log = lg;
}

static us_db_rc pg_prepare_files(const void *conf, apr_pool_t *p, const char **err)
{
    (void)conf;
    (void)p;
    (void)err;
    return US_DB_OK;
}

static void pg_user_files(const void *conf, apr_pool_t *p, apr_array_header_t *paths)
{
    (void)conf;
    (void)p;
    (void)paths;
}

static us_db_rc migrate_locked(us_pg_db *db, apr_pool_t *p, void *arg)
{
    const char **err = arg;
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    int version = 0, nrows = 0;
    us_db_rc rc;
    /* migrators of every node queue here; the first one's work is done
     * when the others read the version */
    if ((rc = pg_exec_sql(db, US_PG_SQL_MIGRATE_WAIT)) != US_DB_OK ||
        (rc = pg_exec_sql(db, US_PG_SQL_MIGRATE_LOCK)) != US_DB_OK ||
        (rc = pg_exec_sql(db, US_PG_SQL_META_TABLE)) != US_DB_OK)
        return rc;
    int qrc = apr_dbd_select(db->conf->drv, p, db->h, &res, US_PG_SQL_SCHEMA_VERSION_GET, 1);
    if (qrc != 0)
        return pg_fail(db, qrc, "read schema version");
    while (next_row(db, p, res, &row) == US_DB_OK)
        version = (int)entry_ll(db, row, 0);
    if (version > US_PG_SCHEMA_VERSION) {
        *err = apr_psprintf(p, "the database has schema version %d; this module "
                            "understands up to %d", version, US_PG_SCHEMA_VERSION);
        return US_DB_ERROR;
    }
    for (; version < US_PG_SCHEMA_VERSION; version++)
        for (const char *const *s = us_pg_sql_migration(version); *s; s++)
            if ((rc = pg_exec_sql(db, *s)) != US_DB_OK)
                return rc;
    apr_dbd_prepared_t *set = NULL;
    int prc = apr_dbd_prepare(db->conf->drv, p, db->h, US_PG_SQL_SCHEMA_VERSION_SET, NULL, &set);
    if (prc != 0)
        return pg_fail(db, prc, "prepare schema version");
    int v = US_PG_SCHEMA_VERSION;
    const void *args[] = { &v };
    prc = apr_dbd_pbquery(db->conf->drv, p, db->h, &nrows, set, args);
    return prc == 0 ? US_DB_OK : pg_fail(db, prc, "write schema version");
}

static us_db_rc pg_migrate(const void *conf, apr_pool_t *p, const char **err)
{
    us_pg_db *db = NULL;
    us_db_rc rc = pg_new(conf, p, &db, err);
    if (rc != US_DB_OK)
        return rc;
    *err = NULL;
    rc = pg_txn(db, p, migrate_locked, err);
    if (rc != US_DB_OK && !*err)
        *err = apr_pstrdup(p, db->err);
    apr_pool_destroy(db->pool);
    return rc;
}

static us_db_rc pg_open(const void *conf, apr_pool_t *p, us_db **out, const char **err)
{
    us_pg_db *db = NULL;
    us_db_rc rc = pg_new(conf, p, &db, err);
    *out = rc == US_DB_OK ? &db->base : NULL;
    return rc;
}

static void pg_close(us_db *db)
{
    if (db)
        apr_pool_destroy(pg_of(db)->pool);
}

static us_db_rc pg_maintain(us_db *db, apr_pool_t *p)
{
    (void)db;
    (void)p;
    return US_DB_OK; /* autovacuum is the server's */
}

static int pg_worn_out(us_db *db)
{
    return pg_of(db)->worn_out;
}

static int pg_outcome_unknown(us_db *db)
{
    return pg_of(db)->outcome_unknown;
}

static const char *pg_error(us_db *db)
{
    return pg_of(db)->err ? pg_of(db)->err : "no error";
}

static void pg_clear_error(us_db *db)
{
    pg_of(db)->err = NULL;
}

static void pg_set_error(us_db *base, const char *err)
{
    set_err(pg_of(base), "%s", err ? err : "unknown error");
}

/* ---- sessions ------------------------------------------------------------------- */

typedef struct {
    const us_session *s;
    int max_open;
    apr_time_t now;
    apr_time_t created_at, expires_at; /* as stored */
} insert_args;

/* Creates in one statement: us_sessions_create (us_pg_sql.c) takes the
 * locks of a create by statements in their order, then per create the
 * limit check and the rows, and its transaction ends with it - no round
 * trip while the user's counter row is held. Concurrent creates of this
 * process go in one call, one per user and workspace: one round trip and
 * one commit (a WAL flush) for them all; a call that fails leaves each
 * create to run alone, as if it had come by itself. */
#define CREATE_ALONE (-1)
#define CREATE_UNKNOWN (-2) /* its batch's statement lost its connection */

typedef struct {
    us_group_item *item;
} create_slot; /* a batch's create, in the order its statement runs them */

typedef struct {
    const create_slot *slots;
    int n;
} create_batch_args;

/* The columns of us_sessions_create after the workspace and the user. */
enum { CC_ID, CC_GIVEN, CC_FAMILY, CC_MODE, CC_PARALLEL, CC_LIFETIME, CC_DIRECT, CC_MAX,
       CC_NOW, CREATE_COLS };

/* Create a's value in column col; num holds a number's text. */
static const char *create_value(const insert_args *a, int col, char *num, apr_size_t numlen)
{
    const us_session *s = a->s;
    apr_int64_t v;
    switch (col) {
    case CC_ID: return s->id;
    case CC_GIVEN: return s->given_name;
    case CC_FAMILY: return s->family_name;
    case CC_MODE: return s->write_mode;
    case CC_PARALLEL: v = s->parallel; break;
    case CC_LIFETIME: v = s->expires_at - s->created_at; break;
    case CC_DIRECT: v = s->direct; break;
    case CC_MAX: v = a->max_open; break;
    default: v = a->now; break;
    }
    apr_snprintf(num, numlen, "%" APR_INT64_T_FMT, v);
    return num;
}

typedef struct {
    const create_batch_args *b;
    int col;
} create_column_ctx;

static const char *create_column_value(const void *ctx, int i, char *num, apr_size_t numlen)
{
    const create_column_ctx *c = ctx;
    return create_value(c->b->slots[i].item->arg, c->col, num, numlen);
}

/* The batch's column col as an array literal. */
static const char *create_column(apr_pool_t *p, const create_batch_args *b, int col)
{
    create_column_ctx c = { b, col };
    return us_array_literal(p, b->n, create_column_value, &c);
}

/* One user's creates in one workspace, one statement; each slot's rc is
 * US_DB_OK (created) or US_DB_LIMIT. */
static us_db_rc create_body(us_pg_db *db, apr_pool_t *p, void *arg)
{
    const create_batch_args *b = arg;
    const insert_args *first = b->slots[0].item->arg;
    const void *args[2 + CREATE_COLS];
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    args[0] = first->s->workspace;
    args[1] = first->s->user_id;
    for (int c = 0; c < CREATE_COLS; c++)
        args[2 + c] = create_column(p, b, c);
    for (int i = 0; i < b->n; i++)
        b->slots[i].item->rc = US_DB_LIMIT;
    us_db_rc rc = pg_select(db, p, US_STMT_SESSIONS_CREATE, args, &res);
    if (rc != US_DB_OK)
        return rc;
    while (next_row(db, p, res, &row) == US_DB_OK) {
        long long k = entry_ll(db, row, 0) - 1;
        if (k < 0 || k >= b->n)
            continue;
        insert_args *a = b->slots[k].item->arg;
        a->created_at = entry_ll(db, row, 1);
        a->expires_at = entry_ll(db, row, 2);
        b->slots[k].item->rc = US_DB_OK;
    }
    return US_DB_OK;
}

/* Creates one batch of slots; an error leaves their rc as it was. */
static us_db_rc create_run(us_pg_db *db, apr_pool_t *p, const create_slot *slots, int n)
{
    create_batch_args b = { slots, n };
    return pg_run(db, p, create_body, &b, 0);
}

static int by_user(const void *a, const void *b)
{
    const insert_args *x = ((const create_slot *)a)->item->arg;
    const insert_args *y = ((const create_slot *)b)->item->arg;
    int c = strcmp(x->s->user_id, y->s->user_id);
    if (!c)
        c = strcmp(x->s->workspace, y->s->workspace);
    return c ? c : strcmp(x->s->id, y->s->id);
}

typedef struct {
    us_pg_db *db;
    apr_pool_t *p;
    const us_group_item *own; /* the leader's own create */
} create_leader;

static void create_batch(void *ctx, us_group_item *const *items, int n)
{
    const create_leader *l = ctx;
    create_slot sorted[US_GROUP_MAX] = { { NULL } };
    for (int i = 0; i < n; i++)
        sorted[i].item = items[i];
    if (n > 1)
        qsort(sorted, (size_t)n, sizeof(sorted[0]), by_user);
    /* one statement per user and workspace: it holds the locks a single
     * create holds, taken in the same order, so no new lock cycle with a
     * workspace delete, the sweep or another node's creates */
    for (int i = 0, j; i < n; i = j) {
        const insert_args *first = sorted[i].item->arg;
        for (j = i + 1; j < n; j++) {
            const insert_args *a = sorted[j].item->arg;
            if (strcmp(a->s->user_id, first->s->user_id) != 0 ||
                strcmp(a->s->workspace, first->s->workspace) != 0)
                break;
        }
        us_db_rc rc = create_run(l->db, l->p, sorted + i, j - i);
        int unknown = rc != US_DB_OK && l->db->outcome_unknown;
        if (rc != US_DB_OK)
            for (int k = i; k < j; k++)
                /* the leader's create alone reports its failure; any other
                 * runs again on its own connection, which then tells its
                 * own failure (the message is on the connection), unless
                 * the batch may have created it */
                sorted[k].item->rc = unknown ? CREATE_UNKNOWN
                                     : j - i == 1 && sorted[k].item == l->own ? (int)rc
                                                                               : CREATE_ALONE;
    }
}

/* A create whose statement lost its connection was committed if the
 * server got that far: the session is read back by its id (its id is new,
 * so a row is this create's). Not there, or the database still away: a 503
 * as for any lost statement, and the client's retry creates another. */
static us_db_rc create_read_back(us_pg_db *db, apr_pool_t *p, insert_args *a)
{
    char err[US_PG_ERR_MAX];
    snprintf(err, sizeof(err), "%s", db->err ? db->err : "connection lost");
    apr_int64_t t = a->now;
    const void *args[] = { &t, a->s->id };
    us_session got;
    us_db_rc rc = select_session(db, p, US_STMT_SESSION_BY_ID, args, &got);
    if (rc == US_DB_OK && !strcmp(got.user_id, a->s->user_id) &&
        !strcmp(got.workspace, a->s->workspace)) {
        us_log(db->conf->log, US_LOG_INFO, 0, US_LOGNO_PG_BROKEN,
               "session %s was created before its connection was lost", a->s->id);
        a->created_at = got.created_at;
        a->expires_at = got.expires_at;
        return US_DB_OK;
    }
    set_err(db, "%s", err);
    db->outcome_unknown = 1;
    return US_DB_BUSY;
}

static us_db_rc pg_session_insert(us_db *base, apr_pool_t *p, us_session *s, int max_open,
                                  apr_time_t now)
{
    us_pg_db *db = pg_of(base);
    insert_args a = { s, max_open, now, s->created_at, s->expires_at };
    us_group_item item = { .arg = &a };
    create_leader l = { db, p, &item };
    int rc = db->conf->creates ? us_group_run(db->conf->creates, &item, create_batch, &l)
                               : CREATE_ALONE;
    if (rc == CREATE_ALONE) {
        create_slot slot = { &item };
        rc = create_run(db, p, &slot, 1);
        if (rc == US_DB_OK)
            rc = item.rc;
        else if (db->outcome_unknown)
            rc = CREATE_UNKNOWN;
    }
    if (rc == CREATE_UNKNOWN)
        rc = create_read_back(db, p, &a);
    if (rc == US_DB_OK) {
        s->created_at = a.created_at;
        s->expires_at = a.expires_at;
    }
    return (us_db_rc)rc;
}

static us_db_rc expire_body(us_pg_db *db, apr_pool_t *p, void *arg)
{
    long long *count = arg;
    long long mine = 0;
    us_db_rc rc = select_ll(db, p, US_STMT_SWEEP_LOCK, NULL, &mine, NULL);
    if (rc != US_DB_OK || !mine)
        return rc; /* another node sweeps now */
    return select_ll(db, p, US_STMT_SESSIONS_EXPIRE, NULL, count, NULL);
}

static us_db_rc pg_sessions_expire(us_db *base, apr_pool_t *p, int *count)
{
    long long n = 0;
    us_db_rc rc = pg_txn(pg_of(base), p, expire_body, &n);
    *count = rc == US_DB_OK ? (int)n : 0;
    return rc;
}

/* ---- ingestion -------------------------------------------------------------------- */

typedef struct {
    const char *owner;
    apr_time_t now, stale_before;
    us_session *out;
} claim_args;

static us_db_rc claim_body(us_pg_db *db, apr_pool_t *p, void *arg)
{
    claim_args *a = arg;
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    /* the caller's clock gives the lease's length only; the database's
     * clock says when a heartbeat is older than that */
    apr_int64_t t = a->now, lease = a->now - a->stale_before;
    const char *id = NULL, *workspace = NULL;
    int parallel = 0;
    long long flag = 0;
    const void *cargs[] = { &lease };
    us_db_rc rc = pg_select(db, p, US_STMT_INGEST_CANDIDATE, cargs, &res);
    if (rc != US_DB_OK)
        return rc;
    while (next_row(db, p, res, &row) == US_DB_OK) {
        id = entry_str(db, p, row, 0);
        workspace = entry_str(db, p, row, 1);
        parallel = (int)entry_ll(db, row, 2);
    }
    if (!id)
        return US_DB_NOTFOUND;
    if (!parallel) {
        /* the turn check above read a snapshot that another claimer of
         * the workspace may have changed since: check again under the
         * workspace's lock, in a statement that sees their commits */
        const void *largs[] = { workspace };
        const void *targs[] = { id };
        if ((rc = select_ll(db, p, US_STMT_TURN_LOCK, largs, &flag, NULL)) != US_DB_OK)
            return rc;
        if (!flag)
            return US_DB_NOTFOUND; /* another claimer decides this workspace now */
        int found = 0;
        if ((rc = select_ll(db, p, US_STMT_IN_TURN, targs, &flag, &found)) != US_DB_OK)
            return rc;
        if (!found)
            return US_DB_NOTFOUND;
    }
    const void *args[] = { a->owner, id, &t };
    rc = select_session(db, p, US_STMT_INGEST_CLAIM, args, a->out);
    if (rc == US_DB_OK)
        a->out->ingest_owner = apr_pstrdup(p, a->owner);
    if (rc == US_DB_NOTFOUND) {
        db->err = "us_pg_ingest_claim: the locked session is not there";
        return US_DB_ERROR;
    }
    return rc;
}

static us_db_rc pg_ingest_claim(us_db *base, apr_pool_t *p, const char *owner, apr_time_t now,
                                apr_time_t stale_before, us_session *out)
{
    claim_args a = { owner, now, stale_before, out };
    return pg_txn(pg_of(base), p, claim_body, &a);
}

static us_db_rc pg_ingest_heartbeat(us_db *base, apr_pool_t *p, const char *session_id,
                                    const char *owner, apr_time_t now)
{
    int nrows = 0;
    const void *args[] = { session_id, owner };
    (void)now; /* the heartbeat is the database's time */
    us_db_rc rc = pg_exec(pg_of(base), p, US_STMT_INGEST_HEARTBEAT, args, &nrows);
    return rc == US_DB_OK && nrows == 0 ? US_DB_CONFLICT : rc;
}

/* ---- workspace files ------------------------------------------------------------- */

/* A statement built for this request, prepared once per connection. */
static us_db_rc dynamic_statement(us_pg_db *db, const char *sql, apr_dbd_prepared_t **out)
{
    us_db_rc rc = pg_ready(db);
    if (rc != US_DB_OK)
        return rc;
    if (!db->dynamic)
        db->dynamic = apr_hash_make(db->hpool);
    *out = apr_hash_get(db->dynamic, sql, APR_HASH_KEY_STRING);
    if (*out)
        return US_DB_OK;
    unsigned n = apr_hash_count(db->dynamic);
    /* a label per text: the one past the bound is prepared too, under the
     * last label, and stays with the connection until it closes */
    const char *label = apr_psprintf(db->hpool, "us_pg_built_%u",
                                     n < US_PG_MAX_DYNAMIC ? n : US_PG_MAX_DYNAMIC);
    if (n >= US_PG_MAX_DYNAMIC && db->worn_out)
        pg_exec_sql(db, apr_pstrcat(db->hpool, "DEALLOCATE ", label, NULL));
    int prc = apr_dbd_prepare(db->conf->drv, db->hpool, db->h, sql, label, out);
    if (prc != 0)
        return pg_fail(db, prc, "prepare a built list");
    if (n >= US_PG_MAX_DYNAMIC)
        db->worn_out = 1;
    else
        apr_hash_set(db->dynamic, apr_pstrdup(db->hpool, sql), APR_HASH_KEY_STRING, *out);
    return US_DB_OK;
}

static us_db_rc built_select(us_pg_db *db, apr_pool_t *p, const char *sql,
                             const apr_array_header_t *args, apr_dbd_results_t **res)
{
    apr_dbd_prepared_t *stmt = NULL;
    us_db_rc rc = dynamic_statement(db, sql, &stmt);
    if (rc != US_DB_OK)
        return rc;
    *res = NULL;
    int qrc = apr_dbd_pbselect(db->conf->drv, p, db->h, res, stmt, 1, (const void **)args->elts);
    return qrc == 0 ? US_DB_OK : pg_fail(db, qrc, "us_workspace_file_list (built)");
}

/* A list the fixed statements do not cover (a filter, another order, an
 * offset): their shape with the filter's expression, the order and the
 * offset added, every value bound. Names compare and sort by bytes, as in
 * SQLite. */
static us_db_rc workspace_file_list_built(us_pg_db *db, apr_pool_t *p, const char *workspace,
                                          const us_workspace_file_query *q, long long *total,
                                          apr_dbd_results_t **listed)
{
    apr_dbd_results_t *counted = NULL;
    apr_dbd_row_t *row = NULL;
    apr_array_header_t *args = apr_array_make(p, 16, sizeof(const void *));
    apr_int64_t *lim = apr_palloc(p, sizeof(*lim)), *at = apr_palloc(p, sizeof(*at)),
                *off = apr_palloc(p, sizeof(*off));
    *lim = q->limit;
    *at = q->after_at;
    *off = q->offset;
    APR_ARRAY_PUSH(args, const void *) = workspace;
    APR_ARRAY_PUSH(args, const void *) = q->name_part;
    const char *filter = q->filter ? us_filter_sql(p, q->filter, args, &us_pg_filter_dialect) : "";
    if (!filter) {
        set_err(db, "us_workspace_file_list: %s", US_FILTER_SQL_MISMATCH);
        return US_DB_ERROR;
    }
    const char *where = apr_pstrcat(p, " FROM us_files WHERE workspace = %s AND strpos(name, %s) > 0",
                                    q->filter ? " AND " : "", filter, NULL);
    /* the count from the key table when the filter allows, else from the rows */
    apr_array_header_t *cargs = apr_array_make(p, 16, sizeof(const void *));
    const char *count_sql = q->filter && !q->name_part[0]
        ? us_filter_count_sql(p, q->filter, workspace, cargs, &us_pg_filter_dialect) : NULL;
    if (!count_sql) {
        count_sql = apr_pstrcat(p, "SELECT COUNT(*)", where, NULL);
        cargs = args;
    }
    us_db_rc rc = built_select(db, p, count_sql, cargs, &counted);
    if (rc != US_DB_OK)
        return rc;
    *total = 0;
    while (next_row(db, p, counted, &row) == US_DB_OK)
        *total = entry_ll(db, row, 0);
    const char *col = q->by_name ? "name COLLATE \"C\"" : "created_at";
    const char *dir = q->ascending ? "ASC" : "DESC";
    const char *cursor = "";
    if (q->after_id) {
        const char *cmp = q->ascending ? ">" : "<";
        const char *ph = q->by_name ? "%s" : "%lld";
        const void *value = q->by_name ? (const void *)q->after_name : (const void *)at;
        APR_ARRAY_PUSH(args, const void *) = value;
        APR_ARRAY_PUSH(args, const void *) = value;
        APR_ARRAY_PUSH(args, const void *) = q->after_id;
        cursor = apr_pstrcat(p, " AND (", col, " ", cmp, " ", ph, " OR (", col, " = ", ph,
                             " AND file_id COLLATE \"C\" ", cmp, " %s))", NULL);
    }
    APR_ARRAY_PUSH(args, const void *) = lim;
    APR_ARRAY_PUSH(args, const void *) = off;
    return built_select(db, p, apr_pstrcat(p, "SELECT ", us_pg_sql_workspace_file_list_cols(), where,
                                           cursor, " ORDER BY ", col, " ", dir,
                                           ", file_id COLLATE \"C\" ", dir,
                                           " LIMIT %lld OFFSET %lld", NULL),
                        args, listed);
}

static us_db_rc pg_workspace_file_list_built(us_db *base, apr_pool_t *p, const char *workspace,
                                             const us_workspace_file_query *q,
                                             apr_array_header_t *rows, long long *total)
{
    us_pg_db *db = pg_of(base);
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    us_db_rc rc = workspace_file_list_built(db, p, workspace, q, total, &res);
    while (rc == US_DB_OK && next_row(db, p, res, &row) == US_DB_OK) {
        us_row r = { db->conf->drv, row };
        us_push_workspace_file(&r, p, rows);
    }
    return rc;
}

/* Runs a statement answering file ids (a DELETE ... RETURNING file_id, a
 * read of the trash), appending them to deleted. */
static us_db_rc select_ids(us_pg_db *db, apr_pool_t *p, us_stmt_id id, const void **args,
                                 apr_array_header_t *deleted)
{
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    us_db_rc rc = pg_select(db, p, id, args, &res);
    if (rc != US_DB_OK)
        return rc;
    while (next_row(db, p, res, &row) == US_DB_OK)
        APR_ARRAY_PUSH(deleted, const char *) = entry_str(db, p, row, 0);
    return US_DB_OK;
}

static us_db_rc pg_workspace_file_delete(us_db *base, apr_pool_t *p, const char *workspace,
                                         const char *file_id)
{
    us_pg_db *db = pg_of(base);
    apr_array_header_t *deleted = apr_array_make(p, 1, sizeof(const char *));
    const void *args[] = { workspace, file_id };
    /* one statement: its own transaction */
    us_db_rc rc = select_ids(db, p, US_STMT_WORKSPACE_FILE_DELETE_ONE, args, deleted);
    return rc == US_DB_OK && deleted->nelts == 0 ? US_DB_NOTFOUND : rc;
}

typedef struct {
    const char *workspace;
    const apr_array_header_t *names; /* NULL: all */
    apr_array_header_t *deleted;
} delete_args;

static us_db_rc delete_many_body(us_pg_db *db, apr_pool_t *p, void *arg)
{
    delete_args *a = arg;
    us_db_rc rc = US_DB_OK;
    apr_array_clear(a->deleted);
    if (!a->names) {
        const void *args[] = { a->workspace };
        return select_ids(db, p, US_STMT_WORKSPACE_FILES_DELETE_ALL, args, a->deleted);
    }
    for (int i = 0; rc == US_DB_OK && i < a->names->nelts; i++) {
        const void *args[] = { a->workspace, APR_ARRAY_IDX(a->names, i, const char *) };
        rc = select_ids(db, p, US_STMT_WORKSPACE_FILES_DELETE_NAME, args, a->deleted);
    }
    return rc;
}

static us_db_rc pg_workspace_files_delete(us_db *base, apr_pool_t *p, const char *workspace,
                                          const apr_array_header_t *names,
                                          apr_array_header_t **deleted)
{
    delete_args a = { workspace, names, apr_array_make(p, 16, sizeof(const char *)) };
    us_db_rc rc = pg_txn(pg_of(base), p, delete_many_body, &a);
    if (rc != US_DB_OK)
        apr_array_clear(a.deleted);
    *deleted = a.deleted;
    return rc;
}

typedef struct {
    const char *name;
    apr_time_t now;
    apr_array_header_t *file_ids;
} workspace_delete_args;

/* docs/design-workspaces.md: the exclusive workspace lock waits for the
 * session inserts and direct adds in flight and holds off new ones; the
 * sessions' row locks do the same for upload commits and ingest batches. */
static us_db_rc workspace_delete_body(us_pg_db *db, apr_pool_t *p, void *arg)
{
    workspace_delete_args *a = arg;
    apr_int64_t t = a->now;
    const void *ws[] = { a->name };
    const void *sessions_args[] = { &t, a->name };
    long long one = 0;
    int nrows = 0;
    apr_array_clear(a->file_ids);
    us_db_rc rc = select_ll(db, p, US_STMT_WORKSPACE_LOCK, ws, &one, NULL);
    if (rc == US_DB_OK)
        rc = pg_exec(db, p, US_STMT_WORKSPACE_DELETE_ROW, ws, &nrows);
    if (rc != US_DB_OK)
        return rc;
    if (nrows == 0) /* data always has a row: nothing was there */
        return US_DB_NOTFOUND;
    if ((rc = select_ll(db, p, US_STMT_WORKSPACE_SESSIONS_ABORT, sessions_args, &one, NULL)) !=
            US_DB_OK ||
        (rc = select_ids(db, p, US_STMT_WORKSPACE_FILES_DROP, ws, a->file_ids)) != US_DB_OK ||
        (rc = pg_exec(db, p, US_STMT_WORKSPACE_TRASH_PENDING, ws, &nrows)) != US_DB_OK ||
        (rc = pg_exec(db, p, US_STMT_WORKSPACE_UPLOADS_DROP, ws, &nrows)) != US_DB_OK)
        return rc;
    return pg_exec(db, p, US_STMT_WORKSPACE_OUTBOX_DROP, ws, &nrows);
}

static us_db_rc pg_workspace_delete(us_db *base, apr_pool_t *p, const char *name, apr_time_t now,
                                    apr_array_header_t **file_ids)
{
    workspace_delete_args a = { name, now, apr_array_make(p, 16, sizeof(const char *)) };
    us_db_rc rc = pg_txn(pg_of(base), p, workspace_delete_body, &a);
    if (rc != US_DB_OK)
        apr_array_clear(a.file_ids);
    *file_ids = a.file_ids;
    return rc;
}

/* ---- the generic entries ---------------------------------------------------------- */

static us_db_rc pg_gen_exec(us_db *base, apr_pool_t *p, us_stmt_id id, const void **args,
                            int *nrows)
{
    int n = 0;
    us_db_rc rc = pg_exec(pg_of(base), p, id, args, &n);
    if (nrows)
        *nrows = n;
    return rc;
}

typedef struct {
    us_stmt_id id;
    const void **args;
    int nrows;
} one_statement;

static us_db_rc one_statement_body(us_pg_db *db, apr_pool_t *p, void *arg)
{
    one_statement *o = arg;
    o->nrows = 0;
    return pg_exec(db, p, o->id, o->args, &o->nrows);
}

/* One statement as its own transaction, with pg_run's retries (a deadlock's
 * victim, a lock timeout once); inside a transaction body, a statement of
 * it (a retry there would find the transaction aborted). */
static us_db_rc pg_gen_write_one(us_db *base, apr_pool_t *p, us_stmt_id id, const void **args,
                                 int *nrows)
{
    us_pg_db *db = pg_of(base);
    if (db->in_txn)
        return pg_gen_exec(base, p, id, args, nrows);
    one_statement o = { id, args, 0 };
    us_db_rc rc = pg_run(db, p, one_statement_body, &o, 0);
    if (nrows)
        *nrows = o.nrows;
    return rc;
}

/* Runs select id on db, handing each row to fn (in p, with out). */
static us_db_rc select_rows(us_pg_db *db, apr_pool_t *p, us_stmt_id id, const void **args,
                            us_row_fn fn, void *out, int *nrows)
{
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    int n = 0;
    us_db_rc rc = pg_select(db, p, id, args, &res);
    while (rc == US_DB_OK && next_row(db, p, res, &row) == US_DB_OK) {
        if (fn) {
            us_row r = { db->conf->drv, row };
            fn(&r, p, out);
        }
        n++;
    }
    if (nrows)
        *nrows = n;
    return rc;
}

/* ---- session reads, batched ------------------------------------------------- */

/* Reads of one session each (SESSION_GET: the status page, a close's
 * verdict) that this process's threads ask while another is in flight go
 * in one statement: one round trip and one wake-up of a backend for them
 * all, where a statement's fixed cost in the backend is most of a status
 * page's. The batch's statement starts after each of its reads was asked,
 * so each sees what committed before it was asked. The leader runs it on
 * its own connection; each row is handed to its reader's fn in the
 * reader's pool (the reader waits meanwhile). A batch whose statement
 * fails leaves each read to run alone, as if it had come by itself. A
 * read inside a write transaction runs in it, alone: it must see that
 * transaction's own writes, and no other reader may. */
#define GET_ALONE (-1)

typedef struct {
    us_pg_db *db;                  /* the reader's connection */
    const void **args;             /* SESSION_GET's: now, workspace, id */
    us_row_fn fn;
    void *out;
    apr_pool_t *p;                 /* the reader's */
    int found;
} get_args;

typedef struct {
    us_group_item *const *items;
    int col;                       /* of get_args.args */
} get_column_ctx;

static const char *get_column_value(const void *ctx, int i, char *num, apr_size_t numlen)
{
    const get_column_ctx *c = ctx;
    const get_args *a = c->items[i]->arg;
    (void)num;
    (void)numlen;
    return a->args[c->col];
}

/* Column of US_STMT_SESSIONS_GET after the session's: the read's position. */
#define GET_POS_COL 15

static us_db_rc session_get_batch_run(us_pg_db *db, apr_pool_t *p,
                                      us_group_item *const *items, int n)
{
    get_column_ctx ws = { items, 1 }, id = { items, 2 };
    const get_args *first = items[0]->arg;
    const void *args[] = { first->args[0], us_array_literal(p, n, get_column_value, &ws),
                           us_array_literal(p, n, get_column_value, &id) };
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    us_db_rc rc = pg_select(db, p, US_STMT_SESSIONS_GET, args, &res);
    if (rc != US_DB_OK)
        return rc;
    while (next_row(db, p, res, &row) == US_DB_OK) {
        long long k = entry_ll(db, row, GET_POS_COL) - 1;
        if (k < 0 || k >= n)
            continue;
        get_args *a = items[k]->arg;
        us_row r = { db->conf->drv, row };
        if (a->fn)
            a->fn(&r, a->p, a->out);
        a->found++;
    }
    return US_DB_OK;
}

/* ctx: the leader's own read, whose connection and pool the batch uses */
static void session_get_batch(void *ctx, us_group_item *const *items, int n)
{
    const get_args *l = ctx;
    apr_pool_t *sub = NULL;
    if (n == 1) {
        /* as if alone: on the reader's own connection, its error its own */
        get_args *a = items[0]->arg;
        items[0]->rc = select_rows(a->db, a->p, US_STMT_SESSION_GET, a->args, a->fn, a->out,
                                   &a->found);
        return;
    }
    /* the leader's request pool keeps nothing of the batch */
    us_db_rc rc = apr_pool_create(&sub, l->p) == APR_SUCCESS
                      ? session_get_batch_run(l->db, sub, items, n) : US_DB_ERROR;
    if (sub)
        apr_pool_destroy(sub);
    for (int i = 0; i < n; i++)
        items[i]->rc = rc == US_DB_OK ? US_DB_OK : GET_ALONE;
}

static us_db_rc pg_gen_select(us_db *base, apr_pool_t *p, us_stmt_id id, const void **args,
                              us_row_fn fn, void *out, int *nrows)
{
    us_pg_db *db = pg_of(base);
    if (id == US_STMT_SESSION_GET && db->conf->gets && !db->in_txn) {
        get_args a = { db, args, fn, out, p, 0 };
        us_group_item item = { .arg = &a };
        int rc = us_group_run(db->conf->gets, &item, session_get_batch, &a);
        if (rc != GET_ALONE) {
            if (nrows)
                *nrows = a.found;
            return (us_db_rc)rc;
        }
    }
    return select_rows(db, p, id, args, fn, out, nrows);
}

void us_pg_session_reads(const us_db *base, unsigned long *statements, unsigned long *reads)
{
    const us_pg_db *db = (const us_pg_db *)base;
    *statements = *reads = 0;
    if (db->conf->gets)
        us_group_counts(db->conf->gets, statements, reads);
}

typedef struct {
    us_txn_fn fn;
    void *arg;
} txn_call;

static us_db_rc txn_call_body(us_pg_db *db, apr_pool_t *p, void *arg)
{
    txn_call *c = arg;
    return c->fn(&db->base, p, c->arg);
}

static us_db_rc pg_gen_write(us_db *base, apr_pool_t *p, us_txn_fn fn, void *arg)
{
    txn_call c = { fn, arg };
    return pg_txn(pg_of(base), p, txn_call_body, &c);
}

const us_store_backend us_pgsql_backend = {
    .name = "pgsql",
    .driver = "pgsql",
    .params_are_path = 0,
    .configure = pg_configure,
    .home = pg_home,
    .set_lock_timeout = pg_set_lock_timeout,
    .set_logger = pg_set_logger,
    .migrate = pg_migrate,
    .prepare_files = pg_prepare_files,
    .user_files = pg_user_files,
    .open = pg_open,
    .close = pg_close,
    .maintain = pg_maintain,
    .error = pg_error,
    .worn_out = pg_worn_out,
    .outcome_unknown = pg_outcome_unknown,
    .clear_error = pg_clear_error,
    .set_error = pg_set_error,
    .statement = us_pg_sql_statement,
    .exec = pg_gen_exec,
    .select = pg_gen_select,
    .write = pg_gen_write,
    .write_one = pg_gen_write_one,
    .session_insert = pg_session_insert,
    .sessions_expire = pg_sessions_expire,
    .ingest_claim = pg_ingest_claim,
    .ingest_heartbeat = pg_ingest_heartbeat,
    .workspace_file_list_built = pg_workspace_file_list_built,
    .workspace_file_delete = pg_workspace_file_delete,
    .workspace_files_delete = pg_workspace_files_delete,
    .workspace_delete = pg_workspace_delete,
};

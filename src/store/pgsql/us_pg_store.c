/*
 * us_pg_store.c - the PostgreSQL backend: UploadSessionStore pgsql
 * "<libpq conninfo>", through apr_dbd's pgsql driver. Every query is a
 * prepared statement (us_pg_sql.c); writes that span statements run in a
 * transaction of their own (READ COMMITTED), retried on a deadlock.
 *
 * The driver's pitfalls shape this file: selects use random access (its
 * sequential mode sleeps when a query returns no rows and reports errors
 * as "no rows"); NULL reads as "" through apr_dbd_get_entry, so nullable
 * columns are read with apr_dbd_datum_get; errors carry message text only;
 * and a connection the driver re-established underneath (PQreset) has lost
 * its prepared statements - a broken connection is thrown away and opened
 * again, with every statement prepared anew, before its next use.
 */
#include "us_log.h"
#include "us_pg_filter.h"
#include "us_pg_sql.h"
#include "us_store_backend.h"

#include <apr_dbd.h>
#include <apr_hash.h>
#include <apr_strings.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const apr_dbd_driver_t *drv;
    const char *conninfo;
    int lock_timeout_ms;
    const us_logger *log;
} us_pg_conf;

/* Statements built for a request (a filtered or re-ordered file list) are
 * prepared once per connection under a label of their own; a connection
 * holding this many is worn out and closed instead of pooled again (each
 * one is server memory of its backend process). */
#define US_PG_MAX_DYNAMIC 64

/* Message numbers (us_log.h: 11xx the store; 1101-1107 are SQLite's). */
enum {
    US_LOGNO_PG_BROKEN = 1110,   /* a connection is gone; the next use opens a new one */
    US_LOGNO_PG_CONNECT = 1111,  /* a connection cannot be opened */
    US_LOGNO_PG_RETRY = 1112,    /* a transaction is retried after a deadlock */
    US_LOGNO_PG_ROLLBACK = 1113, /* a rollback failed */
    US_LOGNO_PG_BUSY = 1114,     /* a statement found the database busy */
};

typedef struct {
    us_db base;                    /* first: the front's view */
    apr_pool_t *pool;              /* the connection object's */
    apr_pool_t *hpool;             /* the driver handle's and its statements' */
    const us_pg_conf *conf;
    apr_dbd_t *h;
    apr_dbd_prepared_t *stmt[US_PG__COUNT];
    apr_hash_t *dynamic;           /* SQL text -> built statement, in hpool */
    int worn_out;                  /* holds US_PG_MAX_DYNAMIC built statements */
    int broken;                    /* reopen before the next statement */
    int deadlock;                  /* the last failure was a deadlock: retry */
    const char *err;
} us_pg_db;

extern const us_store_backend us_pgsql_backend;

static us_pg_db *pg_of(us_db *db)
{
    return (us_pg_db *)db;
}

/* ---- errors and connections ------------------------------------------------ */

/* Message fragments of libpq and the server that mean "try again". */
static const char *const RETRY_TEXT[] = {
    "deadlock detected", "could not serialize", "lock timeout",
    "canceling statement due to statement timeout", "could not obtain lock",
    "too many connections", "the database system is starting up",
    "the database system is shutting down", NULL
};
/* ... and those that mean the connection is gone (or was silently reset). */
static const char *const BROKEN_TEXT[] = {
    "server closed the connection", "terminating connection", "no connection to the server",
    "connection to server", "could not receive data", "could not send data",
    "SSL connection has been closed", NULL
};

static int has_any(const char *msg, const char *const *frags)
{
    for (; msg && *frags; frags++)
        if (strstr(msg, *frags))
            return 1;
    return 0;
}

static us_db_rc pg_fail(us_pg_db *db, int rc, const char *what)
{
    const char *msg = db->h ? apr_dbd_error(db->conf->drv, db->h, rc) : NULL;
    db->err = apr_psprintf(db->pool, "%s: %s", what, msg ? msg : "unknown error");
    db->deadlock = msg && (strstr(msg, "deadlock detected") || strstr(msg, "could not serialize"));
    /* a statement the driver's PQreset lost: "prepared statement ... does not exist" */
    if (!db->h || has_any(msg, BROKEN_TEXT) ||
        (msg && strstr(msg, "prepared statement") && strstr(msg, "does not exist")) ||
        apr_dbd_check_conn(db->conf->drv, db->hpool, db->h) != APR_SUCCESS) {
        db->broken = 1;
        us_log(db->conf->log, US_LOG_WARN, 0, US_LOGNO_PG_BROKEN,
               "PostgreSQL connection lost, reopened at its next use: %s", db->err);
        return US_DB_BUSY;
    }
    if (has_any(msg, RETRY_TEXT)) {
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

/* Opens the driver handle; with_stmts: prepares every statement too. */
static us_db_rc connect_handle(us_pg_db *db, int with_stmts)
{
    const char *oerr = NULL;
    drop_handle(db);
    apr_pool_create(&db->hpool, db->pool);
    apr_pool_tag(db->hpool, "us_pg_handle");
    if (apr_dbd_open_ex(db->conf->drv, db->hpool, db->conf->conninfo, &db->h, &oerr) !=
            APR_SUCCESS || !db->h) {
        db->err = apr_psprintf(db->pool, "cannot connect to PostgreSQL: %s",
                               oerr ? oerr : "unknown error");
        us_log(db->conf->log, US_LOG_WARN, 0, US_LOGNO_PG_CONNECT, "%s", db->err);
        db->h = NULL;
        drop_handle(db);
        return US_DB_BUSY;
    }
    apr_pool_cleanup_register(db->hpool, db, handle_cleanup, apr_pool_cleanup_null);
    us_db_rc rc = pg_exec_sql(db, apr_psprintf(db->hpool, "SET lock_timeout = %d",
                                               db->conf->lock_timeout_ms));
    for (int i = 0; rc == US_DB_OK && with_stmts && i < US_PG__COUNT; i++) {
        const us_pg_stmt_def *def = us_pg_sql_statement((us_pg_stmt_id)i);
        int prc = apr_dbd_prepare(db->conf->drv, db->hpool, db->h, def->sql, def->label,
                                  &db->stmt[i]);
        if (prc != 0) {
            rc = pg_fail(db, prc, def->label);
            db->err = apr_psprintf(db->pool, "cannot prepare %s (is the schema current?): %s",
                                   def->label, db->err);
        }
    }
    if (rc != US_DB_OK)
        drop_handle(db);
    db->broken = rc != US_DB_OK;
    return rc;
}

/* The connection, reopened first when the last use found it broken. */
static us_db_rc pg_ready(us_pg_db *db)
{
    return db->broken || !db->h ? connect_handle(db, 1) : US_DB_OK;
}

static us_db_rc pg_new(const us_pg_conf *conf, apr_pool_t *p, int with_stmts, us_pg_db **out,
                       const char **err)
{
    apr_pool_t *sub;
    apr_pool_create(&sub, p);
    apr_pool_tag(sub, "us_pg_db");
    us_pg_db *db = apr_pcalloc(sub, sizeof(*db));
    db->base.backend = &us_pgsql_backend;
    db->pool = sub;
    db->conf = conf;
    us_db_rc rc = connect_handle(db, with_stmts);
    if (rc != US_DB_OK) {
        *err = apr_pstrdup(p, db->err);
        apr_pool_destroy(sub);
        return rc;
    }
    *out = db;
    return US_DB_OK;
}

/* ---- statements ------------------------------------------------------------ */

static us_db_rc pg_select(us_pg_db *db, apr_pool_t *p, us_pg_stmt_id id, const void **args,
                          apr_dbd_results_t **res)
{
    us_db_rc rc = pg_ready(db);
    if (rc != US_DB_OK)
        return rc;
    *res = NULL;
    /* random access: see the top of this file */
    int qrc = apr_dbd_pbselect(db->conf->drv, p, db->h, res, db->stmt[id], 1, args);
    return qrc == 0 ? US_DB_OK : pg_fail(db, qrc, us_pg_sql_statement(id)->label);
}

static us_db_rc pg_exec(us_pg_db *db, apr_pool_t *p, us_pg_stmt_id id, const void **args,
                        int *nrows)
{
    us_db_rc rc = pg_ready(db);
    if (rc != US_DB_OK)
        return rc;
    *nrows = 0;
    int qrc = apr_dbd_pbquery(db->conf->drv, p, db->h, nrows, db->stmt[id], args);
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

/* A nullable text column: NULL for SQL NULL. */
static const char *entry_null(const us_pg_db *db, apr_pool_t *p, apr_dbd_row_t *row, int col)
{
    char *v = NULL;
    if (apr_dbd_datum_get(db->conf->drv, row, col, APR_DBD_TYPE_STRING, &v) != APR_SUCCESS ||
        !v)
        return NULL;
    return apr_pstrdup(p, v);
}

/* The first column of the first row as a number (counts, flags); *found
 * (may be NULL) says whether there was a row. */
static us_db_rc select_ll(us_pg_db *db, apr_pool_t *p, us_pg_stmt_id id, const void **args,
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
static void row_to_session(const us_pg_db *db, apr_pool_t *p, apr_dbd_row_t *row, us_session *s)
{
    memset(s, 0, sizeof(*s));
    s->id = entry_str(db, p, row, 0);
    s->workspace = entry_str(db, p, row, 1);
    s->user_id = entry_str(db, p, row, 2);
    s->given_name = entry_str(db, p, row, 3);
    s->family_name = entry_str(db, p, row, 4);
    s->write_mode = entry_str(db, p, row, 5);
    s->parallel = (int)entry_ll(db, row, 6);
    s->status = entry_str(db, p, row, 7);
    s->created_at = (apr_time_t)entry_ll(db, row, 8);
    s->expires_at = (apr_time_t)entry_ll(db, row, 9);
    s->uploaded_files = entry_ll(db, row, 10);
    s->finished_files = entry_ll(db, row, 11);
    s->failed_files = entry_ll(db, row, 12);
    s->direct = (int)entry_ll(db, row, 13);
}

static us_db_rc select_session(us_pg_db *db, apr_pool_t *p, us_pg_stmt_id id, const void **args,
                               us_session *out)
{
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    int found = 0;
    us_db_rc rc = pg_select(db, p, id, args, &res);
    if (rc != US_DB_OK)
        return rc;
    while (next_row(db, p, res, &row) == US_DB_OK) {
        row_to_session(db, p, row, out);
        found = 1;
    }
    return found ? US_DB_OK : US_DB_NOTFOUND;
}

/* ---- transactions ------------------------------------------------------------ */

/* A transaction's body: returns US_DB_OK to commit; anything else rolls
 * back (logical answers included: they change nothing). May run again
 * after a deadlock: reset outputs at its start. */
typedef us_db_rc (*pg_txn_fn)(us_pg_db *db, apr_pool_t *p, void *arg);

#define PG_TXN_ATTEMPTS 3

static us_db_rc pg_txn(us_pg_db *db, apr_pool_t *p, pg_txn_fn fn, void *arg)
{
    us_db_rc rc = US_DB_ERROR;
    for (int attempt = 0; attempt < PG_TXN_ATTEMPTS; attempt++) {
        db->deadlock = 0;
        if ((rc = pg_ready(db)) != US_DB_OK)
            return rc;
        if ((rc = pg_exec_sql(db, "BEGIN")) != US_DB_OK)
            return rc;
        rc = fn(db, p, arg);
        if (rc == US_DB_OK) {
            rc = pg_exec_sql(db, "COMMIT");
            if (rc == US_DB_OK || db->broken)
                return rc;
        }
        else if (!db->broken) {
            const char *err = db->err;
            int deadlock = db->deadlock;
            us_db_rc rrc = pg_exec_sql(db, "ROLLBACK");
            /* a connection lost meanwhile took the transaction with it
             * (logged as lost by pg_exec_sql): nothing was left open */
            if (rrc != US_DB_OK && !db->broken)
                us_log(db->conf->log, US_LOG_ERR, 0, US_LOGNO_PG_ROLLBACK, "rollback failed: %s",
                       db->err);
            db->err = err;
            db->deadlock = deadlock;
            if (rrc != US_DB_OK)
                return rc;
        }
        if (!(rc == US_DB_BUSY && db->deadlock && !db->broken))
            return rc;
        us_log(db->conf->log, US_LOG_DEBUG, 0, US_LOGNO_PG_RETRY, "transaction retried: %s",
               db->err);
    }
    return rc;
}

/* ---- lifecycle ------------------------------------------------------------------ */

static us_db_rc pg_configure(apr_pool_t *p, const char *params, void **conf, const char **err)
{
    us_pg_conf *c = apr_pcalloc(p, sizeof(*c));
    c->lock_timeout_ms = US_DEFAULT_BUSY_TIMEOUT_MS;
    apr_status_t rv = apr_dbd_get_driver(p, "pgsql", &c->drv);
    switch (rv) {
    case APR_SUCCESS:
        c->conninfo = apr_pstrdup(p, params);
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
    if ((rc = pg_exec_sql(db, US_PG_SQL_MIGRATE_LOCK)) != US_DB_OK ||
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
    us_db_rc rc = pg_new(conf, p, 0, &db, err);
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
    us_db_rc rc = pg_new(conf, p, 1, &db, err);
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

static const char *pg_error(us_db *db)
{
    return pg_of(db)->err ? pg_of(db)->err : "no error";
}

static void pg_clear_error(us_db *db)
{
    pg_of(db)->err = NULL;
}

/* ---- sessions ------------------------------------------------------------------- */

/* Makes the workspace's row unless it has one: in the transaction that
 * writes its first data (docs/design-workspaces.md). */
static us_db_rc workspace_ensure(us_pg_db *db, apr_pool_t *p, const char *workspace,
                                 apr_time_t now)
{
    apr_int64_t t = now;
    const void *args[] = { workspace, &t };
    int nrows = 0;
    return pg_exec(db, p, US_PG_WORKSPACE_ENSURE, args, &nrows);
}

typedef struct {
    const us_session *s;
    int max_open;
    apr_time_t now;
} insert_args;

static us_db_rc insert_body(us_pg_db *db, apr_pool_t *p, void *arg)
{
    const insert_args *a = arg;
    const us_session *s = a->s;
    apr_int64_t created = s->created_at, expires = s->expires_at, t = a->now;
    int parallel = s->parallel, max_open = a->max_open, direct = s->direct, nrows = 0;
    const void *lock_args[] = { s->user_id };
    const void *take_args[] = { s->user_id, s->user_id, &t, &max_open };
    const void *args[] = { s->id, s->workspace, s->user_id, s->given_name, s->family_name,
                           s->write_mode, &parallel, &created, &expires, &direct };
    us_db_rc rc = pg_exec(db, p, US_PG_USER_OPEN_LOCK, lock_args, &nrows);
    if (rc == US_DB_OK)
        rc = pg_exec(db, p, US_PG_USER_OPEN_TAKE, take_args, &nrows);
    if (rc != US_DB_OK)
        return rc;
    if (nrows != 1)
        return US_DB_LIMIT;
    rc = pg_exec(db, p, US_PG_SESSION_INSERT, args, &nrows);
    return rc == US_DB_OK ? workspace_ensure(db, p, s->workspace, a->now) : rc;
}

static us_db_rc pg_session_insert(us_db *base, apr_pool_t *p, const us_session *s, int max_open,
                                  apr_time_t now)
{
    insert_args a = { s, max_open, now };
    return pg_txn(pg_of(base), p, insert_body, &a);
}

static us_db_rc pg_session_get(us_db *base, apr_pool_t *p, const char *workspace, const char *id,
                               apr_time_t now, us_session *out)
{
    apr_int64_t t = now;
    const void *args[] = { &t, workspace, id };
    return select_session(pg_of(base), p, US_PG_SESSION_GET, args, out);
}

static us_db_rc pg_session_by_id(us_db *base, apr_pool_t *p, const char *id, apr_time_t now,
                                 us_session *out)
{
    apr_int64_t t = now;
    const void *args[] = { &t, id };
    return select_session(pg_of(base), p, US_PG_SESSION_BY_ID, args, out);
}

static us_db_rc pg_session_close(us_db *base, apr_pool_t *p, const char *workspace,
                                 const char *id, apr_time_t now)
{
    us_pg_db *db = pg_of(base);
    apr_int64_t t = now;
    long long closed = 0;
    const void *args[] = { &t, workspace, id, &t };
    /* one statement: its own transaction */
    us_db_rc rc = select_ll(db, p, US_PG_SESSION_CLOSE, args, &closed, NULL);
    if (rc != US_DB_OK)
        return rc;
    if (closed == 1)
        return US_DB_OK;
    us_session s;
    rc = pg_session_get(base, p, workspace, id, now, &s);
    return rc == US_DB_OK ? US_DB_CONFLICT : rc;
}

typedef struct {
    const char *workspace, *id;
    apr_time_t now;
} abort_args;

static us_db_rc abort_body(us_pg_db *db, apr_pool_t *p, void *arg)
{
    const abort_args *a = arg;
    apr_int64_t t = a->now;
    long long aborted = 0;
    int nrows = 0;
    const void *args[] = { &t, a->workspace, a->id, &t };
    us_db_rc rc = select_ll(db, p, US_PG_SESSION_ABORT, args, &aborted, NULL);
    if (rc != US_DB_OK)
        return rc;
    if (aborted == 1) {
        const void *dargs[] = { a->id };
        return pg_exec(db, p, US_PG_UPLOADS_DISCARD, dargs, &nrows);
    }
    us_session s;
    rc = pg_session_get(&db->base, p, a->workspace, a->id, a->now, &s);
    return rc == US_DB_OK ? US_DB_CONFLICT : rc;
}

static us_db_rc pg_session_abort(us_db *base, apr_pool_t *p, const char *workspace,
                                 const char *id, apr_time_t now)
{
    abort_args a = { workspace, id, now };
    return pg_txn(pg_of(base), p, abort_body, &a);
}

static us_db_rc pg_session_list(us_db *base, apr_pool_t *p, const char *workspace, int is_expired,
                                const us_page *pg, apr_time_t now,
                                apr_array_header_t **rows, long long *total)
{
    us_pg_db *db = pg_of(base);
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    apr_int64_t t = now, lim = pg->limit, off = pg->offset;
    int f = is_expired < 0 ? 0 : is_expired ? 1 : 2;
    static const us_pg_stmt_id LIST[] = { US_PG_SESSION_LIST_ALL, US_PG_SESSION_LIST_EXPIRED,
                                          US_PG_SESSION_LIST_ACTIVE };
    static const us_pg_stmt_id AFTER[] = { US_PG_SESSION_AFTER_ALL, US_PG_SESSION_AFTER_EXPIRED,
                                           US_PG_SESSION_AFTER_ACTIVE };
    static const us_pg_stmt_id BEFORE[] = { US_PG_SESSION_BEFORE_ALL,
                                            US_PG_SESSION_BEFORE_EXPIRED,
                                            US_PG_SESSION_BEFORE_ACTIVE };
    static const us_pg_stmt_id COUNT[] = { US_PG_SESSION_COUNT_ALL, US_PG_SESSION_COUNT_EXPIRED,
                                           US_PG_SESSION_COUNT_ACTIVE };
    const void *largs_all[] = { &t, workspace, &lim, &off };
    const void *largs_f[] = { &t, workspace, &t, &lim, &off };
    const void *cur_all[] = { &t, workspace, workspace, pg->cursor, &lim };
    const void *cur_f[] = { &t, workspace, &t, workspace, pg->cursor, &lim };
    const void *cargs_all[] = { workspace };
    const void *cargs_f[] = { workspace, &t };
    us_db_rc rc = select_ll(db, p, COUNT[f], f == 0 ? cargs_all : cargs_f, total, NULL);
    if (rc != US_DB_OK)
        return rc;
    if (pg->cursor)
        rc = pg_select(db, p, pg->before ? BEFORE[f] : AFTER[f], f == 0 ? cur_all : cur_f,
                       &res);
    else
        rc = pg_select(db, p, LIST[f], f == 0 ? largs_all : largs_f, &res);
    if (rc != US_DB_OK)
        return rc;
    *rows = apr_array_make(p, (int)(pg->limit > 0 && pg->limit < 1000 ? pg->limit : 16),
                           sizeof(us_session));
    while (next_row(db, p, res, &row) == US_DB_OK)
        row_to_session(db, p, row, apr_array_push(*rows));
    return US_DB_OK;
}

static us_db_rc expire_body(us_pg_db *db, apr_pool_t *p, void *arg)
{
    long long *count = arg;
    long long mine = 0;
    us_db_rc rc = select_ll(db, p, US_PG_SWEEP_LOCK, NULL, &mine, NULL);
    if (rc != US_DB_OK || !mine)
        return rc; /* another node sweeps now */
    return select_ll(db, p, US_PG_SESSIONS_EXPIRE, NULL, count, NULL);
}

static us_db_rc pg_sessions_expire(us_db *base, apr_pool_t *p, int *count)
{
    long long n = 0;
    us_db_rc rc = pg_txn(pg_of(base), p, expire_body, &n);
    *count = rc == US_DB_OK ? (int)n : 0;
    return rc;
}

/* ---- node registry ----------------------------------------------------------------- */

static us_db_rc pg_node_claim(us_db *base, apr_pool_t *p, const us_node *me, const char *replaces,
                              apr_interval_time_t ttl, us_node *holder)
{
    us_pg_db *db = pg_of(base);
    apr_int64_t pid = me->pid, lease = ttl;
    long long one = 0;
    int granted = 0;
    const void *args[] = { me->name, me->instance, me->host, &pid, replaces ? replaces : "",
                           &lease };
    us_db_rc rc = select_ll(db, p, US_PG_NODE_CLAIM, args, &one, &granted);
    if (rc != US_DB_OK || granted)
        return rc;
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    const void *hargs[] = { me->name };
    memset(holder, 0, sizeof(*holder));
    holder->name = apr_pstrdup(p, me->name);
    holder->instance = holder->host = "";
    if ((rc = pg_select(db, p, US_PG_NODE_HOLDER, hargs, &res)) != US_DB_OK)
        return rc;
    while (next_row(db, p, res, &row) == US_DB_OK) {
        holder->instance = entry_str(db, p, row, 0);
        holder->host = entry_str(db, p, row, 1);
        holder->pid = entry_ll(db, row, 2);
        holder->age = (apr_interval_time_t)entry_ll(db, row, 3);
    }
    return US_DB_CONFLICT;
}

static us_db_rc pg_node_heartbeat(us_db *base, apr_pool_t *p, const char *name,
                                  const char *instance)
{
    int nrows = 0;
    const void *args[] = { name, instance };
    us_db_rc rc = pg_exec(pg_of(base), p, US_PG_NODE_HEARTBEAT, args, &nrows);
    return rc == US_DB_OK && nrows == 0 ? US_DB_CONFLICT : rc;
}

/* ---- uploads ---------------------------------------------------------------------- */

typedef struct {
    const us_upload_record *u;
    apr_time_t now;
    const char *old_blob;
} upload_args;

static us_db_rc upload_body(us_pg_db *db, apr_pool_t *p, void *arg)
{
    upload_args *a = arg;
    const us_upload_record *u = a->u;
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    apr_int64_t t = a->now, size = u->size, at = u->uploaded_at;
    int is_meta = u->is_meta, nrows = 0, open = 0;
    long long one = 0;
    us_db_rc rc;

    a->old_blob = NULL;
    const void *open_args[] = { u->session_id, &t };
    if ((rc = select_ll(db, p, US_PG_SESSION_LOCK_OPEN, open_args, &one, &open)) != US_DB_OK)
        return rc;
    if (!open)
        return US_DB_CONFLICT;
    /* commits of this session take turns on its row from here on */
    const void *blob_args[] = { u->session_id, u->name };
    if ((rc = pg_select(db, p, US_PG_UPLOAD_BLOB_GET, blob_args, &res)) != US_DB_OK)
        return rc;
    while (next_row(db, p, res, &row) == US_DB_OK)
        a->old_blob = entry_str(db, p, row, 0);
    if (a->old_blob) {
        const void *args[] = { u->blob, &size, u->sha256, &at, u->session_id, u->name };
        return pg_exec(db, p, US_PG_UPLOAD_REPLACE, args, &nrows);
    }
    if (!u->is_meta && u->max_files > 0) { /* the session's row is held: the count is final */
        long long held = 0;
        const void *held_args[] = { u->session_id };
        if ((rc = select_ll(db, p, US_PG_SESSION_UPLOADED, held_args, &held, NULL)) != US_DB_OK)
            return rc;
        if (held >= u->max_files)
            return US_DB_LIMIT;
    }
    const void *args[] = { u->session_id, u->name, u->blob, &size, u->sha256, &is_meta,
                           &at, u->file_ingestion_id };
    if ((rc = pg_exec(db, p, US_PG_UPLOAD_INSERT, args, &nrows)) != US_DB_OK || u->is_meta)
        return rc;
    const void *count_args[] = { u->session_id };
    return pg_exec(db, p, US_PG_SESSION_COUNT_UPLOAD, count_args, &nrows);
}

static us_db_rc pg_upload_commit(us_db *base, apr_pool_t *p, const us_upload_record *u,
                                 apr_time_t now, const char **old_blob)
{
    upload_args a = { u, now, NULL };
    us_db_rc rc = pg_txn(pg_of(base), p, upload_body, &a);
    *old_blob = rc == US_DB_OK ? a.old_blob : NULL;
    return rc;
}

static us_db_rc pg_upload_blob(us_db *base, apr_pool_t *p, const char *session_id,
                               const char *name, const char **blob)
{
    us_pg_db *db = pg_of(base);
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    const void *args[] = { session_id, name };
    us_db_rc rc = pg_select(db, p, US_PG_UPLOAD_BLOB_GET, args, &res);
    *blob = NULL;
    if (rc != US_DB_OK)
        return rc;
    while (next_row(db, p, res, &row) == US_DB_OK)
        *blob = entry_str(db, p, row, 0);
    return US_DB_OK;
}

static us_db_rc pg_session_files_list(us_db *base, apr_pool_t *p, const char *session_id,
                                      const char *status, const us_page *pg,
                                      apr_array_header_t **rows, long long *total)
{
    us_pg_db *db = pg_of(base);
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    apr_int64_t lim = pg->limit, off = pg->offset;
    const void *cargs[] = { session_id, status };
    const void *largs_all[] = { session_id, &lim, &off };
    const void *largs_st[] = { session_id, status, &lim, &off };
    const void *cur_all[] = { session_id, session_id, pg->cursor, &lim };
    const void *cur_st[] = { session_id, status, session_id, pg->cursor, &lim };
    us_pg_stmt_id list;
    const void **args;
    us_db_rc rc = select_ll(db, p, status ? US_PG_FILES_COUNT_STATUS : US_PG_FILES_COUNT_ALL,
                            cargs, total, NULL);
    if (rc != US_DB_OK)
        return rc;
    if (!pg->cursor) {
        list = status ? US_PG_FILES_LIST_STATUS : US_PG_FILES_LIST_ALL;
        args = status ? largs_st : largs_all;
    } else if (pg->before) {
        list = status ? US_PG_FILES_BEFORE_STATUS : US_PG_FILES_BEFORE_ALL;
        args = status ? cur_st : cur_all;
    } else {
        list = status ? US_PG_FILES_AFTER_STATUS : US_PG_FILES_AFTER_ALL;
        args = status ? cur_st : cur_all;
    }
    rc = pg_select(db, p, list, args, &res);
    if (rc != US_DB_OK)
        return rc;
    *rows = apr_array_make(p, (int)(pg->limit > 0 && pg->limit < 1000 ? pg->limit : 16),
                           sizeof(us_session_file_row));
    while (next_row(db, p, res, &row) == US_DB_OK) {
        us_session_file_row *f = apr_array_push(*rows);
        f->file_ingestion_id = entry_str(db, p, row, 0);
        f->name = entry_str(db, p, row, 1);
        f->status = entry_str(db, p, row, 2);
        f->reason = entry_null(db, p, row, 3);
    }
    return US_DB_OK;
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
    us_db_rc rc = pg_select(db, p, US_PG_INGEST_CANDIDATE, cargs, &res);
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
        if ((rc = select_ll(db, p, US_PG_TURN_LOCK, largs, &flag, NULL)) != US_DB_OK)
            return rc;
        if (!flag)
            return US_DB_NOTFOUND; /* another claimer decides this workspace now */
        int found = 0;
        if ((rc = select_ll(db, p, US_PG_IN_TURN, targs, &flag, &found)) != US_DB_OK)
            return rc;
        if (!found)
            return US_DB_NOTFOUND;
    }
    const void *args[] = { a->owner, id, &t };
    rc = select_session(db, p, US_PG_INGEST_CLAIM, args, a->out);
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

static us_db_rc pg_overview(us_db *base, apr_pool_t *p, apr_time_t now, us_store_overview *out)
{
    us_pg_db *db = pg_of(base);
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    apr_int64_t t = now;
    const void *args[] = { &t, &t };
    us_db_rc rc = pg_select(db, p, US_PG_OVERVIEW, args, &res);
    memset(out, 0, sizeof(*out));
    if (rc != US_DB_OK)
        return rc;
    while (next_row(db, p, res, &row) == US_DB_OK) {
        out->open = entry_ll(db, row, 0);
        out->closed = entry_ll(db, row, 1);
        out->expired = entry_ll(db, row, 2);
        out->queued = entry_ll(db, row, 3);
        out->running = entry_ll(db, row, 4);
        out->oldest_queued = (apr_time_t)entry_ll(db, row, 5); /* NULL (none) reads as 0 */
    }
    return US_DB_OK;
}

static us_db_rc pg_ingest_running(us_db *base, apr_pool_t *p, apr_array_header_t **claims)
{
    us_pg_db *db = pg_of(base);
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    us_db_rc rc = pg_select(db, p, US_PG_INGEST_RUNNING, NULL, &res);
    if (rc != US_DB_OK)
        return rc;
    *claims = apr_array_make(p, 4, sizeof(us_claim));
    while (next_row(db, p, res, &row) == US_DB_OK) {
        us_claim *c = apr_array_push(*claims);
        c->session_id = entry_str(db, p, row, 0);
        c->owner = entry_str(db, p, row, 1);
    }
    return US_DB_OK;
}

static us_db_rc pg_ingest_requeue(us_db *base, apr_pool_t *p, const char *session_id,
                                  const char *owner)
{
    int nrows = 0;
    const void *args[] = { session_id, owner };
    return pg_exec(pg_of(base), p, US_PG_INGEST_REQUEUE, args, &nrows);
}

static us_db_rc pg_ingest_heartbeat(us_db *base, apr_pool_t *p, const char *session_id,
                                    const char *owner, apr_time_t now)
{
    int nrows = 0;
    const void *args[] = { session_id, owner };
    (void)now; /* the heartbeat is the database's time */
    us_db_rc rc = pg_exec(pg_of(base), p, US_PG_INGEST_HEARTBEAT, args, &nrows);
    return rc == US_DB_OK && nrows == 0 ? US_DB_CONFLICT : rc;
}

static us_db_rc pg_ingest_done(us_db *base, apr_pool_t *p, const char *session_id,
                               const char *owner)
{
    int nrows = 0;
    const void *args[] = { session_id, owner };
    return pg_exec(pg_of(base), p, US_PG_INGEST_DONE, args, &nrows);
}

static us_db_rc pg_ingest_pending(us_db *base, apr_pool_t *p, const char *session_id, int limit,
                                  apr_array_header_t **rows)
{
    us_pg_db *db = pg_of(base);
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    const void *args[] = { session_id, &limit };
    us_db_rc rc = pg_select(db, p, US_PG_INGEST_PENDING, args, &res);
    if (rc != US_DB_OK)
        return rc;
    *rows = apr_array_make(p, limit > 0 && limit < 1000 ? limit : 16, sizeof(us_pending));
    while (next_row(db, p, res, &row) == US_DB_OK) {
        us_pending *u = apr_array_push(*rows);
        u->name = entry_str(db, p, row, 0);
        u->blob = entry_str(db, p, row, 1);
        u->size = entry_ll(db, row, 2);
        u->file_ingestion_id = entry_str(db, p, row, 3);
        u->etag = entry_null(db, p, row, 4);
    }
    return US_DB_OK;
}

/* ---- workspace files ------------------------------------------------------------- */

static us_db_rc pg_workspace_file_ids_by_name(us_db *base, apr_pool_t *p, const char *workspace,
                                              const char *name, apr_array_header_t **ids)
{
    us_pg_db *db = pg_of(base);
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    const void *args[] = { workspace, name };
    us_db_rc rc = pg_select(db, p, US_PG_WORKSPACE_FILE_IDS_BY_NAME, args, &res);
    if (rc != US_DB_OK)
        return rc;
    *ids = apr_array_make(p, 2, sizeof(const char *));
    while (next_row(db, p, res, &row) == US_DB_OK)
        APR_ARRAY_PUSH(*ids, const char *) = entry_str(db, p, row, 0);
    return US_DB_OK;
}

/* Waits for the other deciders about this name of the workspace; held
 * until the transaction ends. */
static us_db_rc name_lock(us_pg_db *db, apr_pool_t *p, const char *workspace, const char *name)
{
    long long one = 0;
    const void *args[] = { workspace, name };
    return select_ll(db, p, US_PG_NAME_LOCK, args, &one, NULL);
}

static us_db_rc delete_same_name(us_pg_db *db, apr_pool_t *p, const char *workspace,
                                 const char *name, const char *keep_id,
                                 apr_array_header_t *deleted)
{
    apr_array_header_t *ids;
    int nrows = 0;
    us_db_rc rc = pg_workspace_file_ids_by_name(&db->base, p, workspace, name, &ids);
    for (int i = 0; rc == US_DB_OK && i < ids->nelts; i++) {
        const char *id = APR_ARRAY_IDX(ids, i, const char *);
        if (strcmp(id, keep_id) == 0)
            continue;
        const void *args[] = { id };
        rc = pg_exec(db, p, US_PG_WORKSPACE_FILE_DELETE, args, &nrows);
        if (rc == US_DB_OK)
            APR_ARRAY_PUSH(deleted, const char *) = id;
    }
    return rc;
}

static us_db_rc insert_workspace_file(us_pg_db *db, apr_pool_t *p, const char *workspace,
                                      const char *file_id, const char *name, long long size,
                                      const char *meta, apr_time_t created,
                                      const char *session_id, long long characters)
{
    int nrows = 0;
    apr_int64_t sz = size, at = created, chars = characters;
    const void *args[] = { file_id, workspace, name, &sz, meta, &at, session_id,
                           characters < 0 ? NULL : &chars };
    return pg_exec(db, p, US_PG_WORKSPACE_FILE_INSERT, args, &nrows);
}

static us_db_rc name_taken(us_pg_db *db, apr_pool_t *p, const char *workspace, const char *name,
                           const char *own_id, int *taken)
{
    apr_array_header_t *ids;
    us_db_rc rc = pg_workspace_file_ids_by_name(&db->base, p, workspace, name, &ids);
    *taken = 0;
    for (int i = 0; rc == US_DB_OK && i < ids->nelts; i++)
        *taken |= strcmp(APR_ARRAY_IDX(ids, i, const char *), own_id) != 0;
    return rc;
}

/* One result inside the batch transaction. *counted: 0 when it was decided
 * already, else 1 for FINISHED and 2 for FAILED. */
static us_db_rc apply_one(us_pg_db *db, apr_pool_t *p, const us_session *s,
                          const us_ingest_result *r, apr_time_t now,
                          apr_array_header_t *deleted, int *counted)
{
    const char *status = r->status, *reason = r->reason;
    int nrows = 0, taken = 0;
    int finished = strcmp(status, "FINISHED") == 0;
    us_db_rc rc = US_DB_OK;

    *counted = 0;
    if (finished && (strcmp(s->write_mode, "FAIL") == 0 || r->overwrite) &&
        (rc = name_lock(db, p, s->workspace, r->name)) != US_DB_OK)
        return rc;
    if (finished && strcmp(s->write_mode, "FAIL") == 0 &&
        (rc = name_taken(db, p, s->workspace, r->name, r->file_id, &taken)) != US_DB_OK)
        return rc;
    if (taken) {
        status = "FAILED";
        reason = "FILE_ALREADY_EXISTS";
    }
    const void *args[] = { status, reason, s->id, r->name };
    if ((rc = pg_exec(db, p, US_PG_UPLOAD_SET_STATE, args, &nrows)) != US_DB_OK || nrows != 1)
        return rc;
    *counted = strcmp(status, "FINISHED") == 0 ? 1 : 2;
    if (taken) /* its blob was moved already: the caller removes it */
        APR_ARRAY_PUSH(deleted, const char *) = r->file_id;
    if (*counted != 1)
        return US_DB_OK;
    if (r->overwrite &&
        (rc = delete_same_name(db, p, s->workspace, r->name, r->file_id, deleted)) != US_DB_OK)
        return rc;
    return insert_workspace_file(db, p, s->workspace, r->file_id, r->name, r->size, r->meta, now,
                                 s->id, r->characters);
}

typedef struct {
    const us_session *s;
    const apr_array_header_t *results;
    apr_time_t now;
    apr_array_header_t *deleted;
} apply_args;

static us_db_rc apply_body(us_pg_db *db, apr_pool_t *p, void *arg)
{
    apply_args *a = arg;
    const us_session *s = a->s;
    apr_int64_t finished = 0, failed = 0;
    int nrows = 0;
    us_db_rc rc = US_DB_OK;
    apr_array_clear(a->deleted);
    if (s->ingest_owner) {
        /* fencing: a worker whose lease was taken over changes nothing */
        int held = 0;
        long long one = 0;
        const void *args[] = { s->id, s->ingest_owner };
        if ((rc = select_ll(db, p, US_PG_CLAIM_HELD, args, &one, &held)) != US_DB_OK)
            return rc;
        if (!held) {
            db->err = apr_psprintf(db->pool, "session %s: %s no longer holds the claim", s->id,
                                   s->ingest_owner);
            return US_DB_CONFLICT;
        }
    }
    for (int i = 0; rc == US_DB_OK && i < a->results->nelts; i++) {
        const us_ingest_result *r = &APR_ARRAY_IDX(a->results, i, us_ingest_result);
        int counted = 0;
        rc = apply_one(db, p, s, r, a->now + i, a->deleted, &counted);
        finished += counted == 1;
        failed += counted == 2;
    }
    if (rc == US_DB_OK && finished + failed > 0) {
        const void *args[] = { &finished, &failed, s->id };
        rc = pg_exec(db, p, US_PG_SESSION_ADD_COUNTS, args, &nrows);
    }
    return rc;
}

typedef struct {
    const us_session *s;
    const apr_array_header_t *objects;
    int recorded;
} listing_args;

static us_db_rc listing_body(us_pg_db *db, apr_pool_t *p, void *arg)
{
    listing_args *a = arg;
    const us_session *s = a->s;
    int nrows = 0;
    us_db_rc rc;
    a->recorded = 0;
    if (s->ingest_owner) {
        int held = 0;
        long long one = 0;
        const void *args[] = { s->id, s->ingest_owner };
        if ((rc = select_ll(db, p, US_PG_CLAIM_HELD, args, &one, &held)) != US_DB_OK)
            return rc;
        if (!held) {
            db->err = apr_psprintf(db->pool, "session %s: %s no longer holds the claim", s->id,
                                   s->ingest_owner);
            return US_DB_CONFLICT;
        }
    }
    const void *mark_args[] = { s->id };
    if ((rc = pg_exec(db, p, US_PG_LISTING_MARK, mark_args, &nrows)) != US_DB_OK || nrows == 0)
        return rc;
    apr_int64_t raw = 0;
    for (int i = 0; i < a->objects->nelts; i++) {
        const us_listed_object *o = &APR_ARRAY_IDX(a->objects, i, us_listed_object);
        apr_int64_t size = o->size, at = o->uploaded_at;
        int is_meta = o->is_meta;
        const void *args[] = { s->id, o->name, o->name, &size, &is_meta, &at,
                               o->file_ingestion_id, o->etag };
        if ((rc = pg_exec(db, p, US_PG_LISTED_INSERT, args, &nrows)) != US_DB_OK)
            return rc;
        raw += !o->is_meta;
    }
    const void *count_args[] = { &raw, s->id };
    if ((rc = pg_exec(db, p, US_PG_LISTED_COUNT, count_args, &nrows)) == US_DB_OK)
        a->recorded = 1;
    return rc;
}

static us_db_rc pg_ingest_record_listing(us_db *base, apr_pool_t *p, const us_session *s,
                                         const apr_array_header_t *objects, int *recorded)
{
    listing_args a = { s, objects, 0 };
    us_db_rc rc = pg_txn(pg_of(base), p, listing_body, &a);
    *recorded = rc == US_DB_OK ? a.recorded : 0;
    return rc;
}

static us_db_rc pg_ingest_apply(us_db *base, apr_pool_t *p, const us_session *s,
                                const apr_array_header_t *results, apr_time_t now,
                                apr_array_header_t **deleted)
{
    apply_args a = { s, results, now, apr_array_make(p, 4, sizeof(const char *)) };
    us_db_rc rc = pg_txn(pg_of(base), p, apply_body, &a);
    if (rc != US_DB_OK)
        apr_array_clear(a.deleted);
    *deleted = a.deleted;
    return rc;
}

static void row_to_workspace_file(const us_pg_db *db, apr_pool_t *p, apr_dbd_row_t *row,
                                  us_workspace_file *f)
{
    f->file_id = entry_str(db, p, row, 0);
    f->name = entry_str(db, p, row, 1);
    f->size = entry_ll(db, row, 2);
    f->meta = entry_null(db, p, row, 3);
    f->created_at = (apr_time_t)entry_ll(db, row, 4);
    f->characters = entry_null(db, p, row, 5) ? entry_ll(db, row, 5) : -1;
}

static us_db_rc pg_workspace_file_get(us_db *base, apr_pool_t *p, const char *workspace,
                                      const char *file_id, us_workspace_file *out)
{
    us_pg_db *db = pg_of(base);
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    const void *args[] = { workspace, file_id };
    int found = 0;
    us_db_rc rc = pg_select(db, p, US_PG_WORKSPACE_FILE_GET, args, &res);
    if (rc != US_DB_OK)
        return rc;
    while (next_row(db, p, res, &row) == US_DB_OK) {
        row_to_workspace_file(db, p, row, out);
        found = 1;
    }
    return found ? US_DB_OK : US_DB_NOTFOUND;
}

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
    const char *where = apr_pstrcat(p, " FROM us_files WHERE workspace = %s AND strpos(name, %s) > 0",
                                    q->filter ? " AND " : "",
                                    q->filter ? us_filter_sql(p, q->filter, args, &us_pg_filter_dialect)
                                              : "", NULL);
    us_db_rc rc = built_select(db, p, apr_pstrcat(p, "SELECT COUNT(*)", where, NULL), args, &counted);
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
    return built_select(db, p, apr_pstrcat(p, "SELECT ", us_pg_sql_workspace_file_cols(), where,
                                           cursor, " ORDER BY ", col, " ", dir,
                                           ", file_id COLLATE \"C\" ", dir,
                                           " LIMIT %lld OFFSET %lld", NULL),
                        args, listed);
}

static us_db_rc pg_workspace_file_list(us_db *base, apr_pool_t *p, const char *workspace,
                                       const us_workspace_file_query *q,
                                       apr_array_header_t **rows, long long *total)
{
    us_pg_db *db = pg_of(base);
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    apr_int64_t lim = q->limit, at = q->after_at;
    us_db_rc rc;
    if (q->filter || q->by_name || q->ascending || q->offset > 0) {
        rc = workspace_file_list_built(db, p, workspace, q, total, &res);
    } else {
        const void *cargs[] = { workspace, q->name_part };
        const void *largs[] = { workspace, q->name_part, &lim };
        const void *aargs[] = { workspace, q->name_part, &at, &at, q->after_id, &lim };
        rc = select_ll(db, p, US_PG_WORKSPACE_FILE_COUNT, cargs, total, NULL);
        if (rc == US_DB_OK)
            rc = q->after_id ? pg_select(db, p, US_PG_WORKSPACE_FILE_LIST_AFTER, aargs, &res)
                             : pg_select(db, p, US_PG_WORKSPACE_FILE_LIST, largs, &res);
    }
    if (rc != US_DB_OK)
        return rc;
    *rows = apr_array_make(p, (int)(q->limit > 0 && q->limit < 1000 ? q->limit : 16),
                           sizeof(us_workspace_file));
    while (next_row(db, p, res, &row) == US_DB_OK)
        row_to_workspace_file(db, p, row, apr_array_push(*rows));
    return US_DB_OK;
}

typedef struct {
    const char *workspace, *write_mode;
    const us_workspace_file *f;
    apr_array_header_t *deleted;
} file_add_args;

static us_db_rc file_add_body(us_pg_db *db, apr_pool_t *p, void *arg)
{
    file_add_args *a = arg;
    const us_workspace_file *f = a->f;
    apr_array_header_t *ids;
    us_db_rc rc;
    apr_array_clear(a->deleted);
    if ((rc = name_lock(db, p, a->workspace, f->name)) != US_DB_OK)
        return rc;
    if (strcmp(a->write_mode, "FAIL") == 0) {
        rc = pg_workspace_file_ids_by_name(&db->base, p, a->workspace, f->name, &ids);
        if (rc == US_DB_OK && ids->nelts > 0)
            rc = US_DB_CONFLICT;
    }
    else if (strcmp(a->write_mode, "OVERWRITE") == 0) {
        rc = delete_same_name(db, p, a->workspace, f->name, f->file_id, a->deleted);
    }
    if (rc == US_DB_OK)
        rc = insert_workspace_file(db, p, a->workspace, f->file_id, f->name, f->size, f->meta,
                                   f->created_at, NULL, f->characters);
    if (rc == US_DB_OK)
        rc = workspace_ensure(db, p, a->workspace, f->created_at);
    return rc;
}

static us_db_rc pg_workspace_file_add(us_db *base, apr_pool_t *p, const char *workspace,
                                      const us_workspace_file *f, const char *write_mode,
                                      apr_array_header_t **deleted)
{
    file_add_args a = { workspace, write_mode, f, apr_array_make(p, 2, sizeof(const char *)) };
    us_db_rc rc = pg_txn(pg_of(base), p, file_add_body, &a);
    if (rc != US_DB_OK)
        apr_array_clear(a.deleted);
    *deleted = a.deleted;
    return rc;
}

/* Runs a statement answering file ids (a DELETE ... RETURNING file_id, a
 * read of the trash), appending them to deleted. */
static us_db_rc select_ids(us_pg_db *db, apr_pool_t *p, us_pg_stmt_id id, const void **args,
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
    us_db_rc rc = select_ids(db, p, US_PG_WORKSPACE_FILE_DELETE_ONE, args, deleted);
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
        return select_ids(db, p, US_PG_WORKSPACE_FILES_DELETE_ALL, args, a->deleted);
    }
    for (int i = 0; rc == US_DB_OK && i < a->names->nelts; i++) {
        const void *args[] = { a->workspace, APR_ARRAY_IDX(a->names, i, const char *) };
        rc = select_ids(db, p, US_PG_WORKSPACE_FILES_DELETE_NAME, args, a->deleted);
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

static us_db_rc pg_file_trash_list(us_db *base, apr_pool_t *p, int limit, apr_array_header_t **ids)
{
    us_pg_db *db = pg_of(base);
    const void *args[] = { &limit };
    *ids = apr_array_make(p, limit > 0 ? limit : 1, sizeof(const char *));
    return select_ids(db, p, US_PG_FILE_TRASH_LIST, args, *ids);
}

static us_db_rc forget_body(us_pg_db *db, apr_pool_t *p, void *arg)
{
    const apr_array_header_t *ids = arg;
    us_db_rc rc = US_DB_OK;
    int nrows = 0;
    for (int i = 0; rc == US_DB_OK && i < ids->nelts; i++) {
        const void *args[] = { APR_ARRAY_IDX(ids, i, const char *) };
        rc = pg_exec(db, p, US_PG_FILE_TRASH_FORGET, args, &nrows);
    }
    return rc;
}

static us_db_rc pg_file_trash_forget(us_db *base, apr_pool_t *p, const apr_array_header_t *ids)
{
    if (ids->nelts == 0)
        return US_DB_OK;
    return pg_txn(pg_of(base), p, forget_body, (void *)ids);
}

static us_db_rc pg_workspace_file_meta_swap(us_db *base, apr_pool_t *p, const char *workspace,
                                            const char *file_id, const char *old_meta,
                                            const char *meta)
{
    us_pg_db *db = pg_of(base);
    int nrows = 0;
    const void *args[] = { meta, workspace, file_id, old_meta };
    /* one statement: the row lock and the re-check of meta make it a swap */
    us_db_rc rc = pg_exec(db, p, US_PG_WORKSPACE_FILE_META_SWAP, args, &nrows);
    if (rc != US_DB_OK || nrows == 1)
        return rc;
    us_workspace_file f;
    rc = pg_workspace_file_get(base, p, workspace, file_id, &f);
    return rc == US_DB_OK ? US_DB_CONFLICT : rc;
}

/* ---- workspaces ------------------------------------------------------------------ */

static void row_to_workspace(const us_pg_db *db, apr_pool_t *p, apr_dbd_row_t *row,
                             us_workspace *w)
{
    w->name = entry_str(db, p, row, 0);
    w->workspace_id = entry_str(db, p, row, 1);
    w->created_at = (apr_time_t)entry_ll(db, row, 2);
}

static us_db_rc pg_workspace_create(us_db *base, apr_pool_t *p, const char *name,
                                    const char *workspace_id, apr_time_t now)
{
    apr_int64_t t = now;
    const void *args[] = { name, workspace_id, &t };
    int nrows = 0;
    /* one statement: the unique index decides between concurrent creates */
    us_db_rc rc = pg_exec(pg_of(base), p, US_PG_WORKSPACE_CREATE, args, &nrows);
    return rc == US_DB_OK && nrows == 0 ? US_DB_CONFLICT : rc;
}

static us_db_rc pg_workspace_get(us_db *base, apr_pool_t *p, const char *name, us_workspace *out)
{
    us_pg_db *db = pg_of(base);
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    const void *args[] = { name };
    int found = 0;
    us_db_rc rc = pg_select(db, p, US_PG_WORKSPACE_GET, args, &res);
    if (rc != US_DB_OK)
        return rc;
    while (next_row(db, p, res, &row) == US_DB_OK) {
        row_to_workspace(db, p, row, out);
        found = 1;
    }
    return found ? US_DB_OK : US_DB_NOTFOUND;
}

static us_db_rc pg_workspace_list(us_db *base, apr_pool_t *p, const apr_array_header_t *names,
                                  apr_array_header_t **rows)
{
    us_pg_db *db = pg_of(base);
    *rows = apr_array_make(p, names ? names->nelts + 1 : 8, sizeof(us_workspace));
    if (!names) {
        apr_dbd_results_t *res = NULL;
        apr_dbd_row_t *row = NULL;
        us_db_rc rc = pg_select(db, p, US_PG_WORKSPACE_LIST, NULL, &res);
        if (rc != US_DB_OK)
            return rc;
        while (next_row(db, p, res, &row) == US_DB_OK)
            row_to_workspace(db, p, row, apr_array_push(*rows));
        return US_DB_OK;
    }
    for (int i = 0; i < names->nelts; i++) {
        us_workspace w;
        us_db_rc rc = pg_workspace_get(base, p, APR_ARRAY_IDX(names, i, const char *), &w);
        if (rc == US_DB_OK)
            APR_ARRAY_PUSH(*rows, us_workspace) = w;
        else if (rc != US_DB_NOTFOUND)
            return rc;
    }
    return US_DB_OK;
}

/* ---- webhook outbox -------------------------------------------------------------- */

static us_db_rc targets_body(us_pg_db *db, apr_pool_t *p, void *arg)
{
    const apr_array_header_t *urls = arg;
    int nrows = 0;
    us_db_rc rc = pg_exec(db, p, US_PG_WEBHOOK_TARGETS_CLEAR, NULL, &nrows);
    for (int i = 0; rc == US_DB_OK && urls && i < urls->nelts; i++) {
        const void *args[] = { APR_ARRAY_IDX(urls, i, const char *) };
        rc = pg_exec(db, p, US_PG_WEBHOOK_TARGET_ADD, args, &nrows);
    }
    return rc == US_DB_OK ? pg_exec(db, p, US_PG_WEBHOOK_DROP_UNLISTED, NULL, &nrows) : rc;
}

static us_db_rc pg_webhook_targets_set(us_db *base, apr_pool_t *p, const apr_array_header_t *urls)
{
    return pg_txn(pg_of(base), p, targets_body, (void *)urls);
}

static us_db_rc pg_webhook_claim(us_db *base, apr_pool_t *p, const char *owner, apr_time_t now,
                                 apr_time_t lease_until, us_webhook_row *out)
{
    us_pg_db *db = pg_of(base);
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    apr_int64_t t = now, until = lease_until;
    int found = 0;
    const void *args[] = { owner, &until, &t, &t };
    us_db_rc rc = pg_select(db, p, US_PG_WEBHOOK_CLAIM, args, &res);
    if (rc != US_DB_OK)
        return rc;
    while (next_row(db, p, res, &row) == US_DB_OK) {
        /* column order of WEBHOOK_COLS in us_pg_sql.c */
        out->id = entry_ll(db, row, 0);
        out->event = entry_str(db, p, row, 1);
        out->session_id = entry_str(db, p, row, 2);
        out->workspace = entry_str(db, p, row, 3);
        out->url = entry_str(db, p, row, 4);
        out->occurred_at = (apr_time_t)entry_ll(db, row, 5);
        out->uploaded_files = entry_ll(db, row, 6);
        out->finished_files = entry_ll(db, row, 7);
        out->failed_files = entry_ll(db, row, 8);
        out->page = (int)entry_ll(db, row, 9);
        out->attempts = (int)entry_ll(db, row, 10);
        found = 1;
    }
    return found ? US_DB_OK : US_DB_NOTFOUND;
}

static us_db_rc pg_webhook_delivered(us_db *base, apr_pool_t *p, long long id, const char *owner,
                                     int page, int pages)
{
    apr_int64_t i = id;
    int nrows = 0;
    const void *args[] = { &i, owner, &page };
    return pg_exec(pg_of(base), p, page < pages ? US_PG_WEBHOOK_NEXT_PAGE : US_PG_WEBHOOK_DONE,
                   args, &nrows);
}

static us_db_rc pg_webhook_retry(us_db *base, apr_pool_t *p, long long id, const char *owner,
                                 apr_time_t now, apr_time_t next_at, const char *error,
                                 int give_up)
{
    apr_int64_t i = id, t = now, next = next_at;
    int nrows = 0;
    const void *args[] = { &next, error ? error : "", &t, give_up ? "failed" : "pending", &i,
                           owner };
    return pg_exec(pg_of(base), p, US_PG_WEBHOOK_RETRY, args, &nrows);
}

static us_db_rc pg_webhook_stats(us_db *base, apr_pool_t *p, us_webhook_stats *out)
{
    us_pg_db *db = pg_of(base);
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    us_db_rc rc = pg_select(db, p, US_PG_WEBHOOK_STATS, NULL, &res);
    memset(out, 0, sizeof(*out));
    if (rc != US_DB_OK)
        return rc;
    while (next_row(db, p, res, &row) == US_DB_OK) {
        out->pending = entry_ll(db, row, 0);
        out->failed = entry_ll(db, row, 1);
        out->oldest_pending = (apr_time_t)entry_ll(db, row, 2);
        out->last_error = entry_null(db, p, row, 3);
        out->last_error_at = (apr_time_t)entry_ll(db, row, 4);
    }
    return US_DB_OK;
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
    .clear_error = pg_clear_error,
    .session_insert = pg_session_insert,
    .session_get = pg_session_get,
    .session_by_id = pg_session_by_id,
    .session_close = pg_session_close,
    .session_list = pg_session_list,
    .sessions_expire = pg_sessions_expire,
    .node_claim = pg_node_claim,
    .node_heartbeat = pg_node_heartbeat,
    .overview = pg_overview,
    .upload_commit = pg_upload_commit,
    .upload_blob = pg_upload_blob,
    .session_files_list = pg_session_files_list,
    .ingest_claim = pg_ingest_claim,
    .ingest_running = pg_ingest_running,
    .ingest_requeue = pg_ingest_requeue,
    .ingest_heartbeat = pg_ingest_heartbeat,
    .ingest_done = pg_ingest_done,
    .ingest_pending = pg_ingest_pending,
    .ingest_apply = pg_ingest_apply,
    .ingest_record_listing = pg_ingest_record_listing,
    .workspace_file_ids_by_name = pg_workspace_file_ids_by_name,
    .workspace_file_get = pg_workspace_file_get,
    .workspace_file_list = pg_workspace_file_list,
    .workspace_file_add = pg_workspace_file_add,
    .session_abort = pg_session_abort,
    .workspace_file_delete = pg_workspace_file_delete,
    .workspace_files_delete = pg_workspace_files_delete,
    .file_trash_list = pg_file_trash_list,
    .file_trash_forget = pg_file_trash_forget,
    .workspace_create = pg_workspace_create,
    .workspace_get = pg_workspace_get,
    .workspace_list = pg_workspace_list,
    .webhook_targets_set = pg_webhook_targets_set,
    .webhook_claim = pg_webhook_claim,
    .webhook_delivered = pg_webhook_delivered,
    .webhook_retry = pg_webhook_retry,
    .webhook_stats = pg_webhook_stats,
    .workspace_file_meta_swap = pg_workspace_file_meta_swap,
};

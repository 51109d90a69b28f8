/*
 * us_db.c - one SQLite connection over apr_dbd: opening it with its
 * pragmas and prepared statements, WAL durability and checkpoints, schema
 * migration, and the classification of driver errors (busy or not).
 */
#include "us_store_db.h"
#include "us_sqlite_instant.h"

#include <apr_atomic.h>
#include <apr_file_io.h>
#include <apr_strings.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* SQLite result codes the sqlite3 driver passes through */
#define SQLITE_BUSY_RC 5
#define SQLITE_LOCKED_RC 6

static volatile apr_uint32_t busy_timeout_ms = US_DEFAULT_BUSY_TIMEOUT_MS;

/* apr_dbd's sqlite3 driver steps a statement that finds the database
 * locked up to 16 times, sleeping 100 ms after each try (its
 * MAX_RETRY_COUNT and MAX_RETRY_SLEEP), and SQLite's busy handler waits
 * out the connection's busy timeout inside every try: a lock held
 * throughout was waited for 16 times the timeout plus 1.6 s (17.8 s
 * measured, by default) before the 503. Each try of a statement waits a
 * 16th of the timeout (us_sqlite_open). */
#define APR_DBD_SQLITE3_TRIES 16

static int busy_timeout_per_try(void)
{
    int ms = (int)apr_atomic_read32(&busy_timeout_ms) / APR_DBD_SQLITE3_TRIES;
    return ms > 0 ? ms : 1;
}

/* Process-wide: every store of the process takes the last one set. */
void us_sqlite_set_lock_timeout(void *conf, int ms)
{
    (void)conf;
    apr_atomic_set32(&busy_timeout_ms, (apr_uint32_t)ms);
}

void us_sqlite_set_logger(void *conf, const us_logger *lg)
{
    ((us_sqlite_conf *)conf)->log = lg;
}

void us_sqlite_set_errf(us_sqlite_db *db, const char *fmt, ...)
{
    char *to = db->err == db->errbuf[0] ? db->errbuf[1] : db->errbuf[0];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(to, US_SQLITE_ERR_MAX, fmt, ap);
    va_end(ap);
    db->err = to;
}

us_db_rc us_db_fail(us_sqlite_db *db, int rc, const char *what)
{
    const char *msg = apr_dbd_error(db->drv, db->h, rc);
    us_sqlite_set_errf(db, "%s: %s (%d)", what, msg ? msg : "unknown error", rc);
    if (rc == SQLITE_BUSY_RC || rc == SQLITE_LOCKED_RC ||
        (msg && (strstr(msg, "database is locked") || strstr(msg, "database is busy")))) {
        /* the caller decides whether to retry or answer 503 */
        us_log(db->log, US_LOG_DEBUG, 0, US_LOGNO_BUSY, "store busy: %s", db->err);
        return US_DB_BUSY;
    }
    return US_DB_ERROR;
}

/* apr_dbd_get_row, or a test's stand-in */
static int (*get_row)(const apr_dbd_driver_t *drv, apr_pool_t *p, apr_dbd_results_t *res,
                      apr_dbd_row_t **row, int rownum) = apr_dbd_get_row;

void us_db_set_get_row(int (*fn)(const apr_dbd_driver_t *drv, apr_pool_t *p,
                                 apr_dbd_results_t *res, apr_dbd_row_t **row, int rownum))
{
    get_row = fn ? fn : apr_dbd_get_row;
}

us_db_rc us_db_next_row(us_sqlite_db *db, apr_pool_t *p, apr_dbd_results_t *res, apr_dbd_row_t **row)
{
    int rc = get_row(db->drv, p, res, row, -1);
    if (rc == 0)
        return US_DB_OK;
    if (rc == -1)
        return US_DB_NOTFOUND;
    return us_db_fail(db, rc, "fetching a row");
}

const char *us_sqlite_error(us_db *base)
{
    const us_sqlite_db *db = us_sqlite_of(base);
    return db->err ? db->err : "no error";
}

void us_sqlite_clear_error(us_db *base)
{
    us_sqlite_of(base)->err = NULL;
}

void us_sqlite_set_error(us_db *base, const char *err)
{
    us_sqlite_set_errf(us_sqlite_of(base), "%s", err);
}

/* SQLite's allocation statistics (SQLITE_CONFIG_MEMSTATUS, on in Debian's
 * build, which has no lookaside) put every malloc and free of every
 * connection of the process under one global mutex: dozens of pairs per
 * write. Nothing here reads the statistics. sqlite3_config works only
 * before the library's first use in the process (the parent, at startup);
 * later it refuses, changing nothing. */
static void memstatus_set_off(void)
{
    (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

static void memstatus_off(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, memstatus_set_off);
}

us_db_rc us_sqlite_configure(apr_pool_t *p, const char *params, void **conf, const char **err)
{
    us_sqlite_conf *c = apr_pcalloc(p, sizeof(*c));
    memstatus_off();
    apr_status_t rv = apr_dbd_get_driver(p, "sqlite3", &c->drv);
    switch (rv) {
    case APR_SUCCESS:
        c->path = apr_pstrdup(p, params);
        *conf = c;
        return US_DB_OK;
    case APR_ENOTIMPL:
        *err = "no apr_dbd driver named 'sqlite3'";
        break;
    case APR_EDSOOPEN:
        *err = "the apr_dbd driver 'sqlite3' cannot be loaded "
               "(on Debian: install libaprutil1-dbd-sqlite3)";
        break;
    default:
        *err = "apr_dbd driver 'sqlite3' failed to initialise";
    }
    return US_DB_ERROR;
}

const char *us_sqlite_home(const void *conf, apr_pool_t *p)
{
    const us_sqlite_conf *c = conf;
    const char *slash = strrchr(c->path, '/');
    return slash ? apr_pstrndup(p, c->path, (apr_size_t)(slash - c->path + 1)) : "";
}

const char *us_sqlite_lock_path(apr_pool_t *p, const char *db_path)
{
    return apr_pstrcat(p, db_path, US_SQLITE_LOCK_SUFFIX, NULL);
}

/* SQLite creates -wal and -shm beside the database as whoever opens it. */
void us_sqlite_user_files(const void *conf, apr_pool_t *p, apr_array_header_t *paths)
{
    const us_sqlite_conf *c = conf;
    APR_ARRAY_PUSH(paths, const char *) = c->path;
    APR_ARRAY_PUSH(paths, const char *) = apr_pstrcat(p, c->path, "-wal", NULL);
    APR_ARRAY_PUSH(paths, const char *) = apr_pstrcat(p, c->path, "-shm", NULL);
    APR_ARRAY_PUSH(paths, const char *) = us_sqlite_lock_path(p, c->path);
}

/* The writers' flock file (us_writer.c), made at startup so that the
 * children's user can own it. */
us_db_rc us_sqlite_prepare_files(const void *conf, apr_pool_t *p, const char **err)
{
    const us_sqlite_conf *c = conf;
    const char *path = us_sqlite_lock_path(p, c->path);
    apr_file_t *f;
    apr_status_t rv = apr_file_open(&f, path, APR_FOPEN_READ | APR_FOPEN_CREATE,
                                    APR_FPROT_UREAD | APR_FPROT_UWRITE | APR_FPROT_GREAD |
                                    APR_FPROT_WREAD, p);
    if (rv != APR_SUCCESS) {
        *err = apr_psprintf(p, "cannot create the lock file %s: %pm", path, &rv);
        return US_DB_ERROR;
    }
    apr_file_close(f);
    return US_DB_OK;
}

static apr_status_t db_cleanup(void *data)
{
    us_sqlite_db *db = data;
    if (db->wal_fd >= 0) {
        close(db->wal_fd);
        db->wal_fd = -1;
    }
    if (db->h) {
        apr_dbd_close(db->drv, db->h);
        db->h = NULL;
    }
    return APR_SUCCESS;
}

/* Runs a statement that may or may not return rows, discarding them. */
static us_db_rc exec_drained(us_sqlite_db *db, apr_pool_t *p, const char *sql)
{
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    us_db_rc frc;
    int rc = apr_dbd_select(db->drv, p, db->h, &res, sql, 0);
    if (rc != 0)
        return us_db_fail(db, rc, sql);
    while ((frc = us_db_next_row(db, p, res, &row)) == US_DB_OK)
        ;
    return frc == US_DB_NOTFOUND ? US_DB_OK : frc;
}

/* A commit must be on disk before we answer. In WAL mode SQLite may skip
 * the sync at commit (synchronous=NORMAL still syncs around checkpoints)
 * because us_write syncs the WAL file right after, once the writers' lock is
 * free; without WAL (a file system that refuses it) SQLite syncs itself. */
static us_db_rc set_durability(us_sqlite_db *db)
{
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    int wal = 0;
    us_db_rc frc;
    int rc = apr_dbd_select(db->drv, db->pool, db->h, &res, "PRAGMA journal_mode", 0);
    if (rc != 0)
        return us_db_fail(db, rc, "PRAGMA journal_mode");
    while ((frc = us_db_next_row(db, db->pool, res, &row)) == US_DB_OK) {
        const char *mode = apr_dbd_get_entry(db->drv, row, 0);
        wal = mode && strcmp(mode, "wal") == 0;
    }
    if (frc != US_DB_NOTFOUND)
        return frc;
    db->wal_path = wal ? apr_pstrcat(db->pool, db->params, "-wal", NULL) : NULL;
    return exec_drained(db, db->pool, wal ? "PRAGMA synchronous=NORMAL" : "PRAGMA synchronous=FULL");
}

us_db_rc us_sqlite_checkpoint(us_db *base, apr_pool_t *p)
{
    us_sqlite_db *db = us_sqlite_of(base);
    if (!db->wal_path)
        return US_DB_OK;
    us_db_rc rc = exec_drained(db, p, "PRAGMA wal_checkpoint(PASSIVE)");
    /* busy: another connection checkpoints (us_db_fail logged it at debug);
     * else the WAL keeps growing until the automatic backstop */
    if (rc != US_DB_OK && rc != US_DB_BUSY)
        us_log(db->log, US_LOG_WARN, 0, US_LOGNO_CHECKPOINT, "WAL checkpoint of %s failed: %s",
               db->params, db->err);
    return rc;
}

us_db_rc us_sqlite_for_batches(us_db *base, apr_pool_t *p)
{
    us_sqlite_db *db = us_sqlite_of(base);
    us_db_rc rc = exec_drained(db, p, apr_psprintf(p, US_SQL_CACHE_SIZE, US_BATCH_CACHE_KIB));
    if (rc == US_DB_OK)
        db->for_batches = 1;
    return rc;
}

static us_db_rc connect_raw(apr_pool_t *p, const apr_dbd_driver_t *drv,
                            const char *params, us_sqlite_db **out, const char **err)
{
    apr_pool_t *sub;
    us_sqlite_db *db;
    const char *oerr = NULL;

    apr_pool_create(&sub, p);
    apr_pool_tag(sub, "us_db");
    db = apr_pcalloc(sub, sizeof(*db));
    db->pool = sub;
    db->wal_fd = -1;
    db->drv = drv;
    db->params = apr_pstrdup(sub, params);
    if (apr_dbd_open_ex(drv, sub, params, &db->h, &oerr) != APR_SUCCESS || !db->h) {
        *err = apr_psprintf(p, "cannot open database '%s': %s", params,
                            oerr ? oerr : "unknown error");
        apr_pool_destroy(sub);
        return US_DB_ERROR;
    }
    apr_pool_cleanup_register(sub, db, db_cleanup, apr_pool_cleanup_null);
    /* the filters' metadata date-times (us_sqlite_filter.c) */
    int frc = us_sqlite_instant_register(apr_dbd_native_handle(drv, db->h));
    if (frc != SQLITE_OK) {
        *err = apr_psprintf(p, "cannot register us_instant_us on '%s': %s", params, sqlite3_errstr(frc));
        apr_pool_destroy(sub);
        return US_DB_ERROR;
    }
    if (exec_drained(db, sub, apr_psprintf(sub, "PRAGMA busy_timeout=%d", (int)apr_atomic_read32(&busy_timeout_ms))) != US_DB_OK) {
        *err = apr_pstrdup(p, db->err);
        apr_pool_destroy(sub);
        return US_DB_ERROR;
    }
    for (const char *const *s = us_sql_connection_setup(); *s; s++) {
        us_db_rc rc = exec_drained(db, sub, *s);
        if (rc != US_DB_OK) {
            *err = apr_pstrdup(p, db->err);
            apr_pool_destroy(sub);
            return rc;
        }
    }
    if (set_durability(db) != US_DB_OK) {
        *err = apr_pstrdup(p, db->err);
        apr_pool_destroy(sub);
        return US_DB_ERROR;
    }
    *out = db;
    return US_DB_OK;
}

static const char *txn_sql(us_txn_op op)
{
    switch (op) {
    case US_TXN_BEGIN: return us_sql_begin_write();
    case US_TXN_COMMIT: return "COMMIT";
    default: return "ROLLBACK";
    }
}

us_db_rc us_sqlite_open(const us_sqlite_conf *conf, apr_pool_t *p, us_sqlite_db **out,
                        const char **err)
{
    us_sqlite_db *db;
    const apr_dbd_driver_t *drv = conf->drv;
    us_db_rc rc = connect_raw(p, drv, conf->path, &db, err);
    if (rc != US_DB_OK)
        return rc;
    db->log = conf->log;
    for (int i = 0; i < US_STMT__COUNT; i++) {
        const us_stmt_def *def = us_sql_statement((us_stmt_id)i);
        if (!def->sql)
            continue;
        int prc = apr_dbd_prepare(drv, db->pool, db->h, def->sql, def->label, &db->stmt[i]);
        if (prc != 0) {
            rc = us_db_fail(db, prc, def->label);
            *err = apr_psprintf(p, "cannot prepare %s (is the schema current?): %s",
                                def->label, db->err);
            apr_pool_destroy(db->pool);
            return rc;
        }
    }
    for (int op = 0; op < US_TXN__COUNT; op++) {
        int prc = apr_dbd_prepare(drv, db->pool, db->h, txn_sql((us_txn_op)op), NULL, &db->txn[op]);
        if (prc != 0) {
            rc = us_db_fail(db, prc, txn_sql((us_txn_op)op));
            *err = apr_psprintf(p, "cannot prepare %s: %s", txn_sql((us_txn_op)op), db->err);
            apr_pool_destroy(db->pool);
            return rc;
        }
    }
    /* prepared with the whole timeout: a prepare is tried once (a connection
     * opened while another recovers the WAL waits it out) */
    sqlite3_busy_timeout(apr_dbd_native_handle(drv, db->h), busy_timeout_per_try());
    *out = db;
    return US_DB_OK;
}

void us_sqlite_close(us_sqlite_db *db)
{
    if (db)
        apr_pool_destroy(db->pool);
}


/* Reads the schema version; 0 when the database is new. */
static us_db_rc schema_version(us_sqlite_db *db, apr_pool_t *p, int *version)
{
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    us_db_rc frc;
    int rc = apr_dbd_select(db->drv, p, db->h, &res, US_SQL_SCHEMA_VERSION_GET, 0);
    if (rc != 0)
        return us_db_fail(db, rc, "read schema version");
    *version = 0;
    while ((frc = us_db_next_row(db, p, res, &row)) == US_DB_OK) {
        const char *v = apr_dbd_get_entry(db->drv, row, 0);
        *version = v ? atoi(v) : 0;
    }
    return frc == US_DB_NOTFOUND ? US_DB_OK : frc;
}

static us_db_rc migrate_locked(us_sqlite_db *db, apr_pool_t *p, const char **err)
{
    int version = 0, nrows = 0;
    us_db_rc rc = schema_version(db, p, &version);
    if (rc != US_DB_OK)
        return rc;
    if (version > US_SCHEMA_VERSION) {
        *err = apr_psprintf(p, "the database has schema version %d; this module "
                            "understands up to %d", version, US_SCHEMA_VERSION);
        return US_DB_ERROR;
    }
    for (; version < US_SCHEMA_VERSION; version++) {
        for (const char *const *s = us_sql_migration(version); *s; s++) {
            int qrc = apr_dbd_query(db->drv, db->h, &nrows, *s);
            if (qrc != 0)
                return us_db_fail(db, qrc, *s);
        }
    }
    apr_dbd_prepared_t *set = NULL;
    int prc = apr_dbd_prepare(db->drv, p, db->h, US_SQL_SCHEMA_VERSION_SET, NULL, &set);
    if (prc != 0)
        return us_db_fail(db, prc, "prepare schema version");
    int v = US_SCHEMA_VERSION;
    const void *args[] = { &v };
    prc = apr_dbd_pbquery(db->drv, p, db->h, &nrows, set, args);
    return prc == 0 ? US_DB_OK : us_db_fail(db, prc, "write schema version");
}

us_db_rc us_sqlite_migrate(const void *conf, apr_pool_t *p, const char **err)
{
    const us_sqlite_conf *c = conf;
    const apr_dbd_driver_t *drv = c->drv;
    us_sqlite_db *db;
    int nrows = 0;
    us_db_rc rc = connect_raw(p, drv, c->path, &db, err);
    if (rc != US_DB_OK)
        return rc;
    db->log = c->log;
    int qrc = apr_dbd_query(drv, db->h, &nrows, US_SQL_META_TABLE);
    if (qrc != 0) {
        rc = us_db_fail(db, qrc, "create us_meta");
        goto leave;
    }
    /* a current schema needs no write lock: a restart must not wait for
     * (or fail on) another process's long write */
    int version = 0;
    if ((rc = schema_version(db, p, &version)) != US_DB_OK || version == US_SCHEMA_VERSION)
        goto leave;
    /* one migrator at a time: take the write lock before reading the version */
    qrc = apr_dbd_query(drv, db->h, &nrows,
                        us_sql_begin_write());
    if (qrc != 0) {
        rc = us_db_fail(db, qrc, "begin migration");
        goto leave;
    }
    *err = NULL;
    rc = migrate_locked(db, p, err);
    qrc = apr_dbd_query(drv, db->h, &nrows, rc == US_DB_OK ? "COMMIT" : "ROLLBACK");
    if (rc == US_DB_OK && qrc != 0)
        rc = us_db_fail(db, qrc, "commit migration");
leave:
    if (rc != US_DB_OK && !*err)
        *err = apr_pstrdup(p, db->err);
    us_sqlite_close(db);
    return rc;
}

/* Whether the statement that just failed was prepared before another
 * connection changed the schema: the driver resets a statement after its
 * run, which leaves SQLITE_SCHEMA as the connection's error code. */
static int schema_changed(us_sqlite_db *db, int rc)
{
    sqlite3 *conn = apr_dbd_native_handle(db->drv, db->h);
    return rc != 0 && conn && sqlite3_errcode(conn) == SQLITE_SCHEMA;
}

int us_db_run(us_sqlite_db *db, apr_pool_t *p, apr_dbd_prepared_t **stmt, const char *sql,
              const void **args, apr_dbd_results_t **res, int *nrows)
{
    int rc, n = 0;
    for (int again = 0;; again++) {
        rc = res ? apr_dbd_pbselect(db->drv, p, db->h, res, *stmt, 0, args)
                 : apr_dbd_pbquery(db->drv, p, db->h, nrows ? nrows : &n, *stmt, args);
        if (rc == 0 || again == US_SQLITE_SCHEMA_RETRIES || !schema_changed(db, rc))
            return rc;
        apr_dbd_prepared_t *fresh = NULL;
        int prc = apr_dbd_prepare(db->drv, db->pool, db->h, sql, NULL, &fresh);
        if (prc != 0)
            return prc;
        *stmt = fresh;
        if (++db->reprepared >= US_SQLITE_MAX_REPREPARED)
            db->worn_out = 1;
        us_log(db->log, US_LOG_DEBUG, 0, US_LOGNO_REPREPARED, "statement prepared again after "
               "a schema change by another connection");
    }
}

us_db_rc us_db_exec(us_sqlite_db *db, const char *sql)
{
    int nrows = 0;
    int rc = apr_dbd_query(db->drv, db->h, &nrows, sql);
    return rc == 0 ? US_DB_OK : us_db_fail(db, rc, sql);
}

us_db_rc us_db_txn(us_sqlite_db *db, us_txn_op op)
{
    int nrows = 0;
    if (!db->txn[op])
        return us_db_exec(db, txn_sql(op));
    int rc = apr_dbd_pbquery(db->drv, db->pool, db->h, &nrows, db->txn[op], NULL);
    return rc == 0 ? US_DB_OK : us_db_fail(db, rc, txn_sql(op));
}


/*
 * us_pg_store.c - the PostgreSQL backend: UploadSessionStore pgsql
 * "<libpq conninfo>". Its configuration, migrations and the backend table
 * are here, with the ingest claim and the generic entries (a statement, a
 * select, a write transaction; concurrent session reads of a process
 * batched into one statement); connections, statements and transactions
 * are us_pg_conn.c's, session creates us_pg_sessions.c's, the workspace
 * files' own operations us_pg_files.c's.
 */
#include "us_pg_db.h"
#include "us_log.h"
#include "us_pg_conninfo.h"
#include "us_pg_filter.h"
#include "us_pg_sql.h"
#include "us_pg_store.h"
#include "../us_ops.h"

#include <apr_atomic.h>
#include <apr_dbd.h>
#include <apr_strings.h>
#include <stdlib.h>
#include <string.h>

/* ---- lifecycle ------------------------------------------------------------------ */

static us_db_rc pg_configure(apr_pool_t *p, const char *params, void **conf, const char **err)
{
    us_pg_conf *c = apr_pcalloc(p, sizeof(*c));
    c->lock_timeout_ms = US_DEFAULT_BUSY_TIMEOUT_MS;
    apr_status_t rv = apr_dbd_get_driver(p, "pgsql", &c->drv);
    switch (rv) {
    case APR_SUCCESS:
        c->conninfo = us_pg_conninfo_with_defaults(p, apr_pstrdup(p, params),
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
    if ((rc = us_pg_exec_sql(db, US_PG_SQL_MIGRATE_WAIT)) != US_DB_OK ||
        (rc = us_pg_exec_sql(db, US_PG_SQL_MIGRATE_LOCK)) != US_DB_OK ||
        (rc = us_pg_exec_sql(db, US_PG_SQL_META_TABLE)) != US_DB_OK)
        return rc;
    int qrc = apr_dbd_select(db->conf->drv, p, db->h, &res, US_PG_SQL_SCHEMA_VERSION_GET, 1);
    if (qrc != 0)
        return us_pg_fail(db, qrc, "read schema version");
    while (us_pg_next_row(db, p, res, &row) == US_DB_OK)
        version = (int)us_pg_entry_ll(db, row, 0);
    if (version > US_PG_SCHEMA_VERSION) {
        *err = apr_psprintf(p, "the database has schema version %d; this module "
                            "understands up to %d", version, US_PG_SCHEMA_VERSION);
        return US_DB_ERROR;
    }
    for (; version < US_PG_SCHEMA_VERSION; version++)
        for (const char *const *s = us_pg_sql_migration(version); *s; s++)
            if ((rc = us_pg_exec_sql(db, *s)) != US_DB_OK)
                return rc;
    apr_dbd_prepared_t *set = NULL;
    int prc = apr_dbd_prepare(db->conf->drv, p, db->h, US_PG_SQL_SCHEMA_VERSION_SET, NULL, &set);
    if (prc != 0)
        return us_pg_fail(db, prc, "prepare schema version");
    int v = US_PG_SCHEMA_VERSION;
    const void *args[] = { &v };
    prc = apr_dbd_pbquery(db->conf->drv, p, db->h, &nrows, set, args);
    return prc == 0 ? US_DB_OK : us_pg_fail(db, prc, "write schema version");
}

static us_db_rc pg_migrate(const void *conf, apr_pool_t *p, const char **err)
{
    us_pg_db *db = NULL;
    us_db_rc rc = us_pg_new(&us_pgsql_backend, conf, p, &db, err);
    if (rc != US_DB_OK)
        return rc;
    *err = NULL;
    rc = us_pg_txn(db, p, migrate_locked, err);
    if (rc != US_DB_OK && !*err)
        *err = apr_pstrdup(p, db->err);
    apr_pool_destroy(db->pool);
    return rc;
}

static us_db_rc pg_open(const void *conf, apr_pool_t *p, us_db **out, const char **err)
{
    us_pg_db *db = NULL;
    us_db_rc rc = us_pg_new(&us_pgsql_backend, conf, p, &db, err);
    *out = rc == US_DB_OK ? &db->base : NULL;
    return rc;
}

static void pg_close(us_db *db)
{
    if (db)
        apr_pool_destroy(us_pg_of(db)->pool);
}

static us_db_rc pg_maintain(us_db *db, apr_pool_t *p)
{
    (void)db;
    (void)p;
    return US_DB_OK; /* autovacuum is the server's */
}

static int pg_worn_out(us_db *db)
{
    return us_pg_of(db)->worn_out;
}

static int pg_outcome_unknown(us_db *db)
{
    return us_pg_of(db)->outcome_unknown;
}

static const char *pg_error(us_db *db)
{
    return us_pg_of(db)->err ? us_pg_of(db)->err : "no error";
}

static void pg_clear_error(us_db *db)
{
    us_pg_of(db)->err = NULL;
}

static void pg_set_error(us_db *base, const char *err)
{
    us_pg_set_err(us_pg_of(base), "%s", err ? err : "unknown error");
}

/* ---- sessions ------------------------------------------------------------------- */
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
    us_db_rc rc = us_pg_select(db, p, US_STMT_INGEST_CANDIDATE, cargs, &res);
    if (rc != US_DB_OK)
        return rc;
    while (us_pg_next_row(db, p, res, &row) == US_DB_OK) {
        id = us_pg_entry_str(db, p, row, 0);
        workspace = us_pg_entry_str(db, p, row, 1);
        parallel = (int)us_pg_entry_ll(db, row, 2);
    }
    if (!id)
        return US_DB_NOTFOUND;
    if (!parallel) {
        /* the turn check above read a snapshot that another claimer of
         * the workspace may have changed since: check again under the
         * workspace's lock, in a statement that sees their commits */
        const void *largs[] = { workspace };
        const void *targs[] = { id };
        if ((rc = us_pg_select_ll(db, p, US_STMT_TURN_LOCK, largs, &flag, NULL)) != US_DB_OK)
            return rc;
        if (!flag)
            return US_DB_NOTFOUND; /* another claimer decides this workspace now */
        int found = 0;
        if ((rc = us_pg_select_ll(db, p, US_STMT_IN_TURN, targs, &flag, &found)) != US_DB_OK)
            return rc;
        if (!found)
            return US_DB_NOTFOUND;
    }
    const void *args[] = { a->owner, id, &t };
    rc = us_pg_select_session(db, p, US_STMT_INGEST_CLAIM, args, a->out);
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
    return us_pg_txn(us_pg_of(base), p, claim_body, &a);
}

static us_db_rc pg_ingest_heartbeat(us_db *base, apr_pool_t *p, const char *session_id,
                                    const char *owner, apr_time_t now)
{
    int nrows = 0;
    const void *args[] = { session_id, owner };
    (void)now; /* the heartbeat is the database's time */
    us_db_rc rc = us_pg_exec(us_pg_of(base), p, US_STMT_INGEST_HEARTBEAT, args, &nrows);
    return rc == US_DB_OK && nrows == 0 ? US_DB_CONFLICT : rc;
}

/* ---- workspace files ------------------------------------------------------------- */
/* ---- the generic entries ---------------------------------------------------------- */

static us_db_rc pg_gen_exec(us_db *base, apr_pool_t *p, us_stmt_id id, const void **args,
                            int *nrows)
{
    int n = 0;
    us_db_rc rc = us_pg_exec(us_pg_of(base), p, id, args, &n);
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
    return us_pg_exec(db, p, o->id, o->args, &o->nrows);
}

/* One statement as its own transaction, with us_pg_run's retries (a deadlock's
 * victim, a lock timeout once); inside a transaction body, a statement of
 * it (a retry there would find the transaction aborted). */
static us_db_rc pg_gen_write_one(us_db *base, apr_pool_t *p, us_stmt_id id, const void **args,
                                 int *nrows)
{
    us_pg_db *db = us_pg_of(base);
    if (db->in_txn)
        return pg_gen_exec(base, p, id, args, nrows);
    one_statement o = { id, args, 0 };
    us_db_rc rc = us_pg_run(db, p, one_statement_body, &o, 0);
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
    us_db_rc rc = us_pg_select(db, p, id, args, &res);
    while (rc == US_DB_OK && us_pg_next_row(db, p, res, &row) == US_DB_OK) {
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
    us_db_rc rc = us_pg_select(db, p, US_STMT_SESSIONS_GET, args, &res);
    if (rc != US_DB_OK)
        return rc;
    while (us_pg_next_row(db, p, res, &row) == US_DB_OK) {
        long long k = us_pg_entry_ll(db, row, GET_POS_COL) - 1;
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
    us_pg_db *db = us_pg_of(base);
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
    return us_pg_txn(us_pg_of(base), p, txn_call_body, &c);
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
    .session_insert = us_pg_session_insert,
    .sessions_expire = us_pg_expire_sessions,
    .ingest_claim = pg_ingest_claim,
    .ingest_heartbeat = pg_ingest_heartbeat,
    .workspace_file_list_built = us_pg_workspace_file_list_built,
    .workspace_file_delete = us_pg_workspace_file_delete,
    .workspace_files_delete = us_pg_workspace_files_delete,
    .workspace_delete = us_pg_workspace_delete,
};

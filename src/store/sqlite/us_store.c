/*
 * us_store.c - the store's queries on an SQLite connection (us_db.c). Every
 * query is a prepared statement with typed (binary) arguments; every result
 * set is drained. Writes go through the queue of us_writer.c.
 */
#include "us_sqlite_filter.h"
#include "us_store_db.h"
#include "../us_ops.h"

#include <apr_hash.h>
#include <apr_strings.h>
#include <string.h>

/* ---- queries ------------------------------------------------------------- */

static us_db_rc select_rows(us_sqlite_db *db, apr_pool_t *p, us_stmt_id id,
                            const void **args, apr_dbd_results_t **res)
{
    const us_stmt_def *def = us_sql_statement(id);
    int rc = us_db_run(db, p, &db->stmt[id], def->sql, args, res, NULL);
    return rc == 0 ? US_DB_OK : us_db_fail(db, rc, def->label);
}

/* Hands every row of res to fn with out (fn may be NULL to only count
 * them); *nrows (may be NULL) says how many there were. A row that fails
 * to fetch is an error, never the end of the rows. */
static us_db_rc each_row(us_sqlite_db *db, apr_pool_t *p, apr_dbd_results_t *res, us_row_fn fn,
                         void *out, int *nrows)
{
    apr_dbd_row_t *row = NULL;
    int n = 0;
    us_db_rc rc;
    while ((rc = us_db_next_row(db, p, res, &row)) == US_DB_OK) {
        if (fn) {
            us_row r = { db->drv, row };
            fn(&r, p, out);
        }
        n++;
    }
    if (nrows)
        *nrows = n;
    return rc == US_DB_NOTFOUND ? US_DB_OK : rc;
}

/* Runs statement id and hands its rows to fn, as each_row. */
static us_db_rc select_each(us_sqlite_db *db, apr_pool_t *p, us_stmt_id id, const void **args,
                            us_row_fn fn, void *out, int *nrows)
{
    apr_dbd_results_t *res = NULL;
    us_db_rc rc = select_rows(db, p, id, args, &res);
    return rc == US_DB_OK ? each_row(db, p, res, fn, out, nrows) : rc;
}

static us_db_rc exec_stmt(us_sqlite_db *db, apr_pool_t *p, us_stmt_id id, const void **args,
                          int *nrows)
{
    const us_stmt_def *def = us_sql_statement(id);
    int rc = us_db_run(db, p, &db->stmt[id], def->sql, args, NULL, nrows);
    return rc == 0 ? US_DB_OK : us_db_fail(db, rc, def->label);
}

static int sq_worn_out(us_db *base)
{
    return us_sqlite_of(base)->worn_out;
}

/* ---- workspace files ------------------------------------------------------------ */

/* A statement built for this request, prepared once per connection. */
static us_db_rc dynamic_statement(us_sqlite_db *db, const char *sql, apr_dbd_prepared_t **out)
{
    if (!db->dynamic)
        db->dynamic = apr_hash_make(db->pool);
    *out = apr_hash_get(db->dynamic, sql, APR_HASH_KEY_STRING);
    if (*out)
        return US_DB_OK;
    int rc = apr_dbd_prepare(db->drv, db->pool, db->h, sql, NULL, out);
    if (rc != 0)
        return us_db_fail(db, rc, "prepare a built list");
    if (apr_hash_count(db->dynamic) >= US_SQLITE_MAX_DYNAMIC)
        db->worn_out = 1; /* this one stays with the connection until it closes */
    else
        apr_hash_set(db->dynamic, apr_pstrdup(db->pool, sql), APR_HASH_KEY_STRING, *out);
    return US_DB_OK;
}

/* Runs the built select sql (dynamic_statement) into *res; what names
 * it in an error. */
static us_db_rc select_built(us_sqlite_db *db, apr_pool_t *p, const char *sql, const void **args,
                             apr_dbd_results_t **res, const char *what)
{
    apr_dbd_prepared_t *stmt, *ran;
    us_db_rc rc = dynamic_statement(db, sql, &stmt);
    if (rc != US_DB_OK)
        return rc;
    ran = stmt;
    int drc = us_db_run(db, p, &ran, sql, args, res, NULL);
    /* prepared anew after a schema change: the kept one (if kept) is stale */
    if (ran != stmt && apr_hash_get(db->dynamic, sql, APR_HASH_KEY_STRING))
        apr_hash_set(db->dynamic, sql, APR_HASH_KEY_STRING, ran);
    return drc == 0 ? US_DB_OK : us_db_fail(db, drc, what);
}

/* The one value of a COUNT(*). */
static us_db_rc count_of(us_sqlite_db *db, apr_pool_t *p, apr_dbd_results_t *res, long long *total)
{
    *total = 0;
    return each_row(db, p, res, us_row_to_ll, total, NULL);
}

/* A list the fixed statements do not cover (a filter, another order, an
 * offset): their shape with the filter's expression, the order and the
 * offset added, every value bound. */
static us_db_rc workspace_file_list_built(us_sqlite_db *db, apr_pool_t *p, const char *workspace,
                                             const us_workspace_file_query *q, long long *total,
                                             apr_dbd_results_t **listed)
{
    apr_dbd_results_t *counted = NULL;
    apr_array_header_t *args = apr_array_make(p, 16, sizeof(const void *));
    apr_int64_t lim = q->limit, at = q->after_at, off = q->offset;
    APR_ARRAY_PUSH(args, const void *) = workspace;
    APR_ARRAY_PUSH(args, const void *) = q->name_part;
    const char *filter = q->filter ? us_filter_sql(p, q->filter, args, &us_sqlite_filter_dialect) : "";
    if (!filter) {
        us_sqlite_set_errf(db, "%s", "us_workspace_file_list: " US_FILTER_SQL_MISMATCH);
        return US_DB_ERROR;
    }
    const char *where = apr_pstrcat(p, " FROM us_files WHERE workspace = %s AND instr(name, %s) > 0",
                                    q->filter ? " AND " : "", filter, NULL);
    /* the count from the key table when the filter allows, else from the rows */
    apr_array_header_t *cargs = apr_array_make(p, 16, sizeof(const void *));
    const char *count_sql = q->filter && !q->name_part[0]
        ? us_filter_count_sql(p, q->filter, workspace, cargs, &us_sqlite_filter_dialect) : NULL;
    if (!count_sql) {
        count_sql = apr_pstrcat(p, "SELECT COUNT(*)", where, NULL);
        cargs = args;
    }
    us_db_rc rc = select_built(db, p, count_sql, (const void **)cargs->elts, &counted,
                               "us_workspace_file_count (built)");
    if (rc != US_DB_OK)
        return rc;
    if ((rc = count_of(db, p, counted, total)) != US_DB_OK)
        return rc;
    const char *col = q->by_name ? "name" : "created_at", *dir = q->ascending ? "ASC" : "DESC";
    const char *cursor = "";
    if (q->after_id) {
        const char *cmp = q->ascending ? ">" : "<";
        const char *ph = q->by_name ? "%s" : "%lld";
        const void *value = q->by_name ? (const void *)q->after_name : (const void *)&at;
        APR_ARRAY_PUSH(args, const void *) = value;
        APR_ARRAY_PUSH(args, const void *) = value;
        APR_ARRAY_PUSH(args, const void *) = q->after_id;
        cursor = apr_pstrcat(p, " AND (", col, " ", cmp, " ", ph, " OR (", col, " = ", ph,
                             " AND file_id ", cmp, " %s))", NULL);
    }
    APR_ARRAY_PUSH(args, const void *) = &lim;
    APR_ARRAY_PUSH(args, const void *) = &off;
    const char *list_sql = apr_pstrcat(p, "SELECT ", us_sql_workspace_file_list_cols(), where,
                                       cursor, " ORDER BY ", col, " ", dir, ", file_id ", dir,
                                       " LIMIT %lld OFFSET %lld", NULL);
    return select_built(db, p, list_sql, (const void **)args->elts, listed,
                        "us_workspace_file_list (built)");
}

static us_db_rc sq_workspace_file_list_built(us_db *base, apr_pool_t *p, const char *workspace,
                                             const us_workspace_file_query *q,
                                             apr_array_header_t *rows, long long *total)
{
    us_sqlite_db *db = us_sqlite_of(base);
    apr_dbd_results_t *listed = NULL;
    us_db_rc rc = workspace_file_list_built(db, p, workspace, q, total, &listed);
    return rc == US_DB_OK ? each_row(db, p, listed, us_push_workspace_file, rows, NULL) : rc;
}

/* ---- the operation entries -------------------------------------------------------
 * Writes run their body through the write queue (us_write in us_writer.c,
 * via us_write_txn), possibly in one transaction with other writers'
 * pieces, and return once it is committed. */

typedef struct {
    const us_session *s;
    int max_open;
    apr_time_t now;
} insert_args;

static us_db_rc insert_body(us_db *db, apr_pool_t *p, void *arg)
{
    const insert_args *a = arg;
    const us_session *s = a->s;
    apr_int64_t created = s->created_at, expires = s->expires_at, t = a->now;
    int parallel = s->parallel, direct = s->direct, nrows = 0;
    long long open = 0;
    const void *cargs[] = { s->user_id, s->user_id, &t };
    /* the count and the insert in one write transaction: the limit holds
     * under the write lock */
    us_db_rc rc = us_select_one(db, p, US_STMT_SESSION_OPEN_COUNT, cargs, us_row_to_ll, &open);
    if (rc != US_DB_OK)
        return rc;
    if (open >= a->max_open)
        return US_DB_LIMIT;
    const void *args[] = { s->id, s->workspace, s->user_id, s->given_name,
                           s->family_name, s->write_mode, &parallel, &created,
                           &expires, &direct };
    rc = us_exec(db, p, US_STMT_SESSION_INSERT, args, &nrows);
    if (rc != US_DB_OK)
        return rc;
    if (nrows != 1) { /* a VALUES row: inserted or failed */
        us_sqlite_set_error(db, "us_session_insert: no row inserted");
        return US_DB_ERROR;
    }
    return us_workspace_ensure(db, p, s->workspace, a->now);
}

static us_db_rc sq_session_insert(us_db *base, apr_pool_t *p, us_session *s, int max_open,
                                  apr_time_t now)
{
    insert_args a = { s, max_open, now };
    return us_write_txn(base, p, insert_body, &a);
}

static us_db_rc sq_sessions_expire(us_db *base, apr_pool_t *p, int *count)
{
    int n = 0;
    us_db_rc rc = us_write_one(base, p, US_STMT_SESSIONS_EXPIRE, NULL, &n);
    *count = rc == US_DB_OK ? n : 0;
    return rc;
}

typedef struct {
    const char *owner, *id;
    apr_time_t now, stale_before;
    us_session *out;
} claim_args;

static us_db_rc claim_body(us_db *db, apr_pool_t *p, void *arg)
{
    claim_args *a = arg;
    apr_int64_t t = a->now, stale = a->stale_before;
    int nrows = 0;
    const void *args[] = { a->owner, &t, a->id, &t, &stale };
    us_db_rc rc = us_exec(db, p, US_STMT_INGEST_CLAIM, args, &nrows);
    if (rc != US_DB_OK)
        return rc;
    if (nrows == 0)
        return US_DB_NOTFOUND; /* another worker was quicker */
    const void *qargs[] = { &t, a->id, a->owner };
    rc = us_select_one(db, p, US_STMT_INGEST_CLAIMED, qargs, us_row_to_session, a->out);
    if (rc == US_DB_OK)
        a->out->ingest_owner = apr_pstrdup(p, a->owner);
    if (rc != US_DB_NOTFOUND)
        return rc;
    /* claimed a moment ago in this transaction: cannot be */
    us_sqlite_set_error(db, "us_ingest_claimed: the claimed session is not there");
    return US_DB_ERROR;
}

static us_db_rc sq_ingest_claim(us_db *base, apr_pool_t *p, const char *owner, apr_time_t now,
                                apr_time_t stale_before, us_session *out)
{
    /* search by a read, outside the queue; the claim re-checks that one row */
    apr_int64_t t = now, stale = stale_before;
    const void *args[] = { &t, &stale };
    claim_args a = { owner, NULL, now, stale_before, out };
    us_db_rc rc = us_select_one(base, p, US_STMT_INGEST_CANDIDATE, args, us_row_to_str, &a.id);
    if (rc != US_DB_OK)
        return rc;
    return us_write_txn(base, p, claim_body, &a);
}

static us_db_rc sq_ingest_heartbeat(us_db *base, apr_pool_t *p, const char *session_id,
                                    const char *owner, apr_time_t now)
{
    int nrows = 0;
    apr_int64_t t = now;
    const void *args[] = { &t, session_id, owner };
    us_db_rc rc = us_write_one(base, p, US_STMT_INGEST_HEARTBEAT, args, &nrows);
    /* no row: the claim was taken over; the caller stops */
    return rc == US_DB_OK && nrows == 0 ? US_DB_CONFLICT : rc;
}

/* Deletes one row of the workspace and trashes its id; *gone 0 when there was none. */
static us_db_rc delete_one(us_sqlite_db *db, apr_pool_t *p, const char *workspace,
                           const char *file_id, int *gone)
{
    int nrows = 0;
    const void *args[] = { workspace, file_id };
    us_db_rc rc = exec_stmt(db, p, US_STMT_WORKSPACE_FILE_DELETE_IN_WS, args, &nrows);
    *gone = nrows;
    if (rc != US_DB_OK || nrows == 0)
        return rc;
    const void *targs[] = { file_id };
    return exec_stmt(db, p, US_STMT_FILE_TRASH_ADD, targs, &nrows);
}

typedef struct {
    const char *workspace, *file_id;
    const apr_array_header_t *names; /* for many; NULL: all */
    apr_array_header_t *deleted;     /* for many */
} delete_args;

static us_db_rc delete_one_body(us_sqlite_db *db, apr_pool_t *p, void *arg)
{
    delete_args *a = arg;
    int gone = 0;
    us_db_rc rc = delete_one(db, p, a->workspace, a->file_id, &gone);
    return rc == US_DB_OK && !gone ? US_DB_NOTFOUND : rc;
}

static us_db_rc sq_workspace_file_delete(us_db *base, apr_pool_t *p, const char *workspace,
                                         const char *file_id)
{
    delete_args a = { workspace, file_id, NULL, NULL };
    return us_write(us_sqlite_of(base), p, delete_one_body, &a);
}

static us_db_rc delete_many_body(us_sqlite_db *db, apr_pool_t *p, void *arg)
{
    delete_args *a = arg;
    apr_array_header_t *ids = apr_array_make(p, 16, sizeof(const char *));
    us_db_rc rc = US_DB_OK;
    apr_array_clear(a->deleted);
    if (!a->names) {
        const void *args[] = { a->workspace };
        rc = select_each(db, p, US_STMT_WORKSPACE_FILE_IDS_ALL, args, us_push_str, ids, NULL);
    }
    for (int i = 0; a->names && rc == US_DB_OK && i < a->names->nelts; i++) {
        const void *args[] = { a->workspace, APR_ARRAY_IDX(a->names, i, const char *) };
        rc = select_each(db, p, US_STMT_WORKSPACE_FILE_IDS_BY_NAME, args, us_push_str, ids, NULL);
    }
    for (int i = 0; rc == US_DB_OK && i < ids->nelts; i++) {
        int gone = 0;
        const char *id = APR_ARRAY_IDX(ids, i, const char *);
        rc = delete_one(db, p, a->workspace, id, &gone);
        if (rc == US_DB_OK && gone) /* a name given twice finds its files once */
            APR_ARRAY_PUSH(a->deleted, const char *) = id;
    }
    return rc;
}

static us_db_rc sq_workspace_files_delete(us_db *base, apr_pool_t *p, const char *workspace,
                                          const apr_array_header_t *names,
                                          apr_array_header_t **deleted)
{
    delete_args a = { workspace, NULL, names, apr_array_make(p, 16, sizeof(const char *)) };
    us_db_rc rc = us_write(us_sqlite_of(base), p, delete_many_body, &a);
    if (rc != US_DB_OK && rc != US_DB_NOT_DURABLE)
        apr_array_clear(a.deleted);
    *deleted = a.deleted;
    return rc;
}

typedef struct {
    const char *name;
    apr_time_t now;
    apr_array_header_t *file_ids;
} workspace_delete_args;

/* docs/design-workspaces.md: under the write lock, so atomic against every
 * other write of the workspace; the sessions are aborted last, as the
 * uploads' statements find them by their visibility. */
static us_db_rc workspace_delete_body(us_sqlite_db *db, apr_pool_t *p, void *arg)
{
    workspace_delete_args *a = arg;
    apr_int64_t t = a->now;
    const void *ws[] = { a->name };
    const void *sessions_args[] = { &t, a->name };
    int nrows = 0;
    apr_array_clear(a->file_ids);
    us_db_rc rc = exec_stmt(db, p, US_STMT_WORKSPACE_DELETE_ROW, ws, &nrows);
    if (rc != US_DB_OK)
        return rc;
    if (nrows == 0) /* data always has a row: nothing was there */
        return US_DB_NOTFOUND;
    if ((rc = select_each(db, p, US_STMT_WORKSPACE_FILE_IDS_ALL, ws, us_push_str, a->file_ids,
                          NULL)) != US_DB_OK ||
        (rc = exec_stmt(db, p, US_STMT_WORKSPACE_TRASH_FILES, ws, &nrows)) != US_DB_OK ||
        (rc = exec_stmt(db, p, US_STMT_WORKSPACE_FILES_DROP, ws, &nrows)) != US_DB_OK ||
        (rc = exec_stmt(db, p, US_STMT_WORKSPACE_TRASH_PENDING, ws, &nrows)) != US_DB_OK ||
        (rc = exec_stmt(db, p, US_STMT_WORKSPACE_UPLOADS_DROP, ws, &nrows)) != US_DB_OK ||
        (rc = exec_stmt(db, p, US_STMT_WORKSPACE_OUTBOX_DROP, ws, &nrows)) != US_DB_OK)
        return rc;
    return exec_stmt(db, p, US_STMT_WORKSPACE_SESSIONS_ABORT, sessions_args, &nrows);
}

static us_db_rc sq_workspace_delete(us_db *base, apr_pool_t *p, const char *name, apr_time_t now,
                                    apr_array_header_t **file_ids)
{
    workspace_delete_args a = { name, now, apr_array_make(p, 16, sizeof(const char *)) };
    us_db_rc rc = us_write(us_sqlite_of(base), p, workspace_delete_body, &a);
    if (rc != US_DB_OK && rc != US_DB_NOT_DURABLE)
        apr_array_clear(a.file_ids);
    *file_ids = a.file_ids;
    return rc;
}

/* ---- the generic entries ---------------------------------------------------------- */

static us_db_rc sq_exec(us_db *base, apr_pool_t *p, us_stmt_id id, const void **args, int *nrows)
{
    int n = 0;
    us_db_rc rc = exec_stmt(us_sqlite_of(base), p, id, args, &n);
    if (nrows)
        *nrows = n;
    return rc;
}

static us_db_rc sq_select(us_db *base, apr_pool_t *p, us_stmt_id id, const void **args,
                          us_row_fn fn, void *out, int *nrows)
{
    return select_each(us_sqlite_of(base), p, id, args, fn, out, nrows);
}

typedef struct {
    us_txn_fn fn;
    void *arg;
} txn_call;

static us_db_rc txn_call_body(us_sqlite_db *db, apr_pool_t *p, void *arg)
{
    txn_call *c = arg;
    return c->fn(&db->base, p, c->arg);
}

static us_db_rc sq_write(us_db *base, apr_pool_t *p, us_txn_fn fn, void *arg)
{
    txn_call c = { fn, arg };
    return us_write(us_sqlite_of(base), p, txn_call_body, &c);
}

typedef struct {
    us_stmt_id id;
    const void **args;
    int nrows;
} one_call;

static us_db_rc one_body(us_sqlite_db *db, apr_pool_t *p, void *arg)
{
    one_call *c = arg;
    return exec_stmt(db, p, c->id, c->args, &c->nrows);
}

static us_db_rc sq_write_one(us_db *base, apr_pool_t *p, us_stmt_id id, const void **args,
                             int *nrows)
{
    one_call c = { id, args, 0 };
    us_db_rc rc = us_write(us_sqlite_of(base), p, one_body, &c);
    if (nrows)
        *nrows = c.nrows;
    return rc;
}

/* ---- the backend table ------------------------------------------------------------ */

static us_db_rc sq_open(const void *conf, apr_pool_t *p, us_db **out, const char **err)
{
    us_sqlite_db *db = NULL;
    us_db_rc rc = us_sqlite_open(conf, p, &db, err);
    if (rc == US_DB_OK)
        db->base.backend = &us_sqlite_backend;
    *out = rc == US_DB_OK ? &db->base : NULL;
    return rc;
}

static void sq_close(us_db *db)
{
    us_sqlite_close(us_sqlite_of(db));
}

const us_store_backend us_sqlite_backend = {
    .name = "sqlite",
    .driver = "sqlite3",
    .params_are_path = 1,
    .configure = us_sqlite_configure,
    .home = us_sqlite_home,
    .set_lock_timeout = us_sqlite_set_lock_timeout,
    .set_logger = us_sqlite_set_logger,
    .migrate = us_sqlite_migrate,
    .prepare_files = us_sqlite_prepare_files,
    .user_files = us_sqlite_user_files,
    .open = sq_open,
    .close = sq_close,
    .maintain = us_sqlite_checkpoint,
    .for_batches = us_sqlite_for_batches,
    .warm = us_sqlite_warm,
    .error = us_sqlite_error,
    .clear_error = us_sqlite_clear_error,
    .set_error = us_sqlite_set_error,
    .statement = us_sql_statement,
    .exec = sq_exec,
    .select = sq_select,
    .write = sq_write,
    .write_one = sq_write_one,
    .session_insert = sq_session_insert,
    .sessions_expire = sq_sessions_expire,
    .ingest_claim = sq_ingest_claim,
    .ingest_heartbeat = sq_ingest_heartbeat,
    .workspace_file_list_built = sq_workspace_file_list_built,
    .worn_out = sq_worn_out,
    .workspace_file_delete = sq_workspace_file_delete,
    .workspace_files_delete = sq_workspace_files_delete,
    .workspace_delete = sq_workspace_delete,
};

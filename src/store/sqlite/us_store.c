/*
 * us_store.c - the store's queries on an SQLite connection (us_db.c). Every
 * query is a prepared statement with typed (binary) arguments; every result
 * set is drained. Writes go through the queue of us_writer.c.
 */
#include "us_sqlite_filter.h"
#include "us_store_db.h"

#include <apr_hash.h>
#include <apr_strings.h>
#include <string.h>

/* ---- queries ------------------------------------------------------------- */

static long long entry_ll(const apr_dbd_driver_t *drv, apr_dbd_row_t *row, int col)
{
    const char *v = apr_dbd_get_entry(drv, row, col);
    return v ? apr_atoi64(v) : 0;
}

static const char *entry_str(const apr_dbd_driver_t *drv, apr_pool_t *p,
                             apr_dbd_row_t *row, int col)
{
    const char *v = apr_dbd_get_entry(drv, row, col);
    return apr_pstrdup(p, v ? v : "");
}

/* Reads one row into out: a row callback of select_each. */
typedef void (*row_fn)(const apr_dbd_driver_t *drv, apr_pool_t *p, apr_dbd_row_t *row,
                       void *out);

/* Column order of SESSION_COLS in us_sql.c */
static void row_to_session(const apr_dbd_driver_t *drv, apr_pool_t *p,
                           apr_dbd_row_t *row, void *out)
{
    us_session *s = out;
    s->id = entry_str(drv, p, row, 0);
    s->workspace = entry_str(drv, p, row, 1);
    s->user_id = entry_str(drv, p, row, 2);
    s->given_name = entry_str(drv, p, row, 3);
    s->family_name = entry_str(drv, p, row, 4);
    s->write_mode = entry_str(drv, p, row, 5);
    s->parallel = (int)entry_ll(drv, row, 6);
    s->status = entry_str(drv, p, row, 7);
    s->created_at = (apr_time_t)entry_ll(drv, row, 8);
    s->expires_at = (apr_time_t)entry_ll(drv, row, 9);
    s->uploaded_files = entry_ll(drv, row, 10);
    s->finished_files = entry_ll(drv, row, 11);
    s->failed_files = entry_ll(drv, row, 12);
    s->ingest_owner = NULL;
}

static void row_to_count(const apr_dbd_driver_t *drv, apr_pool_t *p, apr_dbd_row_t *row,
                         void *out)
{
    (void)p;
    *(long long *)out = entry_ll(drv, row, 0);
}

static void row_to_str(const apr_dbd_driver_t *drv, apr_pool_t *p, apr_dbd_row_t *row, void *out)
{
    *(const char **)out = entry_str(drv, p, row, 0);
}

/* Row callbacks that append to an array (out) of their element type. */
static void push_session(const apr_dbd_driver_t *drv, apr_pool_t *p, apr_dbd_row_t *row,
                         void *out)
{
    row_to_session(drv, p, row, apr_array_push(out));
}

static void push_str(const apr_dbd_driver_t *drv, apr_pool_t *p, apr_dbd_row_t *row, void *out)
{
    row_to_str(drv, p, row, apr_array_push(out));
}

static us_db_rc select_rows(us_sqlite_db *db, apr_pool_t *p, us_stmt_id id,
                            const void **args, apr_dbd_results_t **res)
{
    int rc = apr_dbd_pbselect(db->drv, p, db->h, res, db->stmt[id], 0, args);
    return rc == 0 ? US_DB_OK : us_db_fail(db, rc, us_sql_statement(id)->label);
}

/* Hands every row of res to fn with out (fn may be NULL to only count
 * them); *nrows (may be NULL) says how many there were. A row that fails
 * to fetch is an error, never the end of the rows. */
static us_db_rc each_row(us_sqlite_db *db, apr_pool_t *p, apr_dbd_results_t *res, row_fn fn,
                         void *out, int *nrows)
{
    apr_dbd_row_t *row = NULL;
    int n = 0;
    us_db_rc rc;
    while ((rc = us_db_next_row(db, p, res, &row)) == US_DB_OK) {
        if (fn)
            fn(db->drv, p, row, out);
        n++;
    }
    if (nrows)
        *nrows = n;
    return rc == US_DB_NOTFOUND ? US_DB_OK : rc;
}

/* Runs statement id and hands its rows to fn, as each_row. */
static us_db_rc select_each(us_sqlite_db *db, apr_pool_t *p, us_stmt_id id, const void **args,
                            row_fn fn, void *out, int *nrows)
{
    apr_dbd_results_t *res = NULL;
    us_db_rc rc = select_rows(db, p, id, args, &res);
    return rc == US_DB_OK ? each_row(db, p, res, fn, out, nrows) : rc;
}

/* A select of (at most) one row into out: US_DB_NOTFOUND when there is none. */
static us_db_rc select_one(us_sqlite_db *db, apr_pool_t *p, us_stmt_id id, const void **args,
                           row_fn fn, void *out)
{
    int n = 0;
    us_db_rc rc = select_each(db, p, id, args, fn, out, &n);
    return rc == US_DB_OK && n == 0 ? US_DB_NOTFOUND : rc;
}

static us_db_rc session_insert_in_txn(us_sqlite_db *db, apr_pool_t *p, const us_session *s,
                           int max_open, apr_time_t now)
{
    apr_int64_t created = s->created_at, expires = s->expires_at, t = now;
    int parallel = s->parallel, nrows = 0;
    const void *args[] = { s->id, s->workspace, s->user_id, s->given_name,
                           s->family_name, s->write_mode, &parallel, &created,
                           &expires, s->user_id, s->user_id, &t, &max_open };
    int rc = apr_dbd_pbquery(db->drv, p, db->h, &nrows,
                             db->stmt[US_STMT_SESSION_INSERT], args);
    if (rc != 0)
        return us_db_fail(db, rc, "us_session_insert");
    return nrows == 1 ? US_DB_OK : US_DB_LIMIT;
}

static int sq_worn_out(us_db *base)
{
    return us_sqlite_of(base)->worn_out;
}

static us_db_rc sq_session_get(us_db *base, apr_pool_t *p, const char *workspace,
                               const char *id, apr_time_t now, us_session *out)
{
    apr_int64_t t = now;
    const void *args[] = { &t, workspace, id };
    return select_one(us_sqlite_of(base), p, US_STMT_SESSION_GET, args, row_to_session, out);
}

static us_db_rc session_close_in_txn(us_sqlite_db *db, apr_pool_t *p, const char *workspace,
                          const char *id, apr_time_t now)
{
    apr_int64_t t = now;
    int nrows = 0;
    const void *args[] = { &t, workspace, id, &t };
    int rc = apr_dbd_pbquery(db->drv, p, db->h, &nrows,
                             db->stmt[US_STMT_SESSION_CLOSE], args);
    if (rc != 0)
        return us_db_fail(db, rc, "us_session_close");
    if (nrows == 1)
        return US_DB_OK;
    us_session s;
    us_db_rc grc = sq_session_get(&db->base, p, workspace, id, now, &s);
    return grc == US_DB_OK ? US_DB_CONFLICT : grc;
}

static us_db_rc sq_session_list(us_db *base, apr_pool_t *p, const char *workspace,
                                int is_expired, const us_page *pg,
                                apr_time_t now, apr_array_header_t **rows, long long *total)
{
    us_sqlite_db *db = us_sqlite_of(base);
    apr_int64_t t = now, lim = pg->limit, off = pg->offset;
    int f = is_expired < 0 ? 0 : is_expired ? 1 : 2;
    static const us_stmt_id LIST[] = { US_STMT_SESSION_LIST_ALL, US_STMT_SESSION_LIST_EXPIRED,
                                       US_STMT_SESSION_LIST_ACTIVE };
    static const us_stmt_id AFTER[] = { US_STMT_SESSION_AFTER_ALL,
                                        US_STMT_SESSION_AFTER_EXPIRED,
                                        US_STMT_SESSION_AFTER_ACTIVE };
    static const us_stmt_id BEFORE[] = { US_STMT_SESSION_BEFORE_ALL,
                                         US_STMT_SESSION_BEFORE_EXPIRED,
                                         US_STMT_SESSION_BEFORE_ACTIVE };
    static const us_stmt_id COUNT[] = { US_STMT_SESSION_COUNT_ALL,
                                        US_STMT_SESSION_COUNT_EXPIRED,
                                        US_STMT_SESSION_COUNT_ACTIVE };
    /* SESSION_COLS starts with the `now` of the derived status */
    const void *largs_all[] = { &t, workspace, &lim, &off };
    const void *largs_f[] = { &t, workspace, &t, &lim, &off };
    const void *cur_all[] = { &t, workspace, workspace, pg->cursor, &lim };
    const void *cur_f[] = { &t, workspace, &t, workspace, pg->cursor, &lim };
    const void *cargs_all[] = { workspace };
    const void *cargs_f[] = { workspace, &t };
    us_db_rc rc;

    *total = 0;
    rc = select_each(db, p, COUNT[f], f == 0 ? cargs_all : cargs_f, row_to_count, total, NULL);
    if (rc != US_DB_OK)
        return rc;
    *rows = apr_array_make(p, (int)(pg->limit > 0 && pg->limit < 1000 ? pg->limit : 16),
                           sizeof(us_session));
    if (pg->cursor)
        return select_each(db, p, pg->before ? BEFORE[f] : AFTER[f],
                           f == 0 ? cur_all : cur_f, push_session, *rows, NULL);
    return select_each(db, p, LIST[f], f == 0 ? largs_all : largs_f, push_session, *rows, NULL);
}

static us_db_rc sq_session_by_id(us_db *base, apr_pool_t *p, const char *id, apr_time_t now,
                                 us_session *out)
{
    apr_int64_t t = now;
    const void *args[] = { &t, id };
    return select_one(us_sqlite_of(base), p, US_STMT_SESSION_BY_ID, args, row_to_session, out);
}

static us_db_rc exec_stmt(us_sqlite_db *db, apr_pool_t *p, us_stmt_id id, const void **args,
                          int *nrows)
{
    int rc = apr_dbd_pbquery(db->drv, p, db->h, nrows, db->stmt[id], args);
    return rc == 0 ? US_DB_OK : us_db_fail(db, rc, us_sql_statement(id)->label);
}

static us_db_rc session_abort_in_txn(us_sqlite_db *db, apr_pool_t *p, const char *workspace,
                                     const char *id, apr_time_t now)
{
    apr_int64_t t = now;
    int nrows = 0;
    const void *args[] = { &t, workspace, id, &t };
    us_db_rc rc = exec_stmt(db, p, US_STMT_SESSION_ABORT, args, &nrows);
    if (rc != US_DB_OK)
        return rc;
    if (nrows == 1) {
        const void *dargs[] = { id };
        return exec_stmt(db, p, US_STMT_UPLOADS_DISCARD, dargs, &nrows);
    }
    us_session s;
    us_db_rc grc = sq_session_get(&db->base, p, workspace, id, now, &s);
    return grc == US_DB_OK ? US_DB_CONFLICT : grc;
}

/* The body of us_upload_commit, inside the transaction. */
static us_db_rc upload_commit_in_txn(us_sqlite_db *db, apr_pool_t *p, const us_upload_record *u,
                                     apr_time_t now, const char **old_blob)
{
    apr_int64_t t = now, size = u->size, at = u->uploaded_at;
    int open = 0, nrows = 0, is_meta = u->is_meta;
    us_db_rc rc;

    const void *open_args[] = { u->session_id, &t };
    if ((rc = select_each(db, p, US_STMT_SESSION_IS_OPEN, open_args, NULL, NULL, &open)) !=
        US_DB_OK)
        return rc;
    if (!open)
        return US_DB_CONFLICT;

    const void *blob_args[] = { u->session_id, u->name };
    if ((rc = select_each(db, p, US_STMT_UPLOAD_BLOB_GET, blob_args, row_to_str, old_blob,
                          NULL)) != US_DB_OK)
        return rc;

    if (*old_blob) {
        const void *args[] = { u->blob, &size, u->sha256, &at, u->session_id, u->name };
        return exec_stmt(db, p, US_STMT_UPLOAD_REPLACE, args, &nrows);
    }
    if (!u->is_meta && u->max_files > 0) { /* under the write lock: the count is final */
        long long held = 0;
        const void *held_args[] = { u->session_id };
        if ((rc = select_each(db, p, US_STMT_SESSION_UPLOADED, held_args, row_to_count, &held,
                              NULL)) != US_DB_OK)
            return rc;
        if (held >= u->max_files)
            return US_DB_LIMIT;
    }
    const void *args[] = { u->session_id, u->name, u->blob, &size, u->sha256, &is_meta,
                           &at, u->file_ingestion_id };
    if ((rc = exec_stmt(db, p, US_STMT_UPLOAD_INSERT, args, &nrows)) != US_DB_OK)
        return rc;
    if (u->is_meta)
        return US_DB_OK;
    const void *count_args[] = { u->session_id };
    return exec_stmt(db, p, US_STMT_SESSION_COUNT_UPLOAD, count_args, &nrows);
}

static void push_session_file(const apr_dbd_driver_t *drv, apr_pool_t *p, apr_dbd_row_t *row,
                              void *out)
{
    us_session_file_row *f = apr_array_push(out);
    const char *reason = apr_dbd_get_entry(drv, row, 3);
    f->file_ingestion_id = entry_str(drv, p, row, 0);
    f->name = entry_str(drv, p, row, 1);
    f->status = entry_str(drv, p, row, 2);
    f->reason = reason ? apr_pstrdup(p, reason) : NULL;
}

static us_db_rc sq_session_files_list(us_db *base, apr_pool_t *p, const char *session_id,
                              const char *status, const us_page *pg,
                              apr_array_header_t **rows, long long *total)
{
    us_sqlite_db *db = us_sqlite_of(base);
    apr_int64_t lim = pg->limit, off = pg->offset;
    const void *cargs[] = { session_id, status };
    const void *largs_all[] = { session_id, &lim, &off };
    const void *largs_st[] = { session_id, status, &lim, &off };
    const void *cur_all[] = { session_id, session_id, pg->cursor, &lim };
    const void *cur_st[] = { session_id, status, session_id, pg->cursor, &lim };
    us_stmt_id list;
    const void **args;
    us_db_rc rc;

    *total = 0;
    rc = select_each(db, p, status ? US_STMT_FILES_COUNT_STATUS : US_STMT_FILES_COUNT_ALL,
                     cargs, row_to_count, total, NULL);
    if (rc != US_DB_OK)
        return rc;
    *rows = apr_array_make(p, (int)(pg->limit > 0 && pg->limit < 1000 ? pg->limit : 16),
                           sizeof(us_session_file_row));
    if (!pg->cursor) {
        list = status ? US_STMT_FILES_LIST_STATUS : US_STMT_FILES_LIST_ALL;
        args = status ? largs_st : largs_all;
    } else if (pg->before) {
        list = status ? US_STMT_FILES_BEFORE_STATUS : US_STMT_FILES_BEFORE_ALL;
        args = status ? cur_st : cur_all;
    } else {
        list = status ? US_STMT_FILES_AFTER_STATUS : US_STMT_FILES_AFTER_ALL;
        args = status ? cur_st : cur_all;
    }
    return select_each(db, p, list, args, push_session_file, *rows, NULL);
}

/* ---- expiry and ingestion ------------------------------------------------------ */

static us_db_rc sessions_expire_in_txn(us_sqlite_db *db, apr_pool_t *p, int *count)
{
    *count = 0;
    return exec_stmt(db, p, US_STMT_SESSIONS_EXPIRE, NULL, count);
}

/* The next session in its turn, by a read; NOTFOUND when there is none. */
static us_db_rc ingest_candidate(us_sqlite_db *db, apr_pool_t *p, apr_time_t stale_before,
                                 const char **id)
{
    apr_int64_t stale = stale_before;
    const void *args[] = { &stale, &stale };
    *id = NULL;
    return select_one(db, p, US_STMT_INGEST_CANDIDATE, args, row_to_str, id);
}

static us_db_rc ingest_claim_in_txn(us_sqlite_db *db, apr_pool_t *p, const char *owner,
                                         apr_time_t now, apr_time_t stale_before,
                                         const char *id, us_session *out)
{
    apr_int64_t t = now, stale = stale_before;
    int nrows = 0;
    const void *args[] = { owner, &t, id, &stale, &stale };
    us_db_rc rc = exec_stmt(db, p, US_STMT_INGEST_CLAIM, args, &nrows);
    if (rc != US_DB_OK)
        return rc;
    if (nrows == 0)
        return US_DB_NOTFOUND; /* another worker was quicker */
    const void *qargs[] = { &t, owner };
    rc = select_one(db, p, US_STMT_INGEST_CLAIMED, qargs, row_to_session, out);
    if (rc == US_DB_OK)
        out->ingest_owner = apr_pstrdup(p, owner);
    if (rc != US_DB_NOTFOUND)
        return rc;
    /* claimed a moment ago in this transaction: cannot be */
    db->err = "us_ingest_claimed: the claimed session is not there";
    return US_DB_ERROR;
}

static void push_claim(const apr_dbd_driver_t *drv, apr_pool_t *p, apr_dbd_row_t *row, void *out)
{
    us_claim *c = apr_array_push(out);
    c->session_id = entry_str(drv, p, row, 0);
    c->owner = entry_str(drv, p, row, 1);
}

static void row_to_overview(const apr_dbd_driver_t *drv, apr_pool_t *p, apr_dbd_row_t *row,
                            void *out)
{
    us_store_overview *o = out;
    (void)p;
    o->open = entry_ll(drv, row, 0);
    o->closed = entry_ll(drv, row, 1);
    o->expired = entry_ll(drv, row, 2);
    o->queued = entry_ll(drv, row, 3);
    o->running = entry_ll(drv, row, 4);
    o->oldest_queued = (apr_time_t)entry_ll(drv, row, 5); /* NULL (none) reads as 0 */
}

static us_db_rc sq_overview(us_db *base, apr_pool_t *p, apr_time_t now, us_store_overview *out)
{
    apr_int64_t t = now;
    const void *args[] = { &t, &t };
    memset(out, 0, sizeof(*out));
    return select_one(us_sqlite_of(base), p, US_STMT_OVERVIEW, args, row_to_overview, out);
}

static us_db_rc sq_ingest_running(us_db *base, apr_pool_t *p, apr_array_header_t **claims)
{
    *claims = apr_array_make(p, 4, sizeof(us_claim));
    return select_each(us_sqlite_of(base), p, US_STMT_INGEST_RUNNING, NULL, push_claim, *claims,
                       NULL);
}

static us_db_rc ingest_requeue_in_txn(us_sqlite_db *db, apr_pool_t *p, const char *session_id,
                                      const char *owner)
{
    int nrows = 0;
    const void *args[] = { session_id, owner };
    return exec_stmt(db, p, US_STMT_INGEST_REQUEUE, args, &nrows);
}

static us_db_rc ingest_heartbeat_in_txn(us_sqlite_db *db, apr_pool_t *p, const char *session_id,
                             const char *owner, apr_time_t now)
{
    int nrows = 0;
    apr_int64_t t = now;
    const void *args[] = { &t, session_id, owner };
    us_db_rc rc = exec_stmt(db, p, US_STMT_INGEST_HEARTBEAT, args, &nrows);
    /* no row: the claim was taken over; the caller stops */
    return rc == US_DB_OK && nrows == 0 ? US_DB_CONFLICT : rc;
}

static us_db_rc ingest_done_in_txn(us_sqlite_db *db, apr_pool_t *p, const char *session_id,
                                   const char *owner)
{
    int nrows = 0;
    const void *args[] = { session_id, owner };
    return exec_stmt(db, p, US_STMT_INGEST_DONE, args, &nrows);
}

static void push_pending(const apr_dbd_driver_t *drv, apr_pool_t *p, apr_dbd_row_t *row,
                         void *out)
{
    us_pending *u = apr_array_push(out);
    u->name = entry_str(drv, p, row, 0);
    u->blob = entry_str(drv, p, row, 1);
    u->size = entry_ll(drv, row, 2);
    u->file_ingestion_id = entry_str(drv, p, row, 3);
}

static us_db_rc sq_ingest_pending(us_db *base, apr_pool_t *p, const char *session_id, int limit,
                                  apr_array_header_t **rows)
{
    const void *args[] = { session_id, &limit };
    *rows = apr_array_make(p, limit > 0 ? limit : 1, sizeof(us_pending));
    return select_each(us_sqlite_of(base), p, US_STMT_INGEST_PENDING, args, push_pending, *rows,
                       NULL);
}

static us_db_rc sq_upload_blob(us_db *base, apr_pool_t *p, const char *session_id,
                               const char *name, const char **blob)
{
    const void *args[] = { session_id, name };
    *blob = NULL;
    return select_each(us_sqlite_of(base), p, US_STMT_UPLOAD_BLOB_GET, args, row_to_str, blob,
                       NULL);
}

static us_db_rc sq_workspace_file_ids_by_name(us_db *base, apr_pool_t *p, const char *workspace,
                                      const char *name, apr_array_header_t **ids)
{
    const void *args[] = { workspace, name };
    *ids = apr_array_make(p, 2, sizeof(const char *));
    return select_each(us_sqlite_of(base), p, US_STMT_WORKSPACE_FILE_IDS_BY_NAME, args, push_str,
                       *ids, NULL);
}

/* Deletes the workspace's other files of this name, noting their ids. */
static us_db_rc delete_same_name(us_sqlite_db *db, apr_pool_t *p, const char *workspace,
                                 const char *name, const char *keep_id,
                                 apr_array_header_t *deleted)
{
    apr_array_header_t *ids;
    int nrows = 0;
    us_db_rc rc = sq_workspace_file_ids_by_name(&db->base, p, workspace, name, &ids);
    for (int i = 0; rc == US_DB_OK && i < ids->nelts; i++) {
        const char *id = APR_ARRAY_IDX(ids, i, const char *);
        if (strcmp(id, keep_id) == 0)
            continue;
        const void *args[] = { id };
        rc = exec_stmt(db, p, US_STMT_WORKSPACE_FILE_DELETE, args, &nrows);
        if (rc == US_DB_OK)
            APR_ARRAY_PUSH(deleted, const char *) = id;
    }
    return rc;
}

static us_db_rc insert_workspace_file(us_sqlite_db *db, apr_pool_t *p, const char *workspace,
                              const char *file_id, const char *name, long long size,
                              const char *meta, apr_time_t created, const char *session_id,
                              long long characters)
{
    int nrows = 0;
    apr_int64_t sz = size, at = created, chars = characters;
    const void *args[] = { file_id, workspace, name, &sz, meta, &at, session_id,
                           characters < 0 ? NULL : &chars };
    return exec_stmt(db, p, US_STMT_WORKSPACE_FILE_INSERT, args, &nrows);
}

/* Under FAIL, another file of this name already in the workspace. Checked
 * again inside the batch transaction: parallel sessions may race past the
 * worker's earlier look. */
static us_db_rc name_taken(us_sqlite_db *db, apr_pool_t *p, const char *workspace,
                           const char *name, const char *own_id, int *taken)
{
    apr_array_header_t *ids;
    us_db_rc rc = sq_workspace_file_ids_by_name(&db->base, p, workspace, name, &ids);
    *taken = 0;
    for (int i = 0; rc == US_DB_OK && i < ids->nelts; i++)
        *taken |= strcmp(APR_ARRAY_IDX(ids, i, const char *), own_id) != 0;
    return rc;
}

/* One result inside the batch transaction. *counted: 0 when it was done
 * already (a replay), else 1 for FINISHED and 2 for FAILED. */
static us_db_rc apply_one(us_sqlite_db *db, apr_pool_t *p, const us_session *s,
                          const us_ingest_result *r, apr_time_t now,
                          apr_array_header_t *deleted, int *counted)
{
    const char *status = r->status, *reason = r->reason;
    int nrows = 0, taken = 0;
    us_db_rc rc = US_DB_OK;

    *counted = 0;
    if (strcmp(status, "FINISHED") == 0 && strcmp(s->write_mode, "FAIL") == 0 &&
        (rc = name_taken(db, p, s->workspace, r->name, r->file_id, &taken)) != US_DB_OK)
        return rc;
    if (taken) {
        status = "FAILED";
        reason = "FILE_ALREADY_EXISTS";
    }
    const void *args[] = { status, reason, s->id, r->name };
    if ((rc = exec_stmt(db, p, US_STMT_UPLOAD_SET_STATE, args, &nrows)) != US_DB_OK || nrows != 1)
        return rc;
    *counted = strcmp(status, "FINISHED") == 0 ? 1 : 2;
    if (taken) /* its blob was moved already: the caller removes it */
        APR_ARRAY_PUSH(deleted, const char *) = r->file_id;
    if (*counted != 1)
        return US_DB_OK;
    if (r->overwrite &&
        (rc = delete_same_name(db, p, s->workspace, r->name, r->file_id, deleted)) != US_DB_OK)
        return rc;
    return insert_workspace_file(db, p, s->workspace, r->file_id, r->name, r->size, r->meta, now, s->id,
                                 r->characters);
}

/* The body of us_ingest_apply, inside the write transaction. */
static us_db_rc ingest_apply_in_txn(us_sqlite_db *db, apr_pool_t *p, const us_session *s,
                                   const apr_array_header_t *results, apr_time_t now,
                                   apr_array_header_t *deleted)
{
    apr_int64_t finished = 0, failed = 0;
    int nrows = 0;
    us_db_rc rc = US_DB_OK;
    if (s->ingest_owner) {
        /* fencing: under the write lock, the claim cannot change meanwhile */
        apr_dbd_results_t *res = NULL;
        apr_dbd_row_t *row = NULL;
        int held = 0;
        const void *args[] = { s->id, s->ingest_owner };
        if ((rc = select_rows(db, p, US_STMT_INGEST_HELD, args, &res)) != US_DB_OK)
            return rc;
        while ((rc = us_db_next_row(db, p, res, &row)) == US_DB_OK)
            held = 1;
        if (rc != US_DB_NOTFOUND)
            return rc;
        if (!held)
            return US_DB_CONFLICT;
        rc = US_DB_OK;
    }
    for (int i = 0; rc == US_DB_OK && i < results->nelts; i++) {
        const us_ingest_result *r = &APR_ARRAY_IDX(results, i, us_ingest_result);
        int counted = 0;
        /* files of one batch share a created_at order by position */
        rc = apply_one(db, p, s, r, now + i, deleted, &counted);
        finished += counted == 1;
        failed += counted == 2;
    }
    if (rc == US_DB_OK && finished + failed > 0) {
        const void *args[] = { &finished, &failed, s->id };
        rc = exec_stmt(db, p, US_STMT_SESSION_ADD_COUNTS, args, &nrows);
    }
    return rc;
}

/* ---- workspace files ------------------------------------------------------------ */

static void row_to_workspace_file(const apr_dbd_driver_t *drv, apr_pool_t *p, apr_dbd_row_t *row,
                                  void *out)
{
    us_workspace_file *f = out;
    const char *meta = apr_dbd_get_entry(drv, row, 3);
    f->file_id = entry_str(drv, p, row, 0);
    f->name = entry_str(drv, p, row, 1);
    f->size = entry_ll(drv, row, 2);
    f->meta = meta ? apr_pstrdup(p, meta) : NULL;
    f->created_at = (apr_time_t)entry_ll(drv, row, 4);
    f->characters = apr_dbd_get_entry(drv, row, 5) ? entry_ll(drv, row, 5) : -1;
}

static void push_workspace_file(const apr_dbd_driver_t *drv, apr_pool_t *p, apr_dbd_row_t *row,
                                void *out)
{
    row_to_workspace_file(drv, p, row, apr_array_push(out));
}

static us_db_rc sq_workspace_file_get(us_db *base, apr_pool_t *p, const char *workspace,
                              const char *file_id, us_workspace_file *out)
{
    const void *args[] = { workspace, file_id };
    return select_one(us_sqlite_of(base), p, US_STMT_WORKSPACE_FILE_GET, args,
                      row_to_workspace_file, out);
}

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

/* The one value of a COUNT(*). */
static us_db_rc count_of(us_sqlite_db *db, apr_pool_t *p, apr_dbd_results_t *res, long long *total)
{
    *total = 0;
    return each_row(db, p, res, row_to_count, total, NULL);
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
    apr_dbd_prepared_t *count_stmt, *list_stmt;
    APR_ARRAY_PUSH(args, const void *) = workspace;
    APR_ARRAY_PUSH(args, const void *) = q->name_part;
    const char *where = apr_pstrcat(p, " FROM us_files WHERE workspace = %s AND instr(name, %s) > 0",
                                    q->filter ? " AND " : "",
                                    q->filter ? us_filter_sql(p, q->filter, args, &us_sqlite_filter_dialect) : "", NULL);
    us_db_rc rc = dynamic_statement(db, apr_pstrcat(p, "SELECT COUNT(*)", where, NULL), &count_stmt);
    if (rc != US_DB_OK)
        return rc;
    int drc = apr_dbd_pbselect(db->drv, p, db->h, &counted, count_stmt, 0, (const void **)args->elts);
    if (drc != 0)
        return us_db_fail(db, drc, "us_workspace_file_count (built)");
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
    rc = dynamic_statement(db, apr_pstrcat(p, "SELECT ", us_sql_workspace_file_cols(), where, cursor,
                                           " ORDER BY ", col, " ", dir, ", file_id ", dir,
                                           " LIMIT %lld OFFSET %lld", NULL),
                           &list_stmt);
    if (rc != US_DB_OK)
        return rc;
    drc = apr_dbd_pbselect(db->drv, p, db->h, listed, list_stmt, 0, (const void **)args->elts);
    return drc == 0 ? US_DB_OK : us_db_fail(db, drc, "us_workspace_file_list (built)");
}

static us_db_rc sq_workspace_file_list(us_db *base, apr_pool_t *p, const char *workspace,
                                       const us_workspace_file_query *q, apr_array_header_t **rows,
                                       long long *total)
{
    us_sqlite_db *db = us_sqlite_of(base);
    apr_dbd_results_t *counted = NULL, *listed = NULL;
    apr_int64_t lim = q->limit, at = q->after_at;
    us_db_rc rc;
    if (q->filter || q->by_name || q->ascending || q->offset > 0) {
        rc = workspace_file_list_built(db, p, workspace, q, total, &listed);
    } else {
        const void *cargs[] = { workspace, q->name_part };
        const void *largs[] = { workspace, q->name_part, &lim };
        const void *aargs[] = { workspace, q->name_part, &at, &at, q->after_id, &lim };
        rc = select_rows(db, p, US_STMT_WORKSPACE_FILE_COUNT, cargs, &counted);
        if (rc == US_DB_OK)
            rc = count_of(db, p, counted, total);
        if (rc == US_DB_OK)
            rc = q->after_id ? select_rows(db, p, US_STMT_WORKSPACE_FILE_LIST_AFTER, aargs, &listed)
                             : select_rows(db, p, US_STMT_WORKSPACE_FILE_LIST, largs, &listed);
    }
    if (rc != US_DB_OK)
        return rc;
    *rows = apr_array_make(p, (int)(q->limit > 0 ? q->limit : 1), sizeof(us_workspace_file));
    return each_row(db, p, listed, push_workspace_file, *rows, NULL);
}

/* The body of us_workspace_file_add, inside the write transaction. */
static us_db_rc workspace_file_add_in_txn(us_sqlite_db *db, apr_pool_t *p, const char *workspace,
                                  const us_workspace_file *f, const char *write_mode,
                                  apr_array_header_t *deleted)
{
    apr_array_header_t *ids;
    us_db_rc rc = US_DB_OK;
    if (strcmp(write_mode, "FAIL") == 0) {
        rc = sq_workspace_file_ids_by_name(&db->base, p, workspace, f->name, &ids);
        if (rc == US_DB_OK && ids->nelts > 0)
            rc = US_DB_CONFLICT;
    }
    else if (strcmp(write_mode, "OVERWRITE") == 0) {
        rc = delete_same_name(db, p, workspace, f->name, f->file_id, deleted);
    }
    if (rc == US_DB_OK)
        rc = insert_workspace_file(db, p, workspace, f->file_id, f->name, f->size, f->meta,
                           f->created_at, NULL, f->characters);
    return rc;
}

/* ---- the write entry points --------------------------------------------------------
 * Each packs its arguments for us_write (us_writer.c), which runs the
 * matching *_in_txn function inside a transaction, possibly together with
 * other writers' pieces, and returns once it is committed. Outputs are reset
 * when the commit fails. */

typedef struct {
    const us_session *s;
    int max_open;
    apr_time_t now;
} insert_args;

static us_db_rc insert_body(us_sqlite_db *db, apr_pool_t *p, void *arg)
{
    insert_args *a = arg;
    return session_insert_in_txn(db, p, a->s, a->max_open, a->now);
}

static us_db_rc sq_session_insert(us_db *base, apr_pool_t *p, const us_session *s, int max_open,
                                  apr_time_t now)
{
    us_sqlite_db *db = us_sqlite_of(base);
    insert_args a = { s, max_open, now };
    return us_write(db, p, insert_body, &a);
}

typedef struct {
    const char *workspace, *id;
    apr_time_t now;
} close_args;

static us_db_rc close_body(us_sqlite_db *db, apr_pool_t *p, void *arg)
{
    close_args *a = arg;
    return session_close_in_txn(db, p, a->workspace, a->id, a->now);
}

static us_db_rc sq_session_close(us_db *base, apr_pool_t *p, const char *workspace,
                                 const char *id, apr_time_t now)
{
    us_sqlite_db *db = us_sqlite_of(base);
    close_args a = { workspace, id, now };
    return us_write(db, p, close_body, &a);
}

static us_db_rc abort_body(us_sqlite_db *db, apr_pool_t *p, void *arg)
{
    close_args *a = arg;
    return session_abort_in_txn(db, p, a->workspace, a->id, a->now);
}

static us_db_rc sq_session_abort(us_db *base, apr_pool_t *p, const char *workspace,
                                 const char *id, apr_time_t now)
{
    us_sqlite_db *db = us_sqlite_of(base);
    close_args a = { workspace, id, now };
    return us_write(db, p, abort_body, &a);
}

typedef struct {
    const us_upload_record *u;
    apr_time_t now;
    const char *old_blob;
} upload_args;

static us_db_rc upload_body(us_sqlite_db *db, apr_pool_t *p, void *arg)
{
    upload_args *a = arg;
    a->old_blob = NULL;
    return upload_commit_in_txn(db, p, a->u, a->now, &a->old_blob);
}

static us_db_rc sq_upload_commit(us_db *base, apr_pool_t *p, const us_upload_record *u, apr_time_t now,
                                 const char **old_blob)
{
    us_sqlite_db *db = us_sqlite_of(base);
    upload_args a = { u, now, NULL };
    us_db_rc rc = us_write(db, p, upload_body, &a);
    *old_blob = rc == US_DB_OK ? a.old_blob : NULL;
    return rc;
}

static us_db_rc expire_body(us_sqlite_db *db, apr_pool_t *p, void *arg)
{
    return sessions_expire_in_txn(db, p, arg);
}

static us_db_rc sq_sessions_expire(us_db *base, apr_pool_t *p, int *count)
{
    us_sqlite_db *db = us_sqlite_of(base);
    int n = 0;
    us_db_rc rc = us_write(db, p, expire_body, &n);
    *count = rc == US_DB_OK ? n : 0;
    return rc;
}

typedef struct {
    const char *owner, *id;
    apr_time_t now, stale_before;
    us_session *out;
} claim_args;

static us_db_rc claim_body(us_sqlite_db *db, apr_pool_t *p, void *arg)
{
    claim_args *a = arg;
    return ingest_claim_in_txn(db, p, a->owner, a->now, a->stale_before, a->id, a->out);
}

static us_db_rc sq_ingest_claim(us_db *base, apr_pool_t *p, const char *owner, apr_time_t now,
                                apr_time_t stale_before, us_session *out)
{
    us_sqlite_db *db = us_sqlite_of(base);
    /* search by a read, outside the queue; the claim re-checks that one row */
    const char *id = NULL;
    us_db_rc rc = ingest_candidate(db, p, stale_before, &id);
    if (rc != US_DB_OK)
        return rc;
    claim_args a = { owner, id, now, stale_before, out };
    return us_write(db, p, claim_body, &a);
}

typedef struct {
    const char *session_id, *owner;
    apr_time_t now;
    int op; /* 0 requeue, 1 heartbeat, 2 done */
} claim_change_args;

static us_db_rc claim_change_body(us_sqlite_db *db, apr_pool_t *p, void *arg)
{
    claim_change_args *a = arg;
    switch (a->op) {
    case 0: return ingest_requeue_in_txn(db, p, a->session_id, a->owner);
    case 1: return ingest_heartbeat_in_txn(db, p, a->session_id, a->owner, a->now);
    default: return ingest_done_in_txn(db, p, a->session_id, a->owner);
    }
}

static us_db_rc sq_ingest_requeue(us_db *base, apr_pool_t *p, const char *session_id,
                                  const char *owner)
{
    us_sqlite_db *db = us_sqlite_of(base);
    claim_change_args a = { session_id, owner, 0, 0 };
    return us_write(db, p, claim_change_body, &a);
}

static us_db_rc sq_ingest_heartbeat(us_db *base, apr_pool_t *p, const char *session_id,
                                    const char *owner, apr_time_t now)
{
    us_sqlite_db *db = us_sqlite_of(base);
    claim_change_args a = { session_id, owner, now, 1 };
    return us_write(db, p, claim_change_body, &a);
}

static us_db_rc sq_ingest_done(us_db *base, apr_pool_t *p, const char *session_id,
                               const char *owner)
{
    us_sqlite_db *db = us_sqlite_of(base);
    claim_change_args a = { session_id, owner, 0, 2 };
    return us_write(db, p, claim_change_body, &a);
}

typedef struct {
    const us_session *s;
    const apr_array_header_t *results;
    apr_time_t now;
    apr_array_header_t *deleted;
} apply_args;

static us_db_rc apply_body(us_sqlite_db *db, apr_pool_t *p, void *arg)
{
    apply_args *a = arg;
    apr_array_clear(a->deleted);
    return ingest_apply_in_txn(db, p, a->s, a->results, a->now, a->deleted);
}

static us_db_rc sq_ingest_apply(us_db *base, apr_pool_t *p, const us_session *s,
                                const apr_array_header_t *results, apr_time_t now,
                                apr_array_header_t **deleted)
{
    us_sqlite_db *db = us_sqlite_of(base);
    apply_args a = { s, results, now, apr_array_make(p, 4, sizeof(const char *)) };
    us_db_rc rc = us_write(db, p, apply_body, &a);
    if (rc != US_DB_OK)
        apr_array_clear(a.deleted);
    *deleted = a.deleted;
    return rc;
}

typedef struct {
    const char *workspace, *write_mode;
    const us_workspace_file *f;
    apr_array_header_t *deleted;
} workspace_file_add_args;

static us_db_rc workspace_file_add_body(us_sqlite_db *db, apr_pool_t *p, void *arg)
{
    workspace_file_add_args *a = arg;
    apr_array_clear(a->deleted);
    return workspace_file_add_in_txn(db, p, a->workspace, a->f, a->write_mode, a->deleted);
}

static us_db_rc sq_workspace_file_add(us_db *base, apr_pool_t *p, const char *workspace,
                              const us_workspace_file *f, const char *write_mode,
                              apr_array_header_t **deleted)
{
    us_sqlite_db *db = us_sqlite_of(base);
    workspace_file_add_args a = { workspace, write_mode, f, apr_array_make(p, 2, sizeof(const char *)) };
    us_db_rc rc = us_write(db, p, workspace_file_add_body, &a);
    if (rc != US_DB_OK)
        apr_array_clear(a.deleted);
    *deleted = a.deleted;
    return rc;
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
        rc = select_each(db, p, US_STMT_WORKSPACE_FILE_IDS_ALL, args, push_str, ids, NULL);
    }
    for (int i = 0; a->names && rc == US_DB_OK && i < a->names->nelts; i++) {
        const void *args[] = { a->workspace, APR_ARRAY_IDX(a->names, i, const char *) };
        rc = select_each(db, p, US_STMT_WORKSPACE_FILE_IDS_BY_NAME, args, push_str, ids, NULL);
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
    const char *workspace, *file_id, *old_meta, *meta;
} meta_swap_args;

static us_db_rc meta_swap_body(us_sqlite_db *db, apr_pool_t *p, void *arg)
{
    meta_swap_args *a = arg;
    int nrows = 0;
    const void *args[] = { a->meta, a->workspace, a->file_id, a->old_meta };
    us_db_rc rc = exec_stmt(db, p, US_STMT_WORKSPACE_FILE_META_SWAP, args, &nrows);
    if (rc != US_DB_OK || nrows == 1)
        return rc;
    us_workspace_file f;
    rc = sq_workspace_file_get(&db->base, p, a->workspace, a->file_id, &f);
    return rc == US_DB_OK ? US_DB_CONFLICT : rc;
}

static us_db_rc sq_workspace_file_meta_swap(us_db *base, apr_pool_t *p, const char *workspace,
                                            const char *file_id, const char *old_meta,
                                            const char *meta)
{
    meta_swap_args a = { workspace, file_id, old_meta, meta };
    return us_write(us_sqlite_of(base), p, meta_swap_body, &a);
}

static us_db_rc sq_file_trash_list(us_db *base, apr_pool_t *p, int limit, apr_array_header_t **ids)
{
    const void *args[] = { &limit };
    *ids = apr_array_make(p, limit > 0 ? limit : 1, sizeof(const char *));
    return select_each(us_sqlite_of(base), p, US_STMT_FILE_TRASH_LIST, args, push_str, *ids, NULL);
}

static us_db_rc forget_body(us_sqlite_db *db, apr_pool_t *p, void *arg)
{
    const apr_array_header_t *ids = arg;
    us_db_rc rc = US_DB_OK;
    int nrows = 0;
    for (int i = 0; rc == US_DB_OK && i < ids->nelts; i++) {
        const void *args[] = { APR_ARRAY_IDX(ids, i, const char *) };
        rc = exec_stmt(db, p, US_STMT_FILE_TRASH_FORGET, args, &nrows);
    }
    return rc;
}

static us_db_rc sq_file_trash_forget(us_db *base, apr_pool_t *p, const apr_array_header_t *ids)
{
    if (ids->nelts == 0)
        return US_DB_OK;
    return us_write(us_sqlite_of(base), p, forget_body, (void *)ids);
}

/* ---- webhook outbox -------------------------------------------------------------- */

static us_db_rc targets_body(us_sqlite_db *db, apr_pool_t *p, void *arg)
{
    const apr_array_header_t *urls = arg;
    int nrows = 0;
    us_db_rc rc = exec_stmt(db, p, US_STMT_WEBHOOK_TARGETS_CLEAR, NULL, &nrows);
    for (int i = 0; rc == US_DB_OK && urls && i < urls->nelts; i++) {
        const void *args[] = { APR_ARRAY_IDX(urls, i, const char *) };
        rc = exec_stmt(db, p, US_STMT_WEBHOOK_TARGET_ADD, args, &nrows);
    }
    return rc == US_DB_OK ? exec_stmt(db, p, US_STMT_WEBHOOK_DROP_UNLISTED, NULL, &nrows) : rc;
}

static us_db_rc sq_webhook_targets_set(us_db *base, apr_pool_t *p, const apr_array_header_t *urls)
{
    return us_write(us_sqlite_of(base), p, targets_body, (void *)urls);
}

/* Column order of WEBHOOK_COLS in us_sql.c */
static void row_to_webhook(const apr_dbd_driver_t *drv, apr_pool_t *p, apr_dbd_row_t *row,
                           void *out)
{
    us_webhook_row *w = out;
    w->id = entry_ll(drv, row, 0);
    w->event = entry_str(drv, p, row, 1);
    w->session_id = entry_str(drv, p, row, 2);
    w->workspace = entry_str(drv, p, row, 3);
    w->url = entry_str(drv, p, row, 4);
    w->occurred_at = (apr_time_t)entry_ll(drv, row, 5);
    w->uploaded_files = entry_ll(drv, row, 6);
    w->finished_files = entry_ll(drv, row, 7);
    w->failed_files = entry_ll(drv, row, 8);
    w->page = (int)entry_ll(drv, row, 9);
    w->attempts = (int)entry_ll(drv, row, 10);
}

typedef struct {
    const char *owner;
    apr_int64_t id, now, until;
    us_webhook_row *out;
} webhook_claim_args;

static us_db_rc webhook_claim_body(us_sqlite_db *db, apr_pool_t *p, void *arg)
{
    webhook_claim_args *a = arg;
    int nrows = 0;
    const void *args[] = { a->owner, &a->until, &a->id, &a->now, &a->now };
    us_db_rc rc = exec_stmt(db, p, US_STMT_WEBHOOK_LEASE, args, &nrows);
    if (rc != US_DB_OK)
        return rc;
    if (nrows == 0)
        return US_DB_NOTFOUND; /* another deliverer was quicker */
    const void *gargs[] = { &a->id };
    return select_one(db, p, US_STMT_WEBHOOK_GET, gargs, row_to_webhook, a->out);
}

static void row_to_ll(const apr_dbd_driver_t *drv, apr_pool_t *p, apr_dbd_row_t *row, void *out)
{
    (void)p;
    *(apr_int64_t *)out = entry_ll(drv, row, 0);
}

static us_db_rc sq_webhook_claim(us_db *base, apr_pool_t *p, const char *owner, apr_time_t now,
                                 apr_time_t lease_until, us_webhook_row *out)
{
    us_sqlite_db *db = us_sqlite_of(base);
    webhook_claim_args a = { owner, 0, now, lease_until, out };
    const void *args[] = { &a.now, &a.now };
    /* search by a read, outside the queue: an idle outbox costs no write */
    us_db_rc rc = select_one(db, p, US_STMT_WEBHOOK_CANDIDATE, args, row_to_ll, &a.id);
    if (rc != US_DB_OK)
        return rc;
    return us_write(db, p, webhook_claim_body, &a);
}

typedef struct {
    apr_int64_t id, next_at, now;
    const char *owner, *error;
    int page, pages, give_up;
} webhook_settle_args;

static us_db_rc webhook_delivered_body(us_sqlite_db *db, apr_pool_t *p, void *arg)
{
    webhook_settle_args *a = arg;
    int nrows = 0;
    const void *args[] = { &a->id, a->owner, &a->page };
    return exec_stmt(db, p, a->page < a->pages ? US_STMT_WEBHOOK_NEXT_PAGE : US_STMT_WEBHOOK_DONE,
                     args, &nrows);
}

static us_db_rc sq_webhook_delivered(us_db *base, apr_pool_t *p, long long id, const char *owner,
                                     int page, int pages)
{
    webhook_settle_args a = { id, 0, 0, owner, NULL, page, pages, 0 };
    return us_write(us_sqlite_of(base), p, webhook_delivered_body, &a);
}

static us_db_rc webhook_retry_body(us_sqlite_db *db, apr_pool_t *p, void *arg)
{
    webhook_settle_args *a = arg;
    int nrows = 0;
    const void *args[] = { &a->next_at, a->error, &a->now, a->give_up ? "failed" : "pending",
                           &a->id, a->owner };
    return exec_stmt(db, p, US_STMT_WEBHOOK_RETRY, args, &nrows);
}

static us_db_rc sq_webhook_retry(us_db *base, apr_pool_t *p, long long id, const char *owner,
                                 apr_time_t now, apr_time_t next_at, const char *error,
                                 int give_up)
{
    webhook_settle_args a = { id, next_at, now, owner, error ? error : "", 0, 0, give_up };
    return us_write(us_sqlite_of(base), p, webhook_retry_body, &a);
}

static void row_to_webhook_stats(const apr_dbd_driver_t *drv, apr_pool_t *p, apr_dbd_row_t *row,
                                 void *out)
{
    us_webhook_stats *st = out;
    const char *err = apr_dbd_get_entry(drv, row, 3);
    st->pending = entry_ll(drv, row, 0);
    st->failed = entry_ll(drv, row, 1);
    st->oldest_pending = (apr_time_t)entry_ll(drv, row, 2);
    st->last_error = err ? apr_pstrdup(p, err) : NULL;
    st->last_error_at = (apr_time_t)entry_ll(drv, row, 4);
}

static us_db_rc sq_webhook_stats(us_db *base, apr_pool_t *p, us_webhook_stats *out)
{
    memset(out, 0, sizeof(*out));
    return select_one(us_sqlite_of(base), p, US_STMT_WEBHOOK_STATS, NULL, row_to_webhook_stats,
                      out);
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
    .error = us_sqlite_error,
    .clear_error = us_sqlite_clear_error,
    .session_insert = sq_session_insert,
    .session_get = sq_session_get,
    .session_by_id = sq_session_by_id,
    .session_close = sq_session_close,
    .session_abort = sq_session_abort,
    .session_list = sq_session_list,
    .sessions_expire = sq_sessions_expire,
    .overview = sq_overview,
    .upload_commit = sq_upload_commit,
    .upload_blob = sq_upload_blob,
    .session_files_list = sq_session_files_list,
    .ingest_claim = sq_ingest_claim,
    .ingest_running = sq_ingest_running,
    .ingest_requeue = sq_ingest_requeue,
    .ingest_heartbeat = sq_ingest_heartbeat,
    .ingest_done = sq_ingest_done,
    .ingest_pending = sq_ingest_pending,
    .ingest_apply = sq_ingest_apply,
    .workspace_file_ids_by_name = sq_workspace_file_ids_by_name,
    .workspace_file_get = sq_workspace_file_get,
    .workspace_file_list = sq_workspace_file_list,
    .worn_out = sq_worn_out,
    .workspace_file_add = sq_workspace_file_add,
    .workspace_file_delete = sq_workspace_file_delete,
    .workspace_files_delete = sq_workspace_files_delete,
    .workspace_file_meta_swap = sq_workspace_file_meta_swap,
    .file_trash_list = sq_file_trash_list,
    .file_trash_forget = sq_file_trash_forget,
    .webhook_targets_set = sq_webhook_targets_set,
    .webhook_claim = sq_webhook_claim,
    .webhook_delivered = sq_webhook_delivered,
    .webhook_retry = sq_webhook_retry,
    .webhook_stats = sq_webhook_stats,
};

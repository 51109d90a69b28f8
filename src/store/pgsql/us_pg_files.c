/*
 * us_pg_files.c - the PostgreSQL backend's operations on workspace files
 * whose body is its own: the file list built for a filter or an order
 * (a statement prepared per connection), the deletes, a workspace's delete.
 */
#include "us_pg_db.h"
#include "us_pg_filter.h"
#include "us_pg_sql.h"
#include "../us_ops.h"

#include <apr_hash.h>
#include <apr_strings.h>
#include <stdlib.h>
#include <string.h>


/* A statement built for this request, prepared once per connection. */
static us_db_rc dynamic_statement(us_pg_db *db, const char *sql, apr_dbd_prepared_t **out)
{
    us_db_rc rc = us_pg_ready(db);
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
        us_pg_exec_sql(db, apr_pstrcat(db->hpool, "DEALLOCATE ", label, NULL));
    int prc = apr_dbd_prepare(db->conf->drv, db->hpool, db->h, sql, label, out);
    if (prc != 0)
        return us_pg_fail(db, prc, "prepare a built list");
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
    return qrc == 0 ? US_DB_OK : us_pg_fail(db, qrc, "us_workspace_file_list (built)");
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
        us_pg_set_err(db, "us_workspace_file_list: %s", US_FILTER_SQL_MISMATCH);
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
    while (us_pg_next_row(db, p, counted, &row) == US_DB_OK)
        *total = us_pg_entry_ll(db, row, 0);
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

us_db_rc us_pg_workspace_file_list_built(us_db *base, apr_pool_t *p, const char *workspace,
                                         const us_workspace_file_query *q,
                                         apr_array_header_t *rows, long long *total)
{
    us_pg_db *db = us_pg_of(base);
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    us_db_rc rc = workspace_file_list_built(db, p, workspace, q, total, &res);
    while (rc == US_DB_OK && us_pg_next_row(db, p, res, &row) == US_DB_OK) {
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
    us_db_rc rc = us_pg_select(db, p, id, args, &res);
    if (rc != US_DB_OK)
        return rc;
    while (us_pg_next_row(db, p, res, &row) == US_DB_OK)
        APR_ARRAY_PUSH(deleted, const char *) = us_pg_entry_str(db, p, row, 0);
    return US_DB_OK;
}

us_db_rc us_pg_workspace_file_delete(us_db *base, apr_pool_t *p, const char *workspace,
                                     const char *file_id)
{
    us_pg_db *db = us_pg_of(base);
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

static int by_bytes(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The names in byte order, each once: two deletes of overlapping names
 * lock their rows in one order, whatever order their clients sent. */
static apr_array_header_t *in_lock_order(apr_pool_t *p, const apr_array_header_t *names)
{
    apr_array_header_t *sorted = apr_array_copy(p, names);
    const char **v = (const char **)sorted->elts;
    int n = 0;
    if (sorted->nelts > 1)
        qsort(v, (size_t)sorted->nelts, sizeof(*v), by_bytes);
    for (int i = 0; i < sorted->nelts; i++)
        if (n == 0 || strcmp(v[n - 1], v[i]) != 0)
            v[n++] = v[i];
    sorted->nelts = n;
    return sorted;
}

us_db_rc us_pg_workspace_files_delete(us_db *base, apr_pool_t *p, const char *workspace,
                                      const apr_array_header_t *names,
                                      apr_array_header_t **deleted)
{
    delete_args a = { workspace, names ? in_lock_order(p, names) : NULL,
                      apr_array_make(p, 16, sizeof(const char *)) };
    us_db_rc rc = us_pg_txn(us_pg_of(base), p, delete_many_body, &a);
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
    us_db_rc rc = us_pg_select_ll(db, p, US_STMT_WORKSPACE_LOCK, ws, &one, NULL);
    if (rc == US_DB_OK)
        rc = us_pg_exec(db, p, US_STMT_WORKSPACE_DELETE_ROW, ws, &nrows);
    if (rc != US_DB_OK)
        return rc;
    if (nrows == 0) /* data always has a row: nothing was there */
        return US_DB_NOTFOUND;
    if ((rc = us_pg_select_ll(db, p, US_STMT_WORKSPACE_SESSIONS_ABORT, sessions_args, &one, NULL)) !=
            US_DB_OK ||
        (rc = select_ids(db, p, US_STMT_WORKSPACE_FILES_DROP, ws, a->file_ids)) != US_DB_OK ||
        (rc = us_pg_exec(db, p, US_STMT_WORKSPACE_TRASH_PENDING, ws, &nrows)) != US_DB_OK ||
        (rc = us_pg_exec(db, p, US_STMT_WORKSPACE_UPLOADS_DROP, ws, &nrows)) != US_DB_OK)
        return rc;
    return us_pg_exec(db, p, US_STMT_WORKSPACE_OUTBOX_DROP, ws, &nrows);
}

us_db_rc us_pg_workspace_delete(us_db *base, apr_pool_t *p, const char *name, apr_time_t now,
                                apr_array_header_t **file_ids)
{
    workspace_delete_args a = { name, now, apr_array_make(p, 16, sizeof(const char *)) };
    us_db_rc rc = us_pg_txn(us_pg_of(base), p, workspace_delete_body, &a);
    if (rc != US_DB_OK)
        apr_array_clear(a.file_ids);
    *file_ids = a.file_ids;
    return rc;
}

/*
 * us_file_ops.c - workspaces, their files and the trash of deleted ones
 * (us_store.h), written once over the backends' generic entries. A
 * dialect that maps US_STMT_NAME_LOCK makes the deciders about one name of
 * a workspace (the FAIL check, OVERWRITE) take turns with it; SQLite's one
 * writer at a time needs none.
 */
#include "us_ops.h"

#include <string.h>

us_db_rc us_workspace_file_ids_by_name(us_db *db, apr_pool_t *p, const char *workspace,
                                       const char *name, apr_array_header_t **ids)
{
    const void *args[] = { workspace, name };
    *ids = apr_array_make(p, 2, sizeof(const char *));
    return us_select(db, p, US_STMT_WORKSPACE_FILE_IDS_BY_NAME, args, us_push_str, *ids, NULL);
}

us_db_rc us_workspace_file_get(us_db *db, apr_pool_t *p, const char *workspace,
                               const char *file_id, us_workspace_file *out)
{
    const void *args[] = { workspace, file_id };
    return us_select_one(db, p, US_STMT_WORKSPACE_FILE_GET, args, us_row_to_workspace_file,
                         out);
}

us_db_rc us_workspace_file_list(us_db *db, apr_pool_t *p, const char *workspace,
                                const us_workspace_file_query *q, apr_array_header_t **rows,
                                long long *total)
{
    apr_int64_t lim = q->limit, at = q->after_at;
    *rows = apr_array_make(p, (int)(q->limit > 0 && q->limit < 1000 ? q->limit : 16),
                           sizeof(us_workspace_file));
    *total = 0;
    /* a filter, another order or an offset: a statement built for it */
    if (q->filter || q->by_name || q->ascending || q->offset > 0)
        return db->backend->workspace_file_list_built(db, p, workspace, q, *rows, total);
    const void *cargs[] = { workspace, q->name_part };
    const void *largs[] = { workspace, q->name_part, &lim };
    const void *aargs[] = { workspace, q->name_part, &at, &at, q->after_id, &lim };
    us_db_rc rc = us_select(db, p, US_STMT_WORKSPACE_FILE_COUNT, cargs, us_row_to_ll, total,
                            NULL);
    if (rc != US_DB_OK)
        return rc;
    if (q->after_id)
        return us_select(db, p, US_STMT_WORKSPACE_FILE_LIST_AFTER, aargs,
                         us_push_workspace_file, *rows, NULL);
    return us_select(db, p, US_STMT_WORKSPACE_FILE_LIST, largs, us_push_workspace_file, *rows,
                     NULL);
}

us_db_rc us_name_lock(us_db *db, apr_pool_t *p, const char *workspace, const char *name)
{
    if (!us_has_stmt(db->backend, US_STMT_NAME_LOCK))
        return US_DB_OK;
    const void *args[] = { workspace, name };
    return us_select(db, p, US_STMT_NAME_LOCK, args, NULL, NULL, NULL);
}

us_db_rc us_workspace_lock_shared(us_db *db, apr_pool_t *p, const char *workspace)
{
    if (!us_has_stmt(db->backend, US_STMT_WORKSPACE_LOCK_SHARED))
        return US_DB_OK;
    const void *args[] = { workspace };
    return us_select(db, p, US_STMT_WORKSPACE_LOCK_SHARED, args, NULL, NULL, NULL);
}

us_db_rc us_delete_same_name(us_db *db, apr_pool_t *p, const char *workspace, const char *name,
                             const char *keep_id, apr_array_header_t *deleted)
{
    apr_array_header_t *ids;
    int nrows = 0;
    us_db_rc rc = us_workspace_file_ids_by_name(db, p, workspace, name, &ids);
    for (int i = 0; rc == US_DB_OK && i < ids->nelts; i++) {
        const char *id = APR_ARRAY_IDX(ids, i, const char *);
        if (strcmp(id, keep_id) == 0)
            continue;
        const void *args[] = { id };
        rc = us_exec(db, p, US_STMT_WORKSPACE_FILE_DELETE, args, &nrows);
        /* the bytes go after the commit: a crash before that leaves them to
         * the trash sweep, as for DELETE /files */
        if (rc == US_DB_OK)
            rc = us_exec(db, p, US_STMT_FILE_TRASH_ADD, args, &nrows);
        if (rc == US_DB_OK)
            APR_ARRAY_PUSH(deleted, const char *) = id;
    }
    return rc;
}

us_db_rc us_insert_workspace_file(us_db *db, apr_pool_t *p, const char *workspace,
                                  const us_workspace_file *f, const char *session_id)
{
    int nrows = 0;
    apr_int64_t sz = f->size, at = f->created_at, chars = f->characters;
    const void *args[] = { f->file_id, workspace, f->name, &sz, f->meta, &at, session_id,
                           f->characters < 0 ? NULL : &chars };
    return us_exec(db, p, US_STMT_WORKSPACE_FILE_INSERT, args, &nrows);
}

typedef struct {
    const char *workspace, *write_mode;
    const us_workspace_file *f;
    apr_array_header_t *deleted;
} file_add_args;

static us_db_rc file_add_body(us_db *db, apr_pool_t *p, void *arg)
{
    file_add_args *a = arg;
    const us_workspace_file *f = a->f;
    apr_array_header_t *ids;
    us_db_rc rc;
    apr_array_clear(a->deleted);
    if ((rc = us_workspace_lock_shared(db, p, a->workspace)) != US_DB_OK ||
        (rc = us_name_lock(db, p, a->workspace, f->name)) != US_DB_OK)
        return rc;
    if (strcmp(a->write_mode, "FAIL") == 0) {
        rc = us_workspace_file_ids_by_name(db, p, a->workspace, f->name, &ids);
        if (rc == US_DB_OK && ids->nelts > 0)
            rc = US_DB_CONFLICT;
    }
    else if (strcmp(a->write_mode, "OVERWRITE") == 0) {
        rc = us_delete_same_name(db, p, a->workspace, f->name, f->file_id, a->deleted);
    }
    if (rc == US_DB_OK)
        rc = us_insert_workspace_file(db, p, a->workspace, f, NULL);
    if (rc == US_DB_OK)
        rc = us_workspace_ensure(db, p, a->workspace, f->created_at);
    return rc;
}

us_db_rc us_workspace_file_add(us_db *db, apr_pool_t *p, const char *workspace,
                               const us_workspace_file *f, const char *write_mode,
                               apr_array_header_t **deleted)
{
    file_add_args a = { workspace, write_mode, f, apr_array_make(p, 2, sizeof(const char *)) };
    us_db_rc rc = us_write_txn(db, p, file_add_body, &a);
    if (rc != US_DB_OK)
        apr_array_clear(a.deleted);
    *deleted = a.deleted;
    return rc;
}

us_db_rc us_workspace_file_delete(us_db *db, apr_pool_t *p, const char *workspace,
                                  const char *file_id)
{
    return db->backend->workspace_file_delete(db, p, workspace, file_id);
}

us_db_rc us_workspace_files_delete(us_db *db, apr_pool_t *p, const char *workspace,
                                   const apr_array_header_t *names, apr_array_header_t **deleted)
{
    return db->backend->workspace_files_delete(db, p, workspace, names, deleted);
}

us_db_rc us_workspace_file_meta_swap(us_db *db, apr_pool_t *p, const char *workspace,
                                     const char *file_id, const char *old_meta, const char *meta)
{
    int nrows = 0;
    const void *args[] = { meta, workspace, file_id, old_meta };
    /* one statement: the row's re-check of meta makes it a swap */
    us_db_rc rc = us_write_one(db, p, US_STMT_WORKSPACE_FILE_META_SWAP, args, &nrows);
    if (rc != US_DB_OK || nrows == 1)
        return rc;
    us_workspace_file f;
    rc = us_workspace_file_get(db, p, workspace, file_id, &f);
    return rc == US_DB_OK ? US_DB_CONFLICT : rc;
}

us_db_rc us_file_trash_list(us_db *db, apr_pool_t *p, int limit, apr_array_header_t **ids)
{
    const void *args[] = { &limit };
    *ids = apr_array_make(p, limit > 0 ? limit : 1, sizeof(const char *));
    return us_select(db, p, US_STMT_FILE_TRASH_LIST, args, us_push_str, *ids, NULL);
}

static us_db_rc forget_body(us_db *db, apr_pool_t *p, void *arg)
{
    const apr_array_header_t *ids = arg;
    us_db_rc rc = US_DB_OK;
    int nrows = 0;
    for (int i = 0; rc == US_DB_OK && i < ids->nelts; i++) {
        const void *args[] = { APR_ARRAY_IDX(ids, i, const char *) };
        rc = us_exec(db, p, US_STMT_FILE_TRASH_FORGET, args, &nrows);
    }
    return rc;
}

us_db_rc us_file_trash_forget(us_db *db, apr_pool_t *p, const apr_array_header_t *ids)
{
    if (ids->nelts == 0)
        return US_DB_OK;
    return us_write_txn(db, p, forget_body, (void *)ids);
}

static us_db_rc nothing_body(us_db *db, apr_pool_t *p, void *arg)
{
    (void)db;
    (void)p;
    (void)arg;
    return US_DB_OK;
}

us_db_rc us_durable_barrier(us_db *db, apr_pool_t *p)
{
    return us_write_txn(db, p, nothing_body, NULL);
}

/* ---- workspaces ------------------------------------------------------------- */

us_db_rc us_workspace_create(us_db *db, apr_pool_t *p, const char *name,
                             const char *workspace_id, apr_time_t now)
{
    apr_int64_t t = now;
    const void *args[] = { name, workspace_id, &t };
    int nrows = 0;
    /* one statement: the unique name decides between concurrent creates */
    us_db_rc rc = us_write_one(db, p, US_STMT_WORKSPACE_CREATE, args, &nrows);
    return rc == US_DB_OK && nrows == 0 ? US_DB_CONFLICT : rc;
}

us_db_rc us_workspace_get(us_db *db, apr_pool_t *p, const char *name, us_workspace *out)
{
    const void *args[] = { name };
    return us_select_one(db, p, US_STMT_WORKSPACE_GET, args, us_row_to_workspace, out);
}

us_db_rc us_workspace_delete(us_db *db, apr_pool_t *p, const char *name, apr_time_t now,
                             apr_array_header_t **file_ids)
{
    return db->backend->workspace_delete(db, p, name, now, file_ids);
}

us_db_rc us_workspace_list(us_db *db, apr_pool_t *p, const apr_array_header_t *names,
                           apr_array_header_t **rows)
{
    *rows = apr_array_make(p, names ? names->nelts + 1 : 8, sizeof(us_workspace));
    if (!names)
        return us_select(db, p, US_STMT_WORKSPACE_LIST, NULL, us_push_workspace, *rows, NULL);
    for (int i = 0; i < names->nelts; i++) {
        us_workspace w;
        us_db_rc rc = us_workspace_get(db, p, APR_ARRAY_IDX(names, i, const char *), &w);
        if (rc == US_DB_OK)
            APR_ARRAY_PUSH(*rows, us_workspace) = w;
        else if (rc != US_DB_NOTFOUND)
            return rc;
    }
    return US_DB_OK;
}

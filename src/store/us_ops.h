/*
 * us_ops.h - what the shared operation bodies (src/store/us_*_ops.c) run
 * on: a backend's generic entries (us_store_backend.h) and the readers of
 * the rows every dialect returns alike (us_rows.c).
 */
#ifndef US_OPS_H
#define US_OPS_H

#include "us_store_backend.h"

static inline us_db_rc us_exec(us_db *db, apr_pool_t *p, us_stmt_id id, const void **args,
                               int *nrows)
{
    return db->backend->exec(db, p, id, args, nrows);
}

static inline us_db_rc us_select(us_db *db, apr_pool_t *p, us_stmt_id id, const void **args,
                                 us_row_fn fn, void *out, int *nrows)
{
    return db->backend->select(db, p, id, args, fn, out, nrows);
}

/* A select of (at most) one row into out: US_DB_NOTFOUND when there is none. */
static inline us_db_rc us_select_one(us_db *db, apr_pool_t *p, us_stmt_id id,
                                     const void **args, us_row_fn fn, void *out)
{
    int n = 0;
    us_db_rc rc = db->backend->select(db, p, id, args, fn, out, &n);
    return rc == US_DB_OK && n == 0 ? US_DB_NOTFOUND : rc;
}

static inline us_db_rc us_write_txn(us_db *db, apr_pool_t *p, us_txn_fn fn, void *arg)
{
    return db->backend->write(db, p, fn, arg);
}

static inline us_db_rc us_write_one(us_db *db, apr_pool_t *p, us_stmt_id id, const void **args,
                                    int *nrows)
{
    return db->backend->write_one(db, p, id, args, nrows);
}

/* Whether the backend's dialect maps statement id. */
static inline int us_has_stmt(const us_store_backend *be, us_stmt_id id)
{
    return be->statement(id)->sql != NULL;
}

/* Makes the workspace's row unless it has one: in the transaction that
 * writes its first data (docs/design-workspaces.md). */
static inline us_db_rc us_workspace_ensure(us_db *db, apr_pool_t *p, const char *workspace,
                                           apr_time_t now)
{
    apr_int64_t t = now;
    const void *args[] = { workspace, &t };
    int nrows = 0;
    return us_exec(db, p, US_STMT_WORKSPACE_ENSURE, args, &nrows);
}

/* ---- pieces of workspace-file writes, inside a write (us_file_ops.c) */
/* waits for the other deciders about this name of the workspace */
us_db_rc us_name_lock(us_db *db, apr_pool_t *p, const char *workspace, const char *name);
/* A dialect that maps US_STMT_WORKSPACE_LOCK_SHARED: a writer adding data to
 * the workspace holds it shared until commit, so a delete of the workspace
 * waits for it, or it for the delete (docs/design-workspaces.md). */
us_db_rc us_workspace_lock_shared(us_db *db, apr_pool_t *p, const char *workspace);
/* deletes the workspace's other files of this name, noting their ids, each
 * put in the file trash in the same transaction (the caller removes the
 * bytes after the commit; the trash sweep does what a crash left undone) */
us_db_rc us_delete_same_name(us_db *db, apr_pool_t *p, const char *workspace, const char *name,
                             const char *keep_id, apr_array_header_t *deleted);
/* session_id NULL for a direct upload; f->characters < 0: not a text file */
us_db_rc us_insert_workspace_file(us_db *db, apr_pool_t *p, const char *workspace,
                                  const us_workspace_file *f, const char *session_id);

/* ---- PostgreSQL text array literals for statements over arrays (us_rows.c) */
/* The i-th of n elements, NULL for NULL; num (numlen bytes) may hold it. */
typedef const char *(*us_array_value_fn)(const void *ctx, int i, char *num, apr_size_t numlen);
/* {"v0","v1",NULL,...}: each element double-quoted, '"' and '\\' escaped. */
const char *us_array_literal(apr_pool_t *p, int n, us_array_value_fn value, const void *ctx);

/* ---- column readers (us_rows.c) */
long long us_row_ll(const us_row *r, int col);
/* text; "" for NULL */
const char *us_row_str(const us_row *r, apr_pool_t *p, int col);
/* text; NULL for NULL */
const char *us_row_null(const us_row *r, apr_pool_t *p, int col);

/* ---- row readers: out is the value's type ... */
void us_row_to_ll(const us_row *r, apr_pool_t *p, void *out);       /* long long */
void us_row_to_str(const us_row *r, apr_pool_t *p, void *out);      /* const char * */
void us_row_to_session(const us_row *r, apr_pool_t *p, void *out);  /* SESSION_COLS */
void us_row_to_workspace_file(const us_row *r, apr_pool_t *p, void *out);
void us_row_to_workspace(const us_row *r, apr_pool_t *p, void *out);
/* ... or an array of it, appended to */
void us_push_str(const us_row *r, apr_pool_t *p, void *out);
void us_push_session_item(const us_row *r, apr_pool_t *p, void *out); /* SESSION_ITEM_COLS */
void us_push_workspace_file(const us_row *r, apr_pool_t *p, void *out); /* ..._LIST_COLS */
void us_push_workspace(const us_row *r, apr_pool_t *p, void *out);

#endif

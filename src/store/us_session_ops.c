/*
 * us_session_ops.c - sessions and their uploads (us_store.h), written once
 * over the backends' generic entries. What each must be atomic against
 * rests on the backend's write and on its dialect's text of the
 * statements: SESSION_CLOSE and SESSION_ABORT change the row only while it
 * is open (one of concurrent closes wins); SESSION_HOLD_OPEN keeps the
 * close out until the upload commits.
 */
#include "us_ops.h"

#include <apr_strings.h>
#include <string.h>

us_db_rc us_session_get(us_db *db, apr_pool_t *p, const char *workspace, const char *id,
                        apr_time_t now, us_session *out)
{
    apr_int64_t t = now;
    const void *args[] = { &t, workspace, id };
    return us_select_one(db, p, US_STMT_SESSION_GET, args, us_row_to_session, out);
}

us_db_rc us_session_by_id(us_db *db, apr_pool_t *p, const char *id, apr_time_t now,
                          us_session *out)
{
    apr_int64_t t = now;
    const void *args[] = { &t, id };
    return us_select_one(db, p, US_STMT_SESSION_BY_ID, args, us_row_to_session, out);
}

/* After a close or abort that changed no row: the session is there but
 * not open (CONFLICT), or not there at all. */
static us_db_rc not_open(us_db *db, apr_pool_t *p, const char *workspace, const char *id,
                         apr_time_t now)
{
    us_session s;
    us_db_rc rc = us_session_get(db, p, workspace, id, now, &s);
    return rc == US_DB_OK ? US_DB_CONFLICT : rc;
}

typedef struct {
    const char *workspace, *id;
    apr_time_t now;
} end_args;

/* A close or abort that lost its connection where the change may have been
 * made (us_db_outcome_unknown): the session is read back. Ended as asked
 * (CLOSED; gone, for an abort): done - by this change, or by a concurrent
 * one if this one never arrived; either way what was asked holds, and a
 * client's retry would only get a 409 or 404. Else the failure stands. */
static us_db_rc ended_after_all(us_db *db, apr_pool_t *p, const end_args *a, us_db_rc rc,
                                const char *ended)
{
    if (rc != US_DB_BUSY || !us_db_outcome_unknown(db))
        return rc;
    char *err = apr_pstrdup(p, us_db_error(db));
    us_session s;
    us_db_rc got = us_session_get(db, p, a->workspace, a->id, a->now, &s);
    if (ended ? got == US_DB_OK && !strcmp(s.status, ended) : got == US_DB_NOTFOUND)
        return US_DB_OK;
    db->backend->set_error(db, err);
    return rc;
}

us_db_rc us_session_close(us_db *db, apr_pool_t *p, const char *workspace, const char *id,
                          apr_time_t now)
{
    apr_int64_t t = now;
    int nrows = 0;
    const void *args[] = { &t, workspace, id, &t };
    us_db_rc rc = us_write_one(db, p, US_STMT_SESSION_CLOSE, args, &nrows);
    if (rc != US_DB_OK) {
        end_args a = { workspace, id, now };
        return ended_after_all(db, p, &a, rc, "CLOSED");
    }
    if (nrows == 1)
        return rc;
    return not_open(db, p, workspace, id, now);
}

static us_db_rc abort_body(us_db *db, apr_pool_t *p, void *arg)
{
    end_args *a = arg;
    apr_int64_t t = a->now;
    int nrows = 0;
    const void *args[] = { &t, a->workspace, a->id, &t };
    us_db_rc rc = us_exec(db, p, US_STMT_SESSION_ABORT, args, &nrows);
    if (rc != US_DB_OK)
        return rc;
    if (nrows == 1) {
        const void *dargs[] = { a->id };
        return us_exec(db, p, US_STMT_UPLOADS_DISCARD, dargs, &nrows);
    }
    return not_open(db, p, a->workspace, a->id, a->now);
}

us_db_rc us_session_abort(us_db *db, apr_pool_t *p, const char *workspace, const char *id,
                          apr_time_t now)
{
    end_args a = { workspace, id, now };
    return ended_after_all(db, p, &a, us_write_txn(db, p, abort_body, &a), NULL);
}

static void row_to_overview(const us_row *r, apr_pool_t *p, void *out)
{
    us_store_overview *o = out;
    (void)p;
    o->open = us_row_ll(r, 0);
    o->closed = us_row_ll(r, 1);
    o->expired = us_row_ll(r, 2);
    o->queued = us_row_ll(r, 3);
    o->running = us_row_ll(r, 4);
    o->oldest_queued = (apr_time_t)us_row_ll(r, 5); /* NULL (none) reads as 0 */
}

us_db_rc us_store_overview_read(us_db *db, apr_pool_t *p, apr_time_t now,
                                us_store_overview *out)
{
    apr_int64_t t = now;
    const void *args[] = { &t, &t };
    memset(out, 0, sizeof(*out));
    /* one statement: one snapshot */
    return us_select(db, p, US_STMT_OVERVIEW, args, row_to_overview, out, NULL);
}

/* ---- uploads ------------------------------------------------------------------ */

typedef struct {
    const us_upload_record *u;
    apr_time_t now;
    const char *old_blob;
} upload_args;

static us_db_rc upload_body(us_db *db, apr_pool_t *p, void *arg)
{
    upload_args *a = arg;
    const us_upload_record *u = a->u;
    apr_int64_t t = a->now, size = u->size, at = u->uploaded_at;
    int open = 0, nrows = 0, is_meta = u->is_meta;
    us_db_rc rc;

    a->old_blob = NULL;
    const void *open_args[] = { u->session_id, &t };
    if ((rc = us_select(db, p, US_STMT_SESSION_HOLD_OPEN, open_args, NULL, NULL, &open)) !=
        US_DB_OK)
        return rc;
    if (!open)
        return US_DB_CONFLICT;
    /* commits of this session take turns from here on */
    const void *blob_args[] = { u->session_id, u->name };
    if ((rc = us_select(db, p, US_STMT_UPLOAD_BLOB_GET, blob_args, us_row_to_str, &a->old_blob,
                        NULL)) != US_DB_OK)
        return rc;
    if (a->old_blob) {
        const void *args[] = { u->blob, &size, u->sha256, &at, u->session_id, u->name };
        return us_exec(db, p, US_STMT_UPLOAD_REPLACE, args, &nrows);
    }
    /* raw files and sidecars are counted apart, each against max_files */
    if (u->max_files > 0) { /* the session is held: the count is final */
        long long held = 0;
        const void *held_args[] = { u->session_id };
        if ((rc = us_select(db, p, u->is_meta ? US_STMT_SESSION_SIDECARS : US_STMT_SESSION_UPLOADED,
                            held_args, us_row_to_ll, &held, NULL)) != US_DB_OK)
            return rc;
        if (held >= u->max_files)
            return US_DB_LIMIT;
    }
    const void *args[] = { u->session_id, u->name, u->blob, &size, u->sha256, &is_meta,
                           &at, u->file_ingestion_id };
    if ((rc = us_exec(db, p, US_STMT_UPLOAD_INSERT, args, &nrows)) != US_DB_OK)
        return rc;
    const void *count_args[] = { u->session_id };
    return us_exec(db, p, u->is_meta ? US_STMT_SESSION_COUNT_SIDECAR : US_STMT_SESSION_COUNT_UPLOAD,
                   count_args, &nrows);
}

us_db_rc us_upload_commit(us_db *db, apr_pool_t *p, const us_upload_record *u, apr_time_t now,
                          const char **old_blob)
{
    upload_args a = { u, now, NULL };
    us_db_rc rc = us_write_txn(db, p, upload_body, &a);
    *old_blob = rc == US_DB_OK ? a.old_blob : NULL;
    return rc;
}

us_db_rc us_upload_blob(us_db *db, apr_pool_t *p, const char *session_id, const char *name,
                        const char **blob)
{
    const void *args[] = { session_id, name };
    *blob = NULL;
    return us_select(db, p, US_STMT_UPLOAD_BLOB_GET, args, us_row_to_str, blob, NULL);
}

/*
 * us_ingest_ops.c - the ingest claims' bookkeeping and the batch that
 * applies ingest results (us_store.h), written once over the backends'
 * generic entries. The claim and the heartbeat are the backends' own
 * (us_store_backend.h).
 */
#include "us_ops.h"

#include <apr_strings.h>
#include <string.h>

static void push_claim(const us_row *r, apr_pool_t *p, void *out)
{
    us_claim *c = apr_array_push(out);
    c->session_id = us_row_str(r, p, 0);
    c->owner = us_row_str(r, p, 1);
}

us_db_rc us_ingest_running(us_db *db, apr_pool_t *p, apr_array_header_t **claims)
{
    *claims = apr_array_make(p, 4, sizeof(us_claim));
    return us_select(db, p, US_STMT_INGEST_RUNNING, NULL, push_claim, *claims, NULL);
}

us_db_rc us_ingest_requeue(us_db *db, apr_pool_t *p, const char *session_id, const char *owner)
{
    int nrows = 0;
    const void *args[] = { session_id, owner };
    return us_write_one(db, p, US_STMT_INGEST_REQUEUE, args, &nrows);
}

us_db_rc us_ingest_requeue_later(us_db *db, apr_pool_t *p, const char *session_id,
                                 const char *owner, apr_time_t now, apr_interval_time_t delay)
{
    int nrows = 0;
    apr_int64_t t = now, d = delay;
    const void *args[] = { &t, &d, session_id, owner };
    us_db_rc rc = us_write_one(db, p, US_STMT_INGEST_REQUEUE_LATER, args, &nrows);
    return rc == US_DB_OK && nrows == 0 ? US_DB_CONFLICT : rc;
}

us_db_rc us_ingest_done(us_db *db, apr_pool_t *p, const char *session_id, const char *owner)
{
    int nrows = 0;
    const void *args[] = { session_id, owner };
    us_db_rc rc = us_write_one(db, p, US_STMT_INGEST_DONE, args, &nrows);
    return rc == US_DB_OK && nrows == 0 ? US_DB_CONFLICT : rc;
}

static void push_pending(const us_row *r, apr_pool_t *p, void *out)
{
    us_pending *u = apr_array_push(out);
    u->name = us_row_str(r, p, 0);
    u->blob = us_row_str(r, p, 1);
    u->size = us_row_ll(r, 2);
    u->file_ingestion_id = us_row_str(r, p, 3);
    u->etag = us_row_null(r, p, 4);
    u->meta_blob = us_row_null(r, p, 5);
}

us_db_rc us_ingest_pending(us_db *db, apr_pool_t *p, const char *session_id, const char *after,
                           int limit, apr_array_header_t **rows)
{
    const void *args[] = { session_id, after ? after : "", &limit };
    *rows = apr_array_make(p, limit > 0 && limit < 1000 ? limit : 16, sizeof(us_pending));
    return us_select(db, p, US_STMT_INGEST_PENDING, args, push_pending, *rows, NULL);
}

/* Under FAIL, another file of this name already in the workspace. Checked
 * again inside the batch's transaction: parallel sessions may race past
 * the worker's earlier look. */
static us_db_rc name_taken(us_db *db, apr_pool_t *p, const char *workspace, const char *name,
                           const char *own_id, int *taken)
{
    apr_array_header_t *ids;
    us_db_rc rc = us_workspace_file_ids_by_name(db, p, workspace, name, &ids);
    *taken = 0;
    for (int i = 0; rc == US_DB_OK && i < ids->nelts; i++)
        *taken |= strcmp(APR_ARRAY_IDX(ids, i, const char *), own_id) != 0;
    return rc;
}

/* One result inside the batch's transaction. *counted: 0 when it was
 * decided already (a replay), else 1 for FINISHED and 2 for FAILED. */
static us_db_rc apply_one(us_db *db, apr_pool_t *p, const us_session *s,
                          const us_ingest_result *r, apr_time_t now,
                          apr_array_header_t *deleted, int *counted)
{
    const char *status = r->status, *reason = r->reason;
    int nrows = 0, taken = 0;
    int finished = strcmp(status, "FINISHED") == 0, fail = strcmp(s->write_mode, "FAIL") == 0;
    us_db_rc rc = US_DB_OK;

    *counted = 0;
    if (finished && (fail || r->overwrite) &&
        (rc = us_name_lock(db, p, s->workspace, r->name)) != US_DB_OK)
        return rc;
    if (finished && fail &&
        (rc = name_taken(db, p, s->workspace, r->name, r->file_id, &taken)) != US_DB_OK)
        return rc;
    if (taken) {
        status = "FAILED";
        reason = "FILE_ALREADY_EXISTS";
    }
    const void *args[] = { status, reason, s->id, r->name };
    if ((rc = us_exec(db, p, US_STMT_UPLOAD_SET_STATE, args, &nrows)) != US_DB_OK || nrows != 1)
        return rc;
    *counted = strcmp(status, "FINISHED") == 0 ? 1 : 2;
    if (taken) /* its blob was moved already: the caller removes it */
        APR_ARRAY_PUSH(deleted, const char *) = r->file_id;
    if (*counted != 1)
        return US_DB_OK;
    if (r->overwrite &&
        (rc = us_delete_same_name(db, p, s->workspace, r->name, r->file_id, deleted)) !=
            US_DB_OK)
        return rc;
    us_workspace_file f = { .file_id = r->file_id, .name = r->name, .meta = r->meta,
                            .size = r->size, .created_at = now, .characters = r->characters };
    return us_insert_workspace_file(db, p, s->workspace, &f, s->id);
}

/* ---- the whole batch in one statement: a dialect that maps
 * US_STMT_INGEST_APPLY_BATCH (PostgreSQL, where every statement is a round
 * trip). Its arguments: the results' columns, each one text array literal
 * in the result order - name, status, reason, file_id, size, meta,
 * characters (NULL: none), created_at - then the session id, the workspace,
 * the session id, the session id. Per file it does what apply_one does
 * without a FAIL name check or OVERWRITE (they need their locks and reads
 * first), and it adds the files it changed to the session's counters. */

enum { COL_NAME, COL_STATUS, COL_REASON, COL_FILE_ID, COL_SIZE, COL_META, COL_CHARS,
       COL_CREATED, BATCH_COLS };

/* Result r's value in column col; num holds a number's text. */
static const char *batch_value(const us_ingest_result *r, int col, apr_time_t created,
                               char *num, apr_size_t numlen)
{
    switch (col) {
    case COL_NAME: return r->name;
    case COL_STATUS: return r->status;
    case COL_REASON: return r->reason;
    case COL_FILE_ID: return r->file_id;
    case COL_SIZE:
        apr_snprintf(num, numlen, "%" APR_INT64_T_FMT, (apr_int64_t)r->size);
        return num;
    case COL_META: return r->meta;
    case COL_CHARS:
        if (r->characters < 0)
            return NULL;
        apr_snprintf(num, numlen, "%" APR_INT64_T_FMT, (apr_int64_t)r->characters);
        return num;
    default: apr_snprintf(num, numlen, "%" APR_INT64_T_FMT, (apr_int64_t)created); return num;
    }
}

typedef struct {
    const apr_array_header_t *results;
    int col;
    apr_time_t now;
} batch_column_ctx;

static const char *batch_column_value(const void *ctx, int i, char *num, apr_size_t numlen)
{
    const batch_column_ctx *c = ctx;
    return batch_value(&APR_ARRAY_IDX(c->results, i, us_ingest_result), c->col, c->now + i, num,
                       numlen);
}

/* The batch's column col as an array literal; files of one batch share a
 * created_at ordered by position, as apply_one writes it. */
static const char *batch_column(apr_pool_t *p, const apr_array_header_t *results, int col,
                                apr_time_t now)
{
    batch_column_ctx c = { results, col, now };
    return us_array_literal(p, results->nelts, batch_column_value, &c);
}

/* Whether the batch can go in one statement. */
static int batch_in_one(const us_db *db, const us_session *s, const apr_array_header_t *results)
{
    if (!us_has_stmt(db->backend, US_STMT_INGEST_APPLY_BATCH) || strcmp(s->write_mode, "FAIL") == 0)
        return 0;
    for (int i = 0; i < results->nelts; i++)
        if (APR_ARRAY_IDX(results, i, us_ingest_result).overwrite)
            return 0;
    return 1;
}

static us_db_rc apply_in_one(us_db *db, apr_pool_t *p, const us_session *s,
                             const apr_array_header_t *results, apr_time_t now)
{
    const void *args[BATCH_COLS + 4];
    int nrows = 0;
    for (int col = 0; col < BATCH_COLS; col++)
        args[col] = batch_column(p, results, col, now);
    args[BATCH_COLS] = s->id;
    args[BATCH_COLS + 1] = s->workspace;
    args[BATCH_COLS + 2] = s->id;
    args[BATCH_COLS + 3] = s->id;
    return us_exec(db, p, US_STMT_INGEST_APPLY_BATCH, args, &nrows);
}

typedef struct {
    const us_session *s;
    const apr_array_header_t *results;
    apr_time_t now;
    apr_array_header_t *deleted;
    int lost;
} apply_args;

/* A batch whose claim is lost: when its session was deleted with its
 * workspace (ABORTED), nobody can record the files the batch published, so
 * their ids go to the file trash and *lost is set (the change is kept, the
 * caller answers CONFLICT); else CONFLICT at once (a takeover records them). */
static us_db_rc trash_if_aborted(us_db *db, apr_pool_t *p, const us_session *s,
                                 const apr_array_header_t *results, int *lost)
{
    int aborted = 0, nrows = 0;
    const void *args[] = { s->id };
    us_db_rc rc = us_select(db, p, US_STMT_SESSION_IS_ABORTED, args, NULL, NULL, &aborted);
    if (rc != US_DB_OK)
        return rc;
    if (!aborted)
        return US_DB_CONFLICT;
    for (int i = 0; rc == US_DB_OK && i < results->nelts; i++) {
        const us_ingest_result *r = &APR_ARRAY_IDX(results, i, us_ingest_result);
        if (!r->file_id)
            continue;
        const void *targs[] = { r->file_id };
        rc = us_exec(db, p, US_STMT_FILE_TRASH_ADD, targs, &nrows);
    }
    *lost = 1;
    return rc;
}

/* Fencing: *held 0 (and the connection's error says why) when the worker
 * that read s no longer holds its claim; 1 when it does or s carries no
 * owner (a caller outside the ingest workers). Inside the caller's write. */
static us_db_rc claim_still_held(us_db *db, apr_pool_t *p, const us_session *s, int *held)
{
    *held = 1;
    if (!s->ingest_owner)
        return US_DB_OK;
    const void *args[] = { s->id, s->ingest_owner };
    us_db_rc rc = us_select(db, p, US_STMT_INGEST_HELD, args, NULL, NULL, held);
    if (rc == US_DB_OK && !*held)
        db->backend->set_error(db, apr_psprintf(p, "session %s: %s no longer holds the claim",
                                                s->id, s->ingest_owner));
    return rc;
}

static us_db_rc apply_body(us_db *db, apr_pool_t *p, void *arg)
{
    apply_args *a = arg;
    const us_session *s = a->s;
    apr_int64_t finished = 0, failed = 0;
    int nrows = 0, held = 0;
    apr_array_clear(a->deleted);
    a->lost = 0;
    /* a worker whose claim was taken over changes nothing */
    us_db_rc rc = claim_still_held(db, p, s, &held);
    if (rc != US_DB_OK)
        return rc;
    if (!held)
        return trash_if_aborted(db, p, s, a->results, &a->lost);
    if (batch_in_one(db, s, a->results))
        return apply_in_one(db, p, s, a->results, a->now);
    for (int i = 0; rc == US_DB_OK && i < a->results->nelts; i++) {
        const us_ingest_result *r = &APR_ARRAY_IDX(a->results, i, us_ingest_result);
        int counted = 0;
        /* files of one batch share a created_at order by position */
        rc = apply_one(db, p, s, r, a->now + i, a->deleted, &counted);
        finished += counted == 1;
        failed += counted == 2;
    }
    if (rc == US_DB_OK && finished + failed > 0) {
        const void *args[] = { &finished, &failed, s->id };
        rc = us_exec(db, p, US_STMT_SESSION_ADD_COUNTS, args, &nrows);
    }
    return rc;
}

typedef struct {
    const us_session *s;
    const char *name;
    long long refusals;
} refused_args;

static us_db_rc refused_body(us_db *db, apr_pool_t *p, void *arg)
{
    refused_args *a = arg;
    int nrows = 0, held = 0;
    us_db_rc rc = claim_still_held(db, p, a->s, &held);
    if (rc != US_DB_OK || !held)
        return rc != US_DB_OK ? rc : US_DB_CONFLICT;
    const void *args[] = { a->s->id, a->name };
    if ((rc = us_exec(db, p, US_STMT_UPLOAD_REFUSED, args, &nrows)) != US_DB_OK)
        return rc;
    if (nrows == 0)
        return US_DB_NOTFOUND;
    return us_select_one(db, p, US_STMT_UPLOAD_REFUSALS, args, us_row_to_ll, &a->refusals);
}

us_db_rc us_ingest_publish_refused(us_db *db, apr_pool_t *p, const us_session *s,
                                   const char *name, long long *refusals)
{
    refused_args a = { s, name, 0 };
    us_db_rc rc = us_write_txn(db, p, refused_body, &a);
    *refusals = rc == US_DB_OK ? a.refusals : 0;
    return rc;
}

typedef struct {
    const us_session *s;
    const apr_array_header_t *objects;
    int recorded;
} listing_args;

static us_db_rc listing_body(us_db *db, apr_pool_t *p, void *arg)
{
    listing_args *a = arg;
    const us_session *s = a->s;
    int nrows = 0, held = 0;
    a->recorded = 0;
    us_db_rc rc = claim_still_held(db, p, s, &held);
    if (rc != US_DB_OK || !held)
        return rc != US_DB_OK ? rc : US_DB_CONFLICT;
    const void *mark_args[] = { s->id };
    if ((rc = us_exec(db, p, US_STMT_LISTING_MARK, mark_args, &nrows)) != US_DB_OK || nrows == 0)
        return rc;
    apr_int64_t raw = 0;
    for (int i = 0; i < a->objects->nelts; i++) {
        const us_listed_object *o = &APR_ARRAY_IDX(a->objects, i, us_listed_object);
        apr_int64_t size = o->size, at = o->uploaded_at;
        int is_meta = o->is_meta;
        const void *args[] = { s->id, o->name, o->blob, &size, &is_meta, &at,
                               o->file_ingestion_id, o->etag };
        if ((rc = us_exec(db, p, US_STMT_LISTED_INSERT, args, &nrows)) != US_DB_OK)
            return rc;
        raw += !o->is_meta;
    }
    const void *count_args[] = { &raw, s->id };
    if ((rc = us_exec(db, p, US_STMT_LISTED_COUNT, count_args, &nrows)) == US_DB_OK)
        a->recorded = 1;
    return rc;
}

us_db_rc us_ingest_record_listing(us_db *db, apr_pool_t *p, const us_session *s,
                                  const apr_array_header_t *objects, int *recorded)
{
    listing_args a = { s, objects, 0 };
    us_db_rc rc = us_write_txn(db, p, listing_body, &a);
    *recorded = rc == US_DB_OK ? a.recorded : 0;
    return rc;
}

us_db_rc us_ingest_apply(us_db *db, apr_pool_t *p, const us_session *s,
                         const apr_array_header_t *results, apr_time_t now,
                         apr_array_header_t **deleted)
{
    apply_args a = { s, results, now, apr_array_make(p, 4, sizeof(const char *)), 0 };
    us_db_rc rc = us_write_txn(db, p, apply_body, &a);
    if (rc == US_DB_OK && a.lost)
        rc = US_DB_CONFLICT;
    if (rc != US_DB_OK)
        apr_array_clear(a.deleted);
    *deleted = a.deleted;
    return rc;
}

/* ---- direct uploads: the last clear (us_store.h) ---------------------------------- */

static void push_late_due(const us_row *r, apr_pool_t *p, void *out)
{
    us_late_due *d = apr_array_push(out);
    d->id = us_row_str(r, p, 0);
    d->expires_at = us_row_ll(r, 1);
}

us_db_rc us_late_clear_due(us_db *db, apr_pool_t *p, apr_time_t now, apr_interval_time_t grace,
                           const us_late_due *after, int limit, apr_array_header_t **due)
{
    apr_int64_t t = now, g = grace, from = after ? after->expires_at : -1;
    const char *from_id = after ? after->id : "";
    const void *args[] = { &t, &g, &from, &from, from_id, &limit };
    *due = apr_array_make(p, limit > 0 && limit < 1000 ? limit : 16, sizeof(us_late_due));
    return us_select(db, p, US_STMT_LATE_CLEAR_DUE, args, push_late_due, *due, NULL);
}

us_db_rc us_late_clear_done(us_db *db, apr_pool_t *p, const char *id)
{
    int nrows = 0;
    const void *args[] = { id };
    us_db_rc rc = us_write_one(db, p, US_STMT_LATE_CLEAR_MARK, args, &nrows);
    return rc == US_DB_OK && nrows == 0 ? US_DB_NOTFOUND : rc;
}

typedef struct {
    const apr_array_header_t *ids;
    int recorded;
} mark_all_args;

static us_db_rc mark_all_body(us_db *db, apr_pool_t *p, void *arg)
{
    mark_all_args *a = arg;
    us_db_rc rc = US_DB_OK;
    a->recorded = 0;
    for (int i = 0; rc == US_DB_OK && i < a->ids->nelts; i++) {
        const void *args[] = { APR_ARRAY_IDX(a->ids, i, const char *) };
        int nrows = 0;
        rc = us_exec(db, p, US_STMT_LATE_CLEAR_MARK, args, &nrows);
        a->recorded += nrows;
    }
    return rc;
}

static const char *id_value(const void *ctx, int i, char *num, apr_size_t numlen)
{
    (void)num;
    (void)numlen;
    return APR_ARRAY_IDX((const apr_array_header_t *)ctx, i, const char *);
}

us_db_rc us_late_clear_done_all(us_db *db, apr_pool_t *p, const apr_array_header_t *ids,
                                int *recorded)
{
    *recorded = 0;
    if (ids->nelts == 0)
        return US_DB_OK;
    if (us_has_stmt(db->backend, US_STMT_LATE_CLEAR_MARK_ALL)) {
        const void *args[] = { us_array_literal(p, ids->nelts, id_value, ids) };
        return us_write_one(db, p, US_STMT_LATE_CLEAR_MARK_ALL, args, recorded);
    }
    mark_all_args a = { ids, 0 };
    us_db_rc rc = us_write_txn(db, p, mark_all_body, &a);
    if (rc == US_DB_OK)
        *recorded = a.recorded;
    return rc;
}

/*
 * us_sessions.c - the upload-session endpoints, one function each: parse ->
 * validate -> store -> JSON. Validation rules live in us_validate.c, SQL in
 * us_sql.c.
 */
#include "us_uuid.h"
#include "us_json.h"
#include "us_ingest.h"
#include "us_json_writer.h"
#include "us_module.h"
#include "us_policy.h"
#include "us_sigv4.h"
#include "us_storage.h"
#include "us_time.h"
#include "endpoints.h"
#include "request_body.h"
#include "response.h"
#include "us_validate.h"

#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <apr_strings.h>
#include <jansson.h>
#include <limits.h>
#include <string.h>

APLOG_USE_MODULE(upload_session);

/* JSON request bodies of this API are tiny; anything larger is refused */
#define US_MAX_JSON_BODY (64 * 1024)


/* ---- responses ------------------------------------------------------------ */

static int send_no_content(request_rec *r)
{
    r->status = HTTP_NO_CONTENT;
    ap_set_content_length(r, 0);
    return OK;
}

/* ---- request helpers ------------------------------------------------------ */

static const char *documentation_url(request_rec *r, const us_srv_conf *c)
{
    return c->doc_url ? c->doc_url
                      : apr_pstrcat(r->pool, us_public_base(r, c), US_DOCS_PATH, NULL);
}

/* ---- answers written straight into one buffer (us_json_writer) --------------- */

static void write_ts(us_json_writer *w, const char *key, apr_time_t t)
{
    char buf[US_TS_LEN];
    us_time_format(t, buf);
    us_json_write_key_string(w, key, buf);
}

static void write_created_by(us_json_writer *w, const us_session *s)
{
    us_json_write_key(w, "created_by");
    us_json_write_object_open(w);
    us_json_write_key_string(w, "user_id", s->user_id);
    us_json_write_key_string(w, "given_name", s->given_name);
    us_json_write_key_string(w, "family_name", s->family_name);
    us_json_write_object_close(w);
}

/* GET .../upload_sessions/{id} */
static void write_session_status(us_json_writer *w, request_rec *r, const us_srv_conf *c,
                                 const us_session *s)
{
    long long pending = s->uploaded_files - s->finished_files - s->failed_files;
    us_json_write_object_open(w);
    us_json_write_key_string(w, "session_id", s->id);
    us_json_write_key_string(w, "documentation_url", documentation_url(r, c));
    write_ts(w, "expires_at", s->expires_at);
    us_json_write_key(w, "ingestion_status");
    us_json_write_object_open(w);
    us_json_write_key_int(w, "failed_files", s->failed_files);
    us_json_write_key_int(w, "finished_files", s->finished_files);
    us_json_write_key_int(w, "pending_files", pending > 0 ? pending : 0);
    us_json_write_object_close(w);
    us_json_write_key_string(w, "status", s->status);
    us_json_write_key_string(w, "write_mode", s->write_mode);
    us_json_write_key_bool(w, "parallel_processing_enabled", s->parallel);
    write_ts(w, "created_at", s->created_at);
    write_created_by(w, s);
    us_json_write_key_int(w, "uploaded_files", s->uploaded_files);
    us_json_write_object_close(w);
}

/* One item of GET .../upload_sessions. An item whose creator's name is not
 * valid UTF-8 (a key file in Latin-1) is left out of the list and logged. */
static void write_session_item(us_json_writer *w, request_rec *r, const us_session *s)
{
    us_json_write_mark before;
    us_json_write_save(w, &before);
    us_json_write_object_open(w);
    us_json_write_key_string(w, "session_id", s->id);
    write_created_by(w, s);
    write_ts(w, "created_at", s->created_at);
    write_ts(w, "expires_at", s->expires_at);
    us_json_write_key_string(w, "write_mode", s->write_mode);
    us_json_write_key_string(w, "status", s->status);
    us_json_write_key_bool(w, "parallel_processing_enabled", s->parallel);
    us_json_write_object_close(w);
    if (!us_json_write_ok(w)) {
        us_json_write_rewind(w, &before);
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                      USLOGNO(0104) "session %s left out of the list: its creator's "
                      "name is not valid UTF-8", s->id);
    }
}

/* One item of GET .../upload_sessions/{id}/files (names are valid UTF-8
 * when stored; an item that is not is left out of the list). */
static void write_file_item(us_json_writer *w, const us_session_file_row *f)
{
    us_json_write_mark before;
    us_json_write_save(w, &before);
    us_json_write_object_open(w);
    us_json_write_key_string(w, "file_ingestion_id", f->file_ingestion_id);
    us_json_write_key_string(w, "name", f->name);
    us_json_write_key_string(w, "ingestion_status", f->status);
    if (f->reason)
        us_json_write_key_string(w, "ingestion_status_reason", f->reason);
    us_json_write_object_close(w);
    if (!us_json_write_ok(w))
        us_json_write_rewind(w, &before);
}

/* A page of a list: {"data":[ items ],"has_more":...,"total":...} */
static void write_page_open(us_json_writer *w)
{
    us_json_write_object_open(w);
    us_json_write_key(w, "data");
    us_json_write_array_open(w);
}

static void write_page_close(us_json_writer *w, int has_more, long long total)
{
    us_json_write_array_close(w);
    us_json_write_key_bool(w, "has_more", has_more);
    us_json_write_key_int(w, "total", total);
    us_json_write_object_close(w);
}

/* limit, page_number and the cursors before/after of both session lists:
 * a cursor pages only when page_number is absent, and only one of them at
 * a time; every other combination is refused rather than one of them
 * ignored. cursor_buf holds the canonical id. */
static void page_params(request_rec *r, json_t *errs, us_page *pg, char cursor_buf[37])
{
    const char *raw_page = us_query_get(r->pool, r->args, "page_number");
    const char *before = us_query_get(r->pool, r->args, "before");
    const char *after = us_query_get(r->pool, r->args, "after");
    char before_id[37], after_id[37];
    long long page;

    us_validate_query_int(errs, "limit", us_query_get(r->pool, r->args, "limit"), 10, 1, 100,
                          &pg->limit);
    us_validate_query_int_from(errs, "page_number", raw_page, 1, 1, &page);
    us_validate_query_uuid(errs, "before", before, before_id);
    us_validate_query_uuid(errs, "after", after, after_id);
    if (before && after)
        json_array_append_new(errs, us_validation_error("value_error",
            json_pack("[s,s]", "query", "before"),
            "Value error, before and after cannot be given together", json_string(before),
            NULL));
    else if (raw_page && (before || after))
        json_array_append_new(errs, us_validation_error("value_error",
            json_pack("[s,s]", "query", "page_number"),
            apr_psprintf(r->pool, "Value error, page_number cannot be given together with %s",
                         before ? "before" : "after"),
            json_string(raw_page), NULL));
    if (json_array_size(errs) > 0 || pg->limit < 1)
        return;
    /* a page beyond any possible row is simply empty */
    pg->offset = (page - 1) > LLONG_MAX / pg->limit ? LLONG_MAX : (page - 1) * pg->limit;
    pg->before = before != NULL;
    pg->cursor = NULL;
    if (before || after) {
        memcpy(cursor_buf, before ? before_id : after_id, 37);
        pg->cursor = cursor_buf;
    }
}

static int session_not_found(request_rec *r, const char *id)
{
    return us_send_detail(r, HTTP_NOT_FOUND,
                       apr_psprintf(r->pool, "There's no session with the ID '%s' in the "
                                    "workspace. Check if the ID is correct. ", id));
}

/* ---- endpoints ------------------------------------------------------------ */

/* 201 to POST .../upload_sessions: the session and its presigned POST. */
static int send_created(request_rec *r, const us_srv_conf *c, const us_session *s,
                        const char *url, const us_policy_fields *pf)
{
    us_json_writer w;
    us_json_write_init(&w, r->pool, 1536);
    us_json_write_object_open(&w);
    us_json_write_key_string(&w, "session_id", s->id);
    us_json_write_key_string(&w, "documentation_url", documentation_url(r, c));
    write_ts(&w, "expires_at", s->expires_at);
    us_json_write_key(&w, "aws_prefixed_request_config");
    us_json_write_object_open(&w);
    us_json_write_key_string(&w, "url", url);
    us_json_write_key(&w, "fields");
    us_json_write_object_open(&w);
    us_json_write_key_string(&w, "key", pf->key);
    us_json_write_key_string(&w, "policy", pf->policy);
    us_json_write_key_string(&w, "x-amz-algorithm", pf->algorithm);
    us_json_write_key_string(&w, "x-amz-credential", pf->credential);
    us_json_write_key_string(&w, "x-amz-date", pf->date);
    us_json_write_key_string(&w, "x-amz-signature", pf->signature);
    us_json_write_object_close(&w);
    us_json_write_object_close(&w);
    us_json_write_object_close(&w);
    return us_send_json_writer(r, HTTP_CREATED, &w);
}

int us_api_session_create(request_rec *r, us_srv_conf *c, const us_key *key,
                          const char *ws)
{
    json_t *errs = us_json_pool_own(r->pool, json_array());
    json_t *body;
    const char *mode = "KEEP";
    int parallel = 0, rc;
    long long lifetime = US_DEFAULT_MAX_LIFETIME;

    rc = us_read_json_object(r, US_MAX_JSON_BODY, US_JSON_BODY_ITEMS_LATER, errs, &body);
    if (rc != DECLINED)
        return rc;
    if (body) {
        us_validate_body_enum(errs, body, "write_mode", us_write_modes, "KEEP", &mode);
        us_validate_body_bool(errs, body, "parallel_processing_enabled", 0, &parallel);
        us_validate_body_int(errs, body, "expires_in_seconds", US_DEFAULT_MAX_LIFETIME, 1,
                      US_DEFAULT_MAX_LIFETIME, &lifetime);
    }
    if (json_array_size(errs) > 0)
        return us_send_422(r, errs);
    if (lifetime > c->max_lifetime)
        lifetime = c->max_lifetime;

    char id[37];
    apr_time_t now = apr_time_now();
    us_session s = { 0 };
    us_uuid4(id);
    s.id = id;
    s.workspace = ws;
    s.user_id = key->user_id;
    s.given_name = key->given_name;
    s.family_name = key->family_name;
    s.write_mode = mode;
    s.parallel = parallel;
    s.created_at = now;
    s.expires_at = now + apr_time_from_sec(lifetime);
    us_storage_post_target t = { 0 };
    s.direct = c->s3_direct && us_storage_post_target_of(c->storage, r->pool, id, &t) == APR_SUCCESS
                   ? US_DIRECT_UNLISTED : US_DIRECT_TARGET;

    us_db *db = us_acquire_db(r, c);
    if (!db) /* answered 503/500 already */
        return OK;
    us_db_rc drc = us_session_insert(db, r->pool, &s, c->max_open, now);
    if ((rc = us_query_done(r, c, db, drc)) != DECLINED)
        return rc;
    if (drc == US_DB_LIMIT)
        return us_send_detail(r, HTTP_NOT_ACCEPTABLE,
                         apr_psprintf(r->pool, "You have reached the maximum of %d open "
                                      "upload sessions. Close a session before opening "
                                      "a new one.", c->max_open));

    us_policy_fields pf;
    if (s.direct == US_DIRECT_UNLISTED) {
        /* the bucket checks this policy itself: the bytes never pass here */
        us_sigv4_post_policy(r->pool, &t.cred, t.bucket, t.key_prefix, s.expires_at,
                             c->max_file_size, now, &pf);
        return send_created(r, c, &s, t.url, &pf);
    }
    us_policy_sign(r->pool, c->secret, US_SECRET_LEN,
                   apr_pstrcat(r->pool, ws, "/", id, "/", NULL), s.expires_at,
                   c->max_file_size, now, &pf);
    return send_created(r, c, &s, apr_pstrcat(r->pool, us_public_base(r, c), US_API_PREFIX,
                                              "/upload_target/", id, NULL), &pf);
}

/* Until its listing is recorded, a direct-upload session's files are the
 * objects under its prefix, listed on each request (every page). A
 * storage failure answers 503 (outage) or 500; else DECLINED and *objs. */
static int live_listing(request_rec *r, const us_srv_conf *c, const us_session *s,
                        apr_array_header_t **objs)
{
    apr_status_t rv = us_ingest_listing(c->storage, r->pool, s->id, c->max_files,
                                        us_direct_written_by(s), s->created_at, objs, NULL);
    if (rv == APR_SUCCESS)
        return DECLINED;
    ap_log_rerror(APLOG_MARK, us_storage_unavailable(rv) ? APLOG_WARNING : APLOG_ERR, rv, r,
                  USLOGNO(1021) "session %s: listing its objects in the storage failed", s->id);
    if (!us_storage_unavailable(rv))
        return us_send_detail(r, HTTP_INTERNAL_SERVER_ERROR, "Internal Server Error");
    apr_table_setn(r->headers_out, "Retry-After", "1");
    return us_send_detail(r, HTTP_SERVICE_UNAVAILABLE, US_BUSY_DETAIL);
}

static int send_session_status(request_rec *r, const us_srv_conf *c, const us_session *s)
{
    us_json_writer w;
    us_json_write_init(&w, r->pool, 1024);
    write_session_status(&w, r, c, s);
    return us_send_json_writer(r, HTTP_OK, &w);
}

int us_api_session_get(request_rec *r, us_srv_conf *c, const char *ws, const char *raw_id)
{
    json_t *errs = us_json_pool_own(r->pool, json_array());
    char id[37];
    int rc;
    us_db *db;
    us_session s;

    if (!us_validate_path_uuid(errs, "session_id", raw_id, id))
        return us_send_422(r, errs);
    if (!(db = us_acquire_db(r, c))) /* answered 503/500 already */
        return OK;
    us_db_rc drc = us_session_get(db, r->pool, ws, id, apr_time_now(), &s);
    if ((rc = us_query_done(r, c, db, drc)) != DECLINED)
        return rc;
    if (drc != US_DB_OK)
        return session_not_found(r, id);
    if (s.direct == US_DIRECT_UNLISTED) {
        apr_array_header_t *objs;
        if ((rc = live_listing(r, c, &s, &objs)) != DECLINED)
            return rc;
        s.uploaded_files = 0;
        for (int i = 0; i < objs->nelts; i++)
            s.uploaded_files += !APR_ARRAY_IDX(objs, i, us_listed_object).is_meta;
    }
    return send_session_status(r, c, &s);
}

int us_api_session_close(request_rec *r, us_srv_conf *c, const char *ws, const char *raw_id)
{
    json_t *errs = us_json_pool_own(r->pool, json_array());
    json_t *path_errs = us_json_pool_own(r->pool, json_array());
    json_t *body;
    char id[37];
    int rc;

    /* FastAPI decodes the body first: invalid JSON is reported alone */
    rc = us_read_json_object(r, US_MAX_JSON_BODY, US_JSON_BODY_ITEMS_LATER, errs, &body);
    if (rc != DECLINED)
        return rc;
    us_validate_path_uuid(path_errs, "session_id", raw_id, id);
    if (body)
        us_validate_body_literal(errs, body, "status", "CLOSED");
    if (json_array_size(path_errs) + json_array_size(errs) > 0) {
        json_array_extend(path_errs, errs); /* path problems first */
        return us_send_422(r, path_errs);
    }

    us_db *db = us_acquire_db(r, c);
    if (!db) /* answered 503/500 already */
        return OK;
    us_db_rc drc = us_session_close(db, r->pool, ws, id, apr_time_now());
    if ((rc = us_query_done(r, c, db, drc)) != DECLINED)
        return rc;
    switch (drc) {
    case US_DB_OK:
        us_ingest_poke(c->ingest); /* committed: this process's idle workers claim it now */
        return send_no_content(r);
    case US_DB_CONFLICT: return us_send_detail(r, HTTP_CONFLICT, "The session is already closed.");
    default: return session_not_found(r, id);
    }
}

/* DELETE /upload_sessions/{id} (an extension): the store discards the
 * session with its upload rows (one delete of a row per upload, in the
 * request's write) and queues the clear of its bytes for the ingest
 * workers (what survives a crash), woken here: no byte of the session is
 * touched by the request. */
int us_api_session_abort(request_rec *r, us_srv_conf *c, const char *ws, const char *raw_id)
{
    json_t *errs = us_json_pool_own(r->pool, json_array());
    char id[37];
    int rc;

    if (!us_validate_path_uuid(errs, "session_id", raw_id, id))
        return us_send_422(r, errs);
    us_db *db = us_acquire_db(r, c);
    if (!db) /* answered 503/500 already */
        return OK;
    us_db_rc drc = us_session_abort(db, r->pool, ws, id, apr_time_now());
    if ((rc = us_query_done(r, c, db, drc)) != DECLINED)
        return rc;
    switch (drc) {
    case US_DB_OK:
        us_ingest_poke(c->ingest); /* committed: an idle worker clears it now */
        return send_no_content(r);
    case US_DB_CONFLICT: return us_send_detail(r, HTTP_CONFLICT, "The session is already closed.");
    default: return session_not_found(r, id);
    }
}

int us_api_sessions_list(request_rec *r, us_srv_conf *c, const char *ws)
{
    json_t *errs = us_json_pool_own(r->pool, json_array());
    us_page pg = { 0 };
    char cursor[37];
    int is_expired, rc, has_more = 0;
    apr_array_header_t *rows;
    long long total = 0;

    page_params(r, errs, &pg, cursor);
    us_validate_query_bool(errs, "is_expired", us_query_get(r->pool, r->args, "is_expired"),
                    &is_expired);
    if (json_array_size(errs) > 0)
        return us_send_422(r, errs);

    us_db *db = us_acquire_db(r, c);
    if (!db) /* answered 503/500 already */
        return OK;
    us_db_rc drc = us_session_list(db, r->pool, ws, is_expired, &pg, apr_time_now(), &rows,
                                   &total, &has_more);
    if ((rc = us_query_done(r, c, db, drc)) != DECLINED)
        return rc;
    us_json_writer w;
    us_json_write_init(&w, r->pool, 128 + (apr_size_t)rows->nelts * 384);
    write_page_open(&w);
    for (int i = 0; i < rows->nelts; i++)
        write_session_item(&w, r, &APR_ARRAY_IDX(rows, i, us_session));
    write_page_close(&w, has_more, total);
    return us_send_json_writer(r, HTTP_OK, &w);
}

static const char *const INGESTION_STATES[] = { "PENDING", "FAILED", "FINISHED", NULL };

int us_api_session_files(request_rec *r, us_srv_conf *c, const char *ws, const char *raw_id)
{
    json_t *errs = us_json_pool_own(r->pool, json_array());
    char id[37], cursor[37];
    us_page pg = { 0 };
    long long total = 0;
    int has_more = 0;
    const char *state = NULL;
    apr_array_header_t *rows = NULL;
    us_session s;
    us_db *db;
    int rc;

    us_validate_path_uuid(errs, "session_id", raw_id, id);
    us_validate_query_enum(errs, "ingestion_status", us_query_get(r->pool, r->args, "ingestion_status"),
                    INGESTION_STATES, &state);
    page_params(r, errs, &pg, cursor);
    if (json_array_size(errs) > 0)
        return us_send_422(r, errs);
    if (!(db = us_acquire_db(r, c))) /* answered 503/500 already */
        return OK;
    us_db_rc drc = us_session_get(db, r->pool, ws, id, apr_time_now(), &s);
    if (drc == US_DB_OK && s.direct != US_DIRECT_UNLISTED)
        drc = us_session_files_list(db, r->pool, id, state, &pg, &rows, &total, &has_more);
    if ((rc = us_query_done(r, c, db, drc)) != DECLINED)
        return rc;
    if (drc != US_DB_OK) /* NOTFOUND, the one logical answer of these reads */
        return session_not_found(r, id);
    if (s.direct == US_DIRECT_UNLISTED) {
        apr_array_header_t *objs;
        if ((rc = live_listing(r, c, &s, &objs)) != DECLINED)
            return rc;
        us_ingest_listing_page(r->pool, objs, state, &pg, &rows, &total, &has_more);
    }
    us_json_writer w;
    us_json_write_init(&w, r->pool, 128 + (apr_size_t)rows->nelts * 192);
    write_page_open(&w);
    for (int i = 0; i < rows->nelts; i++)
        write_file_item(&w, &APR_ARRAY_IDX(rows, i, us_session_file_row));
    write_page_close(&w, has_more, total);
    return us_send_json_writer(r, HTTP_OK, &w);
}

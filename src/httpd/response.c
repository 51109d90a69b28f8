/*
 * response.c - the JSON answers every endpoint group sends (FastAPI's
 * {"detail": ...} and 422 shapes), store and storage failures mapped to
 * 503/500, a response cut short, and the connection pool taken and given
 * back around a query.
 */
#include "response.h"
#include "us_json.h"
#include "us_storage.h"

#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <apr_buckets.h>
#include <apr_strings.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

APLOG_USE_MODULE(upload_session);

static void send_json_text(request_rec *r, int status, const char *text, size_t len)
{
    r->status = status;
    ap_set_content_type(r, "application/json");
    ap_set_content_length(r, (apr_off_t)len);
    if (!r->header_only)
        ap_rwrite(text, (int)len, r);
}

/* Sends body (stolen) as the JSON response with the given status. */
int us_send_json(request_rec *r, int status, json_t *body)
{
    const char *text = us_json_dump_pool(r->pool, body);
    json_decref(body);
    if (!text)
        return HTTP_INTERNAL_SERVER_ERROR;
    send_json_text(r, status, text, strlen(text));
    return OK;
}

/* Sends what w wrote. A failed writer (a stored name that is not valid
 * UTF-8, which jansson refused as well: json_pack failed) is a 500. */
int us_send_json_writer(request_rec *r, int status, us_json_writer *w)
{
    apr_size_t len = 0;
    const char *text = us_json_write_finish(w, &len);
    if (!text) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      USLOGNO(0103) "cannot write the answer as JSON: a stored text "
                      "(e.g. a name from the key file) is not valid UTF-8");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    send_json_text(r, status, text, len);
    return OK;
}

int us_send_detail(request_rec *r, int status, const char *detail)
{
    return us_send_json(r, status, json_pack("{s:s}", "detail", detail));
}

int us_send_not_granted(request_rec *r, const char *ws)
{
    return us_send_detail(r, HTTP_FORBIDDEN,
                          apr_psprintf(r->pool, "You don't have access to the workspace '%s'.", ws));
}

int us_send_422(request_rec *r, json_t *errs)
{
    return us_send_json(r, HTTP_UNPROCESSABLE_ENTITY, json_pack("{s:O}", "detail", errs));
}

/* Store failures: busy -> 503 + Retry-After (the client retries), else 500. */
int us_send_store_error(request_rec *r, us_db_rc rc, const char *what)
{
    us_metrics_store_error(us_metrics_here());
    if (rc == US_DB_BUSY) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                      USLOGNO(0101) "store busy: %s", what);
        apr_table_setn(r->headers_out, "Retry-After", "1");
        return us_send_detail(r, HTTP_SERVICE_UNAVAILABLE, US_BUSY_DETAIL);
    }
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, USLOGNO(0102) "store error: %s", what);
    return us_send_detail(r, HTTP_INTERNAL_SERVER_ERROR, "Internal Server Error");
}

/* ---- store connections ------------------------------------------------- */

/* Returns db to the pool; keeps a copy of its last error for the response. */
static const char *release_db(request_rec *r, us_srv_conf *c, us_db *db, us_db_rc drc)
{
    const char *err = drc == US_DB_OK ? NULL : apr_pstrdup(r->pool, us_db_error(db));
    us_store_release(c->store, db, drc == US_DB_ERROR);
    return err;
}

int us_query_done(request_rec *r, us_srv_conf *c, us_db *db, us_db_rc drc)
{
    const char *err = release_db(r, c, db, drc);
    switch (drc) {
    case US_DB_BUSY:
    case US_DB_ERROR:
    case US_DB_NOT_DURABLE:
        return us_send_store_error(r, drc, err);
    default:
        return DECLINED;
    }
}

us_db *us_acquire_db(request_rec *r, us_srv_conf *c)
{
    const char *err = NULL;
    us_db *db = NULL;
    us_db_rc rc = c->store ? us_store_acquire(c->store, &db, &err) : US_DB_ERROR;
    if (rc == US_DB_OK)
        return db;
    us_send_store_error(r, rc, err ? err : "no connection pool in this process");
    return NULL;
}

const char *us_public_base(request_rec *r, const us_srv_conf *c)
{
    return c->public_url ? c->public_url : ap_construct_url(r->pool, "", r);
}

/* A response cut short after its headers went out, when its status can no
 * longer tell: httpd's error bucket ends it without keep-alive (and a
 * chunked body without its last chunk), so the client sees the connection
 * closed at once with a short body, instead of waiting for bytes that never
 * come until KeepAliveTimeout. */
void us_abort_response(request_rec *r)
{
    apr_bucket_alloc_t *ba = r->connection->bucket_alloc;
    apr_bucket_brigade *bb = apr_brigade_create(r->pool, ba);
    r->connection->keepalive = AP_CONN_CLOSE;
    APR_BRIGADE_INSERT_TAIL(bb, ap_bucket_error_create(HTTP_BAD_GATEWAY, NULL, r->pool, ba));
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_eos_create(ba));
    ap_pass_brigade(r->output_filters, bb);
}

/* A storage failure: an outage is 503 with Retry-After, the rest 500. */
int us_send_storage_error(request_rec *r, apr_status_t rv)
{
    if (!us_storage_unavailable(rv))
        return us_send_detail(r, HTTP_INTERNAL_SERVER_ERROR, "Internal Server Error");
    apr_table_setn(r->headers_out, "Retry-After", "1");
    return us_send_detail(r, HTTP_SERVICE_UNAVAILABLE, US_BUSY_DETAIL);
}

/* JSON text that is already written (a stored meta object). */
int us_send_json_text(request_rec *r, int status, const char *text)
{
    us_json_writer w;
    us_json_write_init(&w, r->pool, strlen(text) + 1);
    us_json_write_raw(&w, text, strlen(text));
    return us_send_json_writer(r, status, &w);
}

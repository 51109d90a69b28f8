/*
 * us_health.c - GET /api/v1/health, for load balancers: no key, no data.
 * 200 {"status":"ok"} when this process reaches the store (one read through
 * a pooled connection) and may write to the file storage; else 503
 * {"status":"unavailable"} with Retry-After, the reason in the error log.
 */
#include "endpoints.h"
#include "response.h"

#include <http_log.h>
#include <http_protocol.h>
#include <apr_strings.h>

APLOG_USE_MODULE(upload_session);

/* A session id no session has: the read succeeds with "not found". */
static const char NO_SESSION[] = "00000000-0000-0000-0000-000000000000";

static int unavailable(request_rec *r, int msgno, apr_status_t rv, const char *what)
{
    ap_log_rerror(APLOG_MARK, APLOG_WARNING, rv, r, "US%04d: health: %s", msgno, what);
    apr_table_setn(r->headers_out, "Retry-After", "1");
    return us_send_json(r, HTTP_SERVICE_UNAVAILABLE, json_pack("{s:s}", "status", "unavailable"));
}

int us_api_health(request_rec *r, us_srv_conf *c)
{
    const char *err = NULL;
    us_db *db = NULL;
    us_session s;
    us_db_rc rc = c->store ? us_store_acquire(c->store, &db, &err) : US_DB_ERROR;
    if (rc != US_DB_OK)
        us_metrics_store_error(us_metrics_here());
    if (rc != US_DB_OK)
        return unavailable(r, 13, 0, apr_pstrcat(r->pool, "no store connection: ",
                                                 err ? err : "no connection pool", NULL));
    rc = us_session_by_id(db, r->pool, NO_SESSION, apr_time_now(), &s);
    err = rc == US_DB_NOTFOUND || rc == US_DB_OK ? NULL : apr_pstrdup(r->pool, us_db_error(db));
    us_store_release(c->store, db, rc == US_DB_ERROR);
    if (err)
        us_metrics_store_error(us_metrics_here());
    if (err)
        return unavailable(r, 14, 0, apr_pstrcat(r->pool, "the store does not answer: ", err, NULL));
    apr_status_t rv = c->storage ? us_storage_check(c->storage, r->pool) : APR_EINIT;
    if (rv != APR_SUCCESS)
        return unavailable(r, 15, rv, "the file storage cannot be written");
    return us_send_json(r, HTTP_OK, json_pack("{s:s}", "status", "ok"));
}

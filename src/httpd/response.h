/*
 * response.h - the answers and store helpers every endpoint group shares.
 */
#ifndef US_RESPONSE_H
#define US_RESPONSE_H

#include <jansson.h>
#include "us_json_writer.h"
#include "us_module.h"

/* JSON response with status; body is stolen. */
int us_send_json(request_rec *r, int status, json_t *body);
/* JSON response with status: what w wrote; a failed writer (a text that
 * is not valid UTF-8) is logged and answered 500. */
int us_send_json_writer(request_rec *r, int status, us_json_writer *w);
/* {"detail": "..."} */
int us_send_detail(request_rec *r, int status, const char *detail);
/* 403 {"detail": "You don't have access to the workspace '<ws>'."} */
int us_send_not_granted(request_rec *r, const char *ws);
/* 422 {"detail": errs}; errs is borrowed. */
int us_send_422(request_rec *r, json_t *errs);
/* busy -> 503 + Retry-After, else 500 (logged). */
int us_send_store_error(request_rec *r, us_db_rc rc, const char *what);
/* the detail of a 503, as for a busy store */
#define US_BUSY_DETAIL "The service is busy. Try again in a moment."
/* A storage failure (us_storage.h): an outage is 503 with Retry-After, the
 * rest 500. */
int us_send_storage_error(request_rec *r, apr_status_t rv);
/* JSON text that is already written (a stored meta object), as the body. */
int us_send_json_text(request_rec *r, int status, const char *text);
/* A response cut short after its headers went out, when its status can no
 * longer tell (the connection is closed at once). */
void us_abort_response(request_rec *r);

/* A pooled connection, or NULL after answering 503/500 itself. */
us_db *us_acquire_db(request_rec *r, us_srv_conf *c);
/* Ends a query on db (from us_acquire_db): gives the connection back and,
 * when drc is a store failure (busy, error, not durable), answers 503/500
 * and returns the handler's result. DECLINED otherwise: the caller answers
 * drc (US_DB_OK or a logical answer such as NOTFOUND). An endpoint reads:
 *     if (!(db = us_acquire_db(r, c))) return OK;
 *     drc = us_session_get(db, ...);
 *     if ((rc = us_query_done(r, c, db, drc)) != DECLINED) return rc; */
int us_query_done(request_rec *r, us_srv_conf *c, us_db *db, us_db_rc drc);

/* The configured public base URL, or scheme://host:port of the request. */
const char *us_public_base(request_rec *r, const us_srv_conf *c);

#endif

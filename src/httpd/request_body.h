/*
 * request_body.h - streamed multipart and url-encoded request bodies and their size limit,
 * for the endpoints that take files (the upload target, POST /files); small
 * bodies read whole, JSON ones validated as FastAPI does.
 */
#ifndef US_REQUEST_BODY_H
#define US_REQUEST_BODY_H

#include "us_module.h"
#include "us_multipart.h"
#include "us_urlform.h"

#include <jansson.h>

/* multipart framing and fields a body may carry beyond its file */
#define US_BODY_OVERHEAD (1024 * 1024)

/* Raises httpd's request-body limit for an upload to what the module
 * allows (httpd's default of 1 GiB would cut large files), unless the
 * operator set LimitRequestBody for this location. Call before reading. */
void us_upload_body_limit(request_rec *r, const us_srv_conf *c);

typedef enum {
    US_READ_DONE = 0,     /* the closing boundary was seen */
    US_READ_STOPPED,      /* a parser callback stopped it */
    US_READ_MALFORMED,    /* not well-formed multipart: us_mp_error() says why */
    US_READ_TOO_LARGE,    /* over LimitRequestBody */
    US_READ_BROKEN        /* the client went away or sent a broken body */
} us_read_result;

/* Streams the request body through mp in blocks of 256 KiB, memory bounded. */
us_read_result us_read_multipart(request_rec *r, us_mp *mp);

/* The same for an url-encoded body (never US_READ_MALFORMED: any bytes
 * are a form). */
us_read_result us_read_urlform(request_rec *r, us_urlform *f);

/* us_read_json_object's flags */
#define US_JSON_BODY_OPTIONAL 1    /* an empty body is no body: *obj NULL, DECLINED */
#define US_JSON_BODY_ITEMS_LATER 2 /* a body pydantic refuses (not an object, none)
                                      is not answered: *obj NULL, its items stay in
                                      errs for the caller's 422 with its own */
#define US_JSON_BODY_FEW_VALUES 4  /* more than US_BODY_MAX_VALUES values is
                                      413: for a large body of many small values */

/* A small JSON body of at most max bytes, validated as FastAPI validates a
 * body model, into *obj (owned by r->pool). DECLINED to go on; else it has
 * answered - 413 too large, 400 a broken or unparsable body, 422 invalid
 * JSON (its item alone) or a body that is not an object (errs) - and
 * returns the handler's result. */
int us_read_json_object(request_rec *r, apr_size_t max, int flags, json_t *errs, json_t **obj);

#endif

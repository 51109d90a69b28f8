/*
 * us_upload.h - the S3-style presigned POST upload target (httpd glue).
 */
#ifndef US_UPLOAD_H
#define US_UPLOAD_H

#include "us_module.h"

/* POST /api/v1/upload_target/{session_id}: authorised by the signed policy,
 * streams the file part to disk and records it. */
int us_upload_handle(request_rec *r, us_srv_conf *c, const char *session_id);

/* Raises httpd's request-body limit for the upload target to what the
 * module allows (httpd's default of 1 GiB would cut large files), unless
 * the operator set LimitRequestBody for this location. Call before reading. */
void us_upload_body_limit(request_rec *r, const us_srv_conf *c);

typedef enum {
    US_READ_DONE = 0,     /* the closing boundary was seen */
    US_READ_STOPPED,      /* a parser callback stopped it */
    US_READ_MALFORMED,    /* not well-formed multipart: us_mp_error() says why */
    US_READ_TOO_LARGE,    /* over LimitRequestBody */
    US_READ_BROKEN        /* the client went away or sent a broken body */
} us_read_result;

struct us_mp;
/* Streams the request body through mp in blocks of 256 KiB, memory bounded. */
us_read_result us_read_multipart(request_rec *r, struct us_mp *mp);

/* Removes temp files a crash left in the session directories. */
void us_upload_sweep_temp(apr_pool_t *p, server_rec *s, const char *data_dir);

#endif

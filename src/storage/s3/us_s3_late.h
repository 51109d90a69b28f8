/*
 * us_s3_late.h - what the last clear of sessions makes of the store's
 * answers: a ListMultipartUploads answer's outcome, and the session a key
 * under the sessions' prefix belongs to. Pure: no request.
 */
#ifndef US_S3_LATE_H
#define US_S3_LATE_H

#include <apr_errno.h>
#include <apr_hash.h>

typedef enum {
    US_S3_UPLOADS_LISTED,  /* 200: the page's uploads are to abort */
    US_S3_UPLOADS_REFUSED, /* 403 (a bucket policy, a user without the right),
                            * 501 (a store without the call): nothing to
                            * abort, the clear is recorded */
    US_S3_UPLOADS_FAILED   /* no answer, or another status: the clear stays due */
} us_s3_uploads_outcome;

/* The outcome of a ListMultipartUploads request that returned rv with
 * HTTP status. */
us_s3_uploads_outcome us_s3_uploads_outcome_of(apr_status_t rv, long status);

/* Adds to ids (keys and values: strings of p) the session of key when key
 * lies under root ("PREFIX/sessions/"): the name up to the next '/', as
 * root<session>/<blob> or root<session>/ (a common prefix) give it. */
void us_s3_add_session_of(apr_pool_t *p, apr_hash_t *ids, const char *root, const char *key);

#endif

/*
 * us_s3_request.h - one signed request to the s3 store and what its
 * answer means. A request of a stoppable handle (st->stop set) is cut
 * short, or not sent, once its stop flag is set (APR_EINTR).
 */
#ifndef US_S3_REQUEST_H
#define US_S3_REQUEST_H

#include "us_s3_conf.h"
#include "us_buf.h"

/* Small answers (listings, error documents) are read whole, up to this
 * size; larger is an error (APR_INCOMPLETE), never half a listing. */
#ifndef US_S3_MAX_RESPONSE
#define US_S3_MAX_RESPONSE (8 << 20)
#endif

typedef struct {
    /* what to send: body[0..len), or nothing */
    const char *body;
    apr_size_t len;
    apr_size_t sent;
    /* what came back: into resp when set (grown as it comes), else into buf
     * (at most cap bytes); more than either holds sets overflow */
    us_buf *resp;
    char *buf;
    apr_size_t cap, got;
    int overflow;
    long status;
    const char *etag;
    const char *content_range; /* as it came, NULL without one */
    apr_off_t content_length;
    apr_pool_t *p;
} us_s3_xfer;

/* Sends one signed request for key (NULL: the bucket) with the canonical
 * query q (or NULL) and extra headers (name, value pairs, NULL-ended; a
 * Range header among them is sent unsigned). x->status is the HTTP status;
 * APR_SUCCESS when an answer came, else why not. */
apr_status_t us_s3_send(const us_storage *st, apr_pool_t *p, const char *method,
                        const char *key, const char *q, const char *const *extra,
                        us_s3_xfer *x);

/* us_s3_send with send[0..send_len) as the body and a small answer kept in
 * *body (NUL-terminated, "" for none; may be NULL), its ETag in *etag (may
 * be NULL); the HTTP status in *status. */
apr_status_t us_s3_call(const us_storage *st, apr_pool_t *p, const char *method,
                        const char *key, const char *q, const char *const *extra,
                        const char *send, apr_size_t send_len, long *status, char **body,
                        const char **etag);

/* An APR status for an answer that is not a 2xx (an outage: APR_EAGAIN;
 * a refusal: APR_EACCES; about this request alone: APR_EGENERAL, only a
 * 4xx, or a 2xx holding an error document). */
apr_status_t us_s3_from_http(long status);

/* One failure (what, of key or NULL for the bucket), logged as msgno
 * without credentials, and its APR status (the error document's code counts). */
apr_status_t us_s3_failed(const us_storage *st, int msgno, const char *what, const char *key,
                          long status, const char *body);

/* A 200 answer without the result document its request must answer
 * (us_s3_result_done), logged as msgno: APR_EAGAIN, done again later. */
apr_status_t us_s3_no_result(const us_storage *st, int msgno, const char *what, const char *key);

/* What a 404 answered about key means (head: to a HEAD; body: the error
 * document): APR_ENOENT when the key is not there, else logged and an outage. */
apr_status_t us_s3_not_found(const us_storage *st, apr_pool_t *p, int msgno, const char *what,
                             const char *key, int head, const char *body);

/* Deletes key (check_exists: a HEAD first tells whether it was there,
 * APR_ENOENT when not). Failures logged as msgno. */
apr_status_t us_s3_delete_key(const us_storage *st, apr_pool_t *p, int msgno, const char *what,
                              const char *key, int check_exists);

/* Aborts the multipart upload id of key: 1 when it is gone (aborted now or
 * before), 0 when it may still be there. */
int us_s3_abort_one(const us_storage *st, apr_pool_t *p, const char *key, const char *id);

#endif

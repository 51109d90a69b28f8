/*
 * us_s3_reader.c - reading the s3 backend's objects: a workspace file in
 * ranged GETs of a window at a time, pinned to the version opened (its
 * ETag), and a small object (an upload's sidecar) whole in one GET.
 */
#include "us_s3_reader.h"
#include "us_s3_request.h"
#include "us_s3_answers.h"
#include "us_buf.h"

#include <apr_strings.h>

#include <string.h>

#define READ_WINDOW (4 * 1024 * 1024) /* bytes one ranged GET of a reader fetches */

typedef struct {
    us_storage *st;
    apr_pool_t *p;
    const char *key;
    const char *etag;       /* of the object opened: a replaced object fails to read */
    apr_off_t size;
    char *win;              /* bytes [win_off, win_off + win_len) */
    apr_off_t win_off;
    apr_size_t win_len;
} s3_reader;

apr_status_t us_s3_file_open(us_storage *st, apr_pool_t *p, const char *file_id, void **r,
                             apr_off_t *size, apr_file_t **local)
{
    us_s3_xfer x = { 0 };
    s3_reader *rd = apr_pcalloc(p, sizeof(*rd));
    rd->key = us_s3_file_key(st, p, file_id);
    apr_status_t rv = us_s3_send(st, p, "HEAD", rd->key, NULL, NULL, &x);
    if (rv != APR_SUCCESS)
        return rv;
    if (x.status != 200)
        return x.status == 404 ? us_s3_not_found(st, p, 1214, "reading", rd->key, 1, NULL)
                               : us_s3_failed(st, 1214, "reading", rd->key, x.status, NULL);
    if (x.content_length < 0) {
        /* not an empty file: a size unknown, which every read would cut short */
        us_log(st->log, US_LOG_WARN, 0, 1214, "s3 reading %s: the store's HEAD answer has no "
               "Content-Length", rd->key);
        return APR_EGENERAL;
    }
    rd->st = st;
    rd->p = p;
    rd->etag = x.etag;
    rd->size = x.content_length;
    *r = rd;
    *size = rd->size;
    *local = NULL;
    return APR_SUCCESS;
}

apr_status_t us_s3_read_at(void *rv_, apr_off_t off, char *buf, apr_size_t *len)
{
    s3_reader *rd = rv_;
    if (off >= rd->size || *len == 0) {
        *len = 0;
        return APR_SUCCESS;
    }
    if (off < rd->win_off || off >= rd->win_off + (apr_off_t)rd->win_len) {
        apr_off_t want = rd->size - off < READ_WINDOW ? rd->size - off : READ_WINDOW;
        apr_pool_t *tmp;
        us_s3_xfer x = { 0 };
        if (!rd->win)
            rd->win = apr_palloc(rd->p, READ_WINDOW);
        apr_pool_create(&tmp, rd->p);
        const char *range = apr_psprintf(tmp, "bytes=%" APR_OFF_T_FMT "-%" APR_OFF_T_FMT, off,
                                         off + want - 1);
        const char *extra[] = { "range", range, rd->etag ? "if-match" : NULL, rd->etag, NULL };
        x.buf = rd->win;
        x.cap = READ_WINDOW;
        rd->win_len = 0;
        apr_status_t rv = us_s3_send(rd->st, tmp, "GET", rd->key, NULL, extra, &x);
        if (rv == APR_SUCCESS && x.status == 404)
            rv = us_s3_not_found(rd->st, tmp, 1214, "reading", rd->key, 0,
                                 apr_pstrndup(tmp, rd->win, x.got));
        /* another range than the one asked for (a store's or a proxy's
         * mistake) holds other bytes: served, they would be wrong */
        if (rv == APR_SUCCESS && x.status == 206 &&
            !(x.content_range && us_s3_content_range_is(x.content_range,
                                                        strlen(x.content_range), off,
                                                        off + want - 1, rd->size))) {
            us_log(rd->st->log, US_LOG_WARN, 0, 1214, "s3 reading %s: the store answered "
                   "Content-Range %s to Range %s (of %" APR_OFF_T_FMT " bytes)", rd->key,
                   x.content_range ? us_s3_trim(apr_pstrdup(tmp, x.content_range)) : "none",
                   range, rd->size);
            rv = APR_EGENERAL;
        }
        apr_pool_destroy(tmp);
        if (rv != APR_SUCCESS)
            return rv;
        if (x.status != 206 && x.status != 200)
            return x.status == 412 ? APR_ENOENT : us_s3_from_http(x.status);
        if (x.status == 200 && off != 0)
            return APR_EGENERAL; /* the range was ignored */
        rd->win_off = off;
        rd->win_len = x.got;
        if (x.got == 0) {
            *len = 0;
            return APR_EGENERAL;
        }
    }
    apr_size_t at = (apr_size_t)(off - rd->win_off);
    apr_size_t n = rd->win_len - at < *len ? rd->win_len - at : *len;
    memcpy(buf, rd->win + at, n);
    *len = n;
    return APR_SUCCESS;
}

/* The whole object key when it holds at most max bytes: one GET. */
static apr_status_t read_small(us_storage *st, apr_pool_t *p, const char *key, apr_size_t max,
                               char **data, apr_size_t *len)
{
    us_s3_xfer x = { 0 };
    us_buf got;
    /* grown as the bytes come: a sidecar of 20 bytes takes little, not max */
    us_buf_init(&got, p, max);
    x.resp = &got;
    apr_status_t rv = us_s3_send(st, p, "GET", key, NULL, NULL, &x);
    if (rv != APR_SUCCESS)
        return rv;
    if (x.status == 404)
        return us_s3_not_found(st, p, 1214, "reading", key, 0, got.data);
    if (x.overflow)
        return APR_INCOMPLETE;
    if (x.status != 200)
        return us_s3_failed(st, 1214, "reading", key, x.status, got.data);
    *data = got.data ? got.data : apr_pstrdup(p, "");
    *len = got.len;
    return APR_SUCCESS;
}

apr_status_t us_s3_upload_read(us_storage *st, apr_pool_t *p, const char *session_id,
                               const char *blob, apr_size_t max, char **data, apr_size_t *len)
{
    return read_small(st, p, us_s3_upload_key(st, p, session_id, blob), max, data, len);
}

apr_status_t us_s3_file_read(us_storage *st, apr_pool_t *p, const char *file_id,
                             apr_size_t max, char **data, apr_size_t *len)
{
    return read_small(st, p, us_s3_file_key(st, p, file_id), max, data, len);
}

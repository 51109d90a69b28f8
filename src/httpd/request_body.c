/*
 * request_body.c - reading a request body that may be large: streamed
 * through the multipart parser in blocks, memory bounded, under a body
 * limit raised for uploads; a small body whole, a JSON one validated.
 */
#include "request_body.h"
#include "response.h"
#include "us_json.h"
#include "us_validate.h"

#include <apr_strings.h>
#include <http_core.h>
#include <http_protocol.h>
#include <http_request.h>

#define READ_BLOCK (256 * 1024)        /* bytes asked of the input filters per pass */

/* A body parser's feed: the multipart or the url-encoded one. */
typedef us_mp_status (*feed_fn)(void *parser, const char *data, size_t len);

static us_mp_status feed_multipart(void *parser, const char *data, size_t len)
{
    return us_mp_feed(parser, data, len);
}

static us_mp_status feed_urlform(void *parser, const char *data, size_t len)
{
    return us_urlform_feed(parser, data, len);
}

/* Streams the body through feed in blocks of READ_BLOCK until its end or
 * the parser's error or stop: *st is the parser's last status. US_READ_DONE
 * when the body was read (the caller finishes the parser), else why not. */
static us_read_result stream_body(request_rec *r, feed_fn feed, void *parser, us_mp_status *st)
{
    apr_bucket_brigade *bb = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    int eos = 0;

    *st = US_MP_CONTINUE;
    while (!eos) {
        apr_status_t rv = ap_get_brigade(r->input_filters, bb, AP_MODE_READBYTES,
                                         APR_BLOCK_READ, READ_BLOCK);
        if (rv != APR_SUCCESS) {
            int status = ap_map_http_request_error(rv, HTTP_BAD_REQUEST);
            apr_brigade_cleanup(bb);
            return status == HTTP_REQUEST_ENTITY_TOO_LARGE ? US_READ_TOO_LARGE : US_READ_BROKEN;
        }
        for (apr_bucket *b = APR_BRIGADE_FIRST(bb); b != APR_BRIGADE_SENTINEL(bb);
             b = APR_BUCKET_NEXT(b)) {
            const char *data;
            apr_size_t len;
            if (APR_BUCKET_IS_EOS(b)) {
                eos = 1;
                break;
            }
            if (apr_bucket_read(b, &data, &len, APR_BLOCK_READ) != APR_SUCCESS) {
                apr_brigade_cleanup(bb);
                return US_READ_BROKEN;
            }
            if (len && *st == US_MP_CONTINUE)
                *st = feed(parser, data, len);
        }
        apr_brigade_cleanup(bb);
        if (*st == US_MP_ERROR || *st == US_MP_ABORTED)
            break; /* stop reading: the connection is closed after the answer */
    }
    return US_READ_DONE;
}

static us_mp_status finish_multipart(void *parser) { return us_mp_finish(parser); }
static us_mp_status finish_urlform(void *parser) { return us_urlform_finish(parser); }

/* A form streamed through its parser, then finished unless it stopped. */
static us_read_result read_form(request_rec *r, feed_fn feed, us_mp_status (*finish)(void *),
                                void *parser)
{
    us_mp_status st;
    us_read_result rr = stream_body(r, feed, parser, &st);
    if (rr != US_READ_DONE)
        return rr;
    if (st == US_MP_CONTINUE)
        st = finish(parser);
    return st == US_MP_DONE ? US_READ_DONE : st == US_MP_ABORTED ? US_READ_STOPPED
                                                                 : US_READ_MALFORMED;
}

us_read_result us_read_multipart(request_rec *r, us_mp *mp)
{
    return read_form(r, feed_multipart, finish_multipart, mp);
}

us_read_result us_read_urlform(request_rec *r, us_urlform *f)
{
    return read_form(r, feed_urlform, finish_urlform, f);
}

void us_upload_body_limit(request_rec *r, const us_srv_conf *c)
{
    core_dir_config *cur = ap_get_core_module_config(r->per_dir_config);
    /* A fresh core configuration holds core.c's "LimitRequestBody not
     * configured" value (unexported, and ap_get_limit_req_body() turns it
     * into the default, indistinguishable from an explicit one). */
    core_dir_config *d = core_module.create_dir_config(r->pool, NULL);
    if (cur && cur->limit_req_body != d->limit_req_body)
        return; /* the operator chose a limit for this location */
    ap_conf_vector_t *v = ap_create_per_dir_config(r->pool);
    d->limit_req_body = (apr_off_t)(c->max_file_size + US_BODY_OVERHEAD);
    ap_set_core_module_config(v, d);
    r->per_dir_config = ap_merge_per_dir_configs(r->pool, r->per_dir_config, v);
}

/* The first buffer of a small body: what Content-Length announced up to
 * 64 KiB (more is taken as it arrives: a client that announces a large body
 * and sends nothing holds no more), at least 8 KiB, never more than max. */
static apr_size_t first_capacity(apr_off_t announced, apr_size_t max)
{
    enum { SMALL = 8 * 1024, TRUSTED = 64 * 1024 };
    apr_size_t cap = SMALL;
    if (announced > SMALL)
        cap = announced < TRUSTED ? (apr_size_t)announced : TRUSTED;
    return cap < max ? cap : max;
}

/* Reads the whole body, at most max bytes, NUL-terminated in r->pool, in a
 * buffer that grows (doubling, up to max) with what arrives: OK, or
 * HTTP_REQUEST_ENTITY_TOO_LARGE, or another status for a broken body. */
static int read_small_body(request_rec *r, apr_size_t max, char **buf, apr_size_t *len)
{
    apr_bucket_brigade *bb = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    apr_size_t total = 0, cap;
    int seen_eos = 0;
    const char *cl = apr_table_get(r->headers_in, "Content-Length");
    apr_off_t announced = 0;
    if (!cl || apr_strtoff(&announced, cl, NULL, 10) != APR_SUCCESS)
        announced = 0;
    if ((apr_uint64_t)announced > (apr_uint64_t)max)
        return HTTP_REQUEST_ENTITY_TOO_LARGE; /* unread: httpd discards it after the answer */
    cap = first_capacity(announced, max);
    char *out = apr_palloc(r->pool, cap + 1);

    do {
        apr_status_t rv = ap_get_brigade(r->input_filters, bb, AP_MODE_READBYTES,
                                         APR_BLOCK_READ, 64 * 1024);
        if (rv != APR_SUCCESS)
            return ap_map_http_request_error(rv, HTTP_BAD_REQUEST);
        for (apr_bucket *b = APR_BRIGADE_FIRST(bb); b != APR_BRIGADE_SENTINEL(bb);
             b = APR_BUCKET_NEXT(b)) {
            const char *data;
            apr_size_t n;
            if (APR_BUCKET_IS_EOS(b)) {
                seen_eos = 1;
                break;
            }
            if (apr_bucket_read(b, &data, &n, APR_BLOCK_READ) != APR_SUCCESS)
                return HTTP_BAD_REQUEST;
            if (n > max - total)
                return HTTP_REQUEST_ENTITY_TOO_LARGE;
            if (n > cap - total) {
                apr_size_t grown = cap;
                while (grown - total < n)
                    grown = grown > max / 2 ? max : grown * 2;
                char *bigger = apr_palloc(r->pool, grown + 1);
                memcpy(bigger, out, total);
                out = bigger;
                cap = grown;
            }
            memcpy(out + total, data, n);
            total += n;
        }
        apr_brigade_cleanup(bb);
    } while (!seen_eos);
    out[total] = '\0';
    *buf = out;
    *len = total;
    return OK;
}

int us_read_json_object(request_rec *r, apr_size_t max, int flags, json_t *errs, json_t **obj)
{
    char *buf = NULL;
    apr_size_t len = 0;
    int rc = read_small_body(r, max, &buf, &len);
    *obj = NULL;
    if (rc == HTTP_REQUEST_ENTITY_TOO_LARGE)
        return us_send_detail(r, rc, "Request body too large");
    if (rc != OK)
        return us_send_detail(r, rc, "There was an error parsing the body");
    if (len == 0 && (flags & US_JSON_BODY_OPTIONAL))
        return DECLINED;
    us_body_status st = us_validate_body_object(errs, apr_table_get(r->headers_in, "Content-Type"),
                                                buf, len,
                                                (flags & US_JSON_BODY_FEW_VALUES)
                                                    ? US_BODY_MAX_VALUES : 0,
                                                obj);
    us_json_pool_own(r->pool, *obj);
    if (st == US_BODY_TOO_LARGE)
        return us_send_detail(r, HTTP_REQUEST_ENTITY_TOO_LARGE, "Request body too large");
    if (st == US_BODY_UNPARSABLE)
        return us_send_detail(r, HTTP_BAD_REQUEST, "There was an error parsing the body");
    if (st == US_BODY_JSON_ERROR || (st == US_BODY_INVALID && !(flags & US_JSON_BODY_ITEMS_LATER)))
        return us_send_422(r, errs);
    return DECLINED;
}

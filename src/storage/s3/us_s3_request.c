/*
 * us_s3_request.c - one signed request to the store (libcurl, AWS
 * Signature V4), what its answer means (us_s3_failed, us_s3_not_found), and
 * the single-key requests every part of the backend uses: deleting a key,
 * aborting a multipart upload.
 */
#include "us_s3_request.h"
#include "us_s3_answers.h"
#include "us_sigv4.h"
#include "us_crypto.h"

#include <apr_atomic.h>
#include <apr_strings.h>
#include <curl/curl.h>

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static size_t on_body(char *data, size_t sz, size_t n, void *baton)
{
    us_s3_xfer *x = baton;
    size_t len = sz * n;
    if (x->resp) {
        if (us_buf_append(x->resp, data, len) != 0) {
            x->overflow = 1;
            return 0; /* stops the transfer */
        }
        return len;
    }
    if (x->got + len > x->cap) {
        x->overflow = 1;
        return 0; /* stops the transfer */
    }
    memcpy(x->buf + x->got, data, len);
    x->got += len;
    return len;
}

static size_t on_send(char *out, size_t sz, size_t n, void *baton)
{
    us_s3_xfer *x = baton;
    size_t len = sz * n;
    if (len > x->len - x->sent)
        len = x->len - x->sent;
    memcpy(out, x->body + x->sent, len);
    x->sent += len;
    return len;
}

static size_t on_header(char *data, size_t sz, size_t n, void *baton)
{
    us_s3_xfer *x = baton;
    size_t len = sz * n;
    if (len > 5 && strncmp(data, "HTTP/", 5) == 0) {
        /* a new answer's status line (after an interim one): its own headers only */
        x->etag = NULL;
        x->content_range = NULL;
        x->content_length = -1;
    }
    else if (len > 14 && strncasecmp(data, "content-range:", 14) == 0) {
        x->content_range = apr_pstrndup(x->p, data + 14, len - 14);
    }
    else if (len > 5 && strncasecmp(data, "etag:", 5) == 0) {
        char *v = apr_pstrndup(x->p, data + 5, len - 5);
        x->etag = us_s3_trim(v);
    }
    else if (len > 15 && strncasecmp(data, "content-length:", 15) == 0) {
        /* not a number: as if there were none (the reader refuses it) */
        if (!us_s3_parse_length(data + 15, len - 15, &x->content_length))
            x->content_length = -1;
    }
    return len;
}

/* libcurl's progress callback of a stoppable handle's request: a set stop
 * flag aborts the transfer (CURLE_ABORTED_BY_CALLBACK); called about once
 * a second while the store is silent too. */
static int stop_asked(void *clientp, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                      curl_off_t ulnow)
{
    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    return apr_atomic_read32((volatile apr_uint32_t *)clientp) != 0;
}

/* A request of a stoppable handle cut short, or not sent, because its stop
 * flag is set: logged once per handle (a stopping worker's publishes are
 * cut together). */
static apr_status_t cut(const us_storage *st, const char *method, const char *path)
{
    if (apr_atomic_cas32(st->cut_logged, 1, 0) == 0)
        us_log(st->log, US_LOG_INFO, 0, 1220, "s3 %s %s: cut short, the process is stopping; "
               "what it was for is done again later", method, path);
    return APR_EINTR;
}

/* Sends one signed request for key (NULL: the bucket) with the canonical
 * query q (or NULL) and extra headers (name, value pairs, NULL-ended; a
 * Range header among them is sent unsigned). x->status is the HTTP status;
 * APR_SUCCESS when an answer came, else why not. */
apr_status_t us_s3_send(const us_storage *st, apr_pool_t *p, const char *method,
                        const char *key, const char *q, const char *const *extra,
                        us_s3_xfer *x)
{
    const us_s3_conf *c = us_s3_conf_of(st);
    char date[20];
    time_t now = time(NULL);
    struct tm tm;
    us_sigv4_header hdr[8];
    int nh = 0;
    us_sigv4_signed sig;
    const char *path = apr_pstrcat(p, "/", c->bucket, key ? "/" : "",
                                   key ? us_sigv4_uri_encode(p, key, 1) : "", NULL);
    const char *payload = x->body && x->len ? NULL : US_SIGV4_EMPTY_SHA256;
    const char *range = NULL;
    int copies = 0;
    if (!payload) {
        unsigned char d[US_SHA256_LEN];
        char *hex = apr_palloc(p, 2 * US_SHA256_LEN + 1);
        us_sha256(x->body, x->len, d);
        for (int i = 0; i < US_SHA256_LEN; i++)
            snprintf(hex + 2 * i, 3, "%02x", d[i]);
        payload = hex;
    }
    gmtime_r(&now, &tm);
    strftime(date, sizeof(date), "%Y%m%dT%H%M%SZ", &tm);
    hdr[nh++] = (us_sigv4_header){ "host", c->host };
    hdr[nh++] = (us_sigv4_header){ "x-amz-content-sha256", payload };
    hdr[nh++] = (us_sigv4_header){ "x-amz-date", date };
    for (int i = 0; extra && extra[i] && nh < 8; i += 2) {
        if (strcasecmp(extra[i], "range") == 0)
            range = extra[i + 1];
        else
            hdr[nh++] = (us_sigv4_header){ extra[i], extra[i + 1] };
        copies |= strcasecmp(extra[i], "x-amz-copy-source") == 0;
    }
    if (st->stop && apr_atomic_read32(st->stop))
        return cut(st, method, path);
    us_sigv4_request req = { method, path, q, hdr, nh, payload };
    if (!us_sigv4_sign_request(p, &c->cred, date, &req, &sig))
        return APR_EINVAL;

    CURL *h = curl_easy_init();
    if (!h)
        return APR_ENOMEM;
    struct curl_slist *hl = NULL;
    for (int i = 1; i < nh; i++)
        hl = curl_slist_append(hl, apr_pstrcat(p, hdr[i].name, ": ", hdr[i].value, NULL));
    hl = curl_slist_append(hl, apr_pstrcat(p, "Authorization: ", sig.authorization, NULL));
    if (range)
        hl = curl_slist_append(hl, apr_pstrcat(p, "Range: ", range, NULL));
    hl = curl_slist_append(hl, "Expect:"); /* no 100-continue round trip */
    x->p = p;
    x->status = 0;
    x->content_length = -1;
    curl_easy_setopt(h, CURLOPT_URL, apr_pstrcat(p, c->endpoint, path, q ? "?" : "", q ? q : "", NULL));
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L); /* "/./" and "/../" in a key, as signed */
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 5L);
    /* a stalled store fails: in 30 s, but a copy or a completion may keep
     * the store silent far longer while it works (us_s3_stall_seconds) */
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, us_s3_stall_seconds(method, q, copies));
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    }
    else if (strcmp(method, "PUT") == 0 || strcmp(method, "POST") == 0) {
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, on_send);
        curl_easy_setopt(h, CURLOPT_READDATA, x);
        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)x->len);
        if (strcmp(method, "POST") == 0)
            curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "POST");
    }
    else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    }
    if (st->stop) {
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, stop_asked);
        curl_easy_setopt(h, CURLOPT_XFERINFODATA, (void *)st->stop);
    }
    CURLcode cc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &x->status);
    curl_slist_free_all(hl);
    curl_easy_cleanup(h);
    if (cc == CURLE_WRITE_ERROR && x->overflow)
        return APR_SUCCESS;
    if (cc == CURLE_ABORTED_BY_CALLBACK)
        return cut(st, method, path);
    if (cc != CURLE_OK) {
        us_log(st->log, US_LOG_WARN, 0, 1210, "s3 %s %s: %s", method, path, curl_easy_strerror(cc));
        /* any transport failure is an outage (us_storage_unavailable) */
        return cc == CURLE_COULDNT_CONNECT ? APR_ECONNREFUSED
               : cc == CURLE_OPERATION_TIMEDOUT ? APR_TIMEUP
               : cc == CURLE_COULDNT_RESOLVE_HOST ? APR_EHOSTUNREACH : APR_ECONNRESET;
    }
    return APR_SUCCESS;
}

/* us_s3_send with a small answer kept in *body (NUL-terminated, "" for none;
 * memory taken only as it comes). An answer larger than
 * US_S3_MAX_RESPONSE is an error (APR_INCOMPLETE): never half a listing. */
apr_status_t us_s3_call(const us_storage *st, apr_pool_t *p, const char *method,
                        const char *key, const char *q, const char *const *extra,
                        const char *send, apr_size_t send_len, long *status, char **body,
                        const char **etag)
{
    us_s3_xfer x = { 0 };
    us_buf resp;
    us_buf_init(&resp, p, US_S3_MAX_RESPONSE);
    x.body = send;
    x.len = send_len;
    x.resp = &resp;
    apr_status_t rv = us_s3_send(st, p, method, key, q, extra, &x);
    if (rv == APR_SUCCESS && x.overflow) {
        us_log(st->log, US_LOG_WARN, 0, 1210, "s3 %s %s: an answer of more than %d bytes",
               method, key ? key : "(bucket)", US_S3_MAX_RESPONSE);
        rv = APR_INCOMPLETE;
    }
    *status = x.status;
    if (body)
        *body = resp.data ? resp.data : apr_pstrdup(p, "");
    if (etag)
        *etag = x.etag;
    return rv;
}

/* An APR status for an answer that is not a 2xx; 5xx, a throttle (429) and
 * a request timeout (408) are an outage: trying again later may work. So
 * is a 404 here: a key found missing is told by us_s3_not_found (APR_ENOENT);
 * any other (the bucket gone) must not read as "no such file". A refusal
 * (401, 403) is an error, asked again only as the callers retry. Another
 * 4xx is about this request alone (us_storage_refused), but a conflict
 * (409, OperationAborted: another operation on the key is under way); so
 * is a 2xx with an error document whose code is not one to retry. Any
 * other answer (a redirect, which S3 clients do not follow for these
 * requests; none at all) is no verdict on the request: an outage. */
apr_status_t us_s3_from_http(long status)
{
    if (status == 403 || status == 401)
        return APR_EACCES;
    if (status == 429 || status == 408 || status == 404 || status == 409)
        return APR_EAGAIN;
    if ((status >= 400 && status < 500) || (status >= 200 && status < 300))
        return APR_EGENERAL;
    return APR_EAGAIN;
}

/* Error codes S3 clients are told to retry whatever the status they come
 * with (a 400 RequestTimeout; a CompleteMultipartUpload's 200 holding an
 * error document). */
static int retryable_code(const char *code)
{
    static const char *const codes[] = { "InternalError", "SlowDown", "ServiceUnavailable",
                                         "RequestTimeout" };
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
        if (!strcmp(code, codes[i]))
            return 1;
    return 0;
}

/* Error codes about the request's credentials or signature whatever the
 * status they come with (400 for some): every request would meet them. */
static int credentials_code(const char *code)
{
    static const char *const codes[] = { "ExpiredToken", "InvalidToken", "TokenRefreshRequired",
                                         "AuthorizationHeaderMalformed" };
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
        if (!strcmp(code, codes[i]))
            return 1;
    return 0;
}

/* One S3 failure, logged without credentials: the code of the error document. */
apr_status_t us_s3_failed(const us_storage *st, int msgno, const char *what, const char *key,
                          long status, const char *body)
{
    char code[64];
    us_s3_error_code(body, code, sizeof(code));
    us_log(st->log, US_LOG_WARN, 0, msgno, "s3 %s %s: HTTP %ld%s%s%s", what,
           key ? key : "(bucket)", status, *code ? " " : "", code,
           status == 403 || status == 401
               ? " (access denied: the credentials lack a permission on the bucket; AWS also "
                 "answers 403 for a missing key when they lack s3:ListBucket)"
               : "");
    return retryable_code(code) ? APR_EAGAIN : credentials_code(code) ? APR_EACCES
                                                                       : us_s3_from_http(status);
}

/* A 200 without the result its request must answer (us_s3_result_done),
 * logged: an outage, so the work is done again. */
apr_status_t us_s3_no_result(const us_storage *st, int msgno, const char *what, const char *key)
{
    us_log(st->log, US_LOG_WARN, 0, msgno, "s3 %s %s: HTTP 200 without its result document "
           "(cut short?): taken as not done", what, key);
    return APR_EAGAIN;
}

/* What a 404 answered about key means (head: to a HEAD, which carries no
 * error document; body: the document): APR_ENOENT when the key is not
 * there; else (a bucket gone, a 404 that is not the store's) logged, and
 * an outage: a file taken as gone could be marked FAILED or forgotten. */
apr_status_t us_s3_not_found(const us_storage *st, apr_pool_t *p, int msgno, const char *what,
                             const char *key, int head, const char *body)
{
    us_s3_404 k = us_s3_404_of(head, body);
    char code[64];
    us_s3_error_code(body, code, sizeof(code));
    if (k == US_S3_404_ASK) {
        long status;
        apr_status_t rv = us_s3_call(st, p, "HEAD", NULL, NULL, NULL, NULL, 0, &status, NULL, NULL);
        if (rv != APR_SUCCESS)
            return rv;
        if (status == 200)
            return APR_ENOENT;
        if (status != 404)
            return us_s3_failed(st, msgno, what, key, status, NULL);
        apr_cpystrn(code, "NoSuchBucket", sizeof(code));
    }
    else if (k == US_S3_404_KEY)
        return APR_ENOENT;
    us_log(st->log, US_LOG_WARN, 0, msgno, "s3 %s %s: HTTP 404 %s: not a missing key (is the "
           "bucket %s there, is the endpoint the store?); taken as an outage", what, key,
           *code ? code : "without an error code", us_s3_conf_of(st)->bucket);
    return APR_EAGAIN;
}

/* Deletes key; APR_ENOENT when it was not there (S3 answers a DELETE of
 * nothing with 204 too: a HEAD tells). */
apr_status_t us_s3_delete_key(const us_storage *st, apr_pool_t *p, int msgno, const char *what,
                              const char *key, int check_exists)
{
    long status;
    char *body;
    apr_status_t rv;
    if (check_exists) {
        rv = us_s3_call(st, p, "HEAD", key, NULL, NULL, NULL, 0, &status, NULL, NULL);
        if (rv == APR_SUCCESS && status == 404)
            return us_s3_not_found(st, p, msgno, what, key, 1, NULL);
        if (rv == APR_SUCCESS && status != 200)
            return us_s3_failed(st, msgno, what, key, status, NULL);
    }
    rv = us_s3_call(st, p, "DELETE", key, NULL, NULL, NULL, 0, &status, &body, NULL);
    if (rv != APR_SUCCESS) {
        us_log(st->log, US_LOG_WARN, rv, msgno, "s3 %s: cannot delete %s", what, key);
        return rv;
    }
    if (status == 404 && us_s3_404_of(0, body) == US_S3_404_KEY)
        return APR_SUCCESS;
    if (status != 204 && status != 200)
        return status == 404 ? us_s3_not_found(st, p, msgno, what, key, 0, body)
                             : us_s3_failed(st, msgno, what, key, status, body);
    return APR_SUCCESS;
}

/* Aborts the multipart upload id of key: 1 when it is gone
 * (us_s3_abort_done). A 404 that does not say so (NoSuchBucket, a 404 that
 * is not the store's) is logged as an error: the upload may be there still,
 * and a missing bucket is a misconfiguration or an outage, not a success. */
int us_s3_abort_one(const us_storage *st, apr_pool_t *p, const char *key, const char *id)
{
    long status = 0;
    char *body = NULL;
    char code[64];
    if (us_s3_call(st, p, "DELETE", key, apr_pstrcat(p, "uploadId=", us_sigv4_uri_encode(p, id, 0), NULL),
                   NULL, NULL, 0, &status, &body, NULL) != APR_SUCCESS)
        return 0;
    if (us_s3_abort_done(status, body))
        return 1;
    if (status == 404) {
        us_s3_error_code(body, code, sizeof(code));
        us_log(st->log, US_LOG_ERR, 0, 1219, "s3 aborting the multipart upload of %s: HTTP 404 "
               "%s: not a missing upload (is the bucket %s there, is the endpoint the store?); "
               "not taken as aborted", key, *code ? code : "without an error code",
               us_s3_conf_of(st)->bucket);
    }
    return 0;
}

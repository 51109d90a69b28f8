/*
 * us_s3_delete_many.c - many keys deleted in DeleteObjects requests of up
 * to US_S3_DELETE_BATCH keys, one request per key where a batch cannot go
 * (us_s3_delete_many.h).
 */
#include "us_s3_delete_many.h"
#include "us_s3_answers.h"
#include "us_s3_request.h"
#include "us_crypto.h"
#include "us_log.h"
#include "us_storage.h"

#include <apr_base64.h>
#include <apr_strings.h>

#include <string.h>

/* A key's character in the document: NULL for one XML 1.0 cannot carry. */
static const char *xml_char(unsigned char c, char one[2])
{
    switch (c) {
    case '&': return "&amp;";
    case '<': return "&lt;";
    case '>': return "&gt;";
    /* as references: a parser would turn a literal CR (or CRLF) into LF */
    case '\t': return "&#9;";
    case '\n': return "&#10;";
    case '\r': return "&#13;";
    default:
        if (c < 0x20)
            return NULL;
        one[0] = (char)c;
        one[1] = '\0';
        return one;
    }
}

const char *us_s3_delete_doc(apr_pool_t *p, const apr_array_header_t *keys, int from, int n)
{
    static const char HEAD[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
                               "<Delete><Quiet>true</Quiet>";
    static const char OPEN[] = "<Object><Key>", CLOSE[] = "</Key></Object>", TAIL[] = "</Delete>";
    char one[2];
    apr_size_t len = sizeof(HEAD) + sizeof(TAIL);
    for (int i = from; i < from + n; i++) {
        len += sizeof(OPEN) + sizeof(CLOSE);
        for (const unsigned char *k = APR_ARRAY_IDX(keys, i, const unsigned char *); *k; k++) {
            const char *x = xml_char(*k, one);
            if (!x)
                return NULL;
            len += strlen(x);
        }
    }
    char *doc = apr_palloc(p, len), *o = doc;
    o = stpcpy(o, HEAD);
    for (int i = from; i < from + n; i++) {
        o = stpcpy(o, OPEN);
        for (const unsigned char *k = APR_ARRAY_IDX(keys, i, const unsigned char *); *k; k++)
            o = stpcpy(o, xml_char(*k, one));
        o = stpcpy(o, CLOSE);
    }
    stpcpy(o, TAIL);
    return doc;
}

int us_s3_delete_failures(apr_pool_t *p, const char *body, const char **key, const char **code)
{
    *key = *code = NULL;
    const char *open = body ? strstr(body, "<DeleteResult") : NULL;
    const char *end = open ? strchr(open, '>') : NULL;
    if (!end)
        return -1;
    if (end[-1] == '/')
        return 0; /* <DeleteResult/>: nothing failed */
    /* a DeleteResult cut short says nothing of the keys past the cut */
    if (!strstr(end, "</DeleteResult>"))
        return -1;
    int failed = 0;
    const char *pos = body;
    char *err;
    while ((err = us_s3_xml_block(p, &pos, "Error"))) {
        const char *in = err;
        const char *c = us_s3_xml_next(p, &in, "Code");
        if (c && strcmp(c, "NoSuchKey") == 0)
            continue;
        if (!failed++) {
            in = err;
            *key = us_s3_xml_next(p, &in, "Key");
            *code = c;
        }
    }
    return failed;
}

/* A request the store did not answer at all, or one cut by a stop: the
 * next would fare no better. */
static int no_answer(apr_status_t rv)
{
    return rv == APR_EINTR || (us_storage_unavailable(rv) && !APR_STATUS_IS_EAGAIN(rv));
}

/* keys[from..from+n) one request each, a subpool per key; the number left
 * (*ended set once the store does not answer: the rest counted left). */
static int one_by_one(const us_storage *st, apr_pool_t *p, int msgno, const char *what,
                      const apr_array_header_t *keys, int from, int n, int *ended)
{
    int left = 0;
    apr_pool_t *one;
    apr_pool_create(&one, p);
    for (int i = from; i < from + n; i++) {
        apr_pool_clear(one);
        apr_status_t rv = us_s3_delete_key(st, one, msgno, what, APR_ARRAY_IDX(keys, i, const char *), 0);
        if (no_answer(rv)) {
            left += from + n - i;
            *ended = 1;
            break;
        }
        left += rv != APR_SUCCESS; /* an answered outage (503) leaves that key alone */
    }
    apr_pool_destroy(one);
    return left;
}

/* One DeleteObjects request of keys[from..from+n); the number left. */
static int delete_batch(const us_storage *st, apr_pool_t *p, int msgno, const char *what,
                        const apr_array_header_t *keys, int from, int n, int *ended)
{
    const char *doc = us_s3_delete_doc(p, keys, from, n);
    if (!doc)
        return one_by_one(st, p, msgno, what, keys, from, n, ended);
    apr_size_t len = strlen(doc);
    unsigned char md5[US_MD5_LEN];
    char md5_b64[32]; /* apr_base64_encode_len(16) is 25 */
    us_md5(doc, len, md5);
    apr_base64_encode(md5_b64, (const char *)md5, US_MD5_LEN);
    const char *const extra[] = { "content-md5", md5_b64, "content-type", "application/xml", NULL };
    long status = 0;
    char *body = NULL;
    apr_status_t rv = us_s3_call(st, p, "POST", NULL, "delete=", extra, doc, len, &status, &body,
                                 NULL);
    if (rv != APR_SUCCESS) {
        *ended = no_answer(rv);
        return n;
    }
    if (status == 200) {
        const char *key, *code;
        int failed = us_s3_delete_failures(p, body, &key, &code);
        if (failed > n) /* an answer naming more keys than were asked for */
            failed = n;
        if (failed < 0) {
            (void)us_s3_no_result(st, msgno, what, "(a batch of keys)");
            return n;
        }
        if (failed)
            us_log(st->log, US_LOG_WARN, 0, msgno, "s3 %s: %d of %d keys not deleted (the first: "
                   "%s, %s)", what, failed, n, key ? key : "?", code ? code : "no code");
        return failed;
    }
    /* a store without DeleteObjects (501 NotImplemented; 400 or 405 for a
     * request it does not know): each key asked on its own, with its own
     * verdict; any other answer is logged and the batch left whole */
    if (status == 501 || status == 400 || status == 405)
        return one_by_one(st, p, msgno, what, keys, from, n, ended);
    (void)us_s3_failed(st, msgno, what, "(a batch of keys)", status, body);
    return n;
}

int us_s3_key_fits_xml(const char *key)
{
    char one[2];
    for (const unsigned char *k = (const unsigned char *)key; *k; k++)
        if (!xml_char(*k, one))
            return 0;
    return 1;
}

int us_s3_delete_keys(const us_storage *st, apr_pool_t *p, int msgno, const char *what,
                      const apr_array_header_t *keys)
{
    int left = 0, ended = 0;
    /* the keys a document cannot carry, each on its own after the batches */
    apr_array_header_t *batched = apr_array_make(p, keys->nelts, sizeof(const char *));
    apr_array_header_t *alone = apr_array_make(p, 1, sizeof(const char *));
    for (int i = 0; i < keys->nelts; i++) {
        const char *k = APR_ARRAY_IDX(keys, i, const char *);
        APR_ARRAY_PUSH(us_s3_key_fits_xml(k) ? batched : alone, const char *) = k;
    }
    apr_pool_t *batch;
    apr_pool_create(&batch, p);
    for (int i = 0; i < batched->nelts && !ended; i += US_S3_DELETE_BATCH) {
        int n = batched->nelts - i < US_S3_DELETE_BATCH ? batched->nelts - i : US_S3_DELETE_BATCH;
        apr_pool_clear(batch);
        left += delete_batch(st, batch, msgno, what, batched, i, n, &ended);
        if (ended)
            left += batched->nelts - i - n;
    }
    apr_pool_destroy(batch);
    if (ended)
        return left + alone->nelts;
    return left + (alone->nelts ? one_by_one(st, p, msgno, what, alone, 0, alone->nelts, &ended) : 0);
}

/*
 * us_s3_writer.c - the s3 backend's writers. A writer keeps at most one
 * part (US_S3_PART_SIZE): a file that fits is one PUT at finish, a larger
 * one a multipart upload (parts as they fill, the last at finish,
 * CompleteMultipartUpload at commit). Either makes the object appear whole
 * under its key at once. A part is filled in memory while the process's
 * part budget (part_memory=, UploadSessionS3PartMemory) has room, else in
 * an unlinked temporary file (us_s3_spill.h), sent from a read-only map of it.
 */
#include "us_s3_writer.h"
#include "us_s3_request.h"
#include "us_s3_list.h"
#include "us_s3_aborts.h"
#include "us_s3_spill.h"
#include "us_s3_answers.h"
#include "us_sigv4.h"

#include <apr_strings.h>
#include <openssl/evp.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define FIRST_BUF (64 * 1024) /* a writer's first part buffer, grown as bytes come */

typedef struct {
    us_storage *st;
    apr_pool_t *p;
    const char *key;
    char *buf;              /* the part being filled, grown up to US_S3_PART_SIZE bytes, */
    apr_size_t fill, cap;   /* cap of them reserved from the process's budget; */
    int fd;                 /* or, past the budget, in this unlinked file (else -1) */
    long long size;
    EVP_MD_CTX *sha;
    char hex[65];
    const char *upload_id;  /* a multipart upload, once started */
    int start_unknown;      /* a start whose answer was lost: the upload may be there */
    apr_array_header_t *etags;
    apr_status_t error;     /* the first failure: every later write returns it */
    int finished, committed, gone;
    int stored;             /* the key may hold this writer's object: a PUT or a
                             * completion answered yes, or not at all */
} s3_writer;

/* Whether a request that changes an object may have been carried out: it
 * was (2xx), or its answer never came (the store may have acted before the
 * connection broke) or was a server error. Not when the store was never
 * reached, nor on a refusal (4xx). */
static int maybe_applied(apr_status_t rv, long status)
{
    if (rv != APR_SUCCESS)
        return rv != APR_ECONNREFUSED && rv != APR_EHOSTUNREACH;
    return (status >= 200 && status < 300) || status >= 500;
}

/* Aborts a multipart upload, and deletes what finish or commit may have
 * stored under the writer's key (a fresh key: nothing else is there). An
 * abort that fails is kept for the tidy (us_s3.c) to try again. */
static void discard(s3_writer *w, apr_pool_t *p)
{
    if (w->upload_id) {
        if (!us_s3_abort_one(w->st, p, w->key, w->upload_id))
            us_log(w->st->log, US_LOG_WARN, 0, 1206,
                   "abandoning an upload: cannot abort the multipart upload of %s%s", w->key,
                   us_s3_aborts_add(us_s3_conf_of(w->st)->aborts, w->key, w->upload_id)
                       ? " (tried again later)" : "");
        w->upload_id = NULL;
    }
    if (w->start_unknown) {
        /* its id never came: whatever upload the store started under this
         * fresh key is the writer's */
        int gone = 0, left = 0;
        long http = 0;
        if (us_s3_abort_uploads(w->st, p, w->key, 0, &gone, &left, &http) != APR_SUCCESS || left)
            us_log(w->st->log, US_LOG_WARN, 0, 1206, "abandoning an upload: cannot abort the "
                   "multipart upload of %s (HTTP %ld)", w->key, http);
        w->start_unknown = 0;
    }
    if (w->stored || w->committed)
        us_s3_delete_key(w->st, p, 1206, "abandoning", w->key, 0);
    w->stored = w->committed = 0;
}

/* Frees the part's memory (back to the budget) or closes its file. */
static void release_part(s3_writer *w)
{
    free(w->buf);
    w->buf = NULL;
    us_s3_budget_give(us_s3_conf_of(w->st)->parts, w->cap);
    w->cap = 0;
    if (w->fd >= 0)
        close(w->fd);
    w->fd = -1;
}

/* Moves the part filled so far into a temporary file: the budget had no
 * room for the buffer to grow. */
static apr_status_t spill(s3_writer *w)
{
    int fd = us_s3_spill_open(us_s3_conf_of(w->st)->spill_dir);
    if (fd < 0) {
        apr_status_t rv = APR_FROM_OS_ERROR(errno);
        us_log(w->st->log, US_LOG_ERR, rv, 1218, "cannot make a temporary file in %s for a "
               "part of %s (the part memory is in use)", us_s3_conf_of(w->st)->spill_dir, w->key);
        return rv;
    }
    apr_size_t fill = w->fill;
    for (apr_size_t done = 0; done < fill;) {
        ssize_t n = pwrite(fd, w->buf + done, fill - done, (off_t)done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            apr_status_t rv = n < 0 ? APR_FROM_OS_ERROR(errno) : APR_EGENERAL;
            close(fd);
            return rv;
        }
        done += (apr_size_t)n;
    }
    release_part(w);
    w->fd = fd;
    w->fill = fill;
    return APR_SUCCESS;
}

/* Appends len bytes to the spilled part. */
static apr_status_t spill_write(s3_writer *w, const char *data, apr_size_t len)
{
    while (len) {
        ssize_t n = pwrite(w->fd, data, len, (off_t)w->fill);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? APR_FROM_OS_ERROR(errno) : APR_EGENERAL;
        w->fill += (apr_size_t)n;
        data += n;
        len -= (apr_size_t)n;
    }
    return APR_SUCCESS;
}

/* The part's bytes to send: the buffer, or a read-only map of the file
 * (*map, to give to part_unmap). NULL with an error when it cannot be mapped. */
static const char *part_bytes(s3_writer *w, void **map, apr_status_t *rv)
{
    *map = NULL;
    *rv = APR_SUCCESS;
    if (w->fd < 0 || !w->fill)
        return w->buf;
    void *m = mmap(NULL, w->fill, PROT_READ, MAP_SHARED, w->fd, 0);
    if (m == MAP_FAILED) {
        *rv = APR_FROM_OS_ERROR(errno);
        return NULL;
    }
    *map = m;
    return m;
}

static void part_unmap(s3_writer *w, void *map)
{
    if (map)
        munmap(map, w->fill);
}

static apr_status_t writer_cleanup(void *data)
{
    s3_writer *w = data;
    if (!w->committed && !w->gone) {
        apr_pool_t *tmp;
        apr_pool_create_unmanaged_ex(&tmp, NULL, NULL);
        discard(w, tmp);
        apr_pool_destroy(tmp);
    }
    if (w->sha)
        EVP_MD_CTX_free(w->sha);
    w->sha = NULL;
    release_part(w);
    return APR_SUCCESS;
}

static apr_status_t open_writer(us_storage *st, apr_pool_t *p, const char *key, void **out)
{
    s3_writer *w = apr_pcalloc(p, sizeof(*w));
    w->st = st;
    w->p = p;
    w->key = key;
    w->fd = -1;
    w->sha = EVP_MD_CTX_new();
    w->etags = apr_array_make(p, 8, sizeof(const char *));
    apr_pool_cleanup_register(p, w, writer_cleanup, apr_pool_cleanup_null);
    if (!w->sha || EVP_DigestInit_ex(w->sha, EVP_sha256(), NULL) != 1)
        return APR_ENOMEM;
    if (us_s3_budget_take(us_s3_conf_of(st)->parts, FIRST_BUF)) {
        w->cap = FIRST_BUF;
        if (!(w->buf = malloc(w->cap)))
            return APR_ENOMEM;
    }
    else {
        apr_status_t rv = spill(w);
        if (rv != APR_SUCCESS)
            return rv;
    }
    *out = w;
    return APR_SUCCESS;
}

apr_status_t us_s3_upload_create(us_storage *st, apr_pool_t *p, const char *session_id,
                                 const char *blob, void **w)
{
    return open_writer(st, p, us_s3_upload_key(st, p, session_id, blob), w);
}

apr_status_t us_s3_file_create(us_storage *st, apr_pool_t *p, const char *file_id, void **w)
{
    return open_writer(st, p, us_s3_file_key(st, p, file_id), w);
}

/* Sends the buffered bytes as the next part, starting the multipart upload first. */
static apr_status_t send_part(s3_writer *w)
{
    apr_pool_t *tmp;
    long status;
    char *body;
    const char *etag = NULL;
    apr_status_t rv;
    apr_pool_create(&tmp, w->p);
    if (!w->upload_id) {
        rv = us_s3_call(w->st, tmp, "POST", w->key, "uploads=", NULL, NULL, 0, &status, &body,
                        NULL);
        const char *pos = body;
        char *id = rv == APR_SUCCESS && status == 200 ? us_s3_xml_next(w->p, &pos, "UploadId") : NULL;
        if (!id) {
            w->start_unknown = maybe_applied(rv, status);
            rv = rv != APR_SUCCESS ? rv
                                   : us_s3_failed(w->st, 1213, "starting an upload", w->key,
                                                  status, body);
            apr_pool_destroy(tmp);
            return rv;
        }
        w->upload_id = id;
    }
    const char *q = apr_psprintf(tmp, "partNumber=%d&uploadId=%s", w->etags->nelts + 1,
                                 us_sigv4_uri_encode(tmp, w->upload_id, 0));
    void *map;
    const char *bytes = part_bytes(w, &map, &rv);
    if (!bytes) {
        apr_pool_destroy(tmp);
        return rv;
    }
    rv = us_s3_call(w->st, tmp, "PUT", w->key, q, NULL, bytes, w->fill, &status, &body, &etag);
    part_unmap(w, map);
    if (rv == APR_SUCCESS && (status != 200 || !etag))
        rv = us_s3_failed(w->st, 1213, "sending a part", w->key, status, body);
    if (rv == APR_SUCCESS) {
        APR_ARRAY_PUSH(w->etags, const char *) = apr_pstrdup(w->p, etag);
        w->fill = 0;
    }
    apr_pool_destroy(tmp);
    return rv;
}

apr_status_t us_s3_write(void *wv, const char *data, apr_size_t len)
{
    s3_writer *w = wv;
    if (w->error)
        return w->error;
    if (w->finished || (!w->buf && w->fd < 0))
        return w->error = APR_EINVAL;
    EVP_DigestUpdate(w->sha, data, len);
    w->size += (long long)len;
    while (len) {
        if (w->fd < 0 && w->fill + len > w->cap && w->cap < US_S3_PART_SIZE) {
            apr_size_t cap = w->cap;
            while (cap < w->fill + len && cap < US_S3_PART_SIZE)
                cap *= 2;
            cap = cap < US_S3_PART_SIZE ? cap : US_S3_PART_SIZE;
            char *nb = NULL;
            if (us_s3_budget_take(us_s3_conf_of(w->st)->parts, cap - w->cap)) {
                if (!(nb = realloc(w->buf, cap)))
                    us_s3_budget_give(us_s3_conf_of(w->st)->parts, cap - w->cap);
            }
            if (nb) {
                w->buf = nb;
                w->cap = cap;
            }
            else if ((w->error = spill(w)) != APR_SUCCESS)
                return w->error;
        }
        apr_size_t room = (w->fd >= 0 ? US_S3_PART_SIZE : w->cap) - w->fill;
        apr_size_t n = room < len ? room : len;
        if (w->fd >= 0) {
            if ((w->error = spill_write(w, data, n)) != APR_SUCCESS)
                return w->error;
        }
        else {
            memcpy(w->buf + w->fill, data, n);
            w->fill += n;
        }
        data += n;
        len -= n;
        if (w->fill == US_S3_PART_SIZE && (w->error = send_part(w)) != APR_SUCCESS)
            return w->error;
    }
    return APR_SUCCESS;
}

/* A small file is one PUT, under its key from here on; a large one sends
 * its last part (all parts are durable in the store once answered). */
apr_status_t us_s3_finish(void *wv)
{
    s3_writer *w = wv;
    unsigned char d[EVP_MAX_MD_SIZE];
    if (w->finished)
        return w->error;
    w->finished = 1;
    if (w->sha) {
        EVP_DigestFinal_ex(w->sha, d, NULL);
        for (int i = 0; i < 32; i++)
            snprintf(w->hex + 2 * i, 3, "%02x", d[i]);
    }
    if (w->error)
        return w->error;
    if (w->upload_id) {
        if (w->fill)
            w->error = send_part(w);
    }
    else {
        long status;
        char *body;
        apr_pool_t *tmp;
        void *map;
        const char *bytes = part_bytes(w, &map, &w->error);
        apr_pool_create(&tmp, w->p);
        if (bytes || !w->fill) {
            w->error = us_s3_call(w->st, tmp, "PUT", w->key, NULL, NULL, bytes, w->fill, &status,
                                  &body, NULL);
            w->stored = maybe_applied(w->error, status);
            if (w->error == APR_SUCCESS && status != 200)
                w->error = us_s3_failed(w->st, 1213, "storing", w->key, status, body);
        }
        part_unmap(w, map);
        apr_pool_destroy(tmp);
    }
    release_part(w);
    return w->error;
}

apr_status_t us_s3_commit(void *wv)
{
    s3_writer *w = wv;
    if (!w->finished || w->error)
        return w->error ? w->error : APR_EINVAL;
    if (w->upload_id) {
        apr_pool_t *tmp;
        long status;
        char *body;
        apr_pool_create(&tmp, w->p);
        /* joined once: appending part by part would copy the document each time */
        apr_array_header_t *doc = apr_array_make(tmp, w->etags->nelts + 2, sizeof(const char *));
        APR_ARRAY_PUSH(doc, const char *) = "<CompleteMultipartUpload>";
        for (int i = 0; i < w->etags->nelts; i++)
            APR_ARRAY_PUSH(doc, const char *) =
                apr_psprintf(tmp, "<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>", i + 1,
                             APR_ARRAY_IDX(w->etags, i, const char *));
        APR_ARRAY_PUSH(doc, const char *) = "</CompleteMultipartUpload>";
        const char *xml = apr_array_pstrcat(tmp, doc, 0);
        apr_status_t rv = us_s3_call(w->st, tmp, "POST", w->key,
                                     apr_pstrcat(tmp, "uploadId=", us_sigv4_uri_encode(tmp, w->upload_id, 0), NULL),
                                     NULL, xml, strlen(xml), &status, &body, NULL);
        /* a 200 may still carry an error document */
        int refused = rv == APR_SUCCESS && status == 200 && strstr(body, "<Error>");
        w->stored = !refused && maybe_applied(rv, status);
        if (rv == APR_SUCCESS && (status != 200 || refused))
            rv = us_s3_failed(w->st, 1213, "completing", w->key, status, body);
        else if (rv == APR_SUCCESS && !us_s3_result_done(status, body))
            rv = us_s3_no_result(w->st, 1213, "completing", w->key);
        apr_pool_destroy(tmp);
        if (rv != APR_SUCCESS) {
            w->error = rv;
            return rv; /* the upload is aborted when the pool goes */
        }
        w->upload_id = NULL;
    }
    w->committed = 1;
    return APR_SUCCESS;
}

void us_s3_abandon(void *wv)
{
    s3_writer *w = wv;
    if (w->gone)
        return;
    discard(w, w->p);
    w->gone = 1;
}

long long us_s3_writer_size(const void *w) { return ((const s3_writer *)w)->size; }
const char *us_s3_writer_sha256_hex(const void *w) { return ((const s3_writer *)w)->hex; }

const char *us_s3_writer_where(const void *wv)
{
    const s3_writer *w = wv;
    const us_s3_conf *c = us_s3_conf_of(w->st);
    return apr_pstrcat(w->p, "s3://", c->bucket, "/", w->key, NULL);
}

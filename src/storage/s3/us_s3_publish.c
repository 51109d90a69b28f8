/*
 * us_s3_publish.c - publishing an upload as a workspace file: CopyObject
 * (in parts, UploadPartCopy, above CopyObject's 5 GiB) pinned to the listed
 * version, then DeleteObject of the source. A replay after a crash between
 * the two finds the source still there and copies the same bytes again.
 */
#include "us_s3_publish.h"
#include "us_s3_request.h"
#include "us_s3_aborts.h"
#include "us_s3_parts.h"
#include "us_s3_answers.h"
#include "us_sigv4.h"

#include <apr_strings.h>

#include <string.h>

/* Above CopyObject's limit (5 GiB) a publish copies in parts (UploadPartCopy)
 * of US_S3_COPY_PART bytes. The unit tests' build lowers both (Makefile) to
 * copy a few MiB in parts; S3 wants every part but the last >= 5 MiB. */
#ifndef US_S3_COPY_LIMIT
#define US_S3_COPY_LIMIT (5LL * 1024 * 1024 * 1024)
#endif
#ifndef US_S3_COPY_PART
#define US_S3_COPY_PART (512LL * 1024 * 1024)
#endif

/* The answer to a copy (or a part's copy) the source refused, 412 (the
 * listed version was replaced) or 404 (gone): the destination there means
 * an earlier run of this batch published it; absent, APR_ENOENT. */
static apr_status_t published_before(us_storage *st, apr_pool_t *p, const char *dst)
{
    long status;
    apr_status_t rv = us_s3_call(st, p, "HEAD", dst, NULL, NULL, NULL, 0, &status, NULL, NULL);
    if (rv != APR_SUCCESS)
        return rv;
    return status == 200 ? APR_SUCCESS
           : status == 404 ? us_s3_not_found(st, p, 1215, "publishing", dst, 1, NULL)
                           : us_s3_from_http(status);
}

/* Aborts the multipart upload id of key; what cannot be aborted is logged
 * and kept for the tidy (us_s3.c). Never cut short, even on a stoppable
 * handle: the abort is what a cut copy in parts leaves to do, one request. */
static void abort_upload(us_storage *st, apr_pool_t *p, const char *key, const char *id)
{
    us_storage whole = *st;
    whole.stop = NULL;
    if (!us_s3_abort_one(&whole, p, key, id))
        us_log(st->log, US_LOG_WARN, 0, 1217,
               "s3 publishing in parts: cannot abort the multipart upload of %s%s", key,
               us_s3_aborts_add(us_s3_conf_of(st)->aborts, key, id) ? " (tried again later)" : "");
}

/* Whether key still holds the version etag (NULL: any): a HEAD with
 * If-Match. APR_SUCCESS, APR_ENOENT when replaced (412) or gone (404). */
static apr_status_t still_listed(us_storage *st, apr_pool_t *p, const char *key, const char *etag)
{
    long status;
    const char *extra[] = { "if-match", etag, NULL };
    if (!etag)
        return APR_SUCCESS;
    apr_status_t rv = us_s3_call(st, p, "HEAD", key, NULL, extra, NULL, 0, &status, NULL, NULL);
    if (rv != APR_SUCCESS)
        return rv;
    return status == 200 ? APR_SUCCESS
           : status == 412   ? APR_ENOENT
           : status == 404   ? us_s3_not_found(st, p, 1216, "publishing in parts", key, 1, NULL)
                             : us_s3_from_http(status);
}

/* Copies src to dst in parts (CreateMultipartUpload, UploadPartCopy per
 * range, CompleteMultipartUpload), each part pinned to etag as the single
 * copy is; any failure aborts the upload. Ceph's radosgw ignores both
 * conditions on a part, so the source is also checked to hold etag before
 * the first part and again after the last one, before the upload is
 * completed. APR_SUCCESS once dst is complete; *refused 1 when the source
 * refused (412, 404): the caller tells a replay from a replaced source. */
static apr_status_t copy_in_parts(us_storage *st, apr_pool_t *p, const char *src,
                                  const char *copy_source, const char *dst, const char *etag,
                                  long long size, int *refused)
{
    long status;
    char *body;
    const char *pos;
    *refused = 0;
    apr_status_t rv = still_listed(st, p, src, etag);
    if (rv != APR_SUCCESS) {
        *refused = APR_STATUS_IS_ENOENT(rv);
        return rv;
    }
    rv = us_s3_call(st, p, "POST", dst, "uploads=", NULL, NULL, 0, &status, &body, NULL);
    if (rv != APR_SUCCESS)
        return rv;
    pos = body;
    const char *id = status == 200 ? us_s3_xml_next(p, &pos, "UploadId") : NULL;
    if (!id)
        return us_s3_failed(st, 1216, "publishing in parts: starting", dst, status, body);
    const char *uid = us_sigv4_uri_encode(p, id, 0);
    apr_array_header_t *ranges = us_s3_part_ranges(p, size, US_S3_COPY_PART);
    /* the CompleteMultipartUpload document, one element per part */
    apr_array_header_t *xml = apr_array_make(p, ranges->nelts + 2, sizeof(const char *));
    APR_ARRAY_PUSH(xml, const char *) = "<CompleteMultipartUpload>";
    apr_pool_t *tmp;
    apr_pool_create(&tmp, p);
    for (int i = 0; rv == APR_SUCCESS && i < ranges->nelts; i++) {
        const us_s3_range *r = &APR_ARRAY_IDX(ranges, i, us_s3_range);
        apr_pool_clear(tmp);
        const char *extra[] = { "x-amz-copy-source", copy_source,
                                "x-amz-copy-source-range",
                                apr_psprintf(tmp, "bytes=%" APR_INT64_T_FMT "-%" APR_INT64_T_FMT,
                                             (apr_int64_t)r->first, (apr_int64_t)r->last),
                                etag ? "x-amz-copy-source-if-match" : NULL, etag,
                                "x-amz-copy-if-match", etag, NULL };
        const char *q = apr_psprintf(tmp, "partNumber=%d&uploadId=%s", i + 1, uid);
        rv = us_s3_call(st, tmp, "PUT", dst, q, extra, NULL, 0, &status, &body, NULL);
        if (rv != APR_SUCCESS)
            break;
        pos = body;
        /* the part's ETag is in its CopyPartResult document, not a header */
        const char *part_etag = status == 200 && !strstr(body, "<Error>")
                                    ? us_s3_xml_next(tmp, &pos, "ETag") : NULL;
        if (!part_etag) {
            /* the source's answer (a 404 about the upload or the bucket is not) */
            *refused = status == 412 || (status == 404 && us_s3_404_of(0, body) == US_S3_404_KEY);
            rv = *refused ? APR_ENOENT
                          : us_s3_failed(st, 1216, "publishing in parts: copying a part", dst,
                                         status, body);
            break;
        }
        APR_ARRAY_PUSH(xml, const char *) =
            apr_psprintf(p, "<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>", i + 1,
                         part_etag);
    }
    if (rv == APR_SUCCESS && (rv = still_listed(st, p, src, etag)) != APR_SUCCESS)
        *refused = APR_STATUS_IS_ENOENT(rv);
    if (rv == APR_SUCCESS) {
        APR_ARRAY_PUSH(xml, const char *) = "</CompleteMultipartUpload>";
        const char *doc = apr_array_pstrcat(p, xml, 0);
        rv = us_s3_call(st, p, "POST", dst, apr_pstrcat(p, "uploadId=", uid, NULL), NULL, doc,
                        strlen(doc), &status, &body, NULL);
        /* a 200 may still carry an error document */
        if (rv == APR_SUCCESS && (status != 200 || strstr(body, "<Error>")))
            rv = us_s3_failed(st, 1216, "publishing in parts: completing", dst, status, body);
        else if (rv == APR_SUCCESS && !us_s3_result_done(status, body))
            rv = us_s3_no_result(st, 1216, "publishing in parts: completing", dst);
    }
    apr_pool_destroy(tmp);
    if (rv != APR_SUCCESS)
        abort_upload(st, p, dst, id);
    return rv;
}

apr_status_t us_s3_publish(us_storage *st, apr_pool_t *p, const char *session_id,
                           const char *blob, const char *file_id, const char *etag,
                           long long size, int *moved)
{
    const us_s3_conf *c = us_s3_conf_of(st);
    const char *src = us_s3_upload_key(st, p, session_id, blob);
    const char *dst = us_s3_file_key(st, p, file_id);
    const char *copy_source =
        apr_pstrcat(p, "/", c->bucket, "/", us_sigv4_uri_encode(p, src, 1), NULL);
    apr_status_t rv;
    *moved = 0;
    if (size > US_S3_COPY_LIMIT) {
        int refused = 0;
        rv = copy_in_parts(st, p, src, copy_source, dst, etag, size, &refused);
        if (refused)
            return published_before(st, p, dst);
        if (rv != APR_SUCCESS)
            return rv;
    }
    else {
        /* pinned to the listed version: an object replaced after the listing
         * is a late one, never published under this file's id. Ceph's radosgw
         * reads the condition as x-amz-copy-if-match, AWS as
         * x-amz-copy-source-if-match: both are sent, each ignores the other. */
        const char *extra[] = { "x-amz-copy-source", copy_source,
                                etag ? "x-amz-copy-source-if-match" : NULL, etag,
                                "x-amz-copy-if-match", etag, NULL };
        long status;
        char *body;
        rv = us_s3_call(st, p, "PUT", dst, NULL, extra, NULL, 0, &status, &body, NULL);
        if (rv != APR_SUCCESS)
            return rv;
        /* the source is gone, or (412) replaced: moved by an earlier run of this batch? */
        if ((status == 404 && us_s3_404_of(0, body) == US_S3_404_KEY) || status == 412)
            return published_before(st, p, dst);
        if (status == 404)
            return us_s3_not_found(st, p, 1215, "publishing", src, 0, body);
        if (status != 200 || strstr(body, "<Error>"))
            return us_s3_failed(st, 1215, "publishing", dst, status, body);
        if (!us_s3_result_done(status, body)) /* the source stays */
            return us_s3_no_result(st, 1215, "publishing", dst);
    }
    rv = us_s3_delete_key(st, p, 1215, "publishing", src, 0);
    if (rv != APR_SUCCESS)
        return rv; /* both are there: a replay copies again and deletes */
    *moved = 1;
    return APR_SUCCESS;
}

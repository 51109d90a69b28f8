/*
 * us_s3.c - the s3 storage backend: files as objects in one bucket of an
 * S3-compatible object store (AWS S3, Ceph radosgw), path-style requests
 * through libcurl, each signed with AWS Signature V4. The key layout
 * (us_s3_conf.h; PREFIX/ omitted when no prefix is set):
 *   PREFIX/sessions/<session_id>/<blob>   a session's uploads
 *   PREFIX/files/<file_id>                workspace files
 *   PREFIX/.check/<pid>.<thread>          the health probe (written, deleted)
 * This file is the backend's table and what runs at startup and on
 * removal; the rest is in the files it includes:
 *   us_s3_conf      configuration, the layout
 *   us_s3_request   one signed request, its answer judged; delete, abort
 *   us_s3_writer    writers (one PUT, or a multipart upload)
 *   us_s3_reader    ranged reads, small objects whole
 *   us_s3_publish   copy-then-delete publishing
 *   us_s3_list      listings, page by page
 * Credentials and signatures are never logged.
 */
#include "us_storage_backend.h"
#include "us_s3_conf.h"
#include "us_s3_request.h"
#include "us_s3_list.h"
#include "us_s3_writer.h"
#include "us_s3_reader.h"
#include "us_s3_publish.h"
#include "us_s3_aborts.h"
#include "us_s3_late.h"
#include "us_s3_delete_many.h"

#include <apr_portable.h>
#include <apr_strings.h>

#include <string.h>
#include <unistd.h>

#ifndef US_S3_STALE_UPLOAD_AGE /* an unfinished multipart upload older is a dead writer's */
#define US_S3_STALE_UPLOAD_AGE (24 * 3600)
#endif

/* The bucket exists (created when it does not). */
static apr_status_t s3_prepare(us_storage *st, apr_pool_t *p)
{
    long status;
    char *body;
    apr_status_t rv = us_s3_call(st, p, "HEAD", NULL, NULL, NULL, NULL, 0, &status, NULL, NULL);
    if (rv != APR_SUCCESS || status == 200)
        return rv;
    if (status != 404)
        return us_s3_failed(st, 1212, "bucket", NULL, status, NULL);
    rv = us_s3_call(st, p, "PUT", NULL, NULL, NULL, NULL, 0, &status, &body, NULL);
    if (rv == APR_SUCCESS && status != 200 && !(status == 409 && strstr(body, "BucketAlreadyOwnedByYou")))
        return us_s3_failed(st, 1212, "creating bucket", NULL, status, body);
    return rv;
}

/* A zero-byte object written and deleted: the store answers and takes writes. */
static apr_status_t s3_check(us_storage *st, apr_pool_t *p)
{
    long status;
    char *body;
    apr_os_thread_t me = apr_os_thread_current();
    const char *key = apr_psprintf(p, "%s.check/%ld.%lx", us_s3_conf_of(st)->prefix, (long)getpid(),
                                   (unsigned long)me);
    apr_status_t rv = us_s3_call(st, p, "PUT", key, NULL, NULL, NULL, 0, &status, &body, NULL);
    if (rv != APR_SUCCESS)
        return rv;
    if (status != 200)
        return us_s3_from_http(status);
    rv = us_s3_call(st, p, "DELETE", key, NULL, NULL, NULL, 0, &status, &body, NULL);
    if (rv != APR_SUCCESS)
        return rv;
    return status == 204 || status == 200 ? APR_SUCCESS : us_s3_from_http(status);
}

/* Aborts the multipart uploads under the prefix's sessions/ and files/
 * started more than US_S3_STALE_UPLOAD_AGE ago: a live writer finishes well
 * within it. Only there: with no prefix, the rest of a shared bucket is
 * other programs'. */
static int s3_recover(us_storage *st, apr_pool_t *p)
{
    const us_s3_conf *c = us_s3_conf_of(st);
    static const char *const ROOTS[] = { "sessions/", "files/" };
    int removed = 0;
    for (int i = 0; i < 2; i++) {
        int aborted = 0, left = 0;
        long status = 0;
        if (us_s3_abort_uploads(st, p, apr_pstrcat(p, c->prefix, ROOTS[i], NULL),
                                US_S3_STALE_UPLOAD_AGE, &aborted, &left, &status) != APR_SUCCESS)
            us_log(st->log, US_LOG_WARN, 0, 1202, "startup sweep: cannot list the unfinished "
                   "multipart uploads of bucket %s (HTTP %ld)", c->bucket, status);
        if (left)
            us_log(st->log, US_LOG_WARN, 0, 1202, "startup sweep: %d unfinished multipart "
                   "upload(s) under %s%s could not be aborted", left, c->prefix, ROOTS[i]);
        removed += aborted;
    }
    if (removed)
        us_log(st->log, US_LOG_INFO, 0, 1201,
               "removed %d unfinished multipart upload(s) left by interrupted uploads in bucket %s",
               removed, c->bucket);
    return removed;
}

/* Aborts again the multipart uploads whose abandon could not; those the
 * store still refuses are kept for the next round. */
static void s3_tidy(us_storage *st, apr_pool_t *p)
{
    us_s3_abort *list = us_s3_aborts_take(us_s3_conf_of(st)->aborts);
    int done = 0;
    for (us_s3_abort *e = list; e; e = e->next) {
        if (us_s3_abort_one(st, p, e->key, e->upload_id))
            done++;
        else if (!us_s3_aborts_add(us_s3_conf_of(st)->aborts, e->key, e->upload_id))
            us_log(st->log, US_LOG_WARN, 0, 1206, "cannot abort the multipart upload of %s: "
                   "left to the startup sweep", e->key);
    }
    us_s3_aborts_free(list);
    if (done)
        us_log(st->log, US_LOG_INFO, 0, 1201,
               "aborted %d multipart upload(s) that abandoned uploads left in bucket %s", done,
               us_s3_conf_of(st)->bucket);
}

/* Where a writer spills its parts (us_s3_writer.c): checked at startup as httpd's User. */
static const char *s3_temp_dir(const us_storage *st)
{
    return us_s3_conf_of(st)->spill_dir;
}

/* An answered PUT, copy or complete is durable in the store. */
static apr_status_t s3_publish_sync(us_storage *st, apr_pool_t *p)
{
    (void)st;
    (void)p;
    return APR_SUCCESS;
}

static apr_status_t s3_upload_delete(us_storage *st, apr_pool_t *p, const char *session_id,
                                     const char *blob)
{
    return us_s3_delete_key(st, p, 1205, "deleting a replaced upload",
                            us_s3_upload_key(st, p, session_id, blob), 1);
}

static apr_status_t s3_file_delete(us_storage *st, apr_pool_t *p, const char *file_id)
{
    return us_s3_delete_key(st, p, 1204, "deleting a workspace file",
                            us_s3_file_key(st, p, file_id), 1);
}

static int s3_session_clear(us_storage *st, apr_pool_t *p, const char *session_id)
{
    apr_array_header_t *keys = apr_array_make(p, 16, sizeof(const char *));
    const char *prefix = us_s3_session_prefix(st, p, session_id);
    if (us_s3_list_keys(st, p, prefix, keys) != APR_SUCCESS) {
        us_log(st->log, US_LOG_WARN, 0, 1203, "clearing session %s: cannot list its uploads", session_id);
        return 1;
    }
    return us_s3_delete_keys(st, p, 1203, "clearing a session", keys);
}

/* No writer of the session is alive: its multipart uploads are dead ones'. */
static int s3_session_clear_late(us_storage *st, apr_pool_t *p, const char *session_id)
{
    int aborted = 0, left = 0;
    long status = 0;
    apr_status_t rv = us_s3_abort_uploads(st, p, us_s3_session_prefix(st, p, session_id), 0,
                                          &aborted, &left, &status);
    us_s3_uploads_outcome o = us_s3_uploads_outcome_of(status ? APR_SUCCESS : rv, status);
    if (o == US_S3_UPLOADS_REFUSED)
        us_s3_uploads_refused(st, status);
    else if (o == US_S3_UPLOADS_FAILED) {
        us_log(st->log, US_LOG_WARN, 0, 1203, "clearing session %s: cannot list its unfinished "
               "multipart uploads (HTTP %ld)", session_id, status);
        left++;
    }
    else if (left)
        us_log(st->log, US_LOG_WARN, 0, 1203, "clearing session %s: %d unfinished multipart "
               "upload(s) could not be aborted", session_id, left);
    return left + s3_session_clear(st, p, session_id);
}

static apr_status_t s3_post_target(us_storage *st, apr_pool_t *p, const char *session_id,
                                   us_storage_post_target *out)
{
    const us_s3_conf *c = us_s3_conf_of(st);
    out->url = apr_pstrcat(p, c->endpoint, "/", c->bucket, NULL);
    out->bucket = c->bucket;
    out->key_prefix = us_s3_session_prefix(st, p, session_id);
    out->cred = c->cred;
    return APR_SUCCESS;
}

/* Publishes of one batch in flight at once: each is two or three round trips
 * that mostly wait on the store; 16 keep radosgw busy without a burst of
 * connections per ingest worker. */
#define PUBLISH_WIDTH 16

const us_storage_backend us_s3_storage = {
    .name = "s3",
    .publish_width = PUBLISH_WIDTH,
    .max_object_size = (long long)US_S3_MAX_PARTS * US_S3_PART_SIZE,
    .configure = us_s3_configure,
    .prepare = s3_prepare,
    .check = s3_check,
    .recover = s3_recover,
    .tidy = s3_tidy,
    .temp_dir = s3_temp_dir,
    .upload_create = us_s3_upload_create,
    .file_create = us_s3_file_create,
    .write = us_s3_write,
    .finish = us_s3_finish,
    .commit = us_s3_commit,
    .abandon = us_s3_abandon,
    .writer_size = us_s3_writer_size,
    .writer_sha256_hex = us_s3_writer_sha256_hex,
    .writer_where = us_s3_writer_where,
    .file_open = us_s3_file_open,
    .read_at = us_s3_read_at,
    .upload_read = us_s3_upload_read,
    .file_read = us_s3_file_read,
    .publish = us_s3_publish,
    .publish_sync = s3_publish_sync,
    .upload_delete = s3_upload_delete,
    .file_delete = s3_file_delete,
    .session_clear = s3_session_clear,
    .session_clear_late = s3_session_clear_late,
    .sessions_holding = us_s3_sessions_holding,
    .session_list = us_s3_session_list,
    .session_objects = us_s3_session_objects,
    .files_page = us_s3_files_page,
    .post_target = s3_post_target,
};

/*
 * us_s3_writer.h - the s3 backend's writers (us_storage_backend.h's
 * upload_create ... writer_where).
 */
#ifndef US_S3_WRITER_H
#define US_S3_WRITER_H

#include "us_s3_conf.h"

#define US_S3_PART_SIZE (8 * 1024 * 1024) /* the multipart threshold and part size */
#define US_S3_MAX_PARTS 10000             /* S3's limit for one multipart upload */

apr_status_t us_s3_upload_create(us_storage *st, apr_pool_t *p, const char *session_id,
                                 const char *blob, void **w);
apr_status_t us_s3_file_create(us_storage *st, apr_pool_t *p, const char *file_id, void **w);
apr_status_t us_s3_write(void *w, const char *data, apr_size_t len);
apr_status_t us_s3_finish(void *w);
apr_status_t us_s3_commit(void *w);
void us_s3_abandon(void *w);
long long us_s3_writer_size(const void *w);
const char *us_s3_writer_sha256_hex(const void *w);
const char *us_s3_writer_where(const void *w);

#endif

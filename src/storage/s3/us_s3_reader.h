/*
 * us_s3_reader.h - reading the s3 backend's objects (us_storage_backend.h's
 * file_open, read_at, upload_read, file_read).
 */
#ifndef US_S3_READER_H
#define US_S3_READER_H

#include "us_s3_conf.h"

apr_status_t us_s3_file_open(us_storage *st, apr_pool_t *p, const char *file_id, void **r,
                             apr_off_t *size, apr_file_t **local);
apr_status_t us_s3_read_at(void *r, apr_off_t off, char *buf, apr_size_t *len);
apr_status_t us_s3_upload_read(us_storage *st, apr_pool_t *p, const char *session_id,
                               const char *blob, apr_size_t max, char **data, apr_size_t *len);
apr_status_t us_s3_file_read(us_storage *st, apr_pool_t *p, const char *file_id,
                             apr_size_t max, char **data, apr_size_t *len);

#endif

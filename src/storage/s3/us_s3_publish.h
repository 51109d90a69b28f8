/*
 * us_s3_publish.h - publishing an upload as a workspace file
 * (us_storage_backend.h's publish).
 */
#ifndef US_S3_PUBLISH_H
#define US_S3_PUBLISH_H

#include "us_s3_conf.h"

apr_status_t us_s3_publish(us_storage *st, apr_pool_t *p, const char *session_id,
                           const char *blob, const char *file_id, const char *etag,
                           long long size, int *moved);

#endif

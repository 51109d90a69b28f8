/*
 * us_s3_list.h - the s3 backend's listings, page by page.
 */
#ifndef US_S3_LIST_H
#define US_S3_LIST_H

#include "us_s3_request.h"

/* The objects under prefix (every page of ListObjectsV2), appended to
 * objects (us_storage_object, blob = the whole key). */
apr_status_t us_s3_list_objects(const us_storage *st, apr_pool_t *p, const char *prefix,
                                apr_array_header_t *objects);

/* The keys under prefix, appended to keys (const char *). */
apr_status_t us_s3_list_keys(const us_storage *st, apr_pool_t *p, const char *prefix,
                             apr_array_header_t *keys);

/* Aborts the multipart uploads under prefix started at least min_age
 * seconds ago: *aborted of them, *left that could not be; not APR_SUCCESS
 * when a page could not be listed (*http: its status, 0 without an answer). */
apr_status_t us_s3_abort_uploads(us_storage *st, apr_pool_t *p, const char *prefix,
                                 time_t min_age, int *aborted, int *left, long *http);

/* Logs, once per process, that the store refuses ListMultipartUploads. */
void us_s3_uploads_refused(const us_storage *st, long status);

/* The backend's sessions_holding, session_list, session_objects and
 * files_page (us_storage_backend.h). */
apr_status_t us_s3_sessions_holding(us_storage *st, apr_pool_t *p, apr_hash_t **ids);
apr_status_t us_s3_session_list(us_storage *st, apr_pool_t *p, const char *session_id,
                                apr_array_header_t **blobs);
apr_status_t us_s3_session_objects(us_storage *st, apr_pool_t *p, const char *session_id,
                                   apr_array_header_t **objects);
apr_status_t us_s3_files_page(us_storage *st, apr_pool_t *p, const char *after, int limit,
                              apr_array_header_t **files, const char **next);

#endif

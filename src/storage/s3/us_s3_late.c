/*
 * us_s3_late.c - the last clear's reading of the store's answers
 * (us_s3_late.h).
 */
#include "us_s3_late.h"

#include <apr_strings.h>
#include <string.h>

us_s3_uploads_outcome us_s3_uploads_outcome_of(apr_status_t rv, long status)
{
    if (rv != APR_SUCCESS)
        return US_S3_UPLOADS_FAILED;
    if (status == 200)
        return US_S3_UPLOADS_LISTED;
    /* asking again gets the same answer: what is left is for the
     * bucket's lifecycle rule (AbortIncompleteMultipartUpload) */
    if (status == 403 || status == 501)
        return US_S3_UPLOADS_REFUSED;
    return US_S3_UPLOADS_FAILED;
}

void us_s3_add_session_of(apr_pool_t *p, apr_hash_t *ids, const char *root, const char *key)
{
    size_t n = strlen(root);
    if (!key || strncmp(key, root, n) != 0)
        return;
    const char *id = key + n, *slash = strchr(id, '/');
    if (!slash || slash == id || apr_hash_get(ids, id, slash - id))
        return;
    const char *s = apr_pstrndup(p, id, (apr_size_t)(slash - id));
    apr_hash_set(ids, s, APR_HASH_KEY_STRING, s);
}

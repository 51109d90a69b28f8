/*
 * us_s3_aborts.h - the multipart uploads a writer's abandon could not abort
 * (the store was away): kept in the process, at most US_S3_ABORTS_MAX, for
 * the ingest worker's tidy to try again. A list shared by the threads of
 * one process behind a mutex; entries are malloc'd, owned by no pool, so a
 * request thread adds and a background thread takes them.
 */
#ifndef US_S3_ABORTS_H
#define US_S3_ABORTS_H

#include <apr_pools.h>

#define US_S3_ABORTS_MAX 1024

typedef struct us_s3_aborts us_s3_aborts;

typedef struct us_s3_abort {
    struct us_s3_abort *next;
    char *key, *upload_id;
} us_s3_abort;

/* An empty list (its mutex in p; NULL when none can be made). */
us_s3_aborts *us_s3_aborts_create(apr_pool_t *p);

/* Keeps key's upload id; 0 when the list is full (or a is NULL, or no
 * memory): the startup sweep is then the one left to abort it. */
int us_s3_aborts_add(us_s3_aborts *a, const char *key, const char *upload_id);

/* Takes every entry out: the caller owns the list (us_s3_aborts_free). */
us_s3_abort *us_s3_aborts_take(us_s3_aborts *a);

void us_s3_aborts_free(us_s3_abort *list);

#endif

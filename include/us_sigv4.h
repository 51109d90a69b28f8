/*
 * us_sigv4.h - AWS Signature Version 4 for an S3-compatible object store:
 * the Authorization header of a request, presigned URLs and S3 POST
 * policies. Pure: APR + OpenSSL (through us_crypto). Request signing is
 * in src/util/ (the storage backends sign with it); the POST policy, built
 * on us_policy, in src/core/us_sigv4_post.c.
 *
 * Dates are x-amz-date strings, 20130524T000000Z (us_policy_amz_date makes
 * one from an apr_time_t); the scope's day is their first 8 characters.
 */
#ifndef US_SIGV4_H
#define US_SIGV4_H

#include <apr_pools.h>
#include <apr_time.h>

#include "us_policy.h"

#define US_SIGV4_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"
/* SHA-256 of no bytes, the payload hash of a request without a body */
#define US_SIGV4_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

typedef struct {
    const char *access_key;
    const char *secret_key;
    const char *region;   /* us-east-1 */
    const char *service;  /* s3 */
} us_sigv4_credentials;

typedef struct {
    const char *name;     /* any case: signed lower-cased */
    const char *value;    /* signed trimmed, inner runs of spaces as one */
} us_sigv4_header;

typedef struct {
    const char *method;   /* GET */
    const char *path;     /* as sent, percent-encoded (us_sigv4_uri_encode): "/bucket/a%20b" */
    const char *query;    /* as sent without '?', or NULL; signed in canonical order */
    const us_sigv4_header *headers; /* every header to sign; host among them */
    int nheaders;
    const char *payload_hash; /* hex SHA-256 of the body, or US_SIGV4_UNSIGNED_PAYLOAD */
} us_sigv4_request;

typedef struct {
    const char *canonical_request;
    const char *string_to_sign;
    const char *signed_headers;  /* host;x-amz-content-sha256;x-amz-date */
    const char *signature;       /* 64 hex digits */
    const char *authorization;   /* the Authorization header's value */
} us_sigv4_signed;

/* s with every byte but A-Z a-z 0-9 - . _ ~ as %XX (upper-case hex); '/'
 * kept when keep_slash (an object key in a path). */
const char *us_sigv4_uri_encode(apr_pool_t *p, const char *s, int keep_slash);

/* The credential scope of amz_date: 20130524/us-east-1/s3/aws4_request */
const char *us_sigv4_scope(apr_pool_t *p, const us_sigv4_credentials *c, const char *amz_date);

/* The hex signature of string_to_sign under the key derived from the
 * secret, the day of amz_date, the region and the service; "" when
 * OpenSSL failed. */
const char *us_sigv4_signature(apr_pool_t *p, const us_sigv4_credentials *c,
                               const char *amz_date, const char *string_to_sign);

/* Signs req at amz_date; the caller sends x-amz-date (and, for S3,
 * x-amz-content-sha256) among req's headers. 1, or 0 when a header name
 * or the query is malformed or amz_date is not 16 characters. */
int us_sigv4_sign_request(apr_pool_t *p, const us_sigv4_credentials *c, const char *amz_date,
                          const us_sigv4_request *req, us_sigv4_signed *out);

/* A presigned URL's query for method on host + path (encoded as in
 * us_sigv4_request), valid expires_s seconds from amz_date: extra_query
 * (or NULL) followed by the X-Amz-* parameters, X-Amz-Signature last.
 * NULL when us_sigv4_sign_request would fail. */
const char *us_sigv4_presign_query(apr_pool_t *p, const us_sigv4_credentials *c,
                                   const char *amz_date, const char *method,
                                   const char *host, const char *path,
                                   const char *extra_query, long expires_s);

/* The form fields of an S3 POST upload into bucket under key_prefix (see
 * us_policy_document for the conditions), expiring at expires, signed now:
 * key = key_prefix + "${filename}", x-amz-credential of c's access key
 * and scope, the signature with c's derived key. */
void us_sigv4_post_policy(apr_pool_t *p, const us_sigv4_credentials *c, const char *bucket,
                          const char *key_prefix, apr_time_t expires, long long max_bytes,
                          apr_time_t now, us_policy_fields *out);

#endif

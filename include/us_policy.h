/*
 * us_policy.h - S3-style POST policies for the upload target: a base64 JSON
 * policy (expiry, key prefix, content-length range) and its HMAC-SHA256
 * signature under the server secret. Pure: APR + jansson + OpenSSL.
 */
#ifndef US_POLICY_H
#define US_POLICY_H

#include <apr_pools.h>
#include <apr_time.h>
#include <stddef.h>

#define US_POLICY_ALGORITHM "AWS4-HMAC-SHA256"

typedef struct {
    const char *key;        /* prefix + "${filename}" */
    const char *policy;     /* base64 of the policy document */
    const char *algorithm;
    const char *credential;
    const char *date;       /* 20261128T100000Z */
    const char *signature;  /* hex HMAC-SHA256(secret, policy) */
} us_policy_fields;

void us_policy_sign(apr_pool_t *p, const unsigned char *secret, size_t secretlen,
                    const char *key_prefix, apr_time_t expires,
                    long long max_bytes, apr_time_t now, us_policy_fields *out);

typedef struct {
    apr_time_t expiration;
    const char *key_prefix;   /* from ["starts-with", "$key", prefix] */
    long long min_bytes;      /* content-length-range */
    long long max_bytes;
} us_policy_doc;

typedef enum {
    US_POLICY_OK = 0,
    US_POLICY_MISSING,        /* no policy or no signature field */
    US_POLICY_BAD_SIGNATURE,  /* signature does not match the policy */
    US_POLICY_MALFORMED,      /* signed by us, yet unreadable (a bug or an old format) */
    US_POLICY_EXPIRED
} us_policy_rc;

/* Checks the signature (constant time) and expiry and decodes the policy. */
us_policy_rc us_policy_verify(apr_pool_t *p, const unsigned char *secret, size_t secretlen,
                              const char *policy_b64, const char *signature_hex,
                              apr_time_t now, us_policy_doc *doc);

/* now as 20261128T100000Z (strftime "%Y%m%dT%H%M%SZ" of its second), the
 * x-amz-date of a policy. */
void us_policy_amz_date(apr_time_t now, char date[17]);

/* The base64 policy document every upload policy is: expiration, bucket,
 * ["starts-with", "$key", key_prefix], ["content-length-range", 0,
 * max_bytes], x-amz-algorithm, x-amz-credential and x-amz-date.
 * whole_seconds: the expiration as AWS documents it and boto writes it,
 * whole seconds (".000Z", cut down, never later than expires), for an
 * object store; else with the microseconds of expires (the module's own
 * upload target reads them). */
const char *us_policy_document(apr_pool_t *p, const char *bucket, const char *key_prefix,
                               apr_time_t expires, long long max_bytes,
                               const char *credential, const char *date, int whole_seconds);

/* Hex HMAC-SHA256 of data under secret (64 chars + NUL into out); 0 and
 * out "" when OpenSSL failed. */
int us_hmac_hex(const unsigned char *secret, size_t secretlen, const char *data,
                size_t len, char out[65]);

#endif

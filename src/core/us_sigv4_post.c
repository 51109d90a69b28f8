/*
 * us_sigv4_post.c - the S3 POST policy (us_sigv4_post_policy): the form
 * fields of us_policy signed with us_sigv4's derived key.
 */
#include "us_sigv4.h"
#include "us_policy.h"

#include <apr_strings.h>

void us_sigv4_post_policy(apr_pool_t *p, const us_sigv4_credentials *c, const char *bucket,
                          const char *key_prefix, apr_time_t expires, long long max_bytes,
                          apr_time_t now, us_policy_fields *out)
{
    char date[17];

    us_policy_amz_date(now, date);
    out->key = apr_pstrcat(p, key_prefix, "${filename}", NULL);
    out->algorithm = US_POLICY_ALGORITHM;
    out->date = apr_pstrdup(p, date);
    out->credential = apr_pstrcat(p, c->access_key, "/", us_sigv4_scope(p, c, date), NULL);
    out->policy = us_policy_document(p, bucket, key_prefix, expires, max_bytes,
                                     out->credential, out->date, 1);
    out->signature = us_sigv4_signature(p, c, date, out->policy);
}

/* us_policy.c - upload policy encoding and signing (pure). */
#include "us_policy.h"
#include "us_time.h"

#include <apr_base64.h>
#include <apr_strings.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

void us_hmac_hex(const unsigned char *secret, size_t secretlen, const char *data,
                 size_t len, char out[65])
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    HMAC(EVP_sha256(), secret, (int)secretlen, (const unsigned char *)data, len, mac, &maclen);
    for (unsigned int i = 0; i < maclen && i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", mac[i]);
    out[64] = '\0';
}

void us_policy_sign(apr_pool_t *p, const unsigned char *secret, size_t secretlen,
                    const char *key_prefix, apr_time_t expires,
                    long long max_bytes, apr_time_t now, us_policy_fields *out)
{
    char exp[US_TS_LEN], date[17], sig[65];
    time_t secs = (time_t)apr_time_sec(now);
    struct tm tm;

    us_time_format(expires, exp);
    gmtime_r(&secs, &tm);
    strftime(date, sizeof(date), "%Y%m%dT%H%M%SZ", &tm);
    out->key = apr_pstrcat(p, key_prefix, "${filename}", NULL);
    out->algorithm = US_POLICY_ALGORITHM;
    out->credential = apr_psprintf(p, "upload-session/%.8s/local/s3/aws4_request", date);
    out->date = apr_pstrdup(p, date);

    json_t *doc = json_pack("{s:s, s:[{s:s}, [s,s,s], [s,i,I], {s:s}, {s:s}, {s:s}]}",
                            "expiration", exp, "conditions",
                            "bucket", "upload-sessions",
                            "starts-with", "$key", key_prefix,
                            "content-length-range", 0, (json_int_t)max_bytes,
                            "x-amz-algorithm", out->algorithm,
                            "x-amz-credential", out->credential,
                            "x-amz-date", out->date);
    char *text = json_dumps(doc, JSON_COMPACT);
    int tlen = (int)strlen(text);
    char *b64 = apr_palloc(p, (apr_size_t)apr_base64_encode_len(tlen));
    apr_base64_encode(b64, text, tlen);
    free(text);
    json_decref(doc);

    out->policy = b64;
    us_hmac_hex(secret, secretlen, b64, strlen(b64), sig);
    out->signature = apr_pstrdup(p, sig);
}

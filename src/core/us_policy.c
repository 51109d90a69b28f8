/* us_policy.c - upload policy encoding and signing (pure). */
#include "us_policy.h"
#include "us_crypto.h"
#include "us_json_writer.h"
#include "us_time.h"

#include <apr_base64.h>
#include <apr_strings.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <string.h>
#include <time.h>

int us_hmac_hex(const unsigned char *secret, size_t secretlen, const char *data,
                size_t len, char out[65])
{
    unsigned char mac[US_SHA256_LEN];
    if (!us_hmac_sha256(secret, secretlen, data, len, mac)) {
        memset(out, 0, 65); /* "": equal to no 64-character signature */
        return 0;
    }
    us_hex(mac, US_SHA256_LEN, out);
    return 1;
}

void us_policy_amz_date(apr_time_t now, char date[17])
{
    char ts[US_TS_LEN];
    static const int FROM[] = { 0, 1, 2, 3, 5, 6, 8, 9, -1, 11, 12, 14, 15, 17, 18 };

    if (now < 0 || now >= (apr_time_t)253402300800LL * APR_USEC_PER_SEC) {
        /* beyond 1970..9999: what strftime writes there */
        time_t secs = (time_t)apr_time_sec(now);
        struct tm tm;
        gmtime_r(&secs, &tm);
        if (strftime(date, 17, "%Y%m%dT%H%M%SZ", &tm) == 0)
            date[0] = '\0'; /* year 10000 on: it does not fit (contents undefined) */
        return;
    }
    us_time_format(now, ts); /* 2026-11-28T10:00:00.000000Z, no stdio */
    for (size_t i = 0; i < sizeof(FROM) / sizeof(FROM[0]); i++)
        date[i] = FROM[i] < 0 ? 'T' : ts[FROM[i]];
    date[15] = 'Z';
    date[16] = '\0';
}

const char *us_policy_document(apr_pool_t *p, const char *bucket, const char *key_prefix,
                               apr_time_t expires, long long max_bytes,
                               const char *credential, const char *date, int whole_seconds)
{
    char exp[US_TS_LEN];
    us_json_writer w;

    us_time_format(expires, exp); /* 2026-11-28T10:00:00.000000Z */
    if (whole_seconds)
        memcpy(exp + 19, ".000Z", sizeof(".000Z"));
    /* byte for byte what json_dumps(JSON_COMPACT) wrote for the same document */
    us_json_write_init(&w, p, 384 + strlen(key_prefix) + strlen(bucket) + strlen(credential));
    us_json_write_object_open(&w);
    us_json_write_key_string(&w, "expiration", exp);
    us_json_write_key(&w, "conditions");
    us_json_write_array_open(&w);
    us_json_write_object_open(&w);
    us_json_write_key_string(&w, "bucket", bucket);
    us_json_write_object_close(&w);
    us_json_write_array_open(&w);
    us_json_write_string(&w, "starts-with");
    us_json_write_string(&w, "$key");
    us_json_write_string(&w, key_prefix);
    us_json_write_array_close(&w);
    us_json_write_array_open(&w);
    us_json_write_string(&w, "content-length-range");
    us_json_write_int(&w, 0);
    us_json_write_int(&w, max_bytes);
    us_json_write_array_close(&w);
    us_json_write_object_open(&w);
    us_json_write_key_string(&w, "x-amz-algorithm", US_POLICY_ALGORITHM);
    us_json_write_object_close(&w);
    us_json_write_object_open(&w);
    us_json_write_key_string(&w, "x-amz-credential", credential);
    us_json_write_object_close(&w);
    us_json_write_object_open(&w);
    us_json_write_key_string(&w, "x-amz-date", date);
    us_json_write_object_close(&w);
    us_json_write_array_close(&w);
    us_json_write_object_close(&w);
    apr_size_t tlen = 0;
    const char *text = us_json_write_finish(&w, &tlen);
    if (!text) { /* a prefix that is not UTF-8: callers pass validated names */
        text = "{}";
        tlen = 2;
    }
    char *b64 = apr_palloc(p, (apr_size_t)apr_base64_encode_len((int)tlen));
    apr_base64_encode(b64, text, (int)tlen);
    return b64;
}

void us_policy_sign(apr_pool_t *p, const unsigned char *secret, size_t secretlen,
                    const char *key_prefix, apr_time_t expires,
                    long long max_bytes, apr_time_t now, us_policy_fields *out)
{
    char date[17], sig[65];

    us_policy_amz_date(now, date);
    out->key = apr_pstrcat(p, key_prefix, "${filename}", NULL);
    out->algorithm = US_POLICY_ALGORITHM;
    /* "upload-session/" + the day of date + "/local/s3/aws4_request" */
    out->credential = apr_pstrcat(p, "upload-session/", apr_pstrmemdup(p, date, 8),
                                  "/local/s3/aws4_request", NULL);
    out->date = apr_pstrmemdup(p, date, 16);
    out->policy = us_policy_document(p, "upload-sessions", key_prefix, expires, max_bytes,
                                     out->credential, out->date, 0);
    us_hmac_hex(secret, secretlen, out->policy, strlen(out->policy), sig);
    out->signature = apr_pstrmemdup(p, sig, 64);
}

/* Reads the conditions we put into every policy. */
static int read_conditions(apr_pool_t *p, json_t *conds, us_policy_doc *doc)
{
    size_t i;
    json_t *c;
    int have_prefix = 0, have_range = 0;

    json_array_foreach(conds, i, c) {
        if (!json_is_array(c) || json_array_size(c) != 3)
            continue;
        const char *op = json_string_value(json_array_get(c, 0));
        if (op && strcmp(op, "starts-with") == 0 &&
            json_is_string(json_array_get(c, 2)) &&
            strcmp(json_string_value(json_array_get(c, 1)) ? json_string_value(json_array_get(c, 1)) : "", "$key") == 0) {
            doc->key_prefix = apr_pstrdup(p, json_string_value(json_array_get(c, 2)));
            have_prefix = 1;
        }
        else if (op && strcmp(op, "content-length-range") == 0 &&
                 json_is_integer(json_array_get(c, 1)) && json_is_integer(json_array_get(c, 2))) {
            doc->min_bytes = json_integer_value(json_array_get(c, 1));
            doc->max_bytes = json_integer_value(json_array_get(c, 2));
            have_range = 1;
        }
    }
    return have_prefix && have_range;
}

us_policy_rc us_policy_verify(apr_pool_t *p, const unsigned char *secret, size_t secretlen,
                              const char *policy_b64, const char *signature_hex,
                              apr_time_t now, us_policy_doc *doc)
{
    char expect[65];
    json_error_t jerr;

    if (!policy_b64 || !signature_hex || !*policy_b64 || !*signature_hex)
        return US_POLICY_MISSING;
    if (!us_hmac_hex(secret, secretlen, policy_b64, strlen(policy_b64), expect) ||
        strlen(signature_hex) != 64 ||
        CRYPTO_memcmp(expect, signature_hex, 64) != 0)
        return US_POLICY_BAD_SIGNATURE;

    /* from here on the document is ours: signed with our secret */
    char *text = apr_palloc(p, (apr_size_t)apr_base64_decode_len(policy_b64) + 1);
    int n = apr_base64_decode(text, policy_b64);
    json_t *j = json_loadb(text, (size_t)(n > 0 ? n : 0), 0, &jerr);
    us_policy_rc rc = US_POLICY_MALFORMED;
    const char *exp = json_string_value(json_object_get(j, "expiration"));
    memset(doc, 0, sizeof(*doc));
    if (j && exp && us_time_parse(exp, &doc->expiration) &&
        read_conditions(p, json_object_get(j, "conditions"), doc))
        rc = doc->expiration > now ? US_POLICY_OK : US_POLICY_EXPIRED;
    json_decref(j);
    return rc;
}

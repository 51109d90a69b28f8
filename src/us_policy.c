/* us_policy.c - upload policy encoding and signing (pure). */
#include "us_policy.h"
#include "us_time.h"

#include <apr_base64.h>
#include <apr_strings.h>
#include <jansson.h>
#include <openssl/crypto.h>
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
    us_hmac_hex(secret, secretlen, policy_b64, strlen(policy_b64), expect);
    if (strlen(signature_hex) != 64 ||
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

/* Unit tests: upload policy document and signature. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include "fixture.h"
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <apr_base64.h>
#include <apr_general.h>
#include <apr_strings.h>
#include <jansson.h>
#include "us_policy.h"
#include "us_time.h"

static const unsigned char SECRET[32] = "0123456789abcdef0123456789abcdef";
#define T0 ((apr_time_t)1795863600 * APR_USEC_PER_SEC)

static void test_hmac_vector(void **state)
{
    char hex[65];
    (void)state;
    /* RFC 4231 test case 2 */
    us_hmac_hex((const unsigned char *)"Jefe", 4, "what do ya want for nothing?", 28, hex);
    assert_string_equal(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

static void test_fields_and_document(void **state)
{
    us_policy_fields f;
    char sig[65];
    (void)state;
    us_policy_sign(pool, SECRET, sizeof(SECRET), "ws/sid/", T0 + 3600 * APR_USEC_PER_SEC,
                   1000, T0, &f);
    assert_string_equal(f.key, "ws/sid/${filename}");
    assert_string_equal(f.algorithm, "AWS4-HMAC-SHA256");
    assert_string_equal(f.date, "20261128T110000Z");
    assert_string_equal(f.credential, "upload-session/20261128/local/s3/aws4_request");
    us_hmac_hex(SECRET, sizeof(SECRET), f.policy, strlen(f.policy), sig);
    assert_string_equal(f.signature, sig);

    char *doc = apr_palloc(pool, (apr_size_t)apr_base64_decode_len(f.policy));
    int n = apr_base64_decode(doc, f.policy);
    json_error_t e;
    json_t *j = json_loadb(doc, (size_t)n, 0, &e);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "expiration")),
                        "2026-11-28T12:00:00.000000Z");
    json_t *cond = json_object_get(j, "conditions");
    assert_true(json_is_array(cond));
    json_t *expect = json_loads("[\"starts-with\",\"$key\",\"ws/sid/\"]", 0, &e);
    int found = 0;
    for (size_t i = 0; i < json_array_size(cond); i++)
        found |= json_equal(json_array_get(cond, i), expect);
    assert_true(found);
    json_decref(expect);
    json_decref(j);
}

static void test_signature_depends_on_secret_and_prefix(void **state)
{
    us_policy_fields a, b, c;
    unsigned char other[32];
    (void)state;
    memcpy(other, SECRET, sizeof(other));
    other[0] ^= 1;
    us_policy_sign(pool, SECRET, 32, "ws/a/", T0, 10, T0, &a);
    us_policy_sign(pool, other, 32, "ws/a/", T0, 10, T0, &b);
    us_policy_sign(pool, SECRET, 32, "ws/b/", T0, 10, T0, &c);
    assert_string_equal(a.policy, b.policy);
    assert_string_not_equal(a.signature, b.signature);
    assert_string_not_equal(a.policy, c.policy);
    assert_string_not_equal(a.signature, c.signature);
}

static void test_verify(void **state)
{
    us_policy_fields f;
    us_policy_doc doc;
    (void)state;
    us_policy_sign(pool, SECRET, 32, "ws/sid/", T0 + 60 * APR_USEC_PER_SEC, 1000, T0, &f);
    assert_int_equal(us_policy_verify(pool, SECRET, 32, f.policy, f.signature, T0, &doc),
                     US_POLICY_OK);
    assert_string_equal(doc.key_prefix, "ws/sid/");
    assert_int_equal(doc.max_bytes, 1000);
    assert_int_equal(doc.min_bytes, 0);
    assert_true(doc.expiration == T0 + 60 * APR_USEC_PER_SEC);

    assert_int_equal(us_policy_verify(pool, SECRET, 32, NULL, f.signature, T0, &doc),
                     US_POLICY_MISSING);
    assert_int_equal(us_policy_verify(pool, SECRET, 32, f.policy, "", T0, &doc),
                     US_POLICY_MISSING);
    /* expired exactly at expiration */
    assert_int_equal(us_policy_verify(pool, SECRET, 32, f.policy, f.signature,
                                      T0 + 60 * APR_USEC_PER_SEC, &doc), US_POLICY_EXPIRED);

    /* any change to the policy or the signature is caught */
    char *tampered = apr_pstrdup(pool, f.policy);
    tampered[10] = tampered[10] == 'A' ? 'B' : 'A';
    assert_int_equal(us_policy_verify(pool, SECRET, 32, tampered, f.signature, T0, &doc),
                     US_POLICY_BAD_SIGNATURE);
    char *sig = apr_pstrdup(pool, f.signature);
    sig[63] = sig[63] == '0' ? '1' : '0';
    assert_int_equal(us_policy_verify(pool, SECRET, 32, f.policy, sig, T0, &doc),
                     US_POLICY_BAD_SIGNATURE);
    assert_int_equal(us_policy_verify(pool, SECRET, 32, f.policy, "abc", T0, &doc),
                     US_POLICY_BAD_SIGNATURE);
    unsigned char other[32] = { 0 };
    assert_int_equal(us_policy_verify(pool, other, 32, f.policy, f.signature, T0, &doc),
                     US_POLICY_BAD_SIGNATURE);

    /* a document we signed ourselves but that lacks the conditions */
    char hex[65];
    const char *bare = "eyJleHBpcmF0aW9uIjoiMjAzMC0wMS0wMVQwMDowMDowMC4wMDAwMDBaIn0=";
    us_hmac_hex(SECRET, 32, bare, strlen(bare), hex);
    assert_int_equal(us_policy_verify(pool, SECRET, 32, bare, hex, T0, &doc), US_POLICY_MALFORMED);
}

/* The document and fields as they were built with json_pack/json_dumps,
 * strftime and apr_psprintf before us_json_writer: the same bytes. */
static void check_like_jansson(const char *prefix, apr_time_t expires, long long max,
                               apr_time_t now)
{
    us_policy_fields f;
    char exp[US_TS_LEN], date[17];
    time_t secs = (time_t)apr_time_sec(now);
    struct tm tm;

    us_policy_sign(pool, SECRET, 32, prefix, expires, max, now, &f);
    us_time_format(expires, exp);
    gmtime_r(&secs, &tm);
    if (strftime(date, sizeof(date), "%Y%m%dT%H%M%SZ", &tm) == 0)
        date[0] = '\0'; /* as us_policy.c: year 10000 does not fit */
    const char *cred = apr_psprintf(pool, "upload-session/%.8s/local/s3/aws4_request", date);
    json_t *doc = json_pack("{s:s, s:[{s:s}, [s,s,s], [s,i,I], {s:s}, {s:s}, {s:s}]}",
                            "expiration", exp, "conditions", "bucket", "upload-sessions",
                            "starts-with", "$key", prefix, "content-length-range", 0,
                            (json_int_t)max, "x-amz-algorithm", "AWS4-HMAC-SHA256",
                            "x-amz-credential", cred, "x-amz-date", date);
    char *want = json_dumps(doc, JSON_COMPACT);
    char *got = apr_palloc(pool, (apr_size_t)apr_base64_decode_len(f.policy) + 1);
    got[apr_base64_decode(got, f.policy)] = '\0';
    assert_string_equal(got, want);
    assert_string_equal(f.date, date);
    assert_string_equal(f.credential, cred);
    assert_string_equal(f.key, apr_pstrcat(pool, prefix, "${filename}", NULL));
    free(want);
    json_decref(doc);
}

static void test_document_bytes_as_jansson_wrote_them(void **state)
{
    (void)state;
    check_like_jansson("ws/0b2c6f6e-5d4e-4a8a-9a39-1c7f4d9f7e21/", T0 + 86400 * APR_USEC_PER_SEC,
                       5368709120LL, T0 + 123456);
    check_like_jansson("a/b/", T0, 0, T0);
    check_like_jansson("q\"uote\\/Zo\xc3\xab\t/", T0 + 1, 1, T0 - 1);
    check_like_jansson("ws/x/", 0, 9223372036854775807LL, 0);
    check_like_jansson("ws/x/", T0, 10, (apr_time_t)946684799 * APR_USEC_PER_SEC + 999999);
    check_like_jansson("ws/x/", T0, 10, (apr_time_t)253402300799LL * APR_USEC_PER_SEC);
    /* outside 1970..9999 the date comes from strftime, as before */
    check_like_jansson("ws/x/", T0, 10, (apr_time_t)253402300800LL * APR_USEC_PER_SEC);
    check_like_jansson("ws/x/", T0, 10, -(apr_time_t)86400 * APR_USEC_PER_SEC);
    for (apr_time_t t = T0; t < T0 + 400LL * 86400 * APR_USEC_PER_SEC;
         t += 86399LL * APR_USEC_PER_SEC + 7)
        check_like_jansson("ws/y/", t + 3600 * APR_USEC_PER_SEC, 1000, t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hmac_vector),
        cmocka_unit_test(test_fields_and_document),
        cmocka_unit_test(test_signature_depends_on_secret_and_prefix),
        cmocka_unit_test(test_verify),
        cmocka_unit_test(test_document_bytes_as_jansson_wrote_them),
    };
    return fixture_run("us_policy", tests, NULL, NULL);
}

/* Unit tests: AWS Signature Version 4 against AWS's published examples
 * (the SigV4 test suite, the S3 API reference's worked examples). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include "fixture.h"
#include <string.h>

#include <apr_base64.h>
#include <apr_strings.h>
#include <jansson.h>
#include "us_crypto.h"
#include "us_sigv4.h"

/* the SigV4 test suite's credentials and time (get-vanilla etc.) */
static const us_sigv4_credentials SUITE = {
    "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "us-east-1", "service"
};
#define SUITE_DATE "20150830T123600Z"

/* the S3 API reference's examples (sig-v4-header-based-auth, query auth, POST) */
static const us_sigv4_credentials S3DOC = {
    "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "us-east-1", "s3"
};
#define S3_DATE "20130524T000000Z"
#define S3_HOST "examplebucket.s3.amazonaws.com"

static us_sigv4_signed sign(const us_sigv4_credentials *c, const char *date, const char *method,
                            const char *path, const char *query, const us_sigv4_header *h,
                            int n, const char *payload)
{
    us_sigv4_signed s;
    us_sigv4_request r = { method, path, query, h, n, payload };
    assert_int_equal(us_sigv4_sign_request(pool, c, date, &r, &s), 1);
    return s;
}

static void test_get_vanilla(void **state)
{
    us_sigv4_header h[] = { { "Host", "example.amazonaws.com" }, { "X-Amz-Date", SUITE_DATE } };
    (void)state;
    us_sigv4_signed s = sign(&SUITE, SUITE_DATE, "GET", "/", NULL, h, 2, US_SIGV4_EMPTY_SHA256);
    assert_string_equal(s.signed_headers, "host;x-amz-date");
    assert_string_equal(s.authorization,
                        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/"
                        "aws4_request, SignedHeaders=host;x-amz-date, "
                        "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
}

/* "Example: GET Object": a Range header, the empty payload's hash */
static void test_s3_get_object(void **state)
{
    us_sigv4_header h[] = { { "Host", S3_HOST }, { "Range", "bytes=0-9" },
                            { "x-amz-content-sha256", US_SIGV4_EMPTY_SHA256 },
                            { "x-amz-date", S3_DATE } };
    (void)state;
    us_sigv4_signed s = sign(&S3DOC, S3_DATE, "GET", "/test.txt", NULL, h, 4,
                             US_SIGV4_EMPTY_SHA256);
    assert_string_equal(s.canonical_request,
                        "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
                        "x-amz-content-sha256:" US_SIGV4_EMPTY_SHA256 "\n"
                        "x-amz-date:20130524T000000Z\n\n"
                        "host;range;x-amz-content-sha256;x-amz-date\n" US_SIGV4_EMPTY_SHA256);
    assert_string_equal(s.string_to_sign,
                        "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
                        "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
    assert_string_equal(s.signature,
                        "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

/* "Example: PUT Object": a signed payload, a key with '$' */
static void test_s3_put_object(void **state)
{
    unsigned char d[US_SHA256_LEN];
    char body_hash[65];
    (void)state;
    us_sha256("Welcome to Amazon S3.", 21, d);
    us_hex(d, sizeof(d), body_hash);
    assert_string_equal(body_hash,
                        "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
    us_sigv4_header h[] = { { "Host", S3_HOST }, { "Date", "Fri, 24 May 2013 00:00:00 GMT" },
                            { "x-amz-date", S3_DATE }, { "x-amz-storage-class", "REDUCED_REDUNDANCY" },
                            { "x-amz-content-sha256", body_hash } };
    const char *path = apr_pstrcat(pool, "/", us_sigv4_uri_encode(pool, "test$file.text", 1), NULL);
    assert_string_equal(path, "/test%24file.text");
    us_sigv4_signed s = sign(&S3DOC, S3_DATE, "PUT", path, NULL, h, 5, body_hash);
    assert_string_equal(s.signed_headers, "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class");
    assert_string_equal(s.signature,
                        "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
}

/* Requests with a query: it is signed sorted, each parameter with a value */
static void test_queries(void **state)
{
    static const us_sigv4_header suite_h[] = { { "X-Amz-Date", SUITE_DATE },
                                               { "Host", "example.amazonaws.com" } };
    static const us_sigv4_header s3_h[] = { { "Host", S3_HOST },
                                            { "x-amz-content-sha256", US_SIGV4_EMPTY_SHA256 },
                                            { "x-amz-date", S3_DATE } };
    static const struct {
        const us_sigv4_credentials *c;
        const char *date, *query, *canonical, *signature;
    } rows[] = {
        /* the SigV4 suite's get-vanilla-query-order-key-case */
        { &SUITE, SUITE_DATE, "Param2=value2&Param1=value1", "\nParam1=value1&Param2=value2\n",
          "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500" },
        /* the S3 reference's "Example: GET Bucket Lifecycle" */
        { &S3DOC, S3_DATE, "lifecycle", "\nlifecycle=\n",
          "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543" },
        /* the S3 reference's "Example: Get Bucket (List Objects)" */
        { &S3DOC, S3_DATE, "prefix=J&max-keys=2", "\nmax-keys=2&prefix=J\n",
          "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7" },
    };
    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        int suite = rows[i].c == &SUITE;
        us_sigv4_signed s = sign(rows[i].c, rows[i].date, "GET", "/", rows[i].query,
                                 suite ? suite_h : s3_h, suite ? 2 : 3, US_SIGV4_EMPTY_SHA256);
        assert_non_null(strstr(s.canonical_request, rows[i].canonical));
        assert_string_equal(s.signature, rows[i].signature);
    }
}

/* "Authenticating Requests: Using Query Parameters": the presigned GET */
static void test_s3_presigned_url(void **state)
{
    (void)state;
    const char *q = us_sigv4_presign_query(pool, &S3DOC, S3_DATE, "GET", S3_HOST, "/test.txt",
                                           NULL, 86400);
    assert_string_equal(q, "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE"
                           "%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z"
                           "&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature="
                           "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
}

/* "Example: Browser-Based Upload using HTTP POST (Using AWS Signature
 * Version 4)": the policy exactly as published (CRLF line ends) */
static const char AWS_POLICY_B64[] =
    "eyAiZXhwaXJhdGlvbiI6ICIyMDE1LTEyLTMwVDEyOjAwOjAwLjAwMFoiLA0KICAiY29uZGl0aW9ucyI6IFsNCiAgICB7"
    "ImJ1Y2tldCI6ICJzaWd2NGV4YW1wbGVidWNrZXQifSwNCiAgICBbInN0YXJ0cy13aXRoIiwgIiRrZXkiLCAidXNlci91"
    "c2VyMS8iXSwNCiAgICB7ImFjbCI6ICJwdWJsaWMtcmVhZCJ9LA0KICAgIHsic3VjY2Vzc19hY3Rpb25fcmVkaXJlY3Qi"
    "OiAiaHR0cDovL3NpZ3Y0ZXhhbXBsZWJ1Y2tldC5zMy5hbWF6b25hd3MuY29tL3N1Y2Nlc3NmdWxfdXBsb2FkLmh0bWwi"
    "fSwNCiAgICBbInN0YXJ0cy13aXRoIiwgIiRDb250ZW50LVR5cGUiLCAiaW1hZ2UvIl0sDQogICAgeyJ4LWFtei1tZXRh"
    "LXV1aWQiOiAiMTQzNjUxMjM2NTEyNzQifSwNCiAgICB7IngtYW16LXNlcnZlci1zaWRlLWVuY3J5cHRpb24iOiAiQUVT"
    "MjU2In0sDQogICAgWyJzdGFydHMtd2l0aCIsICIkeC1hbXotbWV0YS10YWciLCAiIl0sDQoNCiAgICB7IngtYW16LWNy"
    "ZWRlbnRpYWwiOiAiQUtJQUlPU0ZPRE5ON0VYQU1QTEUvMjAxNTEyMjkvdXMtZWFzdC0xL3MzL2F3czRfcmVxdWVzdCJ9"
    "LA0KICAgIHsieC1hbXotYWxnb3JpdGhtIjogIkFXUzQtSE1BQy1TSEEyNTYifSwNCiAgICB7IngtYW16LWRhdGUiOiAi"
    "MjAxNTEyMjlUMDAwMDAwWiIgfQ0KICBdDQp9";

static void test_s3_post_policy_example(void **state)
{
    (void)state;
    assert_string_equal(us_sigv4_signature(pool, &S3DOC, "20151229T000000Z", AWS_POLICY_B64),
                        "8afdbf4008c03f22c2cd3cdb72e4afbb1f6a588f3255ac628749a66d7f09699e");
}

/* Our policy: the document us_policy_document writes, signed with the
 * derived key and scoped to the access key, region and day. */
static void test_post_policy_fields(void **state)
{
    us_policy_fields f;
    json_error_t e;
    /* 2026-11-28T10:00:00Z */
    const apr_time_t now = (apr_time_t)1795860000 * APR_USEC_PER_SEC;
    (void)state;
    us_sigv4_post_policy(pool, &S3DOC, "uploads", "p/ws/sid/", now + 3600 * APR_USEC_PER_SEC, 1000,
                         now, &f);
    assert_string_equal(f.key, "p/ws/sid/${filename}");
    assert_string_equal(f.algorithm, "AWS4-HMAC-SHA256");
    assert_string_equal(f.date, "20261128T100000Z");
    assert_string_equal(f.credential, "AKIAIOSFODNN7EXAMPLE/20261128/us-east-1/s3/aws4_request");
    assert_string_equal(f.signature, us_sigv4_signature(pool, &S3DOC, f.date, f.policy));

    char *doc = apr_palloc(pool, (apr_size_t)apr_base64_decode_len(f.policy));
    int n = apr_base64_decode(doc, f.policy);
    json_t *got = json_loadb(doc, (size_t)n, 0, &e);
    json_t *want = json_loads(
        "{\"expiration\":\"2026-11-28T11:00:00.000Z\",\"conditions\":[{\"bucket\":\"uploads\"},"
        "[\"starts-with\",\"$key\",\"p/ws/sid/\"],[\"content-length-range\",0,1000],"
        "{\"x-amz-algorithm\":\"AWS4-HMAC-SHA256\"},"
        "{\"x-amz-credential\":\"AKIAIOSFODNN7EXAMPLE/20261128/us-east-1/s3/aws4_request\"},"
        "{\"x-amz-date\":\"20261128T100000Z\"}]}", 0, &e);
    assert_non_null(got);
    assert_non_null(want);
    assert_true(json_equal(got, want));
    json_decref(got);
    json_decref(want);

    /* an expiry within a second: cut down to it, as boto writes one */
    us_sigv4_post_policy(pool, &S3DOC, "uploads", "p/ws/sid/",
                         now + 3600 * APR_USEC_PER_SEC + 999999, 1000, now, &f);
    doc = apr_palloc(pool, (apr_size_t)apr_base64_decode_len(f.policy));
    n = apr_base64_decode(doc, f.policy);
    got = json_loadb(doc, (size_t)n, 0, &e);
    assert_non_null(got);
    assert_string_equal(json_string_value(json_object_get(got, "expiration")),
                        "2026-11-28T11:00:00.000Z");
    json_decref(got);
}

static void test_canonical_forms(void **state)
{
    us_sigv4_header h[] = { { "Host", "h" }, { "X-Amz-Meta-A", "  a   b\t c  " },
                            { "x-amz-meta-a", "second" } };
    (void)state;
    us_sigv4_signed s = sign(&S3DOC, S3_DATE, "GET", "", "b=%7e&a=x%2fy&a=+&c", h, 3,
                             US_SIGV4_UNSIGNED_PAYLOAD);
    assert_string_equal(s.canonical_request,
                        "GET\n/\na=%2B&a=x%2Fy&b=~&c=\nhost:h\nx-amz-meta-a:a b c,second\n\n"
                        "host;x-amz-meta-a\nUNSIGNED-PAYLOAD");
    assert_string_equal(us_sigv4_uri_encode(pool, "a b/\xc3\xa9~*", 0), "a%20b%2F%C3%A9~%2A");
    assert_string_equal(us_sigv4_uri_encode(pool, "a b/c", 1), "a%20b/c");
}

static void test_refuses_malformed_input(void **state)
{
    us_sigv4_signed s;
    us_sigv4_header ok[] = { { "host", "h" } }, bad[] = { { "ho st", "h" } },
                    empty[] = { { "", "h" } };
    us_sigv4_request r = { "GET", "/", NULL, ok, 1, US_SIGV4_UNSIGNED_PAYLOAD };
    (void)state;
    assert_int_equal(us_sigv4_sign_request(pool, &S3DOC, "20130524", &r, &s), 0);
    r.query = "a=%4";
    assert_int_equal(us_sigv4_sign_request(pool, &S3DOC, S3_DATE, &r, &s), 0);
    r.query = "a=%zz";
    assert_int_equal(us_sigv4_sign_request(pool, &S3DOC, S3_DATE, &r, &s), 0);
    r.query = NULL;
    r.headers = bad;
    assert_int_equal(us_sigv4_sign_request(pool, &S3DOC, S3_DATE, &r, &s), 0);
    r.headers = empty;
    assert_int_equal(us_sigv4_sign_request(pool, &S3DOC, S3_DATE, &r, &s), 0);
    assert_null(us_sigv4_presign_query(pool, &S3DOC, "2013", "GET", "h", "/", NULL, 60));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_vanilla),
        cmocka_unit_test(test_s3_get_object),
        cmocka_unit_test(test_s3_put_object),
        cmocka_unit_test(test_queries),
        cmocka_unit_test(test_s3_presigned_url),
        cmocka_unit_test(test_s3_post_policy_example),
        cmocka_unit_test(test_post_policy_fields),
        cmocka_unit_test(test_canonical_forms),
        cmocka_unit_test(test_refuses_malformed_input),
    };
    return fixture_run("us_sigv4", tests, NULL, NULL);
}

/* Unit tests: the s3 backend's reading of the store's answers - which 404
 * is a missing key, a Content-Length header, listing markers given again,
 * which abort's answer says the upload is gone, a ranged answer's
 * Content-Range, a listing's entries, and how long a request may wait on
 * a silent store. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>
#include "fixture.h"

#include "us_s3_answers.h"
#include "us_s3_request.h"

/* A copy or a completion is done only when its 200 holds the result's
 * ETag: an empty or cut body, an error document, progress alone are not. */
static void test_result_done(void **state)
{
    (void)state;
    assert_true(us_s3_result_done(200, "<?xml version=\"1.0\"?><CopyObjectResult>"
                                       "<LastModified>2026-12-07T20:00:00.000Z</LastModified>"
                                       "<ETag>&quot;9b2cf535f27731c974343645a3985328&quot;</ETag>"
                                       "</CopyObjectResult>"));
    assert_true(us_s3_result_done(200, "<CompleteMultipartUploadResult><Location>x</Location>"
                                       "<Bucket>b</Bucket><Key>k</Key><ETag>\"e-2\"</ETag>"
                                       "</CompleteMultipartUploadResult>"));
    assert_false(us_s3_result_done(200, ""));
    assert_false(us_s3_result_done(200, NULL));
    assert_false(us_s3_result_done(200, "<?xml version=\"1.0\"?><CopyObjectResult>"));
    assert_false(us_s3_result_done(200, "<CopyObjectResult><Progress>1024</Progress>"));
    assert_false(us_s3_result_done(200, "<Error><Code>InternalError</Code><ETag>x</ETag></Error>"));
    assert_false(us_s3_result_done(204, "<ETag>x</ETag>"));
}

/* Only a 4xx (or a 2xx's error document) is about the request itself; a
 * redirect or no answer is an outage, as 5xx. */
static void test_from_http(void **state)
{
    (void)state;
    assert_int_equal(us_s3_from_http(400), APR_EGENERAL);
    assert_int_equal(us_s3_from_http(412), APR_EGENERAL);
    assert_int_equal(us_s3_from_http(200), APR_EGENERAL);
    assert_int_equal(us_s3_from_http(403), APR_EACCES);
    assert_int_equal(us_s3_from_http(401), APR_EACCES);
    static const long outages[] = { 0, 100, 301, 302, 307, 308, 404, 408, 409, 429, 500, 503, 599 };
    for (size_t i = 0; i < sizeof(outages) / sizeof(outages[0]); i++)
        assert_int_equal(us_s3_from_http(outages[i]), APR_EAGAIN);
}

/* Only NoSuchKey is a missing key; a missing bucket, another code or a
 * 404 without a document (a proxy's) is not; a HEAD asks the bucket. */
static void test_404(void **state)
{
    (void)state;
    assert_int_equal(us_s3_404_of(0, "<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code>"
                                     "<Message></Message></Error>"), US_S3_404_KEY);
    assert_int_equal(us_s3_404_of(0, "<Error><Code>NoSuchBucket</Code></Error>"),
                     US_S3_404_OTHER);
    assert_int_equal(us_s3_404_of(0, "<Error><Code>NoSuchKeyX</Code></Error>"), US_S3_404_OTHER);
    assert_int_equal(us_s3_404_of(0, "<html>Not Found</html>"), US_S3_404_OTHER);
    assert_int_equal(us_s3_404_of(0, ""), US_S3_404_OTHER);
    assert_int_equal(us_s3_404_of(0, NULL), US_S3_404_OTHER);
    assert_int_equal(us_s3_404_of(1, NULL), US_S3_404_ASK);
    assert_int_equal(us_s3_404_of(1, "<Error><Code>NoSuchKey</Code></Error>"), US_S3_404_ASK);
}

static void test_error_code(void **state)
{
    (void)state;
    char code[8];
    us_s3_error_code("<Error><Code>SlowDown</Code></Error>", code, sizeof(code));
    assert_string_equal(code, "SlowDow"); /* cut to the room there is */
    us_s3_error_code("<Error><Code>A</Code>", code, sizeof(code));
    assert_string_equal(code, "A");
    us_s3_error_code("<Error><Code>unterminated", code, sizeof(code));
    assert_string_equal(code, "");
    us_s3_error_code(NULL, code, sizeof(code));
    assert_string_equal(code, "");
}

static int length(const char *v, apr_off_t *n)
{
    return us_s3_parse_length(v, strlen(v), n);
}

/* A decimal number or nothing: no default of 0 for what is not one. */
static void test_content_length(void **state)
{
    (void)state;
    apr_off_t n = -1;
    assert_true(length(" 12345\r\n", &n));
    assert_int_equal(n, 12345);
    assert_true(length("0\r\n", &n));
    assert_int_equal(n, 0);
    assert_true(length(" 6442450944\r\n", &n)); /* above 4 GiB */
    assert_int_equal(n, 6442450944LL);
    n = 7;
    static const char *const bad[] = { "\r\n", " \r\n", " -1\r\n", " 12a\r\n", " abc\r\n",
                                       " 1 2\r\n", " 99999999999999999999999\r\n" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(length(bad[i], &n));
    assert_int_equal(n, 7);
}

/* A continuation token or a pair of markers given a second time, after
 * any number of pages, repeats; pairs differing in either do not. */
static void test_marker_repeats(void **state)
{
    (void)state;
    apr_hash_t *seen = apr_hash_make(pool);
    assert_false(us_s3_marker_repeats(seen, "t1", NULL));
    assert_false(us_s3_marker_repeats(seen, "t2", NULL));
    assert_true(us_s3_marker_repeats(seen, "t1", NULL)); /* t1, t2, t1: a cycle */
    assert_false(us_s3_marker_repeats(seen, "k", "u1"));
    assert_false(us_s3_marker_repeats(seen, "k", "u2"));
    assert_false(us_s3_marker_repeats(seen, "k", NULL));
    assert_false(us_s3_marker_repeats(seen, "ku", "1"));  /* not "k" + "u1" */
    assert_true(us_s3_marker_repeats(seen, "k", "")); /* an empty marker is none */
    assert_true(us_s3_marker_repeats(seen, "k", "u2"));
    assert_true(us_s3_marker_repeats(seen, "k", NULL));
    assert_false(us_s3_marker_repeats(seen, NULL, "k"));
    assert_true(us_s3_marker_repeats(seen, NULL, "k"));
}

/* A copy (x-amz-copy-source) or a completion may leave the store silent
 * for long while it works; every other request gets the short bound. */
static void test_stall_seconds(void **state)
{
    (void)state;
    assert_int_equal(us_s3_stall_seconds("PUT", NULL, 1), US_S3_COPY_STALL_SECONDS);
    assert_int_equal(us_s3_stall_seconds("PUT", "partNumber=1&uploadId=x", 1),
                     US_S3_COPY_STALL_SECONDS);
    assert_int_equal(us_s3_stall_seconds("POST", "uploadId=x", 0), US_S3_COPY_STALL_SECONDS);
    assert_int_equal(us_s3_stall_seconds("POST", "uploads=", 0), US_S3_STALL_SECONDS);
    assert_int_equal(us_s3_stall_seconds("PUT", "partNumber=1&uploadId=x", 0),
                     US_S3_STALL_SECONDS);
    assert_int_equal(us_s3_stall_seconds("GET", "list-type=2", 0), US_S3_STALL_SECONDS);
    assert_int_equal(us_s3_stall_seconds("HEAD", NULL, 0), US_S3_STALL_SECONDS);
    assert_int_equal(us_s3_stall_seconds("DELETE", "uploadId=x", 0), US_S3_STALL_SECONDS);
    assert_true(US_S3_COPY_STALL_SECONDS > US_S3_STALL_SECONDS);
}

/* Only 204 and 404 NoSuchUpload say the upload is gone: a missing bucket
 * (or a 404 that is not the store's) leaves it maybe there. */
static void test_abort_done(void **state)
{
    (void)state;
    assert_true(us_s3_abort_done(204, ""));
    assert_true(us_s3_abort_done(404, "<?xml version=\"1.0\"?><Error><Code>NoSuchUpload</Code>"
                                      "</Error>"));
    assert_false(us_s3_abort_done(404, "<Error><Code>NoSuchBucket</Code></Error>"));
    assert_false(us_s3_abort_done(404, "<Error><Code>NoSuchKey</Code></Error>"));
    assert_false(us_s3_abort_done(404, ""));
    assert_false(us_s3_abort_done(404, NULL));
    assert_false(us_s3_abort_done(503, "<Error><Code>ServiceUnavailable</Code></Error>"));
    assert_false(us_s3_abort_done(0, NULL));
}

static int range_is(const char *v, apr_off_t first, apr_off_t last, apr_off_t size)
{
    return us_s3_content_range_is(v, strlen(v), first, last, size);
}

/* The range asked for, of the object opened; nothing else. */
static void test_content_range(void **state)
{
    (void)state;
    assert_true(range_is(" bytes 1-4/5\r\n", 1, 4, 5));
    assert_true(range_is("bytes 0-4194303/6442450944", 0, 4194303, 6442450944LL));
    assert_true(range_is("bytes 2-3/*", 2, 3, 9));
    assert_false(range_is(" bytes 0-3/5\r\n", 1, 4, 5));  /* another range */
    assert_false(range_is("bytes 1-3/5", 1, 4, 5));        /* shorter */
    assert_false(range_is("bytes 1-4/6", 1, 4, 5));        /* another object's size */
    assert_false(range_is("bytes */5", 1, 4, 5));
    assert_false(range_is("1-4/5", 1, 4, 5));
    assert_false(range_is("bytes 1-4/5x", 1, 4, 5));
    assert_false(range_is("bytes 1-4", 1, 4, 5));
    assert_false(range_is("bytes 99999999999999999999-4/5", 1, 4, 5));
    assert_false(range_is("", 1, 4, 5));
}

/* An entry without a key is an error, never skipped (an object the
 * ingestion would miss); without a size it is not an empty object. */
static void test_list_entry(void **state)
{
    (void)state;
    us_s3_entry e;
    assert_int_equal(us_s3_list_entry(pool, pool, "<Contents><Key>s/a&amp;b</Key>"
                                                  "<LastModified>2020-01-01T00:00:00.000Z"
                                                  "</LastModified><ETag>&quot;x&quot;</ETag>"
                                                  "<Size>12</Size></Contents>", &e),
                     US_S3_ENTRY_OK);
    assert_string_equal(e.key, "s/a&b");
    assert_string_equal(e.etag, "\"x\"");
    assert_int_equal(e.size, 12);
    assert_string_equal(e.modified, "2020-01-01T00:00:00.000Z");
    assert_int_equal(us_s3_list_entry(pool, pool, "<Contents><ETag>\"x\"</ETag><Size>12</Size>"
                                                  "</Contents>", &e),
                     US_S3_ENTRY_NO_KEY);
    assert_int_equal(us_s3_list_entry(pool, pool, "<Contents><Key></Key><Size>1</Size>"
                                                  "</Contents>", &e),
                     US_S3_ENTRY_OK); /* empty, but there: the caller judges the key */
    assert_int_equal(us_s3_list_entry(pool, pool, "<Contents><Key>k</Key></Contents>", &e),
                     US_S3_ENTRY_NO_SIZE);
    assert_string_equal(e.key, "k");
    assert_int_equal(us_s3_list_entry(pool, pool, "<Contents><Key>k</Key><Size>-1</Size>"
                                                  "</Contents>", &e),
                     US_S3_ENTRY_NO_SIZE);
    assert_null(e.etag);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_404),
        cmocka_unit_test(test_result_done),
        cmocka_unit_test(test_from_http),
        cmocka_unit_test(test_error_code),
        cmocka_unit_test(test_content_length),
        cmocka_unit_test(test_marker_repeats),
        cmocka_unit_test(test_stall_seconds),
        cmocka_unit_test(test_abort_done),
        cmocka_unit_test(test_content_range),
        cmocka_unit_test(test_list_entry),
    };
    return fixture_run("us_s3_answers", tests, NULL, NULL);
}

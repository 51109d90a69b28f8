/* Unit tests: the last clear's reading of the store's answers - what a
 * ListMultipartUploads answer means (a store that refuses or lacks the call
 * has nothing to abort), and which session a listed key belongs to. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include "fixture.h"

#include <apr_hash.h>
#include "us_s3_late.h"

/* 403 (a bucket policy, a user without s3:ListBucketMultipartUploads) and
 * 501 (a store without the call) are answers that do not change: nothing
 * to abort, the clear is recorded. An outage, a throttle, a server error
 * or no answer leave the clear due. */
static void test_uploads_outcome(void **state)
{
    (void)state;
    assert_int_equal(us_s3_uploads_outcome_of(APR_SUCCESS, 200), US_S3_UPLOADS_LISTED);
    assert_int_equal(us_s3_uploads_outcome_of(APR_SUCCESS, 403), US_S3_UPLOADS_REFUSED);
    assert_int_equal(us_s3_uploads_outcome_of(APR_SUCCESS, 501), US_S3_UPLOADS_REFUSED);
    static const long failing[] = { 0, 400, 401, 404, 409, 429, 500, 502, 503, 504 };
    for (size_t i = 0; i < sizeof(failing) / sizeof(failing[0]); i++)
        assert_int_equal(us_s3_uploads_outcome_of(APR_SUCCESS, failing[i]), US_S3_UPLOADS_FAILED);
    /* no answer: whatever status was left */
    assert_int_equal(us_s3_uploads_outcome_of(APR_ECONNREFUSED, 0), US_S3_UPLOADS_FAILED);
    assert_int_equal(us_s3_uploads_outcome_of(APR_TIMEUP, 403), US_S3_UPLOADS_FAILED);
}

static const char *only(apr_hash_t *ids)
{
    assert_int_equal(apr_hash_count(ids), 1);
    const void *k;
    apr_hash_this(apr_hash_first(pool, ids), &k, NULL, NULL);
    return k;
}

/* A key under root names its session; a common prefix (root<id>/) too;
 * root itself, keys elsewhere and an empty id name none; each session once. */
static void test_session_of(void **state)
{
    (void)state;
    apr_hash_t *ids = apr_hash_make(pool);
    const char *root = "p/sessions/";
    us_s3_add_session_of(pool, ids, root, "p/sessions/");
    us_s3_add_session_of(pool, ids, root, "p/sessions//x");
    us_s3_add_session_of(pool, ids, root, "p/sessions/no-slash");
    us_s3_add_session_of(pool, ids, root, "p/files/abc/x");
    us_s3_add_session_of(pool, ids, root, "q/sessions/abc/x");
    us_s3_add_session_of(pool, ids, root, NULL);
    assert_int_equal(apr_hash_count(ids), 0);
    us_s3_add_session_of(pool, ids, root, "p/sessions/abc/blob");
    assert_string_equal(only(ids), "abc");
    us_s3_add_session_of(pool, ids, root, "p/sessions/abc/");
    us_s3_add_session_of(pool, ids, root, "p/sessions/abc/deeper/one");
    assert_string_equal(only(ids), "abc");
    us_s3_add_session_of(pool, ids, root, "p/sessions/def/");
    assert_int_equal(apr_hash_count(ids), 2);
    assert_non_null(apr_hash_get(ids, "def", APR_HASH_KEY_STRING));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uploads_outcome),
        cmocka_unit_test(test_session_of),
    };
    return fixture_run("us_s3_late", tests, NULL, NULL);
}

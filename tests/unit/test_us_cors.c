/* Unit tests: CORS origins and header lists. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include "fixture.h"
#include <string.h>

#include "us_cors.h"

static apr_array_header_t *list_of(const char *const *names)
{
    apr_array_header_t *a = apr_array_make(pool, 4, sizeof(const char *));
    for (int i = 0; names[i]; i++)
        APR_ARRAY_PUSH(a, const char *) = names[i];
    return a;
}

static void test_origin_normalize(void **state)
{
    (void)state;
    assert_string_equal(us_cors_origin_normalize(pool, "https://app.example.com"),
                        "https://app.example.com");
    assert_string_equal(us_cors_origin_normalize(pool, "HTTPS://App.Example.COM"),
                        "https://app.example.com");
    /* the scheme's default port is not part of the serialized origin */
    assert_string_equal(us_cors_origin_normalize(pool, "https://a.example:443"), "https://a.example");
    assert_string_equal(us_cors_origin_normalize(pool, "http://a.example:80"), "http://a.example");
    assert_string_equal(us_cors_origin_normalize(pool, "http://a.example:443"), "http://a.example:443");
    assert_string_equal(us_cors_origin_normalize(pool, "http://127.0.0.1:08080"), "http://127.0.0.1:8080");
    assert_string_equal(us_cors_origin_normalize(pool, "http://[::1]:3000"), "http://[::1]:3000");
    assert_string_equal(us_cors_origin_normalize(pool, "http://localhost"), "http://localhost");
}

static void test_origin_refused(void **state)
{
    static const char *const bad[] = {
        "", "*", "null", "app.example.com", "ftp://a.example", "file://", "https://",
        "https://a.example/", "https://a.example/path", "https://a.example?x=1",
        "https://user@a.example", "https://a.example:", "https://a.example:0",
        "https://a.example:65536", "https://a.example:123456", "https://a b",
        "https://.a.example", "https://a.example.", "http://[::1", "http://[]",
        "https://a.example:80x", "https://a.example#f", NULL
    };
    (void)state;
    assert_null(us_cors_origin_normalize(pool, NULL));
    for (int i = 0; bad[i]; i++)
        if (us_cors_origin_normalize(pool, bad[i]))
            fail_msg("'%s' accepted as an origin", bad[i]);
}

static void test_header_names(void **state)
{
    (void)state;
    assert_true(us_cors_header_name_valid("X-Request-Id"));
    assert_true(us_cors_header_name_valid("ETag"));
    assert_false(us_cors_header_name_valid(""));
    assert_false(us_cors_header_name_valid(NULL));
    assert_false(us_cors_header_name_valid("X Request"));
    assert_false(us_cors_header_name_valid("X-A,X-B"));
    assert_false(us_cors_header_name_valid("X:A"));
    assert_false(us_cors_header_name_valid("caf\xc3\xa9"));

    apr_array_header_t *a = apr_array_make(pool, 2, sizeof(const char *));
    assert_int_equal(us_cors_list_add(a, "X-One"), 0);
    assert_int_equal(us_cors_list_add(a, "x-one"), 0); /* already there */
    assert_int_equal(us_cors_list_add(a, "X-Two"), 0);
    assert_int_equal(us_cors_list_add(a, "bad name"), -1);
    assert_int_equal(a->nelts, 2);
}

static void test_list_join(void **state)
{
    static const char *const extra[] = { "X-Trace", "authorization", "X-Other", "X-Trace", NULL };
    (void)state;
    assert_string_equal(us_cors_list_join(pool, "A, B", NULL), "A, B");
    assert_string_equal(us_cors_list_join(pool, "Authorization, Content-Type", list_of(extra)),
                        "Authorization, Content-Type, X-Trace, X-Other");
    assert_string_equal(us_cors_list_join(pool, "", list_of(extra)),
                        "X-Trace, authorization, X-Other");
    /* a default that merely begins like an extra name does not hide it */
    static const char *const prefix[] = { "Content", NULL };
    assert_string_equal(us_cors_list_join(pool, "Content-Type", list_of(prefix)),
                        "Content-Type, Content");
}

static void test_policy(void **state)
{
    static const char *const origins[] = { "https://app.example.com", "http://127.0.0.1:8081", NULL };
    static const char *const allow[] = { "X-Trace", NULL };
    static const char *const expose[] = { "ETag", "Retry-After", NULL };
    (void)state;
    assert_null(us_cors_policy_make(pool, 0, NULL, NULL, NULL, -1));
    assert_null(us_cors_policy_make(pool, 0, list_of((const char *const[]){ NULL }), NULL, NULL, -1));

    us_cors_policy *c = us_cors_policy_make(pool, 0, list_of(origins), list_of(allow),
                                            list_of(expose), -1);
    assert_non_null(c);
    assert_string_equal(c->allow_headers, US_CORS_ALLOW_HEADERS ", X-Trace");
    assert_string_equal(c->expose_headers, US_CORS_EXPOSE_HEADERS ", ETag");
    assert_string_equal(c->max_age, "600");
    /* a listed origin is echoed as the browser sent it */
    assert_string_equal(us_cors_allow_origin(pool, c, "https://app.example.com"),
                        "https://app.example.com");
    assert_string_equal(us_cors_allow_origin(pool, c, "https://app.example.com:443"),
                        "https://app.example.com:443");
    assert_string_equal(us_cors_allow_origin(pool, c, "http://127.0.0.1:8081"), "http://127.0.0.1:8081");
    /* anything else gets nothing */
    assert_null(us_cors_allow_origin(pool, c, NULL));
    assert_null(us_cors_allow_origin(pool, c, "null"));
    assert_null(us_cors_allow_origin(pool, c, "http://app.example.com"));
    assert_null(us_cors_allow_origin(pool, c, "https://app.example.com.evil.example"));
    assert_null(us_cors_allow_origin(pool, c, "https://evil.example/https://app.example.com"));
    assert_null(us_cors_allow_origin(pool, c, "http://127.0.0.1:8082"));
    assert_null(us_cors_allow_origin(pool, c, "http://127.0.0.1"));

    us_cors_policy *any = us_cors_policy_make(pool, 1, NULL, NULL, NULL, 0);
    assert_non_null(any);
    assert_string_equal(any->max_age, "0");
    assert_string_equal(any->allow_headers, US_CORS_ALLOW_HEADERS);
    assert_string_equal(us_cors_allow_origin(pool, any, "https://anything.example"), "*");
    assert_string_equal(us_cors_allow_origin(pool, any, "null"), "*");
    assert_null(us_cors_allow_origin(pool, any, NULL));
    assert_null(us_cors_allow_origin(pool, NULL, "https://app.example.com"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_origin_normalize),
        cmocka_unit_test(test_origin_refused),
        cmocka_unit_test(test_header_names),
        cmocka_unit_test(test_list_join),
        cmocka_unit_test(test_policy),
    };
    return fixture_run("us_cors", tests, NULL, NULL);
}

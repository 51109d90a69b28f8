/* Unit tests: the s3 backend's DeleteObjects document (keys escaped for
 * XML, or none when a key cannot be carried) and what its quiet answer
 * says was not deleted. The requests themselves run against radosgw in
 * test_us_storage_s3 and the s3 integration suite. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>
#include "fixture.h"

#include "us_s3_delete_many.h"

static apr_array_header_t *keys_of(const char *const *k, int n)
{
    apr_array_header_t *a = apr_array_make(pool, n, sizeof(const char *));
    for (int i = 0; i < n; i++)
        APR_ARRAY_PUSH(a, const char *) = k[i];
    return a;
}

#define HEAD "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Delete><Quiet>true</Quiet>"

/* The keys from..from+n, each escaped: &, <, > as entities; tab, line
 * feed and carriage return as character references (a literal CR would
 * reach the store as LF). */
static void test_doc(void **state)
{
    (void)state;
    static const char *const k[] = { "p/a", "p/b&c<d>'e\"", "p/t\tl\nc\r", "p/caf\xc3\xa9" };
    apr_array_header_t *a = keys_of(k, 4);
    assert_string_equal(us_s3_delete_doc(pool, a, 0, 1),
                        HEAD "<Object><Key>p/a</Key></Object></Delete>");
    assert_string_equal(us_s3_delete_doc(pool, a, 1, 3),
                        HEAD "<Object><Key>p/b&amp;c&lt;d&gt;'e\"</Key></Object>"
                             "<Object><Key>p/t&#9;l&#10;c&#13;</Key></Object>"
                             "<Object><Key>p/caf\xc3\xa9</Key></Object></Delete>");
}

/* A control character XML 1.0 has no way to carry: no document for any
 * batch holding it (those keys go one request each). */
static void test_doc_refuses_control_characters(void **state)
{
    (void)state;
    static const char *const k[] = { "p/a", "p/bell\a", "p/\x1f" };
    apr_array_header_t *a = keys_of(k, 3);
    assert_non_null(us_s3_delete_doc(pool, a, 0, 1));
    assert_null(us_s3_delete_doc(pool, a, 0, 2));
    assert_null(us_s3_delete_doc(pool, a, 2, 1));
    assert_true(us_s3_key_fits_xml("p/t\tl\nc\r&<>"));
    assert_false(us_s3_key_fits_xml("p/bell\a"));
    assert_false(us_s3_key_fits_xml("\x1f"));
}

/* Only the <Error> entries count, NoSuchKey's not (the key is gone); the
 * first one's key and code are told. */
static void test_failures(void **state)
{
    (void)state;
    const char *key, *code;
    assert_int_equal(us_s3_delete_failures(pool, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
                                                 "<DeleteResult xmlns=\"http://s3.amazonaws.com/"
                                                 "doc/2006-03-01/\"></DeleteResult>", &key, &code),
                     0);
    assert_null(key);
    assert_int_equal(us_s3_delete_failures(pool, "<DeleteResult/>", &key, &code), 0);
    assert_int_equal(
        us_s3_delete_failures(pool, "<DeleteResult>"
                                    "<Error><Key>p/gone</Key><Code>NoSuchKey</Code></Error>"
                                    "<Error><Key>p/a&amp;b</Key><Code>AccessDenied</Code>"
                                    "<Message>Access Denied</Message></Error>"
                                    "<Deleted><Key>p/c</Key></Deleted>"
                                    "<Error><Key>p/d</Key><Code>InternalError</Code></Error>"
                                    "</DeleteResult>", &key, &code),
        2);
    assert_string_equal(key, "p/a&b");
    assert_string_equal(code, "AccessDenied");
}

/* An answer that is no whole DeleteResult says nothing of any key. */
static void test_failures_of_no_result(void **state)
{
    (void)state;
    const char *key, *code;
    assert_int_equal(us_s3_delete_failures(pool, "", &key, &code), -1);
    assert_int_equal(us_s3_delete_failures(pool, NULL, &key, &code), -1);
    assert_int_equal(us_s3_delete_failures(pool, "<Error><Code>SlowDown</Code></Error>", &key, &code),
                     -1);
    assert_int_equal(us_s3_delete_failures(pool, "<DeleteResult><Error><Key>p/a</Key>", &key, &code),
                     -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_doc),
        cmocka_unit_test(test_doc_refuses_control_characters),
        cmocka_unit_test(test_failures),
        cmocka_unit_test(test_failures_of_no_result),
    };
    return fixture_run("us_s3_delete_many", tests, NULL, NULL);
}

/* Unit tests: API timestamps. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "us_time.h"

static void test_format(void **state)
{
    char buf[US_TS_LEN];
    (void)state;
    us_time_format(0, buf);
    assert_string_equal(buf, "1970-01-01T00:00:00.000000Z");
    us_time_format((apr_time_t)1795863600 * APR_USEC_PER_SEC + 123456, buf);
    assert_string_equal(buf, "2026-11-28T11:00:00.123456Z");
    us_time_format((apr_time_t)951782400 * APR_USEC_PER_SEC + 1, buf); /* leap day 2000 */
    assert_string_equal(buf, "2000-02-29T00:00:00.000001Z");
}

static void test_parse(void **state)
{
    apr_time_t t;
    (void)state;
    assert_true(us_time_parse("2026-11-28T11:00:00.123456Z", &t));
    assert_true(t == (apr_time_t)1795863600 * APR_USEC_PER_SEC + 123456);
    /* Python's isoformat() writes +00:00 */
    assert_true(us_time_parse("2026-11-28T11:00:00.123456+00:00", &t));
    assert_true(t == (apr_time_t)1795863600 * APR_USEC_PER_SEC + 123456);
    assert_true(us_time_parse("2026-11-28T12:00:00+01:00", &t));
    assert_true(t == (apr_time_t)1795863600 * APR_USEC_PER_SEC);
    assert_true(us_time_parse("2026-11-28T11:00:00.5Z", &t));
    assert_true(t == (apr_time_t)1795863600 * APR_USEC_PER_SEC + 500000);
    assert_false(us_time_parse("2026-11-28T11:00:00", &t));
    assert_false(us_time_parse("2026-13-28T11:00:00Z", &t));
    assert_false(us_time_parse("2026-11-28T11:00:00.Z", &t));
    assert_false(us_time_parse("2026-11-28T11:00:00Zjunk", &t));
    assert_false(us_time_parse("", &t));
}

static void test_roundtrip(void **state)
{
    char buf[US_TS_LEN];
    apr_time_t t;
    (void)state;
    for (apr_time_t v = 0; v < (apr_time_t)4102444800 * APR_USEC_PER_SEC;
         v += (apr_time_t)86399 * APR_USEC_PER_SEC + 999999) {
        us_time_format(v, buf);
        assert_true(us_time_parse(buf, &t));
        assert_true(t == v);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_roundtrip),
    };
    return cmocka_run_group_tests_name("us_time", tests, NULL, NULL);
}

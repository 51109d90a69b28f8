/* Unit tests: API timestamps. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include "fixture.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

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

/* What us_time_format wrote with gmtime_r + snprintf before it went stdio-free. */
static void format_reference(apr_time_t t, char out[US_TS_LEN])
{
    time_t secs = (time_t)(t / APR_USEC_PER_SEC);
    long usec = (long)(t % APR_USEC_PER_SEC);
    struct tm tm;
    char tmp[96];
    if (usec < 0) {
        usec += APR_USEC_PER_SEC;
        secs -= 1;
    }
    gmtime_r(&secs, &tm);
    snprintf(tmp, sizeof(tmp), "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, usec);
    memcpy(out, tmp, US_TS_LEN - 1);
    out[US_TS_LEN - 1] = '\0';
}

static void check_like_reference(apr_time_t t)
{
    char want[US_TS_LEN], got[US_TS_LEN];
    format_reference(t, want);
    us_time_format(t, got);
    if (strcmp(want, got) != 0)
        fail_msg("t=%lld: gmtime_r %s, us_time_format %s", (long long)t, want, got);
}

/* Byte for byte what gmtime_r + snprintf write, from year 0 to past 9999. */
static void test_format_like_gmtime(void **state)
{
    const apr_time_t year0 = (apr_time_t)-62167219200LL * APR_USEC_PER_SEC;
    const apr_time_t year10000 = (apr_time_t)253402300800LL * APR_USEC_PER_SEC;
    uint64_t x = 88172645463325252ULL;
    (void)state;
    /* every ~5.3 days and some odd microseconds over the whole range */
    const apr_time_t margin = (apr_time_t)800 * 86400 * APR_USEC_PER_SEC;
    for (apr_time_t t = year0 - margin; t < year10000 + margin;
         t += (apr_time_t)460801 * APR_USEC_PER_SEC + 123457)
        check_like_reference(t);
    /* the edges of the fast path, of days and of the epoch */
    static const apr_time_t edges[] = { 0, 1, -1, APR_USEC_PER_SEC, -APR_USEC_PER_SEC,
                                        86400LL * APR_USEC_PER_SEC - 1,
                                        -86400LL * APR_USEC_PER_SEC };
    for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++)
        check_like_reference(edges[i]);
    for (int d = -3; d <= 3; d++) {
        check_like_reference(year0 + d);
        check_like_reference(year10000 + d);
        check_like_reference(year0 + d * APR_USEC_PER_SEC);
        check_like_reference(year10000 + d * APR_USEC_PER_SEC);
    }
    /* random instants between 1900 and 2200, every second of a few days */
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        long long span = 9467280000LL * APR_USEC_PER_SEC; /* 300 years */
        check_like_reference((apr_time_t)(x % (uint64_t)span) - 2208988800LL * APR_USEC_PER_SEC);
    }
    for (apr_time_t t = (apr_time_t)951696000 * APR_USEC_PER_SEC; /* 2000-02-28 */
         t < (apr_time_t)951955200 * APR_USEC_PER_SEC; t += APR_USEC_PER_SEC + 1)
        check_like_reference(t);
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

/* More than six fractional digits round to the microsecond as PostgreSQL
 * rounds them (a stored metadata value and a filter literal agree), the
 * last microsecond of a second carrying into the next. */
static void test_parse_rounds_long_fractions(void **state)
{
    apr_time_t t;
    const apr_time_t base = (apr_time_t)1795863600 * APR_USEC_PER_SEC;
    (void)state;
    assert_true(us_time_parse("2026-11-28T11:00:00.1234567Z", &t));
    assert_true(t == base + 123457);
    assert_true(us_time_parse("2026-11-28T11:00:00.12345649Z", &t));
    assert_true(t == base + 123456);
    assert_true(us_time_parse("2026-11-28T11:00:00.0000015Z", &t));
    assert_true(t == base + 2);
    assert_true(us_time_parse("2026-11-28T11:00:00.9999996Z", &t));
    assert_true(t == base + APR_USEC_PER_SEC);
    assert_true(us_time_parse("2026-11-28T11:00:00.00000000000000000000000000000000000000000000000000"
                              "000000000000000000000000000000000000001Z", &t));
    assert_true(t == base);
}

/* A day the month has, leap years included: none rolls over to the next month. */
static void test_parse_days_of_the_month(void **state)
{
    apr_time_t t;
    (void)state;
    assert_true(us_time_parse("2024-02-29T00:00:00Z", &t));
    assert_true(us_time_parse("2000-02-29T00:00:00Z", &t));
    assert_true(us_time_parse("2026-04-30T00:00:00Z", &t));
    assert_true(us_time_parse("2026-12-31T00:00:00Z", &t));
    assert_false(us_time_parse("2024-02-30T00:00:00Z", &t));
    assert_false(us_time_parse("2023-02-29T00:00:00Z", &t));
    assert_false(us_time_parse("1900-02-29T00:00:00Z", &t));
    assert_false(us_time_parse("2026-04-31T00:00:00Z", &t));
    assert_false(us_time_parse("2026-11-31T00:00:00Z", &t));
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
        cmocka_unit_test(test_format_like_gmtime),
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_parse_days_of_the_month),
        cmocka_unit_test(test_parse_rounds_long_fractions),
        cmocka_unit_test(test_roundtrip),
    };
    return fixture_run("us_time", tests, NULL, NULL);
}

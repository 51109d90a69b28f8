/* Unit tests: the Range header of a download against the file's size. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include "fixture.h"

#include "us_range.h"

#define FULL US_RANGE_FULL
#define PART US_RANGE_PARTIAL
#define NONE US_RANGE_UNSATISFIABLE
#define UNSET ((apr_off_t)-7) /* first and last are left alone unless PARTIAL */

typedef struct {
    const char *value;
    apr_off_t size;
    us_range_result want;
    apr_off_t first, last;
} range_case;

static void check_cases(const range_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const range_case *c = &cases[i];
        apr_off_t first = UNSET, last = UNSET;
        us_range_result got = us_range_parse(c->value, c->size, &first, &last);
        apr_off_t want_first = c->want == PART ? c->first : UNSET;
        apr_off_t want_last = c->want == PART ? c->last : UNSET;
        if (got != c->want || first != want_first || last != want_last)
            fail_msg("'%s' of %" APR_OFF_T_FMT " bytes: %d %" APR_OFF_T_FMT "-%" APR_OFF_T_FMT
                     ", want %d %" APR_OFF_T_FMT "-%" APR_OFF_T_FMT,
                     c->value ? c->value : "(none)", c->size, (int)got, first, last,
                     (int)c->want, want_first, want_last);
    }
}

static void test_one_range(void **state)
{
    static const range_case cases[] = {
        { "bytes=0-4", 100, PART, 0, 4 },
        { "bytes=10-19", 100, PART, 10, 19 },
        { "bytes=0-0", 100, PART, 0, 0 },
        { "bytes=99-99", 100, PART, 99, 99 },
        { "bytes=0-99", 100, PART, 0, 99 },
        { "bytes=000-004", 100, PART, 0, 4 },
        /* open-ended */
        { "bytes=90-", 100, PART, 90, 99 },
        { "bytes=0-", 100, PART, 0, 99 },
        { "bytes=99-", 100, PART, 99, 99 },
        /* suffix */
        { "bytes=-5", 100, PART, 95, 99 },
        { "bytes=-100", 100, PART, 0, 99 },
        { "bytes=-1", 1, PART, 0, 0 },
        /* the last byte clamped to size - 1, a suffix to the whole */
        { "bytes=50-1000", 100, PART, 50, 99 },
        { "bytes=-1000", 100, PART, 0, 99 },
        /* the unit in any case */
        { "Bytes=0-4", 100, PART, 0, 4 },
        { "BYTES=0-4", 100, PART, 0, 4 },
    };
    (void)state;
    check_cases(cases, sizeof cases / sizeof cases[0]);
}

static void test_unsatisfiable(void **state)
{
    static const range_case cases[] = {
        { "bytes=100-", 100, NONE, 0, 0 },
        { "bytes=100-200", 100, NONE, 0, 0 },
        { "bytes=2000-3000", 100, NONE, 0, 0 },
        { "bytes=-0", 100, NONE, 0, 0 },
        { "bytes=-000", 100, NONE, 0, 0 },
        { "bytes=0-", 0, NONE, 0, 0 },
        { "bytes=0-0", 0, NONE, 0, 0 },
        { "bytes=-0", 0, NONE, 0, 0 },
        /* satisfiable, but a range of 0 bytes has no Content-Range */
        { "bytes=-5", 0, FULL, 0, 0 },
    };
    (void)state;
    check_cases(cases, sizeof cases / sizeof cases[0]);
}

static void test_ignored(void **state)
{
    static const range_case cases[] = {
        { NULL, 100, FULL, 0, 0 },
        { "", 100, FULL, 0, 0 },
        { "bytes=", 100, FULL, 0, 0 },
        { "bytes=,", 100, FULL, 0, 0 },
        { "bytes", 100, FULL, 0, 0 },
        { "bytes=-", 100, FULL, 0, 0 },
        { "bytes=5-2", 100, FULL, 0, 0 },
        { "bytes=500-200", 100, FULL, 0, 0 },
        { "bytes=abc", 100, FULL, 0, 0 },
        { "bytes=0-4x", 100, FULL, 0, 0 },
        { "bytes=x0-4", 100, FULL, 0, 0 },
        { "bytes=0--4", 100, FULL, 0, 0 },
        { "bytes=--4", 100, FULL, 0, 0 },
        { "bytes=+0-4", 100, FULL, 0, 0 },
        { "bytes=0-+4", 100, FULL, 0, 0 },
        { "bytes=0x1-4", 100, FULL, 0, 0 },
        { "bytes=0-4;", 100, FULL, 0, 0 },
        { "bytes=1.5-4", 100, FULL, 0, 0 },
        { "bytesx=0-4", 100, FULL, 0, 0 },
        { "byte=0-4", 100, FULL, 0, 0 },
        { "items=0-4", 100, FULL, 0, 0 },
        { "=0-4", 100, FULL, 0, 0 },
        { "0-4", 100, FULL, 0, 0 },
        /* invalid even where no byte exists */
        { "bytes=5-2", 0, FULL, 0, 0 },
    };
    (void)state;
    check_cases(cases, sizeof cases / sizeof cases[0]);
}

/* Several ranges: the whole file, whether they overlap, are in order or
 * could be satisfied at all. */
static void test_several_ranges(void **state)
{
    static const range_case cases[] = {
        { "bytes=0-0,5-9", 100, FULL, 0, 0 },
        { "bytes=0-4,2-3", 100, FULL, 0, 0 },
        { "bytes=0-4, 6-8", 100, FULL, 0, 0 },
        { "bytes=2000-3000,0-1", 100, FULL, 0, 0 },
        { "bytes=200-,300-", 100, FULL, 0, 0 },
        { "bytes=-5,-5", 100, FULL, 0, 0 },
        { "bytes=0-4,abc", 100, FULL, 0, 0 },
    };
    (void)state;
    check_cases(cases, sizeof cases / sizeof cases[0]);
}

/* OWS at the value's ends and around commas (empty list elements
 * ignored); none around '=' or '-', or inside a number. */
static void test_whitespace(void **state)
{
    static const range_case cases[] = {
        { " bytes=0-4", 100, PART, 0, 4 },
        { "bytes=0-4 ", 100, PART, 0, 4 },
        { "\t bytes=0-4 \t", 100, PART, 0, 4 },
        { "bytes=0-4,", 100, PART, 0, 4 },
        { "bytes=0-4 , ", 100, PART, 0, 4 },
        { "bytes=,0-4", 100, PART, 0, 4 },
        { "bytes=, \t,0-4,,", 100, PART, 0, 4 },
        { "bytes= ,0-4", 100, PART, 0, 4 },
        { "bytes=,-3", 100, PART, 97, 99 },
        { "bytes= 0-4", 100, FULL, 0, 0 },
        { "bytes =0-4", 100, FULL, 0, 0 },
        { "bytes=0 -4", 100, FULL, 0, 0 },
        { "bytes=0- 4", 100, FULL, 0, 0 },
        { "bytes=0 - 4", 100, FULL, 0, 0 },
        { "bytes=1 2-20", 100, FULL, 0, 0 },
        { "bytes=0-4\n", 100, FULL, 0, 0 },
        { "bytes=0-4\r", 100, FULL, 0, 0 },
        { "bytes=0-4 6-8", 100, FULL, 0, 0 },
    };
    (void)state;
    check_cases(cases, sizeof cases / sizeof cases[0]);
}

/* Numbers past 64 bits: no overflow, compared exactly. */
static void test_large_numbers(void **state)
{
    static const range_case cases[] = {
        { "bytes=99999999999999999999999-", 100, NONE, 0, 0 },
        { "bytes=9223372036854775807-", 100, NONE, 0, 0 },
        { "bytes=9223372036854775808-", 100, NONE, 0, 0 },
        { "bytes=18446744073709551616-18446744073709551617", 100, NONE, 0, 0 },
        /* a > b where both are past 64 bits, in length and in digits */
        { "bytes=18446744073709551617-18446744073709551616", 100, FULL, 0, 0 },
        { "bytes=100000000000000000000-99999999999999999999", 100, FULL, 0, 0 },
        { "bytes=0000000000000000000000000005-0000000000000000000000000004", 100, FULL, 0, 0 },
        { "bytes=0000000000000000000000000004-0000000000000000000000000005", 100, PART, 4, 5 },
        { "bytes=0-99999999999999999999999", 100, PART, 0, 99 },
        { "bytes=-99999999999999999999999", 100, PART, 0, 99 },
        { "bytes=-9223372036854775807", 100, PART, 0, 99 },
        /* the largest sizes */
        { "bytes=9223372036854775806-", APR_INT64_MAX, PART, APR_INT64_MAX - 1, APR_INT64_MAX - 1 },
        { "bytes=-1", APR_INT64_MAX, PART, APR_INT64_MAX - 1, APR_INT64_MAX - 1 },
        { "bytes=9223372036854775807-", APR_INT64_MAX, NONE, 0, 0 },
        { "bytes=0-99999999999999999999999", APR_INT64_MAX, PART, 0, APR_INT64_MAX - 1 },
    };
    (void)state;
    check_cases(cases, sizeof cases / sizeof cases[0]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_range),
        cmocka_unit_test(test_unsatisfiable),
        cmocka_unit_test(test_ignored),
        cmocka_unit_test(test_several_ranges),
        cmocka_unit_test(test_whitespace),
        cmocka_unit_test(test_large_numbers),
    };
    return fixture_run("us_range", tests, NULL, NULL);
}

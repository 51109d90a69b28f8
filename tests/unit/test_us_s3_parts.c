/* Unit tests: the byte ranges of a copy in parts (UploadPartCopy). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include "fixture.h"

#include "us_s3_parts.h"

#define MIB (1024LL * 1024)
#define GIB (1024 * MIB)

static const us_s3_range *part(const apr_array_header_t *r, int i)
{
    return &APR_ARRAY_IDX(r, i, us_s3_range);
}

/* every byte once, in order, each part `size` long but the last */
static void assert_covers(const apr_array_header_t *r, long long size, long long each)
{
    long long next = 0;
    for (int i = 0; i < r->nelts; i++) {
        assert_true(part(r, i)->first == next);
        assert_true(part(r, i)->last >= part(r, i)->first);
        if (i < r->nelts - 1)
            assert_true(part(r, i)->last - part(r, i)->first + 1 == each);
        else
            assert_true(part(r, i)->last - part(r, i)->first + 1 <= each);
        next = part(r, i)->last + 1;
    }
    assert_true(next == size);
}

static void test_last_part_short(void **state)
{
    (void)state;
    apr_array_header_t *r = us_s3_part_ranges(pool, 20 * MIB + 7, 6 * MIB);
    assert_int_equal(r->nelts, 4);
    assert_true(part(r, 0)->first == 0 && part(r, 0)->last == 6 * MIB - 1);
    assert_true(part(r, 1)->first == 6 * MIB && part(r, 1)->last == 12 * MIB - 1);
    assert_true(part(r, 3)->first == 18 * MIB && part(r, 3)->last == 20 * MIB + 6);
    assert_covers(r, 20 * MIB + 7, 6 * MIB);
}

static void test_exact_multiple(void **state)
{
    (void)state;
    apr_array_header_t *r = us_s3_part_ranges(pool, 6 * GIB, 512 * MIB);
    assert_int_equal(r->nelts, 12);
    assert_true(part(r, 11)->first == 6 * GIB - 512 * MIB);
    assert_true(part(r, 11)->last == 6 * GIB - 1);
    assert_covers(r, 6 * GIB, 512 * MIB);
}

static void test_one_byte_over(void **state)
{
    (void)state;
    /* CopyObject's limit plus one byte: 10 full parts and one of one byte */
    apr_array_header_t *r = us_s3_part_ranges(pool, 5 * GIB + 1, 512 * MIB);
    assert_int_equal(r->nelts, 11);
    assert_true(part(r, 10)->first == 5 * GIB && part(r, 10)->last == 5 * GIB);
    assert_covers(r, 5 * GIB + 1, 512 * MIB);
    r = us_s3_part_ranges(pool, 1, 512 * MIB);
    assert_int_equal(r->nelts, 1);
    assert_true(part(r, 0)->first == 0 && part(r, 0)->last == 0);
}

static void test_degenerate(void **state)
{
    (void)state;
    assert_int_equal(us_s3_part_ranges(pool, 0, 512 * MIB)->nelts, 0);
    assert_int_equal(us_s3_part_ranges(pool, -5, 512 * MIB)->nelts, 0);
    apr_array_header_t *r = us_s3_part_ranges(pool, 3, 0);
    assert_int_equal(r->nelts, 3);
    assert_covers(r, 3, 1);
}

/* S3's largest object (5 TiB) in 512 MiB parts would take 10,240 parts:
 * the parts grow so that there are at most 10,000. */
static void test_at_most_10000_parts(void **state)
{
    (void)state;
    long long size = 5 * 1024 * GIB;
    apr_array_header_t *r = us_s3_part_ranges(pool, size, 512 * MIB);
    long long each = (size + US_S3_MAX_PARTS - 1) / US_S3_MAX_PARTS;
    assert_true(r->nelts <= US_S3_MAX_PARTS);
    assert_true(r->nelts >= US_S3_MAX_PARTS - 1);
    assert_covers(r, size, each);
    r = us_s3_part_ranges(pool, US_S3_MAX_PARTS * 5 * MIB, 5 * MIB);
    assert_int_equal(r->nelts, US_S3_MAX_PARTS);
    assert_covers(r, US_S3_MAX_PARTS * 5 * MIB, 5 * MIB);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_last_part_short),
        cmocka_unit_test(test_exact_multiple),
        cmocka_unit_test(test_one_byte_over),
        cmocka_unit_test(test_degenerate),
        cmocka_unit_test(test_at_most_10000_parts),
    };
    return fixture_run("us_s3_parts", tests, NULL, NULL);
}

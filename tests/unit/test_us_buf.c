/* Unit tests: the pool buffer grows geometrically and never past its limit. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include "fixture.h"
#include <string.h>

#include <apr_general.h>
#include "us_buf.h"


static void test_append_and_reset(void **state)
{
    us_buf b;
    (void)state;
    us_buf_init(&b, pool, 100);
    assert_null(b.data);
    assert_int_equal(us_buf_append(&b, "ab", 2), 0);
    assert_int_equal(us_buf_append(&b, "", 0), 0);
    assert_int_equal(us_buf_append(&b, "cd", 2), 0);
    assert_int_equal(b.len, 4);
    assert_string_equal(b.data, "abcd");
    us_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    assert_int_equal(us_buf_append(&b, "x", 1), 0);
    assert_string_equal(b.data, "x");
}

static void test_limit(void **state)
{
    us_buf b;
    char big[101];
    (void)state;
    memset(big, 'z', sizeof(big));
    us_buf_init(&b, pool, 100);
    assert_int_equal(us_buf_append(&b, big, 100), 0);
    assert_int_equal(us_buf_append(&b, "x", 1), -1);
    assert_int_equal(b.len, 100);
    assert_true(b.cap <= 101);
    us_buf_init(&b, pool, 100);
    assert_int_equal(us_buf_append(&b, big, 101), -1);
    assert_int_equal(b.len, 0);
}

/* a megabyte one byte at a time: every growth allocates a new buffer, and
 * all of them together stay within twice the final size (a copy per piece
 * would allocate the square of the length) */
static void test_byte_at_a_time_is_linear(void **state)
{
    us_buf b;
    const char *seen = NULL;
    apr_size_t allocated = 0;
    int growths = 0;
    (void)state;
    us_buf_init(&b, pool, 1 << 20);
    for (int i = 0; i < (1 << 20); i++) {
        assert_int_equal(us_buf_append(&b, "q", 1), 0);
        if (b.data != seen) {
            seen = b.data;
            allocated += b.cap;
            growths++;
        }
    }
    assert_int_equal(b.len, 1 << 20);
    assert_int_equal(b.data[(1 << 20) - 1], 'q');
    assert_int_equal(b.data[1 << 20], '\0');
    assert_int_equal(b.cap, (1 << 20) + 1);
    if (allocated > 2 * b.cap)
        fail_msg("allocated %zu for a buffer of %zu", (size_t)allocated, (size_t)b.cap);
    assert_true(growths <= 13);
}

/* a large buffer leaves the shared allocator; destroying the pool it was
 * made with takes its memory along */
static void test_large_buffer_has_an_allocator_of_its_own(void **state)
{
    apr_pool_t *p;
    us_buf b;
    char piece[4096];
    (void)state;
    memset(piece, 'x', sizeof(piece));
    apr_pool_create(&p, pool);
    us_buf_init(&b, p, 1 << 20);
    assert_int_equal(us_buf_append(&b, piece, sizeof(piece)), 0);
    assert_ptr_equal(apr_pool_allocator_get(b.pool), apr_pool_allocator_get(p));
    while (b.len < US_BUF_UNSHARED_ABOVE)
        assert_int_equal(us_buf_append(&b, piece, sizeof(piece)), 0);
    assert_ptr_not_equal(apr_pool_allocator_get(b.pool), apr_pool_allocator_get(p));
    assert_ptr_equal(apr_pool_parent_get(b.pool), p);
    assert_int_equal(b.data[0], 'x');
    assert_int_equal(b.data[b.len - 1], 'x');
    apr_pool_destroy(p); /* valgrind: nothing of the buffer's is left */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_and_reset),
        cmocka_unit_test(test_limit),
        cmocka_unit_test(test_byte_at_a_time_is_linear),
        cmocka_unit_test(test_large_buffer_has_an_allocator_of_its_own),
    };
    return fixture_run("us_buf", tests, NULL, NULL);
}

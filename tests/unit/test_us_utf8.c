/* Unit tests: UTF-8 well-formedness, decoding and encoding (us_utf8.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include "fixture.h"

#include <stdint.h>
#include <string.h>

#include "us_utf8.h"

static size_t decode(const char *s, size_t n, int flags, uint32_t *cp)
{
    *cp = 0xDEADBEEF;
    return us_utf8_decode((const unsigned char *)s, n, flags, cp);
}

static void test_decode_well_formed(void **state)
{
    uint32_t cp;
    (void)state;
    assert_int_equal(decode("A", 1, 0, &cp), 1);
    assert_int_equal(cp, 0x41);
    assert_int_equal(decode("", 1, 0, &cp), 1); /* the NUL */
    assert_int_equal(cp, 0);
    assert_int_equal(decode("\xC3\xA9", 2, 0, &cp), 2);
    assert_int_equal(cp, 0xE9);
    assert_int_equal(decode("\xE0\xA0\x80", 3, 0, &cp), 3);
    assert_int_equal(cp, 0x800);
    assert_int_equal(decode("\xEF\xBF\xBF", 3, 0, &cp), 3);
    assert_int_equal(cp, 0xFFFF);
    assert_int_equal(decode("\xF0\x90\x80\x80", 4, 0, &cp), 4);
    assert_int_equal(cp, 0x10000);
    assert_int_equal(decode("\xF4\x8F\xBF\xBF", 4, 0, &cp), 4);
    assert_int_equal(cp, 0x10FFFF);
}

static void test_decode_ill_formed(void **state)
{
    static const struct { const char *s; size_t n; } BAD[] = {
        { "\x80", 1 },             /* stray continuation */
        { "\xC0\x80", 2 },         /* overlong NUL */
        { "\xC1\xBF", 2 },         /* overlong */
        { "\xE0\x9F\xBF", 3 },     /* overlong below U+0800 */
        { "\xF0\x8F\xBF\xBF", 4 }, /* overlong below U+10000 */
        { "\xF4\x90\x80\x80", 4 }, /* above U+10FFFF */
        { "\xF5\x80\x80\x80", 4 },
        { "\xC3", 1 },             /* cut short */
        { "\xE2\x82", 2 },
        { "\xE2\x28\xA1", 3 },     /* not a continuation */
        { "\xED\xA0\x80", 3 },     /* a surrogate */
    };
    uint32_t cp;
    (void)state;
    for (size_t i = 0; i < sizeof(BAD) / sizeof(BAD[0]); i++) {
        assert_int_equal(decode(BAD[i].s, BAD[i].n, 0, &cp), 0);
        assert_int_equal(cp, 0xDEADBEEF);
    }
}

static void test_decode_surrogatepass(void **state)
{
    uint32_t cp;
    (void)state;
    assert_int_equal(decode("\xED\xA0\x80", 3, US_UTF8_SURROGATEPASS, &cp), 3);
    assert_int_equal(cp, 0xD800);
    assert_int_equal(decode("\xED\xBF\xBF", 3, US_UTF8_SURROGATEPASS, &cp), 3);
    assert_int_equal(cp, 0xDFFF);
    /* everything else stays as strict */
    assert_int_equal(decode("\xC0\x80", 2, US_UTF8_SURROGATEPASS, &cp), 0);
    assert_int_equal(decode("\xED\xA0", 2, US_UTF8_SURROGATEPASS, &cp), 0);
    assert_int_equal(decode("\xF4\x90\x80\x80", 4, US_UTF8_SURROGATEPASS, &cp), 0);
}

static void test_seq_maximal_subpart(void **state)
{
    size_t bad = 0;
    (void)state;
    assert_int_equal(us_utf8_seq((const unsigned char *)"\xE2\x82\x28", 3, &bad), 0);
    assert_int_equal(bad, 2);
    assert_int_equal(us_utf8_seq((const unsigned char *)"\xF0\x9F\x98", 3, &bad), 0);
    assert_int_equal(bad, 3);
    assert_int_equal(us_utf8_seq((const unsigned char *)"\xFF", 1, &bad), 0);
    assert_int_equal(bad, 1);
}

/* Every scalar value (and every surrogate) encodes to what decodes back. */
static void test_encode_roundtrip(void **state)
{
    unsigned char buf[4];
    uint32_t back;
    (void)state;
    for (uint32_t c = 0; c <= 0x10FFFF; c++) {
        size_t n = us_utf8_encode(c, buf);
        assert_int_equal(n, c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4);
        int surrogate = c >= 0xD800 && c <= 0xDFFF;
        assert_int_equal(us_utf8_decode(buf, n, 0, &back), surrogate ? 0 : n);
        assert_int_equal(us_utf8_decode(buf, n, US_UTF8_SURROGATEPASS, &back), n);
        assert_int_equal(back, c);
    }
    assert_int_equal(us_utf8_encode(0x20AC, buf), 3);
    assert_memory_equal(buf, "\xE2\x82\xAC", 3);
}

/* The count is the same wherever the pieces are cut. */
static void test_count_in_pieces(void **state)
{
    static const char text[] = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z"; /* a é € 😀 z */
    const size_t n = sizeof(text) - 1;
    (void)state;
    for (size_t cut1 = 0; cut1 <= n; cut1++)
        for (size_t cut2 = cut1; cut2 <= n; cut2++) {
            us_utf8_counter c;
            memset(&c, 0, sizeof(c));
            us_utf8_count(&c, text, cut1);
            us_utf8_count(&c, text + cut1, cut2 - cut1);
            us_utf8_count(&c, text + cut2, n - cut2);
            assert_int_equal(us_utf8_count_end(&c), 5);
        }
}

static void test_count_ill_formed(void **state)
{
    static const char *const BAD[] = { "\xff", "a\xc3", "\xe0\x80\x80", "\xed\xa0\x80", "\xc3(", "\x80" };
    (void)state;
    for (size_t i = 0; i < sizeof(BAD) / sizeof(BAD[0]); i++) {
        us_utf8_counter c;
        memset(&c, 0, sizeof(c));
        for (const char *b = BAD[i]; *b; b++) /* byte by byte */
            us_utf8_count(&c, b, 1);
        assert_int_equal(us_utf8_count_end(&c), -1);
    }
    us_utf8_counter empty;
    memset(&empty, 0, sizeof(empty));
    us_utf8_count(&empty, "", 0);
    assert_int_equal(us_utf8_count_end(&empty), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_well_formed),
        cmocka_unit_test(test_decode_ill_formed),
        cmocka_unit_test(test_decode_surrogatepass),
        cmocka_unit_test(test_seq_maximal_subpart),
        cmocka_unit_test(test_encode_roundtrip),
        cmocka_unit_test(test_count_in_pieces),
        cmocka_unit_test(test_count_ill_formed),
    };
    return fixture_run("us_utf8", tests, NULL, NULL);
}

/* Unit tests: a double as Python's repr() writes it (us_float_repr.c). The
 * table's texts are CPython 3.11's repr() of each value. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include "fixture.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "us_float_repr.h"

static void test_python_repr_table(void **state)
{
    static const struct {
        double d;
        const char *repr;
    } cases[] = {
        { 0x0.0p+0, "0.0" },
        { -0x0.0p+0, "-0.0" },
        { 0x1.199999999999ap+0, "1.1" },
        { 0x1.3333333333333p-2, "0.3" },
        { 0x1.3333333333334p-2, "0.30000000000000004" },
        { 0x1.1c37937e08000p+53, "1e+16" },
        { 0x1.c6bf526340000p+49, "1000000000000000.0" },
        { 0x1.b69b4ba630f35p+56, "1.2345678901234568e+17" },
        { 0x1.4f8b588e368f1p-17, "1e-05" },
        { 0x1.a36e2eb1c432dp-14, "0.0001" },
        { 0x0.0000000000001p-1022, "5e-324" },
        { 0x0.0000000000003p-1022, "1.5e-323" },
        { 0x1.0000000000000p-1022, "2.2250738585072014e-308" },
        { 0x1.fffffffffffffp+1023, "1.7976931348623157e+308" },
        { 0x1.0000000000000p+1023, "8.98846567431158e+307" },
        { 0x1.0000000000000p+53, "9007199254740992.0" },
        { 0x1.0000000000000p+1, "2.0" },
        { 0x1.9000000000000p+6, "100.0" },
        { 0x1.0000000000000p-1, "0.5" },
        { -0x1.8e92add6b83f1p-31, "-7.25e-10" },
        { 0x1.5555555555555p-2, "0.3333333333333333" },
        { 0x1.0f0cf064dd592p+73, "1e+22" },
        { 0x1.52d02c7e14af6p+76, "1e+23" },
        { 0x1.34a456d5cfaadp+10, "1234.5678" },
        { 0x1.ad7f29abcaf48p-24, "1e-07" },
        { -0x1.1eb2d66005835p+997, "-1.5e+300" },
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[US_FLOAT_REPR_MAX];
        size_t n = us_float_repr(cases[i].d, out);
        if (strcmp(out, cases[i].repr) != 0 || n != strlen(cases[i].repr))
            fail_msg("case %zu: %s, Python %s", i, out, cases[i].repr);
    }
}

static void test_not_finite_is_none(void **state)
{
    char out[US_FLOAT_REPR_MAX] = "x";
    (void)state;
    assert_int_equal(us_float_repr(NAN, out), 0);
    assert_string_equal(out, "");
    assert_int_equal(us_float_repr(INFINITY, out), 0);
    assert_int_equal(us_float_repr(-INFINITY, out), 0);
}

/* xorshift64*: the same doubles on every run */
static uint64_t rnd(void)
{
    static uint64_t s = 0x9E3779B97F4A7C15ULL;
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return s * 0x2545F4914F6CDD1DULL;
}

/* The number of significant digits of a repr: its mantissa's digits
 * without the leading and the trailing zeros. */
static int significant(const char *r)
{
    int n = 0, last = 0, seen = 0;
    for (const char *c = r; *c && *c != 'e'; c++) {
        if (*c < '0' || *c > '9')
            continue;
        seen |= *c != '0';
        if (seen)
            n++;
        if (*c != '0')
            last = n;
    }
    return last;
}

/* Every finite double of random bits: its repr reads back as the same
 * double, and the correctly rounded text with one digit fewer does not. */
static void test_random_doubles_read_back_shortest(void **state)
{
    (void)state;
    for (int i = 0; i < 50000; i++) {
        uint64_t bits = rnd();
        double d;
        memcpy(&d, &bits, sizeof(d));
        if (!isfinite(d) || d == 0)
            continue;
        char out[US_FLOAT_REPR_MAX], shorter[48];
        size_t n = us_float_repr(d, out);
        assert_true(n > 0 && n < US_FLOAT_REPR_MAX);
        if (strtod(out, NULL) != d)
            fail_msg("%a: %s reads back as another double", d, out);
        int k = significant(out);
        if (k > 1) {
            snprintf(shorter, sizeof(shorter), "%.*e", k - 2, d);
            if (strtod(shorter, NULL) == d)
                fail_msg("%a: %s, but %s reads back too", d, out, shorter);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_python_repr_table),
        cmocka_unit_test(test_not_finite_is_none),
        cmocka_unit_test(test_random_doubles_read_back_shortest),
    };
    return fixture_run("us_float_repr", tests, NULL, NULL);
}

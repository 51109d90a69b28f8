/* Unit tests: UUID4 generation (canonical text form). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include "fixture.h"
#include <string.h>

#include <apr_general.h>
#include "us_uuid.h"

static void test_canonical_form(void **state)
{
    char a[37], b[37], parsed[37], reason[128];
    (void)state;
    us_uuid4(b);
    for (int round = 0; round < 2000; round++) {
        memset(a, 'X', sizeof(a));
        us_uuid4(a);
        assert_int_equal(strlen(a), 36);
        for (int i = 0; i < 36; i++) {
            if (i == 8 || i == 13 || i == 18 || i == 23)
                assert_int_equal(a[i], '-');
            else if (!strchr("0123456789abcdef", a[i]) || a[i] == '\0')
                fail_msg("not lower-case hex at %d: %s", i, a);
        }
        assert_int_equal(a[14], '4');                 /* version 4 */
        assert_non_null(strchr("89ab", a[19]));        /* RFC 4122 variant */
        assert_true(us_uuid_parse(a, parsed, reason, sizeof(reason)));
        assert_string_equal(parsed, a);               /* already canonical */
        assert_string_not_equal(a, b);
        memcpy(b, a, sizeof(a));
    }
}

/* Timed ids: canonical version 4, the millisecond first (later ids sort
 * after earlier ones), unique within one millisecond. */
static void test_timed_ids_sort_by_time(void **state)
{
    char a[37], b[37], parsed[37], reason[128];
    const long long t = 1764800000123456LL; /* 2025-12-03T22:13:20.123456Z */
    (void)state;
    us_uuid4_timed(a, t);
    assert_memory_equal(a, "019ae646-f07b", 13);
    for (int round = 0; round < 2000; round++) {
        us_uuid4_timed(b, t + 1000 * (round / 2));
        assert_int_equal(b[14], '4');
        assert_non_null(strchr("89ab", b[19]));
        assert_true(us_uuid_parse(b, parsed, reason, sizeof(reason)));
        assert_string_equal(parsed, b);
        assert_string_not_equal(a, b);
        if (round % 2 == 0 && round > 0)
            assert_true(strcmp(a, b) < 0);
        memcpy(a, b, sizeof(a));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_canonical_form),
        cmocka_unit_test(test_timed_ids_sort_by_time),
    };
    return fixture_run("us_uuid", tests, NULL, NULL);
}

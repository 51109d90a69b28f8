/* Unit tests: the SQL shape of filters (us_filter_sql.h), in both dialects;
 * the stores' suites check what the SQL selects. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include "fixture.h"

#include <string.h>

#include "us_filter_sql.h"
#include "us_pg_filter.h"
#include "us_sqlite_filter.h"

static const us_filter_dialect *const DIALECTS[] = { &us_sqlite_filter_dialect, &us_pg_filter_dialect };

static const us_odata_node *parsed(const char *filter)
{
    us_odata_node *root = NULL;
    const char *err = NULL;
    if (!us_odata_parse(pool, filter, strlen(filter), &root, &err))
        fail_msg("%s: %s", filter, err);
    return root;
}

static int placeholders(const char *sql)
{
    int n = 0;
    for (; *sql; sql++)
        n += *sql == '%';
    return n;
}

/* An ordering with null writes no placeholder and binds no parameter. */
static void test_ordering_with_null_binds_nothing(void **state)
{
    (void)state;
    for (int d = 0; d < 2; d++) {
        static const char *const FILTERS[] = { "n gt null", "n le null or n eq 3", "not (a/b lt null)",
                                               "n ge null and name eq 'x'" };
        for (int i = 0; i < 4; i++) {
            apr_array_header_t *args = apr_array_make(pool, 4, sizeof(const void *));
            const char *sql = us_filter_sql(pool, parsed(FILTERS[i]), args, DIALECTS[d]);
            if (placeholders(sql) != args->nelts)
                fail_msg("%s: %d placeholders, %d parameters: %s", FILTERS[i], placeholders(sql),
                         args->nelts, sql);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ordering_with_null_binds_nothing),
    };
    return fixture_run("us_filter_sql", tests, NULL, NULL);
}

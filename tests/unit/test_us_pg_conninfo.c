/* Unit tests: libpq's connection string gets a connect_timeout unless the
 * operator gave one, in the string or in httpd's environment. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include "fixture.h"
#include <string.h>

#include "us_pg_conninfo.h"

static void added_to_key_value_pairs(void **state)
{
    apr_pool_t *p = pool;
    (void)state;
    assert_string_equal(us_pg_conninfo_with_timeout(p, "host=db dbname=uploads", NULL),
                        "host=db dbname=uploads connect_timeout=10");
    assert_string_equal(us_pg_conninfo_with_timeout(p, "", NULL), "connect_timeout=10");
    assert_string_equal(us_pg_conninfo_with_timeout(p, "host=db", ""),
                        "host=db connect_timeout=10");
}

static void added_to_a_uri(void **state)
{
    apr_pool_t *p = pool;
    (void)state;
    assert_string_equal(us_pg_conninfo_with_timeout(p, "postgresql://db/uploads", NULL),
                        "postgresql://db/uploads?connect_timeout=10");
    assert_string_equal(us_pg_conninfo_with_timeout(p, "postgres://db/u?sslmode=require", NULL),
                        "postgres://db/u?sslmode=require&connect_timeout=10");
}

static void the_operators_own_timeout_is_kept(void **state)
{
    apr_pool_t *p = pool;
    (void)state;
    const char *given = "host=db connect_timeout=3";
    assert_ptr_equal(us_pg_conninfo_with_timeout(p, given, NULL), given);
    const char *uri = "postgresql://db/u?connect_timeout=2";
    assert_ptr_equal(us_pg_conninfo_with_timeout(p, uri, NULL), uri);
    const char *plain = "host=db";
    assert_ptr_equal(us_pg_conninfo_with_timeout(p, plain, "5"), plain);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(added_to_key_value_pairs),
        cmocka_unit_test(added_to_a_uri),
        cmocka_unit_test(the_operators_own_timeout_is_kept),
    };
    return fixture_run("us_pg_conninfo", tests, NULL, NULL);
}

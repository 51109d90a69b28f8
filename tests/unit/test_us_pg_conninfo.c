/* Unit tests: libpq's connection string gets a connect_timeout, TCP
 * keepalives and a tcp_user_timeout for each the operator did not name (a
 * connect_timeout not either when httpd's environment gives one). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include "fixture.h"
#include <string.h>

#include "us_pg_conninfo.h"

#define TCP " keepalives_idle=10 keepalives_interval=5 keepalives_count=3 tcp_user_timeout=30000"
#define TCP_Q "keepalives_idle=10&keepalives_interval=5&keepalives_count=3&tcp_user_timeout=30000"

static const char *with(const char *conninfo, const char *env)
{
    return us_pg_conninfo_with_defaults(pool, conninfo, env);
}

static void added_to_key_value_pairs(void **state)
{
    (void)state;
    assert_string_equal(with("host=db dbname=uploads", NULL),
                        "host=db dbname=uploads connect_timeout=10" TCP);
    assert_string_equal(with("", NULL), "connect_timeout=10" TCP);
    assert_string_equal(with("host=db", ""), "host=db connect_timeout=10" TCP);
}

static void added_to_a_uri(void **state)
{
    (void)state;
    assert_string_equal(with("postgresql://db/uploads", NULL),
                        "postgresql://db/uploads?connect_timeout=10&" TCP_Q);
    assert_string_equal(with("postgres://db/u?sslmode=require", NULL),
                        "postgres://db/u?sslmode=require&connect_timeout=10&" TCP_Q);
}

static void the_operators_own_timeout_is_kept(void **state)
{
    (void)state;
    assert_string_equal(with("host=db connect_timeout=3", NULL),
                        "host=db connect_timeout=3" TCP);
    assert_string_equal(with("postgresql://db/u?connect_timeout=2", NULL),
                        "postgresql://db/u?connect_timeout=2&" TCP_Q);
    assert_string_equal(with("host=db", "5"), "host=db" TCP); /* PGCONNECT_TIMEOUT */
    assert_string_equal(with("", "5"), "keepalives_idle=10 keepalives_interval=5"
                                          " keepalives_count=3 tcp_user_timeout=30000");
    assert_string_equal(with("postgresql://db/u", "5"), "postgresql://db/u?" TCP_Q);
}

static void the_operators_own_tcp_settings_are_kept(void **state)
{
    (void)state;
    assert_string_equal(with("host=db keepalives_idle=60 tcp_user_timeout=0", NULL),
                        "host=db keepalives_idle=60 tcp_user_timeout=0 connect_timeout=10"
                        " keepalives_interval=5 keepalives_count=3");
    assert_string_equal(with("host=db keepalives_count = 9 keepalives_interval='2'", NULL),
                        "host=db keepalives_count = 9 keepalives_interval='2'"
                        " connect_timeout=10 keepalives_idle=10 tcp_user_timeout=30000");
    assert_string_equal(with("postgresql://db/u?keepalives_interval=1&tcp_user_timeout=5000",
                             NULL),
                        "postgresql://db/u?keepalives_interval=1&tcp_user_timeout=5000"
                        "&connect_timeout=10&keepalives_idle=10&keepalives_count=3");
    /* all named: the string itself */
    const char *all = "host=db connect_timeout=1 keepalives_idle=1 keepalives_interval=1"
                      " keepalives_count=1 tcp_user_timeout=1";
    assert_ptr_equal(with(all, NULL), all);
    const char *all_uri = "postgres://db/u?connect_timeout=1&keepalives_idle=1"
                          "&keepalives_interval=1&keepalives_count=1&tcp_user_timeout=1";
    assert_ptr_equal(with(all_uri, NULL), all_uri);
    const char *no_connect = "host=db keepalives_idle=1 keepalives_interval=1"
                             " keepalives_count=1 tcp_user_timeout=1";
    assert_ptr_equal(with(no_connect, "5"), no_connect);
}

static void keys_are_matched_whole(void **state)
{
    (void)state;
    /* keepalives is a prefix of keepalives_idle; a value or a password
     * holding a key's name names nothing */
    assert_string_equal(with("host=db keepalives=1", NULL),
                        "host=db keepalives=1 connect_timeout=10" TCP);
    assert_string_equal(with("host=db password='connect_timeout=1 tcp_user_timeout=1'", NULL),
                        "host=db password='connect_timeout=1 tcp_user_timeout=1'"
                        " connect_timeout=10" TCP);
    assert_string_equal(with("postgresql://db/u?application_name=keepalives_idle", NULL),
                        "postgresql://db/u?application_name=keepalives_idle"
                        "&connect_timeout=10&" TCP_Q);
    assert_string_equal(with("host=connect_timeout", NULL),
                        "host=connect_timeout connect_timeout=10" TCP);
}

static void a_string_libpq_cannot_parse_is_kept(void **state)
{
    (void)state;
    const char *bad = "host=db nonsense=1";
    assert_ptr_equal(with(bad, NULL), bad);
    const char *unterminated = "host=db password='x";
    assert_ptr_equal(with(unterminated, NULL), unterminated);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(added_to_key_value_pairs),
        cmocka_unit_test(added_to_a_uri),
        cmocka_unit_test(the_operators_own_timeout_is_kept),
        cmocka_unit_test(the_operators_own_tcp_settings_are_kept),
        cmocka_unit_test(keys_are_matched_whole),
        cmocka_unit_test(a_string_libpq_cannot_parse_is_kept),
    };
    return fixture_run("us_pg_conninfo", tests, NULL, NULL);
}

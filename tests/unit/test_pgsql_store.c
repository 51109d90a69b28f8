/* Unit tests: the store conformance suite (store_conformance.h) against the
 * PostgreSQL backend on a private cluster (pg_fixture.h), then what only
 * this backend answers: a connection the server dropped is reopened. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_dbd.h>
#include <apr_strings.h>
#include "fixture.h"
#include "pg_fixture.h"
#include "store_conformance.h"

static const char *pg_create(apr_pool_t *p, const char *test_name)
{
    const char *params = pg_fixture_create_db(p, test_name);
    if (!params)
        fail_msg("cannot create a database for %s", test_name);
    return params;
}

static void pg_destroy(apr_pool_t *p, const char *params)
{
    pg_fixture_drop_db(p, params);
}

static const store_target pg_target = { &us_pgsql_backend, pg_create, pg_destroy };

/* The server ends every session of the database (as a restart would): the
 * next statement reports US_DB_BUSY (503 for a client), and the one after
 * runs on a new connection with its statements prepared again. */
static void test_dropped_connection_reopens(void **state)
{
    us_session s = sc_session(sc_uuid(pool, 1), "ws", "u1", SC_T0, 100), got;
    (void)state;
    sc_setup(NULL);
    us_db *db = sc_open(pool);
    assert_int_equal(us_session_insert(db, pool, &s, 10, SC_T0), US_DB_OK);
    const char *dbname = strrchr(sc_params, '=') + 1;
    assert_int_equal(pg_fixture_admin(apr_psprintf(pool,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '%s'"
        " AND pid <> pg_backend_pid()", dbname)), 0);
    us_db_rc rc = us_session_get(db, pool, "ws", s.id, SC_T0, &got);
    assert_int_equal(rc, US_DB_BUSY);
    assert_non_null(strstr(us_db_error(db), "us_pg_session_get"));
    assert_int_equal(us_session_get(db, pool, "ws", s.id, SC_T0, &got), US_DB_OK);
    assert_string_equal(got.status, "OPEN");
    assert_int_equal(us_session_close(db, pool, "ws", s.id, SC_T0 + 1), US_DB_OK);
    us_db_close(db);
    sc_teardown(NULL);
}

static void test_unreachable_server(void **state)
{
    us_store_cfg *cfg = NULL;
    us_db *db = NULL;
    const char *err = NULL;
    (void)state;
    assert_int_equal(us_store_configure(pool, "pgsql", "host=127.0.0.1 port=1 connect_timeout=2",
                                        &cfg, &err), US_DB_OK);
    assert_null(us_store_home(cfg, pool));
    assert_false(us_store_params_are_path("pgsql"));
    assert_int_equal(us_db_open(pool, cfg, &db, &err), US_DB_BUSY);
    assert_non_null(strstr(err, "cannot connect to PostgreSQL"));
    assert_int_equal(us_store_migrate(cfg, pool, &err), US_DB_BUSY);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dropped_connection_reopens),
        cmocka_unit_test(test_unreachable_server),
    };
    const char *why = NULL;
    if (fixture_start() != 0)
        return fixture_stop(1);
    apr_dbd_init(pool);
    if (pg_fixture_start(&why) != 0) {
        const char *required = getenv("US_PG_REQUIRED");
        fprintf(stderr, "test_pgsql_store: %s: no private PostgreSQL (%s)\n",
                required && *required == '1' ? "FAILED" : "SKIPPED", why);
        return fixture_stop(required && *required == '1');
    }
    int rc = store_conformance_run(&pg_target);
    rc |= cmocka_run_group_tests_name("us_store: pgsql", tests, NULL, NULL);
    pg_fixture_stop();
    return fixture_stop(rc);
}

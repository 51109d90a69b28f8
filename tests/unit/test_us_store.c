/* Unit tests: the store conformance suite (store_conformance.h) against the
 * SQLite backend, then what only the front and SQLite answer. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_strings.h>
#include "sqlite_fixture.h"
#include "store_conformance.h"
#include "data_meter.h"

static const char *sqlite_create(apr_pool_t *p, const char *test_name)
{
    const char *path = apr_pstrcat(p, fixture_path(test_name), ".db", NULL);
    fixture_db_remove(path);
    return path;
}

static void sqlite_destroy(apr_pool_t *p, const char *params)
{
    (void)p;
    fixture_db_remove(params);
}

static const store_target sqlite_target = { &us_sqlite_backend, sqlite_create, sqlite_destroy, 0 };

static void test_unknown_driver(void **state)
{
    us_store_cfg *cfg = NULL;
    const char *err = NULL;
    (void)state;
    assert_int_equal(us_store_configure(pool, "oracle", "host=db", &cfg, &err), US_DB_ERROR);
    assert_string_equal(err, "no store backend for driver 'oracle' in this build");
    assert_false(us_store_params_are_path("pgsql"));
    assert_true(us_store_params_are_path("sqlite3"));
}

/* The store's files beside the database, for the children's user. */
static void test_sqlite_files(void **state)
{
    const us_store_cfg *cfg = fixture_cfg("/var/lib/us/store.db");
    apr_array_header_t *files = us_store_user_files(cfg, pool);
    (void)state;
    assert_string_equal(us_store_home(cfg, pool), "/var/lib/us/");
    assert_int_equal(files->nelts, 4);
    assert_string_equal(APR_ARRAY_IDX(files, 0, const char *), "/var/lib/us/store.db");
    assert_string_equal(APR_ARRAY_IDX(files, 1, const char *), "/var/lib/us/store.db-wal");
    assert_string_equal(APR_ARRAY_IDX(files, 2, const char *), "/var/lib/us/store.db-shm");
    assert_string_equal(APR_ARRAY_IDX(files, 3, const char *), "/var/lib/us/store.db.lock");
}

static void test_bad_database(void **state)
{
    const char *err = NULL;
    us_db *db;
    us_store_cfg *cfg = fixture_cfg("/nonexistent/dir/x.db");
    (void)state;
    assert_int_equal(us_store_migrate(cfg, pool, &err), US_DB_ERROR);
    assert_non_null(err);
    assert_int_not_equal(us_db_open(pool, cfg, &db, &err), US_DB_OK);
    assert_int_equal(us_store_prepare_files(cfg, pool, &err), US_DB_ERROR);
    assert_non_null(strstr(err, "cannot create the lock file /nonexistent/dir/x.db.lock"));
}

/* A database that cannot be opened: every acquire fails with the reason,
 * and the store's pool keeps nothing of the failed attempts (each left its
 * error text in it: 20,000 attempts grew the process by 2.4 MB). */
static void test_failed_connects_keep_nothing(void **state)
{
    us_store *st = NULL;
    us_db *db = NULL;
    const char *err = NULL;
    us_store_cfg *cfg = fixture_cfg("/nonexistent/dir/x.db");
    (void)state;
    assert_int_equal(us_store_create(pool, cfg, 4, &st), APR_SUCCESS);
    assert_int_not_equal(us_store_acquire(st, &db, &err), US_DB_OK);
    assert_non_null(err);
    assert_non_null(strstr(err, "x.db"));
    size_t before = data_bytes();
    for (int i = 0; i < 20000; i++) {
        err = NULL;
        assert_int_not_equal(us_store_acquire(st, &db, &err), US_DB_OK);
        assert_non_null(err);
    }
    size_t grown = data_bytes() > before ? data_bytes() - before : 0;
    if (data_meter_trusted() && grown > 256 * 1024)
        fail_msg("20,000 failed connects grew the process by %zu bytes", grown);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unknown_driver),
        cmocka_unit_test(test_sqlite_files),
        cmocka_unit_test(test_bad_database),
        cmocka_unit_test(test_failed_connects_keep_nothing),
    };
    if (sqlite_fixture_start() != 0)
        return fixture_stop(1);
    int rc = store_conformance_run(&sqlite_target);
    rc |= cmocka_run_group_tests_name("us_store: sqlite", tests, NULL, NULL);
    return fixture_stop(rc);
}

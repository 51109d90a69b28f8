/* Unit tests: the apr_dbd store against a temporary SQLite database. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <apr_general.h>
#include <apr_strings.h>
#include <apr_thread_proc.h>
#include "sqlite_fixture.h"

static char dbpath[64];

#define SEC(n) ((apr_time_t)(n) * APR_USEC_PER_SEC)
static const apr_time_t T0 = SEC(1795863600);

static int setup(void **state)
{
    const char *err = NULL;
    (void)state;
    snprintf(dbpath, sizeof(dbpath), "/tmp/us_store_test_%ld.db", (long)getpid());
    fixture_db_create(dbpath);
    /* migrating again is a no-op */
    assert_int_equal(us_store_migrate(fixture_cfg(dbpath), pool, &err), US_DB_OK);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    fixture_db_remove(dbpath);
    return 0;
}

static us_db *open_db(void)
{
    us_db *db = NULL;
    const char *err = NULL;
    if (us_db_open(pool, fixture_cfg(dbpath), &db, &err) != US_DB_OK)
        fail_msg("open: %s", err);
    return db;
}

static us_session make(const char *id, const char *ws, const char *user, apr_time_t created,
                       long lifetime)
{
    us_session s;
    memset(&s, 0, sizeof(s));
    s.id = id;
    s.workspace = ws;
    s.user_id = user;
    s.given_name = "Ada";
    s.family_name = "O'Brien; DROP TABLE us_sessions;--";
    s.write_mode = "OVERWRITE";
    s.parallel = 1;
    s.created_at = created;
    s.expires_at = created + SEC(lifetime);
    return s;
}

static void test_insert_get_close(void **state)
{
    us_db *db = open_db();
    us_session s = make("00000000-0000-4000-8000-000000000001", "ws", "u1", T0, 100), got;
    (void)state;
    assert_int_equal(us_session_insert(db, pool, &s, 10, T0), US_DB_OK);
    assert_int_equal(us_session_get(db, pool, "ws", s.id, T0, &got), US_DB_OK);
    assert_string_equal(got.id, s.id);
    assert_string_equal(got.status, "OPEN");
    assert_string_equal(got.write_mode, "OVERWRITE");
    assert_string_equal(got.family_name, "O'Brien; DROP TABLE us_sessions;--");
    assert_int_equal(got.parallel, 1);
    assert_true(got.created_at == T0);
    assert_true(got.expires_at == T0 + SEC(100));
    assert_int_equal(got.uploaded_files + got.finished_files + got.failed_files, 0);

    /* another workspace does not see it */
    assert_int_equal(us_session_get(db, pool, "other", s.id, T0, &got), US_DB_NOTFOUND);
    assert_int_equal(us_session_close(db, pool, "other", s.id, T0), US_DB_NOTFOUND);

    assert_int_equal(us_session_close(db, pool, "ws", s.id, T0 + 1), US_DB_OK);
    assert_int_equal(us_session_close(db, pool, "ws", s.id, T0 + 2), US_DB_CONFLICT);
    assert_int_equal(us_session_get(db, pool, "ws", s.id, T0, &got), US_DB_OK);
    assert_string_equal(got.status, "CLOSED");
    assert_int_equal(us_session_close(db, pool, "ws", "nope", T0), US_DB_NOTFOUND);
    us_db_close(db);
}

static void test_expiry_is_derived(void **state)
{
    us_db *db = open_db();
    us_session s = make("00000000-0000-4000-8000-000000000002", "ws-exp", "u2", T0, 1), got;
    (void)state;
    assert_int_equal(us_session_insert(db, pool, &s, 10, T0), US_DB_OK);
    assert_int_equal(us_session_get(db, pool, "ws-exp", s.id, T0 + SEC(1) - 1, &got), US_DB_OK);
    assert_string_equal(got.status, "OPEN");
    assert_int_equal(us_session_get(db, pool, "ws-exp", s.id, T0 + SEC(1), &got), US_DB_OK);
    assert_string_equal(got.status, "EXPIRED");
    /* an expired session cannot be closed */
    assert_int_equal(us_session_close(db, pool, "ws-exp", s.id, T0 + SEC(2)), US_DB_CONFLICT);
    us_db_close(db);
}

static void test_open_limit(void **state)
{
    us_db *db = open_db();
    char id[40];
    (void)state;
    for (int i = 0; i < 3; i++) {
        snprintf(id, sizeof(id), "00000000-0000-4000-8000-0000000001%02d", i);
        us_session s = make(apr_pstrdup(pool, id), "ws-lim", "u3", T0, 100);
        assert_int_equal(us_session_insert(db, pool, &s, 3, T0), US_DB_OK);
    }
    us_session s = make("00000000-0000-4000-8000-000000000199", "ws-lim", "u3", T0, 100);
    assert_int_equal(us_session_insert(db, pool, &s, 3, T0), US_DB_LIMIT);
    /* another user is not limited by u3's sessions */
    us_session o = make("00000000-0000-4000-8000-000000000198", "ws-lim", "u4", T0, 100);
    assert_int_equal(us_session_insert(db, pool, &o, 3, T0), US_DB_OK);
    /* closing one frees a slot; so does expiry */
    assert_int_equal(us_session_close(db, pool, "ws-lim", "00000000-0000-4000-8000-000000000100", T0), US_DB_OK);
    assert_int_equal(us_session_insert(db, pool, &s, 3, T0), US_DB_OK);
    us_session later = make("00000000-0000-4000-8000-000000000197", "ws-lim", "u3", T0, 100);
    assert_int_equal(us_session_insert(db, pool, &later, 3, T0), US_DB_LIMIT);
    assert_int_equal(us_session_insert(db, pool, &later, 3, T0 + SEC(100)), US_DB_OK);
    us_db_close(db);
}

static void test_list_paging_and_filters(void **state)
{
    us_db *db = open_db();
    apr_array_header_t *rows;
    long long total;
    char id[40];
    (void)state;
    /* 5 sessions, created one second apart; #1 and #3 expire quickly */
    for (int i = 0; i < 5; i++) {
        snprintf(id, sizeof(id), "00000000-0000-4000-8000-0000000002%02d", i);
        us_session s = make(apr_pstrdup(pool, id), "ws-list", "u5", T0 + SEC(i),
                            (i == 1 || i == 3) ? 1 : 1000);
        assert_int_equal(us_session_insert(db, pool, &s, 100, T0), US_DB_OK);
    }
    assert_int_equal(us_session_close(db, pool, "ws-list", "00000000-0000-4000-8000-000000000200", T0), US_DB_OK);
    apr_time_t now = T0 + SEC(10);

    assert_int_equal(us_session_list(db, pool, "ws-list", -1, 2, 0, now, &rows, &total), US_DB_OK);
    assert_int_equal(total, 5);
    assert_int_equal(rows->nelts, 2);
    /* newest first */
    assert_string_equal(APR_ARRAY_IDX(rows, 0, us_session).id, "00000000-0000-4000-8000-000000000204");
    assert_string_equal(APR_ARRAY_IDX(rows, 1, us_session).id, "00000000-0000-4000-8000-000000000203");
    assert_string_equal(APR_ARRAY_IDX(rows, 1, us_session).status, "EXPIRED");

    assert_int_equal(us_session_list(db, pool, "ws-list", -1, 2, 4, now, &rows, &total), US_DB_OK);
    assert_int_equal(rows->nelts, 1);
    assert_string_equal(APR_ARRAY_IDX(rows, 0, us_session).status, "CLOSED");

    assert_int_equal(us_session_list(db, pool, "ws-list", 1, 10, 0, now, &rows, &total), US_DB_OK);
    assert_int_equal(total, 2);
    assert_int_equal(rows->nelts, 2);
    for (int i = 0; i < rows->nelts; i++)
        assert_string_equal(APR_ARRAY_IDX(rows, i, us_session).status, "EXPIRED");

    assert_int_equal(us_session_list(db, pool, "ws-list", 0, 10, 0, now, &rows, &total), US_DB_OK);
    assert_int_equal(total, 3);
    for (int i = 0; i < rows->nelts; i++)
        assert_string_not_equal(APR_ARRAY_IDX(rows, i, us_session).status, "EXPIRED");

    assert_int_equal(us_session_list(db, pool, "ws-none", -1, 10, 0, now, &rows, &total), US_DB_OK);
    assert_int_equal(total, 0);
    assert_int_equal(rows->nelts, 0);
    us_db_close(db);
}

/* Many connections close one session at once: exactly one wins. */
#define CLOSERS 16
static int close_results[CLOSERS];

static void *APR_THREAD_FUNC closer(apr_thread_t *t, void *data)
{
    int i = (int)(long)data;
    apr_pool_t *p;
    us_db *db = NULL;
    const char *err = NULL;
    apr_pool_create_unmanaged_ex(&p, NULL, NULL);
    if (us_db_open(p, fixture_cfg(dbpath), &db, &err) == US_DB_OK)
        close_results[i] = us_session_close(db, p, "ws-race",
                                            "00000000-0000-4000-8000-000000000300", T0);
    else
        close_results[i] = -1;
    apr_pool_destroy(p);
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

static void test_concurrent_close(void **state)
{
    us_db *db = open_db();
    apr_thread_t *th[CLOSERS];
    us_session s = make("00000000-0000-4000-8000-000000000300", "ws-race", "u6", T0, 100);
    (void)state;
    assert_int_equal(us_session_insert(db, pool, &s, 10, T0), US_DB_OK);
    us_db_close(db);
    for (long i = 0; i < CLOSERS; i++)
        assert_int_equal(apr_thread_create(&th[i], NULL, closer, (void *)i, pool), APR_SUCCESS);
    int ok = 0, conflict = 0;
    for (int i = 0; i < CLOSERS; i++) {
        apr_status_t rv;
        apr_thread_join(&rv, th[i]);
        if (close_results[i] != US_DB_OK && close_results[i] != US_DB_CONFLICT)
            print_message("closer %d: rc %d\n", i, close_results[i]);
        ok += close_results[i] == US_DB_OK;
        conflict += close_results[i] == US_DB_CONFLICT;
    }
    assert_int_equal(ok, 1);
    assert_int_equal(conflict, CLOSERS - 1);
}

static void test_pool_acquire_release(void **state)
{
    us_store *st;
    us_db *a, *b;
    const char *err = NULL;
    (void)state;
    assert_int_equal(us_store_create(pool, fixture_cfg(dbpath), 2, &st), APR_SUCCESS);
    assert_int_equal(us_store_acquire(st, &a, &err), US_DB_OK);
    assert_int_equal(us_store_acquire(st, &b, &err), US_DB_OK);
    assert_ptr_not_equal(a, b);
    us_store_release(st, a, 0);
    us_store_release(st, b, 1);
    assert_int_equal(us_store_acquire(st, &a, &err), US_DB_OK);
    us_store_release(st, a, 0);
}

static void test_bad_database(void **state)
{
    const char *err = NULL;
    us_db *db;
    (void)state;
    assert_int_equal(us_store_migrate(fixture_cfg("/nonexistent/dir/x.db"), pool, &err), US_DB_ERROR);
    assert_non_null(err);
    assert_int_not_equal(us_db_open(pool, fixture_cfg("/nonexistent/dir/x.db"), &db, &err), US_DB_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_insert_get_close),
        cmocka_unit_test(test_expiry_is_derived),
        cmocka_unit_test(test_open_limit),
        cmocka_unit_test(test_list_paging_and_filters),
        cmocka_unit_test(test_concurrent_close),
        cmocka_unit_test(test_pool_acquire_release),
        cmocka_unit_test(test_bad_database),
    };
    if (fixture_start() != 0)
        return 1;
    int rc = cmocka_run_group_tests_name("us_store", tests, setup, teardown);
    fixture_stop();
    return rc;
}

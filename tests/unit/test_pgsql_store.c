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

#include <unistd.h>

#include <apr_atomic.h>
#include <apr_dbd.h>
#include <apr_strings.h>
#include "fixture.h"
#include "pg_fixture.h"
#include "us_filter_sql.h"
#include "us_pg_filter.h"
#include "us_pg_sql.h"
#include "us_pg_store.h"
#include "us_ops.h"
#include "store_conformance.h"
#include "data_meter.h"

/* Set: the databases created for a test write their messages in this
 * locale's language (in_german). */
static const char *messages_locale;
/* Set: the databases created for a test have this default collation
 * (CREATE DATABASE's options, in_collation). */
static const char *db_collation;

static const char *pg_create(apr_pool_t *p, const char *test_name)
{
    const char *params = pg_fixture_create_db(p, test_name, db_collation ? db_collation : "");
    if (!params)
        fail_msg("cannot create a database for %s", test_name);
    if (messages_locale &&
        pg_fixture_admin(apr_psprintf(p, "ALTER DATABASE %s SET lc_messages = '%s'",
                                      strrchr(params, '=') + 1, messages_locale)) != 0)
        fail_msg("the cluster cannot write messages in %s", messages_locale);
    return params;
}

static void pg_destroy(apr_pool_t *p, const char *params)
{
    pg_fixture_drop_db(p, params);
}

static const store_target pg_target = { &us_pgsql_backend, pg_create, pg_destroy, 1 };

/* The test's own connection to the database params, outside the store: it
 * holds locks, undoes migrations and reads what the store wrote. *drv:
 * the driver, for the calls on it; apr_dbd_close(*drv, h) closes it. */
static apr_dbd_t *raw_open_to(const char *params, const apr_dbd_driver_t **drv)
{
    apr_dbd_t *h = NULL;
    const char *err = NULL;
    assert_int_equal(apr_dbd_get_driver(pool, "pgsql", drv), APR_SUCCESS);
    if (apr_dbd_open_ex(*drv, pool, params, &h, &err) != APR_SUCCESS)
        fail_msg("cannot open %s: %s", params, err);
    return h;
}

/* raw_open_to the test's database. */
static apr_dbd_t *raw_open(const apr_dbd_driver_t **drv)
{
    return raw_open_to(sc_params, drv);
}

/* A worker thread's connection, in a pool of its own (*p); NULL when it
 * cannot be opened. */
static us_db *thread_db(apr_pool_t **p)
{
    us_db *db = NULL;
    const char *err = NULL;
    apr_pool_create_unmanaged_ex(p, NULL, NULL);
    return us_db_open(*p, sc_cfg, &db, &err) == US_DB_OK ? db : NULL;
}

/* A worker thread's end: its connection closed, its pool gone. */
static void *thread_end(apr_thread_t *t, apr_pool_t *p, us_db *db)
{
    if (db)
        us_db_close(db);
    apr_pool_destroy(p);
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

/* Ends every session of the database but the admin's own (as a restart
 * would), and waits until their processes are gone. */
static void end_sessions_of_the_database(void)
{
    const char *dbname = strrchr(sc_params, '=') + 1;
    assert_int_equal(pg_fixture_admin(apr_psprintf(pool,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '%s'"
        " AND pid <> pg_backend_pid()", dbname)), 0);
    for (int i = 0; i < 500; i++) {
        if (pg_fixture_admin(apr_psprintf(pool, /* fails while one is left */
                "SELECT 1 / (COUNT(*) = 0)::int FROM pg_stat_activity WHERE datname = '%s'"
                " AND pid <> pg_backend_pid()", dbname)) == 0)
            return;
        apr_sleep(apr_time_from_msec(10));
    }
    fail_msg("the database's sessions did not end");
}

/* The server ends every session of the database (as a restart would): an
 * idle connection it ended is opened again before its next statement,
 * with its statements prepared again, so no request pays for the restart
 * with a 503. */
static void test_dropped_connection_reopens(void **state)
{
    us_session s = sc_session(sc_uuid(pool, 1), "ws", "u1", SC_T0, 100), got;
    (void)state;
    sc_setup(NULL);
    us_db *db = sc_open(pool);
    assert_int_equal(us_session_insert(db, pool, &s, 10, SC_T0), US_DB_OK);
    end_sessions_of_the_database();
    assert_int_equal(us_session_get(db, pool, "ws", s.id, SC_T0, &got), US_DB_OK);
    assert_string_equal(got.status, "OPEN");
    end_sessions_of_the_database();
    assert_int_equal(us_session_close(db, pool, "ws", s.id, SC_T0 + 1), US_DB_OK);
    assert_int_equal(us_session_get(db, pool, "ws", s.id, SC_T0, &got), US_DB_OK);
    assert_string_equal(got.status, "CLOSED");
    us_db_close(db);
    sc_teardown(NULL);
}

/* Leases are judged by the database's clock: a claimer whose clock runs an
 * hour ahead does not take over a claim heartbeated a moment ago (by a
 * node whose clock lags an hour), and does once the lease has run out. */
static void test_lease_on_the_database_clock(void **state)
{
    us_session c;
    const apr_interval_time_t lease = apr_time_from_msec(400), hour = apr_time_from_sec(3600);
    (void)state;
    sc_setup(NULL);
    us_db *db = sc_open(pool);
    const char *id = sc_queued(db, 900, "ws-clock", 0, SC_T0 + 1);
    apr_time_t now = apr_time_now();
    assert_int_equal(us_ingest_claim(db, pool, "behind", now - hour, now - hour - lease, &c),
                     US_DB_OK);
    assert_string_equal(c.id, id);
    assert_int_equal(us_ingest_claim(db, pool, "ahead", now + hour, now + hour - lease, &c),
                     US_DB_NOTFOUND);
    apr_sleep(lease / 2);
    assert_int_equal(us_ingest_heartbeat(db, pool, id, "behind", now - hour), US_DB_OK);
    apr_sleep(lease / 2);
    now = apr_time_now();
    assert_int_equal(us_ingest_claim(db, pool, "ahead", now + hour, now + hour - lease, &c),
                     US_DB_NOTFOUND);
    apr_sleep(lease);
    now = apr_time_now();
    assert_int_equal(us_ingest_claim(db, pool, "ahead", now + hour, now + hour - lease, &c),
                     US_DB_OK);
    assert_string_equal(c.id, id);
    assert_int_equal(us_ingest_heartbeat(db, pool, id, "behind", now), US_DB_CONFLICT);
    us_db_close(db);
    sc_teardown(NULL);
}

static us_db_rc interleaved_rc;

static void *APR_THREAD_FUNC interleaved_insert(apr_thread_t *t, void *data)
{
    apr_pool_t *p;
    (void)data;
    us_db *db = thread_db(&p);
    us_session s = sc_session(sc_uuid(p, 99), "ws", "u-int", SC_T0, 100);
    interleaved_rc = db ? us_session_insert(db, p, &s, 2, SC_T0) : US_DB_ERROR;
    return thread_end(t, p, db);
}

/* The open-session limit under READ COMMITTED with a fixed interleaving:
 * a create's transaction has taken the user's last slot and not committed
 * yet when another create runs. The second waits for the first (the
 * counter row's lock) and then counts it: US_DB_LIMIT. (A check by a
 * count in the second's own snapshot lets it in as a third.) */
static void test_limit_with_a_create_in_flight(void **state)
{
    const apr_dbd_driver_t *drv = NULL;
    apr_thread_t *th;
    apr_status_t rv;
    int nrows = 0;
    (void)state;
    sc_setup(NULL);
    us_db *db = sc_open(pool);
    us_session first = sc_session(sc_uuid(pool, 1), "ws", "u-int", SC_T0, 100);
    assert_int_equal(us_session_insert(db, pool, &first, 2, SC_T0), US_DB_OK);
    us_db_close(db);
    apr_dbd_t *h = raw_open(&drv);
    /* what a create holds (us_sessions_create's statements), left uncommitted */
    static const char *const in_flight[] = {
        "BEGIN",
        "INSERT INTO us_user_open (user_id, n) VALUES ('u-int', 0)"
        " ON CONFLICT (user_id) DO UPDATE SET n = us_user_open.n",
        "UPDATE us_user_open SET n = n + 1 WHERE user_id = 'u-int' AND n < 2",
        "INSERT INTO us_sessions (id, workspace, user_id, given_name, family_name, write_mode,"
        " parallel, status, created_at, expires_at) VALUES ('in-flight', 'ws', 'u-int', 'A',"
        " 'B', 'KEEP', 1, 'OPEN', 0, 9000000000000000)",
        NULL
    };
    for (int i = 0; in_flight[i]; i++)
        assert_int_equal(apr_dbd_query(drv, h, &nrows, in_flight[i]), 0);
    interleaved_rc = US_DB_OK;
    assert_int_equal(apr_thread_create(&th, NULL, interleaved_insert, NULL, pool), APR_SUCCESS);
    apr_sleep(apr_time_from_msec(300)); /* the other create is waiting by now */
    assert_int_equal(apr_dbd_query(drv, h, &nrows, "COMMIT"), 0);
    apr_thread_join(&rv, th);
    assert_int_equal(interleaved_rc, US_DB_LIMIT);
    apr_dbd_close(drv, h);
    sc_teardown(NULL);
}

/* ---- a connection lost while COMMIT is under way ------------------------ */

static us_db_rc lost_rc;
static int lost_unknown;

static void *APR_THREAD_FUNC add_a_file(apr_thread_t *t, void *data)
{
    apr_pool_t *p;
    apr_array_header_t *deleted = NULL;
    us_workspace_file f = { (const char *)data, "lost.txt", "{}", 1, SC_T0, -1, 0 };
    us_db *db = thread_db(&p);
    lost_rc = db ? us_workspace_file_add(db, p, "ws-lost", &f, "KEEP", &deleted) : US_DB_ERROR;
    lost_unknown = db ? us_db_outcome_unknown(db) : -1;
    return thread_end(t, p, db);
}

/* Adds a file in a thread while the trigger us_test_slow sleeps in its
 * transaction, ends that backend from outside, and returns what the add
 * said: its rc in lost_rc, whether the outcome is unknown in lost_unknown. */
static void add_and_end_its_backend(const apr_dbd_driver_t *drv, apr_dbd_t *h, int n)
{
    apr_thread_t *th;
    apr_status_t rv;
    apr_dbd_results_t *res = NULL;
    const char *dbname = strrchr(sc_params, '=') + 1;
    const char *sleeping = apr_psprintf(pool, "SELECT pid FROM pg_stat_activity WHERE datname = "
                                        "'%s' AND wait_event = 'PgSleep'", dbname);
    lost_rc = US_DB_OK;
    lost_unknown = -1;
    assert_int_equal(apr_thread_create(&th, NULL, add_a_file, (void *)sc_uuid(pool, n), pool),
                     APR_SUCCESS);
    int found = 0;
    for (int i = 0; i < 1000 && !found; i++) {
        res = NULL;
        assert_int_equal(apr_dbd_select(drv, pool, h, &res, sleeping, 1), 0);
        found = apr_dbd_num_tuples(drv, res) > 0;
        if (!found)
            apr_sleep(apr_time_from_msec(5));
    }
    assert_true(found);
    assert_int_equal(pg_fixture_admin(apr_psprintf(pool,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '%s'"
        " AND wait_event = 'PgSleep'", dbname)), 0);
    apr_thread_join(&rv, th);
}

/* A write transaction whose connection is lost while its COMMIT runs (a
 * deferred trigger sleeps in it) may have been committed: the store says
 * the outcome is unknown, so the caller keeps the file's bytes. Lost
 * before the COMMIT (the same trigger, not deferred, sleeps in the
 * INSERT), nothing was committed, and it says so. */
static void test_outcome_unknown_when_lost_at_commit(void **state)
{
    const apr_dbd_driver_t *drv = NULL;
    int nrows = 0;
    (void)state;
    sc_setup(NULL);
    us_db_close(sc_open(pool)); /* the schema */
    apr_dbd_t *h = raw_open(&drv);
    assert_int_equal(apr_dbd_query(drv, h, &nrows,
        "CREATE FUNCTION us_test_slow() RETURNS trigger LANGUAGE plpgsql AS "
        "'BEGIN PERFORM pg_sleep(30); RETURN NULL; END'"), 0);
    assert_int_equal(apr_dbd_query(drv, h, &nrows,
        "CREATE CONSTRAINT TRIGGER us_test_slow AFTER INSERT ON us_files DEFERRABLE "
        "INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION us_test_slow()"), 0);
    add_and_end_its_backend(drv, h, 1);
    assert_int_equal(lost_rc, US_DB_BUSY);
    assert_int_equal(lost_unknown, 1);

    assert_int_equal(apr_dbd_query(drv, h, &nrows, "DROP TRIGGER us_test_slow ON us_files"), 0);
    assert_int_equal(apr_dbd_query(drv, h, &nrows,
        "CREATE TRIGGER us_test_slow AFTER INSERT ON us_files FOR EACH ROW "
        "EXECUTE FUNCTION us_test_slow()"), 0);
    add_and_end_its_backend(drv, h, 2);
    assert_int_equal(lost_rc, US_DB_BUSY);
    assert_int_equal(lost_unknown, 0);

    assert_int_equal(apr_dbd_query(drv, h, &nrows, "DROP TRIGGER us_test_slow ON us_files"), 0);
    us_db *db = sc_open(pool);
    apr_array_header_t *deleted = NULL;
    us_workspace_file f = { sc_uuid(pool, 3), "kept.txt", "{}", 1, SC_T0, -1, 0 };
    assert_int_equal(us_workspace_file_add(db, pool, "ws-lost", &f, "KEEP", &deleted), US_DB_OK);
    assert_int_equal(us_db_outcome_unknown(db), 0);
    us_db_close(db);
    apr_dbd_close(drv, h);
    sc_teardown(NULL);
}

#define DEADLOCK_LOCK_TIMEOUT_MS 500 /* below deadlock_timeout (1 s): it fires first */
static us_db_rc deadlocked_rc;

static void *APR_THREAD_FUNC deadlocked_insert(apr_thread_t *t, void *data)
{
    apr_pool_t *p;
    (void)data;
    us_db *db = thread_db(&p);
    us_session s = sc_session(sc_uuid(p, 98), "ws-dl", "u-dl", SC_T0, 100);
    deadlocked_rc = db ? us_session_insert(db, p, &s, 10, SC_T0) : US_DB_ERROR;
    return thread_end(t, p, db);
}

/* Whether a lock of the database is waited for. */
static int a_lock_is_waited_for(const apr_dbd_driver_t *drv, apr_dbd_t *h)
{
    apr_dbd_results_t *res = NULL;
    int nrows = 0;
    /* on the test's own database: a cluster given by US_PG_CONNINFO may
     * have other users waiting; read afresh, not as first read in h's
     * transaction (the statistics' snapshot lasts until its end) */
    assert_int_equal(apr_dbd_query(drv, h, &nrows, "SELECT pg_stat_clear_snapshot()"), 0);
    assert_int_equal(apr_dbd_select(drv, pool, h, &res,
                                    "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                                    " AND datname = current_database()", 1), 0);
    return apr_dbd_num_tuples(drv, res) > 0;
}

/* The first column of every row sql answers on the connection h, one line
 * each (a newline after each). */
static const char *column_lines_on(const apr_dbd_driver_t *drv, apr_dbd_t *h, const char *sql)
{
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    const char *lines = "";
    assert_int_equal(apr_dbd_select(drv, pool, h, &res, sql, 0), 0);
    while (apr_dbd_get_row(drv, pool, res, &row, -1) == 0)
        lines = apr_pstrcat(pool, lines, apr_dbd_get_entry(drv, row, 0), "\n", NULL);
    return lines;
}

/* The same on a connection of its own to the test's database. */
static const char *sc_column_lines(const char *sql)
{
    const apr_dbd_driver_t *drv = NULL;
    apr_dbd_t *h = raw_open(&drv);
    const char *lines = column_lines_on(drv, h, sql);
    apr_dbd_close(drv, h);
    return lines;
}

/* The first column of a one-row answer on the test's database. */
static const char *sc_answer(const char *sql)
{
    const char *lines = sc_column_lines(sql);
    const char *end = strchr(lines, '\n');
    assert_non_null(end);
    assert_string_equal(end + 1, ""); /* one row */
    return apr_pstrndup(pool, lines, (apr_size_t)(end - lines));
}

static int ordered_delete_n;

static void *APR_THREAD_FUNC delete_b_then_a(apr_thread_t *t, void *data)
{
    apr_pool_t *p;
    apr_array_header_t *names, *deleted = NULL;
    (void)data;
    us_db *db = thread_db(&p);
    names = apr_array_make(p, 3, sizeof(const char *));
    APR_ARRAY_PUSH(names, const char *) = "b.txt";
    APR_ARRAY_PUSH(names, const char *) = "a.txt";
    APR_ARRAY_PUSH(names, const char *) = "b.txt";
    ordered_delete_n = -1;
    if (db && us_workspace_files_delete(db, p, "ws-ord", names, &deleted) == US_DB_OK)
        ordered_delete_n = deleted->nelts;
    return thread_end(t, p, db);
}

/* DELETE /files locks its rows in the names' byte order, whatever order
 * its client sent them in (the order of an ingest batch's names too): a
 * transaction holding a.txt's row that then asks for b.txt's gets it,
 * where the delete holding b.txt and waiting for a.txt made a deadlock. */
static void test_files_delete_locks_in_byte_order(void **state)
{
    (void)state;
    sc_setup(NULL);
    us_db *db = sc_open(pool);
    const apr_dbd_driver_t *drv = NULL;
    apr_array_header_t *deleted;
    apr_thread_t *th;
    apr_status_t rv;
    int nrows = 0;
    us_workspace_file a = sc_workspace_file(2101, "a.txt", SC_T0 + 1);
    us_workspace_file b = sc_workspace_file(2102, "b.txt", SC_T0 + 2);
    assert_int_equal(us_workspace_file_add(db, pool, "ws-ord", &a, "KEEP", &deleted), US_DB_OK);
    assert_int_equal(us_workspace_file_add(db, pool, "ws-ord", &b, "KEEP", &deleted), US_DB_OK);
    apr_dbd_t *h = raw_open(&drv);
    assert_int_equal(apr_dbd_query(drv, h, &nrows, "BEGIN"), 0);
    /* below deadlock_timeout (1 s): the wait for b.txt fails before any
     * deadlock check could make the delete its victim */
    assert_int_equal(apr_dbd_query(drv, h, &nrows, "SET LOCAL lock_timeout = '500ms'"), 0);
    assert_int_equal(apr_dbd_query(drv, h, &nrows, "SELECT 1 FROM us_files WHERE"
                                   " workspace = 'ws-ord' AND name = 'a.txt' FOR UPDATE"), 0);
    assert_int_equal(apr_thread_create(&th, NULL, delete_b_then_a, NULL, pool), APR_SUCCESS);
    for (int i = 0; i < 500 && !a_lock_is_waited_for(drv, h); i++)
        apr_sleep(apr_time_from_msec(2));
    assert_true(a_lock_is_waited_for(drv, h));
    assert_int_equal(apr_dbd_query(drv, h, &nrows, "SELECT 1 FROM us_files WHERE"
                                   " workspace = 'ws-ord' AND name = 'b.txt' FOR UPDATE"), 0);
    assert_int_equal(apr_dbd_query(drv, h, &nrows, "COMMIT"), 0);
    apr_thread_join(&rv, th);
    assert_int_equal(ordered_delete_n, 2);
    us_workspace_file got;
    assert_int_equal(us_workspace_file_get(db, pool, "ws-ord", a.file_id, &got), US_DB_NOTFOUND);
    assert_int_equal(us_workspace_file_get(db, pool, "ws-ord", b.file_id, &got), US_DB_NOTFOUND);
    us_db_close(db);
    apr_dbd_close(drv, h);
    sc_teardown(NULL);
}

/* A deadlock in a fixed interleaving whose victim sees a lock timeout, not
 * "deadlock detected": another transaction (a workspace delete's locks in
 * the other order) holds the user's counter row; a create takes its
 * workspace's shared lock and waits for that row; the other transaction
 * then asks for the workspace's exclusive lock. The create's lock_timeout
 * fires before any deadlock check; its transaction is run again once the
 * other has committed, and the session is created. A lock held for longer
 * than two timeouts is a long wait: BUSY. */
static void test_deadlock_victim_retried(void **state)
{
    const apr_dbd_driver_t *drv = NULL;
    apr_thread_t *th;
    apr_status_t rv;
    us_session got;
    int nrows = 0;
    (void)state;
    sc_setup(NULL);
    us_store_set_lock_timeout(sc_cfg, DEADLOCK_LOCK_TIMEOUT_MS);
    apr_dbd_t *h = raw_open(&drv);
    static const char *const user_row =
        "INSERT INTO us_user_open (user_id, n) VALUES ('u-dl', 0)"
        " ON CONFLICT (user_id) DO UPDATE SET n = us_user_open.n";
    assert_int_equal(apr_dbd_query(drv, h, &nrows, user_row), 0);
    assert_int_equal(apr_dbd_query(drv, h, &nrows, "BEGIN"), 0);
    assert_int_equal(apr_dbd_query(drv, h, &nrows, user_row), 0);
    deadlocked_rc = US_DB_ERROR;
    assert_int_equal(apr_thread_create(&th, NULL, deadlocked_insert, NULL, pool), APR_SUCCESS);
    for (int i = 0; i < 500 && !a_lock_is_waited_for(drv, h); i++)
        apr_sleep(apr_time_from_msec(2));
    assert_true(a_lock_is_waited_for(drv, h));
    /* the lock cycle: granted once the create's attempt has rolled back */
    assert_int_equal(apr_dbd_query(drv, h, &nrows, "SELECT pg_advisory_xact_lock("
                                   US_PG_LOCK_WORKSPACE_CLASS ", hashtext('ws-dl'))"), 0);
    assert_int_equal(apr_dbd_query(drv, h, &nrows, "COMMIT"), 0);
    apr_thread_join(&rv, th);
    assert_int_equal(deadlocked_rc, US_DB_OK);
    us_db *db = sc_open(pool);
    assert_int_equal(us_session_get(db, pool, "ws-dl", sc_uuid(pool, 98), SC_T0, &got), US_DB_OK);
    assert_string_equal(got.user_id, "u-dl");
    /* a long wait: the lock outlasts the first attempt and the retry */
    us_session late = sc_session(sc_uuid(pool, 97), "ws-dl", "u-dl", SC_T0, 100);
    assert_int_equal(apr_dbd_query(drv, h, &nrows, "BEGIN"), 0);
    assert_int_equal(apr_dbd_query(drv, h, &nrows, user_row), 0);
    apr_time_t t0 = apr_time_now();
    assert_int_equal(us_session_insert(db, pool, &late, 10, SC_T0), US_DB_BUSY);
    assert_true(apr_time_now() - t0 >= apr_time_from_msec(2 * DEADLOCK_LOCK_TIMEOUT_MS));
    assert_non_null(strstr(us_db_error(db), "55P03")); /* lock_not_available */
    assert_int_equal(apr_dbd_query(drv, h, &nrows, "ROLLBACK"), 0);
    assert_int_equal(us_session_get(db, pool, "ws-dl", late.id, SC_T0, &got), US_DB_NOTFOUND);
    us_db_close(db);
    apr_dbd_close(drv, h);
    sc_teardown(NULL);
}

static us_db_rc drop_rc;
static apr_array_header_t *drop_dropped;

/* A startup's replace of the URLs that drops http://a.example/h, in the
 * pool data (the thread's own until joined). */
static void *APR_THREAD_FUNC drop_url(apr_thread_t *t, void *data)
{
    apr_pool_t *p = data;
    us_db *db = NULL;
    const char *err = NULL;
    apr_array_header_t *urls = apr_array_make(p, 1, sizeof(const char *));
    APR_ARRAY_PUSH(urls, const char *) = "http://b.example/h";
    drop_rc = us_db_open(p, sc_cfg, &db, &err) == US_DB_OK
                  ? us_webhook_targets_replace(db, p, urls, &drop_dropped)
                  : US_DB_ERROR;
    if (db)
        us_db_close(db);
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

/* A URL dropped from the set (a node's startup) while a settle of one of
 * its rows is under way on another node: the drop locks the URL's rows
 * before the URL's row, as the settle locks its row before the URL's, so
 * the settle, holding its row, gets the URL's row at once (the drop waits
 * for the row), where a drop that took the URL's row first and then
 * waited for the settle's row made a deadlock the server broke after a
 * second. The settle's statements (us_webhook_retry's) are run by hand on
 * a connection of their own, the URL's statement under a lock timeout well
 * below the server's deadlock check: waiting at all is the inversion. */
static void test_url_drop_locks_rows_first(void **state)
{
    const apr_dbd_driver_t *drv = NULL;
    apr_thread_t *th;
    apr_status_t rv;
    int nrows = 0;
    us_webhook_row w;
    us_webhook_stats st;
    (void)state;
    sc_setup(NULL);
    us_db *db = sc_open(pool);
    apr_time_t now = apr_time_now();
    assert_int_equal(us_webhook_targets_set(db, pool, sc_urls(2, "http://a.example/h",
                                                              "http://b.example/h")), US_DB_OK);
    sc_events(db, 2500, "ws-drop", 1);
    do /* the row of the URL to drop, leased */
        assert_int_equal(us_webhook_claim(db, pool, "d1", now, now + SC_SEC(60), &w), US_DB_OK);
    while (strcmp(w.url, "http://a.example/h") != 0);
    apr_dbd_t *h = raw_open(&drv);
    assert_int_equal(apr_dbd_query(drv, h, &nrows, "BEGIN"), 0);
    int rc = apr_dbd_query(drv, h, &nrows, apr_psprintf(pool,
        "UPDATE us_webhook_outbox SET attempts = attempts + 1, next_at = 0, lease_owner = NULL,"
        " lease_until = 0 WHERE id = %" APR_INT64_T_FMT " AND lease_owner = 'd1'",
        (apr_int64_t)w.id));
    if (rc != 0)
        fail_msg("%s", apr_dbd_error(drv, h, rc));
    assert_int_equal(nrows, 1);
    drop_rc = US_DB_ERROR;
    apr_pool_t *tp;
    apr_pool_create_unmanaged_ex(&tp, NULL, NULL);
    assert_int_equal(apr_thread_create(&th, NULL, drop_url, tp, pool), APR_SUCCESS);
    for (int i = 0; i < 500 && !a_lock_is_waited_for(drv, h); i++)
        apr_sleep(apr_time_from_msec(2));
    assert_true(a_lock_is_waited_for(drv, h));
    assert_int_equal(apr_dbd_query(drv, h, &nrows, "SET LOCAL lock_timeout = '200ms'"), 0);
    rc = apr_dbd_query(drv, h, &nrows, "UPDATE us_webhook_targets SET failures ="
                           " failures + 1, paused_until = 1 WHERE url = 'http://a.example/h'");
    const char *waited = rc ? apr_pstrdup(pool, apr_dbd_error(drv, h, rc)) : NULL;
    int updated = nrows;
    assert_int_equal(apr_dbd_query(drv, h, &nrows, rc ? "ROLLBACK" : "COMMIT"), 0);
    apr_thread_join(&rv, th);
    if (waited)
        fail_msg("the settle waited for the URL's row: %s", waited);
    assert_int_equal(updated, 1);
    assert_int_equal(drop_rc, US_DB_OK);
    assert_int_equal(drop_dropped->nelts, 1);
    assert_string_equal(APR_ARRAY_IDX(drop_dropped, 0, us_webhook_dropped).url,
                        "http://a.example/h");
    assert_int_equal(APR_ARRAY_IDX(drop_dropped, 0, us_webhook_dropped).pending, 1);
    assert_int_equal(us_webhook_stats_read(db, pool, &st), US_DB_OK);
    assert_int_equal(st.pending, 1); /* the other URL's */
    apr_pool_destroy(tp);
    us_db_close(db);
    apr_dbd_close(drv, h);
    sc_teardown(NULL);
}

typedef struct {
    apr_pool_t *p;      /* the thread's own until joined */
    const char *ws;     /* NULL: a sweep; else the workspace deleted */
    us_db_rc rc;
    int expired;
} sessions_locker;

static void *APR_THREAD_FUNC lock_sessions(apr_thread_t *t, void *data)
{
    sessions_locker *a = data;
    us_db *db = NULL;
    const char *err = NULL;
    apr_array_header_t *ids = NULL;
    a->rc = us_db_open(a->p, sc_cfg, &db, &err);
    if (a->rc == US_DB_OK)
        a->rc = a->ws ? us_workspace_delete(db, a->p, a->ws, SC_T0, &ids)
                      : us_sessions_expire(db, a->p, &a->expired);
    if (db)
        us_db_close(db);
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

/* Runs the locker a while h holds the row of table whose key is held,
 * then, once the locker waits, has h lock the row whose key is tried at
 * once (NOWAIT). Answers h's error when it could not (the locker held
 * tried), NULL when it could. */
static const char *lock_while_held(const apr_dbd_driver_t *drv, apr_dbd_t *h,
                                   sessions_locker *a, const char *table, const char *key,
                                   const char *held, const char *tried)
{
    apr_thread_t *th;
    apr_status_t rv;
    int nrows = 0;
    apr_pool_create_unmanaged_ex(&a->p, NULL, NULL);
    assert_int_equal(apr_dbd_query(drv, h, &nrows, "BEGIN"), 0);
    assert_int_equal(apr_dbd_query(drv, h, &nrows, apr_psprintf(pool,
        "SELECT 1 FROM %s WHERE %s = '%s' FOR UPDATE", table, key, held)), 0);
    assert_int_equal(apr_thread_create(&th, NULL, lock_sessions, a, pool), APR_SUCCESS);
    for (int i = 0; i < 500 && !a_lock_is_waited_for(drv, h); i++)
        apr_sleep(apr_time_from_msec(2));
    assert_true(a_lock_is_waited_for(drv, h));
    int rc = apr_dbd_query(drv, h, &nrows, apr_psprintf(pool,
        "SELECT 1 FROM %s WHERE %s = '%s' FOR UPDATE NOWAIT", table, key, tried));
    const char *err = rc ? apr_pstrdup(pool, apr_dbd_error(drv, h, rc)) : NULL;
    assert_int_equal(apr_dbd_query(drv, h, &nrows, rc ? "ROLLBACK" : "COMMIT"), 0);
    apr_thread_join(&rv, th);
    apr_pool_destroy(a->p);
    return err;
}

/* Runs the locker a while h holds the session lo, the first of ws's two in
 * id order, then has h lock the other, hi: the locker, waiting for lo,
 * must hold no other session of them. Answers h's error when it could not
 * (the locker held hi: it locks in another order). */
static const char *locks_in_id_order(const apr_dbd_driver_t *drv, apr_dbd_t *h,
                                     sessions_locker *a, const char *lo, const char *hi)
{
    return lock_while_held(drv, h, a, "us_sessions", "id", lo, hi);
}

/* Two sessions of ws by the ids of seed and seed + 1: lo the first of them
 * by id, hi the other; first (lo or hi) is created first. */
static void two_sessions(us_db *db, const char *ws, int seed, const char **lo, const char **hi,
                         int hi_first)
{
    const char *a = sc_uuid(pool, seed), *b = sc_uuid(pool, seed + 1);
    *lo = strcmp(a, b) < 0 ? a : b;
    *hi = *lo == a ? b : a;
    for (int i = 0; i < 2; i++) {
        us_session s = sc_session((i == 0) == !!hi_first ? *hi : *lo, ws, "u-order",
                                  apr_time_now(), 100);
        assert_int_equal(us_session_insert(db, pool, &s, 10, SC_T0), US_DB_OK);
    }
}

/* The expiry sweep and a workspace delete lock the sessions they change in
 * one order (by id): of the two, in a workspace with expired sessions, one
 * waits for the other, where the sweep took them by expiry (oldest first)
 * and the delete newest first, and each could hold a session the other
 * waited for (a deadlock the server broke after a second). The sessions
 * here come first in those orders, and second by id. */
static void test_sweep_and_workspace_delete_lock_sessions_by_id(void **state)
{
    const apr_dbd_driver_t *drv = NULL;
    const char *err = NULL, *lo, *hi, *lo2, *hi2;
    int nrows = 0;
    us_session got;
    (void)state;
    sc_setup(NULL);
    us_db *db = sc_open(pool);
    apr_dbd_t *h = raw_open(&drv);
    /* expired long ago, hi first (and first in the table) */
    two_sessions(db, "ws-order", 610, &lo, &hi, 1);
    assert_int_equal(apr_dbd_query(drv, h, &nrows, apr_psprintf(pool,
        "UPDATE us_sessions SET expires_at = CASE id WHEN '%s' THEN 1000 ELSE 2000 END"
        " WHERE workspace = 'ws-order'", hi)), 0);
    assert_int_equal(nrows, 2);
    /* open; hi the newer */
    two_sessions(db, "ws-order-2", 620, &lo2, &hi2, 0);
    sessions_locker sweep = { NULL, NULL, US_DB_ERROR, 0 };
    err = locks_in_id_order(drv, h, &sweep, lo, hi);
    if (err)
        fail_msg("the sweep held the later session: %s", err);
    assert_int_equal(sweep.rc, US_DB_OK);
    assert_int_equal(sweep.expired, 2);
    assert_int_equal(us_session_get(db, pool, "ws-order", lo, SC_T0, &got), US_DB_OK);
    assert_string_equal(got.status, "EXPIRED");
    sessions_locker del = { NULL, "ws-order-2", US_DB_ERROR, 0 };
    err = locks_in_id_order(drv, h, &del, lo2, hi2);
    if (err)
        fail_msg("the delete held the later session: %s", err);
    assert_int_equal(del.rc, US_DB_OK);
    assert_int_equal(us_session_get(db, pool, "ws-order-2", hi2, SC_T0, &got), US_DB_NOTFOUND);
    us_db_close(db);
    apr_dbd_close(drv, h);
    sc_teardown(NULL);
}

/* The expiry sweep and a workspace delete lock the users' counter rows
 * they change in one order (by user_id), after their sessions: of two
 * that share users (and no session) one waits for the other, where each
 * took the rows in its plan's order and could hold one the other waited
 * for (a deadlock the server broke). Their plans here leave sorts out
 * (enable_sort off), as a larger workspace's delete does, whose counts a
 * hash aggregate gives in its order (this small one's are sorted by
 * user_id, by chance the order wanted). u-lock-2 comes first in the hash's
 * order and second by user_id: h holds its row, and the operation,
 * waiting for it, must hold u-lock-1's already. */
static void test_sweep_and_workspace_delete_lock_users_by_id(void **state)
{
    const apr_dbd_driver_t *drv = NULL;
    const char *err = NULL;
    us_session got;
    (void)state;
    sc_setup(NULL);
    assert_int_equal(pg_fixture_admin(apr_psprintf(pool, "ALTER DATABASE %s SET enable_sort = off",
                                                   strrchr(sc_params, '=') + 1)), 0);
    us_db *db = sc_open(pool);
    apr_dbd_t *h = raw_open(&drv);
    for (int i = 0; i < 2; i++) { /* expired at once */
        us_session s = sc_session(sc_uuid(pool, 630 + i), "ws-users",
                                  apr_psprintf(pool, "u-lock-%d", 1 + i), SC_T0, SC_QUICK);
        assert_int_equal(us_session_insert(db, pool, &s, 10, SC_T0), US_DB_OK);
    }
    sessions_locker sweep = { NULL, NULL, US_DB_ERROR, 0 };
    err = lock_while_held(drv, h, &sweep, "us_user_open", "user_id", "u-lock-2", "u-lock-1");
    if (!err)
        fail_msg("the sweep waited for u-lock-2's counter before it locked u-lock-1's");
    assert_non_null(strstr(err, "could not obtain lock on row"));
    assert_int_equal(sweep.rc, US_DB_OK);
    assert_int_equal(sweep.expired, 2);
    assert_string_equal(sc_answer("SELECT string_agg(user_id || ':' || n || '/' || expired, ' '"
                                  " ORDER BY user_id) FROM us_user_open"),
                        "u-lock-1:0/1 u-lock-2:0/1");
    sessions_locker del = { NULL, "ws-users", US_DB_ERROR, 0 };
    err = lock_while_held(drv, h, &del, "us_user_open", "user_id", "u-lock-2", "u-lock-1");
    if (!err)
        fail_msg("the delete waited for u-lock-2's counter before it locked u-lock-1's");
    assert_non_null(strstr(err, "could not obtain lock on row"));
    assert_int_equal(del.rc, US_DB_OK);
    assert_int_equal(us_session_get(db, pool, "ws-users", sc_uuid(pool, 630), SC_T0, &got),
                     US_DB_NOTFOUND);
    assert_string_equal(sc_answer("SELECT string_agg(user_id || ':' || n || '/' || expired, ' '"
                                  " ORDER BY user_id) FROM us_user_open"),
                        "u-lock-1:0/0 u-lock-2:0/0");
    us_db_close(db);
    apr_dbd_close(drv, h);
    sc_teardown(NULL);
}

/* A one-statement write (a close) waits on a row lock that outlasts the
 * lock timeout once: retried once, as a transaction is, it closes the
 * session instead of answering BUSY (503). */
static apr_dbd_t *holder_h;
static const apr_dbd_driver_t *holder_drv;

static void *APR_THREAD_FUNC release_later(apr_thread_t *t, void *data)
{
    int nrows = 0;
    (void)data;
    apr_sleep(apr_time_from_msec(DEADLOCK_LOCK_TIMEOUT_MS * 3 / 2));
    apr_dbd_query(holder_drv, holder_h, &nrows, "COMMIT");
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

static void test_a_close_outlasting_a_lock_timeout_once_is_retried(void **state)
{
    apr_thread_t *th;
    apr_status_t rv;
    int nrows = 0;
    us_session got;
    (void)state;
    sc_setup(NULL);
    us_store_set_lock_timeout(sc_cfg, DEADLOCK_LOCK_TIMEOUT_MS);
    us_db *db = sc_open(pool);
    us_session s = sc_session(sc_uuid(pool, 61), "ws-lt", "u-lt", SC_T0, 100);
    assert_int_equal(us_session_insert(db, pool, &s, 10, SC_T0), US_DB_OK);
    holder_h = raw_open(&holder_drv);
    assert_int_equal(apr_dbd_query(holder_drv, holder_h, &nrows, "BEGIN"), 0);
    assert_int_equal(apr_dbd_query(holder_drv, holder_h, &nrows, apr_psprintf(pool,
        "SELECT 1 FROM us_sessions WHERE id = '%s' FOR UPDATE", s.id)), 0);
    assert_int_equal(apr_thread_create(&th, NULL, release_later, NULL, pool), APR_SUCCESS);
    apr_time_t t0 = apr_time_now();
    assert_int_equal(us_session_close(db, pool, "ws-lt", s.id, SC_T0 + 1), US_DB_OK);
    assert_true(apr_time_now() - t0 >= apr_time_from_msec(DEADLOCK_LOCK_TIMEOUT_MS));
    apr_thread_join(&rv, th);
    assert_int_equal(us_session_get(db, pool, "ws-lt", s.id, SC_T0 + 1, &got), US_DB_OK);
    assert_string_equal(got.status, "CLOSED");
    us_db_close(db);
    apr_dbd_close(holder_drv, holder_h);
    sc_teardown(NULL);
}

/* The tests' worker threads: thread i of n runs fn with &idx[i] (= i). */
static void start_threads(apr_thread_t **th, int *idx, int n, apr_thread_start_t fn)
{
    for (int i = 0; i < n; i++) {
        idx[i] = i;
        assert_int_equal(apr_thread_create(&th[i], NULL, fn, &idx[i], pool), APR_SUCCESS);
    }
}

static void join_threads(apr_thread_t **th, int n)
{
    for (int i = 0; i < n; i++) {
        apr_status_t rv;
        apr_thread_join(&rv, th[i]);
    }
}

/* Concurrent creates of one process share a transaction (pg_session_insert).
 * One of them cannot be written (its id is taken): the others are still
 * created, each once, and it alone fails. */
#define BATCHERS 8
static us_db_rc batcher_rc[BATCHERS];
static char batcher_err[BATCHERS][512]; /* the failed create's message, on its own connection */

static void *APR_THREAD_FUNC batcher(apr_thread_t *t, void *data)
{
    int i = *(int *)data;
    apr_pool_t *p;
    us_db *db = thread_db(&p);
    /* thread 0 reuses the id of the session made before */
    us_session s = sc_session(sc_uuid(p, i == 0 ? 700 : 700 + i), "ws-batch",
                              apr_psprintf(p, "u-batch-%d", i % 3), SC_T0, 100);
    batcher_rc[i] = db ? us_session_insert(db, p, &s, 10, SC_T0) : US_DB_BUSY;
    const char *err = db && batcher_rc[i] != US_DB_OK ? us_db_error(db) : NULL;
    snprintf(batcher_err[i], sizeof(batcher_err[i]), "%s", err ? err : "");
    return thread_end(t, p, db);
}

static void test_a_failed_create_leaves_its_batch(void **state)
{
    apr_thread_t *th[BATCHERS];
    int idx[BATCHERS];
    us_session got;
    (void)state;
    sc_setup(NULL);
    us_db *db = sc_open(pool);
    us_session first = sc_session(sc_uuid(pool, 700), "ws-batch", "u-first", SC_T0, 100);
    assert_int_equal(us_session_insert(db, pool, &first, 10, SC_T0), US_DB_OK);
    for (int round = 0; round < 5; round++) {
        start_threads(th, idx, BATCHERS, batcher);
        join_threads(th, BATCHERS);
        assert_int_equal(batcher_rc[0], US_DB_ERROR);
        for (int i = 1; i < BATCHERS; i++)
            /* created in an earlier round: the same id again fails too */
            assert_int_equal(batcher_rc[i], round == 0 ? US_DB_OK : US_DB_ERROR);
        /* each failure is its own, told on its own connection, whichever
         * thread's connection ran the batch */
        for (int i = 0; i < BATCHERS; i++)
            if (batcher_rc[i] != US_DB_OK && !strstr(batcher_err[i], "duplicate key"))
                fail_msg("round %d, create %d: '%s'", round, i, batcher_err[i]);
    }
    for (int i = 1; i < BATCHERS; i++)
        assert_int_equal(us_session_get(db, pool, "ws-batch", sc_uuid(pool, 700 + i), SC_T0,
                                        &got), US_DB_OK);
    /* the id that was taken still belongs to its first owner */
    assert_int_equal(us_session_get(db, pool, "ws-batch", sc_uuid(pool, 700), SC_T0, &got),
                     US_DB_OK);
    assert_string_equal(got.user_id, "u-first");
    us_db_close(db);
    sc_teardown(NULL);
}

/* Concurrent session reads of one process share statements
 * (pg_gen_select): each reader still gets its own session, NOTFOUND for
 * an id that is not there or not in the workspace asked, and fewer
 * statements run than reads. */
#define READERS 12
#define READS 150
#define READ_SESSIONS 10
static int reader_wrong[READERS];

static void *APR_THREAD_FUNC reader(apr_thread_t *t, void *data)
{
    int i = *(int *)data;
    apr_pool_t *p;
    us_db *db = thread_db(&p);
    if (!db)
        reader_wrong[i] = -1;
    for (int k = 0; db && k < READS; k++) {
        apr_pool_t *rp;
        us_session got;
        apr_pool_create(&rp, p);
        /* READ_SESSIONS: an id never made; READ_SESSIONS + 1: one made,
         * asked in another workspace */
        int j = (i + k) % (READ_SESSIONS + 2);
        const char *id = sc_uuid(rp, 800 + (j == READ_SESSIONS + 1 ? 0 : j));
        us_db_rc rc = us_session_get(db, rp, j == READ_SESSIONS + 1 ? "ws-other" : "ws-read",
                                     id, SC_T0, &got);
        if (j >= READ_SESSIONS ? rc != US_DB_NOTFOUND
                               : rc != US_DB_OK || strcmp(got.id, id) != 0 ||
                                     strcmp(got.user_id, apr_psprintf(rp, "u-read-%d", j)) != 0 ||
                                     strcmp(got.workspace, "ws-read") != 0)
            reader_wrong[i]++;
        apr_pool_destroy(rp);
    }
    return thread_end(t, p, db);
}

static void test_concurrent_reads_share_statements(void **state)
{
    apr_thread_t *th[READERS];
    int idx[READERS];
    unsigned long st0, rd0, st1, rd1;
    (void)state;
    sc_setup(NULL);
    us_db *db = sc_open(pool);
    for (int j = 0; j < READ_SESSIONS; j++) {
        us_session s = sc_session(sc_uuid(pool, 800 + j), "ws-read",
                                  apr_psprintf(pool, "u-read-%d", j), SC_T0, 100);
        assert_int_equal(us_session_insert(db, pool, &s, 10, SC_T0), US_DB_OK);
    }
    us_pg_session_reads(db, &st0, &rd0);
    memset(reader_wrong, 0, sizeof(reader_wrong));
    start_threads(th, idx, READERS, reader);
    join_threads(th, READERS);
    for (int i = 0; i < READERS; i++)
        assert_int_equal(reader_wrong[i], 0);
    us_pg_session_reads(db, &st1, &rd1);
    printf("# %lu session reads in %lu statements\n", rd1 - rd0, st1 - st0);
    assert_int_equal(rd1 - rd0, READERS * READS);
    assert_true(st1 - st0 < rd1 - rd0);
    us_db_close(db);
    sc_teardown(NULL);
}

/* A read inside a write transaction is not batched with other readers:
 * it sees its transaction's own write (a close, rolled back after), and
 * the readers around it, batched among themselves, never see that write. */
#define HAMMERS 6
static volatile apr_uint32_t hammering;
static int hammer_wrong[HAMMERS];
static const char *txn_sid;

static void *APR_THREAD_FUNC hammer(apr_thread_t *t, void *data)
{
    int i = *(int *)data;
    apr_pool_t *p;
    us_db *db = thread_db(&p);
    if (!db)
        hammer_wrong[i] = -1;
    while (db && apr_atomic_read32(&hammering)) {
        apr_pool_t *rp;
        us_session got;
        apr_pool_create(&rp, p);
        if (us_session_get(db, rp, "ws-txn", txn_sid, SC_T0, &got) != US_DB_OK ||
            strcmp(got.status, "OPEN") != 0)
            hammer_wrong[i]++;
        apr_pool_destroy(rp);
    }
    return thread_end(t, p, db);
}

/* Closes the session, reads it back, and rolls back (US_DB_ERROR). */
static us_db_rc close_and_read(us_db *db, apr_pool_t *p, void *arg)
{
    int *seen_closed = arg, nrows = 0;
    apr_int64_t t = SC_T0;
    us_session got;
    const void *args[] = { &t, "ws-txn", txn_sid, &t };
    if (us_exec(db, p, US_STMT_SESSION_CLOSE, args, &nrows) != US_DB_OK || nrows != 1)
        return US_DB_ERROR;
    if (us_session_get(db, p, "ws-txn", txn_sid, SC_T0, &got) == US_DB_OK &&
        strcmp(got.status, "CLOSED") == 0)
        (*seen_closed)++;
    return US_DB_ERROR;
}

static void test_a_read_in_a_transaction_stays_in_it(void **state)
{
    apr_thread_t *th[HAMMERS];
    int idx[HAMMERS], seen_closed = 0;
    (void)state;
    sc_setup(NULL);
    us_db *db = sc_open(pool);
    us_session s = sc_session(sc_uuid(pool, 990), "ws-txn", "u-txn", SC_T0, 100);
    assert_int_equal(us_session_insert(db, pool, &s, 10, SC_T0), US_DB_OK);
    txn_sid = s.id;
    apr_atomic_set32(&hammering, 1);
    memset(hammer_wrong, 0, sizeof(hammer_wrong));
    start_threads(th, idx, HAMMERS, hammer);
    for (int k = 0; k < 100; k++)
        assert_int_equal(us_write_txn(db, pool, close_and_read, &seen_closed), US_DB_ERROR);
    apr_atomic_set32(&hammering, 0);
    join_threads(th, HAMMERS);
    assert_int_equal(seen_closed, 100);
    for (int i = 0; i < HAMMERS; i++)
        assert_int_equal(hammer_wrong[i], 0);
    us_db_close(db);
    sc_teardown(NULL);
}

#define MIGRATORS 6
static us_db_rc migrate_rc[MIGRATORS];

static void *APR_THREAD_FUNC migrate_thread(apr_thread_t *t, void *data)
{
    apr_pool_t *p;
    const char *err = NULL;
    int i = (int)(apr_uintptr_t)data;
    apr_pool_create_unmanaged_ex(&p, NULL, NULL);
    migrate_rc[i] = us_store_migrate(sc_cfg, p, &err);
    if (migrate_rc[i] != US_DB_OK)
        fprintf(stderr, "migrator %d: %s\n", i, err ? err : "?");
    apr_pool_destroy(p);
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

/* Nodes starting at the same moment migrate a new database once, one
 * after the other (an advisory lock): every migrator succeeds. */
static void test_concurrent_migrations(void **state)
{
    apr_thread_t *th[MIGRATORS];
    const char *err = NULL;
    (void)state;
    sc_params = pg_create(pool, "migr");
    assert_int_equal(us_store_configure(pool, "pgsql", sc_params, &sc_cfg, &err), US_DB_OK);
    for (int i = 0; i < MIGRATORS; i++)
        assert_int_equal(apr_thread_create(&th[i], NULL, migrate_thread,
                                           (void *)(apr_uintptr_t)i, pool), APR_SUCCESS);
    for (int i = 0; i < MIGRATORS; i++) {
        apr_status_t rv;
        apr_thread_join(&rv, th[i]);
        assert_int_equal(migrate_rc[i], US_DB_OK);
    }
    us_db *db = sc_open(pool);
    us_session s = sc_session(sc_uuid(pool, 1), "ws", "u1", SC_T0, 100);
    assert_int_equal(us_session_insert(db, pool, &s, 10, SC_T0), US_DB_OK);
    us_db_close(db);
    sc_teardown(NULL);
}

/* What the migrations from 12 on add, taken out again (a database of an
 * older schema, from the current one) */
#define UNDO_18_TO_19 "DROP INDEX us_webhook_url_due"
#define UNDO_17_TO_18 \
    "ALTER TABLE us_webhook_targets DROP COLUMN failures, DROP COLUMN paused_until"
#define UNDO_15_TO_16 "ALTER TABLE us_sessions DROP COLUMN ingest_not_before"
#define UNDO_14_TO_15 "ALTER TABLE us_uploads DROP COLUMN publish_refusals"
#define UNDO_13_TO_14 "ALTER TABLE us_sessions DROP COLUMN uploaded_sidecars"
#define UNDO_12_TO_13                                                          \
    "DROP INDEX us_webhook_last_error",                                        \
    "ALTER TABLE us_user_open DROP COLUMN closed, DROP COLUMN expired"

/* A database of schema 6 (no key table) gets its files' keys from their
 * rows; the trigger then follows new files. */
static void test_migration_fills_the_key_table(void **state)
{
    const apr_dbd_driver_t *drv = NULL;
    const char *err = NULL;
    apr_array_header_t *deleted, *rows;
    long long total = -1;
    int nrows = 0;
    (void)state;
    sc_setup(NULL);
    us_db *db = sc_open(pool);
    for (int i = 0; i < 3; i++) {
        us_workspace_file f = sc_workspace_file(5001 + i, apr_psprintf(pool, "f%d.txt", i), SC_T0 + i);
        f.meta = i ? "{\"k\":\"v\",\"n\":2}" : "{\"k\":1}";
        assert_int_equal(us_workspace_file_add(db, pool, "ws", &f, "KEEP", &deleted), US_DB_OK);
    }
    us_db_close(db);
    apr_dbd_t *h = raw_open(&drv);
    static const char *const back_to_6[] = {
        "DROP TRIGGER us_file_keys_insert ON us_files", "DROP TRIGGER us_file_keys_sync ON us_files",
        "DROP FUNCTION us_file_keys_sync()",
        "DROP FUNCTION us_file_keys_of(us_files)", "DROP TABLE us_file_keys",
        "DROP INDEX us_sessions_late_clear",
        "ALTER TABLE us_sessions DROP COLUMN direct", "ALTER TABLE us_uploads DROP COLUMN etag",
        UNDO_18_TO_19, UNDO_17_TO_18, UNDO_15_TO_16, UNDO_14_TO_15, UNDO_13_TO_14, UNDO_12_TO_13,
        "UPDATE us_meta SET value = '6' WHERE name = 'schema_version'", NULL
    };
    for (int i = 0; back_to_6[i]; i++)
        assert_int_equal(apr_dbd_query(drv, h, &nrows, back_to_6[i]), 0);
    apr_dbd_close(drv, h);
    assert_int_equal(us_store_migrate(sc_cfg, pool, &err), US_DB_OK);
    /* 8 -> 9 -> 10: the queue of every session's last clear */
    h = raw_open(&drv);
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    assert_int_equal(apr_dbd_select(drv, pool, h, &res, "SELECT indexdef FROM pg_indexes"
                                    " WHERE indexname = 'us_sessions_late_clear'", 0), 0);
    assert_int_equal(apr_dbd_get_row(drv, pool, res, &row, -1), 0);
    assert_non_null(strstr(apr_dbd_get_entry(drv, row, 0), "WHERE (direct = ANY (ARRAY[1, 2, 4]))"));
    while (apr_dbd_get_row(drv, pool, res, &row, -1) == 0)
        ;
    apr_dbd_close(drv, h);
    db = sc_open(pool);
    us_odata_node *root;
    assert_true(us_odata_parse(pool, "k eq 'v' and n ge 2", 19, &root, &err));
    us_workspace_file_query q = { .name_part = "", .filter = root, .limit = 10 };
    assert_int_equal(us_workspace_file_list(db, pool, "ws", &q, &rows, &total), US_DB_OK);
    assert_int_equal(total, 2);
    assert_int_equal(rows->nelts, 2);
    us_workspace_file g = sc_workspace_file(5009, "g.txt", SC_T0 + 9);
    g.meta = "{\"k\":\"v\",\"n\":3}";
    assert_int_equal(us_workspace_file_add(db, pool, "ws", &g, "KEEP", &deleted), US_DB_OK);
    assert_int_equal(us_workspace_file_list(db, pool, "ws", &q, &rows, &total), US_DB_OK);
    assert_int_equal(total, 3);
    us_db_close(db);
    sc_teardown(NULL);
}

/* A database of schema 10 gets us_sessions_create (10 -> 11); creates then
 * run through it, the limit counted as before. */
static void test_migration_adds_the_create_function(void **state)
{
    const apr_dbd_driver_t *drv = NULL;
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    const char *err = NULL;
    int nrows = 0;
    (void)state;
    sc_setup(NULL);
    apr_dbd_t *h = raw_open(&drv);
    assert_int_equal(apr_dbd_query(drv, h, &nrows, "DROP FUNCTION us_sessions_create"), 0);
    static const char *const undo[] = { UNDO_18_TO_19, UNDO_17_TO_18, UNDO_15_TO_16,
                                        UNDO_14_TO_15, UNDO_13_TO_14, UNDO_12_TO_13 };
    for (size_t i = 0; i < sizeof(undo) / sizeof(undo[0]); i++)
        assert_int_equal(apr_dbd_query(drv, h, &nrows, undo[i]), 0);
    assert_int_equal(apr_dbd_query(drv, h, &nrows, "UPDATE us_meta SET value = '10'"
                                   " WHERE name = 'schema_version'"), 0);
    assert_int_equal(us_store_migrate(sc_cfg, pool, &err), US_DB_OK);
    assert_int_equal(apr_dbd_select(drv, pool, h, &res, "SELECT (SELECT value FROM us_meta"
                                    " WHERE name = 'schema_version') || ' ' || provolatile::text"
                                    " FROM pg_proc WHERE proname = 'us_sessions_create'", 1), 0);
    assert_int_equal(apr_dbd_get_row(drv, pool, res, &row, -1), 0);
    assert_string_equal(apr_dbd_get_entry(drv, row, 0),
                        apr_psprintf(pool, "%d v", US_PG_SCHEMA_VERSION));
    while (apr_dbd_get_row(drv, pool, res, &row, -1) == 0)
        ;
    apr_dbd_close(drv, h);
    us_db *db = sc_open(pool);
    us_session a = sc_session(sc_uuid(pool, 1), "ws-mig", "u-mig", SC_T0, 100);
    us_session b = sc_session(sc_uuid(pool, 2), "ws-mig", "u-mig", SC_T0, 100);
    us_session got;
    a.given_name = "A \"quoted\" \\ {x,y} NULL"; /* an array literal's specials */
    assert_int_equal(us_session_insert(db, pool, &a, 1, SC_T0), US_DB_OK);
    assert_int_equal(us_session_insert(db, pool, &b, 1, SC_T0), US_DB_LIMIT);
    assert_int_equal(us_session_get(db, pool, "ws-mig", a.id, SC_T0, &got), US_DB_OK);
    assert_string_equal(got.user_id, "u-mig");
    assert_string_equal(got.given_name, a.given_name);
    assert_string_equal(got.family_name, a.family_name);
    assert_int_equal(got.expires_at - got.created_at, a.expires_at - a.created_at);
    us_db_close(db);
    sc_teardown(NULL);
}

/* ICU's en-US, which sorts names linguistically (the test cluster's own
 * default is C, which sorts by bytes) */
#define LINGUISTIC_COLLATION "TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US'"

/* Runs one statement on the test's database; 0 or the driver's error. */
static int sc_query(const char *sql)
{
    const apr_dbd_driver_t *drv = NULL;
    int nrows = 0;
    apr_dbd_t *h = raw_open(&drv);
    int rc = apr_dbd_query(drv, h, &nrows, sql);
    apr_dbd_close(drv, h);
    return rc;
}

/* sc_setup on a database of LINGUISTIC_COLLATION, checked to sort b.txt
 * before B.txt and _z.txt before a1.txt. */
static void setup_linguistic(void)
{
    db_collation = LINGUISTIC_COLLATION;
    sc_setup(NULL);
    db_collation = NULL;
    assert_int_equal(sc_query("DO $$ BEGIN IF NOT ('b.txt' < 'B.txt' AND '_z.txt' < 'a1.txt') THEN"
                              " RAISE 'not linguistic'; END IF; END $$"), 0);
}

/* The store's lists order names by bytes on a database whose collation
 * does not. */
static void test_names_in_byte_order_under_a_linguistic_collation(void **state)
{
    setup_linguistic();
    sc_names_in_byte_order(state);
    sc_teardown(NULL);
}

/* A database of schema 11 (its names in the database's collation) with
 * names in it: the migration 11 -> 12 orders them by bytes. */
static void test_migration_orders_names_by_bytes(void **state)
{
    static const char *const back_to_11[] = {
        "ALTER TABLE us_uploads ALTER COLUMN name TYPE text COLLATE \"default\"",
        "ALTER TABLE us_files ALTER COLUMN name TYPE text COLLATE \"default\"",
        "ALTER TABLE us_workspaces ALTER COLUMN name TYPE text COLLATE \"default\"",
        UNDO_18_TO_19, UNDO_17_TO_18, UNDO_15_TO_16, UNDO_14_TO_15, UNDO_13_TO_14, UNDO_12_TO_13,
        "UPDATE us_meta SET value = '11' WHERE name = 'schema_version'", NULL
    };
    const char *err = NULL;
    (void)state;
    setup_linguistic();
    for (int i = 0; back_to_11[i]; i++)
        assert_int_equal(sc_query(back_to_11[i]), 0);
    us_db *db = sc_open(pool);
    sc_odd_names_fill(db);
    us_db_close(db);
    assert_int_equal(us_store_migrate(sc_cfg, pool, &err), US_DB_OK);
    db = sc_open(pool);
    sc_odd_names_check(db);
    us_db_close(db);
    sc_teardown(NULL);
}

/* A database of schema 12 (the overview counted the closed and expired
 * rows) gets each user's counts from its rows, a user without an open
 * session included; the statements then keep them. */
static void test_migration_counts_closed_and_expired(void **state)
{
    static const char *const rows[] = {
        "INSERT INTO us_sessions (id, workspace, user_id, given_name, family_name, write_mode,"
        " parallel, status, created_at, expires_at, closed_at, ingest_state) VALUES"
        " ('m1', 'ws', 'a', 'A', 'B', 'KEEP', 0, 'OPEN', 1, 9000000000000000, NULL, 'none'),"
        " ('m2', 'ws', 'a', 'A', 'B', 'KEEP', 0, 'CLOSED', 1, 9000000000000000, 2, 'done'),"
        " ('m3', 'ws', 'a', 'A', 'B', 'KEEP', 0, 'EXPIRED', 1, 2, 2, 'done'),"
        " ('m4', 'ws', 'b', 'A', 'B', 'KEEP', 0, 'CLOSED', 1, 9000000000000000, 2, 'done'),"
        " ('m5', 'ws', 'b', 'A', 'B', 'KEEP', 0, 'CLOSED', 1, 9000000000000000, 2, 'done'),"
        " ('m6', 'ws', 'b', 'A', 'B', 'KEEP', 0, 'ABORTED', 1, 9000000000000000, 2, 'done')",
        "INSERT INTO us_user_open (user_id, n) VALUES ('a', 1)", /* b has no open session */
        UNDO_18_TO_19, UNDO_17_TO_18, UNDO_15_TO_16, UNDO_14_TO_15, UNDO_13_TO_14, UNDO_12_TO_13,
        "UPDATE us_meta SET value = '12' WHERE name = 'schema_version'", NULL
    };
    const char *err = NULL;
    us_store_overview o;
    (void)state;
    sc_setup(NULL);
    for (int i = 0; rows[i]; i++)
        assert_int_equal(sc_query(rows[i]), 0);
    assert_int_equal(us_store_migrate(sc_cfg, pool, &err), US_DB_OK);
    assert_string_equal(sc_answer("SELECT string_agg(user_id || ':' || n || ',' || closed"
                                  " || ',' || expired, ' ' ORDER BY user_id) FROM us_user_open"),
                        "a:1,1,1 b:0,2,0");
    us_db *db = sc_open(pool);
    assert_int_equal(us_store_overview_read(db, pool, SC_T0, &o), US_DB_OK);
    assert_int_equal(o.open, 1);
    assert_int_equal(o.closed, 3);
    assert_int_equal(o.expired, 1);
    assert_int_equal(us_session_close(db, pool, "ws", "m1", SC_T0), US_DB_OK);
    assert_int_equal(us_store_overview_read(db, pool, SC_T0, &o), US_DB_OK);
    assert_int_equal(o.open, 0);
    assert_int_equal(o.closed, 4);
    assert_int_equal(o.expired, 1);
    us_db_close(db);
    sc_teardown(NULL);
}

/* A database of schema 19 loses the rows of URLs no longer listed (what a
 * drop racing an event left, pending for ever) and gets the trigger that
 * takes its URLs' locks; the listed URLs' rows stay. */
static void test_migration_drops_orphaned_rows(void **state)
{
    const char *err = NULL;
    (void)state;
    sc_setup(NULL);
    us_db *db = sc_open(pool);
    assert_int_equal(us_webhook_targets_set(db, pool, sc_urls(1, "http://b.example/h")),
                     US_DB_OK);
    us_db_close(db);
    assert_int_equal(sc_query("INSERT INTO us_webhook_outbox (event, session_id, workspace, url,"
        " occurred_at, uploaded_files, finished_files, failed_files) VALUES"
        " ('session.expired', 's1', 'ws', 'http://a.example/h', 1, 0, 0, 0),"
        " ('session.expired', 's1', 'ws', 'http://b.example/h', 1, 0, 0, 0)"), 0);
    assert_int_equal(sc_query("UPDATE us_meta SET value = '19' WHERE name = 'schema_version'"),
                     0);
    assert_int_equal(us_store_migrate(sc_cfg, pool, &err), US_DB_OK);
    assert_string_equal(sc_column_lines("SELECT url FROM us_webhook_outbox ORDER BY url"),
                        "http://b.example/h\n");
    assert_string_equal(sc_answer("SELECT (SELECT value FROM us_meta WHERE name ="
                                  " 'schema_version') || ' ' || (strpos(prosrc,"
                                  " 'pg_advisory_xact_lock_shared') > 0)::text FROM pg_proc"
                                  " WHERE proname = 'us_webhook_event'"),
                        apr_psprintf(pool, "%d true", US_PG_SCHEMA_VERSION));
    sc_teardown(NULL);
}

/* Whether closing the session id (its ingest done at once: an event the
 * trigger judges), in a transaction on a connection of its own, rolled
 * back, locks the outbox ("t\n", else "f\n"): an INSERT into it does, rows
 * or none. */
static const char *close_locks_the_outbox(const char *id)
{
    const apr_dbd_driver_t *drv = NULL;
    int nrows = 0;
    apr_dbd_t *h = raw_open(&drv);
    assert_int_equal(apr_dbd_query(drv, h, &nrows, "BEGIN"), 0);
    assert_int_equal(apr_dbd_query(drv, h, &nrows, apr_psprintf(pool,
        "UPDATE us_sessions SET status = 'CLOSED', closed_at = 1, ingest_state = 'done'"
        " WHERE id = '%s'", id)), 0);
    assert_int_equal(nrows, 1);
    const char *locked = column_lines_on(drv, h, "SELECT EXISTS (SELECT 1 FROM pg_locks"
                                         " WHERE pid = pg_backend_pid()"
                                         " AND relation = 'us_webhook_outbox'::regclass)");
    assert_int_equal(apr_dbd_query(drv, h, &nrows, "ROLLBACK"), 0);
    apr_dbd_close(drv, h);
    return locked;
}

/* With no URL listed, the outbox trigger returns before its INSERTs (each
 * planned and run to write nothing): a session's event leaves the outbox
 * alone; with a URL listed its INSERT locks it and writes the event. A
 * database of schema 20, whose function (put back here) locks the outbox
 * without URLs too, gets that trigger. */
static void test_event_without_urls_skips_its_inserts(void **state)
{
    const char *err = NULL;
    (void)state;
    sc_setup(NULL);
    us_db *db = sc_open(pool);
    us_session s = sc_session(sc_uuid(pool, 2700), "ws-ev", "u-ev", SC_T0, 100);
    assert_int_equal(us_session_insert(db, pool, &s, 10, SC_T0), US_DB_OK);
    assert_int_equal(sc_query(us_pg_sql_migration(19)[0]), 0); /* schema 20's function */
    assert_string_equal(close_locks_the_outbox(s.id), "t\n");
    assert_int_equal(sc_query("UPDATE us_meta SET value = '20' WHERE name = 'schema_version'"),
                     0);
    assert_int_equal(us_store_migrate(sc_cfg, pool, &err), US_DB_OK);
    assert_string_equal(sc_answer("SELECT value FROM us_meta WHERE name = 'schema_version'"),
                        apr_psprintf(pool, "%d", US_PG_SCHEMA_VERSION));
    assert_string_equal(close_locks_the_outbox(s.id), "f\n");
    assert_int_equal(us_webhook_targets_set(db, pool, sc_urls(1, "http://a.example/h")),
                     US_DB_OK);
    assert_string_equal(close_locks_the_outbox(s.id), "t\n");
    assert_int_equal(us_session_close(db, pool, "ws-ev", s.id, SC_T0 + 1), US_DB_OK);
    assert_string_equal(sc_column_lines("SELECT url || ' ' || event FROM us_webhook_outbox"),
                        "http://a.example/h session.ingested\n");
    us_db_close(db);
    sc_teardown(NULL);
}

/* The plan of a statement on the test's database, every line: its
 * arguments (%s, %lld) as '' and 0, run (EXPLAIN ANALYZE). */
static const char *sc_plan(const char *sql)
{
    const char *text = "EXPLAIN (ANALYZE, COSTS OFF, SUMMARY ON) ";
    for (const char *c = sql; *c;) {
        if (strncmp(c, "%lld", 4) == 0) {
            text = apr_pstrcat(pool, text, "0", NULL);
            c += 4;
        } else if (strncmp(c, "%s", 2) == 0) {
            text = apr_pstrcat(pool, text, "''", NULL);
            c += 2;
        } else {
            text = apr_pstrcat(pool, text, apr_pstrndup(pool, c, 1), NULL);
            c++;
        }
    }
    return sc_column_lines(text);
}

/* The times of the plan's scans of a table, by its name and alias. */
static int sc_seq_scans(const char *plan, const char *table)
{
    int n = 0;
    const char *needle = apr_pstrcat(pool, "Seq Scan on ", table, " ", NULL);
    for (const char *at = strstr(plan, needle); at; at = strstr(at + 1, needle))
        n++;
    return n;
}

/* The most rows a node of the plan read from a table (EXPLAIN ANALYZE's
 * actual rows per loop, times its loops). */
static long sc_rows_read(const char *plan, const char *table)
{
    long most = 0;
    const char *needle = apr_pstrcat(pool, " on ", table, " ", NULL);
    for (const char *at = strstr(plan, needle); at; at = strstr(at + 1, needle)) {
        const char *actual = strstr(at, "(actual ");
        const char *eol = strchr(at, '\n');
        long rows = 0, loops = 0;
        assert_non_null(actual);
        assert_true(eol == NULL || actual < eol);
        const char *r = strstr(actual, " rows="), *l = strstr(actual, " loops=");
        assert_non_null(r);
        assert_non_null(l);
        rows = strtol(r + 6, NULL, 10);
        loops = strtol(l + 7, NULL, 10);
        if (rows * loops > most)
            most = rows * loops;
    }
    return most;
}

/* sql with its arguments in place: %s as a quoted text, %lld as a number
 * (what a filter's SQL holds). */
static const char *sc_inline(const char *sql, const apr_array_header_t *args)
{
    const char *text = "";
    int i = 0;
    for (const char *c = sql; *c;) {
        if (strncmp(c, "%lld", 4) == 0) {
            text = apr_psprintf(pool, "%s%" APR_INT64_T_FMT, text, /* APR's: no %lld */
                                (apr_int64_t)*APR_ARRAY_IDX(args, i++, const long long *));
            c += 4;
        } else if (strncmp(c, "%s", 2) == 0) {
            const char *v = APR_ARRAY_IDX(args, i++, const char *), *q = "'";
            for (; *v; v++)
                q = apr_pstrcat(pool, q, *v == '\'' ? "''" : apr_pstrndup(pool, v, 1), NULL);
            text = apr_pstrcat(pool, text, q, "'", NULL);
            c += 2;
        } else {
            text = apr_pstrcat(pool, text, apr_pstrndup(pool, c, 1), NULL);
            c++;
        }
    }
    assert_int_equal(i, args->nelts);
    return text;
}

/* The most rows a node of the plan read and dropped by its filter. */
static long sc_rows_filtered(const char *plan)
{
    long most = 0;
    const char *needle = "Rows Removed by Filter: ";
    for (const char *at = strstr(plan, needle); at; at = strstr(at + 1, needle)) {
        long n = strtol(at + strlen(needle), NULL, 10);
        most = n > most ? n : most;
    }
    return most;
}

/* A count driven by a key's comparison with a decimal literal reads the
 * key table's index range on n around it (the comparison itself is on
 * doubles, which the index on the numeric n cannot serve alone), not
 * every number of that key in the workspace; the totals are those of the
 * rows. */
static void test_decimal_count_reads_a_range(void **state)
{
    static const char *const seed[] = {
        "INSERT INTO us_files (file_id, workspace, name, size, meta, created_at)"
        " SELECT 'dec' || i, 'ws-dec', 'f' || i, 1, '{\"p\":' || i || '.5}', i"
        " FROM generate_series(1, 3000) i",
        "VACUUM ANALYZE us_file_keys", NULL
    };
    static const struct {
        const char *filter;
        long long total;
    } cases[] = {
        { "p eq 17.5", 1 }, { "p eq 17.25", 0 }, { "p ge 2990.5", 11 }, { "p gt 2990.5", 10 },
        { "p lt 3.5", 2 }, { "p le 3.5", 3 }, { "p in (5.5, 7.5)", 2 }, { "p ne 17.5", 2999 },
        { "p lt 1e400", 3000 }, { "p gt -1e400", 3000 }, { "p eq 1e400", 0 },
    };
    (void)state;
    sc_setup(NULL);
    for (int i = 0; seed[i]; i++)
        assert_int_equal(sc_query(seed[i]), 0);
    us_db *db = sc_open(pool);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        us_odata_node *root;
        const char *err;
        apr_array_header_t *args = apr_array_make(pool, 8, sizeof(const void *)), *rows = NULL;
        long long total = -1;
        assert_true(us_odata_parse(pool, cases[i].filter, strlen(cases[i].filter), &root, &err));
        const char *sql = us_filter_count_sql(pool, root, "ws-dec", args, &us_pg_filter_dialect);
        assert_non_null(sql);
        const char *plan = sc_column_lines(apr_pstrcat(pool, "EXPLAIN (ANALYZE, COSTS OFF) ",
                                                       sc_inline(sql, args), NULL));
        if (getenv("US_SHOW_PLANS"))
            print_message("%s\n%s", cases[i].filter, plan);
        if (strstr(cases[i].filter, " ne ") == NULL && strstr(cases[i].filter, "1e400") == NULL)
            assert_true(sc_rows_filtered(plan) <= 1);
        us_workspace_file_query q = { .name_part = "", .filter = root, .limit = 1 };
        assert_int_equal(us_workspace_file_list(db, pool, "ws-dec", &q, &rows, &total), US_DB_OK);
        if (total != cases[i].total)
            fail_msg("%s: total %lld, not %lld", cases[i].filter, total, cases[i].total);
    }
    us_db_close(db);
    sc_teardown(NULL);
}

/* The status page's reads on a store that has ended many sessions and
 * kept many failed webhook rows: the overview reads the users' counters
 * and the open sessions' index, not us_sessions; the webhook stats' last
 * error and its time are the last entry of us_webhook_last_error (the
 * count of the failed rows reads them all, by whichever plan). */
static void test_status_reads_seek(void **state)
{
    static const char *const seed[] = {
        "INSERT INTO us_sessions (id, workspace, user_id, given_name, family_name, write_mode,"
        " parallel, status, created_at, expires_at, closed_at, ingest_state)"
        " SELECT 'c' || i, 'ws' || (i % 50), 'u' || (i % 200), 'A', 'B', 'KEEP', 1,"
        " CASE WHEN i % 4 = 0 THEN 'EXPIRED' ELSE 'CLOSED' END, i, i + 1000, i + 1, 'done'"
        " FROM generate_series(1, 20000) i",
        "INSERT INTO us_user_open (user_id, n, closed, expired)"
        " SELECT user_id, 0, COUNT(*) FILTER (WHERE status = 'CLOSED'),"
        " COUNT(*) FILTER (WHERE status = 'EXPIRED') FROM us_sessions GROUP BY user_id",
        "INSERT INTO us_webhook_outbox (event, session_id, workspace, url, occurred_at,"
        " uploaded_files, finished_files, failed_files, attempts, state, last_error,"
        " last_attempt_at)"
        " SELECT 'session.ingested', 'c' || i, 'ws', 'http://h/' || (i % 3), i, 1, 1, 0, 8,"
        " 'failed', 'HTTP 500', 1000000 + i FROM generate_series(1, 20000) i",
        "VACUUM ANALYZE us_sessions", "VACUUM ANALYZE us_user_open",
        "VACUUM ANALYZE us_webhook_outbox", NULL
    };
    (void)state;
    sc_setup(NULL);
    for (int i = 0; seed[i]; i++)
        assert_int_equal(sc_query(seed[i]), 0);
    const char *overview = sc_plan(us_pg_sql_statement(US_STMT_OVERVIEW)->sql);
    const char *stats = sc_plan(us_pg_sql_statement(US_STMT_WEBHOOK_STATS)->sql);
    if (getenv("US_SHOW_PLANS"))
        print_message("%s\n%s", overview, stats);
    assert_null(strstr(overview, "Seq Scan on us_sessions"));
    assert_null(strstr(overview, "Bitmap Heap Scan on us_sessions"));
    assert_int_equal(sc_rows_read(overview, "us_sessions"), 0); /* none open */
    /* the failed rows' count alone */
    assert_true(sc_seq_scans(stats, "us_webhook_outbox") <= 1);
    assert_non_null(strstr(stats, "Index Scan Backward using us_webhook_last_error"));
    assert_non_null(strstr(stats, "Index Only Scan Backward using us_webhook_last_error"));
    us_db *db = sc_open(pool);
    us_store_overview o;
    us_webhook_stats w;
    assert_int_equal(us_store_overview_read(db, pool, SC_T0, &o), US_DB_OK);
    assert_int_equal(o.open, 0);
    assert_int_equal(o.closed, 15000);
    assert_int_equal(o.expired, 5000);
    assert_int_equal(us_webhook_stats_read(db, pool, &w), US_DB_OK);
    assert_int_equal(w.pending, 0);
    assert_int_equal(w.failed, 20000);
    assert_string_equal(w.last_error, "HTTP 500");
    assert_int_equal(w.last_error_at, 1000000 + 20000);
    us_db_close(db);
    sc_teardown(NULL);
}

/* A URL dropped from the set (a node's startup) while an event is being
 * written on another node: the event's transaction (an expiry, by hand on
 * a connection of its own, committed once the drop waits or after a
 * second) has read the URL and written its row; the drop waits for it to
 * commit and drops that row with the URL, where it ran past the
 * uncommitted row, which then stayed pending for ever (the claim walks
 * the listed URLs) and held the pending count and the oldest pending age. */
static void test_url_drop_waits_for_an_event_in_flight(void **state)
{
    const apr_dbd_driver_t *drv = NULL;
    apr_thread_t *th;
    apr_status_t rv;
    int nrows = 0, waited = 0;
    us_webhook_stats st;
    (void)state;
    sc_setup(NULL);
    us_db *db = sc_open(pool);
    assert_int_equal(us_webhook_targets_set(db, pool, sc_urls(2, "http://a.example/h",
                                                              "http://b.example/h")), US_DB_OK);
    us_session s = sc_session(sc_uuid(pool, 2600), "ws-race", "u-race", SC_T0, 100);
    assert_int_equal(us_session_insert(db, pool, &s, 10, SC_T0), US_DB_OK);
    apr_dbd_t *h = raw_open(&drv);
    assert_int_equal(apr_dbd_query(drv, h, &nrows, "BEGIN"), 0);
    assert_int_equal(apr_dbd_query(drv, h, &nrows, apr_psprintf(pool,
        "UPDATE us_sessions SET status = 'EXPIRED', closed_at = expires_at WHERE id = '%s'",
        s.id)), 0);
    assert_int_equal(nrows, 1);
    drop_rc = US_DB_ERROR;
    apr_pool_t *tp;
    apr_pool_create_unmanaged_ex(&tp, NULL, NULL);
    assert_int_equal(apr_thread_create(&th, NULL, drop_url, tp, pool), APR_SUCCESS);
    for (int i = 0; i < 500 && !(waited = a_lock_is_waited_for(drv, h)); i++)
        apr_sleep(apr_time_from_msec(2));
    assert_int_equal(apr_dbd_query(drv, h, &nrows, "COMMIT"), 0);
    apr_thread_join(&rv, th);
    assert_int_equal(drop_rc, US_DB_OK);
    assert_string_equal(sc_column_lines("SELECT url || ' ' || event FROM us_webhook_outbox"
                                        " ORDER BY url"), "http://b.example/h session.expired\n");
    assert_true(waited);
    assert_int_equal(drop_dropped->nelts, 1);
    assert_string_equal(APR_ARRAY_IDX(drop_dropped, 0, us_webhook_dropped).url,
                        "http://a.example/h");
    assert_int_equal(APR_ARRAY_IDX(drop_dropped, 0, us_webhook_dropped).pending, 1);
    assert_int_equal(us_webhook_stats_read(db, pool, &st), US_DB_OK);
    assert_int_equal(st.pending, 1);
    apr_pool_destroy(tp);
    us_db_close(db);
    apr_dbd_close(drv, h);
    sc_teardown(NULL);
}

static us_db_rc event_rc;

/* A close of the session data (an id of ws-race) that makes its event (no
 * upload: ingested at once). */
static void *APR_THREAD_FUNC close_session(apr_thread_t *t, void *data)
{
    apr_pool_t *p;
    us_db *db = thread_db(&p);
    event_rc = db ? us_session_close(db, p, "ws-race", data, SC_T0 + 1) : US_DB_ERROR;
    return thread_end(t, p, db);
}

/* The other order: a drop of the URL (its statements by hand) holds the
 * URL's lock when a session's event is written; the event waits for it,
 * then writes no row for the URL, where it wrote one from the URL list it
 * read before the drop committed. */
static void test_event_waits_for_a_url_drop_in_flight(void **state)
{
    const apr_dbd_driver_t *drv = NULL;
    apr_thread_t *th;
    apr_status_t rv;
    int nrows = 0, waited = 0;
    (void)state;
    sc_setup(NULL);
    us_db *db = sc_open(pool);
    assert_int_equal(us_webhook_targets_set(db, pool, sc_urls(2, "http://a.example/h",
                                                              "http://b.example/h")), US_DB_OK);
    us_session s = sc_session(sc_uuid(pool, 2610), "ws-race", "u-race", SC_T0, 100);
    assert_int_equal(us_session_insert(db, pool, &s, 10, SC_T0), US_DB_OK);
    apr_dbd_t *h = raw_open(&drv);
    static const char *const drop[] = {
        "BEGIN", "SELECT pg_advisory_xact_lock(" US_PG_LOCK_WEBHOOK_URL_CLASS
        ", hashtext('http://a.example/h'))",
        "DELETE FROM us_webhook_targets WHERE url = 'http://a.example/h'", NULL
    };
    for (int i = 0; drop[i]; i++)
        assert_int_equal(apr_dbd_query(drv, h, &nrows, drop[i]), 0);
    event_rc = US_DB_ERROR;
    assert_int_equal(apr_thread_create(&th, NULL, close_session, (void *)s.id, pool),
                     APR_SUCCESS);
    for (int i = 0; i < 500 && !(waited = a_lock_is_waited_for(drv, h)); i++)
        apr_sleep(apr_time_from_msec(2));
    assert_int_equal(apr_dbd_query(drv, h, &nrows, "COMMIT"), 0);
    apr_thread_join(&rv, th);
    assert_int_equal(event_rc, US_DB_OK);
    assert_string_equal(sc_column_lines("SELECT url || ' ' || event FROM us_webhook_outbox"
                                        " ORDER BY url"), "http://b.example/h session.ingested\n");
    assert_true(waited);
    us_db_close(db);
    apr_dbd_close(drv, h);
    sc_teardown(NULL);
}

/* A claim locks the row it takes and no other: while a claim's
 * transaction is open (the claim's statement by hand on a connection of
 * its own, before its commit), another claimer takes the other URL's
 * first row, where the claim held the first due row of every URL until
 * its commit and the other claimer took a later row of a URL (out of
 * order within it) or none at all. */
static void test_claim_locks_only_the_row_it_takes(void **state)
{
    const apr_dbd_driver_t *drv = NULL;
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    int nrows = 0;
    us_webhook_row w;
    (void)state;
    sc_setup(NULL);
    us_db *db = sc_open(pool);
    assert_int_equal(us_webhook_targets_set(db, pool, sc_urls(2, "http://a.example/h",
                                                              "http://b.example/h")), US_DB_OK);
    /* due in this order: a1, b1, a2, b2 */
    assert_int_equal(sc_query("INSERT INTO us_webhook_outbox (event, session_id, workspace, url,"
        " occurred_at, uploaded_files, finished_files, failed_files, next_at) VALUES"
        " ('session.expired', 'a1', 'ws', 'http://a.example/h', 1, 0, 0, 0, 1),"
        " ('session.expired', 'b1', 'ws', 'http://b.example/h', 1, 0, 0, 0, 2),"
        " ('session.expired', 'a2', 'ws', 'http://a.example/h', 1, 0, 0, 0, 3),"
        " ('session.expired', 'b2', 'ws', 'http://b.example/h', 1, 0, 0, 0, 4)"), 0);
    long long lease = SC_SEC(60), now = apr_time_now();
    apr_array_header_t *args = apr_array_make(pool, 5, sizeof(const void *));
    APR_ARRAY_PUSH(args, const void *) = "h";
    APR_ARRAY_PUSH(args, const void *) = &lease;
    for (int i = 0; i < 3; i++)
        APR_ARRAY_PUSH(args, const void *) = &now;
    const char *claim = sc_inline(us_pg_sql_statement(US_STMT_WEBHOOK_CLAIM)->sql, args);
    apr_dbd_t *h = raw_open(&drv);
    assert_int_equal(apr_dbd_query(drv, h, &nrows, "BEGIN"), 0);
    assert_int_equal(apr_dbd_select(drv, pool, h, &res, claim, 0), 0);
    assert_int_equal(apr_dbd_get_row(drv, pool, res, &row, -1), 0);
    assert_string_equal(apr_dbd_get_entry(drv, row, 2), "a1"); /* WEBHOOK_COLS: session_id */
    while (apr_dbd_get_row(drv, pool, res, &row, -1) == 0)
        ;
    assert_int_equal(us_webhook_claim(db, pool, "d1", now, now + SC_SEC(60), &w), US_DB_OK);
    assert_string_equal(w.session_id, "b1");
    assert_int_equal(apr_dbd_query(drv, h, &nrows, "COMMIT"), 0);
    assert_int_equal(us_webhook_claim(db, pool, "d1", now, now + SC_SEC(60), &w), US_DB_OK);
    assert_string_equal(w.session_id, "a2");
    us_db_close(db);
    apr_dbd_close(drv, h);
    sc_teardown(NULL);
}

/* The node registry: a name is one instance's while its heartbeat is fresh
 * by the database's clock; the same instance (a graceful restart), a named
 * dead one, or a stale heartbeat gives it up. */
static void test_node_names(void **state)
{
    sc_setup(state);
    us_db *db = sc_open(pool);
    us_node a = { "node-x", "inst-a", "host-1/boot", 100, 0 };
    us_node b = { "node-x", "inst-b", "host-2/boot", 200, 0 };
    us_node other = { "node-y", "inst-b", "host-2/boot", 200, 0 };
    us_node holder;
    apr_interval_time_t ttl = apr_time_from_sec(60);
    assert_int_equal(us_node_claim(db, pool, &a, NULL, ttl, &holder), US_DB_OK);
    assert_int_equal(us_node_claim(db, pool, &a, NULL, ttl, &holder), US_DB_OK);
    assert_int_equal(us_node_claim(db, pool, &other, NULL, ttl, &holder), US_DB_OK);
    assert_int_equal(us_node_claim(db, pool, &b, NULL, ttl, &holder), US_DB_CONFLICT);
    assert_string_equal(holder.instance, "inst-a");
    assert_string_equal(holder.host, "host-1/boot");
    assert_int_equal(holder.pid, 100);
    assert_true(holder.age >= 0 && holder.age < ttl);
    /* naming another instance as dead replaces nothing */
    assert_int_equal(us_node_claim(db, pool, &b, "inst-z", ttl, &holder), US_DB_CONFLICT);
    assert_int_equal(us_node_heartbeat(db, pool, "node-x", "inst-a"), US_DB_OK);
    /* a's heartbeat older than a short ttl by the database's clock */
    apr_sleep(apr_time_from_msec(300));
    assert_int_equal(us_node_claim(db, pool, &b, NULL, apr_time_from_sec(30), &holder),
                     US_DB_CONFLICT);
    assert_int_equal(us_node_claim(db, pool, &b, NULL, apr_time_from_msec(200), &holder),
                     US_DB_OK);
    assert_int_equal(us_node_heartbeat(db, pool, "node-x", "inst-a"), US_DB_CONFLICT);
    assert_int_equal(us_node_heartbeat(db, pool, "node-x", "inst-b"), US_DB_OK);
    /* a dead holder named by the caller is replaced at once */
    assert_int_equal(us_node_claim(db, pool, &a, "inst-b", ttl, &holder), US_DB_OK);
    assert_int_equal(us_node_heartbeat(db, pool, "node-x", "inst-a"), US_DB_OK);
    us_db_close(db);
    sc_teardown(NULL);
}

/* A connection whose database stays away (down for hours: a worker's
 * connection tries again every second) keeps its memory: each failed
 * reconnect replaces the last message, nothing piles up. The connection
 * reaches the server through a link to its socket; once the link is gone
 * and the backend ended, every reconnect fails at once. */
static void test_failing_reconnects_keep_their_memory(void **state)
{
    (void)state;
    if (!pg_fixture_dir[0]) {
        printf("[  SKIPPED ] not our own cluster: its socket directory is unknown\n");
        return;
    }
    sc_setup(NULL);
    const char *port = strstr(sc_params, "port=") + 5;
    char sockname[64], dir[] = "/tmp/us-pgsock-XXXXXX";
    snprintf(sockname, sizeof(sockname), ".s.PGSQL.%ld", strtol(port, NULL, 10));
    assert_non_null(mkdtemp(dir));
    const char *link_path = apr_pstrcat(pool, dir, "/", sockname, NULL);
    assert_int_equal(symlink(apr_pstrcat(pool, pg_fixture_dir, "/sock/", sockname, NULL),
                             link_path), 0);
    us_store_cfg *cfg = NULL;
    us_db *db = NULL;
    const char *err = NULL, *dbname = strrchr(sc_params, '=') + 1;
    assert_int_equal(us_store_configure(pool, "pgsql", apr_pstrcat(pool, sc_params, " host=", dir, NULL),
                                        &cfg, &err), US_DB_OK);
    assert_int_equal(us_db_open(pool, cfg, &db, &err), US_DB_OK);
    us_session got;
    apr_pool_t *p;
    apr_pool_create(&p, pool);
    assert_int_equal(us_session_get(db, p, "ws", sc_uuid(p, 1), SC_T0, &got), US_DB_NOTFOUND);
    unlink(link_path);
    rmdir(dir);
    assert_int_equal(pg_fixture_admin(apr_psprintf(pool,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '%s'"
        " AND pid <> pg_backend_pid()", dbname)), 0);
    size_t held = 0;
    for (int i = 0; i < 4000; i++) {
        apr_pool_clear(p);
        assert_int_equal(us_session_get(db, p, "ws", sc_uuid(p, 1), SC_T0, &got), US_DB_BUSY);
        if (i == 1999)
            held = data_bytes();
    }
    assert_non_null(strstr(us_db_error(db), "cannot connect to PostgreSQL"));
    size_t now = data_bytes();
    printf("# 2000 failed reconnects: %zu more bytes%s\n", now > held ? now - held : 0,
           data_meter_trusted() ? "" : " (not checked: valgrind or AddressSanitizer)");
    if (data_meter_trusted() && now > held + 64 * 1024)
        fail_msg("2,000 failed reconnects took %zu more bytes", now - held);
    apr_pool_destroy(p);
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

/* A server whose lc_messages is German: what the store retries and when it
 * reconnects is told by SQLSTATE, not by English words. Each test checks
 * that the language took effect. */
static void assert_database_speaks_german(void)
{
    const apr_dbd_driver_t *drv = NULL;
    int nrows = 0;
    const char *params = pg_create(pool, "german_probe");
    apr_dbd_t *h = raw_open_to(params, &drv);
    int rc = apr_dbd_query(drv, h, &nrows, "SELECT 1/0");
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(apr_dbd_error(drv, h, rc), "Division durch Null"));
    apr_dbd_close(drv, h);
    pg_destroy(pool, params);
}

static void in_german(void (*test)(void **), void **state)
{
    messages_locale = PG_FIXTURE_GERMAN;
    assert_database_speaks_german();
    test(state);
    messages_locale = NULL;
}

static void test_german_server_deadlock_victim_retried(void **state)
{
    in_german(test_deadlock_victim_retried, state);
}

static void test_german_server_close_outlasting_a_lock_timeout_is_retried(void **state)
{
    in_german(test_a_close_outlasting_a_lock_timeout_once_is_retried, state);
}

static void test_german_server_dropped_connection_reopens(void **state)
{
    in_german(test_dropped_connection_reopens, state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dropped_connection_reopens),
        cmocka_unit_test(test_limit_with_a_create_in_flight),
        cmocka_unit_test(test_deadlock_victim_retried),
        cmocka_unit_test(test_url_drop_locks_rows_first),
        cmocka_unit_test(test_sweep_and_workspace_delete_lock_sessions_by_id),
        cmocka_unit_test(test_sweep_and_workspace_delete_lock_users_by_id),
        cmocka_unit_test(test_url_drop_waits_for_an_event_in_flight),
        cmocka_unit_test(test_event_waits_for_a_url_drop_in_flight),
        cmocka_unit_test(test_claim_locks_only_the_row_it_takes),
        cmocka_unit_test(test_outcome_unknown_when_lost_at_commit),
        cmocka_unit_test(test_a_close_outlasting_a_lock_timeout_once_is_retried),
        cmocka_unit_test(test_german_server_deadlock_victim_retried),
        cmocka_unit_test(test_german_server_close_outlasting_a_lock_timeout_is_retried),
        cmocka_unit_test(test_german_server_dropped_connection_reopens),
        cmocka_unit_test(test_a_failed_create_leaves_its_batch),
        cmocka_unit_test(test_concurrent_reads_share_statements),
        cmocka_unit_test(test_a_read_in_a_transaction_stays_in_it),
        cmocka_unit_test(test_lease_on_the_database_clock),
        cmocka_unit_test(test_concurrent_migrations),
        cmocka_unit_test(test_migration_fills_the_key_table),
        cmocka_unit_test(test_migration_adds_the_create_function),
        cmocka_unit_test(test_names_in_byte_order_under_a_linguistic_collation),
        cmocka_unit_test(test_migration_orders_names_by_bytes),
        cmocka_unit_test(test_migration_counts_closed_and_expired),
        cmocka_unit_test(test_migration_drops_orphaned_rows),
        cmocka_unit_test(test_event_without_urls_skips_its_inserts),
        cmocka_unit_test(test_status_reads_seek),
        cmocka_unit_test(test_decimal_count_reads_a_range),
        cmocka_unit_test(test_node_names),
        cmocka_unit_test(test_files_delete_locks_in_byte_order),
        cmocka_unit_test(test_failing_reconnects_keep_their_memory),
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

/* Unit tests: the write queue with group commit (us_writer.c) and the
 * per-user open-session counter, against a temporary SQLite database. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <apr_file_info.h>
#include <apr_general.h>
#include <apr_strings.h>
#include <apr_thread_proc.h>
#include <sqlite3.h>
#include "us_odata.h"
#include "us_store_db.h"
#include "us_worker_link.h"

#define SQ(db) us_sqlite_of(db)
#include "sqlite_fixture.h"

static const char *dbpath;

#define SEC(n) ((apr_time_t)(n) * APR_USEC_PER_SEC)
static const apr_time_t T0 = SEC(1795863600);

/* the store's configuration, made before any thread: pool is not theirs */
static us_store_cfg *store_cfg;

static int setup(void **state)
{
    (void)state;
    dbpath = fixture_path("store.db");
    fixture_db_create(dbpath);
    store_cfg = fixture_cfg(dbpath);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    fixture_db_remove(dbpath);
    return 0;
}

static us_db *open_db(apr_pool_t *p)
{
    us_db *db = NULL;
    const char *err = NULL;
    if (us_db_open(p, store_cfg, &db, &err) != US_DB_OK)
        fail_msg("open: %s", err);
    return db;
}

static us_session make(apr_pool_t *p, int n, const char *user, long lifetime)
{
    us_session s;
    memset(&s, 0, sizeof(s));
    s.id = apr_psprintf(p, "00000000-0000-4000-8000-%012d", n);
    s.workspace = "ws";
    s.user_id = user;
    s.given_name = "Ada";
    s.family_name = "Lovelace";
    s.write_mode = "KEEP";
    s.created_at = T0 + n;
    s.expires_at = T0 + SEC(lifetime);
    return s;
}

/* The user's counter row as stored (-1: no row). */
static long long counter(us_db *db, const char *user)
{
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    long long n = -1;
    const char *sql = apr_psprintf(pool, "SELECT n FROM us_user_open WHERE user_id = '%s'", user);
    assert_int_equal(apr_dbd_select(SQ(db)->drv, pool, SQ(db)->h, &res, sql, 0), 0);
    while (apr_dbd_get_row(SQ(db)->drv, pool, res, &row, -1) == 0)
        n = apr_atoi64(apr_dbd_get_entry(SQ(db)->drv, row, 0));
    return n;
}

/* The first column of the one row sql selects, as a number. */
static long long count_of(us_db *db, const char *sql)
{
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    long long n = -1;
    assert_int_equal(apr_dbd_select(SQ(db)->drv, pool, SQ(db)->h, &res, sql, 0), 0);
    while (apr_dbd_get_row(SQ(db)->drv, pool, res, &row, -1) == 0)
        n = apr_atoi64(apr_dbd_get_entry(SQ(db)->drv, row, 0));
    return n;
}

/* Whether SQLite's plan for sql names index. */
static int plan_uses(us_db *db, const char *sql, const char *index)
{
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    int uses = 0;
    assert_int_equal(apr_dbd_select(SQ(db)->drv, pool, SQ(db)->h, &res,
                                    apr_pstrcat(pool, "EXPLAIN QUERY PLAN ", sql, NULL), 0), 0);
    while (apr_dbd_get_row(SQ(db)->drv, pool, res, &row, -1) == 0) {
        const char *detail = apr_dbd_get_entry(SQ(db)->drv, row, 3);
        uses |= detail && strstr(detail, index) != NULL;
    }
    return uses;
}

/* The steps of a prepared statement's plan (its parameters bound to NULL),
 * NULL-terminated. */
static const char **plan_steps(us_db *db, const us_stmt_def *def)
{
    apr_dbd_prepared_t *stmt = NULL;
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    const void *nulls[16] = { NULL }; /* NULL binds SQL NULL */
    apr_array_header_t *steps = apr_array_make(pool, 8, sizeof(const char *));
    assert_int_equal(apr_dbd_prepare(SQ(db)->drv, pool, SQ(db)->h,
                                     apr_pstrcat(pool, "EXPLAIN QUERY PLAN ", def->sql, NULL),
                                     NULL, &stmt), 0);
    assert_int_equal(apr_dbd_pbselect(SQ(db)->drv, pool, SQ(db)->h, &res, stmt, 0, nulls), 0);
    while (apr_dbd_get_row(SQ(db)->drv, pool, res, &row, -1) == 0)
        APR_ARRAY_PUSH(steps, const char *) = apr_pstrdup(pool, apr_dbd_get_entry(SQ(db)->drv, row, 3));
    APR_ARRAY_PUSH(steps, const char *) = NULL;
    return (const char **)steps->elts;
}

static int session_exists(us_db *db, const char *id)
{
    us_session got;
    return us_session_by_id(db, pool, id, T0, &got) == US_DB_OK;
}

/* ---- one batch: a failing piece fails alone ----------------------------------- */

typedef struct {
    us_session s;
    us_db_rc then; /* what the piece returns; it inserts first unless a logical answer */
    int runs;
} piece;

static us_db_rc insert_then(us_sqlite_db *sq, apr_pool_t *p, void *arg)
{
    us_db *db = &sq->base;
    piece *pc = arg;
    int nrows = 0;
    pc->runs++;
    if (pc->then != US_DB_OK && pc->then != US_DB_ERROR)
        return pc->then; /* logical answers change nothing */
    apr_int64_t c = pc->s.created_at, e = pc->s.expires_at;
    int par = 0, direct = 0;
    const void *args[] = { pc->s.id, pc->s.workspace, pc->s.user_id, pc->s.given_name,
                           pc->s.family_name, pc->s.write_mode, &par, &c, &e, &direct };
    int rc = apr_dbd_pbquery(SQ(db)->drv, p, SQ(db)->h, &nrows, SQ(db)->stmt[US_STMT_SESSION_INSERT], args);
    if (rc != 0)
        return us_db_fail(SQ(db), rc, "insert");
    if (pc->then != US_DB_OK)
        SQ(db)->err = "piece failed on purpose";
    return pc->then;
}

/* A connection's failures take none of its pool: a pooled connection lives
 * as long as its process, and BUSY (a locked store) keeps it pooled. Each
 * message goes in the buffer the one before is not in, so it may quote it. */
static void test_error_texts_take_no_memory_of_the_connection(void **state)
{
    us_db *db = open_db(pool);
    us_sqlite_db *sq = SQ(db);
    (void)state;
    us_sqlite_clear_error(db);
    for (int i = 0; i < 10000; i++) {
        assert_int_equal(us_db_fail(sq, SQLITE_BUSY, "a locked store"), US_DB_BUSY);
        assert_ptr_equal(us_db_error(db), sq->errbuf[i % 2]);
    }
    us_sqlite_set_errf(sq, "again: %s", us_db_error(db));
    assert_ptr_equal(us_db_error(db), sq->errbuf[0]);
    assert_string_equal(us_db_error(db), apr_psprintf(pool, "again: %s", sq->errbuf[1]));
    char *huge = apr_palloc(pool, 4 * US_SQLITE_ERR_MAX);
    memset(huge, 'x', 4 * US_SQLITE_ERR_MAX - 1);
    huge[4 * US_SQLITE_ERR_MAX - 1] = '\0';
    us_sqlite_set_errf(sq, "%s", huge); /* cut, not overrun */
    assert_int_equal(strlen(us_db_error(db)), US_SQLITE_ERR_MAX - 1);
    us_db_close(db);
}

static void test_batch_fails_only_the_failing_piece(void **state)
{
    us_db *db = open_db(pool);
    piece a = { make(pool, 1, "u1", 100), US_DB_OK, 0 };
    piece b = { make(pool, 2, "u1", 100), US_DB_ERROR, 0 };
    piece c = { make(pool, 3, "u1", 100), US_DB_CONFLICT, 0 };
    piece d = { make(pool, 4, "u1", 100), US_DB_OK, 0 };
    us_write_job jd = { .fn = insert_then, .arg = &d, .pool = pool };
    us_write_job jc = { .fn = insert_then, .arg = &c, .pool = pool, .next = &jd };
    us_write_job jb = { .fn = insert_then, .arg = &b, .pool = pool, .next = &jc };
    us_write_job ja = { .fn = insert_then, .arg = &a, .pool = pool, .next = &jb };
    (void)state;

    us_write_batch(SQ(db), &ja);
    assert_int_equal(ja.rc, US_DB_OK);
    assert_int_equal(jb.rc, US_DB_ERROR);
    assert_string_equal(jb.err, "piece failed on purpose");
    assert_int_equal(jc.rc, US_DB_CONFLICT);
    assert_int_equal(jd.rc, US_DB_OK);
    assert_true(session_exists(db, a.s.id));
    assert_false(session_exists(db, b.s.id));
    assert_false(session_exists(db, c.s.id));
    assert_true(session_exists(db, d.s.id));
    assert_int_equal(counter(db, "u1"), 2); /* the trigger's +1s were undone too */
    /* b's failure rolled the shared batch back; each then ran alone */
    assert_int_equal(a.runs, 2);
    assert_int_equal(b.runs, 2);
    assert_int_equal(c.runs, 1);
    assert_int_equal(d.runs, 1);
    us_db_close(db);
}

static void test_lone_failed_piece_leaves_nothing(void **state)
{
    us_db *db = open_db(pool);
    piece a = { make(pool, 5, "u2", 100), US_DB_ERROR, 0 };
    (void)state;
    assert_int_equal(us_write(SQ(db), pool, insert_then, &a), US_DB_ERROR);
    assert_string_equal(us_db_error(db), "piece failed on purpose");
    assert_false(session_exists(db, a.s.id));
    assert_int_equal(counter(db, "u2"), -1);
    us_db_close(db);
}

/* ---- many writers at once ---------------------------------------------------------- */

#define WRITERS 12
#define PER_WRITER 25
#define LIMIT 100
static int writer_ok[WRITERS], writer_limit[WRITERS], writer_other[WRITERS];

static void *APR_THREAD_FUNC writer_thread(apr_thread_t *t, void *data)
{
    int i = (int)(long)data;
    apr_pool_t *p;
    apr_pool_create_unmanaged_ex(&p, NULL, NULL);
    us_db *db = open_db(p);
    for (int k = 0; k < PER_WRITER; k++) {
        us_session s = make(p, 1000 + i * PER_WRITER + k, "racer", 100);
        us_db_rc rc = us_session_insert(db, p, &s, LIMIT, T0);
        writer_ok[i] += rc == US_DB_OK;
        writer_limit[i] += rc == US_DB_LIMIT;
        writer_other[i] += rc != US_DB_OK && rc != US_DB_LIMIT;
    }
    us_db_close(db);
    apr_pool_destroy(p);
    (void)t;
    return NULL;
}

/* 300 inserts from 12 connections against a limit of 100: the batches
 * keep the limit exact, and the counter matches the rows. */
static void test_concurrent_inserts_keep_the_limit(void **state)
{
    apr_thread_t *th[WRITERS];
    int ok = 0, limited = 0, other = 0;
    (void)state;
    for (long i = 0; i < WRITERS; i++)
        assert_int_equal(apr_thread_create(&th[i], NULL, writer_thread, (void *)i, pool),
                         APR_SUCCESS);
    for (int i = 0; i < WRITERS; i++) {
        apr_status_t rv;
        apr_thread_join(&rv, th[i]);
        ok += writer_ok[i];
        limited += writer_limit[i];
        other += writer_other[i];
    }
    assert_int_equal(other, 0);
    assert_int_equal(ok, LIMIT);
    assert_int_equal(limited, WRITERS * PER_WRITER - LIMIT);
    us_db *db = open_db(pool);
    assert_int_equal(counter(db, "racer"), LIMIT);
    us_db_close(db);
}

/* ---- one WAL sync at a time ----------------------------------------------------------- */

static sem_t sync_entered, sync_release;
static int held_syncs, counted_syncs, counted_sync_fails;

/* A's sync: holds until the test releases it. */
static int held_sync(int fd)
{
    (void)fd;
    held_syncs++;
    sem_post(&sync_entered);
    while (sem_wait(&sync_release) != 0)
        ;
    return 0;
}

static int counted_sync(int fd)
{
    (void)fd;
    __atomic_add_fetch(&counted_syncs, 1, __ATOMIC_SEQ_CST);
    if (counted_sync_fails) {
        errno = EIO;
        return -1;
    }
    return 0;
}

typedef struct {
    int n; /* the session it inserts; 0: a durable barrier instead */
    int (*sync)(int fd);
    us_db_rc rc;
    int done;
} sync_writer;

static void *APR_THREAD_FUNC sync_writer_thread(apr_thread_t *t, void *data)
{
    sync_writer *a = data;
    apr_pool_t *p;
    apr_pool_create_unmanaged_ex(&p, NULL, NULL);
    us_db *db = open_db(p);
    SQ(db)->wal_fdatasync = a->sync;
    piece pc = { make(p, a->n, "u9", 100), US_DB_OK, 0 };
    a->rc = a->n ? us_write(SQ(db), p, insert_then, &pc) : us_durable_barrier(db, p);
    __atomic_store_n(&a->done, 1, __ATOMIC_SEQ_CST);
    us_db_close(db);
    apr_pool_destroy(p);
    (void)t;
    return NULL;
}

static void wait_sync_waiting(us_db *probe, int n)
{
    for (int i = 0; i < 10000 && us_write_sync_waiting(SQ(probe)) != n; i++)
        usleep(1000);
    assert_int_equal(us_write_sync_waiting(SQ(probe)), n);
}

/* While A's sync runs, B and C commit (two batches) and wait; the next
 * sync, run by one of them, covers both; its failure is both of theirs. */
static void shared_sync_case(int fail)
{
    apr_thread_t *ta, *tb, *tc;
    apr_status_t rv;
    sync_writer a = { 7000 + fail * 10, held_sync, -1, 0 };
    sync_writer b = { 7001 + fail * 10, counted_sync, -1, 0 };
    sync_writer c = { 7002 + fail * 10, counted_sync, -1, 0 };
    us_db *probe = open_db(pool);

    sem_init(&sync_entered, 0, 0);
    sem_init(&sync_release, 0, 0);
    held_syncs = counted_syncs = 0;
    counted_sync_fails = fail;
    assert_int_equal(apr_thread_create(&ta, NULL, sync_writer_thread, &a, pool), APR_SUCCESS);
    while (sem_wait(&sync_entered) != 0)
        ;
    assert_int_equal(apr_thread_create(&tb, NULL, sync_writer_thread, &b, pool), APR_SUCCESS);
    wait_sync_waiting(probe, 1);
    assert_int_equal(apr_thread_create(&tc, NULL, sync_writer_thread, &c, pool), APR_SUCCESS);
    wait_sync_waiting(probe, 2);
    assert_true(session_exists(probe, make(pool, b.n, "u9", 100).id)); /* committed */
    assert_int_equal(counted_syncs, 0);
    sem_post(&sync_release);
    apr_thread_join(&rv, ta);
    apr_thread_join(&rv, tb);
    apr_thread_join(&rv, tc);

    assert_int_equal(a.rc, US_DB_OK);
    assert_int_equal(held_syncs, 1);
    assert_int_equal(counted_syncs, 1);
    assert_int_equal(b.rc, fail ? US_DB_NOT_DURABLE : US_DB_OK);
    assert_int_equal(c.rc, fail ? US_DB_NOT_DURABLE : US_DB_OK);
    assert_int_equal(us_write_sync_waiting(SQ(probe)), 0);
    sem_destroy(&sync_entered);
    sem_destroy(&sync_release);
    us_db_close(probe);
}

static void test_commits_during_a_sync_share_the_next(void **state)
{
    (void)state;
    shared_sync_case(0);
}

static void test_a_failed_shared_sync_fails_every_batch_it_covered(void **state)
{
    (void)state;
    shared_sync_case(1);
}

/* A's commit is seen by others while its sync runs; the barrier returns
 * only after a sync that began after it (the next, which it runs), so a
 * reader that waits for it acts on what is on disk. */
static void test_the_durable_barrier_waits_for_a_running_sync(void **state)
{
    apr_thread_t *ta, *tb;
    apr_status_t rv;
    sync_writer a = { 7100, held_sync, -1, 0 };
    sync_writer b = { 0, counted_sync, -1, 0 };
    us_db *probe = open_db(pool);
    (void)state;
    sem_init(&sync_entered, 0, 0);
    sem_init(&sync_release, 0, 0);
    held_syncs = counted_syncs = counted_sync_fails = 0;
    assert_int_equal(apr_thread_create(&ta, NULL, sync_writer_thread, &a, pool), APR_SUCCESS);
    while (sem_wait(&sync_entered) != 0)
        ;
    assert_true(session_exists(probe, make(pool, a.n, "u9", 100).id)); /* not yet on disk */
    assert_int_equal(apr_thread_create(&tb, NULL, sync_writer_thread, &b, pool), APR_SUCCESS);
    /* the barrier committed and waits for the next sync; A released
     * before any assertion, so that a failure does not hang */
    int waiting = 0;
    for (int i = 0; i < 10000 && (waiting = us_write_sync_waiting(SQ(probe))) != 1; i++)
        usleep(1000);
    int early = __atomic_load_n(&b.done, __ATOMIC_SEQ_CST), synced = counted_syncs;
    sem_post(&sync_release);
    apr_thread_join(&rv, ta);
    apr_thread_join(&rv, tb);
    assert_int_equal(waiting, 1);
    assert_false(early);
    assert_int_equal(synced, 0);
    assert_int_equal(a.rc, US_DB_OK);
    assert_int_equal(b.rc, US_DB_OK);
    assert_int_equal(counted_syncs, 1);
    sem_destroy(&sync_entered);
    sem_destroy(&sync_release);
    us_db_close(probe);
}

/* ---- the counter follows every way out of OPEN ---------------------------------------- */

/* The users' counters of closed and expired sessions (schema 16) against
 * the rows, and the overview that reads them. */
static void closed_expired_match(us_db *db, long long closed, long long expired)
{
    us_store_overview o;
    assert_int_equal(count_of(db, "SELECT COUNT(*) FROM us_sessions WHERE status = 'CLOSED'"),
                     closed);
    assert_int_equal(count_of(db, "SELECT COUNT(*) FROM us_sessions WHERE status = 'EXPIRED'"),
                     expired);
    assert_int_equal(count_of(db, "SELECT coalesce(SUM(closed), 0) FROM us_user_open"), closed);
    assert_int_equal(count_of(db, "SELECT coalesce(SUM(expired), 0) FROM us_user_open"), expired);
    assert_int_equal(us_store_overview_read(db, pool, T0, &o), US_DB_OK);
    assert_int_equal(o.closed, closed);
    assert_int_equal(o.expired, expired);
}

static void test_counter_follows_close_and_expiry(void **state)
{
    us_db *db = open_db(pool);
    int n = 0;
    (void)state;
    /* the sweep reads the database's clock: expiry times relative to it */
    apr_time_t now = apr_time_now();
    for (int i = 0; i < 4; i++) {
        us_session s = make(pool, 2000 + i, "u3", 100);
        s.expires_at = now + (i < 2 ? SEC(2) : SEC(3600));
        assert_int_equal(us_session_insert(db, pool, &s, 4, now), US_DB_OK);
    }
    assert_int_equal(counter(db, "u3"), 4);
    us_session full = make(pool, 2010, "u3", 100);
    full.expires_at = now + SEC(3600);
    assert_int_equal(us_session_insert(db, pool, &full, 4, now), US_DB_LIMIT);
    /* two expire by time: they stop counting before the sweep writes it */
    assert_int_equal(us_session_insert(db, pool, &full, 4, now + SEC(10)), US_DB_OK);
    assert_int_equal(counter(db, "u3"), 5);
    assert_int_equal(us_sessions_expire(db, pool, &n), US_DB_OK);
    assert_int_equal(n, 0);
    apr_sleep(SEC(2) + 100000);
    assert_int_equal(us_sessions_expire(db, pool, &n), US_DB_OK);
    assert_int_equal(n, 2);
    assert_int_equal(counter(db, "u3"), 3);
    assert_int_equal(us_session_close(db, pool, "ws", make(pool, 2002, "u3", 0).id, T0 + SEC(11)),
                     US_DB_OK);
    assert_int_equal(counter(db, "u3"), 2);
    closed_expired_match(db, 1, 2);
    /* closing again changes nothing */
    assert_int_equal(us_session_close(db, pool, "ws", make(pool, 2002, "u3", 0).id, T0 + SEC(11)),
                     US_DB_CONFLICT);
    assert_int_equal(counter(db, "u3"), 2);
    closed_expired_match(db, 1, 2);
    /* an abort frees the slot; the workspace's delete takes the closed and
     * expired ones out of the counts as well (they read as absent) */
    assert_int_equal(us_session_abort(db, pool, "ws", make(pool, 2003, "u3", 0).id, T0 + SEC(11)),
                     US_DB_OK);
    assert_int_equal(counter(db, "u3"), 1);
    closed_expired_match(db, 1, 2);
    apr_array_header_t *ids = NULL;
    assert_int_equal(us_workspace_delete(db, pool, "ws", T0 + SEC(11), &ids), US_DB_OK);
    assert_int_equal(counter(db, "u3"), 0);
    closed_expired_match(db, 0, 0);
    us_db_close(db);
}

/* Schemas 19 and 16 undone on a store of the current schema: no count of
 * a session's sidecars, schema 15's triggers, no counts of closed and
 * expired, the expiry index on every status. */
static const char *const UNDO_SCHEMA_16[] = {
    "ALTER TABLE us_sessions DROP COLUMN uploaded_sidecars",
    "DROP TRIGGER us_user_open_insert", "DROP TRIGGER us_user_open_update",
    "DROP TRIGGER us_user_open_delete",
    "ALTER TABLE us_user_open DROP COLUMN closed", "ALTER TABLE us_user_open DROP COLUMN expired",
    "CREATE TRIGGER us_user_open_insert AFTER INSERT ON us_sessions"
    " WHEN NEW.status = 'OPEN' BEGIN"
    " INSERT INTO us_user_open (user_id, n) VALUES (NEW.user_id, 1)"
    " ON CONFLICT (user_id) DO UPDATE SET n = n + 1; END",
    "CREATE TRIGGER us_user_open_update AFTER UPDATE OF status ON us_sessions"
    " WHEN (OLD.status = 'OPEN') <> (NEW.status = 'OPEN') BEGIN"
    " UPDATE us_user_open SET n = n + (CASE WHEN NEW.status = 'OPEN' THEN 1 ELSE -1 END)"
    " WHERE user_id = OLD.user_id; END",
    "CREATE TRIGGER us_user_open_delete AFTER DELETE ON us_sessions"
    " WHEN OLD.status = 'OPEN' BEGIN"
    " UPDATE us_user_open SET n = n - 1 WHERE user_id = OLD.user_id; END",
    "DROP INDEX us_sessions_expiry",
    "CREATE INDEX us_sessions_expiry ON us_sessions (status, expires_at)",
    NULL
};

static void run_sql(us_db *db, const char *const *sql)
{
    int nrows = 0;
    for (const char *const *q = sql; *q; q++)
        if (apr_dbd_query(SQ(db)->drv, SQ(db)->h, &nrows, *q) != 0)
            fail_msg("%s: %s", *q, apr_dbd_error(SQ(db)->drv, SQ(db)->h, 1));
}

/* db (closed here) taken back to an older schema by UNDO_SCHEMA_16 and
 * older (which sets the version), then migrated: the store reopened. */
static us_db *migrated_from(us_db *db, const char *const *older)
{
    const char *err = NULL;
    run_sql(db, UNDO_SCHEMA_16);
    run_sql(db, older);
    us_db_close(db);
    assert_int_equal(us_store_migrate(fixture_cfg(dbpath), pool, &err), US_DB_OK);
    return open_db(pool);
}

/* A store of schema 15 (the expiry index held every status, the overview
 * counted closed and expired sessions from it) gets the users' counters of
 * closed and expired sessions from its rows, a user without an open
 * session included; from then on the index holds the OPEN ones alone. */
static void test_migration_counts_closed_and_expired(void **state)
{
    us_db *db = open_db(pool);
    (void)state;
    static const char *const rows[] = {
        "INSERT INTO us_sessions (id, workspace, user_id, given_name, family_name, write_mode,"
        " parallel, status, created_at, expires_at, closed_at, ingest_state) VALUES"
        " ('m1', 'ws', 'a', 'A', 'B', 'KEEP', 0, 'OPEN', 1, 9000000000000000, NULL, 'none'),"
        " ('m2', 'ws', 'a', 'A', 'B', 'KEEP', 0, 'CLOSED', 1, 9000000000000000, 2, 'done'),"
        " ('m3', 'ws', 'a', 'A', 'B', 'KEEP', 0, 'EXPIRED', 1, 2, 2, 'done'),"
        " ('m4', 'ws', 'b', 'A', 'B', 'KEEP', 0, 'CLOSED', 1, 9000000000000000, 2, 'done'),"
        " ('m5', 'ws', 'b', 'A', 'B', 'KEEP', 0, 'CLOSED', 1, 9000000000000000, 2, 'done'),"
        " ('m6', 'ws', 'b', 'A', 'B', 'KEEP', 0, 'ABORTED', 1, 9000000000000000, 2, 'done')",
        "DELETE FROM us_user_open WHERE user_id = 'b'", /* b has no open session */
        "DROP INDEX us_webhook_last_error", /* 17 -> 18 */
        "ALTER TABLE us_uploads DROP COLUMN publish_refusals", /* 19 -> 20 */
        "ALTER TABLE us_sessions DROP COLUMN ingest_not_before", /* 20 -> 21 */
        "ALTER TABLE us_webhook_targets DROP COLUMN failures", /* 21 -> 22 */
        "ALTER TABLE us_webhook_targets DROP COLUMN paused_until",
        "DROP INDEX us_webhook_url_due", /* 22 -> 23 */
        "UPDATE us_meta SET value = '15' WHERE name = 'schema_version'", NULL
    };
    db = migrated_from(db, rows);
    assert_int_equal(counter(db, "a"), 1);
    assert_int_equal(counter(db, "b"), 0);
    assert_int_equal(count_of(db, "SELECT closed * 10 + expired FROM us_user_open"
                                  " WHERE user_id = 'a'"), 11);
    assert_int_equal(count_of(db, "SELECT closed * 10 + expired FROM us_user_open"
                                  " WHERE user_id = 'b'"), 20);
    closed_expired_match(db, 3, 1);
    assert_int_equal(count_of(db, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index'"
                                  " AND name = 'us_sessions_expiry'"
                                  " AND sql LIKE '%(status, expires_at) WHERE status = ''OPEN'''"), 1);
    assert_true(plan_uses(db, "SELECT COUNT(*) FROM us_sessions WHERE status = 'OPEN'"
                              " AND expires_at <= 5", "us_sessions_expiry"));
    /* the new triggers follow a close */
    assert_int_equal(us_session_close(db, pool, "ws", "m1", T0), US_DB_OK);
    assert_int_equal(counter(db, "a"), 0);
    closed_expired_match(db, 4, 1);
    us_db_close(db);
}

/* A database of schema 4 (no counter) gets its counters from its rows. */
static void test_migration_counts_existing_sessions(void **state)
{
    us_db *db = open_db(pool);
    const char *err = NULL;
    int nrows = 0;
    (void)state;
    for (int i = 0; i < 3; i++) {
        us_session s = make(pool, 3000 + i, "u4", 100);
        assert_int_equal(us_session_insert(db, pool, &s, 10, T0), US_DB_OK);
    }
    assert_int_equal(us_session_close(db, pool, "ws", make(pool, 3000, "u4", 0).id, T0), US_DB_OK);
    /* files from before the key table (8 -> 9) */
    apr_array_header_t *deleted, *rows;
    for (int i = 0; i < 3; i++) {
        us_workspace_file f = { apr_psprintf(pool, "00000000-0000-4000-8000-00000000300%d", i),
                                apr_psprintf(pool, "f%d.txt", i), i ? "{\"k\":\"v\",\"n\":2}" : "{\"k\":1}",
                                1, T0 + i, -1, 0 };
        assert_int_equal(us_workspace_file_add(db, pool, "ws", &f, "KEEP", &deleted), US_DB_OK);
    }
    static const char *const back_to_4[] = {
        "DROP TRIGGER us_file_keys_insert", "DROP TRIGGER us_file_keys_update", /* 8 -> 9 */
        "DROP TRIGGER us_file_keys_delete", "DROP TABLE us_file_keys", "DROP TABLE us_file_nos",
        "DROP TRIGGER us_user_open_insert", "DROP TRIGGER us_user_open_update",
        "DROP TRIGGER us_user_open_delete", "DROP TABLE us_user_open",
        "CREATE INDEX us_sessions_user_open ON us_sessions (user_id, status, expires_at)",
        "DROP INDEX us_sessions_ingest",
        "CREATE INDEX us_sessions_ingest ON us_sessions (ingest_state, closed_at)",
        "DROP INDEX us_sessions_turn",
        "CREATE INDEX us_sessions_turn ON us_sessions (workspace, parallel, ingest_state, closed_at)",
        "ALTER TABLE us_files DROP COLUMN characters", "DROP TABLE us_file_trash", /* 5 -> 6 */
        "DROP TRIGGER us_webhook_expired", "DROP TRIGGER us_webhook_ingested", /* 6 -> 7 */
        "DROP TABLE us_webhook_outbox", "DROP TABLE us_webhook_targets",
        "DROP TABLE us_workspaces", /* 7 -> 8 */
        "ALTER TABLE us_sessions DROP COLUMN uploaded_sidecars", /* 18 -> 19 */
        "DROP INDEX us_files_ws_created", /* 16 -> 17 */
        "CREATE INDEX us_files_ws_created ON us_files (workspace, created_at DESC, file_id DESC)",
        "CREATE INDEX us_uploads_pending ON us_uploads (session_id, is_meta, ingestion_status, name)",
        /* 11 -> 12 */
        "DROP INDEX us_sessions_late_clear", /* 10 -> 11 */
        "ALTER TABLE us_sessions DROP COLUMN direct", "ALTER TABLE us_uploads DROP COLUMN etag",
        /* 9 -> 10 */
        "ALTER TABLE us_uploads DROP COLUMN publish_refusals", /* 19 -> 20 */
        "ALTER TABLE us_sessions DROP COLUMN ingest_not_before", /* 20 -> 21 */
        "UPDATE us_meta SET value = '4' WHERE name = 'schema_version'", NULL
    };
    for (const char *const *q = back_to_4; *q; q++)
        assert_int_equal(apr_dbd_query(SQ(db)->drv, SQ(db)->h, &nrows, *q), 0);
    us_db_close(db);

    assert_int_equal(us_store_migrate(fixture_cfg(dbpath), pool, &err), US_DB_OK);
    db = open_db(pool);
    assert_int_equal(counter(db, "u4"), 2);
    /* 10 -> 11 -> 12 -> 15: the queue of every session's last clear, which
     * the query reads (a partial index: only when its WHERE implies the index's) */
    assert_int_equal(count_of(db, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index'"
                                  " AND name = 'us_sessions_late_clear'"
                                  " AND sql LIKE '%WHERE direct NOT IN (0, 3)'"), 1);
    assert_true(plan_uses(db, "SELECT id, expires_at FROM us_sessions WHERE direct NOT IN (0, 3)"
                              " AND ingest_state = 'done' AND expires_at <= 5"
                              " AND (expires_at > 1 OR (expires_at = 1 AND id > 'a'))"
                              " ORDER BY expires_at, id LIMIT 16", "us_sessions_late_clear"));
    /* 11 -> 12: no index on the uploads' status (the pending files' query
     * walks the primary key: test_pending_files_walk_the_primary_key) */
    assert_int_equal(count_of(db, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index'"
                                  " AND name = 'us_uploads_pending'"), 0);
    /* 16 -> 17: the files' time index in ascending order, read backwards
     * for the newest first */
    assert_int_equal(count_of(db, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index'"
                                  " AND name = 'us_files_ws_created'"
                                  " AND sql LIKE '%(workspace, created_at, file_id)'"), 1);
    assert_true(plan_uses(db, "SELECT file_id FROM us_files WHERE workspace = 'ws'"
                              " ORDER BY created_at DESC, file_id DESC LIMIT 10",
                          "us_files_ws_created"));
    /* the files' keys are in the key table, which a filter's count reads */
    us_odata_node *root;
    const char *perr;
    long long total = -1;
    assert_true(us_odata_parse(pool, "k eq 'v' and n ge 2", 19, &root, &perr));
    us_workspace_file_query q = { .name_part = "", .filter = root, .limit = 10 };
    assert_int_equal(us_workspace_file_list(db, pool, "ws", &q, &rows, &total), US_DB_OK);
    assert_int_equal(total, 2);
    assert_int_equal(rows->nelts, 2);
    /* and the triggers follow a new one */
    us_workspace_file g = { "00000000-0000-4000-8000-000000003009", "g.txt", "{\"k\":\"v\",\"n\":3}", 1,
                            T0 + 9, -1, 0 };
    assert_int_equal(us_workspace_file_add(db, pool, "ws", &g, "KEEP", &deleted), US_DB_OK);
    assert_int_equal(us_workspace_file_list(db, pool, "ws", &q, &rows, &total), US_DB_OK);
    assert_int_equal(total, 3);
    assert_int_equal(rows->nelts, 3);
    /* the workspace holding those sessions gets its row, with a UUID v4 */
    us_workspace w;
    assert_int_equal(us_workspace_get(db, pool, "ws", &w), US_DB_OK);
    assert_int_equal(strlen(w.workspace_id), 36);
    for (int i = 0; i < 36; i++)
        assert_non_null(strchr(i == 8 || i == 13 || i == 18 || i == 23 ? "-" : "0123456789abcdef",
                               w.workspace_id[i]));
    assert_int_equal(w.workspace_id[14], '4');
    assert_non_null(strchr("89ab", w.workspace_id[19]));
    assert_int_equal(us_workspace_create(db, pool, "ws", "00000000-0000-4000-8000-000000000001", T0),
                     US_DB_CONFLICT);
    us_db_close(db);
}

/* Points the connection's WAL syncs at a path that cannot be opened. */
static void lose_wal(us_db *db)
{
    SQ(db)->wal_path = "/nonexistent/dir/store.db-wal";
    if (SQ(db)->wal_fd >= 0)
        close(SQ(db)->wal_fd);
    SQ(db)->wal_fd = -1;
}

/* In WAL mode SQLite skips the sync at commit and us_write syncs the WAL
 * after it; when that sync fails the caller hears US_DB_NOT_DURABLE, and
 * the row is there (committed, others see it). */
static void test_commit_is_synced_after_the_lock(void **state)
{
    us_db *db = open_db(pool);
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    const char *sync = NULL;
    (void)state;
    assert_non_null(SQ(db)->wal_path);
    assert_string_equal(SQ(db)->wal_path, apr_pstrcat(pool, dbpath, "-wal", NULL));
    assert_int_equal(apr_dbd_select(SQ(db)->drv, pool, SQ(db)->h, &res, "PRAGMA synchronous", 0), 0);
    while (apr_dbd_get_row(SQ(db)->drv, pool, res, &row, -1) == 0)
        sync = apr_pstrdup(pool, apr_dbd_get_entry(SQ(db)->drv, row, 0));
    assert_string_equal(sync, "1"); /* NORMAL */

    piece ok = { make(pool, 4000, "u5", 100), US_DB_OK, 0 };
    assert_int_equal(us_write(SQ(db), pool, insert_then, &ok), US_DB_OK);

    lose_wal(db);
    piece unsure = { make(pool, 4001, "u5", 100), US_DB_OK, 0 };
    assert_int_equal(us_write(SQ(db), pool, insert_then, &unsure), US_DB_NOT_DURABLE);
    assert_non_null(strstr(us_db_error(db), "committed, but syncing"));
    assert_true(session_exists(db, unsure.s.id));
    /* a piece that changed nothing needs no sync */
    piece none = { make(pool, 4002, "u5", 100), US_DB_CONFLICT, 0 };
    assert_int_equal(us_write(SQ(db), pool, insert_then, &none), US_DB_CONFLICT);
    us_db_close(db);
}

/* One row of a statement's answer, its columns joined by '|'. */
static const char *answer(us_db *db, const char *sql)
{
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    const char *out = NULL;
    assert_int_equal(apr_dbd_select(SQ(db)->drv, pool, SQ(db)->h, &res, sql, 0), 0);
    while (apr_dbd_get_row(SQ(db)->drv, pool, res, &row, -1) == 0) {
        out = "";
        for (int i = 0; i < apr_dbd_num_cols(SQ(db)->drv, res); i++)
            out = apr_pstrcat(pool, out, i ? "|" : "", apr_dbd_get_entry(SQ(db)->drv, row, i), NULL);
    }
    return out;
}

/* A store of schema 14 (the last clear's index on direct IN (1, 2, 4))
 * gets schema 15's index on direct NOT IN (0, 3): the same rows. */
static void test_migration_15_keeps_the_late_clear_queue(void **state)
{
    us_db *db = open_db(pool);
    (void)state;
    for (int i = 0; i < 5; i++) {
        us_session s = make(pool, 5100 + i, "u15", 100);
        s.direct = i; /* US_DIRECT_NO .. US_DIRECT_TARGET */
        assert_int_equal(us_session_insert(db, pool, &s, 10, T0), US_DB_OK);
    }
    static const char *const back_to_14[] = {
        "DROP INDEX us_sessions_late_clear",
        "CREATE INDEX us_sessions_late_clear ON us_sessions (expires_at) WHERE direct IN (1, 2, 4)",
        "DROP INDEX us_webhook_last_error", /* 17 -> 18 */
        "ALTER TABLE us_uploads DROP COLUMN publish_refusals", /* 19 -> 20 */
        "ALTER TABLE us_sessions DROP COLUMN ingest_not_before", /* 20 -> 21 */
        "ALTER TABLE us_webhook_targets DROP COLUMN failures", /* 21 -> 22 */
        "ALTER TABLE us_webhook_targets DROP COLUMN paused_until",
        "DROP INDEX us_webhook_url_due", /* 22 -> 23 */
        "UPDATE us_meta SET value = '14' WHERE name = 'schema_version'", NULL
    };
    db = migrated_from(db, back_to_14);
    assert_string_equal(answer(db, "SELECT value FROM us_meta WHERE name = 'schema_version'"),
                        apr_itoa(pool, US_SCHEMA_VERSION));
    assert_string_equal(answer(db, "SELECT sql LIKE '%WHERE direct NOT IN (0, 3)' FROM sqlite_master"
                                   " WHERE name = 'us_sessions_late_clear'"), "1");
    assert_string_equal(answer(db, "SELECT group_concat(direct, ',') FROM (SELECT direct FROM"
                                   " us_sessions INDEXED BY us_sessions_late_clear"
                                   " WHERE direct NOT IN (0, 3) ORDER BY direct)"), "1,2,4");
    us_db_close(db);
}

/* A store of schema 18 (sidecars not counted) gets its open sessions'
 * sidecar counts from their uploads; the bound of max_files then holds for
 * the sidecars uploaded before the migration. */
static void test_migration_19_counts_the_sidecars(void **state)
{
    us_db *db = open_db(pool);
    const char *err = NULL, *old = NULL;
    (void)state;
    us_session s = make(pool, 5200, "u18", 100);
    assert_int_equal(us_session_insert(db, pool, &s, 10, T0), US_DB_OK);
    us_upload_record u;
    memset(&u, 0, sizeof(u));
    u.session_id = s.id;
    u.sha256 = "00";
    u.size = 1;
    u.uploaded_at = T0;
    static const char *const names[] = { "a.txt", "a.txt.meta.json", "b.txt.meta.json" };
    for (int i = 0; i < 3; i++) {
        u.name = names[i];
        u.blob = apr_psprintf(pool, "blob-%d", i);
        u.file_ingestion_id = apr_psprintf(pool, "00000000-0000-4000-8000-%012d", 5210 + i);
        u.is_meta = i > 0;
        assert_int_equal(us_upload_commit(db, pool, &u, T0, &old), US_DB_OK);
    }
    static const char *const back_to_18[] = {
        "ALTER TABLE us_sessions DROP COLUMN uploaded_sidecars",
        "ALTER TABLE us_uploads DROP COLUMN publish_refusals", /* 19 -> 20 */
        "ALTER TABLE us_sessions DROP COLUMN ingest_not_before", /* 20 -> 21 */
        "ALTER TABLE us_webhook_targets DROP COLUMN failures", /* 21 -> 22 */
        "ALTER TABLE us_webhook_targets DROP COLUMN paused_until",
        "DROP INDEX us_webhook_url_due", /* 22 -> 23 */
        "UPDATE us_meta SET value = '18' WHERE name = 'schema_version'", NULL
    };
    run_sql(db, back_to_18);
    us_db_close(db);
    assert_int_equal(us_store_migrate(fixture_cfg(dbpath), pool, &err), US_DB_OK);
    db = open_db(pool);
    assert_string_equal(answer(db, "SELECT value FROM us_meta WHERE name = 'schema_version'"),
                        apr_itoa(pool, US_SCHEMA_VERSION));
    assert_string_equal(answer(db, "SELECT uploaded_files || ' ' || uploaded_sidecars"
                                   " FROM us_sessions WHERE id = '00000000-0000-4000-8000-000000005200'"),
                        "1 2");
    u.max_files = 2;
    u.name = "c.txt.meta.json";
    u.blob = "blob-3";
    u.file_ingestion_id = "00000000-0000-4000-8000-000000005213";
    assert_int_equal(us_upload_commit(db, pool, &u, T0, &old), US_DB_LIMIT);
    u.name = "b.txt.meta.json";
    assert_int_equal(us_upload_commit(db, pool, &u, T0, &old), US_DB_OK);
    assert_string_equal(old, "blob-2");
    us_db_close(db);
}

/* The first OpenEphemeral of sql's program (an ephemeral b-tree: a pager
 * opened, a page zeroed, closed again at each run), or NULL. */
static const char *ephemeral_op(us_db *db, const char *sql)
{
    apr_dbd_prepared_t *stmt = NULL;
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    const void *nulls[16] = { NULL }; /* NULL binds SQL NULL */
    const char *found = NULL;
    int ops = 0;
    assert_int_equal(apr_dbd_prepare(SQ(db)->drv, pool, SQ(db)->h,
                                     apr_pstrcat(pool, "EXPLAIN ", sql, NULL), NULL, &stmt), 0);
    assert_int_equal(apr_dbd_pbselect(SQ(db)->drv, pool, SQ(db)->h, &res, stmt, 0, nulls), 0);
    while (apr_dbd_get_row(SQ(db)->drv, pool, res, &row, -1) == 0) {
        ops++;
        if (!found && strcmp(apr_dbd_get_entry(SQ(db)->drv, row, 1), "OpenEphemeral") == 0)
            found = apr_pstrcat(pool, "OpenEphemeral at ", apr_dbd_get_entry(SQ(db)->drv, row, 0),
                                NULL);
    }
    assert_true(ops > 0);
    return found;
}

/* An insert into us_sessions evaluates every partial index's condition:
 * none is an IN list of three constants or more, which SQLite tests
 * through an ephemeral b-tree built on each run. */
static void test_session_insert_evaluates_no_in_list(void **state)
{
    us_db *db = open_db(pool);
    (void)state;
    assert_null(ephemeral_op(db, "INSERT INTO us_sessions (id, workspace, user_id, given_name,"
                                 " family_name, write_mode, parallel, status, created_at,"
                                 " expires_at, direct) VALUES ('i', 'w', 'u', 'g', 'f', 'KEEP',"
                                 " 0, 'OPEN', 1, 2, 4)"));
    us_db_close(db);
}

/* Nor do the statements of a create: no INSERT ... SELECT reading
 * us_sessions, whose rows SQLite copies into an ephemeral table first. */
static void test_create_builds_no_ephemeral_btree(void **state)
{
    static const us_stmt_id create[] = {
        US_STMT_SESSION_OPEN_COUNT, US_STMT_SESSION_INSERT, US_STMT_WORKSPACE_ENSURE,
    };
    us_db *db = open_db(pool);
    (void)state;
    for (size_t i = 0; i < sizeof(create) / sizeof(create[0]); i++) {
        const char *op = ephemeral_op(db, us_sql_statement(create[i])->sql);
        if (op)
            fail_msg("%s: %s", us_sql_statement(create[i])->label, op);
    }
    us_db_close(db);
}

/* The WAL's descriptor is opened once per connection and kept: it still
 * names the WAL file after a checkpoint that truncates it, and after
 * another connection of the database closes. */
/* How many descriptors of this process name the database's writers' lock
 * file. */
static int lock_files_open(void)
{
    const char *lock = apr_pstrcat(pool, dbpath, US_SQLITE_LOCK_SUFFIX, NULL);
    apr_dir_t *dir;
    apr_finfo_t fi;
    int n = 0;
    assert_int_equal(apr_dir_open(&dir, "/proc/self/fd", pool), APR_SUCCESS);
    while (apr_dir_read(&fi, APR_FINFO_NAME, dir) == APR_SUCCESS) {
        char target[4096];
        ssize_t len = readlink(apr_pstrcat(pool, "/proc/self/fd/", fi.name, NULL), target,
                               sizeof(target) - 1);
        if (len > 0) {
            target[len] = '\0';
            n += strcmp(target, lock) == 0;
        }
    }
    apr_dir_close(dir);
    return n;
}

/* A process's writer, with the lock file it holds open, lasts as long as a
 * connection of the process to its database: the parent's sweep connection
 * ends at each restart, and a writer kept beyond it stayed open for good. */
static void test_the_writer_ends_with_its_last_connection(void **state)
{
    us_db *a = open_db(pool), *b = open_db(pool);
    (void)state;
    piece pa = { make(pool, 4200, "u9", 100), US_DB_OK, 0 };
    piece pb = { make(pool, 4201, "u9", 100), US_DB_OK, 0 };
    piece pc = { make(pool, 4202, "u9", 100), US_DB_OK, 0 };
    piece pd = { make(pool, 4203, "u9", 100), US_DB_OK, 0 };
    assert_int_equal(us_write(SQ(a), pool, insert_then, &pa), US_DB_OK);
    assert_int_equal(us_write(SQ(b), pool, insert_then, &pb), US_DB_OK);
    assert_int_equal(lock_files_open(), 1);
    us_db_close(a);
    assert_int_equal(lock_files_open(), 1); /* b still writes through it */
    assert_int_equal(us_write(SQ(b), pool, insert_then, &pc), US_DB_OK);
    us_db_close(b);
    assert_int_equal(lock_files_open(), 0);
    us_db *c = open_db(pool);
    assert_int_equal(us_write(SQ(c), pool, insert_then, &pd), US_DB_OK);
    assert_int_equal(lock_files_open(), 1);
    assert_true(session_exists(c, pa.s.id) && session_exists(c, pd.s.id));
    us_db_close(c);
    assert_int_equal(lock_files_open(), 0);
}

/* A forked child shares no writer with its parent: at its first write it
 * closes the lock file it inherited (a lock the parent died holding would
 * otherwise stay held while the child lives) and opens its own. */
static void test_a_child_closes_the_lock_file_it_inherited(void **state)
{
    us_db *db = open_db(pool);
    (void)state;
    piece pa = { make(pool, 4300, "u9", 100), US_DB_OK, 0 };
    assert_int_equal(us_write(SQ(db), pool, insert_then, &pa), US_DB_OK);
    assert_int_equal(lock_files_open(), 1);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* no cmocka here: the answer is the exit status */
        int inherited = lock_files_open();
        us_db *c = NULL;
        const char *err = NULL;
        piece pb = { make(pool, 4301, "u9", 100), US_DB_OK, 0 };
        if (us_db_open(pool, store_cfg, &c, &err) != US_DB_OK ||
            us_write(SQ(c), pool, insert_then, &pb) != US_DB_OK)
            _exit(100);
        _exit(inherited * 10 + lock_files_open());
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 11); /* 1 inherited, then its own alone */
    assert_int_equal(lock_files_open(), 1);
    piece pc = { make(pool, 4302, "u9", 100), US_DB_OK, 0 };
    assert_int_equal(us_write(SQ(db), pool, insert_then, &pc), US_DB_OK);
    assert_true(session_exists(db, "00000000-0000-4000-8000-000000004301"));
    us_db_close(db);
}

static void test_wal_descriptor_is_kept(void **state)
{
    us_db *db = open_db(pool), *other = open_db(pool);
    struct stat kept, named;
    (void)state;
    assert_int_equal(SQ(db)->wal_fd, -1);
    piece a = { make(pool, 4100, "u8", 100), US_DB_OK, 0 };
    assert_int_equal(us_write(SQ(db), pool, insert_then, &a), US_DB_OK);
    int fd = SQ(db)->wal_fd;
    assert_true(fd >= 0);
    assert_non_null(answer(db, "PRAGMA wal_checkpoint(TRUNCATE)"));
    piece b = { make(pool, 4101, "u8", 100), US_DB_OK, 0 };
    assert_int_equal(us_write(SQ(other), pool, insert_then, &b), US_DB_OK);
    us_db_close(other);
    piece c = { make(pool, 4102, "u8", 100), US_DB_OK, 0 };
    assert_int_equal(us_write(SQ(db), pool, insert_then, &c), US_DB_OK);
    assert_int_equal(SQ(db)->wal_fd, fd);
    assert_int_equal(fstat(fd, &kept), 0);
    assert_int_equal(stat(SQ(db)->wal_path, &named), 0);
    assert_true(kept.st_ino == named.st_ino && kept.st_dev == named.st_dev);
    assert_true(named.st_size > 0);
    us_db_close(db);
}

/* A close of a session without files (done at once) writes its row, its
 * user's counters and the removal of its entry of us_sessions_expiry (OPEN
 * sessions alone: no entry for the closed one, which would sort elsewhere
 * in a store of some size): three pages, the ingest indexes none (they
 * hold queued and running sessions alone). A session closed with files
 * enters them. */
static void test_close_without_files_writes_three_pages(void **state)
{
    us_db *db = open_db(pool);
    apr_finfo_t fi;
    int nrows = 0;
    (void)state;
    /* 1,000 open sessions, the expiry index some leaves wide; the last one
     * expires last */
    const char *fill = apr_psprintf(pool,
        "INSERT INTO us_sessions (id, workspace, user_id, given_name, family_name, write_mode,"
        " parallel, status, created_at, expires_at)"
        " WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i < 999)"
        " SELECT printf('00000000-0000-4000-8000-%%012d', 4200 + i), 'ws', 'u9', 'A', 'B', 'KEEP',"
        " 0, 'OPEN', %" APR_INT64_T_FMT " + i, %" APR_INT64_T_FMT " + i * 1000000 FROM c",
        (apr_int64_t)T0, (apr_int64_t)(T0 + SEC(100)));
    assert_int_equal(apr_dbd_query(SQ(db)->drv, SQ(db)->h, &nrows, fill), 0);
    assert_int_equal(nrows, 1000);
    assert_non_null(answer(db, "PRAGMA wal_checkpoint(TRUNCATE)"));
    assert_int_equal(us_session_close(db, pool, "ws", make(pool, 5199, "u9", 0).id, T0),
                     US_DB_OK);
    assert_int_equal(apr_stat(&fi, SQ(db)->wal_path, APR_FINFO_SIZE, pool), APR_SUCCESS);
    assert_int_equal((fi.size - 32) / (4096 + 24), 3);
    assert_string_equal(answer(db, "SELECT ingest_state FROM us_sessions WHERE id = "
                                   "'00000000-0000-4000-8000-000000005199'"), "done");
    assert_string_equal(answer(db, "SELECT COUNT(*) FROM us_sessions INDEXED BY us_sessions_expiry"
                                   " WHERE status = 'OPEN' AND expires_at > 0"), "999");
    assert_string_equal(answer(db, "SELECT COUNT(*) FROM us_sessions INDEXED BY us_sessions_turn"
                                   " WHERE workspace = 'ws' AND ingest_state IN ('queued', 'running')"),
                        "0");
    assert_string_equal(answer(db, "SELECT sql LIKE '%WHERE ingest_state IN (''queued'', ''running'')'"
                                   " FROM sqlite_master WHERE name = 'us_sessions_ingest'"), "1");
    us_db_close(db);
}

/* The store configured before SQLite's first use keeps SQLite from
 * counting its allocations (each under one process-wide mutex): with a
 * connection open and a close written, SQLite reports no memory in use. */
static void test_sqlite_counts_no_allocations(void **state)
{
    us_db *db = open_db(pool);
    us_session s = make(pool, 1, "u1", 3600);
    (void)state;
    assert_int_equal(us_session_insert(db, pool, &s, 10, T0), US_DB_OK);
    assert_int_equal(us_session_close(db, pool, "ws", s.id, T0 + SEC(1)), US_DB_OK);
    assert_int_equal(sqlite3_memory_used(), 0);
    us_db_close(db);
}

/* Commits of requests leave the WAL to the checkpoints of the ingest
 * workers (up to the backstop): 1,500 commits - past SQLite's default of
 * 1,000 pages - are all still in the WAL; us_db_maintain checkpoints them. */
static void test_checkpoints_are_left_to_the_workers(void **state)
{
    us_db *db = open_db(pool);
    (void)state;
    assert_string_equal(answer(db, "PRAGMA wal_autocheckpoint"),
                        apr_itoa(pool, US_AUTOCHECKPOINT_PAGES));
    assert_string_equal(answer(db, "PRAGMA cache_size"),
                        apr_itoa(pool, -US_CACHE_KIB));
    for (int i = 0; i < 1500; i++) {
        piece pc = { make(pool, 5000 + i, "u6", 100), US_DB_OK, 0 };
        assert_int_equal(us_write(SQ(db), pool, insert_then, &pc), US_DB_OK);
    }
    /* no checkpoint ran: the WAL grew past the default's 1,000 pages */
    apr_finfo_t fi;
    assert_int_equal(apr_stat(&fi, SQ(db)->wal_path, APR_FINFO_SIZE, pool), APR_SUCCESS);
    assert_true(fi.size > 1100 * (4096 + 24));
    assert_int_equal(us_db_maintain(db, pool), US_DB_OK);
    /* everything was copied: a second checkpoint finds log == checkpointed */
    const char *r = answer(db, "PRAGMA wal_checkpoint(PASSIVE)");
    int busy = -1, log = -1, done = -2;
    assert_int_equal(sscanf(r, "%d|%d|%d", &busy, &log, &done), 3);
    assert_int_equal(busy, 0);
    assert_true(log >= 1500);
    assert_int_equal(log, done);
    us_db_close(db);
}

/* An ingest worker's connection caches US_BATCH_CACHE_KIB of pages (the
 * b-trees of a big session: bench/p2_ingest.c), the others keep the small
 * default; queries run as before on it. */
static void test_batch_connections_get_a_larger_cache(void **state)
{
    us_db *db = open_db(pool), *other = open_db(pool);
    us_session s;
    (void)state;
    assert_int_equal(us_db_for_batches(db, pool), US_DB_OK);
    assert_string_equal(answer(db, "PRAGMA cache_size"), apr_itoa(pool, -US_BATCH_CACHE_KIB));
    assert_string_equal(answer(other, "PRAGMA cache_size"), apr_itoa(pool, -US_CACHE_KIB));
    piece pc = { make(pool, 6000, "u7", 100), US_DB_OK, 0 };
    assert_int_equal(us_write(SQ(db), pool, insert_then, &pc), US_DB_OK);
    assert_int_equal(us_session_by_id(db, pool, pc.s.id, apr_time_now(), &s), US_DB_OK);
    us_db_close(other);
    us_db_close(db);
}

/* A piece that inserts its session and notes the connection it ran on and
 * how many pages that connection read anew for it. */
typedef struct {
    piece pc;
    us_sqlite_db *ran_on;
    int misses;
} noted_piece;

static us_db_rc insert_noting(us_sqlite_db *sq, apr_pool_t *p, void *arg)
{
    noted_piece *np = arg;
    sqlite3 *h = apr_dbd_native_handle(sq->drv, sq->h);
    int cur = 0, hi = 0;
    np->ran_on = sq;
    sqlite3_db_status(h, SQLITE_DBSTATUS_CACHE_MISS, &cur, &hi, 1);
    us_db_rc rc = insert_then(sq, p, &np->pc);
    sqlite3_db_status(h, SQLITE_DBSTATUS_CACHE_MISS, &cur, &hi, 0);
    np->misses = cur;
    return rc;
}

/* Every batch of the process runs on the writer's own connection, whose
 * page cache therefore lasts from one batch to the next: on the caller's,
 * a commit from another connection in between would have emptied it. It
 * has a request connection's cache, and once worn out it is replaced. A
 * batch connection (an ingest worker's, with its larger cache) runs the
 * batches it leads itself. */
static void test_batches_run_on_the_writers_own_connection(void **state)
{
    us_db *a = open_db(pool), *b = open_db(pool);
    (void)state;
    noted_piece n1 = { { make(pool, 7001, "u8", 100), US_DB_OK, 0 }, NULL, -1 };
    noted_piece n2 = { { make(pool, 7002, "u8", 100), US_DB_OK, 0 }, NULL, -1 };
    noted_piece n3 = { { make(pool, 7003, "u8", 100), US_DB_OK, 0 }, NULL, -1 };
    /* unwarmed (the parent, a child of one thread): on the caller's */
    noted_piece n0 = { { make(pool, 7000, "u8", 100), US_DB_OK, 0 }, NULL, -1 };
    assert_int_equal(us_write(SQ(a), pool, insert_noting, &n0), US_DB_OK);
    assert_ptr_equal(n0.ran_on, SQ(a));
    assert_null(us_write_leaders_conn(SQ(a)));
    /* a child opens it as it starts (us_store_warm) */
    assert_int_equal(us_db_warm(a), 1);
    us_sqlite_db *warmed = us_write_leaders_conn(SQ(a));
    assert_non_null(warmed);
    assert_int_equal(us_db_warm(b), 1); /* once */
    assert_ptr_equal(us_write_leaders_conn(SQ(b)), warmed);
    assert_int_equal(us_write(SQ(a), pool, insert_noting, &n1), US_DB_OK);
    assert_int_equal(us_write(SQ(b), pool, insert_noting, &n2), US_DB_OK);
    assert_int_equal(us_write(SQ(a), pool, insert_noting, &n3), US_DB_OK);
    us_sqlite_db *own = us_write_leaders_conn(SQ(a));
    assert_ptr_equal(own, warmed);
    assert_ptr_equal(n1.ran_on, own);
    assert_ptr_equal(n2.ran_on, own);
    assert_ptr_equal(n3.ran_on, own);
    assert_ptr_not_equal(own, SQ(a));
    assert_ptr_not_equal(own, SQ(b));
    assert_int_equal(n3.misses, 0); /* the pages n1 and n2 read are still there */
    assert_string_equal(answer(&own->base, "PRAGMA cache_size"), apr_itoa(pool, -US_CACHE_KIB));
    assert_true(session_exists(b, n3.pc.s.id)); /* committed for the others */

    own->worn_out = 1; /* as after many schema changes */
    noted_piece n4 = { { make(pool, 7004, "u8", 100), US_DB_OK, 0 }, NULL, -1 };
    assert_int_equal(us_write(SQ(b), pool, insert_noting, &n4), US_DB_OK);
    assert_non_null(n4.ran_on);
    assert_false(n4.ran_on->worn_out);
    assert_ptr_equal(n4.ran_on, us_write_leaders_conn(SQ(b)));
    assert_true(session_exists(a, n4.pc.s.id));

    /* a store error leaves it to be replaced, as the pool closes a
     * request's connection that failed; the next batch runs on a new one */
    noted_piece bad = { { make(pool, 7006, "u8", 100), US_DB_ERROR, 0 }, NULL, -1 };
    assert_int_equal(us_write(SQ(a), pool, insert_noting, &bad), US_DB_ERROR);
    assert_ptr_equal(bad.ran_on, us_write_leaders_conn(SQ(a)));
    assert_true(bad.ran_on->worn_out);
    assert_false(session_exists(a, bad.pc.s.id));
    noted_piece n6 = { { make(pool, 7007, "u8", 100), US_DB_OK, 0 }, NULL, -1 };
    assert_int_equal(us_write(SQ(a), pool, insert_noting, &n6), US_DB_OK);
    assert_false(n6.ran_on->worn_out);
    assert_ptr_equal(n6.ran_on, us_write_leaders_conn(SQ(a)));
    assert_true(session_exists(b, n6.pc.s.id));

    us_db *worker = open_db(pool);
    assert_int_equal(us_db_for_batches(worker, pool), US_DB_OK);
    noted_piece n5 = { { make(pool, 7005, "u8", 100), US_DB_OK, 0 }, NULL, -1 };
    assert_int_equal(us_write(SQ(worker), pool, insert_noting, &n5), US_DB_OK);
    assert_ptr_equal(n5.ran_on, SQ(worker));
    assert_true(session_exists(a, n5.pc.s.id));
    us_db_close(worker);
    us_db_close(b);
    us_db_close(a);
}

/* A batch that holds its lead until the test lets it go. */
static sem_t lead_entered, lead_release;

static us_db_rc insert_held(us_sqlite_db *sq, apr_pool_t *p, void *arg)
{
    sem_post(&lead_entered);
    while (sem_wait(&lead_release) != 0)
        ;
    return insert_noting(sq, p, arg);
}

typedef struct {
    us_db *db;
    noted_piece *np;
    us_db_rc rc;
} held_writer;

static void *APR_THREAD_FUNC held_writer_thread(apr_thread_t *t, void *data)
{
    held_writer *hw = data;
    apr_pool_t *p; /* the test's pool is the main thread's */
    apr_pool_create_unmanaged_ex(&p, NULL, NULL);
    hw->rc = us_write(SQ(hw->db), p, insert_held, hw->np);
    apr_pool_destroy(p);
    (void)t;
    return NULL;
}

/* A child warms its writer in a thread, while its first requests may be
 * writing already: a warm that finds a batch running still gives the
 * process's later batches the writers' own connection. */
static void test_a_warm_during_a_batch_still_takes(void **state)
{
    us_db *a = open_db(pool), *b = open_db(pool);
    (void)state;
    noted_piece held = { { make(pool, 7101, "u8", 100), US_DB_OK, 0 }, NULL, -1 };
    held_writer hw = { a, &held, US_DB_ERROR };
    apr_thread_t *th;
    apr_status_t trv;
    sem_init(&lead_entered, 0, 0);
    sem_init(&lead_release, 0, 0);
    assert_int_equal(apr_thread_create(&th, NULL, held_writer_thread, &hw, pool), APR_SUCCESS);
    while (sem_wait(&lead_entered) != 0)
        ;
    int warmed = us_db_warm(b); /* while a's batch leads */
    sem_post(&lead_release); /* before any assert: a failed one would leave a's lead held */
    apr_thread_join(&trv, th);
    assert_int_equal(warmed, 1);
    assert_int_equal(hw.rc, US_DB_OK);
    assert_ptr_equal(held.ran_on, SQ(a)); /* it led before the warm */

    noted_piece next = { { make(pool, 7102, "u8", 100), US_DB_OK, 0 }, NULL, -1 };
    assert_int_equal(us_write(SQ(b), pool, insert_noting, &next), US_DB_OK);
    assert_non_null(us_write_leaders_conn(SQ(b)));
    assert_ptr_equal(next.ran_on, us_write_leaders_conn(SQ(b)));
    assert_ptr_not_equal(next.ran_on, SQ(a));
    assert_ptr_not_equal(next.ran_on, SQ(b));
    assert_true(session_exists(a, held.pc.s.id));
    assert_true(session_exists(a, next.pc.s.id));
    sem_destroy(&lead_entered);
    sem_destroy(&lead_release);
    us_db_close(b);
    us_db_close(a);
}

/* The statements every create, close, upload and idle ingest worker runs
 * (the running sessions: every worker, every quarter lease) seek their indexes: no table or index scan. */
static void test_hot_statements_seek(void **state)
{
    static const us_stmt_id hot[] = {
        US_STMT_SESSION_OPEN_COUNT, US_STMT_SESSION_INSERT, US_STMT_SESSION_CLOSE,
        US_STMT_SESSION_GET,
        US_STMT_SESSION_HOLD_OPEN, US_STMT_UPLOAD_BLOB_GET, US_STMT_SESSIONS_EXPIRE,
        US_STMT_INGEST_CANDIDATE, US_STMT_INGEST_CLAIM, US_STMT_INGEST_PENDING,
        US_STMT_INGEST_RUNNING, US_STMT_OVERVIEW, US_STMT_WEBHOOK_STATS,
        US_STMT_WEBHOOK_CANDIDATE,
    };
    us_db *db = open_db(pool);
    int by_url = 0;
    (void)state;
    for (size_t i = 0; i < sizeof(hot) / sizeof(hot[0]); i++) {
        const us_stmt_def *def = us_sql_statement(hot[i]);
        for (const char **s = plan_steps(db, def); *s; s++) {
            const char *step = *s;
            if (getenv("US_SHOW_PLANS"))
                print_message("%s: %s\n", def->label, step);
            /* the overview sums the users' counters: a row per user; the
             * webhook stats' last error is the first entry of its index
             * walked backwards (LIMIT 1, no sort); the webhook claim's
             * search reads the listed URLs, a row each */
            if (strncmp(step, "SCAN ", 5) == 0 && strcmp(step, "SCAN CONSTANT ROW") != 0 &&
                !(hot[i] == US_STMT_OVERVIEW && strcmp(step, "SCAN us_user_open") == 0) &&
                !(hot[i] == US_STMT_WEBHOOK_STATS &&
                  strcmp(step, "SCAN us_webhook_outbox USING INDEX us_webhook_last_error") == 0) &&
                !(hot[i] == US_STMT_WEBHOOK_CANDIDATE && strcmp(step, "SCAN t") == 0))
                fail_msg("%s: %s", def->label, step);
            if (hot[i] == US_STMT_WEBHOOK_STATS && strstr(step, "TEMP B-TREE"))
                fail_msg("%s: %s", def->label, step);
            /* a URL's due rows, not every URL's (a paused one's backlog) */
            if (hot[i] == US_STMT_WEBHOOK_CANDIDATE && strstr(step, "us_webhook_url_due (url=?"))
                by_url = 1;
        }
    }
    assert_true(by_url);
    us_db_close(db);
}

/* Files inserted in their creation order, as ingestion and uploads add
 * them, pack the workspace's time index: each goes in at its right end,
 * where a page split leaves the full page full. (Descending, each went in
 * at the left end and the leaves stayed half empty: 1.9 times the pages to
 * write, cache and walk.) The list statements still seek it, without a sort. */
static void test_new_files_pack_the_time_index(void **state)
{
    us_db *db = open_db(pool);
    apr_dbd_prepared_t *ins = NULL;
    int nrows = 0;
    (void)state;
    assert_int_equal(apr_dbd_prepare(SQ(db)->drv, pool, SQ(db)->h,
                                     us_sql_statement(US_STMT_WORKSPACE_FILE_INSERT)->sql, NULL,
                                     &ins), 0);
    assert_int_equal(apr_dbd_query(SQ(db)->drv, SQ(db)->h, &nrows, "BEGIN"), 0);
    for (int i = 0; i < 3000; i++) {
        apr_int64_t size = 1024, at = T0 + i, chars = 1024;
        /* ids that begin with their time, as us_uuid4_timed makes them */
        const char *id = apr_psprintf(pool, "%08x-0000-4000-8000-000000000000", i);
        const char *name = apr_psprintf(pool, "f-%d.txt", i);
        const void *args[] = { id, "ws", name, &size, NULL, &at, "s", &chars };
        assert_int_equal(apr_dbd_pbquery(SQ(db)->drv, pool, SQ(db)->h, &nrows, ins, args), 0);
    }
    assert_int_equal(apr_dbd_query(SQ(db)->drv, SQ(db)->h, &nrows, "COMMIT"), 0);
    long long fill = count_of(db, "SELECT SUM(pgsize - unused) * 100 / SUM(pgsize) FROM dbstat"
                                  " WHERE name = 'us_files_ws_created' AND pagetype = 'leaf'");
    if (fill < 85)
        fail_msg("the time index's leaves are %lld %% full", fill);
    static const us_stmt_id lists[] = { US_STMT_WORKSPACE_FILE_LIST,
                                        US_STMT_WORKSPACE_FILE_LIST_AFTER };
    for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
        int by_time = 0;
        const us_stmt_def *def = us_sql_statement(lists[i]);
        for (const char **s = plan_steps(db, def); *s; s++) {
            const char *step = *s;
            if (strstr(step, "TEMP B-TREE") || strncmp(step, "SCAN us_files ", 14) == 0)
                fail_msg("%s: %s", def->label, step);
            by_time |= strstr(step, "us_files_ws_created") != NULL;
        }
        assert_true(by_time);
    }
    us_db_close(db);
}

/* A batch's pending files: a range of the primary key from the worker's
 * last name on, in its order (no sort), not us_uploads_files and a sort
 * of every pending file of the session. */
static void test_pending_files_walk_the_primary_key(void **state)
{
    us_db *db = open_db(pool);
    apr_dbd_prepared_t *stmt = NULL;
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    const void *nulls[4] = { NULL };
    int by_key = 0;
    (void)state;
    assert_int_equal(apr_dbd_prepare(SQ(db)->drv, pool, SQ(db)->h,
                                     apr_pstrcat(pool, "EXPLAIN QUERY PLAN ",
                                                 us_sql_statement(US_STMT_INGEST_PENDING)->sql,
                                                 NULL),
                                     NULL, &stmt), 0);
    assert_int_equal(apr_dbd_pbselect(SQ(db)->drv, pool, SQ(db)->h, &res, stmt, 0, nulls), 0);
    while (apr_dbd_get_row(SQ(db)->drv, pool, res, &row, -1) == 0) {
        const char *step = apr_dbd_get_entry(SQ(db)->drv, row, 3);
        if (strstr(step, "TEMP B-TREE"))
            fail_msg("sorts: %s", step);
        by_key |= strstr(step, "sqlite_autoindex_us_uploads_1 (session_id=? AND name>?)") != NULL;
    }
    assert_true(by_key);
    us_db_close(db);
}

/* ---- a failed row fetch is an error, never the end of the rows ------------------ */

static int fetch_calls, fetch_fail_at, fetch_fail_rc;

/* apr_dbd_get_row until call number fetch_fail_at, which fails with fetch_fail_rc */
static int failing_get_row(const apr_dbd_driver_t *d, apr_pool_t *p, apr_dbd_results_t *res,
                           apr_dbd_row_t **row, int rownum)
{
    if (++fetch_calls == fetch_fail_at)
        return fetch_fail_rc;
    return apr_dbd_get_row(d, p, res, row, rownum);
}

static us_db_rc list_with_fetch_failing_at(us_db *db, int call, int rc, int *nrows)
{
    apr_array_header_t *rows = NULL;
    long long total = 0;
    fetch_calls = 0;
    fetch_fail_at = call;
    fetch_fail_rc = rc;
    us_db_set_get_row(failing_get_row);
    us_page pg = { 10, 0, NULL, 0 };
    int has_more = 0;
    us_db_rc drc = us_session_list(db, pool, "ws", -1, &pg, T0, &rows, &total, &has_more);
    us_db_set_get_row(NULL);
    *nrows = drc == US_DB_OK ? rows->nelts : -1;
    return drc;
}

static void test_fetch_error_is_reported(void **state)
{
    (void)state;
    us_db *db = open_db(pool);
    for (int n = 1; n <= 3; n++) {
        us_session s = make(pool, n, "u1", 3600);
        assert_int_equal(us_session_insert(db, pool, &s, 10, T0), US_DB_OK);
    }
    int nrows = 0;
    assert_int_equal(list_with_fetch_failing_at(db, 0, 0, &nrows), US_DB_OK);
    assert_int_equal(nrows, 3);
    /* calls: 1 the count, 2 its end, 3.. the sessions: the second session fails */
    assert_int_equal(list_with_fetch_failing_at(db, 4, 1 /* SQLITE_ERROR */, &nrows), US_DB_ERROR);
    assert_non_null(strstr(us_db_error(db), "fetching a row"));
    assert_int_equal(list_with_fetch_failing_at(db, 1, 1, &nrows), US_DB_ERROR);
    /* a busy driver is retried by the client like any busy statement */
    assert_int_equal(list_with_fetch_failing_at(db, 3, 5 /* SQLITE_BUSY */, &nrows), US_DB_BUSY);

    us_session got;
    fetch_calls = 0;
    fetch_fail_at = 1;
    fetch_fail_rc = 1;
    us_db_set_get_row(failing_get_row);
    us_db_rc drc = us_session_get(db, pool, "ws", "00000000-0000-4000-8000-000000000001", T0, &got);
    us_db_set_get_row(NULL);
    assert_int_equal(drc, US_DB_ERROR);
    us_db_close(db);
}

/* ---- the store logs what it cannot report, with its own numbers ------------------ */

static int logged_no, logged_count;
static us_log_level logged_level;
static char logged_msg[1024];

static void capture(void *baton, us_log_level level, apr_status_t status, int msgno,
                    const char *msg)
{
    (void)baton;
    (void)status;
    logged_no = msgno;
    logged_level = level;
    logged_count++;
    snprintf(logged_msg, sizeof(logged_msg), "%s", msg);
}

static us_db *open_logged(us_logger *lg)
{
    us_store_cfg *cfg = fixture_cfg(dbpath);
    us_db *db = NULL;
    const char *err = NULL;
    us_store_set_logger(cfg, lg);
    if (us_db_open(pool, cfg, &db, &err) != US_DB_OK)
        fail_msg("open: %s", err);
    logged_no = logged_count = 0;
    return db;
}

static void test_store_logs_with_its_number(void **state)
{
    us_logger lg = { capture, NULL, US_LOG_WARN };
    us_db *db = open_logged(&lg);
    (void)state;

    /* a checkpoint that fails is logged (the workers ignore its result) */
    fetch_calls = 0;
    fetch_fail_at = 1;
    fetch_fail_rc = 1; /* SQLITE_ERROR */
    us_db_set_get_row(failing_get_row);
    us_db_rc rc = us_db_maintain(db, pool);
    us_db_set_get_row(NULL);
    assert_int_equal(rc, US_DB_ERROR);
    assert_int_equal(logged_count, 1);
    assert_int_equal(logged_no, 1101);
    assert_int_equal(logged_level, US_LOG_WARN);
    assert_non_null(strstr(logged_msg, "WAL checkpoint of"));
    assert_non_null(strstr(logged_msg, "fetching a row"));

    /* a failed sync after the commit: the caller hears NOT_DURABLE, the log says why */
    lose_wal(db);
    piece unsure = { make(pool, 6000, "u7", 100), US_DB_OK, 0 };
    assert_int_equal(us_write(SQ(db), pool, insert_then, &unsure), US_DB_NOT_DURABLE);
    assert_int_equal(logged_count, 2);
    assert_int_equal(logged_no, 1102);
    assert_int_equal(logged_level, US_LOG_ERR);
    assert_non_null(strstr(logged_msg, "syncing /nonexistent/dir/store.db-wal failed"));
    us_db_close(db);

    /* busy statements only at debug: below the logger's level nothing is emitted */
    db = open_logged(&lg);
    assert_int_equal(us_db_fail(SQ(db), 5 /* SQLITE_BUSY */, "probe"), US_DB_BUSY);
    assert_int_equal(logged_count, 0);
    lg.max_level = US_LOG_DEBUG;
    assert_int_equal(us_db_fail(SQ(db), 5, "probe"), US_DB_BUSY);
    assert_int_equal(logged_count, 1);
    assert_int_equal(logged_no, 1106);
    assert_int_equal(logged_level, US_LOG_DEBUG);
    assert_non_null(strstr(logged_msg, "store busy: probe"));
    us_db_close(db);
}

/* Another connection changes the schema, as the sqlite3 shell would. */
static void change_schema(void)
{
    sqlite3 *other = NULL;
    assert_int_equal(sqlite3_open(dbpath, &other), SQLITE_OK);
    assert_int_equal(sqlite3_exec(other, "CREATE TABLE us_probe (x INTEGER);"
                                         "CREATE INDEX us_probe_x ON us_probe (x);"
                                         "DROP TABLE us_probe", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(other);
}

/* The driver prepares with the legacy sqlite3_prepare: its statements are
 * not prepared again by SQLite after another connection's schema change,
 * and would fail on every run; the store prepares them anew. Reads, a
 * write in its transaction and a built list all run on the connection that
 * prepared them before the change. */
static void test_statements_survive_a_schema_change(void **state)
{
    (void)state;
    us_db *db = open_db(pool);
    us_session s1 = make(pool, 1, "u", 3600), s2 = make(pool, 2, "u", 3600), got;
    us_odata_node *root;
    const char *perr;
    apr_array_header_t *rows = NULL;
    long long total = -1;
    assert_true(us_odata_parse(pool, "k eq 'v'", 8, &root, &perr));
    us_workspace_file_query q = { .name_part = "", .filter = root, .limit = 10 };
    assert_int_equal(us_session_insert(db, pool, &s1, 10, T0), US_DB_OK);
    assert_int_equal(us_session_get(db, pool, "ws", s1.id, T0, &got), US_DB_OK);
    assert_int_equal(us_workspace_file_list(db, pool, "ws", &q, &rows, &total), US_DB_OK);

    change_schema();
    assert_int_equal(us_session_get(db, pool, "ws", s1.id, T0, &got), US_DB_OK);
    assert_string_equal(got.id, s1.id);
    assert_int_equal(us_session_insert(db, pool, &s2, 10, T0), US_DB_OK);
    assert_int_equal(us_session_get(db, pool, "ws", s2.id, T0, &got), US_DB_OK);
    assert_int_equal(us_workspace_file_list(db, pool, "ws", &q, &rows, &total), US_DB_OK);
    assert_int_equal(total, 0);
    assert_int_equal(rows->nelts, 0);
    assert_int_equal(counter(db, "u"), 2);
    int after_one = SQ(db)->reprepared;
    assert_true(after_one >= 4);
    assert_false(us_db_worn_out(db));
    /* once prepared anew, a statement runs as it is */
    assert_int_equal(us_session_get(db, pool, "ws", s1.id, T0, &got), US_DB_OK);
    assert_int_equal(SQ(db)->reprepared, after_one);

    /* the replaced statements stay until the connection closes: enough of
     * them wear it out, and the pool closes it instead of keeping it */
    SQ(db)->reprepared = US_SQLITE_MAX_REPREPARED - 1; /* as after many changes */
    change_schema();
    assert_int_equal(us_session_get(db, pool, "ws", s1.id, T0, &got), US_DB_OK);
    assert_true(us_db_worn_out(db));
    us_db_close(db);
}

/* A worker keeps its connection for its life: a worn-out one (statements
 * piled up, as after schema changes) is closed and opened again. */
static void test_a_worker_reopens_a_worn_out_connection(void **state)
{
    (void)state;
    apr_pool_t *p;
    apr_pool_create(&p, pool);
    us_worker_link link = { NULL, "test worker", 1, 2, 3, 0, NULL };
    us_db *db = NULL, *first;
    assert_int_equal(us_worker_connect(&link, p, store_cfg, &db), US_DB_OK);
    first = db;
    assert_int_equal(us_worker_connect(&link, p, store_cfg, &db), US_DB_OK);
    assert_ptr_equal(db, first);
    SQ(db)->worn_out = 1;
    assert_int_equal(us_worker_connect(&link, p, store_cfg, &db), US_DB_OK);
    assert_non_null(db);
    assert_false(us_db_worn_out(db));
    us_session got;
    assert_int_equal(us_session_get(db, p, "ws", "00000000-0000-4000-8000-000000000001", T0, &got),
                     US_DB_NOTFOUND);
    us_db_close(db);
    apr_pool_destroy(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_error_texts_take_no_memory_of_the_connection, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_batch_fails_only_the_failing_piece, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lone_failed_piece_leaves_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_inserts_keep_the_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_counter_follows_close_and_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migration_counts_existing_sessions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migration_15_keeps_the_late_clear_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migration_19_counts_the_sidecars, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_insert_evaluates_no_in_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_builds_no_ephemeral_btree, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migration_counts_closed_and_expired, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hot_statements_seek, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pending_files_walk_the_primary_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_files_pack_the_time_index, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_is_synced_after_the_lock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wal_descriptor_is_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_the_writer_ends_with_its_last_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_child_closes_the_lock_file_it_inherited, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commits_during_a_sync_share_the_next, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_failed_shared_sync_fails_every_batch_it_covered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_the_durable_barrier_waits_for_a_running_sync, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_close_without_files_writes_three_pages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sqlite_counts_no_allocations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoints_are_left_to_the_workers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_connections_get_a_larger_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batches_run_on_the_writers_own_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_warm_during_a_batch_still_takes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fetch_error_is_reported, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_logs_with_its_number, setup, teardown),
        cmocka_unit_test_setup_teardown(test_statements_survive_a_schema_change, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_worker_reopens_a_worn_out_connection, setup, teardown),
    };
    return sqlite_fixture_run("us_writer", tests, NULL, NULL);
}

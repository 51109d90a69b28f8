/* Unit tests: a poke (us_ingest_poke) ends an idle worker's nap - a closed
 * session is ingested at once, not at the next poll - and the stop still
 * ends a nap at once. Real SQLite store and posix storage; the workers
 * poll every 60 s, so anything sooner is the poke's doing. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include <apr_atomic.h>
#include <apr_file_io.h>
#include <apr_strings.h>
#include "us_filename.h"
#include "us_ingest.h"

#include "sqlite_fixture.h"
#include "ingest_fixture.h"

#define LONG_POLL apr_time_from_sec(60)
#define WITHIN apr_time_from_sec(5)

static const char *root;
static int seq;

/* the workers' clock: counts its reads (claims, the late clear) and, while
 * `gated`, holds the reading thread until the test opens the gate */
static volatile apr_uint32_t reads, gated, held;

static apr_time_t counting_now(void *arg)
{
    (void)arg;
    apr_atomic_inc32(&reads);
    if (apr_atomic_read32(&gated)) {
        apr_atomic_set32(&held, 1);
        while (apr_atomic_read32(&gated))
            apr_sleep(apr_time_from_msec(1));
    }
    return apr_time_now();
}

/* Waits up to WITHIN for *v to reach at least n; its last value. */
static apr_uint32_t wait_for(volatile apr_uint32_t *v, apr_uint32_t n)
{
    apr_time_t end = apr_time_now() + WITHIN;
    while (apr_atomic_read32(v) < n && apr_time_now() < end)
        apr_sleep(apr_time_from_msec(5));
    return apr_atomic_read32(v);
}

/* An OPEN session of the upload target in ws with `files` text files. */
static const char *session_with_files(us_db *db, const char *ws, int files)
{
    us_session s;
    memset(&s, 0, sizeof(s));
    s.id = uuid_n(++seq);
    s.workspace = ws;
    s.user_id = "u";
    s.given_name = "A";
    s.family_name = "B";
    s.write_mode = "KEEP";
    s.direct = US_DIRECT_TARGET;
    s.created_at = apr_time_now();
    s.expires_at = s.created_at + apr_time_from_sec(3600);
    assert_int_equal(us_session_insert(db, pool, &s, 1000, s.created_at), US_DB_OK);
    const char *dir = apr_pstrcat(pool, root, "/data/sessions/", s.id, NULL);
    apr_dir_make_recursive(dir, APR_FPROT_OS_DEFAULT, pool);
    for (int i = 0; i < files; i++) {
        us_upload_record u;
        const char *old = NULL;
        const char *blob = uuid_n(++seq);
        FILE *f = fopen(apr_pstrcat(pool, dir, "/", blob, NULL), "wb");
        assert_non_null(f);
        fputs("data", f);
        fclose(f);
        memset(&u, 0, sizeof(u));
        u.session_id = s.id;
        u.name = apr_psprintf(pool, "f%03d.txt", i);
        u.blob = blob;
        u.sha256 = "x";
        u.file_ingestion_id = uuid_n(++seq);
        u.size = 4;
        u.is_meta = us_filename_is_meta(u.name);
        u.uploaded_at = apr_time_now();
        assert_int_equal(us_upload_commit(db, pool, &u, apr_time_now(), &old), US_DB_OK);
    }
    return s.id;
}

/* A new store of the test's own: nothing another test left is claimable. */
static void fresh_store(const char *name)
{
    const char *dbfile = apr_pstrcat(pool, root, "/", name, ".db", NULL);
    fixture_db_create(dbfile);
    cfg.store = fixture_cfg(dbfile);
}

/* Starts one worker polling every 60 s and returns once its first claim
 * (the second clock read: the late clear's, then the claim's) is over and
 * it naps. */
static us_ingester *start_idle(void)
{
    us_ingester *ing = NULL;
    apr_atomic_set32(&reads, 0);
    assert_int_equal(us_ingest_start(pool, &cfg, &ing), APR_SUCCESS);
    assert_true(wait_for(&reads, 2) >= 2);
    apr_sleep(apr_time_from_msec(300)); /* the claim's query, then the nap */
    return ing;
}

/* Waits up to WITHIN for the session's files to be decided; their number. */
static long long decided_within(us_db *db, const char *ws, const char *sid)
{
    us_session s;
    apr_time_t end = apr_time_now() + WITHIN;
    do {
        assert_int_equal(us_session_get(db, pool, ws, sid, apr_time_now(), &s), US_DB_OK);
        if (s.finished_files + s.failed_files == s.uploaded_files)
            break;
        apr_sleep(apr_time_from_msec(10));
    } while (apr_time_now() < end);
    assert_int_equal(s.failed_files, 0);
    return s.finished_files;
}

/* A close and a poke: the napping worker claims the session at once and
 * ingests it, 60 s before its poll would have. */
static void test_poke_ingests_at_once(void **state)
{
    (void)state;
    fresh_store("at-once");
    us_db *db = db_open();
    const char *sid = session_with_files(db, "wake1", 20);
    us_ingester *ing = start_idle();
    assert_int_equal(us_session_close(db, pool, "wake1", sid, apr_time_now()), US_DB_OK);
    us_ingest_poke(ing);
    assert_int_equal(decided_within(db, "wake1", sid), 20);
    /* a burst of pokes with nothing to claim is absorbed: the worker
     * claims a few times (the gap doubles), then waits for its poll */
    apr_uint32_t before = apr_atomic_read32(&reads);
    for (int i = 0; i < 1000; i++)
        us_ingest_poke(ing);
    apr_sleep(apr_time_from_msec(500));
    assert_in_range(apr_atomic_read32(&reads) - before, 1, 8);
    us_ingest_stop(ing);
    us_db_close(db);
}

/* A poke while the worker is busy (here: held in its first claim) is kept:
 * its next nap ends at once and it claims again. */
static void test_poke_while_busy_is_kept(void **state)
{
    us_ingester *ing = NULL;
    (void)state;
    fresh_store("busy");
    apr_atomic_set32(&reads, 0);
    apr_atomic_set32(&held, 0);
    apr_atomic_set32(&gated, 1);
    assert_int_equal(us_ingest_start(pool, &cfg, &ing), APR_SUCCESS);
    assert_int_equal(wait_for(&held, 1), 1);
    us_ingest_poke(ing);
    apr_atomic_set32(&gated, 0);
    /* first round: the late clear's read and the claim's, then the poke's claim */
    assert_true(wait_for(&reads, 3) >= 3);
    us_ingest_stop(ing);
}

/* The stop ends a long nap at once; pokes after it (or with no worker) do
 * nothing. */
static void test_stop_ends_nap(void **state)
{
    (void)state;
    fresh_store("stop");
    us_ingest_poke(NULL);
    us_ingester *ing = start_idle();
    apr_time_t t0 = apr_time_now();
    us_ingest_stop(ing);
    assert_true(apr_time_now() - t0 < apr_time_from_msec(500));
    us_ingest_poke(ing);

    us_ingest_config none = cfg;
    none.threads = 0;
    assert_int_equal(us_ingest_start(pool, &none, &ing), APR_SUCCESS);
    us_ingest_poke(ing);
    us_ingest_stop(ing);
}

/* After pokes that found nothing: 10 ms, doubled, at most the poll. */
static void test_poke_gap(void **state)
{
    static const int want_ms[] = { 0, 10, 20, 40, 80, 160, 250, 250 };
    (void)state;
    for (int i = 0; i < 8; i++)
        assert_int_equal(us_ingest_poke_gap(i, apr_time_from_msec(250)),
                         apr_time_from_msec(want_ms[i]));
    assert_int_equal(us_ingest_poke_gap(1000000, apr_time_from_msec(250)),
                     apr_time_from_msec(250));
    assert_int_equal(us_ingest_poke_gap(1, apr_time_from_msec(5)), apr_time_from_msec(5));
}

static int setup(void **state)
{
    const char *err = NULL;
    (void)state;
    root = fixture_path("ingest-wake");
    apr_dir_make_recursive(apr_pstrcat(pool, root, "/data/files", NULL), APR_FPROT_OS_DEFAULT,
                           pool);
    assert_int_equal(us_storage_configure(pool, "posix", apr_pstrcat(pool, root, "/data", NULL),
                                          NULL, &cfg.storage, &err), APR_SUCCESS);
    cfg.threads = 1;
    cfg.batch = 8;
    cfg.poll = LONG_POLL;
    cfg.lease = apr_time_from_sec(60);
    cfg.host = "h";
    cfg.clock = counting_now;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return fixture_remove_tree(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_poke_ingests_at_once),
        cmocka_unit_test(test_poke_while_busy_is_kept),
        cmocka_unit_test(test_stop_ends_nap),
        cmocka_unit_test(test_poke_gap),
    };
    return sqlite_fixture_run("us_ingest_wake", tests, setup, teardown);
}

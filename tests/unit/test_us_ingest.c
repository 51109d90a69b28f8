/* Unit tests: ingestion rules, counters, replay after a crash, claim order. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <utime.h>

#include <apr_atomic.h>
#include <apr_file_io.h>
#include <apr_general.h>
#include <apr_strings.h>
#include "us_filename.h"
#include "us_files_sweep.h"
#include "us_ingest.h"
#include "us_storage_backend.h"
#include "us_uuid.h"

#include "sqlite_fixture.h"
#include "us_store_db.h"
#include "ingest_fixture.h"

static const char *root;
static const char *dbfile;
static int seq;

#define T0 ((apr_time_t)1795863600 * APR_USEC_PER_SEC)

/* The posix storage behind a copy of its operations table, which a test
 * changes where it watches or breaks one operation. */
typedef struct {
    us_storage_backend backend;
    us_storage st;
} wrapped_storage;

/* The fixture's ingest config on w, a copy of the fixture's storage. */
static us_ingest_config with_wrapped_storage(wrapped_storage *w)
{
    us_ingest_config c = cfg;
    w->backend = us_posix_storage;
    w->st = *cfg.storage;
    w->st.backend = &w->backend;
    c.storage = &w->st;
    return c;
}

/* A session of the upload target in ws with mode; returns its id. */
static const char *new_session_for(us_db *db, const char *ws, const char *mode, int parallel,
                                   apr_interval_time_t lifetime)
{
    us_session s;
    memset(&s, 0, sizeof(s));
    s.id = uuid_n(++seq);
    s.workspace = ws;
    s.user_id = "u";
    s.given_name = "A";
    s.family_name = "B";
    s.write_mode = mode;
    s.parallel = parallel;
    s.direct = US_DIRECT_TARGET;
    s.created_at = apr_time_now();
    s.expires_at = s.created_at + lifetime;
    assert_int_equal(us_session_insert(db, pool, &s, 1000, s.created_at), US_DB_OK);
    return s.id;
}

static const char *new_session(us_db *db, const char *ws, const char *mode, int parallel)
{
    return new_session_for(db, ws, mode, parallel, apr_time_from_sec(3600));
}

static void upload(us_db *db, const char *sid, const char *name, const char *content)
{
    us_upload_record u;
    const char *old = NULL;
    const char *dir = apr_pstrcat(pool, root, "/data/sessions/", sid, NULL);
    const char *blob = uuid_n(++seq);
    apr_dir_make_recursive(dir, APR_FPROT_OS_DEFAULT, pool);
    FILE *f = fopen(apr_pstrcat(pool, dir, "/", blob, NULL), "wb");
    fputs(content, f);
    fclose(f);
    memset(&u, 0, sizeof(u));
    u.session_id = sid;
    u.name = name;
    u.blob = blob;
    u.sha256 = "x";
    u.file_ingestion_id = uuid_n(++seq);
    u.size = (long long)strlen(content);
    u.is_meta = us_filename_is_meta(name);
    u.uploaded_at = apr_time_now();
    assert_int_equal(us_upload_commit(db, pool, &u, apr_time_now(), &old), US_DB_OK);
}

static void close_session(us_db *db, const char *ws, const char *sid)
{
    assert_int_equal(us_session_close(db, pool, ws, sid, apr_time_now()), US_DB_OK);
}

/* state and reason of `name` in the session's file list */
static void expect_file(us_db *db, const char *sid, const char *name, const char *status,
                        const char *reason)
{
    apr_array_header_t *rows;
    long long total;
    us_page pg = { 100, 0, NULL, 0 };
    int has_more = 0;
    assert_int_equal(us_session_files_list(db, pool, sid, NULL, &pg, &rows, &total, &has_more),
                     US_DB_OK);
    for (int i = 0; i < rows->nelts; i++) {
        us_session_file_row *r = &APR_ARRAY_IDX(rows, i, us_session_file_row);
        if (strcmp(r->name, name) != 0)
            continue;
        assert_string_equal(r->status, status);
        if (reason)
            assert_string_equal(r->reason, reason);
        else
            assert_null(r->reason);
        return;
    }
    fail_msg("%s not in session %s", name, sid);
}

static long long workspace_files(us_db *db, const char *ws, const char *name, apr_array_header_t **rows)
{
    long long total = 0;
    assert_int_equal(us_workspace_file_list(db, pool, ws, &(us_workspace_file_query){ .name_part = name, .filter = NULL, .after_at = 0, .after_id = NULL, .limit = 100 }, rows, &total), US_DB_OK);
    return total;
}

static void test_rules_and_counters(void **state)
{
    us_db *db = db_open();
    us_session s;
    apr_array_header_t *rows;
    (void)state;
    const char *sid = new_session(db, "w1", "KEEP", 0);
    upload(db, sid, "a.txt", "alpha");
    upload(db, sid, "a.txt.meta.json", "{\"k\": [1, 2]}");
    upload(db, sid, "b.txt", "beta");
    upload(db, sid, "b.txt.meta.json", "[1]");
    upload(db, sid, "c.txt", "");
    upload(db, sid, "d.txt", "delta");
    upload(db, sid, "d.txt.meta.json", "{broken");
    upload(db, sid, "orphan.meta.json", "{}");
    close_session(db, "w1", sid);

    long n = us_ingest_once(db, pool, &cfg, "h/1/0", NULL, NULL);
    assert_int_equal(n, 4);
    expect_file(db, sid, "a.txt", "FINISHED", NULL);
    expect_file(db, sid, "b.txt", "FAILED", "FAILED_TO_PARSE_META");
    expect_file(db, sid, "c.txt", "FAILED", "EMPTY_FILE");
    expect_file(db, sid, "d.txt", "FAILED", "FAILED_TO_PARSE_META");
    assert_int_equal(us_session_get(db, pool, "w1", sid, apr_time_now(), &s), US_DB_OK);
    assert_int_equal(s.uploaded_files, 4);
    assert_int_equal(s.finished_files, 1);
    assert_int_equal(s.failed_files, 3);

    assert_int_equal(workspace_files(db, "w1", "", &rows), 1);
    us_workspace_file *f = &APR_ARRAY_IDX(rows, 0, us_workspace_file);
    assert_string_equal(f->name, "a.txt");
    assert_string_equal(f->meta, "{\"k\":[1,2]}");
    assert_int_equal(f->size, 5);
    struct stat st;
    assert_int_equal(stat(apr_pstrcat(pool, root, "/data/files/", f->file_id, NULL), &st), 0);
    /* nothing left to claim */
    assert_int_equal(us_ingest_once(db, pool, &cfg, "h/1/0", NULL, NULL), 0);
    us_db_close(db);
}

static void test_write_modes(void **state)
{
    us_db *db = db_open();
    apr_array_header_t *rows;
    (void)state;
    const char *s1 = new_session(db, "w2", "KEEP", 0);
    upload(db, s1, "x.txt", "one");
    close_session(db, "w2", s1);
    assert_int_equal(us_ingest_once(db, pool, &cfg, "h/1/0", NULL, NULL), 1);

    const char *s2 = new_session(db, "w2", "KEEP", 0);
    upload(db, s2, "x.txt", "two");
    close_session(db, "w2", s2);
    assert_int_equal(us_ingest_once(db, pool, &cfg, "h/1/0", NULL, NULL), 1);
    assert_int_equal(workspace_files(db, "w2", "x.txt", &rows), 2);

    const char *s3 = new_session(db, "w2", "FAIL", 0);
    upload(db, s3, "x.txt", "three");
    upload(db, s3, "y.txt", "new");
    close_session(db, "w2", s3);
    assert_int_equal(us_ingest_once(db, pool, &cfg, "h/1/0", NULL, NULL), 2);
    expect_file(db, s3, "x.txt", "FAILED", "FILE_ALREADY_EXISTS");
    expect_file(db, s3, "y.txt", "FINISHED", NULL);
    assert_int_equal(workspace_files(db, "w2", "x.txt", &rows), 2);

    const char *s4 = new_session(db, "w2", "OVERWRITE", 0);
    upload(db, s4, "x.txt", "four!");
    close_session(db, "w2", s4);
    assert_int_equal(us_ingest_once(db, pool, &cfg, "h/1/0", NULL, NULL), 1);
    assert_int_equal(workspace_files(db, "w2", "x.txt", &rows), 1);
    us_workspace_file *f = &APR_ARRAY_IDX(rows, 0, us_workspace_file);
    assert_int_equal(f->size, 5);
    /* the replaced blobs are gone, the new one is there */
    apr_dir_t *d;
    apr_finfo_t fi;
    int count = 0;
    assert_int_equal(apr_dir_open(&d, apr_pstrcat(pool, root, "/data/files", NULL), pool), APR_SUCCESS);
    while (apr_dir_read(&fi, APR_FINFO_NAME, d) == APR_SUCCESS)
        count += fi.name[0] != '.';
    apr_dir_close(d);
    assert_int_equal(count, 1 /* w1 */ + 1 /* y */ + 1 /* x */);
    us_db_close(db);
}

static void test_replay_after_crash(void **state)
{
    us_db *db = db_open();
    us_session s;
    apr_array_header_t *rows;
    (void)state;
    const char *sid = new_session(db, "w3", "KEEP", 0);
    upload(db, sid, "r.txt", "replay");
    close_session(db, "w3", sid);
    /* a worker claimed it, moved the blob, and died before its commit */
    us_session claimed;
    assert_int_equal(us_ingest_claim(db, pool, "h/999999/0", apr_time_now(), 0, &claimed), US_DB_OK);
    apr_array_header_t *pending;
    assert_int_equal(us_ingest_pending(db, pool, sid, "", 10, &pending), US_DB_OK);
    us_pending *u = &APR_ARRAY_IDX(pending, 0, us_pending);
    assert_int_equal(rename(apr_pstrcat(pool, root, "/data/sessions/", sid, "/", u->blob, NULL),
                            apr_pstrcat(pool, root, "/data/files/", u->file_ingestion_id, NULL)), 0);
    /* its claim is not stale yet: nobody else may take it */
    assert_int_equal(us_ingest_once(db, pool, &cfg, "h/1/0", NULL, NULL), 0);
    /* the owner's process is gone: reclaimed, then finished exactly once */
    us_ingest_reclaim_dead(db, pool, &cfg);
    assert_int_equal(us_ingest_once(db, pool, &cfg, "h/1/0", NULL, NULL), 1);
    expect_file(db, sid, "r.txt", "FINISHED", NULL);
    assert_int_equal(us_session_get(db, pool, "w3", sid, apr_time_now(), &s), US_DB_OK);
    assert_int_equal(s.finished_files, 1);
    assert_int_equal(s.failed_files, 0);
    assert_int_equal(workspace_files(db, "w3", "", &rows), 1);

    /* applying the same decision again changes nothing */
    apr_array_header_t *results = apr_array_make(pool, 1, sizeof(us_ingest_result)), *deleted;
    us_ingest_result *r = apr_array_push(results);
    memset(r, 0, sizeof(*r));
    r->name = "r.txt";
    r->file_id = u->file_ingestion_id;
    r->size = 6;
    r->status = "FINISHED";
    assert_int_equal(us_ingest_apply(db, pool, &s, results, apr_time_now(), &deleted), US_DB_OK);
    assert_int_equal(us_session_get(db, pool, "w3", sid, apr_time_now(), &s), US_DB_OK);
    assert_int_equal(s.finished_files, 1);
    assert_int_equal(workspace_files(db, "w3", "", &rows), 1);
    us_db_close(db);
}

static void test_claim_order(void **state)
{
    us_db *db = db_open();
    us_session a, b;
    (void)state;
    const char *s1 = new_session(db, "w4", "KEEP", 0);
    const char *s2 = new_session(db, "w4", "KEEP", 0);
    const char *p3 = new_session(db, "w4", "KEEP", 1);
    const char *o4 = new_session(db, "w5", "KEEP", 0);
    /* (a session without files would be done at its close, never queued) */
    upload(db, s1, "f.txt", "1");
    upload(db, s2, "f.txt", "2");
    upload(db, p3, "f.txt", "3");
    upload(db, o4, "f.txt", "4");
    close_session(db, "w4", s1);
    close_session(db, "w4", s2);
    close_session(db, "w4", p3);
    close_session(db, "w5", o4);
    apr_time_t now = apr_time_now();
    assert_int_equal(us_ingest_claim(db, pool, "h/1/1", now, 0, &a), US_DB_OK);
    assert_string_equal(a.id, s1);
    /* s2 waits for s1 (same workspace, not parallel); p3 and w5's may run */
    assert_int_equal(us_ingest_claim(db, pool, "h/1/2", now, 0, &b), US_DB_OK);
    assert_string_equal(b.id, p3);
    assert_int_equal(us_ingest_claim(db, pool, "h/1/3", now, 0, &b), US_DB_OK);
    assert_string_equal(b.id, o4);
    assert_int_equal(us_ingest_claim(db, pool, "h/1/4", now, 0, &b), US_DB_NOTFOUND);
    assert_int_equal(us_ingest_done(db, pool, s1, "h/1/1"), US_DB_OK);
    assert_int_equal(us_ingest_claim(db, pool, "h/1/4", now, 0, &b), US_DB_OK);
    assert_string_equal(b.id, s2);
    /* a stale claim can be taken over */
    assert_int_equal(us_ingest_claim(db, pool, "h/2/0", now + 10, now + 5, &b), US_DB_OK);
    assert_int_equal(us_ingest_heartbeat(db, pool, b.id, "h/2/0", now + 11), US_DB_OK);
    us_db_close(db);
}

static void test_expiry_queues_ingestion(void **state)
{
    us_db *db = db_open();
    us_session s;
    int n = 0;
    (void)state;
    const char *sid = new_session_for(db, "w6", "KEEP", 0, apr_time_from_msec(1500));
    upload(db, sid, "e.txt", "exp");
    assert_int_equal(us_sessions_expire(db, pool, &n), US_DB_OK);
    assert_int_equal(n, 0);
    /* the sweep reads the database's clock, which has to pass expires_at */
    apr_sleep(apr_time_from_msec(1600));
    assert_int_equal(us_sessions_expire(db, pool, &n), US_DB_OK);
    assert_int_equal(n, 1);
    assert_int_equal(us_session_get(db, pool, "w6", sid, apr_time_now(), &s), US_DB_OK);
    assert_string_equal(s.status, "EXPIRED");
    assert_int_equal(us_ingest_once(db, pool, &cfg, "h/1/0", NULL, NULL), 1);
    expect_file(db, sid, "e.txt", "FINISHED", NULL);
    /* idempotent */
    assert_int_equal(us_sessions_expire(db, pool, &n), US_DB_OK);
    assert_int_equal(n, 0);
    us_db_close(db);
}

static void test_workers_threads(void **state)
{
    us_db *db = db_open();
    us_ingester *ing;
    us_session s;
    (void)state;
    const char *sid = new_session(db, "w7", "KEEP", 0);
    for (int i = 0; i < 300; i++)
        upload(db, sid, apr_psprintf(pool, "f%03d.txt", i), "data");
    close_session(db, "w7", sid);
    us_ingest_config c = cfg;
    c.threads = 3;
    c.batch = 64;
    assert_int_equal(us_ingest_start(pool, &c, &ing), APR_SUCCESS);
    for (int i = 0; i < 200; i++) {
        assert_int_equal(us_session_get(db, pool, "w7", sid, apr_time_now(), &s), US_DB_OK);
        if (s.finished_files + s.failed_files == 300)
            break;
        apr_sleep(apr_time_from_msec(50));
    }
    us_ingest_stop(ing);
    assert_int_equal(s.finished_files, 300);
    assert_int_equal(s.failed_files, 0);
    us_db_close(db);
}

static int setup(void **state)
{
    const char *err = NULL;
    (void)state;
    root = fixture_path("ingest");
    apr_dir_make_recursive(apr_pstrcat(pool, root, "/data/files", NULL), APR_FPROT_OS_DEFAULT, pool);
    dbfile = apr_pstrcat(pool, root, "/store.db", NULL);
    cfg.store = fixture_cfg(dbfile);
    assert_int_equal(us_storage_configure(pool, "posix", apr_pstrcat(pool, root, "/data", NULL), NULL,
                                          &cfg.storage, &err), APR_SUCCESS);
    cfg.threads = 1;
    cfg.batch = 2; /* several batches per session */
    cfg.poll = apr_time_from_msec(20);
    cfg.lease = apr_time_from_sec(60);
    cfg.host = "h";
    assert_int_equal(us_store_migrate(cfg.store, pool, &err), US_DB_OK);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return fixture_remove_tree(root);
}

/* A worker told to stop hands its session back having decided nothing,
 * yet it did claim one: *claimed says so (the worker loop naps only when
 * idle). A session without files never enters the queue. */
static void test_claimed_is_reported(void **state)
{
    us_db *db = db_open();
    int claimed = -1;
    volatile apr_uint32_t stop = 0;
    (void)state;
    /* the store is shared with the earlier tests: finish what they left
     * queued (e.g. sessions the thread test's workers had not reached) */
    do
        us_ingest_once(db, pool, &cfg, "h/1/0", &stop, &claimed);
    while (claimed);
    apr_atomic_set32(&stop, 1);
    const char *empty = new_session(db, "w-claimed", "KEEP", 0);
    close_session(db, "w-claimed", empty);
    const char *sid = new_session(db, "w-claimed", "KEEP", 0);
    upload(db, sid, "only.txt", "x");
    upload(db, sid, "only.txt.meta.json", "{}");
    close_session(db, "w-claimed", sid);
    assert_int_equal(us_ingest_once(db, pool, &cfg, "h/1/0", &stop, &claimed), 0);
    assert_int_equal(claimed, 1);
    apr_atomic_set32(&stop, 0);
    assert_int_equal(us_ingest_once(db, pool, &cfg, "h/1/0", &stop, &claimed), 1);
    assert_int_equal(claimed, 1);
    expect_file(db, sid, "only.txt", "FINISHED", NULL);
    /* the empty session was never queued: nothing more to claim */
    assert_int_equal(us_ingest_once(db, pool, &cfg, "h/1/0", &stop, &claimed), 0);
    assert_int_equal(claimed, 0);
    us_db_close(db);
}

/* Tries after a storage outage: 1 s, doubled, capped at 30 s. */
static void test_retry_backoff(void **state)
{
    static const int want[] = { 1, 2, 4, 8, 16, 30, 30 };
    (void)state;
    for (int i = 0; i < 7; i++)
        assert_int_equal(us_ingest_retry_delay(i + 1), apr_time_from_sec(want[i]));
    assert_int_equal(us_ingest_retry_delay(1000000), US_INGEST_RETRY_MAX);
    assert_int_equal(us_ingest_retry_delay(0), apr_time_from_sec(1));
}

/* A direct-upload session's live file list: raw files by name, PENDING,
 * paged by offset and by cursor both ways; sidecars left out. */
static void test_listing_page(void **state)
{
    apr_array_header_t *objs = apr_array_make(pool, 8, sizeof(us_listed_object)), *rows;
    long long total = -1;
    int more = -1;
    (void)state;
    for (int i = 0; i < 6; i++) {
        us_listed_object *o = apr_array_push(objs);
        char *id = apr_palloc(pool, 37);
        memset(o, 0, sizeof(*o));
        o->name = apr_psprintf(pool, i == 5 ? "f1.meta.json" : "f%d", i);
        o->is_meta = i == 5;
        us_uuid_of_name(pool, "sess", o->name, id);
        o->file_ingestion_id = id;
    }
    us_page pg = { 2, 0, NULL, 0 };
    us_ingest_listing_page(pool, objs, NULL, &pg, &rows, &total, &more);
    assert_int_equal(total, 5);
    assert_int_equal(more, 1);
    assert_int_equal(rows->nelts, 2);
    assert_string_equal(APR_ARRAY_IDX(rows, 0, us_session_file_row).name, "f0");
    assert_string_equal(APR_ARRAY_IDX(rows, 1, us_session_file_row).status, "PENDING");
    assert_null(APR_ARRAY_IDX(rows, 1, us_session_file_row).reason);
    pg.offset = 4;
    us_ingest_listing_page(pool, objs, NULL, &pg, &rows, &total, &more);
    assert_int_equal(rows->nelts, 1);
    assert_int_equal(more, 0);
    assert_string_equal(APR_ARRAY_IDX(rows, 0, us_session_file_row).name, "f4");
    /* after f1: f2 f3, more; before f3: f1 f2, more (f0) */
    pg.cursor = APR_ARRAY_IDX(objs, 1, us_listed_object).file_ingestion_id;
    us_ingest_listing_page(pool, objs, NULL, &pg, &rows, &total, &more);
    assert_int_equal(rows->nelts, 2);
    assert_string_equal(APR_ARRAY_IDX(rows, 0, us_session_file_row).name, "f2");
    assert_int_equal(more, 1);
    pg.cursor = APR_ARRAY_IDX(objs, 3, us_listed_object).file_ingestion_id;
    pg.before = 1;
    us_ingest_listing_page(pool, objs, NULL, &pg, &rows, &total, &more);
    assert_int_equal(rows->nelts, 2);
    assert_string_equal(APR_ARRAY_IDX(rows, 0, us_session_file_row).name, "f1");
    assert_string_equal(APR_ARRAY_IDX(rows, 1, us_session_file_row).name, "f2");
    assert_int_equal(more, 1);
    /* a sidecar's id or an unknown one: an empty page */
    pg.cursor = APR_ARRAY_IDX(objs, 5, us_listed_object).file_ingestion_id;
    us_ingest_listing_page(pool, objs, NULL, &pg, &rows, &total, &more);
    assert_int_equal(rows->nelts, 0);
    assert_int_equal(total, 5);
    /* nothing is FINISHED before the listing is recorded */
    pg.cursor = NULL;
    us_ingest_listing_page(pool, objs, "FINISHED", &pg, &rows, &total, &more);
    assert_int_equal(total, 0);
    assert_int_equal(rows->nelts, 0);
    /* the ids: the same for the same (session, name), version-4 shaped */
    char a[37], b[37], c[37];
    us_uuid_of_name(pool, "sess", "f0", a);
    us_uuid_of_name(pool, "sess", "f0", b);
    us_uuid_of_name(pool, "sess2", "f0", c);
    assert_string_equal(a, b);
    assert_string_not_equal(a, c);
    assert_int_equal(strlen(a), 36);
    assert_int_equal(a[14], '4');
    assert_non_null(strchr("89ab", a[19]));
}

/* A file written straight into a session's directory, as a direct upload
 * lands under the session's prefix. */
static const char *put_direct(const char *sid, const char *name, const char *content)
{
    const char *dir = apr_pstrcat(pool, root, "/data/sessions/", sid, NULL);
    const char *path = apr_pstrcat(pool, dir, "/", name, NULL);
    apr_dir_make_recursive(dir, APR_FPROT_OS_DEFAULT, pool);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
    return path;
}

static int present(const char *path)
{
    apr_finfo_t fi;
    return apr_stat(&fi, path, APR_FINFO_TYPE, pool) == APR_SUCCESS;
}

/* An open direct-upload session of workspace ws that lives `lifetime`. */
static us_session insert_direct_session(us_db *db, const char *ws, apr_interval_time_t lifetime)
{
    us_session s;
    memset(&s, 0, sizeof(s));
    s.id = uuid_n(++seq);
    s.workspace = ws;
    s.user_id = "u";
    s.given_name = "A";
    s.family_name = "B";
    s.write_mode = "KEEP";
    s.parallel = 1;
    s.direct = US_DIRECT_UNLISTED;
    s.created_at = apr_time_now();
    s.expires_at = s.created_at + lifetime;
    assert_int_equal(us_session_insert(db, pool, &s, 1000, s.created_at), US_DB_OK);
    return s;
}

/* The same, alive for an hour, once the sessions earlier tests left queued
 * are ingested. */
static us_session new_direct_session(us_db *db, const char *ws)
{
    int claimed = 0;
    do
        us_ingest_once(db, pool, &cfg, "h/1/0", NULL, &claimed);
    while (claimed);
    return insert_direct_session(db, ws, apr_time_from_sec(3600));
}

/* n direct sessions of workspace ws (ids into ids[]), expired a second
 * from now and ingested, each with one file; a late object is then put
 * into each prefix (paths into late[]). */
static void direct_sessions_ingested(us_db *db, const char *ws, int n, const char **ids,
                                     const char **late)
{
    int expired = 0, claimed = 1;
    for (int i = 0; i < n; i++) {
        ids[i] = insert_direct_session(db, ws, apr_time_from_msec(1000)).id;
        put_direct(ids[i], "a.txt", "ingested");
    }
    apr_sleep(apr_time_from_msec(1100));
    assert_int_equal(us_sessions_expire(db, pool, &expired), US_DB_OK);
    assert_true(expired >= n);
    for (int i = 0; claimed && i < 10 * n + 20; i++)
        us_ingest_once(db, pool, &cfg, "h/1/0", NULL, &claimed);
    for (int i = 0; i < n; i++) {
        expect_file(db, ids[i], "a.txt", "FINISHED", NULL);
        late[i] = put_direct(ids[i], "late.txt", "late");
    }
}

/* The publish of a test that stops its worker: the first call sets the
 * stop flag the worker reads. */
static volatile apr_uint32_t stop_flag;
static int stop_publishes;

static apr_status_t stopping_publish(us_storage *st, apr_pool_t *p, const char *session_id,
                                     const char *blob, const char *file_id, const char *etag,
                                     long long size, int *moved)
{
    stop_publishes++;
    apr_atomic_set32(&stop_flag, 1);
    return us_posix_storage.publish(st, p, session_id, blob, file_id, etag, size, moved);
}

/* A worker asked to stop in the middle of a batch (a child exiting) stops
 * before the next file instead of deciding the whole batch: nothing of it
 * is recorded, the session is queued again, and a worker then records
 * every file FINISHED once (the one published is found in place). */
static void test_stop_mid_batch(void **state)
{
    us_db *db = db_open();
    us_session s;
    (void)state;
    wrapped_storage w;
    us_ingest_config c = with_wrapped_storage(&w);
    w.backend.publish = stopping_publish;
    int claimed = 0;
    do /* sessions earlier tests left queued */
        us_ingest_once(db, pool, &cfg, "h/1/0", NULL, &claimed);
    while (claimed);
    const char *sid = new_session(db, "w-stop", "KEEP", 0);
    for (int i = 0; i < 5; i++)
        upload(db, sid, apr_psprintf(pool, "s%d.txt", i), "stop");
    close_session(db, "w-stop", sid);
    apr_atomic_set32(&stop_flag, 0);
    stop_publishes = 0;
    /* no store failure (-1, which worker_store_errors counts) */
    assert_int_equal(us_ingest_once(db, pool, &c, "h/1/0", &stop_flag, &claimed),
                     US_INGEST_CUT_SHORT);
    assert_int_equal(claimed, 1);
    assert_int_equal(stop_publishes, 1);
    for (int i = 0; i < 5; i++)
        expect_file(db, sid, apr_psprintf(pool, "s%d.txt", i), "PENDING", NULL);
    apr_atomic_set32(&stop_flag, 0);
    assert_int_equal(us_ingest_once(db, pool, &cfg, "h/2/0", NULL, &claimed), 5);
    for (int i = 0; i < 5; i++)
        expect_file(db, sid, apr_psprintf(pool, "s%d.txt", i), "FINISHED", NULL);
    assert_int_equal(us_session_get(db, pool, "w-stop", sid, apr_time_now(), &s), US_DB_OK);
    assert_int_equal(s.finished_files, 5);
    assert_int_equal(s.failed_files, 0);
    us_db_close(db);
}

/* The reads of a test that stops its worker while a text file's
 * characters are counted: the first sets the stop flag. */
static volatile apr_uint32_t stop_reads;

static apr_status_t stopping_read_at(void *r, apr_off_t off, char *buf, apr_size_t *len)
{
    apr_atomic_inc32(&stop_reads);
    apr_atomic_set32(&stop_flag, 1);
    return us_posix_storage.read_at(r, off, buf, len);
}

/* A worker asked to stop while it counts the characters of large text
 * files (1 MiB each: 16 reads of 64 KiB) gives the read up at its next
 * piece instead of reading on to the end (a child's exit waited for it):
 * one read per file at most, one file at a time (width 1) or two at once;
 * nothing is recorded, the files stay PENDING (not FAILED), and a worker
 * then records them FINISHED with their characters. */
static void stop_mid_count(const char *ws, int width)
{
    us_db *db = db_open();
    us_session s;
    apr_array_header_t *rows;
    wrapped_storage w;
    us_ingest_config c = with_wrapped_storage(&w);
    w.backend.read_at = stopping_read_at;
    c.publish_width = width;
    const apr_size_t big = 1u << 20;
    char *text = apr_palloc(pool, big + 1);
    memset(text, 'c', big);
    text[big] = '\0';
    int claimed = 0;
    do /* sessions earlier tests left queued */
        us_ingest_once(db, pool, &cfg, "h/1/0", NULL, &claimed);
    while (claimed);
    const char *sid = new_session(db, ws, "KEEP", 0);
    upload(db, sid, "a.txt", text);
    upload(db, sid, "b.txt", text);
    close_session(db, ws, sid);
    apr_atomic_set32(&stop_flag, 0);
    apr_atomic_set32(&stop_reads, 0);
    /* no store failure (-1, which worker_store_errors counts) */
    assert_int_equal(us_ingest_once(db, pool, &c, "h/1/0", &stop_flag, &claimed),
                     US_INGEST_CUT_SHORT);
    assert_int_equal(claimed, 1);
    assert_true(apr_atomic_read32(&stop_reads) >= 1);
    assert_true(apr_atomic_read32(&stop_reads) <= (apr_uint32_t)width);
    expect_file(db, sid, "a.txt", "PENDING", NULL);
    expect_file(db, sid, "b.txt", "PENDING", NULL);
    assert_int_equal(us_ingest_once(db, pool, &cfg, "h/2/0", NULL, &claimed), 2);
    for (int i = 0; i < 2; i++) {
        const char *name = i ? "b.txt" : "a.txt";
        expect_file(db, sid, name, "FINISHED", NULL);
        assert_int_equal(workspace_files(db, ws, name, &rows), 1);
        assert_int_equal(APR_ARRAY_IDX(rows, 0, us_workspace_file).characters, (long long)big);
    }
    assert_int_equal(us_session_get(db, pool, ws, sid, apr_time_now(), &s), US_DB_OK);
    assert_int_equal(s.finished_files, 2);
    assert_int_equal(s.failed_files, 0);
    us_db_close(db);
}

static void test_stop_mid_count(void **state)
{
    (void)state;
    stop_mid_count("w-stop-count", 1);
}

static void test_stop_mid_count_wide(void **state)
{
    (void)state;
    stop_mid_count("w-stop-count-wide", 2);
}

/* A direct session's file names come from its keys: percent-decoded as
 * the upload target decodes a filename (a sidecar matches its file by the
 * decoded name), the key as it is where the decoded name is not a valid
 * one, left out where neither is or an earlier key gave the same name. */
static void test_direct_names_from_keys(void **state)
{
    us_db *db = db_open();
    us_session s;
    apr_array_header_t *objs, *rows;
    (void)state;
    int claimed = 0;
    s = new_direct_session(db, "w-direct-names");
    put_direct(s.id, "caf%C3%A9.txt", "coffee");
    put_direct(s.id, "caf%C3%A9.txt.meta.json", "{\"k\": 1}");
    put_direct(s.id, "a b.txt", "spaced");
    put_direct(s.id, "a%20b.txt", "the same name again");
    put_direct(s.id, "bad%2Fname.txt", "a slash once decoded");
    put_direct(s.id, "%2E%2E", "dot dot once decoded");
    put_direct(s.id, "tab\there.txt", "a control character");
    put_direct(s.id, "x%ZZ.txt", "no escape");

    us_listing_left_out left;
    assert_int_equal(us_ingest_listing(cfg.storage, pool, s.id, 0, 0, 1, &objs, &left),
                     APR_SUCCESS);
    assert_int_equal(left.over, 0);
    assert_int_equal(left.unnamed, 2);
    assert_int_equal(left.late, 0);
    static const char *const want[] = { "%2E%2E", "a b.txt", "bad%2Fname.txt", "café.txt",
                                        "café.txt.meta.json", "x%ZZ.txt" };
    static const char *const keys[] = { "%2E%2E", "a b.txt", "bad%2Fname.txt", "caf%C3%A9.txt",
                                        "caf%C3%A9.txt.meta.json", "x%ZZ.txt" };
    assert_int_equal(objs->nelts, 6);
    for (int i = 0; i < 6; i++) {
        const us_listed_object *o = &APR_ARRAY_IDX(objs, i, us_listed_object);
        char id[37];
        assert_string_equal(o->name, want[i]);
        assert_string_equal(o->blob, keys[i]);
        us_uuid_of_name(pool, s.id, keys[i], id);
        assert_string_equal(o->file_ingestion_id, id);
    }

    close_session(db, "w-direct-names", s.id);
    for (claimed = 1; claimed;)
        us_ingest_once(db, pool, &cfg, "h/1/0", NULL, &claimed);
    for (int i = 0; i < 6; i++)
        if (i != 4)
            expect_file(db, s.id, want[i], "FINISHED", NULL);
    assert_int_equal(us_session_get(db, pool, "w-direct-names", s.id, apr_time_now(), &s),
                     US_DB_OK);
    assert_int_equal(s.uploaded_files, 5);
    assert_int_equal(s.finished_files, 5);
    assert_int_equal(workspace_files(db, "w-direct-names", "", &rows), 5);
    assert_int_equal(workspace_files(db, "w-direct-names", "café.txt", &rows), 1);
    assert_string_equal(APR_ARRAY_IDX(rows, 0, us_workspace_file).meta, "{\"k\":1}");
    assert_int_equal(workspace_files(db, "w-direct-names", "a b.txt", &rows), 1);
    assert_int_equal(APR_ARRAY_IDX(rows, 0, us_workspace_file).size, 6);
    us_db_close(db);
}

/* With UploadSessionMaxFilesPerSession N a direct session keeps its first
 * N raw files by key and the sidecars of those alone (at most N): a
 * sidecar of a file left out, of no file, or of a sidecar is left out too,
 * counted apart; without the limit all are kept. */
static void test_direct_sidecars_past_max_files(void **state)
{
    us_db *db = db_open();
    us_session s;
    apr_array_header_t *objs;
    us_listing_left_out left;
    (void)state;
    s = new_direct_session(db, "w-direct-maxmeta");
    static const char *const keys[] = { "a.txt", "a.txt.meta.json", "a.txt.meta.json.meta.json",
                                        "b.txt", "b.txt.meta.json", "c.txt", "c.txt.meta.json",
                                        "orphan.txt.meta.json" };
    for (int i = 0; i < 8; i++)
        put_direct(s.id, keys[i], "{}");
    assert_int_equal(us_ingest_listing(cfg.storage, pool, s.id, 2, 0, 1, &objs, &left),
                     APR_SUCCESS);
    static const char *const kept[] = { "a.txt", "a.txt.meta.json", "b.txt", "b.txt.meta.json" };
    assert_int_equal(objs->nelts, 4);
    for (int i = 0; i < 4; i++)
        assert_string_equal(APR_ARRAY_IDX(objs, i, us_listed_object).name, kept[i]);
    assert_int_equal(left.over, 1);
    assert_int_equal(left.sidecars, 3);
    assert_int_equal(left.unnamed, 0);
    assert_int_equal(left.late, 0);
    assert_int_equal(us_ingest_listing(cfg.storage, pool, s.id, 0, 0, 1, &objs, &left),
                     APR_SUCCESS);
    assert_int_equal(objs->nelts, 8);
    assert_int_equal(left.over, 0);
    assert_int_equal(left.sidecars, 0);
    us_db_close(db);
}

/* An object written after its session's close (beyond the clock skew
 * allowed) is not the session's, whenever the listing runs: left out of
 * the listing, of the counters and of the workspace, and removed with the
 * leftovers; one written before the close is ingested. */
static void test_direct_objects_after_the_close_left_out(void **state)
{
    us_db *db = db_open();
    us_session s;
    apr_array_header_t *objs, *rows;
    us_listing_left_out left;
    (void)state;
    int claimed = 0;
    s = new_direct_session(db, "w-direct-late");
    put_direct(s.id, "before.txt", "in time");
    close_session(db, "w-direct-late", s.id);
    assert_int_equal(us_session_get(db, pool, "w-direct-late", s.id, apr_time_now(), &s), US_DB_OK);
    assert_true(s.closed_at > 0);
    /* written a minute after the close (a skewed clock allows seconds) */
    const char *late = put_direct(s.id, "after.txt", "too late");
    struct utimbuf later = { (time_t)apr_time_sec(s.closed_at) + 60,
                             (time_t)apr_time_sec(s.closed_at) + 60 };
    assert_int_equal(utime(late, &later), 0);
    assert_int_equal(us_ingest_listing(cfg.storage, pool, s.id, 0,
                                       s.closed_at + US_DIRECT_CLOCK_SKEW, 1, &objs, &left),
                     APR_SUCCESS);
    assert_int_equal(objs->nelts, 1);
    assert_string_equal(APR_ARRAY_IDX(objs, 0, us_listed_object).name, "before.txt");
    assert_int_equal(left.late, 1);
    assert_int_equal(left.over, 0);
    assert_int_equal(left.unnamed, 0);
    /* no cutoff (an open session's status): both */
    assert_int_equal(us_ingest_listing(cfg.storage, pool, s.id, 0, 0, 1, &objs, &left),
                     APR_SUCCESS);
    assert_int_equal(objs->nelts, 2);
    assert_int_equal(left.late, 0);

    for (claimed = 1; claimed;)
        us_ingest_once(db, pool, &cfg, "h/1/0", NULL, &claimed);
    expect_file(db, s.id, "before.txt", "FINISHED", NULL);
    assert_int_equal(us_session_get(db, pool, "w-direct-late", s.id, apr_time_now(), &s), US_DB_OK);
    assert_int_equal(s.uploaded_files, 1);
    assert_int_equal(s.finished_files, 1);
    assert_int_equal(workspace_files(db, "w-direct-late", "", &rows), 1);
    assert_string_equal(APR_ARRAY_IDX(rows, 0, us_workspace_file).name, "before.txt");
    assert_false(present(late));
    us_db_close(db);
}

/* Records the last clear of every session earlier tests left due (a day
 * ahead), so a test counts its own. */
static void late_clear_none_due(us_db *db)
{
    apr_array_header_t *due;
    do {
        assert_int_equal(us_late_clear_due(db, pool, apr_time_now() + apr_time_from_sec(86400), 0,
                                           NULL, 100, &due), US_DB_OK);
        for (int i = 0; i < due->nelts; i++)
            assert_int_equal(us_late_clear_done(db, pool, APR_ARRAY_IDX(due, i, us_late_due).id),
                             US_DB_OK);
    } while (due->nelts);
}

/* A direct session's prefix gets its last clear once expires_at lies the
 * lease in the past and its ingestion has ended: an object that landed
 * after the ingestion's clear is removed, once; the ingested file stays. */
static void test_late_clear(void **state)
{
    us_db *db = db_open();
    us_session s;
    apr_array_header_t *rows;
    us_late_cursor at = { "", 0 };
    const char *ids[1], *lates[1];
    (void)state;
    late_clear_none_due(db);
    direct_sessions_ingested(db, "w-late", 1, ids, lates);
    memset(&s, 0, sizeof(s));
    s.id = ids[0];
    /* after the ingestion's clear, while the policy would still be valid */
    const char *late = lates[0];
    assert_int_equal(us_ingest_clear_late(db, pool, &cfg, &at), 0); /* within the lease */
    assert_true(present(late));
    us_ingest_config c = cfg;
    c.lease = apr_time_from_msec(50);
    assert_int_equal(us_ingest_clear_late(db, pool, &c, &at), 1);
    assert_false(present(late));
    assert_int_equal(us_ingest_clear_late(db, pool, &c, &at), 0); /* once */
    assert_int_equal(us_session_get(db, pool, "w-late", s.id, apr_time_now(), &s), US_DB_OK);
    assert_int_equal(s.direct, US_DIRECT_CLEARED);
    assert_int_equal(s.finished_files, 1);
    assert_int_equal(workspace_files(db, "w-late", "a.txt", &rows), 1);
    us_db_close(db);
}

/* Sessions of the module's upload target get the last clear too: what a
 * writer killed after the ingestion's clear left (its committed file, its
 * temp file), and the uploads of a session done at its close with no file
 * recorded (a sidecar alone; a writer killed before recording) are removed
 * once expires_at lies the grace in the past, once; ingested files stay. */
static void test_late_clear_upload_target(void **state)
{
    us_db *db = db_open();
    us_session s;
    apr_array_header_t *rows;
    us_late_cursor at = { "", 0 };
    int n = 0;
    (void)state;
    late_clear_none_due(db);
    const char *ingested = new_session_for(db, "w-late-target", "KEEP", 1, apr_time_from_msec(1000));
    const char *unrecorded = new_session_for(db, "w-late-target", "KEEP", 1, apr_time_from_msec(1000));
    upload(db, ingested, "a.txt", "ingested");
    upload(db, unrecorded, "only.txt.meta.json", "{}");
    close_session(db, "w-late-target", ingested);
    close_session(db, "w-late-target", unrecorded); /* no raw file: done at once */
    for (int i = 0, claimed = 1; claimed && i < 20; i++)
        us_ingest_once(db, pool, &cfg, "h/1/0", NULL, &claimed);
    expect_file(db, ingested, "a.txt", "FINISHED", NULL);
    /* after the ingestion's clear: a writer killed between its commit and
     * its removal, and one killed in the middle of its file */
    const char *killed = put_direct(ingested, uuid_n(++seq), "committed, never recorded");
    const char *temp = put_direct(ingested, apr_psprintf(pool, ".%s.2147483646.tmp", uuid_n(++seq)),
                                  "half");
    const char *lost = put_direct(unrecorded, uuid_n(++seq), "committed, never recorded");
    apr_sleep(apr_time_from_msec(1100));
    assert_int_equal(us_sessions_expire(db, pool, &n), US_DB_OK);
    assert_int_equal(us_ingest_clear_late(db, pool, &cfg, &at), 0); /* within the lease */
    assert_true(present(killed) && present(temp) && present(lost));
    us_ingest_config c = cfg;
    c.lease = apr_time_from_msec(50);
    assert_int_equal(us_ingest_clear_late(db, pool, &c, &at), 2);
    assert_false(present(killed));
    assert_false(present(temp));
    assert_false(present(lost));
    assert_false(present(apr_pstrcat(pool, root, "/data/sessions/", unrecorded, NULL)));
    assert_int_equal(us_ingest_clear_late(db, pool, &c, &at), 0); /* once */
    assert_int_equal(us_session_get(db, pool, "w-late-target", ingested, apr_time_now(), &s),
                     US_DB_OK);
    assert_int_equal(s.direct, US_DIRECT_NO);
    assert_int_equal(s.finished_files, 1);
    assert_int_equal(workspace_files(db, "w-late-target", "a.txt", &rows), 1);
    us_db_close(db);
}

/* The last clear of an upload-target session removes a temp file whatever
 * pid its name holds: no writer of the session can be alive, the pid (here
 * this live process's) may be an unrelated process's by now. The
 * ingestion's clear of a session still keeps a live pid's temp file. */
static void test_late_clear_live_pid(void **state)
{
    us_db *db = db_open();
    us_late_cursor at = { "", 0 };
    us_session s;
    int n = 0;
    (void)state;
    late_clear_none_due(db);
    const char *sid = new_session_for(db, "w-late-pid", "KEEP", 1, apr_time_from_msec(1000));
    close_session(db, "w-late-pid", sid); /* no file: done at once */
    const char *temp = put_direct(sid, apr_psprintf(pool, ".x.%ld.tmp", (long)getpid()), "half");
    assert_int_equal(us_storage_session_clear(cfg.storage, pool, sid), 1);
    assert_true(present(temp));
    apr_sleep(apr_time_from_msec(1100));
    assert_int_equal(us_sessions_expire(db, pool, &n), US_DB_OK);
    us_ingest_config c = cfg;
    c.lease = apr_time_from_msec(50);
    assert_int_equal(us_ingest_clear_late(db, pool, &c, &at), 1);
    assert_false(present(temp));
    assert_false(present(apr_pstrcat(pool, root, "/data/sessions/", sid, NULL)));
    assert_int_equal(us_ingest_clear_late(db, pool, &c, &at), 0); /* once */
    assert_int_equal(us_session_get(db, pool, "w-late-pid", sid, apr_time_now(), &s), US_DB_OK);
    assert_int_equal(s.direct, US_DIRECT_NO);
    us_db_close(db);
}

/* The posix backend counting the sessions it is asked to clear late. */
static int late_clears;

static int counting_clear_late(us_storage *st, apr_pool_t *p, const char *session_id)
{
    late_clears++;
    return us_posix_storage.session_clear_late(st, p, session_id);
}

/* Many ended sessions with nothing left of them in the storage cost no
 * clear each: the storage says which sessions hold anything (once per
 * call), the others are recorded a page at a time; the one holding a
 * file is cleared alone. All in one call, each once. */
static void test_late_clear_many(void **state)
{
    enum { N = 2 * US_LATE_CLEAR_PAGE + 5 };
    us_db *db = db_open();
    us_late_cursor at = { "", 0 };
    us_session s;
    const char *ids[N];
    int n = 0;
    (void)state;
    late_clear_none_due(db);
    for (int i = 0; i < N; i++) {
        ids[i] = new_session_for(db, "w-late-many", "KEEP", 1, apr_time_from_msec(1000));
        close_session(db, "w-late-many", ids[i]);
    }
    const char *left = put_direct(ids[N / 2], uuid_n(++seq), "committed, never recorded");
    apr_sleep(apr_time_from_msec(1100));
    assert_int_equal(us_sessions_expire(db, pool, &n), US_DB_OK);
    wrapped_storage w;
    us_ingest_config c = with_wrapped_storage(&w);
    w.backend.session_clear_late = counting_clear_late;
    c.lease = apr_time_from_msec(50);
    late_clears = 0;
    assert_int_equal(us_ingest_clear_late(db, pool, &c, &at), N);
    assert_int_equal(late_clears, 1);
    assert_false(present(left));
    assert_int_equal(us_ingest_clear_late(db, pool, &c, &at), 0); /* once */
    for (int i = 0; i < N; i += 7) {
        assert_int_equal(us_session_get(db, pool, "w-late-many", ids[i], apr_time_now(), &s),
                         US_DB_OK);
        assert_int_equal(s.direct, US_DIRECT_NO);
    }
    us_db_close(db);
}

static apr_time_t offset_now(void *arg)
{
    return apr_time_now() + *(const apr_interval_time_t *)arg;
}

/* The last clear waits for the largest file at the slowest rate: a POST
 * begun just before expires_at lands well after the lease. */
static void test_late_clear_grace(void **state)
{
    us_db *db = db_open();
    const char *id, *late;
    apr_interval_time_t ahead = 0;
    us_late_cursor at = { "", 0 };
    (void)state;
    late_clear_none_due(db);
    us_ingest_config c = cfg;
    c.max_file_size = 10LL * US_LATE_CLEAR_MIN_RATE; /* 10 s at the slowest rate */
    c.clock = offset_now;
    c.clock_arg = &ahead;
    assert_true(us_ingest_late_grace(&c) == c.lease + apr_time_from_sec(10));
    direct_sessions_ingested(db, "w-grace", 1, &id, &late);
    ahead = c.lease + apr_time_from_sec(5); /* past the lease, within the grace */
    assert_int_equal(us_ingest_clear_late(db, pool, &c, &at), 0);
    assert_true(present(late));
    ahead = c.lease + apr_time_from_sec(11);
    assert_int_equal(us_ingest_clear_late(db, pool, &c, &at), 1);
    assert_false(present(late));
    us_db_close(db);
}

/* A stored workspace file written at (mtime) `at`. */
static const char *put_file(const char *file_id, apr_time_t at)
{
    const char *path = apr_pstrcat(pool, root, "/data/files/", file_id, NULL);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(file_id, f);
    fclose(f);
    assert_int_equal(apr_file_mtime_set(path, at, pool), APR_SUCCESS);
    return path;
}

/* The files sweep (posix): a stored file no row refers to goes once older
 * than the grace, in rounds of a page each from where the last one
 * stopped; a young one and one with a row stay. */
static void test_files_sweep(void **state)
{
    us_db *db = db_open();
    apr_array_header_t *deleted;
    apr_time_t old = apr_time_now() - apr_time_from_sec(3600);
    (void)state;
    const char *orphan = put_file(uuid_n(++seq), old);
    const char *young = put_file(uuid_n(++seq), apr_time_now());
    us_workspace_file f;
    memset(&f, 0, sizeof(f));
    f.file_id = uuid_n(++seq);
    f.name = "kept.txt";
    f.size = 36;
    f.created_at = old;
    f.characters = -1;
    const char *kept = put_file(f.file_id, old);
    assert_int_equal(us_workspace_file_add(db, pool, "w-sweep", &f, "KEEP", &deleted), US_DB_OK);
    us_files_sweep_config sc = { cfg.storage, NULL, apr_time_from_sec(600), 0, 2, 0, NULL };
    /* the workers of test_workers_threads had a round: the next one is
     * due a lease later; a turn taken as from a day ahead frees it now */
    us_turn t;
    assert_int_equal(us_turn_take(db, pool, US_FILES_SWEEP_TURN,
                                  apr_time_now() + apr_time_from_sec(86400), 0, &t), US_DB_OK);
    assert_int_equal(us_turn_give(db, pool, &t, 0, ""), US_DB_OK);
    int removed = 0;
    for (int round = 0; round < 1000 && present(orphan); round++) {
        int n = us_files_sweep(db, pool, &sc);
        assert_true(n >= 0);
        removed += n;
    }
    assert_false(present(orphan));
    assert_int_equal(removed, 1);
    assert_true(present(young));
    assert_true(present(kept));
    /* another turn is not taken while one is held */
    assert_int_equal(us_turn_take(db, pool, US_FILES_SWEEP_TURN, apr_time_now(),
                                  apr_time_from_sec(60), &t), US_DB_OK);
    assert_int_equal(us_files_sweep(db, pool, &sc), -1);
    assert_int_equal(us_turn_give(db, pool, &t, 0, t.place), US_DB_OK);
    us_db_close(db);
}

/* The posix backend with a storage that does not answer while down: a
 * session clear keeps everything, the health check fails. */
static int storage_down;

static int down_clear(us_storage *st, apr_pool_t *p, const char *session_id)
{
    return storage_down ? 1 : us_posix_storage.session_clear(st, p, session_id);
}

static apr_status_t down_check(us_storage *st, apr_pool_t *p)
{
    return storage_down ? APR_ECONNREFUSED : us_posix_storage.check(st, p);
}

/* A clear after the last batch that leaves entries while the storage does
 * not answer does not mark the session done (nothing would clear it
 * again): it is requeued and cleared once the storage is back. */
static void test_clear_in_outage_requeues(void **state)
{
    us_db *db = db_open();
    int claimed = 0;
    (void)state;
    do /* sessions earlier tests left queued */
        us_ingest_once(db, pool, &cfg, "h/1/0", NULL, &claimed);
    while (claimed);
    wrapped_storage w;
    us_ingest_config c = with_wrapped_storage(&w);
    w.backend.session_clear = down_clear;
    w.backend.check = down_check;
    const char *sid = new_session(db, "w-outage-clear", "KEEP", 0);
    upload(db, sid, "a.txt", "a");
    upload(db, sid, "a.txt.meta.json", "{\"k\": 1}");
    close_session(db, "w-outage-clear", sid);
    storage_down = 1;
    assert_int_equal(us_ingest_once(db, pool, &c, "h/1/0", NULL, &claimed), 1);
    expect_file(db, sid, "a.txt", "FINISHED", NULL);
    /* not done: claimed again, and again not cleared */
    assert_int_equal(us_ingest_once(db, pool, &c, "h/1/0", NULL, &claimed), US_INGEST_STORAGE_DOWN);
    assert_int_equal(claimed, 1);
    storage_down = 0;
    assert_int_equal(us_ingest_once(db, pool, &c, "h/1/0", NULL, &claimed), 0);
    assert_int_equal(claimed, 1);
    struct stat sb; /* the sidecar is gone with the session's directory */
    assert_int_not_equal(stat(apr_pstrcat(pool, root, "/data/sessions/", sid, NULL), &sb), 0);
    assert_int_equal(us_ingest_once(db, pool, &c, "h/1/0", NULL, &claimed), 0);
    assert_int_equal(claimed, 0);
    us_db_close(db);
}

/* The posix backend with a session_clear_late that refuses to clear the
 * sessions of refused[0..n_refused). */
static const char **refused;
static int n_refused;

static int refusing_clear(us_storage *st, apr_pool_t *p, const char *session_id)
{
    for (int i = 0; i < n_refused; i++)
        if (strcmp(refused[i], session_id) == 0)
            return 1;
    return us_posix_storage.session_clear_late(st, p, session_id);
}

/* A full page of due prefixes whose clears keep failing does not hold
 * back those after it: the call pages on past them, the next one starts
 * over and tries them again. */
static void test_late_clear_moves_on(void **state)
{
    enum { N = US_LATE_CLEAR_PAGE + 2 };
    us_db *db = db_open();
    const char *ids[N], *late[N];
    apr_interval_time_t ahead = 0;
    us_late_cursor at = { "", 0 };
    (void)state;
    late_clear_none_due(db);
    direct_sessions_ingested(db, "w-moves", N, ids, late);
    wrapped_storage w;
    us_ingest_config c = with_wrapped_storage(&w);
    w.backend.session_clear_late = refusing_clear;
    c.clock = offset_now;
    c.clock_arg = &ahead;
    ahead = us_ingest_late_grace(&c) + apr_time_from_sec(1);
    /* the queue's order is (expires_at, id): the first page is refused */
    apr_array_header_t *due;
    assert_int_equal(us_late_clear_due(db, pool, offset_now(&ahead), us_ingest_late_grace(&c),
                                       NULL, N, &due), US_DB_OK);
    assert_int_equal(due->nelts, N);
    refused = apr_palloc(pool, sizeof(const char *) * US_LATE_CLEAR_PAGE);
    for (int i = 0; i < US_LATE_CLEAR_PAGE; i++)
        refused[i] = APR_ARRAY_IDX(due, i, us_late_due).id;
    n_refused = US_LATE_CLEAR_PAGE;
    assert_int_equal(us_ingest_clear_late(db, pool, &c, &at), 2); /* past the failing page */
    int kept = 0;
    for (int i = 0; i < N; i++) {
        int was_refused = 0;
        for (int j = 0; j < n_refused; j++)
            was_refused |= strcmp(refused[j], ids[i]) == 0;
        assert_int_equal(present(late[i]), was_refused);
        kept += was_refused;
    }
    assert_int_equal(kept, US_LATE_CLEAR_PAGE);
    n_refused = 0;
    /* from the start, a second's worth of single clears per call */
    int again = 0;
    for (int calls = 0, got = 1; got > 0 && calls < 100; calls++)
        again += got = us_ingest_clear_late(db, pool, &c, &at);
    assert_int_equal(again, US_LATE_CLEAR_PAGE);
    assert_int_equal(us_ingest_clear_late(db, pool, &c, &at), 0);
    for (int i = 0; i < N; i++)
        assert_false(present(late[i]));
    us_db_close(db);
}

/* The posix backend with a session_clear that notes whether the session it
 * clears is still claimed (running) at that moment. */
static us_db *spy_db;
static const char *spy_session;
static int spy_claimed_at_clear = -1;

static int spy_clear(us_storage *st, apr_pool_t *p, const char *session_id)
{
    if (spy_session && strcmp(session_id, spy_session) == 0) {
        apr_array_header_t *claims;
        spy_claimed_at_clear = 0;
        assert_int_equal(us_ingest_running(spy_db, p, &claims), US_DB_OK);
        for (int i = 0; i < claims->nelts; i++)
            if (strcmp(APR_ARRAY_IDX(claims, i, us_claim).session_id, session_id) == 0)
                spy_claimed_at_clear = 1;
    }
    return us_posix_storage.session_clear(st, p, session_id);
}

/* A session's leftovers (sidecars, blobs of FAILED files) are cleared while
 * its claim is held, before it is marked done: a worker killed in between
 * leaves a claim that is taken over and cleared again, where a session
 * already done would keep them for good. */
static void test_leftovers_cleared_before_done(void **state)
{
    us_db *db = db_open();
    int claimed = 0;
    (void)state;
    do /* sessions earlier tests left queued */
        us_ingest_once(db, pool, &cfg, "h/1/0", NULL, &claimed);
    while (claimed);
    wrapped_storage w;
    us_ingest_config c = with_wrapped_storage(&w);
    w.backend.session_clear = spy_clear;
    spy_db = db;
    const char *sid = new_session(db, "w-clear", "KEEP", 0);
    upload(db, sid, "kept.txt", "kept");
    upload(db, sid, "kept.txt.meta.json", "{\"k\": 1}");
    upload(db, sid, "empty.txt", "");
    close_session(db, "w-clear", sid);
    spy_session = sid;
    assert_int_equal(us_ingest_once(db, pool, &c, "h/1/0", NULL, &claimed), 2);
    spy_session = NULL;
    assert_int_equal(spy_claimed_at_clear, 1);
    expect_file(db, sid, "kept.txt", "FINISHED", NULL);
    expect_file(db, sid, "empty.txt", "FAILED", "EMPTY_FILE");
    /* cleared, and done: nothing left to claim */
    struct stat sb;
    assert_int_not_equal(stat(apr_pstrcat(pool, root, "/data/sessions/", sid, NULL), &sb), 0);
    assert_int_equal(us_ingest_once(db, pool, &c, "h/1/0", NULL, &claimed), 0);
    assert_int_equal(claimed, 0);
    us_db_close(db);
}

/* ---- the lease renewal inside a long batch ------------------------------------ */

/* A clock each read of which moves on by step; at read probe_at (> 0) a
 * second worker tries to take the session over as stale by this clock,
 * at read steal_at (> 0) a thief takes it over for good (its clock far
 * ahead, so the claim is stale to it), at read delete_at (> 0) the
 * workspace delete_ws is deleted. */
typedef struct {
    apr_time_t t, step;
    int reads, probe_at, steal_at, delete_at;
    us_db_rc probe_rc, steal_rc, delete_rc;
    us_db *other;
    const char *delete_ws;
} stepped_clock;

static apr_time_t stepped_now(void *arg)
{
    stepped_clock *c = arg;
    us_session s;
    c->t += c->step;
    c->reads++;
    if (c->reads == c->probe_at)
        c->probe_rc = us_ingest_claim(c->other, pool, "h/2/0", c->t, c->t - cfg.lease, &s);
    if (c->reads == c->steal_at)
        c->steal_rc = us_ingest_claim(c->other, pool, "h/2/0", c->t + 10 * cfg.lease,
                                      c->t + 9 * cfg.lease, &s);
    if (c->reads == c->delete_at) {
        apr_array_header_t *file_ids;
        c->delete_rc = us_workspace_delete(c->other, pool, c->delete_ws, c->t, &file_ids);
    }
    return c->t;
}

/* An open session in a workspace of its own, with nothing else claimable
 * or claimed in the (shared) store. */
static const char *lone_session(us_db *db, const char *ws)
{
    int claimed = 0;
    apr_array_header_t *claims;
    /* claims the earlier tests left (fresh by the real clock, stale by
     * the stepped one) go back to the queue first */
    assert_int_equal(us_ingest_running(db, pool, &claims), US_DB_OK);
    for (int i = 0; i < claims->nelts; i++) {
        const us_claim *cl = &APR_ARRAY_IDX(claims, i, us_claim);
        us_ingest_requeue(db, pool, cl->session_id, cl->owner);
    }
    do
        us_ingest_once(db, pool, &cfg, "h/1/0", NULL, &claimed);
    while (claimed);
    return new_session(db, ws, "KEEP", 0);
}

/* The same, closed with six files. */
static const char *six_file_session(us_db *db, const char *ws)
{
    const char *sid = lone_session(db, ws);
    for (int i = 1; i <= 6; i++)
        upload(db, sid, apr_psprintf(pool, "f%d.txt", i), "lease");
    close_session(db, ws, sid);
    return sid;
}

static int published(const char *file_id)
{
    struct stat st;
    return stat(apr_pstrcat(pool, root, "/data/files/", file_id, NULL), &st) == 0;
}

/* One batch of six files takes two leases by the worker's clock (a
 * quarter lease per file): the worker renews its claim on the way (at a
 * third of the lease), so a second worker that looks late in the batch
 * finds nothing stale, and the batch is recorded whole. */
static void test_batch_renews_lease(void **state)
{
    us_db *db = db_open(), *other = db_open();
    us_session s;
    (void)state;
    const char *sid = six_file_session(db, "w-renew");
    stepped_clock clk = { .t = apr_time_now(), .step = cfg.lease / 4, .probe_at = 7,
                          .probe_rc = US_DB_OK, .other = other };
    us_ingest_config c = cfg;
    c.batch = 6;
    c.clock = stepped_now;
    c.clock_arg = &clk;
    assert_int_equal(us_ingest_once(db, pool, &c, "h/1/0", NULL, NULL), 6);
    /* read 1: the claim; 2: the batch's start; 3..8: after each file (the
     * probe after the fifth, 1.5 leases after the claim); 9: the apply,
     * two leases after the claim; 10: the heartbeat between batches */
    assert_int_equal(clk.reads, 10);
    assert_int_equal(clk.probe_rc, US_DB_NOTFOUND);
    for (int i = 1; i <= 6; i++)
        expect_file(db, sid, apr_psprintf(pool, "f%d.txt", i), "FINISHED", NULL);
    assert_int_equal(us_session_get(db, pool, "w-renew", sid, apr_time_now(), &s), US_DB_OK);
    assert_int_equal(s.finished_files, 6);
    assert_int_equal(s.failed_files, 0);
    us_db_close(other);
    us_db_close(db);
}

/* A closed session of workspace ws holding one text file, long.txt, of
 * LONG_TEXT bytes ('a'): its characters are read in 64 pieces. */
#define LONG_TEXT ((apr_size_t)4 << 20)
static const char *long_text_session(us_db *db, const char *ws)
{
    const char *sid = lone_session(db, ws);
    char *text = apr_palloc(pool, LONG_TEXT + 1);
    memset(text, 'a', LONG_TEXT);
    text[LONG_TEXT] = '\0';
    upload(db, sid, "long.txt", text);
    close_session(db, ws, sid);
    return sid;
}

/* One text file of 4 MiB whose character count takes two leases by the
 * worker's clock (the clock steps a third of a lease and more at each
 * read): the worker renews its claim while it reads the file (every MiB),
 * so a second worker that looks during the file finds nothing stale, and
 * the file is recorded once with its characters. */
static void test_long_file_renews_lease(void **state)
{
    us_db *db = db_open(), *other = db_open();
    us_session s;
    apr_array_header_t *rows;
    (void)state;
    const char *sid = long_text_session(db, "w-renew-long");
    stepped_clock clk = { .t = apr_time_now(), .step = cfg.lease / 3 + 1, .probe_at = 6,
                          .probe_rc = US_DB_OK, .other = other };
    us_ingest_config c = cfg;
    c.batch = 1;
    c.clock = stepped_now;
    c.clock_arg = &clk;
    /* read 1: the claim; 2: the batch's start; 3..6: the file's four MiB
     * (the probe at the last, two leases after the claim) */
    assert_int_equal(us_ingest_once(db, pool, &c, "h/1/0", NULL, NULL), 1);
    assert_true(clk.reads >= 6);
    assert_int_equal(clk.probe_rc, US_DB_NOTFOUND);
    expect_file(db, sid, "long.txt", "FINISHED", NULL);
    assert_int_equal(workspace_files(db, "w-renew-long", "long.txt", &rows), 1);
    assert_int_equal(APR_ARRAY_IDX(rows, 0, us_workspace_file).characters, (long long)LONG_TEXT);
    assert_int_equal(us_session_get(db, pool, "w-renew-long", sid, apr_time_now(), &s), US_DB_OK);
    assert_int_equal(s.finished_files, 1);
    us_db_close(other);
    us_db_close(db);
}

/* A worker whose claim was taken over mid-batch learns it at its next
 * renewal and stops there: the files after it are neither published nor
 * recorded, nothing of the batch is applied; the new owner ingests all
 * six exactly once. The round counts a lost claim, not a store failure. */
static void test_lost_renewal_stops_batch(void **state)
{
    us_db *db = db_open(), *other = db_open();
    us_session s;
    us_metrics_counts counts;
    apr_array_header_t *pending, *claims;
    us_metrics *m = us_metrics_attach(apr_pcalloc(pool, us_metrics_size()), apr_time_now());
    (void)state;
    const char *sid = six_file_session(db, "w-stolen");
    /* stolen after the third file; the renewal after the fourth fails */
    stepped_clock clk = { .t = apr_time_now(), .step = cfg.lease / 4, .steal_at = 5,
                          .steal_rc = US_DB_ERROR, .other = other };
    us_ingest_config c = cfg;
    c.batch = 6;
    c.clock = stepped_now;
    c.clock_arg = &clk;
    c.metrics = us_metrics_slot_for(m, 1);
    assert_int_equal(us_ingest_once(db, pool, &c, "h/1/0", NULL, NULL), US_INGEST_CLAIM_LOST);
    us_metrics_sum(m, &counts);
    assert_int_equal(counts.ingest_claims_lost, 1);
    assert_int_equal(counts.worker_store_errors, 0);
    assert_int_equal(clk.steal_rc, US_DB_OK);
    assert_int_equal(clk.reads, 6);
    assert_int_equal(us_ingest_pending(db, pool, sid, "", 10, &pending), US_DB_OK);
    assert_int_equal(pending->nelts, 6);
    for (int i = 0; i < 6; i++) {
        const us_pending *u = &APR_ARRAY_IDX(pending, i, us_pending);
        assert_string_equal(u->name, apr_psprintf(pool, "f%d.txt", i + 1));
        assert_int_equal(published(u->file_ingestion_id), i < 4);
        expect_file(db, sid, u->name, "PENDING", NULL);
    }
    assert_int_equal(us_session_get(db, pool, "w-stolen", sid, apr_time_now(), &s), US_DB_OK);
    assert_int_equal(s.finished_files, 0);
    assert_int_equal(us_ingest_running(db, pool, &claims), US_DB_OK);
    const char *holder = NULL;
    for (int i = 0; i < claims->nelts; i++)
        if (strcmp(APR_ARRAY_IDX(claims, i, us_claim).session_id, sid) == 0)
            holder = APR_ARRAY_IDX(claims, i, us_claim).owner;
    assert_non_null(holder);
    assert_string_equal(holder, "h/2/0");
    /* the thief hands it back; a worker finishes it (the moved blobs are
     * found in place) */
    assert_int_equal(us_ingest_requeue(other, pool, sid, "h/2/0"), US_DB_OK);
    assert_int_equal(us_ingest_once(db, pool, &cfg, "h/1/0", NULL, NULL), 6);
    for (int i = 1; i <= 6; i++)
        expect_file(db, sid, apr_psprintf(pool, "f%d.txt", i), "FINISHED", NULL);
    assert_int_equal(us_session_get(db, pool, "w-stolen", sid, apr_time_now(), &s), US_DB_OK);
    assert_int_equal(s.finished_files, 6);
    assert_int_equal(s.failed_files, 0);
    us_db_close(other);
    us_db_close(db);
}

/* The log lines of msgno seen by a test's logger. */
typedef struct {
    int msgno, seen;
    us_log_level level;
} log_watch;

static void watch_emit(void *baton, us_log_level level, apr_status_t status, int msgno,
                       const char *msg)
{
    log_watch *w = baton;
    (void)status;
    (void)msg;
    if (msgno == w->msgno) {
        w->seen++;
        w->level = level;
    }
}

/* A round of a new six-file session of workspace ws, its claim gone at a
 * read of clk (clk says how): US_INGEST_CLAIM_LOST, and the one line it
 * logged of msgno. */
static log_watch round_losing_its_claim(us_db *db, us_ingest_config c, const char *ws,
                                        stepped_clock *clk, int msgno)
{
    log_watch w = { msgno, 0, US_LOG_ERR };
    us_logger watched = { watch_emit, &w, US_LOG_DEBUG };
    (void)six_file_session(db, ws);
    c.batch = 6;
    c.clock = stepped_now;
    c.clock_arg = clk;
    c.log = &watched;
    assert_int_equal(us_ingest_once(db, pool, &c, "h/1/0", NULL, NULL), US_INGEST_CLAIM_LOST);
    assert_int_equal(w.seen, 1);
    return w;
}

/* The workspace is deleted in the middle of a round: the round's claim is
 * gone with the session (US1035, at info level), which is no claim another
 * worker took over: no US1008, nothing counted in ingest_claims_lost; a
 * thief's takeover is (the other branch). */
static void test_a_session_deleted_with_its_workspace_mid_round_is_no_lost_claim(void **state)
{
    us_db *db = db_open(), *other = db_open();
    us_metrics_counts counts;
    us_metrics *m = us_metrics_attach(apr_pcalloc(pool, us_metrics_size()), apr_time_now());
    (void)state;
    us_ingest_config c = cfg;
    c.metrics = us_metrics_slot_for(m, 1);
    stepped_clock deleting = { .t = apr_time_now(), .step = cfg.lease / 4, .delete_at = 5,
                               .delete_rc = US_DB_ERROR, .other = other,
                               .delete_ws = "w-deleted" };
    log_watch w = round_losing_its_claim(db, c, "w-deleted", &deleting, 1035);
    assert_int_equal(deleting.delete_rc, US_DB_OK);
    assert_int_equal(w.level, US_LOG_INFO);
    us_metrics_sum(m, &counts);
    assert_int_equal(counts.ingest_claims_lost, 0);
    assert_int_equal(counts.worker_store_errors, 0);

    stepped_clock stealing = { .t = apr_time_now(), .step = cfg.lease / 4, .steal_at = 5,
                               .steal_rc = US_DB_ERROR, .other = other };
    w = round_losing_its_claim(db, c, "w-stolen-2", &stealing, 1008);
    assert_int_equal(stealing.steal_rc, US_DB_OK);
    assert_int_equal(w.level, US_LOG_WARN);
    us_metrics_sum(m, &counts);
    assert_int_equal(counts.ingest_claims_lost, 1);
    us_db_close(other);
    us_db_close(db);
}

/* The pieces of files read (for their characters) through a wrapped storage. */
static int pieces_read;
static apr_interval_time_t piece_delay;

static apr_status_t counted_read_at(void *r, apr_off_t off, char *buf, apr_size_t *len)
{
    pieces_read++;
    if (piece_delay)
        apr_sleep(piece_delay);
    return us_posix_storage.read_at(r, off, buf, len);
}

/* A round of a session holding one long text file (ws), whose claim another
 * worker takes over at read steal_at of the worker's clock, while the file
 * is read for its characters (c: the batch's width and lease): the round
 * ends US_INGEST_CLAIM_LOST, logged and counted once, the file PENDING;
 * then the thief hands the session back and a worker records the file once,
 * with its characters. Returns how many pieces of it the round read. */
static int lose_claim_in_long_file(const char *ws, us_ingest_config c, int steal_at)
{
    us_db *db = db_open(), *other = db_open();
    us_metrics_counts counts;
    us_metrics *m = us_metrics_attach(apr_pcalloc(pool, us_metrics_size()), apr_time_now());
    log_watch w = { 1008, 0, US_LOG_ERR };
    us_logger watched = { watch_emit, &w, US_LOG_DEBUG };
    const char *sid = long_text_session(db, ws);
    stepped_clock clk = { .t = apr_time_now(), .step = c.lease / 3 + 1, .steal_at = steal_at,
                          .steal_rc = US_DB_ERROR, .other = other };
    c.batch = 1;
    c.clock = stepped_now;
    c.clock_arg = &clk;
    c.log = &watched;
    c.metrics = us_metrics_slot_for(m, 1);
    pieces_read = 0;
    assert_int_equal(us_ingest_once(db, pool, &c, "h/1/0", NULL, NULL), US_INGEST_CLAIM_LOST);
    int read = pieces_read;
    assert_int_equal(clk.steal_rc, US_DB_OK);
    assert_int_equal(clk.reads, steal_at);
    assert_int_equal(w.seen, 1);
    assert_int_equal(w.level, US_LOG_WARN);
    us_metrics_sum(m, &counts);
    assert_int_equal(counts.ingest_claims_lost, 1);
    assert_int_equal(counts.worker_store_errors, 0);
    expect_file(db, sid, "long.txt", "PENDING", NULL);
    assert_int_equal(us_ingest_requeue(other, pool, sid, "h/2/0"), US_DB_OK);
    assert_int_equal(us_ingest_once(db, pool, &cfg, "h/1/0", NULL, NULL), 1);
    expect_file(db, sid, "long.txt", "FINISHED", NULL);
    apr_array_header_t *rows;
    assert_int_equal(workspace_files(db, ws, "long.txt", &rows), 1);
    assert_int_equal(APR_ARRAY_IDX(rows, 0, us_workspace_file).characters, (long long)LONG_TEXT);
    us_db_close(other);
    us_db_close(db);
    return read;
}

/* One file at a time: the renewal after the file's first MiB (read 3 of the
 * clock; 1: the claim, 2: the batch's start) finds the claim taken over, and
 * the rest of the file is not read (a text of gigabytes would hold the
 * worker on a session no longer its own). */
static void test_a_claim_lost_inside_a_long_file_gives_the_file_up(void **state)
{
    wrapped_storage ws;
    us_ingest_config c = with_wrapped_storage(&ws);
    (void)state;
    ws.backend.read_at = counted_read_at;
    piece_delay = 0;
    c.publish_width = 1;
    /* 1 MiB of 64 KiB pieces, not the file's 64 */
    assert_int_equal(lose_claim_in_long_file("w-lost-long", c, 3), 16);
}

/* A wide batch (s3's): the file is read on a fan-out thread while the
 * worker's thread renews; its first renewal during the read (read 4: after
 * the claim, the batch's start and the renewal after judging the file)
 * finds the claim taken over, and the reading thread gives the file up at
 * its next MiB. */
static void test_a_wide_batch_gives_a_long_file_up_once_its_claim_is_lost(void **state)
{
    wrapped_storage ws;
    us_ingest_config c = with_wrapped_storage(&ws);
    (void)state;
    ws.backend.read_at = counted_read_at;
    piece_delay = apr_time_from_msec(20); /* the file's 64 pieces take 1.3 s */
    c.publish_width = 2;
    c.lease = apr_time_from_msec(600); /* a renewal tick every 100 ms */
    int read = lose_claim_in_long_file("w-lost-long-wide", c, 4);
    piece_delay = 0;
    assert_true(read >= 1 && read <= 48);
}

/* ---- publishes of one batch at once (publish_width) ------------------------- */

/* The posix backend with a publish that takes a while, counts the publishes
 * in flight at once, and finds the storage down from call fail_from (> 0) on. */
static volatile apr_uint32_t wide_calls, wide_inflight, wide_max;
static apr_uint32_t wide_fail_from;

static apr_status_t slow_publish(us_storage *st, apr_pool_t *p, const char *session_id,
                                 const char *blob, const char *file_id, const char *etag,
                                 long long size, int *moved)
{
    apr_uint32_t call = apr_atomic_inc32(&wide_calls) + 1;
    apr_uint32_t now = apr_atomic_inc32(&wide_inflight) + 1, seen;
    while ((seen = apr_atomic_read32(&wide_max)) < now &&
           apr_atomic_cas32(&wide_max, now, seen) != seen)
        ;
    apr_sleep(apr_time_from_msec(20));
    apr_status_t rv = wide_fail_from && call >= wide_fail_from
                          ? APR_ECONNREFUSED
                          : us_posix_storage.publish(st, p, session_id, blob, file_id, etag, size,
                                                     moved);
    apr_atomic_dec32(&wide_inflight);
    return rv;
}

/* A closed session of n text files named w0.txt.. in workspace ws. */
static const char *wide_session(us_db *db, const char *ws, int n)
{
    int claimed = 0;
    do /* sessions earlier tests left queued */
        us_ingest_once(db, pool, &cfg, "h/1/0", NULL, &claimed);
    while (claimed);
    const char *sid = new_session(db, ws, "FAIL", 0);
    for (int i = 0; i < n; i++)
        upload(db, sid, apr_psprintf(pool, "w%02d.txt", i), "wide");
    close_session(db, ws, sid);
    return sid;
}

/* The file storage's deletes: counted, and refused as by a storage that does
 * not answer while delete_down is set. */
static int deletes_tried, delete_down;

static apr_status_t outage_delete(us_storage *st, apr_pool_t *p, const char *file_id)
{
    deletes_tried++;
    return delete_down ? APR_ECONNREFUSED : us_posix_storage.file_delete(st, p, file_id);
}

static int in_trash(us_db *db, const char *id)
{
    apr_array_header_t *ids;
    assert_int_equal(us_file_trash_list(db, pool, 1000, &ids), US_DB_OK);
    for (int i = 0; i < ids->nelts; i++)
        if (strcmp(APR_ARRAY_IDX(ids, i, const char *), id) == 0)
            return 1;
    return 0;
}

/* The trash sweep stops at the first delete the storage does not answer
 * (each of the rest would wait for its timeout: a stopping child would wait
 * for a thousand of them), and tries none once its stop is set; the ids
 * stay in the trash, and a later sweep deletes their bytes. */
static void test_the_trash_sweep_gives_up_on_an_outage_and_a_stop(void **state)
{
    us_db *db = db_open();
    apr_array_header_t *deleted;
    volatile apr_uint32_t stop = 0;
    (void)state;
    (void)wide_session(db, "w-trash", 3);
    assert_int_equal(us_ingest_once(db, pool, &cfg, "h/1/0", NULL, NULL), 3);
    assert_int_equal(us_workspace_files_delete(db, pool, "w-trash", NULL, &deleted), US_DB_OK);
    assert_int_equal(deleted->nelts, 3);
    wrapped_storage w;
    us_ingest_config c = with_wrapped_storage(&w);
    w.backend.file_delete = outage_delete;

    deletes_tried = 0;
    delete_down = 1;
    assert_int_equal(us_ingest_sweep_trash(db, pool, &c, &stop), 0);
    assert_int_equal(deletes_tried, 1);
    apr_atomic_set32(&stop, 1);
    delete_down = 0;
    deletes_tried = 0;
    assert_int_equal(us_ingest_sweep_trash(db, pool, &c, &stop), 0);
    assert_int_equal(deletes_tried, 0);
    for (int i = 0; i < 3; i++) {
        const char *id = APR_ARRAY_IDX(deleted, i, const char *);
        assert_true(in_trash(db, id));
        assert_true(published(id));
    }

    apr_atomic_set32(&stop, 0);
    assert_true(us_ingest_sweep_trash(db, pool, &c, &stop) >= 3);
    for (int i = 0; i < 3; i++) {
        const char *id = APR_ARRAY_IDX(deleted, i, const char *);
        assert_false(in_trash(db, id));
        assert_false(published(id));
    }
    us_db_close(db);
}

static int syncs_seen, syncs_at_first_delete;

static int counting_sync(int fd)
{
    syncs_seen++;
    return fdatasync(fd);
}

static apr_status_t noting_delete(us_storage *st, apr_pool_t *p, const char *file_id)
{
    if (syncs_at_first_delete < 0)
        syncs_at_first_delete = syncs_seen;
    return us_posix_storage.file_delete(st, p, file_id);
}

/* The trash sweep syncs the WAL before its first delete of bytes: a
 * delete's commit is read before its own sync ends, and lost in a crash it
 * would bring the file back without them (us_durable_barrier). */
static void test_the_trash_sweep_syncs_before_it_deletes(void **state)
{
    us_db *db = db_open();
    apr_array_header_t *deleted;
    (void)state;
    (void)wide_session(db, "w-barrier", 2);
    assert_int_equal(us_ingest_once(db, pool, &cfg, "h/1/0", NULL, NULL), 2);
    assert_int_equal(us_workspace_files_delete(db, pool, "w-barrier", NULL, &deleted), US_DB_OK);
    wrapped_storage w;
    us_ingest_config c = with_wrapped_storage(&w);
    w.backend.file_delete = noting_delete;
    us_sqlite_of(db)->wal_fdatasync = counting_sync;
    syncs_seen = 0;
    syncs_at_first_delete = -1;
    assert_int_equal(us_ingest_sweep_trash(db, pool, &c, NULL), 2);
    assert_int_equal(syncs_at_first_delete, 1);
    for (int i = 0; i < 2; i++)
        assert_false(published(APR_ARRAY_IDX(deleted, i, const char *)));
    us_db_close(db);
}

/* One batch of twelve files with publish_width 4: up to four publishes at
 * once (more than one), every file FINISHED once, in a FAIL-mode session. */
static void test_wide_batch_publishes_at_once(void **state)
{
    us_db *db = db_open();
    us_session s;
    apr_array_header_t *rows;
    (void)state;
    wrapped_storage w;
    us_ingest_config c = with_wrapped_storage(&w);
    w.backend.publish = slow_publish;
    c.batch = 12;
    c.publish_width = 4;
    const char *sid = wide_session(db, "w-wide", 12);
    apr_atomic_set32(&wide_calls, 0);
    apr_atomic_set32(&wide_max, 0);
    wide_fail_from = 0;
    assert_int_equal(us_ingest_once(db, pool, &c, "h/1/0", NULL, NULL), 12);
    assert_int_equal(apr_atomic_read32(&wide_calls), 12);
    assert_true(apr_atomic_read32(&wide_max) > 1);
    assert_true(apr_atomic_read32(&wide_max) <= 4);
    for (int i = 0; i < 12; i++) {
        expect_file(db, sid, apr_psprintf(pool, "w%02d.txt", i), "FINISHED", NULL);
        assert_int_equal(workspace_files(db, "w-wide", apr_psprintf(pool, "w%02d.txt", i), &rows), 1);
    }
    assert_int_equal(us_session_get(db, pool, "w-wide", sid, apr_time_now(), &s), US_DB_OK);
    assert_int_equal(s.finished_files, 12);
    us_db_close(db);
}

/* The storage goes down in the middle of a wide batch: nothing of it is
 * recorded (some files are published already), the retry finds those in
 * place and the session ends with every file FINISHED exactly once. */
static void test_wide_batch_outage_mid_batch(void **state)
{
    us_db *db = db_open();
    us_session s;
    apr_array_header_t *pending, *rows;
    (void)state;
    wrapped_storage w;
    us_ingest_config c = with_wrapped_storage(&w);
    w.backend.publish = slow_publish;
    c.batch = 12;
    c.publish_width = 4;
    const char *sid = wide_session(db, "w-wide-down", 12);
    apr_atomic_set32(&wide_calls, 0);
    wide_fail_from = 6;
    assert_int_equal(us_ingest_once(db, pool, &c, "h/1/0", NULL, NULL), US_INGEST_STORAGE_DOWN);
    assert_true(apr_atomic_read32(&wide_calls) < 12); /* stopped early */
    assert_int_equal(us_ingest_pending(db, pool, sid, "", 20, &pending), US_DB_OK);
    assert_int_equal(pending->nelts, 12);
    int moved = 0;
    for (int i = 0; i < 12; i++) {
        const us_pending *u = &APR_ARRAY_IDX(pending, i, us_pending);
        moved += published(u->file_ingestion_id);
        expect_file(db, sid, u->name, "PENDING", NULL);
    }
    assert_int_equal(moved, 5);
    wide_fail_from = 0;
    assert_int_equal(us_ingest_once(db, pool, &c, "h/1/0", NULL, NULL), 12);
    for (int i = 0; i < 12; i++) {
        const us_pending *u = &APR_ARRAY_IDX(pending, i, us_pending);
        assert_true(published(u->file_ingestion_id));
        expect_file(db, sid, u->name, "FINISHED", NULL);
        assert_int_equal(workspace_files(db, "w-wide-down", u->name, &rows), 1);
    }
    assert_int_equal(us_session_get(db, pool, "w-wide-down", sid, apr_time_now(), &s), US_DB_OK);
    assert_int_equal(s.finished_files, 12);
    assert_int_equal(s.failed_files, 0);
    us_db_close(db);
}

/* ---- failures that say nothing about the file ------------------------------ */

/* The storage operation broken by the next test (each fails while its
 * counter is positive, counting down), and the syncs asked for. */
static int fail_sync, fail_meta_read, fail_publish, fail_text_read, syncs;
/* refusals of one object (us_storage_refused): every sidecar's read, the
 * read of the file refuse_read_of */
static int refuse_meta;
static const char *refuse_read_of;

static apr_status_t flaky_publish_sync(us_storage *st, apr_pool_t *p)
{
    syncs++;
    return fail_sync-- > 0 ? APR_FROM_OS_ERROR(EIO) : us_posix_storage.publish_sync(st, p);
}

static apr_status_t flaky_upload_read(us_storage *st, apr_pool_t *p, const char *session_id,
                                      const char *blob, apr_size_t max, char **data,
                                      apr_size_t *len)
{
    if (refuse_meta)
        return APR_EGENERAL;
    return fail_meta_read-- > 0 ? APR_FROM_OS_ERROR(EMFILE)
                                : us_posix_storage.upload_read(st, p, session_id, blob, max, data,
                                                               len);
}

static apr_status_t flaky_publish(us_storage *st, apr_pool_t *p, const char *session_id,
                                  const char *blob, const char *file_id, const char *etag,
                                  long long size, int *moved)
{
    *moved = 0;
    return fail_publish-- > 0 ? APR_FROM_OS_ERROR(ENFILE)
                              : us_posix_storage.publish(st, p, session_id, blob, file_id, etag,
                                                         size, moved);
}

static apr_status_t flaky_file_read(us_storage *st, apr_pool_t *p, const char *file_id,
                                    apr_size_t max, char **data, apr_size_t *len)
{
    if (refuse_read_of && strcmp(file_id, refuse_read_of) == 0)
        return APR_EGENERAL;
    return fail_text_read-- > 0 ? APR_FROM_OS_ERROR(ENOMEM)
                                : us_posix_storage.file_read(st, p, file_id, max, data, len);
}

/* A failed sync of the published files, a sidecar or a file that cannot be
 * read or published for want of descriptors or memory: each retries the
 * batch (nothing recorded, no file FAILED); the retry, with the storage
 * well again, records every file FINISHED once with its metadata and its
 * characters, and syncs the files it found published already. */
static void test_storage_trouble_retries_the_batch(void **state)
{
    us_db *db = db_open();
    us_session s;
    apr_array_header_t *rows;
    (void)state;
    wrapped_storage w;
    us_ingest_config c = with_wrapped_storage(&w);
    w.backend.publish_sync = flaky_publish_sync;
    w.backend.upload_read = flaky_upload_read;
    w.backend.publish = flaky_publish;
    w.backend.file_read = flaky_file_read;
    int claimed = 0;
    do /* sessions earlier tests left queued */
        us_ingest_once(db, pool, &c, "h/1/0", NULL, &claimed);
    while (claimed);
    const char *sid = new_session(db, "w-trouble", "KEEP", 0);
    upload(db, sid, "a.txt", "alpha");
    upload(db, sid, "a.txt.meta.json", "{\"k\": 1}");
    upload(db, sid, "b.bin", "beta");
    close_session(db, "w-trouble", sid);

    int *breaks[] = { &fail_sync, &fail_meta_read, &fail_publish, &fail_text_read };
    for (size_t i = 0; i < sizeof(breaks) / sizeof(breaks[0]); i++) {
        fail_sync = fail_meta_read = fail_publish = fail_text_read = 0;
        *breaks[i] = 1;
        syncs = 0;
        assert_int_equal(us_ingest_once(db, pool, &c, "h/1/0", NULL, NULL), US_INGEST_STORAGE_DOWN);
        expect_file(db, sid, "a.txt", "PENDING", NULL);
        expect_file(db, sid, "b.bin", "PENDING", NULL);
        assert_int_equal(workspace_files(db, "w-trouble", "", &rows), 0);
    }
    fail_sync = fail_meta_read = fail_publish = fail_text_read = 0;
    syncs = 0;
    assert_int_equal(us_ingest_once(db, pool, &c, "h/1/0", NULL, NULL), 2);
    assert_int_equal(syncs, 1); /* both were found published by the earlier runs */
    expect_file(db, sid, "a.txt", "FINISHED", NULL);
    expect_file(db, sid, "b.bin", "FINISHED", NULL);
    assert_int_equal(us_session_get(db, pool, "w-trouble", sid, apr_time_now(), &s), US_DB_OK);
    assert_int_equal(s.finished_files, 2);
    assert_int_equal(s.failed_files, 0);
    assert_int_equal(workspace_files(db, "w-trouble", "a.txt", &rows), 1);
    us_workspace_file *f = &APR_ARRAY_IDX(rows, 0, us_workspace_file);
    assert_string_equal(f->meta, "{\"k\":1}");
    assert_int_equal(f->characters, 5);
    us_db_close(db);
}

/* Where the storage refuses b.txt: its publish (posix: a directory holds
 * the file's name, EISDIR), its sidecar's read, or the read that counts
 * its characters once it is published. */
typedef enum { REFUSE_PUBLISH, REFUSE_META, REFUSE_COUNT } refusal_at;

/* A file the storage refuses is retried, not forever and not at once: the
 * other files are decided in the round that meets the refusal, the refused
 * one stays PENDING and the session is claimed again only after the pause
 * (c.refusal_pause, doubled per refusal: 1, 2, 4, 8 s by the claim's
 * clock), at the US_INGEST_PUBLISH_TRIES-th refusal the file is FAILED
 * with UNKNOWN_ERROR, counted once, and the session is done with its
 * uploads cleared. A round that meets an outage counts against no file.
 * width: the batch's publishes at once. */
static void refused_fails_the_file(int width, const char *ws, refusal_at at)
{
    us_db *db = db_open();
    us_session s;
    apr_array_header_t *pending, *rows;
    struct stat sb;
    wrapped_storage w;
    apr_interval_time_t ahead = 0;
    us_ingest_config c = with_wrapped_storage(&w);
    w.backend.publish = flaky_publish;
    w.backend.upload_read = flaky_upload_read;
    w.backend.file_read = flaky_file_read;
    c.publish_width = width;
    c.clock = offset_now;
    c.clock_arg = &ahead;
    c.refusal_pause = apr_time_from_sec(1);
    int claimed = 0;
    do /* sessions earlier tests left queued */
        us_ingest_once(db, pool, &c, "h/1/0", NULL, &claimed);
    while (claimed);
    const char *sid = new_session(db, ws, "KEEP", 0);
    upload(db, sid, "a.txt", "alpha");
    upload(db, sid, "b.txt", "beta");
    upload(db, sid, "b.txt.meta.json", "{\"k\": 1}");
    upload(db, sid, "c.txt", "gamma");
    close_session(db, ws, sid);
    assert_int_equal(us_ingest_pending(db, pool, sid, "", 10, &pending), US_DB_OK);
    const char *bad = APR_ARRAY_IDX(pending, 1, us_pending).file_ingestion_id;
    const char *in_the_way = apr_pstrcat(pool, root, "/data/files/", bad, NULL);
    if (at == REFUSE_PUBLISH)
        assert_int_equal(apr_dir_make_recursive(apr_pstrcat(pool, in_the_way, "/x", NULL),
                                                APR_FPROT_OS_DEFAULT, pool), APR_SUCCESS);
    refuse_meta = at == REFUSE_META;
    refuse_read_of = at == REFUSE_COUNT ? bad : NULL;

    fail_publish = 1; /* an outage round first: it counts against no file */
    assert_int_equal(us_ingest_once(db, pool, &c, "h/1/0", NULL, NULL), US_INGEST_STORAGE_DOWN);
    fail_publish = 0;
    /* the first refusal: the others are decided at once */
    assert_int_equal(us_ingest_once(db, pool, &c, "h/1/0", NULL, &claimed), 2);
    assert_int_equal(claimed, 1);
    expect_file(db, sid, "a.txt", "FINISHED", NULL);
    expect_file(db, sid, "b.txt", "PENDING", NULL);
    expect_file(db, sid, "c.txt", "FINISHED", NULL);
    assert_int_equal(workspace_files(db, ws, "", &rows), 2);
    /* the refused file's upload is kept while it is PENDING */
    assert_int_equal(stat(apr_pstrcat(pool, root, "/data/sessions/", sid, NULL), &sb), 0);
    for (int i = 2; i <= US_INGEST_PUBLISH_TRIES; i++) {
        apr_interval_time_t pause = apr_time_from_sec(1) << (i - 2);
        /* not before the pause after the last refusal */
        ahead += pause - apr_time_from_msec(200);
        assert_int_equal(us_ingest_once(db, pool, &c, "h/1/0", NULL, &claimed), 0);
        assert_int_equal(claimed, 0);
        ahead += apr_time_from_msec(200);
        assert_int_equal(us_ingest_once(db, pool, &c, "h/1/0", NULL, &claimed),
                         i < US_INGEST_PUBLISH_TRIES ? 0 : 1);
        assert_int_equal(claimed, 1);
        expect_file(db, sid, "b.txt", i < US_INGEST_PUBLISH_TRIES ? "PENDING" : "FAILED",
                    i < US_INGEST_PUBLISH_TRIES ? NULL : "UNKNOWN_ERROR");
    }
    refuse_meta = 0;
    refuse_read_of = NULL;
    expect_file(db, sid, "a.txt", "FINISHED", NULL);
    expect_file(db, sid, "c.txt", "FINISHED", NULL);
    assert_int_equal(us_session_get(db, pool, ws, sid, apr_time_now(), &s), US_DB_OK);
    assert_int_equal(s.finished_files, 2);
    assert_int_equal(s.failed_files, 1);
    assert_int_equal(workspace_files(db, ws, "", &rows), 2);
    /* done: the uploads (the refused file's blob, the sidecar) are cleared,
     * and nothing is left of b.txt where it was published */
    assert_int_not_equal(stat(apr_pstrcat(pool, root, "/data/sessions/", sid, NULL), &sb), 0);
    if (at != REFUSE_PUBLISH)
        assert_int_not_equal(stat(in_the_way, &sb), 0);
    assert_int_equal(us_ingest_once(db, pool, &c, "h/1/0", NULL, &claimed), 0);
    assert_int_equal(claimed, 0);
    assert_int_equal(us_session_get(db, pool, ws, sid, apr_time_now(), &s), US_DB_OK);
    assert_int_equal(s.finished_files + s.failed_files, 3);
    us_db_close(db);
}

static void test_refused_publish_fails_the_file(void **state)
{
    (void)state;
    refused_fails_the_file(1, "w-refused", REFUSE_PUBLISH);
}

static void test_refused_publish_fails_the_file_wide(void **state)
{
    (void)state;
    refused_fails_the_file(4, "w-refused-wide", REFUSE_PUBLISH);
}

/* A sidecar whose read the storage refuses is no outage: b.txt counts it
 * as a refusal and ends FAILED (UNKNOWN_ERROR: the sidecar was not shown
 * to be no JSON object), where the batch was retried forever. */
static void test_refused_sidecar_fails_the_file(void **state)
{
    (void)state;
    refused_fails_the_file(1, "w-refused-meta", REFUSE_META);
    refused_fails_the_file(4, "w-refused-meta-wide", REFUSE_META);
}

/* The same for the read that counts a published text file's characters;
 * the copy published is removed once the file is FAILED. */
static void test_refused_count_fails_the_file(void **state)
{
    (void)state;
    refused_fails_the_file(1, "w-refused-count", REFUSE_COUNT);
    refused_fails_the_file(4, "w-refused-count-wide", REFUSE_COUNT);
}

/* A refused session waits for its turn's pause without holding back a
 * parallel session, nor one of another workspace; a non-parallel session
 * of its own workspace closed after it keeps waiting for it (closing
 * order). */
static void test_refused_session_waits_alone(void **state)
{
    us_db *db = db_open();
    wrapped_storage w;
    apr_interval_time_t ahead = 0;
    us_ingest_config c = with_wrapped_storage(&w);
    us_session s;
    (void)state;
    w.backend.upload_read = flaky_upload_read;
    c.clock = offset_now;
    c.clock_arg = &ahead;
    c.refusal_pause = apr_time_from_sec(1);
    int claimed = 0;
    do
        us_ingest_once(db, pool, &c, "h/1/0", NULL, &claimed);
    while (claimed);
    const char *waiting = new_session(db, "w-wait", "KEEP", 0);
    upload(db, waiting, "a.txt", "alpha");
    upload(db, waiting, "a.txt.meta.json", "{}");
    close_session(db, "w-wait", waiting);
    const char *behind = new_session(db, "w-wait", "KEEP", 0);
    upload(db, behind, "b.txt", "beta");
    close_session(db, "w-wait", behind);
    const char *other = new_session(db, "w-wait-other", "KEEP", 0);
    upload(db, other, "c.txt", "gamma");
    close_session(db, "w-wait-other", other);
    refuse_meta = 1;
    assert_int_equal(us_ingest_once(db, pool, &c, "h/1/0", NULL, &claimed), 0);
    assert_int_equal(claimed, 1);
    expect_file(db, waiting, "a.txt", "PENDING", NULL);
    /* the other workspace's session goes, the one behind waits */
    assert_int_equal(us_ingest_once(db, pool, &c, "h/1/0", NULL, &claimed), 1);
    expect_file(db, other, "c.txt", "FINISHED", NULL);
    assert_int_equal(us_ingest_once(db, pool, &c, "h/1/0", NULL, &claimed), 0);
    assert_int_equal(claimed, 0);
    expect_file(db, behind, "b.txt", "PENDING", NULL);
    /* the store answers again: after the pause, both in closing order */
    refuse_meta = 0;
    ahead += apr_time_from_sec(1);
    assert_int_equal(us_ingest_once(db, pool, &c, "h/1/0", NULL, &claimed), 1);
    expect_file(db, waiting, "a.txt", "FINISHED", NULL);
    assert_int_equal(us_ingest_once(db, pool, &c, "h/1/0", NULL, &claimed), 1);
    expect_file(db, behind, "b.txt", "FINISHED", NULL);
    assert_int_equal(us_session_get(db, pool, "w-wait", waiting, apr_time_now(), &s), US_DB_OK);
    assert_int_equal(s.finished_files, 1);
    us_db_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rules_and_counters),
        cmocka_unit_test(test_write_modes),
        cmocka_unit_test(test_replay_after_crash),
        cmocka_unit_test(test_claim_order),
        cmocka_unit_test(test_expiry_queues_ingestion),
        cmocka_unit_test(test_workers_threads),
        cmocka_unit_test(test_claimed_is_reported),
        cmocka_unit_test(test_retry_backoff),
        cmocka_unit_test(test_listing_page),
        cmocka_unit_test(test_late_clear),
        cmocka_unit_test(test_late_clear_upload_target),
        cmocka_unit_test(test_late_clear_live_pid),
        cmocka_unit_test(test_late_clear_many),
        cmocka_unit_test(test_late_clear_grace),
        cmocka_unit_test(test_late_clear_moves_on),
        cmocka_unit_test(test_files_sweep),
        cmocka_unit_test(test_clear_in_outage_requeues),
        cmocka_unit_test(test_leftovers_cleared_before_done),
        cmocka_unit_test(test_batch_renews_lease),
        cmocka_unit_test(test_long_file_renews_lease),
        cmocka_unit_test(test_lost_renewal_stops_batch),
        cmocka_unit_test(test_a_claim_lost_inside_a_long_file_gives_the_file_up),
        cmocka_unit_test(test_a_wide_batch_gives_a_long_file_up_once_its_claim_is_lost),
        cmocka_unit_test(test_a_session_deleted_with_its_workspace_mid_round_is_no_lost_claim),
        cmocka_unit_test(test_the_trash_sweep_gives_up_on_an_outage_and_a_stop),
        cmocka_unit_test(test_the_trash_sweep_syncs_before_it_deletes),
        cmocka_unit_test(test_wide_batch_publishes_at_once),
        cmocka_unit_test(test_wide_batch_outage_mid_batch),
        cmocka_unit_test(test_storage_trouble_retries_the_batch),
        cmocka_unit_test(test_refused_publish_fails_the_file),
        cmocka_unit_test(test_refused_publish_fails_the_file_wide),
        cmocka_unit_test(test_refused_sidecar_fails_the_file),
        cmocka_unit_test(test_refused_count_fails_the_file),
        cmocka_unit_test(test_refused_session_waits_alone),
        cmocka_unit_test(test_stop_mid_batch),
        cmocka_unit_test(test_stop_mid_count),
        cmocka_unit_test(test_stop_mid_count_wide),
        cmocka_unit_test(test_direct_names_from_keys),
        cmocka_unit_test(test_direct_sidecars_past_max_files),
        cmocka_unit_test(test_direct_objects_after_the_close_left_out),
    };
    return sqlite_fixture_run("us_ingest", tests, setup, teardown);
}

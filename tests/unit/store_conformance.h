/*
 * store_conformance.h - the store contract of us_store.h, checked through
 * the front against any backend: a suite that knows no SQL and no backend.
 * A backend's test file names a store_target (its table and how to make a
 * fresh, empty database) and calls store_conformance_run; each test gets a
 * database of its own. Include after cmocka.h, with pool (an APR pool)
 * defined and apr_dbd_init run.
 */
#ifndef US_STORE_CONFORMANCE_H
#define US_STORE_CONFORMANCE_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <apr_strings.h>
#include <apr_thread_proc.h>
#include "us_odata.h"
#include "us_store_backend.h"
#include "us_time.h"
#include "us_webhook.h"

typedef struct {
    const us_store_backend *backend;
    /* the parameters of a new, empty database (for UploadSessionStore) */
    const char *(*create)(apr_pool_t *p, const char *test_name);
    /* removes what create made */
    void (*destroy)(apr_pool_t *p, const char *params);
    /* 1: the backend judges a session's expires_at by its own clock on
     * every path (PostgreSQL), not by the `now` a caller passes; 0: by
     * that `now` (SQLite: one machine, one clock) */
    int own_clock;
} store_target;

static const store_target *sc_target;
static const char *sc_params;
static us_store_cfg *sc_cfg;
static int sc_seq;

#define SC_SEC(n) ((apr_time_t)(n) * APR_USEC_PER_SEC)
/* Each test's clock: 30 s before the store's clock at its start (the
 * store runs on this machine), a whole second. By the store's clock a
 * session made at SC_T0 that lives 10 s or less has expired, one that
 * lives 100 s or more has not, whichever clock a backend judges by. */
static apr_time_t SC_T0;

static int sc_setup(void **state)
{
    const char *err = NULL;
    (void)state;
    SC_T0 = SC_SEC(apr_time_sec(apr_time_now()) - 30);
    sc_params = sc_target->create(pool, apr_psprintf(pool, "t%d", ++sc_seq));
    if (us_store_configure(pool, sc_target->backend->driver, sc_params, &sc_cfg, &err) != US_DB_OK)
        fail_msg("configure %s: %s", sc_params, err);
    if (us_store_migrate(sc_cfg, pool, &err) != US_DB_OK)
        fail_msg("migrate %s: %s", sc_params, err);
    /* migrating again is a no-op */
    if (us_store_migrate(sc_cfg, pool, &err) != US_DB_OK)
        fail_msg("migrate again %s: %s", sc_params, err);
    return 0;
}

static int sc_teardown(void **state)
{
    (void)state;
    sc_target->destroy(pool, sc_params);
    return 0;
}

static us_db *sc_open(apr_pool_t *p)
{
    us_db *db = NULL;
    const char *err = NULL;
    if (us_db_open(p, sc_cfg, &db, &err) != US_DB_OK)
        fail_msg("open: %s", err);
    return db;
}

static const char *sc_uuid(apr_pool_t *p, int n)
{
    return apr_psprintf(p, "00000000-0000-4000-8000-%012d", n);
}

/* The lifetime (s) of a session a test wants expired soon after it is
 * made: 1 s after SC_T0 (expired by the store's clock, 30 s later), or 0
 * on a store that writes its own clock's time at the insert (expired by
 * its next statement). */
#define SC_QUICK (sc_target->own_clock ? 0 : 1)

static us_session sc_session(const char *id, const char *ws, const char *user, apr_time_t created,
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
    s.expires_at = created + SC_SEC(lifetime);
    return s;
}

/* upload n of a session (a sidecar when is_meta), committed at now */
static us_db_rc sc_upload_rec(us_db *db, const char *session_id, const char *name, int n,
                              int is_meta, apr_time_t now, const char **old_blob)
{
    us_upload_record u;
    memset(&u, 0, sizeof(u));
    u.session_id = session_id;
    u.name = name;
    u.blob = apr_psprintf(pool, "blob-%d", n);
    u.sha256 = "00";
    u.file_ingestion_id = sc_uuid(pool, 900000 + n);
    u.size = 1;
    u.is_meta = is_meta;
    u.uploaded_at = SC_T0 + n;
    return us_upload_commit(db, pool, &u, now, old_blob);
}

static us_db_rc sc_upload_at(us_db *db, const char *session_id, const char *name, int n,
                             apr_time_t now, const char **old_blob)
{
    return sc_upload_rec(db, session_id, name, n, 0, now, old_blob);
}

static us_db_rc sc_upload(us_db *db, const char *session_id, const char *name, int n,
                          const char **old_blob)
{
    return sc_upload_at(db, session_id, name, n, SC_T0, old_blob);
}

/* ---- sessions -------------------------------------------------------------------- */

/* The lists by offset, as most tests read them. */
static us_db_rc sc_session_list(us_db *db, const char *ws, int is_expired, long long limit,
                                long long offset, apr_time_t now, apr_array_header_t **rows,
                                long long *total)
{
    us_page pg = { limit, offset, NULL, 0 };
    int has_more = -1;
    us_db_rc rc = us_session_list(db, pool, ws, is_expired, &pg, now, rows, total, &has_more);
    if (rc == US_DB_OK)
        assert_int_equal(has_more, offset + (*rows)->nelts < *total);
    return rc;
}

static us_db_rc sc_files_list(us_db *db, const char *sid, const char *status, long long limit,
                              long long offset, apr_array_header_t **rows, long long *total)
{
    us_page pg = { limit, offset, NULL, 0 };
    int has_more = -1;
    us_db_rc rc = us_session_files_list(db, pool, sid, status, &pg, rows, total, &has_more);
    if (rc == US_DB_OK)
        assert_int_equal(has_more, offset + (*rows)->nelts < *total);
    return rc;
}

static void sc_insert_get_close(void **state)
{
    us_db *db = sc_open(pool);
    us_session s = sc_session(sc_uuid(pool, 1), "ws", "u1", SC_T0, 100), got;
    (void)state;
    assert_int_equal(us_session_insert(db, pool, &s, 10, SC_T0), US_DB_OK);
    assert_int_equal(us_session_get(db, pool, "ws", s.id, SC_T0, &got), US_DB_OK);
    assert_string_equal(got.id, s.id);
    assert_string_equal(got.status, "OPEN");
    assert_string_equal(got.write_mode, "OVERWRITE");
    assert_string_equal(got.family_name, "O'Brien; DROP TABLE us_sessions;--");
    assert_int_equal(got.parallel, 1);
    /* the times stored, handed back by the insert: the caller's, or the
     * store's clock at the insert (sc_created_on_the_store_clock) */
    assert_true(got.created_at == s.created_at);
    assert_true(got.expires_at == s.created_at + SC_SEC(100));
    if (!sc_target->own_clock)
        assert_true(s.created_at == SC_T0);
    assert_int_equal(got.uploaded_files + got.finished_files + got.failed_files, 0);
    assert_int_equal(us_session_by_id(db, pool, s.id, SC_T0, &got), US_DB_OK);
    assert_string_equal(got.workspace, "ws");

    /* another workspace does not see it */
    assert_int_equal(us_session_get(db, pool, "other", s.id, SC_T0, &got), US_DB_NOTFOUND);
    assert_int_equal(us_session_close(db, pool, "other", s.id, SC_T0), US_DB_NOTFOUND);

    assert_int_equal(us_session_close(db, pool, "ws", s.id, SC_T0 + 1), US_DB_OK);
    assert_int_equal(us_session_close(db, pool, "ws", s.id, SC_T0 + 2), US_DB_CONFLICT);
    assert_int_equal(us_session_get(db, pool, "ws", s.id, SC_T0, &got), US_DB_OK);
    assert_string_equal(got.status, "CLOSED");
    assert_int_equal(us_session_close(db, pool, "ws", "nope", SC_T0), US_DB_NOTFOUND);
    us_db_close(db);
}

static void sc_expiry_is_derived(void **state)
{
    us_db *db = sc_open(pool);
    us_session s = sc_session(sc_uuid(pool, 2), "ws-exp", "u2", SC_T0, SC_QUICK), got;
    (void)state;
    assert_int_equal(us_session_insert(db, pool, &s, 10, SC_T0), US_DB_OK);
    assert_int_equal(us_session_get(db, pool, "ws-exp", s.id, SC_T0 + SC_SEC(1) - 1, &got),
                     US_DB_OK);
    /* a store with its own clock (30 s later) has seen it expire */
    assert_string_equal(got.status, sc_target->own_clock ? "EXPIRED" : "OPEN");
    assert_int_equal(us_session_get(db, pool, "ws-exp", s.id, SC_T0 + SC_SEC(1), &got), US_DB_OK);
    assert_string_equal(got.status, "EXPIRED");
    /* an expired session can be neither closed nor uploaded to */
    assert_int_equal(us_session_close(db, pool, "ws-exp", s.id, SC_T0 + SC_SEC(2)), US_DB_CONFLICT);
    us_db_close(db);
}

static void sc_open_limit(void **state)
{
    us_db *db = sc_open(pool);
    (void)state;
    for (int i = 0; i < 3; i++) {
        us_session s = sc_session(sc_uuid(pool, 100 + i), "ws-lim", "u3", SC_T0, 100);
        assert_int_equal(us_session_insert(db, pool, &s, 3, SC_T0), US_DB_OK);
    }
    us_session s = sc_session(sc_uuid(pool, 199), "ws-lim", "u3", SC_T0, 100);
    assert_int_equal(us_session_insert(db, pool, &s, 3, SC_T0), US_DB_LIMIT);
    /* another user is not limited by u3's sessions */
    us_session o = sc_session(sc_uuid(pool, 198), "ws-lim", "u4", SC_T0, 100);
    assert_int_equal(us_session_insert(db, pool, &o, 3, SC_T0), US_DB_OK);
    /* closing one frees a slot; so does expiry, swept or not */
    assert_int_equal(us_session_close(db, pool, "ws-lim", sc_uuid(pool, 100), SC_T0), US_DB_OK);
    assert_int_equal(us_session_insert(db, pool, &s, 3, SC_T0), US_DB_OK);
    us_session later = sc_session(sc_uuid(pool, 197), "ws-lim", "u3", SC_T0, 100);
    assert_int_equal(us_session_insert(db, pool, &later, 3, SC_T0), US_DB_LIMIT);
    /* a caller whose clock is past the three's expires_at: by a store's
     * own clock they have 70 s to live */
    assert_int_equal(us_session_insert(db, pool, &later, 3, SC_T0 + SC_SEC(100)),
                     sc_target->own_clock ? US_DB_LIMIT : US_DB_OK);
    us_db_close(db);
}

/* A backend with its own clock judges every expiry by it: callers whose
 * clocks run a day ahead or behind get the store's verdict on reads,
 * lists, the open-session limit, the overview, uploads, closes and aborts. */
static void sc_expiry_on_the_store_clock(void **state)
{
    const apr_time_t ahead = SC_T0 + SC_SEC(86400), behind = SC_T0 - SC_SEC(86400);
    us_session gone = sc_session(sc_uuid(pool, 40), "ws-clock", "u-clock", SC_T0, SC_QUICK);
    us_session live = sc_session(sc_uuid(pool, 41), "ws-clock", "u-clock", SC_T0, 100);
    us_session live2 = sc_session(sc_uuid(pool, 42), "ws-clock", "u-clock", SC_T0, 100);
    us_session more = sc_session(sc_uuid(pool, 43), "ws-clock", "u-clock", SC_T0, 100), got;
    apr_array_header_t *rows;
    long long total = -1;
    us_store_overview o;
    const char *old = NULL;
    (void)state;
    if (!sc_target->own_clock)
        return; /* the caller's clock is the store's: sc_expiry_is_derived */
    us_db *db = sc_open(pool);
    assert_int_equal(us_session_insert(db, pool, &gone, 2, behind), US_DB_OK);
    assert_int_equal(us_session_insert(db, pool, &live, 2, behind), US_DB_OK);
    /* gone has expired: its slot is free for a caller that thinks it lives */
    assert_int_equal(us_session_insert(db, pool, &live2, 2, behind), US_DB_OK);
    /* live and live2 have not: no slot for a caller that thinks them expired */
    assert_int_equal(us_session_insert(db, pool, &more, 2, ahead), US_DB_LIMIT);

    assert_int_equal(us_session_get(db, pool, "ws-clock", gone.id, behind, &got), US_DB_OK);
    assert_string_equal(got.status, "EXPIRED");
    assert_int_equal(us_session_by_id(db, pool, gone.id, behind, &got), US_DB_OK);
    assert_string_equal(got.status, "EXPIRED");
    assert_int_equal(us_session_get(db, pool, "ws-clock", live.id, ahead, &got), US_DB_OK);
    assert_string_equal(got.status, "OPEN");
    assert_int_equal(us_session_by_id(db, pool, live.id, ahead, &got), US_DB_OK);
    assert_string_equal(got.status, "OPEN");

    assert_int_equal(sc_session_list(db, "ws-clock", 1, 10, 0, behind, &rows, &total), US_DB_OK);
    assert_int_equal(total, 1);
    assert_string_equal(APR_ARRAY_IDX(rows, 0, us_session).id, gone.id);
    assert_int_equal(sc_session_list(db, "ws-clock", 0, 10, 0, ahead, &rows, &total), US_DB_OK);
    assert_int_equal(total, 2);
    assert_int_equal(rows->nelts, 2);
    for (int i = 0; i < rows->nelts; i++)
        assert_string_equal(APR_ARRAY_IDX(rows, i, us_session).status, "OPEN");
    us_page pg = { 10, 0, live2.id, 0 };
    int has_more = -1;
    assert_int_equal(us_session_list(db, pool, "ws-clock", 0, &pg, ahead, &rows, &total,
                                     &has_more), US_DB_OK);
    assert_int_equal(rows->nelts, 1);
    assert_string_equal(APR_ARRAY_IDX(rows, 0, us_session).id, live.id);

    assert_int_equal(us_store_overview_read(db, pool, behind, &o), US_DB_OK);
    assert_int_equal(o.open, 2);
    assert_int_equal(o.expired, 1);
    assert_int_equal(us_store_overview_read(db, pool, ahead, &o), US_DB_OK);
    assert_int_equal(o.open, 2);
    assert_int_equal(o.expired, 1);

    assert_int_equal(sc_upload_at(db, gone.id, "a.txt", 1, behind, &old), US_DB_CONFLICT);
    assert_int_equal(sc_upload_at(db, live.id, "a.txt", 2, ahead, &old), US_DB_OK);
    assert_int_equal(us_session_close(db, pool, "ws-clock", gone.id, behind), US_DB_CONFLICT);
    assert_int_equal(us_session_abort(db, pool, "ws-clock", gone.id, behind), US_DB_CONFLICT);
    assert_int_equal(us_session_close(db, pool, "ws-clock", live.id, ahead), US_DB_OK);
    assert_int_equal(us_session_abort(db, pool, "ws-clock", live2.id, ahead), US_DB_OK);
    us_db_close(db);
}

/* The times a create stores: the caller's on a store judging by the
 * caller's clock; else the store's clock at the insert and the lifetime
 * asked, whatever the caller's clock says (a day ahead here), so a node's
 * skewed clock makes no session expire early or late. The insert hands
 * back what it stored; reads give the same. */
static void sc_created_on_the_store_clock(void **state)
{
    const apr_time_t ahead = apr_time_now() + SC_SEC(86400);
    us_session s = sc_session(sc_uuid(pool, 45), "ws-made", "u-made", ahead, 100), got;
    apr_array_header_t *rows;
    long long total = -1;
    (void)state;
    us_db *db = sc_open(pool);
    apr_time_t before = apr_time_now();
    assert_int_equal(us_session_insert(db, pool, &s, 10, ahead), US_DB_OK);
    apr_time_t after = apr_time_now();
    if (sc_target->own_clock) {
        /* the store runs on this machine: its clock is this one's; a
         * second of slack for its rounding and a loaded machine */
        assert_true(s.created_at >= before - SC_SEC(1) && s.created_at <= after + SC_SEC(1));
    }
    else
        assert_true(s.created_at == ahead);
    assert_true(s.expires_at == s.created_at + SC_SEC(100));
    assert_int_equal(us_session_get(db, pool, "ws-made", s.id, ahead, &got), US_DB_OK);
    assert_true(got.created_at == s.created_at);
    assert_true(got.expires_at == s.expires_at);
    assert_int_equal(sc_session_list(db, "ws-made", -1, 10, 0, ahead, &rows, &total), US_DB_OK);
    assert_int_equal(total, 1);
    assert_true(APR_ARRAY_IDX(rows, 0, us_session).expires_at == s.expires_at);
    /* a node a day behind: by the store's clock its session lives 100 s */
    us_session b = sc_session(sc_uuid(pool, 46), "ws-made", "u-made", before - SC_SEC(86400), 100);
    assert_int_equal(us_session_insert(db, pool, &b, 10, before - SC_SEC(86400)), US_DB_OK);
    assert_int_equal(us_session_get(db, pool, "ws-made", b.id, apr_time_now(), &got), US_DB_OK);
    assert_string_equal(got.status, sc_target->own_clock ? "OPEN" : "EXPIRED");
    assert_true(got.expires_at == b.expires_at);
    us_db_close(db);
}

/* The close's time, which orders a workspace's serial ingestion: on a
 * store with its own clock, that clock's, whatever the closing node's says
 * (a minute ahead here), so sessions closed on several nodes are ingested
 * in the order they were closed. */
static void sc_closed_on_the_store_clock(void **state)
{
    const apr_time_t now = apr_time_now(), ahead = now + SC_SEC(60);
    us_session a = sc_session(sc_uuid(pool, 47), "ws-closing", "u-closing", now, 3600);
    us_session b = sc_session(sc_uuid(pool, 48), "ws-closing", "u-closing", now, 3600), got, c;
    (void)state;
    a.parallel = b.parallel = 0; /* one at a time, in closing order */
    us_db *db = sc_open(pool);
    assert_int_equal(us_session_insert(db, pool, &a, 10, now), US_DB_OK);
    assert_int_equal(us_session_insert(db, pool, &b, 10, now), US_DB_OK);
    const char *old;
    assert_int_equal(sc_upload_rec(db, a.id, "a.txt", 4701, 0, now, &old), US_DB_OK);
    assert_int_equal(sc_upload_rec(db, b.id, "b.txt", 4801, 0, now, &old), US_DB_OK);
    apr_time_t before = apr_time_now();
    assert_int_equal(us_session_close(db, pool, "ws-closing", a.id, ahead), US_DB_OK); /* first */
    assert_int_equal(us_session_close(db, pool, "ws-closing", b.id, apr_time_now()), US_DB_OK);
    apr_time_t after = apr_time_now();
    assert_int_equal(us_session_get(db, pool, "ws-closing", a.id, after, &got), US_DB_OK);
    if (sc_target->own_clock)
        assert_true(got.closed_at >= before - SC_SEC(1) && got.closed_at <= after + SC_SEC(1));
    else
        assert_true(got.closed_at == ahead);
    assert_int_equal(us_ingest_claim(db, pool, "w1", ahead + SC_SEC(1), SC_T0, &c), US_DB_OK);
    assert_string_equal(c.id, sc_target->own_clock ? a.id : b.id);
    us_db_close(db);
}

static void sc_list_paging_and_filters(void **state)
{
    us_db *db = sc_open(pool);
    apr_array_header_t *rows;
    long long total;
    (void)state;
    /* 5 sessions, created one second apart; #1 and #3 expire quickly */
    for (int i = 0; i < 5; i++) {
        us_session s = sc_session(sc_uuid(pool, 200 + i), "ws-list", "u5", SC_T0 + SC_SEC(i),
                                  (i == 1 || i == 3) ? SC_QUICK : 1000);
        assert_int_equal(us_session_insert(db, pool, &s, 100, SC_T0), US_DB_OK);
    }
    assert_int_equal(us_session_close(db, pool, "ws-list", sc_uuid(pool, 200), SC_T0), US_DB_OK);
    apr_time_t now = SC_T0 + SC_SEC(10);

    assert_int_equal(sc_session_list(db, "ws-list", -1, 2, 0, now, &rows, &total), US_DB_OK);
    assert_int_equal(total, 5);
    assert_int_equal(rows->nelts, 2);
    /* newest first */
    assert_string_equal(APR_ARRAY_IDX(rows, 0, us_session).id, sc_uuid(pool, 204));
    assert_string_equal(APR_ARRAY_IDX(rows, 1, us_session).id, sc_uuid(pool, 203));
    assert_string_equal(APR_ARRAY_IDX(rows, 1, us_session).status, "EXPIRED");
    /* an item holds what the list shows (API.md), nothing more */
    const us_session *item = &APR_ARRAY_IDX(rows, 0, us_session);
    assert_string_equal(item->user_id, "u5");
    assert_string_equal(item->given_name, "Ada");
    assert_string_equal(item->family_name, "O'Brien; DROP TABLE us_sessions;--");
    assert_string_equal(item->write_mode, "OVERWRITE");
    assert_int_equal(item->parallel, 1);
    assert_string_equal(item->status, "OPEN");
    /* a store with its own clock wrote its own time at the insert */
    if (!sc_target->own_clock)
        assert_int_equal(item->created_at, SC_T0 + SC_SEC(4));
    assert_int_equal(item->expires_at, item->created_at + SC_SEC(1000));
    assert_null(item->workspace);

    assert_int_equal(sc_session_list(db, "ws-list", -1, 2, 4, now, &rows, &total), US_DB_OK);
    assert_int_equal(rows->nelts, 1);
    assert_string_equal(APR_ARRAY_IDX(rows, 0, us_session).status, "CLOSED");

    assert_int_equal(sc_session_list(db, "ws-list", 1, 10, 0, now, &rows, &total), US_DB_OK);
    assert_int_equal(total, 2);
    assert_int_equal(rows->nelts, 2);
    for (int i = 0; i < rows->nelts; i++)
        assert_string_equal(APR_ARRAY_IDX(rows, i, us_session).status, "EXPIRED");

    assert_int_equal(sc_session_list(db, "ws-list", 0, 10, 0, now, &rows, &total), US_DB_OK);
    assert_int_equal(total, 3);
    for (int i = 0; i < rows->nelts; i++)
        assert_string_not_equal(APR_ARRAY_IDX(rows, i, us_session).status, "EXPIRED");

    assert_int_equal(sc_session_list(db, "ws-none", -1, 10, 0, now, &rows, &total), US_DB_OK);
    assert_int_equal(total, 0);
    assert_int_equal(rows->nelts, 0);
    us_db_close(db);
}

/* Rows of a list page, as ids, for comparison: "a,b,c". */
static const char *sc_page_ids(const apr_array_header_t *rows, int files)
{
    const char *out = "";
    for (int i = 0; i < rows->nelts; i++) {
        const char *id = files ? APR_ARRAY_IDX(rows, i, us_session_file_row).name
                               : APR_ARRAY_IDX(rows, i, us_session).id + 24;
        out = apr_pstrcat(pool, out, i ? "," : "", id, NULL);
    }
    return out;
}

#define SC_SESSION_PAGE(db, ws, filter, cursor, before, limit, want, want_more)               \
    do {                                                                                   \
        us_page pg_ = { (limit), 0, (cursor), (before) };                                  \
        apr_array_header_t *rows_ = NULL;                                                  \
        long long total_ = -1;                                                             \
        int more_ = -1;                                                                    \
        assert_int_equal(us_session_list((db), pool, (ws), (filter), &pg_, now, &rows_,   \
                                         &total_, &more_), US_DB_OK);                      \
        assert_string_equal(sc_page_ids(rows_, 0), (want));                                \
        assert_int_equal(more_, (want_more));                                              \
        assert_int_equal(total_, (filter) < 0 ? 5 : (filter) ? 2 : 3);                     \
    } while (0)

/* before/after: the rows next to a session of the list, in the list's
 * order (created_at, then id, newest first), one row more read to tell
 * has_more; an unknown, aborted or foreign id gives an empty page. */
static void sc_list_cursors(void **state)
{
    us_db *db = sc_open(pool);
    (void)state;
    /* 300/301 and 302/303 share a creation time: the id breaks the tie;
     * 301 and 303 expire quickly */
    for (int i = 0; i < 5; i++) {
        us_session s = sc_session(sc_uuid(pool, 300 + i), "ws-cur", "u6", SC_T0 + SC_SEC(i / 2),
                                  (i == 1 || i == 3) ? SC_QUICK : 1000);
        assert_int_equal(us_session_insert(db, pool, &s, 100, SC_T0), US_DB_OK);
    }
    us_session other = sc_session(sc_uuid(pool, 310), "ws-cur-other", "u6", SC_T0, 1000);
    us_session gone = sc_session(sc_uuid(pool, 305), "ws-cur", "u6", SC_T0 + SC_SEC(5), 1000);
    assert_int_equal(us_session_insert(db, pool, &other, 100, SC_T0), US_DB_OK);
    assert_int_equal(us_session_insert(db, pool, &gone, 100, SC_T0), US_DB_OK);
    assert_int_equal(us_session_abort(db, pool, "ws-cur", gone.id, SC_T0), US_DB_OK);
    apr_time_t now = SC_T0 + SC_SEC(10);
    const char *id300 = sc_uuid(pool, 300), *id302 = sc_uuid(pool, 302);
    const char *id303 = sc_uuid(pool, 303), *id304 = sc_uuid(pool, 304);

    SC_SESSION_PAGE(db, "ws-cur", -1, NULL, 0, 10, "000000000304,000000000303,000000000302,"
                    "000000000301,000000000300", 0);
    SC_SESSION_PAGE(db, "ws-cur", -1, id304, 0, 2, "000000000303,000000000302", 1);
    SC_SESSION_PAGE(db, "ws-cur", -1, id302, 0, 2, "000000000301,000000000300", 0);
    SC_SESSION_PAGE(db, "ws-cur", -1, id300, 0, 2, "", 0);
    SC_SESSION_PAGE(db, "ws-cur", -1, id300, 1, 2, "000000000302,000000000301", 1);
    SC_SESSION_PAGE(db, "ws-cur", -1, id302, 1, 5, "000000000304,000000000303", 0);
    SC_SESSION_PAGE(db, "ws-cur", -1, id304, 1, 5, "", 0);
    /* a cursor the filter leaves out still marks the place */
    SC_SESSION_PAGE(db, "ws-cur", 0, id303, 0, 10, "000000000302,000000000300", 0);
    SC_SESSION_PAGE(db, "ws-cur", 0, id303, 1, 10, "000000000304", 0);
    SC_SESSION_PAGE(db, "ws-cur", 1, id304, 0, 1, "000000000303", 1);
    /* unknown, aborted, another workspace's: empty */
    SC_SESSION_PAGE(db, "ws-cur", -1, sc_uuid(pool, 399), 0, 10, "", 0);
    SC_SESSION_PAGE(db, "ws-cur", -1, gone.id, 1, 10, "", 0);
    SC_SESSION_PAGE(db, "ws-cur", -1, other.id, 0, 10, "", 0);

    /* a session's files: oldest upload first, cursor = file_ingestion_id */
    us_session a = sc_session(sc_uuid(pool, 320), "ws-cur", "u6", SC_T0, 1000);
    us_session b = sc_session(sc_uuid(pool, 321), "ws-cur", "u6", SC_T0, 1000);
    const char *old = NULL;
    assert_int_equal(us_session_insert(db, pool, &a, 100, SC_T0), US_DB_OK);
    assert_int_equal(us_session_insert(db, pool, &b, 100, SC_T0), US_DB_OK);
    for (int n = 1; n <= 5; n++)
        assert_int_equal(sc_upload(db, a.id, apr_psprintf(pool, "f%d", n), n, &old), US_DB_OK);
    assert_int_equal(sc_upload(db, b.id, "g6", 6, &old), US_DB_OK);
    struct { const char *status, *cursor; int before; long long limit; const char *want;
             int more; } cases[] = {
        { NULL, sc_uuid(pool, 900001), 0, 2, "f2,f3", 1 },
        { NULL, sc_uuid(pool, 900003), 0, 2, "f4,f5", 0 },
        { NULL, sc_uuid(pool, 900005), 1, 2, "f3,f4", 1 },
        { NULL, sc_uuid(pool, 900002), 1, 2, "f1", 0 },
        { "PENDING", sc_uuid(pool, 900004), 1, 10, "f1,f2,f3", 0 },
        { "FINISHED", sc_uuid(pool, 900001), 0, 10, "", 0 },
        { NULL, sc_uuid(pool, 900006), 0, 10, "", 0 }, /* another session's file */
        { NULL, sc_uuid(pool, 999999), 1, 10, "", 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        us_page pg = { cases[i].limit, 0, cases[i].cursor, cases[i].before };
        apr_array_header_t *rows = NULL;
        long long total = -1;
        int more = -1;
        assert_int_equal(us_session_files_list(db, pool, a.id, cases[i].status, &pg, &rows,
                                               &total, &more), US_DB_OK);
        assert_string_equal(sc_page_ids(rows, 1), cases[i].want);
        assert_int_equal(more, cases[i].more);
        assert_int_equal(total, cases[i].status && strcmp(cases[i].status, "FINISHED") == 0
                                    ? 0 : 5);
    }
    us_db_close(db);
}

/* ---- concurrency: every thread has its own connection ------------------------------- */

#define SC_THREADS 8
static int sc_results[SC_THREADS][8];

typedef void sc_work_fn(us_db *db, apr_pool_t *p, int i);

typedef struct {
    sc_work_fn *fn;
    int i;
} sc_job;

static void *APR_THREAD_FUNC sc_thread(apr_thread_t *t, void *data)
{
    sc_job *job = data;
    apr_pool_t *p;
    us_db *db = NULL;
    const char *err = NULL;
    apr_pool_create_unmanaged_ex(&p, NULL, NULL);
    if (us_db_open(p, sc_cfg, &db, &err) == US_DB_OK) {
        job->fn(db, p, job->i);
        us_db_close(db);
    }
    else {
        sc_results[job->i][0] = -1;
    }
    apr_pool_destroy(p);
    (void)t;
    return NULL;
}

static void sc_run_threads(sc_work_fn *fn)
{
    apr_thread_t *th[SC_THREADS];
    sc_job jobs[SC_THREADS];
    memset(sc_results, 0, sizeof(sc_results));
    for (int i = 0; i < SC_THREADS; i++) {
        jobs[i].fn = fn;
        jobs[i].i = i;
        assert_int_equal(apr_thread_create(&th[i], NULL, sc_thread, &jobs[i], pool), APR_SUCCESS);
    }
    for (int i = 0; i < SC_THREADS; i++) {
        apr_status_t rv;
        apr_thread_join(&rv, th[i]);
    }
}

static void sc_close_work(us_db *db, apr_pool_t *p, int i)
{
    sc_results[i][0] = us_session_close(db, p, "ws-race", sc_uuid(p, 300), SC_T0);
}

/* Of many concurrent closes exactly one wins. */
static void sc_concurrent_close(void **state)
{
    us_db *db = sc_open(pool);
    us_session s = sc_session(sc_uuid(pool, 300), "ws-race", "u6", SC_T0, 100);
    int ok = 0, conflict = 0;
    (void)state;
    assert_int_equal(us_session_insert(db, pool, &s, 10, SC_T0), US_DB_OK);
    us_db_close(db);
    sc_run_threads(sc_close_work);
    for (int i = 0; i < SC_THREADS; i++) {
        ok += sc_results[i][0] == US_DB_OK;
        conflict += sc_results[i][0] == US_DB_CONFLICT;
    }
    assert_int_equal(ok, 1);
    assert_int_equal(conflict, SC_THREADS - 1);
}

#define SC_PER_THREAD 5
#define SC_LIMIT 13

static void sc_insert_work(us_db *db, apr_pool_t *p, int i)
{
    for (int k = 0; k < SC_PER_THREAD; k++) {
        us_session s = sc_session(sc_uuid(p, 1000 + i * SC_PER_THREAD + k), "ws-racer", "racer",
                                  SC_T0, 100);
        us_db_rc rc = us_session_insert(db, p, &s, SC_LIMIT, SC_T0);
        sc_results[i][rc == US_DB_OK ? 0 : rc == US_DB_LIMIT ? 1 : 2]++;
    }
}

/* Concurrent creates for one user never exceed the open-session limit. */
static void sc_concurrent_inserts_keep_the_limit(void **state)
{
    int ok = 0, limited = 0, other = 0;
    (void)state;
    sc_run_threads(sc_insert_work);
    for (int i = 0; i < SC_THREADS; i++) {
        ok += sc_results[i][0];
        limited += sc_results[i][1];
        other += sc_results[i][2];
    }
    assert_int_equal(other, 0);
    assert_int_equal(ok, SC_LIMIT);
    assert_int_equal(limited, SC_THREADS * SC_PER_THREAD - SC_LIMIT);
}

/* ---- uploads, close and expiry --------------------------------------------------- */

static void sc_upload_vs_close(void **state)
{
    us_db *db = sc_open(pool);
    us_session s = sc_session(sc_uuid(pool, 400), "ws-up", "u7", SC_T0, 100), got;
    const char *old = "x";
    apr_array_header_t *rows;
    long long total;
    (void)state;
    assert_int_equal(us_session_insert(db, pool, &s, 10, SC_T0), US_DB_OK);
    assert_int_equal(sc_upload(db, s.id, "a.txt", 1, &old), US_DB_OK);
    assert_null(old);
    /* the same name again: replaced, the old blob handed back once */
    assert_int_equal(sc_upload(db, s.id, "a.txt", 2, &old), US_DB_OK);
    assert_string_equal(old, "blob-1");
    assert_int_equal(sc_upload(db, s.id, "b.txt", 3, &old), US_DB_OK);
    assert_int_equal(us_upload_blob(db, pool, s.id, "a.txt", &old), US_DB_OK);
    assert_string_equal(old, "blob-2");
    assert_int_equal(us_upload_blob(db, pool, s.id, "none", &old), US_DB_OK);
    assert_null(old);
    assert_int_equal(us_session_close(db, pool, "ws-up", s.id, SC_T0 + 1), US_DB_OK);
    /* after the close: refused, nothing counted */
    assert_int_equal(sc_upload(db, s.id, "c.txt", 4, &old), US_DB_CONFLICT);
    assert_int_equal(us_session_get(db, pool, "ws-up", s.id, SC_T0 + 2, &got), US_DB_OK);
    assert_int_equal(got.uploaded_files, 2);
    assert_int_equal(sc_files_list(db, s.id, NULL, 10, 0, &rows, &total), US_DB_OK);
    assert_int_equal(total, 2);
    assert_string_equal(APR_ARRAY_IDX(rows, 0, us_session_file_row).name, "a.txt");
    assert_string_equal(APR_ARRAY_IDX(rows, 0, us_session_file_row).status, "PENDING");
    assert_int_equal(sc_files_list(db, s.id, "FINISHED", 10, 0, &rows, &total), US_DB_OK);
    assert_int_equal(total, 0);
    us_db_close(db);
}

static us_db_rc sc_upload_meta(us_db *db, const char *session_id, const char *name, int n)
{
    const char *old = NULL;
    return sc_upload_rec(db, session_id, name, n, 1, SC_T0, &old);
}

/* The pending row of name, failing when there is none. */
static const us_pending *sc_pending_named(const apr_array_header_t *rows, const char *name)
{
    for (int i = 0; i < rows->nelts; i++)
        if (strcmp(APR_ARRAY_IDX(rows, i, us_pending).name, name) == 0)
            return &APR_ARRAY_IDX(rows, i, us_pending);
    fail_msg("%s is not pending", name);
    return NULL;
}

/* A pending file comes with its sidecar's blob (NAME.meta.json of its own
 * session, the latest one uploaded), NULL when it has none; sidecars are
 * not pending themselves. */
static void sc_pending_with_sidecars(void **state)
{
    us_db *db = sc_open(pool);
    us_session s = sc_session(sc_uuid(pool, 470), "ws-meta", "u-meta", SC_T0, 100);
    us_session o = sc_session(sc_uuid(pool, 471), "ws-meta", "u-meta", SC_T0, 100);
    const char *old = NULL;
    apr_array_header_t *rows;
    (void)state;
    assert_int_equal(us_session_insert(db, pool, &s, 10, SC_T0), US_DB_OK);
    assert_int_equal(us_session_insert(db, pool, &o, 10, SC_T0), US_DB_OK);
    assert_int_equal(sc_upload(db, s.id, "a.txt", 1, &old), US_DB_OK);
    assert_int_equal(sc_upload_meta(db, s.id, "a.txt.meta.json", 2), US_DB_OK);
    assert_int_equal(sc_upload(db, s.id, "b 'x'%_.txt", 3, &old), US_DB_OK);
    assert_int_equal(sc_upload_meta(db, o.id, "b 'x'%_.txt.meta.json", 4), US_DB_OK);
    assert_int_equal(sc_upload(db, s.id, "c.txt", 5, &old), US_DB_OK);
    assert_int_equal(sc_upload_meta(db, s.id, "c.txt.meta.json", 6), US_DB_OK);
    assert_int_equal(sc_upload_meta(db, s.id, "c.txt.meta.json", 7), US_DB_OK);
    /* a name that is only the suffix is a raw file */
    assert_int_equal(sc_upload(db, s.id, ".meta.json", 8, &old), US_DB_OK);
    assert_int_equal(sc_upload_meta(db, s.id, ".meta.json.meta.json", 9), US_DB_OK);
    assert_int_equal(sc_upload_meta(db, s.id, "orphan.meta.json", 10), US_DB_OK);
    assert_int_equal(us_ingest_pending(db, pool, s.id, "", 10, &rows), US_DB_OK);
    assert_int_equal(rows->nelts, 4);
    const us_pending *a = sc_pending_named(rows, "a.txt");
    assert_string_equal(a->blob, "blob-1");
    assert_string_equal(a->meta_blob, "blob-2");
    assert_null(sc_pending_named(rows, "b 'x'%_.txt")->meta_blob);
    assert_string_equal(sc_pending_named(rows, "c.txt")->meta_blob, "blob-7");
    assert_string_equal(sc_pending_named(rows, ".meta.json")->meta_blob, "blob-9");
    assert_int_equal(us_ingest_pending(db, pool, o.id, "", 10, &rows), US_DB_OK);
    assert_int_equal(rows->nelts, 0);
    /* in pages, by name, each after the last name of the one before */
    static const char *const order[] = { ".meta.json", "a.txt", "b 'x'%_.txt", "c.txt" };
    const char *after = "";
    for (int page = 0; page < 2; page++) {
        assert_int_equal(us_ingest_pending(db, pool, s.id, after, 2, &rows), US_DB_OK);
        assert_int_equal(rows->nelts, 2);
        for (int i = 0; i < 2; i++)
            assert_string_equal(APR_ARRAY_IDX(rows, i, us_pending).name, order[2 * page + i]);
        after = APR_ARRAY_IDX(rows, 1, us_pending).name;
    }
    assert_string_equal(APR_ARRAY_IDX(rows, 1, us_pending).meta_blob, "blob-7");
    assert_int_equal(us_ingest_pending(db, pool, s.id, after, 2, &rows), US_DB_OK);
    assert_int_equal(rows->nelts, 0);
    us_db_close(db);
}

/* An abort discards the session and its uploads: gone for every reader,
 * its slot free, later uploads refused, a clear of its bytes queued. */
static void sc_session_abort(void **state)
{
    us_db *db = sc_open(pool);
    us_session s = sc_session(sc_uuid(pool, 450), "ws-ab", "u-ab", SC_T0, 100), got;
    us_session c = sc_session(sc_uuid(pool, 451), "ws-ab", "u-ab2", SC_T0, 100);
    us_session next = sc_session(sc_uuid(pool, 452), "ws-ab", "u-ab", SC_T0, 100);
    const char *old = NULL;
    apr_array_header_t *rows;
    long long total = -1;
    (void)state;
    assert_int_equal(us_session_insert(db, pool, &s, 1, SC_T0), US_DB_OK);
    assert_int_equal(us_session_insert(db, pool, &c, 1, SC_T0), US_DB_OK);
    assert_int_equal(us_session_insert(db, pool, &next, 1, SC_T0), US_DB_LIMIT);
    assert_int_equal(sc_upload(db, s.id, "a.txt", 1, &old), US_DB_OK);
    assert_int_equal(sc_upload(db, s.id, "a.txt.meta.json", 2, &old), US_DB_OK);
    assert_int_equal(us_session_abort(db, pool, "other", s.id, SC_T0 + 1), US_DB_NOTFOUND);
    assert_int_equal(us_session_abort(db, pool, "ws-ab", s.id, SC_T0 + 1), US_DB_OK);
    assert_int_equal(us_session_get(db, pool, "ws-ab", s.id, SC_T0 + 2, &got), US_DB_NOTFOUND);
    assert_int_equal(us_session_by_id(db, pool, s.id, SC_T0 + 2, &got), US_DB_NOTFOUND);
    assert_int_equal(sc_session_list(db, "ws-ab", -1, 10, 0, SC_T0 + 2, &rows, &total), US_DB_OK);
    assert_int_equal(total, 1);
    assert_int_equal(rows->nelts, 1);
    assert_string_equal(APR_ARRAY_IDX(rows, 0, us_session).id, c.id);
    assert_int_equal(sc_files_list(db, s.id, NULL, 10, 0, &rows, &total), US_DB_OK);
    assert_int_equal(total, 0);
    assert_int_equal(us_upload_blob(db, pool, s.id, "a.txt", &old), US_DB_OK);
    assert_null(old);
    assert_int_equal(sc_upload(db, s.id, "b.txt", 3, &old), US_DB_CONFLICT);
    assert_int_equal(us_session_abort(db, pool, "ws-ab", s.id, SC_T0 + 2), US_DB_NOTFOUND);
    assert_int_equal(us_session_close(db, pool, "ws-ab", s.id, SC_T0 + 2), US_DB_NOTFOUND);
    /* the slot is free */
    assert_int_equal(us_session_insert(db, pool, &next, 1, SC_T0 + 3), US_DB_OK);
    /* closed or expired: CONFLICT */
    assert_int_equal(us_session_close(db, pool, "ws-ab", c.id, SC_T0 + 3), US_DB_OK);
    assert_int_equal(us_session_abort(db, pool, "ws-ab", c.id, SC_T0 + 4), US_DB_CONFLICT);
    /* by a store's own clock, next has not expired */
    assert_int_equal(us_session_abort(db, pool, "ws-ab", next.id, SC_T0 + SC_SEC(200)),
                     sc_target->own_clock ? US_DB_OK : US_DB_CONFLICT);
    assert_int_equal(us_session_abort(db, pool, "ws-ab", sc_uuid(pool, 459), SC_T0), US_DB_NOTFOUND);
    /* the clear of its bytes is an ingest job with nothing pending */
    us_session claimed;
    assert_int_equal(us_ingest_claim(db, pool, "w1", SC_T0 + 5, SC_T0, &claimed), US_DB_OK);
    assert_string_equal(claimed.id, s.id);
    assert_int_equal(us_ingest_pending(db, pool, s.id, "", 10, &rows), US_DB_OK);
    assert_int_equal(rows->nelts, 0);
    assert_int_equal(us_ingest_done(db, pool, s.id, "w1"), US_DB_OK);
    us_db_close(db);
}

static void sc_abort_or_close_work(us_db *db, apr_pool_t *p, int i)
{
    sc_results[i][0] = i % 2 ? us_session_abort(db, p, "ws-race2", sc_uuid(p, 460), SC_T0)
                             : us_session_close(db, p, "ws-race2", sc_uuid(p, 460), SC_T0);
}

/* Of concurrent closes and aborts of one session exactly one wins. */
static void sc_concurrent_abort_and_close(void **state)
{
    us_db *db = sc_open(pool);
    us_session s = sc_session(sc_uuid(pool, 460), "ws-race2", "u-race2", SC_T0, 100);
    int ok = 0, lost = 0;
    (void)state;
    assert_int_equal(us_session_insert(db, pool, &s, 10, SC_T0), US_DB_OK);
    us_db_close(db);
    sc_run_threads(sc_abort_or_close_work);
    for (int i = 0; i < SC_THREADS; i++) {
        ok += sc_results[i][0] == US_DB_OK;
        /* a close after an abort finds no session; else CONFLICT */
        lost += sc_results[i][0] == US_DB_CONFLICT || sc_results[i][0] == US_DB_NOTFOUND;
    }
    assert_int_equal(ok, 1);
    assert_int_equal(lost, SC_THREADS - 1);
}

static void sc_upload_or_abort_work(us_db *db, apr_pool_t *p, int i)
{
    const char *old;
    if (i == SC_THREADS - 1) {
        sc_results[i][0] = us_session_abort(db, p, "ws-race3", sc_uuid(p, 470), SC_T0);
        return;
    }
    for (int k = 0; k < 5; k++) {
        us_upload_record u;
        memset(&u, 0, sizeof(u));
        u.session_id = sc_uuid(p, 470);
        u.name = apr_psprintf(p, "f%d-%d.txt", i, k);
        u.blob = apr_psprintf(p, "blob-%d-%d", i, k);
        u.sha256 = "00";
        u.file_ingestion_id = sc_uuid(p, 471000 + i * 10 + k);
        u.size = 1;
        u.uploaded_at = SC_T0;
        us_db_rc rc = us_upload_commit(db, p, &u, SC_T0, &old);
        sc_results[i][rc == US_DB_OK ? 1 : rc == US_DB_CONFLICT ? 2 : 3]++;
    }
}

/* Uploads racing an abort: each is committed (then discarded with the
 * session) or refused; none survives it. */
static void sc_abort_vs_uploads(void **state)
{
    us_db *db = sc_open(pool);
    us_session s = sc_session(sc_uuid(pool, 470), "ws-race3", "u-race3", SC_T0, 100);
    apr_array_header_t *rows;
    long long total = -1;
    (void)state;
    assert_int_equal(us_session_insert(db, pool, &s, 10, SC_T0), US_DB_OK);
    sc_run_threads(sc_upload_or_abort_work);
    assert_int_equal(sc_results[SC_THREADS - 1][0], US_DB_OK);
    for (int i = 0; i < SC_THREADS - 1; i++) {
        assert_int_equal(sc_results[i][3], 0);
        assert_int_equal(sc_results[i][1] + sc_results[i][2], 5);
    }
    assert_int_equal(sc_files_list(db, s.id, NULL, 100, 0, &rows, &total), US_DB_OK);
    assert_int_equal(total, 0);
    us_db_close(db);
}

#define SC_MAX_FILES 13

/* Thread i's four new names (sidecars when is_meta) into session n, each
 * counted in sc_results[i]: taken, refused at the limit, anything else. */
static void sc_capped_uploads(us_db *db, apr_pool_t *p, int i, int n, int is_meta)
{
    const char *old;
    for (int k = 0; k < 4; k++) {
        us_upload_record u;
        memset(&u, 0, sizeof(u));
        u.session_id = sc_uuid(p, n);
        u.name = apr_psprintf(p, "f%d-%d.txt%s", i, k, is_meta ? ".meta.json" : "");
        u.blob = apr_psprintf(p, "blob-%d-%d", i, k);
        u.sha256 = "00";
        u.file_ingestion_id = sc_uuid(p, (n + 1) * 1000 + i * 10 + k);
        u.size = 1;
        u.is_meta = is_meta;
        u.uploaded_at = SC_T0;
        u.max_files = SC_MAX_FILES;
        us_db_rc rc = us_upload_commit(db, p, &u, SC_T0, &old);
        sc_results[i][rc == US_DB_OK ? 0 : rc == US_DB_LIMIT ? 1 : 2]++;
    }
}

/* Runs work on SC_THREADS threads, each trying 4 new names: exactly
 * SC_MAX_FILES are taken, the rest refused with US_DB_LIMIT, none fails
 * otherwise. */
static void sc_run_capped(sc_work_fn *work)
{
    int ok = 0, limited = 0, other = 0;
    sc_run_threads(work);
    for (int i = 0; i < SC_THREADS; i++) {
        ok += sc_results[i][0];
        limited += sc_results[i][1];
        other += sc_results[i][2];
    }
    assert_int_equal(other, 0);
    assert_int_equal(ok, SC_MAX_FILES);
    assert_int_equal(limited, SC_THREADS * 4 - SC_MAX_FILES);
}

static void sc_max_files_work(us_db *db, apr_pool_t *p, int i)
{
    sc_capped_uploads(db, p, i, 480, 0);
}

/* Concurrent uploads of new names never exceed max_files; refused ones
 * count nowhere; a known name and a first sidecar are still taken at the
 * limit (sidecars are counted apart: sc_max_sidecars_per_session). */
static void sc_max_files_per_session(void **state)
{
    us_db *db = sc_open(pool);
    us_session s = sc_session(sc_uuid(pool, 480), "ws-max", "u-max", SC_T0, 100), got;
    apr_array_header_t *rows;
    long long total = -1;
    (void)state;
    assert_int_equal(us_session_insert(db, pool, &s, 10, SC_T0), US_DB_OK);
    sc_run_capped(sc_max_files_work);
    assert_int_equal(us_session_get(db, pool, "ws-max", s.id, SC_T0, &got), US_DB_OK);
    assert_int_equal(got.uploaded_files, SC_MAX_FILES);
    assert_int_equal(sc_files_list(db, s.id, NULL, 100, 0, &rows, &total), US_DB_OK);
    assert_int_equal(total, SC_MAX_FILES);
    us_upload_record u;
    const char *old = NULL;
    memset(&u, 0, sizeof(u));
    u.session_id = s.id;
    u.name = APR_ARRAY_IDX(rows, 0, us_session_file_row).name;
    u.blob = "blob-again";
    u.sha256 = "00";
    u.file_ingestion_id = sc_uuid(pool, 489001);
    u.size = 2;
    u.max_files = SC_MAX_FILES;
    assert_int_equal(us_upload_commit(db, pool, &u, SC_T0, &old), US_DB_OK);
    assert_non_null(old);
    u.name = apr_pstrcat(pool, u.name, ".meta.json", NULL);
    u.is_meta = 1;
    u.blob = "blob-meta";
    assert_int_equal(us_upload_commit(db, pool, &u, SC_T0, &old), US_DB_OK);
    u.name = "one-more.txt";
    u.is_meta = 0;
    u.blob = "blob-more";
    assert_int_equal(us_upload_commit(db, pool, &u, SC_T0, &old), US_DB_LIMIT);
    assert_int_equal(us_upload_blob(db, pool, s.id, "one-more.txt", &old), US_DB_OK);
    assert_null(old);
    assert_int_equal(us_session_get(db, pool, "ws-max", s.id, SC_T0, &got), US_DB_OK);
    assert_int_equal(got.uploaded_files, SC_MAX_FILES);
    us_db_close(db);
}

static void sc_max_sidecars_work(us_db *db, apr_pool_t *p, int i)
{
    sc_capped_uploads(db, p, i, 490, 1);
}

/* Sidecars have a bound of their own, max_files: of concurrent new sidecar
 * names exactly max_files are taken, the rest refused with US_DB_LIMIT and
 * recorded nowhere; they leave uploaded_files and the raw files' bound
 * alone; a known sidecar name is still taken at the limit. */
static void sc_max_sidecars_per_session(void **state)
{
    us_db *db = sc_open(pool);
    us_session s = sc_session(sc_uuid(pool, 490), "ws-maxmeta", "u-maxmeta", SC_T0, 100), got;
    (void)state;
    assert_int_equal(us_session_insert(db, pool, &s, 10, SC_T0), US_DB_OK);
    sc_run_capped(sc_max_sidecars_work);
    assert_int_equal(us_session_get(db, pool, "ws-maxmeta", s.id, SC_T0, &got), US_DB_OK);
    assert_int_equal(got.uploaded_files, 0);
    /* the sidecars taken: each name either recorded or refused */
    int recorded = 0;
    for (int i = 0; i < SC_THREADS; i++)
        for (int k = 0; k < 4; k++) {
            const char *blob = NULL;
            assert_int_equal(us_upload_blob(db, pool, s.id,
                                            apr_psprintf(pool, "f%d-%d.txt.meta.json", i, k),
                                            &blob),
                             US_DB_OK);
            if (blob) {
                assert_string_equal(blob, apr_psprintf(pool, "blob-%d-%d", i, k));
                recorded++;
            }
        }
    assert_int_equal(recorded, SC_MAX_FILES);
    us_upload_record u;
    const char *old = NULL, *taken = NULL;
    memset(&u, 0, sizeof(u));
    u.session_id = s.id;
    u.sha256 = "00";
    u.file_ingestion_id = sc_uuid(pool, 499001);
    u.size = 2;
    u.is_meta = 1;
    u.max_files = SC_MAX_FILES;
    /* a new sidecar name: refused, nothing recorded */
    u.name = "one-more.txt.meta.json";
    u.blob = "blob-more";
    assert_int_equal(us_upload_commit(db, pool, &u, SC_T0, &old), US_DB_LIMIT);
    assert_null(old);
    assert_int_equal(us_upload_blob(db, pool, s.id, "one-more.txt.meta.json", &old), US_DB_OK);
    assert_null(old);
    /* a sidecar name held: replaced */
    for (int i = 0; i < SC_THREADS && !taken; i++)
        for (int k = 0; k < 4 && !taken; k++) {
            const char *name = apr_psprintf(pool, "f%d-%d.txt.meta.json", i, k), *blob = NULL;
            assert_int_equal(us_upload_blob(db, pool, s.id, name, &blob), US_DB_OK);
            if (blob)
                taken = name;
        }
    assert_non_null(taken);
    u.name = taken;
    u.blob = "blob-again";
    assert_int_equal(us_upload_commit(db, pool, &u, SC_T0, &old), US_DB_OK);
    assert_non_null(old);
    assert_int_equal(us_upload_blob(db, pool, s.id, taken, &old), US_DB_OK);
    assert_string_equal(old, "blob-again");
    /* a raw file: its own bound, none held */
    u.name = "raw.txt";
    u.is_meta = 0;
    u.blob = "blob-raw";
    u.file_ingestion_id = sc_uuid(pool, 499002);
    assert_int_equal(us_upload_commit(db, pool, &u, SC_T0, &old), US_DB_OK);
    assert_null(old);
    assert_int_equal(us_session_get(db, pool, "ws-maxmeta", s.id, SC_T0, &got), US_DB_OK);
    assert_int_equal(got.uploaded_files, 1);
    /* no limit (0): a new sidecar is taken */
    u.name = "unbounded.txt.meta.json";
    u.is_meta = 1;
    u.blob = "blob-unbounded";
    u.file_ingestion_id = sc_uuid(pool, 499003);
    u.max_files = 0;
    assert_int_equal(us_upload_commit(db, pool, &u, SC_T0, &old), US_DB_OK);
    assert_null(old);
    us_db_close(db);
}

/* The sweep judges expires_at by the database's clock: the store runs on
 * this machine, so its now() is apr_time_now() here. Every other call
 * below passes SC_T0 (30 s before), a node whose clock is behind: by that
 * clock none of these sessions has expired, and the sweep still expires
 * the one past the database's now. */
static void sc_expire_sweep(void **state)
{
    us_db *db = sc_open(pool);
    apr_time_t db_now = apr_time_now();
    /* a expires 2 s from now, after its upload */
    us_session a = sc_session(sc_uuid(pool, 500), "ws-sweep", "u8", db_now, 2), got;
    us_session b = sc_session(sc_uuid(pool, 501), "ws-sweep", "u8", db_now, 120);
    const char *old;
    int n = -1;
    (void)state;
    assert_int_equal(us_session_insert(db, pool, &a, 10, SC_T0), US_DB_OK);
    assert_int_equal(us_session_insert(db, pool, &b, 10, SC_T0), US_DB_OK);
    assert_int_equal(sc_upload(db, a.id, "a.txt", 1, &old), US_DB_OK);
    assert_int_equal(us_session_get(db, pool, "ws-sweep", a.id, SC_T0, &got), US_DB_OK);
    assert_string_equal(got.status, "OPEN");
    apr_sleep(a.expires_at - apr_time_now() + apr_time_from_msec(50));
    assert_int_equal(us_sessions_expire(db, pool, &n), US_DB_OK);
    assert_int_equal(n, 1);
    assert_int_equal(us_sessions_expire(db, pool, &n), US_DB_OK);
    assert_int_equal(n, 0);
    assert_int_equal(us_session_get(db, pool, "ws-sweep", a.id, SC_T0, &got), US_DB_OK);
    assert_string_equal(got.status, "EXPIRED");
    /* b, two minutes ahead of the database's clock, stays open */
    assert_int_equal(us_session_get(db, pool, "ws-sweep", b.id, SC_T0, &got), US_DB_OK);
    assert_string_equal(got.status, "OPEN");
    assert_int_equal(us_session_close(db, pool, "ws-sweep", a.id, SC_T0), US_DB_CONFLICT);
    assert_int_equal(sc_upload(db, a.id, "b.txt", 2, &old), US_DB_CONFLICT);
    /* its upload is queued for ingestion */
    us_session c;
    assert_int_equal(us_ingest_claim(db, pool, "w1", SC_T0 + SC_SEC(3), SC_T0, &c), US_DB_OK);
    assert_string_equal(c.id, a.id);
    us_db_close(db);
}

/* ---- ingestion: claims and leases ------------------------------------------------ */

/* A closed session of ws with one raw upload, closed at `at`. */
static const char *sc_queued(us_db *db, int n, const char *ws, int parallel, apr_time_t at)
{
    us_session s = sc_session(sc_uuid(pool, n), ws, "u9", SC_T0, 1000);
    const char *old;
    s.parallel = parallel;
    s.write_mode = "FAIL";
    assert_int_equal(us_session_insert(db, pool, &s, 100, SC_T0), US_DB_OK);
    assert_int_equal(sc_upload(db, s.id, "f.txt", n, &old), US_DB_OK);
    assert_int_equal(us_session_close(db, pool, ws, s.id, at), US_DB_OK);
    return s.id;
}

static const char *sc_claim_id;

static void sc_claim_work(us_db *db, apr_pool_t *p, int i)
{
    us_session s;
    sc_results[i][0] = us_ingest_claim(db, p, apr_psprintf(p, "w%d", i), SC_T0 + SC_SEC(10),
                                       SC_T0, &s);
    if (sc_results[i][0] == US_DB_OK)
        sc_results[i][1] = strcmp(s.id, sc_claim_id) == 0;
}

/* Of concurrent claimers of one session exactly one gets it. */
static void sc_concurrent_claim(void **state)
{
    us_db *db = sc_open(pool);
    int ok = 0, notfound = 0, right = 0;
    (void)state;
    sc_claim_id = sc_queued(db, 600, "ws-claim", 1, SC_T0 + 1);
    us_db_close(db);
    sc_run_threads(sc_claim_work);
    for (int i = 0; i < SC_THREADS; i++) {
        ok += sc_results[i][0] == US_DB_OK;
        notfound += sc_results[i][0] == US_DB_NOTFOUND;
        right += sc_results[i][1];
    }
    assert_int_equal(ok, 1);
    assert_int_equal(right, 1);
    assert_int_equal(notfound, SC_THREADS - 1);
}

/* A worker whose done or requeue of one claim was lost (a busy store) still
 * holds it when it claims the next: the claim hands back the session it
 * claimed, not the other one the owner holds. */
static void sc_claim_returns_the_claimed_session(void **state)
{
    us_db *db = sc_open(pool);
    us_session c;
    apr_time_t now = SC_T0 + SC_SEC(10);
    (void)state;
    /* made in the other order than they close where the caller's clock
     * counts: no table order can stand in for the id */
    const char *b = sc_queued(db, 706, "ws-held-b", 1, SC_T0 + 2);
    const char *a = sc_queued(db, 705, "ws-held-a", 1, SC_T0 + 1);
    assert_int_equal(us_ingest_claim(db, pool, "w1", now, SC_T0, &c), US_DB_OK);
    const char *first = c.id, *second = strcmp(first, a) == 0 ? b : a;
    assert_true(strcmp(first, a) == 0 || strcmp(first, b) == 0);
    assert_int_equal(us_ingest_claim(db, pool, "w1", now, SC_T0, &c), US_DB_OK);
    assert_string_equal(c.id, second);
    assert_string_equal(c.ingest_owner, "w1");
    assert_int_equal(us_ingest_done(db, pool, second, "w1"), US_DB_OK);
    assert_int_equal(us_ingest_done(db, pool, first, "w1"), US_DB_OK);
    us_db_close(db);
}

/* Non-parallel sessions of a workspace: one at a time, in closing order;
 * parallel ones and other workspaces are not held back. */
static void sc_one_at_a_time_per_workspace(void **state)
{
    us_db *db = sc_open(pool);
    us_session c;
    apr_time_t now = SC_T0 + SC_SEC(10);
    (void)state;
    /* closed in this order by the store's clock, in the other by the callers' */
    const char *second = sc_queued(db, 701, "ws-turn", 0, SC_T0 + 2);
    const char *first = sc_queued(db, 702, "ws-turn", 0, SC_T0 + 1);
    if (sc_target->own_clock) {
        const char *t = first;
        first = second;
        second = t;
    }
    assert_int_equal(us_ingest_claim(db, pool, "w1", now, SC_T0, &c), US_DB_OK);
    assert_string_equal(c.id, first);
    assert_int_equal(us_ingest_claim(db, pool, "w2", now, SC_T0, &c), US_DB_NOTFOUND);
    const char *par = sc_queued(db, 703, "ws-turn", 1, SC_T0 + 3);
    const char *other = sc_queued(db, 704, "ws-other", 0, SC_T0 + 4);
    assert_int_equal(us_ingest_claim(db, pool, "w2", now, SC_T0, &c), US_DB_OK);
    assert_string_equal(c.id, par);
    assert_int_equal(us_ingest_claim(db, pool, "w3", now, SC_T0, &c), US_DB_OK);
    assert_string_equal(c.id, other);
    assert_int_equal(us_ingest_claim(db, pool, "w4", now, SC_T0, &c), US_DB_NOTFOUND);
    assert_int_equal(us_ingest_done(db, pool, first, "w1"), US_DB_OK);
    assert_int_equal(us_ingest_claim(db, pool, "w4", now, SC_T0, &c), US_DB_OK);
    assert_string_equal(c.id, second);
    us_db_close(db);
}

/* A lapsed lease is taken over; the old owner can then change nothing of the claim. */
static void sc_lease_taken_over(void **state)
{
    us_db *db = sc_open(pool);
    apr_array_header_t *claims;
    us_session c;
    (void)state;
    const char *id = sc_queued(db, 800, "ws-lease", 0, SC_T0 + 1);
    assert_int_equal(us_ingest_claim(db, pool, "old", SC_T0 + SC_SEC(10), SC_T0, &c), US_DB_OK);
    assert_int_equal(us_ingest_heartbeat(db, pool, id, "old", SC_T0 + SC_SEC(11)), US_DB_OK);
    /* not stale yet for a lease starting before the heartbeat */
    assert_int_equal(us_ingest_claim(db, pool, "new", SC_T0 + SC_SEC(12), SC_T0 + SC_SEC(11),
                                     &c), US_DB_NOTFOUND);
    /* stale for a lease that ends after the heartbeat: by the caller's clock
     * (SQLite) and by the database's (PostgreSQL, which takes only the
     * lease's length, now - stale_before, from the caller) */
    assert_int_equal(us_ingest_claim(db, pool, "new", SC_T0 + SC_SEC(30), SC_T0 + SC_SEC(31),
                                     &c), US_DB_OK);
    assert_string_equal(c.id, id);
    assert_int_equal(us_ingest_heartbeat(db, pool, id, "old", SC_T0 + SC_SEC(31)), US_DB_CONFLICT);
    assert_int_equal(us_ingest_done(db, pool, id, "old"), US_DB_CONFLICT);
    assert_int_equal(us_ingest_requeue_later(db, pool, id, "old", SC_T0 + SC_SEC(31), SC_SEC(5)),
                     US_DB_CONFLICT);
    assert_int_equal(us_ingest_requeue(db, pool, id, "old"), US_DB_OK);
    assert_int_equal(us_ingest_running(db, pool, &claims), US_DB_OK);
    assert_int_equal(claims->nelts, 1);
    assert_string_equal(APR_ARRAY_IDX(claims, 0, us_claim).owner, "new");
    assert_int_equal(us_ingest_heartbeat(db, pool, id, "new", SC_T0 + SC_SEC(31)), US_DB_OK);
    assert_int_equal(us_ingest_requeue(db, pool, id, "new"), US_DB_OK);
    assert_int_equal(us_ingest_running(db, pool, &claims), US_DB_OK);
    assert_int_equal(claims->nelts, 0);
    us_db_close(db);
}

/* A running claim keeps its workspace's turn: a session the expiry sweep
 * closes afterwards is dated back to its expires_at, ahead of the running
 * one, and the running one's lapsed lease is still taken over (else
 * neither is ever in turn again, and the workspace's ingestion stops for
 * good once the old owner is gone). */
static void sc_running_claim_keeps_its_turn(void **state)
{
    us_db *db = sc_open(pool);
    us_session late = sc_session(sc_uuid(pool, 810), "ws-backdated", "u9", SC_T0, 1), c;
    const char *old;
    int n = -1;
    (void)state;
    late.parallel = 0;
    late.write_mode = "FAIL";
    assert_int_equal(us_session_insert(db, pool, &late, 100, SC_T0), US_DB_OK);
    assert_int_equal(sc_upload(db, late.id, "f.txt", 810, &old), US_DB_OK);
    if (sc_target->own_clock) /* its expires_at is a second after the insert */
        apr_sleep(apr_time_from_msec(1100));
    const char *running = sc_queued(db, 811, "ws-backdated", 0, SC_T0 + SC_SEC(2));
    assert_int_equal(us_ingest_claim(db, pool, "old", SC_T0 + SC_SEC(10), SC_T0, &c), US_DB_OK);
    assert_string_equal(c.id, running);
    assert_int_equal(us_sessions_expire(db, pool, &n), US_DB_OK);
    assert_int_equal(n, 1);
    /* the lease lapsed (sc_lease_taken_over's clocks): taken over */
    assert_int_equal(us_ingest_claim(db, pool, "new", SC_T0 + SC_SEC(30), SC_T0 + SC_SEC(31), &c),
                     US_DB_OK);
    assert_string_equal(c.id, running);
    assert_string_equal(c.ingest_owner, "new");
    assert_int_equal(us_ingest_claim(db, pool, "other", SC_T0 + SC_SEC(30), SC_T0, &c),
                     US_DB_NOTFOUND);
    assert_int_equal(us_ingest_done(db, pool, running, "new"), US_DB_OK);
    assert_int_equal(us_ingest_claim(db, pool, "other", SC_T0 + SC_SEC(30), SC_T0, &c), US_DB_OK);
    assert_string_equal(c.id, late.id);
    us_db_close(db);
}

/* A session requeued for later is not claimed before its time (the
 * caller's clock for SQLite, the database's for PostgreSQL), not even as a
 * lapsed lease, and keeps its place in its workspace's turn; a requeue by
 * an owner that lost the claim changes nothing (US_DB_CONFLICT). */
static void sc_requeue_later(void **state)
{
    us_db *db = sc_open(pool);
    us_session c;
    apr_time_t now = SC_T0 + SC_SEC(10);
    /* PostgreSQL's clock runs on: a short delay, waited for */
    apr_interval_time_t delay = sc_target->own_clock ? apr_time_from_msec(300) : SC_SEC(5);
    (void)state;
    const char *id = sc_queued(db, 810, "ws-later", 0, SC_T0 + 1);
    const char *behind = sc_queued(db, 811, "ws-later", 0, SC_T0 + 2);
    assert_int_equal(us_ingest_claim(db, pool, "w1", now, SC_T0, &c), US_DB_OK);
    assert_string_equal(c.id, id);
    assert_int_equal(us_ingest_requeue_later(db, pool, id, "other", now, delay), US_DB_CONFLICT);
    assert_int_equal(us_ingest_heartbeat(db, pool, id, "w1", now), US_DB_OK); /* still w1's */
    assert_int_equal(us_ingest_requeue_later(db, pool, id, "w1", now, delay), US_DB_OK);
    assert_int_equal(us_ingest_heartbeat(db, pool, id, "w1", now), US_DB_CONFLICT);
    /* not yet: neither queued nor as a lapsed lease (every heartbeat stale) */
    apr_time_t early = now + delay - 1;
    assert_int_equal(us_ingest_claim(db, pool, "w2", early, early + SC_SEC(100), &c),
                     US_DB_NOTFOUND);
    /* the session closed after it waits for its turn */
    assert_int_equal(us_ingest_claim(db, pool, "w2", early, SC_T0, &c), US_DB_NOTFOUND);
    if (sc_target->own_clock)
        apr_sleep(delay + apr_time_from_msec(50));
    assert_int_equal(us_ingest_claim(db, pool, "w2", now + delay, SC_T0, &c), US_DB_OK);
    assert_string_equal(c.id, id);
    assert_int_equal(us_ingest_done(db, pool, id, "w2"), US_DB_OK);
    assert_int_equal(us_ingest_claim(db, pool, "w3", now + delay, SC_T0, &c), US_DB_OK);
    assert_string_equal(c.id, behind);
    assert_int_equal(us_ingest_done(db, pool, behind, "w3"), US_DB_OK);
    us_db_close(db);
}

/* A session waiting out a refusal pause (requeued for later) whose
 * workspace is deleted: the clear of its uploads is claimable at once,
 * not only once the pause has passed. */
static void sc_abort_ends_a_pause(void **state)
{
    us_db *db = sc_open(pool);
    apr_array_header_t *ids, *pending;
    us_session c;
    apr_time_t now = SC_T0 + SC_SEC(10);
    (void)state;
    const char *id = sc_queued(db, 812, "ws-paused", 0, SC_T0 + 1);
    assert_int_equal(us_ingest_claim(db, pool, "w1", now, SC_T0, &c), US_DB_OK);
    assert_string_equal(c.id, id);
    assert_int_equal(us_ingest_requeue_later(db, pool, id, "w1", now, SC_SEC(60)), US_DB_OK);
    assert_int_equal(us_ingest_claim(db, pool, "w2", now, SC_T0, &c), US_DB_NOTFOUND);
    assert_int_equal(us_workspace_delete(db, pool, "ws-paused", now, &ids), US_DB_OK);
    assert_int_equal(us_ingest_claim(db, pool, "w2", now, SC_T0, &c), US_DB_OK);
    assert_string_equal(c.id, id);
    assert_string_equal(c.status, "ABORTED");
    assert_int_equal(us_ingest_pending(db, pool, id, "", 10, &pending), US_DB_OK);
    assert_int_equal(pending->nelts, 0);
    assert_int_equal(us_ingest_done(db, pool, id, "w2"), US_DB_OK);
    us_db_close(db);
}

static us_ingest_result sc_finished(const char *name, const char *file_id)
{
    us_ingest_result r;
    memset(&r, 0, sizeof(r));
    r.name = name;
    r.file_id = file_id;
    r.size = 1;
    r.status = "FINISHED";
    return r;
}

/* Under FAIL, of two sessions publishing one name only the first does;
 * a replayed batch changes nothing twice. */
static void sc_apply_fail_name_check(void **state)
{
    us_db *db = sc_open(pool);
    apr_array_header_t *pending, *results, *deleted;
    us_session a, b, got;
    (void)state;
    sc_queued(db, 900, "ws-fail", 1, SC_T0 + 1);
    sc_queued(db, 901, "ws-fail", 1, SC_T0 + 2);
    assert_int_equal(us_ingest_claim(db, pool, "w1", SC_T0 + SC_SEC(10), SC_T0, &a), US_DB_OK);
    assert_int_equal(us_ingest_claim(db, pool, "w2", SC_T0 + SC_SEC(10), SC_T0, &b), US_DB_OK);
    assert_int_equal(us_ingest_pending(db, pool, a.id, "", 10, &pending), US_DB_OK);
    assert_int_equal(pending->nelts, 1);
    const us_pending *pa = &APR_ARRAY_IDX(pending, 0, us_pending);
    results = apr_array_make(pool, 1, sizeof(us_ingest_result));
    APR_ARRAY_PUSH(results, us_ingest_result) = sc_finished(pa->name, pa->file_ingestion_id);
    assert_int_equal(us_ingest_apply(db, pool, &a, results, SC_T0 + SC_SEC(11), &deleted),
                     US_DB_OK);
    assert_int_equal(deleted->nelts, 0);
    /* replayed: nothing changes */
    assert_int_equal(us_ingest_apply(db, pool, &a, results, SC_T0 + SC_SEC(12), &deleted),
                     US_DB_OK);
    assert_int_equal(us_session_by_id(db, pool, a.id, SC_T0, &got), US_DB_OK);
    assert_int_equal(got.finished_files, 1);
    assert_int_equal(got.failed_files, 0);

    assert_int_equal(us_ingest_pending(db, pool, b.id, "", 10, &pending), US_DB_OK);
    const us_pending *pb = &APR_ARRAY_IDX(pending, 0, us_pending);
    results = apr_array_make(pool, 1, sizeof(us_ingest_result));
    APR_ARRAY_PUSH(results, us_ingest_result) = sc_finished(pb->name, pb->file_ingestion_id);
    assert_int_equal(us_ingest_apply(db, pool, &b, results, SC_T0 + SC_SEC(13), &deleted),
                     US_DB_OK);
    assert_int_equal(deleted->nelts, 1);
    assert_string_equal(APR_ARRAY_IDX(deleted, 0, const char *), pb->file_ingestion_id);
    assert_int_equal(us_session_by_id(db, pool, b.id, SC_T0, &got), US_DB_OK);
    assert_int_equal(got.finished_files, 0);
    assert_int_equal(got.failed_files, 1);
    apr_array_header_t *rows;
    long long total;
    assert_int_equal(sc_files_list(db, b.id, "FAILED", 10, 0, &rows, &total), US_DB_OK);
    assert_int_equal(total, 1);
    assert_string_equal(APR_ARRAY_IDX(rows, 0, us_session_file_row).reason, "FILE_ALREADY_EXISTS");
    assert_int_equal(us_workspace_file_ids_by_name(db, pool, "ws-fail", "f.txt", &rows), US_DB_OK);
    assert_int_equal(rows->nelts, 1);
    us_db_close(db);
}

/* Fencing: once another worker took the claim over, a batch of the old
 * owner changes nothing; the new owner's applies. */
static void sc_apply_fenced(void **state)
{
    us_db *db = sc_open(pool);
    apr_array_header_t *pending, *results, *deleted;
    us_session old, cur, got;
    (void)state;
    sc_queued(db, 950, "ws-fence", 1, SC_T0 + 1);
    assert_int_equal(us_ingest_claim(db, pool, "old", SC_T0 + SC_SEC(10), SC_T0, &old), US_DB_OK);
    assert_string_equal(old.ingest_owner, "old");
    /* a lease that ends after the claim by either clock (sc_lease_taken_over) */
    assert_int_equal(us_ingest_claim(db, pool, "new", SC_T0 + SC_SEC(30), SC_T0 + SC_SEC(31),
                                     &cur), US_DB_OK);
    assert_int_equal(us_ingest_pending(db, pool, old.id, "", 10, &pending), US_DB_OK);
    const us_pending *pa = &APR_ARRAY_IDX(pending, 0, us_pending);
    results = apr_array_make(pool, 1, sizeof(us_ingest_result));
    APR_ARRAY_PUSH(results, us_ingest_result) = sc_finished(pa->name, pa->file_ingestion_id);
    assert_int_equal(us_ingest_apply(db, pool, &old, results, SC_T0 + SC_SEC(31), &deleted),
                     US_DB_CONFLICT);
    assert_int_equal(deleted->nelts, 0);
    assert_int_equal(us_session_by_id(db, pool, old.id, SC_T0, &got), US_DB_OK);
    assert_int_equal(got.finished_files, 0);
    assert_int_equal(us_ingest_apply(db, pool, &cur, results, SC_T0 + SC_SEC(32), &deleted),
                     US_DB_OK);
    assert_int_equal(us_session_by_id(db, pool, old.id, SC_T0, &got), US_DB_OK);
    assert_int_equal(got.finished_files, 1);
    us_db_close(db);
}

/* A publish the storage refused is counted on the upload's row, one per
 * call, while the upload is PENDING and its claim is held: a fenced-off
 * worker counts nothing, a decided upload is NOTFOUND. Failed with
 * UNKNOWN_ERROR, the file is counted once. */
static void sc_publish_refused(void **state)
{
    us_db *db = sc_open(pool);
    apr_array_header_t *pending, *results, *deleted, *rows;
    us_session old, cur, got;
    long long n = -1, total = 0;
    (void)state;
    sc_queued(db, 970, "ws-refused", 1, SC_T0 + 1);
    sc_queued(db, 971, "ws-refused", 1, SC_T0 + 2);
    assert_int_equal(us_ingest_claim(db, pool, "old", SC_T0 + SC_SEC(10), SC_T0, &old), US_DB_OK);
    assert_int_equal(us_ingest_pending(db, pool, old.id, "", 10, &pending), US_DB_OK);
    const us_pending *u = &APR_ARRAY_IDX(pending, 0, us_pending);
    for (int i = 1; i <= 3; i++) {
        assert_int_equal(us_ingest_publish_refused(db, pool, &old, u->name, &n), US_DB_OK);
        assert_int_equal(n, i);
    }
    /* an upload that is not there */
    assert_int_equal(us_ingest_publish_refused(db, pool, &old, "none.txt", &n), US_DB_NOTFOUND);
    /* taken over (sc_lease_taken_over's clocks): the old owner counts nothing */
    assert_int_equal(us_ingest_claim(db, pool, "new", SC_T0 + SC_SEC(30), SC_T0 + SC_SEC(31),
                                     &cur), US_DB_OK);
    assert_string_equal(cur.id, old.id);
    assert_int_equal(us_ingest_publish_refused(db, pool, &old, u->name, &n), US_DB_CONFLICT);
    assert_int_equal(us_ingest_publish_refused(db, pool, &cur, u->name, &n), US_DB_OK);
    assert_int_equal(n, 4);
    /* the other session's upload of the same name keeps its own count */
    us_session other;
    assert_int_equal(us_ingest_claim(db, pool, "w2", SC_T0 + SC_SEC(30), SC_T0, &other), US_DB_OK);
    assert_string_not_equal(other.id, old.id);
    assert_int_equal(us_ingest_publish_refused(db, pool, &other, u->name, &n), US_DB_OK);
    assert_int_equal(n, 1);
    /* failed: counted once, replayed or not; no more refusals counted */
    us_ingest_result r = sc_finished(u->name, u->file_ingestion_id);
    r.status = "FAILED";
    r.reason = "UNKNOWN_ERROR";
    results = apr_array_make(pool, 1, sizeof(us_ingest_result));
    APR_ARRAY_PUSH(results, us_ingest_result) = r;
    for (int i = 0; i < 2; i++) {
        assert_int_equal(us_ingest_apply(db, pool, &cur, results, SC_T0 + SC_SEC(32 + i),
                                         &deleted), US_DB_OK);
        assert_int_equal(deleted->nelts, 0);
    }
    assert_int_equal(us_session_by_id(db, pool, cur.id, SC_T0, &got), US_DB_OK);
    assert_int_equal(got.finished_files, 0);
    assert_int_equal(got.failed_files, 1);
    assert_int_equal(sc_files_list(db, cur.id, "FAILED", 10, 0, &rows, &total), US_DB_OK);
    assert_int_equal(total, 1);
    assert_string_equal(APR_ARRAY_IDX(rows, 0, us_session_file_row).reason, "UNKNOWN_ERROR");
    assert_int_equal(sc_files_list(db, cur.id, "PENDING", 10, 0, &rows, &total), US_DB_OK);
    assert_int_equal(total, 0);
    assert_int_equal(us_ingest_publish_refused(db, pool, &cur, u->name, &n), US_DB_NOTFOUND);
    assert_int_equal(us_workspace_file_ids_by_name(db, pool, "ws-refused", u->name, &rows),
                     US_DB_OK);
    assert_int_equal(rows->nelts, 0);
    us_db_close(db);
}

/* ---- direct uploads: one listing recorded ------------------------------------------ */

static us_listed_object sc_listed(const char *name, int n, int is_meta)
{
    us_listed_object o;
    memset(&o, 0, sizeof(o));
    o.name = name;
    o.blob = name;
    o.etag = apr_psprintf(pool, "\"etag-%d\"", n);
    o.file_ingestion_id = sc_uuid(pool, 960000 + n);
    o.size = n;
    o.is_meta = is_meta;
    o.uploaded_at = SC_T0 + 5;
    return o;
}

/* A direct-upload session closes with no rows and is queued anyway; its
 * one listing becomes its rows and uploaded_files (sidecars not counted),
 * once: a second listing, a replay or a fenced-off worker change nothing. */
static void sc_record_listing(void **state)
{
    us_db *db = sc_open(pool);
    us_session s = sc_session(sc_uuid(pool, 970), "ws-direct", "u-direct", SC_T0, 3600);
    us_session old, cur, got;
    apr_array_header_t *objs, *pending, *rows;
    long long total = 0;
    int recorded = -1;
    (void)state;
    s.direct = US_DIRECT_UNLISTED;
    assert_int_equal(us_session_insert(db, pool, &s, 10, SC_T0), US_DB_OK);
    assert_int_equal(us_session_get(db, pool, "ws-direct", s.id, SC_T0, &got), US_DB_OK);
    assert_int_equal(got.direct, US_DIRECT_UNLISTED);
    assert_int_equal(us_session_close(db, pool, "ws-direct", s.id, SC_T0 + 1), US_DB_OK);
    assert_int_equal(us_ingest_claim(db, pool, "old", SC_T0 + SC_SEC(10), SC_T0, &old), US_DB_OK);
    assert_string_equal(old.id, s.id);
    assert_int_equal(old.direct, US_DIRECT_UNLISTED);
    /* the lease lapses; a new worker takes over */
    assert_int_equal(us_ingest_claim(db, pool, "new", SC_T0 + SC_SEC(30), SC_T0 + SC_SEC(31),
                                     &cur), US_DB_OK);
    objs = apr_array_make(pool, 3, sizeof(us_listed_object));
    APR_ARRAY_PUSH(objs, us_listed_object) = sc_listed("a.txt", 1, 0);
    APR_ARRAY_PUSH(objs, us_listed_object) = sc_listed("a.txt.meta.json", 2, 1);
    APR_ARRAY_PUSH(objs, us_listed_object) = sc_listed("b 'x'.bin", 3, 0);
    /* a name its key gives decoded: the row keeps both */
    APR_ARRAY_IDX(objs, 2, us_listed_object).blob = "b%20'x'.bin";
    APR_ARRAY_IDX(objs, 2, us_listed_object).name = "b 'x'.bin";
    assert_int_equal(us_ingest_record_listing(db, pool, &old, objs, &recorded), US_DB_CONFLICT);
    assert_int_equal(recorded, 0);
    assert_int_equal(us_ingest_pending(db, pool, s.id, "", 10, &pending), US_DB_OK);
    assert_int_equal(pending->nelts, 0);
    assert_int_equal(us_ingest_record_listing(db, pool, &cur, objs, &recorded), US_DB_OK);
    assert_int_equal(recorded, 1);
    assert_int_equal(us_session_by_id(db, pool, s.id, SC_T0, &got), US_DB_OK);
    assert_int_equal(got.direct, US_DIRECT_LISTED);
    assert_int_equal(got.uploaded_files, 2);
    assert_int_equal(us_ingest_pending(db, pool, s.id, "", 10, &pending), US_DB_OK);
    assert_int_equal(pending->nelts, 2);
    const us_pending *pa = &APR_ARRAY_IDX(pending, 0, us_pending);
    assert_string_equal(pa->name, "a.txt");
    assert_string_equal(pa->blob, "a.txt");
    assert_string_equal(pa->etag, "\"etag-1\"");
    assert_string_equal(pa->file_ingestion_id, sc_uuid(pool, 960001));
    assert_int_equal(pa->size, 1);
    assert_string_equal(pa->meta_blob, "a.txt.meta.json");
    assert_null(APR_ARRAY_IDX(pending, 1, us_pending).meta_blob);
    assert_string_equal(APR_ARRAY_IDX(pending, 1, us_pending).name, "b 'x'.bin");
    assert_string_equal(APR_ARRAY_IDX(pending, 1, us_pending).blob, "b%20'x'.bin");
    const char *meta_blob = NULL;
    assert_int_equal(us_upload_blob(db, pool, s.id, "a.txt.meta.json", &meta_blob), US_DB_OK);
    assert_non_null(meta_blob);
    assert_string_equal(meta_blob, "a.txt.meta.json");
    assert_int_equal(sc_files_list(db, s.id, NULL, 10, 0, &rows, &total), US_DB_OK);
    assert_int_equal(total, 2);
    assert_string_equal(APR_ARRAY_IDX(rows, 1, us_session_file_row).name, "b 'x'.bin");
    assert_string_equal(APR_ARRAY_IDX(rows, 1, us_session_file_row).status, "PENDING");
    /* a second listing (a replay after a crash) records nothing */
    APR_ARRAY_PUSH(objs, us_listed_object) = sc_listed("late.txt", 4, 0);
    assert_int_equal(us_ingest_record_listing(db, pool, &cur, objs, &recorded), US_DB_OK);
    assert_int_equal(recorded, 0);
    assert_int_equal(us_session_by_id(db, pool, s.id, SC_T0, &got), US_DB_OK);
    assert_int_equal(got.uploaded_files, 2);
    assert_int_equal(us_ingest_pending(db, pool, s.id, "", 10, &pending), US_DB_OK);
    assert_int_equal(pending->nelts, 2);
    us_db_close(db);
}

/* The last clear of a session's uploads, direct or through the upload
 * target: due once its ingestion has ended and expires_at lies more than
 * the grace in the past (by the store's clock); recorded once; never due
 * for one still being ingested nor one made as US_DIRECT_NO (before the
 * upload target's had a last clear). */
static void sc_late_clear(void **state)
{
    us_db *db = sc_open(pool);
    /* expired soon after SC_T0 in the order plain, s, busy (a store with its
     * own clock: at their inserts, in the order s, busy, plain) */
    int own = sc_target->own_clock;
    us_session s = sc_session(sc_uuid(pool, 1990), "ws-late-a", "u-late", SC_T0, own ? 0 : 4);
    us_session busy = sc_session(sc_uuid(pool, 1991), "ws-late-b", "u-late", SC_T0, own ? 0 : 5);
    us_session plain = sc_session(sc_uuid(pool, 1992), "ws-late-c", "u-late", SC_T0, own ? 0 : 3);
    us_session legacy = sc_session(sc_uuid(pool, 1993), "ws-late-d", "u-late", SC_T0, own ? 0 : 3);
    us_session c, got;
    apr_array_header_t *ids, *objs = apr_array_make(pool, 1, sizeof(us_listed_object));
    int n = 0, recorded = -1;
    (void)state;
    s.direct = busy.direct = US_DIRECT_UNLISTED;
    plain.direct = US_DIRECT_TARGET;
    assert_int_equal(us_session_insert(db, pool, &s, 10, SC_T0), US_DB_OK);
    assert_int_equal(us_session_insert(db, pool, &busy, 10, SC_T0), US_DB_OK);
    assert_int_equal(us_session_insert(db, pool, &plain, 10, SC_T0), US_DB_OK);
    assert_int_equal(us_session_insert(db, pool, &legacy, 10, SC_T0), US_DB_OK); /* made as NO */
    /* nothing is due while the sessions are open */
    assert_int_equal(us_late_clear_due(db, pool, apr_time_now(), SC_SEC(1), NULL, 16, &ids), US_DB_OK);
    assert_int_equal(ids->nelts, 0);
    assert_int_equal(us_sessions_expire(db, pool, &n), US_DB_OK);
    assert_int_equal(n, 4);
    /* s: listed (empty), ingested; busy: claimed, still running */
    assert_int_equal(us_ingest_claim(db, pool, "w", SC_T0 + SC_SEC(10), SC_T0, &c), US_DB_OK);
    assert_string_equal(c.id, s.id);
    assert_int_equal(us_ingest_record_listing(db, pool, &c, objs, &recorded), US_DB_OK);
    assert_int_equal(recorded, 1);
    assert_int_equal(us_ingest_done(db, pool, s.id, "w"), US_DB_OK);
    assert_int_equal(us_ingest_claim(db, pool, "w", SC_T0 + SC_SEC(10), SC_T0, &c), US_DB_OK);
    assert_string_equal(c.id, busy.id);
    /* expired about 26 s ago by the store's clock (its own: just now, so a
     * second passes first): not within an hour's grace */
    if (own)
        apr_sleep(apr_time_from_msec(1100));
    assert_int_equal(us_late_clear_due(db, pool, apr_time_now(), SC_SEC(3600), NULL, 16, &ids), US_DB_OK);
    assert_int_equal(ids->nelts, 0);
    assert_int_equal(us_late_clear_due(db, pool, apr_time_now(), SC_SEC(1), NULL, 16, &ids), US_DB_OK);
    /* s, and plain: the upload target's, no file recorded, done at its
     * expiry with no ingestion */
    assert_int_equal(ids->nelts, 2);
    int s_due = 0, plain_due = 0;
    for (int i = 0; i < 2; i++) {
        s_due += strcmp(APR_ARRAY_IDX(ids, i, us_late_due).id, s.id) == 0;
        plain_due += strcmp(APR_ARRAY_IDX(ids, i, us_late_due).id, plain.id) == 0;
    }
    assert_int_equal(s_due, 1);
    assert_int_equal(plain_due, 1);
    /* recorded once; then no longer due */
    assert_int_equal(us_late_clear_done(db, pool, s.id), US_DB_OK);
    assert_int_equal(us_late_clear_done(db, pool, s.id), US_DB_NOTFOUND);
    assert_int_equal(us_late_clear_done(db, pool, plain.id), US_DB_OK);
    assert_int_equal(us_late_clear_done(db, pool, plain.id), US_DB_NOTFOUND);
    assert_int_equal(us_late_clear_done(db, pool, legacy.id), US_DB_NOTFOUND);
    assert_int_equal(us_late_clear_due(db, pool, apr_time_now(), SC_SEC(1), NULL, 16, &ids), US_DB_OK);
    assert_int_equal(ids->nelts, 0);
    /* it reads as a listed session: its rows are its files */
    assert_int_equal(us_session_by_id(db, pool, s.id, SC_T0, &got), US_DB_OK);
    assert_int_equal(got.direct, US_DIRECT_CLEARED);
    assert_string_equal(got.status, "EXPIRED");
    /* the upload target's: recorded apart, still no direct upload */
    assert_int_equal(us_session_by_id(db, pool, plain.id, SC_T0, &got), US_DB_OK);
    assert_int_equal(got.direct, US_DIRECT_NO);
    /* the running one, once ingested, is due */
    assert_int_equal(us_ingest_record_listing(db, pool, &c, objs, &recorded), US_DB_OK);
    assert_int_equal(us_ingest_done(db, pool, busy.id, "w"), US_DB_OK);
    assert_int_equal(us_late_clear_due(db, pool, apr_time_now(), SC_SEC(1), NULL, 16, &ids), US_DB_OK);
    assert_int_equal(ids->nelts, 1);
    assert_string_equal(APR_ARRAY_IDX(ids, 0, us_late_due).id, busy.id);
    us_db_close(db);
}

/* The queue of last clears pages in (expires_at, id) order from a place:
 * a caller whose first page keeps failing reaches the sessions after it. */
static void sc_late_clear_pages(void **state)
{
    enum { N = 18 };
    us_db *db = sc_open(pool);
    int own = sc_target->own_clock, n = 0, recorded = 0;
    apr_array_header_t *objs = apr_array_make(pool, 1, sizeof(us_listed_object));
    apr_array_header_t *first, *rest, *again;
    us_session c;
    (void)state;
    for (int i = 0; i < N; i++) {
        us_session s = sc_session(sc_uuid(pool, 7300 + i), "ws-late-pages", "u-late-pages", SC_T0,
                                  own ? 0 : 3);
        s.direct = US_DIRECT_UNLISTED;
        assert_int_equal(us_session_insert(db, pool, &s, N, SC_T0), US_DB_OK);
    }
    assert_int_equal(us_sessions_expire(db, pool, &n), US_DB_OK);
    assert_true(n >= N);
    while (us_ingest_claim(db, pool, "w", SC_T0 + SC_SEC(10), SC_T0, &c) == US_DB_OK) {
        assert_int_equal(us_ingest_record_listing(db, pool, &c, objs, &recorded), US_DB_OK);
        assert_int_equal(us_ingest_done(db, pool, c.id, "w"), US_DB_OK);
    }
    if (own)
        apr_sleep(apr_time_from_msec(1100));
    assert_int_equal(us_late_clear_due(db, pool, apr_time_now(), SC_SEC(1), NULL, 16, &first),
                     US_DB_OK);
    assert_int_equal(first->nelts, 16);
    const us_late_due *last = &APR_ARRAY_IDX(first, 15, us_late_due);
    assert_int_equal(us_late_clear_due(db, pool, apr_time_now(), SC_SEC(1), last, 1000, &rest),
                     US_DB_OK);
    assert_true(rest->nelts >= 2);
    /* together every session of this test once, each page in order */
    int seen[N] = { 0 };
    for (int k = 0; k < 2; k++) {
        const apr_array_header_t *pg = k ? rest : first;
        for (int i = 0; i < pg->nelts; i++) {
            const us_late_due *d = &APR_ARRAY_IDX(pg, i, us_late_due);
            const us_late_due *prev = i ? d - 1 : k ? last : NULL;
            if (prev)
                assert_true(d->expires_at > prev->expires_at ||
                            (d->expires_at == prev->expires_at && strcmp(d->id, prev->id) > 0));
            for (int j = 0; j < N; j++)
                seen[j] += strcmp(d->id, sc_uuid(pool, 7300 + j)) == 0;
        }
    }
    for (int j = 0; j < N; j++)
        assert_int_equal(seen[j], 1);
    /* the page after the last one is empty */
    last = &APR_ARRAY_IDX(rest, rest->nelts - 1, us_late_due);
    assert_int_equal(us_late_clear_due(db, pool, apr_time_now(), SC_SEC(1), last, 16, &again),
                     US_DB_OK);
    assert_int_equal(again->nelts, 0);
    /* recorded all at once (us_late_clear_done_all), each once: one
     * recorded before and an unknown id are left out */
    apr_array_header_t *all = apr_array_make(pool, N + 1, sizeof(const char *));
    for (int j = 0; j < N; j++)
        APR_ARRAY_PUSH(all, const char *) = sc_uuid(pool, 7300 + j);
    APR_ARRAY_PUSH(all, const char *) = sc_uuid(pool, 7399);
    assert_int_equal(us_late_clear_done(db, pool, sc_uuid(pool, 7300)), US_DB_OK);
    int marked = -1;
    assert_int_equal(us_late_clear_done_all(db, pool, all, &marked), US_DB_OK);
    assert_int_equal(marked, N - 1);
    assert_int_equal(us_late_clear_done_all(db, pool, all, &marked), US_DB_OK);
    assert_int_equal(marked, 0);
    assert_int_equal(us_late_clear_due(db, pool, apr_time_now(), SC_SEC(1), NULL, 1000, &again),
                     US_DB_OK);
    for (int i = 0; i < again->nelts; i++)
        for (int j = 0; j < N; j++)
            assert_string_not_equal(APR_ARRAY_IDX(again, i, us_late_due).id,
                                    sc_uuid(pool, 7300 + j));
    us_session got;
    assert_int_equal(us_session_by_id(db, pool, sc_uuid(pool, 7301), SC_T0, &got), US_DB_OK);
    assert_int_equal(got.direct, US_DIRECT_CLEARED);
    us_db_close(db);
}

/* A session without direct uploads has no listing to record; an upload
 * row of the upload target carries no etag. */
static void sc_record_listing_not_direct(void **state)
{
    us_db *db = sc_open(pool);
    us_session s = sc_session(sc_uuid(pool, 980), "ws-nodirect", "u-nodirect", SC_T0, 3600);
    us_session c;
    apr_array_header_t *objs, *pending;
    int recorded = -1;
    (void)state;
    assert_int_equal(us_session_insert(db, pool, &s, 10, SC_T0), US_DB_OK);
    assert_int_equal(sc_upload(db, s.id, "up.txt", 1, &(const char *){ NULL }), US_DB_OK);
    assert_int_equal(us_session_close(db, pool, "ws-nodirect", s.id, SC_T0 + 1), US_DB_OK);
    assert_int_equal(us_ingest_claim(db, pool, "w", SC_T0 + SC_SEC(10), SC_T0, &c), US_DB_OK);
    assert_int_equal(c.direct, US_DIRECT_NO);
    objs = apr_array_make(pool, 1, sizeof(us_listed_object));
    APR_ARRAY_PUSH(objs, us_listed_object) = sc_listed("other.txt", 1, 0);
    assert_int_equal(us_ingest_record_listing(db, pool, &c, objs, &recorded), US_DB_OK);
    assert_int_equal(recorded, 0);
    assert_int_equal(us_ingest_pending(db, pool, s.id, "", 10, &pending), US_DB_OK);
    assert_int_equal(pending->nelts, 1);
    assert_string_equal(APR_ARRAY_IDX(pending, 0, us_pending).name, "up.txt");
    assert_null(APR_ARRAY_IDX(pending, 0, us_pending).etag);
    us_db_close(db);
}

/* ---- workspace files ------------------------------------------------------------- */

static us_workspace_file sc_workspace_file(int n, const char *name, apr_time_t at)
{
    us_workspace_file f;
    memset(&f, 0, sizeof(f));
    f.file_id = sc_uuid(pool, n);
    f.name = name;
    f.size = n;
    f.created_at = at;
    f.characters = -1;
    return f;
}

static void sc_workspace_file_add_list_get(void **state)
{
    us_db *db = sc_open(pool);
    apr_array_header_t *deleted, *rows;
    long long total;
    us_workspace_file got;
    (void)state;
    us_workspace_file a = sc_workspace_file(1001, "a.txt", SC_T0 + 1), a2 = sc_workspace_file(1002, "a.txt", SC_T0 + 2);
    us_workspace_file a3 = sc_workspace_file(1003, "a.txt", SC_T0 + 3), b = sc_workspace_file(1004, "b.txt", SC_T0 + 4);
    a.meta = "{\"k\": 1}";
    b.characters = 42;
    assert_int_equal(us_workspace_file_add(db, pool, "ws-f", &a, "FAIL", &deleted), US_DB_OK);
    assert_int_equal(us_workspace_file_add(db, pool, "ws-f", &a2, "FAIL", &deleted), US_DB_CONFLICT);
    assert_int_equal(us_workspace_file_get(db, pool, "ws-f", a2.file_id, &got), US_DB_NOTFOUND);
    assert_int_equal(us_workspace_file_add(db, pool, "ws-f", &a3, "OVERWRITE", &deleted), US_DB_OK);
    assert_int_equal(deleted->nelts, 1);
    assert_string_equal(APR_ARRAY_IDX(deleted, 0, const char *), a.file_id);
    /* the replaced file's bytes are the trash's until its sweep (a crash
     * before the caller removes them leaves nothing behind for good) */
    apr_array_header_t *trash;
    assert_int_equal(us_file_trash_list(db, pool, 10, &trash), US_DB_OK);
    assert_int_equal(trash->nelts, 1);
    assert_string_equal(APR_ARRAY_IDX(trash, 0, const char *), a.file_id);
    assert_int_equal(us_file_trash_forget(db, pool, trash), US_DB_OK);
    assert_int_equal(us_workspace_file_add(db, pool, "ws-f", &b, "KEEP", &deleted), US_DB_OK);
    assert_int_equal(deleted->nelts, 0);
    assert_int_equal(us_workspace_file_get(db, pool, "ws-f", a3.file_id, &got), US_DB_OK);
    assert_string_equal(got.name, "a.txt");
    assert_null(got.meta);
    assert_true(got.characters < 0); /* null */
    assert_int_equal(us_workspace_file_get(db, pool, "ws-f", b.file_id, &got), US_DB_OK);
    assert_int_equal(got.characters, 42);
    assert_int_equal(us_workspace_file_get(db, pool, "ws-g", a3.file_id, &got), US_DB_NOTFOUND);
    assert_int_equal(us_workspace_file_list(db, pool, "ws-f", &(us_workspace_file_query){ .name_part = "", .filter = NULL, .after_at = 0, .after_id = NULL, .limit = 1 }, &rows, &total), US_DB_OK);
    assert_int_equal(total, 2);
    assert_int_equal(rows->nelts, 1);
    const us_workspace_file *first = &APR_ARRAY_IDX(rows, 0, us_workspace_file);
    assert_string_equal(first->file_id, b.file_id);
    assert_int_equal(us_workspace_file_list(db, pool, "ws-f",
                                            &(us_workspace_file_query){ .name_part = "", .filter = NULL, .after_at = first->created_at, .after_id = first->file_id, .limit = 5 },
                                            &rows, &total), US_DB_OK);
    assert_int_equal(rows->nelts, 1);
    assert_string_equal(APR_ARRAY_IDX(rows, 0, us_workspace_file).file_id, a3.file_id);
    assert_int_equal(us_workspace_file_list(db, pool, "ws-f", &(us_workspace_file_query){ .name_part = "b.t", .filter = NULL, .after_at = 0, .after_id = NULL, .limit = 5 }, &rows, &total), US_DB_OK);
    assert_int_equal(total, 1);
    us_db_close(db);
}

/* A list leaves out metadata longer than 16,384 characters (meta NULL,
 * meta_deferred) for the caller to read file by file, whichever statement
 * lists (fixed, after a cursor, built); the rest as stored. */
static void sc_workspace_file_list_defers_long_meta(void **state)
{
    us_db *db = sc_open(pool);
    apr_array_header_t *deleted, *rows;
    long long total;
    us_workspace_file got;
    (void)state;
    us_workspace_file at = sc_workspace_file(1101, "at.txt", SC_T0 + 3);
    us_workspace_file over = sc_workspace_file(1102, "over.txt", SC_T0 + 2);
    us_workspace_file none = sc_workspace_file(1103, "none.txt", SC_T0 + 1);
    char *v = apr_palloc(pool, 16384);
    memset(v, 'v', 16384);
    at.meta = apr_psprintf(pool, "{\"k\":\"%.*s\"}", 16384 - 8, v);   /* 16,384 characters */
    over.meta = apr_psprintf(pool, "{\"k\":\"%.*s\"}", 16384 - 7, v); /* one more */
    assert_int_equal(strlen(at.meta), 16384);
    assert_int_equal(strlen(over.meta), 16385);
    assert_int_equal(us_workspace_file_add(db, pool, "ws-d", &at, "KEEP", &deleted), US_DB_OK);
    assert_int_equal(us_workspace_file_add(db, pool, "ws-d", &over, "KEEP", &deleted), US_DB_OK);
    assert_int_equal(us_workspace_file_add(db, pool, "ws-d", &none, "KEEP", &deleted), US_DB_OK);
    const us_workspace_file_query queries[] = {
        { .name_part = "", .limit = 5 },
        { .name_part = "", .after_at = SC_T0 + 4, .after_id = "", .limit = 5 },
        { .name_part = "", .by_name = 1, .limit = 5 },
    };
    for (size_t i = 0; i < sizeof(queries) / sizeof(queries[0]); i++) {
        assert_int_equal(us_workspace_file_list(db, pool, "ws-d", &queries[i], &rows, &total), US_DB_OK);
        assert_int_equal(rows->nelts, 3);
        for (int k = 0; k < 3; k++) {
            const us_workspace_file *f = &APR_ARRAY_IDX(rows, k, us_workspace_file);
            if (strcmp(f->name, "at.txt") == 0) {
                assert_false(f->meta_deferred);
                assert_string_equal(f->meta, at.meta);
            } else if (strcmp(f->name, "over.txt") == 0) {
                assert_true(f->meta_deferred);
                assert_null(f->meta);
            } else {
                assert_false(f->meta_deferred);
                assert_null(f->meta);
            }
        }
    }
    assert_int_equal(us_workspace_file_get(db, pool, "ws-d", over.file_id, &got), US_DB_OK);
    assert_string_equal(got.meta, over.meta);
    us_db_close(db);
}

/* Deletes take rows out and put their ids in the trash, in one change. */
static void sc_workspace_file_delete(void **state)
{
    us_db *db = sc_open(pool);
    apr_array_header_t *deleted, *trash, *names = apr_array_make(pool, 4, sizeof(const char *));
    us_workspace_file got;
    (void)state;
    us_workspace_file a = sc_workspace_file(2001, "a.txt", SC_T0 + 1), a2 = sc_workspace_file(2002, "a.txt", SC_T0 + 2);
    us_workspace_file b = sc_workspace_file(2003, "b.txt", SC_T0 + 3), c = sc_workspace_file(2004, "c.txt", SC_T0 + 4);
    us_workspace_file other = sc_workspace_file(2005, "a.txt", SC_T0 + 5);
    assert_int_equal(us_workspace_file_add(db, pool, "ws-d", &a, "KEEP", &deleted), US_DB_OK);
    assert_int_equal(us_workspace_file_add(db, pool, "ws-d", &a2, "KEEP", &deleted), US_DB_OK);
    assert_int_equal(us_workspace_file_add(db, pool, "ws-d", &b, "KEEP", &deleted), US_DB_OK);
    assert_int_equal(us_workspace_file_add(db, pool, "ws-d", &c, "KEEP", &deleted), US_DB_OK);
    assert_int_equal(us_workspace_file_add(db, pool, "ws-e", &other, "KEEP", &deleted), US_DB_OK);

    assert_int_equal(us_workspace_file_delete(db, pool, "ws-e", b.file_id), US_DB_NOTFOUND);
    assert_int_equal(us_workspace_file_delete(db, pool, "ws-d", b.file_id), US_DB_OK);
    assert_int_equal(us_workspace_file_get(db, pool, "ws-d", b.file_id, &got), US_DB_NOTFOUND);
    assert_int_equal(us_workspace_file_delete(db, pool, "ws-d", b.file_id), US_DB_NOTFOUND);
    assert_int_equal(us_file_trash_list(db, pool, 10, &trash), US_DB_OK);
    assert_int_equal(trash->nelts, 1);
    assert_string_equal(APR_ARRAY_IDX(trash, 0, const char *), b.file_id);
    assert_int_equal(us_file_trash_forget(db, pool, trash), US_DB_OK);
    assert_int_equal(us_file_trash_list(db, pool, 10, &trash), US_DB_OK);
    assert_int_equal(trash->nelts, 0);

    /* by names: every file of the name, a name twice or unknown is no error */
    APR_ARRAY_PUSH(names, const char *) = "a.txt";
    APR_ARRAY_PUSH(names, const char *) = "a.txt";
    APR_ARRAY_PUSH(names, const char *) = "none.txt";
    assert_int_equal(us_workspace_files_delete(db, pool, "ws-d", names, &deleted), US_DB_OK);
    assert_int_equal(deleted->nelts, 2);
    assert_int_equal(us_workspace_file_get(db, pool, "ws-d", c.file_id, &got), US_DB_OK);
    assert_int_equal(us_workspace_file_get(db, pool, "ws-e", other.file_id, &got), US_DB_OK);
    assert_int_equal(us_file_trash_list(db, pool, 10, &trash), US_DB_OK);
    assert_int_equal(trash->nelts, 2);
    /* all: only this workspace */
    assert_int_equal(us_workspace_files_delete(db, pool, "ws-d", NULL, &deleted), US_DB_OK);
    assert_int_equal(deleted->nelts, 1);
    assert_string_equal(APR_ARRAY_IDX(deleted, 0, const char *), c.file_id);
    assert_int_equal(us_workspace_file_get(db, pool, "ws-e", other.file_id, &got), US_DB_OK);
    assert_int_equal(us_file_trash_list(db, pool, 2, &trash), US_DB_OK);
    assert_int_equal(trash->nelts, 2); /* the limit */
    us_db_close(db);
}

/* The files sweep's row check: a workspace file, a trash entry and a
 * PENDING upload's file_ingestion_id refer to a stored file; a decided
 * upload's id, or one nothing knows, does not. */
static void sc_file_id_referenced(void **state)
{
    us_db *db = sc_open(pool);
    apr_array_header_t *deleted;
    us_workspace_file kept = sc_workspace_file(7401, "kept.txt", SC_T0);
    us_workspace_file gone = sc_workspace_file(7402, "gone.txt", SC_T0);
    us_session s = sc_session(sc_uuid(pool, 7450), "ws-ref", "u-ref", SC_T0, 3600);
    int ref = -1;
    (void)state;
    assert_int_equal(us_workspace_file_add(db, pool, "ws-ref", &kept, "KEEP", &deleted), US_DB_OK);
    assert_int_equal(us_workspace_file_add(db, pool, "ws-ref", &gone, "KEEP", &deleted), US_DB_OK);
    assert_int_equal(us_workspace_file_delete(db, pool, "ws-ref", gone.file_id), US_DB_OK);
    assert_int_equal(us_session_insert(db, pool, &s, 10, SC_T0), US_DB_OK);
    assert_int_equal(sc_upload(db, s.id, "pending.txt", 7460, &(const char *){ NULL }), US_DB_OK);
    assert_int_equal(us_file_id_referenced(db, pool, kept.file_id, &ref), US_DB_OK);
    assert_int_equal(ref, 1);
    assert_int_equal(us_file_id_referenced(db, pool, gone.file_id, &ref), US_DB_OK);
    assert_int_equal(ref, 1); /* in the trash: the trash sweep's to remove */
    assert_int_equal(us_file_id_referenced(db, pool, sc_uuid(pool, 907460), &ref), US_DB_OK);
    assert_int_equal(ref, 1); /* an ingestion may have published it */
    assert_int_equal(us_file_id_referenced(db, pool, sc_uuid(pool, 7499), &ref), US_DB_OK);
    assert_int_equal(ref, 0);
    /* decided FAILED (a FAIL file whose name was taken): nothing refers to it */
    apr_array_header_t *results = apr_array_make(pool, 1, sizeof(us_ingest_result));
    us_ingest_result *r = apr_array_push(results);
    memset(r, 0, sizeof(*r));
    r->name = "pending.txt";
    r->file_id = sc_uuid(pool, 907460);
    r->size = 1;
    r->status = "FAILED";
    r->reason = "FILE_ALREADY_EXISTS";
    r->characters = -1;
    assert_int_equal(us_session_close(db, pool, "ws-ref", s.id, SC_T0 + 1), US_DB_OK);
    assert_int_equal(us_ingest_apply(db, pool, &s, results, SC_T0 + 2, &deleted), US_DB_OK);
    assert_int_equal(us_file_id_referenced(db, pool, sc_uuid(pool, 907460), &ref), US_DB_OK);
    assert_int_equal(ref, 0);
    us_db_close(db);
}

/* A turn (the files sweep's) is held by one taker at a time, given back
 * with a place and a next time, and taken over once its hold lapsed. */
static void sc_turn(void **state)
{
    us_db *db = sc_open(pool);
    us_turn t, u;
    apr_time_t now = SC_T0;
    (void)state;
    assert_int_equal(us_turn_take(db, pool, "sc-turn", now, SC_SEC(60), &t), US_DB_OK);
    assert_string_equal(t.place, "");
    assert_int_equal(us_turn_take(db, pool, "sc-turn", now + SC_SEC(1), SC_SEC(60), &u),
                     US_DB_CONFLICT);
    assert_int_equal(us_turn_give(db, pool, &t, now + SC_SEC(10), "file-42"), US_DB_OK);
    assert_int_equal(us_turn_take(db, pool, "sc-turn", now + SC_SEC(9), SC_SEC(60), &u),
                     US_DB_CONFLICT); /* its next time is to come */
    assert_int_equal(us_turn_take(db, pool, "sc-turn", now + SC_SEC(10), SC_SEC(60), &u),
                     US_DB_OK);
    assert_string_equal(u.place, "file-42");
    /* u's taker dies: its hold lapses, another takes over where it was */
    assert_int_equal(us_turn_take(db, pool, "sc-turn", now + SC_SEC(71), SC_SEC(60), &t),
                     US_DB_OK);
    assert_string_equal(t.place, "file-42");
    assert_int_equal(us_turn_give(db, pool, &u, now + SC_SEC(80), "stale"), US_DB_CONFLICT);
    assert_int_equal(us_turn_give(db, pool, &t, now + SC_SEC(80), ""), US_DB_OK);
    assert_int_equal(us_turn_take(db, pool, "sc-turn", now + SC_SEC(80), SC_SEC(60), &u),
                     US_DB_OK);
    assert_string_equal(u.place, "");
    /* another turn is another row */
    assert_int_equal(us_turn_take(db, pool, "sc-turn-2", now + SC_SEC(80), SC_SEC(60), &t),
                     US_DB_OK);
    us_db_close(db);
}

/* The metadata swap applies only over the value read. */
static void sc_workspace_file_meta_swap(void **state)
{
    us_db *db = sc_open(pool);
    apr_array_header_t *deleted;
    us_workspace_file got, a = sc_workspace_file(2101, "a.txt", SC_T0);
    (void)state;
    assert_int_equal(us_workspace_file_add(db, pool, "ws-m", &a, "KEEP", &deleted), US_DB_OK);
    assert_int_equal(us_workspace_file_meta_swap(db, pool, "ws-m", a.file_id, NULL, "{\"k\":1}"), US_DB_OK);
    assert_int_equal(us_workspace_file_meta_swap(db, pool, "ws-m", a.file_id, NULL, "{\"k\":2}"),
                     US_DB_CONFLICT);
    assert_int_equal(us_workspace_file_get(db, pool, "ws-m", a.file_id, &got), US_DB_OK);
    assert_string_equal(got.meta, "{\"k\":1}");
    assert_int_equal(us_workspace_file_meta_swap(db, pool, "ws-m", a.file_id, got.meta, "{}"), US_DB_OK);
    assert_int_equal(us_workspace_file_get(db, pool, "ws-m", a.file_id, &got), US_DB_OK);
    assert_string_equal(got.meta, "{}");
    assert_int_equal(us_workspace_file_meta_swap(db, pool, "ws-x", a.file_id, "{}", "{}"), US_DB_NOTFOUND);
    assert_int_equal(us_workspace_file_meta_swap(db, pool, "ws-m", sc_uuid(pool, 2199), NULL, "{}"),
                     US_DB_NOTFOUND);
    us_db_close(db);
}

/* The names a filter selects in workspace ws, newest first, joined by spaces; total checked. */
static const char *sc_filtered_in(us_db *db, const char *ws, const char *filter)
{
    us_odata_node *root;
    const char *err = NULL, *names = "";
    apr_array_header_t *rows;
    long long total = -1;
    if (!us_odata_parse(pool, filter, strlen(filter), &root, &err))
        fail_msg("%s: %s", filter, err);
    us_workspace_file_query q = { .name_part = "", .filter = root, .after_at = 0, .after_id = NULL, .limit = 100 };
    us_db_rc rc = us_workspace_file_list(db, pool, ws, &q, &rows, &total);
    if (rc != US_DB_OK)
        fail_msg("%s: store error %d: %s", filter, rc, us_db_error(db));
    for (int i = 0; i < rows->nelts; i++)
        names = apr_pstrcat(pool, names, i ? " " : "", APR_ARRAY_IDX(rows, i, us_workspace_file).name, NULL);
    if (total != rows->nelts)
        fail_msg("%s: total %lld for %d rows", filter, total, rows->nelts);
    return names;
}

static const char *sc_filtered(us_db *db, const char *filter)
{
    return sc_filtered_in(db, "ws-q", filter);
}

#define SC_FILTER_IN(db, ws, filter, want)                                               \
    do {                                                                                 \
        const char *got_ = sc_filtered_in(db, ws, filter);                               \
        if (strcmp(got_, want) != 0)                                                     \
            fail_msg("%s:\n  got  [%s]\n  want [%s]", filter, got_, want);               \
    } while (0)
#define SC_FILTER(db, filter, want) SC_FILTER_IN(db, "ws-q", filter, want)

/* Whether this process's long double holds 2^53 + 1 (computed at run time,
 * as SQLite's INTEGER-REAL comparison computes it). */
static int sc_long_double_holds_int64(void)
{
    volatile long long big = 9007199254740993LL;
    volatile long double x = (long double)big;
    return x != (long double)9007199254740992.0;
}

/* API.md's OData semantics, evaluated by the store: types never match
 * across, a missing key matches only `eq null`, `not` is two-valued,
 * numbers compare as numbers, strings byte by byte. Newest first: e d c b a. */
static void sc_workspace_file_filter(void **state)
{
    us_db *db = sc_open(pool);
    apr_array_header_t *deleted, *rows;
    long long total;
    (void)state;
    static const char *const metas[] = {
        "{\"kind\":\"small\",\"n\":1,\"f\":1.5,\"ok\":true,\"d\":\"2024-01-31T10:00:00Z\","
        "\"nested\":{\"x\":\"y\"},\"q\":\"it's\",\"pct\":\"50%_\"}",
        "{\"kind\":\"big\",\"n\":3,\"ok\":false,\"d\":\"2024-02-01\",\"z\":null}",
        "{\"kind\":\"small\",\"n\":\"3\",\"d\":\"now\"}",
        NULL,
        "{\"n\":3.0,\"kind\":\"Small\",\"d\":\"2024-01-31T12:00:00+02:00\"}",
    };
    static const char *const names[] = { "a.txt", "b.pdf", "c.txt", "d.md", "e.txt" };
    for (int i = 0; i < 5; i++) {
        us_workspace_file f = sc_workspace_file(2001 + i, names[i], SC_T0 + i + 1);
        f.meta = metas[i];
        assert_int_equal(us_workspace_file_add(db, pool, "ws-q", &f, "KEEP", &deleted), US_DB_OK);
    }
    us_workspace_file other = sc_workspace_file(2100, "a.txt", SC_T0);
    other.meta = "{\"kind\":\"small\"}";
    assert_int_equal(us_workspace_file_add(db, pool, "ws-other", &other, "KEEP", &deleted), US_DB_OK);

    SC_FILTER(db, "kind eq 'small'", "c.txt a.txt");
    SC_FILTER(db, "kind ne 'small'", "e.txt b.pdf");
    SC_FILTER(db, "not kind eq 'small'", "e.txt d.md b.pdf");
    SC_FILTER(db, "kind gt 'big'", "c.txt a.txt");
    SC_FILTER(db, "n eq 3", "e.txt b.pdf");
    SC_FILTER(db, "n eq 3.0", "e.txt b.pdf");
    SC_FILTER(db, "n eq '3'", "c.txt");
    SC_FILTER(db, "n ge 1", "e.txt b.pdf a.txt");
    SC_FILTER(db, "f lt 2", "a.txt");
    SC_FILTER(db, "ok eq true", "a.txt");
    SC_FILTER(db, "ok eq false", "b.pdf");
    SC_FILTER(db, "ok eq 1", "");
    SC_FILTER(db, "ok ne true", "b.pdf");
    SC_FILTER(db, "z eq null", "e.txt d.md c.txt b.pdf a.txt");
    SC_FILTER(db, "z ne null", "");
    SC_FILTER(db, "kind eq null", "d.md");
    SC_FILTER(db, "kind ne null", "e.txt c.txt b.pdf a.txt");
    SC_FILTER(db, "nested/x eq 'y'", "a.txt");
    SC_FILTER(db, "nested eq 'y'", "");
    SC_FILTER(db, "q eq 'it''s'", "a.txt");
    SC_FILTER(db, "pct eq '50%_'", "a.txt");
    SC_FILTER(db, "contains(pct, '%')", "a.txt");
    SC_FILTER(db, "d ge 2024-02-01T00:00:00Z", "b.pdf");
    SC_FILTER(db, "d lt 2024-02-01", "e.txt a.txt");
    SC_FILTER(db, "d eq 2024-01-31T10:00:00Z", "e.txt a.txt");
    SC_FILTER(db, "kind in ('big', 'Small')", "e.txt b.pdf");
    SC_FILTER(db, "n in (1, '3')", "c.txt a.txt");
    SC_FILTER(db, "contains(kind, 'mall')", "e.txt c.txt a.txt");
    SC_FILTER(db, "contains(kind, 'sma')", "c.txt a.txt");
    SC_FILTER(db, "startswith(kind, 'S')", "e.txt");
    SC_FILTER(db, "startswith(kind, '')", "e.txt c.txt b.pdf a.txt");
    SC_FILTER(db, "endswith(name, '.txt')", "e.txt c.txt a.txt");
    SC_FILTER(db, "endswith(kind, '')", "e.txt c.txt b.pdf a.txt");
    SC_FILTER(db, "contains(n, '3')", "c.txt");
    SC_FILTER(db, "startswith(name, 'a')", "a.txt");
    SC_FILTER(db, "name eq 'b.pdf' or n eq 1", "b.pdf a.txt");
    SC_FILTER(db, "kind eq 'small' and n eq 1", "a.txt");
    SC_FILTER(db, "not (kind eq 'small' or kind eq 'big')", "e.txt d.md");
    SC_FILTER(db, "size ge 2004", "e.txt d.md");
    SC_FILTER(db, "size eq '2004'", "");
    SC_FILTER(db, "name ne null", "e.txt d.md c.txt b.pdf a.txt");
    SC_FILTER(db, apr_psprintf(pool, "file_id eq '%s'", sc_uuid(pool, 2002)), "b.pdf");
    char ts[US_TS_LEN];
    us_time_format(SC_T0 + 4, ts);
    SC_FILTER(db, apr_psprintf(pool, "created_at ge %s", ts), "e.txt d.md");
    SC_FILTER(db, apr_psprintf(pool, "created_at lt '%s'", ts), "c.txt b.pdf a.txt");
    SC_FILTER(db, "created_at eq 'yesterday'", "");
    /* counts from the key table: a key's index range, the other terms by file */
    SC_FILTER(db, "kind eq 'small' and z eq null", "c.txt a.txt");
    SC_FILTER(db, "kind eq 'big' and z eq null", "b.pdf"); /* z: null */
    SC_FILTER(db, "kind eq 'big' and z ne null", "");
    SC_FILTER(db, "z eq null and kind eq 'big' and ok ne true", "b.pdf");
    SC_FILTER(db, "ok ne true and kind ne 'small'", "b.pdf");
    SC_FILTER(db, "kind eq 'small' and nested/x eq 'y'", "a.txt");
    SC_FILTER(db, "nested ne null and kind eq 'small'", "a.txt");
    SC_FILTER(db, "nested/x ne null and kind ne null", "a.txt");
    SC_FILTER(db, "kind eq 'small' and name eq 'c.txt'", "c.txt");
    SC_FILTER(db, "n eq 3 and not (kind eq 'big')", "e.txt");
    SC_FILTER(db, "n eq '3' and kind eq 'small'", "c.txt");
    SC_FILTER(db, "n ge 3 and kind in ('small', 'big')", "b.pdf");
    SC_FILTER(db, "kind ne null and n in (1, null)", "a.txt");
    SC_FILTER(db, "kind ne null and (n eq 1 or size ge 2005)", "e.txt a.txt");
    SC_FILTER(db, "d ge 2024-02-01T00:00:00Z and kind ne 'x'", "b.pdf");
    SC_FILTER(db, "d le 2024-01-31T10:00:00Z and kind ne 'x'", "e.txt a.txt");
    SC_FILTER(db, "startswith(kind, 's') and n ne 1", ""); /* c's n is a string */
    SC_FILTER(db, "startswith(kind, 's') and not (n eq 1)", "c.txt");
    SC_FILTER(db, "contains(n, '3') and kind eq 'small'", "c.txt");
    SC_FILTER(db, "ok eq false and kind eq 'big'", "b.pdf");
    SC_FILTER(db, "ok gt null and kind eq 'big'", "");
    SC_FILTER(db, "f eq 1.5 and ok eq true", "a.txt");
    SC_FILTER(db, "q eq 'it''s' and pct eq '50%_'", "a.txt");
    /* a decimal literal against the size, exactly: sizes 0, 10 and 11 */
    static const int sizes[] = { 0, 10, 11 };
    for (int i = 0; i < 3; i++) {
        us_workspace_file f = sc_workspace_file(2201 + i, apr_psprintf(pool, "s%d", sizes[i]), SC_T0 + i + 1);
        f.size = sizes[i];
        assert_int_equal(us_workspace_file_add(db, pool, "ws-s", &f, "KEEP", &deleted), US_DB_OK);
    }
    SC_FILTER_IN(db, "ws-s", "size lt 10.0000001", "s10 s0");
    SC_FILTER_IN(db, "ws-s", "size eq 0.0000001", "");
    SC_FILTER_IN(db, "ws-s", "size ge 0.0000001", "s11 s10");
    SC_FILTER_IN(db, "ws-s", "size gt 10.9999999", "s11");
    /* an integer past a double's 53 bits against a decimal literal,
     * exactly, as SQLite compares an INTEGER with a REAL (and Python an int
     * with a float): 2^53 + 1 is no double, the literal 2^53 is one; a
     * float is compared as a double (2^53 + 1 reads as 2^53) */
    us_workspace_file big = sc_workspace_file(2211, "b53", SC_T0 + 5);
    big.meta = "{\"b\":9007199254740993,\"r\":9007199254740992.0}";
    assert_int_equal(us_workspace_file_add(db, pool, "ws-b", &big, "KEEP", &deleted), US_DB_OK);
    SC_FILTER_IN(db, "ws-b", "b lt 9007199254740994.0", "b53");
    SC_FILTER_IN(db, "ws-b", "b eq 9007199254740993", "b53");
    SC_FILTER_IN(db, "ws-b", "r eq 9007199254740993.0", "b53");
    /* SQLite compares an INTEGER with a REAL as long doubles: exact where a
     * long double holds 64 bits, not under valgrind, which computes long
     * doubles as doubles (2^53 + 1 reads as 2^53 there) */
    if (strcmp(sc_target->backend->name, "sqlite") != 0 || sc_long_double_holds_int64()) {
        SC_FILTER_IN(db, "ws-b", "b eq 9007199254740992.0", "");
        SC_FILTER_IN(db, "ws-b", "b eq 9007199254740993.0", ""); /* the literal is 2^53 */
        SC_FILTER_IN(db, "ws-b", "b ne 9007199254740992.0", "b53");
        SC_FILTER_IN(db, "ws-b", "b gt 9007199254740992.0", "b53");
        SC_FILTER_IN(db, "ws-b", "b le 9007199254740992.0", "");
        SC_FILTER_IN(db, "ws-b", "r lt 9007199254740993", "b53");
    }

    /* with the name part, the limit and the cursor: total counts every match */
    us_odata_node *root;
    const char *err;
    assert_true(us_odata_parse(pool, "kind ne 'big'", 13, &root, &err));
    us_workspace_file_query q = { .name_part = ".txt", .filter = root, .after_at = 0, .after_id = NULL, .limit = 1 };
    assert_int_equal(us_workspace_file_list(db, pool, "ws-q", &q, &rows, &total), US_DB_OK);
    assert_int_equal(total, 3);
    assert_int_equal(rows->nelts, 1);
    const us_workspace_file *first = &APR_ARRAY_IDX(rows, 0, us_workspace_file);
    assert_string_equal(first->name, "e.txt");
    q.after_at = first->created_at;
    q.after_id = first->file_id;
    q.limit = 5;
    assert_int_equal(us_workspace_file_list(db, pool, "ws-q", &q, &rows, &total), US_DB_OK);
    assert_int_equal(total, 3);
    assert_int_equal(rows->nelts, 2);
    assert_string_equal(APR_ARRAY_IDX(rows, 0, us_workspace_file).name, "c.txt");
    assert_string_equal(APR_ARRAY_IDX(rows, 1, us_workspace_file).name, "a.txt");
    us_db_close(db);
}

/* A date-time compares only a date the month has: 2024-02-30 is no date
 * (SQLite's date functions would roll it over to 1 March), on the file's
 * metadata and on the key table alike. */
static void sc_filter_dates_the_month_has(void **state)
{
    us_db *db = sc_open(pool);
    apr_array_header_t *deleted;
    (void)state;
    static const char *const metas[] = { "{\"d\":\"2024-02-30\"}",
                                         "{\"d\":\"2024-02-29T12:00:00Z\"}",
                                         "{\"d\":\"2023-02-29\"}" };
    static const char *const names[] = { "feb30.txt", "leap.txt", "feb29-2023.txt" };
    for (int i = 0; i < 3; i++) {
        us_workspace_file f = sc_workspace_file(2200 + i, names[i], SC_T0 + i + 1);
        f.meta = metas[i];
        assert_int_equal(us_workspace_file_add(db, pool, "ws-dates", &f, "KEEP", &deleted), US_DB_OK);
    }
    SC_FILTER_IN(db, "ws-dates", "d gt 2024-02-29T00:00:00Z", "leap.txt");
    SC_FILTER_IN(db, "ws-dates", "d ge 2023-01-01", "leap.txt");
    SC_FILTER_IN(db, "ws-dates", "d gt 2024-02-29T00:00:00Z or d lt 2023-03-02", "leap.txt");
    us_db_close(db);
}

/* Metadata date-times compare in microseconds, as the literals are: two
 * values a microsecond apart are two instants on every store, in every
 * form a stored value may take (space for T, a zone, no zone = UTC, more
 * than six fractional digits rounded to the microsecond, a date alone =
 * its midnight), on the key table (d) and on the metadata itself (n/d).
 * Newest first: e d c b a. */
static void sc_filter_dates_in_microseconds(void **state)
{
    us_db *db = sc_open(pool);
    apr_array_header_t *deleted;
    (void)state;
    static const char *const metas[] = {
        "{\"d\":\"2024-05-01T10:00:00.000001Z\",\"n\":{\"d\":\"2024-05-01T10:00:00.000001Z\"}}",
        "{\"d\":\"2024-05-01T10:00:00.000002Z\",\"n\":{\"d\":\"2024-05-01T10:00:00.000002Z\"}}",
        "{\"d\":\"2024-05-01 12:00:00.000003+02:00\",\"n\":{\"d\":\"2024-05-01 12:00:00.000003+02:00\"}}",
        "{\"d\":\"2024-05-01T10:00:00.0000015\",\"n\":{\"d\":\"2024-05-01T10:00:00.0000015\"}}",
        "{\"d\":\"2024-05-01\",\"n\":{\"d\":\"2024-05-01\"}}",
    };
    static const char *const names[] = { "a.txt", "b.txt", "c.txt", "d.txt", "e.txt" };
    for (int i = 0; i < 5; i++) {
        us_workspace_file f = sc_workspace_file(2300 + i, names[i], SC_T0 + i + 1);
        f.meta = metas[i];
        assert_int_equal(us_workspace_file_add(db, pool, "ws-us", &f, "KEEP", &deleted), US_DB_OK);
    }
    static const char *const keys[] = { "d", "n/d" };
    for (int k = 0; k < 2; k++) {
#define SC_US(filter, want) SC_FILTER_IN(db, "ws-us", apr_pstrcat(pool, keys[k], " " filter, NULL), want)
        SC_US("eq 2024-05-01T10:00:00.000001Z", "a.txt");
        SC_US("eq 2024-05-01T10:00:00.000002Z", "d.txt b.txt");
        SC_US("ne 2024-05-01T10:00:00.000002Z", "e.txt c.txt a.txt");
        SC_US("lt 2024-05-01T10:00:00.000002Z", "e.txt a.txt");
        SC_US("le 2024-05-01T10:00:00.000002Z", "e.txt d.txt b.txt a.txt");
        SC_US("gt 2024-05-01T10:00:00.000002Z", "c.txt");
        SC_US("ge 2024-05-01T10:00:00.000002Z", "d.txt c.txt b.txt");
        SC_FILTER_IN(db, "ws-us",
                     apr_pstrcat(pool, keys[k], " gt 2024-05-01T10:00:00.000001Z and ", keys[k],
                                 " lt 2024-05-01T10:00:00.000003Z", NULL),
                     "d.txt b.txt");
        SC_US("eq 2024-05-01T12:00:00.000003+02:00", "c.txt");
        SC_US("eq 2024-05-01", "e.txt");
        SC_US("eq 2024-05-01T10:00:00Z", "");
        SC_US("in (2024-05-01T10:00:00.000001Z, 2024-05-01T10:00:00.000003Z)", "c.txt a.txt");
#undef SC_US
    }
    us_db_close(db);
}

/* Files a.txt (n: 3) and b.txt (n: 4) in workspace ws. */
static void sc_add_n_files(us_db *db, const char *ws, int first_id)
{
    apr_array_header_t *deleted;
    us_workspace_file a = sc_workspace_file(first_id, "a.txt", SC_T0 + 1);
    us_workspace_file b = sc_workspace_file(first_id + 1, "b.txt", SC_T0 + 2);
    a.meta = "{\"n\":3}";
    b.meta = "{\"n\":4}";
    assert_int_equal(us_workspace_file_add(db, pool, ws, &a, "KEEP", &deleted), US_DB_OK);
    assert_int_equal(us_workspace_file_add(db, pool, ws, &b, "KEEP", &deleted), US_DB_OK);
}

/* An ordering with null holds for nothing, and every parameter after it
 * (later terms, the limit, the offset) still binds to its own place. */
static void sc_filter_ordering_with_null(void **state)
{
    us_db *db = sc_open(pool);
    apr_array_header_t *rows;
    long long total = -1;
    us_odata_node *root;
    const char *err;
    (void)state;
    sc_add_n_files(db, "ws-nullord", 2301);
    SC_FILTER_IN(db, "ws-nullord", "n gt null or name eq 'a.txt'", "a.txt");
    SC_FILTER_IN(db, "ws-nullord", "not (n lt null)", "b.txt a.txt");
    SC_FILTER_IN(db, "ws-nullord", "n le null or n eq 3", "a.txt");
    SC_FILTER_IN(db, "ws-nullord", "n ge null", "");
    SC_FILTER_IN(db, "ws-nullord", "n gt null and n eq 4", "");
    SC_FILTER_IN(db, "ws-nullord", "n eq 4 or (n lt null and n eq 3) or a/b ge null", "b.txt");
    assert_true(us_odata_parse(pool, "not (n lt null)", 15, &root, &err));
    us_workspace_file_query q = { .name_part = "", .filter = root, .limit = 1, .offset = 1 };
    assert_int_equal(us_workspace_file_list(db, pool, "ws-nullord", &q, &rows, &total), US_DB_OK);
    assert_int_equal(total, 2);
    assert_int_equal(rows->nelts, 1);
    assert_string_equal(APR_ARRAY_IDX(rows, 0, us_workspace_file).name, "a.txt");
    us_db_close(db);
}

/* count terms of term joined by sep, the last one last (a filter of
 * US_ODATA_MAX_TERMS terms fits in US_ODATA_MAX_BYTES). */
static const char *sc_chain(const char *term, const char *sep, int count, const char *last)
{
    const char *s = last;
    for (int i = 1; i < count; i++)
        s = apr_pstrcat(pool, term, sep, s, NULL);
    return s;
}

/* The longest chains the parser takes answer, and promptly: SQLite's
 * parser takes them (no paren per term), PostgreSQL plans them in time
 * (no key table probe per term). */
static void sc_filter_long_chains(void **state)
{
    us_db *db = sc_open(pool);
    (void)state;
    sc_add_n_files(db, "ws-chains", 2311);
    apr_time_t start = apr_time_now();
    SC_FILTER_IN(db, "ws-chains", sc_chain("n ge 3", " and ", US_ODATA_MAX_TERMS, "n le 4"), "b.txt a.txt");
    SC_FILTER_IN(db, "ws-chains", sc_chain("n ge 3", " and ", US_ODATA_MAX_TERMS, "n eq 3"), "a.txt");
    SC_FILTER_IN(db, "ws-chains", sc_chain("n eq 9", " or ", US_ODATA_MAX_TERMS, "n eq 4"), "b.txt");
    SC_FILTER_IN(db, "ws-chains", sc_chain("name ne 'x'", " and ", 200, "n eq 4"), "b.txt");
    SC_FILTER_IN(db, "ws-chains",
                 apr_pstrcat(pool, "n ge 3 and (", sc_chain("n eq 9", " or ", 200, "n eq 3"), ")", NULL),
                 "a.txt");
    SC_FILTER_IN(db, "ws-chains", apr_pstrcat(pool, "not (", sc_chain("n eq 9", " or ", 200, "n eq 3"), ")", NULL),
                 "b.txt");
    assert_true(apr_time_now() - start < apr_time_from_sec(5));
    us_db_close(db);
}

/* The key table follows every write of a file's metadata: a PUT/PATCH
 * (meta swap), an overwrite, a delete; another workspace's keys never
 * count. */
static void sc_workspace_file_filter_follows_changes(void **state)
{
    us_db *db = sc_open(pool);
    apr_array_header_t *deleted;
    (void)state;
    us_workspace_file a = sc_workspace_file(2201, "a.txt", SC_T0 + 1);
    a.meta = "{\"k\":\"a\",\"n\":1}";
    assert_int_equal(us_workspace_file_add(db, pool, "ws-q", &a, "KEEP", &deleted), US_DB_OK);
    us_workspace_file other = sc_workspace_file(2202, "a.txt", SC_T0 + 2);
    other.meta = a.meta;
    assert_int_equal(us_workspace_file_add(db, pool, "ws-other", &other, "KEEP", &deleted), US_DB_OK);
    SC_FILTER(db, "k eq 'a' and n eq 1", "a.txt");
    assert_int_equal(us_workspace_file_meta_swap(db, pool, "ws-q", a.file_id, a.meta, "{\"k\":\"b\",\"n\":null}"),
                     US_DB_OK);
    SC_FILTER(db, "k eq 'a' and n eq 1", "");
    SC_FILTER(db, "k eq 'b' and n eq null", "a.txt");
    SC_FILTER(db, "k eq 'b' and n ne null", "");
    assert_int_equal(us_workspace_file_meta_swap(db, pool, "ws-q", a.file_id, "{\"k\":\"b\",\"n\":null}", NULL),
                     US_DB_OK);
    SC_FILTER(db, "k eq 'b'", "");
    SC_FILTER(db, "k ne 'b' and n eq null", "");
    SC_FILTER(db, "k eq null and n eq null", "a.txt");
    us_workspace_file a2 = sc_workspace_file(2203, "a.txt", SC_T0 + 3);
    a2.meta = "{\"k\":\"c\",\"n\":2}";
    assert_int_equal(us_workspace_file_add(db, pool, "ws-q", &a2, "OVERWRITE", &deleted), US_DB_OK);
    SC_FILTER(db, "k eq 'c' and n ge 2", "a.txt");
    SC_FILTER(db, "k ne 'c' or n lt 2", "");
    us_workspace_file b = sc_workspace_file(2204, "b.txt", SC_T0 + 4);
    b.meta = "{\"k\":\"c\",\"n\":\"2\"}"; /* a number written as a string */
    assert_int_equal(us_workspace_file_add(db, pool, "ws-q", &b, "KEEP", &deleted), US_DB_OK);
    SC_FILTER(db, "k eq 'c' and n ge 2", "a.txt");
    SC_FILTER(db, "k eq 'c' and n eq '2'", "b.txt");
    SC_FILTER(db, "k eq 'c'", "b.txt a.txt");
    assert_int_equal(us_workspace_file_delete(db, pool, "ws-q", a2.file_id), US_DB_OK);
    SC_FILTER(db, "k eq 'c' and n ge 2", "");
    SC_FILTER(db, "k eq 'c'", "b.txt");
    /* a key written twice: the count agrees with the list, whichever value wins */
    us_workspace_file c = sc_workspace_file(2205, "c.txt", SC_T0 + 5);
    c.meta = "{\"k\":\"d\",\"k\":\"e\"}";
    assert_int_equal(us_workspace_file_add(db, pool, "ws-q", &c, "KEEP", &deleted), US_DB_OK);
    (void)sc_filtered(db, "k eq 'd' and k ne null");
    (void)sc_filtered(db, "k eq 'e' and k ne null");
    us_db_close(db);
}

/* The names of one page of ws-o in the query's order. */
static const char *sc_page(us_db *db, const us_workspace_file_query *q, long long want_total)
{
    apr_array_header_t *rows;
    long long total = -1;
    const char *names = "";
    if (us_workspace_file_list(db, pool, "ws-o", q, &rows, &total) != US_DB_OK)
        fail_msg("list: %s", us_db_error(db));
    if (total != want_total)
        fail_msg("total %lld, want %lld", total, want_total);
    for (int i = 0; i < rows->nelts; i++)
        names = apr_pstrcat(pool, names, i ? " " : "", APR_ARRAY_IDX(rows, i, us_workspace_file).name, NULL);
    return names;
}

/* Sorting by created_at or name, either way, file_id breaking ties; the
 * cursor after (value, id) in that order; offsets. */
static void sc_workspace_file_order(void **state)
{
    us_db *db = sc_open(pool);
    apr_array_header_t *deleted;
    (void)state;
    /* created in this order; "b" twice, at the same instant: file_id decides */
    static const char *const names[] = { "c", "a", "b", "b", "d" };
    static const int ats[] = { 1, 2, 3, 3, 4 };
    for (int i = 0; i < 5; i++) {
        us_workspace_file f = sc_workspace_file(4001 + i, names[i], SC_T0 + ats[i]);
        assert_int_equal(us_workspace_file_add(db, pool, "ws-o", &f, "KEEP", &deleted), US_DB_OK);
    }
    us_workspace_file_query q;
    memset(&q, 0, sizeof(q));
    q.name_part = "";
    q.limit = 10;
    assert_string_equal(sc_page(db, &q, 5), "d b b a c");
    q.ascending = 1;
    assert_string_equal(sc_page(db, &q, 5), "c a b b d");
    q.by_name = 1;
    assert_string_equal(sc_page(db, &q, 5), "a b b c d");
    q.ascending = 0;
    assert_string_equal(sc_page(db, &q, 5), "d c b b a");
    /* by name, descending: after the first "b" (the larger file_id, 4004) comes the other */
    q.after_name = "b";
    q.after_id = sc_uuid(pool, 4004);
    assert_string_equal(sc_page(db, &q, 5), "b a");
    q.ascending = 1;
    q.after_id = sc_uuid(pool, 4003);
    assert_string_equal(sc_page(db, &q, 5), "b c d");
    /* by created_at, ascending, after the tie's first */
    q.by_name = 0;
    q.after_at = SC_T0 + 3;
    assert_string_equal(sc_page(db, &q, 5), "b d");
    /* offsets: the second page of two */
    q.after_id = NULL;
    q.limit = 2;
    q.offset = 2;
    assert_string_equal(sc_page(db, &q, 5), "b b");
    q.ascending = 0;
    q.offset = 4;
    assert_string_equal(sc_page(db, &q, 5), "c");
    q.offset = 6;
    assert_string_equal(sc_page(db, &q, 5), "");
    us_db_close(db);
}

/* ---- names in byte order ------------------------------------------------------------ */

/* Names a linguistic collation orders otherwise: by bytes they come
 * B.txt _z.txt a-2.txt a1.txt b.txt; en-US puts _z.txt first and B.txt
 * after b.txt. */
static const char *const sc_odd_names[] = { "_z.txt", "a-2.txt", "a1.txt", "b.txt", "B.txt" };

/* Session 1 of workspace ws-o with an upload of each odd name, all at one
 * instant; files of the same names in ws-o, created at one instant; and
 * workspaces named after them (without ".txt"). */
static void sc_odd_names_fill(us_db *db)
{
    apr_array_header_t *deleted;
    const char *old = NULL;
    us_session s = sc_session(sc_uuid(pool, 1), "ws-o", "u-o", SC_T0, 100);
    assert_int_equal(us_session_insert(db, pool, &s, 10, SC_T0), US_DB_OK);
    for (int i = 0; i < 5; i++) {
        us_upload_record u;
        memset(&u, 0, sizeof(u));
        u.session_id = s.id;
        u.name = sc_odd_names[i];
        u.blob = apr_psprintf(pool, "blob-%d", i + 1);
        u.sha256 = "00";
        u.file_ingestion_id = sc_uuid(pool, 900001 + i);
        u.size = 1;
        u.uploaded_at = SC_T0 + 1;
        assert_int_equal(us_upload_commit(db, pool, &u, SC_T0, &old), US_DB_OK);
        us_workspace_file f = sc_workspace_file(4001 + i, sc_odd_names[i], SC_T0 + 1);
        assert_int_equal(us_workspace_file_add(db, pool, "ws-o", &f, "KEEP", &deleted), US_DB_OK);
        const char *ws = apr_pstrndup(pool, sc_odd_names[i], strlen(sc_odd_names[i]) - 4);
        assert_int_equal(us_workspace_create(db, pool, ws, sc_uuid(pool, 4101 + i), SC_T0), US_DB_OK);
    }
}

/* The session's files (all, or those of status), by offset or around a
 * cursor (B.txt is upload 900005, _z.txt 900001, b.txt 900004). */
static const char *sc_odd_files(us_db *db, const char *status, long long offset, const char *cursor,
                                int before)
{
    us_page pg = { 10, offset, cursor, before };
    apr_array_header_t *rows = NULL;
    long long total = -1;
    int more = -1;
    assert_int_equal(us_session_files_list(db, pool, sc_uuid(pool, 1), status, &pg,
                                           &rows, &total, &more), US_DB_OK);
    assert_int_equal(total, 5);
    return sc_page_ids(rows, 1);
}

static void sc_odd_names_check(us_db *db)
{
    apr_array_header_t *rows;
    const char *names = "";
    assert_string_equal(sc_odd_files(db, NULL, 0, NULL, 0), "B.txt,_z.txt,a-2.txt,a1.txt,b.txt");
    assert_string_equal(sc_odd_files(db, "PENDING", 3, NULL, 0), "a1.txt,b.txt");
    assert_string_equal(sc_odd_files(db, NULL, 0, sc_uuid(pool, 900005), 0), "_z.txt,a-2.txt,a1.txt,b.txt");
    assert_string_equal(sc_odd_files(db, NULL, 0, sc_uuid(pool, 900001), 1), "B.txt");
    assert_string_equal(sc_odd_files(db, "PENDING", 0, sc_uuid(pool, 900004), 1),
                        "B.txt,_z.txt,a-2.txt,a1.txt");
    /* the ingest worker's pages */
    assert_int_equal(us_ingest_pending(db, pool, sc_uuid(pool, 1), "", 10, &rows), US_DB_OK);
    for (int i = 0; i < rows->nelts; i++)
        names = apr_pstrcat(pool, names, i ? " " : "", APR_ARRAY_IDX(rows, i, us_pending).name, NULL);
    assert_string_equal(names, "B.txt _z.txt a-2.txt a1.txt b.txt");
    assert_int_equal(us_ingest_pending(db, pool, sc_uuid(pool, 1), "B.txt", 1, &rows), US_DB_OK);
    assert_int_equal(rows->nelts, 1);
    assert_string_equal(APR_ARRAY_IDX(rows, 0, us_pending).name, "_z.txt");
    /* the workspace's files by name, either way, after a cursor; compared by name */
    us_workspace_file_query q;
    memset(&q, 0, sizeof(q));
    q.name_part = "";
    q.limit = 10;
    q.by_name = 1;
    q.ascending = 1;
    assert_string_equal(sc_page(db, &q, 5), "B.txt _z.txt a-2.txt a1.txt b.txt");
    q.ascending = 0;
    assert_string_equal(sc_page(db, &q, 5), "b.txt a1.txt a-2.txt _z.txt B.txt");
    q.ascending = 1;
    q.after_name = "B.txt";
    q.after_id = sc_uuid(pool, 4005);
    assert_string_equal(sc_page(db, &q, 5), "_z.txt a-2.txt a1.txt b.txt");
    SC_FILTER_IN(db, "ws-o", "name lt 'a'", "B.txt _z.txt");
    /* every workspace, by name */
    assert_int_equal(us_workspace_list(db, pool, NULL, &rows), US_DB_OK);
    names = "";
    for (int i = 0; i < rows->nelts; i++)
        names = apr_pstrcat(pool, names, i ? " " : "", APR_ARRAY_IDX(rows, i, us_workspace).name, NULL);
    assert_string_equal(names, "B _z a-2 a1 b ws-o");
}

/* Every list ordered by a name orders by its bytes, as the module's own
 * sorts (strcmp) do: a page after a cursor continues where the one before
 * ended. */
static void sc_names_in_byte_order(void **state)
{
    us_db *db = sc_open(pool);
    (void)state;
    sc_odd_names_fill(db);
    sc_odd_names_check(db);
    us_db_close(db);
}

/* Many distinct filters on one pooled connection: it is retired once it
 * holds many prepared statements, and a fresh one answers the same. */
static void sc_many_filters_keep_answering(void **state)
{
    us_store *st;
    us_db *db;
    const char *err = NULL;
    apr_array_header_t *deleted;
    (void)state;
    assert_int_equal(us_store_create(pool, sc_cfg, 1, &st), APR_SUCCESS);
    assert_int_equal(us_store_acquire(st, &db, &err), US_DB_OK);
    us_workspace_file f = sc_workspace_file(3001, "x.txt", SC_T0);
    f.meta = "{\"k\":1}";
    assert_int_equal(us_workspace_file_add(db, pool, "ws-q", &f, "KEEP", &deleted), US_DB_OK);
    us_store_release(st, db, 0);
    for (int i = 0; i < 200; i++) {
        const char *text = "k eq 1";
        for (int j = 0; j < i % 50; j++)
            text = apr_pstrcat(pool, text, " and k eq 1", NULL);
        if (i >= 100)
            text = apr_pstrcat(pool, "not not ", text, NULL);
        assert_int_equal(us_store_acquire(st, &db, &err), US_DB_OK);
        assert_string_equal(sc_filtered(db, text), "x.txt");
        us_store_release(st, db, 0);
    }
}

/* ---- the per-process pool -------------------------------------------------------- */

static void sc_pool_acquire_release(void **state)
{
    us_store *st;
    us_db *a, *b;
    const char *err = NULL;
    (void)state;
    assert_int_equal(us_store_create(pool, sc_cfg, 2, &st), APR_SUCCESS);
    assert_int_equal(us_store_acquire(st, &a, &err), US_DB_OK);
    assert_int_equal(us_store_acquire(st, &b, &err), US_DB_OK);
    assert_ptr_not_equal(a, b);
    us_store_release(st, a, 0);
    us_store_release(st, b, 1);
    assert_int_equal(us_store_acquire(st, &a, &err), US_DB_OK);
    us_store_release(st, a, 0);
}

/* The overview: sessions by state (an unswept OPEN session past expires_at
 * counts as expired), the queue (queued + running) and its oldest entry. */
static void sc_overview(void **state)
{
    us_db *db = sc_open(pool);
    us_store_overview o;
    us_session c, s;
    const char *old;
    (void)state;
    assert_int_equal(us_store_overview_read(db, pool, SC_T0, &o), US_DB_OK);
    assert_true(o.open == 0 && o.closed == 0 && o.expired == 0);
    assert_true(o.queued == 0 && o.running == 0 && o.oldest_queued == 0);
    /* two open (one of them lives 10 s), one closed without files (nothing
     * to ingest), two queued */
    s = sc_session(sc_uuid(pool, 1000), "ws-ov", "u1", SC_T0, 1000);
    assert_int_equal(us_session_insert(db, pool, &s, 100, SC_T0), US_DB_OK);
    s = sc_session(sc_uuid(pool, 1001), "ws-ov", "u1", SC_T0, sc_target->own_clock ? 0 : 10);
    assert_int_equal(us_session_insert(db, pool, &s, 100, SC_T0), US_DB_OK);
    s = sc_session(sc_uuid(pool, 1002), "ws-ov", "u1", SC_T0, 1000);
    assert_int_equal(us_session_insert(db, pool, &s, 100, SC_T0), US_DB_OK);
    assert_int_equal(us_session_close(db, pool, "ws-ov", s.id, SC_T0 + 1), US_DB_OK);
    const char *first = sc_queued(db, 1003, "ws-ov-q", 1, SC_T0 + SC_SEC(2));
    const char *next = sc_queued(db, 1004, "ws-ov-q", 1, SC_T0 + SC_SEC(3));
    /* the close's time: the caller's, or the store's clock's */
    assert_int_equal(us_session_get(db, pool, "ws-ov-q", first, SC_T0, &s), US_DB_OK);
    const apr_time_t first_closed = s.closed_at;
    assert_int_equal(us_session_get(db, pool, "ws-ov-q", next, SC_T0, &s), US_DB_OK);
    const apr_time_t next_closed = s.closed_at;
    assert_true(sc_target->own_clock || first_closed == SC_T0 + SC_SEC(2));
    assert_true(sc_target->own_clock || next_closed == SC_T0 + SC_SEC(3));
    assert_int_equal(us_store_overview_read(db, pool, SC_T0 + SC_SEC(5), &o), US_DB_OK);
    /* a store with its own clock (30 s later) has seen the short one expire */
    assert_int_equal(o.open, sc_target->own_clock ? 1 : 2);
    assert_int_equal(o.closed, 3);
    assert_int_equal(o.expired, sc_target->own_clock ? 1 : 0);
    assert_int_equal(o.queued, 2);
    assert_int_equal(o.running, 0);
    assert_true(o.oldest_queued == first_closed);
    /* past the short one's expires_at, before the sweep */
    assert_int_equal(us_ingest_claim(db, pool, "w1", SC_T0 + SC_SEC(20), SC_T0, &c), US_DB_OK);
    assert_string_equal(c.id, first);
    assert_int_equal(us_store_overview_read(db, pool, SC_T0 + SC_SEC(20), &o), US_DB_OK);
    assert_int_equal(o.open, 1);
    assert_int_equal(o.expired, 1);
    assert_int_equal(o.queued, 1);
    assert_int_equal(o.running, 1);
    assert_true(o.oldest_queued == first_closed);
    /* done leaves the queue; an upload does not change the counts */
    assert_int_equal(us_ingest_done(db, pool, first, "w1"), US_DB_OK);
    assert_int_equal(sc_upload(db, sc_uuid(pool, 1000), "g.txt", 7, &old), US_DB_OK);
    assert_int_equal(us_store_overview_read(db, pool, SC_T0 + SC_SEC(20), &o), US_DB_OK);
    assert_int_equal(o.queued, 1);
    assert_int_equal(o.running, 0);
    assert_true(o.oldest_queued == next_closed);
    us_db_close(db);
}

/* The overview's closed and expired counts follow every change of a
 * session's status: a close and the sweep add to them, an abort does not,
 * and a workspace's delete takes its closed and expired sessions out. */
static void sc_overview_ended_sessions(void **state)
{
    us_db *db = sc_open(pool);
    us_store_overview o;
    apr_array_header_t *ids;
    int n = -1;
    /* by the store's clock, expired at once */
    const long brief = sc_target->own_clock ? 0 : 10;
    us_session s[] = {
        sc_session(sc_uuid(pool, 1100), "ws-end", "u-end1", SC_T0, 1000),      /* closed */
        sc_session(sc_uuid(pool, 1101), "ws-end-keep", "u-end1", SC_T0, 1000), /* closed */
        sc_session(sc_uuid(pool, 1102), "ws-end", "u-end2", SC_T0, brief),     /* expired */
        sc_session(sc_uuid(pool, 1103), "ws-end-keep", "u-end2", SC_T0, brief),
        sc_session(sc_uuid(pool, 1104), "ws-end", "u-end1", SC_T0, 1000),      /* aborted */
        sc_session(sc_uuid(pool, 1105), "ws-end", "u-end3", SC_T0, 1000),      /* open */
    };
    (void)state;
    for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++)
        assert_int_equal(us_session_insert(db, pool, &s[i], 10, SC_T0), US_DB_OK);
    assert_int_equal(us_session_close(db, pool, "ws-end", s[0].id, SC_T0 + 1), US_DB_OK);
    assert_int_equal(us_session_close(db, pool, "ws-end-keep", s[1].id, SC_T0 + 1), US_DB_OK);
    assert_int_equal(us_session_abort(db, pool, "ws-end", s[4].id, SC_T0 + 1), US_DB_OK);
    assert_int_equal(us_store_overview_read(db, pool, SC_T0 + SC_SEC(20), &o), US_DB_OK);
    assert_int_equal(o.open, 1);
    assert_int_equal(o.closed, 2);
    assert_int_equal(o.expired, 2); /* not swept yet */
    assert_int_equal(us_sessions_expire(db, pool, &n), US_DB_OK);
    assert_int_equal(n, 2);
    assert_int_equal(us_store_overview_read(db, pool, SC_T0 + SC_SEC(20), &o), US_DB_OK);
    assert_int_equal(o.open, 1);
    assert_int_equal(o.closed, 2);
    assert_int_equal(o.expired, 2);
    assert_int_equal(us_workspace_delete(db, pool, "ws-end", SC_T0 + 2, &ids), US_DB_OK);
    assert_int_equal(us_store_overview_read(db, pool, SC_T0 + SC_SEC(20), &o), US_DB_OK);
    assert_int_equal(o.open, 0);
    assert_int_equal(o.closed, 1);
    assert_int_equal(o.expired, 1);
    us_db_close(db);
}

/* ---- webhook outbox ---------------------------------------------------------------- */

static apr_array_header_t *sc_urls(int n, ...)
{
    va_list ap;
    apr_array_header_t *a = apr_array_make(pool, n > 0 ? n : 1, sizeof(const char *));
    va_start(ap, n);
    for (int i = 0; i < n; i++)
        APR_ARRAY_PUSH(a, const char *) = va_arg(ap, const char *);
    va_end(ap);
    return a;
}

/* Claims every due row at now (each for its own owner), returning them. */
static apr_array_header_t *sc_claim_all(us_db *db, apr_time_t now)
{
    apr_array_header_t *rows = apr_array_make(pool, 4, sizeof(us_webhook_row));
    us_webhook_row w;
    us_db_rc rc;
    while ((rc = us_webhook_claim(db, pool, apr_psprintf(pool, "d%d", rows->nelts), now,
                                  now + SC_SEC(60), &w)) == US_DB_OK)
        *(us_webhook_row *)apr_array_push(rows) = w;
    assert_int_equal(rc, US_DB_NOTFOUND);
    return rows;
}

/* One closed session of ws (its id from seed) whose event deliverer d1
 * then leases until now + lease: the outbox row, as claimed. */
static us_webhook_row sc_one_event_leased(us_db *db, int seed, const char *ws, apr_time_t now,
                                          apr_interval_time_t lease)
{
    us_webhook_row w;
    assert_int_equal(us_webhook_targets_set(db, pool, sc_urls(1, "http://a.example/h")),
                     US_DB_OK);
    us_session a = sc_session(sc_uuid(pool, seed), ws, "u21", SC_T0, 100);
    assert_int_equal(us_session_insert(db, pool, &a, 10, SC_T0), US_DB_OK);
    assert_int_equal(us_session_close(db, pool, ws, a.id, SC_T0 + 1), US_DB_OK);
    assert_int_equal(us_webhook_claim(db, pool, "d1", now, now + lease, &w), US_DB_OK);
    return w;
}

/* Ingests session id at once: claim, done. */
static void sc_ingest_now(us_db *db, const char *id)
{
    us_session c;
    assert_int_equal(us_ingest_claim(db, pool, "ing", SC_T0 + SC_SEC(10), SC_T0, &c), US_DB_OK);
    assert_string_equal(c.id, id);
    assert_int_equal(us_ingest_done(db, pool, id, "ing"), US_DB_OK);
}

/* Events become rows (one per URL) with the change that makes them: an
 * ingestion done, a close or expiry without files, an expiry; none for an
 * aborted session nor while no URL is set. */
static void sc_webhook_events(void **state)
{
    us_db *db = sc_open(pool);
    const char *old;
    apr_array_header_t *rows;
    us_webhook_stats st;
    apr_time_t now = SC_T0 + SC_SEC(20);
    (void)state;
    /* no URL: no row */
    us_session z = sc_session(sc_uuid(pool, 2000), "ws-hook", "u20", SC_T0, 100);
    assert_int_equal(us_session_insert(db, pool, &z, 10, SC_T0), US_DB_OK);
    assert_int_equal(us_session_close(db, pool, "ws-hook", z.id, SC_T0 + 1), US_DB_OK);
    assert_int_equal(sc_claim_all(db, now)->nelts, 0);

    assert_int_equal(us_webhook_targets_set(db, pool, sc_urls(2, "http://a.example/h",
                                                              "https://b.example/h?x=1")),
                     US_DB_OK);
    /* a close with a file: queued, no event until the ingestion is done */
    us_session a = sc_session(sc_uuid(pool, 2001), "ws-hook", "u20", SC_T0, 100);
    assert_int_equal(us_session_insert(db, pool, &a, 10, SC_T0), US_DB_OK);
    assert_int_equal(sc_upload(db, a.id, "a.txt", 2001, &old), US_DB_OK);
    assert_int_equal(sc_upload(db, a.id, "b.txt", 2002, &old), US_DB_OK);
    assert_int_equal(us_session_close(db, pool, "ws-hook", a.id, SC_T0 + 2), US_DB_OK);
    assert_int_equal(sc_claim_all(db, now)->nelts, 0);
    us_session c;
    assert_int_equal(us_ingest_claim(db, pool, "ing", SC_T0 + SC_SEC(10), SC_T0, &c), US_DB_OK);
    apr_array_header_t *results = apr_array_make(pool, 2, sizeof(us_ingest_result)), *deleted;
    *(us_ingest_result *)apr_array_push(results) = sc_finished("a.txt", sc_uuid(pool, 902001));
    us_ingest_result *f = apr_array_push(results);
    *f = sc_finished("b.txt", sc_uuid(pool, 902002));
    f->status = "FAILED";
    f->reason = "EMPTY_FILE";
    assert_int_equal(us_ingest_apply(db, pool, &c, results, SC_T0 + SC_SEC(10), &deleted),
                     US_DB_OK);
    assert_int_equal(us_webhook_stats_read(db, pool, &st), US_DB_OK);
    assert_int_equal(st.pending, 0);
    assert_int_equal(us_ingest_done(db, pool, a.id, "ing"), US_DB_OK);
    assert_int_equal(us_webhook_stats_read(db, pool, &st), US_DB_OK);
    assert_int_equal(st.pending, 2);
    assert_int_equal(st.failed, 0);
    assert_null(st.last_error);
    rows = sc_claim_all(db, now);
    assert_int_equal(rows->nelts, 2);
    int seen_a = 0, seen_b = 0;
    for (int i = 0; i < rows->nelts; i++) {
        us_webhook_row *w = &APR_ARRAY_IDX(rows, i, us_webhook_row);
        assert_string_equal(w->event, "session.ingested");
        assert_string_equal(w->session_id, a.id);
        assert_string_equal(w->workspace, "ws-hook");
        assert_int_equal(w->uploaded_files, 2);
        assert_int_equal(w->finished_files, 1);
        assert_int_equal(w->failed_files, 1);
        assert_int_equal(w->page, 1);
        assert_int_equal(w->attempts, 0);
        assert_true(w->occurred_at > SC_SEC(1700000000)); /* the commit's wall-clock time */
        seen_a += strcmp(w->url, "http://a.example/h") == 0;
        seen_b += strcmp(w->url, "https://b.example/h?x=1") == 0;
        assert_int_equal(us_webhook_delivered(db, pool, w->id, apr_psprintf(pool, "d%d", i), 1,
                                              1), US_DB_OK);
    }
    assert_int_equal(seen_a, 1);
    assert_int_equal(seen_b, 1);
    /* one event, one time for every URL */
    assert_true(APR_ARRAY_IDX(rows, 0, us_webhook_row).occurred_at ==
                APR_ARRAY_IDX(rows, 1, us_webhook_row).occurred_at);
    assert_int_equal(us_webhook_stats_read(db, pool, &st), US_DB_OK);
    assert_int_equal(st.pending, 0);

    /* a close without files is done at once: ingested in the same change */
    us_session b = sc_session(sc_uuid(pool, 2003), "ws-hook", "u20", SC_T0, 100);
    assert_int_equal(us_session_insert(db, pool, &b, 10, SC_T0), US_DB_OK);
    assert_int_equal(us_session_close(db, pool, "ws-hook", b.id, SC_T0 + 3), US_DB_OK);
    rows = sc_claim_all(db, now);
    assert_int_equal(rows->nelts, 2);
    assert_string_equal(APR_ARRAY_IDX(rows, 0, us_webhook_row).event, "session.ingested");
    assert_string_equal(APR_ARRAY_IDX(rows, 0, us_webhook_row).session_id, b.id);
    for (int i = 0; i < rows->nelts; i++)
        assert_int_equal(us_webhook_delivered(db, pool, APR_ARRAY_IDX(rows, i, us_webhook_row).id,
                                              apr_psprintf(pool, "d%d", i), 1, 1), US_DB_OK);

    /* an expiry: session.expired with the counters of that moment, its
     * expires_at as the time; without files also ingested at once */
    us_session e = sc_session(sc_uuid(pool, 2004), "ws-hook", "u20", SC_T0, 0);
    us_session e0 = sc_session(sc_uuid(pool, 2005), "ws-hook", "u20", SC_T0, 0);
    /* they expire by the store's clock two seconds after they are made */
    e.created_at = e0.created_at = apr_time_now();
    e.expires_at = e0.expires_at = e.created_at + SC_SEC(2);
    assert_int_equal(us_session_insert(db, pool, &e, 10, SC_T0), US_DB_OK);
    assert_int_equal(us_session_insert(db, pool, &e0, 10, SC_T0), US_DB_OK);
    assert_int_equal(sc_upload(db, e.id, "x.txt", 2004, &old), US_DB_OK);
    apr_sleep(e0.expires_at - apr_time_now() + apr_time_from_msec(50));
    int n = 0;
    assert_int_equal(us_sessions_expire(db, pool, &n), US_DB_OK);
    assert_int_equal(n, 2);
    rows = sc_claim_all(db, now);
    assert_int_equal(rows->nelts, 6);
    int expired = 0, ingested = 0;
    for (int i = 0; i < rows->nelts; i++) {
        us_webhook_row *w = &APR_ARRAY_IDX(rows, i, us_webhook_row);
        if (strcmp(w->event, "session.expired") == 0) {
            expired++;
            assert_true(w->occurred_at ==
                        (strcmp(w->session_id, e.id) == 0 ? e.expires_at : e0.expires_at));
            assert_int_equal(w->uploaded_files, strcmp(w->session_id, e.id) == 0 ? 1 : 0);
        }
        else {
            ingested++;
            assert_string_equal(w->event, "session.ingested");
            assert_string_equal(w->session_id, e0.id);
        }
        assert_int_equal(us_webhook_delivered(db, pool, w->id, apr_psprintf(pool, "d%d", i), 1,
                                              1), US_DB_OK);
    }
    assert_int_equal(expired, 4);
    assert_int_equal(ingested, 2);
    /* the expired session with a file is ingested as any closed one */
    sc_ingest_now(db, e.id);
    rows = sc_claim_all(db, now);
    assert_int_equal(rows->nelts, 2);
    for (int i = 0; i < rows->nelts; i++) {
        us_webhook_row *w = &APR_ARRAY_IDX(rows, i, us_webhook_row);
        assert_string_equal(w->event, "session.ingested");
        assert_string_equal(w->session_id, e.id);
        assert_int_equal(us_webhook_delivered(db, pool, w->id, apr_psprintf(pool, "d%d", i), 1,
                                              1), US_DB_OK);
    }

    /* an aborted session: none, not even when its clearing is done */
    us_session x = sc_session(sc_uuid(pool, 2006), "ws-hook", "u20", SC_T0, 100);
    assert_int_equal(us_session_insert(db, pool, &x, 10, SC_T0), US_DB_OK);
    assert_int_equal(sc_upload(db, x.id, "x.txt", 2006, &old), US_DB_OK);
    assert_int_equal(us_session_abort(db, pool, "ws-hook", x.id, SC_T0 + 4), US_DB_OK);
    sc_ingest_now(db, x.id);
    assert_int_equal(sc_claim_all(db, now)->nelts, 0);

    /* a URL taken out of the set takes its rows with it */
    us_session y = sc_session(sc_uuid(pool, 2007), "ws-hook", "u20", SC_T0, 100);
    assert_int_equal(us_session_insert(db, pool, &y, 10, SC_T0), US_DB_OK);
    assert_int_equal(us_session_close(db, pool, "ws-hook", y.id, SC_T0 + 5), US_DB_OK);
    apr_array_header_t *dropped = NULL;
    assert_int_equal(us_webhook_targets_replace(db, pool, sc_urls(1, "http://a.example/h"),
                                                &dropped), US_DB_OK);
    assert_int_equal(dropped->nelts, 1); /* and says what went */
    assert_string_equal(APR_ARRAY_IDX(dropped, 0, us_webhook_dropped).url,
                        "https://b.example/h?x=1");
    assert_int_equal(APR_ARRAY_IDX(dropped, 0, us_webhook_dropped).pending, 1);
    rows = sc_claim_all(db, now);
    assert_int_equal(rows->nelts, 1);
    assert_string_equal(APR_ARRAY_IDX(rows, 0, us_webhook_row).url, "http://a.example/h");
    assert_int_equal(us_webhook_targets_replace(db, pool, sc_urls(0), &dropped), US_DB_OK);
    assert_int_equal(dropped->nelts, 1); /* a leased row is undelivered too */
    assert_string_equal(APR_ARRAY_IDX(dropped, 0, us_webhook_dropped).url, "http://a.example/h");
    assert_int_equal(us_webhook_stats_read(db, pool, &st), US_DB_OK);
    assert_int_equal(st.pending, 0);
    assert_int_equal(us_webhook_targets_replace(db, pool, sc_urls(0), &dropped), US_DB_OK);
    assert_int_equal(dropped->nelts, 0);
    us_db_close(db);
}

/* Sleeps until the machine's clock passes t (a store that judges leases
 * and due times by its own clock: PostgreSQL). */
static void sc_sleep_past(apr_time_t t)
{
    apr_time_t left = t - apr_time_now();
    if (left > 0)
        apr_sleep(left + apr_time_from_msec(50));
}

/* A failed attempt at row id by owner at now, due again at next_at, its
 * URL (its first failure) paused as long (no stale rows failed). */
static us_db_rc sc_retry(us_db *db, long long id, const char *owner, apr_time_t now,
                         apr_time_t next_at, const char *error, int give_up)
{
    us_webhook_failure f = { now, next_at, error, give_up, next_at - now, SC_SEC(3600), 0 };
    return us_webhook_retry(db, pool, id, owner, &f, NULL);
}

/* Retries wait for their time, keep the last error, page on, give up;
 * a deliverer whose lease was taken over changes nothing. A store with a
 * clock of its own judges leases and due times by it (the caller's now is
 * not read; a lease's length is): there the test waits for the times to
 * come, with a short lease, instead of passing later nows. */
static void sc_webhook_retry_and_pages(void **state)
{
    us_db *db = sc_open(pool);
    us_webhook_row w2;
    us_webhook_stats st;
    int own = sc_target->own_clock;
    apr_time_t now = own ? apr_time_now() : SC_T0 + SC_SEC(20);
    apr_interval_time_t lease = own ? SC_SEC(1) : SC_SEC(60), backoff = own ? SC_SEC(1) : SC_SEC(5);
    (void)state;
    us_webhook_row w = sc_one_event_leased(db, 2100, "ws-retry", now, lease);
    /* leased: nobody else gets it while the lease lives (with its own
     * clock, not even a node whose clock runs two minutes ahead) */
    apr_time_t t = own ? now + SC_SEC(120) : now + lease - SC_SEC(1);
    assert_int_equal(us_webhook_claim(db, pool, "d2", t, t + lease, &w2), US_DB_NOTFOUND);
    /* a failure: due again at next_at, not before */
    assert_int_equal(sc_retry(db, w.id, "d1", now + SC_SEC(1), now + backoff,
                              "HTTP 500 from http://a.example/h", 0), US_DB_OK);
    assert_int_equal(us_webhook_stats_read(db, pool, &st), US_DB_OK);
    assert_int_equal(st.pending, 1);
    assert_int_equal(st.failed, 0);
    assert_string_equal(st.last_error, "HTTP 500 from http://a.example/h");
    assert_true(st.last_error_at == now + SC_SEC(1));
    assert_true(st.oldest_pending > 0);
    t = own ? now : now + backoff - SC_SEC(1);
    assert_int_equal(us_webhook_claim(db, pool, "d2", t, t + lease, &w2), US_DB_NOTFOUND);
    t = now + backoff;
    if (own)
        sc_sleep_past(t);
    assert_int_equal(us_webhook_claim(db, pool, "d2", t, t + lease, &w2), US_DB_OK);
    assert_true(w2.id == w.id);
    assert_int_equal(w2.attempts, 1);
    assert_int_equal(w2.page, 1);
    /* the lease lapses: another deliverer takes the row over (at least once) */
    us_webhook_row w3;
    t += lease + SC_SEC(1);
    if (own)
        sc_sleep_past(apr_time_now() + lease);
    assert_int_equal(us_webhook_claim(db, pool, "d3", t, t + lease, &w3), US_DB_OK);
    assert_true(w3.id == w.id);
    /* the old owner can neither settle nor fail it */
    assert_int_equal(us_webhook_delivered(db, pool, w.id, "d2", 1, 1), US_DB_OK);
    assert_int_equal(sc_retry(db, w.id, "d2", now, now, "late", 1), US_DB_OK);
    assert_int_equal(us_webhook_stats_read(db, pool, &st), US_DB_OK);
    assert_int_equal(st.pending, 1);
    assert_int_equal(st.failed, 0);
    /* pages: page 1 delivered, page 2 due at once, with no error */
    assert_int_equal(us_webhook_delivered(db, pool, w.id, "d3", 1, 3), US_DB_OK);
    assert_int_equal(us_webhook_stats_read(db, pool, &st), US_DB_OK);
    assert_null(st.last_error);
    assert_int_equal(us_webhook_claim(db, pool, "d4", now + SC_SEC(67), now + SC_SEC(127), &w),
                     US_DB_OK);
    assert_int_equal(w.page, 2);
    assert_int_equal(w.attempts, 0);
    /* a repeated settle of page 1 changes nothing */
    assert_int_equal(us_webhook_delivered(db, pool, w.id, "d4", 1, 3), US_DB_OK);
    assert_int_equal(us_webhook_delivered(db, pool, w.id, "d4", 2, 3), US_DB_OK);
    assert_int_equal(us_webhook_claim(db, pool, "d5", now + SC_SEC(68), now + SC_SEC(128), &w),
                     US_DB_OK);
    assert_int_equal(w.page, 3);
    /* giving up: failed, kept, never claimed again */
    assert_int_equal(sc_retry(db, w.id, "d5", now + SC_SEC(69), now + SC_SEC(70),
                              "connection refused", 1), US_DB_OK);
    assert_int_equal(us_webhook_claim(db, pool, "d6", now + SC_SEC(999), now + SC_SEC(1059), &w),
                     US_DB_NOTFOUND);
    assert_int_equal(us_webhook_stats_read(db, pool, &st), US_DB_OK);
    assert_int_equal(st.pending, 0);
    assert_int_equal(st.failed, 1);
    assert_string_equal(st.last_error, "connection refused");
    assert_true(st.oldest_pending == 0);
    us_db_close(db);
}

/* Retention: failed rows whose last attempt is older than the cut go, the
 * oldest first, a bounded batch at a time; recent failed rows and pending
 * ones (whatever their last error's age) stay. */
static void sc_webhook_forget_failed(void **state)
{
    us_db *db = sc_open(pool);
    us_webhook_stats st;
    apr_time_t now = apr_time_now(), day = SC_SEC(86400);
    int n = -1;
    (void)state;
    assert_int_equal(us_webhook_targets_set(db, pool, sc_urls(1, "http://a.example/h")),
                     US_DB_OK);
    for (int i = 0; i < 4; i++) {
        us_session a = sc_session(sc_uuid(pool, 2200 + i), "ws-forget", "u22", SC_T0, 100);
        assert_int_equal(us_session_insert(db, pool, &a, 10, SC_T0), US_DB_OK);
        assert_int_equal(us_session_close(db, pool, "ws-forget", a.id, SC_T0 + 1), US_DB_OK);
    }
    apr_array_header_t *rows = sc_claim_all(db, now);
    assert_int_equal(rows->nelts, 4);
    /* given up 10 and 9 days ago, an hour ago; pending, its last error 10
     * days old */
    const apr_time_t at[] = { now - 10 * day, now - 9 * day, now - SC_SEC(3600), now - 10 * day };
    for (int i = 0; i < 4; i++) {
        us_webhook_row *w = &APR_ARRAY_IDX(rows, i, us_webhook_row);
        assert_int_equal(sc_retry(db, w->id, apr_psprintf(pool, "d%d", i), at[i], now + day,
                                  "HTTP 500", i < 3), US_DB_OK);
    }
    assert_int_equal(us_webhook_stats_read(db, pool, &st), US_DB_OK);
    assert_int_equal(st.failed, 3);
    assert_int_equal(st.pending, 1);
    /* kept 7 days; a batch of one takes the oldest */
    assert_int_equal(us_webhook_forget_failed(db, pool, now - 7 * day, 1, &n), US_DB_OK);
    assert_int_equal(n, 1);
    assert_int_equal(us_webhook_stats_read(db, pool, &st), US_DB_OK);
    assert_int_equal(st.failed, 2);
    assert_int_equal(us_webhook_forget_failed(db, pool, now - 7 * day, 100, &n), US_DB_OK);
    assert_int_equal(n, 1);
    assert_int_equal(us_webhook_forget_failed(db, pool, now - 7 * day, 100, &n), US_DB_OK);
    assert_int_equal(n, 0);
    assert_int_equal(us_webhook_stats_read(db, pool, &st), US_DB_OK);
    assert_int_equal(st.failed, 1);
    assert_int_equal(st.pending, 1);
    /* the pending row is claimed again once due, the recent failed one never */
    us_webhook_row w;
    assert_int_equal(us_webhook_claim(db, pool, "d9", now + day, now + day + SC_SEC(60), &w),
                     sc_target->own_clock ? US_DB_NOTFOUND : US_DB_OK);
    if (!sc_target->own_clock)
        assert_true(w.id == APR_ARRAY_IDX(rows, 3, us_webhook_row).id);
    us_db_close(db);
}

/* A release (a shutdown cut the POST short): due again at once, to any
 * deliverer, with its attempts and last error as they were. */
static void sc_webhook_release(void **state)
{
    us_db *db = sc_open(pool);
    us_webhook_row w2;
    us_webhook_stats st;
    apr_time_t now = sc_target->own_clock ? apr_time_now() : SC_T0 + SC_SEC(20);
    (void)state;
    us_webhook_row w = sc_one_event_leased(db, 2150, "ws-release", now, SC_SEC(60));
    /* another owner's release changes nothing: the lease holds */
    assert_int_equal(us_webhook_release(db, pool, w.id, "d2"), US_DB_OK);
    assert_int_equal(us_webhook_claim(db, pool, "d2", now, now + SC_SEC(60), &w2),
                     US_DB_NOTFOUND);
    assert_int_equal(us_webhook_release(db, pool, w.id, "d1"), US_DB_OK);
    assert_int_equal(us_webhook_claim(db, pool, "d2", now, now + SC_SEC(60), &w2), US_DB_OK);
    assert_true(w2.id == w.id);
    assert_int_equal(w2.attempts, 0);
    assert_int_equal(w2.page, 1);
    assert_int_equal(us_webhook_stats_read(db, pool, &st), US_DB_OK);
    assert_int_equal(st.pending, 1);
    assert_null(st.last_error);
    us_db_close(db);
}

/* n closed sessions of ws (ids from seed), each an event: a row per URL. */
static void sc_events(us_db *db, int seed, const char *ws, int n)
{
    for (int i = 0; i < n; i++) {
        us_session a = sc_session(sc_uuid(pool, seed + i), ws, "u23", SC_T0, 100);
        assert_int_equal(us_session_insert(db, pool, &a, 10, SC_T0), US_DB_OK);
        assert_int_equal(us_session_close(db, pool, ws, a.id, SC_T0 + 1), US_DB_OK);
    }
}

/* The time t, waited for on a store with a clock of its own (it judges
 * pauses and leases by it), passed as the claim's now on the other. */
static apr_time_t sc_at(apr_time_t t)
{
    if (sc_target->own_clock)
        sc_sleep_past(t);
    return t;
}

/* A URL's circuit breaker: a failed attempt pauses the URL's other rows,
 * not another URL's (nor does a restart's replace of the same URLs undo
 * it); once the pause ends one attempt at a time (a probe) until one
 * settles: a release or a delivery ends the probe's pause, a delivery
 * clears the URL, whose rows are then claimed together again. */
static void sc_webhook_url_breaker(void **state)
{
    us_db *db = sc_open(pool);
    us_webhook_row w, w2;
    int own = sc_target->own_clock;
    apr_time_t now = own ? apr_time_now() : SC_T0 + SC_SEC(20);
    apr_interval_time_t pause = own ? SC_SEC(1) : SC_SEC(5), lease = SC_SEC(60);
    apr_array_header_t *dropped = NULL;
    (void)state;
    const char *urls[] = { "http://a.example/h", "http://b.example/h" };
    assert_int_equal(us_webhook_targets_set(db, pool, sc_urls(2, urls[0], urls[1])), US_DB_OK);
    sc_events(db, 2300, "ws-breaker", 4);
    assert_int_equal(us_webhook_claim(db, pool, "d0", now, now + lease, &w), US_DB_OK);
    assert_int_equal(w.url_failures, 0);
    const char *bad = w.url, *good = strcmp(w.url, urls[0]) == 0 ? urls[1] : urls[0];
    us_webhook_failure f = { now, now + SC_SEC(600), "HTTP 500", 0, pause, SC_SEC(3600), 0 };
    assert_int_equal(us_webhook_retry(db, pool, w.id, "d0", &f, NULL), US_DB_OK);
    /* the status pages' list: the paused URL, its failures and pause */
    apr_array_header_t *paused = NULL;
    assert_int_equal(us_webhook_paused_read(db, pool, now, &paused), US_DB_OK);
    assert_int_equal(paused->nelts, 1);
    assert_string_equal(APR_ARRAY_IDX(paused, 0, us_webhook_paused).url, bad);
    assert_int_equal(APR_ARRAY_IDX(paused, 0, us_webhook_paused).failures, 1);
    assert_true(APR_ARRAY_IDX(paused, 0, us_webhook_paused).paused_until == now + pause);
    /* the same URLs again (a restart): the pause holds */
    assert_int_equal(us_webhook_targets_replace(db, pool, sc_urls(2, urls[1], urls[0]),
                                                &dropped), US_DB_OK);
    assert_int_equal(dropped->nelts, 0);
    apr_array_header_t *rows = sc_claim_all(db, now);
    assert_int_equal(rows->nelts, 4); /* the other URL's, the bad one's 3 others wait */
    for (int i = 0; i < rows->nelts; i++) {
        assert_string_equal(APR_ARRAY_IDX(rows, i, us_webhook_row).url, good);
        assert_int_equal(APR_ARRAY_IDX(rows, i, us_webhook_row).url_failures, 0);
    }
    /* paused, then one probe at a time */
    apr_time_t t = sc_at(now + pause);
    assert_int_equal(us_webhook_paused_read(db, pool, t, &paused), US_DB_OK);
    assert_int_equal(paused->nelts, 0);
    assert_int_equal(us_webhook_claim(db, pool, "p1", t, t + lease, &w), US_DB_OK);
    assert_string_equal(w.url, bad);
    assert_int_equal(w.url_failures, 1);
    /* a probe's lease pauses its URL too */
    assert_int_equal(us_webhook_paused_read(db, pool, t, &paused), US_DB_OK);
    assert_int_equal(paused->nelts, 1);
    assert_int_equal(APR_ARRAY_IDX(paused, 0, us_webhook_paused).failures, 1);
    assert_true(APR_ARRAY_IDX(paused, 0, us_webhook_paused).paused_until >= t + lease);
    assert_int_equal(us_webhook_claim(db, pool, "p2", t, t + lease, &w2), US_DB_NOTFOUND);
    /* a release (shutdown) ends the probe's pause: another probe */
    assert_int_equal(us_webhook_release(db, pool, w.id, "p1"), US_DB_OK);
    assert_int_equal(us_webhook_claim(db, pool, "p3", t, t + lease, &w2), US_DB_OK);
    assert_true(w2.id == w.id);
    assert_int_equal(w2.url_failures, 1);
    assert_int_equal(us_webhook_claim(db, pool, "p4", t, t + lease, &w), US_DB_NOTFOUND);
    /* a delivery clears the URL: its two rows left are claimed together */
    assert_int_equal(us_webhook_delivered(db, pool, w2.id, "p3", 1, 1), US_DB_OK);
    assert_int_equal(us_webhook_paused_read(db, pool, t, &paused), US_DB_OK);
    assert_int_equal(paused->nelts, 0);
    assert_int_equal(us_webhook_claim(db, pool, "p5", t, t + lease, &w), US_DB_OK);
    assert_int_equal(us_webhook_claim(db, pool, "p6", t, t + lease, &w2), US_DB_OK);
    assert_string_equal(w.url, bad);
    assert_string_equal(w2.url, bad);
    assert_int_equal(w.url_failures, 0);
    assert_int_equal(w2.url_failures, 0);
    assert_false(w.id == w2.id);
    /* a failure that was not the receiver's (no POST) pauses nothing */
    us_webhook_failure local = { t, t + SC_SEC(600), "bad name", 1, 0, 0, 0 };
    assert_int_equal(us_webhook_retry(db, pool, w.id, "p5", &local, NULL), US_DB_OK);
    assert_int_equal(us_webhook_release(db, pool, w2.id, "p6"), US_DB_OK);
    assert_int_equal(us_webhook_claim(db, pool, "p7", t, t + lease, &w), US_DB_OK);
    assert_true(w.id == w2.id);
    assert_int_equal(w.url_failures, 0);
    /* a URL taken out and listed again starts afresh */
    us_webhook_failure again = { t, t + SC_SEC(600), "HTTP 500", 0, SC_SEC(600), SC_SEC(3600),
                                 0 };
    assert_int_equal(us_webhook_retry(db, pool, w.id, "p7", &again, NULL), US_DB_OK);
    assert_int_equal(us_webhook_targets_replace(db, pool, sc_urls(1, good), &dropped), US_DB_OK);
    assert_int_equal(us_webhook_targets_replace(db, pool, sc_urls(2, good, bad), &dropped),
                     US_DB_OK);
    sc_events(db, 2310, "ws-breaker", 1);
    rows = sc_claim_all(db, t);
    assert_int_equal(rows->nelts, 2);
    for (int i = 0; i < rows->nelts; i++)
        assert_int_equal(APR_ARRAY_IDX(rows, i, us_webhook_row).url_failures, 0);
    us_db_close(db);
}

/* A failed attempt also fails its URL's pending rows older than the
 * retry time (stale_before), with its error, but none a live lease holds,
 * none newer, none of another URL: the counts stay true while the URL is
 * paused. */
static void sc_webhook_url_stale(void **state)
{
    us_db *db = sc_open(pool);
    us_webhook_row w, x;
    us_webhook_stats st;
    apr_time_t now = sc_target->own_clock ? apr_time_now() : SC_T0 + SC_SEC(20);
    (void)state;
    assert_int_equal(us_webhook_targets_set(db, pool, sc_urls(2, "http://a.example/h",
                                                              "http://b.example/h")),
                     US_DB_OK);
    sc_events(db, 2400, "ws-stale", 3);
    apr_sleep(apr_time_from_msec(20));
    apr_time_t cut = apr_time_now();
    apr_sleep(apr_time_from_msec(20));
    sc_events(db, 2410, "ws-stale", 1);
    assert_int_equal(us_webhook_claim(db, pool, "d0", now, now + SC_SEC(60), &w), US_DB_OK);
    /* a second row of the same URL, leased (its other rows claimed on the way) */
    int i = 1;
    do
        assert_int_equal(us_webhook_claim(db, pool, apr_psprintf(pool, "d%d", i++), now,
                                          now + SC_SEC(60), &x), US_DB_OK);
    while (strcmp(x.url, w.url) != 0);
    us_webhook_failure f = { now, now + SC_SEC(1), "HTTP 502 from here", 0, SC_SEC(1),
                             SC_SEC(3600), cut };
    assert_int_equal(us_webhook_retry(db, pool, w.id, "d0", &f, NULL), US_DB_OK);
    /* of its 4 rows: this one pending, the leased one, the newer one pending */
    assert_int_equal(us_webhook_stats_read(db, pool, &st), US_DB_OK);
    assert_int_equal(st.failed, 1);
    assert_int_equal(st.pending, 7);
    assert_string_equal(st.last_error, "HTTP 502 from here");
    /* a retry that says no stale rows fails none */
    us_webhook_failure g = { now, now + SC_SEC(1), "HTTP 502", 0, SC_SEC(1), SC_SEC(3600), 0 };
    assert_int_equal(us_webhook_retry(db, pool, x.id, apr_psprintf(pool, "d%d", i - 1), &g,
                                      NULL), US_DB_OK);
    assert_int_equal(us_webhook_stats_read(db, pool, &st), US_DB_OK);
    assert_int_equal(st.failed, 1);
    assert_int_equal(st.pending, 7);
    us_db_close(db);
}

/* Runs sql on a connection of its own to the test's database. */
static void sc_raw_exec(const char *sql)
{
    const apr_dbd_driver_t *drv = NULL;
    apr_dbd_t *h = NULL;
    const char *err = NULL;
    int nrows = 0;
    assert_int_equal(apr_dbd_get_driver(pool, sc_target->backend->driver, &drv), APR_SUCCESS);
    assert_int_equal(apr_dbd_open_ex(drv, pool, sc_params, &h, &err), APR_SUCCESS);
    int rc = apr_dbd_query(drv, h, &nrows, sql);
    if (rc != 0)
        fail_msg("%s: %s", sql, apr_dbd_error(drv, h, rc));
    apr_dbd_close(drv, h);
}

/* The URL's paused state as us_webhook_paused_read lists it at now, one
 * URL listed: its failures and pause (0 and 0 when not paused). */
static us_webhook_paused sc_url_paused(us_db *db, apr_time_t now)
{
    apr_array_header_t *paused = NULL;
    us_webhook_paused none = { NULL, 0, 0 };
    assert_int_equal(us_webhook_paused_read(db, pool, now, &paused), US_DB_OK);
    assert_true(paused->nelts <= 1);
    return paused->nelts ? APR_ARRAY_IDX(paused, 0, us_webhook_paused) : none;
}

/* A failure at now of row w leased by owner: the URL's first pause p, at
 * most 600 s; *url as it left the URL. */
static void sc_url_failure(us_db *db, const us_webhook_row *w, const char *owner,
                           apr_time_t now, apr_interval_time_t p, us_webhook_paused *url)
{
    us_webhook_failure f = { now, now + SC_SEC(600), "HTTP 503", 0, p, SC_SEC(600), 0 };
    assert_int_equal(us_webhook_retry(db, pool, w->id, owner, &f, url), US_DB_OK);
}

/* Attempts at one URL in flight at once, settled in any order: each
 * failure counts, the pause is the backoff of the count whichever settles
 * last (not that of the count its attempt read at its claim), and a
 * failure never moves the pause earlier - not one dated earlier (a node
 * whose clock runs behind), not while another attempt's probe holds the
 * URL; a probe's own failure ends its lease's pause. */
static void sc_webhook_url_pause_monotonic(void **state)
{
    us_db *db = sc_open(pool);
    us_webhook_row w[5];
    us_webhook_paused url;
    int own = sc_target->own_clock;
    apr_time_t now = own ? apr_time_now() : SC_T0 + SC_SEC(20);
    apr_interval_time_t p = SC_SEC(1), lease = SC_SEC(60);
    (void)state;
    assert_int_equal(us_webhook_targets_set(db, pool, sc_urls(1, "http://a.example/h")),
                     US_DB_OK);
    sc_events(db, 2350, "ws-monotonic", 6);
    /* four attempts in flight before the URL's first failure */
    for (int i = 0; i < 4; i++) {
        assert_int_equal(us_webhook_claim(db, pool, apr_psprintf(pool, "m%d", i), now,
                                          now + lease, &w[i]), US_DB_OK);
        assert_int_equal(w[i].url_failures, 0);
    }
    sc_url_failure(db, &w[1], "m1", now, p, &url);
    assert_int_equal(url.failures, 1);
    assert_true(url.paused_until == now + p);
    /* the attempt that read no failure settles second: backoff(2) */
    sc_url_failure(db, &w[0], "m0", now, p, &url);
    assert_int_equal(url.failures, 2);
    assert_true(url.paused_until == now + 2 * p);
    url = sc_url_paused(db, now);
    assert_int_equal(url.failures, 2);
    assert_true(url.paused_until == now + 2 * p);
    /* one dated 100 s earlier counts, and leaves the pause as it was */
    sc_url_failure(db, &w[2], "m2", now - SC_SEC(100), p, &url);
    assert_int_equal(url.failures, 3);
    assert_true(url.paused_until == now + 2 * p);
    /* once the pause is over, a probe: its lease pauses the URL */
    apr_time_t t = sc_at(now + 2 * p);
    assert_int_equal(us_webhook_claim(db, pool, "probe", t, t + lease, &w[4]), US_DB_OK);
    assert_int_equal(w[4].url_failures, 3);
    /* the last attempt from before fails meanwhile: the probe's pause holds */
    sc_url_failure(db, &w[3], "m3", t, p, &url);
    assert_int_equal(url.failures, 4);
    assert_true(url.paused_until >= t + lease);
    assert_int_equal(us_webhook_claim(db, pool, "m5", t, t + lease, &w[0]), US_DB_NOTFOUND);
    /* the probe fails: its lease's pause gives way to backoff(5), 16 s */
    sc_url_failure(db, &w[4], "probe", t, p, &url);
    assert_int_equal(url.failures, 5);
    assert_true(url.paused_until == t + 16 * p);
    url = sc_url_paused(db, t);
    assert_int_equal(url.failures, 5);
    assert_true(url.paused_until == t + 16 * p);
    /* us_webhook_backoff's doubling, at most the longest pause (600 s,
     * from the eleventh failure on): a URL at 9 and at 10 failures fails
     * once more (a probe of a row made due again) */
    for (int n = 9; n <= 10; n++) {
        sc_raw_exec(apr_psprintf(pool, "UPDATE us_webhook_targets SET failures = %d,"
                                 " paused_until = 0", n));
        sc_raw_exec("UPDATE us_webhook_outbox SET next_at = 0 WHERE state = 'pending'");
        assert_int_equal(us_webhook_claim(db, pool, "cap", t, t + lease, &w[0]), US_DB_OK);
        sc_url_failure(db, &w[0], "cap", t, p, &url);
        assert_int_equal(url.failures, n + 1);
        assert_true(url.paused_until == t + us_webhook_backoff(n + 1));
        assert_true(url.paused_until == t + (n == 9 ? SC_SEC(512) : SC_SEC(600)));
    }
    us_db_close(db);
}

/* n more due rows (ids from first) for url: a backlog, then the table's
 * statistics, as PostgreSQL's autovacuum takes them after such a change
 * (a plan made for the small table would read the whole of it). */
static void sc_backlog(const char *url, int first, int n, apr_time_t occurred)
{
    sc_raw_exec(apr_psprintf(pool,
        "INSERT INTO us_webhook_outbox (event, session_id, workspace, url, occurred_at,"
        " uploaded_files, finished_files, failed_files)"
        " WITH RECURSIVE n(i) AS (SELECT %d UNION ALL SELECT i + 1 FROM n WHERE i < %d)"
        " SELECT 'session.expired', 'backlog-' || i, 'ws-backlog', '%s', %" APR_INT64_T_FMT
        ", 0, 0, 0 FROM n", first, first + n - 1, url, (apr_int64_t)occurred));
    sc_raw_exec("ANALYZE us_webhook_outbox");
}

/* The fastest of 5 claims that find nothing due, in microseconds. */
static apr_interval_time_t sc_idle_claim_time(us_db *db, apr_time_t now)
{
    apr_interval_time_t best = -1;
    us_webhook_row w;
    for (int i = 0; i < 5; i++) {
        apr_time_t t0 = apr_time_now();
        assert_int_equal(us_webhook_claim(db, pool, "idle", now, now + SC_SEC(60), &w),
                         US_DB_NOTFOUND);
        apr_interval_time_t d = apr_time_now() - t0;
        if (best < 0 || d < best)
            best = d;
    }
    return best;
}

/* A paused URL's backlog costs a claim nothing: a claim with 10,000 of its
 * rows due takes about as long as with 200 (walking them took 4.5 ms on
 * SQLite, 8 ms on PostgreSQL, where 200 took 0.07 and 0.4 ms), and finds
 * another URL's row behind them. */
static void sc_webhook_paused_backlog(void **state)
{
    us_db *db = sc_open(pool);
    us_webhook_row w;
    apr_time_t now = sc_target->own_clock ? apr_time_now() : SC_T0 + SC_SEC(20);
    const char *paused = "http://paused.example/h", *open = "http://open.example/h";
    (void)state;
    assert_int_equal(us_webhook_targets_set(db, pool, sc_urls(2, paused, open)), US_DB_OK);
    sc_raw_exec(apr_psprintf(pool, "UPDATE us_webhook_targets SET failures = 9, paused_until ="
                             " %" APR_INT64_T_FMT " WHERE url = '%s'",
                             (apr_int64_t)(now + SC_SEC(3600)), paused));
    sc_backlog(paused, 1, 200, SC_T0);
    /* the open URL's row is due after every row of the paused one */
    sc_raw_exec(apr_psprintf(pool, "INSERT INTO us_webhook_outbox (event, session_id, workspace,"
                             " url, occurred_at, uploaded_files, finished_files, failed_files,"
                             " next_at) VALUES ('session.expired', 'behind', 'ws-backlog', '%s',"
                             " %" APR_INT64_T_FMT ", 0, 0, 0, 1)", open, (apr_int64_t)SC_T0));
    assert_int_equal(us_webhook_claim(db, pool, "d1", now, now + SC_SEC(60), &w), US_DB_OK);
    assert_string_equal(w.url, open);
    assert_string_equal(w.session_id, "behind");
    apr_interval_time_t small = sc_idle_claim_time(db, now);
    sc_backlog(paused, 201, 9800, SC_T0);
    apr_interval_time_t big = sc_idle_claim_time(db, now);
    print_message("a claim with 200 due rows of a paused URL: %" APR_TIME_T_FMT " us, with "
                  "10,000: %" APR_TIME_T_FMT " us\n", small, big);
    /* a wide margin against a loaded machine's noise: walking the rows is
     * some fifty times the 200 rows' claim, and slower still under valgrind */
    if (big > 4 * small + 2000)
        fail_msg("a paused URL's 10,000 due rows are read by the claim: %" APR_TIME_T_FMT
                 " us, %" APR_TIME_T_FMT " us with 200", big, small);
    us_db_close(db);
}

static void sc_webhook_claim_work(us_db *db, apr_pool_t *p, int i)
{
    us_webhook_row w;
    apr_time_t now = SC_T0 + SC_SEC(20);
    sc_results[i][0] = us_webhook_claim(db, p, apr_psprintf(p, "d%d", i), now, now + SC_SEC(60),
                                        &w);
}

/* Of concurrent claimers of one row exactly one gets it. */
static void sc_webhook_concurrent_claim(void **state)
{
    us_db *db = sc_open(pool);
    int ok = 0, notfound = 0;
    (void)state;
    assert_int_equal(us_webhook_targets_set(db, pool, sc_urls(1, "http://a.example/h")),
                     US_DB_OK);
    us_session a = sc_session(sc_uuid(pool, 2200), "ws-wrace", "u22", SC_T0, 100);
    assert_int_equal(us_session_insert(db, pool, &a, 10, SC_T0), US_DB_OK);
    assert_int_equal(us_session_close(db, pool, "ws-wrace", a.id, SC_T0 + 1), US_DB_OK);
    us_db_close(db);
    sc_run_threads(sc_webhook_claim_work);
    for (int i = 0; i < SC_THREADS; i++) {
        ok += sc_results[i][0] == US_DB_OK;
        notfound += sc_results[i][0] == US_DB_NOTFOUND;
    }
    assert_int_equal(ok, 1);
    assert_int_equal(notfound, SC_THREADS - 1);
}

/* ---- workspaces ---------------------------------------------------------------- */

/* A create makes the row once; get and list read it, by name. */
static void sc_workspace_create_get_list(void **state)
{
    us_db *db = sc_open(pool);
    us_workspace w;
    apr_array_header_t *rows, *names = apr_array_make(pool, 4, sizeof(const char *));
    (void)state;
    assert_int_equal(us_workspace_get(db, pool, "team-b", &w), US_DB_NOTFOUND);
    assert_int_equal(us_workspace_list(db, pool, NULL, &rows), US_DB_OK);
    assert_int_equal(rows->nelts, 0);

    assert_int_equal(us_workspace_create(db, pool, "team-b", sc_uuid(pool, 4001), SC_T0), US_DB_OK);
    assert_int_equal(us_workspace_create(db, pool, "team-a", sc_uuid(pool, 4002), SC_T0 + 1), US_DB_OK);
    /* a second create of a name, whatever the id, changes nothing */
    assert_int_equal(us_workspace_create(db, pool, "team-b", sc_uuid(pool, 4003), SC_T0 + 2),
                     US_DB_CONFLICT);
    assert_int_equal(us_workspace_get(db, pool, "team-b", &w), US_DB_OK);
    assert_string_equal(w.name, "team-b");
    assert_string_equal(w.workspace_id, sc_uuid(pool, 4001));
    assert_true(w.created_at == SC_T0);
    /* names are compared exactly */
    assert_int_equal(us_workspace_get(db, pool, "Team-b", &w), US_DB_NOTFOUND);

    assert_int_equal(us_workspace_list(db, pool, NULL, &rows), US_DB_OK);
    assert_int_equal(rows->nelts, 2);
    assert_string_equal(APR_ARRAY_IDX(rows, 0, us_workspace).name, "team-a");
    assert_string_equal(APR_ARRAY_IDX(rows, 0, us_workspace).workspace_id, sc_uuid(pool, 4002));
    assert_string_equal(APR_ARRAY_IDX(rows, 1, us_workspace).name, "team-b");

    /* by names: those that exist, in the order given */
    APR_ARRAY_PUSH(names, const char *) = "team-b";
    APR_ARRAY_PUSH(names, const char *) = "team-c";
    APR_ARRAY_PUSH(names, const char *) = "team-a";
    assert_int_equal(us_workspace_list(db, pool, names, &rows), US_DB_OK);
    assert_int_equal(rows->nelts, 2);
    assert_string_equal(APR_ARRAY_IDX(rows, 0, us_workspace).name, "team-b");
    assert_string_equal(APR_ARRAY_IDX(rows, 1, us_workspace).name, "team-a");
    apr_array_clear(names);
    assert_int_equal(us_workspace_list(db, pool, names, &rows), US_DB_OK);
    assert_int_equal(rows->nelts, 0);
    us_db_close(db);
}

/* The first session or file of a workspace makes it exist: a create of it
 * is then a conflict; data in a created workspace keeps its id. */
static void sc_workspace_exists_with_data(void **state)
{
    us_db *db = sc_open(pool);
    us_workspace w;
    apr_array_header_t *rows, *deleted;
    us_session s = sc_session(sc_uuid(pool, 4201), "ws-sessions", "u42", SC_T0, 100);
    us_session s2 = sc_session(sc_uuid(pool, 4202), "ws-made", "u42", SC_T0 + 5, 100);
    us_workspace_file f = sc_workspace_file(4203, "a.txt", SC_T0 + 3);
    (void)state;
    assert_int_equal(us_session_insert(db, pool, &s, 10, SC_T0), US_DB_OK);
    assert_int_equal(us_workspace_file_add(db, pool, "ws-files", &f, "KEEP", &deleted), US_DB_OK);
    assert_int_equal(us_workspace_get(db, pool, "ws-sessions", &w), US_DB_OK);
    assert_int_equal(strlen(w.workspace_id), 36);
    assert_true(w.created_at == SC_T0);
    assert_int_equal(us_workspace_get(db, pool, "ws-files", &w), US_DB_OK);
    assert_true(w.created_at == SC_T0 + 3);
    assert_int_equal(us_workspace_create(db, pool, "ws-sessions", sc_uuid(pool, 4204), SC_T0 + 9),
                     US_DB_CONFLICT);
    assert_int_equal(us_workspace_create(db, pool, "ws-files", sc_uuid(pool, 4205), SC_T0 + 9),
                     US_DB_CONFLICT);

    assert_int_equal(us_workspace_create(db, pool, "ws-made", sc_uuid(pool, 4206), SC_T0), US_DB_OK);
    assert_int_equal(us_session_insert(db, pool, &s2, 10, SC_T0 + 5), US_DB_OK);
    assert_int_equal(us_workspace_get(db, pool, "ws-made", &w), US_DB_OK);
    assert_string_equal(w.workspace_id, sc_uuid(pool, 4206));
    assert_true(w.created_at == SC_T0);

    /* a session refused by the open-session limit makes nothing */
    us_session s3 = sc_session(sc_uuid(pool, 4207), "ws-refused", "u42", SC_T0, 100);
    assert_int_equal(us_session_insert(db, pool, &s3, 2, SC_T0), US_DB_LIMIT);
    assert_int_equal(us_workspace_get(db, pool, "ws-refused", &w), US_DB_NOTFOUND);
    assert_int_equal(us_workspace_list(db, pool, NULL, &rows), US_DB_OK);
    assert_int_equal(rows->nelts, 3);
    us_db_close(db);
}

static void sc_workspace_create_work(us_db *db, apr_pool_t *p, int i)
{
    sc_results[i][0] = us_workspace_create(db, p, "ws-created", sc_uuid(p, 4100 + i), SC_T0);
}

/* Of concurrent creates of one name exactly one wins, and its id is kept. */
static void sc_concurrent_workspace_create(void **state)
{
    int ok = 0, conflict = 0, winner = -1;
    (void)state;
    sc_run_threads(sc_workspace_create_work);
    for (int i = 0; i < SC_THREADS; i++) {
        if (sc_results[i][0] == US_DB_OK) {
            ok++;
            winner = i;
        }
        conflict += sc_results[i][0] == US_DB_CONFLICT;
    }
    assert_int_equal(ok, 1);
    assert_int_equal(conflict, SC_THREADS - 1);
    us_db *db = sc_open(pool);
    us_workspace w;
    assert_int_equal(us_workspace_get(db, pool, "ws-created", &w), US_DB_OK);
    assert_string_equal(w.workspace_id, sc_uuid(pool, 4100 + winner));
    us_db_close(db);
}

/* 1 when ids (const char *) holds id. */
static int sc_has(const apr_array_header_t *ids, const char *id)
{
    for (int i = 0; i < ids->nelts; i++)
        if (strcmp(APR_ARRAY_IDX(ids, i, const char *), id) == 0)
            return 1;
    return 0;
}

/* A delete takes the workspace's row, sessions, uploads and files in one
 * change, trashes the files' ids and the pending uploads' ids, frees the
 * open-session slots, fences a running ingestion, queues the clears of the
 * sessions' uploads and touches no other workspace. */
static void sc_workspace_delete(void **state)
{
    us_db *db = sc_open(pool);
    apr_array_header_t *ids, *trash, *rows, *pending, *results, *deleted;
    us_session open_s = sc_session(sc_uuid(pool, 5001), "ws-del", "u-del", SC_T0, 100), got, ing;
    us_session keep_s = sc_session(sc_uuid(pool, 5002), "ws-keep", "u-keep", SC_T0, 100);
    us_session again = sc_session(sc_uuid(pool, 5003), "ws-other", "u-del", SC_T0, 100);
    us_workspace_file f = sc_workspace_file(5004, "a.txt", SC_T0 + 1);
    us_workspace_file kf = sc_workspace_file(5005, "a.txt", SC_T0 + 1);
    us_workspace w, w2;
    long long total = -1;
    const char *old;
    (void)state;
    assert_int_equal(us_workspace_delete(db, pool, "ws-del", SC_T0, &ids), US_DB_NOTFOUND);
    assert_int_equal(ids->nelts, 0);
    assert_int_equal(us_session_insert(db, pool, &open_s, 1, SC_T0), US_DB_OK);
    assert_int_equal(sc_upload(db, open_s.id, "o.txt", 11, &old), US_DB_OK);
    assert_int_equal(sc_upload(db, open_s.id, "o.txt.meta.json", 12, &old), US_DB_OK);
    /* a closed session whose ingestion is running */
    const char *closed_id = sc_queued(db, 5010, "ws-del", 0, SC_T0 + 1);
    assert_int_equal(us_ingest_claim(db, pool, "w1", SC_T0 + SC_SEC(10), SC_T0, &ing), US_DB_OK);
    assert_string_equal(ing.id, closed_id);
    assert_int_equal(us_ingest_pending(db, pool, closed_id, "", 10, &pending), US_DB_OK);
    assert_int_equal(pending->nelts, 1);
    const us_pending *pa = &APR_ARRAY_IDX(pending, 0, us_pending);
    assert_int_equal(us_workspace_file_add(db, pool, "ws-del", &f, "KEEP", &deleted), US_DB_OK);
    assert_int_equal(us_session_insert(db, pool, &keep_s, 10, SC_T0), US_DB_OK);
    assert_int_equal(sc_upload(db, keep_s.id, "k.txt", 13, &old), US_DB_OK);
    assert_int_equal(us_workspace_file_add(db, pool, "ws-keep", &kf, "KEEP", &deleted), US_DB_OK);
    assert_int_equal(us_workspace_get(db, pool, "ws-del", &w), US_DB_OK);
    /* the user's one open-session slot is taken */
    assert_int_equal(us_session_insert(db, pool, &again, 1, SC_T0), US_DB_LIMIT);

    assert_int_equal(us_workspace_delete(db, pool, "ws-del", SC_T0 + 2, &ids), US_DB_OK);
    assert_int_equal(ids->nelts, 1);
    assert_string_equal(APR_ARRAY_IDX(ids, 0, const char *), f.file_id);
    assert_int_equal(us_file_trash_list(db, pool, 100, &trash), US_DB_OK);
    /* (sc_upload records every name as a raw file) */
    assert_int_equal(trash->nelts, 4);
    assert_true(sc_has(trash, f.file_id));
    assert_true(sc_has(trash, pa->file_ingestion_id));
    assert_true(sc_has(trash, sc_uuid(pool, 900000 + 11))); /* o.txt, pending too */
    assert_true(sc_has(trash, sc_uuid(pool, 900000 + 12)));
    assert_int_equal(us_file_trash_forget(db, pool, trash), US_DB_OK);

    /* gone for every reader */
    assert_int_equal(us_workspace_get(db, pool, "ws-del", &w2), US_DB_NOTFOUND);
    assert_int_equal(us_session_get(db, pool, "ws-del", open_s.id, SC_T0 + 3, &got), US_DB_NOTFOUND);
    assert_int_equal(us_session_by_id(db, pool, closed_id, SC_T0 + 3, &got), US_DB_NOTFOUND);
    assert_int_equal(sc_session_list(db, "ws-del", -1, 10, 0, SC_T0 + 3, &rows, &total), US_DB_OK);
    assert_int_equal(total, 0);
    assert_int_equal(sc_session_list(db, "ws-del", 1, 10, 0, SC_T0 + SC_SEC(500), &rows, &total),
                     US_DB_OK);
    assert_int_equal(total, 0);
    assert_int_equal(sc_files_list(db, open_s.id, NULL, 10, 0, &rows, &total), US_DB_OK);
    assert_int_equal(total, 0);
    us_workspace_file gotf;
    assert_int_equal(us_workspace_file_get(db, pool, "ws-del", f.file_id, &gotf), US_DB_NOTFOUND);
    assert_int_equal(us_workspace_file_list(db, pool, "ws-del",
        &(us_workspace_file_query){ .name_part = "", .limit = 5 }, &rows, &total), US_DB_OK);
    assert_int_equal(total, 0);
    /* the open session's policy stops working; the slot is free */
    assert_int_equal(sc_upload(db, open_s.id, "late.txt", 14, &old), US_DB_CONFLICT);
    assert_int_equal(us_session_close(db, pool, "ws-del", open_s.id, SC_T0 + 3), US_DB_NOTFOUND);
    assert_int_equal(us_session_insert(db, pool, &again, 1, SC_T0 + 3), US_DB_OK);
    /* the running batch is fenced; its published id goes to the trash */
    results = apr_array_make(pool, 1, sizeof(us_ingest_result));
    APR_ARRAY_PUSH(results, us_ingest_result) = sc_finished(pa->name, pa->file_ingestion_id);
    assert_int_equal(us_ingest_apply(db, pool, &ing, results, SC_T0 + SC_SEC(11), &deleted),
                     US_DB_CONFLICT);
    assert_int_equal(deleted->nelts, 0);
    assert_int_equal(us_workspace_file_ids_by_name(db, pool, "ws-del", pa->name, &rows), US_DB_OK);
    assert_int_equal(rows->nelts, 0);
    assert_int_equal(us_file_trash_list(db, pool, 100, &trash), US_DB_OK);
    assert_int_equal(trash->nelts, 1);
    assert_string_equal(APR_ARRAY_IDX(trash, 0, const char *), pa->file_ingestion_id);
    assert_int_equal(us_ingest_heartbeat(db, pool, closed_id, "w1", SC_T0 + SC_SEC(11)),
                     US_DB_CONFLICT);
    /* the clears of both sessions' uploads are ingest jobs with nothing pending */
    for (int i = 0; i < 2; i++) {
        us_session c;
        assert_int_equal(us_ingest_claim(db, pool, "w2", SC_T0 + SC_SEC(12), SC_T0, &c), US_DB_OK);
        assert_true(strcmp(c.id, open_s.id) == 0 || strcmp(c.id, closed_id) == 0);
        assert_int_equal(us_ingest_pending(db, pool, c.id, "", 10, &pending), US_DB_OK);
        assert_int_equal(pending->nelts, 0);
        assert_int_equal(us_ingest_done(db, pool, c.id, "w2"), US_DB_OK);
    }
    us_session none;
    assert_int_equal(us_ingest_claim(db, pool, "w2", SC_T0 + SC_SEC(12), SC_T0, &none), US_DB_NOTFOUND);

    /* the other workspace is whole */
    assert_int_equal(us_workspace_get(db, pool, "ws-keep", &w2), US_DB_OK);
    assert_int_equal(us_session_get(db, pool, "ws-keep", keep_s.id, SC_T0 + 3, &got), US_DB_OK);
    assert_int_equal(got.uploaded_files, 1);
    assert_int_equal(us_workspace_file_get(db, pool, "ws-keep", kf.file_id, &gotf), US_DB_OK);
    assert_int_equal(sc_files_list(db, keep_s.id, NULL, 10, 0, &rows, &total), US_DB_OK);
    assert_int_equal(total, 1);

    /* a second delete finds nothing; the name is free at once, with a new id */
    assert_int_equal(us_workspace_delete(db, pool, "ws-del", SC_T0 + 4, &ids), US_DB_NOTFOUND);
    assert_int_equal(us_workspace_create(db, pool, "ws-del", sc_uuid(pool, 5020), SC_T0 + 5), US_DB_OK);
    assert_int_equal(us_workspace_get(db, pool, "ws-del", &w2), US_DB_OK);
    assert_string_equal(w2.workspace_id, sc_uuid(pool, 5020));
    assert_string_not_equal(w2.workspace_id, w.workspace_id);
    assert_int_equal(sc_session_list(db, "ws-del", -1, 10, 0, SC_T0 + 5, &rows, &total), US_DB_OK);
    assert_int_equal(total, 0);
    /* an empty created workspace is deleted too */
    assert_int_equal(us_workspace_delete(db, pool, "ws-del", SC_T0 + 6, &ids), US_DB_OK);
    assert_int_equal(ids->nelts, 0);
    us_db_close(db);
}

static void sc_delete_vs_writes_work(us_db *db, apr_pool_t *p, int i)
{
    const char *old;
    apr_array_header_t *deleted, *ids;
    if (i == SC_THREADS - 1) {
        apr_sleep(2000);
        sc_results[i][0] = us_workspace_delete(db, p, "ws-race4", SC_T0 + 1, &ids);
        return;
    }
    for (int k = 0; k < 5; k++) {
        us_db_rc rc;
        if (i % 2) {
            us_upload_record u;
            memset(&u, 0, sizeof(u));
            u.session_id = sc_uuid(p, 5100);
            u.name = apr_psprintf(p, "f%d-%d.txt", i, k);
            u.blob = apr_psprintf(p, "blob-%d-%d", i, k);
            u.sha256 = "00";
            u.file_ingestion_id = sc_uuid(p, 5200 + i * 10 + k);
            u.size = 1;
            u.uploaded_at = SC_T0;
            rc = us_upload_commit(db, p, &u, SC_T0, &old);
        }
        else {
            us_workspace_file f;
            memset(&f, 0, sizeof(f));
            f.file_id = sc_uuid(p, 5400 + i * 10 + k);
            f.name = apr_psprintf(p, "d%d-%d.txt", i, k);
            f.size = 1;
            f.created_at = SC_T0;
            f.characters = -1;
            rc = us_workspace_file_add(db, p, "ws-race4", &f, "KEEP", &deleted);
        }
        sc_results[i][rc == US_DB_OK ? 1 : rc == US_DB_CONFLICT ? 2 : 3]++;
    }
}

/* A delete racing uploads and direct adds: each upload is committed (and
 * gone with the session) or refused; a direct add after it makes the
 * workspace anew, so a workspace with files always has its row. */
static void sc_workspace_delete_vs_writes(void **state)
{
    us_db *db = sc_open(pool);
    us_session s = sc_session(sc_uuid(pool, 5100), "ws-race4", "u-race4", SC_T0, 100), got;
    apr_array_header_t *rows;
    long long total = -1;
    us_workspace w;
    (void)state;
    assert_int_equal(us_session_insert(db, pool, &s, 10, SC_T0), US_DB_OK);
    sc_run_threads(sc_delete_vs_writes_work);
    assert_int_equal(sc_results[SC_THREADS - 1][0], US_DB_OK);
    for (int i = 0; i < SC_THREADS - 1; i++) {
        assert_int_equal(sc_results[i][3], 0);
        assert_int_equal(sc_results[i][1] + sc_results[i][2], 5);
        if (i % 2 == 0)
            assert_int_equal(sc_results[i][1], 5);
    }
    assert_int_equal(us_session_get(db, pool, "ws-race4", s.id, SC_T0, &got), US_DB_NOTFOUND);
    assert_int_equal(sc_files_list(db, s.id, NULL, 100, 0, &rows, &total), US_DB_OK);
    assert_int_equal(total, 0);
    assert_int_equal(us_workspace_file_list(db, pool, "ws-race4",
        &(us_workspace_file_query){ .name_part = "", .limit = 100 }, &rows, &total), US_DB_OK);
    if (total > 0)
        assert_int_equal(us_workspace_get(db, pool, "ws-race4", &w), US_DB_OK);
    us_db_close(db);
}

#define SC_TEST(f) cmocka_unit_test_setup_teardown(f, sc_setup, sc_teardown)

/* Runs the whole suite against target; cmocka's result. */
/* A batch under KEEP (no name check, no OVERWRITE: PostgreSQL applies it
 * in one statement) does per file what each file's own change would:
 * PENDING -> FINISHED/FAILED with its reason, a workspace file per
 * FINISHED one with its values as given (names and metadata with quotes,
 * backslashes, braces, commas, "NULL", non-ASCII), created_at ordered by
 * position, the key table's rows for its metadata; a file not PENDING (or
 * unknown) is skipped and not counted; a replay changes nothing. */
static void sc_apply_keep_batch(void **state)
{
    static const char *const names[] = {
        "a \"quoted\".txt", "back\\slash.txt", "{brace},comma.txt", "NULL", "empty.txt",
        "\xc3\xbcn\xc3\xaf.txt"
    };
    static const char *const metas[] = {
        "{\"k\":\"v \\\"q\\\" \\\\ {x,y}\",\"n\":3}", NULL, "{}", "{\"n\":4,\"s\":\"NULL\"}",
        NULL, "{\"n\":3}"
    };
    enum { N = 6 };
    us_db *db = sc_open(pool);
    us_session s = sc_session(sc_uuid(pool, 3000), "ws-q", "u-batch", SC_T0, 1000), c, got;
    apr_array_header_t *results, *deleted, *rows;
    us_workspace_file f;
    long long total = -1;
    const char *old = NULL;
    (void)state;
    s.write_mode = "KEEP";
    assert_int_equal(us_session_insert(db, pool, &s, 10, SC_T0), US_DB_OK);
    for (int i = 0; i < N; i++)
        assert_int_equal(sc_upload(db, s.id, names[i], 3000 + i, &old), US_DB_OK);
    assert_int_equal(us_session_close(db, pool, "ws-q", s.id, SC_T0 + 1), US_DB_OK);
    assert_int_equal(us_ingest_claim(db, pool, "w1", SC_T0 + SC_SEC(10), SC_T0, &c), US_DB_OK);
    assert_string_equal(c.id, s.id);
    results = apr_array_make(pool, N + 1, sizeof(us_ingest_result));
    for (int i = 0; i < N; i++) {
        us_ingest_result r = sc_finished(names[i], sc_uuid(pool, 900000 + 3000 + i));
        r.meta = metas[i];
        r.size = 10 + i;
        r.characters = i == 0 ? 7 : -1;
        if (i == 4) {
            r.status = "FAILED";
            r.reason = "EMPTY_FILE";
        }
        APR_ARRAY_PUSH(results, us_ingest_result) = r;
    }
    /* a name the session has no upload of */
    APR_ARRAY_PUSH(results, us_ingest_result) = sc_finished("none.txt", sc_uuid(pool, 3999));
    const apr_time_t at = SC_T0 + SC_SEC(11);
    assert_int_equal(us_ingest_apply(db, pool, &c, results, at, &deleted), US_DB_OK);
    assert_int_equal(deleted->nelts, 0);
    assert_int_equal(us_session_by_id(db, pool, s.id, SC_T0, &got), US_DB_OK);
    assert_int_equal(got.finished_files, 5);
    assert_int_equal(got.failed_files, 1);
    assert_int_equal(sc_files_list(db, s.id, "FAILED", 10, 0, &rows, &total), US_DB_OK);
    assert_int_equal(total, 1);
    assert_string_equal(APR_ARRAY_IDX(rows, 0, us_session_file_row).name, "empty.txt");
    assert_string_equal(APR_ARRAY_IDX(rows, 0, us_session_file_row).reason, "EMPTY_FILE");
    assert_int_equal(sc_files_list(db, s.id, "FINISHED", 10, 0, &rows, &total), US_DB_OK);
    assert_int_equal(total, 5);
    for (int i = 0; i < rows->nelts; i++)
        assert_null(APR_ARRAY_IDX(rows, i, us_session_file_row).reason);
    for (int i = 0; i < N; i++) {
        us_db_rc rc = us_workspace_file_get(db, pool, "ws-q", sc_uuid(pool, 903000 + i), &f);
        if (i == 4) {
            assert_int_equal(rc, US_DB_NOTFOUND);
            continue;
        }
        assert_int_equal(rc, US_DB_OK);
        assert_string_equal(f.name, names[i]);
        if (metas[i])
            assert_string_equal(f.meta, metas[i]);
        else
            assert_null(f.meta);
        assert_int_equal(f.size, 10 + i);
        assert_int_equal(f.characters, i == 0 ? 7 : -1);
        assert_true(f.created_at == at + i);
    }
    assert_int_equal(us_workspace_file_get(db, pool, "ws-q", sc_uuid(pool, 3999), &f),
                     US_DB_NOTFOUND);
    /* the key table's rows were written with the files' (the counts come
     * from it) */
    SC_FILTER(db, "n eq 3", "\xc3\xbcn\xc3\xaf.txt a \"quoted\".txt");
    SC_FILTER(db, "s eq 'NULL'", "NULL");
    SC_FILTER(db, "k eq 'v \"q\" \\ {x,y}'", "a \"quoted\".txt");
    /* replayed: nothing changes */
    assert_int_equal(us_ingest_apply(db, pool, &c, results, at + SC_SEC(1), &deleted), US_DB_OK);
    assert_int_equal(us_session_by_id(db, pool, s.id, SC_T0, &got), US_DB_OK);
    assert_int_equal(got.finished_files, 5);
    assert_int_equal(got.failed_files, 1);
    us_workspace_file_query q = { .name_part = "", .filter = NULL, .after_at = 0,
                                  .after_id = NULL, .limit = 100 };
    assert_int_equal(us_workspace_file_list(db, pool, "ws-q", &q, &rows, &total), US_DB_OK);
    assert_int_equal(total, 5);
    us_db_close(db);
}

static int store_conformance_run(const store_target *target)
{
    const struct CMUnitTest tests[] = {
        SC_TEST(sc_insert_get_close),
        SC_TEST(sc_expiry_is_derived),
        SC_TEST(sc_open_limit),
        SC_TEST(sc_expiry_on_the_store_clock),
        SC_TEST(sc_created_on_the_store_clock),
        SC_TEST(sc_closed_on_the_store_clock),
        SC_TEST(sc_apply_keep_batch),
        SC_TEST(sc_list_paging_and_filters),
        SC_TEST(sc_list_cursors),
        SC_TEST(sc_concurrent_close),
        SC_TEST(sc_concurrent_inserts_keep_the_limit),
        SC_TEST(sc_upload_vs_close),
        SC_TEST(sc_pending_with_sidecars),
        SC_TEST(sc_session_abort),
        SC_TEST(sc_concurrent_abort_and_close),
        SC_TEST(sc_abort_vs_uploads),
        SC_TEST(sc_max_files_per_session),
        SC_TEST(sc_max_sidecars_per_session),
        SC_TEST(sc_expire_sweep),
        SC_TEST(sc_concurrent_claim),
        SC_TEST(sc_claim_returns_the_claimed_session),
        SC_TEST(sc_one_at_a_time_per_workspace),
        SC_TEST(sc_lease_taken_over),
        SC_TEST(sc_running_claim_keeps_its_turn),
        SC_TEST(sc_apply_fail_name_check),
        SC_TEST(sc_apply_fenced),
        SC_TEST(sc_publish_refused),
        SC_TEST(sc_requeue_later),
        SC_TEST(sc_abort_ends_a_pause),
        SC_TEST(sc_record_listing),
        SC_TEST(sc_record_listing_not_direct),
        SC_TEST(sc_late_clear),
        SC_TEST(sc_late_clear_pages),
        SC_TEST(sc_workspace_file_add_list_get),
        SC_TEST(sc_workspace_file_list_defers_long_meta),
        SC_TEST(sc_workspace_file_delete),
        SC_TEST(sc_workspace_file_meta_swap),
        SC_TEST(sc_file_id_referenced),
        SC_TEST(sc_turn),
        SC_TEST(sc_workspace_file_filter),
        SC_TEST(sc_filter_dates_the_month_has),
        SC_TEST(sc_filter_dates_in_microseconds),
        SC_TEST(sc_filter_ordering_with_null),
        SC_TEST(sc_filter_long_chains),
        SC_TEST(sc_workspace_file_filter_follows_changes),
        SC_TEST(sc_workspace_file_order),
        SC_TEST(sc_names_in_byte_order),
        SC_TEST(sc_many_filters_keep_answering),
        SC_TEST(sc_pool_acquire_release),
        SC_TEST(sc_overview),
        SC_TEST(sc_overview_ended_sessions),
        SC_TEST(sc_webhook_events),
        SC_TEST(sc_webhook_retry_and_pages),
        SC_TEST(sc_webhook_forget_failed),
        SC_TEST(sc_webhook_release),
        SC_TEST(sc_webhook_url_breaker),
        SC_TEST(sc_webhook_url_pause_monotonic),
        SC_TEST(sc_webhook_url_stale),
        SC_TEST(sc_webhook_paused_backlog),
        SC_TEST(sc_webhook_concurrent_claim),
        SC_TEST(sc_workspace_create_get_list),
        SC_TEST(sc_workspace_exists_with_data),
        SC_TEST(sc_concurrent_workspace_create),
        SC_TEST(sc_workspace_delete),
        SC_TEST(sc_workspace_delete_vs_writes),
    };
    sc_target = target;
    return cmocka_run_group_tests_name(
        apr_pstrcat(pool, "store conformance: ", target->backend->name, NULL), tests, NULL, NULL);
}

#endif

/*
 * storage_conformance.h - the file-storage contract of us_storage.h,
 * checked through the front against any backend: a suite that knows no
 * paths, keys or layout. A backend's test file names a storage_target (its
 * backend and how to make a fresh, empty storage) and calls
 * storage_conformance_run; each test gets a storage of its own. Include
 * after cmocka.h, with pool (an APR pool) defined and APR initialised.
 */
#ifndef US_STORAGE_CONFORMANCE_H
#define US_STORAGE_CONFORMANCE_H

#include <stdio.h>
#include <string.h>

#include <apr_hash.h>
#include <apr_strings.h>
#include <apr_thread_proc.h>
#include <openssl/evp.h>
#include "us_storage_backend.h"

typedef struct {
    const us_storage_backend *backend;
    /* the data directory and parameters of a new, empty storage */
    void (*create)(apr_pool_t *p, const char *test_name, const char **data_dir,
                   const char **params);
    /* removes what create made */
    void (*destroy)(apr_pool_t *p, const char *data_dir, const char *params);
} storage_target;

static const storage_target *stc_target;
static const char *stc_dir, *stc_params;
static us_storage *stc;
static int stc_seq;

#define STC_SESSION "00000000-0000-4000-8000-000000000001"
#define STC_OTHER_SESSION "00000000-0000-4000-8000-000000000002"

static int stc_setup(void **state)
{
    const char *err = NULL;
    (void)state;
    stc_target->create(pool, apr_psprintf(pool, "s%d", ++stc_seq), &stc_dir, &stc_params);
    if (us_storage_configure(pool, stc_target->backend->name, stc_dir, stc_params, &stc, &err) !=
        APR_SUCCESS)
        fail_msg("configure %s: %s", stc_dir, err);
    assert_int_equal(us_storage_prepare(stc, pool), APR_SUCCESS);
    assert_int_equal(us_storage_prepare(stc, pool), APR_SUCCESS); /* idempotent */
    assert_string_equal(us_storage_name(stc), stc_target->backend->name);
    assert_int_equal(us_storage_check(stc, pool), APR_SUCCESS); /* prepared: healthy */
    return 0;
}

static int stc_teardown(void **state)
{
    (void)state;
    stc_target->destroy(pool, stc_dir, stc_params);
    return 0;
}

static const char *stc_uuid(apr_pool_t *p, int n)
{
    return apr_psprintf(p, "10000000-0000-4000-8000-%012d", n);
}

/* n bytes of a pattern that differs with seed and offset */
static char *stc_bytes(apr_pool_t *p, apr_size_t n, unsigned seed)
{
    char *b = apr_palloc(p, n ? n : 1);
    unsigned x = seed * 2654435761u + 1;
    for (apr_size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        b[i] = (char)(x >> 16);
    }
    return b;
}

static const char *stc_sha256(apr_pool_t *p, const char *data, apr_size_t n)
{
    unsigned char d[32];
    unsigned int dl = 0;
    char *hex = apr_palloc(p, 65);
    EVP_Digest(data, n, d, &dl, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", d[i]);
    return hex;
}

/* Writes data in pieces of step bytes and finishes. */
static void stc_write_all(us_storage_writer *w, const char *data, apr_size_t n, apr_size_t step)
{
    for (apr_size_t off = 0; off < n; off += step)
        assert_int_equal(us_storage_write(w, data + off, n - off < step ? n - off : step),
                         APR_SUCCESS);
    assert_int_equal(us_storage_finish(w), APR_SUCCESS);
    assert_true(us_storage_writer_size(w) == (long long)n);
}

/* A committed upload of n bytes; its content in *data. */
static void stc_upload(apr_pool_t *p, const char *session, const char *blob, apr_size_t n,
                       unsigned seed, const char **data)
{
    us_storage_writer *w;
    const char *d = stc_bytes(p, n, seed);
    assert_int_equal(us_storage_upload_create(stc, p, session, blob, &w), APR_SUCCESS);
    stc_write_all(w, d, n, 65536);
    assert_int_equal(us_storage_commit(w), APR_SUCCESS);
    assert_string_equal(us_storage_writer_sha256_hex(w), stc_sha256(p, d, n));
    if (data)
        *data = d;
}

static int stc_listed(apr_pool_t *p, const char *session, const char *blob)
{
    apr_array_header_t *blobs = NULL;
    int found = 0;
    assert_int_equal(us_storage_session_list(stc, p, session, &blobs), APR_SUCCESS);
    for (int i = 0; i < blobs->nelts; i++)
        found += strcmp(APR_ARRAY_IDX(blobs, i, const char *), blob) == 0;
    return found;
}

static int stc_count(apr_pool_t *p, const char *session)
{
    apr_array_header_t *blobs = NULL;
    assert_int_equal(us_storage_session_list(stc, p, session, &blobs), APR_SUCCESS);
    return blobs->nelts;
}

/* The whole content of a workspace file, through read_at in odd pieces,
 * and through the local file when there is one. */
static void stc_check_file(apr_pool_t *p, const char *file_id, const char *want, apr_size_t n)
{
    us_storage_reader *r;
    char *got = apr_palloc(p, n + 16);
    apr_size_t off = 0, len;
    assert_int_equal(us_storage_file_open(stc, p, file_id, &r), APR_SUCCESS);
    assert_true(us_storage_reader_size(r) == (apr_off_t)n);
    while (off < n) {
        len = n - off < 99991 ? n - off : 99991;
        assert_int_equal(us_storage_read_at(r, (apr_off_t)off, got + off, &len), APR_SUCCESS);
        assert_true(len > 0);
        off += len;
    }
    assert_memory_equal(got, want, n);
    len = 16;
    assert_int_equal(us_storage_read_at(r, (apr_off_t)n, got, &len), APR_SUCCESS);
    assert_int_equal(len, 0); /* the end */
    if (n > 10) { /* a range from the middle */
        len = 7;
        assert_int_equal(us_storage_read_at(r, (apr_off_t)(n / 2), got, &len), APR_SUCCESS);
        assert_int_equal(len, 7);
        assert_memory_equal(got, want + n / 2, 7);
    }
    apr_file_t *f = us_storage_reader_file(r);
    if (f) {
        apr_off_t zero = 0;
        assert_int_equal(apr_file_seek(f, APR_SET, &zero), APR_SUCCESS);
        len = n;
        if (n)
            assert_int_equal(apr_file_read_full(f, got, n, &len), APR_SUCCESS);
        assert_int_equal(len, n);
        assert_memory_equal(got, want, n);
    }
}

/* ---- writing ------------------------------------------------------------------- */

/* Small, chunk-sized and large uploads, written in pieces of various sizes:
 * size, sha256 and bytes as written; listed once committed. */
static void stc_upload_roundtrip(void **state)
{
    static const apr_size_t SIZES[] = { 0, 1, 4096, 256 * 1024, 256 * 1024 + 1, 3 * 1024 * 1024 + 17 };
    (void)state;
    for (size_t i = 0; i < sizeof(SIZES) / sizeof(SIZES[0]); i++) {
        const char *blob = stc_uuid(pool, (int)i), *data;
        char *got;
        apr_size_t len;
        stc_upload(pool, STC_SESSION, blob, SIZES[i], (unsigned)i, &data);
        assert_int_equal(stc_listed(pool, STC_SESSION, blob), 1);
        assert_int_equal(us_storage_upload_read(stc, pool, STC_SESSION, blob, SIZES[i], &got, &len),
                         APR_SUCCESS);
        assert_int_equal(len, SIZES[i]);
        assert_memory_equal(got, data, SIZES[i] ? SIZES[i] : 1 /* NUL-terminated */);
        assert_int_equal(got[len], '\0');
    }
    assert_int_equal(stc_count(pool, STC_SESSION), 6);
    assert_int_equal(stc_count(pool, STC_OTHER_SESSION), 0); /* never written to */
}

/* Nothing is visible before commit; abandoning and cleaning up the pool
 * leave nothing; abandoning a commit removes it. */
static void stc_uncommitted_is_invisible(void **state)
{
    apr_pool_t *sub;
    us_storage_writer *w;
    char *got;
    apr_size_t len;
    const char *big = stc_bytes(pool, 2 * 1024 * 1024, 7);
    (void)state;

    /* being written: not there; finished and abandoned: gone */
    assert_int_equal(us_storage_upload_create(stc, pool, STC_SESSION, stc_uuid(pool, 1), &w),
                     APR_SUCCESS);
    for (apr_size_t off = 0; off < 2 * 1024 * 1024; off += 100000)
        assert_int_equal(us_storage_write(w, big + off, 2 * 1024 * 1024 - off < 100000
                                                           ? 2 * 1024 * 1024 - off : 100000),
                         APR_SUCCESS);
    assert_int_equal(stc_count(pool, STC_SESSION), 0);
    assert_int_equal(us_storage_upload_read(stc, pool, STC_SESSION, stc_uuid(pool, 1), 1 << 30, &got,
                                            &len), APR_ENOENT);
    assert_int_equal(us_storage_finish(w), APR_SUCCESS);
    us_storage_abandon(w);
    us_storage_abandon(w); /* twice is harmless */
    assert_int_equal(stc_count(pool, STC_SESSION), 0);

    /* a writer whose pool goes, mid-write (an aborted request) */
    apr_pool_create(&sub, pool);
    assert_int_equal(us_storage_upload_create(stc, sub, STC_SESSION, stc_uuid(pool, 2), &w),
                     APR_SUCCESS);
    assert_int_equal(us_storage_write(w, big, 1024 * 1024), APR_SUCCESS);
    apr_pool_destroy(sub);
    assert_int_equal(stc_count(pool, STC_SESSION), 0);

    /* a small one likewise, after finish */
    apr_pool_create(&sub, pool);
    assert_int_equal(us_storage_upload_create(stc, sub, STC_SESSION, stc_uuid(pool, 3), &w),
                     APR_SUCCESS);
    stc_write_all(w, big, 100, 100);
    apr_pool_destroy(sub);
    assert_int_equal(stc_count(pool, STC_SESSION), 0);

    /* committed, then abandoned (the store refused it): gone */
    apr_pool_create(&sub, pool);
    assert_int_equal(us_storage_upload_create(stc, sub, STC_SESSION, stc_uuid(pool, 4), &w),
                     APR_SUCCESS);
    stc_write_all(w, big, 300000, 300000);
    assert_int_equal(us_storage_commit(w), APR_SUCCESS);
    assert_int_equal(stc_listed(pool, STC_SESSION, stc_uuid(pool, 4)), 1);
    us_storage_abandon(w);
    assert_int_equal(stc_count(pool, STC_SESSION), 0);
    apr_pool_destroy(sub);

    /* committed, pool gone: kept */
    apr_pool_create(&sub, pool);
    stc_upload(sub, STC_SESSION, stc_uuid(pool, 5), 10, 5, NULL);
    apr_pool_destroy(sub);
    assert_int_equal(stc_listed(pool, STC_SESSION, stc_uuid(pool, 5)), 1);

    /* a recovery finds nothing of a live process to remove, and keeps commits */
    us_storage_recover(stc, pool);
    assert_int_equal(stc_count(pool, STC_SESSION), 1);
}

/* A sidecar read is bounded: more than max is APR_INCOMPLETE. */
static void stc_upload_read_bound(void **state)
{
    char *got;
    apr_size_t len;
    (void)state;
    stc_upload(pool, STC_SESSION, stc_uuid(pool, 1), 1000, 1, NULL);
    assert_int_equal(us_storage_upload_read(stc, pool, STC_SESSION, stc_uuid(pool, 1), 999, &got, &len),
                     APR_INCOMPLETE);
    assert_int_equal(us_storage_upload_read(stc, pool, STC_SESSION, stc_uuid(pool, 1), 1000, &got, &len),
                     APR_SUCCESS);
    assert_int_equal(len, 1000);
    assert_int_equal(us_storage_upload_read(stc, pool, STC_SESSION, stc_uuid(pool, 2), 1000, &got, &len),
                     APR_ENOENT);
    assert_int_equal(us_storage_upload_read(stc, pool, STC_OTHER_SESSION, stc_uuid(pool, 1), 1000, &got,
                                            &len), APR_ENOENT);
}

typedef struct {
    int index;
    apr_status_t rv;
} stc_thread_arg;

#define STC_THREADS 8
#define STC_PER_THREAD 25

static void *APR_THREAD_FUNC stc_committer(apr_thread_t *t, void *data)
{
    stc_thread_arg *a = data;
    apr_pool_t *p;
    apr_pool_create_unmanaged_ex(&p, NULL, NULL);
    for (int i = 0; i < STC_PER_THREAD && a->rv == APR_SUCCESS; i++) {
        us_storage_writer *w;
        const char *d = stc_bytes(p, 4096, (unsigned)(a->index * 1000 + i));
        a->rv = us_storage_upload_create(stc, p, STC_SESSION,
                                         stc_uuid(p, a->index * 1000 + i), &w);
        if (a->rv == APR_SUCCESS)
            a->rv = us_storage_write(w, d, 4096);
        if (a->rv == APR_SUCCESS)
            a->rv = us_storage_finish(w);
        if (a->rv == APR_SUCCESS)
            a->rv = us_storage_commit(w);
    }
    apr_pool_destroy(p);
    (void)t;
    return NULL;
}

/* Concurrent commits into one session all land. */
static void stc_concurrent_commits(void **state)
{
    apr_thread_t *th[STC_THREADS];
    stc_thread_arg args[STC_THREADS];
    (void)state;
    for (int i = 0; i < STC_THREADS; i++) {
        args[i].index = i + 1;
        args[i].rv = APR_SUCCESS;
        assert_int_equal(apr_thread_create(&th[i], NULL, stc_committer, &args[i], pool), APR_SUCCESS);
    }
    for (int i = 0; i < STC_THREADS; i++) {
        apr_status_t rv;
        apr_thread_join(&rv, th[i]);
        assert_int_equal(args[i].rv, APR_SUCCESS);
    }
    assert_int_equal(stc_count(pool, STC_SESSION), STC_THREADS * STC_PER_THREAD);
}

/* ---- workspace files ------------------------------------------------------------ */

/* POST /files: written, committed, read back with ranges, deleted. */
static void stc_workspace_file_roundtrip(void **state)
{
    static const apr_size_t SIZES[] = { 0, 5, 256 * 1024, 5 * 1024 * 1024 + 3 };
    us_storage_reader *r;
    (void)state;
    for (size_t i = 0; i < sizeof(SIZES) / sizeof(SIZES[0]); i++) {
        us_storage_writer *w;
        const char *id = stc_uuid(pool, 100 + (int)i);
        const char *d = stc_bytes(pool, SIZES[i], (unsigned)i + 50);
        assert_int_equal(us_storage_file_create(stc, pool, id, &w), APR_SUCCESS);
        if (SIZES[i] > 0) { /* being written: not there */
            assert_int_equal(us_storage_write(w, d, SIZES[i] - 1), APR_SUCCESS);
            assert_int_equal(us_storage_file_open(stc, pool, id, &r), APR_ENOENT);
            assert_int_equal(us_storage_write(w, d + SIZES[i] - 1, 1), APR_SUCCESS);
        }
        assert_int_equal(us_storage_finish(w), APR_SUCCESS);
        assert_int_equal(us_storage_commit(w), APR_SUCCESS);
        assert_string_equal(us_storage_writer_sha256_hex(w), stc_sha256(pool, d, SIZES[i]));
        stc_check_file(pool, id, d, SIZES[i]);
    }
    const char *id = stc_uuid(pool, 101);
    assert_int_equal(us_storage_file_delete(stc, pool, id), APR_SUCCESS);
    assert_int_equal(us_storage_file_open(stc, pool, id, &r), APR_ENOENT);
    assert_int_equal(us_storage_file_delete(stc, pool, id), APR_ENOENT);
    stc_check_file(pool, stc_uuid(pool, 100), "", 0); /* the others stay */
}

/* A reader opened before a delete reads what it opened, or fails; never
 * another file's bytes. */
static void stc_read_while_deleted(void **state)
{
    us_storage_writer *w;
    us_storage_reader *r;
    const char *id = stc_uuid(pool, 1), *d = stc_bytes(pool, 100000, 3);
    char buf[100];
    apr_size_t len = sizeof(buf);
    (void)state;
    assert_int_equal(us_storage_file_create(stc, pool, id, &w), APR_SUCCESS);
    stc_write_all(w, d, 100000, 100000);
    assert_int_equal(us_storage_commit(w), APR_SUCCESS);
    assert_int_equal(us_storage_file_open(stc, pool, id, &r), APR_SUCCESS);
    assert_int_equal(us_storage_file_delete(stc, pool, id), APR_SUCCESS);
    if (us_storage_read_at(r, 500, buf, &len) == APR_SUCCESS && len > 0)
        assert_memory_equal(buf, d + 500, len);
}

/* ---- ingestion ------------------------------------------------------------------ */

/* Publishing moves an upload to a workspace file, once; a replay is
 * recognised; a missing one is APR_ENOENT. */
static void stc_publish_is_idempotent(void **state)
{
    const char *data;
    int moved = -1;
    us_storage_reader *r;
    const char *blob = stc_uuid(pool, 1), *fid = stc_uuid(pool, 900);
    (void)state;
    stc_upload(pool, STC_SESSION, blob, 300000, 9, &data);
    assert_int_equal(us_storage_publish(stc, pool, STC_SESSION, blob, fid, NULL, 300000, &moved), APR_SUCCESS);
    assert_int_equal(moved, 1);
    assert_int_equal(us_storage_publish_sync(stc, pool), APR_SUCCESS);
    assert_int_equal(stc_listed(pool, STC_SESSION, blob), 0); /* moved, not copied */
    stc_check_file(pool, fid, data, 300000);

    /* the batch replayed after a crash */
    moved = -1;
    assert_int_equal(us_storage_publish(stc, pool, STC_SESSION, blob, fid, NULL, 300000, &moved), APR_SUCCESS);
    assert_int_equal(moved, 0);
    stc_check_file(pool, fid, data, 300000);

    /* neither the upload nor the file */
    moved = -1;
    assert_int_equal(us_storage_publish(stc, pool, STC_SESSION, stc_uuid(pool, 2), stc_uuid(pool, 901),
                                        NULL, 10, &moved), APR_ENOENT);
    assert_int_equal(moved, 0);
    assert_int_equal(us_storage_file_open(stc, pool, stc_uuid(pool, 901), &r), APR_ENOENT);
}

/* A published file read whole, in one call, is bounded as a sidecar read. */
static void stc_file_read_bound(void **state)
{
    const char *data;
    char *got;
    apr_size_t len;
    int moved = 0;
    const char *blob = stc_uuid(pool, 1), *fid = stc_uuid(pool, 910);
    (void)state;
    stc_upload(pool, STC_SESSION, blob, 1000, 11, &data);
    assert_int_equal(us_storage_publish(stc, pool, STC_SESSION, blob, fid, NULL, 1000, &moved),
                     APR_SUCCESS);
    assert_int_equal(us_storage_file_read(stc, pool, fid, 999, &got, &len), APR_INCOMPLETE);
    assert_int_equal(us_storage_file_read(stc, pool, fid, 1000, &got, &len), APR_SUCCESS);
    assert_int_equal(len, 1000);
    assert_memory_equal(got, data, 1000);
    assert_int_equal(got[1000], '\0');
    assert_int_equal(us_storage_file_read(stc, pool, stc_uuid(pool, 911), 1000, &got, &len),
                     APR_ENOENT);
    assert_int_equal(us_storage_file_delete(stc, pool, fid), APR_SUCCESS);
}

/* A replaced upload is deleted, once. */
static void stc_upload_delete(void **state)
{
    (void)state;
    stc_upload(pool, STC_SESSION, stc_uuid(pool, 1), 10, 1, NULL);
    stc_upload(pool, STC_SESSION, stc_uuid(pool, 2), 10, 2, NULL);
    assert_int_equal(us_storage_upload_delete(stc, pool, STC_SESSION, stc_uuid(pool, 1)), APR_SUCCESS);
    assert_int_equal(stc_listed(pool, STC_SESSION, stc_uuid(pool, 1)), 0);
    assert_int_equal(stc_listed(pool, STC_SESSION, stc_uuid(pool, 2)), 1);
    assert_int_equal(us_storage_upload_delete(stc, pool, STC_SESSION, stc_uuid(pool, 1)), APR_ENOENT);
}

/* A done session is cleared; another session and the workspace files stay;
 * a writer still busy in it may finish and commit. */
static void stc_session_clear(void **state)
{
    us_storage_writer *w;
    int moved;
    const char *big = stc_bytes(pool, 1024 * 1024, 4);
    (void)state;
    stc_upload(pool, STC_SESSION, stc_uuid(pool, 1), 10, 1, NULL);
    stc_upload(pool, STC_SESSION, stc_uuid(pool, 2), 400000, 2, NULL);
    stc_upload(pool, STC_SESSION, stc_uuid(pool, 3), 10, 3, NULL);
    stc_upload(pool, STC_OTHER_SESSION, stc_uuid(pool, 4), 10, 4, NULL);
    assert_int_equal(us_storage_publish(stc, pool, STC_SESSION, stc_uuid(pool, 3), stc_uuid(pool, 5),
                                        NULL, 10, &moved), APR_SUCCESS);
    assert_int_equal(us_storage_session_clear(stc, pool, STC_SESSION), 0);
    assert_int_equal(stc_count(pool, STC_SESSION), 0);
    assert_int_equal(us_storage_session_clear(stc, pool, STC_SESSION), 0); /* nothing left */
    assert_int_equal(stc_count(pool, STC_OTHER_SESSION), 1);
    stc_check_file(pool, stc_uuid(pool, 5), stc_bytes(pool, 10, 3), 10);

    /* an upload arriving while the session is cleared */
    assert_int_equal(us_storage_upload_create(stc, pool, STC_SESSION, stc_uuid(pool, 6), &w),
                     APR_SUCCESS);
    assert_int_equal(us_storage_write(w, big, 1024 * 1024), APR_SUCCESS);
    assert_true(us_storage_session_clear(stc, pool, STC_SESSION) >= 0);
    assert_int_equal(us_storage_finish(w), APR_SUCCESS);
    assert_int_equal(us_storage_commit(w), APR_SUCCESS);
    assert_int_equal(stc_listed(pool, STC_SESSION, stc_uuid(pool, 6)), 1);
    assert_int_equal(us_storage_session_clear(stc, pool, STC_SESSION), 0);
    assert_int_equal(stc_count(pool, STC_SESSION), 0);
}

/* The object listed as blob in objects, or NULL. */
static const us_storage_object *stc_object(const apr_array_header_t *objects, const char *blob)
{
    for (int i = 0; i < objects->nelts; i++)
        if (strcmp(APR_ARRAY_IDX(objects, i, us_storage_object).blob, blob) == 0)
            return &APR_ARRAY_IDX(objects, i, us_storage_object);
    return NULL;
}

/* The listing with sizes and etags: committed uploads of this session only,
 * not a file still being written; a replaced blob has another etag. */
static void stc_session_objects(void **state)
{
    us_storage_writer *w;
    apr_array_header_t *objs = NULL;
    const us_storage_object *o;
    (void)state;
    assert_int_equal(us_storage_session_objects(stc, pool, STC_SESSION, &objs), APR_SUCCESS);
    assert_int_equal(objs->nelts, 0); /* never written to */

    stc_upload(pool, STC_SESSION, stc_uuid(pool, 1), 0, 1, NULL);
    stc_upload(pool, STC_SESSION, stc_uuid(pool, 2), 10, 2, NULL);
    stc_upload(pool, STC_SESSION, stc_uuid(pool, 3), 400000, 3, NULL);
    stc_upload(pool, STC_OTHER_SESSION, stc_uuid(pool, 4), 10, 4, NULL);
    assert_int_equal(us_storage_upload_create(stc, pool, STC_SESSION, stc_uuid(pool, 5), &w),
                     APR_SUCCESS);
    assert_int_equal(us_storage_write(w, "abc", 3), APR_SUCCESS);

    assert_int_equal(us_storage_session_objects(stc, pool, STC_SESSION, &objs), APR_SUCCESS);
    assert_int_equal(objs->nelts, 3);
    const long long sizes[] = { 0, 10, 400000 };
    const char *etags[3];
    for (int i = 0; i < 3; i++) {
        o = stc_object(objs, stc_uuid(pool, i + 1));
        assert_non_null(o);
        assert_true(o->size == sizes[i]);
        /* dated when written (s3: LastModified, whole seconds; the store
         * runs on this machine) */
        if (o->modified < apr_time_now() - apr_time_from_sec(60) ||
            o->modified > apr_time_now() + apr_time_from_sec(2))
            fail_msg("object %d dated %" APR_TIME_T_FMT " us, now %" APR_TIME_T_FMT, i + 1,
                     o->modified, apr_time_now());
        assert_non_null(o->etag);
        assert_true(o->etag[0] != '\0');
        etags[i] = o->etag;
    }
    assert_string_not_equal(etags[1], etags[2]);
    assert_null(stc_object(objs, stc_uuid(pool, 4)));
    assert_null(stc_object(objs, stc_uuid(pool, 5)));

    /* the same listing again: the same etags */
    assert_int_equal(us_storage_session_objects(stc, pool, STC_SESSION, &objs), APR_SUCCESS);
    assert_string_equal(stc_object(objs, stc_uuid(pool, 2))->etag, etags[1]);

    /* blob 2 replaced by other content (another size: posix tells by inode,
     * size and mtime, and may reuse the inode) */
    assert_int_equal(us_storage_upload_delete(stc, pool, STC_SESSION, stc_uuid(pool, 2)), APR_SUCCESS);
    stc_upload(pool, STC_SESSION, stc_uuid(pool, 2), 11, 5, NULL);
    assert_int_equal(us_storage_session_objects(stc, pool, STC_SESSION, &objs), APR_SUCCESS);
    o = stc_object(objs, stc_uuid(pool, 2));
    assert_non_null(o);
    assert_true(o->size == 11);
    assert_string_not_equal(o->etag, etags[1]);
    us_storage_abandon(w);
}

static int stc_holds(apr_hash_t *ids, const char *session)
{
    return apr_hash_get(ids, session, APR_HASH_KEY_STRING) != NULL;
}

/* The sessions anything is left of (for the last clear of many at once):
 * each session with an upload, once; not a cleared one; one with only a
 * writer's unfinished large file (s3: a multipart upload; posix: its temp
 * file) too. */
static void stc_sessions_holding(void **state)
{
    apr_hash_t *ids = NULL;
    us_storage_writer *w;
    const apr_size_t n = 9 * 1024 * 1024; /* past s3's first part, posix's temp-file size */
    (void)state;
    assert_int_equal(us_storage_sessions_holding(stc, pool, &ids), APR_SUCCESS);
    assert_int_equal(apr_hash_count(ids), 0);
    stc_upload(pool, STC_SESSION, stc_uuid(pool, 1), 10, 1, NULL);
    stc_upload(pool, STC_SESSION, stc_uuid(pool, 2), 10, 2, NULL);
    stc_upload(pool, STC_OTHER_SESSION, stc_uuid(pool, 3), 10, 3, NULL);
    assert_int_equal(us_storage_sessions_holding(stc, pool, &ids), APR_SUCCESS);
    assert_int_equal(apr_hash_count(ids), 2);
    assert_true(stc_holds(ids, STC_SESSION) && stc_holds(ids, STC_OTHER_SESSION));
    assert_int_equal(us_storage_session_clear(stc, pool, STC_OTHER_SESSION), 0);
    assert_int_equal(us_storage_sessions_holding(stc, pool, &ids), APR_SUCCESS);
    assert_int_equal(apr_hash_count(ids), 1);
    assert_true(stc_holds(ids, STC_SESSION));

    assert_int_equal(us_storage_upload_create(stc, pool, STC_OTHER_SESSION, stc_uuid(pool, 4), &w),
                     APR_SUCCESS);
    assert_int_equal(us_storage_write(w, stc_bytes(pool, n, 4), n), APR_SUCCESS);
    assert_int_equal(us_storage_sessions_holding(stc, pool, &ids), APR_SUCCESS);
    assert_int_equal(apr_hash_count(ids), 2);
    assert_true(stc_holds(ids, STC_OTHER_SESSION));
    us_storage_abandon(w);
    assert_int_equal(us_storage_session_clear(stc, pool, STC_OTHER_SESSION), 0);
    assert_int_equal(us_storage_session_clear(stc, pool, STC_SESSION), 0);
    assert_int_equal(us_storage_sessions_holding(stc, pool, &ids), APR_SUCCESS);
    assert_int_equal(apr_hash_count(ids), 0);
}

#define STC_TEST(f) cmocka_unit_test_setup_teardown(f, stc_setup, stc_teardown)

/* Runs the whole suite against target; cmocka's result. */
static int storage_conformance_run(const storage_target *target)
{
    const struct CMUnitTest tests[] = {
        STC_TEST(stc_upload_roundtrip),
        STC_TEST(stc_uncommitted_is_invisible),
        STC_TEST(stc_upload_read_bound),
        STC_TEST(stc_concurrent_commits),
        STC_TEST(stc_workspace_file_roundtrip),
        STC_TEST(stc_read_while_deleted),
        STC_TEST(stc_publish_is_idempotent),
        STC_TEST(stc_file_read_bound),
        STC_TEST(stc_upload_delete),
        STC_TEST(stc_session_clear),
        STC_TEST(stc_session_objects),
        STC_TEST(stc_sessions_holding),
    };
    stc_target = target;
    return cmocka_run_group_tests_name(
        apr_pstrcat(pool, "storage conformance: ", target->backend->name, NULL), tests, NULL, NULL);
}

#endif

/* Unit tests: the storage conformance suite (storage_conformance.h) against
 * the s3 backend on a private Ceph radosgw, then what only s3 answers: its
 * configuration errors, the key layout, an unreachable store. The radosgw
 * is the one of the test session when US_RGW_INFO names its endpoint.json
 * (scripts/with-radosgw.sh, `make test`), else one started here
 * (tests/us_testkit/radosgw.py) and stopped at the end. Skipped only when
 * no radosgw can start. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include "fixture.h"
#include <apr_hash.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <apr_strings.h>
#include <apr_network_io.h>
#include <curl/curl.h>
#include <jansson.h>
#include <time.h>
#include "storage_conformance.h"
#include "us_sigv4.h"

#define BUCKET "us-unit"

static const char *endpoint, *access_key, *secret_key, *own_rgw_dir, *creds_file;

/* The endpoint and keys of a radosgw: the session's, or one started now. */
static int rgw_connect(void)
{
    const char *info = getenv("US_RGW_INFO");
    json_error_t jerr;
    json_t *j = NULL;
    if (info && *info) {
        j = json_load_file(info, 0, &jerr);
    }
    else {
        own_rgw_dir = fixture_path("rgw");
        const char *cmd = apr_psprintf(pool, "/usr/bin/python3 tests/us_testkit/radosgw.py start %s",
                                       own_rgw_dir);
        FILE *f = popen(cmd, "r");
        if (f) {
            char out[4096];
            size_t n = fread(out, 1, sizeof(out) - 1, f);
            out[n] = '\0';
            pclose(f);
            j = json_loads(out, 0, &jerr);
        }
    }
    if (!j || json_unpack(j, "{s:s, s:s, s:s}", "endpoint", &endpoint, "access_key", &access_key,
                          "secret_key", &secret_key) != 0) {
        fprintf(stderr, "radosgw: none could be started (%s)\n", info ? info : "own");
        return 0;
    }
    endpoint = apr_pstrdup(pool, endpoint);
    access_key = apr_pstrdup(pool, access_key);
    secret_key = apr_pstrdup(pool, secret_key);
    json_decref(j);
    creds_file = fixture_path("credentials");
    FILE *c = fopen(creds_file, "w");
    if (!c)
        return 0;
    fprintf(c, "# test\n[other]\naws_access_key_id = nope\n\n[default]\naws_access_key_id = %s\n"
               "aws_secret_access_key=%s\n", access_key, secret_key);
    fclose(c);
    chmod(creds_file, 0600);
    return 1;
}

static void rgw_disconnect(void)
{
    if (own_rgw_dir) {
        const char *cmd = apr_psprintf(pool, "/usr/bin/python3 tests/us_testkit/radosgw.py stop %s",
                                       own_rgw_dir);
        if (system(cmd) != 0)
            fprintf(stderr, "radosgw: stop failed\n");
    }
}

static const char *params_for(apr_pool_t *p, const char *ep, const char *prefix)
{
    return apr_psprintf(p, "%s %s credentials=%s prefix=%s", ep, BUCKET, creds_file, prefix);
}

/* each test: its own prefix in the one bucket (unique per run) */
static void s3_create(apr_pool_t *p, const char *test_name, const char **data_dir,
                      const char **params)
{
    *data_dir = NULL;
    *params = params_for(p, endpoint, apr_psprintf(p, "t%ld-%s", (long)getpid(), test_name));
}

static void s3_destroy(apr_pool_t *p, const char *data_dir, const char *params)
{
    (void)p;
    (void)data_dir;
    (void)params;
}

static const storage_target s3_target = { &us_s3_storage, s3_create, s3_destroy };

/* ---- a logger that keeps what it is given ---------------------------------- */

static int logged_n;
static char logged_msg[16][512];

static void keep(void *baton, us_log_level level, apr_status_t status, int msgno, const char *msg)
{
    (void)baton;
    (void)level;
    (void)status;
    (void)msgno;
    if (logged_n < 16)
        snprintf(logged_msg[logged_n++], sizeof(logged_msg[0]), "%s", msg);
}

static const us_logger keeper = { keep, NULL, US_LOG_DEBUG };

static us_storage *s3_at(const char *params)
{
    us_storage *st = NULL;
    const char *err = NULL;
    assert_int_equal(us_storage_configure(pool, "s3", NULL, params, &st, &err), APR_SUCCESS);
    us_storage_set_logger(st, &keeper);
    logged_n = 0;
    return st;
}

/* ---- tests ------------------------------------------------------------------ */

static void expect_error(const char *params, const char *want)
{
    us_storage *st = NULL;
    const char *err = NULL;
    assert_int_equal(us_storage_configure(pool, "s3", NULL, params, &st, &err), APR_EINVAL);
    if (!strstr(err, want))
        fail_msg("'%s': error '%s' lacks '%s'", params, err, want);
}

static void test_configuration_errors(void **state)
{
    const char *wr = fixture_path("world-readable");
    const char *empty = fixture_path("empty-credentials");
    FILE *f;
    (void)state;
    assert_true(us_storage_backend_known("s3"));
    expect_error("", "expects an endpoint URL and a bucket");
    expect_error("http://127.0.0.1:7480", "expects an endpoint URL and a bucket");
    expect_error(apr_psprintf(pool, "ftp://h b1c credentials=%s", creds_file), "malformed endpoint URL");
    expect_error(apr_psprintf(pool, "http:// b1c credentials=%s", creds_file), "malformed endpoint URL");
    expect_error(apr_psprintf(pool, "http://h:99999 b1c credentials=%s", creds_file), "malformed endpoint URL");
    expect_error(apr_psprintf(pool, "http://h/path b1c credentials=%s", creds_file), "malformed endpoint URL");
    expect_error(apr_psprintf(pool, "http://h_x b1c credentials=%s", creds_file), "malformed endpoint URL");
    expect_error(apr_psprintf(pool, "http://h Bad_Bucket credentials=%s", creds_file), "malformed bucket name");
    expect_error("http://h b1c", "needs UploadSessionS3CredentialsFile");
    expect_error("http://h b1c credentials=/nonexistent/creds", "cannot be read");
    expect_error(apr_psprintf(pool, "http://h b1c credentials=%s color=red", creds_file),
                 "unknown parameter 'color=red'");
    f = fopen(wr, "w");
    assert_non_null(f);
    fputs("[default]\naws_access_key_id=a\naws_secret_access_key=b\n", f);
    fclose(f);
    chmod(wr, 0644);
    expect_error(apr_psprintf(pool, "http://h b1c credentials=%s", wr), "is world-readable");
    f = fopen(empty, "w");
    assert_non_null(f);
    fputs("[other]\naws_access_key_id=a\naws_secret_access_key=b\n", f);
    fclose(f);
    chmod(empty, 0600);
    expect_error(apr_psprintf(pool, "http://h b1c credentials=%s", empty), "no [default] section");
    us_storage *st = s3_at(apr_psprintf(pool, "https://s3.eu-central-1.amazonaws.com/ b1c region=eu-central-1 credentials=%s", creds_file));
    assert_string_equal(us_storage_name(st), "s3");
    /* a file is one multipart upload: 10,000 parts of 8 MiB at most */
    assert_true(us_storage_max_object_size(st) == 10000LL * 8 * 1024 * 1024);
    /* the scheme's own port is left out (curl sends none in Host, and the
     * signature covers Host); another port stays */
    static const char *const ports[][2] = {
        { "http://h:80", "http://h/b1c" }, { "https://h:443", "https://h/b1c" },
        { "http://h:443", "http://h:443/b1c" }, { "https://h:8443/", "https://h:8443/b1c" },
        { "http://[::1]:80", "http://[::1]/b1c" },
    };
    for (size_t i = 0; i < sizeof(ports) / sizeof(ports[0]); i++) {
        us_storage_post_target t;
        st = s3_at(apr_psprintf(pool, "%s b1c credentials=%s", ports[i][0], creds_file));
        assert_int_equal(us_storage_post_target_of(st, pool, "sid", &t), APR_SUCCESS);
        assert_string_equal(t.url, ports[i][1]);
    }
}

/* Where the objects are: the key layout README documents. */
static void test_layout(void **state)
{
    us_storage *st = s3_at(params_for(pool, endpoint, "/lay/out/"));
    us_storage_writer *w;
    int moved = 0;
    (void)state;
    assert_int_equal(us_storage_prepare(st, pool), APR_SUCCESS);
    assert_int_equal(us_storage_upload_create(st, pool, "sid", "blob1", &w), APR_SUCCESS);
    assert_int_equal(us_storage_write(w, "abc", 3), APR_SUCCESS);
    assert_int_equal(us_storage_finish(w), APR_SUCCESS);
    assert_int_equal(us_storage_commit(w), APR_SUCCESS);
    assert_string_equal(us_storage_writer_where(w), "s3://" BUCKET "/lay/out/sessions/sid/blob1");
    assert_int_equal(us_storage_publish(st, pool, "sid", "blob1", "fid1", NULL, 3, &moved), APR_SUCCESS);
    assert_int_equal(moved, 1);
    assert_int_equal(us_storage_file_create(st, pool, "fid2", &w), APR_SUCCESS);
    assert_string_equal(us_storage_writer_where(w), "s3://" BUCKET "/lay/out/files/fid2");
    us_storage_abandon(w);
    /* the published object, seen through another prefix's eyes: not there */
    us_storage *other = s3_at(params_for(pool, endpoint, "lay"));
    us_storage_reader *r;
    assert_int_equal(us_storage_file_open(other, pool, "fid1", &r), APR_ENOENT);
    assert_int_equal(us_storage_file_open(st, pool, "fid1", &r), APR_SUCCESS);
    assert_int_equal(us_storage_reader_size(r), 3);
    assert_null(us_storage_reader_file(r)); /* no local file: read_at */
    assert_int_equal(us_storage_file_delete(st, pool, "fid1"), APR_SUCCESS);
    assert_int_equal(logged_n, 0);

    /* direct uploads land beside the module's own: sessions/<session>/<name> */
    us_storage_post_target t;
    assert_int_equal(us_storage_post_target_of(st, pool, "sid", &t), APR_SUCCESS);
    assert_string_equal(t.url, apr_pstrcat(pool, endpoint, "/" BUCKET, NULL));
    assert_string_equal(t.bucket, BUCKET);
    assert_string_equal(t.key_prefix, "lay/out/sessions/sid/");
    assert_string_equal(t.cred.access_key, access_key);
    assert_string_equal(t.cred.region, "us-east-1");
}

/* Above the part size: a multipart upload, invisible until commit; read
 * back whole and in ranges across the part boundaries. */
static void test_multipart(void **state)
{
    us_storage *st = s3_at(params_for(pool, endpoint, apr_psprintf(pool, "mp%ld", (long)getpid())));
    apr_size_t n = 17 * 1024 * 1024 + 5;
    const char *d = stc_bytes(pool, n, 77);
    us_storage_writer *w;
    us_storage_reader *r;
    char buf[64];
    apr_size_t len = sizeof(buf);
    (void)state;
    assert_int_equal(us_storage_prepare(st, pool), APR_SUCCESS);
    assert_int_equal(us_storage_file_create(st, pool, "big", &w), APR_SUCCESS);
    for (apr_size_t off = 0; off < n; off += 1000003)
        assert_int_equal(us_storage_write(w, d + off, n - off < 1000003 ? n - off : 1000003),
                         APR_SUCCESS);
    assert_int_equal(us_storage_finish(w), APR_SUCCESS);
    assert_int_equal(us_storage_file_open(st, pool, "big", &r), APR_ENOENT); /* not yet */
    assert_int_equal(us_storage_commit(w), APR_SUCCESS);
    assert_string_equal(us_storage_writer_sha256_hex(w), stc_sha256(pool, d, n));
    assert_int_equal(us_storage_file_open(st, pool, "big", &r), APR_SUCCESS);
    assert_true(us_storage_reader_size(r) == (apr_off_t)n);
    assert_int_equal(us_storage_read_at(r, 8 * 1024 * 1024 - 10, buf, &len), APR_SUCCESS);
    assert_memory_equal(buf, d + 8 * 1024 * 1024 - 10, len);
    char *all = apr_palloc(pool, n);
    for (apr_size_t off = 0; off < n;) {
        len = n - off;
        assert_int_equal(us_storage_read_at(r, (apr_off_t)off, all + off, &len), APR_SUCCESS);
        assert_true(len > 0);
        off += len;
    }
    assert_memory_equal(all, d, n);
    assert_int_equal(us_storage_file_delete(st, pool, "big"), APR_SUCCESS);

    /* abandoned after two parts: the multipart upload is aborted */
    assert_int_equal(us_storage_file_create(st, pool, "big2", &w), APR_SUCCESS);
    assert_int_equal(us_storage_write(w, d, n), APR_SUCCESS);
    us_storage_abandon(w);
    assert_int_equal(us_storage_recover(st, pool), 0); /* nothing stale, nothing live left */
    assert_int_equal(us_storage_file_open(st, pool, "big2", &r), APR_ENOENT);
}

/* One small object under a session's prefix, committed. */
static void put_small(us_storage *st, const char *session, const char *blob, const char *data)
{
    us_storage_writer *w;
    assert_int_equal(us_storage_upload_create(st, pool, session, blob, &w), APR_SUCCESS);
    assert_int_equal(us_storage_write(w, data, strlen(data)), APR_SUCCESS);
    assert_int_equal(us_storage_finish(w), APR_SUCCESS);
    assert_int_equal(us_storage_commit(w), APR_SUCCESS);
}

/* Names of 344 bytes, 340 of them '&', 5 bytes each in the listing's XML
 * (the test radosgw takes keys up to about 420 bytes): 180 of them list in
 * about 340 KiB, more than the largest answer the unit build reads (256
 * KiB), so the listing must ask for pages that fit, and still list every
 * one. */
static void test_listing_long_keys(void **state)
{
    apr_pool_t *p;
    apr_pool_create(&p, pool);
    us_storage *st = s3_at(params_for(p, endpoint, apr_psprintf(p, "lk%ld", (long)getpid())));
    apr_array_header_t *objs;
    const int n = 180;
    char amps[341];
    memset(amps, '&', sizeof(amps) - 1);
    amps[sizeof(amps) - 1] = '\0';
    (void)state;
    assert_int_equal(us_storage_prepare(st, p), APR_SUCCESS);
    for (int i = 0; i < n; i++)
        put_small(st, "sid", apr_psprintf(p, "%s%04d", amps, i), "x");
    assert_int_equal(us_storage_session_objects(st, p, "sid", &objs), APR_SUCCESS);
    assert_int_equal(objs->nelts, n);
    for (int i = 0; i < n; i++) {
        const us_storage_object *o = &APR_ARRAY_IDX(objs, i, us_storage_object);
        assert_int_equal(strlen(o->blob), 344);
        assert_memory_equal(o->blob, amps, 340);
    }
    assert_int_equal(us_storage_session_clear(st, p, "sid"), 0);
    assert_int_equal(us_storage_session_objects(st, p, "sid", &objs), APR_SUCCESS);
    assert_int_equal(objs->nelts, 0);
    assert_int_equal(logged_n, 0);
    apr_pool_destroy(p);
}

/* The session listing follows ListObjectsV2's continuation past one page
 * (1000 keys), decodes a key's XML entities once, and lists keys deeper
 * than the session prefix too (a direct upload's listing tells them as
 * of no name, US1026). */
static void test_listing_pages(void **state)
{
    apr_pool_t *p;
    apr_pool_create(&p, pool);
    us_storage *st = s3_at(params_for(p, endpoint, apr_psprintf(p, "pg%ld", (long)getpid())));
    apr_array_header_t *objs;
    const int n = 1003;
    (void)state;
    assert_int_equal(us_storage_prepare(st, p), APR_SUCCESS);
    for (int i = 0; i < n; i++)
        put_small(st, "sid", apr_psprintf(p, "f%04d", i), "x");
    put_small(st, "sid", "a&amp;b <c>'d\"", "12345");
    put_small(st, "sid", "deeper/one", "y");
    assert_int_equal(us_storage_session_objects(st, p, "sid", &objs), APR_SUCCESS);
    assert_int_equal(objs->nelts, n + 2);
    int seen = 0, special = 0, deeper = 0;
    for (int i = 0; i < objs->nelts; i++) {
        const us_storage_object *o = &APR_ARRAY_IDX(objs, i, us_storage_object);
        if (strcmp(o->blob, "a&amp;b <c>'d\"") == 0) {
            special++;
            assert_true(o->size == 5);
        } else if (strcmp(o->blob, "deeper/one") == 0) {
            deeper++;
            assert_true(o->size == 1);
        } else {
            assert_true(o->blob[0] == 'f' && strlen(o->blob) == 5);
            assert_true(o->size == 1);
            seen++;
        }
        assert_true(o->etag && o->etag[0] == '"');
    }
    assert_int_equal(seen, n);
    assert_int_equal(special, 1);
    assert_int_equal(deeper, 1);
    assert_int_equal(us_storage_session_clear(st, p, "sid"), 0);
    assert_int_equal(us_storage_session_objects(st, p, "sid", &objs), APR_SUCCESS);
    assert_int_equal(objs->nelts, 0);
    assert_int_equal(logged_n, 0);
    apr_pool_destroy(p);
}

/* Keys with "." and ".." segments (a direct upload's client names its
 * key): sent as signed, not with the segments resolved - every request on
 * them succeeds, and the clear leaves nothing behind. */
static void test_dot_segments(void **state)
{
    apr_pool_t *p;
    apr_pool_create(&p, pool);
    us_storage *st = s3_at(params_for(p, endpoint, apr_psprintf(p, "ds%ld", (long)getpid())));
    apr_array_header_t *objs;
    us_storage_reader *r;
    int moved = 0;
    (void)state;
    assert_int_equal(us_storage_prepare(st, p), APR_SUCCESS);
    put_small(st, "sid", "..", "up");
    put_small(st, "sid", ".", "here");
    put_small(st, "sid", "x/../y", "deeper");
    assert_int_equal(us_storage_session_objects(st, p, "sid", &objs), APR_SUCCESS);
    assert_int_equal(objs->nelts, 3); /* x/../y too, as written */
    int as_written = 0;
    for (int i = 0; i < objs->nelts; i++)
        as_written += strcmp(APR_ARRAY_IDX(objs, i, us_storage_object).blob, "x/../y") == 0;
    assert_int_equal(as_written, 1);
    assert_int_equal(us_storage_publish(st, p, "sid", "..", "fid-dots", NULL, 2, &moved), APR_SUCCESS);
    assert_int_equal(moved, 1);
    assert_int_equal(us_storage_file_open(st, p, "fid-dots", &r), APR_SUCCESS);
    assert_int_equal(us_storage_reader_size(r), 2);
    assert_int_equal(us_storage_session_clear(st, p, "sid"), 0);
    assert_int_equal(us_storage_session_objects(st, p, "sid", &objs), APR_SUCCESS);
    assert_int_equal(objs->nelts, 0);
    assert_int_equal(us_storage_file_delete(st, p, "fid-dots"), APR_SUCCESS);
    assert_int_equal(logged_n, 0);
    apr_pool_destroy(p);
}

/* Keys with control characters (a direct upload's client names its key):
 * the listing's XML carries them as character references ("&#xD;"), which
 * are decoded, so each key lists as it was written and the clear removes
 * every one. */
static void test_control_character_keys(void **state)
{
    apr_pool_t *p;
    apr_pool_create(&p, pool);
    us_storage *st = s3_at(params_for(p, endpoint, apr_psprintf(p, "cc%ld", (long)getpid())));
    apr_array_header_t *objs;
    static const char *const names[] = { "cr\rlf\nx", "tab\tbell\ay", "\x1f\x01",
                                         "caf\xc3\xa9 &#13; \xf0\x9f\x93\x84" };
    const int n = (int)(sizeof(names) / sizeof(names[0]));
    (void)state;
    assert_int_equal(us_storage_prepare(st, p), APR_SUCCESS);
    for (int i = 0; i < n; i++)
        put_small(st, "sid", names[i], "x");
    assert_int_equal(us_storage_session_objects(st, p, "sid", &objs), APR_SUCCESS);
    assert_int_equal(objs->nelts, n);
    for (int i = 0; i < n; i++) {
        int found = 0;
        for (int j = 0; j < objs->nelts; j++)
            found += strcmp(APR_ARRAY_IDX(objs, j, us_storage_object).blob, names[i]) == 0;
        if (found != 1)
            fail_msg("key %d (%s) listed %d times", i, names[i], found);
    }
    assert_int_equal(us_storage_session_clear(st, p, "sid"), 0);
    assert_int_equal(us_storage_session_objects(st, p, "sid", &objs), APR_SUCCESS);
    assert_int_equal(objs->nelts, 0);
    assert_int_equal(logged_n, 0);
    apr_pool_destroy(p);
}

/* A store that does not answer: check and every operation fail, none
 * hangs, the log names the request but never the keys or a signature. */
static void test_unreachable(void **state)
{
    int port;
    {
        apr_socket_t *s;
        apr_sockaddr_t *sa;
        apr_sockaddr_info_get(&sa, "127.0.0.1", APR_INET, 0, 0, pool);
        apr_socket_create(&s, APR_INET, SOCK_STREAM, APR_PROTO_TCP, pool);
        apr_socket_bind(s, sa);
        apr_socket_addr_get(&sa, APR_LOCAL, s);
        port = sa->port;
        apr_socket_close(s); /* nobody listens there now */
    }
    us_storage *st = s3_at(params_for(pool, apr_psprintf(pool, "http://127.0.0.1:%d", port), "x"));
    us_storage_writer *w;
    us_storage_reader *r;
    apr_array_header_t *blobs;
    (void)state;
    assert_int_not_equal(us_storage_check(st, pool), APR_SUCCESS);
    assert_int_not_equal(us_storage_prepare(st, pool), APR_SUCCESS);
    assert_int_not_equal(us_storage_file_open(st, pool, "f", &r), APR_SUCCESS);
    assert_int_not_equal(us_storage_file_open(st, pool, "f", &r), APR_ENOENT);
    assert_int_not_equal(us_storage_session_list(st, pool, "s", &blobs), APR_SUCCESS);
    assert_int_equal(us_storage_upload_create(st, pool, "s", "b", &w), APR_SUCCESS);
    assert_int_equal(us_storage_write(w, "abc", 3), APR_SUCCESS);
    assert_int_not_equal(us_storage_finish(w), APR_SUCCESS);
    assert_int_not_equal(us_storage_commit(w), APR_SUCCESS);
    us_storage_abandon(w);
    assert_true(logged_n > 0);
    for (int i = 0; i < logged_n; i++) {
        assert_null(strstr(logged_msg[i], secret_key));
        assert_null(strstr(logged_msg[i], access_key));
        assert_null(strstr(logged_msg[i], "Signature"));
    }
}

/* Wrong keys: the store refuses (403), check says so. */
static void test_wrong_credentials(void **state)
{
    const char *bad = fixture_path("bad-credentials");
    FILE *f = fopen(bad, "w");
    (void)state;
    assert_non_null(f);
    fprintf(f, "[default]\naws_access_key_id=%s\naws_secret_access_key=wrong\n", access_key);
    fclose(f);
    chmod(bad, 0600);
    us_storage *st = s3_at(apr_psprintf(pool, "%s %s credentials=%s", endpoint, BUCKET, bad));
    assert_int_equal(us_storage_check(st, pool), APR_EACCES);
}

/* The etag of the one object of session sid. */
static const char *only_etag(us_storage *st, apr_pool_t *p)
{
    apr_array_header_t *objs;
    assert_int_equal(us_storage_session_objects(st, p, "sid", &objs), APR_SUCCESS);
    assert_int_equal(objs->nelts, 1);
    return APR_ARRAY_IDX(objs, 0, us_storage_object).etag;
}

/* A copy pinned to a listed etag: a blob replaced since is not published
 * (APR_ENOENT, the newer source stays); the current etag publishes, and a
 * replay of that (source gone or changed) finds the file published. */
static void test_publish_pinned(void **state)
{
    apr_pool_t *p;
    apr_pool_create(&p, pool);
    us_storage *st = s3_at(params_for(p, endpoint, apr_psprintf(p, "pin%ld", (long)getpid())));
    us_storage_reader *r;
    int moved = -1;
    (void)state;
    assert_int_equal(us_storage_prepare(st, p), APR_SUCCESS);
    put_small(st, "sid", "a.txt", "old");
    const char *old = only_etag(st, p);
    put_small(st, "sid", "a.txt", "newer");
    const char *cur = only_etag(st, p);
    assert_string_not_equal(old, cur);
    assert_int_equal(us_storage_publish(st, p, "sid", "a.txt", "fpin", old, 3, &moved), APR_ENOENT);
    assert_int_equal(moved, 0);
    assert_int_equal(us_storage_file_open(st, p, "fpin", &r), APR_ENOENT);
    assert_string_equal(only_etag(st, p), cur);
    assert_int_equal(us_storage_publish(st, p, "sid", "a.txt", "fpin", cur, 5, &moved), APR_SUCCESS);
    assert_int_equal(moved, 1);
    assert_int_equal(us_storage_file_open(st, p, "fpin", &r), APR_SUCCESS);
    assert_int_equal(us_storage_reader_size(r), 5);
    /* a replay: the source is gone (404) or another one came (412) */
    assert_int_equal(us_storage_publish(st, p, "sid", "a.txt", "fpin", cur, 5, &moved), APR_SUCCESS);
    assert_int_equal(moved, 0);
    put_small(st, "sid", "a.txt", "late");
    assert_int_equal(us_storage_publish(st, p, "sid", "a.txt", "fpin", cur, 5, &moved), APR_SUCCESS);
    assert_int_equal(moved, 0);
    assert_int_equal(us_storage_file_open(st, p, "fpin", &r), APR_SUCCESS);
    assert_int_equal(us_storage_reader_size(r), 5);
    assert_int_equal(us_storage_file_delete(st, p, "fpin"), APR_SUCCESS);
    assert_int_equal(us_storage_session_clear(st, p, "sid"), 0);
    apr_pool_destroy(p);
}

/* ---- publishing in parts ------------------------------------------------------ */

typedef struct {
    char buf[256 * 1024];
    size_t got;
} body_buf;

static size_t keep_body(char *data, size_t sz, size_t n, void *baton)
{
    body_buf *b = baton;
    size_t len = sz * n;
    if (b->got + len >= sizeof(b->buf))
        return 0;
    memcpy(b->buf + b->got, data, len);
    b->got += len;
    b->buf[b->got] = '\0';
    return len;
}

static size_t keep_etag(char *data, size_t sz, size_t n, void *baton)
{
    char *etag = baton;
    size_t len = sz * n;
    if (len > 5 && strncasecmp(data, "etag:", 5) == 0)
        snprintf(etag, 128, "%.*s", (int)(len - 5), data + 5);
    return len;
}

/* A curl handle for a presigned request, as any client sends it, for
 * path (encoded) with query (or NULL); the caller sets the rest. */
static CURL *presigned_handle(apr_pool_t *p, const char *method, const char *path,
                              const char *query)
{
    char date[20];
    time_t now = time(NULL);
    struct tm tm;
    us_sigv4_credentials c = { access_key, secret_key, "us-east-1", "s3" };
    const char *host = strstr(endpoint, "://") + 3;
    gmtime_r(&now, &tm);
    strftime(date, sizeof(date), "%Y%m%dT%H%M%SZ", &tm);
    const char *q = us_sigv4_presign_query(p, &c, date, method, host, path, query, 60);
    assert_non_null(q);
    CURL *h = curl_easy_init();
    assert_non_null(h);
    curl_easy_setopt(h, CURLOPT_URL, apr_pstrcat(p, endpoint, path, "?", q, NULL));
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, keep_body);
    return h;
}

/* Runs h and frees it: the response's status. */
static long perform(CURL *h)
{
    long status = 0;
    assert_int_equal(curl_easy_perform(h), CURLE_OK);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(h);
    return status;
}

/* A presigned GET or HEAD: its status; the body into b (may be NULL: none
 * is read), the ETag header's value (untrimmed) into etag (128 bytes). */
static long presigned(apr_pool_t *p, const char *method, const char *path, const char *query,
                      body_buf *b, char *etag)
{
    CURL *h = presigned_handle(p, method, path, query);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, b);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, keep_etag);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, etag);
    return perform(h);
}

/* How many unfinished multipart uploads ListMultipartUploads shows under
 * key prefix pre of the bucket. */
static int unfinished_uploads(apr_pool_t *p, const char *pre)
{
    body_buf *b = apr_pcalloc(p, sizeof(*b));
    char etag[128] = "";
    long status = presigned(p, "GET", "/" BUCKET,
                            apr_pstrcat(p, "prefix=", us_sigv4_uri_encode(p, pre, 0), "&uploads=",
                                        NULL), b, etag);
    if (status != 200)
        fail_msg("ListMultipartUploads: HTTP %ld %s", status, b->buf);
    int n = 0;
    for (const char *s = b->buf; (s = strstr(s, "<Upload>")); s++)
        n++;
    return n;
}

/* A presigned request with a body (may be NULL: none) for methods other
 * than GET and HEAD; its status, the answer into b. */
static long presigned_send(apr_pool_t *p, const char *method, const char *path,
                           const char *query, const char *body, body_buf *b)
{
    CURL *h = presigned_handle(p, method, path, query);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)(body ? strlen(body) : 0));
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, b);
    return perform(h);
}

/* Recovery with no key prefix aborts the stale multipart uploads of this
 * module's layout (a dead writer's, under sessions/) and leaves the rest of
 * the bucket alone: another program's upload there is not ours. The unit
 * build takes an upload untouched for 2 s as stale. A dead writer's key
 * that reads like XML ("&#13;", "&lt;") is aborted under its own name:
 * each listed field is decoded once. A listing of more than one page is
 * aborted whole. */
static void test_recover_keeps_other_programs_uploads(void **state)
{
    apr_pool_t *p, *wp;
    apr_pool_create(&p, pool);
    apr_pool_create(&wp, p);
    us_storage *st = s3_at(params_for(p, endpoint, ""));
    const char *other = apr_psprintf(p, "other%ld/", (long)getpid());
    const char *sid = apr_psprintf(p, "rc%ld", (long)getpid());
    body_buf *b = apr_pcalloc(p, sizeof(*b));
    us_storage_writer *w, *w2;
    (void)state;
    assert_int_equal(us_storage_prepare(st, p), APR_SUCCESS);
    assert_int_equal(presigned_send(p, "POST", apr_pstrcat(p, "/" BUCKET "/", other, "x", NULL),
                                    "uploads=", NULL, b), 200);
    const char *id = strstr(b->buf, "<UploadId>");
    assert_non_null(id);
    id = apr_pstrndup(p, id + 10, strcspn(id + 10, "<"));
    /* a writer that never ends (a dead process's): its first part is sent */
    assert_int_equal(us_storage_upload_create(st, wp, sid, "blob", &w), APR_SUCCESS);
    assert_int_equal(us_storage_write(w, stc_bytes(p, 9 << 20, 5), 9 << 20), APR_SUCCESS);
    assert_int_equal(us_storage_upload_create(st, wp, sid, "a&#13;b&lt;c", &w2), APR_SUCCESS);
    assert_int_equal(us_storage_write(w2, stc_bytes(p, 9 << 20, 6), 9 << 20), APR_SUCCESS);
    /* more dead writers' uploads than a page of the sweep's listing holds
     * (39 in the unit build): those of every page are aborted */
    body_buf *bi = apr_pcalloc(p, sizeof(*bi));
    for (int i = 0; i < 45; i++) {
        memset(bi, 0, sizeof(*bi));
        assert_int_equal(presigned_send(p, "POST", apr_psprintf(p, "/" BUCKET "/sessions/%s/m%02d",
                                                                sid, i),
                                        "uploads=", NULL, bi), 200);
    }
    body_buf *page = apr_pcalloc(p, sizeof(*page));
    char etag[128] = "";
    assert_int_equal(presigned(p, "GET", "/" BUCKET,
                               apr_psprintf(p, "max-uploads=39&prefix=sessions%%2F%s%%2F&uploads=",
                                            sid), page, etag), 200);
    assert_non_null(strstr(page->buf, "<IsTruncated>true</IsTruncated>"));
    assert_int_equal(unfinished_uploads(p, apr_pstrcat(p, "sessions/", sid, "/", NULL)), 47);
    apr_sleep(apr_time_from_msec(2500));
    assert_int_equal(us_storage_recover(st, p), 47);
    assert_int_equal(unfinished_uploads(p, apr_pstrcat(p, "sessions/", sid, "/", NULL)), 0);
    assert_int_equal(unfinished_uploads(p, other), 1);
    body_buf *b2 = apr_pcalloc(p, sizeof(*b2));
    assert_int_equal(presigned_send(p, "DELETE", apr_pstrcat(p, "/" BUCKET "/", other, "x", NULL),
                                    apr_pstrcat(p, "uploadId=", us_sigv4_uri_encode(p, id, 0), NULL),
                                    NULL, b2), 204);
    apr_pool_destroy(p);
}

/* The ETag of key in the bucket, as HEAD answers it. */
static const char *etag_of(apr_pool_t *p, const char *key)
{
    char etag[128] = "";
    long status = presigned(p, "HEAD", apr_pstrcat(p, "/" BUCKET "/", us_sigv4_uri_encode(p, key, 1),
                                                   NULL), NULL, NULL, etag);
    assert_int_equal(status, 200);
    char *e = apr_pstrdup(p, etag);
    e[strcspn(e, "\r\n")] = '\0';
    while (*e == ' ')
        e++;
    return e;
}

/* A session upload of n bytes (seed) under blob; its bytes in *data. */
static void put_big(us_storage *st, apr_pool_t *p, const char *blob, apr_size_t n, int seed,
                    const char **data)
{
    us_storage_writer *w;
    *data = stc_bytes(p, n, seed);
    assert_int_equal(us_storage_upload_create(st, p, "sid", blob, &w), APR_SUCCESS);
    assert_int_equal(us_storage_write(w, *data, n), APR_SUCCESS);
    assert_int_equal(us_storage_finish(w), APR_SUCCESS);
    assert_int_equal(us_storage_commit(w), APR_SUCCESS);
}

/* The sha256 of workspace file fid, read back through the storage. */
static const char *file_sha256(us_storage *st, apr_pool_t *p, const char *fid, apr_size_t n)
{
    us_storage_reader *r;
    char *all = apr_palloc(p, n);
    assert_int_equal(us_storage_file_open(st, p, fid, &r), APR_SUCCESS);
    assert_true(us_storage_reader_size(r) == (apr_off_t)n);
    for (apr_size_t off = 0; off < n;) {
        apr_size_t len = n - off;
        assert_int_equal(us_storage_read_at(r, (apr_off_t)off, all + off, &len), APR_SUCCESS);
        assert_true(len > 0);
        off += len;
    }
    return stc_sha256(p, all, n);
}

/* Above CopyObject's limit (lowered to 16 MiB in this build, parts of
 * 6 MiB) a publish copies in parts, each pinned to the listed etag: the
 * same bytes under the file's key; a replay finds it; a replaced source is
 * refused at the first part and its multipart upload aborted. */
static void test_publish_in_parts(void **state)
{
    apr_pool_t *p;
    apr_pool_create(&p, pool);
    const char *prefix = apr_psprintf(p, "parts%ld", (long)getpid());
    us_storage *st = s3_at(params_for(p, endpoint, prefix));
    const apr_size_t n = 20 * 1024 * 1024 + 7; /* 4 parts, the last short */
    const char *data, *stale;
    int moved = -1;
    us_storage_reader *r;
    (void)state;
    assert_int_equal(us_storage_prepare(st, p), APR_SUCCESS);
    put_big(st, p, "big.bin", n, 31, &data);
    const char *etag = only_etag(st, p);
    assert_int_equal(us_storage_publish(st, p, "sid", "big.bin", "fbig", etag, (long long)n, &moved),
                     APR_SUCCESS);
    assert_int_equal(moved, 1);
    assert_string_equal(file_sha256(st, p, "fbig", n), stc_sha256(p, data, n));
    /* a multipart object of 4 parts (its ETag says how many) */
    const char *dst_etag = etag_of(p, apr_pstrcat(p, prefix, "/files/fbig", NULL));
    if (strlen(dst_etag) < 3 || strcmp(dst_etag + strlen(dst_etag) - 3, "-4\"") != 0)
        fail_msg("files/fbig: ETag %s is not one of 4 parts", dst_etag);
    apr_array_header_t *objs;
    assert_int_equal(us_storage_session_objects(st, p, "sid", &objs), APR_SUCCESS);
    assert_int_equal(objs->nelts, 0); /* moved: the source is gone */
    assert_int_equal(unfinished_uploads(p, prefix), 0);
    /* a replay after success: the source is gone, the destination found */
    assert_int_equal(us_storage_publish(st, p, "sid", "big.bin", "fbig", etag, (long long)n, &moved),
                     APR_SUCCESS);
    assert_int_equal(moved, 0);
    assert_string_equal(file_sha256(st, p, "fbig", n), stc_sha256(p, data, n));

    /* the listed version replaced: refused at the first part, nothing
     * published, the multipart upload aborted, the newer source kept */
    put_big(st, p, "big.bin", n, 32, &stale);
    const char *old = only_etag(st, p);
    put_big(st, p, "big.bin", n, 33, &data);
    const char *cur = only_etag(st, p);
    assert_string_not_equal(old, cur);
    logged_n = 0;
    assert_int_equal(us_storage_publish(st, p, "sid", "big.bin", "fbig2", old, (long long)n, &moved),
                     APR_ENOENT);
    assert_int_equal(moved, 0);
    assert_int_equal(us_storage_file_open(st, p, "fbig2", &r), APR_ENOENT);
    assert_int_equal(unfinished_uploads(p, prefix), 0);
    assert_string_equal(only_etag(st, p), cur);
    assert_int_equal(logged_n, 0); /* a refused source is an answer, not a failure */
    /* the current version publishes */
    assert_int_equal(us_storage_publish(st, p, "sid", "big.bin", "fbig2", cur, (long long)n, &moved),
                     APR_SUCCESS);
    assert_int_equal(moved, 1);
    assert_string_equal(file_sha256(st, p, "fbig2", n), stc_sha256(p, data, n));
    assert_int_equal(unfinished_uploads(p, prefix), 0);
    assert_int_equal(us_storage_file_delete(st, p, "fbig"), APR_SUCCESS);
    assert_int_equal(us_storage_file_delete(st, p, "fbig2"), APR_SUCCESS);
    assert_int_equal(us_storage_session_clear(st, p, "sid"), 0);
    apr_pool_destroy(p);
}

/* A stoppable handle whose flag is set: a publish, single copy or in
 * parts, sends nothing and fails with APR_EINTR; the source stays, nothing
 * is published, no multipart upload is left; the cut is logged once for
 * the handle. The plain handle is not cut. */
static void test_publish_cut(void **state)
{
    apr_pool_t *p;
    apr_pool_create(&p, pool);
    const char *prefix = apr_psprintf(p, "cut%ld", (long)getpid());
    us_storage *st = s3_at(params_for(p, endpoint, prefix));
    volatile apr_uint32_t stop = 1;
    us_storage *cut = us_storage_stoppable(st, p, &stop);
    const apr_size_t n = 20 * 1024 * 1024 + 7;
    const char *data;
    int moved = -1;
    us_storage_reader *r;
    char *got;
    apr_size_t len;
    (void)state;
    assert_int_equal(us_storage_prepare(st, p), APR_SUCCESS);
    put_big(st, p, "big.bin", n, 41, &data);
    const char *etag = only_etag(st, p);
    logged_n = 0;
    assert_int_equal(us_storage_publish(cut, p, "sid", "big.bin", "fcut", etag, (long long)n,
                                        &moved), APR_EINTR);
    assert_int_equal(moved, 0);
    assert_int_equal(us_storage_publish(cut, p, "sid", "big.bin", "fcut", NULL, 3, &moved),
                     APR_EINTR);
    assert_int_equal(us_storage_file_read(cut, p, "fcut", 16, &got, &len), APR_EINTR);
    assert_int_equal(logged_n, 1);
    assert_non_null(strstr(logged_msg[0], "cut short, the process is stopping"));
    assert_int_equal(us_storage_file_open(st, p, "fcut", &r), APR_ENOENT);
    assert_string_equal(only_etag(st, p), etag);
    assert_int_equal(unfinished_uploads(p, prefix), 0);
    /* the flag cleared, the same handle publishes */
    stop = 0;
    assert_int_equal(us_storage_publish(cut, p, "sid", "big.bin", "fcut", etag, (long long)n,
                                        &moved), APR_SUCCESS);
    assert_int_equal(moved, 1);
    assert_string_equal(file_sha256(st, p, "fcut", n), stc_sha256(p, data, n));
    assert_int_equal(unfinished_uploads(p, prefix), 0);
    assert_int_equal(us_storage_file_delete(st, p, "fcut"), APR_SUCCESS);
    assert_int_equal(us_storage_session_clear(st, p, "sid"), 0);
    apr_pool_destroy(p);
}

/* ---- the last clear ------------------------------------------------------------ */

/* A bucket policy that refuses s3:ListBucketMultipartUploads to everyone,
 * the bucket's owner too (an explicit Deny). */
#define DENY_LIST_UPLOADS                                                                   \
    "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Deny\","                   \
    "\"Principal\":{\"AWS\":[\"*\"]},\"Action\":\"s3:ListBucketMultipartUploads\","      \
    "\"Resource\":\"arn:aws:s3:::" BUCKET "\"}]}"

static int refusals_logged(void)
{
    int n = 0;
    for (int i = 0; i < logged_n; i++)
        n += strstr(logged_msg[i], "refuses to list unfinished multipart uploads") != NULL;
    return n;
}

/* The sessions the storage holds anything of: those with an object, those
 * with an unfinished multipart upload, none else. With ListMultipartUploads
 * refused by a bucket policy (403): the late clear takes it as none to
 * abort (0 left, so the clear is recorded), said once per process, and the
 * listing of the sessions holding something goes on without the uploads.
 * Once it is allowed again the upload is found and aborted. */
static void test_sessions_holding(void **state)
{
    apr_pool_t *p;
    apr_pool_create(&p, pool);
    const char *pre = apr_psprintf(p, "hold%ld", (long)getpid());
    us_storage *st = s3_at(params_for(p, endpoint, pre));
    body_buf *b = apr_pcalloc(p, sizeof(*b));
    apr_hash_t *ids;
    (void)state;
    assert_int_equal(us_storage_prepare(st, p), APR_SUCCESS);
    assert_int_equal(us_storage_sessions_holding(st, p, &ids), APR_SUCCESS);
    assert_int_equal(apr_hash_count(ids), 0);
    put_small(st, "s-object", "a", "x");
    put_small(st, "s-object", "b", "y");
    put_small(st, "s-gone", "c", "z");
    assert_int_equal(us_storage_session_clear(st, p, "s-gone"), 0);
    const char *half = apr_pstrcat(p, "/" BUCKET "/", pre, "/sessions/s-upload/big", NULL);
    assert_int_equal(presigned_send(p, "POST", half, "uploads=", NULL, b), 200);
    assert_int_equal(us_storage_sessions_holding(st, p, &ids), APR_SUCCESS);
    assert_int_equal(apr_hash_count(ids), 2);
    assert_non_null(apr_hash_get(ids, "s-object", APR_HASH_KEY_STRING));
    assert_non_null(apr_hash_get(ids, "s-upload", APR_HASH_KEY_STRING));

    memset(b, 0, sizeof(*b));
    long status = presigned_send(p, "PUT", "/" BUCKET, "policy=", DENY_LIST_UPLOADS, b);
    if (status != 200 && status != 204)
        fail_msg("PutBucketPolicy: HTTP %ld %s", status, b->buf);
    char etag[128] = "";
    long refused = presigned(p, "GET", "/" BUCKET,
                             apr_pstrcat(p, "prefix=", pre, "&uploads=", NULL), b, etag);
    int left_object = us_storage_session_clear_late(st, p, "s-object");
    int left_upload = us_storage_session_clear_late(st, p, "s-upload");
    apr_status_t rv = us_storage_sessions_holding(st, p, &ids);
    memset(b, 0, sizeof(*b));
    status = presigned_send(p, "DELETE", "/" BUCKET, "policy=", NULL, b);
    assert_true(status == 200 || status == 204);
    assert_int_equal(refused, 403);
    assert_int_equal(left_object, 0);
    assert_int_equal(left_upload, 0);
    assert_int_equal(rv, APR_SUCCESS);
    assert_int_equal(apr_hash_count(ids), 0); /* the upload is not listed */
    assert_int_equal(refusals_logged(), 1);

    assert_int_equal(us_storage_sessions_holding(st, p, &ids), APR_SUCCESS);
    assert_int_equal(apr_hash_count(ids), 1);
    assert_non_null(apr_hash_get(ids, "s-upload", APR_HASH_KEY_STRING));
    assert_int_equal(unfinished_uploads(p, apr_pstrcat(p, pre, "/sessions/", NULL)), 1);
    assert_int_equal(us_storage_session_clear_late(st, p, "s-upload"), 0);
    assert_int_equal(unfinished_uploads(p, apr_pstrcat(p, pre, "/sessions/", NULL)), 0);
    assert_int_equal(us_storage_sessions_holding(st, p, &ids), APR_SUCCESS);
    assert_int_equal(apr_hash_count(ids), 0);
    assert_int_equal(refusals_logged(), 1);
    apr_pool_destroy(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_configuration_errors),
        cmocka_unit_test(test_layout),
        cmocka_unit_test(test_multipart),
        cmocka_unit_test(test_listing_pages),
        cmocka_unit_test(test_listing_long_keys),
        cmocka_unit_test(test_dot_segments),
        cmocka_unit_test(test_control_character_keys),
        cmocka_unit_test(test_recover_keeps_other_programs_uploads),
        cmocka_unit_test(test_publish_pinned),
        cmocka_unit_test(test_publish_in_parts),
        cmocka_unit_test(test_publish_cut),
        cmocka_unit_test(test_unreachable),
        cmocka_unit_test(test_wrong_credentials),
        cmocka_unit_test(test_sessions_holding),
    };
    if (fixture_start() != 0)
        return fixture_stop(1);
    if (!rgw_connect()) {
        printf("[  SKIPPED ] us_storage: s3 (no radosgw could be started)\n");
        rgw_disconnect();
        return fixture_stop(0);
    }
    int rc = storage_conformance_run(&s3_target);
    rc |= cmocka_run_group_tests_name("us_storage: s3", tests, NULL, NULL);
    rgw_disconnect();
    return fixture_stop(rc);
}

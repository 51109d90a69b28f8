/* Unit tests: the storage conformance suite (storage_conformance.h) against
 * the posix backend, then what only the front and posix answer: the
 * configuration errors, the layout on disk, the startup sweep and the
 * messages of failures that used to pass silently. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include "fixture.h"
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <apr_strings.h>
#include "storage_conformance.h"
#include "us_dirsync.h"

static void posix_create(apr_pool_t *p, const char *test_name, const char **data_dir,
                         const char **params)
{
    *data_dir = apr_pstrcat(p, fixture_path(test_name), "/data", NULL);
    *params = NULL;
    fixture_remove_tree(fixture_path(test_name));
}

static void posix_destroy(apr_pool_t *p, const char *data_dir, const char *params)
{
    (void)p;
    (void)params;
    fixture_remove_tree(data_dir);
}

static const storage_target posix_target = { &us_posix_storage, posix_create, posix_destroy };

/* ---- a logger that keeps what it is given ---------------------------------- */

static int logged_no[16], logged_n;
static char logged_msg[16][256];

static void keep(void *baton, us_log_level level, apr_status_t status, int msgno, const char *msg)
{
    (void)baton;
    (void)level;
    (void)status;
    if (logged_n < 16) {
        logged_no[logged_n] = msgno;
        snprintf(logged_msg[logged_n], sizeof(logged_msg[0]), "%s", msg);
        logged_n++;
    }
}

static const us_logger keeper = { keep, NULL, US_LOG_DEBUG };

static us_storage *posix_at(const char *dir)
{
    us_storage *st = NULL;
    const char *err = NULL;
    assert_int_equal(us_storage_configure(pool, "posix", dir, NULL, &st, &err), APR_SUCCESS);
    us_storage_set_logger(st, &keeper);
    logged_n = 0;
    return st;
}

static void touch(const char *path)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("x", f);
    fclose(f);
}

static int exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* ---- tests ------------------------------------------------------------------ */

static void test_configuration_errors(void **state)
{
    us_storage *st = NULL;
    const char *err = NULL;
    (void)state;
    assert_int_equal(us_storage_configure(pool, "nfs", "/d", NULL, &st, &err), APR_EINVAL);
    assert_string_equal(err, "no storage backend 'nfs' in this build");
    assert_false(us_storage_backend_known("nfs"));
    assert_true(us_storage_backend_known("posix"));
    assert_int_equal(us_storage_configure(pool, "posix", "/d", "x", &st, &err), APR_EINVAL);
    assert_non_null(strstr(err, "posix storage takes no parameters"));
    assert_int_equal(us_storage_configure(pool, "posix", NULL, NULL, &st, &err), APR_EINVAL);
    assert_non_null(strstr(err, "UploadSessionDataDir"));
    assert_int_equal(us_storage_configure(pool, "posix", "/d", "", &st, &err), APR_SUCCESS);
    assert_string_equal(us_storage_name(st), "posix");
    us_storage_post_target t;
    assert_int_equal(us_storage_post_target_of(st, pool, "sid", &t), APR_ENOTIMPL);
}

/* Where the files are: the layout README and the operators rely on. */
static void test_layout(void **state)
{
    const char *dir = fixture_path("layout");
    us_storage *st = posix_at(dir);
    us_storage_writer *w;
    us_storage_reader *r;
    int moved = 0;
    (void)state;
    assert_int_equal(us_storage_prepare(st, pool), APR_SUCCESS);
    assert_true(exists(apr_pstrcat(pool, dir, "/files", NULL)));

    assert_int_equal(us_storage_upload_create(st, pool, "sid", "blob1", &w), APR_SUCCESS);
    assert_int_equal(us_storage_write(w, "abc", 3), APR_SUCCESS);
    assert_int_equal(us_storage_finish(w), APR_SUCCESS);
    assert_int_equal(us_storage_commit(w), APR_SUCCESS);
    assert_string_equal(us_storage_writer_where(w), apr_pstrcat(pool, dir, "/sessions/sid/blob1", NULL));
    assert_true(exists(apr_pstrcat(pool, dir, "/sessions/sid/blob1", NULL)));

    assert_int_equal(us_storage_publish(st, pool, "sid", "blob1", "fid1", NULL, 3, &moved), APR_SUCCESS);
    assert_true(exists(apr_pstrcat(pool, dir, "/files/fid1", NULL)));
    assert_false(exists(apr_pstrcat(pool, dir, "/sessions/sid/blob1", NULL)));

    /* a local file for sendfile */
    assert_int_equal(us_storage_file_open(st, pool, "fid1", &r), APR_SUCCESS);
    assert_non_null(us_storage_reader_file(r));

    assert_int_equal(us_storage_file_create(st, pool, "fid2", &w), APR_SUCCESS);
    assert_string_equal(us_storage_writer_where(w), apr_pstrcat(pool, dir, "/files/fid2", NULL));
    us_storage_abandon(w);

    assert_int_equal(us_storage_session_clear(st, pool, "sid"), 0);
    assert_false(exists(apr_pstrcat(pool, dir, "/sessions/sid", NULL))); /* the directory too */
    assert_int_equal(logged_n, 0);
}

/* The directories the fsyncs were asked for, in order. */
static char synced[8][PATH_MAX];
static int synced_n;

static apr_status_t count_sync(const char *dir)
{
    if (synced_n < 8)
        snprintf(synced[synced_n], sizeof synced[0], "%s", dir);
    synced_n++;
    return APR_SUCCESS;
}

static int mode_of(const char *path)
{
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    return (int)(sb.st_mode & 07777);
}

static void upload_one(us_storage *st, const char *sid, const char *blob)
{
    us_storage_writer *w;
    assert_int_equal(us_storage_upload_create(st, pool, sid, blob, &w), APR_SUCCESS);
    assert_int_equal(us_storage_write(w, "abc", 3), APR_SUCCESS);
    assert_int_equal(us_storage_finish(w), APR_SUCCESS);
    assert_int_equal(us_storage_commit(w), APR_SUCCESS);
}

/* A session's directory is made 0700, its entry in sessions/ synced, then
 * set 0750: later uploads into it sync only the directory itself. One
 * found at 0700 (its maker's sync of sessions/ may still be running) is
 * synced into sessions/ again by the writer that finds it. */
static void test_session_dir_durable_before_its_first_file(void **state)
{
    const char *dir = fixture_path("durable");
    const char *sessions = apr_pstrcat(pool, dir, "/sessions", NULL);
    const char *sdir = apr_pstrcat(pool, sessions, "/sid", NULL);
    us_storage *st = posix_at(dir);
    (void)state;
    assert_int_equal(us_storage_prepare(st, pool), APR_SUCCESS);
    assert_true(exists(sessions));
    us_dirsync_set_op(count_sync);

    synced_n = 0;
    upload_one(st, "sid", "blob1");
    assert_int_equal(synced_n, 2);
    assert_string_equal(synced[0], sessions); /* before the file */
    assert_string_equal(synced[1], sdir);     /* the file's name */
    assert_int_equal(mode_of(sdir), 0750);

    synced_n = 0;
    upload_one(st, "sid", "blob2");
    assert_int_equal(synced_n, 1);
    assert_string_equal(synced[0], sdir);

    assert_int_equal(chmod(sdir, 0700), 0);
    synced_n = 0;
    upload_one(st, "sid", "blob3");
    assert_int_equal(synced_n, 2);
    assert_string_equal(synced[0], sessions);
    assert_int_equal(mode_of(sdir), 0750);

    /* sessions/ itself removed under the server: made again */
    assert_int_equal(us_storage_session_clear(st, pool, "sid"), 0);
    assert_int_equal(rmdir(sessions), 0);
    synced_n = 0;
    upload_one(st, "sid", "blob4");
    assert_true(exists(apr_pstrcat(pool, sdir, "/blob4", NULL)));
    assert_int_equal(synced_n, 2);
    us_dirsync_set_op(NULL);
    assert_int_equal(logged_n, 0);
}

/* The health check: unprepared, a file where a directory belongs, or a
 * directory this process cannot write, is unhealthy. */
static void test_check(void **state)
{
    const char *dir = fixture_path("check");
    us_storage *st = posix_at(dir);
    (void)state;
    assert_int_not_equal(us_storage_check(st, pool), APR_SUCCESS); /* nothing there yet */
    assert_int_equal(us_storage_prepare(st, pool), APR_SUCCESS);
    assert_int_equal(us_storage_check(st, pool), APR_SUCCESS);
    const char *files = apr_pstrcat(pool, dir, "/files", NULL);
    assert_int_equal(rmdir(files), 0);
    FILE *f = fopen(files, "w");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(us_storage_check(st, pool), APR_ENOTDIR);
    assert_int_equal(unlink(files), 0);
    assert_int_equal(us_storage_prepare(st, pool), APR_SUCCESS);
    if (geteuid() != 0) { /* root may write anywhere */
        assert_int_equal(chmod(files, 0500), 0);
        assert_int_not_equal(us_storage_check(st, pool), APR_SUCCESS);
        assert_int_equal(chmod(files, 0755), 0);
    }
    assert_int_equal(us_storage_check(st, pool), APR_SUCCESS);
}

/* The startup sweep removes the temp files of dead writers, keeps those of
 * live ones and every committed file, and says how many it removed. */
static void test_recover(void **state)
{
    const char *dir = fixture_path("recover");
    us_storage *st = posix_at(dir);
    const char *sdir = apr_pstrcat(pool, dir, "/sessions/sid", NULL);
    const char *files = apr_pstrcat(pool, dir, "/files", NULL);
    const char *live = apr_psprintf(pool, "%s/.b3.%ld.tmp", sdir, (long)getpid());
    (void)state;
    assert_int_equal(us_storage_recover(st, pool), 0); /* nothing there yet */
    assert_int_equal(logged_n, 0);
    assert_int_equal(apr_dir_make_recursive(sdir, APR_FPROT_OS_DEFAULT, pool), APR_SUCCESS);
    assert_int_equal(apr_dir_make_recursive(files, APR_FPROT_OS_DEFAULT, pool), APR_SUCCESS);
    touch(apr_pstrcat(pool, sdir, "/.b1.2147483646.tmp", NULL));
    touch(apr_pstrcat(pool, sdir, "/.b2.junk.tmp", NULL));
    touch(live);
    touch(apr_pstrcat(pool, sdir, "/b4", NULL));
    touch(apr_pstrcat(pool, files, "/.f1.2147483646.tmp", NULL));
    touch(apr_pstrcat(pool, files, "/f2", NULL));
    assert_int_equal(us_storage_recover(st, pool), 3);
    assert_true(exists(live));
    assert_true(exists(apr_pstrcat(pool, sdir, "/b4", NULL)));
    assert_true(exists(apr_pstrcat(pool, files, "/f2", NULL)));
    assert_int_equal(logged_n, 1);
    assert_int_equal(logged_no[0], 1201);
    assert_non_null(strstr(logged_msg[0], "removed 3 temp file(s) left by interrupted uploads in "));
}

/* Removals that fail are logged with their number, not passed over. */
static void test_failed_removals_are_logged(void **state)
{
    const char *dir = fixture_path("logged");
    us_storage *st = posix_at(dir);
    const char *files = apr_pstrcat(pool, dir, "/files", NULL);
    const char *sdir = apr_pstrcat(pool, dir, "/sessions/sid", NULL);
    (void)state;
    /* directories where files are expected: unlink fails with EISDIR */
    assert_int_equal(apr_dir_make_recursive(apr_pstrcat(pool, files, "/fid", NULL),
                                            APR_FPROT_OS_DEFAULT, pool), APR_SUCCESS);
    assert_int_equal(apr_dir_make_recursive(apr_pstrcat(pool, sdir, "/blob", NULL),
                                            APR_FPROT_OS_DEFAULT, pool), APR_SUCCESS);
    assert_int_not_equal(us_storage_file_delete(st, pool, "fid"), APR_SUCCESS);
    assert_int_not_equal(us_storage_upload_delete(st, pool, "sid", "blob"), APR_SUCCESS);
    assert_int_equal(logged_n, 2);
    assert_int_equal(logged_no[0], 1204);
    assert_int_equal(logged_no[1], 1205);
    assert_non_null(strstr(logged_msg[0], "cannot remove"));

    /* gone already: not worth a message */
    logged_n = 0;
    assert_int_equal(us_storage_file_delete(st, pool, "nope"), APR_ENOENT);
    assert_int_equal(us_storage_upload_delete(st, pool, "sid", "nope"), APR_ENOENT);
    assert_int_equal(logged_n, 0);

    /* a session clear keeps what it cannot remove and says so when it fails */
    assert_int_equal(us_storage_session_clear(st, pool, "sid"), 1); /* the directory "blob" */
    assert_int_equal(logged_n, 0); /* not a file: kept on purpose */
}

/* A missing upload is ENOENT while the data's directories are there; with
 * files/ or sessions/ gone (a data file system not mounted), the same
 * publish or read is an outage (logged, 1207), never a missing file that
 * ingestion would FAIL and clear. */
static void test_a_missing_data_directory_is_an_outage(void **state)
{
    const char *dir = fixture_path("unmounted");
    us_storage *st = posix_at(dir);
    const char *files = apr_pstrcat(pool, dir, "/files", NULL);
    const char *sessions = apr_pstrcat(pool, dir, "/sessions", NULL);
    const char *aside = apr_pstrcat(pool, dir, "/aside", NULL);
    char *data;
    apr_size_t len;
    int moved = 0;
    (void)state;
    assert_int_equal(us_storage_prepare(st, pool), APR_SUCCESS);
    upload_one(st, "sid", "blob");
    assert_int_equal(us_storage_publish(st, pool, "sid", "nope", "f0", NULL, 3, &moved), APR_ENOENT);
    assert_int_equal(us_storage_upload_read(st, pool, "sid", "nope", 10, &data, &len), APR_ENOENT);
    assert_int_equal(logged_n, 0);

    assert_int_equal(rename(files, aside), 0);
    apr_status_t rv = us_storage_publish(st, pool, "sid", "blob", "f1", NULL, 3, &moved);
    assert_true(us_storage_unavailable(rv));
    assert_int_equal(moved, 0);
    assert_int_equal(rename(aside, files), 0);

    assert_int_equal(rename(sessions, aside), 0);
    assert_true(us_storage_unavailable(us_storage_upload_read(st, pool, "sid", "blob", 10, &data, &len)));
    assert_true(us_storage_unavailable(us_storage_publish(st, pool, "sid", "blob", "f1", NULL, 3,
                                                          &moved)));
    assert_int_equal(rename(aside, sessions), 0);
    assert_int_equal(logged_n, 3);
    assert_int_equal(logged_no[0], 1207);
    assert_non_null(strstr(logged_msg[0], "/files is missing"));
    assert_non_null(strstr(logged_msg[1], "/sessions is missing"));

    /* both gone (the data file system not mounted): an upload does not
     * make them again on the wrong file system */
    us_storage_writer *w;
    const char *aside2 = apr_pstrcat(pool, dir, "/aside2", NULL);
    assert_int_equal(rename(files, aside), 0);
    assert_int_equal(rename(sessions, aside2), 0);
    assert_true(us_storage_unavailable(us_storage_upload_create(st, pool, "s2", "b", &w)));
    assert_false(exists(files));
    assert_false(exists(sessions));
    assert_int_equal(rename(aside, files), 0);
    assert_int_equal(rename(aside2, sessions), 0);
    assert_int_equal(logged_n, 4);

    /* back: published as ever */
    assert_int_equal(us_storage_publish(st, pool, "sid", "blob", "f1", NULL, 3, &moved), APR_SUCCESS);
    assert_int_equal(moved, 1);
}

/* A data directory so deep that APR cannot stat an entry with a long name
 * (apr_dir_read builds dir/name in APR_PATH_MAX bytes and cuts it): that
 * entry comes back with APR_INCOMPLETE, and the listing goes on past it. */
static void test_listing_goes_past_an_entry_apr_cannot_stat(void **state)
{
    const char *dir = fixture_path("deep");
    char lname[251];
    apr_array_header_t *objs;
    (void)state;
    while (strlen(dir) < 3900)
        dir = apr_pstrcat(pool, dir, "/ddddddddddddddddddddddddddddddddddddddddddddddddd", NULL);
    us_storage *st = posix_at(dir);
    const char *sdir = apr_pstrcat(pool, dir, "/sessions/sid", NULL);
    assert_int_equal(apr_dir_make_recursive(sdir, APR_FPROT_OS_DEFAULT, pool), APR_SUCCESS);
    memset(lname, 'l', 250);
    lname[250] = '\0';
    for (int i = 0; i < 40; i++) {
        touch(apr_psprintf(pool, "%s/b%02d", sdir, i));
        if (i == 19) { /* in the middle, whatever order the directory lists */
            int dfd = open(sdir, O_RDONLY | O_DIRECTORY);
            int fd = openat(dfd, lname, O_CREAT | O_WRONLY, 0644);
            assert_true(dfd >= 0 && fd >= 0);
            close(fd);
            close(dfd);
        }
    }
    apr_status_t rv = us_storage_session_objects(st, pool, "sid", &objs);
    int dfd = open(sdir, O_RDONLY | O_DIRECTORY); /* first: nftw cannot remove it */
    assert_true(dfd >= 0);
    assert_int_equal(unlinkat(dfd, lname, 0), 0);
    close(dfd);
    assert_int_equal(rv, APR_SUCCESS);
    assert_int_equal(objs->nelts, 40);
    for (int i = 0; i < objs->nelts; i++)
        assert_int_equal(APR_ARRAY_IDX(objs, i, us_storage_object).size, 1);
    fixture_remove_tree(fixture_path("deep"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_configuration_errors),
        cmocka_unit_test(test_layout),
        cmocka_unit_test(test_session_dir_durable_before_its_first_file),
        cmocka_unit_test(test_check),
        cmocka_unit_test(test_recover),
        cmocka_unit_test(test_failed_removals_are_logged),
        cmocka_unit_test(test_a_missing_data_directory_is_an_outage),
        cmocka_unit_test(test_listing_goes_past_an_entry_apr_cannot_stat),
    };
    if (fixture_start() != 0)
        return fixture_stop(1);
    int rc = storage_conformance_run(&posix_target);
    rc |= cmocka_run_group_tests_name("us_storage: posix", tests, NULL, NULL);
    return fixture_stop(rc);
}

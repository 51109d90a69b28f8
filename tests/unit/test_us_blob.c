/* Unit tests: durable writes and the crash sweep. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include "fixture.h"
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <apr_general.h>
#include <apr_strings.h>
#include <openssl/evp.h>
#include "us_blob.h"

static const char *dir;

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static long long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

/* entries in a directory, "." and ".." aside (temp files included) */
static int count_entries(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    int n = 0;
    assert_non_null(d);
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

static void touch(const char *path)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
}

/* A small file: nothing on disk until finish, which writes it straight
 * under its final name (no temp file, no rename). */
static void test_write_publish(void **state)
{
    us_blob *b;
    apr_pool_t *p;
    (void)state;
    apr_pool_create(&p, pool);
    assert_int_equal(us_blob_open(p, dir, "one", &b), APR_SUCCESS);
    assert_null(us_blob_pending_path(b));
    assert_false(exists(us_blob_path(b)));
    assert_int_equal(us_blob_write(b, "abc", 3), APR_SUCCESS);
    assert_false(exists(us_blob_path(b)));
    assert_int_equal(us_blob_finish(b), APR_SUCCESS);
    assert_string_equal(us_blob_pending_path(b), us_blob_path(b));
    assert_true(exists(us_blob_path(b)));
    assert_int_equal(us_blob_size(b), 3);
    assert_string_equal(us_blob_sha256_hex(b),
                        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_int_equal(us_blob_publish(b), APR_SUCCESS);
    assert_null(us_blob_pending_path(b));
    assert_int_equal(us_blob_publish(b), APR_EGENERAL); /* once only */
    const char *path = apr_pstrdup(pool, us_blob_path(b));
    apr_pool_destroy(p); /* the published file stays */
    assert_true(exists(path));
    assert_int_equal(count_entries(dir), 1);
    unlink(path);
}

/* An empty file is a file too. */
static void test_empty_file(void **state)
{
    us_blob *b;
    apr_pool_t *p;
    struct stat st;
    (void)state;
    apr_pool_create(&p, pool);
    assert_int_equal(us_blob_open(p, dir, "empty", &b), APR_SUCCESS);
    assert_int_equal(us_blob_finish(b), APR_SUCCESS);
    assert_int_equal(us_blob_publish(b), APR_SUCCESS);
    assert_int_equal(stat(us_blob_path(b), &st), 0);
    assert_int_equal(st.st_size, 0);
    assert_string_equal(us_blob_sha256_hex(b),
                        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    unlink(us_blob_path(b));
    apr_pool_destroy(p);
}

/* A small file never replaces an existing file of its name. */
static void test_small_never_overwrites(void **state)
{
    us_blob *b;
    apr_pool_t *p;
    (void)state;
    apr_pool_create(&p, pool);
    assert_int_equal(us_blob_open(p, dir, "taken", &b), APR_SUCCESS);
    const char *path = apr_pstrdup(pool, us_blob_path(b));
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs("original", f);
    fclose(f);
    assert_int_equal(us_blob_write(b, "new", 3), APR_SUCCESS);
    assert_true(APR_STATUS_IS_EEXIST(us_blob_finish(b)));
    assert_null(us_blob_pending_path(b));
    apr_pool_destroy(p); /* the failed blob's cleanup leaves the other file */
    assert_int_equal(file_size(path), 8);
    unlink(path);
}

/* A large file written in odd pieces: every byte on disk in order, the
 * SHA-256 of all of them (crosses the early-writeback steps). */
static void write_in_pieces(const char *where, size_t size, size_t piece)
{
    us_blob *b;
    apr_pool_t *p;
    unsigned char d[32];
    char want[65];
    unsigned char *data = malloc(size);
    assert_non_null(data);
    for (size_t i = 0; i < size; i++)
        data[i] = (unsigned char)(i * 2654435761u >> 13);
    EVP_Digest(data, size, d, NULL, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++)
        snprintf(want + 2 * i, 3, "%02x", d[i]);

    apr_pool_create(&p, pool);
    assert_int_equal(us_blob_open(p, where, "large", &b), APR_SUCCESS);
    for (size_t off = 0; off < size; off += piece) {
        size_t n = size - off < piece ? size - off : piece;
        assert_int_equal(us_blob_write(b, (const char *)data + off, n), APR_SUCCESS);
    }
    assert_int_equal(us_blob_finish(b), APR_SUCCESS);
    assert_int_equal(us_blob_size(b), size);
    assert_string_equal(us_blob_sha256_hex(b), want);
    assert_int_equal(us_blob_publish(b), APR_SUCCESS);

    FILE *f = fopen(us_blob_path(b), "rb");
    assert_non_null(f);
    unsigned char *back = malloc(size + 1);
    assert_non_null(back);
    assert_int_equal(fread(back, 1, size + 1, f), size);
    fclose(f);
    assert_memory_equal(back, data, size);
    unlink(us_blob_path(b));
    free(back);
    free(data);
    apr_pool_destroy(p);
}

static void large_in_pieces(const char *where)
{
    write_in_pieces(where, 21 * 1024 * 1024 + 12345, 7999);
}

/* Sizes around the first chunk's 16 KiB (held in the request pool) and
 * the full chunk's 256 KiB, in pieces that cross both. */
static void test_sizes_around_the_chunks(void **state)
{
    static const size_t sizes[] = { 1, 16383, 16384, 16385, 70000, 262143, 262144, 262145, 600001 };
    static const size_t pieces[] = { 1000, 16384, 5000000 };
    (void)state;
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
        for (size_t j = 0; j < sizeof(pieces) / sizeof(pieces[0]); j++)
            write_in_pieces(dir, sizes[i], pieces[j]);
}

/* On the disk (O_DIRECT where the file system takes it, the tail through
 * the page cache) and, where there is one, on a tmpfs. */
static void test_large_in_pieces(void **state)
{
    (void)state;
    large_in_pieces(dir);
    struct stat st;
    if (stat("/dev/shm", &st) == 0) {
        char shm[] = "/dev/shm/us-unit-XXXXXX";
        assert_non_null(mkdtemp(shm));
        large_in_pieces(shm);
        assert_int_equal(fixture_remove_tree(shm), 0);
    }
}

static void test_abandoned_is_removed(void **state)
{
    us_blob *b;
    apr_pool_t *p;
    (void)state;
    apr_pool_create(&p, pool);
    assert_int_equal(us_blob_open(p, dir, "two", &b), APR_SUCCESS);
    assert_int_equal(us_blob_write(b, "x", 1), APR_SUCCESS);
    apr_pool_destroy(p); /* an aborted request */
    assert_int_equal(count_entries(dir), 0);

    /* and after a finish that was never published (the store refused it) */
    apr_pool_create(&p, pool);
    assert_int_equal(us_blob_open(p, dir, "two", &b), APR_SUCCESS);
    assert_int_equal(us_blob_write(b, "x", 1), APR_SUCCESS);
    assert_int_equal(us_blob_finish(b), APR_SUCCESS);
    assert_true(exists(us_blob_path(b)));
    apr_pool_destroy(p);
    assert_int_equal(count_entries(dir), 0);
}

/* The same with a large file, its writer thread busy: the cleanup stops it. */
static void test_abandoned_large_is_removed(void **state)
{
    static char block[100000];
    us_blob *b;
    apr_pool_t *p;
    (void)state;
    memset(block, 'y', sizeof(block));
    apr_pool_create(&p, pool);
    assert_int_equal(us_blob_open(p, dir, "three", &b), APR_SUCCESS);
    for (int i = 0; i < 50; i++)
        assert_int_equal(us_blob_write(b, block, sizeof(block)), APR_SUCCESS);
    const char *tmp = apr_pstrdup(pool, us_blob_pending_path(b));
    assert_true(exists(tmp)); /* a large file: a temp file */
    assert_string_equal(tmp + strlen(tmp) - 4, ".tmp");
    apr_pool_destroy(p);
    assert_false(exists(tmp));

    /* and after a finish that was never published */
    apr_pool_create(&p, pool);
    assert_int_equal(us_blob_open(p, dir, "four", &b), APR_SUCCESS);
    for (int i = 0; i < 50; i++)
        assert_int_equal(us_blob_write(b, block, sizeof(block)), APR_SUCCESS);
    assert_int_equal(us_blob_finish(b), APR_SUCCESS);
    assert_int_equal(us_blob_size(b), 50 * (long long)sizeof(block));
    tmp = apr_pstrdup(pool, us_blob_pending_path(b));
    assert_true(exists(tmp));
    us_blob_discard(b);
    assert_false(exists(tmp));
    apr_pool_destroy(p);
}

static void test_sweep_only_dead_writers(void **state)
{
    (void)state;
    const char *dead = apr_psprintf(pool, "%s/.a.999999999.tmp", dir);
    const char *live = apr_psprintf(pool, "%s/.b.%ld.tmp", dir, (long)getpid());
    const char *odd = apr_psprintf(pool, "%s/.c.tmp", dir);
    const char *data = apr_psprintf(pool, "%s/d", dir);
    touch(dead);
    touch(live);
    touch(odd);
    touch(data);
    assert_int_equal(us_blob_sweep(pool, dir, NULL), 2);
    assert_false(exists(dead));
    assert_false(exists(odd));
    assert_true(exists(live)); /* its writer (us) is still at work */
    assert_true(exists(data));
    unlink(live);
}

/* Sets a file's mtime to ago seconds back. */
static void age(const char *path, long ago)
{
    struct timeval tv[2];
    assert_int_equal(gettimeofday(&tv[0], NULL), 0);
    tv[0].tv_sec -= ago;
    tv[1] = tv[0];
    assert_int_equal(utimes(path, tv), 0);
}

/* Nodes sharing a directory over NFS: another machine's temp file carries a
 * pid that means nothing here and is kept until it has not changed for
 * US_BLOB_FOREIGN_STALL; this machine's goes as soon as its pid is gone. */
static void test_sweep_other_machines(void **state)
{
    (void)state;
    const char *other = "0123456789ab";
    assert_int_equal(strlen(us_blob_machine()), 12);
    assert_string_not_equal(us_blob_machine(), other);
    const char *theirs = apr_psprintf(pool, "%s/.a.999999999-%s.tmp", dir, other);
    const char *ours_dead = apr_psprintf(pool, "%s/.b.999999999-%s.tmp", dir, us_blob_machine());
    const char *ours_live = apr_psprintf(pool, "%s/.c.%ld-%s.tmp", dir, (long)getpid(),
                                         us_blob_machine());
    touch(theirs);
    touch(ours_dead);
    touch(ours_live);
    assert_int_equal(us_blob_sweep(pool, dir, NULL), 1);
    assert_true(exists(theirs)); /* fresh: its writer may be at work there */
    assert_false(exists(ours_dead));
    assert_true(exists(ours_live));

    age(theirs, apr_time_sec(US_BLOB_FOREIGN_STALL) - 60);
    assert_int_equal(us_blob_sweep(pool, dir, NULL), 0);
    assert_true(exists(theirs));

    age(theirs, apr_time_sec(US_BLOB_FOREIGN_STALL) + 60);
    assert_int_equal(us_blob_sweep(pool, dir, NULL), 1);
    assert_false(exists(theirs));
    assert_true(exists(ours_live));
    unlink(ours_live);
}

/* A large file's temp file is named for this process and machine: the
 * clear of its session keeps it while the writer lives. */
static void test_temp_name_has_machine(void **state)
{
    us_blob *b;
    apr_pool_t *p;
    (void)state;
    apr_pool_create(&p, pool);
    const char *sdir = apr_psprintf(p, "%s/session-named", dir);
    assert_int_equal(us_blob_open(p, sdir, "x", &b), APR_SUCCESS);
    char *chunk = apr_pcalloc(p, 256 * 1024);
    assert_int_equal(us_blob_write(b, chunk, 256 * 1024), APR_SUCCESS);
    assert_string_equal(us_blob_pending_path(b),
                        apr_psprintf(p, "%s/.x.%ld-%s.tmp", sdir, (long)getpid(), us_blob_machine()));
    assert_int_equal(us_blob_clear_dir(p, sdir, 1, NULL), 1);
    assert_true(exists(us_blob_pending_path(b)));
    apr_pool_destroy(p);
    assert_int_equal(us_blob_clear_dir(pool, sdir, 1, NULL), 0);
    assert_false(exists(sdir));
}

/* A done session's directory: everything goes but a live writer's temp
 * file; the directory itself once nothing is left. */
static void test_clear_dir(void **state)
{
    (void)state;
    const char *sdir = apr_psprintf(pool, "%s/session", dir);
    assert_int_equal(mkdir(sdir, 0750), 0);
    const char *live = apr_psprintf(pool, "%s/.b.%ld.tmp", sdir, (long)getpid());
    touch(apr_psprintf(pool, "%s/blob-of-a-failed-file", sdir));
    touch(apr_psprintf(pool, "%s/.a.999999999.tmp", sdir));
    touch(live);
    assert_int_equal(us_blob_clear_dir(pool, sdir, 1, NULL), 1);
    assert_int_equal(count_entries(sdir), 1);
    assert_true(exists(live)); /* its upload is still running */
    unlink(live);
    assert_int_equal(us_blob_clear_dir(pool, sdir, 1, NULL), 0);
    assert_false(exists(sdir));
    assert_int_equal(us_blob_clear_dir(pool, sdir, 1, NULL), 0); /* gone already */
}

/* The last clear of a session no writer of can be alive: a temp file goes
 * whatever process its pid names now (here: this live one). */
static void test_clear_dir_late(void **state)
{
    (void)state;
    const char *sdir = apr_psprintf(pool, "%s/session-late", dir);
    assert_int_equal(mkdir(sdir, 0750), 0);
    const char *live = apr_psprintf(pool, "%s/.b.%ld.tmp", sdir, (long)getpid());
    touch(apr_psprintf(pool, "%s/blob-left", sdir));
    touch(live);
    assert_int_equal(us_blob_clear_dir(pool, sdir, 0, NULL), 0);
    assert_false(exists(live));
    assert_false(exists(sdir));
}

static int setup(void **state)
{
    (void)state;
    dir = fixture_path("blob");
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_publish),
        cmocka_unit_test(test_empty_file),
        cmocka_unit_test(test_small_never_overwrites),
        cmocka_unit_test(test_large_in_pieces),
        cmocka_unit_test(test_sizes_around_the_chunks),
        cmocka_unit_test(test_abandoned_is_removed),
        cmocka_unit_test(test_abandoned_large_is_removed),
        cmocka_unit_test(test_sweep_only_dead_writers),
        cmocka_unit_test(test_sweep_other_machines),
        cmocka_unit_test(test_temp_name_has_machine),
        cmocka_unit_test(test_clear_dir),
        cmocka_unit_test(test_clear_dir_late),
    };
    return fixture_run("us_blob", tests, setup, NULL);
}

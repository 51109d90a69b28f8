/* Unit tests: the posix backend's page of stored workspace files
 * (us_storage_files_page) over a directory of many more files than a page:
 * the pages are exactly the sorted names with their mtimes, and one call's
 * memory grows with the page, not with the directory. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include "fixture.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <apr_allocator.h>
#include <apr_file_info.h>
#include <apr_hash.h>
#include <apr_strings.h>
#include "us_storage.h"
#include "data_meter.h"

enum { FILES = 5000, LIMIT = 100 };

/* A pool of its own allocator: its memory is malloc's again when destroyed,
 * so every call is measured from nothing. */
static apr_pool_t *fresh_pool(void)
{
    apr_allocator_t *a;
    apr_pool_t *p;
    assert_int_equal(apr_allocator_create(&a), APR_SUCCESS);
    assert_int_equal(apr_pool_create_ex(&p, NULL, NULL, a), APR_SUCCESS);
    apr_allocator_owner_set(a, p);
    return p;
}

/* 1 when data_bytes sees a pool's growth. Not under valgrind (its
 * preload in LD_PRELOAD) nor AddressSanitizer: both keep freed blocks
 * aside to catch uses after free and take memory in big pieces, so the
 * count says nothing of one call's live memory. */
static int meter_works(void)
{
    if (!data_meter_trusted())
        return 0;
    apr_pool_t *p = fresh_pool();
    size_t before = data_bytes();
    (void)apr_palloc(p, 1 << 20);
    int works = data_bytes() >= before + ((size_t)1 << 20);
    apr_pool_destroy(p);
    return works;
}

static int by_string(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void touch(const char *path)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("x", f);
    fclose(f);
}

/* FILES files in a scattered order with distinct mtimes, beside a temp
 * file, a directory and a symbolic link that are never listed; paged
 * LIMIT at a time from the start, the pages are the sorted names, each
 * call's pool grows by a bound of the page, far under the names' size. */
static void test_pages_in_bounded_memory(void **state)
{
    const char *data = fixture_path("paged");
    const char *files = apr_pstrcat(pool, data, "/files", NULL);
    const char *names[FILES];
    apr_time_t base = apr_time_from_sec(1700000000);
    us_storage *st = NULL;
    const char *err = NULL;
    (void)state;
    assert_int_equal(us_storage_configure(pool, "posix", data, NULL, &st, &err), APR_SUCCESS);
    assert_int_equal(us_storage_prepare(st, pool), APR_SUCCESS);
    for (unsigned i = 0; i < FILES; i++) {
        unsigned h = i * 2654435761u; /* scattered: creation order is not name order */
        names[i] = apr_psprintf(pool, "%08x-0000-4000-8000-%012u", h, i);
        const char *path = apr_pstrcat(pool, files, "/", names[i], NULL);
        touch(path);
        assert_int_equal(apr_file_mtime_set(path, base + apr_time_from_sec(i), pool), APR_SUCCESS);
    }
    touch(apr_pstrcat(pool, files, "/.0-temp.1.tmp", NULL));
    assert_int_equal(mkdir(apr_pstrcat(pool, files, "/80000000-dir", NULL), 0755), 0);
    assert_int_equal(symlink(names[0], apr_pstrcat(pool, files, "/80000001-link", NULL)), 0);
    apr_hash_t *mtime_of = apr_hash_make(pool);
    for (unsigned i = 0; i < FILES; i++)
        apr_hash_set(mtime_of, names[i], APR_HASH_KEY_STRING, apr_pmemdup(pool, &i, sizeof(i)));
    qsort(names, FILES, sizeof(names[0]), by_string);

    int metered = meter_works();
    {   /* once before measuring: the C library's own first buffers (readdir's) */
        apr_array_header_t *page;
        const char *next;
        assert_int_equal(us_storage_files_page(st, pool, "", LIMIT, &page, &next), APR_SUCCESS);
    }
    if (!metered)
        print_message("the data segment does not show a pool's growth: the memory bound is "
                      "not checked\n");
    size_t most = 0;
    int seen = 0, pages = 0;
    const char *after = "";
    for (;;) {
        apr_pool_t *p = fresh_pool();
        apr_array_header_t *page;
        const char *next;
        size_t before = data_bytes();
        assert_int_equal(us_storage_files_page(st, p, after, LIMIT, &page, &next), APR_SUCCESS);
        size_t after_call = data_bytes();
        size_t grown = after_call > before ? after_call - before : 0;
        most = grown > most ? grown : most;
        pages++;
        assert_true(page->nelts == (FILES - seen < LIMIT ? FILES - seen : LIMIT));
        for (int i = 0; i < page->nelts; i++) {
            const us_storage_file *f = &APR_ARRAY_IDX(page, i, us_storage_file);
            assert_string_equal(f->file_id, names[seen + i]);
            const unsigned *n = apr_hash_get(mtime_of, f->file_id, APR_HASH_KEY_STRING);
            assert_non_null(n);
            assert_true(f->modified == base + apr_time_from_sec(*n));
        }
        seen += page->nelts;
        if (seen < FILES) {
            assert_non_null(next);
            assert_string_equal(next, names[seen - 1]);
            after = apr_pstrdup(pool, next);
        } else {
            assert_null(next); /* the last page ends the listing */
        }
        apr_pool_destroy(p);
        if (!next)
            break;
    }
    assert_int_equal(seen, FILES);
    assert_int_equal(pages, FILES / LIMIT);
    print_message("%d pages of %d; the most one call grew: %zu bytes\n", pages, LIMIT, most);
    /* the names alone are FILES * 37 bytes (185 KB); a page's are 3.7 KB */
    if (metered)
        assert_true(most < 64 * 1024);

    /* after the last name, and with a limit above what is left */
    apr_array_header_t *page;
    const char *next;
    assert_int_equal(us_storage_files_page(st, pool, names[FILES - 1], LIMIT, &page, &next),
                     APR_SUCCESS);
    assert_int_equal(page->nelts, 0);
    assert_null(next);
    assert_int_equal(us_storage_files_page(st, pool, names[FILES - 3], LIMIT, &page, &next),
                     APR_SUCCESS);
    assert_int_equal(page->nelts, 2);
    assert_string_equal(APR_ARRAY_IDX(page, 1, us_storage_file).file_id, names[FILES - 1]);
    assert_null(next);
}

/* A page of one, and a directory that does not exist: an empty page. */
static void test_edges(void **state)
{
    const char *data = fixture_path("edges");
    const char *files = apr_pstrcat(pool, data, "/files", NULL);
    us_storage *st = NULL;
    const char *err = NULL;
    apr_array_header_t *page;
    const char *next;
    (void)state;
    assert_int_equal(us_storage_configure(pool, "posix", data, NULL, &st, &err), APR_SUCCESS);
    assert_int_equal(us_storage_files_page(st, pool, "", LIMIT, &page, &next), APR_SUCCESS);
    assert_int_equal(page->nelts, 0);
    assert_null(next);
    assert_int_equal(us_storage_prepare(st, pool), APR_SUCCESS);
    touch(apr_pstrcat(pool, files, "/b", NULL));
    touch(apr_pstrcat(pool, files, "/a", NULL));
    touch(apr_pstrcat(pool, files, "/c", NULL));
    assert_int_equal(us_storage_files_page(st, pool, "", 1, &page, &next), APR_SUCCESS);
    assert_int_equal(page->nelts, 1);
    assert_string_equal(APR_ARRAY_IDX(page, 0, us_storage_file).file_id, "a");
    assert_string_equal(next, "a");
    assert_int_equal(us_storage_files_page(st, pool, "a", 2, &page, &next), APR_SUCCESS);
    assert_int_equal(page->nelts, 2);
    assert_string_equal(APR_ARRAY_IDX(page, 0, us_storage_file).file_id, "b");
    assert_string_equal(APR_ARRAY_IDX(page, 1, us_storage_file).file_id, "c");
    assert_null(next);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pages_in_bounded_memory),
        cmocka_unit_test(test_edges),
    };
    return fixture_run("us_files_page: posix", tests, NULL, NULL);
}

/* Unit tests: syncing the directory that holds a name (us_fsync.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include "fixture.h"
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <apr_general.h>
#include <apr_strings.h>
#include "us_fsync.h"

static void test_directories_sync(void **state)
{
    (void)state;
    assert_int_equal(us_fsync_dir(fixture_dir), APR_SUCCESS);
    assert_int_equal(us_fsync_dir("/"), APR_SUCCESS);
    assert_int_equal(us_fsync_dir(fixture_path("missing")), APR_FROM_OS_ERROR(ENOENT));
}

/* The parent of a name is what precedes its last slash: "/" for a name
 * under the root, the working directory for a bare name. The name itself
 * need not exist (a caller syncs after a rename or a link). */
static void test_the_parent_is_the_directory_before_the_last_slash(void **state)
{
    (void)state;
    assert_int_equal(us_fsync_parent(fixture_path("not-yet")), APR_SUCCESS);
    assert_int_equal(us_fsync_parent("/etc"), APR_SUCCESS);
    assert_int_equal(us_fsync_parent("bare-name"), APR_SUCCESS);
    assert_int_equal(us_fsync_parent(fixture_path("missing/x")), APR_FROM_OS_ERROR(ENOENT));

    FILE *f = fopen(fixture_path("plain"), "w");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(us_fsync_parent(fixture_path("plain/x")), APR_FROM_OS_ERROR(ENOTDIR));
}

static void test_a_parent_longer_than_path_max_is_refused(void **state)
{
    (void)state;
    char *dir = apr_palloc(pool, PATH_MAX + 2);
    memset(dir, 'a', PATH_MAX + 1);
    dir[0] = '/';
    dir[PATH_MAX + 1] = '\0';
    assert_int_equal(us_fsync_parent(apr_pstrcat(pool, dir, "/x", NULL)),
                     APR_FROM_OS_ERROR(ENAMETOOLONG));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_directories_sync),
        cmocka_unit_test(test_the_parent_is_the_directory_before_the_last_slash),
        cmocka_unit_test(test_a_parent_longer_than_path_max_is_refused),
    };
    return fixture_run("us_fsync", tests, NULL, NULL);
}

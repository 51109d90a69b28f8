/*
 * fixture.h - what every unit suite's main needs: APR, a root pool and a
 * fresh temporary directory under $TMPDIR (/tmp when unset), removed with
 * everything in it when the group has run. Include after cmocka.h, then
 *
 *     int main(void) { ...; return fixture_run("us_x", tests, setup, teardown); }
 *
 * and put the suite's files under fixture_path("name").
 */
#ifndef US_FIXTURE_H
#define US_FIXTURE_H

#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>

static apr_pool_t *pool;
static char fixture_dir[PATH_MAX];

static int fixture_remove_entry(const char *path, const struct stat *st, int flag,
                                struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    if (remove(path) != 0) {
        perror(path);
        return -1;
    }
    return 0;
}

/* path and everything below it; 0, or -1 when something stayed. */
static inline int fixture_remove_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return 0;
    return nftw(path, fixture_remove_entry, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -1;
}

/* APR, the root pool and the temporary directory: 0, or 1 with a message. */
static inline int fixture_start(void)
{
    const char *tmp = getenv("TMPDIR");
    if (tmp == NULL || *tmp == '\0')
        tmp = "/tmp";
    if (apr_initialize() != APR_SUCCESS || apr_pool_create(&pool, NULL) != APR_SUCCESS) {
        fprintf(stderr, "APR start-up failed\n");
        return 1;
    }
    int n = snprintf(fixture_dir, sizeof(fixture_dir), "%s/us-unit-XXXXXX", tmp);
    if (n < 0 || (size_t)n >= sizeof(fixture_dir) || mkdtemp(fixture_dir) == NULL) {
        perror("mkdtemp");
        fixture_dir[0] = '\0';
        return 1;
    }
    return 0;
}

/* Removes the temporary directory, then the pool and APR; returns rc, or 1
 * when the directory could not be removed. */
static inline int fixture_stop(int rc)
{
    if (fixture_dir[0] != '\0' && fixture_remove_tree(fixture_dir) != 0)
        rc = 1;
    fixture_dir[0] = '\0';
    if (pool != NULL)
        apr_pool_destroy(pool);
    pool = NULL;
    apr_terminate();
    return rc;
}

/* name inside the temporary directory (nothing is created). */
static inline const char *fixture_path(const char *name)
{
    return apr_pstrcat(pool, fixture_dir, "/", name, NULL);
}

#define fixture_run(name, tests, setup, teardown)                               \
    (fixture_start() != 0 ? fixture_stop(1)                                     \
                          : fixture_stop(cmocka_run_group_tests_name(name, tests, setup, teardown)))

#endif

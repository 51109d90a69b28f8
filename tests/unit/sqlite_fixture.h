/*
 * sqlite_fixture.h - shared by the unit suites that drive the store against
 * a temporary SQLite file (test_us_store, test_us_writer, test_us_ingest):
 * the process pool and the sqlite3 driver, and a fresh migrated database.
 * Include after cmocka.h.
 */
#ifndef US_SQLITE_FIXTURE_H
#define US_SQLITE_FIXTURE_H

#include <stdio.h>
#include <unistd.h>

#include <apr_dbd.h>
#include <apr_general.h>
#include <apr_strings.h>
#include "us_store.h"

static apr_pool_t *pool;

/* The store of an SQLite database at path (checked by fixture_start). */
static inline us_store_cfg *fixture_cfg(const char *path)
{
    us_store_cfg *cfg = NULL;
    const char *err = NULL;
    if (us_store_configure(pool, "sqlite3", path, &cfg, &err) != US_DB_OK)
        fail_msg("configure %s: %s", path, err);
    return cfg;
}

/* Before the tests: APR, a root pool and the sqlite3 driver. 0, or 1 with a
 * message when the driver is missing. */
static inline int fixture_start(void)
{
    us_store_cfg *cfg = NULL;
    const char *err = NULL;
    apr_initialize();
    apr_pool_create(&pool, NULL);
    apr_dbd_init(pool);
    if (us_store_configure(pool, "sqlite3", "/", &cfg, &err) != US_DB_OK) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    return 0;
}

static inline void fixture_stop(void)
{
    apr_pool_destroy(pool);
    apr_terminate();
}

/* A new database at path (removed first), migrated to the current schema. */
static inline void fixture_db_create(const char *path)
{
    const char *err = NULL;
    unlink(path);
    if (us_store_migrate(fixture_cfg(path), pool, &err) != US_DB_OK)
        fail_msg("migrate %s: %s", path, err);
}

/* The database and the files SQLite and the writers keep beside it. */
static inline void fixture_db_remove(const char *path)
{
    static const char *const beside[] = { "", "-wal", "-shm", ".lock" };
    for (size_t i = 0; i < sizeof(beside) / sizeof(beside[0]); i++)
        unlink(apr_pstrcat(pool, path, beside[i], NULL));
}

#endif

/*
 * sqlite_fixture.h - fixture.h plus what the suites that drive the store
 * against a temporary SQLite file need (test_us_store, test_us_writer,
 * test_us_ingest): the SQLite backend, and a fresh migrated database.
 * Include after cmocka.h; run the group with sqlite_fixture_run(), which
 * fixture_run() would be but for loading the driver.
 */
#ifndef US_SQLITE_FIXTURE_H
#define US_SQLITE_FIXTURE_H

#include <stdio.h>
#include <unistd.h>

#include <apr_dbd.h>
#include "fixture.h"
#include "us_store.h"

/* The store of an SQLite database at path (checked by sqlite_fixture_start). */
static inline us_store_cfg *fixture_cfg(const char *path)
{
    us_store_cfg *cfg = NULL;
    const char *err = NULL;
    if (us_store_configure(pool, "sqlite3", path, &cfg, &err) != US_DB_OK)
        fail_msg("configure %s: %s", path, err);
    return cfg;
}

/* fixture_start() and the SQLite backend with its driver: 0, or 1 with a
 * message. */
static inline int sqlite_fixture_start(void)
{
    us_store_cfg *cfg = NULL;
    const char *err = NULL;
    if (fixture_start() != 0)
        return 1;
    apr_dbd_init(pool);
    if (us_store_configure(pool, "sqlite3", "/", &cfg, &err) != US_DB_OK) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    return 0;
}

#define sqlite_fixture_run(name, tests, setup, teardown)                        \
    (sqlite_fixture_start() != 0 ? fixture_stop(1)                              \
                                 : fixture_stop(cmocka_run_group_tests_name(name, tests, setup, teardown)))

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

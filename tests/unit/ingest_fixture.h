/*
 * ingest_fixture.h - what the ingestion suites (test_us_ingest,
 * test_us_ingest_wake) share: the configuration of the workers under test
 * (its store set by each test), a connection to that store, numbered
 * UUIDs. Include after fixture.h and us_ingest.h.
 */
#ifndef US_INGEST_FIXTURE_H
#define US_INGEST_FIXTURE_H

#include <apr_strings.h>

static us_ingest_config cfg;

static us_db *db_open(void)
{
    us_db *db = NULL;
    const char *err = NULL;
    if (us_db_open(pool, cfg.store, &db, &err) != US_DB_OK)
        fail_msg("open: %s", err);
    return db;
}

static const char *uuid_n(int n)
{
    return apr_psprintf(pool, "00000000-0000-4000-8000-%012d", n);
}

#endif

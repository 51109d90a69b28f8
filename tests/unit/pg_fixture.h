/*
 * pg_fixture.h - a private PostgreSQL for the unit suites: the cluster of
 * $US_PG_CONNINFO when set (a libpq conninfo of a superuser), else one
 * started by scripts/pg-test-cluster.sh (or $US_PG_CLUSTER) for this
 * process and stopped at its end. Each test gets a database of its own.
 * The cluster started here can also write its messages in German
 * (PG_FIXTURE_GERMAN, a database's lc_messages); one of $US_PG_CONNINFO
 * must have that locale for the tests that ask for it. Include after
 * fixture.h.
 */
#ifndef US_PG_FIXTURE_H
#define US_PG_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <apr_dbd.h>
#include <apr_strings.h>

#define PG_FIXTURE_GERMAN "de_DE.UTF-8"

static char pg_fixture_dir[1024];
static char pg_fixture_conninfo[1024];

static void pg_fixture_chomp(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
}

/* 0 with pg_fixture_conninfo set, else 1 with *why. */
static int pg_fixture_start(const char **why)
{
    const char *env = getenv("US_PG_CONNINFO");
    if (env && *env) {
        snprintf(pg_fixture_conninfo, sizeof(pg_fixture_conninfo), "%s", env);
        return 0;
    }
    const char *helper = getenv("US_PG_CLUSTER");
    if (!helper || !*helper)
        helper = "scripts/pg-test-cluster.sh";
    FILE *f = popen(apr_pstrcat(pool, "US_PG_LOCALE=" PG_FIXTURE_GERMAN " ", helper, " start",
                                NULL), "r");
    if (!f) {
        *why = "cannot run the cluster helper";
        return 1;
    }
    int ok = fgets(pg_fixture_dir, sizeof(pg_fixture_dir), f) != NULL &&
             fgets(pg_fixture_conninfo, sizeof(pg_fixture_conninfo), f) != NULL;
    int rc = pclose(f);
    pg_fixture_chomp(pg_fixture_dir);
    pg_fixture_chomp(pg_fixture_conninfo);
    if (!ok || rc != 0) {
        *why = apr_psprintf(pool, "%s start failed (exit %d)", helper, rc);
        return 1;
    }
    return 0;
}

static void pg_fixture_stop(void)
{
    const char *helper = getenv("US_PG_CLUSTER");
    if (!pg_fixture_dir[0])
        return;
    if (!helper || !*helper)
        helper = "scripts/pg-test-cluster.sh";
    if (system(apr_pstrcat(pool, helper, " stop '", pg_fixture_dir, "'", NULL)) != 0)
        fprintf(stderr, "pg_fixture: stopping the cluster in %s failed\n", pg_fixture_dir);
    pg_fixture_dir[0] = '\0';
}

/* Runs one statement on the cluster's maintenance database; 0 or 1. */
static int pg_fixture_admin(const char *sql)
{
    const apr_dbd_driver_t *drv = NULL;
    apr_dbd_t *h = NULL;
    const char *err = NULL;
    int nrows = 0, rc;
    if (apr_dbd_get_driver(pool, "pgsql", &drv) != APR_SUCCESS ||
        apr_dbd_open_ex(drv, pool, pg_fixture_conninfo, &h, &err) != APR_SUCCESS) {
        fprintf(stderr, "pg_fixture: cannot connect: %s\n", err ? err : "?");
        return 1;
    }
    rc = apr_dbd_query(drv, h, &nrows, sql);
    if (rc != 0)
        fprintf(stderr, "pg_fixture: %s: %s\n", sql, apr_dbd_error(drv, h, rc));
    apr_dbd_close(drv, h);
    return rc != 0;
}

/* The conninfo of a new, empty database named after the test, made with
 * CREATE DATABASE's options (text after the name: "" for none). */
static const char *pg_fixture_create_db(apr_pool_t *p, const char *name, const char *options)
{
    const char *db = apr_psprintf(p, "us_%s_%ld", name, (long)getpid());
    pg_fixture_admin(apr_psprintf(p, "DROP DATABASE IF EXISTS %s WITH (FORCE)", db));
    if (pg_fixture_admin(apr_psprintf(p, "CREATE DATABASE %s %s", db, options)) != 0)
        return NULL;
    /* a later keyword wins in a libpq conninfo */
    return apr_psprintf(p, "%s dbname=%s", pg_fixture_conninfo, db);
}

static void pg_fixture_drop_db(apr_pool_t *p, const char *params)
{
    const char *db = strrchr(params, '=');
    if (db)
        pg_fixture_admin(apr_psprintf(p, "DROP DATABASE IF EXISTS %s WITH (FORCE)", db + 1));
}

#endif

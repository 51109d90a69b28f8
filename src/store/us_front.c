/*
 * us_front.c - the store front: picks the backend by driver name and
 * passes every operation of us_store.h to its table (us_store_backend.h).
 */
#include "us_store_backend.h"

#include <apr_strings.h>
#include <string.h>

struct us_store_cfg {
    const us_store_backend *backend;
    void *conf;
};

static const us_store_backend *const BACKENDS[] = { &us_sqlite_backend, &us_pgsql_backend };

const us_store_backend *us_store_backend_for(const char *driver)
{
    for (size_t i = 0; i < sizeof(BACKENDS) / sizeof(BACKENDS[0]); i++)
        if (strcmp(BACKENDS[i]->driver, driver) == 0)
            return BACKENDS[i];
    return NULL;
}

int us_store_params_are_path(const char *driver)
{
    const us_store_backend *be = us_store_backend_for(driver);
    return be && be->params_are_path;
}

us_db_rc us_store_configure(apr_pool_t *p, const char *driver, const char *params,
                            us_store_cfg **out, const char **err)
{
    const us_store_backend *be = us_store_backend_for(driver);
    void *conf = NULL;
    if (!be) {
        *err = apr_psprintf(p, "no store backend for driver '%s' in this build", driver);
        return US_DB_ERROR;
    }
    us_db_rc rc = be->configure(p, params, &conf, err);
    if (rc != US_DB_OK)
        return rc;
    us_store_cfg *cfg = apr_pcalloc(p, sizeof(*cfg));
    cfg->backend = be;
    cfg->conf = conf;
    *out = cfg;
    return US_DB_OK;
}

const char *us_store_home(const us_store_cfg *cfg, apr_pool_t *p)
{
    return cfg->backend->home(cfg->conf, p);
}

void us_store_set_logger(us_store_cfg *cfg, const us_logger *lg)
{
    cfg->backend->set_logger(cfg->conf, lg);
}

void us_store_set_lock_timeout(us_store_cfg *cfg, int ms)
{
    cfg->backend->set_lock_timeout(cfg->conf, ms);
}

us_db_rc us_store_migrate(const us_store_cfg *cfg, apr_pool_t *p, const char **err)
{
    return cfg->backend->migrate(cfg->conf, p, err);
}

us_db_rc us_store_prepare_files(const us_store_cfg *cfg, apr_pool_t *p, const char **err)
{
    return cfg->backend->prepare_files(cfg->conf, p, err);
}

apr_array_header_t *us_store_user_files(const us_store_cfg *cfg, apr_pool_t *p)
{
    apr_array_header_t *paths = apr_array_make(p, 4, sizeof(const char *));
    cfg->backend->user_files(cfg->conf, p, paths);
    return paths;
}

us_db_rc us_db_open(apr_pool_t *p, const us_store_cfg *cfg, us_db **out, const char **err)
{
    return cfg->backend->open(cfg->conf, p, out, err);
}

us_db_rc us_db_open_apart(apr_pool_t *p, const us_store_cfg *cfg, us_db **out, char *err,
                          apr_size_t errlen)
{
    apr_pool_t *home;
    const char *why = NULL;
    *out = NULL;
    if (apr_pool_create(&home, p) != APR_SUCCESS) {
        apr_cpystrn(err, "out of memory", errlen);
        return US_DB_ERROR;
    }
    us_db_rc rc = us_db_open(home, cfg, out, &why);
    if (rc != US_DB_OK) {
        apr_cpystrn(err, why ? why : "cannot connect", errlen);
        apr_pool_destroy(home);
        *out = NULL;
        return rc;
    }
    (*out)->home = home;
    return US_DB_OK;
}

void us_db_close(us_db *db)
{
    if (!db)
        return;
    apr_pool_t *home = db->home;
    db->backend->close(db);
    if (home)
        apr_pool_destroy(home);
}

us_db_rc us_db_maintain(us_db *db, apr_pool_t *p)
{
    return db->backend->maintain(db, p);
}

us_db_rc us_db_for_batches(us_db *db, apr_pool_t *p)
{
    return db->backend->for_batches ? db->backend->for_batches(db, p) : US_DB_OK;
}

int us_db_warm(us_db *db)
{
    if (!db->backend->warm)
        return 0;
    db->backend->warm(db);
    return 1;
}

int us_store_warms(const us_store_cfg *cfg)
{
    return cfg->backend->warm != NULL;
}

const char *us_db_error(us_db *db)
{
    return db ? db->backend->error(db) : "no error";
}

int us_db_worn_out(us_db *db)
{
    return db->backend->worn_out && db->backend->worn_out(db);
}

int us_db_outcome_unknown(us_db *db)
{
    return db->backend->outcome_unknown && db->backend->outcome_unknown(db);
}

void us_db_clear_error(us_db *db)
{
    db->backend->clear_error(db);
}

/* ---- sessions ------------------------------------------------------------- */

us_db_rc us_session_insert(us_db *db, apr_pool_t *p, us_session *s, int max_open,
                           apr_time_t now)
{
    return db->backend->session_insert(db, p, s, max_open, now);
}

/* The dialect keeps a node registry when it maps its statements. */
int us_store_keeps_nodes(const us_store_cfg *cfg)
{
    return cfg->backend->statement(US_STMT_NODE_CLAIM)->sql != NULL;
}

us_db_rc us_sessions_expire(us_db *db, apr_pool_t *p, int *count)
{
    return db->backend->sessions_expire(db, p, count);
}

/* ---- uploads -------------------------------------------------------------- */

/* ---- ingestion ------------------------------------------------------------ */

us_db_rc us_ingest_claim(us_db *db, apr_pool_t *p, const char *owner, apr_time_t now,
                         apr_time_t stale_before, us_session *out)
{
    return db->backend->ingest_claim(db, p, owner, now, stale_before, out);
}

us_db_rc us_ingest_heartbeat(us_db *db, apr_pool_t *p, const char *session_id,
                             const char *owner, apr_time_t now)
{
    return db->backend->ingest_heartbeat(db, p, session_id, owner, now);
}

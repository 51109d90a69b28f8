/* A background worker's connection to its store (see us_worker_link.h). */
#include "us_worker_link.h"

us_db_rc us_worker_connect(us_worker_link *l, apr_pool_t *p, const us_store_cfg *store,
                           us_db **db)
{
    char err[256];
    if (*db && us_db_worn_out(*db)) {
        us_db_close(*db);
        *db = NULL;
    }
    if (*db)
        return US_DB_OK;
    us_db_rc rc = us_db_open_apart(p, store, db, err, sizeof(err));
    if (rc == US_DB_OK) {
        if (l->down)
            us_log(l->log, US_LOG_INFO, 0, l->back_no, "%s: connected to the store again", l->who);
        l->down = 0;
        return rc;
    }
    *db = NULL;
    us_metrics_worker_store_error(l->metrics);
    if (rc != US_DB_BUSY)
        us_log(l->log, US_LOG_ERR, 0, l->error_no, "%s: %s", l->who, err);
    else if (!l->down)
        us_log(l->log, US_LOG_WARN, 0, l->down_no, "%s: %s; trying again every 5 s", l->who, err);
    l->down |= rc == US_DB_BUSY;
    return rc;
}

void us_worker_failed(us_worker_link *l, us_db_rc rc, int no, const char *err)
{
    us_metrics_worker_store_error(l->metrics);
    if (rc != US_DB_BUSY)
        us_log(l->log, US_LOG_WARN, 0, no, "%s: %s", l->who, err);
    else if (!l->down)
        us_log(l->log, US_LOG_WARN, 0, l->down_no, "%s: %s; trying again every second", l->who,
               err);
    else
        us_log(l->log, US_LOG_DEBUG, 0, no, "%s: %s", l->who, err);
    l->down |= rc == US_DB_BUSY;
}

void us_worker_answered(us_worker_link *l)
{
    if (l->down)
        us_log(l->log, US_LOG_INFO, 0, l->back_no, "%s: the store answers again", l->who);
    l->down = 0;
}

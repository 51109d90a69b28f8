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

void us_db_close(us_db *db)
{
    if (db)
        db->backend->close(db);
}

us_db_rc us_db_maintain(us_db *db, apr_pool_t *p)
{
    return db->backend->maintain(db, p);
}

us_db_rc us_db_for_batches(us_db *db, apr_pool_t *p)
{
    return db->backend->for_batches ? db->backend->for_batches(db, p) : US_DB_OK;
}

const char *us_db_error(us_db *db)
{
    return db ? db->backend->error(db) : "no error";
}

int us_db_worn_out(us_db *db)
{
    return db->backend->worn_out && db->backend->worn_out(db);
}

void us_db_clear_error(us_db *db)
{
    db->backend->clear_error(db);
}

/* ---- sessions ------------------------------------------------------------- */

us_db_rc us_session_insert(us_db *db, apr_pool_t *p, const us_session *s, int max_open,
                           apr_time_t now)
{
    return db->backend->session_insert(db, p, s, max_open, now);
}

us_db_rc us_session_get(us_db *db, apr_pool_t *p, const char *workspace, const char *id,
                        apr_time_t now, us_session *out)
{
    return db->backend->session_get(db, p, workspace, id, now, out);
}

us_db_rc us_session_by_id(us_db *db, apr_pool_t *p, const char *id, apr_time_t now,
                          us_session *out)
{
    return db->backend->session_by_id(db, p, id, now, out);
}

us_db_rc us_session_abort(us_db *db, apr_pool_t *p, const char *workspace, const char *id,
                          apr_time_t now)
{
    return db->backend->session_abort(db, p, workspace, id, now);
}

us_db_rc us_session_close(us_db *db, apr_pool_t *p, const char *workspace, const char *id,
                          apr_time_t now)
{
    return db->backend->session_close(db, p, workspace, id, now);
}

/* A cursor page is asked with one row more, which tells whether more
 * follow; `before` rows come nearest first and are turned round. An offset
 * page has more when the count says so. */
static us_page page_ask(const us_page *pg)
{
    us_page ask = *pg;
    if (pg->cursor)
        ask.limit = pg->limit + 1;
    return ask;
}

static void page_finish(const us_page *pg, apr_array_header_t *rows, long long total,
                        int *has_more)
{
    if (!pg->cursor) {
        *has_more = pg->offset < total && pg->offset + rows->nelts < total;
        return;
    }
    *has_more = rows->nelts > pg->limit;
    if (*has_more)
        rows->nelts = (int)pg->limit;
    if (!pg->before)
        return;
    apr_size_t size = (apr_size_t)rows->elt_size;
    char *tmp = apr_palloc(rows->pool, size);
    for (int i = 0, j = rows->nelts - 1; i < j; i++, j--) {
        char *a = rows->elts + (apr_size_t)i * size;
        char *b = rows->elts + (apr_size_t)j * size;
        memcpy(tmp, a, size);
        memcpy(a, b, size);
        memcpy(b, tmp, size);
    }
}

us_db_rc us_session_list(us_db *db, apr_pool_t *p, const char *workspace, int is_expired,
                         const us_page *pg, apr_time_t now,
                         apr_array_header_t **rows, long long *total, int *has_more)
{
    us_page ask = page_ask(pg);
    *has_more = 0;
    us_db_rc rc = db->backend->session_list(db, p, workspace, is_expired, &ask, now, rows,
                                            total);
    if (rc == US_DB_OK)
        page_finish(pg, *rows, *total, has_more);
    return rc;
}

int us_store_keeps_nodes(const us_store_cfg *cfg)
{
    return cfg->backend->node_claim != NULL;
}

us_db_rc us_node_claim(us_db *db, apr_pool_t *p, const us_node *me, const char *replaces,
                       apr_interval_time_t ttl, us_node *holder)
{
    if (!db->backend->node_claim)
        return US_DB_OK;
    return db->backend->node_claim(db, p, me, replaces, ttl, holder);
}

us_db_rc us_node_heartbeat(us_db *db, apr_pool_t *p, const char *name, const char *instance)
{
    if (!db->backend->node_heartbeat)
        return US_DB_OK;
    return db->backend->node_heartbeat(db, p, name, instance);
}

us_db_rc us_sessions_expire(us_db *db, apr_pool_t *p, int *count)
{
    return db->backend->sessions_expire(db, p, count);
}

/* ---- uploads -------------------------------------------------------------- */

us_db_rc us_upload_commit(us_db *db, apr_pool_t *p, const us_upload_record *u, apr_time_t now,
                          const char **old_blob)
{
    return db->backend->upload_commit(db, p, u, now, old_blob);
}

us_db_rc us_upload_blob(us_db *db, apr_pool_t *p, const char *session_id, const char *name,
                        const char **blob)
{
    return db->backend->upload_blob(db, p, session_id, name, blob);
}

us_db_rc us_session_files_list(us_db *db, apr_pool_t *p, const char *session_id, const char *status,
                       const us_page *pg, apr_array_header_t **rows, long long *total,
                       int *has_more)
{
    us_page ask = page_ask(pg);
    *has_more = 0;
    us_db_rc rc = db->backend->session_files_list(db, p, session_id, status, &ask, rows, total);
    if (rc == US_DB_OK)
        page_finish(pg, *rows, *total, has_more);
    return rc;
}

/* ---- ingestion ------------------------------------------------------------ */

us_db_rc us_ingest_claim(us_db *db, apr_pool_t *p, const char *owner, apr_time_t now,
                         apr_time_t stale_before, us_session *out)
{
    return db->backend->ingest_claim(db, p, owner, now, stale_before, out);
}

us_db_rc us_store_overview_read(us_db *db, apr_pool_t *p, apr_time_t now,
                                us_store_overview *out)
{
    return db->backend->overview(db, p, now, out);
}

us_db_rc us_ingest_running(us_db *db, apr_pool_t *p, apr_array_header_t **claims)
{
    return db->backend->ingest_running(db, p, claims);
}

us_db_rc us_ingest_requeue(us_db *db, apr_pool_t *p, const char *session_id, const char *owner)
{
    return db->backend->ingest_requeue(db, p, session_id, owner);
}

us_db_rc us_ingest_heartbeat(us_db *db, apr_pool_t *p, const char *session_id,
                             const char *owner, apr_time_t now)
{
    return db->backend->ingest_heartbeat(db, p, session_id, owner, now);
}

us_db_rc us_ingest_done(us_db *db, apr_pool_t *p, const char *session_id, const char *owner)
{
    return db->backend->ingest_done(db, p, session_id, owner);
}

us_db_rc us_ingest_pending(us_db *db, apr_pool_t *p, const char *session_id, int limit,
                           apr_array_header_t **rows)
{
    return db->backend->ingest_pending(db, p, session_id, limit, rows);
}

us_db_rc us_ingest_apply(us_db *db, apr_pool_t *p, const us_session *s,
                         const apr_array_header_t *results, apr_time_t now,
                         apr_array_header_t **deleted)
{
    return db->backend->ingest_apply(db, p, s, results, now, deleted);
}

/* ---- workspace files ------------------------------------------------------ */

us_db_rc us_workspace_file_ids_by_name(us_db *db, apr_pool_t *p, const char *workspace,
                               const char *name, apr_array_header_t **ids)
{
    return db->backend->workspace_file_ids_by_name(db, p, workspace, name, ids);
}

us_db_rc us_workspace_file_get(us_db *db, apr_pool_t *p, const char *workspace, const char *file_id,
                       us_workspace_file *out)
{
    return db->backend->workspace_file_get(db, p, workspace, file_id, out);
}

us_db_rc us_workspace_file_list(us_db *db, apr_pool_t *p, const char *workspace,
                                const us_workspace_file_query *q, apr_array_header_t **rows,
                                long long *total)
{
    return db->backend->workspace_file_list(db, p, workspace, q, rows, total);
}

us_db_rc us_workspace_file_add(us_db *db, apr_pool_t *p, const char *workspace, const us_workspace_file *f,
                       const char *write_mode, apr_array_header_t **deleted)
{
    return db->backend->workspace_file_add(db, p, workspace, f, write_mode, deleted);
}

us_db_rc us_workspace_file_delete(us_db *db, apr_pool_t *p, const char *workspace,
                                  const char *file_id)
{
    return db->backend->workspace_file_delete(db, p, workspace, file_id);
}

us_db_rc us_workspace_files_delete(us_db *db, apr_pool_t *p, const char *workspace,
                                   const apr_array_header_t *names, apr_array_header_t **deleted)
{
    return db->backend->workspace_files_delete(db, p, workspace, names, deleted);
}

us_db_rc us_file_trash_list(us_db *db, apr_pool_t *p, int limit, apr_array_header_t **ids)
{
    return db->backend->file_trash_list(db, p, limit, ids);
}

us_db_rc us_file_trash_forget(us_db *db, apr_pool_t *p, const apr_array_header_t *ids)
{
    return db->backend->file_trash_forget(db, p, ids);
}

us_db_rc us_webhook_targets_set(us_db *db, apr_pool_t *p, const apr_array_header_t *urls)
{
    return db->backend->webhook_targets_set(db, p, urls);
}

us_db_rc us_webhook_claim(us_db *db, apr_pool_t *p, const char *owner, apr_time_t now,
                          apr_time_t lease_until, us_webhook_row *out)
{
    return db->backend->webhook_claim(db, p, owner, now, lease_until, out);
}

us_db_rc us_webhook_delivered(us_db *db, apr_pool_t *p, long long id, const char *owner, int page,
                              int pages)
{
    return db->backend->webhook_delivered(db, p, id, owner, page, pages);
}

us_db_rc us_webhook_retry(us_db *db, apr_pool_t *p, long long id, const char *owner,
                          apr_time_t now, apr_time_t next_at, const char *error, int give_up)
{
    return db->backend->webhook_retry(db, p, id, owner, now, next_at, error, give_up);
}

us_db_rc us_webhook_stats_read(us_db *db, apr_pool_t *p, us_webhook_stats *out)
{
    return db->backend->webhook_stats(db, p, out);
}

us_db_rc us_workspace_file_meta_swap(us_db *db, apr_pool_t *p, const char *workspace,
                                     const char *file_id, const char *old_meta, const char *meta)
{
    return db->backend->workspace_file_meta_swap(db, p, workspace, file_id, old_meta, meta);
}

/*
 * us_store_backend.h - what a store backend implements: one table of
 * functions, chosen by the driver name of UploadSessionStore. The front
 * (src/store/us_front.c) checks nothing and adds nothing: each us_* function
 * of us_store.h calls the entry of the same name here, so every contract
 * written there, atomicity included, is the backend's to keep. Only the
 * front and the backends include this header.
 */
#ifndef US_STORE_BACKEND_H
#define US_STORE_BACKEND_H

#include "us_store.h"

typedef struct us_store_backend us_store_backend;

/* The start of every backend's connection: the front finds the table here. */
struct us_db {
    const us_store_backend *backend;
};

struct us_store_backend {
    const char *name;         /* for logs: "sqlite" */
    const char *driver;       /* UploadSessionStore's driver name: "sqlite3" */
    int params_are_path;      /* its parameters are a file path */

    /* ---- configuration and lifecycle; conf is what configure made */
    us_db_rc (*configure)(apr_pool_t *p, const char *params, void **conf, const char **err);
    const char *(*home)(const void *conf, apr_pool_t *p);
    void (*set_lock_timeout)(void *conf, int ms);
    void (*set_logger)(void *conf, const us_logger *lg);
    us_db_rc (*migrate)(const void *conf, apr_pool_t *p, const char **err);
    us_db_rc (*prepare_files)(const void *conf, apr_pool_t *p, const char **err);
    void (*user_files)(const void *conf, apr_pool_t *p, apr_array_header_t *paths);
    us_db_rc (*open)(const void *conf, apr_pool_t *p, us_db **out, const char **err);
    void (*close)(us_db *db);
    us_db_rc (*maintain)(us_db *db, apr_pool_t *p);
    /* optional: fits the connection to long batches over large sessions
     * (us_db_for_batches) */
    us_db_rc (*for_batches)(us_db *db, apr_pool_t *p);
    const char *(*error)(us_db *db);
    /* optional: the connection asks to be closed instead of pooled again
     * (it holds resources that only closing gives back) */
    int (*worn_out)(us_db *db);
    void (*clear_error)(us_db *db);

    /* ---- sessions */
    us_db_rc (*session_insert)(us_db *db, apr_pool_t *p, const us_session *s, int max_open,
                               apr_time_t now);
    us_db_rc (*session_get)(us_db *db, apr_pool_t *p, const char *workspace, const char *id,
                            apr_time_t now, us_session *out);
    us_db_rc (*session_by_id)(us_db *db, apr_pool_t *p, const char *id, apr_time_t now,
                              us_session *out);
    us_db_rc (*session_close)(us_db *db, apr_pool_t *p, const char *workspace, const char *id,
                              apr_time_t now);
    us_db_rc (*session_abort)(us_db *db, apr_pool_t *p, const char *workspace, const char *id,
                              apr_time_t now);
    /* The lists: the front (us_front.c) asks one row more than the page
     * and trims it. With a cursor a backend returns the pg->limit rows
     * nearest the cursor, nearest first (for `before`: the reverse of the
     * list's order; the front turns them round). */
    us_db_rc (*session_list)(us_db *db, apr_pool_t *p, const char *workspace, int is_expired,
                             const us_page *pg, apr_time_t now,
                             apr_array_header_t **rows, long long *total);
    us_db_rc (*sessions_expire)(us_db *db, apr_pool_t *p, int *count);
    us_db_rc (*overview)(us_db *db, apr_pool_t *p, apr_time_t now, us_store_overview *out);

    /* ---- uploads of a session */
    us_db_rc (*upload_commit)(us_db *db, apr_pool_t *p, const us_upload_record *u, apr_time_t now,
                              const char **old_blob);
    us_db_rc (*upload_blob)(us_db *db, apr_pool_t *p, const char *session_id,
                            const char *name, const char **blob);
    us_db_rc (*session_files_list)(us_db *db, apr_pool_t *p, const char *session_id,
                           const char *status, const us_page *pg,
                           apr_array_header_t **rows, long long *total);

    /* ---- ingestion */
    us_db_rc (*ingest_claim)(us_db *db, apr_pool_t *p, const char *owner, apr_time_t now,
                             apr_time_t stale_before, us_session *out);
    us_db_rc (*ingest_running)(us_db *db, apr_pool_t *p, apr_array_header_t **claims);
    us_db_rc (*ingest_requeue)(us_db *db, apr_pool_t *p, const char *session_id,
                               const char *owner);
    us_db_rc (*ingest_heartbeat)(us_db *db, apr_pool_t *p, const char *session_id,
                                 const char *owner, apr_time_t now);
    us_db_rc (*ingest_done)(us_db *db, apr_pool_t *p, const char *session_id,
                            const char *owner);
    us_db_rc (*ingest_pending)(us_db *db, apr_pool_t *p, const char *session_id, int limit,
                               apr_array_header_t **rows);
    us_db_rc (*ingest_apply)(us_db *db, apr_pool_t *p, const us_session *s,
                             const apr_array_header_t *results, apr_time_t now,
                             apr_array_header_t **deleted);

    /* ---- workspace files */
    us_db_rc (*workspace_file_ids_by_name)(us_db *db, apr_pool_t *p, const char *workspace,
                                   const char *name, apr_array_header_t **ids);
    us_db_rc (*workspace_file_get)(us_db *db, apr_pool_t *p, const char *workspace,
                           const char *file_id, us_workspace_file *out);
    us_db_rc (*workspace_file_list)(us_db *db, apr_pool_t *p, const char *workspace,
                                    const us_workspace_file_query *q, apr_array_header_t **rows,
                                    long long *total);
    us_db_rc (*workspace_file_add)(us_db *db, apr_pool_t *p, const char *workspace,
                           const us_workspace_file *f, const char *write_mode,
                           apr_array_header_t **deleted);
    us_db_rc (*workspace_file_delete)(us_db *db, apr_pool_t *p, const char *workspace,
                                      const char *file_id);
    us_db_rc (*workspace_files_delete)(us_db *db, apr_pool_t *p, const char *workspace,
                                       const apr_array_header_t *names,
                                       apr_array_header_t **deleted);
    us_db_rc (*workspace_file_meta_swap)(us_db *db, apr_pool_t *p, const char *workspace,
                                         const char *file_id, const char *old_meta,
                                         const char *meta);
    us_db_rc (*file_trash_list)(us_db *db, apr_pool_t *p, int limit, apr_array_header_t **ids);
    us_db_rc (*file_trash_forget)(us_db *db, apr_pool_t *p, const apr_array_header_t *ids);

    /* ---- webhook outbox */
    us_db_rc (*webhook_targets_set)(us_db *db, apr_pool_t *p, const apr_array_header_t *urls);
    us_db_rc (*webhook_claim)(us_db *db, apr_pool_t *p, const char *owner, apr_time_t now,
                              apr_time_t lease_until, us_webhook_row *out);
    us_db_rc (*webhook_delivered)(us_db *db, apr_pool_t *p, long long id, const char *owner,
                                  int page, int pages);
    us_db_rc (*webhook_retry)(us_db *db, apr_pool_t *p, long long id, const char *owner,
                              apr_time_t now, apr_time_t next_at, const char *error,
                              int give_up);
    us_db_rc (*webhook_stats)(us_db *db, apr_pool_t *p, us_webhook_stats *out);

    /* ---- optional: the node registry (NULL: the store keeps none) */
    us_db_rc (*node_claim)(us_db *db, apr_pool_t *p, const us_node *me, const char *replaces,
                           apr_interval_time_t ttl, us_node *holder);
    us_db_rc (*node_heartbeat)(us_db *db, apr_pool_t *p, const char *name, const char *instance);
};

/* The backends of this build (src/store/<name>/). */
extern const us_store_backend us_sqlite_backend;
extern const us_store_backend us_pgsql_backend;

/* The backend serving this driver name, or NULL. */
const us_store_backend *us_store_backend_for(const char *driver);

#endif

/* us_files_sweep.c - the sweep of stored files no row refers to (us_files_sweep.h). */
#include "us_files_sweep.h"

#include <apr_tables.h>
#include <apr_time.h>

/* 1 when a row refers to file_id, 0 when none, -1 on a store error. */
static int referenced(us_db *db, apr_pool_t *p, const char *file_id)
{
    int ref = 1;
    return us_file_id_referenced(db, p, file_id, &ref) == US_DB_OK ? ref : -1;
}

/* Waits cfg->second_look in slices; 0 when asked to stop meanwhile. */
static int second_look_waited(const us_files_sweep_config *cfg)
{
    apr_time_t until = apr_time_now() + cfg->second_look;
    for (apr_time_t now = apr_time_now(); now < until; now = apr_time_now()) {
        if (cfg->stop && apr_atomic_read32(cfg->stop))
            return 0;
        apr_interval_time_t left = until - now;
        apr_sleep(left < apr_time_from_msec(100) ? left : apr_time_from_msec(100));
    }
    return !(cfg->stop && apr_atomic_read32(cfg->stop));
}

int us_files_sweep(us_db *db, apr_pool_t *p, const us_files_sweep_config *cfg)
{
    us_turn turn;
    apr_array_header_t *files, *orphans;
    const char *next = NULL, *failure = NULL;
    apr_time_t now = apr_time_now();
    int removed = 0;

    if (us_turn_take(db, p, US_FILES_SWEEP_TURN, now, cfg->grace, &turn) != US_DB_OK)
        return -1;
    apr_status_t rv = us_storage_files_page(cfg->storage, p, turn.place, cfg->page, &files, &next);
    if (rv != APR_SUCCESS) {
        if (rv != APR_ENOTIMPL)
            us_log(cfg->log, US_LOG_WARN, rv, 1024, "files sweep: listing the stored files "
                   "failed; retried at the next round");
        (void)us_turn_give(db, p, &turn, apr_time_now() + cfg->interval, turn.place);
        return -1;
    }
    orphans = apr_array_make(p, 4, sizeof(const char *));
    for (int i = 0; i < files->nelts && !failure; i++) {
        const us_storage_file *f = &APR_ARRAY_IDX(files, i, us_storage_file);
        if (f->modified <= 0 || now - f->modified < cfg->grace)
            continue; /* young, or of an unknown age */
        int ref = referenced(db, p, f->file_id);
        if (ref < 0)
            failure = us_db_error(db);
        else if (!ref)
            APR_ARRAY_PUSH(orphans, const char *) = f->file_id;
    }
    if (orphans->nelts && !failure && !second_look_waited(cfg)) {
        (void)us_turn_give(db, p, &turn, apr_time_now() + cfg->interval, turn.place);
        return -1; /* stopping: this page again at the next round */
    }
    for (int i = 0; i < orphans->nelts && !failure; i++) {
        const char *id = APR_ARRAY_IDX(orphans, i, const char *);
        int ref = referenced(db, p, id); /* a row made since the first look keeps it */
        if (ref < 0)
            failure = us_db_error(db);
        else if (!ref && us_storage_file_delete(cfg->storage, p, id) == APR_SUCCESS)
            removed++; /* a failure is logged by the storage (1204) */
    }
    if (failure) {
        us_log(cfg->log, US_LOG_WARN, 0, 1024, "files sweep: %s; retried at the next round",
               failure);
        next = turn.place; /* this page again */
    }
    (void)us_turn_give(db, p, &turn, apr_time_now() + cfg->interval, next ? next : "");
    if (removed)
        us_log(cfg->log, US_LOG_INFO, 0, 1023, "files sweep: removed %d stored file(s) no row "
               "refers to, of %d listed", removed, files->nelts);
    return failure ? -1 : removed;
}

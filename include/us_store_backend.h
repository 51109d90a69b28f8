/*
 * us_store_backend.h - what a store backend implements: one table of
 * functions, chosen by the driver name of UploadSessionStore. Only the
 * front, the shared operation bodies and the backends include this header.
 *
 * Two kinds of entries:
 * - generic ones every backend fills (statement, exec, select, write,
 *   write_one): run statement N of the shared list below in the backend's
 *   dialect. The bodies of most operations of us_store.h are written once
 *   on top of them, in src/store/us_*_ops.c; what they must be atomic
 *   against rests on write (SQLite: the one-writer queue with group
 *   commit; PostgreSQL: BEGIN ... COMMIT, retried on a deadlock or once on
 *   a lock timeout) and on the dialect's SQL text (row locks, FOR UPDATE,
 *   advisory locks).
 * - operation entries, for the operations whose body differs by dialect
 *   beyond its SQL text (PostgreSQL's advisory locks and SKIP LOCKED
 *   claims, SQLite's read-then-write claims outside the writer queue);
 *   each is listed below with the contract of its us_store.h function.
 */
#ifndef US_STORE_BACKEND_H
#define US_STORE_BACKEND_H

#include <apr_dbd.h>

#include "us_store.h"

typedef struct us_store_backend us_store_backend;

/* Every statement an operation body may run, shared by the dialects. A
 * dialect's SQL file maps each id to its text (us_stmt_def), or to none
 * (sql NULL) where its operation entries do without it; each backend
 * prepares the statements its dialect maps. The comments name the
 * dialect that alone maps an id. */
typedef enum {
    US_STMT_SESSION_INSERT = 0,
    US_STMT_SESSION_OPEN_COUNT,     /* sqlite: the open-session limit, before the insert */
    US_STMT_SESSIONS_CREATE,        /* pgsql: a batch of one user's creates in one statement */
    US_STMT_SESSION_GET,
    US_STMT_SESSIONS_GET,           /* pgsql: concurrent session reads in one statement */
    US_STMT_SESSION_CLOSE,
    US_STMT_SESSION_ABORT,
    US_STMT_UPLOADS_DISCARD,
    US_STMT_SESSION_LIST_ALL,
    US_STMT_SESSION_LIST_EXPIRED,
    US_STMT_SESSION_LIST_ACTIVE,
    US_STMT_SESSION_AFTER_ALL,      /* the same lists next to a cursor session */
    US_STMT_SESSION_AFTER_EXPIRED,
    US_STMT_SESSION_AFTER_ACTIVE,
    US_STMT_SESSION_BEFORE_ALL,
    US_STMT_SESSION_BEFORE_EXPIRED,
    US_STMT_SESSION_BEFORE_ACTIVE,
    US_STMT_SESSION_BY_ID,
    US_STMT_SESSION_HOLD_OPEN,      /* a row when the session is open, held until commit */
    US_STMT_UPLOAD_BLOB_GET,
    US_STMT_UPLOAD_INSERT,
    US_STMT_UPLOAD_REPLACE,
    US_STMT_SESSION_COUNT_UPLOAD,
    US_STMT_SESSION_UPLOADED,
    US_STMT_SESSION_COUNT_SIDECAR,
    US_STMT_SESSION_SIDECARS,
    US_STMT_FILES_LIST_ALL,
    US_STMT_FILES_LIST_STATUS,
    US_STMT_FILES_AFTER_ALL,        /* the same lists next to a cursor file */
    US_STMT_FILES_AFTER_STATUS,
    US_STMT_FILES_BEFORE_ALL,
    US_STMT_FILES_BEFORE_STATUS,
    /* expiry (monitor) */
    US_STMT_SWEEP_LOCK,             /* pgsql */
    US_STMT_SESSIONS_EXPIRE,
    /* status and metrics pages */
    US_STMT_OVERVIEW,
    /* ingestion */
    US_STMT_INGEST_CANDIDATE,
    US_STMT_TURN_LOCK,              /* pgsql */
    US_STMT_IN_TURN,                /* pgsql */
    US_STMT_INGEST_CLAIM,
    US_STMT_INGEST_CLAIMED,         /* sqlite */
    US_STMT_INGEST_RUNNING,
    US_STMT_INGEST_REQUEUE,
    US_STMT_INGEST_REQUEUE_LATER,   /* the claim's clock: the dialect's own */
    US_STMT_INGEST_HEARTBEAT,
    US_STMT_INGEST_DONE,
    US_STMT_INGEST_PENDING,
    US_STMT_INGEST_HELD,            /* a row while the owner holds the claim */
    US_STMT_NAME_LOCK,              /* pgsql */
    US_STMT_UPLOAD_SET_STATE,
    US_STMT_INGEST_APPLY_BATCH,     /* pgsql: a whole batch's per-file changes, its
                                     * columns as array literals (us_ingest_ops.c) */
    US_STMT_SESSION_ADD_COUNTS,
    US_STMT_UPLOAD_REFUSED,         /* a publish the storage refused, counted */
    US_STMT_UPLOAD_REFUSALS,
    US_STMT_LISTING_MARK,           /* direct uploads: one listing recorded */
    US_STMT_LISTED_INSERT,
    US_STMT_LISTED_COUNT,
    US_STMT_LATE_CLEAR_DUE,         /* direct uploads: prefixes due their last clear */
    US_STMT_LATE_CLEAR_MARK,
    US_STMT_LATE_CLEAR_MARK_ALL,    /* pgsql: LATE_CLEAR_MARK of an array of ids */
    US_STMT_WORKSPACE_FILE_INSERT,
    US_STMT_WORKSPACE_FILE_IDS_BY_NAME,
    US_STMT_WORKSPACE_FILE_DELETE,
    /* workspace files API */
    US_STMT_WORKSPACE_FILE_GET,
    US_STMT_WORKSPACE_FILE_LIST,
    US_STMT_WORKSPACE_FILE_LIST_AFTER,
    US_STMT_WORKSPACE_FILE_COUNT,
    US_STMT_WORKSPACE_FILE_DELETE_IN_WS, /* sqlite */
    US_STMT_WORKSPACE_FILE_IDS_ALL,      /* sqlite */
    US_STMT_FILE_TRASH_ADD,
    US_STMT_WORKSPACE_FILE_DELETE_ONE,   /* pgsql */
    US_STMT_WORKSPACE_FILES_DELETE_NAME, /* pgsql */
    US_STMT_WORKSPACE_FILES_DELETE_ALL,  /* pgsql */
    US_STMT_WORKSPACE_FILE_META_SWAP,
    US_STMT_FILE_TRASH_LIST,
    US_STMT_FILE_TRASH_FORGET,
    /* the sweep of stored files no row refers to */
    US_STMT_FILE_ID_REFERENCED,
    US_STMT_SWEEP_TURN_GET,
    US_STMT_SWEEP_TURN_ADD,
    US_STMT_SWEEP_TURN_SET,
    /* webhook outbox */
    US_STMT_WEBHOOK_TARGETS_LIST,
    US_STMT_WEBHOOK_URL_DROP_LOCK,  /* a dropped URL's events in flight waited for */
    US_STMT_WEBHOOK_URL_ROWS_LOCK,  /* a dropped URL's rows locked before its row */
    US_STMT_WEBHOOK_TARGET_DROP,
    US_STMT_WEBHOOK_TARGET_ADD,
    US_STMT_WEBHOOK_DROP_UNLISTED,
    US_STMT_WEBHOOK_UNLISTED_PENDING, /* what the drop takes: undelivered rows by URL */
    US_STMT_WEBHOOK_CLAIM,          /* a lease taken and its row returned, in one statement */
    US_STMT_WEBHOOK_CANDIDATE,      /* ... or: a due row's id by a read, */
    US_STMT_WEBHOOK_LEASE,          /* its lease in a write that checks it again, */
    US_STMT_WEBHOOK_PROBE,          /* a suspect URL paused for the lease, */
    US_STMT_WEBHOOK_GET,            /* its row */
    US_STMT_WEBHOOK_LEASED,         /* a settle: the row's URL and lease, by its owner */
    US_STMT_WEBHOOK_URL_FAILED,     /* the URL's circuit breaker: a failure, */
    US_STMT_WEBHOOK_URL_CLEAR,      /* a delivery, */
    US_STMT_WEBHOOK_URL_UNPAUSE,    /* a probe that was not the receiver's failure, */
    US_STMT_WEBHOOK_URL_STALE,      /* its rows past the retry time failed, */
    US_STMT_WEBHOOK_URL_STATE,      /* its failures and pause as a failure left them */
    US_STMT_WEBHOOK_NEXT_PAGE,
    US_STMT_WEBHOOK_DONE,
    US_STMT_WEBHOOK_RETRY,
    US_STMT_WEBHOOK_RELEASE,
    US_STMT_WEBHOOK_STATS,
    US_STMT_WEBHOOK_PAUSED,         /* the URLs paused now, for the status pages */
    US_STMT_WEBHOOK_FORGET_FAILED,  /* a batch of failed rows, the oldest first */
    /* workspaces */
    US_STMT_WORKSPACE_CREATE,
    US_STMT_WORKSPACE_ENSURE,
    US_STMT_WORKSPACE_GET,
    US_STMT_WORKSPACE_LIST,
    US_STMT_WORKSPACE_LOCK_SHARED,  /* pgsql: writers adding data to a workspace */
    /* us_workspace_delete (an operation entry: the dialects' steps differ) */
    US_STMT_WORKSPACE_LOCK,         /* pgsql */
    US_STMT_WORKSPACE_DELETE_ROW,
    US_STMT_WORKSPACE_TRASH_FILES,  /* sqlite */
    US_STMT_WORKSPACE_FILES_DROP,
    US_STMT_WORKSPACE_TRASH_PENDING,
    US_STMT_WORKSPACE_UPLOADS_DROP,
    US_STMT_WORKSPACE_OUTBOX_DROP,
    US_STMT_WORKSPACE_SESSIONS_ABORT,
    US_STMT_SESSION_IS_ABORTED,
    /* node registry: a dialect without these keeps none */
    US_STMT_NODE_CLAIM,
    US_STMT_NODE_HOLDER,
    US_STMT_NODE_HEARTBEAT,
    US_STMT__COUNT
} us_stmt_id;

typedef struct {
    const char *label;  /* for errors (and PostgreSQL's prepared statement name) */
    const char *sql;    /* NULL: not in this dialect */
} us_stmt_def;

/* One row of a result, as a backend's select hands it to a row reader
 * (src/store/us_rows.c reads its columns). */
typedef struct {
    const apr_dbd_driver_t *drv;
    apr_dbd_row_t *row;
} us_row;

/* Reads one row into out. */
typedef void (*us_row_fn)(const us_row *row, apr_pool_t *p, void *out);

/* A transaction's body: US_DB_OK commits; anything else rolls back
 * (logical answers included: they change nothing). May run again after a
 * deadlock or a lock timeout, or on another connection of the same database (SQLite's group
 * commit): reset outputs at its start and use the db it is given. */
typedef us_db_rc (*us_txn_fn)(us_db *db, apr_pool_t *p, void *arg);

/* The start of every backend's connection: the front finds the table here. */
struct us_db {
    const us_store_backend *backend;
    apr_pool_t *home;         /* the pool us_db_open_apart opened it in, destroyed by
                                 us_db_close; NULL otherwise; backends leave it alone */
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
    /* optional: readies, on one of its connections, what the process's
     * writes will use (us_store_warm) */
    void (*warm)(us_db *db);
    const char *(*error)(us_db *db);
    /* optional: the connection asks to be closed instead of pooled again
     * (it holds resources that only closing gives back) */
    int (*worn_out)(us_db *db);
    /* optional: the last write failed where it may have been committed all
     * the same (us_db_outcome_unknown) */
    int (*outcome_unknown)(us_db *db);
    void (*clear_error)(us_db *db);
    /* what error() says next (copied) */
    void (*set_error)(us_db *db, const char *err);

    /* ---- generic: statements of the shared list in this dialect */
    const us_stmt_def *(*statement)(us_stmt_id id);
    /* runs a statement that returns no rows; *nrows: the rows it changed */
    us_db_rc (*exec)(us_db *db, apr_pool_t *p, us_stmt_id id, const void **args, int *nrows);
    /* runs a select, handing each row to fn with out (fn may be NULL);
     * *nrows (may be NULL): how many rows. A row that fails to fetch is an
     * error, never the end of the rows. */
    us_db_rc (*select)(us_db *db, apr_pool_t *p, us_stmt_id id, const void **args, us_row_fn fn,
                       void *out, int *nrows);
    /* runs fn in a write transaction (the statements above inside it) and
     * returns once it is committed, with the dialect's own retry rules */
    us_db_rc (*write)(us_db *db, apr_pool_t *p, us_txn_fn fn, void *arg);
    /* one statement as a write of its own: as write with an exec */
    us_db_rc (*write_one)(us_db *db, apr_pool_t *p, us_stmt_id id, const void **args,
                          int *nrows);

    /* ---- operation entries: sessions (PostgreSQL: the user's counter row
     * locked and taken in turn, concurrent creates of a process in one
     * transaction; the sweep one node at a time) */
    us_db_rc (*session_insert)(us_db *db, apr_pool_t *p, us_session *s, int max_open,
                               apr_time_t now);
    us_db_rc (*sessions_expire)(us_db *db, apr_pool_t *p, int *count);

    /* ---- ingestion: the claim (PostgreSQL: the workspace's turn under an
     * advisory lock, SKIP LOCKED; SQLite: the candidate read outside the
     * writer) and the heartbeat (PostgreSQL: the database's clock) */
    us_db_rc (*ingest_claim)(us_db *db, apr_pool_t *p, const char *owner, apr_time_t now,
                             apr_time_t stale_before, us_session *out);
    us_db_rc (*ingest_heartbeat)(us_db *db, apr_pool_t *p, const char *session_id,
                                 const char *owner, apr_time_t now);

    /* ---- workspace files: a list the fixed statements do not cover (a
     * filter, another order, an offset), its rows appended to rows; the
     * deletes (PostgreSQL: one statement each, trashing the ids it deletes) */
    us_db_rc (*workspace_file_list_built)(us_db *db, apr_pool_t *p, const char *workspace,
                                          const us_workspace_file_query *q,
                                          apr_array_header_t *rows, long long *total);
    us_db_rc (*workspace_file_delete)(us_db *db, apr_pool_t *p, const char *workspace,
                                      const char *file_id);
    us_db_rc (*workspace_files_delete)(us_db *db, apr_pool_t *p, const char *workspace,
                                       const apr_array_header_t *names,
                                       apr_array_header_t **deleted);

    /* ---- workspaces: the delete (PostgreSQL: the exclusive workspace lock,
     * then the sessions' rows first; SQLite: under the one writer) */
    us_db_rc (*workspace_delete)(us_db *db, apr_pool_t *p, const char *name, apr_time_t now,
                                 apr_array_header_t **file_ids);
};

/* The backends of this build (src/store/<name>/). */
extern const us_store_backend us_sqlite_backend;
extern const us_store_backend us_pgsql_backend;

/* The backend serving this driver name, or NULL. */
const us_store_backend *us_store_backend_for(const char *driver);

#endif

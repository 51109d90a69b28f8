/*
 * us_sql.h - every SQL statement the SQLite backend runs, in one place
 * (pure text). Placeholders use apr_dbd's typed %-syntax (%s, %d, %lld);
 * a literal % would have to be written %%.
 */
#ifndef US_SQL_H
#define US_SQL_H

/* The schema version this build writes and understands. */
#define US_SCHEMA_VERSION 7

/* Statements run on every new connection (pragmas); NULL-terminated. */
const char *const *us_sql_connection_setup(void);

/* Statements that bring a schema at version `from` to version from+1;
 * NULL-terminated; NULL when from >= US_SCHEMA_VERSION. */
const char *const *us_sql_migration(int from);

/* Opens a transaction that holds the write lock from its first statement
 * (SQLite: BEGIN IMMEDIATE, so it waits on busy_timeout instead of failing
 * when it later upgrades from reading to writing). */
const char *us_sql_begin_write(void);

/* Migration helpers */
extern const char US_SQL_META_TABLE[];
extern const char US_SQL_SCHEMA_VERSION_GET[];
extern const char US_SQL_SCHEMA_VERSION_SET[]; /* %d */
extern const char US_SQL_CACHE_SIZE[];         /* %d: KiB */

/* Prepared statements, by label. */
typedef enum {
    US_STMT_SESSION_INSERT = 0,
    US_STMT_SESSION_GET,
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
    US_STMT_SESSION_COUNT_ALL,
    US_STMT_SESSION_COUNT_EXPIRED,
    US_STMT_SESSION_COUNT_ACTIVE,
    US_STMT_SESSION_BY_ID,
    US_STMT_SESSION_IS_OPEN,
    US_STMT_UPLOAD_BLOB_GET,
    US_STMT_UPLOAD_INSERT,
    US_STMT_UPLOAD_REPLACE,
    US_STMT_SESSION_COUNT_UPLOAD,
    US_STMT_SESSION_UPLOADED,
    US_STMT_FILES_LIST_ALL,
    US_STMT_FILES_LIST_STATUS,
    US_STMT_FILES_AFTER_ALL,        /* the same lists next to a cursor file */
    US_STMT_FILES_AFTER_STATUS,
    US_STMT_FILES_BEFORE_ALL,
    US_STMT_FILES_BEFORE_STATUS,
    US_STMT_FILES_COUNT_ALL,
    US_STMT_FILES_COUNT_STATUS,
    /* expiry (monitor) */
    US_STMT_SESSIONS_EXPIRE,
    /* status and metrics pages */
    US_STMT_OVERVIEW,
    /* ingestion */
    US_STMT_INGEST_CANDIDATE,
    US_STMT_INGEST_CLAIM,
    US_STMT_INGEST_CLAIMED,
    US_STMT_INGEST_RUNNING,
    US_STMT_INGEST_REQUEUE,
    US_STMT_INGEST_HEARTBEAT,
    US_STMT_INGEST_DONE,
    US_STMT_INGEST_PENDING,
    US_STMT_INGEST_HELD,
    US_STMT_UPLOAD_SET_STATE,
    US_STMT_SESSION_ADD_COUNTS,
    US_STMT_WORKSPACE_FILE_INSERT,
    US_STMT_WORKSPACE_FILE_IDS_BY_NAME,
    US_STMT_WORKSPACE_FILE_DELETE,
    /* workspace files API */
    US_STMT_WORKSPACE_FILE_GET,
    US_STMT_WORKSPACE_FILE_LIST,
    US_STMT_WORKSPACE_FILE_LIST_AFTER,
    US_STMT_WORKSPACE_FILE_COUNT,
    US_STMT_WORKSPACE_FILE_DELETE_IN_WS,
    US_STMT_WORKSPACE_FILE_IDS_ALL,
    US_STMT_FILE_TRASH_ADD,
    US_STMT_WORKSPACE_FILE_META_SWAP,
    US_STMT_FILE_TRASH_LIST,
    US_STMT_FILE_TRASH_FORGET,
    US_STMT_WEBHOOK_TARGETS_CLEAR,
    US_STMT_WEBHOOK_TARGET_ADD,
    US_STMT_WEBHOOK_DROP_UNLISTED,
    US_STMT_WEBHOOK_CANDIDATE,
    US_STMT_WEBHOOK_LEASE,
    US_STMT_WEBHOOK_GET,
    US_STMT_WEBHOOK_NEXT_PAGE,
    US_STMT_WEBHOOK_DONE,
    US_STMT_WEBHOOK_RETRY,
    US_STMT_WEBHOOK_STATS,
    US_STMT__COUNT
} us_stmt_id;

typedef struct {
    const char *label;
    const char *sql;
} us_stmt_def;

const us_stmt_def *us_sql_statement(us_stmt_id id);
/* The columns of a workspace file row, in the order row readers expect. */
const char *us_sql_workspace_file_cols(void);

#endif

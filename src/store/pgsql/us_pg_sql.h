/*
 * us_pg_sql.h - every SQL statement the PostgreSQL backend runs (pure
 * text, PostgreSQL's dialect). Placeholders use apr_dbd's typed %-syntax
 * (%s, %d, %lld), which the pgsql driver turns into $n without regard to
 * string literals: a literal % must be written %%.
 */
#ifndef US_PG_SQL_H
#define US_PG_SQL_H

/* The schema version this build writes and understands. */
#define US_PG_SCHEMA_VERSION 8

/* Advisory lock keys (two int4 keys: class, object). */
#define US_PG_LOCK_MIGRATE "1, 0"
#define US_PG_LOCK_SWEEP "2, 0"
#define US_PG_LOCK_TURN_CLASS "3" /* object: hashtext(workspace) */

/* Statements that bring a schema at version `from` to version from+1;
 * NULL-terminated; NULL when from >= US_PG_SCHEMA_VERSION. */
const char *const *us_pg_sql_migration(int from);

extern const char US_PG_SQL_MIGRATE_LOCK[];
extern const char US_PG_SQL_META_TABLE[];
extern const char US_PG_SQL_SCHEMA_VERSION_GET[];
extern const char US_PG_SQL_SCHEMA_VERSION_SET[]; /* %d */

typedef enum {
    US_PG_SESSION_INSERT = 0,
    US_PG_USER_OPEN_LOCK,
    US_PG_USER_OPEN_TAKE,
    US_PG_SESSION_GET,
    US_PG_SESSION_CLOSE,
    US_PG_SESSION_LIST_ALL,
    US_PG_SESSION_LIST_EXPIRED,
    US_PG_SESSION_LIST_ACTIVE,
    US_PG_SESSION_AFTER_ALL,        /* the same lists next to a cursor session */
    US_PG_SESSION_AFTER_EXPIRED,
    US_PG_SESSION_AFTER_ACTIVE,
    US_PG_SESSION_BEFORE_ALL,
    US_PG_SESSION_BEFORE_EXPIRED,
    US_PG_SESSION_BEFORE_ACTIVE,
    US_PG_SESSION_COUNT_ALL,
    US_PG_SESSION_COUNT_EXPIRED,
    US_PG_SESSION_COUNT_ACTIVE,
    US_PG_SESSION_BY_ID,
    US_PG_SESSION_LOCK_OPEN,
    US_PG_UPLOAD_BLOB_GET,
    US_PG_UPLOAD_INSERT,
    US_PG_UPLOAD_REPLACE,
    US_PG_SESSION_COUNT_UPLOAD,
    US_PG_FILES_LIST_ALL,
    US_PG_FILES_LIST_STATUS,
    US_PG_FILES_AFTER_ALL,          /* the same lists next to a cursor file */
    US_PG_FILES_AFTER_STATUS,
    US_PG_FILES_BEFORE_ALL,
    US_PG_FILES_BEFORE_STATUS,
    US_PG_FILES_COUNT_ALL,
    US_PG_FILES_COUNT_STATUS,
    US_PG_SWEEP_LOCK,
    US_PG_SESSIONS_EXPIRE,
    US_PG_OVERVIEW,
    US_PG_INGEST_CANDIDATE,
    US_PG_TURN_LOCK,
    US_PG_IN_TURN,
    US_PG_INGEST_CLAIM,
    US_PG_INGEST_RUNNING,
    US_PG_INGEST_REQUEUE,
    US_PG_INGEST_HEARTBEAT,
    US_PG_INGEST_DONE,
    US_PG_INGEST_PENDING,
    US_PG_CLAIM_HELD,
    US_PG_NAME_LOCK,
    US_PG_UPLOAD_SET_STATE,
    US_PG_SESSION_ADD_COUNTS,
    US_PG_LISTING_MARK,             /* direct uploads: one listing recorded */
    US_PG_LISTED_INSERT,
    US_PG_LISTED_COUNT,
    US_PG_WORKSPACE_FILE_INSERT,
    US_PG_WORKSPACE_FILE_IDS_BY_NAME,
    US_PG_WORKSPACE_FILE_DELETE,
    US_PG_WORKSPACE_FILE_GET,
    US_PG_WORKSPACE_FILE_LIST,
    US_PG_WORKSPACE_FILE_LIST_AFTER,
    US_PG_WORKSPACE_FILE_COUNT,
    US_PG_SESSION_ABORT,
    US_PG_UPLOADS_DISCARD,
    US_PG_SESSION_UPLOADED,
    US_PG_WORKSPACE_FILE_DELETE_ONE,
    US_PG_WORKSPACE_FILES_DELETE_NAME,
    US_PG_WORKSPACE_FILES_DELETE_ALL,
    US_PG_FILE_TRASH_LIST,
    US_PG_FILE_TRASH_FORGET,
    US_PG_WORKSPACE_FILE_META_SWAP,
    US_PG_WEBHOOK_TARGETS_CLEAR,
    US_PG_WEBHOOK_TARGET_ADD,
    US_PG_WEBHOOK_DROP_UNLISTED,
    US_PG_WEBHOOK_CLAIM,
    US_PG_WEBHOOK_NEXT_PAGE,
    US_PG_WEBHOOK_DONE,
    US_PG_WEBHOOK_RETRY,
    US_PG_WEBHOOK_STATS,
    US_PG_WORKSPACE_CREATE,
    US_PG_WORKSPACE_ENSURE,
    US_PG_WORKSPACE_GET,
    US_PG_WORKSPACE_LIST,
    US_PG_NODE_CLAIM,
    US_PG_NODE_HOLDER,
    US_PG_NODE_HEARTBEAT,
    US_PG__COUNT
} us_pg_stmt_id;

typedef struct {
    const char *label;
    const char *sql;
} us_pg_stmt_def;

const us_pg_stmt_def *us_pg_sql_statement(us_pg_stmt_id id);

/* The columns of a workspace file row, for statements built per request. */
const char *us_pg_sql_workspace_file_cols(void);

#endif

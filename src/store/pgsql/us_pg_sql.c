/*
 * us_pg_sql.c - the PostgreSQL backend's SQL text (pure).
 *
 * Timestamps are integers, microseconds since the epoch, as in the SQLite
 * backend. Every statement runs under READ COMMITTED: where a decision
 * depends on rows other connections may change at the same moment, the
 * statement locks the row it decides on (UPDATE ... WHERE, FOR NO KEY
 * UPDATE, SKIP LOCKED) or an advisory lock serialises the deciders, and
 * the check runs in a statement after the lock is held (each statement
 * of a READ COMMITTED transaction sees what committed before it began).
 */
#include "us_pg_sql.h"
#include "us_pg_filter.h"

#include <stddef.h>

const char US_PG_SQL_MIGRATE_LOCK[] = "SELECT pg_advisory_xact_lock(" US_PG_LOCK_MIGRATE ")";
const char US_PG_SQL_META_TABLE[] =
    "CREATE TABLE IF NOT EXISTS us_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)";
const char US_PG_SQL_SCHEMA_VERSION_GET[] =
    "SELECT value FROM us_meta WHERE name = 'schema_version'";
const char US_PG_SQL_SCHEMA_VERSION_SET[] =
    "INSERT INTO us_meta (name, value) VALUES ('schema_version', %d) "
    "ON CONFLICT (name) DO UPDATE SET value = excluded.value";

static const char *const MIGRATION_0_TO_1[] = {
    "CREATE TABLE us_sessions ("
    " id TEXT PRIMARY KEY,"
    " workspace TEXT NOT NULL,"
    " user_id TEXT NOT NULL,"
    " given_name TEXT NOT NULL,"
    " family_name TEXT NOT NULL,"
    " write_mode TEXT NOT NULL,"
    " parallel INTEGER NOT NULL,"
    " status TEXT NOT NULL,"                      /* OPEN | CLOSED | EXPIRED */
    " created_at BIGINT NOT NULL,"
    " expires_at BIGINT NOT NULL,"
    " closed_at BIGINT,"
    " ingest_state TEXT NOT NULL DEFAULT 'none'," /* none|queued|running|done */
    " ingest_owner TEXT,"
    " ingest_heartbeat BIGINT NOT NULL DEFAULT 0,"
    " uploaded_files BIGINT NOT NULL DEFAULT 0,"
    " finished_files BIGINT NOT NULL DEFAULT 0,"
    " failed_files BIGINT NOT NULL DEFAULT 0)",
    "CREATE INDEX us_sessions_ws_created ON us_sessions (workspace, created_at DESC, id DESC)",
    "CREATE INDEX us_sessions_expiry ON us_sessions (status, expires_at)",
    "CREATE INDEX us_sessions_user_expiry ON us_sessions (user_id, expires_at)"
    " WHERE status = 'OPEN'",
    "CREATE INDEX us_sessions_ingest ON us_sessions (ingest_state, closed_at)"
    " WHERE closed_at IS NOT NULL",
    "CREATE INDEX us_sessions_turn ON us_sessions (workspace, parallel, ingest_state, closed_at)"
    " WHERE closed_at IS NOT NULL",
    /* each user's OPEN sessions, expired-but-unswept ones included; every
     * statement that opens or ends a session updates it in its transaction,
     * and a create takes its row lock before counting (the limit) */
    "CREATE TABLE us_user_open (user_id TEXT PRIMARY KEY, n BIGINT NOT NULL)",
    "CREATE TABLE us_uploads ("
    " session_id TEXT NOT NULL REFERENCES us_sessions (id),"
    " name TEXT NOT NULL,"
    " blob TEXT NOT NULL,"
    " size BIGINT NOT NULL,"
    " sha256 TEXT NOT NULL,"
    " is_meta INTEGER NOT NULL,"
    " uploaded_at BIGINT NOT NULL,"
    " file_ingestion_id TEXT NOT NULL,"
    " ingestion_status TEXT NOT NULL DEFAULT 'PENDING',"
    " ingestion_reason TEXT,"
    " PRIMARY KEY (session_id, name))",
    "CREATE INDEX us_uploads_files ON us_uploads (session_id, is_meta, ingestion_status, uploaded_at)",
    "CREATE INDEX us_uploads_pending ON us_uploads (session_id, is_meta, ingestion_status, name)",
    "CREATE TABLE us_files ("
    " file_id TEXT PRIMARY KEY,"
    " workspace TEXT NOT NULL,"
    " name TEXT NOT NULL,"
    " size BIGINT NOT NULL,"
    " meta TEXT,"
    " created_at BIGINT NOT NULL,"
    " session_id TEXT)",
    "CREATE INDEX us_files_ws_created ON us_files (workspace, created_at DESC, file_id DESC)",
    "CREATE INDEX us_files_ws_name ON us_files (workspace, name)",
    NULL
};

/* Filters on metadata date-times (us_pg_filter.c). */
static const char *const MIGRATION_1_TO_2[] = {
    US_PG_SQL_INSTANT_FUNCTION,
    NULL
};

/* A text file's length in characters (NULL: none); the ids of deleted
 * files whose bytes may be left, until their removal is done. */
static const char *const MIGRATION_2_TO_3[] = {
    "ALTER TABLE us_files ADD COLUMN characters BIGINT",
    "CREATE TABLE us_file_trash (file_id TEXT PRIMARY KEY)",
    NULL
};

/* Webhook events: the URLs (us_webhook_targets, set at startup) and an
 * outbox row per (event, URL), inserted by a trigger in the transaction
 * that changes the session, whichever statement changes it (its WHEN
 * keeps it off every other update); an event's rows share its time (the
 * transaction's). A row is leased to one deliverer at a
 * time (lease_owner, lease_until), delivered page by page and deleted
 * after its last page, or kept as failed. */
static const char *const MIGRATION_3_TO_4[] = {
    "CREATE TABLE us_webhook_targets (url TEXT PRIMARY KEY)",
    "CREATE TABLE us_webhook_outbox ("
    " id BIGSERIAL PRIMARY KEY,"
    " event TEXT NOT NULL,"                     /* session.ingested | session.expired */
    " session_id TEXT NOT NULL,"
    " workspace TEXT NOT NULL,"
    " url TEXT NOT NULL,"
    " occurred_at BIGINT NOT NULL,"
    " uploaded_files BIGINT NOT NULL,"
    " finished_files BIGINT NOT NULL,"
    " failed_files BIGINT NOT NULL,"
    " page INTEGER NOT NULL DEFAULT 1,"         /* the next page to deliver */
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " next_at BIGINT NOT NULL DEFAULT 0,"
    " state TEXT NOT NULL DEFAULT 'pending',"   /* pending | failed */
    " last_error TEXT,"
    " last_attempt_at BIGINT,"
    " lease_owner TEXT,"
    " lease_until BIGINT NOT NULL DEFAULT 0,"
    " UNIQUE (event, session_id, url))",
    "CREATE INDEX us_webhook_due ON us_webhook_outbox (state, next_at)",
    "CREATE OR REPLACE FUNCTION us_webhook_event() RETURNS trigger LANGUAGE plpgsql AS $$"
    " BEGIN"
    "  IF OLD.status = 'OPEN' AND NEW.status = 'EXPIRED' THEN"
    "   INSERT INTO us_webhook_outbox (event, session_id, workspace, url, occurred_at,"
    "    uploaded_files, finished_files, failed_files)"
    "   SELECT 'session.expired', NEW.id, NEW.workspace, url, NEW.expires_at,"
    "    NEW.uploaded_files, NEW.finished_files, NEW.failed_files FROM us_webhook_targets"
    "   ON CONFLICT DO NOTHING;"
    "  END IF;"
    "  IF OLD.ingest_state <> 'done' AND NEW.ingest_state = 'done'"
    "     AND NEW.status <> 'ABORTED' THEN"
    "   INSERT INTO us_webhook_outbox (event, session_id, workspace, url, occurred_at,"
    "    uploaded_files, finished_files, failed_files)"
    "   SELECT 'session.ingested', NEW.id, NEW.workspace, url,"
    "    floor(extract(epoch FROM transaction_timestamp()) * 1000000)::bigint,"
    "    NEW.uploaded_files, NEW.finished_files, NEW.failed_files FROM us_webhook_targets"
    "   ON CONFLICT DO NOTHING;"
    "  END IF;"
    "  RETURN NULL;"
    " END $$",
    "CREATE TRIGGER us_webhook_event AFTER UPDATE ON us_sessions FOR EACH ROW"
    " WHEN ((OLD.status = 'OPEN' AND NEW.status = 'EXPIRED')"
    " OR (OLD.ingest_state <> 'done' AND NEW.ingest_state = 'done'))"
    " EXECUTE FUNCTION us_webhook_event()",
    NULL
};

/* The node registry: one row per UploadSessionNodeName, its heartbeat on
 * the database's clock (microseconds since the epoch). */
static const char *const MIGRATION_4_TO_5[] = {
    "CREATE TABLE us_nodes (name TEXT PRIMARY KEY, instance TEXT NOT NULL,"
    " host TEXT NOT NULL, pid BIGINT NOT NULL, heartbeat BIGINT NOT NULL)",
    NULL
};

/* Workspaces: a row per workspace that exists, created by the API
 * (created = 1) or by its first data (created = 0); the names that hold
 * data already get theirs here. */
static const char *const MIGRATION_5_TO_6[] = {
    "CREATE TABLE us_workspaces ("
    " name TEXT PRIMARY KEY,"
    " workspace_id TEXT NOT NULL UNIQUE,"
    " created_at BIGINT NOT NULL,"
    " created INTEGER NOT NULL)",
    "INSERT INTO us_workspaces (name, workspace_id, created_at, created)"
    " SELECT workspace, gen_random_uuid()::text, MIN(created_at), 0 FROM ("
    "SELECT workspace, created_at FROM us_sessions WHERE status <> 'ABORTED'"
    " UNION ALL SELECT workspace, created_at FROM us_files) d GROUP BY workspace",
    NULL
};

/* Schema version 7 is another branch's (filter14); it is empty here. */
static const char *const MIGRATION_6_TO_7[] = { NULL };

/* Direct uploads into the bucket: a session's `direct` (US_DIRECT_* of
 * us_store.h) and the ETag its listing recorded per upload. */
static const char *const MIGRATION_7_TO_8[] = {
    "ALTER TABLE us_sessions ADD COLUMN direct INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE us_uploads ADD COLUMN etag TEXT",
    NULL
};

const char *const *us_pg_sql_migration(int from)
{
    switch (from) {
    case 0: return MIGRATION_0_TO_1;
    case 1: return MIGRATION_1_TO_2;
    case 2: return MIGRATION_2_TO_3;
    case 3: return MIGRATION_3_TO_4;
    case 4: return MIGRATION_4_TO_5;
    case 5: return MIGRATION_5_TO_6;
    case 6: return MIGRATION_6_TO_7;
    case 7: return MIGRATION_7_TO_8;
    default: return NULL;
    }
}

#define SESSION_COLS                                                          \
    "id, workspace, user_id, given_name, family_name, write_mode, parallel, " \
    "CASE WHEN status = 'OPEN' AND expires_at <= %lld THEN 'EXPIRED' "        \
    "ELSE status END, created_at, expires_at, uploaded_files, "               \
    "finished_files, failed_files, direct"

#define WEBHOOK_COLS                                                              \
    "id, event, session_id, workspace, url, occurred_at, uploaded_files, finished_files," \
    " failed_files, page, attempts"
#define WEBHOOK_DUE "state = 'pending' AND next_at <= %lld AND lease_until <= %lld"

/* The database's clock in microseconds since the epoch: leases and the
 * expiry sweep are written and judged by it alone, so nodes' clocks may
 * disagree. */
#define DB_NOW_US "floor(extract(epoch FROM clock_timestamp()) * 1000000)::bigint"

/* %lld: the lease in microseconds */
#define CLAIMABLE(s)                                                              \
    "(" s ".closed_at IS NOT NULL AND " s ".ingest_state IN ('queued', 'running')" \
    " AND (" s ".ingest_state = 'queued' OR " s ".ingest_heartbeat < " DB_NOW_US " - %lld))"
#define IN_TURN(s)                                                                \
    "(" s ".parallel = 1 OR (NOT EXISTS (SELECT 1 FROM us_sessions e"             \
    " WHERE e.workspace = " s ".workspace AND e.parallel = 0"                     \
    " AND e.ingest_state = 'running' AND e.closed_at IS NOT NULL"                 \
    " AND e.id <> " s ".id)"                                                      \
    " AND NOT EXISTS (SELECT 1 FROM us_sessions q"                                \
    " WHERE q.workspace = " s ".workspace AND q.parallel = 0"                     \
    " AND q.ingest_state = 'queued' AND q.closed_at IS NOT NULL"                  \
    " AND (q.closed_at < " s ".closed_at"                                         \
    " OR (q.closed_at = " s ".closed_at AND q.id < " s ".id)))))"

/* The session row is locked by the close, so uploads counted before it are
 * final here. A direct-upload session's files are known only once the
 * ingest worker lists the bucket. */
#define INGEST_AFTER_CLOSE \
    "(CASE WHEN uploaded_files = 0 AND direct = 0 THEN 'done' ELSE 'queued' END)"

#define WORKSPACE_FILE_COLS "file_id, name, size, meta, created_at, characters"
/* an aborted session is gone for every reader */
#define VISIBLE "status <> 'ABORTED'"
#define IS_EXPIRED "(status = 'EXPIRED' OR (status = 'OPEN' AND expires_at <= %lld))"
#define NOT_EXPIRED "(status = 'CLOSED' OR (status = 'OPEN' AND expires_at > %lld))"
#define LIST_TAIL " ORDER BY created_at DESC, id DESC LIMIT %lld OFFSET %lld"
/* next to a cursor: its (created_at, id), NULL (so no row) when it is not
 * a visible session of the workspace; `before` reads the list backwards */
#define SESSION_CURSOR(cmp)                                                           \
    " AND (created_at, id) " cmp " (SELECT c.created_at, c.id FROM us_sessions c"     \
    " WHERE c.workspace = %s AND c.id = %s AND c.status <> 'ABORTED')"
#define AFTER_TAIL SESSION_CURSOR("<") " ORDER BY created_at DESC, id DESC LIMIT %lld"
#define BEFORE_TAIL SESSION_CURSOR(">") " ORDER BY created_at, id LIMIT %lld"
#define SESSION_FILE_COLS "file_ingestion_id, name, ingestion_status, ingestion_reason"
#define FILE_CURSOR(cmp)                                                              \
    " AND (uploaded_at, name) " cmp " (SELECT c.uploaded_at, c.name FROM us_uploads c" \
    " WHERE c.session_id = %s AND c.file_ingestion_id = %s AND c.is_meta = 0)"
#define FILE_AFTER_TAIL FILE_CURSOR(">") " ORDER BY uploaded_at, name LIMIT %lld"
#define FILE_BEFORE_TAIL FILE_CURSOR("<") " ORDER BY uploaded_at DESC, name DESC LIMIT %lld"

static const us_pg_stmt_def STATEMENTS[US_PG__COUNT] = {
    [US_PG_SESSION_INSERT] = { "us_pg_session_insert",
        "INSERT INTO us_sessions (id, workspace, user_id, given_name, family_name,"
        " write_mode, parallel, status, created_at, expires_at, direct)"
        " VALUES (%s, %s, %s, %s, %s, %s, %d, 'OPEN', %lld, %lld, %d)" },
    [US_PG_USER_OPEN_LOCK] = { "us_pg_user_open_lock",
        /* creates the user's counter row or locks it: creates, closes and
         * sweeps of the user queue here */
        "INSERT INTO us_user_open (user_id, n) VALUES (%s, 0)"
        " ON CONFLICT (user_id) DO UPDATE SET n = us_user_open.n" },
    [US_PG_USER_OPEN_TAKE] = { "us_pg_user_open_take",
        /* a later statement than the lock: its snapshot holds every close
         * and sweep of the user committed before; none can commit now */
        "UPDATE us_user_open SET n = n + 1 WHERE user_id = %s"
        " AND n - (SELECT COUNT(*) FROM us_sessions WHERE user_id = %s"
        " AND status = 'OPEN' AND expires_at <= %lld) < %d" },
    [US_PG_SESSION_GET] = { "us_pg_session_get",
        "SELECT " SESSION_COLS " FROM us_sessions WHERE workspace = %s AND id = %s AND " VISIBLE },
    [US_PG_SESSION_CLOSE] = { "us_pg_session_close",
        /* the row lock and the status re-check make one close win */
        "WITH c AS (UPDATE us_sessions SET status = 'CLOSED', closed_at = %lld,"
        " ingest_state = " INGEST_AFTER_CLOSE
        " WHERE workspace = %s AND id = %s AND status = 'OPEN' AND expires_at > %lld"
        " RETURNING user_id),"
        " d AS (UPDATE us_user_open u SET n = u.n - 1 FROM c WHERE u.user_id = c.user_id"
        " RETURNING 1)"
        " SELECT COUNT(*) FROM c" },
    [US_PG_SESSION_LIST_ALL] = { "us_pg_session_list_all",
        "SELECT " SESSION_COLS " FROM us_sessions WHERE workspace = %s AND " VISIBLE LIST_TAIL },
    [US_PG_SESSION_LIST_EXPIRED] = { "us_pg_session_list_expired",
        "SELECT " SESSION_COLS " FROM us_sessions WHERE workspace = %s AND "
        IS_EXPIRED LIST_TAIL },
    [US_PG_SESSION_LIST_ACTIVE] = { "us_pg_session_list_active",
        "SELECT " SESSION_COLS " FROM us_sessions WHERE workspace = %s AND "
        NOT_EXPIRED LIST_TAIL },
    [US_PG_SESSION_AFTER_ALL] = { "us_pg_session_after_all",
        "SELECT " SESSION_COLS " FROM us_sessions WHERE workspace = %s AND " VISIBLE AFTER_TAIL },
    [US_PG_SESSION_AFTER_EXPIRED] = { "us_pg_session_after_expired",
        "SELECT " SESSION_COLS " FROM us_sessions WHERE workspace = %s AND "
        IS_EXPIRED AFTER_TAIL },
    [US_PG_SESSION_AFTER_ACTIVE] = { "us_pg_session_after_active",
        "SELECT " SESSION_COLS " FROM us_sessions WHERE workspace = %s AND "
        NOT_EXPIRED AFTER_TAIL },
    [US_PG_SESSION_BEFORE_ALL] = { "us_pg_session_before_all",
        "SELECT " SESSION_COLS " FROM us_sessions WHERE workspace = %s AND " VISIBLE BEFORE_TAIL },
    [US_PG_SESSION_BEFORE_EXPIRED] = { "us_pg_session_before_expired",
        "SELECT " SESSION_COLS " FROM us_sessions WHERE workspace = %s AND "
        IS_EXPIRED BEFORE_TAIL },
    [US_PG_SESSION_BEFORE_ACTIVE] = { "us_pg_session_before_active",
        "SELECT " SESSION_COLS " FROM us_sessions WHERE workspace = %s AND "
        NOT_EXPIRED BEFORE_TAIL },
    [US_PG_SESSION_COUNT_ALL] = { "us_pg_session_count_all",
        "SELECT COUNT(*) FROM us_sessions WHERE workspace = %s AND " VISIBLE },
    [US_PG_SESSION_COUNT_EXPIRED] = { "us_pg_session_count_expired",
        "SELECT COUNT(*) FROM us_sessions WHERE workspace = %s AND " IS_EXPIRED },
    [US_PG_SESSION_COUNT_ACTIVE] = { "us_pg_session_count_active",
        "SELECT COUNT(*) FROM us_sessions WHERE workspace = %s AND " NOT_EXPIRED },
    [US_PG_SESSION_BY_ID] = { "us_pg_session_by_id",
        "SELECT " SESSION_COLS " FROM us_sessions WHERE id = %s AND " VISIBLE },
    [US_PG_SESSION_LOCK_OPEN] = { "us_pg_session_lock_open",
        /* an upload holds its session's row until it commits: the close
         * (an UPDATE of that row) waits for it, or it sees the close */
        "SELECT 1 FROM us_sessions WHERE id = %s AND status = 'OPEN' AND expires_at > %lld"
        " FOR NO KEY UPDATE" },
    [US_PG_UPLOAD_BLOB_GET] = { "us_pg_upload_blob_get",
        "SELECT blob FROM us_uploads WHERE session_id = %s AND name = %s" },
    [US_PG_UPLOAD_INSERT] = { "us_pg_upload_insert",
        "INSERT INTO us_uploads (session_id, name, blob, size, sha256, is_meta,"
        " uploaded_at, file_ingestion_id) VALUES (%s, %s, %s, %lld, %s, %d, %lld, %s)" },
    [US_PG_UPLOAD_REPLACE] = { "us_pg_upload_replace",
        "UPDATE us_uploads SET blob = %s, size = %lld, sha256 = %s, uploaded_at = %lld"
        " WHERE session_id = %s AND name = %s" },
    [US_PG_SESSION_COUNT_UPLOAD] = { "us_pg_session_count_upload",
        "UPDATE us_sessions SET uploaded_files = uploaded_files + 1 WHERE id = %s" },
    [US_PG_FILES_LIST_ALL] = { "us_pg_files_list_all",
        "SELECT file_ingestion_id, name, ingestion_status, ingestion_reason FROM us_uploads"
        " WHERE session_id = %s AND is_meta = 0"
        " ORDER BY uploaded_at, name LIMIT %lld OFFSET %lld" },
    [US_PG_FILES_LIST_STATUS] = { "us_pg_files_list_status",
        "SELECT file_ingestion_id, name, ingestion_status, ingestion_reason FROM us_uploads"
        " WHERE session_id = %s AND is_meta = 0 AND ingestion_status = %s"
        " ORDER BY uploaded_at, name LIMIT %lld OFFSET %lld" },
    [US_PG_FILES_AFTER_ALL] = { "us_pg_files_after_all",
        "SELECT " SESSION_FILE_COLS " FROM us_uploads WHERE session_id = %s AND is_meta = 0"
        FILE_AFTER_TAIL },
    [US_PG_FILES_AFTER_STATUS] = { "us_pg_files_after_status",
        "SELECT " SESSION_FILE_COLS " FROM us_uploads WHERE session_id = %s AND is_meta = 0"
        " AND ingestion_status = %s" FILE_AFTER_TAIL },
    [US_PG_FILES_BEFORE_ALL] = { "us_pg_files_before_all",
        "SELECT " SESSION_FILE_COLS " FROM us_uploads WHERE session_id = %s AND is_meta = 0"
        FILE_BEFORE_TAIL },
    [US_PG_FILES_BEFORE_STATUS] = { "us_pg_files_before_status",
        "SELECT " SESSION_FILE_COLS " FROM us_uploads WHERE session_id = %s AND is_meta = 0"
        " AND ingestion_status = %s" FILE_BEFORE_TAIL },
    [US_PG_FILES_COUNT_ALL] = { "us_pg_files_count_all",
        "SELECT COUNT(*) FROM us_uploads WHERE session_id = %s AND is_meta = 0" },
    [US_PG_FILES_COUNT_STATUS] = { "us_pg_files_count_status",
        "SELECT COUNT(*) FROM us_uploads WHERE session_id = %s AND is_meta = 0"
        " AND ingestion_status = %s" },
    [US_PG_NODE_CLAIM] = { "us_pg_node_claim",
        /* a concurrent claim of the same name waits for this one's row and
         * then judges it: one of them is granted */
        "INSERT INTO us_nodes (name, instance, host, pid, heartbeat)"
        " VALUES (%s, %s, %s, %lld, " DB_NOW_US ")"
        " ON CONFLICT (name) DO UPDATE SET instance = excluded.instance,"
        " host = excluded.host, pid = excluded.pid, heartbeat = excluded.heartbeat"
        " WHERE us_nodes.instance = excluded.instance OR us_nodes.instance = %s"
        " OR us_nodes.heartbeat < excluded.heartbeat - %lld"
        " RETURNING 1" },
    [US_PG_NODE_HOLDER] = { "us_pg_node_holder",
        "SELECT instance, host, pid, " DB_NOW_US " - heartbeat FROM us_nodes WHERE name = %s" },
    [US_PG_NODE_HEARTBEAT] = { "us_pg_node_heartbeat",
        "UPDATE us_nodes SET heartbeat = " DB_NOW_US " WHERE name = %s AND instance = %s" },
    [US_PG_SWEEP_LOCK] = { "us_pg_sweep_lock",
        /* one sweeper at a time across nodes; the others skip their turn */
        "SELECT CASE WHEN pg_try_advisory_xact_lock(" US_PG_LOCK_SWEEP ") THEN 1 ELSE 0 END" },
    [US_PG_SESSIONS_EXPIRE] = { "us_pg_sessions_expire",
        "WITH e AS (UPDATE us_sessions SET status = 'EXPIRED', closed_at = expires_at,"
        " ingest_state = " INGEST_AFTER_CLOSE
        " WHERE status = 'OPEN' AND expires_at <= " DB_NOW_US " RETURNING user_id),"
        " d AS (UPDATE us_user_open u SET n = u.n - c.k"
        " FROM (SELECT user_id, COUNT(*) AS k FROM e GROUP BY user_id) c"
        " WHERE u.user_id = c.user_id RETURNING 1)"
        " SELECT COUNT(*) FROM e" },
    [US_PG_OVERVIEW] = { "us_pg_overview",
        /* one statement: one snapshot, whatever the isolation level. Each
         * count is a range of us_sessions_expiry or us_sessions_ingest */
        "SELECT (SELECT COUNT(*) FROM us_sessions WHERE status = 'OPEN' AND expires_at > %lld),"
        " (SELECT COUNT(*) FROM us_sessions WHERE status = 'CLOSED'),"
        " (SELECT COUNT(*) FROM us_sessions WHERE status = 'EXPIRED')"
        " + (SELECT COUNT(*) FROM us_sessions WHERE status = 'OPEN' AND expires_at <= %lld),"
        " (SELECT COUNT(*) FROM us_sessions WHERE ingest_state = 'queued'"
        " AND closed_at IS NOT NULL),"
        " (SELECT COUNT(*) FROM us_sessions WHERE ingest_state = 'running'"
        " AND closed_at IS NOT NULL),"
        " (SELECT MIN(closed_at) FROM us_sessions WHERE ingest_state IN ('queued', 'running')"
        " AND closed_at IS NOT NULL)" },
    [US_PG_INGEST_CANDIDATE] = { "us_pg_ingest_candidate",
        /* a row another claimer is deciding on is skipped, not waited for */
        "SELECT s.id, s.workspace, s.parallel FROM us_sessions s WHERE " CLAIMABLE("s")
        " AND " IN_TURN("s") " ORDER BY s.closed_at, s.id LIMIT 1 FOR UPDATE OF s SKIP LOCKED" },
    [US_PG_TURN_LOCK] = { "us_pg_turn_lock",
        /* one claimer of a workspace's non-parallel sessions at a time */
        "SELECT CASE WHEN pg_try_advisory_xact_lock(" US_PG_LOCK_TURN_CLASS ", hashtext(%s))"
        " THEN 1 ELSE 0 END" },
    [US_PG_IN_TURN] = { "us_pg_in_turn",
        "SELECT 1 FROM us_sessions s WHERE s.id = %s AND " IN_TURN("s") },
    [US_PG_INGEST_CLAIM] = { "us_pg_ingest_claim",
        "UPDATE us_sessions SET ingest_state = 'running', ingest_owner = %s,"
        " ingest_heartbeat = " DB_NOW_US " WHERE id = %s RETURNING " SESSION_COLS },
    [US_PG_INGEST_RUNNING] = { "us_pg_ingest_running",
        "SELECT id, ingest_owner FROM us_sessions WHERE ingest_state = 'running'" },
    [US_PG_INGEST_REQUEUE] = { "us_pg_ingest_requeue",
        "UPDATE us_sessions SET ingest_state = 'queued', ingest_owner = NULL"
        " WHERE id = %s AND ingest_state = 'running' AND ingest_owner = %s" },
    [US_PG_INGEST_HEARTBEAT] = { "us_pg_ingest_heartbeat",
        "UPDATE us_sessions SET ingest_heartbeat = " DB_NOW_US
        " WHERE id = %s AND ingest_state = 'running' AND ingest_owner = %s" },
    [US_PG_INGEST_DONE] = { "us_pg_ingest_done",
        "UPDATE us_sessions SET ingest_state = 'done'"
        " WHERE id = %s AND ingest_state = 'running' AND ingest_owner = %s" },
    [US_PG_INGEST_PENDING] = { "us_pg_ingest_pending",
        "SELECT name, blob, size, file_ingestion_id, etag FROM us_uploads"
        " WHERE session_id = %s AND is_meta = 0 AND ingestion_status = 'PENDING'"
        " ORDER BY name LIMIT %d" },
    [US_PG_CLAIM_HELD] = { "us_pg_claim_held",
        /* fencing: the batch commits only while its worker holds the claim;
         * the share lock keeps a takeover waiting until it has */
        "SELECT 1 FROM us_sessions WHERE id = %s AND ingest_state = 'running'"
        " AND ingest_owner = %s FOR SHARE" },
    [US_PG_NAME_LOCK] = { "us_pg_name_lock",
        /* deciders about one name of a workspace (FAIL check, OVERWRITE)
         * take turns until commit */
        "SELECT 1 FROM (SELECT pg_advisory_xact_lock(hashtextextended(%s || '/' || %s, 0))) l" },
    [US_PG_UPLOAD_SET_STATE] = { "us_pg_upload_set_state",
        "UPDATE us_uploads SET ingestion_status = %s, ingestion_reason = %s"
        " WHERE session_id = %s AND name = %s AND ingestion_status = 'PENDING'" },
    [US_PG_SESSION_ADD_COUNTS] = { "us_pg_session_add_counts",
        "UPDATE us_sessions SET finished_files = finished_files + %lld,"
        " failed_files = failed_files + %lld WHERE id = %s" },
    [US_PG_LISTING_MARK] = { "us_pg_listing_mark",
        /* the guard makes exactly one listing the session's: a second
         * caller waits for the first one's row lock, then finds direct = 2 */
        "UPDATE us_sessions SET direct = 2 WHERE id = %s AND direct = 1 AND status <> 'ABORTED'" },
    [US_PG_LISTED_INSERT] = { "us_pg_listed_insert",
        "INSERT INTO us_uploads (session_id, name, blob, size, sha256, is_meta,"
        " uploaded_at, file_ingestion_id, etag) VALUES (%s, %s, %s, %lld, '', %d, %lld, %s, %s)" },
    [US_PG_LISTED_COUNT] = { "us_pg_listed_count",
        "UPDATE us_sessions SET uploaded_files = %lld WHERE id = %s" },
    [US_PG_WORKSPACE_FILE_INSERT] = { "us_pg_workspace_file_insert",
        "INSERT INTO us_files (file_id, workspace, name, size, meta, created_at, session_id,"
        " characters) VALUES (%s, %s, %s, %lld, %s, %lld, %s, %lld)" },
    [US_PG_WORKSPACE_FILE_IDS_BY_NAME] = { "us_pg_workspace_file_ids_by_name",
        "SELECT file_id FROM us_files WHERE workspace = %s AND name = %s" },
    [US_PG_WORKSPACE_FILE_DELETE] = { "us_pg_workspace_file_delete",
        "DELETE FROM us_files WHERE file_id = %s" },
    [US_PG_WORKSPACE_FILE_GET] = { "us_pg_workspace_file_get",
        "SELECT " WORKSPACE_FILE_COLS " FROM us_files WHERE workspace = %s AND file_id = %s" },
    [US_PG_WORKSPACE_FILE_LIST] = { "us_pg_workspace_file_list",
        /* strpos(): a substring test with no LIKE wildcards to escape */
        "SELECT " WORKSPACE_FILE_COLS " FROM us_files WHERE workspace = %s"
        " AND strpos(name, %s) > 0 ORDER BY created_at DESC, file_id DESC LIMIT %lld" },
    [US_PG_WORKSPACE_FILE_LIST_AFTER] = { "us_pg_workspace_file_list_after",
        "SELECT " WORKSPACE_FILE_COLS " FROM us_files WHERE workspace = %s"
        " AND strpos(name, %s) > 0"
        " AND (created_at < %lld OR (created_at = %lld AND file_id < %s))"
        " ORDER BY created_at DESC, file_id DESC LIMIT %lld" },
    [US_PG_WORKSPACE_FILE_COUNT] = { "us_pg_workspace_file_count",
        "SELECT COUNT(*) FROM us_files WHERE workspace = %s AND strpos(name, %s) > 0" },
    [US_PG_SESSION_ABORT] = { "us_pg_session_abort",
        /* as the close: the row lock and the status re-check make one of
         * them win; ABORTED reads as absent, queued (and parallel: it holds
         * nobody's turn) so an ingest worker clears its stored uploads */
        "WITH c AS (UPDATE us_sessions SET status = 'ABORTED', closed_at = %lld,"
        " ingest_state = 'queued', parallel = 1, uploaded_files = 0"
        " WHERE workspace = %s AND id = %s AND status = 'OPEN' AND expires_at > %lld"
        " RETURNING user_id),"
        " d AS (UPDATE us_user_open u SET n = u.n - 1 FROM c WHERE u.user_id = c.user_id"
        " RETURNING 1)"
        " SELECT COUNT(*) FROM c" },
    [US_PG_UPLOADS_DISCARD] = { "us_pg_uploads_discard",
        "DELETE FROM us_uploads WHERE session_id = %s" },
    [US_PG_SESSION_UPLOADED] = { "us_pg_session_uploaded",
        /* after US_PG_SESSION_LOCK_OPEN: the count is final while the row is held */
        "SELECT uploaded_files FROM us_sessions WHERE id = %s" },
    [US_PG_WORKSPACE_FILE_DELETE_ONE] = { "us_pg_workspace_file_delete_one",
        "WITH d AS (DELETE FROM us_files WHERE workspace = %s AND file_id = %s RETURNING file_id),"
        " t AS (INSERT INTO us_file_trash (file_id) SELECT file_id FROM d"
        " ON CONFLICT (file_id) DO NOTHING)"
        " SELECT file_id FROM d" },
    [US_PG_WORKSPACE_FILES_DELETE_NAME] = { "us_pg_workspace_files_delete_name",
        "WITH d AS (DELETE FROM us_files WHERE workspace = %s AND name = %s RETURNING file_id),"
        " t AS (INSERT INTO us_file_trash (file_id) SELECT file_id FROM d"
        " ON CONFLICT (file_id) DO NOTHING)"
        " SELECT file_id FROM d" },
    [US_PG_WORKSPACE_FILES_DELETE_ALL] = { "us_pg_workspace_files_delete_all",
        "WITH d AS (DELETE FROM us_files WHERE workspace = %s RETURNING file_id),"
        " t AS (INSERT INTO us_file_trash (file_id) SELECT file_id FROM d"
        " ON CONFLICT (file_id) DO NOTHING)"
        " SELECT file_id FROM d" },
    [US_PG_FILE_TRASH_LIST] = { "us_pg_file_trash_list",
        "SELECT file_id FROM us_file_trash LIMIT %d" },
    [US_PG_FILE_TRASH_FORGET] = { "us_pg_file_trash_forget",
        "DELETE FROM us_file_trash WHERE file_id = %s" },
    [US_PG_WORKSPACE_FILE_META_SWAP] = { "us_pg_workspace_file_meta_swap",
        "UPDATE us_files SET meta = %s WHERE workspace = %s AND file_id = %s"
        " AND meta IS NOT DISTINCT FROM %s" },
    [US_PG_WEBHOOK_TARGETS_CLEAR] = { "us_pg_webhook_targets_clear",
        "DELETE FROM us_webhook_targets" },
    [US_PG_WEBHOOK_TARGET_ADD] = { "us_pg_webhook_target_add",
        "INSERT INTO us_webhook_targets (url) VALUES (%s) ON CONFLICT (url) DO NOTHING" },
    [US_PG_WEBHOOK_DROP_UNLISTED] = { "us_pg_webhook_drop_unlisted",
        "DELETE FROM us_webhook_outbox WHERE url NOT IN (SELECT url FROM us_webhook_targets)" },
    [US_PG_WEBHOOK_CLAIM] = { "us_pg_webhook_claim",
        /* SKIP LOCKED: concurrent claimers take different rows; the row a
         * claimer locks is re-checked on its latest version (a lease that
         * committed meanwhile excludes it) */
        "UPDATE us_webhook_outbox SET lease_owner = %s, lease_until = %lld"
        " WHERE id = (SELECT id FROM us_webhook_outbox WHERE " WEBHOOK_DUE
        " ORDER BY next_at, id LIMIT 1 FOR UPDATE SKIP LOCKED)"
        " RETURNING " WEBHOOK_COLS },
    [US_PG_WEBHOOK_NEXT_PAGE] = { "us_pg_webhook_next_page",
        "UPDATE us_webhook_outbox SET page = page + 1, attempts = 0, next_at = 0,"
        " last_error = NULL, last_attempt_at = NULL, lease_owner = NULL, lease_until = 0"
        " WHERE id = %lld AND lease_owner = %s AND page = %d" },
    [US_PG_WEBHOOK_DONE] = { "us_pg_webhook_done",
        "DELETE FROM us_webhook_outbox WHERE id = %lld AND lease_owner = %s AND page = %d" },
    [US_PG_WEBHOOK_RETRY] = { "us_pg_webhook_retry",
        "UPDATE us_webhook_outbox SET attempts = attempts + 1, next_at = %lld, last_error = %s,"
        " last_attempt_at = %lld, state = %s, lease_owner = NULL, lease_until = 0"
        " WHERE id = %lld AND lease_owner = %s" },
    [US_PG_WORKSPACE_CREATE] = { "us_pg_workspace_create",
        "INSERT INTO us_workspaces (name, workspace_id, created_at, created)"
        " VALUES (%s, %s, %lld, 1) ON CONFLICT (name) DO NOTHING" },
    [US_PG_WORKSPACE_ENSURE] = { "us_pg_workspace_ensure",
        /* the first data of a workspace makes its row */
        "INSERT INTO us_workspaces (name, workspace_id, created_at, created)"
        " VALUES (%s, gen_random_uuid()::text, %lld, 0) ON CONFLICT (name) DO NOTHING" },
    [US_PG_WORKSPACE_GET] = { "us_pg_workspace_get",
        "SELECT name, workspace_id, created_at FROM us_workspaces WHERE name = %s" },
    [US_PG_WORKSPACE_LIST] = { "us_pg_workspace_list",
        "SELECT name, workspace_id, created_at FROM us_workspaces ORDER BY name" },
    [US_PG_WEBHOOK_STATS] = { "us_pg_webhook_stats",
        /* one statement: one snapshot */
        "SELECT (SELECT COUNT(*) FROM us_webhook_outbox WHERE state = 'pending'),"
        " (SELECT COUNT(*) FROM us_webhook_outbox WHERE state = 'failed'),"
        " (SELECT MIN(occurred_at) FROM us_webhook_outbox WHERE state = 'pending'),"
        " (SELECT last_error FROM us_webhook_outbox WHERE last_error IS NOT NULL"
        " ORDER BY last_attempt_at DESC, id DESC LIMIT 1),"
        " (SELECT MAX(last_attempt_at) FROM us_webhook_outbox WHERE last_error IS NOT NULL)" },
};

const char *us_pg_sql_workspace_file_cols(void)
{
    return WORKSPACE_FILE_COLS;
}

const us_pg_stmt_def *us_pg_sql_statement(us_pg_stmt_id id)
{
    return (id >= 0 && id < US_PG__COUNT) ? &STATEMENTS[id] : NULL;
}

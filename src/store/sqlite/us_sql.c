/*
 * us_sql.c - the SQLite backend's SQL text (pure). Another backend keeps
 * its own text beside its own code.
 *
 * Timestamps are integers: microseconds since the epoch, UTC.
 * A session's visible status is derived: an OPEN session past expires_at
 * reads as EXPIRED even before the expiry sweep has written it.
 */
#include "us_sql.h"

#include <stddef.h>

/* The database's clock (for SQLite the machine's, to the millisecond) in
 * microseconds since the epoch: the expiry sweep judges by it, as the
 * PostgreSQL backend judges by its server's. */
#define DB_NOW_US "CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER)"

static const char *const SQLITE_SETUP[] = {
    /* busy_timeout comes first, set by us_db.c from its configuration:
     * every later statement, journal_mode included, may meet another
     * process's lock */
    "PRAGMA journal_mode=WAL",
    /* then us_db.c sets synchronous: NORMAL in WAL mode, where us_write
     * syncs the WAL itself after each commit (outside the lock that
     * serialises the writers), FULL otherwise */
    "PRAGMA foreign_keys=ON",
    /* checkpoints are the ingest workers' (us_db_maintain); this is the
     * backstop, US_AUTOCHECKPOINT_PAGES in us_store_db.h */
    "PRAGMA wal_autocheckpoint=10000",
    /* each connection's page cache: US_CACHE_KIB in us_store_db.h */
    "PRAGMA cache_size=-256",
    NULL
};

const char US_SQL_META_TABLE[] =
    "CREATE TABLE IF NOT EXISTS us_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)";
const char US_SQL_SCHEMA_VERSION_GET[] =
    "SELECT value FROM us_meta WHERE name = 'schema_version'";
const char US_SQL_SCHEMA_VERSION_SET[] =
    "INSERT INTO us_meta (name, value) VALUES ('schema_version', %d) "
    "ON CONFLICT (name) DO UPDATE SET value = excluded.value";

/* a negative cache_size is in KiB rather than pages */
const char US_SQL_CACHE_SIZE[] = "PRAGMA cache_size=-%d";

static const char *const MIGRATION_0_TO_1[] = {
    "CREATE TABLE us_sessions ("
    " id TEXT PRIMARY KEY,"
    " workspace TEXT NOT NULL,"
    " user_id TEXT NOT NULL,"
    " given_name TEXT NOT NULL,"
    " family_name TEXT NOT NULL,"
    " write_mode TEXT NOT NULL,"
    " parallel INTEGER NOT NULL,"
    " status TEXT NOT NULL,"            /* OPEN | CLOSED | EXPIRED */
    " created_at BIGINT NOT NULL,"
    " expires_at BIGINT NOT NULL,"
    " closed_at BIGINT,"
    " ingest_state TEXT NOT NULL DEFAULT 'none'," /* none|queued|running|done */
    " uploaded_files BIGINT NOT NULL DEFAULT 0,"
    " finished_files BIGINT NOT NULL DEFAULT 0,"
    " failed_files BIGINT NOT NULL DEFAULT 0)",
    "CREATE INDEX us_sessions_ws_created ON us_sessions (workspace, created_at DESC, id DESC)",
    "CREATE INDEX us_sessions_user_open ON us_sessions (user_id, status, expires_at)",
    NULL
};

/* Uploads: one row per (session, name); the blob is the file's name on disk
 * under the session's directory, so a newer upload of the same name can be
 * published while the older blob is still in place. */
static const char *const MIGRATION_1_TO_2[] = {
    "CREATE TABLE us_uploads ("
    " session_id TEXT NOT NULL REFERENCES us_sessions (id),"
    " name TEXT NOT NULL,"
    " blob TEXT NOT NULL,"
    " size BIGINT NOT NULL,"
    " sha256 TEXT NOT NULL,"
    " is_meta INTEGER NOT NULL,"        /* a NAME.meta.json sidecar */
    " uploaded_at BIGINT NOT NULL,"
    " file_ingestion_id TEXT NOT NULL,"
    " ingestion_status TEXT NOT NULL DEFAULT 'PENDING',"
    " ingestion_reason TEXT,"
    " PRIMARY KEY (session_id, name))",
    "CREATE INDEX us_uploads_files ON us_uploads (session_id, is_meta, ingestion_status, uploaded_at)",
    NULL
};

/* Ingestion: a session's ingest job is a state on its row (none -> queued
 * -> running -> done), claimed by one worker at a time with a heartbeat; a
 * worker that stops beating loses the claim. Ingested files live in
 * us_files; their blob is <data_dir>/files/<file_id>. */
static const char *const MIGRATION_2_TO_3[] = {
    "ALTER TABLE us_sessions ADD COLUMN ingest_owner TEXT",
    "ALTER TABLE us_sessions ADD COLUMN ingest_heartbeat BIGINT NOT NULL DEFAULT 0",
    "CREATE INDEX us_sessions_ingest ON us_sessions (ingest_state, closed_at)",
    "CREATE INDEX us_sessions_expiry ON us_sessions (status, expires_at)",
    "CREATE TABLE us_files ("
    " file_id TEXT PRIMARY KEY,"
    " workspace TEXT NOT NULL,"
    " name TEXT NOT NULL,"
    " size BIGINT NOT NULL,"
    " meta TEXT,"                       /* JSON object text, NULL when none */
    " created_at BIGINT NOT NULL,"
    " session_id TEXT)",                /* NULL for direct uploads */
    "CREATE INDEX us_files_ws_created ON us_files (workspace, created_at DESC, file_id DESC)",
    "CREATE INDEX us_files_ws_name ON us_files (workspace, name)",
    NULL
};

/* The ingest claim's turn check probes these: a workspace's non-parallel
 * sessions by state and closing time. */
static const char *const MIGRATION_3_TO_4[] = {
    "CREATE INDEX us_sessions_turn ON us_sessions (workspace, parallel, ingest_state, closed_at)",
    /* the pending files of a session in name order, without a sort */
    "CREATE INDEX us_uploads_pending ON us_uploads (session_id, is_meta, ingestion_status, name)",
    NULL
};

/* The per-user open-session limit reads a counter, which triggers keep
 * exact on every path that opens or ends a session: counting the user's
 * OPEN rows would cost more with every session they keep. A create writes
 * fewer b-trees too: the counter stands in for an index on the user (the
 * few expired-but-unswept sessions are found through us_sessions_expiry),
 * and the ingest indexes hold only closed sessions. */
static const char *const MIGRATION_4_TO_5[] = {
    "CREATE TABLE us_user_open (user_id TEXT PRIMARY KEY, n BIGINT NOT NULL) WITHOUT ROWID",
    "INSERT INTO us_user_open (user_id, n) SELECT user_id, COUNT(*) FROM us_sessions"
    " WHERE status = 'OPEN' GROUP BY user_id",
    "CREATE TRIGGER us_user_open_insert AFTER INSERT ON us_sessions"
    " WHEN NEW.status = 'OPEN' BEGIN"
    " INSERT INTO us_user_open (user_id, n) VALUES (NEW.user_id, 1)"
    " ON CONFLICT (user_id) DO UPDATE SET n = n + 1; END",
    "CREATE TRIGGER us_user_open_update AFTER UPDATE OF status ON us_sessions"
    " WHEN (OLD.status = 'OPEN') <> (NEW.status = 'OPEN') BEGIN"
    " UPDATE us_user_open SET n = n + (CASE WHEN NEW.status = 'OPEN' THEN 1 ELSE -1 END)"
    " WHERE user_id = OLD.user_id; END",
    "CREATE TRIGGER us_user_open_delete AFTER DELETE ON us_sessions"
    " WHEN OLD.status = 'OPEN' BEGIN"
    " UPDATE us_user_open SET n = n - 1 WHERE user_id = OLD.user_id; END",
    "DROP INDEX us_sessions_user_open",
    /* partial: a session enters them when it is closed or expires (both
     * set closed_at); the queries name `closed_at IS NOT NULL` to use them */
    "DROP INDEX us_sessions_ingest",
    "CREATE INDEX us_sessions_ingest ON us_sessions (ingest_state, closed_at)"
    " WHERE closed_at IS NOT NULL",
    "DROP INDEX us_sessions_turn",
    "CREATE INDEX us_sessions_turn ON us_sessions (workspace, parallel, ingest_state, closed_at)"
    " WHERE closed_at IS NOT NULL",
    NULL
};

/* A text file's length in characters, stored when it is ingested or
 * posted (NULL: not a text file, or one from before this column). */
static const char *const MIGRATION_5_TO_6[] = {
    "ALTER TABLE us_files ADD COLUMN characters BIGINT",
    /* ids of deleted files whose bytes may be left: a delete puts them here
     * with the row's removal, and takes them out once the bytes are gone */
    "CREATE TABLE us_file_trash (file_id TEXT PRIMARY KEY) WITHOUT ROWID",
    NULL
};

/* Webhook events: the URLs (us_webhook_targets, set at startup) and an
 * outbox row per (event, URL), inserted by triggers in the transaction
 * that changes the session, whichever statement changes it. A row is
 * leased to one deliverer at a time (lease_owner, lease_until), delivered
 * page by page and deleted after its last page, or kept as failed. */
static const char *const MIGRATION_6_TO_7[] = {
    "CREATE TABLE us_webhook_targets (url TEXT PRIMARY KEY) WITHOUT ROWID",
    "CREATE TABLE us_webhook_outbox ("
    " id INTEGER PRIMARY KEY,"
    " event TEXT NOT NULL,"             /* session.ingested | session.expired */
    " session_id TEXT NOT NULL,"
    " workspace TEXT NOT NULL,"
    " url TEXT NOT NULL,"
    " occurred_at BIGINT NOT NULL,"
    " uploaded_files BIGINT NOT NULL,"
    " finished_files BIGINT NOT NULL,"
    " failed_files BIGINT NOT NULL,"
    " page INTEGER NOT NULL DEFAULT 1," /* the next page to deliver */
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " next_at BIGINT NOT NULL DEFAULT 0,"
    " state TEXT NOT NULL DEFAULT 'pending'," /* pending | failed */
    " last_error TEXT,"
    " last_attempt_at BIGINT,"
    " lease_owner TEXT,"
    " lease_until BIGINT NOT NULL DEFAULT 0,"
    " UNIQUE (event, session_id, url))",
    "CREATE INDEX us_webhook_due ON us_webhook_outbox (state, next_at)",
    "CREATE TRIGGER us_webhook_expired AFTER UPDATE OF status ON us_sessions"
    " WHEN OLD.status = 'OPEN' AND NEW.status = 'EXPIRED' BEGIN"
    " INSERT OR IGNORE INTO us_webhook_outbox (event, session_id, workspace, url, occurred_at,"
    " uploaded_files, finished_files, failed_files)"
    " SELECT 'session.expired', NEW.id, NEW.workspace, url, NEW.expires_at,"
    " NEW.uploaded_files, NEW.finished_files, NEW.failed_files FROM us_webhook_targets; END",
    /* the commit's time: microseconds since the epoch from the Julian day */
    "CREATE TRIGGER us_webhook_ingested AFTER UPDATE OF ingest_state ON us_sessions"
    " WHEN OLD.ingest_state <> 'done' AND NEW.ingest_state = 'done'"
    " AND NEW.status <> 'ABORTED' BEGIN"
    " INSERT OR IGNORE INTO us_webhook_outbox (event, session_id, workspace, url, occurred_at,"
    " uploaded_files, finished_files, failed_files)"
    " SELECT 'session.ingested', NEW.id, NEW.workspace, url,"
    " CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER),"
    " NEW.uploaded_files, NEW.finished_files, NEW.failed_files FROM us_webhook_targets; END",
    NULL
};

const char *us_sql_begin_write(void)
{
    return "BEGIN IMMEDIATE";
}

const char *const *us_sql_connection_setup(void)
{
    return SQLITE_SETUP;
}

const char *const *us_sql_migration(int from)
{
    switch (from) {
    case 0: return MIGRATION_0_TO_1;
    case 1: return MIGRATION_1_TO_2;
    case 2: return MIGRATION_2_TO_3;
    case 3: return MIGRATION_3_TO_4;
    case 4: return MIGRATION_4_TO_5;
    case 5: return MIGRATION_5_TO_6;
    case 6: return MIGRATION_6_TO_7;
    default: return NULL;
    }
}

#define SESSION_COLS                                                          \
    "id, workspace, user_id, given_name, family_name, write_mode, parallel, " \
    "CASE WHEN status = 'OPEN' AND expires_at <= %lld THEN 'EXPIRED' "        \
    "ELSE status END, created_at, expires_at, uploaded_files, "               \
    "finished_files, failed_files"

/* A session may be ingested now when it is queued (or its claim went stale)
 * and, unless it is parallel, no other non-parallel session of its
 * workspace is running nor queued ahead of it: one at a time, in closing
 * order. ("Running" matters on its own: an expiry sweep dates a session's
 * closing back to its expires_at, which may precede one already running.) */
/* (the IN lets SQLite seek us_sessions_ingest for each of the two states
 * instead of scanning every closed session; closed_at IS NOT NULL admits
 * that partial index) */
#define CLAIMABLE(s)                                                              \
    "(" s ".closed_at IS NOT NULL AND " s ".ingest_state IN ('queued', 'running')" \
    " AND (" s ".ingest_state = 'queued' OR " s ".ingest_heartbeat < %lld))"
/* two NOT EXISTS, each an index probe on us_sessions_turn (one OR-ed
 * subquery made SQLite scan the workspace for every queued session) */
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

/* Uploads and the close are serialised by the write lock, so the count is
 * final here. Sidecars alone (uploaded_files counts raw files) give no
 * file either. */
#define INGEST_AFTER_CLOSE "(CASE WHEN uploaded_files = 0 THEN 'done' ELSE 'queued' END)"

#define WORKSPACE_FILE_COLS "file_id, name, size, meta, created_at, characters"

#define WEBHOOK_COLS                                                              \
    "id, event, session_id, workspace, url, occurred_at, uploaded_files, finished_files," \
    " failed_files, page, attempts"
#define WEBHOOK_DUE "state = 'pending' AND next_at <= %lld AND lease_until <= %lld"

#define IS_EXPIRED "(status = 'EXPIRED' OR (status = 'OPEN' AND expires_at <= %lld))"
#define NOT_EXPIRED "(status = 'CLOSED' OR (status = 'OPEN' AND expires_at > %lld))"
/* an aborted session is gone for every reader */
#define VISIBLE "status <> 'ABORTED'"
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

static const us_stmt_def STATEMENTS[US_STMT__COUNT] = {
    [US_STMT_SESSION_INSERT] = { "us_session_insert",
        /* one statement, so the open-session limit holds under concurrency:
         * SQLite runs it under the database write lock. Open = the user's
         * counter less those past expires_at the sweep has not reached yet
         * (a range of us_sessions_expiry: the few recently expired). */
        "INSERT INTO us_sessions (id, workspace, user_id, given_name, family_name,"
        " write_mode, parallel, status, created_at, expires_at)"
        " SELECT %s, %s, %s, %s, %s, %s, %d, 'OPEN', %lld, %lld"
        " WHERE coalesce((SELECT n FROM us_user_open WHERE user_id = %s), 0)"
        " - (SELECT COUNT(*) FROM us_sessions WHERE user_id = %s"
        " AND status = 'OPEN' AND expires_at <= %lld) < %d" },
    [US_STMT_SESSION_GET] = { "us_session_get",
        "SELECT " SESSION_COLS " FROM us_sessions WHERE workspace = %s AND id = %s AND " VISIBLE },
    [US_STMT_SESSION_CLOSE] = { "us_session_close",
        /* the status guard makes exactly one of many concurrent closes win;
         * a session without files has nothing to ingest: done at once */
        "UPDATE us_sessions SET status = 'CLOSED', closed_at = %lld,"
        " ingest_state = " INGEST_AFTER_CLOSE
        " WHERE workspace = %s AND id = %s AND status = 'OPEN' AND expires_at > %lld" },
    [US_STMT_SESSION_ABORT] = { "us_session_abort",
        /* ABORTED reads as absent; queued (and parallel: it holds nobody's
         * turn) so an ingest worker clears its stored uploads, none pending */
        "UPDATE us_sessions SET status = 'ABORTED', closed_at = %lld, ingest_state = 'queued',"
        " parallel = 1, uploaded_files = 0"
        " WHERE workspace = %s AND id = %s AND status = 'OPEN' AND expires_at > %lld" },
    [US_STMT_UPLOADS_DISCARD] = { "us_uploads_discard",
        "DELETE FROM us_uploads WHERE session_id = %s" },
    [US_STMT_SESSION_LIST_ALL] = { "us_session_list_all",
        "SELECT " SESSION_COLS " FROM us_sessions WHERE workspace = %s AND " VISIBLE LIST_TAIL },
    [US_STMT_SESSION_LIST_EXPIRED] = { "us_session_list_expired",
        "SELECT " SESSION_COLS " FROM us_sessions WHERE workspace = %s AND "
        IS_EXPIRED LIST_TAIL },
    [US_STMT_SESSION_LIST_ACTIVE] = { "us_session_list_active",
        "SELECT " SESSION_COLS " FROM us_sessions WHERE workspace = %s AND "
        NOT_EXPIRED LIST_TAIL },
    [US_STMT_SESSION_AFTER_ALL] = { "us_session_after_all",
        "SELECT " SESSION_COLS " FROM us_sessions WHERE workspace = %s AND " VISIBLE AFTER_TAIL },
    [US_STMT_SESSION_AFTER_EXPIRED] = { "us_session_after_expired",
        "SELECT " SESSION_COLS " FROM us_sessions WHERE workspace = %s AND "
        IS_EXPIRED AFTER_TAIL },
    [US_STMT_SESSION_AFTER_ACTIVE] = { "us_session_after_active",
        "SELECT " SESSION_COLS " FROM us_sessions WHERE workspace = %s AND "
        NOT_EXPIRED AFTER_TAIL },
    [US_STMT_SESSION_BEFORE_ALL] = { "us_session_before_all",
        "SELECT " SESSION_COLS " FROM us_sessions WHERE workspace = %s AND " VISIBLE BEFORE_TAIL },
    [US_STMT_SESSION_BEFORE_EXPIRED] = { "us_session_before_expired",
        "SELECT " SESSION_COLS " FROM us_sessions WHERE workspace = %s AND "
        IS_EXPIRED BEFORE_TAIL },
    [US_STMT_SESSION_BEFORE_ACTIVE] = { "us_session_before_active",
        "SELECT " SESSION_COLS " FROM us_sessions WHERE workspace = %s AND "
        NOT_EXPIRED BEFORE_TAIL },
    [US_STMT_SESSION_COUNT_ALL] = { "us_session_count_all",
        "SELECT COUNT(*) FROM us_sessions WHERE workspace = %s AND " VISIBLE },
    [US_STMT_SESSION_COUNT_EXPIRED] = { "us_session_count_expired",
        "SELECT COUNT(*) FROM us_sessions WHERE workspace = %s AND " IS_EXPIRED },
    [US_STMT_SESSION_COUNT_ACTIVE] = { "us_session_count_active",
        "SELECT COUNT(*) FROM us_sessions WHERE workspace = %s AND " NOT_EXPIRED },
    [US_STMT_SESSION_BY_ID] = { "us_session_by_id",
        "SELECT " SESSION_COLS " FROM us_sessions WHERE id = %s AND " VISIBLE },
    [US_STMT_SESSION_IS_OPEN] = { "us_session_is_open",
        "SELECT 1 FROM us_sessions WHERE id = %s AND status = 'OPEN' AND expires_at > %lld" },
    [US_STMT_UPLOAD_BLOB_GET] = { "us_upload_blob_get",
        "SELECT blob FROM us_uploads WHERE session_id = %s AND name = %s" },
    [US_STMT_UPLOAD_INSERT] = { "us_upload_insert",
        "INSERT INTO us_uploads (session_id, name, blob, size, sha256, is_meta,"
        " uploaded_at, file_ingestion_id) VALUES (%s, %s, %s, %lld, %s, %d, %lld, %s)" },
    [US_STMT_UPLOAD_REPLACE] = { "us_upload_replace",
        "UPDATE us_uploads SET blob = %s, size = %lld, sha256 = %s, uploaded_at = %lld"
        " WHERE session_id = %s AND name = %s" },
    [US_STMT_SESSION_COUNT_UPLOAD] = { "us_session_count_upload",
        "UPDATE us_sessions SET uploaded_files = uploaded_files + 1 WHERE id = %s" },
    [US_STMT_SESSION_UPLOADED] = { "us_session_uploaded",
        "SELECT uploaded_files FROM us_sessions WHERE id = %s" },
    [US_STMT_FILES_LIST_ALL] = { "us_session_files_list_all",
        "SELECT file_ingestion_id, name, ingestion_status, ingestion_reason FROM us_uploads"
        " WHERE session_id = %s AND is_meta = 0"
        " ORDER BY uploaded_at, name LIMIT %lld OFFSET %lld" },
    [US_STMT_FILES_LIST_STATUS] = { "us_session_files_list_status",
        "SELECT file_ingestion_id, name, ingestion_status, ingestion_reason FROM us_uploads"
        " WHERE session_id = %s AND is_meta = 0 AND ingestion_status = %s"
        " ORDER BY uploaded_at, name LIMIT %lld OFFSET %lld" },
    [US_STMT_FILES_AFTER_ALL] = { "us_session_files_after_all",
        "SELECT " SESSION_FILE_COLS " FROM us_uploads WHERE session_id = %s AND is_meta = 0"
        FILE_AFTER_TAIL },
    [US_STMT_FILES_AFTER_STATUS] = { "us_session_files_after_status",
        "SELECT " SESSION_FILE_COLS " FROM us_uploads WHERE session_id = %s AND is_meta = 0"
        " AND ingestion_status = %s" FILE_AFTER_TAIL },
    [US_STMT_FILES_BEFORE_ALL] = { "us_session_files_before_all",
        "SELECT " SESSION_FILE_COLS " FROM us_uploads WHERE session_id = %s AND is_meta = 0"
        FILE_BEFORE_TAIL },
    [US_STMT_FILES_BEFORE_STATUS] = { "us_session_files_before_status",
        "SELECT " SESSION_FILE_COLS " FROM us_uploads WHERE session_id = %s AND is_meta = 0"
        " AND ingestion_status = %s" FILE_BEFORE_TAIL },
    [US_STMT_FILES_COUNT_ALL] = { "us_files_count_all",
        "SELECT COUNT(*) FROM us_uploads WHERE session_id = %s AND is_meta = 0" },
    [US_STMT_FILES_COUNT_STATUS] = { "us_files_count_status",
        "SELECT COUNT(*) FROM us_uploads WHERE session_id = %s AND is_meta = 0"
        " AND ingestion_status = %s" },
    [US_STMT_SESSIONS_EXPIRE] = { "us_sessions_expire",
        "UPDATE us_sessions SET status = 'EXPIRED', closed_at = expires_at,"
        " ingest_state = " INGEST_AFTER_CLOSE " WHERE status = 'OPEN' AND expires_at <= " DB_NOW_US },
    [US_STMT_OVERVIEW] = { "us_store_overview",
        /* one statement: one snapshot. Each count is a range of a covering
         * index (us_sessions_expiry, us_sessions_ingest), not a table scan */
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
    [US_STMT_INGEST_CANDIDATE] = { "us_ingest_candidate",
        /* a read: searching needs no write lock (WAL readers block nobody) */
        "SELECT s.id FROM us_sessions s WHERE " CLAIMABLE("s") " AND " IN_TURN("s")
        " ORDER BY s.closed_at, s.id LIMIT 1" },
    [US_STMT_INGEST_CLAIM] = { "us_ingest_claim",
        /* the claim of that one row re-checks everything: of many workers
         * racing for it, exactly one changes it */
        "UPDATE us_sessions SET ingest_state = 'running', ingest_owner = %s,"
        " ingest_heartbeat = %lld WHERE id = %s AND " CLAIMABLE("us_sessions")
        " AND " IN_TURN("us_sessions") },
    [US_STMT_INGEST_CLAIMED] = { "us_ingest_claimed",
        "SELECT " SESSION_COLS " FROM us_sessions WHERE ingest_state = 'running'"
        " AND ingest_owner = %s" },
    [US_STMT_INGEST_RUNNING] = { "us_ingest_running",
        "SELECT id, ingest_owner FROM us_sessions WHERE ingest_state = 'running'" },
    [US_STMT_INGEST_REQUEUE] = { "us_ingest_requeue",
        "UPDATE us_sessions SET ingest_state = 'queued', ingest_owner = NULL"
        " WHERE id = %s AND ingest_state = 'running' AND ingest_owner = %s" },
    [US_STMT_INGEST_HEARTBEAT] = { "us_ingest_heartbeat",
        "UPDATE us_sessions SET ingest_heartbeat = %lld"
        " WHERE id = %s AND ingest_state = 'running' AND ingest_owner = %s" },
    [US_STMT_INGEST_DONE] = { "us_ingest_done",
        "UPDATE us_sessions SET ingest_state = 'done'"
        " WHERE id = %s AND ingest_state = 'running' AND ingest_owner = %s" },
    [US_STMT_INGEST_PENDING] = { "us_ingest_pending",
        "SELECT name, blob, size, file_ingestion_id, is_meta FROM us_uploads"
        " WHERE session_id = %s AND is_meta = 0 AND ingestion_status = 'PENDING'"
        " ORDER BY name LIMIT %d" },
    [US_STMT_INGEST_HELD] = { "us_ingest_held",
        "SELECT 1 FROM us_sessions WHERE id = %s AND ingest_state = 'running'"
        " AND ingest_owner = %s" },
    [US_STMT_UPLOAD_SET_STATE] = { "us_upload_set_state",
        /* the PENDING guard makes a replayed batch change nothing twice */
        "UPDATE us_uploads SET ingestion_status = %s, ingestion_reason = %s"
        " WHERE session_id = %s AND name = %s AND ingestion_status = 'PENDING'" },
    [US_STMT_SESSION_ADD_COUNTS] = { "us_session_add_counts",
        "UPDATE us_sessions SET finished_files = finished_files + %lld,"
        " failed_files = failed_files + %lld WHERE id = %s" },
    [US_STMT_WORKSPACE_FILE_INSERT] = { "us_workspace_file_insert",
        "INSERT INTO us_files (file_id, workspace, name, size, meta, created_at, session_id,"
        " characters) VALUES (%s, %s, %s, %lld, %s, %lld, %s, %lld)" },
    [US_STMT_WORKSPACE_FILE_IDS_BY_NAME] = { "us_workspace_file_ids_by_name",
        "SELECT file_id FROM us_files WHERE workspace = %s AND name = %s" },
    [US_STMT_WORKSPACE_FILE_DELETE] = { "us_workspace_file_delete",
        "DELETE FROM us_files WHERE file_id = %s" },
    [US_STMT_WORKSPACE_FILE_DELETE_IN_WS] = { "us_workspace_file_delete_in_ws",
        "DELETE FROM us_files WHERE workspace = %s AND file_id = %s" },
    [US_STMT_WORKSPACE_FILE_IDS_ALL] = { "us_workspace_file_ids_all",
        "SELECT file_id FROM us_files WHERE workspace = %s" },
    [US_STMT_FILE_TRASH_ADD] = { "us_file_trash_add",
        "INSERT INTO us_file_trash (file_id) VALUES (%s) ON CONFLICT (file_id) DO NOTHING" },
    [US_STMT_WORKSPACE_FILE_META_SWAP] = { "us_workspace_file_meta_swap",
        /* IS: NULL matches NULL */
        "UPDATE us_files SET meta = %s WHERE workspace = %s AND file_id = %s AND meta IS %s" },
    [US_STMT_FILE_TRASH_LIST] = { "us_file_trash_list",
        "SELECT file_id FROM us_file_trash LIMIT %d" },
    [US_STMT_FILE_TRASH_FORGET] = { "us_file_trash_forget",
        "DELETE FROM us_file_trash WHERE file_id = %s" },
    [US_STMT_WORKSPACE_FILE_GET] = { "us_workspace_file_get",
        "SELECT " WORKSPACE_FILE_COLS " FROM us_files WHERE workspace = %s AND file_id = %s" },
    [US_STMT_WORKSPACE_FILE_LIST] = { "us_workspace_file_list",
        /* instr(): a substring test with no LIKE wildcards to escape */
        "SELECT " WORKSPACE_FILE_COLS " FROM us_files WHERE workspace = %s AND instr(name, %s) > 0"
        " ORDER BY created_at DESC, file_id DESC LIMIT %lld" },
    [US_STMT_WORKSPACE_FILE_LIST_AFTER] = { "us_workspace_file_list_after",
        "SELECT " WORKSPACE_FILE_COLS " FROM us_files WHERE workspace = %s AND instr(name, %s) > 0"
        " AND (created_at < %lld OR (created_at = %lld AND file_id < %s))"
        " ORDER BY created_at DESC, file_id DESC LIMIT %lld" },
    [US_STMT_WORKSPACE_FILE_COUNT] = { "us_workspace_file_count",
        "SELECT COUNT(*) FROM us_files WHERE workspace = %s AND instr(name, %s) > 0" },
    [US_STMT_WEBHOOK_TARGETS_CLEAR] = { "us_webhook_targets_clear",
        "DELETE FROM us_webhook_targets" },
    [US_STMT_WEBHOOK_TARGET_ADD] = { "us_webhook_target_add",
        "INSERT OR IGNORE INTO us_webhook_targets (url) VALUES (%s)" },
    [US_STMT_WEBHOOK_DROP_UNLISTED] = { "us_webhook_drop_unlisted",
        "DELETE FROM us_webhook_outbox WHERE url NOT IN (SELECT url FROM us_webhook_targets)" },
    [US_STMT_WEBHOOK_CANDIDATE] = { "us_webhook_candidate",
        /* a read; the lease re-checks the row in the write */
        "SELECT id FROM us_webhook_outbox WHERE " WEBHOOK_DUE " ORDER BY next_at, id LIMIT 1" },
    [US_STMT_WEBHOOK_LEASE] = { "us_webhook_lease",
        "UPDATE us_webhook_outbox SET lease_owner = %s, lease_until = %lld"
        " WHERE id = %lld AND " WEBHOOK_DUE },
    [US_STMT_WEBHOOK_GET] = { "us_webhook_get",
        "SELECT " WEBHOOK_COLS " FROM us_webhook_outbox WHERE id = %lld" },
    [US_STMT_WEBHOOK_NEXT_PAGE] = { "us_webhook_next_page",
        "UPDATE us_webhook_outbox SET page = page + 1, attempts = 0, next_at = 0,"
        " last_error = NULL, last_attempt_at = NULL, lease_owner = NULL, lease_until = 0"
        " WHERE id = %lld AND lease_owner = %s AND page = %d" },
    [US_STMT_WEBHOOK_DONE] = { "us_webhook_done",
        "DELETE FROM us_webhook_outbox WHERE id = %lld AND lease_owner = %s AND page = %d" },
    [US_STMT_WEBHOOK_RETRY] = { "us_webhook_retry",
        "UPDATE us_webhook_outbox SET attempts = attempts + 1, next_at = %lld, last_error = %s,"
        " last_attempt_at = %lld, state = %s, lease_owner = NULL, lease_until = 0"
        " WHERE id = %lld AND lease_owner = %s" },
    [US_STMT_WEBHOOK_STATS] = { "us_webhook_stats",
        /* one statement: one snapshot */
        "SELECT (SELECT COUNT(*) FROM us_webhook_outbox WHERE state = 'pending'),"
        " (SELECT COUNT(*) FROM us_webhook_outbox WHERE state = 'failed'),"
        " (SELECT MIN(occurred_at) FROM us_webhook_outbox WHERE state = 'pending'),"
        " (SELECT last_error FROM us_webhook_outbox WHERE last_error IS NOT NULL"
        " ORDER BY last_attempt_at DESC, id DESC LIMIT 1),"
        " (SELECT MAX(last_attempt_at) FROM us_webhook_outbox WHERE last_error IS NOT NULL)" },
};

const char *us_sql_workspace_file_cols(void)
{
    return WORKSPACE_FILE_COLS;
}

const us_stmt_def *us_sql_statement(us_stmt_id id)
{
    return (id >= 0 && id < US_STMT__COUNT) ? &STATEMENTS[id] : NULL;
}

/*
 * us_sql.c - the SQLite backend's SQL text (pure). Another backend keeps
 * its own text beside its own code.
 *
 * Timestamps are integers: microseconds since the epoch, UTC.
 * A session's visible status is derived: an OPEN session past expires_at
 * reads as EXPIRED even before the expiry sweep has written it.
 * Reads, closes, aborts, uploads, the open-session limit and the overview
 * judge expires_at at the caller's `now` (a %lld argument): every node of
 * a SQLite store runs on its one machine, so that is the machine's clock,
 * as julianday('now') is; the PostgreSQL text judges by its server's.
 */
#include "us_sql.h"

#include <stddef.h>

/* Where a statement judges a session's expires_at: the caller's `now` (one
 * machine, one clock). */
#define JUDGED_NOW "%lld"

/* The sessions not cleared late yet (us_sessions_late_clear), in two
 * constants: SQLite tests an IN list of up to two by comparisons, a longer
 * one through an ephemeral b-tree it builds on every run of a statement
 * that evaluates the list - an insert into us_sessions evaluates every
 * partial index's condition. */
#define LATE_CLEAR_PENDING "direct NOT IN (0, 3)"

#include "../us_sql_shared.h"

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

const char US_SQL_META_TABLE[] = META_TABLE;
const char US_SQL_SCHEMA_VERSION_GET[] = SCHEMA_VERSION_GET;
const char US_SQL_SCHEMA_VERSION_SET[] = SCHEMA_VERSION_SET;

/* a negative cache_size is in KiB rather than pages */
const char US_SQL_CACHE_SIZE[] = "PRAGMA cache_size=-%d";

/* Migrations: MIGRATE_* is text both dialects share; the rest differs (WITHOUT ROWID, ids, triggers). */
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
    MIGRATE_SESSIONS_WS_CREATED,
    "CREATE INDEX us_sessions_user_open ON us_sessions (user_id, status, expires_at)",
    NULL
};

/* Uploads: one row per (session, name); the blob is the file's name on disk
 * under the session's directory, so a newer upload of the same name can be
 * published while the older blob is still in place. */
static const char *const MIGRATION_1_TO_2[] = {
    MIGRATE_UPLOADS,
    MIGRATE_UPLOADS_FILES,
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
    MIGRATE_SESSIONS_EXPIRY,
    MIGRATE_FILES,
    MIGRATE_FILES_WS_CREATED,
    MIGRATE_FILES_WS_NAME,
    NULL
};

/* The ingest claim's turn check probes these: a workspace's non-parallel
 * sessions by state and closing time. */
static const char *const MIGRATION_3_TO_4[] = {
    "CREATE INDEX us_sessions_turn ON us_sessions (workspace, parallel, ingest_state, closed_at)",
    MIGRATE_UPLOADS_PENDING,
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
    /* partial from here on (us_sql_shared.h) */
    "DROP INDEX us_sessions_ingest",
    MIGRATE_SESSIONS_INGEST,
    "DROP INDEX us_sessions_turn",
    MIGRATE_SESSIONS_TURN,
    NULL
};

/* A text file's length in characters, stored when it is ingested or
 * posted (NULL: not a text file, or one from before this column). */
static const char *const MIGRATION_5_TO_6[] = {
    MIGRATE_FILES_CHARACTERS,
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
    MIGRATE_WEBHOOK_DUE,
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

/* A random UUID (version 4) in SQL. MOD is the modulo operator as the
 * text is run: "%" in a migration (plain text), "%%" in a prepared
 * statement (apr_dbd reads % as a placeholder). */
#define SQL_UUID4(MOD)                                                         \
    "lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' ||"        \
    " substr(hex(randomblob(2)), 2) || '-' ||"                                 \
    " substr('89ab', 1 + (abs(random()) " MOD " 4), 1) ||"                     \
    " substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6)))"

/* Workspaces: a row per workspace that exists, created by the API
 * (created = 1) or by its first data (created = 0); the names that hold
 * data already get theirs here. */
static const char *const MIGRATION_7_TO_8[] = {
    "CREATE TABLE us_workspaces ("
    " name TEXT PRIMARY KEY,"
    " workspace_id TEXT NOT NULL UNIQUE,"
    " created_at BIGINT NOT NULL,"
    " created INTEGER NOT NULL) WITHOUT ROWID",
    "INSERT INTO us_workspaces (name, workspace_id, created_at, created)"
    " SELECT workspace, " SQL_UUID4("%") ", MIN(created_at), 0 FROM ("
    "SELECT workspace, created_at FROM us_sessions WHERE status <> 'ABORTED'"
    " UNION ALL SELECT workspace, created_at FROM us_files) GROUP BY workspace",
    NULL
};

/* The key table of GET /files?filter= counts (us_filter_sql.h): a row per
 * top-level key of a file's metadata object, with json_each's type and
 * atom, written by triggers in the transaction that writes the us_files
 * row. Its rows name the file by a number (us_file_nos; an INTEGER PRIMARY
 * KEY, kept by VACUUM): per-file probes on an integer key cost a fraction
 * of probes on the file_id text. INSERT OR IGNORE keeps a duplicate key's
 * first value, the one json_extract reads. */
/* A file whose metadata may have keys (the common `{}` and none skip the
 * triggers' work; a file gets its us_file_nos row with its first keys). */
#define HAS_KEYS(m) "(" m " IS NOT NULL AND " m " NOT IN ('{}', 'null'))"
#define FILE_KEYS_OF(f)                                                             \
    " INSERT OR IGNORE INTO us_file_keys (fno, key, workspace, t, v)"               \
    " SELECT (SELECT fno FROM us_file_nos WHERE file_id = " f ".file_id), key, "     \
    f ".workspace, type, CASE WHEN type IN ('integer', 'real', 'text') THEN atom END" \
    " FROM json_each(CASE WHEN json_valid(" f ".meta) THEN CASE WHEN json_type("      \
    f ".meta) = 'object' THEN " f ".meta END END);"
static const char *const MIGRATION_8_TO_9[] = {
    "CREATE TABLE us_file_nos (fno INTEGER PRIMARY KEY, file_id TEXT NOT NULL UNIQUE)",
    "CREATE TABLE us_file_keys ("
    " fno INTEGER NOT NULL,"
    " key TEXT NOT NULL,"
    " workspace TEXT NOT NULL,"
    " t TEXT NOT NULL,"                 /* json_each's type: null true false integer real text array object */
    " v,"                               /* integer, real, text: the atom; else NULL */
    " PRIMARY KEY (fno, key)) WITHOUT ROWID",
    "CREATE INDEX us_file_keys_value ON us_file_keys (workspace, key, t, v)",
    "INSERT INTO us_file_nos (file_id) SELECT file_id FROM us_files WHERE " HAS_KEYS("meta")
    " ORDER BY workspace, created_at",
    "INSERT OR IGNORE INTO us_file_keys (fno, key, workspace, t, v)"
    " SELECT n.fno, j.key, f.workspace, j.type,"
    " CASE WHEN j.type IN ('integer', 'real', 'text') THEN j.atom END"
    " FROM us_files f JOIN us_file_nos n ON n.file_id = f.file_id,"
    " json_each(CASE WHEN json_valid(f.meta) THEN CASE WHEN json_type(f.meta) = 'object'"
    " THEN f.meta END END) j",
    "CREATE TRIGGER us_file_keys_insert AFTER INSERT ON us_files WHEN " HAS_KEYS("NEW.meta") " BEGIN"
    " INSERT INTO us_file_nos (file_id) VALUES (NEW.file_id);" FILE_KEYS_OF("NEW") " END",
    "CREATE TRIGGER us_file_keys_update AFTER UPDATE OF meta, workspace ON us_files BEGIN"
    " DELETE FROM us_file_keys WHERE fno = (SELECT fno FROM us_file_nos WHERE file_id = OLD.file_id);"
    " INSERT OR IGNORE INTO us_file_nos (file_id) VALUES (NEW.file_id);" FILE_KEYS_OF("NEW") " END",
    "CREATE TRIGGER us_file_keys_delete AFTER DELETE ON us_files BEGIN"
    " DELETE FROM us_file_keys WHERE fno = (SELECT fno FROM us_file_nos WHERE file_id = OLD.file_id);"
    " DELETE FROM us_file_nos WHERE file_id = OLD.file_id; END",
    NULL
};

/* Direct uploads into the bucket: a session's `direct` (US_DIRECT_* of
 * us_store.h) and the ETag its listing recorded per upload. */
static const char *const MIGRATION_9_TO_10[] = {
    MIGRATE_SESSIONS_DIRECT,
    MIGRATE_UPLOADS_ETAG,
    NULL
};

/* The direct-upload sessions' last clear after expires_at: its queue. */
static const char *const MIGRATION_10_TO_11[] = {
    US_SQL_LATE_CLEAR_INDEX_DIRECT,
    NULL
};

/* The last clear of every session, the module's upload target's too. */
static const char *const MIGRATION_11_TO_12[] = {
    US_SQL_LATE_CLEAR_INDEX_DROP,
    US_SQL_LATE_CLEAR_INDEX,
    NULL
};

/* The ingest indexes hold only the sessions a worker may still take
 * (US_SQL_INGESTING): a session done at its close (no files) or after its
 * ingestion leaves them, so a close without files writes two b-trees fewer
 * (the queries name the condition to use them). */
static const char *const MIGRATION_12_TO_13[] = {
    "DROP INDEX us_sessions_ingest",
    "CREATE INDEX us_sessions_ingest ON us_sessions (ingest_state, closed_at)"
    " WHERE " US_SQL_INGESTING(""),
    "DROP INDEX us_sessions_turn",
    "CREATE INDEX us_sessions_turn ON us_sessions (workspace, parallel, ingest_state, closed_at)"
    " WHERE " US_SQL_INGESTING(""),
    NULL
};

/* The pending files are read through the primary key from the worker's
 * last name on: the index on the status cost a b-tree write per upload and
 * two per file ingested (its entry moves when the file is decided). */
static const char *const MIGRATION_13_TO_14[] = {
    "DROP INDEX us_uploads_pending",
    NULL
};

/* The last clear's queue on a condition without an IN list of three
 * (LATE_CLEAR_PENDING): the same rows, no b-tree built per insert. */
static const char *const MIGRATION_14_TO_15[] = {
    US_SQL_LATE_CLEAR_INDEX_DROP,
    "CREATE INDEX us_sessions_late_clear ON us_sessions (expires_at) WHERE " LATE_CLEAR_PENDING,
    NULL
};

/* us_sessions_expiry holds the OPEN sessions alone (what the expiry sweep,
 * the create's limit and the overview's open and unswept counts look for):
 * a close removes its entry and writes no other. The overview's CLOSED and
 * EXPIRED counts, which read that index, come from counters on the user's
 * row instead, which the same triggers keep on every status change. */
static const char *const MIGRATION_15_TO_16[] = {
    "ALTER TABLE us_user_open ADD COLUMN closed BIGINT NOT NULL DEFAULT 0",
    "ALTER TABLE us_user_open ADD COLUMN expired BIGINT NOT NULL DEFAULT 0",
    /* WHERE true: an upsert's SELECT needs one (SQLite's parser) */
    "INSERT INTO us_user_open (user_id, n, closed, expired)"
    " SELECT user_id, 0, SUM(status = 'CLOSED'), SUM(status = 'EXPIRED') FROM us_sessions"
    " WHERE true GROUP BY user_id"
    " ON CONFLICT (user_id) DO UPDATE SET closed = excluded.closed, expired = excluded.expired",
    "DROP TRIGGER us_user_open_insert",
    "CREATE TRIGGER us_user_open_insert AFTER INSERT ON us_sessions BEGIN"
    " INSERT INTO us_user_open (user_id, n, closed, expired) VALUES (NEW.user_id,"
    " NEW.status = 'OPEN', NEW.status = 'CLOSED', NEW.status = 'EXPIRED')"
    " ON CONFLICT (user_id) DO UPDATE SET n = n + excluded.n,"
    " closed = closed + excluded.closed, expired = expired + excluded.expired; END",
    "DROP TRIGGER us_user_open_update",
    "CREATE TRIGGER us_user_open_update AFTER UPDATE OF status ON us_sessions"
    " WHEN OLD.status <> NEW.status BEGIN"
    " UPDATE us_user_open SET n = n + (NEW.status = 'OPEN') - (OLD.status = 'OPEN'),"
    " closed = closed + (NEW.status = 'CLOSED') - (OLD.status = 'CLOSED'),"
    " expired = expired + (NEW.status = 'EXPIRED') - (OLD.status = 'EXPIRED')"
    " WHERE user_id = OLD.user_id; END",
    "DROP TRIGGER us_user_open_delete",
    "CREATE TRIGGER us_user_open_delete AFTER DELETE ON us_sessions BEGIN"
    " UPDATE us_user_open SET n = n - (OLD.status = 'OPEN'),"
    " closed = closed - (OLD.status = 'CLOSED'), expired = expired - (OLD.status = 'EXPIRED')"
    " WHERE user_id = OLD.user_id; END",
    "DROP INDEX us_sessions_expiry",
    /* status too, though constant: SQLite reads a partial index's own
     * condition from the table unless the index holds its column */
    "CREATE INDEX us_sessions_expiry ON us_sessions (status, expires_at) WHERE status = 'OPEN'",
    NULL
};

/* A workspace's files by creation time in ascending order: a new file's
 * entry goes at the right end of its workspace's range (of the b-tree, for
 * the newest workspace), where SQLite's split keeps pages full; descending,
 * each went in at the left end and the pages stayed half full. The newest
 * first are read backwards. */
static const char *const MIGRATION_16_TO_17[] = {
    "DROP INDEX us_files_ws_created",
    "CREATE INDEX us_files_ws_created ON us_files (workspace, created_at, file_id)",
    NULL
};

/* The webhook stats' last error and its time: the last entry of the rows
 * that hold one, not a scan of the outbox, whose failed rows stay. */
static const char *const MIGRATION_17_TO_18[] = {
    MIGRATE_WEBHOOK_LAST_ERROR,
    NULL
};

/* A session's sidecars counted as its raw files are, for the bound of
 * UploadSessionMaxFilesPerSession on them (us_upload_commit). */
static const char *const MIGRATION_18_TO_19[] = {
    MIGRATE_SESSIONS_SIDECARS,
    MIGRATE_SESSIONS_SIDECARS_COUNT,
    NULL
};

/* The refused publishes of an upload, for the bound on its tries. */
static const char *const MIGRATION_19_TO_20[] = {
    MIGRATE_UPLOADS_REFUSALS,
    NULL
};

/* The time before which a session requeued after a refusal is not claimed. */
static const char *const MIGRATION_20_TO_21[] = {
    MIGRATE_SESSIONS_NOT_BEFORE,
    NULL
};

/* The webhook URLs' circuit breaker (us_webhook_claim, us_webhook_retry). */
static const char *const MIGRATION_21_TO_22[] = {
    MIGRATE_WEBHOOK_TARGET_FAILURES,
    MIGRATE_WEBHOOK_TARGET_PAUSED,
    NULL
};

/* The claim's search by URL (us_webhook_claim): a paused URL's rows are
 * not read. */
static const char *const MIGRATION_22_TO_23[] = {
    MIGRATE_WEBHOOK_URL_DUE,
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
    case 7: return MIGRATION_7_TO_8;
    case 8: return MIGRATION_8_TO_9;
    case 9: return MIGRATION_9_TO_10;
    case 10: return MIGRATION_10_TO_11;
    case 11: return MIGRATION_11_TO_12;
    case 12: return MIGRATION_12_TO_13;
    case 13: return MIGRATION_13_TO_14;
    case 14: return MIGRATION_14_TO_15;
    case 15: return MIGRATION_15_TO_16;
    case 16: return MIGRATION_16_TO_17;
    case 17: return MIGRATION_17_TO_18;
    case 18: return MIGRATION_18_TO_19;
    case 19: return MIGRATION_19_TO_20;
    case 20: return MIGRATION_20_TO_21;
    case 21: return MIGRATION_21_TO_22;
    case 22: return MIGRATION_22_TO_23;
    default: return NULL;
    }
}


/* A session may be ingested now when it is queued (or its claim went stale)
 * and, unless it is parallel, no other non-parallel session of its
 * workspace is running nor queued ahead of it: one at a time, in closing
 * order. ("Running" matters on its own: an expiry sweep dates a session's
 * closing back to its expires_at, which may precede one already running.) */
/* (the IN, US_SQL_INGESTING's text, admits the partial us_sessions_ingest
 * and lets SQLite seek it for each of the two states) */
/* %lld, %lld: the caller's now (a requeued session waits for its
 * ingest_not_before), the heartbeat older than the lease */
#define CLAIMABLE(s)                                                              \
    "(" s ".closed_at IS NOT NULL AND " s ".ingest_state IN ('queued', 'running')" \
    " AND ((" s ".ingest_state = 'queued' AND " s ".ingest_not_before <= %lld)"    \
    " OR (" s ".ingest_state = 'running' AND " s ".ingest_heartbeat < %lld)))"

/* The statements both dialects share (us_sql_shared.h), then SQLite's own. */
#define STMT(id, name, sql) [US_STMT_##id] = { "us_" name, sql },

static const us_stmt_def STATEMENTS[US_STMT__COUNT] = {
    US_SQL_SHARED(STMT)
    [US_STMT_SESSION_OPEN_COUNT] = { "us_session_open_count",
        /* a user's open sessions: the counter less those past expires_at
         * the sweep has not reached yet (a range of us_sessions_expiry:
         * the few recently expired) */
        "SELECT coalesce((SELECT n FROM us_user_open WHERE user_id = %s), 0)"
        " - (SELECT COUNT(*) FROM us_sessions WHERE user_id = %s"
        " AND status = 'OPEN' AND expires_at <= %lld)" },
    [US_STMT_SESSION_INSERT] = { "us_session_insert",
        /* after us_session_open_count in the same write transaction. Not
         * one INSERT ... SELECT: a SELECT that reads us_sessions makes
         * SQLite copy its rows into an ephemeral table first */
        "INSERT INTO us_sessions (id, workspace, user_id, given_name, family_name,"
        " write_mode, parallel, status, created_at, expires_at, direct)"
        " VALUES (%s, %s, %s, %s, %s, %s, %d, 'OPEN', %lld, %lld, %d)" },
    [US_STMT_OVERVIEW] = { "us_store_overview",
        /* one statement: one snapshot. The open and the unswept expired
         * sessions are ranges of us_sessions_expiry (OPEN alone), the
         * closed and expired ones the users' counters (schema 16) */
        "SELECT (SELECT COUNT(*) FROM us_sessions WHERE status = 'OPEN'"
        " AND expires_at > " JUDGED_NOW "),"
        " (SELECT coalesce(SUM(closed), 0) FROM us_user_open),"
        " (SELECT coalesce(SUM(expired), 0) FROM us_user_open)"
        " + (SELECT COUNT(*) FROM us_sessions WHERE status = 'OPEN'"
        " AND expires_at <= " JUDGED_NOW "),"
        OVERVIEW_INGEST_COUNTS },
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
    [US_STMT_SESSION_HOLD_OPEN] = { "us_session_is_open",
        "SELECT 1 FROM us_sessions WHERE id = %s AND status = 'OPEN' AND expires_at > %lld" },
    [US_STMT_SESSIONS_EXPIRE] = { "us_sessions_expire",
        "UPDATE us_sessions SET status = 'EXPIRED', closed_at = expires_at,"
        " ingest_state = " INGEST_AFTER_CLOSE " WHERE status = 'OPEN' AND expires_at <= " DB_NOW_US },
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
    [US_STMT_INGEST_PENDING] = { "us_ingest_pending",
        /* the primary key from the worker's last name on (no index on the
         * status: its entries would move with every file decided); the
         * unary + keeps SQLite from choosing us_uploads_files and a sort */
        INGEST_PENDING_WHERE("+u.is_meta = 0 AND +u.ingestion_status = 'PENDING'") },
    [US_STMT_INGEST_REQUEUE_LATER] = { "us_ingest_requeue_later",
        /* judged by the caller's clock, as the claim is */
        "UPDATE us_sessions SET ingest_state = 'queued', ingest_owner = NULL,"
        " ingest_not_before = %lld + %lld"
        " WHERE id = %s AND ingest_state = 'running' AND ingest_owner = %s" },
    [US_STMT_INGEST_CLAIMED] = { "us_ingest_claimed",
        "SELECT " SESSION_COLS " FROM us_sessions WHERE id = %s AND ingest_state = 'running'"
        " AND ingest_owner = %s" },
    [US_STMT_INGEST_HEARTBEAT] = { "us_ingest_heartbeat",
        "UPDATE us_sessions SET ingest_heartbeat = %lld"
        " WHERE id = %s AND ingest_state = 'running' AND ingest_owner = %s" },
    [US_STMT_INGEST_HELD] = { "us_ingest_held",
        "SELECT 1 FROM us_sessions WHERE id = %s AND ingest_state = 'running'"
        " AND ingest_owner = %s" },
    [US_STMT_WORKSPACE_FILE_DELETE_IN_WS] = { "us_workspace_file_delete_in_ws",
        "DELETE FROM us_files WHERE workspace = %s AND file_id = %s" },
    [US_STMT_WORKSPACE_FILE_IDS_ALL] = { "us_workspace_file_ids_all",
        "SELECT file_id FROM us_files WHERE workspace = %s" },
    [US_STMT_FILE_TRASH_ADD] = { "us_file_trash_add",
        "INSERT INTO us_file_trash (file_id) VALUES (%s) ON CONFLICT (file_id) DO NOTHING" },
    [US_STMT_WORKSPACE_FILE_META_SWAP] = { "us_workspace_file_meta_swap",
        /* IS: NULL matches NULL */
        "UPDATE us_files SET meta = %s WHERE workspace = %s AND file_id = %s AND meta IS %s" },
    [US_STMT_WORKSPACE_FILE_LIST] = { "us_workspace_file_list",
        /* instr(): a substring test with no LIKE wildcards to escape */
        "SELECT " WORKSPACE_FILE_LIST_COLS " FROM us_files WHERE workspace = %s AND instr(name, %s) > 0"
        " ORDER BY created_at DESC, file_id DESC LIMIT %lld" },
    [US_STMT_WORKSPACE_FILE_LIST_AFTER] = { "us_workspace_file_list_after",
        "SELECT " WORKSPACE_FILE_LIST_COLS " FROM us_files WHERE workspace = %s AND instr(name, %s) > 0"
        " AND (created_at < %lld OR (created_at = %lld AND file_id < %s))"
        " ORDER BY created_at DESC, file_id DESC LIMIT %lld" },
    [US_STMT_WORKSPACE_FILE_COUNT] = { "us_workspace_file_count",
        "SELECT COUNT(*) FROM us_files WHERE workspace = %s AND instr(name, %s) > 0" },
    [US_STMT_WORKSPACE_ENSURE] = { "us_workspace_ensure",
        /* the first data of a workspace makes its row */
        "INSERT INTO us_workspaces (name, workspace_id, created_at, created)"
        " VALUES (%s, " SQL_UUID4("%%") ", %lld, 0) ON CONFLICT (name) DO NOTHING" },
    /* us_workspace_delete, in this order in one write transaction
     * (docs/design-workspaces.md) */
    [US_STMT_WORKSPACE_TRASH_FILES] = { "us_workspace_trash_files",
        "INSERT OR IGNORE INTO us_file_trash (file_id) SELECT file_id FROM us_files"
        " WHERE workspace = %s" },
    [US_STMT_WORKSPACE_FILES_DROP] = { "us_workspace_files_drop",
        "DELETE FROM us_files WHERE workspace = %s" },
    [US_STMT_WORKSPACE_TRASH_PENDING] = { "us_workspace_trash_pending",
        /* an ingestion may have published these under their ids already
         * and can no longer record them */
        "INSERT OR IGNORE INTO us_file_trash (file_id) SELECT u.file_ingestion_id"
        " FROM us_uploads u JOIN us_sessions s ON s.id = u.session_id"
        " WHERE s.workspace = %s AND s." VISIBLE " AND u.is_meta = 0"
        " AND u.ingestion_status = 'PENDING'" },
    [US_STMT_WORKSPACE_UPLOADS_DROP] = { "us_workspace_uploads_drop",
        "DELETE FROM us_uploads WHERE session_id IN (SELECT id FROM us_sessions"
        " WHERE workspace = %s AND " VISIBLE ")" },
    [US_STMT_WORKSPACE_SESSIONS_ABORT] = { "us_workspace_sessions_abort",
        /* as us_session_abort, whatever the state: read as absent, a running
         * claim lost, and a clear of the stored uploads queued unless the
         * ingestion had done it, claimable at once (a session waiting out
         * a refusal pause no longer waits: nothing is left to publish);
         * the open-session counter trigger frees the OPEN ones' slots */
        "UPDATE us_sessions SET status = 'ABORTED', closed_at = COALESCE(closed_at, %lld),"
        " ingest_state = CASE WHEN ingest_state = 'done' THEN 'done' ELSE 'queued' END,"
        " ingest_owner = NULL, ingest_not_before = 0, parallel = 1, uploaded_files = 0"
        " WHERE workspace = %s AND " VISIBLE },
    [US_STMT_WEBHOOK_TARGET_ADD] = { "us_webhook_target_add",
        "INSERT OR IGNORE INTO us_webhook_targets (url) VALUES (%s)" },
    [US_STMT_WEBHOOK_CANDIDATE] = { "us_webhook_candidate",
        /* a read; the lease re-checks the row in the write. The first due
         * row of each URL not paused (one range of us_webhook_url_due
         * each), the earliest of them: a paused URL's rows are not read,
         * however many are due (every row's URL is listed: the set's
         * replace drops the others') */
        "SELECT o.id FROM us_webhook_targets t JOIN us_webhook_outbox o ON o.id ="
        " (SELECT d.id FROM us_webhook_outbox d WHERE d.url = t.url AND d.state = 'pending'"
        " AND d.next_at <= %lld AND d.lease_until <= %lld ORDER BY d.next_at, d.id LIMIT 1)"
        " WHERE t.paused_until <= " JUDGED_NOW " ORDER BY o.next_at, o.id LIMIT 1" },
    [US_STMT_WEBHOOK_LEASE] = { "us_webhook_lease",
        "UPDATE us_webhook_outbox SET lease_owner = %s, lease_until = %lld"
        " WHERE id = %lld AND " WEBHOOK_DUE },
    [US_STMT_WEBHOOK_PROBE] = { "us_webhook_probe",
        /* after the lease, in its write: a URL that failed last is tried by
         * one attempt at a time, its other rows left until this one settles
         * (or its lease lapses) */
        "UPDATE us_webhook_targets SET paused_until = %lld WHERE failures > 0"
        " AND url = (SELECT url FROM us_webhook_outbox WHERE id = %lld)" },
    [US_STMT_WORKSPACE_OUTBOX_DROP] = { "us_workspace_outbox_drop",
        "DELETE FROM us_webhook_outbox WHERE workspace = %s" },
    [US_STMT_WEBHOOK_URL_STALE] = { "us_webhook_url_stale",
        WEBHOOK_URL_STALE_SET " WHERE " WEBHOOK_URL_STALE_ROWS },
    [US_STMT_WEBHOOK_GET] = { "us_webhook_get",
        "SELECT " WEBHOOK_COLS ", " WEBHOOK_URL_FAILURES("us_webhook_outbox")
        " FROM us_webhook_outbox WHERE id = %lld" },
    [US_STMT_WEBHOOK_FORGET_FAILED] = { "us_webhook_forget_failed",
        /* a failed row holds an error: us_webhook_last_error's range */
        "DELETE FROM us_webhook_outbox WHERE id IN (SELECT id FROM us_webhook_outbox"
        " WHERE last_error IS NOT NULL AND last_attempt_at < %lld AND state = 'failed'"
        " ORDER BY last_attempt_at, id LIMIT %d)" },
};

const char *us_sql_workspace_file_list_cols(void)
{
    return WORKSPACE_FILE_LIST_COLS;
}

const us_stmt_def *us_sql_statement(us_stmt_id id)
{
    return (id >= 0 && id < US_STMT__COUNT) ? &STATEMENTS[id] : NULL;
}

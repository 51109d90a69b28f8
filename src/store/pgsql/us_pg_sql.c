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

/* Where a statement judges a session's expires_at (reads, closes, aborts,
 * uploads, the open-session limit, the overview): the database's clock at
 * the statement's start, one verdict for all its rows (stable, so an index
 * range). The caller's `now` (its node's clock) stays bound, so both
 * dialects take one argument list, but only in a comment: its parameter
 * is declared (the driver's PREPARE lists every type) and never read, so
 * a node whose clock runs ahead or behind gets the same verdict as every
 * other. The epoch's numeric has six decimals: times a million it is
 * whole, no floor. The server builds this expression's state again at
 * every execution of a prepared statement: each node costs there. */
#define JUDGED_NOW                                                            \
    "((extract(epoch FROM statement_timestamp()) * 1000000)::bigint /* %lld */)"

#include "../us_sql_shared.h"

/* a migration may rewrite many rows (the key table's backfill): the other
 * migrators wait for it as long as it takes, not the connections' lock_timeout */
const char US_PG_SQL_MIGRATE_WAIT[] = "SET LOCAL lock_timeout = 0";
const char US_PG_SQL_MIGRATE_LOCK[] = "SELECT pg_advisory_xact_lock(" US_PG_LOCK_MIGRATE ")";
const char US_PG_SQL_META_TABLE[] = META_TABLE;
const char US_PG_SQL_SCHEMA_VERSION_GET[] = SCHEMA_VERSION_GET;
const char US_PG_SQL_SCHEMA_VERSION_SET[] = SCHEMA_VERSION_SET;

/* Migrations: MIGRATE_* is text both dialects share; the rest differs (BIGSERIAL, jsonb, plpgsql). */
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
    MIGRATE_SESSIONS_WS_CREATED,
    MIGRATE_SESSIONS_EXPIRY,
    "CREATE INDEX us_sessions_user_expiry ON us_sessions (user_id, expires_at)"
    " WHERE status = 'OPEN'",
    MIGRATE_SESSIONS_INGEST,
    MIGRATE_SESSIONS_TURN,
    /* each user's OPEN sessions, expired-but-unswept ones included; every
     * statement that opens or ends a session updates it in its transaction,
     * and a create takes its row lock before counting (the limit) */
    "CREATE TABLE us_user_open (user_id TEXT PRIMARY KEY, n BIGINT NOT NULL)",
    MIGRATE_UPLOADS,
    MIGRATE_UPLOADS_FILES,
    MIGRATE_UPLOADS_PENDING,
    MIGRATE_FILES,
    MIGRATE_FILES_WS_CREATED,
    MIGRATE_FILES_WS_NAME,
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
    MIGRATE_FILES_CHARACTERS,
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
    MIGRATE_WEBHOOK_DUE,
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

/* The key table of GET /files?filter= counts (us_filter_sql.h): a row per
 * top-level key of a file's metadata object - jsonb_typeof, a string's or
 * boolean's text, a number as numeric - written by a trigger in the
 * transaction that writes the us_files row. */
static const char *const MIGRATION_6_TO_7[] = {
    "CREATE TABLE us_file_keys ("
    " file_id TEXT NOT NULL,"
    " key TEXT NOT NULL,"
    " workspace TEXT NOT NULL,"
    " t TEXT NOT NULL,"                 /* jsonb_typeof */
    " s TEXT COLLATE \"C\","            /* string, boolean: the text */
    " n NUMERIC,"                       /* number */
    " PRIMARY KEY (file_id, key))",
    /* file_id included: a count reads the index alone (index-only scans) */
    "CREATE INDEX us_file_keys_s ON us_file_keys (workspace, key, t, s) INCLUDE (file_id)",
    "CREATE INDEX us_file_keys_n ON us_file_keys (workspace, key, n) INCLUDE (file_id)"
    " WHERE t = 'number'",
    "CREATE OR REPLACE FUNCTION us_file_keys_of(f us_files) RETURNS void LANGUAGE sql AS $$"
    " INSERT INTO us_file_keys (file_id, key, workspace, t, s, n)"
    " SELECT f.file_id, e.key, f.workspace, jsonb_typeof(e.value),"
    " CASE WHEN jsonb_typeof(e.value) IN ('string', 'boolean') THEN e.value #>> '{}' END,"
    " CASE WHEN jsonb_typeof(e.value) = 'number' THEN (e.value #>> '{}')::numeric END"
    " FROM jsonb_each(CASE WHEN jsonb_typeof(f.meta::jsonb) = 'object' THEN f.meta::jsonb"
    " ELSE '{}'::jsonb END) e $$",
    "INSERT INTO us_file_keys (file_id, key, workspace, t, s, n)"
    " SELECT f.file_id, e.key, f.workspace, jsonb_typeof(e.value),"
    " CASE WHEN jsonb_typeof(e.value) IN ('string', 'boolean') THEN e.value #>> '{}' END,"
    " CASE WHEN jsonb_typeof(e.value) = 'number' THEN (e.value #>> '{}')::numeric END"
    " FROM us_files f, jsonb_each(CASE WHEN jsonb_typeof(f.meta::jsonb) = 'object'"
    " THEN f.meta::jsonb ELSE '{}'::jsonb END) e",
    "CREATE OR REPLACE FUNCTION us_file_keys_sync() RETURNS trigger LANGUAGE plpgsql AS $$"
    " BEGIN"
    " IF TG_OP <> 'INSERT' THEN DELETE FROM us_file_keys WHERE file_id = OLD.file_id; END IF;"
    " IF TG_OP <> 'DELETE' THEN PERFORM us_file_keys_of(NEW); END IF;"
    " RETURN NULL;"
    " END $$",
    /* the common `{}` and none skip the function call on insert */
    "CREATE TRIGGER us_file_keys_insert AFTER INSERT ON us_files FOR EACH ROW"
    " WHEN (NEW.meta IS NOT NULL AND NEW.meta NOT IN ('{}', 'null'))"
    " EXECUTE FUNCTION us_file_keys_sync()",
    "CREATE TRIGGER us_file_keys_sync AFTER DELETE OR UPDATE OF meta, workspace"
    " ON us_files FOR EACH ROW EXECUTE FUNCTION us_file_keys_sync()",
    NULL
};

/* Direct uploads into the bucket: a session's `direct` (US_DIRECT_* of
 * us_store.h) and the ETag its listing recorded per upload. */
static const char *const MIGRATION_7_TO_8[] = {
    MIGRATE_SESSIONS_DIRECT,
    MIGRATE_UPLOADS_ETAG,
    NULL
};

/* The direct-upload sessions' last clear after expires_at: its queue. */
static const char *const MIGRATION_8_TO_9[] = {
    US_SQL_LATE_CLEAR_INDEX_DIRECT,
    NULL
};

/* The last clear of every session, the module's upload target's too. */
static const char *const MIGRATION_9_TO_10[] = {
    US_SQL_LATE_CLEAR_INDEX_DROP,
    US_SQL_LATE_CLEAR_INDEX,
    NULL
};

/* Session creates in one statement (US_STMT_SESSIONS_CREATE): one user's
 * creates in one workspace, arrays in the order they run, a row (the
 * 1-based position, the times stored) per create made; one missing is at
 * the limit. VOLATILE: under READ COMMITTED each statement inside takes a
 * new snapshot, so the take, after the counter row's lock, sees every
 * close and sweep of the user committed before it. The locks are those of
 * a create by statements, in the same order (the workspace's shared lock,
 * then the user's counter row). Times are the database's clock after the
 * lock (the one that judges expiry); p_now (the node's clock) dates a
 * workspace row this create makes. */
static const char *const MIGRATION_10_TO_11[] = {
    "CREATE OR REPLACE FUNCTION us_sessions_create(p_workspace text, p_user text,"
    " p_ids text[], p_given text[], p_family text[], p_modes text[], p_parallel int[],"
    " p_lifetimes bigint[], p_direct int[], p_max bigint[], p_now bigint[])"
    " RETURNS TABLE (o_pos int, o_created bigint, o_expires bigint)"
    " LANGUAGE plpgsql VOLATILE AS $$"
    " DECLARE t bigint; made boolean := false;"
    " BEGIN"
    "  PERFORM pg_advisory_xact_lock_shared(" US_PG_LOCK_WORKSPACE_CLASS ", hashtext(p_workspace));"
    "  INSERT INTO us_user_open AS u (user_id, n) VALUES (p_user, 0)"
    "   ON CONFLICT (user_id) DO UPDATE SET n = u.n;"
    "  FOR k IN 1 .. cardinality(p_ids) LOOP"
    "   t := floor(extract(epoch FROM clock_timestamp()) * 1000000)::bigint;"
    "   UPDATE us_user_open u SET n = u.n + 1 WHERE u.user_id = p_user"
    "    AND u.n - (SELECT COUNT(*) FROM us_sessions s WHERE s.user_id = p_user"
    "    AND s.status = 'OPEN' AND s.expires_at <= t) < p_max[k];"
    "   CONTINUE WHEN NOT FOUND;"
    "   INSERT INTO us_sessions (id, workspace, user_id, given_name, family_name,"
    "    write_mode, parallel, status, created_at, expires_at, direct)"
    "    VALUES (p_ids[k], p_workspace, p_user, p_given[k], p_family[k], p_modes[k],"
    "    p_parallel[k], 'OPEN', t, t + p_lifetimes[k], p_direct[k]);"
    "   IF NOT made THEN"
    "    INSERT INTO us_workspaces (name, workspace_id, created_at, created)"
    "     VALUES (p_workspace, gen_random_uuid()::text, p_now[k], 0) ON CONFLICT (name) DO NOTHING;"
    "    made := true;"
    "   END IF;"
    "   o_pos := k; o_created := t; o_expires := t + p_lifetimes[k];"
    "   RETURN NEXT;"
    "  END LOOP;"
    " END $$",
    NULL
};

/* Names sort and compare by their bytes, as in SQLite and the module's
 * own sorts (strcmp), whatever the database's collation: the name columns
 * that lists order by and cursors compare are COLLATE "C" (PostgreSQL
 * rebuilds their indexes). */
static const char *const MIGRATION_11_TO_12[] = {
    "ALTER TABLE us_uploads ALTER COLUMN name TYPE text COLLATE \"C\"",
    "ALTER TABLE us_files ALTER COLUMN name TYPE text COLLATE \"C\"",
    "ALTER TABLE us_workspaces ALTER COLUMN name TYPE text COLLATE \"C\"",
    NULL
};

/* The overview's CLOSED and EXPIRED counts come from counters on the
 * user's row (as SQLite's, schema 16), kept by the statements that change
 * a session's status, where counting the rows read every session ever
 * ended; the outbox's last error is a seek of its failed rows' index. */
static const char *const MIGRATION_12_TO_13[] = {
    "ALTER TABLE us_user_open ADD COLUMN closed BIGINT NOT NULL DEFAULT 0,"
    " ADD COLUMN expired BIGINT NOT NULL DEFAULT 0",
    "INSERT INTO us_user_open AS u (user_id, n, closed, expired)"
    " SELECT user_id, 0, COUNT(*) FILTER (WHERE status = 'CLOSED'),"
    " COUNT(*) FILTER (WHERE status = 'EXPIRED') FROM us_sessions GROUP BY user_id"
    " ON CONFLICT (user_id) DO UPDATE SET closed = excluded.closed, expired = excluded.expired",
    MIGRATE_WEBHOOK_LAST_ERROR,
    NULL
};

/* A session's sidecars counted as its raw files are, for the bound of
 * UploadSessionMaxFilesPerSession on them (us_upload_commit). */
static const char *const MIGRATION_13_TO_14[] = {
    MIGRATE_SESSIONS_SIDECARS,
    MIGRATE_SESSIONS_SIDECARS_COUNT,
    NULL
};

/* The refused publishes of an upload, for the bound on its tries. */
static const char *const MIGRATION_14_TO_15[] = {
    MIGRATE_UPLOADS_REFUSALS,
    NULL
};

/* The time before which a session requeued after a refusal is not claimed. */
static const char *const MIGRATION_15_TO_16[] = {
    MIGRATE_SESSIONS_NOT_BEFORE,
    NULL
};

/* The key table's index holds a key and a string's text, and a btree
 * entry must fit in a third of a page (2,704 bytes): a top-level string of
 * a few KiB (a summary, say) failed the file's insert (POST /files 500, an
 * ingest batch retried for ever). Longer strings are kept with s NULL (a
 * filter then reads the file's own value: us_pg_filter.c), and keys longer
 * than a filter can name are not kept (us_filter_count_sql counts rows). */
static const char *const MIGRATION_16_TO_17[] = {
    "CREATE OR REPLACE FUNCTION us_file_keys_of(f us_files) RETURNS void LANGUAGE sql AS $$"
    " INSERT INTO us_file_keys (file_id, key, workspace, t, s, n)"
    " SELECT f.file_id, e.key, f.workspace, jsonb_typeof(e.value),"
    " CASE WHEN jsonb_typeof(e.value) IN ('string', 'boolean')"
    " AND octet_length(e.value #>> '{}') <= " US_FILTER_SQL_NUM(US_FILTER_KEY_TEXT_MAX) " THEN e.value #>> '{}' END,"
    " CASE WHEN jsonb_typeof(e.value) = 'number' THEN (e.value #>> '{}')::numeric END"
    " FROM jsonb_each(CASE WHEN jsonb_typeof(f.meta::jsonb) = 'object' THEN f.meta::jsonb"
    " ELSE '{}'::jsonb END) e WHERE octet_length(e.key) <= " US_FILTER_SQL_NUM(US_FILTER_KEY_NAME_MAX) " $$",
    NULL
};

/* The webhook URLs' circuit breaker (us_webhook_claim, us_webhook_retry). */
static const char *const MIGRATION_17_TO_18[] = {
    MIGRATE_WEBHOOK_TARGET_FAILURES,
    MIGRATE_WEBHOOK_TARGET_PAUSED,
    NULL
};

/* The claim's search by URL (us_webhook_claim): a paused URL's rows are
 * not read. */
static const char *const MIGRATION_18_TO_19[] = {
    MIGRATE_WEBHOOK_URL_DUE,
    NULL
};

/* An event's rows and its URLs' rows cannot part: the trigger takes each
 * listed URL's shared lock (US_PG_LOCK_WEBHOOK_URL_CLASS, in url order, as
 * a startup drops them) before it writes, and writes for the URLs listed
 * once it holds them (its INSERT a statement after the locks: it sees a
 * drop committed while it waited), and a URL's drop takes that lock
 * exclusive before it locks the URL's rows (US_STMT_WEBHOOK_URL_DROP_LOCK),
 * so it waits for the events in flight and deletes their rows, where an
 * event that had read the URL before the drop deleted it wrote a row the
 * drop never saw, left pending for ever (the claim walks the listed URLs).
 * That is the outbox trigger's function of schema 20 on; AFTER_LOOP runs
 * once the listed URLs are locked and in `urls` (with AFTER_LOOP "" the
 * text is migration 20's, which must not change). */
#define WEBHOOK_EVENT_FUNCTION(AFTER_LOOP) \
    "CREATE OR REPLACE FUNCTION us_webhook_event() RETURNS trigger LANGUAGE plpgsql AS $$" \
    " DECLARE u text; urls text[] := '{}';" \
    " BEGIN" \
    "  FOR u IN SELECT url FROM us_webhook_targets ORDER BY url LOOP" \
    "   PERFORM pg_advisory_xact_lock_shared(" US_PG_LOCK_WEBHOOK_URL_CLASS ", hashtext(u));" \
    "   urls := urls || u;" \
    "  END LOOP;" \
    AFTER_LOOP \
    "  IF OLD.status = 'OPEN' AND NEW.status = 'EXPIRED' THEN" \
    "   INSERT INTO us_webhook_outbox (event, session_id, workspace, url, occurred_at," \
    "    uploaded_files, finished_files, failed_files)" \
    "   SELECT 'session.expired', NEW.id, NEW.workspace, url, NEW.expires_at," \
    "    NEW.uploaded_files, NEW.finished_files, NEW.failed_files FROM us_webhook_targets" \
    "   WHERE url = ANY(urls) ON CONFLICT DO NOTHING;" \
    "  END IF;" \
    "  IF OLD.ingest_state <> 'done' AND NEW.ingest_state = 'done'" \
    "     AND NEW.status <> 'ABORTED' THEN" \
    "   INSERT INTO us_webhook_outbox (event, session_id, workspace, url, occurred_at," \
    "    uploaded_files, finished_files, failed_files)" \
    "   SELECT 'session.ingested', NEW.id, NEW.workspace, url," \
    "    floor(extract(epoch FROM transaction_timestamp()) * 1000000)::bigint," \
    "    NEW.uploaded_files, NEW.finished_files, NEW.failed_files FROM us_webhook_targets" \
    "   WHERE url = ANY(urls) ON CONFLICT DO NOTHING;" \
    "  END IF;" \
    "  RETURN NULL;" \
    " END $$"

/* The trigger that takes its URLs' locks; the rows a race of an event and a
 * drop left go. */
static const char *const MIGRATION_19_TO_20[] = {
    WEBHOOK_EVENT_FUNCTION(""),
    "DELETE FROM us_webhook_outbox WHERE url NOT IN (SELECT url FROM us_webhook_targets)",
    NULL
};

/* Every close of a session without files, and every ingested or expired
 * session, fires the trigger; with no URL listed it returns before its
 * INSERTs, which would write nothing but are planned and run, a large
 * share of the function's cost (BENCHMARKS.md). */
static const char *const MIGRATION_20_TO_21[] = {
    WEBHOOK_EVENT_FUNCTION("  IF cardinality(urls) = 0 THEN RETURN NULL; END IF;"),
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
    default: return NULL;
    }
}



/* The database's clock in microseconds since the epoch: leases and the
 * expiry sweep are written and judged by it alone, so nodes' clocks may
 * disagree. */
#define DB_NOW_US "floor(extract(epoch FROM clock_timestamp()) * 1000000)::bigint"
/* JUDGED_NOW with no argument: where a statement judges again by the same
 * clock (a row locked checked once more), or writes by it (a lease) */
#define STATEMENT_NOW "(extract(epoch FROM statement_timestamp()) * 1000000)::bigint"

/* %lld: the lease in microseconds; a requeued session waits for its
 * ingest_not_before */
#define CLAIMABLE(s)                                                              \
    "(" s ".closed_at IS NOT NULL AND " s ".ingest_state IN ('queued', 'running')" \
    " AND ((" s ".ingest_state = 'queued' AND " s ".ingest_not_before <= " DB_NOW_US ")" \
    " OR (" s ".ingest_state = 'running' AND " s ".ingest_heartbeat < " DB_NOW_US " - %lld)))"

/* The statements that change several users' counter rows (the expiry
 * sweep, a workspace delete) lock them in user_id order first, as they
 * lock their sessions in id order: two of them sharing users wait one for
 * the other, never each for the other (a deadlock the server breaks).
 * UPDATE has no ORDER BY: a CTE, lu, selects the rows ORDER BY user_id
 * FOR NO KEY UPDATE (the UPDATE's own lock), and the UPDATE joins to it.
 * A locking CTE is never inlined, and its LockRows node sits above what
 * gives the ORDER BY's order (a Sort, or a path already in it: the
 * primary key's index, a sorted GROUP BY; EXPLAIN shows each under
 * nested-loop, hash and merge joins), so it locks the rows in that order
 * as it emits them; the UPDATE changes only rows joined to one emitted,
 * locked by then. Every session of the statement is locked before the
 * first of them: lu joins the counts, a GROUP BY over every session
 * changed. */
#define USER_ROWS_LOCKED "ORDER BY u.user_id FOR NO KEY UPDATE OF u"

/* The statements both dialects share (us_sql_shared.h), then PostgreSQL's own. */
#define STMT(id, name, sql) [US_STMT_##id] = { "us_pg_" name, sql },

static const us_stmt_def STATEMENTS[US_STMT__COUNT] = {
    US_SQL_SHARED(STMT)
    [US_STMT_SESSIONS_CREATE] = { "us_pg_sessions_create",
        /* the workspace, the user, then each column of the creates as an
         * array literal (us_sessions_create: the migration 9 -> 10) */
        "SELECT o_pos, o_created, o_expires FROM us_sessions_create(%s, %s, %s::text[],"
        " %s::text[], %s::text[], %s::text[], %s::int[], %s::bigint[], %s::int[],"
        " %s::bigint[], %s::bigint[])" },
    [US_STMT_SESSIONS_GET] = { "us_pg_sessions_get",
        /* SESSION_GET for several (workspace, id) pairs, given as two
         * array literals: each row the session's columns, then its pair's
         * position (1-based); a pair that names no visible session has no row */
        "SELECT " SESSION_COLS ", q.i FROM unnest(%s::text[], %s::text[]) WITH ORDINALITY"
        " AS q(ws, sid, i) JOIN us_sessions ON workspace = q.ws AND id = q.sid WHERE " VISIBLE },
    [US_STMT_OVERVIEW] = { "us_pg_store_overview",
        /* one statement: one snapshot. The open and the unswept expired
         * sessions are ranges of us_sessions_expiry, the queue's counts of
         * us_sessions_ingest, the closed and expired ones the users'
         * counters (schema 13) */
        "SELECT (SELECT COUNT(*) FROM us_sessions WHERE status = 'OPEN'"
        " AND expires_at > " JUDGED_NOW "),"
        " (SELECT coalesce(SUM(closed), 0) FROM us_user_open),"
        " (SELECT coalesce(SUM(expired), 0) FROM us_user_open)"
        " + (SELECT COUNT(*) FROM us_sessions WHERE status = 'OPEN'"
        " AND expires_at <= " JUDGED_NOW "),"
        OVERVIEW_INGEST_COUNTS },
    [US_STMT_SESSION_CLOSE] = { "us_pg_session_close",
        /* the row lock and the status re-check make one close win */
        /* closed_at on the database's clock: it orders serial ingestion
         * across nodes */
        "WITH c AS (UPDATE us_sessions SET status = 'CLOSED', closed_at = " JUDGED_NOW ","
        " ingest_state = " INGEST_AFTER_CLOSE
        " WHERE workspace = %s AND id = %s AND status = 'OPEN' AND expires_at > " JUDGED_NOW
        " RETURNING user_id)"
        /* the user's counter row is there (the create made it): one row
         * changed when the session was */
        " UPDATE us_user_open u SET n = u.n - 1, closed = u.closed + 1"
        " FROM c WHERE u.user_id = c.user_id" },
    [US_STMT_SESSION_HOLD_OPEN] = { "us_pg_session_lock_open",
        /* an upload holds its session's row until it commits: the close
         * (an UPDATE of that row) waits for it, or it sees the close */
        "SELECT 1 FROM us_sessions WHERE id = %s AND status = 'OPEN' AND expires_at > " JUDGED_NOW
        " FOR NO KEY UPDATE" },
    [US_STMT_NODE_CLAIM] = { "us_pg_node_claim",
        /* a concurrent claim of the same name waits for this one's row and
         * then judges it: one of them is granted */
        "INSERT INTO us_nodes (name, instance, host, pid, heartbeat)"
        " VALUES (%s, %s, %s, %lld, " DB_NOW_US ")"
        " ON CONFLICT (name) DO UPDATE SET instance = excluded.instance,"
        " host = excluded.host, pid = excluded.pid, heartbeat = excluded.heartbeat"
        " WHERE us_nodes.instance = excluded.instance OR us_nodes.instance = %s"
        " OR us_nodes.heartbeat < excluded.heartbeat - %lld"
        " RETURNING 1" },
    [US_STMT_NODE_HOLDER] = { "us_pg_node_holder",
        "SELECT instance, host, pid, " DB_NOW_US " - heartbeat FROM us_nodes WHERE name = %s" },
    [US_STMT_NODE_HEARTBEAT] = { "us_pg_node_heartbeat",
        "UPDATE us_nodes SET heartbeat = " DB_NOW_US " WHERE name = %s AND instance = %s" },
    [US_STMT_SWEEP_LOCK] = { "us_pg_sweep_lock",
        /* one sweeper at a time across nodes; the others skip their turn */
        "SELECT CASE WHEN pg_try_advisory_xact_lock(" US_PG_LOCK_SWEEP ") THEN 1 ELSE 0 END" },
    [US_STMT_SESSIONS_EXPIRE] = { "us_pg_sessions_expire",
        /* the sessions locked in id order, as a workspace delete locks its
         * own (US_STMT_WORKSPACE_SESSIONS_ABORT): of a sweep and a delete of
         * a workspace with expired sessions in it one waits for the other,
         * never each for the other (the expiry index gives them oldest
         * first, the delete's index newest first) */
        "WITH l AS (SELECT id FROM us_sessions WHERE status = 'OPEN'"
        " AND expires_at <= " DB_NOW_US " ORDER BY id FOR UPDATE),"
        " e AS (UPDATE us_sessions s SET status = 'EXPIRED', closed_at = s.expires_at,"
        " ingest_state = " INGEST_AFTER_CLOSE
        " FROM l WHERE s.id = l.id AND s.status = 'OPEN' RETURNING s.user_id),"
        /* then the users' counter rows, in user_id order (USER_ROWS_LOCKED) */
        " c AS (SELECT user_id, COUNT(*) AS k FROM e GROUP BY user_id),"
        " lu AS (SELECT u.user_id, c.k FROM us_user_open u JOIN c ON u.user_id = c.user_id"
        " " USER_ROWS_LOCKED "),"
        " d AS (UPDATE us_user_open u SET n = u.n - lu.k, expired = u.expired + lu.k"
        " FROM lu WHERE u.user_id = lu.user_id RETURNING 1)"
        " SELECT COUNT(*) FROM e" },
    [US_STMT_INGEST_CANDIDATE] = { "us_pg_ingest_candidate",
        /* a row another claimer is deciding on is skipped, not waited for */
        "SELECT s.id, s.workspace, s.parallel FROM us_sessions s WHERE " CLAIMABLE("s")
        " AND " IN_TURN("s") " ORDER BY s.closed_at, s.id LIMIT 1 FOR UPDATE OF s SKIP LOCKED" },
    [US_STMT_TURN_LOCK] = { "us_pg_turn_lock",
        /* one claimer of a workspace's non-parallel sessions at a time */
        "SELECT CASE WHEN pg_try_advisory_xact_lock(" US_PG_LOCK_TURN_CLASS ", hashtext(%s))"
        " THEN 1 ELSE 0 END" },
    [US_STMT_IN_TURN] = { "us_pg_in_turn",
        "SELECT 1 FROM us_sessions s WHERE s.id = %s AND " IN_TURN("s") },
    [US_STMT_INGEST_CLAIM] = { "us_pg_ingest_claim",
        "UPDATE us_sessions SET ingest_state = 'running', ingest_owner = %s,"
        " ingest_heartbeat = " DB_NOW_US " WHERE id = %s RETURNING " SESSION_COLS },
    [US_STMT_INGEST_REQUEUE_LATER] = { "us_pg_ingest_requeue_later",
        /* the database's clock, as the claim judges it; the caller's now
         * is bound (one argument list for both dialects), not read */
        "UPDATE us_sessions SET ingest_state = 'queued', ingest_owner = NULL,"
        " ingest_not_before = " DB_NOW_US " /* %lld */ + %lld"
        " WHERE id = %s AND ingest_state = 'running' AND ingest_owner = %s" },
    [US_STMT_INGEST_HEARTBEAT] = { "us_pg_ingest_heartbeat",
        "UPDATE us_sessions SET ingest_heartbeat = " DB_NOW_US
        " WHERE id = %s AND ingest_state = 'running' AND ingest_owner = %s" },
    [US_STMT_INGEST_PENDING] = { "us_pg_ingest_pending",
        /* a range of us_uploads_pending */
        INGEST_PENDING_WHERE("u.is_meta = 0 AND u.ingestion_status = 'PENDING'") },
    [US_STMT_INGEST_HELD] = { "us_pg_claim_held",
        /* fencing: the batch commits only while its worker holds the claim;
         * the share lock keeps a takeover waiting until it has */
        "SELECT 1 FROM us_sessions WHERE id = %s AND ingest_state = 'running'"
        " AND ingest_owner = %s FOR SHARE" },
    [US_STMT_LATE_CLEAR_MARK_ALL] = { "us_pg_late_clear_mark_all",
        /* LATE_CLEAR_MARK's guard per row: a row marked before is left out */
        "UPDATE us_sessions SET direct = CASE direct WHEN 4 THEN 0 ELSE 3 END"
        " WHERE id = ANY(%s::text[]) AND direct IN (1, 2, 4)" },
    [US_STMT_INGEST_APPLY_BATCH] = { "us_pg_ingest_apply_batch",
        /* US_STMT_UPLOAD_SET_STATE and US_STMT_WORKSPACE_FILE_INSERT for
         * every file of the batch, and the counters, in one round trip; the
         * PENDING guard decides per file as there, and us_files' triggers
         * fire per row as there */
        "WITH r AS (SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[],"
        " %s::bigint[], %s::text[], %s::bigint[], %s::bigint[])"
        " AS r (name, status, reason, file_id, size, meta, characters, created_at)),"
        " u AS (UPDATE us_uploads x SET ingestion_status = r.status, ingestion_reason = r.reason"
        " FROM r WHERE x.session_id = %s AND x.name = r.name AND x.ingestion_status = 'PENDING'"
        " RETURNING r.*),"
        " f AS (INSERT INTO us_files (file_id, workspace, name, size, meta, created_at,"
        " session_id, characters) SELECT file_id, %s, name, size, meta, created_at, %s,"
        " characters FROM u WHERE status = 'FINISHED'),"
        " n AS (SELECT COUNT(*) FILTER (WHERE status = 'FINISHED') AS finished,"
        " COUNT(*) FILTER (WHERE status <> 'FINISHED') AS failed FROM u)"
        " UPDATE us_sessions SET finished_files = finished_files + n.finished,"
        " failed_files = failed_files + n.failed FROM n"
        " WHERE id = %s AND n.finished + n.failed > 0" },
    [US_STMT_NAME_LOCK] = { "us_pg_name_lock",
        /* deciders about one name of a workspace (FAIL check, OVERWRITE)
         * take turns until commit */
        "SELECT 1 FROM (SELECT pg_advisory_xact_lock(hashtextextended(%s || '/' || %s, 0))) l" },
    [US_STMT_WORKSPACE_FILE_LIST] = { "us_pg_workspace_file_list",
        /* strpos(): a substring test with no LIKE wildcards to escape */
        "SELECT " WORKSPACE_FILE_LIST_COLS " FROM us_files WHERE workspace = %s"
        " AND strpos(name, %s) > 0 ORDER BY created_at DESC, file_id DESC LIMIT %lld" },
    [US_STMT_WORKSPACE_FILE_LIST_AFTER] = { "us_pg_workspace_file_list_after",
        "SELECT " WORKSPACE_FILE_LIST_COLS " FROM us_files WHERE workspace = %s"
        " AND strpos(name, %s) > 0"
        " AND (created_at < %lld OR (created_at = %lld AND file_id < %s))"
        " ORDER BY created_at DESC, file_id DESC LIMIT %lld" },
    [US_STMT_WORKSPACE_FILE_COUNT] = { "us_pg_workspace_file_count",
        "SELECT COUNT(*) FROM us_files WHERE workspace = %s AND strpos(name, %s) > 0" },
    [US_STMT_SESSION_ABORT] = { "us_pg_session_abort",
        /* as the close: the row lock and the status re-check make one of
         * them win; ABORTED reads as absent, queued (and parallel: it holds
         * nobody's turn) so an ingest worker clears its stored uploads */
        "WITH c AS (UPDATE us_sessions SET status = 'ABORTED', closed_at = " JUDGED_NOW ","
        " ingest_state = 'queued', parallel = 1, uploaded_files = 0"
        " WHERE workspace = %s AND id = %s AND status = 'OPEN' AND expires_at > " JUDGED_NOW
        " RETURNING user_id)"
        /* the user's counter row is there (the create made it): one row
         * changed when the session was */
        " UPDATE us_user_open u SET n = u.n - 1 FROM c WHERE u.user_id = c.user_id" },
    [US_STMT_WORKSPACE_FILE_DELETE_ONE] = { "us_pg_workspace_file_delete_one",
        "WITH d AS (DELETE FROM us_files WHERE workspace = %s AND file_id = %s RETURNING file_id),"
        " t AS (INSERT INTO us_file_trash (file_id) SELECT file_id FROM d"
        " ON CONFLICT (file_id) DO NOTHING)"
        " SELECT file_id FROM d" },
    [US_STMT_WORKSPACE_FILES_DELETE_NAME] = { "us_pg_workspace_files_delete_name",
        "WITH d AS (DELETE FROM us_files WHERE workspace = %s AND name = %s RETURNING file_id),"
        " t AS (INSERT INTO us_file_trash (file_id) SELECT file_id FROM d"
        " ON CONFLICT (file_id) DO NOTHING)"
        " SELECT file_id FROM d" },
    [US_STMT_WORKSPACE_FILES_DELETE_ALL] = { "us_pg_workspace_files_delete_all",
        "WITH d AS (DELETE FROM us_files WHERE workspace = %s RETURNING file_id),"
        " t AS (INSERT INTO us_file_trash (file_id) SELECT file_id FROM d"
        " ON CONFLICT (file_id) DO NOTHING)"
        " SELECT file_id FROM d" },
    [US_STMT_WORKSPACE_FILE_META_SWAP] = { "us_pg_workspace_file_meta_swap",
        "UPDATE us_files SET meta = %s WHERE workspace = %s AND file_id = %s"
        " AND meta IS NOT DISTINCT FROM %s" },
    [US_STMT_WEBHOOK_TARGET_ADD] = { "us_pg_webhook_target_add",
        "INSERT INTO us_webhook_targets (url) VALUES (%s) ON CONFLICT (url) DO NOTHING" },
    [US_STMT_WEBHOOK_CLAIM] = { "us_pg_webhook_claim",
        /* SKIP LOCKED: concurrent claimers take different rows; the row a
         * claimer locks is re-checked on its latest version (a lease that
         * committed meanwhile excludes it) */
        /* the lease (%lld: its length) is written and judged by the
         * database's clock, so nodes whose clocks disagree never hold a
         * row at once (the caller's now stays bound, unread) */
        /* a row of a paused URL is not due; a URL that failed last is
         * paused for the lease of the row taken (probe): one attempt at a
         * time, its other rows left until this one settles. Two claimers
         * that both read the URL as unpaused before either committed each
         * take a row of it (READ COMMITTED): a rare second probe, accepted
         * (locking the URL's row would serialise every URL's claims) */
        /* the candidates, read without a lock: the first due row of each
         * URL not paused (one range of us_webhook_url_due each, by their
         * primary key then), a paused URL's rows not read, however many
         * are due (every row's URL is listed: the set's replace drops the
         * others'). Then the earliest of them that no other claimer holds
         * is locked, the later ones only while the earlier are held: the
         * lock sits under the LIMIT, so the row taken is the one locked,
         * and a concurrent claimer takes another URL's first row, not a
         * later row of a URL whose first is being taken. The due checks
         * again on the row locked: its latest version (a lease committed
         * since the read excludes it) */
        "WITH c AS (UPDATE us_webhook_outbox SET lease_owner = %s, lease_until ="
        " " STATEMENT_NOW " + %lld"
        " WHERE id = (SELECT r.id FROM us_webhook_outbox r WHERE r.id = ANY(ARRAY("
        "SELECT o.id FROM us_webhook_targets t CROSS JOIN LATERAL"
        " (SELECT d.id FROM us_webhook_outbox d WHERE d.url = t.url"
        " AND d.state = 'pending' AND d.next_at <= " JUDGED_NOW
        " AND d.lease_until <= " JUDGED_NOW " ORDER BY d.next_at, d.id LIMIT 1) o"
        " WHERE t.paused_until <= " JUDGED_NOW "))"
        " AND r.state = 'pending' AND r.next_at <= " STATEMENT_NOW
        " AND r.lease_until <= " STATEMENT_NOW
        " ORDER BY r.next_at, r.id LIMIT 1 FOR UPDATE SKIP LOCKED)"
        " RETURNING *),"
        " probe AS (UPDATE us_webhook_targets t SET paused_until = c.lease_until FROM c"
        " WHERE t.url = c.url AND t.failures > 0)"
        " SELECT " WEBHOOK_COLS ", " WEBHOOK_URL_FAILURES("c") " FROM c" },
    [US_STMT_WEBHOOK_URL_STALE] = { "us_pg_webhook_url_stale",
        /* SKIP LOCKED: this settle holds its own row, and waiting for
         * another of the URL's (held by its settle, a claim, or a drop of
         * the URL or of its workspace, which lock several) could close a
         * cycle; a row skipped is failed by a later failure if still stale */
        WEBHOOK_URL_STALE_SET " WHERE id IN (SELECT id FROM us_webhook_outbox WHERE "
        WEBHOOK_URL_STALE_ROWS " FOR UPDATE SKIP LOCKED)" },
    [US_STMT_WEBHOOK_URL_DROP_LOCK] = { "us_pg_webhook_url_drop_lock",
        /* a URL dropped from the set: the events in flight that write a
         * row for it (the outbox trigger holds the URL's lock shared)
         * committed before the drop locks the URL's rows, which then sees
         * theirs (a statement after this one), and no event writes one
         * after (the trigger waits, then finds the URL gone: MIGRATION_19_TO_20) */
        "SELECT 1 FROM (SELECT pg_advisory_xact_lock(" US_PG_LOCK_WEBHOOK_URL_CLASS
        ", hashtext(%s))) l" },
    [US_STMT_WEBHOOK_URL_ROWS_LOCK] = { "us_pg_webhook_url_rows_lock",
        /* a URL dropped from the set: its rows locked before its row, as
         * a claim and a settle lock a row before its URL's; in id order,
         * as a workspace delete's (the other statements that take several
         * skip a locked row) */
        "SELECT 1 FROM us_webhook_outbox WHERE url = %s ORDER BY id FOR UPDATE" },
    [US_STMT_WEBHOOK_FORGET_FAILED] = { "us_pg_webhook_forget_failed",
        /* a failed row holds an error: us_webhook_last_error's range.
         * SKIP LOCKED: nodes sweeping at once delete different rows, none
         * waits for another's batch */
        "DELETE FROM us_webhook_outbox WHERE id IN (SELECT id FROM us_webhook_outbox"
        " WHERE last_error IS NOT NULL AND last_attempt_at < %lld AND state = 'failed'"
        " ORDER BY last_attempt_at, id LIMIT %d FOR UPDATE SKIP LOCKED)" },
    [US_STMT_WORKSPACE_ENSURE] = { "us_pg_workspace_ensure",
        /* the first data of a workspace makes its row */
        "INSERT INTO us_workspaces (name, workspace_id, created_at, created)"
        " VALUES (%s, gen_random_uuid()::text, %lld, 0) ON CONFLICT (name) DO NOTHING" },
    [US_STMT_WORKSPACE_LOCK_SHARED] = { "us_pg_workspace_lock_shared",
        /* writers that add data to a workspace do not wait for one another,
         * only for its delete */
        "SELECT 1 FROM (SELECT pg_advisory_xact_lock_shared(" US_PG_LOCK_WORKSPACE_CLASS
        ", hashtext(%s))) l" },
    [US_STMT_WORKSPACE_LOCK] = { "us_pg_workspace_lock",
        "SELECT 1 FROM (SELECT pg_advisory_xact_lock(" US_PG_LOCK_WORKSPACE_CLASS
        ", hashtext(%s))) l" },
    /* us_workspace_delete, after US_STMT_WORKSPACE_LOCK, in this order: the
     * sessions' rows first (an upload commit or ingest batch holding one
     * is waited for), then the rest, each statement seeing what they
     * committed */
    [US_STMT_WORKSPACE_SESSIONS_ABORT] = { "us_pg_workspace_sessions_abort",
        /* as US_STMT_SESSION_ABORT, whatever the state: read as absent, a
         * running claim lost, a clear of the stored uploads queued unless
         * the ingestion had done it, claimable at once (a session waiting
         * out a refusal pause no longer waits: nothing is left to
         * publish), the OPEN ones' slots freed; locked in id order, as the
         * expiry sweep locks its sessions */
        "WITH c AS (UPDATE us_sessions s SET status = 'ABORTED',"
        " closed_at = COALESCE(s.closed_at, %lld),"
        " ingest_state = CASE WHEN s.ingest_state = 'done' THEN 'done' ELSE 'queued' END,"
        " ingest_owner = NULL, ingest_not_before = 0, parallel = 1, uploaded_files = 0"
        " FROM (SELECT id, status AS was FROM us_sessions WHERE workspace = %s AND " VISIBLE
        " ORDER BY id FOR UPDATE) o WHERE s.id = o.id RETURNING s.user_id, o.was),"
        /* then the users' counter rows, in user_id order (USER_ROWS_LOCKED) */
        " k AS (SELECT user_id, COUNT(*) FILTER (WHERE was = 'OPEN') AS n,"
        " COUNT(*) FILTER (WHERE was = 'CLOSED') AS closed,"
        " COUNT(*) FILTER (WHERE was = 'EXPIRED') AS expired FROM c GROUP BY user_id),"
        " lu AS (SELECT u.user_id, k.n, k.closed, k.expired FROM us_user_open u"
        " JOIN k ON u.user_id = k.user_id " USER_ROWS_LOCKED "),"
        " d AS (UPDATE us_user_open u SET n = u.n - lu.n, closed = u.closed - lu.closed,"
        " expired = u.expired - lu.expired FROM lu WHERE u.user_id = lu.user_id RETURNING 1)"
        " SELECT COUNT(*) FROM c" },
    [US_STMT_WORKSPACE_FILES_DROP] = { "us_pg_workspace_files_drop",
        "WITH d AS (DELETE FROM us_files WHERE workspace = %s RETURNING file_id),"
        " t AS (INSERT INTO us_file_trash (file_id) SELECT file_id FROM d"
        " ON CONFLICT (file_id) DO NOTHING)"
        " SELECT file_id FROM d" },
    [US_STMT_WORKSPACE_TRASH_PENDING] = { "us_pg_workspace_trash_pending",
        /* an ingestion may have published these under their ids already
         * and can no longer record them (sessions ABORTED just before) */
        "INSERT INTO us_file_trash (file_id) SELECT u.file_ingestion_id"
        " FROM us_uploads u JOIN us_sessions s ON s.id = u.session_id"
        " WHERE s.workspace = %s AND u.is_meta = 0 AND u.ingestion_status = 'PENDING'"
        " ON CONFLICT (file_id) DO NOTHING" },
    [US_STMT_WORKSPACE_UPLOADS_DROP] = { "us_pg_workspace_uploads_drop",
        "DELETE FROM us_uploads WHERE session_id IN (SELECT id FROM us_sessions"
        " WHERE workspace = %s)" },
    [US_STMT_WORKSPACE_OUTBOX_DROP] = { "us_pg_workspace_outbox_drop",
        /* in id order, as a dropped URL's rows are locked
         * (US_STMT_WEBHOOK_URL_ROWS_LOCK): of the two, one may wait for the
         * other, never each for the other */
        "DELETE FROM us_webhook_outbox WHERE id IN (SELECT id FROM us_webhook_outbox"
        " WHERE workspace = %s ORDER BY id FOR UPDATE)" },
    [US_STMT_FILE_TRASH_ADD] = { "us_pg_file_trash_add",
        "INSERT INTO us_file_trash (file_id) VALUES (%s) ON CONFLICT (file_id) DO NOTHING" },
};

const char *us_pg_sql_workspace_file_list_cols(void)
{
    return WORKSPACE_FILE_LIST_COLS;
}

const us_stmt_def *us_pg_sql_statement(us_stmt_id id)
{
    return (id >= 0 && id < US_STMT__COUNT) ? &STATEMENTS[id] : NULL;
}

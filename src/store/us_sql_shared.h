/*
 * us_sql_shared.h - the SQL text the dialects share (pure text): the column
 * lists and conditions both dialects build on, one macro per family of
 * statements, and US_SQL_SHARED, every statement whose text is the same in
 * both. A dialect's SQL file (sqlite/us_sql.c, pgsql/us_pg_sql.c) maps these
 * ids with X(id, name, sql) and adds the statements of its own.
 *
 * A dialect defines JUDGED_NOW before including this header: the time a
 * session's expires_at is judged against, binding the caller's `now` (one
 * %lld) whether it uses it or not, so both dialects take one argument list.
 */
#ifndef US_SQL_SHARED_H
#define US_SQL_SHARED_H

#ifndef JUDGED_NOW
#error "a dialect defines JUDGED_NOW before including us_sql_shared.h"
#endif

#define SESSION_COLS                                                          \
    "id, workspace, user_id, given_name, family_name, write_mode, parallel, " \
    "CASE WHEN status = 'OPEN' AND expires_at <= " JUDGED_NOW " THEN 'EXPIRED' " \
    "ELSE status END, created_at, expires_at, uploaded_files, "               \
    "finished_files, failed_files, direct, COALESCE(closed_at, 0)"

/* A session may be ingested now, unless it is parallel, when no other
 * non-parallel session of its workspace is running nor queued ahead of it:
 * one at a time, in closing order. ("Running" matters on its own: an expiry
 * sweep dates a session's closing back to its expires_at, which may precede
 * one already running.) A running session keeps the turn it has, whatever
 * was queued ahead of it since: its lapsed lease is taken over, else
 * neither would ever be in turn again. Two NOT EXISTS, each an index probe
 * on us_sessions_turn (one OR-ed subquery made SQLite scan the workspace
 * for every queued session). */
#define IN_TURN(s)                                                                \
    "(" s ".parallel = 1 OR (NOT EXISTS (SELECT 1 FROM us_sessions e"             \
    " WHERE e.workspace = " s ".workspace AND e.parallel = 0"                     \
    " AND e.ingest_state = 'running' AND e.closed_at IS NOT NULL"                 \
    " AND " US_SQL_INGESTING("e.")                                                \
    " AND e.id <> " s ".id)"                                                      \
    " AND (" s ".ingest_state = 'running' OR NOT EXISTS (SELECT 1 FROM us_sessions q" \
    " WHERE q.workspace = " s ".workspace AND q.parallel = 0"                     \
    " AND q.ingest_state = 'queued' AND q.closed_at IS NOT NULL"                  \
    " AND " US_SQL_INGESTING("q.")                                                \
    " AND (q.closed_at < " s ".closed_at"                                         \
    " OR (q.closed_at = " s ".closed_at AND q.id < " s ".id))))))"

/* Uploads and the close take turns (SQLite's write lock, PostgreSQL's row
 * lock), so the count is final here. Sidecars alone (uploaded_files counts
 * raw files) give no file either. A direct-upload session's files are known
 * only once the ingest worker lists the bucket. */
#define INGEST_AFTER_CLOSE \
    "(CASE WHEN uploaded_files = 0 AND direct IN (0, 4) THEN 'done' ELSE 'queued' END)"

/* The columns an item of a session list shows (API.md): no workspace (the
 * list's own), no counters */
#define SESSION_ITEM_COLS                                                     \
    "id, user_id, given_name, family_name, write_mode, parallel, "            \
    "CASE WHEN status = 'OPEN' AND expires_at <= " JUDGED_NOW " THEN 'EXPIRED' " \
    "ELSE status END, created_at, expires_at"

#define WORKSPACE_FILE_COLS "file_id, name, size, meta, created_at, characters"
/* A list's columns: WORKSPACE_FILE_COLS with metadata longer than
 * LIST_META_INLINE characters left out (NULL) and a seventh column saying
 * so (1), for the caller to read it per file: a page of rows then never
 * holds a hundred times the 1 MiB a file may carry. */
#define LIST_META_INLINE "16384"
#define WORKSPACE_FILE_LIST_COLS                                                  \
    "file_id, name, size, CASE WHEN length(meta) <= " LIST_META_INLINE " THEN meta END," \
    " created_at, characters, CASE WHEN length(meta) > " LIST_META_INLINE " THEN 1 ELSE 0 END"

#define WEBHOOK_COLS                                                              \
    "id, event, session_id, workspace, url, occurred_at, uploaded_files, finished_files," \
    " failed_files, page, attempts"
/* The circuit breaker of a row's URL (us_webhook_targets, alias o for the
 * outbox row): its failed attempts in a row, for the claimer (the pause
 * after one more failure), and whether it is not paused at the time
 * judged (JUDGED_NOW: its one %lld). */
#define WEBHOOK_URL_FAILURES(o) \
    "COALESCE((SELECT t.failures FROM us_webhook_targets t WHERE t.url = " o ".url), 0)"
#define WEBHOOK_URL_OPEN(o)                                                      \
    "NOT EXISTS (SELECT 1 FROM us_webhook_targets t WHERE t.url = " o ".url" \
    " AND t.paused_until > " JUDGED_NOW ")"
/* The end of a failing URL's pause, from failures (its count before this
 * failure): now plus the first pause doubled once per failure before this
 * one, the longest pause from a number of doublings on (the shift stays
 * far inside 64 bits). Its arguments: now, that number, the longest, the
 * first. */
#define WEBHOOK_URL_PAUSE_END \
    "(%lld + CASE WHEN failures >= %d THEN %lld ELSE %lld << failures END)"
/* A failing URL's rows past the retry time (us_webhook_retry's stale
 * rows), but for the settling row and those leased (their own attempt
 * settles them). Its arguments: the URL, the settling row, the oldest
 * event time kept, the time judged. Each dialect's
 * US_STMT_WEBHOOK_URL_STALE fails them with the URL's latest error. */
#define WEBHOOK_URL_STALE_ROWS                                                 \
    "url = %s AND id <> %lld AND state = 'pending' AND occurred_at < %lld" \
    " AND lease_until <= " JUDGED_NOW
#define WEBHOOK_URL_STALE_SET \
    "UPDATE us_webhook_outbox SET state = 'failed', last_error = %s, last_attempt_at = %lld"
#define WEBHOOK_DUE                                                             \
    "state = 'pending' AND next_at <= %lld AND lease_until <= %lld AND " \
    WEBHOOK_URL_OPEN("us_webhook_outbox")

#define IS_EXPIRED "(status = 'EXPIRED' OR (status = 'OPEN' AND expires_at <= " JUDGED_NOW "))"
#define NOT_EXPIRED "(status = 'CLOSED' OR (status = 'OPEN' AND expires_at > " JUDGED_NOW "))"
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

/* A page of a list and the count of the whole list in one statement (one
 * round trip, one snapshot): the page's rows with the count in a last
 * column, or for an empty page one row of the count alone, its other
 * columns NULL. The count's arguments come first. `order` repeats the
 * page's order on its columns: a join does not keep the page's order. */
#define COUNTED_PAGE(count, page, order) \
    "SELECT lp.*, lc.n FROM (" count ") lc LEFT JOIN (" page ") lp ON 1 = 1 ORDER BY " order

/* The family of a workspace's session lists: one filter (VISIBLE,
 * IS_EXPIRED, NOT_EXPIRED), paged by tail (LIST_TAIL, AFTER_TAIL), or
 * backwards (BEFORE_TAIL) */
#define SESSION_PAGE(filter, tail) \
    "SELECT " SESSION_ITEM_COLS " FROM us_sessions WHERE workspace = %s AND " filter tail
#define SESSION_COUNT(filter) \
    "SELECT COUNT(*) AS n FROM us_sessions WHERE workspace = %s AND " filter
#define SESSION_LIST(filter, tail)                                          \
    COUNTED_PAGE(SESSION_COUNT(filter), SESSION_PAGE(filter, tail),         \
                 "lp.created_at DESC, lp.id DESC")
#define SESSION_BACK(filter)                                                \
    COUNTED_PAGE(SESSION_COUNT(filter), SESSION_PAGE(filter, BEFORE_TAIL),  \
                 "lp.created_at, lp.id")
/* ... and of a session's files: every file, or those of one status; the
 * page's rows carry their uploaded_at after SESSION_FILE_COLS, for the order */
#define FILE_ALL ""
#define FILE_STATUS " AND ingestion_status = %s"
#define FILE_PAGE(filter, tail)                                             \
    "SELECT " SESSION_FILE_COLS ", uploaded_at FROM us_uploads"             \
    " WHERE session_id = %s AND is_meta = 0" filter tail
#define FILE_PAGE_TAIL " ORDER BY uploaded_at, name LIMIT %lld OFFSET %lld"
#define FILE_COUNT(filter) \
    "SELECT COUNT(*) AS n FROM us_uploads WHERE session_id = %s AND is_meta = 0" filter
#define FILE_LIST(filter, tail) \
    COUNTED_PAGE(FILE_COUNT(filter), FILE_PAGE(filter, tail), "lp.uploaded_at, lp.name")
#define FILE_BACK(filter)                                                   \
    COUNTED_PAGE(FILE_COUNT(filter), FILE_PAGE(filter, FILE_BEFORE_TAIL),   \
                 "lp.uploaded_at DESC, lp.name DESC")

/* A session's pending raw uploads after a name, by name, each with its
 * sidecar's blob (NULL: none; ".meta.json" is US_META_SUFFIX): a
 * primary-key probe per row, not a statement per file. `pending` is the
 * dialect's condition on is_meta and ingestion_status. */
#define INGEST_PENDING_WHERE(pending)                                                       \
    "SELECT u.name, u.blob, u.size, u.file_ingestion_id, u.etag, m.blob FROM us_uploads u"  \
    " LEFT JOIN us_uploads m ON m.session_id = u.session_id"                                \
    " AND m.name = u.name || '.meta.json'"                                                  \
    " WHERE u.session_id = %s AND u.name > %s AND " pending " ORDER BY u.name LIMIT %d"

/* Migration to SQLite schema 11 / PostgreSQL 9: the direct-upload
 * sessions whose prefix is not cleared late yet; replaced by the next */
#define US_SQL_LATE_CLEAR_INDEX_DIRECT \
    "CREATE INDEX us_sessions_late_clear ON us_sessions (expires_at) WHERE direct IN (1, 2)"
/* Migration to SQLite schema 12 / PostgreSQL 10: the sessions whose
 * uploads are not cleared late yet, direct or of the upload target
 * (us_late_clear_due); those made before stay out */
#define US_SQL_LATE_CLEAR_INDEX_DROP "DROP INDEX us_sessions_late_clear"
#define US_SQL_LATE_CLEAR_INDEX \
    "CREATE INDEX us_sessions_late_clear ON us_sessions (expires_at) WHERE direct IN (1, 2, 4)"
/* us_sessions_late_clear's condition, which its queries repeat (a partial
 * index serves a query whose WHERE implies the index's). A dialect may
 * define its own before including this header: SQLite's (schema 15)
 * avoids an IN list of three constants, which SQLite tests through an
 * ephemeral b-tree built on every statement that evaluates it - every
 * session insert. */
#ifndef LATE_CLEAR_PENDING
#define LATE_CLEAR_PENDING "direct IN (1, 2, 4)"
#endif

/* The store overview's ingest counts (queued, running, the oldest queued
 * closing), its last three columns in both dialects: each a range of the
 * ingest index. The session counts before them are each dialect's. */
#define OVERVIEW_INGEST_COUNTS                                                               \
    " (SELECT COUNT(*) FROM us_sessions WHERE ingest_state = 'queued'"                       \
    " AND closed_at IS NOT NULL AND " US_SQL_INGESTING("") "),"                               \
    " (SELECT COUNT(*) FROM us_sessions WHERE ingest_state = 'running'"                      \
    " AND closed_at IS NOT NULL AND " US_SQL_INGESTING("") "),"                               \
    " (SELECT MIN(closed_at) FROM us_sessions WHERE ingest_state IN ('queued', 'running')"   \
    " AND closed_at IS NOT NULL)"

#define US_SQL_SHARED(X)                                                                      \
    X(SESSION_GET, "session_get",                                                             \
      "SELECT " SESSION_COLS " FROM us_sessions WHERE workspace = %s AND id = %s AND " VISIBLE) \
    X(UPLOADS_DISCARD, "uploads_discard",                                                     \
      "DELETE FROM us_uploads WHERE session_id = %s")                                         \
    X(SESSION_LIST_ALL, "session_list_all", SESSION_LIST(VISIBLE, LIST_TAIL))                 \
    X(SESSION_LIST_EXPIRED, "session_list_expired", SESSION_LIST(IS_EXPIRED, LIST_TAIL))      \
    X(SESSION_LIST_ACTIVE, "session_list_active", SESSION_LIST(NOT_EXPIRED, LIST_TAIL))       \
    X(SESSION_AFTER_ALL, "session_after_all", SESSION_LIST(VISIBLE, AFTER_TAIL))              \
    X(SESSION_AFTER_EXPIRED, "session_after_expired", SESSION_LIST(IS_EXPIRED, AFTER_TAIL))   \
    X(SESSION_AFTER_ACTIVE, "session_after_active", SESSION_LIST(NOT_EXPIRED, AFTER_TAIL))    \
    X(SESSION_BEFORE_ALL, "session_before_all", SESSION_BACK(VISIBLE))                        \
    X(SESSION_BEFORE_EXPIRED, "session_before_expired", SESSION_BACK(IS_EXPIRED))             \
    X(SESSION_BEFORE_ACTIVE, "session_before_active", SESSION_BACK(NOT_EXPIRED))              \
    X(SESSION_BY_ID, "session_by_id",                                                         \
      "SELECT " SESSION_COLS " FROM us_sessions WHERE id = %s AND " VISIBLE)                  \
    X(UPLOAD_BLOB_GET, "upload_blob_get",                                                     \
      "SELECT blob FROM us_uploads WHERE session_id = %s AND name = %s")                      \
    X(UPLOAD_INSERT, "upload_insert",                                                         \
      "INSERT INTO us_uploads (session_id, name, blob, size, sha256, is_meta,"                \
      " uploaded_at, file_ingestion_id) VALUES (%s, %s, %s, %lld, %s, %d, %lld, %s)")         \
    X(UPLOAD_REPLACE, "upload_replace",                                                       \
      "UPDATE us_uploads SET blob = %s, size = %lld, sha256 = %s, uploaded_at = %lld"         \
      " WHERE session_id = %s AND name = %s")                                                 \
    X(SESSION_COUNT_UPLOAD, "session_count_upload",                                           \
      "UPDATE us_sessions SET uploaded_files = uploaded_files + 1 WHERE id = %s")             \
    X(SESSION_UPLOADED, "session_uploaded",                                                   \
      "SELECT uploaded_files FROM us_sessions WHERE id = %s")                                 \
    X(SESSION_COUNT_SIDECAR, "session_count_sidecar",                                         \
      "UPDATE us_sessions SET uploaded_sidecars = uploaded_sidecars + 1 WHERE id = %s")       \
    X(SESSION_SIDECARS, "session_sidecars",                                                   \
      "SELECT uploaded_sidecars FROM us_sessions WHERE id = %s")                              \
    X(FILES_LIST_ALL, "session_files_list_all", FILE_LIST(FILE_ALL, FILE_PAGE_TAIL))          \
    X(FILES_LIST_STATUS, "session_files_list_status", FILE_LIST(FILE_STATUS, FILE_PAGE_TAIL)) \
    X(FILES_AFTER_ALL, "session_files_after_all", FILE_LIST(FILE_ALL, FILE_AFTER_TAIL))       \
    X(FILES_AFTER_STATUS, "session_files_after_status", FILE_LIST(FILE_STATUS, FILE_AFTER_TAIL)) \
    X(FILES_BEFORE_ALL, "session_files_before_all", FILE_BACK(FILE_ALL))                      \
    X(FILES_BEFORE_STATUS, "session_files_before_status", FILE_BACK(FILE_STATUS))             \
    /* the partial us_sessions_ingest's conditions named: a seek, not a scan */              \
    X(INGEST_RUNNING, "ingest_running",                                                       \
      "SELECT id, ingest_owner FROM us_sessions WHERE closed_at IS NOT NULL AND "             \
      US_SQL_INGESTING("") " AND ingest_state = 'running'")                                   \
    X(INGEST_REQUEUE, "ingest_requeue",                                                       \
      "UPDATE us_sessions SET ingest_state = 'queued', ingest_owner = NULL"                   \
      " WHERE id = %s AND ingest_state = 'running' AND ingest_owner = %s")                    \
    X(INGEST_DONE, "ingest_done",                                                             \
      "UPDATE us_sessions SET ingest_state = 'done'"                                          \
      " WHERE id = %s AND ingest_state = 'running' AND ingest_owner = %s")                    \
    X(UPLOAD_SET_STATE, "upload_set_state",                                                   \
      /* the PENDING guard makes a replayed batch change nothing twice */                     \
      "UPDATE us_uploads SET ingestion_status = %s, ingestion_reason = %s"                    \
      " WHERE session_id = %s AND name = %s AND ingestion_status = 'PENDING'")                \
    X(SESSION_ADD_COUNTS, "session_add_counts",                                               \
      "UPDATE us_sessions SET finished_files = finished_files + %lld,"                        \
      " failed_files = failed_files + %lld WHERE id = %s")                                    \
    X(UPLOAD_REFUSED, "upload_refused",                                                       \
      "UPDATE us_uploads SET publish_refusals = publish_refusals + 1"                         \
      " WHERE session_id = %s AND name = %s AND ingestion_status = 'PENDING'")                \
    X(UPLOAD_REFUSALS, "upload_refusals",                                                     \
      "SELECT publish_refusals FROM us_uploads WHERE session_id = %s AND name = %s")          \
    X(LISTING_MARK, "listing_mark",                                                           \
      /* the guard makes exactly one listing the session's (PostgreSQL: a                     \
       * second caller waits for the first one's row lock, then finds 2) */                   \
      "UPDATE us_sessions SET direct = 2 WHERE id = %s AND direct = 1 AND status <> 'ABORTED'") \
    X(LISTED_INSERT, "listed_insert",                                                         \
      "INSERT INTO us_uploads (session_id, name, blob, size, sha256, is_meta,"                \
      " uploaded_at, file_ingestion_id, etag) VALUES (%s, %s, %s, %lld, '', %d, %lld, %s, %s)") \
    X(LISTED_COUNT, "listed_count",                                                           \
      "UPDATE us_sessions SET uploaded_files = %lld WHERE id = %s")                           \
    X(LATE_CLEAR_DUE, "late_clear_due",                                                       \
      /* a range of us_sessions_late_clear, whose rows are the sessions not                   \
       * cleared late yet: the recent ones, whatever the number of sessions */                \
      "SELECT id, expires_at FROM us_sessions WHERE " LATE_CLEAR_PENDING                      \
      " AND ingest_state = 'done' AND expires_at <= " JUDGED_NOW " - %lld"                    \
      " AND (expires_at > %lld OR (expires_at = %lld AND id > %s))"                           \
      " ORDER BY expires_at, id LIMIT %d")                                                    \
    X(LATE_CLEAR_MARK, "late_clear_mark",                                                     \
      "UPDATE us_sessions SET direct = CASE direct WHEN 4 THEN 0 ELSE 3 END"                  \
      " WHERE id = %s AND " LATE_CLEAR_PENDING)                                               \
    X(WORKSPACE_FILE_INSERT, "workspace_file_insert",                                         \
      "INSERT INTO us_files (file_id, workspace, name, size, meta, created_at, session_id,"   \
      " characters) VALUES (%s, %s, %s, %lld, %s, %lld, %s, %lld)")                           \
    X(WORKSPACE_FILE_IDS_BY_NAME, "workspace_file_ids_by_name",                               \
      "SELECT file_id FROM us_files WHERE workspace = %s AND name = %s")                      \
    X(WORKSPACE_FILE_DELETE, "workspace_file_delete",                                         \
      "DELETE FROM us_files WHERE file_id = %s")                                              \
    X(FILE_TRASH_LIST, "file_trash_list",                                                     \
      "SELECT file_id FROM us_file_trash LIMIT %d")                                           \
    X(FILE_TRASH_FORGET, "file_trash_forget",                                                 \
      "DELETE FROM us_file_trash WHERE file_id = %s")                                         \
    X(FILE_ID_REFERENCED, "file_id_referenced",                                               \
      /* two primary-key reads; the uploads' scan only when both find nothing */              \
      "SELECT 1 FROM us_files WHERE file_id = %s"                                             \
      " UNION ALL SELECT 1 FROM us_file_trash WHERE file_id = %s"                             \
      " UNION ALL SELECT 1 FROM us_uploads WHERE file_ingestion_id = %s"                      \
      " AND ingestion_status = 'PENDING' LIMIT 1")                                            \
    X(SWEEP_TURN_GET, "sweep_turn_get", "SELECT value FROM us_meta WHERE name = %s")          \
    X(SWEEP_TURN_ADD, "sweep_turn_add",                                                       \
      "INSERT INTO us_meta (name, value) VALUES (%s, '0 ') ON CONFLICT (name) DO NOTHING")    \
    X(SWEEP_TURN_SET, "sweep_turn_set",                                                       \
      /* a compare-and-swap: of concurrent takers exactly one changes it */                   \
      "UPDATE us_meta SET value = %s WHERE name = %s AND value = %s")                         \
    X(WORKSPACE_FILE_GET, "workspace_file_get",                                               \
      "SELECT " WORKSPACE_FILE_COLS " FROM us_files WHERE workspace = %s AND file_id = %s")   \
    X(WORKSPACE_CREATE, "workspace_create",                                                   \
      "INSERT INTO us_workspaces (name, workspace_id, created_at, created)"                   \
      " VALUES (%s, %s, %lld, 1) ON CONFLICT (name) DO NOTHING")                              \
    X(WORKSPACE_GET, "workspace_get",                                                         \
      "SELECT name, workspace_id, created_at FROM us_workspaces WHERE name = %s")             \
    X(WORKSPACE_LIST, "workspace_list",                                                       \
      "SELECT name, workspace_id, created_at FROM us_workspaces ORDER BY name")               \
    X(WORKSPACE_DELETE_ROW, "workspace_delete_row",                                           \
      "DELETE FROM us_workspaces WHERE name = %s")                                            \
    X(SESSION_IS_ABORTED, "session_is_aborted",                                               \
      "SELECT 1 FROM us_sessions WHERE id = %s AND status = 'ABORTED'")                       \
    X(WEBHOOK_TARGETS_LIST, "webhook_targets_list",                                           \
      "SELECT url FROM us_webhook_targets ORDER BY url")                                      \
    X(WEBHOOK_TARGET_DROP, "webhook_target_drop",                                             \
      "DELETE FROM us_webhook_targets WHERE url = %s")                                        \
    X(WEBHOOK_DROP_UNLISTED, "webhook_drop_unlisted",                                         \
      "DELETE FROM us_webhook_outbox WHERE url NOT IN (SELECT url FROM us_webhook_targets)")  \
    X(WEBHOOK_UNLISTED_PENDING, "webhook_unlisted_pending",                                   \
      "SELECT url, COUNT(*) FROM us_webhook_outbox WHERE state = 'pending'"                   \
      " AND url NOT IN (SELECT url FROM us_webhook_targets) GROUP BY url ORDER BY url")       \
    X(WEBHOOK_NEXT_PAGE, "webhook_next_page",                                                 \
      "UPDATE us_webhook_outbox SET page = page + 1, attempts = 0, next_at = 0,"              \
      " last_error = NULL, last_attempt_at = NULL, lease_owner = NULL, lease_until = 0"       \
      " WHERE id = %lld AND lease_owner = %s AND page = %d")                                  \
    X(WEBHOOK_DONE, "webhook_done",                                                           \
      "DELETE FROM us_webhook_outbox WHERE id = %lld AND lease_owner = %s AND page = %d")     \
    X(WEBHOOK_RETRY, "webhook_retry",                                                         \
      "UPDATE us_webhook_outbox SET attempts = attempts + 1, next_at = %lld, last_error = %s," \
      " last_attempt_at = %lld, state = %s, lease_owner = NULL, lease_until = 0"              \
      " WHERE id = %lld AND lease_owner = %s")                                                \
    X(WEBHOOK_RELEASE, "webhook_release",                                                     \
      "UPDATE us_webhook_outbox SET lease_owner = NULL, lease_until = 0"                      \
      " WHERE id = %lld AND lease_owner = %s")                                                \
    X(WEBHOOK_LEASED, "webhook_leased",                                                       \
      /* a row as its owner leased it: its URL and the lease's end */                         \
      "SELECT url, lease_until FROM us_webhook_outbox WHERE id = %lld AND lease_owner = %s")  \
    X(WEBHOOK_URL_FAILED, "webhook_url_failed",                                               \
      /* the count and the pause from the row as this statement finds it:                    \
       * attempts in flight at once each count, and the pause is the backoff                  \
       * of the count, whichever settles last. A pause is never moved earlier                 \
       * (a later one, or another attempt's probe lease, holds) but for the                   \
       * settling probe's own lease (%lld), which its failure ends */                         \
      "UPDATE us_webhook_targets SET failures = failures + 1, paused_until = CASE"            \
      " WHEN paused_until <> %lld AND paused_until > " WEBHOOK_URL_PAUSE_END                  \
      " THEN paused_until ELSE " WEBHOOK_URL_PAUSE_END " END WHERE url = %s")                 \
    X(WEBHOOK_URL_CLEAR, "webhook_url_clear",                                                 \
      /* no write while the URL is healthy */                                                 \
      "UPDATE us_webhook_targets SET failures = 0, paused_until = 0"                          \
      " WHERE url = %s AND (failures <> 0 OR paused_until <> 0)")                             \
    X(WEBHOOK_URL_UNPAUSE, "webhook_url_unpause",                                             \
      /* a probe's pause (the claim set it to the lease's end) ends with the                  \
       * attempt when it was not the receiver's failure */                                    \
      "UPDATE us_webhook_targets SET paused_until = 0 WHERE url = %s AND paused_until = %lld") \
    X(WEBHOOK_URL_STATE, "webhook_url_state",                                                 \
      "SELECT failures, paused_until FROM us_webhook_targets WHERE url = %s")                 \
    X(WEBHOOK_STATS, "webhook_stats",                                                         \
      /* one statement: one snapshot */                                                       \
      "SELECT (SELECT COUNT(*) FROM us_webhook_outbox WHERE state = 'pending'),"              \
      " (SELECT COUNT(*) FROM us_webhook_outbox WHERE state = 'failed'),"                     \
      " (SELECT MIN(occurred_at) FROM us_webhook_outbox WHERE state = 'pending'),"            \
      " (SELECT last_error FROM us_webhook_outbox WHERE last_error IS NOT NULL"               \
      " ORDER BY last_attempt_at DESC, id DESC LIMIT 1),"                                     \
      " (SELECT MAX(last_attempt_at) FROM us_webhook_outbox WHERE last_error IS NOT NULL)")   \
    X(WEBHOOK_PAUSED, "webhook_paused",                                                       \
      /* the URLs whose circuit breaker holds their rows at the time judged */                \
      "SELECT url, failures, paused_until FROM us_webhook_targets"                            \
      " WHERE paused_until > " JUDGED_NOW " ORDER BY url")

/* ---- the schema --------------------------------------------------------------------
 * The schema version's table, and the statements of the migrations whose
 * text is the same in both dialects (each dialect's migrations list says
 * what stays its own). A changed text here changes a migration that has
 * run already: add a migration instead. */
#define META_TABLE "CREATE TABLE IF NOT EXISTS us_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)"
#define SCHEMA_VERSION_GET "SELECT value FROM us_meta WHERE name = 'schema_version'"
#define SCHEMA_VERSION_SET                                                     \
    "INSERT INTO us_meta (name, value) VALUES ('schema_version', %d) "         \
    "ON CONFLICT (name) DO UPDATE SET value = excluded.value"

#define MIGRATE_SESSIONS_WS_CREATED \
    "CREATE INDEX us_sessions_ws_created ON us_sessions (workspace, created_at DESC, id DESC)"
#define MIGRATE_SESSIONS_EXPIRY "CREATE INDEX us_sessions_expiry ON us_sessions (status, expires_at)"
/* A session an ingest worker may still take: SQLite's ingest indexes
 * (schema 12) hold these alone, and a query uses such a partial index only
 * when its WHERE names the condition, this text exactly. */
#define US_SQL_INGESTING(s) s "ingest_state IN ('queued', 'running')"
/* partial: a session enters them when it is closed or expires (both set
 * closed_at); the queries name `closed_at IS NOT NULL` to use them
 * (PostgreSQL's; SQLite's are partial on US_SQL_INGESTING since schema 12) */
#define MIGRATE_SESSIONS_INGEST                                                \
    "CREATE INDEX us_sessions_ingest ON us_sessions (ingest_state, closed_at)" \
    " WHERE closed_at IS NOT NULL"
#define MIGRATE_SESSIONS_TURN                                                                   \
    "CREATE INDEX us_sessions_turn ON us_sessions (workspace, parallel, ingest_state, closed_at)" \
    " WHERE closed_at IS NOT NULL"
#define MIGRATE_UPLOADS                                                        \
    "CREATE TABLE us_uploads ("                                                \
    " session_id TEXT NOT NULL REFERENCES us_sessions (id),"                   \
    " name TEXT NOT NULL,"                                                     \
    " blob TEXT NOT NULL,"                                                     \
    " size BIGINT NOT NULL,"                                                   \
    " sha256 TEXT NOT NULL,"                                                   \
    " is_meta INTEGER NOT NULL,"        /* a NAME.meta.json sidecar */         \
    " uploaded_at BIGINT NOT NULL,"                                            \
    " file_ingestion_id TEXT NOT NULL,"                                        \
    " ingestion_status TEXT NOT NULL DEFAULT 'PENDING',"                       \
    " ingestion_reason TEXT,"                                                  \
    " PRIMARY KEY (session_id, name))"
#define MIGRATE_UPLOADS_FILES \
    "CREATE INDEX us_uploads_files ON us_uploads (session_id, is_meta, ingestion_status, uploaded_at)"
/* the pending files of a session in name order, without a sort */
#define MIGRATE_UPLOADS_PENDING \
    "CREATE INDEX us_uploads_pending ON us_uploads (session_id, is_meta, ingestion_status, name)"
#define MIGRATE_FILES                                                          \
    "CREATE TABLE us_files ("                                                  \
    " file_id TEXT PRIMARY KEY,"                                               \
    " workspace TEXT NOT NULL,"                                                \
    " name TEXT NOT NULL,"                                                     \
    " size BIGINT NOT NULL,"                                                   \
    " meta TEXT,"                       /* JSON object text, NULL when none */ \
    " created_at BIGINT NOT NULL,"                                             \
    " session_id TEXT)"                 /* NULL for direct uploads */
#define MIGRATE_FILES_WS_CREATED \
    "CREATE INDEX us_files_ws_created ON us_files (workspace, created_at DESC, file_id DESC)"
#define MIGRATE_FILES_WS_NAME "CREATE INDEX us_files_ws_name ON us_files (workspace, name)"
/* a text file's length in characters (NULL: not a text file, or one from before it) */
#define MIGRATE_FILES_CHARACTERS "ALTER TABLE us_files ADD COLUMN characters BIGINT"
#define MIGRATE_WEBHOOK_DUE "CREATE INDEX us_webhook_due ON us_webhook_outbox (state, next_at)"
/* the rows that hold an error (failed ones are kept): the stats' last
 * error and its time are its last entry, whatever the outbox holds */
#define MIGRATE_WEBHOOK_LAST_ERROR                                                   \
    "CREATE INDEX us_webhook_last_error ON us_webhook_outbox (last_attempt_at, id)" \
    " WHERE last_error IS NOT NULL"
/* The webhook URLs' circuit breaker: a URL's failed attempts in a row and
 * the time (microseconds since the epoch) before which none of its rows is
 * claimed */
#define MIGRATE_WEBHOOK_TARGET_FAILURES \
    "ALTER TABLE us_webhook_targets ADD COLUMN failures INTEGER NOT NULL DEFAULT 0"
#define MIGRATE_WEBHOOK_TARGET_PAUSED \
    "ALTER TABLE us_webhook_targets ADD COLUMN paused_until BIGINT NOT NULL DEFAULT 0"
/* A URL's due rows in claim order: the claim looks into the URLs that are
 * not paused only, one index range each, so a paused URL's backlog (every
 * row of it due) is never walked */
#define MIGRATE_WEBHOOK_URL_DUE \
    "CREATE INDEX us_webhook_url_due ON us_webhook_outbox (url, state, next_at, id)"
/* direct uploads into the bucket: a session's `direct` (US_DIRECT_* of
 * us_store.h) and the ETag its listing recorded per upload */
#define MIGRATE_SESSIONS_DIRECT "ALTER TABLE us_sessions ADD COLUMN direct INTEGER NOT NULL DEFAULT 0"
#define MIGRATE_UPLOADS_ETAG "ALTER TABLE us_uploads ADD COLUMN etag TEXT"
/* A session's sidecar names, counted as uploaded_files counts its raw
 * files (the bound of UploadSessionMaxFilesPerSession on sidecars); the
 * open sessions' count from their uploads, the others' is read no more. */
#define MIGRATE_SESSIONS_SIDECARS \
    "ALTER TABLE us_sessions ADD COLUMN uploaded_sidecars BIGINT NOT NULL DEFAULT 0"
/* The publishes of an upload the file storage refused (us_storage_refused),
 * one per batch round: ingestion fails the file after US_INGEST_PUBLISH_TRIES. */
#define MIGRATE_UPLOADS_REFUSALS \
    "ALTER TABLE us_uploads ADD COLUMN publish_refusals INTEGER NOT NULL DEFAULT 0"
/* A queued session is not claimed before this time (microseconds since the
 * epoch, the clock the claim judges by): a file the storage refused is
 * tried again later, not at once (us_ingest_requeue_later). */
#define MIGRATE_SESSIONS_NOT_BEFORE \
    "ALTER TABLE us_sessions ADD COLUMN ingest_not_before BIGINT NOT NULL DEFAULT 0"
#define MIGRATE_SESSIONS_SIDECARS_COUNT                                                   \
    "UPDATE us_sessions SET uploaded_sidecars = (SELECT COUNT(*) FROM us_uploads u"       \
    " WHERE u.session_id = us_sessions.id AND u.is_meta = 1) WHERE status = 'OPEN'"

#endif

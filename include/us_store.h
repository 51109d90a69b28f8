/*
 * us_store.h - the session store, backend-neutral: configuration, schema
 * migration, connections, a per-process connection pool and one function
 * per domain operation. Each dispatches to the backend chosen by driver
 * name (us_store_backend.h; src/store/sqlite/ is the SQLite one). No httpd
 * headers: unit tests drive it against a temporary SQLite file.
 */
#ifndef US_STORE_H
#define US_STORE_H

#include <apr_pools.h>
#include <apr_tables.h>
#include <apr_time.h>

#include "us_odata.h"
#include "us_log.h"

typedef enum {
    US_DB_OK = 0,
    US_DB_NOTFOUND,
    US_DB_CONFLICT,   /* close: the session is not OPEN any more */
    US_DB_LIMIT,      /* create: the user has the maximum of OPEN sessions; upload
                       * commit: the session holds its maximum of files */
    US_DB_BUSY,       /* locked beyond the busy timeout: retry later */
    US_DB_ERROR,
    US_DB_NOT_DURABLE /* committed (others see it), but the WAL sync failed: an
                       * error for the client, yet keep whatever the rows
                       * refer to (blobs) - they may well survive */
} us_db_rc;

typedef struct us_db us_db;
typedef struct us_store us_store;

typedef struct {
    const char *id;
    const char *workspace;
    const char *user_id;
    const char *given_name;
    const char *family_name;
    const char *write_mode;
    const char *status;      /* OPEN | CLOSED | EXPIRED (derived at read time) */
    int parallel;
    apr_time_t created_at;
    apr_time_t expires_at;
    long long uploaded_files;
    long long finished_files;
    long long failed_files;
    const char *ingest_owner; /* set by us_ingest_claim (the claimer), else NULL */
    int direct;               /* US_DIRECT_*: how the session's uploads arrive */
    apr_time_t closed_at;     /* its close (an expiry's: its expires_at); 0 while open */
} us_session;

/* us_session.direct: uploads through the module's upload target (rows per
 * upload), nothing pending (its last clear recorded, or a session made
 * before there was one); straight into the bucket, not listed yet (the
 * bucket is the truth); straight into the bucket, one listing recorded as
 * its rows; that, and the prefix cleared once more after expires_at, when
 * no POST policy of the session is valid any more (us_late_clear_done;
 * read as LISTED); through the upload target, its last clear to come
 * (us_late_clear_done makes it NO). A session is made UNLISTED or TARGET. */
enum { US_DIRECT_NO = 0, US_DIRECT_UNLISTED = 1, US_DIRECT_LISTED = 2, US_DIRECT_CLEARED = 3,
       US_DIRECT_TARGET = 4 };

/* ---- configuration and connections ---------------------------------------- */

/* A store as configured: the backend serving UploadSessionStore's driver
 * name and its parameters, checked. Every connection of a store comes from
 * its us_store_cfg. */
typedef struct us_store_cfg us_store_cfg;

/* 1 when the backend for driver takes a file path as its parameters (made
 * absolute against ServerRoot by the caller), else 0. */
int us_store_params_are_path(const char *driver);

/* Picks the backend for driver ("sqlite3", "pgsql") and checks params. US_DB_ERROR
 * with *err ("no store backend for driver 'x' in this build", or the
 * backend's reason) otherwise. apr_dbd_init must have run on a long-lived
 * pool; call once per process before forking. */
us_db_rc us_store_configure(apr_pool_t *p, const char *driver, const char *params,
                            us_store_cfg **out, const char **err);

/* The directory that holds the store's own files, or NULL when it keeps
 * none on this machine (defaults for the data directory sit beside it). */
const char *us_store_home(const us_store_cfg *cfg, apr_pool_t *p);

/* How long (ms) a statement waits for a lock held by another connection
 * before failing as US_DB_BUSY; set before connections are opened. The
 * backend says whether it is per store or process-wide. */
void us_store_set_lock_timeout(us_store_cfg *cfg, int ms);
#define US_DEFAULT_BUSY_TIMEOUT_MS 1000

/* Where the store's backend logs (us_log.h, numbers 11xx): what it
 * recovers from or cannot report to a caller - failed checkpoints, syncs
 * after a commit, rollbacks, busy statements at debug. Set before
 * connections are opened; NULL (the default) drops the messages. lg must
 * live as long as the connections. */
void us_store_set_logger(us_store_cfg *cfg, const us_logger *lg);

/* Creates or upgrades the schema (idempotent, safe against a concurrent
 * migrator). Call at startup, before connections are opened. */
us_db_rc us_store_migrate(const us_store_cfg *cfg, apr_pool_t *p, const char **err);

/* Creates the files the backend needs beside the store at startup (e.g. a
 * lock file); may run as root. */
us_db_rc us_store_prepare_files(const us_store_cfg *cfg, apr_pool_t *p, const char **err);

/* The files of the store that the children's user must own: after startup
 * and after a connection opened as root. Some may not exist. */
apr_array_header_t *us_store_user_files(const us_store_cfg *cfg, apr_pool_t *p);

/* Opens one connection in its own sub-pool of p, ready for every query. */
us_db_rc us_db_open(apr_pool_t *p, const us_store_cfg *cfg, us_db **out, const char **err);
/* The same for a long-lived p (a thread's, the process's) that retries:
 * the attempt runs in a pool of its own, destroyed with the connection, or
 * at once when it fails (its reason then copied into err, errlen bytes),
 * so failed attempts leave nothing in p. */
us_db_rc us_db_open_apart(apr_pool_t *p, const us_store_cfg *cfg, us_db **out, char *err,
                          apr_size_t errlen);
void us_db_close(us_db *db);

/* Periodic upkeep the backend wants off the request path (SQLite: a
 * passive WAL checkpoint); the ingest workers call it every
 * US_MAINTENANCE_INTERVAL. US_DB_BUSY: another connection does it. */
us_db_rc us_db_maintain(us_db *db, apr_pool_t *p);
#define US_MAINTENANCE_INTERVAL apr_time_from_msec(500)

/* Fits a connection to the ingest workers' batches, which touch a few
 * rows of every page of a session's indexes (SQLite: a page cache that
 * holds them, so a batch costs the same at 50,000 files as at 1,000). A
 * backend without such a setting does nothing. */
us_db_rc us_db_for_batches(us_db *db, apr_pool_t *p);
/* The backend's warm step on db (us_store_warm); 0 when it has none. */
int us_db_warm(us_db *db);
/* Whether the store's backend has a warm step. */
int us_store_warms(const us_store_cfg *cfg);

/* ---- per-process pool ---------------------------------------------------- */

/* A thread-safe pool of connections (apr_reslist), created in the child. */
apr_status_t us_store_create(apr_pool_t *p, const us_store_cfg *cfg, int max_conns,
                             us_store **out);
us_db_rc us_store_acquire(us_store *st, us_db **db, const char **err);
/* Opens, in a child starting, what its first requests would otherwise
 * open (SQLite: a pooled connection and the writers' own, whose page
 * cache the process's write batches then share), so that no request pays
 * for them and a request's memory is its own. Does nothing unless
 * us_store_has_warm_step, and leaves to the first request what it cannot
 * open now. May wait for a busy database: a child runs it in a thread,
 * not in child_init. */
void us_store_warm(us_store *st);
/* Whether us_store_warm has anything to do: not for a pool of one
 * connection, nor for a backend without a warm step. */
int us_store_has_warm_step(const us_store *st);
/* Back to the pool, or closed when broken or worn out (us_db_worn_out). */
void us_store_release(us_store *st, us_db *db, int broken);
/* The connection holds resources only closing gives back and should not be
 * pooled again (SQLite: statements prepared for many different filters). */
int us_db_worn_out(us_db *db);
/* The last write (us_upload_commit, us_workspace_file_add, any write)
 * failed (US_DB_BUSY, US_DB_ERROR) where it may have been committed all the
 * same: PostgreSQL lost the connection while its COMMIT, or a one-statement
 * write, was under way. Then, as for US_DB_NOT_DURABLE, keep whatever its
 * rows would refer to (a blob left unrecorded is cleared with its session,
 * or swept as a file no row refers to). Call before releasing db. The
 * session create, close and abort look for themselves (they read the
 * session back). */
int us_db_outcome_unknown(us_db *db);

/* ---- queries -------------------------------------------------------------
 * Each operation below says what it must be atomic against: what holds
 * whatever other connections (threads, processes, machines) run at the same
 * time. Reads promise nothing beyond one consistent row unless said. Writes
 * return once durable; US_DB_BUSY / US_DB_ERROR mean nothing changed (and
 * US_DB_NOT_DURABLE that it changed but may not survive a crash), unless
 * us_db_outcome_unknown says it may have.
 * `now` is the caller's clock. Where an operation judges a session's
 * expires_at (its derived status, the is_expired filter, the open-session
 * limit, the OPEN check of a close, abort or upload, the overview), a
 * backend with a clock of its own shared by several machines judges by
 * that clock instead (PostgreSQL: the server's, at the statement's start),
 * so every node gives one verdict; SQLite's nodes share one machine and
 * judge by `now`. Times written into rows (closed_at, uploaded_at) are the
 * caller's; a session's created_at and expires_at, see us_session_insert. */

/* Inserts s as OPEN unless its user already has max_open OPEN sessions
 * (those past expires_at not counted, swept or not): US_DB_LIMIT then.
 * Atomic against every other insert, close and expiry of the same user:
 * N concurrent inserts for a user with k open sessions give exactly
 * max(0, max_open - k) US_DB_OK, never more.
 * s->created_at and s->expires_at are the times to store; on US_DB_OK they
 * are the times stored. A backend whose clock several machines share
 * (PostgreSQL) stores its own: created_at its clock at the insert,
 * expires_at that plus the lifetime asked (expires_at - created_at), so a
 * node's skewed clock cannot make a session expire early or late.
 * An insert whose outcome is unknown (us_db_outcome_unknown) reads the
 * session back by its id: there, it is US_DB_OK; not there, the failure
 * stands. */
us_db_rc us_session_insert(us_db *db, apr_pool_t *p, us_session *s,
                           int max_open, apr_time_t now);
us_db_rc us_session_get(us_db *db, apr_pool_t *p, const char *workspace,
                        const char *id, apr_time_t now, us_session *out);
/* OPEN -> CLOSED (not past expires_at) and, in the same change, ingestion
 * queued (or marked done when no raw file was uploaded); NOTFOUND, or
 * CONFLICT when the session is not OPEN. Atomic against other closes and
 * the expiry sweep: of concurrent closes exactly one gets US_DB_OK, the
 * others US_DB_CONFLICT. Atomic against us_upload_commit: every upload
 * committed before the close counts in uploaded_files and is ingested;
 * every later one is refused with US_DB_CONFLICT. A close whose outcome
 * is unknown (us_db_outcome_unknown) reads the session back: CLOSED is
 * US_DB_OK, whether this close made it or a concurrent one did. */
us_db_rc us_session_close(us_db *db, apr_pool_t *p, const char *workspace,
                          const char *id, apr_time_t now);
/* Discards an OPEN session (not past expires_at) and its uploads, without
 * ingesting them: the session reads as absent from then on (NOTFOUND for
 * every lookup, left out of lists), its user's open-session slot is free,
 * its upload rows are gone and a clear of its stored uploads is queued as
 * an ingest job (us_ingest_claim hands it out; it has no pending file), so
 * a crash after the change still removes the bytes. NOTFOUND, or CONFLICT
 * when the session is not OPEN. Atomic against closes, expiry and other
 * aborts as us_session_close is (exactly one of them wins), and against
 * us_upload_commit: an upload committed before the abort is discarded with
 * it, every later one is refused with US_DB_CONFLICT. An abort whose
 * outcome is unknown reads the session back: absent is US_DB_OK. */
us_db_rc us_session_abort(us_db *db, apr_pool_t *p, const char *workspace,
                          const char *id, apr_time_t now);
/* One page of a list: by offset, or next to a cursor (an id of the list).
 * With a cursor the page holds the `limit` rows just after it (before = 0)
 * or just before it (before = 1) in the list's order, shown in that order;
 * an id that is not in the list (unknown, another workspace or session,
 * aborted) gives an empty page. The cursor row itself may be left out by
 * the list's filter: it still marks the place. */
typedef struct {
    long long limit;     /* >= 1 */
    long long offset;    /* rows skipped first, when cursor is NULL */
    const char *cursor;  /* canonical UUID, or NULL */
    int before;
} us_page;

/* is_expired: -1 all, 1 only EXPIRED, 0 all but EXPIRED. rows: us_session,
 * newest first (created_at, then id), with the fields a list item shows
 * (workspace NULL, the counters and direct 0). *total counts the whole filtered
 * list, whatever the page; *has_more: rows follow the page in its
 * direction (after the last row; before the first one for `before`).
 * *total and rows are one read (one statement): the same moment's. */
us_db_rc us_session_list(us_db *db, apr_pool_t *p, const char *workspace,
                         int is_expired, const us_page *pg,
                         apr_time_t now, apr_array_header_t **rows,
                         long long *total, int *has_more);

/* The session with this id in any workspace (the upload target knows only the id). */
us_db_rc us_session_by_id(us_db *db, apr_pool_t *p, const char *id, apr_time_t now,
                          us_session *out);

typedef struct {
    const char *session_id;
    const char *name;              /* the file name within the session */
    const char *blob;              /* its file name on disk in the session directory */
    const char *sha256;            /* hex */
    const char *file_ingestion_id; /* used when the name is new */
    long long size;
    int is_meta;                   /* name ends in .meta.json */
    apr_time_t uploaded_at;
    long long max_files;           /* raw files the session may hold, and sidecars; 0: unlimited */
} us_upload_record;

/* Records a completed upload: the session must still be OPEN and not past
 * expires_at (else US_DB_CONFLICT and nothing changes); a new raw name
 * counts towards uploaded_files, a new sidecar name towards the session's
 * sidecar count (kept apart, not shown), and a new name is refused with
 * US_DB_LIMIT (nothing changes) when the session holds u->max_files names
 * of its kind already: raw files for a raw name, sidecars for a sidecar
 * (0: no limit; a known name is never refused by it); a known name is
 * replaced and *old_blob is set to the blob it pointed to (the caller
 * deletes it), else NULL.
 * Atomic against the close and the expiry of its session (the OPEN check,
 * the row and the count change together; see us_session_close) and against
 * commits of the same name: they apply one after the other, and each
 * replaced blob is handed to exactly one caller. Atomic against the other
 * commits of the session for max_files: of concurrent new raw names exactly
 * max_files - uploaded_files succeed, of concurrent new sidecar names
 * exactly max_files less the sidecars held. */
us_db_rc us_upload_commit(us_db *db, apr_pool_t *p, const us_upload_record *u, apr_time_t now,
                          const char **old_blob);

typedef struct {
    const char *file_ingestion_id;
    const char *name;
    const char *status;   /* PENDING | FINISHED | FAILED */
    const char *reason;   /* NULL unless FAILED */
} us_session_file_row;

/* Raw files (no sidecars) of a session, oldest upload first (uploaded_at,
 * then name); status NULL = all. The page's cursor is a file_ingestion_id;
 * *total and *has_more as for us_session_list. */
us_db_rc us_session_files_list(us_db *db, apr_pool_t *p, const char *session_id,
                       const char *status, const us_page *pg,
                       apr_array_header_t **rows, long long *total, int *has_more);

/* ---- node registry (UploadSessionNodeName, the parent) ----------------------- */

/* A node's claim on its name: one row per name, with a heartbeat on the
 * store's clock. instance: the httpd parent's identity, kept across its
 * graceful restarts; host: the machine (and its boot); pid: the parent's. */
typedef struct {
    const char *name, *instance, *host;
    long long pid;
    apr_interval_time_t age; /* since the holder's last heartbeat (read only) */
} us_node;

/* Claims me->name for me->instance: granted when the name is free, is
 * already this instance's, is held by `replaces` (an instance the caller
 * knows to be dead; NULL: none), or its heartbeat is older than ttl by the
 * store's clock. Granting writes a fresh heartbeat. Otherwise US_DB_CONFLICT
 * and *holder is the row that keeps it. Of concurrent claims of one free
 * name exactly one is granted. A store whose nodes share one machine (SQLite)
 * keeps no registry: US_DB_OK. */
/* Whether the store keeps a node registry (no SQLite connection is opened
 * in the parent for one: the parent opens none before it forks). */
int us_store_keeps_nodes(const us_store_cfg *cfg);
us_db_rc us_node_claim(us_db *db, apr_pool_t *p, const us_node *me, const char *replaces,
                       apr_interval_time_t ttl, us_node *holder);
/* A fresh heartbeat for name while instance holds it; US_DB_CONFLICT when
 * another instance has taken the name over. */
us_db_rc us_node_heartbeat(us_db *db, apr_pool_t *p, const char *name, const char *instance);

/* ---- expiry (the parent's monitor hook) ----------------------------------- */

/* OPEN sessions past expires_at by the store's own clock (PostgreSQL's
 * clock_timestamp(); SQLite's is the one machine's) become EXPIRED with
 * ingestion queued (as us_session_close does); *count: how many. No node's
 * clock is asked, so every node of a cluster expires a session at the same
 * moment. Atomic against closes and
 * upload commits as us_session_close is, and against concurrent sweeps:
 * each session is expired once, by one of them. Of a sweep and a
 * us_workspace_delete one waits for the other, never each for the other:
 * both take the sessions, then the users' counters, they change in one
 * order (PostgreSQL: sessions by id, counters by user_id). */
us_db_rc us_sessions_expire(us_db *db, apr_pool_t *p, int *count);

/* ---- overview (status and metrics pages) ------------------------------------ */

typedef struct {
    long long open;        /* OPEN and not past expires_at */
    long long closed;
    long long expired;     /* EXPIRED, or OPEN past expires_at (swept or not) */
    long long queued;      /* closed sessions waiting for an ingest worker */
    long long running;     /* claimed by a worker (lease live or lapsed) */
    apr_time_t oldest_queued; /* closing time of the oldest queued or running
                               * session, 0 when there is none */
} us_store_overview;

/* The sessions by state and the ingest queue, for the status and metrics
 * pages: one statement, so one snapshot - the counts are of one moment and
 * add up (open + closed + expired = every session). A read: it takes no
 * write lock and changes nothing. The queue is queued + running. */
us_db_rc us_store_overview_read(us_db *db, apr_pool_t *p, apr_time_t now,
                                us_store_overview *out);

/* ---- ingestion ------------------------------------------------------------- */

/* Claims the next session to ingest for owner: a queued one whose
 * us_ingest_requeue_later time has come (SQLite: by now), or a running
 * one whose lease lapsed (last heartbeat before stale_before), oldest
 * closing first; one that waits still holds its place in its workspace's
 * turn. NOTFOUND: nothing to do. Atomic against other claims:
 * of concurrent claimers of a session exactly one gets it. One at a time
 * per workspace: a session that is not parallel is claimed only while no
 * other non-parallel session of its workspace is running and none is
 * queued ahead of it (closing time, then id); parallel sessions are not
 * held back. */
us_db_rc us_ingest_claim(us_db *db, apr_pool_t *p, const char *owner, apr_time_t now,
                         apr_time_t stale_before, us_session *out);

typedef struct {
    const char *session_id;
    const char *owner;
} us_claim;

/* Every running claim (to find those whose owner process died); a read. */
us_db_rc us_ingest_running(us_db *db, apr_pool_t *p, apr_array_header_t **claims);
/* The claim changes below act only while owner still holds the claim
 * (running, owner unchanged), checked in the same change: an owner whose
 * lease was taken over cannot requeue, renew or finish the session. */
/* running -> queued (a no-op when owner lost the claim). */
us_db_rc us_ingest_requeue(us_db *db, apr_pool_t *p, const char *session_id, const char *owner);
/* The same, and no claim takes it before `delay` from now (the claim's
 * clock: SQLite the caller's now, PostgreSQL its server's); US_DB_CONFLICT,
 * nothing changed, when owner lost the claim. */
us_db_rc us_ingest_requeue_later(us_db *db, apr_pool_t *p, const char *session_id,
                                 const char *owner, apr_time_t now, apr_interval_time_t delay);
/* Renews the lease; US_DB_CONFLICT when owner lost the claim: it stops. */
us_db_rc us_ingest_heartbeat(us_db *db, apr_pool_t *p, const char *session_id,
                             const char *owner, apr_time_t now);
/* running -> done; US_DB_CONFLICT, nothing changed, when owner lost the
 * claim. */
us_db_rc us_ingest_done(us_db *db, apr_pool_t *p, const char *session_id, const char *owner);

typedef struct {
    const char *name;
    const char *blob;
    const char *file_ingestion_id;
    long long size;
    const char *etag; /* a listed object's ETag, else NULL */
    const char *meta_blob; /* the blob of the upload NAME.meta.json, NULL when none */
} us_pending;

/* Up to limit raw uploads still PENDING whose name sorts after `after` ("":
 * from the first), by name, each with its sidecar's blob. A worker passes
 * the last name of the batch it applied before: every file up to it is
 * decided, and a closed session gets no new uploads. */
us_db_rc us_ingest_pending(us_db *db, apr_pool_t *p, const char *session_id, const char *after,
                           int limit, apr_array_header_t **rows);

/* The blob of an upload (e.g. a sidecar), or *blob = NULL when there is none. */
us_db_rc us_upload_blob(us_db *db, apr_pool_t *p, const char *session_id, const char *name,
                        const char **blob);

/* file_ids of the workspace's files with this name. */
us_db_rc us_workspace_file_ids_by_name(us_db *db, apr_pool_t *p, const char *workspace,
                               const char *name, apr_array_header_t **ids);

typedef struct {
    const char *name;
    const char *file_id;   /* the upload's file_ingestion_id: replays find the same id */
    long long size;
    const char *meta;      /* JSON object text or NULL */
    const char *status;    /* FINISHED | FAILED */
    const char *reason;    /* for FAILED */
    long long characters;  /* a text file's length in characters; < 0: none (null) */
    int overwrite;         /* replace the workspace's files of this name */
} us_ingest_result;

/* Applies one batch of decisions, all or nothing: per file the
 * PENDING -> FINISHED/FAILED change, the workspace file row, OVERWRITE
 * deletions, the session's counters. *deleted: file_ids whose blobs the
 * caller removes after the commit.
 * Each file leaves PENDING at most once, whoever applies it: a file
 * already decided is skipped (a replayed batch, or one applied by a worker
 * whose lease lapsed) and the counters count only the files this call
 * changed, so they always equal the per-file states. Fencing: when
 * s->ingest_owner is set (s came from us_ingest_claim), the batch applies
 * only while that owner still holds the claim, checked in the same change;
 * else US_DB_CONFLICT and nothing changes - a worker whose lease was taken
 * over changes nothing afterwards.
 * The FAIL name check is atomic against every other apply and
 * us_workspace_file_add in the workspace: a FINISHED decision whose name is taken
 * by another file at commit time becomes FAILED (FILE_ALREADY_EXISTS), so
 * two sessions never both publish one name under FAIL. OVERWRITE deletes
 * and inserts together: when only overwrites of a name run, one file of
 * that name remains. */
us_db_rc us_ingest_apply(us_db *db, apr_pool_t *p, const us_session *s,
                         const apr_array_header_t *results, apr_time_t now,
                         apr_array_header_t **deleted);

/* Counts a publish of the PENDING upload `name` of session s that the file
 * storage refused (us_storage_refused), and gives in *refusals the ones
 * counted so far, this one included; one per batch round. Fencing as
 * us_ingest_apply: US_DB_CONFLICT when s->ingest_owner no longer holds the
 * claim, and nothing is counted; US_DB_NOTFOUND when the upload is not
 * PENDING (decided already). */
us_db_rc us_ingest_publish_refused(us_db *db, apr_pool_t *p, const us_session *s,
                                   const char *name, long long *refusals);

/* One object of a direct-upload session's listing, to be recorded as its
 * upload row (the client chose the key, blob; name is the file name it
 * gives, us_ingest_listing). */
typedef struct {
    const char *name;
    const char *blob;              /* the object's key under the session's prefix */
    const char *etag;              /* as listed; pins the copy at publishing */
    const char *file_ingestion_id;
    long long size;
    int is_meta;                   /* name ends in .meta.json */
    apr_time_t uploaded_at;
} us_listed_object;

/* Records ONE listing of a direct-upload session as its upload rows
 * (us_listed_object, each PENDING) and uploaded_files = its raw objects,
 * and marks the session US_DIRECT_LISTED, all in one transaction.
 * *recorded = 1 when this call recorded it; 0 when the session is not
 * US_DIRECT_UNLISTED any more (a listing was recorded before: the caller
 * reads the rows; or aborted) and nothing changes. Fencing as
 * us_ingest_apply: when s->ingest_owner is set and no longer holds the
 * claim, US_DB_CONFLICT and nothing changes. Atomic against itself: of
 * concurrent calls for one session at most one records. */
us_db_rc us_ingest_record_listing(us_db *db, apr_pool_t *p, const us_session *s,
                                  const apr_array_header_t *objects, int *recorded);

/* A session due its last clear, and the place in that queue a page starts
 * after. */
typedef struct {
    const char *id;
    apr_time_t expires_at;
} us_late_due;

/* Up to limit sessions (us_late_due) whose uploads are due their last
 * clear, direct or through the upload target (a writer killed after the
 * ingestion's clear, or before a session with no recorded file is done at
 * its close, leaves its file): their ingestion has ended (ingested, or
 * aborted and cleared) and their expires_at, when their POST policy died,
 * lies more than grace before now (PostgreSQL: the database's clock, as the expiry sweep
 * judges), in (expires_at, id) order from just after `after` (NULL: from
 * the first), so a caller whose clears keep failing pages on past them;
 * none recorded as cleared late (us_late_clear_done), none made as
 * US_DIRECT_NO. A read: an index range of the sessions not cleared late
 * yet, whatever the number of sessions. */
us_db_rc us_late_clear_due(us_db *db, apr_pool_t *p, apr_time_t now, apr_interval_time_t grace,
                           const us_late_due *after, int limit, apr_array_header_t **due);
/* Records that session id's uploads had their last clear (direct becomes
 * US_DIRECT_CLEARED, or US_DIRECT_NO for the upload target's):
 * US_DB_OK when this call recorded it, US_DB_NOTFOUND when it was recorded
 * before. One statement: of concurrent calls for a session exactly one
 * gets US_DB_OK. */
us_db_rc us_late_clear_done(us_db *db, apr_pool_t *p, const char *id);
/* us_late_clear_done of every session of ids (const char *) at once, for
 * the sessions nothing was left of: *recorded, how many this call
 * recorded (those recorded before are left as they are). PostgreSQL: one
 * statement; SQLite: one write transaction. Of concurrent calls each
 * session is recorded by exactly one. */
us_db_rc us_late_clear_done_all(us_db *db, apr_pool_t *p, const apr_array_header_t *ids,
                                int *recorded);

/* ---- workspace files ----------------------------------------------------------- */

typedef struct {
    const char *file_id;
    const char *name;
    const char *meta;      /* JSON text or NULL */
    long long size;
    apr_time_t created_at;
    long long characters;  /* a text file's length in characters; < 0: none (null) */
    int meta_deferred;     /* a list's row only: its metadata is long and was not
                              read (meta NULL); us_workspace_file_get reads it */
} us_workspace_file;

us_db_rc us_workspace_file_get(us_db *db, apr_pool_t *p, const char *workspace, const char *file_id,
                       us_workspace_file *out);
/* What a list of workspace files asks for. */
typedef struct {
    const char *name_part;       /* a substring of the name (no wildcards); "" matches all */
    const us_odata_node *filter; /* NULL matches all; else evaluated by the database with
                                    API.md's semantics (types, missing keys, two-valued not) */
    apr_time_t after_at;         /* the cursor: with after_id, only items after */
    const char *after_id;        /* (after_at or after_name, after_id) in the order;
                                    NULL: from the start */
    long long limit;
    int by_name;                 /* sort by name instead of created_at (then file_id) */
    int ascending;               /* instead of descending */
    const char *after_name;      /* the cursor's value when by_name */
    long long offset;            /* matches skipped first (page_number paging) */
} us_workspace_file_query;

/* Sorted by created_at (or name), then file_id, descending unless
 * ascending; a row's metadata longer than a few KiB is not read
 * (meta_deferred): the caller reads it file by file; *total counts every match of name_part and filter, whatever
 * the cursor, offset and limit. A read: *total and rows are two reads, not
 * one snapshot. */
us_db_rc us_workspace_file_list(us_db *db, apr_pool_t *p, const char *workspace,
                                const us_workspace_file_query *q, apr_array_header_t **rows,
                                long long *total);
/* A direct upload: write_mode FAIL with an existing name -> US_DB_CONFLICT;
 * OVERWRITE deletes the others (their ids in *deleted). The name check or
 * the deletions and the insert are one change, atomic as in us_ingest_apply:
 * of concurrent FAIL adds of a new name exactly one succeeds. */
us_db_rc us_workspace_file_add(us_db *db, apr_pool_t *p, const char *workspace, const us_workspace_file *f,
                       const char *write_mode, apr_array_header_t **deleted);

/* Deletes the workspace's file file_id; NOTFOUND when it has none. The
 * row goes and its id enters the file trash in one change: the caller then
 * deletes the bytes and hands the id to us_file_trash_forget; a crash in
 * between leaves the id in the trash for the sweep (us_file_trash_list).
 * Atomic against ingestion and direct uploads of the workspace (no half
 * of it is ever seen); a reader that has the bytes open reads on. */
us_db_rc us_workspace_file_delete(us_db *db, apr_pool_t *p, const char *workspace,
                                  const char *file_id);
/* Deletes the workspace's files with one of names (const char *), or every
 * file of the workspace when names is NULL, as us_workspace_file_delete
 * does, all in one change; *deleted: their ids (in the trash). A file that
 * an ingestion or upload publishes under one of the names after the change
 * stays. */
us_db_rc us_workspace_files_delete(us_db *db, apr_pool_t *p, const char *workspace,
                                   const apr_array_header_t *names,
                                   apr_array_header_t **deleted);
/* Sets the metadata of the workspace's file file_id to meta (JSON object
 * text) if it still holds old_meta (the text a read returned; NULL for
 * none): a compare-and-swap, so a read-merge-write loses no concurrent
 * update. NOTFOUND, or CONFLICT when the metadata changed meanwhile (read
 * again and retry). Atomic against every other change of the file. */
us_db_rc us_workspace_file_meta_swap(us_db *db, apr_pool_t *p, const char *workspace,
                                     const char *file_id, const char *old_meta,
                                     const char *meta);
/* Up to limit ids in the file trash (const char *): files whose rows are
 * gone and whose bytes may be left; a read. */
us_db_rc us_file_trash_list(us_db *db, apr_pool_t *p, int limit, apr_array_header_t **ids);
/* Takes ids (const char *) out of the trash once their bytes are deleted. */
us_db_rc us_file_trash_forget(us_db *db, apr_pool_t *p, const apr_array_header_t *ids);
/* Returns once every change committed before the call is durable: a write
 * that changes nothing, answered after its own sync. SQLite syncs its WAL
 * after releasing the write lock, so a read may see a change that is not
 * yet on disk (PostgreSQL shows a commit only once it is, with its default
 * synchronous_commit on; there this costs an empty transaction); call this
 * between such a read and what cannot be undone if the change is lost
 * (the trash sweep's deletes of bytes). */
us_db_rc us_durable_barrier(us_db *db, apr_pool_t *p);

/* Whether a row refers to the stored file file_id: a workspace file, an
 * entry of the file trash, or an upload still PENDING with it as its
 * file_ingestion_id (an ingestion may have published it and not yet
 * recorded it). *referenced 1 or 0; a read (the uploads' part a scan, run
 * only when the two primary-key reads find nothing). */
us_db_rc us_file_id_referenced(us_db *db, apr_pool_t *p, const char *file_id, int *referenced);

/* A turn of a periodic job that one worker at a time runs across every
 * process and node of the store (the files sweep), kept in us_meta under
 * name with the place the job has reached, so the next taker, of any node,
 * goes on from there. */
typedef struct {
    const char *name;
    const char *held;   /* the row's value while this turn holds it */
    const char *place;  /* where the last turn stopped ("" at first) */
} us_turn;

/* Takes the turn name when it is free at now (given back with a next time
 * now has reached, or held past its hold, as by a dead taker), holding it
 * until now + hold: US_DB_OK with *turn; US_DB_CONFLICT when another holds
 * it or its next time is to come. A compare-and-swap of one row: of
 * concurrent takers exactly one gets it. */
us_db_rc us_turn_take(us_db *db, apr_pool_t *p, const char *name, apr_time_t now,
                      apr_interval_time_t hold, us_turn *turn);
/* Gives the turn back with the place reached and the earliest time of the
 * next one; US_DB_CONFLICT (nothing changes) when it was taken over
 * meanwhile (held past its hold). */
us_db_rc us_turn_give(us_db *db, apr_pool_t *p, const us_turn *turn, apr_time_t next_at,
                      const char *place);

/* ---- workspaces (docs/design-workspaces.md) ------------------------------------ */

/* A workspace that exists: created by us_workspace_create, or by the first
 * session or file written to it. Keys grant names; a row grants nothing. */
typedef struct {
    const char *name;
    const char *workspace_id;  /* canonical UUID */
    apr_time_t created_at;
} us_workspace;

/* Creates the workspace name with this id; CONFLICT when it exists (created
 * before, or holding data). One statement: of concurrent creates of a name
 * exactly one gets US_DB_OK. */
us_db_rc us_workspace_create(us_db *db, apr_pool_t *p, const char *name,
                             const char *workspace_id, apr_time_t now);
/* The workspace name, or NOTFOUND; a read of one row. */
us_db_rc us_workspace_get(us_db *db, apr_pool_t *p, const char *name, us_workspace *out);
/* rows (us_workspace): every workspace, by name, when names is NULL; else
 * those of names (const char *) that exist, in the order of names (a name
 * given twice is listed twice). A read: with names, one read per name, not
 * one snapshot. */
us_db_rc us_workspace_list(us_db *db, apr_pool_t *p, const apr_array_header_t *names,
                           apr_array_header_t **rows);
/* Deletes the workspace name and everything in it, in one change: its row,
 * its files (their ids into the file trash, and into *file_ids: the caller
 * deletes the bytes and hands the ids to us_file_trash_forget, as after
 * us_workspace_files_delete), its sessions' uploads (the ids of those still
 * PENDING into the trash too: an ingestion may have published them) and its
 * webhook events; its sessions read as absent from then on, as after
 * us_session_abort (open-session slots freed, a running ingestion's claim
 * lost, a clear of the stored uploads queued as an ingest job). NOTFOUND
 * when it has no row. Atomic against every write of the workspace: an
 * upload commit or ingest batch after it finds its session gone (CONFLICT;
 * a lost batch of a deleted session puts its published ids in the trash),
 * a session or file added after it makes the workspace anew. Never touches
 * another workspace. The name may be created again at once. */
us_db_rc us_workspace_delete(us_db *db, apr_pool_t *p, const char *name, apr_time_t now,
                             apr_array_header_t **file_ids);

/* ---- webhook outbox ------------------------------------------------------------ */

/* The URLs webhook events go to (const char *), kept in the store: the
 * outbox gets one row per (event, URL) in the transaction that makes the
 * event - a session becoming ingested (ingest state done: us_ingest_done,
 * a close or expiry with no raw file) and an OPEN session becoming EXPIRED
 * (us_sessions_expire). Aborted sessions make none. Replaces the set: rows
 * of URLs no longer listed are dropped with them; a URL listed before and
 * now keeps its circuit breaker (us_webhook_retry: a failing receiver
 * stays paused across a restart), a URL listed anew starts closed. An
 * empty set makes no rows. One transaction, atomic against those
 * transactions: each event gets a row for every URL of the set it
 * committed after, and no row of a URL dropped (on PostgreSQL a drop waits
 * for the events in flight that write one, and drops their rows). */
us_db_rc us_webhook_targets_set(us_db *db, apr_pool_t *p, const apr_array_header_t *urls);

typedef struct {
    const char *url;
    long long pending; /* its undelivered rows, dropped */
} us_webhook_dropped;

/* us_webhook_targets_set, and *dropped (us_webhook_dropped, by URL) says
 * what undelivered rows went with the URLs no longer listed. */
us_db_rc us_webhook_targets_replace(us_db *db, apr_pool_t *p, const apr_array_header_t *urls,
                                    apr_array_header_t **dropped);

typedef struct {
    long long id;
    const char *event;       /* session.ingested | session.expired */
    const char *session_id;
    const char *workspace;
    const char *url;
    apr_time_t occurred_at;  /* expires_at for session.expired; the commit for ingested */
    long long uploaded_files; /* the session's counters at the event */
    long long finished_files;
    long long failed_files;
    int page;                /* the page to deliver next, from 1 */
    int attempts;            /* failed attempts at that page */
    int url_failures;        /* its URL's failed attempts in a row (us_webhook_retry) */
} us_webhook_row;

/* Leases the next due row (pending, next attempt at or before now, no live
 * lease, its URL not paused) to owner until lease_until; NOTFOUND when
 * none is due. A paused URL's rows are not read: its backlog costs the
 * claim nothing. A row of a URL whose last attempt failed (url_failures > 0)
 * is a probe: the claim also pauses the URL until lease_until, so its
 * other rows wait for this attempt to settle (or its lease to lapse).
 * Atomic against other claims: of concurrent claimers of a row exactly one
 * gets it while its lease lives (a lapsed lease is taken over: delivery is
 * at least once); on SQLite one probe of a URL at a time, on PostgreSQL
 * (READ COMMITTED, one statement) rarely two when two claimers read the
 * URL unpaused at once. A claim locks no row but the one it takes: a
 * concurrent claimer takes the next URL's first due row, not a later row
 * of the URL whose first is being taken. A store shared by several nodes (PostgreSQL)
 * judges due rows, live leases and pauses by its own clock, and writes
 * the lease (and a probe's pause) as its clock plus lease_until - now:
 * nodes' clocks may disagree. */
us_db_rc us_webhook_claim(us_db *db, apr_pool_t *p, const char *owner, apr_time_t now,
                          apr_time_t lease_until, us_webhook_row *out);
/* Page `page` of row id was delivered: the next page is due at once, or,
 * after the last (pages), the row is gone, and its URL's circuit breaker
 * is closed (no failures, not paused), in one transaction. A no-op when
 * owner lost the lease or the row is past that page. */
us_db_rc us_webhook_delivered(us_db *db, apr_pool_t *p, long long id, const char *owner, int page,
                              int pages);
typedef struct {
    const char *url;           /* as listed (us_webhook_targets_set) */
    int failures;              /* its failed attempts in a row */
    apr_time_t paused_until;   /* none of its rows is claimed before */
} us_webhook_paused;

typedef struct {
    apr_time_t now;          /* the attempt's end: the row's last attempt */
    apr_time_t next_at;      /* the row's next attempt */
    const char *error;
    int give_up;             /* the row fails for good */
    /* The receiver failed: its URL's failures counted and the URL paused
     * (no row of it claimed before) until now plus pause doubled once per
     * failure in a row before this one, at most pause_max: pause and
     * pause_max as us_webhook_backoff's first and longest make it
     * now + us_webhook_backoff(failures). The count and the pause are the
     * store's as the settle finds them, so attempts in flight at once
     * each count and the pause follows the count whichever settles last;
     * a failure never moves the pause earlier (a later one holds, as does
     * another attempt's probe lease) but for its own probe lease, which
     * it ends. 0: not the receiver's failure (no POST could be made): the
     * URL unchanged, but for a probe's pause, which ends. */
    apr_interval_time_t pause;
    apr_interval_time_t pause_max;
    /* With a pause: the URL's other pending rows whose event occurred
     * before this time and that no live lease holds fail too (error kept,
     * last attempt now); on PostgreSQL but for those another transaction
     * holds at that moment, left to a later failure. 0: none. */
    apr_time_t stale_before;
} us_webhook_failure;

/* A failed attempt: attempts + 1, error kept, next attempt at next_at, the
 * lease released; with give_up the row is marked failed and never claimed
 * again; and its URL's circuit breaker as f says, *url (when not NULL) its
 * failures and pause as the receiver's failure left them (zero otherwise,
 * and when owner lost the lease). One transaction: the row, the URL's
 * stale rows and the URL change together. A no-op when owner lost the
 * lease. */
us_db_rc us_webhook_retry(us_db *db, apr_pool_t *p, long long id, const char *owner,
                          const us_webhook_failure *f, us_webhook_paused *url);
/* An attempt cut short by a shutdown: the lease released, nothing else
 * changed (not an attempt: due again at once, to any deliverer), but for
 * a probe's pause of its URL, which ends; one transaction. A no-op when
 * owner lost the lease. */
us_db_rc us_webhook_release(us_db *db, apr_pool_t *p, long long id, const char *owner);

typedef struct {
    long long pending;        /* rows still to deliver */
    long long failed;         /* rows given up */
    apr_time_t oldest_pending; /* occurred_at of the oldest pending row, 0 when none */
    const char *last_error;   /* the latest error of a row not delivered, NULL when none */
    apr_time_t last_error_at;
} us_webhook_stats;

/* The outbox's counts for the status pages: one statement, one snapshot. */
us_db_rc us_webhook_stats_read(us_db *db, apr_pool_t *p, us_webhook_stats *out);

/* *rows (us_webhook_paused, by URL): the URLs whose circuit breaker holds
 * their rows at now (us_webhook_retry's pause, or a probe's lease): at
 * most one per listed URL. One statement; a store shared by several nodes
 * (PostgreSQL) judges the pauses by its own clock, as the claim does. */
us_db_rc us_webhook_paused_read(us_db *db, apr_pool_t *p, apr_time_t now,
                                apr_array_header_t **rows);

/* Deletes up to limit rows marked failed whose last attempt was before
 * `before`, the oldest first, in one short transaction; *n: how many (a
 * delivered row is deleted by its delivery, a pending one is never
 * touched). Safe on several nodes at once: each row goes once. */
us_db_rc us_webhook_forget_failed(us_db *db, apr_pool_t *p, apr_time_t before, int limit,
                                  int *n);

/* The last error message of this connection (for logs). */
const char *us_db_error(us_db *db);
/* Forgets it: a pooled connection starts each use without one. */
void us_db_clear_error(us_db *db);

#endif

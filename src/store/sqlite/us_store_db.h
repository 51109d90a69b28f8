/*
 * us_store_db.h - internals of the SQLite backend shared by us_db.c (the
 * connection), us_writer.c (the one-writer-at-a-time queue with group
 * commit) and us_store.c (the queries). Not for use outside src/store/sqlite/
 * and its unit tests.
 */
#ifndef US_STORE_DB_H
#define US_STORE_DB_H

#include <apr_dbd.h>
#include <apr_hash.h>
#include <semaphore.h>

#include "us_sql.h"
#include "us_store_backend.h"

struct us_writer;

/* Page cache of each SQLite connection, in KiB (PRAGMA cache_size=-N, set
 * in us_sql.c). A child holds one connection per worker thread, and a
 * transaction keeps every page it reads until it ends: with SQLite's
 * default of 2,000 KiB the COUNT(*) behind each list would grow every
 * connection's cache with the workspace, up to 2 MB times ThreadsPerChild.
 * A bigger cache buys little here: in WAL mode a connection drops it
 * whenever another one has committed since its last transaction, which
 * under load is nearly always; pages beyond the bound are read again from
 * the OS page cache. */
#define US_CACHE_KIB 256

/* The page cache of an ingest worker's connection (us_db_for_batches), in
 * KiB. A batch reads its files in name order and writes, per file, a
 * row of us_uploads (in upload order), two entries of us_uploads_files
 * (by upload time) and one of us_files' primary key (a random UUID):
 * pages spread over b-trees that grow with the session and the workspace.
 * With US_CACHE_KIB each of them was read again from the WAL or the
 * database file (measured, bench/p2_ingest.c: 2.3 misses per file at
 * 10,000 files, 6.1 at 50,000); this holds the pages of sessions of about
 * 100,000 files. Workers are few (UploadSessionIngestThreads per child)
 * and the cache fills only as far as it is used. */
#define US_BATCH_CACHE_KIB 32768

/* Checkpoints are us_db_maintain's (PRAGMA wal_checkpoint(PASSIVE): never
 * waits for readers or writers), which the ingest workers call every
 * US_MAINTENANCE_INTERVAL so that no request pays for it. Every connection
 * leaves its automatic checkpoints until the WAL holds this many pages (a
 * backstop): an automatic checkpoint runs inside whichever commit crosses
 * the mark, a copy and a sync of the database file while every writer
 * waits. */
#define US_AUTOCHECKPOINT_PAGES 10000

/* What UploadSessionStore sqlite3 PATH configures. */
typedef struct {
    const apr_dbd_driver_t *drv;
    const char *path;
    const us_logger *log;          /* us_store_set_logger's; copied into each connection */
} us_sqlite_conf;

/* The backend's message numbers (us_log.h: 11xx the store). */
enum {
    US_LOGNO_CHECKPOINT = 1101,    /* a WAL checkpoint failed */
    US_LOGNO_SYNC = 1102,          /* syncing the WAL after a commit failed */
    US_LOGNO_ROLLBACK = 1103,      /* a rollback failed */
    US_LOGNO_COMMIT = 1104,        /* a commit failed */
    US_LOGNO_SPLIT = 1105,         /* a shared batch is split after a failed piece */
    US_LOGNO_BUSY = 1106,          /* a statement found the database busy */
    US_LOGNO_LOCK_FILE = 1107,     /* the writers' lock file cannot be opened */
    US_LOGNO_REPREPARED = 1108,    /* a statement is prepared again after a schema change */
    US_LOGNO_WRITER_CONN = 1109,   /* the writers' own connection cannot be opened */
};

typedef struct us_sqlite_db us_sqlite_db;

/* Transaction control of a write batch (us_db_txn). */
typedef enum { US_TXN_BEGIN, US_TXN_COMMIT, US_TXN_ROLLBACK, US_TXN__COUNT } us_txn_op;

#define US_SQLITE_ERR_MAX 1024 /* longer messages are cut */

struct us_sqlite_db {
    us_db base;                    /* first: the front's view */
    apr_pool_t *pool;
    const apr_dbd_driver_t *drv;
    apr_dbd_t *h;
    const char *params;            /* which database: writers of the same one batch together */
    struct us_writer *writer;      /* that database's write queue in this process (lazy) */
    const char *wal_path;          /* SQLite in WAL mode: the file us_write syncs */
    int wal_fd;                    /* wal_path open for its syncs; -1 until the first */
    int (*wal_fdatasync)(int fd);  /* NULL: fdatasync; a unit test's stand-in */
    apr_dbd_prepared_t *stmt[US_STMT__COUNT];
    apr_dbd_prepared_t *txn[US_TXN__COUNT]; /* us_db_txn's, NULL until prepared */
    /* statements whose text is built per request (filters), by text; the
     * driver frees a statement only with its connection, so past
     * US_SQLITE_MAX_DYNAMIC the connection is worn out and not pooled again */
    apr_hash_t *dynamic;
    int worn_out;
    int reprepared;                /* statements prepared again after a schema change */
    int for_batches;               /* an ingest worker's: leads its batches itself (us_write) */
    /* NULL or one of errbuf: a connection outlives many failures (BUSY
     * keeps it pooled), so its messages take no memory of its pool */
    const char *err;
    char errbuf[2][US_SQLITE_ERR_MAX];
    const us_logger *log;
};

#define US_SQLITE_MAX_DYNAMIC 64

/* A statement prepared before another connection changed the schema (an
 * operator's CREATE INDEX, ANALYZE or VACUUM; a newer module migrating
 * while this process still serves) fails on every later run: the driver
 * prepares with the legacy sqlite3_prepare, whose statements SQLite never
 * prepares again by itself. us_db_run prepares it anew and runs it again,
 * at most this many times in a row (another change may come in between).
 * The replaced statements stay with the connection until it closes (the
 * driver frees statements only then): past US_SQLITE_MAX_REPREPARED of
 * them the connection is worn out and not pooled again. */
#define US_SQLITE_SCHEMA_RETRIES 3
#define US_SQLITE_MAX_REPREPARED 256

static inline us_sqlite_db *us_sqlite_of(us_db *db)
{
    return (us_sqlite_db *)db;
}

/* A connection to the database of conf (us_db.c), with every statement
 * prepared; us_store.c's table entry makes it a us_db. */
us_db_rc us_sqlite_open(const us_sqlite_conf *conf, apr_pool_t *p, us_sqlite_db **out,
                        const char **err);
void us_sqlite_close(us_sqlite_db *db);

/* The backend table's lifecycle entries (us_db.c). */
us_db_rc us_sqlite_configure(apr_pool_t *p, const char *params, void **conf, const char **err);
const char *us_sqlite_home(const void *conf, apr_pool_t *p);
void us_sqlite_set_lock_timeout(void *conf, int ms);
void us_sqlite_set_logger(void *conf, const us_logger *lg);
us_db_rc us_sqlite_migrate(const void *conf, apr_pool_t *p, const char **err);
us_db_rc us_sqlite_prepare_files(const void *conf, apr_pool_t *p, const char **err);
void us_sqlite_user_files(const void *conf, apr_pool_t *p, apr_array_header_t *paths);
us_db_rc us_sqlite_checkpoint(us_db *db, apr_pool_t *p);
us_db_rc us_sqlite_for_batches(us_db *db, apr_pool_t *p);
const char *us_sqlite_error(us_db *db);
void us_sqlite_clear_error(us_db *db);
void us_sqlite_set_error(us_db *db, const char *err);

/* The file whose flock queues our writers across processes (us_writer.c):
 * the database's path and this suffix. */
#define US_SQLITE_LOCK_SUFFIX ".lock"
const char *us_sqlite_lock_path(apr_pool_t *p, const char *db_path);

/* Records the error of driver result rc on db (db->err) and classifies it. */
us_db_rc us_db_fail(us_sqlite_db *db, int rc, const char *what);

/* The connection's last error (db->err), formatted, cut at US_SQLITE_ERR_MAX;
 * it may quote the one before. */
void us_sqlite_set_errf(us_sqlite_db *db, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The next row of res: US_DB_OK with *row set, US_DB_NOTFOUND after the
 * last one, or the classified error (db->err names the driver's message)
 * when the driver fails to fetch it - never "no more rows" then. (The
 * sqlite3 driver reads every row at select time: its fetches do not fail,
 * the select does.) */
us_db_rc us_db_next_row(us_sqlite_db *db, apr_pool_t *p, apr_dbd_results_t *res, apr_dbd_row_t **row);

/* Tests: replace apr_dbd_get_row (NULL restores it). */
void us_db_set_get_row(int (*fn)(const apr_dbd_driver_t *drv, apr_pool_t *p,
                                 apr_dbd_results_t *res, apr_dbd_row_t **row, int rownum));

/* Runs the prepared statement *stmt with args: a select into *res when
 * res is not NULL, else a query that sets *nrows. When it was prepared
 * before another connection changed the schema, *stmt is prepared anew
 * from sql and run again (US_SQLITE_SCHEMA_RETRIES): that failure comes
 * before the statement reads or changes anything, so inside a transaction
 * too. Returns the driver's result (0 on success). */
int us_db_run(us_sqlite_db *db, apr_pool_t *p, apr_dbd_prepared_t **stmt, const char *sql,
              const void **args, apr_dbd_results_t **res, int *nrows);

/* Runs a statement outside the prepared set. */
us_db_rc us_db_exec(us_sqlite_db *db, const char *sql);

/* Begins (BEGIN IMMEDIATE), commits or rolls back a write transaction
 * with a statement prepared once per connection (us_sqlite_open): the
 * driver's plain query parses its text anew on every call. */
us_db_rc us_db_txn(us_sqlite_db *db, us_txn_op op);

/* A piece of a write transaction: runs on some connection of the same
 * database (db), inside a transaction it must not open or end itself, and
 * may run more than once (reset outputs at its start). It returns US_DB_OK
 * when its changes should be kept; a logical answer (NOTFOUND, CONFLICT,
 * LIMIT) only when it changed nothing; US_DB_ERROR / US_DB_BUSY undo
 * whatever it did. */
typedef us_db_rc (*us_write_fn)(us_sqlite_db *db, apr_pool_t *p, void *arg);

/*
 * Runs fn durably: returns its result once the transaction holding its
 * changes has committed (or fn's result when that was not US_DB_OK, or the
 * error that stopped the transaction). Writers of one database in one
 * process queue here; whoever finds no transaction running becomes the
 * leader and runs every queued piece in one transaction - one commit, one
 * WAL sync for all of them (group commit) - while the others wait. Across
 * processes the leaders take an flock on "<database>.lock" first, so SQLite
 * never has to busy-wait (and sleep) for another of our processes.
 * A process runs one WAL sync at a time: batches that commit while it runs
 * share the next one, which begins when it ends.
 * p belongs to the caller; it is used by the leader while the caller waits.
 */
us_db_rc us_write(us_sqlite_db *db, apr_pool_t *p, us_write_fn fn, void *arg);

/* How many committed batches of db's writer in this process wait for the
 * next WAL sync (for tests). */
int us_write_sync_waiting(us_sqlite_db *db);

/* The backend's warm step: from now on this process's write batches run
 * on the writers' own connection (us_writer.c, leader_conn), opened now -
 * or, while a batch runs, by its leader or the next. Meant for a child's
 * start. */
void us_sqlite_warm(us_db *db);

/* The writers' own connection of db's process, which its batches run on;
 * NULL before it is opened (us_sqlite_warm), while it cannot be, or while
 * a batch runs (for tests). */
us_sqlite_db *us_write_leaders_conn(us_sqlite_db *db);

/* One queued piece of work (exposed for the unit tests of us_write_batch). */
typedef struct us_write_job {
    us_write_fn fn;
    void *arg;
    apr_pool_t *pool;
    us_db_rc rc;
    const char *err;               /* fn's or the transaction's error, in pool */
    int done;                      /* its batch has ended */
    struct us_write_job *next;
    int lead;                      /* it runs the next batch */
    sem_t wake;                    /* posted once: on done or on lead */
} us_write_job;

/* Runs a list of jobs in one transaction on db and sets every job's rc and
 * err. When a piece fails with a store error, all are rolled back and each
 * runs again in a transaction of its own. */
void us_write_batch(us_sqlite_db *db, us_write_job *jobs);

#endif

/*
 * us_pg_db.h - what the PostgreSQL backend's files share (us_pg_store.c,
 * us_pg_conn.c, us_pg_sessions.c, us_pg_files.c): its configuration, a
 * connection, and the connection's statements and transactions
 * (us_pg_conn.c).
 */
#ifndef US_PG_DB_H
#define US_PG_DB_H

#include "us_group.h"
#include "us_store_backend.h"

#include <apr_dbd.h>
#include <apr_hash.h>

typedef struct {
    const apr_dbd_driver_t *drv;
    const char *conninfo;
    int lock_timeout_ms;
    const us_logger *log;
    us_group *creates;             /* this process's concurrent creates, one commit each batch */
    us_group *gets;                /* this process's concurrent session reads, one statement each batch */
} us_pg_conf;

/* Statements built for a request (a filtered or re-ordered file list) are
 * prepared once per connection under a label of their own; a connection
 * holding this many is worn out and closed instead of pooled again (each
 * one is server memory of its backend process). */
#define US_PG_MAX_DYNAMIC 64

/* Concurrent creates that share one transaction at most (us_pg_session_insert). */
#define CREATE_BATCH_MAX 32

/* Concurrent session reads that share one statement at most (session_get_batch). */
#define GET_BATCH_MAX 32

/* Message numbers (us_log.h: 11xx the store; 1101-1108 are SQLite's). */
enum {
    US_LOGNO_PG_BROKEN = 1110,   /* a connection is gone; the next use opens a new one */
    US_LOGNO_PG_CONNECT = 1111,  /* a connection cannot be opened */
    US_LOGNO_PG_RETRY = 1112,    /* a transaction is retried after a deadlock */
    US_LOGNO_PG_ROLLBACK = 1113, /* a rollback failed */
    US_LOGNO_PG_BUSY = 1114,     /* a statement found the database busy */
    US_LOGNO_PG_LOCK_RETRY = 1115, /* a transaction is retried after a lock timeout */
};

#define US_PG_ERR_MAX 2048         /* longer messages are cut */

typedef struct {
    us_db base;                    /* first: the front's view */
    apr_pool_t *pool;              /* the connection object's */
    apr_pool_t *hpool;             /* the driver handle's and its statements' */
    const us_pg_conf *conf;
    apr_dbd_t *h;
    apr_dbd_prepared_t *stmt[US_STMT__COUNT];
    apr_hash_t *dynamic;           /* SQL text -> built statement, in hpool */
    int worn_out;                  /* holds US_PG_MAX_DYNAMIC built statements */
    int outcome_unknown;           /* the last transaction's COMMIT lost its connection */
    int broken;                    /* reopen before the next statement */
    int deadlock;                  /* the last failure was a deadlock: retry */
    int lock_timeout;              /* ... or a lock timeout: retry once (us_pg_txn) */
    int in_txn;                    /* inside us_pg_run's BEGIN ... COMMIT */
    const char *err;               /* NULL, a literal, or one of errbuf */
    /* the last message, written to the buffer err is not in (a message may
     * quote the one before): a connection that lives as long as its thread
     * fails as often as its database is down, in the same memory */
    char errbuf[2][US_PG_ERR_MAX];
} us_pg_db;

extern const us_store_backend us_pgsql_backend;

static inline us_pg_db *us_pg_of(us_db *db)
{
    return (us_pg_db *)db;
}

/* A transaction's body: returns US_DB_OK to commit; anything else rolls
 * back (logical answers included: they change nothing). May run again
 * after a deadlock or a lock timeout: reset outputs at its start. */
typedef us_db_rc (*us_pg_txn_fn)(us_pg_db *db, apr_pool_t *p, void *arg);

/* The connection's last error (db->err), formatted, cut at US_PG_ERR_MAX. */
void us_pg_set_err(us_pg_db *db, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A failed statement's outcome: BUSY when trying again later may succeed
 * (a deadlock, a lock timeout, a lost connection: the flags say which),
 * else ERROR. The connection's own status tells a lost one too: the driver's
 * check_conn would PQreset it silently, losing its prepared statements. */
us_db_rc us_pg_fail(us_pg_db *db, int rc, const char *what);

/* SQL text run as is (BEGIN, COMMIT, SET): no statement to prepare. */
us_db_rc us_pg_exec_sql(us_pg_db *db, const char *sql);

/* The connection, reopened first when the last use found it broken, or
 * when the server ended it since: outside a transaction nothing is lost by
 * that, and the statement runs instead of failing with a 503. */
us_db_rc us_pg_ready(us_pg_db *db);

/* A new connection object of backend, connected, in a pool of its own (a
 * child of p). */
us_db_rc us_pg_new(const us_store_backend *backend, const us_pg_conf *conf, apr_pool_t *p,
                   us_pg_db **out, const char **err);

/* Statement id run with args (in its placeholders' order): us_pg_select
 * gives its rows in *res (random access), us_pg_exec the rows it changed. */
us_db_rc us_pg_select(us_pg_db *db, apr_pool_t *p, us_stmt_id id, const void **args,
                      apr_dbd_results_t **res);

us_db_rc us_pg_exec(us_pg_db *db, apr_pool_t *p, us_stmt_id id, const void **args,
                    int *nrows);

/* The next row: US_DB_OK, or US_DB_NOTFOUND after the last. (In random
 * access the driver holds every row already: fetching does not fail.) */
us_db_rc us_pg_next_row(us_pg_db *db, apr_pool_t *p, apr_dbd_results_t *res,
                        apr_dbd_row_t **row);

/* Column col of row as a number (0 for NULL), or as a copy in p ("" for NULL). */
long long us_pg_entry_ll(const us_pg_db *db, apr_dbd_row_t *row, int col);

const char *us_pg_entry_str(const us_pg_db *db, apr_pool_t *p, apr_dbd_row_t *row, int col);

/* The first column of the first row as a number (counts, flags); *found
 * (may be NULL) says whether there was a row. */
us_db_rc us_pg_select_ll(us_pg_db *db, apr_pool_t *p, us_stmt_id id, const void **args,
                         long long *out, int *found);

/* Column order of SESSION_COLS in us_pg_sql.c */
us_db_rc us_pg_select_session(us_pg_db *db, apr_pool_t *p, us_stmt_id id, const void **args,
                              us_session *out);

/* Runs fn in a transaction of its own (BEGIN ... COMMIT), or, when fn runs
 * one statement (txn 0), as that statement's own transaction: two round
 * trips fewer, and its locks end with it. */
us_db_rc us_pg_run(us_pg_db *db, apr_pool_t *p, us_pg_txn_fn fn, void *arg, int txn);

/* us_pg_run of a transaction of several statements. */
us_db_rc us_pg_txn(us_pg_db *db, apr_pool_t *p, us_pg_txn_fn fn, void *arg);

/* The backend's entries whose body is its own, in us_pg_sessions.c and
 * us_pg_files.c (us_store_backend.h says what each does). */
us_db_rc us_pg_session_insert(us_db *base, apr_pool_t *p, us_session *s, int max_open,
                              apr_time_t now);

us_db_rc us_pg_expire_sessions(us_db *base, apr_pool_t *p, int *count);

us_db_rc us_pg_workspace_file_list_built(us_db *base, apr_pool_t *p, const char *workspace,
                                         const us_workspace_file_query *q,
                                         apr_array_header_t *rows, long long *total);

us_db_rc us_pg_workspace_file_delete(us_db *base, apr_pool_t *p, const char *workspace,
                                     const char *file_id);

us_db_rc us_pg_workspace_files_delete(us_db *base, apr_pool_t *p, const char *workspace,
                                      const apr_array_header_t *names,
                                      apr_array_header_t **deleted);

us_db_rc us_pg_workspace_delete(us_db *base, apr_pool_t *p, const char *name, apr_time_t now,
                                apr_array_header_t **file_ids);

#endif

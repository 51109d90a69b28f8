/*
 * us_worker_link.h - a background worker's connection to its store (the
 * ingest and webhook workers), and how its failures are told: a store that
 * is down (US_DB_BUSY) once, at warn, until a connection opens or the
 * store answers again - the store's own lines, throttled, say the rest of
 * an outage - and any other failure every time.
 */
#ifndef US_WORKER_LINK_H
#define US_WORKER_LINK_H

#include "us_log.h"
#include "us_metrics.h"
#include "us_store.h"

typedef struct {
    const us_logger *log;
    const char *who;   /* "ingest worker <owner>", said first on each line */
    int error_no;      /* a failure that is no outage */
    int down_no;       /* the first failure of an outage */
    int back_no;       /* the first connection after one (info) */
    int down;          /* an outage was said and no connection opened since */
    us_metrics_slot *metrics; /* counts each failure (worker_store_errors); may be NULL */
} us_worker_link;

/* Opens *db in p (us_db_open_apart) unless it is open and not worn out
 * (us_db_worn_out: a worn-out one is closed first, as the request
 * handlers' pool does): US_DB_OK when it is, else the failure, logged as
 * above and counted, with *db NULL. */
us_db_rc us_worker_connect(us_worker_link *l, apr_pool_t *p, const us_store_cfg *store,
                           us_db **db);
/* A failure of the store on an open connection, err its message: a
 * store that is down (US_DB_BUSY) is an outage as above - said once at
 * warn (down_no), at debug under no after that - any other failure is
 * said at warn under no, every time; each counted. */
void us_worker_failed(us_worker_link *l, us_db_rc rc, int no, const char *err);
/* The store answered on an open connection: the end of an outage said
 * (back_no, info). */
void us_worker_answered(us_worker_link *l);

#endif

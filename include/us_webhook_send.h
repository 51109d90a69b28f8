/*
 * us_webhook_send.h - delivering the store's webhook outbox (us_store.h):
 * workers in each child claim a due row with a lease, POST its event (the
 * body of us_webhook.h, signed) with libcurl, and settle the row by the
 * answer's status line (the transfer ends with the answer's headers: its
 * body is never read): 2xx delivered (the next page, or the row is gone), anything else retried
 * with us_webhook_backoff, given up (marked failed) once the event is
 * older than cfg->retry_for. A failed attempt also pauses its URL (the
 * store's circuit breaker, us_webhook_retry) for us_webhook_backoff of its
 * failures in a row, and fails the URL's pending rows older than
 * cfg->retry_for: a receiver that hangs holds one worker at a time, not
 * every worker once per row. At least once: a worker that dies between the
 * POST and the settle leaves the row to be sent again when its lease
 * lapses. No httpd headers; messages numbered 13xx.
 *
 * A delivery: POST url, Content-Type: application/json, body = the event,
 *   X-Upload-Session-Event: session.ingested | session.expired
 *   X-Upload-Session-Delivery: <delivery_id>
 *   X-Upload-Session-Timestamp: <unix seconds of this attempt>
 *   X-Upload-Session-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>
 */
#ifndef US_WEBHOOK_SEND_H
#define US_WEBHOOK_SEND_H

#include <apr_pools.h>
#include <apr_time.h>

#include "us_log.h"
#include "us_metrics.h"
#include "us_store.h"

typedef struct {
    const us_store_cfg *store;
    const char *secret;            /* the signing secret (us_webhook_secret_read) */
    apr_size_t secret_len;
    int threads;                   /* workers in this process */
    apr_interval_time_t poll;      /* idle wait between claims */
    apr_interval_time_t lease;     /* a claimed row is another's after this */
    apr_interval_time_t timeout;   /* one POST, connection included */
    apr_interval_time_t retry_for; /* an event older than this is given up */
    const char *host;              /* owner ids: host/pid/worker */
    const us_logger *log;          /* may be NULL */
    us_metrics_slot *metrics;      /* counts the store's failures; may be NULL */
} us_webhook_config;

typedef struct us_webhook_sender us_webhook_sender;

/* libcurl's global set-up: call once per process before any thread starts. */
int us_webhook_global_init(void);

/* Starts cfg->threads workers; each has its own pool and connection. */
apr_status_t us_webhook_start(apr_pool_t *p, const us_webhook_config *cfg,
                              us_webhook_sender **out);
/* Asks the workers to stop, without waiting: a POST under way is cut
 * short within a second, its row released for a later attempt. */
void us_webhook_stop_soon(us_webhook_sender *s);
/* us_webhook_stop_soon, then waits for the workers. */
void us_webhook_stop(us_webhook_sender *s);

/* Claims one due row and makes one attempt at it: 1 when a row was
 * attempted, 0 when none was due, -1 on a store error (*failure: its
 * code; US_DB_OK otherwise). Once *stop (may be NULL) is set, a POST under
 * way ends (within a second) and its row is released as it was: due
 * again, its attempts not counted. */
int us_webhook_once(us_db *db, apr_pool_t *p, const us_webhook_config *cfg, const char *owner,
                    volatile apr_uint32_t *stop, us_db_rc *failure);

#endif

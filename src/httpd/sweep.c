/*
 * sweep.c - the monitor hook in the parent: the expiry sweep of each store
 * every UploadSessionSweepInterval, the failed webhook rows past their
 * retention, and this node's heartbeat in the store's node registry.
 */
#include "hooks.h"
#include "lifecycle.h"
#include "us_webhook.h"

#include <http_log.h>
#include <apr_hash.h>
#include <apr_strings.h>

APLOG_USE_MODULE(upload_session);

typedef struct {
    apr_time_t last, last_beat;
    int lost; /* the node's name was taken over: said once */
} sweep_state;

/* Lives in a sub-pool of pconf: a restart clears it and the hash with it. */
static apr_pool_t *sweep_pool;
static apr_hash_t *sweep_states;

static apr_status_t sweep_reset(void *data)
{
    (void)data;
    sweep_pool = NULL;
    sweep_states = NULL;
    return APR_SUCCESS;
}

/* Failed webhook rows past UploadSessionWebhookRetention: one bounded
 * batch per sweep (a backlog goes over several), so no sweep holds a long
 * write; nodes sweeping one store at once delete different rows. */
static void forget_failed_webhooks(server_rec *s, us_srv_conf *c, us_db *db, apr_pool_t *p,
                                   apr_time_t now)
{
    int n = 0;
    us_db_rc rc = us_webhook_forget_failed(db, p, now - apr_time_from_sec(c->webhook_retention),
                                           US_WEBHOOK_FORGET_BATCH, &n);
    if (rc != US_DB_OK)
        ap_log_error(APLOG_MARK, rc == US_DB_BUSY ? APLOG_INFO : APLOG_WARNING, 0, s,
                     USLOGNO(1122) "expiry sweep: failed webhook deliveries not deleted: %s",
                     us_db_error(db));
    else if (n > 0)
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, USLOGNO(1123)
                     "expiry sweep: %d failed webhook deliveries older than %d s deleted", n,
                     c->webhook_retention);
}

/* One due call's work on db. */
static void sweep_with(server_rec *s, us_srv_conf *c, sweep_state *st, us_db *db,
                       apr_pool_t *tmp, int sweep_due, int beat_due, apr_time_t now)
{
    int n = 0;
    if (beat_due) {
        us_db_rc brc = us_node_heartbeat(db, tmp, us_node_name_of(tmp, c), us_node_instance(s));
        if (brc == US_DB_CONFLICT && !st->lost)
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, USLOGNO(0019)
                         "UploadSessionNodeName %s was taken over by another node: two nodes "
                         "share this name", us_node_name_of(tmp, c));
        else if (brc != US_DB_OK && brc != US_DB_CONFLICT)
            ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, USLOGNO(0020) "node heartbeat: %s",
                         us_db_error(db));
        st->lost = brc == US_DB_CONFLICT;
    }
    if (!sweep_due)
        return;
    us_db_rc rc = us_sessions_expire(db, tmp, &n);
    if (rc != US_DB_OK)
        ap_log_error(APLOG_MARK, rc == US_DB_BUSY ? APLOG_INFO : APLOG_WARNING, 0, s,
                     USLOGNO(0007) "expiry sweep: %s", us_db_error(db));
    else if (n > 0)
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, USLOGNO(0008)
                     "expiry sweep: %d session(s) expired, ingestion queued", n);
    if (c->webhooks) /* without URLs the outbox is empty (us_webhook_targets_set) */
        forget_failed_webhooks(s, c, db, tmp, now);
}

/* The connection is opened for each due call and closed before it returns:
 * the parent forks children between calls (a child replaced, the server
 * growing), and a SQLite connection open across a fork leaves the child
 * SQLite's state of the parent's open files - the -shm mapping reused
 * without the child's own lock on it, which a restart's first connection
 * then takes for unused and resets under the child. */
static void sweep_store(server_rec *s, us_srv_conf *c, sweep_state *st)
{
    apr_time_t now = apr_time_now();
    char err[256];
    apr_pool_t *tmp;
    us_db *db = NULL;
    /* a third of the lease, so a live node is never judged gone */
    apr_interval_time_t beat = apr_time_from_sec(c->ingest_lease) / 3;
    int sweep_due = now - st->last >= apr_time_from_sec(c->sweep_interval);
    /* a store without a node registry (SQLite) has no heartbeat to write */
    int beat_due = us_store_keeps_nodes(c->store_cfg) &&
                   now - st->last_beat >= (beat > APR_USEC_PER_SEC ? beat : APR_USEC_PER_SEC);

    if (!sweep_due && !beat_due)
        return;
    if (sweep_due)
        st->last = now;
    if (beat_due)
        st->last_beat = now;
    apr_pool_create(&tmp, sweep_pool);
    us_db_rc orc = us_db_open_apart(tmp, c->store_cfg, &db, err, sizeof(err));
    if (orc != US_DB_OK) {
        /* busy: a database away for a moment (a server restarting) */
        ap_log_error(APLOG_MARK, orc == US_DB_BUSY ? APLOG_INFO : APLOG_WARNING, 0, s,
                     USLOGNO(0006) "expiry sweep: %s", err);
        apr_pool_destroy(tmp);
        return;
    }
    /* we are root: files the store creates now must stay usable by User */
    us_give_store_to_user(tmp, c->store_cfg);
    sweep_with(s, c, st, db, tmp, sweep_due, beat_due, now);
    us_db_close(db);
    apr_pool_destroy(tmp);
}

int us_monitor(apr_pool_t *p, server_rec *s)
{
    if (!sweep_pool) {
        apr_pool_create(&sweep_pool, p);
        apr_pool_tag(sweep_pool, "us_sweep");
        sweep_states = apr_hash_make(sweep_pool);
        apr_pool_cleanup_register(sweep_pool, NULL, sweep_reset, apr_pool_cleanup_null);
    }
    /* each call's keys in a pool of its own: sweep_pool lives until the
     * next restart and keeps only the states' */
    apr_pool_t *keys;
    if (apr_pool_create(&keys, p) != APR_SUCCESS)
        return DECLINED;
    for (server_rec *v = s; v; v = v->next) {
        us_srv_conf *c = us_srv_conf_get(v);
        if (!us_srv_enabled(c) || !c->store_cfg)
            continue;
        /* one state per store and node name: each name has its heartbeat */
        const char *k = apr_pstrcat(keys, c->store_driver, "\n", c->store_params, "\n",
                                    c->node_name ? c->node_name : "", NULL);
        sweep_state *st = apr_hash_get(sweep_states, k, APR_HASH_KEY_STRING);
        if (!st) {
            st = apr_pcalloc(sweep_pool, sizeof(*st));
            apr_hash_set(sweep_states, apr_pstrdup(sweep_pool, k), APR_HASH_KEY_STRING, st);
        }
        sweep_store(v, c, st);
    }
    apr_pool_destroy(keys);
    return DECLINED;
}

/*
 * children.c - child_init: fix malloc's mmap threshold, pick this child's
 * counter slot, open a connection pool per store (its first connections
 * opened in a thread), start its ingest workers and webhook worker, and
 * stop them all together when the child ends.
 */
#include "hooks.h"
#include "lifecycle.h"
#include "us_ingest.h"
#include "us_webhook_send.h"

#include <http_log.h>
#include <ap_mpm.h>
#include <apr_hash.h>
#include <apr_strings.h>

#include <malloc.h>
#include <string.h>

APLOG_USE_MODULE(upload_session);

/* Runs before pchild's sub-pools go: the workers still use their config. */
static apr_status_t stop_ingest(void *data)
{
    us_ingest_stop(data);
    return APR_SUCCESS;
}

/* The largest UploadSessionMaxFileSize of the servers naming c's store: the
 * store's one set of workers waits, before a session's last clear, for the
 * largest file any of them lets a client upload. */
static long long largest_file_size(apr_pool_t *p, server_rec *main_s, const us_srv_conf *c)
{
    const char *k = us_store_key(p, c);
    long long most = c->max_file_size;
    for (server_rec *v = main_s; v; v = v->next) {
        const us_srv_conf *o = us_srv_conf_get(v);
        if (us_srv_enabled(o) && o->store_cfg && o->max_file_size > most &&
            strcmp(us_store_key(p, o), k) == 0)
            most = o->max_file_size;
    }
    return most;
}

static us_ingester *start_ingest(apr_pool_t *pchild, server_rec *main_s, server_rec *s,
                                 us_srv_conf *c)
{
    us_ingest_config *cfg = apr_pcalloc(pchild, sizeof(*cfg));
    us_ingester *ing = NULL;

    cfg->store = c->store_cfg;
    cfg->storage = c->storage;
    cfg->threads = c->ingest_threads;
    cfg->batch = 256;
    cfg->poll = apr_time_from_msec(250);
    cfg->lease = apr_time_from_sec(c->ingest_lease);
    cfg->refusal_pause = apr_time_from_msec(c->refusal_pause);
    cfg->host = us_node_name_of(pchild, c);
    cfg->log = us_error_log_for(pchild, s);
    cfg->metrics = us_metrics_here();
    cfg->max_files = c->max_files;
    cfg->max_file_size = largest_file_size(pchild, main_s, c);
    apr_status_t rv = us_ingest_start(pchild, cfg, &ing);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, USLOGNO(0005) "cannot start ingest workers");
        return NULL;
    }
    apr_pool_pre_cleanup_register(pchild, ing, stop_ingest);
    return ing;
}

static apr_status_t stop_webhooks(void *data)
{
    us_webhook_stop(data);
    return APR_SUCCESS;
}

/* The outbox's deliverer of this child: one worker per store with webhooks. */
static us_webhook_sender *start_webhooks(apr_pool_t *pchild, server_rec *s, us_srv_conf *c)
{
    us_webhook_config *cfg = apr_pcalloc(pchild, sizeof(*cfg));
    us_webhook_sender *snd = NULL;
    char host[256] = "localhost";

    if (!c->webhooks)
        return NULL;
    if (c->node_name)
        apr_cpystrn(host, c->node_name, sizeof(host));
    else
        apr_gethostname(host, sizeof(host), pchild);
    cfg->store = c->store_cfg;
    cfg->secret = c->webhook_secret;
    cfg->secret_len = c->webhook_secret_len;
    cfg->threads = 1;
    cfg->poll = apr_time_from_msec(500);
    cfg->lease = apr_time_from_sec(60);
    cfg->timeout = apr_time_from_sec(10);
    cfg->retry_for = apr_time_from_sec(c->webhook_retry_for);
    cfg->host = apr_pstrdup(pchild, host);
    cfg->log = us_error_log_for(pchild, s);
    cfg->metrics = us_metrics_here();
    apr_status_t rv = us_webhook_start(pchild, cfg, &snd);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, USLOGNO(0021)
                     "cannot start the webhook worker");
        return NULL;
    }
    apr_pool_pre_cleanup_register(pchild, snd, stop_webhooks);
    return snd;
}

/* The child's background workers, every store's. */
typedef struct {
    apr_array_header_t *ingesters; /* us_ingester * */
    apr_array_header_t *senders;   /* us_webhook_sender * */
} child_workers;

/* Registered after each set's own stop (pre-cleanups run last registered
 * first): every set is asked to stop before any is waited for, so none
 * keeps working - or is killed mid-batch - while another one winds down. */
static apr_status_t ask_workers_to_stop(void *data)
{
    child_workers *w = data;
    for (int i = 0; i < w->senders->nelts; i++)
        us_webhook_stop_soon(APR_ARRAY_IDX(w->senders, i, us_webhook_sender *));
    for (int i = 0; i < w->ingesters->nelts; i++)
        us_ingest_stop_soon(APR_ARRAY_IDX(w->ingesters, i, us_ingester *));
    return APR_SUCCESS;
}

/* A store's warm step (us_store_warm: SQLite opens a pooled connection
 * and the writers' own, every statement prepared, before requests need
 * them) runs in a thread of its own: it may wait for a busy database (the
 * busy timeout, for each statement that sets a connection up), and while
 * child_init waits the child neither serves nor reads its parent's stop. */
typedef struct {
    us_store *store;
    server_rec *s;
    apr_thread_t *thread;
} store_warmer;

static void *APR_THREAD_FUNC warm_store(apr_thread_t *t, void *data)
{
    store_warmer *wm = data;
    us_store_warm(wm->store);
    ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, wm->s, USLOGNO(0028)
                 "the store's warm step is done");
    (void)t;
    return NULL; /* not apr_thread_exit: the pre-cleanup joins it */
}

/* Before the store's pool goes (a sub-pool of pchild). */
static apr_status_t join_warmer(void *data)
{
    store_warmer *wm = data;
    apr_status_t trv;
    apr_thread_join(&trv, wm->thread);
    return APR_SUCCESS;
}

static void start_warm(apr_pool_t *pchild, server_rec *s, us_store *store)
{
    if (!us_store_has_warm_step(store))
        return;
    store_warmer *wm = apr_pcalloc(pchild, sizeof(*wm));
    wm->store = store;
    wm->s = s;
    apr_status_t rv = apr_thread_create(&wm->thread, NULL, warm_store, wm, pchild);
    if (rv != APR_SUCCESS) {
        /* requests open the connections as they need them */
        ap_log_error(APLOG_MARK, APLOG_WARNING, rv, s, USLOGNO(0029)
                     "cannot start the thread of the store's warm step");
        return;
    }
    apr_pool_pre_cleanup_register(pchild, wm, join_warmer);
}

/* glibc serves an allocation above its mmap threshold with its own mapping,
 * returned to the system when freed - but raises the threshold to the size
 * of every such block freed, so later ones come from the worker threads'
 * arenas and stay resident there: the copies of large `meta` uploads would
 * keep a child that much larger. A fixed threshold (at glibc's default)
 * turns that raising off. */
static void fix_mmap_threshold(server_rec *s)
{
#ifdef M_MMAP_THRESHOLD
    if (mallopt(M_MMAP_THRESHOLD, US_MMAP_THRESHOLD) != 1)
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, USLOGNO(0010)
                     "cannot fix malloc's mmap threshold: large requests may stay resident");
#else
    (void)s;
#endif
}

void us_child_init(apr_pool_t *pchild, server_rec *s)
{
    apr_hash_t *stores = apr_hash_make(pchild);
    int threads = US_DEFAULT_MAX_CONNS;
    child_workers *workers = apr_pcalloc(pchild, sizeof(*workers));
    workers->ingesters = apr_array_make(pchild, 1, sizeof(us_ingester *));
    workers->senders = apr_array_make(pchild, 1, sizeof(us_webhook_sender *));

    fix_mmap_threshold(s);
    us_metrics_child_init();

    ap_mpm_query(AP_MPMQ_MAX_THREADS, &threads);
    if (threads < 1)
        threads = 1;
    for (server_rec *v = s; v; v = v->next) {
        us_srv_conf *c = us_srv_conf_get(v);
        if (!us_srv_enabled(c) || !c->store_cfg)
            continue;
        /* virtual hosts naming the same store share one pool of connections
         * and its workers: those of the first */
        const char *k = us_store_key(pchild, c);
        const us_srv_conf *first = apr_hash_get(stores, k, APR_HASH_KEY_STRING);
        if (first) {
            c->store = first->store;
            c->ingest = first->ingest;
            continue;
        }
        apr_status_t rv = us_store_create(pchild, c->store_cfg, threads, &c->store);
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                         USLOGNO(0003) "cannot create the connection pool for %s",
                         c->store_params);
            c->store = NULL;
            continue;
        }
        apr_hash_set(stores, k, APR_HASH_KEY_STRING, c);
        start_warm(pchild, v, c->store);
        c->ingest = start_ingest(pchild, s, v, c); /* one set of workers per store */
        us_webhook_sender *snd = start_webhooks(pchild, v, c);
        if (c->ingest)
            APR_ARRAY_PUSH(workers->ingesters, us_ingester *) = c->ingest;
        if (snd)
            APR_ARRAY_PUSH(workers->senders, us_webhook_sender *) = snd;
    }
    apr_pool_pre_cleanup_register(pchild, workers, ask_workers_to_stop);
}

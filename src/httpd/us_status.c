/*
 * us_status.c - what an operator watches: the counters' shared segment
 * (us_metrics.h) and the three pages that show it with the store's
 * overview:
 *   SetHandler upload-session-metrics   Prometheus text exposition 0.0.4
 *   SetHandler upload-session-status    the JSON status document
 *   mod_status's /server-status         a section (status_hook), and its
 *                                       "Key: value" lines under ?auto
 * The segment is created once by the parent in the process pool: children
 * of every generation inherit it, and restarts (graceful or not) keep the
 * counts; they start at zero when httpd starts. The parent frees a child's
 * gauges when the MPM reports it exited (child_status), however it died.
 */
#include "endpoints.h"
#include "hooks.h"
#include "us_time.h"
#include "us_version.h"
#include "us_webhook.h"

#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <apr_shm.h>
#include <apr_strings.h>
#include <mod_status.h>

#include <string.h>
#include <unistd.h>

APLOG_USE_MODULE(upload_session);

#define METRICS_HANDLER "upload-session-metrics"
#define STATUS_HANDLER "upload-session-status"
/* the process pool's key for the segment: survives the module's reloads */
#define SHM_KEY "mod_upload_session:metrics"

static us_metrics *metrics;       /* this generation's view of the segment */
static us_metrics_slot *my_slot;  /* this child's slot; NULL in the parent */
static us_metrics_gauges *my_gauges; /* this child's gauges; NULL in the parent */
static server_rec *main_server;

int us_metrics_setup(server_rec *s)
{
    apr_pool_t *proc = s->process->pool;
    apr_shm_t *shm = NULL;
    char key[64];
    main_server = s;
    /* a module of another layout, loaded by a restart, gets a segment of
     * its own size: the old one may be smaller */
    apr_snprintf(key, sizeof(key), "%s:%" APR_SIZE_T_FMT, SHM_KEY, us_metrics_size());
    apr_pool_userdata_get((void **)&shm, key, proc);
    if (!shm) {
        /* anonymous: inherited by every child forked after this */
        apr_status_t rv = apr_shm_create(&shm, us_metrics_size(), NULL, proc);
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_ERR, rv, s, USLOGNO(0018)
                         "cannot create the shared memory of the counters: "
                         "the metrics and status pages show no counts");
            metrics = NULL;
            return OK;
        }
        apr_pool_userdata_set(shm, key, apr_pool_cleanup_null, proc); /* copies the key */
    }
    metrics = us_metrics_attach(apr_shm_baseaddr_get(shm), apr_time_now());
    return OK;
}

void us_metrics_child_init(void)
{
    my_slot = us_metrics_slot_for(metrics, (long)getpid());
    my_gauges = us_metrics_gauges_claim(metrics, (long)getpid());
    if (metrics && !my_gauges)
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, main_server, USLOGNO(1124)
                     "more than %d processes count uploads in progress: this one's are "
                     "not shown", US_METRICS_PROCS);
}

us_metrics_slot *us_metrics_here(void)
{
    return my_slot;
}

us_metrics_gauges *us_metrics_gauges_here(void)
{
    return my_gauges;
}

void us_status_child_status(server_rec *s, pid_t pid, ap_generation_t gen, int slot,
                            mpm_child_status state)
{
    (void)s;
    (void)gen;
    (void)slot;
    /* killed mid-upload, a child never ended its uploads' gauges */
    if (state == MPM_CHILD_EXITED)
        us_metrics_gauges_release(metrics, (long)pid);
}

us_endpoint us_endpoint_of(const us_route *route, int method)
{
    if (!route->method_allowed)
        return US_EP_OTHER;
    switch (route->id) {
    case US_ROUTE_SESSIONS:
        return method == M_POST ? US_EP_SESSION_CREATE : US_EP_SESSION_LIST;
    case US_ROUTE_SESSION:
        return method == M_PUT      ? US_EP_SESSION_CLOSE
               : method == M_DELETE ? US_EP_SESSION_ABORT
                                    : US_EP_SESSION_GET;
    case US_ROUTE_SESSION_FILES:
        return US_EP_SESSION_FILES;
    case US_ROUTE_FILES:
        return method == M_POST     ? US_EP_FILE_POST
               : method == M_DELETE ? US_EP_FILES_DELETE
                                    : US_EP_FILE_LIST;
    case US_ROUTE_FILE:
        return method == M_DELETE ? US_EP_FILE_DELETE : US_EP_FILE_GET;
    case US_ROUTE_FILE_META:
        return US_EP_FILE_META;
    case US_ROUTE_FILES_UPDATE_META:
        return US_EP_FILES_UPDATE_META;
    case US_ROUTE_WORKSPACES:
    case US_ROUTE_WORKSPACE:
        return US_EP_WORKSPACE;
    case US_ROUTE_UPLOAD_TARGET:
        return US_EP_UPLOAD;
    case US_ROUTE_HEALTH:
        return US_EP_HEALTH;
    default:
        return US_EP_OTHER;
    }
}

/* The configuration whose store and storage the pages read: the request's
 * server when it serves the API, else the first server that does. */
static us_srv_conf *conf_for(server_rec *s)
{
    us_srv_conf *c = us_srv_conf_get(s);
    if (us_srv_enabled(c))
        return c;
    for (server_rec *v = main_server; v; v = v->next)
        if (us_srv_enabled(c = us_srv_conf_get(v)))
            return c;
    return NULL;
}

/* Fills v for r: the counters' sum, the store's overview (and the running
 * claims when leases), the storage's health. */
static void gather(request_rec *r, us_status_view *v, int leases)
{
    us_metrics_counts *counts = apr_pcalloc(r->pool, sizeof(*counts));
    us_store_overview *o = apr_pcalloc(r->pool, sizeof(*o));
    us_webhook_stats *wh = apr_pcalloc(r->pool, sizeof(*wh));
    us_srv_conf *c = conf_for(r->server);
    const char *err = NULL;
    us_db *db = NULL;

    memset(v, 0, sizeof(*v));
    us_metrics_sum(metrics, counts);
    v->version = US_VERSION;
    v->now = apr_time_now();
    v->since = us_metrics_since(metrics);
    v->counts = counts;
    if (!c) {
        v->store_error = v->storage_error = "no server with UploadSession On";
        return;
    }
    if (c->webhooks)
        v->webhook_urls = c->webhooks->nelts; /* the section shows null when not read */
    us_db_rc rc = c->store ? us_store_acquire(c->store, &db, &err) : US_DB_ERROR;
    if (rc == US_DB_OK) {
        rc = us_store_overview_read(db, r->pool, v->now, o);
        if (rc == US_DB_OK && leases) {
            apr_array_header_t *claims = NULL;
            rc = us_ingest_running(db, r->pool, &claims);
            v->leases = claims;
        }
        if (rc != US_DB_OK)
            err = apr_pstrdup(r->pool, us_db_error(db));
        /* a read of its own: an outbox that cannot be read leaves the
         * overview read above as it is */
        us_db_rc wrc = US_DB_OK;
        if (rc == US_DB_OK && c->webhooks) {
            apr_array_header_t *paused = NULL;
            if ((wrc = us_webhook_stats_read(db, r->pool, wh)) == US_DB_OK &&
                (wrc = us_webhook_paused_read(db, r->pool, v->now, &paused)) == US_DB_OK) {
                v->webhooks = wh;
                v->webhook_paused = paused;
            }
            else {
                us_metrics_store_error(my_slot);
                ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, USLOGNO(0024)
                              "status: the webhook outbox cannot be read: %s",
                              us_db_error(db));
            }
        }
        us_store_release(c->store, db, rc == US_DB_ERROR || wrc == US_DB_ERROR);
    }
    if (rc == US_DB_OK) {
        v->overview = o;
    }
    else {
        us_metrics_store_error(my_slot);
        v->store_error = err ? err : "no connection pool in this process";
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, USLOGNO(0017)
                      "status: the store does not answer: %s", v->store_error);
    }
    apr_status_t srv = c->storage ? us_storage_check(c->storage, r->pool) : APR_EINIT;
    if (srv != APR_SUCCESS)
        v->storage_error = "the file storage cannot be written";
}

int us_status_handler(request_rec *r)
{
    us_status_view v;
    int json;

    if (!r->handler)
        return DECLINED;
    if (strcmp(r->handler, METRICS_HANDLER) == 0)
        json = 0;
    else if (strcmp(r->handler, STATUS_HANDLER) == 0)
        json = 1;
    else
        return DECLINED;
    r->allowed = AP_METHOD_BIT << M_GET;
    if (r->method_number != M_GET)
        return HTTP_METHOD_NOT_ALLOWED;
    gather(r, &v, json);
    const char *body = json ? us_metrics_status_json(r->pool, &v) : us_metrics_prometheus(r->pool, &v);
    if (!body) /* a store error text that is not UTF-8 */
        return HTTP_INTERNAL_SERVER_ERROR;
    ap_set_content_type(r, json ? "application/json"
                                : "text/plain; version=0.0.4; charset=utf-8");
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    if (!r->header_only)
        ap_rputs(body, r);
    return OK;
}

/* mod_status's section of /server-status: a table, or under ?auto the
 * "Key: value" lines. */
int us_status_hook(request_rec *r, int flags)
{
    us_status_view v;

    if (!conf_for(r->server))
        return OK;
    gather(r, &v, 0);
    if (flags & AP_STATUS_SHORT) {
        ap_rputs(us_metrics_status_auto(r->pool, &v), r);
        return OK;
    }
    ap_rputs("<hr>\n<h2>mod_upload_session</h2>\n<table>\n", r);
    /* the same lines as ?auto, one row each */
    char *lines = apr_pstrdup(r->pool, us_metrics_status_auto(r->pool, &v));
    char *last = NULL;
    for (char *l = apr_strtok(lines, "\n", &last); l; l = apr_strtok(NULL, "\n", &last)) {
        char *sep = strstr(l, ": ");
        if (!sep)
            continue;
        *sep = '\0';
        ap_rprintf(r, "<tr><th align=\"left\">%s</th><td>%s</td></tr>\n",
                   ap_escape_html(r->pool, l + sizeof("UploadSession") - 1),
                   ap_escape_html(r->pool, sep + 2));
    }
    /* a row per paused webhook URL, as the JSON status lists them */
    for (int i = 0; v.webhook_paused && i < v.webhook_paused->nelts; i++) {
        const us_webhook_paused *u = &APR_ARRAY_IDX(v.webhook_paused, i, us_webhook_paused);
        char until[US_TS_LEN];
        us_time_format(u->paused_until, until);
        ap_rprintf(r, "<tr><th align=\"left\">WebhookPaused</th><td>%s: %d failed attempts "
                   "in a row, paused until %s</td></tr>\n",
                   ap_escape_html(r->pool, us_webhook_url_shown(r->pool, u->url)), u->failures,
                   until);
    }
    ap_rputs("</table>\n", r);
    return OK;
}

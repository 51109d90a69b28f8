/*
 * us_metrics_text.c - the pages of us_metrics.h: the Prometheus text
 * exposition, the JSON status document and mod_status's "?auto" lines.
 */
#include "us_metrics.h"
#include "us_json_writer.h"
#include "us_time.h"
#include "us_webhook.h"

#include <apr_hash.h>
#include <apr_strings.h>
#include <string.h>

#define PREFIX "mod_upload_session_"

/* A duration in microseconds as seconds with six decimals. */
static const char *seconds(apr_pool_t *p, apr_uint64_t us)
{
    return apr_psprintf(p, "%" APR_UINT64_T_FMT ".%06" APR_UINT64_T_FMT, us / 1000000,
                        us % 1000000);
}

/* Microseconds from t to now, 0 when t is not set or not past. */
static apr_uint64_t age_of(const us_status_view *v, apr_time_t t)
{
    return t <= 0 || t >= v->now ? 0 : (apr_uint64_t)(v->now - t);
}

/* Age of the oldest queue entry in microseconds, 0 when there is none. */
static apr_uint64_t oldest_age(const us_status_view *v)
{
    const us_store_overview *o = v->overview;
    if (!o || o->oldest_queued <= 0 || o->oldest_queued >= v->now)
        return 0;
    return (apr_uint64_t)(v->now - o->oldest_queued);
}

static void head(apr_array_header_t *out, const char *name, const char *type, const char *help)
{
    APR_ARRAY_PUSH(out, const char *) = apr_pstrcat(out->pool, "# HELP " PREFIX, name, " ", help,
                                                    "\n# TYPE " PREFIX, name, " ", type, "\n",
                                                    NULL);
}

static void sample(apr_array_header_t *out, const char *name, const char *labels,
                   const char *value)
{
    APR_ARRAY_PUSH(out, const char *) = apr_pstrcat(out->pool, PREFIX, name,
                                                    labels ? labels : "", " ", value, "\n", NULL);
}

static const char *u64(apr_pool_t *p, apr_uint64_t n)
{
    return apr_psprintf(p, "%" APR_UINT64_T_FMT, n);
}

static const char *ll(apr_pool_t *p, long long n)
{
    return apr_psprintf(p, "%" APR_INT64_T_FMT, (apr_int64_t)n);
}

/* URLs paused now, 0 when not read. */
static long long paused_count(const us_status_view *v)
{
    return v->webhook_paused ? v->webhook_paused->nelts : 0;
}

const char *us_metrics_prometheus(apr_pool_t *p, const us_status_view *v)
{
    const us_metrics_counts *c = v->counts;
    apr_array_header_t *out = apr_array_make(p, 128, sizeof(const char *));

    head(out, "uploads_total", "counter", "Files received by the upload target and recorded.");
    sample(out, "uploads_total", NULL, u64(p, c->uploads));
    head(out, "upload_bytes_total", "counter", "Bytes of the files recorded by the upload target.");
    sample(out, "upload_bytes_total", NULL, u64(p, c->upload_bytes));
    head(out, "uploads_in_progress", "gauge", "Uploads being received.");
    sample(out, "uploads_in_progress", NULL, u64(p, c->uploads_active));
    head(out, "upload_bytes_in_progress", "gauge",
         "Bytes received so far by the uploads in progress.");
    sample(out, "upload_bytes_in_progress", NULL, u64(p, c->upload_bytes_active));
    head(out, "ingested_files_total", "counter",
         "Files decided by ingestion, by status and FAILED reason.");
    for (int o = 0; o < US_OUTCOME__COUNT; o++)
        sample(out, "ingested_files_total",
               apr_psprintf(p, "{status=\"%s\",reason=\"%s\"}", us_outcome_status(o),
                            us_outcome_reason(o)),
               u64(p, c->files[o]));
    head(out, "store_errors_total", "counter",
         "Store operations of requests and status pages that failed "
         "(busy, error, not durable).");
    sample(out, "store_errors_total", NULL, u64(p, c->store_errors));
    head(out, "worker_store_errors_total", "counter",
         "Store failures of the ingest workers and the event deliverers: failed connects, "
         "and rounds a store failure ended (each retried).");
    sample(out, "worker_store_errors_total", NULL, u64(p, c->worker_store_errors));
    head(out, "ingest_claims_lost_total", "counter",
         "Ingest claims another worker took over mid-session once their lease lapsed.");
    sample(out, "ingest_claims_lost_total", NULL, u64(p, c->ingest_claims_lost));

    head(out, "store_up", "gauge", "1 when the store answered this scrape's query.");
    sample(out, "store_up", NULL, v->overview ? "1" : "0");
    if (v->overview) {
        const us_store_overview *o = v->overview;
        head(out, "sessions", "gauge", "Upload sessions by state.");
        sample(out, "sessions", "{state=\"OPEN\"}", ll(p, o->open));
        sample(out, "sessions", "{state=\"CLOSED\"}", ll(p, o->closed));
        sample(out, "sessions", "{state=\"EXPIRED\"}", ll(p, o->expired));
        head(out, "ingest_queue_sessions", "gauge",
             "Closed sessions not ingested yet (queued or being ingested).");
        sample(out, "ingest_queue_sessions", NULL, ll(p, o->queued + o->running));
        head(out, "ingest_running_sessions", "gauge", "Sessions claimed by an ingest worker.");
        sample(out, "ingest_running_sessions", NULL, ll(p, o->running));
        head(out, "ingest_queue_oldest_age_seconds", "gauge",
             "Time since the oldest session of the ingest queue was closed (0 when empty).");
        sample(out, "ingest_queue_oldest_age_seconds", NULL, seconds(p, oldest_age(v)));
    }
    if (v->webhook_urls > 0 && v->webhooks) {
        const us_webhook_stats *wh = v->webhooks;
        head(out, "webhook_deliveries_pending", "gauge",
             "Webhook deliveries (event and URL) not made yet, retries included.");
        sample(out, "webhook_deliveries_pending", NULL, ll(p, wh->pending));
        head(out, "webhook_deliveries_failed", "gauge",
             "Webhook deliveries given up after UploadSessionWebhookRetryFor.");
        sample(out, "webhook_deliveries_failed", NULL, ll(p, wh->failed));
        head(out, "webhook_oldest_pending_age_seconds", "gauge",
             "Time since the event of the oldest pending webhook delivery (0 when none).");
        sample(out, "webhook_oldest_pending_age_seconds", NULL,
               seconds(p, age_of(v, wh->oldest_pending)));
        head(out, "webhook_last_error_timestamp_seconds", "gauge",
             "Unix time of the latest failed attempt of a delivery not made yet (0 when none).");
        sample(out, "webhook_last_error_timestamp_seconds", NULL,
               seconds(p, wh->last_error ? (apr_uint64_t)wh->last_error_at : 0));
        head(out, "webhook_urls_paused", "gauge",
             "Webhook URLs whose deliveries are paused after failed attempts (circuit breaker).");
        sample(out, "webhook_urls_paused", NULL, ll(p, paused_count(v)));
    }

    head(out, "request_duration_seconds", "histogram",
         "Time to answer API requests, by endpoint.");
    for (int e = 0; e < US_EP__COUNT; e++) {
        const char *ep = us_endpoint_name(e);
        apr_uint64_t cum = 0;
        for (int b = 0; b < US_HIST_BUCKETS; b++) {
            cum += c->requests[e][b];
            sample(out, "request_duration_seconds_bucket",
                   apr_psprintf(p, "{endpoint=\"%s\",le=\"%s\"}", ep, us_hist_label(b)),
                   u64(p, cum));
        }
        sample(out, "request_duration_seconds_sum", apr_psprintf(p, "{endpoint=\"%s\"}", ep),
               seconds(p, c->request_us[e]));
        sample(out, "request_duration_seconds_count", apr_psprintf(p, "{endpoint=\"%s\"}", ep),
               u64(p, cum));
    }
    return apr_array_pstrcat(p, out, '\0');
}

/* ---- JSON ------------------------------------------------------------------------ */

static void write_health(us_json_writer *w, const char *key, const char *error)
{
    us_json_write_key(w, key);
    us_json_write_object_open(w);
    us_json_write_key_string(w, "status", error ? "unavailable" : "ok");
    if (error)
        us_json_write_key_string(w, "error", error);
    us_json_write_object_close(w);
}

static void write_u64(us_json_writer *w, const char *key, apr_uint64_t n)
{
    us_json_write_key_int(w, key, (long long)n);
}

/* Claims grouped by node: the owner's host ("host/pid/worker"). */
static void write_leases(us_json_writer *w, apr_pool_t *p, const apr_array_header_t *leases)
{
    apr_hash_t *nodes = apr_hash_make(p);
    apr_array_header_t *order = apr_array_make(p, 4, sizeof(const char *));
    for (int i = 0; leases && i < leases->nelts; i++) {
        const us_claim *cl = &APR_ARRAY_IDX(leases, i, us_claim);
        const char *slash = strchr(cl->owner, '/');
        const char *node = slash ? apr_pstrndup(p, cl->owner, (apr_size_t)(slash - cl->owner))
                                 : cl->owner;
        apr_array_header_t *list = apr_hash_get(nodes, node, APR_HASH_KEY_STRING);
        if (!list) {
            list = apr_array_make(p, 2, sizeof(const us_claim *));
            apr_hash_set(nodes, node, APR_HASH_KEY_STRING, list);
            APR_ARRAY_PUSH(order, const char *) = node;
        }
        APR_ARRAY_PUSH(list, const us_claim *) = cl;
    }
    us_json_write_key(w, "leases");
    us_json_write_object_open(w);
    for (int i = 0; i < order->nelts; i++) {
        const char *node = APR_ARRAY_IDX(order, i, const char *);
        const apr_array_header_t *list = apr_hash_get(nodes, node, APR_HASH_KEY_STRING);
        us_json_write_key(w, node);
        us_json_write_array_open(w);
        for (int k = 0; k < list->nelts; k++) {
            const us_claim *cl = APR_ARRAY_IDX(list, k, const us_claim *);
            us_json_write_object_open(w);
            us_json_write_key_string(w, "owner", cl->owner);
            us_json_write_key_string(w, "session_id", cl->session_id);
            us_json_write_object_close(w);
        }
        us_json_write_array_close(w);
    }
    us_json_write_object_close(w);
}

/* "webhooks": the outbox, or null when the store did not answer. */
static void write_webhooks(us_json_writer *w, apr_pool_t *p, const us_status_view *v)
{
    const us_webhook_stats *wh = v->webhooks;
    char at[US_TS_LEN];
    us_json_write_key(w, "webhooks");
    if (!wh) {
        us_json_write_null(w);
        return;
    }
    us_json_write_object_open(w);
    us_json_write_key_int(w, "urls", v->webhook_urls);
    us_json_write_key_int(w, "pending", wh->pending);
    us_json_write_key_int(w, "failed", wh->failed);
    us_json_write_key(w, "oldest_pending_age_seconds");
    const char *secs = seconds(p, age_of(v, wh->oldest_pending));
    us_json_write_raw(w, secs, strlen(secs));
    us_json_write_key(w, "last_error");
    if (wh->last_error) /* one stored by an older version may quote a URL whole */
        us_json_write_string(w, us_webhook_text_shown(p, wh->last_error));
    else
        us_json_write_null(w);
    us_json_write_key(w, "last_error_at");
    if (wh->last_error) {
        us_time_format(wh->last_error_at, at);
        us_json_write_string(w, at);
    }
    else {
        us_json_write_null(w);
    }
    us_json_write_key_int(w, "urls_paused", paused_count(v));
    us_json_write_key(w, "paused");
    us_json_write_array_open(w);
    for (int i = 0; v->webhook_paused && i < v->webhook_paused->nelts; i++) {
        const us_webhook_paused *u = &APR_ARRAY_IDX(v->webhook_paused, i, us_webhook_paused);
        us_json_write_object_open(w);
        us_json_write_key_string(w, "url", us_webhook_url_shown(p, u->url));
        us_json_write_key_int(w, "failures", u->failures);
        us_time_format(u->paused_until, at);
        us_json_write_key_string(w, "paused_until", at);
        us_json_write_object_close(w);
    }
    us_json_write_array_close(w);
    us_json_write_object_close(w);
}

const char *us_metrics_status_json(apr_pool_t *p, const us_status_view *v)
{
    const us_metrics_counts *c = v->counts;
    char since[US_TS_LEN];
    us_json_writer w;

    us_time_format(v->since, since);
    us_json_write_init(&w, p, 2048);
    us_json_write_object_open(&w);
    us_json_write_key_string(&w, "version", v->version ? v->version : "");
    us_json_write_key_string(&w, "counting_since", since);
    write_health(&w, "store", v->store_error);
    write_health(&w, "storage", v->storage_error);

    us_json_write_key(&w, "sessions");
    if (v->overview) {
        us_json_write_object_open(&w);
        us_json_write_key_int(&w, "OPEN", v->overview->open);
        us_json_write_key_int(&w, "CLOSED", v->overview->closed);
        us_json_write_key_int(&w, "EXPIRED", v->overview->expired);
        us_json_write_object_close(&w);
    }
    else {
        us_json_write_null(&w);
    }
    us_json_write_key(&w, "ingest_queue");
    if (v->overview) {
        apr_uint64_t age = oldest_age(v);
        us_json_write_object_open(&w);
        us_json_write_key_int(&w, "sessions", v->overview->queued + v->overview->running);
        us_json_write_key_int(&w, "running", v->overview->running);
        /* whole seconds then the fraction: the writer has no floats */
        us_json_write_key(&w, "oldest_age_seconds");
        const char *secs = seconds(p, age);
        us_json_write_raw(&w, secs, strlen(secs));
        us_json_write_object_close(&w);
    }
    else {
        us_json_write_null(&w);
    }

    us_json_write_key(&w, "files");
    us_json_write_object_open(&w);
    write_u64(&w, "FINISHED", c->files[US_OUTCOME_FINISHED]);
    us_json_write_key(&w, "FAILED");
    us_json_write_object_open(&w);
    for (int o = US_OUTCOME_FINISHED + 1; o < US_OUTCOME__COUNT; o++)
        write_u64(&w, us_outcome_reason(o), c->files[o]);
    us_json_write_object_close(&w);
    us_json_write_object_close(&w);

    us_json_write_key(&w, "uploads");
    us_json_write_object_open(&w);
    write_u64(&w, "total", c->uploads);
    write_u64(&w, "bytes_total", c->upload_bytes);
    write_u64(&w, "in_progress", c->uploads_active);
    write_u64(&w, "bytes_in_progress", c->upload_bytes_active);
    us_json_write_object_close(&w);

    us_json_write_key(&w, "requests");
    us_json_write_object_open(&w);
    for (int e = 0; e < US_EP__COUNT; e++) {
        apr_uint64_t n = 0;
        for (int b = 0; b < US_HIST_BUCKETS; b++)
            n += c->requests[e][b];
        write_u64(&w, us_endpoint_name(e), n);
    }
    us_json_write_object_close(&w);
    write_u64(&w, "store_errors_total", c->store_errors);
    write_u64(&w, "worker_store_errors_total", c->worker_store_errors);
    write_u64(&w, "ingest_claims_lost_total", c->ingest_claims_lost);
    write_leases(&w, p, v->leases);
    if (v->webhook_urls > 0)
        write_webhooks(&w, p, v);
    us_json_write_object_close(&w);
    return us_json_write_finish(&w, NULL);
}

/* ---- mod_status ?auto -------------------------------------------------------------- */

const char *us_metrics_status_auto(apr_pool_t *p, const us_status_view *v)
{
    const us_metrics_counts *c = v->counts;
    apr_array_header_t *out = apr_array_make(p, 32, sizeof(const char *));
#define LINE(...) (APR_ARRAY_PUSH(out, const char *) = apr_psprintf(p, __VA_ARGS__))
    LINE("UploadSessionStore: %s\n", v->store_error ? "unavailable" : "ok");
    LINE("UploadSessionStorage: %s\n", v->storage_error ? "unavailable" : "ok");
    if (v->overview) {
        LINE("UploadSessionSessionsOpen: %" APR_INT64_T_FMT "\n", (apr_int64_t)(v->overview->open));
        LINE("UploadSessionSessionsClosed: %" APR_INT64_T_FMT "\n", (apr_int64_t)(v->overview->closed));
        LINE("UploadSessionSessionsExpired: %" APR_INT64_T_FMT "\n", (apr_int64_t)(v->overview->expired));
        LINE("UploadSessionIngestQueue: %" APR_INT64_T_FMT "\n", (apr_int64_t)(v->overview->queued + v->overview->running));
        LINE("UploadSessionIngestQueueOldestAge: %s\n", seconds(p, oldest_age(v)));
    }
    LINE("UploadSessionUploads: %" APR_UINT64_T_FMT "\n", c->uploads);
    LINE("UploadSessionUploadBytes: %" APR_UINT64_T_FMT "\n", c->upload_bytes);
    LINE("UploadSessionUploadsInProgress: %" APR_UINT64_T_FMT "\n", c->uploads_active);
    LINE("UploadSessionFilesFinished: %" APR_UINT64_T_FMT "\n", c->files[US_OUTCOME_FINISHED]);
    apr_uint64_t failed = 0;
    for (int o = US_OUTCOME_FINISHED + 1; o < US_OUTCOME__COUNT; o++)
        failed += c->files[o];
    LINE("UploadSessionFilesFailed: %" APR_UINT64_T_FMT "\n", failed);
    LINE("UploadSessionStoreErrors: %" APR_UINT64_T_FMT "\n", c->store_errors);
    LINE("UploadSessionWorkerStoreErrors: %" APR_UINT64_T_FMT "\n", c->worker_store_errors);
    LINE("UploadSessionIngestClaimsLost: %" APR_UINT64_T_FMT "\n", c->ingest_claims_lost);
    if (v->webhook_urls > 0 && v->webhooks) {
        LINE("UploadSessionWebhooksPending: %" APR_INT64_T_FMT "\n",
             (apr_int64_t)v->webhooks->pending);
        LINE("UploadSessionWebhooksFailed: %" APR_INT64_T_FMT "\n",
             (apr_int64_t)v->webhooks->failed);
        LINE("UploadSessionWebhookURLsPaused: %" APR_INT64_T_FMT "\n",
             (apr_int64_t)paused_count(v));
    }
#undef LINE
    return apr_array_pstrcat(p, out, '\0');
}

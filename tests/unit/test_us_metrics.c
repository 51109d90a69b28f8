/* Unit tests: the shared counters (slots summed, atomic under threads, kept
 * by a re-attach), the histogram buckets, the Prometheus exposition, the
 * JSON status and mod_status's ?auto lines. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include "fixture.h"
#include <string.h>

#include <apr_thread_proc.h>
#include <jansson.h>
#include "us_metrics.h"
#include "us_time.h"

static const apr_time_t T0 = (apr_time_t)1795863600 * APR_USEC_PER_SEC;

static us_metrics *fresh(void)
{
    void *mem = apr_pcalloc(pool, us_metrics_size());
    return us_metrics_attach(mem, T0);
}

static void test_buckets(void **state)
{
    (void)state;
    assert_int_equal(us_hist_bucket(0), 0);
    assert_int_equal(us_hist_bucket(1000), 0);      /* le="0.001" includes 1 ms */
    assert_int_equal(us_hist_bucket(1001), 1);
    assert_int_equal(us_hist_bucket(5000), 1);
    assert_int_equal(us_hist_bucket(10000000), US_HIST_BOUNDS - 1);
    assert_int_equal(us_hist_bucket(10000001), US_HIST_BOUNDS); /* +Inf */
    assert_string_equal(us_hist_label(0), "0.001");
    assert_string_equal(us_hist_label(US_HIST_BOUNDS), "+Inf");
    for (int i = 1; i < US_HIST_BOUNDS; i++)
        assert_true(us_hist_bound(i) > us_hist_bound(i - 1));
}

static void test_outcomes(void **state)
{
    (void)state;
    assert_int_equal(us_outcome_of("FINISHED", NULL), US_OUTCOME_FINISHED);
    assert_int_equal(us_outcome_of("FAILED", "EMPTY_FILE"), US_OUTCOME_EMPTY_FILE);
    assert_int_equal(us_outcome_of("FAILED", "FILE_NOT_FOUND"), US_OUTCOME_FILE_NOT_FOUND);
    /* API.md's every reason has its own label: a refused file is no OTHER */
    assert_int_equal(us_outcome_of("FAILED", "UNKNOWN_ERROR"), US_OUTCOME_UNKNOWN_ERROR);
    assert_string_equal(us_outcome_reason(US_OUTCOME_UNKNOWN_ERROR), "UNKNOWN_ERROR");
    assert_int_equal(us_outcome_of("FAILED", "SOMETHING_NEW"), US_OUTCOME_FAILED_OTHER);
    assert_int_equal(us_outcome_of("FAILED", NULL), US_OUTCOME_FAILED_OTHER);
    assert_string_equal(us_outcome_reason(US_OUTCOME_FINISHED), "");
    assert_string_equal(us_outcome_status(US_OUTCOME_FILE_ALREADY_EXISTS), "FAILED");
}

/* Counts from several processes (slots) add up; the gauges come back to 0. */
static void test_slots_add_up(void **state)
{
    us_metrics *m = fresh();
    us_metrics_counts c;
    (void)state;
    for (long pid = 100; pid < 140; pid++) {
        us_metrics_slot *s = us_metrics_slot_for(m, pid);
        us_metrics_gauges *g = us_metrics_gauges_claim(m, pid);
        assert_non_null(g);
        us_metrics_upload_started(g);
        us_metrics_upload_bytes(g, 10);
        us_metrics_upload_bytes(g, 5);
        us_metrics_upload_ended(s, g, 15, pid % 2 == 0);
        us_metrics_file(s, pid % 4 == 0 ? US_OUTCOME_EMPTY_FILE : US_OUTCOME_FINISHED);
        us_metrics_request(s, US_EP_UPLOAD, 3000);
    }
    us_metrics_store_error(us_metrics_slot_for(m, 7));
    us_metrics_worker_store_error(us_metrics_slot_for(m, 7));
    us_metrics_worker_store_error(us_metrics_slot_for(m, 8));
    us_metrics_ingest_claim_lost(us_metrics_slot_for(m, 9));
    us_metrics_upload_started(us_metrics_gauges_claim(m, 7));
    us_metrics_upload_bytes(us_metrics_gauges_claim(m, 7), 42); /* its own record again */
    us_metrics_sum(m, &c);
    assert_int_equal(c.worker_store_errors, 2);
    assert_int_equal(c.ingest_claims_lost, 1);
    assert_int_equal(c.uploads, 20);
    assert_int_equal(c.upload_bytes, 300);
    assert_int_equal(c.uploads_active, 0); /* the second claim zeroed the record */
    assert_int_equal(c.upload_bytes_active, 42);
    assert_int_equal(c.files[US_OUTCOME_FINISHED], 30);
    assert_int_equal(c.files[US_OUTCOME_EMPTY_FILE], 10);
    assert_int_equal(c.requests[US_EP_UPLOAD][1], 40);
    assert_int_equal(c.request_us[US_EP_UPLOAD], 40 * 3000);
    assert_int_equal(c.store_errors, 1);
    /* NULL counts nothing */
    us_metrics_worker_store_error(NULL);
    us_metrics_ingest_claim_lost(NULL);
    us_metrics_upload_started(NULL);
    us_metrics_upload_ended(NULL, NULL, 1, 1);
    us_metrics_request(NULL, US_EP_HEALTH, 1);
    assert_null(us_metrics_slot_for(NULL, 1));
    assert_null(us_metrics_gauges_claim(NULL, 1));
}

/* A process that dies mid-upload (kill -9) never ends it: once its parent
 * releases its record, its gauges are gone from the sums while its
 * counters stay, and another process (of any pid) may take the record.
 * A process past US_METRICS_PROCS counts no gauges. */
static void test_dead_process_gauges_go(void **state)
{
    us_metrics *m = fresh();
    us_metrics_counts c;
    (void)state;
    us_metrics_gauges *live = us_metrics_gauges_claim(m, 200);
    us_metrics_gauges *dead = us_metrics_gauges_claim(m, 216); /* the same slot */
    us_metrics_slot *s = us_metrics_slot_for(m, 216);
    assert_true(us_metrics_slot_for(m, 200) == s);
    us_metrics_upload_started(live);
    us_metrics_upload_bytes(live, 5);
    us_metrics_upload_started(dead);
    us_metrics_upload_bytes(dead, 1000);
    us_metrics_upload_started(dead);
    us_metrics_upload_ended(s, dead, 0, 0);
    us_metrics_store_error(s);
    us_metrics_sum(m, &c);
    assert_int_equal(c.uploads_active, 2);
    assert_int_equal(c.upload_bytes_active, 1005);
    us_metrics_gauges_release(m, 216);
    us_metrics_gauges_release(m, 999); /* held none: nothing */
    us_metrics_sum(m, &c);
    assert_int_equal(c.uploads_active, 1);
    assert_int_equal(c.upload_bytes_active, 5);
    assert_int_equal(c.store_errors, 1);
    us_metrics_upload_ended(s, live, 5, 1);
    us_metrics_sum(m, &c);
    assert_int_equal(c.uploads_active, 0);
    assert_int_equal(c.upload_bytes_active, 0);
    assert_int_equal(c.uploads, 1);
    /* every record held: one more process counts no gauges, until one goes */
    for (long pid = 1000; pid < 1000 + US_METRICS_PROCS - 1; pid++)
        assert_non_null(us_metrics_gauges_claim(m, pid));
    assert_null(us_metrics_gauges_claim(m, 5000));
    us_metrics_upload_started(NULL);
    us_metrics_gauges_release(m, 1500);
    us_metrics_gauges *g = us_metrics_gauges_claim(m, 5000);
    assert_non_null(g);
    us_metrics_upload_started(g);
    us_metrics_sum(m, &c);
    assert_int_equal(c.uploads_active, 1);
}

/* A block found again (a restart) keeps its counts and start; a block of
 * another layout starts afresh. */
static void test_attach_keeps_counts(void **state)
{
    void *mem = apr_pcalloc(pool, us_metrics_size());
    us_metrics_counts c;
    (void)state;
    us_metrics *m = us_metrics_attach(mem, T0);
    us_metrics_store_error(us_metrics_slot_for(m, 1));
    m = us_metrics_attach(mem, T0 + 99);
    us_metrics_sum(m, &c);
    assert_int_equal(c.store_errors, 1);
    assert_true(us_metrics_since(m) == T0);
    /* another layout: the block's header (somewhere in the first 64 + 4 bytes) differs */
    for (int i = 0; i < 68; i++)
        ((unsigned char *)mem)[i] ^= 0xff;
    m = us_metrics_attach(mem, T0 + 99);
    us_metrics_sum(m, &c);
    assert_int_equal(c.store_errors, 0);
    assert_true(us_metrics_since(m) == T0 + 99);
}

typedef struct {
    us_metrics *m;
    long pid;
    us_metrics_gauges *g; /* its process's, claimed once */
} thread_arg;

#define THREADS 8
#define ROUNDS 20000

static void *APR_THREAD_FUNC hammer(apr_thread_t *t, void *data)
{
    thread_arg *a = data;
    (void)t;
    /* pids 1, 17, 33 and 49 share slot 1, and two threads each pid: updates
     * from eight threads per slot, two per record of gauges */
    us_metrics_slot *s = us_metrics_slot_for(a->m, a->pid);
    for (int i = 0; i < ROUNDS; i++) {
        us_metrics_upload_started(a->g);
        us_metrics_upload_bytes(a->g, 3);
        us_metrics_upload_ended(s, a->g, 3, 1);
        us_metrics_request(s, US_EP_SESSION_GET, 20000);
    }
    return NULL;
}

static void test_concurrent_updates_are_exact(void **state)
{
    us_metrics *m = fresh();
    apr_thread_t *t[THREADS];
    thread_arg args[THREADS];
    us_metrics_counts c;
    (void)state;
    for (int i = 0; i < THREADS; i++) {
        args[i].m = m;
        args[i].pid = (i % 4) * US_METRICS_SLOTS + 1;
        args[i].g = i < 4 ? us_metrics_gauges_claim(m, args[i].pid) : args[i - 4].g;
        assert_int_equal(apr_thread_create(&t[i], NULL, hammer, &args[i], pool), APR_SUCCESS);
    }
    for (int i = 0; i < THREADS; i++) {
        apr_status_t rv;
        apr_thread_join(&rv, t[i]);
    }
    us_metrics_sum(m, &c);
    assert_int_equal(c.uploads, THREADS * ROUNDS);
    assert_int_equal(c.upload_bytes, 3 * THREADS * ROUNDS);
    assert_int_equal(c.uploads_active, 0);
    assert_int_equal(c.upload_bytes_active, 0);
    assert_int_equal(c.requests[US_EP_SESSION_GET][3], THREADS * ROUNDS); /* le=0.025 */
}

static us_status_view view_of(const us_metrics_counts *c, const us_store_overview *o)
{
    us_status_view v;
    memset(&v, 0, sizeof(v));
    v.version = "1.2.3";
    v.now = T0 + 90 * APR_USEC_PER_SEC + 500000;
    v.since = T0;
    v.counts = c;
    v.overview = o;
    return v;
}

static void test_prometheus_text(void **state)
{
    us_metrics *m = fresh();
    us_metrics_counts c;
    us_store_overview o = { .open = 2, .closed = 5, .expired = 1, .queued = 3, .running = 1,
                            .oldest_queued = T0 };
    (void)state;
    us_metrics_slot *s = us_metrics_slot_for(m, 1);
    us_metrics_gauges *g = us_metrics_gauges_claim(m, 1);
    us_metrics_upload_started(g);
    us_metrics_upload_bytes(g, 1234);
    us_metrics_upload_ended(s, g, 1234, 1);
    us_metrics_file(s, US_OUTCOME_FINISHED);
    us_metrics_file(s, US_OUTCOME_FILE_ALREADY_EXISTS);
    us_metrics_request(s, US_EP_SESSION_CREATE, 2000);   /* le=0.005 */
    us_metrics_request(s, US_EP_SESSION_CREATE, 700000); /* le=1 */
    us_metrics_sum(m, &c);
    us_status_view v = view_of(&c, &o);
    const char *t = us_metrics_prometheus(pool, &v);
    const char *want[] = {
        "# HELP mod_upload_session_uploads_total Files received by the upload target and recorded.\n"
        "# TYPE mod_upload_session_uploads_total counter\n"
        "mod_upload_session_uploads_total 1\n",
        "# TYPE mod_upload_session_upload_bytes_total counter\n"
        "mod_upload_session_upload_bytes_total 1234\n",
        "mod_upload_session_uploads_in_progress 0\n",
        "# TYPE mod_upload_session_ingested_files_total counter\n"
        "mod_upload_session_ingested_files_total{status=\"FINISHED\",reason=\"\"} 1\n"
        "mod_upload_session_ingested_files_total{status=\"FAILED\",reason=\"EMPTY_FILE\"} 0\n"
        "mod_upload_session_ingested_files_total{status=\"FAILED\",reason=\"FAILED_TO_PARSE_META\"} 0\n"
        "mod_upload_session_ingested_files_total{status=\"FAILED\",reason=\"FILE_ALREADY_EXISTS\"} 1\n",
        "mod_upload_session_store_errors_total 0\n",
        "mod_upload_session_worker_store_errors_total 0\n",
        "# TYPE mod_upload_session_ingest_claims_lost_total counter\n"
        "mod_upload_session_ingest_claims_lost_total 0\n",
        "mod_upload_session_store_up 1\n",
        "mod_upload_session_sessions{state=\"OPEN\"} 2\n"
        "mod_upload_session_sessions{state=\"CLOSED\"} 5\n"
        "mod_upload_session_sessions{state=\"EXPIRED\"} 1\n",
        "# TYPE mod_upload_session_ingest_queue_sessions gauge\n"
        "mod_upload_session_ingest_queue_sessions 4\n",
        "mod_upload_session_ingest_running_sessions 1\n",
        "mod_upload_session_ingest_queue_oldest_age_seconds 90.500000\n",
        "# TYPE mod_upload_session_request_duration_seconds histogram\n"
        "mod_upload_session_request_duration_seconds_bucket{endpoint=\"session_create\",le=\"0.001\"} 0\n"
        "mod_upload_session_request_duration_seconds_bucket{endpoint=\"session_create\",le=\"0.005\"} 1\n",
        "mod_upload_session_request_duration_seconds_bucket{endpoint=\"session_create\",le=\"0.5\"} 1\n"
        "mod_upload_session_request_duration_seconds_bucket{endpoint=\"session_create\",le=\"1\"} 2\n",
        "mod_upload_session_request_duration_seconds_bucket{endpoint=\"session_create\",le=\"+Inf\"} 2\n"
        "mod_upload_session_request_duration_seconds_sum{endpoint=\"session_create\"} 0.702000\n"
        "mod_upload_session_request_duration_seconds_count{endpoint=\"session_create\"} 2\n",
        "mod_upload_session_request_duration_seconds_count{endpoint=\"other\"} 0\n",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        if (!strstr(t, want[i]))
            fail_msg("missing:\n%s\nin:\n%s", want[i], t);
    /* each family has one HELP and one TYPE line, and every line ends in \n */
    assert_int_equal(t[strlen(t) - 1], '\n');
    int helps = 0, types = 0;
    for (const char *l = t; *l; l = strchr(l, '\n') + 1) {
        helps += strncmp(l, "# HELP ", 7) == 0;
        types += strncmp(l, "# TYPE ", 7) == 0;
    }
    assert_int_equal(helps, 14);
    assert_int_equal(types, 14);

    /* without the store: store_up 0 and no gauges read from it */
    v.overview = NULL;
    t = us_metrics_prometheus(pool, &v);
    assert_non_null(strstr(t, "mod_upload_session_store_up 0\n"));
    assert_null(strstr(t, "mod_upload_session_sessions"));
    assert_null(strstr(t, "ingest_queue_sessions"));
}

static void test_status_json(void **state)
{
    us_metrics *m = fresh();
    us_metrics_counts c;
    us_store_overview o = { .open = 1, .closed = 2, .expired = 3, .queued = 0, .running = 1,
                            .oldest_queued = T0 + 30 * APR_USEC_PER_SEC };
    apr_array_header_t *leases = apr_array_make(pool, 2, sizeof(us_claim));
    (void)state;
    us_claim *cl = apr_array_push(leases);
    cl->session_id = "s1";
    cl->owner = "node-a/123/0";
    cl = apr_array_push(leases);
    cl->session_id = "s2";
    cl->owner = "node-b/9/1";
    cl = apr_array_push(leases);
    cl->session_id = "s3";
    cl->owner = "node-a/124/0";
    us_metrics_slot *s = us_metrics_slot_for(m, 5);
    us_metrics_gauges *g = us_metrics_gauges_claim(m, 5);
    us_metrics_upload_started(g);
    us_metrics_upload_bytes(g, 77);
    us_metrics_file(s, US_OUTCOME_EMPTY_FILE);
    us_metrics_file(s, US_OUTCOME_FINISHED);
    us_metrics_file(s, US_OUTCOME_FINISHED);
    us_metrics_request(s, US_EP_HEALTH, 1);
    us_metrics_sum(m, &c);
    us_status_view v = view_of(&c, &o);
    v.leases = leases;
    v.storage_error = "the file storage cannot be written";
    const char *text = us_metrics_status_json(pool, &v);
    assert_non_null(text);
    json_error_t err;
    json_t *j = json_loads(text, 0, &err);
    assert_non_null(j);
    json_t *want = json_pack(
        "{s:s, s:s, s:{s:s}, s:{s:s, s:s}, s:{s:i, s:i, s:i}, s:{s:i, s:i, s:f},"
        " s:{s:i, s:{s:i, s:i, s:i, s:i, s:i, s:i}}, s:{s:i, s:i, s:i, s:i}}",
        "version", "1.2.3", "counting_since", "2026-11-28T11:00:00.000000Z",
        "store", "status", "ok",
        "storage", "status", "unavailable", "error", "the file storage cannot be written",
        "sessions", "OPEN", 1, "CLOSED", 2, "EXPIRED", 3,
        "ingest_queue", "sessions", 1, "running", 1, "oldest_age_seconds", 60.5,
        "files", "FINISHED", 2, "FAILED", "EMPTY_FILE", 1, "FAILED_TO_PARSE_META", 0,
        "FILE_ALREADY_EXISTS", 0, "FILE_NOT_FOUND", 0, "UNKNOWN_ERROR", 0, "OTHER", 0,
        "uploads", "total", 0, "bytes_total", 0, "in_progress", 1, "bytes_in_progress", 77);
    const char *key;
    json_t *val;
    json_object_foreach(want, key, val)
        if (!json_equal(json_object_get(j, key), val))
            fail_msg("%s: %s in %s", key, json_dumps(val, JSON_COMPACT), text);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "requests"), "health")), 1);
    assert_int_equal(json_integer_value(json_object_get(j, "store_errors_total")), 0);
    json_t *l = json_object_get(j, "leases");
    assert_int_equal(json_object_size(l), 2);
    assert_int_equal(json_array_size(json_object_get(l, "node-a")), 2);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(l, "node-b"), 0), "owner")),
                        "node-b/9/1");
    json_decref(j);
    json_decref(want);

    /* the store down: its sections are null */
    v.overview = NULL;
    v.store_error = "no connection";
    j = json_loads(us_metrics_status_json(pool, &v), 0, &err);
    assert_non_null(j);
    assert_true(json_is_null(json_object_get(j, "sessions")));
    assert_true(json_is_null(json_object_get(j, "ingest_queue")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "store"), "error")),
                        "no connection");
    json_decref(j);
}

static void test_status_auto(void **state)
{
    us_metrics *m = fresh();
    us_metrics_counts c;
    us_store_overview o = { .open = 4, .closed = 0, .expired = 0, .queued = 2, .running = 0,
                            .oldest_queued = T0 + 80 * APR_USEC_PER_SEC };
    (void)state;
    us_metrics_slot *s = us_metrics_slot_for(m, 5);
    us_metrics_file(s, US_OUTCOME_EMPTY_FILE);
    us_metrics_file(s, US_OUTCOME_FILE_NOT_FOUND);
    us_metrics_gauges *g = us_metrics_gauges_claim(m, 5);
    us_metrics_upload_started(g);
    us_metrics_upload_bytes(g, 9);
    us_metrics_upload_ended(s, g, 9, 1);
    us_metrics_sum(m, &c);
    us_status_view v = view_of(&c, &o);
    assert_string_equal(us_metrics_status_auto(pool, &v),
                        "UploadSessionStore: ok\n"
                        "UploadSessionStorage: ok\n"
                        "UploadSessionSessionsOpen: 4\n"
                        "UploadSessionSessionsClosed: 0\n"
                        "UploadSessionSessionsExpired: 0\n"
                        "UploadSessionIngestQueue: 2\n"
                        "UploadSessionIngestQueueOldestAge: 10.500000\n"
                        "UploadSessionUploads: 1\n"
                        "UploadSessionUploadBytes: 9\n"
                        "UploadSessionUploadsInProgress: 0\n"
                        "UploadSessionFilesFinished: 0\n"
                        "UploadSessionFilesFailed: 2\n"
                        "UploadSessionStoreErrors: 0\n"
                        "UploadSessionWorkerStoreErrors: 0\n"
                        "UploadSessionIngestClaimsLost: 0\n");
}

/* The webhook section: only with webhooks configured; null without the store. */
static void test_webhook_section(void **state)
{
    us_metrics *m = fresh();
    us_metrics_counts c;
    us_store_overview o = { .open = 1 };
    us_webhook_stats wh = { .pending = 3, .failed = 1,
                            .oldest_pending = T0 + 80 * APR_USEC_PER_SEC,
                            /* as an older version stored it: the URL whole */
                            .last_error = "HTTP 500 from https://hooks.example/services/s3cret",
                            .last_error_at = T0 + 85 * APR_USEC_PER_SEC };
    json_error_t err;
    (void)state;
    us_metrics_sum(m, &c);
    us_status_view v = view_of(&c, &o);
    /* none configured: no section anywhere */
    json_t *j = json_loads(us_metrics_status_json(pool, &v), 0, &err);
    assert_non_null(j);
    assert_null(json_object_get(j, "webhooks"));
    json_decref(j);
    assert_null(strstr(us_metrics_prometheus(pool, &v), "webhook"));
    assert_null(strstr(us_metrics_status_auto(pool, &v), "Webhook"));

    v.webhook_urls = 2;
    v.webhooks = &wh;
    const char *doc = us_metrics_status_json(pool, &v);
    assert_null(strstr(doc, "s3cret"));
    j = json_loads(doc, 0, &err);
    assert_non_null(j);
    json_t *w = json_object_get(j, "webhooks");
    assert_int_equal(json_integer_value(json_object_get(w, "urls")), 2);
    assert_int_equal(json_integer_value(json_object_get(w, "pending")), 3);
    assert_int_equal(json_integer_value(json_object_get(w, "failed")), 1);
    assert_true(json_real_value(json_object_get(w, "oldest_pending_age_seconds")) == 10.5);
    assert_string_equal(json_string_value(json_object_get(w, "last_error")),
                        "HTTP 500 from https://hooks.example/... #94a01013");
    assert_non_null(json_string_value(json_object_get(w, "last_error_at")));
    json_decref(j);
    const char *t = us_metrics_prometheus(pool, &v);
    assert_non_null(strstr(t, "\nmod_upload_session_webhook_deliveries_pending 3\n"));
    assert_non_null(strstr(t, "\nmod_upload_session_webhook_deliveries_failed 1\n"));
    assert_non_null(strstr(t, "\nmod_upload_session_webhook_oldest_pending_age_seconds 10.500000\n"));
    assert_non_null(strstr(t, "# TYPE mod_upload_session_webhook_deliveries_pending gauge\n"));
    const char *a = us_metrics_status_auto(pool, &v);
    assert_non_null(strstr(a, "UploadSessionWebhooksPending: 3\nUploadSessionWebhooksFailed: 1\n"
                              "UploadSessionWebhookURLsPaused: 0\n"));
    assert_non_null(strstr(t, "\nmod_upload_session_webhook_urls_paused 0\n"));

    /* paused URLs: counted, and listed in the JSON without their path and query */
    apr_array_header_t *paused = apr_array_make(pool, 2, sizeof(us_webhook_paused));
    us_webhook_paused *u = apr_array_push(paused);
    u->url = "https://hooks.example/a/b?token=s3cret";
    u->failures = 4;
    u->paused_until = T0 + 100 * APR_USEC_PER_SEC;
    u = apr_array_push(paused);
    u->url = "http://h:8080/x/s3cret";
    u->failures = 1;
    u->paused_until = T0 + 91 * APR_USEC_PER_SEC;
    v.webhook_paused = paused;
    doc = us_metrics_status_json(pool, &v);
    assert_null(strstr(doc, "s3cret"));
    j = json_loads(doc, 0, &err);
    assert_non_null(j);
    w = json_object_get(j, "webhooks");
    assert_int_equal(json_integer_value(json_object_get(w, "urls_paused")), 2);
    json_t *list = json_object_get(w, "paused");
    assert_int_equal(json_array_size(list), 2);
    json_t *first = json_array_get(list, 0);
    assert_string_equal(json_string_value(json_object_get(first, "url")),
                        "https://hooks.example/... #25a12503");
    assert_int_equal(json_integer_value(json_object_get(first, "failures")), 4);
    char until[US_TS_LEN];
    us_time_format(T0 + 100 * APR_USEC_PER_SEC, until);
    assert_string_equal(json_string_value(json_object_get(first, "paused_until")), until);
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 1), "url")),
                        "http://h:8080/... #d5882170");
    assert_int_equal(json_object_size(first), 3);
    json_decref(j);
    t = us_metrics_prometheus(pool, &v);
    assert_non_null(strstr(t, "# TYPE mod_upload_session_webhook_urls_paused gauge\n"
                              "mod_upload_session_webhook_urls_paused 2\n"));
    assert_null(strstr(t, "hooks.example"));
    a = us_metrics_status_auto(pool, &v);
    assert_non_null(strstr(a, "UploadSessionWebhooksFailed: 1\nUploadSessionWebhookURLsPaused: 2\n"));
    assert_null(strstr(a, "hooks.example"));
    v.webhook_paused = NULL;

    /* the store did not answer: null, no samples */
    v.webhooks = NULL;
    v.overview = NULL;
    j = json_loads(us_metrics_status_json(pool, &v), 0, &err);
    assert_true(json_is_null(json_object_get(j, "webhooks")));
    json_decref(j);
    assert_null(strstr(us_metrics_prometheus(pool, &v), "webhook_deliveries"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buckets),
        cmocka_unit_test(test_outcomes),
        cmocka_unit_test(test_slots_add_up),
        cmocka_unit_test(test_attach_keeps_counts),
        cmocka_unit_test(test_dead_process_gauges_go),
        cmocka_unit_test(test_concurrent_updates_are_exact),
        cmocka_unit_test(test_prometheus_text),
        cmocka_unit_test(test_status_json),
        cmocka_unit_test(test_status_auto),
        cmocka_unit_test(test_webhook_section),
    };
    return fixture_run("us_metrics", tests, NULL, NULL);
}

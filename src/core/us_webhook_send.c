/* us_webhook_send.c - the outbox workers: claim, POST, settle
 * (us_webhook_send.h). */
#include "us_webhook_send.h"

#include "us_version.h"
#include "us_webhook.h"
#include "us_worker_link.h"

#include <apr_atomic.h>
#include <apr_strings.h>
#include <apr_thread_proc.h>

#include <curl/curl.h>
#include <string.h>
#include <unistd.h>

struct us_webhook_sender {
    const us_webhook_config *cfg;
    apr_thread_t **threads;
    int nthreads;
    volatile apr_uint32_t stop; /* set once by us_webhook_stop (apr_atomic) */
};

int us_webhook_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
}

/* the receiver's answer is not read: only its status counts */
static size_t discard(char *data, size_t size, size_t n, void *baton)
{
    (void)data;
    (void)baton;
    return size * n;
}

/* What the header callback saw of the answer. */
typedef struct {
    CURL *h;
    long status; /* the final status, 0 until its headers ended */
} answer;

/* libcurl's header callback: at the blank line that ends a final (not 1xx)
 * answer's headers, its status is kept and the transfer ended there. The
 * body would be thrown away: a receiver that acknowledged the event but
 * sends its body slowly (or a large one) must not make the attempt a
 * timeout, and the acknowledged event a retry. */
static size_t status_seen(char *data, size_t size, size_t n, void *baton)
{
    answer *a = baton;
    long code = 0;
    if (size * n <= 2 && (data[0] == '\r' || data[0] == '\n') &&
        curl_easy_getinfo(a->h, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK && code >= 200) {
        a->status = code;
        return 0; /* ends the transfer (CURLE_WRITE_ERROR) */
    }
    return size * n;
}

/* libcurl's progress callback, called about once a second even while
 * the receiver says nothing: a non-zero answer ends the transfer, so that
 * a receiver that hangs does not hold a child's shutdown for cfg->timeout. */
static int stop_asked(void *stop, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                      curl_off_t ulnow)
{
    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    return stop && apr_atomic_read32(stop) ? 1 : 0;
}

/* One POST; *status the HTTP status (0 when none came), or the reason in
 * *err; *cut when *stop ended it first. */
static int post(apr_pool_t *p, const us_webhook_config *cfg, const us_webhook_row *w,
                const char *id, const char *body, apr_size_t len, volatile apr_uint32_t *stop,
                long *status, int *cut, const char **err)
{
    char sig[72];
    long long ts = (long long)apr_time_sec(apr_time_now());
    CURL *h = curl_easy_init();
    *status = 0;
    *cut = 0;
    if (!h || !us_webhook_sign(cfg->secret, cfg->secret_len, ts, body, len, sig)) {
        if (h)
            curl_easy_cleanup(h);
        *err = "out of memory";
        return 0;
    }
    struct curl_slist *hl = NULL;
    hl = curl_slist_append(hl, "Content-Type: application/json");
    hl = curl_slist_append(hl, apr_pstrcat(p, "X-Upload-Session-Event: ", w->event, NULL));
    hl = curl_slist_append(hl, apr_pstrcat(p, "X-Upload-Session-Delivery: ", id, NULL));
    hl = curl_slist_append(hl, apr_psprintf(p, "X-Upload-Session-Timestamp: %" APR_INT64_T_FMT, (apr_int64_t)ts));
    hl = curl_slist_append(hl, apr_pstrcat(p, "X-Upload-Session-Signature: ", sig, NULL));
    hl = curl_slist_append(hl, "Expect:"); /* no 100-continue round trip */
    long timeout_ms = (long)apr_time_as_msec(cfg->timeout);
    curl_easy_setopt(h, CURLOPT_URL, w->url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "mod_upload_session/" US_VERSION);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms > 0 ? timeout_ms : 10000L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms > 0 ? timeout_ms : 10000L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, stop_asked);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, (void *)stop);
    answer ans = { h, 0 };
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, status_seen);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &ans);
    CURLcode cc = curl_easy_perform(h);
    /* the status line decides: the end after the headers is status_seen's */
    *status = ans.status;
    if (!ans.status && cc == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    *cut = !*status && cc == CURLE_ABORTED_BY_CALLBACK;
    if (!*status)
        *err = apr_pstrdup(p, cc == CURLE_OK ? "no status" : curl_easy_strerror(cc));
    curl_slist_free_all(hl);
    curl_easy_cleanup(h);
    return *status != 0;
}

/* The body of row w's current page; NULL with *err when it cannot be built,
 * NULL with *rc when the store failed. */
static const char *event_body(us_db *db, apr_pool_t *p, const us_webhook_row *w, int *pages,
                              apr_size_t *len, const char **err, us_db_rc *rc)
{
    us_webhook_event e = {
        .event = w->event, .session_id = w->session_id, .workspace = w->workspace,
        .occurred_at = w->occurred_at, .uploaded_files = w->uploaded_files,
        .finished_files = w->finished_files, .failed_files = w->failed_files,
        .page = w->page, .pages = 1, .failed = NULL,
    };
    /* the failed files are final once ingested; an expiry precedes every decision */
    if (strcmp(w->event, US_WEBHOOK_INGESTED) == 0) {
        apr_array_header_t *rows = NULL;
        long long total = 0;
        int has_more = 0;
        const us_page pg = {.limit = US_WEBHOOK_PAGE_FILES,
                            .offset = (long long)(w->page - 1) * US_WEBHOOK_PAGE_FILES};
        e.pages = us_webhook_pages(w->failed_files);
        *rc = us_session_files_list(db, p, w->session_id, "FAILED", &pg, &rows, &total,
                                    &has_more);
        if (*rc != US_DB_OK) {
            *err = NULL; /* a store error: the caller says so */
            return NULL;
        }
        e.failed = rows;
    }
    *pages = e.pages;
    const char *body = us_webhook_event_json(p, &e, len);
    if (!body)
        *err = "a file name is not valid UTF-8";
    return body;
}

/* How a failure left its URL, for the log: its pause and count as the
 * store has them (other attempts in flight count too); empty when the
 * failure paused nothing (a lost lease, a URL no longer listed). */
static const char *url_paused(apr_pool_t *p, const us_webhook_paused *url, apr_time_t now)
{
    if (!url->failures)
        return "";
    return apr_psprintf(p, ", the URL paused %" APR_INT64_T_FMT " s after %d failed attempts "
                        "in a row", (apr_int64_t)apr_time_sec(url->paused_until - now),
                        url->failures);
}

int us_webhook_once(us_db *db, apr_pool_t *p, const us_webhook_config *cfg, const char *owner,
                    volatile apr_uint32_t *stop, us_db_rc *failure)
{
    us_webhook_row w;
    apr_time_t now = apr_time_now();
    us_db_rc rc = us_webhook_claim(db, p, owner, now, now + cfg->lease, &w);
    *failure = rc == US_DB_NOTFOUND ? US_DB_OK : rc;
    if (rc == US_DB_NOTFOUND)
        return 0;
    if (rc != US_DB_OK)
        return -1;

    char id[37];
    int pages = 1;
    apr_size_t len = 0;
    long status = 0;
    int cut = 0;
    const char *err = NULL;
    us_webhook_delivery_id(w.event, w.session_id, w.page, id);
    const char *body = event_body(db, p, &w, &pages, &len, &err, failure);
    if (!body && !err)
        return -1; /* the lease lapses and the row is tried again */
    if (body && post(p, cfg, &w, id, body, len, stop, &status, &cut, &err) && status >= 200 &&
        status < 300) {
        rc = us_webhook_delivered(db, p, w.id, owner, w.page, pages);
        if (us_log_enabled(cfg->log, US_LOG_DEBUG)) /* the shown URL hashes it */
            us_log(cfg->log, US_LOG_DEBUG, 0, 1301, "webhook %s %s (page %d of %d) delivered to %s",
                   w.event, w.session_id, w.page, pages, us_webhook_url_shown(p, w.url));
        *failure = rc;
        return rc == US_DB_OK ? 1 : -1;
    }
    if (cut) { /* not the receiver's failure: due again at once, for the next process */
        rc = us_webhook_release(db, p, w.id, owner);
        us_log(cfg->log, US_LOG_INFO, 0, 1306, "webhook %s %s (delivery %s): attempt cut short "
               "by the shutdown; left for a later one", w.event, w.session_id, id);
        *failure = rc;
        return rc == US_DB_OK ? 1 : -1;
    }
    if (!err)
        err = apr_psprintf(p, "HTTP %ld", status);
    now = apr_time_now();
    /* a receiver that failed is paused (its URL's circuit breaker): while
     * it hangs or fails, its rows do not hold the workers every other
     * receiver's deliveries wait for; no body: nothing was sent to it */
    us_webhook_failure f = {
        .now = now, .next_at = now + us_webhook_backoff(w.attempts + 1),
        .give_up = body == NULL || now - w.occurred_at > cfg->retry_for,
        .pause = body ? us_webhook_backoff(1) : 0, .pause_max = US_WEBHOOK_MAX_BACKOFF,
        .stale_before = body ? now - cfg->retry_for : 0,
    };
    /* stored, and shown by the status pages: the URL as shown, without what
     * follows its host, where a receiver's token would be */
    f.error = apr_psprintf(p, "%s from %s", err, us_webhook_url_shown(p, w.url));
    us_webhook_paused url = { NULL, 0, 0 };
    rc = us_webhook_retry(db, p, w.id, owner, &f, &url);
    if (f.give_up)
        us_log(cfg->log, US_LOG_WARN, 0, 1302, "webhook %s %s (delivery %s) given up after %d "
               "attempts: %s", w.event, w.session_id, id, w.attempts + 1, f.error);
    else
        us_log(cfg->log, US_LOG_INFO, 0, 1303, "webhook %s %s (delivery %s) attempt %d failed: "
               "%s; next in %" APR_INT64_T_FMT " s%s", w.event, w.session_id, id, w.attempts + 1,
               f.error, (apr_int64_t)apr_time_sec(f.next_at - now), url_paused(p, &url, now));
    *failure = rc;
    return rc == US_DB_OK ? 1 : -1;
}

/* Sleeps up to t, waking early when asked to stop. */
static void nap(us_webhook_sender *s, apr_interval_time_t t)
{
    const apr_interval_time_t step = apr_time_from_msec(50);
    for (apr_interval_time_t slept = 0; slept < t && !apr_atomic_read32(&s->stop); slept += step)
        apr_sleep(step);
}

typedef struct {
    us_webhook_sender *s;
    int index;
} worker_arg;

static void *APR_THREAD_FUNC worker(apr_thread_t *thd, void *data)
{
    worker_arg *arg = data;
    us_webhook_sender *s = arg->s;
    const us_webhook_config *cfg = s->cfg;
    apr_pool_t *p, *iter;
    us_db *db = NULL;

    apr_pool_create_unmanaged_ex(&p, NULL, NULL);
    apr_pool_create(&iter, p);
    const char *owner = apr_psprintf(p, "%s/%ld/webhook%d", cfg->host, (long)getpid(),
                                     arg->index);
    us_worker_link link = { cfg->log, apr_pstrcat(p, "webhook worker ", owner, NULL),
                            1304, 1307, 1308, 0, cfg->metrics };
    while (!apr_atomic_read32(&s->stop)) {
        apr_pool_clear(iter);
        if (us_worker_connect(&link, p, cfg->store, &db) != US_DB_OK) {
            nap(s, apr_time_from_sec(5));
            continue;
        }
        us_db_rc failure = US_DB_OK;
        int n = us_webhook_once(db, iter, cfg, owner, &s->stop, &failure);
        if (n < 0) {
            /* an outage said once per worker, not once a second */
            us_worker_failed(&link, failure, 1305, us_db_error(db));
            us_db_clear_error(db);
            nap(s, apr_time_from_sec(1));
            continue;
        }
        us_worker_answered(&link);
        if (n == 0)
            nap(s, cfg->poll);
    }
    apr_pool_destroy(p); /* closes the connection */
    (void)thd;
    return NULL;
}

apr_status_t us_webhook_start(apr_pool_t *p, const us_webhook_config *cfg,
                              us_webhook_sender **out)
{
    us_webhook_sender *s = apr_pcalloc(p, sizeof(*s));
    apr_status_t rv = apr_atomic_init(p);
    if (rv != APR_SUCCESS)
        return rv;
    s->cfg = cfg;
    int n = cfg->threads > 0 ? cfg->threads : 1;
    s->threads = apr_pcalloc(p, sizeof(apr_thread_t *) * (apr_size_t)n);
    for (int i = 0; i < n; i++) {
        worker_arg *arg = apr_pcalloc(p, sizeof(*arg));
        arg->s = s;
        arg->index = i;
        rv = apr_thread_create(&s->threads[i], NULL, worker, arg, p);
        if (rv != APR_SUCCESS) {
            us_webhook_stop(s);
            return rv;
        }
        s->nthreads++;
    }
    *out = s;
    return APR_SUCCESS;
}

void us_webhook_stop_soon(us_webhook_sender *s)
{
    if (s)
        apr_atomic_set32(&s->stop, 1);
}

void us_webhook_stop(us_webhook_sender *s)
{
    if (!s)
        return;
    us_webhook_stop_soon(s);
    for (int i = 0; i < s->nthreads; i++) {
        apr_status_t rv;
        apr_thread_join(&rv, s->threads[i]);
    }
    s->nthreads = 0;
}

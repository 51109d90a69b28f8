/*
 * us_webhook.h - webhook events, pure: the URLs and secret file
 * UploadSessionWebhook / UploadSessionWebhookSecretFile take, the event
 * JSON sent to them, its signature and the retry schedule. Pure: APR,
 * OpenSSL (us_crypto).
 *
 * An event is delivered as one or more POSTs ("deliveries"): the failed
 * files of a session are sent US_WEBHOOK_PAGE_FILES per delivery, each
 * delivery carrying "page" and "pages". Every delivery has an id of its
 * own, derived from the event type, the session and the page: a retry of
 * it sends the same id (and the same body), so receivers deduplicate on it.
 */
#ifndef US_WEBHOOK_H
#define US_WEBHOOK_H

#include <apr_pools.h>
#include <apr_tables.h>
#include <apr_time.h>

#define US_WEBHOOK_INGESTED "session.ingested"
#define US_WEBHOOK_EXPIRED "session.expired"

/* failed files per delivery of one event */
#define US_WEBHOOK_PAGE_FILES 1000
/* the longest wait between two attempts at one delivery */
#define US_WEBHOOK_MAX_BACKOFF apr_time_from_sec(600)
/* the largest secret file read */
#define US_WEBHOOK_SECRET_MAX 4096

/* NULL when url is an absolute http:// or https:// URL with a host (a
 * path and query allowed, no fragment, no user info, a port of 1 to
 * 65535 when given, printable ASCII only), else the reason. */
const char *us_webhook_url_check(apr_pool_t *p, const char *url);

/* hex digits of a shown URL's fingerprint */
#define US_WEBHOOK_FINGERPRINT_LEN 8

/* url as the status pages, the stored errors and the log show it: the
 * scheme, host and port, without user info; "/..." for whatever follows
 * them (path, query, fragment) but a lone "/", where receivers put their
 * tokens (Slack's and Discord's in the path); then " #" and a fingerprint,
 * the first US_WEBHOOK_FINGERPRINT_LEN hex digits of the SHA-256 of url
 * whole, which tells two URLs of one host apart and maps back to the
 * configured one (printf '%s' URL | sha256sum | cut -c1-8):
 * "https://hooks.slack.com/... #1a2b3c4d", "http://[::1]:8080 #5e6f7a8b".
 * Printable ASCII when url is. In p. */
const char *us_webhook_url_shown(apr_pool_t *p, const char *url);

/* text with every URL in it ("scheme://" up to whitespace or the end)
 * replaced by its us_webhook_url_shown form, for texts stored before URLs
 * were shown so (a last_error quoting a URL whole). A shown form, its
 * fingerprint following it, is kept as it is: rewriting a rewritten text
 * changes nothing. text itself when it holds no URL, NULL for NULL; else
 * in p. */
const char *us_webhook_text_shown(apr_pool_t *p, const char *text);

/* Reads the signing secret from path: the file's bytes without trailing
 * CR/LF, 16 to US_WEBHOOK_SECRET_MAX bytes. Refused when the file is
 * readable by others (chmod o-r). NULL with *secret and *len set, or the reason. */
const char *us_webhook_secret_read(apr_pool_t *p, const char *path, const char **secret,
                                   apr_size_t *len);

/* The signature header's value for body sent at unix time ts (seconds):
 * "sha256=" + hex HMAC-SHA256(secret, "<ts>." + body). 1, or 0 when
 * OpenSSL failed. out: at least 72 bytes. */
int us_webhook_sign(const char *secret, apr_size_t secret_len, long long ts, const char *body,
                    apr_size_t body_len, char out[72]);

/* The wait before attempt number attempts + 1, after attempts (>= 1)
 * failed ones: 1 s, 2 s, 4 s, ... up to US_WEBHOOK_MAX_BACKOFF. */
apr_interval_time_t us_webhook_backoff(int attempts);

/* How many deliveries an event with failed failed files takes (>= 1). */
int us_webhook_pages(long long failed);

/* The id of one delivery: a UUID (version 8, RFC 9562) made of the
 * SHA-256 of event, session_id and page - the same for every retry. */
void us_webhook_delivery_id(const char *event, const char *session_id, int page,
                            char out[37]);

typedef struct {
    const char *event;       /* US_WEBHOOK_INGESTED or US_WEBHOOK_EXPIRED */
    const char *session_id;
    const char *workspace;
    apr_time_t occurred_at;  /* when the session was ingested or expired */
    long long uploaded_files;
    long long finished_files;
    long long failed_files;
    int page;                /* 1..pages */
    int pages;
    /* this page's failed files (us_session_file_row: name, file_ingestion_id,
     * reason), NULL for none */
    const apr_array_header_t *failed;
} us_webhook_event;

/* The JSON body of one delivery, NUL-terminated (*len its length), or
 * NULL when a string is not valid UTF-8:
 * {"delivery_id","event","session_id","workspace","occurred_at",
 *  "counters":{"uploaded_files","finished_files","failed_files"},
 *  "failed_files":[{"file_ingestion_id","name","reason"}...],"page","pages"} */
const char *us_webhook_event_json(apr_pool_t *p, const us_webhook_event *e, apr_size_t *len);

#endif

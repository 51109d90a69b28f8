/* us_webhook.c - webhook URLs, secret, event JSON, signature and retry
 * schedule (pure; us_webhook.h). */
#include "us_webhook.h"

#include "us_crypto.h"
#include "us_json_writer.h"
#include "us_store.h"
#include "us_time.h"

#include <apr_lib.h>
#include <apr_strings.h>
#include <apr_uri.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* A port: decimal digits only, 1 to 65535. */
static int port_ok(const char *port)
{
    long n = 0;
    if (!*port)
        return 0;
    for (const char *d = port; *d; d++) {
        if (*d < '0' || *d > '9')
            return 0;
        n = n * 10 + (*d - '0');
        if (n > 65535)
            return 0;
    }
    return n >= 1;
}

const char *us_webhook_url_check(apr_pool_t *p, const char *url)
{
    apr_uri_t u;
    if (!url || !*url || strpbrk(url, " \t\r\n"))
        return "expects an absolute http:// or https:// URL";
    /* the URL is quoted in the status page's JSON (a failed attempt's
     * last_error) and in the log: printable ASCII, others percent-encoded.
     * This reason does not quote it. */
    for (const unsigned char *c = (const unsigned char *)url; *c; c++)
        if (*c < 0x21 || *c > 0x7e)
            return apr_psprintf(p, "expects a URL of printable ASCII characters: byte 0x%02X "
                                "at offset %d must be percent-encoded (%%%02X)",
                                *c, (int)(c - (const unsigned char *)url), *c);
    /* the reasons quote the URL as it is shown (us_webhook_url_shown): what
     * follows its host and port may be a receiver's token, and httpd's
     * message names the configuration file and line */
    if (apr_uri_parse(p, url, &u) != APR_SUCCESS || !u.scheme || !u.hostname || !*u.hostname)
        return apr_psprintf(p, "expects an absolute http:// or https:// URL, not '%s'",
                            us_webhook_url_shown(p, url));
    if (strcasecmp(u.scheme, "http") != 0 && strcasecmp(u.scheme, "https") != 0)
        return apr_psprintf(p, "expects an http:// or https:// URL, not '%s'",
                            us_webhook_url_shown(p, url));
    if (u.fragment || u.user || u.password)
        return apr_psprintf(p, "expects a URL without user info or fragment, not '%s'",
                            us_webhook_url_shown(p, url));
    /* apr_uri_parse keeps the port's low 16 bits (and atoi's sign): 99999
     * or -1 would be some other port */
    if (u.port_str && !port_ok(u.port_str))
        return apr_psprintf(p, "malformed port in '%s' (a port is 1 to 65535)",
                            us_webhook_url_shown(p, url));
    return NULL;
}

/* The end of url's authority, url's n bytes read at most; [url, *host_at)
 * is the scheme and "://", [*host, end) the host and port (after the
 * authority's last '@', if any). */
static const char *origin_end(const char *url, size_t n, const char **host_at,
                              const char **host)
{
    const char *stop = url + n;
    const char *authority = url;
    for (size_t i = 0; i + 3 <= n; i++)
        if (url[i] == ':' && url[i + 1] == '/' && url[i + 2] == '/') {
            authority = url + i + 3;
            break;
        }
    const char *end = authority;
    while (end < stop && *end != '/' && *end != '?' && *end != '#')
        end++;
    const char *h = end;
    while (h > authority && h[-1] != '@')
        h--;
    *host_at = authority;
    *host = h;
    return end;
}

/* 1 when the n bytes at s are hex digits as us_hex writes them (a NUL
 * among them ends the reading) */
static int lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

static const char *const SPACE = " \t\r\n\v\f";

const char *us_webhook_url_shown(apr_pool_t *p, const char *url)
{
    unsigned char h[US_SHA256_LEN];
    char fp[US_WEBHOOK_FINGERPRINT_LEN + 1];
    const char *host_at, *host;
    size_t n = strlen(url);
    const char *end = origin_end(url, n, &host_at, &host);
    us_sha256(url, n, h);
    us_hex(h, US_WEBHOOK_FINGERPRINT_LEN / 2, fp);
    return apr_psprintf(p, "%.*s%.*s%s #%s", (int)(host_at - url), url, (int)(end - host), host,
                        *end && strcmp(end, "/") != 0 ? "/..." : "", fp);
}

/* The length of the shown form, fingerprint included, whose first n bytes
 * are the token at s, or 0 when it is not one: the scheme, host and port,
 * "/..." or nothing, then " #" and the fingerprint's hex digits before
 * whitespace or the end. */
static size_t shown_len(const char *s, size_t n)
{
    const char *host_at, *host;
    const char *end = origin_end(s, n, &host_at, &host);
    size_t rest = n - (size_t)(end - s);
    if (host != host_at || (rest != 0 && (rest != 4 || memcmp(end, "/...", 4) != 0)) ||
        s[n] != ' ' || s[n + 1] != '#')
        return 0;
    const char *fp = s + n + 2; /* within the text: s[n + 1] is not its NUL */
    if (!lower_hex(fp, US_WEBHOOK_FINGERPRINT_LEN) ||
        (fp[US_WEBHOOK_FINGERPRINT_LEN] && !strchr(SPACE, fp[US_WEBHOOK_FINGERPRINT_LEN])))
        return 0;
    return n + 2 + US_WEBHOOK_FINGERPRINT_LEN;
}

static int scheme_char(char c)
{
    return apr_isalnum(c) || c == '+' || c == '-' || c == '.';
}

const char *us_webhook_text_shown(apr_pool_t *p, const char *text)
{
    const char *done = text; /* copied or rewritten up to here */
    const char *sep;
    apr_array_header_t *out = NULL;
    if (!text)
        return NULL;
    for (const char *at = text; (sep = strstr(at, "://")) != NULL;) {
        const char *start = sep;
        while (start > done && scheme_char(start[-1]))
            start--;
        while (start < sep && !apr_isalpha(*start))
            start++;
        if (start == sep) { /* no scheme: not a URL */
            at = sep + 3;
            continue;
        }
        size_t n = strcspn(start, SPACE);
        size_t kept = shown_len(start, n);
        if (!out)
            out = apr_array_make(p, 8, sizeof(const char *));
        APR_ARRAY_PUSH(out, const char *) = apr_pstrmemdup(p, done, (apr_size_t)(start - done));
        APR_ARRAY_PUSH(out, const char *) =
            kept ? apr_pstrmemdup(p, start, kept)
                 : us_webhook_url_shown(p, apr_pstrmemdup(p, start, n));
        done = at = start + (kept ? kept : n);
    }
    if (!out)
        return text;
    APR_ARRAY_PUSH(out, const char *) = done;
    return apr_array_pstrcat(p, out, 0);
}

const char *us_webhook_secret_read(apr_pool_t *p, const char *path, const char **secret,
                                   apr_size_t *len)
{
    struct stat sb;
    char *buf = apr_palloc(p, US_WEBHOOK_SECRET_MAX + 2);
    if (stat(path, &sb) != 0)
        return apr_psprintf(p, "%s: cannot be read (%s)", path, strerror(errno));
    if (sb.st_mode & S_IROTH)
        return apr_psprintf(p, "%s is world-readable: chmod o-r it", path);
    FILE *f = fopen(path, "rb");
    if (!f)
        return apr_psprintf(p, "%s: cannot be read (%s)", path, strerror(errno));
    size_t n = fread(buf, 1, US_WEBHOOK_SECRET_MAX + 2, f);
    int failed = ferror(f);
    fclose(f);
    if (failed)
        return apr_psprintf(p, "%s: cannot be read", path);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    if (n < 16 || n > US_WEBHOOK_SECRET_MAX)
        return apr_psprintf(p, "%s: the secret must be 16 to %d bytes (a trailing newline "
                            "not counted)", path, US_WEBHOOK_SECRET_MAX);
    buf[n] = '\0';
    *secret = buf;
    *len = n;
    return NULL;
}

int us_webhook_sign(const char *secret, apr_size_t secret_len, long long ts, const char *body,
                    apr_size_t body_len, char out[72])
{
    unsigned char mac[US_SHA256_LEN];
    char prefix[32];
    int n = snprintf(prefix, sizeof(prefix), "%lld.", ts);
    char *msg = malloc((size_t)n + body_len);
    if (!msg)
        return 0;
    memcpy(msg, prefix, (size_t)n);
    memcpy(msg + n, body, body_len);
    int ok = us_hmac_sha256((const unsigned char *)secret, secret_len, msg, (size_t)n + body_len,
                            mac);
    free(msg);
    if (!ok)
        return 0;
    char hex[2 * US_SHA256_LEN + 1];
    us_hex(mac, sizeof(mac), hex);
    snprintf(out, 72, "sha256=%s", hex);
    return 1;
}

apr_interval_time_t us_webhook_backoff(int attempts)
{
    apr_interval_time_t d = apr_time_from_sec(1);
    for (int i = 1; i < attempts && d < US_WEBHOOK_MAX_BACKOFF; i++)
        d *= 2;
    return d < US_WEBHOOK_MAX_BACKOFF ? d : US_WEBHOOK_MAX_BACKOFF;
}

int us_webhook_pages(long long failed)
{
    if (failed <= US_WEBHOOK_PAGE_FILES)
        return 1;
    return (int)((failed + US_WEBHOOK_PAGE_FILES - 1) / US_WEBHOOK_PAGE_FILES);
}

void us_webhook_delivery_id(const char *event, const char *session_id, int page, char out[37])
{
    unsigned char h[US_SHA256_LEN];
    char hex[33];
    char material[256];
    int n = snprintf(material, sizeof(material), "%s\n%s\n%d", event, session_id, page);
    if (n < 0 || (size_t)n >= sizeof(material))
        n = (int)sizeof(material) - 1;
    us_sha256(material, (size_t)n, h);
    h[6] = (unsigned char)((h[6] & 0x0f) | 0x80); /* version 8 */
    h[8] = (unsigned char)((h[8] & 0x3f) | 0x80); /* RFC 9562 variant */
    us_hex(h, 16, hex);
    snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
}

const char *us_webhook_event_json(apr_pool_t *p, const us_webhook_event *e, apr_size_t *len)
{
    us_json_writer w;
    char id[37], ts[US_TS_LEN];
    int nfailed = e->failed ? e->failed->nelts : 0;

    us_webhook_delivery_id(e->event, e->session_id, e->page, id);
    us_time_format(e->occurred_at, ts);
    us_json_write_init(&w, p, 512 + (apr_size_t)nfailed * 128);
    us_json_write_object_open(&w);
    us_json_write_key_string(&w, "delivery_id", id);
    us_json_write_key_string(&w, "event", e->event);
    us_json_write_key_string(&w, "session_id", e->session_id);
    us_json_write_key_string(&w, "workspace", e->workspace);
    us_json_write_key_string(&w, "occurred_at", ts);
    us_json_write_key(&w, "counters");
    us_json_write_object_open(&w);
    us_json_write_key_int(&w, "uploaded_files", e->uploaded_files);
    us_json_write_key_int(&w, "finished_files", e->finished_files);
    us_json_write_key_int(&w, "failed_files", e->failed_files);
    us_json_write_object_close(&w);
    us_json_write_key(&w, "failed_files");
    us_json_write_array_open(&w);
    for (int i = 0; i < nfailed; i++) {
        const us_session_file_row *f = &APR_ARRAY_IDX(e->failed, i, us_session_file_row);
        us_json_write_object_open(&w);
        us_json_write_key_string(&w, "file_ingestion_id", f->file_ingestion_id);
        us_json_write_key_string(&w, "name", f->name);
        us_json_write_key_string(&w, "reason", f->reason ? f->reason : "OTHER");
        us_json_write_object_close(&w);
    }
    us_json_write_array_close(&w);
    us_json_write_key_int(&w, "page", e->page);
    us_json_write_key_int(&w, "pages", e->pages);
    us_json_write_object_close(&w);
    if (!us_json_write_ok(&w))
        return NULL;
    return us_json_write_finish(&w, len);
}

/*
 * us_s3.c - the s3 storage backend: files as objects in one bucket of an
 * S3-compatible object store (AWS S3, Ceph radosgw), path-style requests
 * through libcurl, each signed with AWS Signature V4 (us_sigv4). The only
 * place that knows the key layout (PREFIX/ omitted when no prefix is set):
 *   PREFIX/sessions/<session_id>/<blob>   a session's uploads
 *   PREFIX/files/<file_id>                workspace files
 *   PREFIX/.check/<pid>.<thread>          the health probe (written, deleted)
 * Writers keep at most one part (8 MiB): a file that fits is one
 * PUT at finish, a larger one a multipart upload (parts as they fill, the
 * last at finish, CompleteMultipartUpload at commit). Either makes the
 * object appear whole under its key at once. Publishing is CopyObject (in
 * parts, UploadPartCopy, above CopyObject's 5 GiB) then DeleteObject of the
 * source; a replay after a crash between the two finds the source still
 * there and copies the same bytes again. The files/ keys are listed a page
 * at a time for the sweep of objects no row refers to.
 * A part is filled in memory while the process's part budget
 * (part_memory=, UploadSessionS3PartMemory) has room, else in an unlinked
 * temporary file (us_s3_spill.h), sent from a read-only map of it.
 * Credentials and signatures are never logged.
 */
#include "us_storage_backend.h"
#include "us_sigv4.h"
#include "us_crypto.h"
#include "us_s3_parts.h"
#include "us_s3_late.h"
#include "us_s3_aborts.h"
#include "us_s3_spill.h"
#include "us_s3_answers.h"
#include "us_buf.h"

#include <apr_atomic.h>

#include <apr_strings.h>
#include <apr_portable.h>
#include <curl/curl.h>
#include <openssl/evp.h>

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PART_SIZE (8 * 1024 * 1024)     /* the multipart threshold and part size */
#define MAX_PARTS 10000                 /* S3's limit for one multipart upload */
#define FIRST_BUF (64 * 1024)           /* a writer's first part buffer, grown as bytes come */
#define DEFAULT_PART_MEMORY (64LL * 1024 * 1024)
#define READ_WINDOW (4 * 1024 * 1024)   /* bytes one ranged GET of a reader fetches */
#ifndef US_S3_STALE_UPLOAD_AGE         /* an unfinished multipart upload older is a dead writer's */
#define US_S3_STALE_UPLOAD_AGE (24 * 3600)
#endif
/* Listings and error documents are read whole, up to this size. A listing
 * page asks for at most LIST_PAGE_KEYS entries, so that one of the longest
 * keys (1,024 bytes, each XML-escaped to at most 6: "&quot;") with its
 * other fields (under 512 bytes) always fits: a page cut off would list
 * fewer objects than there are. */
#ifndef US_S3_MAX_RESPONSE
#define US_S3_MAX_RESPONSE (8 << 20)
#endif
#define LIST_ENTRY_MAX (1024 * 6 + 512)
#define LIST_PAGE_KEYS (US_S3_MAX_RESPONSE / LIST_ENTRY_MAX < 1000 ? US_S3_MAX_RESPONSE / LIST_ENTRY_MAX : 1000)
/* Above CopyObject's limit (5 GiB) a publish copies in parts (UploadPartCopy)
 * of US_S3_COPY_PART bytes. The unit tests' build lowers both (Makefile) to
 * copy a few MiB in parts; S3 wants every part but the last >= 5 MiB. */
#ifndef US_S3_COPY_LIMIT
#define US_S3_COPY_LIMIT (5LL * 1024 * 1024 * 1024)
#endif
#ifndef US_S3_COPY_PART
#define US_S3_COPY_PART (512LL * 1024 * 1024)
#endif

typedef struct {
    const char *endpoint;   /* http://127.0.0.1:7480, no trailing slash */
    const char *host;       /* 127.0.0.1:7480, the signed Host header */
    const char *bucket;
    const char *prefix;     /* "" or "p/" */
    us_sigv4_credentials cred;
    us_s3_aborts *aborts;   /* uploads whose abort failed, tried again by s3_tidy */
    us_s3_budget *parts;    /* the memory this process's writers may fill parts in */
    const char *spill_dir;  /* where parts past it are filled: $TMPDIR, else /var/tmp */
} s3_conf;

static const s3_conf *conf_of(const us_storage *st) { return st->conf; }

/* ---- configuration ------------------------------------------------------------- */

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

/* The [default] keys of an AWS shared-credentials file; NULL or the reason. */
static const char *read_credentials(apr_pool_t *p, const char *path, s3_conf *c)
{
    struct stat sb;
    char line[1024];
    int in_default = 0;
    if (stat(path, &sb) != 0)
        return apr_psprintf(p, "credentials file %s: cannot be read (%s)", path, strerror(errno));
    if (sb.st_mode & S_IROTH)
        return apr_psprintf(p, "credentials file %s is world-readable: chmod o-r it", path);
    FILE *f = fopen(path, "r");
    if (!f)
        return apr_psprintf(p, "credentials file %s: cannot be read (%s)", path, strerror(errno));
    while (fgets(line, sizeof(line), f)) {
        char *l = trim(line), *eq;
        if (*l == '[') {
            in_default = strcmp(l, "[default]") == 0;
            continue;
        }
        if (!in_default || *l == '#' || *l == ';' || !(eq = strchr(l, '=')))
            continue;
        *eq = '\0';
        const char *k = trim(l), *v = trim(eq + 1);
        if (strcmp(k, "aws_access_key_id") == 0)
            c->cred.access_key = apr_pstrdup(p, v);
        else if (strcmp(k, "aws_secret_access_key") == 0)
            c->cred.secret_key = apr_pstrdup(p, v);
    }
    fclose(f);
    if (!c->cred.access_key || !*c->cred.access_key || !c->cred.secret_key ||
        !*c->cred.secret_key)
        return apr_psprintf(p, "credentials file %s: no [default] section with "
                               "aws_access_key_id and aws_secret_access_key", path);
    return NULL;
}

/* A bucket name as S3 allows it: 3-63 of a-z 0-9 . - */
static int bucket_ok(const char *b)
{
    size_t n = strlen(b);
    if (n < 3 || n > 63)
        return 0;
    for (const char *s = b; *s; s++)
        if (!(islower((unsigned char)*s) || isdigit((unsigned char)*s) || *s == '.' || *s == '-'))
            return 0;
    return 1;
}

/* params: "<endpoint URL> <bucket> [region=R] [credentials=PATH] [prefix=P]
 * [part_memory=BYTES]" */
static apr_status_t s3_configure(apr_pool_t *p, const char *data_dir, const char *params,
                                 void **conf, const char **err)
{
    char *last = NULL;
    char *words = apr_pstrdup(p, params ? params : "");
    const char *url = apr_strtok(words, " ", &last);
    const char *bucket = url ? apr_strtok(NULL, " ", &last) : NULL;
    const char *creds = NULL, *w;
    apr_int64_t part_memory = DEFAULT_PART_MEMORY;
    s3_conf *c = apr_pcalloc(p, sizeof(*c));
    (void)data_dir;
    c->aborts = us_s3_aborts_create(p);
    if (!url || !bucket || strchr(bucket, '=')) {
        *err = "s3 storage expects an endpoint URL and a bucket: s3 http://127.0.0.1:7480 uploads";
        return APR_EINVAL;
    }
    c->cred.region = "us-east-1";
    c->cred.service = "s3";
    c->prefix = "";
    while ((w = apr_strtok(NULL, " ", &last))) {
        if (strncmp(w, "region=", 7) == 0 && w[7])
            c->cred.region = w + 7;
        else if (strncmp(w, "credentials=", 12) == 0 && w[12])
            creds = w + 12;
        else if (strncmp(w, "prefix=", 7) == 0) {
            const char *pre = w + 7;
            while (*pre == '/')
                pre++;
            size_t n = strlen(pre);
            while (n && pre[n - 1] == '/')
                n--;
            c->prefix = n ? apr_pstrcat(p, apr_pstrndup(p, pre, n), "/", NULL) : "";
        }
        else if (strncmp(w, "part_memory=", 12) == 0) {
            char *end = NULL;
            errno = 0;
            part_memory = isdigit((unsigned char)w[12]) ? apr_strtoi64(w + 12, &end, 10) : -1;
            if (part_memory < 0 || *end || errno == ERANGE) {
                *err = apr_psprintf(p, "s3 storage: part_memory expects bytes, not '%s'", w + 12);
                return APR_EINVAL;
            }
        }
        else {
            *err = apr_psprintf(p, "s3 storage: unknown parameter '%s'", w);
            return APR_EINVAL;
        }
    }
    const char *rest = NULL;
    if (strncmp(url, "http://", 7) == 0)
        rest = url + 7;
    else if (strncmp(url, "https://", 8) == 0)
        rest = url + 8;
    size_t hl = rest ? strcspn(rest, "/?#") : 0;
    int bad = !rest || hl == 0 || (rest[hl] && strcmp(rest + hl, "/") != 0);
    for (size_t i = 0; !bad && i < hl; i++)
        bad = !(isalnum((unsigned char)rest[i]) || strchr(".-:[]", rest[i]));
    if (!bad) {
        const char *colon = memchr(rest, ':', hl);
        if (colon && rest[0] != '[') {
            char *end = NULL;
            long port = strtol(colon + 1, &end, 10);
            bad = colon + 1 == end || end != rest + hl || port < 1 || port > 65535;
        }
    }
    if (bad) {
        *err = apr_psprintf(p, "s3 storage: malformed endpoint URL '%s' (expected "
                               "http[s]://host[:port], no path)", url);
        return APR_EINVAL;
    }
    if (!bucket_ok(bucket)) {
        *err = apr_psprintf(p, "s3 storage: malformed bucket name '%s'", bucket);
        return APR_EINVAL;
    }
    if (!creds) {
        *err = "s3 storage needs UploadSessionS3CredentialsFile";
        return APR_EINVAL;
    }
    if ((*err = read_credentials(p, creds, c)))
        return APR_EINVAL;
    /* the scheme's own port left out: curl sends no port in Host then, and
     * the signature covers Host */
    const char *dflt = rest == url + 8 ? ":443" : ":80";
    if (hl > strlen(dflt) && strncmp(rest + hl - strlen(dflt), dflt, strlen(dflt)) == 0)
        hl -= strlen(dflt);
    c->host = apr_pstrndup(p, rest, hl);
    c->endpoint = apr_pstrndup(p, url, (apr_size_t)(rest - url) + hl);
    c->bucket = bucket;
    c->parts = us_s3_budget_create(p, (apr_uint64_t)part_memory);
    /* not /tmp: on a tmpfs (Debian's default since 13) a spilled part is
     * memory again */
    const char *tmpdir = getenv("TMPDIR");
    c->spill_dir = tmpdir && *tmpdir ? apr_pstrdup(p, tmpdir) : "/var/tmp";
    /* before any thread exists: curl_global_init is not thread-safe */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        *err = "s3 storage: libcurl cannot be initialised";
        return APR_EINIT;
    }
    *conf = c;
    return APR_SUCCESS;
}

/* ---- requests ------------------------------------------------------------------- */

typedef struct {
    /* what to send: body[0..len), or nothing */
    const char *body;
    apr_size_t len;
    apr_size_t sent;
    /* what came back: into resp when set (grown as it comes), else into buf
     * (at most cap bytes); more than either holds sets overflow */
    us_buf *resp;
    char *buf;
    apr_size_t cap, got;
    int overflow;
    long status;
    const char *etag;
    const char *content_range; /* as it came, NULL without one */
    apr_off_t content_length;
    apr_pool_t *p;
} s3_xfer;

static size_t on_body(char *data, size_t sz, size_t n, void *baton)
{
    s3_xfer *x = baton;
    size_t len = sz * n;
    if (x->resp) {
        if (us_buf_append(x->resp, data, len) != 0) {
            x->overflow = 1;
            return 0; /* stops the transfer */
        }
        return len;
    }
    if (x->got + len > x->cap) {
        x->overflow = 1;
        return 0; /* stops the transfer */
    }
    memcpy(x->buf + x->got, data, len);
    x->got += len;
    return len;
}

static size_t on_send(char *out, size_t sz, size_t n, void *baton)
{
    s3_xfer *x = baton;
    size_t len = sz * n;
    if (len > x->len - x->sent)
        len = x->len - x->sent;
    memcpy(out, x->body + x->sent, len);
    x->sent += len;
    return len;
}

static size_t on_header(char *data, size_t sz, size_t n, void *baton)
{
    s3_xfer *x = baton;
    size_t len = sz * n;
    if (len > 5 && strncmp(data, "HTTP/", 5) == 0) {
        /* a new answer's status line (after an interim one): its own headers only */
        x->etag = NULL;
        x->content_range = NULL;
        x->content_length = -1;
    }
    else if (len > 14 && strncasecmp(data, "content-range:", 14) == 0) {
        x->content_range = apr_pstrndup(x->p, data + 14, len - 14);
    }
    else if (len > 5 && strncasecmp(data, "etag:", 5) == 0) {
        char *v = apr_pstrndup(x->p, data + 5, len - 5);
        x->etag = trim(v);
    }
    else if (len > 15 && strncasecmp(data, "content-length:", 15) == 0) {
        /* not a number: as if there were none (the reader refuses it) */
        if (!us_s3_parse_length(data + 15, len - 15, &x->content_length))
            x->content_length = -1;
    }
    return len;
}

/* libcurl's progress callback of a stoppable handle's request: a set stop
 * flag aborts the transfer (CURLE_ABORTED_BY_CALLBACK); called about once
 * a second while the store is silent too. */
static int stop_asked(void *clientp, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                      curl_off_t ulnow)
{
    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    return apr_atomic_read32((volatile apr_uint32_t *)clientp) != 0;
}

/* A request of a stoppable handle cut short, or not sent, because its stop
 * flag is set: logged once per handle (a stopping worker's publishes are
 * cut together). */
static apr_status_t cut(const us_storage *st, const char *method, const char *path)
{
    if (apr_atomic_cas32(st->cut_logged, 1, 0) == 0)
        us_log(st->log, US_LOG_INFO, 0, 1220, "s3 %s %s: cut short, the process is stopping; "
               "what it was for is done again later", method, path);
    return APR_EINTR;
}

/* Sends one signed request for key (NULL: the bucket) with the canonical
 * query q (or NULL) and extra headers (name, value pairs, NULL-ended; a
 * Range header among them is sent unsigned). x->status is the HTTP status;
 * APR_SUCCESS when an answer came, else why not. */
static apr_status_t s3_send(const us_storage *st, apr_pool_t *p, const char *method,
                            const char *key, const char *q, const char *const *extra,
                            s3_xfer *x)
{
    const s3_conf *c = conf_of(st);
    char date[20];
    time_t now = time(NULL);
    struct tm tm;
    us_sigv4_header hdr[8];
    int nh = 0;
    us_sigv4_signed sig;
    const char *path = apr_pstrcat(p, "/", c->bucket, key ? "/" : "",
                                   key ? us_sigv4_uri_encode(p, key, 1) : "", NULL);
    const char *payload = x->body && x->len ? NULL : US_SIGV4_EMPTY_SHA256;
    const char *range = NULL;
    int copies = 0;
    if (!payload) {
        unsigned char d[US_SHA256_LEN];
        char *hex = apr_palloc(p, 2 * US_SHA256_LEN + 1);
        us_sha256(x->body, x->len, d);
        for (int i = 0; i < US_SHA256_LEN; i++)
            snprintf(hex + 2 * i, 3, "%02x", d[i]);
        payload = hex;
    }
    gmtime_r(&now, &tm);
    strftime(date, sizeof(date), "%Y%m%dT%H%M%SZ", &tm);
    hdr[nh++] = (us_sigv4_header){ "host", c->host };
    hdr[nh++] = (us_sigv4_header){ "x-amz-content-sha256", payload };
    hdr[nh++] = (us_sigv4_header){ "x-amz-date", date };
    for (int i = 0; extra && extra[i] && nh < 8; i += 2) {
        if (strcasecmp(extra[i], "range") == 0)
            range = extra[i + 1];
        else
            hdr[nh++] = (us_sigv4_header){ extra[i], extra[i + 1] };
        copies |= strcasecmp(extra[i], "x-amz-copy-source") == 0;
    }
    if (st->stop && apr_atomic_read32(st->stop))
        return cut(st, method, path);
    us_sigv4_request req = { method, path, q, hdr, nh, payload };
    if (!us_sigv4_sign_request(p, &c->cred, date, &req, &sig))
        return APR_EINVAL;

    CURL *h = curl_easy_init();
    if (!h)
        return APR_ENOMEM;
    struct curl_slist *hl = NULL;
    for (int i = 1; i < nh; i++)
        hl = curl_slist_append(hl, apr_pstrcat(p, hdr[i].name, ": ", hdr[i].value, NULL));
    hl = curl_slist_append(hl, apr_pstrcat(p, "Authorization: ", sig.authorization, NULL));
    if (range)
        hl = curl_slist_append(hl, apr_pstrcat(p, "Range: ", range, NULL));
    hl = curl_slist_append(hl, "Expect:"); /* no 100-continue round trip */
    x->p = p;
    x->status = 0;
    x->content_length = -1;
    curl_easy_setopt(h, CURLOPT_URL, apr_pstrcat(p, c->endpoint, path, q ? "?" : "", q ? q : "", NULL));
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L); /* "/./" and "/../" in a key, as signed */
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 5L);
    /* a stalled store fails: in 30 s, but a copy or a completion may keep
     * the store silent far longer while it works (us_s3_stall_seconds) */
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, us_s3_stall_seconds(method, q, copies));
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    }
    else if (strcmp(method, "PUT") == 0 || strcmp(method, "POST") == 0) {
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, on_send);
        curl_easy_setopt(h, CURLOPT_READDATA, x);
        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)x->len);
        if (strcmp(method, "POST") == 0)
            curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "POST");
    }
    else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    }
    if (st->stop) {
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, stop_asked);
        curl_easy_setopt(h, CURLOPT_XFERINFODATA, (void *)st->stop);
    }
    CURLcode cc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &x->status);
    curl_slist_free_all(hl);
    curl_easy_cleanup(h);
    if (cc == CURLE_WRITE_ERROR && x->overflow)
        return APR_SUCCESS;
    if (cc == CURLE_ABORTED_BY_CALLBACK)
        return cut(st, method, path);
    if (cc != CURLE_OK) {
        us_log(st->log, US_LOG_WARN, 0, 1210, "s3 %s %s: %s", method, path, curl_easy_strerror(cc));
        /* any transport failure is an outage (us_storage_unavailable) */
        return cc == CURLE_COULDNT_CONNECT ? APR_ECONNREFUSED
               : cc == CURLE_OPERATION_TIMEDOUT ? APR_TIMEUP
               : cc == CURLE_COULDNT_RESOLVE_HOST ? APR_EHOSTUNREACH : APR_ECONNRESET;
    }
    return APR_SUCCESS;
}

/* s3_send with a small answer kept in *body (NUL-terminated, "" for none;
 * memory taken only as it comes). An answer larger than
 * US_S3_MAX_RESPONSE is an error (APR_INCOMPLETE): never half a listing. */
static apr_status_t s3_call(const us_storage *st, apr_pool_t *p, const char *method,
                            const char *key, const char *q, const char *const *extra,
                            const char *send, apr_size_t send_len, long *status, char **body,
                            const char **etag)
{
    s3_xfer x = { 0 };
    us_buf resp;
    us_buf_init(&resp, p, US_S3_MAX_RESPONSE);
    x.body = send;
    x.len = send_len;
    x.resp = &resp;
    apr_status_t rv = s3_send(st, p, method, key, q, extra, &x);
    if (rv == APR_SUCCESS && x.overflow) {
        us_log(st->log, US_LOG_WARN, 0, 1210, "s3 %s %s: an answer of more than %d bytes",
               method, key ? key : "(bucket)", US_S3_MAX_RESPONSE);
        rv = APR_INCOMPLETE;
    }
    *status = x.status;
    if (body)
        *body = resp.data ? resp.data : apr_pstrdup(p, "");
    if (etag)
        *etag = x.etag;
    return rv;
}

/* An APR status for an answer that is not a 2xx; 5xx, a throttle (429) and
 * a request timeout (408) are an outage: trying again later may work. So
 * is a 404 here: a key found missing is told by not_found (APR_ENOENT);
 * any other (the bucket gone) must not read as "no such file". A refusal
 * (401, 403) is an error, asked again only as the callers retry. Another
 * 4xx is about this request alone (us_storage_refused), but a conflict
 * (409, OperationAborted: another operation on the key is under way). */
static apr_status_t from_http(long status)
{
    if (status == 403 || status == 401)
        return APR_EACCES;
    if (status >= 500 || status == 0 || status == 429 || status == 408 || status == 404 ||
        status == 409)
        return APR_EAGAIN;
    return APR_EGENERAL;
}

/* Error codes S3 clients are told to retry whatever the status they come
 * with (a 400 RequestTimeout; a CompleteMultipartUpload's 200 holding an
 * error document). */
static int retryable_code(const char *code)
{
    static const char *const codes[] = { "InternalError", "SlowDown", "ServiceUnavailable",
                                         "RequestTimeout" };
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
        if (!strcmp(code, codes[i]))
            return 1;
    return 0;
}

/* Error codes about the request's credentials or signature whatever the
 * status they come with (400 for some): every request would meet them. */
static int credentials_code(const char *code)
{
    static const char *const codes[] = { "ExpiredToken", "InvalidToken", "TokenRefreshRequired",
                                         "AuthorizationHeaderMalformed" };
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
        if (!strcmp(code, codes[i]))
            return 1;
    return 0;
}

/* One S3 failure, logged without credentials: the code of the error document. */
static apr_status_t failed(const us_storage *st, int msgno, const char *what, const char *key,
                           long status, const char *body)
{
    char code[64];
    us_s3_error_code(body, code, sizeof(code));
    us_log(st->log, US_LOG_WARN, 0, msgno, "s3 %s %s: HTTP %ld%s%s%s", what,
           key ? key : "(bucket)", status, *code ? " " : "", code,
           status == 403 || status == 401
               ? " (access denied: the credentials lack a permission on the bucket; AWS also "
                 "answers 403 for a missing key when they lack s3:ListBucket)"
               : "");
    return retryable_code(code) ? APR_EAGAIN : credentials_code(code) ? APR_EACCES
                                                                       : from_http(status);
}

/* What a 404 answered about key means (head: to a HEAD, which carries no
 * error document; body: the document): APR_ENOENT when the key is not
 * there; else (a bucket gone, a 404 that is not the store's) logged, and
 * an outage: a file taken as gone could be marked FAILED or forgotten. */
static apr_status_t not_found(const us_storage *st, apr_pool_t *p, int msgno, const char *what,
                              const char *key, int head, const char *body)
{
    us_s3_404 k = us_s3_404_of(head, body);
    char code[64];
    us_s3_error_code(body, code, sizeof(code));
    if (k == US_S3_404_ASK) {
        long status;
        apr_status_t rv = s3_call(st, p, "HEAD", NULL, NULL, NULL, NULL, 0, &status, NULL, NULL);
        if (rv != APR_SUCCESS)
            return rv;
        if (status == 200)
            return APR_ENOENT;
        if (status != 404)
            return failed(st, msgno, what, key, status, NULL);
        apr_cpystrn(code, "NoSuchBucket", sizeof(code));
    }
    else if (k == US_S3_404_KEY)
        return APR_ENOENT;
    us_log(st->log, US_LOG_WARN, 0, msgno, "s3 %s %s: HTTP 404 %s: not a missing key (is the "
           "bucket %s there, is the endpoint the store?); taken as an outage", what, key,
           *code ? code : "without an error code", conf_of(st)->bucket);
    return APR_EAGAIN;
}

/* ---- the layout ----------------------------------------------------------------- */

static const char *session_prefix(const us_storage *st, apr_pool_t *p, const char *session_id)
{
    return apr_pstrcat(p, conf_of(st)->prefix, "sessions/", session_id, "/", NULL);
}

static const char *upload_key(const us_storage *st, apr_pool_t *p, const char *session_id,
                              const char *blob)
{
    return apr_pstrcat(p, session_prefix(st, p, session_id), blob, NULL);
}

static const char *file_key(const us_storage *st, apr_pool_t *p, const char *file_id)
{
    return apr_pstrcat(p, conf_of(st)->prefix, "files/", file_id, NULL);
}

/* A listing whose store names again the markers of a page it already
 * gave: logged, and an error (asked again later) rather than listed for ever. */
static apr_status_t repeated_marker(const us_storage *st, const char *what, const char *prefix,
                                    const char *marker)
{
    us_log(st->log, US_LOG_WARN, 0, 1211, "s3 %s %s: the store answers a page that does not "
           "move on (%s); listing stopped", what, prefix, marker);
    return APR_EAGAIN;
}

/* *token: the continuation token of a ListObjectsV2 page (in p), or NULL
 * after the last. A page that says more follow but names no token is an
 * error: the listing taken as whole would be short (a clear would then
 * remove what it left out); so is a token seen before (seen: the tokens
 * of the listing's earlier pages). */
static apr_status_t next_page(const us_storage *st, apr_pool_t *p, apr_pool_t *page,
                              const char *body, const char *prefix, apr_hash_t *seen,
                              const char **token)
{
    const char *pos = body;
    const char *trunc = us_s3_xml_next(page, &pos, "IsTruncated");
    *token = NULL;
    if (!trunc || strcmp(trunc, "true") != 0)
        return APR_SUCCESS;
    pos = body;
    const char *next = us_s3_xml_next(page, &pos, "NextContinuationToken");
    if (!next || !*next) {
        us_log(st->log, US_LOG_WARN, 0, 1211, "s3 list: a truncated page without a "
               "continuation token");
        return APR_EAGAIN; /* the store's fault: asked again later */
    }
    if (us_s3_marker_repeats(seen, next, NULL))
        return repeated_marker(st, "list", prefix, "a continuation token it gave before");
    *token = apr_pstrdup(p, next);
    return APR_SUCCESS;
}

/* The objects under prefix (every page of ListObjectsV2), into objects
 * (us_storage_object, blob = the whole key). */
static time_t parse_iso8601(const char *s);

static apr_status_t list_objects(const us_storage *st, apr_pool_t *p, const char *prefix,
                                 apr_array_header_t *objects)
{
    const char *token = NULL;
    apr_status_t rv = APR_SUCCESS;
    apr_pool_t *page; /* a page's answer, dropped once its entries are copied */
    apr_hash_t *seen = apr_hash_make(p);
    apr_pool_create(&page, p);
    do {
        long status;
        char *body;
        const char *c;
        apr_pool_clear(page);
        const char *q = apr_psprintf(page, "%s%s%slist-type=2&max-keys=%d&prefix=%s",
                                     token ? "continuation-token=" : "",
                                     token ? us_sigv4_uri_encode(page, token, 0) : "",
                                     token ? "&" : "", LIST_PAGE_KEYS,
                                     us_sigv4_uri_encode(page, prefix, 0));
        rv = s3_call(st, page, "GET", NULL, q, NULL, NULL, 0, &status, &body, NULL);
        if (rv == APR_SUCCESS && status != 200)
            rv = failed(st, 1211, "list", prefix, status, body);
        if (rv != APR_SUCCESS)
            break;
        const char *pos = body;
        while ((c = us_s3_xml_block(page, &pos, "Contents"))) {
            us_s3_entry e;
            us_s3_entry_rc bad = us_s3_list_entry(p, page, c, &e);
            if (bad != US_S3_ENTRY_OK) {
                /* not skipped: an object left out would be missing from
                 * the session's ingestion; not 0: an upload read as empty
                 * would be judged EMPTY_FILE */
                if (bad == US_S3_ENTRY_NO_KEY)
                    us_log(st->log, US_LOG_WARN, 0, 1211, "s3 list %s: an entry without a "
                           "key; the page is asked again later", prefix);
                else
                    us_log(st->log, US_LOG_WARN, 0, 1211, "s3 list %s: an entry without a "
                           "size (%s); the page is asked again later", prefix, e.key);
                rv = APR_EAGAIN;
                break;
            }
            us_storage_object *o = apr_array_push(objects);
            o->blob = e.key;
            o->size = e.size;
            o->etag = e.etag;
            o->modified = e.modified ? apr_time_from_sec(parse_iso8601(e.modified)) : 0;
        }
        if (rv != APR_SUCCESS ||
            (rv = next_page(st, p, page, body, prefix, seen, &token)) != APR_SUCCESS)
            break;
    } while (token);
    apr_pool_destroy(page);
    return rv;
}

/* The keys under prefix, into keys (const char *). */
static apr_status_t list_keys(const us_storage *st, apr_pool_t *p, const char *prefix,
                              apr_array_header_t *keys)
{
    apr_array_header_t *objects = apr_array_make(p, 16, sizeof(us_storage_object));
    apr_status_t rv = list_objects(st, p, prefix, objects);
    for (int i = 0; i < objects->nelts; i++)
        APR_ARRAY_PUSH(keys, const char *) = APR_ARRAY_IDX(objects, i, us_storage_object).blob;
    return rv;
}

/* Deletes key; APR_ENOENT when it was not there (S3 answers a DELETE of
 * nothing with 204 too: a HEAD tells). */
static apr_status_t delete_key(const us_storage *st, apr_pool_t *p, int msgno, const char *what,
                               const char *key, int check_exists)
{
    long status;
    char *body;
    apr_status_t rv;
    if (check_exists) {
        rv = s3_call(st, p, "HEAD", key, NULL, NULL, NULL, 0, &status, NULL, NULL);
        if (rv == APR_SUCCESS && status == 404)
            return not_found(st, p, msgno, what, key, 1, NULL);
        if (rv == APR_SUCCESS && status != 200)
            return failed(st, msgno, what, key, status, NULL);
    }
    rv = s3_call(st, p, "DELETE", key, NULL, NULL, NULL, 0, &status, &body, NULL);
    if (rv != APR_SUCCESS) {
        us_log(st->log, US_LOG_WARN, rv, msgno, "s3 %s: cannot delete %s", what, key);
        return rv;
    }
    if (status == 404 && us_s3_404_of(0, body) == US_S3_404_KEY)
        return APR_SUCCESS;
    if (status != 204 && status != 200)
        return status == 404 ? not_found(st, p, msgno, what, key, 0, body)
                             : failed(st, msgno, what, key, status, body);
    return APR_SUCCESS;
}

/* ---- configuration and startup --------------------------------------------------- */

/* The bucket exists (created when it does not). */
static apr_status_t s3_prepare(us_storage *st, apr_pool_t *p)
{
    long status;
    char *body;
    apr_status_t rv = s3_call(st, p, "HEAD", NULL, NULL, NULL, NULL, 0, &status, NULL, NULL);
    if (rv != APR_SUCCESS || status == 200)
        return rv;
    if (status != 404)
        return failed(st, 1212, "bucket", NULL, status, NULL);
    rv = s3_call(st, p, "PUT", NULL, NULL, NULL, NULL, 0, &status, &body, NULL);
    if (rv == APR_SUCCESS && status != 200 && !(status == 409 && strstr(body, "BucketAlreadyOwnedByYou")))
        return failed(st, 1212, "creating bucket", NULL, status, body);
    return rv;
}

/* A zero-byte object written and deleted: the store answers and takes writes. */
static apr_status_t s3_check(us_storage *st, apr_pool_t *p)
{
    long status;
    char *body;
    apr_os_thread_t me = apr_os_thread_current();
    const char *key = apr_psprintf(p, "%s.check/%ld.%lx", conf_of(st)->prefix, (long)getpid(),
                                   (unsigned long)me);
    apr_status_t rv = s3_call(st, p, "PUT", key, NULL, NULL, NULL, 0, &status, &body, NULL);
    if (rv != APR_SUCCESS)
        return rv;
    if (status != 200)
        return from_http(status);
    rv = s3_call(st, p, "DELETE", key, NULL, NULL, NULL, 0, &status, &body, NULL);
    if (rv != APR_SUCCESS)
        return rv;
    return status == 204 || status == 200 ? APR_SUCCESS : from_http(status);
}

static time_t parse_iso8601(const char *s)
{
    struct tm tm = { 0 };
    if (!s || sscanf(s, "%d-%d-%dT%d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                     &tm.tm_min, &tm.tm_sec) != 6)
        return 0;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return timegm(&tm);
}

/* The query of a ListMultipartUploads page under prefix, after the
 * markers of the previous page (NULL for the first). */
static const char *uploads_query(apr_pool_t *p, const char *prefix, const char *key_marker,
                                 const char *id_marker)
{
    return apr_psprintf(p, "%s%s%smax-uploads=%d&prefix=%s%s%s&uploads=",
                        key_marker ? "key-marker=" : "",
                        key_marker ? us_sigv4_uri_encode(p, key_marker, 0) : "",
                        key_marker ? "&" : "", LIST_PAGE_KEYS, us_sigv4_uri_encode(p, prefix, 0),
                        id_marker ? "&upload-id-marker=" : "",
                        id_marker ? us_sigv4_uri_encode(p, id_marker, 0) : "");
}

/* Aborts the multipart upload id of key: 1 when it is gone
 * (us_s3_abort_done). A 404 that does not say so (NoSuchBucket, a 404 that
 * is not the store's) is logged as an error: the upload may be there still,
 * and a missing bucket is a misconfiguration or an outage, not a success. */
static int abort_one(const us_storage *st, apr_pool_t *p, const char *key, const char *id)
{
    long status = 0;
    char *body = NULL;
    char code[64];
    if (s3_call(st, p, "DELETE", key, apr_pstrcat(p, "uploadId=", us_sigv4_uri_encode(p, id, 0), NULL),
                NULL, NULL, 0, &status, &body, NULL) != APR_SUCCESS)
        return 0;
    if (us_s3_abort_done(status, body))
        return 1;
    if (status == 404) {
        us_s3_error_code(body, code, sizeof(code));
        us_log(st->log, US_LOG_ERR, 0, 1219, "s3 aborting the multipart upload of %s: HTTP 404 "
               "%s: not a missing upload (is the bucket %s there, is the endpoint the store?); "
               "not taken as aborted", key, *code ? code : "without an error code",
               conf_of(st)->bucket);
    }
    return 0;
}

/* Aborts the multipart uploads under prefix started at least min_age
 * seconds ago (every page of ListMultipartUploads): *aborted of them, and
 * *left that could not be. Not APR_SUCCESS when a page could not be
 * listed (*http: its HTTP status, 0 without an answer). A listing may be
 * long (the sweep at startup after many dead writers): each page is read
 * and its uploads aborted in a pool of its own, cleared before the next;
 * only the markers that continue the listing are kept in p. */
static apr_status_t abort_uploads(us_storage *st, apr_pool_t *p, const char *prefix,
                                  time_t min_age, int *aborted, int *left, long *http)
{
    const char *key_marker = NULL, *id_marker = NULL;
    time_t now = time(NULL);
    apr_hash_t *seen = apr_hash_make(p);
    apr_status_t rv = APR_SUCCESS;
    apr_pool_t *page, *one;
    apr_pool_create(&page, p);
    *aborted = *left = 0;
    do {
        long status = 0;
        char *body;
        apr_pool_clear(page);
        apr_pool_create(&one, page); /* an upload's abort, cleared for the next */
        const char *q = uploads_query(page, prefix, key_marker, id_marker);
        rv = s3_call(st, page, "GET", NULL, q, NULL, NULL, 0, &status, &body, NULL);
        *http = status;
        if (rv != APR_SUCCESS || status != 200) {
            rv = rv != APR_SUCCESS ? rv : from_http(status);
            break;
        }
        const char *pos = body;
        char *up;
        while ((up = us_s3_xml_block(page, &pos, "Upload"))) {
            apr_pool_clear(one);
            const char *u = up;
            char *key = us_s3_xml_next(one, &u, "Key");
            u = up;
            char *id = us_s3_xml_next(one, &u, "UploadId");
            u = up;
            time_t started = parse_iso8601(us_s3_xml_next(one, &u, "Initiated"));
            if (!key || !id || !started || now - started < min_age)
                continue;
            if (abort_one(st, one, key, id))
                (*aborted)++;
            else
                (*left)++;
        }
        pos = body;
        const char *trunc = us_s3_xml_next(page, &pos, "IsTruncated");
        const char *next_key = NULL, *next_id = NULL;
        if (trunc && strcmp(trunc, "true") == 0) {
            pos = body;
            next_key = us_s3_xml_next(page, &pos, "NextKeyMarker");
            pos = body;
            next_id = us_s3_xml_next(page, &pos, "NextUploadIdMarker");
            if (next_id && !*next_id)
                next_id = NULL;
            if (!next_key) {
                /* the rest unlisted: a clear taking it as done would leave uploads */
                us_log(st->log, US_LOG_WARN, 0, 1211, "s3 list the multipart uploads of %s: a "
                       "truncated page without a key marker", prefix);
                rv = APR_EAGAIN;
                break;
            }
            if (us_s3_marker_repeats(seen, next_key, next_id)) {
                rv = repeated_marker(st, "list the multipart uploads of", prefix,
                                     "markers it gave before");
                break;
            }
        }
        key_marker = next_key ? apr_pstrdup(p, next_key) : NULL;
        id_marker = next_id ? apr_pstrdup(p, next_id) : NULL;
    } while (key_marker);
    apr_pool_destroy(page);
    return rv;
}

/* Aborts the multipart uploads under the prefix's sessions/ and files/
 * started more than US_S3_STALE_UPLOAD_AGE ago: a live writer finishes well
 * within it. Only there: with no prefix, the rest of a shared bucket is
 * other programs'. */
static int s3_recover(us_storage *st, apr_pool_t *p)
{
    const s3_conf *c = conf_of(st);
    static const char *const ROOTS[] = { "sessions/", "files/" };
    int removed = 0;
    for (int i = 0; i < 2; i++) {
        int aborted = 0, left = 0;
        long status = 0;
        if (abort_uploads(st, p, apr_pstrcat(p, c->prefix, ROOTS[i], NULL), US_S3_STALE_UPLOAD_AGE,
                          &aborted, &left, &status) != APR_SUCCESS)
            us_log(st->log, US_LOG_WARN, 0, 1202, "startup sweep: cannot list the unfinished "
                   "multipart uploads of bucket %s (HTTP %ld)", c->bucket, status);
        if (left)
            us_log(st->log, US_LOG_WARN, 0, 1202, "startup sweep: %d unfinished multipart "
                   "upload(s) under %s%s could not be aborted", left, c->prefix, ROOTS[i]);
        removed += aborted;
    }
    if (removed)
        us_log(st->log, US_LOG_INFO, 0, 1201,
               "removed %d unfinished multipart upload(s) left by interrupted uploads in bucket %s",
               removed, c->bucket);
    return removed;
}

/* ---- writing ---------------------------------------------------------------------- */

typedef struct {
    us_storage *st;
    apr_pool_t *p;
    const char *key;
    char *buf;              /* the part being filled, grown up to PART_SIZE bytes, */
    apr_size_t fill, cap;   /* cap of them reserved from the process's budget; */
    int fd;                 /* or, past the budget, in this unlinked file (else -1) */
    long long size;
    EVP_MD_CTX *sha;
    char hex[65];
    const char *upload_id;  /* a multipart upload, once started */
    int start_unknown;      /* a start whose answer was lost: the upload may be there */
    apr_array_header_t *etags;
    apr_status_t error;     /* the first failure: every later write returns it */
    int finished, committed, gone;
    int stored;             /* the key may hold this writer's object: a PUT or a
                             * completion answered yes, or not at all */
} s3_writer;

/* Whether a request that changes an object may have been carried out: it
 * was (2xx), or its answer never came (the store may have acted before the
 * connection broke) or was a server error. Not when the store was never
 * reached, nor on a refusal (4xx). */
static int maybe_applied(apr_status_t rv, long status)
{
    if (rv != APR_SUCCESS)
        return rv != APR_ECONNREFUSED && rv != APR_EHOSTUNREACH;
    return (status >= 200 && status < 300) || status >= 500;
}

/* Whether the multipart upload id of key is aborted (or was gone). */
static int aborted(us_storage *st, apr_pool_t *p, const char *key, const char *id)
{
    return abort_one(st, p, key, id);
}

/* Aborts a multipart upload, and deletes what finish or commit may have
 * stored under the writer's key (a fresh key: nothing else is there). An
 * abort that fails is kept for s3_tidy to try again. */
static void discard(s3_writer *w, apr_pool_t *p)
{
    if (w->upload_id) {
        if (!aborted(w->st, p, w->key, w->upload_id))
            us_log(w->st->log, US_LOG_WARN, 0, 1206,
                   "abandoning an upload: cannot abort the multipart upload of %s%s", w->key,
                   us_s3_aborts_add(conf_of(w->st)->aborts, w->key, w->upload_id)
                       ? " (tried again later)" : "");
        w->upload_id = NULL;
    }
    if (w->start_unknown) {
        /* its id never came: whatever upload the store started under this
         * fresh key is the writer's */
        int gone = 0, left = 0;
        long http = 0;
        if (abort_uploads(w->st, p, w->key, 0, &gone, &left, &http) != APR_SUCCESS || left)
            us_log(w->st->log, US_LOG_WARN, 0, 1206, "abandoning an upload: cannot abort the "
                   "multipart upload of %s (HTTP %ld)", w->key, http);
        w->start_unknown = 0;
    }
    if (w->stored || w->committed)
        delete_key(w->st, p, 1206, "abandoning", w->key, 0);
    w->stored = w->committed = 0;
}

/* Aborts again the multipart uploads whose abandon could not; those the
 * store still refuses are kept for the next round. */
static void s3_tidy(us_storage *st, apr_pool_t *p)
{
    us_s3_abort *list = us_s3_aborts_take(conf_of(st)->aborts);
    int done = 0;
    for (us_s3_abort *e = list; e; e = e->next) {
        if (aborted(st, p, e->key, e->upload_id))
            done++;
        else if (!us_s3_aborts_add(conf_of(st)->aborts, e->key, e->upload_id))
            us_log(st->log, US_LOG_WARN, 0, 1206, "cannot abort the multipart upload of %s: "
                   "left to the startup sweep", e->key);
    }
    us_s3_aborts_free(list);
    if (done)
        us_log(st->log, US_LOG_INFO, 0, 1201,
               "aborted %d multipart upload(s) that abandoned uploads left in bucket %s", done,
               conf_of(st)->bucket);
}

/* Frees the part's memory (back to the budget) or closes its file. */
static void release_part(s3_writer *w)
{
    free(w->buf);
    w->buf = NULL;
    us_s3_budget_give(conf_of(w->st)->parts, w->cap);
    w->cap = 0;
    if (w->fd >= 0)
        close(w->fd);
    w->fd = -1;
}

/* Moves the part filled so far into a temporary file: the budget had no
 * room for the buffer to grow. */
static apr_status_t spill(s3_writer *w)
{
    int fd = us_s3_spill_open(conf_of(w->st)->spill_dir);
    if (fd < 0) {
        apr_status_t rv = APR_FROM_OS_ERROR(errno);
        us_log(w->st->log, US_LOG_ERR, rv, 1218, "cannot make a temporary file in %s for a "
               "part of %s (the part memory is in use)", conf_of(w->st)->spill_dir, w->key);
        return rv;
    }
    apr_size_t fill = w->fill;
    for (apr_size_t done = 0; done < fill;) {
        ssize_t n = pwrite(fd, w->buf + done, fill - done, (off_t)done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            apr_status_t rv = n < 0 ? APR_FROM_OS_ERROR(errno) : APR_EGENERAL;
            close(fd);
            return rv;
        }
        done += (apr_size_t)n;
    }
    release_part(w);
    w->fd = fd;
    w->fill = fill;
    return APR_SUCCESS;
}

/* Appends len bytes to the spilled part. */
static apr_status_t spill_write(s3_writer *w, const char *data, apr_size_t len)
{
    while (len) {
        ssize_t n = pwrite(w->fd, data, len, (off_t)w->fill);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? APR_FROM_OS_ERROR(errno) : APR_EGENERAL;
        w->fill += (apr_size_t)n;
        data += n;
        len -= (apr_size_t)n;
    }
    return APR_SUCCESS;
}

/* The part's bytes to send: the buffer, or a read-only map of the file
 * (*map, to give to part_unmap). NULL with an error when it cannot be mapped. */
static const char *part_bytes(s3_writer *w, void **map, apr_status_t *rv)
{
    *map = NULL;
    *rv = APR_SUCCESS;
    if (w->fd < 0 || !w->fill)
        return w->buf;
    void *m = mmap(NULL, w->fill, PROT_READ, MAP_SHARED, w->fd, 0);
    if (m == MAP_FAILED) {
        *rv = APR_FROM_OS_ERROR(errno);
        return NULL;
    }
    *map = m;
    return m;
}

static void part_unmap(s3_writer *w, void *map)
{
    if (map)
        munmap(map, w->fill);
}

static apr_status_t writer_cleanup(void *data)
{
    s3_writer *w = data;
    if (!w->committed && !w->gone) {
        apr_pool_t *tmp;
        apr_pool_create_unmanaged_ex(&tmp, NULL, NULL);
        discard(w, tmp);
        apr_pool_destroy(tmp);
    }
    if (w->sha)
        EVP_MD_CTX_free(w->sha);
    w->sha = NULL;
    release_part(w);
    return APR_SUCCESS;
}

static apr_status_t open_writer(us_storage *st, apr_pool_t *p, const char *key, void **out)
{
    s3_writer *w = apr_pcalloc(p, sizeof(*w));
    w->st = st;
    w->p = p;
    w->key = key;
    w->fd = -1;
    w->sha = EVP_MD_CTX_new();
    w->etags = apr_array_make(p, 8, sizeof(const char *));
    apr_pool_cleanup_register(p, w, writer_cleanup, apr_pool_cleanup_null);
    if (!w->sha || EVP_DigestInit_ex(w->sha, EVP_sha256(), NULL) != 1)
        return APR_ENOMEM;
    if (us_s3_budget_take(conf_of(st)->parts, FIRST_BUF)) {
        w->cap = FIRST_BUF;
        if (!(w->buf = malloc(w->cap)))
            return APR_ENOMEM;
    }
    else {
        apr_status_t rv = spill(w);
        if (rv != APR_SUCCESS)
            return rv;
    }
    *out = w;
    return APR_SUCCESS;
}

static apr_status_t s3_upload_create(us_storage *st, apr_pool_t *p, const char *session_id,
                                     const char *blob, void **w)
{
    return open_writer(st, p, upload_key(st, p, session_id, blob), w);
}

static apr_status_t s3_file_create(us_storage *st, apr_pool_t *p, const char *file_id, void **w)
{
    return open_writer(st, p, file_key(st, p, file_id), w);
}

/* Sends the buffered bytes as the next part, starting the multipart upload first. */
static apr_status_t send_part(s3_writer *w)
{
    apr_pool_t *tmp;
    long status;
    char *body;
    const char *etag = NULL;
    apr_status_t rv;
    apr_pool_create(&tmp, w->p);
    if (!w->upload_id) {
        rv = s3_call(w->st, tmp, "POST", w->key, "uploads=", NULL, NULL, 0, &status, &body, NULL);
        const char *pos = body;
        char *id = rv == APR_SUCCESS && status == 200 ? us_s3_xml_next(w->p, &pos, "UploadId") : NULL;
        if (!id) {
            w->start_unknown = maybe_applied(rv, status);
            rv = rv != APR_SUCCESS ? rv : failed(w->st, 1213, "starting an upload", w->key, status, body);
            apr_pool_destroy(tmp);
            return rv;
        }
        w->upload_id = id;
    }
    const char *q = apr_psprintf(tmp, "partNumber=%d&uploadId=%s", w->etags->nelts + 1,
                                 us_sigv4_uri_encode(tmp, w->upload_id, 0));
    void *map;
    const char *bytes = part_bytes(w, &map, &rv);
    if (!bytes) {
        apr_pool_destroy(tmp);
        return rv;
    }
    rv = s3_call(w->st, tmp, "PUT", w->key, q, NULL, bytes, w->fill, &status, &body, &etag);
    part_unmap(w, map);
    if (rv == APR_SUCCESS && (status != 200 || !etag))
        rv = failed(w->st, 1213, "sending a part", w->key, status, body);
    if (rv == APR_SUCCESS) {
        APR_ARRAY_PUSH(w->etags, const char *) = apr_pstrdup(w->p, etag);
        w->fill = 0;
    }
    apr_pool_destroy(tmp);
    return rv;
}

static apr_status_t s3_write(void *wv, const char *data, apr_size_t len)
{
    s3_writer *w = wv;
    if (w->error)
        return w->error;
    if (w->finished || (!w->buf && w->fd < 0))
        return w->error = APR_EINVAL;
    EVP_DigestUpdate(w->sha, data, len);
    w->size += (long long)len;
    while (len) {
        if (w->fd < 0 && w->fill + len > w->cap && w->cap < PART_SIZE) {
            apr_size_t cap = w->cap;
            while (cap < w->fill + len && cap < PART_SIZE)
                cap *= 2;
            cap = cap < PART_SIZE ? cap : PART_SIZE;
            char *nb = NULL;
            if (us_s3_budget_take(conf_of(w->st)->parts, cap - w->cap)) {
                if (!(nb = realloc(w->buf, cap)))
                    us_s3_budget_give(conf_of(w->st)->parts, cap - w->cap);
            }
            if (nb) {
                w->buf = nb;
                w->cap = cap;
            }
            else if ((w->error = spill(w)) != APR_SUCCESS)
                return w->error;
        }
        apr_size_t room = (w->fd >= 0 ? PART_SIZE : w->cap) - w->fill;
        apr_size_t n = room < len ? room : len;
        if (w->fd >= 0) {
            if ((w->error = spill_write(w, data, n)) != APR_SUCCESS)
                return w->error;
        }
        else {
            memcpy(w->buf + w->fill, data, n);
            w->fill += n;
        }
        data += n;
        len -= n;
        if (w->fill == PART_SIZE && (w->error = send_part(w)) != APR_SUCCESS)
            return w->error;
    }
    return APR_SUCCESS;
}

/* A small file is one PUT, under its key from here on; a large one sends
 * its last part (all parts are durable in the store once answered). */
static apr_status_t s3_finish(void *wv)
{
    s3_writer *w = wv;
    unsigned char d[EVP_MAX_MD_SIZE];
    if (w->finished)
        return w->error;
    w->finished = 1;
    if (w->sha) {
        EVP_DigestFinal_ex(w->sha, d, NULL);
        for (int i = 0; i < 32; i++)
            snprintf(w->hex + 2 * i, 3, "%02x", d[i]);
    }
    if (w->error)
        return w->error;
    if (w->upload_id) {
        if (w->fill)
            w->error = send_part(w);
    }
    else {
        long status;
        char *body;
        apr_pool_t *tmp;
        void *map;
        const char *bytes = part_bytes(w, &map, &w->error);
        apr_pool_create(&tmp, w->p);
        if (bytes || !w->fill) {
            w->error = s3_call(w->st, tmp, "PUT", w->key, NULL, NULL, bytes, w->fill, &status,
                               &body, NULL);
            w->stored = maybe_applied(w->error, status);
            if (w->error == APR_SUCCESS && status != 200)
                w->error = failed(w->st, 1213, "storing", w->key, status, body);
        }
        part_unmap(w, map);
        apr_pool_destroy(tmp);
    }
    release_part(w);
    return w->error;
}

static apr_status_t s3_commit(void *wv)
{
    s3_writer *w = wv;
    if (!w->finished || w->error)
        return w->error ? w->error : APR_EINVAL;
    if (w->upload_id) {
        apr_pool_t *tmp;
        long status;
        char *body;
        apr_pool_create(&tmp, w->p);
        /* joined once: appending part by part would copy the document each time */
        apr_array_header_t *doc = apr_array_make(tmp, w->etags->nelts + 2, sizeof(const char *));
        APR_ARRAY_PUSH(doc, const char *) = "<CompleteMultipartUpload>";
        for (int i = 0; i < w->etags->nelts; i++)
            APR_ARRAY_PUSH(doc, const char *) =
                apr_psprintf(tmp, "<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>", i + 1,
                             APR_ARRAY_IDX(w->etags, i, const char *));
        APR_ARRAY_PUSH(doc, const char *) = "</CompleteMultipartUpload>";
        const char *xml = apr_array_pstrcat(tmp, doc, 0);
        apr_status_t rv = s3_call(w->st, tmp, "POST", w->key,
                                  apr_pstrcat(tmp, "uploadId=", us_sigv4_uri_encode(tmp, w->upload_id, 0), NULL),
                                  NULL, xml, strlen(xml), &status, &body, NULL);
        /* a 200 may still carry an error document */
        int refused = rv == APR_SUCCESS && status == 200 && strstr(body, "<Error>");
        w->stored = !refused && maybe_applied(rv, status);
        if (rv == APR_SUCCESS && (status != 200 || refused))
            rv = failed(w->st, 1213, "completing", w->key, status, body);
        apr_pool_destroy(tmp);
        if (rv != APR_SUCCESS) {
            w->error = rv;
            return rv; /* the upload is aborted when the pool goes */
        }
        w->upload_id = NULL;
    }
    w->committed = 1;
    return APR_SUCCESS;
}

static void s3_abandon(void *wv)
{
    s3_writer *w = wv;
    if (w->gone)
        return;
    discard(w, w->p);
    w->gone = 1;
}

static long long s3_writer_size(const void *w) { return ((const s3_writer *)w)->size; }
static const char *s3_writer_sha256_hex(const void *w) { return ((const s3_writer *)w)->hex; }

static const char *s3_writer_where(const void *wv)
{
    const s3_writer *w = wv;
    const s3_conf *c = conf_of(w->st);
    return apr_pstrcat(w->p, "s3://", c->bucket, "/", w->key, NULL);
}

/* ---- reading ----------------------------------------------------------------------- */

typedef struct {
    us_storage *st;
    apr_pool_t *p;
    const char *key;
    const char *etag;       /* of the object opened: a replaced object fails to read */
    apr_off_t size;
    char *win;              /* bytes [win_off, win_off + win_len) */
    apr_off_t win_off;
    apr_size_t win_len;
} s3_reader;

static apr_status_t s3_file_open(us_storage *st, apr_pool_t *p, const char *file_id, void **r,
                                 apr_off_t *size, apr_file_t **local)
{
    s3_xfer x = { 0 };
    s3_reader *rd = apr_pcalloc(p, sizeof(*rd));
    rd->key = file_key(st, p, file_id);
    apr_status_t rv = s3_send(st, p, "HEAD", rd->key, NULL, NULL, &x);
    if (rv != APR_SUCCESS)
        return rv;
    if (x.status != 200)
        return x.status == 404 ? not_found(st, p, 1214, "reading", rd->key, 1, NULL)
                               : failed(st, 1214, "reading", rd->key, x.status, NULL);
    if (x.content_length < 0) {
        /* not an empty file: a size unknown, which every read would cut short */
        us_log(st->log, US_LOG_WARN, 0, 1214, "s3 reading %s: the store's HEAD answer has no "
               "Content-Length", rd->key);
        return APR_EGENERAL;
    }
    rd->st = st;
    rd->p = p;
    rd->etag = x.etag;
    rd->size = x.content_length;
    *r = rd;
    *size = rd->size;
    *local = NULL;
    return APR_SUCCESS;
}

static apr_status_t s3_read_at(void *rv_, apr_off_t off, char *buf, apr_size_t *len)
{
    s3_reader *rd = rv_;
    if (off >= rd->size || *len == 0) {
        *len = 0;
        return APR_SUCCESS;
    }
    if (off < rd->win_off || off >= rd->win_off + (apr_off_t)rd->win_len) {
        apr_off_t want = rd->size - off < READ_WINDOW ? rd->size - off : READ_WINDOW;
        apr_pool_t *tmp;
        s3_xfer x = { 0 };
        if (!rd->win)
            rd->win = apr_palloc(rd->p, READ_WINDOW);
        apr_pool_create(&tmp, rd->p);
        const char *range = apr_psprintf(tmp, "bytes=%" APR_OFF_T_FMT "-%" APR_OFF_T_FMT, off,
                                         off + want - 1);
        const char *extra[] = { "range", range, rd->etag ? "if-match" : NULL, rd->etag, NULL };
        x.buf = rd->win;
        x.cap = READ_WINDOW;
        rd->win_len = 0;
        apr_status_t rv = s3_send(rd->st, tmp, "GET", rd->key, NULL, extra, &x);
        if (rv == APR_SUCCESS && x.status == 404)
            rv = not_found(rd->st, tmp, 1214, "reading", rd->key, 0,
                           apr_pstrndup(tmp, rd->win, x.got));
        /* another range than the one asked for (a store's or a proxy's
         * mistake) holds other bytes: served, they would be wrong */
        if (rv == APR_SUCCESS && x.status == 206 &&
            !(x.content_range && us_s3_content_range_is(x.content_range,
                                                        strlen(x.content_range), off,
                                                        off + want - 1, rd->size))) {
            us_log(rd->st->log, US_LOG_WARN, 0, 1214, "s3 reading %s: the store answered "
                   "Content-Range %s to Range %s (of %" APR_OFF_T_FMT " bytes)", rd->key,
                   x.content_range ? trim(apr_pstrdup(tmp, x.content_range)) : "none",
                   range, rd->size);
            rv = APR_EGENERAL;
        }
        apr_pool_destroy(tmp);
        if (rv != APR_SUCCESS)
            return rv;
        if (x.status != 206 && x.status != 200)
            return x.status == 412 ? APR_ENOENT : from_http(x.status);
        if (x.status == 200 && off != 0)
            return APR_EGENERAL; /* the range was ignored */
        rd->win_off = off;
        rd->win_len = x.got;
        if (x.got == 0) {
            *len = 0;
            return APR_EGENERAL;
        }
    }
    apr_size_t at = (apr_size_t)(off - rd->win_off);
    apr_size_t n = rd->win_len - at < *len ? rd->win_len - at : *len;
    memcpy(buf, rd->win + at, n);
    *len = n;
    return APR_SUCCESS;
}

/* ---- ingestion ----------------------------------------------------------------------- */

/* The whole object key when it holds at most max bytes: one GET. */
static apr_status_t read_small(us_storage *st, apr_pool_t *p, const char *key, apr_size_t max,
                               char **data, apr_size_t *len)
{
    s3_xfer x = { 0 };
    us_buf got;
    /* grown as the bytes come: a sidecar of 20 bytes takes little, not max */
    us_buf_init(&got, p, max);
    x.resp = &got;
    apr_status_t rv = s3_send(st, p, "GET", key, NULL, NULL, &x);
    if (rv != APR_SUCCESS)
        return rv;
    if (x.status == 404)
        return not_found(st, p, 1214, "reading", key, 0, got.data);
    if (x.overflow)
        return APR_INCOMPLETE;
    if (x.status != 200)
        return failed(st, 1214, "reading", key, x.status, got.data);
    *data = got.data ? got.data : apr_pstrdup(p, "");
    *len = got.len;
    return APR_SUCCESS;
}

static apr_status_t s3_upload_read(us_storage *st, apr_pool_t *p, const char *session_id,
                                   const char *blob, apr_size_t max, char **data, apr_size_t *len)
{
    return read_small(st, p, upload_key(st, p, session_id, blob), max, data, len);
}

static apr_status_t s3_file_read(us_storage *st, apr_pool_t *p, const char *file_id,
                                 apr_size_t max, char **data, apr_size_t *len)
{
    return read_small(st, p, file_key(st, p, file_id), max, data, len);
}

/* The answer to a copy (or a part's copy) the source refused, 412 (the
 * listed version was replaced) or 404 (gone): the destination there means
 * an earlier run of this batch published it; absent, APR_ENOENT. */
static apr_status_t published_before(us_storage *st, apr_pool_t *p, const char *dst)
{
    long status;
    apr_status_t rv = s3_call(st, p, "HEAD", dst, NULL, NULL, NULL, 0, &status, NULL, NULL);
    if (rv != APR_SUCCESS)
        return rv;
    return status == 200 ? APR_SUCCESS
           : status == 404 ? not_found(st, p, 1215, "publishing", dst, 1, NULL)
                           : from_http(status);
}

/* Aborts the multipart upload id of key; what cannot be aborted is logged
 * and kept for s3_tidy. Never cut short, even on a stoppable handle: the
 * abort is what a cut copy in parts leaves to do, one request. */
static void abort_upload(us_storage *st, apr_pool_t *p, const char *key, const char *id)
{
    us_storage whole = *st;
    whole.stop = NULL;
    if (!aborted(&whole, p, key, id))
        us_log(st->log, US_LOG_WARN, 0, 1217,
               "s3 publishing in parts: cannot abort the multipart upload of %s%s", key,
               us_s3_aborts_add(conf_of(st)->aborts, key, id) ? " (tried again later)" : "");
}

/* Whether key still holds the version etag (NULL: any): a HEAD with
 * If-Match. APR_SUCCESS, APR_ENOENT when replaced (412) or gone (404). */
static apr_status_t still_listed(us_storage *st, apr_pool_t *p, const char *key, const char *etag)
{
    long status;
    const char *extra[] = { "if-match", etag, NULL };
    if (!etag)
        return APR_SUCCESS;
    apr_status_t rv = s3_call(st, p, "HEAD", key, NULL, extra, NULL, 0, &status, NULL, NULL);
    if (rv != APR_SUCCESS)
        return rv;
    return status == 200 ? APR_SUCCESS
           : status == 412   ? APR_ENOENT
           : status == 404   ? not_found(st, p, 1216, "publishing in parts", key, 1, NULL)
                             : from_http(status);
}

/* Copies src to dst in parts (CreateMultipartUpload, UploadPartCopy per
 * range, CompleteMultipartUpload), each part pinned to etag as the single
 * copy is; any failure aborts the upload. Ceph's radosgw ignores both
 * conditions on a part, so the source is also checked to hold etag before
 * the first part and again after the last one, before the upload is
 * completed. APR_SUCCESS once dst is complete; *refused 1 when the source
 * refused (412, 404): the caller tells a replay from a replaced source. */
static apr_status_t copy_in_parts(us_storage *st, apr_pool_t *p, const char *src,
                                  const char *copy_source, const char *dst, const char *etag,
                                  long long size, int *refused)
{
    long status;
    char *body;
    const char *pos;
    *refused = 0;
    apr_status_t rv = still_listed(st, p, src, etag);
    if (rv != APR_SUCCESS) {
        *refused = APR_STATUS_IS_ENOENT(rv);
        return rv;
    }
    rv = s3_call(st, p, "POST", dst, "uploads=", NULL, NULL, 0, &status, &body, NULL);
    if (rv != APR_SUCCESS)
        return rv;
    pos = body;
    const char *id = status == 200 ? us_s3_xml_next(p, &pos, "UploadId") : NULL;
    if (!id)
        return failed(st, 1216, "publishing in parts: starting", dst, status, body);
    const char *uid = us_sigv4_uri_encode(p, id, 0);
    apr_array_header_t *ranges = us_s3_part_ranges(p, size, US_S3_COPY_PART);
    /* the CompleteMultipartUpload document, one element per part */
    apr_array_header_t *xml = apr_array_make(p, ranges->nelts + 2, sizeof(const char *));
    APR_ARRAY_PUSH(xml, const char *) = "<CompleteMultipartUpload>";
    apr_pool_t *tmp;
    apr_pool_create(&tmp, p);
    for (int i = 0; rv == APR_SUCCESS && i < ranges->nelts; i++) {
        const us_s3_range *r = &APR_ARRAY_IDX(ranges, i, us_s3_range);
        apr_pool_clear(tmp);
        const char *extra[] = { "x-amz-copy-source", copy_source,
                                "x-amz-copy-source-range",
                                apr_psprintf(tmp, "bytes=%" APR_INT64_T_FMT "-%" APR_INT64_T_FMT,
                                             (apr_int64_t)r->first, (apr_int64_t)r->last),
                                etag ? "x-amz-copy-source-if-match" : NULL, etag,
                                "x-amz-copy-if-match", etag, NULL };
        const char *q = apr_psprintf(tmp, "partNumber=%d&uploadId=%s", i + 1, uid);
        rv = s3_call(st, tmp, "PUT", dst, q, extra, NULL, 0, &status, &body, NULL);
        if (rv != APR_SUCCESS)
            break;
        pos = body;
        /* the part's ETag is in its CopyPartResult document, not a header */
        const char *part_etag = status == 200 && !strstr(body, "<Error>")
                                    ? us_s3_xml_next(tmp, &pos, "ETag") : NULL;
        if (!part_etag) {
            /* the source's answer (a 404 about the upload or the bucket is not) */
            *refused = status == 412 || (status == 404 && us_s3_404_of(0, body) == US_S3_404_KEY);
            rv = *refused ? APR_ENOENT
                          : failed(st, 1216, "publishing in parts: copying a part", dst, status, body);
            break;
        }
        APR_ARRAY_PUSH(xml, const char *) =
            apr_psprintf(p, "<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>", i + 1,
                         part_etag);
    }
    if (rv == APR_SUCCESS && (rv = still_listed(st, p, src, etag)) != APR_SUCCESS)
        *refused = APR_STATUS_IS_ENOENT(rv);
    if (rv == APR_SUCCESS) {
        APR_ARRAY_PUSH(xml, const char *) = "</CompleteMultipartUpload>";
        const char *doc = apr_array_pstrcat(p, xml, 0);
        rv = s3_call(st, p, "POST", dst, apr_pstrcat(p, "uploadId=", uid, NULL), NULL, doc,
                     strlen(doc), &status, &body, NULL);
        /* a 200 may still carry an error document */
        if (rv == APR_SUCCESS && (status != 200 || strstr(body, "<Error>")))
            rv = failed(st, 1216, "publishing in parts: completing", dst, status, body);
    }
    apr_pool_destroy(tmp);
    if (rv != APR_SUCCESS)
        abort_upload(st, p, dst, id);
    return rv;
}

static apr_status_t s3_publish(us_storage *st, apr_pool_t *p, const char *session_id,
                               const char *blob, const char *file_id, const char *etag,
                               long long size, int *moved)
{
    const s3_conf *c = conf_of(st);
    const char *src = upload_key(st, p, session_id, blob), *dst = file_key(st, p, file_id);
    const char *copy_source =
        apr_pstrcat(p, "/", c->bucket, "/", us_sigv4_uri_encode(p, src, 1), NULL);
    apr_status_t rv;
    *moved = 0;
    if (size > US_S3_COPY_LIMIT) {
        int refused = 0;
        rv = copy_in_parts(st, p, src, copy_source, dst, etag, size, &refused);
        if (refused)
            return published_before(st, p, dst);
        if (rv != APR_SUCCESS)
            return rv;
    }
    else {
        /* pinned to the listed version: an object replaced after the listing
         * is a late one, never published under this file's id. Ceph's radosgw
         * reads the condition as x-amz-copy-if-match, AWS as
         * x-amz-copy-source-if-match: both are sent, each ignores the other. */
        const char *extra[] = { "x-amz-copy-source", copy_source,
                                etag ? "x-amz-copy-source-if-match" : NULL, etag,
                                "x-amz-copy-if-match", etag, NULL };
        long status;
        char *body;
        rv = s3_call(st, p, "PUT", dst, NULL, extra, NULL, 0, &status, &body, NULL);
        if (rv != APR_SUCCESS)
            return rv;
        /* the source is gone, or (412) replaced: moved by an earlier run of this batch? */
        if ((status == 404 && us_s3_404_of(0, body) == US_S3_404_KEY) || status == 412)
            return published_before(st, p, dst);
        if (status == 404)
            return not_found(st, p, 1215, "publishing", src, 0, body);
        if (status != 200 || strstr(body, "<Error>"))
            return failed(st, 1215, "publishing", dst, status, body);
    }
    rv = delete_key(st, p, 1215, "publishing", src, 0);
    if (rv != APR_SUCCESS)
        return rv; /* both are there: a replay copies again and deletes */
    *moved = 1;
    return APR_SUCCESS;
}

/* Where spill makes its files: checked at startup as httpd's User. */
static const char *s3_temp_dir(const us_storage *st)
{
    return conf_of(st)->spill_dir;
}

/* An answered PUT, copy or complete is durable in the store. */
static apr_status_t s3_publish_sync(us_storage *st, apr_pool_t *p)
{
    (void)st;
    (void)p;
    return APR_SUCCESS;
}

/* ---- removing ------------------------------------------------------------------------- */

static apr_status_t s3_upload_delete(us_storage *st, apr_pool_t *p, const char *session_id,
                                     const char *blob)
{
    return delete_key(st, p, 1205, "deleting a replaced upload", upload_key(st, p, session_id, blob), 1);
}

static apr_status_t s3_file_delete(us_storage *st, apr_pool_t *p, const char *file_id)
{
    return delete_key(st, p, 1204, "deleting a workspace file", file_key(st, p, file_id), 1);
}

static int s3_session_clear(us_storage *st, apr_pool_t *p, const char *session_id)
{
    apr_array_header_t *keys = apr_array_make(p, 16, sizeof(const char *));
    const char *prefix = session_prefix(st, p, session_id);
    if (list_keys(st, p, prefix, keys) != APR_SUCCESS) {
        us_log(st->log, US_LOG_WARN, 0, 1203, "clearing session %s: cannot list its uploads", session_id);
        return 1;
    }
    int left = 0;
    for (int i = 0; i < keys->nelts; i++)
        if (delete_key(st, p, 1203, "clearing a session", APR_ARRAY_IDX(keys, i, const char *), 0) !=
            APR_SUCCESS)
            left++;
    return left;
}

static apr_uint32_t uploads_refused_logged;

/* The store refuses ListMultipartUploads (us_s3_uploads_outcome_of): said
 * once per process, not per session. */
static void uploads_refused(const us_storage *st, long status)
{
    if (apr_atomic_cas32(&uploads_refused_logged, 1, 0) == 0)
        us_log(st->log, US_LOG_WARN, 0, 1120, "s3: the store refuses to list unfinished "
               "multipart uploads (ListMultipartUploads: HTTP %ld); the last clear of sessions "
               "takes it as none to abort (logged once per process): a lifecycle rule "
               "AbortIncompleteMultipartUpload on the bucket removes what is left", status);
}

/* No writer of the session is alive: its multipart uploads are dead ones'. */
static int s3_session_clear_late(us_storage *st, apr_pool_t *p, const char *session_id)
{
    int aborted = 0, left = 0;
    long status = 0;
    apr_status_t rv = abort_uploads(st, p, session_prefix(st, p, session_id), 0, &aborted, &left,
                                    &status);
    us_s3_uploads_outcome o = us_s3_uploads_outcome_of(status ? APR_SUCCESS : rv, status);
    if (o == US_S3_UPLOADS_REFUSED)
        uploads_refused(st, status);
    else if (o == US_S3_UPLOADS_FAILED) {
        us_log(st->log, US_LOG_WARN, 0, 1203, "clearing session %s: cannot list its unfinished "
               "multipart uploads (HTTP %ld)", session_id, status);
        left++;
    }
    else if (left)
        us_log(st->log, US_LOG_WARN, 0, 1203, "clearing session %s: %d unfinished multipart "
               "upload(s) could not be aborted", session_id, left);
    return left + s3_session_clear(st, p, session_id);
}

/* The sessions every <Key> and <Prefix> of a listing page names (its own
 * <Prefix>, root itself, names none), into ids (of p; tmp: the page's). */
static void add_sessions(apr_pool_t *p, apr_pool_t *tmp, apr_hash_t *ids, const char *root,
                         const char *body)
{
    static const char *const TAGS[] = { "Key", "Prefix" };
    for (int t = 0; t < 2; t++) {
        const char *pos = body;
        const char *k;
        while ((k = us_s3_xml_next(tmp, &pos, TAGS[t])))
            us_s3_add_session_of(p, ids, root, k);
    }
}

/* Every page of ListObjectsV2 over root delimited by '/': one common
 * prefix per session holding an object, 1,000 to a page. */
static apr_status_t holding_objects(us_storage *st, apr_pool_t *p, const char *root,
                                    apr_hash_t *ids)
{
    const char *token = NULL;
    apr_status_t rv = APR_SUCCESS;
    apr_pool_t *page;
    apr_hash_t *seen = apr_hash_make(p);
    apr_pool_create(&page, p);
    do {
        long status;
        char *body;
        apr_pool_clear(page);
        const char *q = apr_pstrcat(page, token ? "continuation-token=" : "",
                                    token ? us_sigv4_uri_encode(page, token, 0) : "",
                                    token ? "&" : "", "delimiter=%2F&list-type=2&max-keys=",
                                    apr_itoa(page, LIST_PAGE_KEYS), "&prefix=",
                                    us_sigv4_uri_encode(page, root, 0), NULL);
        rv = s3_call(st, page, "GET", NULL, q, NULL, NULL, 0, &status, &body, NULL);
        if (rv == APR_SUCCESS && status != 200)
            rv = failed(st, 1211, "list", root, status, body);
        if (rv != APR_SUCCESS)
            break;
        add_sessions(p, page, ids, root, body);
        if ((rv = next_page(st, p, page, body, root, seen, &token)) != APR_SUCCESS)
            break;
    } while (token);
    apr_pool_destroy(page);
    return rv;
}

/* Every page of ListMultipartUploads over root (one entry per unfinished
 * upload: few, the large files being written; not delimited, which Ceph's
 * radosgw answers with no upload and no common prefix at all); a refusal
 * (403, 501) lists none. */
static apr_status_t holding_uploads(us_storage *st, apr_pool_t *p, const char *root,
                                    apr_hash_t *ids)
{
    const char *key_marker = NULL, *id_marker = NULL;
    apr_status_t rv = APR_SUCCESS;
    apr_pool_t *page;
    apr_hash_t *seen = apr_hash_make(p);
    apr_pool_create(&page, p);
    do {
        long status = 0;
        char *body;
        apr_pool_clear(page);
        const char *q = uploads_query(page, root, key_marker, id_marker);
        rv = s3_call(st, page, "GET", NULL, q, NULL, NULL, 0, &status, &body, NULL);
        us_s3_uploads_outcome o = us_s3_uploads_outcome_of(rv, status);
        if (o == US_S3_UPLOADS_REFUSED) {
            uploads_refused(st, status);
            rv = APR_SUCCESS;
            break;
        }
        if (o == US_S3_UPLOADS_FAILED) {
            if (rv == APR_SUCCESS)
                rv = failed(st, 1211, "list the multipart uploads of", root, status, body);
            break;
        }
        add_sessions(p, page, ids, root, body);
        const char *pos = body;
        const char *trunc = us_s3_xml_next(page, &pos, "IsTruncated");
        const char *next_key = NULL, *next_id = NULL;
        if (trunc && strcmp(trunc, "true") == 0) {
            pos = body;
            next_key = us_s3_xml_next(page, &pos, "NextKeyMarker");
            pos = body;
            next_id = us_s3_xml_next(page, &pos, "NextUploadIdMarker");
            /* a page that does not move on would be listed for ever */
            if (!next_key) {
                us_log(st->log, US_LOG_WARN, 0, 1211, "s3 list the multipart uploads of %s: a "
                       "truncated page without a key marker", root);
                rv = APR_EAGAIN; /* the store's fault: asked again later */
                break;
            }
            if (us_s3_marker_repeats(seen, next_key, next_id && *next_id ? next_id : NULL)) {
                rv = repeated_marker(st, "list the multipart uploads of", root,
                                     "markers it gave before");
                break;
            }
        }
        key_marker = next_key ? apr_pstrdup(p, next_key) : NULL;
        id_marker = next_id && *next_id ? apr_pstrdup(p, next_id) : NULL;
    } while (key_marker);
    apr_pool_destroy(page);
    return rv;
}

static apr_status_t s3_sessions_holding(us_storage *st, apr_pool_t *p, apr_hash_t **ids)
{
    const char *root = apr_pstrcat(p, conf_of(st)->prefix, "sessions/", NULL);
    *ids = apr_hash_make(p);
    apr_status_t rv = holding_objects(st, p, root, *ids);
    return rv == APR_SUCCESS ? holding_uploads(st, p, root, *ids) : rv;
}

static apr_status_t s3_session_list(us_storage *st, apr_pool_t *p, const char *session_id,
                                    apr_array_header_t **blobs)
{
    apr_array_header_t *keys = apr_array_make(p, 16, sizeof(const char *));
    const char *prefix = session_prefix(st, p, session_id);
    size_t n = strlen(prefix);
    apr_status_t rv = list_keys(st, p, prefix, keys);
    *blobs = apr_array_make(p, keys->nelts ? keys->nelts : 1, sizeof(const char *));
    if (rv != APR_SUCCESS)
        return rv;
    for (int i = 0; i < keys->nelts; i++) {
        const char *k = APR_ARRAY_IDX(keys, i, const char *);
        if (strncmp(k, prefix, n) == 0 && k[n] && !strchr(k + n, '/'))
            APR_ARRAY_PUSH(*blobs, const char *) = k + n;
    }
    return APR_SUCCESS;
}

static apr_status_t s3_session_objects(us_storage *st, apr_pool_t *p, const char *session_id,
                                       apr_array_header_t **objects)
{
    const char *prefix = session_prefix(st, p, session_id);
    size_t n = strlen(prefix);
    apr_array_header_t *all = apr_array_make(p, 16, sizeof(us_storage_object));
    apr_status_t rv = list_objects(st, p, prefix, all);
    *objects = apr_array_make(p, all->nelts ? all->nelts : 1, sizeof(us_storage_object));
    if (rv != APR_SUCCESS)
        return rv;
    for (int i = 0; i < all->nelts; i++) {
        us_storage_object o = APR_ARRAY_IDX(all, i, us_storage_object);
        if (strncmp(o.blob, prefix, n) == 0 && o.blob[n] && !strchr(o.blob + n, '/')) {
            o.blob += n;
            APR_ARRAY_PUSH(*objects, us_storage_object) = o;
        }
    }
    return APR_SUCCESS;
}

/* One ListObjectsV2 page of the files/ keys, from just after `after`
 * (start-after: no continuation token to keep, any node goes on). */
static apr_status_t s3_files_page(us_storage *st, apr_pool_t *p, const char *after, int limit,
                                  apr_array_header_t **files, const char **next)
{
    const char *prefix = file_key(st, p, "");
    size_t n = strlen(prefix);
    long status;
    char *body, *c, *e;
    if (limit > LIST_PAGE_KEYS) /* fewer: *next says where the rest starts */
        limit = LIST_PAGE_KEYS;
    const char *q = apr_psprintf(p, "list-type=2&max-keys=%d&prefix=%s%s%s", limit,
                                 us_sigv4_uri_encode(p, prefix, 0), *after ? "&start-after=" : "",
                                 *after ? us_sigv4_uri_encode(p, file_key(st, p, after), 0) : "");
    *files = apr_array_make(p, limit < 1000 ? limit : 1000, sizeof(us_storage_file));
    *next = NULL;
    apr_status_t rv = s3_call(st, p, "GET", NULL, q, NULL, NULL, 0, &status, &body, NULL);
    if (rv != APR_SUCCESS)
        return rv;
    if (status != 200)
        return failed(st, 1211, "list", prefix, status, body);
    const char *pos = body, *last = NULL;
    while ((c = strstr(pos, "<Contents>")) && (e = strstr(c, "</Contents>"))) {
        c = apr_pstrndup(p, c, (apr_size_t)(e - c));
        pos = e + sizeof "</Contents>" - 1;
        const char *in = c;
        char *key = us_s3_xml_next(p, &in, "Key");
        in = c;
        char *modified = us_s3_xml_next(p, &in, "LastModified");
        if (!key) {
            /* a file left out would never be swept, nor would the keys
             * after it on a page that ends with it */
            us_log(st->log, US_LOG_WARN, 0, 1211, "s3 list %s: an entry without a key; the "
                   "page is asked again later", prefix);
            return APR_EAGAIN;
        }
        if (strncmp(key, prefix, n) != 0)
            continue;
        last = key + n;
        if (!*last || strchr(last, '/'))
            continue;
        us_storage_file *f = apr_array_push(*files);
        f->file_id = last;
        f->modified = apr_time_from_sec(parse_iso8601(modified));
    }
    pos = body;
    const char *trunc = us_s3_xml_next(p, &pos, "IsTruncated");
    if (trunc && strcmp(trunc, "true") == 0 && last) {
        /* keys come after start-after, in order: one that does not would
         * keep the sweep on this page for ever */
        if (strcmp(last, after) <= 0)
            return repeated_marker(st, "list", prefix, "a last key not after start-after");
        *next = last;
    }
    return APR_SUCCESS;
}

static apr_status_t s3_post_target(us_storage *st, apr_pool_t *p, const char *session_id,
                                   us_storage_post_target *out)
{
    const s3_conf *c = conf_of(st);
    out->url = apr_pstrcat(p, c->endpoint, "/", c->bucket, NULL);
    out->bucket = c->bucket;
    out->key_prefix = session_prefix(st, p, session_id);
    out->cred = c->cred;
    return APR_SUCCESS;
}

/* Publishes of one batch in flight at once: each is two or three round trips
 * that mostly wait on the store; 16 keep radosgw busy without a burst of
 * connections per ingest worker. */
#define PUBLISH_WIDTH 16

const us_storage_backend us_s3_storage = {
    .name = "s3",
    .publish_width = PUBLISH_WIDTH,
    .max_object_size = (long long)MAX_PARTS * PART_SIZE,
    .configure = s3_configure,
    .prepare = s3_prepare,
    .check = s3_check,
    .recover = s3_recover,
    .tidy = s3_tidy,
    .temp_dir = s3_temp_dir,
    .upload_create = s3_upload_create,
    .file_create = s3_file_create,
    .write = s3_write,
    .finish = s3_finish,
    .commit = s3_commit,
    .abandon = s3_abandon,
    .writer_size = s3_writer_size,
    .writer_sha256_hex = s3_writer_sha256_hex,
    .writer_where = s3_writer_where,
    .file_open = s3_file_open,
    .read_at = s3_read_at,
    .upload_read = s3_upload_read,
    .file_read = s3_file_read,
    .publish = s3_publish,
    .publish_sync = s3_publish_sync,
    .upload_delete = s3_upload_delete,
    .file_delete = s3_file_delete,
    .session_clear = s3_session_clear,
    .session_clear_late = s3_session_clear_late,
    .sessions_holding = s3_sessions_holding,
    .session_list = s3_session_list,
    .session_objects = s3_session_objects,
    .files_page = s3_files_page,
    .post_target = s3_post_target,
};

/*
 * us_s3_list.c - the s3 backend's listings, each read a page at a time:
 * the objects under a prefix (a session's uploads), the files/ keys for
 * the sweep, the sessions holding anything, and the multipart uploads
 * under a prefix (aborted as they are listed). A page is read whole, up
 * to US_S3_MAX_RESPONSE; a listing that does not move on is an error.
 */
#include "us_s3_list.h"
#include "us_s3_answers.h"
#include "us_s3_late.h"
#include "us_sigv4.h"

#include <apr_atomic.h>
#include <apr_strings.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

/* A listing page asks for at most LIST_PAGE_KEYS entries, so that one of
 * the longest keys (1,024 bytes, each XML-escaped to at most 6: "&quot;")
 * with its other fields (under 512 bytes) always fits in an answer read
 * whole (US_S3_MAX_RESPONSE): a page cut off would list fewer objects than
 * there are. */
#define LIST_ENTRY_MAX (1024 * 6 + 512)
#define LIST_PAGE_KEYS (US_S3_MAX_RESPONSE / LIST_ENTRY_MAX < 1000 ? US_S3_MAX_RESPONSE / LIST_ENTRY_MAX : 1000)

static time_t parse_iso8601(const char *s);


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
apr_status_t us_s3_list_objects(const us_storage *st, apr_pool_t *p, const char *prefix,
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
        rv = us_s3_call(st, page, "GET", NULL, q, NULL, NULL, 0, &status, &body, NULL);
        if (rv == APR_SUCCESS && status != 200)
            rv = us_s3_failed(st, 1211, "list", prefix, status, body);
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
apr_status_t us_s3_list_keys(const us_storage *st, apr_pool_t *p, const char *prefix,
                             apr_array_header_t *keys)
{
    apr_array_header_t *objects = apr_array_make(p, 16, sizeof(us_storage_object));
    apr_status_t rv = us_s3_list_objects(st, p, prefix, objects);
    for (int i = 0; i < objects->nelts; i++)
        APR_ARRAY_PUSH(keys, const char *) = APR_ARRAY_IDX(objects, i, us_storage_object).blob;
    return rv;
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

/* The markers that continue a ListMultipartUploads listing after the page
 * body (in p), both NULL after the last page. A truncated page without a
 * key marker is an error: the rest would go unlisted (a clear taking the
 * listing as whole would leave uploads); so are markers given before (seen:
 * those of the listing's earlier pages), a listing that would never end. */
static apr_status_t next_uploads_page(const us_storage *st, apr_pool_t *p, apr_pool_t *page,
                                      const char *body, const char *prefix, apr_hash_t *seen,
                                      const char **key_marker, const char **id_marker)
{
    const char *pos = body;
    const char *trunc = us_s3_xml_next(page, &pos, "IsTruncated");
    *key_marker = *id_marker = NULL;
    if (!trunc || strcmp(trunc, "true") != 0)
        return APR_SUCCESS;
    pos = body;
    const char *next_key = us_s3_xml_next(page, &pos, "NextKeyMarker");
    pos = body;
    const char *next_id = us_s3_xml_next(page, &pos, "NextUploadIdMarker");
    if (next_id && !*next_id)
        next_id = NULL;
    if (!next_key) {
        us_log(st->log, US_LOG_WARN, 0, 1211, "s3 list the multipart uploads of %s: a "
               "truncated page without a key marker", prefix);
        return APR_EAGAIN; /* the store's fault: asked again later */
    }
    if (us_s3_marker_repeats(seen, next_key, next_id))
        return repeated_marker(st, "list the multipart uploads of", prefix,
                               "markers it gave before");
    *key_marker = apr_pstrdup(p, next_key);
    *id_marker = next_id ? apr_pstrdup(p, next_id) : NULL;
    return APR_SUCCESS;
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

/* Aborts the multipart uploads under prefix started at least min_age
 * seconds ago (every page of ListMultipartUploads): *aborted of them, and
 * *left that could not be. Not APR_SUCCESS when a page could not be
 * listed (*http: its HTTP status, 0 without an answer). A listing may be
 * long (the sweep at startup after many dead writers): each page is read
 * and its uploads aborted in a pool of its own, cleared before the next;
 * only the markers that continue the listing are kept in p. */
apr_status_t us_s3_abort_uploads(us_storage *st, apr_pool_t *p, const char *prefix,
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
        rv = us_s3_call(st, page, "GET", NULL, q, NULL, NULL, 0, &status, &body, NULL);
        *http = status;
        if (rv != APR_SUCCESS || status != 200) {
            rv = rv != APR_SUCCESS ? rv : us_s3_from_http(status);
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
            if (us_s3_abort_one(st, one, key, id))
                (*aborted)++;
            else
                (*left)++;
        }
        if ((rv = next_uploads_page(st, p, page, body, prefix, seen, &key_marker, &id_marker)) !=
            APR_SUCCESS)
            break;
    } while (key_marker);
    apr_pool_destroy(page);
    return rv;
}

static apr_uint32_t uploads_refused_logged;

/* The store refuses ListMultipartUploads (us_s3_uploads_outcome_of): said
 * once per process, not per session. */
void us_s3_uploads_refused(const us_storage *st, long status)
{
    if (apr_atomic_cas32(&uploads_refused_logged, 1, 0) == 0)
        us_log(st->log, US_LOG_WARN, 0, 1120, "s3: the store refuses to list unfinished "
               "multipart uploads (ListMultipartUploads: HTTP %ld); the last clear of sessions "
               "takes it as none to abort (logged once per process): a lifecycle rule "
               "AbortIncompleteMultipartUpload on the bucket removes what is left", status);
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
        rv = us_s3_call(st, page, "GET", NULL, q, NULL, NULL, 0, &status, &body, NULL);
        if (rv == APR_SUCCESS && status != 200)
            rv = us_s3_failed(st, 1211, "list", root, status, body);
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
        rv = us_s3_call(st, page, "GET", NULL, q, NULL, NULL, 0, &status, &body, NULL);
        us_s3_uploads_outcome o = us_s3_uploads_outcome_of(rv, status);
        if (o == US_S3_UPLOADS_REFUSED) {
            us_s3_uploads_refused(st, status);
            rv = APR_SUCCESS;
            break;
        }
        if (o == US_S3_UPLOADS_FAILED) {
            if (rv == APR_SUCCESS)
                rv = us_s3_failed(st, 1211, "list the multipart uploads of", root, status, body);
            break;
        }
        add_sessions(p, page, ids, root, body);
        if ((rv = next_uploads_page(st, p, page, body, root, seen, &key_marker, &id_marker)) !=
            APR_SUCCESS)
            break;
    } while (key_marker);
    apr_pool_destroy(page);
    return rv;
}

apr_status_t us_s3_sessions_holding(us_storage *st, apr_pool_t *p, apr_hash_t **ids)
{
    const char *root = apr_pstrcat(p, us_s3_conf_of(st)->prefix, "sessions/", NULL);
    *ids = apr_hash_make(p);
    apr_status_t rv = holding_objects(st, p, root, *ids);
    return rv == APR_SUCCESS ? holding_uploads(st, p, root, *ids) : rv;
}

apr_status_t us_s3_session_list(us_storage *st, apr_pool_t *p, const char *session_id,
                                apr_array_header_t **blobs)
{
    apr_array_header_t *keys = apr_array_make(p, 16, sizeof(const char *));
    const char *prefix = us_s3_session_prefix(st, p, session_id);
    size_t n = strlen(prefix);
    apr_status_t rv = us_s3_list_keys(st, p, prefix, keys);
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

apr_status_t us_s3_session_objects(us_storage *st, apr_pool_t *p, const char *session_id,
                                   apr_array_header_t **objects)
{
    const char *prefix = us_s3_session_prefix(st, p, session_id);
    size_t n = strlen(prefix);
    apr_array_header_t *all = apr_array_make(p, 16, sizeof(us_storage_object));
    apr_status_t rv = us_s3_list_objects(st, p, prefix, all);
    *objects = apr_array_make(p, all->nelts ? all->nelts : 1, sizeof(us_storage_object));
    if (rv != APR_SUCCESS)
        return rv;
    /* a key with a '/' past the prefix too (the POST policy allows any
     * key under it): no file may have its name, so the listing tells it
     * as one of no name (US1026) before the clear removes it */
    for (int i = 0; i < all->nelts; i++) {
        us_storage_object o = APR_ARRAY_IDX(all, i, us_storage_object);
        if (strncmp(o.blob, prefix, n) == 0 && o.blob[n]) {
            o.blob += n;
            APR_ARRAY_PUSH(*objects, us_storage_object) = o;
        }
    }
    return APR_SUCCESS;
}

/* One ListObjectsV2 page of the files/ keys, from just after `after`
 * (start-after: no continuation token to keep, any node goes on). */
apr_status_t us_s3_files_page(us_storage *st, apr_pool_t *p, const char *after, int limit,
                              apr_array_header_t **files, const char **next)
{
    const char *prefix = us_s3_file_key(st, p, "");
    size_t n = strlen(prefix);
    long status;
    char *body, *c, *e;
    if (limit > LIST_PAGE_KEYS) /* fewer: *next says where the rest starts */
        limit = LIST_PAGE_KEYS;
    const char *q = apr_psprintf(p, "list-type=2&max-keys=%d&prefix=%s%s%s", limit,
                                 us_sigv4_uri_encode(p, prefix, 0), *after ? "&start-after=" : "",
                                 *after ? us_sigv4_uri_encode(p, us_s3_file_key(st, p, after), 0)
                                        : "");
    *files = apr_array_make(p, limit < 1000 ? limit : 1000, sizeof(us_storage_file));
    *next = NULL;
    apr_status_t rv = us_s3_call(st, p, "GET", NULL, q, NULL, NULL, 0, &status, &body, NULL);
    if (rv != APR_SUCCESS)
        return rv;
    if (status != 200)
        return us_s3_failed(st, 1211, "list", prefix, status, body);
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

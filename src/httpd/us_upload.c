/*
 * us_upload.c - the upload target: an S3-style presigned POST served by the
 * module. The multipart body is streamed through the parser straight into a
 * storage writer (us_storage.h; bounded memory, whatever the size); the
 * file is made durable, committed under its name, and only then recorded
 * in the store - so a file becomes visible only complete.
 *
 * Each upload is a fresh blob (a UUID) of its session. The store maps
 * (session, name) to its current blob: of two uploads of one name, the last
 * to commit wins and the other blob is deleted.
 */
#include "us_uuid.h"
#include "endpoints.h"
#include "request_body.h"
#include "us_storage.h"
#include "us_filename.h"
#include "us_ingest.h"
#include "response.h"
#include "us_form.h"
#include "us_multipart.h"
#include "us_policy.h"

#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <apr_file_io.h>
#include <apr_strings.h>

#include <string.h>

APLOG_USE_MODULE(upload_session);

#define MAX_FIELDS_BYTES (64 * 1024)   /* names and values of the fields before the file */
#define MAX_FIELDS 256                 /* form fields before the file */

typedef enum { PART_NONE, PART_FIELD, PART_FILE, PART_IGNORED } part_kind;

typedef struct {
    request_rec *r;
    us_srv_conf *c;
    const char *session_id;
    us_form *form;          /* the fields before the file */
    part_kind part;
    int policy_checked;     /* the policy and signature fields held now are verified */
    int file_done;
    /* the file */
    const char *key;        /* after ${filename} substitution */
    const char *name;       /* within the session */
    const char *blob;
    us_storage_writer *file; /* the upload being written, then committed */
    int committed;           /* file is under its name: kept unless the store refuses it */
    long long size;
    long long received;      /* bytes written to the file, in the in-progress gauge */
    long long max;
    us_policy_doc doc;
    /* a rejection */
    int status;
    const char *code;
    const char *msg;
} upload_ctx;

/* ---- responses ------------------------------------------------------------ */

static const char *xml_escape(apr_pool_t *p, const char *s)
{
    return ap_escape_html2(p, s, 0); /* 0: keep UTF-8 as it is, the document says UTF-8 */
}

static int send_xml(request_rec *r, int status, const char *body)
{
    r->status = status;
    ap_set_content_type(r, "application/xml");
    ap_set_content_length(r, (apr_off_t)strlen(body));
    if (!r->header_only)
        ap_rputs(body, r);
    return OK;
}

static int send_s3_error(request_rec *r, int status, const char *code, const char *msg)
{
    if (status == HTTP_SERVICE_UNAVAILABLE)
        apr_table_setn(r->headers_out, "Retry-After", "1");
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, USLOGNO(0201) "upload rejected: %d %s: %s",
                  status, code, msg);
    return send_xml(r, status, apr_pstrcat(r->pool,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>", code,
        "</Code><Message>", xml_escape(r->pool, msg), "</Message></Error>", NULL));
}

/* Records why the upload is refused; returns nonzero to stop the parser. */
static int reject(upload_ctx *u, int status, const char *code, const char *msg)
{
    if (!u->status) {
        u->status = status;
        u->code = code;
        u->msg = msg;
    }
    return 1;
}

/* A storage that does not answer: 503 with Retry-After; the client retries. */
static int storage_unavailable(upload_ctx *u)
{
    return reject(u, HTTP_SERVICE_UNAVAILABLE, "ServiceUnavailable",
                  "The file storage is unavailable. Please try again.");
}

/* ---- the file part ---------------------------------------------------------- */

static int check_policy(upload_ctx *u)
{
    apr_pool_t *p = u->r->pool;
    us_policy_rc rc = us_policy_verify(p, u->c->secret, US_SECRET_LEN,
                                       us_form_get(u->form, "policy"),
                                       us_form_get(u->form, "x-amz-signature"),
                                       apr_time_now(), &u->doc);
    switch (rc) {
    case US_POLICY_OK:
        break;
    case US_POLICY_MISSING:
        return reject(u, HTTP_FORBIDDEN, "AccessDenied",
                      "Bucket POST must contain the fields 'policy' and 'x-amz-signature'.");
    case US_POLICY_BAD_SIGNATURE:
        return reject(u, HTTP_FORBIDDEN, "AccessDenied",
                      "The request signature we calculated does not match the signature you provided.");
    case US_POLICY_EXPIRED:
        return reject(u, HTTP_FORBIDDEN, "AccessDenied", "Invalid according to Policy: Policy expired.");
    default:
        return reject(u, HTTP_FORBIDDEN, "AccessDenied", "Invalid according to Policy: unreadable policy.");
    }
    /* the policy names its session in the key prefix "<workspace>/<session>/" */
    const char *tail = apr_pstrcat(p, "/", u->session_id, "/", NULL);
    size_t pl = strlen(u->doc.key_prefix), tl = strlen(tail);
    if (pl <= tl || strcmp(u->doc.key_prefix + pl - tl, tail) != 0)
        return reject(u, HTTP_FORBIDDEN, "AccessDenied",
                      "Invalid according to Policy: the policy belongs to another upload session.");
    u->policy_checked = 1;
    return 0;
}

static int check_key(upload_ctx *u, const char *filename)
{
    apr_pool_t *p = u->r->pool;
    const char *key = us_form_get(u->form, "key");
    if (!key)
        return reject(u, HTTP_BAD_REQUEST, "InvalidArgument",
                      "Bucket POST must contain a field named 'key'.");
    /* the name goes into the key: refuse a bad one before substituting it */
    const char *why = strstr(key, "${filename}") ? us_filename_problem(filename) : NULL;
    if (why)
        return reject(u, HTTP_BAD_REQUEST, "InvalidArgument",
                      apr_pstrcat(p, "Invalid file name: ", why, ".", NULL));
    /* the name is the key past the prefix: a key longer than both can hold
     * no name a file may have (the blob's own key is its UUID) */
    u->key = us_key_substitute(p, key, filename ? filename : "",
                               strlen(u->doc.key_prefix) + US_NAME_MAX);
    if (!u->key)
        return reject(u, HTTP_BAD_REQUEST, "KeyTooLongError", "Your key is too long");
    if (strncmp(u->key, u->doc.key_prefix, strlen(u->doc.key_prefix)) != 0)
        return reject(u, HTTP_FORBIDDEN, "AccessDenied",
                      apr_psprintf(p, "Invalid according to Policy: Policy Condition failed: "
                                   "[\"starts-with\", \"$key\", \"%s\"]", u->doc.key_prefix));
    u->name = u->key + strlen(u->doc.key_prefix);
    why = us_filename_problem(u->name);
    if (why)
        return reject(u, HTTP_BAD_REQUEST, "InvalidArgument",
                      apr_pstrcat(p, "Invalid file name: ", why, ".", NULL));
    return 0;
}

/* The session must exist, be OPEN and live in the policy's workspace. */
static int check_session(upload_ctx *u)
{
    request_rec *r = u->r;
    us_db *db = NULL;
    us_session s;
    const char *err = NULL;
    us_db_rc rc = u->c->store ? us_store_acquire(u->c->store, &db, &err) : US_DB_ERROR;
    if (rc == US_DB_OK) {
        rc = us_session_by_id(db, r->pool, u->session_id, apr_time_now(), &s);
        if (rc != US_DB_OK && rc != US_DB_NOTFOUND)
            err = apr_pstrdup(r->pool, us_db_error(db));
        us_store_release(u->c->store, db, rc == US_DB_ERROR);
    }
    if (rc == US_DB_NOTFOUND)
        return reject(u, HTTP_FORBIDDEN, "AccessDenied", "The upload session does not exist.");
    if (rc != US_DB_OK) {
        ap_log_rerror(APLOG_MARK, rc == US_DB_BUSY ? APLOG_WARNING : APLOG_ERR, 0, r,
                      USLOGNO(0202) "upload: store: %s", err ? err : "unavailable");
        return rc == US_DB_BUSY
                   ? reject(u, HTTP_SERVICE_UNAVAILABLE, "SlowDown", "Please reduce your request rate.")
                   : reject(u, HTTP_INTERNAL_SERVER_ERROR, "InternalError",
                            "We encountered an internal error. Please try again.");
    }
    if (strcmp(s.status, "OPEN") != 0)
        return reject(u, HTTP_FORBIDDEN, "AccessDenied", "The upload session is no longer open.");
    if (strcmp(u->doc.key_prefix, apr_pstrcat(r->pool, s.workspace, "/", s.id, "/", NULL)) != 0)
        return reject(u, HTTP_FORBIDDEN, "AccessDenied",
                      "Invalid according to Policy: the policy belongs to another upload session.");
    return 0;
}

static int open_blob(upload_ctx *u)
{
    request_rec *r = u->r;
    char blob[37];

    us_uuid4(blob);
    u->blob = apr_pstrdup(r->pool, blob);
    apr_status_t rv = us_storage_upload_create(u->c->storage, r->pool, u->session_id, u->blob,
                                               &u->file);
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, us_storage_unavailable(rv) ? APLOG_WARNING : APLOG_ERR, rv,
                  r, USLOGNO(0203) "upload: cannot store a file of "
                      "session %s", u->session_id);
        if (us_storage_unavailable(rv))
            return storage_unavailable(u);
        return reject(u, HTTP_INTERNAL_SERVER_ERROR, "InternalError",
                      "We encountered an internal error. Please try again.");
    }
    return 0;
}

/* A failed write or sync: disk full is 507, an outage 503, the rest 500;
 * the client may retry. */
static int storage_failed(upload_ctx *u, apr_status_t rv, const char *what)
{
    /* the session's directory went with its clear: closed meanwhile */
    if (APR_STATUS_IS_ENOENT(rv) && check_session(u))
        return 1;
    ap_log_rerror(APLOG_MARK, us_storage_unavailable(rv) ? APLOG_WARNING : APLOG_ERR, rv,
                  u->r, USLOGNO(0204) "upload: %s %s", what,
                  us_storage_writer_where(u->file));
    if (us_storage_unavailable(rv))
        return storage_unavailable(u);
    return reject(u, APR_STATUS_IS_ENOSPC(rv) ? HTTP_INSUFFICIENT_STORAGE
                                              : HTTP_INTERNAL_SERVER_ERROR,
                  "InternalError", "The file could not be stored. Please try again.");
}

static int start_file(upload_ctx *u, const us_mp_part *part)
{
    const char *filename = us_filename_from_part(u->r->pool, part->filename, part->filename_star);
    const char *key = us_form_get(u->form, "key");
    /* as S3: a key without ${filename} names the file by itself */
    if (!filename && (!key || strstr(key, "${filename}")))
        return reject(u, HTTP_BAD_REQUEST, "InvalidArgument",
                      "The file part must carry a filename.");
    if ((!u->policy_checked && check_policy(u)) || check_key(u, filename) || check_session(u))
        return 1;
    u->max = u->doc.max_bytes < u->c->max_file_size ? u->doc.max_bytes : u->c->max_file_size;
    /* ingestion reads no more of a sidecar */
    if (us_filename_is_meta(u->name) && u->max > US_META_MAX_BYTES)
        u->max = US_META_MAX_BYTES;
    if (open_blob(u))
        return 1;
    u->part = PART_FILE;
    return 0;
}

/* ---- parser callbacks ------------------------------------------------------- */

/* A form field that could not be kept: the request is refused. */
static int form_refused(upload_ctx *u, us_form_rc rc)
{
    switch (rc) {
    case US_FORM_TOO_MANY:
        return reject(u, HTTP_BAD_REQUEST, "InvalidArgument",
                      apr_psprintf(u->r->pool, "Your POST request has more than %d form fields "
                                   "before the file.", MAX_FIELDS));
    case US_FORM_NUL:
        return reject(u, HTTP_BAD_REQUEST, "InvalidArgument",
                      "A form field of your POST request contains a NUL byte.");
    default:
        return reject(u, HTTP_BAD_REQUEST, "MaxPostPreDataLengthExceeded",
                      "Your POST request fields preceding the upload file were too large.");
    }
}

static int on_part_begin(void *ctx, const us_mp_part *part)
{
    upload_ctx *u = ctx;
    if (u->file_done) {
        u->part = PART_IGNORED; /* like S3: fields after the file are ignored */
        return 0;
    }
    if (!part->name)
        return reject(u, HTTP_BAD_REQUEST, "MalformedPOSTRequest",
                      "A form part has no name.");
    if (strcmp(part->name, "file") == 0)
        return start_file(u, part);
    us_form_rc rc = us_form_begin(u->form, part->name);
    if (rc != US_FORM_OK)
        return form_refused(u, rc);
    u->part = PART_FIELD;
    if (strcmp(part->name, "policy") == 0 || strcmp(part->name, "x-amz-signature") == 0)
        u->policy_checked = 0;
    return 0;
}

static int on_part_data(void *ctx, const char *data, size_t len)
{
    upload_ctx *u = ctx;
    apr_status_t rv;
    us_form_rc rc;

    switch (u->part) {
    case PART_FILE:
        u->size += (long long)len;
        if (u->size > u->max)
            return reject(u, HTTP_BAD_REQUEST, "EntityTooLarge",
                          "Your proposed upload exceeds the maximum allowed size.");
        rv = us_storage_write(u->file, data, len);
        if (rv != APR_SUCCESS)
            return storage_failed(u, rv, "writing");
        us_metrics_upload_bytes(us_metrics_gauges_here(), len);
        u->received += (long long)len;
        return 0;
    case PART_FIELD:
        rc = us_form_append(u->form, data, len);
        return rc == US_FORM_OK ? 0 : form_refused(u, rc);
    default:
        return 0;
    }
}

static int on_part_end(void *ctx)
{
    upload_ctx *u = ctx;
    apr_status_t rv;

    if (u->part == PART_FIELD) {
        us_form_end(u->form);
        /* verify the policy as soon as it can be: nothing more is read for a
         * request it does not authorise */
        if (!u->policy_checked && us_form_get(u->form, "policy") &&
            us_form_get(u->form, "x-amz-signature") && check_policy(u))
            return 1;
    }
    else if (u->part == PART_FILE) {
        u->file_done = 1;
        rv = us_storage_finish(u->file);
        if (rv != APR_SUCCESS)
            return storage_failed(u, rv, "storing");
    }
    u->part = PART_NONE;
    return 0;
}

/* Maps a read result onto the upload's S3 error (DONE and STOPPED need none). */
static void read_failed(upload_ctx *u, us_read_result rr, us_mp *mp)
{
    switch (rr) {
    case US_READ_TOO_LARGE:
        reject(u, HTTP_BAD_REQUEST, "EntityTooLarge",
               "Your proposed upload exceeds the maximum allowed size.");
        break;
    case US_READ_BROKEN:
        reject(u, HTTP_BAD_REQUEST, "IncompleteBody",
               "The request body ended before the upload was complete.");
        break;
    case US_READ_MALFORMED:
        reject(u, HTTP_BAD_REQUEST, "MalformedPOSTRequest",
               apr_pstrcat(u->r->pool, "The body of your POST request is not well-formed "
                           "multipart/form-data: ", us_mp_error(mp), ".", NULL));
        break;
    default:
        break;
    }
}

/* ---- publishing --------------------------------------------------------------- */

static int publish(upload_ctx *u)
{
    request_rec *r = u->r;
    char fid[37];
    apr_status_t rv;

    if (u->size < u->doc.min_bytes)
        return reject(u, HTTP_BAD_REQUEST, "EntityTooSmall",
                      "Your proposed upload is smaller than the minimum allowed size.");
    rv = us_storage_commit(u->file);
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, us_storage_unavailable(rv) ? APLOG_WARNING : APLOG_ERR, rv,
                  r, USLOGNO(0206) "upload: publishing %s",
                      us_storage_writer_where(u->file));
        if (us_storage_unavailable(rv))
            return storage_unavailable(u);
        return reject(u, HTTP_INTERNAL_SERVER_ERROR, "InternalError",
                      "The file could not be stored. Please try again.");
    }

    u->committed = 1;

    us_upload_record rec;
    const char *old_blob = NULL, *err = NULL;
    us_db *db = NULL;
    rec.uploaded_at = apr_time_now();
    us_uuid4_timed(fid, rec.uploaded_at); /* us_files' key grows at its end */
    rec.session_id = u->session_id;
    rec.name = u->name;
    rec.blob = u->blob;
    rec.sha256 = us_storage_writer_sha256_hex(u->file);
    rec.file_ingestion_id = fid;
    rec.size = u->size;
    rec.is_meta = us_filename_is_meta(u->name);
    rec.max_files = u->c->max_files;
    int maybe_recorded = 0;
    us_db_rc rc = u->c->store ? us_store_acquire(u->c->store, &db, &err) : US_DB_ERROR;
    if (rc == US_DB_OK) {
        rc = us_upload_commit(db, r->pool, &rec, rec.uploaded_at, &old_blob);
        if (rc != US_DB_OK && rc != US_DB_CONFLICT && rc != US_DB_LIMIT)
            err = apr_pstrdup(r->pool, us_db_error(db));
        maybe_recorded = rc == US_DB_NOT_DURABLE || us_db_outcome_unknown(db);
        us_store_release(u->c->store, db, rc == US_DB_ERROR);
    }
    if (rc != US_DB_OK) {
        if (!maybe_recorded) { /* else recorded, perhaps for good: keep it */
            us_storage_abandon(u->file); /* not recorded: not visible, not kept */
            u->committed = 0;
        }
        if (rc == US_DB_CONFLICT) {
            if (!u->committed) /* abandoned: its session's clear may have kept the directory for it */
                us_storage_session_tidy(u->c->storage, r->pool, u->session_id);
            return reject(u, HTTP_FORBIDDEN, "AccessDenied", "The upload session is no longer open.");
        }
        if (rc == US_DB_LIMIT) /* a refusal of the policy's kind: the client must not retry */
            return reject(u, HTTP_FORBIDDEN, "AccessDenied",
                          apr_psprintf(r->pool, "Invalid according to Policy: the upload session "
                                       "holds its maximum of %d files.", u->c->max_files));
        ap_log_rerror(APLOG_MARK, rc == US_DB_BUSY ? APLOG_WARNING : APLOG_ERR, 0, r,
                      USLOGNO(0207) "upload: store: %s", err ? err : "unavailable");
        return rc == US_DB_BUSY
                   ? reject(u, HTTP_SERVICE_UNAVAILABLE, "SlowDown", "Please reduce your request rate.")
                   : reject(u, HTTP_INTERNAL_SERVER_ERROR, "InternalError",
                            "We encountered an internal error. Please try again.");
    }
    if (old_blob) /* the same name uploaded before: this one wins */
        us_storage_upload_delete(u->c->storage, r->pool, u->session_id, old_blob);
    return 0;
}

static int send_success(upload_ctx *u)
{
    request_rec *r = u->r;
    const char *want = us_form_get(u->form, "success_action_status");
    if (want && strcmp(want, "200") == 0) {
        r->status = HTTP_OK;
        ap_set_content_length(r, 0);
        return OK;
    }
    if (want && strcmp(want, "201") == 0) {
        /* the URL the client posted to, as the client sees it (reverse proxies) */
        const char *loc = apr_pstrcat(r->pool, us_public_base(r, u->c), US_API_PREFIX,
                                      "/upload_target/", u->session_id, NULL);
        apr_table_setn(r->headers_out, "Location", loc);
        return send_xml(r, HTTP_CREATED, apr_pstrcat(r->pool,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<PostResponse><Location>",
            xml_escape(r->pool, loc), "</Location><Bucket>upload-sessions</Bucket><Key>",
            xml_escape(r->pool, u->key), "</Key><ETag>\"", us_storage_writer_sha256_hex(u->file), "\"</ETag></PostResponse>",
            NULL));
    }
    r->status = HTTP_NO_CONTENT;
    ap_set_content_length(r, 0);
    return OK;
}

/* ---- entry ---------------------------------------------------------------------- */

int us_upload_handle(request_rec *r, us_srv_conf *c, const char *session_id)
{
    upload_ctx *u = apr_pcalloc(r->pool, sizeof(*u));
    static const us_mp_callbacks cb = { on_part_begin, on_part_data, on_part_end };
    char reason[128], sid[37];

    u->r = r;
    u->c = c;
    u->form = us_form_create(r->pool, MAX_FIELDS_BYTES, MAX_FIELDS);
    if (!us_uuid_parse(session_id, sid, reason, sizeof(reason)))
        return send_s3_error(r, HTTP_NOT_FOUND, "NoSuchUpload", "The upload session does not exist.");
    u->session_id = apr_pstrdup(r->pool, sid);

    const char *boundary = us_mp_boundary(r->pool, apr_table_get(r->headers_in, "Content-Type"));
    if (!boundary)
        return send_s3_error(r, HTTP_BAD_REQUEST, "MalformedPOSTRequest",
                             "The body of your POST request is not well-formed multipart/form-data.");
    const char *cl = apr_table_get(r->headers_in, "Content-Length");
    if (cl && apr_atoi64(cl) > c->max_file_size + US_BODY_OVERHEAD) {
        r->connection->keepalive = AP_CONN_CLOSE; /* do not read what we refuse */
        return send_s3_error(r, HTTP_BAD_REQUEST, "EntityTooLarge",
                             "Your proposed upload exceeds the maximum allowed size.");
    }
    us_upload_body_limit(r, c);

    us_mp *mp = us_mp_create(r->pool, boundary, &cb, u);
    us_metrics_upload_started(us_metrics_gauges_here());
    us_read_result rr = us_read_multipart(r, mp);
    read_failed(u, rr, mp);
    if (!u->status && !u->file_done)
        reject(u, HTTP_BAD_REQUEST, "InvalidArgument",
               "POST requires exactly one file upload per request.");
    if (!u->status)
        publish(u);
    us_metrics_upload_ended(us_metrics_here(), us_metrics_gauges_here(), (apr_uint64_t)u->received,
                            !u->status);
    if (u->status) {
        if (u->file && !u->committed)
            us_storage_abandon(u->file);
        if (rr == US_READ_BROKEN && u->size > 0)
            ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, USLOGNO(0208)
                          "upload aborted after %" APR_INT64_T_FMT " bytes", (apr_int64_t)u->size);
        r->connection->keepalive = AP_CONN_CLOSE;
        return send_s3_error(r, u->status, u->code, u->msg);
    }
    return send_success(u);
}

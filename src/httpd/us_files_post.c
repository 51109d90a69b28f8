/*
 * us_files_post.c - POST /files: a file uploaded straight into a workspace
 * (a multipart `file` part, or a `text` field named by file_name, with its
 * `meta`), streamed into the file storage, then recorded.
 */
#include "endpoints.h"
#include "file_endpoint.h"
#include "request_body.h"
#include "response.h"
#include "us_buf.h"
#include "us_filename.h"
#include "us_ingest.h"
#include "us_json.h"
#include "us_multipart.h"
#include "us_storage.h"
#include "us_utf8.h"
#include "us_uuid.h"
#include "us_validate.h"

#include <http_log.h>
#include <http_protocol.h>
#include <apr_strings.h>
#include <string.h>
#include <strings.h>

APLOG_USE_MODULE(upload_session);

#define MAX_FORM_FILES 1000   /* Starlette's defaults for a form, which the */
#define MAX_FORM_FIELDS 1000  /* real service parses with FastAPI */

typedef struct {
    request_rec *r;
    us_srv_conf *c;
    enum { P_NONE, P_FILE, P_META, P_OTHER } part;
    us_storage_writer *blob;
    const char *file_id;
    const char *name;
    const char *file_name;  /* the query's file_name: names the file, and the `text` field */
    int has_text;           /* a `text` field was sent */
    const char *problem;    /* a 4xx detail, once something is wrong */
    int status;
    int files, fields;      /* parts with and without a filename so far */
    us_buf meta;            /* the last `meta` part */
    int has_meta;           /* a `meta` part was sent */
    apr_size_t meta_total;  /* bytes of every `meta` part so far */
    int file_done;
    us_utf8_counter chars;  /* of the file, when it is a text file */
    int judge_only;         /* the query is invalid: the form is read for its 422
                               items only, nothing is stored */
    int urlencoded;         /* the form is url-encoded: only `text` and `meta`
                               are read, without Starlette's multipart limits */
} post_ctx;

/* 503 when the storage does not answer, 507 when it is full, else 500. */
static int storage_status(apr_status_t rv)
{
    return us_storage_unavailable(rv)    ? HTTP_SERVICE_UNAVAILABLE
           : APR_STATUS_IS_ENOSPC(rv) ? HTTP_INSUFFICIENT_STORAGE
                                      : HTTP_INTERNAL_SERVER_ERROR;
}

static int post_fail(post_ctx *x, int status, const char *detail)
{
    if (!x->problem) {
        x->status = status;
        x->problem = detail;
    }
    return 1;
}

#define BOTH_DETAIL "Send either a file part or a text field, not both."

static int post_begin(void *ctx, const us_mp_part *part)
{
    post_ctx *x = ctx;
    x->part = P_OTHER;
    if (x->urlencoded && (!part->name || (strcmp(part->name, "text") != 0 &&
                                          strcmp(part->name, "meta") != 0)))
        return 0; /* no file can come as any other field */
    /* Starlette's limits on a multipart form: a part with a filename is a
     * file, any other a field */
    if (!x->urlencoded && ((part->filename || part->filename_star)
                               ? ++x->files > MAX_FORM_FILES
                               : ++x->fields > MAX_FORM_FIELDS))
        return post_fail(x, HTTP_BAD_REQUEST,
                         x->files > MAX_FORM_FILES
                             ? "Too many files. Maximum number of files is 1000."
                             : "Too many fields. Maximum number of fields is 1000.");
    if (!part->name)
        return 0;
    if (strcmp(part->name, "meta") == 0) {
        x->part = P_META;
        x->has_meta = 1;
        us_buf_reset(&x->meta); /* the last `meta` part counts, as in FastAPI */
        return 0;
    }
    /* the file is a `file` part, or the field `text` (named by file_name);
     * never both, and only the first of either */
    int is_text = strcmp(part->name, "text") == 0 && !part->filename && !part->filename_star;
    if (!is_text && strcmp(part->name, "file") != 0)
        return 0;
    if (x->judge_only) { /* whether a file came is all that counts */
        x->has_text |= is_text;
        x->file_done |= !is_text || x->file_name != NULL;
        return 0;
    }
    if (is_text) {
        if (x->has_text++)
            return post_fail(x, HTTP_BAD_REQUEST, "Send one text field only.");
        if (x->blob || x->file_done)
            return post_fail(x, HTTP_BAD_REQUEST, BOTH_DETAIL);
        if (!x->file_name)
            return 0; /* 422 at the end: the text names no file by itself */
    }
    else if (x->has_text)
        return post_fail(x, HTTP_BAD_REQUEST, BOTH_DETAIL);
    else if (x->file_done)
        return 0; /* only the first `file` part is read */
    /* the name as sent, as FastAPI takes it: the SDK sends it with httpx,
     * which does not percent-quote it (a copy: the part's header goes with
     * the next part) */
    x->name = x->file_name ? x->file_name
              : apr_pstrdup(x->r->pool, part->filename_star ? part->filename_star
                                                            : part->filename);
    if (!x->name)
        return post_fail(x, HTTP_BAD_REQUEST, "The file part must carry a filename.");
    const char *why = us_filename_problem(x->name);
    if (why)
        return post_fail(x, HTTP_BAD_REQUEST, apr_pstrcat(x->r->pool, "Invalid file name: ", why, ".", NULL));
    char id[37];
    us_uuid4_timed(id, apr_time_now()); /* us_files' key grows at its end */
    x->file_id = apr_pstrdup(x->r->pool, id);
    apr_status_t rv = us_storage_file_create(x->c->storage, x->r->pool, x->file_id, &x->blob);
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, us_storage_unavailable(rv) ? APLOG_WARNING : APLOG_ERR, rv,
                  x->r, USLOGNO(0302) "POST /files: cannot store a file");
        return post_fail(x, storage_status(rv), us_storage_unavailable(rv) ? US_BUSY_DETAIL
                                                                           : "Internal Server Error");
    }
    x->part = P_FILE;
    return 0;
}

static int post_data(void *ctx, const char *data, size_t len)
{
    post_ctx *x = ctx;
    if (x->part == P_FILE) {
        if (us_storage_writer_size(x->blob) + (long long)len > x->c->max_file_size)
            return post_fail(x, HTTP_REQUEST_ENTITY_TOO_LARGE, "The file is too large.");
        apr_status_t rv = us_storage_write(x->blob, data, len);
        us_utf8_count(&x->chars, data, len);
        if (rv != APR_SUCCESS) {
            ap_log_rerror(APLOG_MARK, us_storage_unavailable(rv) ? APLOG_WARNING : APLOG_ERR, rv,
                  x->r, USLOGNO(0303) "POST /files: write");
            return post_fail(x, storage_status(rv), us_storage_unavailable(rv)
                                                        ? US_BUSY_DETAIL : "The file could not be stored.");
        }
    }
    else if (x->part == P_META) {
        if (len > US_META_MAX_BYTES - x->meta_total || us_buf_append(&x->meta, data, len) != 0)
            return post_fail(x, HTTP_REQUEST_ENTITY_TOO_LARGE, "The metadata is too large.");
        x->meta_total += len;
    }
    return 0;
}

/* The file part's end; the file is finished only once the whole body is
 * read (finish_file). */
static int post_end(void *ctx)
{
    post_ctx *x = ctx;
    if (x->part == P_FILE)
        x->file_done = 1;
    x->part = P_NONE;
    return 0;
}

/* The file finished (a small one written under its final name), once the
 * body has ended: a body that goes on slowly after its file part (more
 * parts, read and dropped) must not leave the file under its name, dated
 * by its end and with no row yet, for longer than the sweep of files no
 * row refers to waits (us_files_sweep.h). 0, or answered by post_fail. */
static int finish_file(post_ctx *x)
{
    apr_status_t rv = us_storage_finish(x->blob);
    if (rv == APR_SUCCESS)
        return 0;
    ap_log_rerror(APLOG_MARK, us_storage_unavailable(rv) ? APLOG_WARNING : APLOG_ERR, rv, x->r,
                  USLOGNO(0304) "POST /files: store");
    return post_fail(x, storage_status(rv), us_storage_unavailable(rv)
                                                ? US_BUSY_DETAIL : "The file could not be stored.");
}

/* The meta field: a JSON object, or null / empty for none. NULL, or why
 * the field is refused. */
static const char *parse_meta(post_ctx *x, const char **out)
{
    *out = NULL;
    if (!x->has_meta || !x->meta.len || !x->meta.data[0])
        return NULL;
    char *text;
    us_json_meta_rc rc = us_json_meta_text(x->r->pool, x->meta.data, x->meta.len, &text);
    *out = text;
    if (rc == US_JSON_META_OK || us_json_text_is_null(x->meta.data, x->meta.len))
        return NULL;
    return rc == US_JSON_META_NUL ? META_NUL_MSG : "meta must be a JSON object or null.";
}

/* ctype is the media type `type` (case-insensitive), whatever its parameters */
static int is_media_type(const char *ctype, const char *type)
{
    size_t n = strlen(type);
    if (!ctype)
        return 0;
    while (*ctype == ' ' || *ctype == '\t')
        ctype++;
    return strncasecmp(ctype, type, n) == 0 &&
           (ctype[n] == '\0' || ctype[n] == ';' || ctype[n] == ' ' || ctype[n] == '\t');
}

int us_api_file_post(request_rec *r, us_srv_conf *c, const char *ws)
{
    static const us_mp_callbacks cb = { post_begin, post_data, post_end };
    json_t *errs = us_json_pool_own(r->pool, json_array());
    const char *mode = "KEEP", *meta = NULL;
    post_ctx *x = apr_pcalloc(r->pool, sizeof(*x));
    us_buf_init(&x->meta, r->pool, US_META_MAX_BYTES);
    int rc;

    us_validate_query_enum(errs, "write_mode", us_query_get(r->pool, r->args, "write_mode"),
                    us_write_modes, &mode);
    if (!mode)
        mode = "KEEP";
    /* FastAPI reports the query's items with the form's: the form is read,
     * for whether it holds a file, before a 422 */
    x->judge_only = json_array_size(errs) > 0;
    const char *ctype = apr_table_get(r->headers_in, "Content-Type");
    const char *cl = apr_table_get(r->headers_in, "Content-Length");
    int urlencoded = is_media_type(ctype, "application/x-www-form-urlencoded");
    if (x->judge_only && !urlencoded && !is_media_type(ctype, "multipart/form-data"))
        return us_send_422(r, errs);
    if (!urlencoded && !is_media_type(ctype, "multipart/form-data")) {
        r->connection->keepalive = AP_CONN_CLOSE; /* the body is not read */
        return us_send_detail(r, HTTP_UNSUPPORTED_MEDIA_TYPE,
                              "Unsupported Media Type: the body must be multipart/form-data.");
    }
    const char *boundary = urlencoded ? NULL : us_mp_boundary(r->pool, ctype);
    if (!urlencoded && !boundary) {
        r->connection->keepalive = AP_CONN_CLOSE;
        return us_send_detail(r, HTTP_BAD_REQUEST, "There was an error parsing the body");
    }
    x->r = r;
    x->c = c;
    x->urlencoded = urlencoded;
    x->file_name = us_query_get(r->pool, r->args, "file_name");
    if (apr_atoi64(cl ? cl : "0") > c->max_file_size + US_BODY_OVERHEAD) {
        /* refused from its declared length, unread (httpd's own limit
         * would answer with its HTML page) */
        r->connection->keepalive = AP_CONN_CLOSE;
        return us_send_detail(r, HTTP_REQUEST_ENTITY_TOO_LARGE, "The file is too large.");
    }
    us_upload_body_limit(r, c);
    /* an url-encoded form carries no file, but the fields `text` and `meta`
     * (as the SDK's older text upload sends them): streamed to the same
     * callbacks as the parts of a multipart form */
    us_read_result rr = urlencoded ? us_read_urlform(r, us_urlform_create(r->pool, &cb, x))
                                   : us_read_multipart(r, us_mp_create(r->pool, boundary, &cb, x));
    if (!x->problem && rr == US_READ_TOO_LARGE)
        post_fail(x, HTTP_REQUEST_ENTITY_TOO_LARGE, "The file is too large.");
    else if (!x->problem && rr != US_READ_DONE)
        post_fail(x, HTTP_BAD_REQUEST, "There was an error parsing the body");
    if (!x->problem && !x->file_done) {
        if (x->has_text) /* the text field names no file by itself */
            us_validate_missing(errs, "query", "file_name", NULL);
        else
            us_validate_missing(errs, "body", "file", NULL);
    }
    if (!x->problem && json_array_size(errs) > 0)
        return us_send_422(r, errs);
    const char *bad_meta = x->problem ? NULL : parse_meta(x, &meta);
    if (bad_meta)
        post_fail(x, HTTP_BAD_REQUEST, bad_meta);
    if (!x->problem)
        (void)finish_file(x);
    if (x->problem) {
        if (x->blob) /* before answering: the client may look for leftovers next */
            us_storage_abandon(x->blob);
        r->connection->keepalive = AP_CONN_CLOSE;
        if (x->status == HTTP_SERVICE_UNAVAILABLE)
            apr_table_setn(r->headers_out, "Retry-After", "1");
        return us_send_detail(r, x->status, x->problem);
    }
    apr_status_t rv = us_storage_commit(x->blob);
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, us_storage_unavailable(rv) ? APLOG_WARNING : APLOG_ERR, rv,
                  r, USLOGNO(0305) "POST /files: publish");
        return us_send_storage_error(r, rv);
    }

    us_workspace_file f = { x->file_id, x->name, meta, us_storage_writer_size(x->blob), apr_time_now(),
                            us_filename_is_text(x->name) ? us_utf8_count_end(&x->chars) : -1, 0 };
    apr_array_header_t *deleted = NULL;
    us_db *db;
    if (!(db = us_acquire_db(r, c))) { /* answered 503/500 already */
        us_storage_abandon(x->blob);
        return OK;
    }
    us_db_rc drc = us_workspace_file_add(db, r->pool, ws, &f, mode, &deleted);
    if (drc != US_DB_OK && drc != US_DB_NOT_DURABLE && !us_db_outcome_unknown(db))
        us_storage_abandon(x->blob); /* not recorded: not kept (else perhaps for good) */
    if ((rc = us_query_done(r, c, db, drc)) != DECLINED)
        return rc;
    if (drc != US_DB_OK) /* CONFLICT */
        return us_send_detail(r, HTTP_CONFLICT,
                              apr_psprintf(r->pool, "A file with the name '%s' already exists "
                                           "in the workspace.", x->name));
    for (int i = 0; i < deleted->nelts; i++)
        us_storage_file_delete(c->storage, r->pool, APR_ARRAY_IDX(deleted, i, const char *));
    us_json_writer w;
    us_json_write_init(&w, r->pool, 64);
    us_json_write_object_open(&w);
    us_json_write_key_string(&w, "file_id", x->file_id);
    us_json_write_object_close(&w);
    return us_send_json_writer(r, HTTP_CREATED, &w);
}

/*
 * us_files.c - the workspace files API (glue): list ingested files with a
 * cursor, download their bytes, read their metadata, upload directly.
 * Their bytes are in the file storage (us_storage.h) under their file id.
 */
#include "us_storage.h"
#include "us_buf.h"
#include "us_filename.h"
#include "us_ingest.h"
#include "file_bytes.h"
#include "response.h"
#include "us_json.h"
#include "us_multipart.h"
#include "us_odata.h"
#include "us_range.h"
#include "us_time.h"
#include "endpoints.h"
#include "request_body.h"
#include "us_utf8.h"
#include "us_uuid.h"
#include "us_validate.h"

#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <apr_buckets.h>
#include <apr_strings.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

APLOG_USE_MODULE(upload_session);

/* no store keeps U+0000 in metadata (PostgreSQL's jsonb refuses it) */
#define META_NUL_MSG "metadata cannot hold the character U+0000."
#define MAX_FORM_FILES 1000   /* Starlette's defaults for a form, which the */
#define MAX_FORM_FIELDS 1000  /* real service parses with FastAPI */

/* The stored meta text as the answer writes it: its object in jansson's
 * compact form, "{}" when there is none or it is not a JSON object. */
static const char *meta_text(apr_pool_t *p, const char *text)
{
    json_error_t e;
    if (!text || strcmp(text, "{}") == 0) /* the common cases, without jansson */
        return "{}";
    json_t *j = json_loads(text, JSON_ALLOW_NUL, &e);
    const char *out = json_is_object(j) ? us_json_dump_pool(p, j) : NULL;
    json_decref(j);
    return out ? out : "{}";
}

/* One item of GET /files, its copies in p; url_prefix:
 * /api/v1/workspaces/<ws>/files/. An item with a name that is not valid
 * UTF-8 is left out, as when json_pack refused it. */
static void write_file(us_json_writer *w, request_rec *r, apr_pool_t *p, const char *url_prefix,
                       const us_workspace_file *f)
{
    char at[US_TS_LEN];
    us_json_write_mark before;
    const char *meta = meta_text(p, f->meta);

    us_time_format(f->created_at, at);
    us_json_write_save(w, &before);
    us_json_write_object_open(w);
    us_json_write_key_string(w, "file_id", f->file_id);
    us_json_write_key_string(w, "url", apr_pstrcat(p, url_prefix, f->file_id, NULL));
    us_json_write_key_string(w, "name", f->name);
    us_json_write_key_int(w, "size", f->size);
    us_json_write_key(w, "meta");
    us_json_write_raw(w, meta, strlen(meta));
    us_json_write_key_string(w, "created_at", at);
    us_json_write_key(w, "characters");
    if (f->characters >= 0)
        us_json_write_int(w, f->characters);
    else
        us_json_write_null(w);
    us_json_write_key(w, "languages");
    us_json_write_null(w);
    us_json_write_object_close(w);
    if (!us_json_write_ok(w)) {
        us_json_write_rewind(w, &before);
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                      USLOGNO(0306) "file %s left out of the list: its name is not "
                      "valid UTF-8", f->file_id);
    }
}

/* A response cut short after its headers went out, when its status can no
 * longer tell: httpd's error bucket ends it without keep-alive (and a
 * chunked body without its last chunk), so the client sees the connection
 * closed at once with a short body, instead of waiting for bytes that never
 * come until KeepAliveTimeout. */
static void abort_response(request_rec *r)
{
    apr_bucket_alloc_t *ba = r->connection->bucket_alloc;
    apr_bucket_brigade *bb = apr_brigade_create(r->pool, ba);
    r->connection->keepalive = AP_CONN_CLOSE;
    APR_BRIGADE_INSERT_TAIL(bb, ap_bucket_error_create(HTTP_BAD_GATEWAY, NULL, r->pool, ba));
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_eos_create(ba));
    ap_pass_brigade(r->output_filters, bb);
}

/* ---- GET /files ---------------------------------------------------------------- */

/* A 422 item for a query parameter that is not served as given (API.md: a
 * parameter is implemented exactly or refused, never ignored). */
static void refuse_query(json_t *errs, const char *name, const char *value, const char *msg)
{
    json_array_append_new(errs, us_validation_error("value_error", json_pack("[s,s]", "query", name),
                                                    msg, json_string(value), NULL));
}

/* filter, and meta_key + meta_value (the same as `<meta_key> eq '<meta_value>'`),
 * as one tree (NULL: neither given); a 422 item for what does not parse. */
static const us_odata_node *filter_of(request_rec *r, json_t *errs)
{
    const char *filter = us_query_get(r->pool, r->args, "filter");
    const char *key = us_query_get(r->pool, r->args, "meta_key");
    const char *value = us_query_get(r->pool, r->args, "meta_value");
    us_odata_node *root = NULL, *by_key = NULL;
    const char *err;
    if (filter && !us_odata_parse(r->pool, filter, strlen(filter), &root, &err))
        refuse_query(errs, "filter", filter, err);
    if (key && value) {
        /* the value as an OData string literal: quotes doubled */
        char *quoted = apr_palloc(r->pool, 2 * strlen(value) + 3), *q = quoted;
        *q++ = '\'';
        for (const char *v = value; *v; v++) {
            if (*v == '\'')
                *q++ = '\'';
            *q++ = *v;
        }
        *q++ = '\'';
        *q = '\0';
        const char *text = apr_pstrcat(r->pool, key, " eq ", quoted, NULL);
        if (!us_odata_parse(r->pool, text, strlen(text), &by_key, &err) || by_key->kind != US_ODATA_CMP ||
            by_key->operand.field != US_ODATA_META)
            refuse_query(errs, "meta_key", key, "not a metadata key: letters, digits and _, nested keys with /");
    } else if (key || value) {
        refuse_query(errs, key ? "meta_key" : "meta_value", key ? key : value,
                     "meta_key and meta_value are given together");
    }
    if (root && by_key) {
        us_odata_node *both = apr_pcalloc(r->pool, sizeof(*both));
        both->kind = US_ODATA_AND;
        both->left = root;
        both->right = by_key;
        return both;
    }
    return root ? root : by_key;
}

/* content search is not offered: refused, never ignored. */
static void refuse_unserved(request_rec *r, json_t *errs)
{
    const char *v;
    if ((v = us_query_get(r->pool, r->args, "content")))
        refuse_query(errs, "content", v, "searching the content of files is not supported by this server");
}

/* The long metadata of a listed file, read on its own into p
 * (us_workspace_file_list leaves it out of the page's rows). NOTFOUND: the
 * file went since the list was read. *err: a failure's text. */
static us_db_rc read_deferred_meta(const us_srv_conf *c, apr_pool_t *p, const char *ws,
                                   us_workspace_file *f, const char **err)
{
    us_db *db = NULL;
    us_workspace_file now;
    us_db_rc rc = c->store ? us_store_acquire(c->store, &db, err) : US_DB_ERROR;
    if (rc != US_DB_OK) {
        if (!*err)
            *err = "no connection pool in this process";
        return rc;
    }
    rc = us_workspace_file_get(db, p, ws, f->file_id, &now);
    if (rc == US_DB_OK)
        f->meta = now.meta;
    else if (rc != US_DB_NOTFOUND)
        *err = apr_pstrdup(p, us_db_error(db));
    us_store_release(c->store, db, rc == US_DB_ERROR);
    return rc;
}

/* The answer to GET /files, passed on in pieces of about LIST_PIECE bytes
 * as it is written, each item's copies in a pool cleared after it: a page
 * of a hundred files carrying 1 MiB of metadata each costs the memory of
 * about one, not of the whole page over again. An answer that fits in one
 * piece goes out whole, with its Content-Length. */
static int send_list(request_rec *r, const us_srv_conf *c, const char *ws,
                     const apr_array_header_t *rows, long long limit, long long total)
{
    enum { LIST_PIECE = 64 * 1024 };
    const char *url_prefix = apr_pstrcat(r->pool, US_API_PREFIX, "/workspaces/", ws, "/files/", NULL);
    apr_bucket_alloc_t *ba = r->connection->bucket_alloc;
    apr_bucket_brigade *bb = apr_brigade_create(r->pool, ba);
    apr_pool_t *item;
    int sent = 0; /* pieces passed on: the headers are out */
    us_json_writer w;
    apr_pool_create(&item, r->pool);
    us_json_write_init(&w, r->pool, 128 + (apr_size_t)rows->nelts * 320);
    us_json_write_object_open(&w);
    us_json_write_key(&w, "data");
    us_json_write_array_open(&w);
    for (int i = 0; i < rows->nelts && i < limit; i++) {
        us_workspace_file f = APR_ARRAY_IDX(rows, i, us_workspace_file);
        const char *err = NULL;
        us_db_rc rc = f.meta_deferred ? read_deferred_meta(c, item, ws, &f, &err) : US_DB_OK;
        if (rc != US_DB_OK && rc != US_DB_NOTFOUND) {
            if (!sent)
                return us_send_store_error(r, rc, apr_pstrdup(r->pool, err));
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, USLOGNO(0309) "file list cut short at "
                          "file %s: reading its metadata failed: %s", f.file_id, err);
            abort_response(r);
            return OK;
        }
        if (rc == US_DB_OK) /* NOTFOUND: deleted since the page was read, left out */
            write_file(&w, r, item, url_prefix, &f);
        apr_pool_clear(item);
        if (w.len < LIST_PIECE)
            continue;
        apr_size_t len = 0;
        const char *text = us_json_write_take(&w, &len);
        if (!text) /* a failed writer: kept for us_send_json_writer's 500 */
            break;
        if (!sent) {
            r->status = HTTP_OK;
            ap_set_content_type(r, "application/json");
        }
        sent = 1;
        APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_transient_create(text, len, ba));
        apr_status_t rv = ap_pass_brigade(r->output_filters, bb); /* done with text once it returns */
        apr_brigade_cleanup(bb);
        if (rv != APR_SUCCESS) /* the client went */
            return AP_FILTER_ERROR;
    }
    apr_pool_destroy(item);
    us_json_write_array_close(&w);
    us_json_write_key_int(&w, "total", total);
    us_json_write_key_bool(&w, "has_more", rows->nelts > limit);
    us_json_write_object_close(&w);
    if (!sent)
        return us_send_json_writer(r, HTTP_OK, &w);
    apr_size_t len = 0;
    const char *text = us_json_write_finish(&w, &len);
    if (!text) { /* not expected: a refused item is rewound */
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, USLOGNO(0309) "file list cut short: "
                      "its end could not be written");
        abort_response(r);
        return OK;
    }
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_transient_create(text, len, ba));
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_eos_create(ba));
    return ap_pass_brigade(r->output_filters, bb) == APR_SUCCESS ? OK : AP_FILTER_ERROR;
}

static const char *const SORT_FIELDS[] = { "created_at", "name", NULL };
static const char *const SORT_ORDERS[] = { "ASC", "DESC", NULL };

int us_api_files_list(request_rec *r, us_srv_conf *c, const char *ws)
{
    json_t *errs = us_json_pool_own(r->pool, json_array());
    long long limit, total = 0;
    apr_time_t after_at = 0;
    const char *after_id = NULL;
    const char *name = us_query_get(r->pool, r->args, "name");
    const char *after_value = us_query_get(r->pool, r->args, "after_value");
    const char *after_file_id = us_query_get(r->pool, r->args, "after_file_id");
    char uuid[37], reason[160];
    apr_array_header_t *rows = NULL;
    us_db *db;
    int rc;

    us_validate_query_int(errs, "limit", us_query_get(r->pool, r->args, "limit"), 10, 1, 100, &limit);
    us_workspace_file_query q;
    const char *field = NULL, *order = NULL;
    long long page = 1;
    memset(&q, 0, sizeof(q));
    q.name_part = name ? name : "";
    q.filter = filter_of(r, errs);
    refuse_unserved(r, errs);
    us_validate_query_enum(errs, "field", us_query_get(r->pool, r->args, "field"), SORT_FIELDS, &field);
    us_validate_query_enum(errs, "order", us_query_get(r->pool, r->args, "order"), SORT_ORDERS, &order);
    us_validate_query_int(errs, "page_number", us_query_get(r->pool, r->args, "page_number"), 1, 1,
                          1000000000, &page);
    q.by_name = field && strcmp(field, "name") == 0;
    q.ascending = order && strcmp(order, "ASC") == 0;
    /* the cursor's value is typed after the sort field */
    if (after_value && !q.by_name && !us_time_parse(after_value, &after_at))
        json_array_append_new(errs, us_validation_error("datetime_from_date_parsing",
            json_pack("[s,s]", "query", "after_value"),
            "Input should be a valid datetime or date, invalid character in year",
            json_string(after_value), json_pack("{s:s}", "error", "invalid character in year")));
    if (after_file_id && !us_uuid_parse(after_file_id, uuid, reason, sizeof(reason)))
        json_array_append_new(errs, us_validation_error("uuid_parsing", json_pack("[s,s]", "query", "after_file_id"),
            apr_pstrcat(r->pool, "Input should be a valid UUID, ", reason, NULL),
            json_string(after_file_id), json_pack("{s:s}", "error", reason)));
    else if (after_file_id && !after_value) /* an id alone is no place in the order */
        refuse_query(errs, "after_file_id", after_file_id,
                     "after_file_id needs after_value: the cursor is the last item's sort value "
                     "and file_id");
    if (json_array_size(errs) > 0)
        return us_send_422(r, errs);
    /* the cursor: the last item's sort value and file_id; a value alone
     * continues after every item holding it */
    if (after_value)
        after_id = after_file_id ? apr_pstrdup(r->pool, uuid) : q.ascending ? "~" : "";
    if (!(db = us_acquire_db(r, c))) /* answered 503/500 already */
        return OK;
    /* one more than asked tells whether there are more; page_number pages
     * by offset when no cursor is given (API.md) */
    q.after_at = after_at;
    q.after_id = after_id;
    q.after_name = after_value;
    q.limit = limit + 1;
    q.offset = after_id ? 0 : (page - 1) * limit;
    us_db_rc drc = us_workspace_file_list(db, r->pool, ws, &q, &rows, &total);
    if ((rc = us_query_done(r, c, db, drc)) != DECLINED)
        return rc;
    return send_list(r, c, ws, rows, limit, total);
}

/* ---- GET /files/{id} and /files/{id}/meta ------------------------------------------ */

static const char *content_type_of(const char *name)
{
    static const struct { const char *ext, *type; } TYPES[] = {
        { ".txt", "text/plain; charset=utf-8" }, { ".md", "text/markdown; charset=utf-8" },
        { ".csv", "text/csv; charset=utf-8" }, { ".html", "text/html; charset=utf-8" },
        { ".htm", "text/html; charset=utf-8" }, { ".json", "application/json" },
        { ".xml", "application/xml" }, { ".pdf", "application/pdf" },
        { ".docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document" },
        { ".pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation" },
        { ".xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" },
        { ".png", "image/png" }, { ".jpg", "image/jpeg" }, { ".jpeg", "image/jpeg" },
    };
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && i < sizeof(TYPES) / sizeof(TYPES[0]); i++)
        if (strcasecmp(dot, TYPES[i].ext) == 0)
            return TYPES[i].type;
    return "application/octet-stream";
}

/* the detail of a 503, as for a busy store */
#define BUSY_DETAIL "The service is busy. Try again in a moment."

/* A storage failure: an outage is 503 with Retry-After, the rest 500. */
static int send_storage_error(request_rec *r, apr_status_t rv)
{
    if (!us_storage_unavailable(rv))
        return us_send_detail(r, HTTP_INTERNAL_SERVER_ERROR, "Internal Server Error");
    apr_table_setn(r->headers_out, "Retry-After", "1");
    return us_send_detail(r, HTTP_SERVICE_UNAVAILABLE, BUSY_DETAIL);
}

/* len bytes of a reader without a local file from off, read and passed in
 * pieces; *began once the first is passed. A read that fails after that
 * (the headers went out with it) is logged and the response cut short
 * (abort_response): APR_SUCCESS, it is answered. */
static apr_status_t pass_stream(request_rec *r, const char *id, us_storage_reader *rd,
                                apr_off_t off, apr_off_t len, int *began)
{
    enum { PIECE = 256 * 1024 };
    apr_bucket_alloc_t *ba = r->connection->bucket_alloc;
    apr_bucket_brigade *bb = apr_brigade_create(r->pool, ba);
    char *buf = apr_palloc(r->pool, PIECE);
    apr_status_t rv = APR_SUCCESS;
    for (apr_off_t end = off + len; off < end && rv == APR_SUCCESS;) {
        apr_size_t n = end - off < PIECE ? (apr_size_t)(end - off) : PIECE;
        rv = us_storage_read_at(rd, off, buf, &n);
        if (rv == APR_SUCCESS && n == 0)
            rv = APR_EOF; /* shorter than it said */
        if (rv != APR_SUCCESS && *began) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, USLOGNO(0310) "file %s: reading its "
                          "bytes failed at offset %" APR_OFF_T_FMT " after the answer's headers "
                          "went out: the download is cut short", id, off);
            abort_response(r);
            return APR_SUCCESS;
        }
        if (rv != APR_SUCCESS)
            break;
        off += (apr_off_t)n;
        *began = 1;
        APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_transient_create(buf, n, ba));
        rv = ap_pass_brigade(r->output_filters, bb); /* done with buf once it returns */
        apr_brigade_cleanup(bb);
    }
    if (rv != APR_SUCCESS)
        return rv;
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_eos_create(ba));
    return ap_pass_brigade(r->output_filters, bb);
}

/* len bytes of rd from off, then the end of the response: a file bucket
 * where the storage has a local file (sendfile where it can), else read
 * and passed in pieces. *began is set once the head may have gone out:
 * until then a failed read can still be answered with an error. A local
 * file's first byte is read first, since the file bucket is read only
 * after the head is written. */
static apr_status_t pass_bytes(request_rec *r, const char *id, us_storage_reader *rd,
                               apr_off_t off, apr_off_t len, int *began)
{
    apr_file_t *fd = us_storage_reader_file(rd);
    if (!fd)
        return pass_stream(r, id, rd, off, len, began);
    if (len > 0) {
        char first;
        apr_size_t one = 1;
        apr_status_t rv = us_storage_read_at(rd, off, &first, &one);
        if (rv == APR_SUCCESS && one == 0)
            rv = APR_EOF; /* shorter than it said */
        if (rv != APR_SUCCESS)
            return rv;
    }
    *began = 1;
    apr_bucket_brigade *bb = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    apr_brigade_insert_file(bb, fd, off, len, r->pool);
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_eos_create(r->connection->bucket_alloc));
    return ap_pass_brigade(r->output_filters, bb);
}

/* What the request's Range asks of a file of size bytes (*first, *last
 * for US_RANGE_PARTIAL). */
static us_range_result range_of(request_rec *r, apr_off_t size, apr_off_t *first, apr_off_t *last)
{
    const core_dir_config *d = ap_get_core_module_config(r->per_dir_config);
    if (d->max_ranges == AP_MAXRANGES_NORANGES) /* MaxRanges none */
        return US_RANGE_FULL;
    /* The answer carries no validator (ETag, Last-Modified), so none an
     * If-Range names can match: the whole file (RFC 9110, section 13.1.5). */
    if (apr_table_get(r->headers_in, "If-Range"))
        return US_RANGE_FULL;
    return us_range_parse(apr_table_get(r->headers_in, "Range"), size, first, last);
}

/* 416 without a body; Content-Range names the size (RFC 9110, section 15.5.17). */
static int send_unsatisfiable(request_rec *r, apr_off_t size)
{
    r->status = HTTP_RANGE_NOT_SATISFIABLE;
    apr_table_setn(r->headers_out, "Content-Range",
                   apr_psprintf(r->pool, "bytes */%" APR_OFF_T_FMT, size));
    ap_set_content_length(r, 0);
    return OK;
}

#define NO_FILE "There's no file with the ID '%s' in the workspace."

/* NO_FILE of an id that may hold a NUL (a JSON object's key), whole */
static json_t *no_file_text(apr_pool_t *p, const char *id, size_t id_len)
{
    static const char head[] = "There's no file with the ID '", tail[] = "' in the workspace.";
    size_t n = sizeof(head) - 1 + id_len + sizeof(tail) - 1;
    char *text = apr_palloc(p, n);
    memcpy(text, head, sizeof(head) - 1);
    memcpy(text + sizeof(head) - 1, id, id_len);
    memcpy(text + sizeof(head) - 1 + id_len, tail, sizeof(tail) - 1);
    return json_stringn(text, n);
}

/* Whether a file whose bytes were not found has no row any more: a delete
 * took it between the read of its row and the open of its bytes, so it is
 * answered as if the delete had come first. With its row there, its bytes
 * are lost: an error. */
static int file_deleted(request_rec *r, const us_srv_conf *c, const char *ws, const char *id)
{
    us_db *db = NULL;
    const char *err = NULL;
    us_workspace_file f;
    if (!c->store || us_store_acquire(c->store, &db, &err) != US_DB_OK)
        return 0;
    us_db_rc rc = us_workspace_file_get(db, r->pool, ws, id, &f);
    us_store_release(c->store, db, rc == US_DB_ERROR);
    return rc == US_DB_NOTFOUND;
}

/* A file whose bytes could not be opened or read, before anything of them
 * was sent: logged, and answered as the API's other errors are. */
static int send_unreadable(request_rec *r, const us_workspace_file *f, apr_status_t rv)
{
    ap_log_rerror(APLOG_MARK, us_storage_unavailable(rv) ? APLOG_WARNING : APLOG_ERR, rv, r,
                  USLOGNO(0301) "file %s: its bytes are unreadable", f->file_id);
    /* what was set for the bytes' answer */
    apr_table_unset(r->headers_out, "Content-Disposition");
    apr_table_unset(r->headers_out, "Content-Range");
    apr_table_unset(r->headers_out, "Accept-Ranges");
    return send_storage_error(r, rv);
}

static int send_blob(request_rec *r, const us_srv_conf *c, const char *ws,
                     const us_workspace_file *f)
{
    us_storage_reader *rd;
    apr_status_t rv = us_storage_file_open(c->storage, r->pool, f->file_id, &rd);
    if (APR_STATUS_IS_ENOENT(rv) && file_deleted(r, c, ws, f->file_id))
        return us_send_detail(r, HTTP_NOT_FOUND, apr_psprintf(r->pool, NO_FILE, f->file_id));
    if (rv != APR_SUCCESS)
        return send_unreadable(r, f, rv);
    apr_off_t size = us_storage_reader_size(rd), first = 0, last = size - 1;
    us_range_result range = range_of(r, size, &first, &last);
    /* The range is answered here, for every storage alike: httpd's filter
     * handles only a response in one brigade, which a streamed file is not,
     * and would answer several ranges where this answers the whole file. */
    ap_remove_output_filter_byhandle(r->output_filters, "BYTERANGE");
    ap_set_accept_ranges(r);
    apr_table_setn(r->headers_out, "X-Content-Type-Options", "nosniff");
    if (range == US_RANGE_UNSATISFIABLE)
        return send_unsatisfiable(r, size);
    if (range == US_RANGE_PARTIAL) {
        r->status = HTTP_PARTIAL_CONTENT;
        apr_table_setn(r->headers_out, "Content-Range",
                       apr_psprintf(r->pool, "bytes %" APR_OFF_T_FMT "-%" APR_OFF_T_FMT
                                    "/%" APR_OFF_T_FMT, first, last, size));
    }
    ap_set_content_type(r, content_type_of(f->name));
    ap_set_content_length(r, last - first + 1);
    apr_table_setn(r->headers_out, "Content-Disposition",
                   apr_pstrcat(r->pool, "attachment; filename*=UTF-8''",
                               us_rfc5987_encode(r->pool, f->name), NULL));
    if (r->header_only)
        return OK;
    int began = 0;
    rv = pass_bytes(r, f->file_id, rd, first, last - first + 1, &began);
    if (rv == APR_SUCCESS)
        return OK;
    /* once bytes may have gone out, only the connection can be cut */
    return began ? AP_FILTER_ERROR : send_unreadable(r, f, rv);
}

/* JSON text that is already written (a stored meta object). */
static int send_raw(request_rec *r, int status, const char *text)
{
    us_json_writer w;
    us_json_write_init(&w, r->pool, strlen(text) + 1);
    us_json_write_raw(&w, text, strlen(text));
    return us_send_json_writer(r, status, &w);
}

/* ---- the endpoints on one file: /files/{file_id}[/meta] ------------------------ */


/* What an endpoint on one file does at each step of with_file_id. */
typedef struct {
    /* first, before the id is judged: reads what the query needs (a body),
     * leaving its 422 items in errs; DECLINED to go on, else answered (invalid
     * JSON, 400, 413). NULL: nothing. */
    int (*prepare)(request_rec *r, json_t *errs, void *baton);
    /* the query, on a pooled connection */
    us_db_rc (*query)(request_rec *r, const us_srv_conf *c, us_db *db, const char *ws,
                      const char *id, void *baton);
    /* the answer once the query found the file */
    int (*answer)(request_rec *r, const us_srv_conf *c, void *baton);
} file_ops;

/* The skeleton of every endpoint on one file: prepare (a body is read
 * first: FastAPI reports invalid JSON alone, other body items after the
 * path's), the path's file_id (422), the query between us_acquire_db and
 * us_query_done (store failures 503/500), NOTFOUND 404, else the answer. */
static int with_file_id(request_rec *r, us_srv_conf *c, const char *ws, const char *raw_id,
                        const file_ops *ops, void *baton)
{
    json_t *errs = us_json_pool_own(r->pool, json_array());
    json_t *path_errs = us_json_pool_own(r->pool, json_array());
    char id[37];
    us_db *db;
    int rc;

    if (ops->prepare && (rc = ops->prepare(r, errs, baton)) != DECLINED)
        return rc;
    int id_ok = us_validate_path_uuid(path_errs, "file_id", raw_id, id);
    if (!id_ok || json_array_size(path_errs) + json_array_size(errs) > 0) {
        json_array_extend(path_errs, errs); /* path problems first */
        return us_send_422(r, path_errs);
    }
    if (!(db = us_acquire_db(r, c))) /* answered 503/500 already */
        return OK;
    us_db_rc drc = ops->query(r, c, db, ws, id, baton);
    if ((rc = us_query_done(r, c, db, drc)) != DECLINED)
        return rc;
    if (drc != US_DB_OK) /* NOTFOUND */
        return us_send_detail(r, HTTP_NOT_FOUND, apr_psprintf(r->pool, NO_FILE, id));
    return ops->answer(r, c, baton);
}

/* GET /files/{id} and /files/{id}/meta */
typedef struct {
    us_workspace_file f;
    int meta_only;
    const char *ws;
} get_ctx;

static us_db_rc get_query(request_rec *r, const us_srv_conf *c, us_db *db, const char *ws,
                          const char *id, void *baton)
{
    get_ctx *x = baton;
    (void)c;
    x->ws = ws;
    return us_workspace_file_get(db, r->pool, ws, id, &x->f);
}

static int get_answer(request_rec *r, const us_srv_conf *c, void *baton)
{
    const get_ctx *x = baton;
    return x->meta_only ? send_raw(r, HTTP_OK, meta_text(r->pool, x->f.meta))
                        : send_blob(r, c, x->ws, &x->f);
}

int us_api_file_get(request_rec *r, us_srv_conf *c, const char *ws, const char *raw_id, int meta_only)
{
    static const file_ops ops = { NULL, get_query, get_answer };
    get_ctx x = { .meta_only = meta_only };
    return with_file_id(r, c, ws, raw_id, &ops, &x);
}

/* ---- POST /files ---------------------------------------------------------------- */

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
        return post_fail(x, storage_status(rv), us_storage_unavailable(rv) ? BUSY_DETAIL
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
                                                        ? BUSY_DETAIL : "The file could not be stored.");
        }
    }
    else if (x->part == P_META) {
        if (len > US_META_MAX_BYTES - x->meta_total || us_buf_append(&x->meta, data, len) != 0)
            return post_fail(x, HTTP_REQUEST_ENTITY_TOO_LARGE, "The metadata is too large.");
        x->meta_total += len;
    }
    return 0;
}

static int post_end(void *ctx)
{
    post_ctx *x = ctx;
    if (x->part == P_FILE) {
        x->file_done = 1;
        apr_status_t rv = us_storage_finish(x->blob);
        if (rv != APR_SUCCESS) {
            ap_log_rerror(APLOG_MARK, us_storage_unavailable(rv) ? APLOG_WARNING : APLOG_ERR, rv,
                  x->r, USLOGNO(0304) "POST /files: store");
            return post_fail(x, storage_status(rv), us_storage_unavailable(rv)
                                                        ? BUSY_DETAIL : "The file could not be stored.");
        }
    }
    x->part = P_NONE;
    return 0;
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
        return send_storage_error(r, rv);
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

/* ---- DELETE /files/{id} and DELETE /files ---------------------------------------- */

/* After the store's change: the bytes of the first ids, then their trash
 * entries; the rest (and whatever fails) is left to the trash sweep. */
static void remove_bytes(request_rec *r, const us_srv_conf *c, us_db *db,
                         const apr_array_header_t *ids)
{
    us_file_bytes_result b = us_file_bytes_remove(r, c, db, ids);
    if (b.forgot != US_DB_OK)
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, USLOGNO(0307) "delete: the trash keeps %d "
                      "ids for the sweep: %s", b.removed, us_db_error(db));
    if (b.left)
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, USLOGNO(0308) "delete: %d of %d files' bytes "
                      "left to the trash sweep", b.left, ids->nelts);
}

static int send_null(request_rec *r)
{
    return send_raw(r, HTTP_OK, "null");
}

static us_db_rc delete_query(request_rec *r, const us_srv_conf *c, us_db *db, const char *ws,
                             const char *id, void *baton)
{
    (void)baton;
    us_db_rc drc = us_workspace_file_delete(db, r->pool, ws, id);
    if (drc == US_DB_OK) {
        apr_array_header_t *ids = apr_array_make(r->pool, 1, sizeof(const char *));
        APR_ARRAY_PUSH(ids, const char *) = id;
        remove_bytes(r, c, db, ids);
    }
    return drc;
}

static int null_answer(request_rec *r, const us_srv_conf *c, void *baton)
{
    (void)c;
    (void)baton;
    return send_null(r);
}

int us_api_file_delete(request_rec *r, us_srv_conf *c, const char *ws, const char *raw_id)
{
    static const file_ops ops = { NULL, delete_query, null_answer };
    return with_file_id(r, c, ws, raw_id, &ops, NULL);
}

/* {"names": [...]}: 100,000 names of 40 bytes (US_BODY_MAX_VALUES
 * bounds their number); parsed, a body costs several times its size */
#define US_MAX_NAMES_BODY (4 * 1024 * 1024)
/* 422 items reported for a names list: each costs about 1.4 KiB built */
#define US_MAX_NAME_ERRORS 1000

/* The names of a DELETE /files body ({"names": [str, ...]}), 422 items
 * for what pydantic would refuse (the first US_MAX_NAME_ERRORS of them);
 * *names NULL without a body (all files). */
static int delete_names(request_rec *r, json_t *errs, apr_array_header_t **names)
{
    json_t *body = NULL, *list;
    *names = NULL;
    int rc = us_read_json_object(r, US_MAX_NAMES_BODY,
                                 US_JSON_BODY_OPTIONAL | US_JSON_BODY_FEW_VALUES, errs, &body);
    if (rc != DECLINED || !body) /* answered, or no body */
        return rc;
    if (!(list = us_validate_body_required(errs, body, "names", JSON_ARRAY)))
        return us_send_422(r, errs);
    *names = apr_array_make(r->pool, (int)json_array_size(list) + 1, sizeof(const char *));
    for (size_t i = 0; i < json_array_size(list) && json_array_size(errs) < US_MAX_NAME_ERRORS;
         i++) {
        json_t *v = json_array_get(list, i);
        /* no stored name holds a NUL: such a name matches no file (cut at
         * its NUL, it would name another) */
        if (us_validate_json_type(errs, json_pack("[s,s,I]", "body", "names", (json_int_t)i), v,
                                  JSON_STRING) &&
            !us_json_has_nul(v))
            APR_ARRAY_PUSH(*names, const char *) = apr_pstrdup(r->pool, json_string_value(v));
    }
    return json_array_size(errs) > 0 ? us_send_422(r, errs) : DECLINED;
}

int us_api_files_delete(request_rec *r, us_srv_conf *c, const char *ws)
{
    json_t *errs = us_json_pool_own(r->pool, json_array());
    apr_array_header_t *names = NULL, *deleted = NULL;
    us_db *db;
    int rc;

    if ((rc = delete_names(r, errs, &names)) != DECLINED)
        return rc;
    if (names && names->nelts == 0)
        return send_null(r);
    if (!(db = us_acquire_db(r, c))) /* answered 503/500 already */
        return OK;
    us_db_rc drc = us_workspace_files_delete(db, r->pool, ws, names, &deleted);
    if (drc == US_DB_OK)
        remove_bytes(r, c, db, deleted);
    if ((rc = us_query_done(r, c, db, drc)) != DECLINED)
        return rc;
    return send_null(r);
}

/* ---- PUT/PATCH /files/{id}/meta and POST /files/update-meta ----------------------- */

#define META_SWAP_TRIES 16 /* concurrent updates of one file, each read again */

/* Replaces (merge 0) or merge-patches the metadata of file id with patch;
 * *out the stored result. The store's rc: NOTFOUND, BUSY when other
 * updates kept winning, ... */
static us_db_rc update_meta(request_rec *r, us_db *db, const char *ws, const char *id,
                            const json_t *patch, int merge, const char **out)
{
    us_db_rc rc = US_DB_CONFLICT;
    for (int i = 0; i < META_SWAP_TRIES && rc == US_DB_CONFLICT; i++) {
        us_workspace_file f;
        json_error_t e;
        if ((rc = us_workspace_file_get(db, r->pool, ws, id, &f)) != US_DB_OK)
            return rc;
        json_t *old = merge && f.meta ? us_json_pool_own(r->pool, json_loads(f.meta, JSON_ALLOW_NUL, &e))
                                      : NULL;
        json_t *next = us_json_pool_own(r->pool, merge ? us_json_merge_patch(old, patch)
                                                       : json_deep_copy(patch));
        *out = us_json_dump_pool(r->pool, next);
        rc = us_workspace_file_meta_swap(db, r->pool, ws, id, f.meta, *out);
    }
    return rc == US_DB_CONFLICT ? US_DB_BUSY : rc;
}

/* PUT (merge 0) and PATCH (merge 1) /files/{id}/meta */
typedef struct {
    json_t *body;
    int merge;
    const char *meta; /* the stored result */
} meta_set_ctx;

/* A 422 item for metadata holding U+0000 (loc: where in the body). */
static void refuse_nul(json_t *errs, json_t *loc, const json_t *meta)
{
    json_array_append_new(errs, us_validation_error("value_error", loc, "Value error, " META_NUL_MSG,
                                                    json_deep_copy(meta), NULL));
}

static int meta_set_prepare(request_rec *r, json_t *errs, void *baton)
{
    json_t **body = &((meta_set_ctx *)baton)->body;
    int rc = us_read_json_object(r, US_META_MAX_BYTES, US_JSON_BODY_ITEMS_LATER, errs, body);
    if (rc == DECLINED && *body && us_json_has_nul(*body))
        refuse_nul(errs, json_pack("[s]", "body"), *body);
    return rc;
}

static us_db_rc meta_set_query(request_rec *r, const us_srv_conf *c, us_db *db, const char *ws,
                               const char *id, void *baton)
{
    meta_set_ctx *x = baton;
    (void)c;
    return update_meta(r, db, ws, id, x->body, x->merge, &x->meta);
}

static int meta_set_answer(request_rec *r, const us_srv_conf *c, void *baton)
{
    (void)c;
    return send_raw(r, HTTP_OK, ((const meta_set_ctx *)baton)->meta);
}

int us_api_file_meta_set(request_rec *r, us_srv_conf *c, const char *ws, const char *raw_id,
                         int merge)
{
    static const file_ops ops = { meta_set_prepare, meta_set_query, meta_set_answer };
    meta_set_ctx x = { NULL, merge, NULL };
    return with_file_id(r, c, ws, raw_id, &ops, &x);
}

int us_api_files_update_meta(request_rec *r, us_srv_conf *c, const char *ws)
{
    json_t *errs = us_json_pool_own(r->pool, json_array());
    json_t *body = NULL, *patch;
    const char *key;
    size_t key_len;
    us_db *db;
    int rc;

    if ((rc = us_read_json_object(r, US_META_MAX_BYTES, 0, errs, &body)) != DECLINED)
        return rc;
    /* a key may hold a NUL: it is quoted whole (json_stringn), and is no
     * file id (cut at its NUL, it would name another file) */
    json_object_keylen_foreach(body, key, key_len, patch) {
        if (us_validate_json_type(errs, json_pack("[s,s#]", "body", key, key_len), patch,
                                  JSON_OBJECT) &&
            us_json_has_nul(patch))
            refuse_nul(errs, json_pack("[s,s#]", "body", key, key_len), patch);
    }
    if (json_array_size(errs) > 0)
        return us_send_422(r, errs);
    if (!(db = us_acquire_db(r, c))) /* answered 503/500 already */
        return OK;
    json_t *failed = us_json_pool_own(r->pool, json_array());
    us_db_rc drc = US_DB_OK;
    json_object_keylen_foreach(body, key, key_len, patch) {
        char id[37], reason[160];
        const char *meta;
        us_db_rc one = strlen(key) == key_len && us_uuid_parse(key, id, reason, sizeof(reason))
                           ? update_meta(r, db, ws, id, patch, 1, &meta) : US_DB_NOTFOUND;
        if (one == US_DB_NOTFOUND)
            json_array_append_new(failed, json_pack("{s:s#,s:s,s:o}", "file_id", key, key_len,
                "error_type", "FILE_NOT_FOUND", "error_message", no_file_text(r->pool, key, key_len)));
        else if (one != US_DB_OK) {
            drc = one; /* the store failed: 503/500 (the updates before it stay) */
            break;
        }
    }
    if ((rc = us_query_done(r, c, db, drc)) != DECLINED)
        return rc;
    json_t *out = us_json_pool_own(r->pool, json_pack("{s:I,s:O}", "failed_count",
                                                      (json_int_t)json_array_size(failed),
                                                      "failed_files", failed));
    return send_raw(r, HTTP_OK, us_json_dump_pool(r->pool, out));
}

/*
 * us_files_get.c - GET /files/{id} (the bytes, with a Range) and
 * GET /files/{id}/meta. The bytes are in the file storage (us_storage.h)
 * under the file id.
 */
#include "endpoints.h"
#include "file_endpoint.h"
#include "response.h"
#include "us_filename.h"
#include "us_range.h"
#include "us_storage.h"

#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <apr_buckets.h>
#include <apr_strings.h>
#include <string.h>
#include <strings.h>

APLOG_USE_MODULE(upload_session);

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

/* len bytes of a reader without a local file from off, read and passed in
 * pieces; *began once the first is passed. A read that fails after that
 * (the headers went out with it) is logged and the response cut short
 * (us_abort_response): APR_SUCCESS, it is answered. */
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
            us_abort_response(r);
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
    return us_send_storage_error(r, rv);
}

static int send_blob(request_rec *r, const us_srv_conf *c, const char *ws,
                     const us_workspace_file *f)
{
    us_storage_reader *rd;
    apr_status_t rv = us_storage_file_open(c->storage, r->pool, f->file_id, &rd);
    if (APR_STATUS_IS_ENOENT(rv) && file_deleted(r, c, ws, f->file_id))
        return us_send_detail(r, HTTP_NOT_FOUND, apr_psprintf(r->pool, US_NO_FILE, f->file_id));
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
    return x->meta_only ? us_send_json_text(r, HTTP_OK, us_files_meta_text(r->pool, x->f.meta))
                        : send_blob(r, c, x->ws, &x->f);
}

int us_api_file_get(request_rec *r, us_srv_conf *c, const char *ws, const char *raw_id, int meta_only)
{
    static const us_file_ops ops = { NULL, get_query, get_answer };
    get_ctx x = { .meta_only = meta_only };
    return us_files_with_file_id(r, c, ws, raw_id, &ops, &x);
}

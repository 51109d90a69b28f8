/*
 * us_files_list.c - GET /files: a workspace's ingested files, filtered
 * (OData), sorted, paged by cursor or offset, written in pieces as the
 * page is read.
 */
#include "endpoints.h"
#include "file_endpoint.h"
#include "response.h"
#include "us_json.h"
#include "us_odata.h"
#include "us_time.h"
#include "us_uuid.h"
#include "us_validate.h"

#include <http_log.h>
#include <http_protocol.h>
#include <apr_buckets.h>
#include <apr_strings.h>
#include <string.h>

APLOG_USE_MODULE(upload_session);

/* One item of GET /files, its copies in p; url_prefix:
 * /api/v1/workspaces/<ws>/files/. An item with a name that is not valid
 * UTF-8 is left out, as when json_pack refused it. */
static void write_file(us_json_writer *w, request_rec *r, apr_pool_t *p, const char *url_prefix,
                       const us_workspace_file *f)
{
    char at[US_TS_LEN];
    us_json_write_mark before;
    const char *meta = us_files_meta_text(p, f->meta);

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
            us_abort_response(r);
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
        us_abort_response(r);
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
    us_validate_query_int_from(errs, "page_number", us_query_get(r->pool, r->args, "page_number"),
                               1, 1, &page);
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
    q.offset = after_id ? 0 : (page - 1) > LLONG_MAX / limit ? LLONG_MAX : (page - 1) * limit;
    us_db_rc drc = us_workspace_file_list(db, r->pool, ws, &q, &rows, &total);
    if ((rc = us_query_done(r, c, db, drc)) != DECLINED)
        return rc;
    return send_list(r, c, ws, rows, limit, total);
}

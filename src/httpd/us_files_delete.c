/*
 * us_files_delete.c - DELETE /files/{id} and DELETE /files (by names, or
 * all): the rows go in the store's transaction, the bytes after it
 * (file_bytes.h), what fails left to the trash sweep.
 */
#include "endpoints.h"
#include "file_bytes.h"
#include "file_endpoint.h"
#include "request_body.h"
#include "response.h"
#include "us_json.h"
#include "us_validate.h"

#include <http_log.h>
#include <http_protocol.h>
#include <apr_strings.h>

APLOG_USE_MODULE(upload_session);

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
    return us_send_json_text(r, HTTP_OK, "null");
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
    static const us_file_ops ops = { NULL, delete_query, null_answer };
    return us_files_with_file_id(r, c, ws, raw_id, &ops, NULL);
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

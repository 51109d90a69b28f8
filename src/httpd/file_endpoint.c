/*
 * file_endpoint.c - what the endpoints on workspace files share: the
 * skeleton of an endpoint on one file (its id judged, its query, 404), the
 * stored metadata as answers write it, the 404 text.
 */
#include "file_endpoint.h"
#include "response.h"
#include "us_json.h"
#include "us_validate.h"

#include <http_protocol.h>
#include <apr_strings.h>
#include <string.h>

APLOG_USE_MODULE(upload_session);

/* The stored meta text as the answer writes it: its object in jansson's
 * compact form, "{}" when there is none or it is not a JSON object. */
const char *us_files_meta_text(apr_pool_t *p, const char *text)
{
    json_error_t e;
    if (!text || strcmp(text, "{}") == 0) /* the common cases, without jansson */
        return "{}";
    json_t *j = json_loads(text, JSON_ALLOW_NUL, &e);
    const char *out = json_is_object(j) ? us_json_dump_pool(p, j) : NULL;
    json_decref(j);
    return out ? out : "{}";
}

/* US_NO_FILE of an id that may hold a NUL (a JSON object's key), whole */
json_t *us_files_no_file_text(apr_pool_t *p, const char *id, size_t id_len)
{
    static const char head[] = "There's no file with the ID '", tail[] = "' in the workspace.";
    size_t n = sizeof(head) - 1 + id_len + sizeof(tail) - 1;
    char *text = apr_palloc(p, n);
    memcpy(text, head, sizeof(head) - 1);
    memcpy(text + sizeof(head) - 1, id, id_len);
    memcpy(text + sizeof(head) - 1 + id_len, tail, sizeof(tail) - 1);
    return json_stringn(text, n);
}

/* The skeleton of every endpoint on one file: prepare (a body is read
 * first: FastAPI reports invalid JSON alone, other body items after the
 * path's), the path's file_id (422), the query between us_acquire_db and
 * us_query_done (store failures 503/500), NOTFOUND 404, else the answer. */
int us_files_with_file_id(request_rec *r, us_srv_conf *c, const char *ws, const char *raw_id,
                          const us_file_ops *ops, void *baton)
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
        return us_send_detail(r, HTTP_NOT_FOUND, apr_psprintf(r->pool, US_NO_FILE, id));
    return ops->answer(r, c, baton);
}

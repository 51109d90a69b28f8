/*
 * us_workspaces.c - the workspaces endpoints (glue): create, list, read and
 * delete a workspace (docs/design-workspaces.md). Keys grant names; a
 * workspace row grants nothing.
 */
#include "us_json.h"
#include "us_json_writer.h"
#include "us_router.h"
#include "us_storage.h"
#include "us_uuid.h"
#include "us_validate.h"
#include "endpoints.h"
#include "file_bytes.h"
#include "request_body.h"
#include "response.h"

#include <http_log.h>
#include <http_protocol.h>
#include <apr_strings.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

APLOG_USE_MODULE(upload_session);

#define US_MAX_WORKSPACE_BODY (64 * 1024)
#define NAME_PATTERN "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"

static void write_workspace(us_json_writer *w, const us_workspace *ws)
{
    us_json_write_object_open(w);
    us_json_write_key_string(w, "name", ws->name);
    us_json_write_key_string(w, "workspace_id", ws->workspace_id);
    us_json_write_object_close(w);
}

static int send_workspace(request_rec *r, int status, const us_workspace *ws)
{
    us_json_writer w;
    us_json_write_init(&w, r->pool, 128);
    write_workspace(&w, ws);
    return us_send_json_writer(r, status, &w);
}

static int send_not_found(request_rec *r)
{
    return us_send_detail(r, HTTP_NOT_FOUND, "Workspace not found");
}

/* ---- POST /workspaces ------------------------------------------------------------ */

/* The name of a {"name": "..."} body into *name, or answered (422/400). */
static int body_name(request_rec *r, const char **name)
{
    json_t *errs = us_json_pool_own(r->pool, json_array());
    json_t *body = NULL, *v;
    int rc = us_read_json_object(r, US_MAX_WORKSPACE_BODY, 0, errs, &body);
    if (rc != DECLINED)
        return rc;
    if (!(v = us_validate_body_required(errs, body, "name", JSON_STRING)))
        return us_send_422(r, errs);
    *name = apr_pstrdup(r->pool, json_string_value(v));
    /* characters, not bytes: UTF-8 continuation bytes do not count */
    size_t chars = 0;
    for (const char *s = *name; *s; s++)
        chars += ((unsigned char)*s & 0xC0) != 0x80;
    if (chars <= 3)
        return us_send_detail(r, HTTP_BAD_REQUEST,
            apr_psprintf(r->pool, "The name of the workspace '%s' must contain more than 3 characters. "
                         "Give your workspace a longer name.", *name));
    if (strlen(*name) != json_string_length(v) || !us_workspace_name_valid(*name)) {
        json_array_append_new(errs, us_validation_error("string_pattern_mismatch",
            json_pack("[s,s]", "body", "name"), "String should match pattern '" NAME_PATTERN "'",
            json_deep_copy(v), json_pack("{s:s}", "pattern", NAME_PATTERN)));
        return us_send_422(r, errs);
    }
    return DECLINED;
}

int us_api_workspace_create(request_rec *r, us_srv_conf *c, const us_key *key)
{
    const char *name = NULL;
    char id[37];
    us_db *db;
    int rc;

    if ((rc = body_name(r, &name)) != DECLINED)
        return rc;
    if (!us_key_grants(key, name))
        return us_send_not_granted(r, name);
    if (!(db = us_acquire_db(r, c))) /* answered 503/500 already */
        return OK;
    us_uuid4(id);
    us_db_rc drc = us_workspace_create(db, r->pool, name, id, apr_time_now());
    if ((rc = us_query_done(r, c, db, drc)) != DECLINED)
        return rc;
    if (drc == US_DB_CONFLICT)
        return us_send_detail(r, HTTP_CONFLICT,
            apr_psprintf(r->pool, "This workspace %s already exists. Try giving your new workspace "
                         "a different name.", name));
    us_workspace ws = { name, id, 0 };
    return send_workspace(r, HTTP_CREATED, &ws);
}

/* ---- GET /workspaces and /workspaces/{name} --------------------------------------- */

static int by_name(const void *a, const void *b)
{
    return strcmp(((const us_workspace *)a)->name, ((const us_workspace *)b)->name);
}

int us_api_workspaces_list(request_rec *r, us_srv_conf *c, const us_key *key)
{
    apr_array_header_t *rows = NULL, *names = NULL;
    us_db *db;
    int rc;

    if (!key->all_workspaces) {
        /* each granted name once; a name that cannot be a workspace has none */
        names = apr_array_make(r->pool, key->workspaces->nelts + 1, sizeof(const char *));
        for (int i = 0; i < key->workspaces->nelts; i++) {
            const char *n = APR_ARRAY_IDX(key->workspaces, i, const char *);
            int seen = 0;
            for (int k = 0; k < names->nelts && !seen; k++)
                seen = strcmp(APR_ARRAY_IDX(names, k, const char *), n) == 0;
            if (!seen && us_workspace_name_valid(n))
                APR_ARRAY_PUSH(names, const char *) = n;
        }
    }
    if (!(db = us_acquire_db(r, c))) /* answered 503/500 already */
        return OK;
    us_db_rc drc = us_workspace_list(db, r->pool, names, &rows);
    if ((rc = us_query_done(r, c, db, drc)) != DECLINED)
        return rc;
    if (names && rows->nelts > 1)
        qsort(rows->elts, (size_t)rows->nelts, sizeof(us_workspace), by_name);
    us_json_writer w;
    us_json_write_init(&w, r->pool, 64 + (apr_size_t)rows->nelts * 128);
    us_json_write_array_open(&w);
    for (int i = 0; i < rows->nelts; i++)
        write_workspace(&w, &APR_ARRAY_IDX(rows, i, us_workspace));
    us_json_write_array_close(&w);
    return us_send_json_writer(r, HTTP_OK, &w);
}

int us_api_workspace_get(request_rec *r, us_srv_conf *c, const char *ws)
{
    us_workspace row;
    us_db *db;
    int rc;

    if (!(db = us_acquire_db(r, c))) /* answered 503/500 already */
        return OK;
    us_db_rc drc = us_workspace_get(db, r->pool, ws, &row);
    if ((rc = us_query_done(r, c, db, drc)) != DECLINED)
        return rc;
    return drc == US_DB_OK ? send_workspace(r, HTTP_OK, &row) : send_not_found(r);
}

/* ---- DELETE /workspaces/{name} -------------------------------------------------- */

/* After the store's change: the bytes of the first ids, then their trash
 * entries; the rest (and whatever fails) is left to the trash sweep. */
static void remove_bytes(request_rec *r, const us_srv_conf *c, us_db *db,
                         const apr_array_header_t *ids)
{
    us_file_bytes_result b = us_file_bytes_remove(r, c, db, ids);
    if (b.forgot != US_DB_OK)
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, USLOGNO(0601) "workspace delete: the trash "
                      "keeps %d ids for the sweep: %s", b.removed, us_db_error(db));
    if (b.left)
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, USLOGNO(0602) "workspace delete: %d of %d files' "
                      "bytes left to the trash sweep", b.left, ids->nelts);
}

/* The store deletes everything in one change; the bytes follow: the
 * files' here (a bounded number) and by the trash sweep, the sessions'
 * uploads by the ingest workers' clear jobs - both also after a crash. */
int us_api_workspace_delete(request_rec *r, us_srv_conf *c, const char *ws)
{
    apr_array_header_t *ids = NULL;
    us_db *db;
    int rc;

    if (!(db = us_acquire_db(r, c))) /* answered 503/500 already */
        return OK;
    us_db_rc drc = us_workspace_delete(db, r->pool, ws, apr_time_now(), &ids);
    if (drc == US_DB_OK) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, USLOGNO(0603) "workspace %s deleted (%d files)",
                      ws, ids->nelts);
        remove_bytes(r, c, db, ids);
    }
    if ((rc = us_query_done(r, c, db, drc)) != DECLINED)
        return rc;
    if (drc != US_DB_OK) /* NOTFOUND */
        return send_not_found(r);
    r->status = HTTP_NO_CONTENT;
    ap_set_content_length(r, 0);
    return OK;
}

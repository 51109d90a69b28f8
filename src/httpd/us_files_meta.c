/*
 * us_files_meta.c - PUT and PATCH /files/{id}/meta (replace, merge-patch)
 * and POST /files/update-meta (merge-patch of several files).
 */
#include "endpoints.h"
#include "file_endpoint.h"
#include "request_body.h"
#include "response.h"
#include "us_ingest.h"
#include "us_json.h"
#include "us_uuid.h"
#include "us_validate.h"

#include <http_protocol.h>
#include <apr_strings.h>
#include <string.h>

APLOG_USE_MODULE(upload_session);

#define META_SWAP_TRIES 16 /* concurrent updates of one file, each read again */

/* The largest metadata text stored by a PUT or a merge patch. A body of
 * US_META_MAX_BYTES grows at most 3.8 times written compactly ("1e15," is
 * "1000000000000000.0,"), so a PUT never meets it; patches that keep
 * adding keys would grow a file's metadata without end, and each read of
 * it (GET, every listing of the file) parses it whole. */
#define META_STORED_MAX ((apr_size_t)4 * US_META_MAX_BYTES)
#define META_TOO_LARGE "The metadata is too large."

/* Replaces (merge 0) or merge-patches the metadata of file id with patch;
 * *out (when out is not NULL) the stored result, in r->pool. Each try's
 * reads and trees in a pool of its own, freed when it returns: a bulk
 * update holds one file's at a time. The store's rc: NOTFOUND, BUSY when
 * other updates kept winning, ...; US_DB_LIMIT (nothing stored) when the
 * result would be larger than META_STORED_MAX. */
static us_db_rc update_meta(request_rec *r, us_db *db, const char *ws, const char *id,
                            const json_t *patch, int merge, const char **out)
{
    us_db_rc rc = US_DB_CONFLICT;
    const char *text = NULL;
    apr_pool_t *t;
    apr_pool_create(&t, r->pool);
    for (int i = 0; i < META_SWAP_TRIES && rc == US_DB_CONFLICT; i++) {
        us_workspace_file f;
        json_error_t e;
        apr_pool_clear(t);
        if ((rc = us_workspace_file_get(db, t, ws, id, &f)) != US_DB_OK)
            break;
        json_t *old = merge && f.meta ? us_json_pool_own(t, json_loads(f.meta, JSON_ALLOW_NUL, &e))
                                      : NULL;
        text = us_json_dump_pool(t, merge ? us_json_pool_own(t, us_json_merge_patch(old, patch))
                                          : patch);
        if (!text) { /* out of memory */
            rc = US_DB_ERROR;
            break;
        }
        if (strlen(text) > META_STORED_MAX) {
            rc = US_DB_LIMIT;
            break;
        }
        rc = us_workspace_file_meta_swap(db, t, ws, id, f.meta, text);
    }
    if (rc == US_DB_OK && out)
        *out = apr_pstrdup(r->pool, text);
    apr_pool_destroy(t);
    return rc == US_DB_CONFLICT ? US_DB_BUSY : rc;
}

/* PUT (merge 0) and PATCH (merge 1) /files/{id}/meta */
typedef struct {
    json_t *body;
    int merge;
    const char *meta; /* the stored result; NULL: too large, not stored */
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
    us_db_rc rc = update_meta(r, db, ws, id, x->body, x->merge, &x->meta);
    return rc == US_DB_LIMIT ? US_DB_OK : rc; /* answered 413 */
}

static int meta_set_answer(request_rec *r, const us_srv_conf *c, void *baton)
{
    const char *meta = ((const meta_set_ctx *)baton)->meta;
    (void)c;
    return meta ? us_send_json_text(r, HTTP_OK, meta)
                : us_send_detail(r, HTTP_REQUEST_ENTITY_TOO_LARGE, META_TOO_LARGE);
}

int us_api_file_meta_set(request_rec *r, us_srv_conf *c, const char *ws, const char *raw_id,
                         int merge)
{
    static const us_file_ops ops = { meta_set_prepare, meta_set_query, meta_set_answer };
    meta_set_ctx x = { NULL, merge, NULL };
    return us_files_with_file_id(r, c, ws, raw_id, &ops, &x);
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
        us_db_rc one = strlen(key) == key_len && us_uuid_parse(key, id, reason, sizeof(reason))
                           ? update_meta(r, db, ws, id, patch, 1, NULL) : US_DB_NOTFOUND;
        if (one == US_DB_NOTFOUND)
            json_array_append_new(failed, json_pack("{s:s#,s:s,s:o}", "file_id", key, key_len,
                "error_type", "FILE_NOT_FOUND", "error_message", us_files_no_file_text(r->pool, key, key_len)));
        else if (one == US_DB_LIMIT)
            json_array_append_new(failed, json_pack("{s:s#,s:s,s:s}", "file_id", key, key_len,
                "error_type", "META_TOO_LARGE", "error_message", META_TOO_LARGE));
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
    return us_send_json_text(r, HTTP_OK, us_json_dump_pool(r->pool, out));
}

/*
 * endpoints.h - one function per endpoint, called by dispatch.c once the
 * route is matched and (except for the upload target) the bearer key has
 * been checked.
 */
#ifndef US_ENDPOINTS_H
#define US_ENDPOINTS_H

#include "us_auth.h"
#include "us_module.h"

/* upload sessions (us_sessions.c) */
int us_api_session_create(request_rec *r, us_srv_conf *c, const us_key *key, const char *ws);
int us_api_sessions_list(request_rec *r, us_srv_conf *c, const char *ws);
int us_api_session_get(request_rec *r, us_srv_conf *c, const char *ws, const char *raw_id);
int us_api_session_close(request_rec *r, us_srv_conf *c, const char *ws, const char *raw_id);
int us_api_session_abort(request_rec *r, us_srv_conf *c, const char *ws, const char *raw_id);
int us_api_session_files(request_rec *r, us_srv_conf *c, const char *ws, const char *raw_id);

/* workspace files: us_files_list.c, us_files_get.c, us_files_post.c,
 * us_files_delete.c, us_files_meta.c */
int us_api_files_list(request_rec *r, us_srv_conf *c, const char *ws);
int us_api_file_get(request_rec *r, us_srv_conf *c, const char *ws, const char *raw_id, int meta_only);
int us_api_file_post(request_rec *r, us_srv_conf *c, const char *ws);
int us_api_file_delete(request_rec *r, us_srv_conf *c, const char *ws, const char *raw_id);
int us_api_files_delete(request_rec *r, us_srv_conf *c, const char *ws);
/* PUT (merge 0: replace) and PATCH (merge 1: JSON merge patch) .../meta */
int us_api_file_meta_set(request_rec *r, us_srv_conf *c, const char *ws, const char *raw_id,
                         int merge);
int us_api_files_update_meta(request_rec *r, us_srv_conf *c, const char *ws);

/* workspaces (us_workspaces.c); the list and the create check the key's
 * grants themselves */
int us_api_workspace_create(request_rec *r, us_srv_conf *c, const us_key *key);
int us_api_workspaces_list(request_rec *r, us_srv_conf *c, const us_key *key);
int us_api_workspace_get(request_rec *r, us_srv_conf *c, const char *ws);
int us_api_workspace_delete(request_rec *r, us_srv_conf *c, const char *ws);

/* GET /api/v1/health (us_health.c): no key; 200 when the store and the
 * storage answer, else 503. */
int us_api_health(request_rec *r, us_srv_conf *c);

/* GET /api/v1/openapi.json (us_docs.c): the OpenAPI document, no key. */
int us_api_openapi(request_rec *r);
/* The HTML page at the default documentation_url (us_docs.c), served
 * where us_docs_path() is true: GET and HEAD, else 405. */
#define US_DOCS_PATH "/docs/upload-sessions"
int us_docs_path(const request_rec *r, const us_srv_conf *c);
int us_docs_page(request_rec *r);

/* POST /api/v1/upload_target/{session_id} (us_upload.c): authorised by the
 * signed policy, streams the file part to disk and records it. */
int us_upload_handle(request_rec *r, us_srv_conf *c, const char *session_id);

/* CORS (cors.c), before anything else of an API request: answers a
 * preflight OPTIONS (204, or 403 for an origin not allowed) and returns its
 * result; otherwise sets the CORS headers of the answer to come and returns
 * DECLINED. Nothing when CORS is off. */
int us_cors_request(request_rec *r, const us_srv_conf *c, const us_route *route);

#endif

/*
 * dispatch.c - the request hooks and a matched route to its endpoint:
 * pre_translate_name (JSON 404 for an encoded '/' or NUL in an API path),
 * map_to_storage (no filesystem walk for the API), the handler (route,
 * CORS, method checks, the bearer key; the upload target is authorised by
 * its signed policy instead).
 */
#include "endpoints.h"
#include "hooks.h"
#include "response.h"

#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <apr_strings.h>

#include <string.h>

APLOG_USE_MODULE(upload_session);

/* Bearer key -> user; answers 401 itself (returns non-DECLINED). */
static int authenticate(request_rec *r, us_srv_conf *c, const us_key **key)
{
    const char *token = us_bearer_token(r->pool, apr_table_get(r->headers_in, "Authorization"));
    if (!token) {
        apr_table_setn(r->headers_out, "WWW-Authenticate", "Bearer");
        return us_send_detail(r, HTTP_UNAUTHORIZED, "Not authenticated");
    }
    /* the keys stay valid while the request runs, whatever a reload does */
    us_keys_gen *keys = us_keystore_acquire(c->keys, r->request_time);
    us_keystore_release_with(r->pool, keys);
    *key = us_keyring_lookup(us_keys_gen_ring(keys), token);
    if (!*key || us_key_expired(*key, r->request_time)) {
        /* one line per refused key, with the client's address (httpd adds
         * "[client ADDR:PORT]"), never the key: what fail2ban matches; an
         * expired key gets the unknown key's answer */
        if (*key)
            ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, USLOGNO(0012)
                          "authentication failed: expired API key %s", (*key)->id);
        else
            ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, USLOGNO(0012)
                          "authentication failed: invalid API key");
        *key = NULL;
        apr_table_setn(r->headers_out, "WWW-Authenticate", "Bearer");
        return us_send_detail(r, HTTP_UNAUTHORIZED, "Invalid API key");
    }
    /* the access log's %u */
    r->user = apr_pstrdup(r->pool, (*key)->user_id);
    r->ap_auth_type = "Bearer";
    return DECLINED;
}

/* authenticate, then the workspace of the path: 404 for a name that
 * cannot be one, 403 when the key is not granted it. */
static int authorize(request_rec *r, us_srv_conf *c, const char *ws, const us_key **key)
{
    int rc = authenticate(r, c, key);
    if (rc != DECLINED)
        return rc;
    if (!us_workspace_name_valid(ws))
        return us_send_detail(r, HTTP_NOT_FOUND, "Workspace not found");
    if (!us_key_grants(*key, ws))
        return us_send_not_granted(r, ws);
    return DECLINED;
}

/* FastAPI's answer to a route's path with a '/' added: 307 to the path
 * without it, the query kept, an empty body; before any key is checked. */
static int redirect_without_slash(request_rec *r, us_srv_conf *c)
{
    const char *raw = r->parsed_uri.path;
    size_t len = raw ? strlen(raw) : 0;
    if (len < 2 || raw[len - 1] != '/') /* an encoded '/' last: no such route */
        return us_send_detail(r, HTTP_NOT_FOUND, "Not Found");
    const char *to = apr_pstrcat(r->pool, us_public_base(r, c), apr_pstrndup(r->pool, raw, len - 1),
                                 r->args && *r->args ? "?" : "", r->args ? r->args : "", NULL);
    apr_table_setn(r->headers_out, "Location", to);
    r->status = HTTP_TEMPORARY_REDIRECT;
    ap_set_content_length(r, 0);
    return OK;
}

int us_api_handle(request_rec *r, us_srv_conf *c, const us_route *route)
{
    const us_key *key = NULL;
    int rc;

    if ((rc = us_cors_request(r, c, route)) != DECLINED)
        return rc; /* a preflight: no key */
    if (route->id == US_ROUTE_NOT_FOUND)
        return route->redirect_slash ? redirect_without_slash(r, c)
                                     : us_send_detail(r, HTTP_NOT_FOUND, "Not Found");
    if (!route->method_allowed) {
        apr_table_setn(r->headers_out, "Allow", route->allow);
        return us_send_detail(r, HTTP_METHOD_NOT_ALLOWED, "Method Not Allowed");
    }
    if (route->id == US_ROUTE_HEALTH)
        return us_api_health(r, c); /* for load balancers: no key */
    if (route->id == US_ROUTE_OPENAPI)
        return us_api_openapi(r); /* public, as FastAPI's /openapi.json */
    if (route->id == US_ROUTE_UPLOAD_TARGET)
        return us_upload_handle(r, c, route->session_id); /* the signed policy authorises */
    if (route->id == US_ROUTE_WORKSPACES) { /* the name, if any, is in the body */
        if ((rc = authenticate(r, c, &key)) != DECLINED)
            return rc;
        return r->method_number == M_POST ? us_api_workspace_create(r, c, key)
                                          : us_api_workspaces_list(r, c, key);
    }
    if ((rc = authorize(r, c, route->workspace, &key)) != DECLINED)
        return rc;

    switch (route->id) {
    case US_ROUTE_SESSIONS:
        return r->method_number == M_POST ? us_api_session_create(r, c, key, route->workspace)
                                          : us_api_sessions_list(r, c, route->workspace);
    case US_ROUTE_SESSION:
        if (r->method_number == M_DELETE)
            return us_api_session_abort(r, c, route->workspace, route->session_id);
        return r->method_number == M_PUT ? us_api_session_close(r, c, route->workspace, route->session_id)
                                         : us_api_session_get(r, c, route->workspace, route->session_id);
    case US_ROUTE_SESSION_FILES:
        return us_api_session_files(r, c, route->workspace, route->session_id);
    case US_ROUTE_FILES:
        if (r->method_number == M_DELETE)
            return us_api_files_delete(r, c, route->workspace);
        return r->method_number == M_POST ? us_api_file_post(r, c, route->workspace)
                                          : us_api_files_list(r, c, route->workspace);
    case US_ROUTE_FILE:
        if (r->method_number == M_DELETE)
            return us_api_file_delete(r, c, route->workspace, route->file_id);
        return us_api_file_get(r, c, route->workspace, route->file_id, 0);
    case US_ROUTE_FILE_META:
        if (r->method_number == M_PUT || r->method_number == M_PATCH)
            return us_api_file_meta_set(r, c, route->workspace, route->file_id,
                                        r->method_number == M_PATCH);
        return us_api_file_get(r, c, route->workspace, route->file_id, 1);
    case US_ROUTE_WORKSPACE:
        return r->method_number == M_DELETE ? us_api_workspace_delete(r, c, route->workspace)
                                            : us_api_workspace_get(r, c, route->workspace);
    case US_ROUTE_FILES_UPDATE_META:
        return us_api_files_update_meta(r, c, route->workspace);
    default:
        return us_send_detail(r, HTTP_NOT_FOUND, "Not Found");
    }
}

/* The health check at the server's root too, where load balancers of the
 * real service look for it (API.md, Service endpoints). */
#define ROOT_HEALTH_PATH "/health"

/* API requests map to no file: skip the filesystem walk entirely. */
int us_map_to_storage(request_rec *r)
{
    us_srv_conf *c = us_srv_conf_get(r->server);
    if (!us_srv_enabled(c))
        return DECLINED;
    if (strncmp(r->uri, US_API_PREFIX, sizeof(US_API_PREFIX) - 1) != 0 && !us_docs_path(r, c) &&
        strcmp(r->uri, ROOT_HEALTH_PATH) != 0)
        return DECLINED;
    return OK;
}

/* Set in r->request_config for an API path the core would refuse. */
static const char REFUSED_PATH[] = "refused";

/* The core answers an encoded '/' (AllowEncodedSlashes Off) or NUL in the
 * path with its HTML 404 page while decoding the path, which happens right
 * after this hook. Under the API prefix that answer is the contract's JSON
 * 404: the path is marked, left undecoded (DONE) and the handler answers. */
int us_pre_translate_name(request_rec *r)
{
    us_srv_conf *c = us_srv_conf_get(r->server);
    const core_dir_config *d = ap_get_core_module_config(r->per_dir_config);

    if (!us_srv_enabled(c) || r->proxyreq || !r->parsed_uri.path ||
        !us_raw_path_is_api(r->parsed_uri.path) ||
        !us_path_has_refused_escape(r->parsed_uri.path, !d->allow_encoded_slashes))
        return DECLINED;
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, USLOGNO(0009)
                  "encoded '/' or NUL in the API path (%s): JSON 404", r->unparsed_uri);
    ap_set_module_config(r->request_config, &upload_session_module, (void *)REFUSED_PATH);
    return DONE;
}

int us_handler(request_rec *r)
{
    us_srv_conf *c = us_srv_conf_get(r->server);
    us_route route;

    if (!us_srv_enabled(c))
        return DECLINED;
    if (ap_get_module_config(r->request_config, &upload_session_module) == REFUSED_PATH) {
        memset(&route, 0, sizeof(route));
        route.id = US_ROUTE_NOT_FOUND;
    }
    else {
        us_route_match(r->pool, strcmp(r->uri, ROOT_HEALTH_PATH) == 0
                                    ? US_API_PREFIX ROOT_HEALTH_PATH : r->uri,
                       r->method, &route);
    }
    if (route.id == US_ROUTE_NONE)
        return us_docs_path(r, c) ? us_docs_page(r) : DECLINED;
    apr_time_t start = apr_time_now();
    int rc = us_api_handle(r, c, &route);
    us_metrics_request(us_metrics_here(), us_endpoint_of(&route, r->method_number),
                       apr_time_now() - start);
    return rc;
}

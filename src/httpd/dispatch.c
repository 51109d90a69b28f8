/*
 * dispatch.c - a matched route to its endpoint: method checks, the bearer
 * key (the upload target is authorised by its signed policy instead).
 */
#include "endpoints.h"
#include "response.h"

#include <http_protocol.h>
#include <apr_strings.h>

/* Bearer key -> user; answers 401/403/404 itself (returns non-DECLINED). */
static int authorize(request_rec *r, us_srv_conf *c, const char *ws, const us_key **key)
{
    const char *token = us_bearer_token(r->pool, apr_table_get(r->headers_in, "Authorization"));
    if (!token) {
        apr_table_setn(r->headers_out, "WWW-Authenticate", "Bearer");
        return us_send_detail(r, HTTP_UNAUTHORIZED, "Not authenticated");
    }
    *key = us_keyring_lookup(c->keys, token);
    if (!*key) {
        apr_table_setn(r->headers_out, "WWW-Authenticate", "Bearer");
        return us_send_detail(r, HTTP_UNAUTHORIZED, "Invalid API key");
    }
    if (!us_workspace_name_valid(ws))
        return us_send_detail(r, HTTP_NOT_FOUND, "Workspace not found");
    if (!us_key_grants(*key, ws))
        return us_send_detail(r, HTTP_FORBIDDEN,
                           apr_psprintf(r->pool, "You don't have access to the workspace '%s'.", ws));
    return DECLINED;
}

int us_api_handle(request_rec *r, us_srv_conf *c, const us_route *route)
{
    const us_key *key = NULL;
    int rc;

    if (route->id == US_ROUTE_NOT_FOUND)
        return us_send_detail(r, HTTP_NOT_FOUND, "Not Found");
    if (!route->method_allowed) {
        apr_table_setn(r->headers_out, "Allow", route->allow);
        return us_send_detail(r, HTTP_METHOD_NOT_ALLOWED, "Method Not Allowed");
    }
    if (route->id == US_ROUTE_UPLOAD_TARGET)
        return us_upload_handle(r, c, route->session_id); /* the signed policy authorises */
    if ((rc = authorize(r, c, route->workspace, &key)) != DECLINED)
        return rc;

    switch (route->id) {
    case US_ROUTE_SESSIONS:
        return r->method_number == M_POST ? us_api_session_create(r, c, key, route->workspace)
                                          : us_api_sessions_list(r, c, route->workspace);
    case US_ROUTE_SESSION:
        return r->method_number == M_PUT ? us_api_session_close(r, c, route->workspace, route->session_id)
                                         : us_api_session_get(r, c, route->workspace, route->session_id);
    case US_ROUTE_SESSION_FILES:
        return us_api_session_files(r, c, route->workspace, route->session_id);
    case US_ROUTE_FILES:
        return r->method_number == M_POST ? us_api_file_post(r, c, route->workspace)
                                          : us_api_files_list(r, c, route->workspace);
    case US_ROUTE_FILE:
        return us_api_file_get(r, c, route->workspace, route->file_id, 0);
    case US_ROUTE_FILE_META:
        return us_api_file_get(r, c, route->workspace, route->file_id, 1);
    default:
        return us_send_detail(r, HTTP_NOT_FOUND, "Not Found");
    }
}

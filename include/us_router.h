/*
 * us_router.h - maps a (decoded) request path and method to an API route
 * and its path parameters. Pure: APR pools only.
 */
#ifndef US_ROUTER_H
#define US_ROUTER_H

#include <apr_pools.h>

#define US_API_PREFIX "/api/v1"

typedef enum {
    US_ROUTE_NONE = 0,       /* not under the API prefix: not ours */
    US_ROUTE_NOT_FOUND,      /* under the prefix, no such route: 404 JSON */
    US_ROUTE_SESSIONS,       /* /workspaces/{ws}/upload_sessions */
    US_ROUTE_SESSION,        /* /workspaces/{ws}/upload_sessions/{session_id} */
    US_ROUTE_SESSION_FILES,  /* /workspaces/{ws}/upload_sessions/{session_id}/files */
    US_ROUTE_UPLOAD_TARGET,  /* /upload_target/{session_id}: S3-style POST, no bearer key */
    US_ROUTE_FILES,          /* /workspaces/{ws}/files */
    US_ROUTE_FILE,           /* /workspaces/{ws}/files/{file_id} */
    US_ROUTE_FILE_META,      /* /workspaces/{ws}/files/{file_id}/meta */
    US_ROUTE_FILES_UPDATE_META, /* /workspaces/{ws}/files/update-meta */
    US_ROUTE_WORKSPACES,     /* /workspaces */
    US_ROUTE_WORKSPACE,      /* /workspaces/{ws} */
    US_ROUTE_HEALTH,         /* /health: no key, for load balancers */
    US_ROUTE_OPENAPI         /* /openapi.json: the OpenAPI document, no key */
} us_route_id;

typedef struct {
    us_route_id id;
    int method_allowed;      /* 0: answer 405 with `allow` */
    const char *allow;       /* Allow header value of the route */
    const char *workspace;   /* decoded segment, or NULL */
    const char *session_id;  /* decoded segment, not yet validated */
    const char *file_id;     /* likewise */
    /* with US_ROUTE_NOT_FOUND: the path without its trailing '/' is a route
     * (any method), where FastAPI answers 307 (redirect_slashes); allow is
     * then that route's (a CORS preflight names its methods) */
    int redirect_slash;
} us_route;

/* path: r->uri (already percent-decoded by httpd). method: "GET", ... */
void us_route_match(apr_pool_t *p, const char *path, const char *method,
                    us_route *out);

/* 1 when path is US_API_PREFIX itself or lies under it ("/api/v1/..."). */
int us_path_is_api(const char *path);

/* The same for a path not yet percent-decoded: "/api/v1%2F..." and
 * "/api/v1%00..." decode to "/api/v1/..." and "/api/v1<NUL>...". */
int us_raw_path_is_api(const char *raw);

/* 1 when httpd's core would refuse path (not yet percent-decoded) with a 404
 * while decoding it: an escape of NUL, or of '/' when slashes_refused
 * (AllowEncodedSlashes Off). 0 otherwise, also when a malformed escape makes
 * the core answer 400 instead. */
int us_path_has_refused_escape(const char *path, int slashes_refused);

/* Workspace names: [A-Za-z0-9][A-Za-z0-9_.-]{0,63} */
int us_workspace_name_valid(const char *name);

/* Value of query parameter `name` in a raw query string (r->args), decoded
 * like Starlette does (`+` is a space, %XX escapes; a malformed escape is
 * kept as is; ill-formed UTF-8 is read as U+FFFD, errors="replace"). When
 * repeated, the last one wins. NULL when absent. */
const char *us_query_get(apr_pool_t *p, const char *args, const char *name);

#endif

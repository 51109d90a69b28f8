/*
 * us_cors.h - CORS for browser clients: which origins may read the API's
 * answers, and the header lists a preflight and an answer carry. Pure:
 * APR pools only; the httpd glue sets the headers.
 */
#ifndef US_CORS_H
#define US_CORS_H

#include <apr_pools.h>
#include <apr_tables.h>

/* Request headers a preflight always allows: what the API's clients send
 * beyond the CORS-safelisted ones. */
#define US_CORS_ALLOW_HEADERS "Authorization, Content-Type, Accept, X-Requested-With"
/* Response headers a script may always read: the ones the module sends. */
#define US_CORS_EXPOSE_HEADERS "Retry-After, Location, Content-Disposition, WWW-Authenticate, Allow"
#define US_CORS_DEFAULT_MAX_AGE 600
#define US_CORS_MAX_MAX_AGE 86400

/* What one server answers; built once from its directives. */
typedef struct {
    int any;                          /* '*': every origin, without credentials */
    apr_array_header_t *origins;      /* const char *, normalized (us_cors_origin_normalize) */
    const char *allow_headers;        /* Access-Control-Allow-Headers */
    const char *expose_headers;       /* Access-Control-Expose-Headers */
    const char *max_age;              /* Access-Control-Max-Age, decimal seconds */
} us_cors_policy;

/* An origin as browsers serialize it: "scheme://host[:port]", scheme http or
 * https, scheme and host in lower case, the scheme's default port dropped.
 * NULL when text is not such an origin (a path, a trailing '/', user info,
 * a query, "null"). */
const char *us_cors_origin_normalize(apr_pool_t *p, const char *text);

/* 1 when name is an HTTP header name (an RFC 9110 token). */
int us_cors_header_name_valid(const char *name);

/* Appends name to list (const char *) unless it is there already, in any
 * case; returns 0, or -1 when name is not a header name. */
int us_cors_list_add(apr_array_header_t *list, const char *name);

/* defaults ("A, B") followed by the names of extra not among them, joined
 * with ", ". extra may be NULL. */
const char *us_cors_list_join(apr_pool_t *p, const char *defaults,
                              const apr_array_header_t *extra);

/* The policy of a server: NULL (CORS off) when neither any nor an origin is
 * given. allow_extra and expose_extra (const char *, may be NULL) add to the
 * defaults; max_age < 0 takes US_CORS_DEFAULT_MAX_AGE. */
us_cors_policy *us_cors_policy_make(apr_pool_t *p, int any, const apr_array_header_t *origins,
                                    const apr_array_header_t *allow_extra,
                                    const apr_array_header_t *expose_extra, int max_age);

/* Access-Control-Allow-Origin for a request's Origin header: "*" when every
 * origin is allowed, origin itself when it is listed, NULL when it is not
 * (or absent, or not an origin). */
const char *us_cors_allow_origin(apr_pool_t *p, const us_cors_policy *policy, const char *origin);

#endif

/*
 * cors.c - CORS for browser clients: a preflight OPTIONS answered 204
 * without a key, and the CORS headers of every other API answer. They go
 * into err_headers_out, which httpd sends with normal answers and keeps
 * for the error documents it makes itself, so no error path can drop them.
 */
#include "endpoints.h"
#include "response.h"

#include <http_log.h>
#include <http_protocol.h>
#include <apr_strings.h>

APLOG_USE_MODULE(upload_session);

/* What a preflight on a path with no route may ask for: the API's methods,
 * so that the browser goes on to read the 404. */
#define ANY_ROUTE_METHODS "GET, HEAD, POST, PUT"

int us_cors_request(request_rec *r, const us_srv_conf *c, const us_route *route)
{
    const us_cors_policy *cors = c->cors;
    if (!cors)
        return DECLINED;
    const char *origin = apr_table_get(r->headers_in, "Origin");
    int preflight = r->method_number == M_OPTIONS && origin &&
                    apr_table_get(r->headers_in, "Access-Control-Request-Method");
    const char *allow = us_cors_allow_origin(r->pool, cors, origin);

    /* the answer depends on Origin unless every origin gets the same */
    if (!cors->any)
        apr_table_mergen(r->err_headers_out, "Vary", "Origin");
    if (!allow) {
        if (!preflight)
            return DECLINED;
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, USLOGNO(0501)
                      "CORS preflight refused: origin %s is not allowed", origin);
        return us_send_detail(r, HTTP_FORBIDDEN, "CORS origin not allowed");
    }
    apr_table_setn(r->err_headers_out, "Access-Control-Allow-Origin", allow);
    if (!preflight) {
        apr_table_setn(r->err_headers_out, "Access-Control-Expose-Headers", cors->expose_headers);
        return DECLINED;
    }
    apr_table_setn(r->err_headers_out, "Access-Control-Allow-Methods",
                   route->allow ? route->allow : ANY_ROUTE_METHODS);
    apr_table_setn(r->err_headers_out, "Access-Control-Allow-Headers", cors->allow_headers);
    apr_table_setn(r->err_headers_out, "Access-Control-Max-Age", cors->max_age);
    r->status = HTTP_NO_CONTENT;
    ap_set_content_length(r, 0);
    return OK;
}

/*
 * us_docs.c - the API's own documentation: GET /api/v1/openapi.json (the
 * OpenAPI 3.1 document, no key) and the human page at the default
 * documentation_url, /docs/upload-sessions. Both are docs/openapi.json and
 * docs/upload-sessions.html of the source tree, compiled in by the Makefile
 * (us_docs_data.h, generated) so the module and the files cannot disagree.
 */
#include "endpoints.h"
#include "response.h"

#include <http_protocol.h>
#include <string.h>

#include "us_docs_data.h"

static int send_static(request_rec *r, const char *type, const char *body, size_t len)
{
    r->status = HTTP_OK;
    ap_set_content_type(r, type);
    ap_set_content_length(r, (apr_off_t)len);
    if (!r->header_only)
        ap_rwrite(body, (int)len, r);
    return OK;
}

int us_api_openapi(request_rec *r)
{
    return send_static(r, "application/json", (const char *)US_OPENAPI_JSON,
                       sizeof(US_OPENAPI_JSON) - 1);
}

int us_docs_path(const request_rec *r, const us_srv_conf *c)
{
    /* only while documentation_url points here: an operator who set his
     * own keeps whatever this path is in his server */
    return !c->doc_url && strcmp(r->uri, US_DOCS_PATH) == 0;
}

int us_docs_page(request_rec *r)
{
    if (r->method_number != M_GET) {
        apr_table_setn(r->headers_out, "Allow", "GET, HEAD");
        return us_send_detail(r, HTTP_METHOD_NOT_ALLOWED, "Method Not Allowed");
    }
    return send_static(r, "text/html; charset=utf-8", (const char *)US_DOCS_HTML,
                       sizeof(US_DOCS_HTML) - 1);
}

/* us_router.c - API routing and query-string access (pure). */
#include "us_router.h"
#include "us_crypto.h"
#include "us_utf8.h"

#include <apr_strings.h>
#include <string.h>

typedef struct {
    us_route_id id;
    const char *pattern;   /* segments after the prefix; "{}" = parameter */
    const char *methods;   /* space separated, as matched */
    const char *allow;     /* what a 405 advertises */
} route_def;

/* As Starlette routes: the first pattern that matches the path and allows
 * the method serves the request; else the first that matches the path
 * answers 405. Only update-meta overlaps (files/{} matches it too). */
static const route_def ROUTES[] = {
    { US_ROUTE_SESSIONS, "workspaces/{}/upload_sessions", "GET HEAD POST", "GET, HEAD, POST" },
    { US_ROUTE_SESSION, "workspaces/{}/upload_sessions/{}", "GET HEAD PUT DELETE",
      "GET, HEAD, PUT, DELETE" },
    { US_ROUTE_SESSION_FILES, "workspaces/{}/upload_sessions/{}/files", "GET HEAD", "GET, HEAD" },
    { US_ROUTE_UPLOAD_TARGET, "upload_target/{}", "POST", "POST" },
    { US_ROUTE_FILES, "workspaces/{}/files", "GET HEAD POST DELETE", "GET, HEAD, POST, DELETE" },
    /* before files/{}: a literal segment wins for POST; GET and DELETE
     * are files/{}'s, whose id then fails to parse (422) */
    { US_ROUTE_FILES_UPDATE_META, "workspaces/{}/files/update-meta", "POST", "POST" },
    { US_ROUTE_FILE, "workspaces/{}/files/{}", "GET HEAD DELETE", "GET, HEAD, DELETE" },
    { US_ROUTE_FILE_META, "workspaces/{}/files/{}/meta", "GET HEAD PUT PATCH",
      "GET, HEAD, PUT, PATCH" },
    { US_ROUTE_WORKSPACES, "workspaces", "GET HEAD POST", "GET, HEAD, POST" },
    { US_ROUTE_WORKSPACE, "workspaces/{}", "GET HEAD DELETE", "GET, HEAD, DELETE" },
    { US_ROUTE_HEALTH, "health", "GET HEAD", "GET, HEAD" },
    { US_ROUTE_OPENAPI, "openapi.json", "GET HEAD", "GET, HEAD" },
};

/* Splits "a/b/c" into at most max segments; returns the count or -1 when
 * there are more, or when a segment is empty ("a//b", trailing "/"). */
static int split_path(char *s, char **segs, int max)
{
    int n = 0;
    for (;;) {
        char *slash = strchr(s, '/');
        if (n == max)
            return -1;
        if (slash)
            *slash = '\0';
        if (*s == '\0')
            return -1;
        segs[n++] = s;
        if (!slash)
            return n;
        s = slash + 1;
    }
}

static int method_in(const char *method, const char *list)
{
    size_t len = strlen(method);
    const char *p = list;
    while ((p = strstr(p, method)) != NULL) {
        if ((p == list || p[-1] == ' ') && (p[len] == ' ' || p[len] == '\0'))
            return 1;
        p += len;
    }
    return 0;
}

/* Matches segs against one pattern, collecting up to two parameters. */
static int match_pattern(const char *pattern, char **segs, int nsegs,
                         const char **params)
{
    char buf[128];
    char *psegs[8];
    int np, nparams = 0;

    apr_cpystrn(buf, pattern, sizeof(buf));
    np = split_path(buf, psegs, 8);
    if (np != nsegs)
        return 0;
    for (int i = 0; i < np; i++) {
        if (strcmp(psegs[i], "{}") == 0)
            params[nparams++] = segs[i];
        else if (strcmp(psegs[i], segs[i]) != 0)
            return 0;
    }
    return 1;
}

int us_path_is_api(const char *path)
{
    const size_t plen = sizeof(US_API_PREFIX) - 1;
    return strncmp(path, US_API_PREFIX, plen) == 0 &&
           (path[plen] == '/' || path[plen] == '\0');
}

int us_raw_path_is_api(const char *raw)
{
    const size_t plen = sizeof(US_API_PREFIX) - 1;
    if (us_path_is_api(raw))
        return 1;
    return strncmp(raw, US_API_PREFIX, plen) == 0 && raw[plen] == '%' &&
           ((raw[plen + 1] == '2' && (raw[plen + 2] == 'F' || raw[plen + 2] == 'f')) ||
            (raw[plen + 1] == '0' && raw[plen + 2] == '0'));
}

static void match_path(apr_pool_t *p, const char *path, const char *method,
                       us_route *out)
{
    const size_t plen = sizeof(US_API_PREFIX) - 1;
    char *segs[8];
    int nsegs;

    memset(out, 0, sizeof(*out));
    if (!us_path_is_api(path))
        return; /* US_ROUTE_NONE */
    out->id = US_ROUTE_NOT_FOUND;
    if (path[plen] == '\0')
        return;
    nsegs = split_path(apr_pstrdup(p, path + plen + 1), segs, 8);
    if (nsegs < 0)
        return;
    us_route partial; /* the first pattern matching the path alone */
    memset(&partial, 0, sizeof(partial));
    partial.id = US_ROUTE_NOT_FOUND;
    for (size_t i = 0; i < sizeof(ROUTES) / sizeof(ROUTES[0]); i++) {
        const char *params[2] = { NULL, NULL };
        if (!match_pattern(ROUTES[i].pattern, segs, nsegs, params))
            continue;
        us_route *to = out;
        int allowed = method_in(method, ROUTES[i].methods);
        if (!allowed) {
            if (partial.id != US_ROUTE_NOT_FOUND)
                continue;
            to = &partial;
        }
        to->id = ROUTES[i].id;
        to->allow = ROUTES[i].allow;
        to->method_allowed = allowed;
        if (to->id == US_ROUTE_UPLOAD_TARGET) {
            to->session_id = params[0];
        }
        else if (to->id == US_ROUTE_FILE || to->id == US_ROUTE_FILE_META) {
            to->workspace = params[0];
            to->file_id = params[1];
        }
        else {
            to->workspace = params[0];
            to->session_id = params[1];
        }
        if (allowed)
            return;
    }
    if (partial.id != US_ROUTE_NOT_FOUND)
        *out = partial;
}

static int is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

int us_workspace_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 64 || !is_alnum(name[0]))
        return 0;
    for (size_t i = 1; i < n; i++) {
        char c = name[i];
        if (!is_alnum(c) && c != '_' && c != '.' && c != '-')
            return 0;
    }
    return 1;
}

int us_path_has_refused_escape(const char *path, int slashes_refused)
{
    int refused = 0;
    for (const char *s = strchr(path, '%'); s; s = strchr(s, '%')) {
        int c = us_hex_byte(s + 1);
        if (c < 0)
            return 0;
        if (c == 0 || (c == '/' && slashes_refused))
            refused = 1;
        s += 3;
    }
    return refused;
}

/* Decodes s[0..len) into a new string: '+' -> ' ', %XX -> byte. %00
 * stays the three characters: a NUL would end the C string there, and a
 * value cut short ("5%00abc" read as 5) or a key ("limit%00x" read as
 * limit) would be taken for another; as text, the value's validator
 * refuses it and the key matches no parameter. */
static char *form_decode(apr_pool_t *p, const char *s, size_t len)
{
    char *out = apr_palloc(p, len + 1), *o = out;
    int c;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '+') {
            *o++ = ' ';
        }
        else if (s[i] == '%' && i + 2 < len && (c = us_hex_byte(s + i + 1)) > 0) {
            *o++ = (char)c;
            i += 2;
        }
        else {
            *o++ = s[i];
        }
    }
    *o = '\0';
    return out;
}

const char *us_query_get(apr_pool_t *p, const char *args, const char *name)
{
    const char *found = NULL;
    size_t found_len = 0;
    const char *s = args;

    if (!args)
        return NULL;
    while (*s) {
        const char *amp = strchr(s, '&');
        size_t len = amp ? (size_t)(amp - s) : strlen(s);
        const char *eq = memchr(s, '=', len);
        size_t klen = eq ? (size_t)(eq - s) : len;
        char *key = form_decode(p, s, klen);
        if (strcmp(key, name) == 0) {
            found = eq ? eq + 1 : s + len;
            found_len = eq ? len - klen - 1 : 0;
        }
        if (!amp)
            break;
        s = amp + 1;
    }
    if (!found)
        return NULL;
    /* Starlette reads a query's bytes as UTF-8 with errors="replace": an
     * ill-formed byte is U+FFFD, never a byte a store refuses */
    const char *bytes = form_decode(p, found, found_len);
    size_t n = strlen(bytes);
    if (us_utf8_valid_n(bytes, n))
        return bytes;
    char *text = apr_palloc(p, 3 * n + 1);
    us_utf8_replace(bytes, n, text);
    return text;
}

/* Starlette's redirect_slashes: a path that matches no route but would
 * without its one trailing '/' (whatever the method) is redirected there. */
void us_route_match(apr_pool_t *p, const char *path, const char *method,
                    us_route *out)
{
    match_path(p, path, method, out);
    size_t len = strlen(path);
    if (out->id != US_ROUTE_NOT_FOUND || len < 2 || path[len - 1] != '/')
        return;
    us_route bare;
    match_path(p, apr_pstrndup(p, path, len - 1), method, &bare);
    out->redirect_slash = bare.id != US_ROUTE_NONE && bare.id != US_ROUTE_NOT_FOUND;
    if (out->redirect_slash) /* a preflight there names the route's methods */
        out->allow = bare.allow;
}

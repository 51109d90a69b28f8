/* us_cors.c - CORS origin matching and header lists (pure). */
#include "us_cors.h"

#include <apr_strings.h>
#include <ctype.h>
#include <string.h>
#include <strings.h>

static int is_tchar(unsigned char c)
{
    return isalnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

int us_cors_header_name_valid(const char *name)
{
    if (!name || !*name)
        return 0;
    for (const unsigned char *s = (const unsigned char *)name; *s; s++)
        if (!is_tchar(*s))
            return 0;
    return 1;
}

/* host: a DNS name or IPv4 address (letters, digits, '-', '.'), or an IPv6
 * address in brackets. Its length, or 0 when it is neither. */
static size_t host_len(const char *s)
{
    size_t n = 0;
    if (*s == '[') {
        n = 1;
        while (s[n] && (isxdigit((unsigned char)s[n]) || s[n] == ':' || s[n] == '.'))
            n++;
        return s[n] == ']' && n > 1 ? n + 1 : 0;
    }
    while (isalnum((unsigned char)s[n]) || s[n] == '-' || s[n] == '.')
        n++;
    if (n == 0 || s[0] == '.' || s[0] == '-' || s[n - 1] == '.')
        return 0;
    return n;
}

const char *us_cors_origin_normalize(apr_pool_t *p, const char *text)
{
    const char *rest, *scheme, *default_port;
    if (!text)
        return NULL;
    if (strncasecmp(text, "http://", 7) == 0) {
        scheme = "http://";
        rest = text + 7;
        default_port = "80";
    }
    else if (strncasecmp(text, "https://", 8) == 0) {
        scheme = "https://";
        rest = text + 8;
        default_port = "443";
    }
    else {
        return NULL;
    }
    size_t hl = host_len(rest);
    if (hl == 0 || hl > 253)
        return NULL;
    const char *port = rest + hl;
    if (*port == ':') {
        port++;
        size_t pl = strspn(port, "0123456789");
        if (pl == 0 || pl > 5 || port[pl] || apr_atoi64(port) < 1 || apr_atoi64(port) > 65535)
            return NULL;
        while (*port == '0')
            port++;
    }
    else if (*port) {
        return NULL; /* a path, a query, user info: not an origin */
    }
    else {
        port = NULL;
    }
    if (port && strcmp(port, default_port) == 0)
        port = NULL;
    char *out = apr_pstrcat(p, scheme, apr_pstrmemdup(p, rest, hl), port ? ":" : "",
                            port ? port : "", NULL);
    for (char *c = out; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    return out;
}

int us_cors_list_add(apr_array_header_t *list, const char *name)
{
    if (!us_cors_header_name_valid(name))
        return -1;
    for (int i = 0; i < list->nelts; i++)
        if (strcasecmp(APR_ARRAY_IDX(list, i, const char *), name) == 0)
            return 0;
    APR_ARRAY_PUSH(list, const char *) = name;
    return 0;
}

/* 1 when name is one of the comma-separated names of list, in any case. */
static int in_joined(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *s = list; *s;) {
        while (*s == ' ' || *s == ',')
            s++;
        size_t l = strcspn(s, ", ");
        if (l == n && strncasecmp(s, name, n) == 0)
            return 1;
        s += l;
    }
    return 0;
}

const char *us_cors_list_join(apr_pool_t *p, const char *defaults,
                              const apr_array_header_t *extra)
{
    const char *out = defaults;
    for (int i = 0; extra && i < extra->nelts; i++) {
        const char *name = APR_ARRAY_IDX(extra, i, const char *);
        if (!in_joined(out, name))
            out = *out ? apr_pstrcat(p, out, ", ", name, NULL) : name;
    }
    return out;
}

us_cors_policy *us_cors_policy_make(apr_pool_t *p, int any, const apr_array_header_t *origins,
                                    const apr_array_header_t *allow_extra,
                                    const apr_array_header_t *expose_extra, int max_age)
{
    if (!any && (!origins || origins->nelts == 0))
        return NULL;
    us_cors_policy *c = apr_pcalloc(p, sizeof(*c));
    c->any = any;
    c->origins = apr_array_make(p, origins ? origins->nelts : 0, sizeof(const char *));
    for (int i = 0; origins && i < origins->nelts; i++) {
        const char *o = us_cors_origin_normalize(p, APR_ARRAY_IDX(origins, i, const char *));
        if (o)
            APR_ARRAY_PUSH(c->origins, const char *) = o;
    }
    c->allow_headers = us_cors_list_join(p, US_CORS_ALLOW_HEADERS, allow_extra);
    c->expose_headers = us_cors_list_join(p, US_CORS_EXPOSE_HEADERS, expose_extra);
    c->max_age = apr_itoa(p, max_age < 0 ? US_CORS_DEFAULT_MAX_AGE : max_age);
    return c;
}

const char *us_cors_allow_origin(apr_pool_t *p, const us_cors_policy *policy, const char *origin)
{
    if (!policy || !origin)
        return NULL;
    if (policy->any)
        return "*";
    const char *o = us_cors_origin_normalize(p, origin);
    if (!o)
        return NULL;
    for (int i = 0; i < policy->origins->nelts; i++)
        if (strcmp(APR_ARRAY_IDX(policy->origins, i, const char *), o) == 0)
            return origin;
    return NULL;
}

/* us_sigv4.c - AWS Signature Version 4: requests and presigned URLs
 * (pure; the POST policy is src/core/us_sigv4_post.c). */
#include "us_sigv4.h"
#include "us_crypto.h"

#include <apr_strings.h>
#include <apr_tables.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#define ALGORITHM "AWS4-HMAC-SHA256"
#define DATE_LEN 16 /* 20130524T000000Z */

static int unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.' || c == '_' || c == '~';
}

static const char *encode_n(apr_pool_t *p, const char *s, size_t n, int keep_slash)
{
    static const char HEX[] = "0123456789ABCDEF";
    char *out = apr_palloc(p, 3 * n + 1), *o = out;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (unreserved(c) || (keep_slash && c == '/')) {
            *o++ = (char)c;
        } else {
            *o++ = '%';
            *o++ = HEX[c >> 4];
            *o++ = HEX[c & 15];
        }
    }
    *o = '\0';
    return out;
}

const char *us_sigv4_uri_encode(apr_pool_t *p, const char *s, int keep_slash)
{
    return encode_n(p, s, strlen(s), keep_slash);
}

/* s[0..n) percent-decoded then encoded the canonical way; NULL when a
 * '%' is not followed by two hex digits. */
static const char *reencode(apr_pool_t *p, const char *s, size_t n)
{
    char *raw = apr_palloc(p, n + 1);
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            raw[len++] = s[i];
            continue;
        }
        int hi = i + 2 < n ? us_hex_value((unsigned char)s[i + 1]) : -1;
        int lo = i + 2 < n ? us_hex_value((unsigned char)s[i + 2]) : -1;
        if (hi < 0 || lo < 0)
            return NULL;
        raw[len++] = (char)(hi * 16 + lo);
        i += 2;
    }
    return encode_n(p, raw, len, 0);
}

typedef struct {
    const char *name;
    const char *value;
} pair;

static int pair_cmp(const void *a, const void *b)
{
    const pair *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->value, y->value);
}

/* name=value pairs of query sorted by name, then value, each encoded; "" for
 * none, NULL when malformed. */
static const char *canonical_query(apr_pool_t *p, const char *query)
{
    if (!query || !*query)
        return "";
    size_t cap = 1;
    for (const char *q = query; *q; q++)
        cap += *q == '&';
    pair *pairs = apr_pcalloc(p, cap * sizeof(pair));
    size_t n = 0;
    const char *s = query;
    while (*s) {
        size_t len = strcspn(s, "&");
        if (len) {
            const char *eq = memchr(s, '=', len);
            size_t nlen = eq ? (size_t)(eq - s) : len;
            pairs[n].name = reencode(p, s, nlen);
            pairs[n].value = eq ? reencode(p, eq + 1, len - nlen - 1) : "";
            if (!pairs[n].name || !pairs[n].value)
                return NULL;
            n++;
        }
        s += len;
        if (*s == '&')
            s++;
    }
    qsort(pairs, n, sizeof(pair), pair_cmp);
    apr_array_header_t *parts = apr_array_make(p, (int)n, sizeof(const char *));
    for (size_t i = 0; i < n; i++)
        APR_ARRAY_PUSH(parts, const char *) = apr_pstrcat(p, pairs[i].name, "=", pairs[i].value, NULL);
    return apr_array_pstrcat(p, parts, '&');
}

static int header_name_ok(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= ' ' || c >= 0x7f || c == ':')
            return 0;
    }
    return 1;
}

/* value trimmed, runs of spaces and tabs inside as one space */
static const char *header_value(apr_pool_t *p, const char *v)
{
    char *out = apr_palloc(p, strlen(v) + 1), *o = out;
    int space = 0;
    while (*v == ' ' || *v == '\t')
        v++;
    for (; *v; v++) {
        if (*v == ' ' || *v == '\t') {
            space = 1;
            continue;
        }
        if (space && o != out)
            *o++ = ' ';
        space = 0;
        *o++ = *v;
    }
    *o = '\0';
    return out;
}

static int name_cmp(const void *a, const void *b)
{
    const pair *x = a, *y = b;
    return strcmp(x->name, y->name);
}

/* "host:...\n..." and "host;..." of the headers; 0 when a name is malformed */
static int canonical_headers(apr_pool_t *p, const us_sigv4_header *h, int n,
                             const char **block, const char **names)
{
    pair *hs = apr_pcalloc(p, (size_t)(n > 0 ? n : 1) * sizeof(pair));
    for (int i = 0; i < n; i++) {
        if (!h[i].name || !h[i].value || !header_name_ok(h[i].name))
            return 0;
        char *lower = apr_pstrdup(p, h[i].name);
        for (char *c = lower; *c; c++)
            if (*c >= 'A' && *c <= 'Z')
                *c = (char)(*c - 'A' + 'a');
        hs[i].name = lower;
        hs[i].value = header_value(p, h[i].value);
    }
    /* equal names keep their order, their values joined by commas */
    for (int i = 1; i < n; i++) {
        pair cur = hs[i];
        int j = i - 1;
        while (j >= 0 && name_cmp(&hs[j], &cur) > 0) {
            hs[j + 1] = hs[j];
            j--;
        }
        hs[j + 1] = cur;
    }
    const char *b = "", *s = "";
    for (int i = 0; i < n; i++) {
        if (i && strcmp(hs[i].name, hs[i - 1].name) == 0) {
            /* replace the previous line's end with ",value\n" */
            b = apr_pstrcat(p, apr_pstrmemdup(p, b, strlen(b) - 1), ",", hs[i].value, "\n",
                            NULL);
            continue;
        }
        b = apr_pstrcat(p, b, hs[i].name, ":", hs[i].value, "\n", NULL);
        s = apr_pstrcat(p, s, *s ? ";" : "", hs[i].name, NULL);
    }
    *block = b;
    *names = s;
    return 1;
}

const char *us_sigv4_scope(apr_pool_t *p, const us_sigv4_credentials *c, const char *amz_date)
{
    return apr_pstrcat(p, apr_pstrmemdup(p, amz_date, 8), "/", c->region, "/", c->service,
                       "/aws4_request", NULL);
}

const char *us_sigv4_signature(apr_pool_t *p, const us_sigv4_credentials *c,
                               const char *amz_date, const char *string_to_sign)
{
    unsigned char k[US_SHA256_LEN];
    char day[9], sig[65];
    const char *secret = apr_pstrcat(p, "AWS4", c->secret_key, NULL);
    const char *steps[] = { day, c->region, c->service, "aws4_request" };
    int ok;

    apr_cpystrn(day, amz_date, sizeof(day));
    ok = us_hmac_sha256((const unsigned char *)secret, strlen(secret), steps[0],
                        strlen(steps[0]), k);
    for (int i = 1; ok && i < 4; i++)
        ok = us_hmac_sha256(k, sizeof(k), steps[i], strlen(steps[i]), k);
    ok = ok && us_hmac_sha256(k, sizeof(k), string_to_sign, strlen(string_to_sign), k);
    if (ok)
        us_hex(k, sizeof(k), sig);
    OPENSSL_cleanse(k, sizeof(k));
    return ok ? apr_pstrdup(p, sig) : "";
}

int us_sigv4_sign_request(apr_pool_t *p, const us_sigv4_credentials *c, const char *amz_date,
                          const us_sigv4_request *req, us_sigv4_signed *out)
{
    const char *query, *block, *names;
    unsigned char digest[US_SHA256_LEN];
    char hex[2 * US_SHA256_LEN + 1];

    memset(out, 0, sizeof(*out));
    if (!amz_date || strlen(amz_date) != DATE_LEN)
        return 0;
    if (!(query = canonical_query(p, req->query)))
        return 0;
    if (!canonical_headers(p, req->headers, req->nheaders, &block, &names))
        return 0;
    out->signed_headers = names;
    out->canonical_request = apr_pstrcat(p, req->method, "\n",
                                         req->path && *req->path ? req->path : "/", "\n",
                                         query, "\n", block, "\n", names, "\n",
                                         req->payload_hash, NULL);
    us_sha256(out->canonical_request, strlen(out->canonical_request), digest);
    us_hex(digest, sizeof(digest), hex);
    const char *sc = us_sigv4_scope(p, c, amz_date);
    out->string_to_sign = apr_pstrcat(p, ALGORITHM "\n", amz_date, "\n", sc, "\n", hex, NULL);
    out->signature = us_sigv4_signature(p, c, amz_date, out->string_to_sign);
    out->authorization = apr_pstrcat(p, ALGORITHM " Credential=", c->access_key, "/", sc,
                                     ", SignedHeaders=", names, ", Signature=", out->signature,
                                     NULL);
    return *out->signature != '\0';
}

const char *us_sigv4_presign_query(apr_pool_t *p, const us_sigv4_credentials *c,
                                   const char *amz_date, const char *method,
                                   const char *host, const char *path,
                                   const char *extra_query, long expires_s)
{
    us_sigv4_header h = { "host", host };
    us_sigv4_signed s;

    if (!amz_date || strlen(amz_date) != DATE_LEN)
        return NULL;
    const char *cred = apr_pstrcat(p, c->access_key, "/", us_sigv4_scope(p, c, amz_date), NULL);
    const char *q = apr_psprintf(p, "%s%sX-Amz-Algorithm=" ALGORITHM "&X-Amz-Credential=%s"
                                 "&X-Amz-Date=%s&X-Amz-Expires=%ld&X-Amz-SignedHeaders=host",
                                 extra_query ? extra_query : "", extra_query ? "&" : "",
                                 us_sigv4_uri_encode(p, cred, 0), amz_date, expires_s);
    us_sigv4_request req = { method, path, q, &h, 1, US_SIGV4_UNSIGNED_PAYLOAD };
    if (!us_sigv4_sign_request(p, c, amz_date, &req, &s))
        return NULL;
    return apr_pstrcat(p, q, "&X-Amz-Signature=", s.signature, NULL);
}

/*
 * us_s3_answers.c - reading the store's answers (us_s3_answers.h).
 */
#include "us_s3_answers.h"
#include "us_utf8.h"

#include <apr_strings.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

long us_s3_stall_seconds(const char *method, const char *query, int copies)
{
    if (copies)
        return US_S3_COPY_STALL_SECONDS;
    if (method && strcmp(method, "POST") == 0 && query && strncmp(query, "uploadId=", 9) == 0)
        return US_S3_COPY_STALL_SECONDS;
    return US_S3_STALL_SECONDS;
}

void us_s3_error_code(const char *body, char *code, apr_size_t n)
{
    const char *b = body ? strstr(body, "<Code>") : NULL;
    const char *e = b ? strstr(b + 6, "</Code>") : NULL;
    apr_size_t len = e ? (apr_size_t)(e - (b + 6)) : 0;
    if (n == 0)
        return;
    if (len >= n)
        len = n - 1;
    if (len)
        memcpy(code, b + 6, len);
    code[len] = '\0';
}

int us_s3_result_done(long status, const char *body)
{
    return status == 200 && body && !strstr(body, "<Error>") && strstr(body, "<ETag>");
}

us_s3_404 us_s3_404_of(int head, const char *body)
{
    char code[64];
    if (head)
        return US_S3_404_ASK;
    us_s3_error_code(body, code, sizeof(code));
    return strcmp(code, "NoSuchKey") == 0 ? US_S3_404_KEY : US_S3_404_OTHER;
}

int us_s3_parse_length(const char *v, apr_size_t len, apr_off_t *out)
{
    apr_size_t i = 0;
    apr_off_t n = 0;
    int digits = 0;
    while (i < len && (v[i] == ' ' || v[i] == '\t'))
        i++;
    for (; i < len && isdigit((unsigned char)v[i]); i++, digits++) {
        if (n > (APR_INT64_MAX - 9) / 10)
            return 0;
        n = n * 10 + (v[i] - '0');
    }
    while (i < len && isspace((unsigned char)v[i]))
        i++;
    if (!digits || i != len)
        return 0;
    *out = n;
    return 1;
}

int us_s3_marker_repeats(apr_hash_t *seen, const char *a, const char *b)
{
    apr_pool_t *p = apr_hash_pool_get(seen);
    /* NUL cannot be in a key or an upload id: it keeps the pair apart */
    apr_size_t la = a ? strlen(a) + 1 : 0, lb = b ? strlen(b) : 0;
    char *k = apr_palloc(p, la + lb + 2);
    k[0] = a ? 'a' : '-';
    if (a)
        memcpy(k + 1, a, la);
    if (b)
        memcpy(k + 1 + la, b, lb);
    k[1 + la + lb] = '\0';
    apr_size_t klen = 1 + la + lb;
    if (apr_hash_get(seen, k, (apr_ssize_t)klen))
        return 1;
    apr_hash_set(seen, k, (apr_ssize_t)klen, "");
    return 0;
}

/* A character reference at s (before e): "&#13;" or "&#x1F;", which S3
 * answers for characters XML cannot carry as they are (a key's control
 * characters). Its character goes to o in UTF-8, never longer than the
 * reference; returns the reference's length, 0 when s holds none. */
static size_t xml_char_ref(const char *s, const char *e, char *o, size_t *written)
{
    const char *c = s + 2;
    int hex = c < e && (*c == 'x' || *c == 'X');
    unsigned long cp = 0;
    int digits = 0;
    if (e - s < 4 || s[1] != '#')
        return 0;
    for (c += hex; c < e && *c != ';' && digits < 8; c++, digits++) {
        int v = *c >= '0' && *c <= '9' ? *c - '0'
              : hex && *c >= 'a' && *c <= 'f' ? *c - 'a' + 10
              : hex && *c >= 'A' && *c <= 'F' ? *c - 'A' + 10 : -1;
        if (v < 0)
            return 0;
        cp = cp * (hex ? 16 : 10) + (unsigned long)v;
    }
    if (digits == 0 || c >= e || *c != ';' || cp == 0 || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    *written = us_utf8_encode((uint32_t)cp, (unsigned char *)o);
    return (size_t)(c + 1 - s);
}

char *us_s3_xml_next(apr_pool_t *p, const char **pos, const char *tag)
{
    const char *open = apr_pstrcat(p, "<", tag, ">", NULL), *close = apr_pstrcat(p, "</", tag, ">", NULL);
    const char *s = strstr(*pos, open);
    if (!s)
        return NULL;
    s += strlen(open);
    const char *e = strstr(s, close);
    if (!e)
        return NULL;
    *pos = e + strlen(close);
    char *out = apr_palloc(p, (apr_size_t)(e - s) + 1), *o = out;
    static const char *const ENT[][2] = { { "&amp;", "&" }, { "&lt;", "<" }, { "&gt;", ">" },
                                          { "&quot;", "\"" }, { "&apos;", "'" } };
    while (s < e) {
        int done = 0;
        for (size_t i = 0; *s == '&' && i < 5 && !done; i++)
            if (strncmp(s, ENT[i][0], strlen(ENT[i][0])) == 0) {
                *o++ = ENT[i][1][0];
                s += strlen(ENT[i][0]);
                done = 1;
            }
        size_t ref_len, written = 0;
        if (!done && *s == '&' && (ref_len = xml_char_ref(s, e, o, &written)) > 0) {
            s += ref_len;
            o += written;
            done = 1;
        }
        if (!done)
            *o++ = *s++;
    }
    *o = '\0';
    return out;
}

char *us_s3_xml_block(apr_pool_t *p, const char **pos, const char *tag)
{
    const char *open = apr_pstrcat(p, "<", tag, ">", NULL), *close = apr_pstrcat(p, "</", tag, ">", NULL);
    const char *s = strstr(*pos, open), *e = s ? strstr(s, close) : NULL;
    if (!e)
        return NULL;
    *pos = e + strlen(close);
    return apr_pstrndup(p, s, (apr_size_t)(e - s));
}

int us_s3_abort_done(long status, const char *body)
{
    char code[64];
    if (status == 204)
        return 1;
    if (status != 404)
        return 0;
    us_s3_error_code(body, code, sizeof(code));
    return strcmp(code, "NoSuchUpload") == 0;
}

/* A decimal number at *s, moved past it: 1 with *out, 0 without digits. */
static int range_number(const char **s, const char *e, apr_off_t *out)
{
    apr_off_t n = 0;
    const char *c = *s;
    for (; c < e && isdigit((unsigned char)*c); c++) {
        if (n > (APR_INT64_MAX - 9) / 10)
            return 0;
        n = n * 10 + (*c - '0');
    }
    if (c == *s)
        return 0;
    *s = c;
    *out = n;
    return 1;
}

int us_s3_content_range_is(const char *v, apr_size_t len, apr_off_t first, apr_off_t last,
                           apr_off_t size)
{
    const char *s = v, *e = v + len;
    apr_off_t a, b, total;
    while (s < e && (*s == ' ' || *s == '\t'))
        s++;
    while (e > s && isspace((unsigned char)e[-1]))
        e--;
    if (e - s < 6 || strncasecmp(s, "bytes ", 6) != 0)
        return 0;
    s += 6;
    if (!range_number(&s, e, &a) || s == e || *s++ != '-' || !range_number(&s, e, &b) ||
        s == e || *s++ != '/')
        return 0;
    if (e - s == 1 && *s == '*')
        total = size;
    else if (!range_number(&s, e, &total) || s != e)
        return 0;
    return a == first && b == last && total == size;
}

us_s3_entry_rc us_s3_list_entry(apr_pool_t *p, apr_pool_t *tmp, const char *block,
                                us_s3_entry *e)
{
    const char *in = block;
    memset(e, 0, sizeof(*e));
    if (!(e->key = us_s3_xml_next(p, &in, "Key")))
        return US_S3_ENTRY_NO_KEY;
    in = block;
    const char *size = us_s3_xml_next(tmp, &in, "Size");
    in = block;
    e->etag = us_s3_xml_next(p, &in, "ETag");
    in = block;
    e->modified = us_s3_xml_next(tmp, &in, "LastModified");
    if (!size || !us_s3_parse_length(size, strlen(size), &e->size))
        return US_S3_ENTRY_NO_SIZE;
    return US_S3_ENTRY_OK;
}

/* s with the spaces around it removed (in place). */
char *us_s3_trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

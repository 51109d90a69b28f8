/* us_filename.c - upload file-name rules (pure). */
#include "us_filename.h"
#include "us_crypto.h"

#include <apr_strings.h>
#include <string.h>
#include <strings.h>

#include "us_utf8.h"

const char *us_filename_problem(const char *name)
{
    size_t len = strlen(name);
    if (len == 0)
        return "the file name is empty";
    if (len > US_NAME_MAX)
        return "the file name is longer than 1024 bytes";
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return "the file name may not be '.' or '..'";
    for (const unsigned char *s = (const unsigned char *)name; *s;) {
        if (*s < 0x20 || *s == 0x7f)
            return "the file name contains a control character";
        if (*s == '/' || *s == '\\')
            return "the file name contains a path separator";
        size_t bad, n = us_utf8_seq(s, len - (size_t)(s - (const unsigned char *)name), &bad);
        if (n == 0)
            return "the file name is not valid UTF-8";
        s += n;
    }
    return NULL;
}

static const char *percent_decoded(apr_pool_t *p, const char *filename)
{
    size_t len = strlen(filename);
    char *out = apr_palloc(p, len + 1), *o = out;
    for (size_t i = 0; i < len; i++) {
        int c;
        if (filename[i] == '%' && i + 2 < len && (c = us_hex_byte(filename + i + 1)) >= 0) {
            /* %00 would end the C string early: keep the three characters
             * "%00" as typed (a harmless literal name) */
            if (c == 0) {
                *o++ = filename[i];
                continue;
            }
            *o++ = (char)c;
            i += 2;
        }
        else {
            *o++ = filename[i];
        }
    }
    *o = '\0';
    return out;
}

const char *us_filename_from_part(apr_pool_t *p, const char *filename,
                                  const char *filename_star)
{
    if (filename_star)
        return filename_star;
    if (!filename)
        return NULL;
    const char *decoded = percent_decoded(p, filename);
    if (us_filename_problem(decoded) && !us_filename_problem(filename))
        return filename;
    return decoded;
}

const char *us_key_substitute(apr_pool_t *p, const char *key, const char *filename,
                              apr_size_t max_len)
{
    static const char VAR[] = "${filename}";
    const apr_size_t vlen = sizeof(VAR) - 1, flen = strlen(filename);
    apr_size_t len = 0;

    /* measure first, so an over-long result costs nothing */
    for (const char *k = key; *k;) {
        const char *hit = strstr(k, VAR);
        if (!hit) {
            len += strlen(k);
            break;
        }
        len += (apr_size_t)(hit - k) + flen;
        if (len > max_len)
            return NULL;
        k = hit + vlen;
    }
    if (len > max_len)
        return NULL;

    char *out = apr_palloc(p, len + 1), *o = out;
    for (const char *k = key; *k;) {
        const char *hit = strstr(k, VAR);
        apr_size_t n = hit ? (apr_size_t)(hit - k) : strlen(k);
        memcpy(o, k, n);
        o += n;
        if (!hit)
            break;
        memcpy(o, filename, flen);
        o += flen;
        k = hit + vlen;
    }
    *o = '\0';
    return out;
}

int us_filename_is_meta(const char *name)
{
    size_t n = strlen(name), m = sizeof(US_META_SUFFIX) - 1;
    return n > m && strcmp(name + n - m, US_META_SUFFIX) == 0;
}

int us_filename_is_text(const char *name)
{
    static const char *const TEXT[] = { ".txt", ".md", ".markdown", ".csv", ".tsv", ".html",
                                        ".htm", ".json", ".jsonl", ".xml" };
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && i < sizeof(TEXT) / sizeof(TEXT[0]); i++)
        if (strcasecmp(dot, TEXT[i]) == 0)
            return 1;
    return 0;
}

const char *us_rfc5987_encode(apr_pool_t *p, const char *name)
{
    static const char ATTR_EXTRA[] = "!#$&+-.^_`|~";
    static const char HEX[] = "0123456789ABCDEF";
    size_t n = strlen(name);
    char *out = apr_palloc(p, 3 * n + 1), *o = out;
    for (const unsigned char *c = (const unsigned char *)name; *c; c++) {
        if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
            strchr(ATTR_EXTRA, *c)) {
            *o++ = (char)*c;
        }
        else {
            *o++ = '%';
            *o++ = HEX[*c >> 4];
            *o++ = HEX[*c & 15];
        }
    }
    *o = '\0';
    return out;
}

/*
 * us_uuid.c - UUID4 generation from APR's random source, and parsing as
 * pydantic-core does it (the Rust uuid crate: src/parser.rs try_parse,
 * src/error.rs into_err and Display), so that a refused id is explained
 * in the crate's words. Pure.
 */
#include "us_uuid.h"
#include "us_crypto.h"
#include "us_utf8.h"

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void uuid_format(unsigned char b[16], char out[37])
{
    static const char hex[] = "0123456789abcdef";
    char *o = out;
    /* 8-4-4-4-12 lower-case hex digits (no snprintf: one per create) */
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *o++ = '-';
        *o++ = hex[b[i] >> 4];
        *o++ = hex[b[i] & 0x0f];
    }
    *o = '\0';
}

void us_uuid4(char out[37])
{
    unsigned char b[16];
    apr_generate_random_bytes(b, sizeof(b));
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    uuid_format(b, out);
}

void us_uuid4_timed(char out[37], long long usec)
{
    unsigned char b[16];
    unsigned long long ms = usec > 0 ? (unsigned long long)usec / 1000 : 0;
    apr_generate_random_bytes(b, sizeof(b));
    for (int i = 0; i < 6; i++)
        b[i] = (unsigned char)(ms >> (40 - 8 * i));
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    uuid_format(b, out);
}

void us_uuid_of_name(apr_pool_t *p, const char *scope, const char *name, char out[37])
{
    unsigned char h[US_SHA256_LEN];
    /* scope is an id without '/': "scope/name" names one pair */
    const char *both = apr_pstrcat(p, scope, "/", name, NULL);
    us_sha256(both, strlen(both), h);
    /* version 4 bits, as every other id the API answers: clients check them */
    h[6] = (unsigned char)((h[6] & 0x0f) | 0x40);
    h[8] = (unsigned char)((h[8] & 0x3f) | 0x80);
    uuid_format(h, out);
}

/* ---- parsing (uuid crate) ---------------------------------------------- */

/* 32 hex digits, skipping hyphens at the given positions (parse_simple /
 * parse_hyphenated). */
static int uuid_hex(const char *s, size_t n, int hyphenated, unsigned char b[16])
{
    int nib = 0;

    for (size_t i = 0; i < n; i++) {
        int h;
        if (hyphenated && (i == 8 || i == 13 || i == 18 || i == 23)) {
            if (s[i] != '-')
                return 0;
            continue;
        }
        if ((h = us_hex_value((unsigned char)s[i])) < 0)
            return 0;
        if (nib & 1)
            b[nib / 2] |= (unsigned char)h;
        else
            b[nib / 2] = (unsigned char)(h << 4);
        nib++;
    }
    return nib == 32;
}

/* Uuid::try_parse: the shape is chosen by the total byte length alone. */
static int uuid_try_parse(const char *s, size_t n, unsigned char b[16])
{
    if (n == 32)
        return uuid_hex(s, 32, 0, b);
    if (n == 36)
        return uuid_hex(s, 36, 1, b);
    if (n == 38 && s[0] == '{' && s[37] == '}')
        return uuid_hex(s + 1, 36, 1, b);
    if (n == 45 && memcmp(s, "urn:uuid:", 9) == 0)
        return uuid_hex(s + 9, 36, 1, b);
    return 0;
}

#if defined(__GNUC__)
static void set_reason(char *reason, size_t rl, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#endif

static void set_reason(char *reason, size_t rl, const char *fmt, ...)
{
    va_list ap;

    if (!reason || !rl)
        return;
    va_start(ap, fmt);
    vsnprintf(reason, rl, fmt, ap); /* NOLINT(clang-analyzer-valist.Uninitialized): a clang 14 false positive, va_start is just above */
    va_end(ap);
}

/* InvalidUuid::into_err on the slice try_parse failed on: explains why.
 * Indexes are 1-based byte offsets into that slice (counting a leading "{"
 * or "urn:uuid:" it starts with); every character before the reported one
 * is ASCII (the first non-ASCII character is always the one reported), so
 * they are also character offsets. */
static void uuid_reason(const char *in, size_t n, char *reason, size_t rl)
{
    static const size_t starts[5] = {0, 9, 14, 19, 24};
    static const int expect[5] = {8, 4, 4, 4, 12};
    const char *s = in;
    size_t sn = n, off = 0, hyphens = 0, bounds[4] = {0, 0, 0, 0}, bad, k;
    int simple = 1;

    if (!us_utf8_valid_n(in, n)) {
        set_reason(reason, rl, "non-UTF8 input");
        return;
    }
    if (n >= 2 && in[0] == '{' && in[n - 1] == '}') {
        s = in + 1, sn = n - 2, off = 1, simple = 0;
    } else if (n >= 9 && memcmp(in, "urn:uuid:", 9) == 0) {
        s = in + 9, sn = n - 9, off = 9, simple = 0;
    }
    for (size_t i = 0; i < sn; i += k) {
        unsigned char c = (unsigned char)s[i];
        k = us_utf8_seq((const unsigned char *)s + i, sn - i, &bad);
        if (c == '-') {
            if (hyphens < 4)
                bounds[hyphens] = i;
            hyphens++;
        } else if (c >= 0x80 || us_hex_value(c) < 0) {
            set_reason(reason, rl, "invalid character: found `%.*s` at %zu",
                       (int)k, s + i, i + off + 1);
            return;
        }
    }
    if (hyphens == 0 && simple) {
        set_reason(reason, rl,
                   "invalid length: expected length 32 for simple format, found %zu", n);
        return;
    }
    if (hyphens != 4) {
        set_reason(reason, rl, "invalid group count: expected 5, found %zu", hyphens + 1);
        return;
    }
    for (int g = 0; g < 4; g++) {
        if (bounds[g] != starts[g + 1] - 1) {
            set_reason(reason, rl,
                       "invalid group length in group %d: expected %d, found %zu", g,
                       expect[g], bounds[g] - starts[g]);
            return;
        }
    }
    /* The crate measures the last group against the WHOLE input length, so
     * "{...}" / "urn:uuid:..." inputs report the prefix/brace bytes too. */
    set_reason(reason, rl, "invalid group length in group 4: expected 12, found %zu",
               n - starts[4]);
}

int us_uuid_parse(const char *in, char out[37], char *reason, size_t reasonlen)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char b[16];
    size_t n = in ? strlen(in) : 0;
    char *o = out;

    if (!in)
        in = "";
    if (!uuid_try_parse(in, n, b)) {
        /* try_parse hands into_err() the slice it failed on: for a 38-byte
         * "{...}" or 45-byte "urn:uuid:..." input that is the INNER 36
         * bytes, so indexes then count from the inner text (and the inner
         * text is itself checked again for braces / the urn prefix). */
        if (n == 38 && in[0] == '{' && in[37] == '}')
            uuid_reason(in + 1, 36, reason, reasonlen);
        else if (n == 45 && memcmp(in, "urn:uuid:", 9) == 0)
            uuid_reason(in + 9, 36, reason, reasonlen);
        else
            uuid_reason(in, n, reason, reasonlen);
        out[0] = '\0';
        return 0;
    }
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *o++ = '-';
        *o++ = hex[b[i] >> 4];
        *o++ = hex[b[i] & 15];
    }
    *o = '\0';
    return 1;
}

/*
 * libFuzzer target: an url-encoded body through us_urlform, fed in pieces
 * whose sizes the input chooses. Fails unless the fields it calls back with
 * are exactly those of a plain whole-body decoder written here (split at
 * '&', the name before the first '=', '+' a space, %XX a byte, anything
 * else itself; a segment without name or '=' skipped; a name longer than
 * US_URLFORM_MAX_NAME or holding a NUL given as NULL), or when a value
 * piece exceeds 4 KiB (the parser holds no value).
 *
 * Input layout:
 *   byte 0   piece-size seed: pieces of 1..(seed % 64 + 1) bytes
 *   rest     the body
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include "us_urlform.h"

/* A transcript: per field 0x01, the name (or 0x02 for NULL), 0x03, the value. */
typedef struct {
    unsigned char *buf;
    size_t len, cap;
} text;

static void put(text *t, const void *s, size_t n)
{
    if (t->len + n > t->cap) {
        t->cap = (t->len + n) * 2 + 64;
        t->buf = realloc(t->buf, t->cap);
        if (!t->buf)
            abort();
    }
    memcpy(t->buf + t->len, s, n);
    t->len += n;
}

static void put_byte(text *t, unsigned char c) { put(t, &c, 1); }

static int on_begin(void *ctx, const us_mp_part *part)
{
    text *t = ctx;
    put_byte(t, 1);
    if (part->name)
        put(t, part->name, strlen(part->name));
    else
        put_byte(t, 2);
    put_byte(t, 3);
    return 0;
}

static int on_data(void *ctx, const char *data, size_t len)
{
    if (len == 0 || len > 4096)
        abort();
    put(ctx, data, len);
    return 0;
}

static int on_end(void *ctx)
{
    (void)ctx;
    return 0;
}

static int hex(unsigned char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                        : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* unquote_plus of s[0..n) into out */
static size_t unquote(const unsigned char *s, size_t n, unsigned char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+')
            out[o++] = ' ';
        else if (s[i] == '%' && i + 2 < n && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
            out[o++] = (unsigned char)(hex(s[i + 1]) * 16 + hex(s[i + 2]));
            i += 2;
        }
        else
            out[o++] = s[i];
    }
    return o;
}

static void reference(const unsigned char *s, size_t n, text *t)
{
    unsigned char *tmp = malloc(n + 1);
    if (!tmp)
        abort();
    size_t at = 0;
    while (at <= n) {
        const unsigned char *amp = memchr(s + at, '&', n - at);
        size_t end = amp ? (size_t)(amp - s) : n;
        const unsigned char *eq = memchr(s + at, '=', end - at);
        size_t name_end = eq ? (size_t)(eq - s) : end;
        if (end > at) {
            size_t nl = unquote(s + at, name_end - at, tmp);
            put_byte(t, 1);
            if (nl > US_URLFORM_MAX_NAME || memchr(tmp, 0, nl))
                put_byte(t, 2);
            else
                put(t, tmp, nl);
            put_byte(t, 3);
            if (eq)
                put(t, tmp, unquote(eq + 1, end - name_end - 1, tmp));
        }
        if (!amp)
            break;
        at = end + 1;
    }
    free(tmp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static apr_pool_t *root;
    static const us_mp_callbacks cb = { on_begin, on_data, on_end };
    if (!root) {
        apr_initialize();
        apr_pool_create(&root, NULL);
    }
    if (size < 1)
        return 0;
    size_t piece_max = data[0] % 64 + 1;
    const unsigned char *body = data + 1;
    size_t n = size - 1;

    apr_pool_t *p;
    apr_pool_create(&p, root);
    text got = { 0 }, want = { 0 };
    us_urlform *f = us_urlform_create(p, &cb, &got);
    size_t step = 1;
    for (size_t at = 0; at < n; at += step) {
        step = (at * 31 + 7) % piece_max + 1;
        if (step > n - at)
            step = n - at;
        if (us_urlform_feed(f, (const char *)body + at, step) != US_MP_CONTINUE)
            abort();
    }
    if (us_urlform_finish(f) != US_MP_DONE)
        abort();
    reference(body, n, &want);
    if (got.len != want.len || (got.len && memcmp(got.buf, want.buf, got.len) != 0))
        abort();
    free(got.buf);
    free(want.buf);
    apr_pool_destroy(p);
    return 0;
}

/* us_json_writer.c - JSON written straight into one pool buffer (pure); see us_json_writer.h. */
#include "us_json_writer.h"
#include "us_float_repr.h"
#include "us_utf8.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* the bit of the container at depth d (1..US_JSON_WRITER_MAX_DEPTH) */
#define DEPTH_BIT(d) (1ULL << ((d) - 1))

void us_json_write_init(us_json_writer *w, apr_pool_t *p, apr_size_t size_hint)
{
    memset(w, 0, sizeof(*w));
    w->pool = p;
    w->cap = size_hint > 64 ? size_hint : 64;
    w->buf = apr_palloc(p, w->cap);
}

/* ---- the buffer ------------------------------------------------------------ */

/* Room for n more bytes and the final NUL; the buffer at least doubles. */
static int reserve(us_json_writer *w, apr_size_t n)
{
    if (n > ((apr_size_t)-1) / 4 - w->len) {
        w->failed = 1;
        return 0;
    }
    if (w->len + n + 1 <= w->cap)
        return 1;
    apr_size_t cap = w->cap * 2;
    while (cap < w->len + n + 1)
        cap *= 2;
    char *buf = apr_palloc(w->pool, cap);
    memcpy(buf, w->buf, w->len);
    w->buf = buf;
    w->cap = cap;
    return 1;
}

static void put(us_json_writer *w, const char *s, apr_size_t n)
{
    if (!reserve(w, n))
        return;
    memcpy(w->buf + w->len, s, n);
    w->len += n;
}

/* ---- structure: commas, keys, nesting --------------------------------------- */

static int in_object(const us_json_writer *w)
{
    return w->depth > 0 && (w->objects & DEPTH_BIT(w->depth));
}

/* A comma unless this is the first member of the current container. */
static void separate(us_json_writer *w)
{
    unsigned long long bit = DEPTH_BIT(w->depth);
    if (w->started & bit)
        put(w, ",", 1);
    w->started |= bit;
}

/* Before a value: right after its key, as an array element, or alone at the
 * top. Returns 0 (and marks the writer failed) anywhere else. */
static int begin_value(us_json_writer *w)
{
    if (w->failed)
        return 0;
    if (w->after_key)
        w->after_key = 0;
    else if (w->depth == 0 && w->len > 0) /* a second value at the top */
        w->failed = 1;
    else if (in_object(w)) /* a value without a key */
        w->failed = 1;
    else if (w->depth > 0)
        separate(w);
    return !w->failed;
}

static void open_container(us_json_writer *w, char bracket, int is_object)
{
    if (!begin_value(w))
        return;
    if (w->depth == US_JSON_WRITER_MAX_DEPTH) {
        w->failed = 1;
        return;
    }
    w->depth++;
    unsigned long long bit = DEPTH_BIT(w->depth);
    w->started &= ~bit;
    if (is_object)
        w->objects |= bit;
    else
        w->objects &= ~bit;
    put(w, &bracket, 1);
}

static void close_container(us_json_writer *w, char bracket, int is_object)
{
    if (w->failed)
        return;
    if (w->depth == 0 || w->after_key || in_object(w) != is_object) {
        w->failed = 1;
        return;
    }
    w->depth--;
    put(w, &bracket, 1);
}

void us_json_write_object_open(us_json_writer *w)
{
    open_container(w, '{', 1);
}

void us_json_write_object_close(us_json_writer *w)
{
    close_container(w, '}', 1);
}

void us_json_write_array_open(us_json_writer *w)
{
    open_container(w, '[', 0);
}

void us_json_write_array_close(us_json_writer *w)
{
    close_container(w, ']', 0);
}

/* ---- strings -------------------------------------------------------------- */

/* The escape of an ASCII character JSON does not allow as it is. */
static char *put_escape(char *o, unsigned char c)
{
    static const char hex[] = "0123456789abcdef"; /* Python's, where jansson's are upper-case */
    *o++ = '\\';
    switch (c) {
    case '"': *o++ = '"'; break;
    case '\\': *o++ = '\\'; break;
    case '\b': *o++ = 'b'; break;
    case '\f': *o++ = 'f'; break;
    case '\n': *o++ = 'n'; break;
    case '\r': *o++ = 'r'; break;
    case '\t': *o++ = 't'; break;
    default:
        *o++ = 'u';
        *o++ = '0';
        *o++ = '0';
        *o++ = hex[c >> 4];
        *o++ = hex[c & 0x0F];
    }
    return o;
}

/* 1 when each of the 8 bytes at s is copied as it is: in 0x20..0x7f, not
 * '"' nor '\\' (a byte's high bit in the result: below 0x20, equal to
 * one of the two, or 0x80 and above; exact for "any", whatever the order) */
static int plain8(const unsigned char *s)
{
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    uint64_t v;
    memcpy(&v, s, 8);
    uint64_t q = v ^ (ones * '"'), b = v ^ (ones * '\\');
    return ((((v - ones * 0x20) & ~v) | ((q - ones) & ~q) | ((b - ones) & ~b) | v) & highs) == 0;
}

/* The quoted, escaped string of n bytes (NULs escaped as any control
 * character); nothing is written when it is refused. */
static void put_string_n(us_json_writer *w, const char *str, apr_size_t n)
{
    if (!str) {
        w->failed = 1;
        return;
    }
    if (n > ((apr_size_t)-1) / 8 || !reserve(w, 6 * n + 2)) { /* worst case: all \u00XX */
        w->failed = 1;
        return;
    }
    char *o = w->buf + w->len;
    const unsigned char *s = (const unsigned char *)str, *end = s + n;

    *o++ = '"';
    while (s < end) {
        if (end - s >= 8 && plain8(s)) {
            memcpy(o, s, 8); /* the common case, 8 bytes at a time */
            o += 8;
            s += 8;
        }
        else if (*s >= 0x80) {
            size_t bad, k = us_utf8_seq(s, (apr_size_t)(end - s), &bad);
            if (k == 0) {
                w->failed = 1;
                return;
            }
            memcpy(o, s, k);
            o += k;
            s += k;
        }
        else if (*s < 0x20 || *s == '"' || *s == '\\') {
            o = put_escape(o, *s++);
        }
        else {
            *o++ = (char)*s++;
        }
    }
    *o++ = '"';
    w->len = (apr_size_t)(o - w->buf);
}

static void put_string(us_json_writer *w, const char *str)
{
    put_string_n(w, str, str ? strlen(str) : 0);
}

/* ---- keys and values -------------------------------------------------------- */

void us_json_write_key(us_json_writer *w, const char *key)
{
    if (w->failed)
        return;
    if (!in_object(w) || w->after_key) {
        w->failed = 1;
        return;
    }
    separate(w);
    put_string(w, key);
    put(w, ":", 1);
    w->after_key = 1;
}

void us_json_write_string(us_json_writer *w, const char *s)
{
    if (begin_value(w))
        put_string(w, s);
}

void us_json_write_raw(us_json_writer *w, const char *text, apr_size_t len)
{
    if (!text || len == 0) {
        w->failed = 1;
        return;
    }
    if (begin_value(w))
        put(w, text, len);
}

void us_json_write_int(us_json_writer *w, long long v)
{
    char digits[24];
    int n = 0;
    /* the magnitude as unsigned: -LLONG_MIN does not fit a long long */
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;

    if (!begin_value(w))
        return;
    do {
        digits[sizeof(digits) - 1 - n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        digits[sizeof(digits) - 1 - n++] = '-';
    put(w, digits + sizeof(digits) - n, (apr_size_t)n);
}

static void put_real(us_json_writer *w, double v)
{
    char text[US_FLOAT_REPR_MAX];
    apr_size_t n = us_float_repr(v, text);
    if (n == 0)
        w->failed = 1; /* NaN and infinities are no JSON */
    else
        put(w, text, n);
}

void us_json_write_real(us_json_writer *w, double v)
{
    if (begin_value(w))
        put_real(w, v);
}

/* v and everything in it, in one go: the nesting of a jansson value (up
 * to the parser's 512 levels) is not the writer's to track. */
static void put_json(us_json_writer *w, const json_t *v)
{
    const char *key;
    size_t key_len, i;
    json_t *item;
    char digits[24];
    int first = 1;

    switch (json_typeof(v)) {
    case JSON_OBJECT:
        put(w, "{", 1);
        json_object_keylen_foreach((json_t *)v, key, key_len, item) {
            if (!first)
                put(w, ",", 1);
            first = 0;
            put_string_n(w, key, key_len);
            put(w, ":", 1);
            put_json(w, item);
        }
        put(w, "}", 1);
        break;
    case JSON_ARRAY:
        put(w, "[", 1);
        json_array_foreach(v, i, item) {
            if (i > 0)
                put(w, ",", 1);
            put_json(w, item);
        }
        put(w, "]", 1);
        break;
    case JSON_STRING:
        put_string_n(w, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        put(w, digits, (apr_size_t)snprintf(digits, sizeof(digits), "%" JSON_INTEGER_FORMAT,
                                            json_integer_value(v)));
        break;
    case JSON_REAL:
        put_real(w, json_real_value(v));
        break;
    case JSON_TRUE:
        put(w, "true", 4);
        break;
    case JSON_FALSE:
        put(w, "false", 5);
        break;
    case JSON_NULL:
        put(w, "null", 4);
        break;
    }
}

void us_json_write_json(us_json_writer *w, const json_t *v)
{
    if (!v) {
        w->failed = 1;
        return;
    }
    if (begin_value(w))
        put_json(w, v);
}

void us_json_write_bool(us_json_writer *w, int b)
{
    if (begin_value(w))
        put(w, b ? "true" : "false", b ? 4 : 5);
}

void us_json_write_null(us_json_writer *w)
{
    if (begin_value(w))
        put(w, "null", 4);
}

void us_json_write_key_string(us_json_writer *w, const char *key, const char *s)
{
    us_json_write_key(w, key);
    us_json_write_string(w, s);
}

void us_json_write_key_int(us_json_writer *w, const char *key, long long v)
{
    us_json_write_key(w, key);
    us_json_write_int(w, v);
}

void us_json_write_key_bool(us_json_writer *w, const char *key, int b)
{
    us_json_write_key(w, key);
    us_json_write_bool(w, b);
}

void us_json_write_save(const us_json_writer *w, us_json_write_mark *m)
{
    m->len = w->len;
    m->depth = w->depth;
    m->objects = w->objects;
    m->started = w->started;
    m->after_key = w->after_key;
    m->failed = w->failed;
}

void us_json_write_rewind(us_json_writer *w, const us_json_write_mark *m)
{
    w->len = m->len;
    w->depth = m->depth;
    w->objects = m->objects;
    w->started = m->started;
    w->after_key = m->after_key;
    w->failed = m->failed;
}

int us_json_write_ok(const us_json_writer *w)
{
    return !w->failed;
}

const char *us_json_write_take(us_json_writer *w, apr_size_t *len)
{
    *len = w->len;
    if (w->failed)
        return NULL;
    w->len = 0;
    return w->buf;
}

const char *us_json_write_finish(us_json_writer *w, apr_size_t *len)
{
    if (w->failed || w->depth != 0 || w->after_key || w->len == 0)
        return NULL;
    w->buf[w->len] = '\0';
    if (len)
        *len = w->len;
    return w->buf;
}

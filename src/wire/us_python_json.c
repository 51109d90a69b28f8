/*
 * us_python_json.c - a faithful re-implementation of CPython's json.loads(bytes)
 * (3.11/3.12: json/__init__.py, json/decoder.py and the C scanner in
 * Modules/_json.c), building jansson values.  Pure: depends on jansson only.
 *
 * Two stages, exactly like Python:
 *   1. bytes -> code points: json.detect_encoding() picks UTF-8 / UTF-8-sig /
 *      UTF-16 / UTF-32 and the body is decoded with errors='surrogatepass'.
 *      A decode failure is a UnicodeDecodeError, i.e. US_PYTHON_JSON_UNPARSABLE.
 *   2. code points -> values: the C scanner, reproduced branch by branch so
 *      that every JSONDecodeError carries Python's message and position (an
 *      index into the decoded code points).
 *
 * Deliberate representation choices (Python can hold these, jansson cannot):
 *   - a lone surrogate (from "\ud800" or from surrogatepass decoding) is
 *     stored as U+FFFD in the UTF-8 of the jansson string;
 *   - NaN / Infinity / -Infinity and numbers whose double value overflows
 *     make the whole parse US_PYTHON_JSON_UNPARSABLE, but only once parsing has
 *     succeeded: Python accepts them and may still report a later syntax
 *     error, which must win;
 *   - integers outside int64 become json_real of their value;
 *   - nesting deeper than US_PYTHON_JSON_MAX_DEPTH is US_PYTHON_JSON_UNPARSABLE, as
 *     Python's RecursionError is (Python's own limit is ~1000 minus stack).
 */
#include "us_python_json.h"

#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "us_utf8.h"

/* CPython's default sys.get_int_max_str_digits(): longer int literals make
 * int() raise ValueError, which json.loads lets through (not a
 * JSONDecodeError), so FastAPI answers 400. */
#define PY_INT_MAX_STR_DIGITS 4300

/* ------------------------------------------------------------------ */
/* Stage 1: bytes -> code points                                       */
/* ------------------------------------------------------------------ */

typedef enum {
    ENC_UTF8, ENC_UTF16LE, ENC_UTF16BE, ENC_UTF32LE, ENC_UTF32BE
} pj_encoding;

/* Mirrors json.detect_encoding(); *bom is how many leading bytes the chosen
 * codec swallows as a byte order mark ('utf-8-sig', 'utf-16', 'utf-32'). */
static pj_encoding detect_encoding(const unsigned char *b, size_t n, size_t *bom)
{
    *bom = 0;
    /* BOMs first; the UTF-32 ones before UTF-16 (FF FE is a prefix of both) */
    if (n >= 4 && b[0] == 0x00 && b[1] == 0x00 && b[2] == 0xFE && b[3] == 0xFF) {
        *bom = 4;
        return ENC_UTF32BE;
    }
    if (n >= 4 && b[0] == 0xFF && b[1] == 0xFE && b[2] == 0x00 && b[3] == 0x00) {
        *bom = 4;
        return ENC_UTF32LE;
    }
    if (n >= 2 && ((b[0] == 0xFE && b[1] == 0xFF) || (b[0] == 0xFF && b[1] == 0xFE))) {
        *bom = 2;
        return b[0] == 0xFE ? ENC_UTF16BE : ENC_UTF16LE;
    }
    if (n >= 3 && b[0] == 0xEF && b[1] == 0xBB && b[2] == 0xBF) {
        *bom = 3;
        return ENC_UTF8;
    }
    /* no BOM: guess from where the NUL bytes of an ASCII first char are */
    if (n >= 4) {
        if (b[0] == 0)
            return b[1] ? ENC_UTF16BE : ENC_UTF32BE;
        if (b[1] == 0)
            return (b[2] || b[3]) ? ENC_UTF16LE : ENC_UTF32LE;
    } else if (n == 2) {
        if (b[0] == 0)
            return ENC_UTF16BE;
        if (b[1] == 0)
            return ENC_UTF16LE;
    }
    return ENC_UTF8;
}

static int is_surrogate(uint32_t c) { return c >= 0xD800 && c <= 0xDFFF; }
static int is_high_surrogate(uint32_t c) { return c >= 0xD800 && c <= 0xDBFF; }
static int is_low_surrogate(uint32_t c) { return c >= 0xDC00 && c <= 0xDFFF; }

static uint32_t join_surrogates(uint32_t hi, uint32_t lo)
{
    return 0x10000 + (((hi - 0xD800) << 10) | (lo - 0xDC00));
}

/* Python's decoder is strict (no overlongs, nothing above U+10FFFF, no
 * truncation); 'surrogatepass' additionally lets ED A0..BF xx through. */
static int decode_utf8(const unsigned char *b, size_t n, uint32_t *out, size_t *outn)
{
    size_t i = 0, k = 0;

    while (i < n) {
        size_t step = us_utf8_decode(b + i, n - i, US_UTF8_SURROGATEPASS, &out[k]);
        if (step == 0)
            return -1;
        i += step;
        k++;
    }
    *outn = k;
    return 0;
}

static uint32_t read_unit(const unsigned char *b, size_t width, int big)
{
    uint32_t v = 0;
    for (size_t k = 0; k < width; k++)
        v |= (uint32_t)b[big ? k : width - 1 - k] << (8 * (width - 1 - k));
    return v;
}

/* Python's UTF-16 codec joins valid pairs; with 'surrogatepass' any other
 * surrogate unit is kept as is.  An odd trailing byte ("truncated data") is
 * not a surrogate, so surrogatepass cannot rescue it. */
static int decode_utf16(const unsigned char *b, size_t n, int big, uint32_t *out,
                        size_t *outn)
{
    size_t i, k = 0;

    if (n % 2)
        return -1;
    for (i = 0; i < n; i += 2) {
        uint32_t u = read_unit(b + i, 2, big);
        if (is_high_surrogate(u) && i + 2 < n) {
            uint32_t u2 = read_unit(b + i + 2, 2, big);
            if (is_low_surrogate(u2)) {
                u = join_surrogates(u, u2);
                i += 2;
            }
        }
        out[k++] = u;
    }
    *outn = k;
    return 0;
}

/* Python's UTF-32 codec: surrogates pass (never joined), code points above
 * U+10FFFF and a partial trailing unit are errors. */
static int decode_utf32(const unsigned char *b, size_t n, int big, uint32_t *out,
                        size_t *outn)
{
    size_t i, k = 0;

    if (n % 4)
        return -1;
    for (i = 0; i < n; i += 4) {
        uint32_t u = read_unit(b + i, 4, big);
        if (u > 0x10FFFF)
            return -1;
        out[k++] = u;
    }
    *outn = k;
    return 0;
}

/* bytes.decode(detect_encoding(b), 'surrogatepass'); NULL on failure. */
static uint32_t *decode_body(const unsigned char *b, size_t n, size_t *outn)
{
    size_t bom;
    pj_encoding enc = detect_encoding(b, n, &bom);
    uint32_t *out;
    int rc;

    b += bom;
    n -= bom;
    if (n >= SIZE_MAX / sizeof(uint32_t))
        return NULL;
    out = malloc((n + 1) * sizeof(uint32_t)); /* never more code points than bytes */
    if (out == NULL)
        return NULL;
    switch (enc) {
    case ENC_UTF16LE: rc = decode_utf16(b, n, 0, out, outn); break;
    case ENC_UTF16BE: rc = decode_utf16(b, n, 1, out, outn); break;
    case ENC_UTF32LE: rc = decode_utf32(b, n, 0, out, outn); break;
    case ENC_UTF32BE: rc = decode_utf32(b, n, 1, out, outn); break;
    default:          rc = decode_utf8(b, n, out, outn); break;
    }
    if (rc != 0) {
        free(out);
        return NULL;
    }
    return out;
}

/* ------------------------------------------------------------------ */
/* Stage 2: the scanner                                                */
/* ------------------------------------------------------------------ */

typedef struct {
    const uint32_t *s;      /* decoded document */
    size_t len;             /* number of code points */
    int depth;              /* current array/object nesting */
    size_t values;          /* values begun so far */
    size_t max_values;      /* 0: no limit */
    int unrepresentable;    /* saw NaN/Infinity/overflow: fail if all else parses */
    us_python_json_status status; /* why the last NULL was returned */
    us_python_json_error *err;
    char *buf;              /* scratch: UTF-8 of the current string / number */
    size_t buf_len, buf_cap;
} pj_parser;

/* A JSONDecodeError(msg, doc, pos). */
static json_t *fail_decode(pj_parser *p, const char *msg, size_t pos)
{
    p->status = US_PYTHON_JSON_DECODE_ERROR;
    if (p->err != NULL) {
        strncpy(p->err->msg, msg, sizeof(p->err->msg) - 1);
        p->err->msg[sizeof(p->err->msg) - 1] = '\0';
        p->err->pos = (long)pos;
    }
    return NULL;
}

/* Any other exception (RecursionError, ValueError, MemoryError). */
static json_t *fail_unparsable(pj_parser *p)
{
    p->status = US_PYTHON_JSON_UNPARSABLE;
    return NULL;
}

/* Past the caller's max_values: stopped before it costs more memory. */
static json_t *fail_too_large(pj_parser *p)
{
    p->status = US_PYTHON_JSON_TOO_LARGE;
    return NULL;
}

/* StopIteration(idx) from the scanner: JSONDecoder.raw_decode turns it into
 * "Expecting value" at that (innermost) index, and nothing in between
 * catches it, so it can be reported directly. */
static json_t *stop_iteration(pj_parser *p, size_t idx)
{
    return fail_decode(p, "Expecting value", idx);
}

/* The scanner's whitespace and decoder.WHITESPACE are both [ \t\n\r]. */
static int is_ws(uint32_t c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static size_t skip_ws(const pj_parser *p, size_t idx)
{
    while (idx < p->len && is_ws(p->s[idx]))
        idx++;
    return idx;
}

static int is_digit(uint32_t c) { return c >= '0' && c <= '9'; }

static int buf_reserve(pj_parser *p, size_t extra)
{
    size_t cap = p->buf_cap ? p->buf_cap : 64;
    char *nb;

    if (p->buf_len + extra <= p->buf_cap)
        return 0;
    while (cap < p->buf_len + extra) {
        if (cap > SIZE_MAX / 2)
            return -1;
        cap *= 2;
    }
    nb = realloc(p->buf, cap);
    if (nb == NULL)
        return -1;
    p->buf = nb;
    p->buf_cap = cap;
    return 0;
}

/* Append one code point as UTF-8; a lone surrogate (legal in a Python str,
 * not in UTF-8) becomes U+FFFD. */
static int buf_put_cp(pj_parser *p, uint32_t c)
{
    if (buf_reserve(p, 4) != 0)
        return -1;
    if (is_surrogate(c))
        c = 0xFFFD;
    p->buf_len += us_utf8_encode(c, (unsigned char *)p->buf + p->buf_len);
    return 0;
}

/* --- strings (scanstring_unicode) --------------------------------- */

static int hex_value(uint32_t c)
{
    if (c >= '0' && c <= '9')
        return (int)(c - '0');
    if (c >= 'a' && c <= 'f')
        return (int)(c - 'a' + 10);
    if (c >= 'A' && c <= 'F')
        return (int)(c - 'A' + 10);
    return -1;
}

static int read_hex4(const uint32_t *s, uint32_t *out)
{
    uint32_t v = 0;
    for (int k = 0; k < 4; k++) {
        int h = hex_value(s[k]);
        if (h < 0)
            return -1;
        v = (v << 4) | (uint32_t)h;
    }
    *out = v;
    return 0;
}

/* The escape after "\u"; i is the index of its first hex digit.  On success
 * *c is the character and *end the index just after the escape. */
static int scan_u_escape(pj_parser *p, size_t i, uint32_t *c, size_t *end)
{
    const uint32_t *s = p->s;
    size_t e = i + 4;
    uint32_t c2;

    /* CPython wants a character *after* the four digits (end >= len fails),
     * and reports both this and a bad digit at the 'u'. */
    if (e >= p->len || read_hex4(s + i, c) != 0) {
        fail_decode(p, "Invalid \\uXXXX escape", i - 1);
        return -1;
    }
    /* A high surrogate looks for a second "\uXXXX" only if a character
     * follows that one too (end + 6 < len). */
    if (is_high_surrogate(*c) && e + 6 < p->len && s[e] == '\\' && s[e + 1] == 'u') {
        if (read_hex4(s + e + 2, &c2) != 0) {
            fail_decode(p, "Invalid \\uXXXX escape", e + 1);
            return -1;
        }
        /* not a low surrogate: leave it to be scanned as its own escape */
        if (is_low_surrogate(c2)) {
            *c = join_surrogates(*c, c2);
            e += 6;
        }
    }
    *end = e;
    return 0;
}

/* One backslash escape; i is the index just after the backslash (< len). */
static int scan_escape(pj_parser *p, size_t i, uint32_t *c, size_t *end)
{
    switch (p->s[i]) {
    case '"':  *c = '"'; break;
    case '\\': *c = '\\'; break;
    case '/':  *c = '/'; break;
    case 'b':  *c = '\b'; break;
    case 'f':  *c = '\f'; break;
    case 'n':  *c = '\n'; break;
    case 'r':  *c = '\r'; break;
    case 't':  *c = '\t'; break;
    case 'u':  return scan_u_escape(p, i + 1, c, end);
    default:
        fail_decode(p, "Invalid \\escape", i - 1); /* at the backslash */
        return -1;
    }
    *end = i + 1;
    return 0;
}

/* Scan a string whose opening quote is at start - 1.  On success its UTF-8
 * is p->buf[0..p->buf_len) and *next is the index after the closing quote. */
static int scan_string(pj_parser *p, size_t start, size_t *next)
{
    const uint32_t *s = p->s;
    size_t begin = start - 1, end = start, i;
    uint32_t c;

    p->buf_len = 0;
    for (;;) {
        /* run up to the closing quote or the next backslash; strict mode
         * rejects any raw character <= 0x1f on the way */
        for (i = end; i < p->len && s[i] != '"' && s[i] != '\\'; i++) {
            if (s[i] <= 0x1f) {
                fail_decode(p, "Invalid control character at", i);
                return -1;
            }
            if (buf_put_cp(p, s[i]) != 0)
                goto oom;
        }
        /* running off the end, or a backslash as the last character */
        if (i >= p->len || (s[i] == '\\' && i + 1 == p->len)) {
            fail_decode(p, "Unterminated string starting at", begin);
            return -1;
        }
        if (s[i] == '"') {
            *next = i + 1;
            return 0;
        }
        if (scan_escape(p, i + 1, &c, &end) != 0)
            return -1;
        if (buf_put_cp(p, c) != 0)
            goto oom;
    }
oom:
    fail_unparsable(p);
    return -1;
}

static json_t *string_value(pj_parser *p, size_t start, size_t *next)
{
    json_t *v;

    if (scan_string(p, start, next) != 0)
        return NULL;
    /* buf_put_cp() only writes valid UTF-8 (NULs included), so jansson's
     * own validation would be redundant */
    v = json_stringn_nocheck(p->buf != NULL ? p->buf : "", p->buf_len);
    return v != NULL ? v : fail_unparsable(p);
}

/* --- numbers (_match_number_unicode) ------------------------------ */

/* Copy s[start..end) (ASCII) into the scratch buffer, NUL-terminated, with
 * '.' swapped for the locale's radix so strtod() reads it as Python does. */
static int number_token(pj_parser *p, size_t start, size_t end)
{
    const char *radix = localeconv()->decimal_point;

    p->buf_len = 0;
    if (buf_reserve(p, end - start + 1) != 0)
        return -1;
    for (size_t i = start; i < end; i++) {
        char ch = (char)p->s[i];
        if (ch == '.' && radix != NULL && radix[0] != '\0' && radix[1] == '\0')
            ch = radix[0];
        p->buf[p->buf_len++] = ch;
    }
    p->buf[p->buf_len] = '\0';
    return 0;
}

/* float(token); a non-finite result is valid Python but not jansson. */
static json_t *real_value(pj_parser *p, size_t start, size_t end)
{
    double d;
    json_t *v;

    if (number_token(p, start, end) != 0)
        return fail_unparsable(p);
    d = strtod(p->buf, NULL);
    if (!isfinite(d)) {
        p->unrepresentable = 1;
        return json_null(); /* placeholder, discarded at the end */
    }
    v = json_real(d);
    return v != NULL ? v : fail_unparsable(p);
}

/* int(token): json_integer when it fits in int64, else json_real. */
static json_t *int_value(pj_parser *p, size_t start, size_t end)
{
    int neg = p->s[start] == '-';
    size_t i = start + (size_t)neg;
    uint64_t mag = 0, limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    json_t *v;

    if (end - i > PY_INT_MAX_STR_DIGITS)
        return fail_unparsable(p); /* ValueError from int(), not JSONDecodeError */
    for (; i < end; i++) {
        uint32_t d = p->s[i] - '0';
        if (mag > (limit - d) / 10)
            return real_value(p, start, end);
        mag = mag * 10 + d;
    }
    if (neg)
        v = json_integer(mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(json_int_t)mag);
    else
        v = json_integer((json_int_t)mag);
    return v != NULL ? v : fail_unparsable(p);
}

static json_t *match_number(pj_parser *p, size_t start, size_t *next)
{
    const uint32_t *s = p->s;
    size_t len = p->len, idx = start;
    int is_float = 0;

    /* a sign must not be the last character */
    if (s[idx] == '-' && ++idx >= len)
        return stop_iteration(p, start);
    /* integer part: 1-9 then digits, or a lone 0 (so "01" stops after 0) */
    if (s[idx] >= '1' && s[idx] <= '9') {
        for (idx++; idx < len && is_digit(s[idx]); idx++)
            ;
    } else if (s[idx] == '0') {
        idx++;
    } else {
        return stop_iteration(p, start);
    }
    /* fraction only when '.' is followed by a digit; otherwise it is left
     * for the caller (so "1." is 1 followed by extra data) */
    if (idx + 1 < len && s[idx] == '.' && is_digit(s[idx + 1])) {
        is_float = 1;
        for (idx += 2; idx < len && is_digit(s[idx]); idx++)
            ;
    }
    /* exponent: needs a character after the 'e'; a sign is taken only if
     * yet another character follows; no digits => backtrack to the 'e'
     * (the backtrack alone would give the same result; the bounds are
     * kept as CPython has them) */
    if (idx + 1 < len && (s[idx] == 'e' || s[idx] == 'E')) {
        size_t e_start = idx++;
        if (idx + 1 < len && (s[idx] == '-' || s[idx] == '+'))
            idx++;
        while (idx < len && is_digit(s[idx]))
            idx++;
        if (is_digit(s[idx - 1]))
            is_float = 1;
        else
            idx = e_start;
    }
    *next = idx;
    return is_float ? real_value(p, start, idx) : int_value(p, start, idx);
}

/* --- containers (_parse_object_unicode, _parse_array_unicode) ------ */

static json_t *scan_once(pj_parser *p, size_t idx, size_t *next);

/* One "key": value member at idx (which must hold the key's quote). */
static int parse_member(pj_parser *p, json_t *obj, size_t idx, size_t *next)
{
    json_t *key, *val;
    int rc;

    if (idx >= p->len || p->s[idx] != '"') {
        fail_decode(p, "Expecting property name enclosed in double quotes", idx);
        return -1;
    }
    key = string_value(p, idx + 1, &idx);
    if (key == NULL)
        return -1;
    idx = skip_ws(p, idx);
    if (idx >= p->len || p->s[idx] != ':') {
        json_decref(key);
        fail_decode(p, "Expecting ':' delimiter", idx);
        return -1;
    }
    val = scan_once(p, skip_ws(p, idx + 1), next);
    if (val == NULL) {
        json_decref(key);
        return -1;
    }
    /* a dict: a repeated key keeps its first position and takes the last value */
    rc = json_object_setn_new_nocheck(obj, json_string_value(key),
                                      json_string_length(key), val);
    json_decref(key);
    if (rc != 0) {
        fail_unparsable(p);
        return -1;
    }
    return 0;
}

/* The object body after '{' at idx - 1. */
static json_t *parse_object(pj_parser *p, size_t idx, size_t *next)
{
    json_t *obj = json_object();

    if (obj == NULL)
        return fail_unparsable(p);
    idx = skip_ws(p, idx);
    /* members only if the object is not immediately closed */
    if (idx >= p->len || p->s[idx] != '}') {
        for (;;) {
            if (parse_member(p, obj, idx, &idx) != 0)
                goto bail;
            idx = skip_ws(p, idx);
            if (idx < p->len && p->s[idx] == '}')
                break;
            if (idx >= p->len || p->s[idx] != ',') {
                fail_decode(p, "Expecting ',' delimiter", idx);
                goto bail;
            }
            /* 3.11/3.12: after ',' a '}' is reported by parse_member as a
             * missing property name (no "Illegal trailing comma" yet) */
            idx = skip_ws(p, idx + 1);
        }
    }
    *next = idx + 1;
    return obj;
bail:
    json_decref(obj);
    return NULL;
}

/* The array body after '[' at idx - 1. */
static json_t *parse_array(pj_parser *p, size_t idx, size_t *next)
{
    json_t *arr = json_array();
    json_t *val;

    if (arr == NULL)
        return fail_unparsable(p);
    idx = skip_ws(p, idx);
    if (idx >= p->len || p->s[idx] != ']') {
        for (;;) {
            /* after ',' a ']' is just "Expecting value" from scan_once */
            val = scan_once(p, idx, &idx);
            if (val == NULL)
                goto bail;
            if (json_array_append_new(arr, val) != 0) {
                fail_unparsable(p);
                goto bail;
            }
            idx = skip_ws(p, idx);
            if (idx < p->len && p->s[idx] == ']')
                break;
            if (idx >= p->len || p->s[idx] != ',') {
                fail_decode(p, "Expecting ',' delimiter", idx);
                goto bail;
            }
            idx = skip_ws(p, idx + 1);
        }
    }
    /* CPython's trailing "idx > end_idx" check cannot fire: the loop only
     * exits on a ']' that is in range. */
    *next = idx + 1;
    return arr;
bail:
    json_decref(arr);
    return NULL;
}

/* Python's _Py_EnterRecursiveCall around both container parsers. */
static json_t *parse_container(pj_parser *p, size_t idx, size_t *next)
{
    json_t *v;

    if (p->depth >= US_PYTHON_JSON_MAX_DEPTH)
        return fail_unparsable(p); /* RecursionError */
    p->depth++;
    if (p->s[idx] == '{')
        v = parse_object(p, idx + 1, next);
    else
        v = parse_array(p, idx + 1, next);
    p->depth--;
    return v;
}

/* Does s[idx..) spell word (ASCII)?  The scanner checks that the last
 * letter is in range before comparing, which is the same thing. */
static int has_word(const pj_parser *p, size_t idx, const char *word)
{
    size_t n = strlen(word);

    if (idx + n > p->len)
        return 0;
    for (size_t k = 0; k < n; k++)
        if (p->s[idx + k] != (unsigned char)word[k])
            return 0;
    return 1;
}

/* NaN/Infinity/-Infinity: accepted by Python, not representable here. */
static json_t *constant_value(pj_parser *p, size_t idx, const char *word, size_t *next)
{
    *next = idx + strlen(word);
    p->unrepresentable = 1;
    return json_null();
}

/* scan_once_unicode: one value at exactly idx (no whitespace skipping). */
static json_t *scan_once(pj_parser *p, size_t idx, size_t *next)
{
    if (idx >= p->len)
        return stop_iteration(p, idx);
    if (++p->values > p->max_values && p->max_values)
        return fail_too_large(p);
    switch (p->s[idx]) {
    case '"':
        return string_value(p, idx + 1, next);
    case '{':
    case '[':
        return parse_container(p, idx, next);
    case 'n':
        if (has_word(p, idx, "null")) {
            *next = idx + 4;
            return json_null();
        }
        break;
    case 't':
        if (has_word(p, idx, "true")) {
            *next = idx + 4;
            return json_true();
        }
        break;
    case 'f':
        if (has_word(p, idx, "false")) {
            *next = idx + 5;
            return json_false();
        }
        break;
    case 'N':
        if (has_word(p, idx, "NaN"))
            return constant_value(p, idx, "NaN", next);
        break;
    case 'I':
        if (has_word(p, idx, "Infinity"))
            return constant_value(p, idx, "Infinity", next);
        break;
    case '-':
        if (has_word(p, idx, "-Infinity"))
            return constant_value(p, idx, "-Infinity", next);
        break;
    default:
        break;
    }
    /* anything else (including a broken literal) is tried as a number */
    return match_number(p, idx, next);
}

/* JSONDecoder.decode: skip whitespace, raw_decode, skip whitespace, and
 * anything left is "Extra data". */
static json_t *decode_document(pj_parser *p)
{
    size_t end;
    json_t *v = scan_once(p, skip_ws(p, 0), &end);

    if (v == NULL)
        return NULL;
    end = skip_ws(p, end);
    if (end != p->len) {
        json_decref(v);
        return fail_decode(p, "Extra data", end);
    }
    if (p->unrepresentable) {
        json_decref(v);
        return fail_unparsable(p);
    }
    return v;
}

us_python_json_status us_python_json_parse(const char *buf, size_t len, json_t **out,
                                 us_python_json_error *err)
{
    return us_python_json_parse_capped(buf, len, 0, out, err);
}

us_python_json_status us_python_json_parse_capped(const char *buf, size_t len, size_t max_values,
                                                  json_t **out, us_python_json_error *err)
{
    pj_parser p;
    uint32_t *cps;
    size_t n = 0;
    json_t *v;

    *out = NULL;
    if (buf == NULL && len != 0)
        return US_PYTHON_JSON_UNPARSABLE;
    cps = decode_body((const unsigned char *)(buf != NULL ? buf : ""), len, &n);
    if (cps == NULL)
        return US_PYTHON_JSON_UNPARSABLE; /* UnicodeDecodeError (or no memory) */
    memset(&p, 0, sizeof(p));
    p.s = cps;
    p.len = n;
    p.err = err;
    p.max_values = max_values;
    p.status = US_PYTHON_JSON_OK;
    v = decode_document(&p);
    free(p.buf);
    free(cps);
    if (v == NULL)
        return p.status;
    *out = v;
    return US_PYTHON_JSON_OK;
}

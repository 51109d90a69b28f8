/*
 * us_validate.c - FastAPI + pydantic v2 compatible validation (pure: jansson
 * and libc only).
 *
 * The rules below mirror, branch by branch, the sources FastAPI runs:
 *   - pydantic-core src/input/input_python.rs (FastAPI validates in *python*
 *     mode: the body is json.loads()'d first, query/path values are str);
 *   - pydantic-core src/input/shared.rs (str_as_bool, int_as_bool,
 *     str_as_int / clean_int_str / strip_leading_zeros, float_as_int);
 *   - pydantic-core src/validators/{int,literal,enum_,uuid}.rs;
 *   - jiter NumberInt::try_from (strict JSON integer grammar, 4300 digits);
 *   - uuid crate src/parser.rs (try_parse) and src/error.rs (into_err and
 *     Display, newest wording "invalid character: found `x` at 1").
 * Where those and /work/shared/API.md disagree, API.md wins (noted inline).
 */
#include "us_validate.h"
#include "us_python_json.h"
#include "us_utf8.h"
#include "us_uuid.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- messages (pydantic-core src/errors/types.rs, python templates) ------ */

#define MSG_MISSING     "Field required"
#define MSG_JSON        "JSON decode error" /* FastAPI's own wording */
#define MSG_MODEL_ATTRS "Input should be a valid dictionary or object to extract fields from"
#define MSG_BOOL_TYPE   "Input should be a valid boolean"
#define MSG_BOOL_PARSE  "Input should be a valid boolean, unable to interpret input"
#define MSG_INT_TYPE    "Input should be a valid integer"
#define MSG_INT_PARSE   "Input should be a valid integer, unable to parse string as an integer"
#define MSG_INT_FLOAT   "Input should be a valid integer, got a number with a fractional part"
#define MSG_INT_SIZE    "Unable to parse input string as an integer, exceeded maximum size"
#define MSG_FINITE      "Input should be a finite number"
#define MSG_STRING_TYPE "Input should be a valid string"
#define MSG_LIST_TYPE   "Input should be a valid list"
#define MSG_DICT_TYPE   "Input should be a valid dictionary"

/* ---- small string builder ------------------------------------------------ */

typedef struct {
    char *p;
    size_t len, cap;
    int oom;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_str(sbuf *b, const char *s) { sb_add(b, s, strlen(s)); }

/* Returns the built string (caller frees) or NULL on allocation failure. */
static char *sb_take(sbuf *b)
{
    if (b->oom || !b->p) {
        free(b->p);
        return b->oom ? NULL : strdup("");
    }
    return b->p;
}

/* ---- items ---------------------------------------------------------------- */

json_t *us_validation_error(const char *type, json_t *loc, const char *msg, json_t *input,
                json_t *ctx)
{
    json_t *item = json_object();

    if (!item) {
        json_decref(loc);
        json_decref(input);
        json_decref(ctx);
        return NULL;
    }
    /* Key order is the wire order: type, loc, msg, input, ctx. */
    json_object_set_new(item, "type", json_string(type));
    json_object_set_new(item, "loc", loc ? loc : json_array());
    json_object_set_new(item, "msg", json_string(msg));
    json_object_set_new(item, "input", input ? input : json_null());
    if (ctx)
        json_object_set_new(item, "ctx", ctx);
    return item;
}

static void add_err(json_t *errs, const char *type, json_t *loc, const char *msg,
                    json_t *input, json_t *ctx)
{
    json_t *item = us_validation_error(type, loc, msg, input, ctx);

    if (item && errs)
        json_array_append_new(errs, item);
    else
        json_decref(item);
}

static json_t *loc_of(const char *where, const char *name)
{
    return name ? json_pack("[ss]", where, name) : json_pack("[s]", where);
}

/* Borrowed value -> new reference, for echoing the input as given. */
static json_t *echo(json_t *v) { return json_incref(v); }

/* ---- UTF-8 --------------------------------------------------------------- */

/* bytes.decode("utf-8", "replace"): one U+FFFD per maximal ill-formed
 * subpart, as CPython does. Returns a malloc'd string, length in *outlen. */
static char *py_decode(const char *s, size_t n, size_t *outlen)
{
    char *out = malloc(3 * n + 1);

    if (out)
        *outlen = us_utf8_replace(s, n, out);
    return out;
}

/* A JSON string of raw bytes decoded like Python (embedded NULs kept). */
static json_t *py_string(const char *s, size_t n)
{
    size_t len;
    char *d = py_decode(s ? s : "", s ? n : 0, &len);
    json_t *j = d ? json_stringn(d, len) : NULL;

    free(d);
    return j;
}

/* Rust char::is_whitespace (Unicode White_Space), for str::trim(). */
static int is_rust_ws(unsigned long cp)
{
    return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 ||
           cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
           cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
           cp == 0x3000;
}

/* Decodes the (valid) UTF-8 code point at s of byte length k. */
static unsigned long utf8_cp(const unsigned char *s, size_t k)
{
    static const unsigned char mask[5] = {0, 0x7F, 0x1F, 0x0F, 0x07};
    unsigned long cp = s[0] & mask[k];

    for (size_t i = 1; i < k; i++)
        cp = (cp << 6) | (s[i] & 0x3F);
    return cp;
}

/* str::trim() on valid UTF-8 [*b, *e). */
static void rust_trim(const char **b, const char **e)
{
    size_t bad, k;

    while (*b < *e) {
        k = us_utf8_seq((const unsigned char *)*b, (size_t)(*e - *b), &bad);
        if (!k || !is_rust_ws(utf8_cp((const unsigned char *)*b, k)))
            break;
        *b += k;
    }
    while (*e > *b) {
        const char *p = *e - 1;
        while (p > *b && ((unsigned char)*p & 0xC0) == 0x80)
            p--;
        k = us_utf8_seq((const unsigned char *)p, (size_t)(*e - p), &bad);
        if (!k || !is_rust_ws(utf8_cp((const unsigned char *)p, k)))
            break;
        *e = p;
    }
}

/* The canonical form (36 characters, lowercase hex, dashes at 8, 13, 18
 * and 23) is what every client sends back and what the parse would give:
 * copied as it is, without decoding and parsing it (~2,800 instructions). */
static int canonical_uuid(const char *v, char out[37])
{
    for (int i = 0; i < 36; i++) {
        char ch = v[i];
        if (i == 8 || i == 13 || i == 18 || i == 23 ? ch != '-'
                                                    : !((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')))
            return 0;
    }
    if (v[36] != '\0')
        return 0;
    memcpy(out, v, 37);
    return 1;
}

static int validate_uuid(json_t *errs, const char *where, const char *name, const char *value,
                         char out[37])
{
    char reason[160];
    size_t n;
    if (value && canonical_uuid(value, out))
        return 1;
    /* Starlette unquotes paths with errors="replace": invalid UTF-8 reaches
     * pydantic as U+FFFD, which the crate then reports as the bad character. */
    char *s = py_decode(value ? value : "", value ? strlen(value) : 0, &n);
    int ok;

    if (!s)
        return 0;
    ok = us_uuid_parse(s, out, reason, sizeof reason);
    if (!ok) {
        char msg[200];
        snprintf(msg, sizeof msg, "Input should be a valid UUID, %s", reason);
        add_err(errs, "uuid_parsing", loc_of(where, name), msg, json_stringn(s, n),
                json_pack("{ss}", "error", reason));
    }
    free(s);
    return ok;
}

int us_validate_path_uuid(json_t *errs, const char *name, const char *value, char out[37])
{
    return validate_uuid(errs, "path", name, value, out);
}

int us_validate_query_uuid(json_t *errs, const char *name, const char *raw, char out[37])
{
    out[0] = '\0';
    return raw ? validate_uuid(errs, "query", name, raw, out) : 1;
}

/* ---- bool (shared.rs str_as_bool / int_as_bool, input_python.rs) ---------- */

typedef enum { B_FALSE = 0, B_TRUE = 1, B_PARSING, B_TYPE } bool_res;

static int ascii_ieq(const char *s, size_t n, const char *word)
{
    size_t i;

    for (i = 0; i < n && word[i]; i++) {
        char a = s[i], w = word[i];
        if (a >= 'A' && a <= 'Z')
            a = (char)(a - 'A' + 'a');
        if (a != w)
            return 0;
    }
    return i == n && word[i] == '\0';
}

/* "0"/"1" exact; the words ASCII case-insensitive; no trimming. */
static bool_res str_as_bool(const char *s, size_t n)
{
    static const char *const no[] = {"f", "n", "no", "off", "false", NULL};
    static const char *const yes[] = {"t", "y", "on", "yes", "true", NULL};

    if (n == 1 && s[0] == '0')
        return B_FALSE;
    if (n == 1 && s[0] == '1')
        return B_TRUE;
    for (int i = 0; no[i]; i++)
        if (ascii_ieq(s, n, no[i]))
            return B_FALSE;
    for (int i = 0; yes[i]; i++)
        if (ascii_ieq(s, n, yes[i]))
            return B_TRUE;
    return B_PARSING;
}

/* float_as_int's acceptance: finite, no fractional part, inside
 * (i64::MIN, i64::MAX) as f64 (both bounds excluded: they are +-2^63). */
typedef enum { F_OK, F_NOT_FINITE, F_FRACTION, F_RANGE } float_res;

static float_res float_as_int(double f, long long *out)
{
    if (isnan(f) || isinf(f))
        return F_NOT_FINITE;
    /* |f| >= 2^52 has no fraction bits; below, the cast is exact. */
    if (f < 4503599627370496.0 && f > -4503599627370496.0 && (double)(long long)f != f)
        return F_FRACTION;
    if (!(-9223372036854775808.0 < f && f < 9223372036854775808.0))
        return F_RANGE;
    *out = (long long)f;
    return F_OK;
}

/* input_python.rs validate_bool, lax mode, for a json.loads() value. */
static bool_res json_as_bool(json_t *v)
{
    long long i;

    switch (json_typeof(v)) {
    case JSON_TRUE:
        return B_TRUE;
    case JSON_FALSE:
        return B_FALSE;
    case JSON_STRING:
        return str_as_bool(json_string_value(v), json_string_length(v));
    case JSON_INTEGER: /* int_as_bool */
        i = json_integer_value(v);
        return i == 0 ? B_FALSE : i == 1 ? B_TRUE : B_PARSING;
    case JSON_REAL:
        /* float_as_int failing (1.5, out of i64) is bool_type, not parsing */
        if (float_as_int(json_real_value(v), &i) != F_OK)
            return B_TYPE;
        return i == 0 ? B_FALSE : i == 1 ? B_TRUE : B_PARSING;
    default:
        return B_TYPE;
    }
}

/* Reports a bool_res failure; returns 1 and sets *out on success. Steals
 * loc and input. */
static int bool_finish(json_t *errs, json_t *loc, json_t *input, bool_res r, int *out)
{
    if (r == B_TRUE || r == B_FALSE) {
        *out = (int)r;
        json_decref(loc);
        json_decref(input);
        return 1;
    }
    if (r == B_PARSING)
        add_err(errs, "bool_parsing", loc, MSG_BOOL_PARSE, input, NULL);
    else
        add_err(errs, "bool_type", loc, MSG_BOOL_TYPE, input, NULL);
    return 0;
}

/* ---- int (shared.rs str_as_int, jiter NumberInt) ----------------------- */

typedef enum { I_OK, I_PARSING, I_SIZE, I_FRACTION, I_FINITE, I_TYPE } int_res;

/* An integer that may lie beyond long long: ovf = +1 above, -1 below. */
typedef struct {
    long long v;
    int ovf;
} wide_int;

#define JITER_MAX_INT_LEN 4300 /* CPython's int str-conversion digit limit */

/* jiter NumberInt::try_from: the whole of s must be -?(0|[1-9][0-9]*).
 * A digit run (with its sign) longer than 4300 bytes is NumberOutOfRange,
 * even when followed by junk. */
static int_res json_int_exact(const char *s, size_t n, wide_int *out)
{
    size_t i = 0, j;
    int neg = 0;
    unsigned long long mag = 0, lim;

    if (n && s[0] == '-')
        neg = 1, i = 1;
    if (i >= n)
        return I_PARSING;
    if (s[i] == '0')
        return i + 1 == n ? (out->v = 0, out->ovf = 0, I_OK) : I_PARSING;
    if (s[i] < '1' || s[i] > '9')
        return I_PARSING;
    lim = neg ? (unsigned long long)LLONG_MAX + 1 : (unsigned long long)LLONG_MAX;
    out->ovf = 0;
    for (j = i; j < n && s[j] >= '0' && s[j] <= '9'; j++) {
        unsigned d = (unsigned)(s[j] - '0');
        if (out->ovf || mag > (lim - d) / 10)
            out->ovf = neg ? -1 : 1;
        else
            mag = mag * 10 + d;
    }
    if (j > JITER_MAX_INT_LEN)
        return I_SIZE;
    if (j != n)
        return I_PARSING;
    if (out->ovf)
        out->v = neg ? LLONG_MIN : LLONG_MAX;
    else if (neg)
        out->v = mag > (unsigned long long)LLONG_MAX ? LLONG_MIN : -(long long)mag;
    else
        out->v = (long long)mag;
    return I_OK;
}

/* strip_leading_zeros: NULL for "None". */
static const char *strip_leading_zeros(const char *p, const char *e)
{
    if (p == e)
        return NULL;
    if (*p != '0')
        return ((*p >= '1' && *p <= '9') || *p == '-') ? p : NULL;
    for (const char *q = p + 1; q < e; q++) {
        if (*q == '0' || *q == '_')
            continue;
        if ((*q >= '1' && *q <= '9') || *q == '-')
            return q;
        if (*q == '.')
            return q - 1; /* keep one zero before the dot */
        return NULL;
    }
    return e - 1; /* all zeros/underscores: keep the last one */
}

/* Python int() underscores: not leading/trailing, never doubled. */
static int underscores_strippable(const char *p, const char *e)
{
    if (p == e || *p == '_' || e[-1] == '_' || !memchr(p, '_', (size_t)(e - p)))
        return 0;
    for (const char *q = p; q + 1 < e; q++)
        if (q[0] == '_' && q[1] == '_')
            return 0;
    return 1;
}

/* clean_int_str: writes the cleaned string to buf (size >= n + 2) and
 * returns its length, or -1 for "None" (not an integer string). */
static long clean_int_str(const char *s, size_t n, char *buf)
{
    const char *p = s, *e = s + n, *dot;
    int neg = 0, strip_us;
    size_t o = 0;

    rust_trim(&p, &e);
    if (p < e && *p == '+') {
        if (++p < e && *p == '-')
            return -1;
    }
    if (p < e && *p == '-') {
        if (p + 1 < e && (p[1] == '-' || p[1] == '+'))
            return -1;
        neg = 1;
        p++;
    }
    if (!(p = strip_leading_zeros(p, e)))
        return -1;
    /* "1.000" -> "1" (never via a float, which would lose precision) */
    if ((dot = memchr(p, '.', (size_t)(e - p))) && dot + 1 < e) {
        const char *q = dot + 1;
        while (q < e && *q == '0')
            q++;
        if (q == e)
            e = dot;
    }
    strip_us = underscores_strippable(p, e);
    if (!strip_us && (size_t)(e - p) == n)
        return -1; /* nothing was cleaned */
    if (neg)
        buf[o++] = '-';
    for (; p < e; p++)
        if (!strip_us || *p != '_')
            buf[o++] = *p;
    buf[o] = '\0';
    return (long)o;
}

/* str_as_int: exact JSON integer first, then the cleaned string. */
static int_res str_as_int(const char *s, size_t n, wide_int *out)
{
    int_res r = json_int_exact(s, n, out);
    char *buf;
    long cn;

    if (r == I_OK || r == I_SIZE)
        return r;
    if (!(buf = malloc(n + 2)))
        return I_PARSING;
    cn = clean_int_str(s, n, buf);
    r = cn < 0 ? I_PARSING : json_int_exact(buf, (size_t)cn, out);
    free(buf);
    return r == I_OK ? I_OK : I_PARSING; /* any second-pass failure */
}

/* input_python.rs validate_int, lax mode, for a json.loads() value. */
static int_res json_as_int(json_t *v, wide_int *out)
{
    long long i = 0;

    out->ovf = 0;
    switch (json_typeof(v)) {
    case JSON_INTEGER:
        out->v = json_integer_value(v);
        return I_OK;
    case JSON_TRUE: /* bool is an int subclass: lax 1/0 */
    case JSON_FALSE:
        out->v = json_is_true(v);
        return I_OK;
    case JSON_STRING:
        return str_as_int(json_string_value(v), json_string_length(v), out);
    case JSON_REAL:
        switch (float_as_int(json_real_value(v), &i)) {
        case F_OK:
            out->v = i;
            return I_OK;
        case F_FRACTION:
            return I_FRACTION;
        case F_RANGE:
            return I_SIZE;
        default:
            return I_FINITE;
        }
    default:
        return I_TYPE;
    }
}

/* ConstrainedIntValidator: le is checked before ge. */
static int int_range(json_t *errs, json_t *loc, json_t *input, const wide_int *w,
                     long long ge, long long le)
{
    char msg[96];

    if (w->ovf > 0 || (!w->ovf && w->v > le)) {
        snprintf(msg, sizeof msg, "Input should be less than or equal to %lld", le);
        add_err(errs, "less_than_equal", loc, msg, input, json_pack("{sI}", "le", (json_int_t)le));
        return 0;
    }
    if (w->ovf < 0 || w->v < ge) {
        snprintf(msg, sizeof msg, "Input should be greater than or equal to %lld", ge);
        add_err(errs, "greater_than_equal", loc, msg, input,
                json_pack("{sI}", "ge", (json_int_t)ge));
        return 0;
    }
    json_decref(loc);
    json_decref(input);
    return 1;
}

/* Reports an int_res failure or range problem; steals loc and input. */
static int int_finish(json_t *errs, json_t *loc, json_t *input, int_res r,
                      const wide_int *w, long long ge, long long le, long long *out)
{
    switch (r) {
    case I_OK:
        if (!int_range(errs, loc, input, w, ge, le))
            return 0;
        *out = w->v;
        return 1;
    case I_PARSING:
        add_err(errs, "int_parsing", loc, MSG_INT_PARSE, input, NULL);
        return 0;
    case I_SIZE:
        add_err(errs, "int_parsing_size", loc, MSG_INT_SIZE, input, NULL);
        return 0;
    case I_FRACTION:
        add_err(errs, "int_from_float", loc, MSG_INT_FLOAT, input, NULL);
        return 0;
    case I_FINITE:
        add_err(errs, "finite_number", loc, MSG_FINITE, input, NULL);
        return 0;
    default:
        add_err(errs, "int_type", loc, MSG_INT_TYPE, input, NULL);
        return 0;
    }
}

/* ---- enum / literal (literal.rs expected_repr_name) -------------------- */

/* Python repr() of a str: single quotes unless the text has ' and no ". */
static void py_repr(sbuf *b, const char *s)
{
    char q = (strchr(s, '\'') && !strchr(s, '"')) ? '"' : '\'';
    char esc[8];

    sb_add(b, &q, 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '\\' || *p == (unsigned char)q) {
            esc[0] = '\\', esc[1] = (char)*p;
            sb_add(b, esc, 2);
        } else if (*p == '\n' || *p == '\r' || *p == '\t') {
            esc[0] = '\\', esc[1] = *p == '\n' ? 'n' : *p == '\r' ? 'r' : 't';
            sb_add(b, esc, 2);
        } else if (*p < 0x20 || *p == 0x7F) {
            snprintf(esc, sizeof esc, "\\x%02x", *p);
            sb_str(b, esc);
        } else
            sb_add(b, (const char *)p, 1);
    }
    sb_add(b, &q, 1);
}

/* "'A'", "'A' or 'B'", "'A', 'B' or 'C'" */
static char *expected_repr(const char *const *allowed)
{
    sbuf b = {0};
    size_t n = 0;

    while (allowed[n])
        n++;
    sb_add(&b, "", 0);
    for (size_t i = 0; i < n; i++) {
        if (i)
            sb_str(&b, i + 1 == n ? " or " : ", ");
        py_repr(&b, allowed[i]);
    }
    return sb_take(&b);
}

/* Index of the allowed value equal to s[0..n), or -1. Only str inputs can
 * equal a str value (StrEnumValidator / exact_str lookups). */
static int find_allowed(const char *s, size_t n, const char *const *allowed)
{
    for (int i = 0; allowed[i]; i++)
        if (strlen(allowed[i]) == n && memcmp(allowed[i], s, n) == 0)
            return i;
    return -1;
}

/* An "enum"/"literal_error" item: msg "Input should be <expected>". */
static void choice_err(json_t *errs, const char *type, json_t *loc, json_t *input,
                       const char *const *allowed)
{
    char *exp = expected_repr(allowed);
    char *msg = NULL;

    if (exp && (msg = malloc(strlen(exp) + 32)) != NULL) {
        sprintf(msg, "Input should be %s", exp);
        add_err(errs, type, loc, msg, input, json_pack("{ss}", "expected", exp));
    } else {
        json_decref(loc);
        json_decref(input);
    }
    free(msg);
    free(exp);
}

/* ---- query parameters ---------------------------------------------------- */

/* Starlette decodes query values with errors="replace". NULL on OOM. */
static char *query_text(const char *raw, size_t *n)
{
    return py_decode(raw, strlen(raw), n);
}

/* A query integer in [ge, le]; open_top: no upper bound, a value past
 * long long read as LLONG_MAX. */
static int query_int(json_t *errs, const char *name, const char *raw, long long def,
                     long long ge, long long le, int open_top, long long *out)
{
    wide_int w = {0, 0};
    size_t n;
    char *s;
    int ok;

    *out = def; /* defaults are not validated (pydantic) */
    if (!raw)
        return 1;
    if (!(s = query_text(raw, &n)))
        return 0;
    int_res r = str_as_int(s, n, &w);
    if (open_top && r == I_OK && w.ovf > 0) /* above long long: as far as it goes */
        w = (wide_int){ LLONG_MAX, 0 };
    ok = int_finish(errs, loc_of("query", name), json_stringn(s, n), r, &w, ge, le, out);
    if (!ok)
        *out = def;
    free(s);
    return ok;
}

int us_validate_query_int(json_t *errs, const char *name, const char *raw,
                   long long def, long long ge, long long le, long long *out)
{
    return query_int(errs, name, raw, def, ge, le, 0, out);
}

int us_validate_query_int_from(json_t *errs, const char *name, const char *raw,
                               long long def, long long ge, long long *out)
{
    return query_int(errs, name, raw, def, ge, LLONG_MAX, 1, out);
}

int us_validate_query_bool(json_t *errs, const char *name, const char *raw, int *out)
{
    size_t n;
    char *s;
    int ok;

    *out = -1;
    if (!raw)
        return 1;
    if (!(s = query_text(raw, &n)))
        return 0;
    ok = bool_finish(errs, loc_of("query", name), json_stringn(s, n),
                     str_as_bool(s, n), out);
    free(s);
    return ok;
}

int us_validate_query_enum(json_t *errs, const char *name, const char *raw,
                    const char *const *allowed, const char **out)
{
    size_t n;
    char *s;
    int i;

    *out = NULL;
    if (!raw)
        return 1;
    if (!(s = query_text(raw, &n)))
        return 0;
    if ((i = find_allowed(s, n, allowed)) >= 0)
        *out = allowed[i];
    else
        choice_err(errs, "enum", loc_of("query", name), json_stringn(s, n), allowed);
    free(s);
    return i >= 0;
}

/* ---- request body -------------------------------------------------------- */

/* Python str.strip() whitespace as seen in a latin-1 decoded header. */
static int header_ws(unsigned char c)
{
    return c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F) ||
           c == 0x85 || c == 0xA0;
}

/* FastAPI: email.message get_content_type() -- the part before ';',
 * stripped, lower-cased, exactly one '/' -- then maintype "application" and
 * subtype "json" or "*+json". API.md: an absent header is NOT JSON. */
static int is_json_content_type(const char *ct)
{
    const char *b = ct, *e, *slash;
    size_t sub;

    if (!ct)
        return 0;
    e = strchr(ct, ';');
    if (!e)
        e = ct + strlen(ct);
    while (b < e && header_ws((unsigned char)*b))
        b++;
    while (e > b && header_ws((unsigned char)e[-1]))
        e--;
    slash = memchr(b, '/', (size_t)(e - b));
    if (!slash || memchr(slash + 1, '/', (size_t)(e - slash - 1)))
        return 0;
    if (!ascii_ieq(b, (size_t)(slash - b), "application"))
        return 0;
    sub = (size_t)(e - slash - 1);
    return ascii_ieq(slash + 1, sub, "json") ||
           (sub >= 5 && ascii_ieq(e - 5, 5, "+json"));
}

static json_t *body_loc(void) { return json_pack("[s]", "body"); }

/* FastAPI's json_invalid item, reported alone (errs is emptied first). */
static void json_invalid(json_t *errs, const us_python_json_error *pe)
{
    json_array_clear(errs);
    add_err(errs, "json_invalid", json_pack("[sI]", "body", (json_int_t)pe->pos),
            MSG_JSON, json_object(), json_pack("{ss}", "error", pe->msg));
}

us_body_status us_validate_body_object(json_t *errs, const char *content_type,
                                const char *raw, size_t len, size_t max_values, json_t **obj)
{
    us_python_json_error pe;
    json_t *v = NULL;

    *obj = NULL;
    if (!raw || len == 0) { /* no body at all: required field missing */
        add_err(errs, "missing", body_loc(), MSG_MISSING, json_null(), NULL);
        return US_BODY_INVALID;
    }
    if (!is_json_content_type(content_type)) { /* validated as the raw bytes */
        add_err(errs, "model_attributes_type", body_loc(), MSG_MODEL_ATTRS,
                py_string(raw, len), NULL);
        return US_BODY_INVALID;
    }
    memset(&pe, 0, sizeof pe);
    switch (us_python_json_parse_capped(raw, len, max_values, &v, &pe)) {
    case US_PYTHON_JSON_OK:
        break;
    case US_PYTHON_JSON_DECODE_ERROR:
        json_invalid(errs, &pe);
        return US_BODY_JSON_ERROR;
    case US_PYTHON_JSON_TOO_LARGE:
        return US_BODY_TOO_LARGE;
    default:
        return US_BODY_UNPARSABLE;
    }
    if (json_is_null(v)) { /* FastAPI: a None body is a missing body */
        json_decref(v);
        add_err(errs, "missing", body_loc(), MSG_MISSING, json_null(), NULL);
        return US_BODY_INVALID;
    }
    if (!json_is_object(v)) {
        add_err(errs, "model_attributes_type", body_loc(), MSG_MODEL_ATTRS, v, NULL);
        return US_BODY_INVALID;
    }
    *obj = v;
    return US_BODY_OK;
}

/* The field's value, or NULL when absent (then the default applies). */
static json_t *body_field(json_t *body, const char *field)
{
    return json_is_object(body) ? json_object_get(body, field) : NULL;
}

void us_validate_missing(json_t *errs, const char *where, const char *name, json_t *input)
{
    add_err(errs, "missing", loc_of(where, name), MSG_MISSING, input, NULL);
}

int us_validate_json_type(json_t *errs, json_t *loc, json_t *v, json_type type)
{
    const char *kind = type == JSON_STRING ? "string_type"
                       : type == JSON_ARRAY ? "list_type" : "dict_type";
    const char *msg = type == JSON_STRING  ? MSG_STRING_TYPE
                      : type == JSON_ARRAY ? MSG_LIST_TYPE : MSG_DICT_TYPE;

    if (v && json_typeof(v) == type) {
        json_decref(loc);
        return 1;
    }
    add_err(errs, kind, loc, msg, echo(v), NULL);
    return 0;
}

json_t *us_validate_body_required(json_t *errs, json_t *body, const char *field, json_type type)
{
    json_t *v = body_field(body, field);

    if (!v) {
        us_validate_missing(errs, "body", field, echo(body));
        return NULL;
    }
    return us_validate_json_type(errs, loc_of("body", field), v, type) ? v : NULL;
}

int us_validate_body_bool(json_t *errs, json_t *body, const char *field, int def, int *out)
{
    json_t *v = body_field(body, field);

    *out = def;
    if (!v)
        return 1;
    if (bool_finish(errs, loc_of("body", field), echo(v), json_as_bool(v), out))
        return 1;
    *out = def;
    return 0;
}

int us_validate_body_int(json_t *errs, json_t *body, const char *field, long long def,
                  long long ge, long long le, long long *out)
{
    json_t *v = body_field(body, field);
    wide_int w = {0, 0};

    *out = def;
    if (!v)
        return 1;
    if (int_finish(errs, loc_of("body", field), echo(v), json_as_int(v, &w), &w, ge,
                   le, out))
        return 1;
    *out = def;
    return 0;
}

int us_validate_body_enum(json_t *errs, json_t *body, const char *field,
                   const char *const *allowed, const char *def, const char **out)
{
    json_t *v = body_field(body, field);
    int i = -1;

    *out = def;
    if (!v)
        return 1;
    if (json_is_string(v))
        i = find_allowed(json_string_value(v), json_string_length(v), allowed);
    if (i >= 0) {
        *out = allowed[i];
        return 1;
    }
    choice_err(errs, "enum", loc_of("body", field), echo(v), allowed);
    return 0;
}

int us_validate_body_literal(json_t *errs, json_t *body, const char *field,
                      const char *expected)
{
    const char *const one[2] = {expected, NULL};
    json_t *v = body_field(body, field);

    if (!v)
        return 1; /* the default is the literal itself */
    if (json_is_string(v) &&
        find_allowed(json_string_value(v), json_string_length(v), one) == 0)
        return 1;
    choice_err(errs, "literal_error", loc_of("body", field), echo(v), one);
    return 0;
}

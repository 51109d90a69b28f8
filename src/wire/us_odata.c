/* us_odata.c - see us_odata.h: a recursive-descent parser over a small lexer. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <apr_strings.h>
#include <apr_tables.h>

#include "us_odata.h"
#include "us_time.h"
#include "us_utf8.h"

typedef enum { T_END, T_LPAREN, T_RPAREN, T_COMMA, T_SLASH, T_IDENT, T_STRING, T_NUMBER, T_DATETIME } tok_kind;

typedef struct {
    tok_kind kind;
    apr_size_t at;   /* byte offset of its first character */
    apr_size_t len;  /* bytes, as written */
} token;

typedef struct {
    apr_pool_t *p;
    const char *s;
    apr_size_t n;
    apr_size_t pos; /* the lexer's byte offset */
    token tok;      /* the current token */
    int terms;
    const char *err;
} parser;

/* ---- errors ---------------------------------------------------------------------- */

/* The character index of byte offset at (s is valid UTF-8 up to there). */
static apr_size_t char_index(const parser *ps, apr_size_t at)
{
    apr_size_t chars = 0;
    for (apr_size_t i = 0; i < at && i < ps->n; i++)
        chars += ((unsigned char)ps->s[i] & 0xC0) != 0x80;
    return chars;
}

static int fail(parser *ps, apr_size_t at, const char *what)
{
    if (!ps->err)
        ps->err = apr_psprintf(ps->p, "%s at position %" APR_SIZE_T_FMT, what, char_index(ps, at));
    return 0;
}

/* The current token as written, quoted for a message. */
static const char *tok_text(const parser *ps)
{
    if (ps->tok.kind == T_END)
        return "the end of the filter";
    apr_size_t len = ps->tok.len > 40 ? 40 : ps->tok.len;
    return apr_psprintf(ps->p, "'%.*s%s'", (int)len, ps->s + ps->tok.at, len < ps->tok.len ? "..." : "");
}

static int fail_unexpected(parser *ps, const char *expected)
{
    return fail(ps, ps->tok.at, apr_psprintf(ps->p, "expected %s, found %s", expected, tok_text(ps)));
}

/* ---- lexer ----------------------------------------------------------------------- */

static int is_ident_start(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' || c >= 0x80;
}

static int is_ident_char(unsigned char c)
{
    return is_ident_start(c) || (c >= '0' && c <= '9');
}

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* A date-time starts like 2024-01-31. */
static int looks_like_date(const char *s, apr_size_t n)
{
    static const char SHAPE[] = "dddd-dd-dd";
    if (n < sizeof(SHAPE) - 1)
        return 0;
    for (apr_size_t i = 0; i < sizeof(SHAPE) - 1; i++)
        if (SHAPE[i] == 'd' ? !is_digit((unsigned char)s[i]) : s[i] != SHAPE[i])
            return 0;
    return 1;
}

static apr_size_t scan_number(const char *s, apr_size_t n)
{
    apr_size_t i = 0;
    if (i < n && s[i] == '-')
        i++;
    while (i < n && is_digit((unsigned char)s[i]))
        i++;
    if (i + 1 < n && s[i] == '.' && is_digit((unsigned char)s[i + 1])) {
        i++;
        while (i < n && is_digit((unsigned char)s[i]))
            i++;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        apr_size_t j = i + 1;
        if (j < n && (s[j] == '+' || s[j] == '-'))
            j++;
        if (j < n && is_digit((unsigned char)s[j])) {
            while (j < n && is_digit((unsigned char)s[j]))
                j++;
            i = j;
        }
    }
    return i;
}

/* Reads the next token into ps->tok; 0 on a lexical error. */
static int next(parser *ps)
{
    const char *s = ps->s;
    apr_size_t n = ps->n, i = ps->pos;
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n'))
        i++;
    ps->tok.at = i;
    if (i == n) {
        ps->tok.kind = T_END;
        ps->tok.len = 0;
        ps->pos = i;
        return 1;
    }
    unsigned char c = (unsigned char)s[i];
    apr_size_t j = i + 1;
    switch (c) {
    case '(': ps->tok.kind = T_LPAREN; break;
    case ')': ps->tok.kind = T_RPAREN; break;
    case ',': ps->tok.kind = T_COMMA; break;
    case '/': ps->tok.kind = T_SLASH; break;
    case '\'':
    case '"':
        for (;; j++) {
            if (j == n)
                return fail(ps, i, "unterminated string");
            if (s[j] == '\0')
                return fail(ps, j, "NUL character in a string");
            if ((unsigned char)s[j] == c) {
                if (j + 1 < n && (unsigned char)s[j + 1] == c) {
                    j++; /* a doubled quote stands for one */
                    continue;
                }
                j++;
                break;
            }
        }
        ps->tok.kind = T_STRING;
        break;
    default:
        if (is_ident_start(c)) {
            while (j < n && is_ident_char((unsigned char)s[j]))
                j++;
            ps->tok.kind = T_IDENT;
        } else if (is_digit(c) || (c == '-' && i + 1 < n && is_digit((unsigned char)s[i + 1]))) {
            if (looks_like_date(s + i, n - i)) {
                j = i;
                while (j < n && (is_digit((unsigned char)s[j]) || s[j] == '-' || s[j] == ':' ||
                                 s[j] == '.' || s[j] == '+' || s[j] == 'T' || s[j] == 'Z'))
                    j++;
                ps->tok.kind = T_DATETIME;
            } else {
                j = i + scan_number(s + i, n - i);
                ps->tok.kind = T_NUMBER;
            }
            if (j < n && is_ident_char((unsigned char)s[j]))
                return fail(ps, i, "invalid number");
        } else {
            return fail(ps, i, c < 0x20 || c == 0x7f
                                   ? apr_psprintf(ps->p, "unexpected character \\x%02x", c)
                                   : apr_psprintf(ps->p, "unexpected character '%c'", c));
        }
    }
    ps->tok.len = j - i;
    ps->pos = j;
    return 1;
}

static int tok_is(const parser *ps, const char *word)
{
    return ps->tok.kind == T_IDENT && strlen(word) == ps->tok.len &&
           memcmp(ps->s + ps->tok.at, word, ps->tok.len) == 0;
}

/* ---- literals -------------------------------------------------------------------- */

static int read_string(parser *ps, us_odata_value *v)
{
    const char *s = ps->s + ps->tok.at;
    char quote = s[0];
    char *out = apr_palloc(ps->p, ps->tok.len);
    apr_size_t k = 0;
    for (apr_size_t i = 1; i + 1 < ps->tok.len; i++) {
        out[k++] = s[i];
        if (s[i] == quote)
            i++; /* the second of a doubled quote */
    }
    out[k] = '\0';
    v->type = US_ODATA_STRING;
    v->str = out;
    v->len = k;
    return 1;
}

static int read_datetime(parser *ps, us_odata_value *v)
{
    const char *text = apr_pstrmemdup(ps->p, ps->s + ps->tok.at, ps->tok.len);
    const char *full = text;
    if (ps->tok.len == 10)
        full = apr_pstrcat(ps->p, text, "T00:00:00Z", NULL);
    else if (!strchr(text + 10, 'Z') && !strchr(text + 10, '+') && !strchr(text + 10, '-'))
        full = apr_pstrcat(ps->p, text, "Z", NULL); /* no zone: UTC */
    if (!us_time_parse(full, &v->instant))
        return fail(ps, ps->tok.at, apr_psprintf(ps->p, "invalid date-time '%s'", text));
    v->type = US_ODATA_DATETIME;
    v->str = text;
    v->len = ps->tok.len;
    return 1;
}

/* PostgreSQL's numeric refuses (older releases) or overflows on (newer
 * ones) a literal whose exponent goes much past this; with the filter's
 * length bound, any exponent up to it is a value numeric holds. */
#define MAX_EXPONENT 1000

/* Whether a number's exponent, if it has one, is at most MAX_EXPONENT in
 * magnitude. */
static int exponent_in_range(const char *text)
{
    const char *e = strpbrk(text, "eE");
    long magnitude = 0;
    if (!e)
        return 1;
    e++;
    if (*e == '+' || *e == '-')
        e++;
    for (; is_digit((unsigned char)*e); e++) {
        magnitude = magnitude * 10 + (*e - '0');
        if (magnitude > MAX_EXPONENT)
            return 0;
    }
    return 1;
}

static int read_number(parser *ps, us_odata_value *v)
{
    const char *text = apr_pstrmemdup(ps->p, ps->s + ps->tok.at, ps->tok.len);
    char *end = NULL;
    if (!exponent_in_range(text))
        return fail(ps, ps->tok.at, "number out of range");
    v->str = text;
    v->len = ps->tok.len;
    v->decimal = strtod(text, &end);
    if (!strpbrk(text, ".eE")) {
        errno = 0;
        long long i = strtoll(text, &end, 10);
        if (errno == 0) {
            v->type = US_ODATA_INTEGER;
            v->integer = i;
            return 1;
        }
    }
    v->type = US_ODATA_DECIMAL; /* beyond 64 bits, or with a fraction or exponent */
    return 1;
}

/* A literal at the current token, then the next token. */
static int literal(parser *ps, us_odata_value *v)
{
    int ok;
    memset(v, 0, sizeof(*v));
    switch (ps->tok.kind) {
    case T_STRING: ok = read_string(ps, v); break;
    case T_NUMBER: ok = read_number(ps, v); break;
    case T_DATETIME: ok = read_datetime(ps, v); break;
    case T_IDENT:
        if (tok_is(ps, "true") || tok_is(ps, "false")) {
            v->type = US_ODATA_BOOLEAN;
            v->integer = tok_is(ps, "true");
        } else if (tok_is(ps, "null")) {
            v->type = US_ODATA_NULL;
        } else {
            return fail_unexpected(ps, "a literal (comparing two keys is not supported)");
        }
        v->str = apr_pstrmemdup(ps->p, ps->s + ps->tok.at, ps->tok.len);
        v->len = ps->tok.len;
        ok = 1;
        break;
    default:
        return fail_unexpected(ps, "a literal");
    }
    if (ok && ++ps->terms > US_ODATA_MAX_TERMS)
        return fail(ps, ps->tok.at, "too many terms");
    return ok && next(ps);
}

/* ---- operands and terms ---------------------------------------------------------- */

static const struct {
    const char *name;
    us_odata_field field;
} FIELDS[] = {
    { "name", US_ODATA_NAME },
    { "created_at", US_ODATA_CREATED_AT },
    { "size", US_ODATA_SIZE },
    { "file_id", US_ODATA_FILE_ID },
};

static int operand(parser *ps, us_odata_operand *o)
{
    apr_array_header_t *segs = apr_array_make(ps->p, 2, sizeof(const char *));
    if (ps->tok.kind != T_IDENT)
        return fail_unexpected(ps, "a key");
    for (;;) {
        APR_ARRAY_PUSH(segs, const char *) = apr_pstrmemdup(ps->p, ps->s + ps->tok.at, ps->tok.len);
        if (!next(ps))
            return 0;
        if (ps->tok.kind != T_SLASH)
            break;
        if (!next(ps))
            return 0;
        if (ps->tok.kind != T_IDENT)
            return fail_unexpected(ps, "a key after '/'");
    }
    o->field = US_ODATA_META;
    o->path = (const char *const *)segs->elts;
    o->depth = segs->nelts;
    if (segs->nelts == 1)
        for (apr_size_t i = 0; i < sizeof(FIELDS) / sizeof(FIELDS[0]); i++)
            if (strcmp(o->path[0], FIELDS[i].name) == 0)
                o->field = FIELDS[i].field;
    return 1;
}

static const char *const OPS[] = { "eq", "ne", "gt", "ge", "lt", "le" };
static const char *const FUNCS[] = { "contains", "startswith", "endswith" };

static int expect(parser *ps, tok_kind kind, const char *what)
{
    if (ps->tok.kind != kind)
        return fail_unexpected(ps, what);
    return next(ps);
}

static us_odata_node *node(parser *ps, us_odata_kind kind)
{
    us_odata_node *nd = apr_pcalloc(ps->p, sizeof(*nd));
    nd->kind = kind;
    return nd;
}

/* func(operand, 'string'); the current token is the function's name. */
static us_odata_node *function(parser *ps)
{
    us_odata_node *nd = node(ps, US_ODATA_FUNC);
    us_odata_value *v = apr_palloc(ps->p, sizeof(*v));
    int f = -1;
    for (int i = 0; i < 3; i++)
        if (tok_is(ps, FUNCS[i]))
            f = i;
    if (f < 0) {
        fail(ps, ps->tok.at, apr_psprintf(ps->p, "unknown function %s", tok_text(ps)));
        return NULL;
    }
    nd->func = (us_odata_func)f;
    if (!next(ps) || !expect(ps, T_LPAREN, "'('") || !operand(ps, &nd->operand) ||
        !expect(ps, T_COMMA, "','"))
        return NULL;
    if (ps->tok.kind != T_STRING) {
        fail_unexpected(ps, "a string");
        return NULL;
    }
    if (!literal(ps, v) || !expect(ps, T_RPAREN, "')'"))
        return NULL;
    nd->values = v;
    nd->count = 1;
    return nd;
}

/* operand cmp literal | operand in (literal, ...) */
static us_odata_node *comparison(parser *ps)
{
    us_odata_operand o;
    if (!operand(ps, &o))
        return NULL;
    if (tok_is(ps, "in")) {
        us_odata_node *nd = node(ps, US_ODATA_IN);
        apr_array_header_t *vals = apr_array_make(ps->p, 4, sizeof(us_odata_value));
        nd->operand = o;
        if (!next(ps) || !expect(ps, T_LPAREN, "'('"))
            return NULL;
        for (;;) {
            if (!literal(ps, apr_array_push(vals)))
                return NULL;
            if (ps->tok.kind == T_RPAREN)
                break;
            if (!expect(ps, T_COMMA, "',' or ')'"))
                return NULL;
        }
        if (!next(ps))
            return NULL;
        nd->values = (const us_odata_value *)vals->elts;
        nd->count = vals->nelts;
        return nd;
    }
    for (int i = 0; i < 6; i++) {
        if (tok_is(ps, OPS[i])) {
            us_odata_node *nd = node(ps, US_ODATA_CMP);
            us_odata_value *v = apr_palloc(ps->p, sizeof(*v));
            nd->operand = o;
            nd->op = (us_odata_op)i;
            if (!next(ps) || !literal(ps, v))
                return NULL;
            nd->values = v;
            nd->count = 1;
            return nd;
        }
    }
    fail_unexpected(ps, "a comparison operator (eq, ne, gt, ge, lt, le, in)");
    return NULL;
}

/* ---- logic ----------------------------------------------------------------------- */

static us_odata_node *or_expr(parser *ps, int depth);

static us_odata_node *unary(parser *ps, int depth)
{
    if (depth > US_ODATA_MAX_DEPTH) {
        fail(ps, ps->tok.at, "too deeply nested");
        return NULL;
    }
    if (tok_is(ps, "not")) {
        us_odata_node *nd = node(ps, US_ODATA_NOT);
        if (!next(ps) || !(nd->left = unary(ps, depth + 1)))
            return NULL;
        return nd;
    }
    if (ps->tok.kind == T_LPAREN) {
        us_odata_node *inner;
        if (!next(ps) || !(inner = or_expr(ps, depth + 1)) || !expect(ps, T_RPAREN, "')'"))
            return NULL;
        return inner;
    }
    if (ps->tok.kind != T_IDENT) {
        fail_unexpected(ps, "a key, a function, 'not' or '('");
        return NULL;
    }
    /* an identifier followed by '(' is a function call */
    apr_size_t after = ps->pos;
    while (after < ps->n && (ps->s[after] == ' ' || ps->s[after] == '\t' || ps->s[after] == '\r' ||
                             ps->s[after] == '\n'))
        after++;
    if (after < ps->n && ps->s[after] == '(')
        return function(ps);
    return comparison(ps);
}

/* operand (keyword operand)*, left-associative: the and level (operands
 * are unary terms) when kind is AND, the or level (operands are and
 * levels) when it is OR. */
static us_odata_node *chain(parser *ps, int depth, us_odata_kind kind)
{
    const char *keyword = kind == US_ODATA_AND ? "and" : "or";
    us_odata_node *left = kind == US_ODATA_AND ? unary(ps, depth) : chain(ps, depth, US_ODATA_AND);
    while (left && tok_is(ps, keyword)) {
        us_odata_node *nd = node(ps, kind);
        nd->left = left;
        if (!next(ps))
            return NULL;
        nd->right = kind == US_ODATA_AND ? unary(ps, depth) : chain(ps, depth, US_ODATA_AND);
        if (!nd->right)
            return NULL;
        left = nd;
    }
    return left;
}

static us_odata_node *or_expr(parser *ps, int depth)
{
    return chain(ps, depth, US_ODATA_OR);
}

int us_odata_parse(apr_pool_t *p, const char *filter, apr_size_t len, us_odata_node **out,
                   const char **err)
{
    parser ps = { p, filter, len, 0, { T_END, 0, 0 }, 0, NULL };
    *out = NULL;
    if (len > US_ODATA_MAX_BYTES) {
        *err = apr_psprintf(p, "the filter is longer than %d bytes at position %d",
                            US_ODATA_MAX_BYTES, US_ODATA_MAX_BYTES);
        return 0;
    }
    for (apr_size_t i = 0; i < len;) {
        apr_size_t bad = 0, n = us_utf8_seq((const unsigned char *)filter + i, len - i, &bad);
        if (n == 0) {
            ps.n = i;
            fail(&ps, i, "invalid UTF-8");
            *err = ps.err;
            return 0;
        }
        i += n;
    }
    us_odata_node *root = NULL;
    if (next(&ps)) {
        if (ps.tok.kind == T_END)
            fail(&ps, 0, "empty filter");
        else if ((root = or_expr(&ps, 1)) && ps.tok.kind != T_END)
            fail_unexpected(&ps, "'and', 'or' or the end of the filter");
    }
    if (ps.err) {
        *err = ps.err;
        return 0;
    }
    *out = root;
    return 1;
}

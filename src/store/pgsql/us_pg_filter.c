/*
 * us_pg_filter.c - PostgreSQL's dialect of us_filter_sql.h: metadata read
 * as jsonb (jsonb_typeof decides the type; CASE guards every cast, since
 * SQL does not promise to evaluate AND left to right), numbers compared
 * with an integer literal as numeric, with a decimal one as SQLite compares
 * them (decimal_compare), text compared by bytes (COLLATE "C"), a metadata
 * date-time through us_instant_us(), a function of the schema that answers
 * NULL for a string that is no date-time instead of failing the query. The
 * key table's rows
 * (us_file_keys: file_id, key, workspace, t, s, n) hold jsonb_typeof, the
 * text of a string or boolean (COLLATE "C") and a number as numeric: the
 * values the per-row expressions read.
 */
#include <apr_strings.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "us_pg_filter.h"
#include "us_float_repr.h"

/* The key's path as a text[] literal: {"a","b"} (keys are OData
 * identifiers: no quote, comma or brace can occur in them). */
static const char *key_path(apr_pool_t *p, const us_odata_operand *o)
{
    const char *path = "{";
    for (int i = 0; i < o->depth; i++)
        path = apr_pstrcat(p, path, i ? "," : "", "\"", o->path[i], "\"", NULL);
    return apr_pstrcat(p, path, "}", NULL);
}

static const char *json_type(us_filter_builder *b, const char *path)
{
    return apr_pstrcat(b->p, "jsonb_typeof(meta::jsonb #> ", us_filter_text_arg(b, path), "::text[])", NULL);
}

static const char *json_text(us_filter_builder *b, const char *path)
{
    return apr_pstrcat(b->p, "(meta::jsonb #>> ", us_filter_text_arg(b, path), "::text[])", NULL);
}

/* The literal's placeholder: an integer's own text; a double's shortest
 * text (the literal as written can be beyond float8's range, an error in
 * PostgreSQL where strtod gave an infinity or 0). */
static const char *number_arg(us_filter_builder *b, const us_odata_value *v)
{
    char text[US_FLOAT_REPR_MAX];
    if (v->type == US_ODATA_INTEGER)
        return us_filter_text_arg(b, v->str);
    if (us_float_repr(v->decimal, text) == 0)
        return us_filter_text_arg(b, v->decimal < 0 ? "-Infinity" : "Infinity");
    return us_filter_text_arg(b, apr_pstrdup(b->p, text));
}

/* The exact value of the finite double d as decimal text: d is an integer
 * times its lowest bit, 2^(biased exponent - 1075) (2^-1074 for a
 * subnormal), whose decimal has as many digits after the point as that
 * power's exponent, all of which glibc's printf writes. */
static const char *exact_text(apr_pool_t *p, double d)
{
    char buf[1400]; /* "-0." and 1074 digits, or up to 309 digits and no point */
    uint64_t bits;
    memcpy(&bits, &d, sizeof(bits));
    int biased = (int)((bits >> 52) & 0x7ff);
    int places = 1075 - (biased > 0 ? biased : 1);
    snprintf(buf, sizeof(buf), "%.*f", places > 0 ? places : 0, d);
    return apr_pstrdup(p, buf);
}

/* The numeric n (an expression) op the decimal literal v: a stored
 * integer exactly against the literal's double, a stored float as a
 * double, as SQLite compares an INTEGER and a REAL and Python an int and a
 * float (9007199254740993 > 9007199254740992.0, where both as doubles are
 * 2^53). jsonb keeps no JSON type of a number, but a float's text has a
 * fraction (a scale) below 1e16 (repr, and jansson's ".0"); at and above,
 * where repr writes an exponent, a number is compared as a double. */
static const char *decimal_compare(us_filter_builder *b, const char *n, us_odata_op op,
                                   const us_odata_value *v)
{
    const char *op_sql = us_filter_op(op);
    if (!isfinite(v->decimal))
        return apr_pstrcat(b->p, n, "::float8 ", op_sql, " ", number_arg(b, v), "::float8", NULL);
    const char *exact = us_filter_text_arg(b, exact_text(b->p, v->decimal));
    return apr_pstrcat(b->p, "CASE WHEN scale(", n, ") = 0 AND abs(", n, ") < 10000000000000000 THEN ",
                       n, " ", op_sql, " ", exact, "::numeric ELSE ", n, "::float8 ", op_sql, " ",
                       number_arg(b, v), "::float8 END", NULL);
}

static const char *meta_compare(us_filter_builder *b, const us_odata_operand *o, us_odata_op op,
                                const us_odata_value *v)
{
    /* before any placeholder: an ordering with null holds for nothing */
    if (v->type == US_ODATA_NULL && op != US_ODATA_EQ && op != US_ODATA_NE)
        return "false";
    const char *path = key_path(b->p, o), *op_sql = us_filter_op(op);
    const char *type = json_type(b, path), *value;
    switch (v->type) {
    case US_ODATA_NULL: /* a missing key is null too */
        if (op == US_ODATA_EQ)
            return apr_pstrcat(b->p, "coalesce(", type, " = 'null', true)", NULL);
        return apr_pstrcat(b->p, "coalesce(", type, " <> 'null', false)", NULL);
    case US_ODATA_STRING:
        value = json_text(b, path);
        return apr_pstrcat(b->p, "CASE WHEN ", type, " = 'string' THEN ", value, " COLLATE \"C\" ", op_sql,
                           " ", us_filter_text_arg(b, v->str), " ELSE false END", NULL);
    case US_ODATA_INTEGER:
        value = json_text(b, path);
        return apr_pstrcat(b->p, "CASE WHEN ", type, " = 'number' THEN ", value, "::numeric ", op_sql, " ",
                           number_arg(b, v), "::numeric ELSE false END", NULL);
    case US_ODATA_DECIMAL: {
        /* the value read once, into n, for decimal_compare's uses of it */
        const char *cmp = decimal_compare(b, "n", op, v);
        value = json_text(b, path);
        return apr_pstrcat(b->p, "CASE WHEN ", type, " = 'number' THEN (SELECT ", cmp, " FROM (SELECT ",
                           value, "::numeric AS n) v) ELSE false END", NULL);
    }
    case US_ODATA_BOOLEAN:
        value = json_text(b, path);
        return apr_pstrcat(b->p, "CASE WHEN ", type, " = 'boolean' THEN (", value, " = 'true')::int ",
                           op_sql, " ", us_filter_int_arg(b, v->integer), " ELSE false END", NULL);
    case US_ODATA_DATETIME:
        value = json_text(b, path);
        return apr_pstrcat(b->p, "CASE WHEN ", type, " = 'string' THEN coalesce(us_instant_us(", value,
                           ") ", op_sql, " ", us_filter_int_arg(b, v->instant), ", false) ELSE false END",
                           NULL);
    }
    return "false";
}

static const char *string_function(us_filter_builder *b, const char *subject, us_odata_func func,
                                   const char *needle)
{
    switch (func) {
    case US_ODATA_CONTAINS:
        return apr_pstrcat(b->p, "strpos(", subject, ", ", us_filter_text_arg(b, needle), ") > 0", NULL);
    case US_ODATA_STARTSWITH:
        return apr_pstrcat(b->p, "left(", subject, ", length(", us_filter_text_arg(b, needle), ")) = ",
                           us_filter_text_arg(b, needle), NULL);
    default:
        return apr_pstrcat(b->p, "right(", subject, ", length(", us_filter_text_arg(b, needle), ")) = ",
                           us_filter_text_arg(b, needle), NULL);
    }
}

static const char *meta_function(us_filter_builder *b, const us_odata_operand *o, us_odata_func func,
                                 const char *needle)
{
    const char *path = key_path(b->p, o);
    const char *type = json_type(b, path);
    const char *subject = json_text(b, path);
    return apr_pstrcat(b->p, "CASE WHEN ", type, " = 'string' THEN ", string_function(b, subject, func, needle),
                       " ELSE false END", NULL);
}

/* The file's own text of key table row x's key, for a string the row
 * keeps without its text (longer than US_FILTER_KEY_TEXT_MAX bytes, s NULL):
 * EXISTS of its us_files row where cond holds of `subject`. */
static const char *long_text_probe(us_filter_builder *b, const char *x, const char *cond)
{
    return apr_pstrcat(b->p, "(", x, ".s IS NULL AND EXISTS (SELECT 1 FROM us_files lf WHERE lf.file_id = ",
                       x, ".file_id AND ", cond, "))", NULL);
}

/* A string comparison on key table row x. A literal no longer than
 * US_FILTER_KEY_TEXT_MAX equals no long string and differs from every one:
 * the common `eq` keeps its index range; other cases read a long string's
 * text from its file. */
static const char *key_string_compare(us_filter_builder *b, const char *x, us_odata_op op,
                                      const char *lit)
{
    const char *str = apr_pstrcat(b->p, x, ".s", NULL), *op_sql = us_filter_op(op);
    int short_lit = strlen(lit) <= US_FILTER_KEY_TEXT_MAX;
    const char *kept = apr_pstrcat(b->p, str, " ", op_sql, " ", us_filter_text_arg(b, lit), NULL);
    if (short_lit && op == US_ODATA_EQ)
        return kept;
    if (short_lit && op == US_ODATA_NE)
        return apr_pstrcat(b->p, "(", kept, " OR ", str, " IS NULL)", NULL);
    const char *whole = apr_pstrcat(b->p, "(lf.meta::jsonb ->> ", x, ".key) COLLATE \"C\" ", op_sql, " ",
                                    us_filter_text_arg(b, lit), NULL);
    return apr_pstrcat(b->p, "(", kept, " OR ", long_text_probe(b, x, whole), ")", NULL);
}

/* The double next to d upwards (up) or downwards: an infinity's inwards
 * is the largest finite double, its outwards NaN (without libm). */
static double neighbour(double d, int up)
{
    uint64_t bits;
    if (d == 0)
        return up ? 4.9406564584124654e-324 : -4.9406564584124654e-324;
    memcpy(&bits, &d, sizeof(bits));
    bits = (d > 0) == (up != 0) ? bits + 1 : bits - 1; /* the magnitude's next or previous */
    memcpy(&d, &bits, sizeof(d));
    return d;
}

/* " AND x.n <cmp> <text of d>::numeric" when d is finite, else "". */
static const char *n_bound(us_filter_builder *b, const char *x, const char *cmp, double d)
{
    char text[US_FLOAT_REPR_MAX];
    if (us_float_repr(d, text) == 0)
        return "";
    return apr_pstrcat(b->p, " AND ", x, ".n ", cmp, " ", us_filter_text_arg(b, apr_pstrdup(b->p, text)),
                       "::numeric", NULL);
}

/* The range of key table row x's n that a comparison op with the decimal
 * d can hold in, for the index on n: the comparison itself is on doubles
 * (n::float8), which that index cannot serve. A number whose double is d
 * lies between the texts of d's two neighbouring doubles (each text reads
 * back as its neighbour, so it is no further from it than half the gap to
 * d); "" for ne, and on a side where d has no finite neighbour. */
static const char *decimal_range(us_filter_builder *b, const char *x, us_odata_op op, double d)
{
    const char *lo = "", *hi = "";
    if (op == US_ODATA_NE)
        return "";
    if (op != US_ODATA_LT && op != US_ODATA_LE)
        lo = n_bound(b, x, ">=", neighbour(d, 0));
    if (op != US_ODATA_GT && op != US_ODATA_GE)
        hi = n_bound(b, x, "<=", neighbour(d, 1));
    return apr_pstrcat(b->p, lo, hi, NULL);
}

static const char *key_compare(us_filter_builder *b, const char *x, us_odata_op op,
                               const us_odata_value *v)
{
    const char *op_sql = us_filter_op(op);
    const char *t = apr_pstrcat(b->p, x, ".t", NULL), *str = apr_pstrcat(b->p, x, ".s", NULL);
    switch (v->type) {
    case US_ODATA_STRING:
        return apr_pstrcat(b->p, t, " = 'string' AND ", key_string_compare(b, x, op, v->str), NULL);
    case US_ODATA_INTEGER: /* exactly, beyond a double's 53 bits too */
        return apr_pstrcat(b->p, t, " = 'number' AND ", x, ".n::numeric ", op_sql, " ",
                           number_arg(b, v), "::numeric", NULL);
    case US_ODATA_DECIMAL: {
        const char *range = decimal_range(b, x, op, v->decimal);
        return apr_pstrcat(b->p, t, " = 'number'", range, " AND ",
                           decimal_compare(b, apr_pstrcat(b->p, x, ".n", NULL), op, v), NULL);
    }
    case US_ODATA_BOOLEAN:
        return apr_pstrcat(b->p, t, " = 'boolean' AND (", str, " = 'true')::int ", op_sql, " ",
                           us_filter_int_arg(b, v->integer), NULL);
    case US_ODATA_DATETIME:
        return apr_pstrcat(b->p, t, " = 'string' AND coalesce(us_instant_us(", str, ") ", op_sql, " ",
                           us_filter_int_arg(b, v->instant), ", false)", NULL);
    case US_ODATA_NULL:
        break;
    }
    return "false";
}

static const char *key_function(us_filter_builder *b, const char *x, us_odata_func func, const char *needle)
{
    const char *head = apr_pstrcat(b->p, x, ".t = 'string' AND (", NULL);
    const char *kept = string_function(b, apr_pstrcat(b->p, x, ".s", NULL), func, needle);
    const char *whole = string_function(b, apr_pstrcat(b->p, "(lf.meta::jsonb ->> ", x, ".key)", NULL),
                                        func, needle);
    return apr_pstrcat(b->p, head, kept, " OR ", long_text_probe(b, x, whole), ")", NULL);
}

static const char *file_probe(us_filter_builder *b, const char *ref, const char *cond)
{
    return apr_pstrcat(b->p, "EXISTS (SELECT 1 FROM us_files WHERE file_id = ", ref, " AND (", cond, "))", NULL);
}

/* the literal's own text as numeric: the driver writes a double bound as
 * %lf with six decimals */
static const char *decimal_arg(us_filter_builder *b, const us_odata_value *v)
{
    return apr_pstrcat(b->p, us_filter_text_arg(b, v->str), "::numeric", NULL);
}

const us_filter_dialect us_pg_filter_dialect = {
    "false", "true", " COLLATE \"C\"", decimal_arg, meta_compare, meta_function, string_function,
    "file_id", key_compare, key_function, file_probe,
};

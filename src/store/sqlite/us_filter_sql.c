/* us_filter_sql.c - see us_filter_sql.h. */
#include <string.h>

#include <apr_strings.h>

#include "us_filter_sql.h"
#include "us_time.h"

typedef struct {
    apr_pool_t *p;
    apr_array_header_t *args;
} builder;

static const char *text_arg(builder *b, const char *s)
{
    APR_ARRAY_PUSH(b->args, const void *) = s;
    return "%s";
}

static const char *int_arg(builder *b, long long v)
{
    apr_int64_t *slot = apr_palloc(b->p, sizeof(*slot));
    *slot = v;
    APR_ARRAY_PUSH(b->args, const void *) = slot;
    return "%lld";
}

static const char *double_arg(builder *b, double v)
{
    double *slot = apr_palloc(b->p, sizeof(*slot));
    *slot = v;
    APR_ARRAY_PUSH(b->args, const void *) = slot;
    return "%lf";
}

static const char *const SQL_OPS[] = { "=", "<>", ">", ">=", "<", "<=" };

/* The SQLite JSON path of a metadata key: $."a"."b" (keys are OData
 * identifiers: no quote can occur in them). */
static const char *json_path(apr_pool_t *p, const us_odata_operand *o)
{
    const char *path = "$";
    for (int i = 0; i < o->depth; i++)
        path = apr_pstrcat(p, path, ".\"", o->path[i], "\"", NULL);
    return path;
}

/* A literal as an instant: a date-time, or a string written as one. */
static int literal_instant(apr_pool_t *p, const us_odata_value *v, apr_time_t *out)
{
    if (v->type == US_ODATA_DATETIME) {
        *out = v->instant;
        return 1;
    }
    if (v->type != US_ODATA_STRING)
        return 0;
    if (us_time_parse(v->str, out))
        return 1;
    return v->len == 10 && us_time_parse(apr_pstrcat(p, v->str, "T00:00:00Z", NULL), out);
}

/* ---- comparisons ----------------------------------------------------------------- */

/* key op value on the metadata object. The key's JSON type decides what
 * it can equal: a comparison across types is false. */
static const char *meta_compare(builder *b, const us_odata_operand *o, us_odata_op op,
                                const us_odata_value *v)
{
    const char *path = json_path(b->p, o);
    const char *type = apr_pstrcat(b->p, "json_type(meta, ", text_arg(b, path), ")", NULL);
    switch (v->type) {
    case US_ODATA_NULL:
        if (op == US_ODATA_EQ)
            return apr_pstrcat(b->p, "coalesce(", type, " = 'null', 1)", NULL);
        if (op == US_ODATA_NE)
            return apr_pstrcat(b->p, "coalesce(", type, " <> 'null', 0)", NULL);
        return "0";
    case US_ODATA_STRING: {
        const char *value = apr_pstrcat(b->p, "json_extract(meta, ", text_arg(b, path), ")", NULL);
        return apr_pstrcat(b->p, "coalesce(", type, " = 'text' AND ", value, " ", SQL_OPS[op], " ",
                           text_arg(b, v->str), ", 0)", NULL);
    }
    case US_ODATA_INTEGER:
    case US_ODATA_DECIMAL: {
        const char *value = apr_pstrcat(b->p, "json_extract(meta, ", text_arg(b, path), ")", NULL);
        const char *lit = v->type == US_ODATA_INTEGER ? int_arg(b, v->integer) : double_arg(b, v->decimal);
        return apr_pstrcat(b->p, "coalesce(", type, " IN ('integer', 'real') AND ", value, " ",
                           SQL_OPS[op], " ", lit, ", 0)", NULL);
    }
    case US_ODATA_BOOLEAN: {
        const char *value = apr_pstrcat(b->p, "(json_type(meta, ", text_arg(b, path), ") = 'true')", NULL);
        return apr_pstrcat(b->p, "coalesce(", type, " IN ('true', 'false') AND ", value, " ",
                           SQL_OPS[op], " ", int_arg(b, v->integer), ", 0)", NULL);
    }
    case US_ODATA_DATETIME: {
        /* a string that starts like a date, as an instant: SQLite keeps
         * milliseconds, so the key is compared at that precision */
        const char *value = apr_pstrcat(b->p, "json_extract(meta, ", text_arg(b, path), ")", NULL);
        const char *value2 = apr_pstrcat(b->p, "json_extract(meta, ", text_arg(b, path), ")", NULL);
        return apr_pstrcat(b->p, "coalesce(", type, " = 'text' AND ", value,
                           " GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*' AND "
                           "CAST(round((julianday(", value2, ") - 2440587.5) * 86400000.0) AS INTEGER) * 1000 ",
                           SQL_OPS[op], " ", int_arg(b, v->instant), ", 0)", NULL);
    }
    }
    return "0";
}

/* field op value on one of the file's own columns (never NULL). */
static const char *field_compare(builder *b, us_odata_field field, us_odata_op op,
                                 const us_odata_value *v)
{
    apr_time_t t;
    if (v->type == US_ODATA_NULL)
        return op == US_ODATA_NE ? "1" : "0";
    switch (field) {
    case US_ODATA_NAME:
    case US_ODATA_FILE_ID:
        if (v->type != US_ODATA_STRING)
            return "0";
        return apr_pstrcat(b->p, field == US_ODATA_NAME ? "name " : "file_id ", SQL_OPS[op], " ",
                           text_arg(b, v->str), NULL);
    case US_ODATA_SIZE:
        if (v->type == US_ODATA_INTEGER)
            return apr_pstrcat(b->p, "size ", SQL_OPS[op], " ", int_arg(b, v->integer), NULL);
        if (v->type == US_ODATA_DECIMAL)
            return apr_pstrcat(b->p, "size ", SQL_OPS[op], " ", double_arg(b, v->decimal), NULL);
        return "0";
    case US_ODATA_CREATED_AT:
        if (!literal_instant(b->p, v, &t))
            return "0";
        return apr_pstrcat(b->p, "created_at ", SQL_OPS[op], " ", int_arg(b, t), NULL);
    case US_ODATA_META:
        break;
    }
    return "0";
}

static const char *compare(builder *b, const us_odata_operand *o, us_odata_op op,
                           const us_odata_value *v)
{
    return o->field == US_ODATA_META ? meta_compare(b, o, op, v) : field_compare(b, o->field, op, v);
}

/* ---- string functions ------------------------------------------------------------ */

static const char *function(builder *b, const us_odata_node *n)
{
    const char *subject, *guard = NULL;
    if (n->operand.field == US_ODATA_META) {
        const char *path = json_path(b->p, &n->operand);
        guard = apr_pstrcat(b->p, "json_type(meta, ", text_arg(b, path), ") = 'text'", NULL);
        subject = apr_pstrcat(b->p, "json_extract(meta, ", text_arg(b, path), ")", NULL);
    } else if (n->operand.field == US_ODATA_NAME) {
        subject = "name";
    } else if (n->operand.field == US_ODATA_FILE_ID) {
        subject = "file_id";
    } else {
        return "0"; /* size, created_at: not strings */
    }
    const char *needle = n->values[0].str, *test;
    switch (n->func) {
    case US_ODATA_CONTAINS:
        test = apr_pstrcat(b->p, "instr(", subject, ", ", text_arg(b, needle), ") > 0", NULL);
        break;
    case US_ODATA_STARTSWITH:
        test = apr_pstrcat(b->p, "substr(", subject, ", 1, length(", text_arg(b, needle), ")) = ",
                           text_arg(b, needle), NULL);
        break;
    default: /* US_ODATA_ENDSWITH; substr(x, -0) would be all of x */
        /* the subject comes first in the text, as its parameter came first */
        test = apr_pstrcat(b->p, "(substr(", subject, ", -length(", text_arg(b, needle), ")) = ",
                           text_arg(b, needle), " OR length(", text_arg(b, needle), ") = 0)", NULL);
        break;
    }
    return guard ? apr_pstrcat(b->p, "coalesce(", guard, " AND ", test, ", 0)", NULL)
                 : apr_pstrcat(b->p, "coalesce(", test, ", 0)", NULL);
}

/* ---- logic ----------------------------------------------------------------------- */

static const char *expr(builder *b, const us_odata_node *n)
{
    const char *s;
    switch (n->kind) {
    case US_ODATA_AND: s = expr(b, n->left); return apr_pstrcat(b->p, "(", s, " AND ", expr(b, n->right), ")", NULL);
    case US_ODATA_OR: s = expr(b, n->left); return apr_pstrcat(b->p, "(", s, " OR ", expr(b, n->right), ")", NULL);
    case US_ODATA_NOT: return apr_pstrcat(b->p, "(NOT ", expr(b, n->left), ")", NULL);
    case US_ODATA_CMP: return compare(b, &n->operand, n->op, n->values);
    case US_ODATA_FUNC: return function(b, n);
    case US_ODATA_IN:
        s = compare(b, &n->operand, US_ODATA_EQ, &n->values[0]);
        for (int i = 1; i < n->count; i++)
            s = apr_pstrcat(b->p, s, " OR ", compare(b, &n->operand, US_ODATA_EQ, &n->values[i]), NULL);
        return apr_pstrcat(b->p, "(", s, ")", NULL);
    }
    return "0";
}

const char *us_filter_sql(apr_pool_t *p, const us_odata_node *n, apr_array_header_t *args)
{
    builder b = { p, args };
    return expr(&b, n);
}

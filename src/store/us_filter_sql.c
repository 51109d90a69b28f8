/* us_filter_sql.c - see us_filter_sql.h. */
#include <apr_strings.h>

#include "us_filter_sql.h"
#include "us_time.h"

const char *us_filter_text_arg(us_filter_builder *b, const char *s)
{
    APR_ARRAY_PUSH(b->args, const void *) = s;
    return "%s";
}

const char *us_filter_int_arg(us_filter_builder *b, long long v)
{
    apr_int64_t *slot = apr_palloc(b->p, sizeof(*slot));
    *slot = v;
    APR_ARRAY_PUSH(b->args, const void *) = slot;
    return "%lld";
}

const char *us_filter_double_arg(us_filter_builder *b, double v)
{
    double *slot = apr_palloc(b->p, sizeof(*slot));
    *slot = v;
    APR_ARRAY_PUSH(b->args, const void *) = slot;
    return "%lf";
}

const char *us_filter_op(us_odata_op op)
{
    static const char *const OPS[] = { "=", "<>", ">", ">=", "<", "<=" };
    return OPS[op];
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

/* field op value on one of the file's own columns (never NULL): a literal
 * of another type matches nothing. */
static const char *field_compare(us_filter_builder *b, us_odata_field field, us_odata_op op,
                                 const us_odata_value *v)
{
    const us_filter_dialect *d = b->d;
    apr_time_t t;
    if (v->type == US_ODATA_NULL)
        return op == US_ODATA_NE ? d->true_sql : d->false_sql;
    switch (field) {
    case US_ODATA_NAME:
    case US_ODATA_FILE_ID:
        if (v->type != US_ODATA_STRING)
            return d->false_sql;
        return apr_pstrcat(b->p, field == US_ODATA_NAME ? "name" : "file_id", d->byte_order, " ",
                           us_filter_op(op), " ", us_filter_text_arg(b, v->str), NULL);
    case US_ODATA_SIZE:
        if (v->type == US_ODATA_INTEGER)
            return apr_pstrcat(b->p, "size ", us_filter_op(op), " ", us_filter_int_arg(b, v->integer), NULL);
        if (v->type == US_ODATA_DECIMAL)
            return apr_pstrcat(b->p, "size ", us_filter_op(op), " ", us_filter_double_arg(b, v->decimal), NULL);
        return d->false_sql;
    case US_ODATA_CREATED_AT:
        if (!literal_instant(b->p, v, &t))
            return d->false_sql;
        return apr_pstrcat(b->p, "created_at ", us_filter_op(op), " ", us_filter_int_arg(b, t), NULL);
    case US_ODATA_META:
        break;
    }
    return d->false_sql;
}

static const char *compare(us_filter_builder *b, const us_odata_operand *o, us_odata_op op,
                           const us_odata_value *v)
{
    return o->field == US_ODATA_META ? b->d->meta_compare(b, o, op, v)
                                     : field_compare(b, o->field, op, v);
}

static const char *function(us_filter_builder *b, const us_odata_node *n)
{
    const char *needle = n->values[0].str;
    switch (n->operand.field) {
    case US_ODATA_META: return b->d->meta_function(b, &n->operand, n->func, needle);
    case US_ODATA_NAME: return b->d->string_function(b, "name", n->func, needle);
    case US_ODATA_FILE_ID: return b->d->string_function(b, "file_id", n->func, needle);
    default: return b->d->false_sql; /* size, created_at: not strings */
    }
}

static const char *expr(us_filter_builder *b, const us_odata_node *n)
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
    return b->d->false_sql;
}

const char *us_filter_sql(apr_pool_t *p, const us_odata_node *n, apr_array_header_t *args,
                          const us_filter_dialect *d)
{
    us_filter_builder b = { p, args, d };
    return expr(&b, n);
}

/*
 * us_sqlite_filter.c - the SQLite dialect of us_filter_sql.h: metadata read
 * with json_type/json_extract (JSON booleans are not numbers: the type
 * decides), strings compared by bytes (SQLite's BINARY collation), a
 * metadata date-time through us_instant_us() (us_sqlite_instant.h), which
 * reads it in microseconds as PostgreSQL's function of that name does.
 * The key table's rows (us_file_keys: fno, key, workspace, t, v) hold
 * json_each's type and atom: the same values json_extract reads.
 */
#include <apr_strings.h>

#include "us_sqlite_filter.h"

/* The JSON path of a metadata key: $."a"."b" (keys are OData identifiers:
 * no quote can occur in them). */
static const char *json_path(apr_pool_t *p, const us_odata_operand *o)
{
    const char *path = "$";
    for (int i = 0; i < o->depth; i++)
        path = apr_pstrcat(p, path, ".\"", o->path[i], "\"", NULL);
    return path;
}

static const char *json_call(us_filter_builder *b, const char *fn, const char *path)
{
    return apr_pstrcat(b->p, fn, "(meta, ", us_filter_text_arg(b, path), ")", NULL);
}

static const char *meta_compare(us_filter_builder *b, const us_odata_operand *o, us_odata_op op,
                                const us_odata_value *v)
{
    /* before any placeholder: an ordering with null holds for nothing */
    if (v->type == US_ODATA_NULL && op != US_ODATA_EQ && op != US_ODATA_NE)
        return "0";
    const char *path = json_path(b->p, o), *op_sql = us_filter_op(op);
    const char *type = json_call(b, "json_type", path), *value;
    switch (v->type) {
    case US_ODATA_NULL: /* a missing key is null too */
        if (op == US_ODATA_EQ)
            return apr_pstrcat(b->p, "coalesce(", type, " = 'null', 1)", NULL);
        return apr_pstrcat(b->p, "coalesce(", type, " <> 'null', 0)", NULL);
    case US_ODATA_STRING:
        value = json_call(b, "json_extract", path);
        return apr_pstrcat(b->p, "coalesce(", type, " = 'text' AND ", value, " ", op_sql, " ",
                           us_filter_text_arg(b, v->str), ", 0)", NULL);
    case US_ODATA_INTEGER:
    case US_ODATA_DECIMAL: {
        value = json_call(b, "json_extract", path);
        const char *lit = v->type == US_ODATA_INTEGER ? us_filter_int_arg(b, v->integer)
                                                      : us_filter_double_arg(b, v->decimal);
        return apr_pstrcat(b->p, "coalesce(", type, " IN ('integer', 'real') AND ", value, " ", op_sql,
                           " ", lit, ", 0)", NULL);
    }
    case US_ODATA_BOOLEAN:
        value = json_call(b, "json_type", path);
        return apr_pstrcat(b->p, "coalesce(", type, " IN ('true', 'false') AND (", value, " = 'true') ",
                           op_sql, " ", us_filter_int_arg(b, v->integer), ", 0)", NULL);
    case US_ODATA_DATETIME:
        value = json_call(b, "json_extract", path);
        return apr_pstrcat(b->p, "coalesce(", type, " = 'text' AND us_instant_us(", value, ") ", op_sql, " ",
                           us_filter_int_arg(b, v->instant), ", 0)", NULL);
    }
    return "0";
}

static const char *string_function(us_filter_builder *b, const char *subject, us_odata_func func,
                                   const char *needle)
{
    switch (func) {
    case US_ODATA_CONTAINS:
        return apr_pstrcat(b->p, "instr(", subject, ", ", us_filter_text_arg(b, needle), ") > 0", NULL);
    case US_ODATA_STARTSWITH:
        return apr_pstrcat(b->p, "substr(", subject, ", 1, length(", us_filter_text_arg(b, needle),
                           ")) = ", us_filter_text_arg(b, needle), NULL);
    default: /* substr(x, -0) would be all of x: an empty needle is tested apart */
        return apr_pstrcat(b->p, "(substr(", subject, ", -length(", us_filter_text_arg(b, needle),
                           ")) = ", us_filter_text_arg(b, needle), " OR length(",
                           us_filter_text_arg(b, needle), ") = 0)", NULL);
    }
}

static const char *meta_function(us_filter_builder *b, const us_odata_operand *o, us_odata_func func,
                                 const char *needle)
{
    const char *path = json_path(b->p, o);
    const char *type = json_call(b, "json_type", path);
    const char *subject = json_call(b, "json_extract", path);
    return apr_pstrcat(b->p, "coalesce(", type, " = 'text' AND ", string_function(b, subject, func, needle),
                       ", 0)", NULL);
}

static const char *key_compare(us_filter_builder *b, const char *x, us_odata_op op,
                               const us_odata_value *v)
{
    const char *op_sql = us_filter_op(op);
    const char *t = apr_pstrcat(b->p, x, ".t", NULL), *val = apr_pstrcat(b->p, x, ".v", NULL);
    switch (v->type) {
    case US_ODATA_STRING:
        return apr_pstrcat(b->p, t, " = 'text' AND ", val, " ", op_sql, " ", us_filter_text_arg(b, v->str), NULL);
    case US_ODATA_INTEGER:
        return apr_pstrcat(b->p, t, " IN ('integer', 'real') AND ", val, " ", op_sql, " ",
                           us_filter_int_arg(b, v->integer), NULL);
    case US_ODATA_DECIMAL:
        return apr_pstrcat(b->p, t, " IN ('integer', 'real') AND ", val, " ", op_sql, " ",
                           us_filter_double_arg(b, v->decimal), NULL);
    case US_ODATA_BOOLEAN:
        return apr_pstrcat(b->p, t, " IN ('true', 'false') AND (", t, " = 'true') ", op_sql, " ",
                           us_filter_int_arg(b, v->integer), NULL);
    case US_ODATA_DATETIME:
        return apr_pstrcat(b->p, t, " = 'text' AND us_instant_us(", val, ") ", op_sql, " ",
                           us_filter_int_arg(b, v->instant), NULL);
    case US_ODATA_NULL:
        break;
    }
    return "0";
}

static const char *key_function(us_filter_builder *b, const char *x, us_odata_func func, const char *needle)
{
    const char *head = apr_pstrcat(b->p, x, ".t = 'text' AND ", NULL);
    return apr_pstrcat(b->p, head, string_function(b, apr_pstrcat(b->p, x, ".v", NULL), func, needle), NULL);
}

/* us_file_nos maps the key table's fno to the file */
static const char *file_probe(us_filter_builder *b, const char *ref, const char *cond)
{
    return apr_pstrcat(b->p, "EXISTS (SELECT 1 FROM us_files WHERE file_id ="
                       " (SELECT file_id FROM us_file_nos WHERE fno = ", ref, ") AND (", cond, "))", NULL);
}

/* a double: SQLite binds it as a REAL and compares it with an INTEGER
 * exactly */
static const char *decimal_arg(us_filter_builder *b, const us_odata_value *v)
{
    return us_filter_double_arg(b, v->decimal);
}

const us_filter_dialect us_sqlite_filter_dialect = {
    "0", "1", "", decimal_arg, meta_compare, meta_function, string_function,
    "fno", key_compare, key_function, file_probe,
};

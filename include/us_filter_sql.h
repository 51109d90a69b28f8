/*
 * us_filter_sql.h - an OData filter tree (us_odata.h) as an SQL boolean
 * expression over a us_files table, for a store backend to evaluate in its
 * database. The walk (and, or, not, in) and the file's own columns are
 * shared; a backend's dialect writes the metadata comparisons and the string
 * functions. Values are never spliced into the text: each is an apr_dbd
 * parameter (%s, %lld, %lf) appended to args in the order of the text, so
 * the text depends only on the filter's shape. Every term yields a boolean,
 * never NULL, which keeps `not` two-valued (API.md: a file without the key
 * matches `not (k eq 1)`). For the store backends only.
 */
#ifndef US_FILTER_SQL_H
#define US_FILTER_SQL_H

#include <apr_pools.h>
#include <apr_tables.h>

#include "us_odata.h"

typedef struct us_filter_dialect us_filter_dialect;

typedef struct {
    apr_pool_t *p;
    apr_array_header_t *args; /* const void *, one per placeholder, in text order */
    const us_filter_dialect *d;
} us_filter_builder;

struct us_filter_dialect {
    const char *false_sql, *true_sql;
    const char *byte_order; /* appended to a text column compared by bytes ("" or a COLLATE) */
    /* key op v on the metadata object (v: any literal type) */
    const char *(*meta_compare)(us_filter_builder *b, const us_odata_operand *key, us_odata_op op,
                                const us_odata_value *v);
    /* func(key, needle) on a metadata string (false for any other type) */
    const char *(*meta_function)(us_filter_builder *b, const us_odata_operand *key,
                                 us_odata_func func, const char *needle);
    /* func(subject, needle) on a text expression that is never NULL */
    const char *(*string_function)(us_filter_builder *b, const char *subject, us_odata_func func,
                                   const char *needle);
};

/* The expression for n, in p; its parameters appended to args. */
const char *us_filter_sql(apr_pool_t *p, const us_odata_node *n, apr_array_header_t *args,
                          const us_filter_dialect *d);

/* For dialects: a parameter's placeholder, its value appended. */
const char *us_filter_text_arg(us_filter_builder *b, const char *s);
const char *us_filter_int_arg(us_filter_builder *b, long long v);
const char *us_filter_double_arg(us_filter_builder *b, double v);
/* The SQL operator of op. */
const char *us_filter_op(us_odata_op op);

#endif

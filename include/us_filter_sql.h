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
 *
 * A count may instead read the key table us_file_keys, which triggers keep
 * in the transaction that writes a us_files row: one row per top-level key
 * of its metadata object (file reference, workspace, key, JSON type t,
 * typed value), with an index on (workspace, key, t, value).
 * us_filter_count_sql drives the count from one top-level key's index
 * range and tests the rest per file by primary-key probes, instead of
 * parsing every file's metadata.
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
    /* a decimal literal (v: US_ODATA_DECIMAL) compared with an integer column, exactly */
    const char *(*decimal_arg)(us_filter_builder *b, const us_odata_value *v);
    /* key op v on the metadata object (v: any literal type) */
    const char *(*meta_compare)(us_filter_builder *b, const us_odata_operand *key, us_odata_op op,
                                const us_odata_value *v);
    /* func(key, needle) on a metadata string (false for any other type) */
    const char *(*meta_function)(us_filter_builder *b, const us_odata_operand *key,
                                 us_odata_func func, const char *needle);
    /* func(subject, needle) on a text expression that is never NULL */
    const char *(*string_function)(us_filter_builder *b, const char *subject, us_odata_func func,
                                   const char *needle);
    /* The key table: the column naming the file (the same in every row of
     * one file), and the condition on its row alias x that key op v holds
     * (v not null; x.key is tested apart). */
    const char *key_ref;
    const char *(*key_compare)(us_filter_builder *b, const char *x, us_odata_op op,
                               const us_odata_value *v);
    /* func(key, needle) on key table row x */
    const char *(*key_function)(us_filter_builder *b, const char *x, us_odata_func func,
                                const char *needle);
    /* EXISTS: the us_files row of the file that ref (a key_ref value)
     * names satisfies cond (an expression over us_files' columns) */
    const char *(*file_probe)(us_filter_builder *b, const char *ref, const char *cond);
};

/* The expression for n, in p; its parameters appended to args. NULL (args
 * untouched) when the dialect's text and its parameters disagree in
 * number ("%%", a literal percent sign, is no placeholder): the caller
 * fails the request. */
const char *us_filter_sql(apr_pool_t *p, const us_odata_node *n, apr_array_header_t *args,
                          const us_filter_dialect *d);

/* The store error of a list whose filter us_filter_sql (or
 * us_filter_count_sql) refused for that mismatch: one text for every store. */
#define US_FILTER_SQL_MISMATCH "the filter's SQL and its parameters disagree in number"

/* What a key table may hold (PostgreSQL indexes both, and an index entry
 * must fit in a third of a page): the keys of at most
 * US_FILTER_KEY_NAME_MAX bytes, a string's text of at most
 * US_FILTER_KEY_TEXT_MAX (a longer one is kept without its text, s NULL). */
#define US_FILTER_KEY_NAME_MAX 256
#define US_FILTER_KEY_TEXT_MAX 2000
#define US_FILTER_SQL_NUM(n) US_FILTER_SQL_NUM_(n)
#define US_FILTER_SQL_NUM_(n) #n

/* SELECT COUNT(*) of the workspace's files that n matches, read from the
 * key table, when n has at most 8 top-level `and` terms, names no key
 * longer than US_FILTER_KEY_NAME_MAX, and one of them
 * holds only for files that have a certain top-level metadata key (a
 * comparison with a non-null literal, `ne null`, `in`, a string function);
 * else NULL and args untouched (count with us_filter_sql), as when the
 * dialect's text and its parameters disagree in number. Its parameters
 * appended to args. */
const char *us_filter_count_sql(apr_pool_t *p, const us_odata_node *n, const char *workspace,
                                apr_array_header_t *args, const us_filter_dialect *d);

/* For dialects: a parameter's placeholder, its value appended. */
const char *us_filter_text_arg(us_filter_builder *b, const char *s);
const char *us_filter_int_arg(us_filter_builder *b, long long v);
const char *us_filter_double_arg(us_filter_builder *b, double v);
/* The SQL operator of op. */
const char *us_filter_op(us_odata_op op);

#endif

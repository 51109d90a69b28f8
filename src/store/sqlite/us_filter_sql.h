/*
 * us_filter_sql.h - an OData filter tree (us_odata.h) as an SQLite boolean
 * expression over us_files, evaluated in the database with its JSON
 * functions. Values are never spliced into the text: each is an apr_dbd
 * parameter (%s, %lld, %lf) appended to args in the order of the text, so
 * the text depends only on the filter's shape. Every term yields 0 or 1,
 * never NULL, which keeps `not` two-valued (API.md: a file without the key
 * matches `not (k eq 1)`). Private to the SQLite backend.
 */
#ifndef US_FILTER_SQL_H
#define US_FILTER_SQL_H

#include <apr_pools.h>
#include <apr_tables.h>

#include "us_odata.h"

/* The expression for n, in p; args: const void * parameters, appended. */
const char *us_filter_sql(apr_pool_t *p, const us_odata_node *n, apr_array_header_t *args);

#endif

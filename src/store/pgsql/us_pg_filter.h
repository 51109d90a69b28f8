/* us_pg_filter.h - PostgreSQL's dialect for filters (us_filter_sql.h). */
#ifndef US_PG_FILTER_H
#define US_PG_FILTER_H

#include "us_filter_sql.h"

extern const us_filter_dialect us_pg_filter_dialect;

/* The schema's function behind a metadata date-time comparison: microseconds
 * since the epoch of an ISO-8601 date(-time) string (UTC without a zone),
 * NULL for anything else. */
#define US_PG_SQL_INSTANT_FUNCTION                                                          \
    "CREATE OR REPLACE FUNCTION us_instant_us(s text) RETURNS bigint"                        \
    " LANGUAGE plpgsql IMMUTABLE SET timezone = 'UTC' AS $$"                                 \
    " BEGIN"                                                                                 \
    "  IF s !~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}' THEN RETURN NULL; END IF;"                     \
    "  RETURN floor(extract(epoch FROM s::timestamptz) * 1000000)::bigint;"                  \
    " EXCEPTION WHEN others THEN RETURN NULL;"                                               \
    " END $$"

#endif

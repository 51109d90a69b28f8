/* us_sqlite_filter.h - SQLite's dialect for filters (us_filter_sql.h). */
#ifndef US_SQLITE_FILTER_H
#define US_SQLITE_FILTER_H

#include "us_filter_sql.h"

extern const us_filter_dialect us_sqlite_filter_dialect;

#endif

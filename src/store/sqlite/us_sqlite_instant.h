/*
 * us_sqlite_instant.h - us_instant_us(text), the SQLite function behind a
 * filter's metadata date-time comparison: microseconds since the epoch,
 * as PostgreSQL's us_instant_us (us_pg_filter.h) reads the same string,
 * or NULL for a string that is no date-time.
 */
#ifndef US_SQLITE_INSTANT_H
#define US_SQLITE_INSTANT_H

#include <stddef.h>
#include <sqlite3.h>

/*
 * The instant of s[0..n) in microseconds since 1970-01-01T00:00:00Z into
 * *out; 0 when s is no date-time. The forms read are those SQLite's
 * julianday() reads after a date, less those PostgreSQL's timestamptz
 * refuses or reads otherwise, plus ISO 8601's other zone forms and the
 * leap second, which PostgreSQL reads; each read as PostgreSQL reads it:
 *   YYYY-MM-DD                 (year 0001-9999, a day the month has)
 *   then, apart from the date by spaces and at most one T ("T", " ", " T "):
 *   HH:MM[:SS[.F...]]          (hour 00-24, 24 only as 24:00:00; second
 *                               60 is the next minute's 00; F any number
 *                               of digits, rounded to microseconds as
 *                               PostgreSQL does: rint(strtod(".F") * 1e6))
 *   then an optional zone, after optional spaces: Z, z, +HH, +HHMM, +HH:MM
 *   or the same with - (HH 00-15); then optional spaces. No zone: UTC,
 *   PostgreSQL's function's own time zone; a date alone is its midnight.
 * "Spaces" are SQLite's and PostgreSQL's: space, \t, \n, \v, \f, \r.
 * Forms PostgreSQL reads but this does not (so no filter matches them on
 * SQLite): zone names and abbreviations, +HH:MM:SS, one-digit fields, a
 * fraction without digits, a second T, a zone after a date alone, am/pm,
 * BC, and PostgreSQL's other words (epoch, allballs, ...).
 */
int us_sqlite_instant_parse(const char *s, size_t n, long long *out);

/* Registers us_instant_us on db (deterministic); an SQLite result code. */
int us_sqlite_instant_register(sqlite3 *db);

#endif

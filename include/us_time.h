/*
 * us_time.h - timestamps as the API writes them: UTC ISO-8601 with
 * microseconds and a Z ("2026-11-28T10:00:00.123456Z"). Internally a
 * timestamp is microseconds since the Unix epoch (apr_time_t's unit).
 */
#ifndef US_TIME_H
#define US_TIME_H

#include <stddef.h>

#include <apr_time.h>

#define US_TS_LEN 28 /* 27 characters + NUL */

/* Format t into out; always NUL-terminated. */
void us_time_format(apr_time_t t, char out[US_TS_LEN]);

/* Parse an ISO-8601 timestamp with an optional fraction (any number of
 * digits, rounded to the microsecond: us_time_fraction_usec) and a zone of "Z" or "+HH:MM"/"-HH:MM" (also "+00:00" as Python's
 * isoformat() writes it). Returns 1 and sets *out on success, 0 otherwise. */
int us_time_parse(const char *s, apr_time_t *out);

/* The fraction's digits d[0..k) in microseconds into *out, rounded as
 * PostgreSQL rounds a timestamp's: the nearest double to 0.d, times 1e6,
 * to the nearest integer, ties to even (0.9999995 gives 1000000: the
 * caller carries). 0 when out of memory. */
int us_time_fraction_usec(const char *d, size_t k, long long *out);

/* Days since 1970-01-01 of a proleptic Gregorian date (no timegm() needed). */
long long us_time_days_from_civil(int y, int m, int d);

/* The days of month m (1-12) of year y, proleptic Gregorian. */
int us_time_days_in_month(int y, int m);

#endif

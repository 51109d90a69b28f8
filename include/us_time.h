/*
 * us_time.h - timestamps as the API writes them: UTC ISO-8601 with
 * microseconds and a Z ("2026-11-28T10:00:00.123456Z"). Internally a
 * timestamp is microseconds since the Unix epoch (apr_time_t's unit).
 */
#ifndef US_TIME_H
#define US_TIME_H

#include <apr_time.h>

#define US_TS_LEN 28 /* 27 characters + NUL */

/* Format t into out; always NUL-terminated. */
void us_time_format(apr_time_t t, char out[US_TS_LEN]);

/* Parse an ISO-8601 timestamp with an optional fraction (up to 6 digits
 * used) and a zone of "Z" or "+HH:MM"/"-HH:MM" (also "+00:00" as Python's
 * isoformat() writes it). Returns 1 and sets *out on success, 0 otherwise. */
int us_time_parse(const char *s, apr_time_t *out);

#endif

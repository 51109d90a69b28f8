/*
 * us_range.h - the Range header of a GET (RFC 9110, section 14) against a
 * representation of known size: the one byte range to send, the whole
 * representation, or none (416). Pure.
 */
#ifndef US_RANGE_H
#define US_RANGE_H

#include <apr.h>

typedef enum {
    US_RANGE_FULL,          /* the whole representation: 200 */
    US_RANGE_PARTIAL,       /* bytes first..last: 206 */
    US_RANGE_UNSATISFIABLE  /* 416 */
} us_range_result;

/* What a Range header value (NULL: none) asks of size bytes. Only the
 * `bytes` unit (any case) and one range-spec (`a-b`, `a-`, `-n`) give
 * PARTIAL, with *first and *last set, last clamped to size - 1; a first
 * byte at or past size, or a suffix of 0, UNSATISFIABLE. Everything else
 * is FULL: another unit, a spec that does not parse or has a > b, and a
 * header with several specs. OWS is allowed around the list's commas and at
 * the value's ends, nowhere else. Numbers of any length are read without
 * overflow. */
us_range_result us_range_parse(const char *value, apr_off_t size, apr_off_t *first,
                               apr_off_t *last);

#endif

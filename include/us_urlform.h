/*
 * us_urlform.h - a streaming application/x-www-form-urlencoded parser.
 * Feed it the body in chunks of any size; it calls the multipart parser's
 * callbacks (us_multipart.h) for each field as if it were a part without a
 * filename: part_begin with the decoded name, part_data with the decoded
 * value in pieces, part_end. Decoding is Python's unquote_plus: '+' is a
 * space, %XX a byte (any byte, NUL included), a '%' not followed by two hex
 * digits stays as it is. A segment with neither name nor '=' ("a&&b") is
 * skipped. Memory is fixed: the parser never holds a value, and a name is
 * kept up to US_URLFORM_MAX_NAME bytes; a longer one, or one holding a NUL,
 * is passed as NULL (no name, so it matches none the caller looks for).
 * Pure: APR pools only.
 */
#ifndef US_URLFORM_H
#define US_URLFORM_H

#include "us_multipart.h"

#include <apr_pools.h>
#include <stddef.h>

#define US_URLFORM_MAX_NAME 256

typedef struct us_urlform us_urlform;

us_urlform *us_urlform_create(apr_pool_t *p, const us_mp_callbacks *cb, void *ctx);

/* Feeds the next len bytes: US_MP_CONTINUE, or US_MP_ABORTED once a
 * callback asked to stop (then further feeds call nothing back). */
us_mp_status us_urlform_feed(us_urlform *f, const char *data, size_t len);

/* At the end of input: ends the last field. US_MP_DONE or US_MP_ABORTED. */
us_mp_status us_urlform_finish(us_urlform *f);

#endif

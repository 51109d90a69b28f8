/*
 * us_multipart.h - a streaming multipart/form-data parser (RFC 7578).
 * Feed it the body in chunks of any size; it calls back per part with the
 * part's headers, then with the part's data in pieces, without ever holding
 * a whole part in memory. Memory is bounded: a lookbehind of the boundary's
 * length plus the header block of one part (at most US_MP_MAX_HEADER bytes).
 * Pure: APR pools only.
 */
#ifndef US_MULTIPART_H
#define US_MULTIPART_H

#include <apr_pools.h>
#include <stddef.h>

#define US_MP_MAX_HEADER 16384   /* one part's header block */
#define US_MP_MAX_BOUNDARY 70    /* RFC 2046 */

typedef struct {
    const char *name;          /* Content-Disposition name, or NULL */
    const char *filename;      /* filename="..." (quoted-string unescaped, no other
                                  decoding), or NULL when absent */
    const char *filename_star; /* filename*=charset'lang'pct-encoded, decoded
                                  to bytes (UTF-8 expected), or NULL */
    const char *content_type;  /* the part's Content-Type, or NULL */
} us_mp_part;

/* Callbacks return 0 to go on, anything else to stop the parser
 * (us_mp_feed then returns US_MP_ABORTED). Strings in part live until the
 * part's end callback returns. */
typedef struct {
    int (*part_begin)(void *ctx, const us_mp_part *part);
    int (*part_data)(void *ctx, const char *data, size_t len);
    int (*part_end)(void *ctx);
} us_mp_callbacks;

typedef enum {
    US_MP_CONTINUE = 0,  /* fed; want more */
    US_MP_DONE,          /* the closing boundary was seen (anything after it is ignored) */
    US_MP_ERROR,         /* malformed input: us_mp_error() says why */
    US_MP_ABORTED        /* a callback asked to stop */
} us_mp_status;

typedef struct us_mp us_mp;

/* The boundary parameter of a multipart/form-data Content-Type (quoted or
 * not), or NULL when the type is not multipart/form-data or the boundary is
 * missing, empty, longer than 70 characters or holds invalid characters. */
const char *us_mp_boundary(apr_pool_t *p, const char *content_type);

us_mp *us_mp_create(apr_pool_t *p, const char *boundary,
                    const us_mp_callbacks *cb, void *ctx);

/* Feeds the next len bytes. After DONE/ERROR/ABORTED further feeds return
 * the same status without calling back. */
us_mp_status us_mp_feed(us_mp *mp, const char *data, size_t len);

/* To call at end of input: DONE when the closing boundary was seen, else
 * ERROR ("truncated body"). */
us_mp_status us_mp_finish(us_mp *mp);

const char *us_mp_error(const us_mp *mp);

#endif

/*
 * us_buf.h - a byte buffer in an APR pool that grows geometrically up to a
 * fixed limit, so appending n bytes in any number of pieces costs O(n) time
 * and at most about 2n bytes of the pool. Pure.
 */
#ifndef US_BUF_H
#define US_BUF_H

#include <apr_pools.h>

typedef struct {
    apr_pool_t *pool;
    char *data;       /* NUL-terminated after every append; NULL until the first */
    apr_size_t len;
    apr_size_t cap;   /* bytes allocated for data, the NUL included */
    apr_size_t max;   /* len may never exceed this */
} us_buf;

void us_buf_init(us_buf *b, apr_pool_t *p, apr_size_t max);

/* Appends len bytes; 0 on success, -1 (nothing appended) when len + the
 * bytes held would exceed the limit. */
int us_buf_append(us_buf *b, const void *data, apr_size_t len);

/* Empties the buffer and keeps its memory for the next appends. */
void us_buf_reset(us_buf *b);

#endif

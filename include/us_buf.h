/*
 * us_buf.h - a byte buffer in an APR pool that grows geometrically up to a
 * fixed limit, so appending n bytes in any number of pieces costs O(n) time
 * and at most about 2n bytes of the pool; past US_BUF_UNSHARED_ABOVE bytes
 * it is held by a pool of its own, so its memory is returned to the system
 * when the pool it was made with is cleared. Pure.
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
    int unshared;     /* pool is a us_pool_unshared of the one given */
} us_buf;

/* Past this size a buffer moves to a pool of its own (us_pool_unshared). */
#define US_BUF_UNSHARED_ABOVE (64 * 1024)

void us_buf_init(us_buf *b, apr_pool_t *p, apr_size_t max);

/* Appends len bytes; 0 on success, -1 (nothing appended) when len + the
 * bytes held would exceed the limit. */
int us_buf_append(us_buf *b, const void *data, apr_size_t len);

/* Empties the buffer and keeps its memory for the next appends. */
void us_buf_reset(us_buf *b);

/* A subpool of parent with an allocator of its own, destroyed with parent.
 * For large short-lived buffers: httpd keeps what a request pool's
 * allocator frees for the connection's next requests (up to MaxMemFree per
 * connection), so a buffer of a megabyte taken from the request pool stays
 * resident after the request; from this pool it goes back to the system. */
apr_pool_t *us_pool_unshared(apr_pool_t *parent);

#endif

/* us_buf.c - a pool-owned byte buffer with geometric growth (pure). */
#include "us_buf.h"

#include <stdlib.h>
#include <string.h>

#define MIN_CAP 256

void us_buf_init(us_buf *b, apr_pool_t *p, apr_size_t max)
{
    b->pool = p;
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
    b->unshared = 0;
}

int us_buf_append(us_buf *b, const void *data, apr_size_t len)
{
    if (len > b->max - b->len)
        return -1;
    if (b->len + len + 1 > b->cap) {
        apr_size_t cap = b->cap ? b->cap : MIN_CAP;
        while (cap < b->len + len + 1)
            cap *= 2;
        if (cap > (b->max + 1) / 2) /* the next doubling would pass the limit */
            cap = b->max + 1;
        if (cap > US_BUF_UNSHARED_ABOVE && !b->unshared) {
            b->pool = us_pool_unshared(b->pool);
            b->unshared = 1;
        }
        char *grown = apr_palloc(b->pool, cap);
        if (b->len)
            memcpy(grown, b->data, b->len);
        b->data = grown;
        b->cap = cap;
    }
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

void us_buf_reset(us_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

apr_pool_t *us_pool_unshared(apr_pool_t *parent)
{
    apr_allocator_t *a;
    apr_pool_t *p;
    if (apr_allocator_create(&a) != APR_SUCCESS)
        abort();
    if (apr_pool_create_ex(&p, parent, NULL, a) != APR_SUCCESS)
        abort();
    apr_allocator_owner_set(a, p);
    return p;
}

/*
 * us_lasting_pool.c - see us_lasting_pool.h.
 */
#include "us_lasting_pool.h"

apr_status_t us_lasting_pool_create(apr_pool_t **pool, apr_allocator_t **allocator)
{
    apr_allocator_t *a;
    apr_status_t rv = apr_allocator_create(&a);
    if (rv != APR_SUCCESS)
        return rv;
    if ((rv = apr_pool_create_unmanaged_ex(pool, NULL, a)) != APR_SUCCESS) {
        apr_allocator_destroy(a);
        return rv;
    }
    apr_allocator_owner_set(a, *pool);
    *allocator = a;
    return APR_SUCCESS;
}

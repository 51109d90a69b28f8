/*
 * us_storage_verdict.c - what a storage status says: an outage (try again
 * later) or a refusal of one object. Apart from the front (us_storage.c),
 * which calls the backends, so that a backend may ask it too.
 */
#include "us_storage.h"

#include <errno.h>

int us_storage_unavailable(apr_status_t rv)
{
    return rv == APR_ECONNREFUSED || rv == APR_ECONNRESET || rv == APR_EHOSTUNREACH ||
           rv == APR_TIMEUP || APR_STATUS_IS_EAGAIN(rv);
}

int us_storage_refused(apr_status_t rv)
{
    return rv == APR_EGENERAL || rv == APR_FROM_OS_ERROR(EISDIR) || APR_STATUS_IS_ENOTEMPTY(rv) ||
           APR_STATUS_IS_EEXIST(rv);
}

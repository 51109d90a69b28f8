/* us_s3_spill.c - see us_s3_spill.h. */
#include "us_s3_spill.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <apr_atomic.h>

struct us_s3_budget {
    apr_uint64_t limit;
    volatile apr_uint64_t used;
};

us_s3_budget *us_s3_budget_create(apr_pool_t *p, apr_uint64_t bytes)
{
    us_s3_budget *b = apr_pcalloc(p, sizeof(*b));
    b->limit = bytes;
    return b;
}

int us_s3_budget_take(us_s3_budget *b, apr_uint64_t n)
{
    for (;;) {
        apr_uint64_t used = apr_atomic_read64(&b->used);
        if (n > b->limit || used > b->limit - n)
            return 0;
        if (apr_atomic_cas64(&b->used, used + n, used) == used)
            return 1;
    }
}

void us_s3_budget_give(us_s3_budget *b, apr_uint64_t n)
{
    apr_atomic_sub64(&b->used, n);
}

apr_uint64_t us_s3_budget_used(us_s3_budget *b)
{
    return apr_atomic_read64(&b->used);
}

int us_s3_spill_open(const char *dir)
{
    static const char name[] = "/us-s3-part-XXXXXX";
    size_t n = strlen(dir);
    char *path = malloc(n + sizeof(name));
    if (!path) {
        errno = ENOMEM;
        return -1;
    }
    snprintf(path, n + sizeof(name), "%s%s", dir, name);
    int fd = mkstemp(path);
    if (fd >= 0) {
        unlink(path); /* gone with its descriptor, whatever ends the process */
        if (fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
            int e = errno;
            close(fd);
            fd = -1;
            errno = e;
        }
    }
    free(path);
    return fd;
}

/*
 * alloc_bound.h - for fuzz targets: counts the bytes allocated while one
 * input is processed, so a target can fail on super-linear allocation (a
 * copy per piece, a copy per recursion level), which libFuzzer's
 * -malloc_limit_mb (one allocation) and -rss_limit_mb (the whole process)
 * only catch once it reaches hundreds of megabytes.
 *
 * Two sources are counted: malloc, through the sanitizers' hook, and APR
 * pools, by defining apr_palloc here. The pool allocator takes its memory
 * with mmap on Debian, which no malloc hook sees; this definition
 * interposes libapr's (apr_pstrcat, apr_pstrdup and apr_pcalloc all call
 * it) and forwards to it. Include this header in exactly one file.
 */
#ifndef ALLOC_BOUND_H
#define ALLOC_BOUND_H

#include <dlfcn.h>
#include <sanitizer/allocator_interface.h>
#include <stdio.h>
#include <stdlib.h>

#include <apr_pools.h>

static volatile size_t alloc_bound_bytes;

static void alloc_bound_on_malloc(const volatile void *ptr, size_t size)
{
    (void)ptr;
    alloc_bound_bytes += size;
}

static void alloc_bound_on_free(const volatile void *ptr)
{
    (void)ptr;
}

void *apr_palloc(apr_pool_t *p, apr_size_t size)
{
    static void *(*real)(apr_pool_t *, apr_size_t);
    if (!real) {
        *(void **)&real = dlsym(RTLD_NEXT, "apr_palloc");
        if (!real)
            abort();
    }
    alloc_bound_bytes += size;
    return real(p, size);
}

static void alloc_bound_start(void)
{
    static int installed;
    if (!installed) {
        __sanitizer_install_malloc_and_free_hooks(alloc_bound_on_malloc, alloc_bound_on_free);
        installed = 1;
    }
    alloc_bound_bytes = 0;
}

/* Aborts when more than limit bytes were allocated since alloc_bound_start. */
static void alloc_bound_check(size_t limit, const char *what)
{
    if (alloc_bound_bytes > limit) {
        fprintf(stderr, "%s: %zu bytes allocated, bound %zu\n", what, (size_t)alloc_bound_bytes, limit);
        abort();
    }
}

#endif

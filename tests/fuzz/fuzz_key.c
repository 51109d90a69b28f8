/*
 * libFuzzer target: `${filename}` substitution in an upload key
 * (us_key_substitute). The result must be what a plain replace-all gives,
 * or NULL exactly when that would be longer than the limit, and the bytes
 * allocated must be those of the result, never a copy per occurrence.
 *
 * Input layout: key, a 0 byte, the file name (no 0 byte: an empty one).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include "alloc_bound.h"
#include "us_filename.h"

#define LIMIT 1024

/* The length of the plain replace-all, counted without building it. */
static size_t expected_len(const char *key, size_t flen)
{
    size_t n = 0;
    for (const char *k = key; *k;) {
        const char *hit = strstr(k, "${filename}");
        if (!hit)
            return n + strlen(k);
        n += (size_t)(hit - k) + flen;
        k = hit + 11;
    }
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    if (!init) {
        apr_initialize();
        init = 1;
    }
    char *copy = malloc(size + 2);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    copy[size] = '\0';
    copy[size + 1] = '\0';
    const char *key = copy, *name = copy + strlen(copy) + 1;
    if (name > copy + size)
        name = copy + size + 1; /* no 0 byte: the empty name */
    size_t want = expected_len(key, strlen(name));

    alloc_bound_start();
    apr_pool_t *p;
    apr_pool_create(&p, NULL);
    const char *out = us_key_substitute(p, key, name, LIMIT);
    alloc_bound_check(64 * 1024, "key substitution");
    if ((want > LIMIT) != (out == NULL))
        abort();
    if (out) {
        if (strlen(out) != want)
            abort();
        /* spot-check the bytes: every occurrence replaced, left to right */
        const char *k = key, *o = out;
        while (*k) {
            const char *hit = strstr(k, "${filename}");
            size_t lit = hit ? (size_t)(hit - k) : strlen(k);
            if (memcmp(o, k, lit) != 0)
                abort();
            o += lit;
            if (!hit)
                break;
            if (memcmp(o, name, strlen(name)) != 0)
                abort();
            o += strlen(name);
            k = hit + 11;
        }
    }
    apr_pool_destroy(p);
    free(copy);
    return 0;
}

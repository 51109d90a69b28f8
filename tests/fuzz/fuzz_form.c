/*
 * libFuzzer target: a multipart body through the parser into the bounded
 * form fields (us_form), fed in pieces whose sizes the input chooses - the
 * upload target's path before the file. Fails when the bytes allocated grow
 * faster than the input (a copy per piece, per part, per field name), or
 * when the form holds more than its limits.
 *
 * Input layout:
 *   byte 0   piece-size seed: pieces of 1..(seed % 64 + 1) bytes
 *   rest     the body, boundary "bnd"
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include "alloc_bound.h"
#include "us_form.h"
#include "us_multipart.h"

#define MAX_BYTES 4096
#define MAX_FIELDS 16

typedef struct {
    us_form *form;
    int in_field;
    int refused;
} run;

static int on_begin(void *ctx, const us_mp_part *part)
{
    run *r = ctx;
    r->in_field = 0;
    if (!part->name || strcmp(part->name, "file") == 0)
        return 0;
    if (us_form_begin(r->form, part->name) != US_FORM_OK) {
        r->refused = 1;
        return 1;
    }
    r->in_field = 1;
    return 0;
}

static int on_data(void *ctx, const char *data, size_t len)
{
    run *r = ctx;
    if (r->in_field && us_form_append(r->form, data, len) != US_FORM_OK) {
        r->refused = 1;
        return 1;
    }
    return 0;
}

static int on_end(void *ctx)
{
    run *r = ctx;
    if (r->in_field)
        us_form_end(r->form);
    r->in_field = 0;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    static const us_mp_callbacks cb = { on_begin, on_data, on_end };
    if (!init) {
        apr_initialize();
        init = 1;
    }
    if (size < 1)
        return 0;
    size_t max_piece = data[0] % 64 + 1;
    const char *body = (const char *)data + 1;
    size_t len = size - 1;

    alloc_bound_start();
    apr_pool_t *p;
    apr_pool_create(&p, NULL);
    run r = { us_form_create(p, MAX_BYTES, MAX_FIELDS), 0, 0 };
    us_mp *mp = us_mp_create(p, "bnd", &cb, &r);
    us_mp_status st = US_MP_CONTINUE;
    for (size_t off = 0, i = 0; off < len && st == US_MP_CONTINUE; i++) {
        size_t n = (i * 7 + 3) % max_piece + 1;
        if (n > len - off)
            n = len - off;
        st = us_mp_feed(mp, body + off, n);
        off += n;
    }
    if (st == US_MP_CONTINUE)
        (void)us_mp_finish(mp);
    if (us_form_bytes(r.form) > MAX_BYTES)
        abort();
    /* the parser's and the form's fixed parts, then linear in the input */
    alloc_bound_check(256 * 1024 + 16 * size, "form");
    apr_pool_destroy(p);
    return 0;
}

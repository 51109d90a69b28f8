/*
 * libFuzzer target for the streaming multipart parser (us_multipart).
 *
 * Input layout:
 *   byte 0   boundary: < 0xC0 picks one of BOUNDARIES; otherwise the low
 *            6 bits + 1 give a length n and the next n bytes, mapped onto
 *            RFC 2046 bchars, spell it
 *   byte 1   seed of the random chunk sizes
 *   rest     the body
 *
 * A part named "abort" makes part_begin return nonzero, one named
 * "abort-end" part_end: aborts that are the same however the input is cut.
 * A fourth parse stops at the seed-th data callback; it is only checked for
 * consistency, not compared.
 *
 * The body is parsed three times - in one piece, in random chunks and one
 * byte at a time, every chunk a heap copy of its own - and the three
 * transcripts (callbacks and status) must be equal. Also checked: callbacks
 * nest properly, data pieces are never empty, bytes not taken from the
 * current chunk are shorter than the delimiter, a complete part's data never
 * holds the delimiter, and the status/error pair is consistent.
 *
 * Build: clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude \
 *   $(apr-1-config --includes --cppflags) tests/fuzz/fuzz_multipart.c \
 *   src/wire/us_multipart.c $(apr-1-config --link-ld --libs) -o /tmp/fuzz_multipart
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include "us_multipart.h"

#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "invariant failed: %s (line %d)\n", #cond, __LINE__); \
            abort();                                                        \
        }                                                                   \
    } while (0)

static const char *BOUNDARIES[] = {
    "bnd", "b", "-", "9f6c1bd1a8b94bf2a5fa0e8e1f3c7e60",
    "------------------------d74496d66958873e",
    "----WebKitFormBoundary7MA4YWxkTrZu0gW",
    "0123456789012345678901234567890123456789012345678901234567890123456789",
    "a b'()+_,-./:=?c",
};
#define NBOUNDARIES (sizeof(BOUNDARIES) / sizeof(BOUNDARIES[0]))

static const char BCHARS[] =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'()+_,-./:=? ";

/* ---- a growable byte buffer --------------------------------------------- */

typedef struct {
    char *p;
    size_t len, cap;
} buf;

static void buf_put(buf *b, const void *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->p = realloc(b->p, b->cap);
        CHECK(b->p != NULL);
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

/* ---- the transcript ------------------------------------------------------ */

typedef struct {
    buf t;              /* transcript: tagged, length-prefixed records */
    buf part;           /* the current part's data (for the delimiter check) */
    const char *delim;  /* "\r\n--" boundary */
    size_t dlen;
    const char *chunk;  /* the chunk being fed */
    size_t chunk_len;
    int in_part;
    size_t data_rec;    /* offset of the open data record's length, or 0 */
    int abort_end;      /* the current part is named "abort-end" */
    unsigned datas, abort_data_at; /* data callbacks; stop at this one (0: never) */
} run_state;

/* A record: tag byte, then the length and bytes of s (or the tag 'N'). */
static void put_field(buf *b, const char *s)
{
    if (!s) {
        buf_put(b, "N", 1);
        return;
    }
    size_t n = strlen(s);
    buf_put(b, "S", 1);
    buf_put(b, &n, sizeof(n));
    buf_put(b, s, n);
}

static int on_begin(void *ctx, const us_mp_part *part)
{
    run_state *r = ctx;
    CHECK(!r->in_part);
    r->in_part = 1;
    r->part.len = 0;
    r->data_rec = 0;
    buf_put(&r->t, "B", 1);
    put_field(&r->t, part->name);
    put_field(&r->t, part->filename);
    put_field(&r->t, part->filename_star);
    put_field(&r->t, part->content_type);
    /* deterministic aborts, the same however the input is cut */
    r->abort_end = part->name && strcmp(part->name, "abort-end") == 0;
    return part->name && strcmp(part->name, "abort") == 0;
}

static int on_data(void *ctx, const char *data, size_t len)
{
    run_state *r = ctx;
    CHECK(r->in_part);
    CHECK(len > 0);
    /* zero copy: bytes from elsewhere are the held-back delimiter prefix */
    if (data < r->chunk || data + len > r->chunk + r->chunk_len)
        CHECK(len < r->dlen && memcmp(data, r->delim, len) == 0);
    buf_put(&r->part, data, len);
    /* consecutive pieces make one record: the cut into pieces must not show */
    if (r->data_rec == 0) {
        size_t zero = 0;
        buf_put(&r->t, "D", 1);
        r->data_rec = r->t.len;
        buf_put(&r->t, &zero, sizeof(zero));
    }
    size_t total;
    memcpy(&total, r->t.p + r->data_rec, sizeof(total));
    total += len;
    memcpy(r->t.p + r->data_rec, &total, sizeof(total));
    buf_put(&r->t, data, len);
    return ++r->datas == r->abort_data_at;
}

static int on_end(void *ctx)
{
    run_state *r = ctx;
    CHECK(r->in_part);
    r->in_part = 0;
    CHECK(r->part.len < r->dlen ||
          memmem(r->part.p, r->part.len, r->delim, r->dlen) == NULL);
    r->data_rec = 0;
    buf_put(&r->t, "E", 1);
    return r->abort_end;
}

static const us_mp_callbacks CB = { on_begin, on_data, on_end };

/* Parses body in chunks: mode 0 one piece, 1 single bytes, 2 random sizes
 * drawn from seed; 3 like 2 but stopping at the seed-th data callback. */
static void parse(apr_pool_t *pool, const char *boundary, const uint8_t *body,
                  size_t len, unsigned seed, int mode, buf *out)
{
    run_state r;
    char delim[4 + US_MP_MAX_BOUNDARY + 1];
    apr_pool_t *p;

    memset(&r, 0, sizeof(r));
    snprintf(delim, sizeof(delim), "\r\n--%s", boundary);
    r.delim = delim;
    r.dlen = strlen(delim);
    if (mode == 3)
        r.abort_data_at = 1 + seed % 8;
    apr_pool_create(&p, pool);
    us_mp *mp = us_mp_create(p, boundary, &CB, &r);
    us_mp_status st = US_MP_CONTINUE;
    size_t pos = 0;
    uint32_t rng = seed * 2654435761u + 1;

    while (pos < len) {
        size_t n = len - pos;
        if (mode == 1)
            n = 1;
        else if (mode >= 2) {
            rng ^= rng << 13;
            rng ^= rng >> 17;
            rng ^= rng << 5;
            n = rng % 64;
            if (n > len - pos)
                n = len - pos;
        }
        char *chunk = malloc(n ? n : 1);
        memcpy(chunk, body + pos, n);
        r.chunk = chunk;
        r.chunk_len = n;
        size_t before = r.t.len;
        us_mp_status s = us_mp_feed(mp, chunk, n);
        free(chunk);
        if (st != US_MP_CONTINUE) {
            CHECK(s == st);
            CHECK(r.t.len == before);
        }
        st = s;
        pos += n;
    }
    st = us_mp_finish(mp);
    CHECK(st != US_MP_CONTINUE);
    CHECK(us_mp_finish(mp) == st);
    if (st == US_MP_DONE)
        CHECK(us_mp_error(mp) == NULL && !r.in_part);
    else
        CHECK(us_mp_error(mp) != NULL && us_mp_error(mp)[0] != '\0');
    buf_put(&r.t, "=", 1);
    buf_put(&r.t, &st, sizeof(st));
    if (us_mp_error(mp))
        buf_put(&r.t, us_mp_error(mp), strlen(us_mp_error(mp)));
    apr_pool_destroy(p);
    free(r.part.p);
    *out = r.t;
}

static const char *pick_boundary(const uint8_t **data, size_t *size, char *own)
{
    uint8_t sel = (*data)[0];
    (*data)++;
    (*size)--;
    if (sel < 0xC0)
        return BOUNDARIES[sel % NBOUNDARIES];
    size_t n = 1 + (sel & 0x3f);
    if (n > *size)
        n = *size;
    for (size_t i = 0; i < n; i++)
        own[i] = BCHARS[(*data)[i] % (sizeof(BCHARS) - 1)];
    own[n] = '\0';
    *data += n;
    *size -= n;
    return own; /* may be invalid (empty, trailing space): also a case */
}

/* Also throw the start of the body (up to a NUL) at us_mp_boundary. */
static void fuzz_boundary(apr_pool_t *pool, const uint8_t *data, size_t size)
{
    char ct[256];
    size_t n = size < sizeof(ct) - 1 ? size : sizeof(ct) - 1;
    memcpy(ct, data, n);
    ct[n] = '\0';
    const char *b = us_mp_boundary(pool, ct);
    if (b) {
        size_t bl = strlen(b);
        CHECK(bl >= 1 && bl <= US_MP_MAX_BOUNDARY && b[bl - 1] != ' ');
        us_mp *mp = us_mp_create(pool, b, NULL, NULL);
        CHECK(us_mp_feed(mp, "", 0) == US_MP_CONTINUE);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static apr_pool_t *pool;
    char own[US_MP_MAX_BOUNDARY + 1];
    buf one, bytes, rnd, stopped;

    if (!pool) {
        apr_initialize();
        apr_pool_create(&pool, NULL);
    }
    if (size < 2)
        return 0;
    const char *boundary = pick_boundary(&data, &size, own);
    if (size < 1)
        return 0;
    unsigned seed = data[0];
    data++;
    size--;
    fuzz_boundary(pool, data, size);

    parse(pool, boundary, data, size, 0, 0, &one);
    parse(pool, boundary, data, size, 0, 1, &bytes);
    parse(pool, boundary, data, size, seed, 2, &rnd);
    parse(pool, boundary, data, size, seed, 3, &stopped);
    free(stopped.p);
    CHECK(one.len == bytes.len && memcmp(one.p, bytes.p, one.len) == 0);
    CHECK(one.len == rnd.len && memcmp(one.p, rnd.p, one.len) == 0);
    free(one.p);
    free(bytes.p);
    free(rnd.p);
    apr_pool_clear(pool);
    return 0;
}

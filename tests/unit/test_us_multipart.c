/* Unit tests: streaming multipart/form-data parser (us_multipart). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include "fixture.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_strings.h>
#include "us_multipart.h"


/* ---- transcript: every callback rendered as text ------------------------
 * part_begin  -> {name|filename|filename*|content-type}   (NULL as ~)
 * part_data   -> the bytes, escaped (\r \n \\ \{ \} \xHH)
 * part_end    -> {/}
 * then " => DONE", " => ERROR(message)" or " => ABORTED(message)".
 * Adjacent data callbacks simply concatenate, so the text does not depend on
 * how the parser cut the data into pieces. */

typedef struct {
    char *buf;
    size_t len, cap;
    int in_part;
    int begins, datas, ends;                  /* calls so far */
    int abort_begin, abort_data, abort_end;   /* stop at the n-th call; 0: never */
    const char *name_ptr;                     /* part->name seen at begin */
    char name_copy[64];                       /* and a copy of it */
} transcript;

static void put(transcript *t, const char *s, size_t n)
{
    if (t->len + n + 1 > t->cap) {
        t->cap = (t->len + n + 1) * 2;
        t->buf = realloc(t->buf, t->cap);
        assert_non_null(t->buf);
    }
    memcpy(t->buf + t->len, s, n);
    t->len += n;
    t->buf[t->len] = '\0';
}

static void puts_(transcript *t, const char *s)
{
    put(t, s, strlen(s));
}

static void put_escaped(transcript *t, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char tmp[8];
        if (c == '\r')
            puts_(t, "\\r");
        else if (c == '\n')
            puts_(t, "\\n");
        else if (c == '\\' || c == '{' || c == '}' || c == '|') {
            tmp[0] = '\\';
            tmp[1] = (char)c;
            put(t, tmp, 2);
        } else if (c < 0x20 || c >= 0x7f) {
            snprintf(tmp, sizeof(tmp), "\\x%02x", c);
            puts_(t, tmp);
        } else
            put(t, (const char *)&c, 1);
    }
}

static void put_field(transcript *t, const char *s)
{
    if (s)
        put_escaped(t, s, strlen(s));
    else
        puts_(t, "~");
}

static int on_begin(void *ctx, const us_mp_part *part)
{
    transcript *t = ctx;
    assert_false(t->in_part);
    t->in_part = 1;
    puts_(t, "{");
    put_field(t, part->name);
    puts_(t, "|");
    put_field(t, part->filename);
    puts_(t, "|");
    put_field(t, part->filename_star);
    puts_(t, "|");
    put_field(t, part->content_type);
    puts_(t, "}");
    t->name_ptr = part->name;
    if (part->name)
        snprintf(t->name_copy, sizeof(t->name_copy), "%s", part->name);
    return ++t->begins == t->abort_begin;
}

static int on_data(void *ctx, const char *data, size_t len)
{
    transcript *t = ctx;
    assert_true(t->in_part);
    assert_true(len > 0);
    put_escaped(t, data, len);
    return ++t->datas == t->abort_data;
}

static int on_end(void *ctx)
{
    transcript *t = ctx;
    assert_true(t->in_part);
    t->in_part = 0;
    /* the part's strings live until part_end returns */
    if (t->name_ptr)
        assert_int_equal(strncmp(t->name_ptr, t->name_copy, sizeof(t->name_copy) - 1), 0);
    puts_(t, "{/}");
    return ++t->ends == t->abort_end;
}

static const us_mp_callbacks CB = { on_begin, on_data, on_end };

/* ---- how to cut the input ---------------------------------------------- */

enum { SPLIT_ONE, SPLIT_TWO, SPLIT_BYTES, SPLIT_RANDOM };

typedef struct {
    int mode;
    size_t at;        /* SPLIT_TWO: the first chunk's length */
    uint32_t rng;     /* SPLIT_RANDOM: xorshift state (nonzero) */
} splitter;

static uint32_t xorshift(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static size_t next_chunk(splitter *sp, size_t pos, size_t left)
{
    size_t n;
    switch (sp->mode) {
    case SPLIT_TWO:
        n = pos < sp->at ? sp->at - pos : left;
        break;
    case SPLIT_BYTES:
        n = 1;
        break;
    case SPLIT_RANDOM: /* 0..40, empty feeds included */
        n = xorshift(&sp->rng) % 41;
        break;
    default:
        n = left;
    }
    return n < left ? n : left;
}

static void put_status(transcript *t, us_mp_status st, const us_mp *mp)
{
    static const char *names[] = { "CONTINUE", "DONE", "ERROR", "ABORTED" };
    puts_(t, " => ");
    puts_(t, names[st]);
    if (st == US_MP_ERROR || st == US_MP_ABORTED) {
        assert_non_null(us_mp_error(mp));
        puts_(t, "(");
        puts_(t, us_mp_error(mp));
        puts_(t, ")");
    } else {
        assert_null(us_mp_error(mp));
    }
}

/* Parses body cut as sp says, then finishes. Each chunk is a separate heap
 * copy so that reading past a chunk shows up under ASan/valgrind. Returns
 * the transcript (malloc'ed). */
static char *run_with(const char *boundary, const char *body, size_t len,
                      splitter sp, transcript *t)
{
    apr_pool_t *p;
    apr_pool_create(&p, pool);
    us_mp *mp = us_mp_create(p, boundary, &CB, t);
    us_mp_status st = US_MP_CONTINUE;
    size_t pos = 0;

    assert_non_null(mp);
    if (sp.mode == SPLIT_TWO || len == 0) /* an empty feed must be harmless */
        assert_int_equal(us_mp_feed(mp, NULL, 0), US_MP_CONTINUE);
    while (pos < len) {
        size_t n = next_chunk(&sp, pos, len - pos);
        char *chunk = malloc(n ? n : 1);
        memcpy(chunk, body + pos, n);
        size_t before = t->len;
        us_mp_status s = us_mp_feed(mp, chunk, n);
        free(chunk);
        if (st != US_MP_CONTINUE) { /* already over: same status, no callbacks */
            assert_int_equal(s, st);
            assert_int_equal(t->len, before);
        }
        st = s;
        pos += n;
    }
    st = us_mp_finish(mp);
    put_status(t, st, mp);
    assert_int_equal(us_mp_finish(mp), st);
    apr_pool_destroy(p);
    return t->buf;
}

static char *run(const char *boundary, const char *body, size_t len, splitter sp)
{
    transcript t = { 0 };
    return run_with(boundary, body, len, sp, &t);
}

static char *run_once(const char *boundary, const char *body, size_t len)
{
    splitter sp = { SPLIT_ONE, 0, 0 };
    return run(boundary, body, len, sp);
}

/* Every way of cutting body gives the one-shot transcript. */
static void check_split_invariance(const char *boundary, const char *body, size_t len)
{
    char *once = run_once(boundary, body, len);
    size_t stride = len <= 4096 ? 1 : 97; /* big bodies: a sample of cuts */

    for (size_t k = 0; k <= len; k += (k < 8 || len - k < 8) ? 1 : stride) {
        splitter sp = { SPLIT_TWO, k, 0 };
        char *got = run(boundary, body, len, sp);
        if (strcmp(got, once) != 0)
            fail_msg("split at %zu:\n got  %s\n want %s", k, got, once);
        free(got);
    }
    splitter bytes = { SPLIT_BYTES, 0, 0 };
    char *got = run(boundary, body, len, bytes);
    assert_string_equal(got, once);
    free(got);
    for (uint32_t seed = 1; seed <= 8; seed++) {
        splitter rnd = { SPLIT_RANDOM, 0, seed * 2654435761u };
        got = run(boundary, body, len, rnd);
        if (strcmp(got, once) != 0)
            fail_msg("random split seed %u:\n got  %s\n want %s", seed, got, once);
        free(got);
    }
    free(once);
}

/* ---- the table of bodies -------------------------------------------------- */

typedef struct {
    const char *what;
    const char *boundary;
    const char *body;
    size_t len;             /* 0: strlen(body) */
    const char *expect;     /* the transcript */
} mp_case;

#define AIO "9f6c1bd1a8b94bf2a5fa0e8e1f3c7e60"
#define CURL "------------------------d74496d66958873e"
#define WEBKIT "----WebKitFormBoundary7MA4YWxkTrZu0gW"
#define GECKO "---------------------------735323031399963166993862150"
#define HTTPX "d8b5d1b5b3b4c3a1f7e2a9c6e0f1b2c3"
#define CD "Content-Disposition: form-data; "
#define B70 "0123456789012345678901234567890123456789012345678901234567890123456789"

static const mp_case CASES[] = {
    { "aiohttp FormData(quote_fields=True), older version with filename*", AIO,
      "--" AIO "\r\n"
      "Content-Type: text/plain; charset=utf-8\r\n"
      CD "name=\"key\"\r\n"
      "\r\n"
      "ws/sid/${filename}\r\n"
      "--" AIO "\r\n"
      "Content-Type: text/plain; charset=utf-8\r\n"
      CD "name=\"x-amz-algorithm\"\r\n"
      "\r\n"
      "AWS4-HMAC-SHA256\r\n"
      "--" AIO "\r\n"
      "Content-Type: application/octet-stream\r\n"
      CD "name=\"file\"; filename=\"a%20b.txt\"; filename*=utf-8''a%20b.txt\r\n"
      "\r\n"
      "hello\r\nworld\r\n"
      "--" AIO "--\r\n", 0,
      "{key|~|~|text/plain; charset=utf-8}ws/sid/$\\{filename\\}{/}"
      "{x-amz-algorithm|~|~|text/plain; charset=utf-8}AWS4-HMAC-SHA256{/}"
      "{file|a%20b.txt|a b.txt|application/octet-stream}hello\\r\\nworld{/} => DONE" },

    { "aiohttp, current version: no filename*", AIO,
      "--" AIO "\r\n"
      CD "name=\"policy\"\r\n\r\neyJleHAiOjF9\r\n"
      "--" AIO "\r\n"
      CD "name=\"file\"; filename=\"%C3%A9t%C3%A9.pdf\"\r\n"
      "Content-Type: application/pdf\r\n\r\n"
      "%PDF\r\n"
      "--" AIO "--\r\n", 0,
      "{policy|~|~|~}eyJleHAiOjF9{/}"
      "{file|%C3%A9t%C3%A9.pdf|~|application/pdf}%PDF{/} => DONE" },

    { "curl -F", CURL,
      "--" CURL "\r\n"
      CD "name=\"key\"\r\n\r\nvalue\r\n"
      "--" CURL "\r\n"
      CD "name=\"file\"; filename=\"report.pdf\"\r\n"
      "Content-Type: application/pdf\r\n\r\n"
      "%PDF-1.4\r\n%\xe2\xe3\xcf\xd3\r\n--not-the-boundary\r\n"
      "\r\n--" CURL "--\r\n", 0,
      "{key|~|~|~}value{/}"
      "{file|report.pdf|~|application/pdf}"
      "%PDF-1.4\\r\\n%\\xe2\\xe3\\xcf\\xd3\\r\\n--not-the-boundary\\r\\n{/} => DONE" },

    { "Chrome: raw UTF-8 filename, quotes as %22, backslash literal", WEBKIT,
      "--" WEBKIT "\r\n"
      CD "name=\"x-amz-date\"\r\n\r\n20261128T110000Z\r\n"
      "--" WEBKIT "\r\n"
      CD "name=\"file\"; filename=\"r\xc3\xa9sum\xc3\xa9 %22v2%22 C:\\dir.txt\"\r\n"
      "Content-Type: text/plain\r\n\r\n"
      "caf\xc3\xa9\r\n"
      "--" WEBKIT "--\r\n", 0,
      "{x-amz-date|~|~|~}20261128T110000Z{/}"
      "{file|r\\xc3\\xa9sum\\xc3\\xa9 %22v2%22 C:\\\\dir.txt|~|text/plain}caf\\xc3\\xa9{/} => DONE" },

    { "Firefox", GECKO,
      "--" GECKO "\r\n"
      CD "name=\"key\"\r\n\r\nk\r\n"
      "--" GECKO "\r\n"
      CD "name=\"file\"; filename=\"empty.txt\"\r\n"
      "Content-Type: text/plain\r\n\r\n"
      "\r\n--" GECKO "--\r\n", 0,
      "{key|~|~|~}k{/}{file|empty.txt|~|text/plain}{/} => DONE" },

    { "httpx: backslash and quote escaped", HTTPX,
      "--" HTTPX "\r\n"
      CD "name=\"x-amz-credential\"\r\n\r\nus/20261128/local/s3/aws4_request\r\n"
      "--" HTTPX "\r\n"
      CD "name=\"file\"; filename=\"dir\\\\na\\\"me.txt\"\r\n"
      "Content-Type: text/plain\r\n\r\n"
      "line1\nline2\n\r\n"
      "--" HTTPX "--\r\n", 0,
      "{x-amz-credential|~|~|~}us/20261128/local/s3/aws4_request{/}"
      "{file|dir\\\\na\"me.txt|~|text/plain}line1\\nline2\\n{/} => DONE" },

    { "near misses of the delimiter inside data", "bnd",
      "--bnd\r\n" CD "name=\"file\"; filename=\"n.bin\"\r\n\r\n"
      "\r\n--bnx--bnd\r\r\n--bn\rbnd\n--bnd\r\r\n-\r"
      "\r\n--bnd--", 0,
      "{file|n.bin|~|~}\\r\\n--bnx--bnd\\r\\r\\n--bn\\rbnd\\n--bnd\\r\\r\\n-\\r{/} => DONE" },

    { "data made of delimiter prefixes and CRs", "bnd",
      "--bnd\r\n" CD "name=f\r\n\r\n"
      "\r\r\r\n\r\n-\r\n--\r\n--b\r\n--bn\r\r\n--bn\r\n--bnd--", 0,
      "{f|~|~|~}\\r\\r\\r\\n\\r\\n-\\r\\n--\\r\\n--b\\r\\n--bn\\r\\r\\n--bn{/} => DONE" },

    { "boundary of 70 characters", B70,
      "--" B70 "\r\n" CD "name=f\r\n\r\n"
      "\r\n--" "012345678901234567890123456789012345678901234567890123456789012345678" "x"
      "\r\n--" B70 "--", 0,
      "{f|~|~|~}\\r\\n--012345678901234567890123456789012345678901234567890123456789012345678x"
      "{/} => DONE" },

    { "boundary with space and specials", "a b'()+_,-./:=?c",
      "--a b'()+_,-./:=?c\r\n" CD "name=f\r\n\r\nv\r\n--a b'()+_,-./:=?c--", 0,
      "{f|~|~|~}v{/} => DONE" },

    { "preamble, epilogue, transport padding, bare LF headers", "bnd",
      "preamble --bnd line\r\n--bnd \t \r\n"
      "Content-Disposition: form-data; name=a\n\n1\r\n"
      "--bnd\t\r\n"
      "content-disposition:form-data;name=\"b\"\r\n\r\n22\r\n"
      "--bnd--  \r\nepilogue\r\n--bnd\r\nignored", 0,
      "{a|~|~|~}1{/}{b|~|~|~}22{/} => DONE" },

    { "CRLF before the first boundary", "bnd",
      "\r\n--bnd\r\n" CD "name=a\r\n\r\nv\r\n--bnd--", 0,
      "{a|~|~|~}v{/} => DONE" },

    { "empty field and empty file", "bnd",
      "--bnd\r\n" CD "name=\"e\"\r\n\r\n\r\n"
      "--bnd\r\n" CD "name=\"file\"; filename=\"\"\r\n"
      "Content-Type: application/octet-stream\r\n\r\n\r\n--bnd--", 0,
      "{e|~|~|~}{/}{file||~|application/octet-stream}{/} => DONE" },

    { "header names, parameters case-insensitive; whitespace; escapes; filename*", "bnd",
      "--bnd\r\n"
      "CONTENT-DISPOSITION:   FORM-DATA ;NAME = \"q\\\"x\\\\y\" ; FileName=plain.txt;"
      "  FILENAME*= UTF-8'en'%E2%82%ACx ; foo=\"bar\" ;; \r\n"
      "content-TYPE:  text/plain \r\n"
      "X-Other: whatever\r\n\r\n"
      "d\r\n--bnd--", 0,
      "{q\"x\\\\y|plain.txt|\\xe2\\x82\\xacx|text/plain}d{/} => DONE" },

    { "filename* quoted, no name", "bnd",
      "--bnd\r\n" CD "filename*=\"utf-8''%41%62\"\r\n\r\nz\r\n--bnd--", 0,
      "{~|~|Ab|~}z{/} => DONE" },

    { "no parts at all", "bnd", "--bnd--", 0, " => DONE" },

    { "bytes after the close are ignored", "bnd",
      "--bnd\r\n" CD "name=a\r\n\r\nv\r\n--bnd--garbage\r\n--bnd\r\n\r\n", 0,
      "{a|~|~|~}v{/} => DONE" },

    /* errors */
    { "empty body", "bnd", "", 0, " => ERROR(truncated body)" },
    { "preamble only", "bnd", "hello --bnd\n--bnd", 0, " => ERROR(truncated body)" },
    { "missing closing boundary", "bnd",
      "--bnd\r\n" CD "name=a\r\n\r\nv", 0, "{a|~|~|~}v => ERROR(truncated body)" },
    { "truncated inside the delimiter", "bnd",
      "--bnd\r\n" CD "name=a\r\n\r\nv\r\n--bn", 0, "{a|~|~|~}v => ERROR(truncated body)" },
    { "truncated after the delimiter", "bnd",
      "--bnd\r\n" CD "name=a\r\n\r\nv\r\n--bnd", 0, "{a|~|~|~}v => ERROR(truncated body)" },
    { "truncated after one closing dash", "bnd",
      "--bnd\r\n" CD "name=a\r\n\r\nv\r\n--bnd-", 0, "{a|~|~|~}v => ERROR(truncated body)" },
    { "truncated in the next part's headers", "bnd",
      "--bnd\r\n" CD "name=a\r\n\r\nv\r\n--bnd\r\n" CD "name=b\r\n", 0,
      "{a|~|~|~}v{/} => ERROR(truncated body)" },
    { "garbage after headers, no boundary", "bnd",
      "--bnd\r\n" CD "name=a\r\n\r\ngarbage --bnd\n--bnd--", 0,
      "{a|~|~|~}garbage --bnd\\n--bnd-- => ERROR(truncated body)" },
    { "garbage header line", "bnd",
      "--bnd\r\n" CD "name=a\r\ngarbage\r\n\r\nv\r\n--bnd--", 0,
      " => ERROR(malformed part header)" },
    { "space before the colon", "bnd",
      "--bnd\r\nContent-Disposition : form-data; name=a\r\n\r\nv\r\n--bnd--", 0,
      " => ERROR(malformed part header)" },
    { "missing part headers", "bnd",
      "--bnd\r\n\r\nv\r\n--bnd--", 0, " => ERROR(missing part headers)" },
    { "missing part headers, bare LF", "bnd",
      "--bnd\n\nv\r\n--bnd--", 0, " => ERROR(missing part headers)" },
    { "no Content-Disposition", "bnd",
      "--bnd\r\nContent-Type: text/plain\r\n\r\nv\r\n--bnd--", 0,
      " => ERROR(part without Content-Disposition: form-data)" },
    { "Content-Disposition not form-data", "bnd",
      "--bnd\r\nContent-Disposition: attachment; filename=a\r\n\r\nv\r\n--bnd--", 0,
      " => ERROR(part Content-Disposition is not form-data)" },
    { "form-data prefix is not form-data", "bnd",
      "--bnd\r\nContent-Disposition: form-datax; name=a\r\n\r\nv\r\n--bnd--", 0,
      " => ERROR(part Content-Disposition is not form-data)" },
    { "obs-fold", "bnd",
      "--bnd\r\nContent-Disposition: form-data;\r\n name=a\r\n\r\nv\r\n--bnd--", 0,
      " => ERROR(folded part header lines are not supported)" },
    { "CR CR LF line end", "bnd",
      "--bnd\r\n" CD "name=a\r\r\n\r\nv\r\n--bnd--", 0,
      " => ERROR(invalid character in part header)" },
    { "NUL in a header", "bnd",
      "--bnd\r\n" CD "name=a\0b\r\n\r\nv\r\n--bnd--", sizeof("--bnd\r\n" CD "name=a\0b\r\n\r\nv\r\n--bnd--") - 1,
      " => ERROR(invalid character in part header)" },
    { "garbage after a boundary", "bnd",
      "--bnd\r\n" CD "name=a\r\n\r\nv\r\n--bndX\r\n", 0,
      "{a|~|~|~}v => ERROR(invalid characters after boundary)" },
    { "garbage after the first boundary", "bnd", "--bnd2\r\n", 0,
      " => ERROR(invalid characters after boundary)" },
    { "garbage after padding", "bnd", "--bnd  x\r\n", 0,
      " => ERROR(invalid characters after boundary)" },
    { "CR without LF after a boundary", "bnd", "--bnd\rx", 0,
      " => ERROR(invalid characters after boundary)" },
    { "single dash close", "bnd",
      "--bnd\r\n" CD "name=a\r\n\r\nv\r\n--bnd-x", 0,
      "{a|~|~|~}v => ERROR(invalid characters after boundary)" },
    { "duplicate name", "bnd",
      "--bnd\r\n" CD "name=a; NAME=b\r\n\r\nv\r\n--bnd--", 0,
      " => ERROR(duplicate Content-Disposition parameter)" },
    { "duplicate Content-Disposition", "bnd",
      "--bnd\r\n" CD "name=a\r\n" CD "name=b\r\n\r\nv\r\n--bnd--", 0,
      " => ERROR(duplicate Content-Disposition header)" },
    { "duplicate Content-Type", "bnd",
      "--bnd\r\n" CD "name=a\r\nContent-Type: a/b\r\ncontent-type: c/d\r\n\r\nv\r\n--bnd--", 0,
      " => ERROR(duplicate Content-Type header)" },
    { "filename* in ISO-8859-1 (RFC 5987's other charset) comes out as UTF-8", "bnd",
      "--bnd\r\n" CD "name=f; filename*=ISO-8859-1'fr'caf%E9%20%A0x.txt\r\n\r\nv\r\n--bnd--", 0,
      "{f|~|caf\\xc3\\xa9 \\xc2\\xa0x.txt|~}v{/} => DONE" },
    { "filename* in another charset", "bnd",
      "--bnd\r\n" CD "name=f; filename*=windows-1252''caf%E9.txt\r\n\r\nv\r\n--bnd--", 0,
      " => ERROR(malformed filename* parameter)" },
    { "filename* without charset quotes", "bnd",
      "--bnd\r\n" CD "name=f; filename*=a%20b\r\n\r\nv\r\n--bnd--", 0,
      " => ERROR(malformed filename* parameter)" },
    { "filename* with an empty charset", "bnd",
      "--bnd\r\n" CD "name=f; filename*=''a\r\n\r\nv\r\n--bnd--", 0,
      " => ERROR(malformed filename* parameter)" },
    { "filename* with a short escape", "bnd",
      "--bnd\r\n" CD "name=f; filename*=utf-8''a%2\r\n\r\nv\r\n--bnd--", 0,
      " => ERROR(malformed filename* parameter)" },
    { "filename* with a bad escape", "bnd",
      "--bnd\r\n" CD "name=f; filename*=utf-8''%G1\r\n\r\nv\r\n--bnd--", 0,
      " => ERROR(malformed filename* parameter)" },
    { "filename* decoding to NUL", "bnd",
      "--bnd\r\n" CD "name=f; filename*=utf-8''a%00b\r\n\r\nv\r\n--bnd--", 0,
      " => ERROR(malformed filename* parameter)" },
    { "unterminated quoted-string", "bnd",
      "--bnd\r\n" CD "name=\"abc\r\n\r\nv\r\n--bnd--", 0,
      " => ERROR(malformed Content-Disposition)" },
    { "empty parameter value", "bnd",
      "--bnd\r\n" CD "name=\r\n\r\nv\r\n--bnd--", 0,
      " => ERROR(malformed Content-Disposition)" },
    { "unquoted value with a space", "bnd",
      "--bnd\r\n" CD "name=f; filename=a b.txt\r\n\r\nv\r\n--bnd--", 0,
      " => ERROR(malformed Content-Disposition)" },
    { "parameter without =", "bnd",
      "--bnd\r\n" CD "name\r\n\r\nv\r\n--bnd--", 0,
      " => ERROR(malformed Content-Disposition)" },
    { "empty parameter name", "bnd",
      "--bnd\r\n" CD "=\"x\"\r\n\r\nv\r\n--bnd--", 0,
      " => ERROR(malformed Content-Disposition)" },
    { "look-alike header name is ignored", "bnd",
      "--bnd\r\nContent-Dispositiox: form-data; name=a\r\n\r\nv\r\n--bnd--", 0,
      " => ERROR(part without Content-Disposition: form-data)" },
    { "text after the disposition type", "bnd",
      "--bnd\r\nContent-Disposition: form-data name=a\r\n\r\nv\r\n--bnd--", 0,
      " => ERROR(malformed Content-Disposition)" },
};

#define NCASES (sizeof(CASES) / sizeof(CASES[0]))

static size_t case_len(const mp_case *c)
{
    return c->len ? c->len : strlen(c->body);
}

static void test_cases_one_shot(void **state)
{
    (void)state;
    for (size_t i = 0; i < NCASES; i++) {
        const mp_case *c = &CASES[i];
        char *got = run_once(c->boundary, c->body, case_len(c));
        if (strcmp(got, c->expect) != 0)
            fail_msg("case '%s':\n got  %s\n want %s", c->what, got, c->expect);
        free(got);
    }
}

static void test_cases_every_split(void **state)
{
    (void)state;
    for (size_t i = 0; i < NCASES; i++) {
        print_message("  split-invariance: %s\n", CASES[i].what);
        check_split_invariance(CASES[i].boundary, CASES[i].body, case_len(&CASES[i]));
    }
}

/* ---- header block size limit ---------------------------------------------- */

/* A part whose header block (boundary line excluded, blank line included) is
 * exactly size bytes. */
static char *body_with_header_block(size_t size, size_t *len)
{
    const char *head = "--bnd\r\n" CD "name=a\r\nX-Pad: ";
    const char *tail = "\r\n\r\nv\r\n--bnd--";
    size_t fixed = strlen(head) - strlen("--bnd\r\n") + 4; /* + "\r\n\r\n" */
    size_t pad = size - fixed;
    size_t hl = strlen(head);
    char *b = malloc(hl + pad + strlen(tail) + 1);
    if (!b)
        abort();
    memcpy(b, head, hl);
    memset(b + hl, 'p', pad);
    strcpy(b + hl + pad, tail);
    *len = strlen(b);
    return b;
}

static void test_header_block_limit(void **state)
{
    size_t len;
    (void)state;
    char *ok = body_with_header_block(US_MP_MAX_HEADER, &len);
    char *got = run_once("bnd", ok, len);
    assert_string_equal(got, "{a|~|~|~}v{/} => DONE");
    free(got);
    check_split_invariance("bnd", ok, len);
    free(ok);

    char *big = body_with_header_block(US_MP_MAX_HEADER + 1, &len);
    got = run_once("bnd", big, len);
    assert_string_equal(got, " => ERROR(header block too large)");
    free(got);
    check_split_invariance("bnd", big, len);
    free(big);

    /* an endless header line, cut off: too large, not truncated */
    big = body_with_header_block(US_MP_MAX_HEADER + 1000, &len);
    got = run_once("bnd", big, US_MP_MAX_HEADER + 200);
    assert_string_equal(got, " => ERROR(header block too large)");
    free(got);
    free(big);
}

/* ---- callbacks stopping the parser ---------------------------------------- */

static void test_abort(void **state)
{
    static const struct {
        int begin, data, end;
        const char *expect;
    } T[] = {
        { 1, 0, 0, "{key|~|~|~} => ABORTED(aborted by a callback)" },
        { 2, 0, 0, "{key|~|~|~}value{/}{file|report.pdf|~|application/pdf} => ABORTED(aborted by a callback)" },
        { 0, 1, 0, "{key|~|~|~}value => ABORTED(aborted by a callback)" },
        { 0, 2, 0, "{key|~|~|~}value{/}{file|report.pdf|~|application/pdf}%PDF-1.4\\r\\n%\\xe2\\xe3\\xcf\\xd3\\r\\n--not-the-boundary\\r\\n => ABORTED(aborted by a callback)" },
        { 0, 0, 1, "{key|~|~|~}value{/} => ABORTED(aborted by a callback)" },
        { 0, 0, 2, "{key|~|~|~}value{/}{file|report.pdf|~|application/pdf}%PDF-1.4\\r\\n%\\xe2\\xe3\\xcf\\xd3\\r\\n--not-the-boundary\\r\\n{/} => ABORTED(aborted by a callback)" },
    };
    const mp_case *curl = &CASES[2];
    (void)state;
    for (size_t i = 0; i < sizeof(T) / sizeof(T[0]); i++) {
        transcript t = { 0 };
        t.abort_begin = T[i].begin;
        t.abort_data = T[i].data;
        t.abort_end = T[i].end;
        splitter once = { SPLIT_ONE, 0, 0 };
        char *got = run_with(curl->boundary, curl->body, case_len(curl), once, &t);
        if (strcmp(got, T[i].expect) != 0)
            fail_msg("abort %zu:\n got  %s\n want %s", i, got, T[i].expect);
        free(got);
    }
}

/* Abort, then feed again: no callbacks, same status; also for 1-byte feeds. */
static void test_abort_sticks(void **state)
{
    const mp_case *aio = &CASES[0];
    (void)state;
    transcript t = { 0 };
    t.abort_data = 1;
    splitter bytes = { SPLIT_BYTES, 0, 0 };
    char *got = run_with(aio->boundary, aio->body, case_len(aio), bytes, &t);
    assert_string_equal(got, "{key|~|~|text/plain; charset=utf-8}w => ABORTED(aborted by a callback)");
    free(got);

    /* stopping at the piece made of held-back bytes ("\r\n--bn") */
    const char *body = "--bnd\r\n" CD "name=a\r\n\r\nv\r\n--bnX\r\n--bnd--";
    transcript t2 = { 0 };
    t2.abort_data = 2;
    got = run_with("bnd", body, strlen(body), bytes, &t2);
    assert_string_equal(got, "{a|~|~|~}v\\r\\n--bn => ABORTED(aborted by a callback)");
    free(got);
}

/* ---- status after the end ---------------------------------------------- */

static void test_feed_after_done(void **state)
{
    const mp_case *c = &CASES[2];
    transcript t = { 0 };
    (void)state;
    us_mp *mp = us_mp_create(pool, c->boundary, &CB, &t);
    assert_int_equal(us_mp_feed(mp, c->body, case_len(c)), US_MP_DONE);
    size_t len = t.len;
    assert_int_equal(us_mp_feed(mp, c->body, case_len(c)), US_MP_DONE);
    assert_int_equal(us_mp_feed(mp, "x", 1), US_MP_DONE);
    assert_int_equal(t.len, len);
    assert_int_equal(us_mp_finish(mp), US_MP_DONE);
    assert_null(us_mp_error(mp));
    assert_int_equal(us_mp_feed(mp, "x", 1), US_MP_DONE);
    free(t.buf);
}

static void test_feed_after_error(void **state)
{
    transcript t = { 0 };
    (void)state;
    us_mp *mp = us_mp_create(pool, "bnd", &CB, &t);
    assert_int_equal(us_mp_feed(mp, "--bnd\r\n\r\n", 9), US_MP_ERROR);
    assert_string_equal(us_mp_error(mp), "missing part headers");
    const char *again = "--bnd\r\n" CD "name=a\r\n\r\nv\r\n--bnd--";
    assert_int_equal(us_mp_feed(mp, again, strlen(again)), US_MP_ERROR);
    assert_int_equal(us_mp_finish(mp), US_MP_ERROR);
    assert_string_equal(us_mp_error(mp), "missing part headers");
    assert_int_equal(t.len, 0);
    free(t.buf);
}

static void test_finish_without_input(void **state)
{
    (void)state;
    us_mp *mp = us_mp_create(pool, "bnd", &CB, NULL);
    assert_int_equal(us_mp_finish(mp), US_MP_ERROR);
    assert_string_equal(us_mp_error(mp), "truncated body");
}

static void test_invalid_boundary_in_create(void **state)
{
    static const char *bad[] = { NULL, "", "a b ", "bad@", "a\r\nb",
        B70 "0" };
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        us_mp *mp = us_mp_create(pool, bad[i], &CB, NULL);
        assert_non_null(mp);
        assert_int_equal(us_mp_feed(mp, "--x--", 5), US_MP_ERROR);
        assert_string_equal(us_mp_error(mp), "invalid boundary");
    }
}

static void test_null_callbacks(void **state)
{
    const mp_case *c = &CASES[0];
    (void)state;
    us_mp *mp = us_mp_create(pool, c->boundary, NULL, NULL);
    assert_int_equal(us_mp_feed(mp, c->body, case_len(c)), US_MP_DONE);
    us_mp_callbacks only_data = { NULL, on_data, NULL };
    transcript t = { 0 };
    t.in_part = 1; /* no begin callback to set it */
    mp = us_mp_create(pool, c->boundary, &only_data, &t);
    assert_int_equal(us_mp_feed(mp, c->body, case_len(c)), US_MP_DONE);
    assert_string_equal(t.buf, "ws/sid/$\\{filename\\}AWS4-HMAC-SHA256hello\\r\\nworld");
    free(t.buf);
}

/* ---- us_mp_boundary ---------------------------------------------------------- */

static void test_boundary(void **state)
{
    static const struct {
        const char *ct, *want;
    } T[] = {
        { "multipart/form-data; boundary=abc", "abc" },
        { "Multipart/Form-Data; BOUNDARY=abc", "abc" },
        { "multipart/form-data;boundary=" WEBKIT, WEBKIT },
        { " multipart/form-data ; charset=utf-8 ; Boundary = \"a b:c\" ;", "a b:c" },
        { "multipart/form-data; boundary=\"" B70 "\"", B70 },
        { "multipart/form-data; boundary=a=b/c", "a=b/c" },
        { "multipart/form-data; boundary=\"a\\\"b\"", NULL },  /* '"' is no bchar */
        { "multipart/form-data; boundary=\"" B70 "0\"", NULL },
        { "multipart/form-data; boundary=\"abc \"", NULL },
        { "multipart/form-data; boundary=ab@c", NULL },
        { "multipart/form-data; boundary=", NULL },
        { "multipart/form-data; boundary=\"\"", NULL },
        { "multipart/form-data; boundary=\"abc", NULL },
        { "multipart/form-data; boundary=\"a\x01b\"", NULL },
        { "multipart/form-data; boundary=abc; boundary=def", NULL },
        { "multipart/form-data; boundary=abc def", NULL },
        { "multipart/form-data", NULL },
        { "multipart/form-data; charset=utf-8", NULL },
        { "multipart/mixed; boundary=abc", NULL },
        { "multipart/form-datax; boundary=abc", NULL },
        { "text/plain; boundary=abc", NULL },
        { "multipart; boundary=abc", NULL },
        { "", NULL },
        { NULL, NULL },
    };
    (void)state;
    for (size_t i = 0; i < sizeof(T) / sizeof(T[0]); i++) {
        const char *got = us_mp_boundary(pool, T[i].ct);
        if (T[i].want == NULL && got != NULL)
            fail_msg("'%s': got '%s', want NULL", T[i].ct, got);
        if (T[i].want != NULL && (got == NULL || strcmp(got, T[i].want) != 0))
            fail_msg("'%s': got '%s', want '%s'", T[i].ct, got ? got : "(null)", T[i].want);
    }
}

/* ---- a 64 MiB file part: bounded memory, zero copy ------------------------- */

#define BIG_BOUNDARY "boundary"
#define BIG_DATA ((size_t)64 << 20)
#define BIG_CHUNK ((size_t)64 << 10)
/* 97 bytes (coprime to the chunk size, so near misses land on every chunk
 * edge offset) full of delimiter look-alikes; never "\r\n--boundary". */
static const char TMPL[] =
    "ab\r\n--boundarXcd\r\r\n--bou--boundary\r\nxyz\r\n\r\n-\rboundary\r\n--boundar"
    "\r\n--Boundary\r\n--b0123456789qrstu\r";

typedef struct {
    const char *pattern;     /* TMPL repeated, BIG_CHUNK + 97 bytes */
    const char *chunk;       /* the chunk being fed */
    size_t chunk_len;
    size_t got;              /* data bytes received */
    size_t copies;           /* callbacks with pointers outside the chunk */
    size_t max_copy;         /* their largest length */
    size_t calls;
    int bad;
} big_state;

static int big_data(void *ctx, const char *data, size_t len)
{
    big_state *s = ctx;
    if (data < s->chunk || data + len > s->chunk + s->chunk_len) {
        s->copies++;
        if (len > s->max_copy)
            s->max_copy = len;
    }
    /* compare with the expected bytes, a pattern window at a time */
    for (size_t off = 0; off < len;) {
        size_t pos = (s->got + off) % 97;
        size_t n = len - off < BIG_CHUNK ? len - off : BIG_CHUNK;
        if (memcmp(data + off, s->pattern + pos, n) != 0)
            s->bad = 1;
        off += n;
    }
    s->got += len;
    s->calls++;
    return 0;
}

/* Byte range [pos, pos+n) of head + data + tail into out. */
static void big_fill(char *out, size_t pos, size_t n, const char *head,
                     const char *pattern, const char *tail)
{
    size_t hl = strlen(head);
    while (n > 0) {
        size_t k;
        if (pos < hl) {
            k = hl - pos < n ? hl - pos : n;
            memcpy(out, head + pos, k);
        } else if (pos < hl + BIG_DATA) {
            size_t d = pos - hl;
            k = hl + BIG_DATA - pos < n ? hl + BIG_DATA - pos : n;
            if (k > BIG_CHUNK)
                k = BIG_CHUNK;
            memcpy(out, pattern + d % 97, k);
        } else {
            k = n;
            memcpy(out, tail + (pos - hl - BIG_DATA), k);
        }
        out += k;
        pos += k;
        n -= k;
    }
}

static void test_large_part_bounded(void **state)
{
    const char *head = "--" BIG_BOUNDARY "\r\n" CD "name=\"file\"; filename=\"big.bin\"\r\n"
                       "Content-Type: application/octet-stream\r\n\r\n";
    const char *tail = "\r\n--" BIG_BOUNDARY "--\r\n";
    const size_t hold_max = strlen(BIG_BOUNDARY) + 4;
    size_t total = strlen(head) + BIG_DATA + strlen(tail);
    char *pattern = malloc(BIG_CHUNK + 97);
    char *chunk = malloc(BIG_CHUNK);
    big_state s = { 0 };
    us_mp_callbacks cb = { NULL, big_data, NULL };
    size_t max_lag = 0;
    (void)state;

    assert_int_equal(sizeof(TMPL) - 1, 97);
    for (size_t i = 0; i < BIG_CHUNK + 97; i++)
        pattern[i] = TMPL[i % 97];
    s.pattern = pattern;
    us_mp *mp = us_mp_create(pool, BIG_BOUNDARY, &cb, &s);
    size_t feeds = 0;
    for (size_t pos = 0; pos < total; pos += BIG_CHUNK) {
        size_t n = total - pos < BIG_CHUNK ? total - pos : BIG_CHUNK;
        big_fill(chunk, pos, n, head, pattern, tail);
        s.chunk = chunk;
        s.chunk_len = n;
        us_mp_status st = us_mp_feed(mp, chunk, n);
        feeds++;
        /* how much data has been fed but not passed on: the held-back tail */
        size_t end = pos + n, hl = strlen(head);
        size_t fed = end <= hl ? 0 : (end - hl < BIG_DATA ? end - hl : BIG_DATA);
        if (fed > s.got && fed - s.got > max_lag)
            max_lag = fed - s.got;
        assert_int_equal(st, pos + n < total ? US_MP_CONTINUE : US_MP_DONE);
    }
    assert_int_equal(us_mp_finish(mp), US_MP_DONE);
    assert_false(s.bad);
    assert_int_equal(s.got, BIG_DATA);
    print_message("  64 MiB: %zu feeds, %zu data callbacks, %zu from held-back bytes "
                  "(max %zu bytes), max lag %zu bytes\n",
                  feeds, s.calls, s.copies, s.max_copy, max_lag);
    assert_true(max_lag < hold_max);
    assert_true(s.max_copy < hold_max);
    /* large pieces: about one callback per chunk plus one per held-back tail */
    assert_true(s.calls <= 2 * feeds);
    free(pattern);
    free(chunk);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases_one_shot),
        cmocka_unit_test(test_cases_every_split),
        cmocka_unit_test(test_header_block_limit),
        cmocka_unit_test(test_abort),
        cmocka_unit_test(test_abort_sticks),
        cmocka_unit_test(test_feed_after_done),
        cmocka_unit_test(test_feed_after_error),
        cmocka_unit_test(test_finish_without_input),
        cmocka_unit_test(test_invalid_boundary_in_create),
        cmocka_unit_test(test_null_callbacks),
        cmocka_unit_test(test_boundary),
        cmocka_unit_test(test_large_part_bounded),
    };
    return fixture_run("us_multipart", tests, NULL, NULL);
}

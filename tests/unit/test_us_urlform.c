/* Unit tests: streaming application/x-www-form-urlencoded parser (us_urlform). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include "fixture.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "us_urlform.h"

/* ---- transcript: every callback as text -----------------------------------
 * part_begin -> {name  (~ for NULL), part_data -> the bytes (\xHH for
 * bytes outside printable ASCII and for '{', '}', '\'), part_end -> },
 * then " => DONE" or " => ABORTED". Adjacent data callbacks concatenate, so
 * the text does not depend on where the input was cut. */

typedef struct {
    char buf[8192];
    size_t len;
    int in_field;
    int begins;
    int abort_begin, abort_data; /* stop at the n-th call; 0: never */
    int datas;
} transcript;

static void put(transcript *t, const char *s, size_t n)
{
    assert_true(t->len + n < sizeof(t->buf));
    memcpy(t->buf + t->len, s, n);
    t->len += n;
    t->buf[t->len] = '\0';
}

static void put_escaped(transcript *t, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char tmp[8];
        if (c < 0x20 || c >= 0x7f || c == '{' || c == '}' || c == '\\') {
            snprintf(tmp, sizeof(tmp), "\\x%02x", c);
            put(t, tmp, strlen(tmp));
        }
        else {
            put(t, (const char *)&c, 1);
        }
    }
}

static int on_begin(void *ctx, const us_mp_part *part)
{
    transcript *t = ctx;
    assert_false(t->in_field);
    assert_null(part->filename);
    assert_null(part->filename_star);
    assert_null(part->content_type);
    t->in_field = 1;
    put(t, "{", 1);
    if (part->name)
        put_escaped(t, part->name, strlen(part->name));
    else
        put(t, "~", 1);
    put(t, "|", 1);
    return t->abort_begin && ++t->begins == t->abort_begin;
}

static int on_data(void *ctx, const char *data, size_t len)
{
    transcript *t = ctx;
    assert_true(t->in_field);
    assert_true(len > 0);
    put_escaped(t, data, len);
    return t->abort_data && ++t->datas == t->abort_data;
}

static int on_end(void *ctx)
{
    transcript *t = ctx;
    assert_true(t->in_field);
    t->in_field = 0;
    put(t, "}", 1);
    return 0;
}

static const us_mp_callbacks CB = { on_begin, on_data, on_end };

/* Parses in pieces of `step` bytes (0: whole) into t. */
static void run(transcript *t, const char *in, size_t len, size_t step)
{
    apr_pool_t *p;
    apr_pool_create(&p, pool);
    us_urlform *f = us_urlform_create(p, &CB, t);
    us_mp_status st = US_MP_CONTINUE;
    if (!step)
        step = len ? len : 1;
    for (size_t at = 0; at < len && st == US_MP_CONTINUE; at += step)
        st = us_urlform_feed(f, in + at, len - at < step ? len - at : step);
    st = us_urlform_finish(f);
    const char *end = st == US_MP_DONE ? " => DONE" : st == US_MP_ABORTED ? " => ABORTED" : " => ?";
    put(t, end, strlen(end));
    apr_pool_destroy(p);
}

typedef struct {
    const char *in;
    const char *want;
} form_case;

static const form_case CASES[] = {
    { "", " => DONE" },
    { "text=abc", "{text|abc} => DONE" },
    { "text=a+b%20c", "{text|a b c} => DONE" },
    /* any byte, NUL included, in full: nothing is cut at it */
    { "text=abc%00def", "{text|abc\\x00def} => DONE" },
    { "text=%e2%82%AC", "{text|\\xe2\\x82\\xac} => DONE" },
    /* a '%' without two hex digits after it is itself */
    { "text=100%", "{text|100%} => DONE" },
    { "text=%4", "{text|%4} => DONE" },
    { "text=%4g", "{text|%4g} => DONE" },
    { "text=%zz", "{text|%zz} => DONE" },
    { "text=%%41", "{text|%A} => DONE" },
    { "text=%4%41", "{text|%4A} => DONE" },
    { "a=%&b=1", "{a|%}{b|1} => DONE" },
    { "a=%4&b=1", "{a|%4}{b|1} => DONE" },
    /* '=' after the first is the value's */
    { "a=b=c", "{a|b=c} => DONE" },
    /* a bare name is a field with an empty value; empty segments are skipped */
    { "a&&b=&=c&", "{a|}{b|}{|c} => DONE" },
    { "&&&", " => DONE" },
    /* names are decoded too; one holding a NUL is no name */
    { "te%78t=1&m+e=2", "{text|1}{m e|2} => DONE" },
    { "text%00x=1", "{~|1} => DONE" },
    /* every field, in order, repeated ones too */
    { "meta=%7B%7D&text=x&text=y", "{meta|\\x7b\\x7d}{text|x}{text|y} => DONE" },
};

static void test_cases_every_split(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) {
        size_t len = strlen(CASES[i].in);
        for (size_t step = 0; step <= len; step++) {
            transcript t = { 0 };
            run(&t, CASES[i].in, len, step);
            if (strcmp(t.buf, CASES[i].want) != 0)
                fail_msg("case %zu (%s), pieces of %zu: got %s, want %s", i, CASES[i].in, step,
                         t.buf, CASES[i].want);
        }
    }
}

/* A name is kept up to US_URLFORM_MAX_NAME bytes; one byte more is no name. */
static void test_long_names(void **state)
{
    (void)state;
    char in[US_URLFORM_MAX_NAME + 16], want[US_URLFORM_MAX_NAME + 32];
    memset(in, 'n', US_URLFORM_MAX_NAME);
    strcpy(in + US_URLFORM_MAX_NAME, "=v");
    snprintf(want, sizeof want, "{%.*s|v} => DONE", US_URLFORM_MAX_NAME, in);
    transcript t = { 0 };
    run(&t, in, strlen(in), 7);
    assert_string_equal(t.buf, want);

    memset(in, 'n', US_URLFORM_MAX_NAME + 1);
    strcpy(in + US_URLFORM_MAX_NAME + 1, "=v");
    transcript t2 = { 0 };
    run(&t2, in, strlen(in), 0);
    assert_string_equal(t2.buf, "{~|v} => DONE");
}

/* Counting callbacks for a value too big for a transcript. */
typedef struct {
    size_t total, longest, pieces;
    int begun, ended;
} counts;

static int count_begin(void *ctx, const us_mp_part *part)
{
    counts *c = ctx;
    assert_string_equal(part->name, "text");
    c->begun++;
    return 0;
}

static int count_data(void *ctx, const char *data, size_t len)
{
    counts *c = ctx;
    for (size_t i = 0; i < len; i++)
        assert_int_equal(data[i], ' ');
    c->total += len;
    c->pieces++;
    if (len > c->longest)
        c->longest = len;
    return 0;
}

static int count_end(void *ctx)
{
    ((counts *)ctx)->ended++;
    return 0;
}

/* A value of 1 MiB (of '+', each a space) arrives whole, in pieces of at
 * most 4 KiB whatever the input's cut: the parser holds none of it. */
static void test_large_value_streamed(void **state)
{
    (void)state;
    enum { N = 1024 * 1024 };
    static const us_mp_callbacks cb = { count_begin, count_data, count_end };
    char *in = malloc(N + 5);
    assert_non_null(in);
    memcpy(in, "text=", 5);
    memset(in + 5, '+', N);
    const size_t steps[] = { 1, 4095, 65536, N + 5 };
    for (size_t k = 0; k < sizeof steps / sizeof steps[0]; k++) {
        apr_pool_t *p;
        apr_pool_create(&p, pool);
        counts c = { 0 };
        us_urlform *f = us_urlform_create(p, &cb, &c);
        for (size_t at = 0; at < N + 5; at += steps[k])
            assert_int_equal(us_urlform_feed(f, in + at, N + 5 - at < steps[k] ? N + 5 - at
                                                                                : steps[k]),
                             US_MP_CONTINUE);
        assert_int_equal(us_urlform_finish(f), US_MP_DONE);
        assert_int_equal(c.total, N);
        assert_true(c.longest <= 4096);
        assert_int_equal(c.pieces, N / 4096);
        assert_int_equal(c.begun, 1);
        assert_int_equal(c.ended, 1);
        apr_pool_destroy(p);
    }
    free(in);
}

static void test_abort(void **state)
{
    (void)state;
    transcript t = { 0 };
    t.abort_begin = 2;
    run(&t, "a=1&b=2&c=3", 11, 0);
    assert_string_equal(t.buf, "{a|1}{b| => ABORTED");

    transcript t2 = { 0 };
    t2.abort_data = 1;
    run(&t2, "a=1&b=2", 7, 1);
    assert_string_equal(t2.buf, "{a|1 => ABORTED");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases_every_split),
        cmocka_unit_test(test_long_names),
        cmocka_unit_test(test_large_value_streamed),
        cmocka_unit_test(test_abort),
    };
    return fixture_run("us_urlform", tests, NULL, NULL);
}

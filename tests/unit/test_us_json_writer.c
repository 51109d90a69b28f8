/*
 * test_us_json_writer.c - the direct JSON writer against jansson: for every
 * string, integer and structure here, us_json_writer must write byte for byte
 * what json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) writes with its \u
 * escapes in lower case (Python's json.dumps, which FastAPI's answers are
 * written with), and refuse exactly the strings jansson refuses (not valid
 * UTF-8); floats as Python's repr() writes them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "fixture.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <jansson.h>

#include "us_json_writer.h"
#include "us_utf8.h"
#include "us_json.h"
#include "us_validate.h"
#include "us_python_json.h"

#include <math.h>

#define DUMP_FLAGS (JSON_COMPACT | JSON_ENCODE_ANY)


/* xorshift64*: the same "random" strings on every run */
static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;
static uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1DULL;
}

/* What Python's json.dumps writes for j: jansson's compact text with the
 * hex digits of its \u escapes in lower case (free() it). */
static char *python_dumps(const json_t *j)
{
    char *text = json_dumps(j, DUMP_FLAGS);
    for (char *c = text; c && *c; c++)
        if (c[0] == '\\' && c[1] == 'u') {
            for (int k = 2; k < 6; k++)
                if (c[k] >= 'A' && c[k] <= 'F')
                    c[k] = (char)(c[k] - 'A' + 'a');
            c += 5;
        }
        else if (c[0] == '\\') {
            c++; /* the escaped character: a backslash is no escape's start */
        }
    return text;
}

/* What Python writes for the string s, or NULL when jansson refuses s. */
static char *jansson_string(const char *s)
{
    json_t *j = json_string(s);
    char *text = j ? python_dumps(j) : NULL;
    json_decref(j);
    return text;
}

/* What us_json_writer writes for the string s alone, or NULL. */
static const char *json_writer_string(const char *s)
{
    us_json_writer w;
    us_json_write_init(&w, pool, 16);
    us_json_write_string(&w, s);
    return us_json_write_finish(&w, NULL);
}

/* Both agree on s: the same text, or both refuse it. */
static void check_string(const char *s)
{
    char *want = jansson_string(s);
    const char *got = json_writer_string(s);
    if (!want && got)
        fail_msg("jansson refuses %zu bytes, us_json_writer wrote %s", strlen(s), got);
    if (want && !got)
        fail_msg("us_json_writer refuses %s", want);
    if (want && strcmp(want, got) != 0)
        fail_msg("jansson %s, us_json_writer %s", want, got);
    /* the exposed check says yes exactly when the writer (and jansson) do */
    if (us_utf8_valid(s) != (want != NULL))
        fail_msg("us_utf8_valid disagrees with jansson on %zu bytes", s ? strlen(s) : 0);
    free(want);
}

static void test_every_ascii_character(void **state)
{
    (void)state;
    for (int c = 1; c < 0x80; c++) {
        char s[4] = { (char)c, 0, 0, 0 };
        check_string(s);
        s[0] = 'a';
        s[1] = (char)c;
        s[2] = 'z';
        check_string(s);
    }
    /* spot checks of what jansson writes, so the rules are visible here */
    assert_string_equal(json_writer_string("a\"b\\c/d"), "\"a\\\"b\\\\c/d\"");
    assert_string_equal(json_writer_string("\b\f\n\r\t"), "\"\\b\\f\\n\\r\\t\"");
    assert_string_equal(json_writer_string("\x01\x1f\x7f"), "\"\\u0001\\u001f\x7f\"");
    assert_string_equal(json_writer_string(""), "\"\"");
}

/* Each byte value at each place of a longer string: the writer copies
 * plain text 8 bytes at a time, and must stop for any byte of a word. */
static void test_every_byte_in_every_lane(void **state)
{
    (void)state;
    for (int c = 1; c < 0x100; c++)
        for (int at = 0; at < 19; at++) {
            char s[20];
            memset(s, 'a', sizeof(s) - 1);
            s[sizeof(s) - 1] = '\0';
            s[at] = (char)c;
            check_string(s);
            if (c == 0xc3 && at < 18) { /* a two-byte sequence across words */
                s[at + 1] = (char)0xa9;
                check_string(s);
            }
        }
    assert_string_equal(json_writer_string("0123456789abcdef\"0123456789abcde\\"),
                        "\"0123456789abcdef\\\"0123456789abcde\\\\\"");
}

static void test_every_control_pair(void **state)
{
    (void)state;
    for (int a = 1; a < 0x20; a++)
        for (int b = 1; b < 0x20; b++) {
            char s[] = { (char)a, 'x', (char)b, '"', '\\', 0 };
            check_string(s);
        }
}

static void test_utf8_passes_through(void **state)
{
    static const char *const samples[] = {
        "caf\xc3\xa9", "\xe4\xb8\xad\xe6\x96\x87", "\xf0\x9f\x98\x80 emoji",
        "\xe2\x80\xa8 line separator \xe2\x80\xa9", "\xc2\xa0nbsp", "\xef\xbb\xbf" "bom",
        "\xc2\x80", "\xdf\xbf", "\xe0\xa0\x80", "\xed\x9f\xbf", "\xee\x80\x80",
        "\xef\xbf\xbf", "\xf0\x90\x80\x80", "\xf4\x8f\xbf\xbf",
        "Zo\xc3\xab \"Q\" \\back/slash", "x\xc3\xa9\n\xe2\x82\xac\t\"",
    };
    (void)state;
    for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
        check_string(samples[i]);
        assert_non_null(json_writer_string(samples[i]));
    }
    assert_string_equal(json_writer_string("\xf0\x9f\x98\x80"), "\"\xf0\x9f\x98\x80\"");
}

static void test_invalid_utf8_refused(void **state)
{
    static const char *const bad[] = {
        "\x80", "a\xbf", "\xc0\x80", "\xc1\xbf", "\xc2", "\xc2x", "\xe0\x80\x80",
        "\xe0\x9f\xbf", "\xed\xa0\x80", "\xed\xbf\xbf", "\xe2\x82", "\xf0\x80\x80\x80",
        "\xf0\x8f\xbf\xbf", "\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\xf8\x88\x80\x80\x80",
        "\xfe", "\xff", "ok\xe2\x82", "\xf0\x9f\x98",
    };
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        check_string(bad[i]);
        assert_null(json_writer_string(bad[i]));
    }
    assert_null(json_writer_string(NULL));
}

/* Random strings of bytes drawn mostly from the interesting ones: jansson
 * and us_json_writer agree on every one (text, or both refuse). */
static void test_random_strings_agree(void **state)
{
    static const unsigned char pick[] = {
        0x01, 0x08, 0x09, 0x0a, 0x0c, 0x0d, 0x1a, 0x1f, ' ', '"', '\\', '/', 'a', 'Z',
        '0', '~', 0x7f, 0x80, 0xbf, 0xc0, 0xc2, 0xc3, 0xdf, 0xe0, 0xe2, 0xed, 0xef,
        0xf0, 0xf4, 0xf5, 0xff, 0x9f, 0xa0, 0x8f, 0x90,
    };
    char s[16];
    (void)state;
    for (int round = 0; round < 200000; round++) {
        size_t n = (size_t)(rnd() % (sizeof(s) - 1));
        for (size_t i = 0; i < n; i++) {
            uint64_t r = rnd();
            s[i] = (char)(r % 4 == 0 ? (unsigned char)(1 + (r >> 8) % 255)
                                     : pick[(r >> 8) % sizeof(pick)]);
        }
        s[n] = '\0';
        check_string(s);
    }
}

/* Random valid UTF-8 of every length (1-4 bytes) and ASCII: always written. */
static void test_random_valid_utf8(void **state)
{
    char s[64];
    (void)state;
    for (int round = 0; round < 50000; round++) {
        size_t n = 0;
        int chars = (int)(rnd() % 12);
        for (int k = 0; k < chars; k++) {
            uint32_t cp = (uint32_t)(rnd() % 0x110000);
            if (cp == 0 || (cp >= 0xD800 && cp <= 0xDFFF))
                cp = 'x';
            if (rnd() % 2)
                cp %= 0x80;
            if (cp == 0)
                cp = 0x1f;
            if (cp < 0x80) {
                s[n++] = (char)cp;
            }
            else if (cp < 0x800) {
                s[n++] = (char)(0xC0 | (cp >> 6));
                s[n++] = (char)(0x80 | (cp & 0x3F));
            }
            else if (cp < 0x10000) {
                s[n++] = (char)(0xE0 | (cp >> 12));
                s[n++] = (char)(0x80 | ((cp >> 6) & 0x3F));
                s[n++] = (char)(0x80 | (cp & 0x3F));
            }
            else {
                s[n++] = (char)(0xF0 | (cp >> 18));
                s[n++] = (char)(0x80 | ((cp >> 12) & 0x3F));
                s[n++] = (char)(0x80 | ((cp >> 6) & 0x3F));
                s[n++] = (char)(0x80 | (cp & 0x3F));
            }
        }
        s[n] = '\0';
        check_string(s);
        assert_non_null(json_writer_string(s));
    }
}

static void check_int(long long v)
{
    json_t *j = json_integer((json_int_t)v);
    char *want = python_dumps(j);
    us_json_writer w;
    us_json_write_init(&w, pool, 0);
    us_json_write_int(&w, v);
    assert_string_equal(us_json_write_finish(&w, NULL), want);
    free(want);
    json_decref(j);
}

static void test_integers(void **state)
{
    static const long long edges[] = { 0, 1, -1, 9, 10, 99, 100, -10, LLONG_MAX, LLONG_MIN,
                                       LLONG_MAX - 1, LLONG_MIN + 1, 1000000007LL };
    (void)state;
    for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++)
        check_int(edges[i]);
    for (int i = 0; i < 10000; i++) {
        uint64_t r = rnd();
        check_int((long long)(r >> (r % 64)) * (r & 1 ? -1 : 1));
    }
}

/* A session-list-like answer built with jansson (as the API did) and with
 * us_json_writer: the same text. */
static void test_structure_matches_json_pack(void **state)
{
    static const char *const names[] = { "Ada", "Zo\xc3\xab \"Q\" \\/", "\xf0\x9f\x98\x80\t" };
    (void)state;
    json_t *data = json_array();
    us_json_writer w;
    us_json_write_init(&w, pool, 32); /* small: the buffer must grow */
    us_json_write_object_open(&w);
    us_json_write_key(&w, "data");
    us_json_write_array_open(&w);
    for (int i = 0; i < 50; i++) {
        const char *name = names[i % 3];
        json_array_append_new(data, json_pack("{s:s, s:{s:s, s:s}, s:b, s:I}", "id", "x",
                                              "created_by", "given_name", name,
                                              "family_name", "L", "flag", i % 2,
                                              "n", (json_int_t)i * 1000));
        us_json_write_object_open(&w);
        us_json_write_key_string(&w, "id", "x");
        us_json_write_key(&w, "created_by");
        us_json_write_object_open(&w);
        us_json_write_key_string(&w, "given_name", name);
        us_json_write_key_string(&w, "family_name", "L");
        us_json_write_object_close(&w);
        us_json_write_key_bool(&w, "flag", i % 2);
        us_json_write_key_int(&w, "n", (long long)i * 1000);
        us_json_write_object_close(&w);
    }
    us_json_write_array_close(&w);
    us_json_write_key_bool(&w, "has_more", 0);
    us_json_write_key_int(&w, "total", 50);
    us_json_write_key(&w, "empty_array");
    us_json_write_array_open(&w);
    us_json_write_array_close(&w);
    us_json_write_key(&w, "empty_object");
    us_json_write_object_open(&w);
    us_json_write_object_close(&w);
    us_json_write_key(&w, "list");
    us_json_write_array_open(&w);
    us_json_write_null(&w);
    us_json_write_bool(&w, 1);
    us_json_write_int(&w, -3);
    us_json_write_string(&w, "s");
    us_json_write_array_close(&w);
    us_json_write_object_close(&w);

    json_t *all = json_pack("{s:o, s:b, s:I, s:[], s:{}, s:[n, b, I, s]}", "data", data,
                            "has_more", 0, "total", (json_int_t)50, "empty_array",
                            "empty_object", "list", 1, (json_int_t)-3, "s");
    char *want = python_dumps(all);
    apr_size_t len = 0;
    const char *got = us_json_write_finish(&w, &len);
    assert_non_null(got);
    assert_string_equal(got, want);
    assert_int_equal(len, strlen(want));
    free(want);
    json_decref(all);
}

/* Misuse and refused strings: finish returns NULL, never broken JSON. */
static void test_misuse_fails(void **state)
{
    us_json_writer w;
    (void)state;

    us_json_write_init(&w, pool, 0); /* nothing written */
    assert_null(us_json_write_finish(&w, NULL));

    us_json_write_init(&w, pool, 0); /* a value without a key in an object */
    us_json_write_object_open(&w);
    us_json_write_int(&w, 1);
    us_json_write_object_close(&w);
    assert_null(us_json_write_finish(&w, NULL));

    us_json_write_init(&w, pool, 0); /* a key in an array */
    us_json_write_array_open(&w);
    us_json_write_key(&w, "k");
    us_json_write_int(&w, 1);
    us_json_write_array_close(&w);
    assert_null(us_json_write_finish(&w, NULL));

    us_json_write_init(&w, pool, 0); /* a key without a value */
    us_json_write_object_open(&w);
    us_json_write_key(&w, "k");
    us_json_write_object_close(&w);
    assert_null(us_json_write_finish(&w, NULL));

    us_json_write_init(&w, pool, 0); /* left open */
    us_json_write_array_open(&w);
    assert_null(us_json_write_finish(&w, NULL));

    us_json_write_init(&w, pool, 0); /* closed with the wrong bracket */
    us_json_write_array_open(&w);
    us_json_write_object_close(&w);
    assert_null(us_json_write_finish(&w, NULL));

    us_json_write_init(&w, pool, 0); /* closed once too often */
    us_json_write_array_open(&w);
    us_json_write_array_close(&w);
    us_json_write_array_close(&w);
    assert_null(us_json_write_finish(&w, NULL));

    us_json_write_init(&w, pool, 0); /* two values at the top */
    us_json_write_int(&w, 1);
    us_json_write_int(&w, 2);
    assert_null(us_json_write_finish(&w, NULL));

    us_json_write_init(&w, pool, 0); /* a refused string deep inside */
    us_json_write_object_open(&w);
    us_json_write_key_string(&w, "ok", "fine");
    us_json_write_key_string(&w, "bad", "\xc3(");
    us_json_write_key_string(&w, "after", "fine");
    us_json_write_object_close(&w);
    assert_null(us_json_write_finish(&w, NULL));

    us_json_write_init(&w, pool, 0); /* a NULL string (json_pack refuses it too) */
    us_json_write_object_open(&w);
    us_json_write_key_string(&w, "s", NULL);
    us_json_write_object_close(&w);
    assert_null(us_json_write_finish(&w, NULL));

    us_json_write_init(&w, pool, 0); /* deeper than US_JSON_WRITER_MAX_DEPTH */
    for (int i = 0; i <= US_JSON_WRITER_MAX_DEPTH; i++)
        us_json_write_array_open(&w);
    for (int i = 0; i <= US_JSON_WRITER_MAX_DEPTH; i++)
        us_json_write_array_close(&w);
    assert_null(us_json_write_finish(&w, NULL));

    us_json_write_init(&w, pool, 0); /* exactly US_JSON_WRITER_MAX_DEPTH is fine */
    for (int i = 0; i < US_JSON_WRITER_MAX_DEPTH; i++)
        us_json_write_array_open(&w);
    for (int i = 0; i < US_JSON_WRITER_MAX_DEPTH; i++)
        us_json_write_array_close(&w);
    assert_non_null(us_json_write_finish(&w, NULL));
}

/* An item with a refused string is rewound: the rest is what jansson
 * writes without that item, wherever it was (first, middle, last). */
static void test_rewind_leaves_item_out(void **state)
{
    static const char *const names[] = { "bad\xe9", "a", "bad\xff", "b", "c\"", "bad\xc3" };
    (void)state;
    json_t *arr = json_array();
    us_json_writer w;
    us_json_write_init(&w, pool, 8);
    us_json_write_object_open(&w);
    us_json_write_key(&w, "data");
    us_json_write_array_open(&w);
    for (int i = 0; i < 6; i++) {
        us_json_write_mark m;
        us_json_write_save(&w, &m);
        us_json_write_object_open(&w);
        us_json_write_key_string(&w, "name", names[i]);
        us_json_write_key_string(&w, "padding", "to make the buffer grow while rewinding.....");
        us_json_write_object_close(&w);
        json_t *item = json_pack("{s:s, s:s}", "name", names[i], "padding",
                                 "to make the buffer grow while rewinding.....");
        assert_int_equal(us_json_write_ok(&w), item != NULL);
        if (!us_json_write_ok(&w))
            us_json_write_rewind(&w, &m);
        else
            json_array_append_new(arr, item);
    }
    us_json_write_array_close(&w);
    us_json_write_key_int(&w, "total", 6);
    us_json_write_object_close(&w);
    json_t *all = json_pack("{s:o, s:I}", "data", arr, "total", (json_int_t)6);
    char *want = python_dumps(all);
    assert_string_equal(us_json_write_finish(&w, NULL), want);
    free(want);
    json_decref(all);

    us_json_write_init(&w, pool, 8); /* every item left out: an empty array */
    us_json_write_array_open(&w);
    us_json_write_mark m;
    us_json_write_save(&w, &m);
    us_json_write_string(&w, "\x80");
    us_json_write_rewind(&w, &m);
    us_json_write_array_close(&w);
    assert_string_equal(us_json_write_finish(&w, NULL), "[]");
}

/* A large answer from a tiny hint: the buffer grows and keeps its text. */
static void test_growth(void **state)
{
    (void)state;
    json_t *arr = json_array();
    us_json_writer w;
    us_json_write_init(&w, pool, 1);
    us_json_write_array_open(&w);
    for (int i = 0; i < 20000; i++) {
        const char *s = i % 2 ? "\x01\x02\x03\x04\x05\x06\x07" : "plain text, longer";
        json_array_append_new(arr, json_string(s));
        us_json_write_string(&w, s);
    }
    us_json_write_array_close(&w);
    char *want = python_dumps(arr);
    assert_string_equal(us_json_write_finish(&w, NULL), want);
    free(want);
    json_decref(arr);
}

/* Taken piece by piece (a streamed answer), the pieces join into the text
 * written whole: the commas and nesting carry over each take; a refused
 * string makes take NULL. */
static void test_take_pieces(void **state)
{
    (void)state;
    us_json_writer w;
    us_json_write_init(&w, pool, 1);
    char joined[256] = "";
    apr_size_t len = 0;
    us_json_write_object_open(&w);
    us_json_write_key(&w, "data");
    us_json_write_array_open(&w);
    const char *t = us_json_write_take(&w, &len);
    assert_non_null(t);
    strncat(joined, t, len);
    for (int i = 0; i < 3; i++) {
        us_json_write_object_open(&w);
        us_json_write_key_int(&w, "i", i);
        us_json_write_object_close(&w);
        t = us_json_write_take(&w, &len);
        assert_non_null(t);
        strncat(joined, t, len);
    }
    t = us_json_write_take(&w, &len); /* nothing since */
    assert_non_null(t);
    assert_int_equal(len, 0);
    us_json_write_array_close(&w);
    us_json_write_key_bool(&w, "has_more", 0);
    us_json_write_object_close(&w);
    t = us_json_write_finish(&w, &len);
    assert_non_null(t);
    strncat(joined, t, len);
    assert_string_equal(joined, "{\"data\":[{\"i\":0},{\"i\":1},{\"i\":2}],\"has_more\":false}");

    us_json_write_init(&w, pool, 1);
    us_json_write_array_open(&w);
    us_json_write_string(&w, "\xff");
    assert_null(us_json_write_take(&w, &len));
}

/* Raw JSON text (e.g. a stored object re-dumped by jansson) goes in as it
 * is, with commas around it like any other value. */
static void test_raw_values(void **state)
{
    static const char *const texts[] = { "{}", "{\"a\":[1,2.5,null],\"b\":\"Zo\xc3\xab\"}",
                                         "[]", "\"s\"", "-0.0" };
    (void)state;
    json_t *arr = json_array();
    us_json_writer w;
    us_json_write_init(&w, pool, 8);
    us_json_write_object_open(&w);
    us_json_write_key(&w, "data");
    us_json_write_array_open(&w);
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        json_error_t e;
        json_t *v = json_loads(texts[i], JSON_DECODE_ANY, &e);
        assert_non_null(v);
        json_array_append_new(arr, json_pack("{s:s, s:o, s:I}", "name", "x", "meta", v,
                                             "size", (json_int_t)i));
        us_json_write_object_open(&w);
        us_json_write_key_string(&w, "name", "x");
        us_json_write_key(&w, "meta");
        us_json_write_raw(&w, texts[i], strlen(texts[i]));
        us_json_write_key_int(&w, "size", (long long)i);
        us_json_write_object_close(&w);
        us_json_write_raw(&w, texts[i], strlen(texts[i])); /* as an array element */
        json_array_append(arr, v);
    }
    us_json_write_array_close(&w);
    us_json_write_object_close(&w);
    json_t *all = json_pack("{s:o}", "data", arr);
    char *want = python_dumps(all);
    assert_string_equal(us_json_write_finish(&w, NULL), want);
    free(want);
    json_decref(all);

    us_json_write_init(&w, pool, 0); /* nothing, or NULL, is no value */
    us_json_write_array_open(&w);
    us_json_write_raw(&w, "", 0);
    us_json_write_array_close(&w);
    assert_null(us_json_write_finish(&w, NULL));
    us_json_write_init(&w, pool, 0);
    us_json_write_raw(&w, NULL, 3);
    assert_null(us_json_write_finish(&w, NULL));
    us_json_write_init(&w, pool, 0); /* a raw value without a key in an object */
    us_json_write_object_open(&w);
    us_json_write_raw(&w, "1", 1);
    us_json_write_object_close(&w);
    assert_null(us_json_write_finish(&w, NULL));
}

static void test_utf8_valid(void **state)
{
    (void)state;
    assert_true(us_utf8_valid(""));
    assert_true(us_utf8_valid("Ada"));
    assert_true(us_utf8_valid("Zo\xc3\xab"));
    assert_true(us_utf8_valid("\xf0\x9f\x98\x80 \xe4\xb8\xad"));
    assert_false(us_utf8_valid(NULL));
    assert_false(us_utf8_valid("Zo\xeb"));          /* Latin-1 */
    assert_false(us_utf8_valid("M\xfcller"));       /* Latin-1 */
    assert_false(us_utf8_valid("\xc3"));            /* cut short */
    assert_false(us_utf8_valid("\xc0\xaf"));        /* overlong */
    assert_false(us_utf8_valid("\xed\xa0\x80"));    /* surrogate */
    assert_false(us_utf8_valid("\xf4\x90\x80\x80")); /* beyond U+10FFFF */
}

/* A pool-owned jansson value loses the pool's reference with the pool. */
static void test_pool_owns_json(void **state)
{
    apr_pool_t *sub = NULL;
    (void)state;
    assert_int_equal(apr_pool_create(&sub, pool), APR_SUCCESS);
    json_t *j = json_array();
    json_incref(j); /* the test's own reference, to watch the count */
    assert_ptr_equal(us_json_pool_own(sub, j), j);
    assert_null(us_json_pool_own(sub, NULL));
    assert_int_equal(j->refcount, 2);
    apr_pool_clear(sub);
    assert_int_equal(j->refcount, 1);
    apr_pool_destroy(sub);
    assert_int_equal(j->refcount, 1);
    json_decref(j);
}

/* null as Python reads it; anything else is not. Metadata of more values
 * than a capped request body may hold is still an object. */
static void test_text_is_null(void **state)
{
    (void)state;
    assert_true(us_json_text_is_null("null", 4));
    assert_true(us_json_text_is_null(" \r\n\tnull\n", 9));
    assert_true(us_json_text_is_null("\xef\xbb\xbfnull", 7));
    assert_false(us_json_text_is_null("NULL", 4));
    assert_false(us_json_text_is_null("nul", 3));
    assert_false(us_json_text_is_null("null x", 6));
    assert_false(us_json_text_is_null("{}", 2));
    assert_false(us_json_text_is_null("[null]", 6));
    assert_false(us_json_text_is_null("", 0));
    /* {"k":[0,...,0]} of more values than US_BODY_MAX_VALUES */
    size_t k = US_BODY_MAX_VALUES, n = 6 + 2 * k + 1;
    char *many = malloc(n);
    assert_non_null(many);
    memcpy(many, "{\"k\":[", 6);
    for (size_t i = 0; i < k; i++) {
        many[6 + 2 * i] = '0';
        many[7 + 2 * i] = i + 1 < k ? ',' : ']';
    }
    many[n - 1] = '}';
    assert_false(us_json_text_is_null(many, n));
    const char *text = us_json_object_text(pool, many, n);
    assert_non_null(text);
    assert_int_equal(strlen(text), n);
    free(many);
}

/* Metadata holding U+0000 anywhere (a value, a key, nested, in an array)
 * is told apart from text that is no object; an escaped backslash before
 * "u0000" is no NUL. */
static void test_meta_text_refuses_nul(void **state)
{
    static const struct {
        const char *text;
        us_json_meta_rc rc;
    } CASES[] = {
        { "{\"k\":\"a\\u0000b\"}", US_JSON_META_NUL },
        { "{\"a\\u0000\":1}", US_JSON_META_NUL },
        { "{\"a\":{\"b\":[1,\"\\u0000\"]}}", US_JSON_META_NUL },
        { "{\"k\":\"a\\\\u0000b\"}", US_JSON_META_OK },
        { "{\"k\":\"a\\u0001b\"}", US_JSON_META_OK },
        { "[\"\\u0000\"]", US_JSON_META_NOT_OBJECT },
        { "{\"k\":", US_JSON_META_NOT_OBJECT },
    };
    (void)state;
    for (size_t i = 0; i < sizeof(CASES) / sizeof(CASES[0]); i++) {
        char *out = (char *)"unset";
        us_json_meta_rc rc = us_json_meta_text(pool, CASES[i].text, strlen(CASES[i].text), &out);
        if (rc != CASES[i].rc)
            fail_msg("%s: %d, wanted %d", CASES[i].text, rc, CASES[i].rc);
        if ((rc == US_JSON_META_OK) != (out != NULL))
            fail_msg("%s: text %s", CASES[i].text, out ? out : "(null)");
        assert_true(us_json_object_text(pool, CASES[i].text, strlen(CASES[i].text)) == NULL ||
                    rc == US_JSON_META_OK);
    }
}

/* RFC 7396's appendix A examples, and the arguments stay as they were. */
static void test_merge_patch_rfc7396(void **state)
{
    static const char *const CASES[][3] = {
        { "{\"a\":\"b\"}", "{\"a\":\"c\"}", "{\"a\":\"c\"}" },
        { "{\"a\":\"b\"}", "{\"b\":\"c\"}", "{\"a\":\"b\",\"b\":\"c\"}" },
        { "{\"a\":\"b\"}", "{\"a\":null}", "{}" },
        { "{\"a\":\"b\",\"b\":\"c\"}", "{\"a\":null}", "{\"b\":\"c\"}" },
        { "{\"a\":[\"b\"]}", "{\"a\":\"c\"}", "{\"a\":\"c\"}" },
        { "{\"a\":\"c\"}", "{\"a\":[\"b\"]}", "{\"a\":[\"b\"]}" },
        { "{\"a\":{\"b\":\"c\"}}", "{\"a\":{\"b\":\"d\",\"c\":null}}", "{\"a\":{\"b\":\"d\"}}" },
        { "{\"a\":[{\"b\":\"c\"}]}", "{\"a\":[1]}", "{\"a\":[1]}" },
        { "[\"a\",\"b\"]", "[\"c\",\"d\"]", "[\"c\",\"d\"]" },
        { "{\"a\":\"b\"}", "[\"c\"]", "[\"c\"]" },
        { "{\"a\":\"foo\"}", "null", "null" },
        { "{\"e\":null}", "{\"a\":1}", "{\"e\":null,\"a\":1}" },
        { "[1,2]", "{\"a\":\"b\",\"c\":null}", "{\"a\":\"b\"}" },
        { "{}", "{\"a\":{\"bb\":{\"ccc\":null}}}", "{\"a\":{\"bb\":{}}}" },
    };
    (void)state;
    for (size_t i = 0; i < sizeof(CASES) / sizeof(CASES[0]); i++) {
        json_error_t e;
        json_t *target = json_loads(CASES[i][0], JSON_DECODE_ANY, &e);
        json_t *patch = json_loads(CASES[i][1], JSON_DECODE_ANY, &e);
        json_t *want = json_loads(CASES[i][2], JSON_DECODE_ANY, &e);
        json_t *before = json_deep_copy(target), *got = us_json_merge_patch(target, patch);
        if (!json_equal(got, want))
            fail_msg("case %zu: %s", i, json_dumps(got, JSON_ENCODE_ANY));
        assert_true(json_equal(target, before));
        json_decref(target);
        json_decref(patch);
        json_decref(want);
        json_decref(before);
        json_decref(got);
    }
    json_t *patch = json_pack("{s:i}", "a", 1), *got = us_json_merge_patch(NULL, patch);
    assert_int_equal(json_integer_value(json_object_get(got, "a")), 1);
    json_decref(patch);
    json_decref(got);
}

/* A jansson value written whole, as Python's json.dumps writes what
 * json.loads read: floats by repr(), NULs in keys and strings escaped,
 * nesting as deep as the parser takes. */
static void test_json_values_as_python(void **state)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        { "{\"a\": 1.10, \"b\": [0.3, 1e16, -0.0, 2.0, 1e-5, 0.1e1, 12345678901234567890123]}",
          "{\"a\":1.1,\"b\":[0.3,1e+16,-0.0,2.0,1e-05,1.0,1.2345678901234568e+22]}" },
        { "{\"c\": \"x\\u0000y\\u001f\", \"d\\u0000e\": null, \"t\": [true, false]}",
          "{\"c\":\"x\\u0000y\\u001f\",\"d\\u0000e\":null,\"t\":[true,false]}" },
        { "[-9223372036854775808, 9223372036854775807, {}, [], \"\"]",
          "[-9223372036854775808,9223372036854775807,{},[],\"\"]" },
        { "{\"z\": 1, \"a\": 2, \"z\": 3}", "{\"z\":3,\"a\":2}" },
        { "7.0", "7.0" },
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *j = NULL;
        us_python_json_error e;
        assert_int_equal(us_python_json_parse(cases[i].in, strlen(cases[i].in), &j, &e),
                         US_PYTHON_JSON_OK);
        const char *got = us_json_dump_pool(pool, j);
        if (!got || strcmp(got, cases[i].out) != 0)
            fail_msg("case %zu: %s, Python %s", i, got ? got : "(refused)", cases[i].out);
        json_decref(j);
    }

    /* the parser's deepest nesting, inside a writer's own object */
    static char deep[2 * US_PYTHON_JSON_MAX_DEPTH + 1];
    for (int k = 0; k < US_PYTHON_JSON_MAX_DEPTH; k++) {
        deep[k] = '[';
        deep[2 * US_PYTHON_JSON_MAX_DEPTH - 1 - k] = ']';
    }
    json_t *j = NULL;
    us_python_json_error e;
    assert_int_equal(us_python_json_parse(deep, strlen(deep), &j, &e), US_PYTHON_JSON_OK);
    us_json_writer w;
    us_json_write_init(&w, pool, 16);
    us_json_write_object_open(&w);
    us_json_write_key(&w, "meta");
    us_json_write_json(&w, j);
    us_json_write_key(&w, "x");
    us_json_write_real(&w, 0.5);
    us_json_write_object_close(&w);
    const char *text = us_json_write_finish(&w, NULL);
    assert_non_null(text);
    assert_string_equal(text, apr_pstrcat(pool, "{\"meta\":", deep, ",\"x\":0.5}", NULL));
    json_decref(j);

    /* no JSON for NaN or an infinity */
    us_json_write_init(&w, pool, 16);
    us_json_write_real(&w, NAN);
    assert_false(us_json_write_ok(&w));
    us_json_write_init(&w, pool, 16);
    us_json_write_json(&w, NULL);
    assert_false(us_json_write_ok(&w));
}

/* Stored metadata is the text Python would write for it. */
static void test_meta_text_writes_floats_as_python(void **state)
{
    static const char in[] = "{\"score\": 0.30, \"n\": 3, \"x\": 1.1, \"big\": 1e16}";
    char *out = NULL;
    (void)state;
    assert_int_equal(us_json_meta_text(pool, in, strlen(in), &out), US_JSON_META_OK);
    assert_string_equal(out, "{\"score\":0.3,\"n\":3,\"x\":1.1,\"big\":1e+16}");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_ascii_character),
        cmocka_unit_test(test_merge_patch_rfc7396),
        cmocka_unit_test(test_text_is_null),
        cmocka_unit_test(test_every_control_pair),
        cmocka_unit_test(test_every_byte_in_every_lane),
        cmocka_unit_test(test_utf8_passes_through),
        cmocka_unit_test(test_invalid_utf8_refused),
        cmocka_unit_test(test_random_strings_agree),
        cmocka_unit_test(test_random_valid_utf8),
        cmocka_unit_test(test_integers),
        cmocka_unit_test(test_structure_matches_json_pack),
        cmocka_unit_test(test_misuse_fails),
        cmocka_unit_test(test_rewind_leaves_item_out),
        cmocka_unit_test(test_growth),
        cmocka_unit_test(test_take_pieces),
        cmocka_unit_test(test_raw_values),
        cmocka_unit_test(test_utf8_valid),
        cmocka_unit_test(test_pool_owns_json),
        cmocka_unit_test(test_meta_text_refuses_nul),
        cmocka_unit_test(test_json_values_as_python),
        cmocka_unit_test(test_meta_text_writes_floats_as_python),
    };
    return fixture_run("us_json_writer", tests, NULL, NULL);
}

/* Unit tests: upload file names never leave the session's storage. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include "fixture.h"
#include <string.h>

#include <apr_general.h>
#include "us_filename.h"

#define KEY_MAX 1024


static void test_valid_names(void **state)
{
    static const char *const ok[] = {
        "a.txt", "a b.txt", ".hidden", "...", "a..b", "x.meta.json", "caf\xc3\xa9.pdf",
        "\xf0\x9f\x98\x80.txt", "'; DROP TABLE x;--", "%2e%2e%2f", "a:b", NULL
    };
    (void)state;
    for (int i = 0; ok[i]; i++)
        if (us_filename_problem(ok[i]))
            fail_msg("'%s' refused: %s", ok[i], us_filename_problem(ok[i]));
    char max[1025];
    memset(max, 'a', 1024);
    max[1024] = '\0';
    assert_null(us_filename_problem(max));
}

static void test_hostile_names(void **state)
{
    static const char *const bad[] = {
        "", ".", "..", "../x", "/etc/passwd", "a/b", "a\\b", "..\\x", "a\nb", "a\rb",
        "tab\there", "\x7f", "\x1b[31m", "\xff\xfe", "\xc0\xaf", "\xed\xa0\x80",
        "\xe2\x82", "\xf4\x90\x80\x80", NULL
    };
    (void)state;
    for (int i = 0; bad[i]; i++)
        if (!us_filename_problem(bad[i]))
            fail_msg("hostile name #%d accepted", i);
    char big[4001];
    memset(big, 'a', 4000);
    big[4000] = '\0';
    assert_non_null(us_filename_problem(big));
    big[1025] = '\0';
    assert_non_null(us_filename_problem(big));
}

static void test_from_part(void **state)
{
    (void)state;
    assert_null(us_filename_from_part(pool, NULL, NULL));
    assert_string_equal(us_filename_from_part(pool, "a.txt", NULL), "a.txt");
    /* aiohttp (the official SDK) percent-quotes the filename */
    assert_string_equal(us_filename_from_part(pool, "my%20file.txt", NULL), "my file.txt");
    assert_string_equal(us_filename_from_part(pool, "caf%C3%A9", NULL), "caf\xc3\xa9");
    /* filename* wins */
    assert_string_equal(us_filename_from_part(pool, "x", "real name"), "real name");
    /* decoding happens once; where it makes a name no file may have, the
     * name as sent is kept when it is one ("folder/a.txt" quoted by aiohttp) */
    assert_string_equal(us_filename_from_part(pool, "folder%2Fa.txt", NULL), "folder%2Fa.txt");
    assert_string_equal(us_filename_from_part(pool, "..%2Fx", NULL), "..%2Fx");
    assert_string_equal(us_filename_from_part(pool, "a%7Fb", NULL), "a%7Fb");
    assert_string_equal(us_filename_from_part(pool, "a%FFb", NULL), "a%FFb");
    assert_string_equal(us_filename_from_part(pool, "%2E%2E", NULL), "%2E%2E");
    /* neither valid: the decoded one, whose problem the caller reports */
    assert_string_equal(us_filename_from_part(pool, "a/%2F", NULL), "a//");
    assert_string_equal(us_filename_from_part(pool, "..", NULL), "..");
    /* %00 stays literal instead of cutting the string */
    assert_string_equal(us_filename_from_part(pool, "a%00b", NULL), "a%00b");
    /* malformed escapes stay */
    assert_string_equal(us_filename_from_part(pool, "100%", NULL), "100%");
    assert_string_equal(us_filename_from_part(pool, "a%zzb%4", NULL), "a%zzb%4");
}

static void test_substitute(void **state)
{
    (void)state;
    assert_string_equal(us_key_substitute(pool, "ws/s/${filename}", "a.txt", KEY_MAX), "ws/s/a.txt");
    assert_string_equal(us_key_substitute(pool, "ws/s/fixed", "a.txt", KEY_MAX), "ws/s/fixed");
    assert_string_equal(us_key_substitute(pool, "${filename}/${filename}", "a", KEY_MAX), "a/a");
    assert_string_equal(us_key_substitute(pool, "", "a", KEY_MAX), "");
    assert_string_equal(us_key_substitute(pool, "${filename", "a", KEY_MAX), "${filename");
    assert_string_equal(us_key_substitute(pool, "$${filename}}", "a", KEY_MAX), "$a}");
    /* a filename containing the variable is not expanded again */
    assert_string_equal(us_key_substitute(pool, "p/${filename}", "${filename}", KEY_MAX),
                        "p/${filename}");
}

static void test_substitute_bound(void **state)
{
    (void)state;
    /* exactly at the limit, and one byte over */
    assert_string_equal(us_key_substitute(pool, "ab${filename}", "cd", 4), "abcd");
    assert_null(us_key_substitute(pool, "ab${filename}", "cde", 4));
    assert_null(us_key_substitute(pool, "abcde", "x", 4));
    assert_null(us_key_substitute(pool, "${filename}${filename}x", "ab", 4));

    /* 300 variables and a 10,000-byte name: refused, having allocated nothing */
    char *key = apr_palloc(pool, 300 * 11 + 1), *name = apr_palloc(pool, 10001);
    for (int i = 0; i < 300; i++)
        memcpy(key + 11 * i, "${filename}", 11);
    key[300 * 11] = '\0';
    memset(name, 'n', 10000);
    name[10000] = '\0';
    apr_pool_t *sub;
    apr_pool_create(&sub, pool);
    assert_null(us_key_substitute(sub, key, name, KEY_MAX));
    /* and with a short name the result is exact */
    const char *out = us_key_substitute(sub, key, "ab", KEY_MAX);
    assert_int_equal(strlen(out), 600);
    for (int i = 0; i < 600; i++)
        assert_int_equal(out[i], "ab"[i % 2]);
    apr_pool_destroy(sub);
}

static void test_meta(void **state)
{
    (void)state;
    assert_true(us_filename_is_meta("a.txt.meta.json"));
    assert_true(us_filename_is_meta("x.meta.json"));
    assert_false(us_filename_is_meta(".meta.json"));
    assert_true(us_filename_is_text("notes.TXT"));
    assert_true(us_filename_is_text("a.b.md"));
    assert_false(us_filename_is_text("report.pdf"));
    assert_false(us_filename_is_text("txt"));
    assert_false(us_filename_is_meta("a.meta.json.txt"));
    assert_false(us_filename_is_meta("a.json"));
}

static void test_rfc5987(void **state)
{
    (void)state;
    assert_string_equal(us_rfc5987_encode(pool, "a.txt"), "a.txt");
    assert_string_equal(us_rfc5987_encode(pool, "a b;c=d'e\"f,g(h)*"),
                        "a%20b%3Bc%3Dd%27e%22f%2Cg%28h%29%2A");
    assert_string_equal(us_rfc5987_encode(pool, "caf\xc3\xa9"), "caf%C3%A9");
    assert_string_equal(us_rfc5987_encode(pool, "!#$&+-.^_`|~"), "!#$&+-.^_`|~");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_names),
        cmocka_unit_test(test_hostile_names),
        cmocka_unit_test(test_from_part),
        cmocka_unit_test(test_substitute),
        cmocka_unit_test(test_substitute_bound),
        cmocka_unit_test(test_meta),
        cmocka_unit_test(test_rfc5987),
    };
    return fixture_run("us_filename", tests, NULL, NULL);
}

/* Unit tests: key file parsing, lookup, grants, bearer header. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include "fixture.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <apr_lib.h>

#include <apr_general.h>
#include <apr_strings.h>
#include "us_auth.h"


#define UID "0b2c6f6e-5d4e-4a8a-9a39-1c7f4d9f7e21"

static void test_line_roundtrip_and_lookup(void **state)
{
    char err[256];
    us_keyring *kr;
    (void)state;
    char *text = apr_pstrcat(pool,
        "# comment\n\n",
        us_key_line(pool, "key-one", UID, "Ada", "Lovelace", "*"),
        "   \n",
        us_key_line(pool, "key-two", "0B2C6F6E5D4E4A8A9A391C7F4D9F7E22", "Alan", "Turing", "ws-a,ws_b"),
        NULL);
    assert_true(us_keyring_parse(pool, text, strlen(text), &kr, err, sizeof(err)));
    assert_int_equal(kr->keys->nelts, 2);

    const us_key *k = us_keyring_lookup(kr, "key-one");
    assert_non_null(k);
    assert_string_equal(k->user_id, UID);
    assert_string_equal(k->given_name, "Ada");
    assert_true(us_key_grants(k, "anything"));

    k = us_keyring_lookup(kr, "key-two");
    assert_non_null(k);
    /* user ids are canonicalised */
    assert_string_equal(k->user_id, "0b2c6f6e-5d4e-4a8a-9a39-1c7f4d9f7e22");
    assert_true(us_key_grants(k, "ws-a"));
    assert_true(us_key_grants(k, "ws_b"));
    assert_false(us_key_grants(k, "ws"));
    assert_false(us_key_grants(k, "ws-a,ws_b"));

    assert_null(us_keyring_lookup(kr, "key-three"));
    assert_null(us_keyring_lookup(kr, ""));
    assert_null(us_keyring_lookup(kr, "key-one "));
    assert_null(us_keyring_lookup(NULL, "key-one"));
}

static void expect_error(const char *text, const char *fragment)
{
    char err[256] = "";
    us_keyring *kr;
    assert_false(us_keyring_parse(pool, text, strlen(text), &kr, err, sizeof(err)));
    if (!strstr(err, fragment))
        fail_msg("error '%s' lacks '%s'", err, fragment);
}

static void test_malformed_lines(void **state)
{
    const char *hash = "5f2b2a3e7e5c6f1d2e3c4b5a69788796a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0";
    (void)state;
    expect_error("nonsense\n", "line 1: expected 5 fields");
    expect_error(apr_psprintf(pool, "#c\n%s:%s:A:B\n", hash, UID), "line 2: expected 5 fields");
    expect_error(apr_psprintf(pool, "xyz:%s:A:B:*\n", UID), "line 1: field 1");
    expect_error(apr_psprintf(pool, "%s:not-a-uuid:A:B:*\n", hash), "field 2");
    expect_error(apr_psprintf(pool, "%s:%s::B:*\n", hash, UID), "given_name");
    expect_error(apr_psprintf(pool, "%s:%s:A:B:\n", hash, UID), "field 5");
    expect_error(apr_psprintf(pool, "%s:%s:A:B:ws,-bad\n", hash, UID), "field 5");
    expect_error(apr_psprintf(pool, "%s:%s:A:B:ws,,x\n", hash, UID), "field 5");
    /* a colon in the grants is a sixth field in disguise */
    expect_error(apr_psprintf(pool, "%s:%s:A:B:ws:x\n", hash, UID), "or 8 (");
}

static void test_crlf_and_empty(void **state)
{
    char err[256];
    us_keyring *kr;
    (void)state;
    assert_true(us_keyring_parse(pool, "", 0, &kr, err, sizeof(err)));
    assert_int_equal(kr->keys->nelts, 0);
    char *line = us_key_line(pool, "k", UID, "A", "B", "w1");
    line[strlen(line) - 1] = '\r';
    char *text = apr_pstrcat(pool, line, "\n", NULL);
    assert_true(us_keyring_parse(pool, text, strlen(text), &kr, err, sizeof(err)));
    assert_non_null(us_keyring_lookup(kr, "k"));
    assert_true(us_key_grants(us_keyring_lookup(kr, "k"), "w1"));
}

static void test_load_missing_file(void **state)
{
    char err[256];
    us_keyring *kr;
    (void)state;
    assert_false(us_keyring_load(pool, "/nonexistent/keys", &kr, err, sizeof(err)));
    assert_non_null(strstr(err, "/nonexistent/keys"));
}

static void test_field_valid(void **state)
{
    (void)state;
    assert_true(us_key_field_valid("Ada Lovelace-Byron"));
    assert_true(us_key_field_valid("Zo\xc3\xab"));
    assert_false(us_key_field_valid(""));
    assert_false(us_key_field_valid(NULL));
    assert_false(us_key_field_valid("a:b"));
    assert_false(us_key_field_valid("a\nb"));
    assert_false(us_key_field_valid("a\tb"));
    assert_false(us_key_field_valid("Zo\xeb"));      /* Latin-1 */
    assert_false(us_key_field_valid("\xc3"));        /* cut short */
    assert_false(us_key_field_valid("\xed\xa0\x80")); /* a surrogate */
}

/* Names that are not UTF-8 (a key file saved as Latin-1) are refused when
 * the file is read, naming the line and the field: the answers that carry
 * them as JSON could not be written later. */
static void test_names_not_utf8(void **state)
{
    const char *hash = "5f2b2a3e7e5c6f1d2e3c4b5a69788796a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0";
    char err[256];
    us_keyring *kr;
    (void)state;
    expect_error(apr_psprintf(pool, "%s:%s:Zo\xeb:B:*\n", hash, UID),
                 "line 1: field 3 (given_name) is not valid UTF-8");
    expect_error(apr_psprintf(pool, "# keys\n\n%s:%s:Ada:M\xfcller:ws\n", hash, UID),
                 "line 3: field 4 (family_name) is not valid UTF-8");
    expect_error(apr_psprintf(pool, "%s:%s:A:B:*\n%s:%s:\xc3:B:*\n", hash, UID, hash, UID),
                 "line 2: field 3 (given_name) is not valid UTF-8");
    expect_error(apr_psprintf(pool, "%s:%s:A:\xed\xa0\x80:*\n", hash, UID),
                 "line 1: field 4 (family_name) is not valid UTF-8");
    /* UTF-8 names of every length are fine, and come back as they are */
    const char *text = apr_psprintf(pool, "%s:%s:Zo\xc3\xab:\xe4\xb8\xad\xf0\x9f\x98\x80:*\n",
                                    hash, UID);
    assert_true(us_keyring_parse(pool, text, strlen(text), &kr, err, sizeof(err)));
    assert_string_equal(APR_ARRAY_IDX(kr->keys, 0, us_key).given_name, "Zo\xc3\xab");
    assert_string_equal(APR_ARRAY_IDX(kr->keys, 0, us_key).family_name,
                        "\xe4\xb8\xad\xf0\x9f\x98\x80");
}

/* Reading a file: the message names the line and the field (httpd prints
 * it at startup after "UploadSessionKeyFile <path>: "). */
static void test_load_names_the_line(void **state)
{
    char err[256];
    char *path = apr_pstrdup(pool, fixture_path("keys-XXXXXX"));
    us_keyring *kr;
    (void)state;
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *text = apr_psprintf(pool, "# c\n%s",
                                    us_key_line(pool, "k", UID, "Ren\xe9", "B", "*"));
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    assert_false(us_keyring_load(pool, path, &kr, err, sizeof(err)));
    unlink(path);
    assert_string_equal(err, "line 2: field 3 (given_name) is not valid UTF-8 "
                             "(Latin-1? save the key file as UTF-8)");
}

static void test_bearer(void **state)
{
    (void)state;
    assert_null(us_bearer_token(pool, NULL));
    assert_null(us_bearer_token(pool, ""));
    assert_null(us_bearer_token(pool, "Bearer"));
    assert_null(us_bearer_token(pool, "Bearer "));
    assert_null(us_bearer_token(pool, "Basic dXNlcjpwYXNz"));
    assert_null(us_bearer_token(pool, "Bearerabc"));
    assert_string_equal(us_bearer_token(pool, "Bearer abc"), "abc");
    assert_string_equal(us_bearer_token(pool, "bearer  abc "), "abc");
    assert_string_equal(us_bearer_token(pool, "BEARER\tabc"), "abc");
}

static void test_sha256(void **state)
{
    unsigned char d[US_SHA256_LEN];
    char hex[65];
    (void)state;
    us_sha256("abc", 3, d);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", d[i]);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void test_full_line_fields(void **state)
{
    char err[256];
    us_keyring *kr;
    apr_time_t created, expires;
    (void)state;
    assert_true(us_key_time_parse("20261203T063854Z", &created));
    assert_true(us_key_time_parse("20270102T000000Z", &expires));
    char *text = apr_pstrcat(pool,
        us_key_line_full(pool, "k1", UID, "Ada", "Lovelace", "a,b", "laptop \xc3\xa9", created,
                         expires),
        us_key_line_full(pool, "k2", UID, "Alan", "Turing", "*", "", 0, 0),
        us_key_line(pool, "k3", UID, "Old", "Format", "*"), NULL);
    assert_true(us_keyring_parse(pool, text, strlen(text), &kr, err, sizeof(err)));
    assert_int_equal(kr->keys->nelts, 3);
    const us_key *k = us_keyring_lookup(kr, "k1");
    assert_string_equal(k->label, "laptop \xc3\xa9");
    assert_true(k->created == created);
    assert_true(k->expires == expires);
    assert_int_equal(strlen(k->id), US_KEY_ID_LEN);
    assert_true(strncmp(text, k->id, US_KEY_ID_LEN) == 0);
    assert_false(us_key_expired(k, expires - 1));
    assert_true(us_key_expired(k, expires));
    k = us_keyring_lookup(kr, "k2");
    assert_string_equal(k->label, "");
    assert_true(k->created == 0 && k->expires == 0);
    assert_false(us_key_expired(k, apr_time_now()));
    k = us_keyring_lookup(kr, "k3");
    assert_string_equal(k->label, "");
    assert_false(us_key_expired(k, apr_time_now()));
    /* the line of the full format with empty times */
    assert_non_null(strstr(text, ":Alan:Turing:*:::\n"));
}

static void test_full_line_malformed(void **state)
{
    char err[256];
    us_keyring *kr;
    (void)state;
    const char *base = us_key_line(pool, "k", UID, "Ada", "Lovelace", "*");
    size_t n = strlen(base) - 1; /* without the newline */
    const char *bad[] = { ":label", ":label:", ":label::x", ":l:20261301T000000Z:",
                          ":l::2026-01-01", ":l:::extra", ":a\tb::" };
    const char *want[] = { "expected 5 fields", "expected 5 fields", "field 8 (expires)",
                           "field 7 (created)", "field 8 (expires)", "expected 5 fields",
                           "field 6 (label)" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *line = apr_pstrcat(pool, apr_pstrmemdup(pool, base, n), bad[i], "\n", NULL);
        assert_false(us_keyring_parse(pool, line, strlen(line), &kr, err, sizeof(err)));
        if (!strstr(err, want[i]))
            fail_msg("%s: %s", bad[i], err);
        assert_non_null(strstr(err, "line 1"));
    }
}

static void test_time_roundtrip(void **state)
{
    apr_time_t t;
    char out[17];
    (void)state;
    assert_true(us_key_time_parse("19700101T000001Z", &t));
    assert_true(t == apr_time_from_sec(1));
    us_key_time_format(apr_time_from_sec(1764743934), out);
    assert_string_equal(out, "20251203T063854Z");
    assert_true(us_key_time_parse(out, &t));
    assert_true(t == apr_time_from_sec(1764743934));
    assert_false(us_key_time_parse("20251203T063854", &t));
    assert_false(us_key_time_parse("2025-12-03T06:38:54Z", &t));
    assert_false(us_key_time_parse("20251203X063854Z", &t));
    assert_false(us_key_time_parse("2025120aT063854Z", &t));
    /* a day the month has not is refused, not rolled into the next month */
    assert_false(us_key_time_parse("20270231T000000Z", &t));
    assert_false(us_key_time_parse("20270431T000000Z", &t));
    assert_false(us_key_time_parse("20270229T000000Z", &t));
    assert_false(us_key_time_parse("21000229T000000Z", &t));
    assert_true(us_key_time_parse("20280229T000000Z", &t));
    us_key_time_format(t, out);
    assert_string_equal(out, "20280229T000000Z");
    assert_true(us_key_time_parse("20000229T235959Z", &t));
    assert_true(us_key_time_parse("20271231T235959Z", &t));
}

/* One key on two lines: refused, naming both lines (the lookup would
 * answer for the last one only). */
static void test_duplicate_key_refused(void **state)
{
    char err[256];
    us_keyring *kr;
    (void)state;
    const char *a = us_key_line(pool, "same-key", UID, "A", "A", "ws-a");
    const char *b = us_key_line(pool, "other-key", UID, "B", "B", "*");
    const char *a2 = us_key_line(pool, "same-key", "22222222-2222-4222-8222-222222222222", "C",
                                 "C", "*");
    char *text = apr_pstrcat(pool, a, "# c\n", b, a2, NULL);
    assert_false(us_keyring_parse(pool, text, strlen(text), &kr, err, sizeof(err)));
    assert_string_equal(err, "line 4: the key of line 1 is listed again");
    text = apr_pstrcat(pool, a, "# c\n", b, NULL);
    assert_true(us_keyring_parse(pool, text, strlen(text), &kr, err, sizeof(err)));
    assert_int_equal(kr->keys->nelts, 2);
}

static void test_keyfile_without(void **state)
{
    int removed;
    char err[256];
    us_keyring *kr;
    (void)state;
    const char *a = us_key_line_full(pool, "ka", UID, "A", "A", "*", "laptop", 0, 0);
    const char *b = us_key_line_full(pool, "kb", UID, "B", "B", "*", "ci", 0, 0);
    const char *c = us_key_line(pool, "kc", UID, "C", "C", "*");
    char *text = apr_pstrcat(pool, "# keep me\n\n", a, "  # indented comment\n", b, c, NULL);
    assert_true(us_keyring_parse(pool, text, strlen(text), &kr, err, sizeof(err)));
    char idb[US_KEY_ID_LEN + 1], idc[US_KEY_ID_LEN + 1];
    apr_cpystrn(idb, b, sizeof(idb));
    apr_cpystrn(idc, c, sizeof(idc));

    char *out = us_keyfile_without(pool, text, strlen(text), "laptop", &removed);
    assert_int_equal(removed, 1);
    assert_string_equal(out, apr_pstrcat(pool, "# keep me\n\n  # indented comment\n", b, c, NULL));
    out = us_keyfile_without(pool, out, strlen(out), idc, &removed);
    assert_int_equal(removed, 1);
    assert_string_equal(out, apr_pstrcat(pool, "# keep me\n\n  # indented comment\n", b, NULL));
    /* an id in upper case is the same id; a last line without newline */
    for (char *u = idb; *u; u++)
        *u = (char)apr_toupper(*u);
    char *last = apr_pstrmemdup(pool, b, strlen(b) - 1);
    out = us_keyfile_without(pool, last, strlen(last), idb, &removed);
    assert_int_equal(removed, 1);
    assert_string_equal(out, "");
    out = us_keyfile_without(pool, text, strlen(text), "nobody", &removed);
    assert_int_equal(removed, 0);
    assert_string_equal(out, text);
}

static void test_keyfile_replace_keeps_mode(void **state)
{
    struct stat st;
    (void)state;
    const char *path = fixture_path("keys-replace");
    assert_int_equal(us_keyfile_replace(path, "a\n", 2), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(chmod(path, 0640), 0);
    ino_t before = st.st_ino;
    assert_int_equal(us_keyfile_replace(path, "bb\n", 3), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0640);
    assert_true(st.st_ino != before); /* replaced, not rewritten in place */
    assert_int_equal(st.st_size, 3);
    FILE *f = fopen(path, "r");
    char buf[8] = "";
    assert_non_null(fgets(buf, sizeof(buf), f));
    fclose(f);
    assert_string_equal(buf, "bb\n");
    /* no temporary file left beside it */
    assert_int_equal(us_keyfile_replace(apr_pstrcat(pool, path, "-missing-dir/x", NULL), "a", 1), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_line_roundtrip_and_lookup),
        cmocka_unit_test(test_malformed_lines),
        cmocka_unit_test(test_crlf_and_empty),
        cmocka_unit_test(test_load_missing_file),
        cmocka_unit_test(test_field_valid),
        cmocka_unit_test(test_names_not_utf8),
        cmocka_unit_test(test_load_names_the_line),
        cmocka_unit_test(test_bearer),
        cmocka_unit_test(test_sha256),
        cmocka_unit_test(test_full_line_fields),
        cmocka_unit_test(test_full_line_malformed),
        cmocka_unit_test(test_time_roundtrip),
        cmocka_unit_test(test_duplicate_key_refused),
        cmocka_unit_test(test_keyfile_without),
        cmocka_unit_test(test_keyfile_replace_keeps_mode),
    };
    return fixture_run("us_auth", tests, NULL, NULL);
}

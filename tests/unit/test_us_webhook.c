/* Unit tests: webhook URLs, secret file, signature (checked against
 * OpenSSL's HMAC() over "<ts>.<body>"), retry schedule, delivery ids,
 * paging and the event JSON (parsed back with jansson). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include "fixture.h"
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include "us_store.h"
#include "us_webhook.h"

static void test_url_check(void **state)
{
    (void)state;
    assert_null(us_webhook_url_check(pool, "http://127.0.0.1:8099/hook"));
    assert_null(us_webhook_url_check(pool, "https://hooks.example.com/a/b?x=1"));
    assert_null(us_webhook_url_check(pool, "HTTPS://hooks.example.com"));
    assert_null(us_webhook_url_check(pool, "http://[::1]:9000/"));
    assert_null(us_webhook_url_check(pool, "http://h:1/"));
    assert_null(us_webhook_url_check(pool, "http://h:65535/x"));
    assert_null(us_webhook_url_check(pool, "http://h:00080/x"));
    const char *bad[] = { "", "hooks.example.com/x", "ftp://h/x", "http:///x", "http://",
                          "/relative", "http://h/x#frag", "http://u:p@h/x", "http://h x/",
                          "http://h:0/", "http://h:/x", "mailto:a@b", "http://h:65536/",
                          "http://h:99999/x", "http://h:-1/x", "http://h:+80/x",
                          "http://h:8o/x", "http://h:123456789012345678901/x",
                          "http://h/caf\xe9", "http://h/caf\xc3\xa9", "http://h/\x01",
                          "http://h/\x7f", "http://h\xe9/" };
    const char *non_ascii = us_webhook_url_check(pool, "http://127.0.0.1:9/caf\xe9");
    assert_string_equal(non_ascii, "expects a URL of printable ASCII characters: byte 0xE9 at "
                             "offset 22 must be percent-encoded (%E9)");
    assert_null(us_webhook_url_check(pool, "http://127.0.0.1:9/caf%C3%A9?q=%E9~"));
    /* a reason quotes the URL as shown: its path may hold a receiver's token */
    assert_string_equal(us_webhook_url_check(pool, "http://h:0/s3cret"),
                        "malformed port in 'http://h:0/... #03d35ed3' (a port is 1 to 65535)");
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *why = us_webhook_url_check(pool, bad[i]);
        if (!why)
            fail_msg("accepted '%s'", bad[i]);
    }
}

/* The status pages' and the log's form: scheme, host and port, "/..." for
 * whatever follows but a lone "/", then the fingerprint: the first 8 hex
 * digits of the URL's SHA-256 (each checked with
 * printf '%s' URL | sha256sum | cut -c1-8). */
static void test_url_shown(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        /* Slack's and Discord's secrets are in the path */
        { "https://hooks.slack.com/services/T0001/B0002/XXXXsecretXXXX",
          "https://hooks.slack.com/... #7c79c0df" },
        { "https://discord.com/api/webhooks/123456/tok-en_S3cret",
          "https://discord.com/... #ef4f48a3" },
        { "https://hooks.example.com/a/b?token=s3cret&x=1", "https://hooks.example.com/... #50069759" },
        { "https://hooks.example.com?t=1", "https://hooks.example.com/... #d95bee9a" },
        { "http://h/?q", "http://h/... #dc828fb8" },
        /* no path, or a lone "/": the fingerprint alone tells them apart */
        { "HTTPS://hooks.example.com", "HTTPS://hooks.example.com #7618b70b" },
        { "https://hooks.example.com/", "https://hooks.example.com #ba59c850" },
        { "http://h:81", "http://h:81 #84247ab7" },
        { "http://[::1]:8080/x", "http://[::1]:8080/... #cf37139d" },
        /* user info left out (the configuration refuses it) */
        { "http://u:p@h:81/x?q", "http://h:81/... #5cacff3a" },
        { "http://u@x:p@w@h/x#f", "http://h/... #21137f91" },
        { "http://h/a@b?q=c@d", "http://h/... #ed1a4b04" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *shown = us_webhook_url_shown(pool, cases[i][0]);
        assert_string_equal(shown, cases[i][1]);
        /* shown again, as a stored text, it stays the same */
        assert_string_equal(us_webhook_text_shown(pool, shown), shown);
    }
}

/* Texts stored before URLs were shown so have every URL in them rewritten;
 * texts written since, and texts without URLs, stay as they are. */
static void test_text_shown(void **state)
{
    (void)state;
    assert_null(us_webhook_text_shown(pool, NULL));
    const char *none = "HTTP 500 (no URL: ://x and 9://y are none)";
    assert_ptr_equal(us_webhook_text_shown(pool, none), none);
    assert_string_equal(us_webhook_text_shown(pool, ""), "");
    static const char *const cases[][2] = {
        { "HTTP 500 from https://hooks.slack.com/services/T0001/B0002/XXXXsecretXXXX",
          "HTTP 500 from https://hooks.slack.com/... #7c79c0df" },
        { "https://hooks.example.com/a/b?token=s3cret&x=1 timed out",
          "https://hooks.example.com/... #50069759 timed out" },
        /* several, each with its own fingerprint (the comma read as part of the
         * first, which is up to whitespace); a shown one among them kept */
        { "to http://[::1]:8080/x, then\thttp://h:81\nand https://discord.com/... #ef4f48a3",
          "to http://[::1]:8080/... #d21a5ea7 then\thttp://h:81 #84247ab7\n"
          "and https://discord.com/... #ef4f48a3" },
        /* a query shown as "?..." (the form before the fingerprint) folded in */
        { "HTTP 503 from https://hooks.example.com/in?...",
          "HTTP 503 from https://hooks.example.com/... #ee4416a2" },
        /* not a shown form: the path is not "/...", or no fingerprint */
        { "from https://h/x #0123abcd", "from https://h/... #29c73581 #0123abcd" },
        { "from https://h/... #0123ABCD", "from https://h/... #bb889a79 #0123ABCD" },
        { "from https://h/... #0123abc", "from https://h/... #bb889a79 #0123abc" },
        { "from https://h #0123abcd9", "from https://h #ecffbe29 #0123abcd9" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *shown = us_webhook_text_shown(pool, cases[i][0]);
        assert_string_equal(shown, cases[i][1]);
        assert_string_equal(us_webhook_text_shown(pool, shown), shown);
    }
}

static const char *write_file(const char *name, const char *text, mode_t mode)
{
    const char *path = fixture_path(name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
    return path;
}

static void test_secret_read(void **state)
{
    const char *s = NULL;
    apr_size_t n = 0;
    (void)state;
    const char *path = write_file("ok.secret", "0123456789abcdef-xyz\r\n", 0600);
    assert_null(us_webhook_secret_read(pool, path, &s, &n));
    assert_int_equal(n, 20);
    assert_string_equal(s, "0123456789abcdef-xyz");

    path = write_file("world.secret", "0123456789abcdef-xyz\n", 0644);
    const char *why = us_webhook_secret_read(pool, path, &s, &n);
    assert_non_null(why);
    assert_non_null(strstr(why, "world-readable"));

    path = write_file("short.secret", "short\n", 0600);
    why = us_webhook_secret_read(pool, path, &s, &n);
    assert_non_null(why);
    assert_non_null(strstr(why, "16 to 4096 bytes"));

    why = us_webhook_secret_read(pool, fixture_path("absent.secret"), &s, &n);
    assert_non_null(why);
    assert_non_null(strstr(why, "cannot be read"));
}

static void test_sign(void **state)
{
    const char *secret = "a secret of enough bytes";
    const char *body = "{\"event\":\"session.ingested\"}";
    char got[72], want[72] = "sha256=";
    unsigned char mac[32];
    unsigned int maclen = 0;
    (void)state;
    assert_int_equal(us_webhook_sign(secret, strlen(secret), 1764700000, body, strlen(body),
                                     got), 1);
    char *msg = apr_pstrcat(pool, "1764700000.", body, NULL);
    HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)msg, strlen(msg),
         mac, &maclen);
    assert_int_equal(maclen, 32);
    for (int i = 0; i < 32; i++)
        snprintf(want + 7 + 2 * i, 3, "%02x", mac[i]);
    assert_string_equal(got, want);
    /* the timestamp is signed: another one gives another signature */
    char other[72];
    assert_int_equal(us_webhook_sign(secret, strlen(secret), 1764700001, body, strlen(body),
                                     other), 1);
    assert_string_not_equal(got, other);
}

static void test_backoff(void **state)
{
    (void)state;
    assert_int_equal(us_webhook_backoff(1), apr_time_from_sec(1));
    assert_int_equal(us_webhook_backoff(2), apr_time_from_sec(2));
    assert_int_equal(us_webhook_backoff(3), apr_time_from_sec(4));
    assert_int_equal(us_webhook_backoff(10), apr_time_from_sec(512));
    assert_int_equal(us_webhook_backoff(11), apr_time_from_sec(600));
    assert_int_equal(us_webhook_backoff(1000000), apr_time_from_sec(600));
    assert_int_equal(us_webhook_backoff(0), apr_time_from_sec(1));
}

static void test_pages_and_ids(void **state)
{
    char a[37], b[37], c[37], d[37];
    (void)state;
    assert_int_equal(us_webhook_pages(0), 1);
    assert_int_equal(us_webhook_pages(US_WEBHOOK_PAGE_FILES), 1);
    assert_int_equal(us_webhook_pages(US_WEBHOOK_PAGE_FILES + 1), 2);
    assert_int_equal(us_webhook_pages(3LL * US_WEBHOOK_PAGE_FILES), 3);
    const char *sid = "5f0e4c3a-1111-4222-8333-444455556666";
    us_webhook_delivery_id(US_WEBHOOK_INGESTED, sid, 1, a);
    us_webhook_delivery_id(US_WEBHOOK_INGESTED, sid, 1, b);
    us_webhook_delivery_id(US_WEBHOOK_INGESTED, sid, 2, c);
    us_webhook_delivery_id(US_WEBHOOK_EXPIRED, sid, 1, d);
    assert_string_equal(a, b); /* stable across retries */
    assert_string_not_equal(a, c);
    assert_string_not_equal(a, d);
    assert_int_equal(strlen(a), 36);
    assert_int_equal(a[14], '8');
    assert_non_null(strchr("89ab", a[19]));
}

static void test_event_json(void **state)
{
    (void)state;
    apr_array_header_t *failed = apr_array_make(pool, 2, sizeof(us_session_file_row));
    us_session_file_row *f = apr_array_push(failed);
    f->file_ingestion_id = "11111111-2222-4333-8444-555555555555";
    f->name = "bad \"one\".pdf";
    f->status = "FAILED";
    f->reason = "EMPTY_FILE";
    f = apr_array_push(failed);
    f->file_ingestion_id = "21111111-2222-4333-8444-555555555555";
    f->name = "b\xc3\xa9.txt";
    f->status = "FAILED";
    f->reason = "FAILED_TO_PARSE_META";
    us_webhook_event e = {
        .event = US_WEBHOOK_INGESTED, .session_id = "5f0e4c3a-1111-4222-8333-444455556666",
        .workspace = "team-a", .occurred_at = apr_time_from_sec(1764700000),
        .uploaded_files = 5, .finished_files = 3, .failed_files = 2, .page = 1, .pages = 1,
        .failed = failed,
    };
    apr_size_t len = 0;
    const char *text = us_webhook_event_json(pool, &e, &len);
    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    json_error_t jerr;
    json_t *j = json_loads(text, 0, &jerr);
    assert_non_null(j);
    char id[37];
    us_webhook_delivery_id(e.event, e.session_id, 1, id);
    assert_string_equal(json_string_value(json_object_get(j, "delivery_id")), id);
    assert_string_equal(json_string_value(json_object_get(j, "event")), "session.ingested");
    assert_string_equal(json_string_value(json_object_get(j, "session_id")), e.session_id);
    assert_string_equal(json_string_value(json_object_get(j, "workspace")), "team-a");
    assert_string_equal(json_string_value(json_object_get(j, "occurred_at")),
                        "2025-12-02T18:26:40.000000Z");
    json_t *c = json_object_get(j, "counters");
    assert_int_equal(json_integer_value(json_object_get(c, "uploaded_files")), 5);
    assert_int_equal(json_integer_value(json_object_get(c, "finished_files")), 3);
    assert_int_equal(json_integer_value(json_object_get(c, "failed_files")), 2);
    json_t *ff = json_object_get(j, "failed_files");
    assert_int_equal(json_array_size(ff), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(ff, 0), "name")),
                        "bad \"one\".pdf");
    assert_string_equal(json_string_value(json_object_get(json_array_get(ff, 0), "reason")),
                        "EMPTY_FILE");
    assert_string_equal(json_string_value(json_object_get(json_array_get(ff, 1), "name")),
                        "b\xc3\xa9.txt");
    assert_string_equal(json_string_value(
                            json_object_get(json_array_get(ff, 1), "file_ingestion_id")),
                        "21111111-2222-4333-8444-555555555555");
    assert_int_equal(json_integer_value(json_object_get(j, "page")), 1);
    assert_int_equal(json_integer_value(json_object_get(j, "pages")), 1);
    json_decref(j);

    /* the same event again: byte for byte the same body */
    apr_size_t len2 = 0;
    const char *again = us_webhook_event_json(pool, &e, &len2);
    assert_int_equal(len, len2);
    assert_memory_equal(text, again, len);

    /* an expired event without failed files has an empty list */
    us_webhook_event x = e;
    x.event = US_WEBHOOK_EXPIRED;
    x.failed = NULL;
    text = us_webhook_event_json(pool, &x, &len);
    j = json_loads(text, 0, &jerr);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "event")), "session.expired");
    assert_int_equal(json_array_size(json_object_get(j, "failed_files")), 0);
    json_decref(j);

    /* a name that is not UTF-8 is refused, never sent as broken JSON */
    f->name = "bad\xff";
    assert_null(us_webhook_event_json(pool, &e, &len));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_check),
        cmocka_unit_test(test_url_shown),
        cmocka_unit_test(test_text_shown),
        cmocka_unit_test(test_secret_read),
        cmocka_unit_test(test_sign),
        cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_pages_and_ids),
        cmocka_unit_test(test_event_json),
    };
    return fixture_run("us_webhook", tests, NULL, NULL);
}

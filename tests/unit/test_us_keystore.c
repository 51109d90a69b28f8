/* Unit tests: the key store re-reading a changed key file, keeping the last
 * good keys when it does not parse, and generations held by requests. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include "fixture.h"
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <apr_strings.h>
#include "us_keystore.h"

#define UID "0b2c6f6e-5d4e-4a8a-9a39-1c7f4d9f7e21"

static int errors, infos;

static void count_emit(void *baton, us_log_level level, apr_status_t status, int msgno,
                       const char *msg)
{
    (void)baton;
    (void)status;
    (void)msg;
    if (level == US_LOG_ERR) {
        assert_int_equal(msgno, 1401);
        errors++;
    }
    else {
        infos++;
    }
}

static const us_logger counting = { count_emit, NULL, US_LOG_DEBUG };

/* Replaces path's content the way an editor or us-keygen does: a new file
 * renamed over the old one (a new inode, so the change is always seen). */
static void write_file(const char *path, const char *text)
{
    char *tmp = apr_pstrcat(pool, path, ".tmp", NULL);
    FILE *f = fopen(tmp, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(rename(tmp, path), 0);
}

static char *line(const char *key)
{
    return us_key_line(pool, key, UID, "Ada", "Lovelace", "*");
}

static us_keystore *open_store(const char *path, apr_interval_time_t interval)
{
    us_keyfile_sig sig;
    us_keyring *kr;
    us_keystore *ks;
    char err[256];
    us_keyfile_sig_get(path, &sig, pool);
    assert_true(sig.exists);
    assert_true(us_keyring_load(pool, path, &kr, err, sizeof(err)));
    assert_int_equal(us_keystore_create(pool, path, kr, &sig, interval, &counting, &ks),
                     APR_SUCCESS);
    return ks;
}

static int knows(us_keystore *ks, apr_time_t now, const char *key)
{
    us_keys_gen *g = us_keystore_acquire(ks, now);
    int found = us_keyring_lookup(us_keys_gen_ring(g), key) != NULL;
    us_keystore_release(g);
    return found;
}

static void test_reload_add_revoke(void **state)
{
    (void)state;
    const char *path = fixture_path("keys-reload");
    write_file(path, line("one"));
    us_keystore *ks = open_store(path, apr_time_from_sec(2));
    apr_time_t t = apr_time_now();
    assert_true(knows(ks, t, "one"));
    assert_false(knows(ks, t, "two"));

    write_file(path, apr_pstrcat(pool, line("one"), line("two"), NULL));
    /* within the interval the file is not looked at */
    assert_false(knows(ks, t, "two"));
    t += apr_time_from_sec(3);
    assert_true(knows(ks, t, "two"));
    assert_int_equal(us_keystore_generation(ks), 2);

    write_file(path, line("two"));
    t += apr_time_from_sec(3);
    assert_false(knows(ks, t, "one"));
    assert_true(knows(ks, t, "two"));
    /* unchanged: no new generation */
    t += apr_time_from_sec(3);
    assert_true(knows(ks, t, "two"));
    assert_int_equal(us_keystore_generation(ks), 3);
    assert_int_equal(errors, 0);
}

static void test_bad_file_keeps_keys_logged_once(void **state)
{
    (void)state;
    const char *path = fixture_path("keys-bad");
    errors = 0;
    write_file(path, line("one"));
    us_keystore *ks = open_store(path, 1);
    apr_time_t t = apr_time_now() + apr_time_from_sec(1);

    write_file(path, apr_pstrcat(pool, line("two"), "not a key line\n", NULL));
    for (int i = 0; i < 5; i++)
        assert_true(knows(ks, t += 10, "one"));
    assert_false(knows(ks, t += 10, "two"));
    assert_int_equal(errors, 1);

    /* missing file: same, logged once */
    assert_int_equal(unlink(path), 0);
    assert_true(knows(ks, t += 10, "one"));
    assert_true(knows(ks, t += 10, "one"));
    assert_int_equal(errors, 2);

    write_file(path, line("three"));
    assert_true(knows(ks, t += 10, "three"));
    assert_false(knows(ks, t += 10, "one"));
    assert_int_equal(errors, 2);
}

static void test_held_generation_outlives_reload(void **state)
{
    (void)state;
    const char *path = fixture_path("keys-held");
    write_file(path, line("one"));
    us_keystore *ks = open_store(path, 1);
    apr_time_t t = apr_time_now() + apr_time_from_sec(1);

    write_file(path, line("two"));
    us_keys_gen *g2 = us_keystore_acquire(ks, t += 10);
    const us_key *k = us_keyring_lookup(us_keys_gen_ring(g2), "two");
    assert_non_null(k);
    /* two more reloads while the request holds g2 */
    write_file(path, line("three"));
    assert_true(knows(ks, t += 10, "three"));
    write_file(path, line("four"));
    assert_true(knows(ks, t += 10, "four"));
    /* g2's key is still readable (ASan/valgrind would see a use after free) */
    assert_string_equal(k->given_name, "Ada");
    assert_string_equal(k->user_id, UID);
    us_keystore_release(g2);
}

static void test_interval_zero_never_rereads(void **state)
{
    (void)state;
    const char *path = fixture_path("keys-static");
    write_file(path, line("one"));
    us_keystore *ks = open_store(path, 0);
    write_file(path, line("two"));
    assert_true(knows(ks, apr_time_now() + apr_time_from_sec(3600), "one"));
    assert_int_equal(us_keystore_generation(ks), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reload_add_revoke),
        cmocka_unit_test(test_bad_file_keeps_keys_logged_once),
        cmocka_unit_test(test_held_generation_outlives_reload),
        cmocka_unit_test(test_interval_zero_never_rereads),
    };
    return fixture_run("us_keystore", tests, NULL, NULL);
}

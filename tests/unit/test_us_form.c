/* Unit tests: form fields are kept within fixed bounds, whatever their shape. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include "fixture.h"
#include <string.h>

#include <apr_general.h>
#include "us_form.h"


static void field(us_form *f, const char *name, const char *value)
{
    assert_int_equal(us_form_begin(f, name), US_FORM_OK);
    assert_int_equal(us_form_append(f, value, strlen(value)), US_FORM_OK);
    us_form_end(f);
}

static void test_fields(void **state)
{
    (void)state;
    us_form *f = us_form_create(pool, 1000, 10);
    assert_null(us_form_get(f, "key"));
    field(f, "key", "ws/s/${filename}");
    field(f, "policy", "eyJ9");
    assert_int_equal(us_form_begin(f, "x-amz-signature"), US_FORM_OK);
    assert_int_equal(us_form_append(f, "ab", 2), US_FORM_OK);
    assert_null(us_form_get(f, "x-amz-signature")); /* not ended yet */
    assert_int_equal(us_form_append(f, "cd", 2), US_FORM_OK);
    us_form_end(f);
    assert_string_equal(us_form_get(f, "key"), "ws/s/${filename}");
    assert_string_equal(us_form_get(f, "policy"), "eyJ9");
    assert_string_equal(us_form_get(f, "x-amz-signature"), "abcd");
    /* an empty value, and the last of two fields of one name */
    field(f, "empty", "");
    assert_string_equal(us_form_get(f, "empty"), "");
    field(f, "key", "other");
    assert_string_equal(us_form_get(f, "key"), "other");
    assert_int_equal(us_form_bytes(f), strlen("keyws/s/${filename}policyeyJ9x-amz-signatureabcd"
                                              "emptykeyother"));
    /* a field begun while another is open ends that one */
    assert_int_equal(us_form_begin(f, "a"), US_FORM_OK);
    assert_int_equal(us_form_append(f, "1", 1), US_FORM_OK);
    assert_int_equal(us_form_begin(f, "b"), US_FORM_OK);
    us_form_end(f);
    assert_string_equal(us_form_get(f, "a"), "1");
    assert_string_equal(us_form_get(f, "b"), "");
}

static void test_byte_limit_counts_names(void **state)
{
    char name[64];
    (void)state;
    us_form *f = us_form_create(pool, 20, 100);
    memset(name, 'n', 21);
    name[21] = '\0';
    assert_int_equal(us_form_begin(f, name), US_FORM_TOO_LARGE);
    name[10] = '\0';
    assert_int_equal(us_form_begin(f, name), US_FORM_OK);       /* 10 */
    assert_int_equal(us_form_append(f, "0123456789", 10), US_FORM_OK); /* 20 */
    assert_int_equal(us_form_append(f, "x", 1), US_FORM_TOO_LARGE);
    us_form_end(f);
    assert_int_equal(us_form_begin(f, "y"), US_FORM_TOO_LARGE);
    /* empty names still count as fields */
    us_form *g = us_form_create(pool, 20, 100);
    for (int i = 0; i < 20; i++) {
        assert_int_equal(us_form_begin(g, ""), US_FORM_OK);
        assert_int_equal(us_form_append(g, "v", 1), US_FORM_OK);
        us_form_end(g);
    }
    assert_int_equal(us_form_begin(g, ""), US_FORM_OK);
    assert_int_equal(us_form_append(g, "v", 1), US_FORM_TOO_LARGE);
}

static void test_field_limit(void **state)
{
    (void)state;
    us_form *f = us_form_create(pool, 1 << 16, 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(us_form_begin(f, ""), US_FORM_OK);
    assert_int_equal(us_form_begin(f, ""), US_FORM_TOO_MANY);
}

static void test_nul_is_refused(void **state)
{
    (void)state;
    us_form *f = us_form_create(pool, 1000, 10);
    assert_int_equal(us_form_begin(f, "x-amz-signature"), US_FORM_OK);
    assert_int_equal(us_form_append(f, "abc\0junk", 8), US_FORM_NUL);
    assert_int_equal(us_form_append(f, "\0", 1), US_FORM_NUL);
}

/* 64 KiB of value one byte at a time fills the form exactly to its limit */
static void test_fragmented_input_stays_bounded(void **state)
{
    apr_pool_t *p;
    (void)state;
    apr_pool_create(&p, pool);
    us_form *f = us_form_create(p, 64 * 1024, 256);
    assert_int_equal(us_form_begin(f, "policy"), US_FORM_OK);
    for (int i = 0; i < 64 * 1024 - 6; i++)
        assert_int_equal(us_form_append(f, "a", 1), US_FORM_OK);
    assert_int_equal(us_form_append(f, "a", 1), US_FORM_TOO_LARGE);
    us_form_end(f);
    assert_int_equal(strlen(us_form_get(f, "policy")), 64 * 1024 - 6);
    assert_int_equal(us_form_bytes(f), 64 * 1024);
    apr_pool_destroy(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fields),
        cmocka_unit_test(test_byte_limit_counts_names),
        cmocka_unit_test(test_field_limit),
        cmocka_unit_test(test_nul_is_refused),
        cmocka_unit_test(test_fragmented_input_stays_bounded),
    };
    return fixture_run("us_form", tests, NULL, NULL);
}

/* Unit tests: upload policy document and signature. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include <apr_base64.h>
#include <apr_general.h>
#include <jansson.h>
#include "us_policy.h"

static apr_pool_t *pool;
static const unsigned char SECRET[32] = "0123456789abcdef0123456789abcdef";
#define T0 ((apr_time_t)1795863600 * APR_USEC_PER_SEC)

static void test_hmac_vector(void **state)
{
    char hex[65];
    (void)state;
    /* RFC 4231 test case 2 */
    us_hmac_hex((const unsigned char *)"Jefe", 4, "what do ya want for nothing?", 28, hex);
    assert_string_equal(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

static void test_fields_and_document(void **state)
{
    us_policy_fields f;
    char sig[65];
    (void)state;
    us_policy_sign(pool, SECRET, sizeof(SECRET), "ws/sid/", T0 + 3600 * APR_USEC_PER_SEC,
                   1000, T0, &f);
    assert_string_equal(f.key, "ws/sid/${filename}");
    assert_string_equal(f.algorithm, "AWS4-HMAC-SHA256");
    assert_string_equal(f.date, "20261128T110000Z");
    assert_string_equal(f.credential, "upload-session/20261128/local/s3/aws4_request");
    us_hmac_hex(SECRET, sizeof(SECRET), f.policy, strlen(f.policy), sig);
    assert_string_equal(f.signature, sig);

    char *doc = apr_palloc(pool, (apr_size_t)apr_base64_decode_len(f.policy));
    int n = apr_base64_decode(doc, f.policy);
    json_error_t e;
    json_t *j = json_loadb(doc, (size_t)n, 0, &e);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "expiration")),
                        "2026-11-28T12:00:00.000000Z");
    json_t *cond = json_object_get(j, "conditions");
    assert_true(json_is_array(cond));
    json_t *expect = json_loads("[\"starts-with\",\"$key\",\"ws/sid/\"]", 0, &e);
    int found = 0;
    for (size_t i = 0; i < json_array_size(cond); i++)
        found |= json_equal(json_array_get(cond, i), expect);
    assert_true(found);
    json_decref(expect);
    json_decref(j);
}

static void test_signature_depends_on_secret_and_prefix(void **state)
{
    us_policy_fields a, b, c;
    unsigned char other[32];
    (void)state;
    memcpy(other, SECRET, sizeof(other));
    other[0] ^= 1;
    us_policy_sign(pool, SECRET, 32, "ws/a/", T0, 10, T0, &a);
    us_policy_sign(pool, other, 32, "ws/a/", T0, 10, T0, &b);
    us_policy_sign(pool, SECRET, 32, "ws/b/", T0, 10, T0, &c);
    assert_string_equal(a.policy, b.policy);
    assert_string_not_equal(a.signature, b.signature);
    assert_string_not_equal(a.policy, c.policy);
    assert_string_not_equal(a.signature, c.signature);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hmac_vector),
        cmocka_unit_test(test_fields_and_document),
        cmocka_unit_test(test_signature_depends_on_secret_and_prefix),
    };
    apr_initialize();
    apr_pool_create(&pool, NULL);
    int rc = cmocka_run_group_tests_name("us_policy", tests, NULL, NULL);
    apr_pool_destroy(pool);
    apr_terminate();
    return rc;
}

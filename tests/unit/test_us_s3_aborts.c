/* Unit tests: the multipart uploads left to abort again - kept up to
 * US_S3_ABORTS_MAX, all handed out at once, handed out once. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include "fixture.h"

#include <apr_strings.h>
#include <string.h>
#include "us_s3_aborts.h"

static int count(const us_s3_abort *list)
{
    int n = 0;
    for (; list; list = list->next)
        n++;
    return n;
}

static void test_kept_up_to_the_bound_and_taken_once(void **state)
{
    (void)state;
    us_s3_aborts *a = us_s3_aborts_create(pool);
    assert_non_null(a);
    assert_null(us_s3_aborts_take(a));
    for (int i = 0; i < US_S3_ABORTS_MAX; i++)
        assert_true(us_s3_aborts_add(a, apr_psprintf(pool, "k%d", i), apr_psprintf(pool, "u%d", i)));
    assert_false(us_s3_aborts_add(a, "one-more", "u")); /* full: left to the startup sweep */
    us_s3_abort *all = us_s3_aborts_take(a);
    assert_int_equal(count(all), US_S3_ABORTS_MAX);
    for (const us_s3_abort *e = all; e; e = e->next)
        assert_string_equal(e->upload_id + 1, e->key + 1); /* k<i> with u<i> */
    assert_null(us_s3_aborts_take(a)); /* taken once */
    us_s3_aborts_free(all);
    /* room again once taken */
    assert_true(us_s3_aborts_add(a, "again", "u-again"));
    all = us_s3_aborts_take(a);
    assert_int_equal(count(all), 1);
    assert_string_equal(all->key, "again");
    us_s3_aborts_free(all);
}

static void test_no_list_keeps_nothing(void **state)
{
    (void)state;
    assert_false(us_s3_aborts_add(NULL, "k", "u"));
    assert_null(us_s3_aborts_take(NULL));
    us_s3_aborts_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kept_up_to_the_bound_and_taken_once),
        cmocka_unit_test(test_no_list_keeps_nothing),
    };
    return fixture_run("us_s3_aborts", tests, NULL, NULL);
}

/* Unit tests: the SQL shape of filters (us_filter_sql.h), in both dialects;
 * the stores' suites check what the SQL selects. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include "fixture.h"

#include <string.h>

#include "us_filter_sql.h"
#include "us_pg_filter.h"
#include "us_sqlite_filter.h"

static const us_filter_dialect *const DIALECTS[] = { &us_sqlite_filter_dialect, &us_pg_filter_dialect };

static const us_odata_node *parsed(const char *filter)
{
    us_odata_node *root = NULL;
    const char *err = NULL;
    if (!us_odata_parse(pool, filter, strlen(filter), &root, &err))
        fail_msg("%s: %s", filter, err);
    return root;
}

/* apr_dbd's: "%%" is a percent sign, any other '%' a placeholder */
static int placeholders(const char *sql)
{
    int n = 0;
    for (; *sql; sql++) {
        if (sql[0] == '%' && sql[1] == '%')
            sql++;
        else
            n += *sql == '%';
    }
    return n;
}

/* The deepest nesting of parentheses in sql. */
static int paren_depth(const char *sql)
{
    int depth = 0, deepest = 0;
    for (; *sql; sql++) {
        depth += *sql == '(' ? 1 : *sql == ')' ? -1 : 0;
        deepest = depth > deepest ? depth : deepest;
    }
    return deepest;
}

/* count terms of term joined by sep */
static const char *chain(const char *term, const char *sep, int count)
{
    const char *s = term;
    for (int i = 1; i < count; i++)
        s = apr_pstrcat(pool, s, sep, term, NULL);
    return s;
}

/* An ordering with null writes no placeholder and binds no parameter. */
static void test_ordering_with_null_binds_nothing(void **state)
{
    (void)state;
    for (int d = 0; d < 2; d++) {
        static const char *const FILTERS[] = { "n gt null", "n le null or n eq 3", "not (a/b lt null)",
                                               "n ge null and name eq 'x'" };
        for (int i = 0; i < 4; i++) {
            apr_array_header_t *args = apr_array_make(pool, 4, sizeof(const void *));
            const char *sql = us_filter_sql(pool, parsed(FILTERS[i]), args, DIALECTS[d]);
            if (placeholders(sql) != args->nelts)
                fail_msg("%s: %d placeholders, %d parameters: %s", FILTERS[i], placeholders(sql),
                         args->nelts, sql);
        }
    }
}

/* A chain of 256 terms nests no deeper than one term. */
static void test_chains_are_flat(void **state)
{
    (void)state;
    for (int d = 0; d < 2; d++) {
        const char *sep[] = { " and ", " or " };
        for (int i = 0; i < 2; i++) {
            apr_array_header_t *args = apr_array_make(pool, 4, sizeof(const void *));
            const char *sql = us_filter_sql(pool, parsed(chain("n eq 1", sep[i], 256)), args, DIALECTS[d]);
            apr_array_header_t *one = apr_array_make(pool, 4, sizeof(const void *));
            int term = paren_depth(us_filter_sql(pool, parsed("n eq 1"), one, DIALECTS[d]));
            assert_int_equal(args->nelts, 256 * one->nelts);
            assert_int_equal(placeholders(sql), args->nelts);
            assert_true(paren_depth(sql) <= term + 1);
        }
    }
}

/* The key table counts a filter of up to 8 conjuncts; a longer one counts
 * from the rows (NULL, no parameter added). */
static void test_key_count_only_for_a_few_conjuncts(void **state)
{
    (void)state;
    for (int d = 0; d < 2; d++) {
        apr_array_header_t *args = apr_array_make(pool, 4, sizeof(const void *));
        const char *sql = us_filter_count_sql(pool, parsed(chain("n eq 1", " and ", 8)), "ws", args, DIALECTS[d]);
        assert_non_null(sql);
        assert_int_equal(placeholders(sql), args->nelts);
        args = apr_array_make(pool, 4, sizeof(const void *));
        assert_null(us_filter_count_sql(pool, parsed(chain("n eq 1", " and ", 9)), "ws", args, DIALECTS[d]));
        assert_null(us_filter_count_sql(pool, parsed(chain("n eq 1", " and ", 256)), "ws", args, DIALECTS[d]));
        assert_int_equal(args->nelts, 0);
    }
}

/* name's functions with a literal percent sign in the text: "%%", no
 * placeholder */
static const char *percent_function(us_filter_builder *b, const char *subject, us_odata_func func,
                                    const char *needle)
{
    (void)func;
    return apr_pstrcat(b->p, "(", subject, " LIKE '%%' || ", us_filter_text_arg(b, needle),
                       " || '%%')", NULL);
}

/* a dialect's mistake: a placeholder without its parameter */
static const char *unbound_function(us_filter_builder *b, const char *subject, us_odata_func func,
                                    const char *needle)
{
    (void)func;
    (void)needle;
    return apr_pstrcat(b->p, "(instr(", subject, ", %s) > 0)", NULL);
}

/* The placeholder count skips "%%"; a text whose placeholders and
 * parameters disagree is refused (NULL, the arguments as they were), and
 * the process lives on to answer 500. */
static void test_placeholder_count_is_checked_not_asserted(void **state)
{
    (void)state;
    for (int d = 0; d < 2; d++) {
        us_filter_dialect percent = *DIALECTS[d], unbound = *DIALECTS[d];
        percent.string_function = percent_function;
        unbound.string_function = unbound_function;

        apr_array_header_t *args = apr_array_make(pool, 4, sizeof(const void *));
        APR_ARRAY_PUSH(args, const void *) = "ws"; /* the caller's own, kept */
        const char *sql = us_filter_sql(pool, parsed("contains(name, 'a') and n eq 1"), args,
                                        &percent);
        assert_non_null(sql);
        assert_non_null(strstr(sql, "LIKE '%%' || %s || '%%'"));
        assert_int_equal(placeholders(sql), args->nelts - 1);
        assert_true(args->nelts >= 3);

        args->nelts = 1;
        assert_null(us_filter_sql(pool, parsed("n eq 1 or contains(name, 'a')"), args, &unbound));
        assert_int_equal(args->nelts, 1);
        assert_string_equal(APR_ARRAY_IDX(args, 0, const char *), "ws");

        /* the key table's count falls back to the rows' */
        args->nelts = 0;
        assert_null(us_filter_count_sql(pool, parsed("k eq 1 and contains(name, 'a')"), "ws",
                                        args, &unbound));
        assert_int_equal(args->nelts, 0);
        assert_non_null(us_filter_count_sql(pool, parsed("k eq 1 and contains(name, 'a')"), "ws",
                                            args, &percent));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ordering_with_null_binds_nothing),
        cmocka_unit_test(test_chains_are_flat),
        cmocka_unit_test(test_key_count_only_for_a_few_conjuncts),
        cmocka_unit_test(test_placeholder_count_is_checked_not_asserted),
    };
    return fixture_run("us_filter_sql", tests, NULL, NULL);
}

/* Unit tests: the OData $filter parser. Trees are compared in a prefix form:
 * (and A B), (or A B), (not A), (eq key value), (in key v1 v2), (contains key 's'). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include "fixture.h"

#include <stdio.h>
#include <string.h>

#include "us_odata.h"

static const char *const OP_NAMES[] = { "eq", "ne", "gt", "ge", "lt", "le" };
static const char *const FUNC_NAMES[] = { "contains", "startswith", "endswith" };
static const char *const FIELD_NAMES[] = { "", "@name", "@created_at", "@size", "@file_id" };

static const char *value_text(apr_pool_t *p, const us_odata_value *v)
{
    switch (v->type) {
    case US_ODATA_STRING: return apr_psprintf(p, "'%s'", v->str);
    case US_ODATA_INTEGER: return apr_psprintf(p, "int:%" APR_INT64_T_FMT, (apr_int64_t)v->integer);
    case US_ODATA_DECIMAL: {
        char buf[64];
        snprintf(buf, sizeof(buf), "dec:%g", v->decimal);
        return apr_pstrdup(p, buf);
    }
    case US_ODATA_BOOLEAN: return v->integer ? "true" : "false";
    case US_ODATA_NULL: return "null";
    case US_ODATA_DATETIME: return apr_psprintf(p, "time:%" APR_TIME_T_FMT, v->instant);
    }
    return "?";
}

static const char *operand_text(apr_pool_t *p, const us_odata_operand *o)
{
    if (o->field != US_ODATA_META)
        return FIELD_NAMES[o->field];
    const char *s = o->path[0];
    for (int i = 1; i < o->depth; i++)
        s = apr_pstrcat(p, s, "/", o->path[i], NULL);
    return s;
}

static const char *tree(apr_pool_t *p, const us_odata_node *n)
{
    const char *s;
    switch (n->kind) {
    case US_ODATA_AND: return apr_pstrcat(p, "(and ", tree(p, n->left), " ", tree(p, n->right), ")", NULL);
    case US_ODATA_OR: return apr_pstrcat(p, "(or ", tree(p, n->left), " ", tree(p, n->right), ")", NULL);
    case US_ODATA_NOT: return apr_pstrcat(p, "(not ", tree(p, n->left), ")", NULL);
    case US_ODATA_CMP:
        return apr_pstrcat(p, "(", OP_NAMES[n->op], " ", operand_text(p, &n->operand), " ",
                           value_text(p, &n->values[0]), ")", NULL);
    case US_ODATA_FUNC:
        return apr_pstrcat(p, "(", FUNC_NAMES[n->func], " ", operand_text(p, &n->operand), " ",
                           value_text(p, &n->values[0]), ")", NULL);
    case US_ODATA_IN:
        s = apr_pstrcat(p, "(in ", operand_text(p, &n->operand), NULL);
        for (int i = 0; i < n->count; i++)
            s = apr_pstrcat(p, s, " ", value_text(p, &n->values[i]), NULL);
        return apr_pstrcat(p, s, ")", NULL);
    }
    return "?";
}

static void parses_to(const char *filter, const char *want)
{
    us_odata_node *root = NULL;
    const char *err = NULL;
    if (!us_odata_parse(pool, filter, strlen(filter), &root, &err))
        fail_msg("%s: refused: %s", filter, err);
    const char *got = tree(pool, root);
    if (strcmp(got, want) != 0)
        fail_msg("%s:\n  got  %s\n  want %s", filter, got, want);
}

static void refused(const char *filter, apr_size_t len, const char *want_err)
{
    us_odata_node *root = NULL;
    const char *err = NULL;
    if (us_odata_parse(pool, filter, len, &root, &err))
        fail_msg("%s: accepted as %s", filter, tree(pool, root));
    if (strcmp(err, want_err) != 0)
        fail_msg("%s:\n  got  %s\n  want %s", filter, err, want_err);
}

static void test_comparisons(void **state)
{
    (void)state;
    parses_to("category eq 'news'", "(eq category 'news')");
    parses_to("a ne 1", "(ne a int:1)");
    parses_to("a gt 1.5", "(gt a dec:1.5)");
    parses_to("a ge -2", "(ge a int:-2)");
    parses_to("a lt 1e3", "(lt a dec:1000)");
    parses_to("a le 2.5E-1", "(le a dec:0.25)");
    parses_to("flag eq true", "(eq flag true)");
    parses_to("flag eq false", "(eq flag false)");
    parses_to("gone eq null", "(eq gone null)");
    parses_to("  a   eq\t'x'  ", "(eq a 'x')");
    parses_to("a eq 99999999999999999999", "(eq a dec:1e+20)");
}

/* An exponent numeric holds (PostgreSQL compares numbers as numeric): up
 * to 1000 in magnitude. */
static void test_number_range(void **state)
{
    (void)state;
    parses_to("a lt 1e1000", "(lt a dec:inf)");
    parses_to("a gt -1E+1000", "(gt a dec:-inf)");
    parses_to("a eq 1e-1000", "(eq a dec:0)");
    parses_to("a eq 1e0001000", "(eq a dec:inf)");
    refused("a lt 1e1001", 11, "number out of range at position 5");
    refused("n lt 1e131072", 13, "number out of range at position 5");
    refused("size lt 1e131073", 16, "number out of range at position 8");
    refused("n eq 1e-999999", 14, "number out of range at position 5");
    refused("ä eq 1 or n in (2, -1.5e99999999999999999999)", 46, "number out of range at position 19");
}

static void test_fields_and_paths(void **state)
{
    (void)state;
    parses_to("name eq 'a.txt'", "(eq @name 'a.txt')");
    parses_to("size gt 10", "(gt @size int:10)");
    parses_to("file_id eq 'x'", "(eq @file_id 'x')");
    parses_to("created_at ge 2024-01-31T10:00:00Z", "(ge @created_at time:1706695200000000)");
    parses_to("a/b/c eq 1", "(eq a/b/c int:1)");
    parses_to("name/first eq 'x'", "(eq name/first 'x')"); /* a metadata path, not the field */
    parses_to("kategorie_ä eq 'ü'", "(eq kategorie_ä 'ü')");
    parses_to("and eq 1", "(eq and int:1)"); /* a key may be called like a keyword */
}

static void test_strings(void **state)
{
    (void)state;
    parses_to("a eq 'it''s'", "(eq a 'it's')");
    parses_to("a eq ''", "(eq a '')");
    parses_to("a eq ''''", "(eq a ''')");
    parses_to("a eq \"double\"", "(eq a 'double')");
    parses_to("a eq \"say \"\"hi\"\"\"", "(eq a 'say \"hi\"')");
    parses_to("a eq '\"'", "(eq a '\"')");
    parses_to("a eq '%_'", "(eq a '%_')");
}

static void test_datetimes(void **state)
{
    (void)state;
    parses_to("d ge 2024-01-31", "(ge d time:1706659200000000)");
    parses_to("d ge 2024-01-31T10:00:00", "(ge d time:1706695200000000)");
    parses_to("d ge 2024-01-31T10:00:00.5Z", "(ge d time:1706695200500000)");
    parses_to("d ge 2024-01-31T12:00:00+02:00", "(ge d time:1706695200000000)");
    refused("d ge 2024-13-31", 15, "invalid date-time '2024-13-31' at position 5");
    parses_to("d eq 2024-02-29", "(eq d time:1709164800000000)");
    refused("d eq 2024-02-30", 15, "invalid date-time '2024-02-30' at position 5");
    refused("d eq 2023-02-29T10:00:00Z", 25, "invalid date-time '2023-02-29T10:00:00Z' at position 5");
    refused("d eq 2026-04-31", 15, "invalid date-time '2026-04-31' at position 5");
}

static void test_logic_and_precedence(void **state)
{
    (void)state;
    parses_to("a eq 1 and b eq 2", "(and (eq a int:1) (eq b int:2))");
    parses_to("a eq 1 or b eq 2 and c eq 3", "(or (eq a int:1) (and (eq b int:2) (eq c int:3)))");
    parses_to("a eq 1 and b eq 2 or c eq 3", "(or (and (eq a int:1) (eq b int:2)) (eq c int:3))");
    parses_to("(a eq 1 or b eq 2) and c eq 3", "(and (or (eq a int:1) (eq b int:2)) (eq c int:3))");
    parses_to("not a eq 1", "(not (eq a int:1))");
    parses_to("not a eq 1 and b eq 2", "(and (not (eq a int:1)) (eq b int:2))");
    parses_to("not (a eq 1 or b eq 2)", "(not (or (eq a int:1) (eq b int:2)))");
    parses_to("not not a eq 1", "(not (not (eq a int:1)))");
    parses_to("a eq 1 or b eq 2 or c eq 3", "(or (or (eq a int:1) (eq b int:2)) (eq c int:3))");
    parses_to("((a eq 1))", "(eq a int:1)");
}

static void test_in_and_functions(void **state)
{
    (void)state;
    parses_to("kind in ('a', 'b','c')", "(in kind 'a' 'b' 'c')");
    parses_to("n in (1, 2.5, null)", "(in n int:1 dec:2.5 null)");
    parses_to("contains(name,'rep')", "(contains @name 'rep')");
    parses_to("startswith(a/b, 'x')", "(startswith a/b 'x')");
    parses_to("endswith (title, '.pdf')", "(endswith title '.pdf')");
    parses_to("contains\n(s,'ew')", "(contains s 'ew')");
    parses_to("contains\r\n (s,'ew') and startswith\t\r(s, 'n')",
              "(and (contains s 'ew') (startswith s 'n'))");
    parses_to("not contains(name,'x') and k eq 1", "(and (not (contains @name 'x')) (eq k int:1))");
}

static void test_errors_name_a_position(void **state)
{
    (void)state;
    refused("", 0, "empty filter at position 0");
    refused("a", 1, "expected a comparison operator (eq, ne, gt, ge, lt, le, in), found the end of the filter at position 1");
    refused("a eq", 4, "expected a literal, found the end of the filter at position 4");
    refused("a eq b", 6, "expected a literal (comparing two keys is not supported), found 'b' at position 5");
    refused("a xx 1", 6, "expected a comparison operator (eq, ne, gt, ge, lt, le, in), found 'xx' at position 2");
    refused("a eq 'x", 7, "unterminated string at position 5");
    refused("a eq 1 b eq 2", 13, "expected 'and', 'or' or the end of the filter, found 'b' at position 7");
    refused("(a eq 1", 7, "expected ')', found the end of the filter at position 7");
    refused("a eq 1)", 7, "expected 'and', 'or' or the end of the filter, found ')' at position 6");
    refused("foo(a,'x')", 10, "unknown function 'foo' at position 0");
    refused("contains(a, 1)", 14, "expected a string, found '1' at position 12");
    refused("contains(a 'x')", 15, "expected ',', found ''x'' at position 11");
    refused("'x' eq a", 8, "expected a key, a function, 'not' or '(', found ''x'' at position 0");
    refused("a eq 12ab", 9, "invalid number at position 5");
    refused("a eq 1 and", 10, "expected a key, a function, 'not' or '(', found the end of the filter at position 10");
    refused("a in ()", 7, "expected a literal, found ')' at position 6");
    refused("a in ('x' 'y')", 14, "expected ',' or ')', found ''y'' at position 10");
    refused("a/ 1 eq 1", 9, "expected a key after '/', found '1' at position 3");
    refused("a eq $", 6, "unexpected character '$' at position 5");
    refused("a eq 1 and b eq \x01", 17, "unexpected character \\x01 at position 16");
    refused("ä eq 1 and ü", 14, "expected a comparison operator (eq, ne, gt, ge, lt, le, in), found the end of the filter at position 12");
}

static void test_nul_and_bad_utf8(void **state)
{
    (void)state;
    refused("a eq 'x\0y'", 10, "NUL character in a string at position 7");
    refused("a eq 'x\xff'", 9, "invalid UTF-8 at position 7");
}

static void test_limits(void **state)
{
    (void)state;
    static char deep[200];
    memset(deep, 0, sizeof deep);
    memset(deep, '(', 40);
    strcpy(deep + 40, "a eq 1");
    memset(deep + 46, ')', 40);
    refused(deep, strlen(deep), "too deeply nested at position 32");
    memset(deep, 0, sizeof deep);
    for (int i = 0; i < 31; i++)
        strcat(deep, "(");
    strcat(deep, "a eq 1");
    for (int i = 0; i < 31; i++)
        strcat(deep, ")");
    parses_to(deep, "(eq a int:1)");

    static char many[8192];
    memset(many, 0, sizeof many);
    strcpy(many, "a in (1");
    for (int i = 1; i < 257; i++)
        strcat(many, ",1");
    strcat(many, ")");
    refused(many, strlen(many), "too many terms at position 518");

    static char nots[8192];
    memset(nots, 0, sizeof nots);
    for (int i = 0; i < 1000; i++)
        strcat(nots, "not ");
    refused(nots, strlen(nots), "too deeply nested at position 128");

    static char huge[US_ODATA_MAX_BYTES + 2];
    memset(huge, 0, sizeof huge);
    memset(huge, ' ', US_ODATA_MAX_BYTES + 1);
    refused(huge, US_ODATA_MAX_BYTES + 1, "the filter is longer than 4096 bytes at position 4096");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_comparisons),
        cmocka_unit_test(test_number_range),
        cmocka_unit_test(test_fields_and_paths),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_datetimes),
        cmocka_unit_test(test_logic_and_precedence),
        cmocka_unit_test(test_in_and_functions),
        cmocka_unit_test(test_errors_name_a_position),
        cmocka_unit_test(test_nul_and_bad_utf8),
        cmocka_unit_test(test_limits),
    };
    return fixture_run("us_odata", tests, NULL, NULL);
}

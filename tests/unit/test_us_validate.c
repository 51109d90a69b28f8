/*
 * test_us_validate.c - table-driven tests for us_validate.c.
 *
 * Every row compares the WHOLE produced item list with the expected JSON
 * text: json_equal() on the values and the compact dumps on key order
 * (type, loc, msg, input, ctx). Expected items were cross-checked against
 * pydantic 2.13 / pydantic-core 2.46 in python mode (as FastAPI validates)
 * and against API.md's reference table.
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

#include "us_validate.h"
#include "us_uuid.h"

/* ---- expected-item helpers (JSON text) ----------------------------------- */

#define ITEM(type, loc, msg, input) \
    "{\"type\":\"" type "\",\"loc\":" loc ",\"msg\":\"" msg "\",\"input\":" input "}"
#define ITEMC(type, loc, msg, input, ctx)                                          \
    "{\"type\":\"" type "\",\"loc\":" loc ",\"msg\":\"" msg "\",\"input\":" input \
    ",\"ctx\":" ctx "}"

#define Q_LIMIT "[\"query\",\"limit\"]"
#define Q_PAGE  "[\"query\",\"page_number\"]"
#define Q_EXP   "[\"query\",\"is_expired\"]"
#define Q_INGST "[\"query\",\"ingestion_status\"]"
#define P_SID   "[\"path\",\"session_id\"]"
#define B_ROOT  "[\"body\"]"
#define B_F     "[\"body\",\"f\"]"
#define B_WM    "[\"body\",\"write_mode\"]"
#define B_PPE   "[\"body\",\"parallel_processing_enabled\"]"
#define B_EXP   "[\"body\",\"expires_in_seconds\"]"
#define B_ST    "[\"body\",\"status\"]"

#define M_INT_PARSE "Input should be a valid integer, unable to parse string as an integer"
#define INT_PARSING(loc, in) ITEM("int_parsing", loc, M_INT_PARSE, in)
#define INT_SIZE(loc, in)                                                            \
    ITEM("int_parsing_size", loc,                                                    \
         "Unable to parse input string as an integer, exceeded maximum size", in)
#define INT_FLOAT(loc, in)                                                           \
    ITEM("int_from_float", loc,                                                      \
         "Input should be a valid integer, got a number with a fractional part", in)
#define INT_TYPE(loc, in) ITEM("int_type", loc, "Input should be a valid integer", in)
#define LE(loc, in, n)                                                               \
    ITEMC("less_than_equal", loc, "Input should be less than or equal to " #n, in, \
          "{\"le\":" #n "}")
#define GE(loc, in, n)                                                          \
    ITEMC("greater_than_equal", loc, "Input should be greater than or equal to " #n, \
          in, "{\"ge\":" #n "}")
#define BOOL_PARSING(loc, in)                                                   \
    ITEM("bool_parsing", loc,                                                   \
         "Input should be a valid boolean, unable to interpret input", in)
#define BOOL_TYPE(loc, in) ITEM("bool_type", loc, "Input should be a valid boolean", in)
#define WM_EXPECTED "'KEEP', 'OVERWRITE' or 'FAIL'"
#define ENUM_WM(in)                                                             \
    ITEMC("enum", B_WM, "Input should be " WM_EXPECTED, in,                      \
          "{\"expected\":\"" WM_EXPECTED "\"}")
#define LIT_CLOSED(in)                                                          \
    ITEMC("literal_error", B_ST, "Input should be 'CLOSED'", in,                 \
          "{\"expected\":\"'CLOSED'\"}")
#define MISSING ITEM("missing", B_ROOT, "Field required", "null")
#define MODEL_ATTRS(in)                                                         \
    ITEM("model_attributes_type", B_ROOT,                                      \
         "Input should be a valid dictionary or object to extract fields from", in)
#define JSON_INVALID(pos, err)                                                  \
    ITEMC("json_invalid", "[\"body\"," #pos "]", "JSON decode error", "{}",     \
          "{\"error\":\"" err "\"}")
#define UUID_ITEM(in, reason)                                                   \
    ITEMC("uuid_parsing", P_SID, "Input should be a valid UUID, " reason, in,   \
          "{\"error\":\"" reason "\"}")

static const char *const WRITE_MODES[] = {"KEEP", "OVERWRITE", "FAIL", NULL};
static const char *const INGEST_STATES[] = {"PENDING", "FAILED", "FINISHED", NULL};
static const char *const TWO[] = {"A", "B", NULL};
static const char *const ONE[] = {"ONLY", NULL};

static json_t *load(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);

    if (!v)
        fail_msg("bad JSON in test table: %s: %s", text, e.text);
    return v;
}

/* The whole list must equal `expected`, keys in the same order. */
static void check_items(const char *row, json_t *errs, const char *expected)
{
    json_t *exp = load(expected);
    char *got = json_dumps(errs, JSON_COMPACT | JSON_ENSURE_ASCII);
    char *want = json_dumps(exp, JSON_COMPACT | JSON_ENSURE_ASCII);
    int same = json_equal(errs, exp) && strcmp(got, want) == 0;

    if (!same)
        print_error("row %s\n  got  %s\n  want %s\n", row, got, want);
    free(got);
    free(want);
    json_decref(exp);
    assert_true(same);
}

/* ---- us_validation_error --------------------------------------------------------------- */

static void test_verr_shape(void **state)
{
    (void)state;
    json_t *errs = json_array();

    json_array_append_new(errs, us_validation_error("x_type", json_pack("[s]", "body"), "m", NULL, NULL));
    json_array_append_new(errs, us_validation_error("y", json_pack("[si]", "body", 3), "n",
                                        json_integer(1), json_pack("{ss}", "k", "v")));
    check_items("verr", errs,
                "[{\"type\":\"x_type\",\"loc\":[\"body\"],\"msg\":\"m\",\"input\":null},"
                "{\"type\":\"y\",\"loc\":[\"body\",3],\"msg\":\"n\",\"input\":1,"
                "\"ctx\":{\"k\":\"v\"}}]");
    json_decref(errs);
}

/* ---- API.md reference table ------------------------------------------------ */

typedef struct {
    const char *name;
    void (*run)(json_t *errs, const char *a, const char *b);
    const char *a, *b;
    const char *expected;
} ref_row;

static void run_body_ct(json_t *errs, const char *ct, const char *body)
{
    json_t *obj = NULL;
    us_validate_body_object(errs, ct, body, strlen(body), 0, &obj);
    json_decref(obj);
}

static void run_close(json_t *errs, const char *body, const char *unused)
{
    json_t *obj = NULL;
    (void)unused;
    if (us_validate_body_object(errs, "application/json", body, strlen(body), 0, &obj) == US_BODY_OK)
        us_validate_body_literal(errs, obj, "status", "CLOSED");
    json_decref(obj);
}

static void run_create(json_t *errs, const char *body, const char *unused)
{
    json_t *obj = NULL;
    const char *wm;
    int ppe;
    long long exp;
    (void)unused;
    if (us_validate_body_object(errs, "application/json", body, strlen(body), 0, &obj) == US_BODY_OK) {
        us_validate_body_enum(errs, obj, "write_mode", WRITE_MODES, "KEEP", &wm);
        us_validate_body_bool(errs, obj, "parallel_processing_enabled", 0, &ppe);
        us_validate_body_int(errs, obj, "expires_in_seconds", 86400, 1, 86400, &exp);
    }
    json_decref(obj);
}

static void run_path(json_t *errs, const char *value, const char *unused)
{
    char out[37];
    (void)unused;
    us_validate_path_uuid(errs, "session_id", value, out);
}

static void run_query_limit(json_t *errs, const char *raw, const char *unused)
{
    long long out;
    (void)unused;
    us_validate_query_int(errs, "limit", raw, 10, 1, 100, &out);
}

static void run_query_page(json_t *errs, const char *raw, const char *unused)
{
    long long out;
    (void)unused;
    us_validate_query_int(errs, "page_number", raw, 1, 1, LLONG_MAX, &out);
}

static void run_query_expired(json_t *errs, const char *raw, const char *unused)
{
    int out;
    (void)unused;
    us_validate_query_bool(errs, "is_expired", raw, &out);
}

static const ref_row REF_ROWS[] = {
    {"empty body", run_body_ct, "application/json", "", "[" MISSING "]"},
    {"JSON null", run_close, "null", NULL, "[" MISSING "]"},
    {"not valid JSON", run_close, "x", NULL, "[" JSON_INVALID(0, "Expecting value") "]"},
    {"not an object", run_close, "[1]", NULL, "[" MODEL_ATTRS("[1]") "]"},
    {"no Content-Type", run_body_ct, NULL, "{\"status\":\"CLOSED\"}",
     "[" MODEL_ATTRS("\"{\\\"status\\\":\\\"CLOSED\\\"}\"") "]"},
    {"text/plain", run_body_ct, "text/plain", "{}", "[" MODEL_ATTRS("\"{}\"") "]"},
    {"form-encoded", run_body_ct, "application/x-www-form-urlencoded", "status=CLOSED",
     "[" MODEL_ATTRS("\"status=CLOSED\"") "]"},
    {"status not CLOSED", run_close, "{\"status\":\"OPEN\"}", NULL,
     "[{\"type\":\"literal_error\",\"loc\":[\"body\",\"status\"],\"msg\":\"Input should be "
     "'CLOSED'\",\"input\":\"OPEN\",\"ctx\":{\"expected\":\"'CLOSED'\"}}]"},
    {"bad write_mode", run_create, "{\"write_mode\":\"X\"}", NULL,
     "[{\"type\":\"enum\",\"loc\":[\"body\",\"write_mode\"],\"msg\":\"Input should be "
     "'KEEP', 'OVERWRITE' or 'FAIL'\",\"input\":\"X\",\"ctx\":{\"expected\":\"'KEEP', "
     "'OVERWRITE' or 'FAIL'\"}}]"},
    {"bool not a bool", run_create, "{\"parallel_processing_enabled\":\"maybe\"}", NULL,
     "[{\"type\":\"bool_parsing\",\"loc\":[\"body\",\"parallel_processing_enabled\"],"
     "\"msg\":\"Input should be a valid boolean, unable to interpret input\","
     "\"input\":\"maybe\"}]"},
    {"int out of range", run_create, "{\"expires_in_seconds\":0}", NULL,
     "[{\"type\":\"greater_than_equal\",\"loc\":[\"body\",\"expires_in_seconds\"],"
     "\"msg\":\"Input should be greater than or equal to 1\",\"input\":0,"
     "\"ctx\":{\"ge\":1}}]"},
    {"int fractional", run_create, "{\"expires_in_seconds\":1.5}", NULL,
     "[{\"type\":\"int_from_float\",\"loc\":[\"body\",\"expires_in_seconds\"],"
     "\"msg\":\"Input should be a valid integer, got a number with a fractional part\","
     "\"input\":1.5}]"},
    {"session_id not a UUID", run_path, "abc", NULL,
     "[{\"type\":\"uuid_parsing\",\"loc\":[\"path\",\"session_id\"],\"msg\":\"Input should "
     "be a valid UUID, invalid length: expected length 32 for simple format, found 3\","
     "\"input\":\"abc\",\"ctx\":{\"error\":\"invalid length: expected length 32 for simple "
     "format, found 3\"}}]"},
    {"session_id bad char", run_path, "xyz", NULL,
     "[" UUID_ITEM("\"xyz\"", "invalid character: found `x` at 1") "]"},
    {"query int not an int", run_query_limit, "abc", NULL,
     "[{\"type\":\"int_parsing\",\"loc\":[\"query\",\"limit\"],\"msg\":\"Input should be a "
     "valid integer, unable to parse string as an integer\",\"input\":\"abc\"}]"},
    {"query int above le", run_query_limit, "101", NULL,
     "[{\"type\":\"less_than_equal\",\"loc\":[\"query\",\"limit\"],\"msg\":\"Input should be "
     "less than or equal to 100\",\"input\":\"101\",\"ctx\":{\"le\":100}}]"},
    {"query int below ge", run_query_page, "0", NULL, "[" GE(Q_PAGE, "\"0\"", 1) "]"},
    {"query bool not a bool", run_query_expired, "maybe", NULL,
     "[{\"type\":\"bool_parsing\",\"loc\":[\"query\",\"is_expired\"],\"msg\":\"Input should "
     "be a valid boolean, unable to interpret input\",\"input\":\"maybe\"}]"},
};

static void test_api_md_reference(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof REF_ROWS / sizeof REF_ROWS[0]; i++) {
        json_t *errs = json_array();
        REF_ROWS[i].run(errs, REF_ROWS[i].a, REF_ROWS[i].b);
        check_items(REF_ROWS[i].name, errs, REF_ROWS[i].expected);
        json_decref(errs);
    }
}

/* ---- UUID ---------------------------------------------------------------- */

typedef struct {
    const char *in;
    const char *out;    /* canonical form, or NULL when invalid */
    const char *reason; /* when invalid */
} uuid_row;

#define CANON "67e55044-10b1-426f-9247-bb680e5fe0c8"

static const uuid_row UUID_ROWS[] = {
    /* accepted forms */
    {CANON, CANON, NULL},
    {"67e5504410b1426f9247bb680e5fe0c8", CANON, NULL},
    {"urn:uuid:" CANON, CANON, NULL},
    {"{" CANON "}", CANON, NULL},
    {"67E55044-10B1-426F-9247-BB680E5FE0C8", CANON, NULL},
    {"{67E55044-10B1-426F-9247-BB680E5FE0C8}", CANON, NULL},
    {"urn:uuid:67E55044-10b1-426F-9247-bb680e5fe0c8", CANON, NULL},
    {"67E5504410B1426F9247BB680E5FE0C8", CANON, NULL},
    {"00000000000000000000000000000000", "00000000-0000-0000-0000-000000000000", NULL},
    {"F9168C5E-CEB2-4faa-B6BF-329BF39FA1E4", "f9168c5e-ceb2-4faa-b6bf-329bf39fa1e4", NULL},
    /* simple length */
    {"", NULL, "invalid length: expected length 32 for simple format, found 0"},
    {"abc", NULL, "invalid length: expected length 32 for simple format, found 3"},
    {"67e5504410b1426f9247bb680e5fe0c", NULL,
     "invalid length: expected length 32 for simple format, found 31"},
    {"67e5504410b1426f9247bb680e5fe0c88", NULL,
     "invalid length: expected length 32 for simple format, found 33"},
    {"231231212212423424324323477343246663", NULL,
     "invalid length: expected length 32 for simple format, found 36"},
    /* invalid character: 1-based, prefix/brace counted unless the input has
     * the exact 38/45-byte shape (then the crate explains the inner slice) */
    {"!", NULL, "invalid character: found `!` at 1"},
    {"xyz", NULL, "invalid character: found `x` at 1"},
    {"F9168C5E-CEB2-4faa-BGBF-329BF39FA1E4", NULL, "invalid character: found `G` at 21"},
    {"F9168C5E-CEB2-4faaXB6BFF329BF39FA1E4", NULL, "invalid character: found `X` at 19"},
    {"{F9168C5E-CEB2-4faa9B6BFF329BF39FA1E41", NULL, "invalid character: found `{` at 1"},
    {"67e5504410b1426f9247bb680e5fe0cg8", NULL, "invalid character: found `g` at 32"},
    {"67e5504410b1426%9247bb680e5fe0c8", NULL, "invalid character: found `%` at 16"},
    {"67e550X410b1426f9247bb680e5fe0cd", NULL, "invalid character: found `X` at 7"},
    {"{x}", NULL, "invalid character: found `x` at 2"},
    {"urn:uuid:x", NULL, "invalid character: found `x` at 10"},
    {"{urn:uuid:x}", NULL, "invalid character: found `u` at 2"},
    {"URN:UUID:" CANON, NULL, "invalid character: found `U` at 1"},
    {CANON " ", NULL, "invalid character: found ` ` at 37"},
    {" " CANON, NULL, "invalid character: found ` ` at 1"},
    {CANON "}", NULL, "invalid character: found `}` at 37"},
    {"{" CANON, NULL, "invalid character: found `{` at 1"},
    {"{a}b}", NULL, "invalid character: found `}` at 3"},
    {"}", NULL, "invalid character: found `}` at 1"},
    {"{", NULL, "invalid character: found `{` at 1"},
    /* exact 38-byte {..} and 45-byte urn shapes: index within the inner 36 */
    {"{x7e55044-10b1-426f-9247-bb680e5fe0c8}", NULL, "invalid character: found `x` at 1"},
    {"{67e55044-10b1-426f-9247-bb680e5fe0cx}", NULL, "invalid character: found `x` at 36"},
    {"urn:uuid:67e55044-10b1-426f-9247-bb680e5fe0cx", NULL,
     "invalid character: found `x` at 36"},
    {"{urn:uuid:0Bae7:ib1c64E1fDb:c -43bE-e}", NULL, "invalid character: found `:` at 15"},
    {"urn:uuid:{67e55044-10b1-426f-9247-bb680e5fe0c}", NULL, /* 46 bytes */
     "invalid character: found `{` at 10"},
    {"{{x7e5504-10b1-426f-9247-bb680e5fe0c}}", NULL, /* inner is braced again */
     "invalid character: found `x` at 2"},
    /* multibyte: the whole character is shown; its index counts characters */
    {"\xf2\xbc\xbc\xbc", NULL, "invalid character: found `\xf2\xbc\xbc\xbc` at 1"},
    {"ab\xe2\x82\xac", NULL, "invalid character: found `\xe2\x82\xac` at 3"},
    {"\xc3\xa9", NULL, "invalid character: found `\xc3\xa9` at 1"},
    {"{ab\xe2\x82\xac}", NULL, "invalid character: found `\xe2\x82\xac` at 4"},
    {"\xff", NULL, "non-UTF8 input"},
    /* group count */
    {"F9168C5E-CEB2F4faaFB6BFF329BF39FA1E4", NULL, "invalid group count: expected 5, found 2"},
    {"F9168C5E-CEB2-4faaFB6BFF329BF39FA1E4", NULL, "invalid group count: expected 5, found 3"},
    {"F9168C5E-CEB2-4faa-B6BFF329BF39FA1E4", NULL, "invalid group count: expected 5, found 4"},
    {"F9168C5E-CEB2-4faa", NULL, "invalid group count: expected 5, found 3"},
    {"{F9168C5E-CEB2-4faa9B6BFF329BF39FA1E41}", NULL,
     "invalid group count: expected 5, found 3"},
    {"{00000000000000000000000000000000}", NULL, "invalid group count: expected 5, found 1"},
    {"67e550-4105b1426f9247bb680e5fe0c", NULL, "invalid group count: expected 5, found 2"},
    {"{}", NULL, "invalid group count: expected 5, found 1"},
    {"urn:uuid:", NULL, "invalid group count: expected 5, found 1"},
    {"--------", NULL, "invalid group count: expected 5, found 9"},
    {"67e55044--10b1-426f-9247-bb680e5fe0c", NULL,
     "invalid group count: expected 5, found 6"},
    /* group length */
    {"F9168C5E-CEB2-4faa-B6BF-329BF39FA1E45", NULL,
     "invalid group length in group 4: expected 12, found 13"},
    {"F9168C5E-CEB2-4faa-BBF-329BF39FA1E4", NULL,
     "invalid group length in group 3: expected 4, found 3"},
    {"F9168C5E-CEB-24fa-eB6BFF32-BF39FA1E4", NULL,
     "invalid group length in group 1: expected 4, found 3"},
    {"01020304-1112-2122-3132-41424344", NULL,
     "invalid group length in group 4: expected 12, found 8"},
    {"F9168C5E-CEB2-4faa-B6BF1-02BF39FA1E4", NULL,
     "invalid group length in group 3: expected 4, found 5"},
    {"0-1-2-3-4", NULL, "invalid group length in group 0: expected 8, found 1"},
    /* the last group is measured on the whole input, braces/prefix included */
    {"{01020304-1112-2122-3132-41424344}", NULL,
     "invalid group length in group 4: expected 12, found 10"},
    {"urn:uuid:01020304-1112-2122-3132-4142434445464748", NULL,
     "invalid group length in group 4: expected 12, found 25"},
};

static void test_uuid_parse(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof UUID_ROWS / sizeof UUID_ROWS[0]; i++) {
        const uuid_row *r = &UUID_ROWS[i];
        char out[37] = "", reason[128] = "";
        int ok = us_uuid_parse(r->in, out, reason, sizeof reason);
        if (r->out) {
            if (!ok || strcmp(out, r->out) != 0)
                print_error("uuid row %s: ok=%d out=%s reason=%s\n", r->in, ok, out, reason);
            assert_true(ok);
            assert_string_equal(out, r->out);
        } else {
            if (ok || strcmp(reason, r->reason) != 0)
                print_error("uuid row %s: ok=%d reason=%s\n", r->in, ok, reason);
            assert_false(ok);
            assert_string_equal(reason, r->reason);
        }
    }
}

/* The path's validation gives what the parse gives, for the canonical form
 * (copied without parsing) and for every other row and near miss. */
static void test_path_uuid_as_parsed(void **state)
{
    static const char *const near[] = {
        "67e55044-10b1-426f-9247-bb680e5fe0c8", "67E55044-10b1-426f-9247-bb680e5fe0c8",
        "67e55044-10b1-426f-9247-bb680e5fe0cg", "67e55044010b1-426f-9247-bb680e5fe0c8",
        "67e5504-410b1-426f-9247-bb680e5fe0c8", "67e55044-10b1-426f-9247-bb680e5fe0c",
        "67e55044-10b1-426f-9247-bb680e5fe0c8 ", "67e55044-10b1-426f-9247-bb680e5fe0\xc3",
    };
    (void)state;
    for (size_t i = 0; i < sizeof UUID_ROWS / sizeof UUID_ROWS[0] + sizeof near / sizeof near[0]; i++) {
        const char *in = i < sizeof UUID_ROWS / sizeof UUID_ROWS[0]
            ? UUID_ROWS[i].in : near[i - sizeof UUID_ROWS / sizeof UUID_ROWS[0]];
        char want[37] = "", got[37] = "", reason[128] = "";
        json_t *errs = json_array();
        int ok = us_uuid_parse(in, want, reason, sizeof reason);
        assert_int_equal(us_validate_path_uuid(errs, "session_id", in, got), ok);
        assert_int_equal(json_array_size(errs), !ok);
        if (ok)
            assert_string_equal(got, want);
        json_decref(errs);
    }
}

/* The path item for every failing row: input echoed, reason in msg and ctx. */
static void test_path_uuid_items(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof UUID_ROWS / sizeof UUID_ROWS[0]; i++) {
        const uuid_row *r = &UUID_ROWS[i];
        json_t *errs, *in;
        char out[37] = "", *in_text, expected[1024];
        int ok;

        if (!r->out && !strcmp(r->reason, "non-UTF8 input"))
            continue; /* paths are decoded first: see test_path_uuid_decoding */
        errs = json_array();
        ok = us_validate_path_uuid(errs, "session_id", r->in, out);
        assert_int_equal(ok, r->out != NULL);
        if (r->out) {
            assert_string_equal(out, r->out);
            check_items(r->in, errs, "[]");
        } else {
            in = json_string(r->in);
            in_text = json_dumps(in, JSON_ENCODE_ANY);
            snprintf(expected, sizeof expected,
                     "[{\"type\":\"uuid_parsing\",\"loc\":[\"path\",\"session_id\"],"
                     "\"msg\":\"Input should be a valid UUID, %s\",\"input\":%s,"
                     "\"ctx\":{\"error\":\"%s\"}}]",
                     r->reason, in_text, r->reason);
            check_items(r->in, errs, expected);
            free(in_text);
            json_decref(in);
        }
        json_decref(errs);
    }
}

/* Starlette decodes paths with errors="replace": bad bytes become U+FFFD. */
static void test_path_uuid_decoding(void **state)
{
    (void)state;
    static const struct {
        const char *in, *expected;
    } rows[] = {
        {"\xff", "[" UUID_ITEM("\"\\ufffd\"", "invalid character: found `\xef\xbf\xbd` at 1") "]"},
        {"ab\xc3", "[" UUID_ITEM("\"ab\\ufffd\"", "invalid character: found `\xef\xbf\xbd` at 3") "]"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        json_t *errs = json_array();
        char out[37];
        assert_false(us_validate_path_uuid(errs, "session_id", rows[i].in, out));
        check_items(rows[i].in, errs, rows[i].expected);
        json_decref(errs);
    }
}

/* A query UUID: absent is fine (out empty), canonical out, loc ["query", name]. */
static void test_query_uuid(void **state)
{
    (void)state;
    json_t *errs = json_array();
    char out[37] = "x";
    assert_true(us_validate_query_uuid(errs, "after", NULL, out));
    assert_string_equal(out, "");
    assert_true(us_validate_query_uuid(errs, "after", "{01234567-89AB-cdef-0123-456789abcdef}", out));
    assert_string_equal(out, "01234567-89ab-cdef-0123-456789abcdef");
    assert_int_equal(json_array_size(errs), 0);
    assert_false(us_validate_query_uuid(errs, "before", "abc", out));
    check_items("abc", errs,
                "[{\"type\":\"uuid_parsing\",\"loc\":[\"query\",\"before\"],"
                "\"msg\":\"Input should be a valid UUID, invalid length: expected length 32 "
                "for simple format, found 3\",\"input\":\"abc\",\"ctx\":{\"error\":"
                "\"invalid length: expected length 32 for simple format, found 3\"}}]");
    json_decref(errs);
}

/* ---- query int ------------------------------------------------------------ */

typedef struct {
    const char *raw;
    long long def, ge, le;
    int ok;
    long long out;
    const char *expected;
} qint_row;

static const qint_row QINT_ROWS[] = {
    {NULL, 10, 1, 100, 1, 10, "[]"}, /* absent: default, not validated */
    {"5", 10, 1, 100, 1, 5, "[]"},
    {"1", 10, 1, 100, 1, 1, "[]"},
    {"100", 10, 1, 100, 1, 100, "[]"},
    {"101", 10, 1, 100, 0, 10, "[" LE(Q_LIMIT, "\"101\"", 100) "]"},
    {"0", 10, 1, 100, 0, 10, "[" GE(Q_LIMIT, "\"0\"", 1) "]"},
    {"-5", 10, 1, 100, 0, 10, "[" GE(Q_LIMIT, "\"-5\"", 1) "]"},
    {"abc", 10, 1, 100, 0, 10, "[" INT_PARSING(Q_LIMIT, "\"abc\"") "]"},
    {"", 10, 1, 100, 0, 10, "[" INT_PARSING(Q_LIMIT, "\"\"") "]"},
    {"true", 10, 1, 100, 0, 10, "[" INT_PARSING(Q_LIMIT, "\"true\"") "]"},
    /* str_as_int / clean_int_str */
    {" 42 ", 10, 1, 100, 1, 42, "[]"},
    {"\t\n 9 \r\x0b\x0c", 10, 1, 100, 1, 9, "[]"},
    {"\xc2\xa0" "50" "\xe3\x80\x80", 10, 1, 100, 1, 50, "[]"}, /* Unicode White_Space */
    {"\xe2\x80\x8b" "5", 10, 1, 100, 0, 10, "[" INT_PARSING(Q_LIMIT, "\"\\u200b5\"") "]"},
    {"+7", 10, 1, 100, 1, 7, "[]"},
    {" +50", 10, 1, 100, 1, 50, "[]"},
    {"+ 50", 10, 1, 100, 0, 10, "[" INT_PARSING(Q_LIMIT, "\"+ 50\"") "]"},
    {"007", 10, 1, 100, 1, 7, "[]"},
    {"1_0", 10, 1, 100, 1, 10, "[]"},
    {"0_1", 10, 1, 100, 1, 1, "[]"},
    {"+0_50", 10, 1, 100, 1, 50, "[]"},
    {"1__0", 10, 1, 100, 0, 10, "[" INT_PARSING(Q_LIMIT, "\"1__0\"") "]"},
    {"_10", 10, 1, 100, 0, 10, "[" INT_PARSING(Q_LIMIT, "\"_10\"") "]"},
    {"10_", 10, 1, 100, 0, 10, "[" INT_PARSING(Q_LIMIT, "\"10_\"") "]"},
    {"10.0", 10, 1, 100, 1, 10, "[]"},
    {"10.000", 10, 1, 100, 1, 10, "[]"},
    {"00.0", 10, 1, 100, 0, 10, "[" GE(Q_LIMIT, "\"00.0\"", 1) "]"},
    {"-1.0", 10, 1, 100, 0, 10, "[" GE(Q_LIMIT, "\"-1.0\"", 1) "]"},
    {"10.", 10, 1, 100, 0, 10, "[" INT_PARSING(Q_LIMIT, "\"10.\"") "]"},
    {"10.5", 10, 1, 100, 0, 10, "[" INT_PARSING(Q_LIMIT, "\"10.5\"") "]"},
    {".0", 10, 1, 100, 0, 10, "[" INT_PARSING(Q_LIMIT, "\".0\"") "]"},
    {"1.0.0", 10, 1, 100, 0, 10, "[" INT_PARSING(Q_LIMIT, "\"1.0.0\"") "]"},
    {"1e1", 10, 1, 100, 0, 10, "[" INT_PARSING(Q_LIMIT, "\"1e1\"") "]"},
    {"0x10", 10, 1, 100, 0, 10, "[" INT_PARSING(Q_LIMIT, "\"0x10\"") "]"},
    {"--5", 10, 1, 100, 0, 10, "[" INT_PARSING(Q_LIMIT, "\"--5\"") "]"},
    {"+-5", 10, 1, 100, 0, 10, "[" INT_PARSING(Q_LIMIT, "\"+-5\"") "]"},
    {"-+5", 10, 1, 100, 0, 10, "[" INT_PARSING(Q_LIMIT, "\"-+5\"") "]"},
    {"-", 10, 1, 100, 0, 10, "[" INT_PARSING(Q_LIMIT, "\"-\"") "]"},
    {"+", 10, 1, 100, 0, 10, "[" INT_PARSING(Q_LIMIT, "\"+\"") "]"},
    {"5 0", 10, 1, 100, 0, 10, "[" INT_PARSING(Q_LIMIT, "\"5 0\"") "]"},
    {"\xd9\xa5", 10, 1, 100, 0, 10, "[" INT_PARSING(Q_LIMIT, "\"\\u0665\"") "]"},
    {"\xff", 10, 1, 100, 0, 10, "[" INT_PARSING(Q_LIMIT, "\"\\ufffd\"") "]"},
    /* pydantic-core quirk: strip_leading_zeros keeps a '-' after zeros */
    {"0-1", 10, 1, 100, 0, 10, "[" GE(Q_LIMIT, "\"0-1\"", 1) "]"},
    {"-0-1", 10, 1, 100, 0, 10, "[" INT_PARSING(Q_LIMIT, "\"-0-1\"") "]"},
    /* beyond long long: still an int, so a range error */
    {"99999999999999999999999", 10, 1, 100, 0, 10,
     "[" LE(Q_LIMIT, "\"99999999999999999999999\"", 100) "]"},
    {"-99999999999999999999999", 10, 1, 100, 0, 10,
     "[" GE(Q_LIMIT, "\"-99999999999999999999999\"", 1) "]"},
    {"1000000", 1, 1, LLONG_MAX, 1, 1000000, "[]"},
    {"9223372036854775807", 1, 1, LLONG_MAX, 1, LLONG_MAX, "[]"},
    {"9223372036854775808", 1, 1, LLONG_MAX, 0, 1,
     "[" ITEMC("less_than_equal", Q_LIMIT,
               "Input should be less than or equal to 9223372036854775807",
               "\"9223372036854775808\"", "{\"le\":9223372036854775807}") "]"},
    {"-9223372036854775808", 0, LLONG_MIN, LLONG_MAX, 1, LLONG_MIN, "[]"},
};

static void test_query_int(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof QINT_ROWS / sizeof QINT_ROWS[0]; i++) {
        const qint_row *r = &QINT_ROWS[i];
        json_t *errs = json_array();
        long long out = -42;
        int ok = us_validate_query_int(errs, "limit", r->raw, r->def, r->ge, r->le, &out);
        check_items(r->raw ? r->raw : "(absent)", errs, r->expected);
        assert_int_equal(ok, r->ok);
        assert_true(out == r->out);
        json_decref(errs);
    }
}

/* jiter refuses digit runs over 4300 (CPython's int limit) before cleaning. */
static void test_query_int_long(void **state)
{
    (void)state;
    static const struct {
        const char *prefix;
        size_t ones;
        const char *suffix;
        const char *type; /* NULL: less_than_equal */
    } rows[] = {
        {"", 4300, "", NULL},
        {"", 4301, "", "int_parsing_size"},
        {"", 4301, "x", "int_parsing_size"},
        {" ", 4301, "", "int_parsing"},
        {"+", 4301, "", "int_parsing"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        size_t n = strlen(rows[i].prefix) + rows[i].ones + strlen(rows[i].suffix);
        char *raw = malloc(n + 1), *expected = malloc(n + 512);
        json_t *errs = json_array();
        long long out;

        strcpy(raw, rows[i].prefix);
        memset(raw + strlen(rows[i].prefix), '1', rows[i].ones);
        strcpy(raw + strlen(rows[i].prefix) + rows[i].ones, rows[i].suffix);
        if (!rows[i].type)
            sprintf(expected, "[" LE(Q_LIMIT, "\"%s\"", 100) "]", raw);
        else if (!strcmp(rows[i].type, "int_parsing"))
            sprintf(expected, "[" INT_PARSING(Q_LIMIT, "\"%s\"") "]", raw);
        else
            sprintf(expected, "[" INT_SIZE(Q_LIMIT, "\"%s\"") "]", raw);
        assert_false(us_validate_query_int(errs, "limit", raw, 10, 1, 100, &out));
        check_items("long digits", errs, expected);
        json_decref(errs);
        free(raw);
        free(expected);
    }
}

/* ---- query bool / enum ------------------------------------------------- */

typedef struct {
    const char *raw;
    int ok, out;
    const char *expected;
} qbool_row;

static const qbool_row QBOOL_ROWS[] = {
    {NULL, 1, -1, "[]"},
    {"true", 1, 1, "[]"},  {"True", 1, 1, "[]"}, {"TRUE", 1, 1, "[]"},
    {"1", 1, 1, "[]"},     {"yes", 1, 1, "[]"},  {"YeS", 1, 1, "[]"},
    {"on", 1, 1, "[]"},    {"oN", 1, 1, "[]"},   {"t", 1, 1, "[]"},
    {"y", 1, 1, "[]"},     {"Y", 1, 1, "[]"},    {"false", 1, 0, "[]"},
    {"FaLsE", 1, 0, "[]"}, {"0", 1, 0, "[]"},    {"no", 1, 0, "[]"},
    {"off", 1, 0, "[]"},   {"f", 1, 0, "[]"},    {"n", 1, 0, "[]"},
    {"N", 1, 0, "[]"},
    {"maybe", 0, -1, "[" BOOL_PARSING(Q_EXP, "\"maybe\"") "]"},
    {"", 0, -1, "[" BOOL_PARSING(Q_EXP, "\"\"") "]"},
    {" true", 0, -1, "[" BOOL_PARSING(Q_EXP, "\" true\"") "]"},
    {"yes ", 0, -1, "[" BOOL_PARSING(Q_EXP, "\"yes \"") "]"},
    {"2", 0, -1, "[" BOOL_PARSING(Q_EXP, "\"2\"") "]"},
    {"01", 0, -1, "[" BOOL_PARSING(Q_EXP, "\"01\"") "]"},
    {"1.0", 0, -1, "[" BOOL_PARSING(Q_EXP, "\"1.0\"") "]"},
    {"tru", 0, -1, "[" BOOL_PARSING(Q_EXP, "\"tru\"") "]"},
    {"ye", 0, -1, "[" BOOL_PARSING(Q_EXP, "\"ye\"") "]"},
};

static void test_query_bool(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof QBOOL_ROWS / sizeof QBOOL_ROWS[0]; i++) {
        const qbool_row *r = &QBOOL_ROWS[i];
        json_t *errs = json_array();
        int out = 7;
        int ok = us_validate_query_bool(errs, "is_expired", r->raw, &out);
        check_items(r->raw ? r->raw : "(absent)", errs, r->expected);
        assert_int_equal(ok, r->ok);
        if (ok)
            assert_int_equal(out, r->out);
        json_decref(errs);
    }
}

typedef struct {
    const char *const *allowed;
    const char *raw;
    const char *out;
    const char *expected;
} qenum_row;

#define ING_EXPECTED "'PENDING', 'FAILED' or 'FINISHED'"
#define ENUM_ING(in)                                                           \
    ITEMC("enum", Q_INGST, "Input should be " ING_EXPECTED, in,                 \
          "{\"expected\":\"" ING_EXPECTED "\"}")

static const qenum_row QENUM_ROWS[] = {
    {INGEST_STATES, NULL, NULL, "[]"},
    {INGEST_STATES, "FAILED", "FAILED", "[]"},
    {INGEST_STATES, "PENDING", "PENDING", "[]"},
    {INGEST_STATES, "failed", NULL, "[" ENUM_ING("\"failed\"") "]"},
    {INGEST_STATES, "", NULL, "[" ENUM_ING("\"\"") "]"},
    {INGEST_STATES, " FAILED", NULL, "[" ENUM_ING("\" FAILED\"") "]"},
    {TWO, "C", NULL,
     "[" ITEMC("enum", Q_INGST, "Input should be 'A' or 'B'", "\"C\"",
               "{\"expected\":\"'A' or 'B'\"}") "]"},
    {ONE, "x", NULL,
     "[" ITEMC("enum", Q_INGST, "Input should be 'ONLY'", "\"x\"",
               "{\"expected\":\"'ONLY'\"}") "]"},
};

static void test_query_enum(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof QENUM_ROWS / sizeof QENUM_ROWS[0]; i++) {
        const qenum_row *r = &QENUM_ROWS[i];
        json_t *errs = json_array();
        const char *out = "junk";
        int ok = us_validate_query_enum(errs, "ingestion_status", r->raw, r->allowed, &out);
        check_items(r->raw ? r->raw : "(absent)", errs, r->expected);
        assert_int_equal(ok, r->raw == NULL || r->out != NULL);
        if (r->out)
            assert_string_equal(out, r->out);
        else
            assert_null(out);
        json_decref(errs);
    }
}

/* ---- body object -------------------------------------------------------- */

typedef struct {
    const char *ct;
    const char *raw;
    long len; /* -1: strlen(raw) */
    us_body_status status;
    const char *expected; /* errs after the call (they start as PRIOR) */
    const char *obj;      /* expected object when US_BODY_OK */
} body_row;

/* A path problem found earlier; json_invalid must replace it. */
#define PRIOR UUID_ITEM("\"abc\"", "invalid length: expected length 32 for simple format, found 3")

static const body_row BODY_ROWS[] = {
    /* empty body: missing, whatever the Content-Type */
    {"application/json", "", -1, US_BODY_INVALID, "[" PRIOR "," MISSING "]", NULL},
    {NULL, "", -1, US_BODY_INVALID, "[" PRIOR "," MISSING "]", NULL},
    {"text/plain", "", -1, US_BODY_INVALID, "[" PRIOR "," MISSING "]", NULL},
    {"application/json", NULL, 0, US_BODY_INVALID, "[" PRIOR "," MISSING "]", NULL},
    {"application/json", "null", -1, US_BODY_INVALID, "[" PRIOR "," MISSING "]", NULL},
    {"application/json", " null\n", -1, US_BODY_INVALID, "[" PRIOR "," MISSING "]", NULL},
    /* JSON but not an object */
    {"application/json", "[1,2]", -1, US_BODY_INVALID, "[" PRIOR "," MODEL_ATTRS("[1,2]") "]", NULL},
    {"application/json", "\"CLOSED\"", -1, US_BODY_INVALID,
     "[" PRIOR "," MODEL_ATTRS("\"CLOSED\"") "]", NULL},
    {"application/json", "42", -1, US_BODY_INVALID, "[" PRIOR "," MODEL_ATTRS("42") "]", NULL},
    {"application/json", "1.5", -1, US_BODY_INVALID, "[" PRIOR "," MODEL_ATTRS("1.5") "]", NULL},
    {"application/json", "true", -1, US_BODY_INVALID, "[" PRIOR "," MODEL_ATTRS("true") "]", NULL},
    /* not a JSON Content-Type: the raw body as a string */
    {NULL, "{}", -1, US_BODY_INVALID, "[" PRIOR "," MODEL_ATTRS("\"{}\"") "]", NULL},
    {"", "{}", -1, US_BODY_INVALID, "[" PRIOR "," MODEL_ATTRS("\"{}\"") "]", NULL},
    {"text/plain", "{\"status\":\"CLOSED\"}", -1, US_BODY_INVALID,
     "[" PRIOR "," MODEL_ATTRS("\"{\\\"status\\\":\\\"CLOSED\\\"}\"") "]", NULL},
    {"application/json/x", "{}", -1, US_BODY_INVALID, "[" PRIOR "," MODEL_ATTRS("\"{}\"") "]", NULL},
    {"application/jsonx", "{}", -1, US_BODY_INVALID, "[" PRIOR "," MODEL_ATTRS("\"{}\"") "]", NULL},
    {"application / json", "{}", -1, US_BODY_INVALID, "[" PRIOR "," MODEL_ATTRS("\"{}\"") "]", NULL},
    {"text/json", "{}", -1, US_BODY_INVALID, "[" PRIOR "," MODEL_ATTRS("\"{}\"") "]", NULL},
    {"multipart/form-data; boundary=x", "{}", -1, US_BODY_INVALID,
     "[" PRIOR "," MODEL_ATTRS("\"{}\"") "]", NULL},
    {"text/plain", "\xff\xfe" "ab", -1, US_BODY_INVALID,
     "[" PRIOR "," MODEL_ATTRS("\"\\ufffd\\ufffdab\"") "]", NULL},
    {"text/plain", "\xf0\x80\x80|\xe2\x82|\xed\xa0\x80", -1, US_BODY_INVALID,
     "[" PRIOR "," MODEL_ATTRS("\"\\ufffd\\ufffd\\ufffd|\\ufffd|\\ufffd\\ufffd\\ufffd\"") "]",
     NULL},
    {"text/plain", "a\0b", 3, US_BODY_INVALID, "[" PRIOR "," MODEL_ATTRS("\"a\\u0000b\"") "]", NULL},
    /* JSON Content-Types */
    {"application/json", "{}", -1, US_BODY_OK, "[" PRIOR "]", "{}"},
    {"APPLICATION/JSON; charset=utf-8", "{}", -1, US_BODY_OK, "[" PRIOR "]", "{}"},
    {" application/json ", "{}", -1, US_BODY_OK, "[" PRIOR "]", "{}"},
    {"application/vnd.api+json", "{}", -1, US_BODY_OK, "[" PRIOR "]", "{}"},
    {"Application/Merge-Patch+Json; x=y", "{}", -1, US_BODY_OK, "[" PRIOR "]", "{}"},
    {"application/+json", "{}", -1, US_BODY_OK, "[" PRIOR "]", "{}"},
    {"application/json", "\xef\xbb\xbf{\"a\":1}", -1, US_BODY_OK, "[" PRIOR "]", "{\"a\":1}"},
    {"application/json", "{\"status\":\"CLOSED\",\"extra\":[1]}", -1, US_BODY_OK, "[" PRIOR "]",
     "{\"status\":\"CLOSED\",\"extra\":[1]}"},
    /* invalid JSON: reported alone, position in characters */
    {"application/json", "x", -1, US_BODY_JSON_ERROR, "[" JSON_INVALID(0, "Expecting value") "]", NULL},
    {"application/json", "  ", -1, US_BODY_JSON_ERROR, "[" JSON_INVALID(2, "Expecting value") "]", NULL},
    {"application/json", "{", -1, US_BODY_JSON_ERROR,
     "[" JSON_INVALID(1, "Expecting property name enclosed in double quotes") "]", NULL},
    {"application/json", "[1,2", -1, US_BODY_JSON_ERROR,
     "[" JSON_INVALID(4, "Expecting ',' delimiter") "]", NULL},
    {"application/json", "{\"a\":1} x", -1, US_BODY_JSON_ERROR,
     "[" JSON_INVALID(8, "Extra data") "]", NULL},
    {"application/json", "[\"\xc3\xa9\", x]", -1, US_BODY_JSON_ERROR,
     "[" JSON_INVALID(6, "Expecting value") "]", NULL},
    {"application/json", "{\"status\":}", -1, US_BODY_JSON_ERROR,
     "[" JSON_INVALID(10, "Expecting value") "]", NULL},
    /* UnicodeDecodeError: 400, errs untouched */
    {"application/json", "\"\xff\"", -1, US_BODY_UNPARSABLE, "[" PRIOR "]", NULL},
};

static void test_body_object(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof BODY_ROWS / sizeof BODY_ROWS[0]; i++) {
        const body_row *r = &BODY_ROWS[i];
        json_t *errs = load("[" PRIOR "]"), *obj = NULL;
        size_t len = r->len < 0 ? strlen(r->raw) : (size_t)r->len;
        char name[96];
        us_body_status st;

        snprintf(name, sizeof name, "%zu ct=%s body=%.40s", i, r->ct ? r->ct : "(none)",
                 r->raw ? r->raw : "(null)");
        st = us_validate_body_object(errs, r->ct, r->raw, len, 0, &obj);
        check_items(name, errs, r->expected);
        if (st != r->status)
            print_error("row %s: status %d, want %d\n", name, st, r->status);
        assert_int_equal(st, r->status);
        if (r->obj) {
            json_t *want = load(r->obj);
            assert_true(json_equal(obj, want));
            json_decref(want);
        } else
            assert_null(obj);
        json_decref(obj);
        json_decref(errs);
    }
}

/* ---- body fields (values as json.loads gives them) ---------------------- */

typedef struct {
    const char *value; /* JSON text of the field, NULL = absent */
    int ok;
    long long out;
    const char *expected;
} field_row;

static json_t *body_with(const char *value)
{
    json_t *body = json_object();
    if (value)
        json_object_set_new(body, "f", load(value));
    json_object_set_new(body, "unrelated", json_string("ignored"));
    return body;
}

static const field_row BOOL_ROWS[] = {
    {NULL, 1, 1, "[]"}, /* absent: default (1 here) */
    {"true", 1, 1, "[]"},    {"false", 1, 0, "[]"},   {"\"yes\"", 1, 1, "[]"},
    {"\"No\"", 1, 0, "[]"},  {"\"OFF\"", 1, 0, "[]"}, {"\"on\"", 1, 1, "[]"},
    {"\"1\"", 1, 1, "[]"},   {"\"0\"", 1, 0, "[]"},   {"\"t\"", 1, 1, "[]"},
    {"\"F\"", 1, 0, "[]"},   {"1", 1, 1, "[]"},       {"0", 1, 0, "[]"},
    {"1.0", 1, 1, "[]"},     {"0.0", 1, 0, "[]"},     {"-0.0", 1, 0, "[]"},
    {"2", 0, 0, "[" BOOL_PARSING(B_F, "2") "]"},
    {"-1", 0, 0, "[" BOOL_PARSING(B_F, "-1") "]"},
    {"2.0", 0, 0, "[" BOOL_PARSING(B_F, "2.0") "]"},
    {"\"maybe\"", 0, 0, "[" BOOL_PARSING(B_F, "\"maybe\"") "]"},
    {"\"\"", 0, 0, "[" BOOL_PARSING(B_F, "\"\"") "]"},
    {"\" true\"", 0, 0, "[" BOOL_PARSING(B_F, "\" true\"") "]"},
    {"\"2\"", 0, 0, "[" BOOL_PARSING(B_F, "\"2\"") "]"},
    {"\"1\\u0000\"", 0, 0, "[" BOOL_PARSING(B_F, "\"1\\u0000\"") "]"},
    /* float_as_int failing (fraction, beyond i64) is bool_type */
    {"1.5", 0, 0, "[" BOOL_TYPE(B_F, "1.5") "]"},
    {"0.5", 0, 0, "[" BOOL_TYPE(B_F, "0.5") "]"},
    {"1e19", 0, 0, "[" BOOL_TYPE(B_F, "1e19") "]"},
    {"null", 0, 0, "[" BOOL_TYPE(B_F, "null") "]"},
    {"[]", 0, 0, "[" BOOL_TYPE(B_F, "[]") "]"},
    {"[true]", 0, 0, "[" BOOL_TYPE(B_F, "[true]") "]"},
    {"{}", 0, 0, "[" BOOL_TYPE(B_F, "{}") "]"},
};

static void test_body_bool(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof BOOL_ROWS / sizeof BOOL_ROWS[0]; i++) {
        const field_row *r = &BOOL_ROWS[i];
        json_t *errs = json_array(), *body = body_with(r->value);
        int out = 7;
        int ok = us_validate_body_bool(errs, body, "f", 1, &out);
        check_items(r->value ? r->value : "(absent)", errs, r->expected);
        assert_int_equal(ok, r->ok);
        if (ok)
            assert_int_equal(out, (int)r->out);
        json_decref(body);
        json_decref(errs);
    }
}

static const field_row INT_ROWS[] = {
    {NULL, 1, 86400, "[]"},
    {"1", 1, 1, "[]"},
    {"86400", 1, 86400, "[]"},
    {"0", 0, 0, "[" GE(B_F, "0", 1) "]"},
    {"-5", 0, 0, "[" GE(B_F, "-5", 1) "]"},
    {"86401", 0, 0, "[" LE(B_F, "86401", 86400) "]"},
    {"9223372036854775807", 0, 0, "[" LE(B_F, "9223372036854775807", 86400) "]"},
    /* floats: whole values accepted, fractions rejected */
    {"1.0", 1, 1, "[]"},
    {"86400.0", 1, 86400, "[]"},
    {"0.0", 0, 0, "[" GE(B_F, "0.0", 1) "]"},
    {"86401.0", 0, 0, "[" LE(B_F, "86401.0", 86400) "]"},
    {"1.5", 0, 0, "[" INT_FLOAT(B_F, "1.5") "]"},
    {"-0.5", 0, 0, "[" INT_FLOAT(B_F, "-0.5") "]"},
    {"1e-300", 0, 0, "[" INT_FLOAT(B_F, "1e-300") "]"},
    {"0.999999999999", 0, 0, "[" INT_FLOAT(B_F, "0.999999999999") "]"},
    {"9.2e18", 0, 0, "[" LE(B_F, "9.2e18", 86400) "]"},
    {"9.3e18", 0, 0, "[" INT_SIZE(B_F, "9.3e18") "]"},
    {"-9.3e18", 0, 0, "[" INT_SIZE(B_F, "-9.3e18") "]"},
    {"1e300", 0, 0, "[" INT_SIZE(B_F, "1e300") "]"},
    /* bools are ints in lax mode */
    {"true", 1, 1, "[]"},
    {"false", 0, 0, "[" GE(B_F, "false", 1) "]"},
    /* strings: str_as_int */
    {"\"60\"", 1, 60, "[]"},
    {"\" 60 \"", 1, 60, "[]"},
    {"\"6_0\"", 1, 60, "[]"},
    {"\"60.0\"", 1, 60, "[]"},
    {"\"60.5\"", 0, 0, "[" INT_PARSING(B_F, "\"60.5\"") "]"},
    {"\"abc\"", 0, 0, "[" INT_PARSING(B_F, "\"abc\"") "]"},
    {"\"6\\u00000\"", 0, 0, "[" INT_PARSING(B_F, "\"6\\u00000\"") "]"},
    {"\"0\"", 0, 0, "[" GE(B_F, "\"0\"", 1) "]"},
    /* not a number at all */
    {"null", 0, 0, "[" INT_TYPE(B_F, "null") "]"},
    {"[]", 0, 0, "[" INT_TYPE(B_F, "[]") "]"},
    {"[1]", 0, 0, "[" INT_TYPE(B_F, "[1]") "]"},
    {"{}", 0, 0, "[" INT_TYPE(B_F, "{}") "]"},
};

static void test_body_int(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof INT_ROWS / sizeof INT_ROWS[0]; i++) {
        const field_row *r = &INT_ROWS[i];
        json_t *errs = json_array(), *body = body_with(r->value);
        long long out = -1;
        int ok = us_validate_body_int(errs, body, "f", 86400, 1, 86400, &out);
        check_items(r->value ? r->value : "(absent)", errs, r->expected);
        assert_int_equal(ok, r->ok);
        if (ok)
            assert_true(out == r->out);
        json_decref(body);
        json_decref(errs);
    }
}

typedef struct {
    const char *value;
    const char *out; /* accepted value, NULL when rejected */
} choice_row;

static const choice_row ENUM_ROWS[] = {
    {NULL, "KEEP"},      {"\"KEEP\"", "KEEP"}, {"\"OVERWRITE\"", "OVERWRITE"},
    {"\"FAIL\"", "FAIL"}, {"\"keep\"", NULL},   {"\"X\"", NULL},
    {"\"\"", NULL},       {"\" KEEP\"", NULL},  {"\"KEEP\\u0000\"", NULL},
    {"1", NULL},          {"0", NULL},          {"1.5", NULL},
    {"true", NULL},       {"null", NULL},       {"[]", NULL},
    {"[\"KEEP\"]", NULL}, {"{\"a\":1}", NULL},
};

static void test_body_enum(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof ENUM_ROWS / sizeof ENUM_ROWS[0]; i++) {
        const choice_row *r = &ENUM_ROWS[i];
        json_t *errs = json_array(), *body = json_object();
        const char *out = NULL;
        char expected[512];
        int ok;

        if (r->value)
            json_object_set_new(body, "write_mode", load(r->value));
        ok = us_validate_body_enum(errs, body, "write_mode", WRITE_MODES, "KEEP", &out);
        if (r->out)
            snprintf(expected, sizeof expected, "[]");
        else
            snprintf(expected, sizeof expected, "[" ENUM_WM("%s") "]", r->value);
        check_items(r->value ? r->value : "(absent)", errs, expected);
        assert_int_equal(ok, r->out != NULL);
        if (r->out)
            assert_string_equal(out, r->out);
        json_decref(body);
        json_decref(errs);
    }
}

static const choice_row LITERAL_ROWS[] = {
    {NULL, "CLOSED"}, {"\"CLOSED\"", "CLOSED"}, {"\"OPEN\"", NULL},
    {"\"closed\"", NULL}, {"\"\"", NULL}, {"\" CLOSED\"", NULL},
    {"1", NULL}, {"true", NULL}, {"null", NULL}, {"[]", NULL},
    {"{\"status\":\"CLOSED\"}", NULL},
};

static void test_body_literal(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof LITERAL_ROWS / sizeof LITERAL_ROWS[0]; i++) {
        const choice_row *r = &LITERAL_ROWS[i];
        json_t *errs = json_array(), *body = json_object();
        char expected[512];
        int ok;

        if (r->value)
            json_object_set_new(body, "status", load(r->value));
        ok = us_validate_body_literal(errs, body, "status", "CLOSED");
        if (r->out)
            snprintf(expected, sizeof expected, "[]");
        else
            snprintf(expected, sizeof expected, "[" LIT_CLOSED("%s") "]", r->value);
        check_items(r->value ? r->value : "(absent)", errs, expected);
        assert_int_equal(ok, r->out != NULL);
        json_decref(body);
        json_decref(errs);
    }
}

/* Required fields of a body object (us_workspaces.c's name, us_files_delete.c's
 * names) and the type items of their values. */
typedef struct {
    const char *body;
    json_type type;
    const char *items; /* "[]": found */
} required_row;

static const required_row REQUIRED_ROWS[] = {
    {"{\"f\":\"x\"}", JSON_STRING, "[]"},
    {"{\"f\":[]}", JSON_ARRAY, "[]"},
    {"{\"f\":{}}", JSON_OBJECT, "[]"},
    {"{}", JSON_STRING, "[" ITEM("missing", B_F, "Field required", "{}") "]"},
    {"{\"g\":1}", JSON_ARRAY, "[" ITEM("missing", B_F, "Field required", "{\"g\":1}") "]"},
    {"{\"f\":null}", JSON_STRING,
     "[" ITEM("string_type", B_F, "Input should be a valid string", "null") "]"},
    {"{\"f\":\"x\"}", JSON_ARRAY, "[" ITEM("list_type", B_F, "Input should be a valid list", "\"x\"") "]"},
    {"{\"f\":[1]}", JSON_OBJECT,
     "[" ITEM("dict_type", B_F, "Input should be a valid dictionary", "[1]") "]"},
};

static void test_body_required(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof REQUIRED_ROWS / sizeof REQUIRED_ROWS[0]; i++) {
        const required_row *r = &REQUIRED_ROWS[i];
        json_t *errs = json_array(), *body = load(r->body);
        json_t *v = us_validate_body_required(errs, body, "f", r->type);

        check_items(r->body, errs, r->items);
        if (strcmp(r->items, "[]") == 0)
            assert_ptr_equal(v, json_object_get(body, "f"));
        else
            assert_null(v);
        json_decref(body);
        json_decref(errs);
    }
}

static void test_missing_and_type(void **state)
{
    (void)state;
    json_t *errs = json_array(), *v = load("7"), *list = load("[]");

    us_validate_missing(errs, "query", "file_name", NULL);
    us_validate_missing(errs, "body", "file", NULL);
    assert_int_equal(us_validate_json_type(errs, json_pack("[s,s,i]", "body", "names", 2), v,
                                           JSON_STRING), 0);
    assert_int_equal(us_validate_json_type(errs, json_pack("[s,s]", "body", "k"), v, JSON_OBJECT), 0);
    assert_int_equal(us_validate_json_type(errs, json_pack("[s,s]", "body", "k"), list, JSON_ARRAY), 1);
    check_items("missing, type", errs,
                "[" ITEM("missing", "[\"query\",\"file_name\"]", "Field required", "null")
                "," ITEM("missing", "[\"body\",\"file\"]", "Field required", "null")
                "," ITEM("string_type", "[\"body\",\"names\",2]", "Input should be a valid string", "7")
                "," ITEM("dict_type", "[\"body\",\"k\"]", "Input should be a valid dictionary", "7") "]");
    json_decref(list);
    json_decref(v);
    json_decref(errs);
}

/* Python repr() quoting in "expected". */
static void test_expected_repr(void **state)
{
    (void)state;
    static const char *const quoty[] = {"it's", "a\\b", NULL};
    json_t *errs = json_array();
    const char *out;

    assert_false(us_validate_query_enum(errs, "q", "z", quoty, &out));
    check_items("repr", errs,
                "[" ITEMC("enum", "[\"query\",\"q\"]",
                          "Input should be \\\"it's\\\" or 'a\\\\\\\\b'", "\"z\"",
                          "{\"expected\":\"\\\"it's\\\" or 'a\\\\\\\\b'\"}") "]");
    json_decref(errs);
}

/* ---- whole models and requests ----------------------------------------- */

typedef struct {
    const char *body;
    const char *wm;
    int ppe;
    long long exp;
    const char *expected;
} create_row;

static const create_row CREATE_ROWS[] = {
    {"{}", "KEEP", 0, 86400, "[]"}, /* every field defaults */
    {"{\"unknown\":1,\"write_mode\":\"FAIL\"}", "FAIL", 0, 86400, "[]"},
    {"{\"parallel_processing_enabled\":\"on\",\"expires_in_seconds\":\"3600\"}", "KEEP", 1, 3600, "[]"},
    {"{\"expires_in_seconds\":60,\"write_mode\":\"OVERWRITE\",\"parallel_processing_enabled\":true}",
     "OVERWRITE", 1, 60, "[]"},
    /* all problems, in model field order (not body key order) */
    {"{\"expires_in_seconds\":0,\"parallel_processing_enabled\":\"maybe\",\"write_mode\":\"X\"}",
     NULL, 0, 0,
     "[" ENUM_WM("\"X\"") "," BOOL_PARSING(B_PPE, "\"maybe\"") "," GE(B_EXP, "0", 1) "]"},
    {"{\"expires_in_seconds\":1.5,\"write_mode\":\"OVERWRITE\",\"x\":null}", NULL, 0, 0,
     "[" INT_FLOAT(B_EXP, "1.5") "]"},
    {"{\"write_mode\":null,\"parallel_processing_enabled\":null,\"expires_in_seconds\":null}",
     NULL, 0, 0,
     "[" ENUM_WM("null") "," BOOL_TYPE(B_PPE, "null") "," INT_TYPE(B_EXP, "null") "]"},
    {"{\"write_mode\":\"KEEP\",\"write_mode\":\"nope\"}", NULL, 0, 0, /* last key wins */
     "[" ENUM_WM("\"nope\"") "]"},
};

static void test_create_model(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof CREATE_ROWS / sizeof CREATE_ROWS[0]; i++) {
        const create_row *r = &CREATE_ROWS[i];
        json_t *errs = json_array(), *obj = NULL;
        const char *wm = NULL;
        int ppe = -1, all = 1;
        long long exp = -1;

        assert_int_equal(us_validate_body_object(errs, "application/json", r->body, strlen(r->body), 0, &obj),
                         US_BODY_OK);
        all &= us_validate_body_enum(errs, obj, "write_mode", WRITE_MODES, "KEEP", &wm);
        all &= us_validate_body_bool(errs, obj, "parallel_processing_enabled", 0, &ppe);
        all &= us_validate_body_int(errs, obj, "expires_in_seconds", 86400, 1, 86400, &exp);
        check_items(r->body, errs, r->expected);
        assert_int_equal(all, r->wm != NULL);
        if (r->wm) {
            assert_string_equal(wm, r->wm);
            assert_int_equal(ppe, r->ppe);
            assert_true(exp == r->exp);
        }
        json_decref(obj);
        json_decref(errs);
    }
}

/* PUT /upload_sessions/{id}: path first, then the body; bad JSON alone. */
typedef struct {
    const char *sid, *ct, *body;
    const char *expected;
} close_row;

static const close_row CLOSE_ROWS[] = {
    {CANON, "application/json", "{}", "[]"},
    {CANON, "application/json", "{\"status\":\"CLOSED\",\"x\":1}", "[]"},
    {CANON, "application/json", "{\"status\":\"OPEN\"}", "[" LIT_CLOSED("\"OPEN\"") "]"},
    {CANON, "application/json", "{\"status\":null}", "[" LIT_CLOSED("null") "]"},
    {"abc", "application/json", "{\"status\":\"OPEN\"}", "[" PRIOR "," LIT_CLOSED("\"OPEN\"") "]"},
    {"abc", "application/json", "", "[" PRIOR "," MISSING "]"},
    {"abc", "text/plain", "hi", "[" PRIOR "," MODEL_ATTRS("\"hi\"") "]"},
    {"abc", "application/json", "{\"status\":", "[" JSON_INVALID(10, "Expecting value") "]"},
};

static void test_close_request(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof CLOSE_ROWS / sizeof CLOSE_ROWS[0]; i++) {
        const close_row *r = &CLOSE_ROWS[i];
        json_t *errs = json_array(), *obj = NULL;
        char sid[37];

        us_validate_path_uuid(errs, "session_id", r->sid, sid);
        if (us_validate_body_object(errs, r->ct, r->body, strlen(r->body), 0, &obj) == US_BODY_OK)
            us_validate_body_literal(errs, obj, "status", "CLOSED");
        check_items(r->body, errs, r->expected);
        json_decref(obj);
        json_decref(errs);
    }
}

/* GET .../{id}/files?...: path, then query parameters in declaration order. */
static void test_files_request(void **state)
{
    (void)state;
    json_t *errs = json_array();
    char sid[37];
    const char *st;
    long long limit, page;

    assert_false(us_validate_path_uuid(errs, "session_id", "abc", sid));
    assert_false(us_validate_query_enum(errs, "ingestion_status", "DONE", INGEST_STATES, &st));
    assert_false(us_validate_query_int(errs, "limit", "101", 10, 1, 100, &limit));
    assert_false(us_validate_query_int(errs, "page_number", "x", 1, 1, LLONG_MAX, &page));
    check_items("files request", errs,
                "[" PRIOR "," ENUM_ING("\"DONE\"") "," LE(Q_LIMIT, "\"101\"", 100) ","
                INT_PARSING(Q_PAGE, "\"x\"") "]");
    json_decref(errs);

    errs = json_array();
    assert_true(us_validate_path_uuid(errs, "session_id", "{" CANON "}", sid));
    assert_string_equal(sid, CANON);
    assert_true(us_validate_query_enum(errs, "ingestion_status", NULL, INGEST_STATES, &st));
    assert_null(st);
    assert_true(us_validate_query_int(errs, "limit", NULL, 10, 1, 100, &limit));
    assert_true(us_validate_query_int(errs, "page_number", "3", 1, 1, LLONG_MAX, &page));
    assert_true(limit == 10 && page == 3);
    check_items("files request ok", errs, "[]");
    json_decref(errs);
}

/* A bound of `ge` alone (page_number): Python's int has no top, so a
 * value past long long is the last page there is, not a 422. */
static void test_query_int_without_top(void **state)
{
    json_t *errs = json_array();
    long long page = 0;
    (void)state;
    assert_true(us_validate_query_int_from(errs, "page_number", "9223372036854775808", 1, 1, &page));
    assert_true(page == LLONG_MAX);
    assert_true(us_validate_query_int_from(errs, "page_number", "99999999999999999999999", 1, 1,
                                           &page));
    assert_true(page == LLONG_MAX);
    assert_true(us_validate_query_int_from(errs, "page_number", " 7 ", 1, 1, &page));
    assert_int_equal(page, 7);
    assert_true(us_validate_query_int_from(errs, "page_number", NULL, 1, 1, &page));
    assert_int_equal(page, 1);
    check_items("no top", errs, "[]");
    assert_false(us_validate_query_int_from(errs, "page_number", "0", 1, 1, &page));
    assert_false(us_validate_query_int_from(errs, "page_number", "x", 1, 1, &page));
    assert_int_equal(page, 1);
    check_items("no top, refused", errs,
                "[" GE(Q_PAGE, "\"0\"", 1) "," INT_PARSING(Q_PAGE, "\"x\"") "]");
    json_decref(errs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verr_shape),
        cmocka_unit_test(test_api_md_reference),
        cmocka_unit_test(test_uuid_parse),
        cmocka_unit_test(test_path_uuid_as_parsed),
        cmocka_unit_test(test_path_uuid_items),
        cmocka_unit_test(test_path_uuid_decoding),
        cmocka_unit_test(test_query_uuid),
        cmocka_unit_test(test_query_int),
        cmocka_unit_test(test_query_int_long),
        cmocka_unit_test(test_query_bool),
        cmocka_unit_test(test_query_enum),
        cmocka_unit_test(test_body_object),
        cmocka_unit_test(test_body_bool),
        cmocka_unit_test(test_body_int),
        cmocka_unit_test(test_body_enum),
        cmocka_unit_test(test_body_literal),
        cmocka_unit_test(test_body_required),
        cmocka_unit_test(test_missing_and_type),
        cmocka_unit_test(test_expected_repr),
        cmocka_unit_test(test_create_model),
        cmocka_unit_test(test_close_request),
        cmocka_unit_test(test_files_request),
        cmocka_unit_test(test_query_int_without_top),
    };
    return fixture_run("us_validate", tests, NULL, NULL);
}

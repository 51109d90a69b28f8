/* Unit tests: routing, workspace names, query strings. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include "fixture.h"
#include <string.h>

#include <apr_general.h>
#include "us_router.h"


static void route(const char *path, const char *method, us_route *r)
{
    us_route_match(pool, path, method, r);
}

static void test_sessions_routes(void **state)
{
    us_route r;
    (void)state;
    route("/api/v1/workspaces/ws1/upload_sessions", "POST", &r);
    assert_int_equal(r.id, US_ROUTE_SESSIONS);
    assert_true(r.method_allowed);
    assert_string_equal(r.workspace, "ws1");
    assert_null(r.session_id);

    route("/api/v1/workspaces/ws1/upload_sessions/abc", "PUT", &r);
    assert_int_equal(r.id, US_ROUTE_SESSION);
    assert_string_equal(r.session_id, "abc");
    assert_true(r.method_allowed);

    route("/api/v1/workspaces/ws1/upload_sessions/abc/files", "GET", &r);
    assert_int_equal(r.id, US_ROUTE_SESSION_FILES);

    route("/api/v1/workspaces/ws1/files", "POST", &r);
    assert_int_equal(r.id, US_ROUTE_FILES);
    assert_true(r.method_allowed);
    route("/api/v1/workspaces/ws1/files/f1", "GET", &r);
    assert_int_equal(r.id, US_ROUTE_FILE);
    assert_string_equal(r.file_id, "f1");
    assert_null(r.session_id);
    route("/api/v1/workspaces/ws1/files/f1/meta", "POST", &r);
    assert_int_equal(r.id, US_ROUTE_FILE_META);
    assert_false(r.method_allowed);
    assert_string_equal(r.allow, "GET, HEAD, PUT, PATCH");

    route("/api/v1/health", "GET", &r);
    assert_int_equal(r.id, US_ROUTE_HEALTH);
    assert_true(r.method_allowed);
    route("/api/v1/health", "POST", &r);
    assert_false(r.method_allowed);
    assert_string_equal(r.allow, "GET, HEAD");
    route("/api/v1/health/x", "GET", &r);
    assert_int_equal(r.id, US_ROUTE_NOT_FOUND);

    route("/api/v1/openapi.json", "GET", &r);
    assert_int_equal(r.id, US_ROUTE_OPENAPI);
    assert_true(r.method_allowed);
    route("/api/v1/openapi.json", "PUT", &r);
    assert_false(r.method_allowed);
    assert_string_equal(r.allow, "GET, HEAD");
    route("/api/v1/openapi", "GET", &r);
    assert_int_equal(r.id, US_ROUTE_NOT_FOUND);

    route("/api/v1/workspaces", "POST", &r);
    assert_int_equal(r.id, US_ROUTE_WORKSPACES);
    assert_true(r.method_allowed);
    assert_null(r.workspace);
    route("/api/v1/workspaces", "DELETE", &r);
    assert_false(r.method_allowed);
    assert_string_equal(r.allow, "GET, HEAD, POST");
    route("/api/v1/workspaces/ws1", "DELETE", &r);
    assert_int_equal(r.id, US_ROUTE_WORKSPACE);
    assert_true(r.method_allowed);
    assert_string_equal(r.workspace, "ws1");
    route("/api/v1/workspaces/ws1", "POST", &r);
    assert_false(r.method_allowed);
    assert_string_equal(r.allow, "GET, HEAD, DELETE");

    route("/api/v1/upload_target/xyz", "POST", &r);
    assert_int_equal(r.id, US_ROUTE_UPLOAD_TARGET);
    assert_string_equal(r.session_id, "xyz");
}

static void test_update_meta_route(void **state)
{
    us_route r;
    (void)state;
    route("/api/v1/workspaces/ws/files/update-meta", "POST", &r);
    assert_int_equal(r.id, US_ROUTE_FILES_UPDATE_META);
    assert_true(r.method_allowed);
    assert_string_equal(r.workspace, "ws");
    /* as Starlette: a route that allows the method wins over one that
     * matches the path alone; GET and DELETE are files/{}'s */
    static const char *const by_file_route[] = { "GET", "DELETE" };
    for (size_t i = 0; i < 2; i++) {
        route("/api/v1/workspaces/ws/files/update-meta", by_file_route[i], &r);
        assert_true(r.id == US_ROUTE_FILE && r.method_allowed);
        assert_string_equal(r.file_id, "update-meta");
    }
    route("/api/v1/workspaces/ws/files/update-meta", "PUT", &r);
    assert_true(r.id == US_ROUTE_FILES_UPDATE_META && !r.method_allowed);
    assert_string_equal(r.allow, "POST");
    route("/api/v1/workspaces/ws/files/f1/meta", "PATCH", &r);
    assert_int_equal(r.id, US_ROUTE_FILE_META);
    assert_true(r.method_allowed);
    route("/api/v1/workspaces/ws/files/f1", "DELETE", &r);
    assert_int_equal(r.id, US_ROUTE_FILE);
    assert_true(r.method_allowed);
}

static void test_method_not_allowed(void **state)
{
    us_route r;
    (void)state;
    route("/api/v1/workspaces/ws/upload_sessions", "DELETE", &r);
    assert_int_equal(r.id, US_ROUTE_SESSIONS);
    assert_false(r.method_allowed);
    assert_string_equal(r.allow, "GET, HEAD, POST");
    route("/api/v1/workspaces/ws/upload_sessions/x", "POST", &r);
    assert_false(r.method_allowed);
    assert_string_equal(r.allow, "GET, HEAD, PUT, DELETE");
    /* HEAD is served like GET */
    route("/api/v1/workspaces/ws/upload_sessions/x", "HEAD", &r);
    assert_true(r.method_allowed);
    /* a method name that merely contains an allowed one */
    route("/api/v1/workspaces/ws/upload_sessions/x", "GE", &r);
    assert_false(r.method_allowed);
}

static void test_not_found_and_not_ours(void **state)
{
    static const struct {
        const char *path;
        int redirect_slash; /* the path without its last '/' is a route */
    } not_found[] = {
        { "/api/v1", 0 }, { "/api/v1/", 0 }, { "/api/v1/workspaces/", 1 },
        { "/api/v1/workspaces/ws/", 1 }, { "/api/v1/workspaces/ws/upload_sessions/", 1 },
        { "/api/v1/workspaces/ws/upload_sessions//", 0 }, { "/api/v1/workspaces/ws/nope/", 0 },
        { "/api/v1/workspaces//upload_sessions", 0 },
        { "/api/v1/workspaces/ws/upload_sessions/a/b", 0 }, { "/api/v1/nope", 0 },
        { "/api/v1/workspaces/ws/upload_sessions/a/files/x/y/z/w/v", 0 },
    };
    us_route r;
    (void)state;
    for (size_t i = 0; i < sizeof(not_found) / sizeof(not_found[0]); i++) {
        route(not_found[i].path, "GET", &r);
        assert_int_equal(r.id, US_ROUTE_NOT_FOUND);
        assert_int_equal(r.redirect_slash, not_found[i].redirect_slash);
    }
    /* whatever the method, as Starlette (its route then answers 405); a
     * preflight there names the route's methods */
    route("/api/v1/workspaces/ws/upload_sessions/a/", "PATCH", &r);
    assert_true(r.id == US_ROUTE_NOT_FOUND && r.redirect_slash);
    assert_string_equal(r.allow, "GET, HEAD, PUT, DELETE");
    route("/api/v1/nope/", "GET", &r);
    assert_null(r.allow);
    route("/api/v1/health", "GET", &r);
    assert_false(r.redirect_slash);
    static const char *const not_ours[] = { "/", "/api/v10/x", "/index.html" };
    for (size_t i = 0; i < sizeof(not_ours) / sizeof(not_ours[0]); i++) {
        route(not_ours[i], "GET", &r);
        assert_true(r.id == US_ROUTE_NONE && !r.redirect_slash);
    }
}

static void test_workspace_names(void **state)
{
    char long_ok[65], too_long[66];
    (void)state;
    memset(long_ok, 'a', 64);
    long_ok[64] = '\0';
    memset(too_long, 'a', 65);
    too_long[65] = '\0';
    assert_true(us_workspace_name_valid("default"));
    assert_true(us_workspace_name_valid("A1_b.c-d"));
    assert_true(us_workspace_name_valid("9"));
    assert_true(us_workspace_name_valid(long_ok));
    assert_false(us_workspace_name_valid(too_long));
    assert_false(us_workspace_name_valid(""));
    assert_false(us_workspace_name_valid("-x"));
    assert_false(us_workspace_name_valid(".x"));
    assert_false(us_workspace_name_valid("bad name"));
    assert_false(us_workspace_name_valid("a/b"));
    assert_false(us_workspace_name_valid("a'b"));
    assert_false(us_workspace_name_valid("caf\xc3\xa9"));
}

static void test_query(void **state)
{
    (void)state;
    assert_null(us_query_get(pool, NULL, "limit"));
    assert_null(us_query_get(pool, "", "limit"));
    assert_null(us_query_get(pool, "limitx=1", "limit"));
    assert_string_equal(us_query_get(pool, "limit=5", "limit"), "5");
    assert_string_equal(us_query_get(pool, "a=1&limit=5&b=2", "limit"), "5");
    /* repeated: the last wins, as Starlette's QueryParams.get */
    assert_string_equal(us_query_get(pool, "limit=5&limit=7", "limit"), "7");
    assert_string_equal(us_query_get(pool, "limit=", "limit"), "");
    assert_string_equal(us_query_get(pool, "limit", "limit"), "");
    assert_string_equal(us_query_get(pool, "name=a+b%20c", "name"), "a b c");
    assert_string_equal(us_query_get(pool, "na%6De=x", "name"), "x");
    /* malformed escapes stay as they are */
    assert_string_equal(us_query_get(pool, "name=%zz%4", "name"), "%zz%4");
    assert_string_equal(us_query_get(pool, "name=%27%3B--", "name"), "';--");
    /* %00 stays text: no value cut short, no key taken for another */
    assert_string_equal(us_query_get(pool, "limit=5%00abc", "limit"), "5%00abc");
    assert_null(us_query_get(pool, "limit%00x=500", "limit"));
    assert_string_equal(us_query_get(pool, "limit%00x=500&limit=5", "limit"), "5");
    assert_string_equal(us_query_get(pool, "name=a%01b", "name"), "a\001b");
}

/* Starlette's errors="replace": one U+FFFD per maximal ill-formed subpart */
static void test_query_ill_formed_utf8(void **state)
{
    (void)state;
    assert_string_equal(us_query_get(pool, "name=%FF", "name"), "\xEF\xBF\xBD");
    assert_string_equal(us_query_get(pool, "name=a%C3%28b", "name"), "a\xEF\xBF\xBD(b");
    /* a cut sequence is one subpart; a stray continuation byte is one each */
    assert_string_equal(us_query_get(pool, "name=%E2%82", "name"), "\xEF\xBF\xBD");
    assert_string_equal(us_query_get(pool, "name=%80%80", "name"),
                        "\xEF\xBF\xBD\xEF\xBF\xBD");
    assert_string_equal(us_query_get(pool, "name=caf%C3%A9", "name"), "caf\xC3\xA9");
    assert_string_equal(us_query_get(pool, "name=caf\xC3\xA9", "name"), "caf\xC3\xA9");
}

static void test_api_prefix(void **state)
{
    (void)state;
    assert_true(us_path_is_api("/api/v1"));
    assert_true(us_path_is_api("/api/v1/"));
    assert_true(us_path_is_api("/api/v1/workspaces/x/upload_sessions"));
    assert_false(us_path_is_api("/api/v1x"));
    assert_false(us_path_is_api("/api/v2/workspaces"));
    assert_false(us_path_is_api("/api"));
    assert_false(us_path_is_api("/"));
    assert_false(us_path_is_api("/api/v1%2Fx"));
    assert_true(us_raw_path_is_api("/api/v1/workspaces"));
    assert_true(us_raw_path_is_api("/api/v1"));
    assert_true(us_raw_path_is_api("/api/v1%2Fworkspaces"));
    assert_true(us_raw_path_is_api("/api/v1%2f"));
    assert_true(us_raw_path_is_api("/api/v1%00"));
    assert_false(us_raw_path_is_api("/api/v1%20"));
    assert_false(us_raw_path_is_api("/api/v1%2"));
    assert_false(us_raw_path_is_api("/api/v1%"));
    assert_false(us_raw_path_is_api("/api/v1x%2F"));
    assert_false(us_raw_path_is_api("/api/v2%2F"));
}

static void test_refused_escapes(void **state)
{
    (void)state;
    assert_true(us_path_has_refused_escape("/api/v1/workspaces/a%2Fb", 1));
    assert_true(us_path_has_refused_escape("/api/v1/workspaces/a%2fb", 1));
    assert_true(us_path_has_refused_escape("/a%00", 1));
    assert_true(us_path_has_refused_escape("/a%00", 0));
    assert_true(us_path_has_refused_escape("%2F", 1));
    assert_true(us_path_has_refused_escape("/a%20b%2F", 1));
    /* AllowEncodedSlashes On/NoDecode: the core takes %2F */
    assert_false(us_path_has_refused_escape("/a%2Fb", 0));
    /* %25 is '%': %252F decodes to the text "%2F" */
    assert_false(us_path_has_refused_escape("/a%252Fb", 1));
    assert_false(us_path_has_refused_escape("/a%2500", 1));
    assert_false(us_path_has_refused_escape("/a/b", 1));
    assert_false(us_path_has_refused_escape("/a%20b", 1));
    assert_false(us_path_has_refused_escape("", 1));
    /* a malformed escape anywhere is the core's 400, not a 404 */
    assert_false(us_path_has_refused_escape("/a%2Fb%zz", 1));
    assert_false(us_path_has_refused_escape("/a%2Fb%2", 1));
    assert_false(us_path_has_refused_escape("/a%2Fb%", 1));
    assert_false(us_path_has_refused_escape("/a%", 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sessions_routes),
        cmocka_unit_test(test_method_not_allowed),
        cmocka_unit_test(test_update_meta_route),
        cmocka_unit_test(test_not_found_and_not_ours),
        cmocka_unit_test(test_workspace_names),
        cmocka_unit_test(test_query),
        cmocka_unit_test(test_query_ill_formed_utf8),
        cmocka_unit_test(test_api_prefix),
        cmocka_unit_test(test_refused_escapes),
    };
    return fixture_run("us_router", tests, NULL, NULL);
}

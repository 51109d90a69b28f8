"""Authentication, workspace grants and names, routing errors."""

import http.client
import uuid

import pytest

from us_testkit.api import (INVALID_KEY, METHOD_NOT_ALLOWED, NOT_AUTHENTICATED,
                            ROUTE_NOT_FOUND, WS_NOT_FOUND, check, close_session,
                            create_session, describe, detail_of, e_missing, get_status, list_sessions,
                            not_found_text, session_path, sessions_path, unique_ws, v422)


def endpoints(ws, sid):
    """(method, path, json body) for every endpoint of the issue."""
    return [
        ("GET", sessions_path(ws), None),
        ("POST", sessions_path(ws), {}),
        ("GET", session_path(ws, sid), None),
        ("PUT", session_path(ws, sid), {"status": "CLOSED"}),
    ]


def call(client, method, path, body):
    if body is None:
        return client.request(method, path)
    return client.request(method, path, json=body)


# ---------------------------------------------------------------------------
# 401
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Basic dXNlcjpwYXNz"},
    {"Authorization": "Token abcdef"},
    {"Authorization": "Bearer"},
    {"Authorization": ""},
], ids=["none", "basic", "token", "bearer-without-key", "empty"])
def test_not_authenticated(srv, api, headers):
    ws = unique_ws()
    sid = create_session(api, ws)["session_id"]
    anon = srv.client(None, headers=headers)
    for method, path, body in endpoints(ws, sid):
        r = call(anon, method, path, body)
        check(r, 401, NOT_AUTHENTICATED)
        assert r.headers.get("www-authenticate", "").strip().lower().startswith("bearer"), \
            (method, path, dict(r.headers))
    # nothing happened
    assert get_status(api, ws, sid)["status"] == "OPEN"
    assert list_sessions(api, ws)["total"] == 1


def test_bearer_key_of_other_scheme_is_not_authenticated(srv, api):
    """A valid key under another scheme is still 'Not authenticated'."""
    ws = unique_ws()
    anon = srv.client(None, headers={"Authorization": f"Basic {srv.key_all}"})
    r = anon.get(sessions_path(ws))
    check(r, 401, NOT_AUTHENTICATED)
    assert r.headers.get("www-authenticate", "").lower().startswith("bearer")


@pytest.mark.parametrize("key", ["nope", "x" * 43, "A" * 200],
                         ids=["short", "key-sized", "long"])
def test_invalid_api_key(srv, api, key):
    ws = unique_ws()
    sid = create_session(api, ws)["session_id"]
    bad = srv.client(key)
    for method, path, body in endpoints(ws, sid):
        check(call(bad, method, path, body), 401, INVALID_KEY)
    assert get_status(api, ws, sid)["status"] == "OPEN"
    assert list_sessions(api, ws)["total"] == 1


def test_invalid_key_close_to_a_real_one(srv, api):
    ws = unique_ws()
    k = srv.key_all
    for key in (k[:-1], k + "x", k.upper() if k.upper() != k else k.lower()):
        check(srv.client(key).get(sessions_path(ws)), 401, INVALID_KEY)


# ---------------------------------------------------------------------------
# 403: key not granted the workspace
# ---------------------------------------------------------------------------

def test_key_granted_a_gets_403_on_b(srv, api):
    ca = srv.client(srv.user_a)
    # granted workspace works
    check(ca.get(sessions_path("ws-a")), 200)
    sid_a = create_session(ca, "ws-a")["session_id"]
    st = get_status(ca, "ws-a", sid_a)
    assert st["created_by"] == srv.user_a.created_by

    ws_b = unique_ws("ws-b")
    sid_b = create_session(api, ws_b)["session_id"]
    for method, path, body in endpoints(ws_b, sid_b):
        d = detail_of(call(ca, method, path, body), 403)
        assert ws_b in d, (method, path, d)
    # same for a session id that does not exist in B, and for ws-a's own id
    for sid in (str(uuid.uuid4()), sid_a):
        for method, path, body in endpoints(ws_b, sid)[2:]:
            d = detail_of(call(ca, method, path, body), 403)
            assert ws_b in d
    # nothing was created or closed in B
    d = list_sessions(api, ws_b)
    assert d["total"] == 1 and [i["session_id"] for i in d["data"]] == [sid_b]
    assert d["data"][0]["status"] == "OPEN"
    close_session(ca, "ws-a", sid_a)


def test_auth_checked_before_body_validation(srv, api):
    ws = unique_ws()
    sid = create_session(api, ws)["session_id"]
    anon = srv.client(None)
    bad = srv.client("not-a-key")
    ca = srv.client(srv.user_a)
    for method, path in (("POST", sessions_path(ws)), ("PUT", session_path(ws, sid))):
        for raw, ctype in ((b"", "application/json"), (b'{"status":', "application/json"),
                           (b"[1]", "application/json"), (b"x=1", "text/plain")):
            h = {"Content-Type": ctype}
            check(anon.request(method, path, content=raw, headers=h), 401, NOT_AUTHENTICATED)
            check(bad.request(method, path, content=raw, headers=h), 401, INVALID_KEY)
            assert ws in detail_of(ca.request(method, path, content=raw, headers=h), 403)
    check(anon.post(sessions_path(ws), json={"write_mode": "X"}), 401, NOT_AUTHENTICATED)
    check(anon.put(session_path(ws, sid), json={"status": "OPEN"}), 401, NOT_AUTHENTICATED)
    # and the authorised key does get the 422
    check(api.put(session_path(ws, sid), content=b"", headers={"Content-Type":
                                                               "application/json"}),
          422, v422(e_missing()))
    assert get_status(api, ws, sid)["status"] == "OPEN"


# ---------------------------------------------------------------------------
# workspace isolation
# ---------------------------------------------------------------------------

def test_session_of_a_is_404_from_another_workspace(srv, api):
    ws_x = unique_ws("ws-x")
    ws_y = unique_ws("ws-y")
    sid = create_session(api, ws_x)["session_id"]
    create_session(api, ws_y)
    body = {"detail": not_found_text(sid)}
    check(api.get(session_path(ws_y, sid)), 404, body)
    check(api.put(session_path(ws_y, sid), json={"status": "CLOSED"}), 404, body)
    check(api.put(session_path(ws_y, sid), json={}), 404, body)
    check(api.get(session_path(ws_y, sid.replace("-", "").upper())), 404, body)
    d = list_sessions(api, ws_y)
    assert d["total"] == 1 and sid not in [i["session_id"] for i in d["data"]]
    # untouched in its own workspace
    assert get_status(api, ws_x, sid)["status"] == "OPEN"
    close_session(api, ws_x, sid)
    check(api.put(session_path(ws_y, sid), json={}), 404, body)


# ---------------------------------------------------------------------------
# workspace names
# ---------------------------------------------------------------------------

BAD_NAMES = ["bad%20name", "-x", "_x", ".x", "a" * 65, "%C3%A4bc", "ws%21", "a+b"]


@pytest.mark.parametrize("name", BAD_NAMES, ids=["space", "dash-first", "underscore-first",
                                                 "dot-first", "65-chars", "non-ascii",
                                                 "bang", "plus"])
def test_invalid_workspace_name_is_404(srv, name):
    sid = str(uuid.uuid4())
    for user in (srv.user_all, srv.user_a):
        c = srv.client(user)
        for method, path, body in endpoints(name, sid):
            check(call(c, method, path, body), 404, WS_NOT_FOUND)


def test_valid_workspace_name_edges(srv, api):
    for name in ("a" * 64, "A", "9", "a.b_c-d", "x" + "-" * 63):
        check(api.get(sessions_path(name)), 200, {"data": [], "has_more": False, "total": 0})
    ws = "Z" + "a" * 63
    sid = create_session(api, ws)["session_id"]
    assert get_status(api, ws, sid)["status"] == "OPEN"


# ---------------------------------------------------------------------------
# routing
# ---------------------------------------------------------------------------

def test_unknown_routes_are_404_not_found(srv, api):
    ws = unique_ws()
    raw = srv.client(srv.user_all)
    sid = str(uuid.uuid4())
    paths = [
        "/api/v1/nope",
        f"/api/v1/workspaces/{ws}/nope",
        f"/api/v1/workspaces/{ws}/upload_session",
        f"/api/v1/workspaces/{ws}/upload_sessions/{sid}/nope",
        f"/api/v1/workspaces/{ws}/upload_sessions/{sid}/files/x/y",
    ]
    for p in paths:
        r = raw.get(srv.public_url + p)
        check(r, 404, ROUTE_NOT_FOUND)


def test_a_route_with_a_trailing_slash_is_redirected_without_it(srv, api):
    """FastAPI's redirect_slashes: 307 to the path without the '/', its query
    kept, an empty body, before any key is asked for (the route's own
    answer, 405 included, comes at the new address); a path that is no route
    without its '/' either stays 404."""
    ws = unique_ws()
    sid = create_session(api, ws)["session_id"]
    raw = srv.raw_client()
    base = srv.public_url + "/api/v1/workspaces"
    for method, path, query in [
        ("GET", f"/{ws}/upload_sessions/", "limit=2&after=x%20y"),
        ("POST", f"/{ws}/upload_sessions/", ""),
        ("PUT", f"/{ws}/upload_sessions/{sid}/", ""),
        ("PATCH", f"/{ws}/upload_sessions/{sid}/", ""),
        ("GET", "/", ""),
    ]:
        r = raw.request(method, base + path + ("?" + query if query else ""),
                        json={"status": "CLOSED"} if method == "PUT" else None)
        assert r.status_code == 307, describe(r)
        assert r.content == b"", describe(r)
        want = base + path[:-1] + ("?" + query if query else "")
        assert r.headers.get("location") == want, describe(r)
    assert get_status(api, ws, sid)["status"] == "OPEN"
    # an empty query ("...?") is none, as Starlette's URL has it
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    try:
        conn.request("GET", f"/api/v1/workspaces/{ws}/upload_sessions/?")
        r = conn.getresponse()
        assert (r.status, r.getheader("location"), r.read()) == \
            (307, f"{base}/{ws}/upload_sessions", b""), r.getheaders()
    finally:
        conn.close()
    for path in ["/api/v1/", f"/api/v1/workspaces/{ws}/nope/"]:
        check(raw.get(srv.public_url + path), 404, ROUTE_NOT_FOUND)


@pytest.mark.parametrize("method", ["DELETE", "PUT", "PATCH"])
def test_wrong_method_on_collection_is_405(srv, api, method):
    ws = unique_ws()
    r = api.request(method, sessions_path(ws), json={})
    check(r, 405, METHOD_NOT_ALLOWED)
    allow = {m.strip().upper() for m in r.headers.get("allow", "").split(",")}
    assert {"GET", "POST"} <= allow, r.headers
    assert method not in allow


@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_wrong_method_on_session_is_405(srv, api, method):
    ws = unique_ws()
    sid = create_session(api, ws)["session_id"]
    r = api.request(method, session_path(ws, sid), json={"status": "CLOSED"})
    check(r, 405, METHOD_NOT_ALLOWED)
    allow = {m.strip().upper() for m in r.headers.get("allow", "").split(",")}
    assert {"GET", "PUT", "DELETE"} <= allow, r.headers
    assert method not in allow
    assert get_status(api, ws, sid)["status"] == "OPEN"


def test_every_json_answer_is_application_json(srv, api):
    """check() asserts Content-Type on each of these."""
    ws = unique_ws()
    sid = create_session(api, ws)["session_id"]
    check(api.get(sessions_path(ws)), 200)
    check(api.get(session_path(ws, sid)), 200)
    check(api.get(sessions_path(ws), params={"limit": "x"}), 422)
    check(api.get(session_path(ws, str(uuid.uuid4()))), 404)
    check(srv.client(None).get(sessions_path(ws)), 401)
    check(srv.client("bad").get(sessions_path(ws)), 401)
    check(srv.client(srv.user_a).get(sessions_path(ws)), 403)
    check(api.get(sessions_path("-bad")), 404)
    check(api.delete(sessions_path(ws)), 405)
    close_session(api, ws, sid)
    check(api.put(session_path(ws, sid), json={}), 409)


# ---------------------------------------------------------------------------
# encoded '/' and NUL in the path: httpd's core refuses them with its HTML
# 404 page; under the API prefix the answer is the contract's JSON 404
# ---------------------------------------------------------------------------

ENCODED_REFUSED = ["%2F", "%2f", "%00"]


def raw_get(srv, target, method="GET", headers=()):
    """Sends target byte for byte (no client-side normalisation of the
    escapes); returns (status, headers dict lower-cased, body bytes)."""
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
    try:
        conn.putrequest(method, target, skip_accept_encoding=True)
        for k, v in headers:
            conn.putheader(k, v)
        conn.endheaders()
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def assert_json_not_found(status, headers, body, what):
    assert status == 404, (what, status, headers, body)
    assert headers.get("content-type") == "application/json", (what, headers)
    assert body == b'{"detail":"Not Found"}', (what, body)


@pytest.mark.parametrize("esc", ENCODED_REFUSED, ids=["2F", "2f", "00"])
def test_encoded_slash_or_nul_in_api_path_is_json_404(srv, api, esc):
    ws = unique_ws()
    sid = create_session(api, ws)["session_id"]
    fid = str(uuid.uuid4())
    auth = [("Authorization", f"Bearer {srv.key_all}")]
    targets = [
        f"/api/v1/workspaces/a{esc}b/upload_sessions",
        f"/api/v1/workspaces/{ws}{esc}/upload_sessions",
        f"/api/v1/workspaces/{esc}{ws}/upload_sessions/{sid}",
        f"/api/v1/workspaces/{ws}/upload_sessions/{sid}{esc}",
        f"/api/v1/workspaces/{ws}/upload_sessions/{sid[:8]}{esc}{sid[9:]}",
        f"/api/v1/workspaces/{ws}/upload_sessions/{sid}{esc}files",
        f"/api/v1/workspaces/{ws}/files/{fid}{esc}meta",
        f"/api/v1/upload_target/{sid}{esc}x",
        f"/api/v1/workspaces/{ws}/upload_sessions{esc}?limit=1",
        f"/api/v1{esc}",
    ]
    for target in targets:
        for method, hdrs in (("GET", auth), ("GET", ()), ("PUT", auth), ("POST", ())):
            st, h, body = raw_get(srv, target, method, hdrs)
            assert_json_not_found(st, h, body, (method, target, bool(hdrs)))
    # the session was not touched by the PUTs
    assert get_status(api, ws, sid)["status"] == "OPEN"
    # a HEAD gets the status and the headers
    st, h, body = raw_get(srv, f"/api/v1/workspaces/a{esc}b/upload_sessions", "HEAD", auth)
    assert st == 404 and h.get("content-type") == "application/json" and body == b"", (st, h)


def test_encoded_percent_is_not_an_encoded_slash(srv, api):
    """%252F decodes to the three characters '%2F', not to '/': the request
    is routed like any other and the name is then refused as a name."""
    st, h, body = raw_get(srv, "/api/v1/workspaces/a%252Fb/upload_sessions", "GET",
                          [("Authorization", f"Bearer {srv.key_all}")])
    assert (st, h.get("content-type"), body) == \
        (404, "application/json", b'{"detail":"Workspace not found"}')
    ws = unique_ws()
    for target in (f"/api/v1/workspaces/{ws}/upload%5Fsessions",
                   f"/api/v1/workspaces/{ws}/upload_sessions?x=a%2Fb%00"):
        st, h, body = raw_get(srv, target, "GET", [("Authorization", f"Bearer {srv.key_all}")])
        assert (st, h.get("content-type"), body) == \
            (200, "application/json", b'{"data":[],"has_more":false,"total":0}'), target


@pytest.mark.parametrize("esc", ENCODED_REFUSED, ids=["2F", "2f", "00"])
def test_encoded_slash_or_nul_outside_the_api_is_left_to_httpd(srv, esc):
    for target in (f"/static/a{esc}b.html", f"/api/v2/workspaces/a{esc}b/upload_sessions",
                   f"/api/v1x/a{esc}b"):
        st, h, body = raw_get(srv, target)
        assert st == 404, (target, st, h, body)
        assert h.get("content-type", "").startswith("text/html"), (target, h)
        assert b"<title>404 Not Found</title>" in body, (target, body)


def test_encoded_slash_follows_the_server_configuration(server_factory):
    """With AllowEncodedSlashes NoDecode the core takes %2F, so the API
    routes it (a workspace name with '%2F' in it is not a name) while %00 is
    still the JSON 404; a virtual host with UploadSession Off is left to
    httpd entirely."""
    from us_testkit.procs import free_port
    off_port = free_port()
    s = server_factory(start=False)
    s.extra += ["AllowEncodedSlashes NoDecode", f"Listen 127.0.0.1:{off_port}",
                f"<VirtualHost 127.0.0.1:{off_port}>", "UploadSession Off", "</VirtualHost>"]
    s.start()
    auth = [("Authorization", f"Bearer {s.key_all}")]
    st, h, body = raw_get(s, "/api/v1/workspaces/a%2Fb/upload_sessions", "GET", auth)
    assert (st, h.get("content-type"), body) == \
        (404, "application/json", b'{"detail":"Workspace not found"}')
    assert_json_not_found(*raw_get(s, "/api/v1/workspaces/a%00b/upload_sessions", "GET", auth),
                          "NUL with NoDecode")

    class Off:
        port = off_port
    for target in ("/api/v1/workspaces/a%2Fb/upload_sessions",
                   "/api/v1/workspaces/a%00b/upload_sessions"):
        st, h, body = raw_get(Off, target, "GET", auth)
        assert st == 404 and h.get("content-type", "").startswith("text/html"), (target, st, h)
        assert b"<title>404 Not Found</title>" in body, (target, body)

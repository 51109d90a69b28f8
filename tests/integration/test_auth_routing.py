"""Authentication, workspace grants and names, routing errors."""

import uuid

import pytest

from harness import (INVALID_KEY, METHOD_NOT_ALLOWED, NOT_AUTHENTICATED, ROUTE_NOT_FOUND,
                     WS_NOT_FOUND, check, close_session, create_session, detail_of,
                     e_missing, get_status, list_sessions, not_found_text, session_path,
                     sessions_path, unique_ws, v422)


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

# (%2F and %00 are refused by httpd's core before any module sees them)
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


@pytest.mark.parametrize("method", ["DELETE", "PUT", "PATCH"])
def test_wrong_method_on_collection_is_405(srv, api, method):
    ws = unique_ws()
    r = api.request(method, sessions_path(ws), json={})
    check(r, 405, METHOD_NOT_ALLOWED)
    allow = {m.strip().upper() for m in r.headers.get("allow", "").split(",")}
    assert {"GET", "POST"} <= allow, r.headers
    assert method not in allow


@pytest.mark.parametrize("method", ["DELETE", "POST", "PATCH"])
def test_wrong_method_on_session_is_405(srv, api, method):
    ws = unique_ws()
    sid = create_session(api, ws)["session_id"]
    r = api.request(method, session_path(ws, sid), json={"status": "CLOSED"})
    check(r, 405, METHOD_NOT_ALLOWED)
    allow = {m.strip().upper() for m in r.headers.get("allow", "").split(",")}
    assert {"GET", "PUT"} <= allow, r.headers
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

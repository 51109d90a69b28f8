"""CORS for browser clients (issue #15 item 3), spoken by hand: preflight
OPTIONS on the API and on the upload target (204 without a key; 403 and no
CORS header for an origin not allowed), the CORS headers on every actual
answer - errors included - and configtest's messages for bad values. The
real browser drives it in test_cors_browser.py."""

import os

import pytest

from us_testkit.api import check, close_session, create_session, detail_of, unique_ws
from us_testkit.server import configtest
from us_testkit.uploads import MSG_BAD_SIG, s3_error, upload

APP = "https://app.example"
APP2 = "http://127.0.0.1:8081"
EVIL = "https://evil.example"
ALLOW_HEADERS = "Authorization, Content-Type, Accept, X-Requested-With, X-Trace-Id"
EXPOSE_HEADERS = ("Retry-After, Location, Content-Disposition, WWW-Authenticate, Allow, "
                  "X-Trace-Id")
CORS_HEADERS = ("access-control-allow-origin", "access-control-allow-methods",
                "access-control-allow-headers", "access-control-max-age",
                "access-control-expose-headers", "access-control-allow-credentials")
REFUSED = {"detail": "CORS origin not allowed"}


@pytest.fixture(scope="module")
def shared_server_options():
    return {"max_open": 1000, "extra": [
        f"UploadSessionCORSAllowOrigin {APP} {APP2}",
        "UploadSessionCORSAllowHeaders X-Trace-Id",
        "UploadSessionCORSExposeHeaders X-Trace-Id",
        "UploadSessionCORSMaxAge 120",
    ]}


def preflight(client, path, origin, method="POST", headers="authorization, content-type"):
    h = {"Origin": origin, "Access-Control-Request-Method": method}
    if headers:
        h["Access-Control-Request-Headers"] = headers
    return client.options(path, headers=h)


def vary(resp):
    return [v.strip().lower() for v in ",".join(resp.headers.get_list("vary")).split(",") if v]


def assert_no_cors(resp):
    got = {h: resp.headers[h] for h in CORS_HEADERS if h in resp.headers}
    assert not got, (resp.status_code, got)


def assert_cors(resp, origin=APP):
    """The headers of an actual answer for an allowed origin."""
    assert resp.headers.get("access-control-allow-origin") == origin, dict(resp.headers)
    assert resp.headers.get("access-control-expose-headers") == EXPOSE_HEADERS, dict(resp.headers)
    assert "access-control-allow-credentials" not in resp.headers
    if origin != "*":
        assert "origin" in vary(resp), dict(resp.headers)


def assert_preflight(resp, methods, origin=APP, max_age="120"):
    assert resp.status_code == 204, (resp.status_code, resp.text)
    assert resp.content == b""
    assert resp.headers["access-control-allow-origin"] == origin
    assert resp.headers["access-control-allow-methods"] == methods
    assert resp.headers["access-control-allow-headers"] == ALLOW_HEADERS
    assert resp.headers["access-control-max-age"] == max_age
    assert "access-control-allow-credentials" not in resp.headers
    if origin != "*":
        assert "origin" in vary(resp)


def test_preflight_on_the_api_needs_no_key(srv):
    c = srv.raw_client()
    ws = unique_ws()
    base = f"/api/v1/workspaces/{ws}"
    sid = "5f0c8a52-1f7e-4d55-8e8e-6a2b9f1b2c3d"
    for path, methods in ((f"{base}/upload_sessions", "GET, HEAD, POST"),
                          (f"{base}/upload_sessions/{sid}", "GET, HEAD, PUT, DELETE"),
                          (f"{base}/upload_sessions/{sid}/files", "GET, HEAD"),
                          (f"{base}/files", "GET, HEAD, POST, DELETE"),
                          (f"{base}/files/{sid}", "GET, HEAD, DELETE"),
                          (f"{base}/files/{sid}/meta", "GET, HEAD, PUT, PATCH"),
                          (f"{base}/files/update-meta", "POST"),
                          ("/api/v1/health", "GET, HEAD"),
                          ("/api/v1/no/such/path", "GET, HEAD, POST, PUT")):
        assert_preflight(preflight(c, path, APP), methods)
    # the second origin, as the browser serializes it; methods asked for a
    # route that lacks them are left for the browser to refuse
    assert_preflight(preflight(c, f"{base}/upload_sessions/{sid}", APP2, method="PATCH"),
                     "GET, HEAD, PUT, DELETE", origin=APP2)


def test_preflight_on_the_upload_target(srv, api):
    ws = unique_ws()
    sess = create_session(api, ws)
    url = sess["aws_prefixed_request_config"]["url"]
    c = srv.raw_client()
    assert_preflight(preflight(c, url, APP, headers=None), "POST")
    assert_preflight(preflight(c, url, APP, headers="x-trace-id"), "POST")


def test_preflight_from_an_origin_not_allowed_is_refused(srv, api):
    ws = unique_ws()
    url = create_session(api, ws)["aws_prefixed_request_config"]["url"]
    c = srv.raw_client()
    for origin in (EVIL, "http://app.example", "https://app.example.evil.example",
                   "http://127.0.0.1:8082", "null"):
        for path in (f"/api/v1/workspaces/{ws}/upload_sessions", url, "/api/v1/nothing"):
            r = preflight(c, path, origin)
            check(r, 403, REFUSED)
            assert_no_cors(r)
            assert "origin" in vary(r)


def test_options_that_is_no_preflight_is_what_it_was(srv):
    """Without Origin and Access-Control-Request-Method, OPTIONS is an
    ordinary request: 405 on the API, as without CORS."""
    c = srv.raw_client()
    r = c.options(f"/api/v1/workspaces/{unique_ws()}/upload_sessions")
    check(r, 405, {"detail": "Method Not Allowed"})
    assert r.headers["allow"] == "GET, HEAD, POST"
    assert_no_cors(r)
    r = c.options(f"/api/v1/workspaces/{unique_ws()}/upload_sessions", headers={"Origin": APP})
    check(r, 405, {"detail": "Method Not Allowed"})
    assert_cors(r)


def test_every_answer_carries_the_headers(srv):
    """2xx and every error the API gives a browser: 401, 403, 404, 405, 409,
    413, 422, the upload target's 204 and its S3 errors."""
    ws = unique_ws()
    api = srv.client(srv.user_all, headers={"Origin": APP})
    anon = srv.client(None, headers={"Origin": APP})
    raw = srv.raw_client()

    r = api.post(f"{ws}/upload_sessions", json={})
    sess = check(r, 201)
    assert_cors(r)
    sid, cfg = sess["session_id"], sess["aws_prefixed_request_config"]
    r = api.get(f"{ws}/upload_sessions/{sid}")
    check(r, 200)
    assert_cors(r)

    r = anon.get(f"{ws}/upload_sessions")
    check(r, 401, {"detail": "Not authenticated"})
    assert_cors(r)
    assert r.headers["www-authenticate"] == "Bearer"
    r = srv.client("usk_not_a_key", headers={"Origin": APP}).get(f"{ws}/upload_sessions")
    srv.expect_log(r"US0012: authentication failed")
    check(r, 401, {"detail": "Invalid API key"})
    assert_cors(r)
    r = srv.client(srv.user_a, headers={"Origin": APP}).get(f"{ws}/upload_sessions")
    detail_of(r, 403)
    assert_cors(r)
    r = api.get(f"{ws}/upload_sessions/5f0c8a52-1f7e-4d55-8e8e-6a2b9f1b2c3d")
    detail_of(r, 404)
    assert_cors(r)
    r = raw.get("/api/v1/no/such/path", headers={"Origin": APP})
    check(r, 404, {"detail": "Not Found"})
    assert_cors(r)
    r = api.delete(f"{ws}/upload_sessions")
    check(r, 405, {"detail": "Method Not Allowed"})
    assert_cors(r)
    r = api.get(f"{ws}/upload_sessions", params={"limit": "0"})
    assert check(r, 422)["detail"][0]["type"] == "greater_than_equal"
    assert_cors(r)
    r = api.post(f"{ws}/upload_sessions", content='{"pad":"' + "x" * 70000 + '"}',
                 headers={"Content-Type": "application/json"})
    check(r, 413, {"detail": "Request body too large"})
    assert_cors(r)

    r = upload(raw, cfg, "a.txt", b"hello", )
    assert r.status_code == 204, r.text
    r = upload(srv.client(None, headers={"Origin": APP}), cfg, "b.txt", b"hello")
    assert r.status_code == 204 and r.content == b"", r.text
    assert_cors(r)
    bad = dict(cfg, fields=dict(cfg["fields"], **{"x-amz-signature": "0" * 64}))
    r = upload(srv.client(None, headers={"Origin": APP}), bad, "c.txt", b"x")
    s3_error(r, 403, "AccessDenied", MSG_BAD_SIG)
    assert_cors(r)

    r = api.put(f"{ws}/upload_sessions/{sid}", json={})
    check(r, 204)
    assert_cors(r)
    r = api.put(f"{ws}/upload_sessions/{sid}", json={})
    check(r, 409, {"detail": "The session is already closed."})
    assert_cors(r)


def test_an_origin_not_allowed_gets_the_answer_without_cors(srv):
    """The server answers as always (curl is no browser); the browser is
    what refuses to hand the answer to the page."""
    ws = unique_ws()
    api = srv.client(srv.user_all, headers={"Origin": EVIL})
    r = api.post(f"{ws}/upload_sessions", json={})
    sid = check(r, 201)["session_id"]
    assert_no_cors(r)
    assert "origin" in vary(r)
    r = api.get(f"{ws}/upload_sessions/00000000-0000-4000-8000-000000000000")
    detail_of(r, 404)
    assert_no_cors(r)
    close_session(srv.client(srv.user_all), ws, sid)


@pytest.mark.skipif(os.geteuid() != 0, reason="the children must run as another user than the files' owner")
def test_a_5xx_carries_the_headers(server_factory):
    s = server_factory(extra=[f"UploadSessionCORSAllowOrigin {APP}"])
    c = s.raw_client()
    r = c.get("/api/v1/health", headers={"Origin": APP})
    check(r, 200, {"status": "ok"})  # the storage's directories exist from here on
    assert r.headers["access-control-allow-origin"] == APP
    files = os.path.join(s.dir, "state", "data", "files")
    st = os.stat(files)
    os.chown(files, 0, 0)
    os.chmod(files, 0o755)
    try:
        r = c.get("/api/v1/health", headers={"Origin": APP})
        check(r, 503, {"status": "unavailable"})
        assert r.headers["retry-after"] == "1"
        assert r.headers["access-control-allow-origin"] == APP
        assert r.headers["access-control-expose-headers"] == \
            "Retry-After, Location, Content-Disposition, WWW-Authenticate, Allow"
    finally:
        os.chown(files, st.st_uid, st.st_gid)
        os.chmod(files, st.st_mode & 0o7777)


def test_any_origin(server_factory):
    """'*': every origin gets '*', and the answer does not vary by Origin."""
    s = server_factory(extra=["UploadSessionCORSAllowOrigin *"])
    c = s.raw_client()
    ws = unique_ws()
    r = preflight(c, f"/api/v1/workspaces/{ws}/upload_sessions", EVIL)
    assert r.status_code == 204 and r.content == b"", r.text
    assert r.headers["access-control-allow-origin"] == "*"
    assert r.headers["access-control-max-age"] == "600"
    assert r.headers["access-control-allow-headers"] == \
        "Authorization, Content-Type, Accept, X-Requested-With"
    assert "origin" not in vary(r)
    r = s.client(s.user_all, headers={"Origin": EVIL}).post(f"{ws}/upload_sessions", json={})
    check(r, 201)
    assert r.headers["access-control-allow-origin"] == "*"
    assert "origin" not in vary(r)
    # no Origin: no CORS headers
    r = s.client(s.user_all).get(f"{ws}/upload_sessions")
    check(r, 200)
    assert_no_cors(r)


def test_cors_is_off_without_the_directive(server_factory):
    s = server_factory()
    c = s.raw_client()
    r = preflight(c, f"/api/v1/workspaces/{unique_ws()}/upload_sessions", APP)
    check(r, 405, {"detail": "Method Not Allowed"})
    assert_no_cors(r)
    assert "origin" not in vary(r)
    r = s.client(s.user_all, headers={"Origin": APP}).get(f"{unique_ws()}/upload_sessions")
    check(r, 200)
    assert_no_cors(r)


def test_a_virtual_host_has_its_own_origins(server_factory):
    """The main server's origins hold where a virtual host sets none; one
    that sets its own replaces them ('*' included)."""
    s = server_factory(start=False, extra=[f"UploadSessionCORSAllowOrigin {APP}"])
    s.extra += [
        f"<VirtualHost 127.0.0.1:{s.port}>",
        "ServerName other.test",
        f"UploadSessionCORSAllowOrigin {APP2}",
        "</VirtualHost>",
        f"<VirtualHost 127.0.0.1:{s.port}>",
        "ServerName inherits.test",
        "</VirtualHost>",
    ]
    s.start()
    c = s.raw_client()
    path = f"/api/v1/workspaces/{unique_ws()}/upload_sessions"
    for host, good, bad in (("other.test", APP2, APP), ("inherits.test", APP, APP2)):
        r = c.options(path, headers={"Host": host, "Origin": good,
                                     "Access-Control-Request-Method": "POST"})
        assert r.status_code == 204 and r.headers["access-control-allow-origin"] == good, \
            (host, r.status_code, dict(r.headers))
        r = c.options(path, headers={"Host": host, "Origin": bad,
                                     "Access-Control-Request-Method": "POST"})
        check(r, 403, REFUSED)
        assert_no_cors(r)


BAD = [
    ("UploadSessionCORSAllowOrigin", "https://app.example/",
     "UploadSessionCORSAllowOrigin: expects '*' or origins such as https://app.example.com "
     "(http or https, host, optional port; no path, not even a trailing '/'), not "
     "'https://app.example/'"),
    ("UploadSessionCORSAllowOrigin", "app.example",
     "UploadSessionCORSAllowOrigin: expects '*' or origins such as https://app.example.com "
     "(http or https, host, optional port; no path, not even a trailing '/'), not 'app.example'"),
    ("UploadSessionCORSAllowOrigin", "null", "not 'null'"),
    ("UploadSessionCORSAllowOrigin", "https://a.example:99999", "not 'https://a.example:99999'"),
    ("UploadSessionCORSAllowOrigin", "* https://a.example",
     "UploadSessionCORSAllowOrigin: '*' allows every origin; it cannot be combined with a "
     "list of origins"),
    ("UploadSessionCORSAllowOrigin", "https://a.example *",
     "UploadSessionCORSAllowOrigin: '*' allows every origin; it cannot be combined with a "
     "list of origins"),
    ("UploadSessionCORSAllowHeaders", "X-A,X-B",
     "UploadSessionCORSAllowHeaders: expects header names such as X-Request-Id (separated by "
     "spaces, not commas), not 'X-A,X-B'"),
    ("UploadSessionCORSExposeHeaders", "X:Y",
     "UploadSessionCORSExposeHeaders: expects header names such as X-Request-Id (separated by "
     "spaces, not commas), not 'X:Y'"),
    ("UploadSessionCORSMaxAge", "-1",
     "UploadSessionCORSMaxAge: expects seconds from 0 to 86400, not '-1'"),
    ("UploadSessionCORSMaxAge", "86401",
     "UploadSessionCORSMaxAge: expects seconds from 0 to 86400, not '86401'"),
    ("UploadSessionCORSMaxAge", "10s",
     "UploadSessionCORSMaxAge: expects seconds from 0 to 86400, not '10s'"),
]


@pytest.mark.parametrize("directive,value,message", BAD, ids=[f"{d}={v}" for d, v, _ in BAD])
def test_bad_values_fail_configtest(server_factory, directive, value, message):
    s = server_factory(start=False, extra=[f"{directive} {value}"])
    rc, out = configtest(s)
    assert rc != 0, out
    assert message in out, out
    assert "Syntax OK" not in out, out


def test_good_values_pass_configtest(server_factory):
    s = server_factory(start=False, extra=[
        "UploadSessionCORSAllowOrigin https://a.example http://127.0.0.1:3000",
        "UploadSessionCORSAllowOrigin http://[::1]:8080",
        "UploadSessionCORSAllowHeaders X-One X-Two",
        "UploadSessionCORSExposeHeaders ETag",
        "UploadSessionCORSMaxAge 0",
    ])
    rc, out = configtest(s)
    assert rc == 0, out
    assert "Syntax OK" in out, out

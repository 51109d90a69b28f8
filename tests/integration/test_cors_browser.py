"""CORS in a real browser (issue #15 item 3): a headless Chromium opens a
page served from another origin (a second port on loopback) whose script
does what a browser app does with fetch(): creates a session, uploads a
file through the presigned POST with FormData (the fields, then the file),
closes the session and polls until its file is FINISHED. From an origin
the server does not list, the browser refuses to hand over the answers:
fetch() rejects with a TypeError."""

import pytest

from us_testkit.api import unique_ws
from us_testkit.browser import Chromium, StaticPages

PAGE = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>upload app</title></head>
<body><p id="out">ready</p></body></html>
"""

CONTENT = "hello from the browser\n"

# What a browser app does, start to end; returns every status and body it saw.
APP_SCRIPT = """
async (api, key, ws, content) => {
  const auth = {"Authorization": "Bearer " + key};
  const json = {...auth, "Content-Type": "application/json"};
  const out = {origin: location.origin};
  let r = await fetch(`${api}/workspaces/${ws}/upload_sessions`,
                      {method: "POST", headers: json, body: JSON.stringify({expires_in_seconds: 600})});
  out.create = r.status;
  const session = await r.json();
  out.session_id = session.session_id;
  const cfg = session.aws_prefixed_request_config;

  const form = new FormData();
  for (const [name, value] of Object.entries(cfg.fields)) form.append(name, value);
  form.append("file", new File([content], "hello.txt", {type: "text/plain"}));
  r = await fetch(cfg.url, {method: "POST", body: form});
  out.upload = r.status;
  out.upload_body = await r.text();

  const sessionUrl = `${api}/workspaces/${ws}/upload_sessions/${session.session_id}`;
  r = await fetch(sessionUrl, {method: "PUT", headers: json, body: "{}"});
  out.close = r.status;
  out.close_body = await r.text();
  r = await fetch(sessionUrl, {method: "PUT", headers: json, body: "{}"});
  out.close_again = r.status;
  out.close_again_body = await r.json();

  const deadline = Date.now() + 20000;
  out.polls = 0;
  for (;;) {
    r = await fetch(sessionUrl, {headers: auth});
    out.status = r.status;
    out.status_body = await r.json();
    out.polls++;
    const ing = out.status_body.ingestion_status;
    if (ing.finished_files + ing.failed_files >= 1 || Date.now() > deadline) break;
    await new Promise(done => setTimeout(done, 100));
  }
  r = await fetch(`${sessionUrl}/files`, {headers: auth});
  out.files = r.status;
  out.files_body = await r.json();

  // an error answer is readable too, with the header the server exposes
  r = await fetch(`${api}/workspaces/${ws}/upload_sessions`);
  out.unauthenticated = r.status;
  out.unauthenticated_body = await r.json();
  out.www_authenticate = r.headers.get("WWW-Authenticate");
  return out;
}
"""

# From an origin the server does not list: each fetch must fail.
REFUSED_SCRIPT = """
async (api, key, ws, uploadUrl, fields) => {
  const out = {origin: location.origin};
  const attempt = async (name, url, init) => {
    try {
      const r = await fetch(url, init);
      out[name] = {status: r.status};
    } catch (e) {
      out[name] = {error: e.name, message: e.message};
    }
  };
  await attempt("create", `${api}/workspaces/${ws}/upload_sessions`,
                {method: "POST", headers: {"Authorization": "Bearer " + key,
                                           "Content-Type": "application/json"}, body: "{}"});
  const form = new FormData();
  for (const [name, value] of Object.entries(fields)) form.append(name, value);
  form.append("file", new File(["x"], "refused.txt"));
  await attempt("upload", uploadUrl, {method: "POST", body: form});
  await attempt("health", api + "/health", {});
  return out;
}
"""


@pytest.fixture(scope="module")
def pages():
    with StaticPages({"/app.html": PAGE}) as p:
        yield p


@pytest.fixture(scope="module")
def shared_server_options(pages):
    # the page's origin is allowed; the same page reached as localhost is
    # another origin, which is not
    return {"max_open": 1000,
            "extra": [f"UploadSessionCORSAllowOrigin {pages.url('').rstrip('/')}"]}


@pytest.fixture(scope="module")
def browser():
    with Chromium() as b:
        yield b


def test_browser_app_uploads_through_the_presigned_post(srv, pages, browser):
    ws = unique_ws()
    tab = browser.open(pages.url("/app.html"))
    out = tab.run(APP_SCRIPT, srv.public_url + "/api/v1", srv.key_all, ws, CONTENT)
    sid = out["session_id"]
    assert out["origin"] == pages.url("").rstrip("/") != srv.public_url, out
    assert out["create"] == 201, out
    assert out["upload"] == 204 and out["upload_body"] == "", out
    assert out["close"] == 204 and out["close_body"] == "", out
    assert out["close_again"] == 409, out
    assert out["close_again_body"] == {"detail": "The session is already closed."}, out
    assert out["status"] == 200, out
    st = out["status_body"]
    assert st["session_id"] == sid, out
    assert st["ingestion_status"]["finished_files"] == 1, out
    assert st["ingestion_status"]["failed_files"] == 0, out
    assert out["files"] == 200, out
    items = out["files_body"]["data"]
    assert out["files_body"]["total"] == 1 and len(items) == 1, out
    assert items[0]["name"] == "hello.txt" and items[0]["ingestion_status"] == "FINISHED", out
    assert out["unauthenticated"] == 401, out
    assert out["unauthenticated_body"] == {"detail": "Not authenticated"}, out
    assert out["www_authenticate"] == "Bearer", out

    # the server holds the browser's bytes
    api = srv.client(srv.user_all)
    r = api.get(f"{ws}/files")
    assert r.status_code == 200, r.text
    (f,) = r.json()["data"]
    r = api.get(f"{ws}/files/{f['file_id']}")
    assert r.status_code == 200 and r.text == CONTENT, (r.status_code, r.text)


def test_browser_on_an_origin_not_allowed_gets_a_type_error(srv, pages, browser, api):
    ws = unique_ws()
    r = api.post(f"{ws}/upload_sessions", json={})
    assert r.status_code == 201, r.text
    cfg = r.json()["aws_prefixed_request_config"]
    tab = browser.open(pages.url("/app.html", host="localhost"))
    out = tab.run(REFUSED_SCRIPT, srv.public_url + "/api/v1", srv.key_all, ws,
                  cfg["url"], cfg["fields"])
    assert out["origin"] == f"http://localhost:{pages.port}", out
    for name in ("create", "upload", "health"):
        assert out[name] == {"error": "TypeError", "message": "Failed to fetch"}, out
    srv.expect_log(r"US0501: CORS preflight refused")
    # the refused preflight kept the request from being sent
    r = api.get(f"{ws}/upload_sessions")
    assert r.status_code == 200 and r.json()["total"] == 1, r.text

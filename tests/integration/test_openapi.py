"""The API's own documentation (issue #15 item 6): the OpenAPI 3.1 document
at /api/v1/openapi.json (no key, CORS like every answer), which is
docs/openapi.json of the tree, valid for a real validator
(openapi-spec-validator) and naming exactly the routes of
src/core/us_router.c; and the HTML page at the default documentation_url."""

import glob
import json
import os
import re
import shutil
import subprocess

import pytest

from us_testkit.api import check, create_session, detail_of, unique_ws
from us_testkit.server import REPO_ROOT

APP = "https://app.example"
OPENAPI = os.path.join(REPO_ROOT, "docs", "openapi.json")
ROUTER = os.path.join(REPO_ROOT, "src", "core", "us_router.c")
DOCS_PATH = "/docs/upload-sessions"


@pytest.fixture(scope="module")
def shared_server_options():
    return {"max_open": 1000, "extra": [f"UploadSessionCORSAllowOrigin {APP}"]}


def module_version():
    with open(os.path.join(REPO_ROOT, "include", "us_version.h")) as f:
        return re.search(r'#define US_VERSION "([^"]+)"', f.read()).group(1)


def tree_document():
    with open(OPENAPI) as f:
        return json.loads(f.read().replace("@VERSION@", module_version()))


def router_routes():
    """{"/api/v1/<pattern with {}>": {methods but HEAD}} of us_router.c's ROUTES."""
    with open(ROUTER) as f:
        text = f.read()
    table = re.search(r"ROUTES\[\] = \{(.*?)\n\};", text, flags=re.S).group(1)
    routes = {}
    for pattern, methods in re.findall(r'\{\s*US_ROUTE_\w+,\s*"([^"]+)",\s*"([^"]+)"', table):
        routes["/api/v1/" + pattern] = set(methods.split()) - {"HEAD"}
    assert len(routes) >= 10, routes
    return routes


def validator_python():
    """A Python with openapi-spec-validator: Debian's package where the
    distribution has it (scripts/install-deps.sh installs it), else the
    machine's own Python 3 that carries it."""
    candidates = ["/usr/bin/python3", shutil.which("python3")]
    candidates += sorted(glob.glob("/root/.pyenv/versions/*/bin/python3"))
    for py in candidates:
        if py and os.path.exists(py) and subprocess.run(
                [py, "-c", "import openapi_spec_validator"], capture_output=True).returncode == 0:
            return py
    pytest.fail("no Python with openapi_spec_validator (Debian: python3-openapi-spec-validator)")


def test_openapi_json_is_served_without_a_key_and_is_the_tree_file(srv):
    c = srv.raw_client()
    r = c.get("/api/v1/openapi.json")
    doc = check(r, 200)
    assert doc == tree_document()
    assert doc["openapi"] == "3.1.0" and doc["info"]["version"] == module_version()
    r = c.head("/api/v1/openapi.json")
    assert r.status_code == 200 and r.content == b""
    assert r.headers["content-type"] == "application/json"
    r = c.post("/api/v1/openapi.json")
    check(r, 405, {"detail": "Method Not Allowed"})
    assert r.headers["allow"] == "GET, HEAD"


def test_openapi_json_answers_cors_like_the_api(srv):
    c = srv.raw_client()
    r = c.get("/api/v1/openapi.json", headers={"Origin": APP})
    check(r, 200, tree_document())
    assert r.headers["access-control-allow-origin"] == APP
    r = c.options("/api/v1/openapi.json",
                  headers={"Origin": APP, "Access-Control-Request-Method": "GET"})
    assert r.status_code == 204 and r.content == b""
    assert r.headers["access-control-allow-origin"] == APP
    assert "GET" in r.headers["access-control-allow-methods"]


def test_openapi_document_passes_openapi_spec_validator(srv, tmp_path):
    served = tmp_path / "openapi.json"
    served.write_bytes(srv.raw_client().get("/api/v1/openapi.json").content)
    out = subprocess.run([validator_python(), "-m", "openapi_spec_validator", str(served)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "OK" in out.stdout, out.stdout + out.stderr
    # and the validator does refuse a broken document: a response without
    # its required description
    broken = tree_document()
    del broken["paths"]["/api/v1/health"]["get"]["responses"]["200"]["description"]
    served.write_text(json.dumps(broken))
    out = subprocess.run([validator_python(), "-m", "openapi_spec_validator", str(served)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode != 0, out.stdout


def test_openapi_paths_and_methods_are_the_routers():
    doc = tree_document()
    documented = {}
    for path, item in doc["paths"].items():
        methods = {m.upper() for m in item
                   if m in ("get", "put", "post", "delete", "patch", "head", "options")}
        documented[re.sub(r"\{[^}]+\}", "{}", path)] = methods
    assert documented == router_routes()


def test_every_query_parameter_read_is_documented():
    """Each query parameter a handler reads (us_query_get in src/httpd/)
    is in the document, and the document names none that nothing reads;
    the session lists' cursors before/after were missing."""
    doc = tree_document()
    documented = {p["name"] for item in doc["paths"].values() for op in item.values()
                  if isinstance(op, dict) for p in op.get("parameters", []) if p["in"] == "query"}
    read = set()
    for path in glob.glob(os.path.join(REPO_ROOT, "src", "httpd", "*.c")):
        with open(path) as f:
            read |= set(re.findall(r'us_query_get\([^;]*?"([a-z_]+)"\)', f.read()))
    assert read == documented
    lists = ["/api/v1/workspaces/{workspace_name}/upload_sessions",
             "/api/v1/workspaces/{workspace_name}/upload_sessions/{session_id}/files"]
    for path in lists:
        names = {p["name"] for p in doc["paths"][path]["get"]["parameters"]}
        assert {"limit", "page_number", "before", "after"} <= names, (path, names)


def test_every_operation_needs_the_key_but_the_public_ones():
    doc = tree_document()
    public = {(p, m) for p, item in doc["paths"].items() for m, op in item.items()
              if isinstance(op, dict) and op.get("security") == []}
    assert public == {("/api/v1/health", "get"), ("/api/v1/openapi.json", "get"),
                      ("/api/v1/upload_target/{session_id}", "post")}
    assert doc["security"] == [{"bearer": []}]


def test_documentation_url_is_a_page_naming_every_endpoint(srv, api):
    ws = unique_ws()
    created = create_session(api, ws)
    assert created["documentation_url"] == srv.public_url + DOCS_PATH
    c = srv.raw_client()
    r = c.get(DOCS_PATH)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    page = r.text
    assert page.startswith("<!DOCTYPE html>") and "<title>Upload sessions" in page
    assert module_version() in page and "@VERSION@" not in page
    for path in tree_document()["paths"]:
        assert f"<code>{path}</code>" in page, path
    r = c.head(DOCS_PATH)
    assert r.status_code == 200 and r.content == b""
    r = c.post(DOCS_PATH)
    check(r, 405, {"detail": "Method Not Allowed"})
    assert r.headers["allow"] == "GET, HEAD"
    # only that path
    assert c.get(DOCS_PATH + "/x").status_code == 404


def test_no_page_where_the_operator_points_documentation_url_elsewhere(server_factory):
    s = server_factory(extra=["UploadSessionDocumentationURL https://docs.example.com/uploads"])
    r = s.raw_client().get(DOCS_PATH)
    assert r.status_code == 404 and "application/json" not in r.headers.get("content-type", "")
    created = create_session(s.client(s.user_all), unique_ws())
    assert created["documentation_url"] == "https://docs.example.com/uploads"
    detail_of(s.raw_client().get("/api/v1/nothing"), 404)

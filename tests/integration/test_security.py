"""Security: the authentication matrix of every endpoint, hostile file names,
SQL metacharacters in every string input, oversized input, and secrets
(the signing secret's permissions; no key, signature, policy or secret in
the logs). API.md "Authentication", "Errors", "Upload target"."""

import base64
import hashlib
import json
import os
import re
import secrets
import subprocess
import urllib.parse
import uuid

import pytest

from us_testkit.procs import wait_for
from us_testkit.server import new_client
from us_testkit.api import (INVALID_KEY, NOT_AUTHENTICATED, WS_NOT_FOUND, check, close_session,
                            create_session, e_bool_parsing, e_int_parsing, get_status,
                            unique_ws, v422)
from us_testkit.procs import children_rss
from us_testkit.uploads import (Part, flip_b64_char, list_files_all, no_content, post_parts,
                                s3_error, sdk_upload_many, upload)
from us_testkit.ingest import make_server, module_so, shared_server_options  # noqa: F401
from us_testkit.faults import rss_total, snapshot, store_tables  # noqa: F401

MiB = 1024 * 1024
UUID_RE = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def new_session(api, ws, body=None):
    sess = create_session(api, ws, body)
    return sess["session_id"], sess["aws_prefixed_request_config"]


def post_file(api, ws, name, data, meta=None, params=None):
    form = None if meta is None else {"meta": meta if isinstance(meta, str) else json.dumps(meta)}
    return api.post(f"{ws}/files", params=params or {}, files={"file": (name, data)}, data=form)


def ws_files(api, ws, **params):
    params.setdefault("limit", 100)
    data = check(api.get(f"{ws}/files", params=params), 200)
    assert not data["has_more"], data
    return data["data"]


def wait_finished(api, ws, sid, n, timeout=30):
    assert wait_for(lambda: get_status(api, ws, sid)["ingestion_status"]["pending_files"] == 0
                    and get_status(api, ws, sid)["uploaded_files"] == n, timeout), \
        get_status(api, ws, sid)
    return get_status(api, ws, sid)


# --------------------------------------------------------------------------
# 5. the authentication matrix
# --------------------------------------------------------------------------

def endpoints(ws, sid, fid):
    """(name, method, path, request kwargs, success status) of every endpoint
    (close last: it changes the session)."""
    return [
        ("create", "POST", f"{ws}/upload_sessions", {"json": {}}, 201),
        ("list", "GET", f"{ws}/upload_sessions", {}, 200),
        ("status", "GET", f"{ws}/upload_sessions/{sid}", {}, 200),
        ("session files", "GET", f"{ws}/upload_sessions/{sid}/files", {}, 200),
        ("files", "GET", f"{ws}/files", {}, 200),
        ("file", "GET", f"{ws}/files/{fid}", {}, 200),
        ("file meta", "GET", f"{ws}/files/{fid}/meta", {}, 200),
        ("post file", "POST", f"{ws}/files",
         {"files": {"file": ("matrix.txt", b"matrix")}, "data": {"meta": '{"m": 1}'}}, 201),
        ("close", "PUT", f"{ws}/upload_sessions/{sid}", {"json": {"status": "CLOSED"}}, 204),
    ]


def test_auth_matrix_every_endpoint(srv):
    api = srv.client(srv.user_all)
    ws = unique_ws("authm")
    sid, cfg = new_session(api, ws)
    no_content(upload(srv.raw_client(), cfg, "secret-name.txt", b"SESSION-FILE-BYTES"))
    fid = check(post_file(api, ws, "secret-direct.txt", b"DIRECT-FILE-BYTES",
                          meta={"secret": "META-VALUE"}), 201)["file_id"]
    k = srv.key_all
    malformed = {
        "no header": None,
        "Basic with the key": f"Basic {base64.b64encode(('u:' + k).encode()).decode()}",
        "Basic": "Basic dXNlcjpwYXNz",
        "Bearer alone": "Bearer",
        "Token x": "Token x",
        "Token with the key": f"Token {k}",
        "the key alone": k,
        "empty": "",
        "Bearer: key": f"Bearer: {k}",
    }
    unknown = {
        "random": secrets.token_urlsafe(32),
        "real key + 1 char": k + "x",
        "real key - 1 char": k[:-1],
        "real key's sha256": hashlib.sha256(k.encode()).hexdigest(),
        "quote": "x' OR '1'='1",
    }
    leaks = [sid, fid, "secret-name", "secret-direct", "SESSION-FILE-BYTES",
             "DIRECT-FILE-BYTES", "META-VALUE", k, srv.user_all.user_id, "Lovelace"]

    def no_leak(r, what):
        text = r.text
        for s in leaks:
            assert s not in text, f"{what}: {s!r} in the error body {text!r}"

    forbidden = {"detail": f"You don't have access to the workspace '{ws}'."}
    count = 0
    for name, method, path, kw, ok in endpoints(ws, sid, fid):
        if name == "close":
            continue  # below, after the rejections, once
        for label, value in malformed.items():
            headers = {} if value is None else {"Authorization": value}
            r = srv.client(None, headers=headers).request(method, path, **kw)
            check(r, 401, NOT_AUTHENTICATED)
            assert r.headers.get("www-authenticate") == "Bearer", (name, label, r.headers)
            no_leak(r, f"{name} / {label}")
            count += 1
        for label, key in unknown.items():
            r = srv.client(key).request(method, path, **kw)
            check(r, 401, INVALID_KEY)
            no_leak(r, f"{name} / unknown {label}")
            count += 1
        # a valid key of another workspace (user_a: ws-a only)
        r = srv.client(srv.user_a).request(method, path, **kw)
        check(r, 403, forbidden)
        assert ws in r.json()["detail"]
        no_leak(r, f"{name} / other workspace")
        count += 1

    # the close endpoint, every rejection too, and the session stays OPEN
    name, method, path, kw, _ = endpoints(ws, sid, fid)[-1]
    for label, value in malformed.items():
        headers = {} if value is None else {"Authorization": value}
        r = srv.client(None, headers=headers).request(method, path, **kw)
        check(r, 401, NOT_AUTHENTICATED)
        assert r.headers.get("www-authenticate") == "Bearer"
    for label, key in unknown.items():
        check(srv.client(key).request(method, path, **kw), 401, INVALID_KEY)
    check(srv.client(srv.user_a).request(method, path, **kw), 403, forbidden)

    # no existence oracle: a session or file that does not exist is
    # refused the same way as one that does
    ghost = str(uuid.uuid4())
    for name, method, path, kw, _ in endpoints(ws, ghost, ghost):
        check(srv.client(None).request(method, path, **kw), 401, NOT_AUTHENTICATED)
        check(srv.client(secrets.token_urlsafe(32)).request(method, path, **kw), 401,
              INVALID_KEY)
        check(srv.client(srv.user_a).request(method, path, **kw), 403, forbidden)
    # the key is checked before the workspace name: no oracle on names either
    check(srv.client(secrets.token_urlsafe(32)).get("bad'ws/upload_sessions"), 401, INVALID_KEY)
    check(srv.client(None).get("bad'ws/upload_sessions"), 401, NOT_AUTHENTICATED)

    # nothing changed by any rejected call
    st = get_status(api, ws, sid)
    assert st["status"] == "OPEN" and st["uploaded_files"] == 1, st
    assert check(api.get(f"{ws}/upload_sessions"), 200)["total"] == 1
    assert [f["name"] for f in ws_files(api, ws)] == ["secret-direct.txt"]

    # the valid key: the normal answer of each endpoint
    for name, method, path, kw, ok in endpoints(ws, sid, fid):
        r = api.request(method, path, **kw)
        assert r.status_code == ok, (name, r.status_code, r.text[:300])
        if name == "file":
            assert r.content == b"DIRECT-FILE-BYTES"
        elif name == "file meta":
            assert r.json() == {"secret": "META-VALUE"}
        elif name == "session files":
            assert [i["name"] for i in r.json()["data"]] == ["secret-name.txt"]
    # ... and for user_a in its own workspace
    a = srv.client(srv.user_a)
    a_sid, _ = new_session(a, "ws-a")
    check(a.get(f"ws-a/upload_sessions/{a_sid}"), 200)
    # user_a's ws-a is not visible from ws (another workspace, same '*' key)
    check(api.get(f"{ws}/upload_sessions/{a_sid}"), 404)
    close_session(a, "ws-a", a_sid)
    print(f"\n{count} rejected calls checked")


# --------------------------------------------------------------------------
# 6. hostile file names through POST /files
# --------------------------------------------------------------------------

def bad_name(why):
    return {"detail": f"Invalid file name: {why}."}


SEP = bad_name("the file name contains a path separator")
CTL = bad_name("the file name contains a control character")
DOTS = bad_name("the file name may not be '.' or '..'")
LONG = bad_name("the file name is longer than 1024 bytes")
UTF8 = bad_name("the file name is not valid UTF-8")
UNPARSABLE = {"detail": "There was an error parsing the body"}

# (description, Part kwargs for the file part, expected 400 body)
REFUSED = [
    ("../x", {"filename": "../x"}, SEP),
    ("../../../../../../tmp/x", {"filename": "../../../../../../tmp/x"}, SEP),
    ("/etc/passwd", {"filename": "/etc/passwd"}, SEP),
    ("a\\b", {"filename": "a\\b"}, SEP),
    ("a\\\\b (escaped backslash)", {"filename": "a\\\\b"}, SEP),
    ("..\\..\\x", {"filename": "..\\..\\x"}, SEP),
    ("..", {"filename": ".."}, DOTS),
    ("filename* ../x", {"filename_star": "UTF-8''..%2Fx"}, SEP),
    ("filename* /etc/passwd", {"filename_star": "UTF-8''%2Fetc%2Fpasswd"}, SEP),
    ("NUL in filename*", {"filename_star": "utf-8''a%00b"}, UNPARSABLE),
    ("1025-byte name", {"filename": "n" * 1021 + ".txt"}, LONG),
    ("1026-byte UTF-8 name", {"filename": "é" * 513}, LONG),
    ("newline in filename*", {"filename_star": "UTF-8''a%0Ab"}, CTL),
    ("ESC in filename*", {"filename_star": "UTF-8''a%1Bb"}, CTL),
    ("invalid UTF-8 (raw byte)", {"filename": b"a\xffb.txt"}, UTF8),
]

# names stored verbatim: (description, Part kwargs, the stored name)
ACCEPTED = [
    ("..x", {"filename": "..x"}, "..x"),
    ("x..", {"filename": "x.."}, "x.."),
    ("...", {"filename": "..."}, "..."),
    (".hidden", {"filename": ".hidden"}, ".hidden"),
    (".x.tmp (looks like a temp file)", {"filename": ".x.tmp"}, ".x.tmp"),
    ("-rf", {"filename": "-rf"}, "-rf"),
    ("%00 stays literal", {"filename": "nul%00.txt"}, "nul%00.txt"),
    # FastAPI takes a filename as sent: escapes are text, not '/', '..' or bytes
    ("%2e%2e%2f stays text", {"filename": "%2e%2e%2f"}, "%2e%2e%2f"),
    ("%2e%2e%2fx stays text", {"filename": "%2e%2e%2fx"}, "%2e%2e%2fx"),
    ("%2e%2e stays text", {"filename": "%2e%2e"}, "%2e%2e"),
    ("%FF stays text", {"filename": "a%FFb.txt"}, "a%FFb.txt"),
    ("%C0%AF stays text", {"filename": "a%C0%AFb"}, "a%C0%AFb"),
    ("%0A stays text", {"filename": "a%0Ab"}, "a%0Ab"),
    ("%1B stays text", {"filename": "a%1Bb"}, "a%1Bb"),
    ("%20 stays text", {"filename": "Q3%20report.txt"}, "Q3%20report.txt"),
    ("%zz stays literal", {"filename": "a%zz.txt"}, "a%zz.txt"),
    ("quote and semicolon via filename*", {"filename_star": "UTF-8''q%22uote%3B.txt"},
     'q"uote;.txt'),
    ("UTF-8", {"filename": "日本語 résumé.txt"}, "日本語 résumé.txt"),
    ("255 bytes", {"filename": "m" * 251 + ".txt"}, "m" * 251 + ".txt"),
    ("1024 bytes", {"filename": "k" * 1020 + ".txt"}, "k" * 1020 + ".txt"),
    ("1024 bytes of UTF-8", {"filename": "é" * 512}, "é" * 512),
]


def test_hostile_names_post_files(srv):
    api = srv.client(srv.user_all)
    ws = unique_ws("names")
    check(post_file(api, ws, "kept.txt", b"kept"), 201)
    before = snapshot(srv.dir)
    outside = ["/x", "/tmp/x", "/etc/x", "/b", "/tmp/a", os.path.join(srv.dir, "x"),
               os.path.join(srv.dir, "state", "x"), os.path.join(srv.dir, "state", "data", "x")]
    existed = {p: os.path.exists(p) for p in outside}
    passwd = os.stat("/etc/passwd")

    for what, kw, body in REFUSED:
        r = post_parts(api, f"{ws}/files", [Part("file", b"hostile", **kw)])
        check(r, 400, body)
    assert [f["name"] for f in ws_files(api, ws)] == ["kept.txt"]

    stored = {}
    for what, kw, name in ACCEPTED:
        r = post_parts(api, f"{ws}/files", [Part("file", f"bytes of {what}".encode(), **kw)])
        stored[check(r, 201)["file_id"]] = (name, f"bytes of {what}".encode())
    listed = {f["file_id"]: f["name"] for f in ws_files(api, ws)}
    for fid, (name, data) in stored.items():
        assert listed.get(fid) == name, (fid, name, listed.get(fid))
        r = api.get(f"{ws}/files/{fid}")
        assert r.status_code == 200 and r.content == data, (name, r.status_code)
        # the blob is <data>/files/<file_id>, whatever the name
        with open(os.path.join(srv.dir, "state", "data", "files", fid), "rb") as f:
            assert f.read() == data

    # nothing was written outside <dir>/state/data (the store and the log aside)
    after = snapshot(srv.dir)
    new = sorted(p for p in set(after) - set(before)
                 if not p.startswith("state/store.db") and p != "error.log")
    for p in new:
        assert p.startswith("state/data/"), f"written outside the data dir: {p}"
        assert re.fullmatch(rf"state/data/(files|sessions)(/{UUID_RE})*", p), p
    for p in stored:
        assert f"state/data/files/{p}" in new
    for p, ex in existed.items():
        assert os.path.exists(p) == ex, p
    st = os.stat("/etc/passwd")
    assert (st.st_mtime_ns, st.st_size) == (passwd.st_mtime_ns, passwd.st_size)


def test_download_content_disposition_cannot_be_injected(srv):
    """GET /files/{id} names the file in Content-Disposition as
    filename*=UTF-8''<pct-encoded>: RFC 5987 allows only attr-char there, so
    ';', '=', quotes, '(', ')', '*', ',' must be percent-encoded too, or a
    stored name can end the parameter and add one of its own."""
    api = srv.client(srv.user_all)
    ws = unique_ws("disp")
    names = ["a;filename*=UTF-8''evil.exe", "b; filename=evil.exe", "c'd(e)f,g*h=i.txt",
             "plain name.txt", "ü.txt"]
    bad = []
    for name in names:
        star = "UTF-8''" + urllib.parse.quote(name, safe="")
        fid = check(post_parts(api, f"{ws}/files",
                               [Part("file", b"x", filename_star=star)]), 201)["file_id"]
        r = api.get(f"{ws}/files/{fid}")
        assert r.status_code == 200
        cd = r.headers["content-disposition"]
        m = re.fullmatch(r"attachment; filename\*=UTF-8''([A-Za-z0-9!#$&+\-.^_`|~%]*)", cd)
        if not m or urllib.parse.unquote(m.group(1)) != name:
            bad.append((name, cd))
    assert not bad, "Content-Disposition not RFC 5987 encoded: " + repr(bad)


# --------------------------------------------------------------------------
# 7. SQL metacharacters in every string input
# --------------------------------------------------------------------------

INJECTIONS = ["' OR 1=1 --", "'; DROP TABLE us_sessions; --", "x'); DROP TABLE us_files;--",
              "\" OR \"\"=\"", "%", "_", "\\", "1; DELETE FROM us_uploads"]


def every_endpoint_works(srv, api, ws):
    """Create, upload, list, status, session files, close, ingest, files
    list/get/meta/post: all answer normally."""
    sid, cfg = new_session(api, ws)
    no_content(upload(srv.raw_client(), cfg, "probe.txt", b"probe"))
    assert check(api.get(f"{ws}/upload_sessions"), 200)["total"] >= 1
    assert get_status(api, ws, sid)["uploaded_files"] == 1
    assert [i["name"] for i in list_files_all(api, ws, sid)[0]] == ["probe.txt"]
    close_session(api, ws, sid)
    wait_finished(api, ws, sid, 1)
    fid = check(post_file(api, ws, "probe-direct.txt", b"pd", meta={"p": 1}), 201)["file_id"]
    assert api.get(f"{ws}/files/{fid}").content == b"pd"
    assert check(api.get(f"{ws}/files/{fid}/meta"), 200) == {"p": 1}
    assert {"probe.txt", "probe-direct.txt"} <= {f["name"] for f in ws_files(api, ws)}


def test_sql_metacharacters_everywhere(srv):
    api = srv.client(srv.user_all)
    ws = unique_ws("sqli")
    tables = store_tables(srv)
    assert {"us_sessions", "us_uploads", "us_files"} <= set(tables), tables

    # workspace names outside [A-Za-z0-9][A-Za-z0-9_.-]{0,63}: 404, for every key
    for bad_ws in ["a'--", "x' OR '1'='1", "ws;DROP TABLE us_sessions", "a%27--",
                   "ws\"", "'", "ws%3B--", "ws%20OR%201=1", "-ws", ".ws", "w" * 65]:
        for method, path, kw in [("GET", f"{bad_ws}/upload_sessions", {}),
                                 ("POST", f"{bad_ws}/upload_sessions", {"json": {}}),
                                 ("GET", f"{bad_ws}/files", {}),
                                 ("POST", f"{bad_ws}/files",
                                  {"files": {"file": ("x.txt", b"x")}})]:
            check(api.request(method, path, **kw), 404, WS_NOT_FOUND)
    # an encoded NUL or slash never reaches the module: httpd's own 404
    for bad_ws in ["ws%00x", "ws%2F..%2Fx"]:
        r = api.get(f"{bad_ws}/upload_sessions")
        assert r.status_code == 404, (bad_ws, r.status_code)

    # names with SQL in them, through the upload target and POST /files
    sid, cfg = new_session(api, ws)
    c = srv.raw_client()
    sql_names = ["x'); DROP TABLE us_files;--.txt", "Robert'); DROP TABLE us_sessions;--",
                 "' OR '1'='1", "a\";DELETE FROM us_uploads;--.md", "100%_done.txt"]
    meta = {"q": "it's; DROP TABLE us_files; --", "k'\"; --": "v\"';",
            "nested": {"x": "'); DELETE FROM us_sessions; --"}, "pct": "%_\\"}
    for n in sql_names:
        star = "UTF-8''" + urllib.parse.quote(n, safe="")
        # the upload target's filename goes through the key's ${filename}
        no_content(upload(c, cfg, None, f"session {n}".encode(), filename_star=star))
        no_content(upload(c, cfg, None, json.dumps(meta).encode(),
                          filename_star=star + ".meta.json"))
    items, total = list_files_all(api, ws, sid)
    assert sorted(i["name"] for i in items) == sorted(sql_names) and total == len(sql_names)
    direct = {}
    for n in sql_names:
        r = post_parts(api, f"{ws}/files",
                       [Part("file", f"direct {n}".encode(),
                             filename_star="UTF-8''" + urllib.parse.quote(n, safe="")),
                        Part("meta", json.dumps(meta))])
        direct[check(r, 201)["file_id"]] = n
    close_session(api, ws, sid)
    st = wait_finished(api, ws, sid, len(sql_names))
    assert st["ingestion_status"]["finished_files"] == len(sql_names), st

    files = ws_files(api, ws)
    assert sorted(f["name"] for f in files) == sorted(sql_names * 2)
    for f in files:
        assert f["meta"] == meta, f
        assert check(api.get(f"{ws}/files/{f['file_id']}/meta"), 200) == meta
        body = api.get(f"{ws}/files/{f['file_id']}").content
        assert body in (f"session {f['name']}".encode(), f"direct {f['name']}".encode())

    # query parameters: a substring filter is literal (no LIKE wildcards,
    # no SQL), invalid values are 422 with the value verbatim
    for n in sql_names:
        got = sorted(f["name"] for f in ws_files(api, ws, name=n))
        assert got == [n, n], (n, got)
    for q in INJECTIONS:
        got = ws_files(api, ws, name=q)
        assert all(q in f["name"] for f in got), (q, [f["name"] for f in got])
    assert len(ws_files(api, ws, name="%")) == 2  # only "100%_done.txt", twice
    assert ws_files(api, ws, name="' OR 1=1 --") == []
    sess_files = f"{ws}/upload_sessions/{sid}/files"
    for q in INJECTIONS:
        check(api.get(sess_files, params={"ingestion_status": q}), 422, v422(
            {"type": "enum", "loc": ["query", "ingestion_status"],
             "msg": "Input should be 'PENDING', 'FAILED' or 'FINISHED'", "input": q,
             "ctx": {"expected": "'PENDING', 'FAILED' or 'FINISHED'"}}))
        check(api.get(sess_files, params={"limit": q}), 422,
              v422(e_int_parsing(["query", "limit"], q)))
        check(api.get(f"{ws}/upload_sessions", params={"page_number": q}), 422,
              v422(e_int_parsing(["query", "page_number"], q)))
        check(api.get(f"{ws}/upload_sessions", params={"is_expired": q}), 422,
              v422(e_bool_parsing(["query", "is_expired"], q)))
        r = api.get(f"{ws}/files", params={"after_value": q, "after_file_id": q})
        d = check(r, 422)["detail"]
        assert [(i["loc"], i["input"]) for i in d] == \
            [(["query", "after_value"], q), (["query", "after_file_id"], q)], d
        r = post_file(api, ws, "wm.txt", b"x", params={"write_mode": q})
        check(r, 422, v422({"type": "enum", "loc": ["query", "write_mode"],
                            "msg": "Input should be 'KEEP', 'OVERWRITE' or 'FAIL'",
                            "input": q, "ctx": {"expected": "'KEEP', 'OVERWRITE' or 'FAIL'"}}))
        # body strings
        r = api.post(f"{ws}/upload_sessions", json={"write_mode": q})
        check(r, 422, v422({"type": "enum", "loc": ["body", "write_mode"],
                            "msg": "Input should be 'KEEP', 'OVERWRITE' or 'FAIL'",
                            "input": q, "ctx": {"expected": "'KEEP', 'OVERWRITE' or 'FAIL'"}}))
        r = api.put(f"{ws}/upload_sessions/{sid}", json={"status": q})
        check(r, 422, v422({"type": "literal_error", "loc": ["body", "status"],
                            "msg": "Input should be 'CLOSED'", "input": q,
                            "ctx": {"expected": "'CLOSED'"}}))
        # path ids
        check(api.get(f"{ws}/upload_sessions/{urllib.parse.quote(q, safe='')}"), 422)
        check(api.get(f"{ws}/files/{urllib.parse.quote(q, safe='')}/meta"), 422)

    # the tables are intact and every endpoint still works
    assert store_tables(srv) == tables
    assert len(ws_files(api, ws)) == 2 * len(sql_names)
    every_endpoint_works(srv, api, unique_ws("sqli-after"))


# --------------------------------------------------------------------------
# 8. oversized input: 4xx, bounded memory
# --------------------------------------------------------------------------

def test_oversized_input_refused_with_bounded_memory(srv):
    api = srv.client(srv.user_all, timeout=120)
    ws = unique_ws("big")
    sid, _ = new_session(api, ws)
    rss0, max0 = rss_total(srv)
    per_child0 = children_rss(srv.pid)

    # headers and request line: httpd's own limits (before the module)
    r = api.get(f"{ws}/upload_sessions", headers={"X-Big": "a" * 100_000})
    assert r.status_code == 400, r.status_code
    assert ws not in r.text
    r = api.get(f"{ws}/upload_sessions", headers={"Authorization": "Bearer " + "k" * 100_000})
    assert r.status_code == 400
    r = api.get(f"{ws}/upload_sessions", headers={f"X-H{i}": "v" for i in range(500)})
    assert r.status_code == 400
    r = api.get(f"{ws}/upload_sessions", params={"limit": "1" * 100_000})
    assert r.status_code == 414

    # JSON bodies: at most 64 KiB
    too_large = {"detail": "Request body too large"}
    pre = '{"write_mode":"KEEP","pad":"'
    for n, status in ((65536, 201), (65537, 413), (1 * MiB, 413), (16 * MiB, 413)):
        body = pre + "x" * (n - len(pre) - 2) + '"}'
        r = api.post(f"{ws}/upload_sessions", content=body,
                     headers={"Content-Type": "application/json"})
        if status == 201:
            check(r, 201)
        else:
            check(r, 413, too_large)
        body = '{"status":"CLOSED","pad":"' + "x" * n + '"}'
        check(api.put(f"{ws}/upload_sessions/{sid}", content=body,
                      headers={"Content-Type": "application/json"}), 413, too_large)

    def chunks(n):
        for _ in range(n):
            yield b"x" * 65536
    r = api.post(f"{ws}/upload_sessions", content=chunks(64),  # 4 MiB chunked
                 headers={"Content-Type": "application/json"})
    check(r, 413, too_large)

    # deep nesting: 400 "There was an error parsing the body" (Python's
    # RecursionError); depth 100,000 does not fit in 64 KiB: 413 first
    unparsable = {"detail": "There was an error parsing the body"}
    for body in ("[" * 32_000 + "]" * 32_000, "[" * 32_768, '{"a":' * 10_000 + "1" + "}" * 10_000,
                 '{"write_mode":' + "[" * 30_000):
        check(api.post(f"{ws}/upload_sessions", content=body,
                       headers={"Content-Type": "application/json"}), 400, unparsable)
        check(api.put(f"{ws}/upload_sessions/{sid}", content=body,
                      headers={"Content-Type": "application/json"}), 400, unparsable)
    check(api.post(f"{ws}/upload_sessions", content="[" * 100_000 + "]" * 100_000,
                   headers={"Content-Type": "application/json"}), 413, too_large)
    # the meta of POST /files (limit 1 MiB): nesting 100,000 -> 400, 1 MiB+ -> 413
    check(post_file(api, ws, "deep.txt", b"x", meta="[" * 100_000 + "]" * 100_000), 400,
          {"detail": "meta must be a JSON object or null."})
    check(post_file(api, ws, "deep.txt", b"x", meta='{"a":' * 100_000 + "1" + "}" * 100_000),
          400, {"detail": "meta must be a JSON object or null."})
    check(post_file(api, ws, "big-meta.txt", b"x", meta='{"a":"' + "x" * MiB + '"}'), 413,
          {"detail": "The metadata is too large."})
    assert ws_files(api, ws) == []
    # a sidecar nested 100,000 deep fails its file, nothing else
    sid2, cfg2 = new_session(api, ws)
    c = srv.raw_client()
    no_content(upload(c, cfg2, "deep.txt", b"deep"))
    no_content(upload(c, cfg2, "deep.txt.meta.json", b"[" * 100_000 + b"]" * 100_000))
    no_content(upload(c, cfg2, "fine.txt", b"fine"))
    close_session(api, ws, sid2)
    st = wait_finished(api, ws, sid2, 2)
    assert (st["ingestion_status"]["finished_files"], st["ingestion_status"]["failed_files"]) \
        == (1, 1), st
    states = {i["name"]: (i["ingestion_status"], i.get("ingestion_status_reason"))
              for i in list_files_all(api, ws, sid2)[0]}
    assert states == {"deep.txt": ("FAILED", "FAILED_TO_PARSE_META"),
                      "fine.txt": ("FINISHED", None)}, states

    # the children stayed small
    rss1, max1 = rss_total(srv)
    per_child1 = children_rss(srv.pid)
    growth = {pid: per_child1[pid] - per_child0[pid] for pid in per_child1 if pid in per_child0}
    print(f"\nchildren RSS: total {rss0 / MiB:.1f} -> {rss1 / MiB:.1f} MiB, largest "
          f"{max0 / MiB:.1f} -> {max1 / MiB:.1f} MiB, growth per child "
          + ", ".join(f"{g / MiB:+.1f}" for g in growth.values()))
    limit = 64 * MiB if os.environ.get("US_IT_PRELOAD", "").strip() else 24 * MiB
    for pid, g in growth.items():
        assert g < limit, f"child {pid} grew by {g / MiB:.1f} MiB"
    assert max1 < 200 * MiB, max1

    # the server still serves
    check(api.get(f"{ws}/upload_sessions"), 200)


# --------------------------------------------------------------------------
# 9. secrets
# --------------------------------------------------------------------------

def as_nobody(cmd):
    return subprocess.run(["su", "-s", "/bin/sh", "nobody", "-c", cmd],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)


def test_secret_file_and_store_permissions(make_server):
    import pwd
    s = make_server()
    www = pwd.getpwnam("www-data")
    state = os.path.join(s.dir, "state")
    secret = os.path.join(state, "upload_session.secret")
    st = os.stat(secret)
    assert st.st_mode & 0o777 == 0o600, oct(st.st_mode)
    assert st.st_uid == www.pw_uid, (st.st_uid, www.pw_uid)
    assert st.st_size == 32, st.st_size  # US_SECRET_LEN
    # the store directory and the data directory are closed to other users
    for d in (state, os.path.join(state, "data")):
        m = os.stat(d).st_mode & 0o777
        assert m & 0o007 == 0, f"{d} is open to other users: {oct(m)}"
        assert os.stat(d).st_uid == www.pw_uid
    for path in (secret, os.path.join(state, "store.db")):
        p = as_nobody(f"cat '{path}'")
        assert p.returncode != 0 and p.stdout == b"", (path, p)
    p = as_nobody(f"ls '{state}'")
    assert p.returncode != 0 and p.stdout == b"", p
    # and it survives a restart unchanged (not regenerated, same mode)
    with open(secret, "rb") as f:
        before = f.read()
    s.restart()
    with open(secret, "rb") as f:
        assert f.read() == before
    assert os.stat(secret).st_mode & 0o777 == 0o600


def test_world_readable_secret_is_a_startup_error(server_factory):
    """Whoever reads the signing secret can sign upload policies: a
    world-readable one stops the start, naming it and the fix; made private,
    the same file starts again (and is kept, not regenerated)."""
    from test_startup_user import start_fails
    s = server_factory()
    secret = os.path.join(s.dir, "state", "upload_session.secret")
    with open(secret, "rb") as f:
        before = f.read()
    s.stop()
    os.chmod(secret, 0o644)
    out = start_fails(s)
    assert (f"UploadSessionSecretFile: {secret} is world-readable: chmod o-r it") in out, out
    s.expect_log(r"UploadSessionSecretFile: .* is world-readable", whole_life=True)
    os.chmod(secret, 0o640)
    s.start()
    check(s.raw_client().get("/api/v1/health"), 200, {"status": "ok"})
    with open(secret, "rb") as f:
        assert f.read() == before
    assert sorted(os.listdir(os.path.join(s.dir, "state"))).count("upload_session.secret") == 1
    assert not [n for n in os.listdir(os.path.join(s.dir, "state")) if ".new." in n]


def test_no_secrets_in_logs(make_server):
    s = make_server(start=False, extra=["LogLevel debug"])
    access_log = os.path.join(s.dir, "access.log")
    s.extra += ['LogFormat "%h %l %u %t \\"%r\\" %>s %b \\"%{Referer}i\\" \\"%{User-Agent}i\\"" '
                "combined", f'CustomLog "{access_log}" combined']
    s.start()
    api = s.client(s.user_all)
    ws = unique_ws("logs")
    raw = s.raw_client()
    sent = {}  # label -> secret string that must not show up

    # successes
    sid, cfg = new_session(api, ws)
    sent["policy"] = cfg["fields"]["policy"]
    sent["signature"] = cfg["fields"]["x-amz-signature"]
    results, _ = sdk_upload_many(cfg["url"], cfg["fields"],
                                 [(f"f{i}.txt", b"x" * 100) for i in range(5)], concurrency=5)
    assert all(st == 204 for _n, st, _h, _b in results)
    r = upload(raw, cfg, "created.txt", b"201", extra_fields={"success_action_status": "201"})
    assert r.status_code == 201
    fid = check(post_file(api, ws, "direct.txt", b"d", meta={"m": 1}), 201)["file_id"]
    api.get(f"{ws}/files/{fid}")
    api.get(f"{ws}/files/{fid}/meta")
    api.get(f"{ws}/upload_sessions", params={"limit": 5})
    get_status(api, ws, sid)

    # rejections
    unknown = secrets.token_urlsafe(32)
    sent["unknown key"] = unknown
    check(s.client(unknown).get(f"{ws}/upload_sessions"), 401, INVALID_KEY)
    check(s.client(None, headers={"Authorization": f"Basic {s.key_all}"})
          .get(f"{ws}/upload_sessions"), 401, NOT_AUTHENTICATED)
    check(s.client(s.user_a).get(f"{ws}/upload_sessions"), 403)
    check(api.post(f"{ws}/upload_sessions", json={"write_mode": "NOPE"}), 422)
    f = cfg["fields"]
    bad_sig = ("0" if f["x-amz-signature"][0] != "0" else "1") + f["x-amz-signature"][1:]
    sent["tampered signature"] = bad_sig
    s3_error(upload(raw, cfg, "bad.txt", b"x", extra_fields={"x-amz-signature": bad_sig}),
             403, "AccessDenied", re.compile(".+"))
    bad_policy = flip_b64_char(f["policy"], 10)
    sent["tampered policy"] = bad_policy
    s3_error(upload(raw, cfg, "bad.txt", b"x", extra_fields={"policy": bad_policy}),
             403, "AccessDenied", re.compile(".+"))
    sid2, cfg2 = new_session(api, ws)
    sent["policy 2"] = cfg2["fields"]["policy"]
    sent["signature 2"] = cfg2["fields"]["x-amz-signature"]
    s3_error(upload(raw, dict(cfg2, url=cfg["url"]), "other.txt", b"x"), 403, "AccessDenied",
             re.compile(".+"))
    s3_error(upload(raw, cfg, "x.txt", b"x", extra_fields={"key": "elsewhere/${filename}"}),
             403, "AccessDenied", re.compile(".+"))
    r = post_parts(raw, cfg["url"], [Part("policy", f["policy"]),
                                     Part("x-amz-signature", f["x-amz-signature"])])
    assert r.status_code == 400
    close_session(api, ws, sid)
    s3_error(upload(raw, cfg, "late.txt", b"x"), 403, "AccessDenied", re.compile(".+"))
    check(api.put(f"{ws}/upload_sessions/{sid}", json={}), 409)
    wait_finished(api, ws, sid, 6)

    # what must never be logged
    for u in s.users:
        sent[f"key of {u.given_name}"] = u.key
        sent[f"key hash of {u.given_name}"] = hashlib.sha256(u.key.encode()).hexdigest()
    with open(os.path.join(s.dir, "state", "upload_session.secret"), "rb") as fh:
        secret = fh.read()
    sent["secret hex"] = secret.hex()
    sent["secret HEX"] = secret.hex().upper()
    sent["secret base64"] = base64.b64encode(secret).decode()
    sent["secret base64url"] = base64.urlsafe_b64encode(secret).decode().rstrip("=")
    s.stop()
    logs = {"error.log": s.log_text()}
    with open(access_log, errors="replace") as fh:
        logs["access.log"] = fh.read()
    assert ":debug]" in logs["error.log"]  # LogLevel debug was in effect
    assert len(logs["access.log"].splitlines()) >= 20, logs["access.log"]
    found = []
    for name, text in logs.items():
        found += [(name, label) for label, value in sent.items() if value and value in text]
    with open(s.error_log, "rb") as fh:
        if secret in fh.read():
            found.append(("error.log", "secret raw bytes"))
    assert not found, f"secrets in the logs: {found}"

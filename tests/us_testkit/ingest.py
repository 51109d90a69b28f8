"""Helpers for the ingestion, workspace-files and crash tests
(test_ingest.py, test_files.py, test_crash.py).

- fixtures: a private copy of the module (module_so) for every server these
  tests start (a `make` elsewhere rewrites build/mod_upload_session.so in
  place, which crashes every httpd that has it mapped), the shared server's
  options (shared_server_options) and dedicated servers (make_server; on
  s3 storage s3_server, with direct uploads direct_server), an outage of
  the shared radosgw (outage),
- sessions: create + upload (one file, or many at once the way the official
  SDK does it), close, wait for ingestion, the per-file states,
- the workspace files API: list (paged with the cursor exactly as the SDK
  does), download, meta, direct upload, item checks,
- SIGKILL of a whole httpd (parent + children) and a start after it.

Uploads reuse uploads (the upload-target tests' helpers).
"""

import datetime as dt
import json
import os
import shutil
import time
import uuid

import pytest

from .procs import children_of, pid_alive, port_open, sigkill_daemon, wait_for
from .server import UploadServer, started
from .api import (UUID_CANON_RE, check, close_session, create_session, get_status, parse_ts,
                  session_path)
from .radosgw import gateway_start, gateway_stop, shared_info
from .uploads import check_file_item, list_files_all, private_module_copy, sdk_upload_many, upload

MSG_NO_FILE = "There's no file with the ID '{}' in the workspace."
MSG_FILE_EXISTS = "A file with the name '{}' already exists in the workspace."
MSG_BAD_META = "meta must be a JSON object or null."

FILE_ITEM_KEYS = {"file_id", "url", "name", "size", "meta", "created_at", "characters",
                  "languages"}
STATUS_COUNTERS = {"failed_files", "finished_files", "pending_files"}


# --------------------------------------------------------------------------
# fixtures (import them into a test module to use them)
# --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def module_so():
    """Our own copy of the module: a concurrent `make` rewrites
    build/mod_upload_session.so in place and crashes the httpds using it."""
    path = private_module_copy()
    yield path
    shutil.rmtree(os.path.dirname(path), ignore_errors=True)


@pytest.fixture(scope="module")
def shared_server_options(module_so):
    return {"max_open": 1000, "module": module_so}


@pytest.fixture
def make_server(server_factory, module_so):
    """make(start=True, **UploadServer kwargs) -> a dedicated server on the
    private module copy (stopped, log-checked and removed after the test).
    Shared with the fault suites (test_faults.py, test_security.py)."""
    def make(start=True, **kwargs):
        kwargs.setdefault("module", module_so)
        kwargs.setdefault("max_open", 1000)
        return server_factory(start=start, **kwargs)
    return make


S3_DIRECT = "UploadSessionS3DirectUpload On"


@pytest.fixture
def s3_server(make_server):
    """make(**make_server kwargs) -> a dedicated server on s3 storage (the
    session's private radosgw, us_testkit.radosgw.shared_info), whatever
    US_IT_STORAGE says."""
    def make(**kw):
        return make_server(storage="s3", **kw)
    return make


@pytest.fixture
def direct_server(s3_server):
    """make(extra=(), **kw) -> an s3 server taking uploads straight into the
    bucket (UploadSessionS3DirectUpload On), extra directives after it."""
    def make(extra=(), **kw):
        return s3_server(extra=[S3_DIRECT, *extra], **kw)
    return make


@pytest.fixture
def outage():
    """stop() kills the shared radosgw daemon (its objects stay in the OSD);
    start() brings it back; it is back after the test whatever happens."""
    d = shared_info()["dir"]

    class Outage:
        down = False

        def stop(self):
            gateway_stop(d)
            self.down = True

        def start(self):
            gateway_start(d)
            self.down = False
    o = Outage()
    yield o
    if o.down:
        gateway_start(d)


@pytest.fixture(scope="module")
def sweeping_server(module_so):
    """One server per test module whose expiry sweep runs at every monitor
    call (UploadSessionSweepInterval 1): tests that wait for sweeps share it,
    so they share the wait for httpd's first monitor call (~9 s after start)."""
    with started(UploadServer(max_open=1000, module=module_so,
                              extra=["UploadSessionSweepInterval 1"])) as s:
        yield s


@pytest.fixture
def sweep_srv(sweeping_server, request):
    """sweeping_server for one test, its error log checked after the test."""
    yield sweeping_server
    sweeping_server.close_clients()
    sweeping_server.check_log(f" (after {request.node.name})")


# --------------------------------------------------------------------------
# sessions
# --------------------------------------------------------------------------

def new_session(api, ws, body=None):
    """Create a session; returns (session_id, aws_prefixed_request_config)."""
    sess = create_session(api, ws, body)
    return sess["session_id"], sess["aws_prefixed_request_config"]


def upload_one(client, cfg, name, data):
    """Upload one file through the session's upload target (204 asserted)."""
    r = upload(client, cfg, name, data)
    assert r.status_code == 204 and r.content == b"", \
        f"upload {name!r}: {r.status_code} {r.text[:500]!r}"


def upload_all(cfg, files, concurrency=16, deadline=60):
    """Upload [(name, bytes)] like the official SDK (aiohttp, `concurrency`
    at once, all within `deadline` seconds); every one must answer 204."""
    results, _ = sdk_upload_many(cfg["url"], cfg["fields"], list(files), concurrency, deadline)
    bad = [(n, st, body[:300]) for n, st, _h, body in results if st != 204 or body != b""]
    assert not bad, f"{len(bad)} of {len(results)} uploads failed, e.g. {bad[:5]}"
    return len(results)


def counters(status_body):
    ing = status_body["ingestion_status"]
    assert set(ing) == STATUS_COUNTERS, status_body
    return ing["finished_files"], ing["failed_files"], ing["pending_files"]


BUSY_BODY = {"detail": "The service is busy. Try again in a moment."}


def wait_ingested(api, ws, sid, n, timeout=60, interval=0.2, busy_ok=False):
    """Poll the session status until finished + failed == n and nothing is
    pending; checks on the way that the counters never go back and always
    add up to uploaded_files. Returns the last status body. busy_ok: a 503
    with Retry-After and the busy body (a pooled store connection a
    database restart dropped answers so once) is polled again."""
    deadline = time.monotonic() + timeout
    last = (0, 0)
    while True:
        if busy_ok:
            r = api.get(session_path(ws, sid))
            if r.status_code == 503:
                check(r, 503, BUSY_BODY)
                assert r.headers.get("Retry-After") == "1", r.headers
                if time.monotonic() > deadline:
                    raise AssertionError(f"still busy after {timeout}s")
                time.sleep(interval)
                continue
            st = check(r, 200)
        else:
            st = get_status(api, ws, sid)
        fin, fail, pend = counters(st)
        assert st["uploaded_files"] == n, st
        assert fin + fail + pend == n, st
        assert fin >= last[0] and fail >= last[1], (last, st)
        last = (fin, fail)
        if fin + fail == n and pend == 0:
            return st
        if time.monotonic() > deadline:
            raise AssertionError(f"ingestion of {n} files not done within {timeout}s: {st}")
        time.sleep(interval)


def close_and_wait(api, ws, sid, n, timeout=60):
    close_session(api, ws, sid)
    return wait_ingested(api, ws, sid, n, timeout)


def session_files(api, ws, sid):
    """Every item of the session's file list (pages of 100), item shapes
    checked; returns {name: item} (names are unique within a session)."""
    items, total = list_files_all(api, ws, sid, limit=100)
    out = {}
    for it in items:
        check_file_item(it)
        if it["ingestion_status"] == "FAILED":
            assert "ingestion_status_reason" in it, it
        else:
            assert "ingestion_status_reason" not in it, it
        assert it["name"] not in out, f"name listed twice: {it}"
        out[it["name"]] = it
    assert len(out) == total
    assert len({i["file_ingestion_id"] for i in items}) == total, "duplicate ids"
    return out


def assert_counters_match(status_body, items):
    """The status counters equal the per-file states of the list."""
    states = [i["ingestion_status"] for i in items.values()]
    fin, fail, pend = counters(status_body)
    assert (fin, fail, pend) == (states.count("FINISHED"), states.count("FAILED"),
                                 states.count("PENDING")), status_body
    assert status_body["uploaded_files"] == len(items), status_body


def state_of(item):
    """(status, reason or None) of a session file item."""
    return item["ingestion_status"], item.get("ingestion_status_reason")


# --------------------------------------------------------------------------
# the workspace files API
# --------------------------------------------------------------------------

def ws_files_path(ws, file_id=None, meta=False):
    p = f"{ws}/files"
    if file_id is not None:
        p += f"/{file_id}"
    if meta:
        p += "/meta"
    return p


def check_ws_file_item(srv, ws, item):
    assert set(item) == FILE_ITEM_KEYS, item
    assert UUID_CANON_RE.match(item["file_id"]), item
    assert item["url"] == f"/api/v1/workspaces/{ws}/files/{item['file_id']}", item
    assert isinstance(item["name"], str) and item["name"], item
    assert isinstance(item["size"], int) and item["size"] >= 0, item
    assert isinstance(item["meta"], dict), item
    assert item["characters"] is None or (isinstance(item["characters"], int)
                                          and item["characters"] >= 0), item
    assert item["languages"] is None, item
    parse_ts(item["created_at"])
    return item


def order_key(item):
    """The list order: newest first by created_at, then file_id."""
    return (parse_ts(item["created_at"]), item["file_id"])


def ws_files_page(api, ws, **params):
    data = check(api.get(ws_files_path(ws), params=params), 200)
    assert set(data) == {"data", "total", "has_more"}, data
    assert isinstance(data["has_more"], bool) and isinstance(data["total"], int), data
    return data


def sdk_cursor(item):
    """The cursor the official SDK sends for the next page: the last item's
    created_at parsed by datetime.fromisoformat and re-formatted with
    .isoformat() (so '+00:00', not 'Z'), and its file_id."""
    created = dt.datetime.fromisoformat(item["created_at"])
    return created.isoformat(), str(uuid.UUID(item["file_id"]))


def list_ws_files(srv, api, ws, limit=100, name=None):
    """Every workspace file, paged the way deepset_cloud_sdk's
    FilesAPI.list_paginated is driven; checks every page (item shapes, order,
    total, has_more). Returns the items in list order."""
    out = []
    params = {"limit": limit}
    if name is not None:
        params["name"] = name
    total = None
    for _ in range(100000):
        data = ws_files_page(api, ws, **params)
        if total is None:
            total = data["total"]
        assert data["total"] == total, (total, data["total"])
        assert len(data["data"]) <= limit, data
        for it in data["data"]:
            check_ws_file_item(srv, ws, it)
        out += data["data"]
        if not data["has_more"]:
            break
        assert len(data["data"]) == limit, data
        params["after_value"], params["after_file_id"] = sdk_cursor(data["data"][-1])
    assert len(out) == total, (len(out), total)
    keys = [order_key(i) for i in out]
    assert keys == sorted(keys, reverse=True), "not newest first"
    assert len({i["file_id"] for i in out}) == len(out), "a file listed twice"
    return out


def download(api, ws, file_id):
    """GET the file's bytes: 200 with a matching Content-Length."""
    r = api.get(ws_files_path(ws, file_id))
    assert r.status_code == 200, f"GET file {file_id}: {r.status_code} {r.text[:300]!r}"
    assert int(r.headers["content-length"]) == len(r.content), r.headers
    return r


def get_meta(api, ws, file_id):
    return check(api.get(ws_files_path(ws, file_id, meta=True)), 200)


def no_file(api, ws, file_id):
    """The file is unknown in ws: 404 for bytes and meta."""
    body = {"detail": MSG_NO_FILE.format(file_id)}
    check(api.get(ws_files_path(ws, file_id)), 404, body)
    check(api.get(ws_files_path(ws, file_id, meta=True)), 404, body)


def post_file(api, ws, name, data, meta=None, write_mode=None, meta_as="field",
              status=201):
    """POST /files as the SDK does: multipart part `file`, `meta` as a form
    field (meta_as='field', like direct_upload_in_memory) or as a part
    without filename (meta_as='part', like direct_upload_path); meta is sent
    as json.dumps(meta) unless it is already a str, omitted when meta_as is
    None. Returns the decoded body."""
    params = {} if write_mode is None else {"write_mode": write_mode}
    files = {"file": (name, data)}
    form = None
    if meta_as is not None:
        text = meta if isinstance(meta, str) else json.dumps(meta)
        if meta_as == "field":
            form = {"meta": text}
        else:
            files["meta"] = (None, text)
    r = api.post(ws_files_path(ws), params=params, files=files, data=form)
    body = check(r, status)
    if status == 201:
        assert set(body) == {"file_id"} and UUID_CANON_RE.match(body["file_id"]), body
    return body


# --------------------------------------------------------------------------
# SIGKILL
# --------------------------------------------------------------------------

def httpd_pids(srv):
    """[parent, children...] of the server (parent from its pid file)."""
    try:
        with open(srv.pid_file) as f:
            parent = int(f.read().strip())
    except (OSError, ValueError):
        return []
    return [parent] + children_of(parent)


def kill9(srv):
    """SIGKILL the parent and every child at once (sigkill_daemon); waits
    until all are gone and the port is free. Returns the pids killed."""
    pids = httpd_pids(srv)
    assert pids and pid_alive(pids[0]), f"httpd of {srv.dir} is not running"
    pids = sigkill_daemon(pids[0])
    assert wait_for(lambda: not any(pid_alive(p) for p in pids), 10), \
        f"httpd processes survived SIGKILL: {[p for p in pids if pid_alive(p)]}"
    # Best effort: let init reap them too. The module takes a claim's owner
    # for alive while kill(pid, 0) succeeds, which it does for a zombie; a
    # supervisor reaps at once, this container's init only now and then.
    wait_for(lambda: not any(os.path.exists(f"/proc/{p}") for p in pids), 5)
    srv.close_clients()
    srv.running = False
    srv.pid = None
    assert wait_for(lambda: not port_open(srv.port), 10), "port still open after SIGKILL"
    return pids


def start_after_kill(srv):
    """Start the server again on the same directory and port (the stale pid
    file is removed first: the harness would take its dead pid for a crash)."""
    try:
        os.remove(srv.pid_file)
    except FileNotFoundError:
        pass
    srv.start()
    return srv.client(srv.user_all)


def tmp_files_under(root):
    """Every '*.tmp' file below root (relative paths)."""
    out = []
    for dp, _dns, fns in os.walk(root):
        out += [os.path.relpath(os.path.join(dp, n), root) for n in fns if n.endswith(".tmp")]
    return sorted(out)


def get_status_retry(srv, ws, sid, timeout=15):
    """The session status, retried while a fresh server is still warming up."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return get_status(srv.client(srv.user_all), ws, sid)
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)

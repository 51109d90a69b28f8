"""What an operator watches (issue #15 item 1): the Prometheus exposition
(SetHandler upload-session-metrics), the JSON status (SetHandler
upload-session-status) and mod_status's section, with and without ?auto.

The counters live in memory shared by httpd's processes: a known number of
files is uploaded and ingested through a server of four children with two
threads each, so the requests land in several children, and the pages
must show the exact totals - then the same after a graceful restart."""

import contextlib
import json
import os
import re
import socket
import subprocess
import threading
import time
import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families

from us_testkit import pg
from us_testkit.api import check, close_session, get_status, unique_ws
from us_testkit.faults import store_locked
from us_testkit.ingest import (httpd_pids, make_server, module_so, new_session,  # noqa: F401
                               upload_one)
from us_testkit.procs import pid_alive, wait_for
from us_testkit.server import new_client
from us_testkit.uploads import Part, form_parts, multipart, new_boundary, url_path

VERSION = re.search(r'#define US_VERSION "([^"]+)"',
                    open(os.path.join(os.path.dirname(__file__), "..", "..", "include",
                                      "us_version.h")).read()).group(1)

PREFIX = "mod_upload_session_"
ENDPOINTS = ["session_create", "session_list", "session_get", "session_close", "session_files",
             "file_list", "file_get", "file_meta", "file_post", "upload", "health",
             "session_abort", "file_delete", "files_delete", "files_update_meta", "workspace",
             "other"]
BUCKETS = ["0.001", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5",
           "10", "+Inf"]
REASONS = ["EMPTY_FILE", "FAILED_TO_PARSE_META", "FILE_ALREADY_EXISTS", "FILE_NOT_FOUND",
           "UNKNOWN_ERROR", "OTHER"]

# four children of two threads: concurrent requests spread over them
MPM = ["StartServers 4", "ServerLimit 4", "ThreadLimit 2", "ThreadsPerChild 2",
       "MaxRequestWorkers 8", "MinSpareThreads 2", "MaxSpareThreads 8"]
PAGES = [
    "<Location /ops/metrics>", "SetHandler upload-session-metrics", "Require ip 127.0.0.1",
    "</Location>",
    "<Location /ops/status>", "SetHandler upload-session-status", "Require ip 127.0.0.1",
    "</Location>",
    "<Location /server-status>", "SetHandler server-status", "Require ip 127.0.0.1",
    "</Location>",
    # a page for other addresses only: the loopback client is refused
    "<Location /ops/elsewhere>", "SetHandler upload-session-metrics", "Require ip 192.0.2.1",
    "</Location>",
]
MODULES = [("status_module", "mod_status.so"), ("authz_host_module", "mod_authz_host.so")]


def ops_server(make_server, hooks=False, **kwargs):
    s = make_server(start=False, modules=MODULES, **kwargs)
    access = os.path.join(s.dir, "access.log")
    if hooks:  # a receiver that is never there: nothing is sent before a close
        s.add_webhooks(["http://127.0.0.1:9/hook"])
    s.extra += MPM + PAGES + ['LogFormat "%P %>s %m %U" pids', f'CustomLog "{access}" pids']
    s.access_log = access
    # eight workers on purpose (the counters must add up across four
    # children): eight parallel uploads plus a scrape can fill them all
    s.expect_log(r"server reached MaxRequestWorkers setting", whole_life=True)
    s.start()
    return s


def parse_exposition(text):
    """{(name, frozenset(labels)): value}; checks the 0.0.4 format on the way:
    every sample belongs to a family announced by one HELP and one TYPE line."""
    assert text.endswith("\n"), text[-200:]
    helps, types, samples = {}, {}, {}
    for line in text.splitlines():
        m = re.fullmatch(r"# HELP (\w+) (.+)", line)
        if m:
            assert m.group(1) not in helps, line
            helps[m.group(1)] = m.group(2)
            continue
        m = re.fullmatch(r"# TYPE (\w+) (counter|gauge|histogram)", line)
        if m:
            assert m.group(1) in helps and m.group(1) not in types, line
            types[m.group(1)] = m.group(2)
            continue
        m = re.fullmatch(r'(\w+)(\{[^}]*\})? (\d+(?:\.\d+)?)', line)
        assert m, f"not a sample line: {line!r}"
        name, labels = m.group(1), m.group(2) or ""
        family = re.sub(r"_(bucket|sum|count)$", "", name) \
            if types.get(re.sub(r"_(bucket|sum|count)$", "", name)) == "histogram" else name
        assert family in types, line
        assert family.startswith(PREFIX), line
        if types[family] == "counter":
            assert name.endswith("_total"), line
        pairs = frozenset(re.findall(r'(\w+)="([^"]*)"', labels))
        key = (name, pairs)
        assert key not in samples, line
        samples[key] = float(m.group(3))
    return types, samples


def sample(samples, name, **labels):
    return samples[(PREFIX + name, frozenset(labels.items()))]


def scrape(c):
    r = c.get("/ops/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    types, samples = parse_exposition(r.text)
    # Prometheus's own parser reads the same families, types and values
    # (it names a counter's family without its _total)
    parsed, families = {}, {}
    for fam in text_string_to_metric_families(r.text):
        families[fam.name + ("_total" if fam.type == "counter" else "")] = fam.type
        for smp in fam.samples:
            parsed[(smp.name, frozenset(smp.labels.items()))] = smp.value
    assert families == types
    assert parsed == samples
    return types, samples


def status(c):
    r = c.get("/ops/status")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    return r.json()


def check_histograms(samples, expected_counts):
    for ep in ENDPOINTS:
        counts = [sample(samples, "request_duration_seconds_bucket", endpoint=ep, le=b)
                  for b in BUCKETS]
        assert counts == sorted(counts), (ep, counts)
        total = sample(samples, "request_duration_seconds_count", endpoint=ep)
        assert counts[-1] == total, (ep, counts, total)
        if ep in expected_counts:
            assert total == expected_counts[ep], (ep, total, expected_counts[ep])
        s = sample(samples, "request_duration_seconds_sum", endpoint=ep)
        assert (s > 0) == (total > 0), (ep, s, total)


def counters_of(samples):
    return {
        "uploads": sample(samples, "uploads_total"),
        "bytes": sample(samples, "upload_bytes_total"),
        "finished": sample(samples, "ingested_files_total", status="FINISHED", reason=""),
        **{r: sample(samples, "ingested_files_total", status="FAILED", reason=r) for r in REASONS},
        "store_errors": sample(samples, "store_errors_total"),
        "worker_store_errors": sample(samples, "worker_store_errors_total"),
        "ingest_claims_lost": sample(samples, "ingest_claims_lost_total"),
    }


def upload_concurrently(srv, cfg, files):
    errors = []

    def one(chunk):
        # a connection per upload: with two threads per child the MPM closes
        # idle keep-alive connections, which a reused one would run into
        for name, data in chunk:
            try:
                with new_client(base_url=srv.public_url) as c:
                    upload_one(c, cfg, name, data)
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(f"{name}: {e!r}")

    chunks = [files[i::8] for i in range(8)]
    threads = [threading.Thread(target=one, args=(ch,)) for ch in chunks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


def test_counters_add_up_across_children(make_server):
    s = ops_server(make_server)
    ops = s.raw_client()
    api = s.client(s.user_all)

    types, samples = scrape(ops)
    assert types[PREFIX + "request_duration_seconds"] == "histogram"
    assert types[PREFIX + "ingest_queue_sessions"] == "gauge"
    assert counters_of(samples) == {"uploads": 0, "bytes": 0, "finished": 0, "store_errors": 0,
                                    "worker_store_errors": 0, "ingest_claims_lost": 0,
                                    **{r: 0 for r in REASONS}}
    assert sample(samples, "store_up") == 1
    assert sample(samples, "sessions", state="OPEN") == 0
    check_histograms(samples, {ep: 0 for ep in ENDPOINTS})

    # 24 files with content, 3 empty, one with an unreadable sidecar
    ws = unique_ws("metrics")
    sid, cfg = new_session(api, ws, {"write_mode": "KEEP"})
    files = [(f"f{i:02d}.txt", os.urandom(100 * i + 1)) for i in range(24)]
    files += [(f"empty{i}.txt", b"") for i in range(3)]
    files += [("bad.txt", b"content"), ("bad.txt.meta.json", b"{not json")]
    upload_concurrently(s, cfg, files)
    total_bytes = sum(len(d) for _, d in files)

    # in flight: the session is open, nothing ingested yet
    st = status(ops)
    assert st["sessions"] == {"OPEN": 1, "CLOSED": 0, "EXPIRED": 0}, st
    assert st["uploads"] == {"total": len(files), "bytes_total": total_bytes,
                             "in_progress": 0, "bytes_in_progress": 0}, st

    close_session(api, ws, sid)
    polls = 0
    deadline = time.monotonic() + 60
    while True:
        body = get_status(api, ws, sid)
        polls += 1
        if body["ingestion_status"]["pending_files"] == 0:
            break
        assert time.monotonic() < deadline, body
        time.sleep(0.2)
    assert body["ingestion_status"]["finished_files"] == 24, body
    assert body["ingestion_status"]["failed_files"] == 4, body
    # the session leaves the queue when its worker marks it done
    for _ in range(100):
        st = status(ops)
        if st["ingest_queue"]["sessions"] == 0:
            break
        time.sleep(0.1)

    types, samples = scrape(ops)
    want = {"uploads": len(files), "bytes": total_bytes, "finished": 24, "store_errors": 0,
            "worker_store_errors": 0, "ingest_claims_lost": 0, "EMPTY_FILE": 3, "FAILED_TO_PARSE_META": 1, "FILE_ALREADY_EXISTS": 0,
            "FILE_NOT_FOUND": 0, "UNKNOWN_ERROR": 0, "OTHER": 0}
    assert counters_of(samples) == want
    assert sample(samples, "sessions", state="CLOSED") == 1
    assert sample(samples, "sessions", state="OPEN") == 0
    assert sample(samples, "ingest_queue_sessions") == 0
    assert sample(samples, "ingest_queue_oldest_age_seconds") == 0
    assert sample(samples, "uploads_in_progress") == 0
    assert sample(samples, "upload_bytes_in_progress") == 0
    # the get_status calls of close_session's callers: only ours here
    counts = {ep: 0 for ep in ENDPOINTS}
    counts.update({"session_create": 1, "session_close": 1, "session_get": polls,
                   "upload": len(files)})
    check_histograms(samples, counts)

    st = status(ops)
    assert st == {
        "version": VERSION,
        "counting_since": st["counting_since"],
        "store": {"status": "ok"},
        "storage": {"status": "ok"},
        "sessions": {"OPEN": 0, "CLOSED": 1, "EXPIRED": 0},
        "ingest_queue": {"sessions": 0, "running": 0, "oldest_age_seconds": 0},
        "files": {"FINISHED": 24, "FAILED": {"EMPTY_FILE": 3, "FAILED_TO_PARSE_META": 1,
                                             "FILE_ALREADY_EXISTS": 0, "FILE_NOT_FOUND": 0,
                                             "UNKNOWN_ERROR": 0, "OTHER": 0}},
        "uploads": {"total": len(files), "bytes_total": total_bytes, "in_progress": 0,
                    "bytes_in_progress": 0},
        "requests": counts,
        "store_errors_total": 0,
        "worker_store_errors_total": 0,
        "ingest_claims_lost_total": 0,
        "leases": {},
    }, st
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", st["counting_since"]), st

    # the uploads were served by several children, whose counts all add up
    with open(s.access_log) as f:
        pids = {line.split()[0] for line in f if " POST /api/v1/upload_target/" in line}
    assert len(pids) >= 2, pids

    # a graceful restart keeps the counts (new children, same segment)
    s.graceful()
    _, after = scrape(ops)
    assert counters_of(after) == want
    assert status(ops)["counting_since"] == st["counting_since"]


def test_each_request_counts_under_its_endpoint(make_server):
    """Aborts, deletes, the metadata update and the workspaces' routes each
    count under an endpoint of their own, not under a read's."""
    s = ops_server(make_server)
    ops = s.raw_client()
    api = s.client(s.user_all)
    ws = unique_ws("endpoints")
    sid, _ = new_session(api, ws)
    check(api.delete(f"{ws}/upload_sessions/{sid}"), 204)
    unknown = str(uuid.uuid4())
    check(api.delete(f"{ws}/files/{unknown}"), 404,
          {"detail": f"There's no file with the ID '{unknown}' in the workspace."})
    check(api.request("DELETE", f"{ws}/files", json={"names": ["none.txt"]}), 200, None)
    check(api.post(f"{ws}/files/update-meta", json={unknown: {"k": 1}}), 200, {
        "failed_count": 1, "failed_files": [
            {"file_id": unknown, "error_type": "FILE_NOT_FOUND",
             "error_message": f"There's no file with the ID '{unknown}' in the workspace."}]})
    assert check(api.get(ws), 200)["name"] == ws
    _, samples = scrape(ops)
    counts = {ep: 0 for ep in ENDPOINTS}
    counts.update({"session_create": 1, "session_abort": 1, "file_delete": 1,
                   "files_delete": 1, "files_update_meta": 1, "workspace": 1})
    check_histograms(samples, counts)


def test_mod_status_section(make_server):
    s = ops_server(make_server)
    ops = s.raw_client()
    api = s.client(s.user_all)
    ws = unique_ws("status")
    sid, cfg = new_session(api, ws)
    upload_one(ops, cfg, "a.txt", b"12345")
    upload_one(ops, cfg, "b.txt", b"")

    r = ops.get("/server-status?auto")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain"), r.headers
    lines = r.text.splitlines()
    mine = [line for line in lines if line.startswith("UploadSession")]
    assert mine == [
        "UploadSessionStore: ok",
        "UploadSessionStorage: ok",
        "UploadSessionSessionsOpen: 1",
        "UploadSessionSessionsClosed: 0",
        "UploadSessionSessionsExpired: 0",
        "UploadSessionIngestQueue: 0",
        "UploadSessionIngestQueueOldestAge: 0.000000",
        "UploadSessionUploads: 2",
        "UploadSessionUploadBytes: 5",
        "UploadSessionUploadsInProgress: 0",
        "UploadSessionFilesFinished: 0",
        "UploadSessionFilesFailed: 0",
        "UploadSessionStoreErrors: 0",
        "UploadSessionWorkerStoreErrors: 0",
        "UploadSessionIngestClaimsLost: 0",
    ], r.text
    assert any(line.startswith("ServerUptimeSeconds: ") for line in lines), r.text

    r = ops.get("/server-status")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html"), r.headers
    assert "<h2>mod_upload_session</h2>" in r.text, r.text
    assert '<tr><th align="left">Uploads</th><td>2</td></tr>' in r.text, r.text
    assert '<tr><th align="left">SessionsOpen</th><td>1</td></tr>' in r.text, r.text
    assert '<tr><th align="left">Store</th><td>ok</td></tr>' in r.text, r.text
    assert "<tr><th align=\"left\">WorkerStoreErrors</th><td>0</td></tr>" in r.text, r.text


def test_pages_answer_get_only_and_obey_require(make_server):
    s = ops_server(make_server)
    # each request on a connection of its own: httpd may close an idle
    # keep-alive connection at any time (the event MPM does when a child's
    # workers are all busy, and this server's children have two), and a
    # client sees that as a disconnect on its next request - once in a CI
    # dry run, on the third request here. These checks are about the answers.
    ops = s.raw_client()
    ops.headers["Connection"] = "close"
    r = ops.post("/ops/metrics", content=b"")
    assert r.status_code == 405, r.text
    assert "Method Not Allowed" in r.text, r.text
    r = ops.post("/ops/status", content=b"")
    assert r.status_code == 405, r.text
    s.expect_log(r"AH01630: client denied by server configuration")
    r = ops.get("/ops/elsewhere")
    assert r.status_code == 403, r.text
    assert "Forbidden" in r.text, r.text
    # HEAD: the headers only
    r = ops.head("/ops/status")
    assert r.status_code == 200 and r.content == b"", r
    assert r.headers["content-type"] == "application/json"


@pytest.mark.skipif(os.environ.get("US_IT_STORE") == "pgsql",
                    reason="store_locked holds SQLite's write lock")
def test_store_errors_are_counted(make_server):
    s = ops_server(make_server, extra=["UploadSessionBusyTimeout 100"])
    ops = s.raw_client()
    api = s.client(s.user_all)
    ws = unique_ws("busy")
    with store_locked(s):
        for _ in range(2):
            r = api.post(f"{ws}/upload_sessions", json={})
            check(r, 503, {"detail": "The service is busy. Try again in a moment."})
        # the pages only read: they answer while writers are locked out (WAL)
        _, samples = scrape(ops)
        assert sample(samples, "store_errors_total") == 2
        assert sample(samples, "store_up") == 1
        assert sample(samples, "sessions", state="OPEN") == 0
    st = status(ops)
    assert st["store_errors_total"] == 2, st
    assert st["store"] == {"status": "ok"}, st
    assert st["requests"]["session_create"] == 2, st


@contextlib.contextmanager
def outbox_locked(srv):
    """A transaction holding ACCESS EXCLUSIVE on the webhook outbox for the
    with block: the outbox's reads wait for it and give up after the
    connections' lock_timeout (UploadSessionBusyTimeout); other tables
    answer."""
    held = subprocess.Popen(
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1",
         f"{pg.cluster().conninfo} dbname={srv.pg_db}"],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        held.stdin.write("BEGIN;\nLOCK TABLE us_webhook_outbox IN ACCESS EXCLUSIVE MODE;\n")
        held.stdin.flush()
        granted = ("SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation"
                   " WHERE c.relname = 'us_webhook_outbox' AND l.mode = 'AccessExclusiveLock'"
                   " AND l.granted")
        assert wait_for(lambda: pg.cluster().psql(granted, dbname=srv.pg_db) == "1", 10)
        yield
    finally:
        held.communicate("ROLLBACK;\n", timeout=30)
    assert held.returncode == 0, held.stderr


def auto_lines(c):
    r = c.get("/server-status?auto")
    assert r.status_code == 200, r.text
    return [line for line in r.text.splitlines() if line.startswith("UploadSessionStore")]


@pytest.mark.skipif(pg.store_driver() != "pgsql",
                    reason="PostgreSQL stopped (US_IT_STORE=pgsql); SQLite's file cannot go away")
@pytest.mark.parametrize("hooks", [False, True], ids=["no-webhooks", "webhooks"])
def test_store_outage_shows_on_every_page(make_server, hooks):
    """Webhooks or not, a store that does not answer is "unavailable" on the
    JSON status, in ?auto and as store_up 0, and counts as a store error."""
    s = ops_server(make_server, hooks=hooks)
    s.expect_log(r"US0017: status: the store does not answer")
    ops = s.raw_client(timeout=10)
    ops.headers["Connection"] = "close"
    assert status(ops)["store"] == {"status": "ok"}
    pg.cluster().pause()
    try:
        st = status(ops)
        auto = auto_lines(ops)
        _, samples = scrape(ops)
        # the workers meet the outage too: counted apart, while the
        # counters' page still answers
        assert wait_for(lambda: sample(scrape(ops)[1], "worker_store_errors_total") >= 1, 20)
    finally:
        pg.cluster().resume()
    assert st["store"]["status"] == "unavailable", st
    assert st["store"]["error"] and isinstance(st["store"]["error"], str), st
    assert set(st["store"]) == {"status", "error"}, st
    assert st["sessions"] is None and st["ingest_queue"] is None, st
    if hooks:
        assert st["webhooks"] is None, st
    else:
        assert "webhooks" not in st, st
    # each page counts its failed read; a page shows the count it started with
    assert st["store_errors_total"] == 0, st
    assert auto == ["UploadSessionStore: unavailable", "UploadSessionStoreErrors: 1"], auto
    assert sample(samples, "store_up") == 0
    assert sample(samples, "store_errors_total") == 2
    assert s.log_text().count("US0017: status: the store does not answer") >= 3, s.log_tail()
    # back: connections lost in the outage are dropped and opened again
    assert wait_for(lambda: status(ops)["store"] == {"status": "ok"}, 20), status(ops)
    st = status(ops)
    assert st["sessions"] == {"OPEN": 0, "CLOSED": 0, "EXPIRED": 0}, st
    assert st["store_errors_total"] >= 3, st
    if hooks:
        assert st["webhooks"] == {"urls": 1, "pending": 0, "failed": 0,
                                  "oldest_pending_age_seconds": 0, "last_error": None,
                                  "last_error_at": None, "urls_paused": 0, "paused": []}, st


@pytest.mark.skipif(pg.store_driver() != "pgsql",
                    reason="a lock on one table (US_IT_STORE=pgsql)")
def test_unreadable_outbox_leaves_the_overview(make_server):
    """The webhook outbox that cannot be read nulls "webhooks" alone: the
    overview, read before it, is shown, and the store is ok. Each page's
    failed read of it counts as a store error, as a failed overview does."""
    s = ops_server(make_server, hooks=True, extra=["UploadSessionBusyTimeout 200"])
    s.expect_log(r"US0024: status: the webhook outbox cannot be read")
    ops = s.raw_client(timeout=10)
    ops.headers["Connection"] = "close"
    api = s.client(s.user_all)
    new_session(api, unique_ws("outbox"))
    with outbox_locked(s):
        st = status(ops)
        auto = auto_lines(ops)
        _, samples = scrape(ops)
    assert st["store"] == {"status": "ok"}, st
    assert st["sessions"] == {"OPEN": 1, "CLOSED": 0, "EXPIRED": 0}, st
    assert st["ingest_queue"] == {"sessions": 0, "running": 0, "oldest_age_seconds": 0}, st
    assert st["webhooks"] is None, st
    # a page shows the count it started with
    assert st["store_errors_total"] == 0, st
    assert auto == ["UploadSessionStore: ok", "UploadSessionStoreErrors: 1"], auto
    assert sample(samples, "store_errors_total") == 2
    assert sample(samples, "store_up") == 1
    assert sample(samples, "sessions", state="OPEN") == 1
    assert "webhook_deliveries_pending" not in {k[0] for k in samples}, samples
    assert "US0024: status: the webhook outbox cannot be read" in s.log_text(), s.log_tail()
    assert "US0017" not in s.log_text(), s.log_tail()
    st = status(ops)
    assert st["webhooks"]["urls"] == 1, st
    assert st["store_errors_total"] == 3, st


def child_holding(srv, client_port):
    """The httpd child whose socket is the server's end of the connection
    from client_port."""
    inode = None
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                cols = line.split()
                local, remote = int(cols[1].split(":")[1], 16), int(cols[2].split(":")[1], 16)
                if local == srv.port and remote == client_port:
                    inode = cols[9]
    assert inode, f"no server socket for client port {client_port}"
    for pid in httpd_pids(srv)[1:]:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]":
                    return pid
            except OSError:
                pass
    raise AssertionError(f"no child holds socket {inode}")


def in_progress(srv):
    """(uploads, bytes) in progress, from a fresh connection; None when no
    child answers."""
    try:
        with new_client(base_url=srv.public_url, timeout=5) as c:
            _, samples = scrape(c)
    except Exception:  # noqa: BLE001 - a killed child's connection
        return None
    return sample(samples, "uploads_in_progress"), sample(samples, "upload_bytes_in_progress")


def test_a_child_killed_mid_upload_leaves_no_upload_in_progress(make_server):
    """A child killed (-9) while it receives an upload never ends it: the
    parent, which reaps it, takes its uploads in progress off the gauges
    (the counters it counted stay)."""
    s = ops_server(make_server)
    s.expect_log(r"AH00052|exit signal", whole_life=True)
    api = s.client(s.user_all)
    ws = unique_ws("metrics-kill")
    sid, cfg = new_session(api, ws, {"write_mode": "KEEP"})
    upload_one(api, cfg, "done.txt", b"done")
    # the head and 256 KiB of a 1 MiB file, then nothing more
    boundary = new_boundary()
    head, _ = multipart(form_parts(cfg["fields"], False), boundary, close=False)
    head += b"--" + boundary.encode() + b"\r\n" + Part("file", filename="slow.bin").head()
    req = (f"POST {url_path(cfg['url'])} HTTP/1.1\r\nHost: 127.0.0.1:{s.port}\r\n"
           f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
           f"Content-Length: {len(head) + (1 << 20)}\r\n\r\n").encode() + head
    sock = socket.create_connection(("127.0.0.1", s.port), timeout=30)
    try:
        sock.sendall(req + b"x" * (256 << 10))
        assert wait_for(lambda: (in_progress(s) or (0, 0))[1] > 0, 10), in_progress(s)
        uploads, received = in_progress(s)
        assert uploads == 1 and 0 < received <= 256 << 10, (uploads, received)
        child = child_holding(s, sock.getsockname()[1])
        os.kill(child, 9)
        assert wait_for(lambda: not pid_alive(child), 10)
        # reaped by the parent (not a zombie any more): its gauges are gone
        assert wait_for(lambda: in_progress(s) == (0, 0), 10), in_progress(s)
    finally:
        sock.close()
    with new_client(base_url=s.public_url) as c:
        _, samples = scrape(c)
        st = status(c)
    assert sample(samples, "uploads_total") == 1
    assert st["uploads"] == {"total": 1, "bytes_total": 4, "in_progress": 0,
                             "bytes_in_progress": 0}, st

"""UploadSessionStorage s3 against the session's private radosgw
(us_testkit.radosgw.shared_info): its configuration errors, a store that is
down at startup, and an outage of the object store during ingestion and
downloads. Every server here uses s3 storage, whatever US_IT_STORAGE says;
`make integration-s3` runs this file (with the upload, ingest and files
suites on s3 storage).

Failing to start radosgw fails these tests: `make test` installs it.
"""

import hashlib
import math
import os
import re
import socket
import time
import uuid
import threading
from urllib.parse import quote, urlsplit

import pytest

from us_testkit.api import check, close_session, create_session, get_status
from us_testkit.faultproxy import FaultProxy, Rule
from us_testkit.faults import no_new_threads
from us_testkit.ingest import (download, list_ws_files, make_server, module_so,  # noqa: F401
                               new_session, outage, s3_server, session_files, upload_all,
                               post_file, upload_one, wait_ingested, ws_files_path)
from us_testkit.ingest import S3_DIRECT, close_and_wait, counters, upload_all
from us_testkit.ingest import assert_counters_match, state_of
from us_testkit.metrics import METRICS_PAGE, metric
from us_testkit.procs import children_of, children_rss, free_port, pid_alive, wait_for
from us_testkit.radosgw import shared_info
from us_testkit.server import S3_BUCKET, configtest, new_client
from us_testkit.uploads import (form_parts, multipart, raw_post, s3_client, s3_error, s3_keys,
                                upload, url_path)

BUSY = {"detail": "The service is busy. Try again in a moment."}


# --------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------

@pytest.mark.parametrize("storage,creds,want", [
    ("s3 ftp://127.0.0.1 uploads", "ok", "malformed endpoint URL 'ftp://127.0.0.1'"),
    ("s3 http://127.0.0.1:70000 uploads", "ok", "malformed endpoint URL"),
    ("s3 http://127.0.0.1/a/b uploads", "ok", "malformed endpoint URL"),
    ("s3 http://127.0.0.1:7480", "ok", "expects an endpoint URL and a bucket"),
    ("s3 http://127.0.0.1:7480 Not_A_Bucket", "ok", "malformed bucket name"),
    ("s3 http://127.0.0.1:7480 uploads", "missing", "cannot be read"),
    ("s3 http://127.0.0.1:7480 uploads", "world-readable", "is world-readable"),
    ("s3 http://127.0.0.1:7480 uploads", "none", "needs UploadSessionS3CredentialsFile"),
])
def test_configtest_refuses(s3_server, storage, creds, want):
    s = s3_server(start=False)
    s.overrides["UploadSessionStorage"] = storage
    path = os.path.join(s.dir, "s3-credentials")
    if creds == "missing":
        s.overrides["UploadSessionS3CredentialsFile"] = f'"{s.dir}/nope"'
    elif creds == "none":
        s.omit.add("UploadSessionS3CredentialsFile")
    s.write_config()
    if creds == "world-readable":
        os.chmod(path, 0o644)
    rc, out = configtest(s)
    assert rc != 0, out
    assert "UploadSessionStorage: " in out and want in out, out
    assert "Syntax OK" not in out, out


def test_configtest_accepts_and_keeps_secrets_out(s3_server):
    s = s3_server(start=False, extra=["UploadSessionS3Region us-east-1"])
    rc, out = configtest(s)
    assert rc == 0 and "Syntax OK" in out, out


def test_a_max_file_size_beyond_10000_parts_is_refused(s3_server):
    """A file is one multipart upload of at most 10,000 parts of 8 MiB: a
    larger UploadSessionMaxFileSize could only fail uploads after the
    client sent everything, so configtest refuses it; the limit passes."""
    most = 10000 * 8 * 1024 * 1024
    s = s3_server(start=False, extra=[f"UploadSessionMaxFileSize {most + 1}"])
    rc, out = configtest(s)
    assert rc != 0, out
    assert (f"UploadSessionMaxFileSize {most + 1} is larger than the largest file s3 storage "
            f"can hold ({most} bytes)") in out, out
    assert "Syntax OK" not in out, out
    s = s3_server(start=False, extra=[f"UploadSessionMaxFileSize {most}"])
    rc, out = configtest(s)
    assert rc == 0 and "Syntax OK" in out, out


def test_s3_directives_need_s3_storage(make_server):
    s = make_server(start=False, storage="posix", extra=["UploadSessionS3Prefix p"])
    rc, out = configtest(s)
    assert rc != 0, out
    assert "need UploadSessionStorage s3" in out, out


# --------------------------------------------------------------------------
# a store that is down
# --------------------------------------------------------------------------

def test_part_memory_must_be_a_size(s3_server):
    for bad in ("0", "-1", "lots", "2T"):
        s = s3_server(start=False, extra=[f"UploadSessionS3PartMemory {bad}"])
        rc, out = configtest(s)
        assert rc != 0, out
        assert (f"UploadSessionS3PartMemory: expects a size in bytes (optionally with K, M or "
                f"G), not '{bad}'") in out, out
    s = s3_server(start=False, extra=["UploadSessionS3PartMemory 512K"])
    rc, out = configtest(s)
    assert rc == 0 and "Syntax OK" in out, out


MiB = 1024 * 1024
# With the sanitizers' runtime preloaded malloc is ASan's (quarantine, no
# mallopt): resident sizes say nothing about the module there.
SANITIZED = bool(os.environ.get("US_IT_PRELOAD", "").strip())


def held_uploads(s, cfg, files, held_at):
    """Starts one raw POST per (name, data) of files, each sending its first
    held_at bytes of data and then waiting; returns (wait_held, release, results):
    wait_held() returns once every POST has handed its first bytes to the
    socket, release() lets them send the rest, results holds each answer."""
    sent = threading.Semaphore(0)
    go = threading.Event()
    results = {}

    def body(head, data, tail):
        yield head + data[:held_at]
        sent.release()
        go.wait(120)
        yield data[held_at:] + tail

    def run(name, data):
        marker = b"\x00US-HELD\x00"
        blob, ctype = multipart(form_parts(cfg["fields"], name, marker))
        head, tail = blob.split(marker)
        resp, _ = raw_post(s.port, url_path(cfg["url"]),
                           {"Content-Type": ctype, "Content-Length": str(len(blob) - len(marker) +
                                                                            len(data))},
                           body(head, data, tail), timeout=180)
        results[name] = resp

    threads = [threading.Thread(target=run, args=f, daemon=True) for f in files]
    for t in threads:
        t.start()

    def wait_held():
        for _ in threads:
            assert sent.acquire(timeout=60), "an upload did not start"

    def release():
        go.set()
        for t in threads:
            t.join(180)
    return wait_held, release, results


@pytest.mark.parametrize("budget", ["1M", None])
def test_stalled_uploads_hold_no_more_than_the_part_memory(s3_server, budget):
    """Six uploads of 10 MiB each send 6 MiB and stall. With
    UploadSessionS3PartMemory 1M the children grow by little more than 1 MiB
    (each part past the budget is filled in a temporary file); with the
    default (64 MiB) they hold the 36 MiB in memory, which shows the
    measurement sees them. Then the uploads go on: every file is stored in
    two parts sent from where they were filled, and reads back whole."""
    extra = [f"UploadSessionS3PartMemory {budget}"] if budget else []
    s = s3_server(extra=extra)
    api = s.client(s.user_all)
    ws = "ws-part-memory"
    sid, cfg = new_session(api, ws)
    # every child has served an upload of a part and more before the baseline
    upload_all(cfg, [(f"warm{i}.bin", os.urandom(9 * MiB)) for i in range(8)], concurrency=8)
    time.sleep(0.5)
    before = sum(children_rss(s.pid).values())
    files = [(f"held{i}.bin", os.urandom(10 * MiB)) for i in range(6)]
    wait_held, release, results = held_uploads(s, cfg, files, 6 * MiB)
    try:
        wait_held()
        time.sleep(1.5)  # the children read what the sockets hold
        growth = sum(children_rss(s.pid).values()) - before
    finally:
        release()
    print(f"\nchildren's RSS growth with 6 uploads stalled at 6 MiB: {growth / MiB:.1f} MiB")
    for name, _ in files:
        r = results.get(name)
        assert r is not None and r.status_code == 204 and r.content == b"", (name, r)
    if not SANITIZED:
        if budget:
            assert growth < 12 * MiB, f"the children grew by {growth / MiB:.1f} MiB"
        else:
            assert growth > 24 * MiB, f"the children grew by {growth / MiB:.1f} MiB"
    close_session(api, ws, sid)
    wait_ingested(api, ws, sid, 14, timeout=90)
    want = dict(files)
    page = api.get(ws_files_path(ws), params={"limit": 100}).json()
    held = [f for f in page["data"] if f["name"] in want]
    assert sorted(f["name"] for f in held) == sorted(want), page
    for f in held:
        r = download(api, ws, f["file_id"])
        assert hashlib.sha256(r.content).digest() == hashlib.sha256(want[f["name"]]).digest()
    assert s3_keys(s, f"sessions/{sid}/") == []


def test_a_small_file_past_the_part_memory_is_stored_whole(s3_server):
    """A budget smaller than a writer's first buffer (64 KiB): every part is
    filled in a temporary file from the first byte; one PUT of a small file,
    an empty file and a multipart upload all store the bytes sent."""
    s = s3_server(extra=["UploadSessionS3PartMemory 1K"])
    api = s.client(s.user_all)
    ws = "ws-part-spill"
    sid, cfg = new_session(api, ws)
    files = [("small.bin", os.urandom(100_000)), ("big.bin", os.urandom(9 * MiB + 5)),
             ("one.txt", b"x")]
    upload_all(cfg, files + [("empty.txt", b"")])
    close_session(api, ws, sid)
    st = wait_ingested(api, ws, sid, 4, timeout=60)
    assert st["ingestion_status"] == {"finished_files": 3, "failed_files": 1,
                                      "pending_files": 0}, st
    want = dict(files)
    page = api.get(ws_files_path(ws), params={"limit": 100}).json()
    assert sorted(f["name"] for f in page["data"]) == sorted(want), page
    for f in page["data"]:
        r = download(api, ws, f["file_id"])
        assert r.content == want[f["name"]], f["name"]


def test_store_down_at_startup_serves_503(s3_server):
    """Nothing listens at the endpoint: one log line at startup, the module
    serves; health and the upload answer 503 with Retry-After; creating a
    session (the store only) works."""
    s = s3_server(start=False)
    s.overrides["UploadSessionStorage"] = f"s3 http://127.0.0.1:{free_port()} us-it"
    s.write_config()
    s.start()
    log = s.log_text()
    assert log.count("US0016") == 1, log
    assert "the bucket cannot be reached or written; serving anyway" in log, log
    info = shared_info()
    assert info["secret_key"] not in log and info["access_key"] not in log

    with new_client(base_url=s.public_url) as c:
        r = c.get("/api/v1/health")
        assert r.status_code == 503 and r.json() == {"status": "unavailable"}, r.text
        assert r.headers["retry-after"] == "1"
    api = s.client(s.user_all)
    sid, cfg = new_session(api, "ws-down")
    with new_client() as c:
        r = upload(c, cfg, "a.txt", b"hello")
    s3_error(r, 503, "ServiceUnavailable", "The file storage is unavailable. Please try again.")
    assert r.headers["retry-after"] == "1"


def test_outage_during_ingestion_every_file_once(s3_server, outage):
    """radosgw stops while the session is ingested, then starts again: the
    workers back off (1 s, 2 s, 4 s, ... per process, US1017), and the
    session finishes with every file FINISHED exactly once, bytes intact."""
    s = s3_server()
    api = s.client(s.user_all)
    ws = "ws-outage"
    sid, cfg = new_session(api, ws)
    files = [(f"f{i:03d}.bin", os.urandom(1000 + i * 37)) for i in range(40)]
    upload_all(cfg, files)
    outage.stop()
    close_session(api, ws, sid)
    time.sleep(8)  # the workers claim the session and fail against the dead store
    st = get_status(api, ws, sid)
    assert st["ingestion_status"]["finished_files"] < 40, st
    with new_client(base_url=s.public_url) as c:
        r = c.get("/api/v1/health")
        assert r.status_code == 503 and r.json() == {"status": "unavailable"}, r.text
    outage.start()
    wait_ingested(api, ws, sid, 40, timeout=90)
    items = session_files(api, ws, sid)
    assert sorted(items) == sorted(n for n, _ in files)
    assert all(i["ingestion_status"] == "FINISHED" for i in items.values()), items
    # exactly once in the workspace, with the bytes uploaded
    page = api.get(ws_files_path(ws), params={"limit": 100}).json()
    assert page["total"] == 40, page
    names = [f["name"] for f in page["data"]]
    assert sorted(names) == sorted(n for n, _ in files)
    want = dict(files)
    for f in page["data"][:10]:
        r = api.get(ws_files_path(ws, f["file_id"]))
        assert r.status_code == 200, r.text
        assert hashlib.sha256(r.content).digest() == hashlib.sha256(want[f["name"]]).digest()
    # nothing left of the session's uploads, 40 objects published
    assert s3_keys(s, f"sessions/{sid}/") == []
    assert len(s3_keys(s, "files/")) == 40
    log = s.log_text()
    assert "US1013" in log, log[-3000:]  # the batch was retried, not failed
    # each process's tries during the outage: 1 s apart, then 2, 4, ... (no
    # success in between), not one a second
    delays = {}
    for pid, d in re.findall(r"\[pid (\d+)[^\]]*\].*US1017: .*next try in (\d+) s", log):
        delays.setdefault(pid, []).append(int(d))
    assert delays, log[-3000:]
    for pid, seq in delays.items():
        assert seq == [min(2 ** i, 30) for i in range(len(seq))], (pid, seq)
    assert max(len(seq) for seq in delays.values()) >= 3, delays
    assert sum(len(seq) for seq in delays.values()) <= 8 * len(delays), delays


def test_download_during_outage_is_503(s3_server, outage):
    s = s3_server()
    api = s.client(s.user_all)
    ws = "ws-dl"
    r = api.post(ws_files_path(ws), files={"file": ("a.txt", b"abc" * 1000)})
    assert r.status_code == 201, r.text
    fid = r.json()["file_id"]
    r = api.get(ws_files_path(ws, fid))
    assert r.status_code == 200 and r.content == b"abc" * 1000
    outage.stop()
    r = api.get(ws_files_path(ws, fid))
    assert r.status_code == 503 and r.json() == BUSY, r.text
    assert r.headers["retry-after"] == "1"
    r = api.post(ws_files_path(ws), files={"file": ("b.txt", b"x")})
    assert r.status_code == 503 and r.json() == BUSY, r.text
    outage.start()
    r = api.get(ws_files_path(ws, fid))
    assert r.status_code == 200 and r.content == b"abc" * 1000


# --------------------------------------------------------------------------
# the sweep of files/ objects no row refers to
# --------------------------------------------------------------------------

def test_sweep_removes_files_objects_without_a_row(s3_server):
    """An object under files/ that no row refers to (as a worker killed
    between a FAIL file's copy and its removal leaves one) is removed once
    older than the grace (5 ingest leases and the largest file at 1 MiB/s:
    6 s here), in a round of the sweep (US1023); a workspace file beside it
    stays and downloads."""
    s = s3_server(extra=["UploadSessionIngestLease 1", "UploadSessionMaxFileSize 1048576"])
    api = s.client(s.user_all)
    ws = "ws-sweep"
    data = b"the real file\n" * 300
    r = api.post(ws_files_path(ws), files={"file": ("real.txt", data)})
    assert r.status_code == 201, r.text
    fid = r.json()["file_id"]
    orphan = str(uuid.uuid4())
    status, _h, body = s3_client(s).request("PUT", f"/{S3_BUCKET}/{s.s3_prefix}/files/{orphan}",
                                            b"no row refers to me")
    assert status == 200, body
    planted = time.monotonic()
    assert sorted(s3_keys(s, "files/")) == sorted([fid, orphan])
    time.sleep(2)  # rounds run every second: within the grace it stays
    assert orphan in s3_keys(s, "files/")
    assert wait_for(lambda: orphan not in s3_keys(s, "files/"), timeout=30, interval=0.25)
    assert time.monotonic() - planted >= 4  # LastModified has whole seconds
    assert s3_keys(s, "files/") == [fid]
    r = api.get(ws_files_path(ws, fid))
    assert r.status_code == 200 and r.content == data, r.text[:200]
    log = s.log_text()
    assert re.search(r"US1023: files sweep: removed 1 stored file\(s\) no row refers to", log), \
        log[-3000:]


# --------------------------------------------------------------------------
# the last clear of the upload target's sessions
# --------------------------------------------------------------------------

def test_killed_writers_leftovers_gone_after_expiry(s3_server):
    """With the module as the upload target, a writer killed after the
    ingestion's clear leaves its object under sessions/<id>/ (committed,
    then neither recorded nor removed) or an unfinished multipart upload;
    a session with no file recorded (a sidecar alone here; a writer killed
    before recording) is done at its close with no clear at all. Once
    expires_at lies the grace in the past (the lease, 1 s, plus
    UploadSessionMaxFileSize at 1 MiB/s, 1 s), the last clear removes them
    all, once per session (US1022); the ingested file still downloads."""
    s = s3_server(extra=["UploadSessionIngestLease 1", "UploadSessionMaxFileSize 1048576"])
    api = s.client(s.user_all)
    ws = "ws-late-target"
    sid, cfg = new_session(api, ws, {"expires_in_seconds": 10})
    lone, lone_cfg = new_session(api, ws, {"expires_in_seconds": 10})
    expires = time.monotonic() + 10
    data = b"the real file\n" * 300
    with new_client() as c:
        upload_one(c, cfg, "a.txt", data)
        upload_one(c, lone_cfg, "x.txt.meta.json", b"{}")
    close_session(api, ws, sid)
    close_session(api, ws, lone)
    wait_ingested(api, ws, sid, 1)
    assert wait_for(lambda: s3_keys(s, f"sessions/{sid}/") == [], timeout=30, interval=0.2)

    s3 = s3_client(s)
    base = f"/{S3_BUCKET}/{s.s3_prefix}/sessions"
    killed, half, lost = (str(uuid.uuid4()) for _ in range(3))
    status, _h, body = s3.request("PUT", f"{base}/{sid}/{killed}", b"committed, never recorded")
    assert status == 200, body
    status, _h, body = s3.request("POST", f"{base}/{sid}/{half}?uploads=")
    assert status == 200, body
    upload_id = re.search(rb"<UploadId>([^<]+)</UploadId>", body).group(1).decode()
    status, _h, body = s3.request(
        "PUT", f"{base}/{sid}/{half}?partNumber=1&uploadId={quote(upload_id, safe='')}",
        b"x" * 1000)
    assert status == 200, body
    status, _h, body = s3.request("PUT", f"{base}/{lone}/{lost}", b"committed, never recorded")
    assert status == 200, body
    assert time.monotonic() < expires, "planted after expires_at: test too slow"
    assert s3_keys(s, f"sessions/{sid}/") == [killed]
    assert s3_keys(s, f"sessions/{sid}/", uploads=True) == [half]
    assert len(s3_keys(s, f"sessions/{lone}/")) == 2  # the sidecar's blob and the lost one

    def left():
        return (s3_keys(s, f"sessions/{sid}/") + s3_keys(s, f"sessions/{sid}/", uploads=True) +
                s3_keys(s, f"sessions/{lone}/"))
    time.sleep(max(0.0, expires - time.monotonic()))
    assert left() != [], "cleared before expires_at"
    assert wait_for(lambda: left() == [], timeout=40, interval=0.3), left()
    assert time.monotonic() >= expires + 1, "cleared before the grace ran out"
    files = list_ws_files(s, api, ws)
    assert [f["name"] for f in files] == ["a.txt"], files
    assert download(api, ws, files[0]["file_id"]).content == data
    assert s3_keys(s, "files/") == [files[0]["file_id"]]
    time.sleep(1.5)  # more sweeps: recorded once, logged once
    lines = [ln for ln in s.log_text().splitlines() if "US1022" in ln]
    assert len(lines) == 2, lines
    assert sorted(ln.count(sid) + 2 * ln.count(lone) for ln in lines) == [1, 2], lines


def test_many_ended_sessions_cleared_from_one_listing(s3_server):
    """Sessions of the upload target ended with nothing left in the bucket
    (closed without a file) and one holding a killed writer's object: once
    due, those holding nothing are recorded a page at a time from one
    listing of what the bucket holds under sessions/ (US1121 with their
    number), not with two listings each; the one holding the object is
    cleared alone (US1022). Each once. (They expire over the seconds their
    creation took, so several rounds of several processes record them; a
    round that finds a single one due clears it alone, so stragglers may be
    logged as US1022. Each session asks for the whole seconds left to one
    common moment, so they all expire within about a second of it however
    slowly a loaded machine creates them; each cleared alone would log 41
    US1022 and no US1121.)"""
    s = s3_server(extra=["UploadSessionIngestLease 2", "UploadSessionMaxFileSize 1048576"])
    api = s.client(s.user_all)
    ws = "ws-late-many"
    n = 40
    sids = []
    expires = time.monotonic() + 10
    for _ in range(n + 1):
        left = max(1, math.ceil(expires - time.monotonic()))
        sid, _cfg = new_session(api, ws, {"expires_in_seconds": left})
        close_session(api, ws, sid)
        sids.append(sid)
    expires -= 0.5
    held = sids[n // 2]
    s3 = s3_client(s)
    status, _h, body = s3.request(
        "PUT", f"/{S3_BUCKET}/{s.s3_prefix}/sessions/{held}/{uuid.uuid4()}",
        b"committed, never recorded")
    assert status == 200, body

    def recorded():
        text = s.log_text()
        many = [int(m) for m in re.findall(r"US1121: ingest: (\d+) sessions whose upload "
                                           r"policy has expired", text)]
        return many, [ln for ln in text.splitlines() if "US1022" in ln]
    assert wait_for(lambda: sum(recorded()[0]) + len(recorded()[1]) >= n + 1, timeout=40,
                    interval=0.3), recorded()
    assert time.monotonic() >= expires + 2, "cleared before the grace ran out"
    assert s3_keys(s, f"sessions/{held}/") == []
    time.sleep(1.5)  # more rounds: each recorded once
    many, lines = recorded()
    assert sum(many) + len(lines) == n + 1, (many, lines)
    assert sum(many) >= n // 2, (many, lines)
    assert any(held in ln for ln in lines), lines
    assert all(any(sid in ln for sid in sids) for ln in lines), lines


def test_outage_in_the_middle_of_a_wide_batch_every_file_once(s3_server, outage):
    """radosgw stops while one batch's publishes run 16 at once: the copies
    answered before it stay, the batch is retried whole once radosgw is
    back, and every file ends FINISHED exactly once - one object per file
    under files/, none left under the session, each text file's character
    count from its bytes."""
    s = s3_server()
    api = s.client(s.user_all)
    ws = "ws-wide-outage"
    sid, cfg = new_session(api, ws)
    n = 400
    files = [(f"g{i:03d}.txt", ("\u00e9t\u00e9 %d " % i).encode() * (1 + i % 7)) for i in range(n)]
    upload_all(cfg, files)
    close_session(api, ws, sid)
    # stopped once the first copies of the first batch (256 files) are there
    deadline = time.time() + 60
    while (copied := len(s3_keys(s, "files/"))) < 20:
        assert time.time() < deadline, "nothing published within 60 s"
        time.sleep(0.02)
    outage.stop()
    st = get_status(api, ws, sid)
    assert st["ingestion_status"]["finished_files"] < n, st
    print(f"stopped with {copied} objects published, "
          f"{st['ingestion_status']['finished_files']} files recorded")
    time.sleep(4)  # the workers fail against the dead store and back off
    outage.start()
    wait_ingested(api, ws, sid, n, timeout=120)
    items = session_files(api, ws, sid)
    assert sorted(items) == sorted(name for name, _ in files)
    assert all(i["ingestion_status"] == "FINISHED" for i in items.values()), items
    want = dict(files)
    seen = {}
    for f in list_ws_files(s, api, ws):
        assert f["name"] not in seen, f  # exactly once
        seen[f["name"]] = f
        assert f["size"] == len(want[f["name"]]), f
        assert f["characters"] == len(want[f["name"]].decode()), f
    assert sorted(seen) == sorted(want)
    for name in ("g000.txt", "g137.txt", "g399.txt"):
        r = api.get(ws_files_path(ws, seen[name]["file_id"]))
        assert r.status_code == 200, r.text
        assert r.content == want[name]
    assert s3_keys(s, f"sessions/{sid}/") == []
    assert len(s3_keys(s, "files/")) == n
    assert "US1013" in s.log_text()  # the batch was retried, not failed


def test_publishing_threads_that_cannot_start_publish_in_the_worker(s3_server):
    """No thread can start in the server's children (a pids cgroup at its
    limit, as a host's process limit would leave them): a batch's publishing
    threads do not start, US1240 says so, and the worker publishes the
    batch's files itself; the session is ingested while the limit holds,
    every file once."""
    s = s3_server()
    api = s.client(s.user_all)
    ws = "ws-no-threads"
    sid, cfg = new_session(api, ws)
    n = 40
    files = [(f"t{i:02d}.txt", b"thread %d" % i) for i in range(n)]
    upload_all(cfg, files)
    with no_new_threads(children_of(s.pid)):
        close_session(api, ws, sid)
        wait_ingested(api, ws, sid, n, timeout=60)
    assert f"US1240: ingest: session {sid}: could not start the publishing threads; published" \
        " in the worker's thread" in s.log_text(), s.log_tail()
    seen = [f["name"] for f in list_ws_files(s, api, ws)]
    assert sorted(seen) == sorted(name for name, _ in files)  # each once
    assert wait_for(lambda: s3_keys(s, f"sessions/{sid}/") == [], 15), s3_keys(s, f"sessions/{sid}/")
    assert len(s3_keys(s, "files/")) == n


# --------------------------------------------------------------------------
# answers of the store, bent by a relay (us_testkit.faultproxy)
# --------------------------------------------------------------------------

STORAGE_DOWN = ("ServiceUnavailable", "The file storage is unavailable. Please try again.")


@pytest.fixture
def proxied(s3_server):
    """make(**kw) -> (server, proxy): an s3 server that reaches radosgw
    through a FaultProxy."""
    made = []

    def make(rules=(), **kw):
        u = urlsplit(shared_info()["endpoint"])
        fp = FaultProxy((u.hostname, u.port))
        fp.rules.extend(rules)  # in place from the start on
        made.append(fp)
        s = s3_server(start=False, **kw)
        s.overrides["UploadSessionStorage"] = f"s3 {fp.endpoint} {S3_BUCKET}"
        s.write_config()
        s.start()
        return s, fp
    yield make
    for fp in made:
        fp.close()


@pytest.mark.parametrize("status,code", [(429, "TooManyRequests"), (400, "RequestTimeout"),
                                         (503, "SlowDown")])
def test_store_answers_meant_to_be_retried_are_503(proxied, status, code):
    # S3 clients retry these whatever their status: so do ours, told by a 503
    s, fp = proxied()
    fp.rules.append(Rule(lambda m, t, h: m == "PUT" and "/sessions/" in t,
                         ("reply", status, f"<Error><Code>{code}</Code></Error>")))
    api = s.client(s.user_all)
    sid, cfg = new_session(api, "ws-retry")
    with new_client() as c:
        r = upload(c, cfg, "a.bin", b"abc")
    s3_error(r, 503, *STORAGE_DOWN)
    assert r.headers["retry-after"] == "1"
    assert session_files(api, "ws-retry", sid) == {}


def test_a_complete_answered_200_with_an_error_to_retry_is_503(proxied):
    # CompleteMultipartUpload may answer 200 with an error document
    s, fp = proxied()
    slow = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
            '<Message>Please reduce your request rate.</Message></Error>')
    fp.rules.append(Rule(lambda m, t, h: m == "POST" and "uploadId=" in t, ("reply", 200, slow),
                         times=2))
    api = s.client(s.user_all)
    sid, cfg = new_session(api, "ws-200err")
    with new_client() as c:
        r = upload(c, cfg, "big.bin", os.urandom(12 * MiB))
    s3_error(r, 503, *STORAGE_DOWN)
    r = api.post(ws_files_path("ws-200err"), files={"file": ("big.bin", os.urandom(12 * MiB))})
    check(r, 503, BUSY)
    assert list_ws_files(s, api, "ws-200err") == []


def test_a_download_racing_a_delete_is_404(proxied):
    # the row read, then the delete, then the bytes' HEAD: as if the delete came first
    s, fp = proxied()
    api = s.client(s.user_all)
    fid = post_file(api, "ws-race", "a.txt", b"hello")["file_id"]
    fp.rules.append(Rule(lambda m, t, h: m == "HEAD" and f"/files/{fid}" in t, ("delay", 2)))
    out = {}
    t = threading.Thread(target=lambda: out.update(r=api.get(ws_files_path("ws-race", fid))))
    t.start()
    assert wait_for(lambda: fp.rules[0].times == 0, 10)  # the HEAD is held
    check(s.client(s.user_all).delete(ws_files_path("ws-race", fid)), 200)
    t.join(30)
    check(out["r"], 404, {"detail": f"There's no file with the ID '{fid}' in the workspace."})


class RawGet:
    """GET path on a kept-alive HTTP/1.1 connection, read step by step, to
    see how the answer ends (a client library would hide it)."""

    def __init__(self, port, path, key, timeout=30):
        self.s = socket.create_connection(("127.0.0.1", port))
        self.s.settimeout(timeout)
        self.s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                       f"Authorization: Bearer {key}\r\n\r\n".encode())
        self.buf = b""
        self.head = None
        self.clen = None

    def body_len(self):
        return len(self.buf) - len(self.head) - 4 if self.head is not None else 0

    def read(self, until_body=None):
        """Reads until the body has until_body bytes (None: until the whole
        body, EOF or timeout): 'complete', 'eof', 'timeout' or 'enough'."""
        while True:
            if self.head is None and b"\r\n\r\n" in self.buf:
                self.head = self.buf.split(b"\r\n\r\n", 1)[0]
                m = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", self.head)
                self.clen = int(m.group(1)) if m else None
            if self.head is not None:
                if self.clen is not None and self.body_len() >= self.clen:
                    return "complete"
                if until_body is not None and self.body_len() >= until_body:
                    return "enough"
            try:
                d = self.s.recv(1 << 20)
            except socket.timeout:
                return "timeout"
            if not d:
                return "eof"
            self.buf += d

    def close(self):
        self.s.close()


CUT_LOG = r"US0310: file {fid}: reading its bytes failed at offset {off} after the answer's headers went out"


@pytest.mark.parametrize("action", [("reply", 500, "<Error><Code>InternalError</Code></Error>"),
                                    "cut"])
def test_a_download_failing_after_its_headers_is_closed_at_once(proxied, action):
    # the second 4 MiB window's GET fails: the 200 and its Content-Length
    # are out, so the answer is cut short and the connection closed at once
    # (not left for the client to wait out KeepAliveTimeout), and logged
    s, fp = proxied()
    api = s.client(s.user_all)
    data = os.urandom(9 * MiB)
    fid = post_file(api, "ws-cut", "big.bin", data)["file_id"]
    fp.rules.append(Rule(lambda m, t, h: m == "GET" and f"/files/{fid}" in t
                         and "bytes=4194304-" in h.lower(), action))
    s.expect_log(CUT_LOG.format(fid=fid, off=4 * MiB))
    g = RawGet(s.port, "/api/v1/workspaces/" + ws_files_path("ws-cut", fid), s.key_all)
    assert g.read(until_body=1) == "enough"
    t0 = time.monotonic()
    how = g.read()
    waited = time.monotonic() - t0
    g.close()
    assert g.head.startswith(b"HTTP/1.1 200 "), g.head
    assert g.clen == len(data)
    assert how == "eof" and waited < 1.5, (how, waited)
    assert 0 < g.body_len() <= 4 * MiB and g.buf.endswith(data[:g.body_len()]), g.body_len()
    assert wait_for(lambda: re.search(CUT_LOG.format(fid=fid, off=4 * MiB), s.log_text()), 5)
    # the next download is whole
    r = api.get(ws_files_path("ws-cut", fid))
    assert r.status_code == 200 and r.content == data


def test_a_download_cut_by_a_delete_is_closed_at_once(s3_server):
    # the object deleted between two 4 MiB windows of a download
    s = s3_server()
    api = s.client(s.user_all)
    data = os.urandom(9 * MiB)
    fid = post_file(api, "ws-cutdel", "big.bin", data)["file_id"]
    s.expect_log(CUT_LOG.format(fid=fid, off=r"\d+"))
    g = RawGet(s.port, "/api/v1/workspaces/" + ws_files_path("ws-cutdel", fid), s.key_all)
    assert g.read(until_body=1 * MiB) == "enough"
    check(api.delete(ws_files_path("ws-cutdel", fid)), 200)
    t0 = time.monotonic()
    how = g.read()
    waited = time.monotonic() - t0
    g.close()
    assert g.head.startswith(b"HTTP/1.1 200 ") and g.clen == len(data), g.head
    # the window being read when the delete came may still end whole
    assert how == "complete" or (how == "eof" and waited < 1.5), (how, waited)
    assert g.buf.endswith(data[:g.body_len()])
    check(api.get(ws_files_path("ws-cutdel", fid)), 404,
          {"detail": f"There's no file with the ID '{fid}' in the workspace."})


def copy_of(fid):
    """Matches the CopyObject that publishes the file fid (not its HEADs or GETs)."""
    return lambda m, t, h: (m == "PUT" and t.split("?")[0].endswith(f"/files/{fid}")
                            and "x-amz-copy-source:" in h.lower())


# The refusal pause of these servers (UploadSessionIngestRefusalPause, ms):
# a refused file is tried again after 0.1, 0.2, 0.4 and 0.8 s
PAUSE_MS = 100
REFUSAL = ("reply", 400, "<Error><Code>InvalidRequest</Code>"
                         "<Message>The request is refused.</Message></Error>")


def stamped(match, stamps):
    """match, noting the time of each request it matches (the proxy asks
    only while its rule has times left)."""
    def m(method, target, head):
        hit = match(method, target, head)
        if hit:
            stamps.append(time.monotonic())
        return hit
    return m


def assert_paced(stamps, n):
    """n refused requests, each retry at least the pause doubled per refusal
    after the one before: not the next worker free within milliseconds."""
    assert len(stamps) == n, stamps
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    want = [PAUSE_MS / 1000 * 2 ** i for i in range(n - 1)]
    assert all(g >= w for g, w in zip(gaps, want)), (gaps, want)


def refused_session(proxied, ws, rule_for, files=None, **kw):
    """A closed session of six text files (or files) whose r3.txt meets
    rule_for(file_id, sid) before its close; returns (server, proxy, api,
    sid, files, r3's id)."""
    s, fp = proxied(extra=[f"UploadSessionIngestRefusalPause {PAUSE_MS}", *kw.pop("extra", ())],
                    **kw)
    api = s.client(s.user_all)
    sid, cfg = new_session(api, ws)
    files = files or [(f"r{i}.txt", f"file number {i}".encode()) for i in range(6)]
    upload_all(cfg, files)
    bad = session_files(api, ws, sid)["r3.txt"]["file_ingestion_id"]
    fp.rules.append(rule_for(bad, sid))
    close_session(api, ws, sid)
    return s, fp, api, sid, files, bad


def check_ended(s, api, ws, sid, files, want_failed, timeout=90):
    """The session ended: every file decided once, the status body's counters
    equal the per-file states, the workspace holds the FINISHED ones once
    each, nothing is left of the session's uploads or of a failed file."""
    raw = [n for n, _ in files if not n.endswith(".meta.json")]
    st = wait_ingested(api, ws, sid, len(raw), timeout=timeout)
    items = session_files(api, ws, sid)
    assert_counters_match(st, items)
    assert st["status"] == "CLOSED" and st["uploaded_files"] == len(raw), st
    assert st["ingestion_status"] == {"finished_files": len(raw) - len(want_failed),
                                      "failed_files": len(want_failed), "pending_files": 0}, st
    for name in raw:
        want = ("FAILED", "UNKNOWN_ERROR") if name in want_failed else ("FINISHED", None)
        assert state_of(items[name]) == want, items[name]
    got = list_ws_files(s, api, ws)
    assert sorted(f["name"] for f in got) == sorted(n for n in raw if n not in want_failed)
    want_bytes = dict(files)
    for f in got:
        assert download(api, ws, f["file_id"]).content == want_bytes[f["name"]]
    assert wait_for(lambda: s3_keys(s, f"sessions/{sid}/") == [], 15), s3_keys(s, f"sessions/{sid}/")
    published = s3_keys(s, "files/")
    for name in want_failed:
        assert not any(k.endswith(items[name]["file_ingestion_id"]) for k in published), published
    return items


def failed_metric(s, reason):
    return metric(s, "ingested_files_total", status="FAILED", reason=reason)


def test_a_copy_refused_for_one_object_fails_that_file_alone(proxied):
    """A CopyObject answered 400 InvalidRequest for one object, every time:
    that file is tried US_INGEST_PUBLISH_TRIES (5) rounds, paced (the
    refusal pause doubled per refusal: it was the next worker free, all
    five within a second), then FAILED with UNKNOWN_ERROR, counted once and
    under that reason in the metrics (it was OTHER); the session's other
    files are FINISHED in the first round, not held back by it."""
    stamps = []
    s, fp, api, sid, files, bad = refused_session(
        proxied, "ws-refused",
        lambda fid, _sid: Rule(stamped(copy_of(fid), stamps), REFUSAL, times=1000),
        extra=METRICS_PAGE)
    assert wait_for(lambda: len(stamps) >= 2, 30), fp.log
    items = session_files(api, "ws-refused", sid)  # while r3.txt waits
    assert {n: state_of(f) for n, f in items.items()} == {
        n: ("PENDING", None) if n == "r3.txt" else ("FINISHED", None) for n, _ in files}, items
    check_ended(s, api, "ws-refused", sid, files, {"r3.txt"})
    refused = [x for x in fp.log if x[2] == "injected 400"]
    assert len(refused) == 5 and all(x[0] == "PUT" for x in refused), fp.log
    assert_paced(stamps, 5)
    log = s.log_text()
    assert log.count("US1029") == 5, log[-3000:]
    assert log.count("US1030") == 4 and log.count("US1031") == 1, log[-3000:]
    assert log.count("US1032") == 4, log[-3000:]
    assert "refused 5 times; FAILED (UNKNOWN_ERROR)" in log
    assert "US1013" not in log and "US1017" not in log, log[-3000:]  # no outage
    assert failed_metric(s, "UNKNOWN_ERROR") == 1
    assert failed_metric(s, "OTHER") == 0


def test_a_copy_refused_a_few_times_then_accepted_is_finished(proxied):
    """A refusal that lasts a few tries (three, paced over 0.7 s) and then
    ends: the file is FINISHED, nothing FAILED."""
    stamps = []
    s, fp, api, sid, files, bad = refused_session(
        proxied, "ws-refused-3",
        lambda fid, _sid: Rule(stamped(copy_of(fid), stamps), REFUSAL, times=3))
    check_ended(s, api, "ws-refused-3", sid, files, set())
    assert fp.rules[0].times == 0, fp.log
    assert_paced(stamps, 3)
    log = s.log_text()
    assert log.count("US1030") == 3 and "US1031" not in log, log[-3000:]


def test_refused_reads_of_a_sidecar_and_of_a_text_fail_their_files(proxied):
    """The store refuses (400 InvalidRequest) the GET of r3.txt's sidecar,
    and the GET of r4.txt once published (its characters' count), every
    time: each is a refusal of that file (US1033, US1034), paced and
    counted as a refused copy is, and both end FAILED with UNKNOWN_ERROR
    (the sidecar was not shown to be no JSON object: FAILED_TO_PARSE_META
    would blame its content); they were retried as an outage forever."""
    files = [(f"r{i}.txt", f"file number {i}".encode()) for i in range(6)]
    files.append(("r3.txt.meta.json", b'{"k": 1}'))
    meta_stamps, count_stamps = [], []

    def rules(fid, sid):
        # the one GET of an object of the session's is its sidecar's (the
        # clear's listings name the prefix in their query)
        return Rule(stamped(lambda m, t, h: m == "GET" and f"/sessions/{sid}/" in t.split("?")[0],
                            meta_stamps), REFUSAL, times=1000)
    s, fp, api, sid, files, bad = refused_session(proxied, "ws-refused-reads", rules, files=files,
                                                  extra=METRICS_PAGE)
    r4 = session_files(api, "ws-refused-reads", sid)["r4.txt"]["file_ingestion_id"]
    fp.rules.append(Rule(stamped(lambda m, t, h: m == "GET" and
                                 t.split("?")[0].endswith(f"/files/{r4}"), count_stamps),
                         REFUSAL, times=1000))
    check_ended(s, api, "ws-refused-reads", sid, files, {"r3.txt", "r4.txt"}, timeout=30)
    assert_paced(meta_stamps, 5)
    assert_paced(count_stamps, 5)
    log = s.log_text()
    assert log.count("US1033") == 5 and log.count("US1034") == 5, log[-3000:]
    assert log.count("US1031") == 2, log[-3000:]
    assert "US1013" not in log and "US1015" not in log, log[-3000:]  # no outage
    assert failed_metric(s, "UNKNOWN_ERROR") == 2


CLEARED_FILES = ([(f"c{i}.txt", f"file number {i}".encode()) for i in range(4)] +
                 [(f"c{i}.txt.meta.json", b'{"k": 1}') for i in range(4)])


def cleared_session(proxied, ws, rules=()):
    """A session of four files with their sidecars, ended: the sidecars are
    what its clear deletes. The server and its relay's log."""
    s, fp = proxied(rules=rules)
    api = s.client(s.user_all)
    sid, cfg = new_session(api, ws)
    upload_all(cfg, CLEARED_FILES)
    close_session(api, ws, sid)
    return s, fp, api, sid


def clear_requests(fp, sid):
    """The relay's DeleteObjects requests, and its DELETEs of the session's
    keys (four of them the publishes' deletes of their sources)."""
    batches = [x for x in fp.log if x[0] == "POST" and x[1].endswith("?delete=")]
    singles = [x for x in fp.log if x[0] == "DELETE" and f"/sessions/{sid}/" in x[1]]
    return batches, singles


def test_a_sessions_leftovers_go_in_one_delete_objects(proxied):
    """What a session leaves (its sidecars) is deleted by one DeleteObjects
    request (POST ?delete, up to 1,000 keys), not a DELETE per key."""
    s, fp, api, sid = cleared_session(proxied, "ws-clear-batch")
    check_ended(s, api, "ws-clear-batch", sid, CLEARED_FILES, set())
    batches, singles = clear_requests(fp, sid)
    assert len(batches) == 1 and batches[0][2].startswith("HTTP/1.1 200"), fp.log
    assert len(singles) == 4, fp.log


def test_a_store_without_delete_objects_is_cleared_key_by_key(proxied):
    """A store that does not implement DeleteObjects (501 NotImplemented):
    each key is deleted on its own, and nothing is left."""
    no = Rule(lambda m, t, h: m == "POST" and t.endswith("?delete="),
              ("reply", 501, "<Error><Code>NotImplemented</Code></Error>"), times=1000)
    s, fp, api, sid = cleared_session(proxied, "ws-clear-501", rules=[no])
    check_ended(s, api, "ws-clear-501", sid, CLEARED_FILES, set())
    batches, singles = clear_requests(fp, sid)
    assert [b[2] for b in batches] == ["injected 501"], fp.log
    assert len(singles) == 8 and all(x[2].startswith("HTTP/1.1 204") for x in singles), fp.log


def test_keys_a_delete_objects_answer_names_as_failed_are_left(proxied):
    """A DeleteObjects answer naming a key in an <Error> (not NoSuchKey):
    that key counts as left and is logged with its code; the session ends."""
    answer = ('<?xml version="1.0" encoding="UTF-8"?><DeleteResult>'
              '<Error><Key>k1</Key><Code>NoSuchKey</Code></Error>'
              '<Error><Key>k2</Key><Code>AccessDenied</Code><Message>m</Message></Error>'
              '</DeleteResult>')
    err = Rule(lambda m, t, h: m == "POST" and t.endswith("?delete="), ("reply", 200, answer))
    s, fp, api, sid = cleared_session(proxied, "ws-clear-err", rules=[err])
    st = wait_ingested(api, "ws-clear-err", sid, 4, timeout=60)
    assert st["ingestion_status"] == {"finished_files": 4, "failed_files": 0,
                                      "pending_files": 0}, st
    want = ("US1203: s3 clearing a session: 1 of 4 keys not deleted (the first: k2, AccessDenied)")
    assert wait_for(lambda: want in s.log_text(), 15), s.log_tail()
    assert wait_for(lambda: f"US1004: ingest: session {sid}: 1 entries left" in s.log_text(), 15), \
        s.log_tail()


def test_a_deleted_workspace_clears_a_session_waiting_out_a_refusal(proxied):
    """A session whose file the store refused waits out the refusal pause
    (30 s here) before it is taken again; its workspace deleted meanwhile,
    the clear of its stored uploads is taken at once, not once the pause
    has passed."""
    s, fp = proxied(extra=["UploadSessionIngestRefusalPause 30000"])
    api = s.client(s.user_all)
    ws = "ws-refused-deleted"
    sid, cfg = new_session(api, ws)
    upload_all(cfg, [("r.txt", b"refused")])
    fid = session_files(api, ws, sid)["r.txt"]["file_ingestion_id"]
    fp.rules.append(Rule(copy_of(fid), REFUSAL, times=1000))
    close_session(api, ws, sid)
    assert wait_for(lambda: "US1032" in s.log_text(), 30), s.log_tail()  # waiting 30 s
    assert s3_keys(s, f"sessions/{sid}/") != []
    check(api.delete(f"{s.public_url}/api/v1/workspaces/{ws}"), 204)
    assert wait_for(lambda: s3_keys(s, f"sessions/{sid}/") == [], 10), \
        s3_keys(s, f"sessions/{sid}/")
    log = s.log_text()
    assert log.count("US1029") == 1 and "US1031" not in log, log[-3000:]


@pytest.mark.parametrize("status,code", [(503, "SlowDown"), (409, "OperationAborted")])
def test_a_copy_answered_503_a_few_times_is_no_refusal(proxied, status, code):
    """The same copy answered 503 SlowDown (or 409 OperationAborted: another
    operation on the key under way) three times is an outage: the batch is
    retried with the backoff and the file ends FINISHED, no refusal counted
    against it."""
    slow = ("reply", status, f"<Error><Code>{code}</Code><Message>Again.</Message></Error>")
    s, fp, api, sid, files, bad = refused_session(
        proxied, "ws-slowdown", lambda fid, _sid: Rule(copy_of(fid), slow, times=3))
    check_ended(s, api, "ws-slowdown", sid, files, set())
    assert fp.rules[0].times == 0, fp.log  # all three were answered
    log = s.log_text()
    assert "US1013" in log, log[-3000:]  # retried as an outage
    for msg in ("US1029", "US1030", "US1031"):
        assert msg not in log, log[-3000:]


def test_a_lone_file_whose_copy_outlasts_the_lease_keeps_its_claim(proxied):
    """A batch of one file whose copy takes three leases (the relay holds it):
    the claim is renewed while the copy runs, as a wider batch's is, so no
    other worker takes the session over and copies it again; the file ends
    FINISHED once, with one claim of the session and none lost."""
    s, fp = proxied(extra=["UploadSessionIngestLease 2", *METRICS_PAGE])
    api = s.client(s.user_all)
    ws = "ws-long-copy"
    sid, cfg = new_session(api, ws)
    upload_all(cfg, [("big.txt", b"a copy that takes long")])
    fid = session_files(api, ws, sid)["big.txt"]["file_ingestion_id"]
    fp.rules.append(Rule(copy_of(fid), ("delay", 6)))
    close_session(api, ws, sid)
    check_ended(s, api, ws, sid, [("big.txt", b"a copy that takes long")], set())
    assert fp.rules[0].times == 0, fp.log  # the copy was held
    log = s.log_text()
    assert log.count(f"US1006: ingest: session {sid} ") == 1, log[-3000:]
    assert f"US1008: ingest: session {sid}" not in log, log[-3000:]
    copies = [e for e in fp.log if e[0] == "PUT" and e[1].split("?")[0].endswith(f"/files/{fid}")]
    assert len(copies) == 1, fp.log
    assert metric(s, "ingest_claims_lost_total") == 0


def unfinished_uploads(s, under):
    """Keys of the unfinished multipart uploads under the server's prefix + under."""
    full = f"{s.s3_prefix}/{under}"
    st, _h, body = s3_client(s).request("GET", f"/{S3_BUCKET}?prefix={quote(full, safe='')}"
                                               "&uploads=")
    assert st == 200, (st, body)
    return re.findall(r"<Key>([^<]*)</Key>", body.decode())


def test_a_multipart_upload_whose_start_lost_its_answer_is_aborted(proxied):
    # the store started the upload; its id never came: the writer's abandon
    # finds it under the writer's fresh key
    s, fp = proxied()
    fp.rules.append(Rule(lambda m, t, h: m == "POST" and t.endswith("?uploads=")
                         and "/files/" in t, "cut"))
    api = s.client(s.user_all)
    r = api.post(ws_files_path("ws-lost-start"),
                 files={"file": ("big.bin", os.urandom(12 * MiB))})
    check(r, 503, BUSY)
    assert [x[2] for x in fp.log if x[0] == "POST"] == ["answer dropped"]
    assert unfinished_uploads(s, "files/") == []
    assert list_ws_files(s, api, "ws-lost-start") == []


def test_an_abort_the_store_refused_is_tried_again(proxied):
    # part 2 lost, then the abort refused (the store restarting): the
    # ingest worker's tidy aborts it once the store answers
    s, fp = proxied()
    fp.rules.append(Rule(lambda m, t, h: m == "PUT" and "partNumber=2" in t, "cut"))
    fp.rules.append(Rule(lambda m, t, h: m == "DELETE" and "uploadId=" in t,
                         ("reply", 503, "<Error><Code>ServiceUnavailable</Code></Error>")))
    api = s.client(s.user_all)
    r = api.post(ws_files_path("ws-abort-again"),
                 files={"file": ("big.bin", os.urandom(20 * MiB))})
    check(r, 503, BUSY)
    assert wait_for(lambda: unfinished_uploads(s, "files/") == [], 60), \
        unfinished_uploads(s, "files/")
    aborts = [x[2] for x in fp.log if x[0] == "DELETE" and "uploadId=" in x[1]]
    assert aborts == ["injected 503", "HTTP/1.1 204 No Content"], aborts
    assert "(tried again later)" in s.log_text()
    assert list_ws_files(s, api, "ws-abort-again") == []


def test_an_abort_answered_no_such_bucket_is_not_done(proxied):
    # only 404 NoSuchUpload says an upload is gone: a 404 NoSuchBucket (the
    # bucket away, a wrong endpoint) leaves it maybe there, so the abort is
    # an error, kept for the ingest worker's tidy to try again
    s, fp = proxied()
    fp.rules.append(Rule(lambda m, t, h: m == "PUT" and "partNumber=1" in t, "cut"))
    fp.rules.append(Rule(lambda m, t, h: m == "DELETE" and "uploadId=" in t,
                         ("reply", 404, NO_BUCKET)))
    s.expect_log(r"US1219: s3 aborting the multipart upload of .*/files/.*: HTTP 404 "
                 r"NoSuchBucket: not a missing upload \(is the bucket us-it there, is the "
                 r"endpoint the store\?\); not taken as aborted")
    api = s.client(s.user_all)
    r = api.post(ws_files_path("ws-abort-404"),
                 files={"file": ("big.bin", os.urandom(9 * MiB))})
    check(r, 503, BUSY)
    aborts = [x[2] for x in fp.log if x[0] == "DELETE" and "uploadId=" in x[1]]
    assert aborts[:1] == ["injected 404"], aborts
    assert re.search(r"cannot abort the multipart upload of \S+/files/\S+ \(tried again "
                     r"later\)", s.log_text()), s.log_text()[-3000:]
    assert list_ws_files(s, api, "ws-abort-404") == []


def bent_listing_session(proxied, ws, token, times):
    """A direct session of three files whose listing's pages the relay
    answers `times` times with one entry (f0.txt) and IsTruncated true,
    naming `token` as the next page (None: none), then closed. Returns
    (server, relay, api, session id, the rule); the caller waits for the
    session, which finish_bent_listing does."""
    s, fp = proxied(extra=(S3_DIRECT,))
    api = s.client(s.user_all)
    sess = create_session(api, ws)
    sid, cfg = sess["session_id"], sess["aws_prefixed_request_config"]
    files = [(f"f{i}.txt", b"file %d\n" % i) for i in range(3)]
    assert upload_all(cfg, files) == 3
    nxt = f"<NextContinuationToken>{token}</NextContinuationToken>" if token else ""
    page = ('<?xml version="1.0" encoding="UTF-8"?><ListBucketResult>'
            f'<Name>{S3_BUCKET}</Name><IsTruncated>true</IsTruncated>{nxt}<Contents>'
            f'<Key>{s.s3_prefix}/sessions/{sid}/f0.txt</Key>'
            '<LastModified>2020-01-01T00:00:00.000Z</LastModified><ETag>"0"</ETag>'
            '<Size>7</Size></Contents></ListBucketResult>')
    rule = Rule(lambda m, t, h: m == "GET" and "list-type=2" in t and sid in t,
                ("reply", 200, page), times=times)
    fp.rules.append(rule)
    close_session(api, ws, sid)
    return s, fp, api, sid, rule


def finish_bent_listing(s, api, ws, sid, rule):
    """Waits for the session to finish with its three files (a status read
    while the listing is bent is a 503, asked again); every bent page was
    answered; the workspace holds the three."""
    def finished():
        r = api.get(f"/{ws}/upload_sessions/{sid}")
        if r.status_code == 503:
            check(r, 503, BUSY)
            return False
        return counters(check(r, 200)) == (3, 0, 0)
    assert wait_for(finished, 60)
    assert rule.times == 0
    assert sorted(f["name"] for f in list_ws_files(s, api, ws)) == ["f0.txt", "f1.txt", "f2.txt"]


def test_a_truncated_listing_without_a_token_is_not_taken_whole(proxied):
    # a store that says more keys follow but names no continuation token:
    # the direct session's listing is refused and asked again, where its
    # first page was taken for the whole (and the clear removed the rest)
    s, _fp, api, sid, rule = bent_listing_session(proxied, "ws-trunc", None, 3)
    finish_bent_listing(s, api, "ws-trunc", sid, rule)
    assert "a truncated page without a continuation token" in s.log_text()

# --------------------------------------------------------------------------
# answers not to take on trust
# --------------------------------------------------------------------------

def test_a_copy_the_store_takes_long_over_is_not_cut(proxied):
    # radosgw (like AWS) may send nothing while it copies a large object:
    # the copy is held 35 s, longer than a plain request may stall (30 s);
    # it is waited for, not cut and copied again and again
    s, fp = proxied()
    api = s.client(s.user_all)
    ws = "ws-slow-copy"
    sid, cfg = new_session(api, ws)
    upload_all(cfg, [("a.txt", b"slow copy\n")])
    fp.rules.append(Rule(lambda m, t, h: m == "PUT" and "/files/" in t
                         and "x-amz-copy-source:" in h.lower(), ("delay", 35)))
    close_session(api, ws, sid)
    st = wait_ingested(api, ws, sid, 1, timeout=120)
    assert counters(st) == (1, 0, 0), st
    copies = [x for x in fp.log if x[0] == "PUT" and "/files/" in x[1]]
    assert len(copies) == 1 and copies[0][2].startswith("HTTP/1.1 200"), copies
    log = s.log_text()
    assert "US1210" not in log and "US1013" not in log, log[-3000:]
    f = list_ws_files(s, api, ws)[0]
    r = api.get(ws_files_path(ws, f["file_id"]))
    assert r.status_code == 200 and r.content == b"slow copy\n", r.text


def uploads_page(marker, upload_id):
    return ('<?xml version="1.0" encoding="UTF-8"?><ListMultipartUploadsResult>'
            f'<Bucket>{S3_BUCKET}</Bucket><IsTruncated>true</IsTruncated>'
            f'<NextKeyMarker>{marker}</NextKeyMarker>'
            f'<NextUploadIdMarker>{upload_id}</NextUploadIdMarker>'
            '</ListMultipartUploadsResult>')


def test_a_startup_sweep_whose_store_repeats_its_markers_stops(proxied):
    # a store answering every ListMultipartUploads page with the same next
    # markers: the startup sweep stops with a log line; httpd starts
    pages = Rule(lambda m, t, h: m == "GET" and "uploads=" in t,
                 ("reply", 200, uploads_page("k", "u")), times=10 ** 6)
    s, fp = proxied(rules=[pages])
    log = s.log_text()
    assert "the store answers a page that does not move on (markers it gave before); listing " \
           "stopped" in log, log[-3000:]
    assert "startup sweep: cannot list the unfinished multipart uploads" in log, log[-3000:]
    used = 10 ** 6 - pages.times
    assert 2 <= used <= 8, used  # two pages per listing: sessions/ and files/, maybe more
    pages.times = 0
    api = s.client(s.user_all)
    fid = post_file(api, "ws-markers", "a.txt", b"hello")["file_id"]
    r = api.get(ws_files_path("ws-markers", fid))
    assert r.status_code == 200 and r.content == b"hello", r.text


def test_a_listing_whose_store_repeats_its_token_stops(proxied):
    # every page of a direct session's listing names the same continuation
    # token: the listing is refused (asked again later), not followed for
    # ever nor taken whole; once the store behaves, the session finishes
    s, fp, api, sid, rule = bent_listing_session(proxied, "ws-token", "again", 4)
    finish_bent_listing(s, api, "ws-token", sid, rule)
    assert "the store answers a page that does not move on (a continuation token it gave " \
           "before)" in s.log_text()
    # each listing stopped at the second page: no page asked with a token
    # beyond the repeated one went to the store
    asked = [x for x in fp.log if x[0] == "GET" and "continuation-token=again" in x[1]]
    assert all(x[2] == "injected 200" for x in asked), asked


def test_a_listed_object_without_a_size_or_a_key_is_not_lost(proxied):
    # a listing entry without <Key> of a direct session, then one without
    # <Size>: each page is asked again, where the first file was left out
    # of the session, or taken as empty (FAILED, EMPTY_FILE)
    s, fp = proxied(extra=(S3_DIRECT,))
    api = s.client(s.user_all)
    sess = create_session(api, "ws-nosize")
    sid, cfg = sess["session_id"], sess["aws_prefixed_request_config"]
    files = [(f"f{i}.txt", b"file %d\n" % i) for i in range(2)]
    assert upload_all(cfg, files) == 2
    def page(left_out):
        entries = "".join(
            '<Contents>'
            + ("" if n == "f0.txt" and left_out == "Key" else
               f'<Key>{s.s3_prefix}/sessions/{sid}/{n}</Key>')
            + '<LastModified>2020-01-01T00:00:00.000Z</LastModified>'
            f'<ETag>"{hashlib.md5(b).hexdigest()}"</ETag>'
            + ("" if n == "f0.txt" and left_out == "Size" else f"<Size>{len(b)}</Size>")
            + '</Contents>'
            for n, b in files)
        return ('<?xml version="1.0" encoding="UTF-8"?><ListBucketResult>'
                f'<Name>{S3_BUCKET}</Name><IsTruncated>false</IsTruncated>{entries}'
                '</ListBucketResult>')
    rules = [Rule(lambda m, t, h: m == "GET" and "list-type=2" in t and sid in t,
                  ("reply", 200, page(left_out))) for left_out in ("Key", "Size")]
    fp.rules.extend(rules)
    close_session(api, "ws-nosize", sid)

    def finished():
        r = api.get(f"/ws-nosize/upload_sessions/{sid}")
        if r.status_code == 503:  # a status read the page: asked again
            check(r, 503, BUSY)
            return False
        return counters(check(r, 200)) == (2, 0, 0)
    assert wait_for(finished, 60)
    assert [r.times for r in rules] == [0, 0]
    assert "an entry without a key; the page is asked again later" in s.log_text()
    assert "an entry without a size" in s.log_text()
    assert sorted(f["name"] for f in list_ws_files(s, api, "ws-nosize")) == ["f0.txt", "f1.txt"]


NO_BUCKET = ('<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchBucket</Code>'
             f'<BucketName>{S3_BUCKET}</BucketName></Error>')


def test_a_missing_bucket_is_an_outage_not_missing_files(proxied):
    # every request answered 404 NoSuchBucket (the bucket deleted, a wrong
    # endpoint): downloads are 503, an ingestion is retried, no file is
    # taken as gone; once the bucket answers again, all is there
    s, fp = proxied()
    api = s.client(s.user_all)
    ws = "ws-nobucket"
    fid = post_file(api, ws, "kept.txt", b"kept")["file_id"]
    sid, cfg = new_session(api, ws)
    files = [(f"f{i}.txt", b"file %d\n" % i) for i in range(3)]
    upload_all(cfg, files)
    gone = Rule(lambda m, t, h: t.startswith(f"/{S3_BUCKET}"), ("reply", 404, NO_BUCKET),
                times=10 ** 6)
    fp.rules.append(gone)
    s.expect_log(r"US0301: file .*: its bytes are unreadable")
    r = api.get(ws_files_path(ws, fid))
    check(r, 503, BUSY)
    assert r.headers["retry-after"] == "1"
    close_session(api, ws, sid)
    time.sleep(6)  # the workers claim the session and fail against the missing bucket
    st = get_status(api, ws, sid)
    assert counters(st)[:2] == (0, 0), st
    log = s.log_text()
    assert "HTTP 404 NoSuchBucket: not a missing key (is the bucket" in log, log[-3000:]
    assert "US1013" in log, log[-3000:]  # the batch was retried
    gone.times = 0
    st = wait_ingested(api, ws, sid, 3, timeout=90)
    assert counters(st) == (3, 0, 0), st
    r = api.get(ws_files_path(ws, fid))
    assert r.status_code == 200 and r.content == b"kept", r.text


def test_a_404_without_a_document_to_a_copy_is_not_a_missing_file(proxied):
    # a 404 with no error document (not the store's: a proxy's) answering
    # the publishing copy: the file is not taken as gone (FAILED), the
    # batch is retried
    s, fp = proxied()
    api = s.client(s.user_all)
    ws = "ws-404-bare"
    sid, cfg = new_session(api, ws)
    upload_all(cfg, [("a.txt", b"abc\n")])
    fp.rules.append(Rule(lambda m, t, h: m == "PUT" and "/files/" in t, ("reply", 404, ""),
                         times=2))
    close_session(api, ws, sid)
    st = wait_ingested(api, ws, sid, 1, timeout=90)
    assert counters(st) == (1, 0, 0), st
    assert "HTTP 404 without an error code: not a missing key" in s.log_text()


def bent_head_download(s, fp, api, ws, answer):
    """Stores a.txt ("hello") in ws, has the relay give `answer` to its
    first HEAD, and checks that the download asking it fails with 500
    (US0301 logged); returns the file's id."""
    fid = post_file(api, ws, "a.txt", b"hello")["file_id"]
    fp.rules.append(Rule(lambda m, t, h: m == "HEAD" and f"/files/{fid}" in t, answer))
    s.expect_log(r"US0301: file .*: its bytes are unreadable")
    r = api.get(ws_files_path(ws, fid))
    check(r, 500, {"detail": "Internal Server Error"})
    return fid


def test_access_denied_is_an_error_said_to_be_a_permission(proxied):
    # AWS answers 403 for a missing key to credentials without
    # s3:ListBucket: neither a missing file nor an outage to retry at once,
    # an error whose log line says it is a permission
    s, fp = proxied()
    api = s.client(s.user_all)
    ws = "ws-403"
    fid = bent_head_download(s, fp, api, ws, ("reply", 403, ""))
    heads = [x for x in fp.log if x[0] == "HEAD" and "/files/" in x[1]]
    assert len(heads) == 1, heads  # asked once
    assert "HTTP 403 (access denied: the credentials lack a permission on the bucket; AWS " \
           "also answers 403 for a missing key when they lack s3:ListBucket)" in s.log_text()
    # an ingestion refused so is retried (backing off), never FAILED
    sid, cfg = new_session(api, ws)
    upload_all(cfg, [("b.txt", b"bbb\n")])
    denied = Rule(lambda m, t, h: m == "PUT" and "/files/" in t,
                  ("reply", 403, "<Error><Code>AccessDenied</Code></Error>"), times=2)
    fp.rules.append(denied)
    close_session(api, ws, sid)
    st = wait_ingested(api, ws, sid, 1, timeout=90)
    assert counters(st) == (1, 0, 0), st
    assert denied.times == 0
    assert "HTTP 403 AccessDenied (access denied" in s.log_text()


def test_a_head_without_content_length_is_an_error_not_an_empty_file(proxied):
    s, fp = proxied()
    api = s.client(s.user_all)
    ws = "ws-no-length"
    fid = bent_head_download(s, fp, api, ws, (
        "raw", b'HTTP/1.1 200 OK\r\nETag: "5d41402abc4b2a76b9719d911017c592"'
               b'\r\nConnection: close\r\n\r\n'))
    assert "the store's HEAD answer has no Content-Length" in s.log_text()
    r = api.get(ws_files_path(ws, fid))
    assert r.status_code == 200 and r.content == b"hello", r.text


def test_a_ranged_answer_for_another_range_is_an_error(proxied):
    # a 206 whose Content-Range is not the range asked for (a store's or a
    # proxy's mistake) holds other bytes: the download fails, where the
    # wrong bytes were served as those asked for
    s, fp = proxied()
    api = s.client(s.user_all)
    ws = "ws-bad-range"
    fid = post_file(api, ws, "a.txt", b"hello")["file_id"]
    bent = Rule(lambda m, t, h: m == "GET" and f"/files/{fid}" in t,
                ("raw", b"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-3/5\r\n"
                        b"Content-Length: 4\r\nConnection: close\r\n\r\nhell"))
    fp.rules.append(bent)
    s.expect_log(rf"US0301: file {fid}: its bytes are unreadable")
    r = api.get(ws_files_path(ws, fid), headers={"Range": "bytes=1-3"})
    # the first read fails before the answer's head is sent: the API's JSON 500
    check(r, 500, {"detail": "Internal Server Error"})
    assert "content-range" not in r.headers and "content-disposition" not in r.headers, r.headers
    assert bent.times == 0
    assert "the store answered Content-Range bytes 0-3/5 to Range bytes=1-4 (of 5 bytes)" \
        in s.log_text(), s.log_text()[-3000:]
    r = api.get(ws_files_path(ws, fid), headers={"Range": "bytes=1-3"})
    assert r.status_code == 206 and r.content == b"ell", (r.status_code, r.content)


@pytest.mark.parametrize("answer,status,body", [
    (("reply", 403, "<Error><Code>AccessDenied</Code></Error>"), 500,
     {"detail": "Internal Server Error"}),
    (("reply", 500, "<Error><Code>InternalError</Code></Error>"), 503, BUSY),
    ("cut", 503, BUSY),
])
def test_a_download_whose_first_read_fails_is_answered_in_json(proxied, answer, status, body):
    """The object opens (its HEAD answers) but the GET of its first bytes
    fails: nothing is sent yet, so the answer is the API's JSON error, as
    for a failed open (an outage 503 with Retry-After, the rest 500), not
    httpd's HTML 500 page; the next download is whole."""
    s, fp = proxied()
    api = s.client(s.user_all)
    ws = "ws-first-read"
    fid = post_file(api, ws, "a.txt", b"hello")["file_id"]
    bent = Rule(lambda m, t, h: m == "GET" and t.split("?")[0].endswith(f"/files/{fid}"), answer)
    fp.rules.append(bent)
    s.expect_log(rf"US0301: file {fid}: its bytes are unreadable")
    r = api.get(ws_files_path(ws, fid))
    check(r, status, body)
    assert r.headers["content-type"] == "application/json", r.headers
    assert "content-disposition" not in r.headers, r.headers
    if status == 503:
        assert r.headers["retry-after"] == "1", r.headers
    assert bent.times == 0
    assert download(api, ws, fid).content == b"hello"


def test_a_long_character_count_does_not_hold_a_restart(proxied):
    """A large text file (32 MiB: eight ranged GETs of 4 MiB, each held 1 s
    by the relay) whose characters are being counted when the children are
    told to stop: the count is given up at its next piece, so the old
    children exit within 3 s (they read on to the end, some 8 s, while
    httpd sent SIGTERMs), the file stays PENDING, not FAILED, and the new
    children ingest it FINISHED with its characters."""
    s, fp = proxied()
    api = s.client(s.user_all)
    ws = "ws-long-count"
    sid, cfg = new_session(api, ws)
    line = "caf\u00e9 \u20ac\n".encode()  # 7 characters in 10 bytes
    n = 32 * MiB // len(line)
    upload_all(cfg, [("big.txt", line * n)])
    fid = session_files(api, ws, sid)["big.txt"]["file_ingestion_id"]
    stamps = []
    held = Rule(stamped(lambda m, t, h: m == "GET" and t.split("?")[0].endswith(f"/files/{fid}"),
                        stamps), ("delay", 1), times=1000)
    fp.rules.append(held)
    close_session(api, ws, sid)
    assert wait_for(lambda: stamps, 60), fp.log[-20:]
    took = s.restart_timing_old_children(15)
    try:
        assert took < 3, f"the old children took {took:.1f} s to exit"
        # the new children's count is held as well: not decided yet
        assert state_of(session_files(api, ws, sid)["big.txt"]) == ("PENDING", None)
    finally:
        held.times = 0
    st = wait_ingested(api, ws, sid, 1, timeout=60)
    assert counters(st) == (1, 0, 0), st
    got = list_ws_files(s, api, ws)
    assert [(f["name"], f["characters"]) for f in got] == [("big.txt", 7 * n)], got
    log = s.log_text()
    assert not re.search(r"AH00045|AH00046|SIGKILL", log), s.log_tail()


def test_a_long_copy_does_not_hold_a_graceful_restart(proxied):
    """A publish whose copy the store takes long over (held 20 s by the
    relay) when the children are told to stop gracefully: the copy is cut
    short, so the old child exits within seconds, not once the copy is
    answered; the file stays PENDING, not FAILED, and the new children
    publish it FINISHED, once. The cut is no store failure: the workers'
    store errors stay 0."""
    s, fp = proxied(extra=METRICS_PAGE)
    api = s.client(s.user_all)
    ws = "ws-long-copy"
    sid, cfg = new_session(api, ws)
    upload_all(cfg, [("a.txt", b"a long copy\n")])
    stamps = []
    fp.rules.append(Rule(stamped(lambda m, t, h: m == "PUT" and "/files/" in t
                                 and "x-amz-copy-source:" in h.lower(), stamps), ("delay", 20)))
    close_session(api, ws, sid)
    assert wait_for(lambda: stamps, 60), fp.log[-20:]
    old = children_of(s.pid)
    t0 = time.monotonic()
    s.graceful()
    assert wait_for(lambda: not any(pid_alive(k) for k in old), 15), \
        "the old children were not gone within 15 s"
    took = time.monotonic() - t0
    assert took < 5, f"the old children took {took:.1f} s to exit"
    st = wait_ingested(api, ws, sid, 1, timeout=60)
    assert counters(st) == (1, 0, 0), st
    assert state_of(session_files(api, ws, sid)["a.txt"]) == ("FINISHED", None)
    got = list_ws_files(s, api, ws)
    assert [f["name"] for f in got] == ["a.txt"], got
    r = api.get(ws_files_path(ws, got[0]["file_id"]))
    assert r.status_code == 200 and r.content == b"a long copy\n", r.text
    log = s.log_text()
    assert len(re.findall(r"US1220", log)) == 1, log[-3000:]
    assert "US1013" not in log and "US1210" not in log, log[-3000:]
    assert metric(s, "worker_store_errors_total") == 0


def test_a_spill_directory_the_user_cannot_write_is_refused(s3_server):
    # parts past UploadSessionS3PartMemory go to $TMPDIR (else /var/tmp):
    # one httpd's User cannot write, or none at all, is a startup error
    # (configtest and start), not a failure of the first large upload
    s = s3_server(start=False)
    spill = os.path.join(s.dir, "spill")
    s.env["TMPDIR"] = spill
    s.write_config()
    rc, out = configtest(s)
    assert rc != 0, out
    assert (f"parts past UploadSessionS3PartMemory are written to $TMPDIR of httpd's "
            f"environment, else /var/tmp): directory {spill} does not exist") in out, out
    os.mkdir(spill)
    os.chmod(spill, 0o555)
    rc, out = configtest(s)
    assert rc != 0, out
    assert re.search(rf"directory {re.escape(spill)} \(Permission denied; chown it", out), out
    assert "Syntax OK" not in out, out
    proc = s._ctl("-k", "start")
    if proc.returncode == 0:  # started after all: the fixture stops it
        s.running = True
        wait_for(lambda: s._read_pid() is not None, 10)
        s.pid = s._read_pid()
    out = proc.stdout + proc.stderr + s.log_text()
    assert proc.returncode != 0, out
    assert f"cannot write to directory {spill}" in out, out
    os.chmod(spill, 0o1777)
    rc, out = configtest(s)
    assert rc == 0 and "Syntax OK" in out, out


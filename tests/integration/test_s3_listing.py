"""UploadSessionS3DirectUpload On, ingestion: the client uploads straight
into the bucket, the module knows the files only by listing the session's
prefix. Before its listing is recorded the file list and the counters list
the prefix; at close (or expiry) the ingest worker records ONE listing as
the session's uploads and ingests those (docs/design-s3-listing.md).
Against the session's private radosgw; `make integration-s3` runs this file.
"""

import hashlib
import os
import time

import pytest

from us_testkit.api import close_session, get_status
from us_testkit.ingest import (S3_DIRECT, direct_server, make_server, module_so,  # noqa: F401
                               new_session, outage, s3_server, session_files, upload_all, wait_ingested,
                               ws_files_path)
from us_testkit.procs import wait_for
from us_testkit.server import new_client
from us_testkit.uploads import s3_keys, session_files_page, upload

BUSY = {"detail": "The service is busy. Try again in a moment."}


def workspace_files(api, ws):
    r = api.get(ws_files_path(ws), params={"limit": 100})
    assert r.status_code == 200, r.text
    return r.json()


def test_sdk_upload_close_ingested_every_file_once(direct_server):
    """The SDK-shaped client uploads into the bucket; before the close the
    file list (paged) and uploaded_files come from the listing; after the
    close every file is decided once: FINISHED, an empty file FAILED
    EMPTY_FILE, a sidecar's metadata applied, a bad sidecar
    FAILED_TO_PARSE_META; the session prefix is left empty."""
    s = direct_server()
    api = s.client(s.user_all)
    ws = "ws-list"
    sid, cfg = new_session(api, ws, {"expires_in_seconds": 600})
    files = [(f"doc{i:02d}.txt", f"content {i}\n".encode() * (i + 1)) for i in range(23)]
    extra = [("empty.txt", b""), ("doc00.txt.meta.json", b'{"k": 1}'),
             ("bad.txt", b"bad"), ("bad.txt.meta.json", b"[1, 2]")]
    assert upload_all(cfg, files + extra) == len(files) + len(extra)
    raw = sorted(n for n, _ in files) + ["bad.txt", "empty.txt"]
    n = len(raw)

    # before the close: the listing, by name, paged; the counters agree
    st = get_status(api, ws, sid)
    assert st["uploaded_files"] == n, st
    assert st["ingestion_status"] == {"finished_files": 0, "failed_files": 0,
                                      "pending_files": n}, st
    p1 = session_files_page(api, ws, sid, limit=10, page_number=1)
    assert p1["total"] == n and p1["has_more"] is True, p1
    assert [i["name"] for i in p1["data"]] == sorted(raw)[:10], p1
    assert all(i["ingestion_status"] == "PENDING" for i in p1["data"]), p1
    last = p1["data"][-1]["file_ingestion_id"]
    p2 = session_files_page(api, ws, sid, limit=10, after=last)
    assert [i["name"] for i in p2["data"]] == sorted(raw)[10:20], p2
    assert p2["has_more"] is True and p2["total"] == n, p2
    back = session_files_page(api, ws, sid, limit=3, before=last)
    assert [i["name"] for i in back["data"]] == sorted(raw)[6:9], back
    empty = session_files_page(api, ws, sid, ingestion_status="FINISHED")
    assert empty == {"data": [], "has_more": False, "total": 0}, empty
    before_ids = {i["name"]: i["file_ingestion_id"] for i in p1["data"]}

    close_session(api, ws, sid)
    st = wait_ingested(api, ws, sid, n, timeout=90)
    assert st["ingestion_status"] == {"finished_files": n - 2, "failed_files": 2,
                                      "pending_files": 0}, st
    items = session_files(api, ws, sid)
    assert sorted(items) == sorted(raw)
    assert items["empty.txt"]["ingestion_status_reason"] == "EMPTY_FILE", items
    assert items["bad.txt"]["ingestion_status_reason"] == "FAILED_TO_PARSE_META", items
    # the ids the listing showed before the close are the recorded ones
    for name, fid in before_ids.items():
        assert items[name]["file_ingestion_id"] == fid, (name, items[name])

    page = workspace_files(api, ws)
    assert page["total"] == n - 2, page
    by_name = {f["name"]: f for f in page["data"]}
    assert sorted(by_name) == sorted(nm for nm, _ in files)
    assert by_name["doc00.txt"]["meta"] == {"k": 1}, by_name["doc00.txt"]
    want = dict(files)
    for name in ("doc00.txt", "doc07.txt", "doc22.txt"):
        r = api.get(ws_files_path(ws, by_name[name]["file_id"]))
        assert r.status_code == 200 and r.content == want[name], (name, r.status_code)
    # the counters are final before the clear of what is left of the uploads
    assert wait_for(lambda: s3_keys(s, f"sessions/{sid}/") == [], 30), s3_keys(s, f"sessions/{sid}/")
    assert len(s3_keys(s, "files/")) == n - 2
    assert "US1019" in s.log_text()


def test_object_after_the_listing_is_not_ingested(direct_server):
    """The policy lives until expires_at: an object POSTed after the
    session was ingested is not one of its files, not in the workspace,
    and not in the counters."""
    s = direct_server()
    api = s.client(s.user_all)
    ws = "ws-late"
    sid, cfg = new_session(api, ws, {"expires_in_seconds": 600})
    upload_all(cfg, [("a.txt", b"a"), ("b.txt", b"b")])
    close_session(api, ws, sid)
    wait_ingested(api, ws, sid, 2)
    with new_client() as c:
        r = upload(c, cfg, "late.txt", b"late")
        assert r.status_code == 204 and r.content == b"", r.text
    time.sleep(1.5)
    st = get_status(api, ws, sid)
    assert st["uploaded_files"] == 2, st
    assert st["ingestion_status"] == {"finished_files": 2, "failed_files": 0,
                                      "pending_files": 0}, st
    assert sorted(session_files(api, ws, sid)) == ["a.txt", "b.txt"]
    page = workspace_files(api, ws)
    assert sorted(f["name"] for f in page["data"]) == ["a.txt", "b.txt"], page


def late_object_kept_through_the_grace(s, cfg, sid, expires, kept_at, cleared_from):
    """Once the ingestion's own clear has emptied the session's prefix,
    POSTs late.txt before `expires` (a monotonic time); checks that it is
    still there `kept_at` seconds after expires and that the last clear
    removes it, not before `cleared_from` seconds after expires."""
    assert wait_for(lambda: s3_keys(s, f"sessions/{sid}/") == [], 30)
    with new_client() as c:
        r = upload(c, cfg, "late.txt", b"late")
        assert r.status_code == 204 and r.content == b"", r.text
    assert time.monotonic() < expires, "the late POST came after expires_at: test too slow"
    assert s3_keys(s, f"sessions/{sid}/") == ["late.txt"]
    time.sleep(max(0.0, expires + kept_at - time.monotonic()))
    assert s3_keys(s, f"sessions/{sid}/") == ["late.txt"]
    assert wait_for(lambda: s3_keys(s, f"sessions/{sid}/") == [], cleared_from + 40, 0.2)
    assert time.monotonic() >= expires + cleared_from, "cleared before the grace ran out"


def test_object_after_the_ingestions_clear_is_gone_after_expiry(direct_server):
    """The policy lives until expires_at: an object POSTed after the clear
    that ends the ingestion would stay for good. Once expires_at lies the
    grace in the past (the ingest lease, 1 s, plus UploadSessionMaxFileSize
    at 1 MiB/s, 3 s), the prefix is cleared a last time, once (US1022), and
    the workspace keeps exactly the ingested files."""
    s = direct_server(extra=["UploadSessionIngestLease 1", "UploadSessionMaxFileSize 3M"])
    api = s.client(s.user_all)
    ws = "ws-late-clear"
    sid, cfg = new_session(api, ws, {"expires_in_seconds": 8})
    expires = time.monotonic() + 8
    upload_all(cfg, [("a.txt", b"a"), ("b.txt", b"b")])
    close_session(api, ws, sid)
    wait_ingested(api, ws, sid, 2)
    # past the lease, within the grace: a POST begun at expires_at may still land
    late_object_kept_through_the_grace(s, cfg, sid, expires, kept_at=2.5, cleared_from=3.5)
    page = workspace_files(api, ws)
    assert page["total"] == 2, page
    assert sorted(f["name"] for f in page["data"]) == ["a.txt", "b.txt"], page
    assert len(s3_keys(s, "files/")) == 2
    st = get_status(api, ws, sid)
    assert st["uploaded_files"] == 2, st
    assert st["ingestion_status"] == {"finished_files": 2, "failed_files": 0,
                                      "pending_files": 0}, st
    time.sleep(2)  # more sweeps: the last clear stays recorded, logged once
    lines = [ln for ln in s.log_text().splitlines() if "US1022" in ln]
    assert len(lines) == 1 and sid in lines[0], lines


def test_the_last_clear_waits_for_the_largest_file_any_virtual_host_allows(make_server):
    """Servers naming one store share its ingest workers: the grace before a
    session's last clear is sized by the largest UploadSessionMaxFileSize
    among them (a virtual host's 5 MiB: the 1 s lease plus 5 s), not by the
    first server's (1 MiB: 2 s). A session of the virtual host signs POSTs of
    up to 5 MiB, so one begun at expires_at may land 5 s after it."""
    s = make_server(start=False, storage="s3",
                    extra=[S3_DIRECT, "UploadSessionIngestLease 1", "UploadSessionMaxFileSize 1M"])
    s.extra += [f"<VirtualHost 127.0.0.1:{s.port}>", "ServerName other.test",
                "UploadSessionMaxFileSize 5M", "</VirtualHost>"]
    s.start()
    api = s.client(s.user_all, headers={"Host": "other.test"})
    ws = "ws-late-vhost"
    sid, cfg = new_session(api, ws, {"expires_in_seconds": 6})
    expires = time.monotonic() + 6
    upload_all(cfg, [("a.txt", b"a")])
    close_session(api, ws, sid)
    wait_ingested(api, ws, sid, 1)
    # past the first server's grace (2 s), within the virtual host's (6 s)
    late_object_kept_through_the_grace(s, cfg, sid, expires, kept_at=4.5, cleared_from=5.5)
    st = get_status(api, ws, sid)
    assert st["uploaded_files"] == 1, st
    assert st["ingestion_status"] == {"finished_files": 1, "failed_files": 0,
                                      "pending_files": 0}, st


def test_max_files_applies_at_listing_time(direct_server):
    """UploadSessionMaxFilesPerSession: the first N raw files by name are
    the session's (before and after the close); the others are left out,
    logged (US1018) and removed with the session's leftovers."""
    s = direct_server(extra=["UploadSessionMaxFilesPerSession 3"])
    api = s.client(s.user_all)
    ws = "ws-max"
    sid, cfg = new_session(api, ws)
    upload_all(cfg, [(f"f{i}.txt", b"x%d" % i) for i in range(5)] +
               [("f4.txt.meta.json", b"{}")])
    st = get_status(api, ws, sid)
    assert st["uploaded_files"] == 3, st
    close_session(api, ws, sid)
    wait_ingested(api, ws, sid, 3)
    assert sorted(session_files(api, ws, sid)) == ["f0.txt", "f1.txt", "f2.txt"]
    page = workspace_files(api, ws)
    assert sorted(f["name"] for f in page["data"]) == ["f0.txt", "f1.txt", "f2.txt"], page
    # the counters are final before the clear of what is left of the uploads
    assert wait_for(lambda: s3_keys(s, f"sessions/{sid}/") == [], 30), s3_keys(s, f"sessions/{sid}/")
    assert (f"US1018: ingest: session {sid}: 2 files past UploadSessionMaxFilesPerSession (3) "
            "left out and removed") in s.log_text(), s.log_tail()


@pytest.mark.parametrize("mode", ["KEEP", "OVERWRITE", "FAIL"])
def test_write_modes_and_serial_sessions(direct_server, mode):
    """Two serial sessions of one workspace upload the same name; both are
    ingested in closing order, with the write mode's outcome."""
    s = direct_server()
    api = s.client(s.user_all)
    ws = f"ws-mode-{mode.lower()}"
    body = {"write_mode": mode, "parallel_processing_enabled": False}
    sid1, cfg1 = new_session(api, ws, body)
    sid2, cfg2 = new_session(api, ws, body)
    upload_all(cfg1, [("same.txt", b"first"), ("one.txt", b"1")])
    upload_all(cfg2, [("same.txt", b"second"), ("two.txt", b"2")])
    close_session(api, ws, sid1)
    close_session(api, ws, sid2)
    wait_ingested(api, ws, sid1, 2)
    st2 = wait_ingested(api, ws, sid2, 2)
    items2 = session_files(api, ws, sid2)
    page = workspace_files(api, ws)
    same = [f for f in page["data"] if f["name"] == "same.txt"]
    if mode == "FAIL":
        assert items2["same.txt"]["ingestion_status"] == "FAILED", items2
        assert items2["same.txt"]["ingestion_status_reason"] == "FILE_ALREADY_EXISTS", items2
        assert st2["ingestion_status"]["failed_files"] == 1, st2
        want = [b"first"]
    elif mode == "OVERWRITE":
        assert items2["same.txt"]["ingestion_status"] == "FINISHED", items2
        want = [b"second"]
    else:
        assert items2["same.txt"]["ingestion_status"] == "FINISHED", items2
        want = [b"first", b"second"]
    got = sorted(api.get(ws_files_path(ws, f["file_id"])).content for f in same)
    assert got == sorted(want), (mode, got)
    assert sorted(f["name"] for f in page["data"] if f["name"] != "same.txt") == \
        ["one.txt", "two.txt"], page


def test_outage_during_ingestion_of_a_direct_session(direct_server, outage):
    """radosgw stops after the uploads: the status (a listing) answers 503
    with Retry-After, the close still answers 204 (it lists nothing), the
    worker retries; once radosgw is back every file is ingested once."""
    s = direct_server()
    api = s.client(s.user_all)
    ws = "ws-direct-outage"
    sid, cfg = new_session(api, ws)
    files = [(f"f{i:03d}.bin", os.urandom(500 + i * 37)) for i in range(30)]
    upload_all(cfg, files)
    outage.stop()
    r = api.get(f"{ws}/upload_sessions/{sid}")
    assert r.status_code == 503 and r.json() == BUSY, r.text
    assert r.headers["retry-after"] == "1"
    close_session(api, ws, sid)
    time.sleep(5)  # the workers claim it and fail to list against the dead store
    outage.start()
    wait_ingested(api, ws, sid, 30, timeout=120)
    items = session_files(api, ws, sid)
    assert sorted(items) == sorted(n for n, _ in files)
    assert all(i["ingestion_status"] == "FINISHED" for i in items.values()), items
    page = workspace_files(api, ws)
    assert page["total"] == 30, page
    want = {n: hashlib.sha256(d).hexdigest() for n, d in files}
    for f in page["data"][:8]:
        r = api.get(ws_files_path(ws, f["file_id"]))
        assert r.status_code == 200, r.text
        assert hashlib.sha256(r.content).hexdigest() == want[f["name"]]
    assert s3_keys(s, f"sessions/{sid}/") == []
    assert len(s3_keys(s, "files/")) == 30
    assert "US1013" in s.log_text()


def test_empty_direct_session_and_abort(direct_server):
    """A direct session closed with nothing in the bucket is ingested with
    no files; an aborted one records no listing and leaves no object."""
    s = direct_server()
    api = s.client(s.user_all)
    ws = "ws-direct-empty"
    sid, _ = new_session(api, ws)
    close_session(api, ws, sid)
    st = wait_ingested(api, ws, sid, 0)
    assert st["uploaded_files"] == 0, st
    sid2, cfg2 = new_session(api, ws)
    upload_all(cfg2, [("x.txt", b"x")])
    r = api.delete(f"{ws}/upload_sessions/{sid2}")
    assert r.status_code == 204 and r.content == b"", r.text
    deadline = time.monotonic() + 30
    while s3_keys(s, f"sessions/{sid2}/") and time.monotonic() < deadline:
        time.sleep(0.3)
    assert s3_keys(s, f"sessions/{sid2}/") == []
    assert workspace_files(api, ws)["total"] == 0

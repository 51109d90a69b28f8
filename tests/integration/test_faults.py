"""Fault injection: the module under kill -9, a full disk, a locked store and
restarts of httpd while uploads are in flight (API.md "Upload target": "a
file becomes visible only when complete (temp file + rename)"; README "How
it works": temp files left by a crash are removed at startup; store busy ->
503 + Retry-After).

  1. kill -9 of every httpd process while 20 + 3 uploads of 8 MiB are mid-file
  2. a full disk (a 4 MiB tmpfs as UploadSessionDataDir; skipped without
     CAP_SYS_ADMIN): 507, nothing kept, works again once space is back
  3. the SQLite store held under BEGIN EXCLUSIVE beyond UploadSessionBusyTimeout:
     503 (+ Retry-After / S3 SlowDown), nothing half-written, then success;
     and the writers' lock file held: writers wait, readers do not
  4. apache2 -k graceful / -k restart while 50 uploads are in flight

Every test runs its own httpd (a private copy of the module, see
us_testkit.ingest). Files of a session live in
<data dir>/sessions/<session_id>/<blob uuid>, temp files ".<uuid>.<pid>-<machine>.tmp"
beside them while a file over 256 KiB is written (smaller ones are written
under their own name); POST /files blobs in <data dir>/files/<file_id>."""

import fcntl
import hashlib
import os
import random
import re
import signal
import threading
import time
from collections import Counter

import pytest

from us_testkit.pg import sqlite_only
from us_testkit.procs import files_open, wait_for
from us_testkit.server import new_client
from us_testkit.api import (check, close_session, create_session, get_status, list_sessions,
                            unique_ws)
from us_testkit.uploads import (list_files_all, no_content, raw_post, s3_error,
                                sdk_upload_many, sha256_file, upload, url_path)
from us_testkit.ingest import (httpd_pids, kill9, make_server, module_so,  # noqa: F401
                               shared_server_options, start_after_kill, tmp_files_under)
from us_testkit.faults import (HeldUpload, KILLED_CHILD_LOG, PacedUpload, apachectl,  # noqa: F401
                               chown_www_data, resuming_count, session_blob_hashes,
                               session_temp_files, store_locked, store_path, tmpfs,
                               upload_body)

MiB = 1024 * 1024

MSG_NOT_STORED = "The file could not be stored. Please try again."
BUSY = {"detail": "The service is busy. Try again in a moment."}


def new_session(api, ws, body=None):
    sess = create_session(api, ws, body)
    return sess["session_id"], sess["aws_prefixed_request_config"]


def names_of(api, ws, sid):
    items, _ = list_files_all(api, ws, sid)
    return sorted(i["name"] for i in items)


def expected_blobs(contents):
    """[(sha256, size)] of {name: bytes}, sorted like session_blob_hashes."""
    return sorted((hashlib.sha256(d).hexdigest(), len(d)) for d in contents.values())


def ws_files(api, ws):
    data = check(api.get(f"{ws}/files", params={"limit": 100}), 200)
    assert not data["has_more"], data
    return data["data"]


def post_file(api, ws, name, data):
    return api.post(f"{ws}/files", files={"file": (name, data)})


# --------------------------------------------------------------------------
# 1. kill -9 while 20 large uploads are in flight
# --------------------------------------------------------------------------

def test_sigkill_during_uploads_leaves_nothing_partial(make_server):
    s = make_server()
    s.expect_log(KILLED_CHILD_LOG, whole_life=True)
    api = s.client(s.user_all)
    ws = unique_ws("kill")
    sid, cfg = new_session(api, ws)
    rnd = random.Random(20261128)
    c = new_client(timeout=60)
    data_root = os.path.join(s.dir, "state", "data")
    files_dir = os.path.join(data_root, "files")

    # 4 session uploads and 2 direct uploads complete (204 / 201) before the kill
    done = {f"done-{i}.bin": rnd.randbytes(8 * MiB) for i in range(4)}
    for name, data in done.items():
        no_content(upload(c, cfg, name, data))
    direct_done = {}
    for i in range(2):
        data = rnd.randbytes(8 * MiB)
        fid = check(post_file(api, ws, f"direct-done-{i}.bin", data), 201)["file_id"]
        direct_done[fid] = (f"direct-done-{i}.bin", data)

    # 20 session uploads and 3 direct uploads of 8 MiB each, held open after
    # 4 MiB: in flight, mid-file
    inflight = {f"inflight-{i:02d}.bin": rnd.randbytes(8 * MiB) for i in range(20)}
    held = [HeldUpload(s, cfg, n, d, first=4 * MiB).start() for n, d in inflight.items()]
    direct_inflight = {f"direct-inflight-{i}.bin": rnd.randbytes(8 * MiB) for i in range(3)}
    direct = (f"/api/v1/workspaces/{ws}/files", s.user_all.headers)
    held += [HeldUpload(s, None, n, d, first=4 * MiB, direct=direct).start()
             for n, d in direct_inflight.items()]

    def all_writing():
        temps = tmp_files_under(data_root)
        if len(temps) != 23:
            return False
        try:
            return all(os.path.getsize(os.path.join(data_root, t)) >= 1 * MiB for t in temps)
        except FileNotFoundError:
            return False
    assert wait_for(all_writing, 20), tmp_files_under(data_root)
    assert len(session_temp_files(s, sid)) == 20
    # while in flight nothing of them is visible
    assert names_of(api, ws, sid) == sorted(done)
    assert get_status(api, ws, sid)["uploaded_files"] == 4
    assert sorted(f["file_id"] for f in ws_files(api, ws)) == sorted(direct_done)

    killed = kill9(s)
    assert len(killed) >= 2
    for h in held:
        h.finish()
        assert h.status is None, f"{h.name} got an answer from a dead server: {h.answer[:300]!r}"
    assert len(tmp_files_under(data_root)) == 23  # the sweep at startup has work to do

    log_before = len(s.log_text())
    api = start_after_kill(s)
    # the startup sweep removed them all, and said so
    assert tmp_files_under(data_root) == []
    swept = re.findall(r"removed (\d+) temp file\(s\) left by interrupted uploads",
                       s.log_text()[log_before:])
    assert swept == ["23"], s.log_tail()

    # only the uploads that got 204 / 201 are visible, complete, byte for byte
    assert names_of(api, ws, sid) == sorted(done)
    st = get_status(api, ws, sid)
    assert st["uploaded_files"] == 4 and st["status"] == "OPEN", st
    assert session_blob_hashes(s, sid) == expected_blobs(done)
    listed = {f["file_id"]: f for f in ws_files(api, ws)}
    assert sorted(listed) == sorted(direct_done) == sorted(os.listdir(files_dir))
    for fid, (name, data) in direct_done.items():
        assert listed[fid]["name"] == name and listed[fid]["size"] == len(data)
        assert api.get(f"{ws}/files/{fid}").content == data

    # the client retries every failed upload (the SDK's way): all succeed
    results, _ = sdk_upload_many(cfg["url"], cfg["fields"], list(inflight.items()),
                                 concurrency=10, deadline=60)
    bad = [(n, st_, b[:200]) for n, st_, _h, b in results if st_ != 204 or b != b""]
    assert not bad, bad
    for name, data in direct_inflight.items():
        check(post_file(api, ws, name, data), 201)
    assert names_of(api, ws, sid) == sorted(list(done) + list(inflight))
    assert get_status(api, ws, sid)["uploaded_files"] == 24
    assert session_blob_hashes(s, sid) == expected_blobs({**done, **inflight})
    assert session_temp_files(s, sid) == []
    assert sorted(f["name"] for f in ws_files(api, ws)) == \
        sorted([n for n, _ in direct_done.values()] + list(direct_inflight))
    assert len(os.listdir(files_dir)) == 5


# --------------------------------------------------------------------------
# 2. disk full
# --------------------------------------------------------------------------

def fill_up(path):
    """Write a filler file (as root) until the file system is full."""
    filler = os.path.join(path, "filler")
    block = b"\0" * 65536
    with open(filler, "wb", buffering=0) as f:
        try:
            while True:
                f.write(block)
        except OSError as e:
            assert e.errno == 28, e  # ENOSPC
    with open(filler, "ab", buffering=0) as f:  # the last partial pages too
        try:
            while True:
                f.write(b"\0")
        except OSError as e:
            assert e.errno == 28, e
    return filler


def test_disk_full_during_upload(tmpfs, make_server):
    mnt = tmpfs("4m")
    chown_www_data(mnt)
    s = make_server(start=False)
    s.overrides["UploadSessionDataDir"] = f'"{mnt}"'
    s.start()
    # the module logs the ENOSPC at error level (US0204 upload, US0303/0304 POST /files)
    enospc = r"\(28\)No space left on device: .*(US0204: upload: (writing|storing) |" \
             r"US0303: POST /files: write|US0304: POST /files: store)"
    s.expect_log(enospc, whole_life=True)

    api = s.client(s.user_all)
    ws = unique_ws("full")
    sid, cfg = new_session(api, ws)
    c = new_client(timeout=60)
    rnd = random.Random(7)
    before = rnd.randbytes(256 * 1024)
    no_content(upload(c, cfg, "before.txt", before))
    direct_before = rnd.randbytes(256 * 1024)
    direct_id = check(post_file(api, ws, "direct-before.txt", direct_before), 201)["file_id"]

    def assert_intact(names):
        assert names_of(api, ws, sid) == sorted(names)
        assert get_status(api, ws, sid)["uploaded_files"] == len(names)
        assert session_temp_files(s, sid, mnt) == []
        assert tmp_files_under(mnt) == []
        assert [f["name"] for f in ws_files(api, ws)] == ["direct-before.txt"]
        assert os.listdir(os.path.join(mnt, "files")) == [direct_id]
        r = api.get(f"{ws}/files/{direct_id}")
        assert r.status_code == 200 and r.content == direct_before

    # an 8 MiB upload into 4 MiB: a clear 5xx S3 error, nothing kept
    big = rnd.randbytes(8 * MiB)
    head, tail, ctype = upload_body(cfg["fields"], "big.bin", big)
    resp, _ = raw_post(s.port, url_path(cfg["url"]), {"Content-Type": ctype,
                       "Content-Length": str(len(head) + len(big) + len(tail))},
                       [head, big, tail])
    assert resp is not None, "no answer to the upload that filled the disk"
    s3_error(resp, 507, "InternalError", MSG_NOT_STORED)
    assert_intact({"before.txt"})
    assert sorted(session_blob_hashes(s, sid, mnt)) == expected_blobs({"b": before})

    # the same through POST /files: 507 {"detail": ...}, nothing listed or kept
    r = post_file(api, ws, "big-direct.bin", big)
    check(r, 507, {"detail": "The file could not be stored."})
    assert_intact({"before.txt"})

    # a completely full disk: even a tiny file fails (when it is flushed)
    filler = fill_up(mnt)
    tiny = b"tiny file\n"
    s3_error(upload(c, cfg, "tiny.txt", tiny), 507, "InternalError", MSG_NOT_STORED)
    check(post_file(api, ws, "tiny-direct.txt", tiny), 507,
          {"detail": "The file could not be stored."})
    os.unlink(filler)
    assert_intact({"before.txt"})

    # space freed (the filler deleted): small uploads work again
    no_content(upload(c, cfg, "tiny.txt", tiny))
    # more space (remounted larger): the big one works too
    tmpfs.resize(mnt, "32m")
    no_content(upload(c, cfg, "big.bin", big))
    big_id = check(post_file(api, ws, "big-direct.bin", big), 201)["file_id"]
    assert api.get(f"{ws}/files/{big_id}").content == big
    assert names_of(api, ws, sid) == ["before.txt", "big.bin", "tiny.txt"]
    assert session_blob_hashes(s, sid, mnt) == expected_blobs(
        {"a": before, "b": big, "c": tiny})
    assert tmp_files_under(mnt) == []

    # and the session ingests exactly those three
    close_session(api, ws, sid)
    assert wait_for(lambda: get_status(api, ws, sid)["ingestion_status"]["finished_files"] == 3,
                    30), get_status(api, ws, sid)
    st = get_status(api, ws, sid)["ingestion_status"]
    assert st == {"failed_files": 0, "finished_files": 3, "pending_files": 0}, st
    assert sorted(f["name"] for f in ws_files(api, ws)) == \
        ["before.txt", "big-direct.bin", "big.bin", "direct-before.txt", "tiny.txt"]


# --------------------------------------------------------------------------
# 3. the store locked beyond the busy timeout
# --------------------------------------------------------------------------

@sqlite_only("holds SQLite's write lock")
def test_store_locked_beyond_busy_timeout(make_server):
    s = make_server(extra=["UploadSessionBusyTimeout 100"])
    api = s.client(s.user_all, timeout=120)
    ws = unique_ws("lock")
    sid, cfg = new_session(api, ws)
    c = new_client(timeout=120)
    no_content(upload(c, cfg, "before.txt", b"before"))
    direct_id = check(post_file(api, ws, "direct-before.txt", b"direct"), 201)["file_id"]
    blobs_before = session_blob_hashes(s, sid)
    files_dir = os.path.join(s.dir, "state", "data", "files")
    assert os.listdir(files_dir) == [direct_id]

    calls = {
        "create": lambda cl: cl.post(f"{ws}/upload_sessions", json={}),
        "close": lambda cl: cl.put(f"{ws}/upload_sessions/{sid}", json={"status": "CLOSED"}),
        "upload": lambda cl: upload(new_client(timeout=120), cfg, "locked.txt", b"locked"),
        "post_file": lambda cl: post_file(cl, ws, "locked-direct.txt", b"locked direct"),
    }
    results = {}

    def run(name):
        t0 = time.monotonic()
        try:
            results[name] = (calls[name](s.client(s.user_all, timeout=120)),
                             time.monotonic() - t0)
        except Exception as e:  # noqa: BLE001
            results[name] = (e, time.monotonic() - t0)

    t0 = time.monotonic()
    with store_locked(s):
        threads = [threading.Thread(target=run, args=(n,), daemon=True) for n in calls]
        for t in threads:
            t.start()
        # readers are not blocked by the writer's lock (WAL)
        st = get_status(api, ws, sid)
        assert st["status"] == "OPEN" and st["uploaded_files"] == 1, st
        for t in threads:
            t.join(110)
        assert not any(t.is_alive() for t in threads), "requests still hanging"
        # every writer gave up while the lock was still held
    took = time.monotonic() - t0
    print(f"\nlocked store: {', '.join(f'{n} {d:.1f}s' for n, (_r, d) in results.items())};"
          f" all answered in {took:.1f}s")

    for name in ("create", "close", "post_file"):
        r, _ = results[name]
        assert not isinstance(r, Exception), (name, r)
        check(r, 503, BUSY)
        assert re.fullmatch(r"\d+", r.headers.get("retry-after", "")), (name, dict(r.headers))
    r, _ = results["upload"]
    assert not isinstance(r, Exception), r
    s3_error(r, 503, "SlowDown", "Please reduce your request rate.")

    # nothing half-written: no new session, the session still OPEN with its
    # one file, no blob or temp file of the failed upload, no workspace file
    d = list_sessions(api, ws)
    assert d["total"] == 1 and [i["session_id"] for i in d["data"]] == [sid], d
    st = get_status(api, ws, sid)
    assert st["status"] == "OPEN" and st["uploaded_files"] == 1, st
    assert names_of(api, ws, sid) == ["before.txt"]
    assert session_blob_hashes(s, sid) == blobs_before
    assert session_temp_files(s, sid) == []
    assert [f["name"] for f in ws_files(api, ws)] == ["direct-before.txt"]
    assert os.listdir(files_dir) == [direct_id]
    assert tmp_files_under(os.path.join(s.dir, "state", "data")) == []

    # the same requests now succeed
    new_sid, _ = new_session(api, ws)
    no_content(upload(c, cfg, "locked.txt", b"locked"))
    check(post_file(api, ws, "locked-direct.txt", b"locked direct"), 201)
    close_session(api, ws, sid)
    assert list_sessions(api, ws)["total"] == 2
    assert get_status(api, ws, new_sid)["status"] == "OPEN"
    assert wait_for(lambda: get_status(api, ws, sid)["ingestion_status"]["finished_files"] == 2,
                    30), get_status(api, ws, sid)
    assert sorted(f["name"] for f in ws_files(api, ws)) == \
        ["before.txt", "direct-before.txt", "locked-direct.txt", "locked.txt"]


@sqlite_only("holds SQLite's write lock")
def test_a_write_to_a_locked_store_gives_up_after_about_its_timeout(make_server):
    """With the default UploadSessionBusyTimeout (1 s), a create against a
    store that another program keeps locked answers 503 after about the
    timeout plus the 1.6 s apr_dbd's sqlite3 driver sleeps between its 16
    tries (2.7 s measured): each try waits a 16th of the timeout. Each try
    waited all of it, and the 503 came after 17.8 s."""
    s = make_server()
    api = s.client(s.user_all, timeout=60)
    ws = unique_ws("lock-timeout")
    new_session(api, ws)  # the writers' connections are open
    with store_locked(s):
        t0 = time.monotonic()
        r = api.post(f"{ws}/upload_sessions", json={})
        took = time.monotonic() - t0
    check(r, 503, BUSY)
    assert re.fullmatch(r"\d+", r.headers.get("retry-after", "")), dict(r.headers)
    assert took < 9, f"the 503 came after {took:.1f} s"
    assert list_sessions(api, ws)["total"] == 1


@sqlite_only("the SQLite writers' lock file")
def test_writers_queue_on_the_store_lock_file(make_server):
    """Every child's writers take an flock on <store>.lock before SQLite's
    write lock (src/store/sqlite/us_writer.c): while someone else holds it, create, close
    and uploads wait (reads do not), and they all complete once it is free."""
    s = make_server()
    api = s.client(s.user_all, timeout=60)
    ws = unique_ws("flock")
    sid, cfg = new_session(api, ws)
    lock_path = store_path(s) + ".lock"
    assert os.path.exists(lock_path)
    results = {}
    calls = {
        "create": lambda: s.client(s.user_all, timeout=60).post(f"{ws}/upload_sessions", json={}),
        "upload": lambda: upload(new_client(timeout=60), cfg, "queued.txt", b"queued"),
    }

    def run(name):
        results[name] = calls[name]()

    fd = os.open(lock_path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        threads = [threading.Thread(target=run, args=(n,), daemon=True) for n in calls]
        for t in threads:
            t.start()
        time.sleep(1.5)
        assert results == {}, "a writer did not wait for the lock file"
        st = get_status(api, ws, sid)  # readers are not held up
        assert st["status"] == "OPEN" and st["uploaded_files"] == 0, st
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    for t in threads:
        t.join(30)
    check(results["create"], 201)
    no_content(results["upload"])
    assert get_status(api, ws, sid)["uploaded_files"] == 1
    assert list_sessions(api, ws)["total"] == 2


@sqlite_only("the SQLite store's warm step")
def test_a_child_opens_its_store_in_a_thread_of_its_own(make_server):
    """A child opens its store's first connections (us_store_warm: SQLite
    prepares every statement on two of them, and may wait for a busy
    database) in a thread of its own (src/httpd/children.c, start_warm), not
    in child_init, where a child neither serves nor reads its parent's stop.
    Every child logs the step from a thread other than its main one (Debian's
    httpd logs the kernel's thread ids: the main thread's is the process's),
    and the API works."""
    s = make_server(extra=["LogLevel upload_session:debug"])
    api = s.client(s.user_all)
    ws = unique_ws("warm")
    sid = check(api.post(f"{ws}/upload_sessions", json={}), 201)["session_id"]
    assert get_status(api, ws, sid)["status"] == "OPEN"
    children = httpd_pids(s)[1:]
    assert children

    def warmed():
        return {int(pid): int(tid) for pid, tid in re.findall(
            r"\[pid (\d+):tid (\d+)\][^\n]* US0028: the store's warm step is done",
            s.log_text())}
    assert wait_for(lambda: set(children) <= set(warmed()), 10), (children, warmed())
    assert all(tid != pid for pid, tid in warmed().items()), warmed()


# one child of four threads, replaced when killed
ONE_CHILD = ["StartServers 1", "ServerLimit 1", "ThreadLimit 4", "ThreadsPerChild 4",
             "MaxRequestWorkers 4", "MinSpareThreads 1", "MaxSpareThreads 4"]
# SQLite's unix VFS: the byte of the -shm file every process using it holds
# a shared lock on ("DMS"), after the 8 bytes of its WAL locks at 120
SHM_DMS_BYTE = 128


def posix_read_locks(pid, inode):
    """Byte ranges of the POSIX read locks pid holds on the file `inode`."""
    out = []
    with open("/proc/locks") as f:
        for line in f:
            parts = line.split()
            if "->" in parts or len(parts) < 8 or parts[1] != "POSIX":
                continue
            if parts[3] == "READ" and int(parts[4]) == pid and \
                    int(parts[5].rsplit(":", 1)[1]) == inode:
                out.append((int(parts[6]), int(parts[7])))
    return out


@sqlite_only("SQLite's shared-memory lock")
def test_a_child_forked_after_the_sweep_holds_its_own_shm_lock(make_server):
    """The parent's expiry sweep opens the store for each run and closes it
    before it returns (src/httpd/sweep.c). A SQLite connection open across a
    fork leaves the child SQLite's state of the parent's files: a child
    forked later reused the parent's -shm mapping without a lock of its own
    on it, and the first connection after a restart, finding no lock, could
    take the -shm for unused and reset it under that child. A child forked
    after the sweep has run, and has served, holds the lock itself."""
    s = make_server(max_lifetime=1, extra=ONE_CHILD + ["UploadSessionSweepInterval 1"])
    s.expect_log(KILLED_CHILD_LOG)
    api = s.client(s.user_all)
    ws = unique_ws("fork")
    expired = check(api.post(f"{ws}/upload_sessions", json={}), 201)["session_id"]
    # httpd runs the parent's monitor every 10 s: the sweep has run once it
    # has expired the session
    assert wait_for(lambda: "US0008: expiry sweep: 1 session(s) expired" in s.log_text(), 25)
    assert get_status(api, ws, expired)["status"] == "EXPIRED"
    parent, child = httpd_pids(s)
    os.kill(child, signal.SIGKILL)
    def new_children():
        return [p for p in httpd_pids(s)[1:] if p != child]
    assert wait_for(new_children, 15), "the killed child was not replaced"
    new_child, = new_children()
    sid = check(api.post(f"{ws}/upload_sessions", json={}), 201)["session_id"]
    assert get_status(api, ws, sid)["status"] == "OPEN"
    shm = os.stat(store_path(s) + "-shm").st_ino
    locks = posix_read_locks(new_child, shm)
    assert (SHM_DMS_BYTE, SHM_DMS_BYTE) in locks, (new_child, locks, open("/proc/locks").read())
    # between its sweeps, the parent has none of the store's files open
    assert wait_for(lambda: not files_open(parent, store_path(s)), 10), \
        files_open(parent, store_path(s))


# --------------------------------------------------------------------------
# 4. graceful / restart while 50 uploads are in flight
# --------------------------------------------------------------------------

@pytest.mark.parametrize("action", ["graceful", "restart"])
def test_restart_with_50_uploads_in_flight(make_server, action):
    """apache2 -k graceful|restart while 50 uploads of 1-4 MiB (40 through
    the upload target, 10 through POST /files) are in flight.

    graceful: httpd lets the old children finish what they serve, so every
    upload must complete (204 / 201) with its bytes on disk.
    restart: the children are stopped at once; an upload either completes
    (bytes on disk) or fails cleanly (transport error / 5xx) with nothing
    stored for it. One exception the client cannot avoid: when the whole
    body had been sent, the server may have stored the file and lost only
    the answer (the connection was shut down between commit and answer);
    such a file must then be complete."""
    s = make_server()
    s.expect_log(KILLED_CHILD_LOG, whole_life=True)
    if action == "graceful":
        # the failure mode seen (module bug, see the assertion below): the
        # graceful restart's startup sweep deletes the temp files of uploads
        # the old children are still receiving; each then fails to publish
        # (US0206 / US0305 at error level) - reported by the assertion
        s.expect_log(r"US0206: upload: publishing |US0305: POST /files: publish")
    api = s.client(s.user_all)
    ws = unique_ws(action)
    sid, cfg = new_session(api, ws)
    rnd = random.Random(50 + len(action))
    files = {f"{action}-{i:02d}.bin": rnd.randbytes(rnd.randrange(1 * MiB, 4 * MiB + 1))
             for i in range(40)}
    direct_files = {f"{action}-direct-{i:02d}.bin":
                    rnd.randbytes(rnd.randrange(1 * MiB, 4 * MiB + 1)) for i in range(10)}
    ups = [PacedUpload(cfg, n, d, chunk=64 * 1024, pause=0.03) for n, d in files.items()]
    direct = (f"{s.api_base}{ws}/files", s.user_all.headers)
    dups = [PacedUpload(None, n, d, chunk=64 * 1024, pause=0.03, direct=direct)
            for n, d in direct_files.items()]
    everything = ups + dups
    before = resuming_count(s)
    log_start = len(s.log_text())
    for u in everything:
        u.start()
    for u in everything:
        assert u.started.wait(20)
    time.sleep(0.3)
    in_flight = sum(1 for u in everything if u.is_alive() and not u.sent_all)
    proc = apachectl(s, action)
    assert proc.returncode == 0, proc.stderr
    for u in everything:
        u.join(90)
    assert not any(u.is_alive() for u in everything), "uploads still hanging"
    assert wait_for(lambda: resuming_count(s) > before, 20), s.log_tail()
    with open(s.pid_file) as f:
        assert int(f.read()) == s.pid, "the parent changed"

    failed = [u for u in everything if not u.ok]
    swept = re.findall(r"removed \d+ temp file\(s\) left by interrupted uploads[^\n]*",
                       s.log_text()[log_start:])
    def outcome(us):
        return dict(Counter(u.status if u.status is not None else "transport error"
                            for u in us))
    summary = (f"{action}: {in_flight} of 50 in flight at the signal; "
               f"{50 - len(failed)} succeeded, {len(failed)} failed (upload target: "
               f"{outcome(ups)}, POST /files: {outcome(dups)}); startup sweep during "
               f"the {action}: {swept}; e.g. "
               + "; ".join(u.describe() for u in failed[:2] + [u for u in failed if u.direct][:1]))
    print("\n" + summary)
    assert in_flight >= 25, summary
    for u in failed:
        # a clean failure: a transport error or a 5xx, never a 2xx/4xx
        assert u.status is None or u.status >= 500, summary

    data_root = os.path.join(s.dir, "state", "data")
    assert wait_for(lambda: tmp_files_under(data_root) == [], 15), tmp_files_under(data_root)
    lost_answers = []

    # the upload target
    stored = dict(session_blob_hashes(s, sid))
    listed = set(names_of(api, ws, sid))
    for u in ups:
        if u.ok:
            assert u.name in listed and stored.get(u.sha) == len(u.data), \
                f"204 but not stored: {u.describe()}"
        elif u.name in listed or u.sha in stored:
            # stored although the client saw a failure: only when the whole
            # body had left the client, and then complete
            assert u.sent_all and u.name in listed and stored.get(u.sha) == len(u.data), \
                f"failed upload left something behind: {u.describe()} ({summary})"
            lost_answers.append(u.name)
    assert len(stored) == len(listed) == \
        sum(1 for u in ups if u.ok) + sum(1 for u in ups if u.name in lost_answers)

    # POST /files
    files_dir = os.path.join(data_root, "files")
    on_disk = {fid: sha256_file(os.path.join(files_dir, fid)) for fid in os.listdir(files_dir)}
    ws_listed = {f["file_id"]: f for f in ws_files(api, ws)}
    assert set(ws_listed) == set(on_disk)
    by_name = {f["name"]: fid for fid, f in ws_listed.items()}
    for u in dups:
        if u.ok:
            assert on_disk.get(u.file_id) == u.sha, f"201 but not stored: {u.describe()}"
            assert ws_listed[u.file_id]["name"] == u.name
        elif u.name in by_name:
            assert u.sent_all and on_disk[by_name[u.name]] == u.sha, \
                f"failed direct upload left something behind: {u.describe()} ({summary})"
            lost_answers.append(u.name)
    assert len(on_disk) == sum(1 for u in dups if u.ok) + \
        sum(1 for u in dups if u.name in lost_answers)
    if lost_answers:
        print(f"{len(lost_answers)} stored complete but their answer was lost: {lost_answers}")

    if action == "graceful":
        assert not failed, (
            "uploads in flight during `apache2 -k graceful` must complete: " + summary)

    # a retry of every failed one succeeds; then all 50 are there, intact
    c = new_client(timeout=60)
    for u in failed:
        if u in ups:
            no_content(upload(c, cfg, u.name, u.data))
        elif u.name not in lost_answers:
            check(post_file(api, ws, u.name, u.data), 201)
    assert names_of(api, ws, sid) == sorted(files)
    assert session_blob_hashes(s, sid) == expected_blobs(files)
    assert sorted(f["name"] for f in ws_files(api, ws)) == sorted(direct_files)
    assert tmp_files_under(data_root) == []
    assert get_status(api, ws, sid)["uploaded_files"] == 40

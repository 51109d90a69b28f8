"""Ingestion (API.md "Ingestion", "Session status", "Session files",
"Workspace files"): after a close -- or the server's expiry of a session --
every raw upload is ingested once in the background: NAME.meta.json sidecars
become metadata (FAILED_TO_PARSE_META unless a JSON object), empty files fail
with EMPTY_FILE, write_mode KEEP / OVERWRITE / FAIL (FILE_ALREADY_EXISTS),
non-parallel sessions of a workspace one at a time in closing order; the
status counters equal the per-file states; FINISHED files are listed by
GET /files with their metadata.

(A 10,000-file ingestion measurement belongs to the benchmarks, not here.)"""

import datetime as dt
import json
import os
import shutil
import sqlite3

import pytest
import random
import re
import time

from us_testkit.pg import sqlite_only
from us_testkit.procs import wait_for
from us_testkit.api import (ALREADY_CLOSED, check, close_session, get_status, parse_ts,
                            session_path, unique_ws)
from us_testkit.ingest import (assert_counters_match, close_and_wait, counters, download,  # noqa: F401
                               get_meta, list_ws_files, make_server, module_so, new_session,
                               no_file, session_files, shared_server_options, state_of,
                               sweep_srv, sweeping_server, upload_all, upload_one,
                               wait_ingested)

STATUS_KEYS = {"session_id", "documentation_url", "expires_at", "ingestion_status", "status",
               "write_mode", "parallel_processing_enabled", "created_at", "created_by",
               "uploaded_files"}

BROKEN_SIDECARS = [b"{not json", b"[1, 2, 3]", b'"a string"', b"42", b"null", b"",
                   b"true", b"{\"a\": 1", b"\xff\xfe garbage", b"{} {}"]


def by_name(items):
    return {i["name"]: i for i in items}


# --------------------------------------------------------------------------
# 1. a session of 200 files and 100 sidecars
# --------------------------------------------------------------------------

def test_close_ingests_every_file_with_its_metadata(srv, api):
    rnd = random.Random(20261128)
    ws = unique_ws("ing-bulk")
    sid, cfg = new_session(api, ws)

    names = [f"doc-{i:03d}.txt" for i in range(200)]
    contents = {n: f"{n}\n".encode() + rnd.randbytes(rnd.randrange(1, 3000)) for n in names}
    empty = set(names[190:])                    # 10 empty files, no sidecar
    for n in empty:
        contents[n] = b""
    broken = {names[i]: BROKEN_SIDECARS[i] for i in range(10)}      # 10 broken sidecars
    metas = {names[i]: {"index": i, "name": names[i], "tags": ["t", i % 3], "nested": {"ok": True}}
             for i in range(10, 100)}                               # 90 good sidecars
    uploads = [(n, contents[n]) for n in names]
    uploads += [(n + ".meta.json", raw) for n, raw in broken.items()]
    uploads += [(n + ".meta.json", json.dumps(m).encode()) for n, m in metas.items()]
    # sidecars without their file: ignored, never counted
    uploads += [("orphan.txt.meta.json", b'{"orphan": true}'), ("ghost.meta.json", b"{}")]
    rnd.shuffle(uploads)
    upload_all(cfg, uploads, concurrency=16)

    st = get_status(api, ws, sid)
    assert st["uploaded_files"] == 200 and counters(st) == (0, 0, 200), st
    before = session_files(api, ws, sid)
    assert set(before) == set(names)
    assert all(state_of(i) == ("PENDING", None) for i in before.values())
    assert files_total(api, ws) == 0

    close_session(api, ws, sid)
    st = wait_ingested(api, ws, sid, 200, timeout=60)
    assert set(st) == STATUS_KEYS and st["status"] == "CLOSED", st

    items = session_files(api, ws, sid)
    assert set(items) == set(names)
    # ingestion ids do not change
    assert {n: i["file_ingestion_id"] for n, i in items.items()} == \
        {n: i["file_ingestion_id"] for n, i in before.items()}
    assert_counters_match(st, items)
    for n in names:
        if n in empty:
            want = ("FAILED", "EMPTY_FILE")
        elif n in broken:
            want = ("FAILED", "FAILED_TO_PARSE_META")
        else:
            want = ("FINISHED", None)
        assert state_of(items[n]) == want, items[n]
    assert counters(st) == (180, 20, 0), st
    # the status filter agrees
    for state, count in (("FINISHED", 180), ("FAILED", 20), ("PENDING", 0)):
        page = check(api.get(session_path(ws, sid) + "/files",
                             params={"ingestion_status": state, "limit": 100}), 200)
        assert page["total"] == count, (state, page["total"])
        assert all(i["ingestion_status"] == state for i in page["data"])

    # the workspace lists exactly the FINISHED files, with their metadata
    finished = {n for n in names if n not in empty and n not in broken}
    listed = list_ws_files(srv, api, ws, limit=37)
    assert sorted(i["name"] for i in listed) == sorted(finished)
    for it in listed:
        n = it["name"]
        assert it["size"] == len(contents[n]), it
        assert it["meta"] == metas.get(n, {}), it
    listed = by_name(listed)
    # a sample: bytes and meta endpoint
    for n in rnd.sample(sorted(finished), 25) + ["doc-010.txt", "doc-150.txt"]:
        fid = listed[n]["file_id"]
        r = download(api, ws, fid)
        assert r.content == contents[n], n
        assert r.headers["content-type"] == "text/plain; charset=utf-8"
        assert get_meta(api, ws, fid) == metas.get(n, {})
    # closing again is refused and changes nothing
    check(api.put(session_path(ws, sid), json={}), 409, ALREADY_CLOSED)
    assert get_status(api, ws, sid) == st


def files_total(api, ws):
    return check(api.get(f"{ws}/files"), 200)["total"]


# --------------------------------------------------------------------------
# 2. write modes against files already in the workspace
# --------------------------------------------------------------------------

def one_session(srv, api, ws, mode, files, parallel=False):
    """Create a session, upload files [(name, bytes)], close, wait; returns
    (session_id, {name: item})."""
    sid, cfg = new_session(api, ws, {"write_mode": mode,
                                     "parallel_processing_enabled": parallel})
    up = srv.raw_client()
    for name, data in files:
        upload_one(up, cfg, name, data)
    n = len({name for name, _ in files if not name.endswith(".meta.json")})
    st = close_and_wait(api, ws, sid, n, timeout=60)
    items = session_files(api, ws, sid)
    assert_counters_match(st, items)
    assert st["write_mode"] == mode
    return sid, items


def named(srv, api, ws, name):
    return [i for i in list_ws_files(srv, api, ws) if i["name"] == name]


def test_write_modes_keep_fail_overwrite(srv, api):
    ws = unique_ws("ing-wm")
    _, it = one_session(srv, api, ws, "KEEP", [("doc.txt", b"version 1"), ("keep.txt", b"k")])
    assert {n: state_of(i) for n, i in it.items()} == {"doc.txt": ("FINISHED", None),
                                                       "keep.txt": ("FINISHED", None)}
    v1 = named(srv, api, ws, "doc.txt")
    assert len(v1) == 1

    # FAIL: an existing name fails, a new one is ingested
    _, it = one_session(srv, api, ws, "FAIL", [("doc.txt", b"version 2"), ("fresh.txt", b"f"),
                                               ("doc.txt.meta.json", b'{"v": 2}')])
    assert {n: state_of(i) for n, i in it.items()} == {
        "doc.txt": ("FAILED", "FILE_ALREADY_EXISTS"), "fresh.txt": ("FINISHED", None)}
    assert named(srv, api, ws, "doc.txt") == v1
    assert download(api, ws, v1[0]["file_id"]).content == b"version 1"

    # KEEP: another file of the same name
    _, it = one_session(srv, api, ws, "KEEP", [("doc.txt", b"version 3")])
    assert state_of(it["doc.txt"]) == ("FINISHED", None)
    both = named(srv, api, ws, "doc.txt")
    assert len(both) == 2
    assert sorted(download(api, ws, i["file_id"]).content for i in both) == \
        [b"version 1", b"version 3"]
    # the newer one is listed first
    assert download(api, ws, both[0]["file_id"]).content == b"version 3"

    # OVERWRITE: exactly one left, with the new bytes and metadata
    _, it = one_session(srv, api, ws, "OVERWRITE", [("doc.txt", b"version 4 -- the last"),
                                                    ("doc.txt.meta.json", b'{"v": 4}')])
    assert state_of(it["doc.txt"]) == ("FINISHED", None)
    last = named(srv, api, ws, "doc.txt")
    assert len(last) == 1, last
    assert last[0]["meta"] == {"v": 4} and last[0]["size"] == len(b"version 4 -- the last")
    assert download(api, ws, last[0]["file_id"]).content == b"version 4 -- the last"
    assert get_meta(api, ws, last[0]["file_id"]) == {"v": 4}
    for old in both:
        no_file(api, ws, old["file_id"])
    # other names untouched
    assert sorted(i["name"] for i in list_ws_files(srv, api, ws)) == \
        ["doc.txt", "fresh.txt", "keep.txt"]

    # FAIL against the overwritten file, and against a directly uploaded one
    check(api.post(f"{ws}/files", files={"file": ("direct.txt", b"d")}), 201)
    _, it = one_session(srv, api, ws, "FAIL", [("doc.txt", b"v5"), ("direct.txt", b"d2")])
    assert {n: state_of(i) for n, i in it.items()} == {
        "doc.txt": ("FAILED", "FILE_ALREADY_EXISTS"),
        "direct.txt": ("FAILED", "FILE_ALREADY_EXISTS")}
    # OVERWRITE replaces a directly uploaded file too
    _, it = one_session(srv, api, ws, "OVERWRITE", [("direct.txt", b"from a session")])
    d = named(srv, api, ws, "direct.txt")
    assert len(d) == 1 and download(api, ws, d[0]["file_id"]).content == b"from a session"


def test_last_upload_wins_sidecar_only_sessions_and_workspace_scope(srv, api):
    ws1, ws2 = unique_ws("ing-edge1"), unique_ws("ing-edge2")
    # the same name twice in one session: one file, the last bytes and sidecar
    _, it = one_session(srv, api, ws1, "KEEP", [
        ("twice.txt", b"first"), ("twice.txt.meta.json", b'{"n": 1}'),
        ("twice.txt", b"second"), ("twice.txt.meta.json", b'{"n": 2}')])
    assert list(it) == ["twice.txt"] and state_of(it["twice.txt"]) == ("FINISHED", None)
    t = named(srv, api, ws1, "twice.txt")
    assert len(t) == 1 and t[0]["meta"] == {"n": 2}
    assert download(api, ws1, t[0]["file_id"]).content == b"second"

    # a session of sidecars only: nothing to ingest, nothing counted
    sid, it = one_session(srv, api, ws1, "KEEP", [("lonely.txt.meta.json", b'{"x": 1}')])
    assert it == {}
    st = get_status(api, ws1, sid)
    assert st["uploaded_files"] == 0 and counters(st) == (0, 0, 0), st
    assert [i["name"] for i in list_ws_files(srv, api, ws1)] == ["twice.txt"]

    # write modes only see the session's own workspace
    _, it = one_session(srv, api, ws2, "FAIL", [("twice.txt", b"ws2")])
    assert state_of(it["twice.txt"]) == ("FINISHED", None)
    _, it = one_session(srv, api, ws2, "OVERWRITE", [("twice.txt", b"ws2 again")])
    assert len(named(srv, api, ws2, "twice.txt")) == 1
    assert named(srv, api, ws1, "twice.txt") == t
    assert download(api, ws1, t[0]["file_id"]).content == b"second"
    no_file(api, ws2, t[0]["file_id"])


# --------------------------------------------------------------------------
# 3. expiry: the server closes the session and ingests it
# --------------------------------------------------------------------------

def test_expired_session_is_ingested_without_a_close(sweep_srv):
    s = sweep_srv
    api = s.client(s.user_all)
    ws = unique_ws("ing-exp")
    # a long-lived session: never ingested while open
    long_sid, long_cfg = new_session(api, ws, {"expires_in_seconds": 3600})
    up = s.raw_client()
    upload_one(up, long_cfg, "stays.txt", b"pending")

    sid, cfg = new_session(api, ws, {"expires_in_seconds": 2})
    files = {"e1.txt": b"one", "e2.txt": b"two", "e3.txt": b""}
    for n, data in files.items():
        upload_one(up, cfg, n, data)
    upload_one(up, cfg, "e1.txt.meta.json", b'{"expired": true}')
    assert counters(get_status(api, ws, sid)) == (0, 0, 3)

    st = wait_ingested(api, ws, sid, 3, timeout=30)
    assert st["status"] == "EXPIRED", st
    items = session_files(api, ws, sid)
    assert_counters_match(st, items)
    assert {n: state_of(i) for n, i in items.items()} == {
        "e1.txt": ("FINISHED", None), "e2.txt": ("FINISHED", None),
        "e3.txt": ("FAILED", "EMPTY_FILE")}
    listed = by_name(list_ws_files(s, api, ws))
    assert set(listed) == {"e1.txt", "e2.txt"}
    assert listed["e1.txt"]["meta"] == {"expired": True} and listed["e2.txt"]["meta"] == {}
    assert download(api, ws, listed["e2.txt"]["file_id"]).content == b"two"
    # an expired session cannot be closed
    check(api.put(session_path(ws, sid), json={}), 409, ALREADY_CLOSED)
    assert re.search(r"expiry sweep: 1 session\(s\) expired, ingestion queued", s.log_text()), \
        s.log_tail()

    # the open session was left alone
    st = get_status(api, ws, long_sid)
    assert st["status"] == "OPEN" and counters(st) == (0, 0, 1), st
    assert state_of(session_files(api, ws, long_sid)["stays.txt"]) == ("PENDING", None)


LOG_TS_RE = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d\.\d{6} \d{4})\] .*"
                       r"expiry sweep: (\d+) session\(s\) expired", re.M)


def sweep_times(server):
    """Times (epoch seconds) of the expiry sweeps that expired something."""
    return [dt.datetime.strptime(m.group(1), "%a %b %d %H:%M:%S.%f %Y")
            .replace(tzinfo=dt.timezone.utc).timestamp()
            for m in LOG_TS_RE.finditer(server.log_text())]


def test_an_expired_session_does_not_run_alongside_a_running_one(sweep_srv):
    """One at a time per workspace also when the server closes a session:
    X expires, then Y (same workspace, not parallel) is closed by the client
    and starts ingesting; the sweep that queues X comes while Y runs. X must
    not be ingested alongside Y: its files' created_at must not fall inside
    Y's. The sweep runs in httpd's monitor, about every 10.01 s: an earlier
    sweep (of a probe session, unless another test left one in the log) tells
    when the next ones come; Y is closed 0.5 s before one, with enough big
    sidecars (3,000-key objects) to still be running then."""
    s = sweep_srv
    api = s.client(s.user_all)
    ws = unique_ws("ing-expord")
    if not sweep_times(s):
        new_session(api, unique_ws("ing-probe"), {"expires_in_seconds": 1})
    meta = json.dumps({f"key{i}": i for i in range(3000)}).encode()
    ysid, ycfg = new_session(api, ws)
    ny = 700
    upload_all(ycfg, [(f"y{i:04d}.txt", b"y") for i in range(ny)] +
               [(f"y{i:04d}.txt.meta.json", meta) for i in range(ny)])
    deadline = time.monotonic() + 25
    while not sweep_times(s):
        assert time.monotonic() < deadline, "no expiry sweep within 25 s"
        time.sleep(0.1)
    tick = sweep_times(s)[-1]
    while tick < time.time() + 0.2:     # the next sweep
        tick += 10.01
    if tick < time.time() + 3:          # too close to set X up: the one after
        time.sleep(tick + 0.5 - time.time())
        tick += 10.01
    n_sweeps = len(sweep_times(s))

    xsid, xcfg = new_session(api, ws, {"expires_in_seconds": 1})
    up = s.raw_client()
    for i in range(5):
        upload_one(up, xcfg, f"x{i}.txt", b"x")
    time.sleep(max(0.0, tick - 0.5 - time.time()))
    assert get_status(api, ws, xsid)["status"] == "EXPIRED"
    assert len(sweep_times(s)) == n_sweeps, "a sweep came early"
    y_closed = time.time()
    close_session(api, ws, ysid)
    wait_ingested(api, ws, ysid, ny, timeout=180)  # 2.1M metadata keys: slow on a loaded machine
    wait_ingested(api, ws, xsid, 5, timeout=30)

    created = {"x": [], "y": []}
    for it in list_ws_files(s, api, ws):
        created[it["name"][0]].append(parse_ts(it["created_at"]).timestamp())
    assert len(created["x"]) == 5 and len(created["y"]) == ny
    ylo, yhi = min(created["y"]), max(created["y"])
    sweeps = sweep_times(s)[n_sweeps:]
    info = f"Y closed at {y_closed:.3f}, its files ingested from {ylo:.3f} to {yhi:.3f}; " \
        f"X's at {sorted(created['x'])}; sweeps at {sweeps}"
    # whatever the timing, X never runs inside Y
    assert not [t for t in created["x"] if ylo <= t <= yhi], "X ingested while Y was: " + info
    # the case that matters: the sweep that queued X came while Y was running
    # (the monitor's 10 s tick is not ours to set exactly; a run where Y
    # finished first proves nothing either way)
    if not (len(sweeps) == 1 and y_closed < sweeps[0] < yhi):
        pytest.skip("scenario not set up this time: " + info)
    assert not [t for t in created["x"] if t < yhi], "X ingested while Y was: " + info


# --------------------------------------------------------------------------
# 4. closing order
# --------------------------------------------------------------------------

def test_sessions_of_a_workspace_are_ingested_one_at_a_time_in_closing_order(srv, api):
    ws = unique_ws("ing-order")
    # three OVERWRITE sessions with the same name; created a, b, c
    sessions = {}
    for tag in ("a", "b", "c"):
        sid, cfg = new_session(api, ws, {"write_mode": "OVERWRITE"})
        files = [("same.txt", f"bytes of {tag}".encode()),
                 ("same.txt.meta.json", json.dumps({"from": tag}).encode())]
        files += [(f"{tag}-{i:03d}.txt", f"{tag} {i}".encode()) for i in range(120)]
        upload_all(cfg, files, concurrency=16)
        sessions[tag] = sid
    # closed b, c, a: right after one another, long before b is ingested
    order = ("b", "c", "a")
    for tag in order:
        close_session(api, ws, sessions[tag])
    for tag in order:
        wait_ingested(api, ws, sessions[tag], 121, timeout=60)

    same = [i for i in list_ws_files(srv, api, ws) if i["name"] == "same.txt"]
    assert len(same) == 1, same
    assert download(api, ws, same[0]["file_id"]).content == b"bytes of a"   # closed last
    assert same[0]["meta"] == {"from": "a"}
    # one at a time, in closing order: every file of b before every file of c, then a
    created = {t: [] for t in order}
    for it in list_ws_files(srv, api, ws):
        created[it["name"][0] if it["name"] != "same.txt" else "a"].append(
            parse_ts(it["created_at"]))
    assert max(created["b"]) < min(created["c"]) and max(created["c"]) < min(created["a"]), \
        {t: (min(v), max(v)) for t, v in created.items()}
    # b's and c's same.txt were ingested (FINISHED) and then replaced
    for tag in ("b", "c"):
        items = session_files(api, ws, sessions[tag])
        assert state_of(items["same.txt"]) == ("FINISHED", None)


def test_keep_sessions_keep_every_version_newest_last_closed(srv, api):
    ws = unique_ws("ing-order-keep")
    sids = {}
    for tag in ("x", "y"):
        sid, cfg = new_session(api, ws, {"write_mode": "KEEP"})
        upload_all(cfg, [("k.txt", f"from {tag}".encode())] +
                   [(f"{tag}{i}.txt", b"z") for i in range(60)])
        sids[tag] = sid
    close_session(api, ws, sids["y"])
    close_session(api, ws, sids["x"])
    for sid in sids.values():
        wait_ingested(api, ws, sid, 61)
    ks = [i for i in list_ws_files(srv, api, ws) if i["name"] == "k.txt"]
    assert [download(api, ws, i["file_id"]).content for i in ks] == [b"from x", b"from y"]


# --------------------------------------------------------------------------
# 5. status of a session with many files
# --------------------------------------------------------------------------

def test_status_of_a_large_session_has_the_same_shape(srv, api):
    ws = unique_ws("ing-big")
    small, _ = new_session(api, ws)
    big, cfg = new_session(api, ws)
    upload_all(cfg, [(f"f{i:04d}.txt", b"%d" % i) for i in range(600)], concurrency=16)
    a, b = get_status(api, ws, small), get_status(api, ws, big)
    assert set(a) == set(b) == STATUS_KEYS
    assert set(a["ingestion_status"]) == set(b["ingestion_status"])
    assert counters(a) == (0, 0, 0) and a["uploaded_files"] == 0
    assert counters(b) == (0, 0, 600) and b["uploaded_files"] == 600
    close_session(api, ws, big)
    # answers during ingestion keep the shape and add up
    st = get_status(api, ws, big)
    assert set(st) == STATUS_KEYS and sum(counters(st)) == 600, st
    st = wait_ingested(api, ws, big, 600)
    assert counters(st) == (600, 0, 0)
    assert_counters_match(st, session_files(api, ws, big))


@sqlite_only("the WAL file and its checkpoints")
def test_the_ingest_workers_checkpoint_the_wal(srv, api, tmp_path):
    """Requests leave WAL checkpoints to the ingest workers (every 500 ms;
    src/core/us_ingest_worker.c): soon after a burst of uploads, the database file on
    its own - without the WAL - holds them all."""
    ws = unique_ws("ckpt")
    sid, cfg = new_session(api, ws)
    upload_all(cfg, [(f"c{i:03d}.txt", b"%d" % i) for i in range(60)], concurrency=8)
    db = os.path.join(srv.dir, "state", "store.db")

    def rows_in_main_file():
        copy = tmp_path / "main-only.db"
        shutil.copyfile(db, copy)  # the main file only: what was checkpointed
        try:
            con = sqlite3.connect(f"file:{copy}?mode=ro&immutable=1", uri=True)
            try:
                return con.execute("SELECT count(*) FROM us_uploads WHERE session_id = ?",
                                   (sid,)).fetchone()[0] == 60
            finally:
                con.close()
        except sqlite3.DatabaseError:  # copied while a checkpoint wrote: try again
            return False
    assert wait_for(rows_in_main_file, 10, interval=0.25)


def test_a_sidecar_holding_nul_fails_its_file_alone(srv, api):
    """A sidecar whose object holds U+0000 (which no store keeps) fails its
    file with FAILED_TO_PARSE_META; the rest of the batch is ingested, on
    PostgreSQL too, where the batch used to fail and be retried for ever."""
    ws = unique_ws("ing-nul")
    sid, cfg = new_session(api, ws)
    upload_all(cfg, [("nul.txt", b"n"), ("nul.txt.meta.json", b'{"k": "a\\u0000b"}'),
                     ("key.txt", b"k"), ("key.txt.meta.json", b'{"a\\u0000": 1}'),
                     ("fine.txt", b"f"), ("fine.txt.meta.json", b'{"k": "a\\\\u0000b"}')])
    st = close_and_wait(api, ws, sid, 3)
    assert counters(st) == (1, 2, 0), st
    got = {i["name"]: state_of(i) for i in session_files(api, ws, sid).values()}
    assert got == {"nul.txt": ("FAILED", "FAILED_TO_PARSE_META"),
                   "key.txt": ("FAILED", "FAILED_TO_PARSE_META"),
                   "fine.txt": ("FINISHED", None)}, got
    listed = list_ws_files(srv, api, ws)
    assert [(i["name"], i["meta"]) for i in listed] == [("fine.txt", {"k": "a\\u0000b"})]


@pytest.mark.posix_layout
def test_a_done_session_leaves_no_directory(srv, api):
    """Once a session is ingested, its directory goes: the blobs of FAILED
    files and the sidecars were all that was left in it (src/core/us_ingest.c)."""
    ws = unique_ws("ing-clear")
    sid, cfg = new_session(api, ws)
    upload_all(cfg, [("kept.txt", b"kept"), ("kept.txt.meta.json", b'{"k": 1}'),
                     ("empty.txt", b""), ("broken.txt", b"b"),
                     ("broken.txt.meta.json", b"{not json")])
    sdir = os.path.join(srv.dir, "state", "data", "sessions", sid)
    assert len(os.listdir(sdir)) == 5
    st = close_and_wait(api, ws, sid, 3)
    assert counters(st) == (1, 2, 0), st
    assert wait_for(lambda: not os.path.exists(sdir), 10), os.listdir(sdir)
    got = {i["name"]: state_of(i) for i in session_files(api, ws, sid).values()}
    assert got["kept.txt"][0] == "FINISHED" and got["empty.txt"] == ("FAILED", "EMPTY_FILE")
    assert got["broken.txt"] == ("FAILED", "FAILED_TO_PARSE_META"), got
    listed = list_ws_files(srv, api, ws)
    assert [i["name"] for i in listed] == ["kept.txt"] and listed[0]["meta"] == {"k": 1}


@pytest.mark.posix_layout
def test_last_clear_removes_a_temp_file_whatever_its_pid(make_server):
    """A writer's temp file (".<blob>.<pid>.tmp") left in a session of the
    upload target: the ingestion's clear keeps it while its pid is alive (an
    upload may still be streaming); once expires_at lies the grace in the
    past (the lease, 1 s, plus UploadSessionMaxFileSize at 1 MiB/s, 1 s) no
    writer of the session can be, and the last clear removes it with the
    directory, however alive the pid (here this test's own process, as a
    pid reused by an unrelated process would be), once (US1022)."""
    s = make_server(extra=["UploadSessionIngestLease 1", "UploadSessionMaxFileSize 1048576"])
    api = s.client(s.user_all)
    ws = unique_ws("late-pid")
    sid, cfg = new_session(api, ws, {"expires_in_seconds": 6})
    expires = time.monotonic() + 6
    upload_all(cfg, [("a.txt", b"ingested")])
    sdir = os.path.join(s.dir, "state", "data", "sessions", sid)
    temp = os.path.join(sdir, f".{'0' * 8}-half.{os.getpid()}.tmp")
    with open(temp, "wb") as f:
        f.write(b"half")
    close_and_wait(api, ws, sid, 1)
    assert wait_for(lambda: os.listdir(sdir) == [os.path.basename(temp)], 10), os.listdir(sdir)
    time.sleep(max(0.0, expires - time.monotonic()))
    assert os.path.exists(temp), "removed before expires_at"
    assert wait_for(lambda: not os.path.exists(sdir), 30, interval=0.2), os.listdir(sdir)
    assert time.monotonic() >= expires + 1, "cleared before the grace ran out"
    files = list_ws_files(s, api, ws)
    assert [f["name"] for f in files] == ["a.txt"], files
    assert download(api, ws, files[0]["file_id"]).content == b"ingested"
    time.sleep(1.5)  # more sweeps: recorded once, logged once
    lines = [ln for ln in s.log_text().splitlines() if "US1022" in ln]
    assert len(lines) == 1 and sid in lines[0], lines


# --------------------------------------------------------------------------
# 6. FAIL under parallel ingestion
# --------------------------------------------------------------------------

def test_parallel_fail_sessions_never_store_a_name_twice(make_server):
    """Parallel sessions may be ingested side by side, but FAIL must still
    hold: of two sessions with the same names, one file per name is ingested
    and the other copy fails FILE_ALREADY_EXISTS (whatever the interleaving,
    the later-applied file finds the earlier one). Every file has a sidecar
    big enough (a 1,000-key object) that a batch of 256 takes a while
    (seconds: the keys go to the store's index), so the two ingestions
    overlap."""
    s = make_server(extra=["UploadSessionIngestThreads 4"])
    api = s.client(s.user_all)
    ws = unique_ws("ing-pfail")
    names = [f"same-{i:03d}.txt" for i in range(256)]
    meta = {f"key{i}": i for i in range(1000)}
    sidecar = json.dumps(meta).encode()
    sids = []
    for k in range(2):
        sid, cfg = new_session(api, ws, {"write_mode": "FAIL",
                                         "parallel_processing_enabled": True})
        upload_all(cfg, [(n, f"{n} from session {k}".encode()) for n in names] +
                   [(n + ".meta.json", sidecar) for n in names])
        sids.append(sid)
    for sid in sids:   # back to back
        close_session(api, ws, sid)
    per_session = []
    for sid in sids:
        st = wait_ingested(api, ws, sid, len(names))
        items = session_files(api, ws, sid)
        assert_counters_match(st, items)
        per_session.append(items)

    listed = list_ws_files(s, api, ws)
    seen = {}
    for it in listed:
        seen.setdefault(it["name"], []).append(it)
    twice = sorted(n for n, v in seen.items() if len(v) > 1)
    assert not twice, f"{len(twice)} of {len(names)} names stored twice under FAIL, e.g. " \
        f"{twice[:3]}; FINISHED per session: " \
        f"{[counters(get_status(api, ws, x))[0] for x in sids]}"
    assert sorted(seen) == names
    assert all(v[0]["meta"] == meta for v in seen.values())
    for n in names:
        states = sorted(state_of(items[n]) for items in per_session)
        assert states == [("FAILED", "FILE_ALREADY_EXISTS"), ("FINISHED", None)], (n, states)


# --------------------------------------------------------------------------
# 7. a close starts its ingestion at once
# --------------------------------------------------------------------------

LOG_TS = re.compile(r"^\[(\w{3} \w{3} \d+ [\d:.]+ \d{4})\]")


def claimed_at(server, sid):
    """The wall-clock time of the session's "claimed by" line (US1006)."""
    for line in server.log_text().splitlines():
        m = LOG_TS.match(line)
        if m and sid in line and "claimed by" in line:
            return dt.datetime.strptime(m.group(1), "%a %b %d %H:%M:%S.%f %Y").timestamp()
    raise AssertionError(f"no claim of {sid} in the error log:\n{server.log_tail()}")


def test_a_close_starts_its_ingestion_at_once(make_server):
    """A close wakes the idle ingest workers of the process that served it:
    its session is claimed within milliseconds of the answer, not at their
    next poll (every 250 ms) - through a virtual host sharing the main
    server's store too. Five of six claims within 50 ms of the answer (by
    polling alone about one in five would be)."""
    s = make_server(start=False)
    s.extra += [f"<VirtualHost 127.0.0.1:{s.port}>", "ServerName other.test", "</VirtualHost>"]
    s.start()
    up = s.raw_client()
    delays = []
    for i in range(6):
        api = s.client(s.user_all, headers={"Host": "other.test"} if i % 2 else None)
        ws = unique_ws("ing-wake")
        sid, cfg = new_session(api, ws)
        upload_one(up, cfg, "a.txt", b"data")
        time.sleep(0.3)  # the workers are idle again
        close_session(api, ws, sid)
        t0 = time.time()  # answered: committed (the request itself may take 50 ms here)
        st = wait_ingested(api, ws, sid, 1, timeout=30, interval=0.02)
        assert counters(st) == (1, 0, 0), st
        delays.append(claimed_at(s, sid) - t0)
    assert sorted(delays)[4] < 0.05, delays

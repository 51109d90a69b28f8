"""kill -9 between the copy and the commit of a direct-upload session
(issue 13, behaviour 3; docs/design-s3-listing.md "Crash safety between copy
and commit"), against the session's private radosgw.

The ingest worker publishes a batch (up to 256 files) by a CopyObject
pinned to the listed ETag and a DeleteObject of the source per file, then
records the whole batch in one store transaction. These tests kill httpd
with SIGKILL inside that window and start it again:

- deterministically: the server is frozen (SIGSTOP, parent and children)
  as soon as the first object appears under `files/`, the store is read to
  prove no file of the session is decided yet, then it is killed (radosgw
  is reached through a SlowLink that holds each copy 0.1 s, so the window
  outlasts the test's polling on a loaded machine);
- the same inside the clear that follows the last batch (the leftovers of
  the session prefix are removed while the claim is still held);
- at spread-out moments, five times in a row (random marks, US_IT_SEED);
- on PostgreSQL with two nodes: the claiming node is frozen in the window
  and killed, the other takes the session over once the lease ran out.

After the last start: every listed file FINISHED or FAILED exactly once,
the counters equal the per-file states, each workspace file row has exactly
one object under `files/` and every object there has a row (the startup
recovery sweep has run), nothing is left under the session prefix.
`make integration-s3` runs this file.
"""

import json
import os
import random
import signal
import sqlite3
import time

import pytest

from us_testkit import pg
from us_testkit.api import close_session, unique_ws
from us_testkit.faults import store_path
from us_testkit.ingest import (assert_counters_match, counters, download, get_status_retry,  # noqa: F401
                               httpd_pids, kill9, list_ws_files, make_server, module_so,
                               new_session, session_files, start_after_kill, state_of,
                               upload_all, wait_ingested)
from us_testkit.procs import wait_for
from us_testkit.radosgw import shared_info
from us_testkit.server import S3_BUCKET
from us_testkit.slowlink import SlowLink
from us_testkit.uploads import s3_keys

DIRECT = "UploadSessionS3DirectUpload On"
KILLED = r"AH00052: child pid \d+ exit signal Killed"
LEASE = 3
# A frozen moment has to fall inside a window of one batch's copies: each
# of those requests is held this long on its way
# to radosgw (a SlowLink), so that a window of 150 files lasts about a
# second, not the tens of milliseconds loopback gives on an idle machine.
SLOW_REQUEST = 0.1
COPY = b"x-amz-copy-source"
# the session clear's DeleteObjects request line, held long enough for the
# server to be frozen and killed while it waits
CLEAR = b"?delete= HTTP/1.1"
HOLD_CLEAR = 3.0


def make_files(n, rnd, sidecar_every=10, all_sidecars=False):
    """n raw files (every 97th empty), sidecars for every sidecar_every-th
    (or all), one in five of them broken. Returns (uploads, contents,
    expected {name: (status, reason)})."""
    uploads, contents, expected = [], {}, {}
    for i in range(n):
        name = f"c{i:04d}.bin"  # not text: no character count to read back
        data = b"" if i % 97 == 5 else f"{name} #{i}\n".encode() + rnd.randbytes(rnd.randrange(0, 300))
        contents[name] = data
        uploads.append((name, data))
        expected[name] = ("FINISHED", None)
        if all_sidecars or i % sidecar_every == 0:
            if i % 50 == 10:
                uploads.append((name + ".meta.json", b'{"broken": '))
                expected[name] = ("FAILED", "FAILED_TO_PARSE_META")
            else:
                uploads.append((name + ".meta.json", json.dumps({"i": i}).encode()))
        if not data:
            expected[name] = ("FAILED", "EMPTY_FILE")
    rnd.shuffle(uploads)
    return uploads, contents, expected


def store_rows(srv, sql):
    """The rows of sql on the server's store, read directly (the server may
    be frozen), each a tuple of column texts."""
    if srv.store == "pgsql":
        out = pg.cluster().psql(sql, dbname=srv.pg_db)
        return [tuple(line.split("|")) for line in out.splitlines() if line]
    # read-only: nothing created that httpd's User could not open afterwards
    con = sqlite3.connect(f"file:{store_path(srv)}?mode=ro", uri=True, timeout=20)
    try:
        return [tuple(str(v) for v in r) for r in con.execute(sql).fetchall()]
    finally:
        con.close()


def store_row(srv, sid):
    """(ingest_state, finished_files, failed_files, upload rows decided)."""
    [(state, fin, fail)] = store_rows(srv, "SELECT ingest_state, finished_files, failed_files"
                                      f" FROM us_sessions WHERE id = '{sid}'")
    [(decided,)] = store_rows(srv, f"SELECT count(*) FROM us_uploads WHERE session_id = '{sid}'"
                              " AND ingestion_status <> 'PENDING'")
    return state, int(fin), int(fail), int(decided)


def freeze(srv):
    """SIGSTOP the parent and every child: nothing of the server moves."""
    for pid in httpd_pids(srv):
        try:
            os.kill(pid, signal.SIGSTOP)
        except ProcessLookupError:
            pass


def thaw(srv):
    """SIGCONT what freeze stopped."""
    for pid in httpd_pids(srv):
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass


def wait_keys(srv, prefix, pred, timeout=60):
    """Polls the keys under prefix until pred(keys); returns them."""
    deadline = time.monotonic() + timeout
    while True:
        keys = s3_keys(srv, prefix)
        if pred(keys):
            return keys
        assert time.monotonic() < deadline, f"{prefix}: {len(keys)} keys, not the awaited state"
        time.sleep(0.005)


def assert_partial_invariants(srv, api, ws, sid, n):
    """What holds at any moment: the counters add up, no file listed twice,
    every workspace file row has its object (copied before it is recorded)."""
    st = get_status_retry(srv, ws, sid)
    fin, fail, pend = counters(st)
    assert fin + fail + pend == n and st["uploaded_files"] == n, st
    session_files(api, ws, sid)  # names and ids unique
    # the rows first: an object is there before its row
    ids = {r[0] for r in store_rows(srv, f"SELECT file_id FROM us_files WHERE workspace = '{ws}'")}
    keys = s3_keys(srv, "files/")
    assert ids <= set(keys), sorted(ids - set(keys))[:5]
    return fin, fail, pend


def assert_exactly_once(srv, api, ws, sid, expected, contents, keys_of=None, timeout=120):
    """The final state: every file decided once as expected, the counters
    equal to the states, one object per workspace file row and none
    without one, the session prefix empty. keys_of: the server whose key
    prefix the storage is under (a cluster's first node)."""
    keys_of = keys_of or srv
    n = len(expected)
    st = wait_ingested(api, ws, sid, n, timeout=timeout)
    items = session_files(api, ws, sid)
    assert len(items) == n
    assert_counters_match(st, items)
    got = {name: state_of(i) for name, i in items.items()}
    assert got == expected, {k: (got.get(k), e) for k, e in expected.items() if got.get(k) != e}
    finished = sorted(k for k, e in expected.items() if e[0] == "FINISHED")
    assert counters(st) == (len(finished), n - len(finished), 0), st

    listed = list_ws_files(srv, api, ws)
    assert sorted(i["name"] for i in listed) == finished
    ids = {i["file_id"] for i in listed}
    assert len(ids) == len(listed)
    keys = s3_keys(keys_of, "files/")
    assert len(keys) == len(set(keys))
    assert set(keys) == ids, {"without a row": sorted(set(keys) - ids)[:5],
                              "without an object": sorted(ids - set(keys))[:5]}
    for it in listed:
        assert it["size"] == len(contents[it["name"]]), it
    for it in sorted(listed, key=lambda i: i["name"])[::37]:
        assert download(api, ws, it["file_id"]).content == contents[it["name"]], it
    # the clear runs right after the last batch is recorded
    assert wait_for(lambda: s3_keys(keys_of, f"sessions/{sid}/") == [], 30), \
        s3_keys(keys_of, f"sessions/{sid}/")[:5]
    assert s3_keys(keys_of, f"sessions/{sid}/", uploads=True) == []
    return st


def slow_link(match, delay=SLOW_REQUEST):
    """A SlowLink to the session's radosgw holding the requests with match."""
    host, port = shared_info()["endpoint"].rsplit("/", 1)[1].rsplit(":", 1)
    return SlowLink((host, int(port)), delay, match)


def through(link):
    """The overrides that send a server's storage requests through link."""
    return {"UploadSessionStorage": f"s3 {link.endpoint} {S3_BUCKET}"}


@pytest.fixture
def direct_server(make_server):
    def make(extra=(), **kw):
        s = make_server(storage="s3", extra=[DIRECT, f"UploadSessionIngestLease {LEASE * 4}",
                                             *extra], **kw)
        # the parent may see a child die before it dies itself
        s.expect_log(KILLED, whole_life=True)
        return s
    return make


def test_kill_between_the_pinned_copy_and_the_commit(direct_server):
    """Frozen when the first object of the session appears under files/,
    while the store has decided none of its files (proved by reading it),
    then killed and started again: the replay finds the copied objects (404
    on the deleted source, HEAD on the destination) and records each file
    once, under the same key."""
    rnd = random.Random(int(os.environ.get("US_IT_SEED", "13")))
    with slow_link(COPY) as link:
        s = direct_server(overrides=through(link))
        api = s.client(s.user_all)
        ws = unique_ws("s3crash-copy")
        sid, cfg = new_session(api, ws)
        uploads, contents, expected = make_files(150, rnd)
        upload_all(cfg, uploads, concurrency=16)
        close_session(api, ws, sid)

        first = wait_keys(s, "files/", lambda k: len(k) > 0)
        freeze(s)
        try:
            state, fin, fail, decided = store_row(s, sid)
            copied = s3_keys(s, "files/")
        finally:
            kill9(s)
        # inside the window: objects published, nothing recorded
        assert state == "running" and (fin, fail, decided) == (0, 0, 0), \
            (state, fin, fail, decided)
        assert set(first) <= set(copied) and len(copied) < len(expected), \
            (len(first), len(copied))
        api = start_after_kill(s)
        assert_exactly_once(s, api, ws, sid, expected, contents)
        assert "US1009" in s.log_text()  # the dead owner's claim was requeued
        s.stop()
    print(f"killed with {len(copied)} of {len(expected)} files copied, none recorded "
          f"({link.delayed} copies held {SLOW_REQUEST}s)")


def test_kill_while_the_leftovers_are_cleared(direct_server):
    """Every file is recorded; the clear of the session prefix (sidecars,
    blobs of FAILED files: one DeleteObjects request) is under way, held on
    its way to radosgw, when the server is frozen and killed. The claim is
    still held then, so the session is taken again after the start and its
    prefix ends empty (the held request reaches radosgw after the kill: the
    store acts for a dead node)."""
    rnd = random.Random(int(os.environ.get("US_IT_SEED", "14")))
    with slow_link(CLEAR, HOLD_CLEAR) as link:
        s = direct_server(overrides=through(link))
        api = s.client(s.user_all)
        ws = unique_ws("s3crash-clear")
        sid, cfg = new_session(api, ws)
        uploads, contents, expected = make_files(120, rnd, all_sidecars=True)
        upload_all(cfg, uploads, concurrency=16)
        left = len(uploads) - len(expected) + sum(1 for e in expected.values()
                                                  if e[0] == "FAILED")
        close_session(api, ws, sid)

        assert wait_for(lambda: link.delayed >= 1, 60, interval=0.005), "no clear came"
        freeze(s)
        try:
            state, fin, fail, decided = store_row(s, sid)
            remaining = len(s3_keys(s, f"sessions/{sid}/"))
        finally:
            kill9(s)
        assert (fin + fail, decided) == (len(expected), len(expected)), (fin, fail, decided)
        assert state == "running", f"marked {state} with {remaining} objects not yet cleared"
        api = start_after_kill(s)
        assert_exactly_once(s, api, ws, sid, expected, contents)
        assert wait_for(lambda: store_row(s, sid)[0] == "done", 30)
        s.stop()
    print(f"killed with {remaining} of {left} leftovers not yet cleared "
          f"({link.delayed} clear requests held {HOLD_CLEAR}s)")


def test_repeated_kills_during_direct_ingestion(direct_server):
    """SIGKILL of the whole server at spread-out moments of an ingestion of
    two batches: right after the close, then once the objects under files/
    pass a random mark in each stretch of it (inside the first batch, around
    its commit, inside the second), each start followed by a check of the
    invariants; then a run to completion."""
    seed = int(os.environ.get("US_IT_SEED", time.time()))
    rnd = random.Random(seed)
    s = direct_server()
    api = s.client(s.user_all)
    ws = unique_ws("s3crash-rand")
    sid, cfg = new_session(api, ws)
    uploads, contents, expected = make_files(360, rnd)
    n = len(expected)
    published = sum(1 for e in expected.values() if e[0] == "FINISHED")
    upload_all(cfg, uploads, concurrency=16)
    close_session(api, ws, sid)

    marks = [0, rnd.randrange(1, 120), rnd.randrange(120, 250), rnd.randrange(250, 290),
             rnd.randrange(290, published - 5)]
    kills, history = 0, []
    for mark in marks:
        objs = len(wait_keys(s, "files/", lambda k, m=mark: len(k) >= m, timeout=120))
        time.sleep(rnd.uniform(0, 0.3))
        fin, fail, pend = counters(get_status_retry(s, ws, sid))
        history.append(f"{objs} objects, {fin + fail} decided")
        if pend == 0:
            break
        kill9(s)
        kills += 1
        api = start_after_kill(s)
        assert_partial_invariants(s, api, ws, sid, n)
    info = f"seed {seed}, {kills} kills at {history}"
    print(info)
    assert kills >= 3, "ingestion finished before the kills: " + info
    assert_exactly_once(s, api, ws, sid, expected, contents)


def test_a_node_killed_between_copy_and_commit_is_taken_over(make_server):
    """PostgreSQL, s3 and two nodes: the node whose worker claimed the
    session is frozen when the first object appears under files/ (nothing
    of the session recorded yet) and killed; the other node takes the
    session over once the lease ran out and finishes it exactly once."""
    rnd = random.Random(int(os.environ.get("US_IT_SEED", "15")))
    common = [DIRECT, f"UploadSessionIngestLease {LEASE}"]
    with slow_link(COPY) as link:
        first = make_server(start=False, store="pgsql", storage="s3", overrides=through(link),
                            extra=common + ["UploadSessionNodeName node-0"])
        state = os.path.join(first.dir, "state")
        shared = {
            "UploadSessionStore": f'pgsql "{first.pg_conninfo}"',
            "UploadSessionSecretFile": f'"{state}/upload_session.secret"',
            "UploadSessionKeyFile": f'"{first.key_file}"',
            "UploadSessionS3Prefix": first.s3_prefix,
            **through(link),
        }
        first.start()
        second = make_server(store="pgsql", storage="s3", default_users=False, overrides=shared,
                             extra=common + ["UploadSessionNodeName node-1"])
        nodes = [first, second]
        for x in nodes:
            x.expect_log(KILLED, whole_life=True)
        u = first.user_all
        api = second.client(u)
        ws = unique_ws("s3crash-node")
        sid, cfg = new_session(api, ws)
        uploads, contents, expected = make_files(150, rnd)
        upload_all(cfg, uploads, concurrency=16)
        close_session(api, ws, sid)

        wait_keys(first, "files/", lambda k: len(k) > 0)
        # both frozen at once, then the owner is killed and the other one goes on
        killed = None
        for x in nodes:
            freeze(x)
        try:
            owner = pg.cluster().psql(f"SELECT ingest_owner FROM us_sessions WHERE id = '{sid}'",
                                      dbname=first.pg_db)
            killed = nodes[int(owner.split("/")[0].rsplit("-", 1)[1])]
            row = store_row(first, sid)
            copied = len(s3_keys(first, "files/"))
        finally:
            for x in nodes:
                if x is killed:
                    kill9(x)
                else:
                    thaw(x)
        t0 = time.monotonic()
        assert row == ("running", 0, 0, 0), (owner, row)
        survivor = next(x for x in nodes if x is not killed)
        api = survivor.client(u)
        assert_exactly_once(survivor, api, ws, sid, expected, contents, keys_of=first)
        took = time.monotonic() - t0
        new_owner = pg.cluster().psql(f"SELECT ingest_owner FROM us_sessions WHERE id = '{sid}'",
                                      dbname=first.pg_db)
        assert new_owner.split("/")[0] != owner.split("/")[0], (owner, new_owner)
        for x in reversed(nodes):  # both before the fixture drops the shared database
            x.stop()
    print(f"{owner} killed with {copied} of {len(expected)} files copied, none recorded; "
          f"finished by {new_owner} {took:.1f}s later (lease {LEASE}s)")

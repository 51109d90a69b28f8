"""Ingestion survives `kill -9` (API.md "Ingestion": "Ingestion survives a
crash or restart of the server at any point: every file ends FINISHED or
FAILED exactly once, and the counters equal the per-file states").

A dedicated server with 2 ingest threads per child ingests a closed session
of 2,000 small files (+ sidecars) while the test SIGKILLs every httpd
process (parent and children) at random moments and starts the server
again on the same directory, up to 10 times while files are still pending.
After the last start the ingestion must complete with every file decided
exactly once, the blobs in place with the right bytes, and no temp file
left behind."""

import hashlib
import json
import os
import random
import time

from us_testkit.api import close_session, get_status, unique_ws
from us_testkit.ingest import (assert_counters_match, counters, download, get_status_retry,  # noqa: F401
                               httpd_pids, kill9, list_ws_files, make_server, module_so,
                               new_session, session_files, start_after_kill, state_of,
                               tmp_files_under, upload_all, wait_ingested)

N_FILES = 2000
MAX_ROUNDS = 10


def make_files(rnd):
    """2,000 raw files (8 empty), sidecars for every 10th (20 of them broken).
    Returns (uploads, contents, metas, expected {name: (status, reason)})."""
    names = [f"crash-{i:04d}.txt" for i in range(N_FILES)]
    contents, metas, expected, uploads = {}, {}, {}, []
    for i, n in enumerate(names):
        data = b"" if i % 250 == 7 else \
            f"{n} #{i}\n".encode() + rnd.randbytes(rnd.randrange(0, 400))
        contents[n] = data
        uploads.append((n, data))
        expected[n] = ("FINISHED", None)
        if i % 10 == 0:
            if i % 100 == 50:
                uploads.append((n + ".meta.json", b'{"broken": '))
                expected[n] = ("FAILED", "FAILED_TO_PARSE_META")
            else:
                metas[n] = {"i": i, "name": n}
                uploads.append((n + ".meta.json", json.dumps(metas[n]).encode()))
        if not data:
            expected[n] = ("FAILED", "EMPTY_FILE")
    rnd.shuffle(uploads)
    return uploads, contents, metas, expected


def test_ingestion_survives_repeated_sigkill(make_server):
    seed = int(os.environ.get("US_IT_SEED", time.time()))
    rnd = random.Random(seed)
    s = make_server(extra=["UploadSessionIngestThreads 2"])
    # the parent may see a child die before it dies itself
    s.expect_log(r"AH00052: child pid \d+ exit signal Killed", whole_life=True)
    api = s.client(s.user_all)
    ws = unique_ws("crash")
    sid, cfg = new_session(api, ws)

    uploads, contents, metas, expected = make_files(rnd)
    upload_all(cfg, uploads, concurrency=16)
    st = get_status(api, ws, sid)
    assert st["uploaded_files"] == N_FILES and counters(st) == (0, 0, N_FILES), st

    close_session(api, ws, sid)
    kills, history = 0, []
    for rnd_no in range(MAX_ROUNDS):
        # 0-300 ms, skewed short: a fast ingestion would otherwise finish
        # between two kills; the first kill lands within 100 ms of the close
        time.sleep(rnd.uniform(0, 0.1) if rnd_no == 0 else
                   rnd.choice([0.0, rnd.uniform(0, 0.05), rnd.uniform(0, 0.3)]))
        st = get_status_retry(s, ws, sid)
        fin, fail, pend = counters(st)
        assert fin + fail + pend == N_FILES, st
        history.append((fin, fail, pend))
        if pend == 0:
            break
        killed = kill9(s)
        kills += 1
        start_after_kill(s)
        history.append(f"killed {len(killed)} processes")
    assert kills >= 1, f"ingestion finished before the first kill (seed {seed}): {history}"

    api = s.client(s.user_all)
    st = wait_ingested(api, ws, sid, N_FILES, timeout=90)
    info = f"seed {seed}, {kills} kills, history {history}"
    print(info)

    # every file decided exactly once, as its content says
    items = session_files(api, ws, sid)
    assert len(items) == N_FILES, info
    assert_counters_match(st, items)
    got = {n: state_of(i) for n, i in items.items()}
    assert got == expected, info + ": " + str(
        {n: (got.get(n), e) for n, e in expected.items() if got.get(n) != e})
    finished = {n for n, e in expected.items() if e[0] == "FINISHED"}
    assert counters(st) == (len(finished), N_FILES - len(finished), 0), info

    # GET /files: exactly the FINISHED files, once each, with their metadata
    listed = list_ws_files(s, api, ws, limit=100)
    assert len(listed) == len(finished), info
    assert sorted(i["name"] for i in listed) == sorted(finished), info
    ids = [i["file_id"] for i in listed]
    assert len(set(ids)) == len(ids), info
    blobs = os.path.join(s.dir, "state", "data", "files")
    for it in listed:
        n = it["name"]
        assert it["size"] == len(contents[n]), it
        assert it["meta"] == metas.get(n, {}), it
        path = os.path.join(blobs, it["file_id"])
        assert os.path.getsize(path) == len(contents[n]), (it, info)
    # every blob in the store is a listed file (nothing half-moved or orphaned)
    assert set(os.listdir(blobs)) == set(ids), info
    # a sample by download, checked by content
    for it in rnd.sample(listed, 60):
        body = download(api, ws, it["file_id"]).content
        assert hashlib.sha256(body).digest() == \
            hashlib.sha256(contents[it["name"]]).digest(), (it, info)

    # no temp file anywhere under the data directory
    assert tmp_files_under(os.path.join(s.dir, "state", "data")) == [], info
    # the server is healthy: all processes up and the status answers
    assert len(httpd_pids(s)) >= 2
    assert get_status(api, ws, sid) == st

"""Probes behind the findings of BENCHMARKS.md (not part of run.sh).

  /usr/bin/python3 bench/probe.py claim      ingest claim SELECT vs queued sessions
  /usr/bin/python3 bench/probe.py pending    ingest batch query vs files already done
  /usr/bin/python3 bench/probe.py create     create's INSERT vs the user's OPEN sessions
  /usr/bin/python3 bench/probe.py children   create latency, 2 children vs 1 (config only)
  /usr/bin/python3 bench/probe.py writeback  fsync at the end vs sync_file_range on the way
  /usr/bin/python3 bench/probe.py close      close latency, sessions of 50,000 files vs empty
  /usr/bin/python3 bench/probe.py flush      WAL-like appends + fdatasync per second, 1 and 2 writers

The SQL probes run on a store whose schema the module itself created (an
httpd is started once and stopped), filled directly with sqlite3, and time
the statements as src/us_sql.c words them (copied below; update them with
us_sql.c), next to the suggested alternative. Python's sqlite3 is the same
Debian libsqlite3 the apr_dbd driver uses.
"""

import ctypes
import os
import shutil
import sqlite3
import sys
import time
import uuid

import common as C

# --- statements as in src/us_sql.c (commit 49fddab) ---------------------------
CLAIMABLE = ("({s}.ingest_state = 'queued' OR ({s}.ingest_state = 'running' AND "
             "{s}.ingest_heartbeat < :stale))")
IN_TURN = ("({s}.parallel = 1 OR NOT EXISTS (SELECT 1 FROM us_sessions e"
           " WHERE e.workspace = {s}.workspace AND e.parallel = 0 AND e.id <> {s}.id"
           " AND (e.ingest_state = 'running' OR (e.ingest_state = 'queued'"
           " AND (e.closed_at < {s}.closed_at OR (e.closed_at = {s}.closed_at"
           " AND e.id < {s}.id))))))")
CLAIM_SELECT = (f"SELECT s.id FROM us_sessions s WHERE {CLAIMABLE.format(s='s')} AND "
                f"{IN_TURN.format(s='s')} ORDER BY s.closed_at, s.id LIMIT 1")
PENDING = ("SELECT name, blob, size, file_ingestion_id, is_meta FROM us_uploads"
           " WHERE session_id = ? AND is_meta = 0 AND ingestion_status = 'PENDING'"
           " ORDER BY name LIMIT 256")
SESSION_INSERT = (
    "INSERT INTO us_sessions (id, workspace, user_id, given_name, family_name,"
    " write_mode, parallel, status, created_at, expires_at)"
    " SELECT ?, ?, ?, 'a', 'b', 'KEEP', 0, 'OPEN', ?, ?"
    " WHERE (SELECT COUNT(*) FROM us_sessions WHERE user_id = ?"
    " AND status = 'OPEN' AND expires_at > ?) < ?")

# --- suggested alternatives ------------------------------------------------------
# the same rule, split in two NOT EXISTS that a small partial index (only the
# serial sessions in flight) answers with one seek each; the redundant
# "ingest_state IN (...)" terms let SQLite use the partial index
FIRST_IN_LINE_INDEX = ("CREATE INDEX probe_inflight ON us_sessions"
                       " (workspace, ingest_state, closed_at, id)"
                       " WHERE parallel = 0 AND ingest_state IN ('queued', 'running')")
_INFLIGHT = ("SELECT 1 FROM us_sessions e WHERE e.workspace = s.workspace AND e.parallel = 0"
             " AND e.ingest_state IN ('queued', 'running') AND e.id <> s.id")
IN_TURN_FIXED = (f"(s.parallel = 1 OR (NOT EXISTS ({_INFLIGHT} AND e.ingest_state = 'running')"
                 f" AND NOT EXISTS ({_INFLIGHT} AND e.ingest_state = 'queued'"
                 " AND (e.closed_at < s.closed_at OR (e.closed_at = s.closed_at"
                 " AND e.id < s.id)))))")
CLAIM_SELECT_FIXED = (f"SELECT s.id FROM us_sessions s WHERE {CLAIMABLE.format(s='s')} AND "
                      f"{IN_TURN_FIXED} ORDER BY s.closed_at, s.id LIMIT 1")
PENDING_INDEX = ("CREATE INDEX probe_pending ON us_uploads"
                 " (session_id, is_meta, ingestion_status, name)")


def fresh_store():
    """A store.db with the schema of the module under test (copied to /tmp)."""
    srv = C.BenchServer()
    try:
        srv.start()
        srv.create_session("probe")
    finally:
        srv.stop()
    path = os.path.join(C.WORK, f"probe-{uuid.uuid4().hex[:8]}.db")
    shutil.copyfile(os.path.join(srv.state, "store.db"), path)
    srv.cleanup()
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")  # the probes time statements, not fsyncs
    return path, db


def timed(db, sql, args, n=5):
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        rows = db.execute(sql, args).fetchall()
        ts.append(time.perf_counter() - t)
    return sorted(ts)[n // 2] * 1e3, rows


def add_sessions(db, ws, n, user, state="none", closed=False, t0=0):
    db.execute("BEGIN")
    for i in range(n):
        db.execute("INSERT INTO us_sessions (id, workspace, user_id, given_name, family_name,"
                   " write_mode, parallel, status, created_at, expires_at, closed_at, ingest_state)"
                   " VALUES (?, ?, ?, 'a', 'b', 'KEEP', 0, ?, ?, ?, ?, ?)",
                   (str(uuid.uuid4()), ws, user, "CLOSED" if closed else "OPEN", t0 + i,
                    t0 + i + 10 ** 12, t0 + i if closed else None, state))
    db.execute("COMMIT")


def probe_claim():
    path, db = fresh_store()
    user = str(uuid.uuid4())
    add_sessions(db, "ws", 4000, user)
    print("claim SELECT of the ingest workers (runs inside the claim UPDATE, i.e. under the "
          "store's write lock), one workspace with 4000 OPEN sessions plus N queued:")
    queued = 0
    for n in (10, 100, 500, 1000):
        add_sessions(db, "ws", n - queued, user, state="queued", closed=True, t0=10 ** 6 + queued)
        queued = n
        ms, rows = timed(db, CLAIM_SELECT, {"stale": 0}, n=3)
        print(f"  {n:5d} queued: {ms:9.1f} ms  (as in us_sql.c)")
    print("  plan as in us_sql.c:")
    for r in db.execute("EXPLAIN QUERY PLAN " + CLAIM_SELECT, {"stale": 0}):
        print("    ", r[-1])
    db.execute(FIRST_IN_LINE_INDEX)
    ms2, rows2 = timed(db, CLAIM_SELECT_FIXED, {"stale": 0})
    print(f"  {queued:5d} queued: {ms2:9.2f} ms  (suggested: the rule as two NOT EXISTS, which "
          f"an index on (workspace, parallel, ingest_state, ...) or the partial index above "
          f"serves; same answer: {rows == rows2})")
    for r in db.execute("EXPLAIN QUERY PLAN " + CLAIM_SELECT_FIXED, {"stale": 0}):
        print("    ", r[-1])
    # the same answers in the other cases the rule knows
    add_sessions(db, "ws2", 3, user, state="queued", closed=True, t0=10)   # earlier, other ws
    same = [db.execute(CLAIM_SELECT, {"stale": 0}).fetchall() ==
            db.execute(CLAIM_SELECT_FIXED, {"stale": 0}).fetchall()]
    db.execute("UPDATE us_sessions SET ingest_state = 'running', ingest_heartbeat = 5"
               " WHERE id = (SELECT id FROM us_sessions WHERE workspace = 'ws2'"
               " AND ingest_state = 'queued' ORDER BY closed_at LIMIT 1)")
    for stale in (0, 10):   # a running claim in ws2, live and stale
        same.append(db.execute(CLAIM_SELECT, {"stale": stale}).fetchall() ==
                    db.execute(CLAIM_SELECT_FIXED, {"stale": stale}).fetchall())
    db.execute("UPDATE us_sessions SET parallel = 1 WHERE workspace = 'ws2'"
               " AND ingest_state = 'queued'")
    same.append(db.execute(CLAIM_SELECT, {"stale": 0}).fetchall() ==
                db.execute(CLAIM_SELECT_FIXED, {"stale": 0}).fetchall())
    print(f"  same answer in 4 more cases (another workspace; a live and a stale running claim; "
          f"parallel sessions): {all(same)}")
    os.unlink(path)


def probe_pending():
    path, db = fresh_store()
    sid = str(uuid.uuid4())
    n = 50000
    db.execute("INSERT INTO us_sessions (id, workspace, user_id, given_name, family_name,"
               " write_mode, parallel, status, created_at, expires_at)"
               " VALUES (?, 'ws', 'u', 'a', 'b', 'KEEP', 0, 'CLOSED', 0, 0)", (sid,))
    db.execute("BEGIN")
    db.executemany("INSERT INTO us_uploads (session_id, name, blob, size, sha256, is_meta,"
                   " uploaded_at, file_ingestion_id) VALUES (?,?,?,?,?,0,?,?)",
                   ((sid, f"f-{i % 2}-{i}.txt", str(uuid.uuid4()), 1024, "0" * 64, i,
                     str(uuid.uuid4())) for i in range(n)))
    db.execute("COMMIT")

    def drain(label):
        db.execute("UPDATE us_uploads SET ingestion_status = 'PENDING' WHERE session_id = ?",
                   (sid,))
        t = time.perf_counter()
        done, samples = 0, {}
        while True:
            a = time.perf_counter()
            rows = db.execute(PENDING, (sid,)).fetchall()
            if done in (0, 10240, 25088, 49920):
                samples[done] = (time.perf_counter() - a) * 1e3
            if not rows:
                break
            db.execute("BEGIN")
            db.executemany("UPDATE us_uploads SET ingestion_status = 'FINISHED'"
                           " WHERE session_id = ? AND name = ?", [(sid, r[0]) for r in rows])
            db.execute("COMMIT")
            done += len(rows)
        s = ", ".join(f"{k} done: {v:.2f} ms" for k, v in samples.items())
        print(f"  {label}: whole drain {time.perf_counter() - t:.2f} s; batch query at {s}")

    print(f"ingest batches (256 files) over a session of {n} files, select + state update "
          "only (no files, no fsync):")
    for r in db.execute("EXPLAIN QUERY PLAN " + PENDING, (sid,)):
        print("    plan:", r[-1])
    drain("schema as is")
    db.execute(PENDING_INDEX)
    drain("with index (session_id, is_meta, ingestion_status, name)")
    os.unlink(path)


def probe_create():
    path, db = fresh_store()
    user = str(uuid.uuid4())
    print("create's INSERT (with its COUNT of the user's OPEN sessions), median of 50, no fsync:")
    have = 0
    for target in (0, 1000, 10000, 30000):
        if target > have:
            add_sessions(db, "ws", target - have, user)
            have = target
        ts = []
        for _ in range(50):
            t = time.perf_counter()
            db.execute(SESSION_INSERT, (str(uuid.uuid4()), "ws", user, 1, 10 ** 13, user, 0,
                                        1000000))
            ts.append(time.perf_counter() - t)
        have += 50
        print(f"  {target:6d} OPEN sessions: {sorted(ts)[25] * 1e6:7.0f} us")
    os.unlink(path)


def probe_children():
    print("create, 16 connections, three 3 s runs in a row on a fresh server "
          "(OPEN sessions pile up), 2 children vs 1:")
    for children in (2, 1):
        srv = C.BenchServer()
        if children == 1:
            orig = srv.write_config

            def wc(orig=orig, srv=srv):
                orig()
                txt = open(srv.conf).read()
                for a, b in (("ServerLimit 2", "ServerLimit 1"), ("StartServers 2", "StartServers 1"),
                             ("MaxRequestWorkers 128", "MaxRequestWorkers 64"),
                             ("MaxSpareThreads 128", "MaxSpareThreads 64")):
                    txt = txt.replace(a + "\n", b + "\n")
                open(srv.conf, "w").write(txt)
            srv.write_config = wc
        try:
            srv.write_config()
            srv._ctl("-k", "start")
            C.wait_for(lambda: srv._read_pid() and C.port_open(srv.port), 10)
            srv.pid = srv._read_pid()
            time.sleep(1)
            out = []
            for _ in range(3):
                C.wait_quiet(3)
                r = C.wrk(srv.api + "probe/upload_sessions", "create.lua", 3, 16,
                          headers=[f"Authorization: Bearer {srv.key}"])
                out.append(f"{r['rps']:.0f}/s p99 {r['lat_p99_us'] / 1000:.0f} ms "
                           f"max {r['lat_max_us'] / 1000:.0f} ms")
            print(f"  {len(srv.children())} child(ren): " + " | ".join(out))
        finally:
            srv.cleanup()


def probe_writeback():
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.sync_file_range.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    size, chunk = 1 << 30, 1 << 20
    block = os.urandom(chunk)
    out = os.path.join(C.WORK, f"probe-writeback-{os.getpid()}.bin")
    print("1 GiB written in 1 MiB pieces at ~400 MiB/s (an upload's pace), then fsync:")
    for every in (0, 8 << 20):
        os.sync()
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        t = time.perf_counter()
        last = off = 0
        while off < size:
            os.write(fd, block)
            off += chunk
            time.sleep(0.0022)
            if every and off - last >= every:
                libc.sync_file_range(fd, last, off - last, 2)  # SYNC_FILE_RANGE_WRITE
                last = off
        t1 = time.perf_counter()
        os.fsync(fd)
        t2 = time.perf_counter()
        os.close(fd)
        os.unlink(out)
        what = f"sync_file_range(WRITE) every {every >> 20} MiB" if every else "no early writeback"
        print(f"  {what:38s}: writing {t1 - t:.2f} s, final fsync {t2 - t1:.2f} s")


CLOSE_UPDATE = ("UPDATE us_sessions SET status = 'CLOSED', closed_at = :t,"
                " ingest_state = (CASE WHEN uploaded_files = 0 AND direct = 0 THEN 'done'"
                " ELSE 'queued' END)"
                " WHERE workspace = :ws AND id = :id AND status = 'OPEN' AND expires_at > :t")


def fill_uploads(srv, sid, n):
    """n uploads of 1 byte in OPEN session sid, written as an upload
    leaves them (a blob under the session's directory, a row, the count),
    with the server stopped."""
    d = os.path.join(srv.state, "data", "sessions", sid)
    os.makedirs(d, exist_ok=True)
    rows = []
    for i in range(n):
        blob = uuid.uuid4().hex
        with open(os.path.join(d, blob), "wb") as f:
            f.write(b"x")
        rows.append((sid, f"f-{i}.txt", blob, 1, "0" * 64, i, str(uuid.uuid4())))
    for root, dirs, files in os.walk(os.path.join(srv.state, "data", "sessions")):
        C.chown_www(root)
    for f in os.listdir(d):
        C.chown_www(os.path.join(d, f))
    db = sqlite3.connect(os.path.join(srv.state, "store.db"), isolation_level=None)
    db.execute("BEGIN")
    db.executemany("INSERT INTO us_uploads (session_id, name, blob, size, sha256, is_meta,"
                   " uploaded_at, file_ingestion_id) VALUES (?,?,?,?,?,0,?,?)", rows)
    db.execute("UPDATE us_sessions SET uploaded_files = ? WHERE id = ?", (n, sid))
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


def probe_close():
    """b5's close: sessions of BIG files against empty ones in one server,
    ROUNDS rounds of (empty, big, empty) closes, each close on a settled
    server and the next only once the previous big one is ingested."""
    big = int(os.environ.get("BIG", "50000"))
    rounds = int(os.environ.get("ROUNDS", "4"))
    srv = C.BenchServer(extra=["LogLevel warn upload_session:info"])
    try:
        srv.start()
        ws = "probe-close"
        bigs = [srv.create_session(ws)["session_id"] for _ in range(rounds)]
        empties = [srv.create_session(ws)["session_id"] for _ in range(2 * rounds)]
        srv.stop()
        t = time.perf_counter()
        for sid in bigs:
            fill_uploads(srv, sid, big)
        print(f"{rounds} sessions of {big} files written in {time.perf_counter() - t:.1f} s")
        db = sqlite3.connect(os.path.join(srv.state, "store.db"))
        print("close's UPDATE (as in src/store/sqlite/us_sql.c), its plan:")
        for r in db.execute("EXPLAIN QUERY PLAN " + CLOSE_UPDATE,
                            {"t": 0, "ws": ws, "id": bigs[0]}):
            print("    ", r[-1])
        db.close()
        srv.start()
        rc = C.RawClient(srv.port, srv.auth)
        lat = {"big": [], "empty": []}
        e = iter(empties)

        def close(kind, sid):
            C.wait_quiet(2)
            st, body, dt = rc.request("PUT", f"/api/v1/workspaces/{ws}/upload_sessions/{sid}",
                                      b"{}")
            if st != 204:
                raise RuntimeError(f"close {sid}: {st} {body[:200]!r}")
            lat[kind].append(dt * 1e6)

        for sid in bigs:
            close("empty", next(e))
            close("big", sid)
            while sum(srv.status(ws, sid)["ingestion_status"][k]
                      for k in ("finished_files", "failed_files")) < big:
                time.sleep(0.1)
            close("empty", next(e))
        rc.close()
        mb, me = C.median(lat["big"]), C.median(lat["empty"])
        print(f"close latency (us): {big} files {[round(x) for x in lat['big']]}, "
              f"empty {[round(x) for x in lat['empty']]}; medians {mb:.0f} / {me:.0f} = "
              f"{mb / me:.2f}")
    finally:
        srv.cleanup()


def probe_flush():
    """What the disk allows a close: appends of 8 pages (a close's WAL
    frames) each followed by fdatasync, for 2 s, by 1 process and by 2
    processes on one file at once (two httpd children syncing the WAL)."""
    path = os.path.join(C.WORK, f"probe-flush-{uuid.uuid4().hex[:8]}")
    page = os.urandom(8 * 4096)

    def run(secs, out_fd):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
        n, end = 0, time.monotonic() + secs
        while time.monotonic() < end:
            os.pwrite(fd, page, (n % 256) * len(page))
            os.fdatasync(fd)
            n += 1
        os.close(fd)
        os.write(out_fd, f"{n}\n".encode())

    for writers in (1, 2, 1):
        r, w = os.pipe()
        pids = []
        for _ in range(writers):
            pid = os.fork()
            if pid == 0:
                run(2.0, w)
                os._exit(0)
            pids.append(pid)
        for pid in pids:
            os.waitpid(pid, 0)
        os.close(w)
        counts = [int(x) for x in os.read(r, 4096).split()]
        os.close(r)
        print(f"  {writers} writer(s): {sum(counts) / 2.0:.0f} fdatasync/s in all "
              f"({[round(c / 2.0) for c in counts]} each)")
    os.unlink(path)


if __name__ == "__main__":
    probes = {"claim": probe_claim, "pending": probe_pending, "create": probe_create,
              "children": probe_children, "writeback": probe_writeback, "close": probe_close,
              "flush": probe_flush}
    if len(sys.argv) != 2 or sys.argv[1] not in probes:
        sys.exit(f"usage: {sys.argv[0]} {'|'.join(probes)}")
    if not os.environ.get("BENCH_MODULE"):
        print("(module: build/mod_upload_session.so itself; run.sh uses a private copy)")
    probes[sys.argv[1]]()

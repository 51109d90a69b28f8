"""Several httpd nodes on one PostgreSQL store (issue 12): three servers on
loopback ports sharing one database, one key file, one signing secret and
the file storage - one data directory, or with US_IT_STORAGE=s3 one bucket
prefix and no shared directory (each node keeps its own); the client spreads
its requests over the nodes. Runs whatever US_IT_STORE says: the nodes are
always on PostgreSQL."""

import concurrent.futures as cf
import os
import re
import signal
import subprocess
import threading
import time

import pytest

from us_testkit.api import (ALREADY_CLOSED, check, close_session, create_session, detail_of,
                            get_status, list_all, session_path, sessions_path, unique_ws)
from us_testkit import pg
from us_testkit.ingest import (counters, new_session, session_files, state_of, upload_all,
                               upload_one, wait_ingested)
from us_testkit.metrics import METRICS_PAGE, metric
from us_testkit.procs import children_of, pid_alive, wait_for
from us_testkit.server import UploadServer
from us_testkit.uploads import s3_keys, storage_is_s3

NODES = 3
# short, so that a takeover fits a test; the database ends a transaction
# left idle (a stopped node's) after IDLE_TXN, as README asks of an operator
LEASE = 3
IDLE_TXN = 2
# uploads and publishing cost more per file on s3 (radosgw): the sessions a
# node stops or dies in are smaller there, still several batches of 256
S3 = os.environ.get("US_IT_STORAGE") == "s3"
TAKEOVER_FILES = 600 if S3 else 2000
UPLOAD_DEADLINE = 240 if S3 else 60


@pytest.fixture(scope="module")
def cluster():
    """NODES servers on one database; node 0 owns the shared files."""
    # a claimer waits for a row lock as long as a test holds it (see
    # hold_row_lock) instead of giving up after a second
    common = ["UploadSessionSweepInterval 1", f"UploadSessionIngestLease {LEASE}",
              "UploadSessionBusyTimeout 10000", *METRICS_PAGE]
    first = UploadServer(store="pgsql", max_open=10,
                         extra=common + ["UploadSessionNodeName node-0"])
    pg.cluster().psql(f"ALTER DATABASE {first.pg_db} SET idle_in_transaction_session_timeout"
                      f" = '{IDLE_TXN}s'")
    users = {"closer": first.add_user("Close", "Racer", "*"),
             "ingester": first.add_user("Ingest", "Racer", "*"),
             "limited": first.add_user("Limit", "Racer", "*"),
             "expirer": first.add_user("Expire", "Racer", "*")}
    first.write_config()
    state = os.path.join(first.dir, "state")
    shared = {
        "UploadSessionStore": f'pgsql "{first.pg_conninfo}"',
        "UploadSessionSecretFile": f'"{state}/upload_session.secret"',
        "UploadSessionKeyFile": f'"{first.key_file}"',
    }
    if storage_is_s3(first):
        shared["UploadSessionS3Prefix"] = first.s3_prefix
    else:
        shared["UploadSessionDataDir"] = f'"{state}/data"'

    nodes = [first]
    try:
        first.start()
        for i in range(1, NODES):
            n = UploadServer(store="pgsql", max_open=10, default_users=False, overrides=shared,
                             extra=common + [f"UploadSessionNodeName node-{i}"])
            nodes.append(n)
            n.start()
        yield nodes, users
        for n in nodes:
            n.stop()
            n.check_log(" (at shutdown)")
    finally:
        for n in reversed(nodes):
            n.cleanup()


def test_one_of_concurrent_closes_on_different_nodes_wins(cluster):
    nodes, users = cluster
    u = users["closer"]
    clients = [n.client(u) for n in nodes]
    for round_ in range(5):
        ws = unique_ws("cl-close")
        sid = create_session(clients[round_ % NODES], ws)["session_id"]
        barrier = threading.Barrier(2 * NODES)

        def close(i):
            barrier.wait()
            return clients[i % NODES].put(session_path(ws, sid), json={"status": "CLOSED"})

        with cf.ThreadPoolExecutor(2 * NODES) as ex:
            resps = list(ex.map(close, range(2 * NODES)))
        won = [r for r in resps if r.status_code == 204]
        assert len(won) == 1, [(r.status_code, r.text) for r in resps]
        check(won[0], 204)
        for r in resps:
            if r is not won[0]:
                check(r, 409, ALREADY_CLOSED)
        for c in clients:
            assert get_status(c, ws, sid)["status"] == "CLOSED"


def test_the_open_session_limit_holds_across_nodes(cluster):
    nodes, users = cluster
    u = users["limited"]
    clients = [n.client(u) for n in nodes]
    ws = unique_ws("cl-limit")
    barrier = threading.Barrier(30)

    def create(i):
        barrier.wait()
        return clients[i % NODES].post(sessions_path(ws), json={})

    with cf.ThreadPoolExecutor(30) as ex:
        resps = list(ex.map(create, range(30)))
    created = [check(r, 201)["session_id"] for r in resps if r.status_code == 201]
    refused = [r for r in resps if r.status_code != 201]
    assert len(created) == 10, [(r.status_code, r.text) for r in resps]
    assert len(refused) == 20
    for r in refused:
        detail_of(r, 406)
    for c in clients:
        items, total = list_all(c, ws)
        assert total == 10 and sorted(i["session_id"] for i in items) == sorted(created)


def test_each_overdue_session_expires_once_with_every_sweep_running(cluster):
    nodes, users = cluster
    u = users["expirer"]
    api = nodes[0].client(u)
    up = nodes[0].raw_client()
    ws = unique_ws("cl-exp")
    sids = []
    for i in range(6):
        sid, cfg = new_session(api, ws, {"expires_in_seconds": 1})
        upload_one(up, cfg, f"x{i}.txt", b"x%d" % i)
        sids.append(sid)
    for i, sid in enumerate(sids):
        c = nodes[i % NODES].client(u)
        st = wait_ingested(c, ws, sid, 1, timeout=60)
        assert st["status"] == "EXPIRED", st
        assert counters(st) == (1, 0, 0), st
        items = session_files(c, ws, sid)
        assert {n: state_of(it) for n, it in items.items()} == {f"x{i}.txt": ("FINISHED", None)}
    # every node's monitor swept; each session was expired by one of them
    swept, claimed = 0, 0
    for i, n in enumerate(nodes):
        log = n.log_text()
        assert "deadlock" not in log
        swept += sum(int(m) for m in re.findall(r"expiry sweep: (\d+) session\(s\) expired", log))
        # UploadSessionNodeName names this node's claims
        owners = re.findall(r"claimed by ([^/\s]+)/\d+/\d+", log)
        assert set(owners) <= {f"node-{i}"}, owners
        claimed += len(owners)
    assert swept == len(sids)
    assert claimed >= len(sids)


# ---- a node that stops or dies while it ingests ------------------------------------

def db_rows(node, sql):
    """The rows of sql on the cluster's database (node: the first node, whose
    database the others share), each a list of column texts."""
    out = pg.cluster().psql(sql, dbname=node.pg_db)
    return [line.split("|") for line in out.splitlines() if line]


def signal_node(node, sig):
    """sig to the node's parent and every child (its ingest workers)."""
    for pid in [node.pid] + children_of(node.pid):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


class RowLockHolder:
    """Another client of the database holding one upload row's lock: the
    claimer of its session blocks inside the batch that reaches it, which
    pins the claim to a known moment of its ingestion."""

    APP = "us_test_row_lock"

    def __init__(self, node, sid, name):
        sql = (f"BEGIN; SELECT 1 FROM us_uploads WHERE session_id = '{sid}' AND name = '{name}'"
               " FOR UPDATE; SELECT pg_sleep(120); COMMIT;")
        self.node = node
        self.proc = subprocess.Popen(
            ["psql", "-X", "-q", f"{pg.cluster().conninfo} dbname={node.pg_db}"
             f" application_name={self.APP}", "-c", sql],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert wait_for(lambda: self._state() == [["pg_sleep"]], 20), "the row lock was not taken"

    def _state(self):
        return db_rows(self.node, "SELECT CASE WHEN query LIKE '%pg_sleep%' THEN 'pg_sleep' END"
                       f" FROM pg_stat_activity WHERE application_name = '{self.APP}'")

    def release(self):
        db_rows(self.node, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                f" WHERE application_name = '{self.APP}'")
        self.proc.wait(timeout=20)


def blocked_claimer(nodes, sid):
    """The node whose worker holds the session's claim and waits for a lock."""
    def waiting():
        return db_rows(nodes[0], "SELECT count(*) FROM pg_stat_activity"
                       f" WHERE datname = '{nodes[0].pg_db}' AND wait_event_type = 'Lock'"
                       " AND state = 'active'") == [["1"]]
    assert wait_for(waiting, 120 if S3 else 30), "no worker reached the locked row"
    [[owner]] = db_rows(nodes[0], f"SELECT ingest_owner FROM us_sessions WHERE id = '{sid}'")
    return next(n for i, n in enumerate(nodes) if owner.startswith(f"node-{i}/")), owner


def stored_files(node):
    """The workspace files' bytes in the cluster's storage: their file ids."""
    if storage_is_s3(node):
        return set(s3_keys(node, "files/"))
    return set(os.listdir(os.path.join(node.dir, "state", "data", "files")))


def assert_nothing_left_over(node, ws, sid):
    """Nothing of the session's uploads left in the storage, every file row
    of the workspace stored, and no stored file without its row (of any
    workspace)."""
    # the counters are final before the last clear of the session's uploads
    assert wait_for(lambda: session_blobs(node, sid) == [], 10), session_blobs(node, sid)
    stored = stored_files(node)
    ws_ids = {r[0] for r in db_rows(node, f"SELECT file_id FROM us_files WHERE workspace = '{ws}'")}
    assert ws_ids <= stored, len(ws_ids - stored)
    every_id = {r[0] for r in db_rows(node, "SELECT file_id FROM us_files")}
    assert stored <= every_id, sorted(stored - every_id)[:5]


def session_blobs(node, sid):
    """What the storage still holds of a session's uploads (objects and
    unfinished multipart uploads, or files)."""
    if storage_is_s3(node):
        return s3_keys(node, f"sessions/{sid}/") + s3_keys(node, f"sessions/{sid}/", uploads=True)
    left = os.path.join(node.dir, "state", "data", "sessions", sid)
    return os.listdir(left) if os.path.exists(left) else []


def taken_over_after(node, sid, owner, t0, timeout):
    """Seconds from t0 until a worker of another node than owner's holds
    the session's claim (or has finished it)."""
    mine = owner.split("/")[0] + "/"

    def other():
        [[o, state]] = db_rows(node, "SELECT coalesce(ingest_owner, ''), ingest_state"
                               f" FROM us_sessions WHERE id = '{sid}'")
        return (o and not o.startswith(mine)) or state == "done"
    assert wait_for(other, timeout, interval=0.05), "nobody took the session over"
    return time.monotonic() - t0


def assert_ingested_once(c, node, ws, sid, n):
    """Every file FINISHED once, counters equal to the files' states, one
    workspace file row per name."""
    st = get_status(c, ws, sid)
    assert counters(st) == (n, 0, 0), st
    items = session_files(c, ws, sid)
    assert len(items) == n and {state_of(it) for it in items.values()} == {("FINISHED", None)}
    assert db_rows(node, "SELECT count(*), count(DISTINCT name) FROM us_files"
                   f" WHERE workspace = '{ws}'") == [[str(n), str(n)]]
    assert db_rows(node, "SELECT ingestion_status, count(*) FROM us_uploads"
                   f" WHERE session_id = '{sid}' AND is_meta = 0 GROUP BY 1") == [["FINISHED", str(n)]]


def uploaded_session(cluster, label, letter, n):
    """A session of the ingester's, n files (letter and four digits) uploaded
    through node 1 and not closed: (client, user, workspace, session id)."""
    nodes, users = cluster
    u = users["ingester"]
    ws = unique_ws(label)
    api = nodes[1].client(u)
    sid, cfg = new_session(api, ws)
    upload_all(cfg, [(f"{letter}{i:04d}.txt", b"%d" % i) for i in range(n)],
               deadline=UPLOAD_DEADLINE)
    return api, u, ws, sid


def test_a_node_stopped_past_its_lease_is_taken_over_and_changes_nothing(cluster):
    """The claimer is SIGSTOPped in the middle of a session (inside a batch
    transaction): the database ends that transaction, another node takes the
    session over once the lease ran out on the database's clock and finishes
    it; the stopped node, continued, changes nothing."""
    nodes, _ = cluster
    n = 600  # three batches of 256
    api, u, ws, sid = uploaded_session(cluster, "cl-stop", "f", n)
    holder = RowLockHolder(nodes[0], sid, "f0300.txt")  # in the second batch
    try:
        close_session(api, ws, sid)
        stopped, owner = blocked_claimer(nodes, sid)
        signal_node(stopped, signal.SIGSTOP)
    finally:
        holder.release()
    t0 = time.monotonic()
    try:
        others = [x for x in nodes if x is not stopped]
        took = taken_over_after(nodes[0], sid, owner, t0, LEASE + IDLE_TXN + 30)
        st = wait_ingested(others[0].client(u), ws, sid, n, timeout=120 if S3 else 30)
        [[new_owner]] = db_rows(nodes[0], f"SELECT ingest_owner FROM us_sessions WHERE id = '{sid}'")
        assert not new_owner.startswith(owner.split("/")[0] + "/"), (owner, new_owner)
        assert took < LEASE + IDLE_TXN + 5, took
    finally:
        signal_node(stopped, signal.SIGCONT)
    # the continued node finds its transaction ended and its claim gone
    assert wait_for(lambda: "was taken over" in stopped.log_text()
                    or re.search(r"ingest: session " + sid + r": .*(idle-in-transaction|terminat)",
                                 stopped.log_text()), 15), stopped.log_tail()
    time.sleep(1)
    for x in nodes:
        assert_ingested_once(x.client(u), nodes[0], ws, sid, n)
    assert st["status"] == "CLOSED"
    stopped.expect_log(r"US1110|ingest: session " + sid)
    print(f"takeover of a SIGSTOPped claimer: claimed {took:.1f}s after the stop (lease {LEASE}s,"
          f" idle transaction timeout {IDLE_TXN}s)")



def claims_lost(node):
    return metric(node, "ingest_claims_lost_total")


class ClaimThief:
    """Another client of the database that hands a session's claim to an
    owner no node has, its heartbeat an hour ahead, so no node claims the
    session until give_back. Started while the claimer's batch holds the
    session row's share lock, its UPDATE waits for that batch to commit."""

    OWNER = "thief/1"
    APP = "us_test_claim_thief"

    def __init__(self, node, sid):
        self.node, self.sid = node, sid
        self.proc = subprocess.Popen(
            ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1",
             f"{pg.cluster().conninfo} dbname={node.pg_db} application_name={self.APP}", "-c",
             f"UPDATE us_sessions SET ingest_owner = '{self.OWNER}',"
             f" ingest_heartbeat = ingest_heartbeat + 3600000000 WHERE id = '{sid}'"
             " AND ingest_state = 'running'"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def waiting(self):
        """Whether its UPDATE waits for a lock."""
        return db_rows(self.node, "SELECT wait_event_type FROM pg_stat_activity"
                       f" WHERE application_name = '{self.APP}' AND state = 'active'") == [["Lock"]]

    def finish(self):
        out, _ = self.proc.communicate(timeout=30)
        assert self.proc.returncode == 0, out
        assert db_rows(self.node, "SELECT ingest_owner FROM us_sessions"
                       f" WHERE id = '{self.sid}'") == [[self.OWNER]]

    def give_back(self):
        """The stolen lease ends: the nodes may claim the session again."""
        db_rows(self.node, f"UPDATE us_sessions SET ingest_heartbeat = 0 WHERE id = '{self.sid}'")


def test_a_claim_taken_over_between_batches_is_counted_and_changes_nothing(cluster):
    """The claimer's second batch is held on a row lock while another client
    hands the session's claim away (its UPDATE queued behind the batch's share
    lock on the session). After that batch the claimer finds the claim gone
    (its lease renewal, or its next batch's fence inside the batch's
    transaction): it logs the takeover, counts it in ingest_claims_lost_total
    and records nothing more; once the stolen lease ends a node claims the
    session and finishes it, every file once, nothing of the session left in
    the storage."""
    nodes, _ = cluster
    n = 600  # three batches of 256
    api, u, ws, sid = uploaded_session(cluster, "cl-steal", "s", n)
    lost_before = [claims_lost(x) for x in nodes]
    holder = RowLockHolder(nodes[0], sid, "s0300.txt")  # in the second batch
    try:
        close_session(api, ws, sid)
        claimer, owner = blocked_claimer(nodes, sid)
        thief = ClaimThief(nodes[0], sid)
        # under the claimer's lock_timeout (UploadSessionBusyTimeout, 10 s),
        # past which its batch would roll back and the thief come first
        assert wait_for(thief.waiting, 5), "the thief's UPDATE did not wait for the batch"
    finally:
        holder.release()
    thief.finish()

    # Another node may claim the session in the moment between the batch's
    # commit and the thief's UPDATE (the claimer's heartbeat went stale while
    # it waited): that node then loses its claim to the thief too.
    def claimed_meanwhile(x):
        return x is not claimer and re.search(rf"US1006: ingest: session {sid} .*claimed by",
                                              x.log_text()) is not None

    def counted():
        lost = [claims_lost(x) - b for x, b in zip(nodes, lost_before)]
        return lost == [int(x is claimer or claimed_meanwhile(x)) for x in nodes]

    # "was taken over" or "the claim is lost; the batch is not recorded"
    assert wait_for(lambda: f"US1008: ingest: session {sid}" in claimer.log_text(),
                    120 if S3 else 30), claimer.log_tail()
    assert wait_for(counted, 10), ([claims_lost(x) for x in nodes], lost_before)
    # the first two batches are recorded, the third is not: no node holds
    # the claim while the thief's lease lasts
    time.sleep(1)
    assert db_rows(nodes[0], "SELECT ingestion_status, count(*) FROM us_uploads"
                   f" WHERE session_id = '{sid}' AND is_meta = 0 GROUP BY 1 ORDER BY 1") \
        == [["FINISHED", "512"], ["PENDING", str(n - 512)]]
    assert db_rows(nodes[0], f"SELECT count(*) FROM us_files WHERE workspace = '{ws}'") \
        == [["512"]]
    thief.give_back()
    st = wait_ingested(api, ws, sid, n, timeout=120 if S3 else 30)
    assert st["status"] == "CLOSED"
    [[new_owner]] = db_rows(nodes[0], f"SELECT ingest_owner FROM us_sessions WHERE id = '{sid}'")
    assert new_owner.startswith("node-"), new_owner
    for x in nodes:
        assert_ingested_once(x.client(u), nodes[0], ws, sid, n)
    assert_nothing_left_over(nodes[0], ws, sid)


def test_a_killed_node_is_taken_over_within_the_lease(cluster):
    """kill -9 of the claimer's whole node (parent and children) in the
    middle of a 2,000-file session (600 on s3): PostgreSQL rolls back its open batch,
    another node takes the session over once the lease ran out and finishes
    it; every file FINISHED once, no workspace file twice, no blob left in
    the session's directory."""
    nodes, _ = cluster
    n = TAKEOVER_FILES
    api, u, ws, sid = uploaded_session(cluster, "cl-kill", "k", n)
    # in the second batch of 256 (s3) or the fourth
    holder = RowLockHolder(nodes[0], sid, "k0300.txt" if S3 else "k1000.txt")
    try:
        close_session(api, ws, sid)
        killed, owner = blocked_claimer(nodes, sid)
        signal_node(killed, signal.SIGKILL)
        t0 = time.monotonic()
    finally:
        holder.release()
    others = [x for x in nodes if x is not killed]
    try:
        took = taken_over_after(nodes[0], sid, owner, t0, LEASE + 30)
        wait_ingested(others[0].client(u), ws, sid, n, timeout=120 if S3 else 30)
        [[new_owner]] = db_rows(nodes[0], f"SELECT ingest_owner FROM us_sessions WHERE id = '{sid}'")
        assert not new_owner.startswith(owner.split("/")[0] + "/"), (owner, new_owner)
        assert took < LEASE + 5, took
        for x in others:
            assert_ingested_once(x.client(u), nodes[0], ws, sid, n)
        assert_nothing_left_over(nodes[0], ws, sid)
    finally:
        # the node comes back for the tests after this one
        assert wait_for(lambda: not pid_alive(killed.pid), 10)
        killed.running, killed.pid = False, None
        if os.path.exists(killed.pid_file):  # left by the killed parent
            os.remove(killed.pid_file)
        killed.start()
    print(f"takeover of a killed node: claimed {took:.1f}s after kill -9 (lease {LEASE}s,"
          f" {n} files, storage {'s3' if storage_is_s3(nodes[0]) else 'posix'})")



# samples, in fresh snapshots, which sessions of a workspace are being
# ingested, and reports each change as a NOTICE, until all are done
WATCH_RUNNING = """DO $$ DECLARE r text; prev text := '-'; left_ int; BEGIN
 FOR i IN 1..6000 LOOP
  SELECT coalesce(string_agg(id, ',' ORDER BY id), '') INTO r FROM us_sessions
   WHERE workspace = '{ws}' AND ingest_state = 'running';
  IF r <> prev THEN RAISE NOTICE 'running:%', r; prev := r; END IF;
  SELECT count(*) INTO left_ FROM us_sessions WHERE workspace = '{ws}' AND ingest_state <> 'done';
  EXIT WHEN left_ = 0;
  PERFORM pg_sleep(0.005);
 END LOOP; END $$"""


def test_serial_sessions_are_ingested_one_at_a_time_in_closing_order(cluster):
    """Sessions without parallel_processing_enabled, closed one after the
    other on different nodes: every node's workers want them, yet they are
    ingested one at a time, in closing order."""
    nodes, users = cluster
    u = users["ingester"]
    ws = unique_ws("cl-serial")
    k, n = 4, 300
    sids = []
    for i in range(k):
        sid, cfg = new_session(nodes[i % NODES].client(u), ws,
                               {"parallel_processing_enabled": False})
        upload_all(cfg, [(f"s{i}-{j:04d}.txt", b"%d" % j) for j in range(n)])
        sids.append(sid)
    watcher = subprocess.Popen(
        ["psql", "-X", "-q", f"{pg.cluster().conninfo} dbname={nodes[0].pg_db}",
         "-c", WATCH_RUNNING.replace("{ws}", ws)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)
        for i, sid in enumerate(sids):
            close_session(nodes[(i + 1) % NODES].client(u), ws, sid)
        for i, sid in enumerate(sids):
            st = wait_ingested(nodes[i % NODES].client(u), ws, sid, n, timeout=60)
            assert counters(st) == (n, 0, 0), st
    finally:
        _, err = watcher.communicate(timeout=60)
    seen = [line.split("running:", 1)[1].strip() for line in err.splitlines() if "running:" in line]
    running = [x for x in seen if x]
    assert running and all("," not in x for x in running), seen  # never two at once
    order = [x for i, x in enumerate(running) if i == 0 or running[i - 1] != x]
    assert len(order) == len(set(order)), order  # none ran twice
    assert order == [s for s in sids if s in order], (order, sids)
    print(f"serial sessions: {len(order)} of {k} seen running, one at a time, in closing order")



def test_a_database_restart_under_traffic_answers_503_then_recovers(cluster):
    """pg_ctl restart -m fast while clients read on every node: each answer
    is 200, or 503 with Retry-After and the busy body; the nodes reconnect
    by themselves and a session closed right after ingests every file."""
    nodes, users = cluster
    u = users["ingester"]
    ws = unique_ws("cl-restart")
    sid, cfg = new_session(nodes[0].client(u), ws)
    upload_all(cfg, [(f"r{i:02d}.txt", b"%d" % i) for i in range(50)])
    stop = threading.Event()
    seen = [[] for _ in nodes]

    def read(i):
        c = nodes[i].client(u)
        while not stop.is_set():
            r = c.get(session_path(ws, sid))
            seen[i].append(r.status_code)
            if r.status_code != 200:
                check(r, 503, BUSY)
                assert r.headers.get("Retry-After") == "1", r.headers
            time.sleep(0.02)

    with cf.ThreadPoolExecutor(NODES) as ex:
        futs = [ex.submit(read, i) for i in range(NODES)]
        time.sleep(0.5)
        pg.cluster().restart()
        restarted = time.monotonic()
        time.sleep(3)
        stop.set()
        for f in futs:
            f.result()
    for i, codes in enumerate(seen):
        assert codes[-1] == 200, (i, codes)
        assert set(codes) <= {200, 503}, codes
    check(retry_busy(nodes[1].client(u), ws, sid), 204)
    # another pooled connection of a node, dropped by the restart, answers
    # 503 once at its first use
    st = wait_ingested(nodes[2].client(u), ws, sid, 50, timeout=30, busy_ok=True)
    assert counters(st) == (50, 0, 0), st
    for n in nodes:
        n.expect_log(r"US1110|US1111|terminating connection|server closed|ingest")
    print(f"database restart: 503s per node {[c.count(503) for c in seen]},"
          f" recovered within {time.monotonic() - restarted:.1f}s")


BUSY = {"detail": "The service is busy. Try again in a moment."}


def test_dropped_connections_answer_503_then_reconnect(cluster):
    """The server ends every connection to the store (as a restart does):
    a request on a dropped connection gets 503 with Retry-After, and the
    nodes reconnect by themselves - nothing is lost."""
    nodes, users = cluster
    from us_testkit import pg
    u = users["closer"]
    ws = unique_ws("cl-drop")
    # a pooled connection the previous test's restart dropped answers 503 once
    for _ in range(40):
        r = nodes[0].client(u).post(sessions_path(ws), json={})
        if r.status_code != 503:
            break
        check(r, 503, BUSY)
    sid = check(r, 201)["session_id"]
    pg.cluster().psql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                      f" WHERE datname = '{nodes[0].pg_db}' AND pid <> pg_backend_pid()")
    for n in nodes:
        c = n.client(u)
        seen = []
        for _ in range(40):  # at most one 503 per pooled connection
            r = c.get(session_path(ws, sid))
            seen.append(r.status_code)
            if r.status_code == 200:
                break
            check(r, 503, BUSY)
            assert r.headers.get("Retry-After") == "1", r.headers
        assert seen[-1] == 200, seen
        assert get_status(c, ws, sid)["status"] == "OPEN"
    # the other pooled connections: each answers 503 once, as a client retries
    check(retry_busy(nodes[1].client(u), ws, sid), 204)
    check(retry_busy(nodes[2].client(u), ws, sid), 409, ALREADY_CLOSED)


def retry_busy(c, ws, sid, tries=40):
    """Closes the session, retrying 503 (Retry-After) answers; the last response."""
    for _ in range(tries):
        r = c.put(session_path(ws, sid), json={"status": "CLOSED"})
        if r.status_code != 503:
            return r
        check(r, 503, BUSY)
        assert r.headers.get("Retry-After") == "1", r.headers
    return r

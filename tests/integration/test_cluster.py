"""Several httpd nodes on one PostgreSQL store (issue 12): three servers on
loopback ports sharing one database, one data directory, one key file and
one signing secret; the client spreads its requests over the nodes. Runs
whatever US_IT_STORE says: the nodes are always on PostgreSQL."""

import concurrent.futures as cf
import os
import re
import threading

import pytest

from us_testkit.api import (ALREADY_CLOSED, check, close_session, create_session, detail_of,
                            get_status, list_all, session_path, sessions_path, unique_ws)
from us_testkit.ingest import (counters, new_session, session_files, state_of, upload_one,
                               wait_ingested)
from us_testkit.server import UploadServer

NODES = 3


@pytest.fixture(scope="module")
def cluster():
    """NODES servers on one database; node 0 owns the shared files."""
    first = UploadServer(store="pgsql", max_open=10,
                         extra=["UploadSessionSweepInterval 1", "UploadSessionNodeName node-0"])
    users = {"closer": first.add_user("Close", "Racer", "*"),
             "limited": first.add_user("Limit", "Racer", "*"),
             "expirer": first.add_user("Expire", "Racer", "*")}
    first.write_config()
    state = os.path.join(first.dir, "state")
    shared = {
        "UploadSessionStore": f'pgsql "{first.pg_conninfo}"',
        "UploadSessionDataDir": f'"{state}/data"',
        "UploadSessionSecretFile": f'"{state}/upload_session.secret"',
        "UploadSessionKeyFile": f'"{first.key_file}"',
    }
    nodes = [first]
    try:
        first.start()
        for i in range(1, NODES):
            n = UploadServer(store="pgsql", max_open=10, default_users=False, overrides=shared,
                             extra=["UploadSessionSweepInterval 1",
                                    f"UploadSessionNodeName node-{i}"])
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


BUSY = {"detail": "The service is busy. Try again in a moment."}


def test_dropped_connections_answer_503_then_reconnect(cluster):
    """The server ends every connection to the store (as a restart does):
    a request on a dropped connection gets 503 with Retry-After, and the
    nodes reconnect by themselves - nothing is lost."""
    nodes, users = cluster
    from us_testkit import pg
    u = users["closer"]
    ws = unique_ws("cl-drop")
    sid = create_session(nodes[0].client(u), ws)["session_id"]
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

"""UploadSessionNodeName on one PostgreSQL store (issue 12): a node claims
its name in the store's node registry at startup and keeps it with a
heartbeat on the database's clock. A second node under a name that a live
node holds does not start; a graceful restart keeps the name; a node
restarted on the same machine after kill -9 gets it back at once, and one
on another machine once the old heartbeat is older than the lease."""

import os
import time

import pytest

from us_testkit import pg
from us_testkit.api import create_session, list_all, unique_ws
from us_testkit.procs import pid_alive, sigkill_daemon, wait_for
from us_testkit.server import UploadServer, started

IN_USE = "UploadSessionNodeName twin is in use by another node on this store"


@pytest.fixture
def first():
    """A running node named twin with a long lease; the others share its store."""
    with started(UploadServer(store="pgsql", extra=["UploadSessionNodeName twin",
                                                    "UploadSessionIngestLease 60"])) as s:
        yield s


def sibling(first, name, lease=60):
    """A node on first's store, files and keys, not started."""
    state = os.path.join(first.dir, "state")
    shared = {
        "UploadSessionStore": f'pgsql "{first.pg_conninfo}"',
        "UploadSessionDataDir": f'"{state}/data"',
        "UploadSessionSecretFile": f'"{state}/upload_session.secret"',
        "UploadSessionKeyFile": f'"{first.key_file}"',
    }
    return UploadServer(store="pgsql", default_users=False, overrides=shared,
                        extra=[f"UploadSessionNodeName {name}",
                               f"UploadSessionIngestLease {lease}"])


def refused(node):
    """Starts node and expects it to refuse: the reason in its log, no
    process left, its port never open."""
    node.write_config()
    node._ctl("-k", "start")
    assert wait_for(lambda: IN_USE in node.log_text(), 20), node.log_tail()
    assert wait_for(lambda: (node._read_pid() is None or not pid_alive(node._read_pid())), 10)
    return node.log_text()


def serves(node, user):
    ws = unique_ws("names")
    sid = create_session(node.client(user), ws)["session_id"]
    items, total = list_all(node.client(user), ws)
    assert total == 1 and [i["session_id"] for i in items] == [sid]


def holder(first):
    out = pg.cluster().psql("SELECT instance, host, pid FROM us_nodes WHERE name = 'twin'",
                            dbname=first.pg_db)
    [row] = [line.split("|") for line in out.splitlines() if line]
    return row


def kill_node(node):
    """SIGKILL of the node's httpd and its children (sigkill_daemon)."""
    sigkill_daemon(node.pid)
    assert wait_for(lambda: not pid_alive(node.pid), 10)
    node.running = False


def test_a_second_node_under_a_live_nodes_name_does_not_start(first):
    before = holder(first)
    assert before[2] == str(first.pid)
    twin = sibling(first, "twin")
    try:
        log = refused(twin)
        assert f"pid {first.pid}" in log, log
    finally:
        twin.cleanup()
    # the running node keeps its name and serves; another name starts
    assert holder(first) == before
    serves(first, first.user_all)
    other = sibling(first, "twin-2")
    try:
        other.start()
        serves(other, first.user_all)
        other.stop()
        other.check_log(" (at shutdown)")
    finally:
        other.cleanup()


def test_a_graceful_restart_keeps_the_name(first):
    before = holder(first)
    first.graceful()
    first.graceful()
    serves(first, first.user_all)
    assert holder(first) == before
    assert IN_USE not in first.log_text()
    # heartbeats go on after the restarts (every lease/3 = 20 s; at most 2 s old
    # right after the claim of the restart)
    age = pg.cluster().psql("SELECT (floor(extract(epoch FROM clock_timestamp()) * 1000000)"
                            " - heartbeat) / 1000000 FROM us_nodes WHERE name = 'twin'",
                            dbname=first.pg_db).strip()
    assert float(age) < 30, age
    twin = sibling(first, "twin")
    try:
        refused(twin)
    finally:
        twin.cleanup()


def test_a_node_killed_and_restarted_on_its_machine_gets_its_name_at_once(first):
    old = holder(first)
    kill_node(first)
    again = sibling(first, "twin")
    try:
        t0 = time.monotonic()
        again.start()
        took = time.monotonic() - t0
        # its old heartbeat is still fresh (lease 60 s): the dead parent on
        # this machine is what let it in
        assert took < 30, took
        new = holder(first)
        assert new[0] != old[0] and new[2] == str(again.pid), (old, new)
        serves(again, first.user_all)
        again.stop()
        again.check_log(" (at shutdown)")
    finally:
        again.cleanup()


def test_a_name_held_on_another_machine_is_free_once_its_heartbeat_is_older_than_the_lease(first):
    kill_node(first)
    # as if that node ran elsewhere: its pid says nothing here
    pg.cluster().psql("UPDATE us_nodes SET host = 'elsewhere/boot' WHERE name = 'twin'",
                      dbname=first.pg_db)
    twin = sibling(first, "twin")
    try:
        refused(twin)
    finally:
        twin.cleanup()
    time.sleep(2.5)
    late = sibling(first, "twin", lease=2)
    try:
        late.start()
        assert holder(first)[2] == str(late.pid)
        serves(late, first.user_all)
        late.stop()
        late.check_log(" (at shutdown)")
    finally:
        late.cleanup()

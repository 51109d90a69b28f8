"""A restart (apachectl -k graceful, which Debian's logrotate runs daily)
while the store cannot be reached or is locked by another process: httpd
goes on with the store as its last start left it, logs why (US0023), and
serves again as soon as the store answers. Before, httpd's parent exited
("Configuration Failed") and stayed down after the store came back.

- PostgreSQL behind a relay that holds every packet (a database host that
  drops them): libpq gives up after the connect_timeout the module adds
  (10 s) where it waited for ever.
- SQLite whose write lock another process holds past the busy timeout."""

import re
import sqlite3
import time

from us_testkit import pg
from us_testkit.api import check, create_session, session_path, unique_ws
from us_testkit.ingest import make_server, module_so  # noqa: F401
from us_testkit.procs import pid_alive
from us_testkit.slowlink import SlowLink

RESTARTED_ANYWAY = r"US0023: .*restarting anyway"


def assert_serves(srv, ws):
    api = srv.client(srv.user_all)
    sess = create_session(api, ws)
    got = check(api.get(session_path(ws, sess["session_id"])), 200)
    assert got["status"] == "OPEN", got


def test_a_graceful_restart_survives_a_database_that_does_not_answer(make_server):
    srv = make_server(start=False, store="pgsql")
    port = int(re.search(r"\bport=(\d+)", srv.pg_conninfo).group(1))
    link = SlowLink(("127.0.0.1", port), 0, b"")  # every chunk matches
    try:
        srv.pg_conninfo = srv.pg_conninfo.replace(f"port={port}", f"port={link.port}")
        srv.start()
        ws = unique_ws("restart-pg")
        assert_serves(srv, ws)
        # workers of either generation may meet the hole too: a connection
        # that cannot be made, or one ended while it waited
        srv.expect_log(r"US1010|US1304|US1110|US1111")
        link.delay = 12  # past libpq's connect_timeout
        t0 = time.monotonic()
        srv.graceful(timeout=30)
        took = time.monotonic() - t0
        link.delay = 0
        assert pid_alive(srv.pid)
        assert 9 <= took < 25, took  # the connect_timeout, not for ever
        log = srv.log_text()
        assert re.search(RESTARTED_ANYWAY, log), srv.log_tail()
        assert "timeout expired" in log, srv.log_tail()
        assert "Configuration Failed" not in log
        assert_serves(srv, ws)
    finally:
        link.close()


@pg.sqlite_only("the write lock of the store's file")
def test_a_graceful_restart_survives_a_store_locked_by_another_process(make_server):
    srv = make_server(extra=["UploadSessionBusyTimeout 100"])
    ws = unique_ws("restart-locked")
    assert_serves(srv, ws)
    con = sqlite3.connect(f"{srv.dir}/state/store.db", isolation_level=None, timeout=1)
    try:
        con.execute("BEGIN IMMEDIATE")  # an operator's sqlite3 shell, say
        srv.graceful(timeout=30)
        assert pid_alive(srv.pid)
        log = srv.log_text()
        assert re.search(r"US0023: .*database is locked.*restarting anyway", log), srv.log_tail()
        assert "Configuration Failed" not in log
    finally:
        con.execute("ROLLBACK")
        con.close()
    assert_serves(srv, ws)
    # the next restart records what this one could not
    before = len(re.findall(RESTARTED_ANYWAY, srv.log_text()))
    srv.graceful()
    assert len(re.findall(RESTARTED_ANYWAY, srv.log_text())) == before

"""A PostgreSQL connection lost while a write's COMMIT is under way: the
server may have committed it.

- The upload target and POST /files answer 503 but keep the file's bytes,
  which the row, if it was committed, names.
- A create, a close and an abort read the session back: what was committed
  is answered as done (201, 204), what was not is a 503.

The COMMIT is held open by a deferred constraint trigger that sleeps, and
the backend running it is ended from outside (what a database restart or a
network cut does at that moment): nothing is committed. Or the module's
connection goes through a relay that cuts it where the server's answer to
the statement (or to its COMMIT) comes back: it was committed."""

import hashlib
import os
import re
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from us_testkit import pg
from us_testkit.api import (check, close_session, create_session, list_sessions, session_path,
                            unique_ws)
from us_testkit.faults import session_blob_hashes
from us_testkit.ingest import (close_and_wait, make_server, module_so,  # noqa: F401
                               ws_files_page, ws_files_path)
from us_testkit.procs import wait_for
from us_testkit.slowlink import SlowLink
from us_testkit.uploads import form_parts, post_parts

@pytest.fixture
def pg_server(make_server):
    """A server on PostgreSQL (its own database; the lost connection is
    logged as a warning, US1110, and reopened)."""
    return make_server(store="pgsql")


def sql(srv, text):
    return pg.cluster().psql(text, dbname=srv.pg_db)


def sleep_in_commit(srv, table):
    """Every insert into table makes its transaction's COMMIT sleep."""
    sql(srv, "CREATE OR REPLACE FUNCTION us_test_slow() RETURNS trigger LANGUAGE plpgsql AS "
             "'BEGIN PERFORM pg_sleep(30); RETURN NULL; END'")
    sql(srv, f"CREATE CONSTRAINT TRIGGER us_test_slow AFTER INSERT ON {table} DEFERRABLE "
             "INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION us_test_slow()")


def end_the_sleeping_commit(srv):
    sleeping = (f"FROM pg_stat_activity WHERE datname = '{srv.pg_db}'"
                " AND wait_event = 'PgSleep'")
    assert wait_for(lambda: sql(srv, "SELECT count(*) " + sleeping) == "1", 30)
    sql(srv, "SELECT pg_terminate_backend(pid) " + sleeping)


def in_thread(fn):
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("r", fn()))
    t.start()
    return t, out


def test_upload_target_keeps_the_bytes_of_a_commit_lost_on_its_way(pg_server):
    srv = pg_server
    api = srv.client(srv.user_all)
    ws = unique_ws("pg-lost-up")
    sess = create_session(api, ws)
    sid, cfg = sess["session_id"], sess["aws_prefixed_request_config"]
    data = b"kept while the commit's outcome is unknown\n" * 100
    up = srv.raw_client(timeout=60)
    sleep_in_commit(srv, "us_uploads")
    t, out = in_thread(lambda: post_parts(up, cfg["url"],
                                          form_parts(cfg["fields"], "a.txt", data)))
    end_the_sleeping_commit(srv)
    t.join(60)
    r = out["r"]
    assert r.status_code == 503, r.text
    assert b"<Code>SlowDown</Code>" in r.content, r.text
    assert session_blob_hashes(srv, sid) == [(hashlib.sha256(data).hexdigest(), len(data))]
    sql(srv, "DROP TRIGGER us_test_slow ON us_uploads")
    # not committed: the client's retry records it, and the session ends clean
    r = post_parts(up, cfg["url"], form_parts(cfg["fields"], "a.txt", data))
    assert r.status_code == 204, r.text
    st = close_and_wait(api, ws, sid, 1)
    assert st["ingestion_status"]["finished_files"] == 1, st
    assert st["ingestion_status"]["failed_files"] == 0, st
    assert session_blob_hashes(srv, sid) == []


def test_post_files_keeps_the_bytes_of_a_commit_lost_on_its_way(pg_server):
    srv = pg_server
    api = srv.client(srv.user_all)
    ws = unique_ws("pg-lost-files")
    files_dir = os.path.join(srv.dir, "state", "data", "files")
    before = set(os.listdir(files_dir))
    sleep_in_commit(srv, "us_files")
    t, out = in_thread(lambda: api.post(ws_files_path(ws), files={"file": ("b.txt", b"bytes")}))
    end_the_sleeping_commit(srv)
    t.join(60)
    check(out["r"], 503, {"detail": "The service is busy. Try again in a moment."})
    kept = set(os.listdir(files_dir)) - before
    assert len(kept) == 1, kept
    with open(os.path.join(files_dir, kept.pop()), "rb") as f:
        assert f.read() == b"bytes"
    assert ws_files_page(api, ws)["total"] == 0  # not committed after all
    sql(srv, "DROP TRIGGER us_test_slow ON us_files")
    check(api.post(ws_files_path(ws), files={"file": ("b.txt", b"bytes")}), 201)
    assert ws_files_page(api, ws)["total"] == 1


BUSY = {"detail": "The service is busy. Try again in a moment."}


@pytest.fixture
def cut_server(make_server):
    """make(*patterns) -> (server, relay): a server on PostgreSQL whose
    connections go through a relay that cuts the first one sending the
    patterns in turn where the answer to the last comes back."""
    def make(*patterns):
        srv = make_server(start=False, store="pgsql")
        port = int(re.search(r"\bport=(\d+)", srv.pg_conninfo).group(1))
        link = SlowLink(("127.0.0.1", port), 0, list(patterns), cut=True)
        srv.pg_conninfo = srv.pg_conninfo.replace(f"port={port}", f"port={link.port}")
        srv.start()
        return srv, link
    yield make


def statement(name):
    """What the module's execution of statement name holds on the wire (its
    Bind message; the PREPARE at its first use does not match)."""
    return b"\x00us_pg_" + name.encode() + b"\x00"


def test_a_create_committed_before_its_connection_was_lost_is_201(cut_server):
    srv, link = cut_server(statement("sessions_create"))
    api = srv.client(srv.user_all)
    ws = unique_ws("pg-cut-create")
    sess = create_session(api, ws)
    assert link.delayed == 1  # its answer was cut
    got = check(api.get(session_path(ws, sess["session_id"])), 200)
    assert got["status"] == "OPEN", got
    assert [x["session_id"] for x in list_sessions(api, ws)["data"]] == [sess["session_id"]]
    with open(srv.error_log) as f:
        assert f"session {sess['session_id']} was created before its connection was lost" \
            in f.read()


def test_creates_batched_in_a_statement_whose_connection_was_lost_are_201(cut_server):
    # concurrent creates of one user share a statement (a batch): each of
    # the batch's creates is read back, none is run again. The relay cuts
    # the first statement carrying two or more ids; the user's counter row,
    # held locked for a moment, makes the creates that come meanwhile wait
    # for one batch.
    srv, link = cut_server(re.compile(
        rb"\x00us_pg_sessions_create\x00[^{]*\{\"[0-9a-f-]{36}\",", re.S))
    api = srv.client(srv.user_all)
    ws = unique_ws("pg-cut-batch")
    ids = [create_session(api, ws)["session_id"]]  # the user's counter row is made
    # held for less than the module's lock_timeout (1 s), so no create times out
    hold, _ = in_thread(lambda: sql(srv, "BEGIN; SELECT 1 FROM us_user_open FOR UPDATE;"
                                         " SELECT pg_sleep(0.8); COMMIT"))
    assert wait_for(lambda: sql(srv, "SELECT count(*) FROM pg_stat_activity WHERE"
                                     f" datname = '{srv.pg_db}' AND wait_event = 'PgSleep'")
                    == "1", 30)
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda _: api.post(f"{srv.api_base}{ws}/upload_sessions",
                                                   json={}), range(16)))
    hold.join(60)
    ids += [check(r, 201)["session_id"] for r in answers]
    assert link.delayed == 1
    assert sorted(x["session_id"] for x in list_sessions(api, ws, limit=100)["data"]) \
        == sorted(ids)
    with open(srv.error_log) as f:
        read_back = f.read().count("was created before its connection was lost")
    assert read_back >= 2, read_back


def test_a_create_not_committed_when_its_connection_was_lost_is_503(pg_server):
    srv = pg_server
    api = srv.client(srv.user_all)
    ws = unique_ws("pg-lost-create")
    sleep_in_commit(srv, "us_sessions")
    t, out = in_thread(lambda: api.post(f"{srv.api_base}{ws}/upload_sessions", json={}))
    end_the_sleeping_commit(srv)
    t.join(60)
    check(out["r"], 503, BUSY)
    sql(srv, "DROP TRIGGER us_test_slow ON us_sessions")
    assert list_sessions(api, ws)["data"] == []
    sess = create_session(api, ws)
    assert [x["session_id"] for x in list_sessions(api, ws)["data"]] == [sess["session_id"]]


def test_a_close_committed_before_its_connection_was_lost_is_204(cut_server):
    srv, link = cut_server(statement("session_close"))
    api = srv.client(srv.user_all)
    ws = unique_ws("pg-cut-close")
    sid = create_session(api, ws)["session_id"]
    close_session(api, ws, sid)  # 204, and nothing in its body
    assert link.delayed == 1
    got = check(api.get(session_path(ws, sid)), 200)
    assert got["status"] == "CLOSED", got
    close_session(api, ws, sid, status=409)  # closed once


def test_an_abort_committed_before_its_connection_was_lost_is_204(cut_server):
    # the abort is a transaction: its COMMIT's answer is the one cut
    srv, link = cut_server(statement("session_abort"), b"COMMIT")
    api = srv.client(srv.user_all)
    ws = unique_ws("pg-cut-abort")
    sid = create_session(api, ws)["session_id"]
    r = api.delete(session_path(ws, sid))
    assert (r.status_code, r.content) == (204, b""), (r.status_code, r.text)
    assert link.delayed == 1
    check(api.get(session_path(ws, sid)), 404)
    assert list_sessions(api, ws)["data"] == []

"""A PostgreSQL connection lost while a write's COMMIT is under way: the
server may have committed it, so the upload target and POST /files answer
503 but keep the file's bytes, which the row, if it was committed, names.
The COMMIT is held open by a deferred constraint trigger that sleeps, and
the backend running it is ended from outside (what a database restart or a
network cut does at that moment). Here the trigger's sleep is ended too, so
nothing was committed: the bytes kept are then cleared with the session
(an upload) or left to the sweep of stored files no row refers to."""

import hashlib
import os
import threading

import pytest

from us_testkit import pg
from us_testkit.api import check, create_session, unique_ws
from us_testkit.faults import session_blob_hashes
from us_testkit.ingest import (close_and_wait, make_server, module_so,  # noqa: F401
                               ws_files_page, ws_files_path)
from us_testkit.procs import wait_for
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

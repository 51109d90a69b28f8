"""An SQLite store keeps serving after another connection changes its
schema (an operator's CREATE INDEX, ANALYZE or VACUUM; a newer module
migrating during a graceful restart while old children still serve): the
children's statements, prepared once per connection, are prepared anew."""
import os
import sqlite3

from us_testkit.api import check, create_session, get_status, list_sessions, unique_ws
from us_testkit.ingest import close_and_wait, make_server, module_so  # noqa: F401 (fixtures)
from us_testkit.pg import sqlite_only
from us_testkit.procs import children_of
from us_testkit.uploads import list_files_all, no_content, upload

# one child of two threads: the requests after the change run on the very
# connections that served (and prepared their statements) before it
MPM = ["StartServers 1", "ServerLimit 1", "ThreadLimit 2", "ThreadsPerChild 2",
       "MaxRequestWorkers 2", "MinSpareThreads 1", "MaxSpareThreads 2"]


def change_schema(path):
    db = sqlite3.connect(path, timeout=10)
    try:
        db.execute("CREATE TABLE us_probe_schema_change (x INTEGER)")
        db.execute("CREATE INDEX us_probe_schema_change_x ON us_probe_schema_change (x)")
        db.commit()
        db.execute("DROP TABLE us_probe_schema_change")
        db.commit()
    finally:
        db.close()


def round_of_requests(api, raw, ws, tag):
    sess = create_session(api, ws)
    sid, cfg = sess["session_id"], sess["aws_prefixed_request_config"]
    for i in range(3):
        no_content(upload(raw, cfg, f"{tag}-{i}.txt", b"x" * (i + 1)))
    st = get_status(api, ws, sid)
    assert st["status"] == "OPEN" and st["uploaded_files"] == 3, st
    items, total = list_files_all(api, ws, sid)
    assert total == 3 and sorted(i["name"] for i in items) == [
        f"{tag}-{i}.txt" for i in range(3)], items
    # the ingest worker's connection, prepared before the change too
    st = close_and_wait(api, ws, sid, 3, timeout=10)
    assert st["ingestion_status"]["finished_files"] == 3, st
    return sid


@sqlite_only("the schema cookie of SQLite's prepared statements")
def test_requests_succeed_after_another_connection_changes_the_schema(make_server):
    s = make_server(extra=MPM)
    api, raw = s.client(s.user_all), s.raw_client()
    ws = unique_ws("schema")
    # every kind of request, a few times, so that both threads' connections
    # hold prepared statements of each
    before = [round_of_requests(api, raw, ws, f"before{n}") for n in range(3)]
    pids = children_of(s.pid)

    change_schema(os.path.join(s.dir, "state", "store.db"))

    after = [round_of_requests(api, raw, ws, f"after{n}") for n in range(3)]
    data = list_sessions(api, ws, limit=100)
    assert data["total"] == 6, data
    assert {i["session_id"] for i in data["data"]} == set(before + after), data
    assert all(i["status"] == "CLOSED" for i in data["data"]), data
    for sid in before:
        check(api.get(f"{ws}/upload_sessions/{sid}"), 200)
    assert children_of(s.pid) == pids

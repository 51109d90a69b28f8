"""Sessions survive `apache2 -k graceful` and a full stop/start, and
graceful restarts leave no file of the store open behind them."""
import time

from us_testkit.api import (ALREADY_CLOSED, INVALID_KEY, check, close_session, create_session,
                            detail_of, get_status, list_all, list_sessions, session_path,
                            sessions_path)
from us_testkit.pg import sqlite_only
from us_testkit.procs import children_of, files_open
from us_testkit.server import User


def snapshot(server, spaces):
    """Every list page and every status of the given workspaces, via fresh
    connections (old keep-alive connections die with old children)."""
    server.close_clients()
    c = server.client(server.user_all)
    snap = {}
    for ws in spaces:
        items, total = list_all(c, ws)
        snap[(ws, "list")] = (items, total)
        snap[(ws, "page2of3")] = list_sessions(c, ws, limit=3, page_number=2)
        snap[(ws, "expired")] = list_sessions(c, ws, is_expired="true")
        for item in items:
            snap[(ws, item["session_id"])] = get_status(c, ws, item["session_id"])
    return snap


def test_sessions_survive_graceful_and_full_restart(server_factory):
    s = server_factory()
    c1 = s.client(s.user_all)
    c2 = s.client(s.user_all2)
    ws1, ws2 = "ws-persist-1", "ws-persist-2"
    open1 = create_session(c1, ws1, {"write_mode": "OVERWRITE",
                                     "parallel_processing_enabled": True})["session_id"]
    closed1 = create_session(c1, ws1, {"write_mode": "FAIL",
                                       "expires_in_seconds": 7200})["session_id"]
    close_session(c1, ws1, closed1)
    open2 = create_session(c2, ws1, {"expires_in_seconds": 3600})["session_id"]
    more = [create_session(c1, ws1)["session_id"] for _ in range(4)]
    other = create_session(c2, ws2, {"write_mode": "FAIL"})["session_id"]
    spaces = (ws1, ws2)

    before = snapshot(s, spaces)
    assert before[(ws1, "list")][1] == 7 and before[(ws2, "list")][1] == 1
    assert before[(ws1, closed1)]["status"] == "CLOSED"
    assert before[(ws1, open1)]["status"] == "OPEN"

    s.graceful()
    assert snapshot(s, spaces) == before

    s.restart()
    assert snapshot(s, spaces) == before

    # the restored state is live: closing, 409s, limits and creates all work
    c = s.client(s.user_all)
    check(c.put(session_path(ws1, closed1), json={}), 409, ALREADY_CLOSED)
    close_session(c, ws1, open1)
    close_session(c, ws1, open2)
    check(c.put(session_path(ws1, open2), json={}), 409, ALREADY_CLOSED)
    new = create_session(c, ws1)["session_id"]
    items, total = list_all(c, ws1)
    assert total == 8 and items[0]["session_id"] == new
    assert {i["session_id"]: i["status"] for i in items} == {
        open1: "CLOSED", closed1: "CLOSED", open2: "CLOSED", new: "OPEN",
        **{m: "OPEN" for m in more}}
    assert get_status(c, ws2, other)["status"] == "OPEN"

    # and once more across a graceful restart after new writes
    after = snapshot(s, spaces)
    s.graceful()
    assert snapshot(s, spaces) == after


def test_graceful_rereads_the_key_file(server_factory):
    s = server_factory()
    ws = "ws-new"
    newbie = User("New", "Comer", [ws])
    check(s.client(newbie).get(sessions_path(ws)), 401, INVALID_KEY)
    s.users.append(newbie)
    s.write_keys()
    sid = create_session(s.client(s.user_all), ws)["session_id"]
    s.graceful()
    s.close_clients()
    c = s.client(newbie)
    d = list_sessions(c, ws)
    assert d["total"] == 1 and d["data"][0]["session_id"] == sid
    assert "ws-other" in detail_of(c.get(sessions_path("ws-other")), 403)
    mine = create_session(c, ws)["session_id"]
    assert get_status(c, ws, mine)["created_by"] == newbie.created_by
    assert get_status(c, ws, sid)["status"] == "OPEN"


def lock_files_open(pid, server_dir):
    """How many descriptors of process pid name the SQLite writers' lock
    file (<database>.lock) under server_dir."""
    return sum(t.endswith(".lock") for t in files_open(pid, server_dir))


@sqlite_only("the writers' lock file is SQLite's")
def test_graceful_restarts_leave_no_lock_file_open(server_factory):
    """The parent's expiry sweep writes through a writer holding the lock
    file open for the sweep's run, whose connection it closes before
    returning, and a child closes a copy it inherited when it makes its own.
    Otherwise each restart left one more open in the parent and in every
    child (a lock the parent died holding would then outlive it)."""
    s = server_factory()
    for n in range(4):
        c = s.client(s.user_all)
        sid = create_session(c, f"ws-lockfd-{n}")["session_id"]
        assert get_status(c, f"ws-lockfd-{n}", sid)["status"] == "OPEN"
        time.sleep(1.5)  # the parent's monitor may sweep meanwhile
        counts = {pid: lock_files_open(pid, s.dir) for pid in [s.pid] + children_of(s.pid)}
        assert all(v <= 1 for v in counts.values()), (n, s.pid, counts)
        s.graceful()
        s.close_clients()

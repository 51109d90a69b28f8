"""Session lifecycle: create -> status -> list -> close, against a real httpd."""

import datetime as dt
import json
import os
import re
import threading
import time
import uuid

import pytest

from us_testkit.server import new_client
from us_testkit.slowlink import SlowLink
from us_testkit.api import (ALREADY_CLOSED, DEFAULT_LIFETIME, assert_ts_between, assert_uuid4,
                            check, close_session, create_session, get_status, list_all,
                            list_sessions, not_found_text, parse_ts, session_path,
                            sessions_path, unique_ws, utcnow)

LIST_ITEM_KEYS = {"session_id", "created_by", "created_at", "expires_at", "write_mode",
                  "status"}
STATUS_KEYS = {"session_id", "documentation_url", "expires_at", "ingestion_status",
               "status", "write_mode", "parallel_processing_enabled", "created_at",
               "created_by", "uploaded_files"}
AWS_FIELDS = {"key", "policy", "x-amz-algorithm", "x-amz-credential", "x-amz-date",
              "x-amz-signature"}


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

def check_create_body(server, body, t0, t1, lifetime):
    """Every field of a 201 create answer."""
    assert isinstance(body, dict), body
    assert {"session_id", "documentation_url", "expires_at",
            "aws_prefixed_request_config"} <= set(body), body
    assert_uuid4(body["session_id"])
    assert isinstance(body["documentation_url"], str) and body["documentation_url"]
    assert_ts_between(body["expires_at"], t0 + dt.timedelta(seconds=lifetime),
                      t1 + dt.timedelta(seconds=lifetime))
    cfg = body["aws_prefixed_request_config"]
    assert isinstance(cfg, dict) and {"url", "fields"} <= set(cfg), cfg
    assert isinstance(cfg["url"], str) and cfg["url"].startswith(server.public_url), cfg
    fields = cfg["fields"]
    assert isinstance(fields, dict) and AWS_FIELDS <= set(fields), fields
    for name in AWS_FIELDS:
        assert isinstance(fields[name], str) and fields[name], (name, fields)
    assert fields["key"].endswith("${filename}"), fields["key"]


def check_status_body(body, sid, user, status, write_mode, parallel, expires_at=None,
                      created_lo=None, created_hi=None):
    """Every field of a 200 status answer (counters all 0: no uploads here)."""
    assert isinstance(body, dict) and STATUS_KEYS <= set(body), body
    assert body["session_id"] == sid
    assert isinstance(body["documentation_url"], str) and body["documentation_url"]
    parse_ts(body["expires_at"])
    if expires_at is not None:
        assert body["expires_at"] == expires_at
    assert body["ingestion_status"] == {"failed_files": 0, "finished_files": 0,
                                        "pending_files": 0}, body
    assert body["status"] == status
    assert body["write_mode"] == write_mode
    assert body["parallel_processing_enabled"] is parallel
    created = parse_ts(body["created_at"])
    if created_lo is not None:
        assert_ts_between(body["created_at"], created_lo, created_hi)
    assert created <= parse_ts(body["expires_at"])
    assert body["created_by"] == user.created_by
    assert body["uploaded_files"] == 0


def check_list_item(item, sid, user, status, write_mode, expires_at=None, created_at=None):
    assert LIST_ITEM_KEYS <= set(item), item
    assert item["session_id"] == sid
    assert item["created_by"] == user.created_by
    parse_ts(item["created_at"])
    parse_ts(item["expires_at"])
    if expires_at is not None:
        assert item["expires_at"] == expires_at
    if created_at is not None:
        assert item["created_at"] == created_at
    assert item["write_mode"] == write_mode
    assert item["status"] == status


def timed_create(client, ws, body):
    t0 = utcnow()
    r = client.post(sessions_path(ws), json=body)
    t1 = utcnow()
    return check(r, 201), t0, t1


# ---------------------------------------------------------------------------
# the full lifecycle
# ---------------------------------------------------------------------------

def test_full_lifecycle(srv, api):
    ws = unique_ws()
    user = srv.user_all

    # empty workspace
    check(api.get(sessions_path(ws)), 200, {"data": [], "has_more": False, "total": 0})

    # create
    created, t0, t1 = timed_create(api, ws, {"write_mode": "OVERWRITE",
                                             "parallel_processing_enabled": True,
                                             "expires_in_seconds": 3600})
    check_create_body(srv, created, t0, t1, 3600)
    sid = created["session_id"]

    # status
    st = get_status(api, ws, sid)
    check_status_body(st, sid, user, "OPEN", "OVERWRITE", True,
                      expires_at=created["expires_at"], created_lo=t0, created_hi=t1)
    life = parse_ts(st["expires_at"]) - parse_ts(st["created_at"])
    assert abs(life.total_seconds() - 3600) <= 1.0, (st["created_at"], st["expires_at"])

    # list
    data = list_sessions(api, ws)
    assert data["total"] == 1 and data["has_more"] is False and len(data["data"]) == 1, data
    check_list_item(data["data"][0], sid, user, "OPEN", "OVERWRITE",
                    expires_at=created["expires_at"], created_at=st["created_at"])

    # close: 204, empty body
    r = api.put(session_path(ws, sid), json={"status": "CLOSED"})
    check(r, 204)

    st2 = get_status(api, ws, sid)
    check_status_body(st2, sid, user, "CLOSED", "OVERWRITE", True,
                      expires_at=created["expires_at"])
    assert st2["created_at"] == st["created_at"]

    data = list_sessions(api, ws)
    assert data["total"] == 1 and data["has_more"] is False, data
    check_list_item(data["data"][0], sid, user, "CLOSED", "OVERWRITE",
                    expires_at=created["expires_at"], created_at=st["created_at"])

    # close again: 409, for both spellings of the body
    check(api.put(session_path(ws, sid), json={"status": "CLOSED"}), 409, ALREADY_CLOSED)
    check(api.put(session_path(ws, sid), json={}), 409, ALREADY_CLOSED)
    assert get_status(api, ws, sid)["status"] == "CLOSED"

    # close an unknown id: the seed's exact text, trailing space included
    unknown = str(uuid.uuid4())
    check(api.put(session_path(ws, unknown), json={"status": "CLOSED"}), 404,
          {"detail": not_found_text(unknown)})
    assert not_found_text(unknown).endswith("correct. ")
    check(api.get(session_path(ws, unknown)), 404, {"detail": not_found_text(unknown)})


def test_close_with_empty_object_closes(srv, api):
    ws = unique_ws()
    sid = create_session(api, ws)["session_id"]
    check(api.put(session_path(ws, sid), json={}), 204)
    st = get_status(api, ws, sid)
    check_status_body(st, sid, srv.user_all, "CLOSED", "KEEP", False)
    check(api.put(session_path(ws, sid), json={}), 409, ALREADY_CLOSED)


def test_close_ignores_unknown_fields_and_accepts_json_variants(srv, api):
    ws = unique_ws()
    s1 = create_session(api, ws)["session_id"]
    s2 = create_session(api, ws)["session_id"]
    s3 = create_session(api, ws)["session_id"]
    check(api.put(session_path(ws, s1), json={"status": "CLOSED", "foo": [1, {"x": None}]}),
          204)
    check(api.put(session_path(ws, s2), content=b'{"status":"CLOSED"}',
                  headers={"Content-Type": "application/json; charset=utf-8"}), 204)
    check(api.put(session_path(ws, s3), content=b"{}",
                  headers={"Content-Type": "application/merge-patch+json"}), 204)
    for sid in (s1, s2, s3):
        assert get_status(api, ws, sid)["status"] == "CLOSED"


def test_create_defaults(srv, api):
    ws = unique_ws()
    created, t0, t1 = timed_create(api, ws, {})
    check_create_body(srv, created, t0, t1, DEFAULT_LIFETIME)
    sid = created["session_id"]
    st = get_status(api, ws, sid)
    check_status_body(st, sid, srv.user_all, "OPEN", "KEEP", False,
                      expires_at=created["expires_at"], created_lo=t0, created_hi=t1)
    data = list_sessions(api, ws)
    check_list_item(data["data"][0], sid, srv.user_all, "OPEN", "KEEP",
                    expires_at=created["expires_at"])


def test_create_ignores_unknown_fields(srv, api):
    ws = unique_ws()
    created, t0, t1 = timed_create(api, ws, {"foo": "bar", "status": "CLOSED",
                                             "expires_in_seconds": 100})
    check_create_body(srv, created, t0, t1, 100)
    st = get_status(api, ws, created["session_id"])
    check_status_body(st, created["session_id"], srv.user_all, "OPEN", "KEEP", False)


def test_create_write_modes(srv, api):
    ws = unique_ws()
    sids = {}
    for mode in ("KEEP", "OVERWRITE", "FAIL"):
        sids[mode] = create_session(api, ws, {"write_mode": mode})["session_id"]
    for mode, sid in sids.items():
        check_status_body(get_status(api, ws, sid), sid, srv.user_all, "OPEN", mode, False)
    items, total = list_all(api, ws)
    assert total == 3
    assert [i["session_id"] for i in items] == [sids["FAIL"], sids["OVERWRITE"], sids["KEEP"]]
    for item, mode in zip(items, ("FAIL", "OVERWRITE", "KEEP")):
        check_list_item(item, sids[mode], srv.user_all, "OPEN", mode)


def test_create_parallel_flag_lax_bools(srv, api):
    """pydantic's lax bool rules: these inputs are accepted."""
    ws = unique_ws()
    cases = [(True, True), (False, False), ("yes", True), ("on", True), ("1", True),
             (1, True), (0, False), ("true", True), ("false", False), ("no", False),
             ("off", False), ("0", False)]
    for value, expected in cases:
        sid = create_session(api, ws, {"parallel_processing_enabled": value})["session_id"]
        st = get_status(api, ws, sid)
        assert st["parallel_processing_enabled"] is expected, (value, st)
        check_status_body(st, sid, srv.user_all, "OPEN", "KEEP", expected)


def test_expires_in_seconds_honoured(srv, api):
    ws = unique_ws()
    for secs in (60, 3600, 86400):
        created, t0, t1 = timed_create(api, ws, {"expires_in_seconds": secs})
        check_create_body(srv, created, t0, t1, secs)
        st = get_status(api, ws, created["session_id"])
        assert st["expires_at"] == created["expires_at"]
        life = parse_ts(st["expires_at"]) - parse_ts(st["created_at"])
        assert abs(life.total_seconds() - secs) <= 1.0, st


def test_expires_in_seconds_lax_ints(srv, api):
    """pydantic lax int rules: a numeric string and an integral float are ints."""
    ws = unique_ws()
    for value, secs in (("120", 120), (240.0, 240)):
        created, t0, t1 = timed_create(api, ws, {"expires_in_seconds": value})
        check_create_body(srv, created, t0, t1, secs)


def test_session_id_forms_address_the_same_session(srv, api):
    ws = unique_ws()
    sid = create_session(api, ws)["session_id"]
    hexid = sid.replace("-", "")
    forms = [sid, sid.upper(), hexid, hexid.upper(), "%7B" + sid + "%7D", "urn:uuid:" + sid]
    for form in forms:
        st = get_status(api, ws, form)
        assert st["session_id"] == sid, (form, st)
        check_status_body(st, sid, srv.user_all, "OPEN", "KEEP", False)
    # close through a non-canonical form, 409 through another
    check(api.put(session_path(ws, "urn:uuid:" + sid), json={}), 204)
    check(api.put(session_path(ws, hexid), json={}), 409, ALREADY_CLOSED)
    assert get_status(api, ws, "%7B" + sid + "%7D")["status"] == "CLOSED"

    # unknown ids: the 404 text always carries the canonical form
    unknown = str(uuid.uuid4())
    for form in (unknown.upper(), unknown.replace("-", ""), "%7B" + unknown + "%7D",
                 "urn:uuid:" + unknown):
        check(api.get(session_path(ws, form)), 404, {"detail": not_found_text(unknown)})
        check(api.put(session_path(ws, form), json={}), 404,
              {"detail": not_found_text(unknown)})


# ---------------------------------------------------------------------------
# list
# ---------------------------------------------------------------------------

def test_list_paging(srv, api):
    ws = unique_ws()
    sids = [create_session(api, ws)["session_id"] for _ in range(23)]
    newest_first = list(reversed(sids))

    # default limit is 10
    d = list_sessions(api, ws)
    assert d["total"] == 23 and d["has_more"] is True, d
    assert [i["session_id"] for i in d["data"]] == newest_first[:10]

    # walk pages of 10
    expected_pages = [(newest_first[0:10], True), (newest_first[10:20], True),
                      (newest_first[20:23], False), ([], False)]
    for page, (ids, more) in enumerate(expected_pages, start=1):
        d = list_sessions(api, ws, limit=10, page_number=page)
        assert [i["session_id"] for i in d["data"]] == ids, (page, d)
        assert d["has_more"] is more, (page, d)
        assert d["total"] == 23, (page, d)
        for item in d["data"]:
            check_list_item(item, item["session_id"], srv.user_all, "OPEN", "KEEP")

    # pages of 7: 7, 7, 7, 2
    seen = []
    for page, more in ((1, True), (2, True), (3, True), (4, False)):
        d = list_sessions(api, ws, limit=7, page_number=page)
        assert d["has_more"] is more and d["total"] == 23, (page, d)
        assert len(d["data"]) == (7 if page < 4 else 2), (page, d)
        seen += [i["session_id"] for i in d["data"]]
    assert seen == newest_first

    # one page holds all
    d = list_sessions(api, ws, limit=100)
    assert [i["session_id"] for i in d["data"]] == newest_first
    assert d["has_more"] is False and d["total"] == 23
    d = list_sessions(api, ws, limit=23)
    assert len(d["data"]) == 23 and d["has_more"] is False and d["total"] == 23
    d = list_sessions(api, ws, limit=22)
    assert len(d["data"]) == 22 and d["has_more"] is True and d["total"] == 23
    d = list_sessions(api, ws, limit=1, page_number=23)
    assert [i["session_id"] for i in d["data"]] == [sids[0]]
    assert d["has_more"] is False and d["total"] == 23
    d = list_sessions(api, ws, limit=100, page_number=5)
    assert d["data"] == [] and d["has_more"] is False and d["total"] == 23, d

    # newest first also by created_at
    created = [parse_ts(i["created_at"]) for i in list_all(api, ws)[0]]
    assert created == sorted(created, reverse=True)

    # closed sessions are still listed, with their status
    close_session(api, ws, sids[5])
    items, total = list_all(api, ws)
    assert total == 23
    by_id = {i["session_id"]: i for i in items}
    assert by_id[sids[5]]["status"] == "CLOSED"
    assert sum(1 for i in items if i["status"] == "OPEN") == 22


def test_list_shows_every_user_of_the_workspace(srv):
    ws = unique_ws()
    c1 = srv.client(srv.user_all)
    c2 = srv.client(srv.user_all2)
    s1 = create_session(c1, ws, {"write_mode": "FAIL"})["session_id"]
    s2 = create_session(c2, ws, {"write_mode": "OVERWRITE"})["session_id"]
    s3 = create_session(c1, ws)["session_id"]
    for client in (c1, c2):
        d = list_sessions(client, ws)
        assert d["total"] == 3 and d["has_more"] is False, d
        assert [i["session_id"] for i in d["data"]] == [s3, s2, s1]
        check_list_item(d["data"][0], s3, srv.user_all, "OPEN", "KEEP")
        check_list_item(d["data"][1], s2, srv.user_all2, "OPEN", "OVERWRITE")
        check_list_item(d["data"][2], s1, srv.user_all, "OPEN", "FAIL")
    # a user can see and close another user's session of the workspace
    check_status_body(get_status(c1, ws, s2), s2, srv.user_all2, "OPEN", "OVERWRITE", False)
    close_session(c1, ws, s2)
    check_status_body(get_status(c2, ws, s2), s2, srv.user_all2, "CLOSED", "OVERWRITE",
                      False)


def test_list_is_expired_filter_without_expired_sessions(srv, api):
    ws = unique_ws()
    a = create_session(api, ws)["session_id"]
    b = create_session(api, ws)["session_id"]
    close_session(api, ws, a)
    check(api.get(sessions_path(ws), params={"is_expired": "true"}), 200,
          {"data": [], "has_more": False, "total": 0})
    d = list_sessions(api, ws, is_expired="false")
    assert [i["session_id"] for i in d["data"]] == [b, a]
    assert d["total"] == 2 and d["has_more"] is False
    assert [i["status"] for i in d["data"]] == ["OPEN", "CLOSED"]


# ---------------------------------------------------------------------------
# expiry
# ---------------------------------------------------------------------------

def test_session_expires(srv, api):
    ws = unique_ws()
    keep = create_session(api, ws)["session_id"]
    closed = create_session(api, ws)["session_id"]
    close_session(api, ws, closed)

    t0 = time.monotonic()
    created, c0, c1 = timed_create(api, ws, {"expires_in_seconds": 1})
    check_create_body(srv, created, c0, c1, 1)
    sid = created["session_id"]
    st = get_status(api, ws, sid)
    if time.monotonic() - t0 < 0.8:
        assert st["status"] == "OPEN", st

    # poll until EXPIRED (expires_at + a margin)
    deadline = time.monotonic() + 6
    while True:
        st = get_status(api, ws, sid)
        if st["status"] == "EXPIRED" or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    check_status_body(st, sid, srv.user_all, "EXPIRED", "KEEP", False,
                      expires_at=created["expires_at"])
    assert utcnow() >= parse_ts(created["expires_at"])

    # list shows it EXPIRED; filters
    items, total = list_all(api, ws)
    assert total == 3
    assert [i["session_id"] for i in items] == [sid, closed, keep]
    assert [i["status"] for i in items] == ["EXPIRED", "CLOSED", "OPEN"]
    for value in ("true", "1", "yes"):
        d = list_sessions(api, ws, is_expired=value)
        assert d["total"] == 1 and d["has_more"] is False, (value, d)
        assert len(d["data"]) == 1, d
        check_list_item(d["data"][0], sid, srv.user_all, "EXPIRED", "KEEP",
                        expires_at=created["expires_at"])
    for value in ("false", "0", "no"):
        d = list_sessions(api, ws, is_expired=value)
        assert d["total"] == 2 and d["has_more"] is False, (value, d)
        assert [i["session_id"] for i in d["data"]] == [closed, keep]

    # closing an expired session: 409, and it stays EXPIRED
    check(api.put(session_path(ws, sid), json={"status": "CLOSED"}), 409, ALREADY_CLOSED)
    check(api.put(session_path(ws, sid), json={}), 409, ALREADY_CLOSED)
    assert get_status(api, ws, sid)["status"] == "EXPIRED"
    assert get_status(api, ws, keep)["status"] == "OPEN"


# ---------------------------------------------------------------------------
# concurrency
# ---------------------------------------------------------------------------

def test_concurrent_closes_exactly_one_wins(srv, api):
    ws = unique_ws()
    sid = create_session(api, ws)["session_id"]
    n = 100
    barrier = threading.Barrier(n, timeout=60)
    results = [None] * n

    def worker(i):
        # Each thread sends its close on a connection of its own, opened after
        # the barrier: a keep-alive connection opened earlier could be closed
        # by httpd's idle-child maintenance just as the request goes out.
        try:
            with new_client(base_url=srv.api_base, headers=srv.user_all.headers,
                            timeout=60) as c:
                barrier.wait()
                r = c.put(session_path(ws, sid), json={"status": "CLOSED"})
                results[i] = (r.status_code, r.content, r.headers.get("content-type", ""))
        except Exception as e:  # reported below
            barrier.abort()
            results[i] = ("exception", repr(e), "")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert all(r is not None for r in results), results

    wins = [r for r in results if r[0] == 204]
    losses = [r for r in results if r[0] == 409]
    others = [r for r in results if r[0] not in (204, 409)]
    assert not others, others[:5]
    assert len(wins) == 1, f"{len(wins)} closes won"
    assert wins[0][1] == b""
    assert len(losses) == n - 1
    for status, content, ctype in losses:
        assert ctype.split(";")[0].strip() == "application/json"
        assert json.loads(content) == ALREADY_CLOSED

    check_status_body(get_status(api, ws, sid), sid, srv.user_all, "CLOSED", "KEEP", False)


@pytest.mark.skipif(os.environ.get("US_IT_STORE") == "pgsql", reason="the store plays no part")
def test_the_sdk_closes_its_session_after_an_idle_keep_alive_connection(srv):
    """The official SDK creates a session, uploads (elsewhere) and closes it
    with httpx, which keeps an idle connection 5 s and does not send a PUT
    again that finds the connection closed. Over a network (here: the close
    held 0.3 s on its way), a close sent after 4.9 s idle reached a server
    whose KeepAliveTimeout was httpd's default 5 s after it had closed the
    connection: "Server disconnected without sending a response". The
    module raises such a KeepAliveTimeout to 20 s and says so (US0026)."""
    ws = unique_ws("ka")
    with SlowLink(("127.0.0.1", srv.port), 0.3, b"PUT /api/v1/") as link, \
            new_client(base_url=f"{link.endpoint}/api/v1/workspaces/",
                       headers=srv.user_all.headers) as sdk:  # httpx's default pool
        sid = create_session(sdk, ws)["session_id"]
        time.sleep(4.9)
        close_session(sdk, ws, sid)
        assert link.delayed == 1
    assert get_status(srv.client(srv.user_all), ws, sid)["status"] == "CLOSED"
    assert re.search(r"US0026.*KeepAliveTimeout 5000 ms of .* raised to 20 s", srv.log_text()), \
        srv.log_tail()

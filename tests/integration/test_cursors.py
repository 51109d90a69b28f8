"""before / after cursors on GET /upload_sessions and GET
/upload_sessions/{id}/files (API.md "List sessions", "Session files"): the
rows just after / before the cursor's row in the list's own order, shown in
that order; `total` counts the whole (filtered) list, `has_more` says whether
rows follow in the page's direction; an unknown id is an empty page. A
cursor together with page_number, or both cursors, is refused (422)."""

import uuid

from us_testkit.api import (check, close_session, create_session, list_sessions,
                            session_path, sessions_path, unique_ws, uuid_reason_char,
                            uuid_reason_length, v422)
from us_testkit.ingest import new_session, upload_one
from us_testkit.uploads import session_files_page


def e_query_uuid(name, value, reason):
    return {"type": "uuid_parsing", "loc": ["query", name],
            "msg": f"Input should be a valid UUID, {reason}", "input": value,
            "ctx": {"error": reason}}


def e_value(name, value, msg):
    return {"type": "value_error", "loc": ["query", name], "msg": f"Value error, {msg}",
            "input": value}


def ids(page, key="session_id"):
    return [i[key] for i in page["data"]]


def test_session_list_cursors_walk_both_ways(srv, api):
    ws = unique_ws("cur")
    for _ in range(7):
        create_session(api, ws)
    full = list_sessions(api, ws, limit=100)
    order = ids(full)
    assert len(order) == 7 and full["total"] == 7 and full["has_more"] is False, full

    # forwards from the first row, pages of 3: the client's usual walk
    seen, cursor = [order[0]], order[0]
    while True:
        page = list_sessions(api, ws, limit=3, after=cursor)
        assert page["total"] == 7, page
        seen += ids(page)
        if not page["has_more"]:
            break
        assert len(page["data"]) == 3, page
        cursor = page["data"][-1]["session_id"]
    assert seen == order

    check(api.get(sessions_path(ws), params={"after": order[1], "limit": 2}), 200,
          {"data": full["data"][2:4], "has_more": True, "total": 7})
    check(api.get(sessions_path(ws), params={"after": order[4], "limit": 2}), 200,
          {"data": full["data"][5:7], "has_more": False, "total": 7})
    check(api.get(sessions_path(ws), params={"after": order[6]}), 200,
          {"data": [], "has_more": False, "total": 7})
    # before: the rows just before, still newest first
    check(api.get(sessions_path(ws), params={"before": order[5], "limit": 2}), 200,
          {"data": full["data"][3:5], "has_more": True, "total": 7})
    check(api.get(sessions_path(ws), params={"before": order[2], "limit": 10}), 200,
          {"data": full["data"][0:2], "has_more": False, "total": 7})
    check(api.get(sessions_path(ws), params={"before": order[0]}), 200,
          {"data": [], "has_more": False, "total": 7})
    # the cursor in the other canonical forms pydantic accepts
    check(api.get(sessions_path(ws), params={"after": order[1].replace("-", "").upper(),
                                             "limit": 1}), 200,
          {"data": full["data"][2:3], "has_more": True, "total": 7})


def test_session_list_cursor_with_is_expired_and_unknown_ids(srv, api):
    ws = unique_ws("cur")
    sids = [create_session(api, ws)["session_id"] for _ in range(4)]
    close_session(api, ws, sids[1])
    full = list_sessions(api, ws, limit=100)
    order = ids(full)
    # a cursor the filter leaves out still marks the place: is_expired=true
    # lists nothing here, whatever the cursor
    check(api.get(sessions_path(ws), params={"after": order[0], "is_expired": "true"}), 200,
          {"data": [], "has_more": False, "total": 0})
    check(api.get(sessions_path(ws), params={"after": order[0], "is_expired": "false",
                                             "limit": 100}), 200,
          {"data": full["data"][1:], "has_more": False, "total": 4})
    # unknown, aborted, or another workspace's session: an empty page
    unknown = str(uuid.uuid4())
    check(api.get(sessions_path(ws), params={"after": unknown}), 200,
          {"data": [], "has_more": False, "total": 4})
    other_ws = unique_ws("cur")
    other = create_session(api, other_ws)["session_id"]
    check(api.get(sessions_path(ws), params={"before": other}), 200,
          {"data": [], "has_more": False, "total": 4})
    gone = create_session(api, ws)["session_id"]
    assert api.delete(session_path(ws, gone)).status_code == 204
    check(api.get(sessions_path(ws), params={"after": gone}), 200,
          {"data": [], "has_more": False, "total": 4})


def test_session_list_cursor_refusals(srv, api):
    ws = unique_ws("cur")
    sid = create_session(api, ws)["session_id"]
    path = sessions_path(ws)
    check(api.get(path, params={"after": "abc"}), 422,
          v422(e_query_uuid("after", "abc", uuid_reason_length(3))))
    bad = "12345678-1234-1234-1234-12345678901g"
    check(api.get(path, params={"before": bad}), 422,
          v422(e_query_uuid("before", bad, uuid_reason_char("g", 36))))
    check(api.get(path, params={"before": sid, "after": sid}), 422,
          v422(e_value("before", sid, "before and after cannot be given together")))
    check(api.get(path, params={"after": sid, "page_number": "2"}), 422,
          v422(e_value("page_number", "2", "page_number cannot be given together with after")))
    check(api.get(path, params={"before": sid, "page_number": "1"}), 422,
          v422(e_value("page_number", "1",
                       "page_number cannot be given together with before")))
    # every problem at once, in the parameters' order
    check(api.get(path, params={"limit": "0", "after": "abc"}), 422,
          v422({"type": "greater_than_equal", "loc": ["query", "limit"],
                "msg": "Input should be greater than or equal to 1", "input": "0",
                "ctx": {"ge": 1}},
               e_query_uuid("after", "abc", uuid_reason_length(3))))


def test_session_files_cursors(srv, api):
    ws = unique_ws("cur")
    sid, cfg = new_session(api, ws)
    other_sid, other_cfg = new_session(api, ws)
    for i in range(6):
        upload_one(api, cfg, f"f{i}.txt", b"x" * (i + 1))
    upload_one(api, cfg, "f0.txt.meta.json", b"{}")
    upload_one(api, other_cfg, "g.txt", b"g")
    full = session_files_page(api, ws, sid, limit=100)
    order = ids(full, "file_ingestion_id")
    assert len(order) == 6 and full["total"] == 6, full
    path = session_path(ws, sid) + "/files"

    check(api.get(path, params={"after": order[0], "limit": 2}), 200,
          {"data": full["data"][1:3], "has_more": True, "total": 6})
    check(api.get(path, params={"after": order[3], "limit": 2}), 200,
          {"data": full["data"][4:6], "has_more": False, "total": 6})
    check(api.get(path, params={"before": order[4], "limit": 3}), 200,
          {"data": full["data"][1:4], "has_more": True, "total": 6})
    check(api.get(path, params={"before": order[1], "limit": 3}), 200,
          {"data": full["data"][0:1], "has_more": False, "total": 6})
    check(api.get(path, params={"after": order[2], "ingestion_status": "PENDING",
                                "limit": 10}), 200,
          {"data": full["data"][3:], "has_more": False, "total": 6})
    check(api.get(path, params={"after": order[0], "ingestion_status": "FINISHED"}), 200,
          {"data": [], "has_more": False, "total": 0})
    # another session's file, or an unknown id: an empty page
    other_id = ids(session_files_page(api, ws, other_sid), "file_ingestion_id")[0]
    check(api.get(path, params={"after": other_id}), 200,
          {"data": [], "has_more": False, "total": 6})
    check(api.get(path, params={"before": str(uuid.uuid4())}), 200,
          {"data": [], "has_more": False, "total": 6})
    # refusals as on the session list, after the path's own problems
    check(api.get(path, params={"after": "abc"}), 422,
          v422(e_query_uuid("after", "abc", uuid_reason_length(3))))
    check(api.get(path, params={"after": order[0], "before": order[1]}), 422,
          v422(e_value("before", order[1], "before and after cannot be given together")))
    check(api.get(path, params={"after": order[0], "page_number": "1"}), 422,
          v422(e_value("page_number", "1", "page_number cannot be given together with after")))
    check(api.get(session_path(ws, "1234") + "/files", params={"before": "abc"}), 422,
          v422({"type": "uuid_parsing", "loc": ["path", "session_id"],
                "msg": f"Input should be a valid UUID, {uuid_reason_length(4)}",
                "input": "1234", "ctx": {"error": uuid_reason_length(4)}},
               e_query_uuid("before", "abc", uuid_reason_length(3))))

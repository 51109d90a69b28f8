"""DELETE /upload_sessions/{id} (API.md "Abort session", an extension):
an OPEN session and everything uploaded into it are discarded without
ingestion; 204, then the session is gone (404), its bytes are removed, its
user's open-session slot is free and its policy is refused (403)."""

import os
import time
import uuid

from us_testkit.api import (ALREADY_CLOSED, check, close_session, create_session, detail_of,
                            e_uuid_parsing, get_status, list_sessions, not_found_text,
                            session_path, sessions_path, unique_ws, uuid_reason_length, v422)
from us_testkit.ingest import list_ws_files, new_session, session_files, upload_one
from us_testkit.procs import wait_for
from us_testkit.uploads import s3_error, upload


def session_dir(srv, sid):
    return os.path.join(srv.dir, "state", "data", "sessions", sid)


def entries(path):
    return sorted(os.listdir(path)) if os.path.isdir(path) else []


def test_abort_discards_the_session_and_its_uploads(srv, api):
    ws = unique_ws("abort")
    sid, cfg = new_session(api, ws)
    keep, _ = new_session(api, ws)
    for name in ("a.txt", "b.pdf", "a.txt.meta.json"):
        upload_one(api, cfg, name, b"{}" if name.endswith(".json") else b"bytes of " + name.encode())
    assert len(entries(session_dir(srv, sid))) == 3
    assert len(session_files(api, ws, sid)) == 2

    r = api.delete(session_path(ws, sid))
    assert r.status_code == 204 and r.content == b"", (r.status_code, r.text)
    # the ingest workers clear the bytes, woken by the abort
    assert wait_for(lambda: entries(session_dir(srv, sid)) == [], 5), entries(session_dir(srv, sid))
    check(api.get(session_path(ws, sid)), 404, {"detail": not_found_text(sid)})
    check(api.get(session_path(ws, sid) + "/files"), 404, {"detail": not_found_text(sid)})
    listed = list_sessions(api, ws, limit=100)
    assert [i["session_id"] for i in listed["data"]] == [keep] and listed["total"] == 1, listed
    # its policy is refused; nothing of it is ever ingested
    s3_error(upload(api, cfg, "late.txt", b"late"), 403, "AccessDenied",
             "The upload session does not exist.")
    assert entries(session_dir(srv, sid)) == []
    # a second abort, or a close, finds no session
    check(api.delete(session_path(ws, sid)), 404, {"detail": not_found_text(sid)})
    check(api.put(session_path(ws, sid), json={}), 404, {"detail": not_found_text(sid)})
    time.sleep(0.5)  # the ingest workers run the queued clear: still nothing published
    assert list_ws_files(srv, api, ws) == []
    assert get_status(api, ws, keep)["status"] == "OPEN"


def test_abort_of_a_closed_session_is_409_and_unknown_is_404(srv, api):
    ws = unique_ws("abort-409")
    sid = create_session(api, ws)["session_id"]
    close_session(api, ws, sid)
    check(api.delete(session_path(ws, sid)), 409, ALREADY_CLOSED)
    assert get_status(api, ws, sid)["status"] == "CLOSED"
    other = str(uuid.uuid4())
    check(api.delete(session_path(ws, other)), 404, {"detail": not_found_text(other)})
    # another workspace's session is unknown here
    sid2 = create_session(api, ws)["session_id"]
    check(api.delete(session_path(unique_ws("abort-other"), sid2)), 404,
          {"detail": not_found_text(sid2)})
    assert get_status(api, ws, sid2)["status"] == "OPEN"
    check(api.delete(session_path(ws, "abc")), 422,
          v422(e_uuid_parsing("abc", uuid_reason_length(3))))


def test_abort_frees_the_open_session_slot(server_factory):
    s = server_factory(max_open=1)
    c = s.client(s.user_all)
    ws = "ws-abort-slot"
    sid = create_session(c, ws)["session_id"]
    detail_of(c.post(sessions_path(ws), json={}), 406)
    r = c.delete(session_path(ws, sid))
    assert r.status_code == 204 and r.content == b"", (r.status_code, r.text)
    create_session(c, ws)
    detail_of(c.post(sessions_path(ws), json={}), 406)

"""The workspaces API (API.md "Workspaces", issue #14 item 9): create, list,
read and delete workspaces, honouring the key's grants; a delete takes every
session, upload and file of the workspace at once, for every client, and no
other workspace's; it survives a concurrent ingestion and a kill -9."""

import os
import threading
import time
import uuid

import pytest

from us_testkit.api import (METHOD_NOT_ALLOWED, NOT_AUTHENTICATED, WS_NOT_FOUND, check,
                            create_session, e_json_invalid, e_missing, get_status,
                            not_found_text, session_path, sessions_path, unique_ws, v422)
from us_testkit.ingest import (close_and_wait, download, httpd_pids, kill9, list_ws_files,  # noqa: F401
                               make_server, module_so, new_session, no_file, post_file,
                               session_files, shared_server_options, start_after_kill,
                               upload_all, upload_one, wait_ingested, ws_files_path)
from us_testkit.uploads import s3_error, upload

POSIX = os.environ.get("US_IT_STORAGE") != "s3"
PATTERN = "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


def ws_url(srv, name=None):
    base = f"{srv.public_url}/api/v1/workspaces"
    return base if name is None else f"{base}/{name}"


def exists_msg(name):
    return {"detail": f"This workspace {name} already exists. Try giving your new workspace "
                      "a different name."}


def short_msg(name):
    return {"detail": f"The name of the workspace '{name}' must contain more than 3 characters. "
                      "Give your workspace a longer name."}


def forbidden(name):
    return {"detail": f"You don't have access to the workspace '{name}'."}


def e_pattern(value):
    return {"type": "string_pattern_mismatch", "loc": ["body", "name"],
            "msg": f"String should match pattern '{PATTERN}'", "input": value,
            "ctx": {"pattern": PATTERN}}


def create(srv, client, name, status=201):
    body = check(client.post(ws_url(srv), json={"name": name}), status)
    if status == 201:
        assert set(body) == {"name", "workspace_id"} and body["name"] == name, body
        assert uuid.UUID(body["workspace_id"]).version == 4, body
        assert str(uuid.UUID(body["workspace_id"])) == body["workspace_id"], body
    return body


def delete(srv, client, name):
    return check(client.delete(ws_url(srv, name)), 204)


def listed(srv, client):
    body = check(client.get(ws_url(srv)), 200)
    assert isinstance(body, list), body
    for it in body:
        assert set(it) == {"name", "workspace_id"}, it
    names = [it["name"] for it in body]
    assert names == sorted(names), names
    return {it["name"]: it["workspace_id"] for it in body}


def granted_client(srv, grants):
    """A client whose key is granted exactly `grants`, once the server has
    re-read the key file."""
    user = srv.add_user("Wanda", "Space", grants)
    c = srv.client(user)
    deadline = time.monotonic() + 15
    while c.get(ws_url(srv)).status_code == 401:
        assert time.monotonic() < deadline, "the new key was not loaded"
        time.sleep(0.2)
    return c


def blob(srv, fid):
    return os.path.join(srv.dir, "state", "data", "files", fid)


def session_dir(srv, sid):
    return os.path.join(srv.dir, "state", "data", "sessions", sid)


def wait_gone(paths, timeout=30):
    """Every path removed within timeout (the trash sweep and the ingest
    workers' clear jobs run every few seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        left = [p for p in paths if os.path.exists(p) and
                (not os.path.isdir(p) or os.listdir(p))]
        if not left:
            return
        assert time.monotonic() < deadline, f"{len(left)} left, e.g. {left[:3]}"
        time.sleep(0.25)


# --------------------------------------------------------------------------
# every endpoint: status and body
# --------------------------------------------------------------------------

def test_create_get_list_delete(srv, api):
    name = unique_ws("wsapi")
    check(api.get(ws_url(srv, name)), 404, WS_NOT_FOUND)
    made = create(srv, api, name)
    check(api.get(ws_url(srv, name)), 200, made)
    assert listed(srv, api)[name] == made["workspace_id"]
    check(api.post(ws_url(srv), json={"name": name}), 409, exists_msg(name))
    delete(srv, api, name)
    check(api.get(ws_url(srv, name)), 404, WS_NOT_FOUND)
    assert name not in listed(srv, api)
    check(api.delete(ws_url(srv, name)), 404, WS_NOT_FOUND)
    # the name is free at once, with a new id
    again = create(srv, api, name)
    assert again["workspace_id"] != made["workspace_id"]
    check(api.get(ws_url(srv, name)), 200, again)
    # HEAD answers as GET without a body
    r = api.head(ws_url(srv, name))
    assert r.status_code == 200 and r.content == b"", r


def test_create_validation(srv, api):
    for short in ("abc", "ab", "a", "", "a-b"):
        check(api.post(ws_url(srv), json={"name": short}), 400, short_msg(short))
    for bad in ("bad name", "-abcd", "abcd/e", "a" * 65, "wsé-x"):
        check(api.post(ws_url(srv), json={"name": bad}), 422, v422(e_pattern(bad)))
    check(api.post(ws_url(srv), json={"name": 1234}), 422, v422(
        {"type": "string_type", "loc": ["body", "name"], "msg": "Input should be a valid string",
         "input": 1234}))
    check(api.post(ws_url(srv), json={"other": 1}), 422, v422(
        {"type": "missing", "loc": ["body", "name"], "msg": "Field required",
         "input": {"other": 1}}))
    check(api.post(ws_url(srv)), 422, v422(e_missing()))
    raw = b'{"name": '
    check(api.post(ws_url(srv), content=raw, headers={"Content-Type": "application/json"}),
          422, v422(e_json_invalid(raw)))
    check(api.put(ws_url(srv), json={"name": "abcd"}), 405, METHOD_NOT_ALLOWED)
    assert api.put(ws_url(srv), json={}).headers["allow"] == "GET, HEAD, POST"
    check(api.post(ws_url(srv, "abcde"), json={}), 405, METHOD_NOT_ALLOWED)
    assert api.post(ws_url(srv, "abcde"), json={}).headers["allow"] == "GET, HEAD, DELETE"
    # a name that cannot be a workspace, in the path: 404 for every method
    check(api.get(ws_url(srv, "bad%20name")), 404, WS_NOT_FOUND)
    check(api.delete(ws_url(srv, "bad%20name")), 404, WS_NOT_FOUND)
    # no key: 401
    anon = srv.client(None)
    r = anon.get(ws_url(srv))
    check(r, 401, NOT_AUTHENTICATED)
    check(anon.post(ws_url(srv), json={"name": "abcde"}), 401, NOT_AUTHENTICATED)
    check(anon.delete(ws_url(srv, "abcde")), 401, NOT_AUTHENTICATED)


def test_data_makes_a_workspace_exist(srv, api):
    by_session, by_file = unique_ws("wsdata-s"), unique_ws("wsdata-f")
    create_session(api, by_session)
    post_file(api, by_file, "a.txt", b"aaa")
    names = listed(srv, api)
    for name in (by_session, by_file):
        body = check(api.get(ws_url(srv, name)), 200)
        assert body == {"name": name, "workspace_id": names[name]}, body
        check(api.post(ws_url(srv), json={"name": name}), 409, exists_msg(name))
    # data in a created workspace keeps its id
    made = create(srv, api, unique_ws("wsdata-c"))
    create_session(api, made["name"])
    check(api.get(ws_url(srv, made["name"])), 200, made)


def test_grants(srv, api):
    mine, also, theirs = unique_ws("wsg-mine"), unique_ws("wsg-also"), unique_ws("wsg-theirs")
    c = granted_client(srv, [mine, also])
    create(srv, api, theirs)
    check(c.post(ws_url(srv), json={"name": theirs}), 403, forbidden(theirs))
    check(c.get(ws_url(srv, theirs)), 403, forbidden(theirs))
    check(c.delete(ws_url(srv, theirs)), 403, forbidden(theirs))
    other = unique_ws("wsg-new")
    check(c.post(ws_url(srv), json={"name": other}), 403, forbidden(other))
    check(api.get(ws_url(srv, other)), 404, WS_NOT_FOUND)  # nothing made
    made = create(srv, c, mine)
    # only the granted names that exist; `also` was never used
    check(c.get(ws_url(srv)), 200, [made])
    check(c.get(ws_url(srv, also)), 404, WS_NOT_FOUND)
    # a granted name needs no creation: its first session makes it exist
    create_session(c, also)
    assert listed(srv, c) == {mine: made["workspace_id"],
                              also: check(api.get(ws_url(srv, also)), 200)["workspace_id"]}
    delete(srv, c, also)
    check(c.get(ws_url(srv)), 200, [made])
    check(api.get(ws_url(srv, theirs)), 200)  # untouched


# --------------------------------------------------------------------------
# what a delete takes, and what it leaves
# --------------------------------------------------------------------------

def test_sdk_fixture_flow(srv, api):
    """As the official SDK's integration fixture: create a workspace, upload
    into a session, close it, wait for the files, delete the workspace."""
    name, other = unique_ws("wssdk"), unique_ws("wssdk-other")
    create(srv, api, name)
    sid, cfg = new_session(api, name)
    files = [(f"doc{i}.txt", f"content {i}".encode()) for i in range(5)]
    files.append(("doc0.txt.meta.json", b'{"k": "v"}'))
    upload_all(cfg, files, concurrency=4)
    close_and_wait(api, name, sid, 5)
    items = list_ws_files(srv, api, name)
    assert sorted(i["name"] for i in items) == [f"doc{i}.txt" for i in range(5)], items
    ids = [i["file_id"] for i in items]
    keep = post_file(api, other, "keep.txt", b"kept")["file_id"]
    keep_sid, keep_cfg = new_session(api, other)
    upload_one(api, keep_cfg, "pending.txt", b"pending")

    delete(srv, api, name)
    check(api.get(ws_url(srv, name)), 404, WS_NOT_FOUND)
    assert name not in listed(srv, api)
    check(api.get(session_path(name, sid)), 404, {"detail": not_found_text(sid)})
    assert list_ws_files(srv, api, name) == []
    for fid in ids:
        no_file(api, name, fid)
    listing = check(api.get(sessions_path(name)), 200)
    assert listing["data"] == [] and listing["total"] == 0, listing
    if POSIX:
        for fid in ids:
            assert not os.path.exists(blob(srv, fid)), fid
        wait_gone([session_dir(srv, sid)])
    # the other workspace is whole
    assert download(api, other, keep).content == b"kept"
    assert get_status(api, other, keep_sid)["uploaded_files"] == 1
    assert [i["name"] for i in session_files(api, other, keep_sid).values()] == ["pending.txt"]
    # the name is free again, and empty
    create(srv, api, name)
    assert list_ws_files(srv, api, name) == []


def test_delete_stops_open_sessions_and_frees_their_slots(server_factory):
    s = server_factory(max_open=1)
    c = s.client(s.user_all)
    name = unique_ws("wsopen")
    sid, cfg = new_session(c, name)
    upload_one(c, cfg, "a.txt", b"aaa")
    check(c.post(sessions_path(unique_ws("wsopen-b")), json={}), 406)
    delete(s, c, name)
    check(c.get(session_path(name, sid)), 404, {"detail": not_found_text(sid)})
    check(c.put(session_path(name, sid), json={}), 404, {"detail": not_found_text(sid)})
    if POSIX:  # with s3 storage the bucket takes the bytes itself
        s3_error(upload(c, cfg, "late.txt", b"late"), 403, "AccessDenied",
                 "The upload session does not exist.")
        wait_gone([session_dir(s, sid)])
    # the user's one slot is free
    create_session(c, unique_ws("wsopen-b"))


def test_delete_during_an_ingestion(srv, api):
    """A delete while the workspace's session is being ingested: the answer
    is 204, and then no file of it is listed or kept, whatever the ingestion
    had done; another workspace ingesting at the same time is untouched."""
    name, other = unique_ws("wsing"), unique_ws("wsing-other")
    n = 120
    sid, cfg = new_session(api, name)
    osid, ocfg = new_session(api, other)
    files = [(f"f{i:03}.txt", os.urandom(2048)) for i in range(n)]
    upload_all(cfg, files, concurrency=8)
    upload_all(ocfg, files[:20], concurrency=8)
    ids = [i["file_ingestion_id"] for i in session_files(api, name, sid).values()]
    assert len(ids) == n
    check(api.put(session_path(name, sid), json={}), 204)
    check(api.put(session_path(other, osid), json={}), 204)
    time.sleep(0.05)
    delete(srv, api, name)
    check(api.get(ws_url(srv, name)), 404, WS_NOT_FOUND)
    check(api.get(session_path(name, sid)), 404, {"detail": not_found_text(sid)})
    assert list_ws_files(srv, api, name) == []
    time.sleep(1)  # a batch in flight has ended by now: still nothing
    assert list_ws_files(srv, api, name) == []
    wait_ingested(api, other, osid, 20)
    assert len(list_ws_files(srv, api, other)) == 20
    if POSIX:
        wait_gone([blob(srv, fid) for fid in ids] + [session_dir(srv, sid)])


def test_kill9_during_a_delete(make_server):
    """kill -9 of every httpd process while a delete runs, then a restart:
    the workspace is either whole or entirely gone, never half; once gone,
    its bytes go too (the trash and the clear jobs survive the crash)."""
    s = make_server()
    # the parent dies first; a child it still saw die may be logged
    s.expect_log(r"AH00052: child pid \d+ exit signal Killed", whole_life=True)
    api = s.client(s.user_all)
    name, other = unique_ws("wskill"), unique_ws("wskill-other")
    n = 150
    fids = [post_file(api, name, f"d{i}.txt", f"direct {i}".encode())["file_id"] for i in range(n)]
    sid, cfg = new_session(api, name)
    upload_all(cfg, [(f"u{i}.txt", b"uploaded") for i in range(30)], concurrency=8)
    keep = post_file(api, other, "keep.txt", b"kept")["file_id"]
    outcome = {}

    def deleter():
        try:
            outcome["status"] = api.delete(ws_url(s, name)).status_code
        except Exception as e:  # the connection dies with the server
            outcome["error"] = repr(e)

    t = threading.Thread(target=deleter)
    t.start()
    time.sleep(0.01)
    kill9(s)
    t.join(30)
    api = start_after_kill(s)
    r = api.get(ws_url(s, name))
    listed_files = list_ws_files(s, api, name)
    if r.status_code == 200:  # the delete had not committed: all of it is there
        assert sorted(i["file_id"] for i in listed_files) == sorted(fids), outcome
        assert get_status(api, name, sid)["uploaded_files"] == 30
        delete(s, api, name)
        listed_files = list_ws_files(s, api, name)
    else:
        check(r, 404, WS_NOT_FOUND)
        assert outcome.get("status") in (None, 204), outcome
    assert listed_files == []
    check(api.get(session_path(name, sid)), 404, {"detail": not_found_text(sid)})
    for fid in fids[:5]:
        no_file(api, name, fid)
    assert download(api, other, keep).content == b"kept"
    if POSIX:
        wait_gone([blob(s, fid) for fid in fids] + [session_dir(s, sid)])
    print(f"kill -9 during a delete: {outcome}, workspace after restart {r.status_code}")


@pytest.mark.parametrize("method", ["get", "delete"])
def test_unknown_workspace_is_404(srv, api, method):
    name = unique_ws("wsnone")
    check(getattr(api, method)(ws_url(srv, name)), 404, WS_NOT_FOUND)

"""DELETE /files/{file_id} and DELETE /files (API.md "Workspace files"):
rows and bytes go together; 200 with body null; 404 with a detail; the
body rules as pydantic's; other workspaces untouched; a download already
running completes."""

import os
import re
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from us_testkit.api import check, e_uuid_parsing, unique_ws, uuid_reason_length, v422
from us_testkit.ingest import (close_and_wait, list_ws_files, new_session, post_file, upload_one,
                               ws_files_path)


def blob(srv, fid):
    return os.path.join(srv.dir, "state", "data", "files", fid)


def names_of(srv, api, ws):
    return sorted(i["name"] for i in list_ws_files(srv, api, ws))


def test_delete_one_file(srv, api):
    ws = unique_ws("del-one")
    fid = post_file(api, ws, "a.txt", b"aaa")["file_id"]
    keep = post_file(api, ws, "b.txt", b"bbb")["file_id"]
    assert os.path.exists(blob(srv, fid))
    check(api.delete(ws_files_path(ws, fid)), 200, None)
    assert not os.path.exists(blob(srv, fid))
    assert names_of(srv, api, ws) == ["b.txt"]
    check(api.get(ws_files_path(ws, fid)), 404,
          {"detail": f"There's no file with the ID '{fid}' in the workspace."})
    check(api.delete(ws_files_path(ws, fid)), 404,
          {"detail": f"There's no file with the ID '{fid}' in the workspace."})
    # another workspace cannot delete it
    check(api.delete(ws_files_path(unique_ws("del-other"), keep)), 404,
          {"detail": f"There's no file with the ID '{keep}' in the workspace."})
    assert os.path.exists(blob(srv, keep))
    check(api.delete(ws_files_path(ws, "abc")), 422,
          v422(e_uuid_parsing("abc", uuid_reason_length(3), name="file_id")))


def test_delete_by_names_and_all(srv, api):
    ws, other = unique_ws("del-names"), unique_ws("del-names-other")
    ids = {}
    for name in ("a.txt", "b.txt", "c.txt", "d.txt"):
        ids[name] = post_file(api, ws, name, name.encode())["file_id"]
    ids["a2"] = post_file(api, ws, "a.txt", b"second a")["file_id"]  # KEEP: two named a.txt
    o = post_file(api, other, "a.txt", b"other")["file_id"]
    check(api.request("DELETE", ws_files_path(ws), json={"names": ["a.txt", "c.txt", "nope.txt", "a.txt"]}),
          200, None)
    assert names_of(srv, api, ws) == ["b.txt", "d.txt"]
    for k in ("a.txt", "a2", "c.txt"):
        assert not os.path.exists(blob(srv, ids[k])), k
    check(api.request("DELETE", ws_files_path(ws), json={"names": []}), 200, None)
    assert names_of(srv, api, ws) == ["b.txt", "d.txt"]
    # no body: every file of the workspace, and no other
    check(api.delete(ws_files_path(ws)), 200, None)
    assert names_of(srv, api, ws) == []
    assert not os.path.exists(blob(srv, ids["b.txt"]))
    assert names_of(srv, api, other) == ["a.txt"] and os.path.exists(blob(srv, o))


def test_a_name_holding_nul_deletes_nothing(srv, api):
    # cut at its NUL, "a.txt\0other.txt" would name a.txt: no stored name
    # holds a NUL, so it names no file
    ws = unique_ws("del-nul")
    fid = post_file(api, ws, "a.txt", b"keep me")["file_id"]
    check(api.request("DELETE", ws_files_path(ws), json={"names": ["a.txt\u0000other.txt"]}),
          200, None)
    assert names_of(srv, api, ws) == ["a.txt"]
    assert os.path.exists(blob(srv, fid))
    check(api.request("DELETE", ws_files_path(ws), json={"names": ["b\u0000", "a.txt"]}),
          200, None)
    assert names_of(srv, api, ws) == []


@pytest.mark.posix_layout
def test_a_delete_of_many_files_removes_a_bounded_number_of_bytes_at_once(srv, api):
    # s3: each file's bytes cost the object store a request or two; beyond
    # 256 they are the trash sweep's, and the answer does not wait for them
    ws = unique_ws("del-many")
    with ThreadPoolExecutor(8) as pool:
        ids = [f["file_id"] for f in
               pool.map(lambda i: post_file(api, ws, f"f{i:03}.txt", b"x"), range(300))]
    check(api.delete(ws_files_path(ws)), 200, None)
    assert names_of(srv, api, ws) == []
    assert re.search(r"US0308: delete: 44 of 300 files' bytes left to the trash sweep",
                     srv.log_text()), srv.log_tail()
    # (the sweep removes the rest: test_workspaces.py's kill -9 test waits for it)
    assert len([f for f in ids if os.path.exists(blob(srv, f))]) <= 44


def test_delete_body_validation(srv, api):
    ws = unique_ws("del-422")
    post_file(api, ws, "a.txt", b"a")
    check(api.request("DELETE", ws_files_path(ws), json={"name": ["a.txt"]}), 422, v422(
        {"type": "missing", "loc": ["body", "names"], "msg": "Field required",
         "input": {"name": ["a.txt"]}}))
    check(api.request("DELETE", ws_files_path(ws), json={"names": "a.txt"}), 422, v422(
        {"type": "list_type", "loc": ["body", "names"], "msg": "Input should be a valid list",
         "input": "a.txt"}))
    check(api.request("DELETE", ws_files_path(ws), json={"names": ["a.txt", 3, None]}), 422, v422(
        {"type": "string_type", "loc": ["body", "names", 1], "msg": "Input should be a valid string",
         "input": 3},
        {"type": "string_type", "loc": ["body", "names", 2], "msg": "Input should be a valid string",
         "input": None}))
    r = api.request("DELETE", ws_files_path(ws), content=b"{not json",
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["detail"][0]["type"] == "json_invalid", r.text
    assert names_of(srv, api, ws) == ["a.txt"]


def test_delete_of_ingested_files_and_a_download_in_progress(srv, api):
    ws = unique_ws("del-ingested")
    sid, cfg = new_session(api, ws)
    big = os.urandom(8 * 1024 * 1024)
    upload_one(api, cfg, "big.bin", big)
    upload_one(api, cfg, "small.txt", b"small")
    close_and_wait(api, ws, sid, 2)
    items = {i["name"]: i["file_id"] for i in list_ws_files(srv, api, ws)}
    # a download that started before the delete reads the whole file
    with api.stream("GET", ws_files_path(ws, items["big.bin"])) as r:
        assert r.status_code == 200
        chunks = r.iter_bytes(65536)
        first = next(chunks)
        check(api.request("DELETE", ws_files_path(ws), json={"names": ["big.bin"]}), 200, None)
        rest = b"".join(chunks)
    assert first + rest == big
    assert not os.path.exists(blob(srv, items["big.bin"]))
    assert names_of(srv, api, ws) == ["small.txt"]


def test_delete_races_a_direct_upload_of_the_same_name(srv, api):
    """Each upload lands wholly before or after a delete of its name: what
    stays listed has its bytes, and what is gone has none."""
    ws = unique_ws("del-race")
    posted = []

    def poster():
        for k in range(15):
            posted.append(post_file(api, ws, "same.txt", b"v%d" % k)["file_id"])
    t = threading.Thread(target=poster)
    t.start()
    while t.is_alive():
        check(api.request("DELETE", ws_files_path(ws), json={"names": ["same.txt"]}), 200, None)
    t.join()
    listed = {i["file_id"] for i in list_ws_files(srv, api, ws)}
    for fid in posted:
        assert os.path.exists(blob(srv, fid)) == (fid in listed), fid
    check(api.delete(ws_files_path(ws)), 200, None)
    assert list_ws_files(srv, api, ws) == []
    assert not any(os.path.exists(blob(srv, f)) for f in posted)
    assert uuid.UUID(posted[0])

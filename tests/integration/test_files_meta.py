"""Metadata updates (API.md "Workspace files"): PUT /files/{id}/meta
replaces, PATCH merges (RFC 7396: null removes a key, objects merge
deeply), POST /files/update-meta merges many and reports the unknown ids;
422 shapes as pydantic's; concurrent PATCHes lose no key."""

import threading
import uuid

from us_testkit.api import (check, e_json_invalid, e_model_attributes_type, e_uuid_parsing,
                            unique_ws, uuid_reason_length, v422)
from us_testkit.ingest import get_meta, list_ws_files, post_file, ws_files_path


def meta_path(ws, fid):
    return ws_files_path(ws, fid, meta=True)


def no_file(fid):
    return {"detail": f"There's no file with the ID '{fid}' in the workspace."}


def test_put_replaces_and_patch_merges(srv, api):
    ws = unique_ws("meta-set")
    fid = post_file(api, ws, "a.txt", b"a", meta={"k": 1, "nested": {"x": 1, "y": 2}, "gone": True})["file_id"]
    check(api.patch(meta_path(ws, fid), json={"gone": None, "nested": {"y": None, "z": [1]},
                                              "new": "v"}),
          200, {"k": 1, "nested": {"x": 1, "z": [1]}, "new": "v"})
    assert get_meta(api, ws, fid) == {"k": 1, "nested": {"x": 1, "z": [1]}, "new": "v"}
    check(api.put(meta_path(ws, fid), json={"only": "this"}), 200, {"only": "this"})
    assert get_meta(api, ws, fid) == {"only": "this"}
    check(api.put(meta_path(ws, fid), json={}), 200, {})
    item = [i for i in list_ws_files(srv, api, ws) if i["file_id"] == fid][0]
    assert item["meta"] == {}
    # the list filter sees the new metadata
    check(api.patch(meta_path(ws, fid), json={"kind": "news"}), 200, {"kind": "news"})
    page = check(api.get(ws_files_path(ws), params={"filter": "kind eq 'news'"}), 200)
    assert [i["file_id"] for i in page["data"]] == [fid], page


def test_meta_update_errors(srv, api):
    ws = unique_ws("meta-err")
    fid = post_file(api, ws, "a.txt", b"a", meta={"k": 1})["file_id"]
    other = str(uuid.uuid4())
    check(api.put(meta_path(ws, other), json={"a": 1}), 404, no_file(other))
    check(api.patch(meta_path(ws, other), json={"a": 1}), 404, no_file(other))
    check(api.patch(meta_path(unique_ws("meta-other"), fid), json={"a": 1}), 404, no_file(fid))
    check(api.put(meta_path(ws, "abc"), json={"a": 1}), 422,
          v422(e_uuid_parsing("abc", uuid_reason_length(3), name="file_id")))
    check(api.put(meta_path(ws, fid), json=[1, 2]), 422, v422(
        {"type": "model_attributes_type", "loc": ["body"],
         "msg": "Input should be a valid dictionary or object to extract fields from",
         "input": [1, 2]}))
    check(api.patch(meta_path(ws, fid), content=b""), 422, v422(
        {"type": "missing", "loc": ["body"], "msg": "Field required", "input": None}))
    # FastAPI decodes the body first: invalid JSON is reported alone, other
    # body problems after the path's
    bad_id = v422(e_uuid_parsing("abc", uuid_reason_length(3), name="file_id"))["detail"]
    json_type = {"Content-Type": "application/json"}
    check(api.put(meta_path(ws, "abc"), content=b"{bad", headers=json_type), 422,
          v422(e_json_invalid(b"{bad")))
    check(api.patch(meta_path(ws, "abc"), json=[1]), 422,
          v422(*bad_id, e_model_attributes_type([1])))
    check(api.put(meta_path(ws, "abc"), content=b""), 422,
          v422(*bad_id, {"type": "missing", "loc": ["body"], "msg": "Field required",
                         "input": None}))
    assert get_meta(api, ws, fid) == {"k": 1}


def test_bulk_update_meta(srv, api):
    ws = unique_ws("meta-bulk")
    a = post_file(api, ws, "a.txt", b"a", meta={"k": 1})["file_id"]
    b = post_file(api, ws, "b.txt", b"b")["file_id"]
    unknown = str(uuid.uuid4())
    check(api.post(ws_files_path(ws) + "/update-meta",
                   json={a: {"k": None, "t": "x"}, b: {"n": 2}, unknown: {"z": 1}, "not-a-uuid": {}}),
          200, {"failed_count": 2, "failed_files": [
              {"file_id": unknown, "error_type": "FILE_NOT_FOUND",
               "error_message": f"There's no file with the ID '{unknown}' in the workspace."},
              {"file_id": "not-a-uuid", "error_type": "FILE_NOT_FOUND",
               "error_message": "There's no file with the ID 'not-a-uuid' in the workspace."}]})
    assert get_meta(api, ws, a) == {"t": "x"}
    assert get_meta(api, ws, b) == {"n": 2}
    check(api.post(ws_files_path(ws) + "/update-meta", json={a: [1]}), 422, v422(
        {"type": "dict_type", "loc": ["body", a], "msg": "Input should be a valid dictionary",
         "input": [1]}))
    check(api.post(ws_files_path(ws) + "/update-meta", json={}), 200,
          {"failed_count": 0, "failed_files": []})
    assert get_meta(api, ws, a) == {"t": "x"}


def test_bulk_update_meta_key_holding_nul_is_no_file_id(srv, api):
    # cut at its NUL the key would be the file's id: it is quoted whole and
    # names no file
    ws = unique_ws("meta-nul-key")
    fid = post_file(api, ws, "a.txt", b"x", meta={"k": "old"})["file_id"]
    key = fid + "\u0000junk"
    check(api.post(ws_files_path(ws) + "/update-meta", json={key: {"k": "new"}}), 200,
          {"failed_count": 1, "failed_files": [
              {"file_id": key, "error_type": "FILE_NOT_FOUND",
               "error_message": f"There's no file with the ID '{key}' in the workspace."}]})
    assert get_meta(api, ws, fid) == {"k": "old"}
    check(api.post(ws_files_path(ws) + "/update-meta", json={key: [1]}), 422, v422(
        {"type": "dict_type", "loc": ["body", key], "msg": "Input should be a valid dictionary",
         "input": [1]}))


def test_patches_cannot_grow_metadata_past_4_mib(srv, api):
    """Each body is within the 1 MiB limit, but patches that keep adding
    keys would grow a file's metadata without end (every read of the file
    parses it whole): a result over 4 MiB is refused, 413 on PATCH, a failed
    file on update-meta, and nothing changes."""
    ws = unique_ws("meta-grow")
    big = "x" * 1_000_000  # in an array: PostgreSQL indexes top-level strings
    fid = post_file(api, ws, "a.txt", b"a")["file_id"]
    want = {}
    for k in "abcd":  # four of them: 4,000,0xx bytes, under 4 MiB
        want[k] = [big]
        r = api.patch(meta_path(ws, fid), json={k: [big]})
        assert r.status_code == 200 and r.json() == want, (k, r.status_code)
    check(api.patch(meta_path(ws, fid), json={"e": [big]}), 413,
          {"detail": "The metadata is too large."})
    check(api.post(ws_files_path(ws) + "/update-meta", json={fid: {"e": [big]}}), 200,
          {"failed_count": 1, "failed_files": [
              {"file_id": fid, "error_type": "META_TOO_LARGE",
               "error_message": "The metadata is too large."}]})
    assert get_meta(api, ws, fid) == want
    # what takes a key away is stored, as ever
    check(api.patch(meta_path(ws, fid), json={"a": None, "e": [big]}), 200,
          {k: v for k, v in {**want, "e": [big]}.items() if k != "a"})


def test_concurrent_patches_lose_no_key(srv, api):
    ws = unique_ws("meta-race")
    fid = post_file(api, ws, "a.txt", b"a")["file_id"]
    errors = []

    def patcher(n):
        for k in range(10):
            r = api.patch(meta_path(ws, fid), json={f"k{n}-{k}": k})
            if r.status_code != 200:
                errors.append(r.text)
    threads = [threading.Thread(target=patcher, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert get_meta(api, ws, fid) == {f"k{n}-{k}": k for n in range(4) for k in range(10)}


def test_filter_totals_follow_every_metadata_write(srv, api):
    """The filtered count reads the store's key table: a PUT, a PATCH, a
    bulk update, an overwrite and a delete each show in `total` and the
    items at once; a number written as a string, a null and a nested key
    keep their own semantics."""
    ws = unique_ws("meta-total")
    flt = "kind eq 'news' and n ge 2"

    def listed(f=flt):
        page = check(api.get(ws_files_path(ws), params={"filter": f, "limit": 10}), 200)
        names = sorted(i["name"] for i in page["data"])
        assert page["total"] == len(names) and page["has_more"] is False, page
        return names

    a = post_file(api, ws, "a.txt", b"a", meta={"kind": "news", "n": 2})["file_id"]
    b = post_file(api, ws, "b.txt", b"b", meta={"kind": "news", "n": "3"})["file_id"]
    c = post_file(api, ws, "c.txt", b"c", meta={"kind": "blog", "n": 5, "sub": {"x": 1}})["file_id"]
    assert listed() == ["a.txt"]
    assert listed("kind eq 'news' and n eq '3'") == ["b.txt"]
    check(api.patch(meta_path(ws, c), json={"kind": "news"}), 200, {"kind": "news", "n": 5, "sub": {"x": 1}})
    assert listed() == ["a.txt", "c.txt"]
    assert listed("kind eq 'news' and sub/x eq 1") == ["c.txt"]
    check(api.put(meta_path(ws, b), json={"kind": "news", "n": 4}), 200, {"kind": "news", "n": 4})
    assert listed() == ["a.txt", "b.txt", "c.txt"]
    check(api.patch(meta_path(ws, a), json={"n": None}), 200, {"kind": "news"})
    assert listed() == ["b.txt", "c.txt"]
    assert listed("kind eq 'news' and n eq null") == ["a.txt"]
    check(api.post(ws_files_path(ws) + "/update-meta", json={b: {"kind": None}}), 200,
          {"failed_count": 0, "failed_files": []})
    assert listed() == ["c.txt"]
    post_file(api, ws, "c.txt", b"c2", meta={"kind": "news", "n": 1}, write_mode="OVERWRITE")
    assert listed() == []
    assert listed("kind eq 'news'") == ["a.txt", "c.txt"]
    check(api.delete(ws_files_path(ws, a)), 200, None)
    assert listed("kind eq 'news'") == ["c.txt"]


NUL_MSG = "Value error, metadata cannot hold the character U+0000."


def test_metadata_holding_nul_is_refused_on_every_path(srv, api):
    """PostgreSQL's jsonb cannot hold U+0000, so no store keeps it: every
    way in refuses it the same on both stores, and the stored metadata
    stays as it was."""
    ws = unique_ws("meta-nul")
    fid = post_file(api, ws, "a.txt", b"a", meta={"k": 1})["file_id"]
    for how in ("field", "part"):
        body = post_file(api, ws, "b.txt", b"b", meta={"k": "x\x00y"}, meta_as=how, status=400)
        assert body == {"detail": "metadata cannot hold the character U+0000."}, how
    body = post_file(api, ws, "b.txt", b"b", meta={"k\x00": 1}, status=400)
    assert body == {"detail": "metadata cannot hold the character U+0000."}
    bad = {"n": {"list": ["ok", "x\x00"]}}
    check(api.put(meta_path(ws, fid), json=bad), 422, v422(
        {"type": "value_error", "loc": ["body"], "msg": NUL_MSG, "input": bad}))
    check(api.patch(meta_path(ws, fid), json=bad), 422, v422(
        {"type": "value_error", "loc": ["body"], "msg": NUL_MSG, "input": bad}))
    check(api.post(ws_files_path(ws) + "/update-meta", json={fid: bad}), 422, v422(
        {"type": "value_error", "loc": ["body", fid], "msg": NUL_MSG, "input": bad}))
    assert get_meta(api, ws, fid) == {"k": 1}
    assert [i["name"] for i in list_ws_files(srv, api, ws)] == ["a.txt"]
    # an escaped backslash before "u0000" is text, not a NUL
    check(api.put(meta_path(ws, fid), json={"k": "\\u0000"}), 200, {"k": "\\u0000"})

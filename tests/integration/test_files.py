"""The workspace files API (API.md "Workspace files"): direct upload
(POST /files, as the official SDK sends it), download, metadata, the list
with its name filter and the SDK's cursor, write modes, 404 / 409 / 422,
HEAD, and workspace isolation. Blobs live at <data_dir>/files/<file_id>."""

import json
import os
import random
import uuid

import httpx
import pytest

from us_testkit.api import (INVALID_KEY, NOT_AUTHENTICATED, assert_ts_between, check,
                            e_enum_write_mode, e_ge, e_le, e_uuid_parsing, unique_ws, utcnow,
                            uuid_reason_char, uuid_reason_length, v422)
from us_testkit.ingest import (MSG_BAD_META, MSG_FILE_EXISTS, download, get_meta,  # noqa: F401
                               list_ws_files, module_so, no_file, post_file, sdk_cursor,
                               shared_server_options, ws_files_page, ws_files_path,
                               new_session, upload_one, close_and_wait)


def ids_named(srv, api, ws, name):
    return [i["file_id"] for i in list_ws_files(srv, api, ws, name=name) if i["name"] == name]


# --------------------------------------------------------------------------
# upload, download, meta, list item
# --------------------------------------------------------------------------

@pytest.mark.posix_layout
def test_direct_upload_then_download_meta_and_list(srv, api):
    ws = unique_ws("files-one")
    data = b"hello, files\n" * 100
    meta = {"source": "unit", "n": 1, "nested": {"list": [1, "two", None]}, "t": "caf\u00e9"}
    t0 = utcnow()
    fid = post_file(api, ws, "hello.txt", data, meta=meta)["file_id"]
    t1 = utcnow()
    assert uuid.UUID(fid).version == 4

    r = download(api, ws, fid)
    assert r.content == data
    assert r.headers["content-type"] == "text/plain; charset=utf-8", r.headers
    assert r.headers["content-length"] == str(len(data))
    assert r.headers["content-disposition"] == "attachment; filename*=UTF-8''hello.txt"
    assert get_meta(api, ws, fid) == meta

    page = ws_files_page(api, ws)
    assert page["total"] == 1 and page["has_more"] is False, page
    item = page["data"][0]
    assert item == {"file_id": fid, "name": "hello.txt", "size": len(data), "meta": meta,
                    "url": f"/api/v1/workspaces/{ws}/files/{fid}",
                    "created_at": item["created_at"], "characters": len(data), "languages": None}
    assert_ts_between(item["created_at"], t0, t1)
    # the blob on disk is the file
    with open(os.path.join(srv.dir, "state", "data", "files", fid), "rb") as f:
        assert f.read() == data


def test_items_carry_characters_of_text_files_from_both_upload_paths(srv, api):
    """`characters`: a text file's length in characters (code points, not
    bytes), null for other files and for text that is not UTF-8; `languages`
    null; `url` the path. Counted at POST /files and at ingestion."""
    ws = unique_ws("files-chars")
    text = ("caf\u00e9 \u20ac \U0001F600\n" * 5000).encode()  # 9 characters, 15 bytes a line
    posted = {"p.txt": text, "p.md": b"# t\n", "p.pdf": b"%PDF-1.4 text", "p.csv": b"\xff\xfe",
              "empty.json": b""}
    for name, data in posted.items():
        if data:
            post_file(api, ws, name, data)
    sid, cfg = new_session(api, ws)
    uploaded = {"s.txt": text, "S.HTML": "<p>\u00e9</p>".encode(), "s.docx": b"PK\x03\x04",
                "s.xml": b"<a>\xc3</a>"}
    for name, data in uploaded.items():
        upload_one(api, cfg, name, data)
    close_and_wait(api, ws, sid, len(uploaded))
    got = {i["name"]: i for i in list_ws_files(srv, api, ws)}
    want = {"p.txt": 9 * 5000, "p.md": 4, "p.pdf": None, "p.csv": None,
            "s.txt": 9 * 5000, "S.HTML": 8, "s.docx": None, "s.xml": None}
    assert {n: i["characters"] for n, i in got.items()} == want, got
    for n, i in got.items():
        assert i["languages"] is None and i["url"] == f"/api/v1/workspaces/{ws}/files/{i['file_id']}", i


def test_head_answers_headers_only(srv, api):
    ws = unique_ws("files-head")
    data = b"x" * 4321
    fid = post_file(api, ws, "h.txt", data)["file_id"]
    r = api.head(ws_files_path(ws, fid))
    assert r.status_code == 200, r
    assert r.content == b""
    assert r.headers["content-length"] == str(len(data))
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    r = api.head(ws_files_path(ws, str(uuid.uuid4())))
    assert r.status_code == 404 and r.content == b"", r


def test_content_type_follows_the_extension(srv, api):
    ws = unique_ws("files-ctype")
    cases = {
        "a.txt": "text/plain; charset=utf-8",
        "B.TXT": "text/plain; charset=utf-8",
        "c.md": "text/markdown; charset=utf-8",
        "d.json": "application/json",
        "e.pdf": "application/pdf",
        "f.csv": "text/csv; charset=utf-8",
        "g.docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "noext": "application/octet-stream",
        "h.unknownext": "application/octet-stream",
    }
    for name, ctype in cases.items():
        data = f"content of {name}".encode()
        fid = post_file(api, ws, name, data)["file_id"]
        r = download(api, ws, fid)
        assert r.content == data
        assert r.headers["content-type"] == ctype, (name, r.headers)


# --------------------------------------------------------------------------
# meta
# --------------------------------------------------------------------------

def test_meta_as_form_field_as_part_null_or_absent(srv, api):
    ws = unique_ws("files-meta")
    meta = {"k": "v", "num": 2.5, "flag": True}
    cases = [
        ("field.txt", meta, "field", meta),    # SDK direct_upload_in_memory
        ("part.txt", meta, "part", meta),      # SDK direct_upload_path
        ("null-field.txt", None, "field", {}),  # json.dumps(None) == "null"
        ("null-part.txt", None, "part", {}),
        ("absent.txt", None, None, {}),
        ("empty-obj.txt", {}, "field", {}),
    ]
    want = {}
    for name, m, how, expect in cases:
        fid = post_file(api, ws, name, name.encode(), meta=m, meta_as=how)["file_id"]
        assert get_meta(api, ws, fid) == expect, name
        assert download(api, ws, fid).content == name.encode()
        want[name] = expect
    items = list_ws_files(srv, api, ws)
    assert {i["name"]: i["meta"] for i in items} == want


@pytest.mark.posix_layout
def test_meta_that_is_not_an_object_is_refused(server_factory, module_so):
    # a server of its own: on the shared one, other tests' ingestion adds
    # files to the directory this test watches
    srv = server_factory(module=module_so)
    api = srv.client(srv.user_all)
    ws = unique_ws("files-badmeta")
    blobs = os.path.join(srv.dir, "state", "data", "files")

    def stored():
        return set(os.listdir(blobs)) if os.path.isdir(blobs) else set()

    before = stored()
    for bad in ("[1, 2]", '"text"', "42", "{not json", "true"):
        for how in ("field", "part"):
            body = post_file(api, ws, "x.txt", b"data", meta=bad, meta_as=how, status=400)
            assert body == {"detail": MSG_BAD_META}, (bad, how)
    # nothing was stored, no blob and no temp file left
    assert ws_files_page(api, ws) == {"data": [], "total": 0, "has_more": False}
    assert stored() <= before


UNSUPPORTED = {"detail": "Unsupported Media Type: the body must be multipart/form-data."}


def test_missing_file_part_is_422_and_a_body_not_a_form_415(srv, api):
    ws = unique_ws("files-nofile")
    r = api.post(ws_files_path(ws), files={"meta": (None, "{}")})
    check(r, 422, v422({"type": "missing", "loc": ["body", "file"], "msg": "Field required",
                        "input": None}))
    # not a form at all: 415, whatever the body
    check(api.post(ws_files_path(ws), json={"file": "x"}), 415, UNSUPPORTED)
    check(api.post(ws_files_path(ws), content=b"just text",
                   headers={"Content-Type": "text/plain"}), 415, UNSUPPORTED)
    check(api.post(ws_files_path(ws), content=b"no type"), 415, UNSUPPORTED)
    check(api.post(ws_files_path(ws)), 415, UNSUPPORTED)
    check(api.post(ws_files_path(ws), content=b"x",
                   headers={"Content-Type": "multipart/form-datax; boundary=b"}), 415, UNSUPPORTED)
    # a form without its boundary cannot be read
    check(api.post(ws_files_path(ws), content=b"x",
                   headers={"Content-Type": "multipart/form-data"}), 400,
          {"detail": "There was an error parsing the body"})
    assert ws_files_page(api, ws)["total"] == 0


def test_text_field_with_file_name_creates_a_text_file(srv, api):
    """`text` + the query's file_name instead of a `file` part, as a
    multipart field or an url-encoded form (the SDK's older
    direct_upload_text sends data={"text", "meta"}); meta defaults to {}."""
    ws = unique_ws("files-text")
    text = "Grüße aus dem Text\n" * 10
    cases = [("multi.txt", {"text": (None, text), "meta": (None, json.dumps({"k": 1}))}, None,
              {"k": 1}),
             ("multi-nometa.txt", {"text": (None, text)}, None, {}),
             ("form.txt", None, {"text": text, "meta": json.dumps({"k": "v"})}, {"k": "v"}),
             ("form-nometa.md", None, {"text": text}, {})]
    want = {}
    for name, files, form, meta in cases:
        r = api.post(ws_files_path(ws), params={"file_name": name}, files=files, data=form)
        fid = check(r, 201)["file_id"]
        assert download(api, ws, fid).content == text.encode(), name
        assert get_meta(api, ws, fid) == meta, name
        want[fid] = (name, meta)
    items = list_ws_files(srv, api, ws)
    assert {i["file_id"]: (i["name"], i["meta"]) for i in items} == want
    for i in items:
        assert i["size"] == len(text.encode()) and i["characters"] == len(text), i
    # file_name names a file part too
    r = api.post(ws_files_path(ws), params={"file_name": "renamed.txt"},
                 files={"file": ("original.txt", b"bytes")})
    fid = check(r, 201)["file_id"]
    assert [i["name"] for i in list_ws_files(srv, api, ws) if i["file_id"] == fid] == \
        ["renamed.txt"]


def test_url_encoded_text_is_decoded_exactly(srv, api):
    """The url-encoded form's `text` is every byte it encodes: a NUL does
    not cut it short, '+' is a space, a '%' without two hex digits is kept;
    a second `text` is refused as in a multipart form."""
    ws = unique_ws("files-urlform")
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    cases = [(b"text=abc%00def", b"abc\x00def"),
             (b"text=a+b%2Bc%zz%4&meta=null", b"a b+c%zz%4"),
             (b"meta=%7B%22k%22%3A+2%7D&text=%E2%82%AC%0D%0A", "€\r\n".encode())]
    for i, (body, stored) in enumerate(cases):
        r = api.post(ws_files_path(ws), params={"file_name": f"t{i}.txt"}, content=body,
                     headers=form)
        fid = check(r, 201)["file_id"]
        assert download(api, ws, fid).content == stored, body
    assert get_meta(api, ws, fid) == {"k": 2}
    check(api.post(ws_files_path(ws), params={"file_name": "twice.txt"},
                   content=b"text=a&text=b", headers=form), 400,
          {"detail": "Send one text field only."})
    # only `text` and `meta` are read: a field named file is no file, and
    # Starlette's 1,000-field limit is a multipart form's
    check(api.post(ws_files_path(ws), params={"file_name": "f.txt"}, content=b"file=hello",
                   headers=form), 422,
          v422({"type": "missing", "loc": ["body", "file"], "msg": "Field required",
                "input": None}))
    many = b"&".join(b"f%d=v" % i for i in range(1001)) + b"&text=many"
    r = api.post(ws_files_path(ws), params={"file_name": "many.txt"}, content=many, headers=form)
    assert download(api, ws, check(r, 201)["file_id"]).content == b"many"
    assert ws_files_page(api, ws)["total"] == len(cases) + 1


def test_text_field_refusals(srv, api):
    ws = unique_ws("files-text-bad")
    path = ws_files_path(ws)
    missing_name = v422({"type": "missing", "loc": ["query", "file_name"],
                         "msg": "Field required", "input": None})
    check(api.post(path, files={"text": (None, "t")}), 422, missing_name)
    check(api.post(path, data={"text": "t"}), 422, missing_name)
    check(api.post(path, data={"meta": "{}"}), 422,
          v422({"type": "missing", "loc": ["body", "file"], "msg": "Field required",
                "input": None}))
    both = {"detail": "Send either a file part or a text field, not both."}
    check(api.post(path, params={"file_name": "a.txt"},
                   files={"text": (None, "t"), "file": ("b.txt", b"b")}), 400, both)
    check(api.post(path, params={"file_name": "a.txt"},
                   files={"file": ("b.txt", b"b"), "text": (None, "t")}), 400, both)
    check(api.post(path, files={"text": (None, "t"), "file": ("b.txt", b"b")}), 400, both)
    check(api.post(path, params={"file_name": "../x.txt"}, data={"text": "t"}), 400,
          {"detail": "Invalid file name: the file name contains a path separator."})
    check(api.post(path, params={"file_name": "n" * 1025}, files={"text": (None, "t")}), 400,
          {"detail": "Invalid file name: the file name is longer than 1024 bytes."})
    assert ws_files_page(api, ws)["total"] == 0


def test_names_up_to_1024_bytes(srv, api):
    ws = unique_ws("files-long")
    for name in ("a" * 1020 + ".txt", "é" * 512):
        fid = post_file(api, ws, name, b"long")["file_id"]
        r = download(api, ws, fid)
        assert r.content == b"long"
    assert sorted(i["name"] for i in list_ws_files(srv, api, ws)) == \
        sorted(["a" * 1020 + ".txt", "é" * 512])
    check(api.post(ws_files_path(ws), files={"file": ("b" * 1021 + ".txt", b"x")}), 400,
          {"detail": "Invalid file name: the file name is longer than 1024 bytes."})


def test_a_file_over_the_size_limit_is_413(server_factory, module_so):
    """UploadSessionMaxFileSize bounds POST /files too (httpd's
    LimitRequestBody is raised to it plus 1 MiB of form): 413 whether the
    declared length or the streamed part passes it, and nothing is kept."""
    srv = server_factory(module=module_so, extra=["UploadSessionMaxFileSize 64K"])
    api = srv.client(srv.user_all)
    ws = unique_ws("files-big")
    too_large = {"detail": "The file is too large."}
    fid = post_file(api, ws, "fits.bin", b"x" * 65536)["file_id"]
    check(api.post(ws_files_path(ws), files={"file": ("big.bin", b"x" * 65537)}), 413, too_large)
    check(api.post(ws_files_path(ws), params={"file_name": "big.txt"},
                   files={"text": (None, "x" * 65537)}), 413, too_large)
    check(api.post(ws_files_path(ws), files={"file": ("huge.bin", b"x" * (3 << 20))}), 413,
          too_large)
    assert [i["file_id"] for i in ws_files_page(api, ws)["data"]] == [fid]


# --------------------------------------------------------------------------
# write modes
# --------------------------------------------------------------------------

def test_write_modes_keep_overwrite_fail(srv, api):
    ws = unique_ws("files-wm")
    a = post_file(api, ws, "doc.txt", b"v1", meta={"v": 1})["file_id"]
    # KEEP is the default and keeps both
    b = post_file(api, ws, "doc.txt", b"v2", meta={"v": 2})["file_id"]
    c = post_file(api, ws, "doc.txt", b"v3", write_mode="KEEP")["file_id"]
    assert len({a, b, c}) == 3
    assert sorted(ids_named(srv, api, ws, "doc.txt")) == sorted([a, b, c])

    # FAIL: a conflict is 409 and stores nothing
    body = post_file(api, ws, "doc.txt", b"v4", write_mode="FAIL", status=409)
    assert body == {"detail": MSG_FILE_EXISTS.format("doc.txt")}
    assert sorted(ids_named(srv, api, ws, "doc.txt")) == sorted([a, b, c])
    # FAIL without a conflict is an ordinary upload
    other = post_file(api, ws, "other.txt", b"o", write_mode="FAIL")["file_id"]

    # OVERWRITE replaces every same-name file: one left, the new bytes
    d = post_file(api, ws, "doc.txt", b"v5-new", meta={"v": 5}, write_mode="OVERWRITE")["file_id"]
    assert ids_named(srv, api, ws, "doc.txt") == [d]
    assert download(api, ws, d).content == b"v5-new"
    assert get_meta(api, ws, d) == {"v": 5}
    for old in (a, b, c):
        no_file(api, ws, old)
        assert not os.path.exists(os.path.join(srv.dir, "state", "data", "files", old)), old
    # other names are untouched
    assert download(api, ws, other).content == b"o"
    assert {i["name"] for i in list_ws_files(srv, api, ws)} == {"doc.txt", "other.txt"}
    # OVERWRITE of a new name just adds it
    e = post_file(api, ws, "new.txt", b"n", write_mode="OVERWRITE")["file_id"]
    assert ids_named(srv, api, ws, "new.txt") == [e]


def test_bad_write_mode_is_422(srv, api):
    ws = unique_ws("files-wm422")
    r = api.post(ws_files_path(ws), params={"write_mode": "REPLACE"},
                 files={"file": ("x.txt", b"x")})
    item = e_enum_write_mode("REPLACE")
    item["loc"] = ["query", "write_mode"]
    check(r, 422, v422(item))
    # the form's own items come with it, as FastAPI validates both at once
    missing_file = {"type": "missing", "loc": ["body", "file"], "msg": "Field required",
                    "input": None}
    missing_name = {"type": "missing", "loc": ["query", "file_name"], "msg": "Field required",
                    "input": None}
    check(api.post(ws_files_path(ws), params={"write_mode": "REPLACE"},
                   files={"meta": (None, "{}")}), 422, v422(item, missing_file))
    check(api.post(ws_files_path(ws), params={"write_mode": "REPLACE"}, data={"text": "t"}),
          422, v422(item, missing_name))
    check(api.post(ws_files_path(ws), params={"write_mode": "REPLACE", "file_name": "t.txt"},
                   data={"text": "t"}), 422, v422(item))
    # a body that is not a form: the query's item alone
    check(api.post(ws_files_path(ws), params={"write_mode": "REPLACE"}, json={"a": 1}), 422,
          v422(item))
    assert ws_files_page(api, ws)["total"] == 0


# --------------------------------------------------------------------------
# the list: order, paging with the SDK's cursor, name filter, validation
# --------------------------------------------------------------------------

def test_list_pages_with_the_sdk_cursor_and_filters_by_name(srv, api):
    ws = unique_ws("files-list")
    names = [f"alpha-{i:02d}.txt" for i in range(14)] + [f"beta-{i:02d}.md" for i in range(11)]
    ids = {}
    for n in names:
        ids[n] = post_file(api, ws, n, n.encode(), meta={"name": n})["file_id"]

    everything = list_ws_files(srv, api, ws, limit=100)
    assert len(everything) == 25
    # uploaded one after the other: newest first is the reverse upload order
    assert [i["name"] for i in everything] == names[::-1]
    assert {i["name"]: i["file_id"] for i in everything} == ids
    assert all(i["meta"] == {"name": i["name"]} and i["size"] == len(i["name"])
               for i in everything)

    # any page size walks the same list
    for limit in (1, 7, 10, 24, 25):
        assert list_ws_files(srv, api, ws, limit=limit) == everything, limit

    # default limit 10
    first = ws_files_page(api, ws)
    assert first["total"] == 25 and first["has_more"] is True and first["data"] == everything[:10]

    # the cursor: 'Z' and '+00:00' mean the same
    last = everything[9]
    after_value, after_id = sdk_cursor(last)
    assert after_value.endswith("+00:00") and last["created_at"].endswith("Z")
    p_sdk = ws_files_page(api, ws, limit=5, after_value=after_value, after_file_id=after_id)
    p_z = ws_files_page(api, ws, limit=5, after_value=last["created_at"], after_file_id=after_id)
    assert p_sdk == p_z == {"data": everything[10:15], "total": 25, "has_more": True}
    # the last page
    tail = ws_files_page(api, ws, limit=100, after_value=sdk_cursor(everything[19])[0],
                      after_file_id=everything[19]["file_id"])
    assert tail == {"data": everything[20:], "total": 25, "has_more": False}
    # whole seconds without a fraction (isoformat() when microsecond == 0)
    future = ws_files_page(api, ws, limit=100, after_value="2999-01-01T00:00:00+00:00",
                        after_file_id=str(uuid.uuid4()))
    assert future == {"data": everything, "total": 25, "has_more": False}
    past = ws_files_page(api, ws, limit=100, after_value="2000-01-01T00:00:00Z",
                      after_file_id=str(uuid.uuid4()))
    assert past == {"data": [], "total": 25, "has_more": False}

    # name: a substring filter; total counts the matches
    alphas = list_ws_files(srv, api, ws, limit=4, name="alpha")
    assert [i["name"] for i in alphas] == names[:14][::-1]
    page = ws_files_page(api, ws, name="beta", limit=100)
    assert page["total"] == 11 and page["has_more"] is False
    assert [i["name"] for i in page["data"]] == names[14:][::-1]
    assert [i["name"] for i in ws_files_page(api, ws, name="-0", limit=100)["data"]] == \
        [n for n in names[::-1] if "-0" in n]
    assert ws_files_page(api, ws, name="a-13.txt")["data"] == [
        i for i in everything if i["name"] == "alpha-13.txt"]
    assert ws_files_page(api, ws, name="gamma") == {"data": [], "total": 0, "has_more": False}


def test_name_filter_has_no_wildcards(srv, api):
    ws = unique_ws("files-wild")
    for n in ("100%_done.txt", "100xxdone.txt", "a_b.txt", "axb.txt"):
        post_file(api, ws, n, b"x")
    assert [i["name"] for i in ws_files_page(api, ws, name="%_")["data"]] == ["100%_done.txt"]
    assert [i["name"] for i in ws_files_page(api, ws, name="a_b")["data"]] == ["a_b.txt"]
    assert ws_files_page(api, ws, name="%")["total"] == 1
    assert ws_files_page(api, ws, name="_")["total"] == 2


def test_query_values_not_utf8_read_as_replacement_characters(srv, api):
    # Starlette decodes a query's bytes with errors="replace": %FF is U+FFFD,
    # on every store alike (PostgreSQL refused the raw byte: a 500)
    ws = unique_ws("files-not-utf8")
    post_file(api, ws, "a.txt", b"x")
    fid = post_file(api, ws, "a\ufffdb.txt", b"y")["file_id"]
    page = check(api.get(ws_files_path(ws) + "?name=%FF"), 200)
    assert (page["total"], [i["file_id"] for i in page["data"]]) == (1, [fid]), page
    page = check(api.get(ws_files_path(ws) + "?name=a%FFb.txt"), 200)
    assert (page["total"], [i["file_id"] for i in page["data"]]) == (1, [fid]), page
    page = check(api.get(ws_files_path(ws) + f"?field=name&order=ASC&after_value=%FF&after_file_id={fid}"),
                 200)
    assert (page["total"], page["data"]) == (2, []), page


def test_list_query_validation(srv, api):
    ws = unique_ws("files-q422")
    post_file(api, ws, "x.txt", b"x")
    check(api.get(ws_files_path(ws), params={"limit": "101"}), 422,
          v422(e_le(("query", "limit"), "101", 100)))
    check(api.get(ws_files_path(ws), params={"limit": "0"}), 422,
          v422(e_ge(("query", "limit"), "0", 1)))
    check(api.get(ws_files_path(ws), params={"after_value": "abc",
                                          "after_file_id": str(uuid.uuid4())}), 422,
          v422({"type": "datetime_from_date_parsing", "loc": ["query", "after_value"],
                "msg": "Input should be a valid datetime or date, invalid character in year",
                "input": "abc", "ctx": {"error": "invalid character in year"}}))
    bad = v422(e_uuid_parsing("abc", uuid_reason_length(3), name="after_file_id"))
    bad["detail"][0]["loc"] = ["query", "after_file_id"]
    check(api.get(ws_files_path(ws), params={"after_value": "2026-01-01T00:00:00Z",
                                          "after_file_id": "abc"}), 422, bad)


def e_refused(name, value, msg):
    return {"type": "value_error", "loc": ["query", name], "msg": msg, "input": value}


def test_list_parameters_not_served_are_refused_never_ignored(srv, api):
    """API.md: a parameter is implemented exactly or refused with a 422
    naming it, never ignored."""
    ws = unique_ws("files-refuse")
    post_file(api, ws, "x.txt", b"x", meta={"kind": "small"})
    path = ws_files_path(ws)
    check(api.get(path, params={"content": "x"}), 422,
          v422(e_refused("content", "x", "searching the content of files is not supported by this server")))
    check(api.get(path, params={"field": "size", "order": "asc", "page_number": "0"}), 422,
          v422({"type": "enum", "loc": ["query", "field"], "msg": "Input should be 'created_at' or 'name'",
                "input": "size", "ctx": {"expected": "'created_at' or 'name'"}},
               {"type": "enum", "loc": ["query", "order"], "msg": "Input should be 'ASC' or 'DESC'",
                "input": "asc", "ctx": {"expected": "'ASC' or 'DESC'"}},
               e_ge(("query", "page_number"), "0", 1)))
    check(api.get(path, params={"meta_key": "kind"}), 422,
          v422(e_refused("meta_key", "kind", "meta_key and meta_value are given together")))
    some_id = str(uuid.uuid4())
    check(api.get(path, params={"after_file_id": some_id}), 422,
          v422(e_refused("after_file_id", some_id, "after_file_id needs after_value: the cursor "
                         "is the last item's sort value and file_id")))
    check(api.get(path, params={"meta_key": "kind or x", "meta_value": "a"}), 422,
          v422(e_refused("meta_key", "kind or x",
                         "not a metadata key: letters, digits and _, nested keys with /")))


def test_the_odata_filter_selects_exactly_the_matching_files(srv, api):
    """What `deepset-cloud list-files --odata-filter` sends: the filter
    evaluated on the metadata and the file's own fields, with total and
    has_more counting the matches only, and the SDK's cursor over them."""
    ws = unique_ws("files-filter")
    metas = [
        ("a.txt", {"kind": "small", "year": 2021, "tags": {"lang": "de"}, "q": "it's"}),
        ("b.pdf", {"kind": "big", "year": 2019, "when": "2024-02-01T00:00:00Z"}),
        ("c.txt", {"kind": "small", "year": "2022"}),
        ("d.md", None),
        ("e.txt", {"kind": "small", "year": 2023.0, "when": "2024-01-31"}),
    ]
    for name, meta in metas:
        post_file(api, ws, name, name.encode(), meta=meta)

    def names(flt, **params):
        body = check(api.get(ws_files_path(ws), params={"filter": flt, "limit": "100", **params}), 200)
        assert body["total"] == len(body["data"]) and body["has_more"] is False, body
        return [i["name"] for i in body["data"]]

    assert names("kind eq 'small'") == ["e.txt", "c.txt", "a.txt"]
    assert names("kind eq 'small' and year ge 2021") == ["e.txt", "a.txt"]
    assert names("not kind eq 'small'") == ["d.md", "b.pdf"]
    assert names("year eq '2022'") == ["c.txt"]
    assert names("kind in ('big') or tags/lang eq 'de'") == ["b.pdf", "a.txt"]
    assert names("q eq \"it's\"") == names("q eq 'it''s'") == ["a.txt"]
    assert names("when lt 2024-02-01T00:00:00Z") == ["e.txt"]
    assert names("endswith(name, '.txt') and not contains(name, 'c')") == ["e.txt", "a.txt"]
    assert names("missing eq null") == ["e.txt", "d.md", "c.txt", "b.pdf", "a.txt"]
    assert names("kind eq 'small'", name="a") == ["a.txt"]
    # meta_key + meta_value: the same as `<key> eq '<value>'`, and with filter: both
    body = check(api.get(ws_files_path(ws), params={"meta_key": "kind", "meta_value": "small"}), 200)
    assert [i["name"] for i in body["data"]] == ["e.txt", "c.txt", "a.txt"] and body["total"] == 3
    body = check(api.get(ws_files_path(ws), params={"meta_key": "kind", "meta_value": "small",
                                                    "filter": "year gt 2021"}), 200)
    assert [i["name"] for i in body["data"]] == ["e.txt"] and body["total"] == 1
    # the SDK's cursor pages through the matches only
    first = check(api.get(ws_files_path(ws), params={"filter": "kind eq 'small'", "limit": "2"}), 200)
    assert [i["name"] for i in first["data"]] == ["e.txt", "c.txt"]
    assert first["total"] == 3 and first["has_more"] is True
    after_value, after_id = sdk_cursor(first["data"][-1])
    rest = check(api.get(ws_files_path(ws), params={"filter": "kind eq 'small'", "limit": "2",
                                                    "after_value": after_value,
                                                    "after_file_id": after_id}), 200)
    assert [i["name"] for i in rest["data"]] == ["a.txt"]
    assert rest["total"] == 3 and rest["has_more"] is False


def test_long_strings_and_keys_in_metadata_are_kept_and_filtered(srv, api):
    # PostgreSQL's key table indexes a key and a string's text, and an index
    # entry must fit in a third of a page: a 4,000-character summary failed
    # the file's insert (POST /files 500, a session's ingestion retried for
    # ever). A long string is kept without its text there, a long key not at
    # all, and a filter reads them from the file itself.
    ws = unique_ws("files-long-meta")
    rnd = random.Random(7)
    long = "".join(rnd.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJ") for _ in range(4000))
    key = "k" * 300
    post_file(api, ws, "long.txt", b"l", meta={"s": "m" + long, key: "v", "n": 1})
    post_file(api, ws, "short.txt", b"s", meta={"s": "m", "n": 1})
    sid, cfg = new_session(api, ws)
    upload_one(httpx.Client(), cfg, "side.txt", b"x")
    upload_one(httpx.Client(), cfg, "side.txt.meta.json", json.dumps({"s": "z" + long}).encode())
    close_and_wait(api, ws, sid, 1)

    def names(flt):
        body = check(api.get(ws_files_path(ws), params={"filter": flt, "limit": "100",
                                                        "field": "name", "order": "ASC"}), 200)
        assert body["total"] == len(body["data"]) and body["has_more"] is False, (flt, body["total"])
        return [i["name"] for i in body["data"]]

    assert names(f"s eq 'm{long}'") == ["long.txt"]
    assert names("s eq 'm'") == ["short.txt"]
    assert names("s ne 'm'") == ["long.txt", "side.txt"]
    assert names(f"s ne 'm{long}'") == ["short.txt", "side.txt"]
    assert names("s gt 'm'") == ["long.txt", "side.txt"]
    assert names(f"s lt 'z{long}'") == ["long.txt", "short.txt"]
    assert names(f"startswith(s, 'z{long[:10]}')") == ["side.txt"]
    assert names(f"contains(s, '{long[100:120]}')") == ["long.txt", "side.txt"]
    assert names(f"endswith(s, '{long[-5:]}') and n eq 1") == ["long.txt"]
    assert names(f"{key} eq 'v'") == ["long.txt"]
    assert names(f"{key} eq 'v' and n eq 1") == ["long.txt"]
    assert names(f"not {key} eq 'v'") == ["short.txt", "side.txt"]
    item = [i for i in check(api.get(ws_files_path(ws), params={"name": "side"}), 200)["data"]][0]
    assert item["meta"] == {"s": "z" + long}


def test_float_metadata_is_written_as_python_writes_it_and_filtered_as_doubles(srv, api):
    # jansson writes a float with 17 significant digits: 1.1 came back as
    # 1.1000000000000001, and PostgreSQL compared that text as numeric, so
    # `x eq 1.1` did not match the file whose metadata said 1.1.
    ws = unique_ws("files-floats")
    post_file(api, ws, "a.txt", b"a",
              meta='{"x": 1.10, "y": 0.3, "big": 1e16, "small": 1e-5, "i": 3, "c": "\\u001f"}')
    post_file(api, ws, "b.txt", b"b", meta={"x": 2.5, "i": 4})
    (fid,) = ids_named(srv, api, ws, "a.txt")
    text = '{"x":1.1,"y":0.3,"big":1e+16,"small":1e-05,"i":3,"c":"\\u001f"}'
    r = api.get(ws_files_path(ws) + "/" + fid + "/meta")
    assert r.status_code == 200 and r.text == text, r.text
    r = api.get(ws_files_path(ws), params={"name": "a.txt"})
    assert r.status_code == 200 and '"meta":' + text + "," in r.text, r.text
    r = api.patch(ws_files_path(ws) + "/" + fid + "/meta", json={"z": 0.1})
    assert r.status_code == 200 and r.text == text[:-1] + ',"z":0.1}', r.text
    for flt, want in [("x eq 1.1", ["a.txt"]), ("x eq 1.10000000000000001", ["a.txt"]),
                      ("x gt 1.1", ["b.txt"]), ("x lt 1.2", ["a.txt"]), ("x ge 1.1", ["a.txt", "b.txt"]),
                      ("y eq 0.3", ["a.txt"]), ("y le 0.3 and y ge 0.3", ["a.txt"]),
                      ("x in (1.1, 2.5)", ["a.txt", "b.txt"]), ("not x eq 1.1", ["b.txt"]),
                      ("big eq 1e16", ["a.txt"]), ("small eq 0.00001", ["a.txt"]),
                      ("i eq 3.0", ["a.txt"]), ("i eq 3", ["a.txt"]), ("i gt 3.5", ["b.txt"]),
                      ("x lt 1e400", ["a.txt", "b.txt"]), ("x gt -1e400 and x lt 1e-400", [])]:
        body = check(api.get(ws_files_path(ws), params={"filter": flt, "field": "name",
                                                        "order": "ASC"}), 200)
        assert [i["name"] for i in body["data"]] == want and body["total"] == len(want), (flt, body)


def test_sorting_cursors_and_page_numbers(srv, api):
    """field + order sort, after_value (typed after the field) + after_file_id
    continue in that order, page_number pages by offset without a cursor."""
    ws = unique_ws("files-sort")
    for name in ["m.txt", "c.txt", "x.txt", "a.txt", "q.txt"]:
        post_file(api, ws, name, name.encode())
    path = ws_files_path(ws)

    def page(**params):
        body = check(api.get(path, params=params), 200)
        assert body["total"] == 5, body
        return [i["name"] for i in body["data"]], body["has_more"], body["data"]

    assert page(limit="10")[0] == ["q.txt", "a.txt", "x.txt", "c.txt", "m.txt"]
    assert page(limit="10", order="ASC")[0] == ["m.txt", "c.txt", "x.txt", "a.txt", "q.txt"]
    assert page(limit="10", field="name", order="ASC")[0] == ["a.txt", "c.txt", "m.txt", "q.txt", "x.txt"]
    assert page(limit="10", field="name")[0] == ["x.txt", "q.txt", "m.txt", "c.txt", "a.txt"]
    # a cursor by name: the value is the name
    names, more, items = page(limit="2", field="name", order="ASC")
    assert names == ["a.txt", "c.txt"] and more is True
    names, more, _ = page(limit="2", field="name", order="ASC", after_value=items[-1]["name"],
                          after_file_id=items[-1]["file_id"])
    assert names == ["m.txt", "q.txt"] and more is True
    # a cursor by created_at, oldest first, with the SDK's isoformat value
    names, more, items = page(limit="3", order="ASC")
    after_value, after_id = sdk_cursor(items[-1])
    assert page(limit="3", order="ASC", after_value=after_value, after_file_id=after_id)[:2] == \
        (["a.txt", "q.txt"], False)
    # page numbers: offsets of limit, in any order
    assert page(limit="2", page_number="2")[:2] == (["x.txt", "c.txt"], True)
    assert page(limit="2", page_number="3", field="name", order="ASC")[:2] == (["x.txt"], False)
    assert page(limit="2", page_number="4")[:2] == ([], False)
    # no upper bound (API.md: >= 1), as the session lists: an empty page far out
    assert page(limit="2", page_number="1000000001")[:2] == ([], False)
    assert page(limit="100", page_number=str(2**63 - 1))[:2] == ([], False)


def test_many_different_filters_keep_the_server_answering(srv, api):
    """Each filter shape is a statement prepared on a pooled connection; a
    connection holding many is retired, never left to grow."""
    ws = unique_ws("files-shapes")
    post_file(api, ws, "k.txt", b"k", meta={"k": 1})
    for i in range(150):
        flt = " and ".join(["k eq 1"] * (i % 75 + 1))
        if i >= 75:
            flt = "not not " + flt
        body = check(api.get(ws_files_path(ws), params={"filter": flt}), 200)
        assert [x["name"] for x in body["data"]] == ["k.txt"], flt


def test_a_malformed_filter_names_the_position(srv, api):
    ws = unique_ws("files-odata")
    path = ws_files_path(ws)
    cases = [
        ("kind eq", "expected a literal, found the end of the filter at position 7"),
        ("kind eq 'small' and", "expected a key, a function, 'not' or '(', found the end of the filter at position 19"),
        ("foo(kind, 'x')", "unknown function 'foo' at position 0"),
        ("kätegorie eq 'x' xor a eq 1", "expected 'and', 'or' or the end of the filter, found 'xor' at position 17"),
        ("kind eq 'small", "unterminated string at position 8"),
    ]
    for text, msg in cases:
        check(api.get(path, params={"filter": text}), 422, v422(e_refused("filter", text, msg)))


def filter_names(api, ws, flt, **params):
    """The names a filter selects, newest first; total and has_more checked."""
    body = check(api.get(ws_files_path(ws), params={"filter": flt, "limit": "100", **params}), 200)
    assert body["total"] == len(body["data"]) and body["has_more"] is False, body
    return [i["name"] for i in body["data"]]


def test_a_filter_ordering_with_null_matches_nothing_and_the_rest_still_applies(srv, api):
    ws = unique_ws("files-filter-null")
    post_file(api, ws, "a.txt", b"a", meta={"n": 3})
    post_file(api, ws, "b.txt", b"b", meta={"n": 4})
    assert filter_names(api, ws, "n gt null or name eq 'a.txt'") == ["a.txt"]
    assert filter_names(api, ws, "not (n lt null)") == ["b.txt", "a.txt"]
    assert filter_names(api, ws, "n le null or n eq 3") == ["a.txt"]
    assert filter_names(api, ws, "n ge null") == []
    # the limit and the offset bind after the filter's parameters
    body = check(api.get(ws_files_path(ws), params={"filter": "not (n lt null)", "limit": "1",
                                                    "page_number": "2"}), 200)
    assert [i["name"] for i in body["data"]] == ["a.txt"]
    assert body["total"] == 2 and body["has_more"] is False


def test_the_longest_filter_chains_answer_promptly(srv, api):
    """256 terms, the parser's bound: SQLite parses the query, PostgreSQL
    plans it in time."""
    ws = unique_ws("files-filter-long")
    post_file(api, ws, "a.txt", b"a", meta={"n": 3})
    post_file(api, ws, "b.txt", b"b", meta={"n": 4})
    for flt, want in [(" and ".join(["n ge 3"] * 255 + ["n le 4"]), ["b.txt", "a.txt"]),
                      (" and ".join(["n ge 3"] * 255 + ["n eq 3"]), ["a.txt"]),
                      (" or ".join(["n eq 9"] * 255 + ["n eq 4"]), ["b.txt"])]:
        t0 = utcnow()
        assert filter_names(api, ws, flt) == want
        assert (utcnow() - t0).total_seconds() < 5


def test_a_filter_number_beyond_numeric_range_is_422(srv, api):
    ws = unique_ws("files-filter-num")
    post_file(api, ws, "a.txt", b"a", meta={"n": 3})
    path = ws_files_path(ws)
    for text, at in [("n lt 1e131072", 5), ("size lt 1e131073", 8), ("n eq 1e-999999", 5),
                     ("n gt 1 or n lt -2.5E+1001", 15)]:
        check(api.get(path, params={"filter": text}), 422,
              v422(e_refused("filter", text, "number out of range at position %d" % at)))
    assert filter_names(api, ws, "n lt 1e1000 and n gt -1e1000 and size lt 1E1000") == ["a.txt"]
    assert filter_names(api, ws, "n eq 1e-1000") == []


def test_a_filter_or_cursor_date_the_month_does_not_have_is_422(srv, api):
    ws = unique_ws("files-filter-day")
    post_file(api, ws, "mar1.txt", b"m", meta={"d": "2024-03-01"})
    post_file(api, ws, "leap.txt", b"l", meta={"d": "2024-02-29"})
    path = ws_files_path(ws)
    for text in ["d eq 2024-02-30", "d ge 2023-02-29T10:00:00Z"]:
        value = text.split()[-1]
        check(api.get(path, params={"filter": text}), 422,
              v422(e_refused("filter", text, "invalid date-time '%s' at position 5" % value)))
    assert filter_names(api, ws, "d eq 2024-02-29") == ["leap.txt"]
    for value in ["2026-02-30T00:00:00Z", "2026-04-31T00:00:00Z"]:
        check(api.get(path, params={"after_value": value}), 422,
              v422({"type": "datetime_from_date_parsing", "loc": ["query", "after_value"],
                    "msg": "Input should be a valid datetime or date, invalid character in year",
                    "input": value, "ctx": {"error": "invalid character in year"}}))


def test_a_filter_compares_metadata_date_times_to_the_microsecond(srv, api):
    """Metadata date-times a microsecond apart are different instants on
    every store, whatever form the stored string takes (space for T, a zone,
    none = UTC, seven digits rounded to the microsecond)."""
    ws = unique_ws("files-filter-us")
    for name, when in [("a.txt", "2024-05-01T10:00:00.000001Z"),
                       ("b.txt", "2024-05-01T10:00:00.000002Z"),
                       ("c.txt", "2024-05-01 12:00:00.000003+02:00"),
                       ("d.txt", "2024-05-01T10:00:00.0000015")]:
        post_file(api, ws, name, name.encode(), meta={"d": when, "n": {"d": when}})
    for key in ["d", "n/d"]:
        def names(op, value="2024-05-01T10:00:00.000002Z"):
            return filter_names(api, ws, "%s %s %s" % (key, op, value))
        assert names("eq") == ["d.txt", "b.txt"]
        assert names("ne") == ["c.txt", "a.txt"]
        assert names("lt") == ["a.txt"]
        assert names("le") == ["d.txt", "b.txt", "a.txt"]
        assert names("gt") == ["c.txt"]
        assert names("ge") == ["d.txt", "c.txt", "b.txt"]
        assert names("eq", "2024-05-01T10:00:00.000001Z") == ["a.txt"]
        assert names("eq", "2024-05-01T10:00:00Z") == []
        # a literal of seven digits rounds as the stored value does
        assert names("eq", "2024-05-01T10:00:00.0000015Z") == ["d.txt", "b.txt"]


def test_a_filter_function_may_have_line_breaks_before_its_parenthesis(srv, api):
    ws = unique_ws("files-filter-nl")
    post_file(api, ws, "n.txt", b"n", meta={"s": "news"})
    post_file(api, ws, "o.txt", b"o", meta={"s": "old"})
    assert filter_names(api, ws, "contains\n(s,'ew')") == ["n.txt"]
    assert filter_names(api, ws, "startswith\r\n (s, 'o') or endswith\t(s, 'ws')") == ["o.txt", "n.txt"]


# --------------------------------------------------------------------------
# ids: 404 and 422
# --------------------------------------------------------------------------

def test_unknown_file_is_404_and_bad_id_is_422(srv, api):
    ws = unique_ws("files-404")
    fid = post_file(api, ws, "k.txt", b"known")["file_id"]
    no_file(api, ws, str(uuid.uuid4()))
    for bad, reason in (("abc", uuid_reason_length(3)),
                        ("12345678-1234-1234-1234-12345678901g", uuid_reason_char("g", 36))):
        body = v422(e_uuid_parsing(bad, reason, name="file_id"))
        check(api.get(ws_files_path(ws, bad)), 422, body)
        check(api.get(ws_files_path(ws, bad, meta=True)), 422, body)
    # like pydantic: the simple 32-hex form and upper case name the same file
    for alias in (fid.replace("-", ""), fid.upper()):
        assert download(api, ws, alias).content == b"known"
        assert get_meta(api, ws, alias) == {}
    short = fid.replace("-", "")[:31]
    check(api.get(ws_files_path(ws, short)), 422,
          v422(e_uuid_parsing(short, uuid_reason_length(31), name="file_id")))
    # GET and DELETE of files/update-meta are files/{file_id}'s, as FastAPI
    # routes them (a route allowing the method wins); other methods 405
    body = v422(e_uuid_parsing("update-meta", uuid_reason_char("u", 1), name="file_id"))
    check(api.get(ws_files_path(ws, "update-meta")), 422, body)
    check(api.delete(ws_files_path(ws, "update-meta")), 422, body)
    r = api.put(ws_files_path(ws, "update-meta"), json={})
    check(r, 405, {"detail": "Method Not Allowed"})
    assert r.headers["allow"] == "POST"


# --------------------------------------------------------------------------
# isolation and auth
# --------------------------------------------------------------------------

def test_workspaces_are_isolated(srv, api):
    ws1, ws2 = unique_ws("files-iso1"), unique_ws("files-iso2")
    f1 = post_file(api, ws1, "same.txt", b"in ws1", meta={"ws": 1})["file_id"]
    # invisible from ws2
    no_file(api, ws2, f1)
    assert ws_files_page(api, ws2) == {"data": [], "total": 0, "has_more": False}
    # a name in ws1 is no conflict in ws2, and OVERWRITE in ws2 leaves ws1 alone
    f2 = post_file(api, ws2, "same.txt", b"in ws2", write_mode="FAIL")["file_id"]
    f3 = post_file(api, ws2, "same.txt", b"ws2 again", write_mode="OVERWRITE")["file_id"]
    no_file(api, ws2, f2)
    assert [i["file_id"] for i in list_ws_files(srv, api, ws1)] == [f1]
    assert [i["file_id"] for i in list_ws_files(srv, api, ws2)] == [f3]
    assert download(api, ws1, f1).content == b"in ws1"
    assert get_meta(api, ws1, f1) == {"ws": 1}
    no_file(api, ws1, f3)


def test_files_api_needs_a_key_granting_the_workspace(srv, api):
    ws = unique_ws("files-auth")
    fid = post_file(api, ws, "a.txt", b"a")["file_id"]
    anon = srv.client(None)
    for path in (ws_files_path(ws), ws_files_path(ws, fid), ws_files_path(ws, fid, meta=True)):
        r = anon.get(path)
        check(r, 401, NOT_AUTHENTICATED)
        assert r.headers["www-authenticate"] == "Bearer"
        check(srv.client("not-a-key").get(path), 401, INVALID_KEY)
        check(srv.client(srv.user_a).get(path), 403,
              {"detail": f"You don't have access to the workspace '{ws}'."})
    check(anon.post(ws_files_path(ws), files={"file": ("b.txt", b"b")}), 401, NOT_AUTHENTICATED)
    check(srv.client(srv.user_a).post(ws_files_path(ws), files={"file": ("b.txt", b"b")}), 403,
          {"detail": f"You don't have access to the workspace '{ws}'."})
    # the second '*' user sees the same workspace
    other = srv.client(srv.user_all2)
    assert [i["file_id"] for i in list_ws_files(srv, other, ws)] == [fid]
    assert json.loads(other.get(ws_files_path(ws, fid, meta=True)).content) == {}


def disposition_filename(value):
    """The file name a client reads from a Content-Disposition value
    (RFC 6266 / 8187 filename*, parsed by Python's email package)."""
    from email.message import Message
    m = Message()
    m["Content-Disposition"] = value
    return m.get_filename()


def test_content_disposition_names_the_file(srv, api):
    ws = unique_ws("files-disp")
    for name in ("plain.txt", "with space.txt", "na\u00efve caf\u00e9.txt", "\u65e5\u672c.md",
                 "semi;colon.txt", "a=b,c.txt", "at@colon:.txt"):
        fid = post_file(api, ws, name, b"x")["file_id"]
        value = download(api, ws, fid).headers["content-disposition"]
        assert value.startswith("attachment; filename*=UTF-8''"), value
        assert disposition_filename(value) == name, (name, value)


def test_downloads_are_nosniff_attachments(srv, api):
    """Every download carries X-Content-Type-Options: nosniff beside its
    Content-Disposition: attachment, so a stored .html file is never rendered
    or sniffed as a page of this origin."""
    ws = unique_ws("files-nosniff")
    html = b"<!doctype html><script>alert(document.cookie)</script>\n"
    cases = [("page.html", html, "text/html; charset=utf-8"),
             ("page.htm", html, "text/html; charset=utf-8"),
             ("notes.txt", b"plain\n", "text/plain; charset=utf-8"),
             ("blob", b"\x00\x01<html>", "application/octet-stream")]
    for name, data, ctype in cases:
        fid = post_file(api, ws, name, data)["file_id"]
        r = download(api, ws, fid)
        assert r.content == data, (name, r.content)
        assert r.headers["content-type"] == ctype, r.headers
        assert r.headers["x-content-type-options"] == "nosniff", r.headers
        assert r.headers["content-disposition"] == f"attachment; filename*=UTF-8''{name}"
        h = api.head(ws_files_path(ws, fid))
        assert h.status_code == 200 and h.content == b"", h
        assert h.headers["x-content-type-options"] == "nosniff", h.headers
        assert h.headers["content-type"] == ctype, h.headers


@pytest.mark.posix_layout
def test_a_download_whose_first_read_fails_is_answered_in_json(srv, api):
    """Bytes that open but cannot be read (a directory where the blob was;
    an I/O error alike): their first byte is read before the answer's head
    is sent, so the answer is the API's JSON 500, not a 200 head whose body
    is cut short; the next download, the blob back, is whole."""
    ws = unique_ws("files-unreadable")
    fid = post_file(api, ws, "a.txt", b"hello")["file_id"]
    path = os.path.join(srv.dir, "state", "data", "files", fid)
    os.rename(path, path + ".away")
    os.mkdir(path)
    srv.expect_log(rf"US0301: file {fid}: its bytes are unreadable")
    try:
        r = api.get(ws_files_path(ws, fid))
    finally:
        os.rmdir(path)
        os.rename(path + ".away", path)
    check(r, 500, {"detail": "Internal Server Error"})
    assert r.headers["content-type"] == "application/json", r.headers
    assert "content-disposition" not in r.headers, r.headers
    assert download(api, ws, fid).content == b"hello"


# --------------------------------------------------------------------------
# Range (RFC 9110): answered alike by both storages, the s3 one reading
# only the range
# --------------------------------------------------------------------------

# past two of the s3 download's 256 KiB pieces; no period, so a range read
# from the wrong offset never matches
RANGE_SIZE = 600_001
RANGE_DATA = random.Random(9110).randbytes(RANGE_SIZE)


def ranged(api, ws, fid, rng, method="GET", **headers):
    """The answer to method on the file with Range: rng (None: no Range)."""
    if rng is not None:
        headers["Range"] = rng
    return api.request(method, ws_files_path(ws, fid), headers=headers)


def assert_partial(r, first, last, name="r.bin", body=True):
    """206 with bytes first..last of RANGE_DATA (none for a HEAD)."""
    assert r.status_code == 206, (r.status_code, r.headers, r.content[:200])
    assert r.headers["content-range"] == f"bytes {first}-{last}/{RANGE_SIZE}", r.headers
    assert r.headers["content-length"] == str(last - first + 1), r.headers
    assert r.headers["accept-ranges"] == "bytes", r.headers
    assert r.headers["content-type"] == "application/octet-stream", r.headers
    assert r.headers["content-disposition"] == f"attachment; filename*=UTF-8''{name}", r.headers
    assert r.headers["x-content-type-options"] == "nosniff", r.headers
    assert r.content == (RANGE_DATA[first:last + 1] if body else b"")


def assert_whole(r, accept_ranges="bytes", body=True):
    """200 with all of RANGE_DATA (none for a HEAD), no Content-Range."""
    assert r.status_code == 200, (r.status_code, r.headers, r.content[:200])
    assert "content-range" not in r.headers, r.headers
    assert r.headers["content-length"] == str(RANGE_SIZE), r.headers
    assert r.headers["accept-ranges"] == accept_ranges, r.headers
    assert r.content == (RANGE_DATA if body else b"")


def assert_unsatisfiable(r, size=RANGE_SIZE):
    """416, Content-Range naming the size, no body."""
    assert r.status_code == 416, (r.status_code, r.headers, r.content[:200])
    assert r.headers["content-range"] == f"bytes */{size}", r.headers
    assert r.headers["accept-ranges"] == "bytes", r.headers
    assert r.content == b""


@pytest.fixture(scope="module")
def range_file(shared_server):
    ws = unique_ws("files-range")
    fid = post_file(shared_server.client(shared_server.user_all), ws, "r.bin", RANGE_DATA)["file_id"]
    return ws, fid


@pytest.mark.parametrize("rng, first, last", [
    ("bytes=0-4", 0, 4),
    ("bytes=1-1", 1, 1),
    ("bytes=200000-530000", 200_000, 530_000),      # across two pieces of the s3 download
    ("bytes=262144-524288", 262_144, 524_288),      # from one piece's start to the next's
    ("bytes=-1000", RANGE_SIZE - 1000, RANGE_SIZE - 1),
    ("bytes=599000-", 599_000, RANGE_SIZE - 1),
    ("bytes=0-", 0, RANGE_SIZE - 1),
    ("bytes=600000-99999999", 600_000, 600_000),    # the last byte clamped to the size
    ("bytes=-99999999999999999999999", 0, RANGE_SIZE - 1),
    ("Bytes=10-19", 10, 19),
    ("bytes=,10-19 ,", 10, 19),                     # empty list elements, OWS at a comma
])
def test_a_range_is_answered_206_with_its_bytes(srv, api, range_file, rng, first, last):
    ws, fid = range_file
    assert_partial(ranged(api, ws, fid, rng), first, last)


@pytest.mark.parametrize("rng", ["bytes=600001-", "bytes=700000-800000", "bytes=-0",
                                 "bytes=99999999999999999999999-"])
def test_an_unsatisfiable_range_is_416_naming_the_size(srv, api, range_file, rng):
    ws, fid = range_file
    assert_unsatisfiable(ranged(api, ws, fid, rng))


@pytest.mark.parametrize("rng", [
    None,
    "bytes=0-4,10-14",            # several ranges: the whole file (RFC 9110 allows it)
    "bytes=0-4, 700000-",
    "bytes=700000-,0-4",
    "bytes=5-2",                  # a > b: invalid, ignored
    "bytes=abc",
    "bytes= 0-4",                 # no OWS after '='
    "bytes=0 - 4",
    "items=0-4",
])
def test_no_single_valid_range_is_answered_200_whole(srv, api, range_file, rng):
    ws, fid = range_file
    assert_whole(ranged(api, ws, fid, rng))


@pytest.mark.parametrize("if_range", ['"an-etag"', 'W/"weak"', "Thu, 01 Jan 2099 00:00:00 GMT"])
def test_if_range_gets_the_whole_file(srv, api, range_file, if_range):
    """The download sends no validator (ETag, Last-Modified), so no If-Range
    can match it: the Range is ignored (RFC 9110, section 13.1.5)."""
    ws, fid = range_file
    r = ranged(api, ws, fid, "bytes=0-4")
    assert "etag" not in r.headers and "last-modified" not in r.headers, r.headers
    assert_whole(ranged(api, ws, fid, "bytes=0-4", **{"If-Range": if_range}))
    assert_whole(ranged(api, ws, fid, "bytes=600001-", **{"If-Range": if_range}))


def test_head_answers_a_range_like_get_without_the_bytes(srv, api, range_file):
    ws, fid = range_file
    assert_partial(ranged(api, ws, fid, "bytes=10-19", "HEAD"), 10, 19, body=False)
    assert_partial(ranged(api, ws, fid, "bytes=-5", "HEAD"), RANGE_SIZE - 5, RANGE_SIZE - 1, body=False)
    assert_whole(ranged(api, ws, fid, None, "HEAD"), body=False)
    assert_whole(ranged(api, ws, fid, "bytes=0-4,10-14", "HEAD"), body=False)
    r = ranged(api, ws, fid, "bytes=600001-", "HEAD")
    # httpd leaves out a HEAD's Content-Length: 0 (it cannot tell it from an unset one)
    assert r.status_code == 416 and r.headers["content-range"] == f"bytes */{RANGE_SIZE}", r.headers
    assert r.content == b"", r.content


def test_ranges_of_an_empty_file(srv, api):
    """No range of an empty file is satisfiable but a suffix, which is all of
    it: no byte for a 206 to name, so 200."""
    ws = unique_ws("files-range-empty")
    fid = post_file(api, ws, "e.bin", b"")["file_id"]
    for rng in ("bytes=0-", "bytes=0-0", "bytes=-0"):
        assert_unsatisfiable(ranged(api, ws, fid, rng), size=0)
    r = ranged(api, ws, fid, "bytes=-5")
    assert r.status_code == 200 and r.content == b"", (r.status_code, r.headers)
    assert r.headers["content-length"] == "0" and "content-range" not in r.headers, r.headers


def test_maxranges_none_turns_ranges_off(server_factory):
    """MaxRanges none: every download whole, Accept-Ranges: none."""
    s = server_factory(extra=["MaxRanges none"])
    api = s.client(s.user_all)
    ws = unique_ws("files-range-off")
    fid = post_file(api, ws, "r.bin", RANGE_DATA)["file_id"]
    for rng in ("bytes=0-4", "bytes=-5", "bytes=600001-"):
        assert_whole(ranged(api, ws, fid, rng), accept_ranges="none")


def test_post_files_keeps_the_filename_as_sent(srv, api):
    """POST /files takes the part's filename as FastAPI does, without
    percent-decoding: the SDK sends it with httpx, which does not quote it
    (only a quote as %22), so "Q3%20report.txt" is that file's name.
    filename* (RFC 5987) is decoded."""
    ws = unique_ws("files-asis")
    for name in ("Q3%20report.txt", "50%off.txt", "say %22hi%22.txt"):
        post_file(api, ws, name, b"x", meta={"n": name})
    r = api.post(ws_files_path(ws), files={"file": ("ignored.txt", b"x")})
    check(r, 201)
    names = sorted(i["name"] for i in list_ws_files(srv, api, ws))
    assert names == ["50%off.txt", "Q3%20report.txt", "ignored.txt", "say %22hi%22.txt"], names
    for i in list_ws_files(srv, api, ws):
        if i["name"] != "ignored.txt":
            assert i["meta"] == {"n": i["name"]}, i
    body = post_file(api, ws, "a%2Fb.txt", b"x")
    assert [i["name"] for i in list_ws_files(srv, api, ws, name="a%2Fb")] == ["a%2Fb.txt"], body

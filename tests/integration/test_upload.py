"""The upload target (API.md "Upload target", "Session files"): the S3-style
presigned POST served by the module, as the official deepset SDK drives it,
its rejections (S3 XML errors, nothing stored, no temp file left), a 2 GiB
streamed upload with bounded child memory, a client vanishing mid-file, the
last-wins rule, success_action_status, and a reverse proxy with a path prefix.

Files land in <srv.dir>/state/data/sessions/<session_id>/<blob uuid>, temp
files ".<uuid>.<pid>-<machine>.tmp" beside them while a file over 256 KiB is written
(src/storage/posix/us_blob.c)."""

import datetime as dt
import hashlib
import json
import os
import random
import re
import socket
import struct
import threading
import time
import xml.etree.ElementTree as ET

import pytest

from us_testkit.procs import free_port, port_open, wait_for
from us_testkit.server import APACHE_MODULES, new_client
from us_testkit.api import (assert_uuid4, close_session, create_session, get_status, parse_ts,
                            session_path, unique_ws, utcnow)
from us_testkit.procs import children_rss
from us_testkit.uploads import (MSG_BAD_SIG, MSG_EXPIRED, MSG_MISSING, MSG_NOT_MULTIPART,
                                MSG_NOT_OPEN, MSG_NO_FILENAME, MSG_NO_KEY, MSG_ONE_FILE,
                                MSG_OTHER_SESSION, MSG_TOO_LARGE, Part, SessionState,
                                blob_files, blob_hashes, check_file_item, dir_entries,
                                encode_policy, flip_b64_char, form_parts, list_files_all,
                                msg_bad_name, msg_malformed, msg_starts_with, multipart,
                                new_boundary, no_content, policy_doc, post_parts, raw_post,
                                s3_error, sdk_upload_many, session_dir, session_files_page,
                                sha256_file, temp_files, tree, upload, url_path, wait_no_temp)
from us_testkit.ingest import module_so, shared_server_options  # noqa: F401 (fixtures)

MiB = 1024 * 1024
GiB = 1024 * MiB


@pytest.fixture
def make_server(server_factory, module_so):
    def make(**kwargs):
        kwargs.setdefault("module", module_so)
        return server_factory(**kwargs)
    return make


def new_session(api, ws, body=None):
    sess = create_session(api, ws, body)
    return sess["session_id"], sess["aws_prefixed_request_config"], sess


def upload_client(srv):
    """A plain httpx client for the upload target (no Authorization)."""
    return srv.raw_client(timeout=60)


def assert_uploaded(api, ws, sid, n):
    st = get_status(api, ws, sid)
    assert st["uploaded_files"] == n, st
    assert st["ingestion_status"]["failed_files"] == 0, st
    assert st["ingestion_status"]["finished_files"] == 0, st
    if "pending_files" in st["ingestion_status"]:
        assert st["ingestion_status"]["pending_files"] == n, st
    return st


# --------------------------------------------------------------------------
# 1. the SDK's own client
# --------------------------------------------------------------------------

def test_create_returns_a_signed_s3_post_config(srv, api):
    ws = unique_ws("up-cfg")
    before = utcnow()
    sid, cfg, sess = new_session(api, ws, {"expires_in_seconds": 3600})
    assert cfg["url"] == f"{srv.public_url}/api/v1/upload_target/{sid}"
    f = cfg["fields"]
    assert set(f) == {"key", "policy", "x-amz-algorithm", "x-amz-credential",
                      "x-amz-date", "x-amz-signature"}, f
    assert f["key"] == f"{ws}/{sid}/${{filename}}"
    assert re.fullmatch(r"[0-9a-f]{64}", f["x-amz-signature"]), f
    assert re.fullmatch(r"\d{8}T\d{6}Z", f["x-amz-date"]), f
    assert f["x-amz-credential"].startswith("upload-session/" + f["x-amz-date"][:8] + "/")
    doc = policy_doc(f["policy"])
    # the policy expires with the session
    assert parse_ts(doc["expiration"]) == parse_ts(sess["expires_at"])
    assert before + dt.timedelta(seconds=3590) < parse_ts(doc["expiration"])
    conds = doc["conditions"]
    assert ["starts-with", "$key", f"{ws}/{sid}/"] in conds, conds
    assert ["content-length-range", 0, 5 * GiB] in conds, conds
    assert {"x-amz-date": f["x-amz-date"]} in conds
    assert {"x-amz-algorithm": f["x-amz-algorithm"]} in conds


def test_sdk_exact_client_50_files_with_sidecars(srv, api):
    ws = unique_ws("up-sdk")
    sid, cfg, _ = new_session(api, ws)
    rnd = random.Random(20261128)
    special = ["with spaces in the name.txt", "naïve café résumé.txt", "日本語のファイル.txt",
               "emoji 📄 report.md", "a+b&c=d;e,f(1).txt"]
    names = [f"doc-{i:02d}.txt" for i in range(50 - len(special))] + special
    files, contents = [], {}
    for i, name in enumerate(names):
        raw = f"{name}\n#{i}\n".encode() + rnd.randbytes(rnd.randrange(0, 4096))
        meta = json.dumps({"source": name, "index": i}).encode()
        contents[name] = raw
        contents[name + ".meta.json"] = meta
        files += [(name, raw), (name + ".meta.json", meta)]

    # 100 small uploads: about a second when all is well (deadline: 30 s)
    results, stats = sdk_upload_many(cfg["url"], cfg["fields"], files, concurrency=10,
                                     deadline=30)
    print(f"\n100 SDK uploads: {stats}")
    assert 1 < stats["peak"] <= 10
    for name, status, headers, body in results:
        assert status < 400, (name, status, body)        # what the SDK requires
        assert status == 204 and body == b"", (name, status, headers, body)

    assert_uploaded(api, ws, sid, 50)

    # the file list: the 50 raw files, never the sidecars, all PENDING
    one, total = list_files_all(api, ws, sid, limit=100)
    assert total == 50 and len(one) == 50
    for item in one:
        check_file_item(item)
        assert item["ingestion_status"] == "PENDING", item
        assert "ingestion_status_reason" not in item
        assert_uuid4(item["file_ingestion_id"])
    assert sorted(i["name"] for i in one) == sorted(names)
    assert len({i["file_ingestion_id"] for i in one}) == 50
    # smaller pages walk the same list in the same order
    for limit in (7, 10, 49, 50):
        items, total = list_files_all(api, ws, sid, limit=limit)
        assert total == 50 and items == one, limit
    first = session_files_page(api, ws, sid)  # default limit 10
    assert first["total"] == 50 and first["has_more"] is True and first["data"] == one[:10]
    beyond = session_files_page(api, ws, sid, limit=100, page_number=2)
    assert beyond == {"data": [], "has_more": False, "total": 50}
    pending, total = list_files_all(api, ws, sid, ingestion_status="PENDING")
    assert total == 50 and pending == one
    for state in ("FAILED", "FINISHED"):
        assert session_files_page(api, ws, sid, ingestion_status=state) == \
            {"data": [], "has_more": False, "total": 0}

    # on disk: one blob per uploaded file (sidecars included), bytes intact
    assert temp_files(srv, sid) == []
    blobs = blob_files(srv, sid)
    assert len(blobs) == 100, blobs
    for b in blobs:
        assert_uuid4(b)
    hashes = blob_hashes(srv, sid)
    want = {hashlib.sha256(c).hexdigest() for c in contents.values()}
    assert len(want) == 100
    assert set(hashes) == want
    assert all(len(v) == 1 for v in hashes.values())


# --------------------------------------------------------------------------
# 2. 2 GiB, streamed, bounded memory
# --------------------------------------------------------------------------

class RssSampler(threading.Thread):
    def __init__(self, parent_pid, interval=0.02):
        super().__init__(daemon=True)
        self.parent_pid = parent_pid
        self.interval = interval
        self.stop_ev = threading.Event()
        self.base = children_rss(parent_pid)
        self.peak = dict(self.base)
        self.first = dict(self.base)
        self.samples = 0

    def run(self):
        while not self.stop_ev.is_set():
            for pid, rss in children_rss(self.parent_pid).items():
                self.first.setdefault(pid, rss)
                self.peak[pid] = max(self.peak.get(pid, 0), rss)
            self.samples += 1
            self.stop_ev.wait(self.interval)

    def stop(self):
        self.stop_ev.set()
        self.join(10)

    def growth(self):
        """{pid: (before, peak, growth)}; a child born during the upload is
        measured from its first sample."""
        out = {}
        for pid, peak in self.peak.items():
            before = self.base.get(pid, self.first[pid])
            out[pid] = (before, peak, peak - before)
        return out


@pytest.mark.posix_layout
def test_2gib_upload_streams_to_disk_with_bounded_memory(srv, api):
    ws = unique_ws("up-big")
    sid, cfg, _ = new_session(api, ws)
    c = upload_client(srv)
    # warm every child up a little first (first requests allocate pools)
    for i in range(6):
        no_content(upload(c, cfg, f"warm-{i}.txt", b"x" * 1000))

    size = 2 * GiB
    block = random.Random(42).randbytes(MiB)
    tail = memoryview(block)[8:]
    boundary = new_boundary()
    head, _ = multipart(form_parts(cfg["fields"], False), boundary, close=False)
    head += b"--" + boundary.encode() + b"\r\n" + Part(
        "file", filename="big.bin", content_type="application/octet-stream").head()
    end = b"\r\n--" + boundary.encode() + b"--\r\n"
    sha = hashlib.sha256()

    def body():
        yield head
        for i in range(size // MiB):
            chunk = struct.pack("<Q", i) + tail
            sha.update(chunk)
            yield chunk
        yield end

    sampler = RssSampler(srv.pid)
    sampler.start()
    t0 = time.monotonic()
    try:
        r = c.post(cfg["url"], content=body(), timeout=300, headers={
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Content-Length": str(len(head) + size + len(end))})
    finally:
        sampler.stop()
    took = time.monotonic() - t0
    no_content(r)

    growth = sampler.growth()
    report = ", ".join(f"pid {pid}: {b / MiB:.1f} -> {p / MiB:.1f} MiB (+{g / MiB:.2f})"
                       for pid, (b, p, g) in sorted(growth.items()))
    print(f"\n2 GiB upload in {took:.1f}s, {sampler.samples} RSS samples: {report}")
    assert sampler.samples >= 20
    assert growth, "no httpd child found"
    # Under sanitizers (US_IT_PRELOAD, `make test SANITIZE=1`) every child,
    # idle ones too, grows by ~14 MiB of ASan bookkeeping while the test runs:
    # the 16 MiB bound is for the normal build; a body held in memory would
    # still blow the looser one by far.
    limit = 64 * MiB if os.environ.get("US_IT_PRELOAD", "").strip() else 16 * MiB
    for pid, (before, peak, g) in growth.items():
        assert g < limit, f"child {pid} grew by {g / MiB:.1f} MiB: {report}"

    # stored intact, as the last of the session's blobs
    items, total = list_files_all(api, ws, sid)
    assert total == 7 and "big.bin" in [i["name"] for i in items]
    assert_uploaded(api, ws, sid, 7)
    assert temp_files(srv, sid) == []
    big = [b for b in blob_files(srv, sid)
           if os.path.getsize(os.path.join(session_dir(srv, sid), b)) == size]
    assert len(big) == 1
    path = os.path.join(session_dir(srv, sid), big[0])
    assert sha256_file(path) == sha.hexdigest()
    os.unlink(path)  # 2 GiB less on the disk for the rest of the module


# --------------------------------------------------------------------------
# 3. rejections: status + S3 error, nothing stored, no temp file
# --------------------------------------------------------------------------

def test_reject_bad_policy_or_signature(srv, api):
    ws = unique_ws("up-sig")
    sid, cfg, _ = new_session(api, ws)
    c = upload_client(srv)
    no_content(upload(c, cfg, "kept.txt", b"kept"))
    state = SessionState(api, srv, ws, sid)
    f = cfg["fields"]
    doc = policy_doc(f["policy"])
    later = dict(doc, expiration="2099-01-01T00:00:00.000Z")
    wide = dict(doc, conditions=[["starts-with", "$key", ""] if isinstance(x, list)
                                 and x[0] == "starts-with" else x for x in doc["conditions"]])

    cases = [
        ("no policy", {"policy": None}, 403, "AccessDenied", MSG_MISSING),
        ("no signature", {"x-amz-signature": None}, 403, "AccessDenied", MSG_MISSING),
        ("empty policy", {"policy": ""}, 403, "AccessDenied", MSG_MISSING),
        ("empty signature", {"x-amz-signature": ""}, 403, "AccessDenied", MSG_MISSING),
        ("tampered policy (start)", {"policy": flip_b64_char(f["policy"], 0)},
         403, "AccessDenied", MSG_BAD_SIG),
        ("tampered policy (middle)", {"policy": flip_b64_char(f["policy"], len(f["policy"]) // 2)},
         403, "AccessDenied", MSG_BAD_SIG),
        ("policy with a later expiration", {"policy": encode_policy(later)},
         403, "AccessDenied", MSG_BAD_SIG),
        ("policy with any key", {"policy": encode_policy(wide)}, 403, "AccessDenied", MSG_BAD_SIG),
        ("wrong signature", {"x-amz-signature": f["x-amz-signature"][:-1] +
                             ("0" if f["x-amz-signature"][-1] != "0" else "1")},
         403, "AccessDenied", MSG_BAD_SIG),
        ("upper-case signature", {"x-amz-signature": f["x-amz-signature"].upper()},
         403, "AccessDenied", MSG_BAD_SIG),
        ("short signature", {"x-amz-signature": f["x-amz-signature"][:63]},
         403, "AccessDenied", MSG_BAD_SIG),
        ("long signature", {"x-amz-signature": f["x-amz-signature"] + "0"},
         403, "AccessDenied", MSG_BAD_SIG),
        ("no key", {"key": None}, 400, "InvalidArgument", MSG_NO_KEY),
    ]
    for what, change, status, code, msg in cases:
        fields = {k: v for k, v in dict(f, **change).items() if v is not None}
        r = post_parts(c, cfg["url"], form_parts(fields, "evil.txt", b"payload " * 1000))
        s3_error(r, status, code, msg)
        state.assert_unchanged(what)
    # the genuine fields still work
    no_content(upload(c, cfg, "after.txt", b"after"))
    assert_uploaded(api, ws, sid, 2)


def test_reject_expired_policy(srv, api):
    ws = unique_ws("up-exp")
    sid, cfg, sess = new_session(api, ws, {"expires_in_seconds": 1})
    c = upload_client(srv)
    wait = (parse_ts(sess["expires_at"]) - utcnow()).total_seconds() + 1.0
    time.sleep(max(0.0, wait))
    r = upload(c, cfg, "late.txt", b"too late")
    s3_error(r, 403, "AccessDenied", MSG_EXPIRED)
    st = get_status(api, ws, sid)
    assert st["status"] == "EXPIRED" and st["uploaded_files"] == 0, st
    assert session_files_page(api, ws, sid) == {"data": [], "has_more": False, "total": 0}
    assert dir_entries(srv, sid) == []


def test_reject_key_or_policy_of_another_session(srv, api):
    ws, ws2 = unique_ws("up-x"), unique_ws("up-y")
    a, cfg_a, _ = new_session(api, ws)
    b, cfg_b, _ = new_session(api, ws)
    o, cfg_o, _ = new_session(api, ws2)
    c = upload_client(srv)
    no_content(upload(c, cfg_a, "a.txt", b"a"))
    no_content(upload(c, cfg_b, "b.txt", b"b"))
    states = [SessionState(api, srv, w, s) for w, s in ((ws, a), (ws, b), (ws2, o))]
    prefix_a = f"{ws}/{a}/"
    fa = cfg_a["fields"]

    def post(url, fields, name="x.txt"):
        return post_parts(c, url, form_parts(fields, name, b"intruder"))

    # B's key with A's policy, to A's URL: the key leaves A's prefix
    s3_error(post(cfg_a["url"], dict(fa, key=cfg_b["fields"]["key"])), 403, "AccessDenied",
             msg_starts_with(prefix_a))
    # keys outside every prefix
    for key in ("/etc/passwd", f"{ws}/${{filename}}", f"{ws2}/{o}/${{filename}}",
                f"{ws}/{a}", f"{ws}/{a}x/${{filename}}", "${filename}"):
        s3_error(post(cfg_a["url"], dict(fa, key=key)), 403, "AccessDenied",
                 msg_starts_with(prefix_a))
    # A's fields posted to B's URL, another workspace's URL, an unknown session
    s3_error(post(cfg_b["url"], fa), 403, "AccessDenied", MSG_OTHER_SESSION)
    s3_error(post(cfg_o["url"], fa), 403, "AccessDenied", MSG_OTHER_SESSION)
    s3_error(post(cfg_a["url"], cfg_o["fields"]), 403, "AccessDenied", MSG_OTHER_SESSION)
    unknown = cfg_a["url"].replace(a, "00000000-0000-4000-8000-000000000000")
    s3_error(post(unknown, fa), 403, "AccessDenied", MSG_OTHER_SESSION)
    # not a session id at all
    s3_error(post(cfg_a["url"] + "x", fa), 404, "NoSuchUpload",
             "The upload session does not exist.")
    for st in states:
        st.assert_unchanged(st.sid)


def test_reject_upload_after_close(srv, api):
    ws = unique_ws("up-closed")
    sid, cfg, _ = new_session(api, ws)
    c = upload_client(srv)
    no_content(upload(c, cfg, "one.txt", b"one"))
    close_session(api, ws, sid)
    state = SessionState(api, srv, ws, sid)
    for name, data in (("two.txt", b"two"), ("one.txt", b"replacement")):
        s3_error(upload(c, cfg, name, data), 403, "AccessDenied", MSG_NOT_OPEN)
        state.assert_unchanged(name)
    assert get_status(api, ws, sid)["uploaded_files"] == 1


def held_upload(srv, cfg, name, first, rest, meanwhile):
    """Upload name over a raw connection: the file's first bytes, then
    meanwhile() runs while the request waits for the rest, then the rest.
    Returns the answer."""
    boundary = new_boundary()
    head, _ = multipart(form_parts(cfg["fields"], False), boundary, close=False)
    head += b"--" + boundary.encode() + b"\r\n" + Part("file", filename=name).head() + first
    tail = rest + b"\r\n--" + boundary.encode() + b"--\r\n"

    def body():
        yield head
        meanwhile()
        yield tail
    resp, _ = raw_post(srv.port, url_path(cfg["url"]),
                       {"Content-Type": f"multipart/form-data; boundary={boundary}",
                        "Content-Length": str(len(head) + len(tail))}, body())
    return resp


@pytest.mark.posix_layout
def test_reject_upload_whose_session_was_closed_and_cleared_meanwhile(srv, api):
    """A small file is created at its end: its session closed, ingested and
    its (empty) directory removed meanwhile, the upload is refused as for a
    closed session, not failed as a storage error."""
    ws = unique_ws("up-cleared")
    sid, cfg, _ = new_session(api, ws)
    no_content(upload(upload_client(srv), cfg, "before.txt", b"before"))
    sdir = session_dir(srv, sid)

    def ingested():
        st = get_status(api, ws, sid)
        done = st["ingestion_status"]["finished_files"] + st["ingestion_status"]["failed_files"]
        return done == st["uploaded_files"] == 1

    def close_and_clear():
        time.sleep(0.5)  # the server has read the file part's head and checked the session
        close_session(api, ws, sid)
        assert wait_for(ingested, 10), get_status(api, ws, sid)
        assert wait_for(lambda: not os.path.exists(sdir), 5), dir_entries(srv, sid)
    resp = held_upload(srv, cfg, "late.txt", b"x" * 1000, b"y" * 1000, close_and_clear)
    s3_error(resp, 403, "AccessDenied", MSG_NOT_OPEN)
    assert ingested()
    assert not os.path.exists(sdir)


@pytest.mark.posix_layout
def test_large_upload_racing_an_abort_leaves_no_directory(srv, api):
    """The clear after an abort keeps a live writer's temp file (and so the
    directory); once the store refuses that upload, its file and the session
    directory go."""
    ws = unique_ws("up-abort-race")
    sid, cfg, _ = new_session(api, ws)
    no_content(upload(upload_client(srv), cfg, "before.txt", b"before"))
    sdir = session_dir(srv, sid)

    def abort_and_clear():
        assert wait_for(lambda: temp_files(srv, sid), 10), dir_entries(srv, sid)
        r = api.delete(session_path(ws, sid))
        assert r.status_code == 204 and r.content == b"", (r.status_code, r.text)
        # the clear took the committed file and kept the live temp file
        assert wait_for(lambda: not blob_files(srv, sid), 30), dir_entries(srv, sid)
        assert len(temp_files(srv, sid)) == 1, dir_entries(srv, sid)
    resp = held_upload(srv, cfg, "big.bin", b"b" * (512 * 1024), b"c" * 1000, abort_and_clear)
    s3_error(resp, 403, "AccessDenied", MSG_NOT_OPEN)
    assert not os.path.exists(sdir), dir_entries(srv, sid)


@pytest.mark.posix_layout
def test_reject_oversize(make_server):
    s = make_server(extra=["UploadSessionMaxFileSize 1M"])
    api = s.client(s.user_all)
    ws = unique_ws("up-big")
    sid, cfg, _ = new_session(api, ws)
    doc = policy_doc(cfg["fields"]["policy"])
    assert ["content-length-range", 0, MiB] in doc["conditions"], doc
    c = upload_client(s)
    state = SessionState(api, s, ws, sid)
    path = url_path(cfg["url"])
    rnd = random.Random(7)

    def raw(data, chunked=False):
        body, ctype = multipart(form_parts(cfg["fields"], "big.bin", data))
        headers = {"Content-Type": ctype}
        if chunked:
            headers["Transfer-Encoding"] = "chunked"
            chunks = [b"%x\r\n%s\r\n" % (len(body[i:i + 65536]), body[i:i + 65536])
                      for i in range(0, len(body), 65536)] + [b"0\r\n\r\n"]
        else:
            headers["Content-Length"] = str(len(body))
            chunks = [body[i:i + 65536] for i in range(0, len(body), 65536)]
        resp, _ = raw_post(s.port, path, headers, chunks)
        assert resp is not None, "no answer"
        return resp

    cases = [("2 MiB, Content-Length", 2 * MiB, False),      # refused from the header
             ("1.5 MiB, Content-Length", 3 * MiB // 2, False),  # refused while streaming
             ("2 MiB, chunked", 2 * MiB, True),
             ("1 MiB + 1", MiB + 1, False)]
    for what, n, chunked in cases:
        s3_error(raw(rnd.randbytes(n), chunked), 400, "EntityTooLarge", MSG_TOO_LARGE)
        state.assert_unchanged(what)
    # exactly the limit is fine, and the server still serves
    data = rnd.randbytes(MiB)
    no_content(upload(c, cfg, "limit.bin", data))
    assert_uploaded(api, ws, sid, 1)
    [blob] = blob_files(s, sid)
    assert sha256_file(os.path.join(session_dir(s, sid), blob)) == hashlib.sha256(data).hexdigest()


def test_reject_missing_file_part_or_filename(srv, api):
    ws = unique_ws("up-nofile")
    sid, cfg, _ = new_session(api, ws)
    c = upload_client(srv)
    state = SessionState(api, srv, ws, sid)
    f = cfg["fields"]
    url = cfg["url"]
    cases = [
        ("fields only", form_parts(f, False), 400, "InvalidArgument", MSG_ONE_FILE),
        ("file named otherwise", form_parts(f, False) + [Part("upload", b"x", filename="x.txt")],
         400, "InvalidArgument", MSG_ONE_FILE),
        ("no part at all", [], 400, "InvalidArgument", MSG_ONE_FILE),
        ("file part without filename", form_parts(f, False) + [Part("file", b"data")],
         400, "InvalidArgument", MSG_NO_FILENAME),
        ("file before the fields", [Part("file", b"data", filename="x.txt")]
         + form_parts(f, False), 403, "AccessDenied", MSG_MISSING),
        ("part without a name", [Part("", disposition="form-data")] + form_parts(f, "x.txt"),
         400, "MalformedPOSTRequest", "A form part has no name."),
    ]
    for what, parts, status, code, msg in cases:
        s3_error(post_parts(c, url, parts), status, code, msg)
        state.assert_unchanged(what)
    # as S3: a key without ${filename} names the file by itself
    fixed = dict(f, key=f"{ws}/{sid}/fixed.txt")
    no_content(post_parts(c, url, form_parts(fixed, False) + [Part("file", b"fixed")]))
    items, _ = list_files_all(api, ws, sid)
    assert [(i["name"], i["ingestion_status"]) for i in items] == [("fixed.txt", "PENDING")]


@pytest.mark.posix_layout
def test_reject_hostile_names(srv, api):
    ws = unique_ws("up-names")
    sid, cfg, _ = new_session(api, ws)
    c = upload_client(srv)
    no_content(upload(c, cfg, "kept.txt", b"kept"))
    state = SessionState(api, srv, ws, sid)
    root_before = tree(srv.dir)
    passwd = os.stat("/etc/passwd")
    f = cfg["fields"]
    prefix = f"{ws}/{sid}/"
    sep = msg_bad_name("the file name contains a path separator")
    ctl = msg_bad_name("the file name contains a control character")
    dots = msg_bad_name("the file name may not be '.' or '..'")
    long_ = msg_bad_name("the file name is longer than 1024 bytes")
    empty = msg_bad_name("the file name is empty")
    utf8 = msg_bad_name("the file name is not valid UTF-8")

    # (description, file part kwargs, extra fields, message); all 400 InvalidArgument
    cases = [
        ("../x", {"filename": "../x"}, {}, sep),
        ("../../../../etc/passwd", {"filename": "../../../../etc/passwd"}, {}, sep),
        ("/etc/passwd", {"filename": "/etc/passwd"}, {}, sep),
        ("key ../../etc/passwd", {"filename": "x"}, {"key": prefix + "../../etc/passwd"}, sep),
        ("key ${filename}/../x", {"filename": "x"},
         {"key": prefix + "${filename}/../../x"}, sep),
        ("key sub/ ${filename}", {"filename": "x"}, {"key": prefix + "sub/${filename}"}, sep),
        ("dir/file", {"filename": "dir/file.txt"}, {}, sep),
        ("a\\b (escaped)", {"filename": "a\\\\b"}, {}, sep),
        ("a\\b (browser style)", {"filename": "a\\b"}, {}, sep),
        ("C:\\dir\\f.txt", {"filename": "C:\\dir\\f.txt"}, {}, sep),
        ("filename* ../x", {"filename_star": "UTF-8''..%2Fx"}, {}, sep),
        ("filename* wins over a good filename", {"filename": "good.txt",
                                                 "filename_star": "UTF-8''..%2F..%2Fx"}, {}, sep),
        ("ESC in filename*", {"filename_star": "UTF-8''a%1Bb"}, {}, ctl),
        ("..", {"filename": ".."}, {}, dots),
        (".", {"filename": "."}, {}, dots),
        (".. in key", {"filename": "x"}, {"key": prefix + ".."}, dots),
        ("1100-byte name", {"filename": "n" * 1096 + ".txt"}, {}, long_),
        ("1026-byte name", {"filename": "é" * 513}, {}, long_),
        ("invalid UTF-8", {"filename": b"a\xffb"}, {}, utf8),
        ("empty name", {"filename": ""}, {}, empty),
    ]
    for what, kw, extra, msg in cases:
        r = post_parts(c, cfg["url"], form_parts(dict(f, **extra), data=b"hostile", **kw))
        s3_error(r, 400, "InvalidArgument", msg)
        state.assert_unchanged(what)

    # NUL cannot be carried: refused as malformed (filename*) or never decoded
    s3_error(post_parts(c, cfg["url"], form_parts(f, data=b"x", filename_star="UTF-8''a%00b")),
             400, "MalformedPOSTRequest", msg_malformed("malformed filename* parameter"))
    state.assert_unchanged("NUL in filename*")
    # raw control characters in the part header: malformed multipart
    for raw_name in (b"a\x01b", b"a\nb"):
        s3_error(post_parts(c, cfg["url"], form_parts(f, data=b"x", filename=raw_name)),
                 400, "MalformedPOSTRequest", re.compile(
                     re.escape(MSG_NOT_MULTIPART[:-1]) + r": .+\."))
        state.assert_unchanged(repr(raw_name))

    # nothing appeared anywhere in the server tree (but the store's files and
    # what background ingestion of other tests' sessions moves to data/files)
    ingested = re.compile(r"^state/data/files(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-"
                          r"[0-9a-f]{4}-[0-9a-f]{12})?$")
    new = {p for p in tree(srv.dir) - root_before
           if not p.startswith("state/store.db") and p != "error.log"
           and not ingested.match(p)}
    assert new == set(), new
    assert os.stat("/etc/passwd").st_mtime == passwd.st_mtime
    for dp, dns, fns in os.walk(srv.dir):
        for n in dns + fns:
            assert n not in ("x", "passwd", "x.txt", "file.txt"), os.path.join(dp, n)

    # a name that decoding would make one no file may have is kept as sent
    # (aiohttp quotes "folder/a.txt" as "folder%2Fa.txt"), as a direct
    # upload's key is; "%00" is never decoded (a NUL cannot be carried)
    as_sent = ["..%2Fx", "a%5Cb", "a%0Ab", "a%0Db.txt", "a%09b", "a%01b", "a%7Fb", "a%FFb",
               "a%C0%AFb", "folder%2Fnested.txt", "%2E%2E", "nul%00.txt"]
    for name in as_sent:
        no_content(upload(c, cfg, name, name.encode()))
    # names of up to 1,024 bytes, as on POST /files (the blob's key is its
    # UUID); a key whose text around ${filename} leaves no room is too long
    longest = ("m" * 1020 + ".txt", "é" * 511 + "zz")
    for name in ("m" * 251 + ".txt",) + longest:
        assert len(name.encode()) == 255 or len(name.encode()) == 1024
        no_content(upload(c, cfg, name, b"long"))
    s3_error(upload(c, cfg, "k" * 1020 + ".txt", b"long",
                    extra_fields={"key": prefix + "x-${filename}"}),
             400, "KeyTooLongError", "Your key is too long")
    items, _ = list_files_all(api, ws, sid)
    assert {"kept.txt", "m" * 251 + ".txt", *longest, *as_sent} == {i["name"] for i in items}
    assert all("/" not in i["name"] and "\\" not in i["name"] for i in items)


def test_reject_malformed_multipart(srv, api):
    ws = unique_ws("up-mp")
    sid, cfg, _ = new_session(api, ws)
    c = upload_client(srv)
    state = SessionState(api, srv, ws, sid)
    url = cfg["url"]
    good, ctype = multipart(form_parts(cfg["fields"], "x.txt", b"0123456789" * 5000))
    boundary = ctype.split("boundary=")[1]

    def send(body, content_type):
        return c.post(url, content=body, headers={"Content-Type": content_type})

    cases = [
        ("no Content-Type", good, None, MSG_NOT_MULTIPART),
        ("urlencoded", b"key=x&policy=y", "application/x-www-form-urlencoded", MSG_NOT_MULTIPART),
        ("multipart/mixed", good, ctype.replace("form-data", "mixed"), MSG_NOT_MULTIPART),
        ("no boundary parameter", good, "multipart/form-data", MSG_NOT_MULTIPART),
        ("empty boundary", good, "multipart/form-data; boundary=", MSG_NOT_MULTIPART),
        ("boundary over 70 chars", good, "multipart/form-data; boundary=" + "b" * 71,
         MSG_NOT_MULTIPART),
        ("two boundaries", good, f"{ctype}; boundary=other", MSG_NOT_MULTIPART),
        ("boundary not in the body", good, "multipart/form-data; boundary=nothere",
         msg_malformed("truncated body")),
        ("body truncated in the file", good[:len(good) // 2], ctype,
         msg_malformed("truncated body")),
        ("body truncated before the closing delimiter", good[:-len(boundary) - 6] , ctype,
         msg_malformed("truncated body")),
        ("closing delimiter cut", good[:-3], ctype, msg_malformed("truncated body")),
        ("junk after a boundary", good.replace(f"--{boundary}\r\n".encode(),
                                               f"--{boundary}junk\r\n".encode(), 1), ctype,
         msg_malformed("invalid characters after boundary")),
        ("part without Content-Disposition", good.replace(
            b"Content-Disposition: form-data; name=\"key\"", b"X-Other: 1", 1), ctype,
         msg_malformed("part without Content-Disposition: form-data")),
        ("not form-data", good.replace(b"Content-Disposition: form-data; name=\"policy\"",
                                       b"Content-Disposition: attachment; name=\"policy\"", 1),
         ctype, msg_malformed("part Content-Disposition is not form-data")),
        ("header block never ends", good[:good.index(b"\r\n\r\n")] + b"\r\nX: " +
         b"y" * 20000, ctype, msg_malformed("header block too large")),
    ]
    for what, body, content_type, msg in cases:
        r = c.post(url, content=body,
                   headers={"Content-Type": content_type} if content_type else {})
        s3_error(r, 400, "MalformedPOSTRequest", msg)
        state.assert_unchanged(what)
    # the untouched body is fine, and so is one without the CRLF after the close
    no_content(send(good, ctype))
    no_content(send(good[:-2].replace(b'filename="x.txt"', b'filename="y.txt"'), ctype))
    assert_uploaded(api, ws, sid, 2)


# --------------------------------------------------------------------------
# 4. a client vanishing mid-file
# --------------------------------------------------------------------------

def abort_mid_file(srv, sid, cfg, how, name="gone.bin"):
    """Send the head of an upload declaring 256 MiB, 12 MiB of the file,
    wait until the server has written at least 4 MiB of it into a temp file,
    then vanish: "close" (FIN) or "reset" (RST)."""
    boundary = new_boundary()
    head, _ = multipart(form_parts(cfg["fields"], False), boundary, close=False)
    head += b"--" + boundary.encode() + b"\r\n" + Part("file", filename=name).head()
    req = (f"POST {url_path(cfg['url'])} HTTP/1.1\r\nHost: 127.0.0.1:{srv.port}\r\n"
           f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
           f"Content-Length: {len(head) + 256 * MiB}\r\n\r\n").encode() + head
    chunk = random.Random(3).randbytes(MiB)
    sock = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
    try:
        sock.sendall(req)
        for _ in range(12):
            sock.sendall(chunk)

        def temp_big():
            for t in temp_files(srv, sid):
                try:
                    if os.path.getsize(os.path.join(session_dir(srv, sid), t)) >= 4 * MiB:
                        return True
                except FileNotFoundError:
                    pass
            return False
        # the server is writing the file into a temp file ...
        assert wait_for(temp_big, 10), (how, dir_entries(srv, sid))
        if how == "reset":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    finally:
        sock.close()  # ... and the client goes away


@pytest.mark.posix_layout
def test_client_disconnect_mid_file(srv, api):
    ws = unique_ws("up-gone")
    sid, cfg, _ = new_session(api, ws)
    c = upload_client(srv)
    no_content(upload(c, cfg, "before.txt", b"before"))
    state = SessionState(api, srv, ws, sid)
    for how in ("close", "reset"):
        abort_mid_file(srv, sid, cfg, how)
        assert wait_no_temp(srv, sid, 15), (how, dir_entries(srv, sid))
        state.assert_unchanged(how)
        # the server keeps serving
        no_content(upload(c, cfg, f"after-{how}.txt", b"after"))
        state = SessionState(api, srv, ws, sid)

    items, _ = list_files_all(api, ws, sid)
    assert sorted(i["name"] for i in items) == ["after-close.txt", "after-reset.txt",
                                                "before.txt"]
    assert len(blob_files(srv, sid)) == 3


@pytest.mark.posix_layout
def test_aborted_upload_log_line(srv, api):
    """The module notes an aborted upload at info level, with its byte count."""
    ws = unique_ws("up-gone-log")
    sid, cfg, _ = new_session(api, ws)
    start = len(srv.log_text())
    abort_mid_file(srv, sid, cfg, "close")
    assert wait_no_temp(srv, sid, 15)

    def lines():
        return [ln for ln in srv.log_text()[start:].splitlines() if "US0208" in ln]
    assert wait_for(lines, 5), srv.log_tail()
    for ln in lines():
        assert "[upload_session:info]" in ln, ln
        assert re.search(r"US0208: upload aborted after \d+ bytes$", ln), ln


# --------------------------------------------------------------------------
# 5. last wins; success_action_status
# --------------------------------------------------------------------------

@pytest.mark.posix_layout
def test_same_name_twice_last_wins(srv, api):
    ws = unique_ws("up-twice")
    sid, cfg, _ = new_session(api, ws)
    c = upload_client(srv)
    no_content(upload(c, cfg, "same.txt", b"first version"))
    [first] = list_files_all(api, ws, sid)[0]
    no_content(upload(c, cfg, "same.txt", b"second, longer version"))
    items, total = list_files_all(api, ws, sid)
    assert total == 1 and items[0]["name"] == "same.txt", items
    assert items[0]["ingestion_status"] == "PENDING"
    assert_uploaded(api, ws, sid, 1)
    [blob] = blob_files(srv, sid)
    with open(os.path.join(session_dir(srv, sid), blob), "rb") as fh:
        assert fh.read() == b"second, longer version"
    assert temp_files(srv, sid) == []
    # the sidecar follows the same rule and never counts
    for v in (b'{"v": 1}', b'{"v": 2}'):
        no_content(upload(c, cfg, "same.txt.meta.json", v))
    assert_uploaded(api, ws, sid, 1)
    assert len(blob_files(srv, sid)) == 2
    assert set(blob_hashes(srv, sid)) == {hashlib.sha256(b"second, longer version").hexdigest(),
                                         hashlib.sha256(b'{"v": 2}').hexdigest()}
    # the SDK way, concurrently: still one entry, one blob, one of the contents
    versions = [("race.txt", f"version {i}".encode()) for i in range(8)]
    results, _ = sdk_upload_many(cfg["url"], cfg["fields"], versions, concurrency=8,
                                 deadline=20)
    assert [r[1] for r in results] == [204] * 8
    items, total = list_files_all(api, ws, sid)
    assert total == 2 and sorted(i["name"] for i in items) == ["race.txt", "same.txt"]
    assert_uploaded(api, ws, sid, 2)
    hashes = blob_hashes(srv, sid)
    assert len(blob_files(srv, sid)) == 3
    assert len(set(hashes) & {hashlib.sha256(v).hexdigest() for _, v in versions}) == 1
    assert first["file_ingestion_id"] in [i["file_ingestion_id"] for i in items]


def test_success_action_status(srv, api):
    ws = unique_ws("up-sas")
    sid, cfg, _ = new_session(api, ws)
    c = upload_client(srv)

    r = upload(c, cfg, "ok200.txt", b"two hundred", {"success_action_status": "200"})
    no_content(r, 200)

    data = b"two hundred & one <xml>"
    name = "two & <one> 'q'.txt"
    r = upload(c, cfg, name, data, {"success_action_status": "201"})
    assert r.status_code == 201, r.text
    assert r.headers["content-type"].split(";")[0] == "application/xml"
    root = ET.fromstring(r.content)
    assert root.tag == "PostResponse", r.text
    assert root.find("Key").text == f"{ws}/{sid}/{name}"
    assert root.find("ETag").text == '"%s"' % hashlib.sha256(data).hexdigest()
    assert root.find("Bucket") is not None and root.find("Location") is not None
    assert root.find("Location").text == r.headers["location"]

    # anything else: the default 204 (as S3)
    for v in ("204", "202", "302", "abc", ""):
        no_content(upload(c, cfg, f"other-{v}.txt", b"x", {"success_action_status": v}))
    # after the file it is ignored (S3 ignores fields after the file)
    body, ctype = multipart(form_parts(cfg["fields"], "late.txt", b"x")[:-1] + [
        Part("file", b"x", filename="late.txt"), Part("success_action_status", "201")])
    no_content(c.post(cfg["url"], content=body, headers={"Content-Type": ctype}))

    items, total = list_files_all(api, ws, sid)
    assert total == 8 and name in [i["name"] for i in items]
    assert_uploaded(api, ws, sid, 8)


def test_post_response_key_with_non_ascii_name(srv, api):
    ws = unique_ws("up-sas8")
    sid, cfg, _ = new_session(api, ws)
    c = upload_client(srv)
    for name in ("créé.txt", "日本語.txt", "emoji 📄.md"):
        data = name.encode() * 3
        r = upload(c, cfg, name, data, {"success_action_status": "201"})
        assert r.status_code == 201, r.text
        root = ET.fromstring(r.content)
        assert root.find("Key").text == f"{ws}/{sid}/{name}", r.content
        assert root.find("ETag").text == '"%s"' % hashlib.sha256(data).hexdigest()
    items, _ = list_files_all(api, ws, sid)
    assert sorted(i["name"] for i in items) == sorted(["créé.txt", "日本語.txt", "emoji 📄.md"])


# --------------------------------------------------------------------------
# 6. behind a reverse proxy with a path prefix
# --------------------------------------------------------------------------

def proxied_server(make_server):
    """A module server that also listens on a second port as a reverse
    proxy mapping /prefix/ to itself; UploadSessionPublicURL is the proxy's
    /prefix. Returns (server, public base URL)."""
    s = make_server(start=False)
    pport = free_port()
    public = f"http://127.0.0.1:{pport}/prefix"
    s.overrides["UploadSessionPublicURL"] = public
    s.extra += [
        f"LoadModule proxy_module {APACHE_MODULES}/mod_proxy.so",
        f"LoadModule proxy_http_module {APACHE_MODULES}/mod_proxy_http.so",
        f"Listen 127.0.0.1:{pport}",
        f"<VirtualHost 127.0.0.1:{pport}>",
        "  ServerName proxy.local",
        "  UploadSession Off",
        f'  ProxyPass "/prefix/" "http://127.0.0.1:{s.port}/"',
        "</VirtualHost>",
    ]
    s.start()
    assert wait_for(lambda: port_open(pport), 5)
    return s, public


def test_behind_reverse_proxy_with_prefix(make_server):
    s, public = proxied_server(make_server)
    api = new_client(base_url=f"{public}/api/v1/workspaces/", headers=s.user_all.headers)
    up = new_client(timeout=60)
    try:
        ws = unique_ws("up-proxy")
        sid, cfg, sess = new_session(api, ws)
        assert cfg["url"] == f"{public}/api/v1/upload_target/{sid}"
        assert sess["documentation_url"].startswith(public + "/")

        # hand-built, the SDK's client, and a bigger one that streams through
        no_content(upload(up, cfg, "via proxy.txt", b"proxied"))
        results, _ = sdk_upload_many(cfg["url"], cfg["fields"],
                                     [("sdk ü.txt", b"sdk"), ("sdk ü.txt.meta.json", b"{}")])
        assert [r[1] for r in results] == [204, 204], results
        big = random.Random(9).randbytes(5 * MiB + 17)
        no_content(upload(up, cfg, "big.bin", big))
        r = upload(up, cfg, "created.txt", b"c", {"success_action_status": "201"})
        assert r.status_code == 201, r.text
        assert ET.fromstring(r.content).find("Key").text == f"{ws}/{sid}/created.txt"
        # rejections pass through unchanged
        s3_error(upload(up, cfg, "../x", b"x"), 400, "InvalidArgument",
                 msg_bad_name("the file name contains a path separator"))

        items, total = list_files_all(api, ws, sid)
        assert total == 4
        assert sorted(i["name"] for i in items) == sorted(
            ["via proxy.txt", "sdk ü.txt", "big.bin", "created.txt"])
        assert all(i["ingestion_status"] == "PENDING" for i in items)
        # the same seen directly
        direct = s.client(s.user_all)
        assert get_status(direct, ws, sid)["uploaded_files"] == 4
        assert hashlib.sha256(big).hexdigest() in blob_hashes(s, sid)
        assert temp_files(s, sid) == []
        close_session(api, ws, sid)
        s3_error(upload(up, cfg, "late.txt", b"x"), 403, "AccessDenied", MSG_NOT_OPEN)
    finally:
        api.close()
        up.close()


def test_post_response_location_uses_public_url(make_server):
    """success_action_status 201 behind the proxy: the Location (header and
    XML) must be reachable by the client, i.e. built on UploadSessionPublicURL,
    not on the backend address the proxy used."""
    s, public = proxied_server(make_server)
    api = new_client(base_url=f"{public}/api/v1/workspaces/", headers=s.user_all.headers)
    up = new_client(timeout=60)
    try:
        ws = unique_ws("up-proxy-loc")
        sid, cfg, _ = new_session(api, ws)
        r = upload(up, cfg, "created.txt", b"c", {"success_action_status": "201"})
        assert r.status_code == 201, r.text
        loc = ET.fromstring(r.content).find("Location").text
        assert loc == r.headers.get("location"), r.headers
        assert loc.startswith(public + "/"), loc
    finally:
        api.close()
        up.close()

"""Per-user OPEN-session limit (406) and the configured maximum lifetime.
Each test runs its own httpd."""

import datetime as dt
import os
import time
import urllib.parse

from us_testkit.ingest import close_and_wait, list_ws_files, new_session, session_files, upload_one
from us_testkit.procs import wait_for
from us_testkit.uploads import (MSG_TOO_LARGE, form_parts, multipart, raw_post, s3_error,
                                upload)
from us_testkit.api import (assert_ts_between, check, close_session, create_session, detail_of,
                            e_enum_write_mode, e_le, get_status, list_all, list_sessions,
                            parse_ts, sessions_path, utcnow, v422)


def test_default_limit_is_10_open_sessions(server_factory):
    # directive omitted: the module's default (10) applies
    s = server_factory(max_open=None)
    c = s.client(s.user_all)
    ws = "ws-limit"
    sids = [create_session(c, ws)["session_id"] for _ in range(10)]

    # the 11th: 406 {"detail": "..."}, nothing created
    detail_of(c.post(sessions_path(ws), json={}), 406)
    detail_of(c.post(sessions_path(ws), json={"write_mode": "FAIL",
                                              "expires_in_seconds": 60}), 406)
    items, total = list_all(c, ws)
    assert total == 10 and sorted(i["session_id"] for i in items) == sorted(sids)
    assert all(i["status"] == "OPEN" for i in items)

    # validation still comes first at the limit
    check(c.post(sessions_path(ws), json={"write_mode": "X"}), 422,
          v422(e_enum_write_mode("X")))

    # another user's sessions do not count, and theirs do not count for us
    c2 = s.client(s.user_all2)
    other = create_session(c2, ws)["session_id"]
    assert get_status(c2, ws, other)["created_by"] == s.user_all2.created_by
    detail_of(c.post(sessions_path(ws), json={}), 406)

    # closing one frees a slot: exactly one more create succeeds
    close_session(c, ws, sids[3])
    new = create_session(c, ws)["session_id"]
    assert get_status(c, ws, new)["status"] == "OPEN"
    detail_of(c.post(sessions_path(ws), json={}), 406)

    items, total = list_all(c, ws)
    assert total == 12
    assert sum(1 for i in items if i["status"] == "OPEN") == 11  # 10 + other user's
    assert sum(1 for i in items if i["status"] == "CLOSED") == 1


def test_configured_limit_and_expired_sessions_do_not_count(server_factory):
    s = server_factory(max_open=3)
    c = s.client(s.user_all)
    ws = "ws-limit3"
    short = [create_session(c, ws, {"expires_in_seconds": 1})["session_id"]
             for _ in range(3)]
    detail_of(c.post(sessions_path(ws), json={}), 406)

    # once they are past expires_at they are EXPIRED, not OPEN: slots free again
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:
        if all(get_status(c, ws, sid)["status"] == "EXPIRED" for sid in short):
            break
        time.sleep(0.1)
    for sid in short:
        assert get_status(c, ws, sid)["status"] == "EXPIRED"
    fresh = [create_session(c, ws)["session_id"] for _ in range(3)]
    detail_of(c.post(sessions_path(ws), json={}), 406)
    d = list_sessions(c, ws, limit=100, is_expired="false")
    assert d["total"] == 3 and [i["session_id"] for i in d["data"]] == fresh[::-1]


def test_max_lifetime_caps_expires_in_seconds(server_factory):
    s = server_factory(max_lifetime=60)
    c = s.client(s.user_all)
    ws = "ws-life"
    for body, lifetime in (({}, 60), ({"expires_in_seconds": 30}, 30),
                           ({"expires_in_seconds": 60}, 60),
                           ({"expires_in_seconds": 61}, 60),
                           ({"expires_in_seconds": 3600}, 60),
                           ({"expires_in_seconds": 86400}, 60)):
        t0 = utcnow()
        created = check(c.post(sessions_path(ws), json=body), 201)
        t1 = utcnow()
        assert_ts_between(created["expires_at"], t0 + dt.timedelta(seconds=lifetime),
                          t1 + dt.timedelta(seconds=lifetime))
        st = get_status(c, ws, created["session_id"])
        assert st["expires_at"] == created["expires_at"]
        life = parse_ts(st["expires_at"]) - parse_ts(st["created_at"])
        assert abs(life.total_seconds() - lifetime) <= 1.0, (body, st)
        assert st["status"] == "OPEN"
    # the API's own bound is still 86400, whatever the server's cap
    check(c.post(sessions_path(ws), json={"expires_in_seconds": 86401}), 422,
          v422(e_le(["body", "expires_in_seconds"], 86401, 86400)))


def test_max_files_per_session_refuses_new_names_past_it(server_factory):
    """UploadSessionMaxFilesPerSession 3: the fourth new name is refused by
    the upload target like a policy violation (403 AccessDenied, S3's XML)
    and counted nowhere; a name uploaded again and a first sidecar still
    pass (sidecars have a bound of their own)."""
    s = server_factory(extra=["UploadSessionMaxFilesPerSession 3"])
    c = s.client(s.user_all)
    ws = "ws-max-files"
    sid, cfg = new_session(c, ws)
    for name in ("a.txt", "b.txt", "c.txt"):
        upload_one(c, cfg, name, name.encode())
    full = "Invalid according to Policy: the upload session holds its maximum of 3 files."
    s3_error(upload(c, cfg, "d.txt", b"d"), 403, "AccessDenied", full)
    upload_one(c, cfg, "a.txt", b"a again")
    upload_one(c, cfg, "a.txt.meta.json", b'{"k": 1}')
    s3_error(upload(c, cfg, "e.txt", b"e"), 403, "AccessDenied", full)
    st = get_status(c, ws, sid)
    assert st["uploaded_files"] == 3, st
    assert sorted(session_files(c, ws, sid)) == ["a.txt", "b.txt", "c.txt"]
    # the refused uploads and the replaced a.txt left nothing behind: the
    # session holds the blobs of a.txt, b.txt, c.txt and the sidecar
    left = os.path.join(s.dir, "state", "data", "sessions", sid)
    assert len(os.listdir(left)) == 4, os.listdir(left)
    close_and_wait(c, ws, sid, 3)
    assert sorted(i["name"] for i in list_ws_files(s, c, ws)) == ["a.txt", "b.txt", "c.txt"]
    # the counters are final before the ingestion clears what is left of
    # the session (the sidecar's blob) and removes its directory
    assert wait_for(lambda: not os.path.exists(left), 10), os.listdir(left)
    # another session has its own count
    sid2, cfg2 = new_session(c, ws)
    upload_one(c, cfg2, "d.txt", b"d")
    assert get_status(c, ws, sid2)["uploaded_files"] == 1


def test_max_files_per_session_bounds_sidecars(server_factory):
    """UploadSessionMaxFilesPerSession 2 bounds the sidecars apart from the
    raw files: the third new sidecar name is refused as the third new file
    name is (403 AccessDenied, S3's XML), a sidecar name sent again is
    taken, and the raw files still have their 2."""
    s = server_factory(extra=["UploadSessionMaxFilesPerSession 2"])
    c = s.client(s.user_all)
    ws = "ws-max-sidecars"
    sid, cfg = new_session(c, ws)
    full = "Invalid according to Policy: the upload session holds its maximum of 2 files."
    upload_one(c, cfg, "a.txt.meta.json", b'{"k": 1}')
    upload_one(c, cfg, "b.txt.meta.json", b'{"k": 2}')
    s3_error(upload(c, cfg, "c.txt.meta.json", b'{"k": 3}'), 403, "AccessDenied", full)
    s3_error(upload(c, cfg, "orphan.meta.json", b"{}"), 403, "AccessDenied", full)
    upload_one(c, cfg, "a.txt.meta.json", b'{"k": "again"}')
    upload_one(c, cfg, "a.txt", b"a")
    upload_one(c, cfg, "b.txt", b"b")
    s3_error(upload(c, cfg, "c.txt", b"c"), 403, "AccessDenied", full)
    s3_error(upload(c, cfg, "d.txt.meta.json", b"{}"), 403, "AccessDenied", full)
    st = get_status(c, ws, sid)
    assert st["uploaded_files"] == 2, st
    assert sorted(session_files(c, ws, sid)) == ["a.txt", "b.txt"]
    if s.storage == "posix":
        # the refused uploads and the replaced sidecar left nothing behind
        left = os.path.join(s.dir, "state", "data", "sessions", sid)
        assert len(os.listdir(left)) == 4, os.listdir(left)
    close_and_wait(c, ws, sid, 2)
    files = {i["name"]: i for i in list_ws_files(s, c, ws)}
    assert sorted(files) == ["a.txt", "b.txt"], files
    assert files["a.txt"]["meta"] == {"k": "again"}, files["a.txt"]
    assert files["b.txt"]["meta"] == {"k": 2}, files["b.txt"]


def test_sidecar_above_1_mib_is_too_large(server_factory):
    """A sidecar's limit is 1 MiB (what ingestion reads of one) whatever
    UploadSessionMaxFileSize allows: 1 MiB + 1 is refused with 400
    EntityTooLarge and recorded nowhere; 1 MiB, and a raw file above it,
    are taken."""
    mib = 1024 * 1024
    s = server_factory(extra=["UploadSessionMaxFileSize 2M"])
    c = s.client(s.user_all)
    ws = "ws-big-sidecar"
    sid, cfg = new_session(c, ws)
    path = urllib.parse.urlsplit(cfg["url"]).path
    for n in (mib + 1, 2 * mib):
        body, ctype = multipart(form_parts(cfg["fields"], "big.bin.meta.json", b" " * n))
        resp, _ = raw_post(s.port, path, {"Content-Type": ctype,
                                          "Content-Length": str(len(body))}, [body])
        assert resp is not None, "no answer"
        s3_error(resp, 400, "EntityTooLarge", MSG_TOO_LARGE)
    upload_one(c, cfg, "big.bin", b"x" * (mib + 1))
    upload_one(c, cfg, "big.bin.meta.json", b'{"k": 1}' + b" " * (mib - 8))
    assert get_status(c, ws, sid)["uploaded_files"] == 1
    close_and_wait(c, ws, sid, 1)
    [f] = list_ws_files(s, c, ws)
    assert (f["name"], f["size"], f["meta"]) == ("big.bin", mib + 1, {"k": 1}), f

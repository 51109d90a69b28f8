"""UploadSessionS3DirectUpload On: a session's aws_prefixed_request_config is
a real AWS SigV4 POST policy for the bucket of the s3 storage, checked by
the object store itself (the session's private radosgw,
us_testkit.radosgw.shared_info). The SDK-shaped client uploads straight
into the bucket; radosgw refuses a tampered policy, a key outside the
session's prefix, an oversize file and an expired policy.
`make integration-s3` runs this file.
"""

import base64
import json
import re
import time
import xml.etree.ElementTree as ET

import pytest

from us_testkit.api import check, create_session
from us_testkit.ingest import (S3_DIRECT, close_and_wait, direct_server, make_server,  # noqa: F401
                               module_so, s3_server, session_files, upload_all)
from us_testkit.procs import wait_for
from us_testkit.radosgw import shared_info
from us_testkit.server import S3_BUCKET, configtest, new_client
from us_testkit.uploads import s3_keys, s3_object, upload

FIELDS = {"key", "policy", "x-amz-algorithm", "x-amz-credential", "x-amz-date",
          "x-amz-signature"}


def rgw_error(resp, status, code, message=None):
    """radosgw's XML error: status, Code (and Message when given)."""
    assert resp.status_code == status, (resp.status_code, resp.text)
    root = ET.fromstring(resp.content)
    assert root.tag == "Error", resp.text
    assert root.find("Code").text == code, resp.text
    if message is not None:
        assert (root.find("Message").text or "") == message, resp.text


def policy_of(cfg):
    return json.loads(base64.b64decode(cfg["fields"]["policy"]))


def test_create_answers_a_sigv4_post_policy_for_the_bucket(direct_server):
    s = direct_server(extra=["UploadSessionMaxFileSize 1M"])
    api = s.client(s.user_all)
    sess = create_session(api, "ws-d", {"expires_in_seconds": 600})
    sid, cfg = sess["session_id"], sess["aws_prefixed_request_config"]
    info = shared_info()
    assert cfg["url"] == f"{info['endpoint']}/{S3_BUCKET}", cfg
    f = cfg["fields"]
    assert set(f) == FIELDS, f
    prefix = f"{s.s3_prefix}/sessions/{sid}/"
    assert f["key"] == prefix + "${filename}", f
    assert f["x-amz-algorithm"] == "AWS4-HMAC-SHA256"
    day = f["x-amz-date"][:8]
    assert f["x-amz-credential"] == f"{info['access_key']}/{day}/us-east-1/s3/aws4_request", f
    assert len(f["x-amz-signature"]) == 64 and int(f["x-amz-signature"], 16) >= 0
    pol = policy_of(cfg)
    # whole seconds, as AWS documents it and boto writes it, never later
    assert pol["expiration"] == sess["expires_at"][:19] + ".000Z", (pol, sess)
    conds = pol["conditions"]
    assert {"bucket": S3_BUCKET} in conds, conds
    assert ["starts-with", "$key", prefix] in conds, conds
    assert ["content-length-range", 0, 1024 * 1024] in conds, conds
    assert {"x-amz-credential": f["x-amz-credential"]} in conds, conds
    assert {"x-amz-date": f["x-amz-date"]} in conds, conds
    assert {"x-amz-algorithm": "AWS4-HMAC-SHA256"} in conds, conds
    # nothing of the secret key in the answer or the log
    assert info["secret_key"] not in json.dumps(sess)
    assert info["secret_key"] not in s.log_text()


def test_sdk_client_uploads_into_the_bucket(direct_server):
    """The official SDK's upload (aiohttp form, unmodified) against the
    answer: every file is an object under the session's prefix, whole; an
    empty file and a sidecar too. Nothing reaches the module."""
    s = direct_server()
    api = s.client(s.user_all)
    sess = create_session(api, "ws-d")
    sid, cfg = sess["session_id"], sess["aws_prefixed_request_config"]
    files = [(f"doc{i}.txt", f"content {i}\n".encode() * (i + 1)) for i in range(20)]
    files += [("empty.txt", b""), ("doc0.txt.meta.json", b'{"k": 1}'),
              ("big.bin", bytes(range(256)) * 4096 * 9)]  # 9 MiB: above one 8 MiB part
    before = s.log_text()
    assert upload_all(cfg, files) == len(files)
    assert sorted(s3_keys(s, f"sessions/{sid}/")) == sorted(n for n, _ in files)
    for name, data in files:
        assert s3_object(s, f"sessions/{sid}/{name}") == data, name
    assert "upload_target" not in s.log_text()[len(before):]


def test_sdk_quoted_names_are_ingested_decoded(direct_server):
    """The SDK's aiohttp form percent-quotes a filename and the bucket keeps
    the key as sent: the workspace file gets the name the client gave (as
    through the upload target), its sidecar matched by that name. A key
    whose decoded name could not be a file name keeps the key as its name;
    one that no name can come from (a '/' in it too) is left out, logged,
    and removed."""
    s = direct_server()
    api = s.client(s.user_all)
    ws = "ws-d-names"
    sess = create_session(api, ws)
    sid, cfg = sess["session_id"], sess["aws_prefixed_request_config"]
    files = [("a b.txt", b"spaced"), ("caf\u00e9.txt", b"coffee"),
             ("caf\u00e9.txt.meta.json", b'{"k": 1}')]
    assert upload_all(cfg, files) == 3
    keys = sorted(s3_keys(s, f"sessions/{sid}/"))
    assert keys == ["a%20b.txt", "caf%C3%A9.txt", "caf%C3%A9.txt.meta.json"], keys
    with new_client() as c:
        # the key as sent, unquoted; a '/' makes a key deeper under the prefix
        for name in ("bad%2Fname.txt", "tab\there.txt", "dir/a.txt"):
            r = upload(c, cfg, name, b"x")
            assert r.status_code == 204 and r.content == b"", r.text
    close_and_wait(api, ws, sid, 3)
    listed = session_files(api, ws, sid)
    assert {n: f["ingestion_status"] for n, f in listed.items()} == {
        "a b.txt": "FINISHED", "bad%2Fname.txt": "FINISHED", "caf\u00e9.txt": "FINISHED"}
    got = check(api.get(f"/{ws}/files", params={"limit": 10}), 200)
    assert {f["name"]: f["meta"] for f in got["data"]} == {
        "a b.txt": {}, "bad%2Fname.txt": {}, "caf\u00e9.txt": {"k": 1}}, got
    assert re.search(r"US1026: ingest: session " + sid + r": 2 objects whose key is no valid "
                     r"file name", s.log_text()), s.log_text()[-3000:]
    wait_for(lambda: s3_keys(s, f"sessions/{sid}/") == [], 15)
    assert s3_keys(s, f"sessions/{sid}/") == []


def test_the_bucket_refuses_what_the_policy_does_not_allow(direct_server):
    s = direct_server(extra=["UploadSessionMaxFileSize 1K"])
    api = s.client(s.user_all)
    sess = create_session(api, "ws-d")
    sid, cfg = sess["session_id"], sess["aws_prefixed_request_config"]
    with new_client() as c:
        # a key outside the session's prefix
        other = dict(cfg, fields=dict(cfg["fields"], key=f"{s.s3_prefix}/files/${{filename}}"))
        rgw_error(upload(c, other, "a.txt", b"x"), 403, "AccessDenied",
                  f"Policy condition failed: starts-with: $key, {s.s3_prefix}/sessions/{sid}/")
        # a larger range written into the policy: its signature no longer matches
        pol = policy_of(cfg)
        pol["conditions"] = [["content-length-range", 0, 10 ** 9] if isinstance(x, list) and
                             x[0] == "content-length-range" else x for x in pol["conditions"]]
        forged = base64.b64encode(json.dumps(pol).encode()).decode()
        tampered = dict(cfg, fields=dict(cfg["fields"], policy=forged))
        rgw_error(upload(c, tampered, "b.txt", b"y" * 2048), 403, "AccessDenied")
        # a signature not ours
        badsig = dict(cfg, fields=dict(cfg["fields"], **{"x-amz-signature": "0" * 64}))
        rgw_error(upload(c, badsig, "c.txt", b"z"), 403, "AccessDenied")
        # oversize: one byte above UploadSessionMaxFileSize
        rgw_error(upload(c, cfg, "d.txt", b"w" * 1025), 400, "EntityTooLarge")
        # exactly the limit passes
        r = upload(c, cfg, "e.txt", b"v" * 1024)
        assert r.status_code == 204 and r.content == b"", r.text
    assert s3_keys(s, f"sessions/{sid}/") == ["e.txt"]
    assert s3_keys(s, "files/") == []


def test_an_expired_policy_is_refused(direct_server):
    s = direct_server()
    api = s.client(s.user_all)
    sess = create_session(api, "ws-d", {"expires_in_seconds": 1})
    sid, cfg = sess["session_id"], sess["aws_prefixed_request_config"]
    time.sleep(2.2)
    with new_client() as c:
        rgw_error(upload(c, cfg, "late.txt", b"late"), 403, "AccessDenied", "Policy expired")
    assert s3_keys(s, f"sessions/{sid}/") == []


def test_direct_upload_needs_s3_storage(make_server):
    s = make_server(start=False, storage="posix", extra=[S3_DIRECT])
    rc, out = configtest(s)
    assert rc != 0, out
    assert ("UploadSessionS3DirectUpload and UploadSessionS3PartMemory need "
            "UploadSessionStorage s3") in out, out


def test_off_keeps_the_module_upload_target(make_server):
    s = make_server(storage="s3", extra=["UploadSessionS3DirectUpload Off"])
    api = s.client(s.user_all)
    cfg = create_session(api, "ws-d")["aws_prefixed_request_config"]
    assert cfg["url"].startswith(s.public_url + "/api/v1/upload_target/"), cfg

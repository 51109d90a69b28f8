"""us_sigv4 against a real S3 server: Ceph's radosgw, started privately on
loopback (us_testkit.radosgw). Requests and POST policies are signed by
build/us-s3sign (tools/us_s3sign.c); POST uploads are sent the way the
official SDK sends them (us_testkit.uploads.sdk_upload_many: the policy's
form fields, then `file`).

The session's radosgw (us_testkit.radosgw.shared_info). Skipped when Ceph
is not installed (scripts/install-deps.sh installs it).
"""

import hashlib
import os
import re
import time
import types
import urllib.error
import urllib.request

import pytest

from us_testkit.radosgw import missing_binaries, shared_info
from us_testkit.s3sign import S3SIGN, S3Client
from us_testkit.uploads import sdk_upload_many

_missing = missing_binaries()
pytestmark = pytest.mark.skipif(
    bool(_missing), reason="radosgw tests need Ceph (scripts/install-deps.sh); "
                           "missing: " + " ".join(_missing))

BUCKET = "sigv4-tests"


@pytest.fixture(scope="module")
def rgw():
    """The session's radosgw: endpoint, access_key, secret_key."""
    return types.SimpleNamespace(**shared_info())


@pytest.fixture(scope="module")
def s3(rgw):
    assert os.access(S3SIGN, os.X_OK), f"{S3SIGN} missing: run `make tools`"
    c = S3Client(rgw.endpoint, rgw.access_key, rgw.secret_key)
    status, _h, body = c.request("PUT", f"/{BUCKET}")
    assert (status, body) == (200, b"")
    return c


def error_code(body):
    m = re.search(rb"<Code>([^<]*)</Code>", body)
    return m.group(1).decode() if m else None


def error_message(body):
    m = re.search(rb"<Message>([^<]*)</Message>", body)
    return m.group(1).decode() if m else None


def test_put_get_list_delete(s3):
    data = b"hello from us_sigv4\n" * 100
    path = f"/{BUCKET}/obj/a%20b%2Bc.txt"  # key "obj/a b+c.txt"

    status, h, body = s3.request("PUT", path, body=data)
    assert (status, body) == (200, b"")
    assert h["etag"] == '"%s"' % hashlib.md5(data).hexdigest()

    status, h, body = s3.request("GET", path)
    assert status == 200 and body == data
    assert h["content-length"] == str(len(data))

    status, h, body = s3.request("GET", path, headers={"Range": "bytes=0-4"})
    assert (status, body) == (206, b"hello")

    status, _h, body = s3.request("GET", f"/{BUCKET}?list-type=2&prefix=obj%2F&max-keys=10")
    assert status == 200
    assert re.findall(rb"<Key>([^<]*)</Key>", body) == [b"obj/a b+c.txt"]
    assert b"<KeyCount>1</KeyCount>" in body
    assert b"<Size>%d</Size>" % len(data) in body

    status, _h, body = s3.request("DELETE", path)
    assert (status, body) == (204, b"")
    status, _h, body = s3.request("GET", path)
    assert status == 404 and error_code(body) == "NoSuchKey"


def test_unsigned_payload_and_presigned_get(s3):
    path = f"/{BUCKET}/presigned.txt"
    status, _h, body = s3.request("PUT", path, body=b"unsigned body", sign_payload=False)
    assert (status, body) == (200, b"")
    with urllib.request.urlopen(s3.presign("GET", path, 60), timeout=30) as r:
        assert (r.status, r.read()) == (200, b"unsigned body")


def test_listing_paginates(s3):
    for i in range(3):
        status, _h, body = s3.request("PUT", f"/{BUCKET}/page/{i}", body=b"%d" % i)
        assert (status, body) == (200, b"")
    status, _h, body = s3.request("GET", f"/{BUCKET}?list-type=2&prefix=page%2F&max-keys=2")
    assert status == 200 and b"<IsTruncated>true</IsTruncated>" in body
    assert re.findall(rb"<Key>([^<]*)</Key>", body) == [b"page/0", b"page/1"]
    token = re.search(rb"<NextContinuationToken>([^<]*)</NextContinuationToken>", body).group(1)
    q = "continuation-token=" + urllib.request.quote(token.decode(), safe="")
    status, _h, body = s3.request("GET", f"/{BUCKET}?list-type=2&prefix=page%2F&max-keys=2&{q}")
    assert status == 200 and b"<IsTruncated>false</IsTruncated>" in body
    assert re.findall(rb"<Key>([^<]*)</Key>", body) == [b"page/2"]


def test_tampered_request_signature_refused(s3):
    path = f"/{BUCKET}/never.txt"
    headers = s3.signed_headers("PUT", path, b"one body")
    status, _h, body = s3.send("PUT", path, headers, b"another body")
    assert status == 400 and error_code(body) == "XAmzContentSHA256Mismatch"
    headers = [(k, v[:-1] + ("0" if v[-1] != "0" else "1")) if k == "Authorization" else (k, v)
               for k, v in s3.signed_headers("PUT", path, b"x")]
    status, _h, body = s3.send("PUT", path, headers, b"x")
    assert status == 403 and error_code(body) == "SignatureDoesNotMatch"
    status, _h, body = s3.request("GET", path)
    assert status == 404 and error_code(body) == "NoSuchKey"


def post(s3, fields, name, data):
    [(got, status, _headers, body)], _stats = sdk_upload_many(
        f"{s3.endpoint}/{BUCKET}", fields, [(name, data)], concurrency=1, deadline=60)
    assert got == name
    return status, body


def test_post_policy_upload(s3):
    fields = s3.post_policy(BUCKET, "up/ws1/s1/", max_bytes=1000, expires_in=600)
    assert fields["key"] == "up/ws1/s1/${filename}"
    status, body = post(s3, fields, "report.csv", b"a,b\n1,2\n")
    assert (status, body) == (204, b"")
    status, _h, body = s3.request("GET", f"/{BUCKET}/up/ws1/s1/report.csv")
    assert (status, body) == (200, b"a,b\n1,2\n")
    # both ends of content-length-range are allowed
    for name, data in (("empty.txt", b""), ("full.bin", b"x" * 1000)):
        status, body = post(s3, fields, name, data)
        assert (status, body) == (204, b"")
        status, _h, body = s3.request("GET", f"/{BUCKET}/up/ws1/s1/{name}")
        assert (status, body) == (200, data)


def assert_refused(s3, fields, name, data, status, code, message):
    got_status, body = post(s3, fields, name, data)
    assert (got_status, error_code(body), error_message(body)) == (status, code, message), body
    status, _h, body = s3.request("GET", f"/{BUCKET}?list-type=2&prefix=up%2Fws2%2F")
    assert status == 200 and b"<KeyCount>0</KeyCount>" in body, body


def test_post_policy_tampered(s3):
    fields = s3.post_policy(BUCKET, "up/ws2/s1/", max_bytes=1000, expires_in=600)
    # a policy for another prefix (or a larger size) under the first one's signature
    other = s3.post_policy(BUCKET, "up/ws2/s2/", max_bytes=10**9, expires_in=600)
    assert_refused(s3, dict(fields, policy=other["policy"], key="up/ws2/s2/${filename}"),
                   "a.txt", b"x", 403, "AccessDenied", "")
    sig = fields["x-amz-signature"]
    assert_refused(s3, dict(fields, **{"x-amz-signature": sig[:-1] + ("1" if sig[-1] == "0" else "0")}),
                   "a.txt", b"x", 403, "AccessDenied", "")


def test_post_policy_key_outside_prefix(s3):
    fields = s3.post_policy(BUCKET, "up/ws2/s1/", max_bytes=1000, expires_in=600)
    assert_refused(s3, dict(fields, key="up/ws2/other/${filename}"), "a.txt", b"x",
                   403, "AccessDenied", "Policy condition failed: starts-with: $key, up/ws2/s1/")


def test_post_policy_too_large(s3):
    fields = s3.post_policy(BUCKET, "up/ws2/s1/", max_bytes=1000, expires_in=600)
    assert_refused(s3, fields, "big.bin", b"x" * 1001, 400, "EntityTooLarge", "")


def test_post_policy_expired(s3):
    fields = s3.post_policy(BUCKET, "up/ws2/s1/", max_bytes=1000, expires_in=60,
                            now=time.time() - 120)
    assert_refused(s3, fields, "late.txt", b"x", 403, "AccessDenied", "Policy expired")


def test_post_policy_extra_field_refused(s3):
    # radosgw, like S3, wants a condition for every form field it is given
    fields = s3.post_policy(BUCKET, "up/ws2/s1/", max_bytes=1000, expires_in=600)
    assert_refused(s3, dict(fields, success_action_status="201"), "a.txt", b"x",
                   403, "AccessDenied", "Policy missing condition: success_action_status")


def test_presigned_url_expires(s3):
    path = f"/{BUCKET}/short.txt"
    status, _h, body = s3.request("PUT", path, body=b"short")
    assert (status, body) == (200, b"")
    url = s3.sign("presign", "GET", s3.endpoint + path, "1", now=time.time() - 60).strip()
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(url, timeout=30)
    assert e.value.code == 403 and error_code(e.value.read()) == "AccessDenied"

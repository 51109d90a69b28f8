"""Helpers for the upload-target tests (tests/integration/test_upload.py).

- S3-style XML error checks (s3_error),
- a hand-built multipart/form-data body (Part, multipart, form_parts),
- a raw-socket HTTP/1.1 POST that streams a body and keeps reading while it
  sends, so an early answer (the server refusing before the body is read)
  is never lost to a broken pipe (raw_post),
- the official deepset SDK's way of uploading, with aiohttp (sdk_upload_many),
- session file listing (list_files_all) and on-disk inspection of a session
  directory (<srv.dir>/state/data/sessions/<id>/: blobs + ".<uuid>.<pid>-<machine>.tmp" files).

Only the standard library, pytest, httpx and aiohttp (python3-aiohttp).
"""

import asyncio
import base64
import hashlib
import json
import os
import re
import secrets
import selectors
import shutil
import socket
import tempfile
import time
import xml.etree.ElementTree as ET

from .procs import wait_for
from .server import MODULE_SO
from .api import UUID_CANON_RE, check, get_status, session_path


# The module's messages (src/httpd/us_upload.c).
MSG_MISSING = "Bucket POST must contain the fields 'policy' and 'x-amz-signature'."
MSG_BAD_SIG = "The request signature we calculated does not match the signature you provided."
MSG_EXPIRED = "Invalid according to Policy: Policy expired."
MSG_OTHER_SESSION = "Invalid according to Policy: the policy belongs to another upload session."
MSG_NOT_OPEN = "The upload session is no longer open."
MSG_TOO_LARGE = "Your proposed upload exceeds the maximum allowed size."
MSG_ONE_FILE = "POST requires exactly one file upload per request."
MSG_NO_FILENAME = "The file part must carry a filename."
MSG_NO_KEY = "Bucket POST must contain a field named 'key'."
MSG_NOT_MULTIPART = "The body of your POST request is not well-formed multipart/form-data."


def msg_starts_with(prefix):
    return ('Invalid according to Policy: Policy Condition failed: '
            f'["starts-with", "$key", "{prefix}"]')


def msg_bad_name(why):
    return f"Invalid file name: {why}."


def msg_malformed(why):
    return f"{MSG_NOT_MULTIPART[:-1]}: {why}."


# --------------------------------------------------------------------------
# a private copy of the module
# --------------------------------------------------------------------------

def private_module_copy(src=MODULE_SO, settle=1.0, timeout=120):
    """Copy the built module to a private temp directory and return its path.

    The build installs build/mod_upload_session.so with `cp`, i.e. it
    rewrites the file in place: every httpd that has it mapped (ours, while
    somebody else runs `make`) then crashes (SIGSEGV / SIGILL). A private
    copy is immune. Copies only a file that did not change for `settle`
    seconds and did not change while being copied."""
    deadline = time.monotonic() + timeout
    while True:
        st = os.stat(src)
        if time.time() - st.st_mtime >= settle:
            d = tempfile.mkdtemp(prefix="us-it-module-", dir="/tmp")
            os.chmod(d, 0o755)
            dst = os.path.join(d, "mod_upload_session.so")
            shutil.copyfile(src, dst)
            os.chmod(dst, 0o755)
            st2 = os.stat(src)
            if (st2.st_mtime_ns, st2.st_size, st2.st_ino) == \
                    (st.st_mtime_ns, st.st_size, st.st_ino) and \
                    os.path.getsize(dst) == st.st_size:
                return dst
            shutil.rmtree(d, ignore_errors=True)
        if time.monotonic() > deadline:
            raise RuntimeError(f"{src} keeps changing; cannot take a stable copy")
        time.sleep(0.2)


# --------------------------------------------------------------------------
# responses
# --------------------------------------------------------------------------

class RawResponse:
    """The parts of an httpx.Response the checks below use."""

    def __init__(self, status_code, reason, headers, content, raw_head=b""):
        self.status_code = status_code
        self.reason = reason
        self.headers = headers          # lower-case names -> last value
        self.content = content
        self.raw_head = raw_head

    @property
    def text(self):
        return self.content.decode("utf-8", "replace")

    def __repr__(self):
        return (f"<RawResponse {self.status_code} headers={self.headers} "
                f"body={self.content[:500]!r}>")


def describe_streamed(resp):
    """Like api.describe, but never touches a streamed request body."""
    req = getattr(resp, "request", None)
    where = f"{req.method} {req.url} " if req is not None else ""
    return (f"{where}-> {resp.status_code} headers={dict(resp.headers)} "
            f"body={resp.content[:1500]!r}")


def s3_error(resp, status, code, message):
    """Assert an S3-style XML error: status, Content-Type application/xml,
    the body exactly <Error><Code>code</Code><Message>message</Message></Error>
    (message: a string, or a compiled regex matched in full)."""
    assert resp.status_code == status, describe_streamed(resp)
    ctype = resp.headers.get("content-type", "")
    assert ctype.split(";")[0].strip().lower() == "application/xml", describe_streamed(resp)
    try:
        root = ET.fromstring(resp.content)
    except ET.ParseError as e:
        raise AssertionError(f"error body is not XML ({e}): {describe_streamed(resp)}")
    assert root.tag == "Error", describe_streamed(resp)
    assert [c.tag for c in root] == ["Code", "Message"], describe_streamed(resp)
    assert root.find("Code").text == code, describe_streamed(resp)
    got = root.find("Message").text
    if isinstance(message, re.Pattern):
        assert message.fullmatch(got or ""), f"message {got!r} !~ {message.pattern}: " \
            + describe_streamed(resp)
    else:
        assert got == message, describe_streamed(resp)
    return got


def no_content(resp, status=204):
    assert resp.status_code == status, describe_streamed(resp)
    assert resp.content == b"", describe_streamed(resp)


# --------------------------------------------------------------------------
# multipart bodies
# --------------------------------------------------------------------------

class Part:
    """One body part. filename / filename_star are put into the
    Content-Disposition as given (str: UTF-8, bytes: raw); disposition
    replaces the whole Content-Disposition value; headers are extra raw
    header lines (bytes, without CRLF)."""

    def __init__(self, name, data=b"", filename=None, filename_star=None,
                 content_type=None, disposition=None, headers=()):
        self.name = name
        self.data = data.encode() if isinstance(data, str) else data
        self.filename = filename
        self.filename_star = filename_star
        self.content_type = content_type
        self.disposition = disposition
        self.headers = list(headers)

    def head(self):
        def b(x):
            return x.encode("utf-8") if isinstance(x, str) else x
        if self.disposition is not None:
            disp = b(self.disposition)
        else:
            disp = b'form-data; name="' + b(self.name) + b'"'
            if self.filename is not None:
                disp += b'; filename="' + b(self.filename) + b'"'
            if self.filename_star is not None:
                disp += b"; filename*=" + b(self.filename_star)
        lines = [b"Content-Disposition: " + disp]
        if self.content_type:
            lines.append(b"Content-Type: " + b(self.content_type))
        lines += self.headers
        return b"\r\n".join(lines) + b"\r\n\r\n"


def new_boundary():
    return "----us-it-" + secrets.token_hex(12)


def form_parts(fields, filename=None, data=b"", **file_kw):
    """fields (a dict, in order) as parts, then the file part (if filename
    is not False)."""
    parts = [Part(k, v) for k, v in fields.items()]
    if filename is not False:
        parts.append(Part("file", data, filename=filename, **file_kw))
    return parts


def multipart(parts, boundary=None, close=True):
    """(body, content_type) of the parts."""
    boundary = boundary or new_boundary()
    out = []
    for p in parts:
        out.append(b"--" + boundary.encode() + b"\r\n" + p.head() + p.data + b"\r\n")
    if close:
        out.append(b"--" + boundary.encode() + b"--\r\n")
    return b"".join(out), f"multipart/form-data; boundary={boundary}"


def post_parts(client, url, parts, boundary=None, headers=None):
    """POST the parts with an httpx client; returns the response."""
    body, ctype = multipart(parts, boundary)
    h = {"Content-Type": ctype}
    h.update(headers or {})
    return client.post(url, content=body, headers=h)


def upload(client, cfg, name, data, extra_fields=None, **file_kw):
    """Upload data as `name` with the session's fields (hand-built body,
    filename sent as is, UTF-8); returns the response."""
    fields = dict(cfg["fields"])
    fields.update(extra_fields or {})
    return post_parts(client, cfg["url"], form_parts(fields, name, data, **file_kw))


# --------------------------------------------------------------------------
# raw HTTP/1.1 over a socket
# --------------------------------------------------------------------------

def _parse_head(head):
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    status = int(parts[1])
    reason = parts[2].decode("latin-1") if len(parts) > 2 else ""
    headers = {}
    for line in lines[1:]:
        if not line:
            continue
        k, _, v = line.partition(b":")
        headers[k.decode("latin-1").strip().lower()] = v.decode("latin-1").strip()
    return status, reason, headers


def raw_post(port, path, headers, body_chunks, timeout=60, host="127.0.0.1"):
    """POST over a fresh connection: sends the request head, then every
    chunk of body_chunks (bytes or an iterable of bytes), while reading the
    answer at the same time. Sending stops quietly when the server closes
    (it may refuse early). Returns (RawResponse or None, bytes_sent_of_body)."""
    if isinstance(body_chunks, (bytes, bytearray)):
        body_chunks = [bytes(body_chunks)]
    it = iter(body_chunks)
    head = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: close"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    pending = memoryview(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
    head_len = len(pending)
    sent = 0
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE)
    buf = bytearray()
    sending = True
    deadline = time.monotonic() + timeout
    try:
        while True:
            if time.monotonic() > deadline:
                raise TimeoutError(f"raw_post {path}: no complete answer in {timeout}s "
                                   f"(got {bytes(buf[:300])!r})")
            if sending and not pending:
                try:
                    pending = memoryview(next(it))
                except StopIteration:
                    sending = False
                    sel.modify(sock, selectors.EVENT_READ)
                    continue
            events = sel.select(timeout=1.0)
            for _key, ev in events:
                if ev & selectors.EVENT_READ:
                    try:
                        data = sock.recv(1 << 16)
                    except (ConnectionResetError, BrokenPipeError):
                        data = b""
                    except BlockingIOError:
                        continue
                    if not data:
                        return _finish(buf), max(0, sent - head_len)
                    buf += data
                    resp = _complete(buf)
                    if resp is not None:
                        return resp, max(0, sent - head_len)
                if ev & selectors.EVENT_WRITE and sending and pending:
                    try:
                        n = sock.send(pending[:1 << 20])
                    except BlockingIOError:
                        continue
                    except (BrokenPipeError, ConnectionResetError):
                        sending = False
                        sel.modify(sock, selectors.EVENT_READ)
                        continue
                    sent += n
                    pending = pending[n:]
    finally:
        sel.close()
        sock.close()


def _complete(buf):
    """A RawResponse once buf holds a whole answer with a Content-Length."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    status, reason, headers = _parse_head(bytes(buf[:end]))
    if "content-length" not in headers:
        return None  # read to EOF
    n = int(headers["content-length"])
    if len(buf) < end + 4 + n:
        return None
    return RawResponse(status, reason, headers, bytes(buf[end + 4:end + 4 + n]),
                       bytes(buf[:end]))


def _finish(buf):
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    status, reason, headers = _parse_head(bytes(buf[:end]))
    body = bytes(buf[end + 4:])
    if "content-length" in headers:
        body = body[:int(headers["content-length"])]
    return RawResponse(status, reason, headers, body, bytes(buf[:end]))


def url_path(url):
    """'/api/...' of an absolute http URL."""
    m = re.match(r"^https?://[^/]+(/.*)$", url)
    assert m, url
    return m.group(1)


# --------------------------------------------------------------------------
# the official SDK's upload (deepset_cloud_sdk/_s3/upload.py), with aiohttp
# --------------------------------------------------------------------------

def make_safe_file_name(file_name):
    """The SDK's own name transformation before uploading."""
    return re.sub(r"[\\\\#%\"'\|<>\{\}`\^\[\]~\x00-\x1F]", "_", file_name)


async def _sdk_upload_many(url, fields, files, concurrency, deadline):
    import aiohttp  # python3-aiohttp

    sem = asyncio.Semaphore(concurrency)
    active = 0
    peak = 0
    latencies = []

    def build(content, name):
        form = aiohttp.FormData(quote_fields=True)
        for key in fields:
            form.add_field(key, fields[key])
        form.add_field("file", content, filename=name, content_type="text/plain")
        return form

    async with aiohttp.ClientSession() as cs:
        async def one(name, content):
            nonlocal active, peak
            async with sem:
                active += 1
                peak = max(peak, active)
                t0 = time.monotonic()
                try:
                    form = build(content, make_safe_file_name(name))
                    async with cs.post(url, data=form, allow_redirects=False) as resp:
                        body = await resp.read()
                        return name, resp.status, dict(resp.headers), body
                finally:
                    latencies.append(time.monotonic() - t0)
                    active -= 1
        t0 = time.monotonic()
        try:
            results = await asyncio.wait_for(
                asyncio.gather(*(one(n, c) for n, c in files)), deadline)
        except asyncio.TimeoutError:
            raise AssertionError(
                f"only {len(latencies)} of {len(files)} uploads (at most {concurrency} at "
                f"once) finished within {deadline}s; slowest finished one took "
                f"{max(latencies, default=0):.2f}s") from None
    stats = {"peak": peak, "seconds": time.monotonic() - t0,
             "max_latency": max(latencies, default=0.0)}
    return results, stats


def sdk_upload_many(url, fields, files, concurrency=10, deadline=60):
    """Upload files [(name, bytes)] like the SDK does, at most `concurrency`
    at once, all within `deadline` seconds (else AssertionError). Returns
    ([(name, status, headers, body)], {"peak", "seconds", "max_latency"})."""
    return asyncio.run(_sdk_upload_many(url, fields, files, concurrency, deadline))


# --------------------------------------------------------------------------
# session files via the API
# --------------------------------------------------------------------------

def session_files_path(ws, sid):
    return session_path(ws, sid) + "/files"


def session_files_page(api, ws, sid, **params):
    data = check(api.get(session_files_path(ws, sid), params=params), 200)
    assert set(data) == {"data", "has_more", "total"}, data
    return data


def list_files_all(api, ws, sid, limit=100, **params):
    """Every item, walking pages of `limit`; checks total / has_more on the
    way. Returns (items, total)."""
    out, page = [], 1
    while True:
        data = session_files_page(api, ws, sid, limit=limit, page_number=page, **params)
        out += data["data"]
        assert len(data["data"]) <= limit, data
        if not data["has_more"]:
            assert len(out) == data["total"], (len(out), data["total"])
            return out, data["total"]
        assert len(data["data"]) == limit, data
        page += 1
        assert page < 10000


def check_file_item(item):
    assert set(item) in ({"file_ingestion_id", "name", "ingestion_status"},
                         {"file_ingestion_id", "name", "ingestion_status",
                          "ingestion_status_reason"}), item
    assert UUID_CANON_RE.match(item["file_ingestion_id"]), item
    assert item["ingestion_status"] in ("PENDING", "FAILED", "FINISHED"), item
    return item


# --------------------------------------------------------------------------
# the session directory on disk
# --------------------------------------------------------------------------

def data_dir(srv):
    return os.path.join(srv.dir, "state", "data")


def session_dir(srv, sid):
    return os.path.join(data_dir(srv), "sessions", sid)


def s3_client(srv):
    """An S3 client on the radosgw of a server with US_IT_STORAGE=s3."""
    from .radosgw import shared_info
    from .s3sign import S3Client
    info = shared_info()
    return S3Client(info["endpoint"], info["access_key"], info["secret_key"])


def s3_keys(srv, prefix, uploads=False):
    """The keys under the server's prefix + prefix (every page); with
    uploads, those of unfinished multipart uploads instead."""
    from urllib.parse import quote
    from .server import S3_BUCKET
    c, full, keys, token = s3_client(srv), f"{srv.s3_prefix}/{prefix}", [], None
    while True:
        if uploads:
            q = f"prefix={quote(full, safe='')}&uploads="
        else:
            q = f"list-type=2&prefix={quote(full, safe='')}"
            if token:
                q = f"continuation-token={quote(token, safe='')}&" + q
        status, _h, body = c.request("GET", f"/{S3_BUCKET}?{q}")
        assert status == 200, (status, body)
        keys += [k[len(full):] for k in re.findall(r"<Key>([^<]*)</Key>", body.decode())]
        m = re.search(r"<NextContinuationToken>([^<]*)<", body.decode())
        if uploads or "<IsTruncated>true" not in body.decode() or not m:
            return keys
        token = m.group(1)


def s3_object(srv, key):
    """The bytes of the object under the server's prefix + key."""
    from .server import S3_BUCKET
    status, _h, body = s3_client(srv).request("GET", f"/{S3_BUCKET}/{srv.s3_prefix}/{key}")
    assert status == 200, (status, key)
    return body


def storage_is_s3(srv):
    return getattr(srv, "s3_prefix", None) is not None


def dir_entries(srv, sid):
    """The session's stored uploads; temp files start with '.' (s3: an
    unfinished multipart upload is '.' + its key)."""
    if storage_is_s3(srv):
        return sorted(s3_keys(srv, f"sessions/{sid}/") +
                      ["." + k for k in s3_keys(srv, f"sessions/{sid}/", uploads=True)])
    try:
        return sorted(os.listdir(session_dir(srv, sid)))
    except FileNotFoundError:
        return []


def temp_files(srv, sid):
    return [n for n in dir_entries(srv, sid) if n.startswith(".")]


def blob_files(srv, sid):
    return [n for n in dir_entries(srv, sid) if not n.startswith(".")]


def wait_no_temp(srv, sid, timeout=10):
    """True once no temp file is left in the session directory."""
    return wait_for(lambda: not temp_files(srv, sid), timeout)


def sha256_file(path, block=1 << 22):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(block)
            if not b:
                return h.hexdigest()
            h.update(b)


def blob_hashes(srv, sid):
    """{sha256: [blob name, ...]} of the session's blobs."""
    out = {}
    for n in blob_files(srv, sid):
        if storage_is_s3(srv):
            h = hashlib.sha256(s3_object(srv, f"sessions/{sid}/{n}")).hexdigest()
        else:
            h = sha256_file(os.path.join(session_dir(srv, sid), n))
        out.setdefault(h, []).append(n)
    return out


def tree(root):
    """Every path (relative) under root, directories included."""
    out = set()
    for dp, dns, fns in os.walk(root):
        for n in dns + fns:
            out.add(os.path.relpath(os.path.join(dp, n), root))
    return out


class SessionState:
    """What an upload may change about a session: its uploaded_files, its
    file list (ids + names) and its directory."""

    def __init__(self, api, srv, ws, sid):
        self.api, self.srv, self.ws, self.sid = api, srv, ws, sid
        st = get_status(api, ws, sid)
        self.uploaded = st.get("uploaded_files")
        items, _ = list_files_all(api, ws, sid)
        self.files = sorted((i["file_ingestion_id"], i["name"]) for i in items)
        self.entries = dir_entries(srv, sid)

    def assert_unchanged(self, what=""):
        now = SessionState(self.api, self.srv, self.ws, self.sid)
        assert now.uploaded == self.uploaded, f"{what}: uploaded_files changed"
        assert now.files == self.files, f"{what}: file list changed: {now.files}"
        # nothing new in the directory, and no temp file left behind
        assert wait_no_temp(self.srv, self.sid, 5), \
            f"{what}: temp file left: {temp_files(self.srv, self.sid)}"
        assert set(dir_entries(self.srv, self.sid)) <= set(self.entries), \
            f"{what}: new files on disk: {dir_entries(self.srv, self.sid)} vs {self.entries}"


# --------------------------------------------------------------------------
# policy tampering
# --------------------------------------------------------------------------

B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def flip_b64_char(s, pos):
    c = s[pos]
    return s[:pos] + B64[(B64.index(c) + 1) % 64] + s[pos + 1:]


def policy_doc(policy):
    return json.loads(base64.b64decode(policy))


def encode_policy(doc):
    return base64.b64encode(json.dumps(doc, separators=(",", ":")).encode()).decode()

"""Webhooks (README "Webhooks"): UploadSessionWebhook URL (repeatable) and
UploadSessionWebhookSecretFile - their configuration errors fail
`apache2 -t` naming the directive; events of sessions ingested and expired
are delivered from the store's outbox to a real local receiver (a Python
http.server), signed, retried with growing gaps while it is down or
answers 500, and still delivered after httpd is killed with SIGKILL."""

import hashlib
import hmac
import http.server
import json
import os
import re
import socket
import threading
import time

import pytest

from us_testkit.api import check, close_session, unique_ws
from us_testkit.ingest import (httpd_pids, kill9, new_session, start_after_kill, upload_all,
                               upload_one)
from us_testkit.procs import free_port, wait_for
from us_testkit.server import configtest


SECRET = "webhook-test-secret-0123456789"


def write_secret(s, text=SECRET + "\n", mode=0o600, name="webhook.secret"):
    path = os.path.join(s.dir, name)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


# --------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------

def test_webhooks_pass_configtest(server_factory):
    s = server_factory(start=False)
    path = write_secret(s)
    s.extra += ["UploadSessionWebhook http://127.0.0.1:9/hook",
                "UploadSessionWebhook https://hooks.example.com/a?team=b",
                f'UploadSessionWebhookSecretFile "{path}"']
    s.write_config()
    rc, out = configtest(s)
    assert rc == 0, out
    assert "Syntax OK" in out, out


@pytest.mark.parametrize("url,want", [
    ("ftp://127.0.0.1/hook", "expects an http:// or https:// URL"),
    ("127.0.0.1/hook", "expects an absolute http:// or https:// URL"),
    ("http://127.0.0.1/hook#x", "without user info or fragment"),
    ("http://user:pw@127.0.0.1/hook", "without user info or fragment"),
    ("http://127.0.0.1:/hook", "malformed port"),
    # the port is not cut to 16 bits (99999 would be 34463)
    ("http://127.0.0.1:99999/hook", "malformed port in '{shown}' (a port is 1 to 65535)"),
    ("http://127.0.0.1:65536/hook", "(a port is 1 to 65535)"),
    ("http://127.0.0.1:-1/hook", "malformed port in '{shown}'"),
    ("http://127.0.0.1:80x/hook", "'{shown}'"),
    # the URL quoted as shown: a receiver's token in its path stays out of the output
    ("https://hooks.example.com:0/services/T0001/s3cret", "malformed port in '{shown}'"),
    ("https://user:pw@hooks.example.com/services/s3cret",
     "without user info or fragment, not '{shown}'"),
    ("ftp://hooks.example.com/s3cret?token=s3cret", "URL, not '{shown}'"),
])
def test_malformed_webhook_url_fails_configtest(server_factory, url, want):
    s = server_factory(start=False)
    path = write_secret(s)
    s.extra += [f"UploadSessionWebhook {url}", f'UploadSessionWebhookSecretFile "{path}"']
    s.write_config()
    rc, out = configtest(s)
    assert rc != 0, out
    want = want.replace("{shown}", shown_url(url) if "://" in url else url)
    assert "UploadSessionWebhook: " in out and want in out, out
    assert "Syntax OK" not in out and "s3cret" not in out, out


@pytest.mark.parametrize("raw,offset", [(b"caf\xe9", 22), (b"caf\xc3\xa9", 22),
                                        (b"a\x7fb", 20)])
def test_webhook_url_of_other_bytes_than_printable_ascii_fails_configtest(server_factory,
                                                                           raw, offset):
    """A URL byte outside printable ASCII (Latin-1, even UTF-8) is refused:
    the URL is quoted in the status page's JSON and in the log."""
    s = server_factory(start=False)
    path = write_secret(s)
    s.extra += [f'UploadSessionWebhookSecretFile "{path}"']
    s.write_config()
    with open(s.conf_path, "ab") as f:
        f.write(b"UploadSessionWebhook http://127.0.0.1:9/" + raw + b"\n")
    rc, out = configtest(s)
    assert rc != 0, out
    want = (f"UploadSessionWebhook: expects a URL of printable ASCII characters: byte "
            f"0x{raw[offset - 19]:02X} at offset {offset} must be percent-encoded "
            f"(%{raw[offset - 19]:02X})")
    assert want in out, out
    assert "Syntax OK" not in out, out
    # percent-encoded, the same URL passes
    s.write_config()
    with open(s.conf_path, "a") as f:
        f.write("UploadSessionWebhook http://127.0.0.1:9/caf%C3%A9\n")
    rc, out = configtest(s)
    assert rc == 0 and "Syntax OK" in out, out


def test_webhook_listed_twice_fails_configtest(server_factory):
    s = server_factory(start=False)
    path = write_secret(s)
    s.extra += ["UploadSessionWebhook http://127.0.0.1:9/s3cret",
                "UploadSessionWebhook http://127.0.0.1:9/s3cret",
                f'UploadSessionWebhookSecretFile "{path}"']
    s.write_config()
    rc, out = configtest(s)
    assert rc != 0, out
    shown = shown_url("http://127.0.0.1:9/s3cret")
    assert f"UploadSessionWebhook: {shown} is listed twice" in out and "s3cret" not in out, out


@pytest.mark.parametrize("secret,want", [
    ("none", "UploadSessionWebhook needs UploadSessionWebhookSecretFile"),
    ("missing", "cannot be read"),
    ("world-readable", "is world-readable: chmod o-r it"),
    ("short", "the secret must be 16 to 4096 bytes"),
])
def test_webhook_secret_problems_fail_configtest(server_factory, secret, want):
    s = server_factory(start=False)
    s.extra.append("UploadSessionWebhook http://127.0.0.1:9/hook")
    if secret == "missing":
        s.extra.append(f'UploadSessionWebhookSecretFile "{s.dir}/nope"')
    elif secret == "world-readable":
        s.extra.append(f'UploadSessionWebhookSecretFile "{write_secret(s, mode=0o644)}"')
    elif secret == "short":
        s.extra.append(f'UploadSessionWebhookSecretFile "{write_secret(s, "tiny")}"')
    s.write_config()
    rc, out = configtest(s)
    assert rc != 0, out
    assert want in out, out
    if secret != "none":
        assert "UploadSessionWebhookSecretFile " in out, out
    assert "Syntax OK" not in out, out


# --------------------------------------------------------------------------
# a receiver
# --------------------------------------------------------------------------

class Receiver:
    """An HTTP server on loopback recording every POST (arrival time, path,
    headers, body); it answers the statuses of `statuses` first, then 200.
    stop() and start() again keep its port."""

    def __init__(self, statuses=()):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hooks/upload-sessions"
        self.requests = []
        self.statuses = list(statuses)
        self.lock = threading.Lock()
        self.httpd = None

    def start(self):
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    receiver.requests.append({"at": time.monotonic(), "path": self.path,
                                              "headers": dict(self.headers), "body": body,
                                              "status": status})
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        http.server.ThreadingHTTPServer.allow_reuse_address = True
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None

    def delivered(self):
        """The requests answered 2xx."""
        with self.lock:
            return [r for r in self.requests if 200 <= r["status"] < 300]

    def wait_delivered(self, n, timeout=30):
        assert wait_for(lambda: len(self.delivered()) >= n, timeout), \
            f"{len(self.delivered())} of {n} deliveries within {timeout} s: {self.requests}"
        return self.delivered()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.stop()


def hook_server(server_factory, urls, extra=(), start=True, **kwargs):
    """A server whose webhooks go to urls, signed with SECRET."""
    s = server_factory(start=False, **kwargs)
    path = write_secret(s)
    s.extra += [f"UploadSessionWebhook {u}" for u in urls]
    s.extra += [f'UploadSessionWebhookSecretFile "{path}"', "LogLevel upload_session:debug"]
    s.extra += list(extra)
    s.write_config()
    if start:
        s.start()
    return s


def signature_ok(req):
    """The receiver's check, as README "Webhooks" shows it."""
    h = {k.lower(): v for k, v in req["headers"].items()}
    ts = h["x-upload-session-timestamp"]
    mac = hmac.new(SECRET.encode(), ts.encode() + b"." + req["body"], hashlib.sha256).hexdigest()
    return hmac.compare_digest(h["x-upload-session-signature"], "sha256=" + mac) \
        and abs(time.time() - int(ts)) < 300


def header(req, name):
    return {k.lower(): v for k, v in req["headers"].items()}[name.lower()]


def closed_session(s, ws, files):
    """A session of ws with files [(name, bytes)], closed; its id."""
    api = s.client(s.user_all)
    sid, cfg = new_session(api, ws)
    for name, data in files:
        upload_one(s.raw_client(), cfg, name, data)
    close_session(api, ws, sid)
    return sid


def status_doc(s):
    r = s.raw_client().get(f"{s.public_url}/upload-session/status")
    check(r, 200)
    return r.json()


STATUS_LOCATION = ["<Location /upload-session/status>", "SetHandler upload-session-status",
                   "</Location>",
                   "<Location /upload-session/metrics>", "SetHandler upload-session-metrics",
                   "</Location>"]


# --------------------------------------------------------------------------
# delivery
# --------------------------------------------------------------------------

def test_ingested_event_delivered_signed(server_factory, receiver):
    receiver.start()
    other = Receiver().start()
    try:
        s = hook_server(server_factory, [receiver.url, other.url])
        ws = unique_ws("hook")
        sid = closed_session(s, ws, [("good.txt", b"hello"), ("empty.txt", b""),
                                     ("also-empty.txt", b"")])
        for rcv in (receiver, other):
            (req,) = rcv.wait_delivered(1)
            assert req["path"] == "/hooks/upload-sessions"
            assert header(req, "Content-Type") == "application/json"
            assert header(req, "X-Upload-Session-Event") == "session.ingested"
            assert signature_ok(req), req
            ev = json.loads(req["body"])
            assert header(req, "X-Upload-Session-Delivery") == ev["delivery_id"]
            assert ev["event"] == "session.ingested"
            assert ev["session_id"] == sid and ev["workspace"] == ws
            assert ev["counters"] == {"uploaded_files": 3, "finished_files": 1,
                                      "failed_files": 2}
            assert sorted((f["name"], f["reason"]) for f in ev["failed_files"]) == \
                [("also-empty.txt", "EMPTY_FILE"), ("empty.txt", "EMPTY_FILE")]
            assert all(len(f["file_ingestion_id"]) == 36 for f in ev["failed_files"])
            assert ev["page"] == 1 and ev["pages"] == 1
            assert ev["occurred_at"].endswith("Z")
        # the same event for both: one delivery id
        assert json.loads(receiver.delivered()[0]["body"]) == \
            json.loads(other.delivered()[0]["body"])
        # a tampered body fails the check
        bad = dict(receiver.delivered()[0], body=receiver.delivered()[0]["body"] + b" ")
        assert not signature_ok(bad)
        time.sleep(1.5)
        assert len(receiver.requests) == 1 and len(other.requests) == 1
    finally:
        other.stop()


def test_close_without_files_is_an_ingested_event(server_factory, receiver):
    receiver.start()
    s = hook_server(server_factory, [receiver.url])
    ws = unique_ws("hook-empty")
    sid = closed_session(s, ws, [])
    (req,) = receiver.wait_delivered(1)
    ev = json.loads(req["body"])
    assert (ev["event"], ev["session_id"], ev["failed_files"]) == ("session.ingested", sid, [])
    assert ev["counters"] == {"uploaded_files": 0, "finished_files": 0, "failed_files": 0}


def shown_url(url):
    """url as the status pages and the log show it (README "Webhooks"): the
    scheme, host and port, "/..." for whatever follows but a lone "/", then
    the fingerprint, the first 8 hex digits of the URL's SHA-256."""
    m = re.fullmatch(r"([A-Za-z][A-Za-z0-9+.-]*://)(?:[^/?#]*@)?([^/?#]*)(.*)", url)
    rest = "" if m[3] in ("", "/") else "/..."
    return f"{m[1]}{m[2]}{rest} #{hashlib.sha256(url.encode()).hexdigest()[:8]}"


def paused_on_every_page(s, shown):
    """The URL shown as `shown` paused on each status page, read now: the
    JSON status's entry, or None when a page does not say so."""
    c = s.raw_client()
    doc = status_doc(s)["webhooks"]
    pages = {"json": json.dumps(doc), "metrics": c.get(f"{s.public_url}/upload-session/metrics").text,
             "auto": c.get(f"{s.public_url}/server-status?auto").text,
             "html": c.get(f"{s.public_url}/server-status").text}
    assert not [k for k, text in pages.items() if "s3cret" in text], pages
    if doc["urls_paused"] != 1 or [p["url"] for p in doc["paused"]] != [shown] \
            or "\nmod_upload_session_webhook_urls_paused 1\n" not in pages["metrics"] \
            or "\nUploadSessionWebhookURLsPaused: 1\n" not in pages["auto"] \
            or f'<tr><th align="left">WebhookPaused</th><td>{shown}: ' not in pages["html"]:
        return None
    return doc["paused"][0]


def test_receiver_down_then_up(server_factory, receiver):
    """While the receiver is down its URL is paused: the metrics, ?auto,
    mod_status's table and the JSON status say so, the JSON with the URL's
    failures in a row and the pause's end; each shows the URL without its
    path and query (either may hold a token, Slack's is in the path), as
    the last error and the log do. The delivery, once it is up, ends the
    pause."""
    pages = ["<Location /server-status>", "SetHandler server-status", "</Location>"]
    url = receiver.url + "/T0001/s3cret-path?token=s3cret"
    s = hook_server(server_factory, [url],
                    extra=STATUS_LOCATION + pages, modules=[("status_module", "mod_status.so")])
    shown = shown_url(url)
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/\.\.\. #[0-9a-f]{8}", shown), shown
    ws = unique_ws("hook-down")
    sid = closed_session(s, ws, [("a.txt", b"a")])
    # attempts at 0, 1, 3 s fail while nobody listens
    assert wait_for(lambda: status_doc(s)["webhooks"]["last_error"] is not None, 20)
    doc = status_doc(s)["webhooks"]
    assert "s3cret" not in json.dumps(doc), doc
    assert doc["pending"] == 1 and doc["failed"] == 0, doc
    assert doc["last_error"].endswith(f" from {shown}"), doc
    # paused but for a moment between a pause's end and the next probe
    paused = []
    assert wait_for(lambda: paused.append(paused_on_every_page(s, shown)) or paused[-1], 10), \
        paused
    assert paused[-1]["failures"] >= 1 and re.fullmatch(r"\d{4}-\d\d-\d\dT[0-9:.]+Z",
                                                         paused[-1]["paused_until"]), paused
    time.sleep(3)
    receiver.start()
    (req,) = receiver.wait_delivered(1, timeout=30)
    ev = json.loads(req["body"])
    assert ev["session_id"] == sid and signature_ok(req)
    assert req["path"] == "/hooks/upload-sessions/T0001/s3cret-path?token=s3cret", req["path"]
    assert wait_for(lambda: status_doc(s)["webhooks"]["pending"] == 0, 10)
    assert status_doc(s)["webhooks"] == {"urls": 1, "pending": 0, "failed": 0,
                                         "oldest_pending_age_seconds": 0,
                                         "last_error": None, "last_error_at": None,
                                         "urls_paused": 0, "paused": []}
    # US1303 (failed attempts), US1301 (the delivery, at debug) name it shown
    log = s.log_text()
    assert f"US1301: webhook session.ingested {sid} (page 1 of 1) delivered to {shown}" in log, \
        s.log_tail()
    assert "s3cret" not in log, s.log_tail()


def test_500_retried_with_growing_gaps(server_factory, receiver):
    receiver.statuses = [500, 503, 500]
    receiver.start()
    s = hook_server(server_factory, [receiver.url])
    ws = unique_ws("hook-500")
    closed_session(s, ws, [("a.txt", b"a")])
    receiver.wait_delivered(1, timeout=40)
    reqs = receiver.requests
    assert [r["status"] for r in reqs] == [500, 503, 500, 200]
    gaps = [b["at"] - a["at"] for a, b in zip(reqs, reqs[1:])]
    # 1 s, 2 s, 4 s (the worker looks every 0.5 s; the machine is shared)
    for gap, want in zip(gaps, [1, 2, 4]):
        assert want - 0.2 <= gap <= want + 3, gaps
    assert gaps[0] < gaps[1] < gaps[2], gaps
    # every attempt is the same delivery, the same body, signed afresh
    assert len({header(r, "X-Upload-Session-Delivery") for r in reqs}) == 1
    assert len({r["body"] for r in reqs}) == 1
    assert all(signature_ok(r) for r in reqs)
    assert "attempt 1 failed: HTTP 500 from" in s.log_text()


def test_given_up_after_retry_for(server_factory, receiver):
    """Given up after UploadSessionWebhookRetryFor, the delivery is kept as
    failed for UploadSessionWebhookRetention, then the expiry sweep deletes
    it."""
    receiver.statuses = [500] * 100
    receiver.start()
    s = hook_server(server_factory, [receiver.url],
                    extra=["UploadSessionWebhookRetryFor 2", "UploadSessionWebhookRetention 4",
                           "UploadSessionSweepInterval 1"] + STATUS_LOCATION)
    ws = unique_ws("hook-fail")
    closed_session(s, ws, [("a.txt", b"a")])
    assert wait_for(lambda: status_doc(s)["webhooks"]["failed"] == 1, 20)
    doc = status_doc(s)["webhooks"]
    assert doc["pending"] == 0, doc
    assert doc["last_error"] == f"HTTP 500 from {shown_url(receiver.url)}", doc
    r = s.raw_client().get(f"{s.public_url}/upload-session/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain"), r
    assert "\nmod_upload_session_webhook_deliveries_pending 0\n" in r.text, r.text
    assert "\nmod_upload_session_webhook_deliveries_failed 1\n" in r.text, r.text
    n = len(receiver.requests)
    assert 2 <= n <= 4, receiver.requests
    time.sleep(3)
    assert len(receiver.requests) == n      # never again
    s.expect_log(r"US1302: webhook session.ingested .* given up")
    assert "US1302" in s.log_text()
    # kept 4 s after its last attempt, deleted by the next sweep after that
    # (the parent's monitor runs every 10 s)
    assert wait_for(lambda: status_doc(s)["webhooks"]["failed"] == 0, 20)
    doc = status_doc(s)["webhooks"]
    assert doc == {**doc, "pending": 0, "failed": 0, "last_error": None}, doc
    assert len(receiver.requests) == n
    assert wait_for(lambda: "US1123: expiry sweep: 1 failed webhook deliveries older than "
                            "4 s deleted" in s.log_text(), 5), s.log_text()[-2000:]


@pytest.mark.parametrize("what", ["child", "whole httpd"])
def test_durable_across_sigkill(server_factory, receiver, what):
    """The event is committed with the session's change: killed before any
    delivery could be made, httpd delivers it after the restart."""
    s = hook_server(server_factory, [receiver.url])
    ws = unique_ws("hook-kill")
    sid = closed_session(s, ws, [("a.txt", b"a")])
    # the receiver is down: the row waits in the outbox
    assert wait_for(lambda: "US1303" in s.log_text(), 15)
    if what == "child":
        pids = httpd_pids(s)
        for pid in pids[1:]:
            os.kill(pid, 9)
        s.expect_log(r"AH00052|exit signal", whole_life=True)
        receiver.start()
    else:
        kill9(s)
        receiver.start()
        time.sleep(1)
        assert receiver.requests == []
        start_after_kill(s)
    reqs = receiver.wait_delivered(1, timeout=60)
    ev = json.loads(reqs[0]["body"])
    assert (ev["event"], ev["session_id"]) == ("session.ingested", sid)
    assert signature_ok(reqs[0])


def test_expired_session_event(server_factory, receiver):
    receiver.start()
    s = hook_server(server_factory, [receiver.url], extra=["UploadSessionSweepInterval 1"])
    api = s.client(s.user_all)
    ws = unique_ws("hook-exp")
    sid, cfg = new_session(api, ws, {"expires_in_seconds": 2})
    upload_one(s.raw_client(), cfg, "a.txt", b"a")
    upload_one(s.raw_client(), cfg, "b.txt", b"")
    # the parent's monitor sweeps about every 10 s
    reqs = receiver.wait_delivered(2, timeout=45)
    evs = {json.loads(r["body"])["event"]: json.loads(r["body"]) for r in reqs}
    assert set(evs) == {"session.expired", "session.ingested"}, evs
    exp = evs["session.expired"]
    assert exp["session_id"] == sid and exp["workspace"] == ws
    assert exp["counters"] == {"uploaded_files": 2, "finished_files": 0, "failed_files": 0}
    assert exp["failed_files"] == []
    ing = evs["session.ingested"]
    assert ing["counters"] == {"uploaded_files": 2, "finished_files": 1, "failed_files": 1}
    assert ing["failed_files"][0]["name"] == "b.txt"
    assert exp["delivery_id"] != ing["delivery_id"]
    assert all(signature_ok(r) for r in reqs)


def test_many_failed_files_are_paged(server_factory, receiver):
    """1,001 failed files: two deliveries of one event, pages 1 and 2,
    every file listed once."""
    receiver.start()
    s = hook_server(server_factory, [receiver.url])
    api = s.client(s.user_all)
    ws = unique_ws("hook-pages")
    sid, cfg = new_session(api, ws)
    names = [f"empty-{i:04d}.txt" for i in range(1001)]
    upload_all(cfg, [(n, b"") for n in names])
    close_session(api, ws, sid)
    reqs = receiver.wait_delivered(2, timeout=120)
    evs = sorted((json.loads(r["body"]) for r in reqs), key=lambda e: e["page"])
    assert [(e["page"], e["pages"]) for e in evs] == [(1, 2), (2, 2)]
    assert len(evs[0]["failed_files"]) == 1000 and len(evs[1]["failed_files"]) == 1
    assert sorted(f["name"] for e in evs for f in e["failed_files"]) == names
    assert all(f["reason"] == "EMPTY_FILE" for e in evs for f in e["failed_files"])
    assert evs[0]["delivery_id"] != evs[1]["delivery_id"]
    for e in evs:
        assert e["counters"] == {"uploaded_files": 1001, "finished_files": 0,
                                 "failed_files": 1001}
    assert all(signature_ok(r) for r in reqs)
    time.sleep(1)
    assert len(receiver.requests) == 2


class LoopbackReceiver:
    """A receiver on a loopback socket whose accepting thread hands each
    connection to _take; close() closes the socket and every connection
    kept in `held`."""

    def __init__(self):
        self.held, self.bodies = [], []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/hooks/upload-sessions"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self._take(c)

    def read_post(self, c):
        """Reads one POST from c; its body is kept in `bodies`."""
        data = b""
        while b"\r\n\r\n" not in data:
            data += c.recv(65536)
        head, body = data.split(b"\r\n\r\n", 1)
        n = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
        while len(body) < n:
            body += c.recv(65536)
        self.bodies.append(body)

    def close(self):
        self.sock.close()
        for c in self.held:
            c.close()


class HangingReceiver(LoopbackReceiver):
    """While `hang` is set, accepts each POST and never answers; once
    cleared it answers the later ones 200 and keeps their bodies. One
    listening socket throughout: no refused connection in between."""

    def __init__(self):
        self.hang = threading.Event()
        self.hang.set()
        super().__init__()

    def _take(self, c):
        if self.hang.is_set():
            self.held.append(c)
        else:
            threading.Thread(target=self._answer, args=(c,), daemon=True).start()

    def _answer(self, c):
        with c:
            self.read_post(c)
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")


def test_hung_receiver_does_not_hold_a_restart(server_factory):
    """A POST under way when the children are told to stop is cut short at
    once (not after the 10 s timeout, with httpd's SIGKILL): the old
    children exit within 2 s, and the event, not counted as a failed
    attempt, is delivered by the new ones once the receiver answers."""
    hung = HangingReceiver()
    try:
        s = hook_server(server_factory, [hung.url])
        ws = unique_ws("hook-hung")
        sid = closed_session(s, ws, [("a.txt", b"a")])
        assert wait_for(lambda: hung.held, 15), "no delivery attempt"
        took = s.restart_timing_old_children(5)
        hung.hang.clear()
        assert took < 2, f"the old children took {took:.1f} s to exit"
        assert wait_for(lambda: hung.bodies, 15), "not delivered after the restart"
        ev = json.loads(hung.bodies[0])
        assert (ev["event"], ev["session_id"]) == ("session.ingested", sid)
        log = s.log_text()
        assert "US1306" in log, s.log_tail()
        assert not re.search(r"AH00046|SIGKILL|US1303", log), s.log_tail()
    finally:
        hung.close()


class StallingReceiver(LoopbackReceiver):
    """Reads each POST (its body kept in `bodies`), holds the connection
    `stall` seconds without a word and closes it: to the sender a failed
    attempt without a status, as a hung receiver's is when the 10 s
    timeout ends it, only sooner."""

    def __init__(self, stall):
        self.stall = stall
        super().__init__()

    def _take(self, c):
        self.held.append(c)
        threading.Thread(target=self._stall, args=(c,), daemon=True).start()

    def _stall(self, c):
        try:
            self.read_post(c)
            time.sleep(self.stall)
            c.close()
        except OSError:
            pass


def test_failing_receiver_does_not_delay_another(server_factory, receiver):
    """A receiver that holds every POST and never answers is paused after
    its first failed attempts (its circuit breaker, in the store), then
    tried one row at a time: the other receiver gets all 10 events about
    one stall after they happen, where each of the stalling receiver's
    rows ahead of its own held a child's worker for the stall (10 events,
    3 children: the last one some 10 s late); and the stalling receiver
    is attempted a few times, not once per row."""
    slow = StallingReceiver(3)
    receiver.start()
    try:
        s = hook_server(server_factory, [slow.url, receiver.url])
        ws = unique_ws("hook-breaker")
        t0 = time.monotonic()
        sids = {closed_session(s, ws, []) for _ in range(10)}
        made = time.monotonic() - t0
        got = receiver.wait_delivered(10, timeout=40)
        late = max(r["at"] for r in got) - t0
        assert {json.loads(r["body"])["session_id"] for r in got} == sids
        assert late < made + 3 + 2.5, f"the last event {late:.1f} s after the first was made " \
            f"(all made in {made:.1f} s); {len(slow.bodies)} attempts at the stalling receiver"
        assert 1 <= len(slow.bodies) <= 4, len(slow.bodies)
        assert re.search(r"US1303: .* attempt 1 failed: .* from " + re.escape(shown_url(slow.url)) +
                         r"; next in 1 s, the URL paused 1 s after 1 failed attempts in a row",
                         s.log_text()), s.log_tail()
    finally:
        slow.close()


class SlowBodyReceiver(LoopbackReceiver):
    """Reads each POST, answers "200 OK" at once, then sends the body it
    announced one byte a second."""

    def __init__(self):
        self.done = threading.Event()
        super().__init__()

    def _take(self, c):
        self.held.append(c)
        threading.Thread(target=self._answer, args=(c,), daemon=True).start()

    def _answer(self, c):
        self.read_post(c)
        try:
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
            while not self.done.wait(1):
                c.sendall(b"x")
        except OSError:
            pass

    def close(self):
        self.done.set()
        super().close()


def test_acknowledged_with_a_slow_body_is_delivered(server_factory):
    """The status line decides: a receiver that answers 200 at once and
    then trickles its (unread) body has the event, delivered once - not
    timed out after 10 s and sent again."""
    rcv = SlowBodyReceiver()
    try:
        s = hook_server(server_factory, [rcv.url], extra=STATUS_LOCATION)
        ws = unique_ws("hook-slowbody")
        sid = closed_session(s, ws, [("a.txt", b"a")])
        assert wait_for(lambda: rcv.bodies, 15), "no delivery attempt"
        ev = json.loads(rcv.bodies[0])
        assert (ev["event"], ev["session_id"]) == ("session.ingested", sid)
        assert wait_for(lambda: status_doc(s)["webhooks"]["pending"] == 0, 5), \
            status_doc(s)["webhooks"]
        assert status_doc(s)["webhooks"] == {"urls": 1, "pending": 0, "failed": 0,
                                             "oldest_pending_age_seconds": 0,
                                             "last_error": None, "last_error_at": None,
                                             "urls_paused": 0, "paused": []}
        assert re.search(rf"US1301: webhook session.ingested {sid} \(page 1 of 1\) delivered",
                         s.log_text()), s.log_tail()
        time.sleep(2)
        assert len(rcv.bodies) == 1, rcv.bodies
        assert "US1303" not in s.log_text(), s.log_tail()
    finally:
        rcv.close()


def test_url_taken_out_says_what_it_dropped(server_factory):
    """A URL taken out of the configuration takes its undelivered events
    with it, said at warn at startup (US0025) with their number and URL (as
    the status pages show it); a
    start without any UploadSessionWebhook drops the rest the same way."""
    dropped, kept = "http://127.0.0.1:9/dropped", "http://127.0.0.1:9/kept"
    s = hook_server(server_factory, [dropped, kept], extra=STATUS_LOCATION)
    ws = unique_ws("hook-drop")
    closed_session(s, ws, [("a.txt", b"a")])
    assert wait_for(lambda: status_doc(s)["webhooks"]["pending"] == 2, 20), \
        status_doc(s)["webhooks"]
    s.stop()
    s.extra.remove(f"UploadSessionWebhook {dropped}")
    s.expect_log(r"US0025", whole_life=True)
    off = len(s.log_text())
    s.start()
    said = re.findall(r"\[upload_session:warn\] .*US0025: (.*)", s.log_text()[off:])
    assert said == [f"UploadSessionWebhook: 1 undelivered webhook events for {shown_url(dropped)} "
                    "dropped: that URL is not configured here (every node on one store must "
                    "list the same URLs)"], s.log_tail()
    doc = status_doc(s)["webhooks"]
    assert (doc["urls"], doc["pending"], doc["failed"]) == (1, 1, 0), doc
    s.stop()
    s.extra.remove(f"UploadSessionWebhook {kept}")
    off = len(s.log_text())
    s.start()
    said = re.findall(r"\[upload_session:warn\] .*US0025: (.*)", s.log_text()[off:])
    assert len(said) == 1 and \
        f"1 undelivered webhook events for {shown_url(kept)} dropped" in said[0], \
        s.log_tail()
    doc = status_doc(s)
    assert "webhooks" not in doc and doc["store"] == {"status": "ok"}, doc

"""Slow-header clients (slowloris) against a bounded event MPM: with
mod_reqtimeout in front of the module (README "Production") a client that
trickles its request header is cut off after RequestReadTimeout, so the
workers it held serve other clients again. Without it every worker waits on
a trickling client and nobody else is answered.

The server here has 200 workers (8 children x 25 threads, all started at
once) and 300 connections each send one header line per second, opening a
new connection whenever the server closes theirs. RequestReadTimeout is
header=2-4,minrate=500 (Debian's is 20-40) to keep the test short."""

import http.client
import json
import socket
import threading
import time

from us_testkit.api import unique_ws
from us_testkit.uploads import raw_post

WORKERS = 200
MPM = ["StartServers 8", "ServerLimit 8", "ThreadLimit 25", "ThreadsPerChild 25",
       f"MaxRequestWorkers {WORKERS}", "MinSpareThreads 25", f"MaxSpareThreads {WORKERS + 25}"]
SLOW_CLIENTS = 300
FLOOD_SECONDS = 12
PROBE_TIMEOUT = 8    # a probe must be answered within this (the header timeout is 2-4 s)
EMPTY_LIST = b'{"data":[],"has_more":false,"total":0}'


class SlowHeaders:
    """SLOW_CLIENTS threads, each: connect, send a request line, then one
    header line per second, never the blank line; reconnect once the
    server closes the connection."""

    def __init__(self, port):
        self.port = port
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.connects = 0
        self.cut_off = 0
        self.threads = [threading.Thread(target=self._client, daemon=True)
                        for _ in range(SLOW_CLIENTS)]

    def _client(self):
        while not self.stop.is_set():
            sock = None
            try:
                sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
                with self.lock:
                    self.connects += 1
                sock.sendall(b"GET /api/v1/workspaces/slow/upload_sessions HTTP/1.1\r\n"
                             b"Host: 127.0.0.1\r\n")
                n = 0
                while not self.stop.wait(1):
                    sock.sendall(b"X-Slow-%d: x\r\n" % n)
                    n += 1
            except OSError:
                with self.lock:
                    self.cut_off += 1
                self.stop.wait(0.05)
            finally:
                if sock is not None:
                    sock.close()

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(10)


def probe(port, key, ws):
    """GET the session list on a new connection: (status, content type,
    body, seconds) or (the exception, None, None, seconds)."""
    t0 = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=PROBE_TIMEOUT)
    try:
        conn.request("GET", f"/api/v1/workspaces/{ws}/upload_sessions",
                     headers={"Authorization": f"Bearer {key}"})
        r = conn.getresponse()
        return r.status, r.getheader("Content-Type"), r.read(), time.monotonic() - t0
    except OSError as e:
        return repr(e), None, None, time.monotonic() - t0
    finally:
        conn.close()


def test_slow_header_flood_does_not_starve_api_clients(server_factory):
    s = server_factory(extra=MPM,
                       request_read_timeout=("header=2-4,minrate=500", "body=10,minrate=500"))
    # the flood holds every worker for a moment: the MPM says so
    s.expect_log(r"AH00484: server reached MaxRequestWorkers")
    s.expect_log(r"AH10159: server is within MinSpareThreads of MaxRequestWorkers")
    ws = unique_ws("slow")
    assert probe(s.port, s.key_all, ws)[:3] == (200, "application/json", EMPTY_LIST)

    results = []
    with SlowHeaders(s.port) as flood:
        time.sleep(1)  # every worker is taken by now
        t_end = time.monotonic() + FLOOD_SECONDS
        while time.monotonic() < t_end:
            t0 = time.monotonic()
            results.append(probe(s.port, s.key_all, ws))
            time.sleep(max(0.0, 1 - (time.monotonic() - t0)))
        connects, cut_off = flood.connects, flood.cut_off

    bad = [r for r in results
           if r[:3] != (200, "application/json", EMPTY_LIST) or r[3] >= PROBE_TIMEOUT]
    assert not bad and len(results) >= 3, \
        f"API clients starved by {SLOW_CLIENTS} slow-header clients: {bad} of {results}"
    # the flood was real: more slow clients than workers, each cut off and back again
    assert connects > SLOW_CLIENTS + WORKERS and cut_off >= WORKERS, (connects, cut_off)
    log = s.log_text()
    assert "AH00484" in log, "the flood never took every worker"
    assert log.count("AH01382: Request header read timeout") >= WORKERS

    # Let the flood's connections finish their lingering close (up to 2 s)
    # before the server is stopped: httpd's event MPM, stopped ungracefully
    # while hundreds of connections are being closed, can crash a child in
    # its own close_worker_sockets (core dump: the main thread in
    # apr_os_sock_get while its workers exit; no module frame). Once the
    # connections are gone, the API answers at once.
    time.sleep(3)
    status, ctype, body, took = probe(s.port, s.key_all, ws)
    assert (status, ctype, body) == (200, "application/json", EMPTY_LIST) and took < 2, \
        (status, ctype, body, took)


def test_a_slow_tail_after_the_file_part_keeps_the_file(server_factory):
    """POST /files whose body goes on slowly after its file part (a second
    file part, read and dropped) for longer than the sweep of files no row
    refers to waits (5 leases and the largest file at 1 MiB/s: 5.1 s here):
    the file is put under its name only once the body has ended, so the
    sweep cannot take it in between; the 201's file downloads whole."""
    srv = server_factory(extra=["UploadSessionIngestLease 1", "UploadSessionMaxFileSize 65536"])
    ws = unique_ws("slow-tail")
    b = "slowtail0123456789"
    head = (f"--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n"
            f"\r\nhello\r\n--{b}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"b.txt\"\r\n\r\n").encode()
    tail = f"\r\n--{b}--\r\n".encode()
    pieces = 16  # one every 0.5 s: 8 s

    def body():
        yield head
        for _ in range(pieces):
            time.sleep(0.5)
            yield b"x" * 1000
        yield tail
    resp, _sent = raw_post(srv.port, f"/api/v1/workspaces/{ws}/files",
                           {"Authorization": f"Bearer {srv.key_all}",
                            "Content-Type": f"multipart/form-data; boundary={b}",
                            "Content-Length": str(len(head) + 1000 * pieces + len(tail))},
                           body(), timeout=60)
    assert resp is not None and resp.status_code == 201, resp
    fid = json.loads(resp.content)["file_id"]
    api = srv.client(srv.user_all)
    time.sleep(2)  # sweep rounds run every quarter lease
    r = api.get(f"{ws}/files/{fid}")
    assert r.status_code == 200 and r.content == b"hello", (r.status_code, r.text[:200])
    assert "US1023" not in srv.log_text(), srv.log_tail()

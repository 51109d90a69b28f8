"""An HTTP/1.1 relay in front of an object store that breaks chosen requests
(FaultProxy). The module's libcurl sends one request per connection
through it (each is answered with Connection: close).

    fp = FaultProxy(("127.0.0.1", port))
    fp.rules.append(Rule(lambda method, target, head: ..., action))
    UploadSessionStorage "s3 {fp.endpoint} bucket"

Actions:
- "cut": forward the request, drop the answer, close both ends (the store
  acted; its answer never came);
- ("reply", status, body): answer this instead, never forward;
- ("raw", bytes): send these bytes as the whole answer (status line and
  headers included: an answer the "reply" shape cannot make), never forward;
- ("delay", seconds): hold the request, then forward it.

Every request seen is appended to fp.log as (method, target, what
happened). Uses only the standard library.
"""

import re
import socket
import threading
import time

from us_testkit.slowlink import Closing, loopback_listener


class Rule:
    """Action for the next `times` requests match(method, target, head) takes."""

    def __init__(self, match, action, times=1):
        self.match, self.action, self.times = match, action, times


class FaultProxy(Closing):
    def __init__(self, target):
        self.target = target
        self.rules = []
        self.log = []
        self._lock = threading.Lock()
        self._listener = loopback_listener()
        self.port = self._listener.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self):
        self._closed = True
        try:
            self._listener.close()
        except OSError:
            pass

    def _accept(self):
        while not self._closed:
            try:
                c, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    @staticmethod
    def _read_request(c):
        buf = b""
        while b"\r\n\r\n" not in buf:
            d = c.recv(65536)
            if not d:
                return None, None
            buf += d
        head, rest = buf.split(b"\r\n\r\n", 1)
        m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
        n = int(m.group(1)) if m else 0
        while len(rest) < n:
            d = c.recv(1 << 20)
            if not d:
                break
            rest += d
        return head, rest

    def _pick(self, method, target, head):
        with self._lock:
            for r in self.rules:
                if r.times and r.match(method, target, head):
                    r.times -= 1
                    return r.action
        return None

    def _serve(self, c):
        try:
            head, body = self._read_request(c)
            if head is None:
                return
            line = head.split(b"\r\n", 1)[0].decode("latin-1")
            method, target = line.split(" ")[0], line.split(" ")[1]
            action = self._pick(method, target, head.decode("latin-1"))
            if isinstance(action, tuple) and action[0] == "reply":
                _, status, rbody = action
                rbody = rbody.encode() if isinstance(rbody, str) else rbody
                # logged before the answer: the client acts on it at once, and
                # a test reads the log as soon as the client has answered
                self.log.append((method, target, f"injected {status}"))
                c.sendall(f"HTTP/1.1 {status} X\r\nContent-Type: application/xml\r\n"
                          f"Content-Length: {len(rbody)}\r\nConnection: close\r\n\r\n".encode()
                          + rbody)
                return
            if isinstance(action, tuple) and action[0] == "raw":
                self.log.append((method, target, "injected raw"))
                c.sendall(action[1])
                return
            if isinstance(action, tuple) and action[0] == "delay":
                time.sleep(action[1])
            u = socket.create_connection(self.target, timeout=60)
            u.sendall(re.sub(rb"(?im)^connection:.*\r\n", b"", head + b"\r\n")
                      + b"Connection: close\r\n\r\n" + body)
            if action == "cut":
                try:
                    u.settimeout(30)
                    u.recv(65536)  # the store acted
                except OSError:
                    pass
                u.close()
                self.log.append((method, target, "answer dropped"))
                return
            first = True
            while True:
                d = u.recv(65536)
                if not d:
                    break
                if first:
                    self.log.append((method, target, d.split(b"\r\n", 1)[0].decode("latin-1")))
                    first = False
                c.sendall(d)
            u.close()
        except OSError:
            pass
        finally:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()

"""A loopback TCP relay with latency on chosen requests (SlowLink).

A crash test that freezes the server between two steps of its work needs
those steps to take long enough for the test to see the first and act
before the last: on a loaded machine a batch of object-store copies can
finish between two polls. Putting the object store behind a SlowLink makes
its network slow for the requests that matter (a chunk the client sends
that holds `match`, e.g. b"x-amz-copy-source"), the way a distant store
is, while everything else passes at loopback speed.

Bytes are relayed unchanged, so signed requests (SigV4 signs the Host
header the client sent) stay valid. Uses only the standard library.

With cut=True a matching chunk is sent on at once, and the connection is
then cut where the answer to it would come back: the answer is dropped and
both ends are closed, what a network cut or a server's crash does to a
request the server has carried out (a database statement committed whose
client never hears so). One connection is cut so, the first whose client
sends chunks matching each of match's patterns in turn (bytes: one; a
compiled regular expression matches where it finds itself).
"""

import socket
import threading
import time


def loopback_listener():
    """A socket listening on a free loopback port."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(256)
    return s


def found(pattern, data):
    """Whether pattern (bytes, any case; or a compiled regular expression)
    is in data."""
    return pattern.search(data) if hasattr(pattern, "search") else pattern in data.lower()


class Closing:
    """A context manager whose exit calls close()."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class SlowLink(Closing):
    """Relays 127.0.0.1:self.port to target ("host", port), holding each
    client chunk that contains match (case-insensitive) for delay seconds
    first, or with cut, cutting the connection where its answer comes. Use
    as a context manager or call close(). listener: a listening socket to
    relay from instead of a new loopback one (e.g. one in another network
    namespace, us_testkit.netns)."""

    def __init__(self, target, delay, match, cut=False, listener=None):
        self.target = target
        self.delay = delay
        if cut and isinstance(match, bytes):
            match = [match]
        self.match = [m if hasattr(m, "search") else m.lower() for m in match] if cut \
            else match.lower()
        self.cut = cut
        self._armed = False  # with cut: a connection sent the patterns
        self.delayed = 0  # chunks held (or, with cut, answers dropped) so far
        self._lock = threading.Lock()
        self._socks = []
        self._closed = False
        self._listener = listener or loopback_listener()
        self.host, self.port = self._listener.getsockname()[:2]
        self.endpoint = f"http://{self.host}:{self.port}"
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self):
        with self._lock:
            self._closed = True
            socks, self._socks = self._socks, []
        for s in [self._listener] + socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def _track(self, s):
        with self._lock:
            if self._closed:
                s.close()
                return False
            self._socks.append(s)
            return True

    def _accept(self):
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            try:
                upstream = socket.create_connection(self.target, timeout=10)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            if not (self._track(client) and self._track(upstream)):
                continue
            asked = [0]  # with cut: how many of the patterns were sent, in turn
            threading.Thread(target=self._pump, args=(client, upstream, True, asked),
                             daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False, asked),
                             daemon=True).start()

    def _pump(self, src, dst, from_client, asked):
        """src to dst until either end closes; then both are shut down so
        the other direction ends too."""
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if not from_client and self.cut and asked[0] == len(self.match):
                    with self._lock:
                        self.delayed += 1
                    break  # the answer is lost with the connection
                if from_client and self.cut:
                    with self._lock:
                        if not self._armed and found(self.match[asked[0]], data):
                            asked[0] += 1
                            self._armed = asked[0] == len(self.match)
                elif from_client and self.match in data.lower():
                    with self._lock:
                        self.delayed += 1
                    time.sleep(self.delay)
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

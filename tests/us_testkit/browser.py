"""A real headless Chromium driven over the DevTools protocol, and a static
page server on loopback, for the browser tests (tests/integration/
test_cors_browser.py).

    with StaticPages({"/app.html": b"<html>..."}) as pages, Chromium() as browser:
        tab = browser.open(pages.url("/app.html"))
        result = tab.run("async (a, b) => { ... }", a, b)   # the promise's value

Debian's `chromium` and `python3-websocket` (scripts/install-deps.sh
installs them for the integration suite). Only the standard library and
websocket-client.
"""

import http.server
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.request

import websocket

from .procs import wait_for

# the binary itself: Debian's /usr/bin/chromium wrapper only adds flags for
# a desktop session
CHROMIUM = next((p for p in ("/usr/lib/chromium/chromium", "/usr/bin/chromium")
                 if os.path.exists(p)), "chromium")


class StaticPages:
    """Serves fixed bytes by path from a ThreadingHTTPServer on 127.0.0.1
    (its own origin: another port than the API's)."""

    def __init__(self, pages):
        self.pages = dict(pages)
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = outer.pages.get(self.path.split("?")[0])
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path, host="127.0.0.1"):
        return f"http://{host}:{self.port}{path}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


class BrowserError(Exception):
    pass


class Tab:
    """One page target over its DevTools WebSocket."""

    def __init__(self, ws_url, timeout):
        self.ws = websocket.create_connection(ws_url, timeout=timeout, suppress_origin=True)
        self.next_id = 0

    def call(self, method, **params):
        self.next_id += 1
        mid = self.next_id
        self.ws.send(json.dumps({"id": mid, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == mid:
                if "error" in msg:
                    raise BrowserError(f"{method}: {msg['error']}")
                return msg["result"]

    def run(self, function, *args, timeout=30):
        """Calls the JavaScript function (source text, may be async) with
        JSON-serializable args in the page; returns the value it resolves
        to. A thrown error raises BrowserError with its text."""
        expr = f"({function})(...{json.dumps(list(args))})"
        self.ws.settimeout(timeout + 5)
        res = self.call("Runtime.evaluate", expression=expr, awaitPromise=True,
                        returnByValue=True, timeout=timeout * 1000)
        if "exceptionDetails" in res:
            d = res["exceptionDetails"]
            raise BrowserError(d.get("exception", {}).get("description") or d.get("text"))
        return res["result"].get("value")

    def close(self):
        try:
            self.ws.close()
        except Exception:
            pass


class Chromium:
    """A headless Chromium with its own profile, on a DevTools port it picks
    itself (read back from <profile>/DevToolsActivePort)."""

    def __init__(self, timeout=20):
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="us-chromium-")
        self.proc = None
        self.port = None
        self.tabs = []

    def __enter__(self):
        args = [CHROMIUM, "--headless", "--disable-gpu", "--no-first-run",
                "--no-default-browser-check", "--disable-extensions",
                "--disable-background-networking", "--disable-sync",
                "--disable-dev-shm-usage", "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0", f"--user-data-dir={self.profile}",
                "about:blank"]
        if os.geteuid() == 0:
            args.insert(1, "--no-sandbox")  # Chromium refuses root with its sandbox
        self.log = open(os.path.join(self.profile, "chromium.log"), "wb")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        active = os.path.join(self.profile, "DevToolsActivePort")

        def port_written():
            if self.proc.poll() is not None:
                raise BrowserError(f"chromium exited {self.proc.returncode}: {self.log_text()}")
            try:
                with open(active) as f:
                    self.port = int(f.readline().strip())
                return True
            except (OSError, ValueError):
                return False
        if not wait_for(port_written, self.timeout):
            self.__exit__(None, None, None)
            raise BrowserError(f"chromium wrote no DevTools port within {self.timeout}s: "
                               + self.log_text())
        return self

    def log_text(self):
        try:
            with open(os.path.join(self.profile, "chromium.log"), "rb") as f:
                return f.read()[-4000:].decode(errors="replace")
        except OSError:
            return ""

    def _json(self, path, method="GET"):
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", method=method)
        with urllib.request.urlopen(req, timeout=self.timeout) as r:
            return json.loads(r.read())

    def open(self, url):
        """A new tab on url, once its load event has fired."""
        target = self._json("/json/new?about:blank", method="PUT")
        tab = Tab(target["webSocketDebuggerUrl"], self.timeout)
        self.tabs.append(tab)
        tab.call("Page.navigate", url=url)
        deadline = time.monotonic() + self.timeout
        # a new tab shows about:blank (origin "null") before the page itself
        while tab.run("(url) => location.href === url && document.readyState", url) != "complete":
            if time.monotonic() > deadline:
                raise BrowserError(f"{url} did not load within {self.timeout}s")
            time.sleep(0.05)
        return tab

    def __exit__(self, *exc):
        for t in self.tabs:
            t.close()
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)

"""Helpers for the fault-injection and security tests (test_faults.py,
test_security.py).

- a tmpfs mounter fixture (tmpfs) that unmounts after the test's servers
  are stopped (the private module copy, dedicated servers and SIGKILL of a
  whole httpd are ingest's),
- `apache2 -k graceful|restart` without waiting (uploads are in flight),
- uploads held open on raw sockets (HeldUpload) and paced uploads in
  threads (PacedUpload), with what the client saw,
- an exclusive SQLite lock on the store (store_locked),
- on-disk inspection: temp files, blob hashes, path snapshots,
- httpd children memory (rss_total), secrets in logs (find_secrets),
- processes that can start no thread (no_new_threads: a pids cgroup).

Uses only the standard library, pytest and httpx, plus the other modules of
this package.
"""

import contextlib
import hashlib
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time

import pytest

from .server import APACHE, new_client
from .api import check
from .procs import children_rss
from .uploads import (Part, form_parts, multipart, new_boundary, session_dir,
                      sha256_file, url_path)

MiB = 1024 * 1024

# A child SIGKILLed by us may be noticed (and logged) by the parent.
KILLED_CHILD_LOG = r"AH00052: child pid \d+ exit signal Killed"


# --------------------------------------------------------------------------
# fixtures (import them into a test module to use them)
# --------------------------------------------------------------------------

def _umount(path):
    for args in (["umount", path], ["umount", "-l", path]):
        if subprocess.run(args, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode == 0:
            return True
        time.sleep(0.2)
    return False


@pytest.fixture
def tmpfs():
    """mount(size) -> a fresh directory with a tmpfs of that size (e.g. "4m")
    mounted on it, or pytest.skip when mounting is not permitted here.
    resize(path, size) remounts it with another size. Request this fixture
    BEFORE make_server/server_factory in the test's arguments: fixtures are
    torn down in reverse order, so the servers are stopped before the
    unmount."""
    mounts = []

    class Mounter:
        def __call__(self, size):
            d = tempfile.mkdtemp(prefix="us-it-tmpfs-", dir="/tmp")
            p = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755",
                                "tmpfs", d], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
            if p.returncode != 0:
                os.rmdir(d)
                pytest.skip(f"cannot mount a tmpfs here (needs CAP_SYS_ADMIN): "
                            f"{p.stderr.strip() or p.returncode}")
            mounts.append(d)
            return d

        @staticmethod
        def resize(path, size):
            p = subprocess.run(["mount", "-o", f"remount,size={size}", path],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            assert p.returncode == 0, f"remount {path} size={size}: {p.stderr}"

    yield Mounter()
    for d in mounts:
        if _umount(d):
            shutil.rmtree(d, ignore_errors=True)


def chown_www_data(path):
    import pwd
    pw = pwd.getpwnam("www-data")
    os.chown(path, pw.pw_uid, pw.pw_gid)


# --------------------------------------------------------------------------
# httpd processes
# --------------------------------------------------------------------------

def apachectl(srv, action, timeout=30):
    """`apache2 -d DIR -f CONF -k action` (graceful, restart, ...); returns
    the CompletedProcess without waiting for the new generation."""
    return subprocess.run([APACHE, "-d", srv.dir, "-f", srv.conf_path, "-k", action],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=timeout, env=srv._env())


def resuming_count(srv):
    return srv.log_text().count("resuming normal operations")


# --------------------------------------------------------------------------
# uploads whose progress the test controls
# --------------------------------------------------------------------------

def upload_body(fields, name, size_or_data):
    """(head, tail, content_type): the multipart body of one upload is
    head + <file bytes> + tail."""
    boundary = new_boundary()
    head, _ = multipart(form_parts(fields, False), boundary, close=False)
    head += b"--" + boundary.encode() + b"\r\n" + Part(
        "file", filename=name, content_type="application/octet-stream").head()
    tail = b"\r\n--" + boundary.encode() + b"--\r\n"
    return head, tail, f"multipart/form-data; boundary={boundary}"


class HeldUpload:
    """An upload on a raw socket: start() sends the request head and the
    first `first` bytes of the file, then holds the connection open;
    finish() tries to send the rest and read the answer. status is the HTTP
    status seen (None: connection error), error what went wrong.
    Default: the session's upload target (cfg); direct=(path, headers)
    posts the file alone to that path instead (POST /files)."""

    def __init__(self, srv, cfg, name, data, first, direct=None):
        self.srv, self.cfg, self.name, self.data, self.first = srv, cfg, name, data, first
        self.direct = direct
        self.sha = hashlib.sha256(data).hexdigest()
        self.status = None
        self.error = None
        self.sock = None
        self.answer = b""

    def start(self):
        if self.direct:
            path, extra = self.direct
            head, self.tail, ctype = upload_body({}, self.name, self.data)
        else:
            path, extra = url_path(self.cfg["url"]), {}
            head, self.tail, ctype = upload_body(self.cfg["fields"], self.name, self.data)
        lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{self.srv.port}",
                 "Connection: close", f"Content-Type: {ctype}",
                 f"Content-Length: {len(head) + len(self.data) + len(self.tail)}"]
        lines += [f"{k}: {v}" for k, v in extra.items()]
        req = ("\r\n".join(lines) + "\r\n\r\n").encode() + head
        self.sock = socket.create_connection(("127.0.0.1", self.srv.port), timeout=30)
        self.sock.sendall(req)
        self.sock.sendall(self.data[:self.first])
        return self

    def finish(self, timeout=20):
        self.sock.settimeout(timeout)
        try:
            self.sock.sendall(self.data[self.first:] + self.tail)
            buf = b""
            while True:
                b = self.sock.recv(65536)
                if not b:
                    break
                buf += b
            self.answer = buf
            if buf.startswith(b"HTTP/1.1 "):
                self.status = int(buf.split(b" ", 2)[1])
            else:
                self.error = f"no HTTP answer: {buf[:200]!r}"
        except OSError as e:
            self.error = repr(e)
        finally:
            self.sock.close()
        return self


class PacedUpload(threading.Thread):
    """One upload with httpx in a thread, its body streamed in `chunk`-byte
    pieces with `pause` seconds between them (so it is in flight for a
    while). Default: the session's upload target (cfg, 204 expected);
    direct=(url, headers) posts the file alone to that URL instead
    (POST /files, 201 expected). Afterwards: status (None on a transport
    error), error, body, sent_all (the whole body left the client)."""

    def __init__(self, cfg, name, data, chunk=256 * 1024, pause=0.05, timeout=60,
                 direct=None):
        super().__init__(daemon=True)
        self.cfg, self.name, self.data, self.direct = cfg, name, data, direct
        self.sha = hashlib.sha256(data).hexdigest()
        self.chunk, self.pause, self.timeout = chunk, pause, timeout
        self.status = None
        self.error = None
        self.body = b""
        self.sent_all = False
        self.started = threading.Event()

    def _gen(self, head, tail):
        yield head
        self.started.set()
        for i in range(0, len(self.data), self.chunk):
            yield self.data[i:i + self.chunk]
            time.sleep(self.pause)
        yield tail
        self.sent_all = True

    def run(self):
        if self.direct:
            url, extra = self.direct
            head, tail, ctype = upload_body({}, self.name, self.data)
        else:
            url, extra = self.cfg["url"], {}
            head, tail, ctype = upload_body(self.cfg["fields"], self.name, self.data)
        n = len(head) + len(self.data) + len(tail)
        try:
            with new_client(timeout=self.timeout) as c:
                r = c.post(url, content=self._gen(head, tail),
                           headers={"Content-Type": ctype, "Content-Length": str(n), **extra})
                self.status, self.body = r.status_code, r.content
        except Exception as e:  # noqa: BLE001 - any transport error counts as a failure
            self.error = repr(e)
        finally:
            self.started.set()

    @property
    def ok(self):
        if self.direct:
            return self.status == 201 and self.body.startswith(b'{"file_id":')
        return self.status == 204 and self.body == b""

    @property
    def file_id(self):
        return json.loads(self.body)["file_id"] if self.ok and self.direct else None

    def describe(self):
        return (f"{self.name}: status={self.status} sent_all={self.sent_all} "
                f"error={self.error} body={self.body[:300]!r}")


# --------------------------------------------------------------------------
# the store
# --------------------------------------------------------------------------

def store_path(srv):
    return os.path.join(srv.dir, "state", "store.db")


def _give_back_wal_files(srv):
    """SQLite files we (root) may have created must stay usable by User."""
    import pwd
    pw = pwd.getpwnam("www-data")
    for suffix in ("-wal", "-shm"):
        p = store_path(srv) + suffix
        with contextlib.suppress(FileNotFoundError):
            if os.stat(p).st_uid == 0:
                os.chown(p, pw.pw_uid, pw.pw_gid)


@contextlib.contextmanager
def store_locked(srv):
    """Hold BEGIN EXCLUSIVE on the server's SQLite store (WAL: writers are
    locked out, readers are not) for the duration of the with block."""
    conn = sqlite3.connect(store_path(srv), timeout=20, isolation_level=None)
    try:
        conn.execute("BEGIN EXCLUSIVE")
        _give_back_wal_files(srv)
        yield conn
        conn.execute("ROLLBACK")
    finally:
        conn.close()
        _give_back_wal_files(srv)


def store_tables(srv):
    """Names of the tables of the store (read-only query)."""
    if getattr(srv, "store", "sqlite3") == "pgsql":
        from . import pg
        rows = pg.cluster().psql("SELECT tablename FROM pg_tables WHERE schemaname = 'public'",
                                 dbname=srv.pg_db)
        return sorted(rows.split())
    conn = sqlite3.connect(store_path(srv), timeout=20, isolation_level=None)
    try:
        return sorted(r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'"))
    finally:
        conn.close()
        _give_back_wal_files(srv)


# --------------------------------------------------------------------------
# the disk
# --------------------------------------------------------------------------

def data_dir_of(srv):
    return os.path.join(srv.dir, "state", "data")


def session_blob_hashes(srv, sid, data_root=None):
    """[(sha256, size)] of the session's published blobs (sorted)."""
    d = os.path.join(data_root, "sessions", sid) if data_root else session_dir(srv, sid)
    out = []
    names = sorted(n for n in os.listdir(d) if not n.startswith(".")) \
        if os.path.isdir(d) else []
    for n in names:
        p = os.path.join(d, n)
        out.append((sha256_file(p), os.path.getsize(p)))
    return sorted(out)


def session_temp_files(srv, sid, data_root=None):
    d = os.path.join(data_root, "sessions", sid) if data_root else session_dir(srv, sid)
    try:
        return sorted(n for n in os.listdir(d) if n.startswith(".") and n.endswith(".tmp"))
    except FileNotFoundError:
        return []


def snapshot(root):
    """{relative path: (type, size)} of everything below root."""
    out = {}
    for dp, dns, fns in os.walk(root):
        for n in dns:
            out[os.path.relpath(os.path.join(dp, n), root)] = ("d", 0)
        for n in fns:
            p = os.path.join(dp, n)
            try:
                out[os.path.relpath(p, root)] = ("f", os.lstat(p).st_size)
            except FileNotFoundError:
                pass
    return out


# --------------------------------------------------------------------------
# memory and secrets
# --------------------------------------------------------------------------

def rss_total(srv):
    """(sum, max) VmRSS of the live children of srv, in bytes."""
    rss = children_rss(srv.pid)
    return sum(rss.values()), max(rss.values(), default=0)


def find_secrets(text, secrets_):
    """[(label, secret)] of the secrets (label -> string) found in text."""
    return [(label, s) for label, s in secrets_.items() if s and s in text]


def api_json(resp, status, body):
    """check() for a JSON answer, plus: exactly that body, nothing else."""
    return check(resp, status, body)


PIDS_CGROUP = "/sys/fs/cgroup/pids"


def _pids_cgroup_of(pid):
    """The pids cgroup (v1) path of pid, relative to PIDS_CGROUP."""
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            if "pids" in controllers.split(","):
                return path
    return None


@contextlib.contextmanager
def no_new_threads(pids):
    """The processes pids can start no thread or process while inside: they
    are moved into a pids cgroup of their own whose limit is what they run
    now (clone then fails with EAGAIN, as under a host's process limit),
    and moved back after. Skips the test where no pids cgroup (v1) can be
    made (not root, no such hierarchy)."""
    if not os.access(os.path.join(PIDS_CGROUP, "cgroup.procs"), os.W_OK):
        pytest.skip(f"no writable pids cgroup at {PIDS_CGROUP}")
    home = {pid: _pids_cgroup_of(pid) for pid in pids}
    group = tempfile.mkdtemp(prefix="us-test-nothreads-", dir=PIDS_CGROUP)
    try:
        for pid in pids:
            with open(os.path.join(group, "cgroup.procs"), "w") as f:
                f.write(str(pid))
        with open(os.path.join(group, "pids.current")) as f:
            current = f.read().strip()
        with open(os.path.join(group, "pids.max"), "w") as f:
            f.write(current)
        yield
    finally:
        for pid, path in home.items():
            try:
                with open(os.path.join(PIDS_CGROUP, (path or "/").lstrip("/"),
                                       "cgroup.procs"), "w") as f:
                    f.write(str(pid))
            except OSError:
                pass  # the process is gone
        os.rmdir(group)


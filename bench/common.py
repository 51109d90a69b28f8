"""Shared pieces of the benchmarks (bench/run.sh drives them).

- BenchServer: one httpd (event MPM) in its own directory under $BENCH_WORK,
  serving at once our module (UploadSession On), mod_dav + mod_dav_fs under
  /dav and static files from its DocumentRoot: every baseline comes from the
  same server process as our figure, in the same run. It is the integration
  tests' UploadServer (tests/us_testkit/server.py) with the benchmarks'
  modules, MPM settings and one key.
- results: every figure is appended as one JSON line to $BENCH_RESULTS
  (bench/summary.py turns them into the table).
- wrk helpers: runs wrk with a Lua script whose done() prints one JSON line.

Debian's /usr/bin/python3 with python3-httpx and python3-pytest; nothing
else. The generic helpers (free ports, polling, /proc process lookups, the
children's memory) are tests/us_testkit's.
"""

import json
import os
import secrets
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

import httpx

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(BENCH_DIR)
sys.path.insert(0, os.path.join(REPO_ROOT, "tests"))

from us_testkit.procs import children_of, children_rss, port_open, wait_for  # noqa: E402,F401
from us_testkit.server import UploadServer  # noqa: E402

WRK_DIR = os.path.join(BENCH_DIR, "wrk")
APACHE = os.environ.get("BENCH_APACHE", "/usr/sbin/apache2")
APACHE_MODULES = "/usr/lib/apache2/modules"
# run.sh copies build/mod_upload_session.so here once per run: `make` rewrites
# the build file in place, which would crash a running httpd that maps it.
MODULE_SO = os.environ.get("BENCH_MODULE",
                           os.path.join(REPO_ROOT, "build", "mod_upload_session.so"))
# fsync and fdatasync returning at once (bench/preload/nosync.c): b1's bound
NOSYNC_SO = os.path.join(REPO_ROOT, "build", "bench", "nosync.so")
QUICK = os.environ.get("BENCH_QUICK", "0") == "1"
RESULTS = os.environ.get("BENCH_RESULTS")
WORK = os.environ.get("BENCH_WORK") or tempfile.gettempdir()
KEEP = os.environ.get("BENCH_KEEP", "0") == "1"
# Other people's builds and tests may share these cores. A measurement during
# which processes other than ours used more than MAX_FOREIGN % of the
# machine's CPU is repeated (at most TRIES times in all; the quietest counts).
MAX_FOREIGN = float(os.environ.get("BENCH_MAX_FOREIGN", "25"))
TRIES = int(os.environ.get("BENCH_TRIES", "1" if QUICK else "2"))
# Before each measurement, wait (at most this many seconds) for half a second
# in which the machine, our idle server aside, is less than 15 % busy.
QUIET_WAIT = float(os.environ.get("BENCH_QUIET_WAIT", "1" if QUICK else "5"))


def _terminate(signum, frame):
    # timeout(1) in run.sh: unwind, so that `finally:` stops our httpd
    raise SystemExit(128 + signum)


signal.signal(signal.SIGTERM, _terminate)


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --------------------------------------------------------------------------
# results
# --------------------------------------------------------------------------

def record(bench, name, ours, baseline=None, unit="", ratio=None, target=None,
           cmp=">=", met=None, note="", target_of="ratio", **extra):
    """Appends one result. ratio defaults to ours/baseline; target is compared
    using cmp with the ratio (target_of="ratio") or with ours ("ours")."""
    if ratio is None and baseline and target_of == "ratio":
        ratio = ours / baseline
    if met is None and target is not None:
        value = ratio if target_of == "ratio" and ratio is not None else ours
        met = value >= target if cmp == ">=" else value <= target
    row = dict(bench=bench, name=name, ours=ours, baseline=baseline, unit=unit,
               ratio=ratio, target=target, cmp=cmp, met=met, note=note, quick=QUICK,
               target_of=target_of)
    row.update(extra)
    line = json.dumps(row)
    if RESULTS:
        with open(RESULTS, "a") as f:
            f.write(line + "\n")
    r = f"{ratio:.3f}" if ratio is not None else "-"
    b = f"{baseline:.4g}" if baseline is not None else "-"
    verdict = "" if met is None else ("MET" if met else "MISSED")
    log(f"RESULT {bench} {name}: ours {ours:.4g} {unit}, baseline {b}, ratio {r} "
        f"(target {cmp} {target}) {verdict} {note}")
    return row


def quiet(fn, what=""):
    """fn() -> (value, CpuMeter); runs it again while other processes took
    more than MAX_FOREIGN % of the CPU, TRIES times at most. Returns the
    (value, meter) of the quietest attempt."""
    best = None
    for i in range(TRIES):
        if QUIET_WAIT > 0:
            wait_quiet()
        v, m = fn()
        if best is None or m.foreign_pct < best[1].foreign_pct:
            best = (v, m)
        if m.foreign_pct <= MAX_FOREIGN:
            break
        if i + 1 < TRIES:
            log(f"  {what}: other processes used {m.foreign_pct:.0f}% of the CPU; "
                f"measuring again ({i + 2}/{TRIES})")
    return best


def median(xs):
    return statistics.median(xs) if xs else float("nan")


# --------------------------------------------------------------------------
# processes
# --------------------------------------------------------------------------

def proc_cpu_s(pid):
    """utime + stime of a process in seconds (0 when gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def machine_busy_s():
    """(busy, total) CPU seconds of the whole machine from /proc/stat. Busy
    is user + nice + system + steal: irq and softirq time (mostly the
    loopback traffic of the benchmark itself) is charged to no process, so
    it is left out of both sides of the comparison."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    hz = os.sysconf("SC_CLK_TCK")
    busy = v[0] + v[1] + v[2] + v[7]
    return busy / hz, sum(v[:8]) / hz


def wait_quiet(max_wait=None):
    """Waits until the machine is less than 15 % busy over half a second
    (our server idle meanwhile), max_wait seconds at most. Returns the
    busy share (%) of the last window."""
    max_wait = QUIET_WAIT if max_wait is None else max_wait
    deadline = time.monotonic() + max_wait
    pct = 0.0
    while True:
        b0 = machine_busy_s()
        time.sleep(0.5)
        b1 = machine_busy_s()
        total = b1[1] - b0[1]
        pct = 100.0 * (b1[0] - b0[0]) / total if total > 0 else 0.0
        if pct < 15 or time.monotonic() >= deadline:
            return pct


class CpuMeter:
    """CPU used during a measurement: by our httpd (parent + children), by
    the load generator (this process and the children it waited for, e.g.
    wrk, curl, dd) and by everything else on the machine ("foreign": other
    people's builds and tests share these cores and make figures noisy)."""

    def __init__(self, server=None):
        self.server = server

    def _httpd(self):
        if not self.server or not self.server.pid:
            return {}
        pids = [self.server.pid] + self.server.children()
        return {p: proc_cpu_s(p) for p in pids}

    def __enter__(self):
        self.t0 = time.monotonic()
        self.m0 = machine_busy_s()
        self.h0 = self._httpd()
        self.o0 = os.times()
        return self

    def __exit__(self, *exc):
        wall = time.monotonic() - self.t0
        m1 = machine_busy_s()
        h1 = self._httpd()
        o1 = os.times()
        self.wall = wall
        self.httpd_s = sum(h1.get(p, 0) - self.h0.get(p, 0) for p in h1)
        self.client_s = ((o1.user - self.o0.user) + (o1.system - self.o0.system) +
                         (o1.children_user - self.o0.children_user) +
                         (o1.children_system - self.o0.children_system))
        busy = m1[0] - self.m0[0]
        total = m1[1] - self.m0[1]
        self.foreign_s = max(0.0, busy - self.httpd_s - self.client_s)
        self.foreign_pct = 100.0 * self.foreign_s / total if total > 0 else 0.0
        self.busy_pct = 100.0 * busy / total if total > 0 else 0.0
        return False

    def as_dict(self, prefix=""):
        return {prefix + "httpd_cpu_s": round(self.httpd_s, 3),
                prefix + "client_cpu_s": round(self.client_s, 3),
                prefix + "foreign_cpu_pct": round(self.foreign_pct, 1),
                prefix + "wall_s": round(self.wall, 3)}


def chown_www(path):
    if os.getuid() == 0:
        shutil.chown(path, "www-data", "www-data")


# --------------------------------------------------------------------------
# the server
# --------------------------------------------------------------------------

# The event MPM settings a benchmark server runs with, by name:
# - debian: Debian's stock mods-available/mpm_event.conf, what an operator
#   who runs `a2enmod mpm_event` gets (the headline configuration);
# - defaults: none at all, httpd's compiled-in defaults (3 children x 25);
# - tuned: two children of 64 threads, none spawned or reaped during a run.
MPM_PROFILES = {
    "debian": ["StartServers 2", "MinSpareThreads 25", "MaxSpareThreads 75",
               "ThreadLimit 64", "ThreadsPerChild 25", "MaxRequestWorkers 150",
               "MaxConnectionsPerChild 0"],
    "defaults": [],
    "tuned": ["ServerLimit 2", "StartServers 2", "ThreadsPerChild 64",
              "MaxRequestWorkers 128", "MinSpareThreads 16", "MaxSpareThreads 128"],
}


class BenchServer(UploadServer):
    """httpd with our module, mod_dav(_fs) on /dav and static files on /.
    mpm: a key of MPM_PROFILES; access_log: write Debian's combined access
    log for every request, ours and the baselines' alike (a real server logs);
    preload: a shared object httpd runs with (LD_PRELOAD)."""

    def __init__(self, ingest_threads=1, extra=(), mpm="tuned", access_log=False, store=None,
                 storage=None, preload=None):
        self.ingest_threads = ingest_threads
        self.preload = preload
        self.bench_extra = list(extra)
        self.mpm = mpm
        self.access_log = access_log
        super().__init__(max_open=1000000, max_lifetime=None, module=MODULE_SO,
                         request_read_timeout=None, apache=APACHE,
                         modules=[("mime_module", "mod_mime.so"), ("dav_module", "mod_dav.so"),
                                  ("dav_fs_module", "mod_dav_fs.so")],
                         log_level="warn", default_users=False,
                         dir_prefix="us-bench-srv-", parent_dir=WORK, ctl_timeout=60,
                         store=store, storage=storage)
        self.base = self.public_url
        self.api = self.api_base
        self.htdocs = os.path.join(self.dir, "htdocs")
        self.dav_dir = os.path.join(self.htdocs, "dav")
        self.state = os.path.join(self.dir, "state")
        for d in (self.dav_dir, os.path.join(self.dir, "davlock")):
            os.makedirs(d, exist_ok=True)
            os.chmod(d, 0o755)
            chown_www(d)
        self.user = self.add_user("Bench", "User", "*",
                                  key="usk_bench_" + secrets.token_urlsafe(24))
        self.key = self.user.key
        self.user_id = self.user.user_id
        self.auth = self.user.headers
        self.static("tiny.txt", b"ok\n")
        self._client = None

    @property
    def conf(self):
        return self.conf_path

    def _env(self):
        env = super()._env()
        if self.preload:
            env["LD_PRELOAD"] = " ".join(p for p in (env.get("LD_PRELOAD"), self.preload) if p)
        return env

    def fail(self, msg):
        raise RuntimeError(msg)

    def static(self, name, data):
        """A static file under the DocumentRoot; returns its URL path."""
        path = os.path.join(self.htdocs, name)
        with open(path, "wb") as f:
            f.write(data)
        os.chmod(path, 0o644)
        return "/" + name

    def write_config(self):
        self.extra = [
            "TypesConfig /etc/mime.types",
            f"# MPM settings: {self.mpm} (bench/common.py MPM_PROFILES)",
        ] + MPM_PROFILES[self.mpm] + ([
            'LogFormat "%h %l %u %t \\"%r\\" %>s %O \\"%{Referer}i\\" \\"%{User-Agent}i\\"" combined',
            f'CustomLog "{self.dir}/access.log" combined',
        ] if self.access_log else []) + [
            "KeepAlive On",
            "MaxKeepAliveRequests 0",
            "KeepAliveTimeout 30",
            f'<Directory "{self.dir}/htdocs">',
            "    Require all granted",
            "</Directory>",
            # a second home for static twins, served without mmap (b1's info pair)
            f'<Directory "{self.dir}/htdocs/nommap">',
            "    EnableMMAP Off",
            "</Directory>",
            f'DavLockDB "{self.dir}/davlock/lockdb"',
            "<Location /dav>",
            "    Dav On",
            "    LimitRequestBody 0",
            "</Location>",
            f"UploadSessionIngestThreads {self.ingest_threads}",
        ] + self.bench_extra
        super().write_config()

    def start(self):
        super().start(timeout=15)
        if not wait_for(lambda: len(self.children()) >= 2, 10):
            raise RuntimeError("httpd children did not start\n" + self.log_tail())
        # warm every worker thread's store connection a little
        c = self.client()
        for _ in range(20):
            c.get("warm/upload_sessions", params={"limit": 1})
        return self

    def children(self):
        return children_of(self.pid) if self.pid else []

    def children_rss_kib(self):
        """{pid: VmRSS KiB} of the children."""
        if not self.pid:
            return {}
        return {pid: rss // 1024 for pid, rss in children_rss(self.pid).items()}

    def stop(self, timeout=30, check=False):
        self._client = None
        super().stop(timeout=timeout, check=check)

    def cleanup(self):
        self.stop()
        errors = [l for l in self.log_text().splitlines()
                  if "[error]" in l or ":error]" in l or "exit signal" in l or "AH00052" in l]
        if errors:
            log(f"WARNING: {len(errors)} error line(s) in {self.error_log}, e.g.: {errors[0]}")
        if not KEEP and not errors:
            shutil.rmtree(self.dir, ignore_errors=True)

    def log_tail(self, n=30):
        return super().log_tail(n)

    # ---- API -----------------------------------------------------------------
    def client(self):
        """One keep-alive client with the bench key, kept until stop()."""
        if self._client is None:
            self._client = super().client(self.user, timeout=60)
        return self._client

    def create_session(self, ws, **body):
        r = self.client().post(f"{ws}/upload_sessions", json=body)
        if r.status_code != 201:
            raise RuntimeError(f"create: {r.status_code} {r.text}")
        return r.json()

    def status(self, ws, sid):
        r = self.client().get(f"{ws}/upload_sessions/{sid}")
        if r.status_code != 200:
            raise RuntimeError(f"status: {r.status_code} {r.text}")
        return r.json()

    def close_session(self, ws, sid):
        r = self.client().put(f"{ws}/upload_sessions/{sid}", json={})
        if r.status_code != 204:
            raise RuntimeError(f"close: {r.status_code} {r.text}")

    def open_session_ids(self, ws):
        """Ids of the OPEN sessions of a workspace, oldest first: from the
        store itself, SQLite's file or PostgreSQL by psql, since every page
        of the API's list counts the whole list and 100,000 sessions would
        take minutes; else from the API."""
        db = os.path.join(self.dir, "state", "store.db")
        if self.store == "sqlite3" and os.path.exists(db):
            conn = sqlite3.connect(db, timeout=30)
            try:
                return [r[0] for r in conn.execute(
                    "SELECT id FROM us_sessions WHERE workspace = ? AND status = 'OPEN'"
                    " ORDER BY created_at, id", (ws,))]
            finally:
                conn.close()
        if self.store == "pgsql":
            out = subprocess.run(
                ["psql", "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", self.pg_conninfo, "-c",
                 "SELECT id FROM us_sessions WHERE workspace = '%s' AND status = 'OPEN'"
                 " ORDER BY created_at, id" % ws.replace("'", "''")],
                stdout=subprocess.PIPE, text=True, check=True, timeout=120)
            return out.stdout.split()
        ids, params = [], {"limit": 100}
        c = self.client()
        while True:
            r = c.get(f"{ws}/upload_sessions", params=params)
            d = r.json()
            ids += [s["session_id"] for s in d["data"] if s["status"] == "OPEN"]
            if not d["has_more"] or not d["data"]:
                return ids[::-1]
            params = {"limit": 100, "after": d["data"][-1]["session_id"]}

    def url_path(self, url):
        assert url.startswith(self.base), url
        return url[len(self.base):]


class RawClient:
    """One keep-alive HTTP/1.1 connection with as little client work as
    possible (pre-built request bytes, Content-Length responses only): for
    latency medians, where a heavier client would hide server differences."""

    def __init__(self, port, headers):
        self.port = port
        self.headers = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.sock = None

    def _connect(self):
        self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=60)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def request(self, method, path, body=b""):
        """(status, body bytes, seconds from send to the last byte)."""
        if self.sock is None:
            self._connect()
        head = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n{self.headers}"
                f"Content-Length: {len(body)}\r\n")
        if body:
            head += "Content-Type: application/json\r\n"
        data = (head + "\r\n").encode() + body
        t = time.perf_counter()
        self.sock.sendall(data)
        while b"\r\n\r\n" not in self.buf:
            self._recv()
        hdr, _, rest = self.buf.partition(b"\r\n\r\n")
        lines = hdr.split(b"\r\n")
        status = int(lines[0].split()[1])
        n = 0
        for l in lines[1:]:
            k, _, v = l.partition(b":")
            if k.strip().lower() == b"content-length":
                n = int(v)
        while len(rest) < n:
            rest += self._recv_chunk()
        dt = time.perf_counter() - t
        self.buf = rest[n:]
        return status, rest[:n], dt

    def _recv_chunk(self):
        d = self.sock.recv(65536)
        if not d:
            raise ConnectionError("server closed the connection")
        return d

    def _recv(self):
        self.buf += self._recv_chunk()

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def write_fields_file(path, fields):
    """name<TAB>value lines, read by wrk/upload.lua."""
    with open(path, "w") as f:
        for k, v in fields.items():
            assert "\t" not in k + v and "\n" not in k + v
            f.write(f"{k}\t{v}\n")


# --------------------------------------------------------------------------
# wrk
# --------------------------------------------------------------------------

def wrk_env():
    env = dict(os.environ)
    env["LUA_PATH"] = os.path.join(WRK_DIR, "?.lua") + ";;"
    return env


def parse_wrk_json(out):
    for line in out.splitlines():
        if line.startswith("BENCHJSON "):
            return json.loads(line[len("BENCHJSON "):])
    raise RuntimeError("wrk printed no BENCHJSON line:\n" + out)


def wrk(url, script, duration, connections, threads=2, headers=(), args=(), timeout="10s"):
    """Runs wrk for `duration` seconds; returns the dict printed by the
    script's done() (requests, duration_s, rps, errors, latency)."""
    cmd = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration}s",
           "--timeout", timeout, "-s", os.path.join(WRK_DIR, script)]
    for h in headers:
        cmd += ["-H", h]
    cmd.append(url)
    if args:
        cmd += ["--", *[str(a) for a in args]]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=duration + 120, env=wrk_env())
    if p.returncode != 0:
        raise RuntimeError(f"wrk failed ({p.returncode}): {' '.join(cmd)}\n{p.stdout}")
    return parse_wrk_json(p.stdout)


def wrk_batch(url, script, total, connections, marker_dir, threads=2, headers=(), args=(),
              limit_s=120):
    """Runs wrk until every thread has completed its share of `total`
    requests (the Lua script writes marker_dir/done-<tid>), then stops it
    with SIGINT; returns the script's done() dict (t_first, t_last, ok,
    failed, ...). wrk itself only knows fixed durations."""
    os.makedirs(marker_dir, exist_ok=True)
    for n in os.listdir(marker_dir):
        os.unlink(os.path.join(marker_dir, n))
    cmd = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{limit_s}s",
           "--timeout", "60s", "-s", os.path.join(WRK_DIR, script)]
    for h in headers:
        cmd += ["-H", h]
    cmd += [url, "--", str(total), str(threads), marker_dir, *[str(a) for a in args]]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         env=wrk_env())
    try:
        ok = wait_for(lambda: p.poll() is not None or
                      len(os.listdir(marker_dir)) >= threads, limit_s + 10, interval=0.02)
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
        out, _ = p.communicate(timeout=60)
    except BaseException:
        p.kill()
        p.wait()
        raise
    if not ok:
        raise RuntimeError(f"wrk batch did not finish within {limit_s}s:\n{out}")
    return parse_wrk_json(out)


def machine_info():
    def sh(cmd):
        try:
            return subprocess.run(cmd, shell=True, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, timeout=10).stdout.strip()
        except Exception as e:  # noqa: BLE001
            return f"? ({e})"
    return {
        "nproc": sh("nproc"),
        "cpu": sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-").strip(),
        "mem": sh("free -h | awk '/^Mem:/{print $2}'"),
        "kernel": sh("uname -srm"),
        "disk": sh(f"df -hT {WORK} | tail -1"),
        "apache": sh(f"{APACHE} -v | head -1"),
        "wrk": sh("wrk -v 2>&1 | head -1"),
        "sqlite": sh("/usr/bin/python3 -c 'import sqlite3; print(sqlite3.sqlite_version)'"),
    }


def main_guard(fn):
    """Runs fn(); a failure is recorded as such and does not stop run.sh."""
    try:
        fn()
    except Exception as e:  # noqa: BLE001
        import traceback
        traceback.print_exc()
        record(os.path.basename(sys.argv[0]), "FAILED", float("nan"), note=str(e)[:300])
        sys.exit(1)


# ---- A/B of module builds (bench/ab_*.py) ----------------------------------

def ab_variants(doc):
    """The module builds named on the command line; exits with doc when none is."""
    variants = sys.argv[1:]
    if not variants:
        sys.exit(doc)
    return variants


def ab_start(servers, variants, start):
    """servers[v] = start(v) for each build, into the caller's dict (so that
    those started before a failure are still there to be cleaned up)."""
    for v in variants:
        servers[v] = start(v)
    return {v: [] for v in variants}


def ab_order(variants, rounds):
    """(round, build) in ABBA order: the builds in order in even rounds,
    reversed in odd ones, so a drift of the machine's load hits them alike."""
    for rnd in range(rounds):
        for v in (variants if rnd % 2 == 0 else variants[::-1]):
            yield rnd, v

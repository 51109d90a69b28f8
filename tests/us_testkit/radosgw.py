"""A private Ceph radosgw on loopback for tests: one monitor, one memstore
OSD and radosgw (beast frontend) under one directory, no cephx, pools of
size 1, no system service touched. Standard library only.

    rgw = Radosgw(dir, port)      # port 0: a free one
    rgw.start()                   # returns when S3 answers; rgw.access_key, rgw.secret_key
    ...                           # rgw.endpoint is http://127.0.0.1:PORT
    rgw.stop()                    # kills the daemons, removes dir

Also a command line, shared with scripts/radosgw-local.sh:
    python3 -m us_testkit.radosgw start DIR [PORT]   prints endpoint and keys
    python3 -m us_testkit.radosgw stop DIR

One radosgw per test session: shared_info() gives the one US_RGW_INFO
names (scripts/with-radosgw.sh, `make test`) or starts one for this
process, stopped at exit. gateway_stop(dir)/gateway_start(dir) stop and
start only the radosgw daemon of a cluster (the objects, in the OSD's
memory, stay): an object-store outage.

A failed start is retried once; when it fails again its directory is
removed, unless US_RGW_KEEP=1 keeps it for the daemons' logs.
"""

import atexit
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid

try:
    from .procs import free_port, pid_alive, port_open
except ImportError:  # run as a script
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from us_testkit.procs import free_port, pid_alive, port_open

BINARIES = ("ceph-mon", "ceph-osd", "radosgw", "radosgw-admin", "ceph", "ceph-authtool", "monmaptool")
USER = "us-test"


def missing_binaries():
    """The Ceph programs not on PATH (empty when a cluster can be started)."""
    return [b for b in BINARIES if shutil.which(b) is None]


# memstore keeps objects in the OSD's memory: nothing written to disk but
# the monitor's store, and no block device to prepare (fastest start).
CONF = """[global]
fsid = {fsid}
mon host = v1:127.0.0.1:{mon_port}
ms bind msgr2 = false
auth cluster required = none
auth service required = none
auth client required = none
auth allow insecure global id reclaim = true
run dir = {dir}/run
admin socket = {dir}/run/$name.asok
log file = {dir}/log/$name.log
pid file = {dir}/run/$name.pid
keyring = {dir}/keyring
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
# a monitor proposes its map changes once a second by default: rgw's start
# creates and tags its pools one proposal at a time
paxos propose interval = 0.05
paxos min wait = 0.01
mon warn on pool no redundancy = false
mon max pg per osd = 1000
mon data avail warn = 1
mon data avail crit = 0
osd objectstore = memstore
memstore device bytes = {memstore_bytes}
osd memory target = 268435456
# At start-up an OSD sends its crush location and device class to the
# monitor; with auth none that command can leave before the monitor map has
# arrived, carrying a zero fsid, and the OSD exits ("wrong fsid"). The
# bootstrap places osd.0 itself instead.
osd crush update on start = false
osd class update on start = false
osd max object name len = 460
osd max object namespace len = 64

[mon.a]
mon data = {dir}/mon
public addr = 127.0.0.1:{mon_port}

[osd.0]
osd data = {dir}/osd
osd journal = {dir}/osd/journal

[client.rgw]
rgw frontends = beast endpoint=127.0.0.1:{port}
rgw dns name = 127.0.0.1
rgw data = {dir}/rgw
rgw thread pool size = 32
rgw enable usage log = false
"""


class RadosgwError(RuntimeError):
    pass


class Radosgw:
    """A private single-node Ceph cluster with radosgw under dir."""

    def __init__(self, dir, port=0, memstore_bytes=1 << 30, user=USER):
        self.dir = os.path.abspath(dir)
        self.port = port or free_port()
        self.mon_port = free_port()
        self.memstore_bytes = memstore_bytes
        self.user = user
        self.access_key = None
        self.secret_key = None
        self.startup_seconds = None

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def conf(self):
        return os.path.join(self.dir, "ceph.conf")

    def _run(self, *args, timeout=60):
        r = subprocess.run(list(args) + ["-c", self.conf], capture_output=True, text=True,
                           timeout=timeout)
        if r.returncode != 0:
            raise RadosgwError(f"{' '.join(args)}: exit {r.returncode}: {r.stderr.strip()[-2000:]}")
        return r.stdout

    def _spawn(self, name, *args):
        """Starts a daemon in the foreground of its own session; its pid goes
        to DIR/pids so that another process can stop the cluster."""
        log = open(os.path.join(self.dir, "log", f"{name}.out"), "ab")
        p = subprocess.Popen(list(args) + ["-f", "-c", self.conf], stdout=log,
                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             start_new_session=True)
        log.close()
        with open(os.path.join(self.dir, "pids"), "a") as f:
            f.write(f"{p.pid} {name}\n")
        return p

    def answers_http(self):
        """The gateway's port answers HTTP. An open port alone is not enough:
        another process (a test's PostgreSQL, started at the same moment)
        may hold the port free_port() gave both, radosgw then failing to
        bind it."""
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            c.request("GET", "/")
            return c.getresponse().status > 0
        except (OSError, http.client.HTTPException):
            return False
        finally:
            c.close()

    def _wait(self, what, check, timeout, procs=()):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            for p in procs:
                if p.poll() is not None:
                    raise RadosgwError(f"{what}: daemon exited ({p.returncode}); "
                                       f"see {self.dir}/log")
            time.sleep(0.1)
        raise RadosgwError(f"{what}: not within {timeout}s; see {self.dir}/log")

    def start(self, timeout=90, attempts=2):
        """Starts the cluster; on a failure, once more from scratch on new
        ports. Raises RadosgwError with the failing daemon's last log lines
        (dir removed) when no attempt worked."""
        t0 = time.monotonic()
        missing = missing_binaries()
        if missing:
            raise RadosgwError("not installed: " + " ".join(missing))
        for attempt in range(attempts):
            if attempt:
                self.port, self.mon_port = free_port(), free_port()
            try:
                self._start_once(timeout)
                break
            except (RadosgwError, subprocess.SubprocessError, OSError) as e:
                detail = f"{e}\n{log_tails(self.dir)}"
                self.stop(remove=not os.environ.get("US_RGW_KEEP"))
                if attempt + 1 == attempts:
                    raise RadosgwError(detail) from None
        self.startup_seconds = time.monotonic() - t0
        with open(os.path.join(self.dir, "endpoint.json"), "w") as f:
            json.dump(self.info(), f)
        return self

    def _start_once(self, timeout):
        for d in ("", "run", "log", "mon", "osd", "rgw"):
            os.makedirs(os.path.join(self.dir, d), exist_ok=True)
        fsid = str(uuid.uuid4())
        with open(self.conf, "w") as f:
            f.write(CONF.format(fsid=fsid, dir=self.dir, port=self.port,
                                mon_port=self.mon_port, memstore_bytes=self.memstore_bytes))
        try:
            self._bootstrap(fsid, timeout)
        except BaseException:
            self.stop(remove=False)
            raise

    def _bootstrap(self, fsid, timeout):
        d = self.dir
        monmap = os.path.join(d, "monmap")
        subprocess.run(["monmaptool", "--create", "--fsid", fsid, "--addv", "a",
                        f"[v1:127.0.0.1:{self.mon_port}]", monmap],
                       check=True, capture_output=True)
        # the monitor's mkfs wants a keyring with its own key, even with auth none
        subprocess.run(["ceph-authtool", "--create-keyring", os.path.join(d, "keyring"),
                        "--gen-key", "-n", "mon.", "--cap", "mon", "allow *"],
                       check=True, capture_output=True)
        self._run("ceph-mon", "--mkfs", "-i", "a", "--monmap", monmap)
        mon = self._spawn("mon.a", "ceph-mon", "-i", "a")
        self._wait("ceph-mon", lambda: port_open(self.mon_port), 30, [mon])

        osd_uuid = str(uuid.uuid4())
        osd_id = self._run("ceph", "osd", "new", osd_uuid).strip()
        if osd_id != "0":
            raise RadosgwError(f"ceph osd new gave id {osd_id!r}")
        self._run("ceph-osd", "-i", "0", "--mkfs", "--osd-uuid", osd_uuid)
        self._run("ceph", "osd", "crush", "add", "osd.0", "1.0", "host=localhost", "root=default")
        osd = self._spawn("osd.0", "ceph-osd", "-i", "0")

        def osd_up():
            try:
                return json.loads(self._run("ceph", "osd", "stat", "-f", "json")).get("num_up_osds") == 1
            except (RadosgwError, ValueError, subprocess.TimeoutExpired):
                return False
        self._wait("ceph-osd up", osd_up, 60, [mon, osd])

        rgw = self._spawn("client.rgw", "radosgw", "-n", "client.rgw")
        self._wait("radosgw", lambda: port_open(self.port) and self.answers_http(), timeout,
                   [mon, osd, rgw])
        if rgw.poll() is not None:  # the port answered, but not for it
            raise RadosgwError(f"radosgw: daemon exited ({rgw.returncode}); see {self.dir}/log")
        out = self._run("radosgw-admin", "user", "create", f"--uid={self.user}",
                        f"--display-name={self.user}", timeout=120)
        keys = json.loads(out)["keys"][0]
        self.access_key, self.secret_key = keys["access_key"], keys["secret_key"]

    def info(self):
        return {"endpoint": self.endpoint, "access_key": self.access_key,
                "secret_key": self.secret_key, "dir": self.dir}

    def pids(self):
        return read_pids(self.dir)

    def stop(self, remove=True):
        stop_dir(self.dir, remove=remove)


def shared_info():
    """{"endpoint", "access_key", "secret_key", "dir"} of the session's
    radosgw: the one US_RGW_INFO names, else one started now for this
    process (and US_RGW_INFO set to it). Raises RadosgwError when none
    can start."""
    path = os.environ.get("US_RGW_INFO")
    if not path:
        d = tempfile.mkdtemp(prefix="us-rgw-")
        r = Radosgw(d)
        r.start()
        atexit.register(r.stop)
        path = os.path.join(d, "endpoint.json")
        os.environ["US_RGW_INFO"] = path
    with open(path) as f:
        return json.load(f)


def _attached(dir):
    with open(os.path.join(dir, "endpoint.json")) as f:
        info = json.load(f)
    r = Radosgw(dir, int(info["endpoint"].rsplit(":", 1)[1]))
    r.access_key, r.secret_key = info["access_key"], info["secret_key"]
    return r


def gateway_stop(dir, timeout=15):
    """Stops the radosgw daemon of the cluster in dir (SIGKILL: an outage,
    not a clean shutdown); the monitor and the OSD keep running."""
    for pid, name in read_pids(dir):
        if name == "client.rgw" and pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + timeout
            while pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass


def gateway_start(dir, timeout=60):
    """Starts the radosgw daemon of the cluster in dir again, on its port;
    returns once it answers."""
    r = _attached(dir)
    p = r._spawn("client.rgw", "radosgw", "-n", "client.rgw")
    r._wait("radosgw", lambda: port_open(r.port) and r.answers_http(), timeout, [p])


def read_pids(dir):
    try:
        with open(os.path.join(dir, "pids")) as f:
            return [(int(line.split()[0]), line.split()[1]) for line in f if line.strip()]
    except OSError:
        return []


def stop_dir(dir, remove=True, timeout=15):
    """Stops the daemons a start in dir recorded, one after the other in
    the reverse order of their start (radosgw, the OSD, the monitor: a
    daemon whose monitor is gone waits seconds for it before it exits),
    and removes dir. Only the pids in dir/pids are signalled."""
    for pid, _name in reversed(read_pids(dir)):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
        deadline = time.monotonic() + timeout
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        if pid_alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
    if remove:
        shutil.rmtree(dir, ignore_errors=True)


def log_tails(dir, lines=8):
    """The last lines of each daemon's console log under dir."""
    out = []
    logdir = os.path.join(dir, "log")
    for name in sorted(os.listdir(logdir)) if os.path.isdir(logdir) else []:
        if name.endswith(".out"):
            with open(os.path.join(logdir, name), errors="replace") as f:
                tail = [x for x in f.read().splitlines() if x.strip()][-lines:]
            out.append(f"--- {name}\n" + "\n".join(tail))
    return "\n".join(out)


def usage_bytes(dir):
    """Disk bytes used under dir."""
    total = 0
    for root, _dirs, files in os.walk(dir):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_blocks * 512
            except OSError:
                pass
    return total


def rss_bytes(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


def main(argv):
    if len(argv) < 2 or argv[0] not in ("start", "stop", "stats"):
        print("usage: radosgw.py start DIR [PORT] | stop DIR | stats DIR", file=sys.stderr)
        return 2
    cmd, dir = argv[0], argv[1]
    if cmd == "stop":
        stop_dir(dir)
        return 0
    if cmd == "stats":
        pids = read_pids(dir)
        print(json.dumps({"rss_bytes": {n: rss_bytes([p]) for p, n in pids},
                          "rss_total_bytes": rss_bytes([p for p, _ in pids]),
                          "disk_bytes": usage_bytes(dir)}))
        return 0
    rgw = Radosgw(dir, int(argv[2]) if len(argv) > 2 else 0)
    try:
        rgw.start()
    except RadosgwError as e:
        print(f"radosgw: {e}", file=sys.stderr)
        return 1
    info = rgw.info()
    info["startup_seconds"] = round(rgw.startup_seconds, 1)
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

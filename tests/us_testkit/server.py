"""The server harness: a real httpd (event MPM) per UploadServer object, in
a directory of its own, with a generated configuration and API key file,
started, restarted and stopped through apache2 -k, its error log checked.
The integration tests use it as it is; the benchmarks and the load test
pass their own modules, MPM settings and users (see UploadServer).

Only the standard library, pytest and httpx are used (Debian's python3-pytest
and python3-httpx); run with /usr/bin/python3.

Environment knobs (for debugging the harness itself):
  US_IT_MODULE   path of the module .so (default: <repo>/build/mod_upload_session.so)
  US_IT_APACHE   httpd binary (default: /usr/sbin/apache2)
  US_IT_KEEP=1   keep the server directories under /tmp after the run
  US_IT_STORE=pgsql  the store of every server: a database of its own on a
                 private PostgreSQL (us_testkit/pg.py) instead of SQLite
  US_IT_STORAGE  s3: files in the session's private radosgw (us_testkit.radosgw,
                 shared_info), one key prefix per server; default posix
  US_IT_PRELOAD  libraries httpd is started with (LD_PRELOAD), for a module
                 built with sanitizers (`make test SANITIZE=1` and `make tsan`
                 set it); their reports go to <server dir>/sanitizer/ and
                 fail the test
"""

import contextlib
import hashlib
import os
import re
import secrets
import shutil
import signal
import ssl
import subprocess
import tempfile
import time
import uuid

import httpx
import pytest

from . import pg
from .procs import (children_of, children_settled, free_port, pid_alive, port_open,
                    stuck_report, wait_for)

# what add_webhooks signs with unless told otherwise
WEBHOOK_SECRET = "webhook-test-secret-0123456789"

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODULE_SO = os.environ.get(
    "US_IT_MODULE", os.path.join(REPO_ROOT, "build", "mod_upload_session.so"))
APACHE = os.environ.get("US_IT_APACHE", "/usr/sbin/apache2")
APACHE_MODULES = "/usr/lib/apache2/modules"
STORAGE = os.environ.get("US_IT_STORAGE", "posix")
S3_BUCKET = "us-it"

# An error-log line at one of these levels fails the test unless declared.
ERROR_LINE_RE = re.compile(r"\[(\w+:)?(error|crit|alert|emerg)\]")
# A crashed child is logged by the parent at notice level only
# ("AH00052: child pid N exit signal Segmentation fault (11)"): fail on it too.
CRASH_LINE_RE = re.compile(r"AH00052|exit signal|dumped core")
# httpd's stop waits 3 s for its children, then sends SIGTERM (again at 5 and
# 7 s) and at 13 s SIGKILL, logged as an error. A child still there after the
# third SIGTERM is stuck: the stop records what it is doing, before the
# SIGKILL (gdb pauses each child it reads, so not earlier, when a child that
# is merely slow could be pushed past the deadline).
STOP_PATIENCE = 8
# Logged by the MPM after every (re)start once the children are running.
RESUMING_RE = re.compile(r"resuming normal operations")

# Debian's stock mods-available/reqtimeout.conf, which production keeps in
# front of the module (README "Production"); every test server loads it.
DEBIAN_REQUEST_READ_TIMEOUT = ("header=20-40,minrate=500", "body=10,minrate=500")

# One TLS context for every client: httpx builds a new one (~35 ms) per Client
# otherwise. Only plain http is used, so it is never exercised.
SSL_CTX = ssl.create_default_context()


def new_client(**kwargs):
    """httpx.Client sharing SSL_CTX (use it for ad-hoc clients, e.g. threads)."""
    kwargs.setdefault("verify", SSL_CTX)
    kwargs.setdefault("timeout", 30)
    return httpx.Client(**kwargs)


# --------------------------------------------------------------------------
# users / keys
# --------------------------------------------------------------------------

class User:
    def __init__(self, given_name, family_name, grants, key=None):
        self.key = key or secrets.token_urlsafe(32)
        self.user_id = str(uuid.uuid4())
        self.given_name = given_name
        self.family_name = family_name
        self.grants = grants  # "*" or a list of workspace names

    @property
    def created_by(self):
        return {"user_id": self.user_id, "given_name": self.given_name,
                "family_name": self.family_name}

    @property
    def headers(self):
        return {"Authorization": f"Bearer {self.key}"}

    def key_line(self):
        grants = self.grants if isinstance(self.grants, str) else ",".join(self.grants)
        digest = hashlib.sha256(self.key.encode()).hexdigest()
        return f"{digest}:{self.user_id}:{self.given_name}:{self.family_name}:{grants}"


# --------------------------------------------------------------------------
# the server
# --------------------------------------------------------------------------

class UploadServer:
    """One httpd instance in its own directory (under /tmp by default).

    s = UploadServer(max_open=10, max_lifetime=86400, extra=["Directive value"])
    s.start(); s.client(s.user_all).get("ws/upload_sessions"); s.stop()

    request_read_timeout: RequestReadTimeout arguments, Debian's by default;
    None leaves mod_reqtimeout out. modules: more (name, file) pairs to load
    from Debian's module directory. default_users=False: no users but the
    ones add_user() adds. A failure raises what fail() raises: pytest's
    failure here, a plain exception in a subclass outside pytest.
    """

    def __init__(self, max_open=10, max_lifetime=86400, extra=(), overrides=None,
                 omit=(), module=None, request_read_timeout=DEBIAN_REQUEST_READ_TIMEOUT,
                 apache=None, modules=(), log_level="info", default_users=True,
                 dir_prefix="us-it-", parent_dir="/tmp", ctl_timeout=30, store=None,
                 storage=None):
        self.dir = tempfile.mkdtemp(prefix=dir_prefix, dir=parent_dir)
        os.chmod(self.dir, 0o755)
        self.env = {}  # set in httpd's environment, over the test's own
        os.makedirs(os.path.join(self.dir, "htdocs"), exist_ok=True)
        os.chmod(os.path.join(self.dir, "htdocs"), 0o755)
        self.port = free_port()
        self.module = module or MODULE_SO
        self.apache = apache or APACHE
        self.modules = list(modules)
        self.log_level = log_level
        self.ctl_timeout = ctl_timeout
        self.conf_path = os.path.join(self.dir, "httpd.conf")
        self.error_log = os.path.join(self.dir, "error.log")
        self.pid_file = os.path.join(self.dir, "httpd.pid")
        self.key_file = os.path.join(self.dir, "keys")
        self.public_url = f"http://127.0.0.1:{self.port}"
        self.api_base = f"{self.public_url}/api/v1/workspaces/"
        # "sqlite3" or "pgsql" (default: $US_IT_STORE); on pgsql a new database
        self.store = store or pg.store_driver()
        self.pg_db = self.pg_conninfo = None
        if self.store == "pgsql":
            self.pg_db, self.pg_conninfo = pg.cluster().create_database()
        self.max_open = max_open
        self.max_lifetime = max_lifetime
        self.extra = list(extra)
        self._restarted_at = float("-inf")  # the last graceful restart (time.monotonic)
        self.overrides = dict(overrides or {})
        self.omit = set(omit)
        # RequestReadTimeout arguments; None: mod_reqtimeout is not loaded
        self.request_read_timeout = request_read_timeout
        self.storage = storage or STORAGE  # posix, or s3 (US_IT_STORAGE)
        self.s3_prefix = None        # the key prefix with s3 storage
        self.running = False
        self.pid = None
        self._clients = []
        # error-log bookkeeping
        self._checked_offset = 0
        self._expected = []          # patterns valid for the whole server life
        self._test_expected = []     # patterns valid until the next check_log()

        self.users = []
        if default_users:
            # a '*' user, a second '*' user and a user granted ws-a only
            self.user_all = self.add_user("Ada", "Lovelace", "*")
            self.user_all2 = self.add_user("Grace", "Hopper", "*")
            self.user_a = self.add_user("Alan", "Turing", ["ws-a"])
        self.write_config()

    # --- convenience accessors ----------------------------------------------
    @property
    def key_all(self):
        return self.user_all.key

    @property
    def key_all2(self):
        return self.user_all2.key

    @property
    def key_a(self):
        return self.user_a.key

    # --- files ----------------------------------------------------------------
    def add_user(self, given_name, family_name, grants, key=None):
        """Add a user (and write the key file). A running server's children
        see it within US_KEYFILE_CHECK_INTERVAL (2 s)."""
        u = User(given_name, family_name, grants, key=key)
        self.users.append(u)
        self.write_keys()
        return u

    def write_keys(self, extra_lines=()):
        lines = ["# generated by tests/us_testkit/server.py", ""]
        lines += [u.key_line() for u in self.users]
        lines += list(extra_lines)
        # a new file renamed over the old one, as an editor or us-keygen
        # does: a running server re-reading it never sees half of it
        tmp = self.key_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, self.key_file)

    def directives(self):
        d = self.dir
        items = [
            ("UploadSession", "On"),
            ("UploadSessionStore", f'pgsql "{self.pg_conninfo}"' if self.store == "pgsql"
             else f'sqlite3 "{d}/state/store.db"'),
            ("UploadSessionKeyFile", f'"{self.key_file}"'),
            ("UploadSessionPublicURL", self.public_url),
            ("UploadSessionDataDir", f'"{d}/state/data"'),
            ("UploadSessionStorage", "posix"),
        ]
        if self.store == "pgsql":
            # beside an SQLite store by default; a server store needs it named
            # closed to others and the children's, as the module makes an
            # SQLite store's directory
            os.makedirs(f"{d}/state", mode=0o700, exist_ok=True)
            if os.geteuid() == 0:
                import pwd
                www = pwd.getpwnam("www-data")
                os.chown(f"{d}/state", www.pw_uid, www.pw_gid)
            items.append(("UploadSessionSecretFile", f'"{d}/state/upload_session.secret"'))
        if self.storage == "s3":
            items += self.s3_directives()
        if self.max_open is not None:
            items.append(("UploadSessionMaxOpenSessions", str(self.max_open)))
        if self.max_lifetime is not None:
            items.append(("UploadSessionMaxLifetime", str(self.max_lifetime)))
        out = []
        for name, value in items:
            if name in self.omit:
                continue
            out.append(f"{name} {self.overrides.get(name, value)}")
        return out

    def s3_directives(self):
        """UploadSessionStorage s3 on the session's radosgw: bucket S3_BUCKET,
        the server's own prefix (its directory's name), keys in a file."""
        from .radosgw import shared_info
        info = shared_info()
        creds = os.path.join(self.dir, "s3-credentials")
        with open(creds, "w") as f:
            f.write(f"[default]\naws_access_key_id = {info['access_key']}\n"
                    f"aws_secret_access_key = {info['secret_key']}\n")
        os.chmod(creds, 0o600)
        self.s3_endpoint = info["endpoint"]
        self.s3_prefix = os.path.basename(self.dir)
        return [("UploadSessionStorage", f"s3 {info['endpoint']} {S3_BUCKET}"),
                ("UploadSessionS3CredentialsFile", f'"{creds}"'),
                ("UploadSessionS3Prefix", self.s3_prefix)]

    def write_config(self):
        d = self.dir
        lines = [
            f'ServerRoot "{d}"',
            "ServerName 127.0.0.1",
            f"Listen 127.0.0.1:{self.port}",
            f'PidFile "{d}/httpd.pid"',
            f'ErrorLog "{d}/error.log"',
            f"LogLevel {self.log_level}",
            f"LoadModule mpm_event_module {APACHE_MODULES}/mod_mpm_event.so",
            f"LoadModule authz_core_module {APACHE_MODULES}/mod_authz_core.so",
        ]
        lines += [f"LoadModule {name} {APACHE_MODULES}/{file}" for name, file in self.modules]
        lines.append(f"LoadModule upload_session_module {self.module}")
        if self.request_read_timeout is not None:
            lines.append(f"LoadModule reqtimeout_module {APACHE_MODULES}/mod_reqtimeout.so")
            lines += [f"RequestReadTimeout {arg}" for arg in self.request_read_timeout]
        if os.geteuid() == 0:
            lines += ["User www-data", "Group www-data"]
        lines.append(f'DocumentRoot "{d}/htdocs"')
        lines += self.directives()
        lines += self.extra
        with open(self.conf_path, "w") as f:
            f.write("\n".join(lines) + "\n")

    # --- httpd control ----------------------------------------------------------
    def _env(self):
        env = dict(os.environ)
        env.update(self.env)
        preload = os.environ.get("US_IT_PRELOAD")
        if preload:
            # leaks are not checked: httpd frees its pools by exiting.
            # The children run as www-data when we are root: the reports'
            # directory must take their files too, or a child's report
            # cannot be written and the sanitizer ends the child silently
            os.makedirs(self.sanitizer_dir, exist_ok=True)
            os.chmod(self.sanitizer_dir, 0o1777)
            report = os.path.join(self.sanitizer_dir, "report")
            env["LD_PRELOAD"] = preload
            # use_sigaltstack=0: GCC 12's libasan misreports its own
            # sigaltstack call when a thread exits (glibc 2.36)
            # allow_user_segv_handler=0: httpd's own crash handler would
            # replace ASan's, whose report gives the stack (the parent then
            # logs only "exit signal Segmentation fault", AH00052)
            env["ASAN_OPTIONS"] = (f"detect_leaks=0:use_sigaltstack=0:log_path={report}"
                                   ":abort_on_error=0:allow_user_segv_handler=0")
            env["UBSAN_OPTIONS"] = f"print_stacktrace=1:log_path={report}"
            # ThreadSanitizer (`make tsan`): the Makefile's options, the
            # reports beside the others
            tsan = os.environ.get("TSAN_OPTIONS")
            env["TSAN_OPTIONS"] = (f"{tsan}:" if tsan else "") + f"log_path={report}"
        return env

    @property
    def sanitizer_dir(self):
        return os.path.join(self.dir, "sanitizer")

    def sanitizer_reports(self):
        """Sanitizer reports written since the last check."""
        out = []
        if not os.path.isdir(self.sanitizer_dir):
            return out
        seen = self.__dict__.setdefault("_seen_reports", set())
        for name in sorted(os.listdir(self.sanitizer_dir)):
            if name not in seen:
                seen.add(name)
                with open(os.path.join(self.sanitizer_dir, name), errors="replace") as f:
                    out.append(f"sanitizer/{name}:\n{f.read()}")
        return out

    def _ctl(self, *args, timeout=None):
        timeout = self.ctl_timeout if timeout is None else timeout
        return subprocess.run([self.apache, "-d", self.dir, "-f", self.conf_path, *args],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, timeout=timeout, env=self._env())

    def add_webhooks(self, urls, secret=WEBHOOK_SECRET):
        """Before start: UploadSessionWebhook for each of urls, signed with
        secret (a file of its own, mode 0600, in the server's directory)."""
        path = os.path.join(self.dir, "webhook.secret")
        with open(path, "w") as f:
            f.write(secret + "\n")
        os.chmod(path, 0o600)
        self.extra += [f"UploadSessionWebhook {u}" for u in urls]
        self.extra.append(f'UploadSessionWebhookSecretFile "{path}"')
        return path

    def restart_timing_old_children(self, timeout):
        """`apachectl -k restart`; the seconds until every child it had
        before has exited (asserted to be within timeout)."""
        old = children_of(self.pid)
        t0 = time.monotonic()
        proc = self._ctl("-k", "restart")
        assert proc.returncode == 0, proc.stderr
        assert wait_for(lambda: not any(pid_alive(k) for k in old), timeout), \
            f"the old children were not gone within {timeout} s"
        return time.monotonic() - t0

    def configtest(self):
        """Run `apache2 -t`; returns the CompletedProcess (output in .stdout/.stderr).
        configtest(server) returns its code and output together."""
        return self._ctl("-t")

    def log_text(self):
        try:
            with open(self.error_log, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def log_tail(self, n=60):
        if not os.path.isdir(self.dir) and getattr(self, "_final_log", None) is not None:
            text = self._final_log
        else:
            text = self.log_text()
        return "\n".join(text.splitlines()[-n:])

    def _fail(self, msg, proc=None):
        out = ""
        if proc is not None:
            out = f"\nexit={proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        self.fail(f"{msg} (dir {self.dir}){out}\n--- error.log tail ---\n{self.log_tail()}")

    def fail(self, msg):
        pytest.fail(msg, pytrace=False)

    def _read_pid(self):
        try:
            with open(self.pid_file) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def start(self, timeout=10):
        if not os.path.exists(self.module):
            self.fail(f"module not built: {self.module} (run `make all` in {REPO_ROOT})")
        self.write_config()
        proc = self._ctl("-k", "start")
        if proc.returncode != 0:
            self._fail("apache2 -k start failed", proc)
        self.running = True
        died = []

        def up():
            pid = self._read_pid()
            if pid is not None and not pid_alive(pid):
                died.append(pid)
                return True
            return pid is not None and port_open(self.port)

        ok = wait_for(up, timeout)
        if died:
            self.running = False
            self._fail(f"httpd (pid {died[0]}) exited right after start", proc)
        if not ok:
            self.pid = self._read_pid()
            self.stop(check=False)
            self._fail(f"httpd did not accept connections on port {self.port} "
                       f"within {timeout}s", proc)
        self.pid = self._read_pid()
        if not pid_alive(self.pid):
            self._fail("httpd parent died right after start", proc)
        return self

    def _resuming_count(self):
        return len(RESUMING_RE.findall(self.log_text()))

    def graceful(self, timeout=15):
        """apache2 -k graceful, then wait until the new generation of children
        runs (the MPM logs 'resuming normal operations' again)."""
        assert self.running
        before = self._resuming_count()
        proc = self._ctl("-k", "graceful")
        if proc.returncode != 0:
            self._fail("apache2 -k graceful failed", proc)
        if not wait_for(lambda: self._resuming_count() > before, timeout):
            self._fail("graceful restart did not complete", proc)
        if not wait_for(lambda: port_open(self.port), timeout):
            self._fail("server not accepting connections after graceful", proc)
        newpid = self._read_pid()
        assert newpid == self.pid, "graceful restart changed the parent pid"
        self._restarted_at = time.monotonic()
        return self

    def stop(self, timeout=20, check=True):
        if not self.running:
            return
        self.close_clients()
        pid = self.pid or self._read_pid()
        if pid is not None and time.monotonic() - self._restarted_at < 5:
            wait_for(lambda: children_settled(pid), 5)
        proc = self._ctl("-k", "stop")
        self.running = False
        if pid is None:
            if check and proc.returncode != 0:
                self._fail("apache2 -k stop failed", proc)
            return
        gone = lambda: not pid_alive(pid)
        if not wait_for(gone, min(STOP_PATIENCE, timeout), interval=0.05):
            # a child that outlives this is one httpd will log and SIGKILL:
            # record what it is doing, for the failure that follows
            self._stop_report = "\n".join(stuck_report(c) for c in children_of(pid))
        if not wait_for(gone, max(0, timeout - STOP_PATIENCE), interval=0.05):
            # last resort: kill the process group of the httpd we started
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass
            wait_for(lambda: not pid_alive(pid), 5)
            if check:
                self._fail(f"httpd (pid {pid}) did not stop within {timeout}s", proc)
        # the children are gone when the parent is (it waits for them), but
        # make sure nothing keeps the port
        wait_for(lambda: not port_open(self.port), 5)
        self.pid = None

    def restart(self):
        """Full stop + start on the same directory and port."""
        self.stop()
        return self.start()

    def cleanup(self):
        self.close_clients()
        if self.running:
            self.stop(check=False)
        self._final_log = self.log_text()
        if os.environ.get("US_IT_KEEP") != "1":
            shutil.rmtree(self.dir, ignore_errors=True)
            if self.pg_db:
                pg.cluster().drop_database(self.pg_db)
                self.pg_db = None

    # --- clients ----------------------------------------------------------------
    def client(self, user=None, headers=None, timeout=30):
        """httpx client on the API base (.../api/v1/workspaces/); user may be a
        User, a raw key string, or None (no Authorization header)."""
        h = {}
        if isinstance(user, User):
            h.update(user.headers)
        elif isinstance(user, str):
            h["Authorization"] = f"Bearer {user}"
        if headers:
            h.update(headers)
        c = new_client(base_url=self.api_base, headers=h, timeout=timeout)
        self._clients.append(c)
        return c

    def raw_client(self, timeout=30):
        c = new_client(base_url=self.public_url, timeout=timeout)
        self._clients.append(c)
        return c

    def close_clients(self):
        for c in self._clients:
            try:
                c.close()
            except Exception:
                pass
        self._clients = []

    # --- error log guard ----------------------------------------------------------
    def expect_log(self, pattern, whole_life=False):
        """Declare an error-log line pattern (regex) as expected: for the
        current test (default) or for the whole life of this server."""
        (self._expected if whole_life else self._test_expected).append(re.compile(pattern))

    def unexpected_errors(self):
        """Unexpected error-level (or child-crash) lines written since the last
        check."""
        text = self.log_text()
        new = text[self._checked_offset:] if len(text) >= self._checked_offset else text
        self._checked_offset = len(text)
        pats = self._expected + self._test_expected
        bad = []
        for line in new.splitlines():
            if (ERROR_LINE_RE.search(line) or CRASH_LINE_RE.search(line)) \
                    and not any(p.search(line) for p in pats):
                bad.append(line)
        return bad

    def check_log(self, when=""):
        bad = self.unexpected_errors() + self.sanitizer_reports()
        self._test_expected = []
        if bad:
            report = self.__dict__.pop("_stop_report", None)
            self.fail(f"unexpected error-level lines in {self.error_log}{when}:\n"
                      + "\n".join(bad) + "\n--- error.log tail ---\n" + self.log_tail()
                      + (f"\n--- children still running {STOP_PATIENCE} s after the stop ---\n"
                         f"{report}" if report else ""))


@contextlib.contextmanager
def started(server):
    """server running for the with block; stopped after it, its error log
    checked through the shutdown, its directory removed in any case."""
    try:
        server.start()
        yield server
        server.stop()
        server.check_log(" (at shutdown)")
    finally:
        server.cleanup()


def configtest_conf(root, conf, apache=APACHE, env=None, timeout=60):
    """`apache2 -d root -f conf -t`: (returncode, stdout + stderr)."""
    proc = subprocess.run([apache, "-d", str(root), "-f", str(conf), "-t"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=timeout, env=env)
    return proc.returncode, (proc.stdout or "") + (proc.stderr or "")


def configtest(server):
    """`apache2 -t` on server's generated configuration (write_config), in
    its environment (a sanitizer build's preload): (returncode, output)."""
    proc = server.configtest()
    return proc.returncode, (proc.stdout or "") + (proc.stderr or "")

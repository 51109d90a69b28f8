"""Startup checks as httpd's User (issue #15 item 8): every directory the
children write is checked at startup by a process that has become the User
(www-data here), so a parent it cannot search counts too; such a directory
is a startup error naming it, the user and the parent. `make run` as root
from a checkout under a 0700 directory refuses at once with the reason and
the fix. These run only as root (User is ignored otherwise)."""

import os
import shutil
import subprocess
import tempfile
import time

import pytest

from us_testkit.api import check, unique_ws
from us_testkit.procs import free_port
from us_testkit.server import ERROR_LINE_RE, REPO_ROOT

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: httpd's User")


@pytest.fixture
def private_parent():
    """A root-owned 0700 directory, as /root is."""
    d = tempfile.mkdtemp(prefix="us-it-private-", dir="/tmp")
    os.chmod(d, 0o700)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def start_fails(s):
    """Starts s, which must refuse; returns what it said. A check_config
    error ends `-k start` itself (exit status 1); `-k start` detaches before
    the module's post_config runs: its error is in error.log."""
    s.write_config()
    proc = s._ctl("-k", "start")
    deadline = time.monotonic() + 15
    while (proc.returncode == 0 and "Configuration Failed" not in s.log_text() and
           time.monotonic() < deadline):
        time.sleep(0.1)
    out = (proc.stdout or "") + (proc.stderr or "") + s.log_text()
    assert proc.returncode != 0 or "Configuration Failed" in out, out
    time.sleep(0.5)
    pid = s._read_pid()
    assert pid is None or not os.path.exists(f"/proc/{pid}"), out
    return out


def test_parent_the_user_cannot_search_is_a_startup_error(private_parent, server_factory):
    s = server_factory(start=False, parent_dir=private_parent)
    out = start_fails(s)
    want = (f"UploadSessionStore: httpd's User www-data cannot reach directory "
            f"{s.dir}/state: it cannot search {private_parent} (Permission denied; "
            f"e.g. chmod o+x {private_parent}, or move the directory)")
    assert want in out, out
    assert "US0002" in out, out
    s.expect_log(r"US0002: mod_upload_session: UploadSessionStore: httpd's User www-data "
                 r"cannot reach", whole_life=True)

    # the fix it names works
    os.chmod(private_parent, 0o711)
    s.start()
    check(s.client(s.user_all).get(unique_ws("fixed") + "/upload_sessions"), 200,
          {"data": [], "has_more": False, "total": 0})


def test_root_owned_files_directory_is_a_startup_error(server_factory):
    s = server_factory(start=False)
    files = os.path.join(s.dir, "state", "data", "files")
    os.makedirs(files, mode=0o755)
    # the store's and the data directory the User's, files/ root's, as a
    # `sudo mkdir` leaves it
    for d in (os.path.dirname(os.path.dirname(files)), os.path.dirname(files)):
        os.chown(d, 33, 33)
    os.chmod(files, 0o755)
    out = start_fails(s)
    want = (f"UploadSessionDataDir: httpd's User www-data cannot write to directory "
            f"{files} (Permission denied; chown it to that user or make it writable for it)")
    assert want in out, out
    # found before anything is made, by `apache2 -t` too
    assert "US0001: " in out, out

    os.chown(files, 33, 33)
    s.start()
    r = s.client(s.user_all).post(unique_ws("files") + "/files",
                                  files={"file": ("a.txt", b"hello")})
    assert r.status_code == 201, r.text


def test_key_file_the_user_cannot_read_is_a_warning(server_factory):
    s = server_factory(start=False)
    os.chmod(s.key_file, 0o600)
    s.write_keys = _keep_mode(s.write_keys, s.key_file)
    s.start()
    assert "US0022: UploadSessionKeyFile " + s.key_file + " cannot be read by httpd's User " \
        "www-data: changes to it take effect only at a restart" in s.log_text(), s.log_tail()
    ws = unique_ws("ro")
    check(s.client(s.user_all).get(ws + "/upload_sessions"), 200)
    # re-reading is off: a new key waits for a restart, and no error is logged meanwhile
    new = s.add_user("Not", "Yet", "*")
    time.sleep(3)
    for _ in range(5):
        check(s.client(new).get(ws + "/upload_sessions"), 401)
    s.graceful()
    check(s.client(new).get(ws + "/upload_sessions"), 200)


def _keep_mode(write_keys, path):
    def write(*a, **kw):
        write_keys(*a, **kw)
        os.chmod(path, 0o600)
    return write


def test_make_run_as_root_under_a_private_directory_refuses(private_parent):
    top = os.path.join(private_parent, "checkout")
    os.makedirs(os.path.join(top, "scripts"))
    os.chmod(top, 0o755)
    shutil.copy2(os.path.join(REPO_ROOT, "scripts", "run-httpd.sh"),
                 os.path.join(top, "scripts", "run-httpd.sh"))
    os.symlink(os.path.join(REPO_ROOT, "build"), os.path.join(top, "build"))
    port = free_port()
    t0 = time.monotonic()
    p = subprocess.run(["bash", os.path.join(top, "scripts", "run-httpd.sh"), "start", str(port)],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60)
    took = time.monotonic() - t0
    assert p.returncode == 1, p.stdout
    assert f"www-data, which cannot reach {top}/run" in p.stdout, p.stdout
    assert f"it cannot search {private_parent} (drwx------ root:root)" in p.stdout, p.stdout
    assert f"chmod o+x {private_parent}" in p.stdout, p.stdout
    assert "mod_upload_session is serving" not in p.stdout, p.stdout
    assert took < 10, took
    assert not os.path.exists(os.path.join(top, "run", "httpd.pid"))

    # with the fix it names, it serves
    os.chmod(private_parent, 0o711)
    try:
        p = subprocess.run(["bash", os.path.join(top, "scripts", "run-httpd.sh"), "start",
                            str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=60)
        assert p.returncode == 0, p.stdout
        env = dict(ln.strip().split("=", 1) for ln in open(os.path.join(top, "run", "env"))
                   if "=" in ln)
        import httpx
        r = httpx.get(f"{env['API_URL']}/workspaces/default/upload_sessions",
                      headers={"Authorization": f"Bearer {env['API_KEY']}"}, timeout=30)
        check(r, 200, {"data": [], "has_more": False, "total": 0})
    finally:
        subprocess.run(["bash", os.path.join(top, "scripts", "run-httpd.sh"), "stop", str(port)],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    with open(os.path.join(top, "run", "error.log"), errors="replace") as f:
        errors = [ln for ln in f if ERROR_LINE_RE.search(ln)]
    assert not errors, errors

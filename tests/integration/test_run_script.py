"""scripts/run-httpd.sh (`make start` / `make stop`), run from a scratch copy
of the tree (its scripts/ and a link to build/), so the developer's ./run/
is never touched."""

import json
import os
import re
import shutil
import stat
import subprocess
import tempfile

import httpx
import pytest

from us_testkit.procs import free_port
from us_testkit.server import ERROR_LINE_RE, REPO_ROOT


@pytest.fixture
def script_tree():
    top = tempfile.mkdtemp(prefix="us-it-script-", dir="/tmp")
    os.chmod(top, 0o755)
    os.makedirs(os.path.join(top, "scripts"))
    for name in ("run-httpd.sh", "radosgw-local.sh"):
        shutil.copy2(os.path.join(REPO_ROOT, "scripts", name), os.path.join(top, "scripts", name))
    os.symlink(os.path.join(REPO_ROOT, "build"), os.path.join(top, "build"))
    os.symlink(os.path.join(REPO_ROOT, "tests"), os.path.join(top, "tests"))
    port = free_port()
    started = []

    def run(mode, **env):
        p = subprocess.run(["bash", os.path.join(top, "scripts", "run-httpd.sh"), mode,
                            str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=180, env=dict(os.environ, **env))
        assert p.returncode == 0, f"run-httpd.sh {mode}: exit {p.returncode}\n{p.stdout}"
        if mode == "start":
            started.append(True)
        return p.stdout

    try:
        yield top, port, run
    finally:
        if started:
            subprocess.run(["bash", os.path.join(top, "scripts", "run-httpd.sh"), "stop",
                            str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=60)
        log = os.path.join(top, "run", "error.log")
        errors = []
        if os.path.exists(log):
            with open(log, errors="replace") as f:
                errors = [ln for ln in f if ERROR_LINE_RE.search(ln)]
        shutil.rmtree(top, ignore_errors=True)
        assert not errors, "error-level lines in run/error.log:\n" + "".join(errors)


def read_env(top):
    with open(os.path.join(top, "run", "env")) as f:
        return dict(line.strip().split("=", 1) for line in f if "=" in line)


def mode_of(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def check_key_file(run_dir):
    """run/keys (hashes only): the owner's alone, but as root readable by
    group www-data, whose children re-read it when it changes."""
    path = os.path.join(run_dir, "keys")
    if os.geteuid() == 0:
        import grp
        assert mode_of(path) == 0o640, oct(mode_of(path))
        assert os.stat(path).st_gid == grp.getgrnam("www-data").gr_gid
    else:
        assert mode_of(path) == 0o600, oct(mode_of(path))


def list_sessions_with(env):
    r = httpx.get(f"{env['API_URL']}/workspaces/{env['DEFAULT_WORKSPACE_NAME']}"
                  "/upload_sessions", headers={"Authorization": f"Bearer {env['API_KEY']}"},
                  timeout=30)
    assert r.status_code == 200, (r.status_code, r.text)
    assert r.headers["content-type"] == "application/json", r.headers
    return r.json()


def test_env_files_holding_the_key_are_owner_only(script_tree):
    """run/env and run/env.key carry the developer's all-workspaces key:
    0600, on the first start and when an earlier run left them 0644; the
    key file of hashes still works (and, as root, is readable by the
    children's group www-data)."""
    top, port, run = script_tree
    run_dir = os.path.join(top, "run")
    out = run("start")
    assert f"http://127.0.0.1:{port}/api/v1" in out, out
    for name in ("env", "env.key"):
        assert mode_of(os.path.join(run_dir, name)) == 0o600, (name, oct(mode_of(
            os.path.join(run_dir, name))))
    check_key_file(run_dir)
    env = read_env(top)
    with open(os.path.join(run_dir, "env.key")) as f:
        assert f.read().strip() == env["API_KEY"]
    assert env["API_URL"] == f"http://127.0.0.1:{port}/api/v1"
    assert list_sessions_with(env) == {"data": [], "has_more": False, "total": 0}

    # files an earlier version of the script left readable by everyone
    run("stop")
    for name in ("env", "env.key"):
        os.chmod(os.path.join(run_dir, name), 0o644)
    run("start")
    for name in ("env", "env.key"):
        assert mode_of(os.path.join(run_dir, name)) == 0o600, name
    assert read_env(top) == env
    assert list_sessions_with(env) == {"data": [], "has_more": False, "total": 0}

    # env.key left behind without a key file: a new key, still owner only
    run("stop")
    os.unlink(os.path.join(run_dir, "keys"))
    os.chmod(os.path.join(run_dir, "env.key"), 0o644)
    run("start")
    new = read_env(top)
    assert new["API_KEY"] != env["API_KEY"]
    for name in ("env", "env.key"):
        assert mode_of(os.path.join(run_dir, name)) == 0o600, name
    check_key_file(run_dir)
    assert list_sessions_with(new) == {"data": [], "has_more": False, "total": 0}
    # the run directory itself stays traversable for httpd's children
    assert mode_of(run_dir) == 0o755
    with open(os.path.join(run_dir, "httpd.conf")) as f:
        assert re.search(r'^UploadSessionKeyFile "?' + re.escape(os.path.join(run_dir, "keys")),
                         f.read(), re.M)


def test_generated_config_loads_reqtimeout(script_tree):
    """The generated configuration keeps slow clients from holding workers:
    mod_reqtimeout with Debian's stock RequestReadTimeout."""
    top, port, run = script_tree
    run("start")
    conf = os.path.join(top, "run", "httpd.conf")
    with open(conf) as f:
        lines = [ln.strip() for ln in f]
    assert "LoadModule reqtimeout_module /usr/lib/apache2/modules/mod_reqtimeout.so" in lines
    assert [ln for ln in lines if ln.startswith("RequestReadTimeout")] == \
        ["RequestReadTimeout header=20-40,minrate=500", "RequestReadTimeout body=10,minrate=500"]
    p = subprocess.run(["/usr/sbin/apache2", "-d", os.path.join(top, "run"), "-f", conf, "-M"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=30)
    assert p.returncode == 0 and "reqtimeout_module (shared)" in p.stdout, p.stdout
    assert list_sessions_with(read_env(top)) == {"data": [], "has_more": False, "total": 0}


def file_names(ws, auth):
    r = httpx.get(f"{ws}/files", headers=auth, params={"limit": 100}, timeout=30)
    assert r.status_code == 200, r.text
    return [f["name"] for f in r.json()["data"]]


def test_storage_s3_starts_a_radosgw_under_run(script_tree):
    """STORAGE=s3 (`make start STORAGE=s3`): a radosgw under run/rgw, the
    module on s3 storage in its bucket "uploads"; a second start reuses it,
    stop stops it."""
    from us_testkit.radosgw import missing_binaries
    if missing_binaries():
        pytest.fail(f"Ceph is not installed: {missing_binaries()}")
    top, port, run = script_tree
    run_dir = os.path.join(top, "run")
    run("start")  # posix first: its store stays its own
    env = read_env(top)
    ws = f"{env['API_URL']}/workspaces/default"
    auth = {"Authorization": f"Bearer {env['API_KEY']}"}
    r = httpx.post(f"{ws}/files", headers=auth, files={"file": ("p.txt", b"on disk")}, timeout=30)
    assert r.status_code == 201, r.text
    posix_fid = r.json()["file_id"]
    out = run("start", STORAGE="s3")
    assert "storage:  s3, bucket uploads on radosgw http://127.0.0.1:" in out, out
    assert file_names(ws, auth) == []  # not the posix run's file, whose bytes are elsewhere
    assert mode_of(os.path.join(run_dir, "s3-credentials")) == 0o600
    with open(os.path.join(run_dir, "httpd.conf")) as f:
        conf = f.read()
    assert re.search(r"^UploadSessionStorage s3 http://127\.0\.0\.1:\d+ uploads$", conf, re.M), conf
    assert "UploadSessionS3DirectUpload Off" in conf.splitlines(), conf
    r = httpx.post(f"{ws}/files", headers=auth, files={"file": ("a.txt", b"in the bucket")},
                   timeout=30)
    assert r.status_code == 201, r.text
    fid = r.json()["file_id"]
    r = httpx.get(f"{ws}/files/{fid}", headers=auth, timeout=30)
    assert r.status_code == 200 and r.content == b"in the bucket", r.text
    r = httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=30)
    assert r.status_code == 200 and r.json() == {"status": "ok"}, r.text
    # a second start finds the radosgw answering: the same one, the object kept
    with open(os.path.join(run_dir, "rgw", "endpoint.json")) as f:
        first = f.read()
    out = run("start", STORAGE="s3", S3_DIRECT="1")  # 1 is On
    assert "starting radosgw" not in out, out
    r = httpx.post(f"{ws}/upload_sessions", headers=auth, json={}, timeout=30)
    assert r.status_code == 201, r.text
    info = json.loads(first)
    assert r.json()["aws_prefixed_request_config"]["url"] == info["endpoint"] + "/uploads", r.text
    with open(os.path.join(run_dir, "rgw", "endpoint.json")) as f:
        assert f.read() == first
    r = httpx.get(f"{ws}/files/{fid}", headers=auth, timeout=30)
    assert r.status_code == 200 and r.content == b"in the bucket", r.text
    out = run("stop")
    assert "stopped radosgw" in out, out
    assert not os.path.exists(os.path.join(run_dir, "rgw"))
    # a new radosgw holds none of the old one's objects: the s3 store starts afresh
    out = run("start", STORAGE="s3")
    assert "starting radosgw" in out, out
    assert file_names(ws, auth) == []
    run("start")  # and the posix run's store and file are as they were
    assert file_names(ws, auth) == ["p.txt"]
    r = httpx.get(f"{ws}/files/{posix_fid}", headers=auth, timeout=30)
    assert r.status_code == 200 and r.content == b"on disk", r.text


def test_s3_direct_takes_the_usual_spellings_and_refuses_others(script_tree):
    """S3_DIRECT=1 (or yes, true) is On, as a make variable is usually
    written; a value that is none of them stops before anything starts."""
    top, port, run = script_tree
    p = subprocess.run(["bash", os.path.join(top, "scripts", "run-httpd.sh"), "start", str(port)],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60,
                       env=dict(os.environ, STORAGE="s3", S3_DIRECT="maybe"))
    assert (p.returncode, p.stdout) == (2, "S3_DIRECT must be On or Off, not 'maybe'\n")
    assert not os.path.exists(os.path.join(top, "run"))
    run("start", S3_DIRECT="yes")  # posix storage: the s3 lines are not written
    with open(os.path.join(top, "run", "httpd.conf")) as f:
        assert "UploadSessionS3DirectUpload" not in f.read()

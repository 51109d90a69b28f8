"""The key tool (issue #15 item 5): build/us-keygen creates (label,
expiry), lists and revokes keys in the file a running server re-reads
within seconds; an expired key gets the unknown key's 401; every change
replaces the file atomically keeping its mode and owner; the first
command line (`us-keygen -f F -g G -F F -w WS`) still works."""

import os
import pwd
import re
import subprocess
import time

import pytest

from us_testkit.api import INVALID_KEY, check, unique_ws
from us_testkit.server import MODULE_SO

KEYGEN = os.path.join(os.path.dirname(MODULE_SO), "us-keygen")
SETTLE = 3.0  # the children's 2 s interval and some slack


def keygen(*args, ok=True):
    proc = subprocess.run([KEYGEN, *args], capture_output=True, text=True, timeout=30)
    if ok:
        assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr)
    return proc


def get(s, key, ws):
    return s.client(headers={"Authorization": f"Bearer {key}"}).get(ws + "/upload_sessions")


def wait_status(s, key, ws, status, timeout=10.0):
    t0 = time.monotonic()
    while True:
        r = get(s, key, ws)
        if r.status_code == status:
            return r, time.monotonic() - t0
        assert time.monotonic() - t0 < timeout, f"still {r.status_code} after {timeout} s"
        time.sleep(0.1)


def listing(path):
    out = keygen("list", "-f", path).stdout.splitlines()
    assert out[0].split() == ["ID", "LABEL", "USER_ID", "NAME", "CREATED", "EXPIRES", "GRANTS"]
    return out[1:]


def test_create_list_revoke_on_a_running_server(server_factory):
    s = server_factory()
    ws = unique_ws("kg")
    if os.geteuid() == 0:
        www = pwd.getpwnam("www-data")
        os.chown(s.key_file, 0, www.pw_gid)
    os.chmod(s.key_file, 0o640)
    before = os.stat(s.key_file)

    p = keygen("create", "-f", s.key_file, "-g", "Ci", "-F", "Runner", "-w", ws,
               "-l", "ci-runner", "-e", "1h")
    key = p.stdout.strip()
    assert re.fullmatch(r"usk_[A-Za-z0-9_-]{43}", key), p.stdout
    kid = re.search(r"key ([0-9a-f]{12}) for user", p.stderr).group(1)
    after = os.stat(s.key_file)
    assert after.st_ino != before.st_ino  # replaced by rename
    assert (after.st_mode & 0o7777, after.st_uid, after.st_gid) == \
        (0o640, before.st_uid, before.st_gid)
    assert not [f for f in os.listdir(s.dir) if ".tmp" in f]

    r, took = wait_status(s, key, ws, 200)
    check(r, 200, {"data": [], "has_more": False, "total": 0})
    assert took < SETTLE, took
    # the grants hold: another workspace is 403
    r = get(s, key, unique_ws("other"))
    assert r.status_code == 403, r.text

    rows = [ln for ln in listing(s.key_file) if ln.startswith(kid)]
    assert len(rows) == 1, rows
    cols = rows[0].split()
    assert cols[1] == "ci-runner" and cols[3:5] == ["Ci", "Runner"] and cols[-1] == ws, cols
    assert re.fullmatch(r"\d{8}T\d{6}Z", cols[5]) and re.fullmatch(r"\d{8}T\d{6}Z", cols[6]), cols
    # the harness's keys (first format) are listed too, without label or dates
    legacy = [ln for ln in listing(s.key_file) if "Ada Lovelace" in ln][0].split()
    assert legacy[1] == "-" and legacy[5:7] == ["-", "-"], legacy

    p = keygen("revoke", "-f", s.key_file, "ci-runner")
    assert "revoked 1 key" in p.stderr
    r, took = wait_status(s, key, ws, 401)
    check(r, 401, INVALID_KEY)
    assert took < SETTLE, took
    assert not [ln for ln in listing(s.key_file) if ln.startswith(kid)]
    after = os.stat(s.key_file)
    assert (after.st_mode & 0o7777, after.st_uid, after.st_gid) == \
        (0o640, before.st_uid, before.st_gid)

    # revoke by id; an unknown one changes nothing and says so
    key2 = keygen("-f", s.key_file, "-g", "By", "-F", "Id").stdout.strip()
    kid2 = [ln for ln in listing(s.key_file) if " By Id " in ln][0].split()[0]
    wait_status(s, key2, ws, 200)
    p = keygen("revoke", "-f", s.key_file, "nosuchlabel", ok=False)
    assert p.returncode == 1 and "no key with id or label 'nosuchlabel'" in p.stderr, p.stderr
    keygen("revoke", "-f", s.key_file, kid2)
    r, _ = wait_status(s, key2, ws, 401)
    check(r, 401, INVALID_KEY)
    # the default users are untouched
    check(get(s, s.key_all, ws), 200)


def test_expired_key_is_refused_like_an_unknown_one(server_factory):
    s = server_factory()
    ws = unique_ws("exp")
    # us-keygen refuses an expiry in the past: the file is edited to one
    old = keygen("-f", s.key_file, "-g", "Old", "-F", "Key", "-e", "2099-01-01").stdout.strip()
    with open(s.key_file) as f:
        text = f.read()
    assert text.count(":Old:Key:") == 1 and text.count(":20990101T000000Z\n") == 1, text
    with open(s.key_file, "w") as f:
        f.write(text.replace(":20990101T000000Z\n", ":20200101T000000Z\n"))
    short = keygen("-f", s.key_file, "-g", "Short", "-F", "Lived", "-e", "4s").stdout.strip()
    t_created = time.monotonic()
    r, _ = wait_status(s, short, ws, 200)
    check(r, 200)
    r = get(s, old, ws)
    check(r, 401, INVALID_KEY)
    assert r.headers["www-authenticate"] == "Bearer"
    time.sleep(max(0.0, 4.5 - (time.monotonic() - t_created)))
    r = get(s, short, ws)
    check(r, 401, INVALID_KEY)
    assert [ln for ln in listing(s.key_file) if "Old Key" in ln][0].endswith("EXPIRED")
    assert "US0012: authentication failed: expired API key" in s.log_text()


LATEST = "after 99991231T235959Z, the latest a key file holds"


@pytest.mark.parametrize("expiry,why", [
    # a year of more than four digits has no YYYYMMDDTHHMMSSZ: such a key
    # was written without an expiry (never expires)
    ("3000000d", f"3000000d ends {LATEST}"),
    ("99999999d", f"99999999d ends {LATEST}"),
    ("999999999999d", f"999999999999d ends {LATEST}"),
    # the microseconds overflowed into the past
    ("9223372036854775807s", f"9223372036854775807s ends {LATEST}"),
    ("99999999999999999999999h", f"99999999999999999999999h ends {LATEST}"),
    ("2020-01-01", "2020-01-01 is not in the future"),
    ("20200101T000000Z", "20200101T000000Z is not in the future"),
    ("0d", "expected a lifetime (90d, 12h, 30m, 3600s) or a UTC time"),
])
def test_expiry_past_9999_or_not_in_the_future_is_refused(tmp_path, expiry, why):
    path = str(tmp_path / "keys")
    bad = keygen("-f", path, "-g", "A", "-F", "B", "-e", expiry, ok=False)
    assert bad.returncode == 2, (bad.returncode, bad.stderr)
    assert bad.stderr == f"us-keygen: -e: {why}" + ("\n" if why.endswith("holds") or
                                                     why.endswith("future") else
                                                     " (YYYY-MM-DD or YYYYMMDDTHHMMSSZ)\n"), \
        bad.stderr
    assert bad.stdout == "", bad.stdout
    assert not os.path.exists(path)


def test_expiry_up_to_9999(tmp_path):
    path = str(tmp_path / "keys")
    keygen("-f", path, "-g", "Far", "-F", "Future", "-e", "9999-12-31")
    keygen("-f", path, "-g", "Last", "-F", "Second", "-e", "99991231T235959Z")
    # about 2,900,000 days from now: still within 9999
    keygen("-f", path, "-g", "Long", "-F", "Life", "-e", "2900000d")
    rows = listing(path)
    assert [r.split()[6] for r in rows[:2]] == ["99991231T000000Z", "99991231T235959Z"], rows
    assert re.fullmatch(r"\d{8}T\d{6}Z", rows[2].split()[6]), rows
    assert 9000 < int(rows[2].split()[6][:4]) <= 9999, rows


def test_first_command_line_and_help(tmp_path):
    path = str(tmp_path / "keys")
    p = keygen("-f", path, "-g", "Ada", "-F", "Lovelace", "-w", "team-a,team-b",
               "-u", "0b2c6f6e-5d4e-4a8a-9a39-1c7f4d9f7e21")
    assert p.stdout.startswith("usk_")
    assert os.stat(path).st_mode & 0o7777 == 0o600
    with open(path) as f:
        line = f.read()
    assert re.fullmatch(r"[0-9a-f]{64}:0b2c6f6e-5d4e-4a8a-9a39-1c7f4d9f7e21:Ada:Lovelace:"
                        r"team-a,team-b::\d{8}T\d{6}Z:\n", line), line
    h = keygen("--help")
    for word in ("create", "list", "revoke", "-l", "-e", "atomically"):
        assert word in h.stdout, h.stdout
    bad = keygen("-f", path, "-g", "A", "-F", "B", "-e", "soon", ok=False)
    assert bad.returncode == 2 and "-e: expected a lifetime" in bad.stderr
    # a broken file is refused before anything is written
    with open(path, "a") as f:
        f.write("broken line\n")
    bad = keygen("-f", path, "-g", "A", "-F", "B", ok=False)
    assert bad.returncode == 1 and "line 2" in bad.stderr, bad.stderr
    with open(path) as f:
        assert f.read() == line + "broken line\n"

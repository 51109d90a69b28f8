"""The directories the module is pointed at: one that exists is the
operator's, never re-owned or re-moded; one httpd's User cannot write, or a
path that is not a directory, stops httpd (and `apache2 -t`) with a message
naming the directive. Only stand-ins made under the test's own directory are
used, never a system path. These run only as root (User is ignored
otherwise)."""

import os
import stat
import time

import pytest

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: httpd's User")


def output(proc):
    return (proc.stdout or "") + (proc.stderr or "")


def start_refused(s):
    """Starts s, which must refuse; returns what it said. A check_config
    error ends `-k start` itself; a post_config one is in error.log."""
    s.write_config()
    proc = s._ctl("-k", "start")
    out = output(proc)
    if proc.returncode == 0:
        deadline = time.monotonic() + 15
        while "Configuration Failed" not in s.log_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        out += s.log_text()
        s.expect_log(r"US0002: ", whole_life=True)
    assert proc.returncode != 0 or "Configuration Failed" in out, out
    time.sleep(0.5)
    pid = s._read_pid()
    if pid is not None and os.path.exists(f"/proc/{pid}"):
        s.running = True  # not refused: stopped after the test
    assert pid is None or not os.path.exists(f"/proc/{pid}"), out
    return out


def owner_and_mode(path):
    st = os.lstat(path)
    return st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode), stat.S_IFMT(st.st_mode)


@pytest.fixture
def standins(server_factory):
    """A server not started, and root's stand-ins under its directory: a
    0755 directory (as /var/lib), a 1777 one (as /tmp) and a 0644 file."""
    s = server_factory(start=False)
    base = os.path.join(s.dir, "standins")
    os.mkdir(base)
    os.chmod(base, 0o755)
    made = {"plain": os.path.join(base, "plain"), "sticky": os.path.join(base, "sticky"),
            "file": os.path.join(base, "file")}
    os.mkdir(made["plain"])
    os.chmod(made["plain"], 0o755)
    os.mkdir(made["sticky"])
    os.chmod(made["sticky"], 0o1777)
    with open(made["file"], "w") as f:
        f.write("not a directory\n")
    os.chmod(made["file"], 0o644)
    before = {k: owner_and_mode(v) for k, v in made.items()}
    assert before["plain"][:3] == (0, 0, 0o755) and before["sticky"][:3] == (0, 0, 0o1777)
    return s, made, before


def assert_untouched(made, before):
    for k, path in made.items():
        assert owner_and_mode(path) == before[k], (k, owner_and_mode(path), before[k])


def test_store_in_an_existing_sticky_directory_leaves_it_as_it_was(standins):
    """As `UploadSessionStore sqlite3 /tmp/x.db`: the server starts (User can
    write there), and the directory keeps its owner, mode and sticky bit."""
    s, made, before = standins
    s.overrides["UploadSessionStore"] = f'sqlite3 "{made["sticky"]}/us.db"'
    s.overrides["UploadSessionDataDir"] = f'"{made["sticky"]}/data"'
    s.start()
    assert_untouched(made, before)
    # what the start made itself is User's
    assert os.stat(os.path.join(made["sticky"], "data")).st_uid == 33
    s.stop()
    assert_untouched(made, before)


def test_data_dir_user_cannot_write_is_refused_and_left_as_it_was(standins):
    """As `UploadSessionDataDir /var/lib`: refused, by `apache2 -t` too, and
    the directory is neither handed to User nor re-moded."""
    s, made, before = standins
    s.overrides["UploadSessionDataDir"] = f'"{made["plain"]}"'
    s.write_config()
    want = (f"UploadSessionDataDir: httpd's User www-data cannot write to directory "
            f"{made['plain']} (Permission denied; chown it to that user or make it writable "
            f"for it)")
    proc = s.configtest()
    assert proc.returncode != 0 and want in output(proc), output(proc)
    assert "Syntax OK" not in output(proc), output(proc)
    assert_untouched(made, before)
    out = start_refused(s)
    assert want in out, out
    assert_untouched(made, before)


def test_store_directory_user_cannot_write_is_refused_and_left_as_it_was(standins):
    s, made, before = standins
    s.overrides["UploadSessionStore"] = f'sqlite3 "{made["plain"]}/us.db"'
    s.overrides["UploadSessionDataDir"] = f'"{s.dir}/state/data"'
    want = (f"UploadSessionStore: httpd's User www-data cannot write to directory "
            f"{made['plain']} (Permission denied;")
    out = start_refused(s)
    assert want in out, out
    assert_untouched(made, before)
    assert not os.path.exists(os.path.join(made["plain"], "us.db"))


@pytest.mark.parametrize("directive", ["UploadSessionDataDir", "UploadSessionStore"])
def test_a_file_where_a_directory_belongs_is_refused(standins, directive):
    """As `UploadSessionDataDir /etc/passwd`: refused, naming the directive,
    by `apache2 -t` and at start; the file keeps its owner and mode."""
    s, made, before = standins
    if directive == "UploadSessionDataDir":
        s.overrides["UploadSessionDataDir"] = f'"{made["file"]}"'
    else:
        s.overrides["UploadSessionStore"] = f'sqlite3 "{made["file"]}/us.db"'
    s.write_config()
    want = f"{directive}: {made['file']} exists and is not a directory"
    proc = s.configtest()
    assert proc.returncode != 0 and want in output(proc), output(proc)
    out = start_refused(s)
    assert want in out, out
    assert_untouched(made, before)
    with open(made["file"]) as f:
        assert f.read() == "not a directory\n"

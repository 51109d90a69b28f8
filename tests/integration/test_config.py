"""Configuration errors fail `apache2 -t` with a message naming the directive."""

import hashlib
import re
import uuid

import pytest


BAD_VALUES = [
    ("UploadSessionMaxOpenSessions", "abc"),
    ("UploadSessionMaxOpenSessions", "-1"),
    ("UploadSessionMaxOpenSessions", "10x"),
    ("UploadSessionMaxLifetime", "0"),
    ("UploadSessionMaxLifetime", "abc"),
    ("UploadSessionMaxLifetime", "-5"),
    ("UploadSessionPublicURL", "ftp://x"),
    ("UploadSessionPublicURL", "not-a-url"),
    ("UploadSessionStore", "nosuchdriver x"),
    ("UploadSessionKeyFile", '"{dir}/no-such-key-file"'),
    ("UploadSession", "Maybe"),
]


def output(proc):
    return (proc.stdout or "") + (proc.stderr or "")


def test_valid_config_passes_configtest(server_factory):
    s = server_factory(start=False)
    proc = s.configtest()
    assert proc.returncode == 0, output(proc)
    assert "Syntax OK" in output(proc), output(proc)


@pytest.mark.parametrize("directive,value", BAD_VALUES,
                         ids=[f"{d}={v}" for d, v in BAD_VALUES])
def test_bad_directive_value_fails_configtest(server_factory, directive, value):
    s = server_factory(start=False)
    s.overrides[directive] = value.format(dir=s.dir)
    s.write_config()
    with open(s.conf_path) as f:
        assert f"{directive} {value.format(dir=s.dir)}\n" in f.read()
    proc = s.configtest()
    out = output(proc)
    assert proc.returncode != 0, f"configtest accepted {directive} {value}:\n{out}"
    assert directive in out, out
    assert "Syntax OK" not in out, out


def _sha():
    return hashlib.sha256(b"some key").hexdigest()


MALFORMED_KEY_LINES = [
    ("no-colons", lambda: "garbage-without-any-colons"),
    ("short-hash", lambda: f"{'a' * 63}:{uuid.uuid4()}:Ada:Lovelace:*"),
    ("non-hex-hash", lambda: f"{'g' * 64}:{uuid.uuid4()}:Ada:Lovelace:*"),
    ("bad-user-id", lambda: f"{_sha()}:not-a-uuid:Ada:Lovelace:*"),
    ("too-few-fields", lambda: f"{_sha()}:{uuid.uuid4()}:Ada:Lovelace"),
]


@pytest.mark.parametrize("line", [m[1] for m in MALFORMED_KEY_LINES],
                         ids=[m[0] for m in MALFORMED_KEY_LINES])
def test_malformed_key_file_line_fails_configtest(server_factory, line):
    s = server_factory(start=False)
    # write_keys(): comment, blank, 3 user lines (lines 1-5); then ours:
    # line 6 a comment, 7 blank, 8 the malformed line, 9 a valid-looking line
    bad = line()
    s.write_keys(extra_lines=["# a comment", "", bad,
                              f"{_sha()}:{uuid.uuid4()}:Grace:Hopper:ws-1,ws-2"])
    with open(s.key_file) as f:
        assert f.read().splitlines()[7] == bad
    proc = s.configtest()
    out = output(proc)
    assert proc.returncode != 0, f"configtest accepted a malformed key file:\n{out}"
    assert "UploadSessionKeyFile" in out, out
    assert re.search(r"(?<![\w.])8(?![\w.])", out), f"line number 8 not named:\n{out}"


def test_valid_key_file_with_comments_and_blanks_passes(server_factory):
    s = server_factory(start=False)
    s.write_keys(extra_lines=["", "# trailing comment", ""])
    proc = s.configtest()
    assert proc.returncode == 0, output(proc)
    assert "Syntax OK" in output(proc)

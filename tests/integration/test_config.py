"""Configuration errors fail `apache2 -t` with a message naming the directive."""

import hashlib
import os
import re
import socket
import time
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
    ("UploadSessionStorage", "s3"),
    ("UploadSessionStorage", "posix extra"),
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


MAX_FILE_SIZES = [("1", True), ("64k", True), ("1048576G", True), ("1125899906842624", True),
                  ("0", False), ("+5", False), ("5T", False), ("1048577G", False),
                  ("1125899906842625", False),
                  # a suffix past the limit that used to wrap around to 1 GiB
                  ("17179869185G", False), ("9007199254740993K", False)]


@pytest.mark.parametrize("value,ok", MAX_FILE_SIZES, ids=[v for v, _ in MAX_FILE_SIZES])
def test_max_file_size_is_at_most_one_pib(server_factory, value, ok):
    s = server_factory(start=False, extra=[f"UploadSessionMaxFileSize {value}"])
    with open(s.conf_path) as f:
        assert f"UploadSessionMaxFileSize {value}\n" in f.read()
    proc = s.configtest()
    out = output(proc)
    if ok:
        assert proc.returncode == 0 and "Syntax OK" in out, out
    else:
        assert proc.returncode != 0, f"configtest accepted {value}:\n{out}"
        assert f"UploadSessionMaxFileSize: expects a size in bytes (optionally with K, M or G), not '{value}'" in out, out


def test_storage_posix_passes_configtest(server_factory):
    """UploadSessionStorage posix (the default), written out and left out."""
    s = server_factory(start=False)
    with open(s.conf_path) as f:
        assert "UploadSessionStorage posix\n" in f.read()
    proc = s.configtest()
    assert proc.returncode == 0, output(proc)
    assert "Syntax OK" in output(proc), output(proc)
    s.omit.add("UploadSessionStorage")
    s.write_config()
    proc = s.configtest()
    assert proc.returncode == 0, output(proc)
    assert "Syntax OK" in output(proc), output(proc)


@pytest.mark.parametrize("value,want", [
    ("nfs", "UploadSessionStorage: no storage backend 'nfs' in this build"),
    ("s3", "UploadSessionStorage: s3 storage expects an endpoint URL and a bucket"),
    ("s3 http://127.0.0.1:7480 uploads",
     "UploadSessionStorage: s3 storage needs UploadSessionS3CredentialsFile"),
    ("posix extra", "UploadSessionStorage: posix storage takes no parameters"),
])
def test_unknown_storage_backend_fails_configtest(server_factory, value, want):
    s = server_factory(start=False)
    s.overrides["UploadSessionStorage"] = value
    s.write_config()
    proc = s.configtest()
    out = output(proc)
    assert proc.returncode != 0, f"configtest accepted UploadSessionStorage {value}:\n{out}"
    assert want in out, out
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


NON_UTF8_NAMES = [
    # (id, given_name bytes, family_name bytes, field named in the error)
    ("latin1-given", "Ren\u00e9".encode("latin-1"), b"Descartes", "field 3 (given_name)"),
    ("latin1-family", b"Ada", "M\u00fcller".encode("latin-1"), "field 4 (family_name)"),
    ("cut-short", b"Zo\xc3", b"Lovelace", "field 3 (given_name)"),
    ("surrogate", b"Ada", b"\xed\xa0\x80", "field 4 (family_name)"),
]


@pytest.mark.parametrize("given,family,field", [n[1:] for n in NON_UTF8_NAMES],
                         ids=[n[0] for n in NON_UTF8_NAMES])
def test_key_file_name_not_utf8_fails_startup(server_factory, given, family, field):
    """A key file saved as Latin-1 is refused when httpd reads it (configtest
    and start), naming the file, the line and the field: the names travel as
    JSON strings, which must be UTF-8 (a Latin-1 name used to make the
    status answer a 500 and drop the session from lists)."""
    s = server_factory(start=False)
    # lines 1-5 from write_keys(); 6 a valid UTF-8 name; 7 the bad one
    s.write_keys(extra_lines=[f"{_sha()}:{uuid.uuid4()}:Zo\u00eb:Ng:*"])
    with open(s.key_file, "ab") as f:
        f.write(_sha().encode() + b":" + str(uuid.uuid4()).encode() + b":" + given + b":"
                + family + b":ws-1\n")
    want = (f"UploadSessionKeyFile {s.key_file}: line 7: {field} is not valid UTF-8 "
            "(Latin-1? save the key file as UTF-8)")

    proc = s.configtest()
    out = output(proc)
    assert proc.returncode != 0, f"configtest accepted a non-UTF-8 name:\n{out}"
    assert want in out, out
    assert "Syntax OK" not in out, out

    proc = s._ctl("-k", "start")
    out = output(proc) + s.log_text()
    assert proc.returncode != 0, f"httpd started with a non-UTF-8 name:\n{out}"
    assert want in out, out


def test_valid_key_file_with_comments_and_blanks_passes(server_factory):
    s = server_factory(start=False)
    s.write_keys(extra_lines=["", "# trailing comment", ""])
    proc = s.configtest()
    assert proc.returncode == 0, output(proc)
    assert "Syntax OK" in output(proc)


@pytest.mark.parametrize("value,ok", [("1", True), ("31536000", True), ("0", False),
                                      ("7d", False), ("-60", False), ("31536001", False)])
def test_webhook_retention_is_seconds_up_to_a_year(server_factory, value, ok):
    """UploadSessionWebhookRetention: how long a failed webhook delivery is
    kept before the expiry sweep deletes it, in whole seconds."""
    s = server_factory(start=False, extra=[f"UploadSessionWebhookRetention {value}"])
    proc = s.configtest()
    out = output(proc)
    if ok:
        assert proc.returncode == 0 and "Syntax OK" in out, out
    else:
        assert proc.returncode != 0, out
        assert (f"UploadSessionWebhookRetention: expects a whole number from 1 to 31536000, "
                f"not '{value}'") in out, out
        assert "Syntax OK" not in out, out


@pytest.mark.parametrize("value", ["0", "many", "-3", "100000001"])
def test_bad_max_files_per_session_fails_configtest(server_factory, value):
    s = server_factory(start=False, extra=[f"UploadSessionMaxFilesPerSession {value}"])
    proc = s.configtest()
    out = output(proc)
    assert proc.returncode != 0, out
    assert (f"UploadSessionMaxFilesPerSession: expects a whole number from 1 to 100000000, "
            f"not '{value}'") in out, out


@pytest.mark.parametrize("value", ['"a/b"', '"two words"', '""'])
def test_bad_node_name_fails_configtest(server_factory, value):
    s = server_factory(start=False, extra=[f"UploadSessionNodeName {value}"])
    proc = s.configtest()
    out = output(proc)
    assert proc.returncode != 0, f"configtest accepted UploadSessionNodeName {value}:\n{out}"
    assert "UploadSessionNodeName" in out and "Syntax OK" not in out, out


@pytest.mark.parametrize("value", ["nœud", "caf\u00e9-1"])
def test_a_node_name_beyond_printable_ascii_fails_configtest(server_factory, value):
    """A byte above 0x7e is refused whatever the signedness of the build's
    char (on arm64 a plain char is unsigned, and such a name passed): a
    node's name means the same on every node."""
    s = server_factory(start=False, extra=[f"UploadSessionNodeName {value}"])
    proc = s.configtest()
    out = output(proc)
    assert proc.returncode != 0, f"configtest accepted UploadSessionNodeName {value}:\n{out}"
    assert ("UploadSessionNodeName: printable ASCII characters only, no spaces, control "
            "characters or '/'") in out, out
    assert "Syntax OK" not in out, out


def test_an_s3_credentials_path_with_a_space_is_refused_naming_the_directive(server_factory):
    """The credentials path travels to the s3 backend in a space-separated
    parameter list: a space in it is refused by the directive itself, not
    read as an unknown storage parameter; the same file without it passes."""
    s = server_factory(start=False)
    os.makedirs(os.path.join(s.dir, "s3 keys"))
    for path in (os.path.join(s.dir, "s3 keys", "creds"), os.path.join(s.dir, "s3-creds")):
        with open(path, "w") as f:
            f.write("[default]\naws_access_key_id = a\naws_secret_access_key = b\n")
        os.chmod(path, 0o600)
    s.overrides["UploadSessionStorage"] = "s3 http://127.0.0.1:9 some-bucket"
    s.extra = [f'UploadSessionS3CredentialsFile "{s.dir}/s3 keys/creds"']
    s.write_config()
    proc = s.configtest()
    out = output(proc)
    assert proc.returncode != 0, out
    assert (f"UploadSessionS3CredentialsFile: expects a path without spaces, not "
            f"'{s.dir}/s3 keys/creds'") in out, out
    assert "unknown parameter" not in out and "Syntax OK" not in out, out

    s.extra = [f'UploadSessionS3CredentialsFile "{s.dir}/s3-creds"']
    s.write_config()
    proc = s.configtest()
    assert proc.returncode == 0 and "Syntax OK" in output(proc), output(proc)


SHARED_STORE_CASES = [
    ("UploadSessionIngestThreads 8", "UploadSessionIngestThreads"),
    ("UploadSessionWebhook http://127.0.0.1:9/vhost-hook", "UploadSessionWebhook"),
    ("UploadSessionBusyTimeout 5000", "UploadSessionBusyTimeout"),
    ("UploadSessionWebhookRetention 60", "UploadSessionWebhookRetention"),
    ('UploadSessionDataDir "{dir}/other-data"', "UploadSessionDataDir"),
]


@pytest.mark.parametrize("line,directive", SHARED_STORE_CASES,
                         ids=[d for _, d in SHARED_STORE_CASES])
def test_a_virtual_host_on_the_same_store_cannot_differ_in_its_workers(server_factory, line,
                                                                        directive):
    """A store has one set of workers, webhooks and sweep, made from the
    first server naming it: a virtual host on the same store that sets one
    of their directives otherwise is refused, naming it, instead of being
    ignored; the same value, or a store of its own, passes."""
    s = server_factory(start=False)
    line = line.format(dir=s.dir)
    if directive == "UploadSessionWebhook":
        with open(os.path.join(s.dir, "hook.secret"), "w") as f:
            f.write("w" * 32)
        os.chmod(os.path.join(s.dir, "hook.secret"), 0o600)
        line += f'\nUploadSessionWebhookSecretFile "{s.dir}/hook.secret"'
    s.extra = ["<VirtualHost 127.0.0.1:1>", line, "</VirtualHost>"]
    s.write_config()
    out = output(s.configtest())
    assert (f"{directive} differs from that of the main server, which names the same "
            f"UploadSessionStore: a store's workers, webhooks and sweep are one set, made from "
            f"the first server naming it; set {directive} alike in both") in out, out
    assert "Syntax OK" not in out, out
    # its own store (and its own data directory): its own workers, so its own value
    own_data = [] if directive == "UploadSessionDataDir" else [
        f'UploadSessionDataDir "{s.dir}/state/other-data"']
    s.extra = ["<VirtualHost 127.0.0.1:1>", line, *own_data,
               f'UploadSessionStore sqlite3 "{s.dir}/state/other.db"', "</VirtualHost>"]
    s.write_config()
    proc = s.configtest()
    assert proc.returncode == 0 and "Syntax OK" in output(proc), output(proc)


def _two_stores(s, vhost_data_dir, storage=()):
    s.extra = ["<VirtualHost 127.0.0.1:1>", "ServerName vhost.test",
               f'UploadSessionStore sqlite3 "{s.dir}/other/store.db"',
               f'UploadSessionDataDir "{vhost_data_dir}"', *storage, "</VirtualHost>"]
    s.write_config()


def test_two_stores_cannot_share_one_data_directory(server_factory):
    """Each store's sweep deletes the files its own store does not know:
    two stores in one data directory would delete each other's uploads.
    Refused by `apache2 -t` and at start, naming the directory and the
    other server, however the path is spelled; a directory each starts."""
    s = server_factory(start=False)
    _two_stores(s, f"{s.dir}/state/./data/")
    want = (f"mod_upload_session (vhost.test:0): UploadSessionDataDir {s.dir}/state/data is "
            f"also that of the main server, which names another UploadSessionStore: each "
            f"store's sweep deletes the files its own store does not know, the other store's "
            f"too; give each store its own place for its files")
    proc = s.configtest()
    assert proc.returncode != 0 and want in output(proc), output(proc)
    proc = s._ctl("-k", "start")
    assert proc.returncode != 0 and want in output(proc), output(proc)
    assert not os.path.exists(f"{s.dir}/state/data"), "refused before anything was made"

    _two_stores(s, f"{s.dir}/other/data")
    s.start()
    assert os.path.isdir(f"{s.dir}/state/data") and os.path.isdir(f"{s.dir}/other/data")


def test_two_stores_cannot_share_one_bucket_prefix(server_factory):
    """The same with s3 storage: one bucket and prefix (spelled with slashes
    or not) for two stores is refused; another prefix passes."""
    s = server_factory(start=False)
    creds = os.path.join(s.dir, "s3-creds")
    with open(creds, "w") as f:
        f.write("[default]\naws_access_key_id = a\naws_secret_access_key = b\n")
    os.chmod(creds, 0o600)

    def s3(prefix):
        return ["UploadSessionStorage s3 http://127.0.0.1:9 shared-bucket",
                f'UploadSessionS3CredentialsFile "{creds}"', f"UploadSessionS3Prefix {prefix}"]

    # the main server's: the override's value follows the directive's name
    s.overrides["UploadSessionStorage"] = "\n".join(s3("uploads")).split(" ", 1)[1]
    _two_stores(s, f"{s.dir}/other/data", s3("/uploads/"))
    proc = s.configtest()
    want = ("UploadSessionStorage s3 bucket shared-bucket with UploadSessionS3Prefix 'uploads' "
            "is also that of the main server, which names another UploadSessionStore")
    assert proc.returncode != 0 and want in output(proc), output(proc)

    _two_stores(s, f"{s.dir}/other/data", s3("other-uploads"))
    proc = s.configtest()
    assert proc.returncode == 0 and "Syntax OK" in output(proc), output(proc)


def test_a_virtual_host_keeps_a_keep_alive_timeout_it_sets_itself(server_factory):
    """A KeepAliveTimeout of 5 s or less is raised to 20 s for the SDK's
    client (test_lifecycle), unless the virtual host sets it itself: that one
    is the operator's choice and is kept, with a warning saying what it risks
    (US0027); the main server's, httpd's default here, is still raised."""
    s = server_factory(start=False)
    s.extra = [f"<VirtualHost 127.0.0.1:{s.port}>", "ServerName short-ka.test",
               "UploadSession On", "KeepAliveTimeout 1", "</VirtualHost>"]
    s.write_config()
    s.start()
    with socket.create_connection(("127.0.0.1", s.port), timeout=5) as c:
        c.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: short-ka.test\r\n\r\n")
        head = c.recv(4096)
        assert head.startswith(b"HTTP/1.1 200 ") and head.endswith(b'{"status":"ok"}'), head
        time.sleep(1.6)
        c.settimeout(2)
        assert c.recv(4096) == b"", "the virtual host's 1 s was kept: the idle connection closed"
    log = s.log_text()
    assert re.search(r":warn\].*US0027.*KeepAliveTimeout 1000 ms of short-ka\.test:\d+ kept as "
                     r"its virtual host sets it: the deepset SDK's client keeps an idle "
                     r"connection 5 s", log), s.log_tail()
    assert re.search(r"US0026.*KeepAliveTimeout 5000 ms of the main server raised to 20 s", log), \
        s.log_tail()
    assert "short-ka.test" not in "".join(l for l in log.splitlines() if "US0026" in l), log


def _health_on(c, host):
    """The answer to a health check sent on the open connection c with Host host."""
    c.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
    got = b""
    while not got.endswith(b'{"status":"ok"}'):
        chunk = c.recv(4096)
        if not chunk:
            break
        got += chunk
    return got


def test_a_raised_keep_alive_timeout_holds_behind_a_first_virtual_host_without_the_module(
        server_factory):
    """httpd keeps a connection alive by its request's name-based virtual
    host's KeepAliveTimeout only when that host sets one, by the first virtual
    host's of the address and port otherwise. The raise (US0026) counts as the
    raised host's own, so a virtual host with UploadSession On behind a first
    one without the module keeps its idle connections 20 s, where the first
    host's 1 s closed them."""
    s = server_factory(start=False)
    s.extra = ["KeepAliveTimeout 1",
               f"<VirtualHost 127.0.0.1:{s.port}>", "ServerName plain.test", "UploadSession Off",
               "</VirtualHost>",
               f"<VirtualHost 127.0.0.1:{s.port}>", "ServerName uploads.test", "UploadSession On",
               "</VirtualHost>"]
    s.write_config()
    s.start()
    with socket.create_connection(("127.0.0.1", s.port), timeout=5) as c:
        first = _health_on(c, b"uploads.test")
        assert first.startswith(b"HTTP/1.1 200 ") and first.endswith(b'{"status":"ok"}'), first
        time.sleep(1.6)
        again = _health_on(c, b"uploads.test")
        assert again.startswith(b"HTTP/1.1 200 ") and again.endswith(b'{"status":"ok"}'), \
            "the first virtual host's 1 s closed the idle connection"
    log = s.log_text()
    assert re.search(r"US0026.*KeepAliveTimeout 1000 ms of uploads\.test:\d+ raised to 20 s", log), \
        s.log_tail()
    assert "plain.test" not in "".join(l for l in log.splitlines() if "US0026" in l), log

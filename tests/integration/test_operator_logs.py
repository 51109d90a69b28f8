"""What an operator reads and matches (issue #15 items 1-2): the version
line at startup, the optional Server token, the key's user as %u in the
access log, and one fail2ban-matchable line per refused key that never
holds the key itself."""

import os
import re

from us_testkit.api import INVALID_KEY, check, unique_ws
from us_testkit.server import configtest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def module_version():
    with open(os.path.join(ROOT, "include", "us_version.h")) as f:
        return re.search(r'#define US_VERSION "([^"]+)"', f.read()).group(1)


def test_startup_logs_the_version(server_factory):
    s = server_factory()
    line = (f"US0011: mod_upload_session (v{module_version()}) configured: "
            "1 server with UploadSession On")
    assert line in s.log_text(), s.log_tail()


def test_server_token_only_when_asked(server_factory):
    plain = server_factory(extra=["ServerTokens Full"])
    r = plain.client(plain.user_all).get(unique_ws("tok") + "/upload_sessions")
    check(r, 200)
    assert "mod_upload_session" not in r.headers["server"], r.headers["server"]

    token = server_factory(extra=["ServerTokens Full", "UploadSessionServerToken On"])
    r = token.client(token.user_all).get(unique_ws("tok") + "/upload_sessions")
    check(r, 200)
    assert f"mod_upload_session/{module_version()}" in r.headers["server"], r.headers["server"]


def test_server_token_belongs_to_the_main_server(server_factory):
    s = server_factory(start=False, extra=[
        "<VirtualHost 127.0.0.1:1>", "UploadSessionServerToken On", "</VirtualHost>"])
    rc, out = configtest(s)
    assert rc != 0, out
    assert "UploadSessionServerToken cannot occur within <VirtualHost> section" in out, out


def test_access_log_names_the_keys_user(server_factory):
    s = server_factory(start=False)
    access = os.path.join(s.dir, "access.log")
    s.extra += ['LogFormat "%u %>s %r" usertest', f'CustomLog "{access}" usertest']
    s.start()
    ws = unique_ws("who")
    check(s.client(s.user_all).get(ws + "/upload_sessions"), 200)
    check(s.client(s.user_all2).get(ws + "/upload_sessions?limit=1"), 200)
    s.stop()
    with open(access) as f:
        lines = f.read().splitlines()
    assert f"{s.user_all.user_id} 200 GET /api/v1/workspaces/{ws}/upload_sessions HTTP/1.1" in lines, lines
    assert f"{s.user_all2.user_id} 200 GET /api/v1/workspaces/{ws}/upload_sessions?limit=1 HTTP/1.1" \
        in lines, lines


def test_a_refused_key_is_logged_once_with_the_client_address_and_never_the_key(server_factory):
    s = server_factory()
    secret = "usk_wrong_" + "x" * 30
    client = s.client(headers={"Authorization": f"Bearer {secret}"})
    check(client.get(unique_ws("bad") + "/upload_sessions"), 401, INVALID_KEY)
    lines = [ln for ln in s.log_text().splitlines() if "US0012" in ln]
    assert len(lines) == 1, lines
    assert re.search(r"\[client 127\.0\.0\.1:\d+\] US0012: authentication failed: invalid API key$",
                     lines[0]), lines[0]
    assert secret not in s.log_text()
    # no key at all is not a failed authentication (health checks, browsers)
    check(s.client().get(unique_ws("none") + "/upload_sessions"), 401)
    assert len([ln for ln in s.log_text().splitlines() if "US0012" in ln]) == 1

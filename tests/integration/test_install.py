"""make install (issue #15 item 7): with DESTDIR and PREFIX it puts exactly
the module (apxs's module directory), the a2enmod files, the tools, the man
page and the reference documents in place, and what it installs works: the
module loads with the installed .load/.conf, the tool runs, the man page
renders."""

import os
import re
import subprocess

from us_testkit.server import REPO_ROOT, configtest_conf


def version():
    with open(os.path.join(REPO_ROOT, "include", "us_version.h")) as f:
        return re.search(r'#define US_VERSION "([^"]+)"', f.read()).group(1)


def make_install(destdir, *args):
    # a make of its own: not the sanitizer build a `make sanitize-test` run
    # would pass down through MAKEFLAGS
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    out = subprocess.run(["make", "-C", REPO_ROOT, "--no-print-directory", "install",
                          f"DESTDIR={destdir}", "SANITIZE=", *args],
                         capture_output=True, text=True, timeout=600, env=env)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    found = set()
    for root, _dirs, files in os.walk(destdir):
        for name in files:
            found.add(os.path.relpath(os.path.join(root, name), destdir))
    return found


def expected(prefix):
    p = prefix.lstrip("/")
    return {
        "usr/lib/apache2/modules/mod_upload_session.so",
        "etc/apache2/mods-available/upload_session.load",
        "etc/apache2/mods-available/upload_session.conf",
        f"{p}/bin/us-keygen",
        f"{p}/bin/us-s3sign",
        f"{p}/share/man/man1/us-keygen.1",
        f"{p}/share/doc/mod_upload_session/directives.md",
        f"{p}/share/doc/mod_upload_session/example-vhost.conf",
        f"{p}/share/doc/mod_upload_session/openapi.json",
    }


def test_make_install_default_prefix_file_list(tmp_path):
    assert make_install(tmp_path) == expected("/usr/local")


def test_make_install_with_prefix_installs_working_files(tmp_path):
    dest = str(tmp_path / "root")
    assert make_install(dest, "PREFIX=/usr") == expected("/usr")
    mode = lambda rel: os.stat(os.path.join(dest, rel)).st_mode & 0o777
    assert mode("usr/bin/us-keygen") == 0o755
    assert mode("usr/lib/apache2/modules/mod_upload_session.so") == 0o644
    assert mode("etc/apache2/mods-available/upload_session.conf") == 0o644

    # the installed tool makes a key line the module's format
    keys = tmp_path / "keys"
    out = subprocess.run([os.path.join(dest, "usr/bin/us-keygen"), "-f", str(keys),
                          "-g", "Ada", "-F", "Lovelace", "-w", "team-a"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert re.fullmatch(r"usk_[A-Za-z0-9_-]{43}\n", out.stdout)
    # sha256:user_id:given:family:grants:label:created:expires (no label, no expiry)
    assert re.fullmatch(r"[0-9a-f]{64}:[0-9a-f-]{36}:Ada:Lovelace:team-a::\d{8}T\d{6}Z:\n",
                        keys.read_text())
    assert os.stat(keys).st_mode & 0o777 == 0o600

    # the man page renders, with the version, documenting every option
    man = os.path.join(dest, "usr/share/man/man1/us-keygen.1")
    out = subprocess.run(["man", "-l", "-P", "cat", man], capture_output=True, text=True,
                         timeout=60, env={**os.environ, "MANWIDTH": "80"})
    assert out.returncode == 0, out.stderr
    assert f"mod_upload_session {version()}" in out.stdout
    for opt in ("-f keyfile", "-g given_name", "-F family_name", "-w workspaces", "-u user_id"):
        assert opt in out.stdout, opt

    # the installed .load names the installed module; with the .conf (all
    # defaults commented) it passes configtest
    load = open(os.path.join(dest, "etc/apache2/mods-available/upload_session.load")).read()
    assert "LoadModule upload_session_module /usr/lib/apache2/modules/mod_upload_session.so" in load
    conf = tmp_path / "httpd.conf"
    (tmp_path / "logs").mkdir()
    conf.write_text("\n".join([
        f'ServerRoot "{tmp_path}"', "ServerName 127.0.0.1", "Listen 127.0.0.1:1",
        "LoadModule mpm_event_module /usr/lib/apache2/modules/mod_mpm_event.so",
        "LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so",
        load.replace("/usr/lib/apache2/modules", os.path.join(dest, "usr/lib/apache2/modules")),
        f'Include "{dest}/etc/apache2/mods-available/upload_session.conf"', ""]))
    rc, out = configtest_conf(tmp_path, conf)
    assert rc == 0 and "Syntax OK" in out, out

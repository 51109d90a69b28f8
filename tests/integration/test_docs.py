"""The operator documentation against the module (issue #15 item 6): the
directive reference docs/directives.md and conf/upload_session.conf name
every directive the loaded module has (as `apache2 -L` lists them) and no
other, the defaults the conf file shows are the reference's, and the range
a numeric directive's syntax gives is the one configtest takes."""

import os
import re

import pytest

from us_testkit.server import REPO_ROOT, configtest

REFERENCE = os.path.join(REPO_ROOT, "docs", "directives.md")
CONF = os.path.join(REPO_ROOT, "conf", "upload_session.conf")
FIELDS = ("Description", "Syntax", "Default", "Context", "Module")


def module_directives(server_factory):
    """{name: help text} of the directives the built module registers."""
    s = server_factory(start=False)
    out = s._ctl("-L")
    assert out.returncode == 0, out.stderr
    found = {}
    lines = out.stdout.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"^(\S+) \(mod_upload_session\.c\)$", line)
        if m:
            found[m.group(1)] = lines[i + 1].strip()
    return found


def reference_sections():
    """{directive: section text} of docs/directives.md's '## Name' sections."""
    with open(REFERENCE) as f:
        text = f.read()
    parts = re.split(r"^## (\S+)\n", text, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2]))


def conf_lines():
    """{directive: [commented example lines]} of conf/upload_session.conf."""
    found = {}
    with open(CONF) as f:
        for line in f:
            m = re.match(r"^\s*#\s*(UploadSession\w*)(\s.*)?$", line)
            if m:
                found.setdefault(m.group(1), []).append(line.strip().lstrip("#").strip())
    return found


def test_the_reference_has_every_directive_of_the_module_and_no_other(server_factory):
    directives = module_directives(server_factory)
    assert len(directives) >= 25 and all(directives.values()), directives
    sections = reference_sections()
    assert sorted(sections) == sorted(directives), (
        f"missing: {sorted(set(directives) - set(sections))}, "
        f"unknown: {sorted(set(sections) - set(directives))}")
    for name, body in sections.items():
        for field in FIELDS:
            assert re.search(rf"^\| {field} \| \S", body, flags=re.M), (name, field)
        assert re.search(r"^\| Module \| mod_upload_session \|$", body, flags=re.M), name
        # an example: a fenced apache block using the directive
        example = re.search(r"```apache\n(.*?)```", body, flags=re.S)
        assert example and re.search(rf"^{name} \S", example.group(1), flags=re.M), name
        syntax = re.search(r"^\| Syntax \| (.*) \|$", body, flags=re.M).group(1)
        assert f"`{name} " in syntax, (name, syntax)


def test_the_conf_file_names_every_directive_with_the_reference_default(server_factory):
    directives = module_directives(server_factory)
    conf = conf_lines()
    assert sorted(conf) == sorted(directives), (
        f"missing: {sorted(set(directives) - set(conf))}, "
        f"unknown: {sorted(set(conf) - set(directives))}")
    # where the reference's default is a directive line, the conf shows that line
    for name, body in reference_sections().items():
        m = re.search(r"^\| Default \| `(.*)` \|$", body, flags=re.M)
        flag = "On\\|Off" in body  # the conf shows how to turn it on
        if m and m.group(1).startswith(name + " ") and not flag:
            assert m.group(1) in conf[name], (name, m.group(1), conf[name])


def test_the_conf_file_passes_configtest_when_included(server_factory):
    """Debian includes it from mods-enabled: as shipped (all commented) it
    must not change a working configuration."""
    s = server_factory(start=False, extra=[f'Include "{CONF}"'])
    out = s.configtest()
    assert out.returncode == 0, out.stderr
    assert "Syntax OK" in out.stderr


def test_the_readme_points_to_the_reference():
    with open(os.path.join(REPO_ROOT, "README.md")) as f:
        readme = f.read()
    assert "docs/directives.md" in readme


@pytest.mark.parametrize("name", ["UploadSessionBusyTimeout", "UploadSessionMaxFilesPerSession"])
def test_once_missing_directives_are_documented(name):
    assert name in reference_sections()
    assert name in conf_lines()


def numeric_directives():
    """{directive: (low, high)} of the reference's directives that take a
    number (N, SECONDS, MILLISECONDS); (None, None) when the syntax gives no
    range (low..high)."""
    found = {}
    for name, body in reference_sections().items():
        syntax = re.search(r"^\| Syntax \| (.*) \|$", body, flags=re.M).group(1)
        if re.search(rf"`{name} (N|SECONDS|MILLISECONDS)`", syntax):
            m = re.search(r"\((\d+)\.\.(\d+)\)", syntax)
            found[name] = (int(m.group(1)), int(m.group(2))) if m else (None, None)
    return found


def test_every_numeric_directive_documents_its_range():
    found = numeric_directives()
    assert len(found) >= 11, found
    assert not [n for n, r in found.items() if r == (None, None)], found


@pytest.mark.parametrize("name", sorted(numeric_directives()))
def test_the_documented_range_is_the_one_configtest_takes(server_factory, name):
    low, high = numeric_directives()[name]
    assert low is not None, f"{name}: no (low..high) in its syntax"
    s = server_factory(start=False)
    base = list(s.extra)
    for value, ok in ((low, True), (high, True), (low - 1, False), (high + 1, False)):
        s.extra = base + [f"{name} {value}"]
        s.write_config()
        rc, out = configtest(s)
        if ok:
            assert rc == 0 and "Syntax OK" in out, (name, value, out)
        else:
            assert rc != 0 and "Syntax OK" not in out, (name, value, out)
            assert re.search(rf"{name}: expects (a whole number|seconds) from {low} to "
                             rf"{high}, not '{value}'", out), (name, value, out)

"""The version has one place, US_VERSION in include/us_version.h (issue #15
item 7): the Debian changelog and CHANGELOG.md name the same one, and the
running module reports it; the LICENSE is the Apache License 2.0."""

import os
import re
import subprocess

from us_testkit.api import check
from us_testkit.server import REPO_ROOT


def us_version():
    with open(os.path.join(REPO_ROOT, "include", "us_version.h")) as f:
        found = re.findall(r'^#define US_VERSION "(\d+\.\d+\.\d+)"$', f.read(), flags=re.M)
    assert len(found) == 1, found
    return found[0]


def test_debian_changelog_names_the_version():
    out = subprocess.run(["dpkg-parsechangelog", "-l", os.path.join(REPO_ROOT, "debian", "changelog"),
                          "-S", "Version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    # a Debian revision (-N) may follow the upstream version
    assert re.fullmatch(re.escape(us_version()) + r"(-\d+)?", out.stdout.strip()), out.stdout


def test_changelog_md_starts_with_the_version():
    with open(os.path.join(REPO_ROOT, "CHANGELOG.md")) as f:
        headings = re.findall(r"^## \[([^\]]+)\]", f.read(), flags=re.M)
    assert headings and headings[0] == us_version(), headings


def test_no_other_file_spells_the_version():
    """Everything else takes it from include/us_version.h (the Makefile
    fills in @VERSION@): a second copy would drift."""
    out = subprocess.run(["git", "-C", REPO_ROOT, "grep", "-l", "-F", f'"{us_version()}"', "--",
                          ":!include/us_version.h", ":!tests", ":!CHANGELOG.md", ":!debian/changelog"],
                         capture_output=True, text=True, timeout=60)
    assert out.stdout == "", out.stdout


def test_the_module_reports_the_version(srv):
    assert f"US0011: mod_upload_session (v{us_version()}) configured" in srv.log_text()
    doc = check(srv.raw_client().get("/api/v1/openapi.json"), 200)
    assert doc["info"]["version"] == us_version()


def test_license_is_apache_2():
    with open(os.path.join(REPO_ROOT, "LICENSE")) as f:
        text = f.read()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text

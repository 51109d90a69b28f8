"""GET /api/v1/health (issue #15 item 1): for load balancers, no key and no
data; 200 while the store answers and the file storage can be written by
httpd's children, 503 with Retry-After (the reason in the error log) when
not, and 200 again once it can."""

import os
import pwd

import pytest

from us_testkit.api import check

OK = {"status": "ok"}
DOWN = {"status": "unavailable"}


@pytest.mark.parametrize("path", ["/api/v1/health", "/health"])
def test_health_needs_no_key_and_says_nothing_more(srv, path):
    c = srv.raw_client()
    check(c.get(path), 200, OK)
    r = c.head(path)
    assert r.status_code == 200 and r.content == b""
    r = c.post(path)
    check(r, 405, {"detail": "Method Not Allowed"})
    assert r.headers["allow"] == "GET, HEAD"
    # only the path itself: the server's other paths stay the server's
    r = c.get(path + "/x")
    assert r.status_code == 404
    if path == "/health":
        assert r.headers["content-type"].startswith("text/html"), r.headers


@pytest.mark.skipif(os.geteuid() != 0, reason="the children must run as another user than the files' owner")
def test_unwritable_storage_is_503_until_it_is_writable_again(server_factory):
    s = server_factory()
    c = s.raw_client()
    check(c.get("/api/v1/health"), 200, OK)
    files = os.path.join(s.dir, "state", "data", "files")
    st = os.stat(files)
    os.chown(files, 0, 0)
    os.chmod(files, 0o755)
    try:
        r = c.get("/api/v1/health")
        check(r, 503, DOWN)
        assert r.headers["retry-after"] == "1"
        assert "US0015: health: the file storage cannot be written" in s.log_text(), s.log_tail()
    finally:
        os.chown(files, st.st_uid, st.st_gid)
        os.chmod(files, st.st_mode & 0o7777)
    check(c.get("/api/v1/health"), 200, OK)
    assert pwd.getpwuid(st.st_uid).pw_name == "www-data"

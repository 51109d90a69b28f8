"""pytest fixtures for the mod_upload_session integration suite.

Fixtures
  shared_server   one started httpd per test module (MaxOpenSessions raised so
                  tests never hit the per-user limit); tests isolate themselves
                  with unique workspace names (us_testkit.api.unique_ws()).
                  A module can change its options by defining a module-scoped
                  fixture `shared_server_options` returning UploadServer kwargs.
  srv             the shared server for one test: after the test, error.log is
                  checked for unexpected error-level lines (declare expected
                  ones with srv.expect_log(regex)).
  api             httpx client of srv authenticated as srv.user_all ('*' grants).
  server_factory  make(**UploadServer kwargs, start=True) -> a dedicated server,
                  stopped, log-checked and removed after the test.

Files are in the posix storage, or with US_IT_STORAGE=s3 in the session's
private radosgw (us_testkit.radosgw.shared_info); tests marked posix_layout
read files on disk and are skipped then.

Run:  /usr/bin/python3 -m pytest -q tests/integration
"""

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from us_testkit.server import UploadServer, started  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line("markers", "posix_layout: reads the posix storage's files on disk; "
                            "skipped with US_IT_STORAGE=s3")


def pytest_collection_modifyitems(config, items):
    if os.environ.get("US_IT_STORAGE") == "s3":
        skip = pytest.mark.skip(reason="reads the posix storage's files on disk")
        for item in items:
            if "posix_layout" in item.keywords:
                item.add_marker(skip)


def _attach(node, server):
    lst = getattr(node, "_us_servers", None)
    if lst is None:
        lst = []
        node._us_servers = lst
    if server not in lst:
        lst.append(server)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for s in getattr(item, "_us_servers", []):
            rep.sections.append((f"httpd error.log tail ({s.dir}, port {s.port})",
                                 s.log_tail()))


@pytest.fixture(scope="module")
def shared_server_options():
    return {"max_open": 1000}


@pytest.fixture(scope="module")
def shared_server(shared_server_options):
    with started(UploadServer(**shared_server_options)) as server:
        yield server


@pytest.fixture
def srv(shared_server, request):
    _attach(request.node, shared_server)
    yield shared_server
    shared_server.close_clients()
    shared_server.check_log(f" (after {request.node.name})")


@pytest.fixture
def api(srv):
    return srv.client(srv.user_all)


@pytest.fixture
def server_factory(request):
    servers = []

    def make(start=True, **kwargs):
        s = UploadServer(**kwargs)
        servers.append(s)
        _attach(request.node, s)
        if start:
            s.start()
        return s

    yield make

    failures = []
    for s in servers:
        try:
            s.stop()
            s.check_log(f" (after {request.node.name})")
        except BaseException as e:  # pytest.fail raises OutcomeException
            failures.append(str(e))
        finally:
            s.cleanup()
    if failures:
        pytest.fail("\n\n".join(failures), pytrace=False)

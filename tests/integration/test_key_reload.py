"""Keys change without a restart (issue #15 item 5): each child looks at the
key file (one stat) at most every 2 s and re-reads it when its inode, size
or mtime changed; a file that does not parse leaves the last good keys in
force and is logged once (US1401), whatever the number of children."""

import threading
import time

from us_testkit.api import INVALID_KEY, check, unique_ws
from us_testkit.server import User

INTERVAL = 2.0   # US_KEYFILE_CHECK_INTERVAL
SETTLE = INTERVAL + 1.0


def status_of(s, user, ws):
    return s.client(user).get(ws + "/upload_sessions")


def wait_for(s, user, ws, status, timeout=10.0):
    """Seconds until user's request got status (fails after timeout)."""
    t0 = time.monotonic()
    while True:
        r = status_of(s, user, ws)
        if r.status_code == status:
            return time.monotonic() - t0
        assert time.monotonic() - t0 < timeout, f"still {r.status_code} after {timeout} s"
        time.sleep(0.1)


def all_answer(s, user, ws, status, body=None, n=20):
    for _ in range(n):
        r = status_of(s, user, ws)
        if body is None:
            check(r, status)
        else:
            check(r, status, body)


def test_add_and_revoke_without_restart(server_factory):
    s = server_factory()
    ws = unique_ws("reload")
    new = User("Katherine", "Johnson", "*")
    check(status_of(s, new, ws), 401, INVALID_KEY)
    pid = s.pid

    s.users.append(new)
    s.write_keys()
    took = wait_for(s, new, ws, 200)
    assert took < SETTLE, took
    time.sleep(SETTLE)
    # every child has looked again by now
    all_answer(s, new, ws, 200, {"data": [], "has_more": False, "total": 0})

    s.users.remove(new)
    s.write_keys()
    took = wait_for(s, new, ws, 401)
    assert took < SETTLE, took
    time.sleep(SETTLE)
    all_answer(s, new, ws, 401, INVALID_KEY)
    all_answer(s, s.user_all, ws, 200)
    assert s._read_pid() == pid  # no restart happened


def test_broken_file_keeps_the_last_good_keys(server_factory):
    s = server_factory()
    ws = unique_ws("broken")
    later = User("Dorothy", "Vaughan", "*")
    s.users.append(later)
    # the new user's line is valid, the next one is not: nothing of the file is taken
    s.write_keys(extra_lines=["this is not a key line"])
    s.expect_log(r"US1401: UploadSessionKeyFile .*: line \d+: expected 5 fields")
    time.sleep(SETTLE)
    for _ in range(3):
        all_answer(s, s.user_all, ws, 200)
        all_answer(s, later, ws, 401, INVALID_KEY)
        time.sleep(INTERVAL / 2)
    logged = [ln for ln in s.log_text().splitlines() if "US1401:" in ln]
    assert len(logged) == 1, logged
    assert "[upload_session:error]" in logged[0], logged[0]

    s.write_keys()  # fixed
    assert wait_for(s, later, ws, 200) < SETTLE
    time.sleep(SETTLE)
    all_answer(s, later, ws, 200)
    assert len([ln for ln in s.log_text().splitlines() if "US1401:" in ln]) == 1


def test_requests_during_reloads_never_fail(server_factory):
    s = server_factory()
    ws = unique_ws("hammer")
    toggled = User("Mary", "Jackson", "*")
    stop = threading.Event()
    seen = {"stable": {}, "toggled": {}}
    lock = threading.Lock()

    def hammer(user, kind):
        with s.client(user) as c:
            while not stop.is_set():
                r = c.get(ws + "/upload_sessions")
                with lock:
                    seen[kind][r.status_code] = seen[kind].get(r.status_code, 0) + 1
                if r.status_code == 401:
                    check(r, 401, INVALID_KEY)
                elif r.status_code == 200:
                    check(r, 200)

    threads = [threading.Thread(target=hammer, args=(u, k)) for u, k in
               [(s.user_all, "stable")] * 3 + [(toggled, "toggled")] * 3]
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + 12
        i = 0
        while time.monotonic() < deadline:
            # extra comment lines change the size too, as real edits do
            extra = [f"# rewrite {i}"] * (i % 3)
            if i % 2 == 0:
                s.users.append(toggled)
            else:
                s.users.remove(toggled)
            s.write_keys(extra_lines=extra)
            i += 1
            time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert set(seen["stable"]) == {200}, seen
    assert set(seen["toggled"]) <= {200, 401}, seen
    assert seen["toggled"].get(200) and seen["toggled"].get(401), seen

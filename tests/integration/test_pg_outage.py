"""A PostgreSQL outage of a few seconds, idle but for children recycled
(MaxConnectionsPerChild) so that some start while the database is down:
no error-level line, each process says a refused connection once (US1111,
then at most once per 30 s with a count), each worker of a child started
in the outage once (US1041, US1307, at warn), and so does the webhook
worker of a child whose connection the outage broke (US1307, not US1305
once a second); once it is back, requests and ingestion work again."""

import collections
import re
import time

import pytest

from us_testkit import pg
from us_testkit.api import close_session, list_sessions, unique_ws
from us_testkit.ingest import new_session, upload_all, wait_ingested
from us_testkit.procs import children_of

pytestmark = pytest.mark.skipif(pg.store_driver() != "pgsql",
                                reason="a PostgreSQL outage (US_IT_STORE=pgsql)")

LINE = re.compile(r"\[upload_session:(\w+)\] \[pid (\d+):tid (\d+)\].*?(US\d{4})")


def test_outage_is_said_once_per_process_and_worker(server_factory):
    s = server_factory(start=False, max_open=1000)
    s.add_webhooks(["http://127.0.0.1:9/hook"])
    s.extra.append("MaxConnectionsPerChild 3")
    s.start()
    ws = unique_ws("pg-down")
    before = set(children_of(s.pid))
    off = len(s.log_text())
    pg.cluster().pause()
    try:
        for _ in range(12):  # new connections: children recycled during the outage
            r = s.client(s.user_all, timeout=5).get(f"{ws}/upload_sessions")
            assert r.status_code == 503, r.text
            assert r.json() == {"detail": "The service is busy. Try again in a moment."}, r.text
            s.close_clients()
        time.sleep(1.5)  # the workers that lost their connections try again every second
        born = set(children_of(s.pid)) - before
    finally:
        pg.cluster().resume()
    text = s.log_text()[off:]
    lines = LINE.findall(text)
    assert born, "no child started during the outage"
    assert not [l for l in lines if l[0] == "error"], text
    per_process = collections.Counter((pid, no) for _, pid, _, no in lines if no == "US1111")
    per_worker = collections.Counter((tid, no) for _, _, tid, no in lines
                                     if no in ("US1041", "US1307"))
    assert per_process and max(per_process.values()) == 1, per_process
    assert per_worker and max(per_worker.values()) == 1, per_worker
    # back: a session is ingested
    api = s.client(s.user_all)
    sid, cfg = new_session(api, ws)
    upload_all(cfg, [("a.bin", b"x")])
    close_session(api, ws, sid)
    st = wait_ingested(api, ws, sid, 1, timeout=30)
    assert st["ingestion_status"]["finished_files"] == 1, st


def test_webhook_workers_say_an_outage_once(server_factory):
    """Children that keep running through a 6 s outage: each webhook worker,
    its connection open, says it once at warn (US1307) and its end once at
    info (US1308); its failed claims, once a second, only at debug (US1305)."""
    s = server_factory(start=False)
    s.add_webhooks(["http://127.0.0.1:9/hook"])
    s.start()
    time.sleep(1.5)  # every worker has claimed (nothing) once
    off = len(s.log_text())
    pg.cluster().pause()
    try:
        time.sleep(6)
    finally:
        pg.cluster().resume()
    time.sleep(2.5)
    text = s.log_text()[off:]
    lines = LINE.findall(text)
    assert not [l for l in lines if l[0] == "error"], text
    said = collections.Counter((lvl, tid, no) for lvl, _, tid, no in lines
                               if no in ("US1305", "US1307", "US1308"))
    down = [k for k in said if k[0] == "warn" and k[2] == "US1307"]
    back = [k for k in said if k[0] == "info" and k[2] == "US1308"]
    assert down and set(said.values()) == {1}, said
    assert not [k for k in said if k[2] == "US1305"], said  # debug only
    assert {t for _, t, _ in back} == {t for _, t, _ in down}, said
    listed = list_sessions(s.client(s.user_all), unique_ws("pg-back"))  # checks the 200
    assert listed["data"] == [] and listed["total"] == 0, listed

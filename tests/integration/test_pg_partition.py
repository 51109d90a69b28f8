"""A network partition between httpd and PostgreSQL while a request's
statement is in flight: the node notices within about 30 s (the TCP
keepalives and tcp_user_timeout the module adds to libpq's conninfo,
us_pg_conninfo.h) and answers 503 with Retry-After, where it waited for
hours (the kernel's defaults: the first keepalive probe after 2 h); once
the partition heals, requests succeed again.

The database is reached through a relay whose listening socket lives in a
network namespace of the test's own, over a veth pair (us_testkit.netns):
the partition sets the pair's far end down, so nothing answers, not even a
reset. A relay on loopback alone cannot show this (its kernel keeps
acknowledging). Nothing machine-wide, and never lo, is touched."""

import re
import threading
import time

import pytest

from us_testkit import pg
from us_testkit.api import check, create_session, session_path, unique_ws
from us_testkit.ingest import make_server, module_so  # noqa: F401
from us_testkit.netns import NetLink
from us_testkit.slowlink import SlowLink

pytestmark = pytest.mark.skipif(pg.store_driver() != "pgsql",
                                reason="a PostgreSQL partition (US_IT_STORE=pgsql)")

BUSY = {"detail": "The service is busy. Try again in a moment."}
NOTICED_WITHIN = 45  # s: tcp_user_timeout (30 s), a reconnection refused, slack
# the Bind of a session read: the statement the partition catches in flight
GET_STATEMENT = b"\x00us_pg_session_get\x00"


@pytest.fixture
def netlink():
    why = NetLink.unavailable()
    if why:
        pytest.skip(why)
    link = NetLink()
    try:
        yield link
    finally:
        link.close()


def test_a_partition_during_a_statement_is_503_within_the_bound(netlink, make_server):
    # netlink first: its teardown then comes after the server's stop, whose
    # workers would otherwise reconnect to an address gone with the namespace
    srv = make_server(start=False, store="pgsql")
    port = int(re.search(r"\bport=(\d+)", srv.pg_conninfo).group(1))
    relay = SlowLink(("127.0.0.1", port), 0, GET_STATEMENT, listener=netlink.listener())
    try:
        srv.pg_conninfo = re.sub(r"\bhost=\S+ port=\d+", f"host={relay.host} port={relay.port}",
                                 srv.pg_conninfo)
        assert f"host={netlink.addr} " in srv.pg_conninfo, srv.pg_conninfo
        srv.start()
        api = srv.client(srv.user_all, timeout=600)
        ws = unique_ws("pg-partition")
        sid = create_session(api, ws)["session_id"]
        got = check(api.get(session_path(ws, sid)), 200)
        assert got["status"] == "OPEN", got

        # a read whose statement the relay holds for a moment: the partition
        # comes while it is on its way; its answer never arrives
        # (longer than starting `ip` under load, whatever it costs: its
        # answer is dropped by the partition anyway)
        relay.delay, held = 5, relay.delayed
        out = {}

        def read():
            t0 = time.monotonic()
            try:
                out["r"] = api.get(session_path(ws, sid))
            except Exception as e:  # noqa: BLE001 - reported below
                out["error"] = e
            out["took"] = time.monotonic() - t0

        t = threading.Thread(target=read, daemon=True)
        t.start()
        deadline = time.monotonic() + 10
        while relay.delayed == held and time.monotonic() < deadline:
            time.sleep(0.01)
        assert relay.delayed > held, "the read's statement never reached the relay"
        netlink.partition()
        t.join(NOTICED_WITHIN + 30)
        took = out.get("took")
        assert "r" in out, f"no answer within {NOTICED_WITHIN + 30} s: {out}"
        r = out["r"]
        check(r, 503, BUSY)
        assert r.headers.get("Retry-After") == "1", r.headers
        print(f"partition noticed after {took:.1f} s")
        assert took < NOTICED_WITHIN, took

        netlink.heal()
        relay.delay = 0
        deadline = time.monotonic() + 20
        while True:  # a connection opened again, at once or after a refusal
            r = api.get(session_path(ws, sid))
            if r.status_code != 503 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        got = check(r, 200)
        assert got["status"] == "OPEN" and got["session_id"] == sid, got
        check(api.post(f"{ws}/upload_sessions", json={}), 201)
    finally:
        netlink.heal()
        relay.close()

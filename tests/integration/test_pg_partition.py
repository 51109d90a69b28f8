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
# the Bind of the parent's expiry sweep (its first statement, the lock)
SWEEP_STATEMENT = b"\x00us_pg_sweep_lock\x00"
STOPPED_WITHIN = 60  # s: the sweep's statement (30 s), the children's reclaim, slack


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


def relayed_server(make_server, netlink, match, **kw):
    """A PostgreSQL server, not started, reaching its database through a
    relay in netlink's namespace that holds what contains match."""
    srv = make_server(start=False, store="pgsql", **kw)
    port = int(re.search(r"\bport=(\d+)", srv.pg_conninfo).group(1))
    relay = SlowLink(("127.0.0.1", port), 0, match, listener=netlink.listener())
    srv.pg_conninfo = re.sub(r"\bhost=\S+ port=\d+", f"host={relay.host} port={relay.port}",
                             srv.pg_conninfo)
    assert f"host={netlink.addr} " in srv.pg_conninfo, srv.pg_conninfo
    return srv, relay


def held_once_more(relay, held, within=10):
    deadline = time.monotonic() + within
    while relay.delayed == held and time.monotonic() < deadline:
        time.sleep(0.01)
    return relay.delayed > held


def test_a_partition_during_a_statement_is_503_within_the_bound(netlink, make_server):
    # netlink first: its teardown then comes after the server's stop, whose
    # workers would otherwise reconnect to an address gone with the namespace
    srv, relay = relayed_server(make_server, netlink, GET_STATEMENT)
    try:
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
        assert held_once_more(relay, held), "the read's statement never reached the relay"
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


def test_a_partition_during_the_parents_sweep_does_not_hold_a_stop(netlink, make_server):
    """The parent's monitor hook runs the expiry sweep: a statement of it
    caught by the partition holds the parent, which reaps no child and
    handles no signal meanwhile. It is given up within tcp_user_timeout, so
    `apachectl stop` takes effect within the bound (it waited for the
    kernel's retransmissions, about 15 min, before). The children, whose
    ingest workers were caught too, then exit without being killed: each
    worker stops between the steps of its sweeps (each step would wait for a
    connection attempt of its own)."""
    srv, relay = relayed_server(make_server, netlink, SWEEP_STATEMENT,
                                extra=["UploadSessionSweepInterval 1"])
    try:
        srv.start()
        api = srv.client(srv.user_all)
        check(api.post(f"{unique_ws('pg-partition')}/upload_sessions", json={}), 201)
        relay.delay, held = 5, relay.delayed
        assert held_once_more(relay, held, within=15), "no sweep reached the relay"
        netlink.partition()
        # the parent's patience with its children (warnings); its SIGKILL of
        # one (AH00046, an error) fails the test: a stopping child's
        # workers start no further step against the unreachable store
        srv.expect_log(r"AH00045|US1122|US0019")
        t0 = time.monotonic()
        srv.stop(timeout=STOPPED_WITHIN + 30)
        took = time.monotonic() - t0
        print(f"stopped {took:.1f} s after apachectl stop")
        assert took < STOPPED_WITHIN, took
        assert not srv.running
    finally:
        netlink.heal()
        relay.close()

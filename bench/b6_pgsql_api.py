"""Benchmark 6 (issue 12): API throughput on PostgreSQL vs SQLite, the same
endpoints on servers of the same configuration, one per store, in one run:
SQLite; PostgreSQL over TCP on loopback (as a node reaches a database on
another machine); and PostgreSQL over its Unix socket (conninfo
host=<socket directory>: how libpq connects to a database on the same
machine by default). Each endpoint runs mirrored cycles (pgsql,
pgsql-unix, sqlite, sqlite, pgsql-unix, pgsql; 2 s wrk legs, 16
connections), so that drifts of machine load hit every side alike. Before
its first cycle each endpoint runs one uncounted leg per side (WARM_S, same
connections): a child's store connections open at the first concurrent
requests, and on PostgreSQL each is a new backend that prepares its
statements: a first second of status ran at 0.53-0.71 of the legs after it
on PostgreSQL, 0.81-1.0 on SQLite, and 9 cycles' ratios averaged 0.66
without the warm-up, 0.72 with it (BENCHMARKS.md). The steady state is what
a server that runs for days serves.

  status  GET  /upload_sessions/{id}
  list    GET  /upload_sessions?limit=10 (12 sessions in the workspace)
  create  POST /upload_sessions  body {}
  close   PUT  /upload_sessions/{id} body {} on a fresh OPEN session per
          request (bench/wrk/close.lua walks ids made before any close leg;
          the sessions the create legs made, topped up as benchmark 1 does)

Targets (pgsql/sqlite): status and list >= 0.7, create and close >= 0.5
(issue 12), for each transport. The machine's load average is printed
beside each figure. PostgreSQL is the testkit's private cluster
(tests/us_testkit/pg.py), both PostgreSQL servers on the same cluster.
"""

import os

import common as C
from us_testkit import pg
from b1_api import CloseIds, close_pool, combine, run_leg

LEG_S = 2
WARM_S = 1
CYCLES = 1 if C.QUICK else 3
CONNS = 16
TARGETS = {"status": 0.7, "list": 0.7, "create": 0.5, "close": 0.5}
CLOSE_PREFIX = "/api/v1/workspaces/b6-create/upload_sessions/"


def load():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def prepare(srv):
    api = srv.api
    sid = srv.create_session("b6-status")["session_id"]
    for _ in range(12):
        srv.create_session("b6-list")
    return {
        "status": f"{api}b6-status/upload_sessions/{sid}",
        "list": f"{api}b6-list/upload_sessions?limit=10",
        "create": f"{api}b6-create/upload_sessions",
        "close": f"{srv.base}/",  # close.lua builds the paths
    }


SIDES = ("pgsql", "pgsql-unix", "sqlite")
PG_SIDES = ("pgsql", "pgsql-unix")


def unix_server():
    """A PostgreSQL server whose store connects over the cluster's Unix socket."""
    cl = pg.cluster()
    os.chmod(cl.dir, 0o755)  # the httpd user reaches the socket directory
    srv = C.BenchServer(store="pgsql")
    assert "host=127.0.0.1" in srv.pg_conninfo, srv.pg_conninfo
    srv.pg_conninfo = srv.pg_conninfo.replace("host=127.0.0.1", f"host={cl.dir}/sock")
    return srv


def main():
    srvs = {"pgsql": C.BenchServer(store="pgsql"), "pgsql-unix": unix_server(),
            "sqlite": C.BenchServer(store="sqlite3")}
    try:
        urls = {}
        for name, srv in srvs.items():
            srv.start()
            urls[name] = prepare(srv)
        rates, ids = {}, {}
        for endpoint in ("status", "list", "create", "close"):
            script = {"create": "create.lua", "close": "close.lua"}.get(endpoint, "plain.lua")
            if endpoint == "close":
                for side, srv in srvs.items():
                    # closes could run at 3x the create rate: enough for every close leg
                    want = int(3 * rates[side] * LEG_S * 2 * CYCLES) + 500
                    close_pool(srv, urls[side]["create"], f"Authorization: Bearer {srv.key}",
                               min(want, 8000 if C.QUICK else 20000), rates[side], "b6-create")
                    ids[side] = CloseIds(srv, "b6-create", os.path.join(srv.dir, "close-ids.txt"))
                    C.log(f"close pool ({side}): {len(ids[side].ids)} OPEN sessions")
            legs = {side: [] for side in SIDES}
            cycle_ratios = {side: [] for side in PG_SIDES}
            if endpoint in ("status", "list"):
                # create and close change the store: their warm-up would be
                # the status and list legs before them
                for side, srv in srvs.items():
                    run_leg(srv, urls[side][endpoint], script, WARM_S, CONNS,
                            [f"Authorization: Bearer {srv.key}"])
            la = load()
            order = SIDES + SIDES[::-1]
            for cycle in range(CYCLES):
                C.wait_quiet()
                cyc = {side: [] for side in SIDES}
                for k, side in enumerate(order):
                    srv = srvs[side]
                    args = ()
                    if endpoint == "close":
                        # the side's pool split evenly over its close legs left
                        left = 2 * CYCLES - (2 * cycle + (k >= len(SIDES)))
                        ids[side].take((len(ids[side].ids) - ids[side].pos) // max(left, 1))
                        args = (ids[side].path, CLOSE_PREFIX, 2)
                    cyc[side].append(run_leg(srv, urls[side][endpoint], script, LEG_S, CONNS,
                                             [f"Authorization: Bearer {srv.key}"], args))
                b = combine(cyc["sqlite"])
                for side in PG_SIDES:
                    a = combine(cyc[side])
                    if b["rps"] > 0:
                        cycle_ratios[side].append(round(a["rps"] / b["rps"], 3))
                for side in legs:
                    legs[side] += cyc[side]
            b = combine(legs["sqlite"])
            if endpoint == "create":
                rates = {side: combine(legs[side])["rps"] for side in SIDES}
            for side in PG_SIDES:
                o = combine(legs[side])
                note = f"per-cycle ratios {cycle_ratios[side]}; load average {la}"
                if o["errors"] or b["errors"]:
                    note += f"; errors {side} {o['errors']} sqlite {b['errors']}"
                how = "" if side == "pgsql" else " (Unix socket)"
                C.record("6", f"{endpoint} c{CONNS} pgsql/sqlite{how}", o["rps"], b["rps"],
                         unit="req/s", target=TARGETS[endpoint], note=note)
    finally:
        for srv in srvs.values():
            srv.stop()
            srv.cleanup()


if __name__ == "__main__":
    main()

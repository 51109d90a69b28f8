"""Benchmark 6 (issue 12): API throughput on PostgreSQL vs SQLite, the same
endpoints on two servers of the same configuration, one per store, in one
run. Each endpoint runs ABBA cycles (pgsql, sqlite, sqlite, pgsql; 2 s wrk
legs, 16 connections), so that drifts of machine load hit both sides alike.

  status  GET  /upload_sessions/{id}
  list    GET  /upload_sessions?limit=10 (12 sessions in the workspace)
  create  POST /upload_sessions  body {}

Targets (pgsql/sqlite): status and list >= 0.7, create >= 0.5 (issue 12).
PostgreSQL is the testkit's private cluster (tests/us_testkit/pg.py).
"""

import common as C
from b1_api import combine, run_leg

LEG_S = 2
CYCLES = 1 if C.QUICK else 3
CONNS = 16
TARGETS = {"status": 0.7, "list": 0.7, "create": 0.5}


def prepare(srv):
    api = srv.api
    sid = srv.create_session("b6-status")["session_id"]
    for _ in range(12):
        srv.create_session("b6-list")
    return {
        "status": f"{api}b6-status/upload_sessions/{sid}",
        "list": f"{api}b6-list/upload_sessions?limit=10",
        "create": f"{api}b6-create/upload_sessions",
    }


def main():
    srvs = {"pgsql": C.BenchServer(store="pgsql"), "sqlite": C.BenchServer(store="sqlite3")}
    try:
        urls = {}
        for name, srv in srvs.items():
            srv.start()
            urls[name] = prepare(srv)
        for endpoint in ("status", "list", "create"):
            script = "create.lua" if endpoint == "create" else "plain.lua"
            legs = {"pgsql": [], "sqlite": []}
            cycle_ratios = []
            for _ in range(CYCLES):
                C.wait_quiet()
                cyc = {"pgsql": [], "sqlite": []}
                for side in ("pgsql", "sqlite", "sqlite", "pgsql"):
                    srv = srvs[side]
                    cyc[side].append(run_leg(srv, urls[side][endpoint], script, LEG_S, CONNS,
                                             [f"Authorization: Bearer {srv.key}"]))
                a, b = combine(cyc["pgsql"]), combine(cyc["sqlite"])
                if b["rps"] > 0:
                    cycle_ratios.append(round(a["rps"] / b["rps"], 3))
                for side in legs:
                    legs[side] += cyc[side]
            o, b = combine(legs["pgsql"]), combine(legs["sqlite"])
            note = f"per-cycle ratios {cycle_ratios}"
            if o["errors"] or b["errors"]:
                note += f"; errors pgsql {o['errors']} sqlite {b['errors']}"
            C.record("6", f"{endpoint} c{CONNS} pgsql/sqlite", o["rps"], b["rps"], unit="req/s",
                     target=TARGETS[endpoint], note=note)
    finally:
        for srv in srvs.values():
            srv.stop()
            srv.cleanup()


if __name__ == "__main__":
    main()

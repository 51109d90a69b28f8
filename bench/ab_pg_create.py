"""A/B of module builds on PostgreSQL session creates (not part of `make bench`).

    python3 bench/ab_pg_create.py A.so B.so ...

One server per build on the testkit's PostgreSQL cluster (one database
each), all running at once. ROUNDS rounds of create legs, one per build,
the order reversed every other round (ABBA...), each leg LEG_S seconds of
wrk create.lua at CONNS connections (one user, one workspace: b6's create
leg). Prints each leg (creates/s, httpd and PostgreSQL CPU per create, the
machine's other load) and each build's medians.
Env: ROUNDS (default 6), LEG_S (default 2), CONNS (default 16).
"""

import os
import statistics

import common as C
from us_testkit import pg

ROUNDS = int(os.environ.get("ROUNDS", "6"))
LEG_S = int(os.environ.get("LEG_S", "2"))
CONNS = int(os.environ.get("CONNS", "16"))
WS = "ab-pg-create"


def postgres_cpu_s(cl):
    """CPU seconds of the cluster's postmaster and its backends so far."""
    with open(os.path.join(cl.dir, "data", "postmaster.pid")) as f:
        top = int(f.readline())
    pids = [top]
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open(f"/proc/{p}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == top:
                        pids.append(int(p))
            except (OSError, ValueError, IndexError):
                pass
    return sum(C.proc_cpu_s(p) for p in pids)


def start(so):
    C.MODULE_SO = so
    srv = C.BenchServer(store="pgsql")
    srv.start()
    return srv, f"Authorization: Bearer {srv.key}"


def leg(cl, srv, auth):
    C.wait_quiet(3)
    pg0 = postgres_cpu_s(cl)
    with C.CpuMeter(srv) as m:
        r = C.wrk(f"{srv.api}{WS}/upload_sessions", "create.lua", LEG_S, CONNS, headers=[auth])
    pg1 = postgres_cpu_s(cl)
    n = r["requests"]
    errs = sum(r.get(k) or 0 for k in ("errors_status", "errors_connect", "errors_read",
                                       "errors_write", "errors_timeout"))
    if errs:
        raise RuntimeError(f"create leg: {errs} errors")
    return n / r["duration_s"], 1e6 * m.httpd_s / n, 1e6 * (pg1 - pg0) / n, m.foreign_pct


def main():
    variants = C.ab_variants(__doc__)
    cl = pg.cluster()
    servers = {}
    try:
        res = C.ab_start(servers, variants, start)
        for rnd, v in C.ab_order(variants, ROUNDS):
            rate, cpu, pgcpu, foreign = leg(cl, *servers[v])
            res[v].append((rate, cpu, pgcpu))
            print(f"round {rnd} {v}: {rate:.0f} creates/s, httpd {cpu:.0f} us/create, "
                  f"postgres {pgcpu:.0f} us/create, other load {foreign:.0f} %", flush=True)
        for v in variants:
            rates, cpus, pgs = zip(*res[v])
            print(f"median {v}: {statistics.median(rates):.0f} creates/s, httpd "
                  f"{statistics.median(cpus):.0f} us/create, postgres "
                  f"{statistics.median(pgs):.0f} us/create", flush=True)
    finally:
        for srv, _ in servers.values():
            srv.stop()
            srv.cleanup()


if __name__ == "__main__":
    main()

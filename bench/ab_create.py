"""A/B of module builds on benchmark 1's create leg (not part of `make bench`).

    python3 bench/ab_create.py A.so B.so ...

One server per build, all running at once (bench/common.py's BenchServer,
MPM profile MPM, access log on, SQLite store). ROUNDS rounds of create legs,
one per build, the order reversed every other round (ABBA...), each leg
LEG_S seconds of wrk create.lua at CONNS connections. httpd's CPU (parent
and children, /proc) divided by the leg's creates is the CPU per create.
Prints each leg (creates/s, httpd us/create, the machine's other load),
then each build's medians. A leg with any non-201 answer fails the run.
Env: ROUNDS (default 6), LEG_S (default 3), CONNS (default 16), MPM
(default debian).
"""

import os
import statistics

import common as C

ROUNDS = int(os.environ.get("ROUNDS", "6"))
LEG_S = int(os.environ.get("LEG_S", "3"))
CONNS = int(os.environ.get("CONNS", "16"))
MPM = os.environ.get("MPM", "debian")
WS = "ab-create"


def start(so):
    C.MODULE_SO = so
    srv = C.BenchServer(mpm=MPM, access_log=True)
    srv.start()
    return srv, f"Authorization: Bearer {srv.key}"


def leg(srv, auth):
    C.wait_quiet(3)
    load = os.getloadavg()[0]
    with C.CpuMeter(srv) as m:
        r = C.wrk(f"{srv.api}{WS}/upload_sessions", "create.lua", LEG_S, CONNS, headers=[auth])
    bad = r["errors_status"] + r["errors_connect"] + r["errors_read"] + r["errors_timeout"]
    if bad or not r["requests"]:
        raise RuntimeError(f"create leg: {r['requests']} requests, {bad} errors: {r}")
    return (r["requests"] / r["duration_s"], 1e6 * m.httpd_s / r["requests"], m.foreign_pct,
            load, r["requests"], r["lat_p50_us"], r["lat_p99_us"], m.busy_pct)


def main():
    variants = C.ab_variants(__doc__)
    servers = {}
    try:
        res = C.ab_start(servers, variants, start)
        for rnd, v in C.ab_order(variants, ROUNDS):
            rate, cpu, foreign, load, n, p50, p99, busy = leg(*servers[v])
            res[v].append((rate, cpu))
            print(f"round {rnd} {os.path.basename(v)}: {rate:.0f} creates/s, httpd "
                  f"{cpu:.0f} us/create ({n} creates), p50 {p50 / 1000:.1f} ms "
                  f"p99 {p99 / 1000:.1f} ms, machine busy {busy:.0f}%, other load "
                  f"{foreign:.0f}%, loadavg {load:.2f}", flush=True)
        for v, xs in res.items():
            print(f"{os.path.basename(v)}: median {statistics.median(x[0] for x in xs):.0f} "
                  f"creates/s, {statistics.median(x[1] for x in xs):.0f} us/create; "
                  f"legs {[round(x[0]) for x in xs]} / {[round(x[1]) for x in xs]}")
    finally:
        for srv, _ in servers.values():
            srv.cleanup()


if __name__ == "__main__":
    C.main_guard(main)

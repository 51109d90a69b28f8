"""A/B of module builds on benchmark 1's close leg (not part of `make bench`).

    python3 bench/ab_close.py A.so B.so ...

One server per build, all running at once (bench/common.py's BenchServer,
MPM profile MPM, access log on). Each first gets a pool of OPEN sessions
without files (wrk create.lua, 16 connections); then ROUNDS rounds of close
legs, one per build, the order reversed every other round (ABBA...), each
leg LEG_S seconds of wrk close.lua at CONNS connections on ids no other leg
closes. A leg's ids outlast it, so every request it sends is a close and
httpd's CPU (parent and children, /proc) divided by its 204s is the CPU per
close. Prints each leg (closes/s, httpd us/close, the machine's other load),
then each build's medians (of the legs not profiled). (wrk's latencies count its filler requests too:
none here, as the ids outlast the leg.)
Env: ROUNDS (default 4), LEG_S (default 2), CONNS (default 16), MPM (default
debian), STORE (sqlite3 or pgsql, default the testkit's US_IT_STORE: on
pgsql each server has a database of its own on one private PostgreSQL,
whose backends' CPU counts as other load), POOL_S (seconds of creating per
server, default 12); PERF=1 also
records each build's first leg with `perf record -g` on its children and
prints the top symbols (self), the files kept under the server directory;
STRACE=1 instead counts each build's first leg's system calls per close
(`strace -c -f` of the children). Legs recorded either way are profiles,
slowed by the tool, not figures to compare.
"""

import os
import signal
import statistics
import subprocess
import time

import common as C
from b11_sync_counts import parse_strace_c

ROUNDS = int(os.environ.get("ROUNDS", "4"))
LEG_S = int(os.environ.get("LEG_S", "2"))
CONNS = int(os.environ.get("CONNS", "16"))
MPM = os.environ.get("MPM", "debian")
STORE = os.environ.get("STORE") or None  # None: the testkit's US_IT_STORE
POOL_S = int(os.environ.get("POOL_S", "12"))
PERF = os.environ.get("PERF") == "1"
STRACE = os.environ.get("STRACE") == "1"
WS = "ab-close"


def start(so):
    C.MODULE_SO = so
    srv = C.BenchServer(mpm=MPM, access_log=True, store=STORE)
    srv.start()
    auth = f"Authorization: Bearer {srv.key}"
    r = C.wrk(f"{srv.api}{WS}/upload_sessions", "create.lua", POOL_S, 16, headers=[auth])
    ids = srv.open_session_ids(WS)
    C.log(f"{os.path.basename(so)}: {len(ids)} OPEN sessions "
          f"({r['requests'] / r['duration_s']:.0f} creates/s)")
    return srv, auth, ids


def perf_start(srv, tag):
    out = os.path.join(srv.dir, f"perf-{tag}.data")
    pids = ",".join(str(p) for p in srv.children())
    return out, subprocess.Popen(["perf", "record", "-g", "-q", "-o", out, "-p", pids],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def perf_report(out, proc, n=30):
    proc.send_signal(signal.SIGINT)
    proc.wait(60)
    rep = subprocess.run(["perf", "report", "-i", out, "--no-children", "--sort", "dso,sym",
                          "--stdio", "-g", "none", "--percent-limit", "0.7"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout
    rows = [l for l in rep.splitlines() if l.strip() and not l.startswith("#")]
    print("\n".join(rows[:n]), flush=True)


def strace_start(srv, tag):
    out = os.path.join(srv.dir, f"strace-{tag}.txt")
    cmd = ["strace", "-c", "-f", "-o", out]
    for pid in srv.children():
        cmd += ["-p", str(pid)]
    proc = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # attached to every thread
    return out, proc


def strace_report(out, proc, closes):
    time.sleep(0.3)  # the last WAL syncs
    proc.send_signal(signal.SIGINT)
    proc.wait(60)
    with open(out) as f:
        calls = parse_strace_c(f.read())
    total = calls.pop("total", sum(calls.values()))
    top = sorted(calls.items(), key=lambda kv: -kv[1])[:16]
    print(f"--- strace: system calls per close ({closes} closes): all {total / closes:.1f}; " +
          ", ".join(f"{k} {v / closes:.2f}" for k, v in top), flush=True)


def leg(srv, auth, ids, tag, perf=False):
    path = os.path.join(srv.dir, f"ids-{tag}.txt")
    with open(path, "w") as f:
        f.write("\n".join(ids) + "\n")
    C.wait_quiet(3)
    load = os.getloadavg()[0]
    rec = perf_start(srv, tag) if perf and PERF else None
    trace = strace_start(srv, tag) if perf and STRACE else None
    with C.CpuMeter(srv) as m:
        r = C.wrk(f"{srv.base}/", "close.lua", LEG_S, CONNS, headers=[auth],
                  args=(path, f"/api/v1/workspaces/{WS}/upload_sessions/", 2))
    if rec:
        print(f"--- perf, leg {tag}: top symbols (self) ---")
        perf_report(*rec)
    if trace:
        strace_report(*trace, r["put_ok"])
    if r["put_err"]:
        raise RuntimeError(f"leg {tag}: {r['put_err']} closes failed: {r['err_codes']}")
    # ids that ran out: the closes up to the last one answered (the CPU
    # then includes the fillers: marked)
    rate = r["put_ok"] / (r["put_span_s"] if r["exhausted"] else r["duration_s"])
    cpu = 1e6 * m.httpd_s / r["put_ok"]
    return (rate, cpu, m.foreign_pct, load, r["put_ok"], r["lat_p50_us"], r["lat_p99_us"],
            m.busy_pct, bool(r["exhausted"]))


def main():
    variants = C.ab_variants(__doc__)
    servers = {}
    try:
        res = C.ab_start(servers, variants, start)
        per_leg = min(len(ids) for _, _, ids in servers.values()) // ROUNDS
        for rnd, v in C.ab_order(variants, ROUNDS):
            srv, auth, ids = servers[v]
            profiled = rnd == 0 and (PERF or STRACE)
            rate, cpu, foreign, load, n, p50, p99, busy, ran_out = leg(
                srv, auth, ids[rnd * per_leg:(rnd + 1) * per_leg], f"r{rnd}", perf=profiled)
            if not profiled:
                res[v].append((rate, cpu))
            print(f"round {rnd} {os.path.basename(v)}{' (profiled)' if profiled else ''}: "
                  f"{rate:.0f} closes/s, httpd {cpu:.0f} us/close"
                  f"{' (ids ran out: incl. fillers)' if ran_out else ''} ({n} closes), "
                  f"p50 {p50 / 1000:.1f} ms p99 {p99 / 1000:.1f} ms, "
                  f"machine busy {busy:.0f}%, other load {foreign:.0f}%, "
                  f"loadavg {load:.2f}", flush=True)
        for v, xs in res.items():
            print(f"{os.path.basename(v)}: median {statistics.median(x[0] for x in xs):.0f} "
                  f"closes/s, {statistics.median(x[1] for x in xs):.0f} us/close; "
                  f"legs {[round(x[0]) for x in xs]} / {[round(x[1]) for x in xs]}")
    finally:
        for srv, _, _ in servers.values():
            srv.cleanup()


if __name__ == "__main__":
    C.main_guard(main)

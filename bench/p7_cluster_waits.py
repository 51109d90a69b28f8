"""Profiling tool 7 (issue 12): do b10's nodes wait on each other? Runs
benchmark 10's ingestion (bench/b10_cluster.py: 10,000 files in 10 parallel
sessions, closed at once) on 1 and on 3 nodes, RUNS times each in
alternation, and for each run counts the CPU (from /proc) of every node's
httpd, of the PostgreSQL backends of its database, of the rest of the
cluster, of this client and of the machine: files per CPU-second of
ours (httpd, the cluster, the client; not the machine's other load). With
--sample, the last 3-node run also samples pg_stat_activity and the
ungranted pg_locks of its database every ~50 ms (one psql session, fed by a
thread) and prints what the active backends were doing (state, wait event,
statement) and every lock wait seen.

  /usr/bin/python3 bench/p7_cluster_waits.py [--runs 2] [--sample]
"""

import argparse
import atexit
import collections
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

from us_testkit import pg  # noqa: E402

import b10_cluster as B  # noqa: E402
import common as C  # noqa: E402
from p6_pg_cpu import pg_groups  # noqa: E402

NODES = []
SAMPLE = {"on": False, "rows": []}

ACTIVITY = ("SELECT 'A|' || extract(epoch FROM clock_timestamp()) || '|' || pid || '|' ||"
            " coalesce(state, '') || '|' || coalesce(wait_event_type, '') || '|' ||"
            " coalesce(wait_event, '') || '|' ||"
            " coalesce(substring(query FROM 'PREPARE ([a-z_0-9]+)'), left(query, 40))"
            " FROM pg_stat_activity WHERE datname = '{db}' AND pid <> pg_backend_pid();\n"
            "SELECT 'L|' || extract(epoch FROM clock_timestamp()) || '|' || pid || '|' ||"
            " locktype || '|' || mode || '|' || coalesce(relation::regclass::text, '') || '|' ||"
            " coalesce(transactionid::text, '') || '|' || coalesce(objid::text, '')"
            " FROM pg_locks WHERE NOT granted;\n")


class Sampler:
    def __init__(self, conninfo, db):
        self.q = ACTIVITY.format(db=db)
        self.p = subprocess.Popen(["psql", "-X", "-A", "-t", "-q", conninfo],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, text=True, bufsize=1)
        self.rows, self.n = [], 0
        self.stop = threading.Event()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.writer = threading.Thread(target=self._write, daemon=True)
        self.reader.start()
        self.writer.start()

    def _read(self):
        for line in self.p.stdout:
            if line[:2] in ("A|", "L|"):
                self.rows.append(line.rstrip("\n").split("|"))

    def _write(self):
        while not self.stop.is_set():
            self.p.stdin.write(self.q)
            self.p.stdin.flush()
            self.n += 1
            time.sleep(0.05)

    def close(self):
        self.stop.set()
        self.writer.join()
        self.p.stdin.close()
        self.p.wait(timeout=30)
        self.reader.join(timeout=5)
        return self.n, self.rows


class Meter:
    """b10's CpuMeter, per process group, and the sampler around it."""

    def __init__(self, server=None):
        self.sampler = None

    def groups(self):
        g = {}
        for i, srv in enumerate(NODES):
            for p in [srv.pid] + srv.children():
                g[p] = f"httpd node {i}" if len(NODES) > 1 else "httpd"
        if NODES and NODES[0].store == "pgsql":
            g.update(pg_groups(pg.cluster(), NODES[0].pg_db))
        return g

    def __enter__(self):
        self.g = self.groups()
        if SAMPLE["on"]:
            self.sampler = Sampler(NODES[0].pg_conninfo, NODES[0].pg_db)
            time.sleep(0.2)
        self.s0 = {p: C.proc_cpu_s(p) for p in self.g}
        self.m0, self.o0, self.t0 = C.machine_busy_s(), os.times(), time.monotonic()
        return self

    def __exit__(self, *exc):
        s1 = {p: C.proc_cpu_s(p) for p in self.g}
        m1, o1 = C.machine_busy_s(), os.times()
        self.wall = time.monotonic() - self.t0
        self.cpu = collections.Counter()
        for p, g in self.g.items():
            self.cpu[g] += max(0.0, s1[p] - self.s0[p])
        self.cpu["client"] = (o1.user - self.o0.user) + (o1.system - self.o0.system)
        busy, total = m1[0] - self.m0[0], m1[1] - self.m0[1]
        self.cpu["else"] = max(0.0, busy - sum(self.cpu.values()))
        self.cpu["idle"] = max(0.0, total - busy)
        if self.sampler:
            SAMPLE["rows"] = self.sampler.close()
        return False

    def as_dict(self):
        return {k: round(v, 3) for k, v in self.cpu.items()}


def report_samples(n, rows):
    acts = [r for r in rows if r[0] == "A"]
    locks = [r for r in rows if r[0] == "L"]
    print(f"\n{n} samples (~50 ms apart); backend rows seen: {len(acts)}")
    states = collections.Counter((r[3], r[4], r[5]) for r in acts)
    print("| state | wait_event_type | wait_event | backend samples |")
    print("|---|---|---|---:|")
    for (st, wt, we), k in states.most_common(15):
        print(f"| {st} | {wt or '-'} | {we or '-'} | {k} |")
    active = collections.Counter((r[6], r[4], r[5]) for r in acts if r[3] == "active")
    print("\nactive backends by statement and wait:")
    print("| statement | wait_event_type | wait_event | samples |")
    print("|---|---|---|---:|")
    for (q, wt, we), k in active.most_common(20):
        print(f"| {q} | {wt or '-'} | {we or '-'} | {k} |")
    print(f"\nungranted locks seen: {len(locks)}")
    for (lt, mode, rel), k in collections.Counter((r[3], r[4], r[5]) for r in locks).most_common(10):
        print(f"  {lt} {mode} {rel}: {k}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--sample", action="store_true")
    a = ap.parse_args()
    cl = pg.cluster()
    atexit.register(cl.stop)
    orig = B.cluster

    def capture(n, store="pgsql"):
        NODES[:] = orig(n, store)
        return NODES

    B.cluster = capture
    C.CpuMeter = Meter
    out = []
    for run in range(a.runs):
        for n in ((1, 3) if run % 2 == 0 else (3, 1)):
            SAMPLE["on"] = a.sample and n == 3 and run == a.runs - 1
            rate, secs, la, cpu = B.ingest_run(n)
            c = cpu["ours"][0]
            ours = sum(v for k, v in c.items() if k not in ("idle", "else"))
            out.append((run, n, rate, secs, la, c, ours))
            C.log(f"run {run + 1}, {n} node(s): {rate:.0f} files/s, CPU {c}")
            if SAMPLE["on"]:
                report_samples(*SAMPLE["rows"])
    print("\n| run | nodes | files/s | s | load | CPU s: httpd | backends | pg other | client |"
          " else | idle | files per CPU-s of ours |")
    print("|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for run, n, rate, secs, la, c, ours in out:
        httpd = sum(v for k, v in c.items() if k.startswith("httpd"))
        per = "/".join(f"{v:.2f}" for k, v in sorted(c.items()) if k.startswith("httpd node"))
        print(f"| {run + 1} | {n} | {rate:,.0f} | {secs:.2f} | {la} | {httpd:.2f}"
              + (f" ({per})" if per else "") + f" | {c.get('backends', 0):.2f} |"
              f" {c.get('pg other', 0):.2f} | {c.get('client', 0):.2f} | {c.get('else', 0):.2f} |"
              f" {c.get('idle', 0):.2f} | {10000 / ours:,.0f} |")


if __name__ == "__main__":
    main()

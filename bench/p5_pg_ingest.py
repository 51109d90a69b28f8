"""Profiling tool 5 (issue 12): what ingesting a session costs the PostgreSQL
store, counted by the server itself (pg_stat_statements), so the figure does
not depend on the machine's load: statements per file - each one a round
trip of the apr_dbd driver (BEGIN and COMMIT included) - by statement; the
rate (files/s, load-dependent) beside it. An A/B of module builds in one run,
in the order given (ABAB: A B A B):

  /usr/bin/python3 bench/p5_pg_ingest.py [-n FILES] MODULE.so [MODULE.so ...]

It starts its own PostgreSQL (scripts/pg-test-cluster.sh) with
pg_stat_statements loaded. Per module: a fresh server and database, FILES
files of 1 KiB (default 2,000) uploaded into one session (not counted), the
counters reset, the session closed and its ingestion waited for; then the
calls of every statement the database ran meanwhile, less the status polls
of the wait (GET .../upload_sessions/{id}), per file.
"""

import argparse
import atexit
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

from us_testkit import pg  # noqa: E402

import common as C  # noqa: E402
from b4_ingest_growth import close_latency, upload, wait_ingested  # noqa: E402

POLL_TEXT = "us_pg_session_get"


def start_cluster():
    cl = pg.PgCluster()
    atexit.register(cl.stop)
    cl.psql("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
    cl.restart()
    cl.psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    pg._cluster = cl  # the servers' databases go on this cluster
    return cl


def short(q):
    q = " ".join(q.split())
    return q if len(q) <= 70 else q[:67] + "..."


def one_run(cl, module, files):
    C.MODULE_SO = module
    srv = C.BenchServer(store="pgsql")
    try:
        srv.start()
        ws = "p5"
        sid, _ = upload(srv, ws, files, "p5")
        rc = C.RawClient(srv.port, srv.auth)
        C.wait_quiet()
        cl.psql("SELECT pg_stat_statements_reset()")
        t0 = time.perf_counter()
        close_latency(rc, ws, sid, settle=False)
        t1, ing = wait_ingested(rc, ws, sid, files, t0)
        rc.close()
        rows = cl.psql(
            "SELECT s.calls, replace(s.query, chr(10), ' ') FROM pg_stat_statements s"
            f" JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = '{srv.pg_db}'"
            " ORDER BY s.calls DESC")
        stmts = []
        for line in rows.splitlines():
            calls, _, query = line.partition("|")
            stmts.append((int(calls), query))
        polls = sum(c for c, q in stmts if POLL_TEXT in q)
        total = sum(c for c, _ in stmts) - polls
        return {"rate": files / (t1 - t0), "seconds": t1 - t0, "per_file": total / files,
                "total": total, "polls": polls, "stmts": stmts, "finished": ing["finished_files"]}
    finally:
        srv.cleanup()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", "--files", type=int, default=2000)
    ap.add_argument("modules", nargs="+")
    a = ap.parse_args()
    cl = start_cluster()
    results = []
    for i, m in enumerate(a.modules):
        r = one_run(cl, os.path.abspath(m), a.files)
        results.append((m, r))
        with open("/proc/loadavg") as f:
            la = " ".join(f.read().split()[:3])
        C.log(f"run {i + 1} {m}: {r['per_file']:.3f} statements/file ({r['total']} for "
              f"{a.files} files, {r['polls']} status polls left out), {r['rate']:.0f} files/s "
              f"in {r['seconds']:.2f} s, load average {la}")
        for calls, q in r["stmts"][:12]:
            C.log(f"    {calls:7d}  {short(q)}")
    print("\nmodule | statements/file | files/s")
    for m, r in results:
        print(f"{m} | {r['per_file']:.3f} | {r['rate']:.0f}")


if __name__ == "__main__":
    C.main_guard(main)

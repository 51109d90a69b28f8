"""Benchmark 10 (issue 12): the PostgreSQL store with one node and with three.

  - ingestion: FILES files (10,000; 1 KiB each) in SESSIONS parallel sessions
    of one workspace, uploaded first (not timed), then every session closed
    at once; the figure is files / (first close sent -> the poll that sees
    every file FINISHED). Once on one node, once on three nodes sharing the
    database, the data directory, the key file and the signing secret (one
    ingest thread each, as the one node). Targets: >= 3,000 files/s on one
    node (target_of ours), and three nodes / one node >= 1.0 (more nodes
    must never serialise on a lock). For scale under a loaded machine, the
    same on one node with SQLite in the same run (info: PostgreSQL / SQLite);
  - growth on PostgreSQL: status and close latency of a BIG-file session
    (50,000; 10,000 with BENCH_QUICK=1) against empty sessions, as benchmark
    5 measures it on SQLite (bench/b4_ingest_growth.py): status medians of
    alternating GETs (open session, BIG files pending), then the close of
    BIG against closes of empty sessions sent around it. Target <= 1.2.

Every figure is printed with the machine's load average beside it: five
other engineers' builds share these two cores.
"""

import os
import time

import common as C
from b4_ingest_growth import close_latency, status_latencies, upload, wait_ingested

FILES = 10000
SESSIONS = 10
BIG = 10000 if C.QUICK else 50000
STATUS_N = 200
EMPTY_CLOSES = 6


def load():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def cluster(n, store="pgsql"):
    """n servers on one database; node 0 owns the shared files."""
    first = C.BenchServer(store=store, extra=["UploadSessionNodeName b10-0"])
    state = os.path.join(first.dir, "state")
    shared = {
        "UploadSessionStore": f'pgsql "{first.pg_conninfo}"',
        "UploadSessionDataDir": f'"{state}/data"',
        "UploadSessionSecretFile": f'"{state}/upload_session.secret"',
        "UploadSessionKeyFile": f'"{first.key_file}"',
    }
    nodes = [first]
    for i in range(1, n):
        srv = C.BenchServer(store="pgsql", extra=[f"UploadSessionNodeName b10-{i}"])
        srv.overrides.update(shared)
        srv.write_config()
        # the first node's key file: the same bench user everywhere
        srv.key, srv.auth = first.key, first.auth
        srv.user = first.user
        nodes.append(srv)
    return nodes


def ingest_run(n_nodes, store="pgsql"):
    nodes = cluster(n_nodes, store)
    try:
        for srv in nodes:
            srv.start()
        head = nodes[0]
        ws = f"b10-n{n_nodes}"
        C.log(f"{n_nodes} node(s) on {store}: uploading {FILES} files into {SESSIONS} sessions")
        sids = []
        for i in range(SESSIONS):
            cfg = head.create_session(ws, parallel_processing_enabled=True)
            a = cfg["aws_prefixed_request_config"]
            ff = os.path.join(head.dir, f"fields-{i}.txt")
            C.write_fields_file(ff, a["fields"])
            r = C.wrk_batch(head.base + "/", "upload.lua", FILES // SESSIONS, 16,
                            os.path.join(head.dir, f"mk-{i}"),
                            args=("s3", head.url_path(a["url"]), ff, 1024, f"s{i}"), limit_s=300)
            if r["ok"] != FILES // SESSIONS:
                raise RuntimeError(f"upload s{i}: {r['ok']} ok, {r['failed']} failed")
            sids.append(cfg["session_id"])
        rcs = [C.RawClient(srv.port, head.auth) for srv in nodes]
        C.wait_quiet()
        la = load()
        with C.CpuMeter() as m:
            t0 = time.perf_counter()
            for i, sid in enumerate(sids):  # closes spread over the nodes
                close_latency(rcs[i % n_nodes], ws, sid, settle=False)
            t1 = t0
            for i, sid in enumerate(sids):
                t1, _ing = wait_ingested(rcs[i % n_nodes], ws, sid, FILES // SESSIONS, t0)
        rate = FILES / (t1 - t0)
        C.log(f"  {n_nodes} node(s) on {store}: {FILES} files ingested in {t1 - t0:.2f} s"
              f" ({rate:.0f} files/s), load average {la}")
        for rc in rcs:
            rc.close()
        return rate, t1 - t0, la, {"ours": [m.as_dict()]}
    finally:
        for srv in reversed(nodes):
            srv.cleanup()


def growth():
    srv = C.BenchServer(store="pgsql")
    try:
        srv.start()
        ws = "b10-growth"
        C.log(f"growth on PostgreSQL: uploading {BIG} files")
        big, _ = upload(srv, ws, BIG, "big")
        empties = [srv.create_session(ws)["session_id"] for _ in range(EMPTY_CLOSES + 1)]
        rc = C.RawClient(srv.port, srv.auth)
        C.wait_quiet()
        la = load()
        lat = status_latencies(rc, ws, big, empties[0], STATUS_N)
        mb, me = C.median(lat["big"]), C.median(lat["empty"])
        C.record("10", f"pgsql status latency, {BIG} files vs empty (open)", mb * 1e6, me * 1e6,
                 unit="us (median)", ratio=mb / me, target=1.2, cmp="<=", n=STATUS_N,
                 note=f"load average {la}")
        closes = {"big": [], "empty": []}
        e = iter(empties[1:])
        for _ in range(EMPTY_CLOSES // 2):
            closes["empty"].append(close_latency(rc, ws, next(e)))
        la = load()
        closes["big"].append(close_latency(rc, ws, big))
        for _ in range(EMPTY_CLOSES - EMPTY_CLOSES // 2):
            closes["empty"].append(close_latency(rc, ws, next(e)))
        cb, ce = C.median(closes["big"]), C.median(closes["empty"])
        C.record("10", f"pgsql close latency, {BIG} files vs empty", cb * 1e6, ce * 1e6,
                 unit="us (median)", ratio=cb / ce, target=1.2, cmp="<=",
                 samples={k: [round(x * 1e6) for x in v] for k, v in closes.items()},
                 note=f"1 big vs {len(closes['empty'])} empty closes (the later ones while "
                      f"BIG ingests); load average {la}")
        # status again while BIG ingests (info)
        lat = status_latencies(rc, ws, big, empties[0], STATUS_N // 2)
        mb, me = C.median(lat["big"]), C.median(lat["empty"])
        C.record("10", f"pgsql status latency, {BIG} files ingesting vs empty (info)", mb * 1e6,
                 me * 1e6, unit="us (median)", ratio=mb / me, n=STATUS_N // 2,
                 note=f"no target (info); load average {load()}")
        rc.close()
    finally:
        srv.cleanup()


def main():
    one, one_s, one_la, one_cpu = ingest_run(1)
    C.record("10", f"pgsql ingest {FILES} files, 1 node", one, unit="files/s", target=3000,
             target_of="ours", seconds=one_s, cpu=one_cpu, note=f"load average {one_la}")
    three, three_s, three_la, three_cpu = ingest_run(3)
    C.record("10", f"pgsql ingest {FILES} files, 3 nodes / 1 node", three, one, unit="files/s",
             target=1.0, seconds=three_s, cpu=three_cpu,
             note=f"load average {three_la} (1 node: {one_la})")
    lite, lite_s, lite_la, lite_cpu = ingest_run(1, "sqlite3")
    C.record("10", f"ingest {FILES} files, 1 node, pgsql / sqlite (info)", one, lite,
             unit="files/s", seconds=lite_s, cpu=lite_cpu,
             note=f"no target (info); load average {lite_la} (pgsql: {one_la})")
    growth()


if __name__ == "__main__":
    C.main_guard(main)

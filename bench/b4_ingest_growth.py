"""Benchmarks 4 (ingestion) and 5 (growth), on the same sessions.

Per UploadSessionIngestThreads setting (1 and 2; only 1 with BENCH_QUICK=1),
one httpd with `LogLevel warn upload_session:info` (the ingest workers log
"claimed" and "done" at info: the time from close to claim is read from it):
  - sessions: SMALL (10,000 files; 5,000 with BENCH_QUICK=1), BIG (50,000
    files; 10,000 with BENCH_QUICK=1), and empty ones; 1 KiB files uploaded with wrk
    (bench/wrk/upload.lua, 16 connections; upload time is not part of any
    figure, it is only reported);
  - benchmark 5, status: 200 GETs of BIG's status and 200 of an empty
    session's, alternating, over one keep-alive connection each (RawClient);
    medians, ratio BIG / empty (target <= 1.2);
  - benchmark 4: close SMALL, then poll its status every 20 ms until every
    file is FINISHED (or FAILED); the figure is files / (time from sending
    the close to the poll that sees it complete); the same for BIG. Target
    >= 5,000 files/s;
  - benchmark 5, close: the latency of each close of SMALL/BIG (one request
    per session), against closes of empty sessions sent around them; the
    next close waits until the previous ingestion is complete. Close
    ratio = median(BIG closes) / median(empty closes), pooled over the
    servers (target <= 1.2);
  - benchmark 5, status again once BIG is ingested (info).
All of it ROUNDS times (BENCH_B4_ROUNDS; 3, 2 with BENCH_QUICK=1), each in a
fresh server and store (the status figures in the first round only); the
flatness (BIG's rate over SMALL's, per round) is recorded as the median of the
rounds with their spread, beside the same ratio from the worker's own
claim->done times (without the 0-250 ms until a worker's poll claims the
session) and httpd's CPU per file (SMALL's over BIG's). Then, as info, what
bounds the flatness in the same run (bench/b4_bounds.py): the same two
ingestions without httpd (p2_ingest) and the kernel's cost of their renames
alone.
"""

import os
import re
import time
from datetime import datetime

import b4_bounds as B
import common as C

SMALL = 5000 if C.QUICK else 10000
BIG = 10000 if C.QUICK else 50000
FILE_SIZE = 1024
THREADS = (1,) if C.QUICK else (1, 2)
# fresh server and store per round; the flatness is the median of the rounds'
# ratios, printed with their spread (a 10,000-file ingestion lasts under a
# second: one pair says little)
ROUNDS = int(os.environ.get("BENCH_B4_ROUNDS", "2" if C.QUICK else "3"))
STATUS_N = 200
EMPTY_EACH = 2 if C.QUICK else 3   # empty-session closes before, between, after


def upload(srv, ws, n, tag):
    cfg = srv.create_session(ws)
    a = cfg["aws_prefixed_request_config"]
    ff = os.path.join(srv.dir, f"fields-{tag}.txt")
    C.write_fields_file(ff, a["fields"])
    r = C.wrk_batch(srv.base + "/", "upload.lua", n, 16, os.path.join(srv.dir, "mk-" + tag),
                    args=("s3", srv.url_path(a["url"]), ff, FILE_SIZE, tag), limit_s=600)
    if r["ok"] != n:
        raise RuntimeError(f"upload {tag}: {r['ok']} of {n} ok, {r['failed']} failed")
    st = srv.status(ws, cfg["session_id"])
    if st.get("uploaded_files") != n:
        raise RuntimeError(f"session {tag} counts {st.get('uploaded_files')} files, not {n}")
    C.log(f"  uploaded {n} files into {tag} in {r['elapsed_s']:.1f} s "
          f"({n / r['elapsed_s']:.0f} files/s)")
    return cfg["session_id"], n / r["elapsed_s"]


def status_latencies(rc, ws, big, empty, n):
    """Alternating GETs; returns ({big: [s], empty: [s]})."""
    out = {"big": [], "empty": []}
    paths = {"big": f"/api/v1/workspaces/{ws}/upload_sessions/{big}",
             "empty": f"/api/v1/workspaces/{ws}/upload_sessions/{empty}"}
    for _ in range(10):  # warm up both
        for k in paths:
            rc.request("GET", paths[k])
    for i in range(n):
        for k in (("big", "empty") if i % 2 == 0 else ("empty", "big")):
            st, _, dt = rc.request("GET", paths[k])
            if st != 200:
                raise RuntimeError(f"status {k}: {st}")
            out[k].append(dt)
    return out


def close_latency(rc, ws, sid, settle=True):
    if settle:  # the ingest workers (250 ms poll) finish what the last close queued
        C.wait_quiet(2)
    st, body, dt = rc.request("PUT", f"/api/v1/workspaces/{ws}/upload_sessions/{sid}", b"{}")
    if st != 204:
        raise RuntimeError(f"close {sid}: {st} {body[:200]!r}")
    return dt


def wait_ingested(rc, ws, sid, n, t0, timeout=600):
    path = f"/api/v1/workspaces/{ws}/upload_sessions/{sid}"
    import json
    deadline = t0 + timeout
    while True:
        st, body, _ = rc.request("GET", path)
        d = json.loads(body)
        ing = d["ingestion_status"]
        if ing["finished_files"] + ing["failed_files"] >= n:
            return time.perf_counter(), ing
        if time.perf_counter() > deadline:
            raise RuntimeError(f"ingestion of {n} files not done in {timeout} s: {ing}")
        time.sleep(0.02)


LOG_TS = re.compile(r"^\[(\w{3} \w{3} \d+ [\d:.]+ \d{4})\]")


def log_times(srv, sid):
    """(claimed, done) wall-clock times of a session from the error log."""
    claimed = done = None
    for line in srv.log_text().splitlines():
        if sid not in line:
            continue
        m = LOG_TS.match(line)
        if not m:
            continue
        t = datetime.strptime(m.group(1), "%a %b %d %H:%M:%S.%f %Y").timestamp()
        if "claimed by" in line and claimed is None:
            claimed = t
        elif line.rstrip().endswith("done"):
            done = t
    return claimed, done


def ingest_one(srv, rc, ws, sid, n, closes, kind, threads, rnd):
    """Closes sid and waits until its n files are decided; records the rate.
    Returns (close->all decided rate, claim->done rate from the log)."""
    time.sleep(0.3)
    C.wait_quiet()
    with C.CpuMeter(srv) as m:
        t0 = time.perf_counter()
        wall0 = time.time()
        closes[kind].append(close_latency(rc, ws, sid, settle=False))
        t1, ing = wait_ingested(rc, ws, sid, n, t0)
    # the worker logs "done" after its next (empty) batch query
    C.wait_for(lambda: all(log_times(srv, sid)), 5, interval=0.1)
    claimed, done = log_times(srv, sid)
    rate = n / (t1 - t0)
    worker_rate = n / (done - claimed) if claimed and done and done > claimed else None
    note = f"failed {ing['failed_files']}" if ing["failed_files"] else ""
    C.record("4", f"ingest {n} files, IngestThreads {threads}", rate, unit="files/s",
             target=5000, note=note, seconds=t1 - t0, round=rnd + 1,
             close_to_claim_s=(claimed - wall0) if claimed else None,
             claim_to_done_s=(done - claimed) if claimed and done else None,
             ingestion_status=ing, cpu={"ours": [m.as_dict()]},
             httpd_cpu_us_per_file=m.httpd_s * 1e6 / n)
    C.log(f"  ingest {n}: {t1 - t0:.2f} s close->all FINISHED"
          + (f" (close->claim {claimed - wall0:.2f} s, claim->done "
             f"{done - claimed:.2f} s, from the error log)" if claimed and done else ""))
    return rate, worker_rate, m.httpd_s * 1e6 / n


def one_round(threads, rnd, closes):
    """A fresh server and store: SMALL then BIG uploaded, SMALL then BIG
    ingested (benchmark 5's status figures in the first round only).
    Returns {small|big: (rate, worker rate, httpd CPU us per file)}."""
    srv = C.BenchServer(ingest_threads=threads, extra=["LogLevel warn upload_session:info"])
    out = {}
    try:
        srv.start()
        ws = f"b4-t{threads}"
        C.log(f"UploadSessionIngestThreads {threads}, round {rnd + 1} of {ROUNDS}: uploading")
        small, up_small = upload(srv, ws, SMALL, f"small{threads}")
        big, up_big = upload(srv, ws, BIG, f"big{threads}")
        empties = [srv.create_session(ws)["session_id"] for _ in range(3 * EMPTY_EACH + 1)]
        rc = C.RawClient(srv.port, srv.auth)

        # 5: status, BIG (open, BIG pending files) vs an empty session
        if rnd == 0:
            C.wait_quiet()
            lat = status_latencies(rc, ws, big, empties[0], STATUS_N)
            mb, me = C.median(lat["big"]), C.median(lat["empty"])
            C.record("5", f"status latency, {BIG} files vs empty (open; threads {threads})",
                     mb * 1e6, me * 1e6, unit="us (median)", ratio=mb / me, target=1.2,
                     cmp="<=", n=STATUS_N,
                     ours_p90_us=sorted(lat["big"])[int(0.9 * STATUS_N)] * 1e6,
                     baseline_p90_us=sorted(lat["empty"])[int(0.9 * STATUS_N)] * 1e6)

        # 4 + 5: closes and ingestion
        e = iter(empties[1:])
        for _ in range(EMPTY_EACH):
            closes["empty"].append(close_latency(rc, ws, next(e)))
        for kind, sid, n in (("small", small, SMALL), ("big", big, BIG)):
            out[kind] = ingest_one(srv, rc, ws, sid, n, closes, kind, threads, rnd)
            for _ in range(EMPTY_EACH):
                closes["empty"].append(close_latency(rc, ws, next(e)))
        C.log(f"  uploads {up_small:.0f} / {up_big:.0f} files/s")

        # 5 (info): status once BIG is ingested
        if rnd == 0:
            C.wait_quiet()
            lat = status_latencies(rc, ws, big, empties[0], STATUS_N)
            mb, me = C.median(lat["big"]), C.median(lat["empty"])
            C.record("5", f"status latency, {BIG} files ingested vs empty (threads {threads}, info)",
                     mb * 1e6, me * 1e6, unit="us (median)", ratio=mb / me, n=STATUS_N,
                     note="no target (info)")
        rc.close()
    finally:
        srv.cleanup()
    return out


def spread(xs):
    return f"{min(xs):.2f}-{max(xs):.2f}" if xs else "-"


def record_bounds():
    """Info beside the flatness: the ingestion engine without httpd, and the
    directories' part of it alone (bench/b4_bounds.py), in this run."""
    e = B.engine_alone(SMALL, BIG)
    if e:
        sm, bg = e["small"], e["big"]
        C.record("4", f"ingestion engine alone (p2_ingest, no httpd), {BIG} vs {SMALL} files "
                 "(info)", bg["files_per_s"], sm["files_per_s"], unit="files/s",
                 note=f"CPU us/file {sm['cpu_us_per_file']:.1f} / {bg['cpu_us_per_file']:.1f}"
                      f" (kernel {sm['sys_us_per_file']:.1f} / {bg['sys_us_per_file']:.1f});"
                      f" CPU flatness {sm['cpu_us_per_file'] / bg['cpu_us_per_file']:.2f}",
                 engine=e)
    r = B.renames_alone(SMALL, BIG)
    sm, bg = r["small"], r["big"]
    C.record("4", f"renames alone (session dir -> files dir, dir fsync per {B.SYNC_EVERY}), "
             f"kernel us per rename, {BIG} vs {SMALL} (info)", bg["sys_us_per_rename"],
             sm["sys_us_per_rename"], unit="us/rename",
             ratio=sm["sys_us_per_rename"] / bg["sys_us_per_rename"]
             if bg["sys_us_per_rename"] else None,
             note="ratio: its flatness (the smaller's cost over the bigger's)", renames=r)
    f = B.renames_alone(SMALL, BIG, fan=2)
    fb = f["big"]
    C.record("4", f"renames into files/<2 hex>/ instead (256 subdirectories, each touched "
             f"fsynced per {B.SYNC_EVERY}), kernel us per rename, {SMALL}->{SMALL + BIG} "
             "entries, fanned vs flat (info)", fb["sys_us_per_rename"], bg["sys_us_per_rename"],
             unit="us/rename",
             note=f"ratio above 1: the fan-out costs more; wall us per rename flat {bg['wall_us_per_rename']:.1f}, fanned "
                  f"{fb['wall_us_per_rename']:.1f}; fanned flatness "
                  f"{f['small']['sys_us_per_rename'] / fb['sys_us_per_rename']:.2f}",
             renames_fanned=f)


def main():
    closes = {"big": [], "small": [], "empty": []}
    for threads in THREADS:
        rounds = [one_round(threads, r, closes) for r in range(ROUNDS)]
        # flatness: per round (one store) BIG's rate over SMALL's
        ratios = [r["big"][0] / r["small"][0] for r in rounds]
        worker = [r["big"][1] / r["small"][1] for r in rounds if r["big"][1] and r["small"][1]]
        cpu = [r["small"][2] / r["big"][2] for r in rounds if r["big"][2] > 0]
        C.record("4", f"ingestion flatness, {BIG} vs {SMALL} files, IngestThreads {threads}",
                 C.median([r["big"][0] for r in rounds]), C.median([r["small"][0] for r in rounds]),
                 unit="files/s (median)", ratio=C.median(ratios), target=0.95,
                 note=f"{ROUNDS} rounds: ratios {spread(ratios)}; claim->done "
                      f"{C.median(worker) if worker else float('nan'):.2f} ({spread(worker)}); "
                      f"httpd CPU per file {SMALL} / {BIG} "
                      f"{C.median(cpu) if cpu else float('nan'):.2f} ({spread(cpu)})",
                 round_ratios=ratios, worker_ratios=worker, cpu_ratios=cpu)
    record_bounds()
    cb, cs, ce = (C.median(closes[k]) for k in ("big", "small", "empty"))
    C.record("5", f"close latency, {BIG} files vs empty", cb * 1e6, ce * 1e6,
             unit="us (median)", ratio=cb / ce, target=1.2, cmp="<=",
             samples={k: [round(x * 1e6) for x in v] for k, v in closes.items()},
             note=f"{len(closes['big'])} big vs {len(closes['empty'])} empty closes")
    C.record("5", f"close latency, {SMALL} files vs empty (info)", cs * 1e6, ce * 1e6,
             unit="us (median)", ratio=cs / ce, note="no target (info)")


if __name__ == "__main__":
    C.main_guard(main)

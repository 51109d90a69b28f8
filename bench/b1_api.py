"""Benchmark 1: API throughput with wrk (loopback, keep-alive, 2 threads,
16 and 64 connections) against the same httpd serving a static JSON file of
exactly our response's size (the file *is* a copy of our response body).

  status  GET  /upload_sessions/{id}            vs GET /b1/status.json
  list    GET  /upload_sessions?limit=10 (12 sessions in the workspace)
                                                vs GET /b1/list.json
  create  POST /upload_sessions  body {}        vs GET /b1/create.json
  close   PUT  /upload_sessions/{id} body {} on a fresh OPEN session per
          request (bench/wrk/close.lua walks the ids) vs GET /b1/close.json (0 bytes)

Every pair runs in three MPM configurations (bench/common.py MPM_PROFILES:
Debian's stock mpm_event.conf, httpd's compiled-in defaults, the tuned one),
each in a server of its own with an access log on; BENCH_MPM picks some
("debian tuned"). Each pair runs as ABBA cycles (ours, static, static, ours; 2 s legs): 3
cycles in the full run (12 s per side), 1 with BENCH_QUICK=1 (4 s per side),
so that drifts of machine load hit both sides alike; each cycle starts on a
quiet machine if one comes within a few seconds (common.wait_quiet). The
figure of a side is its requests over its wall time; the per-cycle ratios are
kept and printed as their spread (min-max). Our httpd's CPU per request
beside the static twin's is in the note. The sessions the close legs close are all created
before the first close leg (every close queues an ingest job, and a long
queue slows every later write, creates included). Targets (ours/static):
status >= 1.0, list >= 0.85, create and close >= 0.4 at 16 connections and
>= 0.5 at 64 (issue #16). Then, per configuration, the close's bound as
info: the same close pair in a second server whose fsync and fdatasync
return at once (close_bound).
"""

import os

import common as C

LEG_S = 2                              # seconds per wrk leg
CYCLES = 2 if C.QUICK else 3           # ABBA cycles per endpoint and connection count
DURATION = 2 * LEG_S * CYCLES          # seconds per side
CONNS = (16, 64)
# per endpoint, by connection count
TARGETS = {"status": {16: 1.0, 64: 1.0}, "list": {16: 0.85, 64: 0.85},
           "create": {16: 0.4, 64: 0.5}, "close": {16: 0.4, 64: 0.5}}
PROFILES = os.environ.get("BENCH_MPM", "debian defaults tuned").split()


def run_leg(srv, url, script, secs, conns, headers, args=()):
    with C.CpuMeter(srv) as m:
        r = C.wrk(url, script, secs, conns, headers=headers, args=args)
    r["cpu"] = m
    return r


def combine(legs):
    if all("put_ok" in l for l in legs):
        # close.lua: its own count of 204s, over the whole leg unless the ids
        # ran out (then up to the last PUT answered)
        req = sum(l["put_ok"] for l in legs)
        dur = sum(l["put_span_s"] if l["exhausted"] else l["duration_s"] for l in legs)
    else:
        req = sum(l["requests"] for l in legs)
        dur = sum(l["duration_s"] for l in legs)
    httpd = sum(l["cpu"].httpd_s for l in legs)
    foreign = max(l["cpu"].foreign_pct for l in legs)
    errs = sum(l["errors_status"] + l["errors_connect"] + l["errors_read"] +
               l["errors_write"] + l["errors_timeout"] + l.get("put_err", 0) for l in legs)
    p50 = max(l["lat_p50_us"] for l in legs)
    p99 = max(l["lat_p99_us"] for l in legs)
    kinds = {k: sum(l[k] for l in legs) for k in ("errors_status", "errors_connect",
                                                  "errors_read", "errors_write", "errors_timeout")}
    kinds["put_err"] = sum(l.get("put_err", 0) for l in legs)
    codes = " ".join(l.get("err_codes", "").strip() for l in legs).split()
    if codes:
        kinds["put_err_statuses"] = " ".join(codes)
    # a close leg whose ids ran out went on with static fillers (close.lua),
    # whose CPU its closes would carry
    exhausted = any(l.get("exhausted") for l in legs)
    return dict(rps=req / dur if dur > 0 else 0.0, requests=req, errors=errs, seconds=dur,
                error_kinds={k: v for k, v in kinds.items() if v},
                httpd_cpu_us_per_req=1e6 * httpd / req if req and not exhausted else None,
                foreign_cpu_pct_max=foreign, lat_p50_us=p50, lat_p99_us=p99)


class CloseIds:
    """OPEN session ids of the create workspace, handed out in order."""

    def __init__(self, srv, ws, path):
        self.srv, self.ws, self.path = srv, ws, path
        self.ids = srv.open_session_ids(ws)
        self.pos = 0

    def take(self, n):
        chunk = self.ids[self.pos:self.pos + n]
        self.pos += len(chunk)
        with open(self.path, "w") as f:
            f.write("\n".join(chunk) + "\n")
        return len(chunk)


def close_pool(srv, create_url, auth, want, create_rate, ws="b1-create"):
    """At least `want` OPEN sessions in ws, the workspace of create_url
    (capped by time: 40 s of creating at most), made before any close."""
    have = len(srv.open_session_ids(ws))
    if have < want:
        secs = min(40, max(2, int((want - have) / max(create_rate, 50) * 1.2) + 1))
        C.log(f"close pool: {have} OPEN sessions, creating ~{want - have} more ({secs} s)")
        C.wrk(create_url, "create.lua", secs, 16, headers=[auth])


def main():
    for profile in PROFILES:
        if profile not in C.MPM_PROFILES:
            raise SystemExit(f"BENCH_MPM: unknown profile {profile} "
                             f"(known: {' '.join(C.MPM_PROFILES)})")
    for profile in PROFILES:
        C.log(f"== MPM settings: {profile}")
        run_profile(profile)


def spread_note(cycle_ratios, o, b):
    parts = []
    if len(cycle_ratios) > 1:
        parts.append(f"spread {min(cycle_ratios):.2f}-{max(cycle_ratios):.2f} "
                     f"over {len(cycle_ratios)} cycles")
    if o["httpd_cpu_us_per_req"] and b["httpd_cpu_us_per_req"]:
        parts.append(f"httpd CPU/req {o['httpd_cpu_us_per_req']:.0f} us vs static "
                     f"{b['httpd_cpu_us_per_req']:.0f} us")
    if o["errors"]:
        parts.append(f"errors {o['errors']}")
    return "; ".join(parts)


def nommap_pair(srv, endpoint, url, body, auth, profile):
    """Info: ours against a twin served with EnableMMAP Off. httpd maps each
    static file it sends (EnableMMAP On, the default); on some machines the
    map and unmap per request cost the static path half its rate, so the
    twin above flatters us there. One ABBA cycle at 16 connections."""
    os.makedirs(os.path.join(srv.htdocs, "nommap"), exist_ok=True)
    os.chmod(os.path.join(srv.htdocs, "nommap"), 0o755)
    twin = srv.base + srv.static(f"nommap/{endpoint}.json", body)
    C.wait_quiet()
    legs = {"ours": [], "static": []}
    for leg in ("ours", "static", "static", "ours"):
        legs[leg].append(run_leg(srv, url if leg == "ours" else twin, "plain.lua", LEG_S, 16,
                                 [auth]))
    o, b = combine(legs["ours"]), combine(legs["static"])
    C.record("1", f"{endpoint} c16 ({profile}) vs static twin with EnableMMAP Off (info)",
             o["rps"], b["rps"], unit="req/s", note=spread_note([], o, b), mpm=profile,
             ours_detail=o, baseline_detail=b)


class Pairs:
    """Our endpoints and their static twins in one server, measured as ABBA
    cycles; the close legs share one pool of OPEN sessions."""

    def __init__(self, srv):
        self.srv = srv
        self.auth = f"Authorization: Bearer {srv.key}"
        api = srv.api
        c = srv.client()
        # the workspaces and the static twins of our responses
        sid = srv.create_session("b1-status")["session_id"]
        for _ in range(12):
            srv.create_session("b1-list")
        os.makedirs(os.path.join(srv.htdocs, "b1"), exist_ok=True)
        os.chmod(os.path.join(srv.htdocs, "b1"), 0o755)
        self.bodies = {
            "status": c.get(f"b1-status/upload_sessions/{sid}").content,
            "list": c.get("b1-list/upload_sessions", params={"limit": 10}).content,
            "create": c.post("b1-create/upload_sessions", json={}).content,
            "close": b"",
        }
        self.urls = {
            "status": f"{api}b1-status/upload_sessions/{sid}",
            "list": f"{api}b1-list/upload_sessions?limit=10",
            "create": f"{api}b1-create/upload_sessions",
            "close": f"{srv.base}/",  # close.lua builds the paths
        }
        self.static = {k: srv.base + srv.static(f"b1/{k}.json", v)
                       for k, v in self.bodies.items()}
        self.ids_file = os.path.join(srv.dir, "close-ids.txt")
        self.close_prefix = "/api/v1/workspaces/b1-create/upload_sessions/"
        self.ids = None
        self.close_legs_done = 0

    def fill_close_pool(self, create_rate, factor=3, cap=200000):
        """OPEN sessions for every close leg: closes could run at `factor`
        times the create rate (a leg whose ids run out has no CPU figure)."""
        want = int(factor * create_rate * LEG_S * 2 * CYCLES * len(CONNS)) + 500
        close_pool(self.srv, self.urls["create"], self.auth, min(want, cap), create_rate)
        self.ids = CloseIds(self.srv, "b1-create", self.ids_file)
        C.log(f"close pool: {len(self.ids.ids)} OPEN sessions")

    def close_args(self):
        """The ids of the next close leg: the pool split evenly over the
        close legs left (closes come in bursts between stalls, see
        BENCHMARKS.md; a leg must last its 2 s); None once it ran dry."""
        legs_left = len(CONNS) * CYCLES * 2 - self.close_legs_done
        n = self.ids.take((len(self.ids.ids) - self.ids.pos) // max(legs_left, 1))
        self.close_legs_done += 1
        if n < 50:
            C.log("  the close pool ran dry: no more close legs")
            return None
        return (self.ids_file, self.close_prefix, 2)

    def measure(self, endpoint, conns):
        """(ours, static, per-cycle ratios) of CYCLES ABBA cycles; None when
        no cycle completed."""
        srv = self.srv
        script = {"create": "create.lua", "close": "close.lua"}.get(endpoint, "plain.lua")
        ours, base, cycle_ratios = [], [], []
        dry = False
        for _ in range(CYCLES):
            if dry:
                break
            C.wait_quiet()
            legs = {"ours": [], "static": []}
            for leg in ("ours", "static", "static", "ours"):
                if leg == "static":
                    legs[leg].append(run_leg(srv, self.static[endpoint], "plain.lua", LEG_S,
                                             conns, [self.auth]))
                    continue
                args = ()
                if endpoint == "close":
                    args = self.close_args()
                    if args is None:
                        dry = True
                        break
                r = run_leg(srv, self.urls[endpoint], script, LEG_S, conns, [self.auth], args)
                if endpoint == "close":
                    if r["exhausted"] and r["put_ok"] == 0:
                        C.log("  close leg: no close answered before the ids ran "
                              "out; leg skipped")
                        continue
                    if r["exhausted"]:
                        C.log(f"  close leg: ids ran out after {r['put_span_s']:.2f} s "
                              f"(figure from those {r['put_ok']} closes)")
                legs[leg].append(r)
            if not legs["ours"] or not legs["static"]:
                break
            co, cb = combine(legs["ours"]), combine(legs["static"])
            if cb["rps"] > 0:
                cycle_ratios.append(round(co["rps"] / cb["rps"], 3))
            ours += legs["ours"]
            base += legs["static"]
        if not ours or not base:
            return None
        return combine(ours), combine(base), cycle_ratios

    def warn_errors(self, endpoint, conns, o):
        if o["errors"]:
            C.log(f"WARNING: errors in our {endpoint} c{conns} run: {o['error_kinds']}")
            tail = [l for l in self.srv.log_text().splitlines() if "upload_session" in l][-3:]
            for l in tail:
                C.log(f"  error log: {l[:300]}")


def run_profile(profile):
    srv = C.BenchServer(mpm=profile, access_log=True)
    rates = {}
    try:
        srv.start()
        pairs = Pairs(srv)
        for k, v in pairs.bodies.items():
            C.log(f"{k}: our response body {len(v)} bytes; static twin {pairs.static[k]}")
        for endpoint in ("status", "list", "create", "close"):
            for conns in CONNS:
                if endpoint == "close" and pairs.ids is None:
                    pairs.fill_close_pool(rates[("create", 16)])
                m = pairs.measure(endpoint, conns)
                if m is None:
                    continue
                o, b, cycle_ratios = m
                rates[(endpoint, conns)] = o["rps"]
                C.record("1", f"{endpoint} c{conns} ({profile})", o["rps"], b["rps"],
                         unit="req/s", target=TARGETS[endpoint][conns],
                         note=spread_note(cycle_ratios, o, b), mpm=profile,
                         ours_detail=o, baseline_detail=b, cycle_ratios=cycle_ratios,
                         body_bytes=len(pairs.bodies[endpoint]), duration_s=DURATION)
                if endpoint in ("status", "list") and conns == 16:
                    nommap_pair(srv, endpoint, pairs.urls[endpoint], pairs.bodies[endpoint],
                                pairs.auth, profile)
                pairs.warn_errors(endpoint, conns, o)
    finally:
        srv.cleanup()
    if ("create", 16) in rates:
        close_bound(profile, rates[("create", 16)])


def close_bound(profile, create_rate):
    """Info: the close without its durable commit, against the same static
    twin, in a server of its own whose fsync and fdatasync return at once
    (bench/preload/nosync.c, LD_PRELOAD; durability gone, a bound never to
    ship). A close must be on disk before its 204 and the twin syncs
    nothing: what this pair gains over the close's own is the sync's share,
    and where it meets the close's target and ours does not, the disk's
    sync is what bounds ours."""
    if not os.path.exists(C.NOSYNC_SO):
        C.log(f"close bound: {C.NOSYNC_SO} not built (make bench-tools); skipped")
        return
    srv = C.BenchServer(mpm=profile, access_log=True, preload=C.NOSYNC_SO)
    try:
        srv.start()
        pairs = Pairs(srv)
        # without the sync a close runs at about twice its rate: twice the pool
        pairs.fill_close_pool(create_rate, factor=6)
        for conns in CONNS:
            m = pairs.measure("close", conns)
            if m is None:
                continue
            o, b, cycle_ratios = m
            C.record("1", f"close c{conns} ({profile}) without the durable sync: "
                     "the bound (info)", o["rps"], b["rps"], unit="req/s",
                     note=spread_note(cycle_ratios, o, b), mpm=profile, ours_detail=o,
                     baseline_detail=b, cycle_ratios=cycle_ratios, duration_s=DURATION)
            pairs.warn_errors("close", conns, o)
    finally:
        srv.cleanup()


if __name__ == "__main__":
    C.main_guard(main)

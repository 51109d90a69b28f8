"""Probe 9: does a child's resident memory level off under many requests?
One server, legs of status, then create, then close requests (16
connections each, the closes on the sessions the creates made), and every
child's VmRSS after each leg. A leak grows with the requests; caches and
the allocator's arenas grow in steps and then stay.

    /usr/bin/python3 bench/p9_rss_plateau.py [--store sqlite3|pgsql]
        [--mpm debian|defaults|tuned] [--legs N] [--secs S]
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402
from b1_api import CloseIds, run_leg  # noqa: E402

CONNS = 16
WS_STATUS, WS_CREATE = "p9-status", "p9-create"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--store", default="sqlite3", choices=("sqlite3", "pgsql"))
    ap.add_argument("--mpm", default="tuned", choices=sorted(C.MPM_PROFILES))
    ap.add_argument("--legs", type=int, default=8)
    ap.add_argument("--secs", type=int, default=8)
    a = ap.parse_args()
    srv = C.BenchServer(mpm=a.mpm, access_log=True, store=a.store)
    srv.start()
    try:
        auth = [f"Authorization: Bearer {srv.key}"]
        sid = srv.create_session(WS_STATUS)["session_id"]

        def rss():
            r = srv.children_rss_kib()
            per = " ".join(f"{pid}:{kib / 1024:.1f}" for pid, kib in sorted(r.items()))
            return f"{per} (sum {sum(r.values()) / 1024:.1f})"

        C.log(f"{a.store}, {a.mpm} MPM; children's RSS MiB at the start: {rss()}")
        for kind in ("status", "create", "close"):
            ids = None
            if kind == "close":
                ids = CloseIds(srv, WS_CREATE, os.path.join(srv.dir, "close-ids.txt"))
            total = 0
            for leg in range(a.legs):
                if kind == "status":
                    r = run_leg(srv, f"{srv.api}{WS_STATUS}/upload_sessions/{sid}", "plain.lua",
                                a.secs, CONNS, auth)
                elif kind == "create":
                    r = run_leg(srv, f"{srv.api}{WS_CREATE}/upload_sessions", "create.lua",
                                a.secs, CONNS, auth)
                else:
                    ids.take(len(ids.ids) // a.legs)
                    r = run_leg(srv, f"{srv.base}/", "close.lua", a.secs, CONNS, auth,
                                (ids.path, f"/api/v1/workspaces/{WS_CREATE}/upload_sessions/", 2))
                n = r.get("put_ok", r["requests"])
                total += n
                C.log(f"{kind} leg {leg}: {n} requests ({total} so far); RSS MiB {rss()}")
    finally:
        srv.stop()
        srv.cleanup()


if __name__ == "__main__":
    main()

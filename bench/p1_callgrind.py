#!/usr/bin/env python3
"""bench/p1_callgrind.py - instructions per request, ours vs the static twin.

Runs one httpd (-X, the event MPM in one process, access log on) under
valgrind's callgrind and counts the instructions the whole process executes
for N sequential keep-alive requests of each kind:

  static  GET /p1/status.json               (the status answer as a file)
  status  GET /upload_sessions/{id}
  slist   GET /p1/list.json                 (the list answer as a file)
  list    GET /upload_sessions?limit=10     (12 sessions in the workspace)

Instruction counts do not depend on what else runs on the machine, so the
ratios are comparable between runs on a busy machine, unlike wall-clock
figures. They do not show lock waits or cache misses: b1 measures those.
Prints Ir/request for each kind and our ratio to the twin, then the top
functions (inclusive) of the two API paths.

    /usr/bin/python3 bench/p1_callgrind.py [N] [--store pgsql]   (default N=1000)
    P1_KEEP=1 keeps the callgrind files (their directory is printed).

--store pgsql runs the server on the testkit's private PostgreSQL
(tests/us_testkit/pg.py) instead of SQLite: the count is httpd's alone, the
PostgreSQL backends' instructions are not in it.
"""
import http.client
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import callgrind  # noqa: E402
from callgrind import total_ir  # noqa: E402
from common import BenchServer, log  # noqa: E402


def requests(port, path, headers, n):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for _ in range(n):
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200 or not body:
            raise RuntimeError(f"GET {path}: {resp.status} {body[:200]!r}")
    conn.close()


def main():
    args = sys.argv[1:]
    store = None
    if "--store" in args:
        i = args.index("--store")
        store = {"pgsql": "pgsql", "sqlite": "sqlite3", "sqlite3": "sqlite3"}[args[i + 1]]
        del args[i:i + 2]
    n = int(args[0]) if args else 1000
    srv = BenchServer(mpm="debian", access_log=True, store=store)
    srv.start()
    try:
        c = srv.client()
        sid = srv.create_session("p1-status")["session_id"]
        for _ in range(12):
            srv.create_session("p1-list")
        os.makedirs(os.path.join(srv.htdocs, "p1"), exist_ok=True)
        os.chmod(os.path.join(srv.htdocs, "p1"), 0o755)
        srv.static("p1/status.json", c.get(f"p1-status/upload_sessions/{sid}").content)
        srv.static("p1/list.json", c.get("p1-list/upload_sessions",
                                         params={"limit": 10}).content)
        api = srv.url_path(srv.api)
        srv.stop()
        kinds = [("static", "/p1/status.json", {}),
                 ("status", f"{api}p1-status/upload_sessions/{sid}", srv.auth),
                 ("slist", "/p1/list.json", {}),
                 ("list", f"{api}p1-list/upload_sessions?limit=10", srv.auth)]
        ir = {}
        for kind, path, headers in kinds:
            # collection is on only inside ap_run_process_connection, which
            # reads, handles and logs each request of a keep-alive connection
            dump = callgrind.run(srv, kind, lambda: requests(srv.port, path, headers, n))
            ir[kind] = (total_ir(dump) / n, dump)
        for ours, twin in (("status", "static"), ("list", "slist")):
            o, t = ir[ours][0], ir[twin][0]
            print(f"{ours:7s} {o:12,.0f} Ir/request   twin {t:12,.0f}   "
                  f"ours/twin {o / t:.2f}")
        for kind in ("status", "list", "static"):
            print(f"\n--- {kind}: top functions, inclusive, {n} requests ---")
            for row in callgrind.annotate(ir[kind][1]):
                print(row)
        if os.environ.get("P1_KEEP") == "1":
            print(f"\ncallgrind files in {srv.dir}")
    finally:
        if os.environ.get("P1_KEEP") != "1":
            srv.cleanup()


if __name__ == "__main__":
    log("p1: callgrind profile of status and list")
    main()

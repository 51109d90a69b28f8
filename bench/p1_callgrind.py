#!/usr/bin/env python3
"""bench/p1_callgrind.py - instructions per request, ours vs the static twin.

Runs one httpd (-X, the event MPM in one process, access log on) under
valgrind's callgrind and counts the instructions the whole process executes
for N sequential keep-alive requests of each kind:

  static  GET /p1/status.json               (the status answer as a file)
  status  GET /upload_sessions/{id}
  slist   GET /p1/list.json                 (the list answer as a file)
  list    GET /upload_sessions?limit=10     (12 sessions in the workspace)
  screate GET /p1/create.json               (a create answer as a file)
  create  POST /upload_sessions  body {}
  sclose  GET /p1/close.json                (0 bytes: the close answers 204)
  close   PUT /upload_sessions/{id}  body {}  (each a fresh OPEN session
                                            of the create run, no files)

Instruction counts do not depend on what else runs on the machine, so the
ratios are comparable between runs on a busy machine, unlike wall-clock
figures. They do not show lock waits or cache misses: b1 measures those.
Prints Ir/request for each kind and our ratio to the twin, then the top
functions (inclusive) of the API paths. A create or close runs alone in
its write batch here (sequential requests): the batch's BEGIN, COMMIT and
WAL sync are each request's own; callgrind counts no time in the sync.

    /usr/bin/python3 bench/p1_callgrind.py [N] [--store pgsql] [--only status,list,create,close]
                                                              (default N=1000, every kind)
    P1_KEEP=1 keeps the callgrind files (their directory is printed).
    P1_CLOSE_SHUFFLE=1 closes the sessions in a random order (seeded) instead of
    their creation order, as b1's clients do.

--store pgsql runs the server on the testkit's private PostgreSQL
(tests/us_testkit/pg.py) instead of SQLite: the count is httpd's alone, the
PostgreSQL backends' instructions are not in it.
"""
import http.client
import json
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import callgrind  # noqa: E402
from callgrind import total_ir  # noqa: E402
from common import BenchServer, log  # noqa: E402


def requests(port, path, headers, n, method="GET", body=None, want=200, answers=None,
             empty=False):
    """n requests over one keep-alive connection, each answering `want`
    with a body (none when empty); path may be a list (one path per
    request). answers: a list the bodies are appended to."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for i in range(n):
        p = path[i] if isinstance(path, list) else path
        conn.request(method, p, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        if resp.status != want or bool(data) == empty:
            raise RuntimeError(f"{method} {p}: {resp.status} {data[:200]!r}")
        if answers is not None:
            answers.append(data)
    conn.close()


def main():
    args = sys.argv[1:]
    store = None
    if "--store" in args:
        i = args.index("--store")
        store = {"pgsql": "pgsql", "sqlite": "sqlite3", "sqlite3": "sqlite3"}[args[i + 1]]
        del args[i:i + 2]
    only = {"status", "list", "create", "close"}
    if "--only" in args:
        i = args.index("--only")
        only = set(args[i + 1].split(","))
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
        srv.static("p1/create.json", c.post("p1-create/upload_sessions", json={}).content)
        srv.static("p1/close.json", b"")
        api = srv.url_path(srv.api)
        srv.stop()
        json_put = {**srv.auth, "Content-Type": "application/json"}
        created = []  # the create run's answers: the sessions the close run closes

        def close_paths():
            paths = [f"{api}p1-create/upload_sessions/{json.loads(b)['session_id']}"
                     for b in created]
            if os.environ.get("P1_CLOSE_SHUFFLE") == "1":
                random.Random(1).shuffle(paths)
            return paths
        pairs = [("status", "static"), ("list", "slist"), ("create", "screate"),
                 ("close", "sclose")]
        pairs = [(o, t) for o, t in pairs if o in only]
        kinds = {"static": lambda: requests(srv.port, "/p1/status.json", {}, n),
                 "status": lambda: requests(srv.port, f"{api}p1-status/upload_sessions/{sid}",
                                            srv.auth, n),
                 "slist": lambda: requests(srv.port, "/p1/list.json", {}, n),
                 "list": lambda: requests(srv.port, f"{api}p1-list/upload_sessions?limit=10",
                                          srv.auth, n),
                 "screate": lambda: requests(srv.port, "/p1/create.json", {}, n),
                 "create": lambda: requests(srv.port, f"{api}p1-create/upload_sessions", json_put,
                                            n, "POST", b"{}", 201, created),
                 "sclose": lambda: requests(srv.port, "/p1/close.json", {}, n, empty=True),
                 "close": lambda: requests(srv.port, close_paths(), json_put, n, "PUT", b"{}",
                                           204, empty=True)}
        if "close" in only and "create" not in only:
            # the sessions to close, made outside the count
            srv.start()
            requests(srv.port, f"{api}p1-create/upload_sessions", json_put, n, "POST", b"{}",
                     201, created)
            srv.stop()
        ir = {}
        for ours, twin in pairs:
            for kind in (twin, ours):
                # collection is on only inside ap_run_process_connection, which
                # reads, handles and logs each request of a keep-alive connection
                dump = callgrind.run(srv, kind, kinds[kind])
                ir[kind] = (total_ir(dump) / n, dump)
        for ours, twin in pairs:
            o, t = ir[ours][0], ir[twin][0]
            print(f"{ours:7s} {o:12,.0f} Ir/request   twin {t:12,.0f}   "
                  f"ours/twin {o / t:.2f}")
        for kind in [o for o, _ in pairs] + ["static"] * ("status" in only):
            print(f"\n--- {kind}: top functions, inclusive, {n} requests ---")
            for row in callgrind.annotate(ir[kind][1]):
                print(row)
        if os.environ.get("P1_KEEP") == "1":
            print(f"\ncallgrind files in {srv.dir}")
    finally:
        if os.environ.get("P1_KEEP") != "1":
            srv.cleanup()


if __name__ == "__main__":
    log("p1: callgrind profile of status, list, create and close")
    main()

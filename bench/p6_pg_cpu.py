"""Profiling tool 6 (issue 12): where the CPU of one status (or list) request
goes, PostgreSQL against SQLite: microseconds of CPU per request of httpd,
of the PostgreSQL backends serving it, of the rest of the cluster, of wrk,
and of everything else on the machine, read from /proc over wrk legs of
one endpoint (b6's: 16 connections, 2 wrk threads). The sides alternate
(A B ... then reversed, every cycle), so that a drift of the machine's load
hits them alike; only figures of one run compare.

  /usr/bin/python3 bench/p6_pg_cpu.py [--endpoint status|list] [--secs 3]
      [--cycles 3] [--unix] [--no-sqlite] [--module X.so ...] [--perf DIR]
      [--explain FILE.sql] [--pgbench] [--pgbench-variant NAME ...]
      [--schedstat] [--strace DIR]

Sides: `pgsql` (the testkit's cluster over TCP loopback, as b6), `sqlite`
(unless --no-sqlite), `pgsql-unix` (--unix: the same cluster over its Unix
socket, conninfo host=<cluster>/sock) and, with --module given more than
once, one pgsql side per build (`pgsql#1`, `pgsql#2`, ...: an A/B of module
builds). --perf DIR: in the last cycle, `perf record` of the httpd children
and of the side's backends during each leg, one file per side and process
group, with the top symbols printed (`perf report --sort dso,sym`).
--explain FILE: runs the psql script FILE on the first pgsql side's
database before the legs (psql variable `sid`: the status leg's session).
--pgbench (status only): one more leg per cycle, `pgbench -M prepared` with
16 clients and 2 threads running the status request's own statement
(SESSION_GET's text, the same session) on the first pgsql side's database
over the same transport, no httpd: what PostgreSQL's backends cost per
statement on this machine when nothing else asks them anything, the floor
of a status request's "backends" column. --pgbench-variant NAME (again
for more): one more pgbench leg per cycle running another statement in
its place, whichever the endpoint (PGBENCH_VARIANTS: `select1`, a prepared SELECT 1, any
statement's cost; `status_id`, the status statement's row read for its id
alone; `status_plain`, its 14 columns without the computed status;
`status_pkey`, the full statement forced to the primary key's index;
`list`, the list leg's statement, `list_unsorted` without its outer
ORDER BY, `list_count` and `list_page` its parts, `list_initplan` and
`list_window` other shapes of it, `list_batchK` K lists in one statement,
pgbench's transactions then counting statements); the pgbench legs
alternate their order by cycle as the sides do; --pgbench-only: no httpd
legs (the sides' servers only give the database its rows).
--schedstat: per request, the time the threads of httpd and of the
backends waited on a run queue while runnable, and how often they were
switched in (/proc/PID/task/TID/schedstat), voluntary and involuntary
switches (/proc/.../status), and the machine's context switches and
wakeup interrupts between CPUs per request. --strace DIR: in the last cycle, `strace -c
-f` attached to the httpd children, and apart to the side's backends,
during each leg: system calls per request (strace slows the leg; the
counts per request are what it is for).
"""

import argparse
import atexit
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

from us_testkit import pg  # noqa: E402

import common as C  # noqa: E402

CONNS = int(os.environ.get("CONNS", "16"))


def postmaster_pid(cl):
    with open(os.path.join(cl.dir, "data", "postmaster.pid")) as f:
        return int(f.readline())


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def pg_groups(cl, dbname):
    """{pid: group} of the cluster's processes: 'backends' (connected to
    dbname), 'pg other' (the rest: other databases' backends, checkpointer,
    WAL writer, autovacuum, ...)."""
    out = {}
    for pid in C.children_of(postmaster_pid(cl)):
        out[pid] = "backends" if f" {dbname} " in cmdline(pid) else "pg other"
    return out


def snapshot(groups):
    return {pid: C.proc_cpu_s(pid) for pid in groups}


class Side:
    def __init__(self, label, store, module, cl, unix=False):
        self.label = label
        C.MODULE_SO = module
        self.srv = C.BenchServer(store=store)
        self.cl = cl
        if unix:
            self.srv.pg_conninfo = self.srv.pg_conninfo.replace(
                "host=127.0.0.1", f"host={cl.dir}/sock")
            self.srv.write_config()

    def start(self):
        srv = self.srv
        srv.start()
        api = srv.api
        sid = srv.create_session("p6-status")["session_id"]
        for _ in range(12):
            srv.create_session("p6-list")
        self.sid = sid
        self.urls = {"status": f"{api}p6-status/upload_sessions/{sid}",
                     "list": f"{api}p6-list/upload_sessions?limit=10"}
        # the answer is right on this side (status and body)
        for ep, url in self.urls.items():
            r = srv.client().get(url)
            assert r.status_code == 200, (ep, r.status_code, r.text)
            d = r.json()
            assert (d["session_id"] == sid) if ep == "status" else (d["total"] == 12), d

    def groups(self):
        g = {p: "httpd" for p in [self.srv.pid] + self.srv.children()}
        if self.srv.store == "pgsql":
            g.update(pg_groups(self.cl, self.srv.pg_db))
        elif self.cl and self.cl.dir:
            g.update({p: "pg other" for p in C.children_of(postmaster_pid(self.cl))})
        return g


def perf_record(pids, path, secs):
    return subprocess.Popen(["perf", "record", "-q", "-F", "1999", "-o", path,
                             "-p", ",".join(str(p) for p in pids), "--", "sleep", str(secs)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def perf_top(path, n=25):
    out = subprocess.run(["perf", "report", "-i", path, "--stdio", "--no-children",
                          "--sort", "dso,sym", "--percent-limit", "0.7"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout
    rows = [l for l in out.splitlines() if l.strip() and not l.startswith("#")]
    dso = subprocess.run(["perf", "report", "-i", path, "--stdio", "--no-children",
                          "--sort", "dso"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout
    drows = [l for l in dso.splitlines() if l.strip() and not l.startswith("#")]
    return drows[:10], rows[:n]


def leg(side, endpoint, secs, perf_dir=None, strace_dir=None):
    groups = side.groups()
    m0, s0, o0 = C.machine_busy_s(), snapshot(groups), os.times()
    q0, c0 = sched_snapshot(groups), machine_counts()
    straces = []
    if strace_dir:
        for g in SCHED_GROUPS:
            pids = [p for p, k in groups.items() if k == g and p != side.srv.pid]
            if pids:
                path = os.path.join(strace_dir, f"{side.label}-{endpoint}-{g}.txt")
                straces.append((g, path, strace_start(pids, path)))
        time.sleep(0.5)  # strace attached
    perfs = []
    if perf_dir:
        for g in ("httpd", "backends"):
            pids = [p for p, k in groups.items() if k == g]
            if pids:
                path = os.path.join(perf_dir, f"{side.label}-{endpoint}-{g}.data")
                perfs.append((g, path, perf_record(pids, path, secs)))
        time.sleep(0.3)  # perf attached
    r = C.wrk(side.urls[endpoint], "plain.lua", secs, CONNS,
              headers=[f"Authorization: Bearer {side.srv.key}"])
    # connections the pool opened during the leg: their backends' whole CPU
    groups = {**side.groups(), **groups}
    m1, s1, o1 = C.machine_busy_s(), snapshot(groups), os.times()
    q1, c1 = sched_snapshot(groups), machine_counts()
    for _g, _path, p in perfs:
        p.wait(timeout=60)
    calls = {}
    for g, path, p in straces:
        p.send_signal(2)  # detaches, writes its summary
        p.wait(timeout=60)
        calls[g] = strace_calls(path)
    sched = {"machine": [c1[k] - c0[k] for k in MACHINE_COUNTS]}
    for pid, g in groups.items():
        if g in SCHED_GROUPS:
            a, b = q0.get(pid, [0] * 5), q1.get(pid, [0] * 5)
            acc = sched.setdefault(g, [0] * 5)
            for i in range(5):
                acc[i] += max(0, b[i] - a[i])
    cpu = {}
    for pid, g in groups.items():
        cpu[g] = cpu.get(g, 0.0) + max(0.0, s1.get(pid, 0) - s0.get(pid, 0))
    cpu["wrk"] = (o1.children_user - o0.children_user) + (o1.children_system - o0.children_system)
    busy, total = m1[0] - m0[0], m1[1] - m0[1]
    cpu["else"] = max(0.0, busy - sum(cpu.values()))
    cpu["idle"] = max(0.0, total - busy)
    bad = r["errors_status"] + r["errors_connect"] + r["errors_read"] + r["errors_timeout"]
    return {"requests": r["requests"], "seconds": r["duration_s"], "errors": bad,
            "cpu": cpu, "perf": [(g, path) for g, path, _ in perfs], "sched": sched,
            "calls": calls, "backends": sum(1 for g in groups.values() if g == "backends")}


GROUPS = ("httpd", "backends", "pg other", "wrk", "else", "idle")
SCHED_GROUPS = ("httpd", "backends")


def tasks_sched(pid):
    """[run ns, run-queue wait ns, times switched in, voluntary switches,
    involuntary switches] summed over the threads of pid."""
    tot = [0, 0, 0, 0, 0]
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return tot
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                run, wait, slices = (int(x) for x in f.read().split()[:3])
            vol = invol = 0
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches"):
                        vol = int(line.split()[1])
                    elif line.startswith("nonvoluntary_ctxt_switches"):
                        invol = int(line.split()[1])
        except (OSError, ValueError):
            continue
        for i, v in enumerate((run, wait, slices, vol, invol)):
            tot[i] += v
    return tot


def sched_snapshot(groups):
    return {pid: tasks_sched(pid) for pid, g in groups.items() if g in SCHED_GROUPS}


MACHINE_COUNTS = ("ctxt", "RES", "CAL")


def machine_counts():
    """The machine's context switches (/proc/stat ctxt) and the rescheduling
    and function-call interrupts between its CPUs (/proc/interrupts RES,
    CAL: a wakeup of a thread on another CPU, an idle one's included)."""
    out = dict.fromkeys(MACHINE_COUNTS, 0)
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("ctxt "):
                out["ctxt"] = int(line.split()[1])
    with open("/proc/interrupts") as f:
        for line in f:
            name, _, rest = line.strip().partition(":")
            if name in ("RES", "CAL"):
                out[name] = sum(int(x) for x in rest.split() if x.isdigit())
    return out


def strace_start(pids, path):
    args = ["strace", "-c", "-f", "-o", path]
    for p in pids:
        args += ["-p", str(p)]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def strace_calls(path):
    """{syscall: calls} of a `strace -c` summary."""
    out = {}
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                # % time, seconds, usecs/call, calls, [errors,] syscall
                if len(parts) >= 5 and parts[3].isdigit() and parts[-1] != "total":
                    out[parts[-1]] = int(parts[3])
    except OSError:
        pass
    return out

# SESSION_GET of src/store/pgsql/us_pg_sql.c (SESSION_COLS, VISIBLE), its
# parameters pgbench's variables
SESSION_GET = (
    "SELECT id, workspace, user_id, given_name, family_name, write_mode, parallel, "
    "CASE WHEN status = 'OPEN' AND expires_at <= "
    "((extract(epoch FROM statement_timestamp()) * 1000000)::bigint /* now */) "
    "THEN 'EXPIRED' ELSE status END, created_at, expires_at, uploaded_files, "
    "finished_files, failed_files, direct FROM us_sessions "
    "WHERE workspace = :ws AND id = :sid AND status <> 'ABORTED';\n")


LIST_COUNT = "SELECT COUNT(*) AS n FROM us_sessions WHERE workspace = :lws AND status <> 'ABORTED'"
LIST_PAGE = (
    "SELECT id, user_id, given_name, family_name, write_mode, parallel, "
    "CASE WHEN status = 'OPEN' AND expires_at <= "
    "((extract(epoch FROM statement_timestamp()) * 1000000)::bigint /* now */) "
    "THEN 'EXPIRED' ELSE status END, created_at, expires_at FROM us_sessions "
    "WHERE workspace = :lws AND status <> 'ABORTED' "
    "ORDER BY created_at DESC, id DESC LIMIT 10 OFFSET 0")

# other statements in SESSION_GET's place, for what part of its cost is
# the statement's own
PGBENCH_VARIANTS = {
    "select1": "SELECT 1;\n",
    "status_id": "SELECT id FROM us_sessions WHERE workspace = :ws AND id = :sid"
                 " AND status <> 'ABORTED';\n",
    "status_plain": "SELECT id, workspace, user_id, given_name, family_name, write_mode,"
                    " parallel, status, created_at, expires_at, uploaded_files,"
                    " finished_files, failed_files, direct FROM us_sessions"
                    " WHERE workspace = :ws AND id = :sid AND status <> 'ABORTED';\n",
    # the same statement where the primary key is the only index that fits
    "status_pkey": SESSION_GET.replace("WHERE workspace = :ws AND id = :sid",
                                       "WHERE workspace || '' = :ws AND id = :sid"),
    # the list leg's statement (SESSION_LIST_ALL, a page of 10) and its two
    # parts alone
    "list": "SELECT lp.*, lc.n FROM (" + LIST_COUNT + ") lc LEFT JOIN (" + LIST_PAGE
            + ") lp ON 1 = 1 ORDER BY lp.created_at DESC, lp.id DESC;\n",
    "list_unsorted": "SELECT lp.*, lc.n FROM (" + LIST_COUNT + ") lc LEFT JOIN (" + LIST_PAGE
                     + ") lp ON 1 = 1;\n",
    "list_count": LIST_COUNT + ";\n",
    # other shapes of the list: the count as an InitPlan beside the page,
    # or as a window over it (either gives no row, so no count, for an
    # empty page), and a batch of k lists in one statement (list_batchK)
    "list_initplan": LIST_PAGE.replace(" FROM us_sessions",
                                       ", (" + LIST_COUNT + ") AS n FROM us_sessions") + ";\n",
    "list_window": LIST_PAGE.replace(" FROM us_sessions",
                                     ", COUNT(*) OVER () AS n FROM us_sessions") + ";\n",
    "list_page": LIST_PAGE + ";\n",
}


def list_batch(k):
    """k first pages of the list leg's workspace in one statement: each
    one's count and page LATERAL to an unnest of the workspaces."""
    page = LIST_PAGE.replace(":lws", "b.ws").replace(" END, created_at", " END AS st, created_at")
    count = LIST_COUNT.replace(":lws", "b.ws")
    return ("SELECT b.ord, lp.*, lc.n FROM unnest(ARRAY[" + ",".join([":lws"] * k) + "])"
            " WITH ORDINALITY b(ws, ord) CROSS JOIN LATERAL (" + count + ") lc"
            " LEFT JOIN LATERAL (" + page + ") lp ON true"
            " ORDER BY b.ord, lp.created_at DESC, lp.id DESC;\n")


for _k in (1, 2, 4, 8):
    PGBENCH_VARIANTS[f"list_batch{_k}"] = list_batch(_k)


def reaped_cpu_s(pid):
    """cutime + cstime of a process in seconds: its exited children's CPU."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")


def pgbench_leg(side, secs, sql=SESSION_GET, name="status"):
    """The status statement alone, from pgbench: requests are its transactions,
    its CPU stands in the wrk column. pgbench's backends exit with it: their
    CPU is read from the postmaster's reaped children's, and the 16
    connections' setup (fork, authentication) is part of it, so the column
    is an upper bound of the statement's cost."""
    script = os.path.join(side.srv.dir, f"p6-{name}.sql")
    with open(script, "w") as f:
        f.write(sql)
    groups = pg_groups(side.cl, side.srv.pg_db)
    pm = postmaster_pid(side.cl)
    m0, s0, o0, r0 = C.machine_busy_s(), snapshot(groups), os.times(), reaped_cpu_s(pm)
    c0 = machine_counts()
    out = subprocess.run(["pgbench", "-n", "-M", "prepared", "-c", str(CONNS), "-j", "2",
                          "-T", str(secs), "-f", script, "-D", "ws=p6-status", "-D", "lws=p6-list",
                          "-D", f"sid={side.sid}", "-D", "now=0", side.srv.pg_conninfo],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         timeout=secs + 60)
    time.sleep(0.3)  # the postmaster reaps pgbench's backends
    groups = {**pg_groups(side.cl, side.srv.pg_db), **groups}
    m1, s1, o1, r1 = C.machine_busy_s(), snapshot(groups), os.times(), reaped_cpu_s(pm)
    c1 = machine_counts()
    txs = re.search(r"number of transactions actually processed: (\d+)", out.stdout)
    failed = re.search(r"number of failed transactions: (\d+)", out.stdout)
    if out.returncode != 0 or not txs or (failed and int(failed.group(1))):
        raise RuntimeError("pgbench: " + out.stdout[-2000:])
    cpu = {}
    for pid, g in groups.items():
        cpu[g] = cpu.get(g, 0.0) + max(0.0, s1.get(pid, 0) - s0.get(pid, 0))
    cpu["backends"] = cpu.get("backends", 0.0) + (r1 - r0)
    cpu["wrk"] = (o1.children_user - o0.children_user) + (o1.children_system - o0.children_system)
    busy, total = m1[0] - m0[0], m1[1] - m0[1]
    cpu["else"] = max(0.0, busy - sum(cpu.values()))
    cpu["idle"] = max(0.0, total - busy)
    return {"requests": int(txs.group(1)), "seconds": float(secs), "errors": 0,
            "cpu": cpu, "perf": [], "calls": {},
            "sched": {"machine": [c1[k] - c0[k] for k in MACHINE_COUNTS]}}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoint", default="status", choices=("status", "list"))
    ap.add_argument("--secs", type=int, default=3)
    ap.add_argument("--cycles", type=int, default=3)
    ap.add_argument("--unix", action="store_true")
    ap.add_argument("--no-sqlite", action="store_true")
    ap.add_argument("--module", action="append", default=[])
    ap.add_argument("--perf")
    ap.add_argument("--explain")
    ap.add_argument("--pgbench", action="store_true")
    ap.add_argument("--pgbench-variant", action="append", default=[],
                    choices=sorted(PGBENCH_VARIANTS))
    ap.add_argument("--pgbench-only", action="store_true")
    ap.add_argument("--schedstat", action="store_true")
    ap.add_argument("--strace")
    a = ap.parse_args()
    if a.pgbench and a.endpoint != "status":
        ap.error("--pgbench runs the status statement: --endpoint status")
    modules = a.module or [C.MODULE_SO]
    cl = pg.cluster()
    atexit.register(cl.stop)
    if a.unix:
        os.chmod(cl.dir, 0o755)  # the httpd user reaches the socket directory
    sides = []
    try:
        for i, mod in enumerate(modules):
            sides.append(Side("pgsql" if len(modules) == 1 else f"pgsql#{i + 1}", "pgsql", mod, cl))
        if a.unix:
            sides.append(Side("pgsql-unix", "pgsql", modules[0], cl, unix=True))
        if not a.no_sqlite:
            sides.append(Side("sqlite", "sqlite3", modules[0], cl))
        for s in sides:
            s.start()
        if a.explain:
            s = sides[0]
            out = subprocess.run(["psql", "-X", "-v", f"sid={s.sid}", "-f", a.explain,
                                  s.srv.pg_conninfo], stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True, timeout=300)
            print(out.stdout)
        for d in (a.perf, a.strace):
            if d:
                os.makedirs(d, exist_ok=True)
        res = {s.label: [] for s in sides} if not a.pgbench_only else {}
        if a.pgbench:
            res["pgbench (statement alone)"] = []
        for v in a.pgbench_variant:
            res[f"pgbench {v}"] = []
        for cycle in range(a.cycles):
            order = sides if cycle % 2 == 0 else sides[::-1]
            C.wait_quiet(3)
            with open("/proc/loadavg") as f:
                la = " ".join(f.read().split()[:3])
            line = []
            for s in ([] if a.pgbench_only else order):
                last = cycle == a.cycles - 1
                r = leg(s, a.endpoint, a.secs, a.perf if last else None,
                        a.strace if last else None)
                res[s.label].append(r)
                line.append(f"{s.label} {r['requests'] / r['seconds']:.0f}")
            benches = ([("pgbench (statement alone)", SESSION_GET, "status")] if a.pgbench else []) \
                + [(f"pgbench {v}", PGBENCH_VARIANTS[v], v) for v in a.pgbench_variant]
            for label, sql, name in (benches if cycle % 2 == 0 else benches[::-1]):
                r = pgbench_leg(sides[0], a.secs, sql, name)
                res[label].append(r)
                line.append(f"{name} {r['requests'] / r['seconds']:.0f}")
            C.log(f"cycle {cycle + 1} (load {la}): " + ", ".join(line) + " req/s")
        print(f"\n{a.endpoint}, {a.cycles} cycles of {a.secs:g} s legs, {CONNS} connections:"
              " CPU per request (us) by process group")
        print("| side | req/s | per-cycle req/s | " + " | ".join(GROUPS) + " | sum busy |")
        print("|---|---:|---|" + "---:|" * (len(GROUPS) + 1))
        for label, legs in res.items():
            req = sum(r["requests"] for r in legs)
            sec = sum(r["seconds"] for r in legs)
            us = {g: 1e6 * sum(r["cpu"].get(g, 0) for r in legs) / req for g in GROUPS}
            busy = sum(v for g, v in us.items() if g != "idle")
            cyc = "/".join(f"{r['requests'] / r['seconds']:.0f}" for r in legs)
            errs = sum(r["errors"] for r in legs)
            print(f"| {label} | {req / sec:,.0f} | {cyc} | "
                  + " | ".join(f"{us[g]:.1f}" for g in GROUPS) + f" | {busy:.1f} |"
                  + (f" errors {errs}" if errs else ""))
        if a.schedstat:
            print("\nbackends of the side's database per leg: " + "; ".join(
                label + " " + "/".join(str(r.get("backends", 0)) for r in legs)
                for label, legs in res.items() if any(r.get("backends") for r in legs)))
            print("scheduling per request: run-queue wait (us), switched in, voluntary /"
                  " involuntary switches")
            print("| side | group | run us | run-queue wait us | switched in | voluntary |"
                  " involuntary |")
            print("|---|---|---:|---:|---:|---:|---:|")
            for label, legs in res.items():
                req = sum(r["requests"] for r in legs)
                for g in SCHED_GROUPS:
                    t = [sum(r["sched"].get(g, [0] * 5)[i] for r in legs) for i in range(5)]
                    if req and any(t):
                        print(f"| {label} | {g} | {t[0] / 1e3 / req:.1f} | {t[1] / 1e3 / req:.1f}"
                              f" | {t[2] / req:.2f} | {t[3] / req:.2f} | {t[4] / req:.2f} |")
            print("\nthe machine per request: " + "; ".join(
                label + " " + ", ".join(
                    f"{k} {sum(r['sched']['machine'][i] for r in legs) / sum(r['requests'] for r in legs):.2f}"
                    for i, k in enumerate(MACHINE_COUNTS))
                for label, legs in res.items() if legs and "machine" in legs[0]["sched"]))
        if a.strace:
            print("\nsystem calls per request (strace -c, last cycle)")
            for label, legs in res.items():
                r = legs[-1]
                for g, calls in r["calls"].items():
                    top = sorted(calls.items(), key=lambda kv: -kv[1])
                    print(f"{label} {g}: {sum(calls.values()) / r['requests']:.2f} in all; "
                          + ", ".join(f"{k} {v / r['requests']:.2f}" for k, v in top
                                      if v / r["requests"] >= 0.01))
        if a.perf:
            for label, legs in res.items():
                for g, path in legs[-1]["perf"]:
                    dso, top = perf_top(path)
                    print(f"\n## perf {label} {a.endpoint} {g} ({path})")
                    print("\n".join(dso))
                    print("--")
                    print("\n".join(top))
    finally:
        for s in sides:
            s.srv.cleanup()


if __name__ == "__main__":
    main()

"""bench/callgrind.py - the callgrind runner of the profiling tools
(p1_callgrind.py, p3_upload_callgrind.py): a BenchServer's httpd -X under
valgrind's callgrind while a workload runs, the dumps' totals and their
top functions (callgrind_annotate)."""
import os
import re
import subprocess

from common import APACHE, chown_www, port_open, wait_for


def total_ir(path):
    with open(path) as f:
        for line in f:
            if line.startswith("summary:") or line.startswith("totals:"):
                return int(line.split()[1])
    raise RuntimeError(f"no totals in {path}")


def annotate(dump, inclusive=True, n=25):
    """The first n function rows of callgrind_annotate, inclusive or self."""
    out = subprocess.run(["callgrind_annotate", f"--inclusive={'yes' if inclusive else 'no'}",
                          dump], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         text=True).stdout
    return [line for line in out.splitlines() if re.match(r"^\s*[\d,]+ \(", line)][:n]


def run(srv, kind, work, toggles=("ap_run_process_connection",), threads=False, timeout=120):
    """srv's httpd -X (stopped before) under callgrind while work() runs,
    counting only inside the functions `toggles` (not start-up and
    shut-down); stops it. Returns the dump's path, or with threads=True
    the dumps, one a thread, as [(Ir, path)] largest first."""
    # httpd -X runs as its User by the time callgrind writes its counts
    cg_dir = os.path.join(srv.dir, "callgrind")
    os.makedirs(cg_dir, exist_ok=True)
    chown_www(cg_dir)
    out = os.path.join(cg_dir, f"cg.{kind}")
    cmd = ["valgrind", "--tool=callgrind", "--vgdb=no",
           *(f"--toggle-collect={t}" for t in toggles),
           *(["--separate-threads=yes"] if threads else []),
           f"--callgrind-out-file={out}", APACHE, "-X", "-d", srv.dir, "-f", srv.conf_path]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if not wait_for(lambda: port_open(srv.port), 180):
            raise RuntimeError("httpd under callgrind did not start:\n" + srv.log_tail())
        if not threads:
            chown_www(out)  # callgrind made it as root and rewrites it at exit
        work()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    if not threads:
        return out
    # one file per thread: cg.<kind>-01, -02, ...
    return sorted(((total_ir(os.path.join(cg_dir, f)), os.path.join(cg_dir, f))
                   for f in os.listdir(cg_dir) if f.startswith(f"cg.{kind}-")), reverse=True)

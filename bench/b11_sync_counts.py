"""Syncs per file of benchmark 3's load, per module build (not part of `make bench`).

    python3 bench/b11_sync_counts.py A.so [B.so ...]

For each build: a fresh server (bench/common.py's BenchServer), a session,
then `strace -c -f -p <each httpd child>` while wrk uploads FILES files of
4 KiB with 16 connections (as in b3). Prints, per file, the calls that
wait for the disk (fsync, fdatasync, syncfs, sync_file_range) and flock,
and strace's total of calls. The counts do not depend on the machine's
load (unlike the rates of bench/ab_many_files.py); strace slows the server
down, so no rate is printed. Env: FILES (default 2000).
"""

import os
import re
import signal
import subprocess
import sys
import time

import common as C

FILES = int(os.environ.get("FILES", "2000"))
CALLS = ("fsync", "fdatasync", "syncfs", "sync_file_range", "flock")


def parse_strace_c(text):
    """{syscall: calls} from strace -c's table."""
    calls = {}
    for line in text.splitlines():
        m = re.match(r"\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)\s*$", line)
        if m:
            calls[m.group(2)] = int(m.group(1))
    return calls


def measure(so):
    C.MODULE_SO = so
    srv = C.BenchServer()
    try:
        srv.start()
        fields = os.path.join(srv.dir, "fields.txt")
        marker = os.path.join(srv.dir, "markers")
        a = srv.create_session("b11")["aws_prefixed_request_config"]
        C.write_fields_file(fields, a["fields"])
        out = os.path.join(srv.dir, "strace.txt")
        cmd = ["strace", "-c", "-f", "-o", out]
        for pid in srv.children():
            cmd += ["-p", str(pid)]
        tracer = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)
        time.sleep(1.0)  # attached to every thread
        C.wrk_batch(srv.base + "/", "upload.lua", FILES, 16, marker,
                    args=("s3", srv.url_path(a["url"]), fields, 4096, "b11"), limit_s=600)
        time.sleep(0.5)  # the last WAL syncs
        tracer.send_signal(signal.SIGINT)
        tracer.wait(timeout=60)
        with open(out) as f:
            calls = parse_strace_c(f.read())
        total = calls.pop("total", sum(calls.values())) / FILES
        per = {k: calls.get(k, 0) / FILES for k in CALLS}
        print(f"{os.path.basename(so)}: per file " +
              ", ".join(f"{k} {v:.2f}" for k, v in per.items()) +
              f"; all calls {total:.1f}", flush=True)
        return per
    finally:
        srv.cleanup()


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for so in sys.argv[1:]:
        measure(so)


if __name__ == "__main__":
    main()

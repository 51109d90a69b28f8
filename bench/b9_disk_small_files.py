"""Benchmark 9: what the disk allows for benchmark 3's files.

bench/b9_disk_small_files.c (built by `make bench`, `make bench-tools`)
writes 10,000 files of 4 KiB with 16 threads into a fresh directory, each
durable as an upload of ours is before its 204: the file synced, then a
shared directory fsync that started after its create, then a shared
fdatasync of an appended log record (the store's WAL sync). Legs, ABBA
(one each with BENCH_QUICK=1): file synced with fsync vs with fdatasync,
both with the directory and log syncs; then once without any sync (the
page cache's pace, what mod_dav's PUT pays). Figures: files/s, and the
fdatasync/fsync ratio. Run right after b3 (run.sh's order), so that b3's
figures and the disk's are of the same run.
"""

import json
import os
import subprocess
import tempfile

import common as C

FILES = 2000 if C.QUICK else 10000
THREADS = 16
BIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "build", "bench",
                   "b9_disk_small_files")


def leg(sync, log):
    d = tempfile.mkdtemp(prefix="us-b9-", dir=C.WORK)
    try:
        C.wait_quiet()
        out = subprocess.run([BIN, d, str(FILES), str(THREADS), sync, "1" if log else "0"],
                             capture_output=True, text=True, check=True, timeout=600).stdout
        r = json.loads(out)
        C.log(f"  {sync}{' + dir + log' if log else ''}: {r['files_per_s']:.0f} files/s "
              f"(dir syncs/file {r['dir_syncs_per_file']:.2f}, log {r['log_syncs_per_file']:.2f}, "
              f"load {open('/proc/loadavg').read().split()[0]})")
        return r
    finally:
        subprocess.run(["rm", "-rf", d], check=False)


def main():
    if not os.access(BIN, os.X_OK):
        raise RuntimeError(f"{BIN} is missing: make bench-tools")
    order = ["fsync", "fdatasync"] if C.QUICK else ["fsync", "fdatasync", "fdatasync", "fsync"]
    runs = {"fsync": [], "fdatasync": []}
    for s in order:
        runs[s].append(leg(s, True))
    med = {k: C.median([r["files_per_s"] for r in v]) for k, v in runs.items()}
    C.record("9", f"disk: {FILES} x 4 KiB durable (fsync, dir, log), {THREADS} threads",
             med["fsync"], unit="files/s", note="what the disk allows our b3 upload",
             legs=runs["fsync"])
    C.record("9", "disk: the same with fdatasync vs fsync", med["fdatasync"], med["fsync"],
             unit="files/s", legs=runs["fdatasync"])
    nosync = leg("none", False)
    C.record("9", f"disk: {FILES} x 4 KiB, no sync (info)", nosync["files_per_s"],
             unit="files/s", note="the page cache's pace")


if __name__ == "__main__":
    C.main_guard(main)

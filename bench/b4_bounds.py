"""What bounds benchmark 4's flatness, measured in b4's own run: the same
two ingestions without httpd, and the kernel's part of them alone.

  engine_alone(small, big): build/bench/p2_ingest (P2_UPLOAD_FIRST=1: both
      sessions uploaded before the first is ingested, as b4 does) in a fresh
      store and data directory; per session its files/s and CPU per file
      (and the kernel's part), the ingestion's own work with no request,
      poll or worker scheduling around it.
  renames_alone(small, big): what the posix storage does to the directories
      per ingested file and nothing else - a rename from the session's
      directory (small, then big entries) into one flat files directory
      (0 -> small, then small -> small + big entries), a directory fsync of
      both per 256 renames as the ingest batches sync theirs - timed by the
      kernel CPU it costs per rename (getrusage).
  renames_alone(small, big, fan=2): the same into files/<2 hex>/ (256
      subdirectories by the name's first digits, each one a batch touched
      fsynced): what fanning the files directory out would cost instead.

Each returns {"small": {...}, "big": {...}}; b4 records their ratios as info
beside its flatness.
"""

import json
import os
import resource
import shutil
import subprocess
import tempfile
import time

import common as C

P2_INGEST = os.path.join(C.REPO_ROOT, "build", "bench", "p2_ingest")
SYNC_EVERY = 256


def engine_alone(small, big):
    """p2_ingest's line per session: files/s, cpu_us_per_file, sys_us_per_file."""
    if not os.path.exists(P2_INGEST):
        C.log(f"b4 bounds: {P2_INGEST} not built (make bench-tools); skipped")
        return None
    d = tempfile.mkdtemp(prefix="us-bench-p2-", dir=C.WORK)
    try:
        env = dict(os.environ, P2_UPLOAD_FIRST="1")
        out = subprocess.run([P2_INGEST, d, str(small), str(big)], env=env, check=True,
                             capture_output=True, text=True, timeout=900).stdout
    finally:
        shutil.rmtree(d, ignore_errors=True)
    rows = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
    if len(rows) != 2:
        C.log(f"b4 bounds: p2_ingest printed {len(rows)} sessions, not 2")
        return None
    return {"small": rows[0], "big": rows[1]}


def _fsync_dir(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _renames(src, dst, n, fan=0):
    """Kernel CPU and wall microseconds per rename of n files from src into
    dst; with fan, into dst/<the name's first fan hex digits>/, syncing each
    subdirectory a batch touched."""
    names = [os.urandom(8).hex() + f"-{i:08d}" for i in range(n)]
    for name in names:
        with open(os.path.join(src, name), "wb") as f:
            f.write(b"x" * 1024)
    _fsync_dir(src)
    touched = set()
    t0, w0 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    for i, name in enumerate(names, 1):
        sub = os.path.join(dst, name[:fan]) if fan else dst
        os.rename(os.path.join(src, name), os.path.join(sub, name))
        touched.add(sub)
        if i % SYNC_EVERY == 0 or i == n:
            for d in touched:
                _fsync_dir(d)
            touched.clear()
            _fsync_dir(src)
    t1, w1 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    return {"files": n, "sys_us_per_rename": (t1.ru_stime - t0.ru_stime) * 1e6 / n,
            "cpu_us_per_rename": (t1.ru_stime + t1.ru_utime - t0.ru_stime - t0.ru_utime) * 1e6 / n,
            "wall_us_per_rename": (w1 - w0) * 1e6 / n}


def renames_alone(small, big, fan=0):
    d = tempfile.mkdtemp(prefix="us-bench-renames-", dir=C.WORK)
    try:
        files = os.path.join(d, "files")
        os.makedirs(files)
        for k in range(16 ** fan if fan else 0):
            os.makedirs(os.path.join(files, f"{k:0{fan}x}"))
        out = {}
        for kind, n in (("small", small), ("big", big)):
            src = os.path.join(d, f"session-{kind}")
            os.makedirs(src)
            out[kind] = _renames(src, files, n, fan)
            os.rmdir(src)
        return out
    finally:
        shutil.rmtree(d, ignore_errors=True)

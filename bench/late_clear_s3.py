"""The last clear of ended upload-target sessions on s3 (not part of `make bench`).

    python3 bench/late_clear_s3.py A.so [B.so ...]

Each build in turn, on the testkit's radosgw (tests/us_testkit/radosgw.py;
US_RGW_INFO names one already running, else one is started for the run):
a server on s3 storage (MPM `tuned`: 2 processes, each with its clearing
worker) with UploadSessionIngestLease LEASE and UploadSessionMaxFileSize
1 MiB (grace LEASE + 1 s), and N sessions of the upload target created to
expire at one moment and closed at once (no file: done at their close),
one of them holding an object (a writer killed after its commit). From
when they are due (expiry + grace) until every one is recorded as cleared
(the US1022 lines and the numbers of the US1121 lines): sessions cleared
per second, and radosgw's requests (its admin socket's rgw `req` counter,
the files sweep's few listings included) per session.
Env: N (default 500), LEASE (default 4).
"""

import json
import math
import os
import re
import subprocess
import sys
import time
import uuid

import common as C
from us_testkit.radosgw import shared_info
from us_testkit.server import S3_BUCKET
from us_testkit.uploads import s3_client

N = int(os.environ.get("N", "500"))
LEASE = int(os.environ.get("LEASE", "4"))
WS = "late-clear"


def rgw_requests():
    asok = os.path.join(shared_info()["dir"], "run", "client.rgw.asok")
    out = subprocess.run(["ceph", "--admin-daemon", asok, "perf", "dump"], capture_output=True,
                         text=True, check=True).stdout
    return int(json.loads(out)["rgw"]["req"])


def cleared(srv):
    with open(srv.error_log, errors="replace") as f:
        text = f.read()
    return (len(re.findall(r"US1022:", text)) +
            sum(int(n) for n in re.findall(r"US1121: ingest: (\d+) sessions", text)))


def run(so):
    C.MODULE_SO = so
    srv = C.BenchServer(storage="s3", extra=[f"UploadSessionIngestLease {LEASE}",
                                             "UploadSessionMaxFileSize 1048576"])
    srv.log_level = "info"
    srv.start()
    try:
        at = time.time() + 10 + N / 8  # every session expires at this second
        ids = []
        t0 = time.time()
        for _ in range(N):
            sid = srv.create_session(WS, expires_in_seconds=max(1, math.ceil(at - time.time())))
            ids.append(sid["session_id"])
            srv.close_session(WS, ids[-1])
        s3 = s3_client(srv)
        status, _h, body = s3.request(
            "PUT", f"/{S3_BUCKET}/{srv.s3_prefix}/sessions/{ids[N // 2]}/{uuid.uuid4()}", b"left")
        assert status == 200, body
        due = at + LEASE + 1
        C.log(f"{N} sessions created and closed in {time.time() - t0:.0f} s")
        assert time.time() < due, "created too slowly"
        time.sleep(max(0, due - 1 - time.time()))
        r0 = rgw_requests()
        while cleared(srv) < N and time.time() < due + 600:
            time.sleep(0.1)
        end = time.time()
        n = cleared(srv)
        r1 = rgw_requests()
        took = max(end - due, 0.1)
        C.log(f"{os.path.basename(so)}: {n}/{N} cleared "
              f"{took:.1f} s after due: {n / took:.0f} sessions/s; radosgw requests "
              f"{r1 - r0} ({(r1 - r0) / max(n, 1):.2f} per session)")
    finally:
        srv.stop()
        srv.cleanup()


if __name__ == "__main__":
    for so in sys.argv[1:]:
        run(so)

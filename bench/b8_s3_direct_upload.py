"""Benchmark 8 (issue #13): one upload of SIZE bytes (default 1 GiB) straight
into the bucket with the presigned POST a session answers
(UploadSessionS3DirectUpload On; curl -F with every field, then the file)
against a plain PUT of the same file to the same radosgw with curl's own
SigV4 (curl --aws-sigv4, x-amz-content-sha256: UNSIGNED-PAYLOAD, which
Debian's curl 7.88 needs). Runs alternate A B A B ... in the same run
(REPS pairs); each object is deleted before the next run. The figure is the
median time; ratio = PUT time / POST time (>= 0.9 is the issue's target).

A radosgw of its own is started and stopped here. Its memstore holds every
object of the run (SIZE * 2 * REPS + 256 MiB): radosgw frees a deleted
object's data only at its garbage collection, later, and a full memstore
stalls the next upload.

    /usr/bin/python3 bench/b8_s3_direct_upload.py [SIZE_MIB] [REPS]
    BENCH_ONLY=b8 bash bench/run.sh   (BENCH_QUICK=1: 64 MiB, one pair)

Needs build/ (make), curl, Ceph (scripts/install-deps.sh). Not part of
`make test`. Reports the load of the machine: other people's builds may
share its cores.
"""

import os
import statistics
import subprocess
import sys
import tempfile
import signal
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(BENCH_DIR), "tests"))

from common import proc_cpu_s  # noqa: E402
from us_testkit.radosgw import Radosgw  # noqa: E402
from us_testkit.server import UploadServer  # noqa: E402

QUICK = os.environ.get("BENCH_QUICK") == "1"
SIZE = int(sys.argv[1]) << 20 if len(sys.argv) > 1 else (64 << 20 if QUICK else 1 << 30)
REPS = int(sys.argv[2]) if len(sys.argv) > 2 else (1 if QUICK else 3)
UNSIGNED = "x-amz-content-sha256: UNSIGNED-PAYLOAD"


def make_source(path):
    block = os.urandom(1 << 20)
    with open(path, "wb") as f:
        for i in range(SIZE >> 20):
            f.write(i.to_bytes(8, "little") + block[8:])


def ceph_cpu(rgw):
    """{daemon name: CPU seconds so far} of the radosgw's Ceph daemons."""
    out = {}
    for pid, name in rgw.pids():
        out[name] = out.get(name, 0.0) + proc_cpu_s(pid)
    return out


def curl(args):
    t0 = time.monotonic()
    p = subprocess.run(["curl", "-s", "-o", "/dev/stderr", "-w", "%{http_code}", *args],
                       capture_output=True, text=True, timeout=1800)
    took = time.monotonic() - t0
    return p.stdout.strip(), p.stderr, took


def main():
    work = tempfile.mkdtemp(prefix="us-bench-s3-")
    src = os.path.join(work, "source.bin")
    make_source(src)
    rgw = Radosgw(os.path.join(work, "rgw"), memstore_bytes=SIZE * 2 * REPS + (256 << 20))
    rgw.start()
    os.environ["US_RGW_INFO"] = os.path.join(work, "rgw", "endpoint.json")
    srv = None
    try:
        sigv4 = ["--aws-sigv4", "aws:amz:us-east-1:s3", "--user",
                 f"{rgw.access_key}:{rgw.secret_key}", "-H", UNSIGNED]
        code, body, _ = curl(["-X", "PUT", *sigv4, f"{rgw.endpoint}/bench-put"])
        assert code == "200", (code, body)
        srv = UploadServer(storage="s3", extra=["UploadSessionS3DirectUpload On",
                                                 f"UploadSessionMaxFileSize {SIZE}"])
        srv.start()
        api = srv.client(srv.user_all)
        times = {"post": [], "put": []}
        cpu = {"post": [], "put": []}  # CPU seconds of the Ceph daemons per upload
        load = []
        for rep in range(REPS):
            for kind in ("post", "put"):
                load.append(os.getloadavg()[0])
                cpu0 = ceph_cpu(rgw)
                if kind == "post":
                    r = api.post("bench/upload_sessions", json={})
                    assert r.status_code == 201, r.text
                    cfg = r.json()["aws_prefixed_request_config"]
                    form = []
                    for k, v in cfg["fields"].items():
                        form += ["--form-string", f"{k}={v}"]
                    code, body, took = curl([*form, "-F", f"file=@{src};filename=big.bin",
                                             cfg["url"]])
                    assert code == "204", (code, body[:500])
                    key = cfg["fields"]["key"].replace("${filename}", "big.bin")
                    url = f"{cfg['url']}/{key}"
                else:
                    url = f"{rgw.endpoint}/bench-put/big{rep}.bin"
                    code, body, took = curl([*sigv4, "-T", src, url])
                    assert code == "200", (code, body[:500])
                times[kind].append(took)
                cpu1 = ceph_cpu(rgw)
                used = {n: cpu1[n] - cpu0.get(n, 0.0) for n in cpu1}
                cpu[kind].append(used)
                print(f"{kind} #{rep + 1}: {took:.2f} s ({SIZE / took / (1 << 20):.0f} MiB/s); "
                      "Ceph CPU s: " + ", ".join(f"{n} {v:.2f}" for n, v in sorted(used.items())),
                      flush=True)
                code, body, _ = curl(["-X", "DELETE", *sigv4, url])
                assert code == "204", (code, body[:500])
        post, put = statistics.median(times["post"]), statistics.median(times["put"])
        print(f"median over {REPS} A/B pairs of {SIZE >> 20} MiB: presigned POST {post:.2f} s "
              f"({SIZE / post / (1 << 20):.0f} MiB/s), curl --aws-sigv4 PUT {put:.2f} s "
              f"({SIZE / put / (1 << 20):.0f} MiB/s); ratio PUT/POST time = {put / post:.2f}x "
              f"(target >= 0.9x); 1-min load average during the runs "
              f"{min(load):.1f}..{max(load):.1f} on {os.cpu_count()} cores")
        for kind in ("post", "put"):
            names = sorted({n for u in cpu[kind] for n in u})
            print(f"Ceph CPU seconds per {kind} (median): " + ", ".join(
                f"{n} {statistics.median(u.get(n, 0.0) for u in cpu[kind]):.2f}" for n in names),
                flush=True)
    finally:
        if srv:
            srv.stop()
            srv.cleanup()
        rgw.stop()
        subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    # timeout(1): unwind, so that `finally:` stops httpd and radosgw
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    main()
